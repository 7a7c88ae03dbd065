/* The merged node tree -> the typed model: typed reads with errors that
 * name the key and the bad value, and the top-level sections (networks,
 * volumes, configs, secrets).  Services are in compose_svc.c. */
#include "orchestrator/compose/compose_impl.h"

#include <ctype.h>
#include <math.h>

/* ---- messages ----------------------------------------------------------- */

size_t cpath_push(struct cctx *c, const char *fmt, ...)
{
	size_t old = c->path.len;
	/* Called for every key, so the two common forms skip printf. */
	char buf[256];
	const char *s = buf;
	va_list ap;
	va_start(ap, fmt);
	if (streq(fmt, "%s")) {
		s = va_arg(ap, const char *);
	} else if (streq(fmt, "[%zu]")) {
		size_t i = va_arg(ap, size_t), o = sizeof(buf) - 1;
		buf[o] = '\0';
		buf[--o] = ']';
		do
			buf[--o] = (char)('0' + i % 10);
		while ((i /= 10));
		buf[--o] = '[';
		s = buf + o;
	} else {
		vsnprintf(buf, sizeof(buf), fmt, ap);
	}
	va_end(ap);
	if (c->path.len && s[0] != '[')
		sb_adds(&c->path, ".");
	sb_adds(&c->path, s);
	return old;
}

void cpath_pop(struct cctx *c, size_t len)
{
	sb_truncate(&c->path, len);
}

static void vcerr(struct cctx *c, const struct ynode *n, const char *fmt,
		  va_list ap) __attribute__((format(printf, 3, 0)));
static void vcerr(struct cctx *c, const struct ynode *n, const char *fmt,
		  va_list ap)
{
	_cleanup_free_ char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	if (c->path.len)
		diag_add(c->d, M_ERROR, n ? &n->pos : NULL, "%s: %s",
			 c->path.buf, s);
	else
		diag_add(c->d, M_ERROR, n ? &n->pos : NULL, "%s", s);
}

void cerr(struct cctx *c, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vcerr(c, n, fmt, ap);
	va_end(ap);
}

void cerr_item(struct cctx *c, const struct ynode *n, size_t i,
	       const char *fmt, ...)
{
	size_t l = cpath_push(c, "[%zu]", i);
	va_list ap;
	va_start(ap, fmt);
	vcerr(c, n->v[i], fmt, ap);
	va_end(ap);
	cpath_pop(c, l);
}

/* ---- typed reads ----------------------------------------------------------
 */

/* Values in messages are cut short so one line stays one line. */
static const char *shown(const struct ynode *n)
{
	static char buf[80];
	size_t l = strlen(n->s);
	if (l < 60)
		return n->s;
	snprintf(buf, sizeof(buf), "%.56s...", n->s);
	return buf;
}

char *c_str(struct cctx *c, const struct ynode *n)
{
	if (n->kind == Y_NULL)
		return NULL;
	if (n->kind != Y_SCALAR) {
		cerr(c, n, "must be a string, not %s", ykind_name(n));
		return NULL;
	}
	return n->s;
}

bool c_map(struct cctx *c, const struct ynode *n)
{
	if (n->kind == Y_MAP)
		return true;
	cerr(c, n, "must be a mapping, not %s", ykind_name(n));
	return false;
}

bool c_int(struct cctx *c, const struct ynode *n, int64_t min, int64_t max,
	   int64_t *out)
{
	if (n->kind != Y_SCALAR) {
		cerr(c, n, "must be an integer, not %s", ykind_name(n));
		return false;
	}
	const char *s = n->s;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno || isspace((unsigned char)*s)) {
		cerr(c, n, "must be an integer, not \"%s\"", shown(n));
		return false;
	}
	if (v < min || v > max) {
		cerr(c, n, "%lld is out of range (%lld to %lld)", v,
		     (long long)min, (long long)max);
		return false;
	}
	*out = v;
	return true;
}

bool c_bool(struct cctx *c, const struct ynode *n, bool *out)
{
	if (ybool(n, out) == 0)
		return true;
	if (n->kind == Y_SCALAR)
		cerr(c, n, "must be a boolean (true or false), not \"%s\"",
		     shown(n));
	else
		cerr(c, n, "must be a boolean, not %s", ykind_name(n));
	return false;
}

