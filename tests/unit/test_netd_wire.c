/* netd's wire format: requests are decoded against per-op schemas; every
 * malformed message is an error with a message, never a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "netd/netd-int.h"

#include <jansson.h>

static int decode(const char *msg, struct orch_err *e)
{
	struct netd_request req;
	int r = netd_request_decode(msg, strlen(msg), &req, e);
	if (r == 0)
		netd_request_clear(&req);
	return r;
}

static void test_valid(void **state)
{
	(void)state;
	struct orch_err e = {0};
	struct netd_request req;
	const char *m = "{\"v\":1,\"op\":\"network.create\",\"args\":{\"name\":"
			"\"p_front\",\"project\":\"p\",\"icc\":true,\"labels\":"
			"[\"a=b\"]}}";
	assert_int_equal(netd_request_decode(m, strlen(m), &req, &e), 0);
	assert_string_equal(req.op, "network.create");
	assert_true(json_is_true(json_object_get(req.args, "icc")));
	netd_request_clear(&req);
	assert_int_equal(decode("{\"v\":1,\"op\":\"ping\"}", &e), 0);
	assert_int_equal(decode("{\"v\":1,\"op\":\"links.set\",\"args\":{"
				"\"network\":\"n\",\"pairs\":[{\"from\":\"a\","
				"\"to\":\"b\"}]}}",
				&e),
			 0);
	assert_int_equal(decode("{\"v\":1,\"op\":\"network.remove\",\"args\":{"
				"\"names\":[\"p_a\",\"p_b\"]}}",
				&e),
			 0);
	assert_int_equal(decode("{\"v\":1,\"op\":\"endpoint.attach\",\"args\":{"
				"\"network\":\"n\",\"container_id\":\"c\","
				"\"links\":[\"database=db\"]}}",
				&e),
			 0);
	assert_int_equal(decode("{\"v\":1,\"op\":\"cgroup.delegate\"}", &e), 0);
	assert_int_equal(decode("{\"v\":1,\"op\":\"cgroup.delegate\",\"args\":"
				"{\"release\":true}}",
				&e),
			 0);
}

static void expect_err(const char *msg, int code, const char *needle)
{
	struct orch_err e = {0};
	assert_int_equal(decode(msg, &e), -code);
	if (!strstr(e.msg, needle))
		fail_msg("message \"%s\" lacks \"%s\"", e.msg, needle);
}

static void test_malformed(void **state)
{
	(void)state;
	expect_err("", EBADMSG, "malformed");
	expect_err("{", EBADMSG, "malformed");
	expect_err("[1,2]", EBADMSG, "malformed");
	expect_err("{\"v\":1}", EBADMSG, "malformed");
	expect_err("{\"v\":2,\"op\":\"ping\"}", EPROTONOSUPPORT, "version 2");
	expect_err("{\"v\":1,\"op\":\"nope\"}", EOPNOTSUPP, "unknown operation");
	expect_err("{\"v\":1,\"op\":\"ping\",\"args\":[]}", EBADMSG, "malformed");
	expect_err("{\"v\":1,\"op\":\"ping\",\"extra\":1}", EBADMSG, "malformed");
	expect_err("{\"v\":1,\"op\":\"ping\",\"v\":1}", EBADMSG, "malformed");
	expect_err("{\"v\":1,\"op\":\"network.remove\",\"args\":{}}", EINVAL,
		   "missing argument \"name\"");
	expect_err("{\"v\":1,\"op\":\"network.remove\",\"args\":{\"names\":"
		   "[\"a\",\"../x\"]}}",
		   EINVAL, "invalid name");
	expect_err("{\"v\":1,\"op\":\"network.remove\",\"args\":{\"names\":\"a\"}}",
		   EINVAL, "expected an array");
	expect_err("{\"v\":1,\"op\":\"network.remove\",\"args\":{\"name\":5}}",
		   EINVAL, "expected a string");
	expect_err("{\"v\":1,\"op\":\"network.remove\",\"args\":{\"name\":"
		   "\"../x\"}}",
		   EINVAL, "invalid name");
	expect_err("{\"v\":1,\"op\":\"network.remove\",\"args\":{\"name\":"
		   "\"a\\u0000b\"}}",
		   EBADMSG, "malformed");
	expect_err("{\"v\":1,\"op\":\"network.remove\",\"args\":{\"name\":\"a\","
		   "\"bogus\":1}}",
		   EINVAL, "unknown argument");
	expect_err("{\"v\":1,\"op\":\"port.publish\",\"args\":{\"network\":\"a\","
		   "\"host_port\":70000}}",
		   EINVAL, "0..65535");
	expect_err("{\"v\":1,\"op\":\"port.publish\",\"args\":{\"network\":\"a\","
		   "\"host_port\":-1}}",
		   EINVAL, "0..65535");
	expect_err("{\"v\":1,\"op\":\"network.create\",\"args\":{\"name\":\"a\","
		   "\"project\":\"p\",\"icc\":\"yes\"}}",
		   EINVAL, "true or false");
	expect_err("{\"v\":1,\"op\":\"links.set\",\"args\":{\"network\":\"n\","
		   "\"pairs\":[{\"from\":\"a\"}]}}",
		   EINVAL, "from");
	expect_err("{\"v\":1,\"op\":\"links.set\",\"args\":{\"network\":\"n\","
		   "\"pairs\":[\"a\"]}}",
		   EINVAL, "from");
	expect_err("{\"v\":1,\"op\":\"endpoint.attach\",\"args\":{\"network\":"
		   "\"n\",\"container_id\":\"c\",\"links\":[\"db\"]}}",
		   EINVAL, "ALIAS=SERVICE");
	expect_err("{\"v\":1,\"op\":\"endpoint.attach\",\"args\":{\"network\":"
		   "\"n\",\"container_id\":\"c\",\"links\":[\"a=../x\"]}}",
		   EINVAL, "ALIAS=SERVICE");
	expect_err("{\"v\":1,\"op\":\"endpoint.attach\",\"args\":{\"network\":"
		   "\"n\",\"container_id\":\"c\",\"links\":[5]}}",
		   EINVAL, "ALIAS=SERVICE");
	/* A user names no cgroup, path or pid: netd takes them from the
	 * caller's credentials. */
	expect_err("{\"v\":1,\"op\":\"cgroup.delegate\",\"args\":{\"path\":"
		   "\"/sys/fs/cgroup\"}}",
		   EINVAL, "unknown argument");
	expect_err("{\"v\":1,\"op\":\"cgroup.delegate\",\"args\":{\"release\":1}}",
		   EINVAL, "true or false");
}

