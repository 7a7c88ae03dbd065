/* orch-runtime — run one container from the command line (tests, debugging,
 * benchmarks). */
#include "runtime/runtime.h"

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	log_init("orch-runtime");
	log_error("not yet");
	return 2;
}
