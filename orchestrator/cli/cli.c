/* Global command-line options (-f, -p, --project-directory, --env-file,
 * --profile, --ansi, --progress) and loading the project they name.  They
 * are accepted before the command, as docker compose has them, and also
 * after it. */
#include "orchestrator/cli/cli.h"
#include "runtime/runtime.h"
#include "netd/netd.h"

#include <getopt.h>
#include <sys/stat.h>

struct cli_globals cli = {.ansi = CLI_ANSI_AUTO};

int cli_global_opt(int opt, const char *arg)
{
	switch (opt) {
	case 'f':
		strv_push(&cli.files, arg);
		return 1;
	case 'p':
		free(cli.project_name);
		cli.project_name = xstrdup(arg);
		return 1;
	case CLI_OPT_PROJECT_DIR:
		free(cli.project_dir);
		cli.project_dir = xstrdup(arg);
		return 1;
	case CLI_OPT_ENV_FILE:
		strv_push(&cli.env_files, arg);
		return 1;
	case CLI_OPT_PROFILE:
		strv_push(&cli.profiles, arg);
		return 1;
	case CLI_OPT_ANSI:
		if (streq(arg, "never"))
			cli.ansi = CLI_ANSI_NEVER;
		else if (streq(arg, "always"))
			cli.ansi = CLI_ANSI_ALWAYS;
		else if (streq(arg, "auto"))
			cli.ansi = CLI_ANSI_AUTO;
		else {
			fprintf(stderr, "orch: --ansi: use never, always or "
					"auto\n");
			return -1;
		}
		cli_progress_apply();
		return 1;
	case CLI_OPT_PROGRESS:
		if (!streq(arg, "plain") && !streq(arg, "tty") &&
		    !streq(arg, "auto") && !streq(arg, "quiet")) {
			fprintf(stderr, "orch: --progress: use plain, tty, auto "
					"or quiet\n");
			return -1;
		}
		free(cli.progress);
		cli.progress = xstrdup(arg);
		cli_progress_apply();
		return 1;
	}
	return 0;
}

int cli_getopt(int argc, char **argv, const char *shortopts,
	       const struct option *lopts)
{
	return cli_getopt_own(argc, argv, shortopts, lopts, "");
}

int cli_getopt_own(int argc, char **argv, const char *shortopts,
		   const struct option *lopts, const char *own)
{
	for (;;) {
		int c = getopt_long(argc, argv, shortopts, lopts, NULL);
		if (c == -1)
			return -1;
		if (c > 0 && c < 256 && strchr(own, c))
			return c;
		int g = cli_global_opt(c, optarg);
		if (g < 0)
			return CLI_OPT_BAD;
		if (!g)
			return c;
	}
}

int cli_parse_globals(int argc, char **argv)
{
	static const struct option lopts[] = {CLI_GLOBAL_LONGOPTS, {0}};
	int i = 1;
	cli_progress_apply();
	while (i < argc && argv[i][0] == '-' && argv[i][1]) {
		const char *a = argv[i];
		if (streq(a, "--"))
			return i + 1;
		if (streq(a, "-h") || streq(a, "--help") || streq(a, "-v") ||
		    streq(a, "--version"))
			return i;
		int opt = 0;
		const char *val = NULL;
		int used = 1;
		if (a[1] != '-') {
			opt = a[1];
			if (opt != 'f' && opt != 'p')
				break;
			if (a[2])
				val = a + 2;
			else if (i + 1 < argc) {
				val = argv[i + 1];
				used = 2;
			}
		} else {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			size_t nl = eq ? (size_t)(eq - name) : strlen(name);
			for (size_t k = 0; lopts[k].name; k++)
				if (strlen(lopts[k].name) == nl &&
				    !strncmp(lopts[k].name, name, nl))
					opt = lopts[k].val;
			if (!opt)
				break;
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc) {
				val = argv[i + 1];
				used = 2;
			}
		}
		if (!val) {
			fprintf(stderr, "orch: option %s needs a value\n", a);
			return -1;
		}
		if (cli_global_opt(opt, val) < 0)
			return -1;
		i += used;
	}
	return i;
}

