/* Unit tests for the Containerfile parser, variable expansion,
 * .dockerignore matching and build cache keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
/* cmocka needs the three above first. */
#include <cmocka.h>

#include "orchestrator/build/build.h"

static struct dockerfile *parse_ok(const char *text)
{
	struct orch_err e = {0};
	struct dockerfile *df = NULL;
	int r = df_parse("Containerfile", text, &df, &e);
	if (r < 0)
		fail_msg("parse failed: %s", e.msg);
	return df;
}

static void parse_fails(const char *text, const char *msg)
{
	struct orch_err e = {0};
	struct dockerfile *df = NULL;
	assert_true(df_parse("Containerfile", text, &df, &e) < 0);
	assert_null(df);
	if (!strstr(e.msg, msg))
		fail_msg("want [%s] in [%s]", msg, e.msg);
}

static void test_stages_and_forms(void **state)
{
	(void)state;
	struct dockerfile *df =
	    parse_ok("# a comment\n"
		     "ARG BASE=busybox\n"
		     "ARG TAG\n"
		     "from ${BASE}:${TAG:-latest} AS Build\n"
		     "RUN echo one && \\\n"
		     "    # a comment inside a continuation\n"
		     "\n"
		     "    echo two\n"
		     "RUN [\"/bin/echo\", \"json\"]\n"
		     "COPY --from=build --chown=1:2 a \"b c\" /dst/\n"
		     "ENV A=1 B=\"two words\"\n"
		     "ENV LEGACY value with spaces\n"
		     "LABEL org.x=y\n"
		     "EXPOSE 80 53/udp\n"
		     "WORKDIR /app\n"
		     "USER user:group\n"
		     "CMD [\"run\"]\n"
		     "ENTRYPOINT exec thing\n"
		     "HEALTHCHECK --interval=5s --retries=3 CMD wget -q x\n"
		     "SHELL [\"/bin/bash\", \"-c\"]\n"
		     "STOPSIGNAL SIGINT\n"
		     "VOLUME [\"/data\"]\n"
		     "FROM scratch\n"
		     "COPY --from=0 /x /x\n");
	assert_int_equal(df->n_meta_args, 2);
	assert_string_equal(df->meta_args[0].args[0], "BASE=busybox");
	assert_int_equal(df->n_stages, 2);
	struct df_stage *st = &df->stages[0];
	assert_string_equal(st->name, "build");
	assert_string_equal(st->from.args[0], "${BASE}:${TAG:-latest}");
	assert_int_equal(st->from.line, 4);
	assert_int_equal(st->n_instrs, 15);
	struct df_instr *in = st->instrs;
	assert_int_equal(in[0].cmd, DF_RUN);
	assert_int_equal(in[0].line, 5);
	assert_false(in[0].json);
	assert_string_equal(in[0].args[0], "echo one &&     echo two");
	assert_true(in[1].json);
	assert_string_equal(in[1].args[1], "json");
	assert_int_equal(in[1].line, 9);
	assert_int_equal(in[2].cmd, DF_COPY);
	assert_string_equal(df_flag(&in[2], "from"), "build");
	assert_string_equal(df_flag(&in[2], "chown"), "1:2");
	assert_null(df_flag(&in[2], "chmod"));
	assert_int_equal(strv_len(in[2].args), 3);
	assert_string_equal(in[2].args[1], "\"b c\"");
	assert_int_equal(strv_len(in[3].args), 4);
	assert_string_equal(in[3].args[3], "\"two words\"");
	assert_string_equal(in[4].args[0], "LEGACY");
	assert_string_equal(in[4].args[1], "value with spaces");
	assert_int_equal(strv_len(in[6].args), 2);
	assert_string_equal(in[7].args[0], "/app");
	assert_string_equal(in[8].args[0], "user:group");
	assert_true(in[9].json);
	assert_false(in[10].json);
	assert_string_equal(in[10].args[0], "exec thing");
	assert_int_equal(in[11].cmd, DF_HEALTHCHECK);
	assert_string_equal(in[11].args[0], "CMD-SHELL");
	assert_string_equal(in[11].args[1], "wget -q x");
	assert_string_equal(df_flag(&in[11], "interval"), "5s");
	assert_string_equal(in[12].args[0], "/bin/bash");
	assert_int_equal(in[14].cmd, DF_VOLUME);
	assert_null(df->stages[1].name);
	assert_int_equal(df_stage_index(df, "BUILD"), 0);
	assert_int_equal(df_stage_index(df, "1"), 1);
	assert_int_equal(df_stage_index(df, "2"), -1);
	assert_int_equal(df_stage_index(df, "nope"), -1);
	df_free(df);
}

