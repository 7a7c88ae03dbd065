/* Device policy, kernel side: host device nodes looked up, the policy
 * written to a cgroup v1 devices directory, or loaded as a BPF device
 * program and attached to a cgroup v2 directory (raw bpf(), no libbpf).
 * The policy itself is built in devices.c. */
#include "runtime/container_impl.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

void dev_nodes_free(struct dev_node *nodes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rt_device_clear(&nodes[i].dev);
	free(nodes);
}

static void node_fill(struct dev_node *d, const struct stat *st)
{
	d->type = S_ISCHR(st->st_mode) ? 'c' : 'b';
	d->major = major(st->st_rdev);
	d->minor = minor(st->st_rdev);
	d->mode = st->st_mode & 07777;
	d->uid = st->st_uid;
	d->gid = st->st_gid;
}

static void nodes_push(struct dev_node **v, size_t *n, size_t *cap)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	memset(&(*v)[*n], 0, sizeof(**v));
}

/* What the container's /dev makes itself. */
static bool host_node_skipped(const char *path)
{
	static const char *const own[] = {
	    "/dev/null",    "/dev/zero", "/dev/full",	"/dev/random",
	    "/dev/urandom", "/dev/tty",	 "/dev/ptmx",	"/dev/console",
	    "/dev/pts",	    "/dev/shm",	 "/dev/mqueue", "/dev/fd",
	};
	for (size_t i = 0; i < ARRAY_SIZE(own); i++)
		if (streq(path, own[i]))
			return true;
	return false;
}

/* The device nodes under dir (recursively, a few levels), not following
 * symbolic links. */
static void host_nodes(const char *dir, int depth, struct dev_node **v,
		       size_t *n, size_t *cap)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		_cleanup_free_ char *path = path_join(dir, de->d_name);
		struct stat st;
		if (host_node_skipped(path) || lstat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode) && depth < 4) {
			host_nodes(path, depth + 1, v, n, cap);
			continue;
		}
		if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
			continue;
		nodes_push(v, n, cap);
		struct dev_node *node = &(*v)[(*n)++];
		node->dev.host_path = xstrdup(path);
		node->dev.path = xstrdup(path);
		snprintf(node->dev.access, sizeof(node->dev.access), "rwm");
		node_fill(node, &st);
	}
	closedir(d);
}

int dev_nodes_resolve(char *const *devices, bool host_all,
		      struct dev_node **nodes, size_t *n, struct orch_err *e)
{
	struct dev_node *v = NULL;
	size_t count = 0, cap = 0;
	if (host_all)
		host_nodes("/dev", 0, &v, &count, &cap);
	for (size_t i = 0; devices && devices[i]; i++) {
		nodes_push(&v, &count, &cap);
		struct dev_node *d = &v[count++];
		struct stat st = {0};
		int r = rt_device_parse(devices[i], &d->dev, e);
		if (r == 0 && stat(d->dev.host_path, &st) < 0)
			r = err_sys(e, errno, "device %s", d->dev.host_path);
		else if (r == 0 && !S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
			r = err_set(
			    e, EINVAL,
			    "device %s: not a character or block device",
			    d->dev.host_path);
		if (r != 0) {
			dev_nodes_free(v, count);
			return r < 0 ? r : -EINVAL;
		}
		node_fill(d, &st);
	}
	*nodes = v;
	*n = count;
	return 0;
}

int dev_cgroup_v1_apply(int dfd, const struct dev_policy *p, struct orch_err *e)
{
	if (p->allow_all)
		return 0; /* the parent's rules, as created: everything */
	int r = cg_write_file(dfd, "devices.deny", "a", e);
	if (r < 0 || !p->n_rules)
		return r;
	/* The kernel takes each write as one rule: one open file takes them
	 * all. */
	_cleanup_close_ int fd = openat(dfd, "devices.allow", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "opening devices.allow");
	for (size_t i = 0; i < p->n_rules; i++) {
		char line[64];
		dev_rule_format(&p->rules[i], line, sizeof(line));
		r = cg_write_fd(fd, "devices.allow", line, e);
		if (r < 0)
			return r;
	}
	return 0;
}

int rt_devices_check(char *const *devices, struct orch_err *e)
{
	struct dev_node *nodes;
	size_t n;
	int r = dev_nodes_resolve(devices, false, &nodes, &n, e);
	if (r == 0)
		dev_nodes_free(nodes, n);
	return r;
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

int dev_cgroup_v2_apply(int dfd, const struct dev_policy *p, struct orch_err *e)
{
	if (p->allow_all)
		return 0;
	size_t n;
	_cleanup_free_ struct bpf_insn *prog = dev_bpf_program(p, &n);
	char log[4096] = "";
	union bpf_attr load = {
	    .prog_type = BPF_PROG_TYPE_CGROUP_DEVICE,
	    .insns = (uint64_t)(uintptr_t)prog,
	    .insn_cnt = (uint32_t)n,
	    .license = (uint64_t)(uintptr_t) "GPL",
	    .log_buf = (uint64_t)(uintptr_t)log,
	    .log_size = sizeof(log),
	    .log_level = 1,
	};
	/* bpf() makes its fds O_CLOEXEC. */
	_cleanup_close_ int prog_fd = (int)sys_bpf(BPF_PROG_LOAD, &load);
	if (prog_fd < 0 && errno == ENOSPC) {
		/* The log did not fit: the error is what counts. */
		load.log_level = 0;
		load.log_buf = 0;
		load.log_size = 0;
		prog_fd = (int)sys_bpf(BPF_PROG_LOAD, &load);
	}
	if (prog_fd < 0)
		return err_sys(e, errno,
			       "loading the device BPF program%s%.200s",
			       log[0] ? ": " : "", log);
	_cleanup_close_ int cg_fd =
	    openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0)
		return err_sys(e, errno, "opening the cgroup");
	/* ALLOW_MULTI: an ancestor's device program (systemd's) keeps
	 * running too; an access is allowed only if every one allows it. */
	union bpf_attr attach = {
	    .target_fd = (uint32_t)cg_fd,
	    .attach_bpf_fd = (uint32_t)prog_fd,
	    .attach_type = BPF_CGROUP_DEVICE,
	    .attach_flags = BPF_F_ALLOW_MULTI,
	};
	if (sys_bpf(BPF_PROG_ATTACH, &attach) < 0)
		return err_sys(e, errno, "attaching the device BPF program");
	/* The attachment holds the program until the cgroup goes. */
	return 0;
}
