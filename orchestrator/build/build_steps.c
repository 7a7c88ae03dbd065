/* The builder's instructions other than RUN: WORKDIR, COPY and ADD (with
 * heredocs), and the metadata steps (ENV, LABEL, EXPOSE, HEALTHCHECK,
 * ARG, CMD, ENTRYPOINT, USER...) that change only the image config. */
#include "netd/netd.h"
#include "orchestrator/build/build.h"
#include "orchestrator/build/builder_impl.h"
#include "runtime/registry/registry.h"
#include "runtime/runtime.h"
#include "runtime/store/store.h"

#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

/* An absolute, cleaned path: relative ones are under the workdir. */
static char *image_path(const struct stage_state *s, const char *p)
{
	_cleanup_free_ char *full =
	    p[0] == '/'
		? xstrdup(p)
		: xasprintf("%s/%s", s->cfg.workdir ? s->cfg.workdir : "", p);
	_cleanup_strv_ char **parts = path_components(full, NULL);
	_cleanup_free_ char *rel = strv_join(parts, "/");
	return xasprintf("/%s", rel);
}

int do_workdir(struct builder *b, struct stage_state *s,
	       const struct df_instr *in, char *const *env, struct orch_err *e)
{
	_cleanup_free_ char *w = NULL;
	int r = build_expand(b, in, env, in->args[0], &w, e);
	if (r < 0)
		return r;
	char *path = image_path(s, w);
	free(s->cfg.workdir);
	s->cfg.workdir = path;
	struct step_job job = {.kind = JOB_FS, .mkdir = path};
	char *parts[] = {"WORKDIR", path, NULL};
	r = file_step(b, s, parts, &job, e);
	return r < 0 ? instr_err(b, in, e) : 0;
}

/* A heredoc's text with $NAME and ${NAME} replaced from env, as BuildKit
 * expands an unquoted heredoc of COPY (quotes are left alone). */
static char *heredoc_expand(const char *body, char *const *env)
{
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "");
	for (const char *c = body; *c; c++) {
		if (*c == '\\' && c[1] == '$') {
			sb_add(&sb, "$", 1);
			c++;
			continue;
		}
		if (*c != '$') {
			sb_add(&sb, c, 1);
			continue;
		}
		bool brace = c[1] == '{';
		const char *n = c + 1 + brace;
		size_t len = 0;
		while (isalnum((unsigned char)n[len]) || n[len] == '_')
			len++;
		if (!len || (brace && n[len] != '}')) {
			sb_add(&sb, c, 1);
			continue;
		}
		_cleanup_free_ char *name = xstrndup(n, len);
		const char *v = build_kv_get(env, name);
		sb_adds(&sb, v ? v : "");
		c = n + len + brace - 1;
	}
	return sb_steal(&sb);
}

/* A scratch directory of the build for this step's sources ("what-N"):
 * *dir, made. */
static int step_scratch(struct builder *b, const char *what, char **dir,
			struct orch_err *e)
{
	_cleanup_free_ char *n = xasprintf("%s-%u", what, b->step);
	*dir = path_join(b->tmp, n);
	if (mkdir(*dir, 0700) < 0)
		return err_sys(e, errno, "creating %s", *dir);
	return 0;
}

/* The scratch directory dir, filled, as the copy's source of rels. */
static int scratch_source(const char *dir, struct build_copy *op, char **rels,
			  int *dirfd, struct orch_err *e)
{
	*dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd < 0)
		return err_sys(e, errno, "opening %s", dir);
	op->src_root = *dirfd;
	op->srcs = rels;
	return 0;
}

/* COPY's heredoc sources: written as files named after them in a scratch
 * directory of the build, which becomes the copy's source. */