static void test_bounds(void **state)
{
	(void)state;
	struct orch_err e = {0};
	struct netd_request req;
	char *big = xmalloc(NETD_MSG_MAX + 2);
	memset(big, ' ', NETD_MSG_MAX + 1);
	big[NETD_MSG_MAX + 1] = '\0';
	assert_int_equal(netd_request_decode(big, NETD_MSG_MAX + 1, &req, &e),
			 -EMSGSIZE);
	free(big);
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "{\"v\":1,\"op\":\"endpoint.attach\",\"args\":{\"network\":"
		     "\"n\",\"container_id\":\"c\",\"aliases\":[");
	for (int i = 0; i <= NETD_LIST_MAX; i++)
		sb_printf(&sb, "%s\"a%d\"", i ? "," : "", i);
	sb_adds(&sb, "]}}");
	assert_int_equal(decode(sb.buf, &e), -E2BIG);
	sb_free(&sb);
	char name[NETD_NAME_MAX + 2];
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_false(netd_name_valid(name));
	name[NETD_NAME_MAX] = '\0';
	assert_true(netd_name_valid(name));
	assert_false(netd_name_valid(""));
	assert_false(netd_name_valid("-x"));
	assert_false(netd_name_valid("a b"));
}

static void test_replies_and_objects(void **state)
{
	(void)state;
	struct orch_err e = {0};
	err_set(&e, EPERM, "removing network x: permission denied");
	size_t len;
	char *r = netd_reply_err(&e, &len);
	assert_non_null(strstr(r, "\"ok\":false"));
	assert_non_null(strstr(r, "\"errno\":1"));
	free(r);
	/* An error quoting bytes cut inside a UTF-8 sequence stays JSON. */
	err_set(&e, EINVAL, "unknown operation \"\xc3\"");
	r = netd_reply_err(&e, &len);
	assert_non_null(strstr(r, "unknown operation \\\"?\\\""));
	free(r);
	r = netd_reply_ok(NULL, &len);
	assert_string_equal(r, "{\"v\":1,\"ok\":true,\"result\":{}}");
	free(r);

	char *aliases[] = {"www", NULL};
	struct netd_endpoint ep = {.container_id = "c1",
				   .container_name = "p-web-1",
				   .service = "web",
				   .aliases = aliases,
				   .address = "10.210.0.2",
				   .prefix = 24,
				   .gateway = "10.210.0.1",
				   .address6 = "fd6f:7263:6800::2",
				   .prefix6 = 64,
				   .gateway6 = "fd6f:7263:6800::1",
				   .ifname = "eth0",
				   .host_ifname = "ov-1",
				   .default_route = true};
	struct netd_port port[] = {{.container_id = "c1",
				    .proto = "tcp",
				    .host_ip = "",
				    .host_port = 8080,
				    .container_port = 80,
				    .count = 1},
				   {.container_id = "c1",
				    .proto = "udp",
				    .host_ip = "",
				    .host_port = 20000,
				    .container_port = 20000,
				    .count = 20000}};
	struct netd_pair pair = {.from = "web", .to = "db"};
	struct netd_network n = {.id = "ab", .name = "p_front", .project = "p",
				 .bridge = "ob-ab", .subnet = "10.210.0.0/24",
				 .gateway = "10.210.0.1", .icc = true, .owner = 1000,
				 .labels = aliases, .endpoints = &ep,
				 .n_endpoints = 1, .ports = port, .n_ports = 2,
				 .pairs = &pair, .n_pairs = 1,
				 .subnet6 = "fd6f:7263:6800::/64",
				 .gateway6 = "fd6f:7263:6800::1"};
	json_t *j = netd_network_to_json(&n);
	struct netd_network back;
	assert_int_equal(netd_network_from_json(j, &back, &e), 0);
	json_decref(j);
	assert_string_equal(back.name, "p_front");
	assert_true(back.icc);
	assert_int_equal(back.owner, 1000);
	assert_int_equal(back.n_endpoints, 1);
	assert_string_equal(back.endpoints[0].aliases[0], "www");
	assert_true(back.endpoints[0].default_route);
	assert_int_equal(back.ports[0].host_port, 8080);
	assert_int_equal(back.ports[0].count, 1);
	/* A range stays one object, whatever its length. */
	assert_int_equal(back.n_ports, 2);
	assert_int_equal(back.ports[1].host_port, 20000);
	assert_int_equal(back.ports[1].count, 20000);
	assert_string_equal(back.pairs[0].to, "db");
	/* IPv6: the network's subnet and gateway, the endpoint's address. */
	assert_string_equal(back.subnet6, "fd6f:7263:6800::/64");
	assert_string_equal(back.gateway6, "fd6f:7263:6800::1");
	assert_string_equal(back.endpoints[0].address6, "fd6f:7263:6800::2");
	assert_int_equal(back.endpoints[0].prefix6, 64);
	netd_network_clear(&back);
	/* Without IPv6, nothing of it on the wire, "" read back. */
	n.subnet6 = n.gateway6 = NULL;
	ep.address6 = ep.gateway6 = NULL;
	j = netd_network_to_json(&n);
	assert_null(json_object_get(j, "subnet6"));
	assert_int_equal(netd_network_from_json(j, &back, &e), 0);
	json_decref(j);
	assert_string_equal(back.subnet6, "");
	assert_string_equal(back.endpoints[0].address6, "");
	netd_network_clear(&back);
	json_t *bad = json_pack("{s:i}", "name", 3);
	assert_true(netd_network_from_json(bad, &back, &e) < 0);
	json_decref(bad);
}

