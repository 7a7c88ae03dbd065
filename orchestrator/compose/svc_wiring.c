/* Service keys that wire a service to the rest: ports and expose,
 * volumes (short and long syntax), networks and depends_on. */
#include "orchestrator/compose/compose_impl.h"

#include <ctype.h>
#include <stddef.h>
#include <sys/socket.h>

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
			     shown_value(v->s));
			cpath_pop(c, l);
			return false;
		}
	}
	if ((v = ymap_get(n, "host_ip"))) {
		p->host_ip = c_str(c, v);
		if (p->host_ip && !ip_valid(p->host_ip, NULL)) {
			cerr(c, v, "invalid host_ip \"%s\"",
			     shown_value(p->host_ip));
			return false;
		}
	}
	if ((v = ymap_get(n, "protocol"))) {
		const char *s = c_str(c, v);
		if (s && proto_parse(s, &p->protocol) < 0) {
			cerr(c, v,
			     "unknown protocol \"%s\" (want tcp, udp or sctp)",
			     shown_value(s));
			return false;
		}
	}
	if ((v = ymap_get(n, "mode"))) {
		const char *s = c_str(c, v);
		if (s && !streq(s, "host") && !streq(s, "ingress")) {
			cerr(c, v, "invalid mode \"%s\" (want host or ingress)",
			     shown_value(s));
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

void svc_ports(struct cctx *c, struct service *s, const struct ynode *n)
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
				     shown_value(it->s), why);
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

void svc_expose(struct cctx *c, struct service *s, const struct ynode *n)
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
			cerr_item(c, n, i,
				  "invalid port \"%s\" (want e.g. 80, "
				  "8000-8010 or 53/udp)",
				  shown_value(v[i]));
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

bool volume_name_ok(const char *s)
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
		     shown_value(n->s));
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
		     shown_value(n->s), shown_value(dst));
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
			     shown_value(src), shown_value(n->s));
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
			     shown_value(n->s), shown_value(tok));
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
		     type ? shown_value(type) : "");
		return false;
	}
	m->type = (enum m_mount_type)t;
	if (!(v = ymap_get(n, "target")) || !c_str(c, v)) {
		cerr(c, v ? v : n, "target is required");
		return false;
	}
	if (v->s[0] != '/') {
		cerr(c, v, "target \"%s\" is not an absolute path",
		     shown_value(v->s));
		return false;
	}
	m->target = path_clean(c->a, v->s);
	if ((v = ymap_get(n, "source")) && c_str(c, v)) {
		if (m->type == M_MOUNT_BIND)
			m->source =
			    path_resolve(c->a, c->workdir, c->home, v->s);
		else if (m->type == M_MOUNT_VOLUME && !volume_name_ok(v->s)) {
			cerr(c, v, "invalid volume name \"%s\"",
			     shown_value(v->s));
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
				cerr(c, v, "invalid mode \"%s\"",
				     shown_value(v->s));
			else
				m->tmpfs_mode = mode;
			cpath_pop(c, l);
		}
	}
	mount_sub(c, n, "image", image_keys, ARRAY_SIZE(image_keys), &sub);
	return true;
}

void svc_volumes(struct cctx *c, struct service *s, const struct ynode *n)
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

void svc_networks(struct cctx *c, struct service *s, const struct ynode *n)
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
					     shown_value(sn->ipv4_address));
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
					     shown_value(sn->ipv6_address));
					sn->ipv6_address = NULL;
				}
			}
			if ((f = ymap_get(v, "link_local_ips")))
				sn->link_local_ips = c_strlist(c, f, false);
			if ((f = ymap_get(v, "mac_address")))
				sn->mac_address = c_mac(c, f);
			if ((f = ymap_get(v, "priority")))
				c_int(c, f, INT32_MIN, INT32_MAX,
				      &sn->priority);
		}
		cpath_pop(c, l);
	}
}

void svc_depends_on(struct cctx *c, struct service *s, const struct ynode *n)
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
					     shown_value(cs));
			}
			if ((f = ymap_get(v, "restart")))
				c_bool(c, f, &d->restart);
			if ((f = ymap_get(v, "required")))
				c_bool(c, f, &d->required);
		}
		cpath_pop(c, l);
	}
}
