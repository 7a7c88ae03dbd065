/* The planner: desired services x observed containers -> ordered actions.
 * Pure: no I/O, so that every decision is unit-tested. */
#include "orchestrator/engine/engine.h"

static ssize_t svc_index(const struct plan_service *svcs, size_t n,
			 const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(svcs[i].name, name))
			return (ssize_t)i;
	return -1;
}

/* Depth-first walk; color 0 = unseen, 1 = on the stack, 2 = done.  The
 * stack names the cycle when one is found. */
static int level_visit(const struct plan_service *svcs, size_t n, size_t i,
		       int *level, int *color, size_t *stack, size_t depth,
		       struct orch_err *e)
{
	if (color[i] == 2)
		return 0;
	if (color[i] == 1) {
		struct strbuf sb;
		sb_init(&sb);
		size_t from = 0;
		while (from < depth && stack[from] != i)
			from++;
		for (size_t k = from; k < depth; k++)
			sb_printf(&sb, "%s -> ", svcs[stack[k]].name);
		sb_adds(&sb, svcs[i].name);
		int r = err_set(e, ELOOP, "dependency cycle: %s", sb.buf);
		sb_free(&sb);
		return r;
	}
	color[i] = 1;
	stack[depth] = i;
	int lv = 0;
	for (size_t d = 0; svcs[i].deps && svcs[i].deps[d]; d++) {
		ssize_t j = svc_index(svcs, n, svcs[i].deps[d]);
		if (j < 0)
			return err_set(e, ENOENT,
				       "service %s depends on undefined "
				       "service %s",
				       svcs[i].name, svcs[i].deps[d]);
		int r = level_visit(svcs, n, (size_t)j, level, color, stack,
				    depth + 1, e);
		if (r < 0)
			return r;
		if (level[j] + 1 > lv)
			lv = level[j] + 1;
	}
	level[i] = lv;
	color[i] = 2;
	return 0;
}

int plan_levels(const struct plan_service *svcs, size_t n, int *level,
		struct orch_err *e)
{
	_cleanup_free_ int *color = xcalloc(n + 1, sizeof(int));
	_cleanup_free_ size_t *stack = xcalloc(n + 1, sizeof(size_t));
	for (size_t i = 0; i < n; i++) {
		int r = level_visit(svcs, n, i, level, color, stack, 0, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Marks i and, unless no_deps, everything it depends on. */
static void select_closure(const struct plan_service *svcs, size_t n,
			   size_t i, bool no_deps, bool *sel)
{
	if (sel[i])
		return;
	sel[i] = true;
	if (no_deps)
		return;
	for (size_t d = 0; svcs[i].deps && svcs[i].deps[d]; d++) {
		ssize_t j = svc_index(svcs, n, svcs[i].deps[d]);
		if (j >= 0)
			select_closure(svcs, n, (size_t)j, no_deps, sel);
	}
}

static void push(struct plan *p, size_t *cap, struct plan_action a)
{
	if (p->n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		p->actions = xrealloc(p->actions, *cap * sizeof(*p->actions));
	}
	p->actions[p->n++] = a;
}

static int action_cmp(const void *a, const void *b)
{
	const struct plan_action *x = a, *y = b;
	bool xr = x->op == PLAN_REMOVE, yr = y->op == PLAN_REMOVE;
	if (xr != yr)
		return xr ? -1 : 1;
	/* Removals go dependents first, creations dependencies first. */
	if (x->level != y->level)
		return xr ? y->level - x->level : x->level - y->level;
	const char *xs = x->service ? x->service : x->name;
	const char *ys = y->service ? y->service : y->name;
	int c = strcmp(xs, ys);
	if (c)
		return c;
	return x->number - y->number;
}

int plan_compute(const struct plan_service *svcs, size_t n_svcs,
		 const struct plan_observed *obs, size_t n_obs,
		 const struct plan_opts *o, struct plan *out,
		 struct orch_err *e)
{
	memset(out, 0, sizeof(*out));
	_cleanup_free_ int *level = xcalloc(n_svcs + 1, sizeof(int));
	int r = plan_levels(svcs, n_svcs, level, e);
	if (r < 0)
		return r;
	_cleanup_free_ bool *sel = xcalloc(n_svcs + 1, sizeof(bool));
	if (o->services && o->services[0]) {
		for (size_t k = 0; o->services[k]; k++) {
			ssize_t i = svc_index(svcs, n_svcs, o->services[k]);
			if (i < 0)
				return err_set(e, ENOENT, "no such service: %s",
					       o->services[k]);
			select_closure(svcs, n_svcs, (size_t)i, o->no_deps,
				       sel);
		}
	} else
		for (size_t i = 0; i < n_svcs; i++)
			sel[i] = true;

	size_t cap = 0;
	for (size_t i = 0; i < n_svcs; i++)
		if (level[i] + 1 > out->levels)
			out->levels = level[i] + 1;

	/* What exists and is no longer wanted. */
	for (size_t k = 0; k < n_obs; k++) {
		ssize_t i = svc_index(svcs, n_svcs, obs[k].service);
		if (i < 0) {
			if (o->remove_orphans)
				push(out, &cap,
				     (struct plan_action){
					     .op = PLAN_REMOVE,
					     .number = obs[k].number,
					     .name = obs[k].name,
					     .level = out->levels,
				     });
			continue;
		}
		if (sel[i] && obs[k].number > svcs[i].scale)
			push(out, &cap,
			     (struct plan_action){
				     .op = PLAN_REMOVE,
				     .service = svcs[i].name,
				     .number = obs[k].number,
				     .name = obs[k].name,
				     .level = level[i],
			     });
	}

	for (size_t i = 0; i < n_svcs; i++) {
		if (!sel[i])
			continue;
		for (int num = 1; num <= svcs[i].scale; num++) {
			const struct plan_observed *have = NULL;
			for (size_t k = 0; k < n_obs && !have; k++)
				if (streq(obs[k].service, svcs[i].name) &&
				    obs[k].number == num)
					have = &obs[k];
			struct plan_action a = {
				.service = svcs[i].name,
				.number = num,
				.level = level[i],
			};
			if (!have)
				a.op = PLAN_CREATE;
			else {
				bool changed = !have->hash || !svcs[i].hash ||
					       !streq(have->hash, svcs[i].hash);
				a.name = have->name;
				if (o->force_recreate ||
				    (changed && !o->no_recreate))
					a.op = PLAN_RECREATE;
				else
					a.op = have->running ? PLAN_KEEP
							     : PLAN_START;
			}
			push(out, &cap, a);
		}
	}
	if (out->n)
		qsort(out->actions, out->n, sizeof(*out->actions), action_cmp);
	return 0;
}

void plan_free(struct plan *p)
{
	free(p->actions);
	p->actions = NULL;
	p->n = 0;
}

const char *plan_op_name(enum plan_op op)
{
	switch (op) {
	case PLAN_REMOVE:
		return "remove";
	case PLAN_RECREATE:
		return "recreate";
	case PLAN_CREATE:
		return "create";
	case PLAN_START:
		return "start";
	case PLAN_KEEP:
		return "keep";
	}
	return "?";
}
