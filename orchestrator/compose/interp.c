/* Variable interpolation exactly as compose does it ($VAR, ${VAR},
 * ${VAR:-d}, ${VAR-d}, ${VAR:?msg}, ${VAR?msg}, ${VAR:+alt}, ${VAR+alt},
 * $$), and env files in compose's .env syntax. */
#include "orchestrator/compose/compose_impl.h"

#include <ctype.h>

/* ---- variable tables ------------------------------------------------- */

static const char *env_find(const struct envmap *e, const char *key,
			    size_t klen, size_t *idx)
{
	for (size_t i = 0; e && i < e->n; i++) {
		const char *s = e->v[i];
		if (!strncmp(s, key, klen) && s[klen] == '=') {
			if (idx)
				*idx = i;
			return s + klen + 1;
		}
	}
	return NULL;
}

const char *env_get(const struct envmap *e, const char *key)
{
	return env_find(e, key, strlen(key), NULL);
}

void env_set(struct arena *a, struct envmap *e, const char *key,
	     const char *value)
{
	char *kv = arena_printf(a, "%s=%s", key, value ? value : "");
	size_t i;
	if (env_find(e, key, strlen(key), &i)) {
		e->v[i] = kv;
		return;
	}
	if (e->n == e->cap) {
		size_t cap = e->cap ? 2 * e->cap : 32;
		char **v = arena_new_array(a, char *, cap);
		if (e->n)
			memcpy(v, e->v, e->n * sizeof(*v));
		e->v = v;
		e->cap = cap;
	}
	e->v[e->n++] = kv;
}

/* ---- interpolation --------------------------------------------------------
 */

struct interp {
	struct arena *a;
	const struct envmap *env;
	const struct m_pos *pos;
	struct orch_diag *d;
	const char *whole;	  /* the template */
	const struct ynode *node; /* its scalar, when it has one */
};

static bool name_start(char c)
{
	return c == '_' || isalpha((unsigned char)c);
}

static bool name_char(char c)
{
	return c == '_' || isalnum((unsigned char)c);
}

/* Where the '$' at dollar (in the template) was written: the node's
 * source text is searched for the same '$' (the how-many-th), and its
 * line and column counted from the node's start.  The node's position
 * when the text does not tell. */
static struct m_pos dollar_pos(const struct interp *in, const char *dollar)
{
	struct m_pos pos = *in->pos;
	const struct ynode *n = in->node;
	if (!n || !n->raw || !pos.line)
		return pos;
	size_t nth = 0;
	for (const char *c = in->whole; c < dollar; c++)
		nth += *c == '$';
	const char *r = n->raw, *end = n->raw + n->raw_len;
	for (; r < end; r++)
		if (*r == '$' && nth-- == 0)
			break;
	if (r >= end)
		return pos;
	for (const char *c = n->raw; c < r; c++) {
		if (*c == '\n') {
			pos.line++;
			pos.col = 1;
		} else if (((unsigned char)*c & 0xc0) != 0x80) {
			pos.col++;
		}
	}
	return pos;
}

/* The expression that starts at dollar, for messages: up to its closing
 * brace, else to the end of its line, cut short. */
static int expr_len(const char *dollar, const char *end)
{
	const char *e = dollar;
	int open = 0;
	while (e < end && *e != '\n') {
		if (*e == '{')
			open++;
		else if (*e == '}' && --open <= 0) {
			e++;
			break;
		}
		e++;
	}
	return e - dollar > 60 ? 60 : (int)(e - dollar);
}

static int invalid(struct interp *in, const char *dollar)
{
	struct m_pos pos = dollar_pos(in, dollar);
	diag_add(in->d, M_ERROR, &pos, "invalid interpolation format: \"%.*s\"",
		 expr_len(dollar, in->whole + strlen(in->whole)), dollar);
	return -EINVAL;
}

static const char *lookup(struct interp *in, const char *name, size_t len)
{
	return env_find(in->env, name, len, NULL);
}

static void warn_unset(struct interp *in, const char *name, size_t len)
{
	struct m_pos pos = dollar_pos(in, name - 1 - (name[-1] == '{'));
	diag_add(
	    in->d, M_WARNING, &pos,
	    "the \"%.*s\" variable is not set, defaulting to a blank string",
	    (int)len, name);
}

static int subst(struct interp *in, const char *s, size_t len,
		 struct strbuf *out, int depth);

