/* The project supervisor: one lean process per project, parent of the
 * project's containers.  It applies restart policies with backoff, runs
 * health checks, writes each container's output to its log file and
 * serves the project's control socket.  One epoll loop, no threads:
 * pidfds for processes, one timerfd for every deadline, signalfd.
 *
 * It keeps what it knows in status.json so that a supervisor started after
 * a kill -9 of the previous one re-adopts the running containers. */
#include "orchestrator/supervisor/supervisor.h"
#include "orchestrator/engine/engine.h"
#include "runtime/runtime.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

enum cstate { C_CREATED, C_RUNNING, C_EXITED, C_RESTARTING };
static const char *const cstate_names[] = {"created", "running", "exited",
					   "restarting"};

struct sctr {
	char *name, *id, *service;
	json_t *rec; /* owned reference */
	struct restart_policy rp;
	int stop_signal;
	int64_t stop_grace_ms;
	enum cstate state;
	pid_t pid;
	int pidfd;
	pid_t worker;	/* the process creating it, 0 when none */
	int worker_fd;	/* its report: "<pid>" or "!<error>" */
	bool queued;	/* waits for a free worker */
	bool restarting; /* this start is a restart (event) */
	char *start_err;
	int exit_code, restarts;
	bool user_stopped, stopping, gone;
	int64_t started_mono, restart_at, stop_deadline, backoff;
	char started_at[40], finished_at[40];

	/* logs: the FIFO's read end, the log file, a partial line */
	int fifo_fd, log_fd;
	int64_t log_size, log_max;
	int log_files;
	char *part;
	size_t part_len;

	/* health check */
	char **hc_argv;
	struct hc_policy hc;
	int hc_fails;
	enum health health;
	int64_t hc_next, hc_deadline;
	pid_t hc_pid;
	int hc_pidfd;
};

enum client_wait { W_NONE, W_STOP, W_RESTART, W_REMOVE, W_EVENTS, W_START };

struct client {
	int fd;
	enum client_wait wait;
	char **names;
	json_t *errors;
	bool used;
};

/* epoll tags: kind in the high bits, index below. */
enum { K_SIGNAL = 1, K_TIMER, K_LISTEN, K_CLIENT, K_PROC, K_FIFO, K_HC,
       K_WORKER };

/* Containers are created by short-lived worker processes, several at a
 * time; the supervisor is their subreaper, so each container becomes its
 * child as soon as the worker exits. */
#define MAX_WORKERS 8
#define TAG(k, i) (((uint64_t)(k) << 32) | (uint32_t)(i))

static struct sup {
	const char *project;
	char *dir;
	int ep, sfd, tfd, lfd;
	struct sctr *c;
	size_t n;
	struct client *cl;
	size_t n_cl;
	bool dirty, exiting, trim;
	int n_workers;
	json_t *state;
} S;

static int sig_pipe = -1;

static void on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;
	ssize_t w = write(sig_pipe, &c, 1);
	(void)w;
	errno = saved;
}

/* RFC 3339 with nanoseconds, UTC (docker's log and event time format). */
static void wall_ts(char *buf, size_t n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, n - k, ".%09ldZ", ts.tv_nsec);
}

static void ep_add(int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	if (epoll_ctl(S.ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		log_warn("epoll add fd %d: %s", fd, strerror(errno));
}

static void ep_del(int fd)
{
	epoll_ctl(S.ep, EPOLL_CTL_DEL, fd, NULL);
}

/* ---- events ------------------------------------------------------------ */

static void send_line(int fd, json_t *j)
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

static void event(struct sctr *c, const char *action, json_t *attrs)
{
	char ts[40];
	wall_ts(ts, sizeof(ts));
	if (!attrs)
		attrs = json_object();
	json_object_set_new(attrs, "name", json_string(c->name));
	json_object_set_new(attrs, "image",
			    json_string(jstr(c->rec, "image") ?: ""));
	json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "time", ts,
			       "type", "container", "action", action, "id",
			       c->id, "service", c->service, "attributes",
			       attrs);
	for (size_t i = 0; i < S.n_cl; i++)
		if (S.cl[i].used && S.cl[i].wait == W_EVENTS)
			send_line(S.cl[i].fd, ev);
	json_decref(ev);
	S.dirty = true;
}

/* ---- logs ---------------------------------------------------------------- */

static char *log_path(const struct sctr *c, const char *suffix)
{
	return xasprintf("%s/logs/%s%s", S.dir, c->name, suffix);
}

static char *log_gen(const struct sctr *c, int generation)
{
	_cleanup_free_ char *dir = xasprintf("%s/logs", S.dir);
	return log_file(dir, c->name, generation);
}

static void log_open(struct sctr *c)
{
	if (c->log_fd >= 0)
		return;
	_cleanup_free_ char *p = log_gen(c, 0);
	c->log_fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	struct stat st;
	c->log_size = c->log_fd >= 0 && fstat(c->log_fd, &st) == 0
			      ? st.st_size
			      : 0;
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

static void log_line(struct sctr *c, const char *line, size_t len)
{
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

static void fifo_drain(struct sctr *c)
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
				c->part = xrealloc(c->part,
						   c->part_len + i - start);
				memcpy(c->part + c->part_len, buf + start,
				       i - start);
				log_line(c, c->part, c->part_len + i - start);
				c->part_len = 0;
			} else
				log_line(c, buf + start, i - start);
			start = i + 1;
		}
		size_t rest = (size_t)n - start;
		if (rest) {
			c->part = xrealloc(c->part, c->part_len + rest);
			memcpy(c->part + c->part_len, buf + start, rest);
			c->part_len += rest;
			if (c->part_len >= PART_MAX) {
				log_line(c, c->part, c->part_len);
				c->part_len = 0;
			}
		}
	}
}