bool c_double(struct cctx *c, const struct ynode *n, double *out)
{
	if (n->kind != Y_SCALAR) {
		cerr(c, n, "must be a number, not %s", ykind_name(n));
		return false;
	}
	char *end;
	errno = 0;
	double v = strtod(n->s, &end);
	if (!*n->s || *end || errno || !isfinite(v) || v < 0 ||
	    isspace((unsigned char)*n->s)) {
		cerr(c, n, "must be a positive number, not \"%s\"", shown(n));
		return false;
	}
	*out = v;
	return true;
}

bool c_bytes(struct cctx *c, const struct ynode *n, bool allow_minus1,
	     int64_t *out)
{
	if (n->kind != Y_SCALAR) {
		cerr(c, n, "must be a byte size, not %s", ykind_name(n));
		return false;
	}
	if (allow_minus1 && streq(n->s, "-1")) {
		*out = -1;
		return true;
	}
	if (parse_bytes(n->s, out) < 0) {
		cerr(c, n, "invalid byte size \"%s\" (want e.g. 512m, 1g)",
		     shown(n));
		return false;
	}
	return true;
}

bool c_duration(struct cctx *c, const struct ynode *n, int64_t *out)
{
	if (n->kind != Y_SCALAR) {
		cerr(c, n, "must be a duration, not %s", ykind_name(n));
		return false;
	}
	int r = duration_parse(n->s, out);
	if (r < 0) {
		cerr(c, n,
		     "invalid duration \"%s\" (want e.g. 30s, 1m30s, 500ms)",
		     shown(n));
		return false;
	}
	return true;
}

char **c_strlist(struct cctx *c, const struct ynode *n, bool allow_string)
{
	if (n->kind == Y_SCALAR && allow_string) {
		char **v = arena_new_array(c->a, char *, 2);
		v[0] = n->s;
		return v;
	}
	if (n->kind == Y_NULL)
		return NULL;
	if (n->kind != Y_SEQ) {
		cerr(c, n,
		     allow_string ? "must be a string or a list of strings"
				  : "must be a list of strings, not %s",
		     ykind_name(n));
		return NULL;
	}
	char **v = arena_new_array(c->a, char *, n->n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n->n; i++) {
		if (n->v[i]->kind != Y_SCALAR) {
			cerr_item(c, n, i, "must be a string, not %s",
				  ykind_name(n->v[i]));
			continue;
		}
		v[o++] = n->v[i]->s;
	}
	return v;
}

void kv_set(struct arena *a, struct m_kvlist *l, const char *key,
	    const char *value, const struct m_pos *pos)
{
	for (size_t i = 0; i < l->n; i++)
		if (streq(l->v[i].key, key)) {
			l->v[i].value = (char *)value;
			if (pos)
				l->v[i].pos = *pos;
			return;
		}
	/* Capacity is the next power of two: grow when n is one. */
	if (!(l->n & (l->n - 1))) {
		struct m_kv *v =
		    arena_new_array(a, struct m_kv, l->n ? 2 * l->n : 4);
		if (l->n)
			memcpy(v, l->v, l->n * sizeof(*v));
		l->v = v;
	}
	l->v[l->n++] = (struct m_kv){(char *)key, (char *)value,
				     pos ? *pos : (struct m_pos){0}};
}

const struct m_kv *kv_get(const struct m_kvlist *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (streq(l->v[i].key, key))
			return &l->v[i];
	return NULL;
}

/* "K=V" / "K" list items and {K: V} mappings alike. */
char *c_mac(struct cctx *c, const struct ynode *n)
{
	char *s = c_str(c, n);
	unsigned char mac[6];
	if (s && !mac_parse(s, mac)) {
		cerr(c, n, "\"%s\" is not a unicast MAC address "
			   "(02:42:ac:11:00:02)",
		     s);
		return NULL;
	}
	return s;
}

