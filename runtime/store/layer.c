/* Layers: content-addressed, read-only trees under $ORCH_ROOT/layers.
 *
 * A layer tarball is read once through a pipeline of two libarchive
 * readers: the outer one only decompresses (gzip, zstd, ...) and its input
 * is hashed (the blob digest); the inner one parses the tar from the
 * decompressed bytes, which are hashed too (the diff_id).  Entries are
 * written with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) below a
 * private temporary directory, so no entry can land outside it, whatever
 * the archive says; the tree is renamed into place only when both digests
 * match.  OCI whiteouts become overlayfs ones on the way. */
#include "runtime/store/store_impl.h"

#include "common/lazylib/lazylib.h"
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>

/* ---- pure helpers ------------------------------------------------------ */

int tar_path_clean(const char *name, char **out)
{
	if (name[0] == '/')
		return -EINVAL;
	struct strbuf sb;
	sb_init(&sb);
	const char *p = name;
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			sb_free(&sb);
			return -EINVAL;
		}
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (sb.len)
				sb_add(&sb, "/", 1);
			sb_add(&sb, p, n);
		}
		p = *end ? end + 1 : end;
	}
	*out = sb_steal(&sb);
	return 0;
}

const char *store_overlay_xattr(const char *name)
{
	static char buf[64];
	snprintf(buf, sizeof(buf), "%s.overlay.%s",
		 rootless() ? "user" : "trusted", name);
	return buf;
}

enum whiteout_kind whiteout_parse(const char *path, char **target)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (!startswith(base, ".wh."))
		return WHITEOUT_NONE;
	if (streq(base, ".wh..wh..opq"))
		return WHITEOUT_OPAQUE;
	const char *name = base + 4;
	if (!*name || streq(name, ".") || streq(name, ".."))
		return WHITEOUT_NONE;
	if (target)
		*target = xasprintf("%.*s%s", (int)(base - path), path, name);
	return WHITEOUT_FILE;
}

/* ---- store paths ------------------------------------------------------- */

static const char *digest_hex(const char *digest)
{
	return startswith(digest, "sha256:") ? digest + 7 : digest;
}

char *layer_dir(const char *diff_id)
{
	return xasprintf("%s/layers/%s/diff", orch_root(), digest_hex(diff_id));
}

bool layer_exists(const char *diff_id)
{
	_cleanup_free_ char *d = layer_dir(diff_id);
	return access(d, F_OK) == 0;
}

int64_t layer_size(const char *diff_id)
{
	/* Kept: a layer's name is its content's hash. */
	static struct keep kept;
	union kept v;
	if (keep_get(&kept, diff_id, &v))
		return v.num;
	_cleanup_free_ char *p =
	    xasprintf("%s/layers/%s/size", orch_root(), digest_hex(diff_id));
	_cleanup_free_ char *s = NULL;
	if (read_file(p, &s, NULL, NULL) < 0)
		return 0;
	int64_t size = strtoll(s, NULL, 10);
	keep_put(&kept, diff_id, (union kept){.num = size});
	return size;
}

/* Removes scratch directories whose owner died: an owner holds an flock
 * on its directory for as long as it lives, and creates and locks it
 * under a shared lock on tmp itself, which the sweep holds exclusively:
 * a directory it can lock is dead. */
static void tmp_sweep_locked(const char *base)
{
	DIR *d = opendir(base);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_close_ int fd =
		    openat(dirfd(d), de->d_name,
			   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
			continue;
		_cleanup_free_ char *p = path_join(base, de->d_name);
		struct orch_err e = {0};
		if (rm_rf(p, &e) < 0)
			log_warn("cleaning up: %s", e.msg);
	}
	closedir(d);
}

/* tmp itself, open to be locked, or -1. */
static int tmp_lock_open(const char *base)
{
	return open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

void store_tmp_sweep(void)
{
	_cleanup_free_ char *base = path_join(orch_root(), "tmp");
	_cleanup_close_ int lock = tmp_lock_open(base);
	if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) == 0)
		tmp_sweep_locked(base);
}

