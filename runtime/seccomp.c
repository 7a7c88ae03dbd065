/* seccomp: profiles as data (Docker's default as a table, or a Docker-format
 * JSON file), resolved for a capability mask, compiled once per boot
 * (seccomp_bpf.c) into a BPF program the container's child loads with one
 * syscall. */
#include "runtime/container_impl.h"

#include <jansson.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/syscall.h>

/* Docker's default allowlist (profiles/seccomp/default.json), without
 * io_uring_* which stay refused. */
static const char *const base_allow[] = {
	"accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk",
	"capget", "capset", "chdir", "chmod", "chown", "chown32",
	"clock_adjtime", "clock_adjtime64", "clock_getres",
	"clock_getres_time64", "clock_gettime", "clock_gettime64",
	"clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
	"connect", "copy_file_range", "creat", "dup", "dup2", "dup3",
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
	"epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old",
	"eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
	"faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
	"fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2",
	"fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
	"fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
	"fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64",
	"fsync", "ftruncate", "ftruncate64", "futex", "futex_time64",
	"futex_waitv", "futimesat", "getcpu", "getcwd", "getdents",
	"getdents64", "getegid", "getegid32", "geteuid", "geteuid32",
	"getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
	"getpeername", "getpgid", "getpgrp", "getpid", "getppid",
	"getpriority", "getrandom", "getresgid", "getresgid32", "getresuid",
	"getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid",
	"getsockname", "getsockopt", "get_thread_area", "gettid",
	"gettimeofday", "getuid", "getuid32", "getxattr",
	"inotify_add_watch", "inotify_init", "inotify_init1",
	"inotify_rm_watch", "io_cancel", "ioctl", "io_destroy",
	"io_getevents", "io_pgetevents", "io_pgetevents_time64",
	"ioprio_get", "ioprio_set", "io_setup", "io_submit", "ipc", "kill",
	"landlock_add_rule", "landlock_create_ruleset",
	"landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link",
	"linkat", "listen", "listxattr", "llistxattr", "_llseek",
	"lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise",
	"membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
	"mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
	"mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
	"mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
	"mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget",
	"msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
	"name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
	"openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal",
	"pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
	"ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
	"prlimit64", "process_mrelease", "process_vm_readv",
	"process_vm_writev", "pselect6", "pselect6_time64", "ptrace",
	"pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
	"readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
	"recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
	"rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
	"rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
	"rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
	"rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity",
	"sched_getattr", "sched_getparam", "sched_get_priority_max",
	"sched_get_priority_min", "sched_getscheduler",
	"sched_rr_get_interval", "sched_rr_get_interval_time64",
	"sched_setaffinity", "sched_setattr", "sched_setparam",
	"sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
	"semget", "semop", "semtimedop", "semtimedop_time64", "send",
	"sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto",
	"setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid",
	"setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
	"setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
	"setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
	"set_robust_list", "setsid", "setsockopt", "set_thread_area",
	"set_tid_address", "setuid", "setuid32", "setxattr", "shmat",
	"shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
	"signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
	"splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink",
	"symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee",
	"tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
	"timer_gettime", "timer_gettime64", "timer_settime",
	"timer_settime64", "timerfd_create", "timerfd_gettime",
	"timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
	"tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
	"unlink", "unlinkat", "utime", "utimensat", "utimensat_time64",
	"utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
	"writev",
#if defined(__x86_64__) || defined(__i386__)
	"arch_prctl", "modify_ldt",
#endif
#if defined(__aarch64__) || defined(__arm__)
	"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
	"breakpoint", "cacheflush", "set_tls",
#endif
};