/* A refusal as netd sends it and as a watcher reads it back. */
static void test_refusal(void **state)
{
	(void)state;
	struct netd_refusal r = {.network = "p_back",
				 .from_container = "p-web-1",
				 .from_service = "web",
				 .to_container = "p-words-1",
				 .to_service = "words",
				 .to_address = "10.210.3.5",
				 .proto = "tcp",
				 .port = 8080};
	json_t *j = netd_refusal_to_json(&r);
	struct netd_refusal back;
	struct orch_err e = {0};
	assert_int_equal(netd_refusal_from_json(j, &back, &e), 0);
	assert_string_equal(back.network, "p_back");
	assert_string_equal(back.from_service, "web");
	assert_string_equal(back.to_container, "p-words-1");
	assert_string_equal(back.proto, "tcp");
	assert_int_equal(back.port, 8080);
	netd_refusal_clear(&back);
	/* A field of the wrong type, or no port, is refused. */
	json_object_set_new(j, "to_service", json_integer(3));
	assert_true(netd_refusal_from_json(j, &back, &e) < 0);
	assert_non_null(strstr(e.msg, "to_service"));
	json_object_del(j, "port");
	assert_true(netd_refusal_from_json(j, &back, &e) < 0);
	assert_true(netd_refusal_from_json(NULL, &back, &e) < 0);
	json_decref(j);
}

