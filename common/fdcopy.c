/* Copying a file's bytes between descriptors. */
#include "common/common.h"

int fd_copy(int in, int out, const char *what, struct orch_err *e)
{
	/* In the kernel where the filesystems allow it; by hand otherwise. */
	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
		    errno != EOPNOTSUPP)
			return err_sys(e, errno, "copying %s", what);
		break;
	}
	char buf[65536];
	for (;;) {
		ssize_t n = RETRY_EINTR(read(in, buf, sizeof(buf)));
		if (n < 0)
			return err_sys(e, errno, "reading %s", what);
		if (n == 0)
			return 0;
		for (ssize_t off = 0; off < n;) {
			ssize_t m = RETRY_EINTR(
			    write(out, buf + off, (size_t)(n - off)));
			if (m < 0)
				return err_sys(e, errno, "writing %s", what);
			off += m;
		}
	}
}
