/* Private to the container half of runtime/: the pieces container.c and
 * exec.c assemble, and the pure logic the unit tests pin down.  Other parts
 * include runtime/runtime.h only. */
#ifndef ORCH_RUNTIME_CONTAINER_IMPL_H
#define ORCH_RUNTIME_CONTAINER_IMPL_H

#include "runtime/runtime.h"

#include <linux/filter.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* ---- caps.c ------------------------------------------------------------ */

/* Docker's 14 default capabilities as a mask (CapEff 00000000a80425fb). */
#define CAPS_DOCKER_DEFAULT 0xa80425fbULL
/* "NET_ADMIN", "CAP_NET_ADMIN", "net_admin" -> bit number; -1 unknown. */
int cap_from_name(const char *name);
/* Highest capability the running kernel knows (cached). */
int cap_last(void);
/* In the container child, before changing uid (needs CAP_SETPCAP): the
 * bounding set reduced to mask. */
int caps_drop_bounding(uint64_t mask, struct orch_err *e);
/* After the uid change (with keepcaps): effective, permitted and
 * inheritable = mask, ambient cleared. */
int caps_set(uint64_t mask, struct orch_err *e);

/* ---- seccomp.c --------------------------------------------------------- */

/* One resolved rule of a profile: syscall name and what it does. */
enum sc_action { SC_ALLOW, SC_ERRNO, SC_KILL, SC_TRAP, SC_LOG };
struct sc_arg {
	unsigned index;
	int op; /* enum scmp_compare; MASKED_EQ: value is the mask */
	uint64_t value, value2;
};
struct sc_rule {
	const char *name;
	enum sc_action action;
	int errno_ret;
	size_t n_args;
	struct sc_arg args[2];
};
struct sc_profile {
	enum sc_action default_action; /* for every syscall not listed */
	int default_errno;
	struct sc_rule *rules;
	size_t n_rules;
	char **owned; /* names of a loaded profile */
};
/* Docker's default profile resolved for a capability mask (pure). */
void sc_profile_default(uint64_t caps, struct sc_profile *p);
/* A Docker-format JSON profile resolved for a capability mask. */
int sc_profile_load(const char *path, uint64_t caps, struct sc_profile *p,
		    struct orch_err *e);
void sc_profile_clear(struct sc_profile *p);
/* The action of the profile for name (for tests and diagnostics): the
 * first unconditional rule, else SC_ALLOW if a conditional allow exists. */
const struct sc_rule *sc_profile_find(const struct sc_profile *p,
				      const char *name);

/* A compiled filter, ready for the child to load without allocating. */
struct sc_filter {
	struct sock_fprog prog;
};
/* The profile as a BPF program for the native architectures, a binary
 * search on the syscall number (seccomp_bpf.c; pure). */
int sc_compile(const struct sc_profile *p, struct sc_filter *out,
	       struct orch_err *e);
/* Compiles the profile for the native architectures (cached per process
 * by (path, caps)); the result is owned by the cache. */
int sc_filter_get(const char *path, uint64_t caps,
		  const struct sc_filter **out, struct orch_err *e);
int sc_filter_load(const struct sc_filter *f);

/* ---- devices.c (pure) and device_cgroup.c ----------------------------- */

/* Access bits, as the kernel's BPF device context numbers them. */
enum { DEV_MKNOD = 1, DEV_READ = 2, DEV_WRITE = 4, DEV_RWM = 7 };
#define DEV_ANY (-1)
/* One allow rule; type 'c' or 'b' (an 'a' rule is expanded into both). */
struct dev_rule {
	char type;
	int64_t major, minor; /* DEV_ANY = * */
	unsigned access;      /* DEV_* bits, not 0 */
};
/* What a container may do with device nodes: everything (privileged), or
 * only what one of the rules allows in full. */
struct dev_policy {
	bool allow_all;
	struct dev_rule *rules;
	size_t n_rules;
};
/* A host device node to create in the container (from rt_spec.devices),
 * resolved on the host. */
struct dev_node {
	struct rt_device dev;
	char type; /* 'c' or 'b' */
	unsigned major, minor;
	mode_t mode; /* permission bits */
	uid_t uid;
	gid_t gid;
};
/* "rwm" -> DEV_* bits; -EINVAL for anything else or nothing. */
int dev_access_parse(const char *s, unsigned *access);
/* A device cgroup rule -> one or two rules ('a' gives 'c' and 'b');
 * returns how many, or -EINVAL with the reason. */
