/* netd's endpoint operations: attaching a container's network namespace
 * to a network (its veth, address, routes and DNS name) and detaching
 * it, and the link-only pairs a project sets. */
#include "netd/netd-int.h"

#include <fcntl.h>
#include <jansson.h>
#include <linux/nsfs.h>
#include <malloc.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

/* ---- endpoints ------------------------------------------------------- */

/* 0 when the network namespace nsfd belongs to a user namespace that uid
 * made (one it may do anything in anyway); a user may not hand netd the
 * namespace of another user's container, or one of the host's. */
static int netns_owned_by(int nsfd, uid_t uid, struct orch_err *e)
{
	_cleanup_close_ int userns = ioctl(nsfd, NS_GET_USERNS);
	if (userns < 0)
		return err_sys(e, errno,
			       "finding the owner of the network namespace "
			       "passed");
	uid_t owner = (uid_t)-1;
	if (ioctl(userns, NS_GET_OWNER_UID, &owner) < 0)
		return err_sys(e, errno,
			       "finding the owner of the network namespace "
			       "passed");
	if (owner != uid) {
		log_warn("uid %u passed a network namespace owned by uid %u: "
			 "refused",
			 (unsigned)uid, (unsigned)owner);
		return err_set(e, EPERM,
			       "the network namespace passed belongs to uid %u, "
			       "not to you (uid %u): a user attaches only the "
			       "namespaces of a user namespace they made",
			       (unsigned)owner, (unsigned)uid);
	}
	return 0;
}

/* The namespace to attach: the fd passed along, or (root only, for tools
 * speaking the protocol by hand) the path.  Never netd's own. */
