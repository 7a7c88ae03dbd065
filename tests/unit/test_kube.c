/* orch kube generate's objects, pinned by golden files in
 * tests/unit/golden/kube_*.yaml (KUBE_UPDATE_GOLDEN=1 rewrites them) for
 * the reference stacks: the example stack, examples/, stack10, a file
 * with every key the generator maps (tests/unit/kube/features.yaml) and
 * one with names and shapes Kubernetes spells otherwise (edges.yaml).
 * Each golden file starts with the warnings, as comments.  The schemas
 * and the NetworkPolicies are checked against Kubernetes and against
 * orch's own isolation by tests/e2e/kube.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "orchestrator/cli/cli.h"
#include "tests/unit/golden.h"

static char *env[] = {"HOME=/home/u", NULL};

static struct project *load(const char *file, struct orch_diag *d)
{
	char *files[] = {(char *)file, NULL};
	struct compose_opts o = {.files = files, .environ = env};
	struct project *p = NULL;
	int r = compose_load(&o, &p, d);
	if (r < 0) {
		diag_print(d, stderr);
		fail_msg("loading %s: %d", file, r);
	}
	return p;
}

/* Text with the working directory (where absolute paths start) as
 * @DIR@. */
static void add_scrubbed(struct strbuf *sb, const char *text, const char *dir)
{
	size_t dl = strlen(dir);
	for (const char *s = text; *s;) {
		if (!strncmp(s, dir, dl)) {
			sb_adds(sb, "@DIR@");
			s += dl;
		} else
			sb_add(sb, s++, 1);
	}
}

static char *generate(const char *file, const struct kube_opts *o, int *rc)
{
	char dir[PATH_MAX];
	assert_non_null(getcwd(dir, sizeof(dir)));
	struct orch_diag d = {0};
	_cleanup_project_ struct project *p = load(file, &d);
	diag_free(&d);
	struct kube_doc *docs = NULL;
	size_t n = 0;
	*rc = kube_generate(p, o, &docs, &n, &d);
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "");
	for (size_t i = 0; i < d.n; i++) {
		_cleanup_free_ char *line = xasprintf(
		    "# %s:%d:%d: %s: %s\n", d.v[i].file ? d.v[i].file : "-",
		    d.v[i].line, d.v[i].col,
		    d.v[i].severity == M_ERROR ? "error" : "warning",
		    d.v[i].msg);
		add_scrubbed(&sb, line, dir);
	}
	diag_free(&d);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *y = yaml_render(docs[i].obj);
		sb_adds(&sb, "---\n");
		add_scrubbed(&sb, y, dir);
	}
	if (*rc < 0)
		assert_int_equal(n, 0);
	kube_docs_free(docs, n);
	return sb_steal(&sb);
}

static void golden(const char *name, const char *got)
{
	_cleanup_free_ char *path =
	    xasprintf("tests/unit/golden/kube_%s.yaml", name);
	golden_check(path, got, "KUBE_UPDATE_GOLDEN");
}

static void stack(const char *name, const char *file, enum kube_publish pub)
{
	struct kube_opts o = {.wait_image = KUBE_WAIT_IMAGE,
			      .publish = pub,
			      .allow_hostpath = true};
	int rc;
	_cleanup_free_ char *got = generate(file, &o, &rc);
	assert_int_equal(rc, 0);
	golden(name, got);
}

static void test_example(void **state)
{
	(void)state;
	stack("example", "compose.example.yaml", KUBE_PUBLISH_CLUSTERIP);
}

static void test_examples(void **state)
{
	(void)state;
	stack("internal_network", "examples/internal-network/compose.yaml",
	      KUBE_PUBLISH_LOADBALANCER);
	stack("limits", "examples/limits/compose.yaml",
	      KUBE_PUBLISH_CLUSTERIP);
	stack("test_teardown", "examples/test-teardown/compose.yaml",
	      KUBE_PUBLISH_HOSTPORT);
	stack("build_hello", "examples/build-hello/compose.yaml",
	      KUBE_PUBLISH_CLUSTERIP);
}

static void test_stack10(void **state)
{
	(void)state;
	stack("stack10", "tests/soak/stack10.yaml", KUBE_PUBLISH_NODEPORT);
}

static void test_features(void **state)
{
	(void)state;
	stack("features", "tests/unit/kube/features.yaml",
	      KUBE_PUBLISH_NODEPORT);
	stack("edges", "tests/unit/kube/edges.yaml", KUBE_PUBLISH_HOSTPORT);
}

