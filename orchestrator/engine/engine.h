/* orchestrator/engine — turning a project model into containers and back,
 * and this folder's one public header: per-project state (state.json, its
 * lock), the planner, pre-checks, reconcile (up, wait, stop, remove, down,
 * one-off containers), container records and the runtime specs made from
 * them, container networking through netd, lifecycle hooks, and the
 * client of the supervisor's control socket. */
#ifndef ORCH_ENGINE_H
#define ORCH_ENGINE_H

#include "common/common.h"
#include "orchestrator/compose/compose.h"

#include <jansson.h>

/* The label docker puts on anonymous volumes. */
#define ANON_LABEL "com.docker.volume.anonymous"

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
	/* The project's user-namespace id range, once this process took it
	 * (its lock keeps it the project's until down gives it back). */
	bool idrange_held;
	uint32_t idrange_base;
};

/* Project names as compose normalizes them: [a-z0-9][a-z0-9_-]*. */
bool pstate_name_valid(const char *name);
/* Opens (creating the directory when create) and locks the project; two
 * orch commands on one project serialize here.  -ENOENT when !create and
 * the project has no state. */
int pstate_open(const char *name, bool create, struct pstate *p,
		 struct orch_err *e);
/* The project's state as last written, without its lock: for what only
 * looks (ps, logs, exec), which an up waiting for a dependency to be
 * healthy must not hold up.  The state file is replaced whole, never
 * written in place. */
int pstate_read(const char *name, struct pstate *p, struct orch_err *e);
void pstate_close(struct pstate *p);
/* Refuses a project held by another user (unless root asks) or, when
 * workdir is set, recorded for another working directory. */
int pstate_check_owner(const struct pstate *p, uid_t uid,
			const char *workdir, struct orch_err *e);
/* Records owner and working directory on a fresh state. */
void pstate_claim(struct pstate *p, uid_t uid, const char *workdir,
		   char *const *config_files);
int pstate_save(struct pstate *p, struct orch_err *e);
/* The texts of the container records a save wrote, by position. */
struct pstate_kept {
	json_t **rec;
	char **txt;
	size_t n;
};
/* pstate_save for a state whose containers only grow (at the end), each
 * record left as it is once saved, as up's levels make them: each
 * record is written out once, its text kept in k for the next saves
 * (a 200-service up saves some 30 times). */
int pstate_save_kept(struct pstate *p, struct pstate_kept *k,
		     struct orch_err *e);
void pstate_kept_clear(struct pstate_kept *k);
/* <dir>/<rel>; caller frees. */
char *pstate_path(const struct pstate *p, const char *rel);
/* Removes the project's directory (and lock file): nothing of it stays.
 * Its user-namespace id range, if it holds one, goes back to the pool
 * first; when that fails the directory stays, for the next down. */
int pstate_remove(struct pstate *p, struct orch_err *e);
/* Names of the projects with a state directory on this host. */
int pstate_list(char ***names, struct orch_err *e);

/* Container records in the state. */
json_t *state_containers(struct pstate *p);
json_t *state_container_find(struct pstate *p, const char *name_or_id);
/* Anonymous volumes ({target: volume}) handed over to the container rec
 * (by its service and number) are kept in the state until an up that
 * made it succeeds: an up that fails after the container they came from
 * is gone leaves them for the next one.  drop: whether there were any. */
void state_anon_keep(struct pstate *p, json_t *rec, json_t *targets);
json_t *state_anon_kept(struct pstate *p, json_t *rec);
bool state_anon_drop(struct pstate *p, json_t *rec);
/* Unambiguous prefix of an id, or exact name; -ENOENT, -EEXIST (ambiguous). */
int state_container_lookup(struct pstate *p, const char *ref, json_t **out,
			   struct orch_err *e);
const char *jstr(const json_t *o, const char *key); /* NULL when absent */
int64_t jint(const json_t *o, const char *key, int64_t dflt);
bool jbool(const json_t *o, const char *key);
char **jstrv(const json_t *o, const char *key); /* copy; NULL when absent */
json_t *strv_json(char *const *v); /* a JSON array of v's strings (of none
				      when NULL) */

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
/* A copy of spec for a container made here (a one-off), with the
 * processes whose PID and IPC namespaces it shares (pid_of, ipc_of:
 * containers of ps by name) as running now; NULL and e when one is not
 * running. */
json_t *ctrspec_joined(struct pstate *ps, const json_t *spec,
		       struct orch_err *e);
void ctrspec_clear(struct rt_spec *s);