void c_kvlist(struct cctx *c, const struct ynode *n, enum kvmode mode,
	      struct m_kvlist *out)
{
	if (n->kind == Y_NULL)
		return;
	if (n->kind == Y_MAP) {
		for (size_t i = 0; i < n->n; i++) {
			const struct ynode *v = n->v[i];
			const char *key = n->k[i]->s;
			const char *val;
			if (v->kind == Y_NULL)
				val =
				    mode == KV_ENV ? env_get(c->env, key) : "";
			else if (v->kind == Y_SCALAR)
				val = v->s;
			else {
				size_t l = cpath_push(c, "%s", key);
				cerr(c, v,
				     "must be a string, number or boolean, "
				     "not %s",
				     ykind_name(v));
				cpath_pop(c, l);
				continue;
			}
			kv_set(c->a, out, key, val, &n->k[i]->pos);
		}
		return;
	}
	if (n->kind != Y_SEQ) {
		cerr(c, n, "must be a mapping or a list, not %s",
		     ykind_name(n));
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *it = n->v[i];
		if (it->kind != Y_SCALAR) {
			size_t l = cpath_push(c, "[%zu]", i);
			cerr(c, it, "must be a string, not %s", ykind_name(it));
			cpath_pop(c, l);
			continue;
		}
		const char *s = it->s;
		size_t klen = strcspn(s, mode == KV_HOSTS ? "=:" : "=");
		const char *key = arena_strndup(c->a, s, klen);
		const char *val;
		if (s[klen])
			val = s + klen + 1;
		else if (mode == KV_ENV)
			val = env_get(c->env, key);
		else if (mode == KV_HOSTS) {
			size_t l = cpath_push(c, "[%zu]", i);
			cerr(c, it,
			     "invalid host entry \"%s\" (want host=address)",
			     shown(it));
			cpath_pop(c, l);
			continue;
		} else
			val = "";
		if (!*key) {
			size_t l = cpath_push(c, "[%zu]", i);
			cerr(c, it, "empty name in \"%s\"", shown(it));
			cpath_pop(c, l);
			continue;
		}
		kv_set(c->a, out, key, val, &it->pos);
	}
}

void c_known_keys(struct cctx *c, const struct ynode *n,
		  const char *const *names, size_t count)
{
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->k[i]->s;
		if (startswith(k, "x-"))
			continue;
		bool found = false;
		for (size_t j = 0; j < count && !found; j++)
			found = streq(names[j], k);
		if (found)
			continue;
		const char *near = did_you_mean(k, names, count);
		if (near)
			cerr(c, n->k[i],
			     "unknown key \"%s\" (did you mean \"%s\"?)", k,
			     near);
		else
			cerr(c, n->k[i], "unknown key \"%s\"", k);
	}
}

void c_ignored_keys(struct cctx *c, const struct ynode *n,
		    const char *const *names, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct ynode *k = ymap_key(n, names[i]);
		if (k)
			diag_add(c->d, M_WARNING, &k->pos,
				 "%s%s%s is not supported and is ignored",
				 c->path.buf, c->path.len ? ": " : "",
				 names[i]);
	}
}

/* ---- did you mean -----------------------------------------------------------
 */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j];
			size_t cost = tolower((unsigned char)a[i - 1]) ==
					      tolower((unsigned char)b[j - 1])
					  ? 0
					  : 1;
			size_t best = prev + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

const char *did_you_mean(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, names[i]);
		if (d < best_d) {
			best_d = d;
			best = names[i];
		}
	}
	size_t len = strlen(word);
	size_t limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
	return best_d <= limit ? best : NULL;
}

/* ---- top-level sections -------------------------------------------------- */

static char *object_name(struct cctx *c, const char *key, char *name,
			 bool external)
{
	if (name)
		return name;
	if (external)
		return (char *)key;
	return arena_printf(c->a, "%s_%s", c->project, key);
}

/* external: true, or the legacy external: {name: x}. */
static void read_external(struct cctx *c, const struct ynode *v, bool *external,
			  char **name)
{
	if (v->kind == Y_MAP) {
		static const char *const keys[] = {"name"};
		c_known_keys(c, v, keys, ARRAY_SIZE(keys));
		*external = true;
		const struct ynode *nm = ymap_get(v, "name");
		if (nm && !*name)
			*name = c_str(c, nm);
		return;
	}
	c_bool(c, v, external);
}