/* A bind mount is refused without allow_hostpath: an error naming the
 * service, the path and the way out, and no object at all. */
static void test_hostpath_refused(void **state)
{
	(void)state;
	struct kube_opts o = {.wait_image = KUBE_WAIT_IMAGE};
	int rc;
	_cleanup_free_ char *got = generate("compose.example.yaml", &o, &rc);
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(got, "compose.example.yaml:38:9: error: "
				    "service app: the bind mount of "
				    "@DIR@/examples/app/www has no portable"));
	assert_non_null(strstr(got, "compose.example.yaml:26:9: error: "
				    "service web: the bind mount of "));
	assert_non_null(strstr(got, "--allow-hostpath"));
	assert_null(strstr(got, "---"));
}

/* Only the services named, and the objects they use. */
static void test_selected(void **state)
{
	(void)state;
	char *only[] = {"db", NULL};
	struct kube_opts o = {.wait_image = KUBE_WAIT_IMAGE,
			      .allow_hostpath = true,
			      .services = only};
	int rc;
	_cleanup_free_ char *got = generate("compose.example.yaml", &o, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(got, "kind: StatefulSet\nmetadata:\n  name: db"));
	assert_non_null(strstr(got, "kind: PersistentVolumeClaim"));
	assert_null(strstr(got, "name: web\n"));
	assert_null(strstr(got, "kind: Job"));
}

/* Without a wait image: no init containers and no account for them, and
 * each dependency not waited for is said. */
static void test_no_waits(void **state)
{
	(void)state;
	struct kube_opts o = {.allow_hostpath = true};
	int rc;
	_cleanup_free_ char *got = generate("compose.example.yaml", &o, &rc);
	assert_int_equal(rc, 0);
	assert_null(strstr(got, "initContainers"));
	assert_null(strstr(got, "orch-wait"));
	assert_non_null(strstr(got, "warning: service app depends_on: db is "
				    "not waited for (--no-waits)"));
	assert_non_null(strstr(got, "warning: service app depends_on: "
				    "migrate is not waited for"));
	assert_non_null(strstr(got, "kind: StatefulSet\nmetadata:\n  name: db"));
}

/* Names that meet once made DNS labels are errors, with no object. */
static void test_clashes(void **state)
{
	(void)state;
	char *files[] = {"/nonexistent/clash/compose.yaml", NULL};
	const char *texts[] = {"services:\n"
			       "  a_b: {image: x, volumes: [v_1:/a, v-1:/b]}\n"
			       "  a.b: {image: x}\n"
			       "volumes:\n"
			       "  v_1: {}\n"
			       "  v-1: {}\n",
			       NULL};
	struct compose_opts co = {.files = files, .contents = texts,
				  .environ = env};
	struct orch_diag d = {0};
	_cleanup_project_ struct project *p = NULL;
	assert_int_equal(compose_load(&co, &p, &d), 0);
	diag_free(&d);
	struct kube_opts o = {.wait_image = KUBE_WAIT_IMAGE};
	struct kube_doc *docs = NULL;
	size_t n = 0;
	assert_int_equal(kube_generate(p, &o, &docs, &n, &d), -EINVAL);
	assert_null(docs);
	assert_int_equal(d.n_errors, 2);
	_cleanup_free_ char *all = NULL;
	for (size_t i = 0; i < d.n; i++) {
		char *next = xasprintf("%s%s\n", all ? all : "", d.v[i].msg);
		free(all);
		all = next;
	}
	assert_non_null(strstr(all, "services a.b and a_b have the same "
				    "Kubernetes name a-b"));
	assert_non_null(strstr(all, "volumes v-1 and v_1 have the same "
				    "Kubernetes name v-1"));
	diag_free(&d);
}

static void test_names(void **state)
{
	(void)state;
	char *n = kube_name("My_Service.v2");
	assert_string_equal(n, "my-service-v2");
	free(n);
	n = kube_name("__x__");
	assert_string_equal(n, "x");
	free(n);
	assert_null(kube_name("___"));
	char long_name[100];
	memset(long_name, 'a', 99);
	long_name[99] = '\0';
	n = kube_name(long_name);
	assert_int_equal(strlen(n), 63);
	free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_example),
	    cmocka_unit_test(test_examples),
	    cmocka_unit_test(test_stack10),
	    cmocka_unit_test(test_features),
	    cmocka_unit_test(test_hostpath_refused),
	    cmocka_unit_test(test_selected),
	    cmocka_unit_test(test_clashes),
	    cmocka_unit_test(test_no_waits),
	    cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
