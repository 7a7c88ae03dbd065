/* Unit tests for the compose loader's errors: every class of bad input is
 * reported at its file:line:col with a message naming key and value, and
 * all errors are reported, not only the first. */
#include "tests/unit/compose_test.h"

static void test_yaml_syntax(void **state)
{
	(void)state;
	expect_error("services:\n  web:\n    image: [a\n", 4, 1,
		     "YAML syntax error");
	expect_error("services:\n  web:\n  image: x\n   bad: y\n", 4, 7,
		     "YAML syntax error");
	expect_error("services:\n\tweb: {}\n", 2, 1, "YAML syntax error");
	expect_error("services: *nope\n", 1, 11, "unknown anchor \"nope\"");
	expect_error("- a\n- b\n", 1, 1,
		     "top level of a compose file must be "
		     "a mapping");
	expect_error("services:\n  ? [a]\n  : x\n", 2, 5,
		     "mapping keys must be "
		     "strings");
}

static void test_duplicate_keys(void **state)
{
	(void)state;
	expect_error("services:\n  web:\n    image: a\n    ports: []\n"
		     "    image: b\n",
		     5, 5, "duplicate key \"image\" (first defined at line 3)");
	expect_error("services:\n  a: {image: x}\nservices:\n  b: {image: y}\n",
		     3, 1, "duplicate key \"services\"");
}

static void test_wrong_types(void **state)
{
	(void)state;
	expect_error("services:\n  web:\n    image: [a, b]\n", 3, 12,
		     "services.web.image: must be a string, not a sequence");
	expect_error("services:\n  web:\n    image: x\n    privileged: maybe\n",
		     4, 17, "services.web.privileged: must be a boolean");
	expect_error("services:\n  web:\n    image: x\n    ports: \"80:80\"\n",
		     4, 12, "services.web.ports: must be a list");
	expect_error("services:\n  web:\n    image: x\n    cpu_shares: lots\n",
		     4, 17, "must be an integer, not \"lots\"");
	expect_error("services: [web]\n", 1, 11, "services: must be a mapping");
	expect_error("services:\n  web:\n", 2, 3,
		     "a service must be a mapping");
	expect_error("services:\n  web:\n    image: x\n    environment: 3\n", 4,
		     18, "must be a mapping or a list");
	expect_error("services:\n  web:\n    image: x\n    cpus: -1\n", 4, 11,
		     "must be a positive number");
}

static void test_unknown_keys(void **state)
{
	(void)state;
	expect_error("servics:\n  web: {image: x}\n", 1, 1,
		     "unknown key \"servics\" (did you mean \"services\"?)");
	expect_error("services:\n  web:\n    imgae: x\n", 3, 5,
		     "services.web: unknown key \"imgae\" (did you mean "
		     "\"image\"?)");
	expect_error("services:\n  web:\n    image: x\n    restrat: always\n",
		     4, 5, "did you mean \"restart\"?");
	expect_error(
	    "services:\n  web:\n    image: x\n    completely_else: 1\n", 4, 5,
	    "unknown key \"completely_else\"");
	expect_error("services:\n  web:\n    image: x\n    healthcheck:\n"
		     "      intervall: 1s\n",
		     5, 7, "did you mean \"interval\"?");
	expect_error("services:\n  web:\n    image: x\nnetworks:\n  n:\n"
		     "    drivr: bridge\n",
		     6, 5, "did you mean \"driver\"?");
	expect_error("services:\n  web:\n    image: x\n    ulimits:\n"
		     "      nofil: 10\n",
		     5, 7,
		     "unknown ulimit \"nofil\" (did you mean \"nofile\"?)");
	/* x- keys are free everywhere. */
	struct project *p =
	    load_ok("x-top: 1\nservices:\n  web:\n    image: x\n"
		    "    x-mine: {a: 1}\n");
	project_free(p);
}

