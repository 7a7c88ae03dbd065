/* A container in a user namespace gets its mounts from the parent: the
 * overlay root over idmapped layers, its binds, a tmpfs with its device
 * nodes, and the sysfs of the network namespace it joins are made here,
 * in the initial user namespace, as detached mounts the child receives
 * with its word to go on and attaches.  The child could not make them
 * itself: idmapping a mount, reading an image's trusted.overlay.* xattrs,
 * mknod and mounting the sysfs of a network namespace it does not own all
 * need the initial namespace's capabilities, and the store's directories
 * are not even reachable to a remapped root. */
#include "runtime/container_impl.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

bool idmap_single(const struct rt_spec *s, uint32_t *base, uint32_t *count)
{
	if (s->n_uid_map != 1 || s->n_gid_map != 1 ||
	    s->uid_map[0].inside != 0 || s->gid_map[0].inside != 0 ||
	    s->uid_map[0].outside != s->gid_map[0].outside ||
	    s->uid_map[0].count != s->gid_map[0].count)
		return false;
	*base = s->uid_map[0].outside;
	*count = s->uid_map[0].count;
	return true;
}

size_t idmap_bind_map(uint32_t base, uint32_t count, struct rt_idmap out[2])
{
	/* Host id k shows as k (k >= 1), the container's root is the
	 * range's first id on both sides, and the host's root is unmapped:
	 * root-owned host files are nobody's to the container. */
	size_t n = 0;
	if (count > 1)
		out[n++] = (struct rt_idmap){1, base + 1, count - 1};
	out[n++] = (struct rt_idmap){base, base, 1};
	return n;
}

/* Fds a process keeps, by key (user namespaces, idmapped layers). */
static void kept_fd_close(union kept v)
{
	close((int)v.num);
}

/* A user namespace with this map for uids and gids (the binds' map, which
 * is not the container's), held by an fd: made by a child that waits in
 * it while the maps are written, then exits.  Cached for the life of the
 * process (a supervisor makes many containers of one project). */
static int userns_fd(const struct rt_idmap *m, size_t n, struct orch_err *e)
{
	static struct keep kept = {.drop = kept_fd_close};
	_cleanup_free_ char *text = ns_map_text(m, n);
	union kept v;
	if (keep_get(&kept, text, &v))
		return (int)v.num;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_sys(e, errno, "creating a pipe");
	int pidfd = -1;
	struct clone_args ca = {
		.flags = CLONE_NEWUSER | CLONE_PIDFD,
		.pidfd = (uint64_t)(uintptr_t)&pidfd,
		.exit_signal = SIGCHLD,
	};
	pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid < 0) {
		int saved = errno;
		close(p[0]);
		close(p[1]);
		return err_sys(e, saved, "creating a user namespace");
	}
	if (pid == 0) {
		char c;
		close(p[1]);
		(void)!read(p[0], &c, 1);
		_exit(0);
	}
	close(p[0]);
	int r = ns_write_idmaps(pid, m, n, m, n, e);
	int fd = -1;
	if (r == 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			r = err_sys(e, errno, "opening %s", path);
	}
	close(p[1]);
	siginfo_t si;
	RETRY_EINTR(waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED));
	close(pidfd);
	if (r < 0)
		return r;
	keep_put(&kept, text, (union kept){.num = fd});
	return fd;
}

/* A detached copy of the mount tree at path (recursive when rec),
 * idmapped through userns when it is >= 0, read-only when ro. */
static int clone_tree(const char *path, bool rec, int userns, bool ro,
		      struct orch_err *e)
{
	unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
			 (rec ? AT_RECURSIVE : 0);
	int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path, flags);
	if (fd < 0)
		return err_sys(e, errno, "cloning the mount of %s", path);
	struct mount_attr a = {0};
	if (userns >= 0) {
		a.attr_set |= MOUNT_ATTR_IDMAP;
		a.userns_fd = (uint64_t)userns;
	}
	if (ro)
		a.attr_set |= MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
			      MOUNT_ATTR_NODEV;
	if (a.attr_set &&
	    syscall(SYS_mount_setattr, fd, "",
		    AT_EMPTY_PATH | (rec ? AT_RECURSIVE : 0), &a, sizeof(a)) < 0) {
		int saved = errno;
		close(fd);
		if (userns >= 0 && (saved == EINVAL || saved == EPERM))
			return err_set(e, saved,
				       "%s: its file system cannot be idmapped "
				       "(kernel 5.12+, and a file system that "
				       "supports it); run the service with "
				       "userns_mode: host",
				       path);
		return err_sys(e, saved, "setting the attributes of %s", path);
	}
	return fd;
}

