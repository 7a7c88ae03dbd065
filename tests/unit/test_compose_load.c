/* The loader across files: interpolation's '$' rules, extends and
 * include.  The normalized output (what `orch config` prints) is pinned
 * by golden files in tests/unit/golden/compose_*.yaml
 * (COMPOSE_UPDATE_GOLDEN=1 rewrites them). */
#include "tests/unit/compose_test.h"
#include "tests/unit/golden.h"

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

/* Writes text to tmpdir/rel, making its directories. */
static void put(const char *rel, const char *text)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", tmpdir, rel);
	_cleanup_free_ char *dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	struct orch_err e;
	assert_int_equal(mkdir_p(dir, 0755, &e), 0);
	assert_int_equal(write_file_atomic(path, text, strlen(text), 0644, &e),
			 0);
}

/* Loads tmpdir/rel (and more -f files after it) from disk. */
static struct project *load_disk(const char *const *rels, char **env,
				 struct orch_diag *d)
{
	_cleanup_strv_ char **files = NULL;
	for (size_t i = 0; rels[i]; i++) {
		_cleanup_free_ char *f = xasprintf("%s/%s", tmpdir, rels[i]);
		strv_push(&files, f);
	}
	struct compose_opts o = {0};
	o.files = files;
	o.environ = env ? env : test_env;
	struct project *p = NULL;
	int r = compose_load(&o, &p, d);
	if (r < 0)
		assert_null(p);
	return p;
}

static struct project *load_disk_ok(const char *rel, char **env)
{
	const char *rels[] = {rel, NULL};
	struct orch_diag d = {0};
	struct project *p = load_disk(rels, env, &d);
	if (!p || d.n_errors)
		diag_print(&d, stderr);
	assert_non_null(p);
	diag_free(&d);
	return p;
}

/* Loading rel fails with an error in file (relative to tmpdir) at
 * line:col whose message holds what. */
static void disk_error(const char *rel, const char *file, int line, int col,
		       const char *what)
{
	const char *rels[] = {rel, NULL};
	struct orch_diag d = {0};
	struct project *p = load_disk(rels, NULL, &d);
	assert_null(p);
	_cleanup_free_ char *want = xasprintf("%s/%s", tmpdir, file);
	bool found = false;
	for (size_t i = 0; i < d.n; i++)
		found |= d.v[i].severity == M_ERROR && d.v[i].file &&
			 streq(d.v[i].file, want) && d.v[i].line == line &&
			 d.v[i].col == col && strstr(d.v[i].msg, what);
	if (!found) {
		fprintf(stderr, "wanted %s:%d:%d: %s; got:\n", want, line, col,
			what);
		diag_print(&d, stderr);
	}
	assert_true(found);
	diag_free(&d);
}

/* ---- golden files ---------------------------------------------------------
 */

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
	golden_check(path, got, "COMPOSE_UPDATE_GOLDEN");
}

/* ---- interpolation ---------------------------------------------------------
 */

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