static void test_undefined_references(void **state)
{
	(void)state;
	expect_error("services:\n  web:\n    image: x\n    depends_on: [db]\n",
		     4, 18,
		     "service \"web\" depends on undefined service \"db\"");
	expect_error("services:\n  web:\n    image: x\n    networks: [front]\n",
		     4, 16, "service \"web\" uses undefined network \"front\"");
	expect_error(
	    "services:\n  web:\n    image: x\n    volumes: [\"data:/d\"]\n", 4,
	    15, "service \"web\" uses undefined volume \"data\"");
	expect_error("services:\n  web:\n    image: x\n    links: [db]\n", 4, 5,
		     "links to undefined service \"db\"");
	expect_error("services:\n  web:\n    image: x\n    network_mode: "
		     "service:db\n",
		     4, 5, "uses the network of undefined service \"db\"");
	expect_error("services:\n  web:\n    image: x\n    secrets: [tok]\n", 4,
		     15, "uses undefined secret \"tok\"");
	expect_error("services:\n  web:\n    image: x\n    configs: [c]\n", 4,
		     15, "uses undefined config \"c\"");
	expect_error("services:\n  web:\n    image: x\n    depends_on: [dbg]\n"
		     "  dbg: {image: x, profiles: [debug]}\n",
		     4, 18, "not enabled by the active profiles");
	/* required: false tolerates a missing dependency. */
	struct project *p =
	    load_ok("services:\n  web:\n    image: x\n"
		    "    depends_on:\n      db: {required: false}\n");
	project_free(p);
}

static void test_cycles(void **state)
{
	(void)state;
	expect_error("services:\n"
		     "  a: {image: x, depends_on: [b]}\n"
		     "  b: {image: x, depends_on: [c]}\n"
		     "  c: {image: x, depends_on: [a]}\n",
		     4, 30, "dependency cycle: a -> b -> c -> a");
	expect_error("services:\n  a: {image: x, depends_on: [a]}\n", 2, 30,
		     "service \"a\" depends on itself");
}

static void test_ports(void **state)
{
	(void)state;
	expect_error(
	    "services:\n  web:\n    image: x\n    ports: [\"80:abc\"]\n", 4, 13,
	    "invalid port \"80:abc\": bad container port");
	expect_error(
	    "services:\n  web:\n    image: x\n    ports: [\"70000:80\"]\n", 4,
	    13, "host port out of range");
	expect_error(
	    "services:\n  web:\n    image: x\n    ports: [\"80/tcpx\"]\n", 4,
	    13, "unknown protocol");
	expect_error("services:\n  web:\n    image: x\n    ports: "
		     "[\"1.2.3:80:80\"]\n",
		     4, 13, "bad host address");
	expect_error("services:\n  web:\n    image: x\n    ports: "
		     "[\"8000-8002:80-81\"]\n",
		     4, 13, "ranges differ in size");
	expect_error("services:\n  web:\n    image: x\n    ports:\n"
		     "      - published: 80\n",
		     5, 9, "target is required");
	expect_error("services:\n  web:\n    image: x\n    ports:\n"
		     "      - target: 0\n",
		     5, 17, "out of range");
	expect_error(
	    "services:\n  web:\n    image: x\n    expose: [\"80:80\"]\n", 4, 14,
	    "invalid port \"80:80\"");
}

static void test_published_twice(void **state)
{
	(void)state;
	expect_error("services:\n"
		     "  a:\n    image: x\n    ports: [\"8080:80\"]\n"
		     "  b:\n    image: x\n    ports: [\"127.0.0.1:8080:81\"]\n",
		     7, 13,
		     "published port 8080/tcp is already used by service "
		     "\"a\"");
	expect_error(
	    "services:\n"
	    "  a:\n    image: x\n    scale: 2\n    ports: [\"8080:80\"]\n",
	    5, 13, "has 2 replicas but publishes fixed port 8080/tcp");
	/* Different protocols or addresses do not clash. */
	struct project *p = load_ok(
	    "services:\n"
	    "  a: {image: x, ports: [\"53:53/udp\", \"127.0.0.1:80:80\"]}\n"
	    "  b: {image: x, ports: [\"53:53\", \"127.0.0.2:80:80\"]}\n");
	project_free(p);
}

