/* Container lifecycle: create (clone into namespaces, cgroup, rootfs,
 * everything up to exec), start, wait, kill, delete, and the state kept
 * under $ORCH_RUN/runtime/<id>. */
#include "runtime/container_impl.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/fs.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

bool rt_id_valid(const char *id)
{
	if (!id || !*id || strlen(id) > 128)
		return false;
	if (!((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= 'A' && id[0] <= 'Z') ||
	      (id[0] >= '0' && id[0] <= '9')))
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
		      *p == '-'))
			return false;
	return true;
}

char *ctr_state_dir(const char *id)
{
	return xasprintf("%s/runtime/%s", orch_run(), id);
}

/* ---- state file ------------------------------------------------------------ */

static json_t *strv_json(char **v)
{
	json_t *a = json_array();
	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static char **json_strv(json_t *a)
{
	char **v = xcalloc(1, sizeof(char *));
	size_t i;
	json_t *x;
	json_array_foreach(a, i, x) if (json_is_string(x))
		strv_push(&v, json_string_value(x));
	return v;
}

static int state_write(const char *dir, const struct ctr_state *st,
		       struct orch_err *e)
{
	json_t *cg = json_array();
	for (int c = 0; c < CG_NCTL; c++)
		json_array_append_new(cg, st->cg.dir[c] ? json_string(st->cg.dir[c])
							: json_null());
	json_t *groups = json_array();
	for (size_t i = 0; i < st->n_groups; i++)
		json_array_append_new(groups, json_integer(st->groups[i]));
	json_t *rl = json_array();
	for (size_t i = 0; i < st->n_rlimits; i++)
		json_array_append_new(
			rl, json_pack("[iII]", st->rlimits[i].resource,
				      (json_int_t)st->rlimits[i].soft,
				      (json_int_t)st->rlimits[i].hard));
	char caps[32];
	snprintf(caps, sizeof(caps), "%016llx", (unsigned long long)st->caps);
	json_t *o = json_pack(
		"{s:s, s:i, s:I, s:i, s:b, s:o, s:s?, s:s?, s:o, s:s?, s:i, s:i,"
		" s:o, s:s, s:b, s:b, s:s?, s:o, s:i}",
		"id", st->id, "pid", (int)st->pid, "start_time",
		(json_int_t)st->start_time, "namespaces", (int)st->namespaces,
		"cgroup_v2", st->cg.v2, "cgroups", cg, "upper_dir",
		st->upper_dir, "image", st->image, "env", strv_json(st->env),
		"workdir", st->workdir, "uid", (int)st->uid, "gid",
		(int)st->gid, "groups", groups, "caps", caps, "no_new_privs",
		st->no_new_privs, "seccomp", st->seccomp, "seccomp_profile",
		st->seccomp_profile, "rlimits", rl, "stop_signal",
		st->stop_signal);
	if (!o)
		return err_set(e, EINVAL, "encoding the container state");
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	_cleanup_free_ char *path = path_join(dir, "state.json");
	int r = write_file_atomic(path, text, strlen(text), 0600, e);
	free(text);
	return r;
}

void ctr_state_clear(struct ctr_state *st)
{
	free(st->id);
	cg_clear(&st->cg);
	free(st->upper_dir);
	free(st->image);
	strv_free(st->env);
	free(st->workdir);
	free(st->groups);
	free(st->seccomp_profile);
	free(st->rlimits);
	memset(st, 0, sizeof(*st));
}

static char *json_dupstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? xstrdup(s) : NULL;
}

int ctr_state_read(const char *id, struct ctr_state *st, struct orch_err *e)
{
	memset(st, 0, sizeof(*st));
	if (!rt_id_valid(id))
		return err_set(e, EINVAL, "bad container id \"%s\"", id);
	_cleanup_free_ char *dir = ctr_state_dir(id);
	_cleanup_free_ char *path = path_join(dir, "state.json");
	json_error_t je;
	json_t *o = json_load_file(path, 0, &je);
	if (!o) {
		if (access(path, F_OK) < 0 && errno == ENOENT)
			return err_set(e, ENOENT, "no such container: %s", id);
		return err_set(e, EIO, "reading %s: %s", path, je.text);
	}
	st->id = json_dupstr(o, "id");
	st->pid = (pid_t)json_integer_value(json_object_get(o, "pid"));
	st->start_time =
		(uint64_t)json_integer_value(json_object_get(o, "start_time"));
	st->namespaces =
		(unsigned)json_integer_value(json_object_get(o, "namespaces"));
	st->cg.v2 = json_is_true(json_object_get(o, "cgroup_v2"));
	json_t *cg = json_object_get(o, "cgroups");
	for (int c = 0; c < CG_NCTL; c++) {
		const char *d = json_string_value(json_array_get(cg, (size_t)c));
		st->cg.dir[c] = d ? xstrdup(d) : NULL;
	}
	st->upper_dir = json_dupstr(o, "upper_dir");
	st->image = json_dupstr(o, "image");
	st->env = json_strv(json_object_get(o, "env"));
	st->workdir = json_dupstr(o, "workdir");
	st->uid = (uid_t)json_integer_value(json_object_get(o, "uid"));
	st->gid = (gid_t)json_integer_value(json_object_get(o, "gid"));
	json_t *g = json_object_get(o, "groups");
	st->n_groups = json_array_size(g);
	st->groups = xcalloc(st->n_groups + 1, sizeof(gid_t));
	for (size_t i = 0; i < st->n_groups; i++)
		st->groups[i] = (gid_t)json_integer_value(json_array_get(g, i));
	const char *caps = json_string_value(json_object_get(o, "caps"));
	st->caps = caps ? strtoull(caps, NULL, 16) : 0;
	st->no_new_privs = json_is_true(json_object_get(o, "no_new_privs"));
	st->seccomp = json_is_true(json_object_get(o, "seccomp"));
	st->seccomp_profile = json_dupstr(o, "seccomp_profile");
	json_t *rl = json_object_get(o, "rlimits");
	st->n_rlimits = json_array_size(rl);
	st->rlimits = xcalloc(st->n_rlimits + 1, sizeof(struct rt_rlimit));
	for (size_t i = 0; i < st->n_rlimits; i++) {
		json_t *x = json_array_get(rl, i);
		st->rlimits[i] = (struct rt_rlimit){
			(int)json_integer_value(json_array_get(x, 0)),
			(uint64_t)json_integer_value(json_array_get(x, 1)),
			(uint64_t)json_integer_value(json_array_get(x, 2))};
	}
	st->stop_signal =
		(int)json_integer_value(json_object_get(o, "stop_signal"));
	json_decref(o);
	return 0;
}