static int copy_heredocs(struct builder *b, const struct df_instr *in,
			 char *const *env, char ***parts, struct build_copy *op,
			 char ***rels, int *dirfd, struct orch_err *e)
{
	_cleanup_free_ char *dir = NULL;
	int r = step_scratch(b, "heredoc", &dir, e);
	if (r < 0)
		return r;
	for (size_t i = 0; in->args[i + 1]; i++) {
		const struct df_heredoc *h = df_heredoc_of(in, in->args[i]);
		if (!h)
			return err_set(e, EINVAL,
				       "%s:%d: %s mixes heredocs with other "
				       "sources",
				       b->df->path, in->line,
				       df_cmd_name(in->cmd));
		_cleanup_free_ char *text =
		    h->expand ? heredoc_expand(h->body, env) : xstrdup(h->body);
		_cleanup_free_ char *path = path_join(dir, h->name);
		r = write_file_atomic(path, text, strlen(text), 0644, e);
		if (r < 0)
			return r;
		strv_push(rels, h->name);
		strv_push(parts, "heredoc");
		strv_push(parts, text);
	}
	return scratch_source(dir, op, *rels, dirfd, e);
}

static bool is_url(const char *w)
{
	return startswith(w, "http://") || startswith(w, "https://");
}

/* A git repository as BuildKit's ADD takes one. */
static bool is_git(const char *w)
{
	if (startswith(w, "git@") || startswith(w, "git://"))
		return true;
	if (!is_url(w))
		return false;
	size_t n = strcspn(w, "?#");
	return n >= 4 && !strncmp(w + n - 4, ".git", 4);
}

/* An ADD source that cannot go with the others. */
static int add_mixed(struct builder *b, const struct df_instr *in,
		     const char *src, struct orch_err *e)
{
	if (is_git(src))
		return err_set(e, EINVAL,
			       "%s:%d: ADD %s: a git repository is the only "
			       "source of its ADD",
			       b->df->path, in->line, src);
	return err_set(e, ENOTSUP,
		       "%s:%d: ADD %s: one ADD takes URLs or local sources, "
		       "not both",
		       b->df->path, in->line, src);
}

/* The name BuildKit gives a downloaded file: the URL path's last part. */
static char *url_file_name(const char *url)
{
	const char *path = strchr(strstr(url, "://") + 3, '/');
	if (!path)
		return xstrdup("__unnamed__");
	size_t n = strcspn(path, "?#");
	while (n > 1 && path[n - 1] == '/')
		n--;
	const char *base = path + n;
	while (base > path && base[-1] != '/')
		base--;
	size_t len = (size_t)(path + n - base);
	if (!len || (len == 1 && *base == '.') ||
	    (len == 2 && !strncmp(base, "..", 2)))
		return xstrdup("__unnamed__");
	return xstrndup(base, len);
}

/* ADD's URL sources: each downloaded into a directory of its own in the
 * build's scratch space, mode 0600 and the server's Last-Modified time as
 * docker gives them, never unpacked; their content goes into the step's
 * key.  --checksum=sha256:HEX (one URL only) must match. */
