#!/bin/sh
# Runs N copies (default 2) of `make check` at the same time on this
# machine, each from its own fresh clone of this repository's HEAD, and
# reports each verdict.  Passes when every copy passes: the suites of one
# copy must never see the containers, networks, processes or cgroups of
# another.  Not part of `make check`; needs root, as `make check` does.
#   tests/parallel-check.sh [N]
# The Debian base tarball that the build tests debootstrap once is copied
# from this tree's build/ when it is there (PARALLEL_CHECK_SEED=0: each
# clone makes its own).  The clones are made under /tmp/orch-parallel.*
# and removed at the end; their logs stay there.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-2}
rev=$(git -C "$top" rev-parse HEAD) || exit 2
work=$(mktemp -d /tmp/orch-parallel.XXXXXX)
echo "parallel-check: $n copies of make check at $(git -C "$top" log -1 --format='%h %s' "$rev" | cut -c1-72)"
echo "parallel-check: clones and logs in $work"

i=1
while [ "$i" -le "$n" ]; do
	git clone -q --no-checkout "$top" "$work/c$i" && git -C "$work/c$i" checkout -q --detach "$rev" || exit 2
	tar=$top/build/debian-bookworm.tar
	if [ "${PARALLEL_CHECK_SEED:-1}" != 0 ] && [ -s "$tar" ]; then
		mkdir -p "$work/c$i/build"
		cp "$tar" "$work/c$i/build/" && touch "$work/c$i/build/debian-bookworm.tar"
	fi
	i=$((i + 1))
done

start=$(date +%s)
i=1
while [ "$i" -le "$n" ]; do
	(
		cd "$work/c$i" || exit 2
		make check >"$work/c$i.log" 2>&1
		echo $? >"$work/c$i.rc"
	) &
	i=$((i + 1))
done
wait
took=$(($(date +%s) - start))

failed=0
i=1
while [ "$i" -le "$n" ]; do
	rc=$(cat "$work/c$i.rc" 2>/dev/null || echo 255)
	[ "$rc" -eq 0 ] && verdict=passed || verdict="FAILED (exit $rc)"
	[ "$rc" -eq 0 ] || failed=$((failed + 1))
	echo "== copy $i: make check $verdict"
	# The closing lines of unit and e2e: totals and what did not pass.
	grep -E '^(unit|e2e)( suites)?: |^FAILED |^stopped by |^suite ended early' "$work/c$i.log" | sed 's/^/   /'
	i=$((i + 1))
done
echo "parallel-check: $((n - failed)) of $n copies passed, in $took s"
i=1
while [ "$i" -le "$n" ]; do
	rm -rf "$work/c$i"
	i=$((i + 1))
done
echo "parallel-check: logs in $work/c*.log"
[ "$failed" -eq 0 ]
