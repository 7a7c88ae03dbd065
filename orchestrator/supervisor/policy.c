/* The supervisor's pure decisions: restart policies and the backoff
 * between restarts, when health checks run and what they conclude, when
 * and how log files rotate. */
#include "orchestrator/supervisor/supervisor.h"

int restart_policy_parse(const char *s, struct restart_policy *rp,
			 struct orch_err *e)
{
	memset(rp, 0, sizeof(*rp));
	if (!s || !*s || streq(s, "no") || streq(s, "none"))
		rp->kind = RESTART_NO;
	else if (streq(s, "always") || streq(s, "any"))
		rp->kind = RESTART_ALWAYS;
	else if (streq(s, "unless-stopped"))
		rp->kind = RESTART_UNLESS_STOPPED;
	else if (startswith(s, "on-failure")) {
		rp->kind = RESTART_ON_FAILURE;
		const char *n = s + strlen("on-failure");
		if (*n == ':') {
			char *end;
			errno = 0;
			long v = strtol(n + 1, &end, 10);
			if (errno || *end || end == n + 1 || v < 0 ||
			    v > 1000000)
				return err_set(e, EINVAL,
					       "invalid restart policy \"%s\"",
					       s);
			rp->max_retries = (int)v;
		} else if (*n)
			return err_set(e, EINVAL,
				       "invalid restart policy \"%s\"", s);
	} else
		return err_set(e, EINVAL,
			       "invalid restart policy \"%s\": use no, always, "
			       "on-failure[:N] or unless-stopped",
			       s);
	return 0;
}

bool restart_wanted(const struct restart_policy *rp, int exit_code,
		    int restarts, bool user_stopped)
{
	if (user_stopped)
		return false;
	switch (rp->kind) {
	case RESTART_NO:
		return false;
	case RESTART_ALWAYS:
	case RESTART_UNLESS_STOPPED:
		return true;
	case RESTART_ON_FAILURE:
		if (exit_code == 0)
			return false;
		return rp->max_retries == 0 || restarts < rp->max_retries;
	}
	return false;
}

int64_t backoff_next(int64_t *cur, int64_t ran_ms)
{
	if (*cur <= 0 || ran_ms >= BACKOFF_RESET_MS)
		*cur = BACKOFF_MIN_MS;
	else {
		*cur *= 2;
		if (*cur > BACKOFF_MAX_MS)
			*cur = BACKOFF_MAX_MS;
	}
	return *cur;
}

/* ---- health checks ------------------------------------------------------- */

const char *health_name(enum health h)
{
	static const char *const names[] = {"", "starting", "healthy",
					    "unhealthy"};
	return (unsigned)h < ARRAY_SIZE(names) ? names[h] : "";
}

int64_t hc_delay(const struct hc_policy *p, enum health h, int64_t ran_ms)
{
	bool in_start = ran_ms < p->start_period && h == H_STARTING;
	return in_start && p->start_interval > 0 ? p->start_interval
						 : p->interval;
}

enum health hc_judge(const struct hc_policy *p, enum health h, int *fails,
		     bool ok, int64_t ran_ms)
{
	if (ok) {
		*fails = 0;
		return H_HEALTHY;
	}
	if (ran_ms < p->start_period && h == H_STARTING)
		return h;
	if (++*fails >= p->retries)
		return H_UNHEALTHY;
	return h;
}

/* ---- log files ----------------------------------------------------------- */

bool log_full(int64_t size, size_t len, int64_t max)
{
	return max > 0 && size + (int64_t)len + LOG_LINE_OVERHEAD > max;
}

char *log_file(const char *dir, const char *name, int generation)
{
	if (generation == 0)
		return xasprintf("%s/%s.log", dir, name);
	return xasprintf("%s/%s.log.%d", dir, name, generation);
}

/* ---- link-only refusals -------------------------------------------------- */

char *refusal_text(const char *from, const char *to, const char *proto,
		   unsigned port, const char *net)
{
	_cleanup_free_ char *dest =
	    !port		   ? xasprintf("%s (%s)", to, proto)
	    : streq(proto, "tcp") ? xasprintf("%s:%u", to, port)
				  : xasprintf("%s:%u/%s", to, port, proto);
	return xasprintf("%s \u2192 %s refused: %s is not linked to %s (add "
			 "\"links: [%s]\" or \"depends_on\", or set "
			 "enable_icc on network %s)",
			 from, dest, from, to, to, net);
}