/* build.pull and build.no_cache are applied, not warned of as ignored. */
static void test_build_pull_no_cache(void **state)
{
	(void)state;
	struct orch_diag d = {0};
	struct project *p = load_text("services:\n"
				      "  a:\n"
				      "    build:\n"
				      "      context: .\n"
				      "      pull: true\n"
				      "      no_cache: true\n"
				      "  b:\n"
				      "    build: .\n",
				      &d);
	assert_non_null(p);
	assert_int_equal(d.n, 0);
	assert_true(p->services[0].build.pull);
	assert_true(p->services[0].build.no_cache);
	assert_false(p->services[1].build.pull);
	assert_false(p->services[1].build.no_cache);
	diag_free(&d);
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

/* ---- extends
 * ------------------------------------------------------------------- */

static void put_extends_chain(void)
{
	put("chain/compose.yaml", "name: chain\n"
				  "services:\n"
				  "  web:\n"
				  "    extends:\n"
				  "      file: common/base.yaml\n"
				  "      service: app\n"
				  "    environment:\n"
				  "      LEVEL: web\n"
				  "    ports: [\"8080:80\"]\n"
				  "    command: [\"serve\", \"--web\"]\n"
				  "  worker:\n"
				  "    extends: web\n"
				  "    ports: !reset []\n"
				  "    labels: [role=worker]\n"
				  "volumes:\n  named: {}\n");
	put("chain/common/base.yaml",
	    "services:\n"
	    "  root:\n"
	    "    image: busybox:${TAG}\n"
	    "    build: ./ctx\n"
	    "    environment:\n"
	    "      LEVEL: root\n"
	    "      ROOT: \"1\"\n"
	    "    volumes: [\"./data:/data\", \"named:/named\"]\n"
	    "    env_file: vars.env\n"
	    "    labels: {tier: base}\n"
	    "  app:\n"
	    "    extends: root\n"
	    "    environment: [LEVEL=app, APP=1]\n"
	    "    ports: [\"9090:90\"]\n"
	    "    command: serve\n"
	    "    cap_add: [NET_ADMIN]\n");
	put("chain/common/vars.env", "FROM_FILE=yes\n");
	put("chain/common/ctx/Dockerfile", "FROM scratch\n");
}

/* A chain through another file: the base's relative paths stay relative
 * to its own file, keys merge as in an override file. */
static void test_extends_chain(void **state)
{
	(void)state;
	put_extends_chain();
	struct project *p = load_disk_ok("chain/compose.yaml", NULL);
	/* Only the project's own services: the base file's are not in. */
	assert_int_equal(p->n_services, 2);
	golden("extends_chain", p);
	const struct service *web = project_service(p, "web");
	_cleanup_free_ char *base =
	    xasprintf("%s/chain/common/base.yaml", tmpdir);
	/* The image was written in the base file, and is reported there. */
	assert_string_equal(service_key_pos(web, "image")->file, base);
	assert_int_equal(service_key_pos(web, "image")->line, 3);
	project_free(p);
}

static void test_extends_errors(void **state)
{
	(void)state;
	put("x/cycle.yaml", "services:\n"
			    "  a:\n    extends: b\n"
			    "  b:\n    extends: c\n"
			    "  c:\n    extends: a\n    image: x\n");
	disk_error("x/cycle.yaml", "x/cycle.yaml", 2, 3, "cycle: a (");
	put("x/self.yaml", "services:\n  a:\n    image: x\n    extends: a\n");
	disk_error("x/self.yaml", "x/self.yaml", 2, 3, "cycle");
	put("x/across.yaml",
	    "services:\n"
	    "  a:\n    extends: {file: other.yaml, service: b}\n");
	put("x/other.yaml",
	    "services:\n"
	    "  b:\n    extends: {file: across.yaml, service: a}\n");
	disk_error("x/across.yaml", "x/across.yaml", 2, 3, "extends: cycle");
	put("x/missing.yaml", "services:\n  a:\n    extends: nope\n");
	disk_error("x/missing.yaml", "x/missing.yaml", 3, 14,
		   "no service \"nope\" in this file");
	put("x/nofile.yaml",
	    "services:\n  a:\n    extends:\n      file: gone.yaml\n"
	    "      service: b\n");
	disk_error("x/nofile.yaml", "x/nofile.yaml", 4, 13, "gone.yaml");
	put("x/noservice.yaml",
	    "services:\n  a:\n    extends:\n      file: gone.yaml\n");
	disk_error("x/noservice.yaml", "x/noservice.yaml", 4, 7,
		   "extends: service is required");
	/* A bad value in the base is reported in the base's file. */
	put("x/uses.yaml", "services:\n  a:\n    extends:\n"
			   "      file: sub/bad.yaml\n      service: b\n");
	put("x/sub/bad.yaml",
	    "services:\n  b:\n    image: x\n    ports: [\"80:abc\"]\n");
	disk_error("x/uses.yaml", "x/sub/bad.yaml", 4, 13, "invalid port");
}

/* ---- include
 * --------------------------------------------------------------------- */

static void put_include_tree(void)
{
	put("tree/compose.yaml", "name: tree\n"
				 "include:\n"
				 "  - sub/a.yaml\n"
				 "  - path: [b/b.yaml, b/b.override.yaml]\n"
				 "    env_file: b/custom.env\n"
				 "  - path: c/c.yaml\n"
				 "    project_directory: cdir\n"
				 "services:\n"
				 "  front:\n"
				 "    image: nginx:${TAG}\n"
				 "    depends_on: [a, b, c, n]\n"
				 "    environment: [ONLY_B]\n");
	put("tree/sub/.env", "A_IMG=alpine-a\n");
	put("tree/sub/a.yaml", "include:\n  - nested/n.yaml\n"
			       "services:\n"
			       "  a:\n"
			       "    image: ${A_IMG}\n"
			       "    build: .\n"
			       "    volumes: [\"./x:/x\", \"shared:/s\"]\n"
			       "volumes:\n  shared: {}\n");
	put("tree/sub/nested/n.yaml",
	    "services:\n  n:\n    image: n:${A_IMG:-none}\n"
	    "    networks: [back]\n"
	    "networks:\n  back: {}\n");
	put("tree/b/b.yaml", "services:\n"
			     "  b:\n"
			     "    image: ${B_IMG}\n"
			     "    environment: [ONLY_B]\n");
	put("tree/b/b.override.yaml",
	    "services:\n  b:\n    ports: [\"8081:81\"]\n");
	put("tree/b/custom.env", "B_IMG=bb\nONLY_B=from-env\n");
	put("tree/c/c.yaml", "services:\n  c:\n    build: ./ctx\n");
}

/* Each included project has its own directory and variables; its
 * resources join the including file's. */
static void test_include_tree(void **state)
{
	(void)state;
	put_include_tree();
	struct project *p = load_disk_ok("tree/compose.yaml", NULL);
	assert_int_equal(p->n_services, 5);
	golden("include_tree", p);
	/* Positions stay in the file that wrote the value. */
	const struct service *b = project_service(p, "b");
	_cleanup_free_ char *over =
	    xasprintf("%s/tree/b/b.override.yaml", tmpdir);
	assert_string_equal(b->ports[0].pos.file, over);
	/* The including project does not see the included one's .env. */
	assert_null(
	    kv_get_value(&project_service(p, "front")->environment, "ONLY_B"));
	project_free(p);
}

static void test_include_errors(void **state)
{
	(void)state;
	put("inc/cycle.yaml", "include: [one/one.yaml]\nservices: {}\n");
	put("inc/one/one.yaml", "include: [../cycle.yaml]\n");
	disk_error("inc/cycle.yaml", "inc/one/one.yaml", 1, 11,
		   "include cycle: ");
	put("inc/conflict.yaml", "include: [part.yaml]\n"
				 "services:\n  web: {image: mine}\n");
	put("inc/part.yaml", "services:\n  web: {image: theirs}\n");
	disk_error("inc/conflict.yaml", "inc/conflict.yaml", 3, 3,
		   "services.web conflicts with the one of the same name in");
	/* The very same definition on both sides is no conflict. */
	put("inc/same.yaml", "include: [part.yaml]\n"
			     "services:\n  web: {image: theirs}\n");
	struct project *p = load_disk_ok("inc/same.yaml", NULL);
	project_free(p);
	put("inc/nofile.yaml", "include:\n  - path: gone.yaml\n");
	disk_error("inc/nofile.yaml", "inc/nofile.yaml", 2, 11, "gone.yaml");
	put("inc/badkey.yaml", "include:\n  - paht: x.yaml\n");
	disk_error("inc/badkey.yaml", "inc/badkey.yaml", 2, 5,
		   "unknown key \"paht\"");
	/* Errors in an included file name that file. */
	put("inc/uses.yaml", "include: [bad/bad.yaml]\n");
	put("inc/bad/bad.yaml",
	    "services:\n  b:\n    image: x\n    mem_limit: lots\n");
	disk_error("inc/uses.yaml", "inc/bad/bad.yaml", 4, 16,
		   "invalid byte size");
}

/* ---- COMPOSE_PROJECT_NAME
 * ---------------------------------------------------- */

static const char *container_name_with(const char *yaml, const char *pflag,
				       char **env, char *buf, size_t len)
{
	const char *names[] = {TEST_FILE, NULL};
	const char *texts[] = {yaml, NULL};
	struct compose_opts o = {0};
	o.files = (char **)names;
	o.contents = texts;
	o.environ = env;
	o.project_name = pflag;
	struct project *p = NULL;
	struct orch_diag d = {0};
	if (compose_load(&o, &p, &d) < 0)
		diag_print(&d, stderr);
	assert_non_null(p);
	diag_free(&d);
	snprintf(buf, len, "%s %s", p->name, p->services[0].container_name);
	project_free(p);
	return buf;
}

/* The files are interpolated with COMPOSE_PROJECT_NAME set to the
 * project's name, wherever the name came from. */
static void test_project_name_variable(void **state)
{
	(void)state;
	char buf[128];
	const char *plain = "services:\n  s:\n    image: x\n"
			    "    container_name: ${COMPOSE_PROJECT_NAME}-a\n";
	const char *named = "name: ${PREFIX:-dflt}-app\n"
			    "services:\n  s:\n    image: x\n"
			    "    container_name: ${COMPOSE_PROJECT_NAME}-a\n";
	char *none[] = {NULL};
	char *fromenv[] = {"COMPOSE_PROJECT_NAME=envname", NULL};
	char *prefix[] = {"PREFIX=my", NULL};
	/* The directory's name. */
	assert_string_equal(
	    container_name_with(plain, NULL, none, buf, sizeof(buf)),
	    "proj proj-a");
	assert_string_equal(
	    container_name_with(plain, "given", none, buf, sizeof(buf)),
	    "given given-a");
	assert_string_equal(
	    container_name_with(plain, NULL, fromenv, buf, sizeof(buf)),
	    "envname envname-a");
	/* name: is interpolated first, then seen by the rest. */
	assert_string_equal(
	    container_name_with(named, NULL, prefix, buf, sizeof(buf)),
	    "my-app my-app-a");
	assert_string_equal(
	    container_name_with(named, NULL, none, buf, sizeof(buf)),
	    "dflt-app dflt-app-a");
	assert_string_equal(
	    container_name_with(named, "given", prefix, buf, sizeof(buf)),
	    "given given-a");
	/* A mistake in name: is reported once, at its '$'. */
	struct orch_diag d = {0};
	struct project *p =
	    load_text("name: x${NEED:?}\nservices:\n  s: {image: x}\n", &d);
	assert_null(p);
	assert_true(has_error(&d, 1, 8, "required variable NEED"));
	assert_int_equal(d.n_errors, 1);
	diag_free(&d);
}

/* ---- env_file
 * ------------------------------------------------------------------ */

/* With defer_env_files a missing env_file fails only the services that
 * need it (and those that depend on them). */
static void test_env_file_deferred(void **state)
{
	(void)state;
	put("envf/compose.yaml", "services:\n"
				 "  ok: {image: x}\n"
				 "  needs:\n"
				 "    image: x\n"
				 "    env_file: [present.env, gone.env]\n"
				 "  front:\n"
				 "    image: x\n"
				 "    depends_on: [needs]\n");
	put("envf/present.env", "A=1\n");
	_cleanup_free_ char *file = xasprintf("%s/envf/compose.yaml", tmpdir);
	char *files[] = {file, NULL};
	struct compose_opts o = {0};
	o.files = files;
	o.environ = test_env;
	struct project *p = NULL;
	struct orch_diag d = {0};
	/* Without it, loading fails. */
	assert_int_equal(compose_load(&o, &p, &d), -EINVAL);
	assert_true(has_error(&d, 5, 29, "gone.env"));
	diag_free(&d);
	o.defer_env_files = true;
	assert_int_equal(compose_load(&o, &p, &d), 0);
	assert_int_equal(d.n_errors, 0);
	char *ok[] = {"ok", NULL}, *front[] = {"front", NULL};
	assert_int_equal(project_env_check(p, ok, true, &d), 0);
	assert_int_equal(project_env_check(p, front, false, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(project_env_check(p, front, true, &d), -EINVAL);
	assert_true(has_error(&d, 5, 29, "services.needs.env_file: env file:"));
	diag_free(&d);
	assert_int_equal(project_env_check(p, NULL, true, &d), -EINVAL);
	assert_int_equal(d.n_errors, 1);
	diag_free(&d);
	/* The file that could be read still counts. */
	assert_string_equal(
	    kv_get_value(&project_service(p, "needs")->environment, "A"), "1");
	project_free(p);
}

/* format: raw takes values as written; an unknown format is refused at
 * its key. */
static void test_env_file_raw(void **state)
{
	(void)state;
	put("raw/compose.yaml", "services:\n"
				"  a:\n"
				"    image: x\n"
				"    env_file:\n"
				"      - path: r.env\n"
				"        format: raw\n"
				"      - path: r.env\n"
				"        format: .env\n"
				"        required: false\n");
	put("raw/r.env", "# note\nQ=\"quoted\"\nD=$HOME-x\n\n E = e=f \r\n");
	const char *rels[] = {"raw/compose.yaml", NULL};
	struct orch_diag d = {0};
	struct project *p = load_disk(rels, NULL, &d);
	assert_non_null(p);
	assert_int_equal(d.n_errors, 0);
	const struct m_kvlist *env = &p->services[0].environment;
	/* The .env file after it wins where it parses differently. */
	assert_string_equal(kv_get_value(env, "Q"), "quoted");
	assert_string_equal(kv_get_value(env, "E"), "e=f");
	project_free(p);
	diag_free(&d);
	put("raw/compose.yaml", "services:\n"
				"  a:\n"
				"    image: x\n"
				"    env_file: [{path: r.env, format: raw}]\n");
	p = load_disk(rels, NULL, &d);
	assert_non_null(p);
	env = &p->services[0].environment;
	assert_string_equal(kv_get_value(env, "Q"), "\"quoted\"");
	assert_string_equal(kv_get_value(env, "D"), "$HOME-x");
	assert_string_equal(kv_get_value(env, "E"), " e=f ");
	assert_int_equal(env->n, 3);
	project_free(p);
	diag_free(&d);
	put("raw/compose.yaml", "services:\n"
				"  a:\n"
				"    image: x\n"
				"    env_file: [{path: r.env, format: yaml}]\n");
	assert_null(load_disk(rels, NULL, &d));
	assert_true(has_error(&d, 4, 38, "unsupported env_file format"));
	diag_free(&d);
	put("raw/r.env", "NOEQUALS\n");
	put("raw/compose.yaml", "services:\n"
				"  a:\n"
				"    image: x\n"
				"    env_file: [{path: r.env, format: raw}]\n");
	assert_null(load_disk(rels, NULL, &d));
	assert_true(has_error(&d, 1, 1, "bad line in env file"));
	diag_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_interp_dollar_kept),
	    cmocka_unit_test(test_build_pull_no_cache),
	    cmocka_unit_test(test_interp_errors_point_at_dollar),
	    cmocka_unit_test(test_project_name_variable),
	    cmocka_unit_test(test_extends_chain),
	    cmocka_unit_test(test_extends_errors),
	    cmocka_unit_test(test_include_tree),
	    cmocka_unit_test(test_include_errors),
	    cmocka_unit_test(test_env_file_deferred),
	    cmocka_unit_test(test_env_file_raw),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
