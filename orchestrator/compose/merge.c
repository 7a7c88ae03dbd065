/* Merging several compose files as the Compose Specification says:
 * mappings merge key by key, scalars are replaced, and sequences follow
 * their kind: command/entrypoint/healthcheck.test are replaced; ports,
 * volumes, devices, configs and secrets merge by their key (published
 * port, target...); environment, labels, extra_hosts... merge as mappings
 * whatever their syntax; lists like cap_add or dns keep unique values.
 * The tags !reset and !override remove or replace a value outright. */
#include "orchestrator/compose/compose_impl.h"

/* Keys whose list form ("K=V") merges as a mapping. */
static const char *const kv_keys[] = {
    "environment", "labels", "annotations", "extra_hosts",
    "sysctls",	   "args",   "driver_opts", "options",
};
/* Keys whose list form (names) merges as a mapping of name -> {...}. */
static const char *const name_keys[] = {"networks", "depends_on"};
/* Sequences that are replaced, never appended to. */
static const char *const replaced[] = {"command", "entrypoint", "test"};

static bool in(const char *const *set, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (streq(set[i], key))
			return true;
	return false;
}

/* ["K=V", "K"] -> {K: V, K: null}, positions kept. */
static struct ynode *list_to_map(struct arena *a, const struct ynode *n,
				 bool kv, bool hosts)
{
	struct ynode *m = ynode_new(a, Y_MAP, &n->pos);
	m->k = arena_new_array(a, struct ynode *, n->n ? n->n : 1);
	m->v = arena_new_array(a, struct ynode *, n->n ? n->n : 1);
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *it = n->v[i];
		if (it->kind != Y_SCALAR)
			return NULL; /* left for the type check to report */
		const char *s = it->s;
		size_t klen = kv ? strcspn(s, hosts ? "=:" : "=") : strlen(s);
		struct ynode *k = yscalar_new(a, "", &it->pos);
		k->s = arena_strndup(a, s, klen);
		struct ynode *v;
		if (kv && s[klen]) {
			v = yscalar_new(a, s + klen + 1, &it->pos);
		} else {
			v = ynode_new(a, Y_NULL, &it->pos);
		}
		size_t j = 0;
		while (j < m->n && !streq(m->k[j]->s, k->s))
			j++;
		m->k[j] = k;
		m->v[j] = v;
		if (j == m->n)
			m->n++;
	}
	return m;
}

static struct ynode *merge_generic(struct arena *a, const char *key,
				   struct ynode *b, struct ynode *o, int depth);

/* A mapping holding base's pairs merged with over's, in base's order then
 * over's new keys; values merged by merge_value. */
static struct ynode *
merge_map(struct arena *a, struct ynode *b, struct ynode *o, int depth,
	  struct ynode *(*merge_value)(struct arena *, const char *,
				       struct ynode *, struct ynode *, int))
{
	struct ynode *m = ynode_new(a, Y_MAP, &b->pos);
	size_t cap = b->n + o->n;
	m->k = arena_new_array(a, struct ynode *, cap ? cap : 1);
	m->v = arena_new_array(a, struct ynode *, cap ? cap : 1);
	for (size_t i = 0; i < b->n; i++) {
		m->k[m->n] = b->k[i];
		m->v[m->n++] = b->v[i];
	}
	for (size_t i = 0; i < o->n; i++) {
		size_t j = 0;
		while (j < m->n && !streq(m->k[j]->s, o->k[i]->s))
			j++;
		struct ynode *ov = o->v[i];
		struct ynode *res;
		if (ov->tag == YT_RESET)
			res = NULL;
		else if (j == m->n || ov->tag == YT_OVERRIDE || !m->v[j])
			res = ov;
		else
			res =
			    merge_value(a, o->k[i]->s, m->v[j], ov, depth + 1);
		/* The key is reported where the winning file wrote it. */
		m->k[j] = o->k[i];
		if (j == m->n)
			m->n++;
		m->v[j] = res;
	}
	/* Drop what !reset removed. */
	size_t w = 0;
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i]) {
			m->k[w] = m->k[i];
			m->v[w++] = m->v[i];
		}
	m->n = w;
	return m;
}