/* ---- create ----------------------------------------------------------------- */

/* Everything the child needs, prepared by the parent so the child only
 * makes syscalls. */
struct child_ctx {
	const struct rt_spec *spec;
	int sync_fd;
	int netns_fd;
	bool net_joined; /* the parent cloned us in netns_fd already */
	/* spec->pid_join's PID namespace (the parent clones us there), and
	 * ipc_join's IPC and mount namespaces (its /dev/shm), or -1. */
	int pidns_fd, ipcns_fd, shm_mntns_fd;
	bool first_go;	 /* the parent says when to start */
	/* Cloned with the parent's memory (vm_stack_take): it waits for one
	 * word that brings everything, the files to join its cgroup with
	 * (n_join, set by the parent before that word) included, and writes
	 * only to copies of its own. */
	bool vm;
	size_t n_join;
	int join_fds[CG_NCTL];
	/* User namespace: the mounts the parent makes (sys inherited, the
	 * rest received with SYNC_GO into arrays allocated for them). */
	struct ns_mounts *nm;
	const char *mnt, *upper, *work;
	const char *hostname;
	const struct dev_node *nodes;
	size_t n_nodes;
	struct proc_plan plan;
};

/* A rootless orch may not idmap a mount: a container of a user namespace
 * of its own (keep-id) runs on copies of its layers whose owners went
 * through its map (rt_layers_shifted), and makes its mounts itself, as a
 * container without one does; only its sysfs comes from us. */
static bool own_mounts(const struct rt_spec *s)
{
	return (s->namespaces & RT_NS_USER) && rootless();
}

/* The child's side of ipc_join: a copy of the other container's /dev/shm
 * (taken in its mount namespace, then back in ours), and its IPC
 * namespace. */
static int join_shared_ipc(int ipcns, int mntns, int *shm_fd,
			   struct orch_err *e)
{
	_cleanup_close_ int own = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (own < 0)
		return err_sys(e, errno, "opening our mount namespace");
	if (setns(mntns, CLONE_NEWNS) < 0)
		return err_sys(e, errno, "entering the mount namespace of the "
				      "container whose IPC is shared");
	*shm_fd = (int)syscall(SYS_open_tree, AT_FDCWD, "/dev/shm",
			       OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
				   AT_RECURSIVE);
	int saved = errno;
	if (setns(own, CLONE_NEWNS) < 0)
		return err_sys(e, errno, "returning to our mount namespace");
	if (*shm_fd < 0)
		return err_sys(e, saved, "copying the shared /dev/shm");
	if (setns(ipcns, CLONE_NEWIPC) < 0)
		return err_sys(e, errno, "joining the shared IPC namespace");
	return 0;
}

/* The parent's second word: the child is in its cgroup, or joins it
 * through the files passed along (cg_join), and makes its cgroup
 * namespace there. */
static int child_in_cgroup(void *arg, struct orch_err *e)
{
	struct child_ctx *c = arg;
	struct sync_packet pk;
	int fds[CG_NCTL];
	size_t n_fds = c->n_join;
	if (c->vm)
		memcpy(fds, c->join_fds, n_fds * sizeof(int));
	else if (sync_recv_fds_upto(c->sync_fd, &pk, fds, CG_NCTL, &n_fds) <=
		     0 ||
		 pk.type != SYNC_GO)
		_exit(1);
	if (cg_join(fds, n_fds, e) < 0)
		return -e->code;
	if ((c->spec->namespaces & RT_NS_CGROUP) && unshare(CLONE_NEWCGROUP) < 0)
		return err_sys(e, errno, "creating the cgroup namespace");
	return 0;
}

