/* Image builds inside the orchestrator: the Containerfile/Dockerfile
 * parser and variable expansion, .dockerignore matching, the build
 * context (safe source resolution and content digests), and the builder
 * that runs a parsed file with the runtime.  Pure parts (dockerfile.c,
 * the matcher and cache keys) are unit-tested without root. */
#ifndef ORCH_BUILD_H
#define ORCH_BUILD_H

#include "common/common.h"
#include "orchestrator/compose/compose.h"

/* ---- the parsed file ---------------------------------------------------- */

enum df_cmd {
	DF_ADD,
	DF_ARG,
	DF_CMD,
	DF_COPY,
	DF_ENTRYPOINT,
	DF_ENV,
	DF_EXPOSE,
	DF_FROM,
	DF_HEALTHCHECK,
	DF_LABEL,
	DF_MAINTAINER,
	DF_ONBUILD,
	DF_RUN,
	DF_SHELL,
	DF_STOPSIGNAL,
	DF_USER,
	DF_VOLUME,
	DF_WORKDIR,
};

/* "--name=value" before an instruction's arguments; value NULL for a bare
 * "--name". */
struct df_flag {
	char *name;
	char *value;
};

/* A here-document of BuildKit's syntax ("<<EOF" ... "EOF"). */
struct df_heredoc {
	char *name;  /* the delimiter */
	char *body;  /* the lines between, each with its "\n" ("<<-": leading
			tabs removed) */
	bool expand; /* an unquoted delimiter: variables are expanded */
};

/* One instruction.  args are raw (not expanded, quotes kept) except in
 * JSON form, where they are the array's strings:
 *   RUN CMD ENTRYPOINT: JSON array, or one string (the shell command)
 *   SHELL: the JSON array
 *   HEALTHCHECK: ["NONE"], ["CMD", argv...] or ["CMD-SHELL", command]
 *   COPY ADD: sources then destination; VOLUME EXPOSE: the words
 *   ENV LABEL: key, value, key, value...
 *   ARG: "name" or "name=default" per argument
 *   FROM: the image; WORKDIR USER STOPSIGNAL MAINTAINER: one string */
struct df_instr {
	/* RUN: a heredoc that is the whole command became args[0] (the
	 * script); others were appended to the command for the shell.
	 * COPY/ADD: sources written "<<NAME" are the heredocs of that name. */
	struct df_heredoc *heredocs;
	size_t n_heredocs;
	enum df_cmd cmd;
	int line;   /* the file's line where the instruction starts */
	char *text; /* the instruction as written, continuations joined */
	struct df_flag *flags;
	size_t n_flags;
	bool json;
	char **args;
};

struct df_stage {
	char *name; /* lowercased "AS" name, NULL if none */
	struct df_instr from;
	struct df_instr *instrs;
	size_t n_instrs;
};

struct dockerfile {
	char *path;		    /* for messages */
	char escape;		    /* '\\' or '`' (the escape directive) */
	struct df_instr *meta_args; /* ARG lines before the first FROM */
	size_t n_meta_args;
	struct df_stage *stages;
	size_t n_stages;
};

/* Parses a Containerfile's text.  Errors name the file and line:
 * "Containerfile:7: unknown instruction: FOO". */
int df_parse(const char *path, const char *text, struct dockerfile **out,
	     struct orch_err *e);
void df_free(struct dockerfile *df);
const char *df_cmd_name(enum df_cmd cmd);
/* The flag's value (or "" for a bare flag), NULL when absent. */
const char *df_flag(const struct df_instr *in, const char *name);
/* The heredoc a COPY/ADD source word ("<<NAME") names, or NULL. */
const struct df_heredoc *df_heredoc_of(const struct df_instr *in,
				       const char *word);
/* The stage named name (case-insensitive) or with that index; -1 if none. */
int df_stage_index(const struct dockerfile *df, const char *name);

/* One RUN --mount (BuildKit's syntax, after variable expansion):
 * "type=cache,target=/root/.cache,sharing=locked". */
