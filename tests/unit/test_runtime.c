/* Unit tests for the container half of runtime/: capability resolution,
 * seccomp profiles, cgroup writers against fake cgroupfs directories,
 * rlimit defaults, `orch-runtime run` argument parsing and in-root path
 * resolution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "runtime/container_impl.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/stat.h>

static char *tmpdir(void)
{
	char *t = xstrdup("/tmp/orch-unit-rt.XXXXXX");
	assert_non_null(mkdtemp(t));
	return t;
}

static void put(const char *dir, const char *file, const char *content)
{
	_cleanup_free_ char *p = path_join(dir, file);
	FILE *f = fopen(p, "we");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static char *get(const char *dir, const char *file)
{
	_cleanup_free_ char *p = path_join(dir, file);
	char *s = NULL;
	assert_int_equal(read_file(p, &s, NULL, NULL), 0);
	return s;
}

/* ---- capabilities ------------------------------------------------------------ */

static void test_caps_default(void **state)
{
	(void)state;
	uint64_t m;
	struct orch_err e = {0};
	assert_int_equal(rt_caps_resolve(NULL, NULL, false, ~0ULL, &m, &e), 0);
	assert_int_equal(m, 0xa80425fbULL);
}

static void test_caps_add_drop(void **state)
{
	(void)state;
	uint64_t m;
	struct orch_err e = {0};
	char *all[] = {"ALL", NULL};
	assert_int_equal(rt_caps_resolve(NULL, all, false, ~0ULL, &m, &e), 0);
	assert_int_equal(m, 0);
	char *add[] = {"NET_ADMIN", "cap_sys_time", NULL};
	char *drop[] = {"CAP_CHOWN", "net_raw", NULL};
	assert_int_equal(rt_caps_resolve(add, drop, false, ~0ULL, &m, &e), 0);
	assert_int_equal(m, (0xa80425fbULL & ~(1ULL << 0) & ~(1ULL << 13)) |
				    (1ULL << 12) | (1ULL << 25));
	/* drop ALL then add one: only that one */
	char *one[] = {"KILL", NULL};
	assert_int_equal(rt_caps_resolve(one, all, false, ~0ULL, &m, &e), 0);
	assert_int_equal(m, 1ULL << 5);
	char *bad[] = {"NOT_A_CAP", NULL};
	assert_true(rt_caps_resolve(bad, NULL, false, ~0ULL, &m, &e) < 0);
	assert_non_null(strstr(e.msg, "NOT_A_CAP"));
	assert_int_equal(rt_caps_resolve(NULL, NULL, true, ~0ULL, &m, &e), 0);
	assert_true(m & (1ULL << 21));
	assert_int_equal(cap_from_name("CAP_SYS_ADMIN"), 21);
	assert_int_equal(cap_from_name("audit_write"), 29);
	assert_int_equal(cap_from_name("nope"), -1);
}

/* A host whose bounding set lacks SYS_RESOURCE (24) and MKNOD (27):
 * privileged, ALL and the defaults get what there is; naming one fails. */
static void test_caps_available(void **state)
{
	(void)state;
	uint64_t m, avail = ~0ULL & ~(1ULL << 24) & ~(1ULL << 27);
	struct orch_err e = {0};
	assert_int_equal(rt_caps_resolve(NULL, NULL, true, avail, &m, &e), 0);
	assert_false(m & (1ULL << 24));
	assert_true(m & (1ULL << 21));
	char *all[] = {"ALL", NULL};
	assert_int_equal(rt_caps_resolve(all, NULL, false, avail, &m, &e), 0);
	assert_false(m & (1ULL << 24));
	assert_true(m & (1ULL << 12));
	assert_int_equal(rt_caps_resolve(NULL, NULL, false, avail, &m, &e), 0);
	assert_int_equal(m, 0xa80425fbULL & ~(1ULL << 27));
	char *res[] = {"NET_ADMIN", "sys_resource", NULL};
	assert_int_equal(rt_caps_resolve(res, NULL, false, avail, &m, &e),
			 -EPERM);
	assert_non_null(strstr(e.msg, "CAP_SYS_RESOURCE"));
	/* Dropping what the host lacks anyway is fine. */
	char *drop[] = {"SYS_RESOURCE", NULL};
	assert_int_equal(rt_caps_resolve(NULL, drop, false, avail, &m, &e), 0);
}

/* ---- seccomp --------------------------------------------------------------------- */

static bool allowed(const struct sc_profile *p, const char *name)
{
	const struct sc_rule *r = sc_profile_find(p, name);
	return r && r->action == SC_ALLOW;
}

static void test_seccomp_default(void **state)
{
	(void)state;
	struct sc_profile p;
	sc_profile_default(CAPS_DOCKER_DEFAULT, &p);
	assert_int_equal(p.default_action, SC_ERRNO);
	assert_int_equal(p.default_errno, EPERM);
	assert_true(allowed(&p, "read"));
	assert_true(allowed(&p, "execve"));
	assert_true(allowed(&p, "chroot")); /* SYS_CHROOT is a default cap */
	static const char *const refused[] = {
		"mount", "umount2", "pivot_root", "kexec_load", "init_module",
		"finit_module", "delete_module", "reboot", "swapon", "swapoff",
		"keyctl", "add_key", "request_key", "bpf", "perf_event_open",
		"open_by_handle_at", "userfaultfd", "io_uring_setup",
		"io_uring_enter", "iopl", "ioperm", "acct", "quotactl",
		"settimeofday", "clock_settime", "unshare", "setns"};
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++)
		assert_false(allowed(&p, refused[i]));
	const struct sc_rule *c3 = sc_profile_find(&p, "clone3");
	assert_non_null(c3);
	assert_int_equal(c3->action, SC_ERRNO);
	assert_int_equal(c3->errno_ret, ENOSYS);
	const struct sc_rule *cl = sc_profile_find(&p, "clone");
	assert_non_null(cl);
	assert_int_equal(cl->n_args, 1);
	assert_int_equal(cl->args[0].op, SCMP_CMP_MASKED_EQ);
	assert_int_equal(cl->args[0].value, 0x7E020000ULL);
	sc_profile_clear(&p);
}

static void test_seccomp_caps(void **state)
{
	(void)state;
	struct sc_profile p;
	sc_profile_default(CAPS_DOCKER_DEFAULT | (1ULL << 21) | (1ULL << 25),
			   &p);
	assert_true(allowed(&p, "mount"));
	assert_true(allowed(&p, "unshare"));
	assert_true(allowed(&p, "settimeofday"));
	const struct sc_rule *cl = sc_profile_find(&p, "clone");
	assert_non_null(cl);
	assert_int_equal(cl->n_args, 0);
	assert_true(allowed(&p, "clone3"));
	sc_profile_clear(&p);
	sc_profile_default(0, &p);
	assert_false(allowed(&p, "chroot"));
	sc_profile_clear(&p);
}

