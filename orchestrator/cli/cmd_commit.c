/* A service container's file system out, as docker compose has it.
 *
 * orch commit: a service container's changes as a new image, as docker
 * compose commit makes it: the container's upper directory becomes one
 * more layer on its image's, under the image's config with the
 * container's environment and labels (as docker's container config
 * holds them), then the --change instructions; the container is paused
 * meanwhile unless --pause=false (as with compose, -p after commit is
 * --pause: the project's name goes before the command).  The image is tagged REPOSITORY[:TAG]
 * when given; its id is printed.
 *
 * orch export: its root file system as a tar, without what is mounted on
 * it (volumes, binds, /proc...), as docker export writes it.  A running
 * container's root is cloned alone (open_tree, not recursive) from its
 * mount namespace; a stopped one's overlay is mounted read-only in a
 * mount namespace of the exporting process's own.  Owners are those the
 * container sees. */
#include "orchestrator/build/build.h"
#include "orchestrator/cli/cli.h"
#include "runtime/runtime.h"
#include "runtime/store/store.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { O_INDEX = CLI_OPT_LOCAL, O_PAUSE };

/* Container number index of service svc, running or not. */
static json_t *service_container(struct pstate *ps, const char *svc,
				 long long index)
{
	size_t i;
	json_t *c;
	json_array_foreach(state_containers(ps), i, c) if (
	    streq(jstr(c, "service") ?: "", svc) &&
	    jint(c, "number", 1) == index && jstr(c, "id")) return c;
	fprintf(stderr, "orch: service \"%s\" has no container %lld\n", svc,
		index);
	return NULL;
}

/* The image's config with the container's own environment (less the
 * HOSTNAME the runtime gives) and its labels added to the image's. */
static void container_config(struct rt_image_config *cfg, json_t *rec)
{
	json_t *spec = json_object_get(rec, "spec");
	size_t i;
	json_t *v;
	json_t *env = json_object_get(spec, "env");
	if (json_is_array(env)) {
		strv_free(cfg->env);
		cfg->env = xcalloc(1, sizeof(char *));
		json_array_foreach(env, i, v) if (
		    json_is_string(v) &&
		    !startswith(json_string_value(v), "HOSTNAME="))
		    strv_push(&cfg->env, json_string_value(v));
	}
	const char *k;
	json_object_foreach(json_object_get(rec, "labels"), k, v)
	    if (json_is_string(v))
		build_kv_set(&cfg->labels, k, json_string_value(v));
}

