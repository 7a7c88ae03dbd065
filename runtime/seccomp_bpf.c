/* seccomp_bpf: a resolved profile compiled to the classic BPF program the
 * kernel runs on every syscall of the container (pure: no syscalls).
 *
 * libseccomp (2.5) emits one comparison per listed syscall and
 * architecture, in a chain: Docker's default profile becomes 685-755
 * instructions, which the kernel checks, converts and JITs for every
 * container (0.6 ms a load on this kind of machine) and which each
 * syscall walks in order.  Here each architecture's syscall numbers are
 * cut into runs that share an outcome (a return value, or one syscall's
 * argument checks) and found by a binary search over the runs' first
 * numbers: the same profile takes 435 instructions, loads in 0.19 ms and
 * costs a syscall about ten comparisons.  libseccomp still names the
 * syscalls (its tables give each architecture's numbers).
 *
 * Semantics, per syscall: its rules with argument checks are tried in the
 * profile's order and the first whose checks all hold decides; otherwise
 * its first unconditional rule; otherwise the profile's default.  Checks on
 * a 64-bit architecture compare whole 64-bit arguments; on a 32-bit one
 * (i386, arm) arguments are 32 bits wide, and the low halves are compared.
 * Any other architecture, and x32 syscalls on x86_64, kill the process. */
#include "runtime/container_impl.h"

#include <endian.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stddef.h>

#define X32_SYSCALL_BIT 0x40000000U
#define RET_KILL	SECCOMP_RET_KILL_PROCESS
/* Jump targets inside one rule, resolved once its length is known; real
 * offsets inside a rule are far smaller. */
#define J_NEXT 0xFE /* past the current argument check */
#define J_FAIL 0xFF /* past the rule: to the next rule of the syscall */

struct prog {
	struct sock_filter *ins;
	size_t n, cap;
};

static void emit(struct prog *p, uint16_t code, uint8_t jt, uint8_t jf,
		 uint32_t k)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->ins = xrealloc(p->ins, p->cap * sizeof(*p->ins));
	}
	p->ins[p->n++] = (struct sock_filter){code, jt, jf, k};
}

static void append(struct prog *p, const struct prog *q)
{
	for (size_t i = 0; i < q->n; i++)
		emit(p, q->ins[i].code, q->ins[i].jt, q->ins[i].jf,
		     q->ins[i].k);
}

static uint32_t ret_value(enum sc_action a, int err)
{
	switch (a) {
	case SC_ALLOW:
		return SECCOMP_RET_ALLOW;
	case SC_ERRNO:
		return SECCOMP_RET_ERRNO | ((uint32_t)err & SECCOMP_RET_DATA);
	case SC_KILL:
		return RET_KILL;
	case SC_TRAP:
		return SECCOMP_RET_TRAP;
	case SC_LOG:
		return SECCOMP_RET_LOG;
	}
	return RET_KILL;
}

static uint32_t arg_word(unsigned index, bool high)
{
	uint32_t off =
	    (uint32_t)offsetof(struct seccomp_data, args) + 8 * index;
#if __BYTE_ORDER == __LITTLE_ENDIAN
	return off + (high ? 4 : 0);
#else
	return off + (high ? 0 : 4);
#endif
}

#define LD(p, off)	      emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, off)
#define JMP(p, op, k, jt, jf) emit(p, BPF_JMP | (op) | BPF_K, jt, jf, k)

/* Points the jumps to label made since start past the last instruction. */
static void resolve(struct prog *p, size_t start, uint8_t label)
{
	for (size_t i = start; i < p->n; i++) {
		uint8_t past = (uint8_t)(p->n - i - 1);
		if (p->ins[i].jt == label)
			p->ins[i].jt = past;
		if (p->ins[i].jf == label)
			p->ins[i].jf = past;
	}
}

