/* orch-runtime — run one container from the command line (tests, debugging,
 * benchmarks). */
#include "runtime/container_impl.h"

#include <getopt.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static const char usage_text[] =
	"usage: orch-runtime run [--rootfs DIR]... [--rw DIR] [--hostname H]\n"
	"           [--env K=V]... [--workdir D] [--user UID[:GID]]\n"
	"           [--mount SRC:DST[:ro]]... [--tmpfs DST[:size]]... [--read-only]\n"
	"           [--memory BYTES] [--memory-swap BYTES] [--cpus F] [--cpu-shares N]\n"
	"           [--pids N] [--cap-add C]... [--cap-drop C]... [--privileged]\n"
	"           [--no-seccomp] [--seccomp-profile FILE] [--sysctl K=V]...\n"
	"           [--device HOST[:CONTAINER][:PERMS]]... [--device-cgroup-rule R]...\n"
	"           [--init] [--netns PATH | --net host|none] [--stop-signal SIG]\n"
	"           [--detach] [--name NAME] [--image NAME[:TAG]]\n"
	"           [--volume NAME:DST[:ro]]... [--userns BASE[:COUNT]] -- CMD [ARG]...\n"
	"       orch-runtime exec [--env K=V]... [--workdir D] [--user UID[:GID]] NAME -- CMD [ARG]...\n"
	"       orch-runtime kill NAME [SIGNAL]\n"
	"       orch-runtime ps\n"
	"       orch-runtime stats NAME\n"
	"       orch-runtime pause|resume NAME\n"
	"       orch-runtime delete NAME...\n";

static int usage(const char *why)
{
	if (why)
		log_error("%s", why);
	fputs(usage_text, stderr);
	return 2;
}

static int container_pidfd = -1;
static volatile sig_atomic_t pending_signal;

/* Signals to orch-runtime go to the container; one that arrives while it
 * is being created is sent once it runs. */
static void forward_signal(int sig)
{
	if (container_pidfd >= 0)
		syscall(SYS_pidfd_send_signal, container_pidfd, sig, NULL, 0);
	else
		pending_signal = sig;
}

/* --image and --volume: the image's root and defaults where the command
 * line leaves them, and named volumes, created and filled from the image
 * on first use. */
static int apply_image(struct rt_cli_run *o, struct rt_image **img,
		       struct orch_err *e)
{
	struct rt_spec *s = &o->spec;
	int r;
	if (o->image && ((r = rt_image_lookup(o->image, img, e)) < 0 ||
			 (r = rt_image_apply(*img, s, o->user_set, e)) < 0))
		return r;
	for (size_t i = 0; o->volumes && o->volumes[i]; i++) {
		_cleanup_free_ char *name = xstrdup(o->volumes[i]);
		char *dst = strchr(name, ':');
		char *mode = dst ? strchr(dst + 1, ':') : NULL;
		if (dst)
			*dst++ = '\0';
		if (mode)
			*mode++ = '\0';
		if (!dst || dst[0] != '/' || (mode && !streq(mode, "ro") && !streq(mode, "rw")))
			return err_set(e, EINVAL, "--volume %s: want NAME:/DST[:ro]", o->volumes[i]);
		char *mp;
		struct rt_ids ids;
		rt_ids_base(&ids, s->n_uid_map ? s->uid_map[0].outside : 0);
		r = rt_volume_prepare(name, *img, dst, &ids, &mp, e);
		if (r < 0)
			return r;
		s->mounts = xrealloc(s->mounts, (s->n_mounts + 1) * sizeof(*s->mounts));
		s->mounts[s->n_mounts++] = (struct rt_mount){
			.type = RT_MOUNT_VOLUME, .source = mp,
			.target = xstrdup(dst), .readonly = mode && streq(mode, "ro")};
	}
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	struct orch_err e = {0};
	struct rt_cli_run o;
	if (rt_cli_parse_run(argc, argv, &o, &e) < 0)
		return usage(e.msg);
	struct rt_image *img = NULL;
	if (apply_image(&o, &img, &e) < 0) {
		log_error("%s", e.msg);
		rt_cli_run_clear(&o);
		rt_image_free(img);
		return 125;
	}
	if (!o.detach)
		for (int i = 0; i < 3; i++)
			o.spec.stdio[i] = i;
	/* Deleted when it ends, below. */
	o.spec.volatile_upper = !o.detach;
	struct rt_container *c = NULL;
	if (!o.detach) {
		static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT,
					   SIGUSR1, SIGUSR2};
		struct sigaction sa = {.sa_handler = forward_signal,
				       .sa_flags = SA_RESTART};
		for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
			sigaction(sigs[i], &sa, NULL);
	}
	int rc = 0;
	/* Detached containers go through create + start, the path a
	 * supervisor takes to configure the network in between. */
	int r = o.detach ? rt_create(&o.spec, &c, &e) : rt_run(&o.spec, &c, &e);
	if (r == 0 && o.detach)
		r = rt_start(c, &e);
	if (r < 0 && !c) {
		log_error("%s", e.msg);
		rt_cli_run_clear(&o);
		rt_image_free(img);
		return 125;
	}
	container_pidfd = c->pidfd;
	if (pending_signal)
		forward_signal(pending_signal);
	if (r < 0) {
		log_error("%s", e.msg);
		rc = e.code == ENOENT ? 127 : e.code == EACCES ? 126 : 125;
		int status;
		rt_wait(c, &status, &e);
	} else if (o.detach) {
		printf("%s\n", o.id);
	} else if (rt_wait(c, &rc, &e) < 0) {
		log_error("%s", e.msg);
		rc = 125;
	}
	container_pidfd = -1;
	rt_container_free(c);
	if (!o.detach || rc != 0) {
		struct orch_err de = {0};
		if (rt_delete(o.id, true, &de) < 0) {
			log_error("%s", de.msg);
			if (rc == 0)
				rc = 125;
		}
	}
	rt_cli_run_clear(&o);
	rt_image_free(img);
	return rc;
}

