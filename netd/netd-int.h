/* netd's internal interfaces between its subsystems (not for other parts:
 * they use netd/netd.h). */
#ifndef ORCH_NETD_INT_H
#define ORCH_NETD_INT_H

#include "netd/netd.h"

/* ---- ipam.c: pure IPv4 address arithmetic (host byte order) ----------- */

struct cidr {
	uint32_t addr;
	int prefix;
};

/* "10.1.2.0/24" (addr "10.1.2.3" with want_prefix false); host bits of a
 * subnet must be zero. */
int ipam_parse_cidr(const char *s, struct cidr *out, struct orch_err *e);
int ipam_parse_addr(const char *s, uint32_t *out);
void ipam_format_addr(uint32_t a, char out[16]);
char *ipam_format_cidr(struct cidr c); /* malloc'd */
bool ipam_overlap(struct cidr a, struct cidr b);
bool ipam_contains(struct cidr net, uint32_t addr);
/* The first subnet of size subnet_prefix inside pool that overlaps none of
 * taken[] (other networks and the host's routes and addresses). */
int ipam_subnet_next(struct cidr pool, int subnet_prefix,
		     const struct cidr *taken, size_t n_taken,
		     struct cidr *out);
/* The first host address of net that is not in used[] (gateway included
 * there by the caller); -ENOSPC when full. */
int ipam_lease_next(struct cidr net, const uint32_t *used, size_t n_used,
		    uint32_t *out);
/* A usable host address of net: not the network or broadcast address. */
bool ipam_host_valid(struct cidr net, uint32_t addr);

/* The same for IPv6 (addresses as 16 bytes, network order). */
struct cidr6 {
	uint8_t addr[16];
	int prefix;
};
int ipam6_parse_cidr(const char *s, struct cidr6 *out, struct orch_err *e);
int ipam6_parse_addr(const char *s, uint8_t out[16]);
void ipam6_format_addr(const uint8_t a[16], char out[46]);
char *ipam6_format_cidr(const struct cidr6 *c); /* malloc'd */
bool ipam6_overlap(const struct cidr6 *a, const struct cidr6 *b);
bool ipam6_contains(const struct cidr6 *net, const uint8_t a[16]);
/* Not the all-zeros host (the subnet-router anycast address). */
bool ipam6_host_valid(const struct cidr6 *net, const uint8_t a[16]);
/* The first /subnet_prefix of pool overlapping none of taken[] (of the
 * first 65,536). */
int ipam6_subnet_next(const struct cidr6 *pool, int subnet_prefix,
		      const struct cidr6 *taken, size_t n_taken,
		      struct cidr6 *out);
/* The lowest host address of net not in used[]. */
int ipam6_lease_next(const struct cidr6 *net, const uint8_t (*used)[16],
		     size_t n_used, uint8_t out[16]);
/* Whether a network or endpoint string field is set ("" is unset). */
static inline bool has_str(const char *s)
{
	return s && *s;
}

/* ---- firewall.c ------------------------------------------------------- */

/* ---- nlbatch.c: netlink requests sent together ------------------------ */

struct nl_msg;
struct nl_sock;
/* Netlink requests built in memory, sent in one send by nlb_send. */
struct nlb {
	struct strbuf msgs; /* the messages, without sequence numbers */
	unsigned n;
};
/* Appends the message (freed). */
void nlb_add(struct nlb *b, struct nl_msg *m);
void nlb_free(struct nlb *b);
/* Sends the requests and reads their answers: errs[i] (b->n of them) is
 * 0 or the negative errno the kernel gave the i-th.  Fails when sending
 * fails or a request with NLM_F_ACK got no answer. */
int nlb_send(struct nl_sock *sk, struct nlb *b, int *errs,
	     struct orch_err *e);

/* ---- nftset.c: set elements as one nf_tables transaction --------------- */

/* Changes to sets of table inet orch, built in memory (pure) and sent as
 * one transaction by nftset_commit. */
/* Empties the set. */
void nftset_flush(struct nlb *b, const char *set);
/* Adds or deletes n elements whose keys are key_len bytes each, in the
 * kernel's layout of the set's type. */
void nftset_elems(struct nlb *b, bool add, const char *set,
		  const void *keys, size_t key_len, size_t n);
int nftset_commit(struct nlb *b, struct orch_err *e);
/* Closes the netlink socket until the next commit (netd idle). */
void nftset_release(void);

