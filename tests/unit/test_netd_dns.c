/* netd's resolver: who sees which names, A and AAAA answers, askers known
 * by their IPv4 or IPv6 address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ldns/ldns.h>

#include "netd/netd-int.h"

static char *none[] = {NULL};
/* app's links: [web:www] */
static char *app_links[] = {"www=web", NULL};

static struct netd_endpoint front_eps[] = {
    {"c-web", "p-web-1", "web", none, "10.210.0.2", 24, "10.210.0.1", "eth0",
     "ov-1", true, NULL, "fd6f:7263:6800::2", 64, "fd6f:7263:6800::1", NULL,
     NULL, NULL, false},
    {"c-app", "p-app-1", "app", none, "10.210.0.3", 24, "10.210.0.1", "eth0",
     "ov-2", true, NULL, "fd6f:7263:6800::3", 64, "fd6f:7263:6800::1", NULL,
     app_links, NULL, false},
};
/* IPv6 only */
static struct netd_endpoint six_eps[] = {
    {"c-db", "p-db-1", "db", none, "", 0, "", "eth0", "ov-3", true, NULL,
     "fd6f:7263:6800:1::2", 64, "fd6f:7263:6800:1::1", NULL, NULL, NULL, false},
    {"c-app", "p-app-1", "app", none, "", 0, "", "eth1", "ov-4", false,
     NULL, "fd6f:7263:6800:1::3", 64, "fd6f:7263:6800:1::1", NULL, NULL, NULL, false},
};
/* IPv4 only, not shared with web */
static struct netd_endpoint back_eps[] = {
    {"c-secret", "p-secret-1", "secret", none, "10.210.2.2", 24,
     "10.210.2.1", "eth0", "ov-5", true, NULL, "", 0, "", NULL, NULL, NULL, false},
};
static struct netd_network nets[] = {
    {"aa", "p_front", "p", "ob-aa", "10.210.0.0/24", "10.210.0.1", false,
     true, 0, none, front_eps, 2, NULL, 0, NULL, 0, "fd6f:7263:6800::/64",
     "fd6f:7263:6800::1", NULL, 0},
    {"bb", "p_six", "p", "ob-bb", "", "", false, true, 0, none, six_eps, 2,
     NULL, 0, NULL, 0, "fd6f:7263:6800:1::/64", "fd6f:7263:6800:1::1", NULL, 0},
    {"cc", "p_back", "p", "ob-cc", "10.210.2.0/24", "10.210.2.1", false,
     true, 0, none, back_eps, 1, NULL, 0, NULL, 0, "", "", NULL, 0},
};
static const struct netd_state st = {.nets = nets,
				     .n_nets = 3,
				     .saved_ip_forward = -1,
				     .saved_bridge_nf = -1,
				     .saved_ip6_forward = -1,
				     .saved_bridge_nf6 = -1};

/* Asks name/type as asker; returns the verdict, *rcode and the answers'
 * addresses joined by spaces in out. */
static enum dns_verdict ask(const char *asker, const char *name,
			    ldns_rr_type type, int *rcode, char *out,
			    size_t outlen)
{
	ldns_pkt *q = NULL;
	assert_int_equal(
	    ldns_pkt_query_new_frm_str(&q, name, type, LDNS_RR_CLASS_IN, 0),
	    LDNS_STATUS_OK);
	uint8_t *wire = NULL, *reply = NULL;
	size_t wlen = 0, rlen = 0;
	assert_int_equal(ldns_pkt2wire(&wire, q, &wlen), LDNS_STATUS_OK);
	ldns_pkt_free(q);
	enum dns_verdict v = dns_answer(&st, asker, wire, wlen, &reply, &rlen);
	free(wire);
	out[0] = '\0';
	*rcode = -1;
	if (v != DNS_ANSWER)
		return v;
	ldns_pkt *r = NULL;
	assert_int_equal(ldns_wire2pkt(&r, reply, rlen), LDNS_STATUS_OK);
	free(reply);
	*rcode = ldns_pkt_get_rcode(r);
	ldns_rr_list *an = ldns_pkt_answer(r);
	for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
		char *a = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(an, i), 0));
		snprintf(out + strlen(out), outlen - strlen(out), "%s%s",
			 i ? " " : "", a);
		free(a);
	}
	ldns_pkt_free(r);
	return v;
}