static int attach_netns(const struct call *c, int *out)
{
	int fd = -1;
	const char *path = call_str(c, "netns_path");
	if (c->fd >= 0) {
		fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
	} else if (c->uid == 0 && path) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
	} else if (c->uid == 0 && call_int(c, "pid") > 0) {
		_cleanup_free_ char *p =
		    xasprintf("/proc/%ld/ns/net", call_int(c, "pid"));
		fd = open(p, O_RDONLY | O_CLOEXEC);
	} else {
		return err_set(c->e, EINVAL,
			       "no network namespace passed (send its fd)");
	}
	if (fd < 0)
		return err_sys(c->e, errno,
			       "opening the container's network "
			       "namespace");
	int r = netns_other(fd);
	if (r == -EINVAL || r == -EPERM) {
		close(fd);
		return r == -EINVAL
			   ? err_set(c->e, EINVAL,
				     "the fd passed is not a network "
				     "namespace")
			   : err_set(c->e, EPERM,
				     "refusing to attach the host's own "
				     "network namespace");
	}
	r = c->uid == 0 ? 0 : netns_owned_by(fd, c->uid, c->e);
	if (r < 0) {
		close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

static char *next_ifname(struct server *s, const char *cid)
{
	for (unsigned k = 0;; k++) {
		char name[16];
		snprintf(name, sizeof(name), "eth%u", k);
		bool used = false;
		for (size_t i = 0; i < s->st.n_nets && !used; i++) {
			ssize_t j = state_endpoint_find(&s->st.nets[i], cid);
			used = j >= 0 &&
			       streq(s->st.nets[i].endpoints[j].ifname, name);
		}
		if (!used)
			return xstrdup(name);
	}
}

static bool has_default_route(struct server *s, const char *cid)
{
	for (size_t i = 0; i < s->st.n_nets; i++) {
		ssize_t j = state_endpoint_find(&s->st.nets[i], cid);
		if (j >= 0 && s->st.nets[i].endpoints[j].default_route)
			return true;
	}
	return false;
}

static int pick_address(struct netd_network *n, const struct call *c,
			uint32_t *out)
{
	struct cidr subnet;
	uint32_t gw;
	if (ipam_parse_cidr(n->subnet, &subnet, c->e) < 0 ||
	    ipam_parse_addr(n->gateway, &gw) < 0)
		return err_set(c->e, EINVAL, "network %s: corrupt subnet",
			       n->name);
	_cleanup_free_ uint32_t *used =
	    xcalloc(n->n_endpoints + 1, sizeof(uint32_t));
	used[0] = gw;
	for (size_t i = 0; i < n->n_endpoints; i++)
		ipam_parse_addr(n->endpoints[i].address, &used[i + 1]);
	const char *want = call_str(c, "address");
	if (!want) {
		if (ipam_lease_next(subnet, used, n->n_endpoints + 1, out) < 0)
			return err_set(c->e, ENOSPC, "network %s is full (%s)",
				       n->name, n->subnet);
		return 0;
	}
	if (ipam_parse_addr(want, out) < 0 || !ipam_host_valid(subnet, *out))
		return err_set(c->e, EINVAL,
			       "address %s is not a host address of %s", want,
			       n->subnet);
	if (*out == gw)
		return err_set(c->e, EADDRINUSE,
			       "address %s is the gateway of network %s", want,
			       n->name);
	for (size_t i = 0; i < n->n_endpoints; i++)
		if (used[i + 1] == *out)
			return err_set(c->e, EADDRINUSE,
				       "address %s is already used by %s", want,
				       n->endpoints[i].container_name);
	return 0;
}
/* The endpoint of n whose MAC is mac (asked for, or following its IPv4
 * address as docker's 02:42:a.b.c.d), or NULL. */
static const struct netd_endpoint *mac_holder(const struct netd_network *n,
					      const unsigned char mac[6])
{
	for (size_t i = 0; i < n->n_endpoints; i++) {
		const struct netd_endpoint *o = &n->endpoints[i];
		unsigned char other[6] = {0x02, 0x42};
		uint32_t v4 = 0;
		bool known = o->mac ? mac_parse(o->mac, other)
				    : ipam_parse_addr(o->address, &v4) == 0;
		if (!o->mac)
			for (int b = 0; b < 4; b++)
				other[2 + b] = (unsigned char)(v4 >> (24 - 8 * b));
		if (known && !memcmp(mac, other, 6))
			return o;
	}
	return NULL;
}


int op_endpoint_attach(struct server *s, struct call *c, json_t **res)
{
	const char *cid = call_str(c, "container_id");
	struct netd_network *n = server_find_net(s, call_str(c, "network"),
						 c->uid, "attaching to", c->e);
	if (!n)
		return -c->e->code;
	ssize_t have = state_endpoint_find(n, cid);
	if (have >= 0) {
		*res = netd_endpoint_to_json(&n->endpoints[have]);
		return 0;
	}
	_cleanup_strv_ char **dns = arg_strv(c, "dns");
	for (size_t k = 0; dns && dns[k]; k++) {
		uint32_t a;
		uint8_t a6[16];
		if (ipam_parse_addr(dns[k], &a) < 0 &&
		    ipam6_parse_addr(dns[k], a6) < 0)
			return err_set(c->e, EINVAL,
				       "attaching %s to %s: dns server \"%s\" "
				       "is not an IP address",
				       cid, n->name, dns[k]);
	}
	/* A MAC asked for: a unicast one, not another endpoint's here. */
	const char *mac_s = call_str(c, "mac_address");
	unsigned char mac[6];
	if (mac_s && !mac_parse(mac_s, mac))
		return err_set(c->e, EINVAL,
			       "attaching %s to %s: mac_address \"%s\" is not "
			       "a unicast MAC address",
			       cid, n->name, mac_s);
	const struct netd_endpoint *holder = mac_s ? mac_holder(n, mac) : NULL;
	if (holder)
		return err_set(c->e, EADDRINUSE,
			       "attaching %s to %s: mac_address %s is already "
			       "used by %s",
			       cid, n->name, mac_s, holder->container_name);
	int r = server_quota(s, c->uid, 1, 1, c->e);
	if (r < 0)
		return r;
	struct link_addrs a;
	if (net_gateways(n, &a, c->e) < 0 ||
	    (has_str(n->subnet) && pick_address(n, c, &a.v4.addr) < 0) ||
	    (has_str(n->subnet6) && net6_lease(n, c, a.v6.addr) < 0))
		return err_wrap(c->e, "attaching %s to %s", cid, n->name);
	_cleanup_close_ int nsfd = -1;
	r = attach_netns(c, &nsfd);
	if (r < 0)
		return err_wrap(c->e, "attaching %s to %s", cid, n->name);

	struct netd_endpoint ep = {0};
	char abuf[16], a6buf[46], hash[17];
	_cleanup_free_ char *key = xasprintf("%s/%s", n->id, cid);
	link_name_hash(key, hash);
	ipam_format_addr(a.v4.addr, abuf);
	ipam6_format_addr(a.v6.addr, a6buf);
	ep.container_id = xstrdup(cid);
	ep.container_name = xstrdup(call_str(c, "container_name") ?: cid);
	ep.service = xstrdup(call_str(c, "service"));
	ep.aliases = arg_strv(c, "aliases");
	ep.links = arg_strv(c, "links");
	ep.dns = move_ptr(dns);
	ep.address = xstrdup(a.v4.prefix ? abuf : "");
	ep.prefix = a.v4.prefix;
	ep.gateway = xstrdup(n->gateway);
	ep.address6 = xstrdup(a.v6.prefix ? a6buf : "");
	ep.prefix6 = a.v6.prefix;
	ep.gateway6 = xstrdup(n->gateway6);
	/* The MAC that follows the address, unless an endpoint asked for
	 * that one: then one drawn at random (locally administered). */
	char drawn[18];
	if (!mac_s && a.v4.prefix) {
		for (int b = 0; b < 4; b++)
			mac[2 + b] = (unsigned char)(a.v4.addr >> (24 - 8 * b));
		mac[0] = 0x02;
		mac[1] = 0x42;
		while (mac_holder(n, mac)) {
			if (getrandom(mac, sizeof(mac), 0) != sizeof(mac))
				return err_sys(c->e, errno, "drawing a MAC");
			mac[0] = (unsigned char)((mac[0] & 0xfc) | 0x02);
			snprintf(drawn, sizeof(drawn),
				 "%02x:%02x:%02x:%02x:%02x:%02x", mac[0],
				 mac[1], mac[2], mac[3], mac[4], mac[5]);
			mac_s = drawn;
		}
	}
	ep.mac = mac_s ? xstrdup(mac_s) : NULL;
	ep.named_only = arg_bool(c, "named_only");
	ep.ifname = next_ifname(s, cid);
	ep.host_ifname = xasprintf(NETD_VETH_PREFIX "%.12s", hash);
	ep.default_route = !n->internal && !has_default_route(s, cid);

	crash_point(s, 1);
	r = link_veth_create(ep.host_ifname, n->bridge, nsfd, ep.ifname, &a,
			     mac_s ? mac : NULL, ep.default_route, s->mtu,
			     c->e);
	if (r < 0) {
		netd_endpoint_clear(&ep);
		return err_wrap(c->e, "attaching %s to %s", cid, n->name);
	}
	crash_point(s, 2);
	n->endpoints =
	    xrealloc(n->endpoints, (n->n_endpoints + 1) * sizeof(ep));
	n->endpoints[n->n_endpoints++] = ep;
	struct nlb pairs = {0};
	struct strbuf script;
	sb_init(&script);
	fw_gen_endpoint_add(n, n->n_endpoints - 1, &pairs, &script);
	r = server_fw_sync(s, &pairs, &script, c->e);
	crash_point(s, 3);
	if (r == 0)
		r = server_journal(s, n, n->n_endpoints - 1, NULL, c->e);
	if (r < 0) {
		n->n_endpoints--;
		link_delete(ep.host_ifname, NULL);
		netd_endpoint_clear(&n->endpoints[n->n_endpoints]);
		return err_wrap(c->e, "attaching %s to %s", cid, n->name);
	}
	crash_point(s, 4);
	log_info("attached %s to %s as %s (%s%s%s)", ep.container_name,
		 n->name, ep.ifname, ep.address,
		 *ep.address && *ep.address6 ? " " : "", ep.address6);
	*res = netd_endpoint_to_json(&n->endpoints[n->n_endpoints - 1]);
	return 0;
}

int op_endpoint_detach(struct server *s, struct call *c, json_t **res)
{
	const char *cid = call_str(c, "container_id");
	struct netd_network *n = state_find(&s->st, call_str(c, "network"));
	ssize_t i = n ? state_endpoint_find(n, cid) : -1;
	if (i < 0) {
		*res = json_pack("{s:b}", "removed", 0);
		return 0;
	}
	int r = server_authorize(n, c->uid, "detaching from", c->e);
	if (r < 0)
		return r;
	struct nlb pairs = {0};
	struct strbuf script;
	sb_init(&script);
	fw_gen_endpoint_remove(n, (size_t)i, &pairs, &script);
	struct netd_endpoint ep;
	state_endpoint_remove(n, (size_t)i, &ep);
	r = server_journal(s, n, 0, cid, c->e);
	if (r == 0 && server_fw_sync(s, &pairs, &script, c->e) < 0)
		log_warn("detaching %s: %s", cid, c->e->msg);
	nlb_free(&pairs);
	sb_free(&script);
	if (r == 0) {
		server_unlink_later(s, ep.host_ifname);
		log_info("detached %s from %s", ep.container_name, n->name);
	}
	netd_endpoint_clear(&ep);
	if (r < 0)
		return err_wrap(c->e, "detaching %s from %s", cid, n->name);
	*res = json_pack("{s:b}", "removed", 1);
	return 0;
}

int op_links_set(struct server *s, struct call *c, json_t **res)
{
	struct netd_network *n = server_find_net(
	    s, call_str(c, "network"), c->uid, "setting links of", c->e);
	if (!n)
		return -c->e->code;
	struct nlb before = {0};
	fw_gen_links(n, &before);
	json_t *pairs = json_object_get(c->args, "pairs");
	size_t cnt = json_array_size(pairs);
	struct netd_pair *v = xcalloc(cnt + 1, sizeof(*v));
	for (size_t i = 0; i < cnt; i++) {
		json_t *p = json_array_get(pairs, i);
		v[i].from =
		    xstrdup(json_string_value(json_object_get(p, "from")));
		v[i].to = xstrdup(json_string_value(json_object_get(p, "to")));
	}
	for (size_t i = 0; i < n->n_pairs; i++) {
		free(n->pairs[i].from);
		free(n->pairs[i].to);
	}
	free(n->pairs);
	n->pairs = v;
	n->n_pairs = cnt;
	struct nlb after = {0};
	fw_gen_links(n, &after);
	/* The same elements (a network without endpoints, an up that
	 * changes no link): the sets hold them already. */
	bool same = before.msgs.len == after.msgs.len &&
		    memcmp(before.msgs.buf, after.msgs.buf, after.msgs.len) == 0;
	nlb_free(&before);
	int r = 0;
	if (same)
		nlb_free(&after);
	else
		r = server_fw_sync(s, &after, NULL, c->e);
	if (r == 0)
		r = server_save(s, c->e);
	if (r < 0)
		return err_wrap(c->e, "setting links of %s", n->name);
	*res = json_object();
	return 0;
}
