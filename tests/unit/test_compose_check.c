/* Unit tests for the values a hostile compose file could use against the
 * host: sysctls outside the container's namespaces, names and addresses
 * that would inject lines into /etc/hosts or /etc/resolv.conf, relative
 * working directories, tiny memory limits and counts that allocate. */
#include "tests/unit/compose_test.h"

#define SVC "services:\n  web:\n    image: x\n"

/* Loads SVC followed by more, which must fail at line:col with what. */
static void expect_svc_error(const char *more, int line, int col,
			     const char *what)
{
	_cleanup_free_ char *yaml = xasprintf(SVC "%s", more);
	expect_error(yaml, line, col, what);
}

static void expect_svc_ok(const char *more)
{
	_cleanup_free_ char *yaml = xasprintf(SVC "%s", more);
	project_free(load_ok(yaml));
}

static void test_sysctls_host_wide(void **state)
{
	(void)state;
	expect_svc_error("    sysctls:\n      kernel.printk_ratelimit: 6\n", 5,
			 7,
			 "sysctl \"kernel.printk_ratelimit\" is refused: it is "
			 "not in a namespace");
	expect_svc_error("    sysctls: [\"kernel.core_pattern=|/tmp/x\"]\n", 4,
			 15, "sysctl \"kernel.core_pattern\" is refused");
	expect_svc_error("    sysctls:\n      vm.overcommit_memory: 1\n", 5, 7,
			 "is refused");
	/* The '/' form is the same sysctl. */
	expect_svc_error("    sysctls:\n      kernel/core_pattern: x\n", 5, 7,
			 "sysctl \"kernel/core_pattern\" is refused");
	expect_svc_error("    sysctls:\n      kernel.hostname: x\n", 5, 7,
			 "set the host name with hostname: instead");
	expect_svc_error("    sysctls:\n      \"net..x\": 1\n", 5, 7,
			 "\"net..x\" is not a sysctl name");
	expect_svc_error("    sysctls:\n      \"net/../kernel/x\": 1\n", 5, 7,
			 "is not a sysctl name");
}

static void test_sysctls_namespaced(void **state)
{
	(void)state;
	expect_svc_ok(
	    "    sysctls:\n      net.ipv4.ip_forward: 1\n"
	    "      net/ipv4/conf/eth0.100/rp_filter: 1\n"
	    "      kernel.msgmax: 1\n      kernel.sem: 1 2 3 4\n"
	    "      kernel.shmmax: 1\n      kernel.shm_rmid_forced: 1\n"
	    "      fs.mqueue.msg_max: 10\n"
	    "      kernel.domainname: x\n");
	/* Joining another service's namespace keeps them namespaced. */
	expect_svc_ok("    network_mode: service:db\n"
		      "    sysctls: [net.core.somaxconn=1]\n"
		      "  db:\n    image: x\n");
}

static void test_sysctls_shared_namespace(void **state)
{
	(void)state;
	expect_svc_error("    network_mode: host\n"
			 "    sysctls: [net.core.somaxconn=1]\n",
			 5, 15, "not allowed with network_mode: host");
	expect_svc_error("    ipc: host\n    sysctls: [kernel.shmmax=1]\n", 5,
			 15, "not allowed with ipc: host");
	expect_svc_error("    ipc: host\n    sysctls: [fs.mqueue.msg_max=1]\n",
			 5, 15, "not allowed with ipc: host");
	expect_svc_error("    uts: host\n    sysctls: [kernel.domainname=x]\n",
			 5, 15, "not allowed with uts: host");
}

static void test_host_names(void **state)
{
	(void)state;
	expect_svc_error("    hostname: \"good\\nbad\"\n", 4, 5,
			 "services.web.hostname: \"good\\nbad\" is not a valid "
			 "host name");
	expect_svc_error("    hostname: ../x\n", 4, 5, "not a valid host name");
	expect_svc_error("    hostname: -x\n", 4, 5, "not a valid host name");
	expect_svc_error("    hostname: a..b\n", 4, 5, "not a valid host name");
	/* 65 bytes: more than the kernel keeps. */
	expect_svc_error("    hostname: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
			 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
			 4, 5, "not a valid host name");
	expect_svc_error("    domainname: \"x.com\\nsearch evil\"\n", 4, 5,
			 "not a valid domain name");
	expect_svc_ok("    hostname: web-1.example_internal\n"
		      "    domainname: example.com.\n");
}

