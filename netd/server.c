/* The daemon: reconciles its state with the kernel at start, then serves
 * requests one at a time (so two projects never race for a subnet),
 * authorizing each by the peer's uid.
 *
 * Crash safety: additions change the kernel first and record the state
 * after; removals record the state first, and finish deleting their links
 * after the reply (before the next request is read).  At start, links with netd's
 * prefixes that the state does not know are deleted, networks whose bridge
 * is missing get it back, endpoints whose veth is gone are dropped, and
 * the nft table is rebuilt from the state in one transaction.  So a
 * kill -9 anywhere leaves nothing behind and loses nothing recorded. */
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
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#define MAX_CLIENTS 1024

const char *call_str(const struct call *c, const char *key)
{
	const char *s = json_string_value(json_object_get(c->args, key));
	return s && *s ? s : NULL;
}

long call_int(const struct call *c, const char *key)
{
	return (long)json_integer_value(json_object_get(c->args, key));
}

bool arg_bool(const struct call *c, const char *key)
{
	return json_is_true(json_object_get(c->args, key));
}

char **arg_strv(const struct call *c, const char *key)
{
	char **v = xcalloc(1, sizeof(char *));
	size_t i;
	json_t *item;
	json_array_foreach(json_object_get(c->args, key), i, item)
	    strv_push(&v, json_string_value(item));
	return v;
}

/* Test hook: kill -9 ourselves between two steps of an attach. */
void crash_point(struct server *s, int step)
{
	if (s->crash_at == step)
		raise(SIGKILL);
}

/* Writes the state; the ::1 relays follow it. */
int server_save(struct server *s, struct orch_err *e)
{
	int r = state_save(s->state_path, &s->st, e);
	if (r == 0 && s->relay)
		relay_sync(s->relay, &s->st);
	return r;
}

/* Records an attach (or a detach) in the journal; the ::1 relays follow. */
int server_journal(struct server *s, struct netd_network *n, size_t i,
		   const char *detach, struct orch_err *e)
{
	int r = state_journal(s->state_path, &s->st, n, i, detach, e);
	if (r == 0 && s->relay)
		relay_sync(s->relay, &s->st);
	return r;
}

/* Applies incremental changes; if the kernel disagrees with them, the
 * table is rebuilt from the state instead (same end result). */
int server_fw_sync(struct server *s, struct nlb *pairs,
		   struct strbuf *script, struct orch_err *e)
{
	int r = 0;
	if (pairs) {
		r = nftset_commit(pairs, e);
		nlb_free(pairs);
	}
	if (script) {
		if (r == 0)
			r = fw_apply(script->buf, e);
		sb_free(script);
	}
	if (r == 0)
		return 0;
	log_warn("%s; rebuilding the table", e->msg);
	struct strbuf full;
	sb_init(&full);
	if (s->st.n_nets)
		fw_gen_table(s->st.nets, s->st.n_nets, &full);
	else
		fw_gen_table_delete(&full);
	r = fw_apply(full.buf, e);
	sb_free(&full);
	return r;
}

/* ---- authorization and quotas ----------------------------------------- */

int server_authorize(const struct netd_network *n, uid_t uid, const char *what,
		     struct orch_err *e)
{
	if (uid == 0 || uid == n->owner)
		return 0;
	return err_set(
	    e, EPERM,
	    "%s network %s: permission denied (it belongs to uid %u, "
	    "you are uid %u)",
	    what, n->name, (unsigned)n->owner, (unsigned)uid);
}

struct netd_network *server_find_net(struct server *s, const char *name,
				     uid_t uid, const char *what,
				     struct orch_err *e)
{
	struct netd_network *n = state_find(&s->st, name);
	if (!n) {
		err_set(e, ENOENT, "%s network %s: no such network", what,
			name);
		return NULL;
	}
	if (server_authorize(n, uid, what, e) < 0)
		return NULL;
	return n;
}

static void usage_of(struct server *s, uid_t uid, unsigned *nets, unsigned *eps,
		     unsigned *ports)
{
	*nets = *eps = *ports = 0;
	for (size_t i = 0; i < s->st.n_nets; i++) {
		if (s->st.nets[i].owner != uid)
			continue;
		(*nets)++;
		*eps += (unsigned)s->st.nets[i].n_endpoints;
		for (size_t j = 0; j < s->st.nets[i].n_ports; j++)
			*ports += s->st.nets[i].ports[j].count;
	}
}

int server_quota(struct server *s, uid_t uid, int which, unsigned more,
		 struct orch_err *e)
{
	if (uid == 0)
		return 0;
	unsigned u[3], lim[3] = {s->cfg.quota_networks, s->cfg.quota_endpoints,
				 s->cfg.quota_ports};
	static const char *const names[] = {"networks", "endpoints",
					    "published ports"};
	usage_of(s, uid, &u[0], &u[1], &u[2]);
	if (u[which] + more > lim[which])
		return err_set(
		    e, EDQUOT,
		    "uid %u would exceed its quota of %u %s (has %u)",
		    (unsigned)uid, lim[which], names[which], u[which]);
	return 0;
}