int store_tmpdir(const char *what, char **out, int *lock, struct orch_err *e)
{
	_cleanup_free_ char *base = path_join(orch_root(), "tmp");
	int r = mkdir_p(base, 0700, e);
	if (r < 0)
		return r;
	_cleanup_close_ int tl = tmp_lock_open(base);
	if (tl < 0)
		return err_sys(e, errno, "opening %s", base);
	if (flock(tl, LOCK_EX | LOCK_NB) == 0)
		tmp_sweep_locked(base);
	if (RETRY_EINTR(flock(tl, LOCK_SH)) < 0)
		return err_sys(e, errno, "locking %s", base);
	char *t = xasprintf("%s/%s-XXXXXX", base, what);
	if (!mkdtemp(t)) {
		r = err_sys(e, errno, "creating a directory in %s", base);
		free(t);
		return r;
	}
	int fd = open(t, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		r = err_sys(e, errno, "locking %s", t);
		if (fd >= 0)
			close(fd);
		rmdir(t);
		free(t);
		return r;
	}
	*out = t;
	*lock = fd;
	return 0;
}

/* ---- the decompress-and-hash pipeline ---------------------------------- */

struct pipeline {
	int fd;
	int keep_fd; /* the input is copied here as it is read, or -1 */
	int keep_errno;
	EVP_MD_CTX *blob, *diff;
	struct archive *outer, *inner;
	char inbuf[65536], midbuf[65536];
	int64_t tar_bytes, blob_bytes;
	char outer_err[512];
};

static void pipeline_keep(struct pipeline *p, const void *buf, size_t n)
{
	if (p->keep_fd >= 0 && !p->keep_errno &&
	    write_all(p->keep_fd, buf, n) < 0)
		p->keep_errno = errno;
}

static ssize_t outer_read(struct archive *a, void *data, const void **buf)
{
	struct pipeline *p = data;
	ssize_t n = RETRY_EINTR(read(p->fd, p->inbuf, sizeof(p->inbuf)));
	if (n < 0) {
		archive_set_error(a, errno, "reading: %s", strerror(errno));
		return -1;
	}
	EVP_DigestUpdate(p->blob, p->inbuf, (size_t)n);
	p->blob_bytes += n;
	pipeline_keep(p, p->inbuf, (size_t)n);
	*buf = p->inbuf;
	return n;
}

static ssize_t inner_read(struct archive *a, void *data, const void **buf)
{
	struct pipeline *p = data;
	la_ssize_t n =
	    archive_read_data(p->outer, p->midbuf, sizeof(p->midbuf));
	if (n < 0) {
		snprintf(p->outer_err, sizeof(p->outer_err), "%s",
			 archive_error_string(p->outer));
		archive_set_error(a, EIO, "%s", p->outer_err);
		return -1;
	}
	EVP_DigestUpdate(p->diff, p->midbuf, (size_t)n);
	p->tar_bytes += n;
	*buf = p->midbuf;
	return n;
}

static void pipeline_close(struct pipeline *p)
{
	if (p->inner)
		archive_read_free(p->inner);
	if (p->outer)
		archive_read_free(p->outer);
	EVP_MD_CTX_free(p->blob);
	EVP_MD_CTX_free(p->diff);
	if (p->fd >= 0)
		close(p->fd);
	free(p);
}

/* Takes fd over: pipeline_close closes it.  Every byte read from fd is
 * also written to keep_fd (unless -1). */
