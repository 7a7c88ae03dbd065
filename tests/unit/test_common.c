/* Unit tests for common/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/common.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

static void test_parse_bytes(void **state)
{
	(void)state;
	int64_t v;
	assert_int_equal(parse_bytes("64m", &v), 0);
	assert_int_equal(v, 64 * 1024 * 1024);
	assert_int_equal(parse_bytes("1.5g", &v), 0);
	assert_int_equal(v, 1536LL * 1024 * 1024);
	assert_int_equal(parse_bytes("512kb", &v), 0);
	assert_int_equal(v, 512 * 1024);
	assert_int_equal(parse_bytes("100", &v), 0);
	assert_int_equal(v, 100);
	assert_true(parse_bytes("12q", &v) < 0);
	assert_true(parse_bytes("", &v) < 0);
	assert_true(parse_bytes("-1m", &v) < 0);
}

static void test_signals(void **state)
{
	(void)state;
	assert_int_equal(parse_signal("SIGTERM"), SIGTERM);
	assert_int_equal(parse_signal("kill"), SIGKILL);
	assert_int_equal(parse_signal("2"), 2);
	assert_int_equal(parse_signal("NOPE"), -1);
	assert_string_equal(signal_name(SIGUSR1), "SIGUSR1");
}

static void test_cpulist(void **state)
{
	(void)state;
	uint64_t m[CPUSET_WORDS];
	assert_true(cpulist_parse("0-3,8,70-71\n", m, CPUSET_WORDS * 64));
	assert_true(m[0] == 0x10f && m[1] == 0xc0 && m[2] == 0);
	assert_true(cpulist_parse("5", m, 64) && m[0] == 0x20);
	static const char *const bad[] = {"", "a", "1-", "-1", "3-1", "1,",
					  "1,,2", "1 2", "64"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_false(cpulist_parse(bad[i], m, 64));
}

static void test_ulimit(void **state)
{
	(void)state;
	int res;
	int64_t soft, hard;
	const char *why = NULL;
	assert_true(ulimit_parse("nofile=1024:2048", &res, &soft, &hard, &why));
	assert_true(res == RLIMIT_NOFILE && soft == 1024 && hard == 2048);
	assert_true(ulimit_parse("core=-1", &res, &soft, &hard, &why));
	assert_true(res == RLIMIT_CORE && soft == -1 && hard == -1);
	assert_true(ulimit_parse("nproc=5:-1", &res, &soft, &hard, &why));
	static const char *const bad[] = {"nofile", "nofiles=1", "nofile=",
					  "nofile=2:1", "nofile=-1:5",
					  "nofile=x", "nofile=1:", "=1"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		why = NULL;
		assert_false(ulimit_parse(bad[i], &res, &soft, &hard, &why));
		assert_non_null(why);
	}
	assert_int_equal(rlimit_by_name("stack"), RLIMIT_STACK);
	assert_int_equal(rlimit_by_name("STACK"), -1);
}

static void test_errors(void **state)
{
	(void)state;
	struct orch_err e = {0};
	assert_int_equal(err_sys(&e, EEXIST, "creating veth %s", "v0"), -EEXIST);
	assert_int_equal(err_wrap(&e, "attaching web-1"), -EEXIST);
	assert_string_equal(e.msg, "attaching web-1: creating veth v0: File exists");
}

static void test_atomic_write(void **state)
{
	(void)state;
	char dir[] = "/tmp/orch-unit.XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct orch_err e = {0};
	_cleanup_free_ char *sub = path_join(dir, "a/b/c");
	assert_int_equal(mkdir_p(sub, 0755, &e), 0);
	_cleanup_free_ char *f = path_join(sub, "state.json");
	assert_int_equal(write_file_atomic(f, "{}", 2, 0600, &e), 0);
	char *got = NULL;
	size_t len;
	assert_int_equal(read_file(f, &got, &len, &e), 0);
	assert_string_equal(got, "{}");
	free(got);
	assert_int_equal(rm_rf(dir, &e), 0);
	assert_int_equal(rm_rf(dir, &e), 0); /* already gone is success */
	struct stat st;
	assert_int_equal(stat(dir, &st), -1);
}