/* One argument check: falls through when it holds, J_FAIL when not. */
static void emit_check(struct prog *p, const struct sc_arg *a, bool wide)
{
	uint32_t vh = (uint32_t)(a->value >> 32), vl = (uint32_t)a->value;
	size_t start = p->n;
	if (wide) {
		LD(p, arg_word(a->index, true));
		switch (a->op) {
		case SCMP_CMP_EQ:
			JMP(p, BPF_JEQ, vh, 0, J_FAIL);
			break;
		case SCMP_CMP_NE:
			JMP(p, BPF_JEQ, vh, 0, J_NEXT);
			break;
		case SCMP_CMP_GT:
		case SCMP_CMP_GE:
			JMP(p, BPF_JGT, vh, J_NEXT, 0);
			JMP(p, BPF_JEQ, vh, 0, J_FAIL);
			break;
		case SCMP_CMP_LT:
		case SCMP_CMP_LE:
			JMP(p, BPF_JGT, vh, J_FAIL, 0);
			JMP(p, BPF_JEQ, vh, 0, J_NEXT);
			break;
		case SCMP_CMP_MASKED_EQ:
			emit(p, BPF_ALU | BPF_AND | BPF_K, 0, 0, vh);
			JMP(p, BPF_JEQ, (uint32_t)(a->value2 >> 32), 0, J_FAIL);
			break;
		}
	}
	LD(p, arg_word(a->index, false));
	switch (a->op) {
	case SCMP_CMP_EQ:
		JMP(p, BPF_JEQ, vl, 0, J_FAIL);
		break;
	case SCMP_CMP_NE:
		JMP(p, BPF_JEQ, vl, J_FAIL, 0);
		break;
	case SCMP_CMP_GT:
		JMP(p, BPF_JGT, vl, 0, J_FAIL);
		break;
	case SCMP_CMP_GE:
		JMP(p, BPF_JGE, vl, 0, J_FAIL);
		break;
	case SCMP_CMP_LT:
		JMP(p, BPF_JGE, vl, J_FAIL, 0);
		break;
	case SCMP_CMP_LE:
		JMP(p, BPF_JGT, vl, J_FAIL, 0);
		break;
	case SCMP_CMP_MASKED_EQ:
		emit(p, BPF_ALU | BPF_AND | BPF_K, 0, 0, vl);
		JMP(p, BPF_JEQ, (uint32_t)a->value2, 0, J_FAIL);
		break;
	}
	resolve(p, start, J_NEXT);
}

/* A conditional rule: its checks, then its return; J_FAIL lands on the
 * instruction after that return. */
static void emit_rule(struct prog *p, const struct sc_rule *r, bool wide)
{
	size_t start = p->n;
	for (size_t k = 0; k < r->n_args; k++)
		emit_check(p, &r->args[k], wide);
	emit(p, BPF_RET | BPF_K, 0, 0, ret_value(r->action, r->errno_ret));
	resolve(p, start, J_FAIL);
}

/* One syscall of one architecture: the rules naming it, in profile order. */
struct sys_rules {
	uint32_t nr;
	size_t first; /* index into the sorted (nr, rule) pairs */
	size_t n;
};
/* A run of syscall numbers from start up to the next run's start: either
 * every number returns ret, or (sys != NULL) one syscall's checks. */
struct run {
	uint32_t start;
	uint32_t ret;
	const struct sys_rules *sys;
};

/* A rule as it applies to one syscall number of one architecture. */
struct nr_rule {
	uint32_t nr;
	size_t order; /* the rule's place in the profile */
	struct sc_rule rule;
};

static int nr_rule_cmp(const void *a, const void *b)
{
	const struct nr_rule *x = a, *y = b;
	if (x->nr != y->nr)
		return x->nr < y->nr ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

struct arch_ctx {
	const struct nr_rule *pairs;
	bool wide;
	uint32_t dflt;
};

/* What the syscall returns when none of its conditional rules holds. */
static uint32_t sys_fallback(const struct arch_ctx *c,
			     const struct sys_rules *s)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct sc_rule *r = &c->pairs[s->first + i].rule;
		if (r->n_args == 0)
			return ret_value(r->action, r->errno_ret);
	}
	return c->dflt;
}

/* Whether the rule has checks that can change what the syscall returns
 * (fb when no conditional rule holds). */
static bool rule_decides(const struct sc_rule *r, uint32_t fb)
{
	return r->n_args && ret_value(r->action, r->errno_ret) != fb;
}

/* Whether some conditional rule decides (else the syscall is a plain
 * return). */
static bool sys_has_checks(const struct arch_ctx *c, const struct sys_rules *s)
{
	uint32_t fb = sys_fallback(c, s);
	for (size_t i = 0; i < s->n; i++)
		if (rule_decides(&c->pairs[s->first + i].rule, fb))
			return true;
	return false;
}

static void emit_sys(struct prog *p, const struct arch_ctx *c,
		     const struct sys_rules *s)
{
	uint32_t fb = sys_fallback(c, s);
	for (size_t i = 0; i < s->n; i++) {
		const struct sc_rule *r = &c->pairs[s->first + i].rule;
		if (rule_decides(r, fb))
			emit_rule(p, r, c->wide);
	}
	emit(p, BPF_RET | BPF_K, 0, 0, fb);
}

/* Runs [lo, hi) as a binary search on the syscall number in A: each node
 * jumps to the upper half when A >= its middle run's start. */
