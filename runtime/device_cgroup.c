/* Device policy, kernel side: host device nodes looked up, the policy
 * written to a cgroup v1 devices directory, or loaded as a BPF device
 * program and attached to a cgroup v2 directory (raw bpf(), no libbpf).
 * The policy itself is built in devices.c. */
#include "runtime/container_impl.h"

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

int dev_nodes_resolve(char *const *devices, struct dev_node **nodes, size_t *n,
		      struct orch_err *e)
{
	size_t count = strv_len(devices);
	struct dev_node *v = xcalloc(count + 1, sizeof(*v));
	for (size_t i = 0; i < count; i++) {
		struct dev_node *d = &v[i];
		int r = rt_device_parse(devices[i], &d->dev, e);
		struct stat st;
		if (r == 0 && stat(d->dev.host_path, &st) < 0)
			r = err_sys(e, errno, "device %s", d->dev.host_path);
		else if (r == 0 && !S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
			r = err_set(
			    e, EINVAL,
			    "device %s: not a character or block device",
			    d->dev.host_path);
		if (r < 0) {
			dev_nodes_free(v, i + 1);
			return r;
		}
		d->type = S_ISCHR(st.st_mode) ? 'c' : 'b';
		d->major = major(st.st_rdev);
		d->minor = minor(st.st_rdev);
		d->mode = st.st_mode & 07777;
		d->uid = st.st_uid;
		d->gid = st.st_gid;
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
	for (size_t i = 0; r == 0 && i < p->n_rules; i++) {
		char line[64];
		dev_rule_format(&p->rules[i], line, sizeof(line));
		r = cg_write_file(dfd, "devices.allow", line, e);
	}
	return r;
}

int rt_devices_check(char *const *devices, struct orch_err *e)
{
	struct dev_node *nodes;
	size_t n;
	int r = dev_nodes_resolve(devices, &nodes, &n, e);
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
