/* One service's mapping -> struct service: every service key of the
 * Compose Specification, typed, with errors naming key and value. */
#include "orchestrator/compose/compose_impl.h"

#include <ctype.h>
#include <stddef.h>
#include <sys/socket.h>

/* Arrays built one element at a time keep a power-of-two capacity. */
static void *grow(struct arena *a, void *arr, size_t n, size_t elem)
{
	if (n && (n & (n - 1)))
		return arr;
	void *v = arena_alloc(a, elem * (n ? 2 * n : 4));
	if (n)
		memcpy(v, arr, elem * n);
	return v;
}
#define PUSH(a, arr, n)                                                        \
	((arr) = grow((a), (arr), (n), sizeof(*(arr))), &(arr)[(n)++])

/* Items of a sequence, with the path following along. */
#define EACH_ITEM(c, n, i, l)                                                  \
	for (size_t i = 0, l = 0; i < (n)->n; i++)                             \
		if ((l = cpath_push((c), "[%zu]", i)), true)

static bool want_seq(struct cctx *c, const struct ynode *n)
{
	if (n->kind == Y_SEQ)
		return true;
	cerr(c, n, "must be a list, not %s", ykind_name(n));
	return false;
}

static const char *shown(const char *s)
{
	static char buf[80];
	if (strlen(s) < 60)
		return s;
	snprintf(buf, sizeof(buf), "%.56s...", s);
	return buf;
}

/* ---- command lines: shell-style splitting ------------------------------- */

static char **shell_split(struct cctx *c, const struct ynode *n)
{
	const char *s = n->s;
	struct strbuf word;
	char **out = NULL;
	size_t count = 0;
	sb_init(&word);
	bool in_word = false;
	while (*s) {
		char ch = *s;
		if (isspace((unsigned char)ch)) {
			if (in_word) {
				*PUSH(c->a, out, count) =
				    arena_strndup(c->a, word.buf, word.len);
				word.len = 0;
				in_word = false;
			}
			s++;
			continue;
		}
		in_word = true;
		if (ch == '\\' && s[1]) {
			sb_add(&word, s + 1, 1);
			s += 2;
		} else if (ch == '\'') {
			const char *e = strchr(s + 1, '\'');
			if (!e)
				goto unterminated;
			sb_add(&word, s + 1, (size_t)(e - s - 1));
			s = e + 1;
		} else if (ch == '"') {
			s++;
			while (*s && *s != '"') {
				if (*s == '\\' && s[1] &&
				    strchr("\"\\$`", s[1]))
					s++;
				sb_add(&word, s++, 1);
			}
			if (!*s)
				goto unterminated;
			s++;
		} else {
			sb_add(&word, s++, 1);
		}
	}
	if (in_word)
		*PUSH(c->a, out, count) =
		    arena_strndup(c->a, word.buf, word.len);
	sb_free(&word);
	out = grow(c->a, out, count, sizeof(*out));
	if (!out)
		out = arena_new_array(c->a, char *, 1);
	out[count] = NULL;
	return out;
unterminated:
	sb_free(&word);
	cerr(c, n, "unterminated quote in \"%s\"", shown(n->s));
	return NULL;
}

static char **command_of(struct cctx *c, const struct ynode *n)
{
	if (n->kind == Y_SCALAR)
		return shell_split(c, n);
	return c_strlist(c, n, false);
}

/* ---- ports
 * ------------------------------------------------------------------- */

bool port_parse_long(struct cctx *c, const struct ynode *n, struct m_port *p)
{
	static const char *const keys[] = {
	    "target", "published", "host_ip",	  "protocol",
	    "mode",   "name",	   "app_protocol"};
	c_known_keys(c, n, keys, ARRAY_SIZE(keys));
	const struct ynode *v;
	int64_t t;
	p->mode = "ingress";
	p->pos = n->pos;
	if (!(v = ymap_get(n, "target"))) {
		cerr(c, n, "target is required");
		return false;
	}
	size_t l = cpath_push(c, "target");
	bool ok = c_int(c, v, 1, 65535, &t);
	cpath_pop(c, l);
	if (!ok)
		return false;
	p->target = (uint16_t)t;
	if ((v = ymap_get(n, "published")) && v->kind != Y_NULL) {
		const char *s = c_str(c, v);
		if (!s || port_parse_published(s, &p->published,
					       &p->published_end) < 0) {
			l = cpath_push(c, "published");
			cerr(c, v,
			     "invalid published port \"%s\" (want a port "
			     "0-65535 or a range like 8000-8010)",
			     shown(v->s));
			cpath_pop(c, l);
			return false;
		}
	}
	if ((v = ymap_get(n, "host_ip"))) {
		p->host_ip = c_str(c, v);
		if (p->host_ip && !ip_valid(p->host_ip, NULL)) {
			cerr(c, v, "invalid host_ip \"%s\"", shown(p->host_ip));
			return false;
		}
	}
	if ((v = ymap_get(n, "protocol"))) {
		const char *s = c_str(c, v);
		if (s && proto_parse(s, &p->protocol) < 0) {
			cerr(c, v,
			     "unknown protocol \"%s\" (want tcp, udp or sctp)",
			     shown(s));
			return false;
		}
	}
	if ((v = ymap_get(n, "mode"))) {
		const char *s = c_str(c, v);
		if (s && !streq(s, "host") && !streq(s, "ingress")) {
			cerr(c, v, "invalid mode \"%s\" (want host or ingress)",
			     shown(s));
			return false;
		}
		if (s)
			p->mode = (char *)s;
	}
	if ((v = ymap_get(n, "name")))
		p->name = c_str(c, v);
	if ((v = ymap_get(n, "app_protocol")))
		p->app_protocol = c_str(c, v);
	return true;
}

/* Ports (ranges expanded) of the whole project stay under
 * ORCH_MAX_PORTS: one more item of count is refused past it. */
static bool ports_bounded(struct cctx *c, const struct ynode *it, size_t count)
{
	if (c->n_ports + count <= ORCH_MAX_PORTS) {
		c->n_ports += count;
		return true;
	}
	cerr(c, it,
	     "too many ports: a project declares at most %d (ports and "
	     "expose, each port of a range counted)",
	     ORCH_MAX_PORTS);
	return false;
}

static void svc_ports(struct cctx *c, struct service *s, const struct ynode *n)
{
	if (!want_seq(c, n))
		return;
	EACH_ITEM(c, n, i, l)
	{
		const struct ynode *it = n->v[i];
		if (c->n_ports >= ORCH_MAX_PORTS) {
			ports_bounded(c, it, 1);
			cpath_pop(c, l);
			break;
		}
		if (it->kind == Y_MAP) {
			struct m_port p = {0};
			if (port_parse_long(c, it, &p) &&
			    ports_bounded(c, it, 1))
				*PUSH(c->a, s->ports, s->n_ports) = p;
		} else if (it->kind == Y_SCALAR) {
			struct m_port *ps;
			size_t np;
			const char *why;
			if (port_parse_spec(c->a, it->s, &ps, &np, &why) < 0) {
				cerr(c, it, "invalid port \"%s\": %s",
				     shown(it->s), why);
			} else if (ports_bounded(c, it, np)) {
				for (size_t j = 0; j < np; j++) {
					ps[j].pos = it->pos;
					*PUSH(c->a, s->ports, s->n_ports) =
					    ps[j];
				}
			}
		} else {
			cerr(c, it,
			     "must be a port string or a mapping, not %s",
			     ykind_name(it));
		}
		cpath_pop(c, l);
	}
}

