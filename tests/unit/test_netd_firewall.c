/* netd's nftables script generation, pinned by golden files in
 * tests/unit/golden/ (NETD_UPDATE_GOLDEN=1 rewrites them); set batches are
 * decoded from their netlink messages back into nft's syntax for that. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "netd/netd-int.h"
#include "tests/unit/golden.h"

#include <arpa/inet.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

static char *empty[] = {NULL};
static char *www[] = {"www", NULL};

static struct netd_endpoint front_eps[] = {
	{"c-web", "p-web-1", "web", www, "10.210.0.2", 24, "10.210.0.1", "eth0",
	 "ov-000000000001", true, NULL, "fd6f:7263:6800::2", 64,
	 "fd6f:7263:6800::1", NULL, NULL, NULL, false},
	{"c-api", "p-api-1", "api", empty, "10.210.0.3", 24, "10.210.0.1",
	 "eth0", "ov-000000000002", true, NULL, "fd6f:7263:6800::3", 64,
	 "fd6f:7263:6800::1", NULL, NULL, NULL, false},
	{"c-api2", "p-api-2", "api", empty, "10.210.0.4", 24, "10.210.0.1",
	 "eth0", "ov-000000000003", true, NULL, "", 0, "", NULL, NULL, NULL, false},
	{"c-stray", "p-stray-1", "stray", empty, "10.210.0.5", 24, "10.210.0.1",
	 "eth0", "ov-000000000004", true, NULL, "", 0, "", NULL, NULL, NULL, false},
};
static struct netd_port front_ports[] = {
	{"c-web", "tcp", "", 8080, 80, 1},
	{"c-api", "udp", "127.0.0.1", 5353, 53, 1},
	/* IPv6 only (the host's, not ::1: netd relays that one) */
	{"c-web", "tcp", "::", 8443, 443, 1},
	{"c-web", "tcp", "::1", 8444, 443, 1},
};
/* host ports 9000-9003 -> 90-93: one command, one element per port */
static struct netd_port range_port = {"c-api", "tcp", "", 9000, 90, 4};
static struct netd_pair front_pairs[] = {{"web", "api"}, {"p-stray-1", "web"}};
static struct netd_endpoint back_eps[] = {
	{"c-api", "p-api-1", "api", empty, "10.210.1.2", 24, "10.210.1.1", "eth1",
	 "ov-000000000005", false, NULL, "", 0, "", NULL, NULL, NULL, false},
	{"c-db", "p-db-1", "db", empty, "10.210.1.3", 24, "10.210.1.1", "eth0",
	 "ov-000000000006", false, NULL, "", 0, "", NULL, NULL, NULL, false},
};

static struct netd_network nets[] = {
	{"aaaaaaaaaaaa1111", "p_front", "p", "ob-aaaaaaaaaaaa", "10.210.0.0/24",
	 "10.210.0.1", false, false, 0, empty, front_eps, 4, front_ports, 4,
	 front_pairs, 2, "fd6f:7263:6800::/64", "fd6f:7263:6800::1", NULL, 0},
	{"bbbbbbbbbbbb2222", "p_back", "p", "ob-bbbbbbbbbbbb", "10.210.1.0/24",
	 "10.210.1.1", true, true, 1000, empty, back_eps, 2, NULL, 0, NULL, 0,
	 "", "", NULL, 0},
};

/* One key of a pair set: two IPv4 or two IPv6 addresses. */
static void key_text(const unsigned char *k, size_t len, struct strbuf *out)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	int af = len == 32 ? AF_INET6 : AF_INET;
	assert_true(len == 8 || len == 32);
	assert_non_null(inet_ntop(af, k, a, sizeof(a)));
	assert_non_null(inet_ntop(af, k + len / 2, b, sizeof(b)));
	sb_printf(out, "%s . %s", a, b);
}

/* The batch's messages as the nft commands they stand for, after
 * checking what the kernel needs of each. */
