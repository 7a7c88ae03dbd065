/* A container's output and its events: the log file each line goes to
 * (with its time, rotated by size), and the events sent to the clients
 * that follow them. */
#include "orchestrator/supervisor/supervise_impl.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

/* ---- events ------------------------------------------------------------ */

void send_line(int fd, json_t *j)
{
	char *txt = json_dumps(j, JSON_COMPACT);
	if (!txt)
		return;
	size_t len = strlen(txt);
	txt[len] = '\0';
	struct iovec iov[2] = {{txt, len}, {"\n", 1}};
	/* Clients read promptly; a client that does not is dropped rather
	 * than stalling the loop. */
	ssize_t w = RETRY_EINTR(writev(fd, iov, 2));
	(void)w;
	free(txt);
}

void ctr_event(struct sctr *c, const char *action, json_t *attrs)
{
	char ts[40];
	wall_ts(ts, sizeof(ts));
	if (!attrs)
		attrs = json_object();
	json_object_set_new(attrs, "name", json_string(c->name));
	json_object_set_new(attrs, "image",
			    json_string(jstr(c->rec, "image") ?: ""));
	json_t *ev =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "time", ts, "type",
		      "container", "action", action, "id", c->id, "service",
		      c->service, "attributes", attrs);
	for (size_t i = 0; i < sup.n_cl; i++)
		if (sup.cl[i].used && sup.cl[i].wait == W_EVENTS)
			send_line(sup.cl[i].fd, ev);
	json_decref(ev);
	sup.dirty = true;
}

/* ---- logs ---------------------------------------------------------------- */

char *log_path(const char *name, const char *suffix)
{
	return xasprintf("%s/logs/%s%s", sup.dir, name, suffix);
}

char *ctr_log_path(const struct sctr *c, const char *suffix)
{
	return log_path(c->name, suffix);
}

static char *log_gen(const struct sctr *c, int generation)
{
	_cleanup_free_ char *dir = xasprintf("%s/logs", sup.dir);
	return log_file(dir, c->name, generation);
}

static void log_open(struct sctr *c)
{
	if (c->log_fd >= 0)
		return;
	_cleanup_free_ char *p = log_gen(c, 0);
	c->log_fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	struct stat st;
	c->log_size =
	    c->log_fd >= 0 && fstat(c->log_fd, &st) == 0 ? st.st_size : 0;
}

/* Keeps at most log_files files of log_max bytes: <name>.log is the
 * current one, <name>.log.1 the previous, and so on. */
static void log_rotate(struct sctr *c)
{
	if (c->log_fd >= 0)
		close(c->log_fd);
	c->log_fd = -1;
	for (int i = c->log_files - 1; i >= 1; i--) {
		_cleanup_free_ char *from = log_gen(c, i - 1);
		_cleanup_free_ char *to = log_gen(c, i);
		rename(from, to);
	}
	if (c->log_files <= 1) {
		_cleanup_free_ char *p = log_gen(c, 0);
		unlink(p);
	}
	log_open(c);
}

void ctr_log_line(struct sctr *c, const char *line, size_t len)
{
	if (c->log_none)
		return;
	log_open(c);
	if (c->log_fd < 0)
		return;
	if (log_full(c->log_size, len, c->log_max))
		log_rotate(c);
	char ts[40];
	wall_ts(ts, sizeof(ts));
	struct iovec iov[3] = {{ts, strlen(ts)}, {" ", 1}, {(void *)line, len}};
	char nl = '\n';
	struct iovec all[4] = {iov[0], iov[1], iov[2], {&nl, 1}};
	ssize_t w = RETRY_EINTR(writev(c->log_fd, all, 4));
	if (w > 0)
		c->log_size += w;
}

#define PART_MAX 16384

void fifo_drain(struct sctr *c)
{
	char buf[8192];
	for (;;) {
		ssize_t n = RETRY_EINTR(read(c->fifo_fd, buf, sizeof(buf)));
		if (n <= 0)
			return;
		size_t start = 0;
		for (size_t i = 0; i < (size_t)n; i++) {
			if (buf[i] != '\n')
				continue;
			if (c->part_len) {
				c->part =
				    xrealloc(c->part, c->part_len + i - start);
				memcpy(c->part + c->part_len, buf + start,
				       i - start);
				ctr_log_line(c, c->part,
					     c->part_len + i - start);
				c->part_len = 0;
			} else
				ctr_log_line(c, buf + start, i - start);
			start = i + 1;
		}
		size_t rest = (size_t)n - start;
		if (rest) {
			c->part = xrealloc(c->part, c->part_len + rest);
			memcpy(c->part + c->part_len, buf + start, rest);
			c->part_len += rest;
			if (c->part_len >= PART_MAX) {
				ctr_log_line(c, c->part, c->part_len);
				c->part_len = 0;
			}
		}
	}
}

