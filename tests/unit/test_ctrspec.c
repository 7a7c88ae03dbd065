/* Unit tests for container records -> runtime specs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "orchestrator/engine/engine.h"
#include "runtime/runtime.h"

static void test_load(void **state)
{
	(void)state;
	json_t *j = json_loads(
		"{\"image\":\"abc\",\"lowers\":[\"/l2\",\"/l1\"],"
		"\"argv\":[\"sleep\",\"1\"],\"env\":[\"A=1\"],\"uid\":7,"
		"\"gid\":8,\"netns\":\"/run/x\",\"hostname\":\"h\","
		"\"mounts\":[{\"type\":\"tmpfs\",\"target\":\"/t\",\"size\":"
		"4096},{\"type\":\"volume\",\"source\":\"/v\",\"target\":"
		"\"/data\",\"readonly\":true},{\"type\":\"bind\",\"source\":"
		"\"/s\",\"target\":\"/etc/hosts\"}],"
		"\"limits\":{\"memory\":1048576,\"cpus\":0.5,\"pids\":64},"
		"\"rlimits\":[{\"resource\":7,\"soft\":10,\"hard\":20}],"
		"\"stop_signal\":15,\"init\":true,"
		"\"devices\":[\"/dev/fuse\",\"/dev/loop0:/dev/l:r\"],"
		"\"device_rules\":[\"c 10:200 rwm\"]}",
		0, NULL);
	assert_non_null(j);
	struct rt_spec s;
	rt_spec_init(&s);
	struct orch_err e = {0};
	assert_int_equal(ctrspec_load(j, &s, &e), 0);
	assert_string_equal(s.image, "abc");
	assert_string_equal(s.lowers[0], "/l2");
	assert_null(s.lowers[2]);
	assert_string_equal(s.argv[1], "1");
	assert_int_equal(s.uid, 7);
	assert_int_equal(s.gid, 8);
	/* A namespace to join replaces a new network namespace. */
	assert_string_equal(s.netns_path, "/run/x");
	assert_false(s.namespaces & RT_NS_NET);
	assert_true(s.namespaces & RT_NS_PID);
	assert_int_equal(s.n_mounts, 3);
	assert_int_equal(s.mounts[0].type, RT_MOUNT_TMPFS);
	assert_int_equal(s.mounts[0].size, 4096);
	assert_int_equal(s.mounts[1].type, RT_MOUNT_VOLUME);
	assert_true(s.mounts[1].readonly);
	assert_int_equal(s.mounts[2].type, RT_MOUNT_BIND);
	assert_int_equal(s.limits.memory, 1048576);
	assert_int_equal(s.limits.pids, 64);
	assert_true(s.limits.cpus > 0.49 && s.limits.cpus < 0.51);
	assert_int_equal(s.n_rlimits, 1);
	assert_int_equal(s.rlimits[0].hard, 20);
	assert_true(s.init);
	assert_string_equal(s.devices[1], "/dev/loop0:/dev/l:r");
	assert_null(s.devices[2]);
	assert_string_equal(s.device_rules[0], "c 10:200 rwm");
	ctrspec_clear(&s);
	json_decref(j);
}

static void test_errors(void **state)
{
	(void)state;
	struct rt_spec s;
	struct orch_err e = {0};
	rt_spec_init(&s);
	json_t *j = json_loads("{\"argv\":[]}", 0, NULL);
	assert_true(ctrspec_load(j, &s, &e) < 0);
	assert_non_null(strstr(e.msg, "no command"));
	ctrspec_clear(&s);
	json_decref(j);
	rt_spec_init(&s);
	j = json_loads("{\"argv\":[\"x\"],\"mounts\":[{\"type\":\"bind\"}]}",
		       0, NULL);
	assert_true(ctrspec_load(j, &s, &e) < 0);
	ctrspec_clear(&s);
	json_decref(j);
	rt_spec_init(&s);
	assert_true(ctrspec_load(NULL, &s, &e) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
