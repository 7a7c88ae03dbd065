/* The CLI side of a project's control socket: starting the supervisor on
 * demand and exchanging JSON lines with it. */
#include "orchestrator/engine/engine.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

static int ctl_connect(const struct pstate *p, int *out, struct orch_err *e)
{
	_cleanup_free_ char *path = pstate_path(p, "ctl.sock");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, ENAMETOOLONG, "socket path too long: %s",
			       path);
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_sys(e, errno, "creating a socket");
	if (RETRY_EINTR(connect(fd, (struct sockaddr *)&sa, sizeof(sa))) < 0)
		return err_sys(e, errno, "connecting to the supervisor of %s",
			       p->name);
	*out = move_fd(fd);
	return 0;
}

bool supervisor_alive(const struct pstate *p)
{
	struct orch_err e = {0};
	int fd;
	if (ctl_connect(p, &fd, &e) < 0)
		return false;
	close(fd);
	return true;
}

int supervisor_spawn(struct pstate *p, int *ready_fd, struct orch_err *e)
{
	*ready_fd = -1;
	if (supervisor_alive(p))
		return 0;
	_cleanup_free_ char *exe = self_exe();
	if (!exe)
		return err_sys(e, errno, "finding orch's own executable");
	_cleanup_free_ char *logf = pstate_path(p, "supervisor.log");
	/* The lean supervisor program next to orch, else the same code
	 * inside orch. */
	_cleanup_free_ char *lean = xasprintf(
	    "%.*s/orch-supervisor", (int)(strrchr(exe, '/') - exe), exe);
	char *lean_argv[] = {"orch-supervisor", p->name, NULL};
	char *self_argv[] = {"orch", "__supervise", p->name, NULL};
	int r = daemon_spawn(lean, lean_argv, logf, 0640,
			     "ORCH_SUPERVISOR_READY", NULL, ready_fd);
	if (r == -ENOENT)
		r = daemon_spawn(exe, self_argv, logf, 0640,
				 "ORCH_SUPERVISOR_READY", NULL, ready_fd);
	if (r < 0)
		return err_sys(e, -r, "starting the supervisor of %s", p->name);
	return 0;
}

int supervisor_wait(struct pstate *p, int ready_fd, struct orch_err *e)
{
	if (ready_fd < 0)
		return 0;
	char c;
	ssize_t r = RETRY_EINTR(read(ready_fd, &c, 1));
	close(ready_fd);
	if (r != 1) {
		_cleanup_free_ char *logf = pstate_path(p, "supervisor.log");
		_cleanup_free_ char *txt = NULL;
		struct orch_err ign = {0};
		read_file(logf, &txt, NULL, &ign);
		return err_set(e, EIO, "the supervisor of %s did not start%s%s",
			       p->name, txt ? ": " : "", txt ? txt : "");
	}
	return 0;
}

int supervisor_ensure(struct pstate *p, struct orch_err *e)
{
	int ready;
	int r = supervisor_spawn(p, &ready, e);
	return r < 0 ? r : supervisor_wait(p, ready, e);
}

int control_open(const struct pstate *p, json_t *req, int *out,
		 struct orch_err *e)
{
	int fd;
	int r = ctl_connect(p, &fd, e);
	if (r < 0)
		return r;
	_cleanup_free_ char *txt = json_dumps(req, JSON_COMPACT);
	size_t len = strlen(txt);
	txt[len] = '\n';
	ssize_t w = RETRY_EINTR(send(fd, txt, len + 1, MSG_NOSIGNAL));
	txt[len] = '\0';
	if (w != (ssize_t)len + 1) {
		close(fd);
		return err_sys(e, errno, "talking to the supervisor of %s",
			       p->name);
	}
	*out = fd;
	return 0;
}

int control_call(const struct pstate *p, json_t *req, json_t **reply,
		 struct orch_err *e)
{
	*reply = NULL;
	int fd = -1;
	int r = control_open(p, req, &fd, e);
	return r < 0 ? r : control_reply(p, fd, reply, e);
}

int control_reply(const struct pstate *p, int fd, json_t **reply,
		  struct orch_err *e)
{
	*reply = NULL;
	_cleanup_close_ int own = fd;
	int r;
	struct strbuf sb;
	sb_init(&sb);
	char buf[65536];
	for (;;) {
		ssize_t n = RETRY_EINTR(read(own, buf, sizeof(buf)));
		if (n < 0) {
			sb_free(&sb);
			return err_sys(e, errno,
				       "reading from the supervisor of %s",
				       p->name);
		}
		if (n == 0)
			break;
		sb_add(&sb, buf, (size_t)n);
		if (memchr(buf, '\n', (size_t)n))
			break;
	}
	json_t *j = json_loads(sb.buf, JSON_DISABLE_EOF_CHECK, NULL);
	sb_free(&sb);
	if (!json_is_object(j)) {
		json_decref(j);
		return err_set(e, EIO, "the supervisor of %s gave no answer",
			       p->name);
	}
	const char *err = jstr(j, "error");
	if (err) {
		r = err_set(e, EIO, "%s", err);
		*reply = j;
		return r;
	}
	*reply = j;
	return 0;
}
