/* netd's address management: parsing, overlap, subnet and lease choice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "netd/netd-int.h"

static struct cidr C(const char *s)
{
	struct cidr c;
	struct orch_err e;
	if (ipam_parse_cidr(s, &c, &e) < 0)
		fail_msg("%s", e.msg);
	return c;
}

static uint32_t A(const char *s)
{
	uint32_t a = 0;
	assert_int_equal(ipam_parse_addr(s, &a), 0);
	return a;
}

static void test_parse(void **state)
{
	(void)state;
	struct cidr c;
	struct orch_err e;
	assert_int_equal(ipam_parse_cidr("10.210.0.0/16", &c, &e), 0);
	assert_int_equal(c.addr, 0x0ad20000);
	assert_int_equal(c.prefix, 16);
	assert_int_equal(ipam_parse_cidr("10.210.0.1/16", &c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "host bits"));
	const char *bad[] = {"", "10.0.0.0", "10.0.0.0/", "10.0.0.0/33",
			     "10.0.0.0/-1", "300.0.0.0/8", "10.0.0.0/8x",
			     "a.b.c.d/8", "10.0.0.0.0/8", "/8"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(ipam_parse_cidr(bad[i], &c, &e), -EINVAL);
	char buf[16];
	ipam_format_addr(A("192.168.1.254"), buf);
	assert_string_equal(buf, "192.168.1.254");
	char *s = ipam_format_cidr(C("10.1.0.0/24"));
	assert_string_equal(s, "10.1.0.0/24");
	free(s);
}

static void test_overlap(void **state)
{
	(void)state;
	assert_true(ipam_overlap(C("10.0.0.0/8"), C("10.210.3.0/24")));
	assert_true(ipam_overlap(C("10.210.3.0/24"), C("10.0.0.0/8")));
	assert_false(ipam_overlap(C("10.210.3.0/24"), C("10.210.4.0/24")));
	assert_true(ipam_overlap(C("10.210.3.128/25"), C("10.210.3.0/24")));
	assert_true(ipam_overlap(C("0.0.0.0/0"), C("1.2.3.0/24")));
	assert_true(ipam_contains(C("10.210.3.0/24"), A("10.210.3.77")));
	assert_false(ipam_contains(C("10.210.3.0/24"), A("10.210.4.1")));
	assert_false(ipam_host_valid(C("10.210.3.0/24"), A("10.210.3.0")));
	assert_false(ipam_host_valid(C("10.210.3.0/24"), A("10.210.3.255")));
	assert_true(ipam_host_valid(C("10.210.3.0/24"), A("10.210.3.1")));
	assert_true(ipam_host_valid(C("10.0.0.0/31"), A("10.0.0.0")));
}

static void test_subnet_next(void **state)
{
	(void)state;
	struct cidr out;
	struct cidr pool = C("10.210.0.0/16");
	assert_int_equal(ipam_subnet_next(pool, 24, NULL, 0, &out), 0);
	assert_int_equal(out.addr, A("10.210.0.0"));
	/* Taken by other networks and by the host's routes (a VPN /23). */
	struct cidr taken[] = {C("10.210.0.0/24"), C("10.210.2.0/23"),
			       C("10.210.1.0/24")};
	assert_int_equal(ipam_subnet_next(pool, 24, taken, 3, &out), 0);
	assert_int_equal(out.addr, A("10.210.4.0"));
	assert_int_equal(out.prefix, 24);
	/* A freed subnet is reused: the first free one wins. */
	assert_int_equal(ipam_subnet_next(pool, 24, taken + 1, 1, &out), 0);
	assert_int_equal(out.addr, A("10.210.0.0"));
	/* A host route covering the pool exhausts it. */
	struct cidr all = C("10.0.0.0/8");
	assert_int_equal(ipam_subnet_next(pool, 24, &all, 1, &out), -ENOSPC);
	assert_int_equal(ipam_subnet_next(C("10.0.0.0/30"), 30, NULL, 0, &out), 0);
	assert_int_equal(ipam_subnet_next(pool, 8, NULL, 0, &out), -EINVAL);
}

static void test_lease_next(void **state)
{
	(void)state;
	struct cidr net = C("10.210.3.0/29");
	uint32_t used[8] = {A("10.210.3.1")};
	uint32_t a;
	size_t n = 1;
	for (int i = 2; i <= 6; i++) {
		assert_int_equal(ipam_lease_next(net, used, n, &a), 0);
		assert_int_equal(a, A("10.210.3.0") + (uint32_t)i);
		used[n++] = a;
	}
	assert_int_equal(ipam_lease_next(net, used, n, &a), -ENOSPC);
	/* A released address is reused. */
	used[2] = used[--n];
	assert_int_equal(ipam_lease_next(net, used, n, &a), 0);
	assert_int_equal(a, A("10.210.3.3"));
}

