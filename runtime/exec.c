/* Turning a prepared child into the container's process (user, rlimits,
 * capabilities, no_new_privs, seccomp, exec), and rt_exec: a new process
 * inside a running container. */
#include "runtime/container_impl.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int sync_send(int fd, int type, int code, int pid, const char *msg)
{
	struct sync_packet p = {.type = type, .code = code, .pid = pid};
	size_t len = offsetof(struct sync_packet, msg);
	if (msg) {
		snprintf(p.msg, sizeof(p.msg), "%s", msg);
		len += strlen(p.msg) + 1;
	}
	ssize_t n = RETRY_EINTR(send(fd, &p, len, MSG_NOSIGNAL));
	return n < 0 ? -errno : 0;
}

int sync_recv(int fd, struct sync_packet *p)
{
	memset(p, 0, sizeof(*p));
	ssize_t n = RETRY_EINTR(recv(fd, p, sizeof(*p) - 1, 0));
	/* A peer that exits with a message of ours unread makes the kernel
	 * report ECONNRESET once, ahead of what the peer sent before it
	 * went (its error): read that. */
	if (n < 0 && errno == ECONNRESET)
		n = RETRY_EINTR(recv(fd, p, sizeof(*p) - 1, 0));
	if (n < 0)
		return -errno;
	if (n == 0)
		p->type = 0;
	p->msg[sizeof(p->msg) - 1] = '\0';
	return (int)n;
}

int sync_send_fds(int fd, int type, const int *fds, size_t n)
{
	struct sync_packet p = {.type = type};
	if (n > NS_MOUNTS_MAX_FDS)
		return -E2BIG;
	return fd_sendmsg(fd, &p, offsetof(struct sync_packet, msg), fds, n, 0);
}

int sync_recv_fds(int fd, struct sync_packet *p, int *fds, size_t n)
{
	size_t got = 0;
	int r = sync_recv_fds_upto(fd, p, fds, n, &got);
	if (r > 0 && got != n) {
		for (size_t i = 0; i < got; i++)
			close(fds[i]);
		return -EBADMSG;
	}
	return r;
}

int sync_recv_fds_upto(int fd, struct sync_packet *p, int *fds, size_t max,
		       size_t *got)
{
	memset(p, 0, sizeof(*p));
	/* On -EBADMSG, p holds what came (an error packet, say); fds none.
	 * ECONNRESET: as in sync_recv, what the peer sent comes next. */
	ssize_t r = fd_recvmsg(fd, p, sizeof(*p) - 1, fds, max, got, 0);
	if (r == -ECONNRESET)
		r = fd_recvmsg(fd, p, sizeof(*p) - 1, fds, max, got, 0);
	if (r == 0)
		p->type = 0;
	p->msg[sizeof(p->msg) - 1] = '\0';
	return (int)r;
}

int sync_recv_pty(int fd, struct sync_packet *p, int *pty)
{
	for (;;) {
		int got_fd = -1;
		size_t n_fds = 0;
		int r = sync_recv_fds_upto(fd, p, &got_fd, 1, &n_fds);
		if (r <= 0 || p->type != SYNC_PTY) {
			if (n_fds)
				close(got_fd);
			return r;
		}
		if (n_fds && pty && *pty < 0)
			*pty = got_fd;
		else if (n_fds)
			close(got_fd);
	}
}

void sync_send_err(int fd, const struct orch_err *e)
{
	sync_send(fd, SYNC_ERROR, e->code ? e->code : EIO, 0, e->msg);
	_exit(127);
}

void sync_send_exec_err(int fd, const struct orch_err *e)
{
	sync_send(fd, SYNC_EXEC_ERROR, e->code ? e->code : EIO, 0, e->msg);
	_exit(e->code == ENOENT ? 127 : 126);
}

static int setup_stdio(const struct proc_plan *p, struct orch_err *e)
{
	int null = -1;
	for (int i = 0; i < 3; i++) {
		int src = p->stdio[i];
		if (src < 0) {
			if (null < 0) {
				null = open("/dev/null", O_RDWR | O_CLOEXEC);
				if (null < 0)
					return err_sys(e, errno, "opening /dev/null");
			}
			src = null;
		}
		if (src == i) {
			if (fcntl(i, F_SETFD, 0) < 0)
				return err_sys(e, errno, "keeping fd %d", i);
		} else if (dup2(src, i) < 0) {
			return err_sys(e, errno, "setting up fd %d", i);
		}
	}
	if (null > 2)
		close(null);
	return 0;
}

