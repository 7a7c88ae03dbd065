/* compose_load: which files, which environment, which project name; then
 * parse, interpolate, merge, convert, apply profiles and validate.  Also
 * the diagnostics list and the model's queries. */
#include "orchestrator/compose/compose_impl.h"

#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>

extern char **environ;

/* ---- diagnostics ----------------------------------------------------------
 */

void diag_add(struct orch_diag *d, enum m_severity sev, const struct m_pos *pos,
	      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg;
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	/* Capacity is the next power of two. */
	if (!(d->n & (d->n - 1)))
		d->v = xrealloc(d->v, (d->n ? 2 * d->n : 4) * sizeof(*d->v));
	struct m_diag *m = &d->v[d->n++];
	*m = (struct m_diag){.severity = sev, .msg = msg};
	if (pos && pos->file) {
		m->file = xstrdup(pos->file);
		m->line = pos->line;
		m->col = pos->col;
	}
	if (sev == M_ERROR)
		d->n_errors++;
}

void diag_print(const struct orch_diag *d, FILE *f)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct m_diag *m = &d->v[i];
		const char *sev = m->severity == M_WARNING ? "warning: " : "";
		if (m->file)
			fprintf(f, "%s:%d:%d: %s%s\n", m->file, m->line, m->col,
				sev, m->msg);
		else
			fprintf(f, "%s%s\n", sev, m->msg);
	}
}

void diag_free(struct orch_diag *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	free(d->v);
	*d = (struct orch_diag){0};
}

/* Errors read best in file order; the order found breaks ties. */
static int diag_cmp(const void *a, const void *b)
{
	const struct m_diag *x = a, *y = b;
	if (!x->file != !y->file)
		return x->file ? 1 : -1;
	if (x->file && y->file) {
		int r = strcmp(x->file, y->file);
		if (r)
			return r;
	}
	if (x->line != y->line)
		return x->line - y->line;
	if (x->col != y->col)
		return x->col - y->col;
	return x < y ? -1 : x > y;
}

static void diag_sort(struct orch_diag *d, size_t from)
{
	if (d->n - from > 1)
		qsort(d->v + from, d->n - from, sizeof(*d->v), diag_cmp);
}

/* ---- queries ------------------------------------------------------------- */

char **kvlist_assignments(const struct m_kvlist *l)
{
	char **v = xcalloc(1, sizeof(char *));
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].value) {
			_cleanup_free_ char *kv =
			    xasprintf("%s=%s", l->v[i].key, l->v[i].value);
			strv_push(&v, kv);
		}
	return v;
}

