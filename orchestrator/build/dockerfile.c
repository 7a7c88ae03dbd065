/* The Containerfile/Dockerfile parser, docker's variable expansion, the
 * .dockerignore matcher and build cache keys.  Pure: no file system, no
 * kernel; the builder gives it text and environments. */
#include "orchestrator/build/build.h"

#include <ctype.h>
#include <fnmatch.h>
#include <jansson.h>

static const struct {
	const char *name;
	enum df_cmd cmd;
	const char *const *flags; /* the flags the instruction accepts */
} commands[] = {
    {"ADD", DF_ADD,
     (const char *const[]){"chown", "chmod", "link", "checksum",
			   "keep-git-dir", NULL}},
    {"ARG", DF_ARG, NULL},
    {"CMD", DF_CMD, NULL},
    {"COPY", DF_COPY,
     (const char *const[]){"from", "chown", "chmod", "link", NULL}},
    {"ENTRYPOINT", DF_ENTRYPOINT, NULL},
    {"ENV", DF_ENV, NULL},
    {"EXPOSE", DF_EXPOSE, NULL},
    {"FROM", DF_FROM, (const char *const[]){"platform", NULL}},
    {"HEALTHCHECK", DF_HEALTHCHECK,
     (const char *const[]){"interval", "timeout", "start-period",
			   "start-interval", "retries", NULL}},
    {"LABEL", DF_LABEL, NULL},
    {"MAINTAINER", DF_MAINTAINER, NULL},
    {"ONBUILD", DF_ONBUILD, NULL},
    {"RUN", DF_RUN, (const char *const[]){"network", "mount", NULL}},
    {"SHELL", DF_SHELL, NULL},
    {"STOPSIGNAL", DF_STOPSIGNAL, NULL},
    {"USER", DF_USER, NULL},
    {"VOLUME", DF_VOLUME, NULL},
    {"WORKDIR", DF_WORKDIR, NULL},
};

const char *df_cmd_name(enum df_cmd cmd)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (commands[i].cmd == cmd)
			return commands[i].name;
	return "?";
}

static void instr_clear(struct df_instr *in)
{
	free(in->text);
	for (size_t i = 0; i < in->n_flags; i++) {
		free(in->flags[i].name);
		free(in->flags[i].value);
	}
	free(in->flags);
	strv_free(in->args);
	for (size_t i = 0; i < in->n_heredocs; i++) {
		free(in->heredocs[i].name);
		free(in->heredocs[i].body);
	}
	free(in->heredocs);
	memset(in, 0, sizeof(*in));
}

void df_free(struct dockerfile *df)
{
	if (!df)
		return;
	for (size_t i = 0; i < df->n_meta_args; i++)
		instr_clear(&df->meta_args[i]);
	free(df->meta_args);
	for (size_t s = 0; s < df->n_stages; s++) {
		struct df_stage *st = &df->stages[s];
		free(st->name);
		instr_clear(&st->from);
		for (size_t i = 0; i < st->n_instrs; i++)
			instr_clear(&st->instrs[i]);
		free(st->instrs);
	}
	free(df->stages);
	free(df->path);
	free(df);
}

const char *df_flag(const struct df_instr *in, const char *name)
{
	for (size_t i = 0; i < in->n_flags; i++)
		if (streq(in->flags[i].name, name))
			return in->flags[i].value ? in->flags[i].value : "";
	return NULL;
}

int df_stage_index(const struct dockerfile *df, const char *name)
{
	for (size_t i = 0; i < df->n_stages; i++)
		if (df->stages[i].name &&
		    strcasecmp(df->stages[i].name, name) == 0)
			return (int)i;
	char *end;
	errno = 0;
	long n = strtol(name, &end, 10);
	if (*name && !*end && !errno && n >= 0 && (size_t)n < df->n_stages)
		return (int)n;
	return -1;
}

/* ---- lines ----------------------------------------------------------------
 */

struct parser {
	const char *path;
	char escape;
	struct orch_err *e;
	int line; /* of the instruction being parsed */
};

