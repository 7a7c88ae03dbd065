/* orch cp: files between a running service container and the host, as
 * docker compose cp copies them (SERVICE:SRC DEST, SRC SERVICE:DEST; a
 * directory recursively; "DIR/." copies what DIR holds; to an existing
 * directory, into it).  The container's side is walked from its root
 * (/proc/PID/root, its mounts with it) with every path resolved inside
 * that root and every entry below it opened without following a
 * symbolic link: a link the container made never leads out of it.
 * Copied in, entries belong to the container's root (or, with -a, keep
 * their owners), moved through its user namespace's map. */
#include "orchestrator/cli/cli.h"
#include "runtime/runtime.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct cp_ctx {
	bool archive;	 /* -a: keep owners */
	uint32_t base;	 /* the container's uid/gid 0 on the host */
	bool in;	 /* host -> container */
	const char *what; /* for messages */
};

/* path in the container, resolved inside root. */
static int in_root(int root, const char *path, int flags)
{
	struct open_how how = {
	    .flags = (uint64_t)flags | O_CLOEXEC,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

/* name in dir, never through a symbolic link. */
static int below(int dir, const char *name, int flags)
{
	struct open_how how = {
	    .flags = (uint64_t)flags | O_CLOEXEC | O_NOFOLLOW,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
		       RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, dir, name, &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

/* Owner of a new entry: the container's root, or (-a) the source's,
 * moved into the container (in) or out of it. */
static void owner_of(const struct cp_ctx *x, const struct stat *st, uid_t *u,
		     gid_t *g)
{
	if (!x->in) {
		*u = getuid();
		*g = getgid();
		return;
	}
	uint32_t su = x->archive ? (uint32_t)st->st_uid : 0;
	uint32_t sg = x->archive ? (uint32_t)st->st_gid : 0;
	*u = x->base && su < RT_IDRANGE_SIZE ? x->base + su : su;
	*g = x->base && sg < RT_IDRANGE_SIZE ? x->base + sg : sg;
}

static int copy_entry(const struct cp_ctx *x, int sdir, const char *sname,
		      int ddir, const char *dname, struct orch_err *e);

static int copy_data(int in, int out, const char *name, struct orch_err *e)
{
	char buf[65536];
	for (;;) {
		ssize_t n = RETRY_EINTR(read(in, buf, sizeof(buf)));
		if (n < 0)
			return err_sys(e, errno, "reading %s", name);
		if (n == 0)
			return 0;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = RETRY_EINTR(
			    write(out, buf + off, (size_t)(n - off)));
			if (w < 0)
				return err_sys(e, errno, "writing %s", name);
			off += w;
		}
	}
}

/* The entries of directory fd sfd copied into directory ddir. */
static int copy_children(const struct cp_ctx *x, int sfd, int ddir,
			 struct orch_err *e)
{
	int dup = fcntl(sfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup < 0 ? NULL : fdopendir(dup);
	if (!d) {
		if (dup >= 0)
			close(dup);
		return err_sys(e, errno, "listing a directory");
	}
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			r = copy_entry(x, sfd, de->d_name, ddir, de->d_name,
				       e);
	closedir(d);
	return r;
}

/* sname of sdir (never followed) as dname in ddir. */
static int copy_entry(const struct cp_ctx *x, int sdir, const char *sname,
		      int ddir, const char *dname, struct orch_err *e)
{
	struct stat st;
	if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(e, errno, "%s", sname);
	uid_t u;
	gid_t g;
	owner_of(x, &st, &u, &g);
	mode_t mode = st.st_mode & 07777;
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(sdir, sname, target, sizeof(target) - 1);
		if (n < 0)
			return err_sys(e, errno, "reading the link %s", sname);
		target[n] = '\0';
		if (symlinkat(target, ddir, dname) < 0 && errno != EEXIST)
			return err_sys(e, errno, "making the link %s", dname);
		fchownat(ddir, dname, u, g, AT_SYMLINK_NOFOLLOW);
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		if (mkdirat(ddir, dname, 0700) < 0 && errno != EEXIST)
			return err_sys(e, errno, "making %s", dname);
		_cleanup_close_ int s = below(sdir, sname, O_RDONLY | O_DIRECTORY);
		_cleanup_close_ int d = below(ddir, dname, O_RDONLY | O_DIRECTORY);
		if (s < 0 || d < 0)
			return err_sys(e, s < 0 ? -s : -d, "opening %s", sname);
		int r = copy_children(x, s, d, e);
		if (r == 0 && (fchown(d, u, g) < 0 || fchmod(d, mode) < 0))
			return err_sys(e, errno, "setting the owner of %s",
				       dname);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "orch cp: skipping %s: not a regular file, a "
				"directory or a link\n",
			sname);
		return 0;
	}
	_cleanup_close_ int s = below(sdir, sname, O_RDONLY);
	if (s < 0)
		return err_sys(e, -s, "opening %s", sname);
	_cleanup_close_ int d =
	    below(ddir, dname, O_WRONLY | O_CREAT | O_TRUNC);
	if (d < 0 && d != -ENOENT)
		return err_sys(e, -d, "creating %s", dname);
	if (d < 0) {
		d = openat(ddir, dname,
			   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			   0600);
		if (d < 0)
			return err_sys(e, errno, "creating %s", dname);
	}
	int r = copy_data(s, d, sname, e);
	if (r == 0 && (fchown(d, u, g) < 0 || fchmod(d, mode) < 0))
		return err_sys(e, errno, "setting the owner of %s", dname);
	return r;
}

/* The last component of p ("." for "DIR/."), and its parent. */
static void split_path(const char *p, char **parent, char **base)
{
	_cleanup_free_ char *s = xstrdup(p);
	size_t n = strlen(s);
	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
	char *slash = strrchr(s, '/');
	*base = xstrdup(slash ? slash + 1 : s);
	*parent = slash ? xstrndup(s, slash == s ? 1 : (size_t)(slash - s))
			: xstrdup(".");
}

/* Opens a side: the container's (root >= 0) or the host's. */
static int side_open(int root, const char *path, int flags)
{
	if (root >= 0)
		return in_root(root, path, flags);
	int fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int do_copy(const struct cp_ctx *x, int sroot, const char *src,
		   int droot, const char *dst, struct orch_err *e)
{
	_cleanup_free_ char *sparent = NULL, *sbase = NULL;
	_cleanup_free_ char *dparent = NULL, *dbase = NULL;
	split_path(src, &sparent, &sbase);
	split_path(dst, &dparent, &dbase);
	bool contents = streq(sbase, ".");
	_cleanup_close_ int sdir =
	    side_open(sroot, contents ? src : sparent, O_RDONLY | O_DIRECTORY);
	if (sdir < 0)
		return err_sys(e, -sdir, "%s: %s", x->what, src);
	struct stat sst;
	if (!contents && fstatat(sdir, sbase, &sst, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys(e, errno, "%s: %s", x->what, src);
	bool sdir_is = contents || S_ISDIR(sst.st_mode);
	/* An existing directory takes the source in it (its contents, for
	 * DIR/.); else the source takes the name. */
	_cleanup_close_ int dfd = side_open(droot, dst, O_RDONLY | O_DIRECTORY);
	if (dfd == -ENOTDIR && sdir_is)
		return err_set(e, ENOTDIR,
			       "%s: cannot copy a directory over the file %s",
			       x->what, dst);
	if (dfd >= 0 && contents)
		return copy_children(x, sdir, dfd, e);
	if (dfd >= 0)
		return copy_entry(x, sdir, sbase, dfd, sbase, e);
	_cleanup_close_ int dp =
	    side_open(droot, dparent, O_RDONLY | O_DIRECTORY);
	if (dp < 0)
		return err_sys(e, -dp, "%s: %s", x->what, dparent);
	if (!contents)
		return copy_entry(x, sdir, sbase, dp, dbase, e);
	if (mkdirat(dp, dbase, 0755) < 0)
		return err_sys(e, errno, "%s: making %s", x->what, dst);
	_cleanup_close_ int made = below(dp, dbase, O_RDONLY | O_DIRECTORY);
	if (made < 0)
		return err_sys(e, -made, "%s: %s", x->what, dst);
	return copy_children(x, sdir, made, e);
}

/* "SERVICE:PATH" -> service and path (NULL when a host path). */
static char *service_of(const char *arg, const char **path)
{
	const char *colon = strchr(arg, ':');
	if (!colon || colon == arg || strchr(arg, '/') < colon) {
		*path = arg;
		return NULL;
	}
	*path = colon + 1;
	return xstrndup(arg, (size_t)(colon - arg));
}

enum { O_INDEX = CLI_OPT_LOCAL };

int cmd_cp(int argc, char **argv)
{
	static const char usage[] = "[-a] [--index N] "
				    "SERVICE:SRC DEST | SRC SERVICE:DEST";
	static const struct option lopts[] = {
		CLI_GLOBAL_LONGOPTS,
		{"archive", no_argument, NULL, 'a'},
		{"index", required_argument, NULL, O_INDEX},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct cp_ctx x = {0};
	long long index = 1;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "ah" CLI_GLOBAL_SHORTOPTS,
			       lopts)) != -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		switch (c) {
		case 'a':
			x.archive = true;
			break;
		case O_INDEX:
			if (cli_opt_num("cp", "--index", optarg, 1, INT_MAX,
					&index) < 0)
				return 2;
			break;
		case 'h':
			printf("Usage: orch cp %s\n", usage);
			return 0;
		default:
			return cli_usage("cp", usage);
		}
	}
	if (argc - optind != 2)
		return cli_usage("cp", usage);
	const char *spath, *dpath;
	_cleanup_free_ char *ssvc = service_of(argv[optind], &spath);
	_cleanup_free_ char *dsvc = service_of(argv[optind + 1], &dpath);
	if (!ssvc == !dsvc || streq(spath, "-") || streq(dpath, "-") ||
	    !*spath || !*dpath) {
		fprintf(stderr, "orch cp: one side is SERVICE:PATH, the other "
				"a path of the host (a tar stream, -, is not "
				"taken)\n");
		return 2;
	}
	const char *svc = ssvc ? ssvc : dsvc;
	x.in = dsvc != NULL;
	struct pstate ps;
	struct orch_err e = {0};
	if (cli_open(&ps, NULL, &e) < 0)
		return cli_fail(&e);
	json_t *rec = NULL;
	size_t i;
	json_t *cr;
	json_array_foreach(state_containers(&ps), i, cr)
		if (streq(jstr(cr, "service") ?: "", svc) &&
		    jint(cr, "number", 1) == index)
			rec = cr;
	pid_t pid;
	struct orch_err ign = {0};
	if (!rec || !jstr(rec, "id") ||
	    rt_pid(jstr(rec, "id"), &pid, &ign) < 0) {
		pstate_close(&ps);
		fprintf(stderr, "orch: service \"%s\" is not running\n", svc);
		return 1;
	}
	json_t *spec = json_object_get(rec, "spec");
	x.base = jbool(spec, "userns")
		     ? (uint32_t)jint(spec, "userns_base", 0)
		     : 0;
	_cleanup_free_ char *what = xasprintf("cp %s", jstr(rec, "name"));
	x.what = what;
	pstate_close(&ps);
	char rp[64];
	snprintf(rp, sizeof(rp), "/proc/%d/root", (int)pid);
	_cleanup_close_ int root = open(rp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		err_sys(&e, errno, "%s: opening its root", what);
		return cli_fail(&e);
	}
	int r = x.in ? do_copy(&x, -1, spath, root, dpath, &e)
		     : do_copy(&x, root, spath, -1, dpath, &e);
	return r < 0 ? cli_fail(&e) : 0;
}
