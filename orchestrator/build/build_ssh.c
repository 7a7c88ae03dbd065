/* RUN --mount=type=ssh: the build's SSH agents reached through sockets of
 * the builder's own.  An agent answers only its own user (it checks its
 * peer's uid), which a remapped step is not: the step binds a socket in
 * the build's scratch directory, owned and moded as its mount asks, and a
 * thread of the builder relays each connection to the agent, as
 * BuildKit's session does.  The thread takes no lock a container's clone
 * could inherit held: no allocation once it runs. */
#include "orchestrator/build/builder_impl.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define SSH_MAX_SOCKS 16
#define SSH_MAX_CONNS 64

struct ssh_sock {
	int fd; /* listening */
	struct sockaddr_un agent;
	uid_t uid;
	gid_t gid;
	mode_t mode;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct ssh_relay {
	pthread_t thread;
	bool running;
	/* 'r': a socket was added (n_socks, stored last, is read again);
	 * 'x' ends the thread. */
	int wake[2];
	struct ssh_sock socks[SSH_MAX_SOCKS];
	size_t n_socks;
	int conn[SSH_MAX_CONNS][2]; /* the step's end, the agent's */
	size_t n_conns;
};

static void conn_drop(struct ssh_relay *r, size_t i)
{
	close(r->conn[i][0]);
	close(r->conn[i][1]);
	r->conn[i][0] = r->conn[r->n_conns - 1][0];
	r->conn[i][1] = r->conn[r->n_conns - 1][1];
	r->n_conns--;
}

static void accept_one(struct ssh_relay *r, const struct ssh_sock *s)
{
	int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	int a = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->n_conns == SSH_MAX_CONNS || a < 0 ||
	    connect(a, (const struct sockaddr *)&s->agent, sizeof(s->agent)) <
		0) {
		close(c);
		if (a >= 0)
			close(a);
		return;
	}
	r->conn[r->n_conns][0] = c;
	r->conn[r->n_conns][1] = a;
	r->n_conns++;
}

static void *relay_main(void *arg)
{
	struct ssh_relay *r = arg;
	struct pollfd p[1 + SSH_MAX_SOCKS + 2 * SSH_MAX_CONNS];
	for (;;) {
		size_t n = 0, n_socks = __atomic_load_n(&r->n_socks,
							 __ATOMIC_ACQUIRE);
		p[n++] = (struct pollfd){.fd = r->wake[0], .events = POLLIN};
		for (size_t i = 0; i < n_socks; i++)
			p[n++] = (struct pollfd){.fd = r->socks[i].fd,
						 .events = POLLIN};
		for (size_t i = 0; i < r->n_conns; i++)
			for (int k = 0; k < 2; k++)
				p[n++] = (struct pollfd){.fd = r->conn[i][k],
							 .events = POLLIN};
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (p[0].revents) {
			char c = 'x';
			if (RETRY_EINTR(read(r->wake[0], &c, 1)) != 1 || c == 'x')
				return NULL;
			continue;
		}
		/* Connections first, from the last: dropping one moves the
		 * last into its place, which was seen already. */
		for (size_t i = r->n_conns; i-- > 0;) {
			const struct pollfd *c = &p[1 + n_socks + 2 * i];
			bool ok = true;
			for (int k = 0; k < 2 && ok; k++)
				if (c[k].revents)
					ok = fd_pass(r->conn[i][k],
						     r->conn[i][1 - k]);
			if (!ok)
				conn_drop(r, i);
		}
		for (size_t i = 0; i < n_socks; i++)
			if (p[1 + i].revents)
				accept_one(r, &r->socks[i]);
	}
}

/* A listening socket at s->path, owned and moded as the step asks. */
static int sock_listen(struct ssh_sock *s, struct orch_err *e)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, s->path, sizeof(a.sun_path));
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return err_sys(e, errno, "creating a socket");
	if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    chown(s->path, s->uid, s->gid) < 0 || chmod(s->path, s->mode) < 0 ||
	    listen(s->fd, 16) < 0) {
		int r = err_sys(e, errno, "listening on %s", s->path);
		close(s->fd);
		s->fd = -1;
		return r;
	}
	return 0;
}

int build_ssh_sock(struct builder *b, const char *agent, uid_t uid, gid_t gid,
		   mode_t mode, const char **path, struct orch_err *e)
{
	if (!b->ssh) {
		b->ssh = xcalloc(1, sizeof(*b->ssh));
		b->ssh->wake[0] = b->ssh->wake[1] = -1;
	}
	struct ssh_relay *r = b->ssh;
	for (size_t i = 0; i < r->n_socks; i++) {
		const struct ssh_sock *s = &r->socks[i];
		if (streq(s->agent.sun_path, agent) && s->uid == uid &&
		    s->gid == gid && s->mode == mode) {
			*path = s->path;
			return 0;
		}
	}
	if (r->n_socks == SSH_MAX_SOCKS)
		return err_set(e, ENOSPC, "more than %d ssh mounts of "
					  "different agents or owners",
			       SSH_MAX_SOCKS);
	struct ssh_sock *s = &r->socks[r->n_socks];
	*s = (struct ssh_sock){.uid = uid, .gid = gid, .mode = mode,
			       .agent = {.sun_family = AF_UNIX}};
	int n = snprintf(s->path, sizeof(s->path), "%s/ssh-%zu.sock", b->tmp,
			 r->n_socks);
	if (n < 0 || (size_t)n >= sizeof(s->path) ||
	    strlen(agent) >= sizeof(s->agent.sun_path))
		return err_set(e, ENAMETOOLONG,
			       "the path of an ssh socket is too long");
	memcpy(s->agent.sun_path, agent, strlen(agent) + 1);
	int rc = sock_listen(s, e);
	if (rc < 0)
		return rc;
	if (!r->running) {
		if (pipe2(r->wake, O_CLOEXEC) < 0) {
			rc = err_sys(e, errno, "creating a pipe");
		} else if ((rc = pthread_create(&r->thread, NULL, relay_main,
						r)) != 0) {
			rc = err_sys(e, rc, "starting the ssh relay");
		} else {
			r->running = true;
		}
		if (rc < 0) {
			close(s->fd);
			return rc;
		}
	}
	/* Listed before the step that connects to it starts. */
	__atomic_store_n(&r->n_socks, r->n_socks + 1, __ATOMIC_RELEASE);
	if (RETRY_EINTR(write(r->wake[1], "r", 1)) != 1)
		return err_sys(e, errno, "waking the ssh relay");
	*path = s->path;
	return 0;
}

void build_ssh_stop(struct builder *b)
{
	struct ssh_relay *r = b->ssh;
	if (!r)
		return;
	if (r->running) {
		(void)RETRY_EINTR(write(r->wake[1], "x", 1));
		pthread_join(r->thread, NULL);
	}
	for (size_t i = 0; i < r->n_conns; i++) {
		close(r->conn[i][0]);
		close(r->conn[i][1]);
	}
	for (size_t i = 0; i < r->n_socks; i++)
		if (r->socks[i].fd >= 0)
			close(r->socks[i].fd);
	for (int k = 0; k < 2; k++)
		if (r->wake[k] >= 0)
			close(r->wake[k]);
	free(r);
	b->ssh = NULL;
}
