#!/bin/sh
# Named volumes: create/ls/inspect/rm/prune, copy-up from image content
# once, data kept across containers, in-use refusal, and the size limit
# (a loop-mounted ext4 image) giving ENOSPC inside a container.
. "$(dirname "$0")/lib.sh"
MK="python3 $TOP/tests/fixtures/mkimage.py"
O=$B/orch
R=$B/orch-runtime
W=$T/work
mkdir -p "$W"
cd "$W" || exit 1
quiet() { "$@" >/dev/null 2>&1; }
sfx=$ID
on_exit "for c in vA-$sfx vB-$sfx vC-$sfx; do $R delete \$c; done"
on_exit "for v in \$($O volume ls -q); do $O volume rm -f \$v; done"

# ---- create, ls, inspect ------------------------------------------------------
mkdir -p "$ORCH_ROOT/volumes/.new-crashed-abc123/_data"
check_eq "create prints the name" "data1" "$($O volume create --label team=a data1)"
check "a crashed creation's leftovers are swept" test ! -e "$ORCH_ROOT/volumes/.new-crashed-abc123"
check "create of an existing volume succeeds" quiet $O volume create data1
check_match "ls" 'local +data1' "$($O volume ls)"
insp=$($O volume inspect data1)
check_match "inspect: name" '"Name": "data1"' "$insp"
check_match "inspect: label" '"team": "a"' "$insp"
check_match "inspect: mountpoint under ORCH_ROOT" "\"Mountpoint\": \"$ORCH_ROOT/volumes/data1/_data\"" "$insp"
check "data dir exists" test -d "$ORCH_ROOT/volumes/data1/_data"
$O volume create 'bad/name' >/dev/null 2>"$W/err"
check_eq "bad name refused" 1 $?
check_match "bad name: clear error" 'invalid volume name' "$(cat "$W/err")"
$O volume create -o color=red x >/dev/null 2>&1
check_eq "unknown option: usage error" 2 $?
$O volume inspect nosuch >/dev/null 2>"$W/err"
check_eq "inspect of a missing volume fails" 1 $?
check_match "missing volume: clear error" 'no such volume: nosuch' "$(cat "$W/err")"

# ---- rm and prune -----------------------------------------------------------------
check_eq "rm prints the name" data1 "$($O volume rm data1)"
check "rm removes the directory" test ! -e "$ORCH_ROOT/volumes/data1"
$O volume rm data1 >/dev/null 2>&1
check_eq "rm of a missing volume fails" 1 $?
check "rm -f of a missing volume succeeds" quiet $O volume rm -f data1
quiet $O volume create --label com.docker.volume.anonymous= anon1
quiet $O volume create named1
out=$($O volume prune -f)
check_match "prune removes unused anonymous volumes" 'anon1' "$out"
check "prune keeps named volumes" quiet $O volume inspect named1
out=$($O volume prune -a -f)
check_match "prune -a removes unused named volumes" 'named1' "$out"
check_eq "nothing left" "" "$($O volume ls -q)"

# ---- size limit: a loop-mounted ext4 image ------------------------------------------
check "create with a 20m limit" quiet $O volume create -o size=20m lim
disk=$ORCH_ROOT/volumes/lim/disk.ext4
data=$ORCH_ROOT/volumes/lim/_data
check_eq "disk image is the limit's size" 20971520 "$(stat -c %s "$disk")"
check "data dir is a mount" mountpoint -q "$data"
check_match "mounted from a loop device" 'ext4 /dev/loop' "$(grep " $data " /proc/self/mountinfo)"
check "no lost+found shown" test ! -e "$data/lost+found"
check_match "inspect shows the size" '"size": "20971520"' "$($O volume inspect lim)"
$O volume create -o size=10k tiny >/dev/null 2>"$W/err"
check_eq "a limit below 1m is refused" 1 $?

# ---- containers --------------------------------------------------------------------------
mkdir -p "$W/l2/seed"
echo from-image > "$W/l2/seed/hello"
$MK tar "$W/l2.tar" "$W/l2"
$MK docker "$W/img" seeded:1 "$FIXTURE_TAR" "$W/l2.tar"
quiet $O image load -i "$W/img"
quiet $O image import "$FIXTURE_TAR" plain:1