bool cli_color(FILE *f)
{
	if (cli.ansi == CLI_ANSI_ALWAYS)
		return true;
	if (cli.ansi == CLI_ANSI_NEVER || getenv("NO_COLOR"))
		return false;
	return isatty(fileno(f));
}

bool cli_progress_tty(void)
{
	if (cli.progress && streq(cli.progress, "plain"))
		return false;
	if (cli.progress && streq(cli.progress, "tty"))
		return true;
	return cli_color(stderr);
}

bool cli_quiet(void)
{
	return cli.progress && streq(cli.progress, "quiet");
}

void cli_progress_apply(void)
{
	progress_mode = cli_quiet()	    ? PROGRESS_QUIET
			: cli_progress_tty() ? PROGRESS_TTY
					     : PROGRESS_PLAIN;
}

char **cli_service_args(const struct project *m, int argc, char **argv,
			int first)
{
	char **v = xcalloc(1, sizeof(char *));
	for (int i = first; i < argc; i++) {
		if (!project_service(m, argv[i])) {
			fprintf(stderr, "orch: no such service: %s\n", argv[i]);
			strv_free(v);
			return NULL;
		}
		strv_push(&v, argv[i]);
	}
	return v;
}

int cli_load(struct project **out, bool all_profiles)
{
	return cli_load_with(out, all_profiles, NULL, NULL);
}

int cli_load_with(struct project **out, bool all_profiles, const char *extra,
		  const char *extra_name)
{
	struct compose_opts o = {
		.files = cli.files,
		.project_name = cli.project_name,
		.project_dir = cli.project_dir,
		.env_files = cli.env_files,
		.profiles = cli.profiles,
		.all_profiles = all_profiles,
		.defer_env_files = true,
		.extra = extra,
		.extra_name = extra_name,
	};
	struct orch_diag d = {0};
	int r = compose_load(&o, out, &d);
	diag_print(&d, stderr);
	diag_free(&d);
	return r;
}

int cli_env_check(const struct project *m, char *const *services,
		  bool with_deps)
{
	struct orch_diag d = {0};
	int r = project_env_check(m, services, with_deps, &d);
	diag_print(&d, stderr);
	diag_free(&d);
	return r;
}

/* A project name given by the user (-p, COMPOSE_PROJECT_NAME) is used
 * as it is or refused, as compose does; only a directory's name is
 * normalized.  The same check as the loader's and the state's. */
static int given_name(const char *raw, const char *from, char **name,
		      struct orch_err *e)
{
	if (!pstate_name_valid(raw))
		return err_set(e, EINVAL,
			       "invalid project name \"%s\" (from %s): must "
			       "consist only of lowercase alphanumeric "
			       "characters, hyphens, and underscores as well "
			       "as start with a letter or number",
			       raw, from);
	*name = xstrdup(raw);
	return 0;
}

/* cli_project_name with the reason for no name in e. */
static int project_name_of(char **name, struct project **model,
			   struct orch_err *e)
{
	*name = NULL;
	if (model)
		*model = NULL;
	struct project *m = NULL;
	/* -p alone is enough to find a project that is up; a file is read
	 * when there is one, for its name and its services. */
	if (cli.project_name && !cli.files) {
		int r = given_name(cli.project_name, "-p", name, e);
		if (r < 0)
			return r;
		struct compose_opts o = {
			.project_name = cli.project_name,
			.project_dir = cli.project_dir,
			.env_files = cli.env_files,
			.profiles = cli.profiles,
			.all_profiles = true,
			.defer_env_files = true,
		};
		struct orch_diag d = {0};
		if (model && compose_load(&o, &m, &d) == 0)
			*model = m;
		diag_free(&d);
		return 0;
	}
	int r = cli_load(&m, true);
	if (r < 0) {
		/* No compose file: COMPOSE_PROJECT_NAME from the
		 * environment or a .env names the project, as compose. */
		struct compose_opts o = {.project_dir = cli.project_dir,
					 .env_files = cli.env_files};
		_cleanup_free_ char *env =
		    cli.files ? NULL
			      : compose_env_lookup(&o, "COMPOSE_PROJECT_NAME");
		if (env && *env)
			return given_name(env, "COMPOSE_PROJECT_NAME", name, e);
		if (cli.files)
			return err_set(e, -r, "no project: %s could not be loaded",
				       cli.files[0]);
		return err_set(e, -r,
			       "no project: give a compose file (-f) or a "
			       "project name (-p)");
	}
	*name = xstrdup(m->name);
	if (model)
		*model = m;
	else
		project_free(m);
	return 0;
}

