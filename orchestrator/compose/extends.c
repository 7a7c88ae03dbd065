/* `extends`, as the Compose Specification defines it: a service starts
 * from another one (of the same file, or of another file whose relative
 * paths stay relative to that file), and its own keys merge over the
 * base's by the same rules as an override file.  Chains are followed;
 * a cycle is reported with its chain.  Every node keeps the position it
 * was written at, so later errors name the file that wrote the value. */
#include "orchestrator/compose/compose_impl.h"

#include <libgen.h>

/* Longest chain of extends followed before giving up. */
#define EXTENDS_MAX_DEPTH 64

/* A compose file read for extends (cached: a base file serves many). */
struct xfile {
	const char *path; /* absolute */
	const char *dir;  /* its relative paths resolve here */
	struct ynode *root;
};

struct xlink {
	const struct xfile *file;
	const char *service;
	const struct ynode *key; /* the service's name */
};

struct xctx {
	struct arena *a;
	struct orch_diag *d;
	const struct compose_read *rd;
	struct xfile *files;
	size_t n_files;
	struct xlink chain[EXTENDS_MAX_DEPTH];
	size_t depth;
};

/* ---- relative paths --------------------------------------------------- */

static bool is_remote(const char *s)
{
	return strstr(s, "://") || startswith(s, "git@") ||
	       startswith(s, "github.com/");
}

/* A relative path (not ~, not absolute) made absolute against dir. */
static void rebase_scalar(struct arena *a, struct ynode *n, const char *dir)
{
	if (!n || n->kind != Y_SCALAR || !*n->s || n->s[0] == '/' ||
	    n->s[0] == '~' || is_remote(n->s))
		return;
	n->s = path_resolve(a, dir, NULL, n->s);
}

/* "./src:/dst:ro" -> "/abs/src:/dst:ro" (only sources that are paths). */
static void rebase_volume(struct arena *a, struct ynode *v, const char *dir)
{
	if (v->kind == Y_MAP) {
		const struct ynode *t = ymap_get(v, "type");
		if (t && t->kind == Y_SCALAR && streq(t->s, "bind"))
			rebase_scalar(a, ymap_get(v, "source"), dir);
		return;
	}
	if (v->kind != Y_SCALAR || v->s[0] != '.')
		return;
	const char *colon = strchr(v->s, ':');
	if (!colon)
		return;
	char *src = arena_strndup(a, v->s, (size_t)(colon - v->s));
	v->s = arena_printf(a, "%s%s", path_resolve(a, dir, NULL, src), colon);
}

void rebase_service_paths(struct arena *a, struct ynode *svc, const char *dir)
{
	if (!svc || svc->kind != Y_MAP)
		return;
	for (size_t i = 0; i < svc->n; i++) {
		const char *k = svc->k[i]->s;
		struct ynode *v = svc->v[i];
		if (streq(k, "build")) {
			if (v->kind == Y_SCALAR)
				rebase_scalar(a, v, dir);
			else
				rebase_scalar(a, ymap_get(v, "context"), dir);
		} else if (streq(k, "env_file") || streq(k, "label_file")) {
			if (v->kind == Y_SCALAR)
				rebase_scalar(a, v, dir);
			for (size_t j = 0; v->kind == Y_SEQ && j < v->n; j++) {
				if (v->v[j]->kind == Y_MAP)
					rebase_scalar(
					    a, ymap_get(v->v[j], "path"), dir);
				else
					rebase_scalar(a, v->v[j], dir);
			}
		} else if (streq(k, "volumes") && v->kind == Y_SEQ) {
			for (size_t j = 0; j < v->n; j++)
				rebase_volume(a, v->v[j], dir);
		}
	}
}

