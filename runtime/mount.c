/* The container's filesystem, built in the child inside its own mount
 * namespace (so nothing is left on the host when it dies): overlay or bind
 * root, the spec's mounts, /proc with Docker's masked and read-only paths,
 * read-only /sys, a tmpfs /dev, then pivot_root.  Every target inside the
 * root is resolved without leaving it. */
#include "runtime/container_impl.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

static const char *const masked_proc[] = {
	"asound",      "acpi",	     "interrupts", "kcore",
	"keys",	       "latency_stats", "timer_list", "timer_stats",
	"sched_debug", "scsi",
};
static const char *const masked_sys[] = {"firmware",
					 "devices/virtual/powercap"};
static const char *const readonly_proc[] = {"bus", "fs", "irq", "sys",
					    "sysrq-trigger"};

static int openat2_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

/* Walks path under root component by component, following symlinks as if
 * root were "/", creating what is missing.  Used only when the fast
 * openat2 lookup found nothing. */
static int walk_create(int rootfd, const char *path, bool file,
		       struct orch_err *e)
{
	char *todo = xstrdup(path); /* remaining components, '/'-separated */
	int cur = dup(rootfd);
	int links = 0;
	int r = 0;
	/* A stack of directory fds so ".." never climbs above root. */
	int stack[256];
	size_t depth = 0;
	char *rest = todo;
	if (cur < 0) {
		r = err_sys(e, errno, "resolving %s", path);
		goto out;
	}
	fcntl(cur, F_SETFD, FD_CLOEXEC);
	for (;;) {
		while (*rest == '/')
			rest++;
		if (!*rest)
			break;
		char *slash = strchr(rest, '/');
		size_t len = slash ? (size_t)(slash - rest) : strlen(rest);
		char comp[256];
		if (len >= sizeof(comp)) {
			r = err_set(e, ENAMETOOLONG, "resolving %s", path);
			goto out;
		}
		memcpy(comp, rest, len);
		comp[len] = '\0';
		rest += len;
		bool last = true;
		for (const char *p = rest; *p; p++)
			if (*p != '/') {
				last = false;
				break;
			}
		if (streq(comp, ".")) {
			continue;
		}
		if (streq(comp, "..")) {
			if (depth > 0) {
				close(cur);
				cur = stack[--depth];
			}
			continue;
		}
		struct stat st;
		if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT) {
				r = err_sys(e, errno, "resolving %s", path);
				goto out;
			}
			int c;
			if (last && file) {
				c = openat(cur, comp,
					   O_CREAT | O_EXCL | O_WRONLY |
						   O_NOFOLLOW | O_CLOEXEC,
					   0644);
				if (c >= 0)
					close(c);
			} else {
				c = mkdirat(cur, comp, 0755);
			}
			if (c < 0 && errno != EEXIST) {
				r = err_sys(e, errno, "creating %s in the container",
					    path);
				goto out;
			}
			if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				r = err_sys(e, errno, "resolving %s", path);
				goto out;
			}
		}
		if (S_ISLNK(st.st_mode)) {
			if (++links > 40) {
				r = err_set(e, ELOOP, "resolving %s", path);
				goto out;
			}
			char target[4096];
			ssize_t n = readlinkat(cur, comp, target,
					       sizeof(target) - 1);
			if (n < 0) {
				r = err_sys(e, errno, "resolving %s", path);
				goto out;
			}
			target[n] = '\0';
			if (target[0] == '/') {
				while (depth > 0) {
					close(cur);
					cur = stack[--depth];
				}
			}
			char *next = xasprintf("%s/%s", target, rest);
			free(todo);
			todo = rest = next;
			continue;
		}
		if (last)
			break;
		if (!S_ISDIR(st.st_mode)) {
			r = err_set(e, ENOTDIR, "resolving %s in the container: %s is not a directory", path, comp);
			goto out;
		}
		int next = openat(cur, comp,
				  O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			r = err_sys(e, errno, "resolving %s", path);
			goto out;
		}
		if (depth == ARRAY_SIZE(stack)) {
			close(next);
			r = err_set(e, ELOOP, "resolving %s: too deep", path);
			goto out;
		}
		stack[depth++] = cur;
		cur = next;
	}