static void svc_expose(struct cctx *c, struct service *s, const struct ynode *n)
{
	char **v = c_strlist(c, n, false);
	if (!v)
		return;
	for (size_t i = 0; v[i]; i++) {
		struct m_port *ps;
		size_t np;
		const char *why;
		if (c->n_ports >= ORCH_MAX_PORTS) {
			size_t l = cpath_push(c, "[%zu]", i);
			ports_bounded(c, n->v[i], 1);
			cpath_pop(c, l);
			break;
		}
		if (strchr(v[i], ':') ||
		    port_parse_spec(c->a, v[i], &ps, &np, &why) < 0) {
			size_t l = cpath_push(c, "[%zu]", i);
			cerr(c, n->v[i],
			     "invalid port \"%s\" (want e.g. 80, "
			     "8000-8010 or 53/udp)",
			     shown(v[i]));
			cpath_pop(c, l);
		} else {
			size_t l = cpath_push(c, "[%zu]", i);
			ports_bounded(c, n->v[i], np);
			cpath_pop(c, l);
		}
	}
	s->expose = v;
}

/* ---- volumes
 * ------------------------------------------------------------------ */

static bool is_path(const char *s)
{
	return s[0] == '/' || s[0] == '.' || s[0] == '~';
}

static bool volume_name_ok(const char *s)
{
	if (!isalnum((unsigned char)s[0]))
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_.-", *p))
			return false;
	return true;
}

static bool mount_short(struct cctx *c, const struct ynode *n,
			struct m_mount *m)
{
	_cleanup_free_ char *spec = xstrdup(n->s);
	char *parts[3] = {0};
	size_t np = str_fields(spec, ':', parts, 3);
	if (np > 3 || !*parts[0]) {
		cerr(c, n,
		     "invalid volume \"%s\" (want [SOURCE:]TARGET[:MODE])",
		     shown(n->s));
		return false;
	}
	m->tmpfs_size = m->tmpfs_mode = M_UNSET;
	m->pos = n->pos;
	const char *src = np >= 2 ? parts[0] : NULL;
	const char *dst = np >= 2 ? parts[1] : parts[0];
	if (dst[0] != '/') {
		cerr(c, n,
		     "invalid volume \"%s\": the target \"%s\" is not an "
		     "absolute path",
		     shown(n->s), shown(dst));
		return false;
	}
	m->target = path_clean(c->a, dst);
	if (!src) {
		m->type = M_MOUNT_VOLUME;
	} else if (is_path(src)) {
		m->type = M_MOUNT_BIND;
		m->source = path_resolve(c->a, c->workdir, c->home, src);
		m->bind_create_host_path = true;
	} else {
		if (!volume_name_ok(src)) {
			cerr(c, n, "invalid volume name \"%s\" in \"%s\"",
			     shown(src), shown(n->s));
			return false;
		}
		m->type = M_MOUNT_VOLUME;
		m->source = arena_strdup(c->a, src);
	}
	if (np < 3)
		return true;
	char *opts = parts[2];
	for (char *tok; (tok = strsep(&opts, ","));) {
		if (streq(tok, "ro"))
			m->read_only = true;
		else if (streq(tok, "rw"))
			m->read_only = false;
		else if (streq(tok, "z") || streq(tok, "Z"))
			m->bind_selinux = arena_strdup(c->a, tok);
		else if (streq(tok, "nocopy") && m->type == M_MOUNT_VOLUME)
			m->volume_nocopy = true;
		else if (strstr(
			     " shared rshared slave rslave private rprivate ",
			     tok) &&
			 *tok && m->type == M_MOUNT_BIND && !strchr(tok, ' '))
			m->bind_propagation = arena_strdup(c->a, tok);
		else if (streq(tok, "cached") || streq(tok, "delegated") ||
			 streq(tok, "consistent"))
			m->consistency = arena_strdup(c->a, tok);
		else {
			cerr(c, n,
			     "invalid volume \"%s\": unknown option \"%s\"",
			     shown(n->s), shown(tok));
			return false;
		}
	}
	return true;
}

static const char *const mount_types[] = {"volume", "bind",  "tmpfs",
					  "image",  "npipe", "cluster"};

static void mount_sub(struct cctx *c, const struct ynode *n, const char *key,
		      const char *const *keys, size_t nkeys,
		      const struct ynode **out)
{
	const struct ynode *v = ymap_get(n, key);
	*out = NULL;
	if (!v || v->kind == Y_NULL)
		return;
	size_t l = cpath_push(c, "%s", key);
	if (c_map(c, v)) {
		c_known_keys(c, v, keys, nkeys);
		*out = v;
	}
	cpath_pop(c, l);
}

static bool mount_long(struct cctx *c, const struct ynode *n, struct m_mount *m)
{
	static const char *const keys[] = {"type",	"source",      "target",
					   "read_only", "consistency", "bind",
					   "volume",	"tmpfs",       "image"};
	static const char *const bind_keys[] = {
	    "propagation", "create_host_path", "selinux", "recursive"};
	static const char *const vol_keys[] = {"nocopy", "subpath", "labels"};
	static const char *const tmpfs_keys[] = {"size", "mode"};
	static const char *const image_keys[] = {"subpath"};
	c_known_keys(c, n, keys, ARRAY_SIZE(keys));
	m->tmpfs_size = m->tmpfs_mode = M_UNSET;
	m->pos = n->pos;
	const struct ynode *v = ymap_get(n, "type");
	const char *type = v ? c_str(c, v) : NULL;
	size_t t = 0;
	while (type && t < ARRAY_SIZE(mount_types) &&
	       !streq(type, mount_types[t]))
		t++;
	if (!type || t == ARRAY_SIZE(mount_types)) {
		cerr(c, v ? v : n,
		     type ? "invalid mount type \"%s\" (want volume, "
			    "bind or tmpfs)"
			  : "%smount type is required",
		     type ? shown(type) : "");
		return false;
	}
	m->type = (enum m_mount_type)t;
	if (!(v = ymap_get(n, "target")) || !c_str(c, v)) {
		cerr(c, v ? v : n, "target is required");
		return false;
	}
	if (v->s[0] != '/') {
		cerr(c, v, "target \"%s\" is not an absolute path",
		     shown(v->s));
		return false;
	}
	m->target = path_clean(c->a, v->s);
	if ((v = ymap_get(n, "source")) && c_str(c, v)) {
		if (m->type == M_MOUNT_BIND)
			m->source =
			    path_resolve(c->a, c->workdir, c->home, v->s);
		else if (m->type == M_MOUNT_VOLUME && !volume_name_ok(v->s)) {
			cerr(c, v, "invalid volume name \"%s\"", shown(v->s));
			return false;
		} else
			m->source = v->s;
	}
	if (m->type == M_MOUNT_BIND && !m->source) {
		cerr(c, n, "a bind mount needs a source");
		return false;
	}
	if ((v = ymap_get(n, "read_only")))
		c_bool(c, v, &m->read_only);
	if ((v = ymap_get(n, "consistency")))
		m->consistency = c_str(c, v);
	const struct ynode *sub;
	mount_sub(c, n, "bind", bind_keys, ARRAY_SIZE(bind_keys), &sub);
	if (sub) {
		if ((v = ymap_get(sub, "propagation")))
			m->bind_propagation = c_str(c, v);
		if ((v = ymap_get(sub, "create_host_path")))
			c_bool(c, v, &m->bind_create_host_path);
		if ((v = ymap_get(sub, "selinux")))
			m->bind_selinux = c_str(c, v);
	}
	mount_sub(c, n, "volume", vol_keys, ARRAY_SIZE(vol_keys), &sub);
	if (sub) {
		if ((v = ymap_get(sub, "nocopy")))
			c_bool(c, v, &m->volume_nocopy);
		if ((v = ymap_get(sub, "subpath")))
			m->volume_subpath = c_str(c, v);
	}
	mount_sub(c, n, "tmpfs", tmpfs_keys, ARRAY_SIZE(tmpfs_keys), &sub);
	if (sub) {
		if ((v = ymap_get(sub, "size"))) {
			size_t l = cpath_push(c, "tmpfs.size");
			c_bytes(c, v, false, &m->tmpfs_size);
			cpath_pop(c, l);
		}
		if ((v = ymap_get(sub, "mode"))) {
			size_t l = cpath_push(c, "tmpfs.mode");
			const char *s = v->kind == Y_SCALAR ? v->s : "";
			char *end;
			int base = s[0] == '0' ? 8 : 10;
			if (s[0] == '0' && s[1] == 'o')
				s += 2;
			long mode = strtol(s, &end, base);
			if (!*s || *end || mode < 0 || mode > 07777)
				cerr(c, v, "invalid mode \"%s\"", shown(v->s));
			else
				m->tmpfs_mode = mode;
			cpath_pop(c, l);
		}
	}
	mount_sub(c, n, "image", image_keys, ARRAY_SIZE(image_keys), &sub);
	return true;
}