static void assert_same_state(const struct netd_state *a,
			      const struct netd_state *b)
{
	assert_int_equal(a->n_nets, b->n_nets);
	for (size_t i = 0; i < a->n_nets; i++) {
		json_t *x = netd_network_to_json(&a->nets[i]);
		json_t *y = netd_network_to_json(&b->nets[i]);
		assert_true(json_equal(x, y));
		json_decref(x);
		json_decref(y);
	}
}

/* live (as state_load made it from path) read back from path. */
static void assert_reads_back(const char *path, const struct netd_state *live,
			      size_t records, bool ok)
{
	struct orch_err e = {0};
	struct netd_state back = {0};
	assert_int_equal(state_load(path, &back, &e), 0);
	assert_same_state(live, &back);
	assert_int_equal(back.journal_records, records);
	assert_int_equal(back.journal_ok, ok);
	state_clear(&back);
}

/* Endpoint cid of n, a copy of n's first with another id and address. */
static void attach_copy(struct netd_network *n, const struct netd_endpoint *from,
			const char *cid, const char *addr)
{
	json_t *j = netd_endpoint_to_json(from);
	json_object_set_new(j, "container_id", json_string(cid));
	json_object_set_new(j, "address", json_string(addr));
	struct netd_endpoint ep;
	struct orch_err e = {0};
	assert_int_equal(netd_endpoint_from_json(j, &ep, &e), 0);
	json_decref(j);
	n->endpoints = xrealloc(n->endpoints, (n->n_endpoints + 1) * sizeof(ep));
	n->endpoints[n->n_endpoints++] = ep;
}

static void detach(struct netd_network *n, const char *cid)
{
	ssize_t i = state_endpoint_find(n, cid);
	assert_true(i >= 0);
	struct netd_endpoint ep;
	state_endpoint_remove(n, (size_t)i, &ep);
	netd_endpoint_clear(&ep);
}

/* Attaches and detaches go to the journal, which state_load replays on
 * the state file it follows: not a record cut short, not a journal a
 * later state file holds already. */
static void journal_checks(const char *path, struct netd_state *live)
{
	struct orch_err e = {0};
	_cleanup_free_ char *jp = xasprintf("%s.journal", path);
	assert_int_equal(state_save(path, live, &e), 0);
	struct netd_network *front = &live->nets[0], *empty = &live->nets[1];
	attach_copy(empty, &front->endpoints[0], "c3", "10.210.1.2");
	assert_int_equal(state_journal(path, live, empty, 0, NULL, &e), 0);
	detach(front, "c2");
	assert_int_equal(state_journal(path, live, front, 0, "c2", &e), 0);
	assert_int_equal(live->journal_records, 2);
	assert_reads_back(path, live, 2, true);

	/* netd killed while writing a record: the record goes, and the next
	 * change writes the whole state and a new journal. */
	_cleanup_free_ char *txt = NULL;
	size_t len;
	assert_int_equal(read_file(jp, &txt, &len, &e), 0);
	_cleanup_free_ char *torn =
	    xasprintf("%s{\"attach\":\"aa\",\"endpoint\":{\"contai", txt);
	assert_int_equal(write_file_atomic(jp, torn, strlen(torn), 0600, &e),
			 0);
	assert_reads_back(path, live, 2, false);
	struct netd_state b = {0};
	assert_int_equal(state_load(path, &b, &e), 0);
	detach(&b.nets[0], "c1");
	assert_int_equal(state_journal(path, &b, &b.nets[0], 0, "c1", &e), 0);
	assert_int_equal(b.journal_records, 0);
	assert_true(b.journal_ok);
	assert_reads_back(path, &b, 0, true);

	/* A detach journalled, the container back, the whole state written,
	 * netd killed before the journal is emptied: the detach is not
	 * replayed on the state file that holds it already. */
	attach_copy(&b.nets[0], &b.nets[1].endpoints[0], "c4", "10.210.0.4");
	assert_int_equal(state_save(path, &b, &e), 0);
	detach(&b.nets[0], "c4");
	assert_int_equal(state_journal(path, &b, &b.nets[0], 0, "c4", &e), 0);
	free(txt);
	txt = NULL;
	assert_int_equal(read_file(jp, &txt, &len, &e), 0);
	attach_copy(&b.nets[0], &b.nets[1].endpoints[0], "c4", "10.210.0.4");
	assert_int_equal(state_save(path, &b, &e), 0);
	assert_int_equal(write_file_atomic(jp, txt, len, 0600, &e), 0);
	assert_reads_back(path, &b, 0, false);

	/* The journal never grows past the state file. */
	for (int i = 0; i < 40; i++) {
		char cid[16];
		snprintf(cid, sizeof(cid), "x%d", i);
		attach_copy(&b.nets[1], &b.nets[1].endpoints[0], cid, "10.210.1.9");
		assert_int_equal(state_journal(path, &b, &b.nets[1],
					       b.nets[1].n_endpoints - 1, NULL,
					       &e),
				 0);
		assert_true(b.journal_bytes <= b.state_bytes);
	}
	assert_reads_back(path, &b, b.journal_records, true);
	state_clear(&b);
	unlink(jp);
}

