/* orchestrator/cli — the `orch` command line, and this folder's one public
 * header (main.c's): the command table, the global options (-f, -p,
 * --project-directory, --env-file, --profile, --ansi, --progress), project
 * loading and what the command families share. */
#ifndef ORCH_CLI_H
#define ORCH_CLI_H

#include "orchestrator/build/build.h"
#include "orchestrator/compose/compose.h"
#include "orchestrator/engine/engine.h"
#include "orchestrator/supervisor/supervisor.h"

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

/* For a user without privileges (rootless.c): the user's state
 * directories ($ORCH_RUN, $ORCH_ROOT, netd's socket, when not set), then
 * the user's namespaces and netd's cgroup.  Nothing for root. */
int cli_rootless_setup(struct orch_err *e);
/* After every command: a rootless orch with no project left, and no other
 * command of the user running, stops the holder of its namespaces and
 * gives netd's cgroup back, so that nothing of the user's remains. */
void cli_rootless_done(void);

/* 1 when opt was a global option (and recorded), 0 when not, -1 when its
 * value is bad. */
int cli_global_opt(int opt, const char *arg);
/* getopt_long over a command's own options and the global ones, which it
 * records: the next option of the command's own, -1 at the end, or
 * CLI_OPT_BAD when a global option's value is bad (said). */
#define CLI_OPT_BAD (-2)
int cli_getopt(int argc, char **argv, const char *shortopts,
	       const struct option *lopts);
/* The same, the short options in own being the command's even where a
 * global one has that letter (run's -p is --publish, as compose's). */
int cli_getopt_own(int argc, char **argv, const char *shortopts,
		   const struct option *lopts, const char *own);
/* Parses the global options before the command; returns the command's
 * index in argv, or -1 on a usage error. */
int cli_parse_globals(int argc, char **argv);
bool cli_color(FILE *f);
bool cli_progress_tty(void);
bool cli_quiet(void);
/* Gives the engine's progress lines the mode the options ask for. */
void cli_progress_apply(void);
/* Loads the compose files named by the globals; diagnostics printed.
 * An env_file that cannot be read fails only cli_env_check. */
int cli_load(struct project **out, bool all_profiles);
/* The same with a document merged after the files (compose_opts.extra). */
int cli_load_with(struct project **out, bool all_profiles, const char *extra,
		  const char *extra_name);
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
/* The same without the project's lock, for a command that only looks
 * (pstate_read). */
int cli_read(struct pstate *ps, struct project **model, struct orch_err *e);
/* A command's whole-number option (opt as the user writes it: "--timeout")
 * in [min, max] into *out; prints what is wrong and returns -1 when val is
 * not one. */
/* The largest --timeout and --wait-timeout, in seconds (about 30 years). */
#define CLI_TIMEOUT_MAX 1000000000LL
int cli_opt_num(const char *cmd, const char *opt, const char *val,
		long long min, long long max, long long *out);
/* A command's --pull: always, missing or never; else prints what is
 * wrong and returns -1. */
int cli_opt_pull(const char *cmd, const char *val);
/* A flag's optional value (--pause, --pause=false): true when absent;
 * else prints what is wrong and returns -1. */
int cli_opt_bool(const char *cmd, const char *opt, const char *val,
		 bool *out);
/* Prints "Usage: orch CMD USAGE" and returns 2. */
int cli_usage(const char *cmd, const char *usage);
/* Prints the error and returns 1. */
int cli_fail(const struct orch_err *e);
/* The record of container number index of service svc when it runs
 * (its init's pid in *pid), else NULL, said on stderr. */
json_t *cli_running(struct pstate *ps, const char *svc, long long index,
		    pid_t *pid);

/* ---- cmd_logs.c: printing and following log files ------------------------ */

struct logs_opts {
	bool follow, timestamps, no_prefix;
	bool own_signals; /* SIGINT and SIGTERM are the caller's */
	int64_t tail; /* lines per container, -1 = all */
	const char *since, *until;
};
/* Prints the logs of the named containers; following stops on SIGINT or
 * when stop(arg) returns non-zero (checked a few times a second). */
int logs_run(struct pstate *ps, char **names, const struct logs_opts *o,
	     int (*stop)(struct pstate *ps, void *arg), void *arg);
/* Set by SIGINT/SIGTERM while logs_run follows. */
extern volatile sig_atomic_t logs_interrupted;

/* develop.watch (watch.c): follows the selected services' watch rules
 * (all services' when services is NULL or empty) until SIGINT/SIGTERM. */
