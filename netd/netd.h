/* netd — the host's network daemon: its wire protocol and client library.
 * This is the part's one public header.
 *
 * Protocol (version NETD_PROTO_VERSION).  A client connects to the
 * SOCK_SEQPACKET unix socket $ORCH_RUN/netd.sock; every datagram is one
 * message, a UTF-8 JSON object of at most NETD_MSG_MAX bytes.  The client
 * sends a request and reads exactly one reply, then may send the next.
 *
 *   request  {"v": 1, "op": "<op>", "args": {...}}
 *   reply    {"v": 1, "ok": true, "result": {...}}
 *            {"v": 1, "ok": false, "errno": 17, "error": "<one line>"}
 *
 * Attach requests may carry the container's network namespace as an fd
 * (SCM_RIGHTS) instead of a path or pid.  An oversized, truncated or
 * malformed message, an unknown op or version gets an error reply; the
 * connection stays usable.  The ops and their args are the structs below
 * (field names as in the structs; absent optional fields mean "unset"):
 *
 *   ping             {}                       -> {"version": 1}
 *   network.create   netd_network_req         -> netd_network
 *                    (with "check": true only -> {"ok": true}: it could be)
 *   network.remove   {"name"}                 -> {"removed": bool}
 *                    {"names": ["name"...]}   -> {"removed": ["name"...]}
 *   network.inspect  {"name"}                 -> netd_network
 *   network.list     {"project"?}             -> {"networks": [netd_network]}
 *   network.prune    {"project"?}             -> {"removed": ["name"...]}
 *   endpoint.attach  netd_attach_req          -> netd_endpoint
 *   endpoint.detach  {"network","container_id"} -> {"removed": bool}
 *   links.set        {"network","pairs":[{"from","to"}]} -> {}
 *   port.publish     netd_port_req            -> {}
 *   port.check       netd_port_req            -> {}   (conflicts only)
 *   port.unpublish   netd_port_req            -> {"removed": n}
 *   netns.take       {}                       -> {"netns": bool}, and when
 *                    true the fd (SCM_RIGHTS) of a new network namespace
 *                    with lo up, made ahead while idle; root only
 *   refusals.watch   {"project"}              -> {}, then, unasked, one
 *                    {"v": 1, "refused": netd_refusal} per connection
 *                    that link-only refused on the project's networks
 *                    (of the caller's; root: any), until it closes
 *
 * Authorization: the daemon reads the peer's uid with SO_PEERCRED.  Each
 * network records the uid that created it; only that uid or root may
 * change, remove, inspect or attach to it, and network.create returns an
 * existing network only to that uid. */
#ifndef ORCH_NETD_H
#define ORCH_NETD_H

#include "common/common.h"

#define NETD_PROTO_VERSION 1
#define NETD_MSG_MAX	   65536
#define NETD_NAME_MAX	   128 /* network, project, container and service names */
#define NETD_LIST_MAX	   1024 /* aliases, labels, pairs, endpoints in one msg */

/* ---- objects --------------------------------------------------------- */

/* A container's membership of one network. */
struct netd_endpoint {
	char *container_id;
	char *container_name; /* resolvable by DNS ("myproj-web-1") */
	char *service;	      /* resolvable by DNS ("web"), may be "" */
	char **aliases;	      /* resolvable by DNS, NULL-terminated */
	char *address;	      /* "10.210.3.2" */
	int prefix;	      /* 24 */
	char *gateway;	      /* the network's gateway, also its DNS server */
	char *ifname;	      /* inside the container: "eth0", "eth1"... */
	char *host_ifname;    /* the veth end on the bridge */
	bool default_route;   /* this endpoint holds the container's default
				 route (its first network, not internal) */
	char **dns;	      /* servers for the names netd forwards, instead
				 of the host's (the service's dns:); may be
				 empty */
	/* On a network with IPv6 (else ""): "fd6f:7263:6800:3::2", 64, and
	 * the network's IPv6 gateway.  On an IPv6-only network address,
	 * gateway are "" and prefix 0. */
	char *address6;
	int prefix6;
	char *gateway6;
	/* netd's own: this endpoint's text in its state file, made at the
	 * first save (an endpoint never changes); NULL elsewhere. */
	char *saved;
	/* "ALIAS=SERVICE": names only this container resolves (compose's
	 * links: SERVICE:ALIAS); may be NULL. */
	char **links;
	/* The MAC address asked for (mac_address), or NULL: then it
	 * follows the address, as docker's 02:42:a.b.c.d. */
	char *mac;
	/* Resolvable by its container name only, not by its service or
	 * aliases (a one-off of `run`, unless --use-aliases). */
	bool named_only;
};

