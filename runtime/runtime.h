/* runtime — turns a container spec into an isolated Linux process: its
 * namespaces, root file system, cgroups, capabilities, seccomp filter and
 * devices.  The images and volumes it runs come from the store
 * (runtime/store/), images from registries through runtime/registry/.
 * It knows nothing of YAML, projects or networks.  This is the container
 * runtime's one public header. */
#ifndef ORCH_RUNTIME_H
#define ORCH_RUNTIME_H

#include "common/common.h"
#include "runtime/store/store.h"

#include <sys/resource.h>

/* ======================================================================
 * Containers
 * ====================================================================== */

enum rt_ns {
	RT_NS_PID = 1 << 0,
	RT_NS_MOUNT = 1 << 1,
	RT_NS_UTS = 1 << 2,
	RT_NS_IPC = 1 << 3,
	RT_NS_NET = 1 << 4,
	RT_NS_CGROUP = 1 << 5,
	RT_NS_USER = 1 << 6,
};
#define RT_NS_DEFAULT                                                      \
	(RT_NS_PID | RT_NS_MOUNT | RT_NS_UTS | RT_NS_IPC | RT_NS_NET |     \
	 RT_NS_CGROUP)

enum rt_mount_type {
	RT_MOUNT_BIND,	 /* source: host path */
	RT_MOUNT_VOLUME, /* source: a named volume's data directory */
	RT_MOUNT_TMPFS,	 /* source unused */
};

enum rt_idmap_kind {
	RT_IDMAP_NONE,
	/* Host id k (k >= 1) shows as k, the container's root is the
	 * range's first id, the host's root is nobody: a host directory
	 * (as podman's :idmap, but root stays out). */
	RT_IDMAP_HOST,
	/* Through the container's own map: stored as the image's layers
	 * are, root as 0 (the builder's cache and secret mounts). */
	RT_IDMAP_IMAGE,
};

struct rt_mount {
	enum rt_mount_type type;
	char *source;
	char *target; /* absolute path inside the container */
	bool readonly;
	int64_t size; /* tmpfs: bytes, 0 = kernel default */
	mode_t mode;  /* tmpfs: 0 = 01777 */
	/* A bind in a user namespace: as is (the host's ids, shown
	 * through the container's map), or idmapped. */
	enum rt_idmap_kind idmap;
};

struct rt_rlimit {
	int resource; /* RLIMIT_* */
	uint64_t soft, hard;
};

/* One block device's I/O weight or limit (blkio_config). */
enum rt_blkio_kind {
	RT_BLKIO_WEIGHT, RT_BLKIO_READ_BPS, RT_BLKIO_WRITE_BPS,
	RT_BLKIO_READ_IOPS, RT_BLKIO_WRITE_IOPS,
};
struct rt_blkio_dev {
	enum rt_blkio_kind kind;
	unsigned major, minor;
	uint64_t value;
};

/* cgroup limits; 0 (or 0.0) means "not set". */
struct rt_limits {
	int64_t memory;	     /* bytes */
	int64_t memory_swap; /* memory+swap bytes, -1 = unlimited swap */
	int64_t memory_reservation; /* bytes kept under memory pressure (v1
				       soft limit, v2 memory.low) */
	double cpus;	     /* fractional CPUs (quota/period) */
	uint64_t cpu_shares; /* v1 shares; mapped to v2 weight */
	int64_t pids;	     /* pids.max */
	const char *cpuset_cpus; /* "0-2,4": the CPUs it may run on */
	int64_t cpu_rt_runtime, cpu_rt_period; /* µs of real-time CPU */
	int swappiness;	       /* memory.swappiness + 1 (0: not set) */
	bool oom_kill_disable; /* memory.oom_control */
	unsigned blkio_weight; /* 10..1000 */
	const struct rt_blkio_dev *blkio;
	size_t n_blkio;
};

struct rt_spec {
	/* Unique name ([A-Za-z0-9][A-Za-z0-9_.-]*): names the cgroup and the
	 * state under $ORCH_RUN/runtime/<id>. */
	const char *id;
	/* Image id the rootfs came from (recorded so the image store can refuse
	 * to remove an image in use); may be NULL. */
	const char *image;

