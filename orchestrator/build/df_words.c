/* The words of a Containerfile: RUN --mount specifications, variable
 * expansion ($VAR, ${VAR:-word}, ${VAR:+word}...) and durations. */
#include "orchestrator/build/build.h"

#include <ctype.h>
#include <fnmatch.h>
#include <jansson.h>

/* ---- RUN --mount ----------------------------------------------------------
 */

void df_mount_clear(struct df_mount *m)
{
	free(m->target);
	free(m->source);
	free(m->from);
	free(m->id);
	memset(m, 0, sizeof(*m));
}

/* "/a/./b//c/" -> "/a/b/c"; NULL when relative or with "..". */
static char *clean_abs(const char *p)
{
	for (const char *c = p; *c;) {
		const char *end = strchrnul(c, '/');
		if (end - c == 2 && c[0] == '.' && c[1] == '.')
			return NULL;
		c = *end ? end + 1 : end;
	}
	if (p[0] != '/')
		return NULL;
	_cleanup_strv_ char **parts = path_components(p, NULL);
	_cleanup_free_ char *rel = strv_join(parts, "/");
	return xasprintf("/%s", rel);
}

static int mount_bool(const char *k, const char *v, bool *out,
		      struct orch_err *e)
{
	if (!v || streq(v, "true") || streq(v, "1")) {
		*out = true;
		return 0;
	}
	if (streq(v, "false") || streq(v, "0")) {
		*out = false;
		return 0;
	}
	return err_set(e, EINVAL, "--mount: %s=%s: want true or false", k, v);
}

static int mount_num(const char *k, const char *v, int base, long max,
		     long *out, struct orch_err *e)
{
	char *end;
	errno = 0;
	long n = v ? strtol(v, &end, base) : -1;
	if (!v || !*v || *end || errno || n < 0 || n > max)
		return err_set(e, EINVAL, "--mount: %s=%s: not a valid number",
			       k, v ? v : "");
	*out = n;
	return 0;
}

static int mount_option(struct df_mount *m, const char *k, const char *v,
			struct orch_err *e)
{
	if (streq(k, "type")) {
		static const char *const names[] = {"bind", "cache", "tmpfs",
						    "secret", "ssh"};
		for (size_t i = 0; v && i < ARRAY_SIZE(names); i++)
			if (streq(v, names[i])) {
				m->type = (enum df_mount_type)i;
				return 0;
			}
		return err_set(e, EINVAL,
			       "--mount: unknown type \"%s\" (want bind, "
			       "cache, tmpfs, secret or ssh)",
			       v ? v : "");
	}
	if (streq(k, "target") || streq(k, "dst") || streq(k, "destination")) {
		free(m->target);
		m->target = v ? clean_abs(v) : NULL;
		return m->target ? 0
				 : err_set(e, EINVAL,
					   "--mount: %s=%s: an absolute path "
					   "without \"..\" is needed",
					   k, v ? v : "");
	}
	char **slot = streq(k, "source") || streq(k, "src") ? &m->source
		      : streq(k, "from")		    ? &m->from
		      : streq(k, "id")			    ? &m->id
							    : NULL;
	if (slot) {
		if (!v || !*v)
			return err_set(e, EINVAL, "--mount: %s needs a value",
				       k);
		free(*slot);
		*slot = xstrdup(v);
		return 0;
	}
	if (streq(k, "rw") || streq(k, "readwrite"))
		return mount_bool(k, v, &m->rw, e);
	if (streq(k, "ro") || streq(k, "readonly")) {
		bool ro = true;
		int r = mount_bool(k, v, &ro, e);
		m->rw = !ro;
		return r;
	}
	if (streq(k, "required"))
		return mount_bool(k, v, &m->required, e);
	if (streq(k, "sharing")) {
		if (v && streq(v, "shared"))
			m->sharing = DF_SHARED;
		else if (v && streq(v, "private"))
			m->sharing = DF_PRIVATE;
		else if (v && streq(v, "locked"))
			m->sharing = DF_LOCKED;
		else
			return err_set(e, EINVAL,
				       "--mount: sharing=%s: want shared, "
				       "private or locked",
				       v ? v : "");
		return 0;
	}
	if (streq(k, "mode"))
		return mount_num(k, v, 8, 07777, &m->mode, e);
	if (streq(k, "uid"))
		return mount_num(k, v, 10, 0x7fffffff, &m->uid, e);
	if (streq(k, "gid"))
		return mount_num(k, v, 10, 0x7fffffff, &m->gid, e);
	if (streq(k, "size")) {
		long n = 0;
		int r = mount_num(k, v, 10, 0x7fffffff, &n, e);
		m->size = n;
		return r;
	}
	return err_set(e, EINVAL, "--mount: unknown option \"%s\"", k);
}