/* ---- networks -------------------------------------------------------- */

static json_t *net_json(const struct netd_network *n)
{
	return netd_network_to_json(n);
}

static bool same_settings(const struct netd_network *n, const struct call *c)
{
	const char *subnet = call_str(c, "subnet");
	const char *gw = call_str(c, "gateway");
	const char *subnet6 = call_str(c, "subnet6");
	const char *gw6 = call_str(c, "gateway6");
	bool v6 = arg_bool(c, "ipv6") || subnet6 || gw6;
	return n->internal == arg_bool(c, "internal") &&
	       n->icc == arg_bool(c, "icc") &&
	       (!subnet || streq(n->subnet, subnet)) &&
	       (!gw || streq(n->gateway, gw)) &&
	       has_str(n->subnet6) == v6 &&
	       has_str(n->subnet) == !arg_bool(c, "no_ipv4") &&
	       (!subnet6 || streq(n->subnet6, subnet6)) &&
	       (!gw6 || streq(n->gateway6, gw6));
}

/* The requested labels, as a set, are the network's. */
static bool same_labels(const struct netd_network *n, const struct call *c)
{
	_cleanup_strv_ char **want = arg_strv(c, "labels");
	for (size_t i = 0; want[i]; i++)
		if (!strv_contains(n->labels, want[i]))
			return false;
	for (size_t i = 0; n->labels && n->labels[i]; i++)
		if (!strv_contains(want, n->labels[i]))
			return false;
	return true;
}

/* "uid 1001 (alice)" or "uid 1001". */
static char *uid_text(uid_t uid)
{
	char buf[1024];
	struct passwd pw, *found = NULL;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found)
		return xasprintf("uid %u (%s)", (unsigned)uid, pw.pw_name);
	return xasprintf("uid %u", (unsigned)uid);
}

/* An existing network is handed back only to the uid that created it (root
 * included: root never joins a user's network), and only when the request
 * describes that same network: project, labels and options. */
static int existing_network(const struct netd_network *old,
			    const struct call *c, json_t **res)
{
	_cleanup_free_ char *owner = uid_text(old->owner);
	const char *project = call_str(c, "project");
	if (old->owner != c->uid)
		return err_set(c->e, EPERM,
			       "network %s already exists and belongs to %s "
			       "(project %s); it is not yours to use",
			       old->name, owner, old->project);
	if (!streq(old->project, project ? project : ""))
		return err_set(c->e, EEXIST,
			       "network %s already exists for project %s "
			       "(owner %s), not for project %s",
			       old->name, old->project, owner,
			       project ? project : "");
	if (!same_labels(old, c))
		return err_set(c->e, EEXIST,
			       "network %s already exists with other labels "
			       "(owner %s, project %s)",
			       old->name, owner, old->project);
	if (!same_settings(old, c))
		return err_set(c->e, EEXIST,
			       "network %s already exists with other "
			       "settings (owner %s, project %s, subnet %s)",
			       old->name, owner, old->project, old->subnet);
	*res = net_json(old);
	return 0;
}

static int pick_subnet(struct server *s, const struct call *c, struct cidr *out)
{
	const char *want = call_str(c, "subnet");
	_cleanup_free_ struct cidr *host = NULL;
	size_t n_host = 0;
	int r = link_host_cidrs(&host, &n_host, c->e);
	if (r < 0)
		return r;
	if (want) {
		r = ipam_parse_cidr(want, out, c->e);
		if (r < 0)
			return r;
		if (out->prefix > 30)
			return err_set(c->e, EINVAL,
				       "subnet %s is too small for a network",
				       want);
		r = policy_subnet_check(&s->cfg, c->uid, *out, host, n_host,
					c->e);
		if (r < 0)
			return r;
		for (size_t i = 0; i < s->st.n_nets; i++) {
			struct cidr o;
			if (ipam_parse_cidr(s->st.nets[i].subnet, &o, NULL) ==
				0 &&
			    ipam_overlap(o, *out))
				return err_set(
				    c->e, EEXIST,
				    "subnet %s overlaps %s of network "
				    "%s (project %s)",
				    want, s->st.nets[i].subnet,
				    s->st.nets[i].name, s->st.nets[i].project);
		}
		return 0;
	}
	size_t n_taken = n_host + s->st.n_nets;
	_cleanup_free_ struct cidr *taken =
	    xcalloc(n_taken + 1, sizeof(*taken));
	memcpy(taken, host, n_host * sizeof(*host));
	size_t k = n_host;
	for (size_t i = 0; i < s->st.n_nets; i++)
		if (ipam_parse_cidr(s->st.nets[i].subnet, &taken[k], NULL) == 0)
			k++;
	r = ipam_subnet_next(s->cfg.pool, s->cfg.subnet_prefix, taken, k, out);
	if (r < 0) {
		_cleanup_free_ char *p = ipam_format_cidr(s->cfg.pool);
		return err_set(c->e, ENOSPC,
			       "no free /%d subnet left in the pool %s",
			       s->cfg.subnet_prefix, p);
	}
	return 0;
}