static void svc_volumes(struct cctx *c, struct service *s,
			const struct ynode *n)
{
	if (!want_seq(c, n))
		return;
	EACH_ITEM(c, n, i, l)
	{
		const struct ynode *it = n->v[i];
		struct m_mount m = {0};
		bool ok = false;
		if (it->kind == Y_SCALAR)
			ok = mount_short(c, it, &m);
		else if (it->kind == Y_MAP)
			ok = mount_long(c, it, &m);
		else
			cerr(c, it,
			     "must be a volume string or a mapping, not %s",
			     ykind_name(it));
		if (ok)
			*PUSH(c->a, s->volumes, s->n_volumes) = m;
		cpath_pop(c, l);
	}
}

/* ---- networks, dependencies
 * ------------------------------------------------------ */

static void svc_networks(struct cctx *c, struct service *s,
			 const struct ynode *n)
{
	static const char *const keys[] = {
	    "aliases",	      "ipv4_address", "ipv6_address",
	    "link_local_ips", "mac_address",  "priority",
	    "gw_priority",    "driver_opts",  "interface_name"};
	if (n->kind == Y_SEQ) {
		char **names = c_strlist(c, n, false);
		for (size_t i = 0; names && names[i]; i++) {
			struct m_svc_net *sn =
			    PUSH(c->a, s->networks, s->n_networks);
			sn->name = names[i];
			sn->pos = n->v[i]->pos;
			sn->priority = M_UNSET;
		}
		return;
	}
	if (!c_map(c, n))
		return;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *v = n->v[i];
		struct m_svc_net *sn = PUSH(c->a, s->networks, s->n_networks);
		sn->name = n->k[i]->s;
		sn->pos = n->k[i]->pos;
		sn->priority = M_UNSET;
		if (v->kind == Y_NULL)
			continue;
		size_t l = cpath_push(c, "%s", sn->name);
		if (c_map(c, v)) {
			c_known_keys(c, v, keys, ARRAY_SIZE(keys));
			const struct ynode *f;
			if ((f = ymap_get(v, "aliases")))
				sn->aliases = c_strlist(c, f, false);
			if ((f = ymap_get(v, "ipv4_address"))) {
				int fam;
				sn->ipv4_address = c_str(c, f);
				if (sn->ipv4_address &&
				    (!ip_valid(sn->ipv4_address, &fam) ||
				     fam != AF_INET)) {
					cerr(c, f,
					     "invalid IPv4 address \"%s\"",
					     shown(sn->ipv4_address));
					sn->ipv4_address = NULL;
				}
			}
			if ((f = ymap_get(v, "ipv6_address"))) {
				int fam;
				sn->ipv6_address = c_str(c, f);
				if (sn->ipv6_address &&
				    (!ip_valid(sn->ipv6_address, &fam) ||
				     fam != AF_INET6)) {
					cerr(c, f,
					     "invalid IPv6 address \"%s\"",
					     shown(sn->ipv6_address));
					sn->ipv6_address = NULL;
				}
			}
			if ((f = ymap_get(v, "link_local_ips")))
				sn->link_local_ips = c_strlist(c, f, false);
			if ((f = ymap_get(v, "mac_address")))
				sn->mac_address = c_str(c, f);
			if ((f = ymap_get(v, "priority")))
				c_int(c, f, INT32_MIN, INT32_MAX,
				      &sn->priority);
		}
		cpath_pop(c, l);
	}
}

static void svc_depends_on(struct cctx *c, struct service *s,
			   const struct ynode *n)
{
	static const char *const keys[] = {"condition", "restart", "required"};
	static const char *const conds[] = {"service_started",
					    "service_healthy",
					    "service_completed_successfully"};
	if (n->kind == Y_SEQ) {
		char **names = c_strlist(c, n, false);
		for (size_t i = 0; names && names[i]; i++) {
			struct m_dep *d =
			    PUSH(c->a, s->depends_on, s->n_depends_on);
			d->service = names[i];
			d->pos = n->v[i]->pos;
			d->required = true;
		}
		return;
	}
	if (!c_map(c, n))
		return;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *v = n->v[i];
		struct m_dep *d = PUSH(c->a, s->depends_on, s->n_depends_on);
		d->service = n->k[i]->s;
		d->pos = n->k[i]->pos;
		d->required = true;
		if (v->kind == Y_NULL)
			continue;
		size_t l = cpath_push(c, "%s", d->service);
		if (c_map(c, v)) {
			c_known_keys(c, v, keys, ARRAY_SIZE(keys));
			const struct ynode *f;
			if ((f = ymap_get(v, "condition"))) {
				const char *cs = c_str(c, f);
				size_t k = 0;
				while (cs && k < ARRAY_SIZE(conds) &&
				       !streq(cs, conds[k]))
					k++;
				if (cs && k < ARRAY_SIZE(conds))
					d->condition = (enum m_dep_cond)k;
				else if (cs)
					cerr(c, f,
					     "invalid condition \"%s\" (want "
					     "service_started, service_healthy "
					     "or "
					     "service_completed_successfully)",
					     shown(cs));
			}
			if ((f = ymap_get(v, "restart")))
				c_bool(c, f, &d->restart);
			if ((f = ymap_get(v, "required")))
				c_bool(c, f, &d->required);
		}
		cpath_pop(c, l);
	}
}

/* ---- healthcheck, restart, deploy
 * -------------------------------------------- */

