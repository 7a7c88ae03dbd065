/* The builder: runs a parsed Containerfile with orch's own runtime.
 * Each stage keeps its layers and config in memory; a file-changing step
 * (RUN, COPY, ADD, WORKDIR) runs over an overlay with a fresh upper
 * directory that becomes one stored layer, metadata steps change only
 * the config.  Steps are cached by a key chained from the base image
 * through every instruction and the content it reads. */
#include "netd/netd.h"
#include "orchestrator/build/build.h"
#include "orchestrator/build/builder_impl.h"
#include "runtime/registry/registry.h"
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

const char *build_kv_get(char *const *v, const char *key)
{
	size_t n = strlen(key);
	const char *found = NULL;
	for (size_t i = 0; v && v[i]; i++)
		if (strncmp(v[i], key, n) == 0 && v[i][n] == '=')
			found = v[i] + n + 1;
	return found;
}

/* Sets key=value in a "K=V" list, replacing an earlier value in place. */
void build_kv_set(char ***v, const char *key, const char *value)
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
	dst->onbuild = src->onbuild ? strv_copy(src->onbuild) : NULL;
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

int build_expand(struct builder *b, const struct df_instr *in, char *const *env,
		 const char *word, char **out, struct orch_err *e)
{
	int r = df_expand(word, b->df->escape, env, out, e);
	if (r < 0)
		return err_wrap(e, "%s:%d", b->df->path, in->line);
	return 0;
}

int instr_err(struct builder *b, const struct df_instr *in, struct orch_err *e)
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
char **build_lowers(struct builder *b, char *const *layers)
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

