/* netd's configuration file and its persisted state (networks with their
 * endpoints, ports and pairs; the host settings it changed).
 *
 * The state file is replaced atomically after a change, but for attaches
 * and detaches: those are appended, one line each, to the journal beside
 * it (state.json.journal), which state_load replays.  Writing the whole
 * state after each attach made an `up` quadratic in its endpoints (a
 * 200-service `up` wrote 8 MB of state).  The journal's first line names
 * the state file it follows ({"journal": id}, the id the state file
 * holds): a state file written after the journal's records (which it
 * holds then) gets a new id, so that a crash before the journal is
 * emptied leaves a journal that is not replayed.  A record cut short (the
 * last one, netd killed while writing it: it had not answered) ends the
 * replay.  The whole state is written again when the journal would
 * outgrow it, and when netd goes idle.  Like the state file, the journal
 * lives under ORCH_RUN: it must be whole, not on the disk. */
#include "netd/netd-int.h"

#include <fcntl.h>
#include <jansson.h>
#include <pwd.h>

#define STATE_VERSION 1

/* "user_subnets": ["10.200.0.0/16", ...] */
static int config_user_subnets(json_t *v, struct netd_config *cfg,
			       struct orch_err *e)
{
	if (!json_is_array(v))
		return err_set(e, EINVAL,
			       "user_subnets: expected a list of subnets");
	size_t i;
	json_t *item;
	cfg->user_subnets =
	    xcalloc(json_array_size(v) + 1, sizeof(struct cidr));
	json_array_foreach(v, i, item)
	{
		struct cidr *c = &cfg->user_subnets[cfg->n_user_subnets];
		if (!json_is_string(item))
			return err_set(e, EINVAL,
				       "user_subnets: expected a list of "
				       "subnets");
		int r = ipam_parse_cidr(json_string_value(item), c, e);
		if (r < 0)
			return err_wrap(e, "user_subnets");
		cfg->n_user_subnets++;
	}
	return 0;
}

/* One port "80" or range "8000-8100", or a number. */
static int port_range_parse(json_t *item, unsigned *lo, unsigned *hi)
{
	if (json_is_integer(item)) {
		json_int_t n = json_integer_value(item);
		*lo = *hi = (unsigned)n;
		return n >= 1 && n <= 65535 ? 0 : -EINVAL;
	}
	const char *s = json_string_value(item);
	if (!s)
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long a = strtoul(s, &end, 10), b = a;
	if (end == s || errno)
		return -EINVAL;
	if (*end == '-') {
		const char *t = end + 1;
		b = strtoul(t, &end, 10);
		if (end == t || errno)
			return -EINVAL;
	}
	if (*end || a < 1 || b > 65535 || a > b)
		return -EINVAL;
	*lo = (unsigned)a;
	*hi = (unsigned)b;
	return 0;
}

/* "user_ports": {"1001": ["80", "8000-8100"], "alice": [443]} */
static int config_user_ports(json_t *v, struct netd_config *cfg,
			     struct orch_err *e)
{
	if (!json_is_object(v))
		return err_set(e, EINVAL,
			       "user_ports: expected {\"UID or user\": "
			       "[\"PORT\" or \"LO-HI\", ...]}");
	const char *who;
	json_t *list;
	json_object_foreach(v, who, list)
	{
		char *end;
		errno = 0;
		unsigned long uid = strtoul(who, &end, 10);
		if (end == who || *end || errno || uid > UINT32_MAX - 1) {
			char buf[1024];
			struct passwd pw, *found = NULL;
			if (getpwnam_r(who, &pw, buf, sizeof(buf), &found) ||
			    !found)
				return err_set(e, EINVAL,
					       "user_ports: no such user "
					       "\"%s\"",
					       who);
			uid = pw.pw_uid;
		}
		if (!json_is_array(list))
			return err_set(e, EINVAL,
				       "user_ports \"%s\": expected a list",
				       who);
		size_t i;
		json_t *item;
		json_array_foreach(list, i, item)
		{
			struct port_allowance a = {.uid = (uid_t)uid};
			if (port_range_parse(item, &a.lo, &a.hi) < 0)
				return err_set(e, EINVAL,
					       "user_ports \"%s\": item %zu: "
					       "expected a port or LO-HI "
					       "(1-65535)",
					       who, i + 1);
			cfg->user_ports =
			    xrealloc(cfg->user_ports,
				     (cfg->n_user_ports + 1) * sizeof(a));
			cfg->user_ports[cfg->n_user_ports++] = a;
		}
	}
	return 0;
}

