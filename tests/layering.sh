#!/bin/sh
# The house's layering, checked from the #include lines of every source
# file under common/, netd/, runtime/ and orchestrator/ (tests/ may look
# inside any folder):
#  - a file includes another folder's public header only: the one named
#    after the folder (runtime/store/store.h), never a private one
#    (store_impl.h, netd-int.h);
#  - folders depend downwards only, in the order below: each folder may
#    include the public headers of folders of a lower layer, never of its
#    own layer or a higher one, so that there is no cycle;
#  - the runtime (runtime/ and its folders) and netd know nothing of each
#    other, whatever their layers.
# Fails naming the offending file and header.  `layering.sh --self-test`
# first checks that the checker catches a private include and a cycle.
#
# Usage: tests/layering.sh [--self-test] [ROOT]
set -u

# folder layer: lower numbers are lower in the house.
LAYERS='
common/lazylib 0
common 1
netd 2
runtime/store 2
orchestrator/compose 2
runtime/registry 3
runtime 3
orchestrator/build 4
orchestrator/engine 4
orchestrator/supervisor 5
orchestrator/cli 6
'
# from-prefix to-prefix: never, whatever the layers.
APART='
runtime netd
netd runtime
'

# check ROOT: prints the violations and a summary; exits 1 on any.
check() {
	root=$1
	(cd "$root" && find common netd runtime orchestrator \
		-name '*.[ch]' 2>/dev/null | sort |
		while read -r f; do
			sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f" |
				while read -r h; do echo "$f $h"; done
		done) | awk -v layers="$LAYERS" -v apart="$APART" '
	function dir(p) { sub(/\/[^\/]*$/, "", p); return p }
	function base(p) { sub(/^.*\//, "", p); return p }
	function last(d) { sub(/^.*\//, "", d); return d }
	BEGIN {
		n = split(layers, l, "\n")
		for (i = 1; i <= n; i++)
			if (split(l[i], w, " ") == 2) rank[w[1]] = w[2]
		na = 0
		n = split(apart, l, "\n")
		for (i = 1; i <= n; i++)
			if (split(l[i], w, " ") == 2) { af[++na] = w[1]; at[na] = w[2] }
	}
	function under(d, p) { return d == p || index(d, p "/") == 1 }
	{
		from = dir($1); to = dir($2); files++
		if (!(from in rank)) {
			printf "layering: %s is in folder %s, which has no layer: add it to tests/layering.sh\n", $1, from
			bad++; next
		}
		if (from == to) next
		if (!(to in rank)) {
			printf "layering: %s includes %s, of folder %s, which has no layer\n", $1, $2, to
			bad++; next
		}
		if (base($2) != last(to) ".h") {
			printf "layering: %s includes %s, a private header of %s (its public one is %s/%s.h)\n", $1, $2, to, to, last(to)
			bad++
		}
		if (rank[to] >= rank[from]) {
			printf "layering: %s includes %s: %s (layer %d) may not depend on %s (layer %d)\n", $1, $2, from, rank[from], to, rank[to]
			bad++
		}
		for (i = 1; i <= na; i++)
			if (under(from, af[i]) && under(to, at[i])) {
				printf "layering: %s includes %s: %s and %s must stay apart\n", $1, $2, af[i], at[i]
				bad++
			}
		edges[from " -> " to] = 1
	}
	END {
		ne = 0
		for (e in edges) ne++
		printf "layering: %d includes across %d folder edges, %d violations\n", NR, ne, bad
		exit bad > 0
	}'
}

self_test() {
	t=$(mktemp -d /tmp/orch-layering.XXXXXX)
	trap 'rm -rf "$t"' EXIT
	mkdir -p "$t/common" "$t/runtime/store" "$t/orchestrator/compose"
	echo '#include "common/common.h"' >"$t/runtime/store/store.h"
	echo '#include "runtime/store/store_impl.h"' >"$t/orchestrator/compose/a.c"
	if check "$t" >"$t/out"; then
		echo "layering: self-test: a private include was not caught"
		return 1
	fi
	grep -q 'a private header of runtime/store' "$t/out" || return 1
	echo '#include "orchestrator/compose/compose.h"' >"$t/runtime/store/store.h"
	echo '#include "runtime/store/store.h"' >"$t/orchestrator/compose/a.c"
	if check "$t" >"$t/out"; then
		echo "layering: self-test: a cycle was not caught"
		return 1
	fi
	grep -q 'runtime/store (layer 2) may not depend on orchestrator/compose' \
		"$t/out" || return 1
	mkdir -p "$t/runtime/registry" "$t/netd"
	: >"$t/orchestrator/compose/a.c"
	echo '#include "netd/netd.h"' >"$t/runtime/registry/b.c"
	if check "$t" >"$t/out"; then
		echo "layering: self-test: runtime -> netd was not caught"
		return 1
	fi
	grep -q 'runtime and netd must stay apart' "$t/out" || return 1
	echo "layering: self-test passed"
}

if [ "${1:-}" = --self-test ]; then
	shift
	self_test || exit 1
fi
check "${1:-$(cd "$(dirname "$0")/.." && pwd)}"
