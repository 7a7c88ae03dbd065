/* netd's policy: special address blocks, users' subnets, privileged
 * ports, and the netd.json keys that allow them. */
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

static struct netd_config
default_cfg(void)
{
	struct netd_config cfg;
	struct orch_err e;
	assert_int_equal(config_load(NULL, &cfg, &e), 0);
	return cfg;
}

static void test_special_blocks(void **state)
{
	(void)state;
	struct netd_config cfg = default_cfg();
	struct orch_err e;
	const char *bad[][2] = {
	    {"0.0.0.0/8", "unspecified"},
	    {"0.0.0.0/0", "unspecified"},
	    {"127.0.0.0/24", "loopback"},
	    {"169.254.169.0/24", "link-local"},
	    {"224.0.0.0/24", "multicast"},
	    {"239.1.0.0/16", "multicast"},
	    {"255.255.255.0/24", "broadcast"},
	    {"240.0.0.0/8", "reserved"},
	    {"128.0.0.0/1", "link-local"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		/* Root included. */
		assert_int_equal(
		    policy_subnet_check(&cfg, 0, C(bad[i][0]), NULL, 0, &e),
		    -EPERM);
		assert_non_null(strstr(e.msg, bad[i][0]));
		if (!strstr(e.msg, bad[i][1]))
			fail_msg("%s", e.msg);
	}
	assert_int_equal(
	    policy_subnet_check(&cfg, 0, C("8.8.8.0/24"), NULL, 0, &e), 0);
	assert_null(policy_subnet_special(C("10.0.0.0/8")));
	config_clear(&cfg);
}

static void test_host_routes(void **state)
{
	(void)state;
	struct netd_config cfg = default_cfg();
	struct orch_err e;
	struct cidr host[] = {C("192.168.1.0/24"), C("10.210.7.5/32")};
	/* Inside a route, around it, or around one address of the host. */
	assert_int_equal(
	    policy_subnet_check(&cfg, 0, C("192.168.1.128/25"), host, 2, &e),
	    -EEXIST);
	assert_non_null(
	    strstr(e.msg, "overlaps the host's route 192.168.1.0/24"));
	assert_int_equal(
	    policy_subnet_check(&cfg, 0, C("192.168.0.0/16"), host, 2, &e),
	    -EEXIST);
	assert_int_equal(
	    policy_subnet_check(&cfg, 1000, C("10.210.7.0/24"), host, 2, &e),
	    -EEXIST);
	assert_non_null(strstr(e.msg, "10.210.7.5/32"));
	assert_int_equal(
	    policy_subnet_check(&cfg, 1000, C("10.210.8.0/24"), host, 2, &e),
	    0);
	config_clear(&cfg);
}

static void test_user_subnets(void **state)
{
	(void)state;
	char path[] = "/tmp/netd-policy-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "{\"pool\": \"10.77.0.0/16\", \"user_subnets\": "
			   "[\"10.200.0.0/16\", \"172.30.0.0/24\"]}";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct netd_config cfg;
	struct orch_err e;
	assert_int_equal(config_load(path, &cfg, &e), 0);
	unlink(path);
	assert_int_equal(cfg.n_user_subnets, 2);
	const char *ok[] = {"10.77.3.0/24", "10.200.0.0/16", "10.200.9.0/24",
			    "172.30.0.0/25"};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		assert_int_equal(
		    policy_subnet_check(&cfg, 1000, C(ok[i]), NULL, 0, &e), 0);
	const char *no[] = {"8.8.8.0/24", "1.0.0.0/8", "10.0.0.0/8",
			    "172.30.0.0/23", "10.210.0.0/24"};
	for (size_t i = 0; i < ARRAY_SIZE(no); i++) {
		assert_int_equal(
		    policy_subnet_check(&cfg, 1000, C(no[i]), NULL, 0, &e),
		    -EPERM);
		assert_non_null(strstr(e.msg, no[i]));
		assert_non_null(strstr(e.msg, "outside the ranges uid 1000"));
		assert_int_equal(
		    policy_subnet_check(&cfg, 0, C(no[i]), NULL, 0, &e), 0);
	}
	config_clear(&cfg);
}

static int load_text(const char *text, struct netd_config *cfg,
		     struct orch_err *e);

/* IPv6: the default pool is a ULA /48 of /64s; netd.json may set
 * another, never in a special block. */
static void test_pool6(void **state)
{
	(void)state;
	struct netd_config cfg;
	struct orch_err e;
	assert_int_equal(config_load(NULL, &cfg, &e), 0);
	_cleanup_free_ char *def = ipam6_format_cidr(&cfg.pool6);
	assert_string_equal(def, "fd6f:7263:6800::/48");
	assert_int_equal(cfg.subnet_prefix6, 64);
	config_clear(&cfg);
	assert_int_equal(load_text("{\"pool6\": \"fd12:3456::/32\", "
				   "\"subnet_prefix6\": 80}",
				   &cfg, &e),
			 0);
	_cleanup_free_ char *set = ipam6_format_cidr(&cfg.pool6);
	assert_string_equal(set, "fd12:3456::/32");
	assert_int_equal(cfg.subnet_prefix6, 80);
	config_clear(&cfg);
	struct cidr6 c;
	assert_int_equal(ipam6_parse_cidr("fe80::/64", &c, &e), 0);
	assert_non_null(policy_subnet6_special(&c));
	assert_int_equal(ipam6_parse_cidr("ff02::/16", &c, &e), 0);
	assert_non_null(policy_subnet6_special(&c));
	assert_int_equal(ipam6_parse_cidr("fd00::/64", &c, &e), 0);
	assert_null(policy_subnet6_special(&c));
}

static int load_text(const char *text, struct netd_config *cfg,
		     struct orch_err *e)
{
	char path[] = "/tmp/netd-policy-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	int r = config_load(path, cfg, e);
	unlink(path);
	return r;
}

static void test_ports(void **state)
{
	(void)state;
	struct netd_config cfg;
	struct orch_err e;
	assert_int_equal(
	    load_text(
		"{\"user_ports\": {\"1000\": [\"80\", \"8000-8010\", 443], "
		"\"root\": [\"25\"]}}",
		&cfg, &e),
	    0);
	assert_int_equal(cfg.n_user_ports, 4);
	assert_int_equal(policy_port_check(&cfg, 0, 1, 1023, 1024, &e), 0);
	assert_int_equal(policy_port_check(&cfg, 1001, 1024, 20000, 1024, &e),
			 0);
	assert_int_equal(policy_port_check(&cfg, 1001, 80, 1, 1024, &e),
			 -EACCES);
	assert_non_null(strstr(e.msg, "host port 80 is privileged"));
	assert_int_equal(policy_port_check(&cfg, 1000, 80, 1, 1024, &e), 0);
	assert_int_equal(policy_port_check(&cfg, 1000, 443, 1, 1024, &e), 0);
	assert_int_equal(policy_port_check(&cfg, 1000, 80, 2, 1024, &e),
			 -EACCES);
	assert_non_null(strstr(e.msg, "host port 81 "));
	/* A range reaching past the limit: only the privileged part counts. */
	assert_int_equal(policy_port_check(&cfg, 1000, 1020, 10, 1024, &e),
			 -EACCES);
	assert_int_equal(policy_port_check(&cfg, 1000, 1020, 10, 1020, &e), 0);
	/* No privileged ports at all. */
	assert_int_equal(policy_port_check(&cfg, 1001, 80, 1, 0, &e), 0);
	config_clear(&cfg);

	const char *bad[] = {
	    "{\"user_ports\": [80]}",
	    "{\"user_ports\": {\"1000\": [\"0\"]}}",
	    "{\"user_ports\": {\"1000\": [\"90-80\"]}}",
	    "{\"user_ports\": {\"1000\": [\"80-70000\"]}}",
	    "{\"user_ports\": {\"1000\": [\"80x\"]}}",
	    "{\"user_ports\": {\"no-such-user-here\": [80]}}",
	    "{\"user_subnets\": [\"10.0.0.1/8\"]}",
	    "{\"user_subnets\": \"10.0.0.0/8\"}",
	    "{\"user_subnets\": [\"127.0.0.0/16\"]}",
	    "{\"pool\": \"224.0.0.0/16\"}",
	    "{\"pool6\": \"fe80::/48\"}",
	    "{\"pool6\": \"::1/128\"}",
	    "{\"pool6\": \"fd00::1/48\"}",
	    "{\"pool6\": \"fd00::/64\", \"subnet_prefix6\": 56}",
	    "{\"pool6\": \"fd00::/48\", \"subnet_prefix6\": 40}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(load_text(bad[i], &cfg, &e), -EINVAL);
		assert_non_null(strstr(e.msg, "reading config"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_special_blocks),
	    cmocka_unit_test(test_pool6),
	    cmocka_unit_test(test_host_routes),
	    cmocka_unit_test(test_user_subnets),
	    cmocka_unit_test(test_ports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
