/* Service-name DNS: a resolver on each network's gateway (UDP port 53).
 * The asker is known by its source address; it sees the names (services,
 * aliases, container names) of the networks it is on.  Names of other
 * networks, and unknown single-label names, get NXDOMAIN; other names go
 * to the host's resolvers from /etc/resolv.conf.  The answering logic
 * (dns_answer) is pure. */
#include "netd/netd-int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <resolv.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#define DNS_MAX_NETS	    1024
#define DNS_MAX_TCP	    32
#define DNS_TCP_TIMEOUT	    5 /* seconds for a TCP client to send its query */
#define DNS_MAX_PENDING	    512
#define DNS_MAX_UPSTREAMS   3
#define DNS_FORWARD_TIMEOUT 5 /* seconds */

/* ---- answering -------------------------------------------------------- */

static bool name_is(const char *a, const char *b)
{
	return b && *b && strcasecmp(a, b) == 0;
}

static bool ep_answers(const struct netd_endpoint *ep, const char *name)
{
	if (name_is(name, ep->container_name))
		return true;
	if (ep->named_only)
		return false;
	if (name_is(name, ep->service))
		return true;
	for (size_t i = 0; ep->aliases && ep->aliases[i]; i++)
		if (name_is(name, ep->aliases[i]))
			return true;
	return false;
}

/* The endpoint a query comes from, by its source address (IPv4 or IPv6,
 * as text). */
static const struct netd_endpoint *asker_ep(const struct netd_state *st,
					    const char *a)
{
	const struct netd_endpoint *ep = NULL;
	for (size_t i = 0; i < st->n_nets && !ep; i++)
		ep = state_endpoint_at(&st->nets[i], a);
	return ep;
}

/* The service a link alias of the asker's stands for (compose's links:
 * SERVICE:ALIAS, resolved for the linking container alone), else name. */
static const char *link_target(const struct netd_endpoint *asker,
			       const char *name)
{
	for (size_t i = 0; asker && asker->links && asker->links[i]; i++) {
		const char *eq = strchr(asker->links[i], '=');
		if (eq && (size_t)(eq - asker->links[i]) == strlen(name) &&
		    !strncasecmp(asker->links[i], name, strlen(name)))
			return eq + 1;
	}
	return name;
}

/* The wire format (RFC 1035 4.1) is read and written here: a query's
 * header and question, and answers of one A or AAAA record each, whose
 * name points at the question's.  A DNS library would bring its own
 * dependencies (ldns: libssl and libcrypto, some 700 KiB of relocated
 * pages) into a daemon that stays resident. */
enum {
	DNS_HDR = 12,		 /* id, flags, four counts */
	DNS_QR = 0x80,		 /* flags[0]: a response */
	DNS_OPCODE = 0x78,	 /* flags[0]: 0 is QUERY */
	DNS_AA = 0x04,		 /* flags[0]: authoritative */
	DNS_RD = 0x01,		 /* flags[0]: recursion desired */
	DNS_RA = 0x80,		 /* flags[1]: recursion available */
	DNS_T_A = 1,
	DNS_T_AAAA = 28,
	DNS_C_IN = 1,
	DNS_NOERROR = 0,
	DNS_NXDOMAIN = 3,
	DNS_REFUSED = 5,
	/* Addresses change as containers are recreated: never cache long. */
	DNS_TTL = 5,
};

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void put16(struct strbuf *b, unsigned v)
{
	sb_add(b, (const char[]){(char)(v >> 8), (char)v}, 2);
}

/* An A (v6: AAAA) record for addr, when it is one of that family; its
 * name is a pointer to the question's, right after the header. */
static void push_a(struct strbuf *reply, unsigned *count, const char *addr,
		   bool v6)
{
	uint8_t in[16];
	if (!addr || inet_pton(v6 ? AF_INET6 : AF_INET, addr, in) != 1)
		return;
	put16(reply, 0xc000 | DNS_HDR);
	put16(reply, v6 ? DNS_T_AAAA : DNS_T_A);
	put16(reply, DNS_C_IN);
	put16(reply, 0);
	put16(reply, DNS_TTL);
	put16(reply, v6 ? 16 : 4);
	sb_add(reply, (const char *)in, v6 ? 16 : 4);
	(*count)++;
}

