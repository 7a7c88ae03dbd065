/* Image references, tar entry names, whiteouts and image config JSON:
 * parsers of untrusted text must not crash, and what they accept must be
 * well-formed. */
#include "runtime/store/store_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);
	char *out = NULL;
	if (image_ref_normalize(s, &out, NULL) == 0) {
		if (!strchr(out, ':'))
			abort();
		char *again = NULL;
		if (image_ref_normalize(out, &again, NULL) < 0 ||
		    strcmp(again, out) != 0)
			abort(); /* normalizing is idempotent */
		free(again);
		free(out);
	}
	char *clean = NULL;
	if (tar_path_clean(s, &clean) == 0) {
		if (clean[0] == '/' || strstr(clean, "//") ||
		    streq(clean, "..") || startswith(clean, "../") ||
		    strstr(clean, "/../"))
			abort();
		char *t = NULL;
		whiteout_parse(clean, &t);
		free(t);
		free(clean);
	}
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	struct rt_image_config c;
	if (j && image_config_from_json(j, &c, NULL) == 0) {
		json_t *back = image_config_to_json(&c);
		json_decref(back);
		rt_image_config_clear(&c);
	}
	json_decref(j);
	free(s);
	return 0;
}
