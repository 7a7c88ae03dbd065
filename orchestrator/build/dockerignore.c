/* .dockerignore matching (the patterns of Go's filepath.Match with **
 * and ! exceptions) and the build cache's keys. */
#include "orchestrator/build/build.h"

#include <ctype.h>
#include <fnmatch.h>
#include <jansson.h>

/* ---- .dockerignore ------------------------------------------------------- */

struct df_ignore {
	char **patterns; /* cleaned, without the "!" */
	bool *exclude;	 /* false for "!" patterns */
	size_t n;
};

/* Cleans a pattern as Go's filepath.Clean does (".", "..", "//"), without
 * a leading "/". */
static char *clean_pattern(const char *p)
{
	_cleanup_strv_ char **parts = path_components(p, NULL);
	if (!parts[0])
		return xstrdup(".");
	return strv_join(parts, "/");
}

int df_ignore_parse(const char *text, struct df_ignore **out,
		    struct orch_err *e)
{
	(void)e;
	struct df_ignore *ig = xcalloc(1, sizeof(*ig));
	const char *s = text ? text : "";
	while (*s) {
		size_t len = strcspn(s, "\n");
		_cleanup_free_ char *line = xstrndup(s, len);
		s += len + (s[len] ? 1 : 0);
		size_t n = strlen(line);
		while (n && isspace((unsigned char)line[n - 1]))
			line[--n] = 0;
		const char *t = skip_ws(line);
		if (!*t || *t == '#')
			continue;
		bool exclude = true;
		if (*t == '!') {
			exclude = false;
			t = skip_ws(t + 1);
		}
		char *pat = clean_pattern(t);
		if (streq(pat, ".") && exclude) {
			/* "." would exclude the whole context; docker
			 * ignores it too. */
			free(pat);
			continue;
		}
		ig->patterns =
		    xrealloc(ig->patterns, (ig->n + 1) * sizeof(char *));
		ig->exclude = xrealloc(ig->exclude, (ig->n + 1) * sizeof(bool));
		ig->patterns[ig->n] = pat;
		ig->exclude[ig->n++] = exclude;
	}
	*out = ig;
	return 0;
}

void df_ignore_free(struct df_ignore *ig)
{
	if (!ig)
		return;
	for (size_t i = 0; i < ig->n; i++)
		free(ig->patterns[i]);
	free(ig->patterns);
	free(ig->exclude);
	free(ig);
}

bool df_ignore_has_exceptions(const struct df_ignore *ig)
{
	for (size_t i = 0; ig && i < ig->n; i++)
		if (!ig->exclude[i])
			return true;
	return false;
}

/* Matches pattern against path component by component; a "**" component
 * matches any number of path components, zero included. */
static bool match_parts(char **pat, char **path)
{
	if (!*pat)
		return !*path;
	if (streq(*pat, "**")) {
		for (char **p = path;; p++) {
			if (match_parts(pat + 1, p))
				return true;
			if (!*p)
				return false;
		}
	}
	if (!*path)
		return false;
	if (fnmatch(*pat, *path, 0) != 0)
		return false;
	return match_parts(pat + 1, path + 1);
}

static char **split_path(const char *s)
{
	char **v = xcalloc(1, sizeof(char *));
	_cleanup_free_ char *copy = xstrdup(s);
	char *save = NULL;
	for (char *c = strtok_r(copy, "/", &save); c;
	     c = strtok_r(NULL, "/", &save))
		strv_push(&v, c);
	return v;
}

static bool match_or_parent(char **pat, char **path)
{
	size_t n = strv_len(path);
	for (size_t len = n; len > 0; len--) {
		char *saved = path[len];
		path[len] = NULL;
		bool m = match_parts(pat, path);
		path[len] = saved;
		if (m)
			return true;
	}
	return false;
}

bool df_ignore_match(const struct df_ignore *ig, const char *path)
{
	if (!ig || !ig->n)
		return false;
	_cleanup_strv_ char **parts = split_path(path);
	bool excluded = false;
	for (size_t i = 0; i < ig->n; i++) {
		if (excluded == ig->exclude[i])
			continue; /* cannot change the outcome */
		_cleanup_strv_ char **pat = split_path(ig->patterns[i]);
		if (match_or_parent(pat, parts))
			excluded = ig->exclude[i];
	}
	return excluded;
}

/* ---- cache keys -------------------------------------------------------------
 */

void build_cache_key(const char *parent, char *const *parts, char out[65])
{
	struct strbuf sb;
	sb_init(&sb);
	sb_printf(&sb, "%zu:%s", strlen(parent), parent);
	for (size_t i = 0; parts && parts[i]; i++)
		sb_printf(&sb, "\n%zu:%s", strlen(parts[i]), parts[i]);
	sha256_hex(sb.buf, sb.len, out);
	sb_free(&sb);
}
