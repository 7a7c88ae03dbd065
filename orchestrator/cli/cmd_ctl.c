/* Commands that drive a project's existing containers through its
 * supervisor: start, stop, restart, kill, rm, and the read-only top, port,
 * events and stats. */
#include "orchestrator/cli/cli.h"
#include "runtime/runtime.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

enum { O_JSON = CLI_OPT_LOCAL, O_NO_STREAM, O_PROTOCOL, O_INDEX, O_FORMAT };

/* Parses options shared by the simple commands: -t/--timeout, -s/--signal,
 * -f, -v, --json and the globals.  Returns the index of the first
 * operand, or -1 after printing usage. */
struct ctl_opts {
	int64_t timeout_ms;
	int signal;
	bool force, stop_first, volumes, json, no_stream;
	const char *protocol;
	int index;
};

static int ctl_parse(const char *cmd, const char *usage, const char *shorts,
		     int argc, char **argv, struct ctl_opts *o)
{
	static const struct option lopts[] = {
		CLI_GLOBAL_LONGOPTS,
		{"timeout", required_argument, NULL, 't'},
		{"signal", required_argument, NULL, 's'},
		{"force", no_argument, NULL, 'F'},
		{"stop", no_argument, NULL, 'S'},
		{"volumes", no_argument, NULL, 'v'},
		{"json", no_argument, NULL, O_JSON},
		{"no-stream", no_argument, NULL, O_NO_STREAM},
		{"protocol", required_argument, NULL, O_PROTOCOL},
		{"index", required_argument, NULL, O_INDEX},
		{"format", required_argument, NULL, O_FORMAT},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	memset(o, 0, sizeof(*o));
	o->timeout_ms = -1;
	o->signal = SIGKILL;
	o->index = 1;
	/* rm's -f is --force (taking no value); -f elsewhere, and --file
	 * everywhere, is the file. */
	bool rm = streq(cmd, "rm");
	_cleanup_free_ char *spec =
		xasprintf("h%s%s", shorts, rm ? "fp:" : CLI_GLOBAL_SHORTOPTS);
	int c;
	optind = 1;
	long long num;
	while ((c = getopt_long(argc, argv, spec, lopts, NULL)) != -1) {
		if (c == 'f' && rm && !optarg)
			c = 'F';
		int g = c == 'F' ? 0 : cli_global_opt(c, optarg);
		if (g < 0)
			return -1;
		if (g)
			continue;
		switch (c) {
		case 't':
			if (cli_opt_num(cmd, "--timeout", optarg, 0,
					CLI_TIMEOUT_MAX, &num) < 0)
				return -1;
			o->timeout_ms = num * 1000;
			break;
		case 's':
			if (streq(cmd, "rm")) {
				o->stop_first = true;
				break;
			}
			o->signal = parse_signal(optarg);
			if (o->signal <= 0) {
				fprintf(stderr, "orch %s: unknown signal %s\n",
					cmd, optarg);
				return -1;
			}
			break;
		case 'S':
			o->stop_first = true;
			break;
		case 'F':
			o->force = true;
			break;
		case 'v':
			o->volumes = true;
			break;
		case O_JSON:
			o->json = true;
			break;
		case O_NO_STREAM:
			o->no_stream = true;
			break;
		case O_PROTOCOL:
			o->protocol = optarg;
			break;
		case O_INDEX:
			if (cli_opt_num(cmd, "--index", optarg, 1, INT_MAX,
					&num) < 0)
				return -1;
			o->index = (int)num;
			break;
		case O_FORMAT:
			if (!optarg ||
			    (!streq(optarg, "json") && !streq(optarg, "table"))) {
				cli_usage(cmd, usage);
				return -1;
			}
			o->json = streq(optarg, "json");
			break;
		case 'h':
			printf("Usage: orch %s %s\n", cmd, usage);
			exit(0);
		default:
			cli_usage(cmd, usage);
			return -1;
		}
	}
	return optind;
}

/* Adds to *svcs, transitively, the services of m that depend on one of
 * them with restart: true (compose restarts those with it). */
static void add_restart_dependents(const struct project *m, char ***svcs)
{
	for (bool grew = true; grew;) {
		grew = false;
		for (size_t i = 0; i < m->n_services; i++) {
			const struct service *s = &m->services[i];
			if (strv_contains(*svcs, s->name))
				continue;
			for (size_t d = 0; d < s->n_depends_on; d++) {
				const struct m_dep *dep = &s->depends_on[d];
				if (dep->restart &&
				    strv_contains(*svcs, dep->service)) {
					strv_push(svcs, s->name);
					grew = true;
					break;
				}
			}
		}
	}
}

/* Opens the project (locked, unless the command only looks) and finds
 * the containers of the services named from argv[first] on (all when
 * none is). */
static int open_with_names(struct pstate *ps, const char *cmd, bool lock,
			   int argc, char **argv, int first, char ***names,
			   struct orch_err *e)
{
	_cleanup_project_ struct project *m = NULL;
	int r = lock ? cli_open(ps, &m, e) : cli_read(ps, &m, e);
	if (r < 0)
		return r;
	_cleanup_strv_ char **svcs = NULL;
	for (int i = first; i < argc; i++)
		strv_push(&svcs, argv[i]);
	if (svcs && m && streq(cmd, "restart"))
		add_restart_dependents(m, &svcs);
	const char *unknown;
	*names = containers_of(ps, m, svcs, &unknown);
	if (unknown) {
		r = err_set(e, ENOENT, "no such service: %s", unknown);
		pstate_close(ps);
		strv_free(*names);
		*names = NULL;
		return r;
	}
	return 0;
}

static int simple(const char *cmd, const char *usage, const char *shorts,
		  int argc, char **argv)
{
	struct ctl_opts o;
	int first = ctl_parse(cmd, usage, shorts, argc, argv, &o);
	if (first < 0)
		return 2;
	struct pstate ps;
	struct orch_err e = {0};
	_cleanup_strv_ char **names = NULL;
	if (open_with_names(&ps, cmd, true, argc, argv, first, &names, &e) < 0)
		return cli_fail(&e);
	int r = supervisor_ensure(&ps, &e);
	const char *done = "";
	if (r == 0 && streq(cmd, "stop")) {
		r = reconcile_stop(&ps, names, o.timeout_ms, "stop", &e);
		done = "Stopped";
	} else if (r == 0 && streq(cmd, "restart")) {
		for (size_t i = 0; names[i]; i++)
			progress("Container", names[i], "Restarting");
		r = reconcile_stop(&ps, names, o.timeout_ms, "restart", &e);
		done = "Started";
	} else if (r == 0 && streq(cmd, "start")) {
		json_t *req = json_pack("{s:s, s:o}", "op", "start", "names",
					strv_json(names));
		json_t *rep = NULL;
		r = control_call(&ps, req, &rep, &e);
		json_decref(req);
		json_decref(rep);
		if (r == 0)
			r = hooks_run(&ps, names, "post_start", &e);
		done = "Started";
	} else if (r == 0 && (streq(cmd, "kill") || streq(cmd, "pause") ||
			      streq(cmd, "unpause"))) {
		json_t *req = json_pack("{s:s, s:o}", "op", cmd, "names",
					strv_json(names));
		if (streq(cmd, "kill"))
			json_object_set_new(req, "signal",
					    json_integer(o.signal));
		json_t *rep = NULL;
		r = control_call(&ps, req, &rep, &e);
		json_decref(req);
		json_decref(rep);
		done = streq(cmd, "kill")    ? "Killed"
		       : streq(cmd, "pause") ? "Paused"
					     : "Unpaused";
	} else if (r == 0 && streq(cmd, "rm")) {
		if (o.stop_first)
			r = reconcile_stop(&ps, names, o.timeout_ms, "stop", &e);
		json_t *st = NULL;
		if (r == 0)
			r = status_get(&ps, &st, &e);
		_cleanup_strv_ char **gone = xcalloc(1, sizeof(char *));
		for (size_t i = 0; r == 0 && names[i]; i++) {
			json_t *s = json_find_named(st, names[i]);
			const char *state = s ? jstr(s, "state") : "created";
			if (streq(state, "running") && !o.force)
				continue;
			strv_push(&gone, names[i]);
		}
		json_decref(st);
		if (r == 0 && !gone[0])
			fprintf(stderr, "No stopped containers\n");
		if (r == 0 && gone[0])
			r = reconcile_remove(&ps, gone, o.volumes, &e);
		done = NULL;
	}
	for (size_t i = 0; r == 0 && done && names[i]; i++)
		progress("Container", names[i], done);
	pstate_close(&ps);
	return r < 0 ? cli_fail(&e) : 0;
}

int cmd_start(int argc, char **argv)
{
	return simple("start", "[SERVICE...]", "", argc, argv);
}

int cmd_stop(int argc, char **argv)
{
	return simple("stop", "[-t S] [SERVICE...]", "t:", argc, argv);
}

int cmd_restart(int argc, char **argv)
{
	return simple("restart", "[-t S] [SERVICE...]", "t:", argc, argv);
}

int cmd_kill(int argc, char **argv)
{
	return simple("kill", "[-s SIGNAL] [SERVICE...]", "s:", argc, argv);
}

int cmd_pause(int argc, char **argv)
{
	return simple("pause", "[SERVICE...]", "", argc, argv);
}

int cmd_unpause(int argc, char **argv)
{
	return simple("unpause", "[SERVICE...]", "", argc, argv);
}

/* wait: until the first container of the services named has exited;
 * its exit code is wait's, as compose's.  With --down-project, the
 * project is then taken down. */
int cmd_wait(int argc, char **argv)
{
	static const char usage[] = "[--down-project] SERVICE...";
	bool down = false;
	int first = 1;
	for (; first < argc && argv[first][0] == '-'; first++) {
		if (streq(argv[first], "--down-project"))
			down = true;
		else if (streq(argv[first], "-h") ||
			 streq(argv[first], "--help")) {
			printf("Usage: orch wait %s\n", usage);
			return 0;
		} else
			return cli_usage("wait", usage);
	}
	if (first == argc)
		return cli_usage("wait", usage);
	struct pstate ps;
	struct orch_err e = {0};
	_cleanup_strv_ char **names = NULL;
	if (open_with_names(&ps, "wait", false, argc, argv, first, &names,
			    &e) < 0)
		return cli_fail(&e);
	int code = -1;
	while (code < 0) {
		json_t *st = NULL;
		if (status_get(&ps, &st, &e) < 0) {
			pstate_close(&ps);
			return cli_fail(&e);
		}
		for (size_t i = 0; names[i] && code < 0; i++) {
			json_t *c = json_find_named(st, names[i]);
			if (!c || streq(jstr(c, "state") ?: "", "exited"))
				code = c ? (int)jint(c, "exit_code", 0) : 0;
		}
		json_decref(st);
		if (code < 0)
			usleep(100000);
	}
	pstate_close(&ps);
	if (down) {
		char *dargv[] = {"down", NULL};
		int r = cmd_down(1, dargv);
		if (r != 0)
			return r;
	}
	return code;
}

/* scale: up -d --no-recreate with --scale for each SERVICE=N, of those
 * services alone (and their dependencies, unless --no-deps). */
int cmd_scale(int argc, char **argv)
{
	static const char usage[] = "[--no-deps] SERVICE=REPLICAS...";
	_cleanup_strv_ char **up = NULL;
	strv_push(&up, "up");
	strv_push(&up, "-d");
	strv_push(&up, "--no-recreate");
	_cleanup_strv_ char **svcs = NULL;
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--no-deps")) {
			strv_push(&up, "--no-deps");
		} else if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
			printf("Usage: orch scale %s\n", usage);
			return 0;
		} else if (argv[i][0] != '-' && strchr(argv[i], '=') &&
			   argv[i][0] != '=') {
			strv_push(&up, "--scale");
			strv_push(&up, argv[i]);
			_cleanup_free_ char *svc =
			    xstrndup(argv[i], strcspn(argv[i], "="));
			strv_push(&svcs, svc);
		} else {
			return cli_usage("scale", usage);
		}
	}
	if (!svcs)
		return cli_usage("scale", usage);
	for (size_t i = 0; svcs[i]; i++)
		strv_push(&up, svcs[i]);
	return cmd_up((int)strv_len(up), up);
}

