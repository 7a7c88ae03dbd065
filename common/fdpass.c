/* Messages that carry descriptors (SCM_RIGHTS) on a Unix socket. */
#include "common/common.h"

#include <sys/socket.h>

union fdpass_control {
	char buf[CMSG_SPACE(FDPASS_MAX * sizeof(int))];
	struct cmsghdr align;
};

int fd_sendmsg(int sock, const void *buf, size_t len, const int *fds,
	       size_t n, int flags)
{
	if (n > FDPASS_MAX)
		return -E2BIG;
	union fdpass_control u;
	struct iovec iov = {(void *)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (n) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	}
	ssize_t r = RETRY_EINTR(sendmsg(sock, &mh, flags | MSG_NOSIGNAL));
	return r < 0 ? -errno : 0;
}

ssize_t fd_recvmsg(int sock, void *buf, size_t len, int *fds, size_t max,
		   size_t *n, int flags)
{
	*n = 0;
	union fdpass_control u;
	struct iovec iov = {buf, len};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	ssize_t r = RETRY_EINTR(recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC));
	if (r < 0)
		return -errno;
	int got[FDPASS_MAX];
	size_t k = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
	     c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t m = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < m && k < FDPASS_MAX; i++)
			memcpy(&got[k++], CMSG_DATA(c) + i * sizeof(int),
			       sizeof(int));
	}
	if (k > max || (mh.msg_flags & MSG_CTRUNC)) {
		for (size_t i = 0; i < k; i++)
			close(got[i]);
		return -EBADMSG;
	}
	if (k)
		memcpy(fds, got, k * sizeof(int));
	*n = k;
	return r;
}
