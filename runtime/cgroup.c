/* cgroups: v2 (unified) and v1 (one hierarchy per controller, as on v1/v2
 * hybrid hosts), detected at run time.  Every container lives in
 * <hierarchy>/<parent>/<id>; the parent is removed when it empties, if
 * orch made it (parent_make).  A limit
 * that cannot be written is an error, never dropped. */
#include "runtime/container_impl.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>

/* The root is orch_cgroup_root(): ORCH_CGROUP_ROOT moves it, for tests,
 * and a cgroup2 mount there (the unified one of a hybrid host) makes orch
 * use cgroup v2. */

static const char *const v1_names[CG_NCTL] = {
	[CG_MEMORY] = "memory", [CG_CPU] = "cpu", [CG_CPUACCT] = "cpuacct",
	[CG_PIDS] = "pids",	[CG_FREEZER] = "freezer",
	[CG_DEVICES] = "devices", [CG_CPUSET] = "cpuset",
	[CG_BLKIO] = "blkio",
};

int cg_write_fd(int fd, const char *file, const char *val,
		struct orch_err *e)
{
	size_t n = strlen(val);
	ssize_t w = RETRY_EINTR(write(fd, val, n));
	if (w < 0)
		return err_sys(e, errno, "writing \"%s\" to %s", val, file);
	if ((size_t)w != n)
		return err_set(e, EIO, "writing \"%s\" to %s: short write", val,
			       file);
	return 0;
}

static int write_at(int dfd, const char *file, const char *val,
		    struct orch_err *e)
{
	_cleanup_close_ int fd = openat(dfd, file, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "opening %s", file);
	return cg_write_fd(fd, file, val, e);
}

int cg_write_file(int dfd, const char *file, const char *val,
		  struct orch_err *e)
{
	return write_at(dfd, file, val, e);
}

static int read_at(int dfd, const char *file, char *buf, size_t size)
{
	int fd = openat(dfd, file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = RETRY_EINTR(read(fd, buf, size - 1));
	int saved = errno;
	close(fd);
	if (n < 0)
		return -saved;
	buf[n] = '\0';
	return (int)n;
}

static int write_i64(int dfd, const char *file, int64_t v, struct orch_err *e)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return write_at(dfd, file, buf, e);
}

uint64_t cg_shares_to_weight(uint64_t shares)
{
	if (shares == 0)
		return 0;
	if (shares < 2)
		shares = 2;
	if (shares > 262144)
		shares = 262144;
	return 1 + ((shares - 2) * 9999) / 262142;
}

/* cpu quota for a fractional CPU count over a 100 ms period. */
static int64_t cpus_quota(double cpus)
{
	int64_t q = (int64_t)(cpus * 100000.0 + 0.5);
	return q < 1000 ? 1000 : q;
}

/* cpuset.cpus, or why the kernel refused it. */
static int write_cpuset(int dfd, const char *cpus, struct orch_err *e)
{
	int r = write_at(dfd, "cpuset.cpus", cpus, e);
	if (r == -EINVAL || r == -ERANGE) {
		char have[256] = "";
		int n = read_at(dfd, "cpuset.cpus.effective", have, sizeof(have));
		if (n < 0)
			n = read_at(dfd, "../cpuset.cpus", have, sizeof(have));
		if (n > 0 && have[n - 1] == '\n')
			have[n - 1] = '\0';
		err_clear(e);
		r = err_set(e, EINVAL,
			    "cpuset \"%s\": not a list of this machine's CPUs "
			    "(%s)",
			    cpus, have);
	}
	return r;
}

/* blkio_config: v1's blkio files (weights only where the I/O scheduler
 * has them: CFQ's, else BFQ's, else none), v2's io.weight and io.max. */