static int perr(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int perr(struct parser *p, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(p->e, EINVAL, "%s:%d: %s", p->path, p->line, msg);
}

/* A parser directive ("# escape=`"): only at the very top of the file,
 * before any blank line, comment or instruction.  Returns true when line
 * is one (and applies it). */
static bool parse_directive(struct parser *p, const char *line)
{
	const char *s = skip_ws(line);
	if (*s != '#')
		return false;
	s = skip_ws(s + 1);
	const char *name = s;
	while (isalnum((unsigned char)*s))
		s++;
	size_t nlen = (size_t)(s - name);
	s = skip_ws(s);
	if (nlen == 0 || *s != '=')
		return false;
	s = skip_ws(s + 1);
	size_t vlen = strlen(s);
	while (vlen && isspace((unsigned char)s[vlen - 1]))
		vlen--;
	if (nlen == 6 && strncasecmp(name, "escape", 6) == 0) {
		if (vlen == 1 && (s[0] == '\\' || s[0] == '`'))
			p->escape = s[0];
		return true;
	}
	/* syntax= and check= select frontends and linters of BuildKit: they
	 * have no meaning here but stay directives. */
	return (nlen == 6 && strncasecmp(name, "syntax", 6) == 0) ||
	       (nlen == 5 && strncasecmp(name, "check", 5) == 0);
}

/* Whether the line ends with the escape character (then optional blanks):
 * a continuation.  *len is cut to before the escape character. */
static bool continues(const char *line, size_t *len, char escape)
{
	size_t n = *len;
	while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' ||
		     line[n - 1] == '\r'))
		n--;
	if (n && line[n - 1] == escape) {
		*len = n - 1;
		return true;
	}
	return false;
}

/* ---- argument forms ------------------------------------------------------ */

/* The rest as a JSON array of strings, if it is one. */
static bool parse_json_array(const char *rest, char ***out)
{
	const char *s = skip_ws(rest);
	if (*s != '[')
		return false;
	json_error_t jerr;
	json_t *a = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
	if (!a || !json_is_array(a)) {
		json_decref(a);
		return false;
	}
	char **v = xcalloc(json_array_size(a) + 1, sizeof(char *));
	size_t i;
	json_t *it;
	json_array_foreach(a, i, it)
	{
		if (!json_is_string(it)) {
			strv_free(v);
			json_decref(a);
			return false;
		}
		v[i] = xstrdup(json_string_value(it));
	}
	json_decref(a);
	*out = v;
	return true;
}

/* Splits on blanks outside quotes, keeping quotes and escapes for the
 * expansion done at build time. */
static int split_raw(struct parser *p, const char *s, char ***out)
{
	char **v = NULL;
	struct strbuf w;
	sb_init(&w);
	bool in_word = false;
	char quote = 0;
	for (; *s; s++) {
		char c = *s;
		if (!quote && (c == ' ' || c == '\t')) {
			if (in_word) {
				strv_push(&v, w.buf);
				w.len = 0;
				w.buf[0] = 0;
				in_word = false;
			}
			continue;
		}
		in_word = true;
		if (c == p->escape && s[1] && quote != '\'') {
			sb_add(&w, s, 2);
			s++;
			continue;
		}
		if (quote && c == quote)
			quote = 0;
		else if (!quote && (c == '\'' || c == '"'))
			quote = c;
		sb_add(&w, &c, 1);
	}
	if (quote) {
		sb_free(&w);
		strv_free(v);
		return perr(p, "unterminated %s quote",
			    quote == '"' ? "double" : "single");
	}
	if (in_word)
		strv_push(&v, w.buf);
	sb_free(&w);
	if (!v)
		v = xcalloc(1, sizeof(char *));
	*out = v;
	return 0;
}

/* ENV and LABEL: "k=v k2=v2" pairs, or the legacy "k value with spaces"
 * (ENV only, one pair). */
static int parse_pairs(struct parser *p, struct df_instr *in, const char *rest)
{
	_cleanup_strv_ char **words = NULL;
	int r = split_raw(p, rest, &words);
	if (r < 0)
		return r;
	const char *name = df_cmd_name(in->cmd);
	if (!words[0])
		return perr(p, "%s requires at least one argument", name);
	char **v = NULL;
	if (!strchr(words[0], '=')) {
		if (in->cmd != DF_ENV && in->cmd != DF_LABEL)
			return perr(p, "%s needs key=value", name);
		if (!words[1])
			return perr(p, "%s %s: missing value", name, words[0]);
		/* Legacy form: the value is the rest of the line as written. */
		const char *val = skip_ws(rest);
		val = skip_ws(val + strlen(words[0]));
		strv_push(&v, words[0]);
		strv_push(&v, val);
		in->args = v;
		return 0;
	}
	for (size_t i = 0; words[i]; i++) {
		char *eq = strchr(words[i], '=');
		if (!eq || eq == words[i]) {
			strv_free(v);
			return perr(p, "%s: \"%s\" is not key=value", name,
				    words[i]);
		}
		char *key = xstrndup(words[i], (size_t)(eq - words[i]));
		strv_push(&v, key);
		strv_push(&v, eq + 1);
		free(key);
	}
	in->args = v;
	return 0;
}

