/* orch exec (a command in a running container) and orch run (a one-off
 * container of a service), attached to the terminal: a pty when standard
 * input is one, plain pipes of our own stdio otherwise (-T). */
#include "orchestrator/cli/cli.h"
#include "runtime/runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>

/* The container's terminal gets our terminal's size. */
static void pty_size(int master)
{
	struct winsize ws;
	if (ioctl(0, TIOCGWINSZ, &ws) == 0)
		ioctl(master, TIOCSWINSZ, &ws);
}

/* Copies the terminal to the pty and back, in raw mode, until the
 * process (pidfd) exits and its output is drained; a resize of our
 * terminal is passed on (the pty was made with its size). */
static void relay(int master, int pidfd)
{
	struct termios saved, raw;
	bool tty = tcgetattr(0, &saved) == 0;
	if (tty) {
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
	}
	sigset_t winch, old;
	sigemptyset(&winch);
	sigaddset(&winch, SIGWINCH);
	sigprocmask(SIG_BLOCK, &winch, &old);
	int sfd = signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK);
	char buf[8192];
	bool in_open = true, done = false;
	while (!done) {
		struct pollfd p[4] = {{master, POLLIN, 0},
				      {in_open ? 0 : -1, POLLIN, 0},
				      {pidfd, POLLIN, 0},
				      {sfd, POLLIN, 0}};
		if (RETRY_EINTR(poll(p, 4, -1)) < 0)
			break;
		if (p[3].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				;
			pty_size(master);
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(master, buf, sizeof(buf));
			if (n > 0)
				write_all(1, buf, (size_t)n);
			else if (p[2].revents)
				done = true;
		}
		if (p[1].revents & (POLLIN | POLLHUP)) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n > 0)
				write_all(master, buf, (size_t)n);
			else
				in_open = false;
		}
		if (p[2].revents & POLLIN && !(p[0].revents & POLLIN))
			done = true;
	}
	if (sfd >= 0)
		close(sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (tty)
		tcsetattr(0, TCSANOW, &saved);
}

static int wait_code(pid_t pid)
{
	int st;
	if (RETRY_EINTR(waitpid(pid, &st, 0)) < 0)
		return 1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 1;
}

enum { O_INDEX = CLI_OPT_LOCAL, O_RM, O_NO_DEPS, O_NAME, O_ENTRYPOINT,
       O_SERVICE_PORTS, O_PUBLISH, O_CAP_ADD, O_CAP_DROP, O_PRIVILEGED,
       O_BUILD, O_PULL, O_QUIET_PULL, O_USE_ALIASES };

struct exec_args {
	bool detach, no_tty, rm, no_deps, service_ports, use_aliases;
	bool privileged;	 /* exec: every capability */
	bool build, quiet_pull;	 /* run: the service's image */
	const char *pull;	 /* run: --pull POLICY */
	int index;
	char **env;
	const char *user, *workdir, *name, *entrypoint;
	/* run's additions to the service: -p, -v, -l, --cap-add/-drop */
	char **publish, **volumes, **labels, **cap_add, **cap_drop;
};

static void exec_args_clear(struct exec_args *a)
{
	strv_free(a->env);
	strv_free(a->publish);
	strv_free(a->volumes);
	strv_free(a->labels);
	strv_free(a->cap_add);
	strv_free(a->cap_drop);
}