/* ${...}: body is what is between the braces, dollar its '$'. */
static int braced(struct interp *in, const char *dollar, const char *body,
		  size_t len, struct strbuf *out, int depth)
{
	size_t nlen = 0;
	if (!len || !name_start(body[0]))
		return invalid(in, dollar);
	while (nlen < len && name_char(body[nlen]))
		nlen++;
	const char *val = lookup(in, body, nlen);
	if (nlen == len) {
		if (!val)
			warn_unset(in, body, nlen);
		else
			sb_adds(out, val);
		return 0;
	}
	const char *op = body + nlen;
	size_t oplen = op[0] == ':' ? 2 : 1;
	if (oplen == 2 && nlen + 1 == len)
		return invalid(in, dollar);
	char kind = op[oplen - 1];
	if (kind != '-' && kind != '?' && kind != '+')
		return invalid(in, dollar);
	bool colon = oplen == 2;
	const char *word = op + oplen;
	size_t wlen = len - nlen - oplen;
	bool set = val && (!colon || *val);
	switch (kind) {
	case '-':
		if (set) {
			sb_adds(out, val);
			return 0;
		}
		return subst(in, word, wlen, out, depth + 1);
	case '+':
		if (set)
			return subst(in, word, wlen, out, depth + 1);
		return 0;
	default: /* '?' */
		if (set) {
			sb_adds(out, val);
			return 0;
		}
		struct strbuf msg;
		sb_init(&msg);
		int r = subst(in, word, wlen, &msg, depth + 1);
		if (r == 0) {
			struct m_pos pos = dollar_pos(in, dollar);
			diag_add(
			    in->d, M_ERROR, &pos,
			    "required variable %.*s is missing a value%s%s",
			    (int)nlen, body, msg.len ? ": " : "", msg.buf);
		}
		sb_free(&msg);
		return -EINVAL;
	}
}

/* The closing brace of the "${" at s[j], counting nested "${"; len when
 * there is none. */
static size_t closing_brace(const char *s, size_t len, size_t j)
{
	int open = 0;
	size_t k = j;
	for (; k < len; k++) {
		if (s[k] == '}' && --open == 0)
			break;
		if (s[k] == '$' && k + 1 < len && s[k + 1] == '{') {
			open++;
			k++;
		}
	}
	return k;
}

static int subst(struct interp *in, const char *s, size_t len,
		 struct strbuf *out, int depth)
{
	if (depth > 32)
		return invalid(in, s);
	size_t i = 0;
	while (i < len) {
		const char *dollar = memchr(s + i, '$', len - i);
		if (!dollar) {
			sb_add(out, s + i, len - i);
			break;
		}
		size_t j = (size_t)(dollar - s);
		sb_add(out, s + i, j - i);
		char c = j + 1 < len ? s[j + 1] : '\0';
		if (c == '$') {
			sb_adds(out, "$");
			i = j + 2;
		} else if (c == '{') {
			size_t k = closing_brace(s, len, j);
			if (k >= len)
				return invalid(in, dollar);
			int r = braced(in, dollar, s + j + 2, k - j - 2, out,
				       depth);
			if (r < 0)
				return r;
			i = k + 1;
		} else if (name_start(c)) {
			size_t k = j + 1;
			while (k < len && name_char(s[k]))
				k++;
			const char *val = lookup(in, s + j + 1, k - j - 1);
			if (val)
				sb_adds(out, val);
			else
				warn_unset(in, s + j + 1, k - j - 1);
			i = k;
		} else {
			/* "$(date)", "$1", "cost $ 5", a trailing '$': kept,
			 * as compose keeps them. */
			sb_adds(out, "$");
			i = j + 1;
		}
	}
	return 0;
}

static char *interp_run(struct interp *in)
{
	struct strbuf out;
	sb_init(&out);
	sb_adds(&out, "");
	int r = subst(in, in->whole, strlen(in->whole), &out, 0);
	char *res = r < 0 ? NULL : arena_strdup(in->a, out.buf);
	sb_free(&out);
	return res;
}

char *interp_string(struct arena *a, const char *s, const struct envmap *env,
		    const struct m_pos *pos, struct orch_diag *d)
{
	if (!strchr(s, '$'))
		return (char *)s;
	struct interp in = {a, env, pos, d, s, NULL};
	return interp_run(&in);
}

char *interp_node(struct arena *a, const struct ynode *n,
		  const struct envmap *env, struct orch_diag *d)
{
	if (!strchr(n->s, '$'))
		return n->s;
	struct interp in = {a, env, &n->pos, d, n->s, n};
	return interp_run(&in);
}

void interp_tree(struct arena *a, struct ynode *n, const struct envmap *env,
		 struct orch_diag *d)
{
	switch (n->kind) {
	case Y_SCALAR: {
		char *s = interp_node(a, n, env, d);
		n->s = s ? s : "";
		break;
	}
	case Y_SEQ:
	case Y_MAP:
		for (size_t i = 0; i < n->n; i++)
			interp_tree(a, n->v[i], env, d);
		break;
	case Y_NULL:
		break;
	}
}

