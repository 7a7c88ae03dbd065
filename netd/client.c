/* netd client library (linked by orch): connects to the daemon, starting it
 * on demand, and turns each call into one request/reply exchange. */
#include "netd/netd.h"

#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

/* Replies may list every network with its endpoints; requests stay small. */
#define NETD_REPLY_MAX (8 * 1024 * 1024)

struct netd_conn {
	int fd;
};

char *netd_socket_path(void)
{
	const char *p = getenv("ORCH_NETD_SOCKET");
	return p && *p ? xstrdup(p) : path_join(orch_run(), "netd.sock");
}

static int try_connect(int *out)
{
	_cleanup_free_ char *path = netd_socket_path();
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd =
	    socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (RETRY_EINTR(connect(fd, (struct sockaddr *)&sa, sizeof(sa))) < 0)
		return -errno;
	*out = move_fd(fd);
	return 0;
}

/* netd lives next to orch in the build tree; installed, it is orch-netd. */
static char *netd_binary(void)
{
	const char *env = getenv("ORCH_NETD");
	if (env && *env)
		return xstrdup(env);
	_cleanup_free_ char *self = self_exe();
	if (self) {
		_cleanup_free_ char *p = path_join(dirname(self), "netd");
		if (access(p, X_OK) == 0)
			return move_ptr(p);
	}
	return xstrdup("orch-netd");
}

/* No per-thread cache of freed chunks in glibc's malloc: the chunks it
 * holds pin heap pages that the idle trim would give back (0.6 MiB after
 * a 200-container project). */
#define TCACHE_OFF "glibc.malloc.tcache_count=0"

char *netd_tunables(void)
{
	const char *tun = getenv("GLIBC_TUNABLES");
	if (tun && strstr(tun, TCACHE_OFF))
		return NULL;
	return tun && *tun ? xasprintf("GLIBC_TUNABLES=%s:%s", tun, TCACHE_OFF)
			   : xstrdup("GLIBC_TUNABLES=" TCACHE_OFF);
}

/* Starts netd and waits: it returns once it serves, detached from us. */
static int spawn_netd(struct orch_err *e)
{
	_cleanup_free_ char *bin = netd_binary();
	_cleanup_free_ char *dir = path_join(orch_run(), "netd");
	_cleanup_free_ char *log = path_join(dir, "netd.log");
	int r = mkdir_p(dir, 0700, e);
	if (r < 0)
		return err_wrap(e, "starting netd");
	/* Its malloc settings given: it would start again to take them. */
	_cleanup_free_ char *tun = netd_tunables();
	char *argv[] = {bin, NULL};
	int ready;
	r = daemon_spawn(bin, argv, log, 0600, "ORCH_NETD_READY", tun, &ready);
	if (r < 0)
		return err_sys(e, -r, "starting %s", bin);
	char c;
	ssize_t n = RETRY_EINTR(read(ready, &c, 1));
	close(ready);
	if (n != 1)
		return err_set(e, EIO, "starting %s failed; see %s", bin, log);
	return 0;
}

static int roundtrip(struct netd_conn *c, const char *op, json_t *args,
		     int pass_fd, json_t **result, struct orch_err *e);

