/* Publishing host ports: port.publish, port.check and port.unpublish.  A
 * range is one object from the request to the state; only the nftables
 * map gets an element per port. */
#include "netd/netd-int.h"

#include <jansson.h>

#include <arpa/inet.h>

/* A range longer than this is not relayed on ::1 (a socket per port). */
#define RELAY_MAX_RANGE 100

struct port_args {
	const char *proto;
	/* "" (every address, both families), "::" (every IPv6 address),
	 * or one address, IPv4 or IPv6 (canonical) */
	const char *ip_text;
	char ip_buf[INET6_ADDRSTRLEN];
	unsigned port, cport, count;
};

static int port_args_parse(const struct call *c, struct port_args *pa,
			   bool need_ports)
{
	pa->proto = call_str(c, "proto") ?: "tcp";
	pa->ip_text = call_str(c, "host_ip") ?: "";
	pa->port = (unsigned)call_int(c, "host_port");
	pa->cport = (unsigned)call_int(c, "container_port");
	pa->count = (unsigned)call_int(c, "count");
	if (pa->count == 0)
		pa->count = 1;
	if (!streq(pa->proto, "tcp") && !streq(pa->proto, "udp"))
		return err_set(c->e, EINVAL,
			       "protocol \"%s\": expected tcp or udp",
			       pa->proto);
	uint8_t a[16];
	int fam = strchr(pa->ip_text, ':') ? AF_INET6 : AF_INET;
	if (streq(pa->ip_text, "0.0.0.0"))
		pa->ip_text = "";
	if (*pa->ip_text) {
		if (inet_pton(fam, pa->ip_text, a) != 1)
			return err_set(c->e, EINVAL,
				       "host IP \"%s\" is not an IPv4 or "
				       "IPv6 address",
				       pa->ip_text);
		inet_ntop(fam, a, pa->ip_buf, sizeof(pa->ip_buf));
		pa->ip_text = pa->ip_buf;
	}
	if (!need_ports)
		return 0;
	if (!call_str(c, "container_id"))
		return err_set(c->e, EINVAL,
			       "publishing: container_id missing");
	if (pa->port < 1 || pa->cport < 1 || pa->port + pa->count - 1 > 65535 ||
	    pa->cport + pa->count - 1 > 65535)
		return err_set(c->e, EINVAL, "ports %u->%u (x%u) out of range",
			       pa->port, pa->cport, pa->count);
	return 0;
}

/* Whether mappings on host addresses a and b can take the same port. */
static bool ips_clash(const char *a, const char *b)
{
	if (!*a || !*b)
		return true;
	if ((strchr(a, ':') != NULL) != (strchr(b, ':') != NULL))
		return false;
	return streq(a, "::") || streq(b, "::") || streq(a, b);
}

/* Conflicts with every network's mappings (ranges against ranges), then
 * with the host's sockets: on the addresses asked for, and on IPv6's
 * when the network has IPv6 and they are all. */
static int port_conflicts(struct server *s, const struct call *c,
			  const struct netd_network *net,
			  const struct port_args *pa)
{
	unsigned last = pa->port + pa->count - 1;
	for (size_t i = 0; i < s->st.n_nets; i++) {
		const struct netd_network *n = &s->st.nets[i];
		for (size_t j = 0; j < n->n_ports; j++) {
			const struct netd_port *p = &n->ports[j];
			unsigned plast = p->host_port + p->count - 1;
			if (plast < pa->port || p->host_port > last ||
			    !streq(p->proto, pa->proto) ||
			    !ips_clash(p->host_ip, pa->ip_text))
				continue;
			unsigned hp =
			    p->host_port > pa->port ? p->host_port : pa->port;
			ssize_t e = state_endpoint_find(n, p->container_id);
			return err_set(c->e, EADDRINUSE,
				       "host port %s%s%u/%s is already "
				       "published by %s (project %s, "
				       "network %s)",
				       p->host_ip, *p->host_ip ? ":" : "", hp,
				       pa->proto,
				       e >= 0 ? n->endpoints[e].container_name
					      : p->container_id,
				       n->project, n->name);
		}
	}
	bool v6 = has_str(net->subnet6);
	bool ip6 = strchr(pa->ip_text, ':') != NULL;
	if ((ip6 && !v6) || (*pa->ip_text && !ip6 && !has_str(net->subnet)))
		return err_set(c->e, EAFNOSUPPORT,
			       "host IP %s: network %s has no IPv%d (%s)",
			       pa->ip_text, net->name, ip6 ? 6 : 4,
			       ip6 ? "enable_ipv6" : "enable_ipv4");
	if (v6 && relay_host_ip(pa->ip_text) && pa->count > RELAY_MAX_RANGE)
		return err_set(c->e, EINVAL,
			       "host ports %u-%u: on an IPv6 network netd "
			       "relays ::1 for at most %d ports of a range; "
			       "publish a longer range on one address "
			       "(0.0.0.0 or an IPv6 address of the host)",
			       pa->port, last, RELAY_MAX_RANGE);
	int r = hostport_check_range(pa->proto, pa->ip_text, pa->port,
				     pa->count, c->e);
	if (r == 0 && v6 && !*pa->ip_text)
		r = hostport_check_range(pa->proto, "::", pa->port, pa->count,
					 c->e);
	return r;
}