static void svc_healthcheck(struct cctx *c, struct service *s,
			    const struct ynode *n)
{
	static const char *const keys[] = {
	    "test",	    "interval",	      "timeout", "retries",
	    "start_period", "start_interval", "disable"};
	struct m_healthcheck *h = &s->healthcheck;
	h->present = true;
	h->pos = n->pos;
	if (!c_map(c, n))
		return;
	c_known_keys(c, n, keys, ARRAY_SIZE(keys));
	const struct ynode *v;
	if ((v = ymap_get(n, "test"))) {
		size_t l = cpath_push(c, "test");
		if (v->kind == Y_SCALAR) {
			h->test = arena_new_array(c->a, char *, 3);
			h->test[0] = "CMD-SHELL";
			h->test[1] = v->s;
		} else if ((h->test = c_strlist(c, v, false))) {
			const char *first = h->test[0];
			if (!first ||
			    (!streq(first, "NONE") && !streq(first, "CMD") &&
			     !streq(first, "CMD-SHELL")))
				cerr(c, v,
				     "a test list must start with \"CMD\", "
				     "\"CMD-SHELL\" or \"NONE\"");
			else if (streq(first, "NONE"))
				h->disable = true;
		}
		cpath_pop(c, l);
	}
	static const struct {
		const char *key;
		size_t off;
	} durs[] = {
	    {"interval", offsetof(struct m_healthcheck, interval_ns)},
	    {"timeout", offsetof(struct m_healthcheck, timeout_ns)},
	    {"start_period", offsetof(struct m_healthcheck, start_period_ns)},
	    {"start_interval",
	     offsetof(struct m_healthcheck, start_interval_ns)},
	};
	for (size_t i = 0; i < ARRAY_SIZE(durs); i++) {
		int64_t *dst = (int64_t *)((char *)h + durs[i].off);
		if (!(v = ymap_get(n, durs[i].key)))
			continue;
		size_t l = cpath_push(c, "%s", durs[i].key);
		c_duration(c, v, dst);
		cpath_pop(c, l);
	}
	if ((v = ymap_get(n, "retries"))) {
		size_t l = cpath_push(c, "retries");
		c_int(c, v, 0, INT32_MAX, &h->retries);
		cpath_pop(c, l);
	}
	if ((v = ymap_get(n, "disable"))) {
		bool b = false;
		size_t l = cpath_push(c, "disable");
		if (c_bool(c, v, &b) && b)
			h->disable = true;
		cpath_pop(c, l);
	}
}

static void svc_restart(struct cctx *c, struct service *s,
			const struct ynode *n)
{
	const char *v = c_str(c, n);
	struct m_restart_policy *r = &s->restart;
	if (!v)
		return;
	r->present = true;
	r->pos = n->pos;
	r->max_retries = M_UNSET;
	if (streq(v, "no") || streq(v, "false"))
		r->policy = M_RESTART_NO;
	else if (streq(v, "always"))
		r->policy = M_RESTART_ALWAYS;
	else if (streq(v, "unless-stopped"))
		r->policy = M_RESTART_UNLESS_STOPPED;
	else if (streq(v, "on-failure"))
		r->policy = M_RESTART_ON_FAILURE;
	else if (startswith(v, "on-failure:")) {
		char *end;
		const char *num = v + strlen("on-failure:");
		errno = 0;
		long long m = strtoll(num, &end, 10);
		if (!isdigit((unsigned char)*num) || *end || errno ||
		    m > INT32_MAX)
			goto bad;
		r->policy = M_RESTART_ON_FAILURE;
		r->max_retries = m;
	} else
		goto bad;
	return;
bad:
	r->present = false;
	cerr(c, n,
	     "invalid restart policy \"%s\" (want no, always, "
	     "on-failure[:N] or unless-stopped)",
	     shown(v));
}

static void resources(struct cctx *c, const struct ynode *n,
		      struct m_resources *r)
{
	static const char *const keys[] = {"cpus", "memory", "pids", "devices",
					   "generic_resources"};
	if (!c_map(c, n))
		return;
	c_known_keys(c, n, keys, ARRAY_SIZE(keys));
	const struct ynode *v;
	if ((v = ymap_get(n, "cpus"))) {
		size_t l = cpath_push(c, "cpus");
		c_double(c, v, &r->cpus);
		cpath_pop(c, l);
	}
	if ((v = ymap_get(n, "memory"))) {
		size_t l = cpath_push(c, "memory");
		c_bytes(c, v, false, &r->memory);
		cpath_pop(c, l);
	}
	if ((v = ymap_get(n, "pids"))) {
		size_t l = cpath_push(c, "pids");
		c_int(c, v, -1, INT64_MAX, &r->pids);
		cpath_pop(c, l);
	}
}

static void svc_deploy(struct cctx *c, struct service *s, const struct ynode *n)
{
	static const char *const keys[] = {
	    "mode",	     "replicas",	"labels",
	    "resources",     "restart_policy",	"placement",
	    "update_config", "rollback_config", "endpoint_mode",
	};
	static const char *const rp_keys[] = {"condition", "delay",
					      "max_attempts", "window"};
	struct m_deploy *d = &s->deploy;
	d->present = true;
	d->pos = n->pos;
	if (!c_map(c, n))
		return;
	c_known_keys(c, n, keys, ARRAY_SIZE(keys));
	static const char *const ignored[] = {"placement", "update_config",
					      "rollback_config",
					      "endpoint_mode"};
	c_ignored_keys(c, n, ignored, ARRAY_SIZE(ignored));
	const struct ynode *v;
	size_t l;
	if ((v = ymap_get(n, "mode")))
		d->mode = c_str(c, v);
	if ((v = ymap_get(n, "replicas"))) {
		l = cpath_push(c, "replicas");
		c_int(c, v, 0, ORCH_MAX_REPLICAS, &d->replicas);
		cpath_pop(c, l);
	}
	if ((v = ymap_get(n, "labels")))
		c_kvlist(c, v, KV_LABELS, &d->labels);
	const struct ynode *res = ymap_get(n, "resources");
	if (res && c_map(c, res)) {
		static const char *const rkeys[] = {"limits", "reservations"};
		l = cpath_push(c, "resources");
		c_known_keys(c, res, rkeys, ARRAY_SIZE(rkeys));
		if ((v = ymap_get(res, "limits"))) {
			size_t l2 = cpath_push(c, "limits");
			resources(c, v, &d->limits);
			cpath_pop(c, l2);
		}
		if ((v = ymap_get(res, "reservations"))) {
			size_t l2 = cpath_push(c, "reservations");
			resources(c, v, &d->reservations);
			cpath_pop(c, l2);
		}
		cpath_pop(c, l);
	}
	const struct ynode *rp = ymap_get(n, "restart_policy");
	if (rp) {
		l = cpath_push(c, "restart_policy");
		if (c_map(c, rp)) {
			c_known_keys(c, rp, rp_keys, ARRAY_SIZE(rp_keys));
			d->restart_policy.present = true;
			if ((v = ymap_get(rp, "condition"))) {
				const char *cs = c_str(c, v);
				if (cs && !streq(cs, "none") &&
				    !streq(cs, "on-failure") &&
				    !streq(cs, "any"))
					cerr(c, v,
					     "invalid condition \"%s\" (want "
					     "none, "
					     "on-failure or any)",
					     shown(cs));
				d->restart_policy.condition = (char *)cs;
			}
			if ((v = ymap_get(rp, "delay")))
				c_duration(c, v, &d->restart_policy.delay_ns);
			if ((v = ymap_get(rp, "window")))
				c_duration(c, v, &d->restart_policy.window_ns);
			if ((v = ymap_get(rp, "max_attempts")))
				c_int(c, v, 0, INT32_MAX,
				      &d->restart_policy.max_attempts);
		}
		cpath_pop(c, l);
	}
}

/* ---- build, logging, ulimits, configs/secrets
 * ---------------------------------- */

static void file_refs(struct cctx *c, const struct ynode *n,
		      struct m_file_ref **out, size_t *n_out);