static void test_escape_directive(void **state)
{
	(void)state;
	struct dockerfile *df = parse_ok("# escape=`\n"
					 "FROM scratch\n"
					 "RUN dir c:\\ `\n"
					 "  && echo x\n");
	assert_int_equal(df->escape, '`');
	assert_string_equal(df->stages[0].instrs[0].args[0],
			    "dir c:\\   && echo x");
	df_free(df);
	/* Not at the top: a plain comment. */
	df = parse_ok("FROM scratch\n# escape=`\nRUN a \\\n b\n");
	assert_int_equal(df->escape, '\\');
	assert_string_equal(df->stages[0].instrs[0].args[0], "a  b");
	df_free(df);
}

static void test_errors_name_lines(void **state)
{
	(void)state;
	parse_fails("FROM scratch\n\nFOO bar\n",
		    "Containerfile:3: unknown instruction: FOO");
	parse_fails("RUN x\n", "Containerfile:1: RUN before the first FROM");
	parse_fails("# nothing\n", "no FROM instruction");
	parse_fails("FROM scratch\nCOPY onlyone\n",
		    "Containerfile:2: COPY requires at least two arguments");
	parse_fails("FROM scratch\nSHELL /bin/sh -c\n", ":2: SHELL requires");
	parse_fails("FROM scratch\nCOPY --bogus=1 a b\n",
		    "does not take --bogus");
	parse_fails("FROM a AS x\nFROM b AS X\n", ":2: duplicate stage name");
	parse_fails("FROM a b\n", "FROM takes IMAGE [AS NAME]");
	parse_fails("FROM scratch\nONBUILD FROM x\n",
		    ":2: ONBUILD cannot trigger FROM");
	parse_fails("FROM scratch\nONBUILD ONBUILD RUN x\n",
		    ":2: ONBUILD cannot trigger ONBUILD");
	parse_fails("FROM scratch\nONBUILD\n", ":2: ONBUILD requires");
	parse_fails("FROM scratch\nONBUILD FOO x\n",
		    ":2: unknown instruction: FOO");
	parse_fails("FROM scratch\nHEALTHCHECK --interval=abc CMD x\n",
		    "not a duration");
	parse_fails("FROM scratch\nENV A=\"x\n",
		    ":2: unterminated double quote");
	parse_fails("FROM scratch\nRUN\n", "RUN requires");
	parse_fails("FROM scratch\nWORKDIR\n", "WORKDIR requires exactly one");
	parse_fails("FROM scratch\nRUN a \\\n b \\\n c\nBAD\n", ":5: unknown");
}

static void expand_is(const char *word, char *const *env, const char *want)
{
	struct orch_err e = {0};
	char *out = NULL;
	if (df_expand(word, '\\', env, &out, &e) < 0)
		fail_msg("expanding %s: %s", word, e.msg);
	assert_string_equal(out, want);
	free(out);
}

static void test_expand(void **state)
{
	(void)state;
	char *env[] = {"A=1", "EMPTY=", "B=x y", "A=2", NULL};
	expand_is("$A", env, "2");
	expand_is("${A}b", env, "2b");
	expand_is("$Ab", env, "");
	expand_is("${NOPE:-def}", env, "def");
	expand_is("${EMPTY:-def}", env, "def");
	expand_is("${EMPTY-def}", env, "");
	expand_is("${A:+set}", env, "set");
	expand_is("${EMPTY:+set}", env, "");
	expand_is("${EMPTY+set}", env, "set");
	expand_is("${NOPE:-${A}x}", env, "2x");
	expand_is("'$A'", env, "$A");
	expand_is("\"$A and $B\"", env, "2 and x y");
	expand_is("\\$A", env, "$A");
	expand_is("\"a\\\"b\"", env, "a\"b");
	expand_is("a$", env, "a$");
	expand_is("$1x", env, "");
	expand_is("100%", env, "100%");
	expand_is("${A:?gone}", env, "2");
	expand_is("x${NOPE-}y", env, "xy");
	expand_is("${A:+}", env, "");
	struct orch_err e = {0};
	char *out = NULL;
	assert_true(df_expand("${NOPE:?must be set}", '\\', env, &out, &e) < 0);
	assert_non_null(strstr(e.msg, "NOPE: must be set"));
	assert_true(df_expand("${A", '\\', env, &out, &e) < 0);
	assert_true(df_expand("'open", '\\', env, &out, &e) < 0);
	assert_true(df_expand("${A/x/y}", '\\', env, &out, &e) < 0);
	/* The backtick escape. */
	out = NULL;
	assert_int_equal(df_expand("`$A\\", '`', env, &out, &e), 0);
	assert_string_equal(out, "$A\\");
	free(out);
}