/* A pty of the container's own /dev/pts for stdio, made as the process's
 * user (whose it is then, as a login's), with the size of the terminal
 * given as stdin if any; its master goes to the caller. */
static int pty_take(int sync_fd, struct orch_err *e)
{
	_cleanup_close_ int m =
	    open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	int unlock = 0;
	if (m < 0 || ioctl(m, TIOCSPTLCK, &unlock) < 0)
		return err_sys(e, errno, "making a pty in /dev/pts");
	_cleanup_close_ int s =
	    ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		return err_sys(e, errno, "opening the pty's terminal");
	struct winsize ws;
	if (ioctl(0, TIOCGWINSZ, &ws) == 0)
		ioctl(s, TIOCSWINSZ, &ws);
	int r = sync_send_fds(sync_fd, SYNC_PTY, &m, 1);
	if (r < 0)
		return err_sys(e, -r, "handing the pty over");
	for (int i = 0; i < 3; i++)
		if (dup2(s, i) < 0)
			return err_sys(e, errno, "setting up fd %d", i);
	if (setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0)
		return err_sys(e, errno, "making the pty the controlling terminal");
	return 0;
}

static int switch_user(const struct proc_plan *p, struct orch_err *e)
{
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return err_sys(e, errno, "keeping capabilities");
	if (setgroups(p->n_groups, p->groups) < 0 && errno != EPERM)
		return err_sys(e, errno, "setting supplementary groups");
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		return err_sys(e, errno, "setting gid %u", (unsigned)p->gid);
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		return err_sys(e, errno, "setting uid %u", (unsigned)p->uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return err_sys(e, errno, "resetting keepcaps");
	return 0;
}

static const char *env_get(char **env, const char *key)
{
	size_t kl = strlen(key);
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], key, kl) == 0 && env[i][kl] == '=')
			return env[i] + kl + 1;
	return NULL;
}

/* execve with argv[0] looked up in the container's PATH; returns errno. */
static int exec_path(char **argv, char **env)
{
	if (strchr(argv[0], '/')) {
		execve(argv[0], argv, env);
		return errno;
	}
	const char *path = env_get(env, "PATH");
	if (!path)
		path = DEFAULT_PATH;
	int err = ENOENT;
	char buf[4096];
	while (*path) {
		const char *colon = strchrnul(path, ':');
		size_t dl = (size_t)(colon - path);
		if (dl + strlen(argv[0]) + 2 < sizeof(buf)) {
			if (dl == 0)
				snprintf(buf, sizeof(buf), "%s", argv[0]);
			else
				snprintf(buf, sizeof(buf), "%.*s/%s", (int)dl,
					 path, argv[0]);
			execve(buf, argv, env);
			/* Keep the most telling error: a file that exists but
			 * cannot run beats "not found" elsewhere. */
			if (errno != ENOENT && errno != ENOTDIR)
				err = errno;
		}
		path = *colon ? colon + 1 : colon;
	}
	return err;
}

