/* Who may have which subnet and which host port.  Pure: a request is
 * checked against the address space's special blocks, the host's routes
 * and the unprivileged port limit (read by the caller) and the
 * administrator's allowances in netd.json, so that every rule is
 * unit-tested without root. */
#include "netd/netd-int.h"

/* Blocks no network may take, whoever asks: traffic to them means
 * something else to the host, so a bridge there would capture it. */
static const struct {
	struct cidr block;
	const char *what;
} special[] = {
    {{0x00000000u, 8}, "unspecified (0.0.0.0/8)"},
    {{0x7f000000u, 8}, "loopback (127.0.0.0/8)"},
    {{0xa9fe0000u, 16}, "link-local (169.254.0.0/16)"},
    {{0xe0000000u, 4}, "multicast (224.0.0.0/4)"},
    {{0xffffffffu, 32}, "broadcast (255.255.255.255)"},
    {{0xf0000000u, 4}, "reserved (240.0.0.0/4)"},
};

const char *policy_subnet_special(struct cidr c)
{
	for (size_t i = 0; i < ARRAY_SIZE(special); i++)
		if (ipam_overlap(c, special[i].block))
			return special[i].what;
	return NULL;
}

static bool inside(struct cidr inner, struct cidr outer)
{
	return inner.prefix >= outer.prefix && ipam_contains(outer, inner.addr);
}

int policy_subnet_check(const struct netd_config *cfg, uid_t uid,
			struct cidr want, const struct cidr *host,
			size_t n_host, struct orch_err *e)
{
	_cleanup_free_ char *text = ipam_format_cidr(want);
	const char *what = policy_subnet_special(want);
	if (what)
		return err_set(e, EPERM,
			       "subnet %s is in %s address space, which no "
			       "network may use",
			       text, what);
	bool allowed = uid == 0 || inside(want, cfg->pool);
	for (size_t i = 0; i < cfg->n_user_subnets && !allowed; i++)
		allowed = inside(want, cfg->user_subnets[i]);
	if (!allowed) {
		_cleanup_free_ char *pool = ipam_format_cidr(cfg->pool);
		return err_set(e, EPERM,
			       "subnet %s is outside the ranges uid %u may "
			       "use (the pool %s%s)",
			       text, (unsigned)uid, pool,
			       cfg->n_user_subnets
				   ? " and user_subnets of netd.json"
				   : "; see user_subnets in netd.json");
	}
	/* Any overlap: a subnet inside a route takes part of its traffic, one
	 * around it takes all of it. */
	for (size_t i = 0; i < n_host; i++)
		if (ipam_overlap(host[i], want)) {
			_cleanup_free_ char *h = ipam_format_cidr(host[i]);
			return err_set(e, EEXIST,
				       "subnet %s overlaps the host's route %s",
				       text, h);
		}
	return 0;
}

int policy_port_check(const struct netd_config *cfg, uid_t uid, unsigned port,
		      unsigned count, unsigned unpriv_start, struct orch_err *e)
{
	if (uid == 0 || count == 0)
		return 0;
	unsigned last = port + count - 1;
	for (unsigned p = port; p <= last && p < unpriv_start; p++) {
		bool allowed = false;
		for (size_t i = 0; i < cfg->n_user_ports && !allowed; i++) {
			const struct port_allowance *a = &cfg->user_ports[i];
			allowed = a->uid == uid && p >= a->lo && p <= a->hi;
		}
		if (!allowed)
			return err_set(e, EACCES,
				       "host port %u is privileged (below "
				       "%u, net.ipv4.ip_unprivileged_port_"
				       "start): only root may publish it, or "
				       "uid %u with an allowance in netd.json "
				       "(user_ports)",
				       p, unpriv_start, (unsigned)uid);
	}
	return 0;
}