int df_mount_parse(const char *spec, struct df_mount *m, struct orch_err *e)
{
	memset(m, 0, sizeof(*m));
	m->mode = m->uid = m->gid = -1;
	_cleanup_free_ char *copy = xstrdup(spec);
	char *save = NULL;
	int r = 0;
	for (char *opt = strtok_r(copy, ",", &save); opt && r == 0;
	     opt = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(opt, '=');
		if (eq)
			*eq = 0;
		r = mount_option(m, opt, eq ? eq + 1 : NULL, e);
	}
	if (r == 0 && m->type == DF_MOUNT_SECRET && !m->id && m->target) {
		const char *base = strrchr(m->target, '/');
		m->id = xstrdup(base + 1);
	}
	if (r == 0 && m->type == DF_MOUNT_SECRET && !m->id)
		r = err_set(e, EINVAL, "--mount: a secret needs an id");
	if (r == 0 && m->type == DF_MOUNT_SECRET && !m->target)
		m->target = xasprintf("/run/secrets/%s", m->id);
	if (r == 0 && !m->target && m->type != DF_MOUNT_SSH)
		r = err_set(e, EINVAL, "--mount: a target is needed");
	if (r == 0 && m->type == DF_MOUNT_CACHE && !m->id)
		m->id = xstrdup(m->target);
	if (r < 0)
		df_mount_clear(m);
	return r;
}

/* ---- variable expansion ----------------------------------------------------
 */

struct lexer {
	const char *s;
	char escape;
	char *const *env;
	struct orch_err *e;
	const char *word; /* for messages */
};

static const char *env_get(char *const *env, const char *name, size_t n)
{
	const char *found = NULL;
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			found = env[i] + n + 1;
	return found;
}

static int lex_until(struct lexer *l, char stop, struct strbuf *out);

static bool is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* After a '$': a variable reference, or a literal '$'. */
static int lex_variable(struct lexer *l, struct strbuf *out)
{
	const char *s = l->s;
	if (*s != '{') {
		const char *name = s;
		while (is_name_char(*s))
			s++;
		if (s == name) {
			sb_add(out, "$", 1);
			return 0;
		}
		const char *v = env_get(l->env, name, (size_t)(s - name));
		if (v)
			sb_adds(out, v);
		l->s = s;
		return 0;
	}
	const char *name = ++s;
	while (is_name_char(*s))
		s++;
	size_t n = (size_t)(s - name);
	if (n == 0)
		return err_set(l->e, EINVAL, "bad substitution in \"%s\"",
			       l->word);
	const char *v = env_get(l->env, name, n);
	if (*s == '}') {
		if (v)
			sb_adds(out, v);
		l->s = s + 1;
		return 0;
	}
	bool colon = *s == ':';
	if (colon)
		s++;
	char op = *s;
	if (op != '-' && op != '+' && op != '?')
		return err_set(l->e, EINVAL, "unsupported modifier in \"%s\"",
			       l->word);
	l->s = s + 1;
	struct strbuf word;
	sb_init(&word);
	int r = lex_until(l, '}', &word);
	if (r < 0) {
		sb_free(&word);
		return r;
	}
	bool set = v && (!colon || *v);
	const char *w = word.buf;
	switch (op) {
	case '-':
		sb_adds(out, set ? v : w);
		break;
	case '+':
		if (set)
			sb_adds(out, w);
		break;
	case '?':
		if (!set) {
			r = err_set(l->e, EINVAL, "%.*s: %s", (int)n, name,
				    *w ? w : "is not set");
			sb_free(&word);
			return r;
		}
		sb_adds(out, v);
		break;
	}
	sb_free(&word);
	return 0;
}

