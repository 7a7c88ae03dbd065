/* The containers' upper directories ($ORCH_ROOT/containers/<id>, holding
 * the overlay's upper/ and work/), made and removed.
 *
 * A removed one is emptied and kept in $ORCH_ROOT/containers/.spare (at
 * most SPARE_MAX of them), and the next container takes it by a rename.
 * On ext4 a new directory costs what a rename does not: the containers'
 * directory is marked +T (see mark_containers_dir), so each new one goes
 * to a block group of its own, whose inode and block bitmaps are read
 * from the disk in the mkdir (two reads, about 0.9 ms here); and each
 * directory removed frees a block, which `discard` mounts trim before
 * rmdir returns.  A spare keeps its three directories; only what the
 * container and its overlay wrote inside them goes.
 *
 * A spare is exactly as mkdir made it, or it is not kept: only upper/ and
 * work/, both empty, owned by us, modes 0755 and 0700, no extended
 * attribute left on upper/ (overlay's own, an ACL), and the same inode
 * flags as work/, which no container reaches (a privileged one could set
 * casefolding on its root).
 *
 * A reboot empties $ORCH_RUN, and with it every record of the containers
 * whose directories these are: the first container made after one
 * removes what the boot before left (rt_upper_sweep). */
#include "runtime/container_impl.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#define SPARE_MAX 64
#define SPARE_MIN 16

/* Marks the directory that holds the containers' upper directories as the
 * top of unrelated trees (chattr +T), once per process: ext4's allocator
 * then spreads each container's directory, and the files made in it, over
 * the block groups, instead of putting them all beside their parent.
 * Each overlay mount makes and frees a few inodes in its workdir; on ext4
 * without a journal a new inode skips every one freed in the last minute
 * in its group, so with all containers in one group each mount of a
 * 200-service `up` scanned the ones before it (7.7% of the machine's CPU
 * in __ext4_new_inode, 0.9% with the flag).  Best effort: other file
 * systems have no such flag. */