static struct cidr6 C6(const char *s)
{
	struct cidr6 c;
	struct orch_err e;
	if (ipam6_parse_cidr(s, &c, &e) < 0)
		fail_msg("%s", e.msg);
	return c;
}

static void test_ipv6(void **state)
{
	(void)state;
	struct cidr6 c;
	struct orch_err e;
	char buf[46];
	/* Parsing: host bits, bad forms, the canonical text back. */
	assert_int_equal(ipam6_parse_cidr("fd00:1::/64", &c, &e), 0);
	assert_int_equal(c.prefix, 64);
	assert_int_equal(ipam6_parse_cidr("fd00:1::1/64", &c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "host bits"));
	const char *bad[] = {"", "fd00::", "fd00::/", "fd00::/129",
			     "fd00::/-1", "10.0.0.0/8", "fd00:::1/64", "/64",
			     "fd00::/64x"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(ipam6_parse_cidr(bad[i], &c, &e), -EINVAL);
	_cleanup_free_ char *t = ipam6_format_cidr(&(struct cidr6){
	    {0xfd, 0, 0, 1}, 64});
	assert_string_equal(t, "fd00:1::/64");
	/* Overlap and containment at any prefix, odd ones included. */
	struct cidr6 a = C6("fd00:1::/64"), b = C6("fd00::/16"),
		     d = C6("fd01::/16"), o = C6("fd00:1:0:0:8000::/65");
	assert_true(ipam6_overlap(&a, &b));
	assert_true(ipam6_overlap(&b, &a));
	assert_false(ipam6_overlap(&a, &d));
	assert_true(ipam6_overlap(&a, &o));
	uint8_t x[16];
	assert_int_equal(ipam6_parse_addr("fd00:1::8", x), 0);
	assert_true(ipam6_contains(&a, x));
	assert_false(ipam6_contains(&o, x));
	assert_true(ipam6_host_valid(&a, x));
	assert_false(ipam6_host_valid(&a, a.addr)); /* subnet-router anycast */
	/* Subnets: the next free /64 of a /48, carrying across bytes. */
	struct cidr6 pool = C6("fd6f:7263:6800::/48"), out;
	struct cidr6 taken[] = {C6("fd6f:7263:6800::/64"),
				C6("fd6f:7263:6800:1::/64"),
				C6("fd6f:7263:6800:2::/63")};
	assert_int_equal(ipam6_subnet_next(&pool, 64, taken, 3, &out), 0);
	ipam6_format_addr(out.addr, buf);
	assert_string_equal(buf, "fd6f:7263:6800:4::");
	assert_int_equal(out.prefix, 64);
	/* Counting carries from one byte into the next. */
	struct cidr6 low = C6("fd6f:7263:6800::/56");
	assert_int_equal(ipam6_subnet_next(&pool, 64, &low, 1, &out), 0);
	ipam6_format_addr(out.addr, buf);
	assert_string_equal(buf, "fd6f:7263:6800:100::");
	/* A pool all taken, or a host route around it, leaves nothing. */
	struct cidr6 small = C6("fd6f:7263:6800:f0::/60");
	assert_int_equal(ipam6_subnet_next(&small, 64, &small, 1, &out),
			 -ENOSPC);
	struct cidr6 all = C6("fd00::/8");
	assert_int_equal(ipam6_subnet_next(&pool, 64, &all, 1, &out), -ENOSPC);
	/* Leases: the lowest free host, past the gateway and the taken. */
	uint8_t used[3][16], lease[16];
	assert_int_equal(ipam6_parse_addr("fd00:1::1", used[0]), 0);
	assert_int_equal(ipam6_parse_addr("fd00:1::2", used[1]), 0);
	assert_int_equal(ipam6_parse_addr("fd00:1::4", used[2]), 0);
	assert_int_equal(
	    ipam6_lease_next(&a, (const uint8_t(*)[16])used, 3, lease), 0);
	ipam6_format_addr(lease, buf);
	assert_string_equal(buf, "fd00:1::3");
	assert_int_equal(ipam6_lease_next(&a, NULL, 0, lease), 0);
	ipam6_format_addr(lease, buf);
	assert_string_equal(buf, "fd00:1::1");
	/* A /127 holds one host: full once it is taken. */
	struct cidr6 tiny = C6("fd00:1::/127");
	assert_int_equal(ipam6_lease_next(&tiny, (const uint8_t(*)[16])used,
					  1, lease),
			 -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_subnet_next),
		cmocka_unit_test(test_lease_next),
		cmocka_unit_test(test_ipv6),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