static void child_main(const struct child_ctx *given) __attribute__((noreturn));
static void child_main(const struct child_ctx *given)
{
	/* What this process changes is its own, even when it shares the
	 * parent's memory; then it touches no more than its stack until its
	 * word (the parent's heap is the parent's until then). */
	struct child_ctx own = *given, *c = &own;
	struct ns_mounts nm;
	const struct rt_spec *s = c->spec;
	struct orch_err e = {0};
	/* The parent writes the id maps of a user namespace, or puts us in
	 * a cgroup that wants a process that has done nothing yet, then
	 * lets us go on.  Otherwise it makes the cgroup while we mount
	 * (child_in_cgroup). */
	int fds[NS_MOUNTS_MAX_FDS];
	bool sent = c->first_go && c->nm && !own_mounts(s);
	if (c->first_go) {
		struct sync_packet pk;
		size_t want = sent ? ns_mounts_nfds(s, c->n_nodes) : 0, got = 0;
		int n = c->vm	 ? sync_recv_fds_upto(c->sync_fd, &pk, fds,
						      ARRAY_SIZE(fds), &got)
			: sent ? sync_recv_fds(c->sync_fd, &pk, fds, want)
			       : sync_recv(c->sync_fd, &pk);
		if (n <= 0 || pk.type != SYNC_GO)
			_exit(1);
		if (c->vm) {
			c->n_join = given->n_join;
			if (got != want + c->n_join)
				_exit(1);
			memcpy(c->join_fds, fds + want, c->n_join * sizeof(int));
		}
	}
	if (given->nm) {
		nm = *given->nm;
		nm.binds = xcalloc(nm.n_binds + 1, sizeof(int));
		memcpy(nm.binds, given->nm->binds, nm.n_binds * sizeof(int));
		c->nm = &nm;
	}
	if (sent)
		ns_mounts_take(s, c->n_nodes, fds, c->nm);
	/* Cloned as the host's root, which the new namespace does not map:
	 * become its root before making anything. */
	if ((s->namespaces & RT_NS_USER) &&
	    (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) {
		err_sys(&e, errno, "becoming root in the user namespace");
		sync_send_err(c->sync_fd, &e);
	}
	if (c->netns_fd >= 0 && !c->net_joined &&
	    setns(c->netns_fd, CLONE_NEWNET) < 0) {
		err_sys(&e, errno, "joining network namespace %s", s->netns_path);
		sync_send_err(c->sync_fd, &e);
	}
	if ((s->namespaces & RT_NS_NET) && netns_lo_up(&e) < 0)
		sync_send_err(c->sync_fd, &e);
	int shm_fd = -1;
	if (c->ipcns_fd >= 0 &&
	    (join_shared_ipc(c->ipcns_fd, c->shm_mntns_fd, &shm_fd, &e) < 0))
		sync_send_err(c->sync_fd, &e);
	umask(0);
	const struct mnt_root root = {
	    .shm_fd = shm_fd,
	    .mnt = c->mnt,
	    .upper = c->upper,
	    .work = c->work,
	    .nm = c->nm,
	    .nodes = c->nodes,
	    .n_nodes = c->n_nodes,
	    .in_cgroup = child_in_cgroup,
	    .arg = c,
	};
	if (mnt_setup_rootfs(s, &root, &e) < 0)
		sync_send_err(c->sync_fd, &e);
	umask(022);
	if (s->namespaces & RT_NS_UTS) {
		if (sethostname(c->hostname, strlen(c->hostname)) < 0) {
			err_sys(&e, errno, "setting the hostname %s", c->hostname);
			sync_send_err(c->sync_fd, &e);
		}
		if (s->domainname &&
		    setdomainname(s->domainname, strlen(s->domainname)) < 0) {
			err_sys(&e, errno, "setting the domain name %s", s->domainname);
			sync_send_err(c->sync_fd, &e);
		}
	}
	/* From here its creds are the command's, and a process of the
	 * container it joins (pid: service:NAME) may see it: it holds a copy
	 * of its creator's memory (a supervisor's: every service's record),
	 * which such a process, of the same uid and capabilities, could read
	 * or write through ptrace until the exec, and an init's reaper keeps
	 * for the container's life.  Undumpable, only a holder of
	 * CAP_SYS_PTRACE over the host may; the exec makes the command
	 * dumpable again.  A child sharing our memory (which it would make
	 * undumpable too) joins no PID namespace (c.vm). */
	if (!c->vm)
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	proc_exec(&c->plan, c->sync_fd);
}

static char **container_env(const struct rt_spec *s, const char *hostname)
{
	char **env = strv_copy(s->env);
	bool path = false, home = false, host = false;
	for (size_t i = 0; env[i]; i++) {
		path |= startswith(env[i], "PATH=");
		home |= startswith(env[i], "HOME=");
		host |= startswith(env[i], "HOSTNAME=");
	}
	if (!path)
		strv_push(&env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (!host) {
		_cleanup_free_ char *h = xasprintf("HOSTNAME=%s", hostname);
		strv_push(&env, h);
	}
	if (!home)
		strv_push(&env, s->uid == 0 ? "HOME=/root" : "HOME=/");
	return env;
}

/* Until the process of pidfd has ended (reaped or not): a child or not. */
static void wait_ended(int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	RETRY_EINTR(poll(&p, 1, -1));
}

/* Reaps pid; one that is not our child (a sibling) is only waited for,
 * its status (-1) being its parent's to take. */
static int wait_pid(pid_t pid, int pidfd, int *status)
{
	siginfo_t si = {0};
	int r = pidfd >= 0 ? (int)RETRY_EINTR(waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED))
			   : (int)RETRY_EINTR(waitid(P_PID, (id_t)pid, &si, WEXITED));
	if (r < 0 && errno == ECHILD && pidfd >= 0) {
		wait_ended(pidfd);
		*status = -1;
		return 0;
	}
	if (r < 0)
		return -errno;
	*status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
	return 0;
}

/* Back to the network namespace *self was opened on, once. */
static int net_restore(int *self, struct orch_err *e)
{
	if (*self < 0)
		return 0;
	int r = setns(*self, CLONE_NEWNET) < 0
			? err_sys(e, errno, "returning to the host's network namespace")
			: 0;
	close(*self);
	*self = -1;
	return r;
}

/* For a child in a user namespace, which can neither join the network
 * namespace (the host's user namespace owns it) nor make its mounts: the
 * calling thread joins it, so that the child is cloned into it, and
 * makes the namespace's sysfs and sets its sysctls there; nm gets room
 * for the mounts the child will be sent. */
static int prepare_remapped(const struct rt_spec *s, struct child_ctx *c,
			    struct ns_mounts *nm, int *self_net,
			    struct orch_err *e)
{
	if (c->netns_fd >= 0) {
		*self_net = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (*self_net < 0)
			return err_sys(e, errno, "opening this thread's network namespace");
		if (setns(c->netns_fd, CLONE_NEWNET) < 0) {
			int saved = errno;
			close(*self_net);
			*self_net = -1;
			return err_sys(e, saved, "joining network namespace %s",
				       s->netns_path);
		}
		c->net_joined = true;
	}
	if (ns_mounts_nfds(s, c->n_nodes) > NS_MOUNTS_MAX_FDS)
		return err_set(e, E2BIG, "more than %d mounts and devices",
			       NS_MOUNTS_MAX_FDS - 1);
	nm->binds = xcalloc(s->n_mounts + 1, sizeof(int));
	nm->n_binds = s->n_mounts;
	for (size_t i = 0; i < s->n_mounts; i++)
		nm->binds[i] = -1;
	c->nm = nm;
	if (!c->net_joined)
		return 0;
	int r = ns_mounts_sysfs(s, nm, e);
	if (r < 0)
		return r;
	/* Its root's capabilities do not reach a namespace the host owns:
	 * low ports and ping are open to every id there, as docker does for
	 * every container. */
	char ping[64] = "net.ipv4.ping_group_range=0 2147483647";
	uint32_t top;
	if (rootless()) { /* every gid of the user's namespace */
		int r = userns_top_id(true, &top, e);
		if (r < 0)
			return r;
		snprintf(ping, sizeof(ping), "net.ipv4.ping_group_range=0 %u",
			 top);
	}
	char *open_to_all[] = {"net.ipv4.ip_unprivileged_port_start=0", ping,
			       NULL};
	_cleanup_close_ int proc =
		open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (proc < 0)
		return err_sys(e, errno, "opening /proc");
	r = mnt_write_sysctls(proc, open_to_all, SYSCTL_NET, e);
	return r < 0 ? r : mnt_write_sysctls(proc, s->sysctls, SYSCTL_NET, e);
}

static int layers_for(const struct rt_spec *s, char ***out, struct orch_err *e)
{
	struct rt_ids ids = {.n_uid = s->n_uid_map, .n_gid = s->n_gid_map};
	if (ids.n_uid > ARRAY_SIZE(ids.uid) || ids.n_gid > ARRAY_SIZE(ids.gid))
		return err_set(e, EINVAL, "more than %zu id map entries",
			       ARRAY_SIZE(ids.uid));
	memcpy(ids.uid, s->uid_map, ids.n_uid * sizeof(ids.uid[0]));
	memcpy(ids.gid, s->gid_map, ids.n_gid * sizeof(ids.gid[0]));
	return rt_layers_shifted(s->lowers, &ids, out, e);
}

/* Once the child's id maps are written: its mounts, idmapped through its
 * own user namespace, go with the word to go on (and the n_more files of
 * more after them).  Nothing of ours is freed after the word: the child
 * may share our memory. */
static int go_remapped(const struct rt_spec *s, pid_t pid, int sync_fd,
		       const char *upper_dir, const char *scratch,
		       const struct dev_node *nodes, size_t n_nodes,
		       const int *more, size_t n_more, struct orch_err *e)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	_cleanup_close_ int ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		return err_sys(e, errno, "opening %s", path);
	struct ns_mounts made;
	int r = ns_mounts_prepare(s, upper_dir, scratch, nodes, n_nodes, ns,
				  &made, e);
	if (r < 0)
		return r;
	int fds[NS_MOUNTS_MAX_FDS];
	size_t n = ns_mounts_fds(&made, fds);
	if (made.sys >= 0)
		close(made.sys);
	free(made.binds);
	if (n + n_more > ARRAY_SIZE(fds)) {
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		return err_set(e, E2BIG, "more than %zu mounts and devices",
			       ARRAY_SIZE(fds));
	}
	memcpy(fds + n, more, n_more * sizeof(int));
	r = sync_send_fds(sync_fd, SYNC_GO, fds, n + n_more);
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
	return r < 0 ? err_sys(e, -r, "starting the container's setup") : 0;
}

