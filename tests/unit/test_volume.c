/* Volume pure logic: names and mountinfo escapes; what a crashed
 * creation leaves is swept; owners move between id maps (volumes and the
 * layer copies of keep-id). */
#include "runtime/store/store_impl.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

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

static bool exists(const char *dir, const char *name)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/volumes/%s", dir, name);
	return access(p, F_OK) == 0;
}

/* A creation killed half-way leaves volumes/.new-NAME-XXXXXX: listing the
 * volumes (as every down does) removes it, unless a creation holds the
 * volumes lock. */
/* keep-id's map for uid 1000 in a namespace of 65537 ids. */
static void keepid_1000(struct rt_ids *ids)
{
	*ids = (struct rt_ids){.n_uid = 3, .n_gid = 3};
	ids->uid[0] = ids->gid[0] = (struct rt_idmap){0, 1, 1000};
	ids->uid[1] = ids->gid[1] = (struct rt_idmap){1000, 0, 1};
	ids->uid[2] = ids->gid[2] = (struct rt_idmap){1001, 1001, 64536};
}

static uid_t owner(const char *dir, const char *name)
{
	_cleanup_free_ char *p = path_join(dir, name);
	struct stat st;
	return lstat(p, &st) == 0 ? st.st_uid : (uid_t)-1;
}

static void test_idmap_find(void **state)
{
	(void)state;
	struct rt_ids ids;
	keepid_1000(&ids);
	uint32_t out = 7;
	assert_true(rt_idmap_find(ids.uid, ids.n_uid, 0, false, &out));
	assert_int_equal(out, 1);
	assert_true(rt_idmap_find(ids.uid, ids.n_uid, 1000, false, &out));
	assert_int_equal(out, 0);
	assert_true(rt_idmap_find(ids.uid, ids.n_uid, 999, false, &out));
	assert_int_equal(out, 1000);
	assert_true(rt_idmap_find(ids.uid, ids.n_uid, 0, true, &out));
	assert_int_equal(out, 1000);
	assert_false(rt_idmap_find(ids.uid, ids.n_uid, 65537, false, &out));
	rt_ids_base(&ids, 200000);
	assert_true(rt_idmap_find(ids.gid, ids.n_gid, 5, false, &out));
	assert_int_equal(out, 200005);
	assert_false(rt_idmap_find(ids.gid, ids.n_gid, 5, true, &out));
}

/* A volume's owners go to keep-id's map and back; a host user's file
 * outside the range stays. */
static void test_volume_shift_maps(void **state)
{
	(void)state;
	char root[] = "/tmp/orch-unit-vol.XXXXXX";
	assert_non_null(mkdtemp(root));
	setenv("ORCH_ROOT", root, 1);
	struct orch_err e = {0};
	assert_int_equal(rt_volume_create("v", NULL, NULL, &e), 0);
	char data[256], p[512];
	snprintf(data, sizeof(data), "%s/volumes/v/_data", root);
	const struct { const char *name; uid_t uid; } f[] = {
	    {"root", 0}, {"five", 5}, {"user", 1000}, {"far", 70000}};
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", data, f[i].name);
		int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(chown(p, f[i].uid, f[i].uid), 0);
	}
	struct rt_ids ids;
	keepid_1000(&ids);
	assert_int_equal(rt_volume_shift("v", &ids, &e), 0);
	assert_int_equal(owner(data, "root"), 1);
	assert_int_equal(owner(data, "five"), 6);
	assert_int_equal(owner(data, "user"), 0);
	assert_int_equal(owner(data, "far"), 70000);
	rt_ids_base(&ids, 0);
	assert_int_equal(rt_volume_shift("v", &ids, &e), 0);
	assert_int_equal(owner(data, "root"), 0);
	assert_int_equal(owner(data, "five"), 5);
	assert_int_equal(owner(data, "user"), 1000);
	assert_int_equal(owner(data, "far"), 70000);
	assert_int_equal(rm_rf(root, &e), 0);
	unsetenv("ORCH_ROOT");
}

/* A layer's copy for keep-id: owners through the map, whiteouts and
 * overlayfs's marks kept, made once and found again. */