/* Pure generation of nft scripts and set batches from netd's state
 * (pinned by golden files); fw_apply runs one script as one
 * transaction. */
void fw_gen_table(const struct netd_network *nets, size_t n,
		  struct strbuf *out);
void fw_gen_table_delete(struct strbuf *out);
void fw_gen_network_add(const struct netd_network *n, struct strbuf *out);
void fw_gen_network_remove(const struct netd_network *n, struct strbuf *out);
/* Elements that involve endpoint index i of n: its pairs into pairs, its
 * ports into script. */
void fw_gen_endpoint_add(const struct netd_network *n, size_t i,
			 struct nlb *pairs, struct strbuf *script);
void fw_gen_endpoint_remove(const struct netd_network *n, size_t i,
			    struct nlb *pairs, struct strbuf *script);
/* Replaces the network's pair sets from n->pairs. */
void fw_gen_links(const struct netd_network *n, struct nlb *out);
void fw_gen_port(const struct netd_network *n, const struct netd_port *p,
		 bool add, struct strbuf *out);
int fw_apply(const char *script, struct orch_err *e);
/* Whether link-only refusals are also logged to NETD_NFLOG_GROUP (on by
 * default; off where the kernel cannot report them). */
void fw_log_refusals(bool on);
/* Unloads libnftables until the next fw_apply (netd calls it when idle). */
void fw_release(void);

/* ---- link.c: bridges, veths, addresses, routes (libnl) ----------------- */

#define NETD_BRIDGE_PREFIX "ob-"
#define NETD_VETH_PREFIX   "ov-"

/* 16 hex digits that stand for s (fnv1a), for the names and
 * MAC addresses made from random ids: they need to differ, not to be
 * secret, and netd stays free of libcrypto. */
void link_name_hash(const char *s, char out[17]);

/* The addresses of a bridge (its gateways) or of a container's end: an
 * IPv4 and an IPv6 address, either absent when its prefix is 0, and the
 * gateways a container's default routes go through. */
struct link_addrs {
	struct cidr v4;
	struct cidr6 v6;
	uint32_t gw4;
	uint8_t gw6[16];
};

int link_bridge_create(const char *name, const char *mac,
		       const struct link_addrs *gw, unsigned mtu,
		       struct orch_err *e);
/* Deletes a link by name; "already gone" is success. */
int link_delete(const char *name, struct orch_err *e);
/* Deletes links by name in one kernel batch where it can (the kernel's
 * waits are paid per request, not per link); "already gone" is success. */
int link_delete_many(char *const *names, struct orch_err *e);
bool link_exists(const char *name);
/* Whether the kernel lists any of the links, asked through fd (any
 * socket) without RTNL: a link being deleted leaves the lists at the
 * start of its deletion, before the kernel's waits, while RTNL is
 * held. */
bool link_any_listed(int fd, char *const *names);
/* Names of the links starting with prefix. */
int link_list(const char *prefix, char ***out, struct orch_err *e);
/* The veth pair host_name <-> ifname, ifname born in the namespace nsfd,
 * addressed and up (IPv6 off on it unless it has an IPv6 address), its
 * default routes via the gateways when default_route; ifname's MAC is
 * mac, or (NULL) follows its address. */
int link_veth_create(const char *host_name, const char *bridge, int nsfd,
		     const char *ifname, const struct link_addrs *addr,
		     const unsigned char *mac, bool default_route,
		     unsigned mtu, struct orch_err *e);
/* The MTU of the interface holding the default route (1500 if none). */
unsigned link_uplink_mtu(void);
/* The host's IPv4 routes and addresses, but default routes and routes on
 * netd's own bridges. */
int link_host_cidrs(struct cidr **out, size_t *n, struct orch_err *e);
/* The same for IPv6 (link-local and multicast routes included). */
int link_host_cidrs6(struct cidr6 **out, size_t *n, struct orch_err *e);

/* ---- host.c: sysctls and the host settings networks need --------------- */

/* A sysctl file's integer (-1 when it cannot be read); writing returns 0
 * or -errno. */
int sysctl_read(const char *path);
int sysctl_write(const char *path, const char *value);

/* ---- state.c: persisted state ----------------------------------------- */

/* Host ports lo..hi that uid may publish although they are privileged. */
struct port_allowance {
	uid_t uid;
	unsigned lo, hi;
};