static void test_seccomp_json(void **state)
{
	(void)state;
	_cleanup_free_ char *t = tmpdir();
	put(t, "p.json",
	    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":["
	    "{\"names\":[\"read\",\"write\"],\"action\":\"SCMP_ACT_ALLOW\"},"
	    "{\"names\":[\"mount\"],\"action\":\"SCMP_ACT_ALLOW\","
	    "\"includes\":{\"caps\":[\"CAP_SYS_ADMIN\"]}},"
	    "{\"names\":[\"clone3\"],\"action\":\"SCMP_ACT_ERRNO\","
	    "\"errnoRet\":38},"
	    "{\"names\":[\"socket\"],\"action\":\"SCMP_ACT_ALLOW\","
	    "\"args\":[{\"index\":0,\"value\":40,\"op\":\"SCMP_CMP_NE\"}]}]}");
	_cleanup_free_ char *path = path_join(t, "p.json");
	struct sc_profile p;
	struct orch_err e = {0};
	assert_int_equal(sc_profile_load(path, CAPS_DOCKER_DEFAULT, &p, &e), 0);
	assert_true(allowed(&p, "write"));
	assert_false(allowed(&p, "mount"));
	assert_int_equal(sc_profile_find(&p, "clone3")->errno_ret, 38);
	assert_int_equal(sc_profile_find(&p, "socket")->args[0].op,
			 SCMP_CMP_NE);
	sc_profile_clear(&p);
	assert_int_equal(sc_profile_load(path, 1ULL << 21, &p, &e), 0);
	assert_true(allowed(&p, "mount"));
	sc_profile_clear(&p);
	put(t, "bad.json", "{\"defaultAction\":\"SCMP_ACT_NOPE\"}");
	_cleanup_free_ char *bad = path_join(t, "bad.json");
	assert_true(sc_profile_load(bad, 0, &p, &e) < 0);
	assert_non_null(strstr(e.msg, "defaultAction"));
	struct orch_err ig = {0};
	rm_rf(t, &ig);
}

/* ---- the compiled program, run by a classic BPF interpreter ---------------------- */

/* Runs the program on one syscall; fails the test on an instruction
 * seccomp programs do not need, or on a jump out of the program. */
static uint32_t bpf_run(const struct sock_fprog *p, const struct seccomp_data *d)
{
	uint32_t a = 0;
	for (size_t pc = 0; pc < p->len; pc++) {
		const struct sock_filter *f = &p->filter[pc];
		switch (f->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			assert_true(f->k + 4 <= sizeof(*d) && f->k % 4 == 0);
			memcpy(&a, (const char *)d + f->k, 4);
			break;
		case BPF_ALU | BPF_AND | BPF_K: a &= f->k; break;
		case BPF_JMP | BPF_JA: pc += f->k; break;
		case BPF_JMP | BPF_JEQ | BPF_K: pc += a == f->k ? f->jt : f->jf; break;
		case BPF_JMP | BPF_JGT | BPF_K: pc += a > f->k ? f->jt : f->jf; break;
		case BPF_JMP | BPF_JGE | BPF_K: pc += a >= f->k ? f->jt : f->jf; break;
		case BPF_JMP | BPF_JSET | BPF_K: pc += (a & f->k) ? f->jt : f->jf; break;
		case BPF_RET | BPF_K: return f->k;
		default: fail_msg("instruction %#x at %zu", f->code, pc);
		}
	}
	fail_msg("ran off the end of the program");
	return 0;
}

/* The same profile compiled by libseccomp, as orch did before. */
static void libseccomp_compile(const struct sc_profile *p, struct sock_fprog *out)
{
	static const uint32_t acts[] = {
		[SC_ALLOW] = SCMP_ACT_ALLOW, [SC_KILL] = SCMP_ACT_KILL_PROCESS,
		[SC_TRAP] = SCMP_ACT_TRAP, [SC_LOG] = SCMP_ACT_LOG};
#define ACT(a, err) ((a) == SC_ERRNO ? SCMP_ACT_ERRNO((uint32_t)(err)) : acts[a])
	scmp_filter_ctx ctx = seccomp_init(ACT(p->default_action, p->default_errno));
	assert_non_null(ctx);
	assert_true(seccomp_arch_add(ctx, SCMP_ARCH_X86) >= 0 || errno == EEXIST);
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct sc_rule *sr = &p->rules[i];
		if (sr->action == p->default_action &&
		    (sr->action != SC_ERRNO || sr->errno_ret == p->default_errno))
			continue;
		int nr = seccomp_syscall_resolve_name(sr->name);
		if (nr == __NR_SCMP_ERROR)
			continue;
		struct scmp_arg_cmp cmp[2];
		for (size_t k = 0; k < sr->n_args; k++)
			cmp[k] = (struct scmp_arg_cmp){sr->args[k].index,
						       (enum scmp_compare)sr->args[k].op,
						       sr->args[k].value,
						       sr->args[k].value2};
		int r = seccomp_rule_add_array(ctx, ACT(sr->action, sr->errno_ret), nr,
					       (unsigned)sr->n_args, cmp);
		assert_true(r == 0 || r == -EEXIST);
	}
#undef ACT
	FILE *f = tmpfile();
	assert_non_null(f);
	assert_int_equal(seccomp_export_bpf(ctx, fileno(f)), 0);
	long len = lseek(fileno(f), 0, SEEK_END);
	out->filter = xmalloc((size_t)len);
	assert_int_equal(pread(fileno(f), out->filter, (size_t)len, 0), len);
	out->len = (unsigned short)(len / (long)sizeof(struct sock_filter));
	fclose(f);
	seccomp_release(ctx);
}

/* Both kills end the process for the caller's purpose. */
static uint32_t outcome(uint32_t ret)
{
	uint32_t act = ret & SECCOMP_RET_ACTION_FULL;
	return act == SECCOMP_RET_KILL_THREAD ? SECCOMP_RET_KILL_PROCESS : ret;
}

/* Every syscall number of both architectures (and x32's, and a foreign
 * architecture's), with arguments around each rule's values, decides the
 * same in orch's program as in libseccomp's. */
