/* The builder: runs a parsed Containerfile with orch's own runtime.
 * Each stage keeps its layers and config in memory; a file-changing step
 * (RUN, COPY, ADD, WORKDIR) runs over an overlay with a fresh upper
 * directory that becomes one stored layer, metadata steps change only
 * the config.  Steps are cached by a key chained from the base image
 * through every instruction and the content it reads. */
#include "netd/netd.h"
#include "orchestrator/build/build.h"
#include "runtime/runtime.h"
#include "runtime/store/store.h"

#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#define DEFAULT_PATH                                                           \
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct stage_state {
	bool needed, done;
	char **layers; /* diff_ids, bottom first */
	struct rt_image_config cfg;
	char key[65];
	char **args; /* ARG values declared in the stage, "K=V" */
	bool cmd_set;
};

struct builder {
	const struct build_opts *o;
	struct dockerfile *df;
	struct build_ctx *ctx;
	char **meta; /* global ARG values, "K=V" */
	struct stage_state *st;
	char *tmp;   /* private scratch directory of this build */
	char *empty; /* an empty directory: the root of scratch */
	FILE *log;
	unsigned step, n_steps;
	struct build_result *res;
	/* The build network, set up at the first RUN that wants it. */
	struct netd_conn *netd;
	char *resolv; /* resolv.conf naming the network's DNS */
	bool net_tried;
};

/* ---- interruption -----------------------------------------------------------
 */

/* SIGINT/SIGTERM/SIGHUP during a build kill the step's process (a RUN
 * container's init takes its whole pid namespace along) so that the
 * normal error path removes the container, mounts and scratch files. */
static volatile sig_atomic_t interrupted;
static volatile pid_t victim;

static void on_signal(int sig)
{
	interrupted = sig;
	if (victim > 0)
		kill(victim, SIGKILL);
}

static int check_interrupted(struct orch_err *e)
{
	if (interrupted)
		return err_set(e, EINTR, "interrupted by %s",
			       signal_name(interrupted));
	return 0;
}

/* ---- small helpers ------------------------------------------------------ */

static const char *kv_get(char *const *v, const char *key)
{
	size_t n = strlen(key);
	const char *found = NULL;
	for (size_t i = 0; v && v[i]; i++)
		if (strncmp(v[i], key, n) == 0 && v[i][n] == '=')
			found = v[i] + n + 1;
	return found;
}

/* Sets key=value in a "K=V" list, replacing an earlier value in place. */
static void kv_set(char ***v, const char *key, const char *value)
{
	size_t n = strlen(key);
	char *kv = xasprintf("%s=%s", key, value);
	for (size_t i = 0; *v && (*v)[i]; i++)
		if (strncmp((*v)[i], key, n) == 0 && (*v)[i][n] == '=') {
			free((*v)[i]);
			(*v)[i] = kv;
			return;
		}
	strv_push(v, kv);
	free(kv);
}

static void strv_add_unique(char ***v, const char *s)
{
	if (!strv_contains(*v, s))
		strv_push(v, s);
}

static struct rt_healthcheck *hc_copy(const struct rt_healthcheck *h)
{
	if (!h)
		return NULL;
	struct rt_healthcheck *c = xmalloc(sizeof(*c));
	*c = *h;
	c->test = strv_copy(h->test);
	return c;
}

static void cfg_copy(struct rt_image_config *dst,
		     const struct rt_image_config *src)
{
	dst->entrypoint = src->entrypoint ? strv_copy(src->entrypoint) : NULL;
	dst->cmd = src->cmd ? strv_copy(src->cmd) : NULL;
	dst->env = src->env ? strv_copy(src->env) : NULL;
	dst->workdir = src->workdir ? xstrdup(src->workdir) : NULL;
	dst->user = src->user ? xstrdup(src->user) : NULL;
	dst->stop_signal = src->stop_signal ? xstrdup(src->stop_signal) : NULL;
	dst->exposed_ports =
	    src->exposed_ports ? strv_copy(src->exposed_ports) : NULL;
	dst->volumes = src->volumes ? strv_copy(src->volumes) : NULL;
	dst->labels = src->labels ? strv_copy(src->labels) : NULL;
	dst->shell = src->shell ? strv_copy(src->shell) : NULL;
	dst->healthcheck = hc_copy(src->healthcheck);
}

static void stage_clear(struct stage_state *s)
{
	strv_free(s->layers);
	rt_image_config_clear(&s->cfg);
	strv_free(s->args);
	memset(s, 0, sizeof(*s));
}

/* The environment expansions see: the stage's ARGs, overridden by ENV. */
static char **stage_env(const struct stage_state *s)
{
	char **v = strv_copy(s->args);
	for (size_t i = 0; s->cfg.env && s->cfg.env[i]; i++)
		strv_push(&v, s->cfg.env[i]);
	return v;
}

static int expand(struct builder *b, const struct df_instr *in,
		  char *const *env, const char *word, char **out,
		  struct orch_err *e)
{
	int r = df_expand(word, b->df->escape, env, out, e);
	if (r < 0)
		return err_wrap(e, "%s:%d", b->df->path, in->line);
	return 0;
}

static int instr_err(struct builder *b, const struct df_instr *in,
		     struct orch_err *e)
{
	return err_wrap(e, "%s:%d: %s", b->df->path, in->line, in->text);
}

static char **layer_dirs(char *const *layers)
{
	struct rt_image img = {.layers = (char **)layers};
	return rt_image_lowers(&img);
}

static bool layer_present(const char *diff_id)
{
	char *layers[] = {(char *)diff_id, NULL};
	_cleanup_strv_ char **dirs = layer_dirs(layers);
	return dirs[0] && access(dirs[0], F_OK) == 0;
}

/* Lower directories for an overlay over layers; scratch gets the empty
 * directory, since overlayfs needs at least one lower. */
static char **lowers_of(struct builder *b, char *const *layers)
{
	char **v = layer_dirs(layers);
	if (!v[0])
		strv_push(&v, b->empty);
	return v;
}

/* ---- the cache ------------------------------------------------------------
 */

static char *cache_path(const char *key)
{
	return xasprintf("%s/build-cache/%s.json", orch_root(), key);
}

/* The cached result of a step: true with *layer (NULL for a step that
 * changed no file) when present and its layer still in the store. */
static bool cache_get(struct builder *b, const char *key, const char *field,
		      char **value)
{
	if (b->o->no_cache)
		return false;
	_cleanup_free_ char *p = cache_path(key);
	json_t *j = json_load_file(p, 0, NULL);
	if (!j)
		return false;
	json_t *v = json_object_get(j, field);
	bool ok = v != NULL;
	*value = json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
	json_decref(j);
	return ok;
}

static void cache_put(const char *key, const char *field, const char *value)
{
	_cleanup_free_ char *p = cache_path(key);
	_cleanup_free_ char *dir = xasprintf("%s/build-cache", orch_root());
	struct orch_err e = {0};
	if (mkdir_p(dir, 0700, &e) < 0)
		return;
	json_t *j = json_load_file(p, 0, NULL);
	if (!j)
		j = json_object();
	json_object_set_new(j, field, value ? json_string(value) : json_null());
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	/* The cache is an optimization: failing to record is not an error
	 * of the build. */
	if (write_file_atomic(p, s, strlen(s), 0600, &e) < 0)
		log_warn("recording build cache: %s", e.msg);
	free(s);
}

/* ---- progress ------------------------------------------------------------ */

static void step_log(struct builder *b, const struct df_instr *in)
{
	fprintf(b->log, "STEP %u/%u: %s\n", ++b->step, b->n_steps, in->text);
	fflush(b->log);
}

/* ---- file-changing steps ---------------------------------------------------
 */

