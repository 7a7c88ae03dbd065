/* The compose side of builds: the build: sections of a project's services
 * turned into build_image calls (`orch build`, `orch up --build`, watch's
 * rebuild), and the line that reports a build. */
#include "orchestrator/build/build.h"
#include "runtime/runtime.h"

void build_result_print(FILE *log, const struct build_result *res,
			const char *tag)
{
	fprintf(log,
		"Built %.12s%s%s: %u steps, %u cached, %u containers run\n",
		res->id, tag ? " as " : "", tag ? tag : "", res->steps,
		res->cached, res->containers);
}

char *service_image_ref(const struct project *p, const struct service *s)
{
	if (s->image)
		return xstrdup(s->image);
	/* docker compose names a built image <project>-<service>. */
	return xasprintf("%s-%s", p->name, s->name);
}

static bool selected(char *const *services, const char *name)
{
	return !services || !services[0] || strv_contains(services, name);
}

/* The service an additional context names ("service:NAME"), NULL if
 * none; a name the project lacks is an error. */
static int context_service(const struct project *p, const struct service *s,
			   const struct m_kv *kv, const struct service **out,
			   struct orch_err *e)
{
	*out = NULL;
	if (!startswith(kv->value, "service:"))
		return 0;
	*out = project_service(p, kv->value + 8);
	if (!*out)
		return err_set(e, ENOENT,
			       "%s:%d:%d: service %s: additional context %s: "
			       "no service %s",
			       kv->pos.file, kv->pos.line, kv->pos.col, s->name,
			       kv->key, kv->value + 8);
	return 0;
}

/* build.additional_contexts for the builder: a directory as is, a
 * service as its image (docker-image://), refusing other kinds. */
static int contexts_for(const struct project *p, const struct service *s,
			char ***out, struct orch_err *e)
{
	const struct m_kvlist *l = &s->build.contexts;
	char **v = xcalloc(1, sizeof(char *));
	for (size_t i = 0; i < l->n; i++) {
		const struct m_kv *kv = &l->v[i];
		const struct service *dep;
		int r = context_service(p, s, kv, &dep, e);
		if (r == 0 && !dep && strstr(kv->value, "://") &&
		    !startswith(kv->value, "docker-image://"))
			r = err_set(e, ENOTSUP,
				    "%s:%d:%d: service %s: additional context "
				    "%s: %s is not supported (a directory, "
				    "docker-image://REF or service:NAME)",
				    kv->pos.file, kv->pos.line, kv->pos.col,
				    s->name, kv->key, kv->value);
		if (r < 0) {
			strv_free(v);
			return r;
		}
		_cleanup_free_ char *ref = dep ? service_image_ref(p, dep) : NULL;
		_cleanup_free_ char *one =
		    ref ? xasprintf("%s=docker-image://%s", kv->key, ref)
			: xasprintf("%s=%s", kv->key, kv->value);
		strv_push(&v, one);
	}
	*out = v;
	return 0;
}

