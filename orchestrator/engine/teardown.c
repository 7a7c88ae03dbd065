/* Taking a project down: stopping containers (dependents first), removing
 * them with what they hold, `down`, and sweeping what a crash left
 * (network namespaces, netd objects and volumes no record names). */
#include "netd/netd.h"
#include "orchestrator/engine/engine_impl.h"
#include "runtime/runtime.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <time.h>

int call_simple(struct pstate *ps, json_t *req, struct orch_err *e)
{
	json_t *rep = NULL;
	int r = control_call(ps, req, &rep, e);
	json_decref(req);
	json_decref(rep);
	return r;
}

/* Dependency level of each recorded container's service, from the
 * depends_on kept in the records. */
static int record_level(struct pstate *ps, const char *service, int depth)
{
	if (depth > 64)
		return depth;
	int lv = 0;
	size_t i;
	json_t *c;
	json_array_foreach(state_containers(ps), i, c)
	{
		if (!streq(jstr(c, "service") ?: "", service))
			continue;
		size_t k;
		json_t *d;
		json_array_foreach(json_object_get(c, "depends_on"), k, d)
		{
			int l =
			    record_level(ps, json_string_value(d), depth + 1) +
			    1;
			if (l > lv)
				lv = l;
		}
		break;
	}
	return lv;
}

int reconcile_stop(struct pstate *ps, char **names, int64_t timeout_ms,
		   const char *op, struct orch_err *e)
{
	_cleanup_strv_ char **all =
	    names ? NULL : containers_of(ps, NULL, NULL, NULL);
	if (!names)
		names = all;
	size_t n = strv_len(names);
	if (n == 0)
		return 0;
	int r = supervisor_ensure(ps, e);
	if (r < 0)
		return r;
	/* pre_stop: its failure is said, and the container stopped all the
	 * same, as compose does. */
	struct orch_err he = {0};
	if (hooks_run(ps, names, "pre_stop", &he) < 0)
		log_warn("%s", he.msg);
	_cleanup_free_ int *lv = xcalloc(n, sizeof(int));
	int max = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *c = state_container_find(ps, names[i]);
		lv[i] = c ? record_level(ps, jstr(c, "service") ?: "", 0) : 0;
		if (lv[i] > max)
			max = lv[i];
	}
	/* Dependents first, each level in one request (in parallel). */
	for (int l = max; l >= 0; l--) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			if (lv[i] == l)
				json_array_append_new(a, json_string(names[i]));
		if (json_array_size(a) == 0) {
			json_decref(a);
			continue;
		}
		json_t *req = json_pack("{s:s, s:o, s:I}", "op", op, "names", a,
					"timeout_ms", (json_int_t)timeout_ms);
		r = call_simple(ps, req, e);
		if (r < 0)
			return r;
	}
	return streq(op, "restart") ? hooks_run(ps, names, "post_start", e) : 0;
}

int reconcile_remove(struct pstate *ps, char **names, bool anon_volumes,
		     struct orch_err *e)
{
	if (!names || !names[0])
		return 0;
	/* Marked first: a removal cut short leaves records whose containers
	 * are half gone, which the next up must finish removing, never
	 * start. */
	for (size_t i = 0; names[i]; i++) {
		json_t *rec = state_container_find(ps, names[i]);
		if (rec)
			json_object_set_new(rec, "removing", json_true());
	}
	int r = pstate_save(ps, e);
	if (r < 0)
		return r;
	if (supervisor_alive(ps)) {
		json_t *req = json_pack("{s:s, s:o, s:b}", "op", "remove",
					"names", strv_json(names), "force", 1);
		r = call_simple(ps, req, e);
		if (r < 0)
			return r;
	} else {
		/* No supervisor (and none could be started): kill directly. */
		for (size_t i = 0; names[i]; i++) {
			json_t *rec = state_container_find(ps, names[i]);
			struct orch_err ign = {0};
			if (rec && jstr(rec, "id"))
				rt_kill(jstr(rec, "id"), SIGKILL, &ign);
		}
	}
	json_t *ctrs = state_containers(ps);
	for (size_t k = 0; names[k]; k++) {
		size_t i;
		json_t *c;
		json_array_foreach(ctrs, i, c)
		{
			if (!streq(jstr(c, "name") ?: "", names[k]))
				continue;
			ctr_teardown(ps, c, true, anon_volumes, e);
			progress("Container", names[k], "Removed");
			json_array_remove(ctrs, i);
			break;
		}
	}
	r = pstate_save(ps, e);
	if (r < 0)
		return r;
	if (supervisor_alive(ps))
		call_simple(ps, json_pack("{s:s}", "op", "reload"), e);
	return e->code ? -e->code : 0;
}