static void test_layers_shifted(void **state)
{
	(void)state;
	char root[] = "/tmp/orch-unit-vol.XXXXXX";
	assert_non_null(mkdtemp(root));
	setenv("ORCH_ROOT", root, 1);
	char diff[256], p[4096];
	snprintf(diff, sizeof(diff), "%s/layers/abc/diff", root);
	struct orch_err e = {0};
	assert_int_equal(mkdir_p(diff, 0755, &e), 0);
	snprintf(p, sizeof(p), "%s/etc", diff);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(setxattr(p, "user.overlay.opaque", "y", 1, 0), 0);
	snprintf(p, sizeof(p), "%s/etc/passwd", diff);
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 04755);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	assert_int_equal(chmod(p, 04755), 0);
	snprintf(p, sizeof(p), "%s/gone", diff);
	assert_int_equal(mknod(p, S_IFCHR | 0600, makedev(0, 0)), 0);
	snprintf(p, sizeof(p), "%s/home", diff);
	assert_int_equal(symlink("/etc", p), 0);
	assert_int_equal(lchown(p, 1000, 1000), 0);

	struct rt_ids ids;
	keepid_1000(&ids);
	char *lowers[] = {diff, NULL};
	char **out = NULL;
	assert_int_equal(rt_layers_shifted(lowers, &ids, &out, &e), 0);
	assert_non_null(out[0]);
	assert_null(out[1]);
	assert_int_equal(owner(out[0], "."), 1);
	assert_int_equal(owner(out[0], "etc/passwd"), 1);
	assert_int_equal(owner(out[0], "home"), 0);
	struct stat st;
	snprintf(p, sizeof(p), "%s/etc/passwd", out[0]);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 04755);
	snprintf(p, sizeof(p), "%s/gone", out[0]);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISCHR(st.st_mode) && st.st_rdev == 0);
	char v[8] = "";
	snprintf(p, sizeof(p), "%s/etc", out[0]);
	assert_int_equal(getxattr(p, "user.overlay.opaque", v, sizeof(v)), 1);
	assert_int_equal(v[0], 'y');
	char **again = NULL;
	assert_int_equal(rt_layers_shifted(lowers, &ids, &again, &e), 0);
	assert_string_equal(again[0], out[0]);
	strv_free(again);
	strv_free(out);
	assert_int_equal(rm_rf(root, &e), 0);
	unsetenv("ORCH_ROOT");
}

static void test_list_sweeps_unfinished(void **state)
{
	(void)state;
	char root[] = "/tmp/orch-unit-vol.XXXXXX";
	assert_non_null(mkdtemp(root));
	setenv("ORCH_ROOT", root, 1);
	char p[4096], vols[1024];
	snprintf(vols, sizeof(vols), "%s/volumes", root);
	assert_int_equal(mkdir(vols, 0700), 0);
	snprintf(p, sizeof(p), "%s/.new-data-abc123", vols);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/.new-data-abc123/_data", vols);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/.lock", vols);
	int lock = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(lock >= 0);

	struct rt_volume **v = NULL;
	size_t n = 1;
	struct orch_err e = {0};
	assert_int_equal(flock(lock, LOCK_EX), 0);
	assert_int_equal(rt_volume_list(&v, &n, &e), 0);
	assert_int_equal(n, 0);
	free(v);
	assert_true(exists(root, ".new-data-abc123"));

	assert_int_equal(flock(lock, LOCK_UN), 0);
	assert_int_equal(rt_volume_list(&v, &n, &e), 0);
	free(v);
	assert_false(exists(root, ".new-data-abc123"));
	close(lock);
	unlink(p);
	rmdir(vols);
	rmdir(root);
	unsetenv("ORCH_ROOT");
}

/* A scratch directory whose owner died (it holds no lock on it) goes at
 * the next listing, however young; a live owner's stays. */
static void test_list_sweeps_dead_scratch(void **state)
{
	(void)state;
	char root[] = "/tmp/orch-unit-vol.XXXXXX";
	assert_non_null(mkdtemp(root));
	setenv("ORCH_ROOT", root, 1);
	char *live = NULL;
	int live_lock = -1;
	struct orch_err e = {0};
	assert_int_equal(store_tmpdir("populate", &live, &live_lock, &e), 0);
	char dead[1024];
	snprintf(dead, sizeof(dead), "%s/tmp/populate-dead", root);
	assert_int_equal(mkdir(dead, 0700), 0);

	struct rt_volume **v = NULL;
	size_t n = 1;
	assert_int_equal(rt_volume_list(&v, &n, &e), 0);
	free(v);
	assert_int_equal(access(dead, F_OK), -1);
	assert_int_equal(access(live, F_OK), 0);

	close(live_lock);
	assert_int_equal(rt_volume_list(&v, &n, &e), 0);
	free(v);
	assert_int_equal(access(live, F_OK), -1);
	free(live);
	char p[1100];
	snprintf(p, sizeof(p), "%s/tmp", root);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/volumes", root);
	rmdir(p);
	rmdir(root);
	unsetenv("ORCH_ROOT");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_mountinfo_unescape),
	    cmocka_unit_test(test_idmap_find),
	    cmocka_unit_test(test_volume_shift_maps),
	    cmocka_unit_test(test_layers_shifted),
	    cmocka_unit_test(test_list_sweeps_unfinished),
	    cmocka_unit_test(test_list_sweeps_dead_scratch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
