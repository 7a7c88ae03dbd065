#!/bin/sh
# Makes a minimal Debian bookworm base image for orch's examples and tests:
#   examples/images/debian-base.sh [--tar-only] [NAME[:TAG]]
# debootstraps a minbase rootfs (plus gcc and libc6-dev, which the build
# examples compile with) once, keeps it as a tarball in build/ so that
# reruns take seconds, and imports it with `orch image import` as
# NAME[:TAG] (default debian:bookworm-slim).  Needs root and debootstrap.
# DEBIAN_MIRROR overrides the mirror; DEBIAN_BASE_TAR the tarball's path.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
tar_only=
if [ "${1:-}" = "--tar-only" ]; then
	tar_only=1
	shift
fi
ref=${1:-debian:bookworm-slim}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
tarball=${DEBIAN_BASE_TAR:-$top/build/debian-bookworm.tar}
include=gcc,libc6-dev

if [ ! -s "$tarball" ]; then
	command -v debootstrap >/dev/null ||
		{ echo "debian-base: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
	mkdir -p "$(dirname "$tarball")"
	work=$(mktemp -d "$(dirname "$tarball")/debian-base.XXXXXX")
	# debootstrap mounts /proc and /sys in the target; a private mount
	# namespace makes sure nothing stays mounted if it fails halfway.
	trap 'rm -rf "$work"' EXIT
	unshare --mount --propagation private -- \
		debootstrap --variant=minbase --include="$include" \
		bookworm "$work/rootfs" "$mirror" >"$work/log" 2>&1 ||
		{ tail -20 "$work/log" >&2; echo "debian-base: debootstrap failed" >&2; exit 1; }
	# What a slim image leaves out: package lists, caches, logs, docs.
	rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin \
		"$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/log/"*.log \
		"$work/rootfs/usr/share/doc" "$work/rootfs/usr/share/man" \
		"$work/rootfs/usr/share/locale"
	tar -C "$work/rootfs" --numeric-owner --xattrs -cf "$work/rootfs.tar" .
	mv "$work/rootfs.tar" "$tarball"
fi
[ -n "$tar_only" ] && { echo "$tarball"; exit 0; }
orch=${ORCH:-$top/build/orch}
"$orch" image import "$tarball" "$ref"
