/* Fuzzes the Containerfile parser, variable expansion and the
 * .dockerignore matcher with arbitrary text. */
#include "orchestrator/build/build.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xstrndup((const char *)data, size);
	struct orch_err e = {0};
	struct dockerfile *df = NULL;
	if (df_parse("Containerfile", text, &df, &e) == 0) {
		char *env[] = {"A=1", "B=", NULL};
		for (size_t s = 0; s < df->n_stages; s++) {
			const struct df_stage *st = &df->stages[s];
			for (size_t i = 0; i < st->n_instrs; i++)
				for (char **a = st->instrs[i].args; a && *a;
				     a++) {
					char *out = NULL;
					if (df_expand(*a, df->escape, env, &out,
						      &e) == 0)
						free(out);
				}
		}
		df_free(df);
	}
	struct df_ignore *ig = NULL;
	if (df_ignore_parse(text, &ig, &e) == 0) {
		df_ignore_match(ig, "a/b/c.txt");
		df_ignore_match(ig, text);
		df_ignore_free(ig);
	}
	free(text);
	return 0;
}
