/* cgroups for users: a user's orch may not create cgroups under the
 * host's, so netd makes orch/user-UID in every hierarchy orch uses and
 * hands it over (chowned to the user, as systemd delegates user@UID).  The
 * user's containers then live below it with their limits enforced.  On
 * cgroup v2 the kernel lets a process move only between cgroups under
 * one the mover may write, so netd also moves the caller into
 * orch/user-UID/orch.cli, from where the processes it starts may be moved
 * into their own. */
#include "netd/netd-int.h"

#include <fcntl.h>
#include <jansson.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

/* The v1 hierarchies the runtime uses, by their mount's name. */
static const char *const v1_names[] = {"memory", "cpu",	    "cpuacct",
				       "pids",	 "freezer", "devices"};

/* The files of a delegated cgroup its user writes (systemd's list). */
static const char *const delegated[] = {"cgroup.procs", "cgroup.threads",
					"cgroup.subtree_control", "tasks"};

static bool is_v2(const char *dir)
{
	struct statfs sf;
	return statfs(dir, &sf) == 0 &&
	       (unsigned long)sf.f_type == CGROUP2_SUPER_MAGIC;
}

static int write_file(const char *dir, const char *file, const char *val,
		      struct orch_err *e)
{
	_cleanup_free_ char *p = path_join(dir, file);
	_cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, strlen(val)) < 0)
		return err_sys(e, errno, "writing \"%s\" to %s", val, p);
	return 0;
}

/* The controllers that containers' limits use, of those dir's parent
 * gives, made available below dir (no others: on a hybrid host the
 * unified hierarchy's controllers stay as they were). */
static int v2_enable(const char *dir, struct orch_err *e)
{
	static const char *const used[] = {"cpu", "memory", "pids", "io"};
	_cleanup_free_ char *ctl = path_join(dir, "cgroup.controllers");
	_cleanup_free_ char *have = NULL;
	if (read_file(ctl, &have, NULL, e) < 0)
		return -e->code;
	char *save = NULL;
	for (char *t = strtok_r(have, " \n", &save); t;
	     t = strtok_r(NULL, " \n", &save)) {
		bool want = false;
		for (size_t i = 0; i < ARRAY_SIZE(used); i++)
			want |= streq(t, used[i]);
		if (!want)
			continue;
		_cleanup_free_ char *v = xasprintf("+%s", t);
		struct orch_err ign = {0};
		/* One that cannot be enabled (a threaded one, say) leaves
		 * the others; a limit that needs it fails by name later. */
		if (write_file(dir, "cgroup.subtree_control", v, &ign) < 0)
			log_debug("%s: %s", dir, ign.msg);
	}
	return 0;
}

/* dir, made when missing, and the files of it the user writes, chowned to
 * uid. */
static int hand_over(const char *dir, uid_t uid, gid_t gid,
		     struct orch_err *e)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return err_sys(e, errno, "creating cgroup %s", dir);
	if (chown(dir, uid, gid) < 0)
		return err_sys(e, errno, "handing cgroup %s to uid %u", dir,
			       (unsigned)uid);
	for (size_t i = 0; i < ARRAY_SIZE(delegated); i++) {
		_cleanup_free_ char *f = path_join(dir, delegated[i]);
		if (chown(f, uid, gid) < 0 && errno != ENOENT)
			return err_sys(e, errno, "handing %s to uid %u", f,
				       (unsigned)uid);
	}
	return 0;
}

/* base/orch/user-UID, made and handed to uid. */
static int delegate_one(const char *base, uid_t uid, gid_t gid, bool v2,
			struct orch_err *e)
{
	_cleanup_free_ char *orch = path_join(base, "orch");
	_cleanup_free_ char *name = xasprintf("user-%u", (unsigned)uid);
	_cleanup_free_ char *dir = path_join(orch, name);
	if (mkdir(orch, 0755) < 0 && errno != EEXIST)
		return err_sys(e, errno, "creating cgroup %s", orch);
	if (v2 && (v2_enable(base, e) < 0 || v2_enable(orch, e) < 0))
		return -e->code;
	if (hand_over(dir, uid, gid, e) < 0)
		return -e->code;
	if (v2 && v2_enable(dir, e) < 0)
		return -e->code;
	return 0;
}

/* Whether pid still runs as uid (all of its uids): the pid
 * SO_PEERCRED gave is the caller's unless it exited and was reused. */
static bool runs_as(pid_t pid, uid_t uid)
{
	_cleanup_free_ char *p = xasprintf("/proc/%d/status", (int)pid);
	_cleanup_free_ char *txt = NULL;
	struct orch_err ign = {0};
	if (read_file(p, &txt, NULL, &ign) < 0)
		return false;
	const char *l = strstr(txt, "\nUid:");
	unsigned r, eu, s, f;
	return l && sscanf(l + 5, "%u %u %u %u", &r, &eu, &s, &f) == 4 &&
	       r == uid && eu == uid && s == uid && f == uid;
}