static void test_duration(void **state)
{
	(void)state;
	int64_t ns;
	assert_int_equal(df_duration("30s", &ns), 0);
	assert_int_equal(ns, 30000000000LL);
	assert_int_equal(df_duration("1m30s", &ns), 0);
	assert_int_equal(ns, 90000000000LL);
	assert_int_equal(df_duration("500ms", &ns), 0);
	assert_int_equal(ns, 500000000LL);
	assert_int_equal(df_duration("1.5h", &ns), 0);
	assert_int_equal(ns, 5400000000000LL);
	assert_true(df_duration("10", &ns) < 0);
	assert_true(df_duration("", &ns) < 0);
	assert_true(df_duration("5x", &ns) < 0);
}

static void test_dockerignore(void **state)
{
	(void)state;
	struct orch_err e = {0};
	struct df_ignore *ig = NULL;
	assert_int_equal(df_ignore_parse("# comment\n"
					 "*.log\n"
					 "/build\n"
					 "**/tmp\n"
					 "docs/*.md\n"
					 "!docs/keep.md\n"
					 "node_modules/\n"
					 "./secret/../.env\n"
					 "a?c\n",
					 &ig, &e),
			 0);
	assert_true(df_ignore_match(ig, "x.log"));
	assert_false(df_ignore_match(ig, "sub/x.log")); /* * stops at / */
	assert_true(df_ignore_match(ig, "build"));
	assert_true(df_ignore_match(ig, "build/obj/a.o")); /* parent matches */
	assert_true(df_ignore_match(ig, "tmp"));
	assert_true(df_ignore_match(ig, "a/b/tmp/c"));
	assert_true(df_ignore_match(ig, "docs/x.md"));
	assert_false(df_ignore_match(ig, "docs/keep.md"));
	assert_false(df_ignore_match(ig, "docs/sub/x.md"));
	assert_true(df_ignore_match(ig, "node_modules/x/y.js"));
	assert_true(df_ignore_match(ig, ".env"));
	assert_true(df_ignore_match(ig, "abc"));
	assert_false(df_ignore_match(ig, "main.c"));
	assert_false(df_ignore_match(ig, "Containerfile"));
	df_ignore_free(ig);

	assert_int_equal(df_ignore_parse("*\n!src\n", &ig, &e), 0);
	assert_true(df_ignore_match(ig, "README"));
	assert_false(df_ignore_match(ig, "src"));
	assert_false(df_ignore_match(ig, "src/main.c"));
	df_ignore_free(ig);

	assert_int_equal(df_ignore_parse(NULL, &ig, &e), 0);
	assert_false(df_ignore_match(ig, "anything"));
	df_ignore_free(ig);
}

static void test_cache_key(void **state)
{
	(void)state;
	char a[65], b[65], c[65], d[65];
	char *p1[] = {"RUN", "ab", NULL};
	char *p2[] = {"RUN", "a", "b", NULL};
	char *p3[] = {"RUNab", NULL};
	build_cache_key("parent", p1, a);
	build_cache_key("parent", p2, b);
	build_cache_key("parent", p3, c);
	build_cache_key("other", p1, d);
	assert_int_equal(strlen(a), 64);
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
	char again[65];
	build_cache_key("parent", p1, again);
	assert_string_equal(a, again);
}

/* BuildKit's heredocs: RUN's script, a command's input, COPY's files;
 * the lines after a heredoc are instructions again. */
