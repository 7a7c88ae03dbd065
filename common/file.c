/* Files, directories and the state roots. */
#include "common/common.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/random.h>
#include <sys/stat.h>

int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = RETRY_EINTR(write(fd, p, len));
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

bool fd_pass(int from, int to)
{
	char buf[8192];
	ssize_t n = RETRY_EINTR(read(from, buf, sizeof(buf)));
	return n > 0 && write_all(to, buf, (size_t)n) == 0;
}

static int write_atomic(const char *path, const void *data, size_t len,
			mode_t mode, bool durable, struct orch_err *e)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, getpid());
	_cleanup_close_ int fd =
		open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return err_sys(e, errno, "creating %s", tmp);
	if (write_all(fd, data, len) < 0) {
		int r = err_sys(e, errno, "writing %s", tmp);
		unlink(tmp);
		return r;
	}
	if (durable && fsync(fd) < 0) {
		int r = err_sys(e, errno, "syncing %s", tmp);
		unlink(tmp);
		return r;
	}
	if (rename(tmp, path) < 0) {
		int r = err_sys(e, errno, "renaming %s to %s", tmp, path);
		unlink(tmp);
		return r;
	}
	if (durable)
		fsync_parent(path);
	return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len,
		      mode_t mode, struct orch_err *e)
{
	/* What lives under ORCH_RUN goes with a reboot: it must be whole,
	 * not on the disk. */
	const char *run = orch_run();
	size_t rl = strlen(run);
	bool durable = strncmp(path, run, rl) != 0 || path[rl] != '/';
	return write_atomic(path, data, len, mode, durable, e);
}

int write_file_replace(const char *path, const void *data, size_t len,
		       mode_t mode, struct orch_err *e)
{
	return write_atomic(path, data, len, mode, false, e);
}

void fsync_parent(const char *path)
{
	_cleanup_free_ char *dir = xstrdup(path);
	_cleanup_close_ int dfd =
		open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		fsync(dfd);
}

int read_file(const char *path, char **out, size_t *len, struct orch_err *e)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "opening %s", path);
	return read_fd(fd, path, out, len, e);
}

char *proc_comm(pid_t pid)
{
	char path[48];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	char *comm = NULL;
	if (pid <= 0 || read_file(path, &comm, NULL, NULL) < 0)
		return NULL;
	comm[strcspn(comm, "\n")] = '\0';
	return comm;
}

int read_fd(int fd, const char *what, char **out, size_t *len,
	    struct orch_err *e)
{
	struct strbuf sb;
	sb_init(&sb);
	char buf[65536];
	for (;;) {
		ssize_t n = RETRY_EINTR(read(fd, buf, sizeof(buf)));
		if (n < 0) {
			int r = err_sys(e, errno, "reading %s", what);
			sb_free(&sb);
			return r;
		}
		if (n == 0)
			break;
		sb_add(&sb, buf, (size_t)n);
	}
	if (len)
		*len = sb.len;
	*out = sb_steal(&sb);
	return 0;
}

int mkdir_p(const char *path, mode_t mode, struct orch_err *e)
{
	/* From the end: where the parent exists (most calls), one mkdir. */
	if (mkdir(path, mode) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return err_sys(e, errno, "creating directory %s", path);
	_cleanup_free_ char *p = xstrdup(path);
	char *slash = strrchr(p, '/');
	while (slash && slash > p && slash[1] == '\0') {
		*slash = '\0'; /* a trailing slash */
		slash = strrchr(p, '/');
	}
	if (!slash || slash == p)
		return err_sys(e, ENOENT, "creating directory %s", path);
	*slash = '\0';
	int r = mkdir_p(p, mode, e);
	if (r < 0)
		return r;
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return err_sys(e, errno, "creating directory %s", path);
	return 0;
}

/* Removes name under dfd and what it holds; a directory itself stays when
 * keep. */
static int rm_rf_at(int dfd, const char *name, dev_t dev, bool keep,
		    struct orch_err *e, const char *top)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : err_sys(e, errno, "removing %s", top);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
			return err_sys(e, errno, "removing %s", top);
		return 0;
	}
	if (st.st_dev != dev)
		return err_set(e, EBUSY, "removing %s: a mount point is inside it",
			       top);
	int fd = openat(dfd, name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : err_sys(e, errno, "removing %s", top);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return err_sys(e, errno, "removing %s", top);
	}
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		r = rm_rf_at(dirfd(d), de->d_name, dev, false, e, top);
		if (r < 0)
			break;
	}
	closedir(d);
	if (r == 0 && !keep && unlinkat(dfd, name, AT_REMOVEDIR) < 0 &&
	    errno != ENOENT)
		r = err_sys(e, errno, "removing %s", top);
	return r;
}

