/* Layers from overlay upper directories (builds, commits): the upper
 * tree written as a tar (overlay whiteouts become OCI ones) and stored
 * like any other layer. */
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

/* ---- layers from overlay upper directories ------------------------------ */

struct tar_writer {
	struct archive *a;
	struct archive_entry_linkresolver *links;
	size_t entries;
	uint32_t id_base; /* the upper holds a range's ids from here */
	bool whiteouts;	  /* an upper directory's: made OCI ones */
};

static int tw_write(struct tar_writer *w, struct archive_entry *ent, int fd,
		    const char *path, struct orch_err *e)
{
	struct archive_entry *sparse = NULL;
	archive_entry_linkify(w->links, &ent, &sparse);
	if (!ent)
		return 0; /* held back by the resolver: none with pax */
	if (archive_write_header(w->a, ent) < ARCHIVE_WARN)
		return err_set(e, EIO, "adding %s to the layer: %s", path,
			       archive_error_string(w->a));
	w->entries++;
	if (fd < 0 || archive_entry_size(ent) == 0)
		return 0;
	char buf[65536];
	for (;;) {
		ssize_t n = RETRY_EINTR(read(fd, buf, sizeof(buf)));
		if (n < 0)
			return err_sys(e, errno, "reading %s", path);
		if (n == 0)
			return 0;
		if (archive_write_data(w->a, buf, (size_t)n) < 0)
			return err_set(e, EIO, "adding %s to the layer: %s",
				       path, archive_error_string(w->a));
	}
}

static struct archive_entry *entry_for(const struct tar_writer *w,
				       const char *rel, const struct stat *st)
{
	struct archive_entry *ent = archive_entry_new();
	if (!ent)
		abort();
	archive_entry_copy_stat(ent, st);
	archive_entry_set_pathname(ent, rel);
	/* A remapped container's files: the layer keeps the image's ids. */
	uint32_t b = w->id_base;
	if (b && st->st_uid >= b && st->st_uid - b < RT_IDRANGE_SIZE)
		archive_entry_set_uid(ent, st->st_uid - b);
	if (b && st->st_gid >= b && st->st_gid - b < RT_IDRANGE_SIZE)
		archive_entry_set_gid(ent, st->st_gid - b);
	return ent;
}

static int tar_dir(struct tar_writer *w, int dfd, const char *prefix,
		   struct orch_err *e);

/* One entry of the upper directory: overlay whiteouts (0/0 character
 * devices) become ".wh." files, opaque directories get ".wh..wh..opq". */
static int tar_entry(struct tar_writer *w, int dfd, const char *name,
		     const char *prefix, struct orch_err *e)
{
	_cleanup_free_ char *rel =
	    *prefix ? xasprintf("%s/%s", prefix, name) : xstrdup(name);
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(e, errno, "reading %s", rel);
	struct archive_entry *ent;
	int r = 0;
	if (w->whiteouts && S_ISCHR(st.st_mode) &&
	    st.st_rdev == makedev(0, 0)) {
		_cleanup_free_ char *wh =
		    *prefix ? xasprintf("%s/.wh.%s", prefix, name)
			    : xasprintf(".wh.%s", name);
		struct stat z = {.st_mode = S_IFREG | 0644,
				 .st_mtim = st.st_mtim};
		ent = entry_for(w, wh, &z);
		r = tw_write(w, ent, -1, rel, e);
		archive_entry_free(ent);
		return r;
	}
	if (S_ISSOCK(st.st_mode))
		return 0;
	ent = entry_for(w, rel, &st);
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlinkat(dfd, name, target, sizeof(target) - 1);
		if (n < 0) {
			archive_entry_free(ent);
			return err_sys(e, errno, "reading %s", rel);
		}
		target[n] = '\0';
		archive_entry_copy_symlink(ent, target);
	}
	_cleanup_close_ int fd = -1;
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
		fd = openat(dfd, name,
			    O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
				(S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
		if (fd < 0) {
			archive_entry_free(ent);
			return err_sys(e, errno, "opening %s", rel);
		}
		char cap[256];
		ssize_t n =
		    fgetxattr(fd, "security.capability", cap, sizeof(cap));
		if (n > 0)
			archive_entry_xattr_add_entry(
			    ent, "security.capability", cap, (size_t)n);
	}
	r = tw_write(w, ent, S_ISREG(st.st_mode) ? fd : -1, rel, e);
	archive_entry_free(ent);
	if (r < 0 || !S_ISDIR(st.st_mode))
		return r;
	char v[8];
	ssize_t n = w->whiteouts ? fgetxattr(fd, store_overlay_xattr("opaque"),
					     v, sizeof(v))
				 : -1;
	if (n == 1 && v[0] == 'y') {
		_cleanup_free_ char *opq = xasprintf("%s/.wh..wh..opq", rel);
		struct stat z = {.st_mode = S_IFREG | 0644,
				 .st_mtim = st.st_mtim};
		ent = entry_for(w, opq, &z);
		r = tw_write(w, ent, -1, rel, e);
		archive_entry_free(ent);
		if (r < 0)
			return r;
	}
	return tar_dir(w, fd, rel, e);
}