/* netd's state file, made from each endpoint's kept text, reads back
 * as what was saved, and saving again writes the same bytes. */
static void test_state_file(void **state)
{
	(void)state;
	char *none[] = {NULL}, *al[] = {"db", "cache", NULL},
	     *dns[] = {"1.1.1.1", NULL}, *links[] = {"database=db", NULL};
	struct netd_endpoint eps[] = {
	    {"c1", "p-web-1", "web", none, "10.210.0.2", 24, "10.210.0.1",
	     "eth0", "ov-1", true, dns, "fd6f::2", 64, "fd6f::1", NULL, links,
	     "02:42:0a:00:00:09", false},
	    {"c2", "p-db-1", "db", al, "10.210.0.3", 24, "10.210.0.1", "eth1",
	     "ov-2", false, none, "", 0, "", NULL, NULL, NULL, false},
	};
	char *labels[] = {"a=b", NULL};
	struct netd_network nets[] = {
	    {"aa", "p_front", "p", "ob-aa", "10.210.0.0/24", "10.210.0.1",
	     false, true, 0, labels, eps, 2, NULL, 0, NULL, 0, "fd6f::/64",
	     "fd6f::1", NULL, 0},
	    {"bb", "p_empty", "p", "ob-bb", "10.210.1.0/24", "10.210.1.1", true,
	     false, 1000, none, NULL, 0, NULL, 0, NULL, 0, "", "", NULL, 0},
	};
	struct netd_state st = {.nets = nets, .n_nets = 2,
				.saved_ip_forward = 1};
	char dir[] = "/tmp/orch-netdstate-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = xasprintf("%s/state.json", dir);
	struct orch_err e = {0};
	assert_int_equal(state_save(path, &st, &e), 0);
	assert_non_null(eps[1].saved);
	char *first = NULL, *second = NULL;
	size_t n1, n2;
	assert_int_equal(read_file(path, &first, &n1, &e), 0);
	assert_int_equal(state_save(path, &st, &e), 0);
	assert_int_equal(read_file(path, &second, &n2, &e), 0);
	assert_string_equal(first, second);
	assert_non_null(nets[0].head_saved);
	/* A head that changes is made again, not taken from before. */
	struct netd_pair pair = {"web", "api"};
	nets[1].pairs = &pair;
	nets[1].n_pairs = 1;
	nets[1].icc = true;
	assert_int_equal(state_save(path, &st, &e), 0);

	struct netd_state back = {0};
	assert_int_equal(state_load(path, &back, &e), 0);
	assert_int_equal(back.n_nets, 2);
	assert_int_equal(back.saved_ip_forward, 1);
	for (size_t i = 0; i < 2; i++) {
		json_t *a = netd_network_to_json(&nets[i]);
		json_t *b = netd_network_to_json(&back.nets[i]);
		assert_true(json_equal(a, b));
		json_decref(a);
		json_decref(b);
	}
	journal_checks(path, &back);
	state_clear(&back);
	for (size_t i = 0; i < 2; i++) {
		free(eps[i].saved);
		free(nets[i].head_saved);
	}
	unlink(path);
	rmdir(dir);
	free(path);
	free(first);
	free(second);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_replies_and_objects),
		cmocka_unit_test(test_refusal),
		cmocka_unit_test(test_state_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
