/* Consistency checks that need the whole project but no machine state:
 * references between services, networks, volumes, configs and secrets;
 * dependency cycles; published ports used twice; subnets overlapping;
 * static addresses outside their network's subnets. */
#include "orchestrator/compose/compose_impl.h"

#include <arpa/inet.h>
#include <limits.h>

static void verr(struct orch_diag *d, const struct m_pos *pos, const char *fmt,
		 ...) __attribute__((format(printf, 3, 4)));
static void verr(struct orch_diag *d, const struct m_pos *pos, const char *fmt,
		 ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	diag_add(d, M_ERROR, pos, "%s", s);
}

static bool disabled(const struct project *p, const char *name)
{
	for (size_t i = 0; i < p->n_disabled; i++)
		if (streq(p->disabled[i].name, name))
			return true;
	return false;
}

/* A reference to another service: defined and enabled. */
static void check_service_ref(const struct project *p, const struct service *s,
			      const char *what, const char *name,
			      const struct m_pos *pos, struct orch_diag *d)
{
	if (project_service(p, name))
		return;
	if (disabled(p, name))
		verr(d, pos,
		     "service \"%s\" %s service \"%s\", which is not "
		     "enabled by the active profiles",
		     s->name, what, name);
	else
		verr(d, pos, "service \"%s\" %s undefined service \"%s\"",
		     s->name, what, name);
}

/* Whether one of the first n diagnostics (those of reading the files:
 * include, extends) is an error inside service s, from its key to the
 * next service's in the same file.  A failed extends leaves its service
 * without an image; that error, not its consequence, is the one to say. */
static bool read_error_in(const struct project *p, const struct service *s,
			     const struct orch_diag *d, size_t n)
{
	if (!s->pos.file)
		return false;
	int end = INT_MAX;
	for (size_t i = 0; i < p->n_services; i++) {
		const struct m_pos *o = &p->services[i].pos;
		if (o->file && streq(o->file, s->pos.file) &&
		    o->line > s->pos.line && o->line < end)
			end = o->line;
	}
	for (size_t i = 0; i < n; i++) {
		const struct m_diag *m = &d->v[i];
		if (m->severity == M_ERROR && m->file &&
		    streq(m->file, s->pos.file) && m->line >= s->pos.line &&
		    m->line < end)
			return true;
	}
	return false;
}

static void check_refs(const struct project *p, const struct service *s,
		       struct orch_diag *d, size_t read_diags)
{
	for (size_t i = 0; i < s->n_depends_on; i++) {
		const struct m_dep *dep = &s->depends_on[i];
		if (!dep->required && !project_service(p, dep->service))
			continue;
		if (streq(dep->service, s->name)) {
			verr(d, &dep->pos, "service \"%s\" depends on itself",
			     s->name);
			continue;
		}
		check_service_ref(p, s, "depends on", dep->service, &dep->pos,
				  d);
	}
	for (size_t i = 0; s->links && s->links[i]; i++) {
		_cleanup_free_ char *name =
		    xstrndup(s->links[i], strcspn(s->links[i], ":"));
		check_service_ref(p, s, "links to", name,
				  service_key_pos(s, "links"), d);
	}
	for (size_t i = 0; s->volumes_from && s->volumes_from[i]; i++) {
		const char *v = s->volumes_from[i];
		if (startswith(v, "container:"))
			continue;
		_cleanup_free_ char *name = xstrndup(v, strcspn(v, ":"));
		check_service_ref(p, s, "takes volumes from", name,
				  service_key_pos(s, "volumes_from"), d);
	}
	if (s->network_mode && startswith(s->network_mode, "service:"))
		check_service_ref(p, s, "uses the network of",
				  s->network_mode + strlen("service:"),
				  service_key_pos(s, "network_mode"), d);
	if (s->pid && startswith(s->pid, "service:"))
		check_service_ref(p, s, "shares the PID namespace of",
				  s->pid + strlen("service:"),
				  service_key_pos(s, "pid"), d);
	if (s->ipc && startswith(s->ipc, "service:"))
		check_service_ref(p, s, "shares the IPC namespace of",
				  s->ipc + strlen("service:"),
				  service_key_pos(s, "ipc"), d);
	for (size_t i = 0; i < s->n_networks; i++) {
		const struct m_svc_net *n = &s->networks[i];
		if (!project_network(p, n->name))
			verr(d, &n->pos,
			     "service \"%s\" uses undefined network "
			     "\"%s\"",
			     s->name, n->name);
	}
	for (size_t i = 0; i < s->n_volumes; i++) {
		const struct m_mount *m = &s->volumes[i];
		if (m->type == M_MOUNT_VOLUME && m->source &&
		    !project_volume(p, m->source))
			verr(d, &m->pos,
			     "service \"%s\" uses undefined volume "
			     "\"%s\"",
			     s->name, m->source);
	}
	for (size_t i = 0; i < s->n_configs; i++) {
		const struct m_file_ref *r = &s->configs[i];
		bool found = false;
		for (size_t j = 0; j < p->n_configs && !found; j++)
			found = streq(p->configs[j].key, r->source);
		if (!found)
			verr(d, &r->pos,
			     "service \"%s\" uses undefined config "
			     "\"%s\"",
			     s->name, r->source);
	}
	for (size_t i = 0; i < s->n_secrets; i++) {
		const struct m_file_ref *r = &s->secrets[i];
		bool found = false;
		for (size_t j = 0; j < p->n_secrets && !found; j++)
			found = streq(p->secrets[j].key, r->source);
		if (!found)
			verr(d, &r->pos,
			     "service \"%s\" uses undefined secret "
			     "\"%s\"",
			     s->name, r->source);
	}
	/* Not when the service's extends failed, or it is a provider
	 * service (refused): that is the cause to say. */
	bool provider = false;
	for (size_t i = 0; i < s->n_keys; i++)
		provider |= streq(s->keys[i].key, "provider");
	if (!s->image && !s->build.present && !provider &&
	    !read_error_in(p, s, d, read_diags))
		verr(d, &s->pos,
		     "service \"%s\" has neither an image nor a "
		     "build context specified",
		     s->name);
}

