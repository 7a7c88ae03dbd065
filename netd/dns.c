/* Service-name DNS: a resolver on each network's gateway (UDP port 53).
 * The asker is known by its source address; it sees the names (services,
 * aliases, container names) of the networks it is on.  Names of other
 * networks, and unknown single-label names, get NXDOMAIN; other names go
 * to the host's resolvers from /etc/resolv.conf.  Messages are parsed and
 * built with ldns; the answering logic (dns_answer) is pure. */
#include "netd/netd-int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <ldns/ldns.h>
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
	if (name_is(name, ep->service) || name_is(name, ep->container_name))
		return true;
	for (size_t i = 0; ep->aliases && ep->aliases[i]; i++)
		if (name_is(name, ep->aliases[i]))
			return true;
	return false;
}

/* The container id of the endpoint with address a, or NULL. */
/* The endpoint a query comes from, by its source address. */
static const struct netd_endpoint *asker_ep(const struct netd_state *st,
					    uint32_t a)
{
	char buf[16];
	ipam_format_addr(a, buf);
	for (size_t i = 0; i < st->n_nets; i++)
		for (size_t j = 0; j < st->nets[i].n_endpoints; j++)
			if (streq(st->nets[i].endpoints[j].address, buf))
				return &st->nets[i].endpoints[j];
	return NULL;
}

static const char *asker_of(const struct netd_state *st, uint32_t a)
{
	const struct netd_endpoint *ep = asker_ep(st, a);
	return ep ? ep->container_id : NULL;
}

static void push_a(ldns_pkt *reply, const ldns_rdf *owner, const char *addr)
{
	struct in_addr in;
	if (inet_pton(AF_INET, addr, &in) != 1)
		return;
	ldns_rr *rr = ldns_rr_new();
	ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
	ldns_rr_set_type(rr, LDNS_RR_TYPE_A);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	/* Addresses change as containers are recreated: never cache long. */
	ldns_rr_set_ttl(rr, 5);
	ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, &in));
	ldns_pkt_push_rr(reply, LDNS_SECTION_ANSWER, rr);
}

enum dns_verdict dns_answer(const struct netd_state *st, uint32_t asker,
			    const void *query, size_t len, uint8_t **out,
			    size_t *out_len)
{
	ldns_pkt *q = NULL;
	if (ldns_wire2pkt(&q, query, len) != LDNS_STATUS_OK)
		return DNS_DROP;
	enum dns_verdict v = DNS_DROP;
	ldns_pkt *reply = NULL;
	if (ldns_pkt_qr(q) || ldns_pkt_get_opcode(q) != LDNS_PACKET_QUERY ||
	    ldns_pkt_qdcount(q) != 1 ||
	    ldns_rr_list_rr_count(ldns_pkt_question(q)) != 1)
		goto out;
	const ldns_rr *qrr = ldns_rr_list_rr(ldns_pkt_question(q), 0);
	const ldns_rdf *owner = ldns_rr_owner(qrr);
	char *text = ldns_rdf2str(owner);
	if (!text)
		goto out;
	size_t tl = strlen(text);
	if (tl && text[tl - 1] == '.')
		text[--tl] = '\0';
	reply = ldns_pkt_new();
	ldns_pkt_set_id(reply, ldns_pkt_id(q));
	ldns_pkt_set_qr(reply, true);
	ldns_pkt_set_opcode(reply, LDNS_PACKET_QUERY);
	ldns_pkt_set_rd(reply, ldns_pkt_rd(q));
	ldns_pkt_set_ra(reply, true);
	ldns_pkt_push_rr(reply, LDNS_SECTION_QUESTION, ldns_rr_clone(qrr));
	const char *cid = asker_of(st, asker);
	bool known_anywhere = false, found = false;
	for (size_t i = 0; i < st->n_nets; i++) {
		const struct netd_network *n = &st->nets[i];
		bool shared = cid && state_endpoint_find(n, cid) >= 0;
		for (size_t j = 0; j < n->n_endpoints; j++) {
			if (!ep_answers(&n->endpoints[j], text))
				continue;
			known_anywhere = true;
			if (!shared)
				continue;
			found = true;
			if (ldns_rr_get_type(qrr) == LDNS_RR_TYPE_A &&
			    ldns_rr_get_class(qrr) == LDNS_RR_CLASS_IN)
				push_a(reply, owner, n->endpoints[j].address);
		}
	}
	if (found) {
		ldns_pkt_set_aa(reply, true);
		ldns_pkt_set_rcode(reply, LDNS_RCODE_NOERROR);
		v = DNS_ANSWER;
	} else if (known_anywhere || !strchr(text, '.') || !cid) {
		/* Not the asker's to see, or a bare name no upstream knows,
		 * or an asker that is no container of ours. */
		ldns_pkt_set_rcode(reply, cid ? LDNS_RCODE_NXDOMAIN
					      : LDNS_RCODE_REFUSED);
		v = DNS_ANSWER;
	} else {
		v = DNS_FORWARD;
	}
	free(text);
	if (v == DNS_ANSWER &&
	    ldns_pkt2wire(out, reply, out_len) != LDNS_STATUS_OK)
		v = DNS_DROP;
out:
	ldns_pkt_free(reply);
	ldns_pkt_free(q);
	return v;
}

