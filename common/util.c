/* Memory, strings, buffers and small parsers. */
#include "common/common.h"

#include <ctype.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <spawn.h>
#include <time.h>
#include <wchar.h>

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p)
		abort();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		abort();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		abort();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		abort();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	char *p;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (r < 0)
		abort();
	return p;
}

void strv_push(char ***v, const char *s)
{
	size_t n = strv_len(*v);
	*v = xrealloc(*v, (n + 2) * sizeof(char *));
	(*v)[n] = xstrdup(s);
	(*v)[n + 1] = NULL;
}

char **strv_copy(char *const *v)
{
	size_t n = strv_len(v);
	char **c = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

static int strv_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort(char **v)
{
	if (v)
		qsort(v, strv_len(v), sizeof(char *), strv_cmp);
}

size_t str_fields(char *s, char sep, char **parts, size_t max)
{
	size_t n = 1;
	parts[0] = s;
	for (char *c = s; *c; c++) {
		if (*c != sep)
			continue;
		*c = '\0';
		if (n < max)
			parts[n] = c + 1;
		n++;
	}
	return n;
}

char *strv_join(char *const *v, const char *sep)
{
	struct strbuf sb;
	sb_init(&sb);
	for (size_t i = 0; v && v[i]; i++)
		sb_printf(&sb, "%s%s", i ? sep : "", v[i]);
	return sb_steal(&sb);
}

void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void strvfreep(char ***v)
{
	strv_free(*v);
}

bool strv_contains(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (streq(v[i], s))
			return true;
	return false;
}

void strv_add_unique(char ***v, const char *s)
{
	if (!strv_contains(*v, s))
		strv_push(v, s);
}

/* Width tables come with a UTF-8 locale, whatever the caller's. */
static locale_t utf8;
static void utf8_open(void)
{
	utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

size_t text_columns(const char *s, size_t max, size_t *nbytes)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, utf8_open);
	locale_t old = utf8 ? uselocale(utf8) : (locale_t)0;
	mbstate_t st;
	memset(&st, 0, sizeof(st));
	size_t cols = 0, i = 0, len = strlen(s);
	while (i < len) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s + i, len - i, &st);
		int w = 1;
		if (k == (size_t)-1 || k == (size_t)-2 || k == 0) {
			k = 1;
			memset(&st, 0, sizeof(st));
		} else if ((w = wcwidth(wc)) < 0) {
			w = 1;
		}
		if (cols + (size_t)w > max)
			break;
		cols += (size_t)w;
		i += k;
	}
	if (old)
		uselocale(old);
	if (nbytes)
		*nbytes = i;
	return cols;
}

/* Until the first byte is added, buf is a shared empty string (cap 0), so
 * that it is a string from the start without costing an allocation. */
static char sb_empty[1];

void sb_init(struct strbuf *sb)
{
	sb->buf = sb_empty;
	sb->len = sb->cap = 0;
}

void sb_free(struct strbuf *sb)
{
	if (sb->cap)
		free(sb->buf);
	sb_init(sb);
}

static void sb_grow(struct strbuf *sb, size_t extra)
{
	if (sb->len + extra + 1 <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < sb->len + extra + 1)
		cap *= 2;
	sb->buf = sb->cap ? xrealloc(sb->buf, cap) : xcalloc(1, cap);
	sb->cap = cap;
}

