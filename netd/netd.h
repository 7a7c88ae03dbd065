/* netd — the host's network daemon: its wire protocol and client library.
 * This is the part's one public header. */
#ifndef ORCH_NETD_H
#define ORCH_NETD_H

#include "common/common.h"

#endif
