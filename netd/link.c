/* Links, addresses and routes through libnl-route-3: bridges on the host,
 * veth pairs whose container end is born in the container's namespace. */
#include "netd/netd-int.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <sched.h>
#include <sys/ioctl.h>

static int nl_errno(int nlerr)
{
	switch (-nlerr) {
	case NLE_EXIST:
		return EEXIST;
	case NLE_OBJ_NOTFOUND:
	case NLE_NODEV:
		return ENODEV;
	case NLE_PERM:
		return EPERM;
	case NLE_NOMEM:
		return ENOMEM;
	case NLE_INVAL:
		return EINVAL;
	case NLE_BUSY:
		return EBUSY;
	case NLE_NOADDR:
		return EADDRNOTAVAIL;
	default:
		return EIO;
	}
}

static int nl_fail(struct orch_err *e, int nlerr, const char *what,
		   const char *obj)
{
	return err_set(e, nl_errno(nlerr), "%s %s: %s", what, obj,
		       nl_geterror(nlerr));
}

static void sock_freep(struct nl_sock **s)
{
	if (*s)
		nl_socket_free(*s);
}
static void link_putp(struct rtnl_link **l)
{
	if (*l)
		rtnl_link_put(*l);
}
static void addr_putp(struct nl_addr **a)
{
	if (*a)
		nl_addr_put(*a);
}
static void cache_freep(struct nl_cache **c)
{
	if (*c)
		nl_cache_free(*c);
}
#define _cleanup_sock_	 __attribute__((cleanup(sock_freep)))
#define _cleanup_link_	 __attribute__((cleanup(link_putp)))
#define _cleanup_nladdr_ __attribute__((cleanup(addr_putp)))
#define _cleanup_cache_	 __attribute__((cleanup(cache_freep)))

static int open_sock(struct nl_sock **out, struct orch_err *e)
{
	struct nl_sock *sk = nl_socket_alloc();
	if (!sk)
		return err_set(e, ENOMEM, "allocating a netlink socket");
	int r = nl_connect(sk, NETLINK_ROUTE);
	if (r < 0) {
		nl_socket_free(sk);
		return nl_fail(e, r, "connecting", "rtnetlink");
	}
	*out = sk;
	return 0;
}

/* A netlink socket inside the namespace nsfd: sockets keep the namespace
 * they were made in, so netd switches only for the socket() call, and to
 * say whether interfaces made in the namespace from now on have IPv6
 * (/proc/sys/net being the current namespace's).  A container's
 * interface on a network without IPv6 has none: its link-local traffic
 * would pass the bridge beside the IPv4 pair policy.  An interface born
 * without it never gets a link-local address to remove: cheaper than
 * turning it off afterwards, which takes the RTNL lock and undoes the
 * address configuration (-20 ms in a 200-service `up`). */
static int open_sock_in(int nsfd, bool ipv6, struct nl_sock **out,
			struct orch_err *e)
{
	_cleanup_close_ int self =
	    open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return err_sys(e, errno,
			       "opening netd's own network namespace");
	if (setns(nsfd, CLONE_NEWNET) < 0)
		return err_sys(e, errno,
			       "entering the container's network namespace");
	int r = open_sock(out, e);
	if (r == 0) {
		r = sysctl_write("/proc/sys/net/ipv6/conf/default/disable_ipv6",
				 ipv6 ? "0" : "1");
		if (r < 0 && r != -ENOENT)
			r = err_sys(e, r, "setting IPv6 in the container");
		else
			r = 0;
	}
	if (setns(self, CLONE_NEWNET) < 0) {
		/* netd would go on working in the wrong namespace. */
		log_error("returning to netd's network namespace: %s",
			  strerror(errno));
		abort();
	}
	return r;
}

static struct nl_addr *addr_build(uint32_t a, int prefix)
{
	uint32_t be = htonl(a);
	struct nl_addr *na = nl_addr_build(AF_INET, &be, 4);
	if (!na)
		abort();
	nl_addr_set_prefixlen(na, prefix);
	return na;
}

static int ifindex_of(struct nl_sock *sk, const char *name)
{
	_cleanup_link_ struct rtnl_link *l = NULL;
	if (rtnl_link_get_kernel(sk, 0, name, &l) < 0)
		return -ENODEV;
	return rtnl_link_get_ifindex(l);
}

/* Requests made together (nlbatch.c), each with what its error says. */
struct link_reqs {
	struct nlb b;
	char *what[8];
	bool exist_ok[8]; /* an address already there is as good */
};

