/* Named volumes: $ORCH_ROOT/volumes/<name>/ holds volume.json (labels,
 * size limit, creation time, whether it was filled from an image) and
 * _data, the directory containers mount.
 *
 * A size-limited volume is an ext4 filesystem in a sparse image file,
 * volumes/<name>/disk.ext4, loop-mounted on _data: a container can fill
 * its volume, never the host's disk.  The loop device is attached with
 * LO_FLAGS_AUTOCLEAR, so it goes away with the last unmount, and a disk
 * already attached is reused rather than attached twice (two loop
 * devices over one ext4 image would corrupt it).  The mount is made
 * again on demand (after a reboot, or from a mount namespace that does
 * not see it) by rt_volume_get. */
#include "runtime/store/store_impl.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>

#define VOLUME_MIN_SIZE (1024 * 1024)

bool volume_name_valid(const char *n)
{
	if (!isalnum((unsigned char)n[0]) || strlen(n) > 255)
		return false;
	for (const char *p = n; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' &&
		    *p != '-')
			return false;
	return true;
}

static char *vol_path(const char *name, const char *file)
{
	return file ? xasprintf("%s/volumes/%s/%s", orch_root(), name, file)
		    : xasprintf("%s/volumes/%s", orch_root(), name);
}

static int check_name(const char *name, struct orch_err *e)
{
	if (!volume_name_valid(name))
		return err_set(e, EINVAL,
			       "invalid volume name \"%s\": use "
			       "[a-zA-Z0-9][a-zA-Z0-9_.-]*",
			       name);
	return 0;
}

static int volumes_lock(struct orch_err *e)
{
	_cleanup_free_ char *dir = path_join(orch_root(), "volumes");
	int r = mkdir_p(dir, 0700, e);
	if (r < 0)
		return r;
	_cleanup_free_ char *p = path_join(dir, ".lock");
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys(e, errno, "opening %s", p);
	if (RETRY_EINTR(flock(fd, LOCK_EX)) < 0) {
		r = err_sys(e, errno, "locking %s", p);
		close(fd);
		return r;
	}
	return fd;
}

/* ---- metadata ---------------------------------------------------------- */

static int meta_read(const char *name, json_t **out, struct orch_err *e)
{
	_cleanup_free_ char *p = vol_path(name, "volume.json");
	if (access(p, F_OK) < 0)
		return err_set(e, ENOENT, "no such volume: %s", name);
	json_error_t je;
	json_t *j = json_load_file(p, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		return err_set(e, EINVAL, "reading %s: %s", p, je.text);
	}
	*out = j;
	return 0;
}

static int meta_write(const char *dir, json_t *j, struct orch_err *e)
{
	_cleanup_free_ char *p = path_join(dir, "volume.json");
	_cleanup_free_ char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	return write_file_atomic(p, s, strlen(s), 0600, e);
}

void rt_volume_free(struct rt_volume *v)
{
	if (!v)
		return;
	free(v->name);
	free(v->mountpoint);
	strv_free(v->labels);
	free(v);
}

static struct rt_volume *volume_from_meta(const char *name, json_t *j)
{
	struct rt_volume *v = xcalloc(1, sizeof(*v));
	v->name = xstrdup(name);
	v->mountpoint = vol_path(name, "_data");
	v->labels = xcalloc(1, sizeof(char *));
	const char *k;
	json_t *x;
	json_object_foreach(json_object_get(j, "labels"), k, x)
	{
		_cleanup_free_ char *kv =
		    xasprintf("%s=%s", k, json_string_value(x) ?: "");
		strv_push(&v->labels, kv);
	}
	v->size_limit = json_integer_value(json_object_get(j, "size_limit"));
	v->created = json_integer_value(json_object_get(j, "created"));
	return v;
}

/* ---- mounts ------------------------------------------------------------ */

