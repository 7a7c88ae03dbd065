/* Error objects and logging. */
#include "common/common.h"

#include <time.h>

/* Messages are bounded; truncating a very long one is intended (clang
 * has no such warning). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

int err_set_(struct orch_err *e, int code, const char *fmt, ...)
{
	if (code < 0)
		code = -code;
	if (code == 0)
		code = EINVAL;
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
		e->code = code;
	}
	return -code;
}

int err_sys_(struct orch_err *e, int code, const char *fmt, ...)
{
	if (code < 0)
		code = -code;
	if (code == 0)
		code = EIO;
	if (e) {
		char head[768];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(head, sizeof(head), fmt, ap);
		va_end(ap);
		snprintf(e->msg, sizeof(e->msg), "%s: %s", head, strerror(code));
		e->code = code;
	}
	return -code;
}

int err_wrap_(struct orch_err *e, const char *fmt, ...)
{
	if (!e)
		return -EIO;
	char head[768], old[sizeof(e->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	snprintf(e->msg, sizeof(e->msg), "%s: %s", head, old);
	if (e->code == 0)
		e->code = EIO;
	return -e->code;
}

void err_clear(struct orch_err *e)
{
	e->code = 0;
	e->msg[0] = '\0';
}

const char *log_prog = "orch";
enum log_level log_max = LOG_INFO;

void log_init(const char *prog)
{
	log_prog = prog;
	const char *lvl = getenv("ORCH_LOG");
	if (!lvl)
		return;
	if (streq(lvl, "debug"))
		log_max = LOG_DEBUG;
	else if (streq(lvl, "info"))
		log_max = LOG_INFO;
	else if (streq(lvl, "warn"))
		log_max = LOG_WARN;
	else if (streq(lvl, "error"))
		log_max = LOG_ERROR;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	if (lvl > log_max)
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	int saved = errno;
	if (lvl == LOG_INFO)
		fprintf(stderr, "%s: %s\n", log_prog, line);
	else
		fprintf(stderr, "%s: %s: %s\n", log_prog, names[lvl], line);
	errno = saved;
}
