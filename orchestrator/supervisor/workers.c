/* The supervisor's workers: the processes that create its containers, so
 * that the supervisor goes on serving while they do.
 *
 * A worker is a fork of the supervisor that keeps none of its descriptors
 * but a socket of its own on fd 3, and none of its signal handlers (as an
 * exec would): it runs the same code, and an exec would only add its cost
 * (loading the program and its libraries: some 2 ms of CPU a worker on a
 * virtual machine, where even /bin/true takes that).  The
 * supervisor hands it one container per message: its name, id and spec,
 * with the container's log pipe and the socket its report goes back on
 * ("<pid>" or "!<error>").  One that up makes ahead of its start is
 * created only: its process waits for the word to exec, which the
 * supervisor gives, and the report is "~<pid>" with the container's sync
 * socket and pidfd.  The worker makes the container a child of the
 * supervisor (rt_spec.sibling), so it can stay for the next ones: what it
 * found out (the capabilities held, the seccomp program, idmapped layers)
 * serves them all, and no start waits for a copy of the supervisor to be
 * made.  Workers start with the supervisor (while the CLI makes the
 * networks), one per CPU (at least 2), and are let go after WORKER_IDLE_MS
 * with nothing to do: a project at rest has none. */
#include "orchestrator/supervisor/supervise_impl.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* Containers handed to one worker and not reported yet, at most: more
 * wait in the supervisor for whichever worker is free first. */
enum { WORKER_QUEUE = 4 };
enum { WORKER_IDLE_MS = 500 };
/* The largest message: a spec is a few KiB. */
enum { HANDOFF_MAX = 1 << 20 };

/* ---- in the worker ---------------------------------------------------------
 */

/* The standard input of a container with stdin_open: a FIFO of its own
 * that it holds open for writing too, so that reading it waits (as on
 * docker's open pipe) and never ends. */
static int stdin_held(const char *name, struct orch_err *e)
{
	_cleanup_free_ char *p = log_path(name, ".stdin");
	if (mkfifo(p, 0600) < 0 && errno != EEXIST)
		return err_sys(e, errno, "making %s", p);
	int fd = open(p, O_RDWR | O_CLOEXEC);
	return fd < 0 ? err_sys(e, errno, "opening %s", p) : fd;
}

/* One message on a SOCK_SEQPACKET socket, with n descriptors (at most
 * MSG_FDS_MAX). */
static int msg_send(int sock, const char *txt, const int *fds, size_t n)
{
	if (n > MSG_FDS_MAX)
		return -E2BIG;
	return fd_sendmsg(sock, txt, strlen(txt), fds, n, MSG_DONTWAIT);
}

ssize_t msg_recv(int sock, char *buf, size_t size, int fds[MSG_FDS_MAX],
		 size_t *n)
{
	ssize_t len = fd_recvmsg(sock, buf, size - 1, fds, MSG_FDS_MAX, n, 0);
	buf[len > 0 ? len : 0] = '\0';
	return len;
}

/* Creates the container and starts it, or (prepare) leaves it waiting
 * for its start; the report goes to report. */
