#!/bin/bash
# Device policy and capabilities, as an attacker in a default container
# would try them.  A loop device backed by a file of the suite's stands for
# another project's volume: a default container may mknod a node for it
# but not read it, nor open /dev/loop-control or tty0, while /dev/null and
# the like work; --device / devices: opens exactly that device,
# device_cgroup_rules exactly what they name, privileged everything.  On
# cgroup v1 (the devices controller) and on cgroup v2 (a BPF program; on a
# hybrid host through the unified hierarchy).  privileged and cap_add ALL
# work on a host whose bounding set lacks a capability, and naming that
# capability is a clear error.  Nothing on the host changes.
. "$(dirname "$0")/lib.sh"

RT=$B/orch-runtime
R=$FIXTURE
P=e2e-dev-$ID
# A bounding set without CAP_SYS_RESOURCE, whatever the host's.
LESS=(setpriv --bounding-set -sys_resource --)


# The victim: a loop device over a file with a marker in it.
IMG=$T/victim.img
echo TOPSECRET-MARKER >"$IMG" && truncate -s 64K "$IMG"
SUM=$(sha256sum <"$IMG")
LOOP=$(losetup -f --show "$IMG") || { echo "cannot attach a loop device"; exit 1; }
on_exit "losetup -d $LOOP; for c in \$(ls $ORCH_RUN/runtime 2>/dev/null); do $RT delete \$c; done"
MAJ=$((0x$(stat -c %t "$LOOP")))
MIN=$((0x$(stat -c %T "$LOOP")))
HOST_DEVLIST=$(cat /sys/fs/cgroup/devices/devices.list 2>/dev/null)

# The attack, run in a container: prints one word per step.
ATTACK="mknod /tmp/L0 b $MAJ $MIN && echo mknod-ok
head -c 32 /tmp/L0 2>/tmp/err | grep -q TOPSECRET && echo READ-LOOP
grep -q 'Operation not permitted' /tmp/err && echo read-eperm
mknod /tmp/lc c 10 237 && cat 2>/dev/null </tmp/lc && echo OPEN-LOOP-CONTROL
mknod /tmp/t0 c 4 0 && true 2>/dev/null <>/tmp/t0 && echo OPEN-TTY0
echo x >/dev/null && head -c 8 /dev/zero | wc -c | grep -q 8 && echo null-zero-ok
head -c 8 /dev/urandom | wc -c | grep -q 8 && head -c 8 /dev/random >/dev/null && echo random-ok
{ echo x >/dev/full; } 2>&1 | grep -q 'No space' && echo full-ok
true <>/dev/ptmx && echo ptmx-ok"

