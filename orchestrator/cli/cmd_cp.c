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

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct cp_ctx {
	struct rt_tree_copy o; /* owners and replacing */
	struct rt_ids ids;     /* the container's maps (-a) */
	const char *what;      /* for messages */
	bool follow;	       /* -L: a source that is a link is its target */
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

/* -L: the path src's symbolic links lead to, each resolved as the side
 * resolves paths (inside the container's root); src itself when it is
 * no link. */
static int follow_links(int root, const char *src, char **out,
			struct orch_err *e)
{
	char *p = xstrdup(src);
	for (int hops = 0; hops < 40; hops++) {
		_cleanup_free_ char *parent = NULL, *base = NULL;
		split_path(p, &parent, &base);
		_cleanup_close_ int dir =
		    side_open(root, parent, O_RDONLY | O_DIRECTORY);
		char target[PATH_MAX];
		ssize_t n = dir < 0 || streq(base, ".")
				? -1
				: readlinkat(dir, base, target,
					     sizeof(target) - 1);
		if (n < 0) {
			*out = p;
			return 0;
		}
		target[n] = '\0';
		free(p);
		p = target[0] == '/' ? xstrdup(target)
				     : xasprintf("%s/%s", parent, target);
	}
	free(p);
	return err_set(e, ELOOP, "%s: too many levels of symbolic links", src);
}

static int do_copy(const struct cp_ctx *x, int sroot, const char *src,
		   int droot, const char *dst, struct orch_err *e)
{
	_cleanup_free_ char *sparent = NULL, *sbase = NULL;
	_cleanup_free_ char *dparent = NULL, *dbase = NULL;
	_cleanup_free_ char *followed = NULL;
	if (x->follow) {
		int r = follow_links(sroot, src, &followed, e);
		if (r < 0)
			return r;
	}
	split_path(followed ? followed : src, &sparent, &sbase);
	split_path(dst, &dparent, &dbase);
	/* Into a directory, an entry keeps the name it was asked by (a
	 * followed link's, not its target's). */
	_cleanup_free_ char *oparent = NULL, *obase = NULL;
	split_path(src, &oparent, &obase);
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
		return rt_tree_copy(sdir, dfd, &x->o, e);
	if (dfd >= 0)
		return rt_tree_copy_entry(sdir, sbase, dfd, obase, &x->o, e);
	_cleanup_close_ int dp =
	    side_open(droot, dparent, O_RDONLY | O_DIRECTORY);
	if (dp < 0)
		return err_sys(e, -dp, "%s: %s", x->what, dparent);
	if (!contents)
		return rt_tree_copy_entry(sdir, sbase, dp, dbase, &x->o, e);
	if (mkdirat(dp, dbase, 0755) < 0)
		return err_sys(e, errno, "%s: making %s", x->what, dst);
	_cleanup_close_ int made = below(dp, dbase, O_RDONLY | O_DIRECTORY);
	if (made < 0)
		return err_sys(e, -made, "%s: %s", x->what, dst);
	return rt_tree_copy(sdir, made, &x->o, e);
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
	static const char usage[] = "[-a] [-L] [--index N] "
				    "SERVICE:SRC DEST|- | SRC|- SERVICE:DEST";
	static const struct option lopts[] = {
		CLI_GLOBAL_LONGOPTS,
		{"archive", no_argument, NULL, 'a'},
		{"follow-link", no_argument, NULL, 'L'},
		{"index", required_argument, NULL, O_INDEX},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct cp_ctx x = {.o = {.replace = true}};
	bool archive = false;
	long long index = 1;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "aLh" CLI_GLOBAL_SHORTOPTS,
			       lopts)) != -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		switch (c) {
		case 'a':
			archive = true;
			break;
		case 'L':
			x.follow = true;
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
	if (!ssvc == !dsvc || !*spath || !*dpath) {
		fprintf(stderr, "orch cp: one side is SERVICE:PATH, the other "
				"a path of the host, or - (a tar on standard "
				"input or output)\n");
		return 2;
	}
	bool to_tar = !dsvc && streq(dpath, "-");
	bool from_tar = dsvc && streq(spath, "-");
	if ((to_tar && isatty(1)) || (from_tar && isatty(0))) {
		fprintf(stderr, "orch cp: a tar is not %s a terminal "
				"(redirect standard %s)\n",
			to_tar ? "written to" : "read from",
			to_tar ? "output" : "input");
		return 1;
	}
	const char *svc = ssvc ? ssvc : dsvc;
	bool in = dsvc != NULL;
	struct pstate ps;
	struct orch_err e = {0};
	if (cli_read(&ps, NULL, &e) < 0)
		return cli_fail(&e);
	pid_t pid;
	json_t *rec = cli_running(&ps, svc, index, &pid);
	if (!rec) {
		pstate_close(&ps);
		return 1;
	}
	/* Copied in: the container's root's, or (-a) the source's owners
	 * through its map; out: the caller's, or (-a) the owners the
	 * container sees. */
	json_t *spec = json_object_get(rec, "spec");
	rt_ids_base(&x.ids, jbool(spec, "userns")
				? (uint32_t)jint(spec, "userns_base", 0)
				: 0);
	x.o.ids = &x.ids;
	x.o.back = !in;
	x.o.own = !archive;
	x.o.uid = in ? x.ids.uid[0].outside : getuid();
	x.o.gid = in ? x.ids.gid[0].outside : getgid();
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
	int r = 0;
	_cleanup_free_ char *followed = NULL;
	if (to_tar && x.follow) {
		r = follow_links(root, spath, &followed, &e);
		if (r < 0)
			return cli_fail(&e);
		spath = followed;
	}
	if (to_tar) {
		/* The tar holds the owners the container sees (-L: the
		 * entry is named as the link's target). */
		_cleanup_free_ char *parent = NULL, *base = NULL;
		split_path(spath, &parent, &base);
		_cleanup_close_ int pfd = in_root(
		    root, streq(base, ".") ? spath : parent,
		    O_RDONLY | O_DIRECTORY);
		struct stat st;
		if (pfd < 0)
			r = err_sys(&e, -pfd, "%s: %s", what, spath);
		else if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
			r = err_sys(&e, errno, "%s: %s", what, spath);
		else
			r = rt_tree_tar(pfd, base, 1, x.ids.uid[0].outside,
					&e);
	} else if (from_tar) {
		/* Into a directory that is there, as docker cp - DEST. */
		_cleanup_close_ int dfd =
		    in_root(root, dpath, O_RDONLY | O_DIRECTORY);
		r = dfd < 0 ? err_sys(&e, -dfd, "%s: %s", what, dpath)
			    : rt_tree_untar(0, dfd, &x.o, &e);
	} else {
		r = in ? do_copy(&x, -1, spath, root, dpath, &e)
		       : do_copy(&x, root, spath, -1, dpath, &e);
	}
	return r < 0 ? cli_fail(&e) : 0;
}