/* When the child has sent its error on sync_fd (within a moment: it
 * sends it before it exits), that becomes e. */
static void child_error(int sync_fd, struct orch_err *e)
{
	struct pollfd p = {.fd = sync_fd, .events = POLLIN};
	struct sync_packet pk;
	if (RETRY_EINTR(poll(&p, 1, 100)) == 1 && sync_recv(sync_fd, &pk) > 0 &&
	    pk.type == SYNC_ERROR)
		err_set(e, pk.code, "%s", pk.msg);
}

/* Clones the container's process: joins its network namespace first
 * when the process is born in a user namespace (prepare_remapped), and
 * returns to ours after, where self_net is given. */
struct spawn {
	struct child_ctx *c;
	struct ns_mounts *nm;
	int sync_parent; /* our end of the socket pair: the child closes it */
	pid_t pid;
	int pidfd;
	struct orch_err err;
};

/* A child that starts at once can share our memory until its exec
 * (CLONE_VM), as posix_spawn's does: no copy of our page tables, no
 * copy-on-write fault on either side for every page either writes, no
 * teardown of a copied address space at exec.  Nothing of ours runs
 * while it does: we wait for its exec (or its end) from the moment it
 * has its word (create), and it writes only to copies of its own
 * (child_main).  It runs on a stack of its own, kept for the next
 * child, which comes after this one's exec or end: the one taker of it
 * gives it back then (a second, in another thread, clones as fork
 * does).  Not with the sanitizers, whose per-thread state it would
 * share. */
#if defined(__SANITIZE_ADDRESS__)
#define VM_SPAWN 0
#else
#define VM_SPAWN 1
#endif
enum { VM_STACK_SIZE = 1 << 20 };
static char *vm_stack;
static bool vm_stack_taken;

static bool vm_stack_take(void)
{
	if (!VM_SPAWN || __atomic_test_and_set(&vm_stack_taken, __ATOMIC_ACQUIRE))
		return false;
	if (!vm_stack) {
		void *p = mmap(NULL, VM_STACK_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK |
				   MAP_NORESERVE,
			       -1, 0);
		/* A guard page: an overflow faults rather than writes ours. */
		if (p != MAP_FAILED &&
		    mprotect(p, (size_t)sysconf(_SC_PAGESIZE), PROT_NONE) < 0) {
			munmap(p, VM_STACK_SIZE);
			p = MAP_FAILED;
		}
		if (p == MAP_FAILED) {
			__atomic_clear(&vm_stack_taken, __ATOMIC_RELEASE);
			return false;
		}
		vm_stack = (char *)p + VM_STACK_SIZE;
	}
	return true;
}

static void vm_stack_give(void)
{
	__atomic_clear(&vm_stack_taken, __ATOMIC_RELEASE);
}

static int vm_child(void *arg)
{
	struct spawn *sp = arg;
	close(sp->sync_parent);
	child_main(sp->c);
}