/* ---- dependency cycles ------------------------------------------------------
 */

enum { WHITE, GREY, BLACK };

/* Iterative DFS so that deep dependency chains cannot exhaust the stack. */
static void find_cycles(const struct project *p, struct orch_diag *d)
{
	size_t n = p->n_services;
	unsigned char *color = xcalloc(n + 1, 1);
	size_t *stack = xmalloc((n + 1) * sizeof(*stack));
	size_t *edge = xmalloc((n + 1) * sizeof(*edge));
	for (size_t root = 0; root < n; root++) {
		if (color[root] != WHITE)
			continue;
		size_t top = 0;
		stack[0] = root;
		edge[0] = 0;
		color[root] = GREY;
		while (top != SIZE_MAX) {
			const struct service *s = &p->services[stack[top]];
			if (edge[top] == s->n_depends_on) {
				color[stack[top]] = BLACK;
				top--;
				continue;
			}
			const struct m_dep *dep = &s->depends_on[edge[top]++];
			const struct service *t =
			    project_service(p, dep->service);
			if (!t || t == s)
				continue;
			size_t ti = (size_t)(t - p->services);
			if (color[ti] == WHITE) {
				color[ti] = GREY;
				stack[++top] = ti;
				edge[top] = 0;
			} else if (color[ti] == GREY) {
				struct strbuf sb;
				sb_init(&sb);
				size_t from = 0;
				while (stack[from] != ti)
					from++;
				for (size_t k = from; k <= top; k++)
					sb_printf(&sb, "%s -> ",
						  p->services[stack[k]].name);
				sb_adds(&sb, t->name);
				verr(d, &dep->pos, "dependency cycle: %s",
				     sb.buf);
				sb_free(&sb);
			}
		}
	}
	free(color);
	free(stack);
	free(edge);
}

/* ---- published ports
 * --------------------------------------------------------- */

struct pub {
	const struct service *s;
	const struct m_port *port;
};

static int pub_cmp(const void *a, const void *b)
{
	const struct m_port *x = ((const struct pub *)a)->port,
			    *y = ((const struct pub *)b)->port;
	if (x->protocol != y->protocol)
		return (int)x->protocol - (int)y->protocol;
	if (x->published != y->published)
		return (int)x->published - (int)y->published;
	return x->pos.line != y->pos.line ? x->pos.line - y->pos.line
					  : x->pos.col - y->pos.col;
}

static bool ip_clash(const char *a, const char *b)
{
	bool any_a = !a || streq(a, "0.0.0.0") || streq(a, "::"),
	     any_b = !b || streq(b, "0.0.0.0") || streq(b, "::");
	return any_a || any_b || streq(a, b);
}

/* Fixed host ports (not ranges: a range picks any free port) may be
 * published once per address and protocol. */