static void convert_ipam(struct cctx *c, const struct ynode *n,
			 struct network *net)
{
	static const char *const keys[] = {"driver", "config", "options"};
	static const char *const pool_keys[] = {"subnet", "gateway", "ip_range",
						"aux_addresses"};
	if (!c_map(c, n))
		return;
	c_known_keys(c, n, keys, ARRAY_SIZE(keys));
	const struct ynode *v;
	if ((v = ymap_get(n, "driver")))
		net->ipam_driver = c_str(c, v);
	if (!(v = ymap_get(n, "config")))
		return;
	size_t l0 = cpath_push(c, "config");
	if (v->kind != Y_SEQ) {
		cerr(c, v, "must be a list, not %s", ykind_name(v));
		cpath_pop(c, l0);
		return;
	}
	net->ipam = arena_new_array(c->a, struct m_ipam_pool, v->n ? v->n : 1);
	for (size_t i = 0; i < v->n; i++) {
		const struct ynode *p = v->v[i];
		size_t l = cpath_push(c, "[%zu]", i);
		if (c_map(c, p)) {
			c_known_keys(c, p, pool_keys, ARRAY_SIZE(pool_keys));
			struct m_ipam_pool *pool = &net->ipam[net->n_ipam++];
			pool->pos = p->pos;
			const struct ynode *f;
			int fam;
			unsigned char addr[16];
			int prefix;
			if ((f = ymap_get(p, "subnet"))) {
				pool->subnet = c_str(c, f);
				if (pool->subnet &&
				    cidr_parse(pool->subnet, &fam, addr,
					       &prefix) < 0) {
					cerr(c, f,
					     "invalid subnet \"%s\" (want CIDR "
					     "like 10.5.0.0/16)",
					     pool->subnet);
					pool->subnet = NULL;
				}
			}
			if ((f = ymap_get(p, "ip_range"))) {
				pool->ip_range = c_str(c, f);
				if (pool->ip_range &&
				    cidr_parse(pool->ip_range, &fam, addr,
					       &prefix) < 0) {
					cerr(c, f,
					     "invalid ip_range \"%s\" (want "
					     "CIDR)",
					     pool->ip_range);
					pool->ip_range = NULL;
				}
			}
			if ((f = ymap_get(p, "gateway"))) {
				pool->gateway = c_str(c, f);
				if (pool->gateway &&
				    !ip_valid(pool->gateway, NULL)) {
					cerr(c, f,
					     "invalid gateway address \"%s\"",
					     pool->gateway);
					pool->gateway = NULL;
				}
			}
			if ((f = ymap_get(p, "aux_addresses")))
				c_kvlist(c, f, KV_OPTS, &pool->aux_addresses);
		}
		cpath_pop(c, l);
	}
	cpath_pop(c, l0);
}

static void convert_network(struct cctx *c, const struct ynode *key,
			    const struct ynode *n, struct network *net)
{
	static const char *const keys[] = {
	    "driver",	  "driver_opts", "ipam", "external",	"internal",
	    "attachable", "labels",	 "name", "enable_ipv6", "enable_ipv4",
	};
	net->key = key->s;
	net->pos = key->pos;
	if (n->kind != Y_NULL && c_map(c, n)) {
		c_known_keys(c, n, keys, ARRAY_SIZE(keys));
		const struct ynode *v;
		if ((v = ymap_get(n, "name")))
			net->name = c_str(c, v);
		if ((v = ymap_get(n, "driver")))
			net->driver = c_str(c, v);
		if (net->driver && !streq(net->driver, "bridge") &&
		    !streq(net->driver, "default"))
			cerr(c, v,
			     "unsupported network driver \"%s\" (only bridge)",
			     net->driver);
		if ((v = ymap_get(n, "driver_opts")))
			c_kvlist(c, v, KV_OPTS, &net->driver_opts);
		if ((v = ymap_get(n, "labels")))
			c_kvlist(c, v, KV_LABELS, &net->labels);
		if ((v = ymap_get(n, "external")))
			read_external(c, v, &net->external, &net->name);
		if ((v = ymap_get(n, "internal")))
			c_bool(c, v, &net->internal);
		if ((v = ymap_get(n, "attachable")))
			c_bool(c, v, &net->attachable);
		if ((v = ymap_get(n, "enable_ipv6")))
			c_bool(c, v, &net->enable_ipv6);
		bool v4 = true;
		const struct ynode *v4node = ymap_get(n, "enable_ipv4");
		if (v4node && c_bool(c, v4node, &v4) && !v4) {
			net->ipv4_off = true;
			if (!net->enable_ipv6)
				cerr(c, v4node,
				     "enable_ipv4: false needs enable_ipv6: "
				     "true (a network needs addresses of one "
				     "family)");
		}
		if ((v = ymap_get(n, "ipam"))) {
			size_t l = cpath_push(c, "ipam");
			convert_ipam(c, v, net);
			cpath_pop(c, l);
		}
	}
	net->name = object_name(c, net->key, net->name, net->external);
}