static void worker_create(const char *name, const char *id, json_t *spec_j,
			  bool prepare, int out_fd, int devnull, int report)
{
	struct orch_err e = {0};
	struct rt_spec spec;
	struct rt_container *rc = NULL;
	rt_spec_init(&spec);
	/* With tty, a pty of the container's own, whose master goes to the
	 * supervisor with the report (it relays it to out_fd). */
	bool tty = jbool(spec_j, "tty");
	_cleanup_close_ int master = -1;
	_cleanup_close_ int in = -1;
	int r = ctrspec_load(spec_j, &spec, &e);
	if (r == 0 && !tty && jbool(spec_j, "stdin_open") &&
	    (in = stdin_held(name, &e)) < 0)
		r = in;
	if (r == 0) {
		spec.id = id;
		spec.stdio[0] = in >= 0 ? in : devnull;
		spec.stdio[1] = out_fd;
		spec.stdio[2] = out_fd;
		spec.pty = tty ? &master : NULL;
		spec.sibling = true;
		/* A leftover of an earlier run (cgroup, runtime state)
		 * would make the id collide; the upper dir is kept, as
		 * docker keeps a container's filesystem across restarts. */
		struct orch_err ign = {0};
		rt_delete(id, false, &ign);
		/* A terminal is set up between the creation and the exec. */
		r = prepare || tty ? rt_create(&spec, &rc, &e)
				   : rt_run(&spec, &rc, &e);
		if (r == 0 && tty)
			r = log_pty_setup(master, &e);
		if (r == 0 && tty && !prepare)
			r = rt_start(rc, &e);
		if (r < 0 && !rc)
			err_wrap(&e, "creating %s", name);
		else if (r < 0) {
			err_wrap(&e, "starting %s", name);
			rt_kill(id, SIGKILL, &ign);
			int st;
			rt_wait(rc, &st, &ign);
			rt_delete(id, false, &ign);
		}
	}
	char buf[REPORT_MAX];
	int fds[MSG_FDS_MAX] = {-1, -1, -1};
	size_t n = 0;
	if (r == 0 && rc) {
		snprintf(buf, sizeof(buf), "%s%d%s", prepare ? "~" : "",
			 (int)rc->pid, tty ? " pty" : "");
		if (prepare) {
			fds[n++] = rc->sync_fd;
			if (rc->pidfd >= 0)
				fds[n++] = rc->pidfd;
		}
		if (tty)
			fds[n++] = master;
	} else {
		snprintf(buf, sizeof(buf), "!%s",
			 r < 0 ? e.msg : "the runtime made no container");
	}
	r = msg_send(report, buf, fds, n);
	if (r < 0)
		log_warn("worker: reporting on %s: %s", name, strerror(-r));
	/* A container made ahead that cannot be reported waits for no
	 * one: its sync socket closes here, and it ends. */
	rt_container_free(rc);
	ctrspec_clear(&spec);
}

/* The next message on fd: its text (to free) and its two descriptors.
 * 0 at the end of the stream. */
static int handoff_recv(int fd, char **txt, int fds[MSG_FDS_MAX])
{
	ssize_t len = RETRY_EINTR(recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC));
	if (len <= 0)
		return len < 0 ? -errno : 0;
	if (len > HANDOFF_MAX)
		return -EMSGSIZE;
	char *buf = xmalloc((size_t)len + 1);
	size_t n_fds;
	ssize_t n = msg_recv(fd, buf, (size_t)len + 1, fds, &n_fds);
	if (n <= 0 || n_fds != 2) {
		for (size_t i = 0; i < n_fds; i++)
			close(fds[i]);
		free(buf);
		return n < 0 ? (int)n : -EBADMSG;
	}
	*txt = buf;
	return 1;
}

/* A worker's life: containers as they come, until the supervisor closes
 * its end. */
static int worker_main(void)
{
	_cleanup_close_ int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (;;) {
		char *txt = NULL;
		int fds[MSG_FDS_MAX] = {-1, -1, -1};
		int r = handoff_recv(3, &txt, fds);
		if (r <= 0) {
			if (r < 0)
				log_error("worker: %s", strerror(-r));
			return r < 0 ? 1 : 0;
		}
		json_t *m = json_loads(txt, 0, NULL);
		free(txt);
		const char *name = jstr(m, "name"), *id = jstr(m, "id");
		if (name && id)
			worker_create(name, id, json_object_get(m, "spec"),
				      jbool(m, "prepare"), fds[0], devnull,
				      fds[1]);
		else
			msg_send(fds[1],
				 "!a malformed request from the supervisor",
				 NULL, 0);
		close(fds[0]);
		close(fds[1]);
		json_decref(m);
	}
}

/* The supervisor's command line, which a worker's replaces (ps shows it). */
static char *cmdline;
static size_t cmdline_len;

void workers_init(char **argv, int argc)
{
	cmdline = argv[0];
	cmdline_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) - argv[0]);
}

/* The child's side of worker_spawn: sock becomes fd 3, the rest of the
 * supervisor's descriptors and handlers go. */
static _Noreturn void worker_child(int sock)
{
	/* Close-on-exec still: the containers it makes get none of it. */
	if (sock != 3 && dup3(sock, 3, O_CLOEXEC) < 0)
		_exit(127);
	syscall(SYS_close_range, 4, ~0U, 0);
	const int caught[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE};
	for (size_t i = 0; i < ARRAY_SIZE(caught); i++)
		signal(caught[i], SIG_DFL);
	prctl(PR_SET_NAME, "orch-worker");
	/* The project's name is in the room rewritten below. */
	sup.project = xstrdup(sup.project);
	if (cmdline) {
		/* "orch-worker PROJECT", in the room the supervisor's had. */
		char t[256];
		snprintf(t, sizeof(t), "orch-worker %s", sup.project);
		size_t n = strlen(t) < cmdline_len ? strlen(t) : cmdline_len;
		memset(cmdline, 0, cmdline_len);
		memcpy(cmdline, t, n);
	}
	log_init("orch-worker");
	/* _exit: the supervisor's atexit handlers and stdio are its own. */
	_exit(worker_main());
}