/* A bridge's MAC: locally administered, unicast, made from the network's
 * id so that it stays the same for the network's life. */
static void bridge_mac(const char *id, char mac[18])
{
	char hash[17];
	link_name_hash(id, hash);
	snprintf(mac, 18, "02:%.2s:%.2s:%.2s:%.2s:%.2s", hash, hash + 2,
		 hash + 4, hash + 6, hash + 8);
}

static int op_network_create(struct server *s, struct call *c, json_t **res)
{
	const char *name = call_str(c, "name");
	struct netd_network *old = state_find(&s->st, name);
	if (old)
		return existing_network(old, c, res);
	int r = server_quota(s, c->uid, 0, 1, c->e);
	if (r < 0)
		return r;
	/* Its gateways and their prefixes (a prefix 0: that family is off). */
	struct link_addrs gw = {0};
	bool v4 = !arg_bool(c, "no_ipv4");
	bool v6 = arg_bool(c, "ipv6") || call_str(c, "subnet6") ||
		  call_str(c, "gateway6");
	if (!v4 && !v6)
		return err_set(c->e, EINVAL,
			       "creating network %s: IPv4 off and IPv6 not on "
			       "leaves it no address",
			       name);
	struct cidr subnet = {0};
	if (v4 && pick_subnet(s, c, &subnet) < 0)
		return err_wrap(c->e, "creating network %s", name);
	const char *gwarg = call_str(c, "gateway");
	if (v4 && gwarg) {
		if (ipam_parse_addr(gwarg, &gw.gw4) < 0 ||
		    !ipam_host_valid(subnet, gw.gw4))
			return err_set(
			    c->e, EINVAL,
			    "creating network %s: gateway %s is not a "
			    "host address of its subnet",
			    name, gwarg);
	} else if (v4) {
		gw.gw4 = subnet.addr + 1;
	}
	gw.v4 = (struct cidr){gw.gw4, subnet.prefix};
	struct cidr6 subnet6 = {{0}, 0};
	if (v6 && net6_pick(s, c, &subnet6, gw.gw6) < 0)
		return err_wrap(c->e, "creating network %s", name);
	gw.v6.prefix = subnet6.prefix;
	memcpy(gw.v6.addr, gw.gw6, 16);
	if (arg_bool(c, "check")) {
		*res = json_pack("{s:b}", "ok", 1);
		return 0;
	}
	struct netd_network n = {0};
	char id[65], gwbuf[16], gw6buf[46], mac[18];
	random_id(id);
	ipam_format_addr(gw.gw4, gwbuf);
	ipam6_format_addr(gw.gw6, gw6buf);
	bridge_mac(id, mac);
	n.id = xstrdup(id);
	n.name = xstrdup(name);
	n.project = xstrdup(call_str(c, "project"));
	n.bridge = xasprintf(NETD_BRIDGE_PREFIX "%.12s", id);
	n.subnet = v4 ? ipam_format_cidr(subnet) : xstrdup("");
	n.gateway = xstrdup(v4 ? gwbuf : "");
	n.subnet6 = v6 ? ipam6_format_cidr(&subnet6) : xstrdup("");
	n.gateway6 = xstrdup(v6 ? gw6buf : "");
	n.internal = arg_bool(c, "internal");
	n.icc = arg_bool(c, "icc");
	n.owner = c->uid;
	n.labels = arg_strv(c, "labels");
	n.endpoints = xcalloc(1, sizeof(*n.endpoints));
	n.ports = xcalloc(1, sizeof(*n.ports));
	n.pairs = xcalloc(1, sizeof(*n.pairs));

	r = host_settings_on(s, v6, c->e);
	if (r < 0)
		goto fail;
	r = link_bridge_create(n.bridge, mac, &gw, s->mtu, c->e);
	if (r < 0)
		goto fail_link;
	s->st.nets = xrealloc(s->st.nets, (s->st.n_nets + 1) * sizeof(n));
	s->st.nets[s->st.n_nets++] = n;
	struct netd_network *np = &s->st.nets[s->st.n_nets - 1];
	struct strbuf script;
	sb_init(&script);
	if (s->st.n_nets == 1)
		fw_gen_table(s->st.nets, s->st.n_nets, &script);
	else
		fw_gen_network_add(np, &script);
	r = server_fw_sync(s, NULL, &script, c->e);
	if (r == 0)
		r = server_save(s, c->e);
	if (r < 0) {
		s->st.n_nets--;
		goto fail_link;
	}
	if (dns_network_add(s->dns, np, c->e) < 0)
		log_warn("%s", c->e->msg);
	log_info("created network %s (%s%s%s, bridge %s)", np->name,
		 np->subnet, *np->subnet && *np->subnet6 ? " " : "",
		 np->subnet6, np->bridge);
	*res = net_json(np);
	return 0;
fail_link:
	link_delete(n.bridge, NULL);
fail:
	netd_network_clear(&n);
	return err_wrap(c->e, "creating network %s", name);
}

