/* IPv6 on a network: its subnet (asked for, or the next /64 of the IPv6
 * pool), its gateway, and each endpoint's address, with the same rules
 * as IPv4: no special block, users inside the pool, no overlap with the
 * host's routes or another network. */
#include "netd/netd-int.h"

#include <arpa/inet.h>

/* Blocks no network may take. */
static const struct {
	const char *block, *what;
} special6[] = {
    {"::/8", "reserved (::/8: unspecified, loopback, IPv4-mapped)"},
    {"fe80::/10", "link-local (fe80::/10)"},
    {"ff00::/8", "multicast (ff00::/8)"},
};

const char *policy_subnet6_special(const struct cidr6 *c)
{
	for (size_t i = 0; i < ARRAY_SIZE(special6); i++) {
		struct cidr6 b;
		if (ipam6_parse_cidr(special6[i].block, &b, NULL) == 0 &&
		    ipam6_overlap(c, &b))
			return special6[i].what;
	}
	return NULL;
}

/* A subnet asked for: allowed to uid, free on the host and in netd. */
static int subnet6_check(struct server *s, const struct call *c,
			 const char *want, const struct cidr6 *sub,
			 const struct cidr6 *host, size_t n_host)
{
	const char *what = policy_subnet6_special(sub);
	if (what)
		return err_set(c->e, EPERM,
			       "subnet %s is in %s address space, which no "
			       "network may use",
			       want, what);
	if (sub->prefix > 120)
		return err_set(c->e, EINVAL,
			       "subnet %s is too small for a network", want);
	if (c->uid != 0 && (sub->prefix < s->cfg.pool6.prefix ||
			    !ipam6_contains(&s->cfg.pool6, sub->addr))) {
		_cleanup_free_ char *pool = ipam6_format_cidr(&s->cfg.pool6);
		return err_set(c->e, EPERM,
			       "subnet %s is outside the IPv6 pool %s that "
			       "uid %u may use",
			       want, pool, (unsigned)c->uid);
	}
	for (size_t i = 0; i < n_host; i++)
		if (ipam6_overlap(&host[i], sub)) {
			_cleanup_free_ char *h = ipam6_format_cidr(&host[i]);
			return err_set(c->e, EEXIST,
				       "subnet %s overlaps the host's route %s",
				       want, h);
		}
	for (size_t i = 0; i < s->st.n_nets; i++) {
		struct cidr6 o;
		const struct netd_network *n = &s->st.nets[i];
		if (has_str(n->subnet6) &&
		    ipam6_parse_cidr(n->subnet6, &o, NULL) == 0 &&
		    ipam6_overlap(&o, sub))
			return err_set(c->e, EEXIST,
				       "subnet %s overlaps %s of network %s "
				       "(project %s)",
				       want, n->subnet6, n->name, n->project);
	}
	return 0;
}

int net6_pick(struct server *s, const struct call *c, struct cidr6 *sub,
	      uint8_t gw[16])
{
	const char *want = call_str(c, "subnet6");
	_cleanup_free_ struct cidr6 *host = NULL;
	size_t n_host = 0;
	int r = link_host_cidrs6(&host, &n_host, c->e);
	if (r < 0)
		return r;
	if (want) {
		if ((r = ipam6_parse_cidr(want, sub, c->e)) < 0 ||
		    (r = subnet6_check(s, c, want, sub, host, n_host)) < 0)
			return r;
	} else {
		size_t k = n_host;
		host = xrealloc(host, (n_host + s->st.n_nets + 1) *
					  sizeof(*host));
		for (size_t i = 0; i < s->st.n_nets; i++)
			if (has_str(s->st.nets[i].subnet6) &&
			    ipam6_parse_cidr(s->st.nets[i].subnet6, &host[k],
					     NULL) == 0)
				k++;
		if (ipam6_subnet_next(&s->cfg.pool6, s->cfg.subnet_prefix6,
				      host, k, sub) < 0) {
			_cleanup_free_ char *p =
			    ipam6_format_cidr(&s->cfg.pool6);
			return err_set(c->e, ENOSPC,
				       "no free /%d subnet left in the IPv6 "
				       "pool %s",
				       s->cfg.subnet_prefix6, p);
		}
	}
	const char *gwarg = call_str(c, "gateway6");
	if (!gwarg) {
		if (ipam6_lease_next(sub, NULL, 0, gw) == 0)
			return 0;
		_cleanup_free_ char *t = ipam6_format_cidr(sub);
		return err_set(c->e, EINVAL, "subnet %s has no room", t);
	}
	if (ipam6_parse_addr(gwarg, gw) < 0 || !ipam6_host_valid(sub, gw))
		return err_set(c->e, EINVAL,
			       "gateway %s is not a host address of its IPv6 "
			       "subnet",
			       gwarg);
	return 0;
}

int net6_lease(const struct netd_network *n, const struct call *c,
	       uint8_t out[16])
{
	struct cidr6 sub;
	size_t cnt = n->n_endpoints + 1;
	_cleanup_free_ uint8_t(*used)[16] = xcalloc(cnt, 16);
	if (ipam6_parse_cidr(n->subnet6, &sub, NULL) < 0 ||
	    ipam6_parse_addr(n->gateway6, used[0]) < 0)
		return err_set(c->e, EINVAL, "network %s: corrupt subnet %s",
			       n->name, n->subnet6);
	for (size_t i = 0; i < n->n_endpoints; i++)
		if (!has_str(n->endpoints[i].address6) ||
		    ipam6_parse_addr(n->endpoints[i].address6, used[i + 1]) < 0)
			memcpy(used[i + 1], used[0], 16);
	const char *want = call_str(c, "address6");
	if (!want) {
		if (ipam6_lease_next(&sub, (const uint8_t(*)[16])used, cnt,
				     out) < 0)
			return err_set(c->e, ENOSPC, "network %s is full (%s)",
				       n->name, n->subnet6);
		return 0;
	}
	if (ipam6_parse_addr(want, out) < 0 || !ipam6_host_valid(&sub, out))
		return err_set(c->e, EINVAL,
			       "address %s is not a host address of %s", want,
			       n->subnet6);
	if (memcmp(out, used[0], 16) == 0)
		return err_set(c->e, EADDRINUSE,
			       "address %s is the gateway of network %s", want,
			       n->name);
	for (size_t i = 0; i < n->n_endpoints; i++)
		if (memcmp(used[i + 1], out, 16) == 0 &&
		    has_str(n->endpoints[i].address6))
			return err_set(c->e, EADDRINUSE,
				       "address %s is already used by %s", want,
				       n->endpoints[i].container_name);
	return 0;
}

int net_gateways(const struct netd_network *n, struct link_addrs *out,
		 struct orch_err *e)
{
	memset(out, 0, sizeof(*out));
	if (has_str(n->subnet) &&
	    (ipam_parse_cidr(n->subnet, &out->v4, e) < 0 ||
	     ipam_parse_addr(n->gateway, &out->gw4) < 0))
		return err_set(e, EINVAL, "network %s: corrupt subnet %s",
			       n->name, n->subnet);
	out->v4.addr = out->gw4;
	if (has_str(n->subnet6) &&
	    (ipam6_parse_cidr(n->subnet6, &out->v6, e) < 0 ||
	     ipam6_parse_addr(n->gateway6, out->gw6) < 0))
		return err_set(e, EINVAL, "network %s: corrupt subnet %s",
			       n->name, n->subnet6);
	memcpy(out->v6.addr, out->gw6, 16);
	return 0;
}
