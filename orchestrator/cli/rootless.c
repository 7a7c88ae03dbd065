/* orch run by a user without privileges: where the user's state goes, and
 * entering the user's namespaces before anything else runs. */
#include "orchestrator/cli/cli.h"
#include "netd/netd.h"
#include "runtime/runtime.h"

#include <sys/stat.h>

/* $XDG_RUNTIME_DIR/orch, else /run/user/UID/orch when that is ours, else
 * /tmp/orch-run-UID (a host without a login manager). */
static char *run_dir(uid_t uid)
{
	const char *x = getenv("XDG_RUNTIME_DIR");
	if (x && x[0] == '/')
		return path_join(x, "orch");
	_cleanup_free_ char *mine = xasprintf("/run/user/%u", (unsigned)uid);
	struct stat st;
	if (stat(mine, &st) == 0 && st.st_uid == uid)
		return path_join(mine, "orch");
	return xasprintf("/tmp/orch-run-%u", (unsigned)uid);
}

/* $XDG_DATA_HOME/orch, else ~/.local/share/orch. */
static char *data_dir(struct orch_err *e)
{
	const char *x = getenv("XDG_DATA_HOME");
	if (x && x[0] == '/')
		return path_join(x, "orch");
	const char *home = getenv("HOME");
	if (!home || home[0] != '/') {
		err_set(e, EINVAL,
			"neither XDG_DATA_HOME nor HOME is set: set ORCH_ROOT "
			"to where your images and volumes go");
		return NULL;
	}
	return xasprintf("%s/.local/share/orch", home);
}

static void set_default(const char *name, const char *value)
{
	const char *v = getenv(name);
	if (!v || !*v)
		setenv(name, value, 1);
}

int cli_rootless_setup(struct orch_err *e)
{
	uid_t uid = geteuid();
	if (!rootless() || uid == 0)
		return 0; /* root, or already inside (the supervisor) */
	_cleanup_free_ char *run = run_dir(uid);
	_cleanup_free_ char *data = getenv("ORCH_ROOT") ? NULL : data_dir(e);
	if (!getenv("ORCH_ROOT") && !data)
		return -e->code;
	set_default("ORCH_RUN", run);
	if (data)
		set_default("ORCH_ROOT", data);
	set_default("ORCH_NETD_SOCKET", "/run/orch/netd.sock");
	struct stat st;
	if (stat(orch_run(), &st) == 0 && st.st_uid != uid)
		return err_set(e, EPERM,
			       "%s belongs to uid %u, not to you: set ORCH_RUN "
			       "to a directory of yours",
			       orch_run(), (unsigned)st.st_uid);
	if (mkdir_p(orch_root(), 0700, e) < 0)
		return err_wrap(e, "creating %s", orch_root());
	/* On a systemd host, the user's manager makes our cgroups. */
	int r = rt_cgroup_systemd_enter(e);
	if (r == 0)
		r = rt_rootless_enter(e);
	if (r < 0 || rt_cgroup_systemd())
		return r;
	/* Elsewhere, the cgroup netd hands us: our containers go below it.
	 * Without netd, what needs it says so when it asks. */
	struct netd_conn *c = NULL;
	struct orch_err ign = {0};
	_cleanup_free_ char *parent = NULL;
	if (!getenv("ORCH_CGROUP_PARENT") && netd_get(&c, &ign) == 0 &&
	    netd_cgroup_delegate(c, &parent, &ign) == 0)
		setenv("ORCH_CGROUP_PARENT", parent, 1);
	else if (ign.code)
		log_debug("no cgroup from netd: %s", ign.msg);
	return 0;
}

void cli_rootless_done(void)
{
	if (!rootless() || !rt_rootless_last())
		return;
	struct orch_err e = {0};
	_cleanup_strv_ char **left = NULL;
	if (pstate_list(&left, &e) < 0 || (left && left[0]))
		return;
	struct netd_conn *c = NULL;
	if (!rt_cgroup_systemd() && netd_get(&c, &e) == 0)
		netd_cgroup_release(c, &e);
	if (rt_rootless_leave(&e) < 0)
		log_warn("%s", e.msg);
}
