/* orch logs: the containers' log files, merged by time, with compose's
 * "name  | " prefixes; -f follows them across restarts and rotations.
 * orch attach: one running container's output from now on. */
#include "orchestrator/cli/cli.h"

#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

volatile sig_atomic_t logs_interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	logs_interrupted = 1;
}

struct line {
	char *ts, *text; /* text includes no newline */
	size_t who;
};

struct follow {
	char *path;
	FILE *f;
	ino_t ino;
	struct strbuf part;
};

static const int colors[] = {36, 33, 32, 35, 34, 96, 93, 92, 95, 94};

static void print_line(const char *who, size_t idx, int width, const char *ts,
		       const char *text, const struct logs_opts *o, bool color)
{
	if (!o->no_prefix) {
		if (color)
			printf("\033[%dm%-*s |\033[0m ",
			       colors[idx % ARRAY_SIZE(colors)], width, who);
		else
			printf("%-*s | ", width, who);
	}
	if (o->timestamps)
		printf("%s ", ts);
	printf("%s\n", text);
}

/* Splits "<ts> <text>" in place. */
static void split_line(char *l, char **ts, char **text)
{
	char *sp = strchr(l, ' ');
	if (!sp) {
		*ts = (char *)"";
		*text = l;
		return;
	}
	*sp = '\0';
	*ts = l;
	*text = sp + 1;
}

static int line_cmp(const void *a, const void *b)
{
	const struct line *x = a, *y = b;
	int c = strcmp(x->ts, y->ts);
	return c ? c : (x->who > y->who) - (x->who < y->who);
}

/* "2026-01-02T03:04:05Z"-style times compare as strings; a duration
 * like "10m" means that long ago. */
static char *time_bound(const char *s)
{
	if (!s)
		return NULL;
	int64_t ns;
	if (duration_parse(s, &ns) == 0) {
		time_t t = time(NULL) - (time_t)(ns / 1000000000);
		struct tm tm;
		gmtime_r(&t, &tm);
		char buf[40];
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
		return xstrdup(buf);
	}
	return xstrdup(s);
}

/* Adds txt's lines to v. A last line with no newline yet goes to *rest
 * when given (the follower ends it), else to v. */
static void add_lines(char *txt, size_t who, struct line **v, size_t *n,
		      size_t *cap, const char *since, const char *until,
		      struct strbuf *rest)
{
	char *end = strrchr(txt, '\n');
	if (rest && *(end ? end + 1 : txt)) {
		sb_adds(rest, end ? end + 1 : txt);
		*(end ? end + 1 : txt) = '\0';
	}
	char *save = NULL;
	for (char *l = strtok_r(txt, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *ts, *text;
		split_line(l, &ts, &text);
		if (since && strcmp(ts, since) < 0)
			continue;
		if (until && strcmp(ts, until) >= 0)
			continue;
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 256;
			*v = xrealloc(*v, *cap * sizeof(**v));
		}
		(*v)[(*n)++] = (struct line){xstrdup(ts), xstrdup(text), who};
	}
}

/* What is left to read of f, as a string. */
static char *read_rest(FILE *f)
{
	struct strbuf sb;
	sb_init(&sb);
	char buf[8192];
	size_t k;
	clearerr(f);
	while ((k = fread(buf, 1, sizeof(buf), f)) > 0)
		sb_add(&sb, buf, k);
	return sb_steal(&sb);
}

/* Prints fl's new complete lines; a partial one waits in fl->part. */
static void follow_read(struct follow *fl, const char *who, size_t idx,
			int width, const struct logs_opts *o, bool color)
{
	_cleanup_free_ char *txt = read_rest(fl->f);
	for (char *c = txt; *c; c++) {
		if (*c != '\n') {
			sb_add(&fl->part, c, 1);
			continue;
		}
		char *ts, *text;
		split_line(fl->part.buf, &ts, &text);
		print_line(who, idx, width, ts, text, o, color);
		sb_truncate(&fl->part, 0);
	}
}

