/* Device policy, pure: Docker's default device rules, the spec's devices
 * and cgroup rules as one allow list, and that list as a cgroup v2 BPF
 * device program.  The kernel side is in device_cgroup.c. */
#include "runtime/container_impl.h"

#include <ctype.h>
#include <inttypes.h>
#include <linux/bpf.h>

/* Docker's default: mknod of any node, and the standard character
 * devices (null, zero, full, random, urandom, tty, console, ptmx, pts). */
static const struct dev_rule docker_default[] = {
    {'c', DEV_ANY, DEV_ANY, DEV_MKNOD},
    {'b', DEV_ANY, DEV_ANY, DEV_MKNOD},
    {'c', 1, 3, DEV_RWM},
    {'c', 1, 5, DEV_RWM},
    {'c', 1, 7, DEV_RWM},
    {'c', 1, 8, DEV_RWM},
    {'c', 1, 9, DEV_RWM},
    {'c', 5, 0, DEV_RWM},
    {'c', 5, 1, DEV_RWM},
    {'c', 5, 2, DEV_RWM},
    {'c', 136, DEV_ANY, DEV_RWM},
};

int dev_access_parse(const char *s, unsigned *access)
{
	unsigned a = 0;
	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned bit = *s == 'r'   ? DEV_READ
			       : *s == 'w' ? DEV_WRITE
			       : *s == 'm' ? DEV_MKNOD
					   : 0;
		if (!bit || (a & bit))
			return -EINVAL;
		a |= bit;
	}
	*access = a;
	return 0;
}

void rt_device_clear(struct rt_device *d)
{
	free(d->host_path);
	free(d->path);
	memset(d, 0, sizeof(*d));
}

/* Docker's parseDevice: HOST, HOST:CONTAINER, HOST:PERMS or
 * HOST:CONTAINER:PERMS. */
int rt_device_parse(const char *text, struct rt_device *d, struct orch_err *e)
{
	memset(d, 0, sizeof(*d));
	_cleanup_free_ char *copy = xstrdup(text);
	char *part[3] = {0};
	size_t n = str_fields(copy, ':', part, 3);
	if (n > 3)
		return err_set(e, EINVAL,
			       "device \"%s\": want HOST[:CONTAINER][:PERMS]",
			       text);
	const char *host = part[0], *inside = NULL, *perms = "rwm";
	unsigned acc;
	if (n == 3) {
		inside = part[1];
		perms = part[2];
	} else if (n == 2) {
		if (dev_access_parse(part[1], &acc) == 0)
			perms = part[1];
		else
			inside = part[1];
	}
	if (!inside || !*inside)
		inside = host;
	if (host[0] != '/')
		return err_set(
		    e, EINVAL,
		    "device \"%s\": the host path %s is not absolute", text,
		    host);
	if (inside[0] != '/')
		return err_set(
		    e, EINVAL,
		    "device \"%s\": the container path %s is not absolute",
		    text, inside);
	if (dev_access_parse(perms, &acc) < 0)
		return err_set(e, EINVAL,
			       "device \"%s\": bad permissions \"%s\" (want a "
			       "combination of r, w and m)",
			       text, perms);
	d->host_path = xstrdup(host);
	d->path = xstrdup(inside);
	snprintf(d->access, sizeof(d->access), "%s", perms);
	return 0;
}

/* A major or minor number, or "*". */
static int parse_devnum(const char *s, size_t len, int64_t *out)
{
	if (len == 1 && s[0] == '*') {
		*out = DEV_ANY;
		return 0;
	}
	if (len == 0 || len > 7)
		return -EINVAL;
	int64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	/* The kernel's limits: 12 bits of major, 20 of minor. */
	if (v > 0xfffff)
		return -EINVAL;
	*out = v;
	return 0;
}

