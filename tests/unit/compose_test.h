/* Shared helpers of the compose loader's unit tests: load YAML text as if
 * it were /nonexistent/proj/compose.yaml, with a fixed environment. */
#ifndef ORCH_TEST_COMPOSE_H
#define ORCH_TEST_COMPOSE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "orchestrator/compose/compose.h"

#define TEST_FILE "/nonexistent/proj/compose.yaml"

static char *test_env[] = {"HOME=/home/u", "TAG=1.2", "EMPTY=", NULL};

/* Loads the files (texts given) and returns the project or NULL. */
static inline struct project *load_files(const char *const *names,
					 const char *const *texts,
					 struct orch_diag *d, char **env)
{
	struct compose_opts o = {0};
	o.files = (char **)names;
	o.contents = texts;
	o.environ = env ? env : test_env;
	struct project *p = NULL;
	int r = compose_load(&o, &p, d);
	if (r < 0)
		assert_null(p);
	return p;
}

static inline struct project *load_text(const char *yaml, struct orch_diag *d)
{
	const char *names[] = {TEST_FILE, NULL};
	const char *texts[] = {yaml, NULL};
	return load_files(names, texts, d, NULL);
}

/* Loads yaml, which must succeed without warnings being required. */
static inline struct project *load_ok(const char *yaml)
{
	struct orch_diag d = {0};
	struct project *p = load_text(yaml, &d);
	if (!p || d.n_errors)
		diag_print(&d, stderr);
	assert_non_null(p);
	diag_free(&d);
	return p;
}

static inline const char *kv_get_value(const struct m_kvlist *l,
				       const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (streq(l->v[i].key, key))
			return l->v[i].value;
	return "(missing)";
}

/* Whether d holds an error at line:col whose message contains what. */
static inline bool has_error(const struct orch_diag *d, int line, int col,
			     const char *what)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct m_diag *m = &d->v[i];
		if (m->severity == M_ERROR && m->line == line &&
		    m->col == col && strstr(m->msg, what))
			return true;
	}
	return false;
}

/* Loading yaml fails with (at least) an error at line:col saying what. */
static inline void expect_error(const char *yaml, int line, int col,
				const char *what)
{
	struct orch_diag d = {0};
	struct project *p = load_text(yaml, &d);
	assert_null(p);
	if (!has_error(&d, line, col, what)) {
		fprintf(stderr, "wanted %d:%d: %s; got:\n", line, col, what);
		diag_print(&d, stderr);
	}
	assert_true(has_error(&d, line, col, what));
	for (size_t i = 0; i < d.n; i++)
		if (d.v[i].severity == M_ERROR)
			assert_string_equal(
			    d.v[i].file ? d.v[i].file : TEST_FILE, TEST_FILE);
	diag_free(&d);
}

#endif