int op_port_publish(struct server *s, struct call *c, json_t **res,
		    bool check_only)
{
	struct port_args pa;
	int r = port_args_parse(c, &pa, true);
	if (r < 0)
		return r;
	const char *cid = call_str(c, "container_id");
	struct netd_network *n = server_find_net(
	    s, call_str(c, "network"), c->uid, "publishing a port on", c->e);
	if (!n)
		return -c->e->code;
	if (!check_only && state_endpoint_find(n, cid) < 0)
		return err_set(
		    c->e, ENOENT,
		    "publishing a port of %s: it is not attached to %s", cid,
		    n->name);
	if ((r = policy_port_check(&s->cfg, c->uid, pa.port, pa.count,
				   hostport_unprivileged_start(), c->e)) < 0 ||
	    (r = server_quota(s, c->uid, 2, pa.count, c->e)) < 0 ||
	    (r = port_conflicts(s, c, n, &pa)) < 0)
		return r;
	*res = json_object();
	if (check_only)
		return 0;
	struct strbuf script;
	sb_init(&script);
	n->ports = xrealloc(n->ports, (n->n_ports + 1) * sizeof(*n->ports));
	struct netd_port *p = &n->ports[n->n_ports++];
	*p = (struct netd_port){.container_id = xstrdup(cid),
				.proto = xstrdup(pa.proto),
				.host_ip = xstrdup(pa.ip_text),
				.host_port = pa.port,
				.container_port = pa.cport,
				.count = pa.count};
	fw_gen_port(n, p, true, &script);
	r = server_fw_sync(s, NULL, &script, c->e);
	if (r == 0)
		r = server_save(s, c->e);
	if (r < 0) {
		netd_port_clear(&n->ports[--n->n_ports]);
		return err_wrap(c->e, "publishing port %u of %s", pa.port, cid);
	}
	log_info("published %s%s%u/%s -> %s:%u (x%u)", pa.ip_text,
		 *pa.ip_text ? ":" : "", pa.port, pa.proto, cid, pa.cport,
		 pa.count);
	return 0;
}

/* Unpublishes host ports lo..lo+count-1 (every port when lo is 0) of
 * n->ports[*j], which keeps what is left of its range (split in two when
 * the cut is in its middle; *j steps back when it goes).  Returns how
 * many ports went. */
static unsigned port_cut(struct netd_network *n, size_t *j, unsigned lo,
			 unsigned count, struct strbuf *script)
{
	struct netd_port *p = &n->ports[*j];
	unsigned first = p->host_port, last = p->host_port + p->count - 1;
	unsigned a = first, b = last;
	if (lo) {
		if (lo + count - 1 < first || lo > last)
			return 0;
		a = lo > first ? lo : first;
		b = lo + count - 1 < last ? lo + count - 1 : last;
	}
	struct netd_port cut = *p;
	cut.host_port = a;
	cut.container_port = p->container_port + (a - first);
	cut.count = b - a + 1;
	fw_gen_port(n, &cut, false, script);
	if (a == first && b == last) {
		netd_port_clear(p);
		*p = n->ports[--n->n_ports];
		(*j)--;
		return cut.count;
	}
	struct netd_port right = *p;
	right.host_port = b + 1;
	right.container_port = p->container_port + (b + 1 - first);
	right.count = last - b;
	if (a == first) {
		*p = right;
		return cut.count;
	}
	p->count = a - first;
	if (b < last) {
		right.container_id = xstrdup(p->container_id);
		right.proto = xstrdup(p->proto);
		right.host_ip = xstrdup(p->host_ip);
		n->ports =
		    xrealloc(n->ports, (n->n_ports + 1) * sizeof(*n->ports));
		n->ports[n->n_ports++] = right;
	}
	return cut.count;
}

int op_port_unpublish(struct server *s, struct call *c, json_t **res)
{
	struct port_args pa;
	int r = port_args_parse(c, &pa, false);
	if (r < 0)
		return r;
	const char *cid = call_str(c, "container_id");
	struct netd_network *n = state_find(&s->st, call_str(c, "network"));
	unsigned removed = 0;
	if (n) {
		if ((r = server_authorize(n, c->uid, "unpublishing a port of",
					  c->e)) < 0)
			return r;
		struct strbuf script;
		sb_init(&script);
		for (size_t j = 0; j < n->n_ports; j++)
			if ((!cid || streq(n->ports[j].container_id, cid)) &&
			    (!call_str(c, "proto") ||
			     streq(n->ports[j].proto, pa.proto)) &&
			    (!call_str(c, "host_ip") ||
			     streq(n->ports[j].host_ip, pa.ip_text)))
				removed +=
				    port_cut(n, &j, pa.port, pa.count, &script);
		if (removed) {
			r = server_save(s, c->e);
			if (r == 0 &&
			    server_fw_sync(s, NULL, &script, c->e) < 0)
				log_warn("%s", c->e->msg);
		}
		sb_free(&script);
		if (r < 0)
			return r;
	}
	*res = json_pack("{s:i}", "removed", (int)removed);
	return 0;
}
