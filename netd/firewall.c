/* Isolation, NAT and published ports: everything lives in one nftables
 * table, inet orch.  Per packet the cost is constant: the base chains
 * dispatch on the bridge through verdict maps to one small chain per
 * network, allowed pairs are a set of address pairs per network, and
 * published ports are two maps.  Adding an endpoint or a port only adds
 * elements.  Generation is pure (golden-file tests); fw_apply runs a
 * script as one transaction through libnftables, and the pair sets'
 * elements, which every attach changes, go as netlink batches
 * (nftset.c). */
#include "netd/netd-int.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <nftables/libnftables.h>

#define TABLE "inet orch"

static bool log_refusals = true;

void fw_log_refusals(bool on)
{
	log_refusals = on;
}

/* Chain and set names use the first 12 hex digits of the network id. */
static void short_id(const struct netd_network *n, char out[13])
{
	snprintf(out, 13, "%.12s", n->id);
}

static const struct netd_endpoint *endpoint_of(const struct netd_network *n,
					       const char *cid)
{
	for (size_t i = 0; i < n->n_endpoints; i++)
		if (streq(n->endpoints[i].container_id, cid))
			return &n->endpoints[i];
	return NULL;
}

/* Whether endpoint ep answers to service-level name s in pairs. */
static bool ep_is(const struct netd_endpoint *ep, const char *s)
{
	return streq(ep->service, s) || streq(ep->container_name, s);
}

/* The endpoint's address of one family (v6: IPv6), "" when none. */
static const char *addr_of(const struct netd_endpoint *ep, bool v6)
{
	const char *a = v6 ? ep->address6 : ep->address;
	return a ? a : "";
}

/* Calls each(a, b, ctx) for the addresses of the pairs of n of one
 * family; only those involving endpoint only (when not NULL).  Returns
 * how many there were. */
static size_t each_pair(const struct netd_network *n,
			const struct netd_endpoint *only, bool v6,
			void (*each)(const char *a, const char *b, void *ctx),
			void *ctx)
{
	size_t count = 0;
	for (size_t p = 0; p < n->n_pairs; p++) {
		const char *from = n->pairs[p].from, *to = n->pairs[p].to;
		/* With only, a pair that does not name it is passed over
		 * without a look at the others: an attach costs what its
		 * own pairs do, not the network's. */
		if (only && !ep_is(only, from) && !ep_is(only, to))
			continue;
		for (size_t i = 0; i < n->n_endpoints; i++) {
			const struct netd_endpoint *a = &n->endpoints[i];
			if (!ep_is(a, from) || (only && a != only &&
						!ep_is(only, to)))
				continue;
			for (size_t j = 0; j < n->n_endpoints; j++) {
				const struct netd_endpoint *b =
				    &n->endpoints[j];
				if (a == b || !ep_is(b, to))
					continue;
				if ((only && a != only && b != only) ||
				    !*addr_of(a, v6) || !*addr_of(b, v6))
					continue;
				each(addr_of(a, v6), addr_of(b, v6), ctx);
				count++;
			}
		}
	}
	return count;
}

/* "", "0.0.0.0" and "::": every host address (of both families, of
 * IPv4, of IPv6). */
static bool host_ip_any(const char *ip)
{
	return !ip || !*ip || streq(ip, "0.0.0.0") || streq(ip, "::");
}

/* The map elements of a port or a range, one command per family the
 * endpoint and the host address have: one element per port (a map
 * cannot add an offset to a port), all in one command, so that a range
 * costs one rule change however long it is.  "::1" is served by netd's
 * own relay (relay.c): the kernel does not route loopback to a bridge. */
static void gen_port_cmds(const struct netd_network *n,
			  const struct netd_port *p, const char *verb,
			  struct strbuf *out)
{
	const struct netd_endpoint *ep = endpoint_of(n, p->container_id);
	bool any = host_ip_any(p->host_ip);
	bool ip6 = p->host_ip && strchr(p->host_ip, ':');
	unsigned count = p->count ? p->count : 1;
	for (int v6 = 0; v6 < 2; v6++) {
		const char *addr = ep ? addr_of(ep, v6) : "";
		if (!*addr || (has_str(p->host_ip) && ip6 != v6) ||
		    (v6 && streq(p->host_ip, "::1")))
			continue;
		sb_printf(out, "%s element " TABLE " %s%s { ", verb,
			  any ? "port_any" : "port_map", v6 ? "6" : "");
		for (unsigned k = 0; k < count; k++) {
			sb_printf(out, "%s%s . ", k ? ", " : "", p->proto);
			if (!any)
				sb_printf(out, "%s . ", p->host_ip);
			sb_printf(out, "%u : %s . %u", p->host_port + k, addr,
				  p->container_port + k);
		}
		sb_printf(out, " }\n");
	}
}

