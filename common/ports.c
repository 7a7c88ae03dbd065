/* The host ports this network namespace's sockets hold, from its socket
 * tables: a long range of ports is checked in one pass instead of one
 * bind() per port. */
#include "common/common.h"

#include <stdio.h>

static void ports_in_table(const char *file, uint8_t *bits)
{
	_cleanup_free_ char *path = xasprintf("/proc/net/%s", file);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char line[512];
	if (!f || !fgets(line, sizeof(line), f))
		return;
	while (fgets(line, sizeof(line), f)) {
		char local[128];
		if (sscanf(line, "%*s %127s", local) != 1)
			continue;
		const char *colon = strrchr(local, ':');
		unsigned long port = colon ? strtoul(colon + 1, NULL, 16) : 0;
		if (port && port < 65536)
			bits[port / 8] |= (uint8_t)(1u << (port % 8));
	}
}

uint8_t *host_ports_held(bool udp)
{
	uint8_t *bits = xcalloc(65536 / 8, 1);
	ports_in_table(udp ? "udp" : "tcp", bits);
	ports_in_table(udp ? "udp6" : "tcp6", bits);
	return bits;
}
