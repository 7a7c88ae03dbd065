/* Private to orchestrator/build/: what the builder's files share (builder.c
 * runs the stages and owns the cache and the file-changing step's
 * container; build_run.c is RUN and its mounts; build_steps.c the other
 * instructions). */
#ifndef ORCH_BUILD_BUILDER_IMPL_H
#define ORCH_BUILD_BUILDER_IMPL_H

#include "orchestrator/build/build.h"
#include "runtime/runtime.h"

#define DEFAULT_PATH                                                           \
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct stage_state {
	bool needed, done;
	char **layers; /* diff_ids, bottom first */
	struct rt_image_config cfg;
	char key[65];
	char **args; /* ARG values declared in the stage, "K=V" */
	bool cmd_set;
};

/* A named context (build_opts.contexts): a directory (ctx) or an image
 * (image: the reference after docker-image://). */
struct named_ctx {
	char *name;
	struct build_ctx *ctx;
	char *image;
};

struct builder {
	const struct build_opts *o;
	struct dockerfile *df;
	struct build_ctx *ctx;
	char **meta; /* global ARG values, "K=V" */
	struct stage_state *st;
	char *tmp;   /* private scratch directory of this build */
	char *empty; /* an empty directory: the root of scratch */
	FILE *log;
	unsigned step, n_steps;
	struct build_result *res;
	/* The build network, set up at the first RUN that wants it. */
	struct netd_conn *netd;
	char *resolv; /* resolv.conf naming the network's DNS */
	char *gateway; /* the build network's gateway (host-gateway) */
	bool net_tried;
	char *hosts; /* RUN steps' /etc/hosts, made at the first */
	struct rt_rlimit *rlimits; /* o->ulimits */
	size_t n_rlimits;
	struct ssh_relay *ssh; /* the ssh mounts' sockets (build_ssh.c) */
	/* RUN steps run remapped to the builder's id range from here (0:
	 * not remapped): their uppers hold its ids.  Known once build_ids
	 * ran. */
	uint32_t id_base;
	bool ids_known;
	char **pulled; /* images pulled by this build (--pull: once each) */
	struct named_ctx *named;
	size_t n_named;
};

/* The named context called name, NULL if none; a stage of that name
 * comes first (the callers look for one before). */
const struct named_ctx *build_named(const struct builder *b, const char *name);

/* The image ref (a FROM, COPY --from or RUN --mount from that is no
 * stage), pulled from its registry first when the store lacks it, or
 * with --pull at its first use in the build when it came from one, as
 * docker build does. */
int build_base_image(struct builder *b, const char *ref, struct rt_image **out,
		     struct orch_err *e);

/* A socket of the builder's (in b->tmp) that relays each connection to
 * the agent's socket, owned by uid:gid (as the step sees them) with mode;
 * *path stays the builder's.  One per agent and owner, made once. */
int build_ssh_sock(struct builder *b, const char *agent, uid_t uid, gid_t gid,
		   mode_t mode, const char **path, struct orch_err *e);
/* Ends the relay and closes its sockets (their files go with b->tmp). */
void build_ssh_stop(struct builder *b);

/* Sets b->id_base: the builder's range (".build") when containers are
 * remapped, else 0. */
int build_ids(struct builder *b, struct orch_err *e);

/* What a step does in its fresh upper directory. */
struct step_job {
	enum { JOB_RUN, JOB_FS } kind;
	/* JOB_RUN */
	char **argv, **env;
	const char *workdir;
	uid_t uid;
	gid_t gid;
	bool network;
	struct rt_mount *mounts; /* RUN --mount */
	size_t n_mounts;
	/* Paths (relative, deepest first) that the mounts' targets add to
	 * the image only as mount points: removed from the layer after. */
	char **mount_points;
	/* JOB_FS: mkdir, then copy (if copy.dest) */
	const char *mkdir;
	struct build_copy copy;
	char **from_layers; /* COPY --from: the source's layers */
	bool from_other;    /* sources come from from_layers, not context */
	char **raw_srcs;    /* unresolved, for --from (resolved in there) */
};

/* ---- builder.c: helpers, the file-changing step ------------------------ */

/* word with $VAR and ${VAR...} expanded from env; errors name the
 * instruction. */
int build_expand(struct builder *b, const struct df_instr *in, char *const *env,
		 const char *word, char **out, struct orch_err *e);
/* Prefixes e with the instruction's file, line and text; returns -1. */
int instr_err(struct builder *b, const struct df_instr *in, struct orch_err *e);
/* Layer directories of layers, uppermost first. */
char **build_lowers(struct builder *b, char *const *layers);
int build_mount_overlay(const char *target, char *const *lowers,
			const char *upper, const char *work,
			struct orch_err *e);
/* Runs job over the stage's layers in a fresh upper directory that
 * becomes the step's layer (cached by the key of parts). */
int file_step(struct builder *b, struct stage_state *s, char *const *parts,
	      struct step_job *job, struct orch_err *e);
/* A regular file of the stage's layers (rel to its root), or NULL. */
char *stage_file(struct builder *b, struct stage_state *s, const char *rel);

/* ---- build_run.c, build_steps.c: the instructions ------------------------ */

int do_run(struct builder *b, struct stage_state *s, const struct df_instr *in,
	   struct orch_err *e);
int do_workdir(struct builder *b, struct stage_state *s,
	       const struct df_instr *in, char *const *env, struct orch_err *e);
int do_copy(struct builder *b, struct stage_state *s, const struct df_instr *in,
	    char *const *env, struct orch_err *e);
/* ARG: declares into *into (the stage's or the global list). */
int do_arg(struct builder *b, struct stage_state *s, const struct df_instr *in,
	   char *const *env, char ***into, struct orch_err *e);
/* The steps that change only the config (ENV, LABEL, CMD, USER...). */
int do_meta(struct builder *b, struct stage_state *s, const struct df_instr *in,
	    char *const *env, struct orch_err *e);

#endif
