#!/bin/sh
# Storage benchmarks: importing a 100 MB image (plain and gzip docker
# archive), and creating+deleting 100 containers' overlay root filesystems
# (the bare overlay, then whole `orch-runtime run` containers).  Runs in
# its own mount and network namespaces with a temporary ORCH_ROOT.
set -eu
. "$(dirname "$0")/sandbox.inc"
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=$TOP/build
T=$(mktemp -d /tmp/orch-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
export ORCH_ROOT=$T/root ORCH_RUN=$T/run
mkdir -p "$ORCH_ROOT" "$ORCH_RUN" "$T/src"
ip link set lo up

now() { date +%s.%N; }
secs() { echo "$1 $2" | awk '{printf "%.3f", $2 - $1}'; }

# 100 MB: the busybox fixture plus 98 MiB of incompressible files.
cp -a "$B/rootfs/." "$T/src/"
mkdir -p "$T/src/data"
for i in $(seq 1 49); do
	head -c 2097152 /dev/urandom > "$T/src/data/blob$i"
done
tar -C "$T/src" --numeric-owner -cf "$T/big.tar" .
size=$(stat -c %s "$T/big.tar")
echo "image tarball: $((size / 1048576)) MiB"

t0=$(now)
"$B/orch" image import "$T/big.tar" big:1 >/dev/null
t1=$(now)
echo "import of a $((size / 1048576)) MiB rootfs tarball: $(secs "$t0" "$t1") s"

gzip -1 -c "$T/big.tar" > "$T/big.tar.gz"
python3 "$TOP/tests/fixtures/mkimage.py" docker "$T/dock" big:2 "$T/big.tar.gz"
"$B/orch" image rm big:1 >/dev/null
t0=$(now)
"$B/orch" image load -i "$T/dock" >/dev/null
t1=$(now)
echo "load of a docker archive (gzip layer, $((size / 1048576)) MiB unpacked): $(secs "$t0" "$t1") s"
t0=$(now)
"$B/orch" image import "$T/big.tar" big:3 >/dev/null
t1=$(now)
echo "import of the same content again (layer already stored): $(secs "$t0" "$t1") s"

# The bare overlay root: upper/work dirs, mount, unmount, removal, driven
# from the shell (so mostly the cost of spawning mount(8) and umount(8)).
lower=$(ls -d "$ORCH_ROOT"/layers/*/diff | head -1)
small=$("$B/orch" image import "$B/busybox-rootfs.tar" bb:1)
t0=$(now)
for i in $(seq 1 100); do
	c=$T/ctr/$i
	mkdir -p "$c/upper" "$c/work" "$c/merged"
	mount -t overlay overlay -o "lowerdir=$lower,upperdir=$c/upper,workdir=$c/work" "$c/merged"
	umount "$c/merged"
	rm -rf "$c"
done
t1=$(now)
echo "create+delete of 100 overlay root filesystems (shell, mount(8)/umount(8)/rm): $(secs "$t0" "$t1") s ($(echo "$t0 $t1" | awk '{printf "%.1f", ($2 - $1) * 10}') ms each)"

t0=$(now)
for i in $(seq 1 100); do
	"$B/orch-runtime" run --name bench-$$-$i --image big:2 -- true
done
t1=$(now)
echo "create+start+delete of 100 containers from the 100 MiB image: $(secs "$t0" "$t1") s ($(echo "$t0 $t1" | awk '{printf "%.1f", ($2 - $1) * 10}') ms each)"
: "$small"
