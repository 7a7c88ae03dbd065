/* RUN and its mounts (--mount=type=cache, bind, tmpfs, secret): each
 * mount prepared beside the step's overlay and released after it, its
 * mount point left out of the layer. */
#include "netd/netd.h"
#include "orchestrator/build/build.h"
#include "orchestrator/build/builder_impl.h"
#include "runtime/runtime.h"
#include "runtime/store/store.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

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
		strv_add_unique(out, rel);
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
	size_t n_ssh;	 /* ssh mounts so far */
	char *ssh_sock;	 /* the first one's target: SSH_AUTH_SOCK */
};

static void run_mounts_release(struct run_mounts *rm)
{
	for (size_t i = 0; i < rm->n; i++) {
		free(rm->v[i].source);
		free(rm->v[i].target);
	}
	free(rm->v);
	free(rm->ssh_sock);
	for (size_t i = 0; i < rm->n_locks; i++)
		close(rm->locks[i]);
	free(rm->locks);
	/* Pairs: the mount point, then its scratch directory (removed only
	 * once the mount is gone). */
	for (size_t i = 0;
	     rm->overlays && rm->overlays[i] && rm->overlays[i + 1]; i += 2)
		if ((umount2(rm->overlays[i], MNT_DETACH) == 0 ||
		     errno == EINVAL) &&
		    rmdir(rm->overlays[i]) == 0)
			rm_rf(rm->overlays[i + 1], NULL);
	strv_free(rm->overlays);
	memset(rm, 0, sizeof(*rm));
}

/* In a remapped RUN, a host directory (a cache, a secret) is seen as the
 * image's files are, through the range (idmap RT_IDMAP_IMAGE); a bind
 * source's overlay is mounted that way already (RT_IDMAP_NONE). */
static struct rt_mount *mount_add(struct run_mounts *rm, enum rt_mount_type t,
				  const char *source, const char *target,
				  bool readonly, enum rt_idmap_kind idmap)
{
	rm->v = xrealloc(rm->v, (rm->n + 1) * sizeof(*rm->v));
	struct rt_mount *m = &rm->v[rm->n++];
	*m = (struct rt_mount){.type = t,
			       .source = source ? xstrdup(source) : NULL,
			       .target = xstrdup(target),
			       .readonly = readonly,
			       .idmap = idmap};
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
			if (mkdir(source,
				  m->mode >= 0 ? (mode_t)m->mode : 0755) < 0)
				return err_sys(e, errno, "creating %s", source);
			fd = -1;
		}
		if (fd >= 0) {
			rm->locks = xrealloc(rm->locks,
					     (rm->n_locks + 1) * sizeof(int));
			rm->locks[rm->n_locks++] = fd;
		}
	}
	mount_add(rm, RT_MOUNT_BIND, source, m->target, false, RT_IDMAP_IMAGE);
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
		*lowers = build_lowers(b, b->st[idx].layers);
		*key = xstrdup(b->st[idx].key);
		return 0;
	}
	struct rt_image *img;
	int r = build_base_image(b, m->from, &img, e);
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
	/* from= a directory context: its files, as the context's. */
	const struct named_ctx *nc =
	    m->from && df_stage_index(b->df, m->from) < 0
		? build_named(b, m->from)
		: NULL;
	struct build_ctx *ctx = nc && nc->ctx ? nc->ctx : b->ctx;
	if (m->from && ctx == b->ctx) {
		r = from_lowers(b, m, &lowers, &key, e);
		if (r < 0)
			return r;
	} else {
		r = build_ctx_resolve(ctx, src, &rels, e);
		if (r < 0)
			return r;
		char digest[65];
		r = build_ctx_digest(ctx, rels, digest, e);
		if (r < 0)
			return r;
		key = xstrdup(digest);
		strv_push(&lowers, build_ctx_dir(ctx));
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
	r = build_ids(b, e);
	if (r < 0)
		return r;
	r = b->id_base ? rt_overlay_mount(mnt, lowers, m->rw ? up : NULL,
					  m->rw ? wk : NULL, b->id_base, e)
		       : build_mount_overlay(mnt, lowers, m->rw ? up : NULL,
					     m->rw ? wk : NULL, e);
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
	mount_add(rm, RT_MOUNT_BIND, path, m->target, !m->rw, RT_IDMAP_NONE);
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
		return err_set(e, ENOENT,
			       "--mount: secret \"%s\": %s is not "
			       "a regular file",
			       m->id, path);
	mount_add(rm, RT_MOUNT_BIND, path, m->target, true, RT_IDMAP_IMAGE);
	return 0;
}