static int build_one(const struct project *p, const struct service *s,
		     const struct svc_build_opts *so, struct orch_err *e)
{
	static const struct svc_build_opts none = {0};
	if (!so)
		so = &none;
	const struct m_build *bd = &s->build;
	if (strstr(bd->context, "://") || startswith(bd->context, "git@"))
		return err_set(e, ENOTSUP,
			       "%s:%d:%d: service %s: building "
			       "from a remote context is not "
			       "supported",
			       bd->pos.file, bd->pos.line, bd->pos.col,
			       s->name);
	if (bd->network && !streq(bd->network, "none") &&
	    !streq(bd->network, "default"))
		return err_set(e, ENOTSUP,
			       "%s:%d:%d: service %s: build "
			       "network %s is not supported (use "
			       "default or none)",
			       bd->pos.file, bd->pos.line, bd->pos.col, s->name,
			       bd->network);
	/* build.secrets: ID=FILE for RUN --mount=type=secret,id=ID (the
	 * target names the id, else the source). */
	_cleanup_strv_ char **secrets = xcalloc(1, sizeof(char *));
	for (size_t i = 0; i < bd->n_secrets; i++) {
		const struct m_file_ref *ref = &bd->secrets[i];
		const struct m_file_obj *obj = NULL;
		for (size_t k = 0; k < p->n_secrets && !obj; k++)
			if (streq(p->secrets[k].key, ref->source))
				obj = &p->secrets[k];
		if (!obj || !obj->file)
			return err_set(e, EINVAL,
				       "%s:%d:%d: service %s: build secret "
				       "\"%s\" %s",
				       ref->pos.file, ref->pos.line,
				       ref->pos.col, s->name, ref->source,
				       obj ? "is not a file secret (a build "
					     "reads only those)"
					   : "is not defined in the top-level "
					     "secrets");
		_cleanup_free_ char *kv =
		    xasprintf("%s=%s", ref->target ? ref->target : ref->source,
			      obj->file);
		strv_push(&secrets, kv);
	}
	_cleanup_free_ char *ref = service_image_ref(p, s);
	_cleanup_free_ char *file = NULL, *inline_dir = NULL;
	if (bd->dockerfile_inline) {
		char rid[65];
		random_id(rid);
		inline_dir = xasprintf("%s/tmp/inline-%.16s", orch_root(), rid);
		int r = mkdir_p(inline_dir, 0700, e);
		if (r < 0)
			return r;
		file = path_join(inline_dir, "Containerfile");
		r = write_file_atomic(file, bd->dockerfile_inline,
				      strlen(bd->dockerfile_inline), 0600, e);
		if (r < 0) {
			struct orch_err ignore = {0};
			rm_rf(inline_dir, &ignore);
			return r;
		}
	} else if (bd->dockerfile) {
		file = bd->dockerfile[0] == '/'
			   ? xstrdup(bd->dockerfile)
			   : path_join(bd->context, bd->dockerfile);
	}
	_cleanup_strv_ char **contexts = NULL;
	int rc = contexts_for(p, s, &contexts, e);
	if (rc < 0)
		return rc;
	_cleanup_strv_ char **args = kvlist_assignments(&bd->args);
	for (size_t i = 0; so->extra_args && so->extra_args[i]; i++)
		strv_push(&args, so->extra_args[i]);
	_cleanup_strv_ char **labels = xcalloc(1, sizeof(char *));
	for (size_t i = 0; i < bd->labels.n; i++) {
		const struct m_kv *kv = &bd->labels.v[i];
		char *l =
		    xasprintf("%s=%s", kv->key, kv->value ? kv->value : "");
		strv_push(&labels, l);
		free(l);
	}
	_cleanup_strv_ char **hosts = kvlist_assignments(&bd->extra_hosts);
	_cleanup_strv_ char **ulimits = xcalloc(1, sizeof(char *));
	for (size_t i = 0; i < bd->n_ulimits; i++) {
		_cleanup_free_ char *u = xasprintf(
		    "%s=%lld:%lld", bd->ulimits[i].name,
		    (long long)bd->ulimits[i].soft,
		    (long long)bd->ulimits[i].hard);
		strv_push(&ulimits, u);
	}
	/* build.ssh, then --ssh over it (the same id replaced). */
	_cleanup_strv_ char **ssh = xcalloc(1, sizeof(char *));
	for (size_t i = 0; i < bd->ssh.n; i++) {
		const struct m_kv *kv = &bd->ssh.v[i];
		_cleanup_free_ char *arg =
		    kv->value && *kv->value
			? xasprintf("%s=%s", kv->key, kv->value)
			: xstrdup(kv->key);
		struct orch_err se = {0};
		if (build_ssh_arg(arg, &ssh, &se) < 0)
			return err_set(e, se.code,
				       "%s:%d:%d: service %s: build.ssh %s",
				       kv->pos.file, kv->pos.line, kv->pos.col,
				       s->name, se.msg);
	}
	for (size_t i = 0; so->ssh && so->ssh[i]; i++) {
		size_t k = strcspn(so->ssh[i], "=");
		_cleanup_free_ char *id = xstrndup(so->ssh[i], k);
		build_kv_set(&ssh, id, so->ssh[i] + k + 1);
	}
	struct build_opts o = {
	    .ssh = ssh,
	    .extra_hosts = hosts,
	    .ulimits = ulimits,
	    .context = bd->context,
	    .file = file,
	    .build_args = args,
	    .labels = labels,
	    .target = bd->target,
	    .tag = ref,
	    .no_cache = so->no_cache || bd->no_cache,
	    .pull = so->pull || bd->pull,
	    .network = bd->network,
	    .secrets = secrets,
	    .contexts = contexts,
	};
	_cleanup_fclose_ FILE *devnull = NULL;
	if (so->quiet) {
		devnull = fopen("/dev/null", "we");
		o.log = devnull;
	} else {
		fprintf(stderr, "Building %s (%s)\n", s->name, ref);
	}
	struct build_result res;
	int r = build_image(&o, &res, e);
	if (inline_dir) {
		struct orch_err ignore = {0};
		rm_rf(inline_dir, &ignore);
	}
	if (r < 0)
		return err_wrap(e, "building service %s", s->name);
	for (size_t i = 0; bd->tags && bd->tags[i]; i++) {
		r = rt_image_tag(res.id, bd->tags[i], e);
		if (r < 0)
			return err_wrap(e, "building service %s", s->name);
	}
	if (!so->quiet)
		build_result_print(stderr, &res, ref);
	return 0;
}