struct service *project_service(const struct project *p, const char *name)
{
	size_t lo = 0, hi = p->n_services;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(name, p->services[mid].name);
		if (!r)
			return &p->services[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

struct network *project_network(const struct project *p, const char *key)
{
	for (size_t i = 0; i < p->n_networks; i++)
		if (p->networks[i].key && streq(p->networks[i].key, key))
			return &p->networks[i];
	return NULL;
}

struct volume *project_volume(const struct project *p, const char *key)
{
	for (size_t i = 0; i < p->n_volumes; i++)
		if (streq(p->volumes[i].key, key))
			return &p->volumes[i];
	return NULL;
}

const struct m_pos *service_key_pos(const struct service *s, const char *key)
{
	for (size_t i = 0; i < s->n_keys; i++)
		if (streq(s->keys[i].key, key))
			return &s->keys[i].pos;
	return &s->pos;
}

int64_t service_replicas(const struct service *s)
{
	if (s->deploy.replicas != M_UNSET)
		return s->deploy.replicas;
	if (s->scale != M_UNSET)
		return s->scale;
	return 1;
}

struct m_resources service_limits(const struct service *s)
{
	struct m_resources r = s->deploy.limits;
	if (s->mem_limit != M_UNSET)
		r.memory = s->mem_limit;
	if (s->cpus >= 0)
		r.cpus = s->cpus;
	/* cpu_quota/cpu_period are cpus in docker's other units. */
	if (r.cpus < 0 && s->cpu_quota != M_UNSET && s->cpu_quota > 0)
		r.cpus = (double)s->cpu_quota /
			 (double)(s->cpu_period > 0 ? s->cpu_period : 100000);
	if (s->pids_limit != M_UNSET)
		r.pids = s->pids_limit;
	return r;
}

/* Marks service s and what it depends on (by index) in need[]. */
static void env_need(const struct project *p, const struct service *s,
		     bool with_deps, bool *need)
{
	size_t i = (size_t)(s - p->services);
	if (need[i])
		return;
	need[i] = true;
	for (size_t d = 0; with_deps && d < s->n_depends_on; d++) {
		const struct service *dep =
		    project_service(p, s->depends_on[d].service);
		if (dep)
			env_need(p, dep, with_deps, need);
	}
}

int project_env_check(const struct project *p, char *const *services,
		      bool with_deps, struct orch_diag *d)
{
	_cleanup_free_ bool *need =
	    xcalloc(p->n_services ? p->n_services : 1, sizeof(*need));
	for (size_t i = 0; i < p->n_services; i++)
		if (!services ||
		    strv_contains(services, p->services[i].name))
			env_need(p, &p->services[i], with_deps, need);
	int r = 0;
	for (size_t i = 0; i < p->n_services; i++)
		if (need[i] && p->services[i].env_file_error) {
			diag_add(d, M_ERROR, &p->services[i].env_file_error_pos,
				 "%s", p->services[i].env_file_error);
			r = -EINVAL;
		}
	return r;
}

void project_free(struct project *p)
{
	if (p)
		arena_free(p->arena);
}

/* ---- loading ------------------------------------------------------------- */

struct loader {
	const struct compose_opts *o;
	struct orch_diag *d;
	struct arena *a;
	struct project *p;
	struct envmap env;
	const char *cwd;
	/* Every document of every file, in order, and its file. */
	struct ynode **docs;
	const char **doc_files;
	size_t n_docs;
};

static const char *const default_files[] = {
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
};
static const char *const override_files[] = {
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
};

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int read_regular_file(const char *path, char **out, size_t *len,
		      struct orch_err *e)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return err_sys(e, errno, "reading %s", path);
	/* A FIFO or device (/dev/zero) would block or never end. */
	if (!S_ISREG(st.st_mode))
		return err_set(e, EINVAL, "%s is not a regular file", path);
	return read_file(path, out, len, e);
}

static char *dir_of(struct arena *a, const char *path)
{
	_cleanup_free_ char *copy = xstrdup(path);
	return arena_strdup(a, dirname(copy));
}

/* compose.yaml & co. in dir or the nearest parent holding one, plus the
 * override partner next to it. */
static int discover(struct loader *l, const char *dir, char ***files)
{
	char *cur = arena_strdup(l->a, dir);
	for (;;) {
		for (size_t i = 0; i < ARRAY_SIZE(default_files); i++) {
			char *f = arena_printf(l->a, "%s/%s",
					       streq(cur, "/") ? "" : cur,
					       default_files[i]);
			if (!is_file(f))
				continue;
			strv_push(files, f);
			for (size_t j = 0; j < ARRAY_SIZE(override_files);
			     j++) {
				char *ov = arena_printf(
				    l->a, "%s/%s", streq(cur, "/") ? "" : cur,
				    override_files[j]);
				if (is_file(ov)) {
					strv_push(files, ov);
					break;
				}
			}
			return 0;
		}
		if (streq(cur, "/"))
			break;
		cur = dir_of(l->a, cur);
	}
	diag_add(
	    l->d, M_ERROR, NULL,
	    "no configuration file provided: no compose.yaml, compose.yml, "
	    "docker-compose.yaml or docker-compose.yml in %s or its parents",
	    dir);
	return -ENOENT;
}

/* The variables for interpolation: the process environment (or the
 * caller's), then env files for what it does not define. */
static void load_env(struct loader *l, const char *dir)
{
	char **src = l->o->environ ? l->o->environ : environ;
	for (size_t i = 0; src && src[i]; i++) {
		const char *eq = strchr(src[i], '=');
		if (!eq || eq == src[i])
			continue;
		char *k = arena_strndup(l->a, src[i], (size_t)(eq - src[i]));
		if (!env_get(&l->env, k))
			env_set(l->a, &l->env, k, eq + 1);
	}
	char **files = l->o->env_files;
	char *dflt[2] = {arena_printf(l->a, "%s/.env", dir), NULL};
	bool explicit = files != NULL;
	if (!files)
		files = dflt;
	for (size_t i = 0; files[i]; i++) {
		char *path = path_resolve(l->a, l->cwd, NULL, files[i]);
		_cleanup_free_ char *text = NULL;
		struct orch_err e = {0};
		if (read_regular_file(path, &text, NULL, &e) < 0) {
			if (explicit || e.code != ENOENT)
				diag_add(l->d, M_ERROR, NULL, "env file: %s",
					 e.msg);
			continue;
		}
		struct m_kvlist vars = {0};
		envfile_parse(l->a, path, text, &l->env, &vars, l->d);
		for (size_t j = 0; j < vars.n; j++)
			if (!env_get(&l->env, vars.v[j].key))
				env_set(l->a, &l->env, vars.v[j].key,
					vars.v[j].value);
	}
}

char *compose_env_lookup(const struct compose_opts *o, const char *key)
{
	struct arena *a = arena_new();
	struct orch_diag quiet = {0};
	struct loader l = {.o = o, .d = &quiet, .a = a};
	char cwdbuf[PATH_MAX];
	l.cwd = arena_strdup(a, getcwd(cwdbuf, sizeof(cwdbuf)) ? cwdbuf : "/");
	load_env(&l, o->project_dir ? path_resolve(a, l.cwd, NULL,
						   o->project_dir)
				    : l.cwd);
	const char *v = env_get(&l.env, key);
	char *r = v ? xstrdup(v) : NULL;
	diag_free(&quiet);
	arena_free(a);
	return r;
}

static const char *const name_rule =
    "must consist only of lowercase alphanumeric characters, hyphens, "
    "and underscores as well as start with a letter or number";

static bool name_valid(const char *name)
{
	_cleanup_free_ char *norm = project_name_normalize(name);
	return norm && streq(norm, name);
}

/* The project name: -p, COMPOSE_PROJECT_NAME, the files' name: (fname,
 * interpolated, written at fpos), the directory. */
static int resolve_name(struct loader *l, const char *fname,
			const struct m_pos *fpos)
{
	const char *name = l->o->project_name;
	const char *from = "-p";
	if (!name || !*name) {
		name = env_get(&l->env, "COMPOSE_PROJECT_NAME");
		from = "COMPOSE_PROJECT_NAME";
	}
	if ((!name || !*name) && fname && *fname) {
		if (!name_valid(fname)) {
			diag_add(l->d, M_ERROR, fpos,
				 "invalid project name "
				 "\"%s\": %s",
				 fname, name_rule);
			return -EINVAL;
		}
		l->p->name = arena_strdup(l->a, fname);
		return 0;
	}
	if (name && *name) {
		if (!name_valid(name)) {
			diag_add(l->d, M_ERROR, NULL,
				 "invalid project name \"%s\" "
				 "(from %s): %s",
				 name, from, name_rule);
			return -EINVAL;
		}
		l->p->name = arena_strdup(l->a, name);
		return 0;
	}
	_cleanup_free_ char *copy = xstrdup(l->p->working_dir);
	_cleanup_free_ char *norm = project_name_normalize(basename(copy));
	if (!norm) {
		/* Not worth a second message when the files failed. */
		if (l->d->n_errors)
			return -EINVAL;
		diag_add(l->d, M_ERROR, NULL,
			 "cannot derive a project name from "
			 "the directory %s; use -p or name:",
			 l->p->working_dir);
		return -EINVAL;
	}
	l->p->name = arena_strdup(l->a, norm);
	return 0;
}

/* The documents of one file's text to l->docs. */
static int parse_text(struct loader *l, const char *name, const char *text,
		      size_t len)
{
	int r = 0;
	struct ynode **docs;
	size_t before = l->d->n_errors;
	int n = yaml_load(l->a, name, text, len, &docs, l->d);
	if (n < 0)
		return -EINVAL;
	if (l->d->n_errors > before)
		r = -EINVAL;
	for (int j = 0; j < n; j++) {
		struct ynode *root = docs[j];
		if (!root)
			continue;
		if (root->kind != Y_MAP) {
			diag_add(l->d, M_ERROR, &root->pos,
				 "the top level of a "
				 "compose file must be a mapping, not %s",
				 ykind_name(root));
			r = -EINVAL;
			continue;
		}
		/* Capacity is the next power of two. */
		if (!(l->n_docs & (l->n_docs - 1))) {
			size_t cap = l->n_docs ? 2 * l->n_docs : 4;
			struct ynode **d =
			    arena_new_array(l->a, struct ynode *, cap);
			const char **f =
			    arena_new_array(l->a, const char *, cap);
			if (l->n_docs) {
				memcpy(d, l->docs, l->n_docs * sizeof(*d));
				memcpy(f, l->doc_files,
				       l->n_docs * sizeof(*f));
			}
			l->docs = d;
			l->doc_files = f;
		}
		l->docs[l->n_docs] = root;
		l->doc_files[l->n_docs++] = name;
	}
	return r;
}

/* Reads and parses every file, then the extra document; each document
 * goes to l->docs. */
static int parse_files(struct loader *l, char **files)
{
	int r = 0;
	for (size_t i = 0; files[i]; i++) {
		const char *name = l->p->files[i];
		_cleanup_free_ char *text = NULL;
		size_t len = 0;
		if (l->o->contents && l->o->contents[i]) {
			text = xstrdup(l->o->contents[i]);
			len = strlen(text);
		} else if (streq(files[i], "-")) {
			struct orch_err e = {0};
			if (read_fd(l->o->stdin_fd, "standard input", &text,
				    &len, &e) < 0) {
				diag_add(l->d, M_ERROR, NULL, "%s", e.msg);
				r = -EIO;
				continue;
			}
		} else {
			struct orch_err e = {0};
			if (read_file(name, &text, &len, &e) < 0) {
				diag_add(l->d, M_ERROR, NULL, "%s", e.msg);
				r = -e.code;
				continue;
			}
		}
		int pr = parse_text(l, name, text, len);
		if (pr < 0)
			r = pr;
	}
	if (l->o->extra) {
		int pr = parse_text(
		    l, arena_strdup(l->a, l->o->extra_name ?: "extra"),
		    l->o->extra, strlen(l->o->extra));
		if (pr < 0)
			r = pr;
	}
	return r;
}

/* The last name: of the files, interpolated now, as compose does, so
 * that COMPOSE_PROJECT_NAME can be set before the rest is; the node
 * keeps the value (its '$' escaped, as it is interpolated again). */
static const char *file_project_name(struct loader *l, struct m_pos *pos)
{
	const char *found = NULL;
	for (size_t i = 0; i < l->n_docs; i++) {
		struct ynode *n = ymap_get(l->docs[i], "name");
		if (!n || n->kind != Y_SCALAR)
			continue;
		const char *v = n->s;
		if (!l->o->no_interpolate) {
			v = interp_node(l->a, n, &l->env, l->d);
			char *d = compose_dollars_doubled(v ? v : "");
			n->s = arena_strdup(l->a, d);
			n->raw = NULL;
			free(d);
		}
		if (v && *v) {
			found = v;
			*pos = n->pos;
		}
	}
	return found;
}

/* Interpolates, includes, extends and merges the documents in order. */
static struct ynode *assemble(struct loader *l)
{
	struct ynode *merged = NULL;
	struct compose_read rd = {&l->env, !l->o->no_interpolate,
				  env_get(&l->env, "HOME")};
	for (size_t i = 0; i < l->n_docs; i++) {
		struct ynode *root = l->docs[i];
		const char *file = l->doc_files[i];
		if (!l->o->no_interpolate)
			interp_tree(l->a, root, &l->env, l->d);
		include_apply(l->a, root, file, l->p->working_dir, &rd, l->d);
		extends_apply(l->a, root, file, l->p->working_dir, &rd, l->d);
		merged = merge_roots(l->a, merged, root, l->d);
	}
	return merged;
}

static bool profile_active(const struct service *s, char **active, bool all)
{
	if (!s->profiles || !s->profiles[0] || all)
		return true;
	for (size_t i = 0; s->profiles[i]; i++)
		if (strv_contains(active, s->profiles[i]))
			return true;
	return false;
}

static void apply_profiles(struct loader *l)
{
	struct project *p = l->p;
	char **active = p->profiles;
	bool all = l->o->all_profiles || strv_contains(active, "*");
	size_t w = 0;
	p->disabled = arena_new_array(l->a, struct service,
				      p->n_services ? p->n_services : 1);
	for (size_t i = 0; i < p->n_services; i++) {
		if (profile_active(&p->services[i], active, all))
			p->services[w++] = p->services[i];
		else
			p->disabled[p->n_disabled++] = p->services[i];
	}
	p->n_services = w;
	/* A dependency with required: false on a service that is not there
	 * (not defined, or not enabled) is dropped, as compose does. */
	for (size_t i = 0; i < p->n_services; i++) {
		struct service *s = &p->services[i];
		size_t k = 0;
		for (size_t d = 0; d < s->n_depends_on; d++) {
			struct m_dep *dep = &s->depends_on[d];
			if (dep->required || project_service(p, dep->service)) {
				s->depends_on[k++] = *dep;
				continue;
			}
			diag_add(l->d, M_WARNING, &dep->pos,
				 "service \"%s\" depends on service \"%s\", "
				 "which is not there (required: false): "
				 "ignored",
				 s->name, dep->service);
		}
		s->n_depends_on = k;
	}
}

static char **split_list(struct arena *a, const char *s, char sep)
{
	size_t n = 1;
	for (const char *c = s; *c; c++)
		n += *c == sep;
	char **v = arena_new_array(a, char *, n + 1);
	size_t o = 0;
	for (const char *c = s;;) {
		const char *e = strchrnul(c, sep);
		if (e > c)
			v[o++] = arena_strndup(a, c, (size_t)(e - c));
		if (!*e)
			break;
		c = e + 1;
	}
	return v;
}

static char **arena_strv(struct arena *a, char **v)
{
	size_t n = strv_len(v);
	char **c = arena_new_array(a, char *, n + 1);
	for (size_t i = 0; i < n; i++)
		c[i] = arena_strdup(a, v[i]);
	return c;
}

int compose_load(const struct compose_opts *o, struct project **out,
		 struct orch_diag *diags)
{
	struct arena *a = arena_new();
	struct project *p = arena_alloc(a, sizeof(*p));
	p->arena = a;
	p->raw = o->no_interpolate;
	size_t first_diag = diags->n, first_err = diags->n_errors;
	struct loader l = {.o = o, .d = diags, .a = a, .p = p};
	char cwdbuf[PATH_MAX];
	l.cwd = arena_strdup(a, getcwd(cwdbuf, sizeof(cwdbuf)) ? cwdbuf : "/");
	_cleanup_strv_ char **files = NULL;
	*out = NULL;

