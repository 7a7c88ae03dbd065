/* Link-only refusals, explained: the packets the refusal rules log
 * (nflog.c) are matched to the network and its endpoints, told once per
 * connection attempt (a retransmission or a datagram burst within a
 * second is the same attempt) to the clients watching the network's
 * project, which put them where the user looks (the supervisor: the
 * refused container's log and the project's events). */
#include "netd/netd-int.h"

#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* A connection watching the refusals of a project. */
struct refusal_watcher {
	int fd;
	uid_t uid;
	char *project;
};

/* The last refusals told: the same attempt again within SEEN_MS is not. */
#define SEEN_SLOTS 64
#define SEEN_MS	   1000
struct refusal_seen {
	struct nflog_packet v[SEEN_SLOTS];
	int64_t at[SEEN_SLOTS];
	size_t next;
};

int op_refusals_watch(struct server *s, struct call *c, json_t **res)
{
	const char *project = call_str(c, "project");
	refusals_unwatch(s, c->client);
	s->watchers =
	    xrealloc(s->watchers, (s->n_watchers + 1) * sizeof(*s->watchers));
	s->watchers[s->n_watchers++] = (struct refusal_watcher){
	    .fd = c->client, .uid = c->uid, .project = xstrdup(project)};
	*res = json_object();
	return 0;
}

void refusals_unwatch(struct server *s, int client)
{
	for (size_t i = s->n_watchers; i-- > 0;)
		if (s->watchers[i].fd == client) {
			free(s->watchers[i].project);
			s->watchers[i] = s->watchers[--s->n_watchers];
		}
}

void refusals_clear(struct server *s)
{
	for (size_t i = 0; i < s->n_watchers; i++)
		free(s->watchers[i].project);
	free(s->watchers);
	free(s->seen);
	s->watchers = NULL;
	s->n_watchers = 0;
	s->seen = NULL;
}

static bool seen_recently(struct server *s, const struct nflog_packet *p)
{
	if (!s->seen)
		s->seen = xcalloc(1, sizeof(*s->seen));
	struct refusal_seen *r = s->seen;
	int64_t now = mono_ms();
	for (size_t i = 0; i < SEEN_SLOTS; i++)
		if (r->at[i] && now - r->at[i] < SEEN_MS &&
		    streq(r->v[i].src, p->src) && streq(r->v[i].dst, p->dst) &&
		    r->v[i].proto == p->proto && r->v[i].dport == p->dport)
			return true;
	r->v[r->next] = *p;
	r->at[r->next] = now;
	r->next = (r->next + 1) % SEEN_SLOTS;
	return false;
}

static const char *proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmpv6";
	case IPPROTO_SCTP:
		return "sctp";
	}
	return "ip";
}

/* The message for one refusal on n, or NULL when it names no endpoint of
 * n (a container already gone). */
static json_t *refusal_json(const struct netd_network *n,
			    const struct nflog_packet *p)
{
	const struct netd_endpoint *from = state_endpoint_at(n, p->src);
	const struct netd_endpoint *to = state_endpoint_at(n, p->dst);
	if (!from || !to)
		return NULL;
	const struct netd_refusal r = {
	    .network = n->name,
	    .from_container = from->container_name,
	    .from_service = from->service,
	    .to_container = to->container_name,
	    .to_service = to->service,
	    .to_address = (char *)p->dst,
	    .proto = (char *)proto_name(p->proto),
	    .port = p->dport,
	};
	return json_pack("{s:i, s:o}", "v", NETD_PROTO_VERSION, "refused",
			 netd_refusal_to_json(&r));
}

static void tell(struct server *s, const struct netd_network *n, json_t *msg)
{
	_cleanup_free_ char *text = json_dumps(msg, JSON_COMPACT);
	if (!text)
		return;
	for (size_t i = 0; i < s->n_watchers; i++) {
		const struct refusal_watcher *w = &s->watchers[i];
		if (!streq(w->project, n->project) ||
		    (w->uid != 0 && w->uid != n->owner))
			continue;
		/* A watcher that does not keep up misses lines; netd never
		 * waits for one. */
		if (send(w->fd, text, strlen(text),
			 MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			log_debug("refusal for %s not sent: %s", w->project,
				  strerror(errno));
	}
}

void refusals_handle(struct server *s)
{
	struct nflog_packet pkts[64];
	size_t n;
	while ((n = nflog_read(s->nflog_fd, pkts, ARRAY_SIZE(pkts))) > 0) {
		for (size_t i = 0; i < n; i++) {
			const struct nflog_packet *p = &pkts[i];
			const struct netd_network *net = NULL;
			for (size_t k = 0; k < s->st.n_nets && !net; k++)
				if (strncmp(s->st.nets[k].id, p->prefix, 12) ==
				    0)
					net = &s->st.nets[k];
			if (!net || seen_recently(s, p))
				continue;
			json_t *msg = refusal_json(net, p);
			if (!msg)
				continue;
			tell(s, net, msg);
			json_decref(msg);
		}
		if (n < ARRAY_SIZE(pkts))
			break;
	}
}
