/* netd — the host's network daemon. */
#include "netd/netd.h"

int main(void)
{
	log_init("netd");
	log_error("not yet");
	return 2;
}
