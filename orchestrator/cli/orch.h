/* The orchestrator's internal header: the command table and what the
 * command families share. */
#ifndef ORCH_ORCH_H
#define ORCH_ORCH_H

#include "common/common.h"

/* The label docker puts on anonymous volumes. */
#define ANON_LABEL "com.docker.volume.anonymous"

/* A subcommand: argv[0] is the command's name; returns the exit code. */
struct orch_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

int cmd_version(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_volume(int argc, char **argv);
int cmd_network(int argc, char **argv);

/* Lifecycle commands (cmd_up.c, cmd_down.c, cmd_ps.c, cmd_logs.c,
 * cmd_exec.c, cmd_ctl.c) and the supervisor's hidden entry point. */
int orch_parse_globals(int argc, char **argv);
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
int cmd_rm(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_port(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_supervise(int argc, char **argv);
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
struct project;
struct service;
/* The image a service runs: image:, else the <project>-<service> its
 * build: section produces.  Caller frees. */
char *service_image_ref(const struct project *p, const struct service *s);
/* Builds the images of the services (all when services is NULL or empty)
 * that have a build: section, tagged service_image_ref (`orch build`,
 * `orch up --build`).  Progress goes to stderr. */
int build_service_images(struct project *p, char *const *services,
			 bool no_cache, struct orch_err *e);
/* The same, only for services whose image is not in the store yet (what
 * `orch up` without --build does). */
int build_missing_images(struct project *p, char *const *services,
			 struct orch_err *e);

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
