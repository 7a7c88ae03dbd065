/* Unit tests for the build context: source resolution inside the context,
 * content digests, and user lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
/* cmocka needs the three above first. */
#include <cmocka.h>

#include "orchestrator/build/build.h"

#include <sys/stat.h>

static char dir[] = "/tmp/orch-ctx-XXXXXX";

static void put(const char *rel, const char *text)
{
	char *p = path_join(dir, rel);
	struct orch_err e = {0};
	assert_int_equal(write_file_atomic(p, text, strlen(text), 0644, &e), 0);
	free(p);
}

static void sub(const char *rel)
{
	char *p = path_join(dir, rel);
	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
}

static void link_(const char *target, const char *rel)
{
	char *p = path_join(dir, rel);
	assert_int_equal(symlink(target, p), 0);
	free(p);
}

static int setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	put("a.txt", "a");
	put("b.log", "b");
	sub("src");
	put("src/main.c", "int main;");
	put("src/secret.key", "k");
	sub("bad");
	link_("/etc/passwd", "bad/abs");
	sub("bad2");
	link_("../../outside", "bad2/rel");
	link_("src/main.c", "good-link");
	link_("../..", "escape");
	put(".dockerignore", "*.log\nsrc/*.key\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	struct orch_err e = {0};
	rm_rf(dir, &e);
	return 0;
}

static struct build_ctx *ctx_open(void)
{
	struct build_ctx *c = NULL;
	struct orch_err e = {0};
	assert_int_equal(build_ctx_open(dir, &c, &e), 0);
	return c;
}

static void resolve_fails(struct build_ctx *c, const char *src, const char *msg)
{
	struct orch_err e = {0};
	char **out = NULL;
	assert_true(build_ctx_resolve(c, src, &out, &e) < 0);
	if (!strstr(e.msg, msg))
		fail_msg("want [%s] in [%s]", msg, e.msg);
}

static void test_resolve(void **state)
{
	(void)state;
	struct build_ctx *c = ctx_open();
	struct orch_err e = {0};
	char **out = NULL;
	assert_int_equal(build_ctx_resolve(c, "./src/../a.txt", &out, &e), 0);
	assert_string_equal(out[0], "a.txt");
	assert_null(out[1]);
	strv_free(out);
	assert_int_equal(build_ctx_resolve(c, "*.txt", &out, &e), 0);
	assert_string_equal(out[0], "a.txt");
	strv_free(out);
	assert_int_equal(build_ctx_resolve(c, "good-link", &out, &e), 0);
	assert_string_equal(out[0], "src/main.c");
	strv_free(out);
	assert_int_equal(build_ctx_resolve(c, ".", &out, &e), 0);
	assert_string_equal(out[0], "");
	strv_free(out);
	resolve_fails(c, "../x", "outside the build context");
	resolve_fails(c, "bad/abs", "outside the build context");
	resolve_fails(c, "escape", "outside the build context");
	resolve_fails(c, "b.log", "excluded by .dockerignore");
	resolve_fails(c, "nothing*", "no source files match");
	resolve_fails(c, "missing", "not found");
	build_ctx_free(c);
}

static void test_digest(void **state)
{
	(void)state;
	struct build_ctx *c = ctx_open();
	struct orch_err e = {0};
	char d1[65], d2[65], d3[65];
	char *src[] = {"src", NULL};
	assert_int_equal(build_ctx_digest(c, src, d1, &e), 0);
	/* Ignored files do not count. */
	put("src/other.key", "x");
	assert_int_equal(build_ctx_digest(c, src, d2, &e), 0);
	assert_string_equal(d1, d2);
	put("src/main.c", "int main(void);");
	assert_int_equal(build_ctx_digest(c, src, d3, &e), 0);
	assert_string_not_equal(d1, d3);
	char *bad[] = {"bad", NULL};
	assert_true(build_ctx_digest(c, bad, d1, &e) < 0);
	assert_non_null(strstr(e.msg, "points outside the build context"));
	char *bad2[] = {"bad2", NULL};
	assert_true(build_ctx_digest(c, bad2, d1, &e) < 0);
	build_ctx_free(c);
}

static void test_lookup_user(void **state)
{
	(void)state;
	const char *pw = "root:x:0:0:root:/root:/bin/sh\n"
			 "app:x:1000:1001::/home/app:/bin/sh\n";
	const char *gr = "root:x:0:\nstaff:x:50:\n";
	uid_t u;
	gid_t g;
	struct orch_err e = {0};
	assert_int_equal(build_lookup_user("app", pw, gr, &u, &g, &e), 0);
	assert_int_equal(u, 1000);
	assert_int_equal(g, 1001);
	assert_int_equal(build_lookup_user("app:staff", pw, gr, &u, &g, &e), 0);
	assert_int_equal(g, 50);
	assert_int_equal(build_lookup_user("42", pw, gr, &u, &g, &e), 0);
	assert_int_equal(u, 42);
	assert_int_equal(g, 42);
	assert_int_equal(build_lookup_user("1000:7", NULL, NULL, &u, &g, &e),
			 0);
	assert_int_equal(g, 7);
	assert_true(build_lookup_user("nobody", pw, gr, &u, &g, &e) < 0);
	assert_true(build_lookup_user("app:nogroup", pw, gr, &u, &g, &e) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resolve),
	    cmocka_unit_test(test_digest),
	    cmocka_unit_test(test_lookup_user),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