out=$($R run --name vA-$sfx --image seeded:1 --volume vol1:/seed -- cat /seed/hello 2>&1)
check_eq "new volume filled from the image" from-image "$out"
check_eq "content is in the volume's directory" from-image "$(cat "$ORCH_ROOT/volumes/vol1/_data/hello")"
$R run --name vA-$sfx --image seeded:1 --volume vol1:/seed -- sh -c 'echo changed > /seed/hello; echo mine > /seed/new' >/dev/null 2>&1
out=$($R run --name vB-$sfx --image seeded:1 --volume vol1:/seed -- cat /seed/hello /seed/new 2>&1)
check_eq "data kept across container delete and re-create, not refilled" "changed
mine" "$out"
rm -f "$ORCH_ROOT/volumes/vol1/_data/hello" "$ORCH_ROOT/volumes/vol1/_data/new"
out=$($R run --name vB-$sfx --image seeded:1 --volume vol1:/seed -- ls -A /seed 2>&1)
check_eq "an emptied volume is never filled again" "" "$out"
out=$($R run --name vC-$sfx --image plain:1 --volume vol2:/etc -- cat /etc/motd 2>&1)
check_eq "fills from the image's path (/etc)" "orch busybox fixture" "$out"
check "volume survives its containers" test -d "$ORCH_ROOT/volumes/vol2/_data"
# A path the image reaches through a symlink of another layer is content
# too; a path no layer has is none.
mkdir -p "$W/l3"
ln -s /seed "$W/l3/seedlink"
$MK tar "$W/l3.tar" "$W/l3"
$MK docker "$W/img3" linked:1 "$FIXTURE_TAR" "$W/l2.tar" "$W/l3.tar"
quiet $O image load -i "$W/img3"
out=$($R run --name vD-$sfx --image linked:1 --volume vol4:/seedlink -- cat /seed/hello 2>&1)
check_eq "filled through a symlink of another layer" from-image "$(cat "$ORCH_ROOT/volumes/vol4/_data/hello" 2>&1)"
out=$($R run --name vE-$sfx --image linked:1 --volume vol5:/nowhere/data -- ls -A /nowhere/data 2>&1)
check_eq "a path no layer has gives an empty volume" "" "$out"
quiet $O volume rm vol4 vol5

# In use by a running container: rm refused; afterwards it works.
$R run --detach --name vA-$sfx --image plain:1 --volume vol2:/data -- sleep 60 >/dev/null 2>&1
$O volume rm vol2 >/dev/null 2>"$W/err"
check_eq "rm refused while a container uses the volume" 1 $?
check_match "rm says it is in use" 'in use' "$(cat "$W/err")"
quiet $R kill vA-$sfx KILL
# stopped NAME: orch-runtime ps shows the container stopped.
stopped() { $R ps | grep -Eq "^$1 +0 stopped"; }
wait_for 10 stopped vA-$sfx
quiet $R delete vA-$sfx
check "rm once the container is gone" quiet $O volume rm vol2

# A volume of the same name in another store is another volume.
quiet $O volume create vol3
mkdir -p "$T/root2"
ORCH_ROOT=$T/root2 $O image import "$FIXTURE_TAR" plain:1 >/dev/null 2>&1
ORCH_ROOT=$T/root2 $R run --detach --name vC-$sfx --image plain:1 --volume vol3:/data -- sleep 60 >/dev/null 2>&1
ORCH_ROOT=$T/root2 $O volume rm vol3 >/dev/null 2>&1
check_eq "the other store's vol3 is in use" 1 $?
check "this store's vol3 is not" quiet $O volume rm vol3
quiet $R kill vC-$sfx KILL
wait_for 10 stopped vC-$sfx
quiet $R delete vC-$sfx
check "the other store's vol3 once unused" quiet env ORCH_ROOT=$T/root2 $O volume rm vol3

# ENOSPC inside the container.
out=$($R run --name vA-$sfx --image plain:1 --volume lim:/data -- \
	sh -c 'dd if=/dev/zero of=/data/fill bs=1M count=40 2>&1; echo rc=$?' 2>&1)
check_match "writes past the limit: ENOSPC in the container" 'No space left on device' "$out"
check_match "the writer sees the failure" 'rc=1' "$out"
used=$(du -k "$disk" | cut -f1)
check "the disk image stays within the limit ($used KiB)" test "$used" -le 20480
check "host directory is still the volume's mount" mountpoint -q "$data"

# rm finds and removes the mount and the loop device.
loopdev=$(losetup -j "$disk" | cut -d: -f1)
check_match "a loop device backs the disk" '^/dev/loop' "$loopdev"
check "rm of the limited volume" quiet $O volume rm lim
check "no mount left" sh -c "! grep -q '/volumes/lim/' /proc/self/mountinfo"
check_eq "no loop device left on the disk" "" "$(losetup -a | grep "$disk")"
check "its directory is gone" test ! -e "$ORCH_ROOT/volumes/lim"

# A limited volume whose mount went away (a reboot) is mounted again on use.
quiet $O volume create -o size=8m lim2
umount "$ORCH_ROOT/volumes/lim2/_data"
out=$($R run --name vA-$sfx --image plain:1 --volume lim2:/data -- sh -c 'echo ok > /data/f && cat /data/f' 2>&1)
check_eq "remounted on use" ok "$out"
check "remounted on the host side" mountpoint -q "$ORCH_ROOT/volumes/lim2/_data"
check "rm" quiet $O volume rm lim2
check "no mount left after rm" sh -c "! grep -q '/volumes/lim2/' /proc/self/mountinfo"

for v in vol1; do quiet $O volume rm $v; done
check_eq "all volumes removed" "" "$($O volume ls -q)"
finish