void config_clear(struct netd_config *cfg)
{
	free(cfg->user_subnets);
	free(cfg->user_ports);
	cfg->user_subnets = NULL;
	cfg->user_ports = NULL;
	cfg->n_user_subnets = cfg->n_user_ports = 0;
}

int config_load(const char *path, struct netd_config *cfg, struct orch_err *e)
{
	*cfg = (struct netd_config){
	    .pool = {0x0ad20000u, 16}, /* 10.210.0.0/16 */
	    .subnet_prefix = 24,
	    /* A ULA /48 ("orch" in its global id), split into /64s. */
	    .pool6 = {{0xfd, 0x6f, 0x72, 0x63, 0x68}, 48},
	    .subnet_prefix6 = 64,
	    .quota_networks = 64,
	    .quota_endpoints = 1024,
	    .quota_ports = 1024,
	    .explain_refusals = true,
	};
	if (!path || access(path, F_OK) < 0)
		return 0;
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return err_set(e, EINVAL, "reading config %s: line %d: %s",
			       path, jerr.line, jerr.text);
	int r = 0;
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		if (streq(key, "pool") && json_is_string(v)) {
			r = ipam_parse_cidr(json_string_value(v), &cfg->pool,
					    e);
		} else if (streq(key, "pool6") && json_is_string(v)) {
			r = ipam6_parse_cidr(json_string_value(v), &cfg->pool6,
					     e);
		} else if (streq(key, "subnet_prefix6") && json_is_integer(v) &&
			   json_integer_value(v) >= 48 &&
			   json_integer_value(v) <= 120) {
			cfg->subnet_prefix6 = (int)json_integer_value(v);
		} else if (streq(key, "subnet_prefix") && json_is_integer(v) &&
			   json_integer_value(v) >= 8 &&
			   json_integer_value(v) <= 30) {
			cfg->subnet_prefix = (int)json_integer_value(v);
		} else if (streq(key, "quota_networks") && json_is_integer(v) &&
			   json_integer_value(v) >= 0) {
			cfg->quota_networks = (unsigned)json_integer_value(v);
		} else if (streq(key, "quota_endpoints") &&
			   json_is_integer(v) && json_integer_value(v) >= 0) {
			cfg->quota_endpoints = (unsigned)json_integer_value(v);
		} else if (streq(key, "quota_ports") && json_is_integer(v) &&
			   json_integer_value(v) >= 0) {
			cfg->quota_ports = (unsigned)json_integer_value(v);
		} else if (streq(key, "explain_refusals") && json_is_boolean(v)) {
			cfg->explain_refusals = json_is_true(v);
		} else if (streq(key, "user_subnets")) {
			r = config_user_subnets(v, cfg, e);
		} else if (streq(key, "user_ports")) {
			r = config_user_ports(v, cfg, e);
		} else {
			r = err_set(e, EINVAL,
				    "unknown or invalid setting \"%s\"", key);
		}
		if (r < 0)
			break;
	}
	json_decref(root);
	if (r == 0 && cfg->subnet_prefix < cfg->pool.prefix)
		r = err_set(e, EINVAL,
			    "subnet_prefix /%d is larger than the pool",
			    cfg->subnet_prefix);
	if (r == 0 && cfg->subnet_prefix6 < cfg->pool6.prefix)
		r = err_set(e, EINVAL,
			    "subnet_prefix6 /%d is larger than pool6",
			    cfg->subnet_prefix6);
	if (r == 0 && policy_subnet6_special(&cfg->pool6))
		r = err_set(e, EINVAL, "pool6 may not reach into %s address "
				       "space",
			    policy_subnet6_special(&cfg->pool6));
	const char *what = policy_subnet_special(cfg->pool);
	for (size_t i = 0; r == 0 && !what && i < cfg->n_user_subnets; i++)
		what = policy_subnet_special(cfg->user_subnets[i]);
	if (r == 0 && what)
		r = err_set(e, EINVAL,
			    "the pool and user_subnets may not reach into "
			    "%s address space",
			    what);
	if (r < 0)
		config_clear(cfg);
	return r < 0 ? err_wrap(e, "reading config %s", path) : 0;
}

