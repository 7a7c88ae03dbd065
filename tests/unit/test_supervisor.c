/* Unit tests for the supervisor's pure decisions: restart policies,
 * backoff, health-check timing and verdicts, log rotation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "orchestrator/supervisor/supervisor.h"

static void test_restart_policy(void **state)
{
	(void)state;
	struct restart_policy rp;
	struct orch_err e = {0};
	assert_int_equal(restart_policy_parse("on-failure:2", &rp, &e), 0);
	assert_int_equal(rp.kind, RESTART_ON_FAILURE);
	assert_int_equal(rp.max_retries, 2);
	assert_true(restart_wanted(&rp, 1, 0, false));
	assert_true(restart_wanted(&rp, 1, 1, false));
	assert_false(restart_wanted(&rp, 1, 2, false));
	assert_false(restart_wanted(&rp, 0, 0, false));
	assert_int_equal(restart_policy_parse("always", &rp, &e), 0);
	assert_true(restart_wanted(&rp, 0, 50, false));
	assert_false(restart_wanted(&rp, 0, 0, true));
	assert_int_equal(restart_policy_parse("no", &rp, &e), 0);
	assert_false(restart_wanted(&rp, 1, 0, false));
	assert_int_equal(restart_policy_parse("unless-stopped", &rp, &e), 0);
	assert_true(restart_wanted(&rp, 137, 3, false));
	assert_false(restart_wanted(&rp, 137, 3, true));
	assert_true(restart_policy_parse("sometimes", &rp, &e) < 0);
	assert_true(restart_policy_parse("on-failure:x", &rp, &e) < 0);
	assert_true(restart_policy_parse("on-failurex", &rp, &e) < 0);
}

static void test_backoff(void **state)
{
	(void)state;
	int64_t cur = 0;
	assert_int_equal(backoff_next(&cur, 5), 100);
	assert_int_equal(backoff_next(&cur, 5), 200);
	assert_int_equal(backoff_next(&cur, 5), 400);
	for (int i = 0; i < 20; i++)
		backoff_next(&cur, 5);
	assert_int_equal(cur, 30000);
	assert_int_equal(backoff_next(&cur, 10000), 100);
	assert_int_equal(backoff_next(&cur, 9999), 200);
}

static const struct hc_policy hc = {
    .interval = 30000,
    .timeout = 5000,
    .start_period = 10000,
    .start_interval = 1000,
    .retries = 3,
};

static void test_hc_delay(void **state)
{
	(void)state;
	/* Within the start period, still starting: start_interval. */
	assert_int_equal(hc_delay(&hc, H_STARTING, 0), 1000);
	assert_int_equal(hc_delay(&hc, H_STARTING, 9999), 1000);
	/* After it, or once healthy: interval. */
	assert_int_equal(hc_delay(&hc, H_STARTING, 10000), 30000);
	assert_int_equal(hc_delay(&hc, H_HEALTHY, 500), 30000);
	/* No start_interval: interval throughout. */
	struct hc_policy p = hc;
	p.start_interval = 0;
	assert_int_equal(hc_delay(&p, H_STARTING, 0), 30000);
}

static void test_hc_judge(void **state)
{
	(void)state;
	int fails = 0;
	/* Failures in the start period while starting do not count. */
	assert_int_equal(hc_judge(&hc, H_STARTING, &fails, false, 100),
			 H_STARTING);
	assert_int_equal(fails, 0);
	/* After it, retries failures in a row make it unhealthy. */
	assert_int_equal(hc_judge(&hc, H_STARTING, &fails, false, 20000),
			 H_STARTING);
	assert_int_equal(hc_judge(&hc, H_STARTING, &fails, false, 21000),
			 H_STARTING);
	assert_int_equal(hc_judge(&hc, H_STARTING, &fails, false, 22000),
			 H_UNHEALTHY);
	assert_int_equal(fails, 3);
	/* One pass resets the count. */
	assert_int_equal(hc_judge(&hc, H_UNHEALTHY, &fails, true, 23000),
			 H_HEALTHY);
	assert_int_equal(fails, 0);
	/* Once healthy, failures count even within the start period. */
	assert_int_equal(hc_judge(&hc, H_HEALTHY, &fails, false, 1000),
			 H_HEALTHY);
	assert_int_equal(fails, 1);
	assert_string_equal(health_name(H_UNHEALTHY), "unhealthy");
	assert_string_equal(health_name(H_NONE), "");
}

static void test_log_rotation(void **state)
{
	(void)state;
	assert_false(log_full(1000000, 100, 0));
	assert_false(log_full(0, 10, 100));
	assert_true(log_full(60, 10, 100));
	assert_false(log_full(50, 10, 100));
	char *f = log_file("/run/p/logs", "web-1", 0);
	assert_string_equal(f, "/run/p/logs/web-1.log");
	free(f);
	f = log_file("/run/p/logs", "web-1", 2);
	assert_string_equal(f, "/run/p/logs/web-1.log.2");
	free(f);
}

static void test_refusal_text(void **state)
{
	(void)state;
	char *t = refusal_text("web", "words", "tcp", 8080, "back");
	assert_string_equal(t, "web \u2192 words:8080 refused: web is not linked "
			       "to words (add \"links: [words]\" or "
			       "\"depends_on\", or set enable_icc on network "
			       "back)");
	free(t);
	t = refusal_text("a", "db", "udp", 53, "default");
	assert_non_null(strstr(t, "a \u2192 db:53/udp refused"));
	free(t);
	t = refusal_text("a", "db", "icmp", 0, "default");
	assert_non_null(strstr(t, "a \u2192 db (icmp) refused"));
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restart_policy),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_hc_delay),
		cmocka_unit_test(test_hc_judge),
		cmocka_unit_test(test_log_rotation),
		cmocka_unit_test(test_refusal_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