int dev_rule_parse(const char *text, struct dev_rule out[2],
		   struct orch_err *e);
/* The rule in cgroup v1's devices.allow syntax ("c 1:3 rwm"). */
void dev_rule_format(const struct dev_rule *r, char *buf, size_t size);
/* Docker's defaults, then the nodes, then the rules; privileged allows
 * all (the rules are still checked). */
int dev_policy_build(bool privileged, const struct dev_node *nodes,
		     size_t n_nodes, char *const *rules, struct dev_policy *p,
		     struct orch_err *e);
void dev_policy_clear(struct dev_policy *p);
/* Whether the policy allows access (DEV_* bits) to the node type:major:
 * minor; the reference the BPF program and v1 rules must agree with. */
bool dev_policy_allows(const struct dev_policy *p, char type, unsigned major,
		       unsigned minor, unsigned access);
/* The policy as a BPF_PROG_TYPE_CGROUP_DEVICE program (malloc'ed, *n
 * instructions); not for an allow_all policy. */
struct bpf_insn;
struct bpf_insn *dev_bpf_program(const struct dev_policy *p, size_t *n);

/* Stats every rt_spec.devices entry on the host: *nodes (n of them);
 * with host_all (privileged, as Docker) every device node under the
 * host's /dev comes first, but those the container's /dev has of its own
 * (null, zero, ..., ptmx, console, pts/, shm/, mqueue/). */
int dev_nodes_resolve(char *const *devices, bool host_all,
		      struct dev_node **nodes, size_t *n, struct orch_err *e);
void dev_nodes_free(struct dev_node *nodes, size_t n);
/* Applies the policy to a cgroup v1 devices directory (deny all, then
 * allow each rule). */
int dev_cgroup_v1_apply(int dfd, const struct dev_policy *p,
			struct orch_err *e);
/* Loads the policy's BPF program and attaches it to the cgroup v2
 * directory (alongside any program of its ancestors). */
int dev_cgroup_v2_apply(int dfd, const struct dev_policy *p,
			struct orch_err *e);

/* ---- cgroup.c ---------------------------------------------------------- */

enum cg_ctl {
	CG_MEMORY, CG_CPU, CG_CPUACCT, CG_PIDS, CG_FREEZER, CG_DEVICES,
	/* Made only for a container that sets them. */
	CG_CPUSET, CG_BLKIO, CG_NCTL
};
struct cg {
	bool v2;
	/* v2: dir[0] is the container's cgroup.  v1: one directory per
	 * controller hierarchy; NULL where a controller is missing or shares
	 * a hierarchy already listed. */
	char *dir[CG_NCTL];
};
/* Creates <parent>/<id> in every hierarchy, applies limits and the device
 * policy, moves pid in (pid 0: nobody, see cg_join).  parent NULL is
 * orch's own place: "orch", or on a cgroup v2 host run by systemd a
 * delegated scope (cgroup_systemd.c).  On error nothing is left. */
int cg_create(const char *parent, const char *id, const struct rt_limits *l,
	      const struct dev_policy *dev, pid_t pid, struct cg *out,
	      struct orch_err *e);
/* Whether cg_create for parent wants a process that has done nothing
 * yet: a user's cgroup takes in only a process that is still the user's,
 * and systemd must find it alive to move it into a scope.  Otherwise the
 * cgroup may be made while the process mounts its root. */
bool cg_wants_idle_process(const char *parent);
/* What a container sees at /sys/fs/cgroup (its own cgroups, through its
 * cgroup namespace): on cgroup v2 one cgroup2 mount (*v2 true, NULL
 * returned); on v1 the hierarchies of its memory, CPU, pids, cpuset and
 * blkio controllers, each once, as their mount options ("memory",
 * "cpu,cpuacct", ...): cpuset and blkio are shown to a container that has
 * a cgroup there.  Found once per process (the hierarchies mounted
 * do not change under a runtime): a process that clones a child with its
 * own memory calls it before, so that the child only reads. */
const char *const *cg_view(bool *v2);
/* Whether the process joins the cgroup cg_create makes for parent itself
 * (cg_join), which on cgroup v1 is much faster: writing "0" to a
 * hierarchy's tasks file moves the writing thread alone, which the kernel
 * does without its global threadgroup lock.  The first taker of that
 * lock after a quiet moment waits for an RCU grace period (~10 ms). */