/* ---- the server ------------------------------------------------------- */

struct dns_listener {
	char net_id[65];
	int fd, tcp_fd;
};

/* A TCP client: one length-prefixed query, one answer, then closed. */
struct dns_tcp {
	int fd;
	uint8_t buf[2 + 4096];
	size_t len;
	uint32_t peer;
	time_t deadline;
};

struct dns_pending {
	bool used;
	uint16_t id, orig_id;
	int fd; /* listener to answer through */
	struct sockaddr_in client;
	/* The servers asked: the asker's own, or (n_up == 0) the host's. */
	struct sockaddr_in up[DNS_MAX_UPSTREAMS];
	size_t n_up;
	time_t deadline;
};

struct dns_server {
	struct dns_listener nets[DNS_MAX_NETS];
	size_t n_nets;
	int upstream_fd;
	struct sockaddr_in upstreams[DNS_MAX_UPSTREAMS];
	size_t n_upstreams;
	struct dns_pending pending[DNS_MAX_PENDING];
	struct dns_tcp tcp[DNS_MAX_TCP];
	size_t n_tcp;
	uint16_t next_id;
};

static struct sockaddr_in server_addr(struct in_addr in)
{
	return (struct sockaddr_in){
	    .sin_family = AF_INET, .sin_port = htons(53), .sin_addr = in};
}

static void load_upstreams(struct dns_server *d)
{
	_cleanup_fclose_ FILE *f = fopen("/etc/resolv.conf", "re");
	char line[512];
	while (f && fgets(line, sizeof(line), f) &&
	       d->n_upstreams < DNS_MAX_UPSTREAMS) {
		char addr[64];
		struct in_addr in;
		if (sscanf(line, " nameserver %63s", addr) != 1 ||
		    inet_pton(AF_INET, addr, &in) != 1)
			continue;
		d->upstreams[d->n_upstreams++] = server_addr(in);
	}
}

int dns_server_new(struct dns_server **out, struct orch_err *e)
{
	struct dns_server *d = xcalloc(1, sizeof(*d));
	d->upstream_fd =
	    socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (d->upstream_fd < 0) {
		free(d);
		return err_sys(e, errno, "creating the DNS forwarding socket");
	}
	load_upstreams(d);
	d->next_id = (uint16_t)(time(NULL) ^ getpid());
	*out = d;
	return 0;
}

void dns_server_free(struct dns_server *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_nets; i++) {
		close(d->nets[i].fd);
		if (d->nets[i].tcp_fd >= 0)
			close(d->nets[i].tcp_fd);
	}
	for (size_t i = 0; i < d->n_tcp; i++)
		close(d->tcp[i].fd);
	close(d->upstream_fd);
	free(d);
}

