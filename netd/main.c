/* netd — the host's network daemon: bridges, veth pairs, addresses,
 * nftables isolation, published ports and service DNS for every project
 * of every user.  Without --foreground it detaches once it serves (its
 * log in $ORCH_RUN/netd/netd.log), so whoever started it may connect as
 * soon as it returns; --foreground is for service managers and debugging. */
#include "netd/netd-int.h"

#include <fcntl.h>
#include <getopt.h>
#include <sys/wait.h>

static void usage(FILE *f)
{
	fprintf(f, "Usage: netd [--foreground] [--config FILE]\n"
		   "       netd call OP [JSON-ARGS] [--netns PATH]\n"
		   "       netd call --raw [--netns PATH] < MESSAGE\n"
		   "Serves $ORCH_NETD_SOCKET, else $ORCH_RUN/netd.sock (default\n"
		   "/run/orch/netd.sock).\n"
		   "Config: FILE, else $ORCH_ROOT/netd.json when present.\n"
		   "`call` sends one request (or raw message) and prints the "
		   "reply;\nit exits 1 when the reply is an error.\n");
}

/* netd call: one request by hand, for debugging and tests. */
static int call(int argc, char **argv)
{
	const char *netns = NULL;
	bool raw = false;
	char *pos[2] = {NULL, NULL};
	int npos = 0;
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--raw"))
			raw = true;
		else if (streq(argv[i], "--netns") && i + 1 < argc)
			netns = argv[++i];
		else if (npos < 2 && argv[i][0] != '-')
			pos[npos++] = argv[i];
		else {
			usage(stderr);
			return 2;
		}
	}
	if (raw == (npos > 0)) {
		usage(stderr);
		return 2;
	}
	struct strbuf msg;
	sb_init(&msg);
	if (raw) {
		char buf[65536];
		size_t n;
		while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
			sb_add(&msg, buf, n);
	} else {
		sb_printf(&msg, "{\"v\":%d,\"op\":\"%s\",\"args\":%s}",
			  NETD_PROTO_VERSION, pos[0], pos[1] ? pos[1] : "{}");
	}
	struct orch_err e = {0};
	struct netd_conn *c = NULL;
	_cleanup_close_ int nsfd = -1;
	_cleanup_free_ char *reply = NULL;
	int r = 0;
	if (netns && (nsfd = open(netns, O_RDONLY | O_CLOEXEC)) < 0)
		r = err_sys(&e, errno, "opening %s", netns);
	if (r == 0)
		r = netd_connect_raw(&c, &e);
	if (r == 0)
		r = netd_call_raw(c, msg.buf, msg.len, nsfd,
				  &reply, &e);
	netd_close(c);
	sb_free(&msg);
	if (r >= 0 && !reply)
		r = err_set(&e, EPROTO, "netd sent no reply");
	if (r < 0) {
		log_error("%s", e.msg);
		return 1;
	}
	printf("%s\n", reply);
	return strstr(reply, "\"ok\":true") ? 0 : 1;
}

/* Forks; the parent returns the child's verdict: 0 once it serves. */
static int detach(int *ready_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		char c;
		ssize_t n = RETRY_EINTR(read(p[0], &c, 1));
		if (n != 1)
			fprintf(stderr,
				"netd: failed to start, see %s/netd/netd.log\n",
				orch_run());
		_exit(n == 1 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	_cleanup_free_ char *dir = path_join(orch_run(), "netd");
	mkdir_p(dir, 0700, NULL);
	_cleanup_free_ char *log = path_join(dir, "netd.log");
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (in >= 0)
		dup2(in, 0);
	if (out >= 0) {
		dup2(out, 1);
		dup2(out, 2);
	}
	/* A daemon holds nothing its caller's callers left open (a make's
	 * jobserver pipe, a test harness's): only the pipe to its parent. */
	int ready = p[1];
	if (ready > 3)
		close_range(3, (unsigned)ready - 1, 0);
	close_range((unsigned)ready + 1, ~0U, 0);
	*ready_fd = ready;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"foreground", no_argument, NULL, 'f'},
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct server_opts o = {.ready_fd = -1};
	bool foreground = false;
	int c;
	log_init("netd");
	if (argc > 1 && streq(argv[1], "call"))
		return call(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "fc:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			foreground = true;
			break;
		case 'c':
			o.config = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (geteuid() != 0) {
		log_error("netd must run as root");
		return 1;
	}
	/* glibc reads its tunables at start only, hence one re-exec when
	 * whoever started us did not set them (orch does). */
	_cleanup_free_ char *tun = netd_tunables();
	if (tun) {
		setenv("GLIBC_TUNABLES", strchr(tun, '=') + 1, 1);
		/* By its real path, so that it keeps its name (comm). */
		_cleanup_free_ char *self = self_exe();
		if (self)
			execv(self, argv);
		log_warn("re-executing without malloc's thread cache: %s",
			 strerror(errno));
	}
	/* Started detached by orch (daemon_spawn), which waits on fd 3. */
	const char *spawned = getenv("ORCH_NETD_READY");
	if (spawned && streq(spawned, "3") && fcntl(3, F_GETFD) >= 0) {
		unsetenv("ORCH_NETD_READY");
		fcntl(3, F_SETFD, FD_CLOEXEC);
		o.ready_fd = 3;
	} else if (!foreground && detach(&o.ready_fd) < 0) {
		log_error("detaching: %s", strerror(errno));
		return 1;
	}
	struct orch_err e = {0};
	int r = server_run(&o, &e);
	if (r < 0) {
		log_error("%s", e.msg);
		return 1;
	}
	return 0;
}
