/* What the lifecycle commands share: global options, project loading,
 * reconciliation steps and progress output.  Internal to orchestrator/. */
#ifndef ORCH_CLI_H
#define ORCH_CLI_H

#include "orchestrator/engine/engine.h"
#include "orchestrator/compose/compose.h"
#include "orchestrator/cli/orch.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>

enum cli_ansi { CLI_ANSI_AUTO, CLI_ANSI_NEVER, CLI_ANSI_ALWAYS };

struct cli_globals {
	char **files;
	char *project_name;
	char *project_dir;
	char **env_files;
	char **profiles;
	enum cli_ansi ansi;
	char *progress;
};
extern struct cli_globals cli;

enum {
	CLI_OPT_PROJECT_DIR = 0x1000,
	CLI_OPT_ENV_FILE,
	CLI_OPT_PROFILE,
	CLI_OPT_ANSI,
	CLI_OPT_PROGRESS,
	CLI_OPT_LOCAL = 0x2000, /* commands' own long-only options from here */
};

/* The global options, also accepted after a command. */
#define CLI_GLOBAL_LONGOPTS                                                \
	{"file", required_argument, NULL, 'f'},                            \
		{"project-name", required_argument, NULL, 'p'},            \
		{"project-directory", required_argument, NULL,             \
		 CLI_OPT_PROJECT_DIR},                                     \
		{"env-file", required_argument, NULL, CLI_OPT_ENV_FILE},   \
		{"profile", required_argument, NULL, CLI_OPT_PROFILE},     \
		{"ansi", required_argument, NULL, CLI_OPT_ANSI},           \
		{"progress", required_argument, NULL, CLI_OPT_PROGRESS}
#define CLI_GLOBAL_SHORTOPTS "f:p:"

/* 1 when opt was a global option (and recorded), 0 when not, -1 when its
 * value is bad. */
int cli_global_opt(int opt, const char *arg);
/* Parses the global options before the command; returns the command's
 * index in argv, or -1 on a usage error. */
int cli_parse_globals(int argc, char **argv);
bool cli_color(FILE *f);
bool cli_progress_tty(void);
bool cli_quiet(void);
/* Loads the compose files named by the globals; diagnostics printed.
 * An env_file that cannot be read fails only cli_env_check. */
int cli_load(struct project **out, bool all_profiles);
/* The SERVICE arguments argv[first..argc) as a list (empty when none);
 * NULL, said, when one is not a service of m. */
char **cli_service_args(const struct project *m, int argc, char **argv,
			int first);
/* For commands that run services (NULL = all), and with_deps what they
 * depend on: fails, with the errors printed, when an env_file of theirs
 * cannot be read. */
int cli_env_check(const struct project *m, char *const *services,
		  bool with_deps);
/* The project a command is about: -p, else the compose file's, else
 * COMPOSE_PROJECT_NAME.  *model (when asked for) is the loaded model or
 * NULL when no file could be loaded. */
int cli_project_name(char **name, struct project **model);

/* Opens the project the command names (without creating it); -ENOENT
 * when it is not up.  model may be NULL. */
int cli_open(struct pstate *ps, struct project **model, struct orch_err *e);
/* A command's whole-number option (opt as the user writes it: "--timeout")
 * in [min, max] into *out; prints what is wrong and returns -1 when val is
 * not one. */
/* The largest --timeout and --wait-timeout, in seconds (about 30 years). */
#define CLI_TIMEOUT_MAX 1000000000LL
int cli_opt_num(const char *cmd, const char *opt, const char *val,
		long long min, long long max, long long *out);
/* Prints "Usage: orch CMD USAGE" and returns 2. */
int cli_usage(const char *cmd, const char *usage);
/* Prints the error and returns 1. */
int cli_fail(const struct orch_err *e);

/* ---- cmd_logs.c: printing and following log files ------------------------ */