static bool has_flag(enum df_cmd cmd, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (commands[i].cmd != cmd || !commands[i].flags)
			continue;
		for (const char *const *f = commands[i].flags; *f; f++)
			if (streq(*f, name))
				return true;
	}
	return false;
}

/* Peels "--name[=value]" words off the start of rest. */
static int parse_flags(struct parser *p, struct df_instr *in, const char **rest)
{
	const char *s = skip_ws(*rest);
	while (s[0] == '-' && s[1] == '-') {
		const char *end = s;
		while (*end && *end != ' ' && *end != '\t')
			end++;
		if (end == s + 2) { /* "--" ends the flags */
			s = skip_ws(end);
			break;
		}
		_cleanup_free_ char *word =
		    xstrndup(s + 2, (size_t)(end - s - 2));
		char *eq = strchr(word, '=');
		if (eq)
			*eq = 0;
		if (!has_flag(in->cmd, word))
			return perr(p, "%s does not take --%s",
				    df_cmd_name(in->cmd), word);
		/* --mount may be given once per mount. */
		if (df_flag(in, word) && !streq(word, "mount"))
			return perr(p, "--%s given twice", word);
		in->flags =
		    xrealloc(in->flags, (in->n_flags + 1) * sizeof(*in->flags));
		in->flags[in->n_flags].name = xstrdup(word);
		in->flags[in->n_flags].value = eq ? xstrdup(eq + 1) : NULL;
		in->n_flags++;
		s = skip_ws(end);
	}
	*rest = s;
	return 0;
}

/* RUN, CMD, ENTRYPOINT and the command of HEALTHCHECK. */
static int parse_command(struct parser *p, struct df_instr *in,
			 const char *rest)
{
	if (parse_json_array(rest, &in->args)) {
		in->json = true;
		return 0;
	}
	rest = skip_ws(rest);
	if (!*rest && in->cmd == DF_RUN)
		return perr(p, "RUN requires at least one argument");
	in->args = NULL;
	strv_push(&in->args, rest);
	return 0;
}

static int parse_healthcheck(struct parser *p, struct df_instr *in,
			     const char *rest)
{
	const char *s = skip_ws(rest);
	const char *w = s;
	while (*s && *s != ' ' && *s != '\t' && *s != '[')
		s++;
	size_t n = (size_t)(s - w);
	if (n == 4 && strncasecmp(w, "NONE", 4) == 0) {
		if (*skip_ws(s) || in->n_flags)
			return perr(p, "HEALTHCHECK NONE takes no arguments");
		strv_push(&in->args, "NONE");
		return 0;
	}
	if (n != 3 || strncasecmp(w, "CMD", 3) != 0)
		return perr(p, "HEALTHCHECK needs CMD or NONE");
	char **cmd = NULL;
	if (parse_json_array(s, &cmd)) {
		in->json = true;
		strv_push(&in->args, "CMD");
		for (size_t i = 0; cmd[i]; i++)
			strv_push(&in->args, cmd[i]);
		strv_free(cmd);
	} else {
		s = skip_ws(s);
		if (!*s)
			return perr(p, "HEALTHCHECK CMD needs a command");
		strv_push(&in->args, "CMD-SHELL");
		strv_push(&in->args, s);
	}
	static const char *const durations[] = {
	    "interval", "timeout", "start-period", "start-interval"};
	for (size_t i = 0; i < ARRAY_SIZE(durations); i++) {
		const char *v = df_flag(in, durations[i]);
		int64_t ns;
		if (v && (df_duration(v, &ns) < 0 || ns < 0))
			return perr(p, "HEALTHCHECK --%s=%s: not a duration",
				    durations[i], v);
	}
	const char *r = df_flag(in, "retries");
	if (r) {
		char *end;
		long v = strtol(r, &end, 10);
		if (!*r || *end || v < 0)
			return perr(p, "HEALTHCHECK --retries=%s: not a count",
				    r);
	}
	return 0;
}

static int parse_instruction(struct parser *p, const char *text,
			     struct df_instr *in);