static void svc_build(struct cctx *c, struct service *s, const struct ynode *n)
{
	static const char *const keys[] = {
	    "context",
	    "dockerfile",
	    "dockerfile_inline",
	    "args",
	    "ssh",
	    "labels",
	    "cache_from",
	    "cache_to",
	    "no_cache",
	    "additional_contexts",
	    "network",
	    "target",
	    "secrets",
	    "tags",
	    "ulimits",
	    "platforms",
	    "privileged",
	    "extra_hosts",
	    "isolation",
	    "shm_size",
	    "pull",
	    "entitlements",
	};
	/* Known to compose, without effect on orch's builder. */
	static const char *const ignored[] = {
	    "ssh",	 "cache_to",  "additional_contexts", "ulimits",
	    "platforms", "privileged", "extra_hosts",	     "isolation",
	    "no_cache",	 "pull",       "entitlements",
	};
	struct m_build *b = &s->build;
	b->present = true;
	b->pos = n->pos;
	const char *ctx = ".";
	if (n->kind == Y_SCALAR) {
		ctx = n->s;
	} else if (c_map(c, n)) {
		c_known_keys(c, n, keys, ARRAY_SIZE(keys));
		c_ignored_keys(c, n, ignored, ARRAY_SIZE(ignored));
		const struct ynode *v;
		if ((v = ymap_get(n, "context")) && c_str(c, v))
			ctx = v->s;
		if ((v = ymap_get(n, "dockerfile")))
			b->dockerfile = c_str(c, v);
		if ((v = ymap_get(n, "dockerfile_inline")))
			b->dockerfile_inline = c_str(c, v);
		if ((v = ymap_get(n, "args"))) {
			size_t l = cpath_push(c, "args");
			c_kvlist(c, v, KV_ENV, &b->args);
			cpath_pop(c, l);
		}
		if ((v = ymap_get(n, "labels")))
			c_kvlist(c, v, KV_LABELS, &b->labels);
		if ((v = ymap_get(n, "target")))
			b->target = c_str(c, v);
		if ((v = ymap_get(n, "network")))
			b->network = c_str(c, v);
		if ((v = ymap_get(n, "cache_from")))
			b->cache_from = c_strlist(c, v, false);
		if ((v = ymap_get(n, "tags")))
			b->tags = c_strlist(c, v, false);
		if ((v = ymap_get(n, "secrets"))) {
			size_t l = cpath_push(c, "secrets");
			file_refs(c, v, &b->secrets, &b->n_secrets);
			cpath_pop(c, l);
		}
		b->shm_size = M_UNSET;
		if ((v = ymap_get(n, "shm_size"))) {
			size_t l = cpath_push(c, "shm_size");
			c_bytes(c, v, false, &b->shm_size);
			cpath_pop(c, l);
		}
		if (b->dockerfile && b->dockerfile_inline)
			cerr(c, n,
			     "dockerfile and dockerfile_inline are mutually "
			     "exclusive");
	}
	if (strstr(ctx, "://") || startswith(ctx, "git@"))
		b->context = (char *)ctx;
	else
		b->context = path_resolve(c->a, c->workdir, c->home, ctx);
}

static void svc_logging(struct cctx *c, struct service *s,
			const struct ynode *n)
{
	static const char *const keys[] = {"driver", "options"};
	if (!c_map(c, n))
		return;
	c_known_keys(c, n, keys, ARRAY_SIZE(keys));
	const struct ynode *v;
	if ((v = ymap_get(n, "driver")))
		s->logging.driver = c_str(c, v);
	if ((v = ymap_get(n, "options")))
		c_kvlist(c, v, KV_OPTS, &s->logging.options);
}

static const char *const ulimit_names[] = {
    "core",    "cpu",	   "data",   "fsize",	   "locks",
    "memlock", "msgqueue", "nice",   "nofile",	   "nproc",
    "rss",     "rtprio",   "rttime", "sigpending", "stack",
};

static void svc_ulimits(struct cctx *c, struct service *s,
			const struct ynode *n)
{
	if (!c_map(c, n))
		return;
	s->ulimits = arena_new_array(c->a, struct m_ulimit, n->n ? n->n : 1);
	for (size_t i = 0; i < n->n; i++) {
		const char *name = n->k[i]->s;
		const struct ynode *v = n->v[i];
		size_t l = cpath_push(c, "%s", name);
		bool known = false;
		for (size_t j = 0; j < ARRAY_SIZE(ulimit_names); j++)
			known |= streq(name, ulimit_names[j]);
		struct m_ulimit u = {.name = (char *)name, .pos = n->k[i]->pos};
		bool ok = true;
		if (!known) {
			const char *near = did_you_mean(
			    name, ulimit_names, ARRAY_SIZE(ulimit_names));
			cerr(c, n->k[i], "unknown ulimit \"%s\"%s%s%s", name,
			     near ? " (did you mean \"" : "", near ? near : "",
			     near ? "\"?)" : "");
			ok = false;
		} else if (v->kind == Y_MAP) {
			static const char *const keys[] = {"soft", "hard"};
			c_known_keys(c, v, keys, ARRAY_SIZE(keys));
			const struct ynode *sv = ymap_get(v, "soft"),
					   *hv = ymap_get(v, "hard");
			if (!sv || !hv) {
				cerr(c, v, "needs both soft and hard");
				ok = false;
			} else {
				ok = c_int(c, sv, -1, INT64_MAX, &u.soft) &&
				     c_int(c, hv, -1, INT64_MAX, &u.hard);
				if (ok && u.hard >= 0 &&
				    (u.soft > u.hard || u.soft < 0)) {
					cerr(
					    c, v,
					    "soft limit %lld is above the hard "
					    "limit %lld",
					    (long long)u.soft,
					    (long long)u.hard);
					ok = false;
				}
			}
		} else {
			ok = c_int(c, v, -1, INT64_MAX, &u.soft);
			u.hard = u.soft;
		}
		if (ok)
			s->ulimits[s->n_ulimits++] = u;
		cpath_pop(c, l);
	}
}

static void file_refs(struct cctx *c, const struct ynode *n,
		      struct m_file_ref **out, size_t *n_out)
{
	static const char *const keys[] = {"source", "target", "uid", "gid",
					   "mode"};
	if (!want_seq(c, n))
		return;
	*out = arena_new_array(c->a, struct m_file_ref, n->n ? n->n : 1);
	EACH_ITEM(c, n, i, l)
	{
		const struct ynode *it = n->v[i];
		struct m_file_ref r = {.mode = M_UNSET, .pos = it->pos};
		const struct ynode *v;
		if (it->kind == Y_SCALAR) {
			r.source = it->s;
		} else if (c_map(c, it)) {
			c_known_keys(c, it, keys, ARRAY_SIZE(keys));
			if ((v = ymap_get(it, "source")))
				r.source = c_str(c, v);
			if ((v = ymap_get(it, "target")))
				r.target = c_str(c, v);
			if ((v = ymap_get(it, "uid")))
				r.uid = c_str(c, v);
			if ((v = ymap_get(it, "gid")))
				r.gid = c_str(c, v);
			if ((v = ymap_get(it, "mode"))) {
				const char *s = v->kind == Y_SCALAR ? v->s : "";
				char *end;
				long m = strtol(s, &end, s[0] == '0' ? 8 : 10);
				if (!*s || *end || m < 0 || m > 07777)
					cerr(c, v, "invalid mode \"%s\"",
					     shown(v->s));
				else
					r.mode = m;
			}
			if (!r.source)
				cerr(c, it, "source is required");
		}
		if (r.source)
			(*out)[(*n_out)++] = r;
		cpath_pop(c, l);
	}
}

static void svc_configs(struct cctx *c, struct service *s,
			const struct ynode *n)
{
	file_refs(c, n, &s->configs, &s->n_configs);
}

static void svc_secrets(struct cctx *c, struct service *s,
			const struct ynode *n)
{
	file_refs(c, n, &s->secrets, &s->n_secrets);
}

/* ---- small keys with a check of their own
 * ------------------------------------- */