static int write_blkio(int dfd, bool v2, const struct rt_limits *l,
		       struct orch_err *e)
{
	static const char *const weight_v1[] = {"blkio.weight",
						"blkio.bfq.weight"};
	static const char *const weight_v2[] = {"io.bfq.weight", "io.weight"};
	const char *const *names = v2 ? weight_v2 : weight_v1;
	const char *weight = NULL;
	for (int i = 0; i < 2 && !weight; i++)
		if (faccessat(dfd, names[i], F_OK, 0) == 0)
			weight = names[i];
	int r = 0;
	if (l->blkio_weight && weight)
		r = write_i64(dfd, weight, l->blkio_weight, e);
	static const char *const v1_files[] = {
	    [RT_BLKIO_READ_BPS] = "blkio.throttle.read_bps_device",
	    [RT_BLKIO_WRITE_BPS] = "blkio.throttle.write_bps_device",
	    [RT_BLKIO_READ_IOPS] = "blkio.throttle.read_iops_device",
	    [RT_BLKIO_WRITE_IOPS] = "blkio.throttle.write_iops_device",
	};
	static const char *const v2_keys[] = {
	    [RT_BLKIO_READ_BPS] = "rbps", [RT_BLKIO_WRITE_BPS] = "wbps",
	    [RT_BLKIO_READ_IOPS] = "riops", [RT_BLKIO_WRITE_IOPS] = "wiops",
	};
	for (size_t i = 0; i < l->n_blkio && r == 0; i++) {
		const struct rt_blkio_dev *d = &l->blkio[i];
		char line[96];
		const char *file;
		if (d->kind == RT_BLKIO_WEIGHT) {
			if (!weight)
				continue;
			/* "blkio.weight_device", "io.weight" itself. */
			file = v2 ? weight
			       : streq(weight, "blkio.weight")
				   ? "blkio.weight_device"
				   : "blkio.bfq.weight_device";
			snprintf(line, sizeof(line), "%u:%u %" PRIu64, d->major,
				 d->minor, d->value);
		} else if (v2) {
			file = "io.max";
			snprintf(line, sizeof(line), "%u:%u %s=%" PRIu64,
				 d->major, d->minor, v2_keys[d->kind], d->value);
		} else {
			file = v1_files[d->kind];
			snprintf(line, sizeof(line), "%u:%u %" PRIu64, d->major,
				 d->minor, d->value);
		}
		r = write_at(dfd, file, line, e);
		if (r < 0)
			r = err_wrap(e, "device %u:%u", d->major, d->minor);
	}
	return r;
}

/* A reservation above the limit could never be kept, as docker says. */
static int reservation_check(const struct rt_limits *l, struct orch_err *e)
{
	if (l->memory > 0 && l->memory_reservation > l->memory)
		return err_set(e, EINVAL,
			       "memory reservation %" PRId64
			       " is above the memory limit %" PRId64,
			       l->memory_reservation, l->memory);
	return 0;
}

int cg_v1_write_limits(int dfd, enum cg_ctl ctl, const struct rt_limits *l,
		       struct orch_err *e)
{
	int r = 0;
	switch (ctl) {
	case CG_MEMORY:
		if ((r = reservation_check(l, e)) < 0)
			return r;
		if (l->memory_reservation > 0 &&
		    (r = write_i64(dfd, "memory.soft_limit_in_bytes",
				   l->memory_reservation, e)) < 0)
			return r;
		if (l->memory > 0) {
			r = write_i64(dfd, "memory.limit_in_bytes", l->memory, e);
			if (r < 0)
				return r;
			/* Docker's default: as much swap as memory. */
			int64_t sw = l->memory_swap > 0	   ? l->memory_swap
				     : l->memory_swap == -1 ? -1
							    : 2 * l->memory;
			if (faccessat(dfd, "memory.memsw.limit_in_bytes", F_OK,
				      0) == 0)
				r = write_i64(dfd, "memory.memsw.limit_in_bytes",
					      sw, e);
			else if (l->memory_swap > 0)
				r = err_set(e, ENOTSUP,
					    "memory+swap limit: swap accounting is off in this kernel");
		} else if (l->memory_swap > 0) {
			r = err_set(e, EINVAL,
				    "a memory+swap limit needs a memory limit");
		}
		break;
	case CG_CPU:
		if (l->cpus > 0) {
			r = write_i64(dfd, "cpu.cfs_period_us", 100000, e);
			if (r == 0)
				r = write_i64(dfd, "cpu.cfs_quota_us",
					      cpus_quota(l->cpus), e);
		}
		if (r == 0 && l->cpu_shares)
			r = write_i64(dfd, "cpu.shares", (int64_t)l->cpu_shares,
				      e);
		break;
	case CG_PIDS:
		if (l->pids > 0)
			r = write_i64(dfd, "pids.max", l->pids, e);
		break;
	case CG_CPUSET:
		if (l->cpuset_cpus)
			r = write_cpuset(dfd, l->cpuset_cpus, e);
		break;
	case CG_BLKIO:
		r = write_blkio(dfd, false, l, e);
		break;
	default:
		break;
	}
	if (r == 0 && ctl == CG_MEMORY && l->swappiness)
		r = write_i64(dfd, "memory.swappiness", l->swappiness - 1, e);
	if (r == 0 && ctl == CG_MEMORY && l->oom_kill_disable)
		r = write_at(dfd, "memory.oom_control", "1", e);
	return r;
}

