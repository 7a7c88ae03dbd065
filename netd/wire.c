/* netd's wire format: message decoding with per-op schemas, replies, and
 * the JSON form of networks and endpoints.  Pure: no I/O. */
#include "netd/netd.h"

#include <jansson.h>
#include <limits.h>
#include <sys/socket.h>

enum field_type {
	F_NAME, /* netd_name_valid */
	F_TEXT, /* any string up to max bytes, no NUL */
	F_BOOL,
	F_INT,	 /* 0..max */
	F_NAMES, /* array of F_NAME */
	F_TEXTS, /* array of F_TEXT */
	F_PAIRS, /* array of {"from": name, "to": name} */
	F_LINKS, /* array of "name=name" */
};

/* field.required: false, true, or ONE_OF (at least one of the fields so
 * marked). */
#define ONE_OF 2

struct field {
	const char *name;
	enum field_type type;
	int required;
	long max; /* F_TEXT/F_TEXTS: bytes; F_INT: value */
};

struct op_schema {
	const char *op;
	const struct field *fields;
};

#define END                                                                    \
	{                                                                      \
		NULL, 0, false, 0                                              \
	}
static const struct field f_none[] = {END};
static const struct field f_create[] = {{"name", F_NAME, true, 0},
					{"project", F_NAME, true, 0},
					{"subnet", F_TEXT, false, 64},
					{"gateway", F_TEXT, false, 64},
					{"ipv6", F_BOOL, false, 0},
					{"subnet6", F_TEXT, false, 64},
					{"gateway6", F_TEXT, false, 64},
					{"no_ipv4", F_BOOL, false, 0},
					{"internal", F_BOOL, false, 0},
					{"icc", F_BOOL, false, 0},
					{"labels", F_TEXTS, false, 1024},
					{"check", F_BOOL, false, 0},
					END};
static const struct field f_by_name[] = {{"name", F_NAME, true, 0}, END};
static const struct field f_remove[] = {
    {"name", F_NAME, ONE_OF, 0}, {"names", F_NAMES, ONE_OF, 0}, END};
static const struct field f_by_project[] = {{"project", F_NAME, false, 0}, END};
static const struct field f_attach[] = {
    {"network", F_NAME, true, 0},	  {"container_id", F_NAME, true, 0},
    {"container_name", F_NAME, false, 0}, {"service", F_NAME, false, 0},
    {"aliases", F_NAMES, false, 0},	  {"netns_path", F_TEXT, false, 4096},
    {"pid", F_INT, false, INT_MAX},	  {"address", F_TEXT, false, 64},
    {"address6", F_TEXT, false, 64},	  {"dns", F_TEXTS, false, 64},
    {"links", F_LINKS, false, 0},	  {"mac_address", F_TEXT, false, 17},
    {"named_only", F_BOOL, false, 0},	  END};
static const struct field f_detach[] = {
    {"network", F_NAME, true, 0}, {"container_id", F_NAME, true, 0}, END};
static const struct field f_links[] = {
    {"network", F_NAME, true, 0}, {"pairs", F_PAIRS, true, 0}, END};
static const struct field f_watch[] = {{"project", F_NAME, true, 0}, END};
static const struct field f_cgroup[] = {{"release", F_BOOL, false, 0}, END};
static const struct field f_port[] = {
    {"network", F_NAME, true, 0},	{"container_id", F_NAME, false, 0},
    {"proto", F_TEXT, false, 8},	{"host_ip", F_TEXT, false, 64},
    {"host_port", F_INT, false, 65535}, {"container_port", F_INT, false, 65535},
    {"count", F_INT, false, 65535},	END};

static const struct op_schema schemas[] = {
    {"ping", f_none},
    {"network.create", f_create},
    {"network.remove", f_remove},
    {"network.inspect", f_by_name},
    {"network.list", f_by_project},
    {"network.prune", f_by_project},
    {"endpoint.attach", f_attach},
    {"endpoint.detach", f_detach},
    {"links.set", f_links},
    {"port.publish", f_port},
    {"port.check", f_port},
    {"port.unpublish", f_port},
    {"refusals.watch", f_watch},
    {"cgroup.delegate", f_cgroup},
    {"netns.take", f_none},
};