struct netd_config {
	struct cidr pool;
	int subnet_prefix;
	struct cidr6 pool6; /* where IPv6 subnets come from */
	int subnet_prefix6;
	unsigned quota_networks, quota_endpoints, quota_ports; /* non-root */
	bool explain_refusals; /* log link-only refusals for the projects */
	/* Where users (non-root) may ask for a subnet of their own, besides
	 * the pool; and the privileged ports they may publish. */
	struct cidr *user_subnets;
	size_t n_user_subnets;
	struct port_allowance *user_ports;
	size_t n_user_ports;
};

struct netd_state {
	struct netd_network *nets;
	size_t n_nets;
	/* Host sysctls netd changed, to restore when the last network goes;
	 * -1 = untouched. */
	int saved_ip_forward;
	int saved_bridge_nf;
	int saved_ip6_forward;
	int saved_bridge_nf6;
	/* The journal beside the state file (state_journal): the id its
	 * first line and the state file share, the records after it, its
	 * size and the state file's, and whether it may be appended to. */
	uint64_t journal_id;
	size_t journal_records;
	size_t journal_bytes, state_bytes;
	bool journal_ok;
};

int config_load(const char *path, struct netd_config *cfg, struct orch_err *e);
void config_clear(struct netd_config *cfg);
int state_load(const char *path, struct netd_state *st, struct orch_err *e);
int state_save(const char *path, struct netd_state *st,
	       struct orch_err *e);
/* Records endpoint i of n as attached (or, detach, that container as
 * detached from n) in the journal: an append instead of writing the
 * whole state, which state_load replays.  Writes the whole state when the
 * journal would outgrow it, or cannot be appended to. */
int state_journal(const char *path, struct netd_state *st,
		  struct netd_network *n, size_t i, const char *detach,
		  struct orch_err *e);
/* Takes endpoint i out of n into *out, with n's ports for it. */
void state_endpoint_remove(struct netd_network *n, size_t i,
			   struct netd_endpoint *out);
void state_clear(struct netd_state *st);
struct netd_network *state_find(struct netd_state *st, const char *name);
/* Index of the container's endpoint in n, or -1. */
ssize_t state_endpoint_find(const struct netd_network *n, const char *cid);
/* The endpoint of n with address a (IPv4 or IPv6, as text), or NULL. */
const struct netd_endpoint *state_endpoint_at(const struct netd_network *n,
					      const char *a);

/* ---- dns.c ------------------------------------------------------------ */

enum dns_verdict { DNS_ANSWER, DNS_FORWARD, DNS_DROP };
/* Answers a query from asker (an IPv4 or IPv6 address of an endpoint of
 * st, as text): names of endpoints on the networks the asker is on, A
 * and AAAA.  Pure: builds the reply in *reply (malloc'd). */
enum dns_verdict dns_answer(const struct netd_state *st, const char *asker,
			    const void *query, size_t len, uint8_t **reply,
			    size_t *reply_len);

struct dns_server;
int dns_server_new(struct dns_server **out, struct orch_err *e);
void dns_server_free(struct dns_server *d);
/* Opens/closes the resolver of a network on its gateway. */
int dns_network_add(struct dns_server *d, const struct netd_network *n,
		    struct orch_err *e);
void dns_network_remove(struct dns_server *d, const struct netd_network *n);
/* fds to poll (POLLIN): fills up to max, returns how many there are
 * (fds may be NULL to count); dns_handle serves a readable one. */
size_t dns_pollfds(struct dns_server *d, int *fds, size_t max);
void dns_handle(struct dns_server *d, const struct netd_state *st, int fd);
void dns_tick(struct dns_server *d);

/* ---- policy.c: who may have which subnet and port (pure) -------------- */

/* The special block c overlaps ("loopback (127.0.0.0/8)"), or NULL. */
const char *policy_subnet_special(struct cidr c);
/* 0 when uid may create a network on want: not in a special block; for
 * users inside the pool or their user_subnets; overlapping none of the
 * host's routes host[] (whoever asks).  Else an error naming the subnet
 * and the reason. */
int policy_subnet_check(const struct netd_config *cfg, uid_t uid,
			struct cidr want, const struct cidr *host,
			size_t n_host, struct orch_err *e);
/* 0 when uid may publish host ports port..port+count-1: root always,
 * users the ports from unpriv_start up and those netd.json allows them. */
int policy_port_check(const struct netd_config *cfg, uid_t uid, unsigned port,
		      unsigned count, unsigned unpriv_start,
		      struct orch_err *e);

/* ---- hostport.c: who holds a host port -------------------------------- */

