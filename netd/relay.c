/* Published ports on ::1.  The kernel does not route loopback traffic to
 * a bridge (IPv6 has no route_localnet), so, as docker's userland proxy
 * does, netd carries it: a socket on [::1]:PORT for each port published
 * on every address ("", "::") or on ::1 to an endpoint with an IPv6
 * address, and each connection (TCP) or client (UDP) relayed to the
 * container.  The listeners follow netd's state (relay_sync), so a crash
 * or a restart loses nothing. */
#include "netd/netd-int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#define RELAY_BUF      16384
#define RELAY_MAX_CONN 1024
#define RELAY_UDP_IDLE 60 /* seconds without a datagram */

struct relay_listener {
	bool udp;
	unsigned port;		/* on ::1 */
	struct sockaddr_in6 to; /* the container */
	int fd;
	bool wanted; /* relay_sync's mark */
};

/* A TCP connection: fd[0] the client, fd[1] the container; buf[i] holds
 * what was read from fd[i] and is not yet written to the other.  A UDP
 * client: fd[1] is connected to the container, replies go back through
 * the listener lfd to client. */
struct relay_conn {
	bool udp, connecting;
	int fd[2];
	uint8_t buf[2][RELAY_BUF];
	size_t len[2], off[2];
	bool eof[2], shut[2];
	int lfd;
	struct sockaddr_in6 client;
	time_t last;
};

struct relay {
	struct relay_listener *l;
	size_t n_l;
	struct relay_conn **c;
	size_t n_c;
};

struct relay *relay_new(void)
{
	return xcalloc(1, sizeof(struct relay));
}

static void conn_close(struct relay *r, size_t i)
{
	struct relay_conn *c = r->c[i];
	for (int k = 0; k < 2; k++)
		if (c->fd[k] >= 0)
			close(c->fd[k]);
	free(c);
	r->c[i] = r->c[--r->n_c];
}

void relay_free(struct relay *r)
{
	if (!r)
		return;
	while (r->n_c)
		conn_close(r, 0);
	for (size_t i = 0; i < r->n_l; i++)
		close(r->l[i].fd);
	free(r->l);
	free(r->c);
	free(r);
}

bool relay_host_ip(const char *ip)
{
	return !*ip || streq(ip, "::") || streq(ip, "::1");
}

/* Whether port p of n is relayed: on such a host IP, to an endpoint with
 * an IPv6 address. */
static bool relay_wanted(const struct netd_network *n,
			 const struct netd_port *p)
{
	if (!relay_host_ip(p->host_ip))
		return false;
	ssize_t e = state_endpoint_find(n, p->container_id);
	return e >= 0 && has_str(n->endpoints[e].address6);
}

static int listener_open(struct relay_listener *l, struct orch_err *e)
{
	int fd = socket(AF_INET6,
			(l->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC |
			    SOCK_NONBLOCK,
			0);
	if (fd < 0)
		return err_sys(e, errno, "relaying [::1]:%u", l->port);
	int one = 1;
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6,
				  .sin6_port = htons((uint16_t)l->port),
				  .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (!l->udp && listen(fd, 128) < 0)) {
		int r = err_sys(e, errno, "relaying [::1]:%u/%s", l->port,
				l->udp ? "udp" : "tcp");
		close(fd);
		return r;
	}
	l->fd = fd;
	return 0;
}

static bool same_target(const struct relay_listener *a,
			const struct relay_listener *b)
{
	return a->udp == b->udp && a->port == b->port &&
	       a->to.sin6_port == b->to.sin6_port &&
	       memcmp(&a->to.sin6_addr, &b->to.sin6_addr, 16) == 0;
}