int netd_msg_send(int fd, const void *msg, size_t len, int pass_fd,
		  int flags)
{
	return fd_sendmsg(fd, msg, len, &pass_fd, pass_fd >= 0, flags);
}

int netd_msg_fd(struct msghdr *mh)
{
	int passed = -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm;
	     cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			int f;
			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(int));
			if (passed < 0)
				passed = f;
			else
				close(f);
		}
	}
	return passed;
}

bool netd_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > NETD_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return false;
	}
	return true;
}

static int check_string(const json_t *v, bool name, long max, const char *what,
			struct orch_err *e)
{
	if (!json_is_string(v))
		return err_set(e, EINVAL, "%s: expected a string", what);
	/* jansson refuses NUL bytes inside strings (no JSON_ALLOW_NUL). */
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (name && !netd_name_valid(s))
		return err_set(e, EINVAL,
			       "%s: invalid name (1-%d of A-Z a-z 0-9 _ . -)",
			       what, NETD_NAME_MAX);
	if (!name && (long)len > max)
		return err_set(e, EINVAL, "%s: longer than %ld bytes", what,
			       max);
	return 0;
}

static int check_field(const struct field *f, const json_t *v,
		       struct orch_err *e)
{
	switch (f->type) {
	case F_NAME:
	case F_TEXT:
		return check_string(v, f->type == F_NAME, f->max, f->name, e);
	case F_BOOL:
		if (!json_is_boolean(v))
			return err_set(e, EINVAL, "%s: expected true or false",
				       f->name);
		return 0;
	case F_INT:
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > f->max)
			return err_set(e, EINVAL,
				       "%s: expected an integer in 0..%ld",
				       f->name, f->max);
		return 0;
	case F_NAMES:
	case F_TEXTS:
	case F_PAIRS:
	case F_LINKS:
		break;
	}
	if (!json_is_array(v))
		return err_set(e, EINVAL, "%s: expected an array", f->name);
	if (json_array_size(v) > NETD_LIST_MAX)
		return err_set(e, E2BIG, "%s: more than %d items", f->name,
			       NETD_LIST_MAX);
	size_t i;
	json_t *item;
	json_array_foreach(v, i, item)
	{
		int r;
		if (f->type == F_LINKS) {
			const char *s = json_string_value(item);
			const char *eq = s ? strchr(s, '=') : NULL;
			_cleanup_free_ char *alias =
			    eq ? xstrndup(s, (size_t)(eq - s)) : NULL;
			if (!eq || !netd_name_valid(alias) ||
			    !netd_name_valid(eq + 1))
				return err_set(e, EINVAL,
					       "%s: expected \"ALIAS=SERVICE\" "
					       "names",
					       f->name);
			continue;
		}
		if (f->type != F_PAIRS) {
			r = check_string(item, f->type == F_NAMES, f->max,
					 f->name, e);
			if (r < 0)
				return r;
			continue;
		}
		if (!json_is_object(item) || json_object_size(item) != 2)
			return err_set(
			    e, EINVAL,
			    "%s: expected {\"from\", \"to\"} objects", f->name);
		r = check_string(json_object_get(item, "from"), true, 0,
				 "pairs.from", e);
		if (r < 0)
			return r;
		r = check_string(json_object_get(item, "to"), true, 0,
				 "pairs.to", e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_args(const struct op_schema *s, json_t *args,
		      struct orch_err *e)
{
	const char *key;
	json_t *v;
	json_object_foreach(args, key, v)
	{
		const struct field *f = s->fields;
		while (f->name && !streq(f->name, key))
			f++;
		if (!f->name)
			return err_set(e, EINVAL,
				       "%s: unknown argument \"%.64s\"", s->op,
				       key);
		int r = check_field(f, v, e);
		if (r < 0)
			return err_wrap(e, "%s", s->op);
	}
	const struct field *missing = NULL;
	bool one_of = false;
	for (const struct field *f = s->fields; f->name; f++) {
		bool has = json_object_get(args, f->name) != NULL;
		if (f->required == true && !has)
			return err_set(e, EINVAL, "%s: missing argument \"%s\"",
				       s->op, f->name);
		if (f->required == ONE_OF) {
			one_of |= has;
			if (!missing)
				missing = f;
		}
	}
	if (missing && !one_of)
		return err_set(e, EINVAL, "%s: missing argument \"%s\"", s->op,
			       missing->name);
	return 0;
}

int netd_request_decode(const void *buf, size_t len, struct netd_request *req,
			struct orch_err *e)
{
	memset(req, 0, sizeof(*req));
	if (len > NETD_MSG_MAX)
		return err_set(e, EMSGSIZE, "message of %zu bytes exceeds %d",
			       len, NETD_MSG_MAX);
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return err_set(e, EBADMSG, "malformed message: %s", jerr.text);
	int r = 0;
	json_t *v = json_object_get(root, "v");
	json_t *op = json_object_get(root, "op");
	json_t *args = json_object_get(root, "args");
	if (!json_is_object(root) || !json_is_integer(v) ||
	    !json_is_string(op)) {
		r = err_set(
		    e, EBADMSG,
		    "malformed message: expected {\"v\", \"op\", \"args\"}");
		goto out;
	}
	if (json_integer_value(v) != NETD_PROTO_VERSION) {
		r = err_set(
		    e, EPROTONOSUPPORT,
		    "protocol version %lld not supported (netd speaks %d)",
		    (long long)json_integer_value(v), NETD_PROTO_VERSION);
		goto out;
	}
	if (json_object_size(root) != (args ? 3u : 2u) ||
	    (args && !json_is_object(args))) {
		r = err_set(
		    e, EBADMSG,
		    "malformed message: expected {\"v\", \"op\", \"args\"}");
		goto out;
	}
	const struct op_schema *s = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(schemas); i++)
		if (streq(schemas[i].op, json_string_value(op)))
			s = &schemas[i];
	if (!s) {
		r = err_set(e, EOPNOTSUPP, "unknown operation \"%.32s\"",
			    json_string_value(op));
		goto out;
	}
	json_t *a = args ? json_incref(args) : json_object();
	r = check_args(s, a, e);
	if (r < 0) {
		json_decref(a);
		goto out;
	}
	snprintf(req->op, sizeof(req->op), "%s", s->op);
	req->args = a;
out:
	json_decref(root);
	return r;
}

void netd_request_clear(struct netd_request *req)
{
	json_decref(req->args);
	req->args = NULL;
}

static char *dump_msg(json_t *msg, size_t *len)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!s)
		abort();
	*len = strlen(s);
	return s;
}