static void test_resolver_lines(void **state)
{
	(void)state;
	expect_svc_error("    dns_search: [\"x.com\\nnameserver 6.6.6.6\"]\n",
			 4, 5,
			 "services.web.dns_search: \"x.com\\nnameserver "
			 "6.6.6.6\" is not a valid search domain");
	expect_svc_error("    dns_search: \"a/b\"\n", 4, 5,
			 "not a valid search domain");
	expect_svc_error("    dns_opt: [\"ndots:1\\nnameserver 6.6.6.6\"]\n", 4,
			 5, "is not a resolver option");
	expect_svc_error("    dns: [\"1.1.1.1\\nnameserver 6.6.6.6\"]\n", 4, 5,
			 "is not an IP address");
	expect_svc_ok("    dns: [1.1.1.1, \"2001:db8::1\"]\n"
		      "    dns_search: [corp.example, example.org.]\n"
		      "    dns_opt: [ndots:2, rotate, use-vc]\n");
}

static void test_extra_hosts(void **state)
{
	(void)state;
	expect_svc_error(
	    "    extra_hosts: [\"evil\\n6.6.6.6 injected:1.2.3.4\"]\n", 4, 19,
	    "services.web.extra_hosts: \"evil\\n6.6.6.6 injected\" is not a "
	    "valid host name");
	expect_svc_error("    extra_hosts: [\"h:1.2.3.4\\n6.6.6.6 x\"]\n", 4,
			 19, "is not an IP address");
	expect_svc_error("    extra_hosts:\n      h: not-an-ip\n", 5, 7,
			 "\"not-an-ip\" is not an IP address");
	struct project *p = load_ok(SVC "    extra_hosts:\n"
					"      - a:1.2.3.4\n"
					"      - b=2001:db8::1\n"
					"      - c=[2001:db8::2]\n"
					"      - d:host-gateway\n");
	const struct service *s = &p->services[0];
	assert_string_equal(kv_get_value(&s->extra_hosts, "d"), "host-gateway");
	assert_string_equal(kv_get_value(&s->extra_hosts, "a"), "1.2.3.4");
	assert_string_equal(kv_get_value(&s->extra_hosts, "b"), "2001:db8::1");
	assert_string_equal(kv_get_value(&s->extra_hosts, "c"), "2001:db8::2");
	project_free(p);
}

static void test_aliases(void **state)
{
	(void)state;
	expect_svc_error(
	    "    networks:\n      n:\n        aliases: [\"a\\nb\"]\n"
	    "networks:\n  n: {}\n",
	    5, 7, "\"a\\nb\" is not a valid network alias");
	expect_svc_error("    networks:\n      n:\n        aliases: [../../x]\n"
			 "networks:\n  n: {}\n",
			 5, 7, "\"../../x\" is not a valid network alias");
	expect_svc_error("    links: [\"db:../x\"]\n  db:\n    image: x\n", 4,
			 5, "\"../x\" is not a valid link alias");
	expect_svc_ok("    links: [\"db:database\"]\n    networks:\n      n:\n"
		      "        aliases: [api, api.internal]\n"
		      "  db:\n    image: x\n    networks: [n]\n"
		      "networks:\n  n: {}\n");
}

static void test_object_names(void **state)
{
	(void)state;
	expect_error("services:\n  \"a\\nb\":\n    image: x\n", 2, 3,
		     "invalid service name \"a\\nb\"");
	expect_error("services:\n  ..:\n    image: x\n", 2, 3,
		     "invalid service name \"..\"");
	expect_error(
	    "services:\n  web:\n    image: x\n    networks: [\"../n\"]\n"
	    "networks:\n  \"../n\": {}\n",
	    6, 3, "invalid network name \"../n\"");
	expect_error("services:\n  web:\n    image: x\n"
		     "networks:\n  n:\n    name: \"a/b\"\n",
		     5, 3, "invalid network name \"a/b\"");
	expect_error("services:\n  web:\n    image: x\nvolumes:\n  v:\n"
		     "    name: \"../v\"\n",
		     5, 3, "invalid volume name \"../v\"");
	expect_error("services:\n  web:\n    image: x\n    container_name: "
		     "\"a/b\"\n",
		     4, 21, "invalid container name");
	/* A profile that no --profile can name keeps its service out. */
	expect_error("services:\n  web:\n    image: x\n    profiles: [dev, \"\"]\n",
		     4, 21, "invalid profile name \"\"");
	expect_error("services:\n  web:\n    image: x\n    profiles:\n      - \"a b\"\n",
		     5, 9, "invalid profile name \"a b\"");
}

