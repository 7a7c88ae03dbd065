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
static uint32_t next_seq;

void set_batch_release(void)
{
	if (sock)
		nl_socket_free(sock);
	sock = NULL;
}

static struct nl_msg *msg_new(int type, int flags, int family, uint16_t res)
{
	struct nl_msg *m = nlmsg_alloc_simple(type, NLM_F_REQUEST | flags);
	struct nfgenmsg g = {.nfgen_family = (uint8_t)family,
			     .version = NFNETLINK_V0,
			     .res_id = htons(res)};
	if (!m || nlmsg_append(m, &g, sizeof(g), NLMSG_ALIGNTO) < 0)
		abort();
	return m;
}

static void msg_take(struct set_batch *b, struct nl_msg *m)
{
	struct nlmsghdr *h = nlmsg_hdr(m);
	sb_add(&b->msgs, h, NLMSG_ALIGN(h->nlmsg_len));
	b->n++;
	nlmsg_free(m);
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

void set_batch_flush(struct set_batch *b, const char *set)
{
	/* A deletion that names no element empties the set. */
	msg_take(b, setelem_msg(NFT_MSG_DELSETELEM, 0, set));
}

/* Elements per message: keeps each message far below a page multiple
 * the kernel would have to allocate in one piece. */
#define ELEMS_PER_MSG 256

void set_batch_elems(struct set_batch *b, bool add, const char *set,
		     const void *keys, size_t key_len, size_t n)
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
		msg_take(b, m);
	}
}

void set_batch_free(struct set_batch *b)
{
	sb_free(&b->msgs);
	b->n = 0;
}

static int open_socket(struct orch_err *e)
{
	if (sock)
		return 0;
	sock = nl_socket_alloc();
	if (!sock)
		abort();
	nl_socket_disable_seq_check(sock);
	int r = nl_connect(sock, NETLINK_NETFILTER);
	if (r < 0) {
		set_batch_release();
		return err_set(e, EIO, "updating nftables: connecting: %s",
			       nl_geterror(r));
	}
	int fd = nl_socket_get_fd(sock), one = 1;
	/* Errors without a copy of the (possibly long) request. */
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	nl_socket_set_nonblocking(sock);
	return 0;
}

/* The kernel answers a batch while it is being sent: every message's
 * acknowledgement (or the first error) is queued when send returns. */
static int read_acks(unsigned expected, struct orch_err *e)
{
	unsigned acks = 0;
	int err = 0;
	for (;;) {
		unsigned char *buf = NULL;
		struct sockaddr_nl peer;
		int len = nl_recv(sock, &peer, &buf, NULL);
		if (len == -NLE_AGAIN || len == 0)
			break;
		if (len < 0)
			return err_set(
			    e, EIO, "updating nftables: reading the answer: %s",
			    nl_geterror(len));
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		for (; nlmsg_ok(h, len); h = nlmsg_next(h, &len)) {
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			struct nlmsgerr *me = nlmsg_data(h);
			if (me->error && !err)
				err = -me->error;
			acks++;
		}
		free(buf);
	}
	if (err)
		return err_sys(e, err, "updating nftables table inet orch");
	if (acks < expected)
		return err_set(e, EIO,
			       "updating nftables table inet orch: %u of %u "
			       "changes answered",
			       acks, expected);
	return 0;
}

int set_batch_commit(struct set_batch *b, struct orch_err *e)
{
	if (!b->n)
		return 0;
	int r = open_socket(e);
	if (r < 0)
		return r;
	struct strbuf all;
	sb_init(&all);
	struct nl_msg *m =
	    msg_new(NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
	struct nlmsghdr *h = nlmsg_hdr(m);
	sb_add(&all, h, NLMSG_ALIGN(h->nlmsg_len));
	nlmsg_free(m);
	sb_add(&all, b->msgs.buf, b->msgs.len);
	m = msg_new(NFNL_MSG_BATCH_END, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
	h = nlmsg_hdr(m);
	sb_add(&all, h, NLMSG_ALIGN(h->nlmsg_len));
	nlmsg_free(m);
	for (size_t off = 0; off < all.len;) {
		h = (struct nlmsghdr *)(all.buf + off);
		h->nlmsg_seq = ++next_seq;
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	r = nl_sendto(sock, all.buf, all.len);
	sb_free(&all);
	if (r < 0) {
		set_batch_release();
		return err_set(e, r == -NLE_MSGSIZE ? EMSGSIZE : EIO,
			       "updating nftables table inet orch: sending: %s",
			       nl_geterror(r));
	}
	r = read_acks(b->n, e);
	if (r < 0)
		set_batch_release(); /* no stale answers for the next one */
	return r;
}