/* Syscalls allowed only with a capability (Docker's "includes caps"). */
static const struct {
	int cap;
	const char *names[24];
} cap_allow[] = {
	{21 /* SYS_ADMIN */,
	 {"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount",
	  "fsopen", "fspick", "lookup_dcookie", "mount", "mount_setattr",
	  "move_mount", "open_tree", "perf_event_open", "quotactl",
	  "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog",
	  "umount", "umount2", "unshare"}},
	{2 /* DAC_READ_SEARCH */, {"open_by_handle_at"}},
	{22 /* SYS_BOOT */, {"reboot"}},
	{18 /* SYS_CHROOT */, {"chroot"}},
	{16 /* SYS_MODULE */, {"delete_module", "init_module", "finit_module"}},
	{20 /* SYS_PACCT */, {"acct"}},
	{19 /* SYS_PTRACE */, {"kcmp", "pidfd_getfd", "process_madvise"}},
	{17 /* SYS_RAWIO */, {"iopl", "ioperm"}},
	{25 /* SYS_TIME */,
	 {"settimeofday", "stime", "clock_settime", "clock_settime64"}},
	{26 /* SYS_TTY_CONFIG */, {"vhangup"}},
	{23 /* SYS_NICE */,
	 {"get_mempolicy", "mbind", "set_mempolicy",
	  "set_mempolicy_home_node"}},
	{34 /* SYSLOG */, {"syslog"}},
	{39 /* BPF */, {"bpf"}},
	{38 /* PERFMON */, {"perf_event_open"}},
};

/* clone flags that create namespaces (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|
 * NEWUSER|NEWPID|NEWNET): refused without CAP_SYS_ADMIN. */
#define CLONE_NS_MASK 0x7E020000ULL

static void add_rule(struct sc_profile *p, size_t *cap, struct sc_rule r)
{
	if (p->n_rules == *cap) {
		*cap = *cap ? *cap * 2 : 512;
		p->rules = xrealloc(p->rules, *cap * sizeof(*p->rules));
	}
	p->rules[p->n_rules++] = r;
}

static bool has_rule(const struct sc_profile *p, const char *name)
{
	for (size_t i = 0; i < p->n_rules; i++)
		if (streq(p->rules[i].name, name) && p->rules[i].n_args == 0)
			return true;
	return false;
}

void sc_profile_default(uint64_t caps, struct sc_profile *p)
{
	size_t cap = 0;
	memset(p, 0, sizeof(*p));
	p->default_action = SC_ERRNO;
	p->default_errno = EPERM;
	for (size_t i = 0; i < ARRAY_SIZE(base_allow); i++)
		add_rule(p, &cap, (struct sc_rule){.name = base_allow[i]});
	for (size_t i = 0; i < ARRAY_SIZE(cap_allow); i++) {
		if (!(caps & (1ULL << cap_allow[i].cap)))
			continue;
		for (size_t j = 0; j < ARRAY_SIZE(cap_allow[i].names) &&
				   cap_allow[i].names[j];
		     j++)
			if (!has_rule(p, cap_allow[i].names[j]))
				add_rule(p, &cap,
					 (struct sc_rule){
						 .name = cap_allow[i].names[j]});
	}
	/* AF_VSOCK sockets stay refused. */
	add_rule(p, &cap,
		 (struct sc_rule){.name = "socket",
				  .n_args = 1,
				  .args = {{0, SCMP_CMP_NE, 40, 0}}});
	static const uint64_t personas[] = {0, 8, 0x20000, 0x20008,
					     0xffffffff};
	for (size_t i = 0; i < ARRAY_SIZE(personas); i++)
		add_rule(p, &cap,
			 (struct sc_rule){
				 .name = "personality",
				 .n_args = 1,
				 .args = {{0, SCMP_CMP_EQ, personas[i], 0}}});
	if (!(caps & (1ULL << 21))) {
		add_rule(p, &cap,
			 (struct sc_rule){.name = "clone",
					  .n_args = 1,
					  .args = {{0, SCMP_CMP_MASKED_EQ,
						    CLONE_NS_MASK, 0}}});
		/* So libc falls back to clone, which the rule above checks. */
		add_rule(p, &cap,
			 (struct sc_rule){.name = "clone3",
					  .action = SC_ERRNO,
					  .errno_ret = ENOSYS});
	}
}