/* Removes the networks whose doomed[i] is set: state first, then rules,
 * each in one step for all of them; their links go after the reply. */
static int networks_remove(struct server *s, const bool *doomed,
			   struct orch_err *e)
{
	size_t n_all = s->st.n_nets, n_keep = 0, n_gone = 0;
	struct netd_network *all = s->st.nets;
	struct netd_network *keep = xcalloc(n_all + 1, sizeof(*keep));
	struct netd_network *gone = xcalloc(n_all + 1, sizeof(*gone));
	for (size_t i = 0; i < n_all; i++) {
		if (doomed[i])
			gone[n_gone++] = all[i];
		else
			keep[n_keep++] = all[i];
	}
	s->st.nets = keep;
	s->st.n_nets = n_keep;
	int r = n_gone ? server_save(s, e) : 0;
	if (r < 0 || !n_gone) {
		/* Put it back: nothing was changed yet. */
		s->st.nets = all;
		s->st.n_nets = n_all;
		free(keep);
		free(gone);
		return r;
	}
	free(all);
	struct strbuf script;
	sb_init(&script);
	if (n_keep == 0)
		fw_gen_table_delete(&script);
	for (size_t k = 0; k < n_gone; k++) {
		dns_network_remove(s->dns, &gone[k]);
		if (n_keep)
			fw_gen_network_remove(&gone[k], &script);
		for (size_t q = 0; q < gone[k].n_endpoints; q++)
			server_unlink_later(s, gone[k].endpoints[q].host_ifname);
		server_unlink_later(s, gone[k].bridge);
	}
	if (server_fw_sync(s, NULL, &script, e) < 0)
		log_warn("removing networks: %s", e->msg);
	if (n_keep == 0) {
		host_settings_restore(s);
		if (server_save(s, e) < 0)
			log_warn("%s", e->msg);
	}
	for (size_t k = 0; k < n_gone; k++) {
		log_info("removed network %s", gone[k].name);
		netd_network_clear(&gone[k]);
	}
	free(gone);
	return 0;
}

/* {"name"} -> {"removed": bool}; {"names": [...]} -> {"removed": [the
 * names that existed]}.  Every network is authorized before any goes. */
static int op_network_remove(struct server *s, struct call *c, json_t **res)
{
	json_t *names = json_object_get(c->args, "names");
	const char *one = call_str(c, "name"); /* the schema wants one */
	_cleanup_free_ bool *doomed = xcalloc(s->st.n_nets + 1, sizeof(bool));
	json_t *removed = json_array();
	for (size_t k = 0; one ? k < 1 : k < json_array_size(names); k++) {
		const char *name =
		    one ?: json_string_value(json_array_get(names, k));
		struct netd_network *n = state_find(&s->st, name);
		if (!n || doomed[n - s->st.nets])
			continue;
		int r = server_authorize(n, c->uid, "removing", c->e);
		if (r < 0) {
			json_decref(removed);
			return r;
		}
		doomed[n - s->st.nets] = true;
		json_array_append_new(removed, json_string(name));
	}
	if (networks_remove(s, doomed, c->e) < 0) {
		json_decref(removed);
		return one ? err_wrap(c->e, "removing network %s", one)
			   : err_wrap(c->e, "removing networks");
	}
	if (one) {
		*res = json_pack("{s:b}", "removed", json_array_size(removed));
		json_decref(removed);
	} else {
		*res = json_pack("{s:o}", "removed", removed);
	}
	return 0;
}

static int op_network_inspect(struct server *s, struct call *c, json_t **res)
{
	struct netd_network *n =
	    server_find_net(s, call_str(c, "name"), c->uid, "inspecting", c->e);
	if (!n)
		return -c->e->code;
	*res = net_json(n);
	return 0;
}

static bool listed(const struct netd_network *n, const struct call *c)
{
	const char *project = call_str(c, "project");
	return (c->uid == 0 || n->owner == c->uid) &&
	       (!project || streq(n->project, project));
}