int cmd_rm(int argc, char **argv)
{
	return simple("rm", "[-f] [-s] [-v] [SERVICE...]", "sv", argc, argv);
}

/* ---- top ------------------------------------------------------------------- */

static bool same_pidns(pid_t a, const char *b_link)
{
	char p[64], l[128];
	snprintf(p, sizeof(p), "/proc/%d/ns/pid", (int)a);
	ssize_t n = readlink(p, l, sizeof(l) - 1);
	if (n < 0)
		return false;
	l[n] = '\0';
	return streq(l, b_link);
}

int cmd_top(int argc, char **argv)
{
	struct ctl_opts o;
	int first = ctl_parse("top", "[SERVICE...]", "", argc, argv, &o);
	if (first < 0)
		return 2;
	struct pstate ps;
	struct orch_err e = {0};
	_cleanup_strv_ char **names = NULL;
	if (open_with_names(&ps, "top", false, argc, argv, first, &names, &e) < 0)
		return cli_fail(&e);
	for (size_t i = 0; names[i]; i++) {
		json_t *rec = state_container_find(&ps, names[i]);
		pid_t init;
		struct orch_err ie = {0};
		if (!rec || rt_pid(jstr(rec, "id"), &init, &ie) < 0)
			continue;
		char p[64], ns[128];
		snprintf(p, sizeof(p), "/proc/%d/ns/pid", (int)init);
		ssize_t n = readlink(p, ns, sizeof(ns) - 1);
		if (n < 0)
			continue;
		ns[n] = '\0';
		printf("%s\nUID    PID      PPID     CMD\n", names[i]);
		DIR *d = opendir("/proc");
		struct dirent *de;
		while (d && (de = readdir(d))) {
			pid_t pid = atoi(de->d_name);
			if (pid <= 0 || !same_pidns(pid, ns))
				continue;
			char path[64];
			snprintf(path, sizeof(path), "/proc/%d/status", pid);
			_cleanup_fclose_ FILE *f = fopen(path, "re");
			long ppid = 0, uid = 0;
			char line[256];
			while (f && fgets(line, sizeof(line), f)) {
				if (startswith(line, "PPid:"))
					ppid = atol(line + 5);
				if (startswith(line, "Uid:"))
					uid = atol(line + 4);
			}
			snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
			_cleanup_free_ char *cmd = NULL;
			size_t len = 0;
			struct orch_err ce = {0};
			if (read_file(path, &cmd, &len, &ce) < 0)
				continue;
			for (size_t k = 0; k + 1 < len; k++)
				if (!cmd[k])
					cmd[k] = ' ';
			printf("%-6ld %-8d %-8ld %s\n", uid, pid, ppid, cmd);
		}
		if (d)
			closedir(d);
		printf("\n");
	}
	pstate_close(&ps);
	return 0;
}