/* A host setting recorded in the state; -1 (untouched) when absent. */
static int saved_value(const json_t *root, const char *key)
{
	const json_t *v = json_object_get(root, key);
	return json_is_integer(v) ? (int)json_integer_value(v) : -1;
}

static char *journal_path(const char *path)
{
	return xasprintf("%s.journal", path);
}

static struct netd_network *net_by_id(struct netd_state *st, const char *id)
{
	for (size_t i = 0; id && i < st->n_nets; i++)
		if (streq(st->nets[i].id, id))
			return &st->nets[i];
	return NULL;
}

/* One journal record applied to st; false when it is not one. */
static bool journal_apply(struct netd_state *st, const char *line)
{
	json_t *j = json_loads(line, 0, NULL);
	const char *att = json_string_value(json_object_get(j, "attach"));
	const char *det = json_string_value(json_object_get(j, "detach"));
	struct netd_network *n = net_by_id(st, att ? att : det);
	bool ok = json_is_object(j) && (att || det);
	struct netd_endpoint ep = {0};
	struct orch_err ign = {0};
	if (ok && n && att &&
	    netd_endpoint_from_json(json_object_get(j, "endpoint"), &ep,
				    &ign) == 0) {
		if (state_endpoint_find(n, ep.container_id) < 0) {
			n->endpoints = xrealloc(n->endpoints,
						(n->n_endpoints + 1) *
						    sizeof(ep));
			n->endpoints[n->n_endpoints++] = ep;
			memset(&ep, 0, sizeof(ep));
		}
	} else if (ok && n && det) {
		ssize_t i = state_endpoint_find(
		    n, json_string_value(json_object_get(j, "container_id")));
		if (i >= 0)
			state_endpoint_remove(n, (size_t)i, &ep);
	}
	netd_endpoint_clear(&ep);
	json_decref(j);
	return ok;
}

/* The journal's records on st, when it follows the state file read. */
static void journal_replay(const char *path, struct netd_state *st)
{
	_cleanup_free_ char *jp = journal_path(path);
	_cleanup_free_ char *txt = NULL;
	size_t len;
	struct orch_err ign = {0};
	if (read_file(jp, &txt, &len, &ign) < 0)
		return;
	char *line = txt, *nl = strchr(line, '\n');
	if (!nl)
		return;
	*nl = '\0';
	json_t *head = json_loads(line, 0, NULL);
	json_t *id = json_object_get(head, "journal");
	bool ours = json_is_integer(id) &&
		    (uint64_t)json_integer_value(id) == st->journal_id;
	json_decref(head);
	if (!ours)
		return;
	bool whole = true;
	for (line = nl + 1; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		/* Cut short: the attach or detach it was had not been
		 * answered, and nothing was written after it. */
		if (!nl || !journal_apply(st, line)) {
			whole = false;
			break;
		}
		st->journal_records++;
	}
	st->journal_bytes = len;
	st->journal_ok = whole;
}

int state_load(const char *path, struct netd_state *st, struct orch_err *e)
{
	memset(st, 0, sizeof(*st));
	st->saved_ip_forward = st->saved_bridge_nf = -1;
	st->saved_ip6_forward = st->saved_bridge_nf6 = -1;
	if (access(path, F_OK) < 0)
		return 0;
	json_error_t jerr;
	json_t *root = json_load_file(path, 0, &jerr);
	if (!root)
		return err_set(e, EINVAL, "reading state %s: %s", path,
			       jerr.text);
	int r = 0;
	json_t *nets = json_object_get(root, "networks");
	if (json_integer_value(json_object_get(root, "version")) !=
		STATE_VERSION ||
	    !json_is_array(nets)) {
		r = err_set(e, EINVAL, "reading state %s: unknown format",
			    path);
		goto out;
	}
	st->saved_ip_forward = saved_value(root, "saved_ip_forward");
	st->saved_bridge_nf = saved_value(root, "saved_bridge_nf");
	st->saved_ip6_forward = saved_value(root, "saved_ip6_forward");
	st->saved_bridge_nf6 = saved_value(root, "saved_bridge_nf6");
	st->journal_id =
	    (uint64_t)json_integer_value(json_object_get(root, "journal"));
	st->nets = xcalloc(json_array_size(nets) + 1, sizeof(*st->nets));
	size_t i;
	json_t *item;
	json_array_foreach(nets, i, item)
	{
		r = netd_network_from_json(item, &st->nets[st->n_nets], e);
		if (r < 0) {
			r = err_wrap(e, "reading state %s", path);
			goto out;
		}
		st->n_nets++;
	}
	journal_replay(path, st);
out:
	json_decref(root);
	return r;
}