static int parse_args(struct parser *p, struct df_instr *in, const char *rest)
{
	const char *name = df_cmd_name(in->cmd);
	size_t n;
	switch (in->cmd) {
	case DF_ONBUILD: {
		/* The trigger, kept as written, checked as an instruction of
		 * its own (docker's rules: no ONBUILD, FROM or MAINTAINER). */
		const char *s = skip_ws(rest);
		n = strlen(s);
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
		if (!n)
			return perr(p, "ONBUILD requires an instruction");
		_cleanup_free_ char *trigger = xstrndup(s, n);
		struct df_instr t = {0};
		int r = parse_instruction(p, trigger, &t);
		enum df_cmd tc = t.cmd;
		instr_clear(&t);
		if (r < 0)
			return r;
		if (tc == DF_ONBUILD || tc == DF_FROM || tc == DF_MAINTAINER)
			return perr(p, "ONBUILD cannot trigger %s",
				    df_cmd_name(tc));
		strv_push(&in->args, trigger);
		return 0;
	}
	case DF_RUN:
	case DF_CMD:
	case DF_ENTRYPOINT:
		return parse_command(p, in, rest);
	case DF_HEALTHCHECK:
		return parse_healthcheck(p, in, rest);
	case DF_SHELL:
		if (!parse_json_array(rest, &in->args))
			return perr(p, "SHELL requires the arguments to be "
				       "in JSON form");
		in->json = true;
		if (!in->args[0])
			return perr(p, "SHELL requires at least one argument");
		return 0;
	case DF_ENV:
	case DF_LABEL:
		return parse_pairs(p, in, rest);
	case DF_COPY:
	case DF_ADD:
	case DF_VOLUME:
		if (parse_json_array(rest, &in->args)) {
			in->json = true;
		} else {
			int r = split_raw(p, rest, &in->args);
			if (r < 0)
				return r;
		}
		n = strv_len(in->args);
		if ((in->cmd == DF_VOLUME && n < 1) ||
		    (in->cmd != DF_VOLUME && n < 2))
			return perr(p, "%s requires at least %s", name,
				    in->cmd == DF_VOLUME ? "one argument"
							 : "two arguments");
		return 0;
	case DF_EXPOSE:
	case DF_ARG:
	case DF_FROM: {
		int r = split_raw(p, rest, &in->args);
		if (r < 0)
			return r;
		n = strv_len(in->args);
		if (n < 1 || !in->args)
			return perr(p, "%s requires at least one argument",
				    name);
		if (in->cmd == DF_FROM &&
		    !(n == 1 || (n == 3 && strcasecmp(in->args[1], "AS") == 0)))
			return perr(p, "FROM takes IMAGE [AS NAME]");
		if (in->cmd == DF_ARG)
			for (size_t i = 0; i < n; i++)
				if (in->args[i][0] == '=')
					return perr(p,
						    "ARG: missing name in "
						    "\"%s\"",
						    in->args[i]);
		return 0;
	}
	case DF_WORKDIR:
	case DF_USER:
	case DF_STOPSIGNAL:
	case DF_MAINTAINER: {
		const char *s = skip_ws(rest);
		n = strlen(s);
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
		if (!n)
			return perr(p, "%s requires exactly one argument",
				    name);
		char *one = xstrndup(s, n);
		strv_push(&in->args, one);
		free(one);
		return 0;
	}
	}
	return perr(p, "unhandled instruction %s", name);
}

static int parse_instruction(struct parser *p, const char *text,
			     struct df_instr *in)
{
	const char *s = skip_ws(text);
	const char *kw = s;
	while (*s && !isspace((unsigned char)*s))
		s++;
	size_t n = (size_t)(s - kw);
	in->line = p->line;
	in->text = xstrdup(kw);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strlen(commands[i].name) == n &&
		    strncasecmp(commands[i].name, kw, n) == 0) {
			in->cmd = commands[i].cmd;
			const char *rest = s;
			int r = parse_flags(p, in, &rest);
			if (r < 0)
				return r;
			return parse_args(p, in, rest);
		}
	}
	return perr(p, "unknown instruction: %.*s", (int)n, kw);
}

/* ---- heredocs ----------------------------------------------------------- */

struct marker {
	char *name;
	bool strip, expand;
	size_t start, end; /* of "<<...", in the instruction's text */
};

/* The heredoc markers of an instruction's text, outside quotes:
 * <<NAME, <<-NAME, <<"NAME", <<'NAME' (NAME a shell word). */