	/* The project directory, and with it .env, come first: .env may
	 * set COMPOSE_FILE, COMPOSE_PROJECT_NAME and COMPOSE_PROFILES. */
	const char *dir = o->project_dir
			      ? path_resolve(a, l.cwd, NULL, o->project_dir)
			      : NULL;
	if (o->files && o->files[0]) {
		for (size_t i = 0; o->files[i]; i++)
			strv_push(&files, o->files[i]);
		if (!dir)
			dir = streq(files[0], "-")
				  ? l.cwd
				  : dir_of(a, path_resolve(a, l.cwd, NULL,
							   files[0]));
	}
	load_env(&l, dir ? dir : l.cwd);
	if (!files) {
		const char *cf = env_get(&l.env, "COMPOSE_FILE");
		if (cf && *cf) {
			const char *sep =
			    env_get(&l.env, "COMPOSE_PATH_SEPARATOR");
			char **v = split_list(a, cf, sep && *sep ? *sep : ':');
			for (size_t i = 0; v[i]; i++)
				strv_push(&files, v[i]);
		} else if (discover(&l, dir ? dir : l.cwd, &files) < 0) {
			goto fail;
		}
		if (!files)
			goto fail;
		if (!dir) {
			/* Found in a parent, or named by COMPOSE_FILE: the
			 * project directory's .env fills in what the working
			 * directory's left unset, as compose does. */
			dir = dir_of(a, path_resolve(a, l.cwd, NULL, files[0]));
			if (!streq(dir, l.cwd) && !o->env_files)
				load_env(&l, dir);
		}
	}
	p->working_dir = arena_strdup(a, dir);
	p->files = arena_new_array(a, char *, strv_len(files) + 1);
	for (size_t i = 0; files[i]; i++)
		p->files[i] = streq(files[i], "-")
				  ? "-"
				  : path_resolve(a, l.cwd, NULL, files[i]);

