/* The unit tests' golden files: what a test produced against the file
 * tests/unit/golden/... that pins it.  With the variable update_env set
 * (KUBE_UPDATE_GOLDEN=1, ...), the file is rewritten first.  Include
 * after cmocka.h and the header that brings common/. */
#ifndef ORCH_TEST_GOLDEN_H
#define ORCH_TEST_GOLDEN_H

static inline void golden_check(const char *path, const char *got,
				const char *update_env)
{
	struct orch_err e;
	if (getenv(update_env))
		assert_int_equal(
		    write_file_atomic(path, got, strlen(got), 0644, &e), 0);
	_cleanup_free_ char *want = NULL;
	if (read_file(path, &want, NULL, &e) < 0)
		fail_msg("%s", e.msg);
	if (!streq(want, got))
		fail_msg("%s differs from the output:\n%s", path, got);
}

#endif
