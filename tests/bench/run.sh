#!/bin/sh
# Runs every benchmark tests/bench/bench_*.sh in turn.
set -u
cd "$(dirname "$0")/../.."
rc=0
for b in tests/bench/bench_*.sh; do
	[ -e "$b" ] || continue
	echo "== $b"
	"$b" || rc=1
done
exit $rc