/* ======================================================================
 * The supervisor's control socket, control.c
 * ====================================================================== */

/* Starts the project's supervisor when it does not answer; waits until its
 * socket accepts. */
int supervisor_ensure(struct pstate *p, struct orch_err *e);
/* The same in two halves: spawn starts it (*ready_fd is -1 when it was
 * running already), wait waits until its socket accepts and closes
 * ready_fd. */
int supervisor_spawn(struct pstate *p, int *ready_fd, struct orch_err *e);
int supervisor_wait(struct pstate *p, int ready_fd, struct orch_err *e);
/* Sends one request and reads one reply (JSON objects).  A reply with
 * "error" becomes an error return. */
int control_call(const struct pstate *p, json_t *req, json_t **reply,
		 struct orch_err *e);
/* The reply half: reads the reply to the request sent on fd (by
 * control_open), and closes fd. */
int control_reply(const struct pstate *p, int fd, json_t **reply,
		  struct orch_err *e);
/* Opens a connection and sends a request; the caller reads the stream of
 * JSON lines (events, logs). */
int control_open(const struct pstate *p, json_t *req, int *fd,
		 struct orch_err *e);
bool supervisor_alive(const struct pstate *p);

/* ======================================================================
 * Containers: records, reconciliation, networks, hooks
 * ====================================================================== */

/* ---- record.c: a service -> its container record ---------------------- */

/* The record shared by all replicas of s (image defaults overridden by
 * the service) with its config hash and compose's labels.  Fails, with
 * the file position, when the image or the command is missing. */
int record_template(const struct project *m, const struct service *s,
		    json_t **out, struct orch_err *e);
/* Whether cmd resolves (PATH from env) in the image layers. */
bool image_has_command(char *const *lowers, char *const *env,
		       const char *cmd);

/* ---- reconcile.c, teardown.c: the model into containers and back -------- */

struct up_opts {
	bool detach, wait, build, force_recreate, no_recreate, no_deps,
		remove_orphans, no_start, quiet_pull;
	/* A recreated container gets fresh anonymous volumes (-V), not
	 * those of the container it replaces. */
	bool renew_anon_volumes;
	/* compose's semantics: every service may connect to every other on
	 * the networks this up creates (up --open-networks, or x-orch:
	 * {open_networks: true} in the file) */
	bool open_networks;
	int64_t wait_timeout_ms;
	int64_t timeout_ms; /* -t: stop grace for recreations, -1 = service's */
	char **services;
	char **scale; /* "svc=N" */
};

/* Converges the host to the model for the selected services.  On error
 * what this call created is removed again. */
int reconcile_up(struct project *m, const struct up_opts *o,
		 struct pstate *ps, struct orch_err *e);
/* Waits until the containers of the selected services are running (and
 * healthy when they have a health check), or exited 0 for one-shots. */
int reconcile_wait(struct pstate *ps, char **services, int64_t timeout_ms,
		   struct orch_err *e);

struct down_opts {
	bool volumes, remove_orphans;
	int64_t timeout_ms; /* -1 = each service's grace period */
};
/* Removes everything of the project; "already gone" is success. */
int reconcile_down(struct pstate *ps, const struct down_opts *o,
		   struct orch_err *e);
/* Removes the volumes labelled as the project's: all of them, or only
 * anonymous ones; the first error goes to *first (when it has none). */
void remove_project_volumes(const char *project, bool named,
			    struct orch_err *first);
/* Stops (dependents first, one dependency level at a time, in parallel
 * within a level) the named containers, all when names is NULL. */
int reconcile_stop(struct pstate *ps, char **names, int64_t timeout_ms,
		   const char *op, struct orch_err *e);
/* Removes containers (stopped first) with their network namespace,
 * endpoints and anonymous volumes, and drops them from the state. */
int reconcile_remove(struct pstate *ps, char **names, bool anon_volumes,
		     struct orch_err *e);
/* Starts recorded containers under the supervisor (started if need be),
 * then runs their post_start hooks. */
int reconcile_start(struct pstate *ps, char **names, struct orch_err *e);

/* Whether this project's networks were made open (its state says so). */
bool pstate_open_networks(struct pstate *ps);

/* Lifecycle hooks (hooks.c): a service's hooks as a container record
 * keeps them, and running those of kind ("post_start", "pre_stop") in
 * the named containers that are running, in order; the first failure
 * stops them. */
json_t *hooks_json(const struct m_hook *h, size_t n);
int hooks_run(struct pstate *ps, char *const *names, const char *kind,
	      struct orch_err *e);
