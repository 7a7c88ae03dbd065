/* `include`, as the Compose Specification defines it: other compose
 * files (each a list of files merged, as -f files are) loaded as
 * projects of their own, with their own project directory, relative
 * paths and .env (or env_file), whose resources join the including
 * file's.  A resource defined differently on both sides is an error, as
 * is a file that includes itself through any chain.  Also the reading
 * of one more compose file, shared with extends. */
#include "orchestrator/compose/compose_impl.h"

#include <libgen.h>
#include <sys/stat.h>

/* Resource sections an included file brings in. */
static const char *const resources[] = {"services", "networks", "volumes",
					"configs", "secrets"};

struct ynode *compose_read(struct arena *a, const char *path,
			   const struct compose_read *rd,
			   const struct m_pos *from, struct orch_diag *d)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	struct orch_err e = {0};
	if (read_regular_file(path, &text, &len, &e) < 0) {
		diag_add(d, M_ERROR, from, "%s", e.msg);
		return NULL;
	}
	struct ynode **docs;
	size_t before = d->n_errors;
	int n = yaml_load(a, path, text, len, &docs, d);
	if (n < 0 || d->n_errors > before)
		return NULL;
	struct ynode *merged = NULL;
	for (int i = 0; i < n; i++) {
		struct ynode *root = docs[i];
		if (!root)
			continue;
		if (root->kind != Y_MAP) {
			diag_add(d, M_ERROR, &root->pos,
				 "the top level of a compose file must be a "
				 "mapping, not %s",
				 ykind_name(root));
			return NULL;
		}
		if (rd->interpolate)
			interp_tree(a, root, rd->env, d);
		merged = merge_roots(a, merged, root, d);
	}
	if (!merged) {
		merged = ynode_new(a, Y_MAP, NULL);
		merged->pos = (struct m_pos){path, 1, 1};
	}
	return merged;
}

/* ---- one entry of include ------------------------------------------------ */

struct include_entry {
	const struct ynode *node;
	const struct ynode **paths; /* scalars, NULL-terminated */
	const struct ynode *project_directory;
	const struct ynode **env_files; /* NULL = <project dir>/.env */
};

/* A string or a list of strings -> NULL-terminated nodes; false after
 * reporting. */
static bool strings_of(struct arena *a, const char *what, const struct ynode *n,
		       const struct ynode ***out, struct orch_diag *d)
{
	size_t count = n->kind == Y_SEQ ? n->n : 1;
	const struct ynode **v =
	    arena_new_array(a, const struct ynode *, count + 1);
	for (size_t i = 0; i < count; i++) {
		const struct ynode *it = n->kind == Y_SEQ ? n->v[i] : n;
		if (it->kind != Y_SCALAR || !*it->s) {
			diag_add(
			    d, M_ERROR, &it->pos,
			    "include: %s must be a file name, not %s", what,
			    it->kind == Y_SCALAR ? "empty" : ykind_name(it));
			return false;
		}
		v[i] = it;
	}
	if (!count) {
		diag_add(d, M_ERROR, &n->pos, "include: %s is empty", what);
		return false;
	}
	*out = v;
	return true;
}

static bool entry_parse(struct arena *a, const struct ynode *n,
			struct include_entry *e, struct orch_diag *d)
{
	*e = (struct include_entry){.node = n};
	if (n->kind == Y_SCALAR)
		return strings_of(a, "path", n, &e->paths, d);
	if (n->kind != Y_MAP) {
		diag_add(d, M_ERROR, &n->pos,
			 "include: an entry must be a file name or a mapping, "
			 "not %s",
			 ykind_name(n));
		return false;
	}
	bool ok = true;
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->k[i]->s;
		const struct ynode *v = n->v[i];
		if (streq(k, "path"))
			ok &= strings_of(a, "path", v, &e->paths, d);
		else if (streq(k, "env_file"))
			ok &= strings_of(a, "env_file", v, &e->env_files, d);
		else if (streq(k, "project_directory")) {
			if (v->kind != Y_SCALAR || !*v->s) {
				diag_add(d, M_ERROR, &v->pos,
					 "include: project_directory must be "
					 "a directory name");
				ok = false;
			}
			e->project_directory = v;
		} else if (!startswith(k, "x-")) {
			diag_add(d, M_ERROR, &n->k[i]->pos,
				 "include: unknown key \"%s\" (want path, "
				 "project_directory or env_file)",
				 k);
			ok = false;
		}
	}
	if (ok && !e->paths) {
		diag_add(d, M_ERROR, &n->pos, "include: path is required");
		ok = false;
	}
	return ok;
}

/* ---- the included project's variables ----------------------------------- */