/* What a step does in its fresh upper directory. */
struct step_job {
	enum { JOB_RUN, JOB_FS } kind;
	/* JOB_RUN */
	char **argv, **env;
	const char *workdir;
	uid_t uid;
	gid_t gid;
	bool network;
	struct rt_mount *mounts; /* RUN --mount */
	size_t n_mounts;
	/* Paths (relative, deepest first) that the mounts' targets add to
	 * the image only as mount points: removed from the layer after. */
	char **mount_points;
	/* JOB_FS: mkdir, then copy (if copy.dest) */
	const char *mkdir;
	struct build_copy copy;
	char **from_layers; /* COPY --from: the source's layers */
	bool from_other;    /* sources come from from_layers, not context */
	char **raw_srcs;    /* unresolved, for --from (resolved in there) */
};

static int mount_overlay(const char *target, char *const *lowers,
			 const char *upper, const char *work,
			 struct orch_err *e)
{
	struct strbuf o;
	sb_init(&o);
	sb_adds(&o, "lowerdir=");
	for (size_t i = 0; lowers[i]; i++)
		sb_printf(&o, "%s%s", i ? ":" : "", lowers[i]);
	if (upper)
		sb_printf(&o, ",upperdir=%s,workdir=%s", upper, work);
	int r = 0;
	if (mount("overlay", target, "overlay", 0, o.buf) < 0)
		r = err_sys(e, errno, "mounting overlay at %s", target);
	sb_free(&o);
	return r;
}

/* In the child: mounts the step's overlay (and the --from source), then
 * chroots into the overlay and does the job. */
