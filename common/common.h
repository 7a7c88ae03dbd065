/* common — the small shared ground of every part of orch: errors, logging,
 * cleanup helpers, strings and buffers, files and the state roots.
 * Nothing project-specific lives here. */
#ifndef ORCH_COMMON_H
#define ORCH_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* ---- cleanup helpers -------------------------------------------------- */

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
void strvfreep(char ***v);

#define _cleanup_free_ __attribute__((cleanup(freep)))
#define _cleanup_close_ __attribute__((cleanup(closep)))
#define _cleanup_fclose_ __attribute__((cleanup(fclosep)))
#define _cleanup_strv_ __attribute__((cleanup(strvfreep)))

/* Hand ownership out of a cleanup variable. */
#define move_ptr(p)                                                        \
	({                                                                 \
		typeof(p) _moved = (p);                                    \
		(p) = NULL;                                                \
		_moved;                                                    \
	})
#define move_fd(fd)                                                        \
	({                                                                 \
		int _moved = (fd);                                         \
		(fd) = -1;                                                 \
		_moved;                                                    \
	})

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define streq(a, b) (strcmp((a), (b)) == 0)
#define startswith(s, p) (strncmp((s), (p), strlen(p)) == 0)
/* s past its leading spaces and tabs. */
static inline const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}
#define RETRY_EINTR(expr)                                                  \
	({                                                                 \
		long _r;                                                   \
		do                                                         \
			_r = (long)(expr);                                 \
		while (_r == -1 && errno == EINTR);                        \
		_r;                                                        \
	})

/* ---- errors ------------------------------------------------------------ */

/* An error says what was being done to which object, and why it failed:
 * "attaching web-1 to myproj_back: creating veth: File exists".
 * Functions return a negative errno and fill the error; callers add
 * context with err_wrap on the way up; only the top prints it. */
struct orch_err {
	int code; /* positive errno, 0 when no error */
	char msg[1024];
};

