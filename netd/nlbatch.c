/* Several netlink requests in one send, and each one's answer.
 *
 * The kernel handles what a netlink socket sends to it while the send is
 * being made (rtnetlink request by request, nf_tables as one
 * transaction), so every answer is queued by the time send returns: one
 * send and a few reads replace a round trip per request. */
#include "netd/netd-int.h"

#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <sys/socket.h>

void nlb_add(struct nlb *b, struct nl_msg *m)
{
	struct nlmsghdr *h = nlmsg_hdr(m);
	h->nlmsg_flags |= NLM_F_REQUEST;
	sb_add(&b->msgs, h, NLMSG_ALIGN(h->nlmsg_len));
	b->n++;
	nlmsg_free(m);
}

void nlb_free(struct nlb *b)
{
	sb_free(&b->msgs);
	b->n = 0;
}

int nlb_send(struct nl_sock *sk, struct nlb *b, int *errs, struct orch_err *e)
{
	/* Sequence numbers of this process's own: answers to another batch
	 * (one abandoned on an error) are told apart. */
	static uint32_t last_seq;
	uint32_t first = last_seq + 1;
	unsigned acked = 0, answered = 0, i = 0;
	for (size_t off = 0; off < b->msgs.len; i++) {
		struct nlmsghdr *h = (struct nlmsghdr *)(b->msgs.buf + off);
		h->nlmsg_seq = ++last_seq;
		acked += (h->nlmsg_flags & NLM_F_ACK) != 0;
		errs[i] = 0;
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	int r = nl_sendto(sk, b->msgs.buf, b->msgs.len);
	if (r < 0)
		return err_set(e, r == -NLE_MSGSIZE ? EMSGSIZE : EIO,
			       "sending %u netlink requests: %s", b->n,
			       nl_geterror(r));
	static char buf[32768];
	for (;;) {
		ssize_t len =
		    recv(nl_socket_get_fd(sk), buf, sizeof(buf), MSG_DONTWAIT);
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (len <= 0)
			return err_sys(e, len < 0 ? errno : EIO,
				       "reading the answers to %u netlink "
				       "requests",
				       b->n);
		int rest = (int)len;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf;
		     nlmsg_ok(h, rest); h = nlmsg_next(h, &rest)) {
			uint32_t k = h->nlmsg_seq - first;
			if (h->nlmsg_type != NLMSG_ERROR || k >= b->n)
				continue;
			const struct nlmsgerr *me = nlmsg_data(h);
			errs[k] = me->error;
			answered++;
		}
	}
	if (answered < acked)
		return err_set(e, EIO, "%u of %u netlink requests answered",
			       answered, acked);
	return 0;
}
