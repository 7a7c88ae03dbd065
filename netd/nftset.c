/* Element changes to the sets of table inet orch, sent to the kernel as one
 * nf_tables netlink batch (one transaction) without libnftables.
 *
 * Every attach and detach changes its network's pair sets, and a link-only
 * stack of 200 services made 235 libnftables runs of one element each:
 * 266 us apiece in netd (median), most of it parsing the script and
 * filling the cache that each run after a commit rebuilds.  A batch of
 * binary elements is what that cache and parser end in. */
#include "netd/netd-int.h"

/* libc's netinet/in.h (through libnl) before linux/in.h */
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#define TABLE_NAME "orch"

static struct nl_sock *sock;

void nftset_release(void)
{
	if (sock)
		nl_socket_free(sock);
	sock = NULL;
}

static struct nl_msg *msg_new(int type, int flags, int family, uint16_t res)
{
	struct nl_msg *m = nlmsg_alloc_simple(type, flags);
	struct nfgenmsg g = {.nfgen_family = (uint8_t)family,
			     .version = NFNETLINK_V0,
			     .res_id = htons(res)};
	if (!m || nlmsg_append(m, &g, sizeof(g), NLMSG_ALIGNTO) < 0)
		abort();
	return m;
}

static struct nl_msg *setelem_msg(int cmd, int flags, const char *set)
{
	struct nl_msg *m = msg_new(NFNL_SUBSYS_NFTABLES << 8 | cmd,
				   NLM_F_ACK | flags, NFPROTO_INET, 0);
	if (nla_put_string(m, NFTA_SET_ELEM_LIST_TABLE, TABLE_NAME) < 0 ||
	    nla_put_string(m, NFTA_SET_ELEM_LIST_SET, set) < 0)
		abort();
	return m;
}

void nftset_flush(struct nlb *b, const char *set)
{
	/* A deletion that names no element empties the set. */
	nlb_add(b, setelem_msg(NFT_MSG_DELSETELEM, 0, set));
}

/* Elements per message: keeps each message far below a page multiple
 * the kernel would have to allocate in one piece. */
#define ELEMS_PER_MSG 256

void nftset_elems(struct nlb *b, bool add, const char *set, const void *keys,
		  size_t key_len, size_t n)
{
	for (size_t i = 0; i < n;) {
		struct nl_msg *m =
		    setelem_msg(add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
				add ? NLM_F_CREATE : 0, set);
		struct nlattr *list =
		    nla_nest_start(m, NFTA_SET_ELEM_LIST_ELEMENTS);
		for (size_t k = 0; k < ELEMS_PER_MSG && i < n; k++, i++) {
			struct nlattr *el = nla_nest_start(m, NFTA_LIST_ELEM);
			struct nlattr *key =
			    nla_nest_start(m, NFTA_SET_ELEM_KEY);
			if (!list || !el || !key ||
			    nla_put(m, NFTA_DATA_VALUE, (int)key_len,
				    (const char *)keys + i * key_len) < 0)
				abort();
			nla_nest_end(m, key);
			nla_nest_end(m, el);
		}
		nla_nest_end(m, list);
		nlb_add(b, m);
	}
}

static int open_socket(struct orch_err *e)
{
	if (sock)
		return 0;
	sock = nl_socket_alloc();
	if (!sock)
		abort();
	int r = nl_connect(sock, NETLINK_NETFILTER);
	if (r < 0) {
		nftset_release();
		return err_set(e, EIO, "updating nftables: connecting: %s",
			       nl_geterror(r));
	}
	/* Errors without a copy of the (possibly long) request. */
	int one = 1;
	setsockopt(nl_socket_get_fd(sock), SOL_NETLINK, NETLINK_CAP_ACK, &one,
		   sizeof(one));
	return 0;
}

int nftset_commit(struct nlb *b, struct orch_err *e)
{
	if (!b->n)
		return 0;
	int r = open_socket(e);
	if (r < 0)
		return r;
	/* The changes between a batch's begin and end: one transaction. */
	struct nlb all = {0};
	nlb_add(&all, msg_new(NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC,
			      NFNL_SUBSYS_NFTABLES));
	sb_add(&all.msgs, b->msgs.buf, b->msgs.len);
	all.n += b->n;
	nlb_add(&all, msg_new(NFNL_MSG_BATCH_END, 0, AF_UNSPEC,
			      NFNL_SUBSYS_NFTABLES));
	int *errs = xcalloc(all.n, sizeof(int));
	r = nlb_send(sock, &all, errs, e);
	for (unsigned i = 0; r == 0 && i < all.n; i++)
		if (errs[i])
			r = err_sys(e, -errs[i],
				    "updating nftables table inet orch");
	free(errs);
	nlb_free(&all);
	if (r < 0)
		nftset_release(); /* no stale answers for the next one */
	return r;
}
