/* Private to orchestrator/supervisor/: the supervisor's tables (its
 * containers and its control clients) and what its files share:
 * supervise.c runs the loop, the containers and their health checks,
 * logs.c their log files and events, control_server.c the control
 * socket. */
#ifndef ORCH_SUPERVISE_IMPL_H
#define ORCH_SUPERVISE_IMPL_H

#include "orchestrator/engine/engine.h"
#include "orchestrator/supervisor/supervisor.h"
#include "runtime/runtime.h"

enum cstate { C_CREATED, C_RUNNING, C_EXITED, C_RESTARTING };
extern const char *const cstate_names[];

/* What of a container's status changes (status.json's entry). */
struct status_key {
	enum cstate state;
	int exit_code, restarts;
	bool user_stopped, paused;
	enum health health;
	pid_t pid;
	char started_at[40], finished_at[40];
};

struct sctr {
	char *name, *id, *service;
	json_t *rec; /* owned reference */
	struct restart_policy rp;
	int stop_signal;
	int64_t stop_grace_ms;
	enum cstate state;
	pid_t pid;
	int pidfd;
	pid_t worker;	 /* the worker creating it, 0 when none */
	int worker_fd;	 /* its report: "<pid>", "~<pid>" or "!<error>" */
	bool queued;	 /* waits for a free worker */
	int report_fd, out_fd; /* the worker's ends, while queued */
	/* Made ahead of its start (up's "create"): the worker's job is to
	 * create it only (prepare); a start meanwhile is kept for after
	 * (want_start); once created, prep waits for the word to exec, and
	 * going says it was given and the exec is awaited on its sync
	 * socket. */
	bool prepare, want_start, going;
	struct rt_container *prep;
	bool restarting; /* this start is a restart (event) */
	char *start_err;
	int exit_code, restarts;
	bool user_stopped, stopping, gone;
	bool paused; /* its cgroup frozen (orch pause) */
	int64_t started_mono, restart_at, stop_deadline, backoff;
	char started_at[40], finished_at[40];

	/* logs: the FIFO's read end, the log file, a partial line */
	int fifo_fd, log_fd;
	bool log_none; /* logging driver none: nothing is kept */
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

	/* Its entry in status.json as last written ("name":{...}), and
	 * what that was made from. */
	char *status_txt;
	struct status_key status_key;
};

enum client_wait { W_NONE, W_STOP, W_RESTART, W_REMOVE, W_EVENTS, W_START };

struct client {
	int fd;
	uid_t uid; /* its peer's */
	struct strbuf in; /* its request, until its newline */
	enum client_wait wait;
	char **names;
	size_t *at; /* where each of names was last found in sup.c */
	json_t *errors;
	bool used;
};

/* epoll tags: kind in the high bits, index below. */
enum {
	K_SIGNAL = 1,
	K_TIMER,
	K_LISTEN,
	K_CLIENT,
	K_PROC,
	K_FIFO,
	K_HC,
	K_WORKER,
	K_WORKER_END,
	K_NETD,
	K_GO
};

/* Containers are created by worker processes (workers.c), several at a
 * time; each container is the supervisor's child from its birth. */
#define MAX_WORKERS 8
#define TAG(k, i)   (((uint64_t)(k) << 32) | (uint32_t)(i))

/* The report on a container, by its worker: "<pid>" or "!<error>". */
enum { REPORT_MAX = 1200 };

struct worker {
	pid_t pid;	    /* 0: a free slot */
	int sock;	    /* our end of its socket; -1 once let go */
	int pidfd;	    /* watched: it ended */
	size_t busy;	    /* containers handed to it, not reported yet */
	int64_t idle_since; /* mono_ms */
};

struct sup {
	const char *project;
	char *dir;
	int ep, sfd, tfd, lfd;
	struct sctr *c;
	size_t n;
	struct client *cl;
	size_t n_cl;
	bool dirty, exiting;
	int64_t trim_at; /* when to give the heap back (mono_ms), 0: no need */
	struct worker w[MAX_WORKERS];
	json_t *state;
};
/* The one supervisor of this process. */
extern struct sup sup;

/* ---- supervise.c: the loop and the containers --------------------------- */

/* Watch fd in the loop under tag (TAG(kind, index)), or stop watching. */
void ep_add(int fd, uint64_t tag);
void ep_del(int fd);
/* RFC 3339 with nanoseconds, UTC (docker's log and event time format). */
void wall_ts(char *buf, size_t n);
/* Queues container idx to be started (restart: after an exit, under its
 * policy); workers_start then gives what is queued to workers. */
