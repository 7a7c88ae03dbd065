/* cgroups on a host run by systemd with the unified hierarchy.  systemd
 * owns that tree: it writes the controllers of every cgroup outside the
 * subtrees it delegates, and would undo what another manager enables there.
 * So each container asks systemd for a transient scope
 * orch.slice/orch-<id>-<pid>.scope with Delegate=yes (StartTransientUnit
 * on the system bus, through busctl: no D-Bus library), and orch manages
 * only inside it: the container's
 * processes live in the leaf <scope>/<id>, where its limits are written.
 * When the container is gone the scope empties and systemd collects it.
 * Without a system bus (systemd refuses this call on its private socket)
 * orch cannot ask, and keeps to /sys/fs/cgroup/orch as on other hosts.
 *
 * A rootless orch asks the user's own manager (user@UID.service, which
 * systemd delegates to the user) on the user's bus, as rootless podman
 * does: its scopes are user@UID.service/orch.slice/orch-<id>-<pid>.scope.
 * The command itself first moves into a scope of that manager
 * (orch-cli-<pid>.scope), so that the processes it makes and moves (exec)
 * stay inside what the user owns.  Without the user's manager (no login,
 * no lingering), netd hands over a cgroup instead (netd/cgdeleg.c). */
#include "runtime/container_impl.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>

#define SYSTEM_BUS "/run/dbus/system_bus_socket"

extern char **environ;

/* The pids orch hands systemd mean the same to it only in its own pid
 * namespace, where it is PID 1. */
static bool in_systemd_pidns(void)
{
	char comm[32] = "";
	_cleanup_fclose_ FILE *f = fopen("/proc/1/comm", "re");
	return f && fgets(comm, sizeof(comm), f) &&
	       strcmp(comm, "systemd\n") == 0;
}

/* The user's bus, where the user's manager listens. */
static bool user_bus(void)
{
	const char *x = getenv("XDG_RUNTIME_DIR");
	if (!x || x[0] != '/')
		return false;
	_cleanup_free_ char *bus = path_join(x, "bus");
	return access(bus, F_OK) == 0;
}

bool cg_systemd_host(void)
{
	static int host = -1;
	if (host < 0) {
		struct statfs sf;
		host = statfs("/sys/fs/cgroup", &sf) == 0 &&
		       (unsigned long)sf.f_type == CGROUP2_SUPER_MAGIC &&
		       access("/run/systemd/system", F_OK) == 0 &&
		       (rootless() ? user_bus() : access(SYSTEM_BUS, F_OK) == 0) &&
		       in_systemd_pidns();
	}
	return host;
}

bool rt_cgroup_systemd(void)
{
	return cg_systemd_host() && !getenv("ORCH_CGROUP_PARENT") &&
	       streq(orch_cgroup_root(), "/sys/fs/cgroup");
}

/* Where the manager keeps its transient units' files. */
static char *transient_dir(void)
{
	const char *x = getenv("XDG_RUNTIME_DIR");
	return rootless() && x ? path_join(x, "systemd/transient")
			       : xstrdup("/run/systemd/transient");
}

/* pid's cgroup when it is orch.slice/unit (under the user's manager for
 * a rootless orch), else NULL. */
static char *pid_scope(pid_t pid, const char *unit)
{
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f || !fgets(line, sizeof(line), f))
		return NULL;
	line[strcspn(line, "\n")] = '\0';
	_cleanup_free_ char *tail = xasprintf("/orch.slice/%s", unit);
	size_t n = strlen(line), k = strlen(tail);
	if (strncmp(line, "0::", 3) != 0 || n < k || !streq(line + n - k, tail))
		return NULL;
	return xasprintf("/sys/fs/cgroup%s", line + 3);
}

/* Asks the manager for the scope unit in orch.slice holding pid, and
 * waits for pid to be moved: *out is its cgroup directory (may be NULL). */
static int systemd_scope(const char *unit, const char *desc, pid_t pid,
			 char **out, struct orch_err *e)
{
	char pidbuf[16];
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
	/* clang-format off */
	char *argv[] = {
		"busctl", "--quiet", rootless() ? "--user" : "--system",
		"call", "org.freedesktop.systemd1",
		"/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
		"StartTransientUnit", "ssa(sv)a(sa(sv))", (char *)unit, "fail", "5",
		"Description", "s", (char *)desc,
		"Slice", "s", "orch.slice",
		"Delegate", "b", "true",
		"CollectMode", "s", "inactive-or-failed",
		"PIDs", "au", "1", pidbuf,
		"0", NULL};
	/* clang-format on */
	int r = run_program(argv, NULL, 0, e);
	if (r < 0)
		return err_wrap(e, "asking systemd%s for the scope %s",
				rootless() ? " (your user's manager)" : "", unit);
	/* The job runs right after the call returns: wait for the move. */
	char *dir;
	for (int i = 0; !(dir = pid_scope(pid, unit)); i++) {
		if (i == 1000)
			return err_set(e, ETIMEDOUT,
				       "systemd did not move %d into %s",
				       (int)pid, unit);
		nanosleep(&(struct timespec){0, 5000000}, NULL);
	}
	if (out)
		*out = dir;
	else
		free(dir);
	return 0;
}