int netd_connect(struct netd_conn **out, struct orch_err *e)
{
	int fd = -1;
	int r = try_connect(&fd);
	if (r == -ENOENT || r == -ECONNREFUSED) {
		if (host_uid() != 0) {
			_cleanup_free_ char *path = netd_socket_path();
			return err_sys(e, r,
				       "connecting to netd at %s: netd is not "
				       "running, and only root can start it: "
				       "ask the administrator to install and "
				       "start its service (examples/"
				       "orch-netd.service: systemctl enable "
				       "--now orch-netd)",
				       path);
		}
		int sr = spawn_netd(e);
		/* Losing a start race to another client is fine. */
		for (int i = 0; i < 100; i++) {
			r = try_connect(&fd);
			if (r == 0 || sr == 0)
				break;
			struct timespec ts = {0, 20 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
		if (r < 0 && sr < 0)
			return sr;
	}
	if (r < 0) {
		_cleanup_free_ char *path = netd_socket_path();
		return err_sys(e, r, "connecting to netd at %s", path);
	}
	struct netd_conn *c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	json_t *res = NULL;
	r = roundtrip(c, "ping", NULL, -1, &res, e);
	json_decref(res);
	if (r < 0) {
		netd_close(c);
		return err_wrap(e, "connecting to netd");
	}
	*out = c;
	return 0;
}

void netd_close(struct netd_conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

int netd_connect_raw(struct netd_conn **out, struct orch_err *e)
{
	int fd = -1;
	int r = try_connect(&fd);
	if (r < 0) {
		_cleanup_free_ char *path = netd_socket_path();
		return err_sys(e, r, "connecting to netd at %s", path);
	}
	struct netd_conn *c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	*out = c;
	return 0;
}

/* One reply; *passed (may be NULL) gets the fd it carried, else -1 (any
 * other is closed). */
static int recv_reply(int fd, char **out, size_t *len, int *passed)
{
	if (passed)
		*passed = -1;
	char probe;
	ssize_t n = RETRY_EINTR(recv(fd, &probe, 1, MSG_PEEK | MSG_TRUNC));
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	if (n > NETD_REPLY_MAX)
		return -EMSGSIZE;
	char *buf = xmalloc((size_t)n + 1);
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = buf, .iov_len = (size_t)n};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.b,
			    .msg_controllen = sizeof(u.b)};
	ssize_t got = RETRY_EINTR(recvmsg(fd, &mh, MSG_CMSG_CLOEXEC));
	if (got < 0) {
		int r = -errno;
		free(buf);
		return r;
	}
	int f = netd_msg_fd(&mh);
	if (passed)
		*passed = f;
	else if (f >= 0)
		close(f);
	buf[got] = '\0';
	*out = buf;
	*len = (size_t)got;
	return 0;
}

int netd_call_raw(struct netd_conn *c, const void *msg, size_t len, int pass_fd,
		  char **reply, struct orch_err *e)
{
	int r = netd_msg_send(c->fd, msg, len, pass_fd, 0);
	if (r < 0)
		return err_sys(e, r, "sending a message to netd");
	size_t rlen;
	r = recv_reply(c->fd, reply, &rlen, NULL);
	if (r < 0)
		return err_sys(e, r, "reading netd's reply");
	return 0;
}

/* Sends op(args) (args stolen), reads the reply; on success *result (may be
 * NULL) gets the result object.  A netd error becomes e verbatim. */
/* Sends one request (taking args); its reply is read by reply_read. */
static int request_send(struct netd_conn *c, const char *op, json_t *args,
			int pass_fd, struct orch_err *e)
{
	json_t *msg = json_pack("{s:i, s:s, s:o}", "v", NETD_PROTO_VERSION,
				"op", op, "args", args ? args : json_object());
	_cleanup_free_ char *text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!text)
		abort();
	size_t len = strlen(text);
	if (len > NETD_MSG_MAX)
		return err_set(e, EMSGSIZE,
			       "netd %s: request of %zu bytes too large", op,
			       len);
	int r = netd_msg_send(c->fd, text, len, pass_fd, 0);
	if (r < 0)
		return err_sys(e, r, "netd %s: sending request", op);
	return 0;
}

static int reply_read_fd(struct netd_conn *c, const char *op, json_t **result,
			 int *passed, struct orch_err *e)
{
	_cleanup_free_ char *reply = NULL;
	size_t rlen = 0;
	int r = recv_reply(c->fd, &reply, &rlen, passed);
	if (r < 0)
		return err_sys(e, r, "netd %s: reading reply", op);
	json_error_t jerr;
	json_t *root = json_loadb(reply, rlen, 0, &jerr);
	if (!json_is_object(root)) {
		json_decref(root);
		return err_set(e, EBADMSG, "netd %s: malformed reply", op);
	}
	if (!json_is_true(json_object_get(root, "ok"))) {
		json_t *ecode = json_object_get(root, "errno");
		const char *msgtext =
		    json_string_value(json_object_get(root, "error"));
		int code = json_is_integer(ecode)
			       ? (int)json_integer_value(ecode)
			       : EIO;
		r = err_set(e, code > 0 ? code : EIO, "%s",
			    msgtext ? msgtext : "netd failed");
		json_decref(root);
		return r;
	}
	if (result) {
		*result = json_incref(json_object_get(root, "result"));
		if (!*result)
			*result = json_object();
	}
	json_decref(root);
	return 0;
}

static int reply_read(struct netd_conn *c, const char *op, json_t **result,
		      struct orch_err *e)
{
	return reply_read_fd(c, op, result, NULL, e);
}

static int roundtrip(struct netd_conn *c, const char *op, json_t *args,
		     int pass_fd, json_t **result, struct orch_err *e)
{
	int r = request_send(c, op, args, pass_fd, e);
	return r < 0 ? r : reply_read(c, op, result, e);
}