enum dns_verdict dns_answer(const struct netd_state *st, const char *asker,
			    const void *query, size_t len, uint8_t **out,
			    size_t *out_len)
{
	const uint8_t *q = query;
	/* One question, in a query that is no response: its name (which
	 * dn_expand checks, pointers included), type and class. */
	if (len < DNS_HDR || (q[2] & (DNS_QR | DNS_OPCODE)) ||
	    get16(q + 4) != 1)
		return DNS_DROP;
	char text[1025];
	int nl = dn_expand(q, q + len, q + DNS_HDR, text, sizeof(text));
	if (nl < 0 || (size_t)nl + 4 > len - DNS_HDR)
		return DNS_DROP;
	size_t qend = DNS_HDR + (size_t)nl + 4;
	unsigned qtype = get16(q + qend - 4), qclass = get16(q + qend - 2);
	size_t tl = strlen(text);
	if (tl && text[tl - 1] == '.')
		text[--tl] = '\0';
	/* The header's counts are written last. */
	struct strbuf reply;
	sb_init(&reply);
	sb_add(&reply, (const char *)q, 2);
	sb_add(&reply, (const char[DNS_HDR - 2]){0}, DNS_HDR - 2);
	sb_add(&reply, (const char *)q + DNS_HDR, qend - DNS_HDR);
	unsigned answers = 0;
	const struct netd_endpoint *aep = asker_ep(st, asker);
	const char *cid = aep ? aep->container_id : NULL;
	const char *lookup = link_target(aep, text);
	bool known_anywhere = false, found = false;
	for (size_t i = 0; i < st->n_nets; i++) {
		const struct netd_network *n = &st->nets[i];
		bool shared = cid && state_endpoint_find(n, cid) >= 0;
		for (size_t j = 0; j < n->n_endpoints; j++) {
			if (!ep_answers(&n->endpoints[j], lookup))
				continue;
			known_anywhere = true;
			if (!shared)
				continue;
			found = true;
			if (qclass != DNS_C_IN)
				continue;
			if (qtype == DNS_T_A)
				push_a(&reply, &answers,
				       n->endpoints[j].address, false);
			if (qtype == DNS_T_AAAA)
				push_a(&reply, &answers,
				       n->endpoints[j].address6, true);
		}
	}
	int rcode;
	if (found) {
		rcode = DNS_NOERROR;
	} else if (known_anywhere || !strchr(text, '.') || !cid) {
		/* Not the asker's to see, or a bare name no upstream knows,
		 * or an asker that is no container of ours. */
		rcode = cid ? DNS_NXDOMAIN : DNS_REFUSED;
	} else {
		sb_free(&reply);
		return DNS_FORWARD;
	}
	uint8_t *h = (uint8_t *)reply.buf;
	h[2] = (uint8_t)(DNS_QR | (found ? DNS_AA : 0) | (q[2] & DNS_RD));
	h[3] = (uint8_t)(DNS_RA | rcode);
	h[4] = 0;
	h[5] = 1;
	h[6] = (uint8_t)(answers >> 8);
	h[7] = (uint8_t)answers;
	*out_len = reply.len;
	*out = (uint8_t *)sb_steal(&reply);
	return DNS_ANSWER;
}

/* ---- the server ------------------------------------------------------- */

/* A network's resolver: UDP and TCP on its IPv4 gateway ([0]) and its
 * IPv6 gateway ([1]); -1 where there is none. */
struct dns_listener {
	char net_id[65];
	int fd[2], tcp_fd[2];
};

/* A client's address: IPv4 or IPv6. */
union peer {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* The client's address as text ("" when neither family). */
static void peer_text(const union peer *p, char out[INET6_ADDRSTRLEN])
{
	out[0] = '\0';
	if (p->sa.sa_family == AF_INET)
		inet_ntop(AF_INET, &p->in.sin_addr, out, INET6_ADDRSTRLEN);
	else if (p->sa.sa_family == AF_INET6)
		inet_ntop(AF_INET6, &p->in6.sin6_addr, out, INET6_ADDRSTRLEN);
}

static socklen_t peer_len(const union peer *p)
{
	return p->sa.sa_family == AF_INET6 ? sizeof(p->in6) : sizeof(p->in);
}

/* A TCP client: one length-prefixed query, one answer, then closed. */
struct dns_tcp {
	int fd;
	uint8_t buf[2 + 4096];
	size_t len;
	char peer[INET6_ADDRSTRLEN];
	time_t deadline;
};

struct dns_pending {
	bool used;
	uint16_t id, orig_id;
	int fd; /* listener to answer through */
	union peer client;
	/* The servers asked: the asker's own, or (n_up == 0) the host's. */
	union peer up[DNS_MAX_UPSTREAMS];
	size_t n_up;
	time_t deadline;
};

struct dns_server {
	struct dns_listener nets[DNS_MAX_NETS];
	size_t n_nets;
	int upstream_fd[2]; /* IPv4, IPv6 (-1 without it) */
	union peer upstreams[DNS_MAX_UPSTREAMS];
	size_t n_upstreams;
	struct dns_pending pending[DNS_MAX_PENDING];
	struct dns_tcp tcp[DNS_MAX_TCP];
	size_t n_tcp;
	uint16_t next_id;
};

/* A DNS server's address (IPv4 or IPv6, port 53) from its text: an
 * upstream's, or a gateway's to listen on. */
static bool server_addr(const char *text, union peer *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET6, text, &out->in6.sin6_addr) == 1) {
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = htons(53);
		return true;
	}
	out->in.sin_family = AF_INET;
	out->in.sin_port = htons(53);
	return inet_pton(AF_INET, text, &out->in.sin_addr) == 1;
}