/* ---- in the supervisor -----------------------------------------------------
 */

/* Workers at most: one per CPU, at least 2. */
static size_t workers_wanted(void)
{
	static size_t n;
	if (!n) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus < 2 ? 2 : cpus > MAX_WORKERS ? MAX_WORKERS : (size_t)cpus;
	}
	return n;
}

static struct worker *worker_spawn(void)
{
	struct worker *w = NULL;
	for (size_t i = 0; i < MAX_WORKERS && !w; i++)
		if (!sup.w[i].pid)
			w = &sup.w[i];
	if (!w)
		return NULL;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_warn("starting a worker: %s", strerror(errno));
		return NULL;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		worker_child(sv[1]);
	int err = errno;
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		log_warn("starting a worker: %s", strerror(err));
		return NULL;
	}
	*w = (struct worker){.pid = pid,
			     .sock = sv[0],
			     .pidfd = pidfd_open(pid, 0),
			     .idle_since = mono_ms()};
	if (w->pidfd >= 0)
		ep_add(w->pidfd, TAG(K_WORKER_END, (size_t)(w - sup.w)));
	return w;
}

void workers_spawn_all(void)
{
	size_t live = 0;
	for (size_t i = 0; i < MAX_WORKERS; i++)
		live += sup.w[i].pid != 0;
	while (live++ < workers_wanted() && worker_spawn())
		;
}

/* The worker for the next container: an idle one, else a new one while
 * there are fewer than wanted, else the least busy with room.  NULL when
 * every one is busy, or (*none) there is none and none can be started. */
static struct worker *worker_pick(bool *none)
{
	struct worker *best = NULL;
	size_t live = 0;
	for (size_t i = 0; i < MAX_WORKERS; i++) {
		struct worker *w = &sup.w[i];
		if (!w->pid || w->sock < 0)
			continue;
		live++;
		if (!best || w->busy < best->busy)
			best = w;
	}
	if (best && best->busy == 0)
		return best;
	if (live < workers_wanted()) {
		struct worker *w = worker_spawn();
		if (w)
			return w;
	}
	*none = !best;
	return best && best->busy < WORKER_QUEUE ? best : NULL;
}

/* The process whose PID or IPC namespace c shares (pid_of, ipc_of: a
 * container's name), in *pid: 0 when c shares none.  1 when that
 * container is still being made (c waits for it), -1 with *why when it
 * runs no process. */
static int shared_pid(const struct sctr *c, const char *key, pid_t *pid,
		      char **why)
{
	const char *of = jstr(json_object_get(c->rec, "spec"), key);
	*pid = 0;
	if (!of)
		return 0;
	for (size_t i = 0; i < sup.n; i++) {
		const struct sctr *t = &sup.c[i];
		if (t->gone || !streq(t->name, of))
			continue;
		if (t->state == C_RUNNING && t->pid > 0)
			*pid = t->pid;
		else if (t->prep)
			*pid = t->prep->pid;
		else if (t->queued || t->worker)
			return 1;
		break;
	}
	if (*pid > 0)
		return 0;
	*why = xasprintf("starting %s: %s, whose %s namespace it shares, is "
			 "not running",
			 c->name, of, streq(key, "pid_of") ? "PID" : "IPC");
	return -1;
}

/* Hands c to w: its spec (with the processes whose namespaces it
 * shares), and its log pipe and report socket. */
static int handoff_send(struct worker *w, const struct sctr *c,
			pid_t pid_join, pid_t ipc_join)
{
	json_t *spec = json_object_get(c->rec, "spec");
	json_auto_t *joined = NULL;
	if (spec && (pid_join || ipc_join)) {
		joined = json_copy(spec);
		spec = joined;
		if (pid_join)
			json_object_set_new(spec, "pid_join",
					    json_integer(pid_join));
		if (ipc_join)
			json_object_set_new(spec, "ipc_join",
					    json_integer(ipc_join));
	}
	json_t *m = json_pack("{s:s, s:s, s:O, s:b}", "name", c->name, "id",
			      c->id, "spec", spec ? spec : json_null(),
			      "prepare", c->prepare);
	char *txt = m ? json_dumps(m, JSON_COMPACT) : NULL;
	json_decref(m);
	if (!txt)
		return -ENOMEM;
	int fds[2] = {c->out_fd, c->report_fd};
	int r = msg_send(w->sock, txt, fds, 2);
	free(txt);
	return r;
}