static void convert_volume(struct cctx *c, const struct ynode *key,
			   const struct ynode *n, struct volume *vol)
{
	static const char *const keys[] = {"driver", "driver_opts", "external",
					   "labels", "name"};
	vol->key = key->s;
	vol->pos = key->pos;
	if (n->kind != Y_NULL && c_map(c, n)) {
		c_known_keys(c, n, keys, ARRAY_SIZE(keys));
		const struct ynode *v;
		if ((v = ymap_get(n, "name")))
			vol->name = c_str(c, v);
		if ((v = ymap_get(n, "driver")))
			vol->driver = c_str(c, v);
		if (vol->driver && !streq(vol->driver, "local"))
			cerr(c, v,
			     "unsupported volume driver \"%s\" (only local)",
			     vol->driver);
		if ((v = ymap_get(n, "driver_opts")))
			c_kvlist(c, v, KV_OPTS, &vol->driver_opts);
		if ((v = ymap_get(n, "labels")))
			c_kvlist(c, v, KV_LABELS, &vol->labels);
		if ((v = ymap_get(n, "external")))
			read_external(c, v, &vol->external, &vol->name);
	}
	vol->name = object_name(c, vol->key, vol->name, vol->external);
}

static void convert_file_obj(struct cctx *c, const struct ynode *key,
			     const struct ynode *n, struct m_file_obj *o,
			     bool secret)
{
	static const char *const keys[] = {
	    "file", "environment", "content",	  "external",	    "labels",
	    "name", "driver",	   "driver_opts", "template_driver"};
	o->key = key->s;
	o->pos = key->pos;
	if (c_map(c, n)) {
		c_known_keys(c, n, keys, ARRAY_SIZE(keys));
		const struct ynode *v;
		if ((v = ymap_get(n, "name")))
			o->name = c_str(c, v);
		if ((v = ymap_get(n, "file"))) {
			char *f = c_str(c, v);
			if (f)
				o->file =
				    path_resolve(c->a, c->workdir, c->home, f);
		}
		if ((v = ymap_get(n, "environment")))
			o->environment = c_str(c, v);
		const char *ev = o->environment && c->env
				     ? env_get(c->env, o->environment)
				     : NULL;
		if (ev)
			o->env_value = arena_strdup(c->a, ev);
		if ((v = ymap_get(n, "content")))
			o->content = c_str(c, v);
		if ((v = ymap_get(n, "external")))
			read_external(c, v, &o->external, &o->name);
		if ((v = ymap_get(n, "labels")))
			c_kvlist(c, v, KV_LABELS, &o->labels);
		int sources =
		    !!o->file + !!o->environment + !!o->content + o->external;
		if (sources != 1)
			cerr(c, key,
			     "%s \"%s\" needs exactly one of file, "
			     "environment%s or external",
			     secret ? "secret" : "config", o->key,
			     secret ? "" : ", content");
		if (secret && o->content)
			cerr(c, ymap_get(n, "content"),
			     "secrets cannot use content");
	}
	o->name = object_name(c, o->key, o->name, o->external);
}

/* ---- the whole file ---------------------------------------------------------
 */

static int svc_cmp(const void *a, const void *b)
{
	return strcmp(((const struct service *)a)->name,
		      ((const struct service *)b)->name);
}

static int net_cmp(const void *a, const void *b)
{
	return strcmp(((const struct network *)a)->key,
		      ((const struct network *)b)->key);
}

static int vol_cmp(const void *a, const void *b)
{
	return strcmp(((const struct volume *)a)->key,
		      ((const struct volume *)b)->key);
}

static int fobj_cmp(const void *a, const void *b)
{
	return strcmp(((const struct m_file_obj *)a)->key,
		      ((const struct m_file_obj *)b)->key);
}

/* A top-level mapping with at most max entries (0: no bound), or NULL
 * after reporting why not. */
static const struct ynode *section_max(struct cctx *c, const struct ynode *root,
				       const char *name, size_t max)
{
	const struct ynode *v = ymap_get(root, name);
	if (!v || v->kind == Y_NULL)
		return NULL;
	size_t l = cpath_push(c, "%s", name);
	bool ok = c_map(c, v);
	if (ok && max && v->n > max) {
		cerr(c, ymap_key(root, name),
		     "%zu entries, more than the %zu a project may have",
		     v->n, max);
		ok = false;
	}
	cpath_pop(c, l);
	return ok ? v : NULL;
}

