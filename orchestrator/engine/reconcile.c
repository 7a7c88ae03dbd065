/* Reconciling the host with the model: `up` (plan, check, create, start
 * level by level, roll back on failure), stop and removal shared by down,
 * rm and recreation, `down` itself and `run`'s one-off containers. */
#include "netd/netd.h"
#include "orchestrator/engine/engine_impl.h"
#include "runtime/runtime.h"

#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <time.h>

/* When the command started: a terminal's progress lines say how long
 * after it each object was done. */
static int64_t started_ms;
__attribute__((constructor)) static void progress_clock(void)
{
	started_ms = mono_ms();
}

enum progress_mode progress_mode = PROGRESS_PLAIN;

void progress(const char *kind, const char *name, const char *what)
{
	if (progress_mode == PROGRESS_QUIET)
		return;
	if (progress_mode == PROGRESS_TTY) {
		_cleanup_free_ char *obj = xasprintf("%s %s", kind, name);
		fprintf(stderr, " \033[32m\u2714\033[0m %-38s %-8s %5.1fs\n",
			obj, what, (double)(mono_ms() - started_ms) / 1000);
	} else {
		fprintf(stderr, " %s %s  %s\n", kind, name, what);
	}
}

/* ---- state helpers --------------------------------------------------------
 */

json_t *json_find_named(json_t *array, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(array, i, c)
	{
		if (jstr(c, "name") && streq(jstr(c, "name"), name))
			return c;
	}
	return NULL;
}

int status_get(struct pstate *ps, json_t **containers, struct orch_err *e)
{
	*containers = NULL;
	if (json_array_size(state_containers(ps)) == 0) {
		*containers = json_array();
		return 0;
	}
	int r = supervisor_ensure(ps, e);
	if (r < 0)
		return r;
	json_t *req = json_pack("{s:s}", "op", "status"), *rep = NULL;
	r = control_call(ps, req, &rep, e);
	json_decref(req);
	if (r < 0) {
		json_decref(rep);
		return r;
	}
	*containers = json_incref(json_object_get(rep, "containers"));
	json_decref(rep);
	if (!*containers)
		*containers = json_array();
	return 0;
}

char **containers_of(struct pstate *ps, const struct project *m,
		     char **services, const char **unknown)
{
	char **out = xcalloc(1, sizeof(char *));
	if (unknown)
		*unknown = NULL;
	size_t i;
	json_t *c;
	if (!services || !services[0]) {
		json_array_foreach(state_containers(ps), i, c)
		    strv_push(&out, jstr(c, "name"));
		return out;
	}
	for (size_t k = 0; services[k]; k++) {
		bool found = m && project_service(m, services[k]);
		json_array_foreach(state_containers(ps), i, c)
		{
			if (streq(jstr(c, "service") ?: "", services[k]) ||
			    streq(jstr(c, "name"), services[k])) {
				strv_push(&out, jstr(c, "name"));
				found = true;
			}
		}
		if (!found && unknown && !*unknown)
			*unknown = services[k];
	}
	return out;
}

/* ---- up ---------------------------------------------------------------------
 */

struct up_ctx {
	struct pstate *ps;
	struct project *m;
	json_t *created_nets; /* names created by this up */
	json_t *created_vols; /* names created by this up */
	char **created_ctrs;  /* containers made by this up */
	bool project_was_empty;
	/* A dependency failed on its own (unhealthy, exited, exit code):
	 * the containers stay, as compose keeps them, for logs and ps. */
	bool dep_failed;
	bool open_networks; /* networks made now let every pair talk */
	int sup_ready;	    /* the supervisor being started: its pipe */
	/* Start requests whose replies are awaited, and their names. */
	int *start_fds;
	size_t n_start_fds;
	char **starting;
	/* The records' texts setup_level's saves wrote: a record made is
	 * left as it is until up ends. */
	struct pstate_kept kept;
};

/* Containers made per start request within a level: the supervisor's
 * workers start one chunk while the next is made. */
#define START_CHUNK 8

bool network_used(const struct project *m, const char *key)
{
	for (size_t s = 0; s < m->n_services; s++) {
		const struct service *sv = &m->services[s];
		if (sv->network_mode)
			continue;
		for (size_t k = 0; k < sv->n_networks; k++)
			if (streq(sv->networks[k].name, key))
				return true;
	}
	return false;
}

void network_req(const struct project *m, const struct network *n,
		 struct netd_network_req *q)
{
	char **labels = NULL;
	_cleanup_free_ char *l0 =
	    xasprintf("com.docker.compose.project=%s", m->name);
	_cleanup_free_ char *l1 =
	    xasprintf("com.docker.compose.network=%s", n->key);
	strv_push(&labels, l0);
	strv_push(&labels, l1);
	*q = (struct netd_network_req){
	    .name = n->name,
	    .project = m->name,
	    .ipv6 = n->enable_ipv6,
	    .no_ipv4 = n->ipv4_off,
	    .internal = n->internal,
	    .icc = network_icc(n),
	    .labels = labels,
	};
	/* One pool of each family (checked before). */
	for (size_t i = 0; i < n->n_ipam; i++) {
		const struct m_ipam_pool *p = &n->ipam[i];
		bool v6 = (p->subnet && strchr(p->subnet, ':')) ||
			  (p->gateway && strchr(p->gateway, ':'));
		*(v6 ? &q->subnet6 : &q->subnet) = p->subnet;
		*(v6 ? &q->gateway6 : &q->gateway) = p->gateway;
	}
}

void network_req_clear(struct netd_network_req *q)
{
	strv_free(q->labels);
	q->labels = NULL;
}

/* The first dependency level at which a container of new_recs still to
 * be made joins network key; INT_MAX when none does. */
static int network_level(const struct project *m, json_t *new_recs,
			 const char *key)
{
	int first = INT_MAX;
	size_t i;
	json_t *rec;
	json_array_foreach(new_recs, i, rec)
	{
		int l = (int)jint(rec, "level", -1);
		const struct service *s =
		    project_service(m, jstr(rec, "service") ?: "");
		if (l >= 0 && l < first && s && service_on(s, key))
			first = l;
	}
	return first;
}