/* The relay of a container's pty: what its processes write, copied to
 * the log pipe, until the last of them closes the terminal; with
 * stdin_open, what attach writes to its input FIFO (in_fd, else -1)
 * typed on the terminal. */
static _Noreturn void tty_relay(int master, int out_fd, int in_fd)
{
	prctl(PR_SET_NAME, "orch-tty");
	/* None of the supervisor's signal handling: TERM ends it. */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	const int caught[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD};
	for (size_t i = 0; i < ARRAY_SIZE(caught); i++)
		signal(caught[i], SIG_DFL);
	/* Any may be 3, 4 or 5 already: all are moved out of the way first
	 * (dup3 onto itself fails, and one would clobber another). */
	int m = fcntl(master, F_DUPFD_CLOEXEC, 10);
	int o = fcntl(out_fd, F_DUPFD_CLOEXEC, 10);
	int i = in_fd >= 0 ? fcntl(in_fd, F_DUPFD_CLOEXEC, 10) : -1;
	if (m < 0 || o < 0 || dup3(m, 3, O_CLOEXEC) < 0 ||
	    dup3(o, 4, O_CLOEXEC) < 0 || (i >= 0 && dup3(i, 5, O_CLOEXEC) < 0))
		_exit(1);
	close_range(i >= 0 ? 6 : 5, ~0U, 0);
	struct pollfd pf[2] = {{.fd = 3, .events = POLLIN},
			       {.fd = i >= 0 ? 5 : -1, .events = POLLIN}};
	for (;;) {
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			_exit(1);
		/* EIO at the master: no process holds the terminal. */
		if (pf[0].revents && !fd_pass(3, 4))
			_exit(0);
		/* The FIFO is held open for writing: it never ends. */
		if (pf[1].revents && !fd_pass(5, 3))
			pf[1].fd = -1;
	}
}

int log_pty_setup(int master, struct orch_err *e)
{
	struct termios tio;
	struct winsize ws = {.ws_row = 24, .ws_col = 80};
	if (tcgetattr(master, &tio) < 0)
		return err_sys(e, errno, "reading the pty's settings");
	tio.c_oflag &= ~(tcflag_t)ONLCR;
	if (tcsetattr(master, TCSANOW, &tio) < 0 ||
	    ioctl(master, TIOCSWINSZ, &ws) < 0)
		return err_sys(e, errno, "setting up the pty");
	return 0;
}

void tty_relay_start(struct sctr *c, int master)
{
	_cleanup_free_ char *fifo = ctr_log_path(c, ".fifo");
	_cleanup_close_ int out = open(fifo, O_RDWR | O_CLOEXEC);
	if (out < 0) {
		log_warn("%s: opening its log pipe for its terminal: %s",
			 c->name, strerror(errno));
		return;
	}
	/* Its input (stdin_open), as attach writes it: held open for
	 * writing too, so that it never ends. */
	_cleanup_close_ int in = -1;
	if (jbool(json_object_get(c->rec, "spec"), "stdin_open")) {
		_cleanup_free_ char *p = ctr_log_path(c, ".stdin");
		if (mkfifo(p, 0600) < 0 && errno != EEXIST)
			log_warn("%s: making %s: %s", c->name, p,
				 strerror(errno));
		else
			in = open(p, O_RDWR | O_CLOEXEC);
	}
	/* The keeper's child (CLONE_PARENT), which reaps it when it ends,
	 * and under which it outlives this supervisor as the container
	 * does.  Its exit signal is ours to the keeper (SIGCHLD). */
	struct clone_args ca = {.flags = CLONE_PARENT};
	fflush(NULL);
	long pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0)
		tty_relay(master, out, in);
	if (pid < 0)
		log_warn("%s: starting the relay of its terminal: %s", c->name,
			 strerror(errno));
}

/* The FIFO outlives any supervisor: the container holds it open for
 * reading and writing, so it never gets SIGPIPE while no supervisor
 * reads, and a new supervisor reopens it and finds the data waiting. */
int fifo_open(struct sctr *c, size_t idx)
{
	if (c->fifo_fd >= 0)
		return 0;
	_cleanup_free_ char *p = ctr_log_path(c, ".fifo");
	if (mkfifo(p, 0600) < 0 && errno != EEXIST)
		return -errno;
	/* Read-write: we never see a hang-up when no container holds it. */
	c->fifo_fd = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (c->fifo_fd < 0)
		return -errno;
	ep_add(c->fifo_fd, TAG(K_FIFO, idx));
	return 0;
}