/* ---- port -------------------------------------------------------------------- */

int cmd_port(int argc, char **argv)
{
	static const char usage[] = "[--protocol tcp|udp] [--index N] SERVICE "
				    "PRIVATE_PORT";
	struct ctl_opts o;
	int first = ctl_parse("port", usage, "", argc, argv, &o);
	if (first < 0)
		return 2;
	if (argc - first != 2)
		return cli_usage("port", usage);
	struct pstate ps;
	struct orch_err e = {0};
	if (cli_read(&ps, NULL, &e) < 0)
		return cli_fail(&e);
	const char *svc = argv[first];
	_cleanup_free_ char *port = xstrdup(argv[first + 1]);
	char *slash = strchr(port, '/');
	const char *proto = o.protocol ? o.protocol : "tcp";
	if (slash) {
		*slash = '\0';
		proto = slash + 1;
	}
	int target = atoi(port);
	size_t i;
	json_t *rec;
	int rc = 1;
	json_array_foreach(state_containers(&ps), i, rec)
	{
		if (!streq(jstr(rec, "service") ?: "", svc) ||
		    jint(rec, "number", 1) != o.index)
			continue;
		size_t k;
		json_t *p;
		json_array_foreach(json_object_get(rec, "ports"), k, p)
		{
			if (jint(p, "TargetPort", 0) == target &&
			    streq(jstr(p, "Protocol"), proto)) {
				printf("%s:%d\n", jstr(p, "URL"),
				       (int)jint(p, "PublishedPort", 0));
				rc = 0;
			}
		}
	}
	pstate_close(&ps);
	if (rc)
		fprintf(stderr, "orch: no port %d/%s published for %s\n", target,
			proto, svc);
	return rc;
}

