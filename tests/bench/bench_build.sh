#!/bin/sh
# Build speed on the busybox fixture: a first build of 10 RUN steps, the
# same build again from the cache, and a cached rebuild after touching
# nothing; side by side with `podman build` when podman is installed.
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=$TOP/build
if [ -z "${ORCH_BENCH_SANDBOX:-}" ]; then
	export ORCH_BENCH_SANDBOX=1
	exec unshare --net --mount --fork -- "$0" "$@"
fi
mount --make-rprivate /
ip link set lo up
T=$(mktemp -d /tmp/orch-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
export ORCH_ROOT=$T/root ORCH_RUN=$T/run
O=$B/orch
$O image import "$B/busybox-rootfs.tar" busybox >/dev/null

ctx=$T/ctx
mkdir -p "$ctx"
{
	echo "FROM busybox"
	for i in 1 2 3 4 5 6 7 8 9 10; do
		echo "RUN echo step $i > /step$i"
	done
	echo 'CMD ["cat", "/step10"]'
} > "$ctx/Containerfile"

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }

t0=$(now)
$O image build -q -t bench:1 "$ctx" >/dev/null
t1=$(now)
$O image build -q -t bench:1 "$ctx" >/dev/null
t2=$(now)
$O image build -q --no-cache -t bench:2 "$ctx" >/dev/null
t3=$(now)
echo "orch build, 10 RUN steps (first build):   $(ms "$t0" "$t1") ms"
echo "orch build, cached rebuild:               $(ms "$t1" "$t2") ms"
echo "orch build, 10 RUN steps (--no-cache):    $(ms "$t2" "$t3") ms"

if command -v podman >/dev/null 2>&1; then
	pt=$T/podman
	mkdir -p "$pt"
	podman --root "$pt/root" --runroot "$pt/run" import "$B/busybox-rootfs.tar" localhost/busybox >/dev/null
	sed 's|^FROM busybox|FROM localhost/busybox|' "$ctx/Containerfile" > "$ctx/Podmanfile"
	p0=$(now)
	podman --root "$pt/root" --runroot "$pt/run" build -q --network none -f "$ctx/Podmanfile" -t bench "$ctx" >/dev/null
	p1=$(now)
	podman --root "$pt/root" --runroot "$pt/run" build -q --network none -f "$ctx/Podmanfile" -t bench "$ctx" >/dev/null
	p2=$(now)
	echo "podman build, 10 RUN steps (first build): $(ms "$p0" "$p1") ms"
	echo "podman build, cached rebuild:             $(ms "$p1" "$p2") ms"
	podman --root "$pt/root" --runroot "$pt/run" system reset -f >/dev/null 2>&1 || true
else
	echo "podman build: podman is not installed, no comparison"
fi