static void test_a_and_aaaa(void **state)
{
	(void)state;
	char got[256];
	int rc;
	/* From app's IPv4 address: web's A, and its AAAA. */
	assert_int_equal(ask("10.210.0.3", "web.", LDNS_RR_TYPE_A, &rc, got,
			     sizeof(got)),
			 DNS_ANSWER);
	assert_int_equal(rc, LDNS_RCODE_NOERROR);
	assert_string_equal(got, "10.210.0.2");
	ask("10.210.0.3", "web.", LDNS_RR_TYPE_AAAA, &rc, got, sizeof(got));
	assert_string_equal(got, "fd6f:7263:6800::2");
	/* The same asker known by its IPv6 address. */
	ask("fd6f:7263:6800::3", "web.", LDNS_RR_TYPE_AAAA, &rc, got,
	    sizeof(got));
	assert_string_equal(got, "fd6f:7263:6800::2");
	/* An IPv6-only name: AAAA, and no A (but the name exists). */
	ask("fd6f:7263:6800:1::3", "db.", LDNS_RR_TYPE_AAAA, &rc, got,
	    sizeof(got));
	assert_string_equal(got, "fd6f:7263:6800:1::2");
	ask("fd6f:7263:6800:1::3", "db.", LDNS_RR_TYPE_A, &rc, got,
	    sizeof(got));
	assert_int_equal(rc, LDNS_RCODE_NOERROR);
	assert_string_equal(got, "");
	/* An IPv4-only name has no AAAA. */
	ask("10.210.2.2", "secret.", LDNS_RR_TYPE_AAAA, &rc, got, sizeof(got));
	assert_int_equal(rc, LDNS_RCODE_NOERROR);
	assert_string_equal(got, "");
}

static void test_who_sees_what(void **state)
{
	(void)state;
	char got[256];
	int rc;
	/* web shares no network with db or secret: NXDOMAIN, whichever
	 * family it asks from. */
	ask("fd6f:7263:6800::2", "db.", LDNS_RR_TYPE_AAAA, &rc, got,
	    sizeof(got));
	assert_int_equal(rc, LDNS_RCODE_NXDOMAIN);
	ask("10.210.0.2", "secret.", LDNS_RR_TYPE_A, &rc, got, sizeof(got));
	assert_int_equal(rc, LDNS_RCODE_NXDOMAIN);
	/* An address that is no container of ours is refused. */
	ask("fd6f:7263:6800::99", "web.", LDNS_RR_TYPE_AAAA, &rc, got,
	    sizeof(got));
	assert_int_equal(rc, LDNS_RCODE_REFUSED);
	ask("", "web.", LDNS_RR_TYPE_A, &rc, got, sizeof(got));
	assert_int_equal(rc, LDNS_RCODE_REFUSED);
	/* Other names go to the upstream servers. */
	assert_int_equal(ask("fd6f:7263:6800:1::3", "example.org.",
			     LDNS_RR_TYPE_AAAA, &rc, got, sizeof(got)),
			 DNS_FORWARD);
}

/* A link alias is its service's name for the linking container alone. */
static void test_link_alias(void **state)
{
	(void)state;
	char got[256];
	int rc;
	ask("10.210.0.3", "www.", LDNS_RR_TYPE_A, &rc, got, sizeof(got));
	assert_int_equal(rc, LDNS_RCODE_NOERROR);
	assert_string_equal(got, "10.210.0.2");
	ask("fd6f:7263:6800::3", "WWW.", LDNS_RR_TYPE_AAAA, &rc, got,
	    sizeof(got));
	assert_string_equal(got, "fd6f:7263:6800::2");
	/* web itself, and app on another network, do not know it. */
	ask("10.210.0.2", "www.", LDNS_RR_TYPE_A, &rc, got, sizeof(got));
	assert_int_equal(rc, LDNS_RCODE_NXDOMAIN);
	ask("fd6f:7263:6800:1::3", "www.", LDNS_RR_TYPE_AAAA, &rc, got,
	    sizeof(got));
	assert_int_equal(rc, LDNS_RCODE_NXDOMAIN);
}

