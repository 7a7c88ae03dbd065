/* netd's resolver: who sees which names, A and AAAA answers, askers known
 * by their IPv4 or IPv6 address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ldns/ldns.h>

#include "netd/netd-int.h"

static char *none[] = {NULL};

static struct netd_endpoint front_eps[] = {
    {"c-web", "p-web-1", "web", none, "10.210.0.2", 24, "10.210.0.1", "eth0",
     "ov-1", true, NULL, "fd6f:7263:6800::2", 64, "fd6f:7263:6800::1"},
    {"c-app", "p-app-1", "app", none, "10.210.0.3", 24, "10.210.0.1", "eth0",
     "ov-2", true, NULL, "fd6f:7263:6800::3", 64, "fd6f:7263:6800::1"},
};
/* IPv6 only */
static struct netd_endpoint six_eps[] = {
    {"c-db", "p-db-1", "db", none, "", 0, "", "eth0", "ov-3", true, NULL,
     "fd6f:7263:6800:1::2", 64, "fd6f:7263:6800:1::1"},
    {"c-app", "p-app-1", "app", none, "", 0, "", "eth1", "ov-4", false,
     NULL, "fd6f:7263:6800:1::3", 64, "fd6f:7263:6800:1::1"},
};
/* IPv4 only, not shared with web */
static struct netd_endpoint back_eps[] = {
    {"c-secret", "p-secret-1", "secret", none, "10.210.2.2", 24,
     "10.210.2.1", "eth0", "ov-5", true, NULL, "", 0, ""},
};
static struct netd_network nets[] = {
    {"aa", "p_front", "p", "ob-aa", "10.210.0.0/24", "10.210.0.1", false,
     true, 0, none, front_eps, 2, NULL, 0, NULL, 0, "fd6f:7263:6800::/64",
     "fd6f:7263:6800::1"},
    {"bb", "p_six", "p", "ob-bb", "", "", false, true, 0, none, six_eps, 2,
     NULL, 0, NULL, 0, "fd6f:7263:6800:1::/64", "fd6f:7263:6800:1::1"},
    {"cc", "p_back", "p", "ob-cc", "10.210.2.0/24", "10.210.2.1", false,
     true, 0, none, back_eps, 1, NULL, 0, NULL, 0, "", ""},
};
static const struct netd_state st = {nets, 3, -1, -1, -1, -1};

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_and_aaaa),
	    cmocka_unit_test(test_who_sees_what),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
