/* IPv4 and IPv6 address management: parsing, overlap, subnet and lease choice.
 * Pure (no I/O), so every rule is unit-tested. */
#include "netd/netd-int.h"

#include <arpa/inet.h>

static uint32_t mask_of(int prefix)
{
	return prefix <= 0 ? 0 : (uint32_t)(0xffffffffu << (32 - prefix));
}

int ipam_parse_addr(const char *s, uint32_t *out)
{
	struct in_addr in;
	if (!s || inet_pton(AF_INET, s, &in) != 1)
		return -EINVAL;
	*out = ntohl(in.s_addr);
	return 0;
}

void ipam_format_addr(uint32_t a, char out[16])
{
	struct in_addr in = {.s_addr = htonl(a)};
	inet_ntop(AF_INET, &in, out, 16);
}

char *ipam_format_cidr(struct cidr c)
{
	char a[16];
	ipam_format_addr(c.addr, a);
	return xasprintf("%s/%d", a, c.prefix);
}

int ipam_parse_cidr(const char *s, struct cidr *out, struct orch_err *e)
{
	const char *slash = strchr(s, '/');
	if (!slash || slash - s > 15)
		return err_set(e, EINVAL,
			       "subnet \"%.64s\": expected A.B.C.D/N", s);
	char a[16];
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = '\0';
	char *end;
	errno = 0;
	long p = strtol(slash + 1, &end, 10);
	if (ipam_parse_addr(a, &out->addr) < 0 || !slash[1] || *end || errno ||
	    p < 0 || p > 32)
		return err_set(e, EINVAL,
			       "subnet \"%.64s\": expected A.B.C.D/N", s);
	out->prefix = (int)p;
	if (out->addr & ~mask_of(out->prefix))
		return err_set(e, EINVAL,
			       "subnet \"%.64s\": host bits are set (did you "
			       "mean the network address?)",
			       s);
	return 0;
}

bool ipam_contains(struct cidr net, uint32_t addr)
{
	return (addr & mask_of(net.prefix)) == net.addr;
}

bool ipam_overlap(struct cidr a, struct cidr b)
{
	int p = a.prefix < b.prefix ? a.prefix : b.prefix;
	return (a.addr & mask_of(p)) == (b.addr & mask_of(p));
}

bool ipam_host_valid(struct cidr net, uint32_t addr)
{
	if (!ipam_contains(net, addr))
		return false;
	if (net.prefix >= 31)
		return true;
	uint32_t host = addr & ~mask_of(net.prefix);
	return host != 0 && host != ~mask_of(net.prefix);
}

int ipam_subnet_next(struct cidr pool, int subnet_prefix,
		     const struct cidr *taken, size_t n_taken, struct cidr *out)
{
	if (subnet_prefix < pool.prefix || subnet_prefix > 30)
		return -EINVAL;
	uint64_t count = 1ull << (subnet_prefix - pool.prefix);
	uint64_t step = 1ull << (32 - subnet_prefix);
	for (uint64_t i = 0; i < count; i++) {
		struct cidr c = {(uint32_t)(pool.addr + i * step),
				 subnet_prefix};
		bool free_ = true;
		for (size_t j = 0; j < n_taken && free_; j++)
			if (ipam_overlap(c, taken[j]))
				free_ = false;
		if (free_) {
			*out = c;
			return 0;
		}
	}
	return -ENOSPC;
}

int ipam_lease_next(struct cidr net, const uint32_t *used, size_t n_used,
		    uint32_t *out)
{
	uint64_t size = 1ull << (32 - net.prefix);
	for (uint64_t i = 1; i < size; i++) {
		uint32_t a = (uint32_t)(net.addr + i);
		if (!ipam_host_valid(net, a))
			continue;
		bool taken = false;
		for (size_t j = 0; j < n_used && !taken; j++)
			taken = used[j] == a;
		if (!taken) {
			*out = a;
			return 0;
		}
	}
	return -ENOSPC;
}

/* ---- IPv6 --------------------------------------------------------------- */

/* Bit i (0 = most significant) of a. */
static int bit6(const uint8_t a[16], int i)
{
	return (a[i / 8] >> (7 - i % 8)) & 1;
}

int ipam6_parse_addr(const char *s, uint8_t out[16])
{
	struct in6_addr in;
	if (!s || inet_pton(AF_INET6, s, &in) != 1)
		return -EINVAL;
	memcpy(out, in.s6_addr, 16);
	return 0;
}

void ipam6_format_addr(const uint8_t a[16], char out[INET6_ADDRSTRLEN])
{
	inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN);
}