/* Work of up's own that meanwhile runs while netd makes a network. */
typedef int meanwhile_fn(struct up_ctx *u, json_t *new_recs,
			 struct orch_err *e);

/* The networks ensure_networks makes, without their links.  meanwhile
 * (may be NULL) runs once, while netd makes the first of them (after
 * them when there is none); its failure is returned once that network
 * is recorded (for rollback to remove). */
static int networks_make(struct up_ctx *u, json_t *new_recs, int l,
			 meanwhile_fn *meanwhile, struct orch_err *e)
{
	json_t *nets = json_object_get(u->ps->state, "networks");
	if (!json_is_array(nets)) {
		nets = json_array();
		json_object_set_new(u->ps->state, "networks", nets);
	}
	for (size_t i = 0; i < u->m->n_networks; i++) {
		const struct network *n = &u->m->networks[i];
		if (n->external || !network_used(u->m, n->key))
			continue;
		if (json_find_named(nets, n->name)) {
			if (u->open_networks && !pstate_open_networks(u->ps))
				return err_set(e, EEXIST,
					       "network %s exists link-only: "
					       "run `orch down` first to make "
					       "the project's networks open",
					       n->name);
			continue;
		}
		int need = new_recs && l >= 0
			       ? network_level(u->m, new_recs, n->key)
			       : -1;
		if (need > l && !(l == 0 && need == INT_MAX))
			continue;
		struct netd_conn *c = NULL;
		int r = netd_get(&c, e);
		if (r < 0)
			return r;
		_cleanup_network_req_ struct netd_network_req q;
		network_req(u->m, n, &q);
		if (u->open_networks) {
			q.icc = true;
			json_object_set_new(u->ps->state, "open_networks",
					    json_true());
		}
		struct netd_network out = {0};
		r = netd_network_create_start(c, &q, e);
		if (r < 0)
			return r;
		struct orch_err me = {0};
		int mr = meanwhile ? meanwhile(u, new_recs, &me) : 0;
		meanwhile = NULL;
		r = netd_network_create_finish(c, &q, &out, e);
		if (r < 0)
			return r;
		json_array_append_new(
		    nets, json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?}", "key",
				    n->key, "name", n->name, "subnet",
				    out.subnet, "gateway", out.gateway,
				    "subnet6", out.subnet6, "gateway6",
				    out.gateway6));
		json_array_append_new(u->created_nets, json_string(n->name));
		netd_network_clear(&out);
		progress("Network", n->name, "Created");
		if (mr < 0) {
			*e = me;
			return mr;
		}
	}
	return meanwhile ? meanwhile(u, new_recs, e) : 0;
}

static int ensure_volumes(struct up_ctx *u, json_t *new_recs,
			  struct orch_err *e)
{
	json_t *vols = json_object_get(u->ps->state, "volumes");
	if (!json_is_array(vols)) {
		vols = json_array();
		json_object_set_new(u->ps->state, "volumes", vols);
	}
	size_t i, k;
	json_t *rec, *key;
	json_array_foreach(new_recs, i, rec)
	    json_array_foreach(json_object_get(rec, "named_volumes"), k, key)
	{
		const struct volume *v =
		    project_volume(u->m, json_string_value(key));
		if (!v || v->external)
			continue;
		if (json_find_named(vols, v->name))
			continue;
		_cleanup_free_ char *l0 =
		    xasprintf("com.docker.compose.project=%s", u->m->name);
		_cleanup_free_ char *l1 =
		    xasprintf("com.docker.compose.volume=%s", v->key);
		char *labels[] = {l0, l1, NULL};
		struct rt_volume_opts o = {.labels = labels};
		for (size_t d = 0; d < v->driver_opts.n; d++)
			if (streq(v->driver_opts.v[d].key, "size") &&
			    v->driver_opts.v[d].value)
				parse_bytes(v->driver_opts.v[d].value,
					    &o.size_limit);
		bool exists = false;
		int r = rt_volume_create(v->name, &o, &exists, e);
		if (r < 0)
			return err_wrap(e, "creating volume %s", v->name);
		json_array_append_new(vols, json_pack("{s:s, s:s}", "key",
						      v->key, "name", v->name));
		if (!exists) {
			json_array_append_new(u->created_vols,
					      json_string(v->name));
			progress("Volume", v->name, "Created");
		}
	}
	return 0;
}

/* What up makes on the disk before any container, each synced: the named
 * volumes, and the project's id range when a container is remapped. */
static int disk_make(struct up_ctx *u, json_t *new_recs, struct orch_err *e)
{
	int r = ensure_volumes(u, new_recs, e);
	size_t i;
	json_t *rec;
	json_array_foreach(new_recs, i, rec)
	{
		if (r == 0 && jbool(json_object_get(rec, "spec"), "userns")) {
			if ((r = ctr_idrange(u->ps, e)) < 0)
				err_wrap(e, "%s", jstr(rec, "name"));
			break;
		}
	}
	return r;
}

static void link_pairs(const struct project *m, const char *net_key,
		       struct netd_pair **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	for (size_t i = 0; i < m->n_services; i++) {
		const struct service *a = &m->services[i];
		if (!service_on(a, net_key))
			continue;
		for (size_t j = 0; j < m->n_services; j++) {
			const struct service *b = &m->services[j];
			if (i == j || !service_on(b, net_key) ||
			    !link_allowed(a, b->name))
				continue;
			if (*n == cap) {
				cap = cap ? cap * 2 : 8;
				*out = xrealloc(*out, cap * sizeof(**out));
			}
			(*out)[*n].from = a->name;
			(*out)[*n].to = b->name;
			(*n)++;
		}
	}
}