static int pipeline_open_fd(int fd, int keep_fd, const char *path,
			    struct pipeline **out, struct orch_err *e)
{
	struct pipeline *p = xcalloc(1, sizeof(*p));
	p->fd = fd;
	p->keep_fd = keep_fd;
	p->blob = EVP_MD_CTX_new();
	p->diff = EVP_MD_CTX_new();
	if (!p->blob || !p->diff)
		abort();
	EVP_DigestInit_ex(p->blob, EVP_sha256(), NULL);
	EVP_DigestInit_ex(p->diff, EVP_sha256(), NULL);
	p->outer = archive_read_new();
	p->inner = archive_read_new();
	if (!p->outer || !p->inner)
		abort();
	archive_read_support_filter_all(p->outer);
	archive_read_support_format_raw(p->outer);
	archive_read_support_format_tar(p->inner);
	struct archive_entry *ent;
	if (archive_read_open(p->outer, p, NULL, outer_read, NULL) !=
		ARCHIVE_OK ||
	    archive_read_next_header(p->outer, &ent) != ARCHIVE_OK) {
		int r = err_set(e, EINVAL, "reading %s: %s", path,
				archive_error_string(p->outer));
		pipeline_close(p);
		return r;
	}
	if (archive_read_open(p->inner, p, NULL, inner_read, NULL) !=
	    ARCHIVE_OK) {
		int r = err_set(e, EINVAL, "reading %s: %s", path,
				archive_error_string(p->inner));
		pipeline_close(p);
		return r;
	}
	*out = p;
	return 0;
}

static int pipeline_open(const char *path, struct pipeline **out,
			 struct orch_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "opening %s", path);
	return pipeline_open_fd(fd, -1, path, out, e);
}

/* Reads what follows the tar's end marker so that both digests cover the
 * whole input. */
static int pipeline_finish(struct pipeline *p, char blob[72], char diff[72],
			   struct orch_err *e)
{
	for (;;) {
		la_ssize_t n =
		    archive_read_data(p->outer, p->midbuf, sizeof(p->midbuf));
		if (n < 0)
			return err_set(e, EIO, "%s",
				       archive_error_string(p->outer));
		if (n == 0)
			break;
		EVP_DigestUpdate(p->diff, p->midbuf, (size_t)n);
		p->tar_bytes += n;
	}
	char buf[4096];
	for (;;) {
		ssize_t n = RETRY_EINTR(read(p->fd, buf, sizeof(buf)));
		if (n < 0)
			return err_sys(e, errno, "reading");
		if (n == 0)
			break;
		EVP_DigestUpdate(p->blob, buf, (size_t)n);
		p->blob_bytes += n;
		pipeline_keep(p, buf, (size_t)n);
	}
	if (p->keep_errno)
		return err_sys(e, p->keep_errno, "keeping a copy of the layer");
	unsigned char md[32];
	unsigned int len;
	EVP_MD_CTX *ctx[2] = {p->blob, p->diff};
	char *dst[2] = {blob, diff};
	for (int k = 0; k < 2; k++) {
		EVP_DigestFinal_ex(ctx[k], md, &len);
		strcpy(dst[k], "sha256:");
		hex32(md, dst[k] + 7);
	}
	return 0;
}

/* ---- writing entries beneath a root ------------------------------------ */

static int openat2_beneath(int rootfd, const char *path, int flags)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
		       RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	int fd;
	do
		fd = (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how,
				  sizeof(how));
	while (fd < 0 && errno == EINTR);
	return fd;
}

/* Opens directory dir (relative, cleaned) beneath rootfd, creating missing
 * components: tarballs may omit directory entries. */
static int open_dir_beneath(int rootfd, const char *dir, const char *entry,
			    struct orch_err *e)
{
	int fd = openat2_beneath(rootfd, dir, O_RDONLY | O_DIRECTORY);
	if (fd >= 0)
		return fd;
	if (errno == ELOOP)
		return err_set(e, ELOOP,
			       "entry %s: its path goes through a symlink "
			       "(writing through links is refused)",
			       entry);
	if (errno == EXDEV)
		return err_set(e, EXDEV, "entry %s: path escapes the layer",
			       entry);
	if (errno != ENOENT)
		return err_sys(e, errno, "entry %s: opening %s", entry, dir);
	_cleanup_free_ char *p = xstrdup(dir);
	int cur = openat2_beneath(rootfd, "", O_RDONLY | O_DIRECTORY);
	if (cur < 0)
		return err_sys(e, errno, "entry %s: opening the layer root",
			       entry);
	for (char *tok = strtok(p, "/"); tok; tok = strtok(NULL, "/")) {
		if (mkdirat(cur, tok, 0755) < 0 && errno != EEXIST) {
			int r = err_sys(e, errno, "entry %s: creating %s",
					entry, tok);
			close(cur);
			return r;
		}
		int next = openat2_beneath(cur, tok, O_RDONLY | O_DIRECTORY);
		int saved = errno;
		close(cur);
		if (next < 0)
			return err_sys(e, saved == ELOOP ? ELOOP : saved,
				       "entry %s: opening %s", entry, tok);
		cur = next;
	}
	return cur;
}