static void req_add(struct link_reqs *q, struct nl_msg *m, bool exist_ok,
		    char *what)
{
	if (q->b.n == ARRAY_SIZE(q->what))
		abort();
	q->what[q->b.n] = what;
	q->exist_ok[q->b.n] = exist_ok;
	nlmsg_hdr(m)->nlmsg_flags |= NLM_F_ACK;
	nlb_add(&q->b, m);
}

/* Sends the requests; the first that failed is the error. */
static int reqs_send(struct nl_sock *sk, struct link_reqs *q,
		     struct orch_err *e)
{
	int errs[ARRAY_SIZE(q->what)];
	unsigned n = q->b.n;
	int r = nlb_send(sk, &q->b, errs, e);
	for (unsigned i = 0; r == 0 && i < n; i++)
		if (errs[i] && !(errs[i] == -EEXIST && q->exist_ok[i]))
			r = err_sys(e, -errs[i], "%s", q->what[i]);
	for (unsigned i = 0; i < n; i++)
		free(q->what[i]);
	nlb_free(&q->b);
	return r;
}

/* Adds local (with brd, when not NULL, as its broadcast address) to
 * ifindex. */
static void addr_req(struct link_reqs *q, int ifindex, struct nl_addr *local,
		     struct nl_addr *brd, unsigned flags, char *what)
{
	struct rtnl_addr *a = rtnl_addr_alloc();
	if (!a)
		abort();
	rtnl_addr_set_ifindex(a, ifindex);
	rtnl_addr_set_local(a, local);
	if (brd)
		rtnl_addr_set_broadcast(a, brd);
	if (flags)
		rtnl_addr_set_flags(a, flags);
	struct nl_msg *m;
	if (rtnl_addr_build_add_request(a, 0, &m) < 0)
		abort();
	rtnl_addr_put(a);
	req_add(q, m, true, what);
}

/* The addresses of a link_addrs that are set, on ifindex.  IPv6 ones
 * skip duplicate address detection: netd hands each one out once, and a
 * tentative address would not answer for a second. */
static void addrs_req(struct link_reqs *q, int ifindex,
		      const struct link_addrs *a, const char *ifname)
{
	if (a->v4.prefix) {
		struct cidr c = a->v4;
		_cleanup_nladdr_ struct nl_addr *local =
		    addr_build(c.addr, c.prefix);
		uint32_t bcast =
		    c.addr | (c.prefix ? ~(0xffffffffu << (32 - c.prefix)) : 0);
		_cleanup_nladdr_ struct nl_addr *brd =
		    addr_build(bcast, c.prefix);
		_cleanup_free_ char *shown = ipam_format_cidr(c);
		addr_req(q, ifindex, local, c.prefix < 31 ? brd : NULL, 0,
			 xasprintf("adding address %s to %s", shown, ifname));
	}
	if (a->v6.prefix) {
		_cleanup_nladdr_ struct nl_addr *local =
		    nl_addr_build(AF_INET6, a->v6.addr, 16);
		if (!local)
			abort();
		nl_addr_set_prefixlen(local, a->v6.prefix);
		_cleanup_free_ char *shown = ipam6_format_cidr(&a->v6);
		addr_req(q, ifindex, local, NULL, IFA_F_NODAD,
			 xasprintf("adding address %s to %s", shown, ifname));
	}
}

/* Sets the link up, by index: no lookup. */
static void up_req(struct link_reqs *q, int ifindex, const char *name)
{
	struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWLINK, 0);
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC,
				.ifi_index = ifindex,
				.ifi_flags = IFF_UP,
				.ifi_change = IFF_UP};
	if (!m || nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0)
		abort();
	req_add(q, m, false, xasprintf("setting up link %s", name));
}

/* The host's end of a container's veth, made down, up as a bridge port:
 * with no IPv6 address of its own (a port needs none), that is no
 * link-local address and no duplicate address detection, whose work
 * takes the RTNL lock again later.  Its address generation is turned off
 * by netlink before it is up: disable_ipv6 in /proc/sys, written after,
 * removed the address the up had made, and its write does not wait for
 * the RTNL lock but restarts until it gets it, spinning on a CPU for as
 * long as namespaces are made or torn down beside it (up to 4 ms of an
 * `up`).  Without IPv6 on the host, or below IPv6's MTU (no IPv6 on the
 * link), there is nothing to turn off. */
