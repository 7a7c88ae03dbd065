#!/bin/sh
# make check-vm: the e2e suites that touch cgroups, devices, the supervisor
# or netd, on a real cgroup v2 host run by systemd, and `make demo` on a
# fresh machine.  Boots a Debian 12 VM (tests/vm/image.sh, built once under
# build/vm/) under qemu with TCG (nested KVM does not reach userspace on the
# development machines), hands it a work disk with this tree and the
# binaries built here, and reads the verdict from its second serial port.
#   exit 0: all passed; 1: a check failed inside; 2: the VM could not be
#   built or booted, or never started the checks (infrastructure).
# The verdict is also written to build/vm/status: passed, failed or infra.
# VM_TIMEOUT (seconds, default 3600) bounds the VM, VM_BOOT_TIMEOUT (900)
# its boot up to the checks; VM_MEM (MiB) is its memory.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
vm=${VM_DIR:-build/vm}
timeout_s=${VM_TIMEOUT:-3600}
start=$(date +%s)
mkdir -p $vm
rm -f $vm/status
verdict() { echo "$1" >$vm/status; }
infra() { echo "check-vm: $*" >&2; verdict infra; exit 2; }

for t in qemu-system-x86_64 mkfs.ext4 debootstrap; do
	command -v $t >/dev/null || infra "$t is missing (make check-vm installs it with make deps)"
done
for f in build/orch build/netd build/orch-runtime build/orch-supervisor build/busybox-rootfs.tar; do
	[ -e "$f" ] || infra "$f is missing: run make all first"
done
# The image holds every package of make deps (the Makefile's DEB_PKGS).
[ -n "${DEB_PKGS:-}" ] ||
	DEB_PKGS=$(make -s -p -n -f Makefile deps 2>/dev/null | sed -n 's/^DEB_PKGS := //p' | head -1)
# shellcheck disable=SC2086
tests/vm/image.sh "$vm" $DEB_PKGS || infra "building the VM image failed"
echo "check-vm: image ready after $(($(date +%s) - start)) s"

work=$(mktemp -d "$top/$vm/run.XXXXXX")
qpid=
tailpid=
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null
	[ -n "$tailpid" ] && kill "$tailpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP

# The work disk: the tree as a clone would have it (fresh/, for make demo)
# and the same tree with the binaries built here (built/, for the suites).
s=$work/stage
mkdir -p "$s/fresh" "$s/built/build"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z -co --exclude-standard | xargs -0 tar -cf - 2>/dev/null | tar -C "$s/fresh" -xf -
else
	tar --exclude=./build --exclude=./.git -cf - . | tar -C "$s/fresh" -xf -
fi
cp -a "$s/fresh/." "$s/built/"
cp -a build/orch build/netd build/orch-runtime build/orch-supervisor \
	build/busybox-rootfs.tar build/rootfs "$s/built/build/"
ln -s built "$s/tree"
mb=$(du -sm "$s" | cut -f1)
mkfs.ext4 -q -F -L work -d "$s" "$work/work.img" "$((mb + 2048))M" >/dev/null ||
	infra "making the work disk failed"
rm -rf "$s"

: >"$work/results"
echo "check-vm: booting the VM (TCG; the suites' output follows)"
timeout -s KILL "$timeout_s" qemu-system-x86_64 -accel tcg -smp 2 -m "${VM_MEM:-3072}" \
	-display none -monitor none -no-reboot -nic none \
	-kernel $vm/vmlinuz -initrd $vm/initrd.img \
	-append "root=/dev/vda rw console=ttyS0 quiet panic=-1 systemd.show_status=0" \
	-drive file=$vm/root.img,format=raw,if=virtio,snapshot=on \
	-drive file="$work/work.img",format=raw,if=virtio \
	-serial file:"$work/console" -serial file:"$work/results" &
qpid=$!
tail -n +1 -f --pid=$qpid "$work/results" &
tailpid=$!
# A VM that has not started the checks after VM_BOOT_TIMEOUT seconds is
# not going to: stop it early rather than at the overall bound.
boot0=$(date +%s)
while kill -0 $qpid 2>/dev/null && ! grep -q '^check-vm: started' "$work/results"; do
	if [ $(($(date +%s) - boot0)) -gt "${VM_BOOT_TIMEOUT:-900}" ]; then
		kill $qpid
		break
	fi
	sleep 2
done
wait $qpid
qrc=$?
qpid=
wait $tailpid 2>/dev/null
tailpid=
took=$(($(date +%s) - start))
tr -d '\r' <"$work/results" >"$vm/results.log"
cp "$work/console" "$vm/console.log" 2>/dev/null
if ! grep -q '^check-vm: started' "$vm/results.log"; then
	tail -20 "$vm/console.log" >&2
	infra "the VM did not start the checks (qemu status $qrc after ${took} s; console: $vm/console.log)"
fi
result=$(sed -n 's/^check-vm: result //p' "$vm/results.log" | tail -1)
if [ -z "$result" ]; then
	echo "check-vm: FAILED: the checks did not finish (qemu status $qrc after ${took} s; a suite hung or the VM died)"
	verdict failed
	exit 1
fi
echo "check-vm: total ${took} s (image, boot, suites, demo)"
[ "$result" = 0 ] || { echo "check-vm: FAILED"; verdict failed; exit 1; }
echo "check-vm: passed"
verdict passed