/* 0 when proto/ip:port can be bound on the host (ip: IPv4 or IPv6 text,
 * "" every IPv4 address); else -EADDRINUSE with a message naming the
 * process holding it, or another error. */
int hostport_check(const char *proto, const char *ip, unsigned port,
		   struct orch_err *e);
/* The same for ports port..port+count-1; a long range in one pass over
 * the host's socket tables (a socket bound but neither listening nor
 * connected is not in them). */
int hostport_check_range(const char *proto, const char *ip, unsigned port,
			 unsigned count, struct orch_err *e);
/* net.ipv4.ip_unprivileged_port_start of netd's namespace (1024 when it
 * cannot be read). */
unsigned hostport_unprivileged_start(void);

/* ---- nflog.c: the refusals the kernel reports ------------------------- */

/* The NFLOG group of link-only refusals; each log carries the refusing
 * network's short id (12 hex digits) as its prefix. */
#define NETD_NFLOG_GROUP 4271

struct nflog_packet {
	char prefix[32];
	char src[46], dst[46]; /* IPv4 or IPv6 addresses, as text */
	uint8_t proto;	       /* IPPROTO_TCP, _UDP, ... */
	unsigned dport;	   /* 0 when none (or not a first fragment) */
};
/* Binds a netfilter netlink socket (non-blocking) to group. */
int nflog_open(uint16_t group, int *out, struct orch_err *e);
/* Reads the packets logged so far, up to max; 0 when none. */
size_t nflog_read(int fd, struct nflog_packet *out, size_t max);
/* The addresses, protocol and destination port of an IPv4 or IPv6
 * packet's first len bytes (pure); false when it is neither. */
bool nflog_parse_ip(const uint8_t *p, size_t len, struct nflog_packet *out);

/* ---- relay.c: published ports on ::1 ---------------------------------- */

struct pollfd;
struct relay;
struct relay *relay_new(void);
void relay_free(struct relay *r);
/* Whether a port published on host IP ip ("" for every address, as
 * publish.c normalizes it) is relayed on ::1 when its endpoint has IPv6:
 * every address, every IPv6 address, or ::1 itself. */
bool relay_host_ip(const char *ip);
/* Opens the listeners st's ports want and closes the others. */
void relay_sync(struct relay *r, const struct netd_state *st);
/* The fds to poll with their events (out may be NULL to count), and
 * what to do with the ones that are ready. */
size_t relay_pollfds(const struct relay *r, struct pollfd *out, size_t max);
void relay_handle(struct relay *r, const struct pollfd *p, size_t n);
/* Forgets idle UDP clients. */
void relay_tick(struct relay *r);

/* ---- nspool.c: network namespaces made ahead --------------------------- */

/* Making a network namespace takes the kernel's RTNL lock (0.5-1 ms),
 * on the path of every container `up` sets up: netd makes them while
 * idle, as many as the last burst of requests asked for, at most
 * NSPOOL_MAX (some 150 KiB of kernel memory each). */
#define NSPOOL_MAX     32
#define NSPOOL_IDLE_MS 100 /* without a request before one is made */
struct nspool {
	int fd[NSPOOL_MAX];
	unsigned n;	 /* ready */
	unsigned target; /* to keep ready */
	unsigned asked;	 /* taken or missed since the last one was made */
	bool off;	 /* the kernel refused one: none made any more */
};
/* A ready namespace (the caller's), or -1; counted as asked either way. */
int nspool_take(struct nspool *p);
/* Whether the pool is to change once netd is idle. */
bool nspool_wants(const struct nspool *p);
/* Idle: sizes the pool to the burst of requests before, and makes one. */
void nspool_fill_one(struct nspool *p);
void nspool_clear(struct nspool *p);

/* ---- server.c: the daemon (publish.c serves the port ops) ---------------- */

struct server {
	struct netd_config cfg;
	struct netd_state st;
	struct dns_server *dns;
	struct relay *relay;
	char *state_path;
	unsigned mtu;
	int crash_at; /* tests: SIGKILL self at this attach step */
	/* Link-only refusals: the NFLOG socket (-1 when the kernel cannot
	 * report them), the clients watching them, and the last ones told
	 * (one line per connection attempt, not per packet). */
	int nflog_fd;
	struct refusal_watcher *watchers;
	size_t n_watchers;
	struct refusal_seen *seen;
	/* Links a request removed from the state: deleted after its reply
	 * is sent (server_unlink_later). */
	char **unlink;
	struct nspool pool;
	int64_t last_request; /* mono_ms() */
};