/* Emits a chain with its rules (one per line in rules), inside a table
 * block or as standalone commands. */
static void emit_chain(const char *name, const char *rules, bool block,
		       struct strbuf *out)
{
	if (block) {
		sb_printf(out, "\tchain %s {\n", name);
		for (const char *l = rules; *l;) {
			size_t len = strcspn(l, "\n");
			sb_printf(out, "\t\t%.*s\n", (int)len, l);
			l += len + (l[len] == '\n');
		}
		sb_printf(out, "\t}\n");
		return;
	}
	sb_printf(out, "add chain " TABLE " %s\n", name);
	for (const char *l = rules; *l;) {
		size_t len = strcspn(l, "\n");
		sb_printf(out, "add rule " TABLE " %s %.*s\n", name, (int)len,
			  l);
		l += len + (l[len] == '\n');
	}
}

/* The per-network objects: chains for traffic from its bridge (forward,
 * input) and for its source addresses (postrouting), and its pair set. */
static void gen_network_objects(const struct netd_network *n, bool block,
				struct strbuf *out)
{
	char id[13], name[32];
	short_id(n, id);
	for (int v6 = 0; v6 < 2; v6++) {
		const char *t = v6 ? "ipv6_addr" : "ipv4_addr";
		sb_printf(out, "%sset %sn_%s_pairs%s { type %s . %s; }\n",
			  block ? "\t" : "add ", block ? "" : TABLE " ", id,
			  v6 ? "6" : "", t, t);
	}
	struct strbuf r;
	sb_init(&r);
	/* From the bridge, being forwarded: inside the network only the
	 * allowed pairs (or all, icc) and published ports; out of it only
	 * to the outside, never to another network. */
	sb_printf(&r, "oifname \"%s\" ct status dnat accept\n", n->bridge);
	/* IPv6 neighbours find each other across the bridge. */
	sb_printf(&r,
		  "oifname \"%s\" icmpv6 type { nd-neighbor-solicit, "
		  "nd-neighbor-advert } accept\n",
		  n->bridge);
	if (n->icc)
		sb_printf(&r, "oifname \"%s\" accept\n", n->bridge);
	else {
		/* Link-only: what no link allows is refused at once (a
		 * TCP reset, an ICMP "administratively prohibited"), so
		 * that a client fails fast instead of hanging, and logged
		 * (rate-limited) for netd to explain. */
		sb_printf(&r,
			  "oifname \"%s\" ip saddr . ip daddr @n_%s_pairs "
			  "accept\n"
			  "oifname \"%s\" ip6 saddr . ip6 daddr @n_%s_pairs6 "
			  "accept\n",
			  n->bridge, id, n->bridge, id);
		if (log_refusals)
			sb_printf(&r,
				  "oifname \"%s\" limit rate 20/second burst "
				  "40 packets log group %d prefix \"%s\"\n",
				  n->bridge, NETD_NFLOG_GROUP, id);
		sb_printf(&r,
			  "oifname \"%s\" meta l4proto tcp reject with tcp "
			  "reset\n"
			  "oifname \"%s\" reject with icmpx type "
			  "admin-prohibited\n",
			  n->bridge, n->bridge);
	}
	if (!n->internal)
		sb_printf(&r, "ct status dnat accept\n"
			      "oifname \"" NETD_BRIDGE_PREFIX "*\" drop\n"
			      "accept\n");
	else
		sb_printf(&r, "drop\n");
	snprintf(name, sizeof(name), "n_%s_fwd", id);
	emit_chain(name, r.buf, block, out);
	sb_free(&r);
	/* From the bridge to the host itself: only replies, DNS and (IPv6)
	 * neighbour discovery. */
	sb_printf(&r, "ct state established,related accept\n");
	if (has_str(n->gateway))
		sb_printf(&r,
			  "ip daddr %s meta l4proto { tcp, udp } th dport 53 "
			  "accept\n",
			  n->gateway);
	if (has_str(n->gateway6))
		sb_printf(&r,
			  "ip6 daddr %s meta l4proto { tcp, udp } th dport 53 "
			  "accept\n"
			  "icmpv6 type { nd-neighbor-solicit, "
			  "nd-neighbor-advert } accept\n",
			  n->gateway6);
	sb_printf(&r, "drop\n");
	snprintf(name, sizeof(name), "n_%s_in", id);
	emit_chain(name, r.buf, block, out);
	sb_free(&r);
	/* Source NAT: hairpin through a published port always; masquerade
	 * to the outside unless internal. */
	sb_printf(&r, "oifname \"%s\" ct status dnat masquerade\n", n->bridge);
	if (!n->internal)
		sb_printf(&r, "oifname != \"%s\" masquerade\n", n->bridge);
	snprintf(name, sizeof(name), "n_%s_post", id);
	emit_chain(name, r.buf, block, out);
	sb_free(&r);
}

