#!/bin/sh
# Runs every end-to-end suite given, one after the other (each enters its
# own namespaces, see e2e/lib.sh), each within E2E_TIMEOUT seconds (600).
# A suite passes when it reaches its end ("N passed, N failed" from
# `finish`), exits 0 and printed a line for every check it counted.  A
# suite that fails or stops early (error, signal, time limit) is named in
# the closing lines, and one that did not reach its end counts as one
# failed check more.  The last line is "e2e: N passed, N failed".
limit=${E2E_TIMEOUT:-600}
expected=$# ran=0 good=0 passed=0 failed=0
report=""
stop=""
tmp=$(mktemp -d /tmp/orch-run-e2e.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'stop=SIGINT' INT
trap 'stop=SIGTERM' TERM
trap 'stop=SIGHUP' HUP

# run_suite SUITE: runs it under timeout (its own process group, so a
# terminal's ^C reaches it only through here) and writes its exit status
# to $tmp/rc.  A signal to the runner ends the suite the same way a time
# limit does: SIGTERM, which the suite turns into its clean-up.
run_suite() {
	timeout -k 30 "$limit" "$1" 2>&1 &
	tp=$!
	trap 'kill -TERM $tp 2>/dev/null' INT TERM HUP
	while :; do
		wait $tp
		rc=$?
		kill -0 $tp 2>/dev/null || break
	done
	echo "$rc" >"$tmp/rc"
}

# note SUITE REASON: a suite that did not pass, for the closing lines.
note() {
	report="$report
FAILED $1: $2"
}

for s in "$@"; do
	[ -n "$stop" ] && break
	echo "== $s"
	ran=$((ran + 1))
	start=$(date +%s)
	# tee outlives a ^C or SIGTERM, to show the suite's last words.
	run_suite "$s" | (trap '' INT TERM HUP && exec tee "$tmp/out")
	rc=$(cat "$tmp/rc" 2>/dev/null || echo 255)
	took=$(($(date +%s) - start))
	oks=$(grep -c '^ok - ' "$tmp/out")
	notoks=$(grep -c '^not ok - ' "$tmp/out")
	last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/out" | tail -1)
	if [ -z "$last" ]; then
		if [ -n "$stop" ]; then
			why="stopped by $stop"
		elif [ "$took" -ge "$limit" ]; then
			why="timed out after $limit s"
		elif [ "$rc" -gt 128 ]; then
			why="killed by signal $((rc - 128))"
		else
			why="exit $rc"
		fi
		note "$s" "ended early ($why) after $((oks + notoks)) checks, $notoks not ok"
		passed=$((passed + oks))
		failed=$((failed + notoks + 1))
		continue
	fi
	p=${last%% passed*}
	f=${last#*, }
	f=${f%% failed}
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$oks" -ne "$p" ] || [ "$notoks" -ne "$f" ]; then
		note "$s" "counted $p passed and $f failed but printed $oks ok and $notoks not ok lines (a check's line was hidden)"
		failed=$((failed + 1))
	elif [ "$f" -gt 0 ]; then
		note "$s" "$f of $((p + f)) checks failed"
	elif [ "$rc" -ne 0 ]; then
		note "$s" "exit $rc after its summary"
		failed=$((failed + 1))
	else
		good=$((good + 1))
	fi
done
echo "== e2e summary"
[ -n "$report" ] && printf '%s\n' "${report#?}"
if [ "$ran" -lt "$expected" ]; then
	echo "stopped by ${stop:-the runner}: $((expected - ran)) suites not run"
	failed=$((failed + expected - ran))
fi
echo "e2e suites: $expected expected, $ran ran, $good passed, $((ran - good)) did not"
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$good" -eq "$expected" ]