static void follow_poll(struct follow *fl, const char *who, size_t idx,
			int width, const struct logs_opts *o, bool color)
{
	struct stat st;
	if (stat(fl->path, &st) == 0 && fl->f && st.st_ino != fl->ino) {
		/* Rotated: finish the old file, then start the new one. */
		follow_read(fl, who, idx, width, o, color);
		fclose(fl->f);
		fl->f = NULL;
	}
	if (!fl->f) {
		fl->f = fopen(fl->path, "re");
		if (!fl->f)
			return;
		struct stat fs;
		fstat(fileno(fl->f), &fs);
		fl->ino = fs.st_ino;
	}
	follow_read(fl, who, idx, width, o, color);
	fflush(stdout);
}

int logs_run(struct pstate *ps, char **names, const struct logs_opts *o,
	     int (*stop)(struct pstate *ps, void *arg), void *arg)
{
	size_t n = strv_len(names);
	int width = 0;
	for (size_t i = 0; i < n; i++)
		if ((int)strlen(names[i]) > width)
			width = (int)strlen(names[i]);
	bool color = cli_color(stdout);
	_cleanup_free_ char *since = time_bound(o->since);
	_cleanup_free_ char *until = time_bound(o->until);

	for (size_t i = 0; i < n; i++) {
		json_t *rec = state_container_find(ps, names[i]);
		if (rec && streq(jstr(rec, "log_driver") ?: "", "none"))
			fprintf(stderr,
				"orch: %s: its logging driver is none: no logs "
				"are kept\n",
				names[i]);
	}
	/* What is there already, merged by time. */
	struct line *v = NULL;
	size_t nl = 0, cap = 0;
	struct follow *fl = xcalloc(n + 1, sizeof(*fl));
	for (size_t i = 0; i < n; i++) {
		size_t start = nl;
		fl[i].path = xasprintf("%s/logs/%s.log", ps->dir, names[i]);
		sb_init(&fl[i].part);
		/* The current file is opened first: what is written or rotated
		 * from now on is either read here or found by the follower,
		 * which goes on from where this read ends. */
		FILE *cur = fopen(fl[i].path, "re");
		struct stat cst = {0};
		if (cur && fstat(fileno(cur), &cst) < 0) {
			fclose(cur);
			cur = NULL;
		}
		for (int k = 3; k >= 1; k--) {
			_cleanup_free_ char *p = xasprintf(
				"%s/logs/%s.log.%d", ps->dir, names[i], k);
			struct stat st;
			if (cur && stat(p, &st) == 0 && st.st_ino == cst.st_ino)
				continue; /* rotated since: read as cur */
			_cleanup_free_ char *txt = NULL;
			struct orch_err e = {0};
			if (read_file(p, &txt, NULL, &e) == 0)
				add_lines(txt, i, &v, &nl, &cap, since, until,
					  NULL);
		}
		if (cur) {
			_cleanup_free_ char *txt = read_rest(cur);
			add_lines(txt, i, &v, &nl, &cap, since, until,
				  o->follow ? &fl[i].part : NULL);
			if (o->follow) {
				fl[i].f = cur;
				fl[i].ino = cst.st_ino;
			} else
				fclose(cur);
		}
		if (o->tail >= 0 && nl - start > (size_t)o->tail) {
			size_t drop = nl - start - (size_t)o->tail;
			for (size_t k = start; k < start + drop; k++) {
				free(v[k].ts);
				free(v[k].text);
			}
			memmove(&v[start], &v[start + drop],
				(nl - start - drop) * sizeof(*v));
			nl -= drop;
		}
	}
	if (nl)
		qsort(v, nl, sizeof(*v), line_cmp);
	for (size_t i = 0; i < nl; i++) {
		print_line(names[v[i].who], v[i].who, width, v[i].ts,
			   v[i].text, o, color);
		free(v[i].ts);
		free(v[i].text);
	}
	free(v);
	fflush(stdout);

	if (o->follow && !o->own_signals) {
		struct sigaction sa = {.sa_handler = on_interrupt};
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	if (o->follow) {
		int tick = 0;
		while (!logs_interrupted) {
			for (size_t i = 0; i < n; i++)
				follow_poll(&fl[i], names[i], i, width, o,
					    color);
			if (stop && ++tick % 5 == 0 && stop(ps, arg)) {
				/* One last read for what came meanwhile. */
				for (size_t i = 0; i < n; i++)
					follow_poll(&fl[i], names[i], i, width,
						    o, color);
				break;
			}
			usleep(50000);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (fl[i].f)
			fclose(fl[i].f);
		free(fl[i].path);
		sb_free(&fl[i].part);
	}
	free(fl);
	return 0;
}

/* `logs -f` ends when the project is gone or nothing runs any more. */
static int logs_should_stop(struct pstate *ps, void *arg)
{
	(void)arg;
	_cleanup_free_ char *sf = pstate_path(ps, "state.json");
	if (access(sf, F_OK) < 0)
		return 1;
	_cleanup_free_ char *stf = pstate_path(ps, "status.json");
	json_auto_t *st = json_load_file(stf, 0, NULL);
	if (!st)
		return 0;
	const char *k;
	json_t *c;
	json_object_foreach(st, k, c)
	{
		const char *s = jstr(c, "state");
		if (s && (streq(s, "running") || streq(s, "restarting")))
			return 0;
	}
	return 1;
}

enum { O_SINCE = CLI_OPT_LOCAL, O_UNTIL, O_NO_PREFIX, O_NO_COLOR };

int cmd_logs(int argc, char **argv)
{
	static const char usage[] = "[-f] [-t] [-n N|--tail N] [--since T] "
				    "[--until T] [--no-log-prefix] "
				    "[SERVICE...]";
	/* -f here is --follow, as in compose: the file option goes before
	 * the command. */
	static const struct option lopts[] = {
		{"project-name", required_argument, NULL, 'p'},
		{"project-directory", required_argument, NULL,
		 CLI_OPT_PROJECT_DIR},
		{"env-file", required_argument, NULL, CLI_OPT_ENV_FILE},
		{"profile", required_argument, NULL, CLI_OPT_PROFILE},
		{"ansi", required_argument, NULL, CLI_OPT_ANSI},
		{"follow", no_argument, NULL, 'f'},
		{"timestamps", no_argument, NULL, 't'},
		{"tail", required_argument, NULL, 'n'},
		{"since", required_argument, NULL, O_SINCE},
		{"until", required_argument, NULL, O_UNTIL},
		{"no-log-prefix", no_argument, NULL, O_NO_PREFIX},
		{"no-color", no_argument, NULL, O_NO_COLOR},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct logs_opts o = {.tail = -1};
	int c;
	optind = 1;
	long long num;
	while ((c = getopt_long(argc, argv, "ftn:hp:", lopts, NULL)) != -1) {
		if (c == 'p' || (c >= CLI_OPT_PROJECT_DIR && c < CLI_OPT_LOCAL)) {
			if (cli_global_opt(c, optarg) < 0)
				return 2;
			continue;
		}
		switch (c) {
		case 'f':
			o.follow = true;
			break;
		case 't':
			o.timestamps = true;
			break;
		case 'n':
			if (streq(optarg, "all"))
				o.tail = -1;
			else if (cli_opt_num("logs", "--tail", optarg, 0,
					     LLONG_MAX, &num) < 0)
				return 2;
			else
				o.tail = num;
			break;
		case O_SINCE:
			o.since = optarg;
			break;
		case O_UNTIL:
			o.until = optarg;
			break;
		case O_NO_PREFIX:
			o.no_prefix = true;
			break;
		case O_NO_COLOR:
			cli.ansi = CLI_ANSI_NEVER;
			break;
		case 'h':
			printf("Usage: orch logs %s\n", usage);
			return 0;
		default:
			return cli_usage("logs", usage);
		}
	}
	struct pstate ps;
	struct orch_err e = {0};
	_cleanup_project_ struct project *m = NULL;
	if (cli_read(&ps, &m, &e) < 0)
		return cli_fail(&e);
	const char *unknown;
	_cleanup_strv_ char **svcs = NULL;
	for (int i = optind; i < argc; i++)
		strv_push(&svcs, argv[i]);
	_cleanup_strv_ char **names = containers_of(&ps, m, svcs, &unknown);
	if (unknown) {
		pstate_close(&ps);
		fprintf(stderr, "orch: no such service: %s\n", unknown);
		return 1;
	}
	logs_run(&ps, names, &o, logs_should_stop, NULL);
	pstate_close(&ps);
	return 0;
}

/* ---- attach ----------------------------------------------------------------
 */

/* attach: a running container's output from now on, bare, until it
 * exits (its exit code is attach's) or the detach keys are typed;
 * standard input goes to it when it keeps one open (stdin_open), to its
 * terminal when it has one (ours then raw, as docker's); signals go to it
 * (--sig-proxy, the default), else Ctrl-C detaches. */
static volatile sig_atomic_t attach_sig;

static void on_attach_signal(int sig)
{
	attach_sig = sig;
}

struct attach_ctx {
	const char *name;
	bool proxy;
	int code;  /* its exit code once it exited, else -1 */
	pid_t pump; /* stdin_pump, else -1 */
};

#define PUMP_DETACHED 3 /* the pump's exit code: the keys were typed */

static int attach_stop(struct pstate *ps, void *arg)
{
	struct attach_ctx *a = arg;
	struct orch_err ign = {0};
	int sig = attach_sig;
	if (sig && a->proxy) {
		attach_sig = 0;
		char *names[] = {(char *)a->name, NULL};
		json_t *req = json_pack("{s:s, s:o, s:i}", "op", "kill",
					"names", strv_json(names), "signal",
					sig);
		json_t *rep = NULL;
		control_call(ps, req, &rep, &ign);
		json_decref(req);
		json_decref(rep);
	}
	int pst;
	if (a->pump > 0 && waitpid(a->pump, &pst, WNOHANG) == a->pump) {
		a->pump = -1;
		if (WIFEXITED(pst) && WEXITSTATUS(pst) == PUMP_DETACHED) {
			a->code = 0;
			return 1;
		}
	}
	json_t *st = NULL;
	if (status_get(ps, &st, &ign) < 0)
		return 1;
	json_t *c = json_find_named(st, a->name);
	if (!c || streq(jstr(c, "state") ?: "", "exited"))
		a->code = c ? (int)jint(c, "exit_code", 0) : 0;
	json_decref(st);
	return a->code >= 0;
}

/* docker's --detach-keys: "ctrl-p,ctrl-q" (ctrl- of a letter or of
 * @[\\]^_, or one character each) -> the bytes, at most max; 0 when it
 * is not that. */
static size_t detach_keys(const char *spec, char *out, size_t max)
{
	size_t n = 0;
	_cleanup_free_ char *copy = xstrdup(spec);
	char *save = NULL;
	for (char *k = strtok_r(copy, ",", &save); k;
	     k = strtok_r(NULL, ",", &save)) {
		char c;
		if (startswith(k, "ctrl-") && strlen(k) == 6 &&
		    (isalpha((unsigned char)k[5]) || strchr("@[\\]^_", k[5])))
			c = (char)(toupper((unsigned char)k[5]) & 0x1f);
		else if (strlen(k) == 1)
			c = k[0];
		else
			return 0;
		if (n == max)
			return 0;
		out[n++] = c;
	}
	return n;
}

/* Copies our standard input to the container's (its FIFO) until it ends,
 * or until keys (n of them, none when 0) are typed in a row, which ends
 * it with PUMP_DETACHED; a child, killed when attach ends. */
static pid_t stdin_pump(const char *fifo, const char *keys, size_t n_keys)
{
	int fd = open(fifo, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	pid_t pid = fork();
	if (pid != 0) {
		close(fd);
		return pid;
	}
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	char buf[4096], out[4096 + 16];
	size_t held = 0; /* how many of keys were typed last */
	for (;;) {
		ssize_t n = RETRY_EINTR(read(0, buf, sizeof(buf)));
		if (n <= 0)
			_exit(0);
		size_t len = 0;
		for (ssize_t i = 0; i < n; i++) {
			if (held < n_keys && buf[i] == keys[held]) {
				if (++held == n_keys)
					_exit(PUMP_DETACHED);
				continue;
			}
			/* Not the keys after all: what was held goes. */
			memcpy(out + len, keys, held);
			len += held;
			held = 0;
			if (n_keys && buf[i] == keys[0])
				held = 1;
			else
				out[len++] = buf[i];
		}
		if (len && write_all(fd, out, len) < 0)
			_exit(0);
	}
}

enum { O_ATT_INDEX = CLI_OPT_LOCAL, O_NO_STDIN, O_SIG_PROXY, O_DETACH_KEYS };

int cmd_attach(int argc, char **argv)
{
	static const char usage[] =
	    "[--no-stdin] [--sig-proxy=true|false] [--detach-keys KEYS] "
	    "[--index N] SERVICE";
	static const struct option lopts[] = {
		CLI_GLOBAL_LONGOPTS,
		{"no-stdin", no_argument, NULL, O_NO_STDIN},
		{"sig-proxy", optional_argument, NULL, O_SIG_PROXY},
		{"detach-keys", required_argument, NULL, O_DETACH_KEYS},
		{"index", required_argument, NULL, O_ATT_INDEX},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool no_stdin = false, proxy = true;
	char keys[8];
	size_t n_keys = detach_keys("ctrl-p,ctrl-q", keys, sizeof(keys));
	long long index = 1;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "h" CLI_GLOBAL_SHORTOPTS, lopts)) !=
	       -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		switch (c) {
		case O_NO_STDIN:
			no_stdin = true;
			break;
		case O_SIG_PROXY:
			if (cli_opt_bool("attach", "--sig-proxy", optarg,
					 &proxy) < 0)
				return 2;
			break;
		case O_DETACH_KEYS:
			n_keys = detach_keys(optarg, keys, sizeof(keys));
			if (!n_keys) {
				fprintf(stderr, "orch attach: --detach-keys %s: "
						"want keys as ctrl-p,ctrl-q (ctrl- "
						"of a letter, or one character "
						"each)\n",
					optarg);
				return 2;
			}
			break;
		case O_ATT_INDEX:
			if (cli_opt_num("attach", "--index", optarg, 1,
					INT_MAX, &index) < 0)
				return 2;
			break;
		case 'h':
			printf("Usage: orch attach %s\n", usage);
			return 0;
		default:
			return cli_usage("attach", usage);
		}
	}
	if (argc - optind != 1)
		return cli_usage("attach", usage);
	struct pstate ps;
	struct orch_err e = {0};
	if (cli_read(&ps, NULL, &e) < 0)
		return cli_fail(&e);
	pid_t pid;
	json_t *rec = cli_running(&ps, argv[optind], index, &pid);
	if (!rec) {
		pstate_close(&ps);
		return 1;
	}
	_cleanup_free_ char *name = xstrdup(jstr(rec, "name"));
	json_t *spec = json_object_get(rec, "spec");
	pid_t pump = -1;
	/* A terminal's keys go to the container's as they are typed. */
	struct termios saved;
	bool raw = false;
	if (!no_stdin && jbool(spec, "stdin_open")) {
		_cleanup_free_ char *fifo =
		    xasprintf("%s/logs/%s.stdin", ps.dir, name);
		if (jbool(spec, "tty") && isatty(0) &&
		    tcgetattr(0, &saved) == 0) {
			struct termios t = saved;
			cfmakeraw(&t);
			/* Its log's lines end in \n alone. */
			t.c_oflag |= OPOST | ONLCR;
			raw = tcsetattr(0, TCSANOW, &t) == 0;
		}
		pump = stdin_pump(fifo, keys, n_keys);
	}
	struct attach_ctx a = {
	    .name = name, .proxy = proxy, .code = -1, .pump = pump};
	if (proxy) {
		struct sigaction sa = {.sa_handler = on_attach_signal};
		static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT,
					   SIGUSR1, SIGUSR2};
		for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
			sigaction(sigs[i], &sa, NULL);
	}
	char *names[] = {name, NULL};
	struct logs_opts o = {.follow = true,
			      .no_prefix = true,
			      .tail = 0,
			      .own_signals = proxy};
	logs_run(&ps, names, &o, attach_stop, &a);
	pstate_close(&ps);
	if (raw)
		tcsetattr(0, TCSANOW, &saved);
	if (a.pump > 0) {
		kill(a.pump, SIGTERM);
		waitpid(a.pump, NULL, 0);
	}
	return a.code >= 0 ? a.code : 0;
}
