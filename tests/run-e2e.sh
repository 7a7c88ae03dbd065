#!/bin/sh
# Runs every end-to-end suite given (each enters its own namespaces); each
# suite ends with "N passed, N failed".  Prints the totals last.
passed=0 failed=0
for s in "$@"; do
	echo "== $s"
	out=$(mktemp)
	"$s" 2>&1 | tee "$out"
	rc=$?
	last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
	rm -f "$out"
	if [ -z "$last" ]; then
		echo "$s: ended without a summary"
		failed=$((failed + 1))
		continue
	fi
	p=${last%% passed*}
	f=${last#*, }
	f=${f%% failed}
	passed=$((passed + p))
	failed=$((failed + f))
done
echo "e2e tests: $passed passed, $failed failed"
[ $failed -eq 0 ]