	/* Root filesystem: either read-only lower directories (uppermost
	 * first) with an overlay whose upper/work live in upper_dir (default
	 * $ORCH_ROOT/containers/<id>), or one directory used as is. */
	char **lowers;
	const char *upper_dir;
	/* The upper dir goes with the container (run --rm): the overlay is
	 * volatile, never synced to disk.  Otherwise its unmount syncs the
	 * whole filesystem the upper dir is on, and waits for it. */
	bool volatile_upper;
	const char *rootfs;
	bool readonly_rootfs;

	char **argv; /* argv[0] resolved against PATH inside the rootfs */
	char **env;  /* "K=V" */
	const char *workdir;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t n_groups;
	const char *hostname;
	const char *domainname;
	int64_t shm_size; /* bytes of /dev/shm; 0: 64 MiB, as docker */
	bool has_oom_score_adj;
	int oom_score_adj; /* -1000..1000, set from outside before the exec */

	unsigned namespaces;	/* enum rt_ns bits to create */
	/* RT_NS_USER: one range from 0, the same for uids and gids (0 BASE
	 * COUNT).  The layers, the upper directory and the root given by
	 * rootfs are idmapped through it, so the store keeps the image's
	 * owners; joined namespaces (netns_path) stay the host's. */
	struct rt_idmap *uid_map, *gid_map;
	size_t n_uid_map, n_gid_map;
	const char *netns_path; /* join this network namespace (not RT_NS_NET) */
	/* Share the PID namespace (not RT_NS_PID), or the IPC namespace and
	 * /dev/shm (not RT_NS_IPC), of this process of another container
	 * (pid: service:NAME); not from a user namespace of its own. */
	pid_t pid_join, ipc_join;

	struct rt_mount *mounts;
	size_t n_mounts;
	char **sysctls; /* "net.core.somaxconn=1024" */

	/* Capabilities: Docker's 14 by default; names with or without CAP_,
	 * "ALL" in either list.  privileged = all caps, no seccomp. */
	char **cap_add, **cap_drop;
	bool privileged;
	bool no_seccomp;
	const char *seccomp_profile; /* Docker-format JSON file, NULL = default */
	bool no_new_privs;	     /* set by default (true unless disabled) */
	bool allow_new_privs;

	/* Devices, as Docker: every device is denied but the standard
	 * character devices (null, zero, full, random, urandom, tty, console,
	 * ptmx, pts) and mknod of any node.  devices adds host nodes,
	 * "HOST[:CONTAINER][:PERMS]" (created in the container, allowed with
	 * PERMS, default rwm); device_rules adds cgroup rules ("c 10:229 rwm",
	 * "b 7:* r").  privileged allows every device. */
	char **devices;
	char **device_rules;

	struct rt_rlimit *rlimits;
	size_t n_rlimits;
	struct rt_limits limits;
	const char *cgroup_parent; /* default: "orch", or a systemd scope */

	int stdio[3];	/* fds to give the container; -1 = /dev/null */
	/* Non-NULL: stdio is a pty of the container's own /dev/pts (its
	 * controlling terminal, named there as under docker), whose master
	 * rt_create puts here, the caller's to close. */
	int *pty;
	bool init;	/* run a tiny reaper as PID 1 that forwards signals */
	int stop_signal; /* 0 = SIGTERM */
	/* The container is a child of the caller's parent (CLONE_PARENT): a
	 * helper making containers for its parent, which reaps them. */
	bool sibling;
};

void rt_spec_init(struct rt_spec *s); /* zero + stdio -1 + defaults */

/* A created container.  pid is its init in the caller's pid namespace. */
struct rt_container {
	char *id;
	pid_t pid;
	int pidfd;   /* pidfd of pid (O_CLOEXEC), -1 if unavailable */
	int sync_fd; /* private to the runtime */
};

/* Sets up the container up to (not including) exec: the child has its
 * namespaces, cgroup, rootfs and mounts and waits.  The caller may now
 * configure /proc/<pid>/ns/net.  Every error in the child comes back here
 * with context; on error nothing is left behind. */
int rt_create(const struct rt_spec *spec, struct rt_container **out,
	      struct orch_err *e);
/* Lets the child exec; returns once exec succeeded, or the exec error
 * ("exec foo: No such file or directory"). */
int rt_start(struct rt_container *c, struct orch_err *e);
/* rt_start in two steps, for a caller that waits for many: the word to
 * exec, then (once c->sync_fd is readable) its outcome. */