/* Sets the message (printf format) and code; returns -code. */
int err_set_(struct orch_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Like err_set, with ": strerror(code)" appended. */
int err_sys_(struct orch_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefixes context to an existing message: "ctx: old"; returns -code. */
int err_wrap_(struct orch_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Each of them returns a negative errno, always.  The macros say so where
 * they are called, so that the compiler and the static analyzer know that
 * a caller's `if (r < 0)` catches every failure. */
#define ERR_NEG(x)                                                         \
	__extension__({                                                    \
		int err_r_ = (x);                                          \
		if (err_r_ >= 0)                                           \
			__builtin_unreachable();                           \
		err_r_;                                                    \
	})
#define err_set(...) ERR_NEG(err_set_(__VA_ARGS__))
#define err_sys(...) ERR_NEG(err_sys_(__VA_ARGS__))
#define err_wrap(...) ERR_NEG(err_wrap_(__VA_ARGS__))
void err_clear(struct orch_err *e);

/* ---- logging ----------------------------------------------------------- */

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
extern const char *log_prog; /* "orch", "netd", ... */
extern enum log_level log_max; /* ORCH_LOG=debug|info|warn|error */
void log_init(const char *prog);
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* ---- memory and strings ------------------------------------------------ */

/* These abort on out-of-memory, the one place orch may abort. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* NULL-terminated string vectors. */
static inline size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}
void strv_push(char ***v, const char *s); /* copies s */
char **strv_copy(char *const *v);
void strv_free(char **v);
bool strv_contains(char *const *v, const char *s);
void strv_add_unique(char ***v, const char *s); /* strv_push unless there */

/* Terminal columns that UTF-8 text takes (a wide character 2, "…" 1),
 * counting no further than max columns: *nbytes (may be NULL) gets the
 * bytes of the longest prefix that fits, never half a character.  Bytes
 * that are not UTF-8 take a column each. */
size_t text_columns(const char *s, size_t max, size_t *nbytes);

/* A growable byte buffer, always NUL-terminated: buf is a string (never
 * NULL) from sb_init on. */
struct strbuf {
	char *buf;
	size_t len, cap;
};
void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_add(struct strbuf *sb, const void *data, size_t n);
void sb_adds(struct strbuf *sb, const char *s);
void sb_printf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
char *sb_steal(struct strbuf *sb);
void sb_truncate(struct strbuf *sb, size_t len); /* len <= sb->len */

/* The last values a process looked up, by key, for what cannot change
 * under its key (a file named by its content's hash, a namespace made for
 * a map): when every slot is taken, the oldest goes.  Zeroed to begin;
 * drop (may be NULL) lets go of what a slot held when it is replaced. */
union kept {
	void *ptr;
	int64_t num;
};
struct keep {
	struct {
		char *key;
		union kept v;
	} slot[32];
	size_t next;
	void (*drop)(union kept v);
};
/* Whether key is kept; *v gets its value. */
bool keep_get(const struct keep *k, const char *key, union kept *v);
/* Keeps v under a copy of key, in place of what key had. */
void keep_put(struct keep *k, const char *key, union kept v);

/* "64m", "1g", "512k", "1024", "1.5g" (docker's units, powers of 1024). */
int parse_bytes(const char *s, int64_t *out);
/* "SIGTERM", "TERM", "15" -> 15; -1 when unknown. */
int parse_signal(const char *s);
const char *signal_name(int sig); /* "SIGTERM"; static storage */
/* "02:42:ac:11:00:02" (':' or '-' between the six bytes) -> out; false
 * unless a unicast address (the group bit clear), not all zeros. */
bool mac_parse(const char *s, unsigned char out[6]);
/* "nofile" -> RLIMIT_NOFILE, as docker names the limits; -1 unknown. */
int rlimit_by_name(const char *name);
/* docker's --ulimit NAME=SOFT[:HARD] (-1: unlimited) -> the resource and
 * both values; false (with *why) when it is not one. */
bool ulimit_parse(const char *s, int *res, int64_t *soft, int64_t *hard,
		  const char **why);
#define CPUSET_WORDS 128 /* the kernel's largest NR_CPUS, 8192, in bits */
/* A list of CPUs as the kernel writes them ("0-3,8,10-11") -> one bit per
 * CPU in mask (nbits of them, cleared first); false when it is not one, or
 * names a CPU at or above nbits. */
bool cpulist_parse(const char *s, uint64_t *mask, size_t nbits);

/* ---- files ------------------------------------------------------------- */

/* Writes all len bytes to fd, past short writes and EINTR: 0, or -errno
 * (errno set; EIO for a write of nothing). */
int write_all(int fd, const void *data, size_t len);
/* What from has now (one read, at most 8 KiB), written whole to to; false
 * at from's end or on an error of either.  Allocates nothing. */
bool fd_pass(int from, int to);
/* Writes data to path atomically: temp file in the same directory, fsync,
 * rename, fsync of the directory.  A crash leaves the old or new file.
 * Under ORCH_RUN, which a reboot empties, without the fsyncs. */
int write_file_atomic(const char *path, const void *data, size_t len,
		      mode_t mode, struct orch_err *e);
/* The same without the fsyncs, wherever path is: for a record whose
 * older version is as good after a power cut. */
int write_file_replace(const char *path, const void *data, size_t len,
		       mode_t mode, struct orch_err *e);
/* Syncs the directory holding path (its entries: a rename into it), as
 * far as it can. */
void fsync_parent(const char *path);
/* Reads a whole file (NUL-terminated); *len may be NULL. */
int read_file(const char *path, char **out, size_t *len, struct orch_err *e);
/* Process pid's name (its comm, without the newline; a zombie's too), to
 * free; NULL once it is gone. */
char *proc_comm(pid_t pid);
/* The same from fd, to its end; what names it in errors. */
int read_fd(int fd, const char *what, char **out, size_t *len,
	    struct orch_err *e);
int mkdir_p(const char *path, mode_t mode, struct orch_err *e);
/* One message on a Unix socket with n descriptors (SCM_RIGHTS, at most
 * FDPASS_MAX, the kernel's bound); flags are sendmsg's (MSG_NOSIGNAL
 * always).  0 or -errno. */
#define FDPASS_MAX 253
int fd_sendmsg(int sock, const void *buf, size_t len, const int *fds,
	       size_t n, int flags);
/* One message into buf (its length, 0 at the end, or -errno), and the
 * descriptors it carried (close-on-exec) in fds, *n of them.  More than
 * max, or some lost (truncated): -EBADMSG, buf filled, every one
 * closed. */
ssize_t fd_recvmsg(int sock, void *buf, size_t len, int *fds, size_t max,
		   size_t *n, int flags);
/* Copies everything from in to out (copy_file_range where it can). */
int fd_copy(int in, int out, const char *what, struct orch_err *e);
/* Removes a tree without crossing mount points; "already gone" is success. */
int rm_rf(const char *path, struct orch_err *e);
/* Removes what the directory path holds, as rm_rf, and keeps it. */
int rm_rf_inside(const char *path, struct orch_err *e);
char *path_join(const char *a, const char *b);
/* The path of our own executable (malloc'd); NULL and errno when it
 * cannot be read.  A program of ours looks for its siblings beside it. */
char *self_exe(void);
/* The components of a path, cleaned lexically as Go's filepath.Clean does:
 * empty and "." ones dropped, ".." removes the one before it.  A ".." with
 * nothing before it is dropped too, and sets *above (when given): it would
 * climb above the path's root.  Never NULL. */
char **path_components(const char *p, bool *above);
/* The strings of v with sep between them ("" for none). */
char *strv_join(char *const *v, const char *sep);
void strv_sort(char **v); /* in strcmp order */
/* Splits s in place at each sep: parts gets the first max fields (max >=
 * 1; parts[0] is s).  Returns how many fields there are, which may be
 * more than max. */
size_t str_fields(char *s, char sep, char **parts, size_t max);

/* One bit per port (bits[p / 8] & 1 << p % 8): the local ports of this
 * network namespace's TCP (or UDP) sockets, listening, connected or
 * waiting; a socket bound but neither listening nor connected is not
 * listed.  malloc'd. */
uint8_t *host_ports_held(bool udp);

/* Runs argv (looked up in PATH), its stdin /dev/null, and waits for it:
 * what it writes to stdout goes to out (at most size - 1 bytes, then a
 * NUL; out NULL: dropped); when it fails, the first line of its stderr is
 * the error. */
int run_program(char *const argv[], char *out, size_t size,
		struct orch_err *e);

/* Starts path (argv; looked up in PATH when it has no slash) as a
 * daemon: in a session of its own, in "/", its stdin /dev/null, stdout
 * and stderr appended to log (made with mode), holding nothing of ours
 * but the write end of a pipe as fd 3, which its environment names in
 * ready_var ("ORCH_X_READY=3"); env_add ("K=V", or NULL) is set there
 * too.  It shares our memory until its exec (as
 * posix_spawn's child) and is reparented away from us when we exit.
 * *ready_fd: the pipe's read end, where it says it is ready (a byte; end
 * of file: it failed).  0, or -errno (-ENOENT: no such program). */
int daemon_spawn(const char *path, char *const argv[], const char *log,
		 mode_t mode, const char *ready_var, const char *env_add,
		 int *ready_fd);

/* ---- state roots ------------------------------------------------------- */

/* $ORCH_ROOT (default /var/lib/orch) and $ORCH_RUN (default /run/orch). */
const char *orch_root(void);
const char *orch_run(void);
/* Our effective uid as the host sees it, read once: geteuid() outside a
 * user namespace; the user's own uid inside the one a rootless orch runs
 * in (where geteuid() is 0). */
uid_t host_uid(void);
gid_t host_gid(void); /* the same for the group */
/* Whether orch runs without root (host_uid() is not 0). */
bool rootless(void);
/* $ORCH_CGROUP_ROOT when absolute (tests), else /sys/fs/cgroup. */
const char *orch_cgroup_root(void);

/* The 32 bytes of a digest as 64 lowercase hex digits and a NUL. */
void hex32(const unsigned char in[32], char out[65]);
/* 64 lowercase hex digits of sha256(data). out must hold 65 bytes. */
void sha256_hex(const void *data, size_t len, char out[65]);
/* 64 random hex digits (ids of containers and networks). */
void random_id(char out[65]);
/* FNV-1a, 64 bits, of n bytes, on from h (FNV_INIT to begin): a key that
 * must tell things apart, not keep a secret. */
#define FNV_INIT 0xcbf29ce484222325ULL
uint64_t fnv1a(uint64_t h, const void *data, size_t n);

/* Milliseconds of the monotonic clock. */
int64_t mono_ms(void);

/* ---- network namespaces (netns.c) --------------------------------------- */

/* Brings lo up in the calling thread's network namespace. */
int netns_lo_up(struct orch_err *e);
/* Moves the calling thread into a new network namespace, lo up. */
int netns_unshare(struct orch_err *e);
/* A new network namespace with lo up, held by the fd returned
 * (close-on-exec); the calling thread stays where it is, which needs
 * CAP_SYS_ADMIN over its own namespace (a rootless caller cannot come
 * back: it calls netns_unshare in a child). */
int netns_make(struct orch_err *e);
/* 0 when fd is a network namespace other than the caller's; -EINVAL when
 * it is no network namespace, -EPERM when it is the caller's own. */
int netns_other(int fd);

#endif