static struct ynode *merge_generic(struct arena *a, const char *key,
				   struct ynode *b, struct ynode *o, int depth)
{
	(void)key;
	if (b->kind == Y_MAP && o->kind == Y_MAP && depth < YAML_MAX_DEPTH)
		return merge_map(a, b, o, depth, merge_generic);
	return o;
}

/* Sequences merged by an item key: an override item replaces the base
 * item with the same key in place; new ones are appended. */
static struct ynode *merge_keyed(struct arena *a, const char *key,
				 struct ynode *b, struct ynode *o)
{
	struct ynode *m = ynode_new(a, Y_SEQ, &b->pos);
	m->v = arena_new_array(a, struct ynode *, b->n + o->n + 1);
	const char **keys = arena_new_array(a, const char *, b->n + o->n + 1);
	for (size_t i = 0; i < b->n; i++) {
		keys[m->n] = merge_item_key(a, key, b->v[i]);
		m->v[m->n++] = b->v[i];
	}
	for (size_t i = 0; i < o->n; i++) {
		const char *k = merge_item_key(a, key, o->v[i]);
		size_t j = 0;
		while (k && j < m->n && !(keys[j] && streq(keys[j], k)))
			j++;
		if (!k || j == m->n) {
			keys[m->n] = k;
			m->v[m->n++] = o->v[i];
		} else {
			m->v[j] = o->v[i];
		}
	}
	return m;
}

static struct ynode *merge_service_value(struct arena *a, const char *key,
					 struct ynode *b, struct ynode *o,
					 int depth);

static struct ynode *as_mapping(struct arena *a, const char *key,
				struct ynode *n)
{
	if (n->kind != Y_SEQ)
		return n;
	struct ynode *m =
	    list_to_map(a, n, in(kv_keys, ARRAY_SIZE(kv_keys), key),
			streq(key, "extra_hosts"));
	return m ? m : n;
}

/* Values inside a service (and inside its build/deploy/healthcheck...). */
static struct ynode *merge_service_value(struct arena *a, const char *key,
					 struct ynode *b, struct ynode *o,
					 int depth)
{
	if (depth > YAML_MAX_DEPTH)
		return o;
	if (in(kv_keys, ARRAY_SIZE(kv_keys), key) ||
	    in(name_keys, ARRAY_SIZE(name_keys), key)) {
		b = as_mapping(a, key, b);
		o = as_mapping(a, key, o);
	}
	if (streq(key, "build")) {
		/* build: ./dir is build: {context: ./dir}. */
		struct ynode *both[2] = {b, o};
		for (int i = 0; i < 2; i++)
			if (both[i]->kind == Y_SCALAR) {
				struct ynode *m =
				    ynode_new(a, Y_MAP, &both[i]->pos);
				m->k = arena_new_array(a, struct ynode *, 1);
				m->v = arena_new_array(a, struct ynode *, 1);
				m->k[0] =
				    yscalar_new(a, "context", &both[i]->pos);
				m->v[0] = both[i];
				m->n = 1;
				both[i] = m;
			}
		b = both[0];
		o = both[1];
	}
	if (streq(key, "logging") && b->kind == Y_MAP && o->kind == Y_MAP) {
		const struct ynode *bd = ymap_get(b, "driver"),
				   *od = ymap_get(o, "driver");
		if (bd && od && bd->kind == Y_SCALAR && od->kind == Y_SCALAR &&
		    !streq(bd->s, od->s))
			return o;
	}
	if (b->kind == Y_MAP && o->kind == Y_MAP)
		return merge_map(a, b, o, depth, merge_service_value);
	if (b->kind == Y_SEQ && o->kind == Y_SEQ) {
		if (in(replaced, ARRAY_SIZE(replaced), key))
			return o;
		if (merge_is_keyed(key))
			return merge_keyed(a, key, b, o);
		/* Other lists (cache_from, tags, aliases...) are appended. */
		struct ynode *m = ynode_new(a, Y_SEQ, &b->pos);
		m->v = arena_new_array(a, struct ynode *, b->n + o->n + 1);
		memcpy(m->v, b->v, b->n * sizeof(*m->v));
		memcpy(m->v + b->n, o->v, o->n * sizeof(*m->v));
		m->n = b->n + o->n;
		return m;
	}
	return o;
}