static void batch_text(struct nlb *b, struct strbuf *out)
{
	size_t off = 0;
	unsigned n = 0;
	while (off < b->msgs.len) {
		struct nlmsghdr *h = (struct nlmsghdr *)(b->msgs.buf + off);
		assert_true(h->nlmsg_len >= NLMSG_HDRLEN + sizeof(struct nfgenmsg));
		off += NLMSG_ALIGN(h->nlmsg_len);
		n++;
		assert_int_equal(h->nlmsg_type >> 8, NFNL_SUBSYS_NFTABLES);
		int cmd = h->nlmsg_type & 0xff;
		assert_true(cmd == NFT_MSG_NEWSETELEM || cmd == NFT_MSG_DELSETELEM);
		assert_true(h->nlmsg_flags & NLM_F_REQUEST);
		assert_true(h->nlmsg_flags & NLM_F_ACK);
		assert_int_equal(!!(h->nlmsg_flags & NLM_F_CREATE),
				 cmd == NFT_MSG_NEWSETELEM);
		const struct nfgenmsg *g = nlmsg_data(h);
		assert_int_equal(g->nfgen_family, NFPROTO_INET);
		const char *table = NULL, *set = NULL;
		struct nlattr *elems = NULL, *a;
		int rem;
		nla_for_each_attr(a, nlmsg_attrdata(h, sizeof(*g)),
				  nlmsg_attrlen(h, sizeof(*g)), rem)
		{
			if (nla_type(a) == NFTA_SET_ELEM_LIST_TABLE)
				table = nla_get_string(a);
			else if (nla_type(a) == NFTA_SET_ELEM_LIST_SET)
				set = nla_get_string(a);
			else if (nla_type(a) == NFTA_SET_ELEM_LIST_ELEMENTS)
				elems = a;
			else
				fail_msg("attribute %d", nla_type(a));
		}
		assert_string_equal(table, "orch");
		assert_non_null(set);
		if (!elems) {
			assert_int_equal(cmd, NFT_MSG_DELSETELEM);
			sb_printf(out, "flush set inet orch %s\n", set);
			continue;
		}
		sb_printf(out, "%s element inet orch %s { ",
			  cmd == NFT_MSG_NEWSETELEM ? "add" : "delete", set);
		struct nlattr *el, *key, *v;
		int r1, r2, r3;
		bool first = true;
		nla_for_each_nested(el, elems, r1)
		{
			assert_int_equal(nla_type(el), NFTA_LIST_ELEM);
			nla_for_each_nested(key, el, r2)
			{
				assert_int_equal(nla_type(key), NFTA_SET_ELEM_KEY);
				nla_for_each_nested(v, key, r3)
				{
					assert_int_equal(nla_type(v), NFTA_DATA_VALUE);
					sb_adds(out, first ? "" : ", ");
					key_text(nla_data(v), (size_t)nla_len(v), out);
					first = false;
				}
			}
		}
		sb_adds(out, " }\n");
	}
	assert_int_equal(n, b->n);
	nlb_free(b);
}

static void golden(const char *name, struct strbuf *got)
{
	_cleanup_free_ char *path =
		xasprintf("tests/unit/golden/netd_%s.nft", name);
	golden_check(path, got->buf ? got->buf : "", "NETD_UPDATE_GOLDEN");
	sb_free(got);
}

static void test_table(void **state)
{
	(void)state;
	struct strbuf sb;
	sb_init(&sb);
	fw_gen_table(nets, 2, &sb);
	golden("table", &sb);
	fw_gen_table_delete(&sb);
	golden("table_delete", &sb);
}

static void test_network(void **state)
{
	(void)state;
	struct strbuf sb;
	sb_init(&sb);
	fw_gen_network_add(&nets[0], &sb);
	golden("network_add", &sb);
	fw_gen_network_remove(&nets[0], &sb);
	golden("network_remove", &sb);
	fw_gen_network_add(&nets[1], &sb);
	golden("network_add_internal_icc", &sb);
}

static void test_endpoint_small(void **state)
{
	(void)state;
	struct strbuf sb, script;
	sb_init(&sb);
	sb_init(&script);
	struct nlb b = {0};
	/* Adding an endpoint touches only its own pairs and ports. */
	fw_gen_endpoint_add(&nets[0], 0, &b, &script);
	batch_text(&b, &sb);
	sb_adds(&sb, script.buf ? script.buf : "");
	sb_free(&script);
	golden("endpoint_add", &sb);
	fw_gen_endpoint_remove(&nets[0], 0, &b, &script);
	batch_text(&b, &sb);
	sb_adds(&sb, script.buf ? script.buf : "");
	sb_free(&script);
	golden("endpoint_remove", &sb);
	/* icc networks have no pairs: nothing to do. */
	fw_gen_endpoint_add(&nets[1], 1, &b, &script);
	assert_int_equal(b.n, 0);
	assert_int_equal(script.len, 0);
	fw_gen_links(&nets[0], &b);
	batch_text(&b, &sb);
	golden("links", &sb);
	fw_gen_port(&nets[0], &front_ports[1], true, &sb);
	golden("port_add", &sb);
	fw_gen_port(&nets[0], &range_port, true, &sb);
	golden("port_range_add", &sb);
	fw_gen_port(&nets[0], &range_port, false, &sb);
	golden("port_range_remove", &sb);
	/* "::": IPv6 only; "::1": no element (relayed). */
	fw_gen_port(&nets[0], &front_ports[2], true, &sb);
	assert_non_null(strstr(sb.buf, "port_any6 { tcp . 8443 : "
					"fd6f:7263:6800::2 . 443 }"));
	assert_null(strstr(sb.buf, "port_any {"));
	sb_free(&sb);
	fw_gen_port(&nets[0], &front_ports[3], true, &sb);
	assert_int_equal(sb.len, 0);
}