static void same_as_libseccomp(const struct sc_profile *p)
{
	struct sc_filter ours;
	struct orch_err e = {0};
	assert_int_equal(sc_compile(p, &ours, &e), 0);
	struct sock_fprog ref;
	libseccomp_compile(p, &ref);
	uint64_t vals[64] = {0, 1, 0xffffffffULL, 0x100000000ULL,
			     ~0ULL, 0x7fffffffULL};
	size_t n_vals = 6;
	for (size_t i = 0; i < p->n_rules; i++)
		for (size_t k = 0; k < p->rules[i].n_args; k++) {
			const struct sc_arg *a = &p->rules[i].args[k];
			uint64_t v = a->op == SCMP_CMP_MASKED_EQ ? a->value2 : a->value;
			uint64_t cand[] = {v, v - 1, v + 1, v | a->value,
					   v ^ (1ULL << 33)};
			for (size_t c = 0; c < ARRAY_SIZE(cand) && n_vals < ARRAY_SIZE(vals); c++)
				vals[n_vals++] = cand[c];
		}
	static const uint32_t nrs_extra[] = {0x40000000, 0x40000001, 0x400000ff,
					     0x7fffffff, 0xfffffffe, 0xffffffff};
	static const uint32_t arches[] = {AUDIT_ARCH_X86_64, AUDIT_ARCH_I386,
					  AUDIT_ARCH_AARCH64};
	for (size_t ai = 0; ai < ARRAY_SIZE(arches); ai++)
		for (uint32_t i = 0; i < 1100 + ARRAY_SIZE(nrs_extra); i++) {
			uint32_t nr = i < 1100 ? i : nrs_extra[i - 1100];
			for (size_t v = 0; v < n_vals; v++)
				for (unsigned slot = 0; slot < 2; slot++) {
					struct seccomp_data d = {.nr = (int)nr,
								 .arch = arches[ai]};
					/* 32-bit arguments on i386 */
					uint64_t val = arches[ai] == AUDIT_ARCH_I386
							       ? (uint32_t)vals[v]
							       : vals[v];
					d.args[slot] = val;
					uint32_t a = bpf_run(&ours.prog, &d);
					uint32_t b = bpf_run(&ref, &d);
					if (outcome(a) != outcome(b))
						fail_msg("arch %#x nr %u arg%u %#llx: %#x, libseccomp %#x",
							 arches[ai], nr, slot,
							 (unsigned long long)val, a, b);
				}
		}
	free(ours.prog.filter);
	free(ref.filter);
}

static void test_seccomp_bpf_default(void **state)
{
	(void)state;
	static const uint64_t caps[] = {CAPS_DOCKER_DEFAULT, 0, ~0ULL >> 23,
					CAPS_DOCKER_DEFAULT | (1ULL << 21)};
	for (size_t i = 0; i < ARRAY_SIZE(caps); i++) {
		struct sc_profile p;
		sc_profile_default(caps[i], &p);
		same_as_libseccomp(&p);
		sc_profile_clear(&p);
	}
	/* a few numbers spelled out: x86_64 read, mount, clone with and
	 * without a namespace flag, x32's read, i386 socket(AF_VSOCK) */
	struct sc_profile p;
	sc_profile_default(CAPS_DOCKER_DEFAULT, &p);
	struct sc_filter f;
	struct orch_err e = {0};
	assert_int_equal(sc_compile(&p, &f, &e), 0);
	assert_true(f.prog.len < 450); /* libseccomp's: 685 */
	struct {
		uint32_t arch;
		int nr;
		uint64_t arg0;
		uint32_t want;
	} cases[] = {
		{AUDIT_ARCH_X86_64, 0, 0, SECCOMP_RET_ALLOW},
		{AUDIT_ARCH_X86_64, 165, 0, SECCOMP_RET_ERRNO | EPERM},
		{AUDIT_ARCH_X86_64, 56, 0x11, SECCOMP_RET_ALLOW},
		{AUDIT_ARCH_X86_64, 56, 0x20000000, SECCOMP_RET_ERRNO | EPERM},
		{AUDIT_ARCH_X86_64, 435, 0, SECCOMP_RET_ERRNO | ENOSYS},
		{AUDIT_ARCH_X86_64, 0x40000000, 0, SECCOMP_RET_KILL_PROCESS},
		{AUDIT_ARCH_X86_64, -1, 0, SECCOMP_RET_ERRNO | EPERM},
		{AUDIT_ARCH_I386, 359, 40, SECCOMP_RET_ERRNO | EPERM},
		{AUDIT_ARCH_I386, 359, 2, SECCOMP_RET_ALLOW},
		{0x12345678, 0, 0, SECCOMP_RET_KILL_PROCESS},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct seccomp_data d = {.nr = cases[i].nr, .arch = cases[i].arch,
					 .args = {cases[i].arg0}};
		assert_int_equal(bpf_run(&f.prog, &d), cases[i].want);
	}
	free(f.prog.filter);
	sc_profile_clear(&p);
}

/* A deny-list profile with every action and every comparison, 64-bit
 * values included. */
static void test_seccomp_bpf_json(void **state)
{
	(void)state;
	_cleanup_free_ char *t = tmpdir();
	put(t, "p.json",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
	    "{\"names\":[\"mount\",\"umount2\",\"reboot\"],\"action\":\"SCMP_ACT_ERRNO\"},"
	    "{\"names\":[\"kexec_load\"],\"action\":\"SCMP_ACT_KILL\"},"
	    "{\"names\":[\"acct\"],\"action\":\"SCMP_ACT_TRAP\"},"
	    "{\"names\":[\"swapon\"],\"action\":\"SCMP_ACT_LOG\"},"
	    "{\"names\":[\"socket\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":97,"
	    "\"args\":[{\"index\":0,\"value\":40,\"op\":\"SCMP_CMP_EQ\"}]},"
	    "{\"names\":[\"ioctl\"],\"action\":\"SCMP_ACT_ERRNO\","
	    "\"args\":[{\"index\":1,\"value\":21522,\"op\":\"SCMP_CMP_EQ\"}]},"
	    "{\"names\":[\"kill\"],\"action\":\"SCMP_ACT_ERRNO\","
	    "\"args\":[{\"index\":1,\"value\":9,\"op\":\"SCMP_CMP_GE\"},"
	    "{\"index\":0,\"value\":4294967296,\"op\":\"SCMP_CMP_LT\"}]},"
	    "{\"names\":[\"setuid\"],\"action\":\"SCMP_ACT_ERRNO\","
	    "\"args\":[{\"index\":0,\"value\":0,\"op\":\"SCMP_CMP_NE\"}]},"
	    "{\"names\":[\"setgid\"],\"action\":\"SCMP_ACT_ERRNO\","
	    "\"args\":[{\"index\":0,\"value\":1000,\"op\":\"SCMP_CMP_GT\"}]},"
	    "{\"names\":[\"setpgid\"],\"action\":\"SCMP_ACT_ERRNO\","
	    "\"args\":[{\"index\":0,\"value\":1000,\"op\":\"SCMP_CMP_LE\"}]},"
	    "{\"names\":[\"lseek\"],\"action\":\"SCMP_ACT_ERRNO\","
	    "\"args\":[{\"index\":2,\"value\":8589934594,\"op\":\"SCMP_CMP_GT\"}]},"
	    "{\"names\":[\"mmap\"],\"action\":\"SCMP_ACT_ERRNO\","
	    "\"args\":[{\"index\":2,\"value\":6,\"valueTwo\":6,\"op\":\"SCMP_CMP_MASKED_EQ\"}]},"
	    "{\"names\":[\"unshare\"],\"action\":\"SCMP_ACT_ERRNO\","
	    "\"args\":[{\"index\":0,\"value\":12884901888,\"valueTwo\":4294967296,"
	    "\"op\":\"SCMP_CMP_MASKED_EQ\"}]}]}");
	_cleanup_free_ char *path = path_join(t, "p.json");
	struct sc_profile p;
	struct orch_err e = {0};
	assert_int_equal(sc_profile_load(path, 0, &p, &e), 0);
	same_as_libseccomp(&p);
	sc_profile_clear(&p);
	put(t, "idx.json",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
	    "{\"names\":[\"kill\"],\"action\":\"SCMP_ACT_ERRNO\","
	    "\"args\":[{\"index\":6,\"value\":9,\"op\":\"SCMP_CMP_EQ\"}]}]}");
	_cleanup_free_ char *idx = path_join(t, "idx.json");
	assert_true(sc_profile_load(idx, 0, &p, &e) < 0);
	assert_non_null(strstr(e.msg, "syscalls[0]: bad argument index"));
	struct orch_err ig = {0};
	rm_rf(t, &ig);
}

