/* libFuzzer target over the compose loader: arbitrary bytes as a compose
 * file (parse, interpolate, convert, validate, render), and as an env file
 * when the first byte says so.  Must never crash, leak or hang. */
#include "orchestrator/compose/compose_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *env[] = {"HOME=/home/u", "A=a", "EMPTY=", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	char *text = xmalloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	struct orch_diag d = {0};
	if (size && data[0] == '%') {
		struct arena *a = arena_new();
		struct envmap lookup = {0};
		env_set(a, &lookup, "A", "a");
		struct m_kvlist out = {0};
		envfile_parse(a, "fuzz.env", text + 1, &lookup, &out, &d);
		arena_free(a);
	} else {
		char *files[] = {"/nonexistent/fuzz/compose.yaml", NULL};
		const char *contents[] = {text, NULL};
		struct compose_opts o = {
		    .files = files, .contents = contents, .environ = env};
		struct project *p = NULL;
		if (compose_load(&o, &p, &d) == 0) {
			free(project_render(p, COMPOSE_JSON));
			free(project_render(p, COMPOSE_YAML));
			project_free(p);
		}
	}
	diag_free(&d);
	free(text);
	return 0;
}