static void test_rule_count_constant(void **state)
{
	(void)state;
	/* The rules do not grow with endpoints or pairs, only elements. */
	struct strbuf a, b;
	sb_init(&a);
	sb_init(&b);
	struct netd_network n = nets[0];
	n.n_endpoints = 1;
	n.n_pairs = 0;
	n.n_ports = 0;
	fw_gen_table(&n, 1, &a);
	fw_gen_table(&nets[0], 1, &b);
	size_t ra = 0, rb = 0;
	for (char *p = a.buf; (p = strstr(p, "\n\t\t")); p++)
		ra++;
	for (char *p = b.buf; (p = strstr(p, "\n\t\t")); p++)
		rb++;
	assert_int_equal(ra, rb);
	sb_free(&a);
	sb_free(&b);
}

/* Where the kernel cannot report refusals, the rules only refuse. */
static void test_refusal_log(void **state)
{
	(void)state;
	struct strbuf sb;
	sb_init(&sb);
	fw_gen_network_add(&nets[0], &sb);
	assert_non_null(strstr(sb.buf, "log group 4271 prefix \"aaaaaaaaaaaa\""));
	assert_non_null(strstr(sb.buf, "limit rate 20/second"));
	sb_free(&sb);
	fw_log_refusals(false);
	fw_gen_network_add(&nets[0], &sb);
	fw_log_refusals(true);
	assert_null(strstr(sb.buf, "log group"));
	assert_non_null(strstr(sb.buf, "reject with tcp reset"));
	sb_free(&sb);
}

/* The packets NFLOG hands over: IPv4 only, ports of first fragments. */
static void test_nflog_parse(void **state)
{
	(void)state;
	uint8_t p[28] = {0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 6, 0, 0,
			 10,   210, 3, 2, 10, 210, 3, 5, 0x9c, 0x40, 0x1f, 0x90};
	struct nflog_packet pkt;
	assert_true(nflog_parse_ip(p, sizeof(p), &pkt));
	assert_int_equal(pkt.proto, 6);
	assert_string_equal(pkt.src, "10.210.3.2");
	assert_string_equal(pkt.dst, "10.210.3.5");
	assert_int_equal(pkt.dport, 8080);
	p[9] = 17;
	assert_true(nflog_parse_ip(p, sizeof(p), &pkt));
	assert_int_equal(pkt.dport, 8080);
	/* A later fragment carries no ports. */
	p[7] = 0x10;
	assert_true(nflog_parse_ip(p, sizeof(p), &pkt));
	assert_int_equal(pkt.dport, 0);
	p[7] = 0;
	/* Too short for its header, a header length below 20, IPv6 cut
	 * short, another version. */
	assert_false(nflog_parse_ip(p, 19, &pkt));
	p[0] = 0x44;
	assert_false(nflog_parse_ip(p, sizeof(p), &pkt));
	p[0] = 0x60;
	assert_false(nflog_parse_ip(p, sizeof(p), &pkt));
	p[0] = 0x55;
	assert_false(nflog_parse_ip(p, sizeof(p), &pkt));
	/* Ports cut off: the addresses still count. */
	p[0] = 0x45;
	assert_true(nflog_parse_ip(p, 22, &pkt));
	assert_int_equal(pkt.dport, 0);
	/* IPv6: TCP from fd00::2 to fd00::3 port 5432. */
	uint8_t q[44] = {0x60, 0, 0, 0, 0, 4, 6, 64};
	q[8] = q[24] = 0xfd;
	q[23] = 2;
	q[39] = 3;
	q[42] = 0x15;
	q[43] = 0x38;
	assert_true(nflog_parse_ip(q, sizeof(q), &pkt));
	assert_int_equal(pkt.proto, 6);
	assert_string_equal(pkt.src, "fd00::2");
	assert_string_equal(pkt.dst, "fd00::3");
	assert_int_equal(pkt.dport, 5432);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_refusal_log),
		cmocka_unit_test(test_nflog_parse),
		cmocka_unit_test(test_network),
		cmocka_unit_test(test_endpoint_small),
		cmocka_unit_test(test_rule_count_constant),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