void sb_add(struct strbuf *sb, const void *data, size_t n)
{
	sb_grow(sb, n);
	memcpy(sb->buf + sb->len, data, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void sb_adds(struct strbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sb_grow(sb, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

void sb_truncate(struct strbuf *sb, size_t len)
{
	if (len < sb->len) {
		sb->len = len;
		sb->buf[len] = '\0';
	}
}

char *sb_steal(struct strbuf *sb)
{
	char *p = sb->cap ? sb->buf : xstrdup("");
	sb_init(sb);
	return p;
}

/* Whether env entry e sets the variable of "K=V" kv. */
static bool env_sets(const char *e, const char *kv)
{
	size_t k = strcspn(kv, "=");
	return strncmp(e, kv, k) == 0 && e[k] == '=';
}

int daemon_spawn(const char *path, char *const argv[], const char *log,
		 mode_t mode, const char *ready_var, const char *env_add,
		 int *ready_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = xcalloc(n + 3, sizeof(char *));
	size_t k = 0;
	_cleanup_free_ char *ready = xasprintf("%s=3", ready_var);
	for (size_t i = 0; i < n; i++)
		if (!env_sets(environ[i], ready) &&
		    !(env_add && env_sets(environ[i], env_add)))
			env[k++] = environ[i];
	env[k++] = ready;
	if (env_add)
		env[k++] = (char *)env_add;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log,
					 O_WRONLY | O_CREAT | O_APPEND, mode);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_adddup2(&fa, p[1], 3);
	posix_spawn_file_actions_addclosefrom_np(&fa, 4);
	posix_spawn_file_actions_addchdir_np(&fa, "/");
	pid_t pid;
	int r = posix_spawnp(&pid, path, &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(env);
	close(p[1]);
	if (r != 0) {
		close(p[0]);
		return -r;
	}
	*ready_fd = p[0];
	return 0;
}

static size_t keep_find(const struct keep *k, const char *key)
{
	size_t i = 0;
	while (i < ARRAY_SIZE(k->slot) &&
	       !(k->slot[i].key && streq(k->slot[i].key, key)))
		i++;
	return i;
}

bool keep_get(const struct keep *k, const char *key, union kept *v)
{
	size_t i = keep_find(k, key);
	if (i == ARRAY_SIZE(k->slot))
		return false;
	*v = k->slot[i].v;
	return true;
}

void keep_put(struct keep *k, const char *key, union kept v)
{
	size_t i = keep_find(k, key);
	if (i == ARRAY_SIZE(k->slot)) {
		i = k->next;
		k->next = (k->next + 1) % ARRAY_SIZE(k->slot);
	}
	if (k->slot[i].key) {
		free(k->slot[i].key);
		if (k->drop)
			k->drop(k->slot[i].v);
	}
	k->slot[i].key = xstrdup(key);
	k->slot[i].v = v;
}

int parse_bytes(const char *s, int64_t *out)
{
	if (!s || !*s)
		return -EINVAL;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0 || !isfinite(v))
		return -EINVAL;
	double mult = 1;
	switch (tolower((unsigned char)*end)) {
	case '\0': break;
	case 'b': mult = 1; break;
	case 'k': mult = 1024.0; break;
	case 'm': mult = 1024.0 * 1024; break;
	case 'g': mult = 1024.0 * 1024 * 1024; break;
	case 't': mult = 1024.0 * 1024 * 1024 * 1024; break;
	default: return -EINVAL;
	}
	if (*end) {
		end++;
		/* accept "kb", "mib"-less docker forms: "k", "kb", "m", "mb" */
		if (tolower((unsigned char)*end) == 'b' && mult != 1)
			end++;
		if (*end)
			return -EINVAL;
	}
	double r = v * mult;
	if (r > 9.2e18)
		return -ERANGE;
	*out = (int64_t)r;
	return 0;
}

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{"HUP", SIGHUP},   {"INT", SIGINT},	  {"QUIT", SIGQUIT},
	{"ILL", SIGILL},   {"TRAP", SIGTRAP},	  {"ABRT", SIGABRT},
	{"BUS", SIGBUS},   {"FPE", SIGFPE},	  {"KILL", SIGKILL},
	{"USR1", SIGUSR1}, {"SEGV", SIGSEGV},	  {"USR2", SIGUSR2},
	{"PIPE", SIGPIPE}, {"ALRM", SIGALRM},	  {"TERM", SIGTERM},
	{"CHLD", SIGCHLD}, {"CONT", SIGCONT},	  {"STOP", SIGSTOP},
	{"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},	  {"TTOU", SIGTTOU},
	{"URG", SIGURG},   {"XCPU", SIGXCPU},	  {"XFSZ", SIGXFSZ},
	{"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
	{"IO", SIGIO},	   {"PWR", SIGPWR},	  {"SYS", SIGSYS},
};

int rlimit_by_name(const char *name)
{
	static const struct {
		const char *name;
		int res;
	} names[] = {
	    {"core", RLIMIT_CORE},	   {"cpu", RLIMIT_CPU},
	    {"data", RLIMIT_DATA},	   {"fsize", RLIMIT_FSIZE},
	    {"locks", RLIMIT_LOCKS},	   {"memlock", RLIMIT_MEMLOCK},
	    {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
	    {"nofile", RLIMIT_NOFILE},	   {"nproc", RLIMIT_NPROC},
	    {"rss", RLIMIT_RSS},	   {"rtprio", RLIMIT_RTPRIO},
	    {"rttime", RLIMIT_RTTIME},	   {"sigpending", RLIMIT_SIGPENDING},
	    {"stack", RLIMIT_STACK},
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (streq(name, names[i].name))
			return names[i].res;
	return -1;
}

/* A limit's value at s, up to stop (':' or the end): a number, or -1
 * for none; *next after it. */
static bool ulimit_value(const char *s, char stop, int64_t *out,
			 const char **next)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || (*end != stop && *end) || errno || v < -1)
		return false;
	*out = v;
	*next = end;
	return true;
}

bool ulimit_parse(const char *s, int *res, int64_t *soft, int64_t *hard,
		  const char **why)
{
	const char *eq = strchr(s, '=');
	char name[16];
	size_t len = eq ? (size_t)(eq - s) : sizeof(name);
	if (len < sizeof(name)) {
		memcpy(name, s, len);
		name[len] = '\0';
	}
	if (len >= sizeof(name) || (*res = rlimit_by_name(name)) < 0) {
		*why = "want NAME=SOFT[:HARD], NAME a limit as docker names "
		       "it (nofile, nproc, core, memlock, stack...)";
		return false;
	}
	const char *next;
	if (!ulimit_value(eq + 1, ':', soft, &next) ||
	    (*next == ':' ? !ulimit_value(next + 1, '\0', hard, &next)
			  : (*hard = *soft, false))) {
		*why = "want numbers (-1: unlimited)";
		return false;
	}
	if (*hard >= 0 && (*soft < 0 || *soft > *hard)) {
		*why = "the soft limit is above the hard one";
		return false;
	}
	return true;
}

int run_program(char *const argv[], char *out, size_t size,
		struct orch_err *e)
{
	int o[2], p[2];
	if (pipe2(o, O_CLOEXEC) < 0)
		return err_sys(e, errno, "pipe");
	if (pipe2(p, O_CLOEXEC) < 0) {
		close(o[0]);
		close(o[1]);
		return err_sys(e, errno, "pipe");
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, o[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	pid_t pid;
	int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(o[1]);
	close(p[1]);
	if (r != 0) {
		close(o[0]);
		close(p[0]);
		return err_sys(e, r, "running %s", argv[0]);
	}
	/* Both read as they come: either may fill its pipe first. */
	char msg[512], sink[512];
	size_t n_out = 0, n_msg = 0;
	struct pollfd pf[2] = {{.fd = o[0], .events = POLLIN},
			       {.fd = p[0], .events = POLLIN}};
	while (pf[0].fd >= 0 || pf[1].fd >= 0) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			char *buf = sink;
			size_t room = sizeof(sink);
			if (i == 0 && out && n_out + 1 < size) {
				buf = out + n_out;
				room = size - 1 - n_out;
			} else if (i == 1 && n_msg + 1 < sizeof(msg)) {
				buf = msg + n_msg;
				room = sizeof(msg) - 1 - n_msg;
			}
			ssize_t k = RETRY_EINTR(read(pf[i].fd, buf, room));
			if (k <= 0) {
				close(pf[i].fd);
				pf[i].fd = -1;
			} else if (buf != sink) {
				*(i == 0 ? &n_out : &n_msg) += (size_t)k;
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
	if (out && size)
		out[n_out] = '\0';
	msg[n_msg] = '\0';
	msg[strcspn(msg, "\n")] = '\0';
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return err_sys(e, errno, "waiting for %s", argv[0]);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return err_set(e, EIO, "%s: %s", argv[0],
			       *msg ? msg : "failed");
	return 0;
}

bool cpulist_parse(const char *s, uint64_t *mask, size_t nbits)
{
	memset(mask, 0, (nbits + 63) / 64 * sizeof(*mask));
	const char *p = s;
	do {
		char *end;
		if (!isdigit((unsigned char)*p))
			return false;
		unsigned long lo = strtoul(p, &end, 10), hi = lo;
		if (*end == '-') {
			if (!isdigit((unsigned char)end[1]))
				return false;
			hi = strtoul(end + 1, &end, 10);
		}
		if (lo > hi || hi >= nbits)
			return false;
		for (unsigned long c = lo; c <= hi; c++)
			mask[c / 64] |= 1ull << (c % 64);
		p = end;
	} while (*p == ',' && ++p);
	/* The kernel's own lists end with a newline. */
	return *p == '\0' || (*p == '\n' && p[1] == '\0');
}

bool mac_parse(const char *s, unsigned char out[6])
{
	unsigned any = 0;
	for (int i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		if (!isxdigit((unsigned char)p[0]) ||
		    !isxdigit((unsigned char)p[1]) ||
		    (i < 5 ? p[2] != ':' && p[2] != '-' : p[2] != '\0'))
			return false;
		char hex[3] = {p[0], p[1], '\0'};
		out[i] = (unsigned char)strtoul(hex, NULL, 16);
		any |= out[i];
	}
	return any && !(out[0] & 1);
}

int parse_signal(const char *s)
{
	if (!s || !*s)
		return -1;
	if (isdigit((unsigned char)*s)) {
		char *end;
		long n = strtol(s, &end, 10);
		return (*end || n <= 0 || n >= NSIG) ? -1 : (int)n;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		if (strcasecmp(s, signals[i].name) == 0)
			return signals[i].sig;
	return -1;
}

const char *signal_name(int sig)
{
	static __thread char buf[16];
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		if (signals[i].sig == sig) {
			snprintf(buf, sizeof(buf), "SIG%s", signals[i].name);
			return buf;
		}
	snprintf(buf, sizeof(buf), "%d", sig);
	return buf;
}

int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