/* ---- what a crash left ------------------------------------------------------
 */

/* The network namespaces in the project's directory: all of them, or
 * those of no recorded container, are removed. */
static void netns_sweep(struct pstate *ps, bool all)
{
	_cleanup_free_ char *nsdir = pstate_path(ps, "netns");
	DIR *d = opendir(nsdir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' ||
		    (!all && state_container_find(ps, de->d_name)))
			continue;
		_cleanup_free_ char *p = path_join(nsdir, de->d_name);
		netns_remove(p);
	}
	if (d)
		closedir(d);
}

/* The project's networks as netd knows them (its state may not list
 * them all); none when netd is not running. */
static struct netd_network *netd_project_nets(struct pstate *ps, size_t *n)
{
	*n = 0;
	_cleanup_free_ char *sock = netd_socket_path();
	struct netd_conn *c = NULL;
	struct orch_err ign = {0};
	struct netd_network *nets = NULL;
	if (access(sock, F_OK) < 0 || netd_get(&c, &ign) < 0 ||
	    netd_network_list(c, ps->name, &nets, n, &ign) < 0)
		return NULL;
	return nets;
}

/* An up killed half-way leaves objects it made before it could record
 * them: network namespaces in the project's directory, and endpoints (with
 * their published ports) on the project's networks.  Removes those of no
 * recorded container. */
void sweep_unrecorded(struct pstate *ps)
{
	netns_sweep(ps, false);
	size_t n;
	struct netd_network *nets = netd_project_nets(ps, &n);
	struct netd_conn *c = NULL;
	struct orch_err ign = {0};
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < nets[i].n_endpoints; k++) {
			const char *id = nets[i].endpoints[k].container_id;
			if (!state_container_find(ps, id) &&
			    netd_get(&c, &ign) == 0)
				netd_endpoint_detach(c, nets[i].name, id, NULL,
						     &ign);
		}
	netd_networks_free(nets, n);
}

void remove_project_volumes(const char *project, bool named,
			    struct orch_err *first)
{
	struct rt_volume **v = NULL;
	size_t n = 0;
	struct orch_err ve = {0};
	if (rt_volume_list(&v, &n, &ve) < 0)
		return;
	_cleanup_free_ char *mine =
	    xasprintf("com.docker.compose.project=%s", project);
	for (size_t i = 0; i < n; i++) {
		bool ours = strv_contains(v[i]->labels, mine);
		bool anon = false;
		for (size_t k = 0; v[i]->labels && v[i]->labels[k]; k++)
			anon |= startswith(v[i]->labels[k], ANON_LABEL "=");
		if (ours && (named || anon)) {
			if (rt_volume_remove(v[i]->name, &ve) < 0 &&
			    ve.code != ENOENT && !first->code)
				*first = ve;
			else if (!anon)
				progress("Volume", v[i]->name, "Removed");
		}
		rt_volume_free(v[i]);
	}
	free(v);
}

/* Finishes the removals an interrupted command began (records marked
 * "removing"), so that they are created anew. */
int finish_removals(struct pstate *ps, struct orch_err *e)
{
	_cleanup_strv_ char **names = NULL;
	size_t i;
	json_t *c;
	json_array_foreach(state_containers(ps), i, c)
	{
		if (jbool(c, "removing") && jstr(c, "name"))
			strv_push(&names, jstr(c, "name"));
	}
	return names ? reconcile_remove(ps, names, true, e) : 0;
}

/* ---- down ------------------------------------------------------------------
 */

static void wait_pid_exit(pid_t pid, int timeout_ms)
{
	int fd = pidfd_open(pid, 0);
	if (fd < 0)
		return;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	RETRY_EINTR(poll(&p, 1, timeout_ms));
	close(fd);
}

/* The keeper a supervisor runs under (its parent), or 0. */
static pid_t keeper_of(pid_t sup)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)sup);
	_cleanup_free_ char *stat = NULL;
	if (read_file(path, &stat, NULL, NULL) < 0)
		return 0;
	/* pid (comm) state ppid ...: comm may hold anything but ")". */
	const char *rp = strrchr(stat, ')');
	int ppid = 0;
	if (!rp || sscanf(rp + 1, " %*c %d", &ppid) != 1 || ppid <= 1)
		return 0;
	_cleanup_free_ char *comm = proc_comm(ppid);
	if (!comm || !startswith(comm, "orch-keeper"))
		return 0;
	return ppid;
}