static void port_up_req(struct link_reqs *q, const char *name, unsigned mtu)
{
	static int has_ipv6 = -1;
	if (has_ipv6 < 0)
		has_ipv6 = access("/proc/sys/net/ipv6", F_OK) == 0;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	if (has_ipv6 && mtu >= 1280) {
		struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWLINK, 0);
		struct nlattr *spec, *in6;
		if (!m || nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
		    nla_put_string(m, IFLA_IFNAME, name) < 0 ||
		    !(spec = nla_nest_start(m, IFLA_AF_SPEC)) ||
		    !(in6 = nla_nest_start(m, AF_INET6)) ||
		    nla_put_u8(m, IFLA_INET6_ADDR_GEN_MODE,
			       IN6_ADDR_GEN_MODE_NONE) < 0)
			abort();
		nla_nest_end(m, in6);
		nla_nest_end(m, spec);
		req_add(q, m, false,
			xasprintf("turning IPv6 addresses off on %s", name));
	}
	ifi.ifi_flags = ifi.ifi_change = IFF_UP;
	struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWLINK, 0);
	if (!m || nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
	    nla_put_string(m, IFLA_IFNAME, name) < 0)
		abort();
	req_add(q, m, false, xasprintf("setting up link %s", name));
}

int link_bridge_create(const char *name, const char *mac,
		       const struct link_addrs *gw, unsigned mtu,
		       struct orch_err *e)
{
	_cleanup_sock_ struct nl_sock *sk = NULL;
	int r = open_sock(&sk, e);
	if (r < 0)
		return r;
	_cleanup_link_ struct rtnl_link *l = rtnl_link_bridge_alloc();
	if (!l)
		abort();
	_cleanup_nladdr_ struct nl_addr *ll = NULL;
	if (nl_addr_parse(mac, AF_LLC, &ll) < 0)
		return err_set(e, EINVAL, "creating bridge %s: bad MAC %s",
			       name, mac);
	rtnl_link_set_name(l, name);
	/* A pinned MAC: otherwise the bridge takes the lowest of its ports'
	 * and changes as containers come and go, stalling ARP caches. */
	rtnl_link_set_addr(l, ll);
	rtnl_link_set_mtu(l, mtu);
	r = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
	if (r < 0 && nl_errno(r) != EEXIST)
		return nl_fail(e, r, "creating bridge", name);
	int idx = ifindex_of(sk, name);
	if (idx < 0)
		return err_set(e, ENODEV, "creating bridge %s: it vanished",
			       name);
	/* 127.0.0.1 may be published: DNAT'ed local traffic leaves through
	 * the bridge with a loopback source until masqueraded. */
	_cleanup_free_ char *p =
	    xasprintf("/proc/sys/net/ipv4/conf/%s/route_localnet", name);
	r = sysctl_write(p, "1");
	if (r < 0)
		return err_sys(
		    e, r, "creating bridge %s: setting route_localnet", name);
	struct link_reqs q = {0};
	addrs_req(&q, idx, gw, name);
	up_req(&q, idx, name);
	return reqs_send(sk, &q, e);
}

int link_delete(const char *name, struct orch_err *e)
{
	char *names[] = {(char *)name, NULL};
	return link_delete_many(names, e);
}

/* The kernel group links go into just before they are deleted together.
 * Any value works; a link of someone else's found in it turns the batch
 * off. */
#define DOOMED_GROUP 0x6f726368u /* "orch" */

static void msg_freep(struct nl_msg **m)
{
	if (*m)
		nlmsg_free(*m);
}
#define _cleanup_nlmsg_ __attribute__((cleanup(msg_freep)))

/* One RTM_SETLINK or RTM_DELLINK naming the link by name, or (name NULL)
 * the whole group; waits for the kernel's answer. */
static int link_msg(struct nl_sock *sk, int type, const char *name,
		    uint32_t group)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	_cleanup_nlmsg_ struct nl_msg *m = nlmsg_alloc_simple(type, NLM_F_ACK);
	if (!m || nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
	    (name && nla_put_string(m, IFLA_IFNAME, name) < 0) ||
	    nla_put_u32(m, IFLA_GROUP, group) < 0)
		return -NLE_NOMEM;
	int r = nl_send_auto(sk, m);
	return r < 0 ? r : nl_wait_for_ack(sk);
}

