/* Whether a host port is free, and who holds it when it is not: netd asks
 * the kernel by binding, then names the owner from /proc. */
#include "netd/netd-int.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* The socket inode bound to port in /proc/net/<file>, or 0. */
static unsigned long socket_inode(const char *file, unsigned port)
{
	_cleanup_free_ char *path = xasprintf("/proc/net/%s", file);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	char line[512];
	if (!fgets(line, sizeof(line), f))
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char local[128];
		unsigned st;
		unsigned long inode;
		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, "%*s %127s %*s %x %*s %*s %*s %*s %*s %lu",
			   local, &st, &inode) != 3)
			continue;
		const char *colon = strrchr(local, ':');
		if (colon && strtoul(colon + 1, NULL, 16) == port && inode)
			return inode;
	}
	return 0;
}

/* "pid 123 (nginx)" for the process holding socket inode, or NULL. */
static char *inode_owner(unsigned long inode)
{
	_cleanup_free_ char *want = xasprintf("socket:[%lu]", inode);
	DIR *proc = opendir("/proc");
	if (!proc)
		return NULL;
	char *found = NULL;
	struct dirent *de;
	while (!found && (de = readdir(proc))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		_cleanup_free_ char *fddir =
		    xasprintf("/proc/%s/fd", de->d_name);
		DIR *fds = opendir(fddir);
		if (!fds)
			continue;
		struct dirent *fe;
		while ((fe = readdir(fds))) {
			char link[64], p[300];
			snprintf(p, sizeof(p), "%s/%s", fddir, fe->d_name);
			ssize_t n = readlink(p, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (!streq(link, want))
				continue;
			_cleanup_free_ char *comm =
			    proc_comm((pid_t)atoi(de->d_name));
			found = xasprintf("pid %s (%s)", de->d_name,
					  comm ? comm : "?");
			break;
		}
		closedir(fds);
	}
	closedir(proc);
	return found;
}

int hostport_check(const char *proto, const char *ip, unsigned port,
		   struct orch_err *e)
{
	bool udp = streq(proto, "udp");
	bool v6 = strchr(ip, ':') != NULL;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} sa = {0};
	if (v6) {
		sa.in6.sin6_family = AF_INET6;
		sa.in6.sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, ip, &sa.in6.sin6_addr) != 1)
			return err_set(e, EINVAL, "host IP \"%s\" is not an "
						  "address", ip);
	} else {
		sa.in.sin_family = AF_INET;
		sa.in.sin_port = htons((uint16_t)port);
		if (*ip && inet_pton(AF_INET, ip, &sa.in.sin_addr) != 1)
			return err_set(e, EINVAL, "host IP \"%s\" is not an "
						  "address", ip);
	}
	_cleanup_close_ int fd = socket(
	    v6 ? AF_INET6 : AF_INET,
	    (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_sys(e, errno, "checking host port %u/%s", port,
			       proto);
	int one = 1;
	if (v6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, &sa.sa, v6 ? sizeof(sa.in6) : sizeof(sa.in)) == 0)
		return 0;
	int err = errno;
	const char *shown = *ip ? ip : "0.0.0.0";
	if (err == EADDRNOTAVAIL)
		return err_set(
		    e, err, "host IP %s is not an address of this host", shown);
	if (err != EADDRINUSE)
		return err_sys(e, err, "checking host port %s%s%s:%u/%s",
			       v6 ? "[" : "", shown, v6 ? "]" : "", port,
			       proto);
	unsigned long inode = socket_inode(udp ? "udp" : "tcp", port);
	if (!inode)
		inode = socket_inode(udp ? "udp6" : "tcp6", port);
	_cleanup_free_ char *owner = inode ? inode_owner(inode) : NULL;
	return err_set(e, EADDRINUSE,
		       "host port %s%s%s:%u/%s is already in use by %s",
		       v6 ? "[" : "", shown, v6 ? "]" : "", port, proto,
		       owner ? owner : "another socket");
}

int hostport_check_range(const char *proto, const char *ip, unsigned port,
			 unsigned count, struct orch_err *e)
{
	/* A few ports: ask the kernel for each.  A range: ask it only for
	 * the ports a socket of this host has (from one read of its socket
	 * tables), so that 20,000 ports cost one pass. */
	_cleanup_free_ uint8_t *bits =
	    count > 16 ? host_ports_held(streq(proto, "udp")) : NULL;
	for (unsigned p = port; p < port + count; p++) {
		if (bits && !(bits[p / 8] & (1u << (p % 8))))
			continue;
		int r = hostport_check(proto, ip, p, e);
		if (r < 0)
			return r;
	}
	return 0;
}

unsigned hostport_unprivileged_start(void)
{
	_cleanup_free_ char *v = NULL;
	if (read_file("/proc/sys/net/ipv4/ip_unprivileged_port_start", &v, NULL,
		      NULL) < 0)
		return 1024;
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	return end == v || n > 65536 ? 1024 : (unsigned)n;
}