static int fs_child(struct builder *b, struct stage_state *s,
		    struct step_job *job, const char *dir, struct orch_err *e)
{
	if (unshare(CLONE_NEWNS) < 0)
		return err_sys(e, errno, "creating a mount namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return err_sys(e, errno, "making mounts private");
	_cleanup_free_ char *root = path_join(dir, "root");
	_cleanup_free_ char *upper = path_join(dir, "upper");
	_cleanup_free_ char *work = path_join(dir, "work");
	_cleanup_strv_ char **lowers = lowers_of(b, s->layers);
	int r = mount_overlay(root, lowers, upper, work, e);
	if (r < 0)
		return r;
	_cleanup_close_ int src = -1;
	if (job->from_other) {
		_cleanup_free_ char *sdir = path_join(dir, "src");
		_cleanup_strv_ char **sl = lowers_of(b, job->from_layers);
		if (strv_len(sl) == 1)
			r = mount(sl[0], sdir, NULL, MS_BIND | MS_REC, NULL) < 0
				? err_sys(e, errno, "mounting the source")
				: 0;
		else
			r = mount_overlay(sdir, sl, NULL, NULL, e);
		if (r < 0)
			return r;
		src = open(sdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (src < 0)
			return err_sys(e, errno, "opening %s", sdir);
		char **all = xcalloc(1, sizeof(char *));
		for (size_t i = 0; job->raw_srcs[i]; i++) {
			char **one = NULL;
			r = build_resolve(src, false, NULL, job->raw_srcs[i],
					  &one, e);
			if (r < 0) {
				strv_free(all);
				return r;
			}
			for (size_t k = 0; one[k]; k++)
				strv_push(&all, one[k]);
			strv_free(one);
		}
		job->copy.srcs = all;
		job->copy.src_root = src;
	}
	if (chdir(root) < 0 || chroot(".") < 0 || chdir("/") < 0)
		return err_sys(e, errno, "entering the image root");
	if (job->mkdir) {
		r = build_mkdir_p(job->mkdir, 0, 0, e);
		if (r < 0)
			return r;
	}
	if (job->copy.dest)
		return build_copy_run(&job->copy, e);
	return 0;
}

static int fs_run(struct builder *b, struct stage_state *s,
		  struct step_job *job, const char *dir, struct orch_err *e)
{
	static const char *const sub[] = {"root", "upper", "work", "src"};
	for (size_t i = 0; i < ARRAY_SIZE(sub); i++) {
		_cleanup_free_ char *p = path_join(dir, sub[i]);
		if (mkdir(p, 0755) < 0)
			return err_sys(e, errno, "creating %s", p);
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_sys(e, errno, "creating a pipe");
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return err_sys(e, errno, "forking");
	}
	if (pid == 0) {
		close(pfd[0]);
		struct orch_err ce = {0};
		int r = fs_child(b, s, job, dir, &ce);
		if (r < 0)
			(void)!write(pfd[1], &ce, sizeof(ce));
		_exit(r < 0 ? 1 : 0);
	}
	close(pfd[1]);
	victim = pid;
	if (interrupted)
		kill(pid, SIGKILL);
	struct orch_err ce = {0};
	ssize_t n = RETRY_EINTR(read(pfd[0], &ce, sizeof(ce)));
	close(pfd[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	victim = 0;
	if (check_interrupted(e) < 0)
		return -EINTR;
	if (n == (ssize_t)sizeof(ce) && ce.code) {
		*e = ce;
		return -ce.code;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return err_set(e, EIO, "the file step's process failed");
	return 0;
}

/* RUN steps join netd's shared build network (outbound NAT, DNS through
 * its gateway), as docker's default bridge.  When netd cannot be reached
 * the build goes on with steps that have only a loopback, and says so. */
#define BUILD_NETWORK "orch-build"

/* One per uid: a user's build network is never root's. */
static void build_network(char out[32])
{
	if (geteuid() == 0)
		snprintf(out, 32, BUILD_NETWORK);
	else
		snprintf(out, 32, BUILD_NETWORK "-%u", (unsigned)geteuid());
}

static bool build_net_up(struct builder *b)
{
	if (b->net_tried)
		return b->resolv != NULL;
	b->net_tried = true;
	struct orch_err e = {0};
	struct netd_network net = {0};
	char name[32];
	build_network(name);
	struct netd_network_req q = {.name = name, .project = name};
	if (netd_connect(&b->netd, &e) < 0 ||
	    netd_network_create(b->netd, &q, &net, &e) < 0) {
		fprintf(b->log, "warning: RUN steps have no network: %s\n",
			e.msg);
		return false;
	}
	_cleanup_free_ char *text = xasprintf("nameserver %s\n", net.gateway);
	netd_network_clear(&net);
	char *path = path_join(b->tmp, "resolv.conf");
	if (write_file_atomic(path, text, strlen(text), 0644, &e) < 0) {
		fprintf(b->log, "warning: RUN steps have no network: %s\n",
			e.msg);
		free(path);
		return false;
	}
	b->resolv = path;
	return true;
}

/* After a RUN: the empty directories and files its mounts' targets left
 * in the upper directory where the image had nothing, as BuildKit leaves
 * no trace of a mount in the layer. */
static void drop_mount_points(const char *dir, char *const *rels)
{
	for (size_t i = 0; rels && rels[i]; i++) {
		_cleanup_free_ char *p = xasprintf("%s/upper/%s", dir, rels[i]);
		struct stat st;
		if (lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			(void)rmdir(p); /* only when empty */
		else if (S_ISREG(st.st_mode) && st.st_size == 0)
			(void)unlink(p);
	}
}

static int run_container(struct builder *b, struct stage_state *s,
			 struct step_job *job, const char *dir,
			 struct orch_err *e)
{
	char rid[65];
	random_id(rid);
	_cleanup_free_ char *id = xasprintf("build-%.12s", rid);
	_cleanup_strv_ char **lowers = lowers_of(b, s->layers);
	struct rt_spec spec;
	rt_spec_init(&spec);
	spec.id = id;
	spec.lowers = lowers;
	spec.upper_dir = dir;
	spec.argv = job->argv;
	spec.env = job->env;
	spec.workdir = job->workdir;
	spec.uid = job->uid;
	spec.gid = job->gid;
	spec.hostname = "build";
	spec.namespaces = RT_NS_DEFAULT;
	int out = fileno(b->log);
	spec.stdio[0] = -1;
	spec.stdio[1] = out;
	spec.stdio[2] = out;
	bool net = job->network && build_net_up(b);
	_cleanup_free_ struct rt_mount *mounts =
	    xcalloc(job->n_mounts + 1, sizeof(*mounts));
	if (job->n_mounts)
		memcpy(mounts, job->mounts, job->n_mounts * sizeof(*mounts));
	spec.mounts = mounts;
	spec.n_mounts = job->n_mounts;
	if (net)
		mounts[spec.n_mounts++] = (struct rt_mount){
		    .type = RT_MOUNT_BIND,
		    .source = b->resolv,
		    .target = "/etc/resolv.conf",
		    .readonly = true};
	fprintf(b->log, "--> Running in %s\n", id);
	fflush(b->log);
	b->res->containers++;
	struct rt_container *c = NULL;
	int r = rt_create(&spec, &c, e);
	if (r < 0)
		return err_wrap(e, "creating build container %s", id);
	int status = 0;
	victim = c->pid;
	r = check_interrupted(e);
	char netname[32];
	build_network(netname);
	if (r == 0 && net) {
		struct netd_attach_req q = {.network = netname,
					    .container_id = id,
					    .container_name = id,
					    .service = "",
					    .pid = c->pid};
		r = netd_endpoint_attach(b->netd, &q, NULL, e);
		if (r < 0)
			err_wrap(e, "attaching %s to the build network", id);
	}
	if (r == 0)
		r = rt_start(c, e);
	if (r < 0)
		kill(c->pid, SIGKILL);
	int wr = rt_wait(c, &status, r < 0 ? &(struct orch_err){0} : e);
	victim = 0;
	if (r == 0)
		r = wr < 0 ? wr : check_interrupted(e);
	rt_container_free(c);
	struct orch_err de = {0};
	if (net &&
	    netd_endpoint_detach(b->netd, netname, id, NULL, &de) < 0 &&
	    r == 0) {
		*e = de;
		r = -de.code;
	}
	if (rt_delete(id, false, &de) < 0 && r == 0) {
		*e = de;
		r = -de.code;
	}
	drop_mount_points(dir, job->mount_points);
	if (r < 0)
		return r;
	if (status != 0)
		return err_set(e, EIO, "the command exited with code %d",
			       status);
	return 0;
}

/* Runs a file-changing step, or takes its layer from the cache. */
static int file_step(struct builder *b, struct stage_state *s,
		     char *const *parts, struct step_job *job,
		     struct orch_err *e)
{
	char key[65];
	build_cache_key(s->key, parts, key);
	char *layer = NULL;
	if (cache_get(b, key, "layer", &layer) &&
	    (!layer || layer_present(layer))) {
		fprintf(b->log, "--> Using cache %.12s\n", key);
		b->res->cached++;
	} else {
		free(layer);
		layer = NULL;
		char n[32];
		snprintf(n, sizeof(n), "step-%u", b->step);
		_cleanup_free_ char *dir = path_join(b->tmp, n);
		if (mkdir(dir, 0700) < 0)
			return err_sys(e, errno, "creating %s", dir);
		int r = job->kind == JOB_RUN ? run_container(b, s, job, dir, e)
					     : fs_run(b, s, job, dir, e);
		if (r == 0) {
			_cleanup_free_ char *upper = path_join(dir, "upper");
			r = rt_layer_from_upper(upper, &layer, e);
		}
		struct orch_err re = {0};
		rm_rf(dir, &re);
		if (r < 0)
			return r;
		cache_put(key, "layer", layer);
		fprintf(b->log, "--> %s\n", layer ? layer : "no changes");
	}
	fflush(b->log);
	if (layer)
		strv_push(&s->layers, layer);
	free(layer);
	memcpy(s->key, key, sizeof(key));
	return 0;
}

/* The (last) entry of name in a passwd-format file of the image. */
static char *image_file(struct builder *b, struct stage_state *s,
			const char *rel)
{
	_cleanup_strv_ char **dirs = lowers_of(b, s->layers);
	for (size_t i = 0; dirs[i]; i++) {
		_cleanup_free_ char *p = path_join(dirs[i], rel);
		struct stat st;
		if (lstat(p, &st) < 0)
			continue;
		/* An overlay whiteout: deleted in an upper layer. */
		if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0))
			return NULL;
		char *text = NULL;
		struct orch_err e = {0};
		if (S_ISREG(st.st_mode) && read_file(p, &text, NULL, &e) == 0)
			return text;
		return NULL;
	}
	return NULL;
}

/* ---- RUN --mount -------------------------------------------------------- */

/* Whether rel exists in one of the stage's layers. */
static bool in_layers(char *const *lowers, const char *rel)
{
	for (size_t i = 0; lowers && lowers[i]; i++) {
		_cleanup_free_ char *p = path_join(lowers[i], rel);
		struct stat st;
		if (lstat(p, &st) == 0)
			return !(S_ISCHR(st.st_mode) && st.st_rdev == 0);
	}
	return false;
}

/* The target and its parents the image lacks, deepest first. */
static void mount_points_add(char ***out, char *const *lowers,
			     const char *target)
{
	_cleanup_strv_ char **parts = path_components(target, NULL);
	for (size_t n = strv_len(parts); n > 0; n--) {
		char *saved = parts[n];
		parts[n] = NULL;
		_cleanup_free_ char *rel = strv_join(parts, "/");
		parts[n] = saved;
		if (in_layers(lowers, rel))
			break;
		if (!strv_contains(*out, rel))
			strv_push(out, rel);
	}
}

/* What a RUN's mounts hold while it runs: the mounts, the cache locks,
 * the overlays mounted for bind sources. */
struct run_mounts {
	struct rt_mount *v;
	size_t n;
	int *locks;
	size_t n_locks;
	char **overlays; /* mount points to detach */
};

static void run_mounts_release(struct run_mounts *rm)
{
	for (size_t i = 0; i < rm->n; i++) {
		free(rm->v[i].source);
		free(rm->v[i].target);
	}
	free(rm->v);
	for (size_t i = 0; i < rm->n_locks; i++)
		close(rm->locks[i]);
	free(rm->locks);
	/* Pairs: the mount point, then its scratch directory (removed only
	 * once the mount is gone). */
	for (size_t i = 0; rm->overlays && rm->overlays[i] &&
			   rm->overlays[i + 1];
	     i += 2)
		if ((umount2(rm->overlays[i], MNT_DETACH) == 0 ||
		     errno == EINVAL) &&
		    rmdir(rm->overlays[i]) == 0)
			rm_rf(rm->overlays[i + 1], NULL);
	strv_free(rm->overlays);
	memset(rm, 0, sizeof(*rm));
}

static struct rt_mount *mount_add(struct run_mounts *rm, enum rt_mount_type t,
				  const char *source, const char *target,
				  bool readonly)
{
	rm->v = xrealloc(rm->v, (rm->n + 1) * sizeof(*rm->v));
	struct rt_mount *m = &rm->v[rm->n++];
	*m = (struct rt_mount){.type = t,
			       .source = source ? xstrdup(source) : NULL,
			       .target = xstrdup(target),
			       .readonly = readonly};
	return m;
}

/* A cache mount: $ORCH_ROOT/build-cache/<sha256 of its id>/data, kept
 * across builds; locked: one RUN at a time; private: a fresh directory
 * when another RUN holds it. */
static int mount_cache(struct builder *b, const struct df_mount *m,
		       struct run_mounts *rm, struct orch_err *e)
{
	char hex[65];
	sha256_hex(m->id, strlen(m->id), hex);
	_cleanup_free_ char *top =
	    xasprintf("%s/build-cache/%.32s", orch_root(), hex);
	_cleanup_free_ char *data = path_join(top, "data");
	bool fresh = access(data, F_OK) != 0;
	int r = mkdir_p(data, 0755, e);
	if (r < 0)
		return r;
	if (fresh && (chmod(data, m->mode >= 0 ? (mode_t)m->mode : 0755) < 0 ||
		      chown(data, m->uid >= 0 ? (uid_t)m->uid : 0,
			    m->gid >= 0 ? (gid_t)m->gid : 0) < 0))
		return err_sys(e, errno, "preparing the cache %s", data);
	_cleanup_free_ char *source = xstrdup(data);
	if (m->sharing != DF_SHARED) {
		_cleanup_free_ char *lp = path_join(top, "lock");
		int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return err_sys(e, errno, "opening %s", lp);
		int op = LOCK_EX | (m->sharing == DF_PRIVATE ? LOCK_NB : 0);
		if (RETRY_EINTR(flock(fd, op)) < 0) {
			int err = errno;
			close(fd);
			if (err != EWOULDBLOCK)
				return err_sys(e, err, "locking %s", lp);
			/* private, and in use: a directory of this RUN's */
			free(source);
			source = xasprintf("%s/cache-%zu", b->tmp, rm->n);
			if (mkdir(source, m->mode >= 0 ? (mode_t)m->mode
						      : 0755) < 0)
				return err_sys(e, errno, "creating %s", source);
			fd = -1;
		}
		if (fd >= 0) {
			rm->locks = xrealloc(rm->locks, (rm->n_locks + 1) *
							    sizeof(int));
			rm->locks[rm->n_locks++] = fd;
		}
	}
	mount_add(rm, RT_MOUNT_BIND, source, m->target, false);
	return 0;
}

/* The directories a bind mount's from= names: a stage's layers (built
 * before this one) or an image's. */
static int from_lowers(struct builder *b, const struct df_mount *m,
		       char ***lowers, char **key, struct orch_err *e)
{
	int idx = df_stage_index(b->df, m->from);
	if (idx >= 0) {
		if (!b->st[idx].done)
			return err_set(e, EINVAL,
				       "--mount from=%s: the stage is not "
				       "built before this one",
				       m->from);
		*lowers = lowers_of(b, b->st[idx].layers);
		*key = xstrdup(b->st[idx].key);
		return 0;
	}
	struct rt_image *img;
	int r = rt_image_lookup(m->from, &img, e);
	if (r < 0)
		return err_wrap(e, "--mount from=%s", m->from);
	*lowers = rt_image_lowers(img);
	*key = xstrdup(img->id);
	rt_image_free(img);
	return 0;
}

/* A bind mount: a path of the context (its content in the step's key)
 * or of a stage or an image, read-only; rw gives the RUN a scratch layer
 * over it whose writes are thrown away, as BuildKit does. */
static int mount_bind(struct builder *b, const struct df_mount *m,
		      struct run_mounts *rm, char ***parts, struct orch_err *e)
{
	const char *src = m->source && *m->source ? m->source : ".";
	_cleanup_strv_ char **lowers = NULL;
	_cleanup_free_ char *key = NULL;
	_cleanup_strv_ char **rels = NULL;
	int r;
	if (m->from) {
		r = from_lowers(b, m, &lowers, &key, e);
		if (r < 0)
			return r;
	} else {
		r = build_ctx_resolve(b->ctx, src, &rels, e);
		if (r < 0)
			return r;
		char digest[65];
		r = build_ctx_digest(b->ctx, rels, digest, e);
		if (r < 0)
			return r;
		key = xstrdup(digest);
		strv_push(&lowers, b->o->context);
	}
	strv_push(parts, m->from ? "bind-from" : "bind-context");
	strv_push(parts, key);
	strv_push(parts, src);
	strv_push(parts, m->target);
	strv_push(parts, m->rw ? "rw" : "ro");
	/* The source's tree, as one directory: an overlay of its layers
	 * (with a scratch upper when rw). */
	_cleanup_free_ char *top = xasprintf("%s/bind-%zu", b->tmp, rm->n);
	_cleanup_free_ char *mnt = path_join(top, "mnt");
	_cleanup_free_ char *up = path_join(top, "upper");
	_cleanup_free_ char *wk = path_join(top, "work");
	if ((r = mkdir_p(mnt, 0755, e)) < 0 || (r = mkdir_p(up, 0755, e)) < 0 ||
	    (r = mkdir_p(wk, 0755, e)) < 0)
		return r;
	/* Always an overlay, never a bind of the context: a file system of
	 * its own, which no removal of the scratch directory goes into. A
	 * read-only overlay needs two lower layers: the empty one. */
	if (strv_len(lowers) == 1 && !m->rw)
		strv_push(&lowers, b->empty);
	r = mount_overlay(mnt, lowers, m->rw ? up : NULL, m->rw ? wk : NULL,
			  e);
	if (r < 0)
		return r;
	strv_push(&rm->overlays, mnt);
	strv_push(&rm->overlays, top);
	_cleanup_free_ char *rel = NULL;
	if (rels) {
		rel = xstrdup(rels[0] ? rels[0] : "");
	} else {
		_cleanup_close_ int fd =
		    open(mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
		char **one = NULL;
		r = fd < 0 ? err_sys(e, errno, "opening %s", mnt)
			   : build_resolve(fd, false, NULL, src, &one, e);
		if (r < 0)
			return r;
		rel = xstrdup(one[0] ? one[0] : "");
		strv_free(one);
	}
	_cleanup_free_ char *path =
	    *rel && !streq(rel, ".") ? path_join(mnt, rel) : xstrdup(mnt);
	mount_add(rm, RT_MOUNT_BIND, path, m->target, !m->rw);
	return 0;
}

static int mount_secret(struct builder *b, const struct df_mount *m,
			struct run_mounts *rm, struct orch_err *e)
{
	const char *path = NULL;
	size_t n = strlen(m->id);
	for (size_t i = 0; b->o->secrets && b->o->secrets[i] && !path; i++)
		if (strncmp(b->o->secrets[i], m->id, n) == 0 &&
		    b->o->secrets[i][n] == '=')
			path = b->o->secrets[i] + n + 1;
	if (!path && m->required)
		return err_set(e, ENOENT,
			       "--mount: secret \"%s\" is not given (compose's "
			       "build.secrets, or --secret id=%s,src=FILE)",
			       m->id, m->id);
	if (!path)
		return 0;
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return err_set(e, ENOENT, "--mount: secret \"%s\": %s is not "
					  "a regular file",
			       m->id, path);
	mount_add(rm, RT_MOUNT_BIND, path, m->target, true);
	return 0;
}

/* Every --mount of a RUN, set up on the host; what they are (and a bind
 * source's content) goes into the step's cache key. */
static int run_mounts_prepare(struct builder *b, const struct df_instr *in,
			      char *const *env, struct run_mounts *rm,
			      char ***parts, struct orch_err *e)
{
	for (size_t i = 0; i < in->n_flags; i++) {
		if (!streq(in->flags[i].name, "mount"))
			continue;
		_cleanup_free_ char *v = NULL;
		int r = expand(b, in, env,
			       in->flags[i].value ? in->flags[i].value : "",
			       &v, e);
		if (r < 0)
			return r;
		struct df_mount m;
		if ((r = df_mount_parse(v, &m, e)) < 0)
			return r;
		switch (m.type) {
		case DF_MOUNT_CACHE:
			strv_push(parts, "cache");
			strv_push(parts, m.target);
			r = m.from ? err_set(e, ENOTSUP,
					     "--mount: a cache seeded from= is "
					     "not supported")
				   : mount_cache(b, &m, rm, e);
			break;
		case DF_MOUNT_TMPFS:
			strv_push(parts, "tmpfs");
			strv_push(parts, m.target);
			mount_add(rm, RT_MOUNT_TMPFS, NULL, m.target, false)
			    ->size = m.size;
			break;
		case DF_MOUNT_BIND:
			r = mount_bind(b, &m, rm, parts, e);
			break;
		case DF_MOUNT_SECRET:
			r = mount_secret(b, &m, rm, e);
			break;
		case DF_MOUNT_SSH:
			r = err_set(e, ENOTSUP,
				    "--mount=type=ssh is not supported (no SSH "
				    "agent is forwarded to builds)");
			break;
		}
		df_mount_clear(&m);
		if (r < 0)
			return r;
	}
	return 0;
}

static int do_run(struct builder *b, struct stage_state *s,
		  const struct df_instr *in, struct orch_err *e)
{
	const char *net = df_flag(in, "network");
	if (net && !streq(net, "none") && !streq(net, "default"))
		return err_set(e, ENOTSUP,
			       "%s:%d: RUN --network=%s is not "
			       "supported",
			       b->df->path, in->line, net);
	struct step_job job = {
	    .kind = JOB_RUN,
	    .network = !(net && streq(net, "none")) &&
		       !(b->o->network && streq(b->o->network, "none")),
	};
	_cleanup_strv_ char **argv = NULL;
	if (in->json) {
		argv = strv_copy(in->args);
	} else {
		argv = s->cfg.shell ? strv_copy(s->cfg.shell) : NULL;
		if (!argv) {
			strv_push(&argv, "/bin/sh");
			strv_push(&argv, "-c");
		}
		strv_push(&argv, in->args[0]);
	}
	_cleanup_strv_ char **env = strv_copy(s->cfg.env);
	for (size_t i = 0; s->args && s->args[i]; i++) {
		_cleanup_free_ char *k =
		    xstrndup(s->args[i], strcspn(s->args[i], "="));
		if (!kv_get(env, k))
			strv_push(&env, s->args[i]);
	}
	const char *user = s->cfg.user && *s->cfg.user ? s->cfg.user : "0";
	_cleanup_free_ char *pw = image_file(b, s, "etc/passwd");
	_cleanup_free_ char *gr = image_file(b, s, "etc/group");
	int r = build_lookup_user(user, pw, gr, &job.uid, &job.gid, e);
	if (r < 0)
		return instr_err(b, in, e);
	job.argv = argv;
	job.env = env;
	job.workdir = s->cfg.workdir && *s->cfg.workdir ? s->cfg.workdir : "/";
	_cleanup_strv_ char **parts = NULL;
	strv_push(&parts, "RUN");
	strv_push(&parts, in->json ? "exec" : "shell");
	for (size_t i = 0; argv[i]; i++)
		strv_push(&parts, argv[i]);
	strv_push(&parts, "env");
	for (size_t i = 0; env[i]; i++)
		strv_push(&parts, env[i]);
	strv_push(&parts, "user");
	strv_push(&parts, user);
	strv_push(&parts, "workdir");
	strv_push(&parts, job.workdir);
	struct run_mounts rm = {0};
	r = run_mounts_prepare(b, in, env, &rm, &parts, e);
	job.mounts = rm.v;
	job.n_mounts = rm.n;
	_cleanup_strv_ char **lowers = lowers_of(b, s->layers);
	_cleanup_strv_ char **points = xcalloc(1, sizeof(char *));
	for (size_t i = 0; i < rm.n; i++)
		mount_points_add(&points, lowers, rm.v[i].target);
	job.mount_points = points;
	if (r == 0)
		r = file_step(b, s, parts, &job, e);
	run_mounts_release(&rm);
	if (r < 0)
		return instr_err(b, in, e);
	return 0;
}

/* An absolute, cleaned path: relative ones are under the workdir. */
static char *image_path(const struct stage_state *s, const char *p)
{
	_cleanup_free_ char *full =
	    p[0] == '/'
		? xstrdup(p)
		: xasprintf("%s/%s", s->cfg.workdir ? s->cfg.workdir : "", p);
	_cleanup_strv_ char **parts = path_components(full, NULL);
	_cleanup_free_ char *rel = strv_join(parts, "/");
	return xasprintf("/%s", rel);
}

static int do_workdir(struct builder *b, struct stage_state *s,
		      const struct df_instr *in, char *const *env,
		      struct orch_err *e)
{
	_cleanup_free_ char *w = NULL;
	int r = expand(b, in, env, in->args[0], &w, e);
	if (r < 0)
		return r;
	char *path = image_path(s, w);
	free(s->cfg.workdir);
	s->cfg.workdir = path;
	struct step_job job = {.kind = JOB_FS, .mkdir = path};
	char *parts[] = {"WORKDIR", path, NULL};
	r = file_step(b, s, parts, &job, e);
	return r < 0 ? instr_err(b, in, e) : 0;
}

/* A heredoc's text with $NAME and ${NAME} replaced from env, as BuildKit
 * expands an unquoted heredoc of COPY (quotes are left alone). */
static char *heredoc_expand(const char *body, char *const *env)
{
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "");
	for (const char *c = body; *c; c++) {
		if (*c == '\\' && c[1] == '$') {
			sb_add(&sb, "$", 1);
			c++;
			continue;
		}
		if (*c != '$') {
			sb_add(&sb, c, 1);
			continue;
		}
		bool brace = c[1] == '{';
		const char *n = c + 1 + brace;
		size_t len = 0;
		while (isalnum((unsigned char)n[len]) || n[len] == '_')
			len++;
		if (!len || (brace && n[len] != '}')) {
			sb_add(&sb, c, 1);
			continue;
		}
		_cleanup_free_ char *name = xstrndup(n, len);
		const char *v = kv_get(env, name);
		sb_adds(&sb, v ? v : "");
		c = n + len + brace - 1;
	}
	return sb_steal(&sb);
}

/* COPY's heredoc sources: written as files named after them in a scratch
 * directory of the build, which becomes the copy's source. */
static int copy_heredocs(struct builder *b, const struct df_instr *in,
			 char *const *env, char ***parts, struct build_copy *op,
			 char ***rels, int *dirfd, struct orch_err *e)
{
	char n[32];
	snprintf(n, sizeof(n), "heredoc-%u", b->step);
	_cleanup_free_ char *dir = path_join(b->tmp, n);
	if (mkdir(dir, 0700) < 0)
		return err_sys(e, errno, "creating %s", dir);
	for (size_t i = 0; in->args[i + 1]; i++) {
		const struct df_heredoc *h = df_heredoc_of(in, in->args[i]);
		if (!h)
			return err_set(e, EINVAL,
				       "%s:%d: %s mixes heredocs with other "
				       "sources",
				       b->df->path, in->line,
				       df_cmd_name(in->cmd));
		_cleanup_free_ char *text =
		    h->expand ? heredoc_expand(h->body, env) : xstrdup(h->body);
		_cleanup_free_ char *path = path_join(dir, h->name);
		int r = write_file_atomic(path, text, strlen(text), 0644, e);
		if (r < 0)
			return r;
		strv_push(rels, h->name);
		strv_push(parts, "heredoc");
		strv_push(parts, text);
	}
	*dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd < 0)
		return err_sys(e, errno, "opening %s", dir);
	op->src_root = *dirfd;
	op->srcs = *rels;
	return 0;
}

static int do_copy(struct builder *b, struct stage_state *s,
		   const struct df_instr *in, char *const *env,
		   struct orch_err *e)
{
	bool add = in->cmd == DF_ADD;
	_cleanup_free_ char *from = NULL, *chown = NULL, *chmod_s = NULL;
	int r = 0;
	if (df_flag(in, "from"))
		r = expand(b, in, env, df_flag(in, "from"), &from, e);
	if (r == 0 && df_flag(in, "chown"))
		r = expand(b, in, env, df_flag(in, "chown"), &chown, e);
	if (r == 0 && df_flag(in, "chmod"))
		r = expand(b, in, env, df_flag(in, "chmod"), &chmod_s, e);
	if (r < 0)
		return r;
	_cleanup_strv_ char **words = xcalloc(1, sizeof(char *));
	for (size_t i = 0; in->args[i]; i++) {
		char *w;
		r = expand(b, in, env, in->args[i], &w, e);
		if (r < 0)
			return r;
		strv_push(&words, w);
		free(w);
	}
	size_t n = strv_len(words);
	const char *dest_raw = words[n - 1];
	struct step_job job = {.kind = JOB_FS};
	struct build_copy *op = &job.copy;
	_cleanup_free_ char *dest = image_path(s, dest_raw);
	op->dest = dest;
	op->dest_dir = dest_raw[strlen(dest_raw) - 1] == '/';
	op->unpack = add;
	op->chown = chown;
	if (chmod_s) {
		char *end;
		unsigned long m = strtoul(chmod_s, &end, 8);
		if (!*chmod_s || *end || m > 07777)
			return err_set(e, EINVAL,
				       "%s:%d: --chmod=%s: not an "
				       "octal mode",
				       b->df->path, in->line, chmod_s);
		op->has_chmod = true;
		op->chmod = (mode_t)m;
	}
	_cleanup_strv_ char **parts = NULL;
	strv_push(&parts, df_cmd_name(in->cmd));
	for (size_t i = 0; i < in->n_flags; i++)
		if (!streq(in->flags[i].name, "from"))
			strv_push(&parts, in->flags[i].name);
	strv_push(&parts, chown ? chown : "");
	strv_push(&parts, chmod_s ? chmod_s : "");
	for (size_t i = 0; i < n; i++)
		strv_push(&parts, words[i]);
	words[n - 1] = NULL; /* the sources only, from here on */
	free((char *)dest_raw);
	_cleanup_strv_ char **rels = xcalloc(1, sizeof(char *));
	_cleanup_strv_ char **from_layers = NULL;
	_cleanup_close_ int heredoc_fd = -1;
	if (from) {
		int idx = df_stage_index(b->df, from);
		if (idx >= 0) {
			struct stage_state *src = &b->st[idx];
			if (!src->done)
				return err_set(e, EINVAL,
					       "%s:%d: --from=%s: "
					       "the stage is not "
					       "built before this "
					       "one",
					       b->df->path, in->line, from);
			from_layers = strv_copy(src->layers);
			strv_push(&parts, "from-stage");
			strv_push(&parts, src->key);
		} else {
			struct rt_image *img;
			r = rt_image_lookup(from, &img, e);
			if (r < 0)
				return err_wrap(e, "%s:%d: --from=%s",
						b->df->path, in->line, from);
			from_layers = strv_copy(img->layers);
			strv_push(&parts, "from-image");
			strv_push(&parts, img->id);
			rt_image_free(img);
		}
		job.from_other = true;
		job.from_layers = from_layers;
		job.raw_srcs = words;
	} else if (in->n_heredocs) {
		r = copy_heredocs(b, in, env, &parts, op, &rels, &heredoc_fd,
				  e);
		if (r < 0)
			return instr_err(b, in, e);
	} else {
		for (size_t i = 0; words[i]; i++) {
			if (add && (startswith(words[i], "http://") ||
				    startswith(words[i], "https://") ||
				    startswith(words[i], "git@")))
				return err_set(e, ENOTSUP,
					       "%s:%d: ADD from a URL is not "
					       "supported (use RUN with a "
					       "download tool)",
					       b->df->path, in->line);
			char **one;
			r = build_ctx_resolve(b->ctx, words[i], &one, e);
			if (r < 0)
				return instr_err(b, in, e);
			for (size_t k = 0; one[k]; k++)
				strv_push(&rels, one[k]);
			strv_free(one);
		}
		char digest[65];
		r = build_ctx_digest(b->ctx, rels, digest, e);
		if (r < 0)
			return instr_err(b, in, e);
		strv_push(&parts, "content");
		strv_push(&parts, digest);
		op->context = true;
		op->src_root = build_ctx_fd(b->ctx);
		op->ig = build_ctx_ignore(b->ctx);
		op->srcs = rels;
	}
	r = file_step(b, s, parts, &job, e);
	if (job.copy.srcs != rels)
		strv_free(job.copy.srcs);
	return r < 0 ? instr_err(b, in, e) : 0;
}

/* ---- metadata steps
 * ---------------------------------------------------------- */

static int expand_all(struct builder *b, const struct df_instr *in,
		      char *const *env, char ***out, struct orch_err *e)
{
	char **v = xcalloc(1, sizeof(char *));
	for (size_t i = 0; in->args[i]; i++) {
		char *w;
		int r = expand(b, in, env, in->args[i], &w, e);
		if (r < 0) {
			strv_free(v);
			return r;
		}
		strv_push(&v, w);
		free(w);
	}
	*out = v;
	return 0;
}

static char **command_of(const struct stage_state *s, const struct df_instr *in)
{
	if (in->json)
		return strv_copy(in->args);
	char **v = s->cfg.shell ? strv_copy(s->cfg.shell) : NULL;
	if (!v) {
		strv_push(&v, "/bin/sh");
		strv_push(&v, "-c");
	}
	strv_push(&v, in->args[0]);
	return v;
}

static int do_expose(struct builder *b, struct stage_state *s,
		     const struct df_instr *in, char *const *words,
		     struct orch_err *e)
{
	for (size_t i = 0; words[i]; i++) {
		_cleanup_free_ char *w = xstrdup(words[i]);
		char *slash = strchr(w, '/');
		if (slash)
			*slash = 0;
		_cleanup_free_ char *proto = xstrdup(slash ? slash + 1 : "tcp");
		for (char *c = proto; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		char *dash = strchr(w, '-');
		char *end1, *end2 = NULL;
		unsigned long lo = strtoul(w, &end1, 10);
		unsigned long hi = dash ? strtoul(dash + 1, &end2, 10) : lo;
		if (!*w || (dash ? end1 != dash || *end2 : *end1) || lo == 0 ||
		    hi > 65535 || hi < lo ||
		    (!streq(proto, "tcp") && !streq(proto, "udp") &&
		     !streq(proto, "sctp")))
			return err_set(e, EINVAL,
				       "%s:%d: EXPOSE %s: not a "
				       "port",
				       b->df->path, in->line, words[i]);
		for (unsigned long p = lo; p <= hi; p++) {
			_cleanup_free_ char *port =
			    xasprintf("%lu/%s", p, proto);
			strv_add_unique(&s->cfg.exposed_ports, port);
		}
	}
	return 0;
}

static int do_healthcheck(struct builder *b, struct stage_state *s,
			  const struct df_instr *in, struct orch_err *e)
{
	(void)b;
	(void)e;
	if (s->cfg.healthcheck) {
		strv_free(s->cfg.healthcheck->test);
		free(s->cfg.healthcheck);
	}
	struct rt_healthcheck *h = xcalloc(1, sizeof(*h));
	h->test = strv_copy(in->args);
	static const struct {
		const char *flag;
		size_t off;
	} d[] = {
	    {"interval", offsetof(struct rt_healthcheck, interval_ns)},
	    {"timeout", offsetof(struct rt_healthcheck, timeout_ns)},
	    {"start-period", offsetof(struct rt_healthcheck, start_period_ns)},
	    {"start-interval",
	     offsetof(struct rt_healthcheck, start_interval_ns)}};
	for (size_t i = 0; i < ARRAY_SIZE(d); i++) {
		const char *v = df_flag(in, d[i].flag);
		if (v) /* validated by the parser */
			df_duration(v, (int64_t *)((char *)h + d[i].off));
	}
	const char *r = df_flag(in, "retries");
	if (r)
		h->retries = atoi(r);
	s->cfg.healthcheck = h;
	return 0;
}

static int do_arg(struct builder *b, struct stage_state *s,
		  const struct df_instr *in, char *const *env, char ***into,
		  struct orch_err *e)
{
	(void)s;
	for (size_t i = 0; in->args[i]; i++) {
		_cleanup_free_ char *name = NULL, *def = NULL;
		const char *eq = strchr(in->args[i], '=');
		name = xstrndup(in->args[i], eq ? (size_t)(eq - in->args[i])
						: strlen(in->args[i]));
		if (eq) {
			int r = expand(b, in, env, eq + 1, &def, e);
			if (r < 0)
				return r;
		}
		const char *given = kv_get(b->o->build_args, name);
		const char *meta =
		    into != &b->meta ? kv_get(b->meta, name) : NULL;
		const char *v = given ? given : def ? def : meta;
		if (v)
			kv_set(into, name, v);
	}
	return 0;
}

static int do_pairs(struct builder *b, struct stage_state *s,
		    const struct df_instr *in, char *const *env,
		    struct orch_err *e)
{
	for (size_t i = 0; in->args[i] && in->args[i + 1]; i += 2) {
		_cleanup_free_ char *k = NULL, *v = NULL;
		int r = expand(b, in, env, in->args[i], &k, e);
		if (r == 0)
			r = expand(b, in, env, in->args[i + 1], &v, e);
		if (r < 0)
			return r;
		kv_set(in->cmd == DF_ENV ? &s->cfg.env : &s->cfg.labels, k, v);
	}
	return 0;
}

/* Metadata instructions: they change the config only; they still chain
 * into the cache key, since later steps see their effect. */
static int do_meta(struct builder *b, struct stage_state *s,
		   const struct df_instr *in, char *const *env,
		   struct orch_err *e)
{
	_cleanup_strv_ char **words = NULL;
	int r = 0;
	switch (in->cmd) {
	case DF_ENV:
	case DF_LABEL:
		r = do_pairs(b, s, in, env, e);
		break;
	case DF_ARG:
		r = do_arg(b, s, in, env, &s->args, e);
		break;
	case DF_USER:
	case DF_STOPSIGNAL:
	case DF_EXPOSE:
	case DF_VOLUME:
		r = expand_all(b, in, env, &words, e);
		if (r < 0)
			break;
		if (in->cmd == DF_USER) {
			free(s->cfg.user);
			s->cfg.user = xstrdup(words[0]);
		} else if (in->cmd == DF_STOPSIGNAL) {
			if (parse_signal(words[0]) < 0)
				return err_set(e, EINVAL,
					       "%s:%d: STOPSIGNAL "
					       "%s: unknown signal",
					       b->df->path, in->line, words[0]);
			free(s->cfg.stop_signal);
			s->cfg.stop_signal = xstrdup(words[0]);
		} else if (in->cmd == DF_EXPOSE) {
			r = do_expose(b, s, in, words, e);
		} else {
			for (size_t i = 0; words[i]; i++)
				strv_add_unique(&s->cfg.volumes, words[i]);
		}
		break;
	case DF_CMD:
		strv_free(s->cfg.cmd);
		s->cfg.cmd = command_of(s, in);
		s->cmd_set = true;
		break;
	case DF_ENTRYPOINT:
		strv_free(s->cfg.entrypoint);
		s->cfg.entrypoint = command_of(s, in);
		/* As docker: a CMD inherited from the base image is reset
		 * by a new ENTRYPOINT. */
		if (!s->cmd_set) {
			strv_free(s->cfg.cmd);
			s->cfg.cmd = NULL;
		}
		break;
	case DF_SHELL:
		strv_free(s->cfg.shell);
		s->cfg.shell = strv_copy(in->args);
		break;
	case DF_HEALTHCHECK:
		r = do_healthcheck(b, s, in, e);
		break;
	case DF_MAINTAINER:
		/* Deprecated by docker in favour of LABEL; the image config
		 * has no author field. */
		break;
	default:
		break;
	}
	if (r < 0)
		return r;
	_cleanup_strv_ char **parts = NULL;
	strv_push(&parts, df_cmd_name(in->cmd));
	strv_push(&parts, in->json ? "json" : "text");
	for (size_t i = 0; in->args[i]; i++)
		strv_push(&parts, in->args[i]);
	for (size_t i = 0; i < in->n_flags; i++)
		strv_push(&parts, in->flags[i].name);
	for (size_t i = 0; words && words[i]; i++)
		strv_push(&parts, words[i]);
	for (size_t i = 0; env[i]; i++)
		strv_push(&parts, env[i]);
	build_cache_key(s->key, parts, s->key);
	return 0;
}

/* ---- stages
 * ------------------------------------------------------------------ */

static int stage_base(struct builder *b, size_t idx, char **base,
		      struct orch_err *e)
{
	const struct df_instr *from = &b->df->stages[idx].from;
	int r = expand(b, from, b->meta, from->args[0], base, e);
	if (r < 0)
		return r;
	if (!**base)
		return err_set(e, EINVAL, "%s:%d: FROM: empty image name",
			       b->df->path, from->line);
	return 0;
}

/* The stage a FROM or --from names, only by name (FROM) or also by index
 * (--from), when it is an earlier stage. */
static int stage_ref(struct builder *b, size_t idx, const char *ref,
		     bool by_index)
{
	int i = by_index ? df_stage_index(b->df, ref) : -1;
	for (size_t k = 0; !by_index && k < b->df->n_stages; k++)
		if (b->df->stages[k].name &&
		    strcasecmp(b->df->stages[k].name, ref) == 0)
			i = (int)k;
	return i >= 0 && (size_t)i < idx ? i : -1;
}

/* Marks the stages the target needs, and counts their steps. */
/* The from= of a --mount value (NULL when it has none). */
static int mount_from(struct builder *b, const struct df_instr *in,
		      const char *value, char **out, struct orch_err *e)
{
	*out = NULL;
	_cleanup_free_ char *v = NULL;
	int r = expand(b, in, b->meta, value, &v, e);
	if (r < 0)
		return r;
	struct df_mount m;
	if (df_mount_parse(v, &m, e) < 0)
		return instr_err(b, in, e);
	*out = m.from ? xstrdup(m.from) : NULL;
	df_mount_clear(&m);
	return 0;
}

static int mark_needed(struct builder *b, size_t idx, struct orch_err *e)
{
	struct stage_state *s = &b->st[idx];
	if (s->needed)
		return 0;
	s->needed = true;
	const struct df_stage *st = &b->df->stages[idx];
	b->n_steps += 1 + (unsigned)st->n_instrs;
	_cleanup_free_ char *base = NULL;
	int r = stage_base(b, idx, &base, e);
	if (r < 0)
		return r;
	int dep = stage_ref(b, idx, base, false);
	if (dep >= 0 && (r = mark_needed(b, (size_t)dep, e)) < 0)
		return r;
	for (size_t i = 0; i < st->n_instrs; i++) {
		const struct df_instr *in = &st->instrs[i];
		/* COPY --from, and RUN --mount=...,from= */
		for (size_t k = 0; k < in->n_flags; k++) {
			const struct df_flag *fl = &in->flags[k];
			_cleanup_free_ char *f = NULL;
			if (streq(fl->name, "from") && fl->value)
				r = expand(b, in, b->meta, fl->value, &f, e);
			else if (streq(fl->name, "mount") && fl->value)
				r = mount_from(b, in, fl->value, &f, e);
			else
				continue;
			if (r < 0)
				return r;
			dep = f ? stage_ref(b, idx, f, true) : -1;
			if (dep >= 0 &&
			    (r = mark_needed(b, (size_t)dep, e)) < 0)
				return r;
		}
	}
	return 0;
}

static int build_stage(struct builder *b, size_t idx, struct orch_err *e)
{
	struct stage_state *s = &b->st[idx];
	const struct df_stage *st = &b->df->stages[idx];
	_cleanup_free_ char *base = NULL;
	int r = stage_base(b, idx, &base, e);
	if (r < 0)
		return r;
	step_log(b, &st->from);
	int dep = stage_ref(b, idx, base, false);
	if (dep >= 0) {
		s->layers = strv_copy(b->st[dep].layers);
		cfg_copy(&s->cfg, &b->st[dep].cfg);
		memcpy(s->key, b->st[dep].key, sizeof(s->key));
	} else if (streq(base, "scratch")) {
		s->layers = xcalloc(1, sizeof(char *));
		strv_push(&s->cfg.env, DEFAULT_PATH);
		char *parts[] = {"FROM", "scratch", NULL};
		build_cache_key("", parts, s->key);
	} else {
		struct rt_image *img;
		r = rt_image_lookup(base, &img, e);
		if (r < 0)
			return err_wrap(e, "%s:%d: FROM %s", b->df->path,
					st->from.line, base);
		s->layers = strv_copy(img->layers);
		cfg_copy(&s->cfg, &img->config);
		char *parts[] = {"FROM", img->id, NULL};
		build_cache_key("", parts, s->key);
		rt_image_free(img);
	}
	for (size_t i = 0; i < st->n_instrs; i++) {
		const struct df_instr *in = &st->instrs[i];
		r = check_interrupted(e);
		if (r < 0)
			return r;
		step_log(b, in);
		_cleanup_strv_ char **env = stage_env(s);
		switch (in->cmd) {
		case DF_RUN:
			r = do_run(b, s, in, e);
			break;
		case DF_COPY:
		case DF_ADD:
			r = do_copy(b, s, in, env, e);
			break;
		case DF_WORKDIR:
			r = do_workdir(b, s, in, env, e);
			break;
		default:
			r = do_meta(b, s, in, env, e);
			break;
		}
		if (r < 0)
			return r;
	}
	s->done = true;
	return 0;
}

/* ---- the build
 * ------------------------------------------------------------------ */

static int read_containerfile(const struct build_opts *o, char **path,
			      char **text, struct orch_err *e)
{
	if (o->file) {
		*path = xstrdup(o->file);
	} else {
		*path = path_join(o->context, "Containerfile");
		if (access(*path, F_OK) < 0) {
			free(*path);
			*path = path_join(o->context, "Dockerfile");
		}
	}
	return read_file(*path, text, NULL, e);
}

static int commit(struct builder *b, struct stage_state *s, struct orch_err *e)
{
	for (size_t i = 0; b->o->labels && b->o->labels[i]; i++) {
		_cleanup_free_ char *k =
		    xstrndup(b->o->labels[i], strcspn(b->o->labels[i], "="));
		const char *v = strchr(b->o->labels[i], '=');
		kv_set(&s->cfg.labels, k, v ? v + 1 : "");
	}
	_cleanup_strv_ char **parts = NULL;
	strv_push(&parts, "COMMIT");
	for (size_t i = 0; s->cfg.labels && s->cfg.labels[i]; i++)
		strv_push(&parts, s->cfg.labels[i]);
	char key[65];
	build_cache_key(s->key, parts, key);
	/* The image of an unchanged build is the same image: its config
	 * carries a creation time, so committing again would change the
	 * id. */
	_cleanup_free_ char *cached = NULL;
	struct rt_image *img = NULL;
	struct orch_err ignore = {0};
	if (cache_get(b, key, "image", &cached) && cached &&
	    rt_image_lookup(cached, &img, &ignore) == 0 &&
	    streq(img->id, cached)) {
		rt_image_free(img);
		if (b->o->tag) {
			int r = rt_image_tag(cached, b->o->tag, e);
			if (r < 0)
				return r;
		}
		memcpy(b->res->id, cached, 65);
		return 0;
	}
	if (img)
		rt_image_free(img);
	int r = rt_image_commit(s->layers, &s->cfg, b->o->tag, b->res->id, e);
	if (r < 0)
		return r;
	cache_put(key, "image", b->res->id);
	return 0;
}

static int build_run(struct builder *b, struct orch_err *e)
{
	/* Global ARGs first: FROM lines and --from see only these. */
	for (size_t i = 0; i < b->df->n_meta_args; i++) {
		int r =
		    do_arg(b, NULL, &b->df->meta_args[i], b->meta, &b->meta, e);
		if (r < 0)
			return r;
	}
	size_t target = b->df->n_stages - 1;
	if (b->o->target) {
		int t = df_stage_index(b->df, b->o->target);
		if (t < 0)
			return err_set(e, ENOENT, "%s: no stage named %s",
				       b->df->path, b->o->target);
		target = (size_t)t;
	}
	int r = mark_needed(b, target, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i <= target; i++) {
		if (!b->st[i].needed)
			continue;
		r = build_stage(b, i, e);
		if (r < 0)
			return r;
	}
	b->res->steps = b->step;
	return commit(b, &b->st[target], e);
}

int build_image(const struct build_opts *o, struct build_result *res,
		struct orch_err *e)
{
	memset(res, 0, sizeof(*res));
	_cleanup_free_ char *path = NULL, *text = NULL;
	/* Held for the whole build: a directory under tmp that nobody
	 * locks is a dead owner's, and other commands remove it. */
	_cleanup_close_ int tmp_lock = -1;
	int r = read_containerfile(o, &path, &text, e);
	if (r < 0)
		return r;
	struct builder b = {
	    .o = o, .res = res, .log = o->log ? o->log : stderr};
	r = df_parse(path, text, &b.df, e);
	if (r < 0)
		return r;
	r = build_ctx_open(o->context, &b.ctx, e);
	if (r < 0)
		goto out;
	r = store_tmpdir("build", &b.tmp, &tmp_lock, e);
	if (r < 0)
		goto out;
	b.empty = path_join(b.tmp, "empty");
	if (mkdir(b.empty, 0755) < 0) {
		r = err_sys(e, errno, "creating %s", b.empty);
		goto out;
	}
	b.meta = xcalloc(1, sizeof(char *));
	b.st = xcalloc(b.df->n_stages, sizeof(*b.st));
	struct sigaction sa = {.sa_handler = on_signal}, old[3];
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	interrupted = 0;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, &old[i]);
	r = build_run(&b, e);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &old[i], NULL);
out:
	if (b.tmp) {
		struct orch_err re = {0};
		if (rm_rf(b.tmp, &re) < 0)
			log_warn("removing %s: %s", b.tmp, re.msg);
	}
	for (size_t i = 0; b.st && i < b.df->n_stages; i++)
		stage_clear(&b.st[i]);
	free(b.st);
	strv_free(b.meta);
	free(b.tmp);
	free(b.empty);
	free(b.resolv);
	if (b.netd)
		netd_close(b.netd);
	build_ctx_free(b.ctx);
	df_free(b.df);
	return r;
}
