#!/bin/sh
# Runs every cmocka test binary given (the same tests built more than once,
# as build/tests/X and build/tests-asan/X) and counts each test once: it
# passes when every build ran it and none failed it.  A binary that stops
# before its end (a crash, a sanitizer's report) counts as one failure.
# The last line is "unit: N passed, N failed".
tmp=$(mktemp -d /tmp/orch-run-unit.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/results"
builds=""
for t in "$@"; do
	build=$(basename "$(dirname "$t")")
	name=$(basename "$t")
	case " $builds " in *" $build "*) ;; *) builds="$builds $build" ;; esac
	"$t" >"$tmp/out" 2>&1
	rc=$?
	grep -E '^\[  (PASSED|FAILED)  \] [0-9]+ test' "$tmp/out" | sed "s|^|$build/$name: |"
	# One line per test and build: "binary test build OK|FAILED|SKIPPED".
	sed -n -e 's/^\[       OK \] \(.*\)/\1 OK/p' -e 's/^\[  FAILED  \] \([^0-9].*\)/\1 FAILED/p' \
		-e 's/^\[  SKIPPED \] \(.*\)/\1 SKIPPED/p' "$tmp/out" |
		sort -u | awk -v b="$build" -v n="$name" '{print n, $1, b, $2}' >>"$tmp/results"
	if [ $rc -ne 0 ] && ! grep -qE '^\[  FAILED  \] [0-9]+ test' "$tmp/out" ||
		! grep -qE '^\[=+\] [0-9]+ test\(s\) run\.' "$tmp/out"; then
		tail -20 "$tmp/out"
		echo "$name - $build BROKEN" >>"$tmp/results"
		echo "$build/$name: exited $rc before its end"
	fi
done
nbuilds=$(echo $builds | wc -w)
# A test: passed when OK in every build, failed when failed or missing in
# one, skipped when no build ran it.
awk -v nb="$nbuilds" -v builds="$(echo $builds)" '
	$4 == "BROKEN" { broken[$1 " (" $3 ")"] = 1; next }
	{ id = $1 "/" $2; if (!(id in seen)) order[++n] = id; seen[id] = 1
	  if ($4 == "OK") ok[id]++; else if ($4 == "FAILED") bad[id] = bad[id] " " $3 }
	END {
		for (i = 1; i <= n; i++) {
			id = order[i]
			if (bad[id] != "") { f++; print "FAILED " id " (in" bad[id] ")" }
			else if (ok[id] == nb) p++
			else if (ok[id] == 0) s++
			else { f++; print "FAILED " id " (passed in " ok[id] " of " nb " builds)" }
		}
		for (b in broken) { f++; print "FAILED " b ": stopped before its end" }
		print "unit: " n " tests × " nb " builds (" builds ")" (s ? ", " s " skipped" : "")
		print "unit: " p + 0 " passed, " f + 0 " failed"
		exit f > 0
	}' "$tmp/results"