static void set_opt_str(json_t *o, const char *key, const char *v)
{
	if (v && *v)
		json_object_set_new(o, key, json_string(v));
}

static void set_opt_strv(json_t *o, const char *key, char *const *v)
{
	if (!v)
		return;
	json_t *a = json_array();
	for (size_t i = 0; v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	json_object_set_new(o, key, a);
}

/* What netd hands back is the network asked for, ours: an answer that is
 * not (an older or a misbehaving daemon) must never put our containers on
 * someone else's bridge. */
static int network_is_ours(const struct netd_network *n,
			   const struct netd_network_req *req,
			   struct orch_err *e)
{
	const char *project = req->project ? req->project : "";
	if (n->owner != host_uid())
		return err_set(e, EPERM,
			       "network %s belongs to uid %u (project %s), "
			       "not to uid %u: refusing to use it",
			       req->name, (unsigned)n->owner,
			       n->project ? n->project : "?",
			       (unsigned)host_uid());
	if (!n->name || !streq(n->name, req->name) || !n->project ||
	    !streq(n->project, project))
		return err_set(e, EEXIST,
			       "network %s belongs to project %s, not %s: "
			       "refusing to use it",
			       req->name, n->project ? n->project : "?",
			       project);
	for (size_t i = 0; req->labels && req->labels[i]; i++)
		if (!strv_contains(n->labels, req->labels[i]))
			return err_set(e, EEXIST,
				       "network %s lacks the label %s: "
				       "refusing to use it",
				       req->name, req->labels[i]);
	return 0;
}

int netd_network_create_start(struct netd_conn *c,
			      const struct netd_network_req *req,
			      struct orch_err *e)
{
	json_t *a = json_pack("{s:s, s:s, s:b, s:b}", "name", req->name,
			      "project", req->project ? req->project : "",
			      "internal", req->internal, "icc", req->icc);
	if (!a)
		return err_set(e, EINVAL, "creating network: name missing");
	set_opt_str(a, "subnet", req->subnet);
	set_opt_str(a, "gateway", req->gateway);
	if (req->ipv6)
		json_object_set_new(a, "ipv6", json_true());
	if (req->no_ipv4)
		json_object_set_new(a, "no_ipv4", json_true());
	set_opt_str(a, "subnet6", req->subnet6);
	set_opt_str(a, "gateway6", req->gateway6);
	set_opt_strv(a, "labels", req->labels);
	if (req->check)
		json_object_set_new(a, "check", json_true());
	return request_send(c, "network.create", a, -1, e);
}

int netd_network_create_finish(struct netd_conn *c,
			       const struct netd_network_req *req,
			       struct netd_network *out, struct orch_err *e)
{
	json_t *res = NULL;
	int r = reply_read(c, "network.create", &res, e);
	if (r == 0 && out && !req->check) {
		r = netd_network_from_json(res, out, e);
		if (r == 0 && (r = network_is_ours(out, req, e)) < 0)
			netd_network_clear(out);
	}
	json_decref(res);
	return r;
}

int netd_network_create(struct netd_conn *c, const struct netd_network_req *req,
			struct netd_network *out, struct orch_err *e)
{
	int r = netd_network_create_start(c, req, e);
	return r < 0 ? r : netd_network_create_finish(c, req, out, e);
}

static int removed_flag(json_t *res, bool *removed)
{
	if (removed)
		*removed = json_is_true(json_object_get(res, "removed"));
	json_decref(res);
	return 0;
}

int netd_network_remove(struct netd_conn *c, const char *name, bool *removed,
			struct orch_err *e)
{
	json_t *res = NULL;
	int r = roundtrip(c, "network.remove", json_pack("{s:s}", "name", name),
			  -1, &res, e);
	return r < 0 ? r : removed_flag(res, removed);
}

static json_t *names_json(char *const *names)
{
	json_t *a = json_array();
	for (size_t i = 0; names && names[i]; i++)
		json_array_append_new(a, json_string(names[i]));
	return a;
}

/* The strings of a reply's array (never NULL). */
static char **names_strv(const json_t *a)
{
	char **v = xcalloc(1, sizeof(char *));
	size_t i;
	json_t *item;
	json_array_foreach(a, i, item)
	{
		if (json_is_string(item))
			strv_push(&v, json_string_value(item));
	}
	return v;
}

int netd_networks_remove_start(struct netd_conn *c, char *const *names,
			       struct orch_err *e)
{
	return request_send(c, "network.remove",
			    json_pack("{s:o}", "names", names_json(names)), -1,
			    e);
}

int netd_networks_remove_finish(struct netd_conn *c, char ***removed,
				struct orch_err *e)
{
	json_t *res = NULL;
	int r = reply_read(c, "network.remove", &res, e);
	if (r == 0 && removed)
		*removed = names_strv(json_object_get(res, "removed"));
	json_decref(res);
	return r;
}

int netd_network_inspect(struct netd_conn *c, const char *name,
			 struct netd_network *out, struct orch_err *e)
{
	json_t *res = NULL;
	int r = roundtrip(c, "network.inspect",
			  json_pack("{s:s}", "name", name), -1, &res, e);
	if (r == 0)
		r = netd_network_from_json(res, out, e);
	json_decref(res);
	return r;
}

int netd_network_list(struct netd_conn *c, const char *project,
		      struct netd_network **out, size_t *n, struct orch_err *e)
{
	json_t *a = json_object();
	set_opt_str(a, "project", project);
	json_t *res = NULL;
	int r = roundtrip(c, "network.list", a, -1, &res, e);
	if (r < 0)
		return r;
	json_t *nets = json_object_get(res, "networks");
	size_t cnt = json_array_size(nets);
	struct netd_network *v = xcalloc(cnt + 1, sizeof(*v));
	for (size_t i = 0; i < cnt; i++) {
		r = netd_network_from_json(json_array_get(nets, i), &v[i], e);
		if (r < 0) {
			netd_networks_free(v, i);
			json_decref(res);
			return r;
		}
	}
	json_decref(res);
	*out = v;
	*n = cnt;
	return 0;
}

int netd_network_prune(struct netd_conn *c, const char *project,
		       char ***removed, struct orch_err *e)
{
	json_t *a = json_object();
	set_opt_str(a, "project", project);
	json_t *res = NULL;
	int r = roundtrip(c, "network.prune", a, -1, &res, e);
	if (r < 0)
		return r;
	if (removed)
		*removed = names_strv(json_object_get(res, "removed"));
	json_decref(res);
	return 0;
}

int netd_endpoint_attach(struct netd_conn *c, const struct netd_attach_req *req,
			 struct netd_endpoint *out, struct orch_err *e)
{
	_cleanup_close_ int nsfd = -1;
	_cleanup_free_ char *path = NULL;
	if (req->netns_path && *req->netns_path)
		path = xstrdup(req->netns_path);
	else if (req->pid > 0)
		path = xasprintf("/proc/%d/ns/net", (int)req->pid);
	else
		return err_set(e, EINVAL,
			       "attaching %s to %s: no network namespace given",
			       req->container_id, req->network);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return err_sys(e, errno, "attaching %s to %s: opening %s",
			       req->container_id, req->network, path);
	json_t *a = json_pack("{s:s, s:s}", "network", req->network,
			      "container_id", req->container_id);
	if (!a)
		return err_set(e, EINVAL,
			       "attaching: network or container missing");
	set_opt_str(a, "container_name", req->container_name);
	set_opt_str(a, "service", req->service);
	set_opt_strv(a, "aliases", req->aliases);
	set_opt_strv(a, "links", req->links);
	set_opt_strv(a, "dns", req->dns);
	set_opt_str(a, "netns_path", path);
	set_opt_str(a, "address", req->address);
	set_opt_str(a, "address6", req->address6);
	set_opt_str(a, "mac_address", req->mac_address);
	if (req->named_only)
		json_object_set_new(a, "named_only", json_true());
	json_t *res = NULL;
	int r = roundtrip(c, "endpoint.attach", a, nsfd, &res, e);
	if (r == 0 && out)
		r = netd_endpoint_from_json(res, out, e);
	json_decref(res);
	return r;
}

int netd_endpoint_detach(struct netd_conn *c, const char *network,
			 const char *container_id, bool *removed,
			 struct orch_err *e)
{
	json_t *res = NULL;
	int r = roundtrip(c, "endpoint.detach",
			  json_pack("{s:s, s:s}", "network", network,
				    "container_id", container_id),
			  -1, &res, e);
	return r < 0 ? r : removed_flag(res, removed);
}

int netd_links_set(struct netd_conn *c, const char *network,
		   const struct netd_pair *pairs, size_t n, struct orch_err *e)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s}", "from",
						     pairs[i].from, "to",
						     pairs[i].to));
	return roundtrip(
	    c, "links.set",
	    json_pack("{s:s, s:o}", "network", network, "pairs", arr), -1, NULL,
	    e);
}