static void split_path(char *path, const char **dir, const char **base)
{
	char *slash = strrchr(path, '/');
	if (slash) {
		*slash = '\0';
		*dir = path;
		*base = slash + 1;
	} else {
		*dir = "";
		*base = path;
	}
}

/* Device nodes a layer may carry: Docker's default device allow-list.
 * Others are left out, so an image cannot smuggle a disk into a
 * container whose device policy is looser than expected. */
static bool device_allowed(mode_t type, dev_t dev)
{
	static const unsigned allowed[][2] = {{1, 3}, {1, 5}, {1, 7}, {1, 8},
					      {1, 9}, {5, 0}, {5, 1}, {5, 2}};
	if (type != AE_IFCHR)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(allowed); i++)
		if (major(dev) == allowed[i][0] && minor(dev) == allowed[i][1])
			return true;
	return false;
}

/* Makes room for a new entry named base in pfd: a later tar entry
 * replaces an earlier one, except a directory over a directory. */
static int clear_slot(int pfd, const char *base, bool want_dir,
		      const char *entry, struct orch_err *e)
{
	struct stat st;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0
				       : err_sys(e, errno, "entry %s", entry);
	if (S_ISDIR(st.st_mode)) {
		if (want_dir)
			return 1;
		/* The parent was opened without following links, so this
		 * path names exactly the directory being replaced. */
		_cleanup_free_ char *self =
		    xasprintf("/proc/self/fd/%d/%s", pfd, base);
		return rm_rf(self, e);
	}
	if (unlinkat(pfd, base, 0) < 0 && errno != ENOENT)
		return err_sys(e, errno, "entry %s: replacing", entry);
	return 0;
}

struct extract {
	int rootfd;
	bool overlay; /* a layer: whiteouts translated, devices filtered */
	/* Into a container (cp): links too, owners as this says. */
	const struct rt_tree_copy *copy;
	struct archive *a;
};

/* The owner an entry gets: the tar's, or in a copy the copy's (own) or
 * the tar's moved through its maps (nobody's ids outside them). */
static void owner_of(const struct extract *x, struct archive_entry *ent,
		     uid_t *uid, gid_t *gid)
{
	*uid = (uid_t)archive_entry_uid(ent);
	*gid = (gid_t)archive_entry_gid(ent);
	const struct rt_tree_copy *o = x->copy;
	if (!o)
		return;
	if (o->own) {
		*uid = o->uid;
		*gid = o->gid;
		return;
	}
	uint32_t u = 65534, g = 65534;
	if (o->ids) {
		if (!rt_idmap_find(o->ids->uid, o->ids->n_uid, *uid, false, &u))
			rt_idmap_find(o->ids->uid, o->ids->n_uid, 65534, false,
				      &u);
		if (!rt_idmap_find(o->ids->gid, o->ids->n_gid, *gid, false, &g))
			rt_idmap_find(o->ids->gid, o->ids->n_gid, 65534, false,
				      &g);
		*uid = u;
		*gid = g;
	}
}