static struct ynode *merge_service(struct arena *a, const char *key,
				   struct ynode *b, struct ynode *o, int depth)
{
	(void)key;
	if (b->kind == Y_MAP && o->kind == Y_MAP)
		return merge_map(a, b, o, depth, merge_service_value);
	return o;
}

static struct ynode *merge_section(struct arena *a, const char *key,
				   struct ynode *b, struct ynode *o, int depth)
{
	if (b->kind != Y_MAP || o->kind != Y_MAP)
		return o;
	if (streq(key, "services"))
		return merge_map(a, b, o, depth, merge_service);
	return merge_map(a, b, o, depth, merge_generic);
}

struct ynode *merge_service_nodes(struct arena *a, struct ynode *base,
				  struct ynode *over)
{
	return merge_service(a, "", base, over, 1);
}

struct ynode *merge_roots(struct arena *a, struct ynode *base,
			  struct ynode *over, struct orch_diag *d)
{
	(void)d;
	if (!base)
		return over;
	if (!over)
		return base;
	return merge_map(a, base, over, 0, merge_section);
}

/* ---- merge keys
 * ------------------------------------------------------------------- */

static const char *const unique[] = {
    "cap_add", "cap_drop",	 "dns",
    "dns_opt", "dns_search",	 "env_file",
    "expose",  "external_links", "group_add",
    "links",   "profiles",	 "security_opt",
    "tmpfs",   "volumes_from",	 "device_cgroup_rules",
};

bool merge_is_keyed(const char *key)
{
	static const char *const keyed[] = {"ports", "volumes", "devices",
					    "configs", "secrets"};
	for (size_t i = 0; i < ARRAY_SIZE(keyed); i++)
		if (streq(key, keyed[i]))
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(unique); i++)
		if (streq(key, unique[i]))
			return true;
	return false;
}

const char *merge_item_key(struct arena *a, const char *key,
			   const struct ynode *item)
{
	if (streq(key, "ports")) {
		struct m_port one = {0}, *ps = &one;
		size_t np = 1;
		const char *why;
		struct cctx c = {.a = a};
		sb_init(&c.path);
		struct orch_diag quiet = {0};
		c.d = &quiet;
		bool ok = item->kind == Y_SCALAR
			      ? port_parse_spec(a, item->s, &ps, &np, &why) == 0
			      : item->kind == Y_MAP &&
				    port_parse_long(&c, item, &one);
		diag_free(&quiet);
		sb_free(&c.path);
		if (!ok)
			return NULL;
		return arena_printf(a, "%s:%u-%u:%u+%zu/%s",
				    ps->host_ip ? ps->host_ip : "",
				    ps->published, ps->published_end,
				    ps->target, np, proto_name(ps->protocol));
	}
	if (streq(key, "volumes") || streq(key, "devices")) {
		if (item->kind == Y_MAP) {
			const struct ynode *t = ymap_get(item, "target");
			return t && t->kind == Y_SCALAR ? t->s : NULL;
		}
		if (item->kind != Y_SCALAR)
			return NULL;
		const char *s = item->s, *c1 = strchr(s, ':');
		if (!c1)
			return s;
		const char *c2 = strchr(c1 + 1, ':');
		return c2 ? arena_strndup(a, c1 + 1, (size_t)(c2 - c1 - 1))
			  : c1 + 1;
	}
	if (streq(key, "configs") || streq(key, "secrets")) {
		if (item->kind == Y_MAP) {
			const struct ynode *t = ymap_get(item, "source");
			return t && t->kind == Y_SCALAR ? t->s : NULL;
		}
		return item->kind == Y_SCALAR ? item->s : NULL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(unique); i++)
		if (streq(key, unique[i]))
			return item->kind == Y_SCALAR ? item->s : NULL;
	return NULL;
}
