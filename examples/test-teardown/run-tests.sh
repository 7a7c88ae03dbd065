#!/bin/sh
# A shell test runner in the style of a project's CI: bring the stack up,
# wait until it is healthy, run the tests against it, and always tear it
# down with its volumes.  Exits with the number of failed tests.
set -u
here=$(cd "$(dirname "$0")" && pwd)
orch=${ORCH:-orch}
compose() { "$orch" -f "$here/compose.yaml" "$@"; }

trap 'compose down -v -t 1 >/dev/null 2>&1' EXIT INT TERM
compose up -d --wait --wait-timeout 60 || { echo "stack did not come up"; exit 1; }

failed=0 passed=0
t() { if "$@" >/dev/null 2>&1; then passed=$((passed + 1)); echo "ok - $*"; else failed=$((failed + 1)); echo "not ok - $*"; fi; }
t compose exec -T client wget -q -O - http://store:9000/seed
t sh -c "compose exec -T client wget -q -O - http://store:9000/seed | grep -qx seeded"
t sh -c "! compose exec -T client wget -q -T 2 -O - http://store:9000/missing"
echo "$passed passed, $failed failed"
exit $failed