static int op_network_list(struct server *s, struct call *c, json_t **res)
{
	json_t *a = json_array();
	for (size_t i = 0; i < s->st.n_nets; i++)
		if (listed(&s->st.nets[i], c))
			json_array_append_new(a, net_json(&s->st.nets[i]));
	*res = json_pack("{s:o}", "networks", a);
	return 0;
}

/* Endpoints whose container is gone: its namespace died with it and took
 * the veth pair along. */
static bool drop_dead_endpoints(struct netd_network *n)
{
	bool changed = false;
	for (size_t i = 0; i < n->n_endpoints;) {
		struct netd_endpoint *ep = &n->endpoints[i];
		if (link_exists(ep->host_ifname)) {
			i++;
			continue;
		}
		log_info("dropping endpoint %s of %s: its veth %s is gone",
			 ep->container_name, n->name, ep->host_ifname);
		struct netd_endpoint gone;
		state_endpoint_remove(n, i, &gone);
		netd_endpoint_clear(&gone);
		changed = true;
	}
	return changed;
}

static int op_network_prune(struct server *s, struct call *c, json_t **res)
{
	json_t *removed = json_array();
	bool changed = false;
	for (size_t i = 0; i < s->st.n_nets; i++)
		if (listed(&s->st.nets[i], c))
			changed |= drop_dead_endpoints(&s->st.nets[i]);
	if (changed) {
		struct strbuf full;
		sb_init(&full);
		fw_gen_table(s->st.nets, s->st.n_nets, &full);
		int r = fw_apply(full.buf, c->e);
		sb_free(&full);
		if (r < 0 || (r = server_save(s, c->e)) < 0) {
			json_decref(removed);
			return r;
		}
	}
	_cleanup_free_ bool *doomed = xcalloc(s->st.n_nets + 1, sizeof(bool));
	for (size_t i = 0; i < s->st.n_nets; i++) {
		struct netd_network *n = &s->st.nets[i];
		doomed[i] = listed(n, c) && !n->n_endpoints;
		if (doomed[i])
			json_array_append_new(removed, json_string(n->name));
	}
	if (networks_remove(s, doomed, c->e) < 0) {
		json_decref(removed);
		return -c->e->code;
	}
	*res = json_pack("{s:o}", "removed", removed);
	return 0;
}

/* ---- dispatch -------------------------------------------------------- */

static int dispatch(struct server *s, const struct netd_request *req,
		    struct call *c, json_t **res)
{
	if (streq(req->op, "ping")) {
		*res = json_pack("{s:i}", "version", NETD_PROTO_VERSION);
		return 0;
	}
	if (streq(req->op, "network.create"))
		return op_network_create(s, c, res);
	if (streq(req->op, "network.remove"))
		return op_network_remove(s, c, res);
	if (streq(req->op, "network.inspect"))
		return op_network_inspect(s, c, res);
	if (streq(req->op, "network.list"))
		return op_network_list(s, c, res);
	if (streq(req->op, "network.prune"))
		return op_network_prune(s, c, res);
	if (streq(req->op, "endpoint.attach"))
		return op_endpoint_attach(s, c, res);
	if (streq(req->op, "endpoint.detach"))
		return op_endpoint_detach(s, c, res);
	if (streq(req->op, "links.set"))
		return op_links_set(s, c, res);
	if (streq(req->op, "refusals.watch"))
		return op_refusals_watch(s, c, res);
	if (streq(req->op, "port.publish"))
		return op_port_publish(s, c, res, false);
	if (streq(req->op, "port.check"))
		return op_port_publish(s, c, res, true);
	if (streq(req->op, "cgroup.delegate"))
		return op_cgroup_delegate(s, c, res);
	if (streq(req->op, "netns.take"))
		return op_netns_take(s, c, res);
	if (streq(req->op, "port.unpublish"))
		return op_port_unpublish(s, c, res);
	return err_set(c->e, EOPNOTSUPP, "unknown operation %s", req->op);
}

void server_unlink_later(struct server *s, const char *name)
{
	strv_push(&s->unlink, name);
}

/* Deleting links makes the kernel wait for RCU grace periods: once per
 * bridge under RTNL (br_multicast_dev_del) and once more at the end of
 * the request (netdev_run_todo), tens of ms in all.  The links leave the
 * kernel's lists at its start: from then on no one sees them (`ip link`
 * and every RTNL request wait for the deletion).  So a child deletes
 * them, the client is answered once none is listed, and the next request
 * is read once the child is done.  The child holds none of netd's files:
 * a netd killed meanwhile leaves its lock and socket to the next one at
 * once, and the child finishes its work. */
struct unlinker {
	pid_t pid;
	char **names;
};

