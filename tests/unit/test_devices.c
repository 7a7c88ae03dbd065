/* Unit tests for the device policy: Docker's --device syntax, device
 * cgroup rules, the default allow list, its cgroup v1 lines and its BPF
 * program (run here by a small interpreter of the instructions it uses,
 * against the policy's own answer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "runtime/container_impl.h"

#include <linux/bpf.h>

/* ---- rt_device_parse ---------------------------------------------------- */

static void expect_device(const char *text, const char *host, const char *path,
			  const char *access)
{
	struct rt_device d;
	struct orch_err e = {0};
	assert_int_equal(rt_device_parse(text, &d, &e), 0);
	assert_string_equal(d.host_path, host);
	assert_string_equal(d.path, path);
	assert_string_equal(d.access, access);
	rt_device_clear(&d);
}

static void test_device_parse(void **state)
{
	(void)state;
	expect_device("/dev/fuse", "/dev/fuse", "/dev/fuse", "rwm");
	expect_device("/dev/loop0:/dev/loop0:rw", "/dev/loop0", "/dev/loop0",
		      "rw");
	expect_device("/dev/sda:/dev/xvda", "/dev/sda", "/dev/xvda", "rwm");
	expect_device("/dev/sda:r", "/dev/sda", "/dev/sda", "r");
	expect_device("/dev/sda::mr", "/dev/sda", "/dev/sda", "mr");

	static const char *const bad[] = {
	    "dev/fuse",
	    "/dev/fuse:dev/x",
	    "/dev/fuse:/x:rx",
	    "/dev/fuse:/x:",
	    "/dev/fuse:/x:rr",
	    "/a:/b:r:w",
	    "",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct rt_device d;
		struct orch_err e = {0};
		assert_int_equal(rt_device_parse(bad[i], &d, &e), -EINVAL);
		assert_non_null(strstr(e.msg, "device"));
		rt_device_clear(&d);
	}
}

/* ---- rules -------------------------------------------------------------- */

static void test_rule_parse(void **state)
{
	(void)state;
	struct dev_rule r[2];
	struct orch_err e = {0};
	char line[64];
	assert_int_equal(dev_rule_parse("c 10:229 rwm", r, &e), 1);
	dev_rule_format(&r[0], line, sizeof(line));
	assert_string_equal(line, "c 10:229 rwm");
	assert_int_equal(dev_rule_parse("b 7:* mr", r, &e), 1);
	assert_int_equal(r[0].minor, DEV_ANY);
	assert_int_equal(r[0].access, DEV_READ | DEV_MKNOD);
	dev_rule_format(&r[0], line, sizeof(line));
	assert_string_equal(line, "b 7:* rm");
	/* "a" is every type: one rule for char, one for block. */
	assert_int_equal(dev_rule_parse("a *:* w", r, &e), 2);
	assert_int_equal(r[0].type, 'c');
	assert_int_equal(r[1].type, 'b');
	assert_int_equal(r[1].access, DEV_WRITE);
	assert_int_equal(dev_rule_parse("a", r, &e), 2);
	assert_int_equal(r[0].access, DEV_RWM);
	assert_int_equal(r[0].major, DEV_ANY);

	static const char *const bad[] = {
	    "x 1:3 r",	"c 1:3",    "c 1:3 ",	  "c 1:3 rq",	   "c 1 r",
	    "c a:3 r",	"c 1:3 rr", "c 4096:0 r", "c 1:9999999 r", "c  1:3 r",
	    "c 1:3 r ", "",	    "c -1:3 r",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		e = (struct orch_err){0};
		assert_int_equal(dev_rule_parse(bad[i], r, &e), -EINVAL);
		assert_non_null(strstr(e.msg, "device cgroup rule"));
		assert_int_equal(rt_device_rule_check(bad[i], &e), -EINVAL);
	}
	assert_int_equal(rt_device_rule_check("c 136:* rw", &e), 0);
}