/* A published port, or a range of them: host_port+k -> container_port+k
 * for k < count.  A range is one object everywhere (state, wire, checks),
 * so that it costs about what one port costs. */
struct netd_port {
	char *container_id;
	char *proto;   /* "tcp" or "udp" */
	char *host_ip; /* "" = every host address */
	unsigned host_port, container_port;
	unsigned count; /* >= 1 */
};

/* "from" may open connections to "to" (service names); replies are
 * always allowed. */
struct netd_pair {
	char *from, *to;
};

struct netd_network {
	char *id; /* 64 hex digits */
	char *name;
	char *project;
	char *bridge;  /* kernel name of the bridge */
	char *subnet;  /* "10.210.3.0/24"; "" on an IPv6-only network */
	char *gateway; /* "10.210.3.1" */
	bool internal, icc;
	uid_t owner;
	char **labels; /* "key=value", NULL-terminated */
	struct netd_endpoint *endpoints;
	size_t n_endpoints;
	struct netd_port *ports;
	size_t n_ports;
	struct netd_pair *pairs;
	size_t n_pairs;
	char *subnet6;	/* "fd6f:7263:6800:3::/64"; "" without IPv6 */
	char *gateway6; /* "fd6f:7263:6800:3::1" */
	/* netd's state file: the text of all but the endpoints, with the
	 * hash of what it was made from. */
	char *head_saved;
	uint64_t head_hash;
};

void netd_endpoint_clear(struct netd_endpoint *ep);
void netd_port_clear(struct netd_port *p);
void netd_network_clear(struct netd_network *n);
void netd_networks_free(struct netd_network *v, size_t n);

/* ---- requests -------------------------------------------------------- */

struct netd_network_req {
	const char *name;    /* full name: "myproj_back" */
	const char *project; /* owning project: "myproj" */
	const char *subnet;  /* "10.1.2.0/24"; NULL = next free from the pool */
	const char *gateway; /* NULL = first host address of the subnet */
	/* IPv6 (enable_ipv6): subnet6 NULL = a /64 from the IPv6 pool */
	bool ipv6;
	const char *subnet6, *gateway6;
	bool no_ipv4; /* IPv6 only (enable_ipv4: false) */
	bool internal;	     /* no route out, no NAT */
	bool icc;	     /* all pairs may talk (enable_icc) */
	char **labels;	     /* "key=value", NULL-terminated, may be NULL */
	bool check;	     /* only check that it could be created */
};

struct netd_attach_req {
	const char *network;
	const char *container_id;
	const char *container_name;
	const char *service;
	char **aliases; /* may be NULL */
	char **links;	/* "ALIAS=SERVICE", may be NULL */
	/* The container's network namespace: a path (/proc/PID/ns/net,
	 * /run/netns/x) or a pid.  The client opens it and passes the fd, so
	 * a client can only attach namespaces it may open itself. */
	const char *netns_path;
	pid_t pid;
	const char *address; /* fixed address, NULL = next free */
	const char *address6; /* the same for IPv6 */
	const char *mac_address; /* the container end's, NULL = from the address */
	bool named_only; /* resolvable by container_name only */
	char **dns; /* servers (IPv4, IPv6) for forwarded names; NULL = the host's */
};

struct netd_port_req {
	const char *network;
	const char *container_id;
	const char *proto;   /* "tcp" (NULL) or "udp" */
	const char *host_ip; /* NULL or "" = every host address */
	unsigned host_port;  /* unpublish: 0 = every port of the container */
	unsigned container_port;
	unsigned count; /* a range host_port..+count-1 -> container_port..;
			   0 means 1 */
};

