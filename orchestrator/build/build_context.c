/* The build context and the file operations of COPY, ADD and WORKDIR:
 * resolving sources without leaving their root, digesting their content
 * for the layer cache, and copying or unpacking them into an image's
 * root.  The copying side runs in the builder's child process, chrooted
 * into the step's overlay, so destination paths (and symlinks already in
 * the image) resolve inside the image and never on the host. */
#include "orchestrator/build/build.h"

#include "common/lazylib/lazylib.h"
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

struct build_ctx {
	char *dir;
	int fd;
	struct df_ignore *ig;
};

int build_ctx_open(const char *dir, struct build_ctx **out, struct orch_err *e)
{
	_cleanup_close_ int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "opening build context %s", dir);
	_cleanup_free_ char *ignore_path = path_join(dir, ".dockerignore");
	_cleanup_free_ char *text = NULL;
	if (access(ignore_path, F_OK) == 0) {
		int r = read_file(ignore_path, &text, NULL, e);
		if (r < 0)
			return r;
	}
	struct df_ignore *ig;
	int r = df_ignore_parse(text, &ig, e);
	if (r < 0)
		return r;
	struct build_ctx *c = xcalloc(1, sizeof(*c));
	c->dir = xstrdup(dir);
	c->fd = move_fd(fd);
	c->ig = ig;
	*out = c;
	return 0;
}

void build_ctx_free(struct build_ctx *c)
{
	if (!c)
		return;
	free(c->dir);
	if (c->fd >= 0)
		close(c->fd);
	df_ignore_free(c->ig);
	free(c);
}

int build_ctx_fd(const struct build_ctx *c)
{
	return c->fd;
}
const struct df_ignore *build_ctx_ignore(const struct build_ctx *c)
{
	return c->ig;
}
const char *build_ctx_dir(const struct build_ctx *c)
{
	return c->dir;
}

/* ---- source resolution ------------------------------------------------- */

static int openat2_path(int dirfd, const char *path, uint64_t flags,
			uint64_t resolve)
{
	struct open_how how = {.flags = flags | O_CLOEXEC, .resolve = resolve};
	int fd;
	do
		fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	return fd;
}