/* Processes until stop (consumed) or the end when stop is 0. */
static int lex_until(struct lexer *l, char stop, struct strbuf *out)
{
	while (*l->s) {
		char c = *l->s++;
		if (stop && c == stop)
			return 0;
		if (c == '\'') {
			const char *end = strchr(l->s, '\'');
			if (!end)
				return err_set(l->e, EINVAL,
					       "unterminated single quote in "
					       "\"%s\"",
					       l->word);
			sb_add(out, l->s, (size_t)(end - l->s));
			l->s = end + 1;
		} else if (c == '"') {
			for (;;) {
				char d = *l->s++;
				if (!d)
					return err_set(l->e, EINVAL,
						       "unterminated double "
						       "quote in \"%s\"",
						       l->word);
				if (d == '"')
					break;
				if (d == l->escape &&
				    (*l->s == '"' || *l->s == '$' ||
				     *l->s == l->escape)) {
					sb_add(out, l->s++, 1);
				} else if (d == '$') {
					int r = lex_variable(l, out);
					if (r < 0)
						return r;
				} else {
					sb_add(out, &d, 1);
				}
			}
		} else if (c == l->escape) {
			if (*l->s)
				sb_add(out, l->s++, 1);
			else
				sb_add(out, &c, 1);
		} else if (c == '$') {
			int r = lex_variable(l, out);
			if (r < 0)
				return r;
		} else {
			sb_add(out, &c, 1);
		}
	}
	if (stop)
		return err_set(l->e, EINVAL, "missing '%c' in \"%s\"", stop,
			       l->word);
	return 0;
}

int df_expand(const char *word, char escape, char *const *env, char **out,
	      struct orch_err *e)
{
	struct lexer l = {
	    .s = word, .escape = escape, .env = env, .e = e, .word = word};
	struct strbuf sb;
	sb_init(&sb);
	int r = lex_until(&l, 0, &sb);
	if (r < 0) {
		sb_free(&sb);
		return r;
	}
	*out = sb_steal(&sb);
	return 0;
}

int df_duration(const char *s, int64_t *ns)
{
	static const struct {
		const char *unit;
		int64_t ns;
	} units[] = {{"ns", 1},
		     {"us", 1000},
		     {"µs", 1000},
		     {"ms", 1000000},
		     {"s", 1000000000LL},
		     {"m", 60000000000LL},
		     {"h", 3600000000000LL}};
	if (!*s)
		return -EINVAL;
	if (streq(s, "0")) {
		*ns = 0;
		return 0;
	}
	double total = 0;
	while (*s) {
		char *end;
		if (!isdigit((unsigned char)*s) && *s != '.')
			return -EINVAL;
		double v = strtod(s, &end);
		if (end == s)
			return -EINVAL;
		s = end;
		size_t best = SIZE_MAX, blen = 0;
		for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
			size_t ul = strlen(units[i].unit);
			if (strncmp(s, units[i].unit, ul) == 0 && ul > blen) {
				best = i;
				blen = ul;
			}
		}
		if (best == SIZE_MAX)
			return -EINVAL;
		total += v * (double)units[best].ns;
		s += blen;
	}
	if (total > 9.2e18)
		return -ERANGE;
	*ns = (int64_t)total;
	return 0;
}