bool cg_joined_by_self(const char *parent);
/* cg's tasks files, opened here for the process that joins it: *n of
 * them in fds. */
int cg_join_fds(const struct cg *cg, int fds[CG_NCTL], size_t *n,
		struct orch_err *e);
/* Moves the calling thread, its process's only one, into the cgroup
 * whose tasks files are fds (cg_join_fds), and closes them.  The kernel
 * checks the credentials of whoever opened them. */
int cg_join(int *fds, size_t n, struct orch_err *e);
/* cgroup_systemd.c: true when systemd manages the unified hierarchy. */
bool cg_systemd_host(void);
/* rootless.c: the highest uid (gid when group) our user namespace maps. */
int userns_top_id(bool group, uint32_t *top, struct orch_err *e);
/* After a container's leaf is gone: sees its scope removed (cgroup_systemd.c). */
void cg_systemd_release(const char *scope);
/* Makes the scope orch.slice/orch-<id>-<pid>.scope holding pid, and the
 * container's cgroup <scope>/<id> with the limits and the device policy,
 * pid moved in. */
int cg_systemd_create(const char *id, const struct rt_limits *l,
		      const struct dev_policy *dev, pid_t pid, struct cg *out,
		      struct orch_err *e);
/* Kills what is left in the cgroup, removes it and the parent when empty.
 * "Already gone" is success. */
int cg_destroy(struct cg *cg, struct orch_err *e);
void cg_clear(struct cg *cg);
/* Writes val to file in the cgroup directory dfd. */
int cg_write_file(int dfd, const char *file, const char *val,
		  struct orch_err *e);
/* Writes val to fd, file opened; the kernel takes each write whole, so
 * an open file of rules (devices.allow) takes one rule per call. */
int cg_write_fd(int fd, const char *file, const char *val,
		struct orch_err *e);
/* Moves the calling process, which has one thread, into the cgroup; on
 * v1 through the tasks files, without the kernel's global lock (see
 * cg_joined_by_self). */
int cg_enter_self(const struct cg *cg, struct orch_err *e);
int cg_stats(const struct cg *cg, struct rt_stats *st, struct orch_err *e);
int cg_freeze(const struct cg *cg, bool frozen, struct orch_err *e);
/* Writers for one directory (open on a cgroup dir, or a fake one in
 * tests).  Every limit set in l is written; a file that cannot be written
 * is an error naming it. */
int cg_v1_write_limits(int dfd, enum cg_ctl ctl, const struct rt_limits *l,
		       struct orch_err *e);
int cg_v2_write_limits(int dfd, const struct rt_limits *l,
		       struct orch_err *e);
/* v2: makes sure dfd's cgroup.subtree_control enables memory, cpu, pids
 * (only those cgroup.controllers offers; a wanted missing one is an error). */
int cg_v2_enable_controllers(int dfd, const struct rt_limits *l,
			     struct orch_err *e);
/* v1 cpu.shares -> v2 cpu.weight. */
uint64_t cg_shares_to_weight(uint64_t shares);

/* ---- rlimits (namespace.c) --------------------------------------------- */

/* The rlimits a container gets: the spec's, plus RLIMIT_NOFILE 1024 /
 * 524288 unless given, never above host_nofile_hard and never infinite.
 * *out has room for n + 1 entries. */
size_t rl_resolve(const struct rt_rlimit *spec, size_t n,
		  uint64_t host_nofile_hard, struct rt_rlimit *out);

/* ---- namespace.c ------------------------------------------------------- */

/* CLONE_NEW* flags for enum rt_ns bits. */
int ns_clone_flags(unsigned ns);
/* "inside outside count" lines of a map. */
char *ns_map_text(const struct rt_idmap *m, size_t n);
/* pid's /proc/PID/oom_score_adj. */
int ns_set_oom_score_adj(pid_t pid, int v, struct orch_err *e);
/* Writes pid's uid_map and gid_map (setgroups stays allowed). */
int ns_write_idmaps(pid_t pid, const struct rt_idmap *u, size_t nu,
		    const struct rt_idmap *g, size_t ng, struct orch_err *e);
/* Sets pid's rlimits from here: a process in a user namespace may not
 * raise its own. */
int ns_set_rlimits(pid_t pid, const struct rt_rlimit *rl, size_t n,
		   struct orch_err *e);
/* Brings lo up in the current network namespace. */
/* pidfd of pid, checked against the start time recorded for it so a
 * recycled pid is never signalled; -ESRCH when gone. */