static void spawn_run(struct spawn *sp, int *self_net)
{
	const struct rt_spec *s = sp->c->spec;
	int own_net = -1;
	if ((s->namespaces & RT_NS_USER) &&
	    prepare_remapped(s, sp->c, sp->nm, self_net ? self_net : &own_net,
			     &sp->err) < 0) {
		if (own_net >= 0)
			close(own_net);
		return;
	}
	if (own_net >= 0)
		close(own_net);
	/* Found here, the child only reading it (CLONE_VM). */
	bool v2;
	(void)cg_view(&v2);
	/* The cgroup namespace is made by the child once it is in its
	 * cgroup, so that cgroup becomes the namespace's root. */
	uint64_t flags =
	    (uint64_t)(ns_clone_flags(s->namespaces) & ~CLONE_NEWCGROUP) |
	    CLONE_PIDFD | (s->sibling ? CLONE_PARENT : 0);
	/* Another container's PID namespace: ours for the children we make
	 * until the clone, then our own again. */
	int own_pidns = -1;
	if (sp->c->pidns_fd >= 0) {
		own_pidns = open("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC);
		if (own_pidns < 0 || setns(sp->c->pidns_fd, CLONE_NEWPID) < 0) {
			err_sys(&sp->err, errno, "entering the shared PID namespace");
			if (own_pidns >= 0)
				close(own_pidns);
			return;
		}
	}
	if (sp->c->vm) {
		sp->pid = clone(vm_child, vm_stack,
				(int)flags | CLONE_VM | SIGCHLD, sp, &sp->pidfd);
	} else {
		/* A sibling's exit signal is ours to our parent (clone3
		 * wants none given with CLONE_PARENT). */
		struct clone_args ca = {
			.flags = flags,
			.pidfd = (uint64_t)(uintptr_t)&sp->pidfd,
			.exit_signal = s->sibling ? 0 : SIGCHLD,
		};
		sp->pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	}
	int clone_errno = errno;
	if (sp->pid == 0) {
		close(sp->sync_parent);
		child_main(sp->c);
	}
	if (own_pidns >= 0) {
		if (setns(own_pidns, CLONE_NEWPID) < 0 && sp->pid > 0)
			err_sys(&sp->err, errno, "returning to our PID namespace");
		close(own_pidns);
	}
	if (sp->pid < 0)
		err_sys(&sp->err, clone_errno, "cloning into new namespaces");
	struct orch_err ignored = {0};
	if (self_net) /* on error, the caller kills the child */
		net_restore(self_net, sp->err.code ? &ignored : &sp->err);
}

/* The thread ends in the container's network namespace, and with it. */
static void *spawn_thread(void *arg)
{
	spawn_run(arg, NULL);
	return NULL;
}

static void ns_fds_close(struct child_ctx *c)
{
	int *fds[] = {&c->pidns_fd, &c->ipcns_fd, &c->shm_mntns_fd};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

/* The namespace of that kind (as /proc/PID/ns names it) of another
 * container's process. */
static int ns_open_of(pid_t pid, const char *kind, struct orch_err *e)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)pid, kind);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? err_sys(e, errno, "opening the %s namespace of "
					  "process %d", kind, (int)pid)
		      : fd;
}

/* What the runtime keeps of a container made: its state file.  st
 * takes the rlimits (*rl). */
static int state_record(struct ctr_state *st, const struct rt_spec *s,
			pid_t pid, char **env, const struct proc_plan *plan,
			struct rt_rlimit **rl, const char *dir,
			struct orch_err *e)
{
	st->id = xstrdup(s->id);
	st->pid = pid;
	st->start_time = ns_pid_start_time(pid);
	st->namespaces = s->namespaces;
	st->image = s->image ? xstrdup(s->image) : NULL;
	st->env = strv_copy(env);
	st->workdir = s->workdir ? xstrdup(s->workdir) : NULL;
	st->uid = s->uid;
	st->gid = s->gid;
	st->groups = s->n_groups ? xmalloc(s->n_groups * sizeof(gid_t)) : NULL;
	if (s->n_groups)
		memcpy(st->groups, s->groups, s->n_groups * sizeof(gid_t));
	st->n_groups = s->n_groups;
	st->no_new_privs = plan->no_new_privs;
	st->seccomp = plan->seccomp != NULL;
	st->seccomp_profile =
	    s->seccomp_profile ? xstrdup(s->seccomp_profile) : NULL;
	st->rlimits = *rl;
	*rl = NULL;
	st->n_rlimits = plan->n_rlimits;
	st->stop_signal = s->stop_signal ? s->stop_signal : SIGTERM;
	return state_write(dir, st, e);
}

static int create(const struct rt_spec *s, bool start,
		  struct rt_container **out, struct orch_err *e)
{
	*out = NULL;
	if (s->pty)
		*s->pty = -1;
	if (!rt_id_valid(s->id))
		return err_set(e, EINVAL, "bad container id \"%s\"",
			       s->id ? s->id : "");
	if (!s->rootfs && !strv_len(s->lowers))
		return err_set(e, EINVAL, "container %s has no root filesystem", s->id);
	if (!(s->namespaces & RT_NS_MOUNT))
		return err_set(e, EINVAL, "container %s needs a mount namespace", s->id);
	if (s->netns_path && (s->namespaces & RT_NS_NET))
		return err_set(e, EINVAL, "container %s: joining a network namespace and creating one are exclusive", s->id);
	if ((s->pid_join && (s->namespaces & RT_NS_PID)) ||
	    (s->ipc_join && (s->namespaces & RT_NS_IPC)))
		return err_set(e, EINVAL, "container %s: sharing a PID or IPC namespace and creating one are exclusive", s->id);
	if ((s->pid_join || s->ipc_join) &&
	    ((s->namespaces & RT_NS_USER) || rootless()))
		return err_set(e, EINVAL, "container %s: a user namespace of its own cannot share another container's PID or IPC namespace", s->id);
	struct rt_spec own;
	_cleanup_strv_ char **shifted = NULL;
	if (own_mounts(s) && !s->rootfs) {
		int r = layers_for(s, &shifted, e);
		if (r < 0)
			return err_wrap(e, "container %s", s->id);
		own = *s;
		own.lowers = shifted;
		s = &own;
	}