/* Whether every link in DOOMED_GROUP is one of names. */
static bool doomed_group_ours(struct nl_sock *sk, char *const *names)
{
	_cleanup_cache_ struct nl_cache *cache = NULL;
	if (rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache) < 0)
		return false;
	for (struct nl_object *o = nl_cache_get_first(cache); o;
	     o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		const char *name = rtnl_link_get_name(l);
		if (rtnl_link_get_group(l) == DOOMED_GROUP &&
		    (!name || !strv_contains(names, name)))
			return false;
	}
	return true;
}

void link_name_hash(const char *s, char out[17])
{
	snprintf(out, 17, "%016llx",
		 (unsigned long long)fnv1a(FNV_INIT, s, strlen(s)));
}

int link_delete_many(char *const *names, struct orch_err *e)
{
	if (!names || !names[0])
		return 0;
	_cleanup_sock_ struct nl_sock *sk = NULL;
	int r = open_sock(&sk, e);
	if (r < 0)
		return r;
	/* The kernel waits for RCU grace periods on every deletion request;
	 * a group is unregistered in one request, so they are paid once. */
	if (names[1] && doomed_group_ours(sk, names)) {
		bool any = false;
		for (size_t i = 0; names[i]; i++) {
			r = link_msg(sk, RTM_SETLINK, names[i], DOOMED_GROUP);
			if (r < 0 && nl_errno(r) != ENODEV)
				break;
			any |= r >= 0;
		}
		if (r >= 0 || nl_errno(r) == ENODEV)
			r = any ? link_msg(sk, RTM_DELLINK, NULL, DOOMED_GROUP)
				: 0;
		if (r < 0)
			log_warn("deleting links as a group: %s; one by one",
				 nl_geterror(r));
	}
	/* Whatever the batch left (or all of them without it). */
	int first = 0;
	for (size_t i = 0; names[i]; i++) {
		_cleanup_link_ struct rtnl_link *l = rtnl_link_alloc();
		rtnl_link_set_name(l, names[i]);
		r = rtnl_link_delete(sk, l);
		if (r < 0 && nl_errno(r) != ENODEV && !first)
			first = nl_fail(e, r, "deleting link", names[i]);
	}
	return first;
}

bool link_exists(const char *name)
{
	struct orch_err e;
	_cleanup_sock_ struct nl_sock *sk = NULL;
	if (open_sock(&sk, &e) < 0)
		return true; /* unknown: never treat as gone */
	return ifindex_of(sk, name) > 0;
}

bool link_any_listed(int fd, char *const *names)
{
	for (size_t i = 0; names && names[i]; i++) {
		struct ifreq ifr = {0};
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", names[i]);
		if (ioctl(fd, SIOCGIFINDEX, &ifr) == 0)
			return true;
	}
	return false;
}

int link_list(const char *prefix, char ***out, struct orch_err *e)
{
	_cleanup_sock_ struct nl_sock *sk = NULL;
	int r = open_sock(&sk, e);
	if (r < 0)
		return r;
	_cleanup_cache_ struct nl_cache *cache = NULL;
	r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
	if (r < 0)
		return nl_fail(e, r, "listing", "links");
	*out = xcalloc(1, sizeof(char *));
	for (struct nl_object *o = nl_cache_get_first(cache); o;
	     o = nl_cache_get_next(o)) {
		const char *name = rtnl_link_get_name((struct rtnl_link *)o);
		if (name && startswith(name, prefix))
			strv_push(out, name);
	}
	return 0;
}

/* The default route of family (AF_INET, AF_INET6) via gw (4 or 16
 * bytes). */
static void route_default_req(struct link_reqs *q, int ifindex, int family,
			      const void *gw, const char *ifname)
{
	struct rtnl_route *rt = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	if (!rt || !nh)
		abort();
	size_t len = family == AF_INET6 ? 16 : 4;
	static const uint8_t zero[16];
	_cleanup_nladdr_ struct nl_addr *dst = nl_addr_build(family, zero, len);
	_cleanup_nladdr_ struct nl_addr *via = nl_addr_build(family, gw, len);
	if (!dst || !via)
		abort();
	nl_addr_set_prefixlen(dst, 0);
	rtnl_route_set_family(rt, (uint8_t)family);
	rtnl_route_set_table(rt, RT_TABLE_MAIN);
	rtnl_route_set_dst(rt, dst);
	rtnl_route_nh_set_ifindex(nh, ifindex);
	rtnl_route_nh_set_gateway(nh, via);
	rtnl_route_add_nexthop(rt, nh);
	struct nl_msg *m;
	if (rtnl_route_build_add_request(rt, NLM_F_CREATE | NLM_F_EXCL, &m) < 0)
		abort();
	rtnl_route_put(rt);
	req_add(q, m, false,
		xasprintf("adding the default %sroute via %s",
			  family == AF_INET6 ? "IPv6 " : "", ifname));
}