static void gen_network_elems(const struct netd_network *n, const char *verb,
			      struct strbuf *out)
{
	char id[13];
	short_id(n, id);
	sb_printf(out,
		  "%s element " TABLE " fwd_map { \"%s\" : jump n_%s_fwd }\n",
		  verb, n->bridge, id);
	sb_printf(out,
		  "%s element " TABLE " in_map { \"%s\" : jump n_%s_in }\n",
		  verb, n->bridge, id);
	if (has_str(n->subnet))
		sb_printf(out,
			  "%s element " TABLE
			  " post_map { %s : jump n_%s_post }\n",
			  verb, n->subnet, id);
	if (has_str(n->subnet6))
		sb_printf(out,
			  "%s element " TABLE
			  " post_map6 { %s : jump n_%s_post }\n",
			  verb, n->subnet6, id);
}

static void pair_text(const char *a, const char *b, void *ctx)
{
	struct strbuf *out = ctx;
	sb_printf(out, "%s%s . %s", out->len ? ", " : "", a, b);
}

/* A pair as the key of its set (type ipv4_addr . ipv4_addr, or ipv6):
 * the two addresses in network order, each in a 32-bit multiple. */
static void pair_key(const char *a, const char *b, void *ctx)
{
	struct strbuf *keys = ctx;
	bool v6 = strchr(a, ':') != NULL;
	unsigned char key[32] = {0};
	size_t half = v6 ? 16 : 4;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, a, key) != 1 ||
	    inet_pton(v6 ? AF_INET6 : AF_INET, b, key + half) != 1)
		log_warn("pair %s . %s: not an address", a, b);
	sb_add(keys, key, 2 * half);
}

static void pairs_set_name(const struct netd_network *n, bool v6,
			   char out[32])
{
	char id[13];
	short_id(n, id);
	snprintf(out, 32, "n_%s_pairs%s", id, v6 ? "6" : "");
}

/* The network's pair elements as script commands (all of them, added). */
static void gen_pairs(const struct netd_network *n, struct strbuf *out)
{
	for (int v6 = 0; v6 < 2 && !n->icc; v6++) {
		struct strbuf elems;
		sb_init(&elems);
		char set[32];
		pairs_set_name(n, v6, set);
		if (each_pair(n, NULL, v6, pair_text, &elems))
			sb_printf(out, "add element " TABLE " %s { %s }\n",
				  set, elems.buf);
		sb_free(&elems);
	}
}

/* The pair elements that involve only (all when NULL), added or deleted,
 * into a batch. */
static void batch_pairs(const struct netd_network *n,
			const struct netd_endpoint *only, bool add,
			struct nlb *b)
{
	for (int v6 = 0; v6 < 2 && !n->icc; v6++) {
		struct strbuf keys;
		sb_init(&keys);
		char set[32];
		pairs_set_name(n, v6, set);
		size_t count = each_pair(n, only, v6, pair_key, &keys);
		if (count)
			nftset_elems(b, add, set, keys.buf, keys.len / count,
					count);
		sb_free(&keys);
	}
}

static void gen_network_contents(const struct netd_network *n,
				 struct strbuf *out)
{
	gen_pairs(n, out);
	for (size_t i = 0; i < n->n_ports; i++)
		gen_port_cmds(n, &n->ports[i], "add", out);
}

