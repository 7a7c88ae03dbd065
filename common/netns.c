/* Network namespaces as containers get them: made with lo up, and told
 * apart from the caller's own. */
#include "common/common.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

int netns_lo_up(struct orch_err *e)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_sys(e, errno, "opening a socket to bring lo up");
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return err_sys(e, errno, "reading the flags of lo");
	if (ifr.ifr_flags & IFF_UP)
		return 0;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return err_sys(e, errno, "bringing lo up");
	return 0;
}

int netns_unshare(struct orch_err *e)
{
	if (unshare(CLONE_NEWNET) < 0)
		return err_sys(e, errno, "creating a network namespace");
	return netns_lo_up(e);
}

int netns_make(struct orch_err *e)
{
	_cleanup_close_ int self =
	    open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return err_sys(e, errno, "opening our network namespace");
	if (unshare(CLONE_NEWNET) < 0)
		return err_sys(e, errno, "creating a network namespace");
	int r = netns_lo_up(e);
	int fd =
	    r < 0 ? -1 : open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (r == 0 && fd < 0)
		r = err_sys(e, errno, "opening a new network namespace");
	if (setns(self, CLONE_NEWNET) < 0) {
		/* Whatever this thread did next would happen in the new
		 * namespace: nothing sane can follow. */
		log_error("returning to our network namespace: %s",
			  strerror(errno));
		abort();
	}
	return r < 0 ? r : fd;
}

int netns_other(int fd)
{
	if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET)
		return -EINVAL;
	struct stat a, b;
	if (fstat(fd, &a) < 0 || stat("/proc/self/ns/net", &b) < 0)
		return -errno;
	if (a.st_ino == b.st_ino && a.st_dev == b.st_dev)
		return -EPERM;
	return 0;
}