static void test_heredocs(void **state)
{
	(void)state;
	struct dockerfile *df = parse_ok(
	    "# syntax=docker/dockerfile:1.4\n"
	    "FROM x\n"
	    "RUN <<EOF\n"
	    "echo a\n"
	    "# not a comment here\n"
	    "EOF\n"
	    "RUN cat <<-'END' >/f\n"
	    "\tb $X\n"
	    "\tEND\n"
	    "COPY <<ONE <<\"TWO\" /dir/\n"
	    "1 $X\n"
	    "ONE\n"
	    "2\n"
	    "TWO\n"
	    "RUN echo $((1<<2))\n");
	const struct df_stage *st = &df->stages[0];
	assert_int_equal(st->n_instrs, 4);
	assert_string_equal(st->instrs[0].args[0],
			    "echo a\n# not a comment here\n");
	assert_string_equal(st->instrs[1].args[0],
			    "cat <<-'END' >/f\nb $X\nEND\n");
	const struct df_instr *cp = &st->instrs[2];
	assert_int_equal(cp->n_heredocs, 2);
	assert_string_equal(df_heredoc_of(cp, "<<ONE")->body, "1 $X\n");
	assert_true(df_heredoc_of(cp, "<<ONE")->expand);
	assert_false(df_heredoc_of(cp, "<<\"TWO\"")->expand);
	assert_null(df_heredoc_of(cp, "/dir/"));
	/* A shift is no heredoc. */
	assert_int_equal(st->instrs[3].n_heredocs, 0);
	df_free(df);
	parse_fails("FROM x\nRUN <<EOF\necho\n", "heredoc <<EOF is not closed");
}

static void test_mount_specs(void **state)
{
	(void)state;
	struct orch_err e = {0};
	struct df_mount m;
	assert_int_equal(df_mount_parse("type=cache,target=/root/.cache/../x/,"
					"sharing=locked,mode=0700,uid=1",
					&m, &e),
			 -EINVAL);
	assert_non_null(strstr(e.msg, "without \"..\""));
	assert_int_equal(df_mount_parse("type=cache,target=/root//.cache/,"
					"sharing=locked,mode=0700,uid=1",
					&m, &e),
			 0);
	assert_int_equal(m.type, DF_MOUNT_CACHE);
	assert_string_equal(m.target, "/root/.cache");
	assert_string_equal(m.id, "/root/.cache");
	assert_int_equal(m.sharing, DF_LOCKED);
	assert_int_equal(m.mode, 0700);
	assert_int_equal(m.uid, 1);
	assert_int_equal(m.gid, -1);
	df_mount_clear(&m);
	/* bind is the default type; ro and rw */
	assert_int_equal(df_mount_parse("target=/src,source=app,rw", &m, &e),
			 0);
	assert_int_equal(m.type, DF_MOUNT_BIND);
	assert_true(m.rw);
	df_mount_clear(&m);
	assert_int_equal(df_mount_parse("type=secret,id=tok", &m, &e), 0);
	assert_string_equal(m.target, "/run/secrets/tok");
	df_mount_clear(&m);
	static const char *const bad[][2] = {
	    {"type=nfs,target=/x", "unknown type \"nfs\""},
	    {"type=cache", "a target is needed"},
	    {"type=secret", "a secret needs an id"},
	    {"type=cache,target=/x,sharing=often", "sharing=often"},
	    {"type=cache,target=/x,mode=999", "mode=999"},
	    {"type=tmpfs,target=/x,colour=red", "unknown option \"colour\""},
	    {"type=bind,target=/x,rw=maybe", "rw=maybe"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&e, 0, sizeof(e));
		assert_true(df_mount_parse(bad[i][0], &m, &e) < 0);
		if (!strstr(e.msg, bad[i][1]))
			fail_msg("%s: want [%s] in [%s]", bad[i][0], bad[i][1],
				 e.msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stages_and_forms),
	    cmocka_unit_test(test_escape_directive),
	    cmocka_unit_test(test_errors_name_lines),
	    cmocka_unit_test(test_heredocs),
	    cmocka_unit_test(test_mount_specs),
	    cmocka_unit_test(test_expand),
	    cmocka_unit_test(test_duration),
	    cmocka_unit_test(test_dockerignore),
	    cmocka_unit_test(test_cache_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