	struct ctr_state st = {0};
	struct child_ctx c = {.spec = s, .sync_fd = -1, .netns_fd = -1,
			      .pidns_fd = -1, .ipcns_fd = -1,
			      .shm_mntns_fd = -1};
	int sv[2] = {-1, -1}, pidfd = -1;
	pid_t pid = -1;
	bool made_dir = false, made_upper = false;
	_cleanup_free_ char *dir = ctr_state_dir(s->id);
	_cleanup_free_ char *mnt = NULL, *upper = NULL, *work = NULL;
	_cleanup_strv_ char **env = NULL;
	struct rt_rlimit *rl = NULL;
	struct dev_node *nodes = NULL;
	size_t n_nodes = 0;
	struct dev_policy dev = {0};
	struct ns_mounts nm;
	int self_net = -1;
	int r;

	ns_mounts_init(&nm);
	r = rt_caps_resolve(s->cap_add, s->cap_drop, s->privileged,
			    rt_caps_held(), &st.caps, e);
	if (r < 0)
		return err_wrap(e, "container %s", s->id);
	const struct sc_filter *filter = NULL;
	if (!s->privileged && !s->no_seccomp) {
		r = sc_filter_get(s->seccomp_profile, st.caps, &filter, e);
		if (r < 0)
			return err_wrap(e, "container %s", s->id);
	}
	r = dev_nodes_resolve(s->devices, s->privileged, &nodes, &n_nodes, e);
	if (r == 0)
		r = dev_policy_build(s->privileged, nodes, n_nodes,
				     s->device_rules, &dev, e);
	if (r < 0) {
		dev_nodes_free(nodes, n_nodes);
		return err_wrap(e, "container %s", s->id);
	}
	struct rlimit host;
	if (getrlimit(RLIMIT_NOFILE, &host) < 0)
		host.rlim_max = 1024;
	rl = xcalloc(s->n_rlimits + 1, sizeof(*rl));
	size_t n_rl = rl_resolve(s->rlimits, s->n_rlimits, host.rlim_max, rl);