/* Path of fd relative to root's path; NULL when fd is not under it. */
static char *rel_of_fd(int rootfd, int fd)
{
	char a[64], b[64], root[PATH_MAX], p[PATH_MAX];
	snprintf(a, sizeof(a), "/proc/self/fd/%d", rootfd);
	snprintf(b, sizeof(b), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(a, root, sizeof(root) - 1);
	ssize_t m = readlink(b, p, sizeof(p) - 1);
	if (n < 0 || m < 0)
		return NULL;
	root[n] = 0;
	p[m] = 0;
	if (streq(root, "/"))
		return xstrdup(p + 1);
	size_t len = (size_t)n;
	if (strncmp(p, root, len) != 0 || (p[len] && p[len] != '/'))
		return NULL;
	return xstrdup(p[len] ? p + len + 1 : "");
}

/* Lexically cleans a source path into components; ".." above the root is
 * an error in a context (it would leave it) and stays at the root in an
 * image, as a shell would. */
static int clean_components(const char *src, bool context, char ***out,
			    struct orch_err *e)
{
	bool above;
	char **parts = path_components(src, &above);
	if (above && context) {
		strv_free(parts);
		return err_set(e, EPERM, "%s: path outside the build context",
			       src);
	}
	*out = parts;
	return 0;
}

static bool has_wildcard(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

static char *join_rel(const char *a, const char *b)
{
	return *a ? xasprintf("%s/%s", a, b) : xstrdup(b);
}

/* Names in directory rel under rootfd, sorted. */
static int list_dir(int rootfd, const char *rel, uint64_t resolve, char ***out,
		    struct orch_err *e)
{
	int fd = openat2_path(rootfd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY,
			      resolve);
	if (fd < 0)
		return err_sys(e, errno, "listing %s", *rel ? rel : ".");
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return err_sys(e, errno, "listing %s", rel);
	}
	char **v = xcalloc(1, sizeof(char *));
	struct dirent *de;
	while ((de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			strv_push(&v, de->d_name);
	closedir(d);
	strv_sort(v);
	*out = v;
	return 0;
}

int build_resolve(int rootfd, bool context, const struct df_ignore *ig,
		  const char *src, char ***out, struct orch_err *e)
{
	uint64_t resolve = context ? RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS
				   : RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	_cleanup_strv_ char **parts = NULL;
	int r = clean_components(src, context, &parts, e);
	if (r < 0)
		return r;
	/* Expand wildcards component by component. */
	_cleanup_strv_ char **cands = NULL;
	strv_push(&cands, "");
	for (size_t i = 0; parts[i]; i++) {
		char **next = xcalloc(1, sizeof(char *));
		for (size_t j = 0; cands[j]; j++) {
			if (!has_wildcard(parts[i])) {
				char *p = join_rel(cands[j], parts[i]);
				strv_push(&next, p);
				free(p);
				continue;
			}
			char **names = NULL;
			if (list_dir(rootfd, cands[j], resolve, &names, e) < 0)
				continue; /* not a directory: no match */
			for (size_t k = 0; names[k]; k++) {
				if (fnmatch(parts[i], names[k], 0) != 0)
					continue;
				char *p = join_rel(cands[j], names[k]);
				if (!context || !df_ignore_match(ig, p))
					strv_push(&next, p);
				free(p);
			}
			strv_free(names);
		}
		strv_free(cands);
		cands = next;
	}
	err_clear(e);
	if (!cands[0])
		return err_set(e, ENOENT, "%s: no source files match", src);
	char **res = xcalloc(1, sizeof(char *));
	for (size_t j = 0; cands[j]; j++) {
		_cleanup_close_ int fd = openat2_path(
		    rootfd, *cands[j] ? cands[j] : ".", O_PATH, resolve);
		if (fd < 0) {
			int err = errno;
			strv_free(res);
			if (err == EXDEV || err == ELOOP)
				return err_set(e, EPERM,
					       "%s: a symlink points outside "
					       "the build context",
					       src);
			return err_sys(e, err, "%s: not found in the %s", src,
				       context ? "build context" : "stage");
		}
		char *real = rel_of_fd(rootfd, fd);
		if (!real) {
			strv_free(res);
			return err_set(e, EPERM,
				       "%s: resolves outside its root", src);
		}
		if (context && *real && df_ignore_match(ig, real)) {
			free(real);
			strv_free(res);
			return err_set(e, ENOENT,
				       "%s: excluded by .dockerignore", src);
		}
		strv_push(&res, real);
		free(real);
	}
	*out = res;
	return 0;
}

int build_ctx_resolve(struct build_ctx *c, const char *src, char ***out,
		      struct orch_err *e)
{
	return build_resolve(c->fd, true, c->ig, src, out, e);
}

/* ---- walking a source tree --------------------------------------------- */

struct walker {
	int rootfd;
	bool context; /* refuse escaping symlinks, honour .dockerignore */
	const struct df_ignore *ig;
	bool ig_exceptions;
	/* Called for every entry, parents before children.  rel is relative
	 * to the root, sub to the source ("" for the source itself). */
	int (*visit)(struct walker *w, int dirfd, const char *name,
		     const char *rel, const char *sub, const struct stat *st,
		     const char *link, struct orch_err *e);
	void *data;
};

/* Whether a symlink at rel with target stays inside the root. */
static bool link_inside(const char *rel, const char *target)
{
	if (target[0] == '/')
		return false;
	_cleanup_free_ char *dir = xstrdup(rel);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	else
		dir[0] = 0;
	_cleanup_free_ char *joined = xasprintf("%s/%s", dir, target);
	int depth = 0;
	_cleanup_free_ char *copy = xstrdup(joined);
	char *save = NULL;
	for (char *c = strtok_r(copy, "/", &save); c;
	     c = strtok_r(NULL, "/", &save)) {
		if (streq(c, "."))
			continue;
		if (streq(c, "..")) {
			if (--depth < 0)
				return false;
		} else {
			depth++;
		}
	}
	return true;
}

static int walk(struct walker *w, int dirfd, const char *name, const char *rel,
		const char *sub, struct orch_err *e)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(e, errno, "reading %s", rel);
	bool ignored = w->context && *sub && df_ignore_match(w->ig, rel);
	if (ignored && !(S_ISDIR(st.st_mode) && w->ig_exceptions))
		return 0;
	char link[PATH_MAX] = "";
	if (S_ISLNK(st.st_mode)) {
		ssize_t n = readlinkat(dirfd, name, link, sizeof(link) - 1);
		if (n < 0)
			return err_sys(e, errno, "reading link %s", rel);
		link[n] = 0;
		if (w->context && !link_inside(rel, link))
			return err_set(e, EPERM,
				       "%s: symlink to %s points outside the "
				       "build context",
				       rel, link);
	}
	if (!ignored) {
		int r = w->visit(w, dirfd, name, rel, sub, &st,
				 S_ISLNK(st.st_mode) ? link : NULL, e);
		if (r < 0)
			return r;
	}
	if (!S_ISDIR(st.st_mode))
		return 0;
	_cleanup_close_ int fd = openat(
	    dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "opening %s", rel);
	int lfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
	if (!d) {
		if (lfd >= 0)
			close(lfd);
		return err_sys(e, errno, "listing %s", rel);
	}
	_cleanup_strv_ char **names = xcalloc(1, sizeof(char *));
	struct dirent *de;
	while ((de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			strv_push(&names, de->d_name);
	closedir(d);
	strv_sort(names);
	for (size_t i = 0; names[i]; i++) {
		_cleanup_free_ char *crel = join_rel(rel, names[i]);
		_cleanup_free_ char *csub = join_rel(sub, names[i]);
		int r = walk(w, fd, names[i], crel, csub, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Walks the source rel (a resolved path) under the walker's root. */
static int walk_source(struct walker *w, const char *rel, struct orch_err *e)
{
	if (!*rel)
		return walk(w, w->rootfd, ".", "", "", e);
	_cleanup_free_ char *dir = xstrdup(rel);
	char *slash = strrchr(dir, '/');
	const char *name = rel;
	_cleanup_close_ int dfd = -1;
	if (slash) {
		*slash = 0;
		name = slash + 1;
		dfd = openat2_path(w->rootfd, dir, O_PATH | O_DIRECTORY,
				   w->context ? RESOLVE_BENEATH
					      : RESOLVE_IN_ROOT);
		if (dfd < 0)
			return err_sys(e, errno, "opening %s", dir);
	}
	return walk(w, slash ? dfd : w->rootfd, name, rel, "", e);
}

/* ---- digests ------------------------------------------------------------- */

static int hash_file(int dirfd, const char *name, char out[65],
		     struct orch_err *e)
{
	_cleanup_close_ int fd =
	    openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "reading %s", name);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	char buf[65536];
	for (;;) {
		ssize_t n = RETRY_EINTR(read(fd, buf, sizeof(buf)));
		if (n < 0) {
			EVP_MD_CTX_free(ctx);
			return err_sys(e, errno, "reading %s", name);
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	}
	unsigned char md[32];
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	hex32(md, out);
	return 0;
}

static int digest_visit(struct walker *w, int dirfd, const char *name,
			const char *rel, const char *sub, const struct stat *st,
			const char *link, struct orch_err *e)
{
	(void)rel;
	struct strbuf *sb = w->data;
	sb_printf(sb, "%s\n%o\n", sub, (unsigned)st->st_mode);
	if (link) {
		sb_printf(sb, "->%s\n", link);
	} else if (S_ISREG(st->st_mode)) {
		char h[65];
		int r = hash_file(dirfd, name, h, e);
		if (r < 0)
			return r;
		sb_printf(sb, "%lld %s\n", (long long)st->st_size, h);
	}
	return 0;
}

int build_ctx_digest(struct build_ctx *c, char *const *rels, char out[65],
		     struct orch_err *e)
{
	struct strbuf sb;
	sb_init(&sb);
	struct walker w = {.rootfd = c->fd,
			   .context = true,
			   .ig = c->ig,
			   .ig_exceptions = df_ignore_has_exceptions(c->ig),
			   .visit = digest_visit,
			   .data = &sb};
	for (size_t i = 0; rels[i]; i++) {
		sb_printf(&sb, "source %s\n", rels[i]);
		int r = walk_source(&w, rels[i], e);
		if (r < 0) {
			sb_free(&sb);
			return r;
		}
	}
	sha256_hex(sb.buf, sb.len, out);
	sb_free(&sb);
	return 0;
}

/* ---- copying into the image (in the chrooted child) ------------------------
 */

/* mkdir -p inside the current root; new directories are root's 0755. */
int build_mkdir_p(const char *path, uid_t uid, gid_t gid, struct orch_err *e)
{
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s)
			continue;
		char c = *s;
		*s = 0;
		if (mkdir(p, 0755) == 0) {
			if (lchown(p, uid, gid) < 0)
				return err_sys(e, errno, "chown %s", p);
		} else if (errno != EEXIST) {
			return err_sys(e, errno, "creating directory %s", p);
		} else {
			struct stat st;
			if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
				return err_set(e, ENOTDIR,
					       "creating directory %s: a file "
					       "is in the way",
					       p);
		}
		*s = c;
		if (!c)
			break;
	}
	return 0;
}

struct copy_state {
	const struct build_copy *op;
	const char *target; /* where the source itself goes */
	uid_t uid;
	gid_t gid;
	bool keep_owner;
};

/* Removes what is at path unless it is a directory and dir is wanted. */
static int make_room(const char *path, bool dir, struct orch_err *e)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_sys(e, errno, "%s", path);
	if (S_ISDIR(st.st_mode)) {
		if (dir)
			return 1;
		return err_set(e, EISDIR,
			       "cannot replace directory %s with "
			       "a file",
			       path);
	}
	if (unlink(path) < 0)
		return err_sys(e, errno, "replacing %s", path);
	return 0;
}

static int copy_visit(struct walker *w, int dirfd, const char *name,
		      const char *rel, const char *sub, const struct stat *st,
		      const char *link, struct orch_err *e)
{
	(void)rel;
	struct copy_state *cs = w->data;
	const struct build_copy *op = cs->op;
	_cleanup_free_ char *dst =
	    *sub ? xasprintf("%s/%s", cs->target, sub) : xstrdup(cs->target);
	uid_t uid = cs->keep_owner ? st->st_uid : cs->uid;
	gid_t gid = cs->keep_owner ? st->st_gid : cs->gid;
	mode_t mode = op->has_chmod ? op->chmod : (st->st_mode & 07777);
	int r;
	if (S_ISDIR(st->st_mode)) {
		r = make_room(dst, true, e);
		if (r < 0)
			return r;
		if (r == 0 && mkdir(dst, 0700) < 0)
			return err_sys(e, errno, "creating %s", dst);
		/* The top directory's own mode is the destination's
		 * business when it existed already; its content is copied. */
		if (r == 1 && !*sub)
			return 0;
		if (lchown(dst, uid, gid) < 0 || chmod(dst, mode) < 0)
			return err_sys(e, errno, "setting owner of %s", dst);
		return 0;
	}
	if (link) {
		r = make_room(dst, false, e);
		if (r < 0)
			return r;
		if (symlink(link, dst) < 0 || lchown(dst, uid, gid) < 0)
			return err_sys(e, errno, "creating symlink %s", dst);
		return 0;
	}
	if (!S_ISREG(st->st_mode))
		return 0; /* sockets, fifos, devices: not image content */
	r = make_room(dst, false, e);
	if (r < 0)
		return r;
	_cleanup_close_ int in =
	    openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return err_sys(e, errno, "reading %s", sub);
	_cleanup_close_ int out = open(
	    dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return err_sys(e, errno, "creating %s", dst);
	r = fd_copy(in, out, dst, e);
	if (r < 0)
		return r;
	if (fchown(out, uid, gid) < 0 || fchmod(out, mode) < 0)
		return err_sys(e, errno, "setting owner of %s", dst);
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	futimens(out, ts);
	return 0;
}

/* Opens a context file as a tar archive (any compression) if it is one. */
static struct archive *open_archive(int fd)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	struct archive_entry *ent;
	if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK ||
	    archive_read_next_header(a, &ent) != ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	archive_read_close(a);
	archive_read_free(a);
	if (lseek(fd, 0, SEEK_SET) < 0)
		return NULL;
	a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* Unpacks into dir (inside the chroot, so links stay in the image). */
static int unpack(struct archive *a, const char *dir, const char *what,
		  struct orch_err *e)
{
	int r = build_mkdir_p(dir, 0, 0, e);
	if (r < 0)
		return r;
	struct archive *w = archive_write_disk_new();
	archive_write_disk_set_options(
	    w, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
		   ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_XATTR |
		   ARCHIVE_EXTRACT_SECURE_NODOTDOT |
		   ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |
		   ARCHIVE_EXTRACT_UNLINK);
	if (chdir(dir) < 0)
		return err_sys(e, errno, "entering %s", dir);
	struct archive_entry *ent;
	int ar;
	while ((ar = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		/* Names are relative to the destination, as docker takes
		 * them, even when written absolute. */
		const char *name = archive_entry_pathname(ent);
		while (name && *name == '/')
			name++;
		if (!name || !*name)
			continue;
		_cleanup_free_ char *p = xstrdup(name);
		archive_entry_set_pathname(ent, p);
		const char *hl = archive_entry_hardlink(ent);
		while (hl && *hl == '/')
			hl++;
		if (hl) {
			_cleanup_free_ char *h = xstrdup(hl);
			archive_entry_set_hardlink(ent, h);
		}
		if (archive_write_header(w, ent) != ARCHIVE_OK) {
			r = err_set(e, EIO, "unpacking %s: %s", what,
				    archive_error_string(w));
			goto out;
		}
		const void *buf;
		size_t size;
		la_int64_t off;
		int dr;
		while ((dr = archive_read_data_block(a, &buf, &size, &off)) ==
		       ARCHIVE_OK) {
			if (archive_write_data_block(w, buf, size, off) !=
			    ARCHIVE_OK) {
				r = err_set(e, EIO, "unpacking %s: %s", what,
					    archive_error_string(w));
				goto out;
			}
		}
		if (dr != ARCHIVE_EOF) {
			r = err_set(e, EIO, "unpacking %s: %s", what,
				    archive_error_string(a));
			goto out;
		}
		archive_write_finish_entry(w);
	}
	if (ar != ARCHIVE_EOF)
		r = err_set(e, EIO, "unpacking %s: %s", what,
			    archive_error_string(a));
out:
	archive_write_close(w);
	archive_write_free(w);
	if (chdir("/") < 0 && r == 0)
		r = err_sys(e, errno, "leaving %s", dir);
	return r;
}

/* uid and gid of "user[:group]" from the image's /etc/passwd and
 * /etc/group (numbers need no entry). */
int build_lookup_user(const char *spec, const char *passwd, const char *group,
		      uid_t *uid, gid_t *gid, struct orch_err *e)
{
	_cleanup_free_ char *u = xstrdup(spec);
	char *g = strchr(u, ':');
	if (g)
		*g++ = 0;
	char *end;
	bool found = false;
	unsigned long n = strtoul(u, &end, 10);
	if (*u && !*end) {
		*uid = (uid_t)n;
		*gid = g ? 0 : (gid_t)n;
		found = true;
	}
	const char *line = passwd ? passwd : "";
	while (!found && *line) {
		size_t len = strcspn(line, "\n");
		_cleanup_free_ char *l = xstrndup(line, len);
		line += len + (line[len] ? 1 : 0);
		char *f[4] = {0};
		char *s = l;
		for (int i = 0; i < 4 && s; i++)
			f[i] = strsep(&s, ":");
		if (f[0] && f[3] && streq(f[0], u)) {
			*uid = (uid_t)strtoul(f[2], NULL, 10);
			*gid = (gid_t)strtoul(f[3], NULL, 10);
			found = true;
		}
	}
	if (!found)
		return err_set(e, ENOENT, "unable to find user %s", u);
	if (!g)
		return 0;
	n = strtoul(g, &end, 10);
	if (*g && !*end) {
		*gid = (gid_t)n;
		return 0;
	}
	line = group ? group : "";
	while (*line) {
		size_t len = strcspn(line, "\n");
		_cleanup_free_ char *l = xstrndup(line, len);
		line += len + (line[len] ? 1 : 0);
		char *s = l;
		char *name = strsep(&s, ":");
		strsep(&s, ":");
		char *id = strsep(&s, ":");
		if (name && id && streq(name, g)) {
			*gid = (gid_t)strtoul(id, NULL, 10);
			return 0;
		}
	}
	return err_set(e, ENOENT, "unable to find group %s", g);
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int build_copy_run(const struct build_copy *op, struct orch_err *e)
{
	struct copy_state cs = {.op = op, .keep_owner = !op->context};
	if (op->chown) {
		_cleanup_free_ char *pw = NULL, *gr = NULL;
		struct orch_err ignore = {0};
		read_file("/etc/passwd", &pw, NULL, &ignore);
		read_file("/etc/group", &gr, NULL, &ignore);
		int r =
		    build_lookup_user(op->chown, pw, gr, &cs.uid, &cs.gid, e);
		if (r < 0)
			return err_wrap(e, "--chown=%s", op->chown);
		cs.keep_owner = false;
	}
	size_t n = strv_len(op->srcs);
	bool dest_dir = op->dest_dir || n > 1 || is_dir(op->dest);
	struct walker w = {.rootfd = op->src_root,
			   .context = op->context,
			   .ig = op->ig,
			   .ig_exceptions = df_ignore_has_exceptions(op->ig),
			   .visit = copy_visit,
			   .data = &cs};
	for (size_t i = 0; i < n; i++) {
		const char *rel = op->srcs[i];
		int fd = openat2_path(op->src_root, *rel ? rel : ".", O_RDONLY,
				      op->context ? RESOLVE_BENEATH
						  : RESOLVE_IN_ROOT);
		if (fd < 0)
			return err_sys(e, errno, "opening %s", rel);
		struct stat st;
		fstat(fd, &st);
		int r;
		if (S_ISDIR(st.st_mode)) {
			close(fd);
			r = build_mkdir_p(op->dest, 0, 0, e);
			if (r < 0)
				return r;
			cs.target = op->dest;
			r = walk_source(&w, rel, e);
		} else if (op->unpack && S_ISREG(st.st_mode)) {
			struct archive *a = open_archive(fd);
			if (a) {
				r = unpack(a, op->dest, rel, e);
				archive_read_free(a);
				close(fd);
				if (r < 0)
					return r;
				continue;
			}
			close(fd);
			goto plain;
		} else {
			close(fd);
		plain:;
			const char *base = strrchr(rel, '/');
			base = base ? base + 1 : rel;
			_cleanup_free_ char *target =
			    dest_dir ? xasprintf("%s/%s", op->dest, base)
				     : xstrdup(op->dest);
			_cleanup_free_ char *parent = xstrdup(target);
			*strrchr(parent, '/') = 0;
			if (*parent) {
				r = build_mkdir_p(parent, 0, 0, e);
				if (r < 0)
					return r;
			}
			cs.target = target;
			r = walk_source(&w, rel, e);
		}
		if (r < 0)
			return r;
	}
	return 0;
}