/* The link-only pairs of the project's network name (every one, NULL). */
static int links_set(struct up_ctx *u, const char *name, struct orch_err *e)
{
	json_t *nets = json_object_get(u->ps->state, "networks");
	size_t i;
	json_t *n;
	json_array_foreach(nets, i, n)
	{
		if (name && !streq(jstr(n, "name") ?: "", name))
			continue;
		struct netd_pair *pairs;
		size_t np;
		link_pairs(u->m, jstr(n, "key"), &pairs, &np);
		struct netd_conn *c = NULL;
		int r = netd_get(&c, e);
		if (r == 0)
			r = netd_links_set(c, jstr(n, "name"), pairs, np, e);
		free(pairs);
		if (r < 0)
			return err_wrap(e, "setting links on %s",
					jstr(n, "name"));
	}
	return 0;
}

/* Makes the project's networks that are missing and that a container of
 * new_recs (may be NULL) joins at dependency level l or before; with l 0
 * also those no container to be made joins, with l < 0 all of them.  Up
 * makes a level's networks while the supervisor starts the level before.
 * The link-only pairs of the networks made are set. */
static int ensure_networks(struct up_ctx *u, json_t *new_recs, int l,
			   struct orch_err *e)
{
	size_t before = json_array_size(u->created_nets);
	int r = networks_make(u, new_recs, l, NULL, e);
	for (size_t i = before; r == 0 && i < json_array_size(u->created_nets);
	     i++)
		r = links_set(
		    u, json_string_value(json_array_get(u->created_nets, i)),
		    e);
	return r;
}

/* Whether rec's container is still to be made, at dependency level l
 * (any, l < 0): its record keeps its level until then. */
static bool to_make_at(json_t *rec, int l)
{
	return json_object_get(rec, "level") &&
	       (l < 0 || jint(rec, "level", -1) == l);
}

/* Up to max (all, max < 0) of the records of new_recs at dependency
 * level l (any, l < 0) not made yet are recorded and their containers
 * made (not started); the state is saved.  Returns how many. */
static int setup_level(struct up_ctx *u, json_t *new_recs, int l, int max,
		       struct orch_err *e)
{
	int made = 0;
	size_t i;
	json_t *rec;
	json_array_foreach(new_recs, i, rec)
	{
		if (made == max)
			break;
		if (!to_make_at(rec, l))
			continue;
		json_object_del(rec, "level");
		json_array_append(state_containers(u->ps), rec);
		strv_push(&u->created_ctrs, jstr(rec, "name"));
		int r = ctr_setup(u->ps, u->m, rec, e);
		if (r < 0)
			return r;
		/* What was kept for it is its own now. */
		state_anon_drop(u->ps, rec);
		progress("Container", jstr(rec, "name"), "Created");
		made++;
	}
	int r = made ? pstate_save_kept(u->ps, &u->kept, e) : 0;
	return r < 0 ? r : made;
}

/* Whether a container of level l is still to be made. */
static bool any_to_be_made(json_t *new_recs, int l)
{
	size_t i;
	json_t *rec;
	json_array_foreach(new_recs, i, rec)
		if (to_make_at(rec, l))
			return true;
	return false;
}

/* A request of op for the containers names, with their records (a
 * supervisor of before takes "reload": it reads the whole state again for
 * them). */
static json_t *records_req(struct up_ctx *u, const char *op, char **names)
{
	json_t *recs = json_array();
	for (size_t k = 0; names[k]; k++) {
		json_t *rec = json_find_named(state_containers(u->ps), names[k]);
		if (rec)
			json_array_append(recs, rec);
	}
	return json_pack("{s:s, s:b, s:o, s:o}", "op", op, "reload", 1,
			 "names", strv_json(names), "records", recs);
}

/* Makes the next chunk of containers still to be made, of the first level
 * from l on that has some, after the networks they join.  Made ahead of
 * their start (ahead), the supervisor is asked to create them now: each
 * then waits for its start, which is only the word to exec; one that
 * cannot (of an older orch) creates them at their start.  Returns how
 * many were made (0: none is left). */
static int setup_next(struct up_ctx *u, json_t *new_recs, int l, int levels,
		      bool ahead, struct orch_err *e)
{
	for (; l < levels; l++) {
		if (!any_to_be_made(new_recs, l))
			continue;
		int r = ensure_networks(u, new_recs, l, e);
		int made = r < 0 ? r : setup_level(u, new_recs, l, START_CHUNK, e);
		if (made > 0 && ahead) {
			size_t n = strv_len(u->created_ctrs);
			json_t *req = records_req(u, "create",
						  u->created_ctrs + n - made);
			json_t *rep = NULL;
			struct orch_err ign = {0};
			control_call(u->ps, req, &rep, &ign);
			json_decref(req);
			json_decref(rep);
		}
		return made;
	}
	return 0;
}

/* Whether name's container is still to be made (its record is in
 * new_recs with its level). */
static bool to_be_made(json_t *new_recs, const char *name)
{
	json_t *rec = json_find_named(new_recs, name);
	return rec && to_make_at(rec, -1);
}

/* Those of names made and not yet marked sent, marked now. */
static char **take_made(json_t *new_recs, char **names, bool *sent)
{
	char **made = xcalloc(1, sizeof(char *));
	for (size_t k = 0; names[k]; k++)
		if (!sent[k] && !to_be_made(new_recs, names[k])) {
			sent[k] = true;
			strv_push(&made, names[k]);
		}
	return made;
}

/* Asks the supervisor to start names, without waiting. */
static int starts_send(struct up_ctx *u, char **names, struct orch_err *e)
{
	json_t *req = records_req(u, "start", names);
	int fd;
	int r = control_open(u->ps, req, &fd, e);
	json_decref(req);
	if (r < 0)
		return r;
	u->start_fds = xrealloc(u->start_fds,
				(u->n_start_fds + 1) * sizeof(int));
	u->start_fds[u->n_start_fds++] = fd;
	for (size_t k = 0; names[k]; k++)
		strv_push(&u->starting, names[k]);
	return 0;
}