int watch_project(struct project *m, char *const *services,
		  struct orch_err *e);

/* ---- commands ------------------------------------------------------------ */

/* A subcommand: argv[0] is the command's name; returns the exit code. */
struct orch_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* --format TEMPLATE (format.c): rows (JSON objects) printed through a
 * Go template ({{.Field}}, {{json .Field}}, {{json .}}; "table ..."
 * adds a header and aligns the columns).  format_row renders one (the
 * header's names when header). */
int format_row(const char *tmpl, json_t *row, bool header, struct strbuf *out,
	       struct orch_err *e);
int format_print(const char *fmt, json_t *rows, struct orch_err *e);

int cmd_version(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_volume(int argc, char **argv);
int cmd_volumes(int argc, char **argv);
int cmd_network(int argc, char **argv);

/* Lifecycle commands (cmd_up.c, cmd_down.c, cmd_ps.c, cmd_logs.c,
 * cmd_exec.c, cmd_ctl.c). */
int cmd_up(int argc, char **argv);
int cmd_down(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_restart(int argc, char **argv);
int cmd_kill(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_cp(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_scale(int argc, char **argv);
int cmd_unpause(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_port(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_stats(int argc, char **argv);
/* Builds (cmd_build.c): `orch image build`, `orch build`. */
int cmd_image_build(int argc, char **argv);
int cmd_image_pull(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_image_push(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_links(int argc, char **argv);
int cmd_login(int argc, char **argv);
int cmd_logout(int argc, char **argv);
int cmd_build(int argc, char **argv);
/* Pulls (cmd_pull.c): the images of the selected services (none: all)
 * that their pull_policy, or policy when given ("always", "missing",
 * "never"), says to pull, in parallel; fails (after all have finished)
 * when one failed, unless ignore_failures. */
struct pull_request {
	char *const *services;
	bool with_deps; /* and the services they depend on */
	const char *policy;
	bool quiet, ignore_failures;
};
int pull_service_images(const struct project *m, const struct pull_request *rq,
			struct orch_err *e);
/* Pushes the images of the selected services (none: all; with_deps: and
 * what they depend on) that are built and name their image, each once,
 * with their build's tags; returns how many failed (ignore: warned of,
 * not counted). */
int push_service_images(const struct project *m, char *const *services,
			bool with_deps, bool ignore, bool quiet);
/* The names of the selected services (none: all) and of those they
 * depend on, in the file's order. */
char **services_with_deps(const struct project *m, char *const *services);

/* ---- kube.c: the project as Kubernetes objects ---------------------------- */

enum kube_publish {
	KUBE_PUBLISH_CLUSTERIP,	   /* published ports only inside */
	KUBE_PUBLISH_NODEPORT,	   /* a NodePort Service */
	KUBE_PUBLISH_LOADBALANCER, /* a LoadBalancer Service */
	KUBE_PUBLISH_HOSTPORT,	   /* the container's hostPort */
};
struct kube_opts {
	char *const *services; /* NULL or empty = all */
	const char *ns;	       /* NULL = the project's name */
	enum kube_publish publish;
	bool allow_hostpath;
	/* The image of the wait init containers; NULL: no waits. */
	const char *wait_image;
	/* The reference a service's image should be pinned to (by
	 * digest), malloc'd; NULL to keep the reference as written. */
	char *(*pin)(const char *service, const char *image, void *arg);
	void *pin_arg;
};
struct kube_doc {
	char *kind, *name;
	json_t *obj;
};
/* The objects of the project, sorted by kind then name; warnings for
 * what has no faithful form and errors (then -EINVAL and no objects)
 * in d. */
int kube_generate(const struct project *m, const struct kube_opts *o,
		  struct kube_doc **out, size_t *count, struct orch_diag *d);
void kube_docs_free(struct kube_doc *docs, size_t n);
/* A DNS-1123 label made from a compose name; NULL when none is left. */
char *kube_name(const char *name);
/* The wait init containers' default image: kubectl, from the project
 * that ships it. */
#define KUBE_WAIT_IMAGE "registry.k8s.io/kubectl:v1.32.4"
int cmd_kube(int argc, char **argv);

/* Whether a subcommand's arguments (argv[0] its name) ask for help with
 * -h or --help, before any "--". */
static inline bool args_want_help(int argc, char **argv)
{
	for (int i = 1; i < argc && !streq(argv[i], "--"); i++)
		if (streq(argv[i], "-h") || streq(argv[i], "--help"))
			return true;
	return false;
}

#endif