	int dir_err = mkdir(dir, 0700) == 0 ? 0 : errno;
	if (dir_err == ENOENT) {
		_cleanup_free_ char *base = xasprintf("%s/runtime", orch_run());
		r = mkdir_p(base, 0700, e);
		if (r < 0)
			goto fail;
		dir_err = mkdir(dir, 0700) == 0 ? 0 : errno;
	}
	if (dir_err) {
		if (dir_err == EEXIST)
			err_set(e, EEXIST, "container %s exists already", s->id);
		else
			err_sys(e, dir_err, "creating %s", dir);
		goto fail_nodir;
	}
	made_dir = true;
	if (s->rootfs) {
		mnt = xstrdup(s->rootfs);
	} else {
		mnt = path_join(dir, "rootfs");
		st.upper_dir = s->upper_dir ? xstrdup(s->upper_dir)
					    : xasprintf("%s/containers/%s",
							orch_root(), s->id);
		upper = path_join(st.upper_dir, "upper");
		work = path_join(st.upper_dir, "work");
		if (mkdir(mnt, 0700) < 0) {
			err_sys(e, errno, "creating %s", mnt);
			goto fail;
		}
		made_upper = true;
		/* Not in upper_make: the sweep's own spares are made by it. */
		rt_upper_sweep();
		r = upper_make(st.upper_dir, e);
		if (r < 0)
			goto fail;
		/* The merged root is the upper's: the container's root owns
		 * it. */
		uint32_t ru = 0, rg = 0;
		if (own_mounts(s) &&
		    rt_idmap_find(s->uid_map, s->n_uid_map, 0, false, &ru) &&
		    rt_idmap_find(s->gid_map, s->n_gid_map, 0, false, &rg) &&
		    chown(upper, ru, rg) < 0) {
			err_sys(e, errno, "giving %s to the container's root", upper);
			goto fail;
		}
	}
	if (s->netns_path) {
		c.netns_fd = open(s->netns_path, O_RDONLY | O_CLOEXEC);
		if (c.netns_fd < 0) {
			err_sys(e, errno, "opening network namespace %s",
				    s->netns_path);
			goto fail;
		}
	}
	if ((s->pid_join &&
	     (c.pidns_fd = ns_open_of(s->pid_join, "pid", e)) < 0) ||
	    (s->ipc_join &&
	     ((c.ipcns_fd = ns_open_of(s->ipc_join, "ipc", e)) < 0 ||
	      (c.shm_mntns_fd = ns_open_of(s->ipc_join, "mnt", e)) < 0)))
		goto fail;
	char hostname[64];
	snprintf(hostname, sizeof(hostname), "%.12s",
		 s->hostname && *s->hostname ? s->hostname : s->id);
	if (s->hostname && *s->hostname)
		snprintf(hostname, sizeof(hostname), "%s", s->hostname);
	env = container_env(s, hostname);
	c.mnt = mnt;
	c.upper = upper;
	c.work = work;
	c.hostname = hostname;
	c.nodes = nodes;
	c.n_nodes = n_nodes;
	c.plan = (struct proc_plan){
		.argv = s->argv,
		.env = env,
		.workdir = s->workdir,
		.uid = s->uid,
		.gid = s->gid,
		.groups = s->groups,
		.n_groups = s->n_groups,
		.caps = st.caps,
		.no_new_privs = s->no_new_privs && !s->allow_new_privs,
		.seccomp = filter,
		.rlimits = rl,
		.n_rlimits = n_rl,
		.pty = s->pty != NULL,
		.wait_start = !start,
		.init = s->init,
	};
	memcpy(c.plan.stdio, s->stdio, sizeof(c.plan.stdio));
	/* The cgroup is made while the child mounts its root, unless it
	 * wants a process that has done nothing yet. */
	bool cg_early = cg_wants_idle_process(s->cgroup_parent);
	/* A child that starts at once shares our memory (vm_stack_take), but
	 * for a rootless orch's (whose remapped child is cloned from a
	 * thread), one under init (which lives on as its PID 1) or one in
	 * another container's PID namespace (whose processes see it). */
	c.vm = start && !s->init && !rootless() && !s->pid_join &&
	       ns_mounts_nfds(s, n_nodes) + CG_NCTL <= NS_MOUNTS_MAX_FDS &&
	       vm_stack_take();
	c.first_go = (s->namespaces & RT_NS_USER) || cg_early || c.vm;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		err_sys(e, errno, "creating a socket pair");
		goto fail;
	}
	c.sync_fd = sv[1];
	struct spawn sp = {&c, &nm, sv[0], -1, -1, {0}};
	/* A rootless orch cannot return to the host's network namespace
	 * once it joined a container's: a thread of its own joins it. */
	if ((s->namespaces & RT_NS_USER) && rootless() && c.netns_fd >= 0) {
		pthread_t t;
		r = pthread_create(&t, NULL, spawn_thread, &sp);
		if (r != 0) {
			err_sys(e, r, "starting a thread");
			goto fail;
		}
		pthread_join(t, NULL);
	} else {
		spawn_run(&sp, &self_net);
	}
	pid = sp.pid;
	pidfd = sp.pidfd;
	if (sp.err.code) {
		*e = sp.err;
		goto fail;
	}
	/* A child sharing our memory takes its copy of nm's as it starts;
	 * ours goes once it is done. */
	if (!c.vm)
		ns_mounts_clear(&nm);
	close(sv[1]);
	sv[1] = -1;
	if (s->namespaces & RT_NS_USER) {
		r = ns_write_idmaps(pid, s->uid_map, s->n_uid_map, s->gid_map,
				    s->n_gid_map, e);
		if (r == 0)
			r = ns_set_rlimits(pid, rl, n_rl, e);
		if (r < 0)
			goto fail;
	}
	/* From here, where lowering it is allowed (in a user namespace, the
	 * child may only raise it). */
	if (s->has_oom_score_adj &&
	    ns_set_oom_score_adj(pid, s->oom_score_adj, e) < 0)
		goto fail;
	/* The child waits for its cgroup before it makes /sys, its device
	 * nodes and anything that runs; it may join it itself.  It is made
	 * while the child mounts its root, unless the child wants a process
	 * that has done nothing yet, or shares our memory. */
	bool self_join = cg_joined_by_self(s->cgroup_parent);
	int join[CG_NCTL];
	size_t n_join = 0;
	if ((cg_early || c.vm) &&
	    (cg_create(s->cgroup_parent, s->id, &s->limits, &dev,
		       self_join && !cg_early ? 0 : pid, &st.cg, e) < 0 ||
	     (self_join && !cg_early &&
	      cg_join_fds(&st.cg, join, &n_join, e) < 0)))
		goto fail;
	c.n_join = n_join;
	/* The state is written once the cgroup is known: before the word
	 * for a child sharing our memory, else while it mounts. */
	if (c.vm && state_record(&st, s, pid, env, &c.plan, &rl, dir, e) < 0)
		goto fail;
	/* The word to go, with what the child needs; one sharing our memory
	 * gets its cgroup with it, and runs alone from here to its exec. */
	bool child_gone = false;
	if ((s->namespaces & RT_NS_USER) && !own_mounts(s)) {
		r = go_remapped(s, pid, sv[0], st.upper_dir, mnt, nodes,
				n_nodes, join, n_join, e);
		if (r < 0)
			goto fail;
	} else if (c.first_go &&
		   (r = sync_send_fds(sv[0], SYNC_GO, join, n_join)) < 0) {
		err_sys(e, -r, "starting the container's setup");
		goto fail;
	}
	if (!c.vm) {
		if (!cg_early &&
		    (cg_create(s->cgroup_parent, s->id, &s->limits, &dev,
			       self_join ? 0 : pid, &st.cg, e) < 0 ||
		     (self_join && cg_join_fds(&st.cg, join, &n_join, e) < 0))) {
			/* A child that failed meanwhile (and so cannot be
			 * moved) said why first: that is the error. */
			child_error(sv[0], e);
			goto fail;
		}
		/* A child that failed before it got this word said why:
		 * that is read below, in place of this error. */
		child_gone = sync_send_fds(sv[0], SYNC_GO, join, n_join) < 0;
	}
	for (size_t i = 0; i < n_join; i++)
		close(join[i]);
	if (!c.vm && state_record(&st, s, pid, env, &c.plan, &rl, dir, e) < 0)
		goto fail;
	/* Waiting: SYNC_READY.  Started: EOF once exec closed the socket, or
	 * the exec error, which leaves a created container to wait for. */
	struct sync_packet pk;
	int n = sync_recv_pty(sv[0], &pk, s->pty);
	bool ok = !child_gone &&
		  (start ? n == 0 || (n > 0 && pk.type == SYNC_EXEC_ERROR)
			 : n > 0 && pk.type == SYNC_READY);
	if (!ok) {
		if (n < 0)
			err_sys(e, -n, "reading from the container's setup");
		else if (n > 0 && pk.type == SYNC_ERROR)
			err_set(e, pk.code, "%s", pk.msg);
		else
			err_set(e, EIO, "the container's setup died");
		goto fail;
	}
	/* One sharing our memory that could not exec is let to end before
	 * anything of ours changes (left to be reaped by rt_wait). */
	if (c.vm && n > 0)
		wait_ended(pidfd);
	ns_mounts_clear(&nm);
	if (c.vm)
		vm_stack_give();
	struct rt_container *ct = xcalloc(1, sizeof(*ct));
	ct->id = xstrdup(s->id);
	ct->pid = pid;
	ct->pidfd = pidfd;
	ct->sync_fd = start ? -1 : sv[0];
	if (start)
		close(sv[0]);
	if (c.netns_fd >= 0)
		close(c.netns_fd);
	ns_fds_close(&c);
	ctr_state_clear(&st);
	dev_nodes_free(nodes, n_nodes);
	dev_policy_clear(&dev);
	*out = ct;
	if (start && n > 0)
		return err_set(e, pk.code, "%s", pk.msg);
	return 0;

fail:
	{
		struct orch_err ignored = {0};
		net_restore(&self_net, &ignored);
	}
	if (pid > 0) {
		int status;
		if (pidfd >= 0)
			syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		else
			kill(pid, SIGKILL);
		wait_pid(pid, pidfd, &status);
	}
	/* The child is gone: it may have shared these. */
	ns_mounts_clear(&nm);
	if (c.vm)
		vm_stack_give();
	{
		struct orch_err ignored = {0};
		cg_destroy(&st.cg, &ignored);
		if (made_upper && st.upper_dir)
			rt_upper_remove(st.upper_dir, &ignored);
		if (made_dir)
			rm_rf(dir, &ignored);
	}