int build_mount_overlay(const char *target, char *const *lowers,
			const char *upper, const char *work, struct orch_err *e)
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
	_cleanup_strv_ char **lowers = build_lowers(b, s->layers);
	int r = build_mount_overlay(root, lowers, upper, work, e);
	if (r < 0)
		return r;
	_cleanup_close_ int src = -1;
	if (job->from_other) {
		_cleanup_free_ char *sdir = path_join(dir, "src");
		_cleanup_strv_ char **sl = build_lowers(b, job->from_layers);
		if (strv_len(sl) == 1)
			r = mount(sl[0], sdir, NULL, MS_BIND | MS_REC, NULL) < 0
				? err_sys(e, errno, "mounting the source")
				: 0;
		else
			r = build_mount_overlay(sdir, sl, NULL, NULL, e);
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
	uid_t uid = host_uid();
	if (uid == 0)
		snprintf(out, 32, BUILD_NETWORK);
	else
		snprintf(out, 32, BUILD_NETWORK "-%u", (unsigned)uid);
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
	b->gateway = xstrdup(net.gateway);
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

/* RUN steps' /etc/hosts, as BuildKit gives it: localhost, and the build's
 * extra hosts (host-gateway: the build network's gateway). */
static int build_hosts(struct builder *b, struct orch_err *e)
{
	if (b->hosts)
		return 0;
	struct strbuf sb;
	sb_init(&sb);
	sb_printf(&sb, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
		       "ip6-loopback\n");
	for (size_t i = 0; b->o->extra_hosts && b->o->extra_hosts[i]; i++) {
		const char *h = b->o->extra_hosts[i];
		size_t k = strcspn(h, "=:");
		const char *ip = h[k] ? h + k + 1 : "";
		if (streq(ip, "host-gateway") && !build_net_up(b)) {
			sb_free(&sb);
			return err_set(e, ENETUNREACH,
				       "extra host %s: host-gateway is the "
				       "build network's gateway, which is "
				       "not up",
				       h);
		}
		if (streq(ip, "host-gateway"))
			ip = b->gateway;
		sb_printf(&sb, "%s\t%.*s\n", ip, (int)k, h);
	}
	char *path = path_join(b->tmp, "hosts");
	int r = write_file_atomic(path, sb.buf, sb.len, 0644, e);
	sb_free(&sb);
	if (r < 0) {
		free(path);
		return r;
	}
	b->hosts = path;
	return 0;
}

/* The build's ulimits as rlimits of its RUN steps, each checked. */
static int build_rlimits(struct builder *b, struct orch_err *e)
{
	size_t n = strv_len(b->o->ulimits);
	if (!n)
		return 0;
	b->rlimits = xcalloc(n, sizeof(*b->rlimits));
	for (size_t i = 0; i < n; i++) {
		const char *why;
		int res;
		int64_t soft, hard;
		if (!ulimit_parse(b->o->ulimits[i], &res, &soft, &hard, &why))
			return err_set(e, EINVAL, "ulimit %s: %s",
				       b->o->ulimits[i], why);
		b->rlimits[b->n_rlimits++] = (struct rt_rlimit){
		    res, (uint64_t)soft, (uint64_t)hard};
	}
	return 0;
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

int build_ids(struct builder *b, struct orch_err *e)
{
	if (b->ids_known)
		return 0;
	struct rt_userns_conf uc;
	int r = rt_userns_config(&uc, e);
	if (r == 0 && uc.enabled &&
	    (r = rt_idrange_acquire(".build", &b->id_base, e)) < 0)
		err_wrap(e, "the builder's id range");
	b->ids_known = r == 0;
	return r;
}

static int run_container(struct builder *b, struct stage_state *s,
			 struct step_job *job, const char *dir,
			 struct orch_err *e)
{
	char rid[65];
	random_id(rid);
	_cleanup_free_ char *id = xasprintf("build-%.12s", rid);
	_cleanup_strv_ char **lowers = build_lowers(b, s->layers);
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
	int r = build_ids(b, e);
	if (r < 0)
		return r;
	struct rt_idmap map = {0, b->id_base, RT_IDRANGE_SIZE};
	if (b->id_base) {
		spec.uid_map = spec.gid_map = &map;
		spec.n_uid_map = spec.n_gid_map = 1;
		spec.namespaces |= RT_NS_USER;
	}
	int out = fileno(b->log);
	spec.stdio[0] = -1;
	spec.stdio[1] = out;
	spec.stdio[2] = out;
	bool net = job->network && build_net_up(b);
	if ((r = build_hosts(b, e)) < 0)
		return r;
	spec.rlimits = b->rlimits;
	spec.n_rlimits = b->n_rlimits;
	_cleanup_free_ struct rt_mount *mounts =
	    xcalloc(job->n_mounts + 2, sizeof(*mounts));
	if (job->n_mounts)
		memcpy(mounts, job->mounts, job->n_mounts * sizeof(*mounts));
	spec.mounts = mounts;
	spec.n_mounts = job->n_mounts;
	if (net)
		mounts[spec.n_mounts++] =
		    (struct rt_mount){.type = RT_MOUNT_BIND,
				      .source = b->resolv,
				      .target = "/etc/resolv.conf",
				      .readonly = true};
	mounts[spec.n_mounts++] = (struct rt_mount){.type = RT_MOUNT_BIND,
						    .source = b->hosts,
						    .target = "/etc/hosts",
						    .readonly = true};
	fprintf(b->log, "--> Running in %s\n", id);
	fflush(b->log);
	b->res->containers++;
	struct rt_container *c = NULL;
	r = rt_create(&spec, &c, e);
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
	/* An interruption explains whatever failed after its kill (the
	 * start's sync socket, say), as for the file steps. */
	if (interrupted)
		r = check_interrupted(e);
	else if (r == 0)
		r = wr;
	rt_container_free(c);
	struct orch_err de = {0};
	if (net && netd_endpoint_detach(b->netd, netname, id, NULL, &de) < 0 &&
	    r == 0) {
		*e = de;
		r = -de.code;
	}
	if (rt_delete(id, false, &de) < 0 && r == 0) {
		*e = de;
		r = -de.code;
	}
	drop_mount_points(dir, job->mount_points);
	static char *const own[] = {"etc/hosts", "etc/resolv.conf", NULL};
	drop_mount_points(dir, own);
	if (r < 0)
		return r;
	if (status != 0)
		return err_set(e, EIO, "the command exited with code %d",
			       status);
	return 0;
}

/* Runs a file-changing step, or takes its layer from the cache. */
int file_step(struct builder *b, struct stage_state *s, char *const *parts,
	      struct step_job *job, struct orch_err *e)
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
			r = rt_layer_from_upper(
				upper, job->kind == JOB_RUN ? b->id_base : 0,
				&layer, e);
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
char *stage_file(struct builder *b, struct stage_state *s, const char *rel)
{
	_cleanup_strv_ char **dirs = build_lowers(b, s->layers);
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

/* ---- stages
 * ------------------------------------------------------------------ */

static int stage_base(struct builder *b, size_t idx, char **base,
		      struct orch_err *e)
{
	const struct df_instr *from = &b->df->stages[idx].from;
	int r = build_expand(b, from, b->meta, from->args[0], base, e);
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
	int r = build_expand(b, in, b->meta, value, &v, e);
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
				r = build_expand(b, in, b->meta, fl->value, &f,
						 e);
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

/* A pull's layers as `docker pull` lists them once each is there. */
static void pull_progress(void *ctx, const char *ref, const char *layer,
			  const char *status, int64_t done, int64_t total)
{
	struct builder *b = ctx;
	(void)ref, (void)done, (void)total;
	if (!layer || (!streq(status, "Pull complete") &&
		       !streq(status, "Already exists")))
		return;
	const char *hex = strchr(layer, ':');
	fprintf(b->log, "%.12s: %s\n", hex ? hex + 1 : layer, status);
	fflush(b->log);
}

const struct named_ctx *build_named(const struct builder *b, const char *name)
{
	for (size_t i = 0; i < b->n_named; i++)
		if (streq(b->named[i].name, name))
			return &b->named[i];
	return NULL;
}

/* build_opts.contexts, each directory opened (and its .dockerignore
 * read) before the first step. */
static int named_open(struct builder *b, struct orch_err *e)
{
	size_t n = strv_len(b->o->contexts);
	b->named = xcalloc(n + 1, sizeof(*b->named));
	for (size_t i = 0; i < n; i++) {
		const char *kv = b->o->contexts[i], *eq = strchr(kv, '=');
		if (!eq || eq == kv || !eq[1])
			return err_set(e, EINVAL,
				       "additional context \"%s\": not "
				       "NAME=VALUE",
				       kv);
		struct named_ctx *nc = &b->named[b->n_named++];
		nc->name = xstrndup(kv, (size_t)(eq - kv));
		const char *v = eq + 1;
		if (startswith(v, "docker-image://") && v[15]) {
			nc->image = xstrdup(v + 15);
			continue;
		}
		if (v[0] != '/')
			return err_set(e, ENOTSUP,
				       "additional context %s: %s: only a "
				       "directory or docker-image://REF is "
				       "supported",
				       nc->name, v);
		int r = build_ctx_open(v, &nc->ctx, e);
		if (r < 0)
			return err_wrap(e, "additional context %s", nc->name);
	}
	return 0;
}

static void named_free(struct builder *b)
{
	for (size_t i = 0; i < b->n_named; i++) {
		free(b->named[i].name);
		free(b->named[i].image);
		build_ctx_free(b->named[i].ctx);
	}
	free(b->named);
}

int build_base_image(struct builder *b, const char *ref, struct rt_image **out,
		     struct orch_err *e)
{
	/* A named context stands for the image it names. */
	const struct named_ctx *nc = build_named(b, ref);
	if (nc && nc->ctx)
		return err_set(e, EINVAL,
			       "%s is a directory (an additional context): it "
			       "is copied from or mounted, not built on",
			       ref);
	if (nc)
		ref = nc->image;
	/* --pull renews what came from a registry; an image built or
	 * imported here (never pulled) has none to come from. */
	int r = rt_image_lookup(ref, out, e);
	if (r != -ENOENT &&
	    (r < 0 || !b->o->pull || strv_contains(b->pulled, ref) ||
	     rt_image_pulled_at(ref) == 0))
		return r;
	if (r == 0) {
		rt_image_free(*out);
		*out = NULL;
	}
	fprintf(b->log, "Pulling %s\n", ref);
	fflush(b->log);
	struct rt_pull_opts po = {.progress = pull_progress, .progress_ctx = b};
	struct rt_pull_result res;
	r = rt_image_pull(ref, &po, &res, e);
	if (r < 0)
		return err_wrap(e, "pulling %s", ref);
	strv_push(&b->pulled, ref);
	fprintf(b->log, "Digest: %s\nStatus: %s %s\n", res.digest,
		res.updated ? "Downloaded newer image for"
			    : "Image is up to date for",
		ref);
	fflush(b->log);
	return rt_image_lookup(ref, out, e);
}

static int do_step(struct builder *b, struct stage_state *s,
		   const struct df_instr *in, struct orch_err *e)
{
	_cleanup_strv_ char **env = stage_env(s);
	switch (in->cmd) {
	case DF_RUN:
		return do_run(b, s, in, e);
	case DF_COPY:
	case DF_ADD:
		return do_copy(b, s, in, env, e);
	case DF_WORKDIR:
		return do_workdir(b, s, in, env, e);
	default:
		return do_meta(b, s, in, env, e);
	}
}

/* The ONBUILD triggers of the image a stage starts from run first, as
 * the stage's own first steps (docker's order); the image built does not
 * keep them. */
static int run_triggers(struct builder *b, struct stage_state *s,
			const char *base, struct orch_err *e)
{
	_cleanup_strv_ char **triggers = s->cfg.onbuild;
	s->cfg.onbuild = NULL;
	for (size_t i = 0; triggers && triggers[i]; i++) {
		_cleanup_free_ char *what = xasprintf("ONBUILD of %s", base);
		_cleanup_free_ char *text =
		    xasprintf("FROM scratch\n%s\n", triggers[i]);
		struct dockerfile *df = NULL;
		int r = df_parse(what, text, &df, e);
		if (r == 0 && (df->n_stages != 1 || df->stages[0].n_instrs != 1))
			r = err_set(e, EINVAL, "%s: %s: one instruction", what,
				    triggers[i]);
		if (r == 0) {
			const struct df_instr *in = &df->stages[0].instrs[0];
			fprintf(b->log, "ONBUILD %s\n", in->text);
			fflush(b->log);
			r = do_step(b, s, in, e);
		}
		df_free(df);
		if (r < 0)
			return err_wrap(e, "%s", what);
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
		r = build_base_image(b, base, &img, e);
		if (r < 0)
			return err_wrap(e, "%s:%d: FROM %s", b->df->path,
					st->from.line, base);
		s->layers = strv_copy(img->layers);
		cfg_copy(&s->cfg, &img->config);
		char *parts[] = {"FROM", img->id, NULL};
		build_cache_key("", parts, s->key);
		rt_image_free(img);
		r = run_triggers(b, s, base, e);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < st->n_instrs; i++) {
		const struct df_instr *in = &st->instrs[i];
		r = check_interrupted(e);
		if (r < 0)
			return r;
		step_log(b, in);
		r = do_step(b, s, in, e);
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
		build_kv_set(&s->cfg.labels, k, v ? v + 1 : "");
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
	int r = rt_image_commit(s->layers, &s->cfg, NULL, b->o->tag,
				 b->res->id, e);
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
	if (r == 0)
		r = named_open(&b, e);
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
	if ((r = build_rlimits(&b, e)) < 0)
		goto out;
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
	build_ssh_stop(&b);
	if (b.tmp) {
		struct orch_err re = {0};
		if (rm_rf(b.tmp, &re) < 0)
			log_warn("removing %s: %s", b.tmp, re.msg);
	}
	for (size_t i = 0; b.st && i < b.df->n_stages; i++)
		stage_clear(&b.st[i]);
	free(b.st);
	strv_free(b.meta);
	strv_free(b.pulled);
	free(b.tmp);
	free(b.empty);
	free(b.resolv);
	free(b.gateway);
	free(b.hosts);
	free(b.rlimits);
	if (b.netd)
		netd_close(b.netd);
	build_ctx_free(b.ctx);
	named_free(&b);
	df_free(b.df);
	return r;
}