static void emit_tree(struct prog *p, const struct arch_ctx *c,
		      const struct run *runs, size_t lo, size_t hi)
{
	if (hi - lo == 1) {
		if (runs[lo].sys)
			emit_sys(p, c, runs[lo].sys);
		else
			emit(p, BPF_RET | BPF_K, 0, 0, runs[lo].ret);
		return;
	}
	size_t mid = lo + (hi - lo) / 2;
	struct prog left = {0};
	emit_tree(&left, c, runs, lo, mid);
	if (left.n <= 255) {
		JMP(p, BPF_JGE, runs[mid].start, (uint8_t)left.n, 0);
	} else {
		JMP(p, BPF_JGE, runs[mid].start, 0, 1);
		emit(p, BPF_JMP | BPF_JA, 0, 0, (uint32_t)left.n);
	}
	append(p, &left);
	free(left.ins);
	emit_tree(p, c, runs, mid, hi);
}

/* Appends a run starting at start (>= the last run's start): it replaces
 * a last run that starts there too, and merges into an equal one before. */
static void add_run(struct run **runs, size_t *n, uint32_t start, uint32_t ret,
		    const struct sys_rules *sys)
{
	if (*n && (*runs)[*n - 1].start == start)
		(*n)--;
	if (*n && !sys && !(*runs)[*n - 1].sys && (*runs)[*n - 1].ret == ret)
		return; /* continues the run before */
	*runs = xrealloc(*runs, (*n + 1) * sizeof(**runs));
	(*runs)[(*n)++] = (struct run){start, ret, sys};
}

/* An architecture's syscall names by number, read from libseccomp's
 * table once, when first needed. */
#define NAMED_NRS 1024
struct nr_names {
	char *name[NAMED_NRS];
	bool filled;
};

/* The syscall's number on arch, or -1.  libseccomp names i386's socket
 * and IPC calls as pseudo-syscalls (negative: operations of socketcall
 * and ipc), which it also turns into their own syscalls (socket is 359):
 * those numbers come from its table the other way round.  The
 * multiplexers themselves get only the rules that name them. */
static int syscall_nr(uint32_t arch, const char *name, struct nr_names *t)
{
	int nr = seccomp_syscall_resolve_name_arch(arch, name);
	if (nr >= 0 || nr == __NR_SCMP_ERROR)
		return nr >= 0 ? nr : -1;
	for (int n = 0; !t->filled && n < NAMED_NRS; n++)
		t->name[n] = seccomp_syscall_resolve_num_arch(arch, n);
	t->filled = true;
	for (int n = 0; n < NAMED_NRS; n++)
		if (t->name[n] && streq(t->name[n], name))
			return n;
	return -1;
}

/* Appends to pairs, which has room for two per rule of the profile. */
static void add_pair(struct nr_rule *pairs, size_t *n, int nr, size_t order,
		     const struct sc_rule *r)
{
	pairs[(*n)++] = (struct nr_rule){(uint32_t)nr, order, *r};
}

/* A rule naming one of socketcall's or ipc's operations also applies to
 * the multiplexer, with the operation's number as its first argument
 * (libseccomp's pseudo-syscalls are -100 - op and -200 - op).  The
 * operation's own arguments are behind a pointer there: a rule that
 * refuses refuses the operation whatever they are; one that allows only
 * for some arguments allows nothing through the multiplexer. */
static void add_multiplexed(struct nr_rule *pairs, size_t *n, uint32_t arch,
			    size_t order, const struct sc_rule *r)
{
	int pseudo = seccomp_syscall_resolve_name_arch(arch, r->name);
	const char *mux = pseudo <= -101 && pseudo >= -120   ? "socketcall"
			  : pseudo <= -201 && pseudo >= -224 ? "ipc"
							     : NULL;
	int mux_nr = mux ? seccomp_syscall_resolve_name_arch(arch, mux) : -1;
	if (mux_nr < 0)
		return;
	bool allows = r->action == SC_ALLOW || r->action == SC_LOG;
	if (allows && r->n_args)
		return;
	struct sc_rule m = *r;
	m.n_args = 1;
	m.args[0] = (struct sc_arg){
	    0, SCMP_CMP_EQ,
	    (uint64_t)(pseudo <= -201 ? -200 - pseudo : -100 - pseudo), 0};
	add_pair(pairs, n, mux_nr, order, &m);
}

