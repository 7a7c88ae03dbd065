#!/bin/sh
# Containers from the image store: every import format runs, the image's
# config applies, whiteouts hold in the container, layers are shared
# (same inodes) while writes stay private, and rm refuses an image in use.
. "$(dirname "$0")/lib.sh"
MK="python3 $TOP/tests/fixtures/mkimage.py"
O=$B/orch
R=$B/orch-runtime
W=$T/work
mkdir -p "$W"
cd "$W" || exit 1
quiet() { "$@" >/dev/null 2>&1; }
sfx=$ID
on_exit "for c in iA-$sfx iB-$sfx iC-$sfx; do $R delete \$c; done"

# ---- every format runs --------------------------------------------------------------
quiet $O image import "$FIXTURE_TAR" rootfs-img
gzip -c "$FIXTURE_TAR" > "$W/base.tar.gz"
$MK docker "$W/dock" docker-img:1 "$W/base.tar.gz"
tar -C "$W/dock" -cf "$W/dock.tar" .
quiet $O image load -i "$W/dock.tar"
umoci init --layout "$W/oci-img" >/dev/null 2>&1 &&
	umoci new --image "$W/oci-img:latest" >/dev/null 2>&1 &&
	umoci unpack --image "$W/oci-img:latest" "$W/bundle" >/dev/null 2>&1 &&
	cp -a "$FIXTURE/." "$W/bundle/rootfs/" &&
	umoci repack --image "$W/oci-img:latest" "$W/bundle" >/dev/null 2>&1
quiet $O image load -i "$W/oci-img"
for img in rootfs-img docker-img:1 oci-img; do
	check_match "$img: listed with an id" "^${img%%:*} .* [0-9a-f]{12} " "$($O images)"
	check "$img: runs busybox true" $R run --name iA-$sfx --image $img -- busybox true
done
$R run --name iA-$sfx --image nosuch -- true 2>"$W/err"
check_eq "unknown image: run fails" 125 $?
check_match "unknown image: clear error" 'no such image: nosuch' "$(cat "$W/err")"

# ---- the image's config ----------------------------------------------------------------------
$MK docker "$W/cfg" cfg:1 --user user --cmd sh --cmd -c --cmd 'echo "$FROM_IMAGE $(pwd) $(id -u):$(id -g)"' "$FIXTURE_TAR"
quiet $O image load -i "$W/cfg"
check_eq "Cmd, Env, WorkingDir and User (by name) apply" "yes /tmp 1000:1000" \
	"$($R run --name iA-$sfx --image cfg:1 2>&1)"
check_eq "the command line overrides them" "over /home 0:0" \
	"$($R run --name iA-$sfx --image cfg:1 --env FROM_IMAGE=over --workdir /home --user 0:0 -- \
		sh -c 'echo "$FROM_IMAGE $(pwd) $(id -u):$(id -g)"' 2>&1)"
$R run --name iA-$sfx --image rootfs-img 2>"$W/err"
check_eq "an image without a command needs one" 125 $?
check_match "...and says so" 'no command' "$(cat "$W/err")"

# ---- two layers: deletes and replacements hold in the container -------------------------------
mkdir -p "$W/up/etc"
echo replaced > "$W/up/etc/hostname"
$MK tar "$W/upper.tar" "$W/up" --whiteout etc/motd --whiteout bin/vi
$MK docker "$W/two" two:1 "$FIXTURE_TAR" "$W/upper.tar"
quiet $O image load -i "$W/two"
check_eq "deleted file absent in the container" absent \
	"$($R run --name iA-$sfx --image two:1 -- sh -c 'test -e /etc/motd || test -L /bin/vi || echo absent' 2>&1)"
check_eq "replaced file has the upper content" replaced \
	"$($R run --name iA-$sfx --image two:1 -- cat /etc/hostname 2>&1)"

# ---- sharing: same inodes, private writes ------------------------------------------------------
quiet $R run --detach --name iA-$sfx --image two:1 -- sleep 60
quiet $R run --detach --name iB-$sfx --image two:1 -- sleep 60
lower=$ORCH_ROOT/layers/$(sha256sum "$FIXTURE_TAR" | cut -c1-64)/diff
host_ino=$(stat -c %i "$lower/bin/busybox")
ino_a=$($R exec iA-$sfx -- stat -c %i /bin/busybox 2>&1)
ino_b=$($R exec iB-$sfx -- stat -c %i /bin/busybox 2>&1)
check_eq "container A sees the layer's inode" "$host_ino" "$ino_a"
check_eq "container B sees the same inode" "$host_ino" "$ino_b"
quiet $R exec iA-$sfx -- sh -c 'echo written-by-a > /etc/passwd.a; echo a >> /etc/group'
check_eq "A sees its write" written-by-a "$($R exec iA-$sfx -- cat /etc/passwd.a 2>&1)"
check "B does not see A's new file" quiet $R exec iB-$sfx -- sh -c '! test -e /etc/passwd.a'
check_eq "B does not see A's change" "$(cat "$lower/etc/group")" "$($R exec iB-$sfx -- cat /etc/group 2>&1)"
check "the layer is untouched" sh -c "! test -e '$lower/etc/passwd.a' && ! grep -qx a '$lower/etc/group'"

# ---- rm refuses an image in use ------------------------------------------------------------------
$O image rm two:1 >/dev/null 2>"$W/err"
check_eq "rm refused while containers use the image" 1 $?
check_match "rm names a container" "in use by container i[AB]-$sfx" "$(cat "$W/err")"
for c in iA-$sfx iB-$sfx; do quiet $R kill $c KILL; done
# stopped NAME: orch-runtime ps shows the container stopped.
stopped() { $R ps | grep -Eq "^$1 +0 stopped"; }
for c in iA-$sfx iB-$sfx; do wait_for 10 stopped $c; done
for c in iA-$sfx iB-$sfx; do quiet $R delete $c; done
check "rm once the containers are gone" quiet $O image rm two:1
check "the image's own layer is gone" test ! -e "$ORCH_ROOT/layers/$(sha256sum "$W/upper.tar" | cut -c1-64)"
check "the shared layer stays" test -x "$lower/bin/busybox"
finish
