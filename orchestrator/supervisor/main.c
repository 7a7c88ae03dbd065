/* orch-supervisor — the per-project supervisor as a program of its own,
 * linked with only what it uses, so that what stays resident for a
 * project is small.  `orch` starts it; `orch __supervise` is the same
 * code inside orch, used when this program is not installed. */
#include "orchestrator/engine/engine.h"
#include "orchestrator/supervisor/supervisor.h"

int main(int argc, char **argv)
{
	log_init("orch-supervisor");
	if (argc != 2 || !pstate_name_valid(argv[1])) {
		fprintf(stderr, "usage: orch-supervisor PROJECT\n");
		return 2;
	}
	return supervise_main(argv[1]);
}
