/* --format with a Go template, as docker compose takes it for ps: text
 * with {{.Field}} (a field of the row's JSON form, as --format json
 * shows it), {{json .Field}} and {{json .}}; "\t" and "\n" written as
 * two characters are a tab and a newline; "table " first prints a header
 * of the fields' names and aligns the tab-separated columns.  Anything
 * else between braces is refused, naming it. */
#include "orchestrator/cli/cli.h"

#include <ctype.h>

/* A field's header: its name in capitals, words apart ("ExitCode" ->
 * "EXIT CODE"), with docker's few names of its own. */
static char *field_header(const char *f)
{
	static const char *const own[][2] = {{"ID", "CONTAINER ID"},
					     {"RunningFor", "CREATED"},
					     {"Name", "NAME"}};
	for (size_t i = 0; i < ARRAY_SIZE(own); i++)
		if (streq(f, own[i][0]))
			return xstrdup(own[i][1]);
	struct strbuf sb;
	sb_init(&sb);
	for (size_t i = 0; f[i]; i++) {
		if (i && isupper((unsigned char)f[i]) &&
		    islower((unsigned char)f[i - 1]))
			sb_adds(&sb, " ");
		char c = (char)toupper((unsigned char)f[i]);
		sb_add(&sb, &c, 1);
	}
	return sb_steal(&sb);
}

/* A value as Go's template prints it: strings as they are, numbers and
 * booleans as JSON, null as "<no value>", arrays and objects as JSON. */
static void value_text(json_t *v, struct strbuf *out)
{
	if (!v) {
		sb_adds(out, "<no value>");
		return;
	}
	if (json_is_string(v)) {
		sb_adds(out, json_string_value(v));
		return;
	}
	char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	sb_adds(out, t ? t : "");
	free(t);
}

/* One action ("{{ ... }}" without its braces) for row; the header
 * instead when header is set. */
static int action(const char *a, size_t len, json_t *row, bool header,
		  struct strbuf *out, struct orch_err *e)
{
	_cleanup_free_ char *s = xstrndup(a, len);
	char *p = s + strspn(s, " ");
	size_t n = strlen(p);
	while (n && p[n - 1] == ' ')
		p[--n] = '\0';
	bool json = startswith(p, "json ");
	if (json)
		p += 5 + strspn(p + 5, " ");
	if (streq(p, ".") && json) {
		if (header)
			return 0;
		char *t = json_dumps(row, JSON_COMPACT);
		sb_adds(out, t ? t : "");
		free(t);
		return 0;
	}
	if (p[0] != '.' || !p[1] ||
	    strspn(p + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW"
			  "XYZ0123456789_") != strlen(p + 1))
		return err_set(e, EINVAL,
			       "--format: {{%.*s}}: only {{.Field}}, "
			       "{{json .Field}} and {{json .}} are understood",
			       (int)len, a);
	if (header) {
		_cleanup_free_ char *h = field_header(p + 1);
		sb_adds(out, h);
		return 0;
	}
	json_t *v = json_object_get(row, p + 1);
	if (!v)
		return err_set(e, EINVAL,
			       "--format: {{%.*s}}: no field %s (the fields "
			       "are those of --format json)",
			       (int)len, a, p + 1);
	if (json) {
		char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		sb_adds(out, t ? t : "");
		free(t);
	} else {
		value_text(v, out);
	}
	return 0;
}

int format_row(const char *tmpl, json_t *row, bool header, struct strbuf *out,
	       struct orch_err *e)
{
	for (const char *p = tmpl; *p;) {
		if (p[0] == '{' && p[1] == '{') {
			const char *end = strstr(p + 2, "}}");
			if (!end)
				return err_set(e, EINVAL,
					       "--format: unclosed {{ in \"%s\"",
					       tmpl);
			int r = action(p + 2, (size_t)(end - p - 2), row, header,
				       out, e);
			if (r < 0)
				return r;
			p = end + 2;
		} else if (p[0] == '\\' && (p[1] == 't' || p[1] == 'n')) {
			sb_adds(out, p[1] == 't' ? "\t" : "\n");
			p += 2;
		} else {
			sb_add(out, p, 1);
			p++;
		}
	}
	return 0;
}

/* The columns the first len bytes of s take on a terminal. */
static size_t cell_columns(const char *s, size_t len)
{
	_cleanup_free_ char *c = xstrndup(s, len);
	return text_columns(c, SIZE_MAX, NULL);
}

int format_print(const char *fmt, json_t *rows, struct orch_err *e)
{
	bool table = startswith(fmt, "table ") || streq(fmt, "table");
	const char *tmpl = table ? fmt + 5 + strspn(fmt + 5, " ") : fmt;
	size_t n = json_array_size(rows);
	char **lines = xcalloc(n + 2, sizeof(char *));
	size_t nl = 0;
	int r = 0;
	for (size_t i = 0; r == 0 && i < n + (table ? 1 : 0); i++) {
		struct strbuf sb;
		sb_init(&sb);
		bool header = table && i == 0;
		r = format_row(tmpl,
			       header ? NULL : json_array_get(rows, i - table),
			       header, &sb, e);
		lines[nl++] = sb_steal(&sb);
	}
	if (r == 0 && table) {
		/* Columns at tabs, each as wide as its widest cell and three
		 * spaces apart. */
		size_t w[64] = {0};
		for (size_t i = 0; i < nl; i++) {
			size_t c = 0;
			for (char *s = lines[i]; c < ARRAY_SIZE(w); c++) {
				size_t len = strcspn(s, "\t");
				if (!s[len])
					break;
				size_t cols = cell_columns(s, len);
				if (cols > w[c])
					w[c] = cols;
				s += len + 1;
			}
		}
		for (size_t i = 0; i < nl; i++) {
			size_t c = 0;
			for (char *s = lines[i];; c++) {
				size_t len = strcspn(s, "\t");
				fwrite(s, 1, len, stdout);
				if (!s[len])
					break;
				for (size_t k = cell_columns(s, len);
				     c < ARRAY_SIZE(w) && k < w[c] + 3; k++)
					putchar(' ');
				s += len + 1;
			}
			putchar('\n');
		}
	} else if (r == 0) {
		for (size_t i = 0; i < nl; i++)
			printf("%s\n", lines[i]);
	}
	strv_free(lines);
	return r;
}
