/* The host's settings that netd needs while a network exists (forwarding,
 * bridged traffic through the inet table), recorded before they change
 * and restored when the last network goes; and the sysctl files it reads
 * and writes for them and for its links. */
#include "netd/netd-int.h"

#include <fcntl.h>
#include <sys/wait.h>

int sysctl_read(const char *path)
{
	_cleanup_free_ char *v = NULL;
	if (read_file(path, &v, NULL, NULL) < 0)
		return -1;
	return atoi(v);
}

int sysctl_write(const char *path, const char *value)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t len = strlen(value);
	if (RETRY_EINTR(write(fd, value, len)) != (ssize_t)len)
		return -errno;
	return 0;
}

static int sysctl_set(const char *path, int v, struct orch_err *e)
{
	char buf[16];
	snprintf(buf, sizeof(buf), "%d", v);
	int r = sysctl_write(path, buf);
	if (r < 0)
		return err_sys(e, r, "setting %s to %d", path, v);
	return 0;
}

#define IP_FORWARD "/proc/sys/net/ipv4/ip_forward"
#define BRIDGE_NF  "/proc/sys/net/bridge/bridge-nf-call-iptables"

/* Bridged traffic reaches the inet table only through br_netfilter, which
 * a fresh host has not loaded: without it, link-only isolation inside a
 * network would silently not hold. */
static int bridge_nf_load(struct orch_err *e)
{
	pid_t pid = fork();
	if (pid < 0)
		return err_sys(e, errno, "loading br_netfilter: fork");
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		dup2(fd, 1);
		dup2(fd, 2);
		execl("/sbin/modprobe", "modprobe", "br_netfilter",
		      (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (sysctl_read(BRIDGE_NF) < 0)
		return err_set(e, ENOENT,
			       "bridged traffic cannot be filtered: the "
			       "br_netfilter module is not loaded and modprobe "
			       "br_netfilter failed");
	return 0;
}

#define IP6_FORWARD "/proc/sys/net/ipv6/conf/all/forwarding"
#define BRIDGE_NF6  "/proc/sys/net/bridge/bridge-nf-call-ip6tables"

/* Sets path to 1, its previous value recorded in *saved first (when it
 * has none yet); *change says the state must be written. */
static int turn_on(const char *path, int *saved, bool record_only,
		   bool *change, struct orch_err *e)
{
	int v = sysctl_read(path);
	if (v < 0 || v == 1)
		return 0;
	if (record_only) {
		if (*saved < 0) {
			*saved = v;
			*change = true;
		}
		return 0;
	}
	return sysctl_set(path, 1, e);
}

/* Forwarding, and bridged traffic through the inet table (link-only
 * policy inside a bridge), are needed while a network exists (IPv6's
 * while a network has IPv6); the host's previous values are recorded
 * first so that they survive a crash. */
int host_settings_on(struct server *s, bool ipv6, struct orch_err *e)
{
	if (sysctl_read(BRIDGE_NF) < 0) {
		int r = bridge_nf_load(e);
		if (r < 0)
			return r;
	}
	struct netd_state *st = &s->st;
	for (int pass = 0; pass < 2; pass++) {
		bool rec = pass == 0, change = false;
		int r;
		if ((r = turn_on(IP_FORWARD, &st->saved_ip_forward, rec,
				 &change, e)) < 0 ||
		    (r = turn_on(BRIDGE_NF, &st->saved_bridge_nf, rec, &change,
				 e)) < 0 ||
		    (ipv6 && (r = turn_on(IP6_FORWARD, &st->saved_ip6_forward,
					  rec, &change, e)) < 0) ||
		    (ipv6 && (r = turn_on(BRIDGE_NF6, &st->saved_bridge_nf6,
					  rec, &change, e)) < 0))
			return r;
		if (change && (r = server_save(s, e)) < 0)
			return r;
	}
	return 0;
}

static void restore(const char *path, int *saved)
{
	struct orch_err e;
	if (*saved >= 0 && sysctl_set(path, *saved, &e) < 0)
		log_warn("%s", e.msg);
	*saved = -1;
}

void host_settings_restore(struct server *s)
{
	restore(IP_FORWARD, &s->st.saved_ip_forward);
	restore(BRIDGE_NF, &s->st.saved_bridge_nf);
	restore(IP6_FORWARD, &s->st.saved_ip6_forward);
	restore(BRIDGE_NF6, &s->st.saved_bridge_nf6);
}
