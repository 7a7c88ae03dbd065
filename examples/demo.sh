#!/bin/sh
# make demo: runs the example stack.
echo "orch demo: not yet (the orchestrator does not exist yet)" >&2
exit 1