char *netd_reply_ok(void *result, size_t *len)
{
	json_t *res = result ? result : json_object();
	return dump_msg(json_pack("{s:i, s:b, s:o}", "v", NETD_PROTO_VERSION,
				  "ok", 1, "result", res),
			len);
}

char *netd_reply_err(const struct orch_err *e, size_t *len)
{
	/* Messages quote the sender's bytes, possibly cut inside a UTF-8
	 * sequence: keep them printable ASCII so the reply is valid JSON. */
	char msg[sizeof(e->msg)];
	size_t i;
	for (i = 0; e->msg[i] && i < sizeof(msg) - 1; i++) {
		unsigned char ch = (unsigned char)e->msg[i];
		msg[i] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
	}
	msg[i] = '\0';
	return dump_msg(json_pack("{s:i, s:b, s:i, s:s}", "v",
				  NETD_PROTO_VERSION, "ok", 0, "errno",
				  e->code ? e->code : EIO, "error", msg),
			len);
}

/* ---- objects --------------------------------------------------------- */

static json_t *strv_to_json(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *str_or_empty(const char *s)
{
	return json_string(s ? s : "");
}

void *netd_endpoint_to_json(const struct netd_endpoint *ep)
{
	json_t *o = json_pack(
	    "{s:o, s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:o, s:b, s:o}",
	    "container_id", str_or_empty(ep->container_id), "container_name",
	    str_or_empty(ep->container_name), "service",
	    str_or_empty(ep->service), "aliases", strv_to_json(ep->aliases),
	    "address", str_or_empty(ep->address), "prefix", ep->prefix,
	    "gateway", str_or_empty(ep->gateway), "ifname",
	    str_or_empty(ep->ifname), "host_ifname",
	    str_or_empty(ep->host_ifname), "default_route", ep->default_route,
	    "dns", strv_to_json(ep->dns));
	if (ep->links && ep->links[0])
		json_object_set_new(o, "links", strv_to_json(ep->links));
	if (ep->mac && *ep->mac)
		json_object_set_new(o, "mac_address", json_string(ep->mac));
	if (ep->named_only)
		json_object_set_new(o, "named_only", json_true());
	if (ep->address6 && *ep->address6)
		json_object_update_new(
		    o, json_pack("{s:s, s:i, s:o}", "address6", ep->address6,
				 "prefix6", ep->prefix6, "gateway6",
				 str_or_empty(ep->gateway6)));
	return o;
}

void *netd_network_to_json(const struct netd_network *n)
{
	json_t *o = netd_network_head_to_json(n);
	json_t *eps = json_array();
	for (size_t i = 0; i < n->n_endpoints; i++)
		json_array_append_new(eps,
				      netd_endpoint_to_json(&n->endpoints[i]));
	json_object_set_new(o, "endpoints", eps);
	return o;
}

void *netd_network_head_to_json(const struct netd_network *n)
{
	json_t *ports = json_array(), *pairs = json_array();
	for (size_t i = 0; i < n->n_ports; i++) {
		const struct netd_port *p = &n->ports[i];
		json_t *o = json_pack(
		    "{s:o, s:o, s:o, s:i, s:i}", "container_id",
		    str_or_empty(p->container_id), "proto",
		    str_or_empty(p->proto), "host_ip", str_or_empty(p->host_ip),
		    "host_port", (int)p->host_port, "container_port",
		    (int)p->container_port);
		if (p->count > 1)
			json_object_set_new(o, "count",
					    json_integer((json_int_t)p->count));
		json_array_append_new(ports, o);
	}
	for (size_t i = 0; i < n->n_pairs; i++)
		json_array_append_new(
		    pairs, json_pack("{s:o, s:o}", "from",
				     str_or_empty(n->pairs[i].from), "to",
				     str_or_empty(n->pairs[i].to)));
	json_t *o = json_pack(
	    "{s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:b, s:I, s:o, s:o, s:o}",
	    "id", str_or_empty(n->id), "name", str_or_empty(n->name), "project",
	    str_or_empty(n->project), "bridge", str_or_empty(n->bridge),
	    "subnet", str_or_empty(n->subnet), "gateway",
	    str_or_empty(n->gateway), "internal", n->internal, "icc", n->icc,
	    "owner", (json_int_t)n->owner, "labels", strv_to_json(n->labels),
	    "ports", ports, "pairs", pairs);
	if (n->subnet6 && *n->subnet6)
		json_object_update_new(
		    o, json_pack("{s:s, s:o}", "subnet6", n->subnet6,
				 "gateway6", str_or_empty(n->gateway6)));
	return o;
}

/* Reads an optional string member; absent means "". */
static int get_str(const json_t *o, const char *key, char **out,
		   struct orch_err *e)
{
	const json_t *v = json_object_get(o, key);
	if (v && !json_is_string(v))
		return err_set(e, EBADMSG, "%s: expected a string", key);
	*out = xstrdup(v ? json_string_value(v) : "");
	return 0;
}

static int get_strv(const json_t *o, const char *key, char ***out,
		    struct orch_err *e)
{
	const json_t *v = json_object_get(o, key);
	*out = xcalloc(1, sizeof(char *));
	if (!v)
		return 0;
	if (!json_is_array(v))
		return err_set(e, EBADMSG, "%s: expected an array", key);
	size_t i;
	json_t *item;
	json_array_foreach(v, i, item)
	{
		if (!json_is_string(item))
			return err_set(e, EBADMSG, "%s: expected strings", key);
		strv_push(out, json_string_value(item));
	}
	return 0;
}

static long get_int(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

static bool get_bool(const json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

int netd_endpoint_from_json(const void *json, struct netd_endpoint *ep,
			    struct orch_err *e)
{
	const json_t *o = json;
	memset(ep, 0, sizeof(*ep));
	if (!json_is_object(o))
		return err_set(e, EBADMSG, "endpoint: expected an object");
	int r;
	if ((r = get_str(o, "container_id", &ep->container_id, e)) < 0 ||
	    (r = get_str(o, "container_name", &ep->container_name, e)) < 0 ||
	    (r = get_str(o, "service", &ep->service, e)) < 0 ||
	    (r = get_strv(o, "aliases", &ep->aliases, e)) < 0 ||
	    (r = get_strv(o, "links", &ep->links, e)) < 0 ||
	    (r = get_strv(o, "dns", &ep->dns, e)) < 0 ||
	    (r = get_str(o, "address", &ep->address, e)) < 0 ||
	    (r = get_str(o, "gateway", &ep->gateway, e)) < 0 ||
	    (r = get_str(o, "ifname", &ep->ifname, e)) < 0 ||
	    (r = get_str(o, "host_ifname", &ep->host_ifname, e)) < 0 ||
	    (r = get_str(o, "address6", &ep->address6, e)) < 0 ||
	    (r = get_str(o, "gateway6", &ep->gateway6, e)) < 0 ||
	    (r = get_str(o, "mac_address", &ep->mac, e)) < 0) {
		netd_endpoint_clear(ep);
		return r;
	}
	ep->prefix = (int)get_int(o, "prefix");
	ep->prefix6 = (int)get_int(o, "prefix6");
	ep->default_route = get_bool(o, "default_route");
	ep->named_only = get_bool(o, "named_only");
	return 0;
}

int netd_network_from_json(const void *json, struct netd_network *n,
			   struct orch_err *e)
{
	const json_t *o = json;
	memset(n, 0, sizeof(*n));
	if (!json_is_object(o))
		return err_set(e, EBADMSG, "network: expected an object");
	int r;
	if ((r = get_str(o, "id", &n->id, e)) < 0 ||
	    (r = get_str(o, "name", &n->name, e)) < 0 ||
	    (r = get_str(o, "project", &n->project, e)) < 0 ||
	    (r = get_str(o, "bridge", &n->bridge, e)) < 0 ||
	    (r = get_str(o, "subnet", &n->subnet, e)) < 0 ||
	    (r = get_str(o, "gateway", &n->gateway, e)) < 0 ||
	    (r = get_str(o, "subnet6", &n->subnet6, e)) < 0 ||
	    (r = get_str(o, "gateway6", &n->gateway6, e)) < 0 ||
	    (r = get_strv(o, "labels", &n->labels, e)) < 0)
		goto fail;
	n->internal = get_bool(o, "internal");
	n->icc = get_bool(o, "icc");
	n->owner = (uid_t)get_int(o, "owner");
	const json_t *eps = json_object_get(o, "endpoints");
	const json_t *ports = json_object_get(o, "ports");
	const json_t *pairs = json_object_get(o, "pairs");
	size_t i;
	json_t *item;
	if (json_is_array(eps)) {
		n->endpoints =
		    xcalloc(json_array_size(eps) + 1, sizeof(*n->endpoints));
		json_array_foreach(eps, i, item)
		{
			r = netd_endpoint_from_json(item, &n->endpoints[i], e);
			if (r < 0)
				goto fail;
			n->n_endpoints++;
		}
	}
	if (json_is_array(ports)) {
		n->ports =
		    xcalloc(json_array_size(ports) + 1, sizeof(*n->ports));
		json_array_foreach(ports, i, item)
		{
			struct netd_port *p = &n->ports[n->n_ports++];
			if ((r = get_str(item, "container_id", &p->container_id,
					 e)) < 0 ||
			    (r = get_str(item, "proto", &p->proto, e)) < 0 ||
			    (r = get_str(item, "host_ip", &p->host_ip, e)) < 0)
				goto fail;
			p->host_port = (unsigned)get_int(item, "host_port");
			p->container_port =
			    (unsigned)get_int(item, "container_port");
			/* A range stays inside the port space. */
			long cnt = get_int(item, "count");
			p->count = cnt > 1 && p->host_port + cnt - 1 <= 65535 &&
					   p->container_port + cnt - 1 <= 65535
				       ? (unsigned)cnt
				       : 1;
		}
	}
	if (json_is_array(pairs)) {
		n->pairs =
		    xcalloc(json_array_size(pairs) + 1, sizeof(*n->pairs));
		json_array_foreach(pairs, i, item)
		{
			struct netd_pair *p = &n->pairs[n->n_pairs++];
			if ((r = get_str(item, "from", &p->from, e)) < 0 ||
			    (r = get_str(item, "to", &p->to, e)) < 0)
				goto fail;
		}
	}
	return 0;
fail:
	netd_network_clear(n);
	return r;
}

void netd_endpoint_clear(struct netd_endpoint *ep)
{
	free(ep->container_id);
	free(ep->container_name);
	free(ep->service);
	strv_free(ep->aliases);
	strv_free(ep->links);
	strv_free(ep->dns);
	free(ep->address);
	free(ep->gateway);
	free(ep->address6);
	free(ep->gateway6);
	free(ep->mac);
	free(ep->ifname);
	free(ep->host_ifname);
	free(ep->saved);
	memset(ep, 0, sizeof(*ep));
}

void netd_port_clear(struct netd_port *p)
{
	free(p->container_id);
	free(p->proto);
	free(p->host_ip);
	memset(p, 0, sizeof(*p));
}

void netd_network_clear(struct netd_network *n)
{
	free(n->id);
	free(n->name);
	free(n->project);
	free(n->bridge);
	free(n->subnet);
	free(n->gateway);
	free(n->subnet6);
	free(n->gateway6);
	free(n->head_saved);
	strv_free(n->labels);
	for (size_t i = 0; i < n->n_endpoints; i++)
		netd_endpoint_clear(&n->endpoints[i]);
	free(n->endpoints);
	for (size_t i = 0; i < n->n_ports; i++)
		netd_port_clear(&n->ports[i]);
	free(n->ports);
	for (size_t i = 0; i < n->n_pairs; i++) {
		free(n->pairs[i].from);
		free(n->pairs[i].to);
	}
	free(n->pairs);
	memset(n, 0, sizeof(*n));
}

void netd_networks_free(struct netd_network *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		netd_network_clear(&v[i]);
	free(v);
}

void *netd_refusal_to_json(const struct netd_refusal *r)
{
	return json_pack(
	    "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i}", "network",
	    str_or_empty(r->network), "from_container",
	    str_or_empty(r->from_container), "from_service",
	    str_or_empty(r->from_service), "to_container",
	    str_or_empty(r->to_container), "to_service",
	    str_or_empty(r->to_service), "to_address", str_or_empty(r->to_address),
	    "proto", str_or_empty(r->proto), "port", (int)r->port);
}

int netd_refusal_from_json(const void *json, struct netd_refusal *out,
			   struct orch_err *e)
{
	const json_t *o = json;
	memset(out, 0, sizeof(*out));
	if (!json_is_object(o) || !json_is_integer(json_object_get(o, "port")))
		return err_set(e, EBADMSG, "refusal: expected an object with a "
					   "port");
	int r;
	if ((r = get_str(o, "network", &out->network, e)) < 0 ||
	    (r = get_str(o, "from_container", &out->from_container, e)) < 0 ||
	    (r = get_str(o, "from_service", &out->from_service, e)) < 0 ||
	    (r = get_str(o, "to_container", &out->to_container, e)) < 0 ||
	    (r = get_str(o, "to_service", &out->to_service, e)) < 0 ||
	    (r = get_str(o, "to_address", &out->to_address, e)) < 0 ||
	    (r = get_str(o, "proto", &out->proto, e)) < 0) {
		netd_refusal_clear(out);
		return r;
	}
	out->port = (unsigned)get_int(o, "port");
	return 0;
}