/* ---- events ------------------------------------------------------------------ */

int cmd_events(int argc, char **argv)
{
	static const char usage[] = "[--json] [SERVICE...]";
	struct ctl_opts o;
	int first = ctl_parse("events", usage, "", argc, argv, &o);
	if (first < 0)
		return 2;
	struct pstate ps;
	struct orch_err e = {0};
	if (cli_read(&ps, NULL, &e) < 0)
		return cli_fail(&e);
	_cleanup_strv_ char **svcs = NULL;
	for (int i = first; i < argc; i++)
		strv_push(&svcs, argv[i]);
	int fd = -1;
	json_t *req = json_pack("{s:s}", "op", "events");
	int r = supervisor_ensure(&ps, &e);
	if (r == 0)
		r = control_open(&ps, req, &fd, &e);
	json_decref(req);
	/* Events stream without the project lock held. */
	pstate_close(&ps);
	if (r < 0)
		return cli_fail(&e);
	_cleanup_fclose_ FILE *f = fdopen(fd, "r");
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		json_auto_t *ev = json_loads(line, 0, NULL);
		if (!ev)
			continue;
		if (svcs && !strv_contains(svcs, jstr(ev, "service") ?: ""))
			continue;
		if (o.json) {
			fputs(line, stdout);
		} else {
			struct strbuf sb;
			sb_init(&sb);
			const char *k;
			json_t *v;
			json_object_foreach(json_object_get(ev, "attributes"),
					    k, v)
			{
				_cleanup_free_ char *val =
					json_is_string(v)
						? xstrdup(json_string_value(v))
						: json_dumps(v, JSON_ENCODE_ANY);
				sb_printf(&sb, "%s%s=%s", sb.len ? ", " : "", k,
					  val);
			}
			printf("%s container %s %s (%s)\n", jstr(ev, "time"),
			       jstr(ev, "action"), jstr(ev, "id"),
			       sb.buf);
			sb_free(&sb);
		}
		fflush(stdout);
	}
	free(line);
	return 0;
}