fail_nodir:
	if (s->pty && *s->pty >= 0) {
		close(*s->pty);
		*s->pty = -1;
	}
	if (pidfd >= 0)
		close(pidfd);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (c.netns_fd >= 0)
		close(c.netns_fd);
	ns_fds_close(&c);
	free(rl);
	ctr_state_clear(&st);
	dev_nodes_free(nodes, n_nodes);
	dev_policy_clear(&dev);
	return err_wrap(e, "creating container %s", s->id);
}

int rt_create(const struct rt_spec *s, struct rt_container **out,
	      struct orch_err *e)
{
	return create(s, false, out, e);
}

int rt_run(const struct rt_spec *s, struct rt_container **out,
	   struct orch_err *e)
{
	return create(s, true, out, e);
}

int rt_start_go(struct rt_container *c, struct orch_err *e)
{
	if (c->sync_fd < 0)
		return err_set(e, EINVAL, "container %s was started already", c->id);
	int r = sync_send(c->sync_fd, SYNC_GO, 0, 0, NULL);
	if (r < 0) {
		close(c->sync_fd);
		c->sync_fd = -1;
		return err_sys(e, -r, "starting container %s", c->id);
	}
	return 0;
}

int rt_start_result(struct rt_container *c, struct orch_err *e)
{
	if (c->sync_fd < 0)
		return err_set(e, EINVAL, "container %s was started already", c->id);
	struct sync_packet pk;
	int n = sync_recv(c->sync_fd, &pk);
	close(c->sync_fd);
	c->sync_fd = -1;
	if (n < 0)
		return err_sys(e, -n, "starting container %s", c->id);
	if (pk.type == SYNC_ERROR || pk.type == SYNC_EXEC_ERROR)
		return err_set(e, pk.code, "%s", pk.msg);
	return 0; /* EOF: exec closed the socket */
}

int rt_start(struct rt_container *c, struct orch_err *e)
{
	int r = rt_start_go(c, e);
	return r < 0 ? r : rt_start_result(c, e);
}

void rt_container_free(struct rt_container *c)
{
	if (!c)
		return;
	if (c->pidfd >= 0)
		close(c->pidfd);
	if (c->sync_fd >= 0)
		close(c->sync_fd);
	free(c->id);
	free(c);
}

int rt_wait(struct rt_container *c, int *status, struct orch_err *e)
{
	int r = wait_pid(c->pid, c->pidfd, status);
	if (r < 0)
		return err_sys(e, -r, "waiting for container %s", c->id);
	return 0;
}

/* ---- operations by id ---------------------------------------------------------- */

int rt_kill(const char *id, int sig, struct orch_err *e)
{
	struct ctr_state st;
	int r = ctr_state_read(id, &st, e);
	if (r < 0)
		return r;
	int fd = ns_pidfd_open_checked(st.pid, st.start_time);
	ctr_state_clear(&st);
	if (fd < 0)
		return err_set(e, ESRCH, "container %s is not running", id);
	r = (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
	int saved = errno;
	close(fd);
	if (r < 0)
		return err_sys(e, saved, "sending %s to container %s",
			       signal_name(sig), id);
	return 0;
}

int rt_pid(const char *id, pid_t *pid, struct orch_err *e)
{
	struct ctr_state st;
	int r = ctr_state_read(id, &st, e);
	if (r < 0)
		return r;
	int fd = ns_pidfd_open_checked(st.pid, st.start_time);
	*pid = st.pid;
	ctr_state_clear(&st);
	if (fd < 0)
		return err_set(e, ESRCH, "container %s is not running", id);
	close(fd);
	return 0;
}

int rt_delete(const char *id, bool remove_upper, struct orch_err *e)
{
	struct ctr_state st;
	int r = ctr_state_read(id, &st, e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	int fd = ns_pidfd_open_checked(st.pid, st.start_time);
	if (fd >= 0) {
		syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
		/* Readable once it has exited (zombie or reaped). */
		struct pollfd p = {.fd = fd, .events = POLLIN};
		RETRY_EINTR(poll(&p, 1, 5000));
		close(fd);
	}
	r = cg_destroy(&st.cg, e);
	if (r == 0 && remove_upper && st.upper_dir)
		r = rt_upper_remove(st.upper_dir, e);
	if (r == 0) {
		_cleanup_free_ char *dir = ctr_state_dir(id);
		r = rm_rf(dir, e);
	}
	ctr_state_clear(&st);
	return r < 0 ? err_wrap(e, "deleting container %s", id) : 0;
}

int rt_list(char ***ids, struct orch_err *e)
{
	*ids = xcalloc(1, sizeof(char *));
	_cleanup_free_ char *base = xasprintf("%s/runtime", orch_run());
	DIR *d = opendir(base);
	if (!d)
		return errno == ENOENT ? 0 : err_sys(e, errno, "listing %s", base);
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && rt_id_valid(de->d_name))
			strv_push(ids, de->d_name);
	closedir(d);
	return 0;
}

int rt_stats(const char *id, struct rt_stats *out, struct orch_err *e)
{
	struct ctr_state st;
	int r = ctr_state_read(id, &st, e);
	if (r < 0)
		return r;
	r = cg_stats(&st.cg, out, e);
	ctr_state_clear(&st);
	return r < 0 ? err_wrap(e, "stats of container %s", id) : 0;
}

static int freeze(const char *id, bool frozen, struct orch_err *e)
{
	struct ctr_state st;
	int r = ctr_state_read(id, &st, e);
	if (r < 0)
		return r;
	r = cg_freeze(&st.cg, frozen, e);
	ctr_state_clear(&st);
	return r < 0 ? err_wrap(e, "%s container %s",
				frozen ? "pausing" : "resuming", id)
		     : 0;
}

int rt_pause(const char *id, struct orch_err *e)
{
	return freeze(id, true, e);
}

int rt_resume(const char *id, struct orch_err *e)
{
	return freeze(id, false, e);
}