/* Whether the supervisor has answered every start request sent (it is
 * done with them). */
static bool starts_answered(const struct up_ctx *u)
{
	for (size_t i = 0; i < u->n_start_fds; i++) {
		struct pollfd p = {.fd = u->start_fds[i], .events = POLLIN};
		if (poll(&p, 1, 0) == 0)
			return false;
	}
	return true;
}

/* Reads the replies to every start request sent; the first failure is
 * the error.  *hook_failed: they started, but a post_start hook
 * failed. */
static int starts_finish(struct up_ctx *u, bool *hook_failed,
			 struct orch_err *e)
{
	*hook_failed = false;
	int first = 0;
	for (size_t i = 0; i < u->n_start_fds; i++) {
		json_t *rep = NULL;
		struct orch_err se = {0};
		int r = control_reply(u->ps, u->start_fds[i], &rep, &se);
		json_decref(rep);
		if (r < 0 && !first) {
			first = r;
			*e = se;
		}
	}
	u->n_start_fds = 0;
	_cleanup_strv_ char **names = move_ptr(u->starting);
	if (first < 0 || !names)
		return first;
	for (size_t k = 0; names[k]; k++)
		progress("Container", names[k], "Started");
	int r = hooks_run(u->ps, names, "post_start", e);
	*hook_failed = r < 0;
	return r;
}

/* The supervisor started by this up, once it listens. */
static int supervisor_ready(struct up_ctx *u, struct orch_err *e)
{
	int fd = u->sup_ready;
	u->sup_ready = -1;
	return supervisor_wait(u->ps, fd, e);
}

/* Waits for the depends_on conditions of service s to hold. */
static int wait_deps(struct up_ctx *u, const struct service *s,
		     struct orch_err *e)
{
	for (size_t d = 0; d < s->n_depends_on; d++) {
		const struct m_dep *dep = &s->depends_on[d];
		/* Its level started before this one: nothing to ask. */
		if (dep->condition == M_DEP_STARTED)
			continue;
		_cleanup_strv_ char **names = NULL;
		char *svc[] = {dep->service, NULL};
		names = containers_of(u->ps, NULL, svc, NULL);
		if (!names[0])
			continue;
		for (;;) {
			json_t *st = NULL;
			int r = status_get(u->ps, &st, e);
			if (r < 0)
				return r;
			bool done = true;
			for (size_t k = 0; names[k] && r == 0; k++) {
				json_t *c = json_find_named(st, names[k]);
				const char *state = c ? jstr(c, "state") : "";
				const char *health = c ? jstr(c, "health") : "";
				int code = (int)jint(c, "exit_code", 0);
				bool exited = streq(state, "exited");
				switch (dep->condition) {
				case M_DEP_STARTED: /* not asked, above */
					break;
				case M_DEP_HEALTHY:
					if (streq(health, "unhealthy") ||
					    exited) {
						u->dep_failed = true;
						r = err_set(
						    e, EIO,
						    "dependency failed to "
						    "start: container %s "
						    "is %s",
						    names[k],
						    exited ? "exited"
							   : "unhealthy");
					} else if (!streq(health, "healthy") &&
						   *health)
						done = false;
					else if (!*health)
						r = err_set(
						    e, EINVAL,
						    "service %s depends on "
						    "%s being healthy, "
						    "which has no health "
						    "check",
						    s->name, dep->service);
					break;
				case M_DEP_COMPLETED:
					if (exited && code != 0) {
						u->dep_failed = true;
						r = err_set(
						    e, EIO,
						    "service %s didn't "
						    "complete successfully:"
						    " exit %d",
						    dep->service, code);
					} else if (!exited)
						done = false;
					break;
				}
			}
			json_decref(st);
			if (r < 0)
				return r;
			if (done)
				break;
			usleep(20000);
		}
		if (dep->condition == M_DEP_HEALTHY)
			for (size_t k = 0; names[k]; k++)
				progress("Container", names[k], "Healthy");
	}
	return 0;
}

int reconcile_wait(struct pstate *ps, char **services, int64_t timeout_ms,
		   struct orch_err *e)
{
	_cleanup_strv_ char **names = containers_of(ps, NULL, services, NULL);
	int64_t deadline = timeout_ms > 0 ? mono_ms() + timeout_ms : 0;
	for (;;) {
		json_t *st = NULL;
		int r = status_get(ps, &st, e);
		if (r < 0)
			return r;
		bool done = true;
		for (size_t k = 0; names[k] && r == 0; k++) {
			json_t *c = json_find_named(st, names[k]);
			const char *state = c ? jstr(c, "state") : "";
			const char *health = c ? jstr(c, "health") : "";
			int code = (int)jint(c, "exit_code", 0);
			if (streq(state, "exited")) {
				if (code != 0)
					r = err_set(e, EIO,
						    "container %s exited (%d)",
						    names[k], code);
			} else if (streq(health, "unhealthy"))
				r = err_set(e, EIO, "container %s is unhealthy",
					    names[k]);
			else if (!streq(state, "running") ||
				 (*health && !streq(health, "healthy")))
				done = false;
		}
		json_decref(st);
		if (r < 0)
			return r;
		if (done)
			return 0;
		if (deadline && mono_ms() > deadline)
			return err_set(
			    e, ETIMEDOUT,
			    "timed out waiting for the project to be "
			    "running and healthy");
		usleep(20000);
	}
}

/* Removes from array the first element equal to v. */
static void json_array_drop(json_t *array, const json_t *v)
{
	size_t i;
	json_t *x;
	json_array_foreach(array, i, x)
	{
		if (json_equal(x, v)) {
			json_array_remove(array, i);
			return;
		}
	}
}

static bool json_array_has(json_t *array, const json_t *v)
{
	size_t i;
	json_t *x;
	json_array_foreach(array, i, x) if (json_equal(x, v)) return true;
	return false;
}

