/* Volume pure logic: names and mountinfo escapes. */
#include "runtime/store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_mountinfo_unescape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
