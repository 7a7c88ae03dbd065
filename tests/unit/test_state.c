/* Unit tests for per-project state: lock, ownership, atomic save, removal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "orchestrator/engine/engine.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char tmpdir[] = "/tmp/orch-test-state.XXXXXX";

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	setenv("ORCH_RUN", tmpdir, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	struct orch_err e = {0};
	rm_rf(tmpdir, &e);
	return 0;
}

static void test_names(void **state)
{
	(void)state;
	assert_true(pstate_name_valid("my_proj-1"));
	assert_false(pstate_name_valid("My"));
	assert_false(pstate_name_valid("-x"));
	assert_false(pstate_name_valid(""));
	assert_false(pstate_name_valid("a/b"));
	assert_false(pstate_name_valid(".."));
	struct pstate p;
	struct orch_err e = {0};
	assert_true(pstate_open("../x", true, &p, &e) < 0);
}

static void test_save_reload_remove(void **state)
{
	(void)state;
	struct pstate p;
	struct orch_err e = {0};
	assert_int_equal(pstate_open("nope", false, &p, &e), -ENOENT);
	assert_int_equal(pstate_open("demo", true, &p, &e), 0);
	assert_false(p.exists);
	pstate_claim(&p, 1000, "/src/a", NULL);
	json_array_append_new(state_containers(&p),
			      json_pack("{s:s, s:s}", "name", "demo-web-1",
					"id", "abcdef0123"));
	json_array_append_new(state_containers(&p),
			      json_pack("{s:s, s:s}", "name", "demo-db-1",
					"id", "abc999"));
	assert_int_equal(pstate_save(&p, &e), 0);
	pstate_close(&p);

	assert_int_equal(pstate_open("demo", false, &p, &e), 0);
	assert_true(p.exists);
	json_t *c;
	assert_int_equal(state_container_lookup(&p, "demo-web-1", &c, &e), 0);
	assert_int_equal(state_container_lookup(&p, "abcd", &c, &e), 0);
	assert_string_equal(jstr(c, "name"), "demo-web-1");
	assert_int_equal(state_container_lookup(&p, "abc", &c, &e), -EEXIST);
	assert_int_equal(state_container_lookup(&p, "zz", &c, &e), -ENOENT);

	/* Another user, another directory: refused, naming the holder. */
	assert_int_equal(pstate_check_owner(&p, 1000, "/src/a", &e), 0);
	assert_int_equal(pstate_check_owner(&p, 1001, "/src/a", &e), -EPERM);
	assert_int_equal(pstate_check_owner(&p, 1000, "/src/b", &e), -EBUSY);
	assert_non_null(strstr(e.msg, "/src/a"));
	assert_non_null(strstr(e.msg, "-p"));

	char **names = NULL;
	assert_int_equal(pstate_list(&names, &e), 0);
	assert_int_equal(strv_len(names), 1);
	strv_free(names);

	assert_int_equal(pstate_remove(&p, &e), 0);
	_cleanup_free_ char *dir = path_join(tmpdir, "projects/demo");
	struct stat st;
	assert_true(stat(dir, &st) < 0);
	pstate_close(&p);
}

/* The file a save wrote, as JSON. */
static json_t *saved(const struct pstate *p)
{
	_cleanup_free_ char *f = path_join(p->dir, "state.json");
	json_t *j = json_load_file(f, 0, NULL);
	assert_non_null(j);
	return j;
}

/* A kept save writes what a whole save does, as records come and go. */
static void test_save_kept(void **state)
{
	(void)state;
	struct pstate p;
	struct orch_err e = {0};
	struct pstate_kept k = {0};
	assert_int_equal(pstate_open("kept", true, &p, &e), 0);
	pstate_claim(&p, 0, "/src/k", NULL);
	json_t *ctrs = state_containers(&p);
	for (int round = 0; round < 4; round++) {
		/* Two more each round; the second round drops the first
		 * record and changes the networks. */
		for (int i = 0; i < 2; i++)
			json_array_append_new(
			    ctrs, json_pack("{s:s, s:i, s:s}", "name", "c",
					    "n", round * 2 + i, "q", "a\"b"));
		if (round == 1) {
			json_array_remove(ctrs, 0);
			json_object_set_new(p.state, "networks",
					    json_pack("[s]", "kept_default"));
		}
		assert_int_equal(pstate_save_kept(&p, &k, &e), 0);
		json_t *a = saved(&p);
		assert_int_equal(pstate_save(&p, &e), 0);
		json_t *b = saved(&p);
		assert_true(json_equal(a, b));
		assert_int_equal(json_array_size(json_object_get(a,
								 "containers")),
				 json_array_size(ctrs));
		json_decref(a);
		json_decref(b);
	}
	pstate_kept_clear(&k);
	assert_int_equal(pstate_remove(&p, &e), 0);
	pstate_close(&p);
}

static void test_lock_serializes(void **state)
{
	(void)state;
	struct pstate p;
	struct orch_err e = {0};
	assert_int_equal(pstate_open("locked", true, &p, &e), 0);
	_cleanup_free_ char *lock = path_join(p.dir, "lock");
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(lock, O_RDWR | O_CLOEXEC);
		_exit(flock(fd, LOCK_EX | LOCK_NB) == 0 ? 1 : 0);
	}
	int st;
	waitpid(pid, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	pstate_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_save_reload_remove),
		cmocka_unit_test(test_save_kept),
		cmocka_unit_test(test_lock_serializes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