/* Several rules on one syscall: a holding conditional rule decides before
 * the unconditional one, in the profile's order. */
static void test_seccomp_bpf_precedence(void **state)
{
	(void)state;
	struct sc_rule rules[] = {
		{.name = "ioctl", .action = SC_ALLOW},
		{.name = "ioctl", .action = SC_ERRNO, .errno_ret = EPERM,
		 .n_args = 1, .args = {{1, SCMP_CMP_EQ, 0x5412, 0}}},
		{.name = "ioctl", .action = SC_KILL,
		 .n_args = 1, .args = {{1, SCMP_CMP_GE, 0x5412, 0}}},
	};
	struct sc_profile p = {.default_action = SC_ERRNO, .default_errno = ENOSYS,
			       .rules = rules, .n_rules = ARRAY_SIZE(rules)};
	struct sc_filter f;
	struct orch_err e = {0};
	assert_int_equal(sc_compile(&p, &f, &e), 0);
	struct seccomp_data d = {.nr = 16, .arch = AUDIT_ARCH_X86_64};
	d.args[1] = 0x5412;
	assert_int_equal(bpf_run(&f.prog, &d), SECCOMP_RET_ERRNO | EPERM);
	d.args[1] = 0x5413;
	assert_int_equal(bpf_run(&f.prog, &d), SECCOMP_RET_KILL_PROCESS);
	d.args[1] = 0x5411;
	assert_int_equal(bpf_run(&f.prog, &d), SECCOMP_RET_ALLOW);
	d.nr = 17;
	assert_int_equal(bpf_run(&f.prog, &d), SECCOMP_RET_ERRNO | ENOSYS);
	free(f.prog.filter);
	/* i386's socketcall and ipc: a refusal of an operation refuses it
	 * through the multiplexer too, an allowance with argument checks
	 * does not allow it there (its arguments are behind a pointer). */
	struct sc_rule mux[] = {
		{.name = "socket", .action = SC_ALLOW,
		 .n_args = 1, .args = {{0, SCMP_CMP_NE, 40, 0}}},
		{.name = "shmget", .action = SC_ALLOW},
		{.name = "bind", .action = SC_KILL,
		 .n_args = 1, .args = {{2, SCMP_CMP_EQ, 3, 0}}},
		{.name = "socketcall", .action = SC_ALLOW},
	};
	struct sc_profile pm = {.default_action = SC_ERRNO, .default_errno = EPERM,
				.rules = mux, .n_rules = ARRAY_SIZE(mux)};
	assert_int_equal(sc_compile(&pm, &f, &e), 0);
	struct {
		int nr;
		uint64_t arg0, arg2;
		uint32_t want;
	} i386[] = {
		{359, 2, 0, SECCOMP_RET_ALLOW},	       /* socket(AF_INET) */
		{359, 40, 0, SECCOMP_RET_ERRNO | EPERM}, /* socket(AF_VSOCK) */
		{102, 1, 0, SECCOMP_RET_ALLOW},	       /* socketcall(SOCKET): its own rule */
		{102, 2, 0, SECCOMP_RET_KILL_PROCESS},   /* socketcall(BIND) */
		{361, 0, 3, SECCOMP_RET_KILL_PROCESS},   /* bind(.., 3) */
		{361, 0, 4, SECCOMP_RET_ERRNO | EPERM},
		{117, 23, 0, SECCOMP_RET_ALLOW},	       /* ipc(SHMGET) */
		{117, 21, 0, SECCOMP_RET_ERRNO | EPERM}, /* ipc(SHMAT) */
	};
	for (size_t i = 0; i < ARRAY_SIZE(i386); i++) {
		struct seccomp_data d = {.nr = i386[i].nr, .arch = AUDIT_ARCH_I386,
					 .args = {i386[i].arg0, 0, i386[i].arg2}};
		assert_int_equal(bpf_run(&f.prog, &d), i386[i].want);
	}
	free(f.prog.filter);
	mux[3].action = SC_ERRNO; /* without socketcall's own allowance */
	mux[3].errno_ret = EPERM;
	assert_int_equal(sc_compile(&pm, &f, &e), 0);
	struct seccomp_data d386 = {.nr = 102, .arch = AUDIT_ARCH_I386, .args = {1}};
	assert_int_equal(bpf_run(&f.prog, &d386), SECCOMP_RET_ERRNO | EPERM);
	free(f.prog.filter);
	rules[2].args[0].index = 6;
	assert_true(sc_compile(&p, &f, &e) < 0);
	assert_non_null(strstr(e.msg, "ioctl"));
}

static void test_seccomp_compile_cache(void **state)
{
	(void)state;
	_cleanup_free_ char *t = tmpdir();
	setenv("ORCH_RUN", t, 1);
	const struct sc_filter *f1, *f2;
	struct orch_err e = {0};
	assert_int_equal(sc_filter_get(NULL, CAPS_DOCKER_DEFAULT, &f1, &e), 0);
	assert_true(f1->prog.len > 100);
	/* once per process */
	assert_int_equal(sc_filter_get(NULL, CAPS_DOCKER_DEFAULT, &f2, &e), 0);
	assert_ptr_equal(f1, f2);
	/* a different capability set is a different program */
	assert_int_equal(sc_filter_get(NULL, CAPS_DOCKER_DEFAULT | (1ULL << 21),
				       &f2, &e),
			 0);
	assert_ptr_not_equal(f1, f2);
	_cleanup_free_ char *dir = path_join(t, "runtime/.seccomp");
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	struct orch_err ig = {0};
	rm_rf(t, &ig);
	unsetenv("ORCH_RUN");
}