/* The hook h (a watch rule's exec, kind naming it) in each of the named
 * containers that is running; the first failure stops. */
int hook_exec(struct pstate *ps, char *const *names, const struct m_hook *h,
	      const char *kind, struct orch_err *e);
/* A service's pre_start hooks, each in a one-off container of the
 * service run to its end and removed; the first failure stops them. */
int hooks_pre_start(struct pstate *ps, struct project *m,
		    const struct service *s, struct orch_err *e);
/* Container names of services (all when services is NULL/empty);
 * *unknown (may be NULL) gets the first name that is neither a service of
 * m (may be NULL) nor a service or container of the project. */
char **containers_of(struct pstate *ps, const struct project *m,
		     char **services, const char **unknown);
/* The supervisor's view of every container ("containers" array). */
int status_get(struct pstate *ps, json_t **containers, struct orch_err *e);
/* The object of array whose "name" is name (containers of the status or
 * the state, networks, volumes), or NULL. */
json_t *json_find_named(json_t *array, const char *name);

/* ---- ctrnet.c / precheck.c ------------------------------------------------- */

struct netd_conn;
/* The connection to netd of this command (netd started when needed). */
int netd_get(struct netd_conn **c, struct orch_err *e);
/* Gives a fresh record its network namespace, endpoints, ports, /etc
 * files and volumes, recording each in rec so that ctr_teardown undoes
 * exactly that. */
int ctr_setup(struct pstate *ps, const struct project *m, json_t *rec,
	      struct orch_err *e);
struct rt_ids;
/* Adds to mounts the secrets and configs of rec's service (ctrfiles.c),
 * those not bound from their file written for the container, whose ids
 * ids maps. */
int ctr_files(struct pstate *ps, const struct project *m, json_t *rec,
	      const struct rt_ids *ids, json_t *mounts, struct orch_err *e);
/* Whether the secrets and configs of the containers of new_recs can be
 * had (before up makes anything). */
int check_files(const struct project *m, json_t *new_recs, struct orch_err *e);
/* The project's user-namespace id range, taken (and recorded on the disk)
 * for its first remapped container, or ahead by up. */
int ctr_idrange(struct pstate *ps, struct orch_err *e);
/* Removes what ctr_setup made (endpoints on the project's own networks
 * only when detach: they go with the networks otherwise); the first
 * failure is left in e, teardown goes on. */
void ctr_teardown(struct pstate *ps, json_t *rec, bool detach,
		  bool anon_volumes, struct orch_err *e);
void netns_remove(const char *path);
int check_networks(const struct project *m, struct orch_err *e);
/* The cpuset of each service of new_recs names CPUs this machine has
 * (online). */
int check_cpusets(const struct project *m, json_t *new_recs,
		  struct orch_err *e);
/* Warns (on stderr, at each key) of what the services of the containers
 * of new_recs ask for that up does not do. */
void warn_unapplied(const struct project *m, json_t *new_recs);
int check_rootless(const struct project *m, struct orch_err *e);
struct netd_network_req;
/* Whether a service of m (not in a network_mode) joins network key. */
bool network_used(const struct project *m, const char *key);
/* netd's request for network n of m; its labels are the caller's, to
 * free with network_req_clear (or _cleanup_network_req_). */
void network_req(const struct project *m, const struct network *n,
		 struct netd_network_req *q);
void network_req_clear(struct netd_network_req *q);
#define _cleanup_network_req_ __attribute__((cleanup(network_req_clear)))
int check_names(struct pstate *ps, json_t *new_recs, struct orch_err *e);
int check_ports(struct pstate *ps, json_t *new_recs, struct orch_err *e);

struct oneoff_opts {
	char **cmd, **env;
	const char *user, *workdir, *name, *entrypoint;
	bool service_ports;
	bool use_aliases; /* resolvable by its service's name and aliases */
};
/* A one-off container of s for `run`: recorded in the state (oneoff),
 * namespace, endpoints and /etc files set up, not started. */
int reconcile_oneoff(struct pstate *ps, struct project *m,
		     const struct service *s, const struct oneoff_opts *o,
		     json_t **rec, struct orch_err *e);

/* Progress lines (" Container web-1  Started"), shown as the command
 * line says (--progress, --ansi): plain lines, a terminal's check marks
 * with the time since the start, or nothing. */
enum progress_mode { PROGRESS_PLAIN, PROGRESS_TTY, PROGRESS_QUIET };
extern enum progress_mode progress_mode;
void progress(const char *kind, const char *name, const char *what);

#endif
