#!/bin/sh
# Builds the Debian 12 image `make check-vm` boots, once:
#   tests/vm/image.sh DIR PACKAGES...
# debootstraps bookworm with Debian's kernel, systemd and PACKAGES (the
# Makefile's DEB_PKGS, so that `make deps` inside finds everything and needs
# no network), and writes DIR/root.img (ext4, made with mkfs.ext4 -d: no loop
# mount), DIR/vmlinuz and DIR/initrd.img (initramfs-tools' MODULES=most has
# virtio_blk and ext4).  At boot, orch-vm-check.service mounts the second
# disk (the work disk check-vm.sh makes) and runs its tests/vm/inside.sh.
# The image is remade only when the package list or this script changes.
# DEBIAN_MIRROR overrides the mirror.
set -eu
dir=$1
shift
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What a standard Debian install has and minbase leaves out, too: netbase
# (/etc/protocols, which nft uses to name protocols), kmod.
base="systemd systemd-sysv dbus udev linux-image-amd64 initramfs-tools e2fsprogs netbase kmod"
base=$(echo $base | tr ' ' ',')
pkgs=$(echo "$@" | tr ' ' '\n' | sort -u | tr '\n' ' ')
key=$( (cat "$0"; echo "$base $pkgs") | sha256sum | cut -c1-16)
if [ -s "$dir/root.img" ] && [ "$(cat "$dir/key" 2>/dev/null)" = "$key" ]; then
	exit 0
fi
command -v debootstrap >/dev/null && command -v mkfs.ext4 >/dev/null ||
	{ echo "check-vm: debootstrap and mkfs.ext4 are needed (make deps)" >&2; exit 1; }
mkdir -p "$dir"

work=$(mktemp -d "$dir/image.XXXXXX")
trap 'rm -rf "$work"' EXIT
r=$work/rootfs
echo "check-vm: debootstrapping the Debian 12 image (once; a few minutes)" >&2
# debootstrap the base, then apt-get the packages as make deps would (apt,
# unlike debootstrap, resolves virtual packages).  Mounts go in a private
# mount namespace: nothing stays mounted if it fails halfway.
# shellcheck disable=SC2016
unshare --mount --propagation private -- sh -ec '
	debootstrap --variant=minbase --include="$1" bookworm "$2" "$3"
	cp /etc/resolv.conf "$2/etc/resolv.conf"
	mount -t proc proc "$2/proc"
	chroot "$2" apt-get update -qq
	chroot "$2" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends $4
	umount "$2/proc"
	rm -f "$2/etc/resolv.conf"' sh "$base" "$r" "$mirror" "$pkgs" >"$work/log" 2>&1 ||
	{ tail -20 "$work/log" >&2; echo "check-vm: debootstrap failed" >&2; exit 1; }

echo orchvm >"$r/etc/hostname"
echo "127.0.1.1 orchvm" >>"$r/etc/hosts"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$r/etc/fstab"
# No network: nothing to wait for, no timers that would start apt.
rm -f "$r/etc/systemd/system/timers.target.wants/"*
mkdir -p "$r/mnt/work"
cat >"$r/etc/systemd/system/orch-vm-check.service" <<'UNIT'
[Unit]
Description=orch checks from the work disk
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'mount -o rw /dev/vdb /mnt/work && exec /mnt/work/tree/tests/vm/inside.sh'
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS1
TTYReset=no
TTYVHangup=no
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Install]
WantedBy=multi-user.target
UNIT
ln -s /etc/systemd/system/orch-vm-check.service \
	"$r/etc/systemd/system/multi-user.target.wants/orch-vm-check.service"
cp "$r"/boot/vmlinuz-* "$work/vmlinuz"
cp "$r"/boot/initrd.img-* "$work/initrd.img"
rm -rf "$r/var/cache/apt/archives/"*.deb "$r/var/lib/apt/lists/"*
mkfs.ext4 -q -F -L orchvm -d "$r" "$work/root.img" 6G >/dev/null
mv "$work/vmlinuz" "$work/initrd.img" "$dir/"
mv "$work/root.img" "$dir/root.img"
echo "$key" >"$dir/key"