/* ---- client ---------------------------------------------------------- */

struct netd_conn;

/* $ORCH_NETD_SOCKET, else $ORCH_RUN/netd.sock (malloc'd). */
char *netd_socket_path(void);
/* Connects to netd_socket_path().  When nothing answers there and we are
 * root, starts netd (next to our own executable, else orch-netd from PATH)
 * and waits for it.  A version mismatch is an error. */
int netd_connect(struct netd_conn **out, struct orch_err *e);
void netd_close(struct netd_conn *c);
/* "GLIBC_TUNABLES=..." with netd's malloc settings added to ours (glibc
 * reads them as a program starts); NULL when they are there already. */
char *netd_tunables(void);

/* Creates a network.  Creating a network that exists with the same
 * owner, project, labels and settings returns it (idempotent); another
 * owner's is -EPERM (root's requests included), other settings -EEXIST,
 * both naming the owner.  What netd returns is checked to be ours.  With
 * req->check, only says whether it could (out is left alone). */
int netd_network_create(struct netd_conn *c, const struct netd_network_req *req,
			struct netd_network *out, struct orch_err *e);
/* The same in two steps, the caller working while netd makes it: _start
 * sends the request, _finish reads the answer (nothing else may be sent
 * on c in between). */
int netd_network_create_start(struct netd_conn *c,
			      const struct netd_network_req *req,
			      struct orch_err *e);
int netd_network_create_finish(struct netd_conn *c,
			       const struct netd_network_req *req,
			       struct netd_network *out, struct orch_err *e);
/* Removes a network with its endpoints, ports and rules.  *removed (may be
 * NULL) says whether it existed; "already gone" is success. */
int netd_network_remove(struct netd_conn *c, const char *name, bool *removed,
			struct orch_err *e);
/* Removes several networks in one step (their links go in one kernel
 * batch); names that do not exist are skipped.  _start only sends the
 * request, so that the caller can work while netd removes; _finish reads
 * the answer, *removed (may be NULL) getting the names that existed.
 * Nothing else may be sent on c in between. */
int netd_networks_remove_start(struct netd_conn *c, char *const *names,
			       struct orch_err *e);
int netd_networks_remove_finish(struct netd_conn *c, char ***removed,
				struct orch_err *e);
int netd_network_inspect(struct netd_conn *c, const char *name,
			 struct netd_network *out, struct orch_err *e);
/* Lists networks visible to the caller (root: all); project may be NULL. */
int netd_network_list(struct netd_conn *c, const char *project,
		      struct netd_network **out, size_t *n, struct orch_err *e);
/* Removes networks without endpoints (of project, or all of the caller's
 * when NULL), after dropping endpoints whose container is gone.  *removed
 * (may be NULL) gets their names. */
int netd_network_prune(struct netd_conn *c, const char *project,
		       char ***removed, struct orch_err *e);

/* Attaches a container to a network: veth pair, address, routes; out (may
 * be NULL) gets the endpoint.  Attaching the same container again returns
 * the existing endpoint. */
int netd_endpoint_attach(struct netd_conn *c, const struct netd_attach_req *req,
			 struct netd_endpoint *out, struct orch_err *e);
/* Detaches (and unpublishes its ports); "already gone" is success. */
int netd_endpoint_detach(struct netd_conn *c, const char *network,
			 const char *container_id, bool *removed,
			 struct orch_err *e);

/* Replaces the network's allowed pairs (link-only networks). */
int netd_links_set(struct netd_conn *c, const char *network,
		   const struct netd_pair *pairs, size_t n, struct orch_err *e);

/* Publishes host ports to an endpoint.  A port in use (another mapping or
 * a listening socket) is -EADDRINUSE naming the holder. */
/* The cgroup parent, relative to each hierarchy, that netd made and handed
 * to the caller's uid ("orch" for root); on cgroup v2 the caller is moved
 * below it. */
int netd_cgroup_delegate(struct netd_conn *c, char **parent,
			 struct orch_err *e);