static void test_subnets_addresses(void **state)
{
	(void)state;
	expect_error(
	    "services:\n  a: {image: x}\n"
	    "networks:\n"
	    "  n1:\n    ipam:\n      config:\n        - subnet: 10.1.0.0/16\n"
	    "  n2:\n    ipam:\n      config:\n        - subnet: 10.1.2.0/24\n",
	    11, 11,
	    "subnet 10.1.2.0/24 of network \"n2\" overlaps subnet "
	    "10.1.0.0/16 of network \"n1\"");
	expect_error("services:\n  a: {image: x}\nnetworks:\n  n1:\n    ipam:\n"
		     "      config:\n        - subnet: 10.1.0.0/33\n",
		     7, 19, "invalid subnet \"10.1.0.0/33\"");
	expect_error("services:\n  a:\n    image: x\n    networks:\n      n1:\n"
		     "        ipv4_address: 10.2.0.5\n"
		     "networks:\n  n1:\n    ipam:\n      config:\n"
		     "        - subnet: 10.1.0.0/16\n",
		     5, 7,
		     "address 10.2.0.5 is outside the subnets of network "
		     "\"n1\"");
	expect_error("services:\n  a:\n    image: x\n    networks:\n      n1:\n"
		     "        ipv4_address: 10.2.0.999\n"
		     "networks:\n  n1: {}\n",
		     6, 23, "invalid IPv4 address \"10.2.0.999\"");
	expect_error("services:\n  a:\n    image: x\n    networks:\n      n1:\n"
		     "        ipv4_address: 10.2.0.9\n"
		     "networks:\n  n1: {}\n",
		     5, 7, "needs a subnet");
	expect_error("services:\n  a: {image: x}\nnetworks:\n  n1:\n    ipam:\n"
		     "      config:\n        - subnet: 10.1.0.0/16\n"
		     "          gateway: 10.2.0.1\n",
		     7, 11, "gateway 10.2.0.1 of network \"n1\" is outside");
}

static void test_values(void **state)
{
	(void)state;
	expect_error("services:\n  web:\n    image: x\n    healthcheck:\n"
		     "      interval: 5 minutes\n",
		     5, 17,
		     "services.web.healthcheck.interval: invalid duration "
		     "\"5 minutes\"");
	expect_error(
	    "services:\n  web:\n    image: x\n    stop_grace_period: 10\n", 4,
	    24, "invalid duration \"10\"");
	expect_error("services:\n  web:\n    image: x\n    mem_limit: 12q\n", 4,
		     16, "services.web.mem_limit: invalid byte size \"12q\"");
	expect_error(
	    "services:\n  web:\n    image: x\n    deploy:\n      resources:\n"
	    "        limits: {memory: lots}\n",
	    6, 26, "deploy.resources.limits.memory: invalid byte size");
	expect_error(
	    "services:\n  web:\n    image: x\n    restart: sometimes\n", 4, 14,
	    "invalid restart policy \"sometimes\"");
	expect_error(
	    "services:\n  web:\n    image: x\n    restart: on-failure:x\n", 4,
	    14, "invalid restart policy");
	expect_error("services:\n  web:\n    image: x\n    depends_on:\n"
		     "      db: {condition: service_ready}\n  db: {image: x}\n",
		     5, 23, "invalid condition \"service_ready\"");
	expect_error(
	    "services:\n  web:\n    image: x\n    volumes: [\"data\"]\n", 4, 15,
	    "the target \"data\" is not an absolute path");
	expect_error("services:\n  web:\n    image: x\n    volumes: "
		     "[\"/a:/b:bogus\"]\n",
		     4, 15, "unknown option \"bogus\"");
	expect_error(
	    "services:\n  web:\n    image: x\n    network_mode: wide\n", 4, 19,
	    "invalid network_mode \"wide\"");
	expect_error(
	    "services:\n  web:\n    image: x\n    stop_signal: SIGNOPE\n", 4,
	    18, "unknown signal");
	expect_error(
	    "services:\n  web:\n    image: x\n    command: \"echo 'x\"\n", 4,
	    14, "unterminated quote");
	expect_error("services:\n  web:\n    image: x\n    healthcheck:\n"
		     "      test: [curl]\n",
		     5, 13, "must start with \"CMD\"");
	expect_error("services:\n  web:\n    image: x\n    network_mode: host\n"
		     "    networks: [a]\nnetworks: {a: {}}\n",
		     5, 5, "network_mode and networks cannot be used together");
	expect_error("services:\n  web:\n    image: x\n    extends: base\n", 4,
		     14, "extends: no service \"base\" in this file");
	expect_error("services:\n  web:\n    image: x\nnetworks:\n  n:\n"
		     "    driver: overlay\n",
		     6, 13, "unsupported network driver \"overlay\"");
}

static void test_missing_image(void **state)
{
	(void)state;
	expect_error(
	    "services:\n  web:\n    command: [true]\n", 2, 3,
	    "service \"web\" has neither an image nor a build context");
}