/* The FIFO outlives any supervisor: the container holds it open for
 * reading and writing, so it never gets SIGPIPE while no supervisor
 * reads, and a new supervisor reopens it and finds the data waiting. */
static int fifo_open(struct sctr *c, size_t idx)
{
	if (c->fifo_fd >= 0)
		return 0;
	_cleanup_free_ char *p = log_path(c, ".fifo");
	if (mkfifo(p, 0600) < 0 && errno != EEXIST)
		return -errno;
	/* Read-write: we never see a hang-up when no container holds it. */
	c->fifo_fd = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (c->fifo_fd < 0)
		return -errno;
	ep_add(c->fifo_fd, TAG(K_FIFO, idx));
	return 0;
}

/* ---- containers ---------------------------------------------------------- */

static void set_state(struct sctr *c, enum cstate st)
{
	c->state = st;
	S.dirty = true;
}

static void hc_schedule(struct sctr *c, int64_t now)
{
	if (!c->hc_argv)
		return;
	c->hc_next = now + hc_delay(&c->hc, c->health, now - c->started_mono);
}

static void hc_cancel(struct sctr *c)
{
	if (c->hc_pidfd >= 0) {
		pidfd_send_signal(c->hc_pidfd, SIGKILL, NULL, 0);
		ep_del(c->hc_pidfd);
		waitid(P_PIDFD, c->hc_pidfd, NULL, WEXITED);
		close(c->hc_pidfd);
	}
	c->hc_pidfd = -1;
	c->hc_pid = 0;
	c->hc_next = c->hc_deadline = 0;
}

static void proc_watch(struct sctr *c, size_t idx, pid_t pid, int pidfd)
{
	c->pid = pid;
	c->pidfd = pidfd >= 0 ? pidfd : pidfd_open(pid, 0);
	if (c->pidfd >= 0)
		ep_add(c->pidfd, TAG(K_PROC, idx));
}

/* In the worker: creates and starts the container, reports its pid (or
 * the error) on fd, and exits. */
static void __attribute__((noreturn))
worker_main(struct sctr *c, int out, int devnull, int fd)
{
	struct orch_err e = {0};
	struct rt_spec spec;
	rt_spec_init(&spec);
	int r = ctrspec_load(json_object_get(c->rec, "spec"), &spec, &e);
	if (r == 0) {
		spec.id = c->id;
		spec.stdio[0] = devnull;
		spec.stdio[1] = out;
		spec.stdio[2] = out;
		/* A leftover of an earlier run (cgroup, runtime state)
		 * would make the id collide; the upper dir is kept, as
		 * docker keeps a container's filesystem across restarts. */
		struct orch_err ign = {0};
		rt_delete(c->id, false, &ign);
		struct rt_container *rc = NULL;
		r = rt_create(&spec, &rc, &e);
		if (r < 0)
			err_wrap(&e, "creating %s", c->name);
		else if (rt_start(rc, &e) < 0) {
			err_wrap(&e, "starting %s", c->name);
			rt_kill(c->id, SIGKILL, &ign);
			int st;
			rt_wait(rc, &st, &ign);
			rt_delete(c->id, false, &ign);
		} else {
			char buf[32];
			int n = snprintf(buf, sizeof(buf), "%d", (int)rc->pid);
			_exit(write(fd, buf, (size_t)n) == n ? 0 : 1);
		}
	}
	char buf[sizeof(e.msg) + 1];
	int n = snprintf(buf, sizeof(buf), "!%s", e.msg);
	_exit(write(fd, buf, (size_t)n) == n ? 0 : 1);
}