/* ---- config --variables ------------------------------------------------ */

static void var_note(struct compose_vars *out, const char *name, size_t len,
		     char kind, const char *word, size_t wlen)
{
	struct compose_var *v = NULL;
	for (size_t i = 0; i < out->n && !v; i++)
		if (strlen(out->v[i].name) == len &&
		    !strncmp(out->v[i].name, name, len))
			v = &out->v[i];
	if (!v) {
		out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
		v = &out->v[out->n++];
		*v = (struct compose_var){.name = xstrndup(name, len)};
	}
	if (kind == '?')
		v->required = true;
	else if (kind == '-' && !v->default_value)
		v->default_value = xstrndup(word, wlen);
	else if (kind == '+' && !v->alternate)
		v->alternate = xstrndup(word, wlen);
}

/* The expressions of s as subst reads them, each variable noted; what a
 * default, alternate or message holds is read too. */
static void vars_scan(const char *s, size_t len, struct compose_vars *out,
		      int depth)
{
	for (size_t i = 0; depth < 32 && i < len;) {
		const char *dollar = memchr(s + i, '$', len - i);
		if (!dollar)
			return;
		size_t j = (size_t)(dollar - s);
		char c = j + 1 < len ? s[j + 1] : '\0';
		if (c == '$') {
			i = j + 2;
		} else if (c == '{') {
			size_t k = closing_brace(s, len, j);
			if (k >= len)
				return;
			const char *body = s + j + 2;
			size_t blen = k - j - 2, n = 0;
			while (n < blen && name_char(body[n]))
				n++;
			if (n && name_start(body[0])) {
				size_t oplen = n < blen && body[n] == ':' ? 2 : 1;
				char kind = n + oplen <= blen
						? body[n + oplen - 1]
						: '\0';
				const char *word = body + n + oplen;
				size_t wlen = n + oplen <= blen
						  ? blen - n - oplen
						  : 0;
				var_note(out, body, n, kind, word, wlen);
				vars_scan(word, wlen, out, depth + 1);
			}
			i = k + 1;
		} else if (name_start(c)) {
			size_t k = j + 1;
			while (k < len && name_char(s[k]))
				k++;
			var_note(out, s + j + 1, k - j - 1, '\0', NULL, 0);
			i = k;
		} else {
			i = j + 1;
		}
	}
}

void interp_collect(const struct ynode *n, struct compose_vars *out)
{
	if (n->kind == Y_SCALAR && n->s)
		vars_scan(n->s, strlen(n->s), out, 0);
	for (size_t i = 0;
	     (n->kind == Y_SEQ || n->kind == Y_MAP) && i < n->n; i++)
		interp_collect(n->v[i], out);
}

void compose_vars_clear(struct compose_vars *v)
{
	for (size_t i = 0; i < v->n; i++) {
		free(v->v[i].name);
		free(v->v[i].default_value);
		free(v->v[i].alternate);
	}
	free(v->v);
	strv_free(v->env);
	*v = (struct compose_vars){0};
}

/* ---- env files ------------------------------------------------------------
 */

static bool hspace(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Expansion inside an env file sees its own earlier lines first, then
 * the caller's table. */
static char *envfile_expand(struct arena *a, const char *s,
			    const struct m_kvlist *own,
			    const struct envmap *lookup,
			    const struct m_pos *pos, struct orch_diag *d)
{
	if (!strchr(s, '$'))
		return arena_strdup(a, s);
	/* Build a combined table: own lines override the lookup table. */
	struct envmap e = {0};
	for (size_t i = 0; lookup && i < lookup->n; i++) {
		if (e.n == e.cap) {
			size_t cap = e.cap ? 2 * e.cap : 32;
			char **v = arena_new_array(a, char *, cap);
			if (e.n)
				memcpy(v, e.v, e.n * sizeof(*v));
			e.v = v;
			e.cap = cap;
		}
		e.v[e.n++] = lookup->v[i];
	}
	for (size_t i = 0; i < own->n; i++)
		if (own->v[i].value)
			env_set(a, &e, own->v[i].key, own->v[i].value);
	return interp_string(a, s, &e, pos, d);
}

static void unescape_double(struct strbuf *sb, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			char c = s[++i];
			switch (c) {
			case 'n':
				sb_add(sb, "\n", 1);
				break;
			case 'r':
				sb_add(sb, "\r", 1);
				break;
			case 't':
				sb_add(sb, "\t", 1);
				break;
			case '\\':
				sb_add(sb, "\\", 1);
				break;
			case '"':
				sb_add(sb, "\"", 1);
				break;
			case '$':
				sb_add(sb, "$$", 2);
				break;
			default:
				sb_add(sb, "\\", 1);
				sb_add(sb, &c, 1);
			}
			continue;
		}
		sb_add(sb, s + i, 1);
	}
}