static int cg_systemd_scope(const char *id, pid_t pid, char **out,
			    struct orch_err *e)
{
	_cleanup_free_ char *unit = xasprintf("orch-%s-%d.scope", id, (int)pid);
	_cleanup_free_ char *desc = xasprintf("orch container %s", id);
	return systemd_scope(unit, desc, pid, out, e);
}

int rt_cgroup_systemd_enter(struct orch_err *e)
{
	if (!rootless() || !rt_cgroup_systemd())
		return 0;
	_cleanup_free_ char *unit =
	    xasprintf("orch-cli-%d.scope", (int)getpid());
	return systemd_scope(unit, "orch command", getpid(), NULL, e);
}

static int enter_pid(const char *dir, pid_t pid, struct orch_err *e)
{
	_cleanup_free_ char *procs = path_join(dir, "cgroup.procs");
	_cleanup_close_ int fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "opening %s", procs);
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d", (int)pid);
	if (RETRY_EINTR(write(fd, buf, (size_t)n)) < 0)
		return err_sys(e, errno, "moving %d into %s", (int)pid, dir);
	return 0;
}

/* A stop job for unit: on a unit already dead it does nothing, but its
 * end puts the unit on systemd's list of units to collect. */
/* The manager's method on unit (StopUnit takes a mode too). */
static void systemd_call(const char *method, const char *unit)
{
	bool stop = streq(method, "StopUnit");
	/* clang-format off */
	char *argv[] = {
		"busctl", "--quiet", rootless() ? "--user" : "--system",
		"call", "org.freedesktop.systemd1",
		"/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
		(char *)method, stop ? "ss" : "s", (char *)unit,
		stop ? "replace" : NULL, NULL};
	/* clang-format on */
	struct orch_err ign = {0};
	run_program(argv, NULL, 0, &ign);
}

/* systemd removes a scope's cgroup when it collects the unit, but only if
 * the cgroup is empty then.  If it saw the container's processes gone
 * before orch removed the leaf, the directory stays behind with no unit
 * left to remove it (seen under load).  So once the leaf is gone, orch
 * waits for the unit to be collected (its transient file goes with it),
 * and then removes the directory if it is still there.  A dead unit whose
 * directory went while systemd was not looking (its cgroup's last event
 * found no directory to read), or that died while the leaf was still
 * there (so that its directory could not go), is never collected on its
 * own (both seen in the VM): after half a second orch removes the
 * scope's directory (empty: the leaf was its only child, the container
 * its only process), asks for a stop, whose end makes systemd look again,
 * and takes a reference to the unit that goes when busctl ends (a stop of
 * a unit already dead is no job, and ends nothing; a reference dropped
 * puts the unit on systemd's list to collect).  Only for the scopes orch
 * asks for; a bound keeps a stuck systemd from holding down. */
void cg_systemd_release(const char *scope)
{
	const char *name = strrchr(scope, '/');
	name = name ? name + 1 : scope;
	size_t n = strlen(name);
	if (!startswith(name, "orch-") || n < 6 || !streq(name + n - 6, ".scope"))
		return;
	_cleanup_free_ char *dir = transient_dir();
	_cleanup_free_ char *unit = path_join(dir, name);
	bool asked = false;
	for (int ms = 0; ms < 2000; ms++) {
		bool gone = access(scope, F_OK) < 0;
		if (access(unit, F_OK) < 0) {
			if (!gone)
				rmdir(scope);
			return;
		}
		if (ms >= 500 && !asked) {
			if (!gone)
				rmdir(scope);
			systemd_call("StopUnit", name);
			systemd_call("RefUnit", name);
			asked = true;
		}
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
}

int cg_systemd_create(const char *id, const struct rt_limits *l,
		      const struct dev_policy *dev, pid_t pid, struct cg *out,
		      struct orch_err *e)
{
	_cleanup_free_ char *scope = NULL;
	int r = cg_systemd_scope(id, pid, &scope, e);
	if (r < 0)
		return r;
	out->v2 = true;
	out->dir[0] = path_join(scope, id);
	if (mkdir(out->dir[0], 0755) < 0)
		return err_sys(e, errno, "creating cgroup %s", out->dir[0]);
	r = enter_pid(out->dir[0], pid, e);
	if (r < 0)
		return r;
	/* Only now is the scope free of processes, as a cgroup must be to
	 * hand its controllers down. */
	_cleanup_close_ int sfd = open(scope, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		return err_sys(e, errno, "opening %s", scope);
	r = cg_v2_enable_controllers(sfd, l, e);
	if (r < 0)
		return err_wrap(e, "%s", scope);
	_cleanup_close_ int dfd =
	    open(out->dir[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return err_sys(e, errno, "opening %s", out->dir[0]);
	r = cg_v2_write_limits(dfd, l, e);
	if (r == 0)
		r = dev_cgroup_v2_apply(dfd, dev, e);
	if (r < 0)
		return err_wrap(e, "cgroup %s", out->dir[0]);
	return 0;
}