void fw_gen_table(const struct netd_network *nets, size_t n, struct strbuf *out)
{
	/* "add" then "delete" makes the replacement work whether or not the
	 * table exists, in the same transaction as its new contents. */
	sb_printf(out, "add table " TABLE "\ndelete table " TABLE "\n");
	sb_printf(
	    out,
	    "table " TABLE " {\n"
	    "\tmap fwd_map { type ifname : verdict; }\n"
	    "\tmap in_map { type ifname : verdict; }\n"
	    "\tmap post_map { type ipv4_addr : verdict; flags interval; }\n"
	    "\tmap post_map6 { type ipv6_addr : verdict; flags interval; }\n"
	    "\tmap port_map { type inet_proto . ipv4_addr . inet_service : "
	    "ipv4_addr . inet_service; }\n"
	    "\tmap port_any { type inet_proto . inet_service : ipv4_addr . "
	    "inet_service; }\n"
	    "\tmap port_map6 { type inet_proto . ipv6_addr . inet_service : "
	    "ipv6_addr . inet_service; }\n"
	    "\tmap port_any6 { type inet_proto . inet_service : ipv6_addr . "
	    "inet_service; }\n"
	    "\tchain ports {\n"
	    "\t\tdnat ip to meta l4proto . ip daddr . th dport map @port_map\n"
	    "\t\tdnat ip to meta l4proto . th dport map @port_any\n"
	    /* ::1 is netd's relay's (see gen_port_cmds). */
	    "\t\tip6 daddr ::1 return\n"
	    "\t\tdnat ip6 to meta l4proto . ip6 daddr . th dport map "
	    "@port_map6\n"
	    "\t\tdnat ip6 to meta l4proto . th dport map @port_any6\n"
	    "\t}\n"
	    "\tchain raw {\n"
	    "\t\ttype filter hook prerouting priority raw; policy accept;\n"
	    /* route_localnet is on for the bridges so that 127.0.0.1 can be
	     * published; like the CVE-2020-8558 fix, nothing arriving from
	     * outside may reach 127.0.0.0/8. */
	    "\t\tiifname != \"lo\" ip daddr 127.0.0.0/8 drop\n"
	    "\t\tiifname != \"lo\" ip6 daddr ::1 drop\n"
	    "\t}\n"
	    "\tchain prerouting {\n"
	    "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
	    "\t\tfib daddr type local jump ports\n"
	    "\t}\n"
	    "\tchain output {\n"
	    "\t\ttype nat hook output priority -100; policy accept;\n"
	    "\t\tfib daddr type local jump ports\n"
	    "\t}\n"
	    "\tchain forward {\n"
	    "\t\ttype filter hook forward priority filter; policy accept;\n"
	    "\t\tct state established,related accept\n"
	    "\t\tiifname vmap @fwd_map\n"
	    "\t\toifname \"" NETD_BRIDGE_PREFIX "*\" ct status dnat accept\n"
	    "\t\toifname \"" NETD_BRIDGE_PREFIX "*\" drop\n"
	    "\t}\n"
	    "\tchain input {\n"
	    "\t\ttype filter hook input priority filter; policy accept;\n"
	    "\t\tiifname vmap @in_map\n"
	    "\t}\n"
	    "\tchain postrouting {\n"
	    "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
	    "\t\tip saddr 127.0.0.0/8 oifname \"" NETD_BRIDGE_PREFIX
	    "*\" masquerade\n"
	    "\t\tip saddr vmap @post_map\n"
	    "\t\tip6 saddr vmap @post_map6\n"
	    "\t}\n");
	for (size_t i = 0; i < n; i++)
		gen_network_objects(&nets[i], true, out);
	sb_printf(out, "}\n");
	for (size_t i = 0; i < n; i++) {
		gen_network_elems(&nets[i], "add", out);
		gen_network_contents(&nets[i], out);
	}
}

void fw_gen_table_delete(struct strbuf *out)
{
	sb_printf(out, "add table " TABLE "\ndelete table " TABLE "\n");
}

void fw_gen_network_add(const struct netd_network *n, struct strbuf *out)
{
	gen_network_objects(n, false, out);
	gen_network_elems(n, "add", out);
	gen_network_contents(n, out);
}

void fw_gen_network_remove(const struct netd_network *n, struct strbuf *out)
{
	char id[13];
	short_id(n, id);
	for (size_t i = 0; i < n->n_ports; i++)
		gen_port_cmds(n, &n->ports[i], "delete", out);
	gen_network_elems(n, "delete", out);
	sb_printf(out, "delete chain " TABLE " n_%s_fwd\n", id);
	sb_printf(out, "delete chain " TABLE " n_%s_in\n", id);
	sb_printf(out, "delete chain " TABLE " n_%s_post\n", id);
	sb_printf(out, "delete set " TABLE " n_%s_pairs\n", id);
	sb_printf(out, "delete set " TABLE " n_%s_pairs6\n", id);
}

