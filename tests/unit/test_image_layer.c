/* Layers from overlay upper directories, through the store and back:
 * rt_layer_from_upper, layer_store, rt_image_commit and lookup, in a
 * temporary $ORCH_ROOT.  Whiteouts need CAP_MKNOD and are checked only as
 * root. */
#include "runtime/store/store_impl.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <cmocka.h>

static char base[] = "/tmp/orch-unit-layer.XXXXXX";

static void put(const char *dir, const char *rel, const char *text)
{
	char *p = path_join(dir, rel);
	FILE *f = fopen(p, "we");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(p);
}

static char *slurp(const char *dir, const char *rel)
{
	char *p = path_join(dir, rel), *data = NULL;
	int r = read_file(p, &data, NULL, NULL);
	free(p);
	return r == 0 ? data : NULL;
}

static int setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(base));
	char *root = path_join(base, "root");
	setenv("ORCH_ROOT", root, 1);
	free(root);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rm_rf(base, NULL);
	return 0;
}

static void test_empty_upper(void **state)
{
	(void)state;
	char *up = path_join(base, "empty");
	assert_int_equal(mkdir(up, 0755), 0);
	char *diff = (char *)"unset";
	struct orch_err e = {0};
	assert_int_equal(rt_layer_from_upper(up, 0, &diff, &e), 0);
	assert_null(diff);
	free(up);
}

static void test_round_trip(void **state)
{
	(void)state;
	bool root = geteuid() == 0;
	char *up = path_join(base, "upper");
	char *sub = path_join(up, "etc");
	char *deep = path_join(up, "etc/conf.d");
	assert_int_equal(mkdir(up, 0755), 0);
	assert_int_equal(mkdir(sub, 0750), 0);
	assert_int_equal(mkdir(deep, 0755), 0);
	put(up, "etc/hostname", "box\n");
	put(up, "etc/conf.d/a", "a\n");
	char *f = path_join(up, "etc/hostname"), *l = path_join(up, "etc/hn");
	assert_int_equal(link(f, l), 0);
	char *s = path_join(up, "etc/sh");
	assert_int_equal(symlink("/bin/busybox", s), 0);
	if (root) {
		char *wh = path_join(up, "etc/motd");
		assert_int_equal(mknod(wh, S_IFCHR | 0, makedev(0, 0)), 0);
		assert_int_equal(
		    setxattr(deep, "trusted.overlay.opaque", "y", 1, 0), 0);
		free(wh);
	}

	char *diff = NULL, *again = NULL;
	struct orch_err e = {0};
	assert_int_equal(rt_layer_from_upper(up, 0, &diff, &e), 0);
	assert_non_null(diff);
	assert_true(startswith(diff, "sha256:"));
	assert_true(layer_exists(diff));
	assert_true(layer_size(diff) > 0);
	/* Same tree, same digest. */
	assert_int_equal(rt_layer_from_upper(up, 0, &again, &e), 0);
	assert_string_equal(diff, again);

	char *dir = layer_dir(diff);
	char *text = slurp(dir, "etc/hostname");
	assert_string_equal(text, "box\n");
	free(text);
	struct stat a, b;
	char *pa = path_join(dir, "etc/hostname"),
	     *pb = path_join(dir, "etc/hn");
	assert_int_equal(stat(pa, &a), 0);
	assert_int_equal(stat(pb, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino); /* the hard link is kept */
	char *ps = path_join(dir, "etc/sh"), target[64] = {0};
	assert_int_equal(readlink(ps, target, sizeof(target) - 1), 12);
	assert_string_equal(target, "/bin/busybox");
	char *pe = path_join(dir, "etc");
	assert_int_equal(stat(pe, &a), 0);
	assert_int_equal(a.st_mode & 07777, 0750);
	if (root) {
		char *pw = path_join(dir, "etc/motd");
		assert_int_equal(lstat(pw, &a), 0);
		assert_true(S_ISCHR(a.st_mode));
		assert_int_equal(a.st_rdev, makedev(0, 0));
		char *pd = path_join(dir, "etc/conf.d"), v[4] = {0};
		assert_int_equal(getxattr(pd, "trusted.overlay.opaque", v, 4),
				 1);
		assert_int_equal(v[0], 'y');
		free(pw);
		free(pd);
	}

	/* An image committed from it is found by name and lists the layer. */
	struct rt_image_config cfg = {0};
	strv_push(&cfg.cmd, "sh");
	char *layers[] = {diff, NULL};
	char id[65];
	assert_int_equal(rt_image_commit(layers, &cfg, NULL, "built:1", id, &e), 0);
	struct rt_image *img = NULL;
	assert_int_equal(rt_image_lookup("built:1", &img, &e), 0);
	assert_string_equal(img->id, id);
	assert_string_equal(img->layers[0], diff);
	assert_string_equal(img->config.cmd[0], "sh");
	char **lowers = rt_image_lowers(img);
	assert_string_equal(lowers[0], dir);
	strv_free(lowers);
	rt_image_free(img);
	rt_image_config_clear(&cfg);
	char *missing[] = {(char *)"sha256:0000", NULL};
	assert_true(rt_image_commit(missing, &cfg, NULL, NULL, id, &e) < 0);

	free(pa);
	free(pb);
	free(ps);
	free(pe);
	free(dir);
	free(diff);
	free(again);
	free(f);
	free(l);
	free(s);
	free(up);
	free(sub);
	free(deep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty_upper),
	    cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
