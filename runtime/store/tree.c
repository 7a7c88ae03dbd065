/* Directory trees of the store: walked, copied, and given to other ids.
 *
 * A volume is filled by copying an image's content; a rootless orch, which
 * may not idmap a mount, gives a container of its own user namespace
 * (keep-id) copies of the image's layers whose owners went through the
 * container's map, so that each file shows in the container with the
 * image's ids.  Links are never followed. */
#include "runtime/store/store_impl.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

void rt_ids_base(struct rt_ids *ids, uint32_t base)
{
	*ids = (struct rt_ids){.n_uid = 1, .n_gid = 1};
	ids->uid[0] = ids->gid[0] = (struct rt_idmap){0, base, RT_IDRANGE_SIZE};
}

bool rt_idmap_find(const struct rt_idmap *m, size_t n, uint32_t id, bool back,
		   uint32_t *out)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t from = back ? m[i].outside : m[i].inside;
		uint32_t to = back ? m[i].inside : m[i].outside;
		if (id >= from && id - from < m[i].count) {
			*out = to + (id - from);
			return true;
		}
	}
	return false;
}

int dir_each(int dfd, entry_fn fn, void *arg, struct orch_err *e)
{
	int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup < 0 ? NULL : fdopendir(dup);
	if (!d) {
		if (dup >= 0)
			close(dup);
		return err_sys(e, errno, "reading a directory");
	}
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		const char *n = de->d_name;
		if (streq(n, ".") || streq(n, ".."))
			continue;
		struct stat st;
		r = fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0
			    ? err_sys(e, errno, "reading %s", n)
			    : fn(dfd, n, &st, arg, e);
	}
	closedir(d);
	return r;
}

struct copy {
	int dfd;
	const struct rt_tree_copy *o;
	int depth;
};

/* An owner as the copy gets it: through the map when there is one (an
 * id it does not hold stays). */
static uint32_t copy_id(const struct rt_idmap *m, size_t n, bool back,
			uint32_t id)
{
	uint32_t out = id;
	return m && rt_idmap_find(m, n, id, back, &out) ? out : id;
}