static void svc_image(struct cctx *c, struct service *s, const struct ynode *n)
{
	s->image = c_str(c, n);
	if (s->image && (!*s->image || strpbrk(s->image, " \t\n"))) {
		cerr(c, n, "invalid image reference \"%s\"", shown(s->image));
		s->image = NULL;
	}
}

static void svc_scale(struct cctx *c, struct service *s, const struct ynode *n)
{
	c_int(c, n, 0, ORCH_MAX_REPLICAS, &s->scale);
}

/* post_start, pre_stop, pre_start: lists of {command, user,
 * privileged, working_dir, environment}. */
static void hooks_of(struct cctx *c, const struct ynode *n,
		     struct m_hook **out, size_t *count)
{
	static const char *const keys[] = {"command", "user", "privileged",
					   "working_dir", "environment"};
	if (n->kind == Y_NULL)
		return;
	if (n->kind != Y_SEQ) {
		cerr(c, n, "must be a list of hooks, not %s", ykind_name(n));
		return;
	}
	*out = arena_new_array(c->a, struct m_hook, n->n ? n->n : 1);
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *h = n->v[i];
		size_t l = cpath_push(c, "[%zu]", i);
		if (!c_map(c, h)) {
			cpath_pop(c, l);
			continue;
		}
		c_known_keys(c, h, keys, ARRAY_SIZE(keys));
		struct m_hook *k = &(*out)[*count];
		k->pos = h->pos;
		const struct ynode *v;
		if ((v = ymap_get(h, "command")))
			k->command = command_of(c, v);
		if (!k->command || !k->command[0]) {
			cerr(c, v ? v : h, "a hook needs a command");
			cpath_pop(c, l);
			continue;
		}
		if ((v = ymap_get(h, "user")))
			k->user = c_str(c, v);
		if ((v = ymap_get(h, "working_dir"))) {
			k->working_dir = c_str(c, v);
			if (k->working_dir && k->working_dir[0] != '/')
				cerr(c, v,
				     "working_dir must be an absolute path");
		}
		if ((v = ymap_get(h, "privileged")))
			c_bool(c, v, &k->privileged);
		if ((v = ymap_get(h, "environment")))
			c_kvlist(c, v, KV_ENV, &k->environment);
		(*count)++;
		cpath_pop(c, l);
	}
}

static const char *const watch_actions[] = {"sync", "rebuild",
					     "sync+restart"};

static void watch_rule(struct cctx *c, const struct ynode *it,
		       struct m_watch *w, bool *ok)
{
	static const char *const keys[] = {"path", "action", "target",
					   "ignore", "include", "initial_sync",
					   "exec"};
	*ok = false;
	if (!c_map(c, it))
		return;
	c_known_keys(c, it, keys, ARRAY_SIZE(keys));
	static const char *const unsupported[] = {"include", "initial_sync",
						  "exec"};
	c_ignored_keys(c, it, unsupported, ARRAY_SIZE(unsupported));
	w->pos = it->pos;
	const struct ynode *v = ymap_get(it, "action");
	const char *a = v ? c_str(c, v) : NULL;
	size_t k = 0;
	while (a && k < ARRAY_SIZE(watch_actions) && !streq(a, watch_actions[k]))
		k++;
	if (!v) {
		cerr(c, it, "a watch rule needs an action");
		return;
	}
	if (!a || k == ARRAY_SIZE(watch_actions)) {
		cerr(c, v,
		     "unknown watch action \"%s\" (want sync, rebuild or "
		     "sync+restart)",
		     a ? shown(a) : "");
		return;
	}
	w->action = (enum m_watch_action)k;
	v = ymap_get(it, "path");
	const char *p = v ? c_str(c, v) : NULL;
	if (!p || !*p) {
		cerr(c, v ? v : it, "a watch rule needs a path");
		return;
	}
	w->path = path_resolve(c->a, c->workdir, c->home, p);
	v = ymap_get(it, "target");
	if (v)
		w->target = c_str(c, v);
	if (w->action != M_WATCH_REBUILD &&
	    (!w->target || w->target[0] != '/')) {
		cerr(c, v ? v : it,
		     "a %s rule needs an absolute target in the container",
		     watch_actions[k]);
		return;
	}
	if ((v = ymap_get(it, "ignore")))
		w->ignore = c_strlist(c, v, false);
	*ok = true;
}

static void svc_develop(struct cctx *c, struct service *s,
			const struct ynode *n)
{
	static const char *const keys[] = {"watch"};
	if (!c_map(c, n))
		return;
	c_known_keys(c, n, keys, ARRAY_SIZE(keys));
	const struct ynode *w = ymap_get(n, "watch");
	if (!w || w->kind == Y_NULL)
		return;
	size_t l0 = cpath_push(c, "watch");
	if (w->kind != Y_SEQ) {
		cerr(c, w, "watch must be a list of rules, not %s",
		     ykind_name(w));
		cpath_pop(c, l0);
		return;
	}
	s->watch = arena_new_array(c->a, struct m_watch, w->n ? w->n : 1);
	for (size_t i = 0; i < w->n; i++) {
		size_t l = cpath_push(c, "[%zu]", i);
		bool ok;
		watch_rule(c, w->v[i], &s->watch[s->n_watch], &ok);
		s->n_watch += ok;
		cpath_pop(c, l);
	}
	cpath_pop(c, l0);
}

static void svc_post_start(struct cctx *c, struct service *s,
			   const struct ynode *n)
{
	hooks_of(c, n, &s->post_start, &s->n_post_start);
}

static void svc_pre_stop(struct cctx *c, struct service *s,
			 const struct ynode *n)
{
	hooks_of(c, n, &s->pre_stop, &s->n_pre_stop);
}

static void svc_pre_start(struct cctx *c, struct service *s,
			  const struct ynode *n)
{
	hooks_of(c, n, &s->pre_start, &s->n_pre_start);
}

static void svc_command(struct cctx *c, struct service *s,
			const struct ynode *n)
{
	s->command = command_of(c, n);
}

static void svc_entrypoint(struct cctx *c, struct service *s,
			   const struct ynode *n)
{
	s->entrypoint = command_of(c, n);
}

static void svc_network_mode(struct cctx *c, struct service *s,
			     const struct ynode *n)
{
	const char *v = c_str(c, n);
	if (!v)
		return;
	if (!streq(v, "none") && !streq(v, "host") && !streq(v, "bridge") &&
	    !(startswith(v, "service:") && v[8]) &&
	    !(startswith(v, "container:") && v[10])) {
		cerr(c, n,
		     "invalid network_mode \"%s\" (want none, host, bridge, "
		     "service:NAME or container:NAME)",
		     shown(v));
		return;
	}
	s->network_mode = (char *)v;
}

static void svc_stop_signal(struct cctx *c, struct service *s,
			    const struct ynode *n)
{
	const char *v = c_str(c, n);
	if (v && parse_signal(v) < 0) {
		cerr(c, n, "unknown signal \"%s\"", shown(v));
		return;
	}
	s->stop_signal = (char *)v;
}

static void svc_container_name(struct cctx *c, struct service *s,
			       const struct ynode *n)
{
	const char *v = c_str(c, n);
	if (v && !volume_name_ok(v)) {
		cerr(c, n,
		     "invalid container name \"%s\" (want "
		     "[a-zA-Z0-9][a-zA-Z0-9_.-]*)",
		     shown(v));
		return;
	}
	s->container_name = (char *)v;
}