int rt_start_go(struct rt_container *c, struct orch_err *e);
int rt_start_result(struct rt_container *c, struct orch_err *e);
/* rt_create and rt_start in one step, for callers with nothing to do
 * between the two (no network namespace to configure): one round trip
 * with the child less.  A setup error leaves nothing (*out NULL); an exec
 * error returns with *out set, like rt_start's, to rt_wait (126/127) and
 * rt_delete. */
int rt_run(const struct rt_spec *spec, struct rt_container **out,
	   struct orch_err *e);
/* Frees the handle (not the container). */
void rt_container_free(struct rt_container *c);

/* Operations by id on running containers (state in $ORCH_RUN/runtime). */
int rt_kill(const char *id, int sig, struct orch_err *e);
/* Waits for a container started by this process: exit code, or 128+N when
 * killed by signal N (-1 for a sibling, which its parent reaps). */
int rt_wait(struct rt_container *c, int *status, struct orch_err *e);
/* Removes everything of the container: leftover processes, cgroup, state,
 * and the upper dir when remove_upper.  "Already gone" is success. */
int rt_delete(const char *id, bool remove_upper, struct orch_err *e);
/* Removes a container's upper dir (spec upper_dir); one of
 * $ORCH_ROOT/containers is emptied and kept for the next container. */
int rt_upper_remove(const char *upper_dir, struct orch_err *e);
/* Once per boot and $ORCH_RUN: removes the containers' directories of
 * $ORCH_ROOT/containers that a reboot left without a record (all were in
 * $ORCH_RUN), as the first container made after it does.  Best effort. */
void rt_upper_sweep(void);

struct rt_exec_spec {
	char **argv;
	char **env;	 /* added to / overriding the container's env */
	const char *workdir; /* NULL = container's */
	const char *user;    /* "uid[:gid]" or NULL = container's */
	int stdio[3];
	/* Non-NULL: stdio is a pty of the container's own /dev/pts (its
	 * controlling terminal), whose master rt_exec puts here, the
	 * caller's to close. */
	int *pty;
	bool privileged; /* every capability this process holds */
};
/* Starts a process inside a running container: all its namespaces, its
 * cgroup, caps, seccomp and user.  *pid is a child of the caller. */
int rt_exec(const char *id, const struct rt_exec_spec *x, pid_t *pid,
	    struct orch_err *e);

struct rt_stats {
	uint64_t memory_current, memory_peak, memory_limit;
	uint64_t cpu_usage_ns;
	uint64_t pids;
};
int rt_stats(const char *id, struct rt_stats *st, struct orch_err *e);
int rt_pause(const char *id, struct orch_err *e);
int rt_resume(const char *id, struct orch_err *e);
/* Ids of containers with runtime state on this host. */
int rt_list(char ***ids, struct orch_err *e);
/* pid of a running container's init, or -ESRCH. */
int rt_pid(const char *id, pid_t *pid, struct orch_err *e);

/* Capability names -> the resulting effective mask (Docker's defaults
 * adjusted by add/drop), within available: privileged, "ALL" and the
 * defaults get what is available; a capability named in add that is not
 * is an error naming it.  Pure; for callers and tests. */
int rt_caps_resolve(char *const *add, char *const *drop, bool privileged,
		    uint64_t available, uint64_t *mask, struct orch_err *e);
/* The capabilities this process can give: its permitted set within its
 * bounding set. */
uint64_t rt_caps_held(void);

/* A device of rt_spec.devices, parsed (Docker's --device syntax). */
struct rt_device {
	char *host_path; /* absolute */
	char *path;	 /* absolute, inside the container */
	char access[4];	 /* non-empty subset of "rwm" */
};
/* "HOST[:CONTAINER][:PERMS]" -> d (owned strings); bad syntax -> -EINVAL
 * with the reason.  Pure: the host node is not looked at. */
int rt_device_parse(const char *text, struct rt_device *d,
		    struct orch_err *e);
void rt_device_clear(struct rt_device *d);
/* Checks each entry of rt_spec.devices: its syntax, and that the host
 * path is a character or block device. */
int rt_devices_check(char *const *devices, struct orch_err *e);
/* Checks a device cgroup rule ("TYPE MAJOR:MINOR PERMS", TYPE a, b or c,
 * MAJOR and MINOR a number or *, PERMS a subset of rwm). */
int rt_device_rule_check(const char *rule, struct orch_err *e);

/* ======================================================================
 * User-namespace id ranges (idpool.c)
 * ====================================================================== */

/* A range (RT_IDRANGE_SIZE, store.h): uids and gids 0.. in a container
 * are BASE.. on the host. */