void sc_profile_clear(struct sc_profile *p)
{
	free(p->rules);
	strv_free(p->owned);
	memset(p, 0, sizeof(*p));
}

const struct sc_rule *sc_profile_find(const struct sc_profile *p,
				      const char *name)
{
	const struct sc_rule *cond = NULL;
	for (size_t i = 0; i < p->n_rules; i++) {
		if (!streq(p->rules[i].name, name))
			continue;
		if (p->rules[i].n_args == 0)
			return &p->rules[i];
		if (!cond)
			cond = &p->rules[i];
	}
	return cond;
}

/* ---- Docker-format JSON profiles ---------------------------------------- */

static int parse_action(const char *s, enum sc_action *a)
{
	static const struct {
		const char *name;
		enum sc_action a;
	} map[] = {
		{"SCMP_ACT_ALLOW", SC_ALLOW},
		{"SCMP_ACT_ERRNO", SC_ERRNO},
		{"SCMP_ACT_KILL", SC_KILL},
		{"SCMP_ACT_KILL_THREAD", SC_KILL},
		{"SCMP_ACT_KILL_PROCESS", SC_KILL},
		{"SCMP_ACT_TRAP", SC_TRAP},
		{"SCMP_ACT_LOG", SC_LOG},
	};
	for (size_t i = 0; s && i < ARRAY_SIZE(map); i++)
		if (streq(s, map[i].name)) {
			*a = map[i].a;
			return 0;
		}
	return -EINVAL;
}

static int parse_op(const char *s)
{
	static const char *const ops[] = {
		[SCMP_CMP_NE] = "SCMP_CMP_NE",
		[SCMP_CMP_LT] = "SCMP_CMP_LT",
		[SCMP_CMP_LE] = "SCMP_CMP_LE",
		[SCMP_CMP_EQ] = "SCMP_CMP_EQ",
		[SCMP_CMP_GE] = "SCMP_CMP_GE",
		[SCMP_CMP_GT] = "SCMP_CMP_GT",
		[SCMP_CMP_MASKED_EQ] = "SCMP_CMP_MASKED_EQ",
	};
	for (size_t i = 0; s && i < ARRAY_SIZE(ops); i++)
		if (ops[i] && streq(s, ops[i]))
			return (int)i;
	return -1;
}

static const char *native_arch_name(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#else
	return "";
#endif
}

/* Docker's includes/excludes: caps and arches. */
static bool rule_applies(json_t *r, uint64_t caps)
{
	json_t *inc = json_object_get(r, "includes");
	json_t *exc = json_object_get(r, "excludes");
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(inc, "caps"), i, v)
	{
		int c = cap_from_name(json_string_value(v) ?: "");
		if (c < 0 || !(caps & (1ULL << c)))
			return false;
	}
	json_t *arches = json_object_get(inc, "arches");
	if (json_array_size(arches)) {
		bool found = false;
		json_array_foreach(arches, i, v) found |= streq(
			json_string_value(v) ?: "", native_arch_name());
		if (!found)
			return false;
	}
	json_array_foreach(json_object_get(exc, "caps"), i, v)
	{
		int c = cap_from_name(json_string_value(v) ?: "");
		if (c >= 0 && (caps & (1ULL << c)))
			return false;
	}
	json_array_foreach(json_object_get(exc, "arches"), i, v) if (streq(
		json_string_value(v) ?: "", native_arch_name())) return false;
	return true;
}

