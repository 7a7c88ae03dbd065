/* Rootless: orch run by a user without privileges works inside one user
 * namespace per user, with a mount namespace of its own.  Its map comes
 * from the user's ranges in /etc/subuid and /etc/subgid, written by
 * newuidmap and newgidmap (the only privileged helpers): uid 0 there is
 * the user, 1..COUNT the range, as podman does.  Root there may do what
 * the runtime needs (overlay mounts, chown to the image's ids, namespaces
 * of every kind), and nothing outside.
 *
 * A holder process (named orch-userns) keeps both namespaces between
 * commands; every command of the user joins them first, so that each sees
 * the same mounts (network namespaces, roots) and may enter the
 * containers the others made.  Its pid is in $ORCH_RUN/userns.pid. */
#include "runtime/container_impl.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

#define HOLDER_NAME "orch-userns"


/* Whether we are in the host's user namespace (its map is the identity of
 * every id). */
static bool in_host_userns(void)
{
	_cleanup_free_ char *map = NULL;
	struct orch_err ign = {0};
	if (read_file("/proc/self/uid_map", &map, NULL, &ign) < 0)
		return true;
	unsigned long in, out, n;
	return sscanf(map, "%lu %lu %lu", &in, &out, &n) == 3 && in == 0 &&
	       out == 0 && n == 4294967295UL;
}

/* newuidmap PID 0 ID 1 1 START COUNT (or newgidmap). */
static int run_map_tool(const char *tool, pid_t pid, unsigned id,
			uint32_t start, uint32_t count, struct orch_err *e)
{
	char a_pid[16], a_id[16], a_start[16], a_count[16];
	snprintf(a_pid, sizeof(a_pid), "%d", (int)pid);
	snprintf(a_id, sizeof(a_id), "%u", id);
	snprintf(a_start, sizeof(a_start), "%u", start);
	snprintf(a_count, sizeof(a_count), "%u", count);
	char *argv[] = {(char *)tool, a_pid, "0", a_id, "1", "1", a_start,
			a_count, NULL};
	pid_t child;
	int r = posix_spawnp(&child, tool, NULL, NULL, argv, environ);
	if (r != 0)
		return err_sys(e, r,
			       "running %s (install Debian's package uidmap)",
			       tool);
	int st = 0;
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return err_set(e, EPERM,
			       "%s failed (its message is above): it must be "
			       "setuid root or have CAP_SETUID, and "
			       "/etc/subuid and /etc/subgid must give you a "
			       "range",
			       tool);
	return 0;
}

static void holder_main(int ready, int go) __attribute__((noreturn));
static void holder_main(int ready, int go)
{
	char c = 'x';
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		_exit(1);
	if (write(ready, "u", 1) != 1 || read(go, &c, 1) != 1 || c != 'g')
		_exit(1);
	/* Our mounts stay ours; the host's still reach us. */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		_exit(1);
	/* Named before "done": the parent then knows us by that name
	 * (is_holder). */
	prctl(PR_SET_NAME, HOLDER_NAME);
	if (write(ready, "d", 1) != 1)
		_exit(1);
	setsid();
	if (chdir("/") < 0)
		_exit(1);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3; fd++)
		dup2(null, fd);
	close_range(3, ~0U, 0);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	for (;;)
		pause();
}

/* Makes the holder, the namespaces mapped; its pid in *out. */
static int holder_start(pid_t *out, struct orch_err *e)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	struct passwd *pw = getpwuid(uid);
	const char *user = pw ? pw->pw_name : "";
	uint32_t us = 0, un = 0, gs = 0, gn = 0;
	int r = rt_subid_range("/etc/subuid", user, uid, &us, &un, e);
	if (r == 0)
		r = rt_subid_range("/etc/subgid", user, uid, &gs, &gn, e);
	if (r == -ENOENT)
		return err_wrap(e,
				"running orch without root needs a range of "
				"subordinate ids (ask the administrator: "
				"usermod --add-subuids 100000-165535 "
				"--add-subgids 100000-165535 %s)",
				*user ? user : "USER");
	if (r < 0)
		return r;
	int p1[2], p2[2];
	if (pipe2(p1, O_CLOEXEC) < 0)
		return err_sys(e, errno, "making a pipe");
	if (pipe2(p2, O_CLOEXEC) < 0) {
		close(p1[0]), close(p1[1]);
		return err_sys(e, errno, "making a pipe");
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(p1[0]), close(p2[1]);
		holder_main(p1[1], p2[0]);
	}
	close(p1[1]), close(p2[0]);
	_cleanup_close_ int ready = p1[0], go = p2[1];
	if (pid < 0)
		return err_sys(e, errno, "forking");
	char c = 0;
	r = read(ready, &c, 1) == 1 && c == 'u'
		? 0
		: err_set(e, EPERM,
			  "making a user namespace failed (is "
			  "user.max_user_namespaces 0?)");
	if (r == 0)
		r = run_map_tool("newuidmap", pid, uid, us, un, e);
	if (r == 0)
		r = run_map_tool("newgidmap", pid, gid, gs, gn, e);
	if (r == 0 && (write(go, "g", 1) != 1 || read(ready, &c, 1) != 1 ||
		       c != 'd'))
		r = err_set(e, EIO, "the user namespace's holder died");
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return r;
	}
	*out = pid;
	return 0;
}

/* Whether pid is a holder (of anyone's). */
static bool is_holder(pid_t pid)
{
	_cleanup_free_ char *comm = proc_comm(pid);
	return comm && streq(comm, HOLDER_NAME);
}

