/* orch up: converge the project to its compose files and, without -d,
 * follow its logs until Ctrl-C (which stops it). */
#include "orchestrator/cli/cli.h"

#include <signal.h>

static const char up_usage[] =
	"[-d] [--wait] [--wait-timeout S] [--build] [--force-recreate] "
	"[--no-recreate] [-V] [--no-deps] [--no-start] [--remove-orphans] "
	"[--abort-on-container-exit|--abort-on-container-failure] "
	"[--exit-code-from SVC] [--attach SVC] [--no-attach SVC] "
	"[--attach-dependencies] [--no-log-prefix] [--timestamps] "
	"[--scale SVC=N] [-t S] [--pull always|missing|never] [--quiet-pull] "
	"[--watch] [--open-networks] [SERVICE...]";

enum {
	O_WAIT = CLI_OPT_LOCAL,
	O_WAIT_TIMEOUT,
	O_BUILD,
	O_FORCE,
	O_NO_RECREATE,
	O_NO_DEPS,
	O_NO_START,
	O_ORPHANS,
	O_ABORT,
	O_EXIT_FROM,
	O_SCALE,
	O_NO_BUILD,
	O_QUIET_PULL,
	O_NO_COLOR,
	O_WATCH,
	O_OPEN_NETWORKS,
	O_PULL,
	O_ABORT_FAILURE,
	O_ATTACH,
	O_NO_ATTACH,
	O_ATTACH_DEPS,
	O_NO_PREFIX,
	O_TIMESTAMPS,
};

struct abort_watch {
	char **names; /* the containers this up follows */
	/* The service whose exit code up returns: --exit-code-from's, else
	 * (as compose) the first that exits. */
	const char *exit_from;
	char *first; /* the service that exited first */
	int code;
	bool abort_on_exit;
	bool abort_on_failure; /* code: the first failure's */
	bool failed;
};

/* Stops following when every container is done or, with
 * --abort-on-container-exit, when one has exited (with
 * --abort-on-container-failure, with a code other than 0). */
static int up_should_stop(struct pstate *ps, void *arg)
{
	struct abort_watch *w = arg;
	json_t *st = NULL;
	struct orch_err e = {0};
	if (status_get(ps, &st, &e) < 0)
		return 1;
	bool any_alive = false, any_exited = false;
	size_t i;
	json_t *c;
	json_array_foreach(st, i, c)
	{
		if (!strv_contains(w->names, jstr(c, "name") ?: ""))
			continue;
		const char *s = jstr(c, "state");
		if (streq(s, "running") || streq(s, "restarting"))
			any_alive = true;
		else if (streq(s, "exited")) {
			any_exited = true;
			const char *svc = jstr(c, "service") ?: "";
			int code = (int)jint(c, "exit_code", 0);
			if (!w->first)
				w->first = xstrdup(svc);
			if (w->abort_on_failure && code && !w->failed) {
				w->failed = true;
				w->code = code;
			} else if (!w->abort_on_failure &&
				   streq(svc, w->exit_from ?: w->first)) {
				w->code = code;
			}
		}
	}
	json_decref(st);
	if ((w->abort_on_exit && any_exited) || w->failed)
		return 1;
	return !any_alive;
}

/* The services whose logs an attached up shows: from (with their
 * dependencies, deps), less those of not; each must be the project's. */
static int up_shown(const struct project *m, char *const *from, bool deps,
		    char *const *not, char ***out, struct orch_err *e)
{
	char *const *lists[] = {from, not};
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++)
		for (size_t i = 0; lists[l] && lists[l][i]; i++)
			if (!project_service(m, lists[l][i]))
				return err_set(e, ENOENT, "no such service: %s",
					       lists[l][i]);
	char **v = deps ? services_with_deps(m, from)
			: xcalloc(1, sizeof(char *));
	for (size_t i = 0; from && from[i]; i++)
		strv_add_unique(&v, from[i]);
	char **kept = xcalloc(1, sizeof(char *));
	for (size_t i = 0; v[i]; i++)
		if (!strv_contains(not, v[i]))
			strv_push(&kept, v[i]);
	strv_free(v);
	*out = kept;
	return 0;
}