static int copy_meta(int dfd, const char *name, const struct stat *st,
		     const struct rt_tree_copy *o, struct orch_err *e)
{
	const struct rt_ids *ids = o->ids;
	uid_t u = o->own ? o->uid
		  : ids	 ? copy_id(ids->uid, ids->n_uid, o->back, st->st_uid)
			 : st->st_uid;
	gid_t g = o->own ? o->gid
		  : ids	 ? copy_id(ids->gid, ids->n_gid, o->back, st->st_gid)
			 : st->st_gid;
	if (fchownat(dfd, name, u, g, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(e, errno, "copying %s: owner", name);
	/* After chown, which drops set-id bits. */
	if (!S_ISLNK(st->st_mode) &&
	    fchmodat(dfd, name, st->st_mode & 07777, 0) < 0)
		return err_sys(e, errno, "copying %s: mode", name);
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(e, errno, "copying %s: times", name);
	return 0;
}

/* A layer's extended attributes (overlayfs's opaque marks, file
 * capabilities) go with it. */
static int copy_xattrs(int sfd, const char *sn, int dfd, const char *dn,
		       struct orch_err *e)
{
	_cleanup_free_ char *sp = xasprintf("/proc/self/fd/%d/%s", sfd, sn);
	_cleanup_free_ char *dp = xasprintf("/proc/self/fd/%d/%s", dfd, dn);
	char names[4096];
	ssize_t len = llistxattr(sp, names, sizeof(names));
	if (len < 0)
		return errno == ENOTSUP ? 0 : err_sys(e, errno, "copying %s: attributes", sn);
	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(names + i) + 1) {
		char val[4096];
		ssize_t vl = lgetxattr(sp, names + i, val, sizeof(val));
		if (vl < 0 || lsetxattr(dp, names + i, val, (size_t)vl, 0) < 0)
			return err_sys(e, errno, "copying %s: attribute %s", sn,
				       names + i);
	}
	return 0;
}

static int copy_entry(int sfd, const char *n, const struct stat *st,
		      void *arg, struct orch_err *e);

/* sn of sfd (st) as dn in dfd, depth levels down. */
static int copy_one(int sfd, const char *sn, const struct stat *st, int dfd,
		    const char *dn, const struct rt_tree_copy *o, int depth,
		    struct orch_err *e)
{
	int r = 0;
	if (S_ISDIR(st->st_mode)) {
		if (depth >= 512)
			return err_set(e, ELOOP, "copying %s: nested too deep", sn);
		if (mkdirat(dfd, dn, 0700) < 0 && errno != EEXIST)
			return err_sys(e, errno, "copying %s", sn);
		_cleanup_close_ int s2 =
		    openat(sfd, sn, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		_cleanup_close_ int d2 =
		    openat(dfd, dn, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (s2 < 0 || d2 < 0)
			return err_sys(e, errno, "copying %s", sn);
		struct copy below = {d2, o, depth + 1};
		r = dir_each(s2, copy_entry, &below, e);
	} else if (S_ISREG(st->st_mode)) {
		_cleanup_close_ int in =
		    openat(sfd, sn, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		_cleanup_close_ int out =
		    openat(dfd, dn,
			   O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
			       (o->replace ? O_TRUNC : O_EXCL),
			   0600);
		if (in < 0 || out < 0)
			return err_sys(e, errno, "copying %s", sn);
		r = fd_copy(in, out, sn, e);
	} else if (S_ISLNK(st->st_mode)) {
		char target[4096];
		ssize_t len = readlinkat(sfd, sn, target, sizeof(target) - 1);
		if (len < 0)
			return err_sys(e, errno, "copying %s", sn);
		target[len] = '\0';
		if (o->replace)
			unlinkat(dfd, dn, 0);
		if (symlinkat(target, dfd, dn) < 0)
			return err_sys(e, errno, "copying %s", sn);
	} else if (S_ISFIFO(st->st_mode)) {
		if (mknodat(dfd, dn, S_IFIFO | 0600, 0) < 0 &&
		    !(o->replace && errno == EEXIST))
			return err_sys(e, errno, "copying %s", sn);
	} else if (o->layer && S_ISCHR(st->st_mode) && st->st_rdev == 0) {
		/* overlayfs's whiteout, which a user namespace may make. */
		if (mknodat(dfd, dn, S_IFCHR | 0600, 0) < 0)
			return err_sys(e, errno, "copying %s", sn);
	} else {
		return 0; /* devices and sockets stay behind */
	}
	if (r == 0 && o->layer && !S_ISLNK(st->st_mode))
		r = copy_xattrs(sfd, sn, dfd, dn, e);
	return r < 0 ? r : copy_meta(dfd, dn, st, o, e);
}

static int copy_entry(int sfd, const char *n, const struct stat *st,
		      void *arg, struct orch_err *e)
{
	const struct copy *c = arg;
	return copy_one(sfd, n, st, c->dfd, n, c->o, c->depth, e);
}

int rt_tree_copy(int sfd, int dfd, const struct rt_tree_copy *o,
		 struct orch_err *e)
{
	struct copy top = {dfd, o, 0};
	return dir_each(sfd, copy_entry, &top, e);
}

int rt_tree_copy_entry(int sfd, const char *sname, int dfd, const char *dname,
		       const struct rt_tree_copy *o, struct orch_err *e)
{
	struct stat st;
	if (fstatat(sfd, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(e, errno, "%s", sname);
	return copy_one(sfd, sname, &st, dfd, dname, o, 0, e);
}

/* The key of a map, for the copies' names. */
static void ids_key(const struct rt_ids *ids, char out[17])
{
	struct strbuf sb;
	sb_init(&sb);
	for (size_t i = 0; i < ids->n_uid; i++)
		sb_printf(&sb, "u%u:%u:%u,", ids->uid[i].inside,
			  ids->uid[i].outside, ids->uid[i].count);
	for (size_t i = 0; i < ids->n_gid; i++)
		sb_printf(&sb, "g%u:%u:%u,", ids->gid[i].inside,
			  ids->gid[i].outside, ids->gid[i].count);
	char hex[65];
	sha256_hex(sb.buf, sb.len, hex);
	sb_free(&sb);
	memcpy(out, hex, 16);
	out[16] = '\0';
}

/* <layer>/ids-<key> next to <layer>/diff: made in the store's scratch
 * space and renamed into place, so a half-made copy is never used and two
 * containers making the same one both end with it. */
static int layer_shifted(const char *lower, const struct rt_ids *ids,
			 const char *key, char **out, struct orch_err *e)
{
	_cleanup_free_ char *layer = xstrdup(lower);
	char *slash = strrchr(layer, '/');
	if (!slash || !streq(slash, "/diff"))
		return err_set(e, EINVAL, "%s is not a layer of the store", lower);
	*slash = '\0';
	_cleanup_free_ char *dst = xasprintf("%s/ids-%s", layer, key);
	if (access(dst, F_OK) == 0) {
		*out = move_ptr(dst);
		return 0;
	}
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int tmp_lock = -1;
	int r = store_tmpdir("ids", &tmp, &tmp_lock, e);
	if (r < 0)
		return r;
	_cleanup_close_ int sfd =
	    open(lower, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (sfd < 0 || fstat(sfd, &st) < 0)
		r = err_sys(e, errno, "opening %s", lower);
	struct rt_tree_copy o = {.ids = ids, .layer = true};
	if (r == 0)
		r = rt_tree_copy(sfd, tmp_lock, &o, e);
	if (r == 0)
		r = copy_xattrs(sfd, ".", tmp_lock, ".", e);
	if (r == 0)
		r = copy_meta(tmp_lock, ".", &st, &o, e);
	if (r == 0 && rename(tmp, dst) < 0 && errno != EEXIST &&
	    errno != ENOTEMPTY)
		r = err_sys(e, errno, "renaming %s to %s", tmp, dst);
	if (access(tmp, F_OK) == 0) /* failed, or made by another already */
		rm_rf(tmp, NULL);
	if (r < 0)
		return err_wrap(e, "copying layer %s for a container's ids", layer);
	*out = move_ptr(dst);
	return 0;
}

int rt_layers_shifted(char *const *lowers, const struct rt_ids *ids,
		      char ***out, struct orch_err *e)
{
	char key[17];
	ids_key(ids, key);
	char **v = xcalloc(strv_len(lowers) + 1, sizeof(char *));
	for (size_t i = 0; lowers[i]; i++) {
		int r = layer_shifted(lowers[i], ids, key, &v[i], e);
		if (r < 0) {
			strv_free(v);
			return r;
		}
	}
	*out = v;
	return 0;
}