	parse_files(&l, files);
	struct m_pos name_pos = {0};
	const char *fname = file_project_name(&l, &name_pos);
	if (resolve_name(&l, fname, &name_pos) < 0)
		p->name = "invalid";
	/* The files see the project's name, as compose's do. */
	env_set(a, &l.env, "COMPOSE_PROJECT_NAME", p->name);
	struct ynode *root = assemble(&l);
	if (o->vars) {
		if (root)
			interp_collect(root, o->vars);
		o->vars->env = xcalloc(l.env.n + 1, sizeof(char *));
		for (size_t i = 0; i < l.env.n; i++)
			o->vars->env[i] = xstrdup(l.env.v[i]);
		int bad = diags->n_errors > first_err;
		diag_sort(diags, first_diag);
		arena_free(a);
		return bad ? -EINVAL : 0;
	}
	if (!root) {
		root = ynode_new(a, Y_MAP, NULL);
		root->k = root->v = NULL;
	}
	if (o->profiles) {
		p->profiles = arena_strv(a, o->profiles);
	} else {
		const char *cp = env_get(&l.env, "COMPOSE_PROFILES");
		p->profiles = split_list(a, cp ? cp : "", ',');
	}

	struct cctx c = {.a = a,
			 .d = diags,
			 .env = &l.env,
			 .workdir = dir,
			 .home = env_get(&l.env, "HOME"),
			 .project = p->name,
			 .defer_env_files = o->defer_env_files};
	sb_init(&c.path);
	size_t read_diags = diags->n; /* reading, include, extends */
	compose_convert(&c, root, p);
	sb_free(&c.path);
	apply_profiles(&l);
	compose_check_values(p, diags);
	if (!o->no_consistency)
		validate_project(p, diags, read_diags);
	diag_sort(diags, first_diag);
	if (diags->n_errors > first_err)
		goto fail;
	*out = p;
	return 0;
fail:
	diag_sort(diags, first_diag);
	arena_free(a);
	return -EINVAL;
}