static void svc_devices(struct cctx *c, struct service *s,
			const struct ynode *n)
{
	if (!want_seq(c, n))
		return;
	s->devices = arena_new_array(c->a, char *, n->n + 1);
	size_t o = 0;
	EACH_ITEM(c, n, i, l)
	{
		const struct ynode *it = n->v[i];
		if (it->kind == Y_SCALAR) {
			s->devices[o++] = it->s;
		} else if (c_map(c, it)) {
			static const char *const keys[] = {"source", "target",
							   "permissions"};
			c_known_keys(c, it, keys, ARRAY_SIZE(keys));
			const struct ynode *src = ymap_get(it, "source"),
					   *dst = ymap_get(it, "target"),
					   *perm = ymap_get(it, "permissions");
			if (!src || src->kind != Y_SCALAR)
				cerr(c, it, "source is required");
			else
				s->devices[o++] = arena_printf(
				    c->a, "%s:%s:%s", src->s,
				    dst && dst->kind == Y_SCALAR ? dst->s
								 : src->s,
				    perm && perm->kind == Y_SCALAR ? perm->s
								   : "rwm");
		}
		cpath_pop(c, l);
	}
}

/* ---- the key table
 * ----------------------------------------------------------- */

enum kkind {
	K_FN,
	K_STR,
	K_LIST,
	K_LIST_OR_STR,
	K_BOOL,
	K_BYTES,
	K_BYTES_M1,
	K_INT,
	K_INT_M1,
	K_DOUBLE,
	K_DURATION,
	K_LABELS,
	K_OPTS,
	K_HOSTS,
	K_LATER,
	K_IGNORED,
};

struct svc_key {
	const char *name;
	enum kkind kind;
	size_t off;
	void (*fn)(struct cctx *c, struct service *s, const struct ynode *n);
};

#define F(name, fn)                                                            \
	{                                                                      \
#name, K_FN, 0, fn                                             \
	}
#define T(name, kind)                                                          \
	{                                                                      \
#name, kind, offsetof(struct service, name), NULL              \
	}
#define IGN(name)                                                              \
	{                                                                      \
#name, K_IGNORED, 0, NULL                                      \
	}

/* A provider service is run by a plugin of docker compose's (a model
 * runner, a cloud service), not as a container: it cannot run here, which
 * is said once, here (validate_project does not add that it has no
 * image). */
static void svc_provider(struct cctx *c, struct service *s,
			 const struct ynode *n)
{
	(void)s;
	cerr(c, ymap_key(n, "type") ? ymap_get(n, "type") : n,
	     "provider services are not supported: orch runs containers only");
}

static const struct svc_key svc_keys[] = {
    T(annotations, K_LABELS),
    IGN(attach),
    IGN(blkio_config),
    F(build, svc_build),
    T(cap_add, K_LIST),
    T(cap_drop, K_LIST),
    T(cgroup, K_STR),
    T(cgroup_parent, K_STR),
    F(command, svc_command),
    F(configs, svc_configs),
    F(container_name, svc_container_name),
    IGN(cpu_count),
    IGN(cpu_percent),
    IGN(cpu_period),
    IGN(cpu_quota),
    IGN(cpu_rt_period),
    IGN(cpu_rt_runtime),
    T(cpu_shares, K_INT),
    T(cpus, K_DOUBLE),
    T(cpuset, K_STR),
    IGN(credential_spec),
    F(depends_on, svc_depends_on),
    F(deploy, svc_deploy),
    F(develop, svc_develop),
    T(device_cgroup_rules, K_LIST),
    F(devices, svc_devices),
    T(dns, K_LIST_OR_STR),
    T(dns_opt, K_LIST),
    T(dns_search, K_LIST_OR_STR),
    T(domainname, K_STR),
    F(entrypoint, svc_entrypoint),
    {"env_file", K_LATER, 0, NULL},
    {"environment", K_LATER, 0, NULL},
    F(expose, svc_expose),
    {"extends", K_LATER, 0, NULL},
    T(external_links, K_LIST),
    T(extra_hosts, K_HOSTS),
    IGN(gpus),
    T(group_add, K_LIST),
    F(healthcheck, svc_healthcheck),
    T(hostname, K_STR),
    F(image, svc_image),
    T(init, K_BOOL),
    T(ipc, K_STR),
    IGN(isolation),
    {"label_file", K_LATER, 0, NULL},
    T(labels, K_LABELS),
    T(links, K_LIST),
    F(logging, svc_logging),
    T(mac_address, K_STR),
    T(mem_limit, K_BYTES),
    T(mem_reservation, K_BYTES),
    IGN(mem_swappiness),
    T(memswap_limit, K_BYTES_M1),
    F(network_mode, svc_network_mode),
    F(networks, svc_networks),
    IGN(oom_kill_disable),
    T(oom_score_adj, K_INT),
    T(pid, K_STR),
    T(pids_limit, K_INT_M1),
    T(platform, K_STR),
    F(ports, svc_ports),
    F(post_start, svc_post_start),
    F(pre_start, svc_pre_start),
    F(pre_stop, svc_pre_stop),
    T(privileged, K_BOOL),
    T(profiles, K_LIST),
    F(provider, svc_provider),
    T(pull_policy, K_STR),
    T(read_only, K_BOOL),
    F(restart, svc_restart),
    IGN(runtime),
    F(scale, svc_scale),
    F(secrets, svc_secrets),
    T(security_opt, K_LIST),
    T(shm_size, K_BYTES),
    T(stdin_open, K_BOOL),
    {"stop_grace_period", K_DURATION,
     offsetof(struct service, stop_grace_period_ns), NULL},
    F(stop_signal, svc_stop_signal),
    IGN(storage_opt),
    T(sysctls, K_OPTS),
    T(tmpfs, K_LIST_OR_STR),
    T(tty, K_BOOL),
    F(ulimits, svc_ulimits),
    T(user, K_STR),
    T(userns_mode, K_STR),
    T(uts, K_STR),
    F(volumes, svc_volumes),
    T(volumes_from, K_LIST),
    T(working_dir, K_STR),
};

static const char *key_names[ARRAY_SIZE(svc_keys)];