enum df_mount_type {
	DF_MOUNT_BIND,
	DF_MOUNT_CACHE,
	DF_MOUNT_TMPFS,
	DF_MOUNT_SECRET,
	DF_MOUNT_SSH,
};
enum df_sharing { DF_SHARED, DF_PRIVATE, DF_LOCKED };
struct df_mount {
	enum df_mount_type type;
	char *target; /* absolute, cleaned; secret: default /run/secrets/ID */
	char *source; /* bind: a path in the context or the from; "" = root */
	char *from;   /* bind, cache: a stage or an image */
	char *id;     /* cache: default the target; secret: required */
	enum df_sharing sharing;
	bool rw, required;
	long mode; /* -1: default (cache 0755, secret 0400) */
	long uid, gid;
	int64_t size; /* tmpfs; 0 = default */
};
/* Parses one --mount value; errors name the option ("--mount: ..."). */
int df_mount_parse(const char *spec, struct df_mount *m, struct orch_err *e);
void df_mount_clear(struct df_mount *m);

/* Expands one raw word as docker does: quotes removed, the escape
 * character honoured, $VAR ${VAR} ${VAR:-x} ${VAR-x} ${VAR:+x} ${VAR+x}
 * ${VAR:?msg} ${VAR?msg} replaced from env ("K=V", later entries win). */
int df_expand(const char *word, char escape, char *const *env, char **out,
	      struct orch_err *e);

/* Go durations as HEALTHCHECK takes them: "30s", "1m30s", "500ms". */
int df_duration(const char *s, int64_t *ns);

/* ---- .dockerignore --------------------------------------------------------
 */

struct df_ignore;
/* Parses .dockerignore text (NULL or "" = ignore nothing). */
int df_ignore_parse(const char *text, struct df_ignore **out,
		    struct orch_err *e);
void df_ignore_free(struct df_ignore *ig);
/* Whether path (relative to the context, "/"-separated) is excluded: the
 * last pattern matching it or one of its parents decides ("!" patterns
 * re-include). */
bool df_ignore_match(const struct df_ignore *ig, const char *path);

/* ---- cache keys ------------------------------------------------------------
 */

/* sha256 over the parent key and the step's parts, each length-prefixed
 * so that no two different lists of parts hash alike. */
void build_cache_key(const char *parent, char *const *parts, char out[65]);

/* ---- the build context ----------------------------------------------------
 */

struct build_ctx;
/* Opens a context directory with its .dockerignore. */
int build_ctx_open(const char *dir, struct build_ctx **out, struct orch_err *e);
void build_ctx_free(struct build_ctx *c);
int build_ctx_fd(const struct build_ctx *c);
const struct df_ignore *build_ctx_ignore(const struct build_ctx *c);
const char *build_ctx_dir(const struct build_ctx *c);
/* Whether some pattern is a "!" exception (ignored directories must then
 * still be searched). */
bool df_ignore_has_exceptions(const struct df_ignore *ig);

/* Resolves a COPY source (a path or a wildcard pattern) under rootfd into
 * paths relative to it, symlinks followed.  In a context (context=true)
 * it refuses ".." past the root, symlinks leading out and what
 * .dockerignore excludes; in an image root, links resolve inside it. */
int build_resolve(int rootfd, bool context, const struct df_ignore *ig,
		  const char *src, char ***out, struct orch_err *e);
int build_ctx_resolve(struct build_ctx *c, const char *src, char ***out,
		      struct orch_err *e);
/* A digest of resolved sources' content (names, types, modes, bytes, link
 * targets; not times or owners), after .dockerignore.  Refuses symlinks
 * inside them that point out of the context. */
int build_ctx_digest(struct build_ctx *c, char *const *rels, char out[65],
		     struct orch_err *e);

/* One COPY or ADD, done in the current root (the builder's chrooted
 * child): srcs are resolved paths under src_root. */
struct build_copy {
	int src_root;
	bool context; /* sources from the build context (else a stage) */
	const struct df_ignore *ig;
	char **srcs;
	const char *dest;  /* absolute, no trailing '/' ("/" for the root) */
	bool dest_dir;	   /* written with a trailing '/' */
	bool unpack;	   /* ADD: local tar archives are unpacked */
	const char *chown; /* "user[:group]", NULL = root (context) or kept */
	bool has_chmod;
	mode_t chmod;
};
int build_copy_run(const struct build_copy *op, struct orch_err *e);
/* mkdir -p in the current root; directories created get uid:gid. */
int build_mkdir_p(const char *path, uid_t uid, gid_t gid, struct orch_err *e);
/* "user[:group]" (names or numbers) -> ids, from passwd/group texts. */
int build_lookup_user(const char *spec, const char *passwd, const char *group,
		      uid_t *uid, gid_t *gid, struct orch_err *e);