static int exec_parse(const char *cmd, const char *usage, int argc,
		      char **argv, struct exec_args *a)
{
	static const struct option lopts[] = {
		CLI_GLOBAL_LONGOPTS,
		{"detach", no_argument, NULL, 'd'},
		{"no-TTY", no_argument, NULL, 'T'},
		{"env", required_argument, NULL, 'e'},
		{"user", required_argument, NULL, 'u'},
		{"workdir", required_argument, NULL, 'w'},
		{"index", required_argument, NULL, O_INDEX},
		{"rm", no_argument, NULL, O_RM},
		{"no-deps", no_argument, NULL, O_NO_DEPS},
		{"name", required_argument, NULL, O_NAME},
		{"entrypoint", required_argument, NULL, O_ENTRYPOINT},
		{"service-ports", no_argument, NULL, O_SERVICE_PORTS},
		{"use-aliases", no_argument, NULL, O_USE_ALIASES},
		{"interactive", no_argument, NULL, 'i'},
		{"tty", no_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{"publish", required_argument, NULL, O_PUBLISH},
		{"volume", required_argument, NULL, 'v'},
		{"label", required_argument, NULL, 'l'},
		{"cap-add", required_argument, NULL, O_CAP_ADD},
		{"cap-drop", required_argument, NULL, O_CAP_DROP},
		{"privileged", no_argument, NULL, O_PRIVILEGED},
		{"build", no_argument, NULL, O_BUILD},
		{"pull", required_argument, NULL, O_PULL},
		{"quiet-pull", no_argument, NULL, O_QUIET_PULL},
		{0},
	};
	memset(a, 0, sizeof(*a));
	a->index = 1;
	int c;
	optind = 1;
	long long num;
	/* run's -p is --publish (the project's name is given before the
	 * command); exec has none of run's additions. */
	bool run = streq(cmd, "run");
	const char *shortopts =
	    run ? "+dTe:u:w:ithp:v:l:P" CLI_GLOBAL_SHORTOPTS
		: "+dTe:u:w:ith" CLI_GLOBAL_SHORTOPTS;
	while ((c = cli_getopt_own(argc, argv, shortopts, lopts,
				   run ? "p" : "")) != -1) {
		if (c == CLI_OPT_BAD)
			return -1;
		switch (c) {
		case 'd':
			a->detach = true;
			break;
		case 'T':
			a->no_tty = true;
			break;
		case 'e':
			strv_push(&a->env, optarg);
			break;
		case 'u':
			a->user = optarg;
			break;
		case 'w':
			a->workdir = optarg;
			break;
		case O_INDEX:
			if (cli_opt_num(cmd, "--index", optarg, 1, INT_MAX,
					&num) < 0)
				return -1;
			a->index = (int)num;
			break;
		case O_RM:
		case O_NO_DEPS:
		case O_NAME:
		case O_ENTRYPOINT:
		case O_SERVICE_PORTS:
		case O_USE_ALIASES:
		case 'P':
			/* run's alone. */
			if (!run) {
				cli_usage(cmd, usage);
				return -1;
			}
			a->rm |= c == O_RM;
			a->no_deps |= c == O_NO_DEPS;
			a->service_ports |= c == O_SERVICE_PORTS || c == 'P';
			a->use_aliases |= c == O_USE_ALIASES;
			if (c == O_NAME)
				a->name = optarg;
			if (c == O_ENTRYPOINT)
				a->entrypoint = optarg;
			break;
		case O_PRIVILEGED:
		case O_BUILD:
		case O_PULL:
		case O_QUIET_PULL:
			/* --privileged is exec's, the others run's. */
			if (run == (c == O_PRIVILEGED)) {
				cli_usage(cmd, usage);
				return -1;
			}
			if (c == O_PULL && cli_opt_pull(cmd, optarg) < 0)
				return -1;
			a->privileged |= c == O_PRIVILEGED;
			a->build |= c == O_BUILD;
			a->quiet_pull |= c == O_QUIET_PULL;
			if (c == O_PULL)
				a->pull = optarg;
			break;
		case 'p':
		case O_PUBLISH:
		case 'v':
		case 'l':
		case O_CAP_ADD:
		case O_CAP_DROP:
			if (!run) {
				cli_usage(cmd, usage);
				return -1;
			}
			strv_push(c == 'p' || c == O_PUBLISH ? &a->publish
				  : c == 'v'	    ? &a->volumes
				  : c == 'l'	    ? &a->labels
				  : c == O_CAP_ADD ? &a->cap_add
						    : &a->cap_drop,
				  optarg);
			break;
		case 'i':
		case 't':
			break;
		case 'h':
			printf("Usage: orch %s %s\n", cmd, usage);
			exit(0);
		default:
			cli_usage(cmd, usage);
			return -1;
		}
	}
	/* -e NAME without a value takes it from our environment. */
	for (size_t i = 0; a->env && a->env[i]; i++)
		if (!strchr(a->env[i], '=')) {
			const char *v = getenv(a->env[i]);
			char *kv = xasprintf("%s=%s", a->env[i], v ? v : "");
			free(a->env[i]);
			a->env[i] = kv;
		}
	return optind;
}

int cmd_exec(int argc, char **argv)
{
	static const char usage[] = "[-d] [-T] [-e K=V] [-u USER] [-w DIR] "
				    "[--privileged] [--index N] SERVICE "
				    "COMMAND [ARGS...]";
	struct exec_args a;
	int first = exec_parse("exec", usage, argc, argv, &a);
	if (first < 0)
		return 2;
	_cleanup_strv_ char **env = a.env;
	if (argc - first < 2)
		return cli_usage("exec", usage);
	struct pstate ps;
	struct orch_err e = {0};
	if (cli_read(&ps, NULL, &e) < 0)
		return cli_fail(&e);
	pid_t init;
	json_t *rec = cli_running(&ps, argv[first], a.index, &init);
	if (!rec) {
		pstate_close(&ps);
		return 1;
	}
	_cleanup_free_ char *id = xstrdup(jstr(rec, "id"));
	pstate_close(&ps);

	bool tty = !a.no_tty && !a.detach && isatty(0);
	int master = -1, devnull = -1;
	struct rt_exec_spec x = {
		.argv = argv + first + 1,
		.env = env,
		.workdir = a.workdir,
		.user = a.user,
		.stdio = {0, 1, 2},
		.pty = tty ? &master : NULL,
		.privileged = a.privileged,
	};
	if (a.detach) {
		devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		x.stdio[0] = x.stdio[1] = x.stdio[2] = devnull;
	}
	pid_t pid;
	int r = rt_exec(id, &x, &pid, &e);
	if (devnull >= 0)
		close(devnull);
	if (r < 0) {
		if (master >= 0)
			close(master);
		fprintf(stderr, "orch: %s\n", e.msg);
		return e.code == ENOENT ? 127 : 126;
	}
	if (a.detach)
		return 0;
	if (tty) {
		int pfd = pidfd_open(pid, 0);
		relay(master, pfd);
		close(pfd);
		close(master);
	}
	return wait_code(pid);
}

/* A YAML (JSON) string of v, its '$' doubled: a value of the command
 * line is taken as it is, never interpolated. */
static void yaml_str(struct strbuf *sb, const char *v)
{
	json_t *j = json_string(v);
	if (j)
		compose_escape_dollars(j);
	char *txt = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
	sb_adds(sb, txt ? txt : "\"\"");
	free(txt);
	json_decref(j);
}

static void yaml_list(struct strbuf *sb, const char *key, const char *tag,
		      char **v)
{
	if (!v)
		return;
	sb_printf(sb, "    %s: %s[", key, tag);
	for (size_t i = 0; v[i]; i++) {
		if (i)
			sb_adds(sb, ", ");
		yaml_str(sb, v[i]);
	}
	sb_adds(sb, "]\n");
}

/* What run's -p, -v, -l, --cap-add and --cap-drop add to service svc, as
 * an override file would (NULL when nothing): published ports replace
 * the service's (which run leaves out unless --service-ports, and which
 * that adds back), volumes and labels are merged by target and key. */
static char *run_override(const char *svc, const struct exec_args *a)
{
	if (!a->publish && !a->volumes && !a->labels && !a->cap_add &&
	    !a->cap_drop)
		return NULL;
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "services:\n  ");
	yaml_str(&sb, svc);
	sb_adds(&sb, ":\n");
	yaml_list(&sb, "ports", a->service_ports ? "" : "!override ",
		  a->publish);
	yaml_list(&sb, "volumes", "", a->volumes);
	yaml_list(&sb, "labels", "", a->labels);
	yaml_list(&sb, "cap_add", "", a->cap_add);
	yaml_list(&sb, "cap_drop", "", a->cap_drop);
	return sb.buf;
}