int netd_cgroup_delegate(struct netd_conn *c, char **parent,
			 struct orch_err *e)
{
	json_t *res = NULL;
	int r = roundtrip(c, "cgroup.delegate", NULL, -1, &res, e);
	const char *p = json_string_value(json_object_get(res, "parent"));
	if (r == 0 && !p)
		r = err_set(e, EPROTO, "netd gave no cgroup parent");
	if (r == 0)
		*parent = xstrdup(p);
	json_decref(res);
	return r;
}

int netd_netns_take(struct netd_conn *c, int *fd, struct orch_err *e)
{
	*fd = -1;
	int r = request_send(c, "netns.take", NULL, -1, e);
	json_t *res = NULL;
	int got = -1;
	if (r == 0)
		r = reply_read_fd(c, "netns.take", &res, &got, e);
	bool given = json_is_true(json_object_get(res, "netns"));
	json_decref(res);
	_cleanup_close_ int ns = got;
	if (r < 0 || (!given && ns < 0))
		return r;
	/* Only a network namespace of its own may become a container's:
	 * never the one we are in. */
	if (!given || ns < 0 || netns_other(ns) < 0)
		return err_set(e, EPROTO,
			       "netd netns.take: the reply does not carry a "
			       "new network namespace");
	*fd = move_fd(ns);
	return 0;
}

