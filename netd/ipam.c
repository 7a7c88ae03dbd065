/* IPv4 address management: parsing, overlap, subnet and lease choice.
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
