/* The registry client's pure parts: WWW-Authenticate challenges and the
 * choice of a platform in an image index. */
#include "runtime/registry/registry_impl.h"

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

/* registries.conf as podman users write it, and registries.json. */
static void test_endpoints(void **state)
{
	(void)state;
	char dir[] = "/tmp/orch-regconf-XXXXXX";
	assert_non_null(mkdtemp(dir));
	setenv("ORCH_ROOT", dir, 1);
	char *conf = xasprintf("%s/registries.conf", dir);
	const char *text =
	    "unqualified-search-registries = [\n  \"docker.io\",\n]\n"
	    "[[registry]]\n"
	    "prefix = \"example.com/team\"  # rewritten\n"
	    "location = 'internal.lan:5000/mirror/team'\n"
	    "[[registry.mirror]]\n"
	    "location = \"cache.lan\"\n"
	    "insecure = true\n"
	    "[[registry]]\n"
	    "location = \"blocked.lan\"\n"
	    "blocked = true\n"
	    "[aliases]\n"
	    "\"location\" = \"not-a-registry\"\n";
	assert_int_equal(write_file_atomic(conf, text, strlen(text), 0644,
					   NULL),
			 0);
	setenv("CONTAINERS_REGISTRIES_CONF", conf, 1);
	char *json = xasprintf("%s/registries.json", dir);
	const char *j = "{\"registry-mirrors\": [\"https://hub.lan/\"]}";
	assert_int_equal(write_file_atomic(json, j, strlen(j), 0644, NULL), 0);

	struct reg_endpoints eps;
	struct orch_err e = {0};
	assert_int_equal(
	    registry_endpoints("example.com", "team/app", &eps, &e), 0);
	assert_int_equal(eps.n, 2);
	assert_string_equal(eps.v[0].domain, "cache.lan");
	assert_string_equal(eps.v[0].path, "app");
	assert_true(eps.v[0].mirror);
	assert_string_equal(eps.v[1].domain, "internal.lan:5000");
	assert_string_equal(eps.v[1].path, "mirror/team/app");
	assert_false(eps.v[1].mirror);
	registry_endpoints_clear(&eps);
	/* "example.com/teams" is not under the prefix "example.com/team". */
	assert_int_equal(
	    registry_endpoints("example.com", "teams/app", &eps, &e), 0);
	assert_int_equal(eps.n, 1);
	assert_string_equal(eps.v[0].domain, "example.com");
	registry_endpoints_clear(&eps);
	assert_int_equal(
	    registry_endpoints("docker.io", "library/busybox", &eps, &e), 0);
	assert_int_equal(eps.n, 2);
	assert_string_equal(eps.v[0].domain, "hub.lan");
	assert_string_equal(eps.v[0].path, "library/busybox");
	assert_string_equal(eps.v[1].domain, "docker.io");
	registry_endpoints_clear(&eps);
	assert_int_equal(registry_endpoints("blocked.lan", "a", &eps, &e),
			 -EACCES);
	assert_non_null(strstr(e.msg, "blocked"));
	assert_true(registry_insecure("cache.lan"));
	assert_false(registry_insecure("internal.lan:5000"));
	assert_false(registry_insecure("not-a-registry"));

	unsetenv("CONTAINERS_REGISTRIES_CONF");
	unlink(conf);
	unlink(json);
	rmdir(dir);
	free(conf);
	free(json);
}

/* Credentials stored as docker stores them read back the same, with
 * every length of base64 padding; a malformed entry is named. */
static void test_credentials(void **state)
{
	(void)state;
	char dir[] = "/tmp/orch-creds-XXXXXX";
	assert_non_null(mkdtemp(dir));
	setenv("DOCKER_CONFIG", dir, 1);
	const char *pass[] = {"s3cret", "s3cre", "s3cr", "p:with:colons"};
	for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
		struct orch_err e = {0};
		assert_int_equal(creds_store("r.lan:5000", "alice", pass[i], &e),
				 0);
		char *user, *pw;
		assert_int_equal(creds_lookup("r.lan:5000", &user, &pw, &e), 0);
		assert_string_equal(user, "alice");
		assert_string_equal(pw, pass[i]);
		free(user);
		free(pw);
	}
	char *cfg = xasprintf("%s/config.json", dir);
	const char *bad = "{\"auths\": {\"r.lan\": {\"auth\": \"bm9jb2xvbg==\"}}}";
	assert_int_equal(write_file_atomic(cfg, bad, strlen(bad), 0600, NULL),
			 0);
	struct orch_err e = {0};
	char *user, *pw;
	assert_int_equal(creds_lookup("r.lan", &user, &pw, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "not user:password"));
	assert_int_equal(creds_lookup("other.lan", &user, &pw, &e), 0);
	assert_null(user);
	unsetenv("DOCKER_CONFIG");
	unlink(cfg);
	rmdir(dir);
	free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_challenge_bearer),
	    cmocka_unit_test(test_challenge_basic_and_odd),
	    cmocka_unit_test(test_platform_pick),
	    cmocka_unit_test(test_endpoints),
	    cmocka_unit_test(test_credentials),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