static bool image_present(const struct project *p, const struct service *s)
{
	_cleanup_free_ char *ref = service_image_ref(p, s);
	struct rt_image *img = NULL;
	struct orch_err ignore = {0};
	bool ok = rt_image_lookup(ref, &img, &ignore) == 0;
	rt_image_free(img);
	return ok;
}

/* The services being built, each waiting for the one after it. */
struct chain {
	const char *name;
	const struct chain *up;
};

/* Builds s (with missing, only when its image is missing) after the
 * services its additional contexts name that have a build: section
 * (those not selected only when their image is missing), as compose
 * orders them.  done: the services built or checked; up: the chain
 * being built, which a context naming one of its own refuses. */
static int build_ordered(const struct project *p, char *const *services,
			 const struct service *s,
			 const struct svc_build_opts *o, bool missing,
			 char ***done, const struct chain *up,
			 struct orch_err *e)
{
	if (strv_contains(*done, s->name))
		return 0;
	bool looped = false;
	for (const struct chain *c = up; c; c = c->up)
		looped |= streq(c->name, s->name);
	if (looped)
		return err_set(e, ELOOP,
			       "%s:%d:%d: service %s: its additional contexts "
			       "name services that need its own image",
			       s->build.pos.file, s->build.pos.line,
			       s->build.pos.col, s->name);
	const struct chain here = {s->name, up};
	int r = 0;
	for (size_t i = 0; r == 0 && i < s->build.contexts.n; i++) {
		const struct service *dep;
		r = context_service(p, s, &s->build.contexts.v[i], &dep, e);
		if (r == 0 && dep && dep->build.present)
			r = build_ordered(p, services, dep, o,
					  missing || !selected(services,
							       dep->name),
					  done, &here, e);
	}
	if (r == 0 && !(missing && image_present(p, s)))
		r = build_one(p, s, o, e);
	if (r == 0)
		strv_push(done, s->name);
	return r;
}

static int build_selected(struct project *p, char *const *services,
			  const struct svc_build_opts *o, bool missing,
			  struct orch_err *e)
{
	_cleanup_strv_ char **done = xcalloc(1, sizeof(char *));
	for (size_t i = 0; i < p->n_services; i++) {
		const struct service *s = &p->services[i];
		if (!s->build.present || !selected(services, s->name))
			continue;
		int r = build_ordered(p, services, s, o, missing, &done, NULL,
				      e);
		if (r < 0)
			return r;
	}
	return 0;
}

int build_service_images(struct project *p, char *const *services,
			 const struct svc_build_opts *o, struct orch_err *e)
{
	for (size_t i = 0; services && services[i]; i++)
		if (!project_service(p, services[i]))
			return err_set(e, ENOENT, "no such service: %s",
				       services[i]);
	return build_selected(p, services, o, false, e);
}

int build_missing_images(struct project *p, char *const *services,
			 struct orch_err *e)
{
	return build_selected(p, services, NULL, true, e);
}
