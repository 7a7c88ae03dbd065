/* orch-supervisor — the per-project supervisor as a program of its own,
 * linked with only what it uses, so that what stays resident for a
 * project is small.  `orch` starts it; `orch __supervise` is the same
 * code inside orch, used when this program is not installed. */
#include "orchestrator/supervisor/supervisor.h"

int main(int argc, char **argv)
{
	return supervisor_program(argc, argv);
}