int ns_pidfd_open_checked(pid_t pid, uint64_t start_time);
/* Start time (clock ticks since boot) of pid, 0 when gone. */
uint64_t ns_pid_start_time(pid_t pid);

/* ---- idmap.c ---------------------------------------------------------- */

/* Whether the spec's maps are one range from 0, the same for uids and
 * gids: its first host id and size. */
bool idmap_single(const struct rt_spec *s, uint32_t *base, uint32_t *count);
/* The map of an idmapped bind for the range (see rt_mount.idmap): out has
 * room for 2; returns how many extents. */
size_t idmap_bind_map(uint32_t base, uint32_t count, struct rt_idmap out[2]);
/* Mounts the parent makes for a child in a user namespace, detached (-1:
 * none): the root, the sysfs of the network namespace it joins, per spec
 * mount a clone of its source, and a tmpfs with the spec's device nodes
 * (the child may not mknod, and the host's nodes belong to an id the
 * namespace does not map).  Fds the parent opened name the
 * parent's mount namespace, so the child attaches them onto paths of its
 * own: the root over "/", the others inside the root. */
struct ns_mounts {
	int root, sys;
	int *binds;
	size_t n_binds;
	int nodes; /* a tmpfs holding the device nodes "0", "1"... */
};
void ns_mounts_init(struct ns_mounts *m);
void ns_mounts_clear(struct ns_mounts *m);
/* In the parent, once the child's id maps are written: the root, binds
 * and device nodes, idmapped through ns (the child's user namespace);
 * scratch is a directory a helper may mount over in a mount namespace of
 * its own (older kernels, see idmap.c). */
int ns_mounts_prepare(const struct rt_spec *s, const char *upper_dir,
		      const char *scratch, const struct dev_node *nodes,
		      size_t n_nodes, int ns, struct ns_mounts *m,
		      struct orch_err *e);
/* In the parent, before the clone, in the network namespace the child
 * joins: its sysfs, which the child inherits. */
int ns_mounts_sysfs(const struct rt_spec *s, struct ns_mounts *m,
		    struct orch_err *e);
/* The prepared mounts travel to the child over the sync socket, in one
 * order: the root, each mount's but tmpfs ones, the nodes' tmpfs. */
#define NS_MOUNTS_MAX_FDS 250
size_t ns_mounts_nfds(const struct rt_spec *s, size_t n_nodes);
size_t ns_mounts_fds(const struct ns_mounts *m, int *fds);
/* The child's side: m (its array allocated by the parent) filled from
 * fds. */
void ns_mounts_take(const struct rt_spec *s, size_t n_nodes, const int *fds,
		    struct ns_mounts *m);
/* Attaches a detached mount onto the file target_fd names (AT_FDCWD:
 * over "/"). */
int ns_attach(int mount_fd, int target_fd, const char *what,
	      struct orch_err *e);

/* ---- mount.c ----------------------------------------------------------- */

/* In the child, in its own mount namespace: builds the root filesystem
 * at mnt (overlay or bind), the spec's mounts and /proc, then calls
 * in_cgroup (which returns once the process is in its cgroup), then
 * /sys /dev with the device nodes, creates workdir, pivots into it and
 * detaches the old root. */
struct mnt_root {
	const char *mnt, *upper, *work;
	int shm_fd; /* a detached /dev/shm to attach (ipc_join), else -1 */
	const struct ns_mounts *nm;
	const struct dev_node *nodes;
	size_t n_nodes;
	int (*in_cgroup)(void *arg, struct orch_err *e);
	void *arg;
};
int mnt_setup_rootfs(const struct rt_spec *s, const struct mnt_root *m,
		     struct orch_err *e);
/* Which of the spec's sysctls: the network namespace's ones (net.*) are
 * written by the parent of a remapped child, which does not own it. */
enum sysctl_set { SYSCTL_ALL, SYSCTL_NET, SYSCTL_NOT_NET };
int mnt_write_sysctls(int procfd, char **sysctls, enum sysctl_set which,
		      struct orch_err *e);
/* Opens path under root without leaving it (RESOLVE_IN_ROOT); with
 * create, missing components become directories (the last one a file
 * when file). */
int mnt_open_in_root(int rootfd, const char *path, bool create, bool file,
		     struct orch_err *e);

/* ---- upper.c ----------------------------------------------------------- */