static int add_urls(struct builder *b, const struct df_instr *in,
		    char *const *srcs, const char *checksum, char ***parts,
		    struct build_copy *op, char ***rels, int *dirfd,
		    struct orch_err *e)
{
	if (checksum && srcs[1])
		return err_set(e, EINVAL,
			       "%s:%d: ADD --checksum takes one source",
			       b->df->path, in->line);
	if (checksum && (!startswith(checksum, "sha256:") ||
			 strlen(checksum) != 71 ||
			 strspn(checksum + 7, "0123456789abcdef") != 64))
		return err_set(e, EINVAL,
			       "%s:%d: --checksum=%s: want sha256: and 64 "
			       "lowercase hex digits",
			       b->df->path, in->line, checksum);
	_cleanup_free_ char *dir = NULL;
	int r = step_scratch(b, "add", &dir, e);
	if (r < 0)
		return r;
	for (size_t i = 0; srcs[i]; i++) {
		if (!is_url(srcs[i]) || is_git(srcs[i]))
			return add_mixed(b, in, srcs[i], e);
		_cleanup_free_ char *name = url_file_name(srcs[i]);
		_cleanup_free_ char *rel = xasprintf("%zu/%s", i, name);
		_cleanup_free_ char *sub = xasprintf("%s/%zu", dir, i);
		_cleanup_free_ char *path = path_join(dir, rel);
		if (mkdir(sub, 0700) < 0)
			return err_sys(e, errno, "creating %s", sub);
		_cleanup_close_ int fd =
		    open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return err_sys(e, errno, "creating %s", path);
		struct rt_fetched got;
		r = rt_http_fetch(srcs[i], fd, &got, e);
		if (r < 0)
			return err_wrap(e, "%s:%d: ADD", b->df->path, in->line);
		if (checksum && strcmp(checksum + 7, got.sha256))
			return err_set(e, EINVAL,
				       "%s:%d: ADD %s: checksum mismatch: "
				       "want %s, got sha256:%s",
				       b->df->path, in->line, srcs[i], checksum,
				       got.sha256);
		if (got.mtime) {
			struct timespec ts[2] = {{got.mtime, 0}, {got.mtime, 0}};
			futimens(fd, ts);
		}
		strv_push(rels, rel);
		strv_push(parts, "url");
		strv_push(parts, srcs[i]);
		strv_push(parts, got.sha256);
	}
	op->unpack = false;
	return scratch_source(dir, op, *rels, dirfd, e);
}

/* ADD of a git repository, as BuildKit's: URL[#REF[:DIR]] (REF a branch,
 * tag or commit, default the remote's HEAD; DIR a directory of it),
 * fetched at depth 1 into the build's scratch space by the host's git
 * (with the user's credentials and SSH agent, never a prompt).  The
 * tree, or DIR (which may not lead out of it), is copied to the
 * destination, with its .git when keep_git; the commit (which --checksum
 * names, when given) is in the step's key. */
static int add_git(struct builder *b, const struct df_instr *in,
		   const char *src, bool keep_git, const char *checksum,
		   char ***parts,
		   struct build_copy *op, char ***rels, int *dirfd,
		   struct orch_err *e)
{
	_cleanup_free_ char *url = xstrdup(src);
	char *ref = strchr(url, '#'), *sub = NULL;
	if (ref) {
		*ref++ = '\0';
		if ((sub = strchr(ref, ':')))
			*sub++ = '\0';
	}
	if (!ref || !*ref)
		ref = "HEAD";
	if (*url == '-' || *ref == '-' || (sub && *sub == '/'))
		return err_set(e, EINVAL, "%s:%d: ADD %s: not a repository, "
					  "REF and relative DIR",
			       b->df->path, in->line, src);
	_cleanup_free_ char *dir = NULL;
	int r = step_scratch(b, "git", &dir, e);
	if (r < 0)
		return r;
	_cleanup_free_ char *repo = path_join(dir, "repo");
	char commit[128] = "";
	char *init[] = {"git", "init", "-q", repo, NULL};
	char *fetch[] = {"git", "-C",	 repo, "fetch", "-q", "--depth",
			 "1",	"--no-tags", "--", url,	    ref,  NULL};
	char *checkout[] = {"git", "-C",       repo,	     "-c",
			    "advice.detachedHead=false", "checkout", "-q",
			    "FETCH_HEAD", NULL};
	char *head[] = {"git", "-C", repo, "rev-parse", "HEAD", NULL};
	/* No prompt (ssh's own reads the terminal: batch mode), and none
	 * of git's other transports (ext:: runs a command, file:// reads
	 * the host). */
	setenv("GIT_TERMINAL_PROMPT", "0", 1);
	setenv("GIT_SSH_COMMAND", "ssh -o BatchMode=yes", 0);
	setenv("GIT_ALLOW_PROTOCOL", "git:http:https:ssh", 1);
	if (run_program(init, NULL, 0, e) < 0 ||
	    run_program(fetch, NULL, 0, e) < 0 ||
	    run_program(checkout, NULL, 0, e) < 0 ||
	    run_program(head, commit, sizeof(commit), e) < 0)
		return err_wrap(e, "%s:%d: ADD %s", b->df->path, in->line, src);
	commit[strcspn(commit, "\n")] = '\0';
	if (checksum && (!*checksum || !startswith(commit, checksum)))
		return err_set(e, EINVAL,
			       "%s:%d: ADD %s: checksum mismatch: want commit "
			       "%s, got %s",
			       b->df->path, in->line, src, checksum, commit);
	if (!keep_git) {
		_cleanup_free_ char *git = path_join(repo, ".git");
		if ((r = rm_rf(git, e)) < 0)
			return r;
	}
	if ((r = scratch_source(dir, op, *rels, dirfd, e)) < 0)
		return r;
	/* DIR as a context path: no ".." past the tree, no symlink out. */
	_cleanup_free_ char *want = sub && *sub ? xasprintf("repo/%s", sub)
						: xstrdup("repo");
	char **one = NULL;
	if (build_resolve(*dirfd, true, NULL, want, &one, e) < 0)
		return err_wrap(e, "%s:%d: ADD %s", b->df->path, in->line, src);
	for (size_t k = 0; one[k]; k++)
		strv_push(rels, one[k]);
	strv_free(one);
	op->srcs = *rels;
	op->unpack = false;
	strv_push(parts, "git");
	strv_push(parts, commit);
	strv_push(parts, keep_git ? "keep-git-dir" : "");
	return 0;
}

