/* Link-only refusals where the user looks: netd tells the supervisor of
 * every connection that link-only refused on the project's networks, and
 * the supervisor writes one line into the refused container's log (so
 * `orch logs` and an attached `up` show it) and sends a "refused" event
 * (`orch events`).  The watch connection is made when the supervisor
 * starts and made again, with a growing delay, whenever netd is away. */
#include "netd/netd.h"
#include "orchestrator/supervisor/supervise_impl.h"

#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 60000

static struct netd_conn *watch;
static int64_t retry_at, retry_ms;

void refusals_connect(int64_t now)
{
	if (watch || now < retry_at)
		return;
	struct orch_err e = {0};
	if (netd_refusals_watch(sup.project, &watch, &e) < 0) {
		log_debug("not watching refusals yet: %s", e.msg);
		retry_ms = retry_ms ? retry_ms * 2 : RETRY_MIN_MS;
		if (retry_ms > RETRY_MAX_MS)
			retry_ms = RETRY_MAX_MS;
		retry_at = now + retry_ms;
		return;
	}
	retry_ms = 0;
	retry_at = 0;
	ep_add(netd_conn_fd(watch), TAG(K_NETD, 0));
}

int64_t refusals_deadline(void)
{
	return watch ? 0 : retry_at;
}

static const char *key_in(const json_t *state, const char *name)
{
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(state, "networks"), i, n)
	{
		if (streq(jstr(n, "name") ?: "", name) && jstr(n, "key"))
			return jstr(n, "key");
	}
	return NULL;
}

/* The project's name for a network ("back" for "myproj_back").  A
 * network made since the state was last read (up hands over its
 * containers' records, not the state) is looked for in it again. */
static const char *network_key(const char *name)
{
	const char *k = key_in(sup.state, name);
	if (k)
		return k;
	_cleanup_free_ char *sf = path_join(sup.dir, "state.json");
	json_t *st = json_load_file(sf, 0, NULL);
	if (json_is_object(st)) {
		json_decref(sup.state);
		sup.state = st;
	} else {
		json_decref(st);
	}
	k = key_in(sup.state, name);
	return k ? k : name;
}

void refusals_read(void)
{
	struct netd_refusal r;
	struct orch_err e = {0};
	if (netd_refusal_next(watch, &r, &e) < 0) {
		log_debug("refusals: %s", e.msg);
		ep_del(netd_conn_fd(watch));
		netd_close(watch);
		watch = NULL;
		retry_at = mono_ms() + RETRY_MIN_MS;
		return;
	}
	size_t idx;
	struct sctr *c = ctr_find(r.from_container, &idx);
	if (c) {
		const char *from =
		    *r.from_service ? r.from_service : r.from_container;
		const char *to = *r.to_service ? r.to_service : r.to_container;
		_cleanup_free_ char *text = refusal_text(
		    from, to, r.proto, r.port, network_key(r.network));
		_cleanup_free_ char *line = xasprintf("orch: %s", text);
		ctr_log_line(c, line, strlen(line));
		ctr_event(c, "refused",
			  json_pack("{s:s, s:s, s:i, s:s}", "to",
				    r.to_container, "proto", r.proto, "port",
				    (int)r.port, "reason", text));
	}
	netd_refusal_clear(&r);
}