/* ---- cgroups ----------------------------------------------------------------------- */

static void test_cgroup_v2_writer(void **state)
{
	(void)state;
	_cleanup_free_ char *t = tmpdir();
	static const char *const files[] = {"memory.max", "memory.swap.max",
					    "cpu.max", "cpu.weight",
					    "pids.max"};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		put(t, files[i], "");
	int dfd = open(t, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct rt_limits l = {.memory = 64 << 20,
			      .memory_swap = 96 << 20,
			      .cpus = 0.5,
			      .cpu_shares = 1024,
			      .pids = 20};
	struct orch_err e = {0};
	assert_int_equal(cg_v2_write_limits(dfd, &l, &e), 0);
	char *s;
	assert_string_equal((s = get(t, "memory.max")), "67108864");
	free(s);
	assert_string_equal((s = get(t, "memory.swap.max")), "33554432");
	free(s);
	assert_string_equal((s = get(t, "cpu.max")), "50000 100000");
	free(s);
	assert_string_equal((s = get(t, "cpu.weight")), "39");
	free(s);
	assert_string_equal((s = get(t, "pids.max")), "20");
	free(s);
	/* unlimited swap */
	l.memory_swap = -1;
	assert_int_equal(cg_v2_write_limits(dfd, &l, &e), 0);
	assert_string_equal((s = get(t, "memory.swap.max")), "max");
	free(s);
	/* a limit that cannot be written is an error naming the file */
	_cleanup_free_ char *pids = path_join(t, "pids.max");
	unlink(pids);
	assert_true(cg_v2_write_limits(dfd, &l, &e) < 0);
	assert_non_null(strstr(e.msg, "pids.max"));
	close(dfd);
	struct orch_err ig = {0};
	rm_rf(t, &ig);
}

static void test_cgroup_v2_controllers(void **state)
{
	(void)state;
	_cleanup_free_ char *t = tmpdir();
	put(t, "cgroup.controllers", "cpuset cpu io memory hugetlb pids\n");
	put(t, "cgroup.subtree_control", "cpu\n");
	int dfd = open(t, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct rt_limits l = {.memory = 1 << 20};
	struct orch_err e = {0};
	assert_int_equal(cg_v2_enable_controllers(dfd, &l, &e), 0);
	char *s = get(t, "cgroup.subtree_control");
	assert_string_equal(s, "+memory +pids");
	free(s);
	/* a needed controller the kernel lacks is an error */
	put(t, "cgroup.controllers", "cpu io\n");
	put(t, "cgroup.subtree_control", "cpu\n");
	assert_true(cg_v2_enable_controllers(dfd, &l, &e) < 0);
	assert_non_null(strstr(e.msg, "memory"));
	/* not needed: skipped quietly */
	struct rt_limits none = {0};
	assert_int_equal(cg_v2_enable_controllers(dfd, &none, &e), 0);
	close(dfd);
	struct orch_err ig = {0};
	rm_rf(t, &ig);
	assert_int_equal(cg_shares_to_weight(2), 1);
	assert_int_equal(cg_shares_to_weight(262144), 10000);
	assert_int_equal(cg_shares_to_weight(0), 0);
}

static void test_cgroup_v1_writer(void **state)
{
	(void)state;
	_cleanup_free_ char *t = tmpdir();
	put(t, "memory.limit_in_bytes", "");
	put(t, "memory.memsw.limit_in_bytes", "");
	put(t, "cpu.cfs_period_us", "");
	put(t, "cpu.cfs_quota_us", "");
	put(t, "cpu.shares", "");
	put(t, "pids.max", "");
	int dfd = open(t, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct rt_limits l = {
		.memory = 32 << 20, .cpus = 1.5, .cpu_shares = 512, .pids = 7};
	struct orch_err e = {0};
	for (int c = 0; c < CG_NCTL; c++)
		assert_int_equal(cg_v1_write_limits(dfd, c, &l, &e), 0);
	char *s;
	assert_string_equal((s = get(t, "memory.limit_in_bytes")), "33554432");
	free(s);
	/* docker's default: swap as large as memory */
	assert_string_equal((s = get(t, "memory.memsw.limit_in_bytes")),
			    "67108864");
	free(s);
	assert_string_equal((s = get(t, "cpu.cfs_period_us")), "100000");
	free(s);
	assert_string_equal((s = get(t, "cpu.cfs_quota_us")), "150000");
	free(s);
	assert_string_equal((s = get(t, "cpu.shares")), "512");
	free(s);
	assert_string_equal((s = get(t, "pids.max")), "7");
	free(s);
	/* memory+swap without swap accounting cannot be enforced */
	_cleanup_free_ char *memsw = path_join(t, "memory.memsw.limit_in_bytes");
	unlink(memsw);
	l.memory_swap = 64 << 20;
	assert_true(cg_v1_write_limits(dfd, CG_MEMORY, &l, &e) < 0);
	assert_non_null(strstr(e.msg, "swap"));
	close(dfd);
	struct orch_err ig = {0};
	rm_rf(t, &ig);
}

/* ---- rlimits ------------------------------------------------------------------------ */

static void test_rlimits(void **state)
{
	(void)state;
	struct rt_rlimit out[4];
	size_t n = rl_resolve(NULL, 0, 20000, out);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].resource, RLIMIT_NOFILE);
	assert_int_equal(out[0].soft, 1024);
	assert_int_equal(out[0].hard, 20000);
	n = rl_resolve(NULL, 0, RLIM_INFINITY, out);
	assert_int_equal(out[0].hard, 524288);
	n = rl_resolve(NULL, 0, 512, out);
	assert_int_equal(out[0].soft, 512);
	assert_int_equal(out[0].hard, 512);
	struct rt_rlimit spec[] = {{RLIMIT_NPROC, 100, 200},
				   {RLIMIT_NOFILE, 4096, 1000000}};
	n = rl_resolve(spec, 2, 20000, out);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].resource, RLIMIT_NPROC);
	assert_int_equal(out[1].soft, 4096);
	assert_int_equal(out[1].hard, 20000);
}

/* ---- orch-runtime run ----------------------------------------------------------------- */

static int parse(struct rt_cli_run *o, struct orch_err *e, ...)
{
	char *argv[64];
	int argc = 0;
	va_list ap;
	va_start(ap, e);
	char *a;
	while ((a = va_arg(ap, char *)))
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	return rt_cli_parse_run(argc, argv, o, e);
}