static void check_ports(const struct project *p, struct orch_diag *d)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n_services; i++)
		n += p->services[i].n_ports;
	struct pub *v = xmalloc((n ? n : 1) * sizeof(*v));
	n = 0;
	for (size_t i = 0; i < p->n_services; i++) {
		const struct service *s = &p->services[i];
		for (size_t j = 0; j < s->n_ports; j++) {
			const struct m_port *pt = &s->ports[j];
			if (pt->published && pt->published == pt->published_end)
				v[n++] = (struct pub){s, pt};
			if (pt->published &&
			    pt->published == pt->published_end &&
			    service_replicas(s) > 1)
				verr(d, &pt->pos,
				     "service \"%s\" has %lld replicas "
				     "but publishes fixed port %u/%s",
				     s->name, (long long)service_replicas(s),
				     pt->published, proto_name(pt->protocol));
		}
	}
	qsort(v, n, sizeof(*v), pub_cmp);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i; j-- > 0;) {
			if (v[j].port->published != v[i].port->published ||
			    v[j].port->protocol != v[i].port->protocol)
				break;
			if (!ip_clash(v[j].port->host_ip, v[i].port->host_ip))
				continue;
			verr(d, &v[i].port->pos,
			     "published port %u/%s is already "
			     "used by service \"%s\" (%s:%d)",
			     v[i].port->published,
			     proto_name(v[i].port->protocol), v[j].s->name,
			     v[j].port->pos.file ? v[j].port->pos.file : "-",
			     v[j].port->pos.line);
			break;
		}
	}
	free(v);
}

/* ---- subnets and static addresses
 * -------------------------------------------- */

struct subnet {
	const struct network *net;
	const struct m_ipam_pool *pool;
	int family, prefix;
	unsigned char addr[16];
};

static void check_subnets(const struct project *p, struct orch_diag *d)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n_networks; i++)
		n += p->networks[i].n_ipam;
	struct subnet *v = xcalloc(n ? n : 1, sizeof(*v));
	n = 0;
	for (size_t i = 0; i < p->n_networks; i++) {
		const struct network *net = &p->networks[i];
		for (size_t j = 0; j < net->n_ipam; j++) {
			const struct m_ipam_pool *pool = &net->ipam[j];
			struct subnet *sn = &v[n];
			if (!pool->subnet ||
			    cidr_parse(pool->subnet, &sn->family, sn->addr,
				       &sn->prefix) < 0)
				continue;
			sn->net = net;
			sn->pool = pool;
			unsigned char gw[16];
			if (pool->gateway &&
			    (inet_pton(sn->family, pool->gateway, gw) != 1 ||
			     !prefix_match(gw, sn->addr, sn->prefix)))
				verr(d, &pool->pos,
				     "gateway %s of network \"%s\" is "
				     "outside its subnet %s",
				     pool->gateway, net->key, pool->subnet);
			n++;
		}
	}
	/* Pairwise: a project has a handful of subnets.  The bound keeps
	 * hostile input cheap. */
	for (size_t i = 0; i < n && i < 512; i++)
		for (size_t j = 0; j < i; j++) {
			if (v[i].family != v[j].family)
				continue;
			int bits = v[i].prefix < v[j].prefix ? v[i].prefix
							     : v[j].prefix;
			if (!prefix_match(v[i].addr, v[j].addr, bits))
				continue;
			verr(d, &v[i].pool->pos,
			     "subnet %s of network \"%s\" "
			     "overlaps subnet %s of network \"%s\"",
			     v[i].pool->subnet, v[i].net->key,
			     v[j].pool->subnet, v[j].net->key);
		}
	for (size_t i = 0; i < p->n_services; i++) {
		const struct service *s = &p->services[i];
		for (size_t j = 0; j < s->n_networks; j++) {
			const struct m_svc_net *sn = &s->networks[j];
			const char *addrs[2] = {sn->ipv4_address,
						sn->ipv6_address};
			const struct network *net =
			    project_network(p, sn->name);
			for (int a = 0; a < 2 && net; a++) {
				if (!addrs[a])
					continue;
				int fam = a == 0 ? AF_INET : AF_INET6;
				unsigned char ip[16] = {0};
				inet_pton(fam, addrs[a], ip);
				bool has = false, inside = false;
				for (size_t k = 0; k < n; k++) {
					if (v[k].net != net ||
					    v[k].family != fam)
						continue;
					has = true;
					inside |= prefix_match(ip, v[k].addr,
							       v[k].prefix);
				}
				/* An external network's subnets are netd's
				 * to know: up checks the address there. */
				if (!has && net->external)
					continue;
				if (!has)
					verr(d, &sn->pos,
					     "service \"%s\": a static "
					     "address (%s) needs a subnet in "
					     "network \"%s\"'s ipam config",
					     s->name, addrs[a], net->key);
				else if (!inside)
					verr(d, &sn->pos,
					     "service \"%s\": address %s "
					     "is outside the subnets of "
					     "network \"%s\"",
					     s->name, addrs[a], net->key);
			}
		}
	}
	free(v);
}

void validate_project(struct project *p, struct orch_diag *d,
		      size_t read_diags)
{
	for (size_t i = 0; i < p->n_services; i++)
		check_refs(p, &p->services[i], d, read_diags);
	find_cycles(p, d);
	check_ports(p, d);
	check_subnets(p, d);
}
