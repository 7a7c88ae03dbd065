/* Unit tests for the planner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "orchestrator/engine/engine.h"

static char *d_db[] = {NULL};
static char *d_api[] = {"db", "cache", NULL};
static char *d_cache[] = {"db", NULL};
static char *d_web[] = {"api", NULL};

static const struct plan_service stack[] = {
	{"web", d_web, 1, "h-web"},
	{"api", d_api, 2, "h-api"},
	{"cache", d_cache, 1, "h-cache"},
	{"db", d_db, 1, "h-db"},
};

static const struct plan_action *find(const struct plan *p, const char *svc,
				      int num)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->actions[i].service && streq(p->actions[i].service, svc) &&
		    p->actions[i].number == num)
			return &p->actions[i];
	return NULL;
}

static void test_levels(void **state)
{
	(void)state;
	int lv[4];
	struct orch_err e = {0};
	assert_int_equal(plan_levels(stack, 4, lv, &e), 0);
	assert_int_equal(lv[3], 0); /* db */
	assert_int_equal(lv[2], 1); /* cache */
	assert_int_equal(lv[1], 2); /* api: max(db, cache) + 1 */
	assert_int_equal(lv[0], 3); /* web */
}

static void test_cycle(void **state)
{
	(void)state;
	char *a[] = {"b", NULL}, *b[] = {"c", NULL}, *c[] = {"a", NULL};
	struct plan_service s[] = {{"a", a, 1, "x"}, {"b", b, 1, "x"},
				   {"c", c, 1, "x"}};
	int lv[3];
	struct orch_err e = {0};
	assert_true(plan_levels(s, 3, lv, &e) < 0);
	assert_non_null(strstr(e.msg, "a -> b -> c -> a"));
	char *u[] = {"nope", NULL};
	struct plan_service s2[] = {{"a", u, 1, "x"}};
	assert_true(plan_levels(s2, 1, lv, &e) < 0);
	assert_non_null(strstr(e.msg, "undefined service nope"));
}

static void test_fresh_up(void **state)
{
	(void)state;
	struct plan p;
	struct plan_opts o = {0};
	struct orch_err e = {0};
	assert_int_equal(plan_compute(stack, 4, NULL, 0, &o, &p, &e), 0);
	assert_int_equal(p.n, 5);
	assert_int_equal(p.levels, 4);
	/* Dependencies come first. */
	assert_string_equal(p.actions[0].service, "db");
	assert_string_equal(p.actions[1].service, "cache");
	assert_string_equal(p.actions[2].service, "api");
	assert_int_equal(p.actions[2].number, 1);
	assert_int_equal(p.actions[3].number, 2);
	assert_string_equal(p.actions[4].service, "web");
	for (size_t i = 0; i < p.n; i++)
		assert_int_equal(p.actions[i].op, PLAN_CREATE);
	plan_free(&p);
}

static const struct plan_observed running[] = {
	{"p-web-1", "web", 1, "h-web", true},
	{"p-api-1", "api", 1, "h-api", true},
	{"p-api-2", "api", 2, "h-api", false},
	{"p-cache-1", "cache", 1, "OLD", true},
	{"p-db-1", "db", 1, "h-db", true},
	{"p-gone-1", "gone", 1, "h", true},
};

static void test_converge(void **state)
{
	(void)state;
	struct plan p;
	struct plan_opts o = {0};
	struct orch_err e = {0};
	assert_int_equal(plan_compute(stack, 4, running, 6, &o, &p, &e), 0);
	assert_int_equal(find(&p, "web", 1)->op, PLAN_KEEP);
	assert_int_equal(find(&p, "api", 1)->op, PLAN_KEEP);
	assert_int_equal(find(&p, "api", 2)->op, PLAN_START);
	assert_int_equal(find(&p, "cache", 1)->op, PLAN_RECREATE);
	assert_string_equal(find(&p, "cache", 1)->name, "p-cache-1");
	assert_int_equal(find(&p, "db", 1)->op, PLAN_KEEP);
	/* The orphan stays without --remove-orphans. */
	assert_int_equal(p.n, 5);
	plan_free(&p);

	o.remove_orphans = true;
	assert_int_equal(plan_compute(stack, 4, running, 6, &o, &p, &e), 0);
	assert_int_equal(p.n, 6);
	assert_int_equal(p.actions[0].op, PLAN_REMOVE);
	assert_string_equal(p.actions[0].name, "p-gone-1");
	plan_free(&p);

	o.remove_orphans = false;
	o.no_recreate = true;
	assert_int_equal(plan_compute(stack, 4, running, 6, &o, &p, &e), 0);
	assert_int_equal(find(&p, "cache", 1)->op, PLAN_KEEP);
	plan_free(&p);

	o.no_recreate = false;
	o.force_recreate = true;
	assert_int_equal(plan_compute(stack, 4, running, 6, &o, &p, &e), 0);
	for (size_t i = 0; i < p.n; i++)
		assert_int_equal(p.actions[i].op, PLAN_RECREATE);
	plan_free(&p);
}

static void test_select_and_scale(void **state)
{
	(void)state;
	struct plan p;
	char *only_cache[] = {"cache", NULL};
	struct plan_opts o = {.services = only_cache};
	struct orch_err e = {0};
	assert_int_equal(plan_compute(stack, 4, NULL, 0, &o, &p, &e), 0);
	assert_int_equal(p.n, 2); /* cache pulls db */
	assert_string_equal(p.actions[0].service, "db");
	plan_free(&p);
	o.no_deps = true;
	assert_int_equal(plan_compute(stack, 4, NULL, 0, &o, &p, &e), 0);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.actions[0].service, "cache");
	plan_free(&p);

	struct plan_service one[] = {{"api", NULL, 1, "h-api"}};
	struct plan_opts all = {0};
	assert_int_equal(plan_compute(one, 1, running + 1, 2, &all, &p, &e), 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.actions[0].op, PLAN_REMOVE);
	assert_string_equal(p.actions[0].name, "p-api-2");
	assert_int_equal(p.actions[1].op, PLAN_KEEP);
	plan_free(&p);

	char *bad[] = {"nope", NULL};
	struct plan_opts ob = {.services = bad};
	assert_true(plan_compute(stack, 4, NULL, 0, &ob, &p, &e) < 0);
	assert_non_null(strstr(e.msg, "no such service: nope"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_cycle),
		cmocka_unit_test(test_fresh_up),
		cmocka_unit_test(test_converge),
		cmocka_unit_test(test_select_and_scale),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