int netd_cgroup_release(struct netd_conn *c, struct orch_err *e)
{
	return roundtrip(c, "cgroup.delegate",
			 json_pack("{s:b}", "release", true), -1, NULL, e);
}

static json_t *port_args(const struct netd_port_req *req)
{
	json_t *a = json_pack("{s:s}", "network", req->network);
	if (!a)
		return NULL;
	set_opt_str(a, "container_id", req->container_id);
	set_opt_str(a, "proto", req->proto);
	set_opt_str(a, "host_ip", req->host_ip);
	json_object_set_new(a, "host_port", json_integer(req->host_port));
	json_object_set_new(a, "container_port",
			    json_integer(req->container_port));
	json_object_set_new(a, "count", json_integer(req->count));
	return a;
}

int netd_port_publish(struct netd_conn *c, const struct netd_port_req *req,
		      struct orch_err *e)
{
	return roundtrip(c, "port.publish", port_args(req), -1, NULL, e);
}

int netd_port_check(struct netd_conn *c, const struct netd_port_req *req,
		    struct orch_err *e)
{
	return roundtrip(c, "port.check", port_args(req), -1, NULL, e);
}

int netd_port_unpublish(struct netd_conn *c, const struct netd_port_req *req,
			unsigned *removed, struct orch_err *e)
{
	json_t *res = NULL;
	int r = roundtrip(c, "port.unpublish", port_args(req), -1, &res, e);
	if (r < 0)
		return r;
	if (removed)
		*removed = (unsigned)json_integer_value(
		    json_object_get(res, "removed"));
	json_decref(res);
	return 0;
}

/* ---- refusals ------------------------------------------------------------ */

int netd_refusals_watch(const char *project, struct netd_conn **out,
			struct orch_err *e)
{
	struct netd_conn *c = NULL;
	int r = netd_connect_raw(&c, e);
	if (r < 0)
		return r;
	/* The watcher (a supervisor) has its own work: a netd that does not
	 * answer within two seconds is tried again later. */
	struct timeval tv = {.tv_sec = 2};
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	json_t *res = NULL;
	r = roundtrip(c, "refusals.watch", json_pack("{s:s}", "project", project),
		      -1, &res, e);
	json_decref(res);
	if (r < 0) {
		netd_close(c);
		return r;
	}
	*out = c;
	return 0;
}

int netd_conn_fd(const struct netd_conn *c)
{
	return c->fd;
}

void netd_refusal_clear(struct netd_refusal *r)
{
	free(r->network);
	free(r->from_container);
	free(r->from_service);
	free(r->to_container);
	free(r->to_service);
	free(r->to_address);
	free(r->proto);
	memset(r, 0, sizeof(*r));
}

int netd_refusal_next(struct netd_conn *c, struct netd_refusal *out,
		      struct orch_err *e)
{
	_cleanup_free_ char *msg = NULL;
	size_t len = 0;
	int r = recv_reply(c->fd, &msg, &len, NULL);
	if (r < 0)
		return err_sys(e, r, "reading netd's refusals");
	json_t *root = json_loadb(msg, len, 0, NULL);
	r = netd_refusal_from_json(json_object_get(root, "refused"), out, e);
	json_decref(root);
	return r < 0 ? err_wrap(e, "netd sent a malformed refusal") : 0;
}