static void mark_containers_dir(const char *upper_dir)
{
	static char *done;
	_cleanup_free_ char *parent = xstrdup(upper_dir);
	char *slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return;
	*slash = '\0';
	if (done && streq(done, parent))
		return;
	_cleanup_close_ int fd =
	    open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	int flags;
	if (fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 &&
	    !(flags & FS_TOPDIR_FL)) {
		flags |= FS_TOPDIR_FL;
		ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	if (fd >= 0) {
		free(done);
		done = xstrdup(parent);
	}
}

/* $ORCH_ROOT/containers/.spare when upper_dir is one of
 * $ORCH_ROOT/containers, else NULL (a directory a caller chose). */
static char *spare_dir(const char *upper_dir)
{
	_cleanup_free_ char *top = xasprintf("%s/containers/", orch_root());
	size_t n = strlen(top);
	if (strncmp(upper_dir, top, n) != 0 || !upper_dir[n] ||
	    strchr(upper_dir + n, '/') || upper_dir[n] == '.')
		return NULL;
	return xasprintf("%s.spare", top);
}

/* The directory path under dfd (not a symlink), to read; NULL on error. */
static DIR *dir_open(int dfd, const char *path)
{
	int fd = openat(dfd, path,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d && fd >= 0)
		close(fd);
	return d;
}

/* Entries of a directory but . and .., up to max (then max, and when it
 * cannot be read). */
static size_t count_entries(int dfd, size_t max)
{
	DIR *d = dir_open(dfd, ".");
	if (!d)
		return max;
	size_t n = 0;
	struct dirent *de;
	while (n < max && (de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Empties the directory path (dfd) and gives it mkdir's owner and mode;
 * false when it cannot be made so. */
static bool reset_dir(int dfd, const char *path, mode_t mode)
{
	struct orch_err ign = {0};
	return rm_rf_inside(path, &ign) == 0 &&
	       fchown(dfd, geteuid(), getegid()) == 0 &&
	       fchmod(dfd, mode) == 0;
}

/* No extended attribute left on the directory fd names. */
static bool drop_xattrs(int fd)
{
	char names[4096];
	ssize_t n = flistxattr(fd, names, sizeof(names));
	if (n < 0)
		return false;
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
		if (fremovexattr(fd, names + i) < 0 && errno != ENODATA)
			return false;
	return true;
}

static bool same_flags(int a, int b)
{
	int fa = 0, fb = 0;
	int ra = ioctl(a, FS_IOC_GETFLAGS, &fa);
	int rb = ioctl(b, FS_IOC_GETFLAGS, &fb);
	return ra == rb && fa == fb;
}

/* Makes upper_dir a spare as mkdir makes it, or says it cannot. */
static bool make_spare(const char *upper_dir)
{
	_cleanup_close_ int top = open(
	    upper_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (top < 0 || count_entries(top, 3) != 2)
		return false;
	_cleanup_close_ int up = openat(
	    top, "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int work = openat(
	    top, "work", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (up < 0 || work < 0)
		return false;
	_cleanup_free_ char *up_path = path_join(upper_dir, "upper");
	_cleanup_free_ char *work_path = path_join(upper_dir, "work");
	return reset_dir(up, up_path, 0755) && drop_xattrs(up) &&
	       futimens(up, NULL) == 0 && reset_dir(work, work_path, 0700) &&
	       same_flags(up, work);
}

/* A spare made ahead, in a block group of its own (upper_make marks
 * .spare +T as it marks the containers' directory): made whole under a
 * name no container takes, then renamed. */
static void spare_add(const char *spares, int sfd, const char *name)
{
	_cleanup_free_ char *p = xasprintf("%s/.new-%s", spares, name);
	struct orch_err ign = {0};
	if (upper_make(p, &ign) < 0 || renameat(AT_FDCWD, p, sfd, name) < 0)
		rm_rf(p, &ign);
}

int rt_upper_remove(const char *upper_dir, struct orch_err *e)
{
	_cleanup_free_ char *spares = spare_dir(upper_dir);
	if (!spares)
		return rm_rf(upper_dir, e);
	_cleanup_close_ int sfd =
	    open(spares, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0 && errno == ENOENT && mkdir(spares, 0700) == 0)
		sfd = open(spares,
			   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	size_t n = sfd < 0 ? SPARE_MAX : count_entries(sfd, SPARE_MAX);
	if (n >= SPARE_MAX || !make_spare(upper_dir))
		return rm_rf(upper_dir, e);
	const char *slash = strrchr(upper_dir, '/');
	if (!slash || renameat(AT_FDCWD, upper_dir, sfd, slash + 1) < 0)
		return rm_rf(upper_dir, e);
	/* Each mount of an overlay makes and frees inodes in its work/'s
	 * group, and on ext4 without a journal a new inode is looked for
	 * past every one freed there in the last minute: with one spare,
	 * taken again and again, each start scanned more (recently_deleted,
	 * 12% of the CPU in 100 runs).  A few more made ahead, once, spread
	 * them: a container takes any (their names are the ids of the
	 * containers that left them, in no order). */
	if (n + 1 < SPARE_MIN) {
		_cleanup_free_ char *name = xasprintf("%s-", slash + 1);
		spare_add(spares, sfd, name);
	}
	return 0;
}

/* Takes a spare as upper_dir: true when one was there. */
static bool take_spare(const char *upper_dir)
{
	_cleanup_free_ char *spares = spare_dir(upper_dir);
	if (!spares)
		return false;
	DIR *d = dir_open(AT_FDCWD, spares);
	if (!d)
		return false;
	bool taken = false;
	struct dirent *de;
	/* Other containers made at once race for the same ones: the loser
	 * of a rename tries the next. */
	while (!taken && (de = readdir(d))) {
		if (de->d_name[0] == '.') /* ., .., one being made */
			continue;
		if (renameat(dirfd(d), de->d_name, AT_FDCWD, upper_dir) == 0)
			taken = true;
		else if (errno != ENOENT)
			break;
	}
	closedir(d);
	return taken;
}

/* The kernel's id of this boot (36 characters); false when unread. */
static bool boot_id(char out[37])
{
	_cleanup_free_ char *s = NULL;
	size_t n = 0;
	struct orch_err ign = {0};
	if (read_file("/proc/sys/kernel/random/boot_id", &s, &n, &ign) < 0 ||
	    n < 36)
		return false;
	memcpy(out, s, 36);
	out[36] = '\0';
	return true;
}

/* The containers' directories in dir that no container of this $ORCH_RUN
 * has (no runtime/<id>): listed at once, so that one made after the list
 * is not in it (its runtime directory comes first, see create). */
static char **orphans(const char *dir)
{
	char **out = xcalloc(1, sizeof(char *));
	DIR *d = dir_open(AT_FDCWD, dir);
	if (!d)
		return out;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!rt_id_valid(de->d_name))
			continue;
		_cleanup_free_ char *run = ctr_state_dir(de->d_name);
		if (access(run, F_OK) < 0 && errno == ENOENT)
			strv_push(&out, de->d_name);
	}
	closedir(d);
	return out;
}

/* What crashes left in .spare: spares being made (.new-*). */
static void sweep_spares(const char *spares)
{
	DIR *d = dir_open(AT_FDCWD, spares);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!startswith(de->d_name, ".new-"))
			continue;
		_cleanup_free_ char *p = path_join(spares, de->d_name);
		struct orch_err ign = {0};
		rm_rf(p, &ign);
	}
	closedir(d);
}

void rt_upper_sweep(void)
{
	/* Written once this $ORCH_RUN was seen in this boot: from then on
	 * every container's directory has a record here. */
	_cleanup_free_ char *seen = xasprintf("%s/runtime/.boot", orch_run());
	if (access(seen, F_OK) == 0)
		return;
	char now[37];
	if (!boot_id(now))
		return;
	struct orch_err ign = {0};
	_cleanup_free_ char *dir = xasprintf("%s/containers", orch_root());
	_cleanup_free_ char *mark = path_join(dir, ".boot");
	if (mkdir_p(dir, 0700, &ign) < 0)
		return;
	/* The boot the directories here were made in: made in this one,
	 * they may be another $ORCH_RUN's, alive.  Two first containers at
	 * once: one sweeps, the other finds it done. */
	_cleanup_close_ int lock =
	    open(mark, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX) < 0)
		return;
	char was[37] = "";
	ssize_t n = pread(lock, was, 36, 0);
	was[n > 0 ? n : 0] = '\0';
	/* An empty mark: an orch from before it, whose containers may be
	 * alive; nothing is removed. */
	if (*was && !streq(was, now)) {
		_cleanup_strv_ char **gone = orphans(dir);
		for (size_t i = 0; gone[i]; i++) {
			_cleanup_free_ char *p = path_join(dir, gone[i]);
			rt_upper_remove(p, &ign);
		}
		_cleanup_free_ char *spares = path_join(dir, ".spare");
		sweep_spares(spares);
	}
	if (!streq(was, now) &&
	    (pwrite(lock, now, 36, 0) != 36 || ftruncate(lock, 36) < 0))
		return;
	_cleanup_free_ char *run = xasprintf("%s/runtime", orch_run());
	if (mkdir_p(run, 0700, &ign) == 0)
		write_file_replace(seen, now, 36, 0600, &ign);
}

int upper_make(const char *upper_dir, struct orch_err *e)
{
	/* A container made again (a restart) keeps its own. */
	if (access(upper_dir, F_OK) < 0 && errno == ENOENT &&
	    take_spare(upper_dir))
		return 0;
	/* Before the container's directory is made, for it to be placed by
	 * the flag; and after, when the first container's mkdir_p made the
	 * parent. */
	mark_containers_dir(upper_dir);
	_cleanup_free_ char *upper = path_join(upper_dir, "upper");
	int r = mkdir_p(upper, 0755, e);
	if (r < 0)
		return r;
	mark_containers_dir(upper_dir);
	_cleanup_free_ char *work = path_join(upper_dir, "work");
	if (mkdir(work, 0700) < 0 && errno != EEXIST)
		return err_sys(e, errno, "creating %s", work);
	return 0;
}