/* A request being served: who asks, the args (a json_t), an fd passed
 * along, where the error goes. */
struct call {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int client; /* the connection the request came on */
	struct json_t *args;
	int fd;
	int reply_fd; /* sent with the reply, then closed (-1: none) */
	struct orch_err *e;
};

/* The request's string (NULL when absent or empty) and integer args. */
const char *call_str(const struct call *c, const char *key);
long call_int(const struct call *c, const char *key);
/* A list argument's strings (empty when absent). */
char **arg_strv(const struct call *c, const char *key);
/* A boolean argument (false when absent). */
bool arg_bool(const struct call *c, const char *key);
/* Test hook: kill -9 ourselves between two steps of an attach. */
void crash_point(struct server *s, int step);
/* 0 when uid may act on n (its owner, or root); else -EPERM saying what. */
int server_authorize(const struct netd_network *n, uid_t uid, const char *what,
		     struct orch_err *e);
/* The network named name that uid may act on, or NULL with e set. */
struct netd_network *server_find_net(struct server *s, const char *name,
				     uid_t uid, const char *what,
				     struct orch_err *e);
/* Whether uid may have more of its networks (which 0), endpoints (1) or
 * published ports (2); root has no quota. */
int server_quota(struct server *s, uid_t uid, int which, unsigned more,
		 struct orch_err *e);
/* Applies set changes and an nft script (either may be NULL; both are
 * freed), rebuilding the table if either fails. */
int server_fw_sync(struct server *s, struct nlb *pairs,
		   struct strbuf *script, struct orch_err *e);
int server_save(struct server *s, struct orch_err *e);
/* The same for one attach (detach: that container's detach) of n. */
int server_journal(struct server *s, struct netd_network *n, size_t i,
		   const char *detach, struct orch_err *e);
/* Deletes the link as the request ends: the reply goes once the kernel
 * no longer lists it, and the next request is read once it is deleted.
 * Only for a link the state no longer knows: a crash before it goes
 * leaves it to the next start's reconcile. */
void server_unlink_later(struct server *s, const char *name);

/* host.c: forwarding and br_netfilter's bridge-nf-call-iptables on while
 * a network exists (the host's values recorded first, in the state, so
 * that they survive a crash), and the recorded values back. */
int host_settings_on(struct server *s, bool ipv6, struct orch_err *e);
void host_settings_restore(struct server *s);
/* ipv6.c: a network's IPv6 subnet (asked for, or from the pool) and
 * gateway; an endpoint's IPv6 address (asked for, or the next free). */
const char *policy_subnet6_special(const struct cidr6 *c);
int net6_pick(struct server *s, const struct call *c, struct cidr6 *sub,
	      uint8_t gw[16]);
int net6_lease(const struct netd_network *n, const struct call *c,
	       uint8_t out[16]);
/* A network's gateways with their prefixes, as its bridge has them. */
int net_gateways(const struct netd_network *n, struct link_addrs *out,
		 struct orch_err *e);
/* endpoint.c: the endpoint ops and the project's link pairs; res gets the
 * reply's result. */
int op_endpoint_attach(struct server *s, struct call *c, struct json_t **res);
int op_endpoint_detach(struct server *s, struct call *c, struct json_t **res);
int op_links_set(struct server *s, struct call *c, struct json_t **res);
/* refusal.c: refusals.watch (the connection then receives every refusal
 * on the project's networks), what netd does with the packets nflog.c
 * reads, and forgetting a watcher whose connection closed. */
int op_refusals_watch(struct server *s, struct call *c, struct json_t **res);
/* cgdeleg.c */
int op_cgroup_delegate(struct server *s, struct call *c, struct json_t **res);
/* nspool.c */
int op_netns_take(struct server *s, struct call *c, struct json_t **res);
void refusals_handle(struct server *s);
void refusals_unwatch(struct server *s, int client);
void refusals_clear(struct server *s);
/* publish.c: the port ops; res gets the reply's result. */
int op_port_publish(struct server *s, struct call *c, struct json_t **res,
		    bool check_only);
int op_port_unpublish(struct server *s, struct call *c, struct json_t **res);

struct server_opts {
	const char *config; /* NULL: $ORCH_ROOT/netd.json when present */
	int ready_fd;	    /* written to and closed once serving, or -1 */
};
/* Reconciles state with the kernel, then serves until SIGTERM/SIGINT. */
int server_run(const struct server_opts *o, struct orch_err *e);

#endif