/* The entries of a directory in name order, so that the same tree always
 * gives the same tar and digest. */
static int tar_dir(struct tar_writer *w, int dfd, const char *prefix,
		   struct orch_err *e)
{
	int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
	if (!d) {
		int r = err_sys(e, errno, "reading %s", *prefix ? prefix : "/");
		if (dup >= 0)
			close(dup);
		return r;
	}
	_cleanup_strv_ char **names = xcalloc(1, sizeof(char *));
	struct dirent *de;
	while ((de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			strv_push(&names, de->d_name);
	closedir(d);
	strv_sort(names);
	for (size_t i = 0; names[i]; i++) {
		int r = tar_entry(w, dfd, names[i], prefix, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int tar_write(int dfd, const char *name, int out, uint32_t id_base,
		     bool whiteouts, size_t *entries, struct orch_err *e);

static int write_upper_tar(const char *upper, uint32_t id_base,
			   const char *tarpath, size_t *entries,
			   struct orch_err *e)
{
	_cleanup_close_ int ufd =
	    open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ufd < 0)
		return err_sys(e, errno, "opening %s", upper);
	_cleanup_close_ int out =
	    open(tarpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return err_sys(e, errno, "creating %s", tarpath);
	return tar_write(ufd, NULL, out, id_base, true, entries, e);
}

/* The tar of name in dfd (NULL: what dfd holds) written to out. */
static int tar_write(int dfd, const char *name, int out, uint32_t id_base,
		     bool whiteouts, size_t *entries, struct orch_err *e)
{
	struct tar_writer w = {.a = archive_write_new(),
			       .links = archive_entry_linkresolver_new(),
			       .id_base = id_base,
			       .whiteouts = whiteouts};
	if (!w.a || !w.links)
		abort();
	archive_write_set_format_pax_restricted(w.a);
	archive_entry_linkresolver_set_strategy(
	    w.links, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	int r = 0;
	if (archive_write_open_fd(w.a, out) != ARCHIVE_OK)
		r = err_set(e, EIO, "writing a tar: %s",
			    archive_error_string(w.a));
	if (r == 0)
		r = name ? tar_entry(&w, dfd, name, "", e) : tar_dir(&w, dfd, "", e);
	if (r == 0 && archive_write_close(w.a) != ARCHIVE_OK)
		r = err_set(e, EIO, "writing a tar: %s",
			    archive_error_string(w.a));
	archive_write_free(w.a);
	archive_entry_linkresolver_free(w.links);
	if (entries)
		*entries = w.entries;
	return r;
}

int rt_tree_tar(int dfd, const char *name, int out, uint32_t id_base,
		struct orch_err *e)
{
	return tar_write(dfd, streq(name, ".") ? NULL : name, out, id_base,
			 false, NULL, e);
}

int rt_layer_from_upper(const char *upper, uint32_t id_base, char **diff_id,
			struct orch_err *e)
{
	*diff_id = NULL;
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int tmp_lock = -1;
	int r = store_tmpdir("upper", &tmp, &tmp_lock, e);
	if (r < 0)
		return r;
	_cleanup_free_ char *tarpath = path_join(tmp, "layer.tar");
	size_t entries = 0;
	r = write_upper_tar(upper, id_base, tarpath, &entries, e);
	int fd =
	    r == 0 && entries > 0 ? open(tarpath, O_RDONLY | O_CLOEXEC) : -1;
	if (r == 0 && entries > 0)
		r = fd < 0 ? err_sys(e, errno, "opening %s", tarpath)
			   : layer_store_own(fd, tarpath, tarpath, NULL,
					     diff_id, e);
	rm_rf(tmp, NULL);
	if (r < 0)
		return err_wrap(e, "making a layer of %s", upper);
	return 0;
}
