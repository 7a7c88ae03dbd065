#!/bin/sh
# The image store: import, load (docker-archive, OCI layout; dirs and
# tarballs; gzip and zstd), list, inspect, tag, rm, whiteouts, and hostile
# archives.  Checks the extracted trees directly.
. "$(dirname "$0")/lib.sh"
MK="python3 $TOP/tests/fixtures/mkimage.py"
O=$B/orch
W=$T/work
mkdir -p "$W"
cd "$W" || exit 1

layers_count() { find "$ORCH_ROOT/layers" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l; }
# Everything in the store's scratch dir is gone after each command.
tmp_empty() { [ -z "$(ls -A "$ORCH_ROOT/tmp" 2>/dev/null)" ]; }

# ---- plain rootfs import --------------------------------------------------
out=$($O image import "$FIXTURE_TAR" busybox 2>&1)
check_match "import prints the image id" '^sha256:[0-9a-f]{64}$' "$out"
id=${out#sha256:}
check_match "orch images lists busybox:latest with a 12-digit id" \
	"^busybox +latest +${id%"${id#????????????}"} " "$($O images)"
check_eq "orch images -q" "$(printf %.12s "$id")" "$($O images -q)"
check "stored config's sha256 is the id" \
	test "$(sha256sum "$ORCH_ROOT/images/$id/config.json" | cut -c1-64)" = "$id"
lower=$(ls -d "$ORCH_ROOT"/layers/*/diff)
check "layer extracted with busybox" test -x "$lower/bin/busybox"
check "absolute symlinks kept as links" test "$(readlink "$lower/bin/sh")" = /bin/busybox
check_eq "owner kept (home/user is 1000)" "1000" "$(stat -c %u "$lower/home/user")"
check_eq "mode kept (tmp is 1777)" "1777" "$(stat -c %a "$lower/tmp")"
check "lookup by id prefix" quiet $O image inspect "$(printf %.8s "$id")"
check "lookup by sha256:id" quiet $O image inspect "sha256:$id"
$O image inspect nosuch >/dev/null 2>"$W/err"
check_eq "unknown image: exit 1" 1 $?
check_match "unknown image: clear message" "no such image: nosuch" "$(cat "$W/err")"
$O image import "$FIXTURE_TAR" 'Bad Name' >/dev/null 2>&1
check_eq "bad reference refused" 1 $?

# Same content again: no second layer directory.
n=$(layers_count)
$O image import "$FIXTURE_TAR" busybox:again >/dev/null
check_eq "re-import shares the layer" "$n" "$(layers_count)"

# A scratch directory left by a crashed import is swept by the next one.
mkdir -p "$ORCH_ROOT/tmp/layer-crashed/diff"
echo partial > "$ORCH_ROOT/tmp/layer-crashed/diff/x"
touch -d '1 hour ago' "$ORCH_ROOT/tmp/layer-crashed"
quiet $O image import "$FIXTURE_TAR" busybox:sweep
check "stale scratch directory removed" test ! -e "$ORCH_ROOT/tmp/layer-crashed"
quiet $O image rm busybox:sweep

# ---- tag, rm of a name ------------------------------------------------------
check "tag" $O image tag busybox mybox:1.0
check_match "tag listed" '^mybox +1\.0 ' "$($O images)"
check_eq "rm of one name only untags" "Untagged: mybox:1.0" "$($O image rm mybox:1.0 2>&1)"
check "image still there" quiet $O image inspect busybox

# ---- docker-archive: directory and tarball, gzip layer ----------------------
gzip -c "$FIXTURE_TAR" > "$W/base.tar.gz"
$MK docker "$W/dock" dock:v1 --cmd /bin/echo --cmd hi "$W/base.tar.gz"
out=$($O image load -i "$W/dock" 2>&1)
check_eq "docker-archive dir loads" "Loaded image: dock:v1" "$out"
tar -C "$W/dock" -cf "$W/dock.tar" .
$O image rm dock:v1 >/dev/null
out=$($O image load -i "$W/dock.tar" 2>&1)
check_eq "docker-archive tarball loads" "Loaded image: dock:v1" "$out"
check_match "inspect shows Cmd" '"/bin/echo"' "$($O image inspect dock:v1)"
check_match "inspect shows Env" 'FROM_IMAGE=yes' "$($O image inspect dock:v1)"
quiet $O image rm dock:v1
out=$($O image load < "$W/dock.tar" 2>&1)
check_eq "docker-archive on stdin loads" "Loaded image: dock:v1" "$out"
out=$(gzip -c "$FIXTURE_TAR" | $O image import - fromstdin 2>&1)
check_match "rootfs tarball on stdin imports" '^sha256:[0-9a-f]{64}$' "$out"
quiet $O image rm fromstdin
check "no scratch left" tmp_empty

# ---- OCI layout: umoci-built directory, and our tarball with zstd -----------
umoci init --layout "$W/ocibox" >/dev/null 2>&1 &&
	umoci new --image "$W/ocibox:v2" >/dev/null 2>&1 &&
	umoci unpack --image "$W/ocibox:v2" "$W/bundle" >/dev/null 2>&1 &&
	cp -a "$FIXTURE/." "$W/bundle/rootfs/" &&
	umoci repack --image "$W/ocibox:v2" "$W/bundle" >/dev/null 2>&1 &&
	umoci config --image "$W/ocibox:v2" --config.cmd sh >/dev/null 2>&1
check "umoci built a layout" test -f "$W/ocibox/index.json"
out=$($O image load -i "$W/ocibox" 2>&1)
check_eq "OCI layout dir loads" "Loaded image: ocibox:v2" "$out"
check_match "OCI image listed with an id" '^ocibox +v2 +[0-9a-f]{12} ' "$($O images)"
zstd -q -c "$FIXTURE_TAR" > "$W/base.tar.zst"
$MK oci "$W/zoci" v3 "$W/base.tar.zst"
tar -C "$W/zoci" -cf "$W/zoci.tar" .
out=$($O image load -i "$W/zoci.tar" 2>&1)
check_eq "OCI tarball with a zstd layer loads" "Loaded image: zoci:v3" "$out"

# ---- two layers: the upper one deletes, replaces and hides -------------------
mkdir -p "$W/up/etc" "$W/up/home"
echo replaced > "$W/up/etc/hostname"
echo new > "$W/up/home/only-new"
$MK tar "$W/upper.tar" "$W/up" --whiteout etc/motd --opaque home
$MK docker "$W/two" two:layers "$FIXTURE_TAR" "$W/upper.tar"
check "two-layer image loads" quiet $O image load -i "$W/two"
up=$(ls -d "$ORCH_ROOT"/layers/"$(sha256sum "$W/upper.tar" | cut -c1-64)"/diff)
check_eq "whiteout became a 0/0 char device" "character special file 0:0" \
	"$(stat -c '%F %t:%T' "$up/etc/motd" 2>&1)"
check_eq "opaque dir has trusted.overlay.opaque=y" "y" \
	"$(getfattr --only-values -n trusted.overlay.opaque "$up/home" 2>/dev/null ||
		python3 -c 'import os,sys;print(os.getxattr(sys.argv[1],"trusted.overlay.opaque").decode())' "$up/home")"
m=$W/merged
mkdir -p "$m"
mount -t overlay overlay -o "ro,lowerdir=$up:$lower" "$m"
check "merged: deleted file absent" test ! -e "$m/etc/motd"
check_eq "merged: replaced file" replaced "$(cat "$m/etc/hostname")"
check "merged: opaque dir hides the lower content" test ! -e "$m/home/user"
check "merged: opaque dir keeps its own content" test -e "$m/home/only-new"
check "merged: untouched file from the lower" test -x "$m/bin/busybox"
umount "$m"

# ---- hostile archives -----------------------------------------------------------
mkdir -p "$T/outside"
before=$(layers_count)
for kind in dotdot absolute symlink hardlink; do
	ESCAPE_DIR=$T/outside $MK hostile $kind "$W/h-$kind.tar"
	$O image import "$W/h-$kind.tar" hostile:$kind >/dev/null 2>"$W/err"
	rc=$?
	check_eq "hostile $kind: refused" 1 $rc
	case $kind in
	dotdot | absolute) want='escapes the layer' ;;
	symlink) want='goes through a symlink' ;;
	hardlink) want='points outside the layer' ;;
	esac
	check_match "hostile $kind: clear error" "$want" "$(cat "$W/err")"
done
$O image load -i "$W/h-dotdot.tar" >/dev/null 2>"$W/err"
check_eq "hostile archive given to load: refused" 1 $?
check_match "hostile archive given to load: clear error" 'escapes' "$(cat "$W/err")"
check "nothing written outside" test -z "$(ls -A "$T/outside")"
check "no /etc/x" test ! -e /etc/x
check_eq "no layer stored from hostile archives" "$before" "$(layers_count)"
check "no scratch left after refusals" tmp_empty
check "hostile images not listed" sh -c "! $O images | grep -q hostile"

# Device nodes: only docker's default devices are created.
$MK hostile devices "$W/dev.tar"
check "layer with devices imports" quiet $O image import "$W/dev.tar" devs:1
dl=$ORCH_ROOT/layers/$(sha256sum "$W/dev.tar" | cut -c1-64)/diff
check_eq "allowed device kept (/dev/null 1:3)" "character special file 1:3" \
	"$(stat -c '%F %t:%T' "$dl/dev/null" 2>&1)"
check "block device left out (/dev/sda)" test ! -e "$dl/dev/sda"
check "other character device left out (/dev/mem)" test ! -e "$dl/dev/mem"
check "a 0/0 device in the tar is not taken as a whiteout" test ! -e "$dl/dev/fake-whiteout"
quiet $O image rm devs:1
before=$(layers_count)

# Digest mismatches: a wrong diff_id, a tampered OCI blob.
$MK docker "$W/bad" bad:diff --bad-diff-id "$W/upper.tar"
$O image load -i "$W/bad" >/dev/null 2>"$W/err"
check_eq "diff_id mismatch: refused" 1 $?
check_match "diff_id mismatch: clear error" 'mismatch' "$(cat "$W/err")"
mkdir -p "$W/small"
echo hello > "$W/small/x"
$MK tar "$W/small.tar" "$W/small"
gzip -c "$W/small.tar" > "$W/small.tar.gz"
$MK oci "$W/tamper" v1 "$W/small.tar.gz"
blob=$W/tamper/blobs/sha256/$(sha256sum "$W/small.tar.gz" | cut -c1-64)
gzip -c "$W/upper.tar" > "$blob"
$O image load -i "$W/tamper" >/dev/null 2>"$W/err"
check_eq "tampered blob: refused" 1 $?
check_match "tampered blob: clear error" 'digest mismatch' "$(cat "$W/err")"
check "no image from bad archives" sh -c "! $O images | grep -Eq '^(bad|tamper) '"

# Truncated gzip.
size=$(stat -c %s "$W/base.tar.gz")
head -c $((size / 2)) "$W/base.tar.gz" > "$W/trunc.tar.gz"
$O image import "$W/trunc.tar.gz" trunc >/dev/null 2>"$W/err"
check_eq "truncated gzip: refused" 1 $?
check_match "truncated gzip: clear error" '[Tt]runcated|unexpected end|EOF' "$(cat "$W/err")"
check_eq "truncated gzip: no layer stored" "$before" "$(layers_count)"
check "no scratch left after truncation" tmp_empty

# ---- rm with shared layers and users -----------------------------------------------
mkdir -p "$ORCH_RUN/runtime/ctr-uses-two"
two_id=$($O image inspect two:layers | sed -n 's/.*"Id": "sha256:\([0-9a-f]*\)".*/\1/p')
echo "$two_id" > "$ORCH_RUN/runtime/ctr-uses-two/image"
$O image rm two:layers >/dev/null 2>"$W/err"
check_eq "rm refused while a container uses the image" 1 $?
check_match "rm names the container" 'in use by container ctr-uses-two' "$(cat "$W/err")"
rm -rf "$ORCH_RUN/runtime/ctr-uses-two"
check_eq "rm once unused: untagged and deleted" "Untagged: two:layers
Deleted: sha256:$two_id" "$($O image rm two:layers 2>&1)"
check "upper layer removed with its last image" test ! -e "$up"
check "shared lower layer kept" test -x "$lower/bin/busybox"
$O image rm busybox:again >/dev/null
for r in busybox dock:v1 ocibox:v2 zoci:v3; do $O image rm "$r" >/dev/null; done
check_eq "all images removed" "" "$($O images -q)"
check_eq "all layers removed" 0 "$(layers_count)"

finish