/* The anonymous volumes of old, a container being recreated, go to the
 * record that replaces it (its service and number), as compose keeps
 * them: old no longer removes them, and the state keeps them for that
 * record until an up makes it. */
static void anon_hand_over(struct pstate *ps, json_t *old, json_t *new_recs,
			   const struct plan_action *a)
{
	json_t *at = json_object_get(old, "anon_targets");
	if (!json_object_size(at))
		return;
	size_t i;
	json_t *rec;
	json_array_foreach(new_recs, i, rec)
	{
		if (!streq(jstr(rec, "service") ?: "", a->service) ||
		    jint(rec, "number", 0) != a->number)
			continue;
		json_object_set(rec, "reuse_anon", at);
		state_anon_keep(ps, rec, at);
		const char *target;
		json_t *v;
		json_object_foreach(at, target, v)
			json_array_drop(json_object_get(old, "anon_volumes"), v);
		return;
	}
}

static void rollback(struct up_ctx *u)
{
	struct orch_err ign = {0};
	supervisor_ready(u, &ign);
	/* What a new container took over from the one it replaced stays,
	 * as the project's (down removes it), kept for the next up
	 * (state_anon_kept). */
	for (size_t k = 0; u->created_ctrs && u->created_ctrs[k]; k++) {
		json_t *rec = state_container_find(u->ps, u->created_ctrs[k]);
		json_auto_t *keep = json_object();
		const char *target;
		json_t *v;
		json_object_foreach(json_object_get(rec, "anon_targets"), target,
				    v) if (json_array_has(
				       json_object_get(rec, "anon_inherited"), v))
		{
			json_object_set(keep, target, v);
			json_array_drop(json_object_get(rec, "anon_volumes"), v);
		}
		if (json_object_size(keep))
			state_anon_keep(u->ps, rec, keep);
	}
	if (u->created_ctrs && u->created_ctrs[0]) {
		if (supervisor_alive(u->ps))
			reconcile_stop(u->ps, u->created_ctrs, 0, "stop", &ign);
		reconcile_remove(u->ps, u->created_ctrs, true, &ign);
	}
	size_t i;
	json_t *v;
	json_array_foreach(u->created_vols, i, v)
	    rt_volume_remove(json_string_value(v), &ign);
	json_t *nets = json_object_get(u->ps->state, "networks");
	json_array_foreach(u->created_nets, i, v)
	{
		struct netd_conn *c = NULL;
		if (netd_get(&c, &ign) == 0)
			netd_network_remove(c, json_string_value(v), NULL,
					    &ign);
		size_t k;
		json_t *n;
		json_array_foreach(nets, k, n)
		{
			if (streq(jstr(n, "name") ?: "",
				  json_string_value(v))) {
				json_array_remove(nets, k);
				break;
			}
		}
	}
	if (u->project_was_empty &&
	    json_array_size(state_containers(u->ps)) == 0) {
		if (supervisor_alive(u->ps))
			call_simple(u->ps, json_pack("{s:s}", "op", "exit"),
				    &ign);
		pstate_remove(u->ps, &ign);
	} else
		pstate_save(u->ps, &ign);
}

static int apply_scale(struct project *m, char **scale, int64_t *replicas,
		       struct orch_err *e)
{
	for (size_t i = 0; i < m->n_services; i++)
		replicas[i] = service_replicas(&m->services[i]);
	for (size_t k = 0; scale && scale[k]; k++) {
		_cleanup_free_ char *s = xstrdup(scale[k]);
		char *eq = strchr(s, '=');
		if (!eq)
			return err_set(e, EINVAL, "--scale %s: use SERVICE=N",
				       scale[k]);
		*eq = '\0';
		char *end;
		long n = strtol(eq + 1, &end, 10);
		if (end == eq + 1 || *end || n < 0 || n > ORCH_MAX_REPLICAS)
			return err_set(e, EINVAL,
				       "--scale %s: want a number from 0 to %d",
				       scale[k], ORCH_MAX_REPLICAS);
		bool found = false;
		for (size_t i = 0; i < m->n_services; i++)
			if (streq(m->services[i].name, s)) {
				replicas[i] = n;
				found = true;
			}
		if (!found)
			return err_set(e, ENOENT,
				       "--scale: no such service: %s", s);
	}
	int64_t total = 0;
	for (size_t i = 0; i < m->n_services; i++)
		total += replicas[i];
	if (total > ORCH_MAX_CONTAINERS)
		return err_set(
		    e, EINVAL,
		    "--scale: the project would run %lld containers, "
		    "more than %d",
		    (long long)total, ORCH_MAX_CONTAINERS);
	return 0;
}

static json_t *instantiate(const struct project *m, const struct service *s,
			   json_t *tmpl, int number)
{
	json_t *rec = json_deep_copy(tmpl);
	char id[65];
	random_id(id);
	_cleanup_free_ char *name =
	    s->container_name && number == 1
		? xstrdup(s->container_name)
		: xasprintf("%s-%s-%d", m->name, s->name, number);
	json_object_set_new(rec, "id", json_string(id));
	json_object_set_new(rec, "name", json_string(name));
	json_object_set_new(rec, "number", json_integer(number));
	json_object_set_new(json_object_get(rec, "spec"), "upper_dir",
			    json_sprintf("%s/containers/%s", orch_root(), id));
	json_object_set_new(rec, "created", json_integer(time(NULL)));
	json_t *lb = json_object_get(rec, "labels");
	_cleanup_free_ char *num = xasprintf("%d", number);
	json_object_set_new(lb, "com.docker.compose.container-number",
			    json_string(num));
	return rec;
}
/* The service a network_mode, pid or ipc of "service:NAME" (or
 * "container:NAME" of a service's container_name) shares: made first. */
static void mode_deps(const struct project *m, const struct service *s,
		      const char *mode, char ***deps)
{
	if (mode && startswith(mode, "service:"))
		strv_add_unique(deps, mode + 8);
	for (size_t k = 0; mode && startswith(mode, "container:") &&
			   k < m->n_services;
	     k++) {
		const struct service *o = &m->services[k];
		if (o != s && o->container_name &&
		    streq(o->container_name, mode + 10))
			strv_add_unique(deps, o->name);
	}
}


