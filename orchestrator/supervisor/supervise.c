/* The project supervisor: one lean process per project, parent of the
 * project's containers.  It applies restart policies with backoff, runs
 * health checks, writes each container's output to its log file and
 * serves the project's control socket.  One epoll loop, no threads:
 * pidfds for processes, one timerfd for every deadline, signalfd.
 *
 * It keeps what it knows in status.json so that a supervisor started after
 * a kill -9 of the previous one re-adopts the running containers. */
#include "orchestrator/supervisor/supervise_impl.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

struct sup sup;
const char *const cstate_names[] = {"created", "running", "exited",
				    "restarting"};

static int sig_pipe = -1;

/* The heap is trimmed this long after the last start. */
enum { TRIM_DELAY_MS = 500 };

static void on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;
	ssize_t w = write(sig_pipe, &c, 1);
	(void)w;
	errno = saved;
}

/* RFC 3339 with nanoseconds, UTC (docker's log and event time format). */
void wall_ts(char *buf, size_t n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, n - k, ".%09ldZ", ts.tv_nsec);
}

void ep_add(int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	if (epoll_ctl(sup.ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		log_warn("epoll add fd %d: %s", fd, strerror(errno));
}

void ep_del(int fd)
{
	epoll_ctl(sup.ep, EPOLL_CTL_DEL, fd, NULL);
}

/* ---- containers ---------------------------------------------------------- */

static void set_state(struct sctr *c, enum cstate st)
{
	c->state = st;
	sup.dirty = true;
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

void queued_fds_close(struct sctr *c)
{
	if (c->report_fd >= 0)
		close(c->report_fd);
	if (c->out_fd >= 0)
		close(c->out_fd);
	c->report_fd = c->out_fd = -1;
}

void prep_drop(struct sctr *c)
{
	if (!c->prep)
		return;
	if (c->going && c->prep->sync_fd >= 0)
		ep_del(c->prep->sync_fd);
	/* Our child: reaped as a stray once it is no longer known. */
	if (c->prep->pidfd >= 0)
		pidfd_send_signal(c->prep->pidfd, SIGKILL, NULL, 0);
	rt_container_free(c->prep);
	c->prep = NULL;
	c->going = false;
}

/* c did not start: what was made of it goes (the next start makes it
 * anew). */
static void go_failed(struct sctr *c, const struct orch_err *e)
{
	c->start_err = xasprintf("starting %s: %s", c->name, e->msg);
	prep_drop(c);
	struct orch_err ign = {0};
	rt_delete(c->id, false, &ign);
	start_failed(c);
}

/* The word to exec, to a container made ahead; the outcome comes on its
 * sync socket (go_done). */
static void prep_go(struct sctr *c, size_t idx)
{
	struct orch_err e = {0};
	if (rt_start_go(c->prep, &e) < 0) {
		go_failed(c, &e);
		return;
	}
	c->going = true;
	ep_add(c->prep->sync_fd, TAG(K_GO, idx));
}

/* Queues c for a worker, its log pipe and report socket made; the caller
 * then runs workers_start.  A failure here is c->start_err. */
void ctr_start(struct sctr *c, size_t idx, bool restart)
{
	if (c->worker && c->prepare) {
		c->want_start = true;
		return;
	}
	/* Not handed to a worker yet: it is made and started at once. */
	if (c->queued)
		c->prepare = false;
	if (c->state == C_RUNNING || c->worker || c->queued || c->going)
		return;
	free(c->start_err);
	c->start_err = NULL;
	c->restarting = restart;
	if (c->prep) {
		prep_go(c, idx);
		return;
	}
	int r = fifo_open(c, idx);
	_cleanup_free_ char *fifo = ctr_log_path(c, ".fifo");
	_cleanup_close_ int out = r < 0 ? -1 : open(fifo, O_RDWR | O_CLOEXEC);
	int p[2] = {-1, -1};
	if (out < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) < 0) {
		c->start_err =
		    xasprintf("starting %s: opening its log pipe: %s", c->name,
			      strerror(errno));
		return;
	}
	c->worker_fd = p[0];
	c->report_fd = p[1];
	c->out_fd = move_fd(out);
	c->queued = true;
}

void ctr_prepare(struct sctr *c, size_t idx)
{
	if (c->state != C_CREATED || c->prep || c->worker || c->queued)
		return;
	c->user_stopped = false;
	ctr_start(c, idx, false);
	c->prepare = c->queued;
}

void start_failed(struct sctr *c)
{
	log_warn("%s", c->start_err);
	ctr_log_line(c, c->start_err, strlen(c->start_err));
	if (!c->restarting)
		return;
	/* A restart that fails counts as a failed run. */
	c->exit_code = 127;
	if (restart_wanted(&c->rp, 127, c->restarts, c->user_stopped))
		c->restart_at = mono_ms() + backoff_next(&c->backoff, 0);
	else
		set_state(c, C_EXITED);
}

static void ctr_started(struct sctr *c, size_t idx, pid_t pid, int pidfd)
{
	sup.trim_at = mono_ms() + TRIM_DELAY_MS;
	proc_watch(c, idx, pid, pidfd);
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
	ctr_event(c, c->restarting ? "restart" : "start", NULL);
}

/* A stop asked for while it was being created or started. */
static void stop_if_asked(struct sctr *c)
{
	if (c->user_stopped) {
		c->stopping = true;
		pidfd_send_signal(c->pidfd, SIGKILL, NULL, 0);
	}
}

/* A container made ahead, created: it waits for its start (given now if
 * one was asked for meanwhile). */
static void ctr_prepared(struct sctr *c, size_t idx, pid_t pid,
			 const int *fds, size_t n)
{
	c->prep = xcalloc(1, sizeof(*c->prep));
	c->prep->id = xstrdup(c->id);
	c->prep->pid = pid;
	c->prep->sync_fd = fds[0];
	/* Not reaped before this report is read (reap_strays). */
	c->prep->pidfd = n == 2 ? fds[1] : pidfd_open(pid, 0);
	bool go = c->want_start;
	c->want_start = false;
	if (c->user_stopped)
		prep_drop(c);
	else if (go)
		prep_go(c, idx);
}

/* The outcome of the word to exec given to a container made ahead. */
static void go_done(struct sctr *c, size_t idx)
{
	ep_del(c->prep->sync_fd);
	c->going = false;
	struct orch_err e = {0};
	if (rt_start_result(c->prep, &e) < 0) {
		go_failed(c, &e);
		return;
	}
	pid_t pid = c->prep->pid;
	int pidfd = c->prep->pidfd;
	c->prep->pidfd = -1;
	rt_container_free(c->prep);
	c->prep = NULL;
	ctr_started(c, idx, pid, pidfd);
	stop_if_asked(c);
}

static void worker_done(struct sctr *c, size_t idx)
{
	char buf[REPORT_MAX];
	int fds[MSG_FDS_MAX] = {-1, -1, -1};
	size_t n_fds = 0;
	/* One message: a container made ahead holds the worker's end until
	 * its exec, so no end of the stream is waited for. */
	msg_recv(c->worker_fd, buf, sizeof(buf), fds, &n_fds);
	/* A container with a terminal: its pty's master comes last, and
	 * the relay to the log starts now. */
	if (buf[0] && buf[0] != '!' && strstr(buf, " pty") && n_fds) {
		int master = fds[--n_fds];
		tty_relay_start(c, master);
		close(master);
	}
	ep_del(c->worker_fd);
	close(c->worker_fd);
	c->worker_fd = -1;
	/* The container is our child already (the worker's sibling). */
	worker_reported(c->worker);
	c->worker = 0;
	bool prepare = c->prepare, made_ahead = buf[0] == '~';
	c->prepare = false;
	pid_t pid = buf[0] && buf[0] != '!' ? atoi(buf + made_ahead) : 0;
	if (prepare && made_ahead && pid > 0 && n_fds) {
		ctr_prepared(c, idx, pid, fds, n_fds);
		workers_start();
		return;
	}
	for (size_t i = 0; i < n_fds; i++)
		close(fds[i]);
	c->want_start = false;
	if (pid > 0 && !made_ahead) {
		ctr_started(c, idx, pid, -1);
		stop_if_asked(c);
	} else {
		c->start_err =
		    xstrdup(buf[0] == '!' ? buf + 1 : "the worker died");
		start_failed(c);
	}
	workers_start();
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

int ctr_pause(struct sctr *c, bool pause, struct orch_err *e)
{
	if (c->paused == pause)
		return 0;
	int r = pause ? rt_pause(c->id, e) : rt_resume(c->id, e);
	if (r < 0)
		return r;
	c->paused = pause;
	sup.dirty = true;
	ctr_event(c, pause ? "pause" : "unpause", NULL);
	return 0;
}

void ctr_signal(struct sctr *c, int sig)
{
	/* A frozen one would not act on it (nor could it die). */
	struct orch_err ign = {0};
	ctr_pause(c, false, &ign);
	if (c->pidfd >= 0 && pidfd_send_signal(c->pidfd, sig, NULL, 0) == 0)
		return;
	rt_kill(c->id, sig, &ign);
}

void ctr_stop(struct sctr *c, int64_t grace_ms)
{
	c->user_stopped = true;
	c->restart_at = 0;
	prep_drop(c);
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
	/* One sharing the host's PID namespace, or another container's, is
	 * no init: its default action on the signal is to end. */
	json_t *spec = json_object_get(c->rec, "spec");
	bool init = !jbool(spec, "pid_host") && !jstr(spec, "pid_of");
	if (sig == SIGKILL || grace_ms == 0 || (init && !catches(c->pid, sig))) {
		ctr_signal(c, SIGKILL);
		return;
	}
	ctr_signal(c, sig);
	c->stop_deadline = mono_ms() + grace_ms;
}

/* ---- the keeper ------------------------------------------------------------
 */

/* A supervisor runs under a keeper: a copy of itself forked at start-up
 * that only waits.  It is a subreaper, so when the supervisor is killed
 * its containers become the keeper's children rather than init's; it
 * reaps them and writes each exit code to exits/PID, where the next
 * supervisor, which re-adopted them, reads it.  Its workers come too (they
 * end with their supervisor): theirs would only wait there for a
 * container that gets the same pid.  It exits with its last child. */
static char *exit_record(pid_t pid)
{
	return xasprintf("%s/exits/%d", sup.dir, (int)pid);
}

static _Noreturn void keeper_main(pid_t supervisor)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	prctl(PR_SET_NAME, "orch-keeper");
	close_range(3, ~0U, 0);
	_cleanup_free_ char *dir = path_join(sup.dir, "exits");
	for (;;) {
		siginfo_t si = {0};
		if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT) < 0) {
			if (errno == EINTR)
				continue;
			_exit(0); /* ECHILD: nothing left to keep */
		}
		/* A worker's name, still readable until it is reaped: a
		 * container's process has its program's (a container that
		 * takes that name only loses its exit code). */
		_cleanup_free_ char *comm = proc_comm(si.si_pid);
		siginfo_t reaped;
		if (waitid(P_PID, (id_t)si.si_pid, &reaped, WEXITED) < 0 ||
		    si.si_pid == supervisor ||
		    (comm && (streq(comm, "orch-worker") ||
			      streq(comm, "orch-tty"))))
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
	c->paused = false;
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
	ctr_event(c, "die", a);
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
	if (c->paused) {
		/* Not run while frozen (it would hang), nor counted. */
		hc_schedule(c, now);
		return;
	}
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
		json_t *a =
		    json_pack("{s:s}", "healthStatus", health_name(c->health));
		ctr_event(c, "health_status", a);
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

/* ---- the container table --------------------------------------------------
 */

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
	c->report_fd = c->out_fd = -1;
	c->log_max = jint(rec, "log_max_size", 10 << 20);
	c->log_files = (int)jint(rec, "log_max_files", 2);
	c->log_none = streq(jstr(rec, "log_driver") ?: "", "none");
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

void ctr_fini(struct sctr *c)
{
	hc_cancel(c);
	prep_drop(c);
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
	/* Its worker's report will find no reader. */
	if (c->worker)
		worker_reported(c->worker);
	queued_fds_close(c);
	free(c->start_err);
	free(c->status_txt);
	json_decref(c->rec);
	free(c->name);
	free(c->id);
	free(c->service);
	free(c->part);
	strv_free(c->hc_argv);
	memset(c, 0, sizeof(*c));
	c->gone = true;
	c->pidfd = c->fifo_fd = c->log_fd = c->hc_pidfd = c->worker_fd = -1;
	c->report_fd = c->out_fd = -1;
}

struct sctr *ctr_find_at(const char *name, size_t *at)
{
	if (*at < sup.n && !sup.c[*at].gone && streq(sup.c[*at].name, name))
		return &sup.c[*at];
	return ctr_find(name, at);
}

struct sctr *ctr_find(const char *name, size_t *idx)
{
	for (size_t i = 0; i < sup.n; i++)
		if (!sup.c[i].gone &&
		    (streq(sup.c[i].name, name) || streq(sup.c[i].id, name))) {
			if (idx)
				*idx = i;
			return &sup.c[i];
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
	c->paused = jbool(st, "paused");
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
int load_state(json_t *status)
{
	_cleanup_free_ char *sf = path_join(sup.dir, "state.json");
	json_error_t je;
	json_t *st = json_load_file(sf, 0, &je);
	if (!st)
		return -ENOENT;
	json_decref(sup.state);
	sup.state = st;
	json_t *ctrs = json_object_get(st, "containers");
	for (size_t i = 0; i < sup.n; i++) {
		if (sup.c[i].gone)
			continue;
		bool keep = false;
		size_t k;
		json_t *r;
		json_array_foreach(ctrs, k, r)
		{
			const char *id = jstr(r, "id");
			if (id && streq(id, sup.c[i].id))
				keep = true;
		}
		if (!keep) {
			if (sup.c[i].state == C_RUNNING)
				ctr_signal(&sup.c[i], SIGKILL);
			ctr_event(&sup.c[i], "destroy", NULL);
			ctr_fini(&sup.c[i]);
		}
	}
	size_t k;
	json_t *r;
	json_array_foreach(ctrs, k, r)
		ctr_add(r, json_object_get(status, jstr(r, "name")));
	return 0;
}

void ctr_add(json_t *rec, const json_t *known)
{
	const char *id = jstr(rec, "id"), *name = jstr(rec, "name");
	if (!id || !name || ctr_find(id, NULL) || ctr_find(name, NULL))
		return;
	size_t idx = sup.n;
	for (size_t i = 0; i < sup.n; i++)
		if (sup.c[i].gone) {
			idx = i;
			break;
		}
	if (idx == sup.n)
		sup.c = xrealloc(sup.c, ++sup.n * sizeof(*sup.c));
	ctr_init(&sup.c[idx], rec);
	if (known)
		ctr_adopt(&sup.c[idx], idx, known);
	else
		ctr_event(&sup.c[idx], "create", NULL);
	sup.dirty = true;
}

json_t *ctr_status(const struct sctr *c)
{
	json_t *j = json_pack(
	    "{s:s, s:s, s:s, s:s, s:i, s:i, s:b, s:s, s:s, s:s, s:i}", "name",
	    c->name, "id", c->id, "service", c->service, "state",
	    cstate_names[c->state], "exit_code", c->exit_code, "restarts",
	    c->restarts, "user_stopped", c->user_stopped, "health",
	    health_name(c->health), "started_at", c->started_at, "finished_at",
	    c->finished_at, "pid", (int)c->pid);
	if (c->paused)
		json_object_set_new(j, "paused", json_true());
	return j;
}

/* status.json is written before any reply (what a client was told is
 * on disk), else at most every STATUS_SAVE_MS: a burst of starts writes
 * it a few times, not once per container. */
enum { STATUS_SAVE_MS = 100 };
static int64_t status_saved_at;

static void status_key_of(const struct sctr *c, struct status_key *k)
{
	memset(k, 0, sizeof(*k));
	k->state = c->state;
	k->exit_code = c->exit_code;
	k->restarts = c->restarts;
	k->user_stopped = c->user_stopped;
	k->paused = c->paused;
	k->health = c->health;
	k->pid = c->pid;
	memcpy(k->started_at, c->started_at, sizeof(k->started_at));
	memcpy(k->finished_at, c->finished_at, sizeof(k->finished_at));
}

/* Each container's entry is made again only when its status changed. */
void save_status(void)
{
	if (!sup.dirty)
		return;
	sup.dirty = false;
	status_saved_at = mono_ms();
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "{");
	for (size_t i = 0; i < sup.n; i++) {
		struct sctr *c = &sup.c[i];
		if (c->gone)
			continue;
		struct status_key k;
		status_key_of(c, &k);
		if (!c->status_txt || memcmp(&k, &c->status_key, sizeof(k))) {
			json_t *o = json_object();
			json_object_set_new(o, c->name, ctr_status(c));
			char *t = json_dumps(o, JSON_COMPACT);
			json_decref(o);
			free(c->status_txt);
			/* Without the braces around it. */
			c->status_txt = t ? xstrndup(t + 1, strlen(t) - 2) : NULL;
			free(t);
			c->status_key = k;
		}
		if (c->status_txt)
			sb_printf(&sb, "%s%s", sb.len > 1 ? "," : "",
				  c->status_txt);
	}
	sb_adds(&sb, "}");
	_cleanup_free_ char *sf = path_join(sup.dir, "status.json");
	struct orch_err e = {0};
	if (write_file_atomic(sf, sb.buf, sb.len, 0600, &e) < 0)
		log_warn("%s", e.msg);
	sb_free(&sb);
}

/* As a subreaper we inherit whatever a worker leaves behind; what is not
 * a container, health check or worker of ours is reaped here. */
static bool pid_known(pid_t pid)
{
	for (size_t i = 0; i < sup.n; i++)
		if (!sup.c[i].gone &&
		    (sup.c[i].pid == pid || sup.c[i].hc_pid == pid ||
		     (sup.c[i].prep && sup.c[i].prep->pid == pid)))
			return true;
	return worker_known(pid);
}

static void reap_strays(void)
{
	/* A container is our child from its birth, before its worker
	 * reports it: none is reaped while a report is awaited. */
	for (size_t i = 0; i < sup.n; i++)
		if (!sup.c[i].gone && sup.c[i].worker)
			return;
	for (;;) {
		siginfo_t si = {0};
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    si.si_pid == 0 || pid_known(si.si_pid))
			return;
		waitpid(si.si_pid, NULL, WNOHANG);
	}
}

/* ---- timers ---------------------------------------------------------------
 */

static void run_timers(void)
{
	int64_t now = mono_ms();
	refusals_connect(now);
	for (size_t i = 0; i < sup.n; i++) {
		struct sctr *c = &sup.c[i];
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
		if (c->hc_deadline && c->hc_deadline <= now &&
		    c->hc_pidfd >= 0) {
			hc_cancel(c);
			hc_result(c, false, now);
		}
		if (c->state == C_RUNNING && c->hc_next && c->hc_next <= now &&
		    c->hc_pidfd < 0)
			hc_run(c, i, now);
	}
	workers_retire_idle(now);
	workers_start();
}

static void arm_timer(void)
{
	int64_t next = 0;
	for (size_t i = 0; i < sup.n; i++) {
		struct sctr *c = &sup.c[i];
		if (c->gone)
			continue;
		int64_t t[] = {c->restart_at, c->stop_deadline, c->hc_deadline,
			       c->hc_pidfd < 0 ? c->hc_next : 0};
		for (size_t k = 0; k < ARRAY_SIZE(t); k++)
			if (t[k] && (!next || t[k] < next))
				next = t[k];
	}
	int64_t more[] = {refusals_deadline(), workers_deadline(),
			  sup.dirty ? status_saved_at + STATUS_SAVE_MS : 0,
			  sup.trim_at};
	for (size_t k = 0; k < ARRAY_SIZE(more); k++)
		if (more[k] && (!next || more[k] < next))
			next = more[k];
	struct itimerspec its = {0};
	if (next) {
		int64_t d = next - mono_ms();
		if (d < 1)
			d = 1;
		its.it_value.tv_sec = d / 1000;
		its.it_value.tv_nsec = (d % 1000) * 1000000;
	}
	timerfd_settime(sup.tfd, 0, &its, NULL);
}

/* ---- main ------------------------------------------------------------------
 */

static int listen_ctl(struct orch_err *e)
{
	_cleanup_free_ char *path = path_join(sup.dir, "ctl.sock");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, ENAMETOOLONG, "socket path too long: %s",
			       path);
	strcpy(sa.sun_path, path);
	unlink(path);
	sup.lfd =
	    socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sup.lfd < 0 ||
	    bind(sup.lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(sup.lfd, 64) < 0)
		return err_sys(e, errno, "listening on %s", path);
	chmod(path, 0666);
	return 0;
}

static int supervise_main(const char *project)
{
	struct orch_err e = {0};
	sup.project = project;
	sup.dir = xasprintf("%s/projects/%s", orch_run(), project);
	/* The keeper is our parent: we go on in the child. */
	pid_t child = fork();
	if (child > 0)
		keeper_main(child);
	if (child < 0)
		log_warn("supervisor of %s: no keeper (%s): exit codes of "
			 "containers outliving this supervisor will be lost",
			 project, strerror(errno));
	/* One supervisor per project: the pid file stays locked for life. */
	_cleanup_free_ char *pidf = path_join(sup.dir, "supervisor.pid");
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
	_cleanup_free_ char *logs = path_join(sup.dir, "logs");
	mkdir(logs, 0750);

	/* Signals come through a self-pipe rather than a signalfd: a
	 * blocked mask (or SIG_IGN) would be inherited by the containers
	 * across exec, while handlers are reset there. */
	int sp[2];
	if (pipe2(sp, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("supervisor of %s: %s", project, strerror(errno));
		return 1;
	}
	sup.sfd = sp[0];
	sig_pipe = sp[1];
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sup.ep = epoll_create1(EPOLL_CLOEXEC);
	sup.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (sup.ep < 0 || sup.tfd < 0) {
		log_error("supervisor of %s: %s", project, strerror(errno));
		return 1;
	}
	ep_add(sup.sfd, TAG(K_SIGNAL, 0));
	ep_add(sup.tfd, TAG(K_TIMER, 0));

	_cleanup_free_ char *sf = path_join(sup.dir, "status.json");
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
	ep_add(sup.lfd, TAG(K_LISTEN, 0));
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
	/* Ready for the first start, which is usually on its way. */
	workers_spawn_all();

	while (!sup.exiting) {
		arm_timer();
		struct epoll_event evs[32];
		int k = epoll_wait(sup.ep, evs, ARRAY_SIZE(evs), -1);
		if (k < 0 && errno != EINTR)
			break;
		for (int i = 0; i < k; i++) {
			uint32_t kind = (uint32_t)(evs[i].data.u64 >> 32);
			size_t idx = (uint32_t)evs[i].data.u64;
			switch (kind) {
			case K_SIGNAL: {
				char sig;
				while (read(sup.sfd, &sig, 1) > 0)
					/* TERM/INT/HUP: leave the
					 * containers running; a new
					 * supervisor adopts them. */
					if (sig != SIGPIPE)
						sup.exiting = true;
				break;
			}
			case K_TIMER: {
				uint64_t x;
				ssize_t rd = read(sup.tfd, &x, sizeof(x));
				(void)rd;
				break;
			}
			case K_LISTEN:
				client_accept();
				break;
			case K_CLIENT:
				if (idx < sup.n_cl && sup.cl[idx].used)
					client_read(&sup.cl[idx]);
				break;
			case K_PROC:
				if (idx < sup.n && !sup.c[idx].gone &&
				    sup.c[idx].pidfd >= 0)
					ctr_exited(&sup.c[idx], idx);
				break;
			case K_FIFO:
				if (idx < sup.n && !sup.c[idx].gone)
					fifo_drain(&sup.c[idx]);
				break;
			case K_WORKER:
				if (idx < sup.n && !sup.c[idx].gone &&
				    sup.c[idx].worker)
					worker_done(&sup.c[idx], idx);
				reap_strays();
				break;
			case K_WORKER_END:
				worker_ended(idx);
				break;
			case K_NETD:
				refusals_read();
				break;
			case K_GO:
				if (idx < sup.n && !sup.c[idx].gone &&
				    sup.c[idx].going)
					go_done(&sup.c[idx], idx);
				reap_strays();
				break;
			case K_HC:
				if (idx < sup.n && !sup.c[idx].gone &&
				    sup.c[idx].hc_pidfd >= 0)
					hc_done(&sup.c[idx]);
				break;
			}
		}
		run_timers();
		check_waiters();
		if (sup.dirty && mono_ms() >= status_saved_at + STATUS_SAVE_MS)
			save_status();
		/* Starting containers (their records, their status) leaves
		 * freed heap behind; given back once a burst of starts is
		 * over (this process stays resident), not after each: each
		 * trim flushes the other CPUs' TLBs, and the next start
		 * faults the pages in again. */
		if (sup.trim_at && mono_ms() >= sup.trim_at) {
			malloc_trim(0);
			sup.trim_at = 0;
		}
	}
	workers_stop();
	save_status();
	_cleanup_free_ char *sock = path_join(sup.dir, "ctl.sock");
	unlink(sock);
	return 0;
}

int supervisor_program(int argc, char **argv)
{
	log_init("orch-supervisor");
	if (argc != 2 || !pstate_name_valid(argv[1])) {
		fprintf(stderr, "usage: orch-supervisor PROJECT\n");
		return 2;
	}
	workers_init(argv, argc);
	return supervise_main(argv[1]);
}
