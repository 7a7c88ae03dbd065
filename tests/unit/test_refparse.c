/* Image references parsed as docker parses them. */
#include "runtime/store/store_impl.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void parsed(const char *in, const char *domain, const char *path,
		   const char *tag, const char *digest, const char *familiar)
{
	struct image_ref r;
	struct orch_err e = {0};
	if (image_ref_parse(in, &r, &e) < 0)
		fail_msg("%s: %s", in, e.msg);
	assert_string_equal(r.domain, domain);
	assert_string_equal(r.path, path);
	if (tag)
		assert_string_equal(r.tag, tag);
	else
		assert_null(r.tag);
	if (digest)
		assert_string_equal(r.digest, digest);
	else
		assert_null(r.digest);
	char *f = image_ref_familiar(&r);
	assert_string_equal(f, familiar);
	free(f);
	image_ref_clear(&r);
}

static void refused(const char *in, const char *why)
{
	struct image_ref r;
	struct orch_err e = {0};
	assert_true(image_ref_parse(in, &r, &e) < 0);
	assert_null(r.domain);
	if (!strstr(e.msg, why))
		fail_msg("%s: \"%s\" lacks \"%s\"", in, e.msg, why);
}

static void test_docker_hub(void **state)
{
	(void)state;
	parsed("busybox", "docker.io", "library/busybox", "latest", NULL,
	       "busybox");
	parsed("busybox:1.36", "docker.io", "library/busybox", "1.36", NULL,
	       "busybox");
	parsed("library/busybox", "docker.io", "library/busybox", "latest",
	       NULL, "busybox");
	parsed("docker.io/library/busybox:x", "docker.io", "library/busybox",
	       "x", NULL, "busybox");
	parsed("index.docker.io/me/app", "docker.io", "me/app", "latest", NULL,
	       "me/app");
	parsed("me/app/sub", "docker.io", "me/app/sub", "latest", NULL,
	       "me/app/sub");
	parsed("docker.io/library/a/b", "docker.io", "library/a/b", "latest",
	       NULL, "library/a/b");
	parsed("a__b.c-d---e", "docker.io", "library/a__b.c-d---e", "latest",
	       NULL, "a__b.c-d---e");
}

static void test_registries(void **state)
{
	(void)state;
	parsed("localhost/app", "localhost", "app", "latest", NULL,
	       "localhost/app");
	parsed("localhost:5000/a/b:v1", "localhost:5000", "a/b", "v1", NULL,
	       "localhost:5000/a/b");
	parsed("127.0.0.1:5000/x", "127.0.0.1:5000", "x", "latest", NULL,
	       "127.0.0.1:5000/x");
	parsed("ghcr.io/o/r:tag", "ghcr.io", "o/r", "tag", NULL, "ghcr.io/o/r");
	parsed("Registry/app", "Registry", "app", "latest", NULL,
	       "Registry/app");
	parsed("[::1]:5000/app", "[::1]:5000", "app", "latest", NULL,
	       "[::1]:5000/app");
	/* Not a registry: no '.', ':' or "localhost". */
	parsed("myhost/app", "docker.io", "myhost/app", "latest", NULL,
	       "myhost/app");
}

static void test_digests(void **state)
{
	(void)state;
	parsed("busybox@sha256:" D64, "docker.io", "library/busybox", NULL,
	       "sha256:" D64, "busybox");
	parsed("h:5000/a:t@sha256:" D64, "h:5000", "a", "t", "sha256:" D64,
	       "h:5000/a");
	refused("busybox@sha256:0123", "digest");
	refused("busybox@md5:" D64, "digest");
	refused("busybox@sha256:" D64 "0", "digest");
}

static void test_refused(void **state)
{
	(void)state;
	refused("", "empty");
	refused("Busybox", "lowercase");
	refused("me/App", "lowercase");
	refused("bad name", "repository name");
	refused("app:", "tag");
	refused("app:-x", "tag");
	refused("a//b", "repository name");
	refused("/abs", "repository name");
	refused("a/", "repository name");
	refused("a..b", "repository name");
	refused("a-", "repository name");
	refused("-a", "repository name");
	refused("h:x/app", "registry");
	refused("-h.com/app", "registry");
	refused(D64, "64 hexadecimal");
	/* Its short form would be the id itself. */
	refused("library/" D64, "64 hexadecimal");
	refused("docker.io/library/" D64 ":1", "64 hexadecimal");
	char long_tag[200];
	memset(long_tag, 'a', sizeof(long_tag));
	memcpy(long_tag, "x:", 2);
	long_tag[sizeof(long_tag) - 1] = '\0';
	refused(long_tag, "tag");
}

static void test_strings(void **state)
{
	(void)state;
	struct image_ref r;
	assert_int_equal(
	    image_ref_parse("localhost:5000/a:v@sha256:" D64, &r, NULL), 0);
	char *s = image_ref_string(&r);
	assert_string_equal(s, "localhost:5000/a:v@sha256:" D64);
	free(s);
	s = image_ref_repo(&r);
	assert_string_equal(s, "localhost:5000/a");
	free(s);
	assert_string_equal(image_ref_registry_host(&r), "localhost:5000");
	image_ref_clear(&r);
	assert_int_equal(image_ref_parse("busybox", &r, NULL), 0);
	assert_string_equal(image_ref_registry_host(&r),
			    "registry-1.docker.io");
	image_ref_clear(&r);

	char *k = NULL;
	assert_int_equal(image_ref_normalize("busybox@sha256:" D64, &k, NULL),
			 0);
	assert_string_equal(k, "busybox@sha256:" D64);
	free(k);
	assert_int_equal(
	    image_ref_normalize("docker.io/library/busybox:1", &k, NULL), 0);
	assert_string_equal(k, "busybox:1");
	free(k);
	/* A Docker Hub path that starts as a registry would keep its
	 * "docker.io/": without it, it would name another image. */
	const char *hub[][2] = {
	    {"docker.io/index.docker.io/cc", "docker.io/index.docker.io/cc:latest"},
	    {"docker.io/localhost/x:1", "docker.io/localhost/x:1"},
	    {"index.docker.io/cc", "cc:latest"},
	};
	for (size_t i = 0; i < sizeof(hub) / sizeof(hub[0]); i++) {
		char *again = NULL;
		assert_int_equal(image_ref_normalize(hub[i][0], &k, NULL), 0);
		assert_string_equal(k, hub[i][1]);
		assert_int_equal(image_ref_normalize(k, &again, NULL), 0);
		assert_string_equal(again, k);
		free(again);
		free(k);
	}
}

static void test_plain_http(void **state)
{
	(void)state;
	assert_true(registry_allows_http("localhost"));
	assert_true(registry_allows_http("localhost:5000"));
	assert_true(registry_allows_http("127.0.0.1:5000"));
	assert_true(registry_allows_http("127.8.9.10"));
	assert_true(registry_allows_http("[::1]:5000"));
	assert_false(registry_allows_http("128.0.0.1:5000"));
	assert_false(registry_allows_http("127.0.0.1.evil.com"));
	assert_false(registry_allows_http("localhost.evil.com:5000"));
	assert_false(registry_allows_http("127.0.0.256"));
	assert_false(registry_allows_http("docker.io"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_docker_hub),
	    cmocka_unit_test(test_registries),
	    cmocka_unit_test(test_digests),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_plain_http),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