int sc_profile_load(const char *path, uint64_t caps, struct sc_profile *p,
		    struct orch_err *e)
{
	memset(p, 0, sizeof(*p));
	json_error_t je;
	json_t *root = json_load_file(path, 0, &je);
	if (!root)
		return err_set(e, EINVAL, "seccomp profile %s:%d: %s", path,
			       je.line, je.text);
	int r = -EINVAL;
	size_t cap = 0;
	if (parse_action(json_string_value(json_object_get(root,
							   "defaultAction")),
			 &p->default_action) < 0) {
		r = err_set(e, EINVAL, "seccomp profile %s: bad defaultAction",
			    path);
		goto out;
	}
	json_t *der = json_object_get(root, "defaultErrnoRet");
	p->default_errno = json_is_integer(der) ? (int)json_integer_value(der)
						: EPERM;
	size_t i, j;
	json_t *rule, *name;
	json_array_foreach(json_object_get(root, "syscalls"), i, rule)
	{
		if (!rule_applies(rule, caps))
			continue;
		struct sc_rule sr = {0};
		if (parse_action(json_string_value(json_object_get(rule,
								   "action")),
				 &sr.action) < 0) {
			r = err_set(e, EINVAL,
				    "seccomp profile %s: syscalls[%zu]: bad action",
				    path, i);
			goto out;
		}
		json_t *er = json_object_get(rule, "errnoRet");
		sr.errno_ret = json_is_integer(er) ? (int)json_integer_value(er)
						   : EPERM;
		json_t *args = json_object_get(rule, "args");
		json_t *a;
		json_array_foreach(args, j, a)
		{
			if (sr.n_args == ARRAY_SIZE(sr.args)) {
				r = err_set(e, EINVAL,
					    "seccomp profile %s: syscalls[%zu]: too many args",
					    path, i);
				goto out;
			}
			int op = parse_op(
				json_string_value(json_object_get(a, "op")));
			json_int_t index =
				json_integer_value(json_object_get(a, "index"));
			if (index < 0 || index > 5) {
				r = err_set(e, EINVAL,
					    "seccomp profile %s: syscalls[%zu]: bad argument index",
					    path, i);
				goto out;
			}
			if (op < 0) {
				r = err_set(e, EINVAL,
					    "seccomp profile %s: syscalls[%zu]: bad op",
					    path, i);
				goto out;
			}
			sr.args[sr.n_args++] = (struct sc_arg){
				(unsigned)index,
				op,
				(uint64_t)json_integer_value(
					json_object_get(a, "value")),
				(uint64_t)json_integer_value(
					json_object_get(a, "valueTwo"))};
		}
		json_t *names = json_object_get(rule, "names");
		if (!names && json_object_get(rule, "name")) {
			strv_push(&p->owned, json_string_value(
						     json_object_get(rule, "name")) ?: "");
			sr.name = p->owned[strv_len(p->owned) - 1];
			add_rule(p, &cap, sr);
		}
		json_array_foreach(names, j, name)
		{
			strv_push(&p->owned, json_string_value(name) ?: "");
			sr.name = p->owned[strv_len(p->owned) - 1];
			add_rule(p, &cap, sr);
		}
	}
	r = 0;
out:
	json_decref(root);
	if (r < 0)
		sc_profile_clear(p);
	return r;
}

/* ---- compiling (seccomp_bpf.c) and caching ------------------------------- */

/* What a compiled filter depends on, in one line: the profile's source
 * (the built-in tables, or the JSON file's bytes), the capability mask,
 * the architecture and libseccomp's version.  Built without resolving
 * the profile, so that a cached filter costs no more than this. */