out:
	while (depth > 0)
		close(stack[--depth]);
	if (cur >= 0)
		close(cur);
	free(todo);
	return r;
}

int mnt_open_in_root(int rootfd, const char *path, bool create, bool file,
		     struct orch_err *e)
{
	int fd = openat2_in_root(rootfd, path, O_PATH);
	if (fd >= 0 || fd != -ENOENT || !create) {
		if (fd < 0)
			return err_sys(e, -fd, "opening %s in the container",
				       path);
		return fd;
	}
	int r = walk_create(rootfd, path, file, e);
	if (r < 0)
		return r;
	fd = openat2_in_root(rootfd, path, O_PATH);
	if (fd < 0)
		return err_sys(e, -fd, "opening %s in the container", path);
	return fd;
}

static int mount_fd(const char *src, int fd, const char *type,
		    unsigned long flags, const char *data)
{
	char p[32];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	return mount(src, p, type, flags, data) < 0 ? -errno : 0;
}

/* Mounts onto target (resolved in root, created when missing) and, for a
 * read-only bind, remounts the new mount read-only. */
static int mount_in_root(int rootfd, const char *target, bool file,
			 const char *src, const char *type,
			 unsigned long flags, const char *data,
			 struct orch_err *e)
{
	int fd = mnt_open_in_root(rootfd, target, true, file, e);
	if (fd < 0)
		return fd;
	int r = mount_fd(src, fd, type, flags & ~MS_RDONLY, data);
	close(fd);
	if (r < 0)
		return err_sys(e, -r, "mounting %s on %s", src ? src : type,
			       target);
	if ((flags & MS_BIND) && (flags & MS_RDONLY)) {
		/* The fd still names the covered directory: reopen. */
		fd = mnt_open_in_root(rootfd, target, false, false, e);
		if (fd < 0)
			return fd;
		r = mount_fd(NULL, fd, NULL,
			     MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID |
				     MS_NODEV,
			     NULL);
		if (r == -EPERM) /* locked flags: keep them, add ro */
			r = mount_fd(NULL, fd, NULL,
				     MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
		close(fd);
		if (r < 0)
			return err_sys(e, -r, "making %s read-only", target);
	}
	return 0;
}

static int setup_user_mounts(int rootfd, const struct rt_spec *s,
			     const struct ns_mounts *nm, struct orch_err *e)
{
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct rt_mount *m = &s->mounts[i];
		if (!m->target || m->target[0] != '/')
			return err_set(e, EINVAL,
				       "mount target %s is not absolute",
				       m->target ? m->target : "(none)");
		int r;
		if (m->type == RT_MOUNT_TMPFS) {
			char opts[64];
			int n = snprintf(opts, sizeof(opts), "mode=%o",
					 m->mode ? m->mode : 01777);
			if (m->size > 0)
				snprintf(opts + n, sizeof(opts) - (size_t)n,
					 ",size=%lld", (long long)m->size);
			r = mount_in_root(rootfd, m->target, false, "tmpfs",
					  "tmpfs",
					  MS_NOSUID | MS_NODEV |
						  (m->readonly ? MS_RDONLY : 0),
					  opts, e);
		} else if (nm && i < nm->n_binds && nm->binds[i] >= 0) {
			/* Made by the parent, read-only already. */
			struct stat st;
			if (fstat(nm->binds[i], &st) < 0)
				return err_sys(e, errno, "bind mount source %s",
					       m->source);
			int fd = mnt_open_in_root(rootfd, m->target, true,
						  !S_ISDIR(st.st_mode), e);
			if (fd < 0)
				return fd;
			r = ns_attach(nm->binds[i], fd, m->target, e);
			close(fd);
		} else {
			struct stat st;
			if (!m->source || stat(m->source, &st) < 0)
				return err_sys(e, m->source ? errno : EINVAL,
					       "bind mount source %s",
					       m->source ? m->source : "(none)");
			r = mount_in_root(rootfd, m->target, !S_ISDIR(st.st_mode),
					  m->source, NULL,
					  MS_BIND | MS_REC |
						  (m->readonly ? MS_RDONLY : 0),
					  NULL, e);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int mnt_write_sysctls(int procfd, char **sysctls, enum sysctl_set which,
		      struct orch_err *e)
{
	for (size_t i = 0; sysctls && sysctls[i]; i++) {
		bool net = startswith(sysctls[i], "net.");
		if ((which == SYSCTL_NET && !net) ||
		    (which == SYSCTL_NOT_NET && net))
			continue;
		const char *eq = strchr(sysctls[i], '=');
		if (!eq || eq == sysctls[i])
			return err_set(e, EINVAL, "bad sysctl %s", sysctls[i]);
		_cleanup_free_ char *key = xstrndup(sysctls[i],
						    (size_t)(eq - sysctls[i]));
		if (strstr(key, ".."))
			return err_set(e, EINVAL, "bad sysctl %s", sysctls[i]);
		for (char *p = key; *p; p++)
			if (*p == '.')
				*p = '/';
		_cleanup_free_ char *path = path_join("sys", key);
		int fd = openat(procfd, path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return err_sys(e, errno, "setting sysctl %s", sysctls[i]);
		ssize_t n = RETRY_EINTR(write(fd, eq + 1, strlen(eq + 1)));
		int saved = errno;
		close(fd);
		if (n < 0)
			return err_sys(e, saved, "setting sysctl %s", sysctls[i]);
	}
	return 0;
}

/* Masks entries of a kernel filesystem (proc, sys) mounted at dirfd: files
 * get /dev/null, directories an empty read-only tmpfs.  Missing is fine. */
static int mask_paths(int dirfd, const char *const *names, size_t n,
		      const char *where, struct orch_err *e)
{
	for (size_t i = 0; i < n; i++) {
		int fd = openat(dirfd, names[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return err_sys(e, errno, "masking %s/%s", where, names[i]);
		}
		struct stat st;
		int r = fstat(fd, &st) < 0 ? -errno : 0;
		if (r == 0) {
			if (S_ISDIR(st.st_mode))
				r = mount_fd("tmpfs", fd, "tmpfs",
					     MS_RDONLY | MS_NOSUID | MS_NODEV |
						     MS_NOEXEC,
					     "size=0,mode=555");
			else
				r = mount_fd("/dev/null", fd, NULL, MS_BIND,
					     NULL);
		}
		close(fd);
		if (r < 0)
			return err_sys(e, -r, "masking %s/%s", where, names[i]);
	}
	return 0;
}

static int readonly_paths(int dirfd, const char *const *names, size_t n,
			  struct orch_err *e)
{
	for (size_t i = 0; i < n; i++) {
		int fd = openat(dirfd, names[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return err_sys(e, errno, "opening /proc/%s", names[i]);
		}
		char p[32];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		int r = mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0 ? -errno : 0;
		close(fd);
		if (r == 0) {
			fd = openat(dirfd, names[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				r = -errno;
			else {
				r = mount_fd(NULL, fd, NULL,
					     MS_BIND | MS_REMOUNT | MS_RDONLY |
						     MS_NOSUID | MS_NODEV |
						     MS_NOEXEC,
					     NULL);
				close(fd);
			}
		}
		if (r < 0)
			return err_sys(e, -r, "making /proc/%s read-only",
				       names[i]);
	}
	return 0;
}

static int setup_proc(int rootfd, const struct rt_spec *s,
		      const struct ns_mounts *nm, struct orch_err *e)
{
	int r = mount_in_root(rootfd, "/proc", false, "proc", "proc",
			      MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, e);
	if (r < 0)
		return r;
	_cleanup_close_ int procfd = mnt_open_in_root(rootfd, "/proc", false,
						      false, e);
	if (procfd < 0)
		return procfd;
	/* Opened as a directory so entries below can be looked up. */
	_cleanup_close_ int pdir = openat(procfd, ".",
					  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pdir < 0)
		return err_sys(e, errno, "opening the container's /proc");
	r = mnt_write_sysctls(pdir, s->sysctls,
			      nm && nm->sys >= 0 ? SYSCTL_NOT_NET : SYSCTL_ALL,
			      e);
	if (r < 0)
		return r;
	if (s->privileged)
		return 0;
	r = mask_paths(pdir, masked_proc, ARRAY_SIZE(masked_proc), "/proc", e);
	if (r < 0)
		return r;
	return readonly_paths(pdir, readonly_proc, ARRAY_SIZE(readonly_proc),
			      e);
}

static int setup_sys(int rootfd, const struct rt_spec *s,
		     const struct ns_mounts *nm, struct orch_err *e)
{
	unsigned long ro = s->privileged ? 0 : MS_RDONLY;
	int fd = mnt_open_in_root(rootfd, "/sys", true, false, e);
	if (fd < 0)
		return fd;
	int r;
	if (nm && nm->sys >= 0) {
		r = ns_attach(nm->sys, fd, "/sys", e);
		close(fd);
		if (r < 0)
			return r;
	} else {
		r = mount_fd("sysfs", fd, "sysfs",
			     ro | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
		close(fd);
		if (r == -EPERM) /* sysfs of a netns we do not own */
			r = mount_in_root(rootfd, "/sys", false, "/sys", NULL,
					  MS_BIND | MS_REC | ro, NULL, e);
		else if (r < 0)
			r = err_sys(e, -r, "mounting /sys");
		if (r < 0)
			return r;
	}
	if (s->privileged)
		return 0;
	_cleanup_close_ int sdir = openat2_in_root(rootfd, "/sys",
						   O_RDONLY | O_DIRECTORY);
	if (sdir < 0)
		return err_sys(e, -sdir, "opening the container's /sys");
	return mask_paths(sdir, masked_sys, ARRAY_SIZE(masked_sys), "/sys", e);
}

/* /sys/fs/cgroup as docker gives it: the container's own cgroups, seen
 * through its cgroup namespace (what a JVM, Go or Node.js reads its
 * memory and CPU limits from), or the host's without one (cgroup: host),
 * read-only unless privileged.  On v1 a
 * tmpfs holds one mount per hierarchy of cg_view, named by its
 * controllers ("cpu,cpuacct", with "cpu" and "cpuacct" links to it). */
static int setup_cgroupfs(int rootfd, const struct rt_spec *s,
			  struct orch_err *e)
{
	unsigned long fl = (s->privileged ? 0 : MS_RDONLY) | MS_NOSUID |
			   MS_NODEV | MS_NOEXEC;
	_cleanup_close_ int fd =
	    mnt_open_in_root(rootfd, "/sys/fs/cgroup", true, false, e);
	if (fd < 0)
		return fd;
	bool v2;
	const char *const *hier = cg_view(&v2);
	if (v2) {
		int r = mount_fd("cgroup2", fd, "cgroup2", fl, NULL);
		return r < 0 ? err_sys(e, -r, "mounting /sys/fs/cgroup") : 0;
	}
	if (!hier[0])
		return 0;
	int r = mount_fd("tmpfs", fd, "tmpfs", fl & ~MS_RDONLY,
			 "mode=755,size=64k");
	if (r < 0)
		return err_sys(e, -r, "mounting a tmpfs on /sys/fs/cgroup");
	_cleanup_close_ int dir =
	    openat2_in_root(rootfd, "/sys/fs/cgroup", O_RDONLY | O_DIRECTORY);
	if (dir < 0)
		return err_sys(e, -dir, "opening the container's /sys/fs/cgroup");
	for (size_t i = 0; hier[i]; i++) {
		/* Made only when set: else the namespace's root there is
		 * the host's. */
		if ((streq(hier[i], "cpuset") && !s->limits.cpuset_cpus) ||
		    (streq(hier[i], "blkio") && !s->limits.blkio_weight &&
		     !s->limits.n_blkio))
			continue;
		if (mkdirat(dir, hier[i], 0555) < 0)
			return err_sys(e, errno, "creating /sys/fs/cgroup/%s",
				       hier[i]);
		_cleanup_close_ int h = openat(dir, hier[i],
					       O_PATH | O_DIRECTORY | O_CLOEXEC);
		r = h < 0 ? -errno : mount_fd("cgroup", h, "cgroup", fl, hier[i]);
		if (r < 0)
			return err_sys(e, -r, "mounting /sys/fs/cgroup/%s",
				       hier[i]);
		if (!strchr(hier[i], ','))
			continue;
		_cleanup_free_ char *names = xstrdup(hier[i]);
		char *save = NULL;
		for (char *t = strtok_r(names, ",", &save); t;
		     t = strtok_r(NULL, ",", &save))
			if (symlinkat(hier[i], dir, t) < 0 && errno != EEXIST)
				return err_sys(e, errno,
					       "linking /sys/fs/cgroup/%s", t);
	}
	if (!(fl & MS_RDONLY))
		return 0;
	r = mount_fd(NULL, dir, NULL, MS_REMOUNT | MS_BIND | fl, NULL);
	return r < 0 ? err_sys(e, -r, "making /sys/fs/cgroup read-only") : 0;
}

static int setup_dev(int rootfd, const struct rt_spec *s, int shm_fd,
		     struct orch_err *e)
{
	int r = mount_in_root(rootfd, "/dev", false, "tmpfs", "tmpfs",
			      MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k",
			      e);
	if (r < 0)
		return r;
	_cleanup_close_ int dev = openat2_in_root(rootfd, "/dev",
						  O_RDONLY | O_DIRECTORY);
	if (dev < 0)
		return err_sys(e, -dev, "opening the container's /dev");
	static const struct {
		const char *name;
		unsigned maj, min;
	} nodes[] = {
		{"null", 1, 3},	  {"zero", 1, 5},    {"full", 1, 7},
		{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
	};
	bool userns = (s->namespaces & RT_NS_USER) || rootless();
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
		if (!userns) {
			if (mknodat(dev, nodes[i].name, S_IFCHR | 0666,
				    makedev(nodes[i].maj, nodes[i].min)) < 0)
				return err_sys(e, errno, "creating /dev/%s",
					       nodes[i].name);
			continue;
		}
		/* A user namespace may not mknod: bind the host's nodes. */
		int fd = openat(dev, nodes[i].name,
				O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
		if (fd < 0)
			return err_sys(e, errno, "creating /dev/%s", nodes[i].name);
		close(fd);
		fd = openat(dev, nodes[i].name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return err_sys(e, errno, "opening /dev/%s", nodes[i].name);
		char src[32];
		snprintf(src, sizeof(src), "/dev/%s", nodes[i].name);
		r = mount_fd(src, fd, NULL, MS_BIND, NULL);
		close(fd);
		if (r < 0)
			return err_sys(e, -r, "binding /dev/%s", nodes[i].name);
	}
	static const struct {
		const char *target, *name;
	} links[] = {
		{"/proc/self/fd", "fd"},      {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
		{"pts/ptmx", "ptmx"},	      {"/proc/kcore", "core"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (symlinkat(links[i].target, dev, links[i].name) < 0)
			return err_sys(e, errno, "creating /dev/%s", links[i].name);
	static const char *const dirs[] = {"pts", "shm", "mqueue"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if (mkdirat(dev, dirs[i], 0755) < 0)
			return err_sys(e, errno, "creating /dev/%s", dirs[i]);
	r = mount_in_root(rootfd, "/dev/pts", false, "devpts", "devpts",
			  MS_NOSUID | MS_NOEXEC,
			  userns ? "newinstance,ptmxmode=0666,mode=0620"
				 : "newinstance,ptmxmode=0666,mode=0620,gid=5",
			  e);
	if (r < 0)
		return r;
	/* Sharing another container's IPC namespace: its /dev/shm too. */
	if (shm_fd >= 0) {
		_cleanup_close_ int t =
		    mnt_open_in_root(rootfd, "/dev/shm", true, false, e);
		return t < 0 ? t : ns_attach(shm_fd, t, "the shared /dev/shm", e);
	}
	/* Sharing our IPC namespace (ipc: host): our /dev/shm too, as
	 * docker binds the host's. */
	if (!(s->namespaces & RT_NS_IPC))
		return mount_in_root(rootfd, "/dev/shm", false, "/dev/shm", NULL,
				     MS_BIND | MS_REC, NULL, e);
	char shm_opts[64];
	snprintf(shm_opts, sizeof(shm_opts), "mode=1777,size=%lldk",
		 s->shm_size > 0 ? (long long)(s->shm_size + 1023) / 1024
				 : 65536LL);
	r = mount_in_root(rootfd, "/dev/shm", false, "shm", "tmpfs",
			  MS_NOSUID | MS_NODEV | MS_NOEXEC, shm_opts, e);
	if (r < 0)
		return r;
	return mount_in_root(rootfd, "/dev/mqueue", false, "mqueue", "mqueue",
			     MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, e);
}

/* One node of the spec's devices at its path in the container, as the
 * host has it (type, numbers, mode, owner); in a user namespace, which
 * may not mknod, the node the parent made for it (made, a path) bound
 * there. */
static int make_device(int rootfd, const struct dev_node *d, const char *made,
		       struct orch_err *e)
{
	const char *path = d->dev.path;
	const char *slash = strrchr(path, '/');
	const char *name = slash + 1;
	if (!*name || streq(name, ".") || streq(name, ".."))
		return err_set(e, EINVAL, "device path %s names no file", path);
	_cleanup_free_ char *dir = xstrndup(path, (size_t)(slash - path));
	_cleanup_close_ int dfd = openat2_in_root(rootfd, *dir ? dir : "/",
						  O_RDONLY | O_DIRECTORY);
	if (dfd == -ENOENT) {
		int fd = mnt_open_in_root(rootfd, dir, true, false, e);
		if (fd < 0)
			return fd;
		close(fd);
		dfd = openat2_in_root(rootfd, dir, O_RDONLY | O_DIRECTORY);
	}
	if (dfd < 0)
		return err_sys(e, -dfd, "opening the directory of %s", path);
	/* A node the image or our /dev already has is replaced. */
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return err_sys(e, errno, "replacing %s", path);
	if (!made) {
		mode_t type = d->type == 'b' ? S_IFBLK : S_IFCHR;
		if (mknodat(dfd, name, type | d->mode,
			    makedev(d->major, d->minor)) < 0)
			return err_sys(e, errno, "creating device %s", path);
		if (fchownat(dfd, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
			return err_sys(e, errno, "setting the owner of %s", path);
		return 0;
	}
	int fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC,
			0600);
	if (fd < 0)
		return err_sys(e, errno, "creating %s", path);
	close(fd);
	fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "opening %s", path);
	int r = mount_fd(made, fd, NULL, MS_BIND, NULL);
	close(fd);
	return r < 0 ? err_sys(e, -r, "binding device %s", path) : 0;
}

/* Where the parent's tmpfs of nodes is attached while they are bound:
 * a bind's source must be a mount of our own namespace. */
#define NODES_DIR ".orch-nodes"

static int make_devices(int rootfd, const struct ns_mounts *nm,
			const struct dev_node *nodes, size_t n,
			struct orch_err *e)
{
	if (!n)
		return 0;
	bool staged = nm && nm->nodes >= 0;
	_cleanup_close_ int dev = -1;
	if (staged) {
		dev = openat2_in_root(rootfd, "/dev", O_RDONLY | O_DIRECTORY);
		if (dev < 0)
			return err_sys(e, -dev, "opening the container's /dev");
		if (mkdirat(dev, NODES_DIR, 0700) < 0)
			return err_sys(e, errno, "creating /dev/" NODES_DIR);
		_cleanup_close_ int at =
			openat(dev, NODES_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (at < 0)
			return err_sys(e, errno, "opening /dev/" NODES_DIR);
		int r = ns_attach(nm->nodes, at, "the device nodes", e);
		if (r < 0)
			return r;
	}
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		char made[64];
		snprintf(made, sizeof(made), "/proc/self/fd/%d/%zu",
			 staged ? nm->nodes : -1, i);
		r = make_device(rootfd, &nodes[i], staged ? made : NULL, e);
	}
	if (staged) {
		/* nm->nodes names the attached tmpfs's root now. */
		char p[32];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", nm->nodes);
		if ((umount2(p, MNT_DETACH) < 0 ||
		     unlinkat(dev, NODES_DIR, AT_REMOVEDIR) < 0) && r == 0)
			r = err_sys(e, errno, "removing /dev/" NODES_DIR);
	}
	return r;
}

static int mount_root(const struct rt_spec *s, const char *mnt,
		      const char *upper, const char *work,
		      const struct ns_mounts *nm, struct orch_err *e)
{
	if (nm && nm->root >= 0) /* over "/": the host's path to mnt may be closed to us */
		return ns_attach(nm->root, AT_FDCWD, "the root filesystem", e);
	if (s->rootfs) {
		if (mount(s->rootfs, mnt, NULL, MS_BIND | MS_REC, NULL) < 0)
			return err_sys(e, errno, "binding the root filesystem %s",
				       s->rootfs);
		return 0;
	}
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "lowerdir=");
	for (size_t i = 0; s->lowers[i]; i++)
		sb_printf(&sb, "%s%s", i ? ":" : "", s->lowers[i]);
	sb_printf(&sb, ",upperdir=%s,workdir=%s%s%s", upper, work,
		  rootless() ? ",userxattr" : "",
		  s->volatile_upper ? ",volatile" : "");
	int r = 0;
	if (sb.len >= 4096)
		r = err_set(e, E2BIG, "mounting the overlay root: %zu lower directories make the options too long", strv_len(s->lowers));
	else if (mount("overlay", mnt, "overlay", 0, sb.buf) < 0)
		r = err_sys(e, errno, "mounting the overlay root on %s", mnt);
	sb_free(&sb);
	return r;
}

int mnt_setup_rootfs(const struct rt_spec *s, const struct mnt_root *m,
		     struct orch_err *e)
{
	const char *mnt = m->mnt;
	const struct ns_mounts *nm = m->nm;
	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return err_sys(e, errno, "making mounts private");
	int r = mount_root(s, mnt, m->upper, m->work, nm, e);
	if (r < 0)
		return r;
	/* A remapped child may not walk the host's path to mnt. */
	_cleanup_close_ int rootfd =
		nm && nm->root >= 0
		    ? openat(nm->root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC)
		   : open(mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return err_sys(e, errno, "opening the root %s", mnt);
	r = setup_user_mounts(rootfd, s, nm, e);
	if (r == 0)
		r = setup_proc(rootfd, s, nm, e);
	/* /sys/fs/cgroup shows the cgroup namespace, made in the cgroup;
	 * device nodes are made under the container's device rules. */
	if (r == 0)
		r = m->in_cgroup(m->arg, e);
	if (r == 0)
		r = setup_sys(rootfd, s, nm, e);
	if (r == 0)
		r = setup_cgroupfs(rootfd, s, e);
	if (r == 0)
		r = setup_dev(rootfd, s, m->shm_fd, e);
	if (r == 0)
		r = make_devices(rootfd, nm, m->nodes, m->n_nodes, e);
	if (r == 0 && s->workdir && *s->workdir) {
		int fd = mnt_open_in_root(rootfd, s->workdir, true, false, e);
		if (fd < 0)
			return err_wrap(e, "working directory");
		close(fd);
	}
	if (r < 0)
		return r;
	if (fchdir(rootfd) < 0)
		return err_sys(e, errno, "entering %s", mnt);
	/* pivot_root(".", "."): the old root ends up stacked on the new one
	 * and is detached at once; no directory inside the root is needed. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return err_sys(e, errno, "pivot_root into %s", mnt);
	if (umount2(".", MNT_DETACH) < 0)
		return err_sys(e, errno, "detaching the old root");
	if (chdir("/") < 0)
		return err_sys(e, errno, "entering the new root");
	if (s->readonly_rootfs &&
	    mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
		return err_sys(e, errno, "making the root read-only");
	return 0;
}