/* ---- stats ------------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void mib(char *buf, size_t n, uint64_t v)
{
	if (v >= (1ULL << 30))
		snprintf(buf, n, "%.2fGiB", (double)v / (1 << 30));
	else if (v >= (1ULL << 20))
		snprintf(buf, n, "%.2fMiB", (double)v / (1 << 20));
	else
		snprintf(buf, n, "%.2fKiB", (double)v / 1024);
}

int cmd_stats(int argc, char **argv)
{
	static const char usage[] = "[--no-stream] [--format table|json] "
				    "[SERVICE...]";
	struct ctl_opts o;
	int first = ctl_parse("stats", usage, "", argc, argv, &o);
	if (first < 0)
		return 2;
	struct pstate ps;
	struct orch_err e = {0};
	_cleanup_strv_ char **names = NULL;
	if (open_with_names(&ps, "stats", false, argc, argv, first, &names,
			    &e) < 0)
		return cli_fail(&e);
	size_t n = strv_len(names);
	_cleanup_strv_ char **ids = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		json_t *rec = state_container_find(&ps, names[i]);
		ids[i] = xstrdup(rec ? jstr(rec, "id") : "");
	}
	_cleanup_free_ uint64_t *prev = xcalloc(n + 1, sizeof(uint64_t));
	double t0 = now_s();
	for (size_t i = 0; i < n; i++) {
		struct rt_stats st = {0};
		struct orch_err se = {0};
		if (rt_stats(ids[i], &st, &se) == 0)
			prev[i] = st.cpu_usage_ns;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	for (;;) {
		usleep(o.no_stream ? 200000 : 1000000);
		double t1 = now_s();
		if (!o.json && !o.no_stream)
			printf("\033[2J\033[H");
		if (!o.json)
			printf("%-30s %-8s %-22s %-8s %s\n", "NAME", "CPU %",
			       "MEM USAGE / LIMIT", "MEM %", "PIDS");
		for (size_t i = 0; i < n; i++) {
			struct rt_stats st = {0};
			struct orch_err se = {0};
			if (rt_stats(ids[i], &st, &se) < 0)
				continue;
			double cpu = (double)(st.cpu_usage_ns - prev[i]) /
				     ((t1 - t0) * 1e9) * 100.0;
			prev[i] = st.cpu_usage_ns;
			uint64_t limit = st.memory_limit;
			if (!limit || limit > (1ULL << 50))
				limit = (uint64_t)sysconf(_SC_PHYS_PAGES) *
					(uint64_t)sysconf(_SC_PAGESIZE);
			double memp = limit ? (double)st.memory_current * 100.0 /
						      (double)limit
					    : 0;
			char u[32], l[32];
			mib(u, sizeof(u), st.memory_current);
			mib(l, sizeof(l), limit);
			if (o.json) {
				json_auto_t *j = json_pack(
					"{s:s, s:s, s:s, s:s, s:s, s:s}", "Name",
					names[i], "ID", ids[i], "CPUPerc",
					"", "MemUsage", "", "MemPerc", "",
					"PIDs", "");
				char b[80];
				snprintf(b, sizeof(b), "%.2f%%", cpu);
				json_object_set_new(j, "CPUPerc", json_string(b));
				snprintf(b, sizeof(b), "%s / %s", u, l);
				json_object_set_new(j, "MemUsage", json_string(b));
				snprintf(b, sizeof(b), "%.2f%%", memp);
				json_object_set_new(j, "MemPerc", json_string(b));
				snprintf(b, sizeof(b), "%llu",
					 (unsigned long long)st.pids);
				json_object_set_new(j, "PIDs", json_string(b));
				char *t = json_dumps(j, JSON_COMPACT);
				printf("%s\n", t);
				free(t);
			} else {
				char mu[80];
				snprintf(mu, sizeof(mu), "%s / %s", u, l);
				printf("%-30s %-8.2f %-22s %-8.2f %llu\n",
				       names[i], cpu > 100.0 * (double)ncpu
							 ? 100.0 * (double)ncpu
							 : cpu,
				       mu, memp, (unsigned long long)st.pids);
			}
		}
		fflush(stdout);
		t0 = t1;
		if (o.no_stream)
			break;
	}
	pstate_close(&ps);
	return 0;
}
