#!/bin/sh
# Build speed on the busybox fixture: a first build of 10 RUN steps, the
# same build again (all cached) and once more with --no-cache; side by
# side with `podman build` when podman is installed.  RUN steps have no
# network on either side, so both measure the builder, not netd.
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=$TOP/build
. "$(dirname "$0")/sandbox.inc"
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
$O image build -q --network none -t bench:1 "$ctx" >/dev/null
t1=$(now)
$O image build -q --network none -t bench:1 "$ctx" >/dev/null
t2=$(now)
$O image build -q --network none --no-cache -t bench:2 "$ctx" >/dev/null
t3=$(now)
echo "orch build, 10 RUN steps (first build):   $(ms "$t0" "$t1") ms"
echo "orch build, cached rebuild:               $(ms "$t1" "$t2") ms"
echo "orch build, 10 RUN steps (--no-cache):    $(ms "$t2" "$t3") ms"

if command -v podman >/dev/null 2>&1; then
	pt=$T/podman
	mkdir -p "$pt"
	# runc: Debian's crun refuses hybrid cgroup hosts.
	pm() { podman --root "$pt/root" --runroot "$pt/run" --cgroup-manager cgroupfs --runtime runc "$@"; }
	# chroot isolation (crun refuses this host's hybrid cgroup layout),
	# which only runs on the host network: inside this namespace, none.
	pb() { pm build -q --isolation chroot --network host -f "$ctx/Podmanfile" -t bench "$ctx"; }
	pm import "$B/busybox-rootfs.tar" localhost/busybox >/dev/null 2>&1
	sed 's|^FROM busybox|FROM localhost/busybox|' "$ctx/Containerfile" > "$ctx/Podmanfile"
	p0=$(now)
	if pb >/dev/null 2>"$T/podman.err"; then
		p1=$(now)
		pb >/dev/null 2>&1
		p2=$(now)
		echo "podman build, 10 RUN steps (first build): $(ms "$p0" "$p1") ms"
		echo "podman build, cached rebuild:             $(ms "$p1" "$p2") ms"
	else
		echo "podman build: failed on this host: $(tail -1 "$T/podman.err")"
	fi
	pm system reset -f >/dev/null 2>&1 || true
	grep -o " $pt[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
else
	echo "podman build: podman is not installed, no comparison"
fi