static void test_policy_default(void **state)
{
	(void)state;
	struct dev_policy p;
	struct orch_err e = {0};
	assert_int_equal(dev_policy_build(false, NULL, 0, NULL, &p, &e), 0);
	assert_false(p.allow_all);
	/* The standard character devices work. */
	static const unsigned ok[][2] = {{1, 3},   {1, 5},   {1, 7}, {1, 8},
					 {1, 9},   {5, 0},   {5, 1}, {5, 2},
					 {136, 0}, {136, 77}};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		assert_true(dev_policy_allows(&p, 'c', ok[i][0], ok[i][1],
					      DEV_READ | DEV_WRITE));
	/* mknod of anything, but no read or write of what it makes. */
	assert_true(dev_policy_allows(&p, 'b', 7, 0, DEV_MKNOD));
	assert_true(dev_policy_allows(&p, 'c', 4, 0, DEV_MKNOD));
	assert_false(dev_policy_allows(&p, 'b', 7, 0, DEV_READ));
	assert_false(dev_policy_allows(&p, 'b', 7, 0, DEV_MKNOD | DEV_READ));
	assert_false(
	    dev_policy_allows(&p, 'c', 10, 237, DEV_READ)); /* loop-control */
	assert_false(dev_policy_allows(&p, 'c', 4, 0, DEV_WRITE));   /* tty0 */
	assert_false(dev_policy_allows(&p, 'c', 10, 229, DEV_READ)); /* fuse */
	assert_false(
	    dev_policy_allows(&p, 'b', 1, 3, DEV_READ)); /* type counts */

	char lines[512] = "";
	for (size_t i = 0; i < p.n_rules; i++) {
		char line[64];
		dev_rule_format(&p.rules[i], line, sizeof(line));
		strcat(lines, line);
		strcat(lines, "\n");
	}
	assert_string_equal(lines,
			    "c *:* m\nb *:* m\nc 1:3 rwm\nc 1:5 rwm\n"
			    "c 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\n"
			    "c 5:1 rwm\nc 5:2 rwm\nc 136:* rwm\n");
	dev_policy_clear(&p);
}

static void test_policy_devices(void **state)
{
	(void)state;
	struct dev_node nodes[2] = {
	    {.dev = {.host_path = "/dev/fuse",
		     .path = "/dev/fuse",
		     .access = "rwm"},
	     .type = 'c',
	     .major = 10,
	     .minor = 229},
	    {.dev = {.host_path = "/dev/loop0",
		     .path = "/dev/loop0",
		     .access = "r"},
	     .type = 'b',
	     .major = 7,
	     .minor = 0},
	};
	char *rules[] = {"c 42:* rw", NULL};
	struct dev_policy p;
	struct orch_err e = {0};
	assert_int_equal(dev_policy_build(false, nodes, 2, rules, &p, &e), 0);
	assert_true(dev_policy_allows(&p, 'c', 10, 229, DEV_READ | DEV_WRITE));
	assert_false(dev_policy_allows(&p, 'c', 10, 228, DEV_READ));
	assert_true(dev_policy_allows(&p, 'b', 7, 0, DEV_READ));
	assert_false(dev_policy_allows(&p, 'b', 7, 0, DEV_WRITE));
	assert_false(dev_policy_allows(&p, 'b', 7, 1, DEV_READ));
	assert_true(dev_policy_allows(&p, 'c', 42, 9, DEV_WRITE));
	assert_false(dev_policy_allows(&p, 'b', 42, 9, DEV_WRITE));
	dev_policy_clear(&p);

	/* privileged: everything, no rules, but a bad rule is still bad. */
	assert_int_equal(dev_policy_build(true, nodes, 2, rules, &p, &e), 0);
	assert_true(p.allow_all);
	assert_int_equal(p.n_rules, 0);
	assert_true(dev_policy_allows(&p, 'b', 8, 0, DEV_READ | DEV_WRITE));
	dev_policy_clear(&p);
	char *bad[] = {"c 1:3 z", NULL};
	assert_int_equal(dev_policy_build(true, NULL, 0, bad, &p, &e), -EINVAL);
	assert_int_equal(dev_policy_build(false, NULL, 0, bad, &p, &e),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "c 1:3 z"));
}

/* ---- the BPF program ---------------------------------------------------- */

/* Runs prog on one struct bpf_cgroup_dev_ctx; fails the test on anything
 * the generator should never emit or a jump out of the program. */