void relay_sync(struct relay *r, const struct netd_state *st)
{
	for (size_t i = 0; i < r->n_l; i++)
		r->l[i].wanted = false;
	for (size_t i = 0; i < st->n_nets; i++) {
		const struct netd_network *n = &st->nets[i];
		for (size_t j = 0; j < n->n_ports; j++) {
			const struct netd_port *p = &n->ports[j];
			if (!relay_wanted(n, p))
				continue;
			const struct netd_endpoint *ep =
			    &n->endpoints[state_endpoint_find(
				n, p->container_id)];
			for (unsigned k = 0; k < (p->count ? p->count : 1);
			     k++) {
				struct relay_listener want = {
				    .udp = streq(p->proto, "udp"),
				    .port = p->host_port + k,
				    .to = {.sin6_family = AF_INET6,
					   .sin6_port = htons(
					       (uint16_t)(p->container_port +
							  k))},
				    .fd = -1,
				    .wanted = true};
				inet_pton(AF_INET6, ep->address6,
					  &want.to.sin6_addr);
				bool have = false;
				for (size_t m = 0; m < r->n_l && !have; m++)
					if (same_target(&r->l[m], &want))
						have = r->l[m].wanted = true;
				if (have)
					continue;
				struct orch_err e;
				if (listener_open(&want, &e) < 0) {
					log_warn("%s", e.msg);
					continue;
				}
				r->l = xrealloc(r->l,
						(r->n_l + 1) * sizeof(*r->l));
				r->l[r->n_l++] = want;
			}
		}
	}
	for (size_t i = r->n_l; i-- > 0;) {
		if (r->l[i].wanted)
			continue;
		for (size_t c = r->n_c; c-- > 0;)
			if (r->c[c]->udp && r->c[c]->lfd == r->l[i].fd)
				conn_close(r, c);
		close(r->l[i].fd);
		r->l[i] = r->l[--r->n_l];
	}
}

size_t relay_pollfds(const struct relay *r, struct pollfd *out, size_t max)
{
	size_t n = 0;
#define ADD(f, ev)                                                             \
	do {                                                                   \
		if (out && n < max)                                            \
			out[n] = (struct pollfd){.fd = (f), .events = (ev)};   \
		n++;                                                           \
	} while (0)
	for (size_t i = 0; i < r->n_l; i++)
		ADD(r->l[i].fd, POLLIN);
	for (size_t i = 0; i < r->n_c; i++) {
		const struct relay_conn *c = r->c[i];
		if (c->udp) {
			ADD(c->fd[1], POLLIN);
			continue;
		}
		for (int k = 0; k < 2; k++) {
			short ev = 0;
			if (!c->eof[k] && !c->len[k] && !c->connecting)
				ev |= POLLIN;
			if (c->len[1 - k] || (k == 1 && c->connecting))
				ev |= POLLOUT;
			ADD(c->fd[k], ev);
		}
	}
#undef ADD
	return n;
}

static void tcp_accept(struct relay *r, const struct relay_listener *l)
{
	int cfd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0)
		return;
	int ufd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			 0);
	if (r->n_c >= RELAY_MAX_CONN || ufd < 0 ||
	    (connect(ufd, (const struct sockaddr *)&l->to, sizeof(l->to)) < 0 &&
	     errno != EINPROGRESS)) {
		close(cfd);
		if (ufd >= 0)
			close(ufd);
		return;
	}
	struct relay_conn *c = xcalloc(1, sizeof(*c));
	c->fd[0] = cfd;
	c->fd[1] = ufd;
	c->connecting = true;
	r->c = xrealloc(r->c, (r->n_c + 1) * sizeof(*r->c));
	r->c[r->n_c++] = c;
}

/* One datagram from a client on ::1: to the container, through that
 * client's own socket (made on its first datagram). */
