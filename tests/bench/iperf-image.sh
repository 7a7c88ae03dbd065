#!/bin/sh
# iperf-image.sh OUT.tar: the busybox fixture with iperf3 and its libraries
# added, as an image tarball for `orch image import` and `podman import`.
set -eu
B=$(cd "$(dirname "$0")/../.." && pwd)/build
R=$(mktemp -d /tmp/orch-iperf-rootfs.XXXXXX)
trap 'rm -rf "$R"' EXIT
cp -a "$B/rootfs/." "$R"
for f in $(command -v iperf3) $(ldd "$(command -v iperf3)" | grep -o '/[^ ]*'); do
	mkdir -p "$R$(dirname "$f")"
	cp -L "$f" "$R$f"
done
tar -C "$R" -cf "$1" .