static void gen_endpoint(const struct netd_network *n, size_t i, bool add,
			 struct nlb *pairs, struct strbuf *script)
{
	const struct netd_endpoint *ep = &n->endpoints[i];
	batch_pairs(n, ep, add, pairs);
	for (size_t p = 0; p < n->n_ports; p++)
		if (streq(n->ports[p].container_id, ep->container_id))
			gen_port_cmds(n, &n->ports[p], add ? "add" : "delete",
				      script);
}

void fw_gen_endpoint_add(const struct netd_network *n, size_t i,
			 struct nlb *pairs, struct strbuf *script)
{
	gen_endpoint(n, i, true, pairs, script);
}

void fw_gen_endpoint_remove(const struct netd_network *n, size_t i,
			    struct nlb *pairs, struct strbuf *script)
{
	gen_endpoint(n, i, false, pairs, script);
}

void fw_gen_links(const struct netd_network *n, struct nlb *out)
{
	for (int v6 = 0; v6 < 2; v6++) {
		char set[32];
		pairs_set_name(n, v6, set);
		nftset_flush(out, set);
	}
	batch_pairs(n, NULL, true, out);
}

void fw_gen_port(const struct netd_network *n, const struct netd_port *p,
		 bool add, struct strbuf *out)
{
	gen_port_cmds(n, p, add ? "add" : "delete", out);
}

/* libnftables is loaded on the first rule change and unloaded when netd
 * goes idle (fw_release): with the libraries it brings (libnftnl, libgmp,
 * libxtables) it is over 1 MiB that a netd only answering DNS between two
 * `up`s need not keep resident.
 *
 * One context serves until then.  Closing a context's netlink socket
 * waits for the kernel to finish destroying what the last transaction
 * removed (an RCU grace period, 5-15 ms here): paid when idle, not by
 * each change. */
static struct {
	void *lib;
	struct nft_ctx *ctx;
	__typeof__(nft_ctx_new) *ctx_new;
	__typeof__(nft_ctx_free) *ctx_free;
	__typeof__(nft_ctx_buffer_error) *buffer_error;
	__typeof__(nft_ctx_buffer_output) *buffer_output;
	__typeof__(nft_run_cmd_from_buffer) *run;
	__typeof__(nft_ctx_get_error_buffer) *error_buffer;
	__typeof__(nft_ctx_get_output_buffer) *output_buffer;
} nft;

void fw_release(void)
{
	nftset_release();
	if (nft.ctx)
		nft.ctx_free(nft.ctx);
	if (nft.lib)
		dlclose(nft.lib);
	memset(&nft, 0, sizeof(nft));
}

static int nft_load(struct orch_err *e)
{
	if (nft.lib)
		return 0;
	nft.lib = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!nft.lib)
		return err_set(e, ELIBACC, "updating nftables: %s", dlerror());
	const char *missing = NULL;
#define SYM(field, name)                                                       \
	if (!(*(void **)&nft.field = dlsym(nft.lib, #name)) && !missing)       \
		missing = #name;
	SYM(ctx_new, nft_ctx_new);
	SYM(ctx_free, nft_ctx_free);
	SYM(buffer_error, nft_ctx_buffer_error);
	SYM(buffer_output, nft_ctx_buffer_output);
	SYM(run, nft_run_cmd_from_buffer);
	SYM(error_buffer, nft_ctx_get_error_buffer);
	SYM(output_buffer, nft_ctx_get_output_buffer);
#undef SYM
	if (missing) {
		fw_release();
		return err_set(e, ELIBBAD, "updating nftables: %s lacks %s",
			       "libnftables.so.1", missing);
	}
	nft.ctx = nft.ctx_new(NFT_CTX_DEFAULT);
	if (!nft.ctx) {
		fw_release();
		return err_set(e, ENOMEM, "updating nftables: no context");
	}
	nft.buffer_error(nft.ctx);
	nft.buffer_output(nft.ctx);
	return 0;
}

int fw_apply(const char *script, struct orch_err *e)
{
	if (!script || !*script)
		return 0;
	int r = nft_load(e);
	if (r < 0)
		return r;
	int rc = nft.run(nft.ctx, script);
	/* Read (and so emptied) after every run, so that neither grows. */
	const char *msg = nft.error_buffer(nft.ctx);
	nft.output_buffer(nft.ctx);
	if (rc != 0) {
		/* The first line says what failed; the rest is the script. */
		size_t len = msg ? strcspn(msg, "\n") : 0;
		r = err_set(e, EIO, "updating nftables table inet orch: %.*s",
			    (int)len, msg ? msg : "failed");
		log_debug("nft script that failed:\n%s\n%s", script,
			  msg ? msg : "");
	}
	return r;
}