/* The caller, moved into base/orch/user-UID/orch.cli (cgroup v2). */
static int v2_move_caller(const char *base, const struct call *c,
			  struct orch_err *e)
{
	if (!runs_as(c->pid, c->uid))
		return err_set(e, ESRCH, "the calling process is gone");
	_cleanup_free_ char *leaf =
	    xasprintf("%s/orch/user-%u/orch.cli", base, (unsigned)c->uid);
	if (hand_over(leaf, c->uid, c->gid, e) < 0)
		return -e->code;
	char pid[24];
	snprintf(pid, sizeof(pid), "%d", (int)c->pid);
	return write_file(leaf, "cgroup.procs", pid, e);
}

/* Whether pid's cgroup v2 path starts with prefix. */
static bool v2_in(pid_t pid, const char *prefix)
{
	_cleanup_free_ char *p = xasprintf("/proc/%d/cgroup", (int)pid);
	_cleanup_free_ char *txt = NULL;
	struct orch_err ign = {0};
	if (read_file(p, &txt, NULL, &ign) < 0)
		return false;
	char *l = strstr(txt, "0::");
	return l && (l == txt || l[-1] == '\n') &&
	       strncmp(l + 3, prefix, strlen(prefix)) == 0;
}

/* rmdir of base/orch/user-UID (and its orch.cli): false when in use.
 * base/orch goes too once nothing else is in it, as a container's does. */
static bool release_one(const char *base, uid_t uid)
{
	_cleanup_free_ char *orch = path_join(base, "orch");
	_cleanup_free_ char *dir = xasprintf("%s/user-%u", orch, (unsigned)uid);
	_cleanup_free_ char *leaf = path_join(dir, "orch.cli");
	if (rmdir(leaf) < 0 && errno != ENOENT)
		return false;
	if (rmdir(dir) < 0 && errno != ENOENT)
		return false;
	rmdir(orch); /* busy while root's or another user's containers run */
	return true;
}

/* {} -> {"parent": "orch/user-UID"}: the cgroup parent, relative to each
 * hierarchy, under which the caller's containers go.  {"release": true}
 * -> {"released": bool}: removes it when the user has nothing in it. */
int op_cgroup_delegate(struct server *s, struct call *c, json_t **res)
{
	(void)s;
	const char *root = orch_cgroup_root();
	if (json_is_true(json_object_get(c->args, "release"))) {
		bool done = true;
		if (c->uid != 0 && is_v2(root)) {
			/* The caller itself sits in orch.cli (where netd put
			 * it, and only then): it is leaving, to the root
			 * (which may hold processes). */
			_cleanup_free_ char *cli = xasprintf(
			    "/orch/user-%u/orch.cli\n", (unsigned)c->uid);
			char pid[24];
			struct orch_err ign = {0};
			snprintf(pid, sizeof(pid), "%d", (int)c->pid);
			if (v2_in(c->pid, cli) && runs_as(c->pid, c->uid))
				write_file(root, "cgroup.procs", pid, &ign);
			done = release_one(root, c->uid);
		}
		for (size_t i = 0; i < ARRAY_SIZE(v1_names) && c->uid != 0 &&
				   !is_v2(root);
		     i++) {
			_cleanup_free_ char *base = path_join(root, v1_names[i]);
			done &= release_one(base, c->uid);
		}
		*res = json_pack("{s:b}", "released", done);
		return 0;
	}
	if (c->uid == 0) {
		*res = json_pack("{s:s}", "parent", "orch");
		return 0;
	}
	int r = 0;
	if (is_v2(root)) {
		_cleanup_free_ char *mine =
		    xasprintf("/orch/user-%u/", (unsigned)c->uid);
		r = delegate_one(root, c->uid, c->gid, true, c->e);
		if (r == 0 && !v2_in(c->pid, mine))
			r = v2_move_caller(root, c, c->e);
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(v1_names) && r == 0; i++) {
			_cleanup_free_ char *base = path_join(root, v1_names[i]);
			struct stat st;
			if (stat(base, &st) == 0)
				r = delegate_one(base, c->uid, c->gid, false,
						 c->e);
		}
	}
	if (r < 0)
		return r;
	log_info("handed cgroup orch/user-%u to uid %u", (unsigned)c->uid,
		 (unsigned)c->uid);
	_cleanup_free_ char *parent = xasprintf("orch/user-%u", (unsigned)c->uid);
	*res = json_pack("{s:s}", "parent", parent);
	return 0;
}