int cmd_run(int argc, char **argv)
{
	static const char usage[] =
	    "[--rm] [-d] [-T] [-e K=V] [-u USER] [-w DIR] [-p PORTS] "
	    "[-v VOLUME] [-l K=V] [--cap-add CAP] [--cap-drop CAP] "
	    "[-P|--service-ports] [--use-aliases] [--no-deps] [--name NAME] [--entrypoint CMD] "
	    "[--build] [--pull always|missing|never] [--quiet-pull] "
	    "SERVICE [COMMAND...]";
	struct exec_args a __attribute__((cleanup(exec_args_clear)));
	int first = exec_parse("run", usage, argc, argv, &a);
	if (first < 0)
		return 2;
	char **env = a.env;
	if (argc - first < 1)
		return cli_usage("run", usage);
	const char *svc = argv[first];
	struct project *m = NULL;
	if (cli_load(&m, false) < 0)
		return 1;
	struct orch_err e = {0};
	const struct service *s = project_service(m, svc);
	if (!s) {
		project_free(m);
		fprintf(stderr, "orch: no such service: %s\n", svc);
		return 1;
	}
	/* The service's additions, once it is known to be one (else they
	 * would make a service of their own). */
	_cleanup_free_ char *extra = run_override(svc, &a);
	if (extra) {
		project_free(m);
		m = NULL;
		if (cli_load_with(&m, false, extra, "the command line") < 0)
			return 1;
		s = project_service(m, svc);
	}
	char *one[] = {(char *)svc, NULL};
	if (cli_env_check(m, one, !a.no_deps) < 0) {
		project_free(m);
		return 1;
	}
	/* The images of the service (and of its dependencies) first:
	 * pulled, then built (again with --build). */
	struct pull_request prq = {.services = one,
				   .with_deps = !a.no_deps,
				   .policy = a.pull,
				   .quiet = a.quiet_pull || cli_quiet()};
	if (pull_service_images(m, &prq, &e) < 0 ||
	    (a.build ? build_service_images(m, one, NULL, &e)
		     : build_missing_images(m, one, &e)) < 0) {
		project_free(m);
		return cli_fail(&e);
	}
	struct pstate ps;
	int r = pstate_open(m->name, true, &ps, &e);
	if (r == 0)
		r = pstate_check_owner(&ps, host_uid(), m->working_dir, &e);
	if (r == 0 && !a.no_deps && s->n_depends_on) {
		_cleanup_strv_ char **deps = NULL;
		for (size_t i = 0; i < s->n_depends_on; i++)
			strv_push(&deps, s->depends_on[i].service);
		struct up_opts uo = {.detach = true,
				     .timeout_ms = -1,
				     .services = deps};
		r = reconcile_up(m, &uo, &ps, &e);
	}
	json_t *rec = NULL;
	struct oneoff_opts oo = {
		.cmd = argc - first > 1 ? argv + first + 1 : NULL,
		.env = env,
		.user = a.user,
		.workdir = a.workdir,
		.name = a.name,
		.entrypoint = a.entrypoint,
		.service_ports = a.service_ports || a.publish,
		.use_aliases = a.use_aliases,
	};
	if (r == 0)
		r = reconcile_oneoff(&ps, m, s, &oo, &rec, &e);
	project_free(m);
	if (r < 0) {
		if (ps.name)
			pstate_close(&ps);
		return cli_fail(&e);
	}
	_cleanup_free_ char *name = xstrdup(jstr(rec, "name"));
	_cleanup_free_ char *id = xstrdup(jstr(rec, "id"));
	if (a.detach) {
		/* A detached one-off runs under the supervisor, which keeps
		 * its output for `orch logs` and its exit code for `ps`. */
		char *names[] = {name, NULL};
		r = reconcile_start(&ps, names, &e);
		if (r < 0) {
			struct orch_err ign = {0};
			reconcile_remove(&ps, names, true, &ign);
			pstate_close(&ps);
			return cli_fail(&e);
		}
		printf("%s\n", name);
		pstate_close(&ps);
		return 0;
	}
	struct rt_spec spec;
	rt_spec_init(&spec);
	json_auto_t *joined =
	    ctrspec_joined(&ps, json_object_get(rec, "spec"), &e);
	r = joined ? ctrspec_load(joined, &spec, &e) : -e.code;
	bool tty = !a.no_tty && isatty(0);
	int master = -1;
	spec.stdio[0] = 0;
	spec.stdio[1] = 1;
	spec.stdio[2] = 2;
	spec.pty = tty ? &master : NULL;
	spec.id = id;
	spec.volatile_upper = a.rm;
	struct rt_container *ct = NULL;
	if (r == 0)
		r = rt_create(&spec, &ct, &e);
	ctrspec_clear(&spec);
	if (r == 0) {
		r = rt_start(ct, &e);
		if (r < 0) {
			struct orch_err ign = {0};
			int st;
			rt_kill(id, SIGKILL, &ign);
			rt_wait(ct, &st, &ign);
		}
	}
	int code = 0;
	/* The project stays usable while the one-off runs. */
	close(ps.lock_fd);
	ps.lock_fd = -1;
	if (r == 0) {
		if (tty) {
			relay(master, ct->pidfd);
			close(master);
		}
		int st = 0;
		struct orch_err we = {0};
		if (rt_wait(ct, &st, &we) == 0)
			code = st;
		rt_container_free(ct);
	} else {
		if (master >= 0)
			close(master);
		fprintf(stderr, "orch: %s\n", e.msg);
		code = e.code == ENOENT ? 127 : 126;
	}
	_cleanup_free_ char *pname = xstrdup(ps.name);
	pstate_close(&ps);
	if (a.rm || r < 0) {
		struct pstate p2;
		if (pstate_open(pname, false, &p2, &e) == 0) {
			char *names[] = {name, NULL};
			reconcile_remove(&p2, names, true, &e);
			pstate_close(&p2);
		}
	}
	return code;
}