static int unlink_now(char **names)
{
	struct orch_err e = {0};
	int r = link_delete_many(names, &e);
	if (r < 0)
		log_warn("deleting links: %s", e.msg);
	return r;
}

/* Starts deleting the links the request gave up; returns once none is
 * listed (or the deletion has ended). */
static void unlink_start(struct server *s, struct unlinker *u)
{
	*u = (struct unlinker){.pid = -1, .names = s->unlink};
	s->unlink = NULL;
	if (!u->names)
		return;
	u->pid = fork();
	if (u->pid == 0) {
		close_range(STDERR_FILENO + 1, ~0U, 0);
		_exit(unlink_now(u->names) < 0);
	}
	if (u->pid < 0) {
		unlink_now(u->names);
		return;
	}
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	const struct timespec tick = {.tv_nsec = 50 * 1000};
	while (fd >= 0 && link_any_listed(fd, u->names)) {
		if (RETRY_EINTR(waitpid(u->pid, NULL, WNOHANG)) != 0) {
			u->pid = -1; /* done (or not ours to wait for) */
			break;
		}
		nanosleep(&tick, NULL);
	}
}

static void unlink_finish(struct unlinker *u)
{
	if (u->pid > 0)
		RETRY_EINTR(waitpid(u->pid, NULL, 0));
	strv_free(u->names);
}