static bool is_regular(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The including file's variables, then the included project's env files
 * (or its .env) for the names they leave unset. */
static bool include_env(struct arena *a, const struct include_entry *e,
			const char *dir, const char *project_dir,
			const struct compose_read *rd, struct envmap *out,
			struct orch_diag *d)
{
	for (size_t i = 0; rd->env && i < rd->env->n; i++) {
		const char *kv = rd->env->v[i], *eq = strchr(kv, '=');
		env_set(a, out, arena_strndup(a, kv, (size_t)(eq - kv)),
			eq + 1);
	}
	const char *dflt = arena_printf(a, "%s/.env", project_dir);
	size_t n = 0;
	while (e->env_files && e->env_files[n])
		n++;
	if (!e->env_files && !is_regular(dflt))
		return true;
	bool ok = true;
	for (size_t i = 0; i < (e->env_files ? n : 1); i++) {
		const struct ynode *f = e->env_files ? e->env_files[i] : NULL;
		const char *path =
		    f ? path_resolve(a, dir, rd->home, f->s) : dflt;
		if (streq(path, "/dev/null"))
			continue;
		_cleanup_free_ char *text = NULL;
		struct orch_err err = {0};
		if (read_regular_file(path, &text, NULL, &err) < 0) {
			diag_add(d, M_ERROR, f ? &f->pos : &e->node->pos,
				 "include: env file: %s", err.msg);
			ok = false;
			continue;
		}
		struct m_kvlist vars = {0};
		if (envfile_parse(a, path, text, out, &vars, d) < 0)
			ok = false;
		for (size_t j = 0; j < vars.n; j++)
			if (!env_get(out, vars.v[j].key))
				env_set(a, out, vars.v[j].key, vars.v[j].value);
	}
	return ok;
}

/* environment entries named without a value take it from the included
 * project's variables, which the including project may not have. */
static void fill_environment(struct arena *a, struct ynode *root,
			     const struct envmap *env)
{
	struct ynode *sec = ymap_get(root, "services");
	for (size_t i = 0; sec && sec->kind == Y_MAP && i < sec->n; i++) {
		struct ynode *e = ymap_get(sec->v[i], "environment");
		for (size_t j = 0; e && e->kind == Y_SEQ && j < e->n; j++) {
			struct ynode *it = e->v[j];
			const char *v;
			if (it->kind == Y_SCALAR && !strchr(it->s, '=') &&
			    (v = env_get(env, it->s)))
				e->v[j] = yscalar_new(
				    a, arena_printf(a, "%s=%s", it->s, v),
				    &it->pos);
		}
		for (size_t j = 0; e && e->kind == Y_MAP && j < e->n; j++) {
			const char *v;
			if (e->v[j]->kind == Y_NULL &&
			    (v = env_get(env, e->k[j]->s)))
				e->v[j] = yscalar_new(a, v, &e->v[j]->pos);
		}
	}
}

/* ---- bringing the resources in ---------------------------------------------
 */

static bool ynode_equal(const struct ynode *x, const struct ynode *y)
{
	if (x->kind != y->kind || x->n != y->n)
		return false;
	if (x->kind == Y_SCALAR)
		return streq(x->s, y->s);
	for (size_t i = 0; i < x->n; i++) {
		if (x->kind == Y_MAP && !streq(x->k[i]->s, y->k[i]->s))
			return false;
		if (!ynode_equal(x->v[i], y->v[i]))
			return false;
	}
	return true;
}

/* Adds pair (k, v) to map m (arrays reallocated in the arena). */
static void map_add(struct arena *a, struct ynode *m, struct ynode *k,
		    struct ynode *v)
{
	struct ynode **nk = arena_new_array(a, struct ynode *, m->n + 1);
	struct ynode **nv = arena_new_array(a, struct ynode *, m->n + 1);
	if (m->n) {
		memcpy(nk, m->k, m->n * sizeof(*nk));
		memcpy(nv, m->v, m->n * sizeof(*nv));
	}
	nk[m->n] = k;
	nv[m->n++] = v;
	m->k = nk;
	m->v = nv;
}

static void import_section(struct arena *a, struct ynode *root,
			   const struct ynode *from, const char *name,
			   struct orch_diag *d)
{
	struct ynode *src = ymap_get(from, name);
	if (!src || src->kind != Y_MAP || !src->n)
		return;
	struct ynode *dst = ymap_get(root, name);
	if (!dst || dst->kind == Y_NULL) {
		struct ynode *m = ynode_new(a, Y_MAP, &src->pos);
		if (dst) {
			for (size_t i = 0; i < root->n; i++)
				if (root->v[i] == dst)
					root->v[i] = m;
		} else {
			map_add(a, root, yscalar_new(a, name, &src->pos), m);
		}
		dst = m;
	}
	if (dst->kind != Y_MAP)
		return; /* reported when converted */
	for (size_t i = 0; i < src->n; i++) {
		const char *key = src->k[i]->s;
		size_t j = 0;
		while (j < dst->n && !streq(dst->k[j]->s, key))
			j++;
		if (j == dst->n) {
			map_add(a, dst, src->k[i], src->v[i]);
			continue;
		}
		if (ynode_equal(dst->v[j], src->v[i]))
			continue;
		const struct m_pos *there = &src->k[i]->pos;
		diag_add(d, M_ERROR, &dst->k[j]->pos,
			 "%s.%s conflicts with the one of the same name in "
			 "%s:%d:%d, which is included",
			 name, key, there->file, there->line, there->col);
	}
}

/* ---- include
 * ------------------------------------------------------------------ */

struct include_chain {
	const char *path;
	const struct include_chain *up;
};

static void include_all(struct arena *a, struct ynode *root, const char *path,
			const char *dir, const struct compose_read *rd,
			const struct include_chain *up, struct orch_diag *d);

static bool in_chain(const struct include_chain *c, const char *path)
{
	for (; c; c = c->up)
		if (streq(c->path, path))
			return true;
	return false;
}

static void report_cycle(const struct include_chain *c, const char *path,
			 const struct ynode *at, struct orch_diag *d)
{
	/* The chain is innermost first: print it outermost first. */
	const char *v[64];
	size_t n = 0;
	for (; c && n < ARRAY_SIZE(v); c = c->up)
		v[n++] = c->path;
	struct strbuf sb;
	sb_init(&sb);
	while (n--)
		sb_printf(&sb, "%s includes ", v[n]);
	sb_adds(&sb, path);
	diag_add(d, M_ERROR, &at->pos, "include cycle: %s", sb.buf);
	sb_free(&sb);
}

static char *dir_of(struct arena *a, const char *path)
{
	_cleanup_free_ char *copy = xstrdup(path);
	return arena_strdup(a, dirname(copy));
}

/* Loads one entry's files as a project of their own and brings its
 * resources into root. */
static void include_one(struct arena *a, struct ynode *root,
			const struct include_entry *e, const char *dir,
			const struct compose_read *rd,
			const struct include_chain *chain, struct orch_diag *d)
{
	size_t n = 0;
	while (e->paths[n])
		n++;
	const char **paths = arena_new_array(a, const char *, n);
	for (size_t i = 0; i < n; i++)
		paths[i] = path_resolve(a, dir, rd->home, e->paths[i]->s);
	if (in_chain(chain, paths[0])) {
		report_cycle(chain, paths[0], e->paths[0], d);
		return;
	}
	const char *pd =
	    e->project_directory
		? path_resolve(a, dir, rd->home, e->project_directory->s)
		: dir_of(a, paths[0]);
	struct envmap *env = arena_alloc(a, sizeof(*env));
	if (!include_env(a, e, dir, pd, rd, env, d))
		return;
	struct compose_read sub = {env, rd->interpolate, rd->home};
	struct ynode *merged = NULL;
	for (size_t i = 0; i < n; i++) {
		struct ynode *r =
		    compose_read(a, paths[i], &sub, &e->paths[i]->pos, d);
		if (!r)
			return;
		static const char *const top[] = {
		    "version", "name",	  "services", "networks",
		    "volumes", "configs", "secrets",  "include"};
		for (size_t k = 0; k < r->n; k++) {
			bool known = startswith(r->k[k]->s, "x-");
			for (size_t t = 0; t < ARRAY_SIZE(top); t++)
				known |= streq(r->k[k]->s, top[t]);
			if (!known)
				diag_add(d, M_ERROR, &r->k[k]->pos,
					 "unknown key \"%s\"", r->k[k]->s);
		}
		include_all(a, r, paths[i], pd, &sub, chain, d);
		extends_apply(a, r, paths[i], pd, &sub, d);
		merged = merge_roots(a, merged, r, d);
	}
	rebase_paths(a, merged, pd);
	fill_environment(a, merged, env);
	for (size_t i = 0; i < ARRAY_SIZE(resources); i++)
		import_section(a, root, merged, resources[i], d);
}

static void include_all(struct arena *a, struct ynode *root, const char *path,
			const char *dir, const struct compose_read *rd,
			const struct include_chain *up, struct orch_diag *d)
{
	size_t at = 0;
	while (at < root->n && !streq(root->k[at]->s, "include"))
		at++;
	if (at == root->n)
		return;
	const struct ynode *inc = root->v[at];
	/* The key goes: what it brings is in root from now on. */
	memmove(root->k + at, root->k + at + 1,
		(root->n - at - 1) * sizeof(*root->k));
	memmove(root->v + at, root->v + at + 1,
		(root->n - at - 1) * sizeof(*root->v));
	root->n--;
	if (inc->kind == Y_NULL)
		return;
	if (inc->kind != Y_SEQ) {
		diag_add(d, M_ERROR, &inc->pos,
			 "include: must be a list, not %s", ykind_name(inc));
		return;
	}
	struct include_chain chain = {path, up};
	for (size_t i = 0; i < inc->n; i++) {
		struct include_entry e;
		if (entry_parse(a, inc->v[i], &e, d))
			include_one(a, root, &e, dir, rd, &chain, d);
	}
}

void include_apply(struct arena *a, struct ynode *root, const char *path,
		   const char *dir, const struct compose_read *rd,
		   struct orch_diag *d)
{
	include_all(a, root, path, dir, rd, NULL, d);
}