int cmd_commit(int argc, char **argv)
{
	static const char usage[] =
	    "[-a AUTHOR] [-m MESSAGE] [-c CHANGE]... [-p|--pause=false] "
	    "[--index N] SERVICE [REPOSITORY[:TAG]]";
	static const struct option lopts[] = {
		CLI_GLOBAL_LONGOPTS,
		{"author", required_argument, NULL, 'a'},
		{"message", required_argument, NULL, 'm'},
		{"change", required_argument, NULL, 'c'},
		{"pause", optional_argument, NULL, O_PAUSE},
		{"index", required_argument, NULL, O_INDEX},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	_cleanup_strv_ char **changes = xcalloc(1, sizeof(char *));
	const char *author = NULL, *message = NULL;
	bool pause = true;
	long long index = 1;
	int c;
	optind = 1;
	while ((c = cli_getopt_own(argc, argv, "a:m:c:phf:", lopts, "p")) !=
	       -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		switch (c) {
		case 'a':
			author = optarg;
			break;
		case 'm':
			message = optarg;
			break;
		case 'c':
			strv_push(&changes, optarg);
			break;
		case 'p':
			pause = true;
			break;
		case O_PAUSE:
			if (cli_opt_bool("commit", "--pause", optarg, &pause) <
			    0)
				return 2;
			break;
		case O_INDEX:
			if (cli_opt_num("commit", "--index", optarg, 1, INT_MAX,
					&index) < 0)
				return 2;
			break;
		case 'h':
			printf("Usage: orch commit %s\n", usage);
			return 0;
		default:
			return cli_usage("commit", usage);
		}
	}
	if (argc - optind < 1 || argc - optind > 2)
		return cli_usage("commit", usage);
	const char *svc = argv[optind], *ref = argv[optind + 1];
	struct orch_err e = {0};
	_cleanup_free_ char *norm = NULL;
	if (ref && image_ref_normalize(ref, &norm, &e) < 0)
		return cli_fail(&e);
	struct pstate ps;
	if (cli_read(&ps, NULL, &e) < 0)
		return cli_fail(&e);
	json_t *rec = service_container(&ps, svc, index);
	if (!rec) {
		pstate_close(&ps);
		return 1;
	}
	json_t *spec = json_object_get(rec, "spec");
	_cleanup_free_ char *id = xstrdup(jstr(rec, "id"));
	_cleanup_free_ char *name = xstrdup(jstr(rec, "name") ?: id);
	const char *image = jstr(spec, "image"), *dir = jstr(spec, "upper_dir");
	_cleanup_image_ struct rt_image *img = NULL;
	int r = 0;
	if (!image || !dir)
		r = err_set(&e, EINVAL, "%s runs on no image of the store",
			    name);
	else
		r = rt_image_lookup(image, &img, &e);
	struct rt_image_config cfg = {0};
	if (r == 0) {
		cfg = img->config;
		img->config = (struct rt_image_config){0};
		container_config(&cfg, rec);
		r = build_apply_changes(&cfg, changes, &e);
	}
	uint32_t base = jbool(spec, "userns")
			    ? (uint32_t)jint(spec, "userns_base", 0)
			    : 0;
	_cleanup_free_ char *upper = dir ? path_join(dir, "upper") : NULL;
	/* Paused here only when it runs (one the user paused stays so). */
	json_t *st = NULL;
	struct orch_err ign = {0};
	bool running = false;
	if (r == 0 && pause && status_get(&ps, &st, &ign) == 0) {
		json_t *s = json_find_named(st, name);
		running = s && streq(jstr(s, "state") ?: "", "running");
	}
	json_decref(st);
	pstate_close(&ps);
	bool paused = running && rt_pause(id, &e) == 0;
	_cleanup_free_ char *diff_id = NULL;
	if (r == 0)
		r = rt_layer_from_upper(upper, base, &diff_id, &e);
	if (paused)
		rt_resume(id, &ign);
	_cleanup_strv_ char **layers = r == 0 ? strv_copy(img->layers) : NULL;
	if (diff_id)
		strv_push(&layers, diff_id);
	char out[65];
	if (r == 0) {
		struct rt_image_meta meta = {.author = author,
					     .comment = message};
		r = rt_image_commit(layers, &cfg, &meta, norm, out, &e);
	}
	rt_image_config_clear(&cfg);
	if (r < 0) {
		err_wrap(&e, "committing %s", name);
		return cli_fail(&e);
	}
	printf("sha256:%s\n", out);
	return 0;
}

/* The root of a running container (its init, pid), alone: a detached copy
 * of its root mount, taken from inside its mount namespace.  Only
 * system calls run there, and we are back in ours before anything else:
 * a library loaded, a name looked up or a locale read in there would
 * come from the container's files. */
static int running_root(pid_t pid, struct orch_err *e)
{
	char p[64], r[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/mnt", (int)pid);
	snprintf(r, sizeof(r), "/proc/%d/root", (int)pid);
	_cleanup_close_ int own = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int ns = open(p, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int root = open(r, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (own < 0 || ns < 0 || root < 0)
		return err_sys(e, errno, "opening %s",
			       own < 0 ? "/proc/self/ns/mnt" : ns < 0 ? p : r);
	/* Its root mount can be copied only from its own namespace. */
	if (setns(ns, CLONE_NEWNS) < 0)
		return err_sys(e, errno, "joining its mount namespace");
	int fd = (int)syscall(SYS_open_tree, root, "",
			      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
				  AT_EMPTY_PATH);
	int err = errno;
	if (setns(own, CLONE_NEWNS) < 0)
		_exit(1); /* never to go on in there */
	return fd < 0 ? err_sys(e, err, "cloning its root") : fd;
}

/* The root of a stopped container: its overlay, read-only, mounted at
 * mnt in a mount namespace of our own. */
static int stopped_root(json_t *spec, const char *mnt, struct orch_err *e)
{
	if (!mnt)
		return err_set(e, EINVAL, "no directory to mount it on");
	if (rootless())
		return err_set(e, EOPNOTSUPP,
			       "it is not running: start it first");
	const char *dir = jstr(spec, "upper_dir");
	json_t *lowers = json_object_get(spec, "lowers");
	if (!dir || !json_array_size(lowers))
		return err_set(e, EINVAL, "it has no image root to export");
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return err_sys(e, errno, "making a mount namespace");
	_cleanup_strv_ char **low = xcalloc(1, sizeof(char *));
	size_t i;
	json_t *v;
	json_array_foreach(lowers, i, v) if (json_is_string(v))
	    strv_push(&low, json_string_value(v));
	_cleanup_free_ char *up = path_join(dir, "upper");
	_cleanup_free_ char *work = path_join(dir, "work");
	uint32_t base = jbool(spec, "userns")
			    ? (uint32_t)jint(spec, "userns_base", 0)
			    : 0;
	int r;
	if (base) {
		/* As the container sees it: its layers idmapped, its upper
		 * (unused while it is stopped) as is. */
		r = rt_overlay_mount(mnt, low, up, work, base, e);
	} else {
		/* The upper is the topmost of the layers, read-only. */
		_cleanup_free_ char *all = strv_join(low, ":");
		_cleanup_free_ char *opts = xasprintf("lowerdir=%s:%s", up, all);
		r = mount("overlay", mnt, "overlay", MS_RDONLY, opts) < 0
			? err_sys(e, errno, "mounting its overlay")
			: 0;
	}
	if (r < 0)
		return r;
	int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? err_sys(e, errno, "opening %s", mnt) : fd;
}

/* In a child (its namespaces change), the tar of the container's root on
 * out; the parent reads its error from a pipe. */
static int export_tar(json_t *rec, pid_t pid, const char *mnt, int out,
		      struct orch_err *e)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return err_sys(e, errno, "making a pipe");
	json_t *spec = json_object_get(rec, "spec");
	uint32_t base = jbool(spec, "userns")
			    ? (uint32_t)jint(spec, "userns_base", 0)
			    : 0;
	struct rt_ids ids;
	rt_ids_base(&ids, base);
	pid_t child = fork();
	if (child < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return err_sys(e, errno, "forking");
	}
	if (child == 0) {
		close(pipefd[0]);
		/* Nothing of the container's may trace or read us. */
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		struct orch_err ce = {0};
		int root = pid > 0 ? running_root(pid, &ce)
				   : stopped_root(spec, mnt, &ce);
		/* open_tree's is a path: its entries are read through a
		 * directory opened in it. */
		int dir = root < 0 ? root
				   : openat(root, ".",
					    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int r = dir < 0 ? (root < 0 ? root
					    : err_sys(&ce, errno,
						      "opening its root"))
				: rt_tree_tar(dir, ".", out,
					      ids.uid[0].outside, &ce);
		if (r < 0)
			(void)!write(pipefd[1], ce.msg, strlen(ce.msg));
		_exit(r < 0 ? 1 : 0);
	}
	close(pipefd[1]);
	char msg[sizeof(e->msg)];
	ssize_t n = read(pipefd[0], msg, sizeof(msg) - 1);
	close(pipefd[0]);
	int status;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (n > 0) {
		msg[n] = '\0';
		return err_set(e, EIO, "%s", msg);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return err_set(e, EIO, "the export ended abnormally");
	return 0;
}

int cmd_export(int argc, char **argv)
{
	static const char usage[] = "[-o FILE] [--index N] SERVICE";
	static const struct option lopts[] = {
		CLI_GLOBAL_LONGOPTS,
		{"output", required_argument, NULL, 'o'},
		{"index", required_argument, NULL, O_INDEX},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *output = NULL;
	long long index = 1;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "o:h" CLI_GLOBAL_SHORTOPTS,
			       lopts)) != -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case O_INDEX:
			if (cli_opt_num("export", "--index", optarg, 1,
					INT_MAX, &index) < 0)
				return 2;
			break;
		case 'h':
			printf("Usage: orch export %s\n", usage);
			return 0;
		default:
			return cli_usage("export", usage);
		}
	}
	if (argc - optind != 1)
		return cli_usage("export", usage);
	if (!output && isatty(1)) {
		fprintf(stderr, "orch export: a tar is not written to a "
				"terminal (-o FILE, or redirect standard "
				"output)\n");
		return 1;
	}
	struct orch_err e = {0};
	struct pstate ps;
	if (cli_read(&ps, NULL, &e) < 0)
		return cli_fail(&e);
	json_t *rec = service_container(&ps, argv[optind], index);
	if (!rec) {
		pstate_close(&ps);
		return 1;
	}
	rec = json_deep_copy(rec);
	pstate_close(&ps);
	pid_t pid;
	struct orch_err ign = {0};
	if (rt_pid(jstr(rec, "id"), &pid, &ign) < 0)
		pid = 0;
	_cleanup_free_ char *mnt = NULL, *tmp = NULL;
	int r = 0, out = 1;
	bool opened = false;
	if (!pid) {
		mnt = xasprintf("%s/export.XXXXXX", orch_run());
		if (!mkdtemp(mnt)) {
			r = err_sys(&e, errno, "making %s", mnt);
			free(mnt);
			mnt = NULL;
		}
	}
	/* Written whole or not at all. */
	if (r == 0 && output) {
		tmp = xasprintf("%s.tmp.%d", output, (int)getpid());
		out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		opened = out >= 0;
		if (!opened)
			r = err_sys(&e, errno, "creating %s", tmp);
	}
	if (r == 0)
		r = export_tar(rec, pid, mnt, out, &e);
	if (opened) {
		if (r == 0 && (fsync(out) < 0 || rename(tmp, output) < 0))
			r = err_sys(&e, errno, "writing %s", output);
		close(out);
		if (r < 0)
			unlink(tmp);
	}
	if (mnt)
		rmdir(mnt);
	if (r < 0)
		err_wrap(&e, "exporting %s", jstr(rec, "name") ?: "");
	json_decref(rec);
	return r < 0 ? cli_fail(&e) : 0;
}