/* ---- the builder ------------------------------------------------------------
 */

struct build_opts {
	const char *context; /* directory */
	const char *file;    /* NULL = Containerfile, else Dockerfile */
	char **build_args;   /* "K=V" */
	char **labels;	     /* "k=v" added to the image */
	const char *target;  /* stage name, NULL = the last */
	const char *tag;     /* NAME[:TAG] or NULL */
	bool no_cache;
	bool pull;	     /* images the file names (FROM, --from) pulled
				again; else only those the store lacks */
	const char *network; /* "none": RUN steps get only a loopback;
			      * NULL or "default": the build network */
	FILE *log;	     /* progress and RUN output; NULL = stderr */
	char **secrets;	     /* "ID=PATH": what RUN --mount=type=secret
				reads */
	char **contexts;     /* named contexts, "NAME=/DIR" (copied from
				and mounted as the context is) or
				"NAME=docker-image://REF" (an image) */
	char **extra_hosts;  /* "NAME=IP" (or NAME:IP; IP host-gateway, the
				build network's gateway): RUN steps'
				/etc/hosts */
	char **ulimits;	     /* "NAME=SOFT[:HARD]": RUN steps' rlimits */
	char **ssh;	     /* "ID=SOCKET": SSH agents for RUN
				--mount=type=ssh */
};

struct build_result {
	char id[65];
	unsigned steps;	     /* instructions of the stages built */
	unsigned cached;     /* file-changing steps taken from the cache */
	unsigned containers; /* RUN containers started */
};

/* An SSH agent to forward, as docker build --ssh takes it: "default" (the
 * agent of $SSH_AUTH_SOCK) or "ID=SOCKET" (SOCKET made absolute), pushed
 * to *ssh as "ID=SOCKET"; a key file is refused (an agent holds keys:
 * ssh-add them to one). */
int build_ssh_arg(const char *arg, char ***ssh, struct orch_err *e);

/* Builds an image with orch's runtime; on failure nothing is committed
 * and no container, mount or temporary directory is left. */
int build_image(const struct build_opts *o, struct build_result *res,
		struct orch_err *e);

/* ---- the services of a compose project (services.c) ---------------------- */

/* The image a service runs: image:, else the <project>-<service> its
 * build: section produces.  Caller frees. */
char *service_image_ref(const struct project *p, const struct service *s);
/* How `orch build` (and `up --build`) builds a project's services. */
struct svc_build_opts {
	bool no_cache;		 /* or each service's build.no_cache */
	bool pull;		 /* or each service's build.pull */
	bool quiet;		 /* no progress */
	char *const *extra_args; /* "K=V" over each one's build.args */
	char *const *ssh;	 /* "ID=SOCKET" over each one's build.ssh */
};

/* Builds the images of the services (all when services is NULL or empty)
 * that have a build: section, tagged service_image_ref (`orch build`,
 * `orch up --build`), as o (NULL: the files' settings alone) says.
 * Progress goes to stderr. */
/* The value of key in a "K=V" list (NULL when absent); setting replaces
 * it or appends. */
const char *build_kv_get(char *const *v, const char *key);
void build_kv_set(char ***v, const char *key, const char *value);

struct rt_image_config;
/* Applies commit's --change instructions (CMD, ENTRYPOINT, ENV, EXPOSE,
 * LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL, HEALTHCHECK, SHELL) to cfg;
 * an error names the change.  What was applied before an error stays. */
int build_apply_changes(struct rt_image_config *cfg, char *const *changes,
			struct orch_err *e);

int build_service_images(struct project *p, char *const *services,
			 const struct svc_build_opts *o, struct orch_err *e);
/* The same, only for services whose image is not in the store yet (what
 * `orch up` without --build does). */
int build_missing_images(struct project *p, char *const *services,
			 struct orch_err *e);

/* "Built <id> as <tag>: N steps, N cached, N containers run". */
void build_result_print(FILE *log, const struct build_result *res,
			const char *tag);

#endif