void proc_exec(const struct proc_plan *p, int sync_fd)
{
	struct orch_err e = {0};
	if (!p->argv || !p->argv[0]) {
		err_set(&e, EINVAL, "no command to run");
		sync_send_err(sync_fd, &e);
	}
	if (setup_stdio(p, &e) < 0)
		sync_send_err(sync_fd, &e);
	for (size_t i = 0; i < p->n_rlimits; i++) {
		struct rlimit rl = {p->rlimits[i].soft, p->rlimits[i].hard};
		if (setrlimit(p->rlimits[i].resource, &rl) < 0) {
			err_sys(&e, errno, "setting rlimit %d to %llu/%llu",
				p->rlimits[i].resource,
				(unsigned long long)rl.rlim_cur,
				(unsigned long long)rl.rlim_max);
			sync_send_err(sync_fd, &e);
		}
	}
	if (caps_drop_bounding(p->caps, &e) < 0 || switch_user(p, &e) < 0 ||
	    caps_set(p->caps, &e) < 0 || (p->pty && pty_take(sync_fd, &e) < 0))
		sync_send_err(sync_fd, &e);
	if (p->workdir && *p->workdir && chdir(p->workdir) < 0) {
		err_sys(&e, errno, "entering the working directory %s",
			p->workdir);
		sync_send_err(sync_fd, &e);
	}
	if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		err_sys(&e, errno, "setting no_new_privs");
		sync_send_err(sync_fd, &e);
	}
	if (p->seccomp) {
		int r = sc_filter_load(p->seccomp);
		if (r < 0) {
			err_sys(&e, r, "loading the seccomp filter");
			sync_send_err(sync_fd, &e);
		}
	}
	if (p->wait_start) {
		struct sync_packet pk;
		if (sync_send(sync_fd, SYNC_READY, 0, 0, NULL) < 0 ||
		    sync_recv(sync_fd, &pk) <= 0 || pk.type != SYNC_GO)
			_exit(1); /* the caller gave up on us */
	}
	if (p->init && init_reaper_fork(&e) < 0)
		sync_send_err(sync_fd, &e);
	/* Whatever the caller left open does not belong in the container. */
	syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
	umask(022);
	int err = exec_path(p->argv, p->env);
	err_sys(&e, err, "exec %s", p->argv[0]);
	sync_send_exec_err(sync_fd, &e);
}

/* ---- rt_exec -------------------------------------------------------------- */

static int parse_user(const char *user, uid_t *uid, gid_t *gid,
		      struct orch_err *e)
{
	char *end;
	unsigned long u = strtoul(user, &end, 10);
	if (end == user || (*end && *end != ':'))
		return err_set(e, EINVAL, "user %s: only numeric uid[:gid] is supported", user);
	*uid = (uid_t)u;
	if (*end == ':') {
		const char *g = end + 1;
		unsigned long gv = strtoul(g, &end, 10);
		if (end == g || *end)
			return err_set(e, EINVAL, "user %s: bad gid", user);
		*gid = (gid_t)gv;
	}
	return 0;
}

/* The container's env with x's entries added or overriding. */
static char **merge_env(char **base, char **extra)
{
	char **env = strv_copy(base);
	for (size_t i = 0; extra && extra[i]; i++) {
		const char *eq = strchr(extra[i], '=');
		size_t kl = eq ? (size_t)(eq - extra[i]) : strlen(extra[i]);
		bool replaced = false;
		for (size_t j = 0; env[j]; j++)
			if (strncmp(env[j], extra[i], kl) == 0 &&
			    env[j][kl] == '=') {
				free(env[j]);
				env[j] = xstrdup(extra[i]);
				replaced = true;
				break;
			}
		if (!replaced)
			strv_push(&env, extra[i]);
	}
	return env;
}

/* Whether pid's namespace of that kind is ours (or cannot be told). */
static bool ns_same_as_ours(pid_t pid, const char *kind)
{
	char p[64], self[64];
	struct stat a, b;
	snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)pid, kind);
	snprintf(self, sizeof(self), "/proc/self/ns/%s", kind);
	return stat(p, &a) < 0 || stat(self, &b) < 0 ||
	       (a.st_ino == b.st_ino && a.st_dev == b.st_dev);
}