int link_veth_create(const char *host_name, const char *bridge, int nsfd,
		     const char *ifname, const struct link_addrs *addr,
		     const unsigned char *mac, bool default_route,
		     unsigned mtu, struct orch_err *e)
{
	_cleanup_sock_ struct nl_sock *sk = NULL;
	_cleanup_sock_ struct nl_sock *csk = NULL;
	int r = open_sock(&sk, e);
	if (r == 0)
		r = open_sock_in(nsfd, addr->v6.prefix != 0, &csk, e);
	if (r < 0)
		return r;
	int br = ifindex_of(sk, bridge);
	if (br < 0)
		return err_set(e, ENODEV,
			       "creating veth %s: bridge %s is missing",
			       host_name, bridge);
	_cleanup_link_ struct rtnl_link *veth = rtnl_link_veth_alloc();
	if (!veth)
		abort();
	rtnl_link_set_name(veth, host_name);
	rtnl_link_set_master(veth, br);
	rtnl_link_set_mtu(veth, mtu);
	_cleanup_link_ struct rtnl_link *peer = rtnl_link_veth_get_peer(veth);
	rtnl_link_set_name(peer, ifname);
	rtnl_link_set_mtu(peer, mtu);
	/* One queue each, asked for: a veth made with the default (one per
	 * CPU) is cut down to one after it is registered, and each end
	 * waits for an RCU grace period there. */
	rtnl_link_set_num_tx_queues(veth, 1);
	rtnl_link_set_num_rx_queues(veth, 1);
	rtnl_link_set_num_tx_queues(peer, 1);
	rtnl_link_set_num_rx_queues(peer, 1);
	/* The MAC follows the address (as docker's 02:42:a.b.c.d): a
	 * container recreated at the same address is reached at once,
	 * through neighbour entries the host and its peers still hold. */
	uint32_t low = addr->v4.prefix ? addr->v4.addr
				       : (uint32_t)addr->v6.addr[12] << 24 |
					     (uint32_t)addr->v6.addr[13] << 16 |
					     (uint32_t)addr->v6.addr[14] << 8 |
					     addr->v6.addr[15];
	unsigned char own[6] = {0x02,
				0x42,
				(unsigned char)(low >> 24),
				(unsigned char)(low >> 16),
				(unsigned char)(low >> 8),
				(unsigned char)low};
	_cleanup_nladdr_ struct nl_addr *lladdr =
	    nl_addr_build(AF_LLC, mac ? mac : own, sizeof(own));
	if (!lladdr)
		abort();
	rtnl_link_set_addr(peer, lladdr);
	/* Born in the container: never visible on the host under a name that
	 * could clash, and nothing to move afterwards. */
	rtnl_link_set_ns_fd(peer, nsfd);
	r = rtnl_link_add(sk, veth, NLM_F_CREATE | NLM_F_EXCL);
	if (r < 0)
		return nl_fail(e, r, "creating veth", host_name);
	struct link_reqs port = {0};
	port_up_req(&port, host_name, mtu);
	r = reqs_send(sk, &port, e);
	if (r < 0)
		goto undo;
	int idx = ifindex_of(csk, ifname);
	if (idx < 0) {
		r = err_set(e, ENODEV, "%s did not appear in the container",
			    ifname);
		goto undo;
	}
	/* The rest in one send: addresses, the link and lo (always index 1
	 * in a namespace) up, default routes. */
	struct link_reqs q = {0};
	addrs_req(&q, idx, addr, ifname);
	up_req(&q, idx, ifname);
	up_req(&q, 1, "lo");
	if (default_route && addr->v4.prefix) {
		uint32_t be = htonl(addr->gw4);
		route_default_req(&q, idx, AF_INET, &be, ifname);
	}
	if (default_route && addr->v6.prefix)
		route_default_req(&q, idx, AF_INET6, addr->gw6, ifname);
	r = reqs_send(csk, &q, e);
	if (r < 0)
		goto undo;
	return 0;
undo:
	link_delete(host_name, NULL);
	return r;
}