static int profile_key(const char *path, uint64_t caps, char **out,
		       struct orch_err *e)
{
	uint64_t h = FNV_INIT;
	size_t len = 0;
	if (path) {
		char *data;
		int r = read_file(path, &data, &len, e);
		if (r < 0)
			return err_wrap(e, "seccomp profile");
		h = fnv1a(h, data, len);
		free(data);
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(base_allow); i++)
			h = fnv1a(h, base_allow[i], strlen(base_allow[i]) + 1);
		for (size_t i = 0; i < ARRAY_SIZE(cap_allow); i++) {
			h = fnv1a(h, &cap_allow[i].cap, sizeof(int));
			for (size_t j = 0; j < ARRAY_SIZE(cap_allow[i].names) &&
					   cap_allow[i].names[j];
			     j++)
				h = fnv1a(h, cap_allow[i].names[j],
					  strlen(cap_allow[i].names[j]) + 1);
		}
	}
	const struct scmp_version *v = seccomp_version();
	*out = xasprintf("orch seccomp v3 %s %s:%016llx:%zu caps=%016llx "
			 "libseccomp=%u.%u.%u",
			 native_arch_name(), path ? "json" : "default",
			 (unsigned long long)h, len, (unsigned long long)caps,
			 v->major, v->minor, v->micro);
	return 0;
}

/* Compiling takes about a millisecond (resolving names); the program is
 * kept in $ORCH_RUN/runtime/.seccomp/<hash>.bpf (root-only, like all of
 * $ORCH_RUN) after the full profile text, so that each profile is compiled
 * once per boot and a hash collision can only cost a recompile. */
static int cache_read(const char *path, const char *text, struct sc_filter *f)
{
	char *data;
	size_t len, tl = strlen(text) + 1;
	if (read_file(path, &data, &len, NULL) < 0)
		return -ENOENT;
	size_t plen = len - tl;
	if (len <= tl || memcmp(data, text, tl) != 0 ||
	    plen % sizeof(struct sock_filter) ||
	    plen / sizeof(struct sock_filter) > BPF_MAXINSNS) {
		free(data);
		return -EINVAL;
	}
	f->prog.filter = xmalloc(plen);
	memcpy(f->prog.filter, data + tl, plen);
	f->prog.len = (unsigned short)(plen / sizeof(struct sock_filter));
	free(data);
	return 0;
}

static void cache_write(const char *dir, const char *path, const char *text,
			const struct sc_filter *f)
{
	/* Best effort: a cache we cannot write only costs time. */
	struct orch_err ignored = {0};
	if (mkdir_p(dir, 0700, &ignored) < 0)
		return;
	struct strbuf sb;
	sb_init(&sb);
	sb_add(&sb, text, strlen(text) + 1);
	sb_add(&sb, f->prog.filter, f->prog.len * sizeof(struct sock_filter));
	write_file_atomic(path, sb.buf, sb.len, 0600, &ignored);
	sb_free(&sb);
}

struct filter_cache {
	struct filter_cache *next;
	char *text;
	struct sc_filter f;
};
static struct filter_cache *cache;

int sc_filter_get(const char *path, uint64_t caps,
		  const struct sc_filter **out, struct orch_err *e)
{
	char *key = NULL;
	int r = profile_key(path, caps, &key, e);
	if (r < 0)
		return r;
	for (struct filter_cache *c = cache; c; c = c->next)
		if (streq(c->text, key)) {
			free(key);
			*out = &c->f;
			return 0;
		}
	struct filter_cache *c = xcalloc(1, sizeof(*c));
	c->text = key;
	_cleanup_free_ char *dir = xasprintf("%s/runtime/.seccomp", orch_run());
	_cleanup_free_ char *file = xasprintf(
		"%s/%016llx.bpf", dir,
		(unsigned long long)fnv1a(FNV_INIT, key, strlen(key)));
	if (cache_read(file, key, &c->f) < 0) {
		struct sc_profile p;
		if (path)
			r = sc_profile_load(path, caps, &p, e);
		else
			sc_profile_default(caps, &p);
		if (r == 0) {
			r = sc_compile(&p, &c->f, e);
			sc_profile_clear(&p);
		}
		if (r < 0) {
			free(c->text);
			free(c);
			return r;
		}
		cache_write(dir, file, key, &c->f);
	}
	c->next = cache;
	cache = c;
	*out = &c->f;
	return 0;
}

int sc_filter_load(const struct sc_filter *f)
{
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &f->prog) < 0)
		return -errno;
	return 0;
}
