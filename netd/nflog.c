/* The packets link-only refuses, as the kernel reports them: the refusal
 * rules log to an NFLOG group (nftables `log group`), and netd reads that
 * group on a netfilter netlink socket.  Only the first bytes of each
 * packet are copied (the IP header and the ports). */
#include "netd/netd-int.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* Enough for an IPv4 header with options and the ports after it. */
#define COPY_RANGE 96

/* One configuration message: a command or a copy mode for the group. */
static int nflog_config(int fd, uint16_t group, uint16_t type, const void *data,
			uint16_t len, struct orch_err *e)
{
	char buf[NLMSG_SPACE(sizeof(struct nfgenmsg) + NFA_SPACE(16))] = {0};
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	nh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
	nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	struct nfgenmsg *g = NLMSG_DATA(nh);
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = htons(group);
	struct nlattr *a =
	    (struct nlattr *)((char *)g + NLMSG_ALIGN(sizeof(*g)));
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	memcpy((char *)a + NLA_HDRLEN, data, len);
	nh->nlmsg_len =
	    NLMSG_LENGTH(NLMSG_ALIGN(sizeof(*g)) + NLA_ALIGN(a->nla_len));
	struct sockaddr_nl to = {.nl_family = AF_NETLINK};
	if (sendto(fd, buf, nh->nlmsg_len, 0, (struct sockaddr *)&to,
		   sizeof(to)) < 0)
		return err_sys(e, errno, "configuring NFLOG group %u", group);
	char ack[256];
	ssize_t n = RETRY_EINTR(recv(fd, ack, sizeof(ack), 0));
	if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)))
		return err_sys(e, n < 0 ? errno : EIO,
			       "configuring NFLOG group %u", group);
	struct nlmsghdr *rh = (struct nlmsghdr *)ack;
	if (rh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *err = NLMSG_DATA(rh);
		if (err->error)
			return err_sys(e, -err->error,
				       "configuring NFLOG group %u", group);
	}
	return 0;
}

int nflog_open(uint16_t group, int *out, struct orch_err *e)
{
	_cleanup_close_ int fd =
	    socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0)
		return err_sys(e, errno, "opening a netfilter netlink socket");
	struct sockaddr_nl me = {.nl_family = AF_NETLINK};
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0)
		return err_sys(e, errno, "binding a netfilter netlink socket");
	struct nfulnl_msg_config_cmd bind_cmd = {.command =
						     NFULNL_CFG_CMD_BIND};
	struct nfulnl_msg_config_mode mode = {
	    .copy_range = htonl(COPY_RANGE),
	    .copy_mode = NFULNL_COPY_PACKET,
	};
	int r = nflog_config(fd, group, NFULA_CFG_CMD, &bind_cmd,
			     sizeof(bind_cmd), e);
	if (r == 0)
		r = nflog_config(fd, group, NFULA_CFG_MODE, &mode, sizeof(mode),
				 e);
	if (r < 0)
		return r;
	/* Reads never block the daemon's loop; a burst beyond the socket's
	 * buffer is dropped by the kernel (the rules are rate-limited too). */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return err_sys(e, errno,
			       "making the NFLOG socket non-blocking");
	*out = move_fd(fd);
	return 0;
}

bool nflog_parse_ip(const uint8_t *p, size_t len, struct nflog_packet *out)
{
	size_t hl;
	bool first = true;
	if (len >= 40 && (p[0] >> 4) == 6) {
		/* IPv6: the next header right after the fixed one is the
		 * transport (containers send no extension headers here; any
		 * other gets no port). */
		hl = 40;
		out->proto = p[6];
		inet_ntop(AF_INET6, p + 8, out->src, sizeof(out->src));
		inet_ntop(AF_INET6, p + 24, out->dst, sizeof(out->dst));
	} else if (len >= 20 && (p[0] >> 4) == 4) {
		hl = (size_t)(p[0] & 0x0f) * 4;
		if (hl < 20 || len < hl)
			return false;
		out->proto = p[9];
		inet_ntop(AF_INET, p + 12, out->src, sizeof(out->src));
		inet_ntop(AF_INET, p + 16, out->dst, sizeof(out->dst));
		/* Ports only in a first fragment (offset 0). */
		first = (((p[6] & 0x1f) << 8) | p[7]) == 0;
	} else {
		return false;
	}
	out->dport = 0;
	if ((out->proto == IPPROTO_TCP || out->proto == IPPROTO_UDP) && first &&
	    len >= hl + 4)
		out->dport = (unsigned)((p[hl + 2] << 8) | p[hl + 3]);
	return true;
}

size_t nflog_read(int fd, struct nflog_packet *out, size_t max)
{
	char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	size_t got = 0;
	while (got < max) {
		ssize_t n = RETRY_EINTR(recv(fd, buf, sizeof(buf), 0));
		if (n <= 0)
			break;
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf;
		     NLMSG_OK(nh, (size_t)n) && got < max;
		     nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_type !=
			    ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET))
				continue;
			size_t off = NLMSG_ALIGN(sizeof(struct nfgenmsg));
			size_t plen = NLMSG_PAYLOAD(nh, 0);
			const char *data = NLMSG_DATA(nh);
			struct nflog_packet pkt = {0};
			bool ip = false;
			while (off + NLA_HDRLEN <= plen) {
				const struct nlattr *a =
				    (const struct nlattr *)(data + off);
				if (a->nla_len < NLA_HDRLEN ||
				    off + a->nla_len > plen)
					break;
				const uint8_t *v =
				    (const uint8_t *)a + NLA_HDRLEN;
				size_t vlen = a->nla_len - NLA_HDRLEN;
				switch (a->nla_type & NLA_TYPE_MASK) {
				case NFULA_PREFIX:
					snprintf(
					    pkt.prefix, sizeof(pkt.prefix),
					    "%.*s",
					    (int)strnlen((const char *)v, vlen),
					    (const char *)v);
					break;
				case NFULA_PAYLOAD:
					ip = nflog_parse_ip(v, vlen, &pkt);
					break;
				}
				off += NLA_ALIGN(a->nla_len);
			}
			if (ip && pkt.prefix[0])
				out[got++] = pkt;
		}
	}
	return got;
}