unsigned link_uplink_mtu(void)
{
	struct orch_err e;
	_cleanup_sock_ struct nl_sock *sk = NULL;
	if (open_sock(&sk, &e) < 0)
		return 1500;
	_cleanup_cache_ struct nl_cache *routes = NULL;
	_cleanup_cache_ struct nl_cache *links = NULL;
	if (rtnl_route_alloc_cache(sk, AF_INET, 0, &routes) < 0 ||
	    rtnl_link_alloc_cache(sk, AF_UNSPEC, &links) < 0)
		return 1500;
	for (struct nl_object *o = nl_cache_get_first(routes); o;
	     o = nl_cache_get_next(o)) {
		struct rtnl_route *rt = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(rt);
		if (rtnl_route_get_table(rt) != RT_TABLE_MAIN ||
		    (dst && nl_addr_get_prefixlen(dst) != 0) ||
		    rtnl_route_get_nnexthops(rt) < 1)
			continue;
		int idx =
		    rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(rt, 0));
		struct rtnl_link *l = rtnl_link_get(links, idx);
		if (!l)
			continue;
		unsigned mtu = rtnl_link_get_mtu(l);
		rtnl_link_put(l);
		if (mtu >= 576)
			return mtu;
	}
	return 1500;
}

/* Calls take(addr, prefix) for each route of family but default routes
 * and routes on netd's own bridges. */
static int host_routes(int family,
		       void (*take)(const uint8_t *a, int prefix, void *ctx),
		       void *ctx, struct orch_err *e)
{
	_cleanup_sock_ struct nl_sock *sk = NULL;
	int r = open_sock(&sk, e);
	if (r < 0)
		return r;
	_cleanup_cache_ struct nl_cache *routes = NULL;
	_cleanup_cache_ struct nl_cache *links = NULL;
	if ((r = rtnl_route_alloc_cache(sk, family, 0, &routes)) < 0 ||
	    (r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links)) < 0)
		return nl_fail(e, r, "listing", "routes");
	unsigned len = family == AF_INET6 ? 16 : 4;
	for (struct nl_object *o = nl_cache_get_first(routes); o;
	     o = nl_cache_get_next(o)) {
		struct rtnl_route *rt = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(rt);
		if (!dst || nl_addr_get_prefixlen(dst) == 0 ||
		    nl_addr_get_len(dst) != len)
			continue;
		if (rtnl_route_get_nnexthops(rt) > 0) {
			int idx = rtnl_route_nh_get_ifindex(
			    rtnl_route_nexthop_n(rt, 0));
			struct rtnl_link *l = rtnl_link_get(links, idx);
			bool ours = l && rtnl_link_get_name(l) &&
				    startswith(rtnl_link_get_name(l),
					       NETD_BRIDGE_PREFIX);
			if (l)
				rtnl_link_put(l);
			if (ours)
				continue;
		}
		take(nl_addr_get_binary_addr(dst),
		     (int)nl_addr_get_prefixlen(dst), ctx);
	}
	return 0;
}

struct cidrs {
	void *v;
	size_t n, cap, size;
};

static void *cidrs_next(struct cidrs *c)
{
	if (c->n == c->cap)
		c->v = xrealloc(c->v, (c->cap = c->cap * 2 + 16) * c->size);
	return (char *)c->v + c->n++ * c->size;
}

static void take4(const uint8_t *a, int p, void *ctx)
{
	uint32_t be;
	memcpy(&be, a, 4);
	uint32_t h = ntohl(be);
	*(struct cidr *)cidrs_next(ctx) =
	    (struct cidr){p ? h & (uint32_t)(0xffffffffu << (32 - p)) : 0, p};
}

static void take6(const uint8_t *a, int p, void *ctx)
{
	struct cidr6 *c = cidrs_next(ctx);
	memset(c, 0, sizeof(*c));
	c->prefix = p;
	for (int i = 0; i < p; i++)
		c->addr[i / 8] |= a[i / 8] & (0x80 >> (i % 8));
}

int link_host_cidrs(struct cidr **out, size_t *n, struct orch_err *e)
{
	struct cidrs c = {.size = sizeof(**out)};
	int r = host_routes(AF_INET, take4, &c, e);
	*out = c.v ? c.v : xcalloc(1, c.size);
	*n = c.n;
	return r;
}

int link_host_cidrs6(struct cidr6 **out, size_t *n, struct orch_err *e)
{
	struct cidrs c = {.size = sizeof(**out)};
	int r = host_routes(AF_INET6, take6, &c, e);
	*out = c.v ? c.v : xcalloc(1, c.size);
	*n = c.n;
	return r;
}