void ctr_start(struct sctr *c, size_t idx, bool restart);
/* Queues container idx to be created ahead of its start (a created one,
 * not being made). */
void ctr_prepare(struct sctr *c, size_t idx);
/* A container made ahead and not started is let go: its process ends. */
void prep_drop(struct sctr *c);
/* The worker's ends of a queued container's pipes, closed. */
void queued_fds_close(struct sctr *c);
/* Says why c did not start (c->start_err); a restart counts as a run. */
void start_failed(struct sctr *c);
void ctr_signal(struct sctr *c, int sig);
/* Freezes (pause) or thaws its cgroup; 0 when it is so already. */
int ctr_pause(struct sctr *c, bool pause, struct orch_err *e);
/* SIGTERM (its stop signal), SIGKILL after grace_ms. */
void ctr_stop(struct sctr *c, int64_t grace_ms);
void ctr_fini(struct sctr *c);
/* The container of that name or id (its index in *idx), or NULL. */
struct sctr *ctr_find(const char *name, size_t *idx);
/* The same, looked for by name at *at first (where it was last found;
 * updated). */
struct sctr *ctr_find_at(const char *name, size_t *at);
/* (Re)reads state.json: new records are added as created, records gone
 * from it are dropped (the CLI stopped them first). */
int load_state(json_t *status);
/* Adds the container of record rec, unless one of its id or name is
 * known: as created, or as status (known) says it was. */
void ctr_add(json_t *rec, const json_t *known);
/* status.json written now, if anything changed since. */
void save_status(void);
/* A container as `ps` shows it (the "containers" of a status reply). */
json_t *ctr_status(const struct sctr *c);

/* ---- workers.c: the processes that create the containers -------------- */

/* Where the command line is (the argv the program was given), for a
 * worker to say what it is there. */
void workers_init(char **argv, int argc);
/* As many workers as are wanted, started now. */
void workers_spawn_all(void);
/* Gives the queued containers to workers, as they have room. */
void workers_start(void);
/* One message of a worker's report socket (a SOCK_SEQPACKET), with the
 * descriptors it carries (*n, at most MSG_FDS_MAX); buf is a string. */
enum { MSG_FDS_MAX = 3 };
ssize_t msg_recv(int sock, char *buf, size_t size, int fds[MSG_FDS_MAX],
		 size_t *n);
/* The worker pid reported on a container it was handed. */
void worker_reported(pid_t pid);
bool worker_known(pid_t pid);
/* The worker in that slot ended (its pidfd said): reaped. */
void worker_ended(size_t slot);
/* When the next idle worker is to be let go (mono_ms), 0 for none. */
int64_t workers_deadline(void);
void workers_retire_idle(int64_t now);
/* At exit: every worker let go and waited for. */
void workers_stop(void);

/* ---- logs.c: events and log files ---------------------------------------- */

/* One JSON line to a client. */
void send_line(int fd, json_t *j);
/* An event of c (attrs consumed, may be NULL) to the clients following
 * events. */
void ctr_event(struct sctr *c, const char *action, json_t *attrs);
/* <logs>/<name><suffix>: the log file, its FIFO, the input FIFO of
 * stdin_open; ctr_log_path for c's name. */
char *log_path(const char *name, const char *suffix);
char *ctr_log_path(const struct sctr *c, const char *suffix);
void ctr_log_line(struct sctr *c, const char *line, size_t len);
/* Reads what the container wrote to its FIFO, line by line, into its log. */
void fifo_drain(struct sctr *c);
int fifo_open(struct sctr *c, size_t idx);
/* A container's pty (its master), as its log wants it: lines without a
 * carriage return, 80 columns by 24 (in the worker, before the exec). */
int log_pty_setup(int master, struct orch_err *e);
/* The relay of a container's pty to its log pipe, a child of the keeper
 * (it outlives this supervisor as the container does). */
void tty_relay_start(struct sctr *c, int master);

/* ---- control_server.c: the control socket -------------------------------- */

/* Answers the clients whose wait (stop, restart, remove, start) is over. */
void check_waiters(void);
void client_read(struct client *cl);
void client_accept(void);

/* ---- refusals.c: link-only refusals told by netd -------------------------- */

/* Watches the project's refusals, unless it does or must wait (now is
 * mono_ms()); the deadline of the next try, 0 when none is due. */
void refusals_connect(int64_t now);
int64_t refusals_deadline(void);
/* Reads one refusal: a line in the refused container's log, an event. */
void refusals_read(void);

#endif