/* Starts creating c in a worker (or queues it when enough work). */
static void ctr_start(struct sctr *c, size_t idx, bool restart)
{
	if (c->state == C_RUNNING || c->worker || c->queued)
		return;
	free(c->start_err);
	c->start_err = NULL;
	c->restarting = restart;
	if (S.n_workers >= MAX_WORKERS) {
		c->queued = true;
		return;
	}
	int r = fifo_open(c, idx);
	_cleanup_free_ char *fifo = log_path(c, ".fifo");
	_cleanup_close_ int out =
		r < 0 ? -1 : open(fifo, O_RDWR | O_CLOEXEC);
	_cleanup_close_ int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int p[2] = {-1, -1};
	if (out < 0 || pipe2(p, O_CLOEXEC) < 0) {
		c->start_err = xasprintf("starting %s: opening its log pipe: %s",
					 c->name, strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		worker_main(c, out, devnull, p[1]);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		c->start_err = xasprintf("starting %s: fork: %s", c->name,
					 strerror(errno));
		return;
	}
	c->worker = pid;
	c->worker_fd = p[0];
	S.n_workers++;
	ep_add(p[0], TAG(K_WORKER, idx));
}

static void start_failed(struct sctr *c)
{
	log_warn("%s", c->start_err);
	log_line(c, c->start_err, strlen(c->start_err));
	if (!c->restarting)
		return;
	/* A restart that fails counts as a failed run. */
	c->exit_code = 127;
	if (restart_wanted(&c->rp, 127, c->restarts, c->user_stopped))
		c->restart_at = mono_ms() + backoff_next(&c->backoff, 0);
	else
		set_state(c, C_EXITED);
}

static void ctr_started(struct sctr *c, size_t idx, pid_t pid)
{
	S.trim = true;
	proc_watch(c, idx, pid, -1);
	c->started_mono = mono_ms();
	wall_ts(c->started_at, sizeof(c->started_at));
	c->stopping = false;
	c->stop_deadline = 0;
	c->restart_at = 0;
	c->exit_code = 0;
	set_state(c, C_RUNNING);
	if (c->hc_argv) {
		c->health = H_STARTING;
		c->hc_fails = 0;
		hc_schedule(c, c->started_mono);
	}
	event(c, c->restarting ? "restart" : "start", NULL);
}

static void worker_done(struct sctr *c, size_t idx)
{
	char buf[1200];
	size_t len = 0;
	for (;;) {
		ssize_t n = RETRY_EINTR(
			read(c->worker_fd, buf + len, sizeof(buf) - 1 - len));
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	ep_del(c->worker_fd);
	close(c->worker_fd);
	c->worker_fd = -1;
	/* Once the worker is gone the container is our child. */
	RETRY_EINTR(waitpid(c->worker, NULL, 0));
	c->worker = 0;
	S.n_workers--;
	pid_t pid = buf[0] && buf[0] != '!' ? atoi(buf) : 0;
	if (pid > 0) {
		ctr_started(c, idx, pid);
		/* A stop asked for while it was being created. */
		if (c->user_stopped) {
			c->stopping = true;
			pidfd_send_signal(c->pidfd, SIGKILL, NULL, 0);
		}
	}
	else {
		c->start_err = xstrdup(buf[0] == '!' ? buf + 1
						     : "the worker died");
		start_failed(c);
	}
	for (size_t i = 0; i < S.n && S.n_workers < MAX_WORKERS; i++)
		if (!S.c[i].gone && S.c[i].queued) {
			S.c[i].queued = false;
			ctr_start(&S.c[i], i, S.c[i].restarting);
		}
}

/* Whether PID 1 of the container catches sig; one that does not can
 * never receive it (the kernel drops unhandled signals to a namespace's
 * init), so waiting a grace period for it is pointless. */
static bool catches(pid_t pid, int sig)
{
	_cleanup_free_ char *p = xasprintf("/proc/%d/status", (int)pid);
	_cleanup_fclose_ FILE *f = fopen(p, "re");
	if (!f)
		return false;
	char line[256];
	while (fgets(line, sizeof(line), f))
		if (startswith(line, "SigCgt:")) {
			unsigned long long mask = strtoull(line + 7, NULL, 16);
			return (mask >> (sig - 1)) & 1;
		}
	return true;
}

static void ctr_signal(struct sctr *c, int sig)
{
	if (c->pidfd >= 0 && pidfd_send_signal(c->pidfd, sig, NULL, 0) == 0)
		return;
	struct orch_err ign = {0};
	rt_kill(c->id, sig, &ign);
}

static void ctr_stop(struct sctr *c, int64_t grace_ms)
{
	c->user_stopped = true;
	c->restart_at = 0;
	if (c->state == C_RESTARTING) {
		set_state(c, C_EXITED);
		return;
	}
	if (c->state != C_RUNNING)
		return;
	if (c->stopping && grace_ms != 0)
		return;
	c->stopping = true;
	int sig = c->stop_signal;
	if (grace_ms < 0)
		grace_ms = c->stop_grace_ms;
	if (sig == SIGKILL || grace_ms == 0 || !catches(c->pid, sig)) {
		ctr_signal(c, SIGKILL);
		return;
	}
	ctr_signal(c, sig);
	c->stop_deadline = mono_ms() + grace_ms;
}

/* ---- the keeper ------------------------------------------------------------ */

/* A supervisor runs under a keeper: a copy of itself forked at start-up
 * that only waits.  It is a subreaper, so when the supervisor is killed
 * its containers become the keeper's children rather than init's; it
 * reaps them and writes each exit code to exits/PID, where the next
 * supervisor, which re-adopted them, reads it.  It exits with its last
 * child. */
static char *exit_record(pid_t pid)
{
	return xasprintf("%s/exits/%d", S.dir, (int)pid);
}

static _Noreturn void keeper_main(pid_t supervisor)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	prctl(PR_SET_NAME, "orch-keeper");
	close_range(3, ~0U, 0);
	_cleanup_free_ char *dir = path_join(S.dir, "exits");
	for (;;) {
		siginfo_t si = {0};
		if (waitid(P_ALL, 0, &si, WEXITED) < 0) {
			if (errno == EINTR)
				continue;
			_exit(0); /* ECHILD: nothing left to keep */
		}
		if (si.si_pid == supervisor || si.si_pid <= 0)
			continue;
		int code = si.si_code == CLD_EXITED ? si.si_status
						    : 128 + si.si_status;
		mkdir(dir, 0750);
		_cleanup_free_ char *path = exit_record(si.si_pid);
		char txt[16];
		int n = snprintf(txt, sizeof(txt), "%d\n", code);
		write_file_atomic(path, txt, (size_t)n, 0640, NULL);
	}
}

/* The exit code of an adopted process that is gone, from its keeper
 * (which reaps it at once; give it a moment), else -1. */
static int kept_exit_code(pid_t pid)
{
	_cleanup_free_ char *path = exit_record(pid);
	for (int i = 0; i < 50; i++) {
		_cleanup_free_ char *txt = NULL;
		if (read_file(path, &txt, NULL, NULL) == 0) {
			unlink(path);
			return atoi(txt);
		}
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -1;
}

static void ctr_exited(struct sctr *c, size_t idx)
{
	(void)idx;
	/* Our child since its worker exited; an adopted one is a child of
	 * the keeper of the supervisor that started it, which records its
	 * exit code. */
	int code = -1;
	siginfo_t si = {0};
	if (c->pidfd >= 0 &&
	    waitid(P_PIDFD, c->pidfd, &si, WEXITED | WNOHANG) == 0 &&
	    si.si_pid) {
		if (si.si_code == CLD_EXITED)
			code = si.si_status;
		else
			code = 128 + si.si_status;
	} else if (c->pid > 0) {
		code = kept_exit_code(c->pid);
	}
	if (c->pidfd >= 0) {
		ep_del(c->pidfd);
		close(c->pidfd);
	}
	c->pidfd = -1;
	c->pid = 0;
	hc_cancel(c);
	/* Whatever the process wrote last is logged before it is reported
	 * dead. */
	if (c->fifo_fd >= 0)
		fifo_drain(c);
	struct orch_err ign = {0};
	rt_delete(c->id, false, &ign);
	c->exit_code = code;
	wall_ts(c->finished_at, sizeof(c->finished_at));
	c->stop_deadline = 0;
	bool was_stopping = c->stopping;
	c->stopping = false;
	json_t *a = json_pack("{s:i}", "exitCode", code);
	event(c, "die", a);
	int64_t ran = mono_ms() - c->started_mono;
	if (!was_stopping &&
	    restart_wanted(&c->rp, code, c->restarts, c->user_stopped)) {
		c->restart_at = mono_ms() + backoff_next(&c->backoff, ran);
		set_state(c, C_RESTARTING);
	} else
		set_state(c, C_EXITED);
}

/* ---- health checks ------------------------------------------------------- */

static void hc_run(struct sctr *c, size_t idx, int64_t now)
{
	_cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	struct rt_exec_spec x = {
		.argv = c->hc_argv,
		.stdio = {devnull, devnull, devnull},
	};
	struct orch_err e = {0};
	pid_t pid;
	c->hc_next = 0;
	if (rt_exec(c->id, &x, &pid, &e) < 0) {
		log_debug("health check of %s: %s", c->name, e.msg);
		c->hc_fails++;
		hc_schedule(c, now);
		return;
	}
	c->hc_pid = pid;
	c->hc_pidfd = pidfd_open(pid, 0);
	if (c->hc_pidfd >= 0)
		ep_add(c->hc_pidfd, TAG(K_HC, idx));
	c->hc_deadline = now + c->hc.timeout;
}

static void hc_result(struct sctr *c, bool ok, int64_t now)
{
	enum health before = c->health;
	c->health = hc_judge(&c->hc, c->health, &c->hc_fails, ok,
			     now - c->started_mono);
	if (c->health != before) {
		json_t *a = json_pack("{s:s}", "healthStatus",
				      health_name(c->health));
		event(c, "health_status", a);
	}
	hc_schedule(c, now);
}

static void hc_done(struct sctr *c)
{
	siginfo_t si = {0};
	bool ok = false;
	if (waitid(P_PIDFD, c->hc_pidfd, &si, WEXITED) == 0)
		ok = si.si_code == CLD_EXITED && si.si_status == 0;
	ep_del(c->hc_pidfd);
	close(c->hc_pidfd);
	c->hc_pidfd = -1;
	c->hc_pid = 0;
	c->hc_deadline = 0;
	if (c->state == C_RUNNING)
		hc_result(c, ok, mono_ms());
}

/* ---- the container table -------------------------------------------------- */

static char **hc_argv_of(const json_t *hc)
{
	char **test = jstrv(hc, "test");
	if (!test || !test[0] || streq(test[0], "NONE")) {
		strv_free(test);
		return NULL;
	}
	char **argv = NULL;
	if (streq(test[0], "CMD-SHELL") && test[1]) {
		strv_push(&argv, "/bin/sh");
		strv_push(&argv, "-c");
		strv_push(&argv, test[1]);
	} else
		for (size_t i = streq(test[0], "CMD") ? 1 : 0; test[i]; i++)
			strv_push(&argv, test[i]);
	strv_free(test);
	return argv;
}

static void ctr_init(struct sctr *c, json_t *rec)
{
	memset(c, 0, sizeof(*c));
	c->rec = json_incref(rec);
	c->name = xstrdup(jstr(rec, "name"));
	c->id = xstrdup(jstr(rec, "id"));
	c->service = xstrdup(jstr(rec, "service") ?: "");
	struct orch_err e = {0};
	if (restart_policy_parse(jstr(rec, "restart"), &c->rp, &e) < 0)
		c->rp.kind = RESTART_NO;
	c->stop_signal = (int)jint(rec, "stop_signal", SIGTERM);
	c->stop_grace_ms = jint(rec, "stop_grace_ms", 10000);
	c->pidfd = c->fifo_fd = c->log_fd = c->hc_pidfd = c->worker_fd = -1;
	c->log_max = jint(rec, "log_max_size", 10 << 20);
	c->log_files = (int)jint(rec, "log_max_files", 2);
	json_t *hc = json_object_get(rec, "healthcheck");
	if (json_is_object(hc)) {
		c->hc_argv = hc_argv_of(hc);
		c->hc.interval = jint(hc, "interval_ms", 30000);
		c->hc.timeout = jint(hc, "timeout_ms", 30000);
		c->hc.start_period = jint(hc, "start_period_ms", 0);
		c->hc.start_interval = jint(hc, "start_interval_ms", 5000);
		c->hc.retries = (int)jint(hc, "retries", 3);
		if (c->hc.retries < 1)
			c->hc.retries = 1;
	}
}

static void ctr_fini(struct sctr *c)
{
	hc_cancel(c);
	if (c->pidfd >= 0) {
		ep_del(c->pidfd);
		close(c->pidfd);
	}
	if (c->fifo_fd >= 0) {
		ep_del(c->fifo_fd);
		close(c->fifo_fd);
	}
	if (c->log_fd >= 0)
		close(c->log_fd);
	if (c->worker_fd >= 0) {
		ep_del(c->worker_fd);
		close(c->worker_fd);
	}
	free(c->start_err);
	json_decref(c->rec);
	free(c->name);
	free(c->id);
	free(c->service);
	free(c->part);
	strv_free(c->hc_argv);
	memset(c, 0, sizeof(*c));
	c->gone = true;
	c->pidfd = c->fifo_fd = c->log_fd = c->hc_pidfd = c->worker_fd = -1;
}

static struct sctr *ctr_find(const char *name, size_t *idx)
{
	for (size_t i = 0; i < S.n; i++)
		if (!S.c[i].gone && (streq(S.c[i].name, name) ||
				     streq(S.c[i].id, name))) {
			if (idx)
				*idx = i;
			return &S.c[i];
		}
	return NULL;
}

/* Re-adopts what the status file says was running: the process is found
 * by the runtime and watched by pidfd (it is no longer our child, so its
 * exit code is lost: -1). */
static void ctr_adopt(struct sctr *c, size_t idx, const json_t *st)
{
	if (!st)
		return;
	c->restarts = (int)jint(st, "restarts", 0);
	c->exit_code = (int)jint(st, "exit_code", 0);
	c->user_stopped = jbool(st, "user_stopped");
	snprintf(c->started_at, sizeof(c->started_at), "%s",
		 jstr(st, "started_at") ?: "");
	snprintf(c->finished_at, sizeof(c->finished_at), "%s",
		 jstr(st, "finished_at") ?: "");
	const char *s = jstr(st, "state");
	if (!s)
		return;
	if (streq(s, "exited")) {
		c->state = C_EXITED;
		return;
	}
	if (!streq(s, "running") && !streq(s, "restarting"))
		return;
	fifo_open(c, idx);
	struct orch_err e = {0};
	pid_t pid;
	int pidfd = -1;
	if (rt_pid(c->id, &pid, &e) == 0)
		pidfd = pidfd_open(pid, 0);
	c->started_mono = mono_ms();
	c->pid = (pid_t)jint(st, "pid", 0);
	if (pidfd >= 0) {
		proc_watch(c, idx, pid, pidfd);
		c->state = C_RUNNING;
		if (c->hc_argv) {
			c->health = H_STARTING;
			hc_schedule(c, c->started_mono);
		}
		return;
	}
	/* It died while nobody watched: its policy decides, as for any
	 * exit. */
	c->state = C_RUNNING;
	c->started_mono = 0;
	ctr_exited(c, idx);
}

/* (Re)reads state.json: new records are added as created, records gone
 * from it are dropped (the CLI stopped them first). */
static int load_state(json_t *status)
{
	_cleanup_free_ char *sf = path_join(S.dir, "state.json");
	json_error_t je;
	json_t *st = json_load_file(sf, 0, &je);
	if (!st)
		return -ENOENT;
	json_decref(S.state);
	S.state = st;
	json_t *ctrs = json_object_get(st, "containers");
	for (size_t i = 0; i < S.n; i++) {
		if (S.c[i].gone)
			continue;
		bool keep = false;
		size_t k;
		json_t *r;
		json_array_foreach(ctrs, k, r)
		{
			const char *id = jstr(r, "id");
			if (id && streq(id, S.c[i].id))
				keep = true;
		}
		if (!keep) {
			if (S.c[i].state == C_RUNNING)
				ctr_signal(&S.c[i], SIGKILL);
			event(&S.c[i], "destroy", NULL);
			ctr_fini(&S.c[i]);
		}
	}
	size_t k;
	json_t *r;
	json_array_foreach(ctrs, k, r)
	{
		const char *id = jstr(r, "id"), *name = jstr(r, "name");
		if (!id || !name || ctr_find(id, NULL))
			continue;
		size_t idx = S.n;
		for (size_t i = 0; i < S.n; i++)
			if (S.c[i].gone) {
				idx = i;
				break;
			}
		if (idx == S.n)
			S.c = xrealloc(S.c, ++S.n * sizeof(*S.c));
		ctr_init(&S.c[idx], r);
		json_t *known = json_object_get(status, name);
		if (known)
			ctr_adopt(&S.c[idx], idx, known);
		else
			event(&S.c[idx], "create", NULL);
	}
	S.dirty = true;
	return 0;
}

static json_t *ctr_status(const struct sctr *c)
{
	json_t *j = json_pack(
		"{s:s, s:s, s:s, s:s, s:i, s:i, s:b, s:s, s:s, s:s, s:i}",
		"name", c->name, "id", c->id, "service", c->service, "state",
		cstate_names[c->state], "exit_code", c->exit_code, "restarts",
		c->restarts, "user_stopped", c->user_stopped, "health",
		health_name(c->health), "started_at", c->started_at,
		"finished_at", c->finished_at, "pid", (int)c->pid);
	return j;
}

static void save_status(void)
{
	if (!S.dirty)
		return;
	S.dirty = false;
	json_t *all = json_object();
	for (size_t i = 0; i < S.n; i++)
		if (!S.c[i].gone)
			json_object_set_new(all, S.c[i].name,
					    ctr_status(&S.c[i]));
	char *txt = json_dumps(all, JSON_COMPACT);
	json_decref(all);
	_cleanup_free_ char *sf = path_join(S.dir, "status.json");
	struct orch_err e = {0};
	if (txt && write_file_atomic(sf, txt, strlen(txt), 0644, &e) < 0)
		log_warn("%s", e.msg);
	free(txt);
}

/* ---- control socket ------------------------------------------------------- */

static void client_close(struct client *cl)
{
	ep_del(cl->fd);
	close(cl->fd);
	strv_free(cl->names);
	json_decref(cl->errors);
	memset(cl, 0, sizeof(*cl));
}

static void reply(struct client *cl, json_t *j)
{
	send_line(cl->fd, j);
	json_decref(j);
	client_close(cl);
}

static void reply_ok(struct client *cl)
{
	json_t *j = json_pack("{s:b}", "ok", 1);
	if (cl->errors && json_object_size(cl->errors) > 0) {
		json_t *msgs = json_array();
		const char *k;
		json_t *v;
		json_object_foreach(cl->errors, k, v)
			json_array_append(msgs, v);
		json_object_set_new(j, "error", json_string(json_string_value(
							json_array_get(msgs, 0))));
		json_object_set_new(j, "errors", msgs);
	}
	reply(cl, j);
}

static char **req_names(const json_t *req)
{
	char **v = jstrv(req, "names");
	if (v && v[0])
		return v;
	strv_free(v);
	v = xcalloc(1, sizeof(char *));
	for (size_t i = 0; i < S.n; i++)
		if (!S.c[i].gone)
			strv_push(&v, S.c[i].name);
	return v;
}

static void client_error(struct client *cl, const char *name, const char *msg)
{
	if (!cl->errors)
		cl->errors = json_object();
	json_object_set_new(cl->errors, name, json_string(msg));
}

/* Starts the named containers; the client is answered when every one
 * has started or failed to. */
static void start_names(struct client *cl, char **names)
{
	for (size_t k = 0; names[k]; k++) {
		size_t idx;
		struct sctr *c = ctr_find(names[k], &idx);
		if (!c) {
			_cleanup_free_ char *m =
				xasprintf("no such container: %s", names[k]);
			client_error(cl, names[k], m);
			continue;
		}
		c->user_stopped = false;
		if (c->state == C_RESTARTING)
			c->restart_at = 0;
		if (c->state != C_RUNNING)
			ctr_start(c, idx, false);
	}
	cl->wait = W_START;
}

/* A waiting client is answered once none of its containers runs. */
static void check_waiters(void)
{
	for (size_t i = 0; i < S.n_cl; i++) {
		struct client *cl = &S.cl[i];
		if (!cl->used || cl->wait == W_NONE || cl->wait == W_EVENTS)
			continue;
		bool busy = false;
		for (size_t k = 0; cl->names[k]; k++) {
			struct sctr *c = ctr_find(cl->names[k], NULL);
			if (c && (c->worker || c->queued ||
				  (cl->wait != W_START &&
				   c->state == C_RUNNING)))
				busy = true;
		}
		if (busy)
			continue;
		if (cl->wait == W_RESTART) {
			start_names(cl, cl->names);
			continue;
		}
		if (cl->wait == W_START)
			for (size_t k = 0; cl->names[k]; k++) {
				struct sctr *c = ctr_find(cl->names[k], NULL);
				if (c && c->start_err)
					client_error(cl, cl->names[k],
						     c->start_err);
			}
		if (cl->wait == W_REMOVE)
			for (size_t k = 0; cl->names[k]; k++) {
				struct sctr *c = ctr_find(cl->names[k], NULL);
				if (!c)
					continue;
				struct orch_err e = {0};
				rt_delete(c->id, true, &e);
				event(c, "destroy", NULL);
				ctr_fini(c);
				S.dirty = true;
			}
		reply_ok(cl);
	}
}

static void handle_request(struct client *cl, json_t *req)
{
	const char *op = jstr(req, "op");
	if (!op)
		op = "";
	if (streq(op, "status")) {
		json_t *a = json_array();
		for (size_t i = 0; i < S.n; i++)
			if (!S.c[i].gone)
				json_array_append_new(a, ctr_status(&S.c[i]));
		reply(cl, json_pack("{s:b, s:o, s:i}", "ok", 1, "containers",
				    a, "pid", (int)getpid()));
	} else if (streq(op, "reload")) {
		_cleanup_free_ char *sf = path_join(S.dir, "status.json");
		json_t *st = json_load_file(sf, 0, NULL);
		load_state(st);
		json_decref(st);
		reply_ok(cl);
	} else if (streq(op, "start")) {
		cl->names = req_names(req);
		start_names(cl, cl->names);
		check_waiters();
	} else if (streq(op, "stop") || streq(op, "restart") ||
		   streq(op, "remove")) {
		cl->names = req_names(req);
		int64_t t = jint(req, "timeout_ms", -1);
		for (size_t k = 0; cl->names[k]; k++) {
			struct sctr *c = ctr_find(cl->names[k], NULL);
			if (c)
				ctr_stop(c, streq(op, "remove") &&
						    jbool(req, "force")
					    ? 0
					    : t);
		}
		cl->wait = streq(op, "stop")	  ? W_STOP
			   : streq(op, "restart") ? W_RESTART
						  : W_REMOVE;
		check_waiters();
	} else if (streq(op, "kill")) {
		char **names = req_names(req);
		int sig = (int)jint(req, "signal", SIGKILL);
		for (size_t k = 0; names[k]; k++) {
			struct sctr *c = ctr_find(names[k], NULL);
			if (c && c->state == C_RUNNING) {
				/* As docker: a signal meant to end it (SIGKILL
				 * or its stop signal) keeps it down; another
				 * (a reload) does not. */
				if (sig == SIGKILL || sig == c->stop_signal)
					c->user_stopped = true;
				ctr_signal(c, sig);
				event(c, "kill", json_pack("{s:s}", "signal",
							   signal_name(sig)));
			}
		}
		strv_free(names);
		reply_ok(cl);
	} else if (streq(op, "events")) {
		cl->wait = W_EVENTS;
	} else if (streq(op, "exit")) {
		S.exiting = true;
		reply_ok(cl);
	} else
		reply(cl, json_pack("{s:s}", "error", "unknown request"));
}

static void client_read(struct client *cl)
{
	char buf[65536];
	ssize_t n = RETRY_EINTR(recv(cl->fd, buf, sizeof(buf) - 1, 0));
	if (n <= 0) {
		client_close(cl);
		return;
	}
	if (cl->wait != W_NONE)
		return; /* nothing more is expected from a waiting client */
	buf[n] = '\0';
	json_t *req = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
	if (!json_is_object(req)) {
		json_decref(req);
		reply(cl, json_pack("{s:s}", "error", "malformed request"));
		return;
	}
	handle_request(cl, req);
	json_decref(req);
}

static void client_accept(void)
{
	int fd = accept4(S.lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* Only the project's owner (and root) may drive it. */
	struct ucred cr;
	socklen_t len = sizeof(cr);
	uid_t owner = (uid_t)jint(S.state, "owner_uid", 0);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ||
	    (cr.uid != 0 && cr.uid != owner && cr.uid != getuid())) {
		close(fd);
		return;
	}
	size_t i = 0;
	while (i < S.n_cl && S.cl[i].used)
		i++;
	if (i == S.n_cl)
		S.cl = xrealloc(S.cl, ++S.n_cl * sizeof(*S.cl));
	memset(&S.cl[i], 0, sizeof(S.cl[i]));
	S.cl[i].fd = fd;
	S.cl[i].used = true;
	ep_add(fd, TAG(K_CLIENT, i));
}

/* As a subreaper we inherit whatever a worker leaves behind; what is not
 * a container, health check or worker of ours is reaped here. */
static bool pid_known(pid_t pid)
{
	for (size_t i = 0; i < S.n; i++)
		if (!S.c[i].gone && (S.c[i].pid == pid || S.c[i].worker == pid ||
				     S.c[i].hc_pid == pid))
			return true;
	return false;
}

static void reap_strays(void)
{
	for (;;) {
		siginfo_t si = {0};
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    si.si_pid == 0 || pid_known(si.si_pid))
			return;
		waitpid(si.si_pid, NULL, WNOHANG);
	}
}

/* ---- timers --------------------------------------------------------------- */

static void run_timers(void)
{
	int64_t now = mono_ms();
	for (size_t i = 0; i < S.n; i++) {
		struct sctr *c = &S.c[i];
		if (c->gone)
			continue;
		if (c->state == C_RESTARTING && c->restart_at &&
		    c->restart_at <= now) {
			c->restart_at = 0;
			c->restarts++;
			ctr_start(c, i, true);
			if (c->start_err)
				start_failed(c);
		}
		if (c->state == C_RUNNING && c->stop_deadline &&
		    c->stop_deadline <= now) {
			c->stop_deadline = 0;
			ctr_signal(c, SIGKILL);
		}
		if (c->hc_deadline && c->hc_deadline <= now && c->hc_pidfd >= 0) {
			hc_cancel(c);
			hc_result(c, false, now);
		}
		if (c->state == C_RUNNING && c->hc_next && c->hc_next <= now &&
		    c->hc_pidfd < 0)
			hc_run(c, i, now);
	}
}

static void arm_timer(void)
{
	int64_t next = 0;
	for (size_t i = 0; i < S.n; i++) {
		struct sctr *c = &S.c[i];
		if (c->gone)
			continue;
		int64_t t[] = {c->restart_at, c->stop_deadline, c->hc_deadline,
			       c->hc_pidfd < 0 ? c->hc_next : 0};
		for (size_t k = 0; k < ARRAY_SIZE(t); k++)
			if (t[k] && (!next || t[k] < next))
				next = t[k];
	}
	struct itimerspec its = {0};
	if (next) {
		int64_t d = next - mono_ms();
		if (d < 1)
			d = 1;
		its.it_value.tv_sec = d / 1000;
		its.it_value.tv_nsec = (d % 1000) * 1000000;
	}
	timerfd_settime(S.tfd, 0, &its, NULL);
}

/* ---- main ------------------------------------------------------------------ */

static int listen_ctl(struct orch_err *e)
{
	_cleanup_free_ char *path = path_join(S.dir, "ctl.sock");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, ENAMETOOLONG, "socket path too long: %s",
			       path);
	strcpy(sa.sun_path, path);
	unlink(path);
	S.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (S.lfd < 0 ||
	    bind(S.lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(S.lfd, 64) < 0)
		return err_sys(e, errno, "listening on %s", path);
	chmod(path, 0666);
	return 0;
}

int supervise_main(const char *project)
{
	struct orch_err e = {0};
	S.project = project;
	S.dir = xasprintf("%s/projects/%s", orch_run(), project);
	/* The keeper is our parent: we go on in the child. */
	pid_t child = fork();
	if (child > 0)
		keeper_main(child);
	if (child < 0)
		log_warn("supervisor of %s: no keeper (%s): exit codes of "
			 "containers outliving this supervisor will be lost",
			 project, strerror(errno));
	/* One supervisor per project: the pid file stays locked for life. */
	_cleanup_free_ char *pidf = path_join(S.dir, "supervisor.pid");
	int pfd = open(pidf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (pfd < 0 || flock(pfd, LOCK_EX | LOCK_NB) < 0) {
		log_error("project %s already has a supervisor", project);
		return 1;
	}
	char pidtxt[32];
	int n = snprintf(pidtxt, sizeof(pidtxt), "%d\n", (int)getpid());
	if (ftruncate(pfd, 0) < 0 || pwrite(pfd, pidtxt, (size_t)n, 0) != n) {
		log_error("writing %s: %s", pidf, strerror(errno));
		return 1;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	_cleanup_free_ char *logs = path_join(S.dir, "logs");
	mkdir(logs, 0750);

	/* Signals come through a self-pipe rather than a signalfd: a
	 * blocked mask (or SIG_IGN) would be inherited by the containers
	 * across exec, while handlers are reset there. */
	int sp[2];
	if (pipe2(sp, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("supervisor of %s: %s", project, strerror(errno));
		return 1;
	}
	S.sfd = sp[0];
	sig_pipe = sp[1];
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	S.ep = epoll_create1(EPOLL_CLOEXEC);
	S.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (S.ep < 0 || S.tfd < 0) {
		log_error("supervisor of %s: %s", project, strerror(errno));
		return 1;
	}
	ep_add(S.sfd, TAG(K_SIGNAL, 0));
	ep_add(S.tfd, TAG(K_TIMER, 0));

	_cleanup_free_ char *sf = path_join(S.dir, "status.json");
	json_t *status = json_load_file(sf, 0, NULL);
	int r = load_state(status);
	json_decref(status);
	if (r < 0) {
		log_error("project %s has no state", project);
		return 1;
	}
	if (listen_ctl(&e) < 0) {
		log_error("%s", e.msg);
		return 1;
	}
	ep_add(S.lfd, TAG(K_LISTEN, 0));
	save_status();

	/* Tell the starter we listen. */
	const char *ready = getenv("ORCH_SUPERVISOR_READY");
	if (ready) {
		int fd = atoi(ready);
		ssize_t w = write(fd, "1", 1);
		(void)w;
		close(fd);
		unsetenv("ORCH_SUPERVISOR_READY");
	}

	while (!S.exiting) {
		arm_timer();
		struct epoll_event evs[32];
		int k = epoll_wait(S.ep, evs, ARRAY_SIZE(evs), -1);
		if (k < 0 && errno != EINTR)
			break;
		for (int i = 0; i < k; i++) {
			uint32_t kind = (uint32_t)(evs[i].data.u64 >> 32);
			size_t idx = (uint32_t)evs[i].data.u64;
			switch (kind) {
			case K_SIGNAL: {
				char sig;
				while (read(S.sfd, &sig, 1) > 0)
					/* TERM/INT/HUP: leave the
					 * containers running; a new
					 * supervisor adopts them. */
					if (sig != SIGPIPE)
						S.exiting = true;
				break;
			}
			case K_TIMER: {
				uint64_t x;
				ssize_t rd = read(S.tfd, &x, sizeof(x));
				(void)rd;
				break;
			}
			case K_LISTEN:
				client_accept();
				break;
			case K_CLIENT:
				if (idx < S.n_cl && S.cl[idx].used)
					client_read(&S.cl[idx]);
				break;
			case K_PROC:
				if (idx < S.n && !S.c[idx].gone &&
				    S.c[idx].pidfd >= 0)
					ctr_exited(&S.c[idx], idx);
				break;
			case K_FIFO:
				if (idx < S.n && !S.c[idx].gone)
					fifo_drain(&S.c[idx]);
				break;
			case K_WORKER:
				if (idx < S.n && !S.c[idx].gone &&
				    S.c[idx].worker)
					worker_done(&S.c[idx], idx);
				reap_strays();
				break;
			case K_HC:
				if (idx < S.n && !S.c[idx].gone &&
				    S.c[idx].hc_pidfd >= 0)
					hc_done(&S.c[idx]);
				break;
			}
		}
		run_timers();
		check_waiters();
		save_status();
		/* Creating containers (seccomp profiles, specs) leaves freed
		 * heap behind; give it back, this process stays resident. */
		if (S.trim) {
			malloc_trim(0);
			S.trim = false;
		}
	}
	save_status();
	_cleanup_free_ char *sock = path_join(S.dir, "ctl.sock");
	unlink(sock);
	return 0;
}