int cg_v2_write_limits(int dfd, const struct rt_limits *l, struct orch_err *e)
{
	int r = reservation_check(l, e);
	char buf[64];
	if (r < 0)
		return r;
	if (l->memory_reservation > 0 &&
	    (r = write_i64(dfd, "memory.low", l->memory_reservation, e)) < 0)
		return r;
	if (l->memory > 0) {
		r = write_i64(dfd, "memory.max", l->memory, e);
		if (r < 0)
			return r;
		if (l->memory_swap == -1)
			r = write_at(dfd, "memory.swap.max", "max", e);
		else if (l->memory_swap > 0) {
			if (l->memory_swap < l->memory)
				return err_set(e, EINVAL,
					       "memory+swap limit %" PRId64
					       " is below the memory limit %" PRId64,
					       l->memory_swap, l->memory);
			r = write_i64(dfd, "memory.swap.max",
				      l->memory_swap - l->memory, e);
		} else if (faccessat(dfd, "memory.swap.max", F_OK, 0) == 0) {
			r = write_i64(dfd, "memory.swap.max", l->memory, e);
		}
		if (r < 0)
			return r;
	} else if (l->memory_swap > 0) {
		return err_set(e, EINVAL,
			       "a memory+swap limit needs a memory limit");
	}
	if (l->cpus > 0) {
		snprintf(buf, sizeof(buf), "%" PRId64 " 100000",
			 cpus_quota(l->cpus));
		r = write_at(dfd, "cpu.max", buf, e);
		if (r < 0)
			return r;
	}
	if (l->cpu_shares) {
		r = write_i64(dfd, "cpu.weight",
			      (int64_t)cg_shares_to_weight(l->cpu_shares), e);
		if (r < 0)
			return r;
	}
	if (l->pids > 0 && (r = write_i64(dfd, "pids.max", l->pids, e)) < 0)
		return r;
	if (l->cpuset_cpus && (r = write_cpuset(dfd, l->cpuset_cpus, e)) < 0)
		return r;
	if (l->blkio_weight || l->n_blkio)
		r = write_blkio(dfd, true, l, e);
	return r;
}

int cg_v2_enable_controllers(int dfd, const struct rt_limits *l,
			     struct orch_err *e)
{
	char avail[512], on[512];
	int r = read_at(dfd, "cgroup.controllers", avail, sizeof(avail));
	if (r < 0)
		return err_sys(e, -r, "reading cgroup.controllers");
	r = read_at(dfd, "cgroup.subtree_control", on, sizeof(on));
	if (r < 0)
		return err_sys(e, -r, "reading cgroup.subtree_control");
	static const char *const want[] = {"memory", "cpu", "pids", "cpuset",
					   "io"};
	struct strbuf sb;
	sb_init(&sb);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		bool needed = (i == 0 && (l->memory || l->memory_swap ||
					  l->memory_reservation)) ||
			      (i == 1 && (l->cpus > 0 || l->cpu_shares)) ||
			      (i == 2 && l->pids) ||
			      (i == 3 && l->cpuset_cpus) ||
			      (i == 4 && (l->blkio_weight || l->n_blkio));
		/* cpuset and io cost each cgroup their files: only asked. */
		if (i >= 3 && !needed)
			continue;
		char word[16];
		snprintf(word, sizeof(word), " %s ", want[i]);
		char a[520], o[520];
		snprintf(a, sizeof(a), " %s ", avail);
		snprintf(o, sizeof(o), " %s ", on);
		for (char *p = a; *p; p++)
			if (*p == '\n')
				*p = ' ';
		for (char *p = o; *p; p++)
			if (*p == '\n')
				*p = ' ';
		if (strstr(o, word))
			continue;
		if (!strstr(a, word)) {
			if (needed) {
				sb_free(&sb);
				return err_set(e, ENOTSUP,
					       "the %s controller is not available in cgroup v2",
					       want[i]);
			}
			continue;
		}
		sb_printf(&sb, "%s+%s", sb.len ? " " : "", want[i]);
	}
	r = 0;
	if (sb.len)
		r = write_at(dfd, "cgroup.subtree_control", sb.buf, e);
	sb_free(&sb);
	return r;
}

/* ---- the real hierarchies -------------------------------------------------- */

static int cg_mode(void);