int cmd_up(int argc, char **argv)
{
	static const struct option lopts[] = {
		CLI_GLOBAL_LONGOPTS,
		{"detach", no_argument, NULL, 'd'},
		{"wait", no_argument, NULL, O_WAIT},
		{"wait-timeout", required_argument, NULL, O_WAIT_TIMEOUT},
		{"build", no_argument, NULL, O_BUILD},
		{"no-build", no_argument, NULL, O_NO_BUILD},
		{"force-recreate", no_argument, NULL, O_FORCE},
		{"no-recreate", no_argument, NULL, O_NO_RECREATE},
		{"no-deps", no_argument, NULL, O_NO_DEPS},
		{"no-start", no_argument, NULL, O_NO_START},
		{"remove-orphans", no_argument, NULL, O_ORPHANS},
		{"abort-on-container-exit", no_argument, NULL, O_ABORT},
		{"exit-code-from", required_argument, NULL, O_EXIT_FROM},
		{"scale", required_argument, NULL, O_SCALE},
		{"timeout", required_argument, NULL, 't'},
		{"quiet-pull", no_argument, NULL, O_QUIET_PULL},
		{"pull", required_argument, NULL, O_PULL},
		{"no-color", no_argument, NULL, O_NO_COLOR},
		{"watch", no_argument, NULL, O_WATCH},
		{"open-networks", no_argument, NULL, O_OPEN_NETWORKS},
		{"abort-on-container-failure", no_argument, NULL,
		 O_ABORT_FAILURE},
		{"attach", required_argument, NULL, O_ATTACH},
		{"no-attach", required_argument, NULL, O_NO_ATTACH},
		{"attach-dependencies", no_argument, NULL, O_ATTACH_DEPS},
		{"no-log-prefix", no_argument, NULL, O_NO_PREFIX},
		{"timestamps", no_argument, NULL, O_TIMESTAMPS},
		{"renew-anon-volumes", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct up_opts o = {.timeout_ms = -1};
	const char *exit_from = NULL;
	bool abort_on_exit = false, no_build = false, watch = false;
	bool abort_on_failure = false, attach_deps = false;
	struct logs_opts lo = {.follow = true, .tail = -1};
	_cleanup_strv_ char **attach_only = NULL, **no_attach = NULL;
	const char *pull = NULL;
	_cleanup_strv_ char **scale = NULL;
	int c;
	optind = 1;
	long long num;
	while ((c = cli_getopt(argc, argv, "dVt:h" CLI_GLOBAL_SHORTOPTS,
			       lopts)) != -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		switch (c) {
		case 'd':
			o.detach = true;
			break;
		case O_WAIT:
			o.wait = true;
			o.detach = true;
			break;
		case O_WAIT_TIMEOUT:
			if (cli_opt_num("up", "--wait-timeout", optarg, 0,
					CLI_TIMEOUT_MAX, &num) < 0)
				return 2;
			o.wait_timeout_ms = num * 1000;
			break;
		case O_BUILD:
			o.build = true;
			break;
		case O_FORCE:
			o.force_recreate = true;
			break;
		case O_NO_RECREATE:
			o.no_recreate = true;
			break;
		case O_NO_DEPS:
			o.no_deps = true;
			break;
		case O_NO_START:
			o.no_start = true;
			break;
		case O_ORPHANS:
			o.remove_orphans = true;
			break;
		case O_ABORT:
			abort_on_exit = true;
			break;
		case O_EXIT_FROM:
			exit_from = optarg;
			abort_on_exit = true;
			break;
		case O_SCALE:
			strv_push(&scale, optarg);
			break;
		case 't':
			if (cli_opt_num("up", "--timeout", optarg, 0,
					CLI_TIMEOUT_MAX, &num) < 0)
				return 2;
			o.timeout_ms = num * 1000;
			break;
		case O_NO_BUILD:
			no_build = true;
			break;
		case O_QUIET_PULL:
			o.quiet_pull = true;
			break;
		case O_PULL:
			if (cli_opt_pull("up", optarg) < 0)
				return 2;
			pull = optarg;
			break;
		case O_NO_COLOR:
			break;
		case O_WATCH:
			watch = true;
			break;
		case O_OPEN_NETWORKS:
			o.open_networks = true;
			break;
		case O_ABORT_FAILURE:
			abort_on_failure = true;
			break;
		case O_ATTACH:
			strv_push(&attach_only, optarg);
			break;
		case O_NO_ATTACH:
			strv_push(&no_attach, optarg);
			break;
		case O_ATTACH_DEPS:
			attach_deps = true;
			break;
		case O_NO_PREFIX:
			lo.no_prefix = true;
			break;
		case O_TIMESTAMPS:
			lo.timestamps = true;
			break;
		case 'V':
			o.renew_anon_volumes = true;
			break;
		case 'h':
			printf("Usage: orch up %s\n", up_usage);
			return 0;
		default:
			return cli_usage("up", up_usage);
		}
	}
	if (abort_on_failure && abort_on_exit) {
		fprintf(stderr, "orch up: --abort-on-container-failure and "
				"--abort-on-container-exit (or "
				"--exit-code-from) are incompatible\n");
		return 2;
	}
	if (o.force_recreate && o.no_recreate) {
		fprintf(stderr, "orch up: --force-recreate and --no-recreate "
				"are incompatible\n");
		return 2;
	}
	if (abort_on_exit && o.detach) {
		fprintf(stderr, "orch up: --abort-on-container-exit and -d "
				"are incompatible\n");
		return 2;
	}
	o.scale = scale;
	_cleanup_strv_ char **services = NULL;
	for (int i = optind; i < argc; i++)
		strv_push(&services, argv[i]);
	o.services = services;

	struct project *m = NULL;
	if (cli_load(&m, false) < 0)
		return 1;
	if (cli_env_check(m, services, true) < 0) {
		project_free(m);
		return 1;
	}
	struct orch_err e = {0};
	/* Attached, up follows the services it was given (all of the
	 * file's by default), never orphans: it watches their exits and
	 * stops them at Ctrl-C.  It shows the logs of those (less those
	 * with attach: false), or of --attach's, with their dependencies
	 * (--attach-dependencies), less --no-attach's. */
	_cleanup_strv_ char **attach = NULL, **loud = NULL;
	for (size_t i = 0; i < m->n_services; i++) {
		const struct service *s = &m->services[i];
		if (services && !strv_contains(services, s->name))
			continue;
		strv_push(&attach, s->name);
		if (!s->no_attach)
			strv_push(&loud, s->name);
	}
	_cleanup_strv_ char **shown = NULL;
	if (up_shown(m, attach_only ? attach_only : loud, attach_deps,
		     no_attach, &shown, &e) < 0) {
		project_free(m);
		return cli_fail(&e);
	}
	if (!cli_quiet() && !o.open_networks && !project_open_networks(m))
		links_warn(m);
	/* Every image is there before anything is created: pulled as the
	 * services' pull_policy (or --pull) says, then built. */
	struct pull_request prq = {.services = services,
				   .with_deps = !o.no_deps,
				   .policy = pull,
				   .quiet = o.quiet_pull || cli_quiet()};
	if (pull_service_images(m, &prq, &e) < 0) {
		project_free(m);
		return cli_fail(&e);
	}
	/* --build rebuilds; otherwise only images never built are built
	 * (compose's default); --no-build builds nothing. */
	int br = o.build ? build_service_images(m, services, NULL, &e)
	       : no_build ? 0
			  : build_missing_images(m, services, &e);
	if (br < 0) {
		project_free(m);
		return cli_fail(&e);
	}
	struct pstate ps;
	int r = pstate_open(m->name, true, &ps, &e);
	if (r == 0)
		r = pstate_check_owner(&ps, host_uid(), m->working_dir, &e);
	if (r == 0)
		r = reconcile_up(m, &o, &ps, &e);
	project_free(m);
	if (r < 0) {
		/* A failed first up leaves no trace of the project. */
		struct orch_err ign = {0};
		if (ps.name && json_array_size(state_containers(&ps)) == 0 &&
		    json_array_size(json_object_get(ps.state, "networks")) == 0 &&
		    json_array_size(json_object_get(ps.state, "volumes")) == 0 &&
		    !supervisor_alive(&ps))
			pstate_remove(&ps, &ign);
		if (ps.name)
			pstate_close(&ps);
		return cli_fail(&e);
	}
	if (watch && !o.no_start) {
		/* The project runs; the watch follows its files until Ctrl-C,
		 * which stops what up started, as attached up does. */
		_cleanup_strv_ char **names =
		    containers_of(&ps, NULL, attach, NULL);
		_cleanup_free_ char *pname = xstrdup(ps.name);
		pstate_close(&ps);
		struct project *wm = NULL;
		if (cli_load(&wm, false) < 0)
			return 1;
		r = watch_project(wm, services, &e);
		project_free(wm);
		if (r < 0)
			return cli_fail(&e);
		fprintf(stderr, "Gracefully stopping...\n");
		if (pstate_open(pname, false, &ps, &e) < 0)
			return cli_fail(&e);
		r = reconcile_stop(&ps, names, -1, "stop", &e);
		for (size_t i = 0; r == 0 && names[i]; i++)
			progress("Container", names[i], "Stopped");
		pstate_close(&ps);
		return r < 0 ? cli_fail(&e) : 0;
	}
	if (o.detach || o.no_start) {
		pstate_close(&ps);
		return 0;
	}

	/* Attached: follow the logs; Ctrl-C stops the project. */
	_cleanup_strv_ char **names = containers_of(&ps, NULL, attach, NULL);
	_cleanup_strv_ char **followed = containers_of(&ps, NULL, shown, NULL);
	struct abort_watch w = {.names = names,
				.exit_from = exit_from,
				.abort_on_exit = abort_on_exit,
				.abort_on_failure = abort_on_failure};
	/* The lock is not held while following: other commands may run. */
	_cleanup_free_ char *name = xstrdup(ps.name);
	pstate_close(&ps);
	struct pstate fp = {0};
	if (pstate_open(name, false, &fp, &e) < 0)
		return cli_fail(&e);
	int lockfd = fp.lock_fd;
	fp.lock_fd = -1;
	close(lockfd);
	logs_run(&fp, followed, &lo, up_should_stop, &w);
	bool interrupted = logs_interrupted;
	if (interrupted || abort_on_exit || w.failed) {
		if (interrupted)
			fprintf(stderr, "Gracefully stopping... (press Ctrl+C "
					"again to force)\n");
		else
			fprintf(stderr, "Aborting on container %s...\n",
				w.failed ? "failure" : "exit");
		signal(SIGINT, SIG_DFL);
		pstate_close(&fp);
		if (pstate_open(name, false, &fp, &e) < 0)
			return cli_fail(&e);
		r = reconcile_stop(&fp, names, -1, "stop", &e);
		for (size_t i = 0; r == 0 && names[i]; i++)
			progress("Container", names[i], "Stopped");
		if (r < 0) {
			pstate_close(&fp);
			return cli_fail(&e);
		}
		if (abort_on_exit && !interrupted)
			up_should_stop(&fp, &w);
	}
	pstate_close(&fp);
	free(w.first);
	if (interrupted)
		return 130;
	return abort_on_exit || w.failed ? w.code : 0;
}

static const char watch_usage[] = "[--no-up] [SERVICE...]";

/* orch watch: up -d (unless --no-up), then follow the services'
 * develop.watch rules until Ctrl-C; the containers keep running. */
int cmd_watch(int argc, char **argv)
{
	enum { O_NO_UP = CLI_OPT_LOCAL, O_PRUNE, O_QUIET };
	static const struct option lopts[] = {
		CLI_GLOBAL_LONGOPTS,
		{"no-up", no_argument, NULL, O_NO_UP},
		{"prune", no_argument, NULL, O_PRUNE},
		{"quiet", no_argument, NULL, O_QUIET},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool no_up = false;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "h" CLI_GLOBAL_SHORTOPTS, lopts)) !=
	       -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		if (c == O_NO_UP)
			no_up = true;
		else if (c == O_PRUNE || c == O_QUIET)
			continue;
		else if (c == 'h') {
			printf("Usage: orch watch %s\n", watch_usage);
			return 0;
		} else
			return cli_usage("watch", watch_usage);
	}
	_cleanup_strv_ char **services = xcalloc(1, sizeof(char *));
	for (int i = optind; i < argc; i++)
		strv_push(&services, argv[i]);
	if (!no_up) {
		_cleanup_strv_ char **up = NULL;
		strv_push(&up, "up");
		strv_push(&up, "-d");
		for (size_t i = 0; services[i]; i++)
			strv_push(&up, services[i]);
		int r = cmd_up((int)strv_len(up), up);
		if (r != 0)
			return r;
	}
	struct project *m = NULL;
	if (cli_load(&m, false) < 0)
		return 1;
	_cleanup_strv_ char **checked =
	    cli_service_args(m, argc, argv, optind);
	if (!checked) {
		project_free(m);
		return 1;
	}
	struct orch_err e = {0};
	int r = watch_project(m, services, &e);
	project_free(m);
	return r < 0 ? cli_fail(&e) : 0;
}

/* orch create: compose's create, which is up without starting anything
 * (the images pulled and built as up does, the containers created). */
int cmd_create(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (streq(argv[i], "-d") || streq(argv[i], "--detach") ||
		    streq(argv[i], "--wait") || streq(argv[i], "--watch")) {
			fprintf(stderr, "orch create: unknown option %s\n",
				argv[i]);
			return 2;
		}
	_cleanup_strv_ char **up = NULL;
	strv_push(&up, "up");
	strv_push(&up, "--no-start");
	for (int i = 1; i < argc; i++)
		strv_push(&up, argv[i]);
	return cmd_up((int)strv_len(up), up);
}