/* fs's option key=value, or (key NULL) the file system made; an error
 * says what the file system logged about it. */
static int fs_config(int fs, const char *type, const char *key,
		     const char *value, struct orch_err *e)
{
	unsigned cmd = !key ? FSCONFIG_CMD_CREATE
		       : value ? FSCONFIG_SET_STRING
			       : FSCONFIG_SET_FLAG;
	if (syscall(SYS_fsconfig, fs, cmd, key, value, 0) == 0)
		return 0;
	int err = errno;
	char log[256] = "";
	ssize_t n = read(fs, log, sizeof(log) - 1);
	log[n > 0 ? n : 0] = '\0';
	log[strcspn(log, "\n")] = '\0';
	/* "e overlay: ...": the message after the severity */
	const char *why = n > 2 ? log + 2 : "";
	return key ? err_set(e, err, "%s option %s%s%s: %s%s%s", type, key,
			     value ? "=" : "", value ? value : "",
			     *why ? why : "", *why ? ": " : "", strerror(err))
		   : err_set(e, err, "making a %s file system: %s%s%s", type,
			     *why ? why : "", *why ? ": " : "", strerror(err));
}

/* fsmount of a configured fs context, closing it. */
static int fs_mount(int fs, unsigned attrs, const char *what,
		    struct orch_err *e)
{
	int r = fs_config(fs, what, NULL, NULL, e);
	int fd = -1;
	if (r == 0) {
		fd = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs);
		if (fd < 0)
			r = err_sys(e, errno, "mounting %s", what);
	}
	close(fs);
	return r < 0 ? r : fd;
}

static int fs_open(const char *type, struct orch_err *e)
{
	int fs = (int)syscall(SYS_fsopen, type, FSOPEN_CLOEXEC);
	return fs < 0 ? err_sys(e, errno, "opening a %s file system", type)
		      : fs;
}

/* Every layer idmapped through the container's map, detached: fds[i]. */
static int clone_layers(char *const *lowers, int userns, int *fds,
			struct orch_err *e)
{
	for (size_t i = 0; lowers[i]; i++)
		fds[i] = -1;
	for (size_t i = 0; lowers[i]; i++) {
		fds[i] = clone_tree(lowers[i], false, userns, false, e);
		if (fds[i] < 0)
			return fds[i];
	}
	return 0;
}

/* The layer at path idmapped through the map {0, base, count} (which
 * userns holds), detached, borrowed: kept for the life of the process,
 * so that each container of a project (one id range) uses the same one.
 * Closing such a copy dissolves it, which waits for an RCU grace period
 * (0.1 to 4 ms here, the longer when the other CPU is busy): once per
 * layer per process, not per container.  An overlay keeps its own
 * reference to its layers once given them (fsconfig), so an older copy
 * may go then.  A copy whose path has become another directory since (a
 * layer pulled again, a build context replaced) is made again. */
static int layer_idmapped(const char *path, int userns, uint32_t base,
			  uint32_t count, struct orch_err *e)
{
	static struct keep kept = {.drop = kept_fd_close};
	_cleanup_free_ char *key = xasprintf("%u:%u:%s", base, count, path);
	union kept v;
	struct stat now, was;
	if (keep_get(&kept, key, &v) && stat(path, &now) == 0 &&
	    fstat((int)v.num, &was) == 0 && now.st_dev == was.st_dev &&
	    now.st_ino == was.st_ino)
		return (int)v.num;
	int fd = clone_tree(path, false, userns, false, e);
	if (fd < 0)
		return fd;
	keep_put(&kept, key, (union kept){.num = fd});
	return fd;
}

/* An overlay (read-only without up) with every layer idmapped through
 * the container's map, so the store keeps the image's own owners and the
 * container sees them.  The upper directory is not: overlayfs writes it
 * with the mounter's credentials (ours, the host's root), which an
 * idmapped mount of the range could not store.  It holds the range's ids,
 * its root owned by the container's root.  Made with the mount API: the
 * layers detached, one "lowerdir+" each (an option's value is at most
 * 255 bytes); -EINVAL where the kernel cannot (older ones). */