static int cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{"env", required_argument, NULL, 'e'},
		{"workdir", required_argument, NULL, 'w'},
		{"user", required_argument, NULL, 'u'},
		{NULL, 0, NULL, 0},
	};
	struct rt_exec_spec x = {.stdio = {0, 1, 2}};
	_cleanup_strv_ char **env = NULL;
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+e:w:u:", opts, NULL)) != -1) {
		switch (c) {
		case 'e': strv_push(&env, optarg); break;
		case 'w': x.workdir = optarg; break;
		case 'u': x.user = optarg; break;
		default: return usage("exec: unknown or incomplete option");
		}
	}
	if (argc - optind < 2)
		return usage("exec: want NAME -- CMD");
	const char *id = argv[optind++];
	if (streq(argv[optind], "--"))
		optind++;
	if (optind >= argc)
		return usage("exec: no command");
	x.argv = argv + optind;
	x.env = env;
	struct orch_err e = {0};
	pid_t pid;
	if (rt_exec(id, &x, &pid, &e) < 0) {
		log_error("%s", e.msg);
		return e.code == ENOENT && strstr(e.msg, "exec ") ? 127 : 125;
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 125;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int cmd_kill(int argc, char **argv)
{
	if (argc < 2 || argc > 3)
		return usage("kill: want NAME [SIGNAL]");
	int sig = SIGTERM;
	if (argc == 3 && (sig = parse_signal(argv[2])) <= 0)
		return usage("kill: unknown signal");
	struct orch_err e = {0};
	if (rt_kill(argv[1], sig, &e) < 0) {
		log_error("%s", e.msg);
		return 1;
	}
	return 0;
}

static int cmd_ps(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return usage("ps takes no arguments");
	struct orch_err e = {0};
	_cleanup_strv_ char **ids = NULL;
	if (rt_list(&ids, &e) < 0) {
		log_error("%s", e.msg);
		return 1;
	}
	printf("%-24s %8s %s\n", "NAME", "PID", "STATUS");
	for (size_t i = 0; ids[i]; i++) {
		pid_t pid = 0;
		struct orch_err pe = {0};
		bool running = rt_pid(ids[i], &pid, &pe) == 0;
		printf("%-24s %8d %s\n", ids[i], running ? (int)pid : 0,
		       running ? "running" : "stopped");
	}
	return 0;
}

static int cmd_stats(int argc, char **argv)
{
	if (argc != 2)
		return usage("stats: want NAME");
	struct orch_err e = {0};
	struct rt_stats st;
	if (rt_stats(argv[1], &st, &e) < 0) {
		log_error("%s", e.msg);
		return 1;
	}
	printf("memory_current %llu\nmemory_peak %llu\nmemory_limit %llu\n"
	       "cpu_usage_ns %llu\npids %llu\n",
	       (unsigned long long)st.memory_current,
	       (unsigned long long)st.memory_peak,
	       (unsigned long long)st.memory_limit,
	       (unsigned long long)st.cpu_usage_ns,
	       (unsigned long long)st.pids);
	return 0;
}

static int cmd_by_id(int argc, char **argv)
{
	if (argc < 2)
		return usage("want NAME");
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		struct orch_err e = {0};
		int r = streq(argv[0], "delete")  ? rt_delete(argv[i], true, &e)
			: streq(argv[0], "pause") ? rt_pause(argv[i], &e)
						  : rt_resume(argv[i], &e);
		if (r < 0) {
			log_error("%s", e.msg);
			rc = 1;
		}
	}
	return rc;
}

int main(int argc, char **argv)
{
	log_init("orch-runtime");
	if (argc < 2)
		return usage(NULL);
	const char *cmd = argv[1];
	argc--;
	argv++;
	if (streq(cmd, "run"))
		return cmd_run(argc, argv);
	if (streq(cmd, "exec"))
		return cmd_exec(argc, argv);
	if (streq(cmd, "kill"))
		return cmd_kill(argc, argv);
	if (streq(cmd, "ps"))
		return cmd_ps(argc, argv);
	if (streq(cmd, "stats"))
		return cmd_stats(argc, argv);
	if (streq(cmd, "delete") || streq(cmd, "pause") || streq(cmd, "resume"))
		return cmd_by_id(argc, argv);
	if (streq(cmd, "-h") || streq(cmd, "--help")) {
		fputs(usage_text, stdout);
		return 0;
	}
	return usage("unknown command");
}