char *ipam6_format_cidr(const struct cidr6 *c)
{
	char a[INET6_ADDRSTRLEN];
	ipam6_format_addr(c->addr, a);
	return xasprintf("%s/%d", a, c->prefix);
}

int ipam6_parse_cidr(const char *s, struct cidr6 *out, struct orch_err *e)
{
	const char *slash = strchr(s, '/');
	char a[INET6_ADDRSTRLEN];
	if (!slash || (size_t)(slash - s) >= sizeof(a))
		return err_set(e, EINVAL, "subnet \"%.64s\": expected an IPv6 "
				       "prefix such as fd00:1::/64", s);
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = '\0';
	char *end;
	errno = 0;
	long p = strtol(slash + 1, &end, 10);
	if (ipam6_parse_addr(a, out->addr) < 0 || !slash[1] || *end || errno ||
	    p < 0 || p > 128)
		return err_set(e, EINVAL, "subnet \"%.64s\": expected an IPv6 "
				       "prefix such as fd00:1::/64", s);
	out->prefix = (int)p;
	for (int i = out->prefix; i < 128; i++)
		if (bit6(out->addr, i))
			return err_set(e, EINVAL,
				       "subnet \"%.64s\": host bits are set "
				       "(did you mean the network address?)",
				       s);
	return 0;
}

static bool same_prefix6(const uint8_t a[16], const uint8_t b[16], int bits)
{
	int whole = bits / 8;
	if (memcmp(a, b, (size_t)whole) != 0)
		return false;
	if (bits % 8 == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - bits % 8));
	return (a[whole] & mask) == (b[whole] & mask);
}

bool ipam6_contains(const struct cidr6 *net, const uint8_t a[16])
{
	return same_prefix6(net->addr, a, net->prefix);
}

bool ipam6_overlap(const struct cidr6 *a, const struct cidr6 *b)
{
	return same_prefix6(a->addr, b->addr,
			    a->prefix < b->prefix ? a->prefix : b->prefix);
}

bool ipam6_host_valid(const struct cidr6 *net, const uint8_t a[16])
{
	if (!ipam6_contains(net, a))
		return false;
	/* The all-zeros host is the subnet-router anycast address. */
	for (int i = net->prefix; i < 128; i++)
		if (bit6(a, i))
			return true;
	return net->prefix >= 127;
}

/* Adds v to a in units of its bit end - 1: the v-th next /end prefix
 * (end = 64) or the v-th next address (end = 128), carrying upwards. */
static void add6(uint8_t a[16], uint64_t v, int end)
{
	int byte = (end - 1) / 8;
	unsigned sh = (unsigned)(7 - (end - 1) % 8);
	unsigned __int128 add = (unsigned __int128)v << sh;
	for (int i = byte; i >= 0 && add; i--) {
		unsigned __int128 sum = (unsigned __int128)a[i] + (add & 0xff);
		a[i] = (uint8_t)sum;
		add = (add >> 8) + (sum >> 8);
	}
}

int ipam6_subnet_next(const struct cidr6 *pool, int subnet_prefix,
		      const struct cidr6 *taken, size_t n_taken,
		      struct cidr6 *out)
{
	if (subnet_prefix < pool->prefix || subnet_prefix > 120)
		return -EINVAL;
	/* At most 65,536 candidates: a pool is a /48 of /64s. */
	int bits = subnet_prefix - pool->prefix;
	uint64_t count = 1ull << (bits > 16 ? 16 : bits);
	for (uint64_t i = 0; i < count; i++) {
		struct cidr6 c = {.prefix = subnet_prefix};
		memcpy(c.addr, pool->addr, 16);
		add6(c.addr, i, subnet_prefix);
		bool free_ = true;
		for (size_t j = 0; j < n_taken && free_; j++)
			if (ipam6_overlap(&c, &taken[j]))
				free_ = false;
		if (free_) {
			*out = c;
			return 0;
		}
	}
	return -ENOSPC;
}

int ipam6_lease_next(const struct cidr6 *net, const uint8_t (*used)[16],
		     size_t n_used, uint8_t out[16])
{
	/* Hosts 1, 2, ...: one of the first n_used + 1 is free when the
	 * subnet is that large. */
	for (uint64_t i = 1; i <= n_used + 1; i++) {
		uint8_t a[16];
		memcpy(a, net->addr, 16);
		add6(a, i, 128);
		if (!ipam6_host_valid(net, a))
			return -ENOSPC;
		bool taken = false;
		for (size_t j = 0; j < n_used && !taken; j++)
			taken = memcmp(used[j], a, 16) == 0;
		if (!taken) {
			memcpy(out, a, 16);
			return 0;
		}
	}
	return -ENOSPC;
}