struct logs_opts {
	bool follow, timestamps, no_prefix;
	int64_t tail; /* lines per container, -1 = all */
	const char *since, *until;
};
/* Prints the logs of the named containers; following stops on SIGINT or
 * when stop(arg) returns non-zero (checked a few times a second). */
int logs_run(struct pstate *ps, char **names, const struct logs_opts *o,
	     int (*stop)(struct pstate *ps, void *arg), void *arg);
/* Set by SIGINT/SIGTERM while logs_run follows. */
extern volatile sig_atomic_t logs_interrupted;

/* ---- record.c: a service -> its container record ---------------------- */

/* The record shared by all replicas of s (image defaults overridden by
 * the service) with its config hash and compose's labels.  Fails, with
 * the file position, when the image or the command is missing. */
int record_template(const struct project *m, const struct service *s,
		    json_t **out, struct orch_err *e);
/* Whether cmd resolves (PATH from env) in the image layers. */
bool image_has_command(char *const *lowers, char *const *env,
		       const char *cmd);

/* ---- reconcile.c: turning the model into containers and back ------------ */

struct up_opts {
	bool detach, wait, build, force_recreate, no_recreate, no_deps,
		remove_orphans, no_start, quiet_pull;
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

/* The link-only policy (links.c): whether network n lets every pair
 * talk (enable_icc), whether s is on network net_key, whether a may open
 * connections to b (links or depends_on), and the warnings of up for
 * services that name one they are not linked to. */
bool network_icc(const struct network *n);
bool service_on(const struct service *s, const char *net_key);
bool link_allowed(const struct service *a, const char *b);
void links_warn(const struct project *m);
/* Whether the file asks for compose's open networks (x-orch:
 * {open_networks: true}). */
bool project_open_networks(const struct project *m);
/* Whether this project's networks were made open (its state says so). */
bool pstate_open_networks(struct pstate *ps);

/* develop.watch (watch.c): follows the selected services' watch rules
 * (all services' when services is NULL or empty) until SIGINT/SIGTERM. */
int watch_project(struct project *m, char *const *services,
		  struct orch_err *e);

/* Lifecycle hooks (hooks.c): a service's hooks as a container record
 * keeps them, and running those of kind ("post_start", "pre_stop") in
 * the named containers that are running, in order; the first failure
 * stops them. */
json_t *hooks_json(const struct m_hook *h, size_t n);
int hooks_run(struct pstate *ps, char *const *names, const char *kind,
	      struct orch_err *e);
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
/* Removes what ctr_setup made (endpoints on the project's own networks
 * only when detach: they go with the networks otherwise); the first
 * failure is left in e, teardown goes on. */
void ctr_teardown(struct pstate *ps, json_t *rec, bool detach,
		  bool anon_volumes, struct orch_err *e);
void netns_remove(const char *path);
int check_networks(const struct project *m, struct orch_err *e);
struct netd_network_req;
/* Whether a service of m (not in a network_mode) joins network key. */
bool network_used(const struct project *m, const char *key);
/* netd's request for network n of m; returns the labels it points to, for
 * the caller to free. */
char **network_req(const struct project *m, const struct network *n,
		   struct netd_network_req *q);
int check_names(struct pstate *ps, json_t *new_recs, struct orch_err *e);
int check_ports(struct pstate *ps, json_t *new_recs, struct orch_err *e);

struct oneoff_opts {
	char **cmd, **env;
	const char *user, *workdir, *name, *entrypoint;
	bool service_ports;
};
/* A one-off container of s for `run`: recorded in the state (oneoff),
 * namespace, endpoints and /etc files set up, not started. */
int reconcile_oneoff(struct pstate *ps, struct project *m,
		     const struct service *s, const struct oneoff_opts *o,
		     json_t **rec, struct orch_err *e);

/* Progress lines: " Container web-1  Started". */
void progress(const char *kind, const char *name, const char *what);

#endif