/* Makes a container's upper dir (upper/ and work/ in it), from a spare
 * when there is one; one that exists already (a restart) is kept. */
int upper_make(const char *upper_dir, struct orch_err *e);

/* ---- init.c ------------------------------------------------------------ */

/* Runs as the container's PID 1: forks; the child returns 0 (and goes on
 * to exec the user's command), the parent reaps and forwards signals
 * until that child exits and never returns (exits with its status). */
int init_reaper_fork(struct orch_err *e);

/* ---- exec (container.c) ------------------------------------------------ */

/* What both the container's process and `rt_exec` processes run through
 * after the namespaces: user, caps, no_new_privs, seccomp, exec. */
struct proc_plan {
	char **argv, **env;
	const char *workdir;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t n_groups;
	uint64_t caps;
	bool no_new_privs;
	const struct sc_filter *seccomp; /* NULL = none */
	struct rt_rlimit *rlimits;
	size_t n_rlimits;
	int stdio[3];
	bool pty; /* stdio: a pty made here, its master sent as SYNC_PTY */
	/* Container init: report SYNC_READY and wait for SYNC_GO before
	 * exec; init: run the reaper as PID 1 and exec in its child. */
	bool wait_start;
	bool init;
};
/* Never returns on success; on error sends the message on sync_fd and
 * _exits 127. */
void proc_exec(const struct proc_plan *p, int sync_fd) __attribute__((noreturn));
/* Child -> parent messages over the sync socket. */
/* SYNC_EXEC_ERROR: the setup worked, exec itself failed. */
enum sync_msg { SYNC_GO = 1, SYNC_READY, SYNC_ERROR, SYNC_EXEC_ERROR, SYNC_PID,
		SYNC_PTY };
struct sync_packet {
	int type;
	int code;
	int pid;
	char msg[1024];
};
int sync_send(int fd, int type, int code, int pid, const char *msg);
/* Reads one packet; 0 on EOF (type 0). */
int sync_recv(int fd, struct sync_packet *p);
/* sync_recv, past a SYNC_PTY: its master is put in *pty (when pty is
 * non-NULL and *pty < 0), else closed. */
int sync_recv_pty(int fd, struct sync_packet *p, int *pty);
/* A bare packet carrying n file descriptors, and its reading: exactly n
 * must come (-EBADMSG otherwise), or up to max, *got of them. */
int sync_send_fds(int fd, int type, const int *fds, size_t n);
int sync_recv_fds(int fd, struct sync_packet *p, int *fds, size_t n);
int sync_recv_fds_upto(int fd, struct sync_packet *p, int *fds, size_t max,
		       size_t *got);
void sync_send_err(int fd, const struct orch_err *e) __attribute__((noreturn));
void sync_send_exec_err(int fd, const struct orch_err *e)
	__attribute__((noreturn));

/* ---- state (container.c) ---------------------------------------------- */

struct ctr_state {
	char *id;
	pid_t pid;
	uint64_t start_time;
	unsigned namespaces;
	struct cg cg;
	char *upper_dir; /* the directory to remove on delete, or NULL */
	char *image;
	/* What exec needs to recreate the container's process context. */
	char **env;
	char *workdir;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t n_groups;
	uint64_t caps;
	bool no_new_privs;
	bool seccomp;
	char *seccomp_profile;
	struct rt_rlimit *rlimits;
	size_t n_rlimits;
	int stop_signal;
};
int ctr_state_read(const char *id, struct ctr_state *st, struct orch_err *e);
void ctr_state_clear(struct ctr_state *st);
char *ctr_state_dir(const char *id);
bool rt_id_valid(const char *id);

/* ---- cli.c ----------------------------------------------------------- */

/* `orch-runtime run` options; spec's strings point into argv or are owned
 * (lowers, env, caps, sysctls, mounts, argv, id). */
struct rt_cli_run {
	struct rt_spec spec;
	char *id;
	const char *rw; /* --rw: the root used as is */
	bool detach;
	const char *image; /* --image NAME[:TAG]: root and defaults from it */
	char **volumes;	   /* --volume NAME:DST[:ro] */
	bool user_set;
	struct rt_idmap idmap; /* --userns */
};
/* argv[0] is "run"; bad usage -> -EINVAL with the reason in e. */
int rt_cli_parse_run(int argc, char **argv, struct rt_cli_run *o,
		     struct orch_err *e);
void rt_cli_run_clear(struct rt_cli_run *o);

#endif