/* Reads one message and answers it; false when the client is gone. */
static bool serve_one(struct server *s, int fd)
{
	static char buf[NETD_MSG_MAX + 1];
	union {
		char b[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.b,
			    .msg_controllen = sizeof(u.b)};
	ssize_t n =
	    RETRY_EINTR(recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return true;
	if (n < 0)
		return false;
	if (n == 0) {
		/* An empty datagram and the peer's close both read as 0. */
		struct pollfd hup = {.fd = fd, .events = POLLRDHUP};
		if (poll(&hup, 1, 0) != 0 &&
		    (hup.revents & (POLLRDHUP | POLLHUP)))
			return false;
	}
	_cleanup_close_ int pfd = netd_msg_fd(&mh);
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
		return false;
	s->last_request = mono_ms();
	struct orch_err e = {0};
	struct netd_request req;
	json_t *res = NULL;
	_cleanup_close_ int give = -1;
	int r;
	if ((mh.msg_flags & MSG_TRUNC) || (size_t)n > NETD_MSG_MAX) {
		r = err_set(&e, EMSGSIZE, "message larger than %d bytes",
			    NETD_MSG_MAX);
	} else if (mh.msg_flags & MSG_CTRUNC) {
		r = err_set(&e, EINVAL, "too many fds passed");
	} else {
		r = netd_request_decode(buf, (size_t)n, &req, &e);
		if (r == 0) {
			struct call c = {.uid = cred.uid,
					 .gid = cred.gid,
					 .pid = cred.pid,
					 .client = fd,
					 .args = req.args,
					 .fd = pfd,
					 .reply_fd = -1,
					 .e = &e};
			r = dispatch(s, &req, &c, &res);
			give = c.reply_fd;
			if (r < 0)
				log_debug("uid %u %s: %s", (unsigned)cred.uid,
					  req.op, e.msg);
			netd_request_clear(&req);
		}
	}
	size_t len;
	_cleanup_free_ char *reply =
	    r < 0 ? netd_reply_err(&e, &len) : netd_reply_ok(res, &len);
	if (r < 0)
		json_decref(res);
	/* A client that does not read its replies is dropped, never waited
	 * for. */
	struct unlinker ul;
	unlink_start(s, &ul);
	bool sent = netd_msg_send(fd, reply, len, give, MSG_DONTWAIT) == 0;
	unlink_finish(&ul);
	return sent;
}

/* ---- start: reconcile ------------------------------------------------- */

static int reconcile(struct server *s, struct orch_err *e)
{
	for (size_t i = 0; i < s->st.n_nets; i++) {
		struct netd_network *n = &s->st.nets[i];
		struct link_addrs gw;
		char mac[18];
		if (net_gateways(n, &gw, e) < 0)
			return err_wrap(e, "network %s in the state", n->name);
		if (!link_exists(n->bridge)) {
			log_warn(
			    "network %s: bridge %s was missing, recreating it",
			    n->name, n->bridge);
			bridge_mac(n->id, mac);
			int r = link_bridge_create(n->bridge, mac, &gw, s->mtu,
						   e);
			if (r < 0)
				return r;
		}
		drop_dead_endpoints(n);
	}
	/* Links of netd's that the state does not know: left by a crash
	 * between creating them and recording them. */
	const char *prefixes[] = {NETD_VETH_PREFIX, NETD_BRIDGE_PREFIX};
	_cleanup_strv_ char **leftover = NULL;
	for (size_t k = 0; k < ARRAY_SIZE(prefixes); k++) {
		_cleanup_strv_ char **names = NULL;
		int r = link_list(prefixes[k], &names, e);
		if (r < 0)
			return r;
		for (size_t i = 0; names[i]; i++) {
			bool known = false;
			for (size_t j = 0; j < s->st.n_nets && !known; j++) {
				struct netd_network *n = &s->st.nets[j];
				known = streq(n->bridge, names[i]);
				for (size_t q = 0; q < n->n_endpoints && !known;
				     q++)
					known =
					    streq(n->endpoints[q].host_ifname,
						  names[i]);
			}
			if (known)
				continue;
			log_info("deleting leftover link %s", names[i]);
			strv_push(&leftover, names[i]);
		}
	}
	if (link_delete_many(leftover, e) < 0)
		log_warn("%s", e->msg);
	struct strbuf full;
	sb_init(&full);
	if (s->st.n_nets)
		fw_gen_table(s->st.nets, s->st.n_nets, &full);
	else
		fw_gen_table_delete(&full);
	int r = fw_apply(full.buf, e);
	sb_free(&full);
	if (r < 0)
		return r;
	bool v6 = false;
	for (size_t i = 0; i < s->st.n_nets; i++)
		v6 = v6 || has_str(s->st.nets[i].subnet6);
	if (s->st.n_nets) {
		r = host_settings_on(s, v6, e);
		if (r < 0)
			return r;
	} else {
		host_settings_restore(s);
	}
	r = server_save(s, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < s->st.n_nets; i++)
		if (dns_network_add(s->dns, &s->st.nets[i], e) < 0)
			log_warn("%s", e->msg);
	return 0;
}

static int listen_socket(int *out, struct orch_err *e)
{
	_cleanup_free_ char *path = netd_socket_path();
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, ENAMETOOLONG, "socket path %s is too long",
			       path);
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd =
	    socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_sys(e, errno, "creating socket %s", path);
	/* We hold the lock: a socket file left there is from a dead netd. */
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return err_sys(e, errno, "binding %s", path);
	/* Everyone may connect; each request is authorized by its uid.  So
	 * everyone may reach the socket: its directory ($ORCH_RUN, made
	 * 0700 by whoever came first) gets search permission, not listing;
	 * what is in it keeps its own modes. */
	if (chmod(path, 0666) < 0 || listen(fd, 64) < 0)
		return err_sys(e, errno, "listening on %s", path);
	_cleanup_free_ char *dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	struct stat st;
	if (*dir && stat(dir, &st) == 0 && (st.st_mode & 0111) != 0111 &&
	    chmod(dir, (st.st_mode & 07777) | 0111) < 0)
		return err_sys(e, errno, "letting users reach %s", path);
	*out = move_fd(fd);
	return 0;
}

int server_run(const struct server_opts *o, struct orch_err *e)
{
	struct server s = {.nflog_fd = -1};
	_cleanup_close_ int lfd = -1, sfd = -1, lsock = -1;
	_cleanup_free_ char *dir = path_join(orch_run(), "netd");
	_cleanup_free_ char *lock = path_join(dir, "netd.pid");
	_cleanup_free_ char *defcfg = path_join(orch_root(), "netd.json");
	s.state_path = path_join(dir, "state.json");
	const char *crash = getenv("NETD_TEST_CRASH_AT");
	s.crash_at = crash ? atoi(crash) : 0;
	int r = mkdir_p(dir, 0700, e);
	if (r < 0)
		goto out;
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		r = err_sys(e, errno, "locking %s (is netd already running?)",
			    lock);
		goto out;
	}
	/* The lock file names the holder, for service managers and tests. */
	char pid[32];
	int plen = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(lfd, 0) < 0 || pwrite(lfd, pid, (size_t)plen, 0) != plen)
		log_warn("writing %s: %s", lock, strerror(errno));
	if ((r = config_load(o->config ? o->config : defcfg, &s.cfg, e)) < 0 ||
	    (r = state_load(s.state_path, &s.st, e)) < 0 ||
	    (r = dns_server_new(&s.dns, e)) < 0)
		goto out;
	s.mtu = link_uplink_mtu();
	/* Link-only refusals are explained where the kernel can report
	 * them; elsewhere they are still refused, only silently. */
	struct orch_err nle = {0};
	if (!s.cfg.explain_refusals)
		fw_log_refusals(false);
	else if (nflog_open(NETD_NFLOG_GROUP, &s.nflog_fd, &nle) < 0) {
		log_warn("link-only refusals will not be explained: %s",
			 nle.msg);
		fw_log_refusals(false);
	}
	r = reconcile(&s, e);
	if (r < 0) {
		err_wrap(e, "reconciling the state with the kernel");
		goto out;
	}
	s.relay = relay_new();
	relay_sync(s.relay, &s.st);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		r = err_sys(e, errno, "creating a signalfd");
		goto out;
	}
	r = listen_socket(&lsock, e);
	if (r < 0)
		goto out;
	if (o->ready_fd >= 0) {
		RETRY_EINTR(write(o->ready_fd, "", 1));
		close(o->ready_fd);
	}
	char *sock = netd_socket_path();
	log_info("serving %zu networks on %s (mtu %u)", s.st.n_nets, sock,
		 s.mtu);
	free(sock);
	int clients[MAX_CLIENTS];
	size_t n_clients = 0;
	bool busy = true;
	for (;;) {
		size_t nd = dns_pollfds(s.dns, NULL, 0);
		_cleanup_free_ int *dfds = xcalloc(nd + 1, sizeof(int));
		nd = dns_pollfds(s.dns, dfds, nd);
		size_t nr = relay_pollfds(s.relay, NULL, 0);
		_cleanup_free_ struct pollfd *pfd =
		    xcalloc(3 + n_clients + nd + nr, sizeof(*pfd));
		size_t np = 0;
		pfd[np++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		pfd[np++] = (struct pollfd){.fd = lsock, .events = POLLIN};
		for (size_t i = 0; i < n_clients; i++)
			pfd[np++] =
			    (struct pollfd){.fd = clients[i], .events = POLLIN};
		for (size_t i = 0; i < nd; i++)
			pfd[np++] =
			    (struct pollfd){.fd = dfds[i], .events = POLLIN};
		pfd[np++] = (struct pollfd){.fd = s.nflog_fd, .events = POLLIN};
		struct pollfd *rfd = &pfd[np];
		np += relay_pollfds(s.relay, rfd, nr);
		/* Network namespaces are made ahead once no request came for
		 * a while, one per turn: a request is never kept waiting
		 * for more than one. */
		int timeout = 1000;
		if (nspool_wants(&s.pool)) {
			int64_t idle = mono_ms() - s.last_request;
			timeout = idle >= NSPOOL_IDLE_MS
				      ? 0
				      : (int)(NSPOOL_IDLE_MS - idle);
		}
		int pr = poll(pfd, np, timeout);
		if (pr < 0 && errno != EINTR) {
			r = err_sys(e, errno, "poll");
			break;
		}
		dns_tick(s.dns);
		relay_tick(s.relay);
		if (pr == 0 && timeout < 1000) {
			nspool_fill_one(&s.pool);
			continue;
		}
		/* Idle for a second after work: the journal into the state
		 * file, libnftables unloaded and the heap's free pages given
		 * back, so a long-lived netd stays small. */
		if (pr == 0 && busy) {
			struct orch_err se = {0};
			if (s.st.journal_records && server_save(&s, &se) < 0)
				log_warn("%s", se.msg);
			fw_release();
			malloc_trim(0);
			busy = false;
		}
		if (pr <= 0)
			continue;
		busy = true;
		if (pfd[0].revents) {
			log_info("exiting on signal; networks stay up");
			r = 0;
			break;
		}
		for (size_t i = 0; i < nd; i++)
			if (pfd[2 + n_clients + i].revents)
				dns_handle(s.dns, &s.st, dfds[i]);
		if (rfd[-1].revents)
			refusals_handle(&s);
		relay_handle(s.relay, rfd, nr);
		for (size_t i = n_clients; i-- > 0;) {
			short ev = pfd[2 + i].revents;
			if (!ev)
				continue;
			if (ev & POLLIN) {
				if (serve_one(&s, clients[i]))
					continue;
			} else if (!(ev & (POLLHUP | POLLERR | POLLNVAL))) {
				continue;
			}
			refusals_unwatch(&s, clients[i]);
			close(clients[i]);
			clients[i] = clients[--n_clients];
		}
		if (pfd[1].revents & POLLIN) {
			int cfd = accept4(lsock, NULL, NULL,
					  SOCK_CLOEXEC | SOCK_NONBLOCK);
			/* Replies listing every network may be large. */
			int sz = 8 * 1024 * 1024;
			if (cfd >= 0)
				setsockopt(cfd, SOL_SOCKET, SO_SNDBUFFORCE, &sz,
					   sizeof(sz));
			if (cfd >= 0 && n_clients < MAX_CLIENTS)
				clients[n_clients++] = cfd;
			else if (cfd >= 0)
				close(cfd);
		}
	}
	for (size_t i = 0; i < n_clients; i++)
		close(clients[i]);
out:
	nspool_clear(&s.pool);
	refusals_clear(&s);
	if (s.nflog_fd >= 0)
		close(s.nflog_fd);
	config_clear(&s.cfg);
	dns_server_free(s.dns);
	relay_free(s.relay);
	state_clear(&s.st);
	free(s.state_path);
	return r;
}
