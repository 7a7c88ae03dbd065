/* The registry client's pure parts: WWW-Authenticate challenges and the
 * choice of a platform in an image index. */
#include "runtime/registry.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static void test_challenge_bearer(void **state)
{
	(void)state;
	struct auth_challenge c;
	assert_int_equal(
	    auth_challenge_parse(
		"Bearer realm=\"https://auth.docker.io/token\","
		"service=\"registry.docker.io\",scope=\"repository:library/"
		"busybox:pull\"",
		&c),
	    0);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "https://auth.docker.io/token");
	assert_string_equal(c.service, "registry.docker.io");
	assert_string_equal(c.scope, "repository:library/busybox:pull");
	auth_challenge_clear(&c);
}

static void test_challenge_basic_and_odd(void **state)
{
	(void)state;
	struct auth_challenge c;
	assert_int_equal(
	    auth_challenge_parse("Basic realm=\"Registry Realm\"", &c), 0);
	assert_string_equal(c.scheme, "basic");
	assert_string_equal(c.realm, "Registry Realm");
	assert_null(c.service);
	auth_challenge_clear(&c);
	/* Unquoted values, spaces, unknown keys, escapes. */
	assert_int_equal(
	    auth_challenge_parse("  BEARER realm=http://h/t , error=\"invalid_"
				 "token\", service=\"a\\\"b\"",
				 &c),
	    0);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "http://h/t");
	assert_string_equal(c.service, "a\"b");
	auth_challenge_clear(&c);
	assert_true(auth_challenge_parse("", &c) < 0);
}

static json_t *index_of(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	assert_non_null(j);
	return j;
}

static void test_platform_pick(void **state)
{
	(void)state;
	json_t *m =
	    index_of("[{\"digest\":\"a\",\"platform\":{\"os\":\"linux\","
		     "\"architecture\":\"arm\",\"variant\":\"v7\"}},"
		     "{\"digest\":\"b\",\"platform\":{\"os\":\"linux\","
		     "\"architecture\":\"arm64\"}},"
		     "{\"digest\":\"c\",\"platform\":{\"os\":\"linux\","
		     "\"architecture\":\"amd64\"}},"
		     "{\"digest\":\"d\",\"platform\":{\"os\":\"unknown\","
		     "\"architecture\":\"unknown\"}}]");
	char *have = NULL;
	json_t *d = index_pick_platform(m, "linux/amd64", &have);
	assert_string_equal(json_string_value(json_object_get(d, "digest")),
			    "c");
	assert_string_equal(have, "linux/arm/v7, linux/arm64, linux/amd64");
	free(have);
	d = index_pick_platform(m, "linux/arm64/v8", NULL);
	assert_string_equal(json_string_value(json_object_get(d, "digest")),
			    "b");
	d = index_pick_platform(m, "linux/arm/v7", NULL);
	assert_string_equal(json_string_value(json_object_get(d, "digest")),
			    "a");
	assert_null(index_pick_platform(m, "linux/arm/v6", NULL));
	assert_null(index_pick_platform(m, "linux/s390x", NULL));
	assert_null(index_pick_platform(m, "windows/amd64", NULL));
	json_decref(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_challenge_bearer),
	    cmocka_unit_test(test_challenge_basic_and_odd),
	    cmocka_unit_test(test_platform_pick),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