static void udp_in(struct relay *r, const struct relay_listener *l)
{
	uint8_t buf[65536];
	struct sockaddr_in6 from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(l->fd, buf, sizeof(buf), MSG_DONTWAIT,
			     (struct sockaddr *)&from, &fl);
	if (n < 0)
		return;
	struct relay_conn *c = NULL;
	for (size_t i = 0; i < r->n_c && !c; i++)
		if (r->c[i]->udp && r->c[i]->lfd == l->fd &&
		    memcmp(&r->c[i]->client, &from, sizeof(from)) == 0)
			c = r->c[i];
	if (!c) {
		int ufd = socket(AF_INET6,
				 SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (r->n_c >= RELAY_MAX_CONN || ufd < 0 ||
		    connect(ufd, (const struct sockaddr *)&l->to,
			    sizeof(l->to)) < 0) {
			if (ufd >= 0)
				close(ufd);
			return;
		}
		c = xcalloc(1, sizeof(*c));
		c->udp = true;
		c->fd[0] = -1;
		c->fd[1] = ufd;
		c->lfd = l->fd;
		c->client = from;
		r->c = xrealloc(r->c, (r->n_c + 1) * sizeof(*r->c));
		r->c[r->n_c++] = c;
	}
	c->last = time(NULL);
	send(c->fd[1], buf, (size_t)n, MSG_DONTWAIT);
}

static void udp_back(struct relay_conn *c)
{
	uint8_t buf[65536];
	ssize_t n = recv(c->fd[1], buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0)
		return;
	c->last = time(NULL);
	sendto(c->lfd, buf, (size_t)n, MSG_DONTWAIT,
	       (const struct sockaddr *)&c->client, sizeof(c->client));
}

/* Moves what is readable and writable on side k of a TCP connection;
 * false when the connection is over. */
static bool tcp_step(struct relay_conn *c, int k, short ev)
{
	if (k == 1 && c->connecting) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (!(ev & (POLLOUT | POLLERR | POLLHUP)))
			return true;
		if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &el) < 0 ||
		    err)
			return false;
		c->connecting = false;
		return true;
	}
	if (ev & POLLERR)
		return false;
	if ((ev & (POLLIN | POLLHUP)) && !c->eof[k] && !c->len[k]) {
		ssize_t n = recv(c->fd[k], c->buf[k], RELAY_BUF, MSG_DONTWAIT);
		if (n > 0) {
			c->len[k] = (size_t)n;
			c->off[k] = 0;
		} else if (n == 0) {
			c->eof[k] = true;
		} else if (errno != EAGAIN && errno != EINTR) {
			return false;
		}
	}
	int o = 1 - k;
	if ((ev & POLLOUT) && c->len[o]) {
		ssize_t n = send(c->fd[k], c->buf[o] + c->off[o],
				 c->len[o] - c->off[o],
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		if (n > 0 && (c->off[o] += (size_t)n) == c->len[o])
			c->len[o] = c->off[o] = 0;
	}
	/* A side that ended and whose bytes all went: end the other way. */
	for (int s = 0; s < 2; s++)
		if (c->eof[s] && !c->len[s] && !c->shut[s]) {
			shutdown(c->fd[1 - s], SHUT_WR);
			c->shut[s] = true;
		}
	return !(c->shut[0] && c->shut[1]);
}

void relay_handle(struct relay *r, const struct pollfd *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!p[i].revents)
			continue;
		bool done = false;
		for (size_t k = 0; k < r->n_l && !done; k++)
			if (r->l[k].fd == p[i].fd) {
				if (r->l[k].udp)
					udp_in(r, &r->l[k]);
				else
					tcp_accept(r, &r->l[k]);
				done = true;
			}
		for (size_t k = 0; k < r->n_c && !done; k++) {
			struct relay_conn *c = r->c[k];
			int side = c->fd[0] == p[i].fd	 ? 0
				   : c->fd[1] == p[i].fd ? 1
							 : -1;
			if (side < 0)
				continue;
			done = true;
			if (c->udp)
				udp_back(c);
			else if (!tcp_step(c, side, p[i].revents))
				conn_close(r, k);
		}
	}
}

void relay_tick(struct relay *r)
{
	time_t now = time(NULL);
	for (size_t i = r->n_c; i-- > 0;)
		if (r->c[i]->udp && now - r->c[i]->last > RELAY_UDP_IDLE)
			conn_close(r, i);
}