int dns_network_add(struct dns_server *d, const struct netd_network *n,
		    struct orch_err *e)
{
	uint32_t gw;
	if (d->n_nets == DNS_MAX_NETS)
		return err_set(e, ENOSPC, "DNS for %s: too many networks",
			       n->name);
	if (ipam_parse_addr(n->gateway, &gw) < 0)
		return err_set(e, EINVAL, "DNS for %s: bad gateway", n->name);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_sys(e, errno, "DNS for %s: socket", n->name);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(53),
				 .sin_addr.s_addr = htonl(gw)};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = err_sys(e, errno, "DNS for %s: binding %s:53", n->name,
				n->gateway);
		close(fd);
		return r;
	}
	/* TCP too, for clients retrying a truncated answer; best effort. */
	int tfd =
	    socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	if (tfd >= 0 &&
	    (setsockopt(tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	     bind(tfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	     listen(tfd, 16) < 0)) {
		log_warn("DNS for %s: no TCP on %s:53: %s", n->name, n->gateway,
			 strerror(errno));
		close(tfd);
		tfd = -1;
	}
	snprintf(d->nets[d->n_nets].net_id, 65, "%s", n->id);
	d->nets[d->n_nets].tcp_fd = tfd;
	d->nets[d->n_nets++].fd = fd;
	return 0;
}

void dns_network_remove(struct dns_server *d, const struct netd_network *n)
{
	for (size_t i = 0; i < d->n_nets; i++) {
		if (!streq(d->nets[i].net_id, n->id))
			continue;
		for (size_t p = 0; p < DNS_MAX_PENDING; p++)
			if (d->pending[p].used &&
			    d->pending[p].fd == d->nets[i].fd)
				d->pending[p].used = false;
		close(d->nets[i].fd);
		if (d->nets[i].tcp_fd >= 0)
			close(d->nets[i].tcp_fd);
		d->nets[i] = d->nets[--d->n_nets];
		return;
	}
}

size_t dns_pollfds(struct dns_server *d, int *fds, size_t max)
{
	size_t n = 0;
#define ADD(f)                                                                 \
	do {                                                                   \
		if (fds && n < max)                                            \
			fds[n] = (f);                                          \
		n++;                                                           \
	} while (0)
	ADD(d->upstream_fd);
	for (size_t i = 0; i < d->n_nets; i++) {
		ADD(d->nets[i].fd);
		if (d->nets[i].tcp_fd >= 0)
			ADD(d->nets[i].tcp_fd);
	}
	for (size_t i = 0; i < d->n_tcp; i++)
		ADD(d->tcp[i].fd);
#undef ADD
	return n;
}

/* Sends a query on to the asker's servers (own_dns, its service's dns:)
 * or the host's, under an id of ours. */
static void forward(struct dns_server *d, int fd,
		    const struct sockaddr_in *from, uint8_t *buf, size_t len,
		    char *const *own_dns)
{
	struct sockaddr_in own[DNS_MAX_UPSTREAMS];
	size_t n_own = 0;
	for (size_t i = 0; own_dns && own_dns[i] && n_own < DNS_MAX_UPSTREAMS;
	     i++) {
		struct in_addr in;
		if (inet_pton(AF_INET, own_dns[i], &in) == 1)
			own[n_own++] = server_addr(in);
	}
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
	slot->orig_id = (uint16_t)(buf[0] << 8 | buf[1]);
	slot->id = d->next_id++;
	slot->fd = fd;
	slot->client = *from;
	slot->deadline = now + DNS_FORWARD_TIMEOUT;
	memcpy(slot->up, own, n_own * sizeof(own[0]));
	slot->n_up = n_own;
	buf[0] = (uint8_t)(slot->id >> 8);
	buf[1] = (uint8_t)slot->id;
	const struct sockaddr_in *to = n_own ? own : d->upstreams;
	for (size_t i = 0; i < (n_own ? n_own : d->n_upstreams); i++)
		sendto(d->upstream_fd, buf, len, MSG_DONTWAIT,
		       (const struct sockaddr *)&to[i], sizeof(to[i]));
}

static void upstream_reply(struct dns_server *d, uint8_t *buf, size_t len,
			   const struct sockaddr_in *from)
{
	if (len < 12)
		return;
	uint16_t id = (uint16_t)(buf[0] << 8 | buf[1]);
	for (size_t i = 0; i < DNS_MAX_PENDING; i++) {
		struct dns_pending *p = &d->pending[i];
		if (!p->used || p->id != id)
			continue;
		/* Only from a server that was asked. */
		const struct sockaddr_in *asked =
		    p->n_up ? p->up : d->upstreams;
		bool ours = false;
		for (size_t k = 0; k < (p->n_up ? p->n_up : d->n_upstreams);
		     k++)
			ours |=
			    asked[k].sin_addr.s_addr == from->sin_addr.s_addr &&
			    asked[k].sin_port == from->sin_port;
		if (!ours)
			return;
		buf[0] = (uint8_t)(p->orig_id >> 8);
		buf[1] = (uint8_t)p->orig_id;
		sendto(p->fd, buf, len, MSG_DONTWAIT,
		       (struct sockaddr *)&p->client, sizeof(p->client));
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
	struct sockaddr_in from = {0};
	socklen_t fl = sizeof(from);
	int fd = accept4(lfd, (struct sockaddr *)&from, &fl,
			 SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (d->n_tcp == DNS_MAX_TCP || fl != sizeof(from)) {
		close(fd);
		return;
	}
	struct dns_tcp *t = &d->tcp[d->n_tcp++];
	t->fd = fd;
	t->len = 0;
	t->peer = ntohl(from.sin_addr.s_addr);
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
		if (d->nets[i].tcp_fd == fd) {
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
		struct sockaddr_in from = {0};
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &fl);
		if (n <= 0 || fl != sizeof(from) || from.sin_family != AF_INET)
			return;
		if (fd == d->upstream_fd) {
			upstream_reply(d, buf, (size_t)n, &from);
			continue;
		}
		uint8_t *reply = NULL;
		size_t rlen = 0;
		switch (dns_answer(st, ntohl(from.sin_addr.s_addr), buf,
				   (size_t)n, &reply, &rlen)) {
		case DNS_ANSWER:
			sendto(fd, reply, rlen, MSG_DONTWAIT,
			       (struct sockaddr *)&from, fl);
			break;
		case DNS_FORWARD: {
			const struct netd_endpoint *ep =
			    asker_ep(st, ntohl(from.sin_addr.s_addr));
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