int rm_rf(const char *path, struct orch_err *e)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_sys(e, errno, "removing %s", path);
	return rm_rf_at(AT_FDCWD, path, st.st_dev, false, e, path);
}

int rm_rf_inside(const char *path, struct orch_err *e)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return err_sys(e, errno, "emptying %s", path);
	if (!S_ISDIR(st.st_mode))
		return err_set(e, ENOTDIR, "emptying %s: not a directory", path);
	return rm_rf_at(AT_FDCWD, path, st.st_dev, true, e, path);
}

char *path_join(const char *a, const char *b)
{
	size_t la = strlen(a);
	while (*b == '/')
		b++;
	if (la && a[la - 1] == '/')
		return xasprintf("%s%s", a, b);
	return xasprintf("%s/%s", a, b);
}

char *self_exe(void)
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	if (buf[0] != '/') {
		errno = EINVAL;
		return NULL;
	}
	return xstrdup(buf);
}

char **path_components(const char *p, bool *above)
{
	char **parts = xcalloc(1, sizeof(char *));
	size_t n = 0;
	_cleanup_free_ char *copy = xstrdup(p);
	char *save = NULL;
	if (above)
		*above = false;
	for (char *c = strtok_r(copy, "/", &save); c;
	     c = strtok_r(NULL, "/", &save)) {
		if (streq(c, "."))
			continue;
		if (!streq(c, "..")) {
			strv_push(&parts, c);
			n++;
		} else if (n) {
			free(parts[--n]);
			parts[n] = NULL;
		} else if (above) {
			*above = true;
		}
	}
	return parts;
}

const char *orch_root(void)
{
	const char *r = getenv("ORCH_ROOT");
	return r && *r ? r : "/var/lib/orch";
}

const char *orch_cgroup_root(void)
{
	const char *r = getenv("ORCH_CGROUP_ROOT");
	return r && r[0] == '/' ? r : "/sys/fs/cgroup";
}

const char *orch_run(void)
{
	const char *r = getenv("ORCH_RUN");
	return r && *r ? r : "/run/orch";
}

/* me (an id in our namespace) as the host sees it, through map_path. */
static unsigned long read_host_id(const char *map_path, unsigned long me)
{
	_cleanup_free_ char *map = NULL;
	struct orch_err ign = {0};
	if (read_file(map_path, &map, NULL, &ign) < 0)
		return me;
	for (char *save = NULL, *l = strtok_r(map, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		unsigned long in, out, n;
		if (sscanf(l, "%lu %lu %lu", &in, &out, &n) == 3 && me >= in &&
		    me - in < n)
			return out + (me - in);
	}
	return (unsigned long)-1; /* unmapped: nobody */
}

/* Read once: the same before and after a rootless orch joins the user's
 * namespace (the user's ids, seen from outside or through the maps). */
static const struct host_ids {
	uid_t uid;
	gid_t gid;
} *host_ids(void)
{
	static struct host_ids ids;
	static bool known;
	if (!known) {
		ids.uid = (uid_t)read_host_id("/proc/self/uid_map", geteuid());
		ids.gid = (gid_t)read_host_id("/proc/self/gid_map", getegid());
		known = true;
	}
	return &ids;
}

uid_t host_uid(void)
{
	return host_ids()->uid;
}

gid_t host_gid(void)
{
	return host_ids()->gid;
}

bool rootless(void)
{
	return host_uid() != 0;
}

uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

void random_id(char out[65])
{
	unsigned char raw[32];
	size_t got = 0;
	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			abort();
		got += (size_t)n;
	}
	hex32(raw, out);
}

void hex32(const unsigned char in[32], char out[65])
{
	static const char digits[] = "0123456789abcdef";
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[64] = '\0';
}