static int bpf_run(const struct bpf_insn *prog, size_t n,
		   const struct bpf_cgroup_dev_ctx *ctx)
{
	uint64_t reg[11] = {0};
	const uint8_t *mem = (const uint8_t *)ctx;
	reg[1] = 0; /* the ctx: offsets are relative to it */
	bool r1_ctx = true;
	for (size_t pc = 0; pc < n; pc++) {
		const struct bpf_insn *i = &prog[pc];
		switch (i->code) {
		case BPF_LDX | BPF_MEM | BPF_W: {
			assert_int_equal(i->src_reg, 1);
			assert_true(r1_ctx);
			assert_true(i->off >= 0 &&
				    i->off + 4 <= (int)sizeof(*ctx));
			uint32_t v;
			memcpy(&v, mem + i->off, 4);
			reg[i->dst_reg] = v;
			break;
		}
		case BPF_ALU | BPF_AND | BPF_K:
			reg[i->dst_reg] =
			    (uint32_t)reg[i->dst_reg] & (uint32_t)i->imm;
			break;
		case BPF_ALU | BPF_RSH | BPF_K:
			reg[i->dst_reg] = (uint32_t)reg[i->dst_reg] >> i->imm;
			break;
		case BPF_ALU | BPF_MOV | BPF_X:
			reg[i->dst_reg] = (uint32_t)reg[i->src_reg];
			if (i->dst_reg == 1)
				r1_ctx = false;
			break;
		case BPF_ALU64 | BPF_MOV | BPF_K:
			reg[i->dst_reg] = (uint64_t)(int64_t)i->imm;
			break;
		case BPF_JMP | BPF_JNE | BPF_K:
			if (reg[i->dst_reg] != (uint64_t)(int64_t)i->imm) {
				assert_true(i->off >= 0);
				pc += (size_t)i->off;
				assert_true(pc + 1 < n);
			}
			break;
		case BPF_JMP | BPF_EXIT:
			return (int)reg[0];
		default:
			fail_msg("unexpected BPF opcode 0x%x at %zu", i->code,
				 pc);
		}
	}
	fail_msg("the program runs off its end");
	return -1;
}

static void check_program(const struct dev_policy *p)
{
	size_t n;
	struct bpf_insn *prog = dev_bpf_program(p, &n);
	assert_true(n > 0 && n < 4096);
	assert_int_equal(prog[n - 1].code, BPF_JMP | BPF_EXIT);
	static const unsigned majors[] = {0, 1, 4, 5, 7, 10, 42, 136, 4095};
	static const unsigned minors[] = {0, 1, 2, 3, 5, 7, 8, 9, 229, 237};
	for (int t = 0; t < 2; t++)
		for (size_t a = 0; a < ARRAY_SIZE(majors); a++)
			for (size_t b = 0; b < ARRAY_SIZE(minors); b++)
				for (unsigned acc = 1; acc <= DEV_RWM; acc++) {
					struct bpf_cgroup_dev_ctx ctx = {
					    .access_type =
						(t ? BPF_DEVCG_DEV_BLOCK
						   : BPF_DEVCG_DEV_CHAR) |
						(acc << 16),
					    .major = majors[a],
					    .minor = minors[b],
					};
					bool want = dev_policy_allows(
					    p, t ? 'b' : 'c', majors[a],
					    minors[b], acc);
					assert_int_equal(bpf_run(prog, n, &ctx),
							 want);
				}
	free(prog);
}

static void test_bpf_program(void **state)
{
	(void)state;
	struct dev_policy p;
	struct orch_err e = {0};
	assert_int_equal(dev_policy_build(false, NULL, 0, NULL, &p, &e), 0);
	check_program(&p);
	dev_policy_clear(&p);

	struct dev_node fuse = {.dev = {.host_path = "/dev/fuse",
					.path = "/dev/fuse",
					.access = "rw"},
				.type = 'c',
				.major = 10,
				.minor = 229};
	char *rules[] = {"b 7:* r", "a 42:5 w", "c *:8 rwm", NULL};
	assert_int_equal(dev_policy_build(false, &fuse, 1, rules, &p, &e), 0);
	check_program(&p);
	dev_policy_clear(&p);

	/* No rule at all: everything denied. */
	struct dev_policy none = {0};
	size_t n;
	struct bpf_insn *prog = dev_bpf_program(&none, &n);
	struct bpf_cgroup_dev_ctx ctx = {BPF_DEVCG_DEV_CHAR | (DEV_READ << 16),
					 1, 3};
	assert_int_equal(bpf_run(prog, n, &ctx), 0);
	free(prog);
	check_program(&none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_device_parse),
	    cmocka_unit_test(test_rule_parse),
	    cmocka_unit_test(test_policy_default),
	    cmocka_unit_test(test_policy_devices),
	    cmocka_unit_test(test_bpf_program),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