unsigned rt_cgroup_lacks(void)
{
	const char *root = orch_cgroup_root();
	if (cg_mode()) {
		/* io.weight shows below the root only. */
		_cleanup_free_ char *w = path_join(root, "orch/io.weight");
		_cleanup_free_ char *b = path_join(root, "orch/io.bfq.weight");
		_cleanup_free_ char *o = path_join(root, "orch");
		bool weight = access(w, F_OK) == 0 || access(b, F_OK) == 0 ||
			      access(o, F_OK) < 0;
		return RT_LACKS_SWAPPINESS | RT_LACKS_OOM_CONTROL |
		       (weight ? 0 : RT_LACKS_BLKIO_WEIGHT);
	}
	static const struct {
		const char *file;
		unsigned bit;
	} files[] = {
	    {"memory/memory.swappiness", RT_LACKS_SWAPPINESS},
	    {"memory/memory.oom_control", RT_LACKS_OOM_CONTROL},
	    {"blkio/blkio.weight", RT_LACKS_BLKIO_WEIGHT},
	    {"blkio/blkio.bfq.weight", RT_LACKS_BLKIO_WEIGHT},
	};
	unsigned lacks = RT_LACKS_BLKIO_WEIGHT;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *p = path_join(root, files[i].file);
		bool have = access(p, F_OK) == 0;
		if (files[i].bit == RT_LACKS_BLKIO_WEIGHT)
			lacks &= have ? ~files[i].bit : ~0u;
		else
			lacks |= have ? 0 : files[i].bit;
	}
	return lacks;
}

static int cg_mode(void)
{
	static int mode = -1; /* 0 v1, 1 v2 */
	if (mode < 0) {
		struct statfs sf;
		mode = statfs(orch_cgroup_root(), &sf) == 0 &&
		       (unsigned long)sf.f_type == CGROUP2_SUPER_MAGIC;
	}
	return mode;
}

/* A v1 hierarchy's mount options without the flags: its controllers (and
 * a name=), "cpu,cpuacct" from "rw,cpu,cpuacct". */
static char *v1_controllers(const char *superopts)
{
	static const char *const flags[] = {
	    "rw", "ro", "xattr", "noprefix", "clone_children",
	    "cpuset_v2_mode", "favordynmods"};
	struct strbuf sb;
	sb_init(&sb);
	_cleanup_free_ char *copy = xstrdup(superopts);
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		bool flag = startswith(t, "release_agent=");
		for (size_t i = 0; i < ARRAY_SIZE(flags) && !flag; i++)
			flag = streq(t, flags[i]);
		if (!flag)
			sb_printf(&sb, "%s%s", sb.len ? "," : "", t);
	}
	return sb_steal(&sb);
}