void rebase_paths(struct arena *a, struct ynode *root, const char *dir)
{
	struct ynode *sec = ymap_get(root, "services");
	for (size_t i = 0; sec && sec->kind == Y_MAP && i < sec->n; i++)
		rebase_service_paths(a, sec->v[i], dir);
	static const char *const files[] = {"configs", "secrets"};
	for (size_t f = 0; f < ARRAY_SIZE(files); f++) {
		sec = ymap_get(root, files[f]);
		for (size_t i = 0; sec && sec->kind == Y_MAP && i < sec->n; i++)
			rebase_scalar(a, ymap_get(sec->v[i], "file"), dir);
	}
}

/* ---- the files --------------------------------------------------------------
 */

static char *dir_of(struct arena *a, const char *path)
{
	_cleanup_free_ char *copy = xstrdup(path);
	return arena_strdup(a, dirname(copy));
}

/* The file at path, read once; NULL after reporting why at from. */
static struct xfile *xfile_get(struct xctx *x, const char *path,
			       const struct ynode *from)
{
	for (size_t i = 0; i < x->n_files; i++)
		if (streq(x->files[i].path, path))
			return &x->files[i];
	struct ynode *root = compose_read(x->a, path, x->rd, &from->pos, x->d);
	if (!root)
		return NULL;
	const char *dir = dir_of(x->a, path);
	rebase_paths(x->a, root, dir);
	/* Capacity is the next power of two. */
	if (!(x->n_files & (x->n_files - 1))) {
		struct xfile *v = arena_new_array(
		    x->a, struct xfile, x->n_files ? 2 * x->n_files : 4);
		if (x->n_files)
			memcpy(v, x->files, x->n_files * sizeof(*v));
		x->files = v;
	}
	x->files[x->n_files] = (struct xfile){path, dir, root};
	return &x->files[x->n_files++];
}

/* ---- resolving ---------------------------------------------------------- */

static struct ynode *services_of(const struct ynode *root)
{
	struct ynode *s = ymap_get(root, "services");
	return s && s->kind == Y_MAP ? s : NULL;
}

static size_t service_index(const struct ynode *services, const char *name)
{
	for (size_t i = 0; i < services->n; i++)
		if (streq(services->k[i]->s, name))
			return i;
	return SIZE_MAX;
}

/* The service without its extends key (a new mapping). */
static struct ynode *without_extends(struct arena *a, const struct ynode *svc)
{
	struct ynode *m = ynode_new(a, Y_MAP, &svc->pos);
	m->tag = svc->tag;
	m->k = arena_new_array(a, struct ynode *, svc->n ? svc->n : 1);
	m->v = arena_new_array(a, struct ynode *, svc->n ? svc->n : 1);
	for (size_t i = 0; i < svc->n; i++)
		if (!streq(svc->k[i]->s, "extends")) {
			m->k[m->n] = svc->k[i];
			m->v[m->n++] = svc->v[i];
		}
	return m;
}

static void report_cycle(struct xctx *x, size_t from, const char *name)
{
	struct strbuf sb;
	sb_init(&sb);
	for (size_t i = from; i < x->depth; i++) {
		const struct xlink *l = &x->chain[i];
		sb_printf(&sb, "%s (%s:%d) extends ", l->service,
			  l->key->pos.file, l->key->pos.line);
	}
	sb_adds(&sb, name);
	const struct xlink *first = &x->chain[from];
	diag_add(x->d, M_ERROR, &first->key->pos,
		 "services.%s.extends: cycle: %s", first->service, sb.buf);
	sb_free(&sb);
}

static struct ynode *resolve(struct xctx *x, const struct xfile *f, size_t i);

/* What extends (node ext, in service key of file f) names: the file and
 * the index of the service in it; false after reporting. */
