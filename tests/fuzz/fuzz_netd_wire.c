/* Fuzzes netd's request decoder (what the daemon runs on every message)
 * and the object decoder the client runs on replies. */
#include "netd/netd.h"

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct orch_err e = {0};
	struct netd_request req;
	if (netd_request_decode(data, size, &req, &e) == 0)
		netd_request_clear(&req);
	else if (!e.msg[0])
		__builtin_trap(); /* every refusal says why */
	size_t len;
	free(netd_reply_err(&e, &len));
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	if (j) {
		struct netd_network n;
		struct netd_endpoint ep;
		if (netd_network_from_json(j, &n, &e) == 0)
			netd_network_clear(&n);
		if (netd_endpoint_from_json(j, &ep, &e) == 0)
			netd_endpoint_clear(&ep);
		json_decref(j);
	}
	return 0;
}