int reconcile_up(struct project *m, const struct up_opts *o, struct pstate *ps,
		 struct orch_err *e)
{
	struct up_ctx u = {.ps = ps,
			   .m = m,
			   .sup_ready = -1,
			   .open_networks =
			       o->open_networks || project_open_networks(m)};
	int r = finish_removals(ps, e);
	if (r < 0)
		return r;
	u.project_was_empty = json_array_size(state_containers(ps)) == 0;
	_cleanup_free_ int64_t *replicas =
	    xcalloc(m->n_services + 1, sizeof(int64_t));
	r = apply_scale(m, o->scale, replicas, e);
	if (r < 0)
		return r;

	/* Templates: images and commands are checked here, before anything
	 * happens; a service that fails only matters if it is to be
	 * created. */
	json_auto_t *tmpls = json_object();
	json_auto_t *tmpl_errs = json_object();
	_cleanup_free_ struct plan_service *ps_svcs =
	    xcalloc(m->n_services + 1, sizeof(*ps_svcs));
	char ***deps = xcalloc(m->n_services + 1, sizeof(char **));
	for (size_t i = 0; i < m->n_services; i++) {
		const struct service *s = &m->services[i];
		json_t *t = NULL;
		struct orch_err te = {0};
		if (record_template(m, s, &t, &te) < 0)
			json_object_set_new(tmpl_errs, s->name,
					    json_string(te.msg));
		else
			json_object_set_new(tmpls, s->name, t);
		for (size_t k = 0; k < s->n_depends_on; k++)
			strv_push(&deps[i], s->depends_on[k].service);
		for (size_t k = 0; s->links && s->links[k]; k++) {
			_cleanup_free_ char *l = xstrdup(s->links[k]);
			char *colon = strchr(l, ':');
			if (colon)
				*colon = '\0';
			strv_add_unique(&deps[i], l);
		}
		mode_deps(m, s, s->network_mode, &deps[i]);
		mode_deps(m, s, s->pid, &deps[i]);
		mode_deps(m, s, s->ipc, &deps[i]);
		/* volumes_from a service: made first. */
		for (size_t k = 0; s->volumes_from && s->volumes_from[k];
		     k++) {
			_cleanup_free_ char *v = xstrdup(s->volumes_from[k]);
			v[strcspn(v, ":")] = '\0';
			if (!startswith(s->volumes_from[k], "container:") &&
			    project_service(m, v) && !strv_contains(deps[i], v))
				strv_push(&deps[i], v);
		}
		ps_svcs[i] = (struct plan_service){
		    .name = s->name,
		    .deps = deps[i],
		    .scale = (int)replicas[i],
		    .hash = t ? jstr(t, "hash") : NULL,
		};
	}
	struct plan plan = {0};
	_cleanup_free_ struct plan_observed *obs = NULL;
	json_t *status = NULL;
	json_auto_t *new_recs = json_array();

	/* What exists. */
	size_t n_obs = json_array_size(state_containers(ps));
	obs = xcalloc(n_obs + 1, sizeof(*obs));
	if (n_obs) {
		r = status_get(ps, &status, e);
		if (r < 0)
			goto out;
	}
	{
		size_t i;
		json_t *c;
		json_array_foreach(state_containers(ps), i, c)
		{
			json_t *st =
			    status ? json_find_named(status, jstr(c, "name"))
				   : NULL;
			obs[i] = (struct plan_observed){
			    .name = jstr(c, "name"),
			    .service = jstr(c, "service") ?: "",
			    .number = (int)jint(c, "number", 1),
			    .hash = jstr(c, "hash"),
			    .running =
				st && streq(jstr(st, "state") ?: "", "running"),
			};
		}
	}
	struct plan_opts po = {
	    .force_recreate = o->force_recreate,
	    .no_recreate = o->no_recreate,
	    .no_deps = o->no_deps,
	    .remove_orphans = o->remove_orphans,
	    .services = o->services,
	};
	r = plan_compute(ps_svcs, m->n_services, obs, n_obs, &po, &plan, e);
	if (r < 0)
		goto out;

	/* The records this up will create, then every machine check. */
	for (size_t i = 0; i < plan.n; i++) {
		struct plan_action *a = &plan.actions[i];
		if (a->op != PLAN_CREATE && a->op != PLAN_RECREATE)
			continue;
		const char *terr = jstr(tmpl_errs, a->service);
		if (terr) {
			/* Every failing service is named, not only the
			 * first. */
			const char *k;
			json_t *v;
			json_object_foreach(tmpl_errs, k, v)
			{
				if (v != json_object_get(tmpl_errs, a->service))
					fprintf(stderr, "%s\n",
						json_string_value(v));
			}
			r = err_set(e, ENOENT, "%s", terr);
			goto out;
		}
		const struct service *s = project_service(m, a->service);
		json_t *rec = instantiate(
		    m, s, json_object_get(tmpls, a->service), a->number);
		json_object_set_new(rec, "level", json_integer(a->level));
		json_array_append_new(new_recs, rec);
	}
	if (!o->remove_orphans) {
		for (size_t i = 0; i < n_obs; i++)
			if (!project_service(m, obs[i].service) &&
			    !(m->disabled && ({
				      bool d = false;
				      for (size_t k = 0; k < m->n_disabled; k++)
					      d |= streq(m->disabled[k].name,
							 obs[i].service);
				      d;
			      })))
				log_warn(
				    "found orphan container %s for this "
				    "project; run with --remove-orphans to "
				    "remove it",
				    obs[i].name);
	}
	sweep_unrecorded(ps);
	if ((r = check_names(ps, new_recs, e)) < 0 ||
	    (r = check_rootless(m, e)) < 0 ||
	    (r = check_cpusets(m, new_recs, e)) < 0 ||
	    (r = check_networks(m, e)) < 0 ||
	    (r = check_files(m, new_recs, e)) < 0 ||
	    (r = check_ports(ps, new_recs, e)) < 0)
		goto out;
	warn_unapplied(m, new_recs);
	for (size_t i = 0; i < m->n_volumes; i++) {
		const struct volume *v = &m->volumes[i];
		struct rt_volume *rv = NULL;
		if (!v->external)
			continue;
		if (rt_volume_get(v->name, &rv, e) < 0) {
			r = err_set(e, ENOENT,
				    "%s:%d:%d: external volume \"%s\" does "
				    "not exist",
				    v->pos.file, v->pos.line, v->pos.col,
				    v->name);
			goto out;
		}
		rt_volume_free(rv);
	}

