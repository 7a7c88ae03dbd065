/* nspool: network namespaces made while netd is idle, handed to root's
 * `up` for its containers (netns.take).  A namespace is made with lo up
 * and nothing else; it is someone's once taken, never reused: netd holds
 * only those no one has had. */
#include "netd/netd-int.h"

#include <jansson.h>

int nspool_take(struct nspool *p)
{
	if (p->asked < NSPOOL_MAX)
		p->asked++;
	return p->n ? p->fd[--p->n] : -1;
}

bool nspool_wants(const struct nspool *p)
{
	return !p->off && (p->asked || p->n < p->target);
}

void nspool_fill_one(struct nspool *p)
{
	if (p->asked) {
		/* The burst is over: the next is likely its size. */
		p->target = p->asked;
		p->asked = 0;
		while (p->n > p->target)
			close(p->fd[--p->n]);
	}
	if (p->off || p->n >= p->target)
		return;
	struct orch_err e = {0};
	int fd = netns_make(&e);
	if (fd < 0) {
		log_warn("making network namespaces ahead: %s; containers "
			 "will make their own",
			 e.msg);
		p->off = true;
		return;
	}
	p->fd[p->n++] = fd;
}

void nspool_clear(struct nspool *p)
{
	while (p->n)
		close(p->fd[--p->n]);
}

/* {} -> {"netns": bool}, the namespace's fd along. */
int op_netns_take(struct server *s, struct call *c, json_t **res)
{
	/* Made by root in the host's user namespace: only root's
	 * containers may have one (a user's are its own user
	 * namespace's). */
	if (c->uid != 0)
		return err_set(c->e, EPERM,
			       "netns.take: only root's containers take "
			       "network namespaces from netd");
	c->reply_fd = nspool_take(&s->pool);
	*res = json_pack("{s:b}", "netns", c->reply_fd >= 0);
	return 0;
}