/* Appends o's compact text without its closing brace, and drops o. */
static void add_open_object(struct strbuf *sb, json_t *o)
{
	char *t = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!t)
		abort();
	sb_add(sb, t, strlen(t) - 1);
	free(t);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	return s ? fnv1a(h, s, strlen(s) + 1) : fnv1a(h, "\xff", 1);
}

/* What a network's head (all but its endpoints) is made of; it changes
 * with its ports and link pairs. */
static uint64_t head_hash(const struct netd_network *n)
{
	uint64_t h = FNV_INIT;
	const char *s[] = {n->id,     n->name,	  n->project,
			   n->bridge, n->subnet,  n->gateway,
			   n->subnet6, n->gateway6};
	for (size_t i = 0; i < ARRAY_SIZE(s); i++)
		h = hash_str(h, s[i]);
	unsigned flags[] = {n->internal, n->icc, (unsigned)n->owner};
	h = fnv1a(h, flags, sizeof(flags));
	for (size_t i = 0; n->labels && n->labels[i]; i++)
		h = hash_str(h, n->labels[i]);
	h = fnv1a(h, "|", 1);
	for (size_t i = 0; i < n->n_ports; i++) {
		const struct netd_port *p = &n->ports[i];
		h = hash_str(h, p->container_id);
		h = hash_str(h, p->proto);
		h = hash_str(h, p->host_ip);
		unsigned v[] = {p->host_port, p->container_port, p->count};
		h = fnv1a(h, v, sizeof(v));
	}
	h = fnv1a(h, "|", 1);
	for (size_t i = 0; i < n->n_pairs; i++) {
		h = hash_str(h, n->pairs[i].from);
		h = hash_str(h, n->pairs[i].to);
	}
	return h;
}

/* An endpoint's compact text, made once (endpoints never change). */
static const char *endpoint_text(struct netd_endpoint *ep)
{
	if (!ep->saved) {
		json_t *o = netd_endpoint_to_json(ep);
		ep->saved = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		if (!ep->saved)
			abort();
	}
	return ep->saved;
}

/* The state file is compact JSON made here from pieces: each endpoint's
 * text is made once and kept in it (endpoints never change), and each
 * network's head while what it is made of stays the same (its hash), so
 * a save after one attach copies the others' text instead of
 * serializing them again.  With hundreds of endpoints that serialization
 * was most of the cost of an attach (1.4 ms of 2.1 at 330), and with
 * links the heads' (a quarter of netd's time in a 200-service up). */