static bool peer_same(const union peer *a, const union peer *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET6)
		return a->in6.sin6_port == b->in6.sin6_port &&
		       memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
	return a->in.sin_port == b->in.sin_port &&
	       a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
}

static void load_upstreams(struct dns_server *d)
{
	_cleanup_fclose_ FILE *f = fopen("/etc/resolv.conf", "re");
	char line[512];
	while (f && fgets(line, sizeof(line), f) &&
	       d->n_upstreams < DNS_MAX_UPSTREAMS) {
		char addr[64];
		if (sscanf(line, " nameserver %63s", addr) == 1 &&
		    server_addr(addr, &d->upstreams[d->n_upstreams]))
			d->n_upstreams++;
	}
}

int dns_server_new(struct dns_server **out, struct orch_err *e)
{
	struct dns_server *d = xcalloc(1, sizeof(*d));
	d->upstream_fd[0] =
	    socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (d->upstream_fd[0] < 0) {
		free(d);
		return err_sys(e, errno, "creating the DNS forwarding socket");
	}
	/* A host without IPv6 forwards over IPv4 only. */
	d->upstream_fd[1] =
	    socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	load_upstreams(d);
	d->next_id = (uint16_t)(time(NULL) ^ getpid());
	*out = d;
	return 0;
}

static void listener_close(struct dns_listener *l)
{
	for (int k = 0; k < 2; k++) {
		if (l->fd[k] >= 0)
			close(l->fd[k]);
		if (l->tcp_fd[k] >= 0)
			close(l->tcp_fd[k]);
	}
}

void dns_server_free(struct dns_server *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_nets; i++)
		listener_close(&d->nets[i]);
	for (size_t i = 0; i < d->n_tcp; i++)
		close(d->tcp[i].fd);
	close(d->upstream_fd[0]);
	if (d->upstream_fd[1] >= 0)
		close(d->upstream_fd[1]);
	free(d);
}

/* UDP (and, best effort, TCP) port 53 on gw (IPv4 or IPv6). */
static int listen_on(const char *net, const char *gw, int *ufd, int *tfd,
		     struct orch_err *e)
{
	union peer sa;
	if (!server_addr(gw, &sa))
		return err_set(e, EINVAL, "DNS for %s: bad gateway %s", net,
			       gw);
	int fam = sa.sa.sa_family;
	*ufd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (*ufd < 0)
		return err_sys(e, errno, "DNS for %s: socket", net);
	if (bind(*ufd, &sa.sa, peer_len(&sa)) < 0) {
		int r = err_sys(e, errno, "DNS for %s: binding %s port 53", net,
				gw);
		close(*ufd);
		*ufd = -1;
		return r;
	}
	/* TCP too, for clients retrying a truncated answer; best effort. */
	*tfd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	if (*tfd >= 0 &&
	    (setsockopt(*tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) <
		 0 ||
	     bind(*tfd, &sa.sa, peer_len(&sa)) < 0 || listen(*tfd, 16) < 0)) {
		log_warn("DNS for %s: no TCP on %s port 53: %s", net, gw,
			 strerror(errno));
		close(*tfd);
		*tfd = -1;
	}
	return 0;
}