int cli_project_name(char **name, struct project **model)
{
	struct orch_err e = {0};
	return project_name_of(name, model, &e);
}

/* netd answers the containers' DNS: a command that finds it gone (killed)
 * starts it again, as up would, and it comes back with its state.  Only
 * root can; users' netd runs as a service. */
static void netd_revive(const struct pstate *ps)
{
	if (host_uid() != 0 ||
	    !json_array_size(json_object_get(ps->state, "networks")))
		return;
	struct netd_conn *c = NULL;
	struct orch_err e = {0};
	if (netd_connect(&c, &e) < 0)
		log_warn("%s", e.msg);
	netd_close(c);
}

static int open_state(struct pstate *ps, struct project **model, bool lock,
		      struct orch_err *e)
{
	_cleanup_free_ char *name = NULL;
	int r = project_name_of(&name, model, e);
	if (r < 0)
		return r;
	r = lock ? pstate_open(name, false, ps, e) : pstate_read(name, ps, e);
	if (r < 0 && model && *model) {
		project_free(*model);
		*model = NULL;
	}
	if (r == 0 && !ps->exists) {
		pstate_close(ps);
		return err_set(e, ENOENT, "no such project: %s", name);
	}
	if (r == 0)
		netd_revive(ps);
	return r;
}

int cli_open(struct pstate *ps, struct project **model, struct orch_err *e)
{
	return open_state(ps, model, true, e);
}

int cli_read(struct pstate *ps, struct project **model, struct orch_err *e)
{
	return open_state(ps, model, false, e);
}

int cli_opt_num(const char *cmd, const char *opt, const char *val,
		long long min, long long max, long long *out)
{
	char *end = NULL;
	errno = 0;
	long long v = val ? strtoll(val, &end, 10) : 0;
	if (!val || !*val || *end || errno || v < min || v > max) {
		fprintf(stderr,
			"orch %s: invalid value \"%s\" for %s: a whole number "
			"from %lld to %lld is expected\n",
			cmd, val ? val : "", opt, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_opt_pull(const char *cmd, const char *val)
{
	if (streq(val, "always") || streq(val, "missing") ||
	    streq(val, "never"))
		return 0;
	fprintf(stderr,
		"orch %s: invalid --pull \"%s\": want always, missing or "
		"never\n",
		cmd, val);
	return -1;
}

int cli_opt_bool(const char *cmd, const char *opt, const char *val,
		 bool *out)
{
	if (!val || streq(val, "true") || streq(val, "false")) {
		*out = !val || streq(val, "true");
		return 0;
	}
	fprintf(stderr, "orch %s: %s takes true or false, not \"%s\"\n", cmd,
		opt, val);
	return -1;
}

int cli_usage(const char *cmd, const char *usage)
{
	fprintf(stderr, "Usage: orch %s %s\n", cmd, usage);
	return 2;
}

int cli_fail(const struct orch_err *e)
{
	fprintf(stderr, "orch: %s\n", e->msg);
	return 1;
}

json_t *cli_running(struct pstate *ps, const char *svc, long long index,
		    pid_t *pid)
{
	json_t *rec = NULL;
	size_t i;
	json_t *c;
	json_array_foreach(state_containers(ps), i, c)
		if (streq(jstr(c, "service") ?: "", svc) &&
		    jint(c, "number", 1) == index)
			rec = c;
	struct orch_err ign = {0};
	if (!rec || !jstr(rec, "id") || rt_pid(jstr(rec, "id"), pid, &ign) < 0) {
		fprintf(stderr, "orch: service \"%s\" is not running\n", svc);
		return NULL;
	}
	return rec;
}