int do_copy(struct builder *b, struct stage_state *s, const struct df_instr *in,
	    char *const *env, struct orch_err *e)
{
	bool add = in->cmd == DF_ADD;
	_cleanup_free_ char *from = NULL, *chown = NULL, *chmod_s = NULL;
	_cleanup_free_ char *checksum = NULL;
	int r = 0;
	if (df_flag(in, "from"))
		r = build_expand(b, in, env, df_flag(in, "from"), &from, e);
	if (r == 0 && df_flag(in, "checksum"))
		r = build_expand(b, in, env, df_flag(in, "checksum"), &checksum,
				 e);
	if (r == 0 && df_flag(in, "chown"))
		r = build_expand(b, in, env, df_flag(in, "chown"), &chown, e);
	if (r == 0 && df_flag(in, "chmod"))
		r = build_expand(b, in, env, df_flag(in, "chmod"), &chmod_s, e);
	if (r < 0)
		return r;
	_cleanup_strv_ char **words = xcalloc(1, sizeof(char *));
	for (size_t i = 0; in->args[i]; i++) {
		char *w;
		r = build_expand(b, in, env, in->args[i], &w, e);
		if (r < 0)
			return r;
		strv_push(&words, w);
		free(w);
	}
	size_t n = strv_len(words);
	const char *dest_raw = words[n - 1];
	struct step_job job = {.kind = JOB_FS};
	struct build_copy *op = &job.copy;
	_cleanup_free_ char *dest = image_path(s, dest_raw);
	op->dest = dest;
	op->dest_dir = dest_raw[strlen(dest_raw) - 1] == '/';
	op->unpack = add;
	op->chown = chown;
	if (chmod_s) {
		char *end;
		unsigned long m = strtoul(chmod_s, &end, 8);
		if (!*chmod_s || *end || m > 07777)
			return err_set(e, EINVAL,
				       "%s:%d: --chmod=%s: not an "
				       "octal mode",
				       b->df->path, in->line, chmod_s);
		op->has_chmod = true;
		op->chmod = (mode_t)m;
	}
	_cleanup_strv_ char **parts = NULL;
	strv_push(&parts, df_cmd_name(in->cmd));
	for (size_t i = 0; i < in->n_flags; i++)
		if (!streq(in->flags[i].name, "from"))
			strv_push(&parts, in->flags[i].name);
	strv_push(&parts, chown ? chown : "");
	strv_push(&parts, chmod_s ? chmod_s : "");
	for (size_t i = 0; i < n; i++)
		strv_push(&parts, words[i]);
	words[n - 1] = NULL; /* the sources only, from here on */
	free((char *)dest_raw);
	_cleanup_strv_ char **rels = xcalloc(1, sizeof(char *));
	_cleanup_strv_ char **from_layers = NULL;
	_cleanup_close_ int heredoc_fd = -1, url_fd = -1;
	if (checksum && (!add || from || in->n_heredocs ||
			 !(is_url(words[0]) || is_git(words[0]))))
		return err_set(e, EINVAL,
			       "%s:%d: --checksum is for ADD of a URL or a "
			       "git repository",
			       b->df->path, in->line);
	/* --from a directory context: its files, as the context's. */
	const struct named_ctx *nc =
	    from && df_stage_index(b->df, from) < 0 ? build_named(b, from)
						    : NULL;
	struct build_ctx *sctx = nc && nc->ctx ? nc->ctx : b->ctx;
	if (from && sctx != b->ctx && (in->n_heredocs || add))
		return err_set(e, EINVAL,
			       "%s:%d: --from=%s: a directory context gives "
			       "files to COPY only",
			       b->df->path, in->line, from);
	if (from && sctx == b->ctx) {
		int idx = df_stage_index(b->df, from);
		if (idx >= 0) {
			struct stage_state *src = &b->st[idx];
			if (!src->done)
				return err_set(e, EINVAL,
					       "%s:%d: --from=%s: "
					       "the stage is not "
					       "built before this "
					       "one",
					       b->df->path, in->line, from);
			from_layers = strv_copy(src->layers);
			strv_push(&parts, "from-stage");
			strv_push(&parts, src->key);
		} else {
			struct rt_image *img;
			r = build_base_image(b, from, &img, e);
			if (r < 0)
				return err_wrap(e, "%s:%d: --from=%s",
						b->df->path, in->line, from);
			from_layers = strv_copy(img->layers);
			strv_push(&parts, "from-image");
			strv_push(&parts, img->id);
			rt_image_free(img);
		}
		job.from_other = true;
		job.from_layers = from_layers;
		job.raw_srcs = words;
	} else if (in->n_heredocs) {
		r = copy_heredocs(b, in, env, &parts, op, &rels, &heredoc_fd,
				  e);
		if (r < 0)
			return instr_err(b, in, e);
	} else if (add && is_git(words[0])) {
		if (words[1])
			return add_mixed(b, in, words[0], e);
		/* A bare --keep-git-dir is true, as a boolean flag. */
		const char *keep = df_flag(in, "keep-git-dir");
		if (keep && *keep && !streq(keep, "true") &&
		    !streq(keep, "false"))
			return err_set(e, EINVAL,
				       "%s:%d: --keep-git-dir=%s: want true or "
				       "false",
				       b->df->path, in->line, keep);
		r = add_git(b, in, words[0], keep && !streq(keep, "false"),
			    checksum, &parts, op, &rels, &url_fd, e);
		if (r < 0)
			return r;
	} else if (add && is_url(words[0])) {
		r = add_urls(b, in, words, checksum, &parts, op, &rels, &url_fd,
			     e);
		if (r < 0)
			return r;
	} else {
		for (size_t i = 0; words[i]; i++) {
			if (add && (is_url(words[i]) || is_git(words[i])))
				return add_mixed(b, in, words[i], e);
			char **one;
			r = build_ctx_resolve(sctx, words[i], &one, e);
			if (r < 0)
				return instr_err(b, in, e);
			for (size_t k = 0; one[k]; k++)
				strv_push(&rels, one[k]);
			strv_free(one);
		}
		char digest[65];
		r = build_ctx_digest(sctx, rels, digest, e);
		if (r < 0)
			return instr_err(b, in, e);
		strv_push(&parts, "content");
		strv_push(&parts, digest);
		op->context = true;
		op->src_root = build_ctx_fd(sctx);
		op->ig = build_ctx_ignore(sctx);
		op->srcs = rels;
	}
	r = file_step(b, s, parts, &job, e);
	if (job.copy.srcs != rels)
		strv_free(job.copy.srcs);
	return r < 0 ? instr_err(b, in, e) : 0;
}