static size_t find_markers(const char *t, struct marker *out, size_t max)
{
	size_t n = 0;
	char quote = 0;
	for (size_t i = 0; t[i] && n < max; i++) {
		char c = t[i];
		if (quote) {
			quote = c == quote ? 0 : quote;
			continue;
		}
		if (c == '"' || c == '\'') {
			quote = c;
			continue;
		}
		if (c != '<' || t[i + 1] != '<' || (i > 0 && t[i - 1] == '<'))
			continue;
		size_t j = i + 2;
		bool strip = t[j] == '-';
		j += strip;
		char q = t[j] == '"' || t[j] == '\'' ? t[j] : 0;
		j += q != 0;
		size_t ns = j;
		if (!(isalpha((unsigned char)t[j]) || t[j] == '_'))
			continue;
		while (isalnum((unsigned char)t[j]) || t[j] == '_' ||
		       t[j] == '-' || t[j] == '.')
			j++;
		size_t ne = j;
		if (q && t[j] != q)
			continue;
		j += q != 0;
		out[n++] = (struct marker){xstrndup(t + ns, ne - ns), strip,
					   q == 0, i, j};
		i = j - 1;
	}
	return n;
}

/* Reads the bodies of the markers' heredocs from the lines after the
 * instruction (*s moves past them, *lineno with it). */
static int read_heredocs(struct parser *p, const char **s, int *lineno,
			 struct marker *m, size_t n, struct df_instr *in)
{
	in->heredocs = xcalloc(n, sizeof(*in->heredocs));
	for (size_t k = 0; k < n; k++) {
		struct strbuf body;
		sb_init(&body);
		sb_adds(&body, "");
		bool closed = false;
		while (**s && !closed) {
			const char *nl = strchr(*s, '\n');
			size_t len = nl ? (size_t)(nl - *s) : strlen(*s);
			_cleanup_free_ char *line = xstrndup(*s, len);
			*s += len + (nl ? 1 : 0);
			(*lineno)++;
			if (len && line[len - 1] == '\r')
				line[--len] = 0;
			const char *l = line;
			if (m[k].strip)
				while (*l == '\t')
					l++;
			if (streq(l, m[k].name)) {
				closed = true;
				break;
			}
			sb_printf(&body, "%s\n", l);
		}
		in->heredocs[in->n_heredocs++] = (struct df_heredoc){
		    xstrdup(m[k].name), sb_steal(&body), m[k].expand};
		if (!closed)
			return perr(p,
				    "heredoc <<%s is not closed (no line "
				    "\"%s\" after it)",
				    m[k].name, m[k].name);
	}
	return 0;
}

const struct df_heredoc *df_heredoc_of(const struct df_instr *in,
				       const char *word)
{
	if (!startswith(word, "<<"))
		return NULL;
	struct marker m;
	if (find_markers(word, &m, 1) != 1)
		return NULL;
	const struct df_heredoc *found = NULL;
	for (size_t i = 0; i < in->n_heredocs && !found; i++)
		if (streq(in->heredocs[i].name, m.name))
			found = &in->heredocs[i];
	free(m.name);
	return found;
}

/* RUN: a heredoc that is the whole command is the script (run by the
 * shell, or by its own "#!" interpreter); others are handed to the shell
 * with the command, which reads them as its own here-documents. */
static void run_heredocs(struct df_instr *in, const struct marker *m, size_t n)
{
	if (in->json || !in->args || !in->args[0])
		return;
	const char *cmd = skip_ws(in->args[0]);
	size_t clen = strlen(cmd);
	while (clen && isspace((unsigned char)cmd[clen - 1]))
		clen--;
	const char *t = in->text;
	size_t mlen = m[0].end - m[0].start;
	bool whole =
	    n == 1 && clen == mlen && strncmp(cmd, t + m[0].start, mlen) == 0;
	char *script;
	if (whole && startswith(in->heredocs[0].body, "#!"))
		script = xasprintf(
		    "f=$(mktemp) && cat >\"$f\" <<'%s'\n%s%s\nchmod +x "
		    "\"$f\" && \"$f\"; r=$?; rm -f \"$f\"; exit $r",
		    in->heredocs[0].name, in->heredocs[0].body,
		    in->heredocs[0].name);
	else if (whole)
		script = xstrdup(in->heredocs[0].body);
	else {
		struct strbuf sb;
		sb_init(&sb);
		sb_printf(&sb, "%.*s\n", (int)clen, cmd);
		for (size_t k = 0; k < in->n_heredocs; k++)
			sb_printf(&sb, "%s%s\n", in->heredocs[k].body,
				  in->heredocs[k].name);
		script = sb_steal(&sb);
	}
	free(in->args[0]);
	in->args[0] = script;
}