static void test_working_dir_memory(void **state)
{
	(void)state;
	expect_svc_error("    working_dir: app\n", 4, 5,
			 "services.web.working_dir: \"app\" is not an absolute "
			 "path");
	expect_svc_error("    mem_limit: 1m\n", 4, 5,
			 "services.web.mem_limit: 1048576 bytes is below the "
			 "smallest memory limit");
	expect_svc_error("    deploy:\n      resources:\n        limits:\n"
			 "          memory: 4m\n",
			 4, 5, "deploy.resources.limits.memory: 4194304 bytes");
	expect_svc_ok("    working_dir: /app\n    mem_limit: 6m\n");
}

/* cpu_quota/cpu_period are a CPU limit in the kernel's range, taken as
 * cpus when cpus (or deploy's) is not given. */
static void test_cfs_quota(void **state)
{
	(void)state;
	expect_svc_error("    cpu_period: 10\n", 4, 5,
			 "services.web.cpu_period: 10: want 1000 to 1000000");
	expect_svc_error("    cpu_quota: 0\n", 4, 5,
			 "services.web.cpu_quota: 0: want at least 1000");
	struct project *p = load_ok(SVC "    cpu_quota: 50000\n"
					"    cpu_period: 200000\n");
	struct m_resources r = service_limits(&p->services[0]);
	assert_true(r.cpus > 0.2499 && r.cpus < 0.2501);
	project_free(p);
	p = load_ok(SVC "    cpu_quota: 150000\n");
	r = service_limits(&p->services[0]);
	assert_true(r.cpus > 1.499 && r.cpus < 1.501);
	project_free(p);
	p = load_ok(SVC "    cpus: 0.5\n    cpu_quota: 150000\n");
	r = service_limits(&p->services[0]);
	assert_true(r.cpus > 0.499 && r.cpus < 0.501);
	project_free(p);
	expect_svc_ok("    cpu_quota: -1\n");
}

/* cpuset, blkio_config, mem_swappiness, cgroup: the cgroup keys compose
 * gives, each value checked where it is written. */
static void test_cgroup_keys(void **state)
{
	(void)state;
	expect_svc_error("    cpuset: \"1-\"\n", 4, 5,
			 "services.web.cpuset: \"1-\": want CPU numbers");
	expect_svc_error("    cpuset: \"3-1\"\n", 4, 5, "want CPU numbers");
	expect_svc_error("    mem_swappiness: 101\n", 4, 21,
			 "services.web.mem_swappiness: 101 is out of range");
	expect_svc_error("    cgroup: hosts\n", 4, 5,
			 "services.web.cgroup: \"hosts\": want host or private");
	expect_svc_error("    blkio_config:\n      weight: 5\n", 5, 15,
			 "services.web.blkio_config.weight: 5 is out of range");
	expect_svc_error("    blkio_config:\n      device_read_bps:\n"
			 "        - {path: /dev/sda}\n",
			 6, 11,
			 "services.web.blkio_config.device_read_bps[0]: needs a "
			 "path and a rate");
	expect_svc_error("    blkio_config:\n      device_write_iops:\n"
			 "        - {path: sda, rate: 1}\n",
			 6, 18, "\"sda\" is not an absolute path");
	expect_svc_error("    blkio_config:\n      weight_devices: []\n", 5,
			 7, "weight_devices");
	struct project *p = load_ok(
	    SVC "    cpuset: \"0-3,8\"\n    mem_swappiness: 0\n"
		"    oom_kill_disable: true\n    cgroup: host\n"
		"    blkio_config:\n      weight: 300\n"
		"      weight_device: [{path: /dev/sda, weight: 400}]\n"
		"      device_read_bps: [{path: /dev/sda, rate: 12mb}]\n"
		"      device_write_iops: [{path: /dev/sdb, rate: 120}]\n");
	const struct service *s = &p->services[0];
	assert_string_equal(s->cpuset, "0-3,8");
	assert_int_equal(s->mem_swappiness, 0);
	assert_true(s->oom_kill_disable);
	assert_int_equal(s->blkio.weight, 300);
	assert_int_equal(s->blkio.n_dev[M_BLKIO_WEIGHT_DEVICE], 1);
	assert_int_equal(s->blkio.dev[M_BLKIO_WEIGHT_DEVICE][0].value, 400);
	assert_int_equal(s->blkio.dev[M_BLKIO_READ_BPS][0].value, 12 << 20);
	assert_string_equal(s->blkio.dev[M_BLKIO_WRITE_IOPS][0].path,
			    "/dev/sdb");
	assert_int_equal(s->blkio.dev[M_BLKIO_WRITE_IOPS][0].value, 120);
	assert_int_equal(s->blkio.n_dev[M_BLKIO_WRITE_BPS], 0);
	project_free(p);
}

