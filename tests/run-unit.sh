#!/bin/sh
# Runs every cmocka test binary given; prints the totals last.
passed=0 failed=0 broken=0
for t in "$@"; do
	out=$("$t" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -E '^\[  (FAILED|PASSED|  ERROR) \]|^\[  FAILED  \]|^\[  PASSED  \]' | sed "s|^|$(basename "$(dirname "$t")")/$(basename "$t"): |"
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
	passed=$((passed + p))
	failed=$((failed + f))
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
		printf '%s\n' "$out" | tail -20
		echo "$t: exited $rc"
		broken=$((broken + 1))
	fi
done
failed=$((failed + broken))
echo "unit tests: $passed passed, $failed failed"
[ $failed -eq 0 ]