static const struct ynode *section(struct cctx *c, const struct ynode *root,
				   const char *name)
{
	return section_max(c, root, name, 0);
}

static void convert_file_objs(struct cctx *c, const struct ynode *root,
			      const char *what, struct m_file_obj **out,
			      size_t *n_out)
{
	const struct ynode *sec = section(c, root, what);
	if (!sec)
		return;
	*out = arena_new_array(c->a, struct m_file_obj, sec->n ? sec->n : 1);
	for (size_t i = 0; i < sec->n; i++) {
		size_t l = cpath_push(c, "%s.%s", what, sec->k[i]->s);
		convert_file_obj(c, sec->k[i], sec->v[i], &(*out)[i],
				 streq(what, "secrets"));
		cpath_pop(c, l);
	}
	*n_out = sec->n;
	qsort(*out, *n_out, sizeof(**out), fobj_cmp);
}

void compose_convert(struct cctx *c, const struct ynode *root,
		     struct project *p)
{
	static const char *const top[] = {"version",  "name",	 "services",
					  "networks", "volumes", "configs",
					  "secrets",  "include",  "models"};
	static const char *const ignored[] = {"models"};
	c_known_keys(c, root, top, ARRAY_SIZE(top));
	c_ignored_keys(c, root, ignored, ARRAY_SIZE(ignored));
	p->root = root;
	const struct ynode *v = ymap_key(root, "version");
	if (v)
		diag_add(c->d, M_WARNING, &v->pos,
			 "the attribute `version` is "
			 "obsolete, it will be ignored");

	const struct ynode *sec =
	    section_max(c, root, "services", ORCH_MAX_SERVICES);
	if (sec) {
		p->services =
		    arena_new_array(c->a, struct service, sec->n ? sec->n : 1);
		for (size_t i = 0; i < sec->n; i++) {
			size_t l = cpath_push(c, "services.%s", sec->k[i]->s);
			convert_service(c, sec->k[i], sec->v[i],
					&p->services[i]);
			cpath_pop(c, l);
		}
		p->n_services = sec->n;
		qsort(p->services, p->n_services, sizeof(*p->services),
		      svc_cmp);
	}
	if ((sec = section_max(c, root, "networks", ORCH_MAX_NETWORKS))) {
		/* One spare slot for an implicit "default" network. */
		p->networks = arena_new_array(c->a, struct network, sec->n + 1);
		for (size_t i = 0; i < sec->n; i++) {
			size_t l = cpath_push(c, "networks.%s", sec->k[i]->s);
			convert_network(c, sec->k[i], sec->v[i],
					&p->networks[i]);
			cpath_pop(c, l);
		}
		p->n_networks = sec->n;
	} else {
		p->networks = arena_new_array(c->a, struct network, 1);
	}
	/* The implicit default network is where its first service is
	 * written, so that errors about it name a place in the file. */
	const struct m_pos *need_default = NULL;
	for (size_t i = 0; i < p->n_services && !need_default; i++)
		for (size_t j = 0; j < p->services[i].n_networks; j++)
			if (streq(p->services[i].networks[j].name, "default"))
				need_default = &p->services[i].networks[j].pos;
	if (need_default && !project_network(p, "default")) {
		struct network *net = &p->networks[p->n_networks++];
		net->key = "default";
		net->name = arena_printf(c->a, "%s_default", c->project);
		net->pos = *need_default;
	}
	qsort(p->networks, p->n_networks, sizeof(*p->networks), net_cmp);
	if ((sec = section_max(c, root, "volumes", ORCH_MAX_VOLUMES))) {
		p->volumes =
		    arena_new_array(c->a, struct volume, sec->n ? sec->n : 1);
		for (size_t i = 0; i < sec->n; i++) {
			size_t l = cpath_push(c, "volumes.%s", sec->k[i]->s);
			convert_volume(c, sec->k[i], sec->v[i], &p->volumes[i]);
			cpath_pop(c, l);
		}
		p->n_volumes = sec->n;
		qsort(p->volumes, p->n_volumes, sizeof(*p->volumes), vol_cmp);
	}
	convert_file_objs(c, root, "configs", &p->configs, &p->n_configs);
	convert_file_objs(c, root, "secrets", &p->secrets, &p->n_secrets);
}
