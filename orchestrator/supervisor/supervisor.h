/* The per-project supervisor (supervise.c): one process per project that
 * starts the project's containers, restarts them under their policies,
 * runs their health checks, keeps their logs and answers the commands on
 * the project's control socket (the engine's control.c is its client).
 * The binary orch-supervisor and the hidden `orch __supervise NAME` run
 * it.  Its pure parts, in policy.c, are unit-tested on their own. */
#ifndef ORCH_SUPERVISOR_H
#define ORCH_SUPERVISOR_H

#include "common/common.h"

/* The supervisor as a program: argv[1] names the project, whose
 * supervisor runs in this process (it returns only to exit).  The main of
 * orch-supervisor, and of the hidden `orch __supervise NAME` that orch
 * falls back on when orch-supervisor is not installed beside it. */
int supervisor_program(int argc, char **argv);

/* ======================================================================
 * Restart policy and backoff (pure), policy.c
 * ====================================================================== */

enum restart_kind {
	RESTART_NO,
	RESTART_ALWAYS,
	RESTART_ON_FAILURE,
	RESTART_UNLESS_STOPPED,
};
struct restart_policy {
	enum restart_kind kind;
	int max_retries; /* on-failure:N, 0 = unlimited */
};
/* "no", "always", "on-failure[:N]", "unless-stopped". */
int restart_policy_parse(const char *s, struct restart_policy *rp,
			 struct orch_err *e);
/* Whether a container that exited with code (exit_code < 0: unknown) and
 * has been restarted `restarts` times is restarted again.  user_stopped:
 * it was stopped by a command, never restarted. */
bool restart_wanted(const struct restart_policy *rp, int exit_code,
		    int restarts, bool user_stopped);

#define BACKOFF_MIN_MS	 100
#define BACKOFF_MAX_MS	 30000
#define BACKOFF_RESET_MS 10000
/* The delay before the next restart: 100 ms doubling to 30 s; a container
 * that ran for 10 s or more starts again from 100 ms.  *cur is the delay
 * used last time (0 = none yet); updated. */
int64_t backoff_next(int64_t *cur, int64_t ran_ms);

/* ======================================================================
 * Health checks (pure), policy.c
 * ====================================================================== */

enum health { H_NONE, H_STARTING, H_HEALTHY, H_UNHEALTHY };
/* "", "starting", "healthy", "unhealthy": docker's healthStatus. */
const char *health_name(enum health h);

/* A container's health check: its timing (ms) and retries, and where it
 * stands (health, consecutive failures). */
struct hc_policy {
	int64_t interval, timeout, start_period, start_interval;
	int retries;
};
/* The wait before the next check, ran_ms after the container started:
 * start_interval while starting within start_period (when set), else
 * interval. */
int64_t hc_delay(const struct hc_policy *p, enum health h, int64_t ran_ms);
/* The health after a check that passed (ok) or failed, ran_ms after the
 * start; *fails counts consecutive failures.  A failure within the
 * start period while still starting does not count. */
enum health hc_judge(const struct hc_policy *p, enum health h, int *fails,
		     bool ok, int64_t ran_ms);

/* ======================================================================
 * Link-only refusals (pure), policy.c
 * ====================================================================== */

/* What a user reads when link-only refused a connection from service from
 * to service to (proto "tcp", "udp"..., port 0 when none) on the network
 * the project calls net: who, why, and the three ways to allow it.
 * Caller frees. */
char *refusal_text(const char *from, const char *to, const char *proto,
		   unsigned port, const char *net);

/* ======================================================================
 * Log files (pure), policy.c
 * ====================================================================== */

/* The bytes a line of len bytes takes in a log file: the timestamp, a
 * space, the line and its newline. */
#define LOG_LINE_OVERHEAD 40
/* Whether a file of size bytes must be rotated before a line of len bytes
 * is added, to stay within max bytes (0: no limit). */
bool log_full(int64_t size, size_t len, int64_t max);
/* A log file of container name in dir: generation 0 is the current
 * <name>.log, n the n-th older one, <name>.log.n.  Caller frees. */
char *log_file(const char *dir, const char *name, int generation);

#endif