	/* Side effects from here on; failures roll back. */
	u.created_nets = json_array();
	u.created_vols = json_array();
	pstate_claim(ps, host_uid(), m->working_dir, m->files);
	if ((r = pstate_save(ps, e)) < 0)
		goto fail;
	/* The supervisor starts while networks and containers are made. */
	if (!o->no_start && (r = supervisor_spawn(ps, &u.sup_ready, e)) < 0)
		goto fail;
	/* The networks of the first level (of every level when none is
	 * started); those of the others while the level before starts.  What
	 * goes on the disk first (each synced) is made meanwhile. */
	if ((r = networks_make(&u, new_recs, o->no_start ? -1 : 0, disk_make,
			       e)) < 0)
		goto fail;
	/* Link-only pairs are by service: each endpoint gets its own as it
	 * is attached.  Those of every network the project has, for the
	 * services as the files now say. */
	if ((r = links_set(&u, NULL, e)) < 0)
		goto fail;
	{
		/* Removals and the old halves of recreations, whose
		 * anonymous volumes go to the new halves (unless -V). */
		_cleanup_strv_ char **gone = xcalloc(1, sizeof(char *));
		for (size_t i = 0; i < plan.n; i++) {
			const struct plan_action *a = &plan.actions[i];
			if (a->op != PLAN_REMOVE && a->op != PLAN_RECREATE)
				continue;
			strv_push(&gone, a->name);
			if (a->op == PLAN_RECREATE && !o->renew_anon_volumes)
				anon_hand_over(ps,
					       state_container_find(ps, a->name),
					       new_recs, a);
		}
		/* -V: what an up that failed kept is not taken either
		 * (down removes it). */
		size_t k;
		json_t *rec;
		json_array_foreach(new_recs, k, rec) if (o->renew_anon_volumes)
		    state_anon_drop(ps, rec);
		if (gone[0]) {
			r = supervisor_ready(&u, e);
			if (r == 0)
				r = reconcile_stop(ps, gone, o->timeout_ms,
						   "stop", e);
			if (r == 0)
				r = reconcile_remove(ps, gone, true, e);
			if (r < 0)
				goto fail;
		}
	}
	/* Created only: a supervisor already running learns of them, so
	 * that a later start finds them. */
	if (o->no_start) {
		if ((r = setup_level(&u, new_recs, -1, -1, e)) < 0)
			goto fail;
		if (supervisor_alive(ps))
			r = call_simple(ps, json_pack("{s:s}", "op", "reload"), e);
		if (r < 0)
			goto fail;
		goto out;
	}

	/* One dependency level after the other, a chunk of containers at a
	 * time: a chunk is started while the next is made, and for as long
	 * as the supervisor is busy with a level, the containers of the
	 * levels after it are made (with their networks), as compose creates
	 * every container before it starts the first. */
	for (int l = 0; l <= plan.levels; l++) {
		for (int made = 1; made > 0 && !starts_answered(&u);) {
			made = setup_next(&u, new_recs, l, plan.levels, true,
					  e);
			if (made < 0) {
				r = made;
				goto fail;
			}
		}
		bool hook_failed;
		if ((r = starts_finish(&u, &hook_failed, e)) < 0) {
			/* A failed post_start fails up; the containers stay,
			 * for logs and ps to tell why. */
			if (hook_failed)
				goto out;
			goto fail;
		}
		if (l == plan.levels)
			break;
		_cleanup_strv_ char **names = xcalloc(1, sizeof(char *));
		for (size_t i = 0; i < plan.n; i++) {
			struct plan_action *a = &plan.actions[i];
			if (a->level != l || a->op == PLAN_REMOVE)
				continue;
			if (a->op == PLAN_KEEP) {
				/* Nothing to change: said, as compose does. */
				progress("Container", a->name, "Running");
				continue;
			}
			const struct service *s =
			    project_service(m, a->service);
			if (a->number == 1 && (r = wait_deps(&u, s, e)) < 0)
				goto dep_fail;
			if (a->number == 1 &&
			    (r = hooks_pre_start(ps, m, s, e)) < 0)
				goto out;
			_cleanup_free_ char *name =
			    s->container_name && a->number == 1
				? xstrdup(s->container_name)
				: xasprintf("%s-%s-%d", m->name, s->name,
					    a->number);
			strv_push(&names, name);
		}
		if (!names[0])
			continue;
		if ((r = supervisor_ready(&u, e)) < 0)
			goto fail;
		_cleanup_free_ bool *sent =
		    xcalloc(strv_len(names) + 1, sizeof(bool));
		/* The containers made so far go to the supervisor whenever
		 * it is done with those sent before: while it starts them,
		 * the next are made.  The slower side sets the pace, and a
		 * slow supervisor gets larger and fewer requests (each makes
		 * it read the whole state again). */
		for (;;) {
			bool more = any_to_be_made(new_recs, l);
			if (!more || starts_answered(&u)) {
				_cleanup_strv_ char **chunk =
				    take_made(new_recs, names, sent);
				if (chunk[0] &&
				    (r = starts_send(&u, chunk, e)) < 0)
					goto fail;
			}
			if (!more)
				break;
			int made = setup_next(&u, new_recs, l, plan.levels,
					      false, e);
			if (made < 0) {
				r = made;
				goto fail;
			}
		}
	}
	if (o->wait) {
		r = reconcile_wait(ps, o->services, o->wait_timeout_ms, e);
		if (r < 0)
			goto out; /* started fine; only not healthy */
	}
	goto out;
dep_fail:
	if (u.dep_failed)
		goto out;
fail : {
	struct orch_err saved = *e;
	rollback(&u);
	*e = saved;
}
out:
	if (u.sup_ready >= 0) {
		/* Started, and nothing was asked of it: it runs, as after any
		 * up. */
		struct orch_err ign = {0};
		supervisor_ready(&u, &ign);
	}
	for (size_t i = 0; i < u.n_start_fds; i++)
		close(u.start_fds[i]);
	free(u.start_fds);
	strv_free(u.starting);
	plan_free(&plan);
	pstate_kept_clear(&u.kept);
	json_decref(status);
	json_decref(u.created_nets);
	json_decref(u.created_vols);
	strv_free(u.created_ctrs);
	for (size_t i = 0; i < m->n_services; i++)
		strv_free(deps[i]);
	free(deps);
	return r;
}

