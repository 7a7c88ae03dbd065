/* Namespaces: clone flags, user-namespace id maps, pidfds checked against
 * pid reuse, and the rlimits a container starts with (a new network
 * namespace's loopback: common/netns.c). */
#include "runtime/container_impl.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>

int ns_clone_flags(unsigned ns)
{
	int f = 0;
	if (ns & RT_NS_PID)
		f |= CLONE_NEWPID;
	if (ns & RT_NS_MOUNT)
		f |= CLONE_NEWNS;
	if (ns & RT_NS_UTS)
		f |= CLONE_NEWUTS;
	if (ns & RT_NS_IPC)
		f |= CLONE_NEWIPC;
	if (ns & RT_NS_NET)
		f |= CLONE_NEWNET;
	if (ns & RT_NS_CGROUP)
		f |= CLONE_NEWCGROUP;
	if (ns & RT_NS_USER)
		f |= CLONE_NEWUSER;
	return f;
}

static int write_proc(pid_t pid, const char *file, const char *data,
		      struct orch_err *e)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "opening %s", path);
	ssize_t n = RETRY_EINTR(write(fd, data, strlen(data)));
	int saved = errno;
	close(fd);
	if (n < 0)
		return err_sys(e, saved, "writing %s", path);
	return 0;
}

int ns_set_oom_score_adj(pid_t pid, int v, struct orch_err *e)
{
	char txt[16];
	snprintf(txt, sizeof(txt), "%d", v);
	int r = write_proc(pid, "oom_score_adj", txt, e);
	if (r == -EACCES)
		return err_set(e, EACCES,
			       "oom_score_adj %d: lowering it takes "
			       "CAP_SYS_RESOURCE, which this process does not "
			       "hold",
			       v);
	return r;
}

char *ns_map_text(const struct rt_idmap *m, size_t n)
{
	struct strbuf sb;
	sb_init(&sb);
	for (size_t i = 0; i < n; i++)
		sb_printf(&sb, "%u %u %u\n", m[i].inside, m[i].outside,
			  m[i].count);
	return sb_steal(&sb);
}

int ns_write_idmaps(pid_t pid, const struct rt_idmap *u, size_t nu,
		    const struct rt_idmap *g, size_t ng, struct orch_err *e)
{
	if (!nu || !ng)
		return err_set(e, EINVAL,
			       "a user namespace needs uid and gid maps");
	_cleanup_free_ char *ut = ns_map_text(u, nu);
	_cleanup_free_ char *gt = ns_map_text(g, ng);
	/* Written by a privileged parent: setgroups stays allowed, so the
	 * container keeps its supplementary groups. */
	int r = write_proc(pid, "uid_map", ut, e);
	if (r == 0)
		r = write_proc(pid, "gid_map", gt, e);
	return r;
}

int ns_set_rlimits(pid_t pid, const struct rt_rlimit *rl, size_t n,
		   struct orch_err *e)
{
	for (size_t i = 0; i < n; i++) {
		struct rlimit v = {rl[i].soft, rl[i].hard};
		if (prlimit(pid, rl[i].resource, &v, NULL) < 0)
			return err_sys(e, errno, "setting rlimit %d to %llu/%llu",
				       rl[i].resource,
				       (unsigned long long)v.rlim_cur,
				       (unsigned long long)v.rlim_max);
	}
	return 0;
}

uint64_t ns_pid_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = RETRY_EINTR(read(fd, buf, sizeof(buf) - 1));
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may hold spaces and parens: fields restart after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	/* field 3 (state) is the first after ')'; starttime is field 22. */
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

int ns_pidfd_open_checked(pid_t pid, uint64_t start_time)
{
	if (pid <= 0)
		return -ESRCH;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -errno;
	/* Opened first, checked second: the pidfd pins the process, so a
	 * matching start time means this fd is the container's init. */
	uint64_t st = ns_pid_start_time(pid);
	if (start_time && st != start_time) {
		close(fd);
		return -ESRCH;
	}
	/* A zombie counts as gone for signalling purposes. */
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int sfd = open(path, O_RDONLY | O_CLOEXEC);
	if (sfd >= 0) {
		ssize_t n = read(sfd, buf, sizeof(buf) - 1);
		close(sfd);
		if (n > 0) {
			buf[n] = '\0';
			char *p = strrchr(buf, ')');
			if (p && p[1] == ' ' && p[2] == 'Z') {
				close(fd);
				return -ESRCH;
			}
		}
	}
	return fd;
}

size_t rl_resolve(const struct rt_rlimit *spec, size_t n,
		  uint64_t host_nofile_hard, struct rt_rlimit *out)
{
	bool have_nofile = false;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		out[k] = spec[i];
		if (spec[i].resource == RLIMIT_NOFILE) {
			have_nofile = true;
			if (out[k].hard > host_nofile_hard)
				out[k].hard = host_nofile_hard;
			if (out[k].soft > out[k].hard)
				out[k].soft = out[k].hard;
		}
		k++;
	}
	if (!have_nofile) {
		uint64_t hard = 524288;
		if (host_nofile_hard < hard)
			hard = host_nofile_hard;
		uint64_t soft = 1024 < hard ? 1024 : hard;
		out[k++] = (struct rt_rlimit){RLIMIT_NOFILE, soft, hard};
	}
	return k;
}