static void test_cli_run(void **state)
{
	(void)state;
	struct rt_cli_run o;
	struct orch_err e = {0};
	assert_int_equal(
		parse(&o, &e, "run", "--rootfs", "/r1", "--rootfs", "/r2",
		      "--memory", "64m", "--cpus", "0.5", "--pids", "20",
		      "--user", "1000:1001", "--mount", "/a:/b:ro", "--mount",
		      "/c:/d", "--tmpfs", "/tmp:16m", "--cap-add", "NET_ADMIN",
		      "--cap-drop", "ALL", "--net", "host", "--hostname", "h",
		      "--env", "A=1", "--read-only", "--init", "--name", "web-1",
		      "--", "sh", "-c", "echo hi", NULL),
		0);
	struct rt_spec *s = &o.spec;
	assert_string_equal(s->id, "web-1");
	assert_string_equal(s->lowers[0], "/r1");
	assert_string_equal(s->lowers[1], "/r2");
	assert_null(s->rootfs);
	assert_int_equal(s->limits.memory, 64 << 20);
	assert_true(s->limits.cpus > 0.49 && s->limits.cpus < 0.51);
	assert_int_equal(s->limits.pids, 20);
	assert_int_equal(s->uid, 1000);
	assert_int_equal(s->gid, 1001);
	assert_int_equal(s->n_mounts, 3);
	assert_true(s->mounts[0].readonly);
	assert_string_equal(s->mounts[0].target, "/b");
	assert_false(s->mounts[1].readonly);
	assert_int_equal(s->mounts[2].type, RT_MOUNT_TMPFS);
	assert_int_equal(s->mounts[2].size, 16 << 20);
	assert_string_equal(s->cap_add[0], "NET_ADMIN");
	assert_false(s->namespaces & RT_NS_NET);
	assert_true(s->readonly_rootfs);
	assert_true(s->init);
	assert_true(s->no_new_privs);
	assert_string_equal(s->argv[2], "echo hi");
	assert_string_equal(s->env[0], "A=1");
	rt_cli_run_clear(&o);

	assert_int_equal(parse(&o, &e, "run", "--rw", "/r", "true", NULL), 0);
	assert_string_equal(o.spec.rootfs, "/r");
	assert_true(o.spec.namespaces & RT_NS_NET);
	assert_int_equal(strlen(o.spec.id), 64);
	rt_cli_run_clear(&o);

	assert_int_equal(parse(&o, &e, "run", "--netns", "/run/netns/x",
			       "--rootfs", "/r", "--", "true", NULL),
			 0);
	assert_string_equal(o.spec.netns_path, "/run/netns/x");
	assert_false(o.spec.namespaces & RT_NS_NET);
	rt_cli_run_clear(&o);
}

static void test_cli_userns(void **state)
{
	(void)state;
	struct rt_cli_run o;
	struct orch_err e = {0};
	assert_int_equal(parse(&o, &e, "run", "--rootfs", "/r", "--userns",
			       "200000", "--mount", "/a:/b", "--tmpfs", "/t",
			       "true", NULL),
			 0);
	struct rt_spec *s = &o.spec;
	assert_true(s->namespaces & RT_NS_USER);
	assert_int_equal(s->n_uid_map, 1);
	assert_int_equal(s->n_gid_map, 1);
	assert_int_equal(s->uid_map[0].inside, 0);
	assert_int_equal(s->uid_map[0].outside, 200000);
	assert_int_equal(s->uid_map[0].count, 65536);
	assert_int_equal(s->mounts[0].idmap, RT_IDMAP_HOST);
	assert_int_equal(s->mounts[1].idmap, RT_IDMAP_NONE);
	uint32_t base, count;
	assert_true(idmap_single(s, &base, &count));
	assert_int_equal(base, 200000);
	rt_cli_run_clear(&o);
	assert_int_equal(parse(&o, &e, "run", "--rootfs", "/r", "--userns",
			       "100000:10", "true", NULL),
			 0);
	assert_int_equal(o.spec.uid_map[0].count, 10);
	rt_cli_run_clear(&o);
	static const char *const bad[] = {"x", "5:0", "5:", "4294967295:2",
					  "1:2:3", ""};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		e = (struct orch_err){0};
		assert_int_equal(parse(&o, &e, "run", "--rootfs", "/r",
				       "--userns", bad[i], "true", NULL),
				 -EINVAL);
		assert_non_null(strstr(e.msg, "--userns"));
	}
}

static void test_idmap_bind_map(void **state)
{
	(void)state;
	struct rt_idmap m[2];
	/* Host ids 1.. show as themselves, the range's root as root, and
	 * the host's root not at all. */
	assert_int_equal(idmap_bind_map(200000, 65536, m), 2);
	assert_int_equal(m[0].inside, 1);
	assert_int_equal(m[0].outside, 200001);
	assert_int_equal(m[0].count, 65535);
	assert_int_equal(m[1].inside, 200000);
	assert_int_equal(m[1].outside, 200000);
	assert_int_equal(m[1].count, 1);
	assert_int_equal(idmap_bind_map(7, 1, m), 1);
	assert_int_equal(m[0].inside, 7);
	struct rt_spec s;
	rt_spec_init(&s);
	struct rt_idmap u = {0, 1000, 65536}, g = {0, 2000, 65536};
	s.uid_map = &u;
	s.gid_map = &g;
	s.n_uid_map = s.n_gid_map = 1;
	uint32_t base, count;
	assert_false(idmap_single(&s, &base, &count)); /* uids != gids */
	g.outside = 1000;
	g.inside = 1;
	assert_false(idmap_single(&s, &base, &count)); /* not from 0 */
}

/* The pool in a scratch ORCH_ROOT: three ranges from orch.json. */
/* A user's range in an /etc/subuid-style file, by name or by uid. */
static void test_subid_range(void **state)
{
	(void)state;
	char path[] = "/tmp/orch-test-subuid.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "# comment\nbob:100000:65536\n1003:300000:70000\n"
			   "carol:200000:10\ndave:1:2:3\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct orch_err e = {0};
	uint32_t s = 0, n = 0;
	assert_int_equal(rt_subid_range(path, "bob", 1002, &s, &n, &e), 0);
	assert_int_equal(s, 100000);
	assert_int_equal(n, 65536);
	assert_int_equal(rt_subid_range(path, "erin", 1003, &s, &n, &e), 0);
	assert_int_equal(s, 300000);
	assert_int_equal(n, 70000);
	assert_int_equal(rt_subid_range(path, "frank", 1009, &s, &n, &e),
			 -ENOENT);
	assert_non_null(strstr(e.msg, "no range"));
	e = (struct orch_err){0};
	assert_int_equal(rt_subid_range(path, "carol", 1004, &s, &n, &e),
			 -EINVAL);
	assert_non_null(strstr(e.msg, ":4: the range of user carol"));
	e = (struct orch_err){0};
	assert_int_equal(rt_subid_range(path, "dave", 1005, &s, &n, &e),
			 -EINVAL);
	unlink(path);
}

