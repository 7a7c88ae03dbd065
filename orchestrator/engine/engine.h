/* The lifecycle side of the orchestrator: per-project state, the planner,
 * the supervisor and what the lifecycle commands share.  Internal to
 * orchestrator/. */
#ifndef ORCH_LIFECYCLE_H
#define ORCH_LIFECYCLE_H

#include "common/common.h"

#include <jansson.h>

/* ======================================================================
 * Project state ($ORCH_RUN/projects/<name>/), state.c
 * ====================================================================== */

/* An open project: its directory, the lock held for the lifetime of the
 * handle, and the recorded state (state.json).
 *
 * state.json: {"version":1, "name", "owner_uid", "working_dir",
 *   "config_files":[...], "created",
 *   "networks":[{"key","name","id","gateway","subnet","external"}],
 *   "volumes":[{"key","name","external","anonymous"}],
 *   "containers":[container record, see below]}
 *
 * A container record: {"id","name","service","number","hash","image",
 *   "command","created","netns","etc_dir","spec":{...ctrspec...},
 *   "ports":[{"URL","TargetPort","PublishedPort","Protocol"}],
 *   "networks":[{"network","endpoint","address"}],
 *   "restart","stop_signal","stop_grace_ms","healthcheck":{...},
 *   "log_max_size","log_max_files","depends_on":[...],"labels":{...}} */
struct pstate {
	char *name;
	char *dir;
	int lock_fd;
	json_t *state;
	bool exists; /* state.json was there when opened */
};

/* Project names as compose normalizes them: [a-z0-9][a-z0-9_-]*. */
bool pstate_name_valid(const char *name);
/* Opens (creating the directory when create) and locks the project; two
 * orch commands on one project serialize here.  -ENOENT when !create and
 * the project has no state. */
int pstate_open(const char *name, bool create, struct pstate *p,
		 struct orch_err *e);
void pstate_close(struct pstate *p);
/* Refuses a project held by another user (unless root asks) or, when
 * workdir is set, recorded for another working directory. */
int pstate_check_owner(const struct pstate *p, uid_t uid,
			const char *workdir, struct orch_err *e);
/* Records owner and working directory on a fresh state. */
void pstate_claim(struct pstate *p, uid_t uid, const char *workdir,
		   char *const *config_files);
int pstate_save(struct pstate *p, struct orch_err *e);
/* <dir>/<rel>; caller frees. */
char *pstate_path(const struct pstate *p, const char *rel);
/* Removes the project's directory (and lock file): nothing of it stays. */
int pstate_remove(struct pstate *p, struct orch_err *e);
/* Names of the projects with a state directory on this host. */
int pstate_list(char ***names, struct orch_err *e);

/* Container records in the state. */
json_t *state_containers(struct pstate *p);
json_t *state_container_find(struct pstate *p, const char *name_or_id);
/* Unambiguous prefix of an id, or exact name; -ENOENT, -EEXIST (ambiguous). */
int state_container_lookup(struct pstate *p, const char *ref, json_t **out,
			   struct orch_err *e);
const char *jstr(const json_t *o, const char *key); /* NULL when absent */
int64_t jint(const json_t *o, const char *key, int64_t dflt);
bool jbool(const json_t *o, const char *key);
char **jstrv(const json_t *o, const char *key); /* copy; NULL when absent */

/* ======================================================================
 * Restart policy and backoff (pure), state.c
 * ====================================================================== */

enum restart_kind {
	RESTART_NO,
	RESTART_ALWAYS,
	RESTART_ON_FAILURE,
	RESTART_UNLESS_STOPPED,
};
struct restart_policy {
	enum restart_kind kind;
	int max_retries; /* on-failure:N, 0 = unlimited */
};
/* "no", "always", "on-failure[:N]", "unless-stopped". */
int restart_policy_parse(const char *s, struct restart_policy *rp,
			 struct orch_err *e);
/* Whether a container that exited with code (exit_code < 0: unknown) and
 * has been restarted `restarts` times is restarted again.  user_stopped:
 * it was stopped by a command, never restarted. */
bool restart_wanted(const struct restart_policy *rp, int exit_code,
		    int restarts, bool user_stopped);

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define BACKOFF_RESET_MS 10000
/* The delay before the next restart: 100 ms doubling to 30 s; a container
 * that ran for 10 s or more starts again from 100 ms.  *cur is the delay
 * used last time (0 = none yet); updated. */
int64_t backoff_next(int64_t *cur, int64_t ran_ms);

/* ======================================================================
 * Planner (pure), plan.c
 * ====================================================================== */

struct plan_service {
	const char *name;
	char **deps;	  /* services it depends on (depends_on, links) */
	int scale;	  /* desired replicas */
	const char *hash; /* config hash */
};

struct plan_observed {
	const char *name; /* container name */
	const char *service;
	int number;
	const char *hash;
	bool running;
};

struct plan_opts {
	bool force_recreate, no_recreate, no_deps, remove_orphans;
	char **services; /* selected services; NULL/empty = all */
};

enum plan_op {
	PLAN_REMOVE,   /* orphan or scaled down: stop and remove */
	PLAN_RECREATE, /* config changed: remove the old one, create anew */
	PLAN_CREATE,   /* missing */
	PLAN_START,    /* exists, unchanged, not running */
	PLAN_KEEP,     /* exists, unchanged, running */
};

struct plan_action {
	enum plan_op op;
	const char *service; /* NULL for orphans (see name) */
	int number;
	const char *name; /* the existing container, NULL for CREATE */
	int level;	  /* dependency level: 0 = depends on nothing */
};

struct plan {
	struct plan_action *actions; /* removals first, then by level */
	size_t n;
	int levels;
};

/* Dependency levels of services: level[i] = 1 + max(level of deps).
 * Fails with the cycle or the unknown dependency named. */
int plan_levels(const struct plan_service *svcs, size_t n, int *level,
		struct orch_err *e);
int plan_compute(const struct plan_service *svcs, size_t n_svcs,
		 const struct plan_observed *obs, size_t n_obs,
		 const struct plan_opts *o, struct plan *out,
		 struct orch_err *e);
void plan_free(struct plan *p);
const char *plan_op_name(enum plan_op op);

/* ======================================================================
 * Container spec records <-> runtime specs, ctrspec.c
 * ====================================================================== */

struct rt_spec;
/* Fills s (after rt_spec_init) from a record's "spec" object; the strings
 * are owned by the JSON.  ctrspec_clear frees only the arrays. */
int ctrspec_load(const json_t *spec, struct rt_spec *s, struct orch_err *e);
void ctrspec_clear(struct rt_spec *s);

/* ======================================================================
 * Supervisor and its control socket, supervise.c / control.c
 * ====================================================================== */

/* Runs the supervisor of a project in this process (never returns but by
 * exit status); the hidden command `orch __supervise NAME`. */
int supervise_main(const char *project);
/* Starts the project's supervisor when it does not answer; waits until its
 * socket accepts. */
int supervisor_ensure(struct pstate *p, struct orch_err *e);
/* Sends one request and reads one reply (JSON objects).  A reply with
 * "error" becomes an error return. */
int control_call(const struct pstate *p, json_t *req, json_t **reply,
		 struct orch_err *e);
/* Opens a connection and sends a request; the caller reads the stream of
 * JSON lines (events, logs). */
int control_open(const struct pstate *p, json_t *req, int *fd,
		 struct orch_err *e);
bool supervisor_alive(const struct pstate *p);

#endif