int reconcile_down(struct pstate *ps, const struct down_opts *o,
		   struct orch_err *e)
{
	struct orch_err first = {0};
	_cleanup_strv_ char **names = containers_of(ps, NULL, NULL, NULL);
	if (names[0]) {
		struct orch_err se = {0};
		if (supervisor_ensure(ps, &se) == 0) {
			if (reconcile_stop(ps, names, o->timeout_ms, "stop",
					   &se) < 0)
				log_warn("%s", se.msg);
			for (size_t i = 0; names[i]; i++)
				progress("Container", names[i], "Stopped");
		} else
			log_warn("%s", se.msg);
	}
	/* Endpoints on our own networks go with the networks. */
	json_t *ctrs = state_containers(ps);
	if (supervisor_alive(ps)) {
		json_t *req = json_pack("{s:s, s:o, s:b}", "op", "remove",
					"names", strv_json(names), "force", 1);
		struct orch_err se = {0};
		if (call_simple(ps, req, &se) < 0)
			log_warn("%s", se.msg);
	}
	/* netd removes the networks, their endpoints and rules (on a
	 * connection of their own) while the containers' files go. */
	size_t i;
	json_t *n;
	_cleanup_strv_ char **nets = NULL;
	json_array_foreach(json_object_get(ps->state, "networks"), i, n)
	{
		if (jstr(n, "name"))
			strv_push(&nets, jstr(n, "name"));
	}
	size_t n_known;
	struct netd_network *known = netd_project_nets(ps, &n_known);
	for (size_t k = 0; k < n_known; k++)
		if (!strv_contains(nets, known[k].name))
			strv_push(&nets, known[k].name);
	netd_networks_free(known, n_known);
	struct netd_conn *nc = NULL;
	struct orch_err ne = {0};
	if (nets && (netd_connect(&nc, &ne) < 0 ||
		     netd_networks_remove_start(nc, nets, &ne) < 0)) {
		netd_close(nc);
		nc = NULL;
	}
	json_t *c;
	json_array_foreach(ctrs, i, c)
	{
		struct orch_err ign = {0};
		if (!supervisor_alive(ps) && jstr(c, "id"))
			rt_kill(jstr(c, "id"), SIGKILL, &ign);
		ctr_teardown(ps, c, false, true, &ign);
		if (ign.code && !first.code)
			first = ign;
		progress("Container", jstr(c, "name"), "Removed");
	}
	json_array_clear(ctrs);
	/* Namespaces a crash left without a record. */
	netns_sweep(ps, true);
	/* Stop the supervisor before its directory goes. */
	if (supervisor_alive(ps)) {
		_cleanup_free_ char *pidf = pstate_path(ps, "supervisor.pid");
		_cleanup_free_ char *txt = NULL;
		struct orch_err ign = {0};
		read_file(pidf, &txt, NULL, &ign);
		pid_t sup = txt ? atoi(txt) : 0;
		pid_t keeper = sup > 0 ? keeper_of(sup) : 0;
		call_simple(ps, json_pack("{s:s}", "op", "exit"), &ign);
		if (sup > 0)
			wait_pid_exit(sup, 2000);
		if (keeper > 0)
			wait_pid_exit(keeper, 2000);
	}
	if (nc)
		netd_networks_remove_finish(nc, NULL, &ne);
	netd_close(nc);
	if (ne.code && !first.code)
		first = ne;
	for (size_t k = 0; !ne.code && nets && nets[k]; k++)
		progress("Network", nets[k], "Removed");
	if (o->volumes) {
		json_t *v;
		json_array_foreach(json_object_get(ps->state, "volumes"), i, v)
		{
			struct orch_err ve = {0};
			if (rt_volume_remove(jstr(v, "name"), &ve) < 0 &&
			    ve.code != ENOENT && !first.code)
				first = ve;
			else
				progress("Volume", jstr(v, "name"), "Removed");
		}
	}
	/* Those an interrupted up made but did not record. */
	remove_project_volumes(ps->name, o->volumes, &first);
	if (first.code) {
		/* Keep the state so that the next down can finish. */
		json_object_set_new(ps->state, "containers", json_array());
		pstate_save(ps, e);
		*e = first;
		return -first.code;
	}
	/* Its containers are gone: the id range goes back to the pool with
	 * the state. */
	return pstate_remove(ps, e);
}