static const struct svc_key *svc_key_find(const char *name)
{
	size_t lo = 0, hi = ARRAY_SIZE(svc_keys);
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(name, svc_keys[mid].name);
		if (!r)
			return &svc_keys[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static void apply_key(struct cctx *c, struct service *s,
		      const struct svc_key *k, const struct ynode *v)
{
	void *dst = (char *)s + k->off;
	switch (k->kind) {
	case K_FN:
		k->fn(c, s, v);
		break;
	case K_STR:
		*(char **)dst = c_str(c, v);
		break;
	case K_LIST:
		*(char ***)dst = c_strlist(c, v, false);
		break;
	case K_LIST_OR_STR:
		*(char ***)dst = c_strlist(c, v, true);
		break;
	case K_BOOL:
		c_bool(c, v, dst);
		break;
	case K_BYTES:
		c_bytes(c, v, false, dst);
		break;
	case K_BYTES_M1:
		c_bytes(c, v, true, dst);
		break;
	case K_INT:
		c_int(c, v, INT32_MIN, INT64_MAX, dst);
		break;
	case K_INT_M1:
		c_int(c, v, -1, INT64_MAX, dst);
		break;
	case K_DOUBLE:
		c_double(c, v, dst);
		break;
	case K_DURATION:
		c_duration(c, v, dst);
		break;
	case K_LABELS:
		c_kvlist(c, v, KV_LABELS, dst);
		break;
	case K_OPTS:
		c_kvlist(c, v, KV_OPTS, dst);
		break;
	case K_HOSTS:
		c_kvlist(c, v, KV_HOSTS, dst);
		break;
	case K_LATER:
	case K_IGNORED:
		break;
	}
}

/* env_file entries in order, then environment: over them. */
static void service_environment(struct cctx *c, struct service *s,
				const struct ynode *n)
{
	const struct ynode *ef = ymap_get(n, "env_file");
	if (ef && ef->kind != Y_NULL) {
		size_t l0 = cpath_push(c, "env_file");
		const struct ynode *one[1] = {ef};
		const struct ynode *const *items =
		    ef->kind == Y_SEQ ? (const struct ynode *const *)ef->v
				      : one;
		size_t count = ef->kind == Y_SEQ ? ef->n : 1;
		s->env_files =
		    arena_new_array(c->a, struct m_env_file, count ? count : 1);
		for (size_t i = 0; i < count; i++) {
			const struct ynode *it = items[i];
			const struct ynode *pathn = it;
			bool required = true;
			const char *format = NULL;
			if (it->kind == Y_MAP) {
				static const char *const keys[] = {
				    "path", "required", "format"};
				c_known_keys(c, it, keys, ARRAY_SIZE(keys));
				pathn = ymap_get(it, "path");
				const struct ynode *r =
				    ymap_get(it, "required");
				if (r)
					c_bool(c, r, &required);
				const struct ynode *f = ymap_get(it, "format");
				if (f)
					format = c_str(c, f);
				if (!pathn) {
					cerr(c, it, "path is required");
					continue;
				}
			}
			const char *path = c_str(c, pathn);
			if (!path)
				continue;
			char *abs =
			    path_resolve(c->a, c->workdir, c->home, path);
			s->env_files[s->n_env_files++] = (struct m_env_file){
			    abs, required,
			    format ? arena_strdup(c->a, format) : NULL};
			_cleanup_free_ char *text = NULL;
			struct orch_err e = {0};
			if (read_regular_file(abs, &text, NULL, &e) < 0) {
				if (required && c->defer_env_files &&
				    !s->env_file_error) {
					s->env_file_error = arena_printf(
					    c->a, "%s: env file: %s",
					    c->path.buf, e.msg);
					s->env_file_error_pos = pathn->pos;
				} else if (required || e.code != ENOENT) {
					cerr(c, pathn, "env file: %s", e.msg);
				}
				continue;
			}
			envfile_parse(c->a, abs, text, c->env, &s->environment,
				      c->d);
		}
		cpath_pop(c, l0);
	}
	const struct ynode *env = ymap_get(n, "environment");
	if (env) {
		size_t l = cpath_push(c, "environment");
		c_kvlist(c, env, KV_ENV, &s->environment);
		cpath_pop(c, l);
	}
}

/* label_file: files of KEY=VALUE lines (an env file's syntax), under what
 * labels says. */
static void service_label_files(struct cctx *c, struct service *s,
				const struct ynode *n)
{
	const struct ynode *lf = ymap_get(n, "label_file");
	if (!lf || lf->kind == Y_NULL)
		return;
	size_t l0 = cpath_push(c, "label_file");
	const struct ynode *one[1] = {lf};
	const struct ynode *const *items =
	    lf->kind == Y_SEQ ? (const struct ynode *const *)lf->v : one;
	size_t count = lf->kind == Y_SEQ ? lf->n : 1;
	struct m_kvlist found = {0};
	for (size_t i = 0; i < count; i++) {
		const char *path = c_str(c, items[i]);
		if (!path)
			continue;
		char *abs = path_resolve(c->a, c->workdir, c->home, path);
		_cleanup_free_ char *text = NULL;
		struct orch_err e = {0};
		if (read_regular_file(abs, &text, NULL, &e) < 0) {
			cerr(c, items[i], "label file: %s", e.msg);
			continue;
		}
		envfile_parse(c->a, abs, text, c->env, &found, c->d);
	}
	for (size_t i = 0; i < found.n; i++)
		if (!kv_get(&s->labels, found.v[i].key))
			kv_set(c->a, &s->labels, found.v[i].key,
			       found.v[i].value, &found.v[i].pos);
	cpath_pop(c, l0);
}

static int svcnet_cmp(const void *a, const void *b)
{
	return strcmp(((const struct m_svc_net *)a)->name,
		      ((const struct m_svc_net *)b)->name);
}

static int dep_cmp(const void *a, const void *b)
{
	return strcmp(((const struct m_dep *)a)->service,
		      ((const struct m_dep *)b)->service);
}

void convert_service(struct cctx *c, const struct ynode *name,
		     const struct ynode *n, struct service *s)
{
	if (!key_names[0])
		for (size_t i = 0; i < ARRAY_SIZE(svc_keys); i++)
			key_names[i] = svc_keys[i].name;
	s->name = name->s;
	s->pos = name->pos;
	s->scale = s->mem_limit = s->memswap_limit = s->mem_reservation =
	    s->shm_size = s->cpu_shares = s->pids_limit = s->oom_score_adj =
		s->stop_grace_period_ns = M_UNSET;
	s->cpus = -1;
	s->healthcheck.interval_ns = s->healthcheck.timeout_ns =
	    s->healthcheck.start_period_ns = s->healthcheck.start_interval_ns =
		s->healthcheck.retries = M_UNSET;
	s->deploy.replicas = M_UNSET;
	s->deploy.limits = s->deploy.reservations =
	    (struct m_resources){-1, M_UNSET, M_UNSET};
	s->deploy.restart_policy.delay_ns = s->deploy.restart_policy.window_ns =
	    s->deploy.restart_policy.max_attempts = M_UNSET;
	s->restart.max_retries = M_UNSET;
	s->build.shm_size = M_UNSET;
	if (n->kind != Y_MAP) {
		cerr(c, n->kind == Y_NULL ? name : n,
		     "a service must be a mapping, not %s", ykind_name(n));
		return;
	}
	s->keys = arena_new_array(c->a, struct m_keypos, n->n ? n->n : 1);
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *k = n->k[i];
		s->keys[s->n_keys++] = (struct m_keypos){k->s, k->pos};
		if (startswith(k->s, "x-"))
			continue;
		const struct svc_key *key = svc_key_find(k->s);
		if (!key) {
			const char *near = did_you_mean(k->s, key_names,
							ARRAY_SIZE(key_names));
			if (near)
				cerr(
				    c, k,
				    "unknown key \"%s\" (did you mean \"%s\"?)",
				    k->s, near);
			else
				cerr(c, k, "unknown key \"%s\"", k->s);
			continue;
		}
		if (key->kind == K_IGNORED) {
			diag_add(c->d, M_WARNING, &k->pos,
				 "%s: %s is not supported and is ignored",
				 c->path.buf, k->s);
			continue;
		}
		size_t l = cpath_push(c, "%s", k->s);
		apply_key(c, s, key, n->v[i]);
		cpath_pop(c, l);
	}
	service_environment(c, s, n);
	service_label_files(c, s, n);
	if (s->network_mode && s->n_networks) {
		const struct ynode *k = ymap_key(n, "networks");
		cerr(c, k, "network_mode and networks cannot be used together");
	}
	if (!s->network_mode && !s->n_networks) {
		s->networks = arena_new_array(c->a, struct m_svc_net, 1);
		s->networks[0] = (struct m_svc_net){
		    .name = "default", .pos = s->pos, .priority = M_UNSET};
		s->n_networks = 1;
	}
	if (s->n_networks > 1)
		qsort(s->networks, s->n_networks, sizeof(*s->networks),
		      svcnet_cmp);
	if (s->n_depends_on > 1)
		qsort(s->depends_on, s->n_depends_on, sizeof(*s->depends_on),
		      dep_cmp);
}