static void test_counts(void **state)
{
	(void)state;
	expect_svc_error("    deploy: {replicas: 1000000}\n", 4, 24,
			 "1000000 is out of range (0 to 1000)");
	expect_svc_error("    scale: 1001\n", 4, 12,
			 "1001 is out of range (0 to 1000)");
	expect_svc_ok("    scale: 1000\n");
	expect_error("services:\n  a:\n    image: x\n    scale: 1000\n"
		     "  b:\n    image: x\n    scale: 1000\n"
		     "  c:\n    image: x\n",
		     8, 3, "more than 2000 containers");
	/* Ports of all replicas together. */
	expect_error("services:\n  a:\n    image: x\n    scale: 2\n"
		     "    ports: [\"1-40000\"]\n",
		     5, 5, "publish more than 65536 ports");
	/* Ranges expanded count; the bound stops before allocating more. */
	expect_svc_error("    ports: [\"1-65535\", \"1-65535\"]\n", 4, 24,
			 "too many ports");
	expect_svc_error("    expose: [\"1-65535\", \"1-65535\"]\n", 4, 25,
			 "too many ports");
}

static void test_too_many_objects(void **state)
{
	(void)state;
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "services:\n");
	for (int i = 0; i <= ORCH_MAX_SERVICES; i++)
		sb_printf(&sb, "  s%d: {image: x}\n", i);
	expect_error(sb.buf, 1, 1,
		     "services: 1001 entries, more than the 1000");
	sb.len = 0;
	sb_adds(&sb, "services:\n  web: {image: x}\nnetworks:\n");
	for (int i = 0; i <= ORCH_MAX_NETWORKS; i++)
		sb_printf(&sb, "  n%d: {}\n", i);
	expect_error(sb.buf, 3, 1, "networks: 1001 entries");
	sb_free(&sb);
}

/* The implicit default network is placed at its first service, so that
 * an error about it (a subnet held elsewhere) names the file. */
static void test_default_network_position(void **state)
{
	(void)state;
	struct project *p = load_ok("services:\n  web:\n    image: x\n"
				    "  api:\n    image: x\n");
	const struct network *n = project_network(p, "default");
	assert_non_null(n);
	assert_string_equal(n->pos.file, TEST_FILE);
	assert_int_equal(n->pos.line, 4);
	assert_int_equal(n->pos.col, 3);
	project_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sysctls_host_wide),
	    cmocka_unit_test(test_sysctls_namespaced),
	    cmocka_unit_test(test_sysctls_shared_namespace),
	    cmocka_unit_test(test_host_names),
	    cmocka_unit_test(test_resolver_lines),
	    cmocka_unit_test(test_extra_hosts),
	    cmocka_unit_test(test_aliases),
	    cmocka_unit_test(test_object_names),
	    cmocka_unit_test(test_working_dir_memory),
	    cmocka_unit_test(test_cfs_quota),
	    cmocka_unit_test(test_counts),
	    cmocka_unit_test(test_cgroup_keys),
	    cmocka_unit_test(test_too_many_objects),
	    cmocka_unit_test(test_default_network_position),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
