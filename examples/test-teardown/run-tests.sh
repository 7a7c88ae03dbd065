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
t() { if "$@" >/dev/null 2>&1; then passed=$((passed + 1)); echo "ok - $1"; else failed=$((failed + 1)); echo "not ok - $1"; fi; }
seed_is_served() { compose exec -T client wget -q -O - http://store:9000/seed; }
seed_has_content() { [ "$(compose exec -T client wget -q -O - http://store:9000/seed)" = seeded ]; }
missing_is_404() { ! compose exec -T client wget -q -O - http://store:9000/missing; }
t seed_is_served
t seed_has_content
t missing_is_404
echo "$passed passed, $failed failed"
exit $failed