static void test_strv_sb(void **state)
{
	(void)state;
	_cleanup_strv_ char **v = NULL;
	strv_push(&v, "a");
	strv_push(&v, "b");
	assert_int_equal(strv_len(v), 2);
	assert_true(strv_contains(v, "b"));
	struct strbuf sb;
	sb_init(&sb);
	assert_string_equal(sb.buf, "");
	_cleanup_free_ char *none = sb_steal(&sb);
	assert_string_equal(none, "");
	sb_printf(&sb, "%d-%s", 7, "x");
	sb_adds(&sb, "!");
	_cleanup_free_ char *s = sb_steal(&sb);
	assert_string_equal(s, "7-x!");
	char id[65];
	sha256_hex("", 0, id);
	assert_string_equal(id, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* Cleaned as Go's filepath.Clean would, split into components. */
static void test_path_components(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
		bool above;
	} cases[] = {
	    {"", "", false},
	    {"/", "", false},
	    {"a/b/c", "a/b/c", false},
	    {"//a//./b/", "a/b", false},
	    {"a/../b", "b", false},
	    {"a/b/../../c/.", "c", false},
	    {"..", "", true},
	    {"/../a", "a", true},
	    {"a/../../b", "b", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool above = !cases[i].above;
		_cleanup_strv_ char **parts =
		    path_components(cases[i].in, &above);
		_cleanup_free_ char *got = strv_join(parts, "/");
		assert_string_equal(got, cases[i].want);
		assert_int_equal(above, cases[i].above);
	}
	_cleanup_strv_ char **none = path_components("./.", NULL);
	assert_null(none[0]);
}

/* Terminal columns, and prefixes that never split a character. */
static void test_text_columns(void **state)
{
	(void)state;
	size_t n;
	assert_int_equal(text_columns("abc", SIZE_MAX, &n), 3);
	assert_int_equal(n, 3);
	assert_int_equal(text_columns("a\u2026", SIZE_MAX, &n), 2);
	assert_int_equal(n, 4);
	assert_int_equal(text_columns("\u65e5\u672c", SIZE_MAX, NULL), 4);
	/* A wide character that does not fit is left out whole. */
	assert_int_equal(text_columns("a\u65e5b", 2, &n), 1);
	assert_int_equal(n, 1);
	assert_int_equal(text_columns("h\u00e9llo", 2, &n), 2);
	assert_int_equal(n, 3);
	/* Bytes that are not UTF-8: a column each. */
	assert_int_equal(text_columns("\xff\xfe", SIZE_MAX, &n), 2);
	assert_int_equal(n, 2);
}

static int64_t dropped_sum;
static void drop_num(union kept v)
{
	dropped_sum += v.num;
}

/* keep: a key's value is found again, replaced in place, and the oldest
 * goes (dropped) once every slot is taken. */
static void test_keep(void **state)
{
	(void)state;
	struct keep k = {.drop = drop_num};
	union kept v;
	assert_false(keep_get(&k, "a", &v));
	keep_put(&k, "a", (union kept){.num = 1});
	assert_true(keep_get(&k, "a", &v));
	assert_int_equal(v.num, 1);
	keep_put(&k, "a", (union kept){.num = 2});
	assert_int_equal(dropped_sum, 1);
	assert_true(keep_get(&k, "a", &v));
	assert_int_equal(v.num, 2);
	size_t n = ARRAY_SIZE(k.slot);
	for (size_t i = 1; i < n; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%zu", i);
		keep_put(&k, key, (union kept){.num = 100});
	}
	assert_int_equal(dropped_sum, 1); /* every slot taken, none gone */
	assert_true(keep_get(&k, "a", &v));
	keep_put(&k, "new", (union kept){.num = 5});
	assert_int_equal(dropped_sum, 3); /* "a", the oldest, went */
	assert_false(keep_get(&k, "a", &v));
	assert_true(keep_get(&k, "new", &v));
	assert_int_equal(v.num, 5);
	assert_true(keep_get(&k, "k1", &v));
	for (size_t i = 0; i < n; i++)
		free(k.slot[i].key);
}

static void test_str_fields(void **state)
{
	(void)state;
	char a[] = "x:y:z:w", b[] = "", c[] = "one";
	char *f[3] = {0};
	assert_int_equal(str_fields(a, ':', f, 3), 4);
	assert_string_equal(f[0], "x");
	assert_string_equal(f[1], "y");
	assert_string_equal(f[2], "z");
	assert_int_equal(str_fields(b, ':', f, 3), 1);
	assert_string_equal(f[0], "");
	assert_int_equal(str_fields(c, ':', f, 1), 1);
	assert_string_equal(f[0], "one");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_bytes),
		cmocka_unit_test(test_signals),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_atomic_write),
		cmocka_unit_test(test_strv_sb),
		cmocka_unit_test(test_path_components),
		cmocka_unit_test(test_text_columns),
		cmocka_unit_test(test_str_fields),
		cmocka_unit_test(test_keep),
		cmocka_unit_test(test_cpulist),
		cmocka_unit_test(test_ulimit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