static char **cg_view_find(void)
{
	/* What limits and accounting are read from; the freezer's and the
	 * device rules' files tell a program nothing of its own. */
	static const enum cg_ctl shown[] = {CG_MEMORY, CG_CPU,	 CG_CPUACCT,
					    CG_PIDS,   CG_CPUSET, CG_BLKIO};
	char **out = xcalloc(1, sizeof(char *));
	_cleanup_free_ char *info = NULL;
	if (read_file("/proc/self/mountinfo", &info, NULL, NULL) < 0)
		return out;
	const char *root = orch_cgroup_root();
	size_t rl = strlen(root);
	char *save = NULL;
	for (char *line = strtok_r(info, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		/* ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - TYPE
		 * SOURCE SUPEROPTS: the hierarchies mounted in root. */
		char point[4096], type[32], superopts[1024];
		const char *dash = strstr(line, " - ");
		if (!dash ||
		    sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 ||
		    sscanf(dash + 3, "%31s %*s %1023s", type, superopts) != 2 ||
		    !streq(type, "cgroup") || strncmp(point, root, rl) ||
		    point[rl] != '/' || strchr(point + rl + 1, '/'))
			continue;
		_cleanup_free_ char *opts = v1_controllers(superopts);
		_cleanup_free_ char *list = xasprintf(",%s,", opts);
		bool want = false;
		for (size_t i = 0; i < ARRAY_SIZE(shown) && !want; i++) {
			_cleanup_free_ char *tok =
			    xasprintf(",%s,", v1_names[shown[i]]);
			want = strstr(list, tok) != NULL;
		}
		if (want && !strv_contains(out, opts))
			strv_push(&out, opts);
	}
	return out;
}

const char *const *cg_view(bool *v2)
{
	static char **view;
	*v2 = cg_mode();
	if (*v2)
		return NULL;
	if (!view)
		view = cg_view_find();
	return (const char *const *)view;
}

/* Writes pid to file (cgroup.procs, or tasks) in dir. */
static int write_pid(const char *dir, const char *file, pid_t pid,
		     struct orch_err *e)
{
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return err_sys(e, errno, "opening %s", dir);
	char buf[16];
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	int r = write_at(dfd, file, buf, e);
	close(dfd);
	if (r < 0)
		return err_wrap(e, "%s", dir);
	return 0;
}

/* A parent cgroup goes once its last container has: orch's own place
 * ("orch"), and one orch made for a cgroup_parent, marked so under
 * $ORCH_RUN.  One it found there stays: an administrator's, whose limits
 * hold every project put in it, would otherwise be removed with the
 * project's last container and made again by the next without them. */
static char *parent_mark(const char *pdir)
{
	char h[65];
	sha256_hex(pdir, strlen(pdir), h);
	return xasprintf("%s/runtime/.cgroup-parents/%.32s", orch_run(), h);
}

static bool own_parent(const char *parent)
{
	const char *base = strrchr(parent, '/');
	return streq(base ? base + 1 : parent, "orch");
}

/* mkdir of the parent cgroup pdir (named parent): 0 when made or there,
 * else -1 and errno. */
static int parent_make(const char *pdir, const char *parent)
{
	if (mkdir(pdir, 0755) < 0)
		return errno == EEXIST ? 0 : -1;
	if (own_parent(parent))
		return 0;
	/* Unmarked, it stays when empty: nothing worse. */
	_cleanup_free_ char *mark = parent_mark(pdir);
	_cleanup_free_ char *dir = xasprintf("%s/runtime/.cgroup-parents", orch_run());
	struct orch_err ign = {0};
	int fd = mkdir_p(dir, 0700, &ign) < 0
		     ? -1
		     : open(mark, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		close(fd);
	return 0;
}

/* mkdir <base>/<parent>/<id>, creating the parent when needed (it may be
 * removed concurrently by another container's teardown: retry). */
static int make_dir(const char *base, const char *parent, const char *id,
		    char **out, struct orch_err *e)
{
	_cleanup_free_ char *pdir = path_join(base, parent);
	char *dir = path_join(pdir, id);
	for (int tries = 0; tries < 5; tries++) {
		if (mkdir(dir, 0755) == 0) {
			*out = dir;
			return 0;
		}
		if (errno == EEXIST) {
			int r = err_set(e, EEXIST, "creating cgroup %s: it exists already", dir);
			free(dir);
			return r;
		}
		if (errno != ENOENT)
			break;
		if (parent_make(pdir, parent) < 0)
			break;
	}
	int r = err_sys(e, errno, "creating cgroup %s", dir);
	free(dir);
	return r;
}

/* systemd's units (a container's delegated scope, a slice named as
 * cgroup_parent) are systemd's to remove: it collects an empty scope
 * itself, and one removed under it can stay listed as running. */
static bool systemd_unit_dir(const char *name)
{
	static const char *const kinds[] = {".scope", ".slice", ".service"};
	size_t n = strlen(name);
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		size_t k = strlen(kinds[i]);
		if (n > k && streq(name + n - k, kinds[i]))
			return true;
	}
	return false;
}

static void rmdir_parent(const char *dir)
{
	_cleanup_free_ char *p = xstrdup(dir);
	char *slash = strrchr(p, '/');
	if (!slash)
		return;
	*slash = '\0';
	char *base = strrchr(p, '/');
	if (systemd_unit_dir(base ? base + 1 : p)) {
		cg_systemd_release(p);
		return;
	}
	/* Busy or gone: another container still uses it, or it is done. */
	if (own_parent(p)) {
		rmdir(p);
		return;
	}
	_cleanup_free_ char *mark = parent_mark(p);
	if (access(mark, F_OK) == 0 && rmdir(p) == 0)
		unlink(mark);
}

static int v2_create(const char *parent, const char *id,
		     const struct rt_limits *l, const struct dev_policy *dev,
		     pid_t pid, struct cg *out, struct orch_err *e)
{
	int r;
	int root = open(orch_cgroup_root(), O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return err_sys(e, errno, "opening %s", orch_cgroup_root());
	r = cg_v2_enable_controllers(root, l, e);
	close(root);
	if (r < 0)
		return err_wrap(e, "%s", orch_cgroup_root());
	_cleanup_free_ char *pdir = path_join(orch_cgroup_root(), parent);
	if (parent_make(pdir, parent) < 0)
		return err_sys(e, errno, "creating cgroup %s", pdir);
	int pfd = open(pdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return err_sys(e, errno, "opening %s", pdir);
	r = cg_v2_enable_controllers(pfd, l, e);
	close(pfd);
	if (r < 0)
		return err_wrap(e, "%s", pdir);
	r = make_dir(orch_cgroup_root(), parent, id, &out->dir[0], e);
	if (r < 0)
		return r;
	out->v2 = true;
	int dfd = open(out->dir[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return err_sys(e, errno, "opening %s", out->dir[0]);
	r = cg_v2_write_limits(dfd, l, e);
	if (r == 0)
		r = dev_cgroup_v2_apply(dfd, dev, e);
	close(dfd);
	if (r < 0)
		return err_wrap(e, "cgroup %s", out->dir[0]);
	return write_pid(out->dir[0], "cgroup.procs", pid, e);
}

static bool v1_needed(enum cg_ctl c, const struct rt_limits *l,
		      const struct dev_policy *dev)
{
	switch (c) {
	case CG_MEMORY:
		return l->memory || l->memory_swap || l->memory_reservation ||
		       l->swappiness || l->oom_kill_disable;
	case CG_CPU: return l->cpus > 0 || l->cpu_shares;
	case CG_CPUSET: return l->cpuset_cpus != NULL;
	case CG_BLKIO: return l->blkio_weight || l->n_blkio;
	case CG_PIDS: return l->pids;
	case CG_DEVICES: return !dev->allow_all;
	default: return false;
	}
}

/* The directory made for controller c: its own, or that of the controller
 * it is co-mounted with (cpu,cpuacct). */
static const char *v1_dir(const struct cg *cg, enum cg_ctl c)
{
	if (cg->dir[c])
		return cg->dir[c];
	_cleanup_free_ char *want = path_join(orch_cgroup_root(), v1_names[c]);
	struct stat a;
	if (stat(want, &a) < 0)
		return NULL;
	for (int k = 0; k < CG_NCTL; k++) {
		_cleanup_free_ char *have = path_join(orch_cgroup_root(), v1_names[k]);
		struct stat b;
		if (cg->dir[k] && stat(have, &b) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev)
			return cg->dir[k];
	}
	return NULL;
}

static int v1_apply(const struct cg *cg, enum cg_ctl c,
		    const struct rt_limits *l, const struct dev_policy *dev,
		    struct orch_err *e)
{
	const char *dir = v1_dir(cg, c);
	if (!dir)
		return err_set(e, ENOENT, "no %s cgroup", v1_names[c]);
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return err_sys(e, errno, "opening %s", dir);
	int r = c == CG_DEVICES ? dev_cgroup_v1_apply(dfd, dev, e)
				: cg_v1_write_limits(dfd, c, l, e);
	close(dfd);
	if (r < 0)
		return err_wrap(e, "cgroup %s", dir);
	return 0;
}

/* A v1 cpuset cgroup starts with no CPUs and no memory nodes, and takes
 * no process so: each level under base gets its parent's. */
static int v1_cpuset_fill(const char *base, const char *dir,
			  struct orch_err *e)
{
	static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
	size_t bl = strlen(base);
	_cleanup_free_ char *p = xstrdup(dir);
	for (char *slash = p + bl; slash;) {
		slash = strchr(slash + 1, '/');
		if (slash)
			*slash = '\0';
		_cleanup_close_ int dfd =
		    open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return err_sys(e, errno, "opening %s", p);
		for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
			char have[256], up[256];
			if (read_at(dfd, files[i], have, sizeof(have)) > 1)
				continue;
			_cleanup_free_ char *f = xasprintf("../%s", files[i]);
			int n = read_at(dfd, f, up, sizeof(up));
			if (n < 0)
				return err_sys(e, -n, "reading %s/%s", p, f);
			int r = write_at(dfd, files[i], up, e);
			if (r < 0)
				return err_wrap(e, "%s", p);
		}
		if (slash)
			*slash = '/';
	}
	return 0;
}

static int v1_create(const char *parent, const char *id,
		     const struct rt_limits *l, const struct dev_policy *dev,
		     pid_t pid, struct cg *out, struct orch_err *e)
{
	struct stat seen[CG_NCTL];
	size_t n_seen = 0;
	for (int c = 0; c < CG_NCTL; c++) {
		if (c >= CG_CPUSET && !v1_needed(c, l, dev))
			continue;
		_cleanup_free_ char *base = path_join(orch_cgroup_root(), v1_names[c]);
		struct stat st;
		if (stat(base, &st) < 0) {
			if (v1_needed(c, l, dev))
				return err_set(e, ENOTSUP,
					       "cannot enforce the %s: no %s cgroup hierarchy at %s",
					       c == CG_DEVICES ? "device policy" : "limit",
					       v1_names[c], base);
			continue;
		}
		bool dup = false;
		for (size_t i = 0; i < n_seen; i++)
			dup |= seen[i].st_dev == st.st_dev &&
			       seen[i].st_ino == st.st_ino;
		if (dup) {
			/* Co-mounted (cpu,cpuacct): write into the dir made
			 * for the first controller of this hierarchy. */
			continue;
		}
		seen[n_seen++] = st;
		int r = make_dir(base, parent, id, &out->dir[c], e);
		if (r == 0 && c == CG_CPUSET)
			r = v1_cpuset_fill(base, out->dir[c], e);
		if (r < 0)
			return r;
	}
	for (int c = 0; c < CG_NCTL; c++) {
		if (!v1_needed(c, l, dev))
			continue;
		int r = v1_apply(out, c, l, dev, e);
		if (r < 0)
			return r;
	}
	for (int c = 0; c < CG_NCTL && pid; c++) {
		if (!out->dir[c])
			continue;
		int r = write_pid(out->dir[c], "cgroup.procs", pid, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The parent asked for, else a rootless orch's: the cgroup netd handed
 * it; NULL is orch's own place. */
static const char *cg_parent(const char *parent)
{
	const char *given = getenv("ORCH_CGROUP_PARENT");
	return !parent && given && *given ? given : parent;
}

bool cg_wants_idle_process(const char *parent)
{
	return rootless() ||
	       (!cg_parent(parent) && cg_mode() && rt_cgroup_systemd());
}

bool cg_joined_by_self(const char *parent)
{
	return !cg_wants_idle_process(parent) && !cg_mode();
}

int cg_join_fds(const struct cg *cg, int fds[CG_NCTL], size_t *n,
		struct orch_err *e)
{
	*n = 0;
	for (int c = 0; c < CG_NCTL; c++) {
		if (!cg->dir[c])
			continue;
		_cleanup_free_ char *p = path_join(cg->dir[c], "tasks");
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			int r = err_sys(e, errno, "opening %s", p);
			while (*n > 0)
				close(fds[--*n]);
			return r;
		}
		fds[(*n)++] = fd;
	}
	return 0;
}

int cg_join(int *fds, size_t n, struct orch_err *e)
{
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		if (r == 0 && RETRY_EINTR(write(fds[i], "0", 1)) < 0)
			r = err_sys(e, errno, "joining the container's cgroup");
		close(fds[i]);
	}
	return r;
}

int cg_create(const char *parent, const char *id, const struct rt_limits *l,
	      const struct dev_policy *dev, pid_t pid, struct cg *out,
	      struct orch_err *e)
{
	memset(out, 0, sizeof(*out));
	parent = cg_parent(parent);
	/* Only the host's root may set a device cgroup.  A user's containers
	 * need none: a user namespace may not mknod, and opens the host's
	 * nodes only as their modes let the user. */
	const struct dev_policy all = {.allow_all = true};
	if (rootless())
		dev = &all;
	int r;
	/* Under systemd (and only in the real hierarchy): a delegated scope. */
	if (!parent && cg_mode() && rt_cgroup_systemd())
		r = cg_systemd_create(id, l, dev, pid, out, e);
	else if (cg_mode())
		r = v2_create(parent ? parent : "orch", id, l, dev, pid, out, e);
	else
		r = v1_create(parent ? parent : "orch", id, l, dev, pid, out, e);
	if (r < 0) {
		struct orch_err ignored = {0};
		cg_destroy(out, &ignored);
	}
	return r;
}

void cg_clear(struct cg *cg)
{
	for (int c = 0; c < CG_NCTL; c++)
		free(cg->dir[c]);
	memset(cg, 0, sizeof(*cg));
}

/* Kills every process left in dir; true when it is empty. */
static bool kill_procs(const char *dir)
{
	_cleanup_free_ char *procs = path_join(dir, "cgroup.procs");
	_cleanup_fclose_ FILE *f = fopen(procs, "re");
	if (!f)
		return true;
	bool empty = true;
	int pid;
	while (fscanf(f, "%d", &pid) == 1) {
		kill(pid, SIGKILL);
		empty = false;
	}
	return empty;
}

int cg_destroy(struct cg *cg, struct orch_err *e)
{
	int ret = 0;
	for (int c = 0; c < CG_NCTL; c++) {
		const char *dir = cg->dir[c];
		if (!dir)
			continue;
		if (rmdir(dir) == 0 || errno == ENOENT) {
			rmdir_parent(dir);
			continue;
		}
		if (errno != EBUSY) {
			ret = err_sys(e, errno, "removing cgroup %s", dir);
			continue;
		}
		if (cg->v2) {
			int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (dfd >= 0) {
				write_at(dfd, "cgroup.kill", "1", NULL);
				close(dfd);
			}
		}
		/* Processes take a moment to leave after SIGKILL. */
		int r = -EBUSY;
		for (int i = 0; i < 500; i++) {
			if (c == CG_FREEZER)
				cg_freeze(cg, false, NULL);
			kill_procs(dir);
			if (rmdir(dir) == 0 || errno == ENOENT) {
				r = 0;
				break;
			}
			if (errno != EBUSY) {
				r = -errno;
				break;
			}
			nanosleep(&(struct timespec){0, 2000000}, NULL);
		}
		if (r < 0)
			ret = err_sys(e, -r, "removing cgroup %s", dir);
		else
			rmdir_parent(dir);
	}
	return ret;
}

int cg_enter_self(const struct cg *cg, struct orch_err *e)
{
	for (int c = 0; c < CG_NCTL; c++) {
		if (!cg->dir[c])
			continue;
		int r = write_pid(cg->dir[c], cg->v2 ? "cgroup.procs" : "tasks",
				  0, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static uint64_t read_u64(const char *dir, const char *file)
{
	if (!dir)
		return 0;
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	char buf[64];
	int n = read_at(dfd, file, buf, sizeof(buf));
	close(dfd);
	if (n <= 0 || strncmp(buf, "max", 3) == 0)
		return 0;
	return strtoull(buf, NULL, 10);
}

/* "usage_usec 123\n..." -> 123 */
static uint64_t read_key(const char *dir, const char *file, const char *key)
{
	_cleanup_free_ char *p = path_join(dir, file);
	_cleanup_fclose_ FILE *f = fopen(p, "re");
	char line[256];
	size_t kl = strlen(key);
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ' ')
			return strtoull(line + kl + 1, NULL, 10);
	return 0;
}

int cg_stats(const struct cg *cg, struct rt_stats *st, struct orch_err *e)
{
	memset(st, 0, sizeof(*st));
	if (cg->v2) {
		const char *d = cg->dir[0];
		if (!d || access(d, F_OK) < 0)
			return err_set(e, ESRCH, "no cgroup");
		st->memory_current = read_u64(d, "memory.current");
		st->memory_peak = read_u64(d, "memory.peak");
		st->memory_limit = read_u64(d, "memory.max");
		st->cpu_usage_ns = read_key(d, "cpu.stat", "usage_usec") * 1000;
		st->pids = read_u64(d, "pids.current");
		return 0;
	}
	const char *m = cg->dir[CG_MEMORY];
	if (m && access(m, F_OK) < 0)
		return err_set(e, ESRCH, "no cgroup %s", m);
	st->memory_current = read_u64(m, "memory.usage_in_bytes");
	st->memory_peak = read_u64(m, "memory.max_usage_in_bytes");
	st->memory_limit = read_u64(m, "memory.limit_in_bytes");
	if (st->memory_limit >= (UINT64_C(1) << 62))
		st->memory_limit = 0;
	const char *acct = cg->dir[CG_CPUACCT] ? cg->dir[CG_CPUACCT]
					       : cg->dir[CG_CPU];
	st->cpu_usage_ns = read_u64(acct, "cpuacct.usage");
	st->pids = read_u64(cg->dir[CG_PIDS], "pids.current");
	return 0;
}

int cg_freeze(const struct cg *cg, bool frozen, struct orch_err *e)
{
	const char *dir = cg->v2 ? cg->dir[0] : cg->dir[CG_FREEZER];
	if (!dir)
		return err_set(e, ENOTSUP, "no freezer cgroup");
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return err_sys(e, errno, "opening %s", dir);
	int r = cg->v2 ? write_at(dfd, "cgroup.freeze", frozen ? "1" : "0", e)
		       : write_at(dfd, "freezer.state",
				  frozen ? "FROZEN" : "THAWED", e);
	close(dfd);
	return r;
}