void mountinfo_unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && isdigit((unsigned char)p[1]) &&
		    isdigit((unsigned char)p[2]) &&
		    isdigit((unsigned char)p[3])) {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 +
				      (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

struct mnt {
	unsigned major, minor;
	char root[4096], point[4096];
};

/* Calls fn for each mount in the mountinfo file; stops when fn returns
 * true, and returns that. */
static bool mounts_each(const char *mountinfo,
			bool (*fn)(const struct mnt *m, void *data), void *data)
{
	_cleanup_fclose_ FILE *f = fopen(mountinfo, "re");
	if (!f)
		return false;
	char *line = NULL;
	size_t cap = 0;
	bool stop = false;
	struct mnt m;
	while (!stop && getline(&line, &cap, f) > 0) {
		if (sscanf(line, "%*u %*u %u:%u %4095s %4095s", &m.major,
			   &m.minor, m.root, m.point) != 4)
			continue;
		mountinfo_unescape(m.root);
		mountinfo_unescape(m.point);
		stop = fn(&m, data);
	}
	free(line);
	return stop;
}

struct mounted_at {
	const char *path;
	char **found; /* mount points at or below path */
};

static bool collect_below(const struct mnt *m, void *data)
{
	struct mounted_at *x = data;
	size_t n = strlen(x->path);
	if (startswith(m->point, x->path) &&
	    (m->point[n] == '\0' || m->point[n] == '/'))
		strv_push(&x->found, m->point);
	return false;
}

/* Mount points at or below path in this mount namespace. */
static char **mounts_below(const char *path)
{
	struct mounted_at x = {path, xcalloc(1, sizeof(char *))};
	mounts_each("/proc/self/mountinfo", collect_below, &x);
	return x.found;
}

static bool is_mounted(const char *path)
{
	_cleanup_strv_ char **m = mounts_below(path);
	for (size_t i = 0; m[i]; i++)
		if (streq(m[i], path))
			return true;
	return false;
}

/* The loop device already backed by the file (same device and inode),
 * or -1. */
static int loop_find(const char *file)
{
	struct stat st;
	if (stat(file, &st) < 0)
		return -1;
	DIR *d = opendir("/sys/block");
	if (!d)
		return -1;
	int found = -1;
	struct dirent *de;
	while (found < 0 && (de = readdir(d))) {
		int n;
		if (sscanf(de->d_name, "loop%d", &n) != 1)
			continue;
		char dev[64];
		snprintf(dev, sizeof(dev), "/dev/loop%d", n);
		_cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
		struct loop_info64 info;
		if (fd < 0 || ioctl(fd, LOOP_GET_STATUS64, &info) < 0)
			continue;
		if (info.lo_device == st.st_dev && info.lo_inode == st.st_ino)
			found = n;
	}
	closedir(d);
	return found;
}

/* Attaches file to a free loop device; returns the device's open fd and
 * fills dev.  Autoclear: the device is released with its last user. */
static int loop_attach(const char *file, char dev[64], struct orch_err *e)
{
	_cleanup_close_ int ffd = open(file, O_RDWR | O_CLOEXEC);
	if (ffd < 0)
		return err_sys(e, errno, "opening %s", file);
	_cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return err_sys(e, errno, "opening /dev/loop-control");
	for (int attempt = 0; attempt < 10; attempt++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0)
			return err_sys(e, errno, "finding a free loop device");
		snprintf(dev, 64, "/dev/loop%d", n);
		int fd = open(dev, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return err_sys(e, errno, "opening %s", dev);
		struct loop_config cfg = {.fd = (uint32_t)ffd};
		cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
		snprintf((char *)cfg.info.lo_file_name, LO_NAME_SIZE, "%s",
			 file);
		if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0)
			return fd;
		int err = errno;
		close(fd);
		/* Taken by someone else between GET_FREE and CONFIGURE. */
		if (err != EBUSY)
			return err_sys(e, err, "attaching %s to %s", file, dev);
	}
	return err_set(e, EBUSY, "attaching %s: no free loop device", file);
}

/* Mounts a size-limited volume's filesystem on its _data, reusing the
 * loop device when the image is already attached. */
static int volume_mount(const char *name, struct orch_err *e)
{
	_cleanup_free_ char *data = vol_path(name, "_data");
	_cleanup_free_ char *disk = vol_path(name, "disk.ext4");
	if (is_mounted(data))
		return 0;
	char dev[64];
	_cleanup_close_ int fd = -1;
	int n = loop_find(disk);
	if (n >= 0) {
		snprintf(dev, sizeof(dev), "/dev/loop%d", n);
	} else {
		fd = loop_attach(disk, dev, e);
		if (fd < 0)
			return err_wrap(e, "mounting volume %s", name);
	}
	if (mount(dev, data, "ext4", MS_NOSUID | MS_NODEV, NULL) < 0)
		return err_sys(e, errno,
			       "mounting volume %s: mounting %s on %s", name,
			       dev, data);
	return 0;
}

/* Unmounts everything at or below the volume's _data, deepest first, and
 * detaches a loop device left attached to its disk.  Nothing mounted is
 * success. */
static int volume_unmount(const char *name, struct orch_err *e)
{
	_cleanup_free_ char *data = vol_path(name, "_data");
	_cleanup_free_ char *disk = vol_path(name, "disk.ext4");
	_cleanup_strv_ char **m = mounts_below(data);
	for (size_t i = strv_len(m); i-- > 0;)
		if (umount2(m[i], MNT_DETACH) < 0 && errno != EINVAL &&
		    errno != ENOENT)
			return err_sys(e, errno, "unmounting %s", m[i]);
	int n = loop_find(disk);
	if (n >= 0) {
		char dev[64];
		snprintf(dev, sizeof(dev), "/dev/loop%d", n);
		_cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
		/* Still mounted elsewhere: autoclear frees it later. */
		if (fd >= 0 && ioctl(fd, LOOP_CLR_FD) < 0 && errno != ENXIO &&
		    errno != EBUSY)
			return err_sys(e, errno, "detaching %s", dev);
	}
	return 0;
}

/* ---- use by containers ------------------------------------------------- */

struct use_probe {
	const char *name;
	char suffix[512]; /* "/volumes/<name>/_data" */
	char real[4096];  /* the data directory's real path */
	unsigned major, minor;
	bool loop;
};

static bool mount_uses(const struct mnt *m, void *data)
{
	const struct use_probe *u = data;
	if (m->major != u->major || m->minor != u->minor)
		return false;
	size_t ps = strlen(m->point), ss = strlen(u->suffix);
	/* The store's own mount of the volume is not a use. */
	if (ps >= ss && streq(m->point + ps - ss, u->suffix))
		return false;
	if (u->loop)
		return true;
	/* A bind of the directory (or below it) on the host filesystem:
	 * its root, up to the data directory, is the tail of the directory's
	 * real path (the whole path when the filesystem is mounted on /), so
	 * another store's volume of the same name is not taken for this one. */
	const char *at = strstr(m->root, u->suffix);
	if (!at || (at[ss] != '\0' && at[ss] != '/'))
		return false;
	size_t rl = (size_t)(at - m->root) + ss, ul = strlen(u->real);
	return rl <= ul && strncmp(u->real + ul - rl, m->root, rl) == 0;
}

int rt_volume_in_use(const char *name, bool *used, char **user,
		     struct orch_err *e)
{
	*used = false;
	int r = check_name(name, e);
	if (r < 0)
		return r;
	json_t *j;
	r = meta_read(name, &j, e);
	if (r < 0)
		return r;
	bool limited = json_integer_value(json_object_get(j, "size_limit")) > 0;
	json_decref(j);
	struct use_probe u = {.name = name, .loop = limited};
	snprintf(u.suffix, sizeof(u.suffix), "/volumes/%s/_data", name);
	struct stat st;
	if (limited) {
		_cleanup_free_ char *disk = vol_path(name, "disk.ext4");
		int n = loop_find(disk);
		if (n < 0)
			return 0; /* not attached: nobody can use it */
		char dev[64];
		snprintf(dev, sizeof(dev), "/dev/loop%d", n);
		if (stat(dev, &st) < 0)
			return 0;
		u.major = major(st.st_rdev);
		u.minor = minor(st.st_rdev);
	} else {
		_cleanup_free_ char *data = vol_path(name, "_data");
		if (stat(data, &st) < 0 || !realpath(data, u.real))
			return err_sys(e, errno, "volume %s", name);
		u.major = major(st.st_dev);
		u.minor = minor(st.st_dev);
	}
	/* Containers live in their own mount namespaces: look in each one
	 * once, through any of its processes. */
	_cleanup_strv_ char **seen = xcalloc(1, sizeof(char *));
	DIR *d = opendir("/proc");
	if (!d)
		return err_sys(e, errno, "opening /proc");
	struct dirent *de;
	while (!*used && (de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		char ns[64], link[300], mi[300];
		snprintf(link, sizeof(link), "/proc/%s/ns/mnt", de->d_name);
		ssize_t n = readlink(link, ns, sizeof(ns) - 1);
		if (n < 0)
			continue;
		ns[n] = '\0';
		if (strv_contains(seen, ns))
			continue;
		strv_push(&seen, ns);
		snprintf(mi, sizeof(mi), "/proc/%s/mountinfo", de->d_name);
		if (mounts_each(mi, mount_uses, &u)) {
			*used = true;
			if (user)
				*user = xasprintf("pid %s", de->d_name);
		}
	}
	closedir(d);
	return 0;
}

/* ---- create, get, list, remove ------------------------------------------ */

static int run_mkfs(const char *disk, struct orch_err *e)
{
	pid_t pid = fork();
	if (pid < 0)
		return err_sys(e, errno, "running mkfs.ext4");
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		execlp("mkfs.ext4", "mkfs.ext4", "-q", "-F", "-m", "0", "-E",
		       "nodiscard,root_owner=0:0", disk, (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return err_sys(e, errno, "waiting for mkfs.ext4");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return err_set(e, EIO, "mkfs.ext4 %s failed (status %d)", disk,
			       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}

/* Creations hold the volumes lock from start to end: under it, any
 * .new-* directory is what a crashed creation left. */
static void sweep_unfinished(void)
{
	_cleanup_free_ char *dir = path_join(orch_root(), "volumes");
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (startswith(de->d_name, ".new-")) {
			_cleanup_free_ char *p = path_join(dir, de->d_name);
			rm_rf(p, NULL);
		}
	closedir(d);
}

/* Sweeps what crashed creations and populations left, unless one runs
 * now. */
static void sweep_unfinished_if_idle(void)
{
	_cleanup_free_ char *p = path_join(orch_root(), "volumes/.lock");
	_cleanup_close_ int fd = open(p, O_RDWR | O_CLOEXEC);
	if (fd >= 0 && RETRY_EINTR(flock(fd, LOCK_EX | LOCK_NB)) == 0)
		sweep_unfinished();
	store_tmp_sweep();
}

/* Builds the volume in dir (not yet visible under its name). */
static int volume_build(const char *dir, const char *name,
			const struct rt_volume_opts *o, struct orch_err *e)
{
	_cleanup_free_ char *data = path_join(dir, "_data");
	if (mkdir(data, 0755) < 0)
		return err_sys(e, errno, "creating %s", data);
	int64_t limit = o ? o->size_limit : 0;
	if (limit > 0) {
		_cleanup_free_ char *disk = path_join(dir, "disk.ext4");
		_cleanup_close_ int fd =
		    open(disk, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return err_sys(e, errno, "creating %s", disk);
		if (ftruncate(fd, limit) < 0)
			return err_sys(e, errno, "sizing %s", disk);
		int r = run_mkfs(disk, e);
		if (r < 0)
			return r;
	}
	json_t *j = json_object();
	json_object_set_new(j, "name", json_string(name));
	json_t *labels = json_object();
	for (size_t i = 0; o && o->labels && o->labels[i]; i++) {
		const char *kv = o->labels[i];
		const char *eq = strchr(kv, '=');
		_cleanup_free_ char *k =
		    eq ? xstrndup(kv, (size_t)(eq - kv)) : xstrdup(kv);
		json_object_set_new(labels, k, json_string(eq ? eq + 1 : ""));
	}
	json_object_set_new(j, "labels", labels);
	json_object_set_new(j, "size_limit", json_integer(limit));
	json_object_set_new(j, "created", json_integer((json_int_t)time(NULL)));
	json_object_set_new(j, "initialized", json_false());
	int r = meta_write(dir, j, e);
	json_decref(j);
	return r;
}

int rt_volume_create(const char *name, const struct rt_volume_opts *o,
		     bool *exists, struct orch_err *e)
{
	if (exists)
		*exists = false;
	int r = check_name(name, e);
	if (r < 0)
		return r;
	if (o && o->size_limit > 0 && o->size_limit < VOLUME_MIN_SIZE)
		return err_set(e, EINVAL,
			       "volume %s: size limit must be at least 1m",
			       name);
	_cleanup_close_ int lock = volumes_lock(e);
	if (lock < 0)
		return lock;
	_cleanup_free_ char *dir = vol_path(name, NULL);
	_cleanup_free_ char *meta = vol_path(name, "volume.json");
	if (access(meta, F_OK) == 0) {
		if (exists)
			*exists = true;
		return 0;
	}
	/* A directory without volume.json is a creation that crashed. */
	r = volume_unmount(name, e);
	if (r == 0)
		r = rm_rf(dir, e);
	if (r < 0)
		return err_wrap(e, "creating volume %s", name);
	sweep_unfinished();
	_cleanup_free_ char *tmp =
	    xasprintf("%s/volumes/.new-%s-XXXXXX", orch_root(), name);
	if (!mkdtemp(tmp))
		return err_sys(e, errno, "creating volume %s", name);
	r = volume_build(tmp, name, o, e);
	if (r == 0 && rename(tmp, dir) < 0)
		r = err_sys(e, errno, "creating volume %s", name);
	if (r < 0) {
		rm_rf(tmp, NULL);
		return err_wrap(e, "creating volume %s", name);
	}
	/* On the disk under its name: else a crash could leave it .new-*,
	 * which the next creation sweeps, data and all. */
	fsync_parent(dir);
	if (o && o->size_limit > 0) {
		r = volume_mount(name, e);
		if (r < 0)
			return r;
		/* mkfs's lost+found would show in every container. */
		_cleanup_free_ char *lf = vol_path(name, "_data/lost+found");
		rmdir(lf);
	}
	return 0;
}

int rt_volume_get(const char *name, struct rt_volume **out, struct orch_err *e)
{
	int r = check_name(name, e);
	if (r < 0)
		return r;
	json_t *j;
	r = meta_read(name, &j, e);
	if (r < 0)
		return r;
	struct rt_volume *v = volume_from_meta(name, j);
	json_decref(j);
	if (v->size_limit > 0 && (r = volume_mount(name, e)) < 0) {
		rt_volume_free(v);
		return r;
	}
	*out = v;
	return 0;
}

int rt_volume_list(struct rt_volume ***out, size_t *n, struct orch_err *e)
{
	_cleanup_free_ char *dir = path_join(orch_root(), "volumes");
	struct rt_volume **v = xcalloc(1, sizeof(*v));
	size_t k = 0;
	/* Every down lists the volumes: a creation or population an up was
	 * killed in leaves nothing behind it. */
	sweep_unfinished_if_idle();
	DIR *d = opendir(dir);
	if (!d && errno != ENOENT) {
		free(v);
		return err_sys(e, errno, "listing %s", dir);
	}
	struct dirent *de;
	while (d && (de = readdir(d))) {
		json_t *j;
		if (!volume_name_valid(de->d_name) ||
		    meta_read(de->d_name, &j, NULL) < 0)
			continue;
		v = xrealloc(v, (k + 2) * sizeof(*v));
		v[k++] = volume_from_meta(de->d_name, j);
		v[k] = NULL;
		json_decref(j);
	}
	if (d)
		closedir(d);
	*out = v;
	*n = k;
	return 0;
}

int rt_volume_remove(const char *name, struct orch_err *e)
{
	int r = check_name(name, e);
	if (r < 0)
		return r;
	_cleanup_close_ int lock = volumes_lock(e);
	if (lock < 0)
		return lock;
	bool used;
	_cleanup_free_ char *user = NULL;
	r = rt_volume_in_use(name, &used, &user, e);
	if (r < 0)
		return r;
	if (used)
		return err_set(e, EBUSY, "volume %s is in use (%s)", name,
			       user);
	/* volume.json goes first: a crash from here on leaves a directory
	 * that is no longer a volume, and the next create cleans it up. */
	_cleanup_free_ char *meta = vol_path(name, "volume.json");
	if (unlink(meta) < 0 && errno != ENOENT)
		return err_sys(e, errno, "removing volume %s", name);
	r = volume_unmount(name, e);
	_cleanup_free_ char *dir = vol_path(name, NULL);
	if (r == 0)
		r = rm_rf(dir, e);
	if (r < 0)
		return err_wrap(e, "removing volume %s", name);
	return 0;
}

/* ---- copy-up ----------------------------------------------------------- */

static bool dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return false;
	struct dirent *de;
	bool empty = true;
	while (empty && (de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, "..") &&
		    !streq(de->d_name, "lost+found"))
			empty = false;
	closedir(d);
	return empty;
}

/* Copies path inside root (resolved as if root were /, so an image's
 * symlinks cannot lead out of it) into the volume's _data, with its top
 * directory's owner and mode, as docker does.  Nothing at path is no
 * content. */
static int populate_from(const char *name, const char *root, const char *path,
			 bool *copied, struct orch_err *e)
{
	*copied = false;
	_cleanup_free_ char *data = vol_path(name, "_data");
	_cleanup_close_ int rfd =
	    open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return err_sys(e, errno, "opening %s", root);
	struct open_how how = {
	    .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	while (*path == '/')
		path++;
	_cleanup_close_ int sfd = (int)syscall(
	    SYS_openat2, rfd, *path ? path : ".", &how, sizeof(how));
	if (sfd < 0)
		return errno == ENOENT || errno == ENOTDIR
			   ? 0
			   : err_sys(e, errno, "opening %s in %s", path, root);
	*copied = true;
	_cleanup_close_ int dfd =
	    open(data, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return err_sys(e, errno, "opening %s", data);
	int r = rt_tree_copy(sfd, dfd, &(struct rt_tree_copy){0}, e);
	if (r < 0)
		return r;
	struct stat st;
	if (fstat(sfd, &st) == 0 && (fchown(dfd, st.st_uid, st.st_gid) < 0 ||
				     fchmod(dfd, st.st_mode & 07777) < 0))
		return err_sys(e, errno, "setting owner and mode of %s", data);
	return 0;
}

/* Checks name, takes the volumes' lock (*lock, to close) and reads the
 * volume's metadata. */
static int meta_locked(const char *name, int *lock, json_t **j,
		       struct orch_err *e)
{
	int r = check_name(name, e);
	if (r < 0)
		return r;
	*lock = volumes_lock(e);
	if (*lock < 0)
		return *lock;
	return meta_read(name, j, e);
}

struct image_src {
	const struct rt_image *img;
	const char *path;
};

/* Whether path is in none of the layers, surely: no layer has it, nor a
 * symlink on the way to it (which could lead into another layer); a
 * whiteout there counts as something. */
static bool layers_lack(char *const *lowers, const char *path)
{
	struct open_how how = {
	    .flags = O_PATH | O_CLOEXEC,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS |
		       RESOLVE_NO_MAGICLINKS,
	};
	while (*path == '/')
		path++;
	if (!*path)
		return false;
	for (size_t i = 0; lowers[i]; i++) {
		_cleanup_close_ int root =
		    open(lowers[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (root < 0)
			return false;
		_cleanup_close_ int fd = (int)syscall(SYS_openat2, root, path,
						      &how, sizeof(how));
		if (fd >= 0 || (errno != ENOENT && errno != ENOTDIR))
			return false;
	}
	return true;
}

/* Copies path of the image: from its one layer, or from its layers
 * mounted read-only in a private mount namespace of a child process, so
 * that nothing stays mounted whatever happens (the child reports errors
 * through a pipe). */
/* *copied: false when there was surely nothing to copy. */
static int fill_from_image(const char *name, const struct image_src *s,
			   bool *copied, struct orch_err *e)
{
	_cleanup_strv_ char **lowers = rt_image_lowers(s->img);
	/* Most volumes go where the image has nothing: no child to fork. */
	if (!lowers[0] || layers_lack(lowers, s->path)) {
		*copied = false;
		return 0;
	}
	/* One layer is read as it is, here (the copy skips its whiteout
	 * devices); overlayfs wants two lowers without an upper. */
	if (!lowers[1])
		return populate_from(name, lowers[0], s->path, copied, e);
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int tmp_lock = -1;
	int r = store_tmpdir("populate", &tmp, &tmp_lock, e);
	if (r < 0)
		return r;
	struct strbuf opts;
	sb_init(&opts);
	sb_adds(&opts, rootless() ? "ro,userxattr,lowerdir=" : "ro,lowerdir=");
	for (size_t i = 0; lowers[i]; i++)
		sb_printf(&opts, "%s%s", i ? ":" : "", lowers[i]);
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		sb_free(&opts);
		rm_rf(tmp, NULL);
		return err_sys(e, errno, "filling volume %s", name);
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		struct orch_err ce = {0};
		int cr = 0;
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			cr = err_sys(&ce, errno, "entering a mount namespace");
		else if (mount("overlay", tmp, "overlay", MS_RDONLY, opts.buf) <
			 0)
			cr = err_sys(&ce, errno, "mounting the image's layers");
		bool any;
		if (cr == 0)
			cr = populate_from(name, tmp, s->path, &any, &ce);
		if (cr < 0)
			(void)!write(pfd[1], ce.msg, strlen(ce.msg));
		_exit(cr < 0 ? 1 : 0);
	}
	close(pfd[1]);
	sb_free(&opts);
	if (pid < 0) {
		close(pfd[0]);
		rm_rf(tmp, NULL);
		return err_sys(e, errno, "filling volume %s", name);
	}
	char msg[sizeof(e->msg)];
	ssize_t n = RETRY_EINTR(read(pfd[0], msg, sizeof(msg) - 1));
	close(pfd[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	rmdir(tmp);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	msg[n > 0 ? n : 0] = '\0';
	return err_set(e, EIO, "copying %s from image %.12s: %s", s->path,
		       s->img->id, n > 0 ? msg : "failed");
}

static void ids_write(json_t *j, const struct rt_ids *ids);

/* Fills the volume from s once in its life (docker's copy-up): only
 * when it was never filled and is empty; afterwards it is marked
 * initialized whatever came.
 * Given nothing, it is given to ids in the same write: never filled, it
 * was never mounted, so nothing uses it that rt_volume_shift would have
 * to look for first. */
static int populate_once(const char *name, const struct image_src *s,
			 const struct rt_ids *ids, struct orch_err *e)
{
	_cleanup_close_ int lock = -1;
	json_t *j;
	int r = meta_locked(name, &lock, &j, e);
	if (r < 0)
		return r;
	_cleanup_free_ char *data = vol_path(name, "_data");
	bool limited = json_integer_value(json_object_get(j, "size_limit")) > 0;
	if (json_is_true(json_object_get(j, "initialized")) ||
	    (limited && (r = volume_mount(name, e)) < 0) ||
	    !dir_is_empty(data)) {
		json_decref(j);
		return r;
	}
	bool copied = true;
	r = fill_from_image(name, s, &copied, e);
	uint32_t ru = 0, rg = 0;
	if (r == 0 && !copied) {
		if (rt_idmap_find(ids->uid, ids->n_uid, 0, false, &ru) &&
		    rt_idmap_find(ids->gid, ids->n_gid, 0, false, &rg) &&
		    chown(data, ru, rg) < 0)
			r = err_sys(e, errno, "giving %s to the container's root",
				    data);
		else
			ids_write(j, ids);
	}
	if (r == 0) {
		_cleanup_free_ char *dir = vol_path(name, NULL);
		json_object_set_new(j, "initialized", json_true());
		r = meta_write(dir, j, e);
	}
	json_decref(j);
	if (r < 0)
		return err_wrap(e, "filling volume %s", name);
	return 0;
}

/* ---- id ranges -------------------------------------------------------- */

/* A volume's ids: "id_map" {"uid": [[in, out, count]...], "gid": ...},
 * else the range at "id_base" (0: the ids as they are). */
static void ids_read(json_t *j, struct rt_ids *ids)
{
	rt_ids_base(ids, (uint32_t)json_integer_value(json_object_get(j, "id_base")));
	json_t *m = json_object_get(j, "id_map");
	if (!json_is_object(m))
		return;
	const char *keys[2] = {"uid", "gid"};
	for (int k = 0; k < 2; k++) {
		struct rt_idmap *v = k ? ids->gid : ids->uid;
		size_t *n = k ? &ids->n_gid : &ids->n_uid;
		json_t *a = json_object_get(m, keys[k]);
		*n = 0;
		for (size_t i = 0; i < json_array_size(a) && i < 3; i++) {
			json_t *x = json_array_get(a, i);
			v[(*n)++] = (struct rt_idmap){
			    (uint32_t)json_integer_value(json_array_get(x, 0)),
			    (uint32_t)json_integer_value(json_array_get(x, 1)),
			    (uint32_t)json_integer_value(json_array_get(x, 2))};
		}
	}
}

static json_t *map_json(const struct rt_idmap *m, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("[I,I,I]", (json_int_t)m[i].inside,
						   (json_int_t)m[i].outside,
						   (json_int_t)m[i].count));
	return a;
}

static void ids_write(json_t *j, const struct rt_ids *ids)
{
	json_object_del(j, "id_base");
	json_object_set_new(j, "id_map",
			    json_pack("{s:o, s:o}", "uid",
				      map_json(ids->uid, ids->n_uid), "gid",
				      map_json(ids->gid, ids->n_gid)));
}

static bool ids_equal(const struct rt_ids *a, const struct rt_ids *b)
{
	return a->n_uid == b->n_uid && a->n_gid == b->n_gid &&
	       !memcmp(a->uid, b->uid, a->n_uid * sizeof(a->uid[0])) &&
	       !memcmp(a->gid, b->gid, a->n_gid * sizeof(a->gid[0]));
}

/* id stored for the old ids, stored for the new: back to the container's
 * id, then out through the new map.  An id the old map does not give (a
 * host user's file) stays. */
static uint32_t shift_id(uint32_t id, const struct rt_idmap *old, size_t n_old,
			 const struct rt_idmap *to, size_t n_to)
{
	uint32_t k, out;
	return rt_idmap_find(old, n_old, id, true, &k) &&
			       rt_idmap_find(to, n_to, k, false, &out)
		       ? out
		       : id;
}

struct shift {
	const struct rt_ids *old, *to;
	int depth;
};

static int shift_one(int dfd, const char *n, const struct stat *st,
		     const struct shift *s, struct orch_err *e)
{
	uid_t u = shift_id(st->st_uid, s->old->uid, s->old->n_uid, s->to->uid,
			   s->to->n_uid);
	gid_t g = shift_id(st->st_gid, s->old->gid, s->old->n_gid, s->to->gid,
			   s->to->n_gid);
	if (u == st->st_uid && g == st->st_gid)
		return 0;
	if (fchownat(dfd, n, u, g, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) < 0)
		return err_sys(e, errno, "changing the owner of %s", n);
	/* chown drops set-id bits: put them back. */
	if (!S_ISLNK(st->st_mode) && (st->st_mode & 06000) &&
	    (*n ? fchmodat(dfd, n, st->st_mode & 07777, 0)
		: fchmod(dfd, st->st_mode & 07777)) < 0)
		return err_sys(e, errno, "restoring the mode of %s", n);
	return 0;
}

static int shift_entry(int dfd, const char *n, const struct stat *st,
		       void *arg, struct orch_err *e)
{
	struct shift *s = arg;
	if (S_ISDIR(st->st_mode)) {
		if (s->depth >= 256)
			return err_set(e, ELOOP, "a volume nested too deep");
		_cleanup_close_ int sub =
		    openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return err_sys(e, errno, "opening %s", n);
		struct shift below = {s->old, s->to, s->depth + 1};
		int r = dir_each(sub, shift_entry, &below, e);
		if (r < 0)
			return r;
	}
	return shift_one(dfd, n, st, s, e);
}

int rt_volume_shift(const char *name, const struct rt_ids *ids,
		    struct orch_err *e)
{
	_cleanup_close_ int lock = -1;
	json_t *j;
	int r = meta_locked(name, &lock, &j, e);
	if (r < 0)
		return r;
	struct rt_ids old;
	ids_read(j, &old);
	bool limited = json_integer_value(json_object_get(j, "size_limit")) > 0;
	if (ids_equal(&old, ids)) {
		json_decref(j);
		return 0;
	}
	bool used = false;
	_cleanup_free_ char *user = NULL;
	r = rt_volume_in_use(name, &used, &user, e);
	if (r == 0 && used)
		r = err_set(e, EBUSY,
			    "volume %s is in use (%s) with the ids of another "
			    "user namespace (from %u, wanted from %u): stop "
			    "what uses it first",
			    name, user, old.uid[0].outside, ids->uid[0].outside);
	if (r == 0 && limited)
		r = volume_mount(name, e);
	_cleanup_free_ char *data = vol_path(name, "_data");
	_cleanup_close_ int dfd =
	    r < 0 ? -1 : open(data, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (r == 0 && dfd < 0)
		r = err_sys(e, errno, "opening %s", data);
	struct stat st;
	struct shift top = {&old, ids, 0};
	if (r == 0)
		r = dir_each(dfd, shift_entry, &top, e);
	if (r == 0 && fstat(dfd, &st) < 0)
		r = err_sys(e, errno, "reading %s", data);
	if (r == 0)
		r = shift_one(dfd, "", &st, &top, e);
	if (r == 0) {
		_cleanup_free_ char *dir = vol_path(name, NULL);
		ids_write(j, ids);
		r = meta_write(dir, j, e);
	}
	json_decref(j);
	return r < 0 ? err_wrap(e, "giving volume %s to a container's ids", name)
		     : 0;
}

int rt_volume_prepare(const char *name, const struct rt_image *img,
		      const char *target, const struct rt_ids *ids,
		      char **mountpoint, struct orch_err *e)
{
	int r = rt_volume_create(name, NULL, NULL, e);
	struct image_src s = {img, target};
	if (r == 0 && img)
		r = populate_once(name, &s, ids, e);
	if (r == 0)
		r = rt_volume_shift(name, ids, e);
	struct rt_volume *v = NULL;
	if (r == 0)
		r = rt_volume_get(name, &v, e);
	if (r < 0)
		return r;
	*mountpoint = move_ptr(v->mountpoint);
	rt_volume_free(v);
	return 0;
}