static int overlay_make(char *const *lowers, const char *up, const char *work,
			bool vol, int userns, uint32_t base, uint32_t count,
			struct orch_err *e)
{
	int ufd = -1, wfd = -1, fs = -1, r = 0;
	if (up) {
		ufd = open(up, O_PATH | O_DIRECTORY | O_CLOEXEC);
		wfd = open(work, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (ufd < 0 || wfd < 0)
			r = err_sys(e, errno, "opening %s", ufd < 0 ? up : work);
	}
	if (r == 0) {
		fs = fs_open("overlay", e);
		r = fs < 0 ? fs : 0;
	}
	char p[32];
	for (size_t i = 0; lowers[i] && r == 0; i++) {
		int fd = layer_idmapped(lowers[i], userns, base, count, e);
		if (fd < 0) {
			r = fd;
			break;
		}
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		r = fs_config(fs, "overlay", "lowerdir+", p, e);
	}
	if (r == 0 && up) {
		snprintf(p, sizeof(p), "/proc/self/fd/%d", ufd);
		r = fs_config(fs, "overlay", "upperdir", p, e);
	}
	if (r == 0 && up) {
		snprintf(p, sizeof(p), "/proc/self/fd/%d", wfd);
		r = fs_config(fs, "overlay", "workdir", p, e);
	}
	if (r == 0 && up && vol)
		r = fs_config(fs, "overlay", "volatile", NULL, e);
	int root = -1;
	if (r == 0) {
		root = fs_mount(fs, up ? 0 : MOUNT_ATTR_RDONLY, "overlay", e);
		fs = -1;
		r = root < 0 ? root : 0;
	}
	if (fs >= 0)
		close(fs);
	if (ufd >= 0)
		close(ufd);
	if (wfd >= 0)
		close(wfd);
	return r < 0 ? r : root;
}

/* Older kernels take overlay layers only from the caller's mount
 * namespace, and no "lowerdir+": a helper process, in a mount namespace
 * of its own (nothing of it reaches the host), attaches the layers on a
 * tmpfs it mounts over scratch (any directory), mounts the overlay there
 * with mount(2) and hands back a detached copy of it. */
static int overlay_in_helper(char *const *lowers, const char *up,
			     const char *work, bool vol, int userns,
			     const char *scratch, struct orch_err *e)
{
	size_t n = strv_len(lowers);
	struct strbuf o;
	sb_init(&o);
	sb_adds(&o, "lowerdir=");
	for (size_t i = 0; i < n; i++)
		sb_printf(&o, "%s%zu", i ? ":" : "", i);
	if (up)
		sb_printf(&o, ",upperdir=%s,workdir=%s%s", up, work,
			  vol ? ",volatile" : "");
	if (o.len >= 4096) {
		sb_free(&o);
		return err_set(e, E2BIG, "mounting an overlay: %zu layers make the options too long", n);
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		sb_free(&o);
		return err_sys(e, errno, "creating a socket pair");
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		struct orch_err ce = {0};
		int *fds = xcalloc(n + 1, sizeof(int));
		int fd = -1;
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", scratch, "tmpfs", 0, "mode=0700") < 0 ||
		    chdir(scratch) < 0 || mkdir("root", 0700) < 0)
			err_sys(&ce, errno, "a mount namespace for the layers");
		else if (clone_layers(lowers, userns, fds, &ce) == 0) {
			for (size_t i = 0; i < n && !ce.code; i++) {
				char at[32];
				snprintf(at, sizeof(at), "%zu", i);
				if (mkdir(at, 0700) < 0 ||
				    syscall(SYS_move_mount, fds[i], "", AT_FDCWD,
					    at, MOVE_MOUNT_F_EMPTY_PATH) < 0)
					err_sys(&ce, errno, "attaching layer %s",
						lowers[i]);
			}
			if (!ce.code &&
			    mount("overlay", "root", "overlay", up ? 0 : MS_RDONLY,
				  o.buf) < 0)
				err_sys(&ce, errno, "mounting the overlay");
			if (!ce.code) {
				fd = (int)syscall(SYS_open_tree, AT_FDCWD, "root",
						  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
				if (fd < 0)
					err_sys(&ce, errno, "cloning the overlay");
			}
		}
		if (fd < 0)
			sync_send_err(sv[1], &ce);
		_exit(sync_send_fds(sv[1], SYNC_GO, &fd, 1) < 0);
	}
	sb_free(&o);
	close(sv[1]);
	int r = 0, fd = -1;
	if (pid < 0)
		r = err_sys(e, errno, "forking");
	struct sync_packet pk = {0};
	int got = r < 0 ? 0 : sync_recv_fds(sv[0], &pk, &fd, 1);
	if (r == 0 && (got <= 0 || pk.type != SYNC_GO))
		r = pk.type == SYNC_ERROR
			    ? err_set(e, pk.code, "%s", pk.msg)
			    : err_set(e, EIO, "making the overlay: the helper died");
	close(sv[0]);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	return r < 0 ? r : fd;
}

static int overlay_fd(char *const *lowers, const char *up, const char *work,
		      bool vol, uint32_t base, uint32_t count, int userns,
		      const char *scratch, struct orch_err *e)
{
	/* Learnt once: this kernel wants the older way. */
	static bool older;
	if (up && chown(up, base, base) < 0)
		return err_sys(e, errno, "giving %s to the container's root", up);
	if (!older) {
		struct orch_err de = {0};
		int fd = overlay_make(lowers, up, work, vol, userns, base,
				      count, &de);
		if (fd >= 0 || de.code != EINVAL) {
			if (fd < 0)
				*e = de;
			return fd;
		}
		older = true;
	}
	return overlay_in_helper(lowers, up, work, vol, userns, scratch, e);
}

static int overlay_root(const struct rt_spec *s, const char *upper_dir,
			const char *scratch, uint32_t base, uint32_t count,
			int userns, struct orch_err *e)
{
	_cleanup_free_ char *up = path_join(upper_dir, "upper");
	_cleanup_free_ char *work = path_join(upper_dir, "work");
	return overlay_fd(s->lowers, up, work, s->volatile_upper, base, count,
			  userns, scratch, e);
}

int rt_overlay_mount(const char *target, char *const *lowers,
		     const char *upper, const char *work, uint32_t base,
		     struct orch_err *e)
{
	struct rt_idmap m = {0, base, RT_IDRANGE_SIZE};
	int ns = userns_fd(&m, 1, e);
	if (ns < 0)
		return ns;
	int fd = overlay_fd(lowers, upper, work, false, base, m.count, ns,
			    target, e);
	if (fd < 0)
		return err_wrap(e, "mounting an overlay at %s", target);
	int r = 0;
	if (syscall(SYS_move_mount, fd, "", AT_FDCWD, target,
		    MOVE_MOUNT_F_EMPTY_PATH) < 0)
		r = err_sys(e, errno, "mounting an overlay at %s", target);
	close(fd);
	return r;
}

void ns_mounts_init(struct ns_mounts *m)
{
	*m = (struct ns_mounts){.root = -1, .sys = -1, .nodes = -1};
}

void ns_mounts_clear(struct ns_mounts *m)
{
	if (m->root >= 0)
		close(m->root);
	if (m->sys >= 0)
		close(m->sys);
	for (size_t i = 0; i < m->n_binds; i++)
		if (m->binds[i] >= 0)
			close(m->binds[i]);
	free(m->binds);
	if (m->nodes >= 0)
		close(m->nodes);
	ns_mounts_init(m);
}

/* The spec's device nodes, made in a tmpfs of ours (not the container's,
 * where a device cannot be opened) as "0", "1"..., with the host node's
 * mode and its owner as the container sees it (the host's root is the
 * container's). */
static int device_nodes(const struct dev_node *nodes, size_t n, uint32_t base,
			uint32_t count, struct ns_mounts *m, struct orch_err *e)
{
	if (!n)
		return 0;
	int fs = fs_open("tmpfs", e);
	if (fs < 0)
		return fs;
	/* Searchable by the container's root, which it does not map. */
	int r = fs_config(fs, "tmpfs", "mode", "0711", e);
	if (r < 0) {
		close(fs);
		return r;
	}
	int tmp = fs_mount(fs, MOUNT_ATTR_NOEXEC, "tmpfs", e);
	if (tmp < 0)
		return tmp;
	for (size_t i = 0; i < n; i++) {
		const struct dev_node *d = &nodes[i];
		char name[32];
		snprintf(name, sizeof(name), "%zu", i);
		uid_t u = d->uid < count ? base + d->uid : base;
		gid_t g = d->gid < count ? base + d->gid : base;
		if (mknodat(tmp, name, (d->type == 'b' ? S_IFBLK : S_IFCHR) | d->mode,
			    makedev(d->major, d->minor)) < 0 ||
		    fchownat(tmp, name, u, g, AT_SYMLINK_NOFOLLOW) < 0 ||
		    fchmodat(tmp, name, d->mode, 0) < 0) { /* past the umask */
			int saved = errno;
			close(tmp);
			return err_sys(e, saved, "making device %s", d->dev.path);
		}
	}
	m->nodes = tmp;
	return 0;
}

int ns_mounts_prepare(const struct rt_spec *s, const char *upper_dir,
		      const char *scratch, const struct dev_node *nodes,
		      size_t n_nodes, int ns, struct ns_mounts *m,
		      struct orch_err *e)
{
	ns_mounts_init(m);
	uint32_t base, count;
	if (!idmap_single(s, &base, &count))
		return err_set(e, EINVAL,
			       "a user namespace needs one range of ids from "
			       "0, the same for uids and gids");
	if (base < count)
		return err_set(e, EINVAL,
			       "the id range %u-%u overlaps the ids it maps",
			       base, base + count - 1);
	int r = 0;
	if (s->rootfs)
		m->root = clone_tree(s->rootfs, true, ns, false, e);
	else
		m->root = overlay_root(s, upper_dir, scratch, base, count, ns, e);
	if (m->root < 0) {
		r = m->root;
		m->root = -1;
		goto fail;
	}
	m->binds = xcalloc(s->n_mounts + 1, sizeof(int));
	m->n_binds = s->n_mounts;
	for (size_t i = 0; i < s->n_mounts; i++)
		m->binds[i] = -1;
	int bind_ns = -1;
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct rt_mount *mt = &s->mounts[i];
		if (mt->type == RT_MOUNT_TMPFS)
			continue;
		if (!mt->source) {
			r = err_set(e, EINVAL, "bind mount of %s has no source",
				    mt->target ? mt->target : "(none)");
			goto fail;
		}
		if (mt->idmap == RT_IDMAP_HOST && bind_ns < 0) {
			struct rt_idmap bm[2];
			size_t nb = idmap_bind_map(base, count, bm);
			bind_ns = userns_fd(bm, nb, e);
			if (bind_ns < 0) {
				r = bind_ns;
				goto fail;
			}
		}
		int via = mt->idmap == RT_IDMAP_HOST	? bind_ns
			  : mt->idmap == RT_IDMAP_IMAGE ? ns
							: -1;
		m->binds[i] = clone_tree(mt->source, true, via, mt->readonly, e);
		if (m->binds[i] < 0) {
			r = m->binds[i];
			m->binds[i] = -1;
			goto fail;
		}
	}
	r = device_nodes(nodes, n_nodes, base, count, m, e);
	if (r < 0)
		goto fail;
	return 0;
fail:
	ns_mounts_clear(m);
	return r;
}

