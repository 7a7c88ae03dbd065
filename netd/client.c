/* netd client library (linked by orch). */
#include "netd/netd.h"