static void test_required_variable(void **state)
{
	(void)state;
	expect_error("services:\n  web:\n    image: \"${IMG:?set IMG to the "
		     "image}\"\n",
		     3, 13,
		     "required variable IMG is missing a value: set IMG to "
		     "the image");
	expect_error("services:\n  web:\n    image: ${EMPTY:?}\n", 3, 12,
		     "required variable EMPTY is missing a value");
	/* Set but empty passes the colon-less form. */
	struct project *p =
	    load_ok("services:\n  web:\n    image: x${EMPTY?}\n");
	project_free(p);
	/* Errors point at the '$', inside the quotes. */
	expect_error("services:\n  web:\n    image: \"${}\"\n", 3, 13,
		     "invalid interpolation format");
	expect_error("services:\n  web:\n    image: \"${A\"\n", 3, 13,
		     "invalid interpolation format");
	/* A '$' that starts no variable is kept, as compose keeps it. */
	p = load_ok("services:\n  web:\n    image: x\n"
		    "    command: \"a $ b\"\n");
	assert_string_equal(p->services[0].command[1], "$");
	project_free(p);
}

static void test_project_name_errors(void **state)
{
	(void)state;
	expect_error("name: My Project\nservices:\n  a: {image: x}\n", 1, 7,
		     "invalid project name \"My Project\"");
}

static void test_all_errors_reported(void **state)
{
	(void)state;
	struct orch_diag d = {0};
	struct project *p = load_text("services:\n"
				      "  web:\n"
				      "    imgae: nginx\n"
				      "    ports: [\"80:abc\"]\n"
				      "    mem_limit: 12q\n"
				      "    depends_on: [db]\n"
				      "  db:\n"
				      "    image: pg\n"
				      "    depends_on: [web]\n"
				      "    restart: sometimes\n",
				      &d);
	assert_null(p);
	assert_true(has_error(&d, 2, 3, "neither an image"));
	assert_true(has_error(&d, 3, 5, "unknown key"));
	assert_true(has_error(&d, 4, 13, "invalid port"));
	assert_true(has_error(&d, 5, 16, "invalid byte size"));
	assert_true(has_error(&d, 10, 14, "invalid restart policy"));
	bool cycle = false;
	for (size_t i = 0; i < d.n; i++)
		cycle |= strstr(d.v[i].msg, "dependency cycle") != NULL;
	assert_true(cycle);
	assert_true(d.n_errors >= 6);
	/* Sorted by position. */
	for (size_t i = 1; i < d.n; i++)
		assert_true(d.v[i - 1].line <= d.v[i].line);
	diag_free(&d);
}

static void test_errors_in_second_file(void **state)
{
	(void)state;
	const char *names[] = {"/nonexistent/proj/a.yaml",
			       "/nonexistent/proj/b.yaml", NULL};
	const char *texts[] = {"services:\n  web: {image: x}\n",
			       "services:\n  web:\n    ports: [\"x\"]\n", NULL};
	struct orch_diag d = {0};
	assert_null(load_files(names, texts, &d, NULL));
	assert_int_equal(d.n_errors, 1);
	assert_string_equal(d.v[0].file, "/nonexistent/proj/b.yaml");
	assert_int_equal(d.v[0].line, 3);
	diag_free(&d);
	/* A missing file is an error naming it. */
	char *files[] = {"/nonexistent/nope.yaml", NULL};
	struct compose_opts o = {.files = files, .environ = test_env};
	struct project *p;
	assert_true(compose_load(&o, &p, &d) < 0);
	assert_non_null(strstr(d.v[0].msg, "/nonexistent/nope.yaml"));
	diag_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_yaml_syntax),
	    cmocka_unit_test(test_duplicate_keys),
	    cmocka_unit_test(test_wrong_types),
	    cmocka_unit_test(test_unknown_keys),
	    cmocka_unit_test(test_undefined_references),
	    cmocka_unit_test(test_cycles),
	    cmocka_unit_test(test_ports),
	    cmocka_unit_test(test_published_twice),
	    cmocka_unit_test(test_subnets_addresses),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_missing_image),
	    cmocka_unit_test(test_required_variable),
	    cmocka_unit_test(test_project_name_errors),
	    cmocka_unit_test(test_all_errors_reported),
	    cmocka_unit_test(test_errors_in_second_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