void workers_start(void)
{
	for (size_t i = 0; i < sup.n; i++) {
		struct sctr *c = &sup.c[i];
		if (c->gone || !c->queued)
			continue;
		pid_t pid_join, ipc_join;
		char *why = NULL;
		int wait = shared_pid(c, "pid_of", &pid_join, &why);
		if (wait == 0)
			wait = shared_pid(c, "ipc_of", &ipc_join, &why);
		if (wait > 0)
			continue; /* made once that one is */
		if (wait < 0) {
			queued_fds_close(c);
			c->queued = false;
			close(c->worker_fd);
			c->worker_fd = -1;
			c->start_err = why;
			start_failed(c);
			continue;
		}
		bool none = false;
		struct worker *w = worker_pick(&none);
		if (!w && !none)
			return; /* the others wait for a report */
		int r = w ? handoff_send(w, c, pid_join, ipc_join) : -ECHILD;
		if (r == -EAGAIN)
			return;
		queued_fds_close(c);
		c->queued = false;
		if (r < 0) {
			close(c->worker_fd);
			c->worker_fd = -1;
			c->start_err =
			    w ? xasprintf("starting %s: handing it to a "
					  "worker: %s",
					  c->name, strerror(-r))
			      : xasprintf("starting %s: no worker could be "
					  "started (see the supervisor's log)",
					  c->name);
			start_failed(c);
			continue;
		}
		c->worker = w->pid;
		w->busy++;
		ep_add(c->worker_fd, TAG(K_WORKER, i));
	}
}

void worker_reported(pid_t pid)
{
	for (size_t i = 0; i < MAX_WORKERS; i++) {
		struct worker *w = &sup.w[i];
		if (w->pid == pid && w->busy && --w->busy == 0)
			w->idle_since = mono_ms();
	}
}

bool worker_known(pid_t pid)
{
	for (size_t i = 0; i < MAX_WORKERS; i++)
		if (sup.w[i].pid == pid)
			return true;
	return false;
}

/* Lets a worker go: it sees the end of its socket and exits. */
static void worker_retire(struct worker *w)
{
	if (w->pid && w->sock >= 0)
		close(w->sock);
	w->sock = -1;
}

void worker_ended(size_t slot)
{
	if (slot >= MAX_WORKERS || !sup.w[slot].pid)
		return;
	struct worker *w = &sup.w[slot];
	/* Containers it had not reported on see their report pipe close:
	 * "the worker died". */
	RETRY_EINTR(waitpid(w->pid, NULL, 0));
	worker_retire(w);
	if (w->pidfd >= 0) {
		ep_del(w->pidfd);
		close(w->pidfd);
	}
	*w = (struct worker){.sock = -1, .pidfd = -1};
	workers_start();
}

int64_t workers_deadline(void)
{
	int64_t next = 0;
	for (size_t i = 0; i < MAX_WORKERS; i++) {
		const struct worker *w = &sup.w[i];
		if (!w->pid || w->sock < 0 || w->busy)
			continue;
		int64_t t = w->idle_since + WORKER_IDLE_MS;
		if (!next || t < next)
			next = t;
	}
	return next;
}

void workers_retire_idle(int64_t now)
{
	for (size_t i = 0; i < MAX_WORKERS; i++) {
		struct worker *w = &sup.w[i];
		if (w->pid && w->sock >= 0 && !w->busy &&
		    w->idle_since + WORKER_IDLE_MS <= now)
			worker_retire(w);
	}
}

void workers_stop(void)
{
	for (size_t i = 0; i < MAX_WORKERS; i++)
		worker_retire(&sup.w[i]);
	/* One making a container finishes it first; a stuck one is
	 * killed. */
	for (size_t i = 0; i < MAX_WORKERS; i++) {
		struct worker *w = &sup.w[i];
		if (!w->pid)
			continue;
		struct pollfd p = {.fd = w->pidfd, .events = POLLIN};
		if (w->pidfd >= 0 && RETRY_EINTR(poll(&p, 1, 10000)) == 0)
			pidfd_send_signal(w->pidfd, SIGKILL, NULL, 0);
		RETRY_EINTR(waitpid(w->pid, NULL, 0));
		if (w->pidfd >= 0)
			close(w->pidfd);
		*w = (struct worker){.sock = -1, .pidfd = -1};
	}
}