# device_checks MODE: the checks on one cgroup version (ORCH_CGROUP_ROOT
# as set by the caller).
device_checks() {
	m=$1
	out=$("$RT" run --name "$P-$m-def" --rootfs "$R" -- sh -c "$ATTACK")
	check_match "$m: a default container may mknod a block node" mknod-ok "$out"
	check "$m: but not read another's loop device" sh -c '! echo "$1" | grep -q READ-LOOP' _ "$out"
	check_match "$m: reading it is EPERM" read-eperm "$out"
	check "$m: /dev/loop-control and tty0 do not open" sh -c '! echo "$1" | grep -q OPEN-' _ "$out"
	check_match "$m: /dev/null and /dev/zero work" null-zero-ok "$out"
	check_match "$m: /dev/random and /dev/urandom work" random-ok "$out"
	check_match "$m: /dev/full works" full-ok "$out"
	check_match "$m: /dev/ptmx opens" ptmx-ok "$out"
	gone "$m-def"

	"$RT" run --detach --name "$P-$m-ex" --rootfs "$R" -- sleep 60 >/dev/null
	out=$("$RT" exec "$P-$m-ex" -- sh -c "mknod /tmp/L0 b $MAJ $MIN && echo mknod-ok; head -c 32 /tmp/L0 2>/dev/null | grep -q TOPSECRET && echo READ-LOOP")
	check_eq "$m: a process exec'd into a container has its device policy" mknod-ok "$out"
	"$RT" delete "$P-$m-ex"
	gone "$m-ex"

	out=$("$RT" run --name "$P-$m-dev" --device "$LOOP:/dev/xloop:r" --rootfs "$R" -- sh -c '
		head -c 32 /dev/xloop | grep -q TOPSECRET && echo read-ok
		{ echo x >/dev/xloop; } 2>/dev/null && echo WROTE
		mknod /tmp/other b '"$MAJ $((MIN + 1))"' && true 2>/dev/null </tmp/other && echo OPEN-OTHER
		true 2>/dev/null </dev/fuse && echo OPEN-FUSE
		ls -l /dev/xloop')
	check_match "$m: --device HOST:CONTAINER:r reads that device" read-ok "$out"
	check "$m: but may not write it (r only)" sh -c '! echo "$1" | grep -q WROTE' _ "$out"
	check "$m: nor open another one" sh -c '! echo "$1" | grep -q OPEN-' _ "$out"
	check_match "$m: the node is the host's" "^b.* $MAJ, +$MIN " "$out"
	gone "$m-dev"

	out=$("$RT" run --name "$P-$m-rule" --device-cgroup-rule "b $MAJ:* r" --rootfs "$R" -- sh -c "
		mknod /tmp/L0 b $MAJ $MIN && head -c 32 /tmp/L0 | grep -q TOPSECRET && echo read-ok
		{ echo x >/tmp/L0; } 2>/dev/null && echo WROTE")
	check_eq "$m: a device cgroup rule opens what it names" read-ok "$out"
	gone "$m-rule"

	out=$("${LESS[@]}" "$RT" run --name "$P-$m-priv" --privileged --rootfs "$R" -- sh -c "
		mknod /tmp/L0 b $MAJ $MIN && head -c 32 /tmp/L0 | grep -q TOPSECRET && echo read-ok")
	check_eq "$m: privileged reads the loop device (on a reduced bounding set)" read-ok "$out"
	gone "$m-priv"
	out=$("$RT" run --name "$P-$m-pdev" --privileged --rootfs "$R" -- sh -c "
		head -c 32 $LOOP | grep -q TOPSECRET && echo read-ok; [ -L /dev/ptmx ] && echo own-ptmx")
	check_eq "$m: privileged has the host's device nodes in /dev (its own ptmx)" "read-ok
own-ptmx" "$out"
	gone "$m-pdev"
	out=$("$RT" run --name "$P-$m-nodev" --rootfs "$R" -- sh -c "[ -e $LOOP ] && echo HAS-LOOP; ls -lR /dev | grep -c '^b'")
	check_eq "$m: a default container has no host device node in /dev" 0 "$out"
	gone "$m-nodev"
}

fs_type() { stat -f -c %T "$1" 2>/dev/null; }
if [ "$(fs_type /sys/fs/cgroup)" = cgroup2fs ]; then
	device_checks v2
else
	device_checks v1
	if [ "$(fs_type /sys/fs/cgroup/unified)" = cgroup2fs ]; then
		ORCH_CGROUP_ROOT=/sys/fs/cgroup/unified device_checks v2
	fi
fi

# ---- capabilities on a reduced bounding set ----------------------------------
out=$("${LESS[@]}" "$RT" run --name "$P-all" --cap-add ALL --rootfs "$R" -- grep CapEff /proc/self/status)
check_eq "cap-add ALL gives what the engine holds" \
	"$(printf '%016x' $(( 0x$(grep CapBnd /proc/self/status | cut -f2) & ~(1 << 24) )))" \
	"$(echo "$out" | cut -f2)"
gone all
out=$("${LESS[@]}" "$RT" run --name "$P-res" --cap-add SYS_RESOURCE --rootfs "$R" -- true 2>&1)
check_eq "cap-add of a capability the engine lacks fails" 125 "$?"
check_match "naming it" 'CAP_SYS_RESOURCE is not available' "$out"
gone res

# ---- the same through compose ------------------------------------------------
. "$(dirname "$0")/lifecycle_helpers.inc"
project dev <<Y
services:
  plain:
    image: bb:1
    network_mode: none
    command: ["sh", "-c", "mknod /tmp/L0 b $MAJ $MIN || exit 2; head -c 1 /tmp/L0 && exit 3; exit 0"]
  reader:
    image: bb:1
    network_mode: none
    devices: ["$LOOP:/dev/victim:r"]
    command: ["sh", "-c", "head -c 32 /dev/victim | grep -q TOPSECRET"]
  long:
    image: bb:1
    network_mode: none
    devices: [{source: "$LOOP", target: /dev/v2, permissions: rw}]
    command: ["sh", "-c", "head -c 32 /dev/v2 | grep -q TOPSECRET"]
  rules:
    image: bb:1
    network_mode: none
    device_cgroup_rules: ["b $MAJ:$MIN r"]
    userns_mode: host
    command: ["sh", "-c", "mknod /tmp/L0 b $MAJ $MIN && head -c 32 /tmp/L0 | grep -q TOPSECRET"]
  rulesns:
    image: bb:1
    network_mode: none
    device_cgroup_rules: ["b $MAJ:$MIN r"]
    command: ["true"]
  priv:
    image: bb:1
    network_mode: none
    privileged: true
    command: ["sh", "-c", "mknod /tmp/L0 b $MAJ $MIN && head -c 32 /tmp/L0 | grep -q TOPSECRET"]
  all:
    image: bb:1
    network_mode: none
    cap_add: [ALL]
    command: ["true"]
  res:
    image: bb:1
    network_mode: none
    cap_add: [SYS_RESOURCE]
    command: ["true"]
  badrule:
    image: bb:1
    network_mode: none
    device_cgroup_rules: ["b 7:0 rx"]
    command: ["true"]
  nodev:
    image: bb:1
    network_mode: none
    devices: ["$T/victim.img"]
    command: ["true"]
Y
orun() { inp dev "${LESS[@]}" "$O" run --rm -T "$@" 2>&1; }
out=$(orun plain)
rc=$?
# In a user namespace (the default) mknod itself is refused (2).
[ "${ORCH_USERNS:-remap}" = host ] && want=0 || want=2
check_eq "compose: a default service cannot read the loop device it made" "$want" "$rc"
out=$(orun reader)
check_eq "compose: devices: gives that device" "0" "$?"
out=$(orun long)
check_eq "compose: devices: in the long syntax too" "0" "$?"
out=$(orun rules)
check_eq "compose: device_cgroup_rules open what they name" "0" "$?"
out=$(orun rulesns)
rc=$?
if [ "${ORCH_USERNS:-remap}" = host ]; then
	check_eq "compose: device_cgroup_rules without a user namespace" 0 "$rc"
else
	check_match "compose: device_cgroup_rules in a user namespace are refused, with the way out" \
		'compose.yaml:[0-9]+:[0-9]+: service "rulesns": device_cgroup_rules .*userns_mode: host' "$out"
fi
out=$(orun priv)
check_eq "compose: privileged works and reads it" "0" "$?"
out=$(orun all)
check_eq "compose: cap_add ALL works" "0" "$?"
out=$(orun res)
check "compose: cap_add of a capability the engine lacks fails" [ "$?" -ne 0 ]
check_match "naming it" 'CAP_SYS_RESOURCE is not available' "$out"
out=$(orun badrule)
check_match "compose: a bad device cgroup rule is refused with its place" \
	'compose.yaml:[0-9]+:[0-9]+: service "badrule".*"b 7:0 rx"' "$out"
out=$(orun nodev)
check_match "compose: a device that is no device is refused" \
	'compose.yaml:[0-9]+:[0-9]+: service "nodev".*not a character or block device' "$out"

# ---- nothing on the host changed ---------------------------------------------
check_eq "the victim's file is unchanged" "$SUM" "$(sha256sum <"$IMG")"
check_eq "the host's device cgroup is unchanged" "$HOST_DEVLIST" "$(cat /sys/fs/cgroup/devices/devices.list 2>/dev/null)"
check "no node was created on the host" [ ! -e /dev/xloop -a ! -e /dev/victim -a ! -e /dev/v2 ]
finish