int rt_exec(const char *id, const struct rt_exec_spec *x, pid_t *pid,
	    struct orch_err *e)
{
	if (x->pty)
		*x->pty = -1;
	struct ctr_state st;
	int r = ctr_state_read(id, &st, e);
	if (r < 0)
		return r;
	_cleanup_strv_ char **env = merge_env(st.env, x->env);
	struct proc_plan plan = {
		.argv = x->argv,
		.env = env,
		.workdir = x->workdir ? x->workdir : st.workdir,
		.uid = st.uid,
		.gid = st.gid,
		.groups = st.groups,
		.n_groups = st.n_groups,
		.caps = st.caps,
		.no_new_privs = st.no_new_privs,
		.rlimits = st.rlimits,
		.n_rlimits = st.n_rlimits,
		.pty = x->pty != NULL,
	};
	memcpy(plan.stdio, x->stdio, sizeof(plan.stdio));
	int pidfd = -1, sv[2] = {-1, -1};
	if (x->user) {
		plan.groups = NULL;
		plan.n_groups = 0;
		r = parse_user(x->user, &plan.uid, &plan.gid, e);
		if (r < 0)
			goto out;
	}
	if (x->privileged)
		plan.caps = rt_caps_held();
	if (st.seccomp) {
		r = sc_filter_get(st.seccomp_profile, plan.caps, &plan.seccomp,
				  e);
		if (r < 0)
			goto out;
	}
	pidfd = ns_pidfd_open_checked(st.pid, st.start_time);
	if (pidfd < 0) {
		r = err_set(e, ESRCH, "container %s is not running", id);
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = err_sys(e, errno, "creating a socket pair");
		goto out;
	}
	int nsflags = ns_clone_flags(st.namespaces) | CLONE_NEWNET;
	/* A PID or IPC namespace shared with another container (pid:
	 * service:NAME) is none of its own, yet not ours either. */
	if (!ns_same_as_ours(st.pid, "pid"))
		nsflags |= CLONE_NEWPID;
	if (!ns_same_as_ours(st.pid, "ipc"))
		nsflags |= CLONE_NEWIPC;
	pid_t mid = fork();
	if (mid < 0) {
		r = err_sys(e, errno, "forking");
		goto out;
	}
	if (mid == 0) {
		/* Joins the cgroup first (its files are only visible from the
		 * host's mount namespace), then every namespace at once.
		 * Undumpable first: in the container's PID namespace until its
		 * exec, our copy of the caller's memory is not for the
		 * container's processes to read through ptrace (child_main). */
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		close(sv[0]);
		struct orch_err ce = {0};
		if (cg_enter_self(&st.cg, &ce) < 0)
			sync_send_err(sv[1], &ce);
		/* Before a user namespace, in which they could not rise. */
		if (ns_set_rlimits(0, plan.rlimits, plan.n_rlimits, &ce) < 0)
			sync_send_err(sv[1], &ce);
		if (setns(pidfd, nsflags) < 0) {
			err_sys(&ce, errno, "joining the namespaces of container %s", id);
			sync_send_err(sv[1], &ce);
		}
		/* A new pid namespace applies to children only: the process
		 * that execs is forked as the caller's child. */
		long gc = syscall(SYS_clone, CLONE_PARENT, 0, 0, 0, 0);
		if (gc < 0) {
			err_sys(&ce, errno, "forking into container %s", id);
			sync_send_err(sv[1], &ce);
		}
		if (gc == 0)
			proc_exec(&plan, sv[1]);
		sync_send(sv[1], SYNC_PID, 0, (int)gc, NULL);
		_exit(0);
	}
	close(sv[1]);
	sv[1] = -1;
	int status;
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	struct sync_packet pk;
	struct orch_err child_err = {0};
	*pid = 0;
	for (;;) {
		int n = sync_recv_pty(sv[0], &pk, x->pty);
		if (n < 0) {
			r = err_sys(e, -n, "exec in container %s", id);
			goto out;
		}
		if (pk.type == 0)
			break;
		if (pk.type == SYNC_PID)
			*pid = pk.pid;
		if (pk.type == SYNC_ERROR || pk.type == SYNC_EXEC_ERROR)
			err_set(&child_err, pk.code, "%s", pk.msg);
	}
	if (child_err.code) {
		if (*pid > 0)
			while (waitpid(*pid, &status, 0) < 0 && errno == EINTR)
				;
		*pid = 0;
		r = err_set(e, child_err.code, "%s", child_err.msg);
		goto out;
	}
	if (*pid <= 0) {
		r = err_set(e, EIO, "exec in container %s: the helper died",
			    id);
		goto out;
	}
	r = 0;
out:
	if (r < 0 && x->pty && *x->pty >= 0) {
		close(*x->pty);
		*x->pty = -1;
	}
	if (pidfd >= 0)
		close(pidfd);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	ctr_state_clear(&st);
	return r;
}