/* The pid $ORCH_RUN/userns.pid names, 0 when none. */
static pid_t holder_pid(const char *pidp)
{
	_cleanup_free_ char *txt = NULL;
	struct orch_err ign = {0};
	return read_file(pidp, &txt, NULL, &ign) == 0 ? atoi(txt) : 0;
}

/* The holder's namespace fds when pid is a holder of ours. */
static bool holder_open(pid_t pid, int *userns, int *mntns)
{
	char p[64];
	if (!is_holder(pid))
		return false;
	snprintf(p, sizeof(p), "/proc/%d/ns/user", (int)pid);
	_cleanup_close_ int u = open(p, O_RDONLY | O_CLOEXEC);
	snprintf(p, sizeof(p), "/proc/%d/ns/mnt", (int)pid);
	_cleanup_close_ int m = open(p, O_RDONLY | O_CLOEXEC);
	uid_t owner = (uid_t)-1;
	if (u < 0 || m < 0 || ioctl(u, NS_GET_OWNER_UID, &owner) < 0 ||
	    owner != geteuid())
		return false;
	*userns = move_fd(u);
	*mntns = move_fd(m);
	return true;
}

/* userns.lock, held shared by each command of the user from its entry
 * to its exit (exclusive while one starts the holder): the last one out
 * may stop the holder. */
static int entered_lock = -1;

int rt_rootless_enter(struct orch_err *e)
{
	if (!rootless() || !in_host_userns())
		return 0;
	const char *run = orch_run();
	if (mkdir_p(run, 0700, e) < 0)
		return -e->code;
	_cleanup_free_ char *lockp = path_join(run, "userns.lock");
	_cleanup_free_ char *pidp = path_join(run, "userns.pid");
	_cleanup_close_ int lock =
	    open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX) < 0)
		return err_sys(e, errno, "locking %s", lockp);
	pid_t pid = holder_pid(pidp);
	int u = -1, m = -1;
	if (!holder_open(pid, &u, &m)) {
		int r = holder_start(&pid, e);
		if (r < 0)
			return err_wrap(e, "making your user namespace");
		char buf[16];
		snprintf(buf, sizeof(buf), "%d\n", (int)pid);
		r = write_file_atomic(pidp, buf, strlen(buf), 0600, e);
		if (r < 0 || !holder_open(pid, &u, &m)) {
			kill(pid, SIGKILL);
			return r < 0 ? r
				     : err_set(e, ESRCH,
					       "the user namespace's holder "
					       "died");
		}
	}
	_cleanup_close_ int userns = u, mntns = m;
	/* Joining the mount namespace moves us to its root. */
	_cleanup_free_ char *cwd = getcwd(NULL, 0);
	if (setns(userns, CLONE_NEWUSER) < 0)
		return err_sys(e, errno, "joining your user namespace");
	if (setns(mntns, CLONE_NEWNS) < 0)
		return err_sys(e, errno, "joining your mount namespace");
	if (cwd && chdir(cwd) < 0)
		return err_sys(e, errno, "returning to %s", cwd);
	if (flock(lock, LOCK_SH) < 0)
		return err_sys(e, errno, "locking %s", lockp);
	entered_lock = move_fd(lock);
	return 0;
}

bool rt_rootless_last(void)
{
	return entered_lock >= 0 && flock(entered_lock, LOCK_EX | LOCK_NB) == 0;
}

int rt_rootless_leave(struct orch_err *e)
{
	_cleanup_free_ char *pidp = path_join(orch_run(), "userns.pid");
	pid_t pid = holder_pid(pidp);
	if (is_holder(pid) && kill(pid, SIGKILL) < 0)
		return err_sys(e, errno, "stopping your user namespace's holder");
	unlink(pidp);
	return 0;
}

int userns_top_id(bool group, uint32_t *top, struct orch_err *e)
{
	_cleanup_free_ char *map = NULL;
	int r = read_file(group ? "/proc/self/gid_map" : "/proc/self/uid_map",
			  &map, NULL, e);
	if (r < 0)
		return r;
	uint64_t hi = 0;
	for (char *save = NULL, *l = strtok_r(map, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		unsigned long in, out, n;
		if (sscanf(l, "%lu %lu %lu", &in, &out, &n) == 3 && n > 0 &&
		    in + n - 1 > hi)
			hi = in + n - 1;
	}
	*top = (uint32_t)(hi > UINT32_MAX - 1 ? UINT32_MAX - 1 : hi);
	return 0;
}

static size_t keepid_map(uint32_t id, uint32_t top, struct rt_idmap out[3])
{
	size_t n = 0;
	uint32_t below = id < top ? id : top;
	if (below > 0)
		out[n++] = (struct rt_idmap){0, 1, below};
	out[n++] = (struct rt_idmap){id, 0, 1};
	if (id < top)
		out[n++] = (struct rt_idmap){id + 1, id + 1, top - id};
	return n;
}

int rt_keepid_ids(struct rt_ids *ids, struct orch_err *e)
{
	uint32_t utop = 0, gtop = 0;
	if (!rootless())
		return err_set(e, EPERM, "userns_mode keep-id is for a rootless orch");
	int r = userns_top_id(false, &utop, e);
	if (r == 0)
		r = userns_top_id(true, &gtop, e);
	if (r < 0)
		return r;
	ids->n_uid = keepid_map((uint32_t)host_uid(), utop, ids->uid);
	ids->n_gid = keepid_map((uint32_t)host_gid(), gtop, ids->gid);
	return 0;
}