static void test_idpool(void **state)
{
	(void)state;
	char root[] = "/tmp/orch-test-idpool.XXXXXX";
	assert_non_null(mkdtemp(root));
	setenv("ORCH_ROOT", root, 1);
	unsetenv("ORCH_USERNS");
	char conf[256];
	snprintf(conf, sizeof(conf), "%s/orch.json", root);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fputs("{\"userns\": {\"start\": 300000, \"count\": 196608}}\n", f);
	fclose(f);
	struct orch_err e = {0};
	struct rt_userns_conf c;
	assert_int_equal(rt_userns_config(&c, &e), 0);
	assert_true(c.enabled);
	assert_int_equal(c.start, 300000);
	uint32_t a, b, x, d;
	assert_int_equal(rt_idrange_acquire("a", &a, &e), 0);
	assert_int_equal(rt_idrange_acquire("b", &b, &e), 0);
	assert_int_equal(a, 300000);
	assert_int_equal(b, 365536);
	assert_int_equal(rt_idrange_acquire("a", &x, &e), 0);
	assert_int_equal(x, a); /* held: the same */
	assert_int_equal(rt_idrange_held("a", &x), 0);
	assert_int_equal(rt_idrange_release("a", &e), 0);
	assert_int_equal(rt_idrange_held("a", &x), -ENOENT);
	/* A new owner takes a range nobody had before a's last one... */
	assert_int_equal(rt_idrange_acquire("c", &x, &e), 0);
	assert_int_equal(x, 431072);
	/* ...and a's when nothing else is free. */
	assert_int_equal(rt_idrange_acquire("d", &d, &e), 0);
	assert_int_equal(d, 300000);
	e = (struct orch_err){0};
	assert_int_equal(rt_idrange_acquire("a", &x, &e), -ENOSPC);
	assert_non_null(strstr(e.msg, "no user-namespace id range is free"));
	/* a gets its own back once free. */
	assert_int_equal(rt_idrange_release("c", &e), 0);
	assert_int_equal(rt_idrange_release("d", &e), 0);
	assert_int_equal(rt_idrange_acquire("a", &x, &e), 0);
	assert_int_equal(x, 300000);

	setenv("ORCH_USERNS", "host", 1);
	assert_int_equal(rt_userns_config(&c, &e), 0);
	assert_false(c.enabled);
	setenv("ORCH_USERNS", "maybe", 1);
	e = (struct orch_err){0};
	assert_int_equal(rt_userns_config(&c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "ORCH_USERNS=maybe"));
	unsetenv("ORCH_USERNS");
	/* The config is read again when ORCH_ROOT or ORCH_USERNS change. */
	char root2[] = "/tmp/orch-test-idpool.XXXXXX";
	assert_non_null(mkdtemp(root2));
	setenv("ORCH_ROOT", root2, 1);
	snprintf(conf, sizeof(conf), "%s/orch.json", root2);
	f = fopen(conf, "w");
	fputs("{\n  \"userns\": [1,\n}\n", f);
	fclose(f);
	e = (struct orch_err){0};
	assert_int_equal(rt_userns_config(&c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "orch.json:3:"));
	f = fopen(conf, "w");
	fputs("{\"userns\": {\"start\": 1, \"count\": 10}}\n", f);
	fclose(f);
	setenv("ORCH_USERNS", "remap", 1);
	e = (struct orch_err){0};
	assert_int_equal(rt_userns_config(&c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "M >= 65536"));
	unsetenv("ORCH_USERNS");
	unsetenv("ORCH_ROOT");
	rm_rf(root, NULL);
	rm_rf(root2, NULL);
}

/* Entries of dir but . and .. */
static int dir_count(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	for (struct dirent *de; (de = readdir(d));)
		n += !streq(de->d_name, ".") && !streq(de->d_name, "..");
	closedir(d);
	return n;
}

/* dir holds upper/ (0755) and work/ (0700) alone, both empty and ours. */
static bool upper_clean(const char *dir)
{
	static const struct {
		const char *name;
		mode_t mode;
	} sub[] = {{"upper", 0755}, {"work", 0700}};
	if (dir_count(dir) != 2)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(sub); i++) {
		_cleanup_free_ char *p = path_join(dir, sub[i].name);
		struct stat st;
		if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode) ||
		    (st.st_mode & 07777) != sub[i].mode ||
		    st.st_uid != geteuid() || st.st_gid != getegid() ||
		    dir_count(p) != 0)
			return false;
	}
	return true;
}

/* Containers' directories: a removed one is emptied and taken by the
 * next; one that cannot be made as mkdir makes it is removed. */
static void test_upper_spares(void **state)
{
	(void)state;
	char root[] = "/tmp/orch-test-upper.XXXXXX";
	assert_non_null(mkdtemp(root));
	setenv("ORCH_ROOT", root, 1);
	struct orch_err e = {0};
	_cleanup_free_ char *a = xasprintf("%s/containers/a", root);
	_cleanup_free_ char *b = xasprintf("%s/containers/b", root);
	_cleanup_free_ char *spares = xasprintf("%s/containers/.spare", root);
	assert_int_equal(upper_make(a, &e), 0);
	assert_true(upper_clean(a));
	/* What the container wrote, and its root's mode and owner. */
	_cleanup_free_ char *up = path_join(a, "upper");
	put(up, "file", "x");
	_cleanup_free_ char *sub = path_join(up, "dir");
	assert_int_equal(mkdir(sub, 0700), 0);
	put(sub, "inner", "y");
	assert_int_equal(chmod(up, 0700), 0);
	if (geteuid() == 0)
		assert_int_equal(chown(up, 5, 5), 0);
	_cleanup_free_ char *ww = xasprintf("%s/work/work", a);
	assert_int_equal(mkdir(ww, 0700), 0);
	assert_int_equal(rt_upper_remove(a, &e), 0);
	assert_int_equal(access(a, F_OK), -1);
	/* Kept emptied, with one more made ahead while there are few. */
	assert_int_equal(dir_count(spares), 2);
	_cleanup_free_ char *kept = path_join(spares, "a");
	assert_true(upper_clean(kept));
	/* b takes one, as mkdir made it. */
	assert_int_equal(upper_make(b, &e), 0);
	assert_int_equal(dir_count(spares), 1);
	assert_true(upper_clean(b));
	/* The same directory made again (a restart) is kept as it is. */
	_cleanup_free_ char *bup = path_join(b, "upper");
	put(bup, "kept", "z");
	assert_int_equal(upper_make(b, &e), 0);
	_cleanup_free_ char *bk = path_join(bup, "kept");
	assert_int_equal(access(bk, F_OK), 0);
	/* Anything but upper/ and work/ in it: removed, not kept. */
	put(b, "stray", "");
	assert_int_equal(rt_upper_remove(b, &e), 0);
	assert_int_equal(access(b, F_OK), -1);
	assert_int_equal(dir_count(spares), 1);
	/* A directory of the caller's choosing is removed. */
	_cleanup_free_ char *own = xasprintf("%s/own", root);
	assert_int_equal(upper_make(own, &e), 0);
	assert_int_equal(rt_upper_remove(own, &e), 0);
	assert_int_equal(access(own, F_OK), -1);
	assert_int_equal(dir_count(spares), 1);
	/* At most 64 are kept. */
	for (int i = 0; i < 70; i++) {
		_cleanup_free_ char *c =
		    xasprintf("%s/containers/c%d", root, i);
		assert_int_equal(upper_make(c, &e), 0);
	}
	assert_int_equal(dir_count(spares), 0);
	for (int i = 0; i < 70; i++) {
		_cleanup_free_ char *c =
		    xasprintf("%s/containers/c%d", root, i);
		assert_int_equal(rt_upper_remove(c, &e), 0);
		assert_int_equal(access(c, F_OK), -1);
	}
	assert_int_equal(dir_count(spares), 64);
	unsetenv("ORCH_ROOT");
	rm_rf(root, NULL);
}