static bool extends_target(struct xctx *x, const struct xfile *f,
			   const struct ynode *key, const struct ynode *ext,
			   const struct xfile **tf, size_t *ti)
{
	const char *svc = key->s;
	const struct ynode *ref = ext;
	*tf = f;
	if (ext->kind == Y_MAP) {
		for (size_t i = 0; i < ext->n; i++)
			if (!streq(ext->k[i]->s, "service") &&
			    !streq(ext->k[i]->s, "file"))
				diag_add(x->d, M_ERROR, &ext->k[i]->pos,
					 "services.%s.extends: unknown key "
					 "\"%s\" (extends takes service and "
					 "file)",
					 svc, ext->k[i]->s);
		ref = ymap_get(ext, "service");
		if (!ref) {
			diag_add(x->d, M_ERROR, &ext->pos,
				 "services.%s.extends: service is required",
				 svc);
			return false;
		}
		const struct ynode *file = ymap_get(ext, "file");
		if (file && file->kind != Y_SCALAR) {
			diag_add(x->d, M_ERROR, &file->pos,
				 "services.%s.extends.file: must be a string, "
				 "not %s",
				 svc, ykind_name(file));
			return false;
		}
		if (file) {
			const char *path =
			    path_resolve(x->a, f->dir, x->rd->home, file->s);
			if (!(*tf = xfile_get(x, path, file)))
				return false;
		}
	}
	if (ref->kind != Y_SCALAR || !*ref->s) {
		diag_add(x->d, M_ERROR, &ref->pos,
			 "services.%s.extends: must name a service, not %s",
			 svc, ykind_name(ref));
		return false;
	}
	const struct ynode *services = services_of((*tf)->root);
	*ti = services ? service_index(services, ref->s) : SIZE_MAX;
	if (*ti == SIZE_MAX) {
		if (*tf == f)
			diag_add(x->d, M_ERROR, &ref->pos,
				 "services.%s.extends: no service \"%s\" "
				 "in this file",
				 svc, ref->s);
		else
			diag_add(x->d, M_ERROR, &ref->pos,
				 "services.%s.extends: no service \"%s\" in %s",
				 svc, ref->s, (*tf)->path);
		return false;
	}
	return true;
}

/* Service i of file f with its extends applied (also stored back into
 * f, so that each base is merged once); NULL after an error, in which
 * case the service is left without its extends. */
static struct ynode *resolve(struct xctx *x, const struct xfile *f, size_t i)
{
	struct ynode *services = services_of(f->root);
	struct ynode *key = services->k[i], *svc = services->v[i];
	const struct ynode *ext = ymap_get(svc, "extends");
	if (svc->kind != Y_MAP || !ext)
		return svc;
	for (size_t j = 0; j < x->depth; j++)
		if (streq(x->chain[j].file->path, f->path) &&
		    streq(x->chain[j].service, key->s)) {
			report_cycle(x, j, key->s);
			return NULL;
		}
	if (x->depth == EXTENDS_MAX_DEPTH) {
		diag_add(x->d, M_ERROR, &key->pos,
			 "services.%s.extends: more than %d services in a "
			 "chain",
			 key->s, EXTENDS_MAX_DEPTH);
		return NULL;
	}
	const struct xfile *tf;
	size_t ti;
	struct ynode *merged = NULL;
	x->chain[x->depth++] = (struct xlink){f, key->s, key};
	if (extends_target(x, f, key, ext, &tf, &ti)) {
		struct ynode *base = resolve(x, tf, ti);
		if (base && base->kind == Y_MAP)
			merged = merge_service_nodes(x->a, base, svc);
		else if (base)
			merged = svc; /* an empty base: nothing to add */
	}
	x->depth--;
	services->v[i] = without_extends(x->a, merged ? merged : svc);
	return merged ? services->v[i] : NULL;
}

void extends_apply(struct arena *a, struct ynode *root, const char *path,
		   const char *dir, const struct compose_read *rd,
		   struct orch_diag *d)
{
	struct ynode *services = services_of(root);
	if (!services)
		return;
	struct xctx x = {.a = a, .d = d, .rd = rd};
	struct xfile self = {path, dir, root};
	for (size_t i = 0; i < services->n; i++)
		resolve(&x, &self, i);
}