int dns_network_add(struct dns_server *d, const struct netd_network *n,
		    struct orch_err *e)
{
	if (d->n_nets == DNS_MAX_NETS)
		return err_set(e, ENOSPC, "DNS for %s: too many networks",
			       n->name);
	struct dns_listener l = {.fd = {-1, -1}, .tcp_fd = {-1, -1}};
	snprintf(l.net_id, sizeof(l.net_id), "%s", n->id);
	const char *gw[2] = {n->gateway, n->gateway6};
	for (int k = 0; k < 2; k++)
		if (has_str(gw[k]) &&
		    listen_on(n->name, gw[k], &l.fd[k], &l.tcp_fd[k], e) < 0) {
			listener_close(&l);
			return -e->code;
		}
	d->nets[d->n_nets++] = l;
	return 0;
}

void dns_network_remove(struct dns_server *d, const struct netd_network *n)
{
	for (size_t i = 0; i < d->n_nets; i++) {
		if (!streq(d->nets[i].net_id, n->id))
			continue;
		for (size_t p = 0; p < DNS_MAX_PENDING; p++)
			if (d->pending[p].used &&
			    (d->pending[p].fd == d->nets[i].fd[0] ||
			     d->pending[p].fd == d->nets[i].fd[1]))
				d->pending[p].used = false;
		listener_close(&d->nets[i]);
		d->nets[i] = d->nets[--d->n_nets];
		return;
	}
}

size_t dns_pollfds(struct dns_server *d, int *fds, size_t max)
{
	size_t n = 0;
#define ADD_FD(f)                                                              \
	do {                                                                   \
		if (fds && n < max)                                            \
			fds[n] = (f);                                          \
		n++;                                                           \
	} while (0)
	ADD_FD(d->upstream_fd[0]);
	if (d->upstream_fd[1] >= 0)
		ADD_FD(d->upstream_fd[1]);
	for (size_t i = 0; i < d->n_nets; i++)
		for (int k = 0; k < 2; k++) {
			if (d->nets[i].fd[k] >= 0)
				ADD_FD(d->nets[i].fd[k]);
			if (d->nets[i].tcp_fd[k] >= 0)
				ADD_FD(d->nets[i].tcp_fd[k]);
		}
	for (size_t i = 0; i < d->n_tcp; i++)
		ADD_FD(d->tcp[i].fd);
#undef ADD_FD
	return n;
}

/* Sends a query on to the asker's servers (own_dns, its service's dns:)
 * or the host's, under an id of ours. */
static void forward(struct dns_server *d, int fd, const union peer *from,
		    uint8_t *buf, size_t len,
		    char *const *own_dns)
{
	union peer own[DNS_MAX_UPSTREAMS];
	size_t n_own = 0;
	for (size_t i = 0; own_dns && own_dns[i] && n_own < DNS_MAX_UPSTREAMS;
	     i++)
		if (server_addr(own_dns[i], &own[n_own]))
			n_own++;
	if ((!n_own && !d->n_upstreams) || len < 12)
		return;
	time_t now = time(NULL);
	struct dns_pending *slot = NULL;
	for (size_t i = 0; i < DNS_MAX_PENDING && !slot; i++)
		if (!d->pending[i].used || d->pending[i].deadline < now)
			slot = &d->pending[i];
	if (!slot)
		return; /* overloaded: the client retries */
	slot->used = true;
	slot->orig_id = get16(buf);
	slot->id = d->next_id++;
	slot->fd = fd;
	slot->client = *from;
	slot->deadline = now + DNS_FORWARD_TIMEOUT;
	memcpy(slot->up, own, n_own * sizeof(own[0]));
	slot->n_up = n_own;
	buf[0] = (uint8_t)(slot->id >> 8);
	buf[1] = (uint8_t)slot->id;
	const union peer *to = n_own ? own : d->upstreams;
	for (size_t i = 0; i < (n_own ? n_own : d->n_upstreams); i++) {
		int ufd = d->upstream_fd[to[i].sa.sa_family == AF_INET6];
		if (ufd >= 0)
			sendto(ufd, buf, len, MSG_DONTWAIT, &to[i].sa,
			       peer_len(&to[i]));
	}
}

static void upstream_reply(struct dns_server *d, uint8_t *buf, size_t len,
			   const union peer *from)
{
	if (len < 12)
		return;
	uint16_t id = get16(buf);
	for (size_t i = 0; i < DNS_MAX_PENDING; i++) {
		struct dns_pending *p = &d->pending[i];
		if (!p->used || p->id != id)
			continue;
		/* Only from a server that was asked. */
		const union peer *asked = p->n_up ? p->up : d->upstreams;
		bool ours = false;
		for (size_t k = 0; k < (p->n_up ? p->n_up : d->n_upstreams);
		     k++)
			ours |= peer_same(&asked[k], from);
		if (!ours)
			return;
		buf[0] = (uint8_t)(p->orig_id >> 8);
		buf[1] = (uint8_t)p->orig_id;
		sendto(p->fd, buf, len, MSG_DONTWAIT, &p->client.sa,
		       peer_len(&p->client));
		p->used = false;
		return;
	}
}