int dev_rule_parse(const char *text, struct dev_rule out[2], struct orch_err *e)
{
	char type = text[0];
	const char *p = text + 1;
	int64_t major = DEV_ANY, minor = DEV_ANY;
	unsigned access = DEV_RWM;
	if (type != 'a' && type != 'b' && type != 'c')
		goto bad;
	if (*p) { /* docker's "a" alone is allowed; otherwise all three */
		if (*p++ != ' ')
			goto bad;
		const char *colon = strchr(p, ':');
		const char *space = colon ? strchr(colon, ' ') : NULL;
		if (!colon || !space ||
		    parse_devnum(p, (size_t)(colon - p), &major) < 0 ||
		    parse_devnum(colon + 1, (size_t)(space - colon - 1),
				 &minor) < 0 ||
		    dev_access_parse(space + 1, &access) < 0)
			goto bad;
		if (major > 0xfff)
			goto bad;
	}
	struct dev_rule r = {type, major, minor, access};
	if (type != 'a') {
		out[0] = r;
		return 1;
	}
	out[0] = out[1] = r;
	out[0].type = 'c';
	out[1].type = 'b';
	return 2;
bad:
	return err_set(
	    e, EINVAL,
	    "device cgroup rule \"%s\": want \"TYPE MAJOR:MINOR "
	    "PERMS\" (TYPE a, b or c; MAJOR and MINOR a number or *; "
	    "PERMS of r, w, m)",
	    text);
}

int rt_device_rule_check(const char *rule, struct orch_err *e)
{
	struct dev_rule r[2];
	int n = dev_rule_parse(rule, r, e);
	return n < 0 ? n : 0;
}

void dev_rule_format(const struct dev_rule *r, char *buf, size_t size)
{
	char maj[16] = "*", min[16] = "*", acc[4];
	size_t k = 0;
	if (r->major != DEV_ANY)
		snprintf(maj, sizeof(maj), "%" PRId64, r->major);
	if (r->minor != DEV_ANY)
		snprintf(min, sizeof(min), "%" PRId64, r->minor);
	if (r->access & DEV_READ)
		acc[k++] = 'r';
	if (r->access & DEV_WRITE)
		acc[k++] = 'w';
	if (r->access & DEV_MKNOD)
		acc[k++] = 'm';
	acc[k] = '\0';
	snprintf(buf, size, "%c %s:%s %s", r->type, maj, min, acc);
}

static void policy_add(struct dev_policy *p, const struct dev_rule *r)
{
	p->rules = xrealloc(p->rules, (p->n_rules + 1) * sizeof(*p->rules));
	p->rules[p->n_rules++] = *r;
}

int dev_policy_build(bool privileged, const struct dev_node *nodes,
		     size_t n_nodes, char *const *rules, struct dev_policy *p,
		     struct orch_err *e)
{
	memset(p, 0, sizeof(*p));
	struct dev_policy out = {.allow_all = privileged};
	if (!privileged)
		for (size_t i = 0; i < ARRAY_SIZE(docker_default); i++)
			policy_add(&out, &docker_default[i]);
	for (size_t i = 0; i < n_nodes && !privileged; i++) {
		struct dev_rule r = {nodes[i].type, nodes[i].major,
				     nodes[i].minor, 0};
		if (dev_access_parse(nodes[i].dev.access, &r.access) < 0) {
			dev_policy_clear(&out);
			return err_set(
			    e, EINVAL, "device %s: bad permissions \"%s\"",
			    nodes[i].dev.host_path, nodes[i].dev.access);
		}
		policy_add(&out, &r);
	}
	for (size_t i = 0; rules && rules[i]; i++) {
		struct dev_rule r[2];
		int n = dev_rule_parse(rules[i], r, e);
		if (n < 0) {
			dev_policy_clear(&out);
			return n;
		}
		for (int k = 0; k < n && !privileged; k++)
			policy_add(&out, &r[k]);
	}
	*p = out;
	return 0;
}

void dev_policy_clear(struct dev_policy *p)
{
	free(p->rules);
	memset(p, 0, sizeof(*p));
}

static bool rule_matches(const struct dev_rule *r, char type, unsigned major,
			 unsigned minor, unsigned access)
{
	return r->type == type &&
	       (r->major == DEV_ANY || r->major == (int64_t)major) &&
	       (r->minor == DEV_ANY || r->minor == (int64_t)minor) &&
	       (access & ~r->access) == 0;
}