/* ---- run -------------------------------------------------------------------
 */

int reconcile_start(struct pstate *ps, char **names, struct orch_err *e)
{
	int r = supervisor_ensure(ps, e);
	if (r == 0)
		r = call_simple(ps, json_pack("{s:s}", "op", "reload"), e);
	if (r == 0)
		r = call_simple(ps,
				json_pack("{s:s, s:o}", "op", "start", "names",
					  strv_json(names)),
				e);
	if (r == 0)
		r = hooks_run(ps, names, "post_start", e);
	return r;
}

int reconcile_oneoff(struct pstate *ps, struct project *m,
		     const struct service *s, const struct oneoff_opts *o,
		     json_t **out, struct orch_err *e)
{
	/* The command given to run stands in for the service's when the
	 * template is made: a service may have none of its own. */
	struct service given = *s;
	if (o->cmd && !o->entrypoint)
		given.command = o->cmd;
	json_t *tmpl = NULL;
	int r = record_template(m, &given, &tmpl, e);
	if (r < 0)
		return r;
	char id[65];
	random_id(id);
	_cleanup_free_ char *name =
	    o->name ? xstrdup(o->name)
		    : xasprintf("%s-%s-run-%.12s", m->name, s->name, id);
	json_t *rec = tmpl;
	json_object_set_new(rec, "id", json_string(id));
	json_object_set_new(rec, "name", json_string(name));
	json_object_set_new(rec, "number", json_integer(0));
	json_object_set_new(json_object_get(rec, "spec"), "upper_dir",
			    json_sprintf("%s/containers/%s", orch_root(), id));
	json_object_set_new(rec, "oneoff", json_true());
	json_object_set_new(rec, "restart", json_string("no"));
	json_object_set_new(rec, "created", json_integer(time(NULL)));
	json_object_set_new(json_object_get(rec, "labels"),
			    "com.docker.compose.oneoff", json_string("True"));
	if (!o->service_ports)
		json_object_set_new(rec, "port_specs", json_array());
	if (o->use_aliases)
		json_object_set_new(rec, "use_aliases", json_true());
	json_t *spec = json_object_get(rec, "spec");
	if (o->entrypoint || o->cmd) {
		json_t *argv = json_array();
		if (o->entrypoint)
			json_array_append_new(argv, json_string(o->entrypoint));
		else if (!o->cmd) {
			json_decref(argv);
			argv = NULL;
		}
		for (size_t i = 0; argv && o->cmd && o->cmd[i]; i++)
			json_array_append_new(argv, json_string(o->cmd[i]));
		if (argv && !o->entrypoint && s->entrypoint) {
			json_t *full = json_array();
			for (size_t i = 0; s->entrypoint[i]; i++)
				json_array_append_new(
				    full, json_string(s->entrypoint[i]));
			json_array_extend(full, argv);
			json_decref(argv);
			argv = full;
		}
		if (argv)
			json_object_set_new(spec, "argv", argv);
	}
	json_t *env = json_object_get(spec, "env");
	for (size_t i = 0; o->env && o->env[i]; i++)
		json_array_append_new(env, json_string(o->env[i]));
	if (o->workdir)
		json_object_set_new(spec, "workdir", json_string(o->workdir));
	if (o->user) {
		/* Only numeric ids here; names are resolved by the image's
		 * files in record_template. */
		char *colon = strchr(o->user, ':');
		json_object_set_new(spec, "uid", json_integer(atoi(o->user)));
		json_object_set_new(spec, "gid",
				    json_integer(colon ? atoi(colon + 1) : 0));
	}
	/* The networks and volumes it needs, when no up made them yet (as
	 * compose's run makes them). */
	struct up_ctx u = {.ps = ps,
			   .m = m,
			   .open_networks = project_open_networks(m),
			   .created_nets = json_array(),
			   .created_vols = json_array()};
	json_t *one = json_pack("[O]", rec);
	r = ensure_networks(&u, NULL, -1, e);
	if (r == 0)
		r = ensure_volumes(&u, one, e);
	json_decref(one);
	if (r == 0) {
		json_array_append(state_containers(ps), rec);
		r = ctr_setup(ps, m, rec, e);
		if (r == 0)
			r = pstate_save(ps, e);
		if (r < 0) {
			struct orch_err ign = {0};
			char *names[] = {name, NULL};
			reconcile_remove(ps, names, true, &ign);
		}
	}
	if (r < 0) {
		struct orch_err saved = *e;
		rollback(&u);
		*e = saved;
	}
	json_decref(u.created_nets);
	json_decref(u.created_vols);
	if (r < 0) {
		json_decref(rec);
		return r;
	}
	*out = rec;
	json_decref(rec); /* the state holds it */
	return 0;
}