int state_save(const char *path, struct netd_state *st, struct orch_err *e)
{
	/* A state file that holds the journal's records follows a new one. */
	if (st->journal_records)
		st->journal_id++;
	struct strbuf sb;
	sb_init(&sb);
	add_open_object(
	    &sb, json_pack("{s:i, s:I, s:i, s:i, s:i, s:i}", "version",
			   STATE_VERSION, "journal", (json_int_t)st->journal_id,
			   "saved_ip_forward",
			   st->saved_ip_forward, "saved_bridge_nf",
			   st->saved_bridge_nf, "saved_ip6_forward",
			   st->saved_ip6_forward, "saved_bridge_nf6",
			   st->saved_bridge_nf6));
	sb_adds(&sb, ",\"networks\":[");
	for (size_t i = 0; i < st->n_nets; i++) {
		struct netd_network *n = &st->nets[i];
		uint64_t h = head_hash(n);
		if (!n->head_saved || h != n->head_hash) {
			struct strbuf head;
			sb_init(&head);
			add_open_object(&head, netd_network_head_to_json(n));
			free(n->head_saved);
			n->head_saved = sb_steal(&head);
			n->head_hash = h;
		}
		sb_adds(&sb, n->head_saved);
		sb_adds(&sb, ",\"endpoints\":[");
		for (size_t k = 0; k < n->n_endpoints; k++) {
			if (k)
				sb_adds(&sb, ",");
			sb_adds(&sb, endpoint_text(&n->endpoints[k]));
		}
		sb_adds(&sb, i + 1 < st->n_nets ? "]}," : "]}");
	}
	sb_adds(&sb, "]}");
	int r = write_file_atomic(path, sb.buf, sb.len, 0600, e);
	st->state_bytes = sb.len;
	sb_free(&sb);
	if (r == 0 && (st->journal_records || !st->journal_ok)) {
		_cleanup_free_ char *jp = journal_path(path);
		_cleanup_free_ char *head = xasprintf(
		    "{\"journal\":%llu}\n", (unsigned long long)st->journal_id);
		st->journal_ok = false;
		r = write_file_atomic(jp, head, strlen(head), 0600, e);
		st->journal_ok = r == 0;
		st->journal_records = 0;
		st->journal_bytes = strlen(head);
	}
	return r;
}

int state_journal(const char *path, struct netd_state *st,
		  struct netd_network *n, size_t i, const char *detach,
		  struct orch_err *e)
{
	struct strbuf rec;
	sb_init(&rec);
	if (detach) {
		json_t *o = json_pack("{s:s, s:s}", "detach", n->id,
				      "container_id", detach);
		add_open_object(&rec, o);
		sb_adds(&rec, "}\n");
	} else {
		sb_printf(&rec, "{\"attach\":\"%s\",\"endpoint\":%s}\n", n->id,
			  endpoint_text(&n->endpoints[i]));
	}
	bool appended = false;
	if (st->journal_ok &&
	    st->journal_bytes + rec.len <= st->state_bytes) {
		_cleanup_free_ char *jp = journal_path(path);
		_cleanup_close_ int fd =
		    open(jp, O_WRONLY | O_APPEND | O_CLOEXEC);
		appended = fd >= 0 && RETRY_EINTR(write(fd, rec.buf, rec.len)) ==
					  (ssize_t)rec.len;
		/* Whatever was written of the record would end the replay:
		 * the whole state follows, then a new journal. */
		st->journal_ok = appended;
	}
	size_t len = rec.len;
	sb_free(&rec);
	if (!appended)
		return state_save(path, st, e);
	st->journal_records++;
	st->journal_bytes += len;
	return 0;
}

void state_clear(struct netd_state *st)
{
	netd_networks_free(st->nets, st->n_nets);
	st->nets = NULL;
	st->n_nets = 0;
}

struct netd_network *state_find(struct netd_state *st, const char *name)
{
	for (size_t i = 0; i < st->n_nets; i++)
		if (streq(st->nets[i].name, name) ||
		    streq(st->nets[i].id, name))
			return &st->nets[i];
	return NULL;
}

void state_endpoint_remove(struct netd_network *n, size_t i,
			   struct netd_endpoint *out)
{
	*out = n->endpoints[i];
	memmove(&n->endpoints[i], &n->endpoints[i + 1],
		(n->n_endpoints - i - 1) * sizeof(*out));
	n->n_endpoints--;
	for (size_t p = 0; p < n->n_ports;) {
		if (streq(n->ports[p].container_id, out->container_id)) {
			netd_port_clear(&n->ports[p]);
			n->ports[p] = n->ports[--n->n_ports];
		} else {
			p++;
		}
	}
}

ssize_t state_endpoint_find(const struct netd_network *n, const char *cid)
{
	for (size_t i = 0; i < n->n_endpoints; i++)
		if (streq(n->endpoints[i].container_id, cid))
			return (ssize_t)i;
	return -1;
}

const struct netd_endpoint *state_endpoint_at(const struct netd_network *n,
					      const char *a)
{
	for (size_t i = 0; *a && i < n->n_endpoints; i++) {
		const struct netd_endpoint *ep = &n->endpoints[i];
		if (streq(ep->address, a) ||
		    streq(ep->address6 ? ep->address6 : "", a))
			return ep;
	}
	return NULL;
}
