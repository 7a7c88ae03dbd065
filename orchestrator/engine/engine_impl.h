/* Private to orchestrator/engine/: what its files share beyond the
 * public engine.h. */
#ifndef ORCH_ENGINE_IMPL_H
#define ORCH_ENGINE_IMPL_H

#include "orchestrator/engine/engine.h"

/* ---- reconcile.c and teardown.c ------------------------------------------ */

/* One request (consumed) to the supervisor, its reply dropped. */
int call_simple(struct pstate *ps, json_t *req, struct orch_err *e);
/* Removes the network namespaces and netd objects of the project that no
 * container record names (what a crash between the two left). */
void sweep_unrecorded(struct pstate *ps);
/* Finishes the removals an interrupted command began (records marked
 * "removing"), so that they are created anew. */
int finish_removals(struct pstate *ps, struct orch_err *e);

#endif