/* The reply as a resolver reads it: the query's id, question and
 * recursion flag; a name compressed in the question (a pointer, RFC 1035
 * 4.1.4) is followed. */
static void test_reply_wire(void **state)
{
	(void)state;
	ldns_pkt *q = NULL;
	assert_int_equal(ldns_pkt_query_new_frm_str(&q, "WEB.", LDNS_RR_TYPE_A,
						    LDNS_RR_CLASS_IN, LDNS_RD),
			 LDNS_STATUS_OK);
	ldns_pkt_set_id(q, 0x1234);
	uint8_t *wire = NULL, *reply = NULL;
	size_t wlen = 0, rlen = 0;
	assert_int_equal(ldns_pkt2wire(&wire, q, &wlen), LDNS_STATUS_OK);
	ldns_pkt_free(q);
	assert_int_equal(dns_answer(&st, "10.210.0.3", wire, wlen, &reply,
				    &rlen),
			 DNS_ANSWER);
	ldns_pkt *r = NULL;
	assert_int_equal(ldns_wire2pkt(&r, reply, rlen), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_id(r), 0x1234);
	assert_true(ldns_pkt_qr(r) && ldns_pkt_aa(r) && ldns_pkt_rd(r));
	assert_int_equal(ldns_pkt_qdcount(r), 1);
	assert_int_equal(ldns_pkt_ancount(r), 1);
	char *owner = ldns_rdf2str(
	    ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(r), 0)));
	assert_string_equal(owner, "WEB.");
	free(owner);
	assert_int_equal(
	    ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(r), 0)), 5);
	ldns_pkt_free(r);
	free(reply);
	free(wire);
}

/* What is no single well-formed query gets no answer at all. */
static void test_malformed(void **state)
{
	(void)state;
	static const uint8_t web_a[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0,
					0, 0, 0, 0, 3, 'w', 'e', 'b', 0, 0,
					1, 0, 1};
	uint8_t buf[sizeof(web_a)], *reply = NULL;
	size_t rlen = 0;
	memcpy(buf, web_a, sizeof(buf));
	assert_int_equal(dns_answer(&st, "10.210.0.3", buf, sizeof(buf),
				    &reply, &rlen),
			 DNS_ANSWER);
	free(reply);
	/* Cut anywhere before its end. */
	for (size_t n = 0; n < sizeof(buf); n++)
		assert_int_equal(dns_answer(&st, "10.210.0.3", buf, n, &reply,
					    &rlen),
				 DNS_DROP);
	/* A response, another opcode, two questions. */
	buf[2] = 0x81;
	assert_int_equal(dns_answer(&st, "10.210.0.3", buf, sizeof(buf),
				    &reply, &rlen),
			 DNS_DROP);
	buf[2] = 0x11;
	assert_int_equal(dns_answer(&st, "10.210.0.3", buf, sizeof(buf),
				    &reply, &rlen),
			 DNS_DROP);
	buf[2] = 0x01;
	buf[5] = 2;
	assert_int_equal(dns_answer(&st, "10.210.0.3", buf, sizeof(buf),
				    &reply, &rlen),
			 DNS_DROP);
	/* A name that points at itself. */
	buf[5] = 1;
	buf[12] = 0xc0;
	buf[13] = 12;
	assert_int_equal(dns_answer(&st, "10.210.0.3", buf, sizeof(buf),
				    &reply, &rlen),
			 DNS_DROP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_and_aaaa),
	    cmocka_unit_test(test_who_sees_what),
	    cmocka_unit_test(test_link_alias),
	    cmocka_unit_test(test_reply_wire),
	    cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