int envfile_parse_raw(struct arena *a, const char *file, const char *text,
		      struct m_kvlist *out, struct orch_diag *d)
{
	int line = 0, errors = 0;
	for (const char *p = text; *p;) {
		const char *eol = strchr(p, '\n');
		if (!eol)
			eol = p + strlen(p);
		const char *end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
		const char *next = *eol ? eol + 1 : eol;
		struct m_pos pos = {file, ++line, 1};
		const char *k = p;
		while (k < end && hspace(*k))
			k++;
		if (k == end || *k == '#') {
			p = next;
			continue;
		}
		const char *eq = memchr(k, '=', (size_t)(end - k));
		const char *kend = eq;
		while (kend && kend > k && hspace(kend[-1]))
			kend--;
		if (!eq || kend == k) {
			diag_add(d, M_ERROR, &pos,
				 "bad line in env file: \"%.*s\" (want "
				 "KEY=VALUE)",
				 (int)(end - k > 60 ? 60 : end - k), k);
			errors++;
			p = next;
			continue;
		}
		kv_set(a, out, arena_strndup(a, k, (size_t)(kend - k)),
		       arena_strndup(a, eq + 1, (size_t)(end - eq - 1)), &pos);
		p = next;
	}
	return errors ? -EINVAL : 0;
}

int envfile_parse(struct arena *a, const char *file, const char *text,
		  const struct envmap *lookup, struct m_kvlist *out,
		  struct orch_diag *d)
{
	const char *p = text;
	int line = 1;
	int errors = 0;
	while (*p) {
		/* Statement start: skip blanks and comment lines. */
		if (*p == '\n') {
			line++;
			p++;
			continue;
		}
		if (hspace(*p)) {
			p++;
			continue;
		}
		const char *eol = strchr(p, '\n');
		if (!eol)
			eol = p + strlen(p);
		struct m_pos pos = {file, line, 1};
		if (*p == '#') {
			p = eol;
			continue;
		}
		if (!strncmp(p, "export", 6) && hspace(p[6])) {
			p += 6;
			while (hspace(*p))
				p++;
		}
		const char *k = p;
		while (p < eol && (isalnum((unsigned char)*p) || *p == '_' ||
				   *p == '.' || *p == '-'))
			p++;
		const char *kend = p;
		while (p < eol && hspace(*p))
			p++;
		if (kend == k || (p < eol && *p != '=' && *p != ':')) {
			diag_add(
			    d, M_ERROR, &pos,
			    "bad line in env file: \"%.*s\" (want KEY=VALUE)",
			    (int)(eol - k > 60 ? 60 : eol - k), k);
			errors++;
			p = eol;
			continue;
		}
		char *key = arena_strndup(a, k, (size_t)(kend - k));
		if (p == eol) {
			/* A bare name takes its value from the environment. */
			const char *v = env_get(lookup, key);
			if (v)
				kv_set(a, out, key, v, &pos);
			continue;
		}
		p++; /* '=' or ':' */
		while (p < eol && hspace(*p))
			p++;
		char *value;
		if (*p == '"' || *p == '\'') {
			char q = *p++;
			const char *start = p;
			int lines = 0;
			while (*p && !(*p == q && p[-1] != '\\')) {
				if (*p == '\n')
					lines++;
				p++;
			}
			if (!*p) {
				diag_add(d, M_ERROR, &pos,
					 "unterminated quoted value for %s",
					 key);
				return -EINVAL;
			}
			size_t n = (size_t)(p - start);
			p++;
			line += lines;
			if (q == '\'') {
				value = arena_strndup(a, start, n);
			} else {
				struct strbuf sb;
				sb_init(&sb);
				sb_adds(&sb, "");
				unescape_double(&sb, start, n);
				value = envfile_expand(a, sb.buf, out, lookup,
						       &pos, d);
				sb_free(&sb);
			}
			/* Anything after the closing quote up to the end of
			 * the line is a comment. */
			eol = strchr(p, '\n');
			p = eol ? eol : p + strlen(p);
		} else {
			const char *vend = eol;
			for (const char *c = p; c < eol; c++)
				if (*c == '#' && (c == p || hspace(c[-1]))) {
					vend = c;
					break;
				}
			while (vend > p && hspace(vend[-1]))
				vend--;
			_cleanup_free_ char *raw =
			    xstrndup(p, (size_t)(vend - p));
			value = envfile_expand(a, raw, out, lookup, &pos, d);
			p = eol;
		}
		if (!value) {
			errors++;
			continue;
		}
		kv_set(a, out, key, value, &pos);
	}
	return errors ? -EINVAL : 0;
}