int build_ssh_arg(const char *arg, char ***ssh, struct orch_err *e)
{
	const char *eq = strchr(arg, '=');
	_cleanup_free_ char *id = eq ? xstrndup(arg, (size_t)(eq - arg))
				     : xstrdup(arg);
	const char *path = eq ? eq + 1 : getenv("SSH_AUTH_SOCK");
	if (!*id || strchr(id, ','))
		return err_set(e, EINVAL, "%s: want default or ID=SOCKET", arg);
	if (!path || !*path)
		return err_set(e, ENOENT,
			       "%s: SSH_AUTH_SOCK is not set (no agent to "
			       "forward; give ID=SOCKET)",
			       arg);
	if (strchr(path, ','))
		return err_set(e, ENOTSUP,
			       "%s: one agent socket per id (keys are not "
			       "supported: ssh-add them to an agent)",
			       arg);
	char abs[PATH_MAX];
	struct stat st;
	if (!realpath(path, abs) || stat(abs, &st) < 0)
		return err_sys(e, errno, "%s: %s", arg, path);
	if (!S_ISSOCK(st.st_mode))
		return err_set(e, ENOTSUP,
			       "%s: %s is no agent's socket (keys are not "
			       "supported: ssh-add them to an agent, and "
			       "give its socket)",
			       arg, path);
	_cleanup_free_ char *one = xasprintf("%s=%s", id, abs);
	strv_push(ssh, one);
	return 0;
}

/* An ssh mount: the agent forwarded under its id (build.ssh, --ssh
 * ID=SOCKET), through a relay socket (build_ssh_sock) bound where the
 * step finds it (default /run/buildkit/ssh_agent.N, SSH_AUTH_SOCK naming
 * the first), its owner and mode as the mount says (default its root's,
 * 0600).  An id not forwarded fails
 * the step when required, and is left out otherwise, as BuildKit does. */
static int mount_ssh(struct builder *b, const struct df_mount *m,
		     struct run_mounts *rm, char ***parts, struct orch_err *e)
{
	const char *id = m->id ? m->id : "default";
	const char *path = NULL;
	size_t n = strlen(id);
	for (size_t i = 0; b->o->ssh && b->o->ssh[i] && !path; i++)
		if (strncmp(b->o->ssh[i], id, n) == 0 && b->o->ssh[i][n] == '=')
			path = b->o->ssh[i] + n + 1;
	if (!path && m->required)
		return err_set(e, ENOENT,
			       "--mount: ssh \"%s\" is not forwarded "
			       "(compose's build.ssh, or --ssh %s=SOCKET)",
			       id, id);
	if (!path)
		return 0;
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return err_set(e, ENOENT,
			       "--mount: ssh \"%s\": %s is not an agent's "
			       "socket",
			       id, path);
	const char *sock;
	int r = build_ssh_sock(b, path, m->uid >= 0 ? (uid_t)m->uid : 0,
			       m->gid >= 0 ? (gid_t)m->gid : 0,
			       m->mode >= 0 ? (mode_t)m->mode : 0600, &sock, e);
	if (r < 0)
		return err_wrap(e, "--mount: ssh \"%s\"", id);
	_cleanup_free_ char *target =
	    m->target ? xstrdup(m->target)
		      : xasprintf("/run/buildkit/ssh_agent.%zu", rm->n_ssh);
	rm->n_ssh++;
	if (!rm->ssh_sock)
		rm->ssh_sock = xstrdup(target);
	strv_push(parts, "ssh");
	strv_push(parts, id);
	strv_push(parts, target);
	mount_add(rm, RT_MOUNT_BIND, sock, target, false, RT_IDMAP_IMAGE);
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
		int r = build_expand(
		    b, in, env, in->flags[i].value ? in->flags[i].value : "",
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
			mount_add(rm, RT_MOUNT_TMPFS, NULL, m.target, false,
				  RT_IDMAP_NONE)
			    ->size = m.size;
			break;
		case DF_MOUNT_BIND:
			r = mount_bind(b, &m, rm, parts, e);
			break;
		case DF_MOUNT_SECRET:
			r = mount_secret(b, &m, rm, e);
			break;
		case DF_MOUNT_SSH:
			r = mount_ssh(b, &m, rm, parts, e);
			break;
		}
		df_mount_clear(&m);
		if (r < 0)
			return r;
	}
	return 0;
}

int do_run(struct builder *b, struct stage_state *s, const struct df_instr *in,
	   struct orch_err *e)
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
		if (!build_kv_get(env, k))
			strv_push(&env, s->args[i]);
	}
	const char *user = s->cfg.user && *s->cfg.user ? s->cfg.user : "0";
	_cleanup_free_ char *pw = stage_file(b, s, "etc/passwd");
	_cleanup_free_ char *gr = stage_file(b, s, "etc/group");
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
	/* As BuildKit's: the extra hosts and ulimits are part of the step
	 * (and of its cache key); none, the key of before. */
	for (size_t i = 0; b->o->extra_hosts && b->o->extra_hosts[i]; i++) {
		strv_push(&parts, "host");
		strv_push(&parts, b->o->extra_hosts[i]);
	}
	for (size_t i = 0; b->o->ulimits && b->o->ulimits[i]; i++) {
		strv_push(&parts, "ulimit");
		strv_push(&parts, b->o->ulimits[i]);
	}
	struct run_mounts rm = {0};
	r = run_mounts_prepare(b, in, env, &rm, &parts, e);
	if (rm.ssh_sock) {
		_cleanup_free_ char *kv =
		    xasprintf("SSH_AUTH_SOCK=%s", rm.ssh_sock);
		strv_push(&env, kv);
		job.env = env;
	}
	job.mounts = rm.v;
	job.n_mounts = rm.n;
	_cleanup_strv_ char **lowers = build_lowers(b, s->layers);
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