static int add_instruction(struct parser *p, struct dockerfile *df,
			   const char *text, const char **s, int *lineno)
{
	struct df_instr in = {0};
	int r = parse_instruction(p, text, &in);
	struct marker m[16];
	size_t nm = r == 0 && (in.cmd == DF_RUN || in.cmd == DF_COPY ||
			       in.cmd == DF_ADD)
			? find_markers(in.text, m, ARRAY_SIZE(m))
			: 0;
	if (nm > 0) {
		r = read_heredocs(p, s, lineno, m, nm, &in);
		if (r == 0 && in.cmd == DF_RUN)
			run_heredocs(&in, m, nm);
		for (size_t k = 0; k < nm; k++)
			free(m[k].name);
	}
	if (r < 0) {
		instr_clear(&in);
		return r;
	}
	if (in.cmd == DF_FROM) {
		df->stages = xrealloc(df->stages,
				      (df->n_stages + 1) * sizeof(*df->stages));
		struct df_stage *st = &df->stages[df->n_stages++];
		memset(st, 0, sizeof(*st));
		if (in.args[1]) {
			st->name = xstrdup(in.args[2]);
			for (char *c = st->name; *c; c++)
				*c = (char)tolower((unsigned char)*c);
			if (!isalpha((unsigned char)st->name[0]) ||
			    st->name[strspn(st->name,
					    "abcdefghijklmnopqrstuvwxyz"
					    "0123456789_.-")]) {
				instr_clear(&in);
				return perr(p, "invalid stage name \"%s\"",
					    st->name);
			}
			for (size_t i = 0; i + 1 < df->n_stages; i++)
				if (df->stages[i].name &&
				    streq(df->stages[i].name, st->name)) {
					instr_clear(&in);
					return perr(p,
						    "duplicate stage name "
						    "\"%s\"",
						    st->name);
				}
		}
		st->from = in;
		return 0;
	}
	if (df->n_stages == 0) {
		if (in.cmd != DF_ARG) {
			enum df_cmd cmd = in.cmd;
			instr_clear(&in);
			return perr(p, "%s before the first FROM",
				    df_cmd_name(cmd));
		}
		df->meta_args =
		    xrealloc(df->meta_args, (df->n_meta_args + 1) * sizeof(in));
		df->meta_args[df->n_meta_args++] = in;
		return 0;
	}
	struct df_stage *st = &df->stages[df->n_stages - 1];
	st->instrs = xrealloc(st->instrs, (st->n_instrs + 1) * sizeof(in));
	st->instrs[st->n_instrs++] = in;
	return 0;
}

int df_parse(const char *path, const char *text, struct dockerfile **out,
	     struct orch_err *e)
{
	struct parser p = {.path = path, .escape = '\\', .e = e};
	struct dockerfile *df = xcalloc(1, sizeof(*df));
	df->path = xstrdup(path);
	struct strbuf logical;
	sb_init(&logical);
	bool directives = true, pending = false;
	int lineno = 0, r = 0;
	const char *s = text;
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		_cleanup_free_ char *line = xstrndup(s, len);
		s += len + (nl ? 1 : 0);
		lineno++;
		if (directives && parse_directive(&p, line))
			continue;
		directives = false;
		const char *t = skip_ws(line);
		bool blank = !*t || *t == '\r';
		/* Comments are whole lines, also inside a continuation;
		 * blank lines inside one are dropped too. */
		if (*t == '#' || blank)
			continue;
		if (!pending)
			p.line = lineno;
		size_t n = strlen(line);
		pending = continues(line, &n, p.escape);
		sb_add(&logical, line, n);
		if (pending)
			continue;
		r = add_instruction(&p, df, logical.buf, &s, &lineno);
		if (r < 0)
			goto fail;
		logical.len = 0;
		logical.buf[0] = 0;
	}
	if (pending && *skip_ws(logical.buf)) {
		r = add_instruction(&p, df, logical.buf, &s, &lineno);
		if (r < 0)
			goto fail;
	}
	if (df->n_stages == 0) {
		p.line = lineno ? lineno : 1;
		r = perr(&p, "no FROM instruction");
		goto fail;
	}
	df->escape = p.escape;
	sb_free(&logical);
	*out = df;
	return 0;
fail:
	sb_free(&logical);
	df_free(df);
	return r;
}
