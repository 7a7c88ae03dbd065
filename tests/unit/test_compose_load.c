/* The loader across files: interpolation's '$' rules, extends and
 * include.  The normalized output (what `orch config` prints) is pinned
 * by golden files in tests/unit/golden/compose_*.yaml
 * (COMPOSE_UPDATE_GOLDEN=1 rewrites them). */
#include "tests/unit/compose_test.h"

#include <stdlib.h>
#include <sys/stat.h>

/* ---- a project directory on disk --------------------------------------- */

static char tmpdir[64];

static int setup_dir(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/orch-unit-load-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int teardown_dir(void **state)
{
	(void)state;
	struct orch_err e;
	return rm_rf(tmpdir, &e) < 0 ? -1 : 0;
}

/* ---- golden files --------------------------------------------------------- */

/* The project as `orch config` prints it, tmpdir written as @DIR@. */
static char *rendered(const struct project *p)
{
	_cleanup_free_ char *yaml = project_render(p, COMPOSE_YAML);
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "");
	size_t tl = strlen(tmpdir);
	for (const char *s = yaml; *s;) {
		if (!strncmp(s, tmpdir, tl)) {
			sb_adds(&sb, "@DIR@");
			s += tl;
		} else {
			sb_add(&sb, s++, 1);
		}
	}
	return sb_steal(&sb);
}

static void golden(const char *name, const struct project *p)
{
	_cleanup_free_ char *got = rendered(p);
	_cleanup_free_ char *path =
	    xasprintf("tests/unit/golden/compose_%s.yaml", name);
	struct orch_err e;
	if (getenv("COMPOSE_UPDATE_GOLDEN"))
		assert_int_equal(
		    write_file_atomic(path, got, strlen(got), 0644, &e), 0);
	_cleanup_free_ char *want = NULL;
	if (read_file(path, &want, NULL, &e) < 0)
		fail_msg("%s", e.msg);
	if (!streq(want, got))
		fail_msg("%s differs from the output:\n%s", path, got);
}

/* ---- interpolation --------------------------------------------------------- */

/* A '$' that starts no variable is kept; $$ still escapes. */
static void test_interp_dollar_kept(void **state)
{
	(void)state;
	char *env[] = {"A=a", NULL};
	const char *names[] = {TEST_FILE, NULL};
	const char *texts[] = {
	    "name: dollars\n"
	    "services:\n"
	    "  s:\n"
	    "    image: x\n"
	    "    command: sh -c 'echo $(date) $1 $@ $? $A ${A} $$A'\n"
	    "    environment:\n"
	    "      COST: cost $ 5\n"
	    "      TRAIL: end$\n"
	    "      ESC: $${A}\n"
	    "      DIGIT: $9lives\n"
	    "    build:\n"
	    "      context: .\n"
	    "      dockerfile_inline: |\n"
	    "        FROM scratch\n"
	    "        RUN for f in *; do echo \"$f\" $(ls $f); done\n"
	    "        RUN echo ${A} $$ $\n",
	    NULL};
	struct orch_diag d = {0};
	struct project *p = load_files(names, texts, &d, env);
	if (!p)
		diag_print(&d, stderr);
	assert_non_null(p);
	assert_int_equal(d.n_errors, 0);
	diag_free(&d);
	golden("interp_dollar", p);
	project_free(p);
}

static void test_interp_errors_point_at_dollar(void **state)
{
	(void)state;
	/* Unclosed, in the middle of a plain scalar: the '$' and only the
	 * expression. */
	expect_error("services:\n  web:\n    image: x\n"
		     "    command: echo a b ${OOPS c\n",
		     4, 23, "invalid interpolation format: \"${OOPS c\"");
	/* Inside a literal block, on its third line. */
	expect_error("services:\n  web:\n    image: x\n"
		     "    command:\n"
		     "      - |\n"
		     "        echo one\n"
		     "        echo two $(date)\n"
		     "        echo ${NEED:?} three\n",
		     8, 14, "required variable NEED is missing a value");
	expect_error("services:\n  web:\n    image: x\n"
		     "    entrypoint: >\n"
		     "      run\n"
		     "        --flag=${X\n",
		     6, 16, "invalid interpolation format: \"${X\"");
	/* A double-quoted scalar: the column counts from the quote. */
	expect_error("services:\n  web:\n    image: \"a ${}\"\n", 3, 15,
		     "invalid interpolation format: \"${}\"");
	expect_error("services:\n  web:\n    image: x\n"
		     "    environment:\n      K: ${A B}\n",
		     5, 10, "invalid interpolation format: \"${A B}\"");
	/* The message no longer quotes the whole value. */
	struct orch_diag d = {0};
	struct project *p =
	    load_text("services:\n  web:\n    image: x\n"
		      "    command: |\n      long text before ${BAD\n"
		      "      and after\n",
		      &d);
	assert_null(p);
	for (size_t i = 0; i < d.n; i++)
		assert_null(strstr(d.v[i].msg, "long text"));
	assert_true(has_error(&d, 5, 24, "\"${BAD\""));
	diag_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_interp_dollar_kept),
	    cmocka_unit_test(test_interp_errors_point_at_dollar),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