struct rt_userns_conf {
	bool enabled; /* containers are remapped (ORCH_USERNS, orch.json) */
	uint32_t start, count; /* the pool */
	const char *source;    /* where the pool comes from */
};
/* The host's settings: ORCH_USERNS=host|remap, then $ORCH_ROOT/orch.json
 * {"userns": "host" | {"start", "count"}}, the range of user orch in
 * /etc/subuid and /etc/subgid (which wins for the pool), else orch's
 * default pool (refused when it meets a range /etc/subuid gives). */
int rt_userns_config(struct rt_userns_conf *c, struct orch_err *e);
/* Rootless (rootless.c): orch run by a user without privileges
 * (rootless() in common).  In the host's user namespace, joins the
 * user's own user and mount namespaces (made from /etc/subuid and
 * /etc/subgid by newuidmap and newgidmap, kept by a holder process), where
 * we are root.  Nothing for root, or once inside.  Must run before any
 * thread is started. */
int rt_rootless_enter(struct orch_err *e);
/* Whether containers get systemd scopes (cgroup_systemd.c): on a cgroup
 * v2 host run by systemd, from its manager for root, from the user's own
 * (user@UID.service, on the user's bus) for a rootless orch. */
bool rt_cgroup_systemd(void);
/* What this host's cgroups have no file for (the runtime then leaves it
 * unset, as docker does): cgroup v2 has no per-cgroup swappiness and no
 * OOM killer switch; I/O weights need a scheduler that has them (BFQ, or
 * v2's io cost model). */
enum {
	RT_LACKS_SWAPPINESS = 1 << 0,
	RT_LACKS_OOM_CONTROL = 1 << 1,
	RT_LACKS_BLKIO_WEIGHT = 1 << 2,
};
unsigned rt_cgroup_lacks(void);
/* Rootless, where rt_cgroup_systemd(): moves this process into a scope of
 * the user's manager, so that what it makes and moves stays in the
 * subtree the user owns.  Nothing otherwise. */
int rt_cgroup_systemd_enter(struct orch_err *e);
/* Whether no other command of the user runs now (nor starts before this
 * one exits): then it may stop the holder. */
bool rt_rootless_last(void);
/* Stops the holder (after the user's last project is gone). */
int rt_rootless_leave(struct orch_err *e);
/* userns_mode: keep-id, inside the user's namespace: the maps (container
 * to ours) of a container where the user's own uid and gid are
 * themselves, and its other ids take the rest of the range in order
 * around them, as podman's keep-id does. */
int rt_keepid_ids(struct rt_ids *ids, struct orch_err *e);

/* user's (by name or uid) range in an /etc/subuid-style file; -ENOENT
 * when it gives none, -EINVAL when it is malformed or under
 * RT_IDRANGE_SIZE ids. */
int rt_subid_range(const char *path, const char *user, uid_t uid,
		   uint32_t *start, uint32_t *count, struct orch_err *e);
/* owner's range (a project's name, or the builder's ".build"): the one
 * it holds, else its last one when free, else a free one; recorded
 * before it returns. */
int rt_idrange_acquire(const char *owner, uint32_t *base, struct orch_err *e);
/* Gives owner's range back (it is remembered for owner). */
int rt_idrange_release(const char *owner, struct orch_err *e);
/* The range owner holds, or -ENOENT. */
int rt_idrange_held(const char *owner, uint32_t *base);
/* Mounts at target an overlay of lowers (uppermost first; upper and work
 * NULL: read-only) as a container remapped to the range at base sees its
 * image: each lower through the range's map (idmapped), the upper
 * holding the range's ids. */
int rt_overlay_mount(const char *target, char *const *lowers,
		     const char *upper, const char *work, uint32_t base,
		     struct orch_err *e);

/* ======================================================================
 * Running an image (image_apply.c)
 * ====================================================================== */

/* Makes spec run img: the image's layers become spec->lowers (unless a
 * root is already set), and its entrypoint + cmd, env, working dir and
 * user apply where the spec does not set them: spec->argv (if any)
 * replaces Cmd, spec->env entries override the image's, keep_user says the
 * caller chose spec->uid/gid.  A user name is resolved in the image's
 * /etc/passwd.  spec->image = img->id; spec->workdir may point into img,
 * which must outlive the spec. */
int rt_image_apply(const struct rt_image *img, struct rt_spec *spec,
		   bool keep_user, struct orch_err *e);

#endif
