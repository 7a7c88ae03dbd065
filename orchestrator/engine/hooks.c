/* Lifecycle hooks: post_start and pre_stop commands run in a service's
 * container, as compose runs them.  A container record carries its
 * service's hooks (record.c), so that a stop or a down finds them in the
 * project's state even without the compose file. */
#include "orchestrator/engine/engine.h"
#include "runtime/runtime.h"

#include <fcntl.h>
#include <sys/wait.h>

json_t *hooks_json(const struct m_hook *h, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		_cleanup_strv_ char **assign =
		    kvlist_assignments(&h[i].environment);
		json_t *env = json_array();
		for (size_t k = 0; assign[k]; k++)
			json_array_append_new(env, json_string(assign[k]));
		json_t *o = json_pack("{s:o, s:o, s:b}", "argv",
				      json_array(), "env", env, "privileged",
				      h[i].privileged);
		for (size_t k = 0; h[i].command[k]; k++)
			json_array_append_new(json_object_get(o, "argv"),
					      json_string(h[i].command[k]));
		if (h[i].user)
			json_object_set_new(o, "user", json_string(h[i].user));
		if (h[i].working_dir)
			json_object_set_new(o, "workdir",
					    json_string(h[i].working_dir));
		json_array_append_new(a, o);
	}
	return a;
}

/* One hook, its output on our stderr; 0 when it exits 0. */
static int hook_run(const char *id, const char *name, const char *kind,
		    json_t *h, struct orch_err *e)
{
	_cleanup_strv_ char **argv = jstrv(h, "argv");
	_cleanup_strv_ char **env = jstrv(h, "env");
	if (!argv || !argv[0])
		return err_set(e, EINVAL, "container %s: an empty %s hook",
			       name, kind);
	_cleanup_close_ int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct rt_exec_spec x = {
	    .argv = argv,
	    .env = env,
	    .workdir = jstr(h, "workdir"),
	    .user = jstr(h, "user"),
	    .privileged = json_is_true(json_object_get(h, "privileged")),
	    .stdio = {null, 2, 2},
	};
	pid_t pid;
	int r = rt_exec(id, &x, &pid, e);
	if (r < 0)
		return err_wrap(e, "container %s: %s hook %s", name, kind,
				argv[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return err_sys(e, errno, "waiting for the %s hook",
				       kind);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	_cleanup_free_ char *cmd = strv_join(argv, " ");
	if (WIFEXITED(st))
		return err_set(e, EIO,
			       "container %s: %s hook `%s` exited with code %d",
			       name, kind, cmd, WEXITSTATUS(st));
	return err_set(e, EIO, "container %s: %s hook `%s` was killed by %s",
		       name, kind, cmd, strsignal(WTERMSIG(st)));
}

/* The hooks of kind in the named running containers: those of each
 * one's record, or given. */
static int hooks_in(struct pstate *ps, char *const *names, const char *kind,
		    json_t *given, struct orch_err *e)
{
	for (size_t i = 0; names && names[i]; i++) {
		json_t *rec = state_container_find(ps, names[i]);
		json_t *hooks =
		    given ? given
			  : json_object_get(json_object_get(rec, "hooks"), kind);
		const char *id = jstr(rec, "id");
		pid_t pid;
		struct orch_err ign = {0};
		if (!json_array_size(hooks) || !id || rt_pid(id, &pid, &ign) < 0)
			continue; /* none, or not running */
		size_t k;
		json_t *h;
		json_array_foreach(hooks, k, h)
		{
			int r = hook_run(id, names[i], kind, h, e);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int hooks_run(struct pstate *ps, char *const *names, const char *kind,
	      struct orch_err *e)
{
	return hooks_in(ps, names, kind, NULL, e);
}

int hook_exec(struct pstate *ps, char *const *names, const struct m_hook *h,
	      const char *kind, struct orch_err *e)
{
	json_auto_t *one = hooks_json(h, 1);
	return hooks_in(ps, names, kind, one, e);
}

/* One pre_start hook: a one-off container of the service (its image,
 * volumes, networks and environment) that runs the hook's command to its
 * end and is removed. */
static int pre_start_one(struct pstate *ps, struct project *m,
			 const struct service *s, const struct m_hook *h,
			 struct orch_err *e)
{
	_cleanup_strv_ char **env = kvlist_assignments(&h->environment);
	struct oneoff_opts oo = {.cmd = h->command,
				 .env = env,
				 .user = h->user,
				 .workdir = h->working_dir};
	json_t *rec = NULL;
	int r = reconcile_oneoff(ps, m, s, &oo, &rec, e);
	if (r < 0)
		return err_wrap(e, "service \"%s\": pre_start hook", s->name);
	_cleanup_free_ char *name = xstrdup(jstr(rec, "name"));
	_cleanup_free_ char *id = xstrdup(jstr(rec, "id"));
	struct rt_spec spec;
	rt_spec_init(&spec);
	json_auto_t *joined =
	    ctrspec_joined(ps, json_object_get(rec, "spec"), e);
	r = joined ? ctrspec_load(joined, &spec, e) : -e->code;
	_cleanup_close_ int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	spec.stdio[0] = null;
	spec.stdio[1] = spec.stdio[2] = 2;
	spec.id = id;
	spec.privileged = spec.privileged || h->privileged;
	struct rt_container *ct = NULL;
	if (r == 0)
		r = rt_create(&spec, &ct, e);
	ctrspec_clear(&spec);
	int st = 0;
	if (r == 0 && (r = rt_start(ct, e)) < 0) {
		struct orch_err ign = {0};
		rt_kill(id, SIGKILL, &ign);
	}
	if (ct) {
		struct orch_err we = {0};
		if (rt_wait(ct, &st, &we) < 0 && r == 0)
			r = err_set(e, we.code, "%s", we.msg);
		rt_container_free(ct);
	}
	char *names[] = {name, NULL};
	struct orch_err ign = {0};
	reconcile_remove(ps, names, true, &ign);
	if (r < 0)
		return err_wrap(e, "service \"%s\": pre_start hook", s->name);
	if (st != 0) {
		_cleanup_free_ char *cmd = strv_join(h->command, " ");
		return err_set(e, EIO,
			       "service \"%s\": pre_start hook `%s` exited "
			       "with code %d",
			       s->name, cmd, st);
	}
	return 0;
}

int hooks_pre_start(struct pstate *ps, struct project *m,
		    const struct service *s, struct orch_err *e)
{
	for (size_t i = 0; i < s->n_pre_start; i++) {
		int r = pre_start_one(ps, m, s, &s->pre_start[i], e);
		if (r < 0)
			return r;
	}
	return 0;
}