/* ---- metadata steps
 * ---------------------------------------------------------- */

static int expand_all(struct builder *b, const struct df_instr *in,
		      char *const *env, char ***out, struct orch_err *e)
{
	char **v = xcalloc(1, sizeof(char *));
	for (size_t i = 0; in->args[i]; i++) {
		char *w;
		int r = build_expand(b, in, env, in->args[i], &w, e);
		if (r < 0) {
			strv_free(v);
			return r;
		}
		strv_push(&v, w);
		free(w);
	}
	*out = v;
	return 0;
}

static char **command_of(const struct stage_state *s, const struct df_instr *in)
{
	if (in->json)
		return strv_copy(in->args);
	char **v = s->cfg.shell ? strv_copy(s->cfg.shell) : NULL;
	if (!v) {
		strv_push(&v, "/bin/sh");
		strv_push(&v, "-c");
	}
	strv_push(&v, in->args[0]);
	return v;
}

static int do_expose(struct builder *b, struct stage_state *s,
		     const struct df_instr *in, char *const *words,
		     struct orch_err *e)
{
	for (size_t i = 0; words[i]; i++) {
		_cleanup_free_ char *w = xstrdup(words[i]);
		char *slash = strchr(w, '/');
		if (slash)
			*slash = 0;
		_cleanup_free_ char *proto = xstrdup(slash ? slash + 1 : "tcp");
		for (char *c = proto; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		char *dash = strchr(w, '-');
		char *end1, *end2 = NULL;
		unsigned long lo = strtoul(w, &end1, 10);
		unsigned long hi = dash ? strtoul(dash + 1, &end2, 10) : lo;
		if (!*w || (dash ? end1 != dash || *end2 : *end1) || lo == 0 ||
		    hi > 65535 || hi < lo ||
		    (!streq(proto, "tcp") && !streq(proto, "udp") &&
		     !streq(proto, "sctp")))
			return err_set(e, EINVAL,
				       "%s:%d: EXPOSE %s: not a "
				       "port",
				       b->df->path, in->line, words[i]);
		for (unsigned long p = lo; p <= hi; p++) {
			_cleanup_free_ char *port =
			    xasprintf("%lu/%s", p, proto);
			strv_add_unique(&s->cfg.exposed_ports, port);
		}
	}
	return 0;
}

static int do_healthcheck(struct builder *b, struct stage_state *s,
			  const struct df_instr *in, struct orch_err *e)
{
	(void)b;
	(void)e;
	if (s->cfg.healthcheck) {
		strv_free(s->cfg.healthcheck->test);
		free(s->cfg.healthcheck);
	}
	struct rt_healthcheck *h = xcalloc(1, sizeof(*h));
	h->test = strv_copy(in->args);
	static const struct {
		const char *flag;
		size_t off;
	} d[] = {
	    {"interval", offsetof(struct rt_healthcheck, interval_ns)},
	    {"timeout", offsetof(struct rt_healthcheck, timeout_ns)},
	    {"start-period", offsetof(struct rt_healthcheck, start_period_ns)},
	    {"start-interval",
	     offsetof(struct rt_healthcheck, start_interval_ns)}};
	for (size_t i = 0; i < ARRAY_SIZE(d); i++) {
		const char *v = df_flag(in, d[i].flag);
		if (v) /* validated by the parser */
			df_duration(v, (int64_t *)((char *)h + d[i].off));
	}
	const char *r = df_flag(in, "retries");
	if (r)
		h->retries = atoi(r);
	s->cfg.healthcheck = h;
	return 0;
}

int do_arg(struct builder *b, struct stage_state *s, const struct df_instr *in,
	   char *const *env, char ***into, struct orch_err *e)
{
	(void)s;
	for (size_t i = 0; in->args[i]; i++) {
		_cleanup_free_ char *name = NULL, *def = NULL;
		const char *eq = strchr(in->args[i], '=');
		name = xstrndup(in->args[i], eq ? (size_t)(eq - in->args[i])
						: strlen(in->args[i]));
		if (eq) {
			int r = build_expand(b, in, env, eq + 1, &def, e);
			if (r < 0)
				return r;
		}
		const char *given = build_kv_get(b->o->build_args, name);
		const char *meta =
		    into != &b->meta ? build_kv_get(b->meta, name) : NULL;
		const char *v = given ? given : def ? def : meta;
		if (v)
			build_kv_set(into, name, v);
	}
	return 0;
}

static int do_pairs(struct builder *b, struct stage_state *s,
		    const struct df_instr *in, char *const *env,
		    struct orch_err *e)
{
	for (size_t i = 0; in->args[i] && in->args[i + 1]; i += 2) {
		_cleanup_free_ char *k = NULL, *v = NULL;
		int r = build_expand(b, in, env, in->args[i], &k, e);
		if (r == 0)
			r = build_expand(b, in, env, in->args[i + 1], &v, e);
		if (r < 0)
			return r;
		build_kv_set(in->cmd == DF_ENV ? &s->cfg.env : &s->cfg.labels,
			     k, v);
	}
	return 0;
}

/* Metadata instructions: they change the config only; they still chain
 * into the cache key, since later steps see their effect. */
int do_meta(struct builder *b, struct stage_state *s, const struct df_instr *in,
	    char *const *env, struct orch_err *e)
{
	_cleanup_strv_ char **words = NULL;
	int r = 0;
	switch (in->cmd) {
	case DF_ENV:
	case DF_LABEL:
		r = do_pairs(b, s, in, env, e);
		break;
	case DF_ARG:
		r = do_arg(b, s, in, env, &s->args, e);
		break;
	case DF_USER:
	case DF_STOPSIGNAL:
	case DF_EXPOSE:
	case DF_VOLUME:
		r = expand_all(b, in, env, &words, e);
		if (r < 0)
			break;
		if (in->cmd == DF_USER) {
			free(s->cfg.user);
			s->cfg.user = xstrdup(words[0]);
		} else if (in->cmd == DF_STOPSIGNAL) {
			if (parse_signal(words[0]) < 0)
				return err_set(e, EINVAL,
					       "%s:%d: STOPSIGNAL "
					       "%s: unknown signal",
					       b->df->path, in->line, words[0]);
			free(s->cfg.stop_signal);
			s->cfg.stop_signal = xstrdup(words[0]);
		} else if (in->cmd == DF_EXPOSE) {
			r = do_expose(b, s, in, words, e);
		} else {
			for (size_t i = 0; words[i]; i++)
				strv_add_unique(&s->cfg.volumes, words[i]);
		}
		break;
	case DF_CMD:
		strv_free(s->cfg.cmd);
		s->cfg.cmd = command_of(s, in);
		s->cmd_set = true;
		break;
	case DF_ENTRYPOINT:
		strv_free(s->cfg.entrypoint);
		s->cfg.entrypoint = command_of(s, in);
		/* As docker: a CMD inherited from the base image is reset
		 * by a new ENTRYPOINT. */
		if (!s->cmd_set) {
			strv_free(s->cfg.cmd);
			s->cfg.cmd = NULL;
		}
		break;
	case DF_SHELL:
		strv_free(s->cfg.shell);
		s->cfg.shell = strv_copy(in->args);
		break;
	case DF_HEALTHCHECK:
		r = do_healthcheck(b, s, in, e);
		break;
	case DF_ONBUILD:
		/* Recorded for the images built on this one. */
		strv_push(&s->cfg.onbuild, in->args[0]);
		break;
	case DF_MAINTAINER:
		/* Deprecated by docker in favour of LABEL; the image config
		 * has no author field. */
		break;
	default:
		break;
	}
	if (r < 0)
		return r;
	_cleanup_strv_ char **parts = NULL;
	strv_push(&parts, df_cmd_name(in->cmd));
	strv_push(&parts, in->json ? "json" : "text");
	for (size_t i = 0; in->args[i]; i++)
		strv_push(&parts, in->args[i]);
	for (size_t i = 0; i < in->n_flags; i++)
		strv_push(&parts, in->flags[i].name);
	for (size_t i = 0; words && words[i]; i++)
		strv_push(&parts, words[i]);
	for (size_t i = 0; env[i]; i++)
		strv_push(&parts, env[i]);
	build_cache_key(s->key, parts, s->key);
	return 0;
}

/* commit's --change: each a Dockerfile instruction that changes only
 * the config, applied to cfg as the builder applies it (its variables
 * from cfg's own environment, as docker commit expands them). */
int build_apply_changes(struct rt_image_config *cfg, char *const *changes,
			struct orch_err *e)
{
	static const enum df_cmd allowed[] = {
	    DF_CMD,	 DF_ENTRYPOINT, DF_ENV,	       DF_EXPOSE,
	    DF_LABEL,	 DF_USER,	DF_VOLUME,     DF_WORKDIR,
	    DF_STOPSIGNAL, DF_HEALTHCHECK, DF_SHELL,
	};
	struct build_opts o = {0};
	struct stage_state s = {.cfg = *cfg};
	int r = 0;
	for (size_t i = 0; r == 0 && changes && changes[i]; i++) {
		_cleanup_free_ char *text =
		    xasprintf("FROM scratch\n%s\n", changes[i]);
		_cleanup_free_ char *what =
		    xasprintf("--change \"%s\"", changes[i]);
		struct dockerfile *df = NULL;
		r = df_parse(what, text, &df, e);
		if (r < 0) {
			/* "--change "X":2: why": the change is the line. */
			size_t n = strlen(what);
			if (!strncmp(e->msg, what, n) &&
			    !strncmp(e->msg + n, ":2:", 3))
				memmove(e->msg + n, e->msg + n + 2,
					strlen(e->msg + n + 2) + 1);
			break;
		}
		struct builder b = {.o = &o, .df = df};
		/* The variables as they were before this change (an ENV
		 * changes cfg's list). */
		_cleanup_strv_ char **env = strv_copy(s.cfg.env);
		const struct df_stage *st = &df->stages[0];
		if (df->n_stages != 1 || st->n_instrs != 1) {
			r = err_set(e, EINVAL, "%s: one instruction", what);
		} else {
			const struct df_instr *in = &st->instrs[0];
			bool ok = false;
			for (size_t k = 0; k < ARRAY_SIZE(allowed); k++)
				ok |= in->cmd == allowed[k];
			if (!ok)
				r = err_set(e, EINVAL,
					    "%s: %s cannot be changed (CMD, "
					    "ENTRYPOINT, ENV, EXPOSE, LABEL, "
					    "USER, VOLUME, WORKDIR, "
					    "STOPSIGNAL, HEALTHCHECK, SHELL "
					    "can)",
					    what, df_cmd_name(in->cmd));
			else if (in->cmd == DF_WORKDIR) {
				_cleanup_free_ char *w = NULL;
				r = build_expand(&b, in, env, in->args[0], &w,
						 e);
				if (r == 0) {
					free(s.cfg.workdir);
					s.cfg.workdir = image_path(&s, w);
				}
			} else {
				/* A new ENTRYPOINT keeps the CMD, as docker
				 * commit's. */
				s.cmd_set = true;
				r = do_meta(&b, &s, in, env, e);
			}
		}
		df_free(df);
	}
	strv_free(s.args);
	*cfg = s.cfg;
	return r;
}
