/* Volume pure logic: names and mountinfo escapes; what a crashed
 * creation leaves is swept. */
#include "runtime/store/store_impl.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static void test_names(void **state)
{
	(void)state;
	assert_true(volume_name_valid("data"));
	assert_true(volume_name_valid("myproj_db-data.1"));
	assert_true(volume_name_valid("0abc"));
	assert_false(volume_name_valid(""));
	assert_false(volume_name_valid("_x"));
	assert_false(volume_name_valid(".x"));
	assert_false(volume_name_valid("-x"));
	assert_false(volume_name_valid("a/b"));
	assert_false(volume_name_valid(".."));
	assert_false(volume_name_valid("a b"));
	assert_false(volume_name_valid("a:b"));
	char long_name[300];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_false(volume_name_valid(long_name));
}

static void unescaped(const char *in, const char *want)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", in);
	mountinfo_unescape(buf);
	assert_string_equal(buf, want);
}

static void test_mountinfo_unescape(void **state)
{
	(void)state;
	unescaped("/plain/path", "/plain/path");
	unescaped("/with\\040space", "/with space");
	unescaped("/tab\\011and\\012nl", "/tab\tand\nnl");
	unescaped("/back\\134slash", "/back\\slash");
	unescaped("/short\\04", "/short\\04");
	unescaped("\\", "\\");
	unescaped("", "");
}

static bool exists(const char *dir, const char *name)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/volumes/%s", dir, name);
	return access(p, F_OK) == 0;
}

/* A creation killed half-way leaves volumes/.new-NAME-XXXXXX: listing the
 * volumes (as every down does) removes it, unless a creation holds the
 * volumes lock. */
static void test_list_sweeps_unfinished(void **state)
{
	(void)state;
	char root[] = "/tmp/orch-unit-vol.XXXXXX";
	assert_non_null(mkdtemp(root));
	setenv("ORCH_ROOT", root, 1);
	char p[4096], vols[1024];
	snprintf(vols, sizeof(vols), "%s/volumes", root);
	assert_int_equal(mkdir(vols, 0700), 0);
	snprintf(p, sizeof(p), "%s/.new-data-abc123", vols);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/.new-data-abc123/_data", vols);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/.lock", vols);
	int lock = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(lock >= 0);

	struct rt_volume **v = NULL;
	size_t n = 1;
	struct orch_err e = {0};
	assert_int_equal(flock(lock, LOCK_EX), 0);
	assert_int_equal(rt_volume_list(&v, &n, &e), 0);
	assert_int_equal(n, 0);
	free(v);
	assert_true(exists(root, ".new-data-abc123"));

	assert_int_equal(flock(lock, LOCK_UN), 0);
	assert_int_equal(rt_volume_list(&v, &n, &e), 0);
	free(v);
	assert_false(exists(root, ".new-data-abc123"));
	close(lock);
	unlink(p);
	rmdir(vols);
	rmdir(root);
	unsetenv("ORCH_ROOT");
}

/* A scratch directory whose owner died (it holds no lock on it) goes at
 * the next listing, however young; a live owner's stays. */
static void test_list_sweeps_dead_scratch(void **state)
{
	(void)state;
	char root[] = "/tmp/orch-unit-vol.XXXXXX";
	assert_non_null(mkdtemp(root));
	setenv("ORCH_ROOT", root, 1);
	char *live = NULL;
	int live_lock = -1;
	struct orch_err e = {0};
	assert_int_equal(store_tmpdir("populate", &live, &live_lock, &e), 0);
	char dead[1024];
	snprintf(dead, sizeof(dead), "%s/tmp/populate-dead", root);
	assert_int_equal(mkdir(dead, 0700), 0);

	struct rt_volume **v = NULL;
	size_t n = 1;
	assert_int_equal(rt_volume_list(&v, &n, &e), 0);
	free(v);
	assert_int_equal(access(dead, F_OK), -1);
	assert_int_equal(access(live, F_OK), 0);

	close(live_lock);
	assert_int_equal(rt_volume_list(&v, &n, &e), 0);
	free(v);
	assert_int_equal(access(live, F_OK), -1);
	free(live);
	char p[1100];
	snprintf(p, sizeof(p), "%s/tmp", root);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/volumes", root);
	rmdir(p);
	rmdir(root);
	unsetenv("ORCH_ROOT");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_mountinfo_unescape),
	    cmocka_unit_test(test_list_sweeps_unfinished),
	    cmocka_unit_test(test_list_sweeps_dead_scratch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
