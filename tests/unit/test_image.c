/* Image store pure logic: references, tar path checks, whiteouts, config
 * JSON. */
#include "runtime/store/store_impl.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static void ref_ok(const char *in, const char *want)
{
	char *out = NULL;
	struct orch_err e = {0};
	assert_int_equal(image_ref_normalize(in, &out, &e), 0);
	assert_string_equal(out, want);
	free(out);
}

static void ref_bad(const char *in)
{
	char *out = NULL;
	struct orch_err e = {0};
	assert_true(image_ref_normalize(in, &out, &e) < 0);
	assert_null(out);
	assert_true(strlen(e.msg) > 0);
}

static void test_refs(void **state)
{
	(void)state;
	ref_ok("busybox", "busybox:latest");
	ref_ok("busybox:1.36", "busybox:1.36");
	ref_ok("docker.io/library/alpine:3", "alpine:3");
	ref_ok("docker.io/me/app", "me/app:latest");
	ref_ok("localhost:5000/app", "localhost:5000/app:latest");
	ref_ok("localhost:5000/team/app:v1.2-rc_1",
	       "localhost:5000/team/app:v1.2-rc_1");
	ref_ok("my-app_2.x", "my-app_2.x:latest");
	/* The path "docker.io/ii" on Docker Hub: "docker.io/ii" alone would
	 * be library/ii. */
	ref_ok("docker.io/docker.io/ii", "docker.io/docker.io/ii:latest");
	ref_bad("");
	ref_bad("Busybox");
	ref_bad("bad name");
	ref_bad("app:");
	ref_bad("app:-x");
	ref_bad("a//b");
	ref_bad("/abs");
	ref_bad("busybox@sha256:0123");
}

static void clean_ok(const char *in, const char *want)
{
	char *out = NULL;
	assert_int_equal(tar_path_clean(in, &out), 0);
	assert_string_equal(out, want);
	free(out);
}

static void clean_bad(const char *in)
{
	char *out = NULL;
	assert_int_equal(tar_path_clean(in, &out), -EINVAL);
	assert_null(out);
}

static void test_tar_paths(void **state)
{
	(void)state;
	clean_ok("a/b", "a/b");
	clean_ok("./a//b/", "a/b");
	clean_ok(".", "");
	clean_ok("./", "");
	clean_ok("a/./b", "a/b");
	clean_ok("..a/b..", "..a/b..");
	clean_ok("...", "...");
	clean_bad("..");
	clean_bad("../../etc/x");
	clean_bad("a/../../x");
	clean_bad("a/..");
	clean_bad("/etc/passwd");
	clean_bad("//x");
}

static void test_whiteouts(void **state)
{
	(void)state;
	char *t = NULL;
	assert_int_equal(whiteout_parse("etc/.wh.motd", &t), WHITEOUT_FILE);
	assert_string_equal(t, "etc/motd");
	free(t);
	t = NULL;
	assert_int_equal(whiteout_parse(".wh.top", &t), WHITEOUT_FILE);
	assert_string_equal(t, "top");
	free(t);
	t = NULL;
	assert_int_equal(whiteout_parse("home/.wh..wh..opq", &t),
			 WHITEOUT_OPAQUE);
	assert_null(t);
	assert_int_equal(whiteout_parse("etc/motd", &t), WHITEOUT_NONE);
	assert_int_equal(whiteout_parse("a/.wh.", &t), WHITEOUT_NONE);
	assert_int_equal(whiteout_parse("a/.wh..", &t), WHITEOUT_NONE);
	assert_int_equal(whiteout_parse("a/.wh...", &t), WHITEOUT_NONE);
	assert_int_equal(whiteout_parse("a/x.wh.y", &t), WHITEOUT_NONE);
	assert_int_equal(whiteout_parse(".wh.dir/file", &t), WHITEOUT_NONE);
	assert_null(t);
}

static void test_config_round_trip(void **state)
{
	(void)state;
	const char *text =
	    "{\"User\":\"1000:1000\",\"ExposedPorts\":{\"80/tcp\":{}},"
	    "\"Env\":[\"PATH=/bin\",\"A=b c\"],\"Entrypoint\":[\"/init\"],"
	    "\"Cmd\":[\"-v\",\"x\"],\"Healthcheck\":{\"Test\":[\"CMD-SHELL\","
	    "\"true\"],\"Interval\":30000000000,\"Retries\":3},"
	    "\"Volumes\":{\"/data\":{}},\"WorkingDir\":\"/srv\","
	    "\"Labels\":{\"a\":\"1\",\"b\":\"x=y\"},\"StopSignal\":"
	    "\"SIGQUIT\",\"Shell\":[\"/bin/bash\",\"-c\"]}";
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	struct rt_image_config c;
	struct orch_err e = {0};
	assert_int_equal(image_config_from_json(j, &c, &e), 0);
	assert_string_equal(c.user, "1000:1000");
	assert_string_equal(c.exposed_ports[0], "80/tcp");
	assert_string_equal(c.env[1], "A=b c");
	assert_string_equal(c.entrypoint[0], "/init");
	assert_string_equal(c.cmd[1], "x");
	assert_string_equal(c.workdir, "/srv");
	assert_string_equal(c.volumes[0], "/data");
	assert_string_equal(c.labels[1], "b=x=y");
	assert_string_equal(c.stop_signal, "SIGQUIT");
	assert_string_equal(c.shell[0], "/bin/bash");
	assert_non_null(c.healthcheck);
	assert_int_equal(c.healthcheck->interval_ns, 30000000000LL);
	assert_int_equal(c.healthcheck->retries, 3);
	json_t *back = image_config_to_json(&c);
	assert_true(json_equal(j, back));
	json_decref(back);
	json_decref(j);
	rt_image_config_clear(&c);
	assert_null(c.cmd);

	/* Absent and null configs are empty, not errors. */
	assert_int_equal(image_config_from_json(NULL, &c, &e), 0);
	assert_null(c.cmd);
	json_t *empty = image_config_to_json(&c);
	assert_int_equal(json_object_size(empty), 0);
	json_decref(empty);
	json_t *bad = json_string("x");
	assert_true(image_config_from_json(bad, &c, &e) < 0);
	json_decref(bad);
}

static void test_hex(void **state)
{
	(void)state;
	assert_true(is_hex_string("0a9f", 1));
	assert_false(is_hex_string("0A9f", 1));
	assert_false(is_hex_string("", 1));
	assert_false(is_hex_string("abc", 4));
	assert_false(is_hex_string("xyz", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refs),
	    cmocka_unit_test(test_tar_paths),
	    cmocka_unit_test(test_whiteouts),
	    cmocka_unit_test(test_config_round_trip),
	    cmocka_unit_test(test_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
