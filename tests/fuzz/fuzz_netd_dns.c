/* Fuzzes netd's DNS query path: any datagram from any source address. */
#include "netd/netd-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *none[] = {NULL};
static char *aliases[] = {"www", "Front.Door", NULL};
static struct netd_endpoint eps[] = {
    {"c1", "p-web-1", "web", aliases, "10.210.0.2", 24, "10.210.0.1", "eth0",
     "ov-1", true, NULL, "", 0, "", NULL},
    {"c2", "p-db-1", "db", none, "10.210.0.3", 24, "10.210.0.1", "eth0", "ov-2",
     true, NULL, "", 0, "", NULL},
};
static struct netd_endpoint eps2[] = {
    {"c3", "q-x-1", "x", none, "10.210.1.2", 24, "10.210.1.1", "eth0", "ov-3",
     true, NULL, "", 0, "", NULL},
};
static struct netd_network nets[] = {
    {"aa", "p_front", "p", "ob-aa", "10.210.0.0/24", "10.210.0.1", false, false,
     0, none, eps, 2, NULL, 0, NULL, 0, "", ""},
    {"bb", "q_net", "q", "ob-bb", "10.210.1.0/24", "10.210.1.1", false, true, 0,
     none, eps2, 1, NULL, 0, NULL, 0, "", ""},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct netd_state st = {.nets = nets, .n_nets = 2};
	/* The first byte picks the asker (by its address, as text): a known
	 * endpoint or a stranger. */
	static const char *const askers[] = {"10.210.0.2", "10.210.0.3",
					     "10.210.1.2", "127.0.0.1"};
	const char *asker = askers[data[0] % 4];
	uint8_t *reply = NULL;
	size_t len = 0;
	if (dns_answer(&st, asker, data + 1, size - 1, &reply, &len) ==
		DNS_ANSWER &&
	    (!reply || len < 12))
		__builtin_trap();
	free(reply);
	return 0;
}