static void test_cli_run_errors(void **state)
{
	(void)state;
	struct rt_cli_run o;
	struct orch_err e = {0};
	assert_int_equal(parse(&o, &e, "run", "--bogus", "--rootfs", "/r",
			       "true", NULL),
			 -EINVAL);
	assert_int_equal(parse(&o, &e, "run", "--rootfs", "/r", NULL), -EINVAL);
	assert_int_equal(parse(&o, &e, "run", "true", NULL), -EINVAL);
	assert_int_equal(parse(&o, &e, "run", "--rootfs", "/r", "--rw", "/x",
			       "true", NULL),
			 -EINVAL);
	assert_int_equal(parse(&o, &e, "run", "--rootfs", "/r", "--memory",
			       "lots", "true", NULL),
			 -EINVAL);
	assert_int_equal(parse(&o, &e, "run", "--rootfs", "/r", "--cpus", "-1",
			       "true", NULL),
			 -EINVAL);
	assert_int_equal(parse(&o, &e, "run", "--rootfs", "/r", "--mount",
			       "/a:rel", "true", NULL),
			 -EINVAL);
	assert_int_equal(parse(&o, &e, "run", "--rootfs", "/r", "--user",
			       "bob", "true", NULL),
			 -EINVAL);
	assert_int_equal(parse(&o, &e, "run", "--rootfs", "/r", "--name",
			       "../x", "true", NULL),
			 -EINVAL);
	assert_int_equal(parse(&o, &e, "run", "--rootfs", "/r", "--memory",
			 NULL),
			 -EINVAL);
	assert_true(rt_id_valid("web-1.a_b"));
	assert_false(rt_id_valid("-x"));
	assert_false(rt_id_valid("a/b"));
	assert_false(rt_id_valid(""));
}

/* ---- paths inside the root ------------------------------------------------------------ */

static void test_open_in_root(void **state)
{
	(void)state;
	_cleanup_free_ char *t = tmpdir();
	_cleanup_free_ char *root = path_join(t, "root");
	_cleanup_free_ char *outside = path_join(t, "outside");
	assert_int_equal(mkdir(root, 0755), 0);
	assert_int_equal(mkdir(outside, 0755), 0);
	/* hostile links: absolute and relative, both aiming at the host */
	_cleanup_free_ char *abs = path_join(root, "abs");
	_cleanup_free_ char *rel = path_join(root, "rel");
	_cleanup_free_ char *target = xasprintf("%s/outside", t);
	assert_int_equal(symlink(target, abs), 0);
	assert_int_equal(symlink("../../../../../../../../outside", rel), 0);
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct orch_err e = {0};
	int fd = mnt_open_in_root(rootfd, "/abs/sub", true, false, &e);
	assert_true(fd >= 0);
	close(fd);
	fd = mnt_open_in_root(rootfd, "/rel/file", true, true, &e);
	assert_true(fd >= 0);
	close(fd);
	fd = mnt_open_in_root(rootfd, "/../../x/y", true, false, &e);
	assert_true(fd >= 0);
	close(fd);
	struct stat st;
	_cleanup_free_ char *esc1 = path_join(outside, "sub");
	_cleanup_free_ char *esc2 = path_join(outside, "file");
	assert_int_equal(stat(esc1, &st), -1);
	assert_int_equal(stat(esc2, &st), -1);
	/* ... they were created inside the root instead */
	_cleanup_free_ char *in1 = xasprintf("%s%s/sub", root, target);
	_cleanup_free_ char *in2 = xasprintf("%s/outside/file", root);
	_cleanup_free_ char *in3 = xasprintf("%s/x/y", root);
	assert_int_equal(stat(in1, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(stat(in2, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(stat(in3, &st), 0);
	/* without create, a missing path is an error */
	assert_true(mnt_open_in_root(rootfd, "/nope", false, false, &e) < 0);
	close(rootfd);
	struct orch_err ig = {0};
	rm_rf(t, &ig);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps_default),
		cmocka_unit_test(test_caps_add_drop),
		cmocka_unit_test(test_caps_available),
		cmocka_unit_test(test_seccomp_default),
		cmocka_unit_test(test_seccomp_caps),
		cmocka_unit_test(test_seccomp_json),
		cmocka_unit_test(test_seccomp_bpf_default),
		cmocka_unit_test(test_seccomp_bpf_json),
		cmocka_unit_test(test_seccomp_bpf_precedence),
		cmocka_unit_test(test_seccomp_compile_cache),
		cmocka_unit_test(test_cgroup_v2_writer),
		cmocka_unit_test(test_cgroup_v2_controllers),
		cmocka_unit_test(test_cgroup_v1_writer),
		cmocka_unit_test(test_rlimits),
		cmocka_unit_test(test_cli_run),
		cmocka_unit_test(test_cli_run_errors),
		cmocka_unit_test(test_cli_userns),
		cmocka_unit_test(test_idmap_bind_map),
		cmocka_unit_test(test_subid_range),
		cmocka_unit_test(test_idpool),
		cmocka_unit_test(test_upper_spares),
		cmocka_unit_test(test_open_in_root),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