/* Removes the caller's cgroup when nothing is left in it. */
int netd_cgroup_release(struct netd_conn *c, struct orch_err *e);
/* A new network namespace (lo up) netd made ahead, for root: *fd gets it,
 * or -1 when netd has none ready. */
int netd_netns_take(struct netd_conn *c, int *fd, struct orch_err *e);
int netd_port_publish(struct netd_conn *c, const struct netd_port_req *req,
		      struct orch_err *e);
/* Only checks that netd_port_publish would not conflict. */
int netd_port_check(struct netd_conn *c, const struct netd_port_req *req,
		    struct orch_err *e);
/* Unpublishes matching ports; none matching is success (*removed = 0). */
int netd_port_unpublish(struct netd_conn *c, const struct netd_port_req *req,
			unsigned *removed, struct orch_err *e);

/* A connection that link-only refused on a network of a project. */
struct netd_refusal {
	char *network;			    /* "myproj_back" */
	char *from_container, *from_service; /* who opened it */
	char *to_container, *to_service;     /* whom it was for */
	char *to_address;
	char *proto; /* "tcp", "udp", "icmp"... */
	unsigned port; /* 0 when none */
};
void netd_refusal_clear(struct netd_refusal *r);
/* A connection of its own that receives the refusals on project's
 * networks (the caller's); netd is not started for it.  Poll
 * netd_conn_fd and read each with netd_refusal_next. */
int netd_refusals_watch(const char *project, struct netd_conn **out,
			struct orch_err *e);
int netd_conn_fd(const struct netd_conn *c);
int netd_refusal_next(struct netd_conn *c, struct netd_refusal *out,
		      struct orch_err *e);
/* Sends one raw message (for tools and tests: anything, even malformed),
 * passing pass_fd when >= 0; *reply gets the raw reply (malloc'd). */
int netd_call_raw(struct netd_conn *c, const void *msg, size_t len, int pass_fd,
		  char **reply, struct orch_err *e);
/* Connects without the version handshake and without starting netd. */
int netd_connect_raw(struct netd_conn **out, struct orch_err *e);

/* ---- wire (shared by client and daemon; pure) ------------------------- */

/* A decoded request: op plus its JSON args, checked against the op's
 * schema (types, lengths, counts, names).  args is a jansson json_t *. */
struct netd_request {
	char op[32];
	void *args;
};
/* Decodes one message; on error fills e (the reply to send). */
int netd_request_decode(const void *buf, size_t len, struct netd_request *req,
			struct orch_err *e);
void netd_request_clear(struct netd_request *req);
/* Sends one message, with pass_fd (-1: none) as SCM_RIGHTS; flags are
 * send(2)'s (MSG_NOSIGNAL is added).  0 or -errno. */
int netd_msg_send(int fd, const void *msg, size_t len, int pass_fd,
		  int flags);
struct msghdr;
/* The first fd a message received with mh carried (-1: none), the others
 * closed. */
int netd_msg_fd(struct msghdr *mh);
/* Reply encoding: result is a json_t * (stolen) or NULL; returns a
 * malloc'd NUL-terminated message. */
char *netd_reply_ok(void *result, size_t *len);
char *netd_reply_err(const struct orch_err *e, size_t *len);

/* Object <-> JSON (json_t *), used by both sides. */
void *netd_network_to_json(const struct netd_network *n);
/* The same without its endpoints. */
void *netd_network_head_to_json(const struct netd_network *n);
int netd_network_from_json(const void *json, struct netd_network *out,
			   struct orch_err *e);
void *netd_endpoint_to_json(const struct netd_endpoint *ep);
int netd_endpoint_from_json(const void *json, struct netd_endpoint *out,
			    struct orch_err *e);
void *netd_refusal_to_json(const struct netd_refusal *r);
int netd_refusal_from_json(const void *json, struct netd_refusal *out,
			   struct orch_err *e);

/* A name that netd accepts: 1..NETD_NAME_MAX of [A-Za-z0-9_.-], not
 * starting with '.' or '-'. */
bool netd_name_valid(const char *s);

#endif