static void tcp_close(struct dns_server *d, size_t i)
{
	close(d->tcp[i].fd);
	d->tcp[i] = d->tcp[--d->n_tcp];
}

static void tcp_accept(struct dns_server *d, int lfd)
{
	union peer from = {0};
	socklen_t fl = sizeof(from);
	int fd = accept4(lfd, &from.sa, &fl, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (d->n_tcp == DNS_MAX_TCP || fl != peer_len(&from)) {
		close(fd);
		return;
	}
	struct dns_tcp *t = &d->tcp[d->n_tcp++];
	t->fd = fd;
	t->len = 0;
	peer_text(&from, t->peer);
	t->deadline = time(NULL) + DNS_TCP_TIMEOUT;
}

/* Reads a TCP client's query; once whole, answers it and closes.  Names
 * that would be forwarded are not served over TCP: the client gets the
 * connection closed and keeps its UDP answer. */
static void tcp_read(struct dns_server *d, const struct netd_state *st,
		     size_t i)
{
	struct dns_tcp *t = &d->tcp[i];
	ssize_t n =
	    recv(t->fd, t->buf + t->len, sizeof(t->buf) - t->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		tcp_close(d, i);
		return;
	}
	t->len += (size_t)n;
	if (t->len < 2)
		return;
	size_t want = (size_t)(t->buf[0] << 8 | t->buf[1]);
	if (want == 0 || want > sizeof(t->buf) - 2) {
		tcp_close(d, i);
		return;
	}
	if (t->len < 2 + want)
		return;
	uint8_t *reply = NULL;
	size_t rlen = 0;
	if (dns_answer(st, t->peer, t->buf + 2, want, &reply, &rlen) ==
		DNS_ANSWER &&
	    rlen <= 0xffff) {
		uint8_t hdr[2] = {(uint8_t)(rlen >> 8), (uint8_t)rlen};
		struct iovec iov[2] = {{hdr, 2}, {reply, rlen}};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
		sendmsg(t->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	free(reply);
	tcp_close(d, i);
}

void dns_handle(struct dns_server *d, const struct netd_state *st, int fd)
{
	for (size_t i = 0; i < d->n_nets; i++)
		if (d->nets[i].tcp_fd[0] == fd || d->nets[i].tcp_fd[1] == fd) {
			tcp_accept(d, fd);
			return;
		}
	for (size_t i = 0; i < d->n_tcp; i++)
		if (d->tcp[i].fd == fd) {
			tcp_read(d, st, i);
			return;
		}
	uint8_t buf[4096];
	/* Drain what is queued, bounded so the control socket is not starved.
	 */
	for (int k = 0; k < 64; k++) {
		union peer from = {0};
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
				     &from.sa, &fl);
		if (n <= 0 || fl != peer_len(&from) ||
		    (from.sa.sa_family != AF_INET &&
		     from.sa.sa_family != AF_INET6))
			return;
		if (fd == d->upstream_fd[0] || fd == d->upstream_fd[1]) {
			upstream_reply(d, buf, (size_t)n, &from);
			continue;
		}
		char asker[INET6_ADDRSTRLEN];
		peer_text(&from, asker);
		uint8_t *reply = NULL;
		size_t rlen = 0;
		switch (dns_answer(st, asker, buf, (size_t)n, &reply, &rlen)) {
		case DNS_ANSWER:
			sendto(fd, reply, rlen, MSG_DONTWAIT, &from.sa, fl);
			break;
		case DNS_FORWARD: {
			const struct netd_endpoint *ep = asker_ep(st, asker);
			forward(d, fd, &from, buf, (size_t)n,
				ep ? ep->dns : NULL);
			break;
		}
		case DNS_DROP:
			break;
		}
		free(reply);
	}
}

void dns_tick(struct dns_server *d)
{
	time_t now = time(NULL);
	for (size_t i = d->n_tcp; i-- > 0;)
		if (d->tcp[i].deadline < now)
			tcp_close(d, i);
	for (size_t i = 0; i < DNS_MAX_PENDING; i++)
		if (d->pending[i].used && d->pending[i].deadline < now)
			d->pending[i].used = false;
}