/* The section of one architecture: loads the syscall number and decides. */
static void emit_arch(struct prog *p, const struct sc_profile *prof,
		      uint32_t arch)
{
	/* Each rule applies to its syscall and at most one multiplexer. */
	struct nr_rule *pairs = xcalloc(2 * prof->n_rules + 1, sizeof(*pairs));
	size_t n_pairs = 0;
	struct nr_names *names = xcalloc(1, sizeof(*names));
	for (size_t i = 0; i < prof->n_rules; i++) {
		const struct sc_rule *r = &prof->rules[i];
		int nr = syscall_nr(arch, r->name, names);
		if (nr >= 0)
			add_pair(pairs, &n_pairs, nr, i, r);
		add_multiplexed(pairs, &n_pairs, arch, i, r);
	}
	for (size_t n = 0; n < NAMED_NRS; n++)
		free(names->name[n]);
	free(names);
	if (n_pairs)
		qsort(pairs, n_pairs, sizeof(*pairs), nr_rule_cmp);
	struct sys_rules *sys = xcalloc(n_pairs + 1, sizeof(*sys));
	size_t n_sys = 0;
	for (size_t i = 0; i < n_pairs; i++) {
		if (!n_sys || sys[n_sys - 1].nr != pairs[i].nr)
			sys[n_sys++] = (struct sys_rules){pairs[i].nr, i, 0};
		sys[n_sys - 1].n++;
	}
	struct arch_ctx c = {
	    .pairs = pairs,
	    .wide = (arch & __AUDIT_ARCH_64BIT) != 0,
	    .dflt = ret_value(prof->default_action, prof->default_errno),
	};
	struct run *runs = NULL;
	size_t n_runs = 0;
	add_run(&runs, &n_runs, 0, c.dflt, NULL);
	for (size_t i = 0; i < n_sys; i++) {
		const struct sys_rules *s = &sys[i];
		if (arch == SCMP_ARCH_X86_64 && s->nr >= X32_SYSCALL_BIT)
			break;
		if (sys_has_checks(&c, s))
			add_run(&runs, &n_runs, s->nr, 0, s);
		else
			add_run(&runs, &n_runs, s->nr, sys_fallback(&c, s),
				NULL);
		if (s->nr != UINT32_MAX)
			add_run(&runs, &n_runs, s->nr + 1, c.dflt, NULL);
	}
	/* x32's syscalls reach an x86_64 filter with this bit set: refused
	 * like any other foreign architecture (the number -1 is a tracer's
	 * skipped syscall, and gets the default). */
	if (arch == SCMP_ARCH_X86_64) {
		add_run(&runs, &n_runs, X32_SYSCALL_BIT, RET_KILL, NULL);
		add_run(&runs, &n_runs, UINT32_MAX, c.dflt, NULL);
	}
	LD(p, offsetof(struct seccomp_data, nr));
	emit_tree(p, &c, runs, 0, n_runs);
	free(runs);
	free(sys);
	free(pairs);
}

/* The native architecture and the one its kernel also runs (as Docker's
 * profile lists them). */
static size_t filter_arches(uint32_t out[2])
{
#if defined(__x86_64__)
	out[0] = SCMP_ARCH_X86_64, out[1] = SCMP_ARCH_X86;
	return 2;
#elif defined(__aarch64__)
	out[0] = SCMP_ARCH_AARCH64, out[1] = SCMP_ARCH_ARM;
	return 2;
#else
	out[0] = seccomp_arch_native();
	return 1;
#endif
}

int sc_compile(const struct sc_profile *prof, struct sc_filter *out,
	       struct orch_err *e)
{
	for (size_t i = 0; i < prof->n_rules; i++)
		for (size_t k = 0; k < prof->rules[i].n_args; k++) {
			const struct sc_arg *a = &prof->rules[i].args[k];
			if (a->index >= 6 || a->op < SCMP_CMP_NE ||
			    a->op > SCMP_CMP_MASKED_EQ)
				return err_set(
				    e, EINVAL,
				    "seccomp rule for %s: bad argument check",
				    prof->rules[i].name);
		}
	uint32_t arches[2];
	size_t n_arches = filter_arches(arches);
	struct prog sections[2] = {{0}};
	for (size_t i = 0; i < n_arches; i++)
		emit_arch(&sections[i], prof, arches[i]);
	/* The dispatch on the architecture: a test and a jump to its
	 * section for each, then the refusal of any other; the sections
	 * follow from index head. */
	struct prog p = {0};
	LD(&p, offsetof(struct seccomp_data, arch));
	size_t head = 2 * n_arches + 2, before = 0;
	for (size_t i = 0; i < n_arches; i++) {
		JMP(&p, BPF_JEQ, arches[i], 0, 1);
		emit(&p, BPF_JMP | BPF_JA, 0, 0,
		     (uint32_t)(head + before - p.n - 1));
		before += sections[i].n;
	}
	emit(&p, BPF_RET | BPF_K, 0, 0, RET_KILL);
	for (size_t i = 0; i < n_arches; i++) {
		append(&p, &sections[i]);
		free(sections[i].ins);
	}
	if (p.n > BPF_MAXINSNS) {
		free(p.ins);
		return err_set(e, E2BIG,
			       "seccomp profile: %zu instructions, more than "
			       "the kernel's %d",
			       p.n, BPF_MAXINSNS);
	}
	out->prog.filter = p.ins;
	out->prog.len = (unsigned short)p.n;
	return 0;
}