bool dev_policy_allows(const struct dev_policy *p, char type, unsigned major,
		       unsigned minor, unsigned access)
{
	if (p->allow_all)
		return true;
	for (size_t i = 0; i < p->n_rules; i++)
		if (rule_matches(&p->rules[i], type, major, minor, access))
			return true;
	return false;
}

/* ---- the BPF program ---------------------------------------------------- */

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off,
			    int32_t imm)
{
	return (struct bpf_insn){.code = code,
				 .dst_reg = dst & 0xf,
				 .src_reg = src & 0xf,
				 .off = off,
				 .imm = imm};
}

/* Registers while the rules are checked: type, access, major, minor. */
enum { R_CTX = 1, R_TYPE = 2, R_ACCESS = 3, R_MAJOR = 4, R_MINOR = 5 };

struct prog {
	struct bpf_insn *v;
	size_t n;
};

static void emit(struct prog *pr, struct bpf_insn i)
{
	pr->v = xrealloc(pr->v, (pr->n + 1) * sizeof(*pr->v));
	pr->v[pr->n++] = i;
}

/* A jump to the next rule: the offset is patched once the rule's end is
 * known. */
static void emit_jne(struct prog *pr, uint8_t reg, int32_t imm)
{
	emit(pr, insn(BPF_JMP | BPF_JNE | BPF_K, reg, 0, 0, imm));
}

/* Emits one rule: a run of "not this one? next rule" tests ending in
 * "return 1".  The type test is always there, so no rule makes the ones
 * after it unreachable (which the verifier refuses). */
static void emit_rule(struct prog *pr, const struct dev_rule *r)
{
	size_t start = pr->n;
	emit_jne(pr, R_TYPE,
		 r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
	if ((r->access & DEV_RWM) != DEV_RWM) {
		/* Any access bit the rule lacks: not this rule. */
		emit(pr,
		     insn(BPF_ALU | BPF_MOV | BPF_X, R_CTX, R_ACCESS, 0, 0));
		emit(pr, insn(BPF_ALU | BPF_AND | BPF_K, R_CTX, 0, 0,
			      (int32_t)(~r->access & DEV_RWM)));
		emit_jne(pr, R_CTX, 0);
	}
	if (r->major != DEV_ANY)
		emit_jne(pr, R_MAJOR, (int32_t)r->major);
	if (r->minor != DEV_ANY)
		emit_jne(pr, R_MINOR, (int32_t)r->minor);
	emit(pr, insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1));
	emit(pr, insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
	for (size_t i = start; i < pr->n; i++)
		if (pr->v[i].code == (BPF_JMP | BPF_JNE | BPF_K))
			pr->v[i].off = (int16_t)(pr->n - i - 1);
}

struct bpf_insn *dev_bpf_program(const struct dev_policy *p, size_t *n)
{
	struct prog pr = {0};
	/* struct bpf_cgroup_dev_ctx: access_type (type | access << 16),
	 * major, minor. */
	emit(&pr, insn(BPF_LDX | BPF_MEM | BPF_W, R_TYPE, R_CTX, 0, 0));
	emit(&pr, insn(BPF_ALU | BPF_AND | BPF_K, R_TYPE, 0, 0, 0xffff));
	emit(&pr, insn(BPF_LDX | BPF_MEM | BPF_W, R_ACCESS, R_CTX, 0, 0));
	emit(&pr, insn(BPF_ALU | BPF_RSH | BPF_K, R_ACCESS, 0, 0, 16));
	emit(&pr, insn(BPF_LDX | BPF_MEM | BPF_W, R_MAJOR, R_CTX, 4, 0));
	emit(&pr, insn(BPF_LDX | BPF_MEM | BPF_W, R_MINOR, R_CTX, 8, 0));
	for (size_t i = 0; i < p->n_rules; i++)
		emit_rule(&pr, &p->rules[i]);
	emit(&pr, insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0));
	emit(&pr, insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
	*n = pr.n;
	return pr.v;
}