static int set_meta(struct extract *x, int pfd, const char *base,
		    struct archive_entry *ent, bool is_link, const char *entry,
		    struct orch_err *e)
{
	uid_t uid;
	gid_t gid;
	owner_of(x, ent, &uid, &gid);
	if (fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(e, errno, "entry %s: changing owner", entry);
	/* After chown, which clears set-id bits. */
	if (!is_link &&
	    fchmodat(pfd, base, archive_entry_perm(ent) & 07777, 0) < 0)
		return err_sys(e, errno, "entry %s: changing mode", entry);
	struct timespec ts[2] = {
	    {archive_entry_atime(ent), archive_entry_atime_nsec(ent)},
	    {archive_entry_mtime(ent), archive_entry_mtime_nsec(ent)},
	};
	if (!archive_entry_atime_is_set(ent))
		ts[0] = ts[1];
	if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(e, errno, "entry %s: setting times", entry);
	return 0;
}

/* File capabilities are kept (ping needs them); other extended attributes,
 * trusted.overlay.* above all, could change how overlayfs reads the layer
 * and are dropped. */
static void set_xattrs(int fd, struct archive_entry *ent)
{
	const char *name;
	const void *value;
	size_t size;
	archive_entry_xattr_reset(ent);
	while (archive_entry_xattr_next(ent, &name, &value, &size) ==
	       ARCHIVE_OK)
		if (streq(name, "security.capability") ||
		    startswith(name, "user."))
			(void)fsetxattr(fd, name, value, size, 0);
}

static int write_data(struct extract *x, int fd, struct archive_entry *ent,
		      const char *entry, struct orch_err *e)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	for (;;) {
		int r = archive_read_data_block(x->a, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return err_set(e, EIO, "entry %s: %s", entry,
				       archive_error_string(x->a));
		const char *p = buf;
		while (size > 0) {
			ssize_t n = RETRY_EINTR(pwrite(fd, p, size, off));
			if (n < 0)
				return err_sys(e, errno, "entry %s: writing",
					       entry);
			p += n;
			off += n;
			size -= (size_t)n;
		}
	}
	/* A sparse file may end in a hole. */
	if (ftruncate(fd, archive_entry_size(ent)) < 0)
		return err_sys(e, errno, "entry %s: writing", entry);
	return 0;
}

static int extract_whiteout(struct extract *x, enum whiteout_kind kind,
			    const char *clean, const char *target,
			    const char *entry, struct orch_err *e)
{
	_cleanup_free_ char *path =
	    xstrdup(kind == WHITEOUT_OPAQUE ? clean : target);
	const char *dir, *base;
	split_path(path, &dir, &base);
	_cleanup_close_ int pfd = open_dir_beneath(x->rootfd, dir, entry, e);
	if (pfd < 0)
		return pfd;
	if (kind == WHITEOUT_OPAQUE) {
		if (fsetxattr(pfd, store_overlay_xattr("opaque"), "y", 1, 0) < 0)
			return err_sys(e, errno, "entry %s: marking opaque",
				       entry);
		return 0;
	}
	int r = clear_slot(pfd, base, false, entry, e);
	if (r < 0)
		return r;
	if (mknodat(pfd, base, S_IFCHR | 0600, makedev(0, 0)) < 0)
		return err_sys(e, errno, "entry %s: creating whiteout", entry);
	return 0;
}

static int extract_hardlink(struct extract *x, int pfd, const char *base,
			    const char *link, const char *entry,
			    struct orch_err *e)
{
	_cleanup_free_ char *tclean = NULL;
	if (tar_path_clean(link, &tclean) < 0 || !*tclean)
		return err_set(e, EXDEV,
			       "entry %s: hard link to %s points outside the "
			       "layer",
			       entry, link);
	const char *tdir, *tbase;
	split_path(tclean, &tdir, &tbase);
	_cleanup_close_ int tpfd =
	    openat2_beneath(x->rootfd, tdir, O_RDONLY | O_DIRECTORY);
	if (tpfd < 0)
		return err_sys(e, errno, "entry %s: hard link target %s", entry,
			       link);
	int r = clear_slot(pfd, base, false, entry, e);
	if (r < 0)
		return r;
	if (linkat(tpfd, tbase, pfd, base, 0) < 0)
		return err_sys(e, errno, "entry %s: hard link to %s", entry,
			       link);
	return 0;
}

static int extract_entry(struct extract *x, struct archive_entry *ent,
			 struct orch_err *e)
{
	const char *entry = archive_entry_pathname(ent);
	if (!entry)
		return err_set(e, EINVAL, "an entry has no name");
	_cleanup_free_ char *clean = NULL;
	if (tar_path_clean(entry, &clean) < 0)
		return err_set(e, EXDEV,
			       "entry %s: path escapes the layer (absolute or "
			       "with \"..\")",
			       entry);
	if (!*clean)
		return 0;
	mode_t type = archive_entry_filetype(ent);
	const char *link = archive_entry_hardlink(ent);
	if (x->overlay) {
		_cleanup_free_ char *target = NULL;
		enum whiteout_kind k = whiteout_parse(clean, &target);
		if (k != WHITEOUT_NONE)
			return extract_whiteout(x, k, clean, target, entry, e);
	} else if (!x->copy &&
		   (link || (type != AE_IFREG && type != AE_IFDIR))) {
		return 0;
	}
	_cleanup_free_ char *path = xstrdup(clean);
	const char *dir, *base;
	split_path(path, &dir, &base);
	_cleanup_close_ int pfd = open_dir_beneath(x->rootfd, dir, entry, e);
	if (pfd < 0)
		return pfd;
	struct stat was;
	if (x->copy && type != AE_IFDIR &&
	    fstatat(pfd, base, &was, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(was.st_mode))
		return err_set(e, EISDIR,
			       "entry %s: a directory is there (not replaced "
			       "by what is no directory)",
			       entry);
	if (link)
		return extract_hardlink(x, pfd, base, link, entry, e);

	int r = clear_slot(pfd, base, type == AE_IFDIR, entry, e);
	if (r < 0)
		return r;
	switch (type) {
	case AE_IFDIR:
		if (r == 0 && mkdirat(pfd, base, 0700) < 0)
			return err_sys(e, errno, "entry %s: creating", entry);
		break;
	case AE_IFREG: {
		_cleanup_close_ int fd = openat(
		    pfd, base,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return err_sys(e, errno, "entry %s: creating", entry);
		r = write_data(x, fd, ent, entry, e);
		if (r < 0)
			return r;
		if (x->overlay)
			set_xattrs(fd, ent);
		break;
	}
	case AE_IFLNK: {
		const char *target = archive_entry_symlink(ent);
		if (!target || symlinkat(target, pfd, base) < 0)
			return err_sys(e, target ? errno : EINVAL,
				       "entry %s: creating symlink", entry);
		return set_meta(x, pfd, base, ent, true, entry, e);
	}
	case AE_IFIFO:
		if (mknodat(pfd, base, S_IFIFO | 0600, 0) < 0)
			return err_sys(e, errno, "entry %s: creating", entry);
		break;
	case AE_IFCHR:
	case AE_IFBLK:
		if (!device_allowed(type, archive_entry_rdev(ent))) {
			log_debug("layer entry %s: device %lu:%lu left out",
				  entry,
				  (unsigned long)archive_entry_rdevmajor(ent),
				  (unsigned long)archive_entry_rdevminor(ent));
			return 0;
		}
		if (mknodat(pfd, base, type | 0600, archive_entry_rdev(ent)) <
		    0)
			return err_sys(e, errno, "entry %s: creating", entry);
		break;
	default:
		return 0; /* sockets make no sense in an image */
	}
	if (!x->overlay && !x->copy)
		return 0;
	return set_meta(x, pfd, base, ent, false, entry, e);
}

/* Runs the extraction of path into the directory rootfd. */
static int extract_all(struct pipeline *p, int rootfd, bool overlay,
		       const struct rt_tree_copy *copy, const char *path,
		       struct orch_err *e)
{
	struct extract x = {.rootfd = rootfd,
			    .overlay = overlay,
			    .copy = copy,
			    .a = p->inner};
	struct archive_entry *ent;
	for (;;) {
		int r = archive_read_next_header(p->inner, &ent);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return err_set(e, EIO, "reading %s: %s", path,
				       p->outer_err[0]
					   ? p->outer_err
					   : archive_error_string(p->inner));
		r = extract_entry(&x, ent, e);
		if (r < 0)
			return err_wrap(e, "extracting %s", path);
	}
}

/* The layer's archive, kept as it came (blob, blob.json) so that a push
 * sends the very bytes its digests name.  own is a file of the store's
 * own (a build's tarball), linked rather than copied; anything else is
 * copied as the pipeline reads it. */
static int keep_open(const char *tmp, const char *own, int *fd,
		     struct orch_err *e)
{
	_cleanup_free_ char *blob = path_join(tmp, "blob");
	*fd = -1;
	if (own && link(own, blob) == 0)
		return 0;
	*fd = open(blob, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (*fd < 0)
		return err_sys(e, errno, "creating %s", blob);
	return 0;
}

static int keep_record(const char *tmp, const char *digest, int64_t size,
		       int filter, const struct layer_expect *want,
		       struct orch_err *e)
{
	const char *comp = filter == ARCHIVE_FILTER_GZIP   ? "gzip"
			   : filter == ARCHIVE_FILTER_ZSTD ? "zstd"
			   : filter == ARCHIVE_FILTER_NONE ? "none"
							   : NULL;
	if (!comp)
		return 0; /* kept, but never pushed as it is */
	json_t *j = json_pack("{s:s,s:I,s:s}", "digest", digest, "size",
			      (json_int_t)size, "compression", comp);
	if (want && want->foreign_type) {
		json_object_set_new(j, "foreignType",
				    json_string(want->foreign_type));
		if (want->foreign_urls)
			json_object_set(j, "foreignUrls", want->foreign_urls);
	}
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	_cleanup_free_ char *path = path_join(tmp, "blob.json");
	int r = write_file_atomic(path, text, strlen(text), 0644, e);
	free(text);
	return r;
}

static int layer_extract_tmp(int fd, const char *path, const char *own,
			     const char *tmp, const struct layer_expect *want,
			     char diff[72], struct orch_err *e)
{
	_cleanup_close_ int in = fd;
	_cleanup_free_ char *diffdir = path_join(tmp, "diff");
	if (mkdir(diffdir, 0755) < 0)
		return err_sys(e, errno, "creating %s", diffdir);
	_cleanup_close_ int rootfd =
	    open(diffdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return err_sys(e, errno, "opening %s", diffdir);
	_cleanup_close_ int keep = -1;
	int r = keep_open(tmp, own, &keep, e);
	if (r < 0)
		return r;
	struct pipeline *p;
	r = pipeline_open_fd(move_fd(in), keep, path, &p, e);
	if (r < 0)
		return r;
	char blob[72];
	r = extract_all(p, rootfd, true, NULL, path, e);
	if (r == 0 && (r = pipeline_finish(p, blob, diff, e)) < 0)
		err_wrap(e, "reading %s", path);
	int64_t bytes = p->tar_bytes, blob_bytes = p->blob_bytes;
	int filter = archive_filter_code(p->outer, 0);
	pipeline_close(p);
	if (r < 0)
		return r;
	if (want && want->blob_digest && !streq(want->blob_digest, blob))
		return err_set(e, EBADMSG,
			       "layer %s: digest mismatch: expected %s, got %s",
			       path, want->blob_digest, blob);
	if (want && want->diff_id && !streq(want->diff_id, diff))
		return err_set(e, EBADMSG,
			       "layer %s: content digest (diff_id) mismatch: "
			       "expected %s, got %s",
			       path, want->diff_id, diff);
	_cleanup_free_ char *sizef = path_join(tmp, "size");
	_cleanup_free_ char *sz = xasprintf("%lld\n", (long long)bytes);
	r = write_file_atomic(sizef, sz, strlen(sz), 0644, e);
	if (r == 0)
		r = keep_record(tmp, blob, blob_bytes, filter, want, e);
	if (r < 0)
		return r;
	/* The tree must be on disk before the rename publishes it. */
	if (syncfs(rootfd) < 0)
		return err_sys(e, errno, "syncing %s", diffdir);
	return 0;
}

int layer_store(const char *path, const struct layer_expect *want,
		char **diff_id_out, struct orch_err *e)
{
	if (want && want->diff_id && layer_exists(want->diff_id)) {
		if (diff_id_out)
			*diff_id_out = xstrdup(want->diff_id);
		return 0;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "opening %s", path);
	return layer_store_fd(fd, path, want, diff_id_out, e);
}

int layer_store_own(int fd, const char *path, const char *own,
		    const struct layer_expect *want, char **diff_id_out,
		    struct orch_err *e)
{
	_cleanup_close_ int in = fd;
	if (want && want->diff_id && layer_exists(want->diff_id)) {
		if (diff_id_out)
			*diff_id_out = xstrdup(want->diff_id);
		return 0;
	}
	_cleanup_free_ char *layers = path_join(orch_root(), "layers");
	int r = mkdir_p(layers, 0700, e);
	if (r < 0)
		return r;
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int tmp_lock = -1;
	r = store_tmpdir("layer", &tmp, &tmp_lock, e);
	if (r < 0)
		return r;
	char diff[72];
	r = layer_extract_tmp(move_fd(in), path, own, tmp, want, diff, e);
	if (r < 0) {
		rm_rf(tmp, NULL);
		return r;
	}
	_cleanup_free_ char *final = path_join(layers, digest_hex(diff));
	if (rename(tmp, final) < 0) {
		int err = errno;
		rm_rf(tmp, NULL);
		/* Stored meanwhile by someone else: the same content. */
		if (err != EEXIST && err != ENOTEMPTY)
			return err_sys(e, err, "storing layer %s as %s", path,
				       final);
	} else {
		/* The name on disk too, before an image names the layer. */
		fsync_parent(final);
	}
	if (diff_id_out)
		*diff_id_out = xstrdup(diff);
	return 0;
}

int layer_store_fd(int fd, const char *path, const struct layer_expect *want,
		   char **diff_id_out, struct orch_err *e)
{
	return layer_store_own(fd, path, NULL, want, diff_id_out, e);
}

int layer_blob_get(const char *diff_id, struct layer_blob *b,
		   struct orch_err *e)
{
	memset(b, 0, sizeof(*b));
	_cleanup_free_ char *meta = xasprintf("%s/layers/%s/blob.json",
					      orch_root(), digest_hex(diff_id));
	json_error_t je;
	json_t *j = json_load_file(meta, 0, &je);
	const char *dg = json_string_value(json_object_get(j, "digest"));
	const char *comp = json_string_value(json_object_get(j, "compression"));
	json_int_t size = json_integer_value(json_object_get(j, "size"));
	if (!dg || !digest_valid(dg) || !comp || size < 0) {
		json_decref(j);
		return err_set(e, ENOENT,
			       "layer %s: its archive is not kept in the store "
			       "(stored by an older orch, or in a form that "
			       "cannot be sent): pull or build the image "
			       "again",
			       diff_id);
	}
	snprintf(b->digest, sizeof(b->digest), "%s", dg);
	snprintf(b->compression, sizeof(b->compression), "%s", comp);
	b->size = size;
	b->path =
	    xasprintf("%s/layers/%s/blob", orch_root(), digest_hex(diff_id));
	const char *ft = json_string_value(json_object_get(j, "foreignType"));
	if (ft) {
		b->foreign_type = xstrdup(ft);
		b->foreign_urls =
		    json_incref(json_object_get(j, "foreignUrls"));
	}
	json_decref(j);
	return 0;
}

void layer_blob_clear(struct layer_blob *b)
{
	free(b->path);
	free(b->foreign_type);
	json_decref(b->foreign_urls);
	memset(b, 0, sizeof(*b));
}

int archive_unpack_plain(const char *path, const char *dest, struct orch_err *e)
{
	_cleanup_close_ int rootfd =
	    open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return err_sys(e, errno, "opening %s", dest);
	struct pipeline *p;
	int r = pipeline_open(path, &p, e);
	if (r < 0)
		return r;
	r = extract_all(p, rootfd, false, NULL, path, e);
	pipeline_close(p);
	return r;
}

int rt_tree_untar(int fd, int dfd, const struct rt_tree_copy *o,
		  struct orch_err *e)
{
	struct pipeline *p;
	int in = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (in < 0)
		return err_sys(e, errno, "reading the tar");
	int r = pipeline_open_fd(in, -1, "the tar", &p, e);
	if (r < 0)
		return r;
	r = extract_all(p, dfd, false, o, "the tar", e);
	pipeline_close(p);
	return r;
}