int ns_mounts_sysfs(const struct rt_spec *s, struct ns_mounts *m,
		    struct orch_err *e)
{
	int fs = fs_open("sysfs", e);
	if (fs < 0)
		return fs;
	int fd = fs_mount(fs,
			  (s->privileged ? 0 : MOUNT_ATTR_RDONLY) |
				  MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
				  MOUNT_ATTR_NOEXEC,
			  "sysfs", e);
	if (fd < 0)
		return fd;
	m->sys = fd;
	return 0;
}

size_t ns_mounts_nfds(const struct rt_spec *s, size_t n_nodes)
{
	size_t n = 1 + (n_nodes > 0);
	for (size_t i = 0; i < s->n_mounts; i++)
		n += s->mounts[i].type != RT_MOUNT_TMPFS;
	return n;
}

size_t ns_mounts_fds(const struct ns_mounts *m, int *fds)
{
	size_t n = 0;
	fds[n++] = m->root;
	for (size_t i = 0; i < m->n_binds; i++)
		if (m->binds[i] >= 0)
			fds[n++] = m->binds[i];
	if (m->nodes >= 0)
		fds[n++] = m->nodes;
	return n;
}

void ns_mounts_take(const struct rt_spec *s, size_t n_nodes, const int *fds,
		    struct ns_mounts *m)
{
	size_t n = 0;
	m->root = fds[n++];
	for (size_t i = 0; i < m->n_binds; i++)
		m->binds[i] = s->mounts[i].type != RT_MOUNT_TMPFS ? fds[n++] : -1;
	if (n_nodes)
		m->nodes = fds[n++];
}

int ns_attach(int mount_fd, int target_fd, const char *what,
	      struct orch_err *e)
{
	if (syscall(SYS_move_mount, mount_fd, "", target_fd,
		    target_fd == AT_FDCWD ? "/" : "",
		    MOVE_MOUNT_F_EMPTY_PATH |
			    (target_fd == AT_FDCWD ? 0 : MOVE_MOUNT_T_EMPTY_PATH)) < 0)
		return err_sys(e, errno, "attaching %s", what);
	return 0;
}
