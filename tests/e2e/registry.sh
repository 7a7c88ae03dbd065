#!/bin/sh
# Pulling from a real registry (docker-registry on 127.0.0.1, filled with
# skopeo): docker archives and OCI layouts, gzip and zstd layers, an OCI
# index with two platforms, a 5-layer image with whiteouts, references by
# tag and by digest, and the failures (unknown image, unknown platform,
# corrupted blob, foreign media type) each with its message and nothing
# left in the store.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/registry_helpers.inc"
cd "$W" || exit 1
R=127.0.0.1:5000
reg_start reg "$R" || { fail "registry starts"; finish; }

# ---- fixtures ---------------------------------------------------------------
$MK docker "$W/bb" bb:v1 --cmd /bin/sh "$FIXTURE_TAR"
docker_archive "$W/bb" "$W/bb.tar"
skopeo_put "docker-archive:$W/bb.tar" "$R/bb:v1"
zstd -q -c "$FIXTURE_TAR" >"$W/base.tar.zst"
$MK oci "$W/zoci" v1 --cmd /bin/sh "$W/base.tar.zst"
skopeo_put "oci:$W/zoci:v1" "$R/bbz:v1"
mkdir -p "$W/arm/etc"
echo arm >"$W/arm/etc/arch"
$MK tar "$W/arm.tar" "$W/arm"
gzip -kn "$W/arm.tar"
$MK oci-multi "$W/multi" v1 "linux/amd64=$FIXTURE_TAR" "linux/arm64=$W/arm.tar.gz"
skopeo_put "oci:$W/multi:v1" "$R/multi:v1" --all
# Five layers: busybox, then files added, deleted (whiteout), a directory
# made opaque, a file replaced.
for n in 1 2 3 4; do mkdir -p "$W/l$n/data"; done
echo one >"$W/l1/data/a"
echo keep >"$W/l1/data/b"
mkdir -p "$W/l1/opq" && echo old >"$W/l1/opq/old"
echo two >"$W/l2/data/c"
mkdir -p "$W/l3/opq" && echo new >"$W/l3/opq/new"
echo replaced >"$W/l4/data/b"
$MK tar "$W/l1.tar" "$W/l1"
$MK tar "$W/l2.tar" "$W/l2" --whiteout data/a
$MK tar "$W/l3.tar" "$W/l3" --opaque opq
$MK tar "$W/l4.tar" "$W/l4"
$MK docker "$W/five" five:v1 --cmd /bin/sh "$FIXTURE_TAR" "$W/l1.tar" "$W/l2.tar" "$W/l3.tar" "$W/l4.tar"
docker_archive "$W/five" "$W/five.tar"
skopeo_put "docker-archive:$W/five.tar" "$R/team/five:v1"

# ---- a docker archive, by tag -------------------------------------------------
out=$($O image pull "$R/bb:v1" 2>&1)
check_eq "pull bb: exit 0" 0 $?
check_match "pull prints the digest" "Digest: sha256:[0-9a-f]{64}" "$out"
check_match "pull says it downloaded" "Status: Downloaded newer image for $R/bb:v1" "$out"
check_match "pull shows the layer's progress" "[0-9a-f]{12}: Pull complete" "$out"
id=$($O image inspect "$R/bb:v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Id"])')
cfg=$(ls "$W/bb" | grep '\.json$' | grep -v manifest)
check_eq "image id is the config's digest (as loaded from the archive)" "sha256:${cfg%.json}" "$id"
check_match "listed under its name" "^$R/bb +v1 " "$($O images)"
lower=$(ls -d "$ORCH_ROOT"/layers/*/diff | head -1)
check "layer extracted: busybox is there" test -x "$lower/bin/busybox"
check_eq "nothing left in the scratch directory" 0 "$(tmp_layers)"
digest=$(printf '%s\n' "$out" | sed -n 's/^Digest: //p')
out=$($O image pull "$R/bb:v1" 2>&1)
check_match "second pull: up to date" "Image is up to date for $R/bb:v1" "$out"
check_match "second pull: layer already exists" "Already exists" "$out"
check_match "images --digests shows the manifest digest" "^$R/bb +v1 +$digest " "$($O images --digests)"

# ---- by digest ----------------------------------------------------------------
$O image rm "$R/bb:v1" >/dev/null
check_eq "image removed" 0 "$(images_count)"
out=$($O image pull "$R/bb@$digest" 2>&1)
check_eq "pull by digest: exit 0" 0 $?
check_eq "pull by digest: same image" "$id" "$($O image inspect "$R/bb@$digest" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Id"])')"
bad=sha256:$(printf x | sha256sum | cut -c1-64)
$O image pull "$R/bb@$bad" >/dev/null 2>"$W/err"
check_eq "unknown digest: exit 1" 1 $?
check_match "unknown digest: names the reference" "$R/bb@$bad: not found in $R" "$(cat "$W/err")"

# ---- zstd layer in an OCI layout -----------------------------------------------
mt=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/bbz/manifests/v1" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["mediaType"])')
check_eq "the registry holds a zstd layer" "application/vnd.oci.image.layer.v1.tar+zstd" "$mt"
n=$(layers_count)
out=$($O image pull "$R/bbz:v1" 2>&1)
check_eq "pull zstd: exit 0" 0 $?
check_match "zstd: the same layer (same diff_id) already exists" "Already exists" "$out"
check_eq "zstd: no second copy of the layer" "$n" "$(layers_count)"

# ---- an OCI index with two platforms -----------------------------------------
$O image pull "$R/multi:v1" >/dev/null 2>"$W/err"
check_eq "pull index: exit 0" 0 $?
arch() { $O image inspect "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Architecture"])'; }
check_eq "index: the host's platform chosen" amd64 "$(arch "$R/multi:v1")"
$O image pull --platform linux/arm64 "$R/multi:v1" >/dev/null 2>"$W/err"
check_eq "pull --platform linux/arm64: exit 0" 0 $?
check_eq "index: --platform chooses arm64" arm64 "$(arch "$R/multi:v1")"
arm_lower=$(grep -l arm "$ORCH_ROOT"/layers/*/diff/etc/arch 2>/dev/null | head -1)
check "index: the arm64 layer is stored" test -n "$arm_lower"
n=$(layers_count)
$O image pull --platform linux/s390x "$R/multi:v1" >/dev/null 2>"$W/err"
check_eq "missing platform: exit 1" 1 $?
check_match "missing platform: says which there are" \
	"no image for platform linux/s390x .*linux/amd64, linux/arm64" "$(cat "$W/err")"
check_eq "missing platform: store unchanged" "$n" "$(layers_count)"

# ---- five layers with whiteouts -------------------------------------------------
$O image pull "$R/team/five:v1" >/dev/null 2>"$W/err"
check_eq "pull 5 layers: exit 0" 0 $?
wh=$(find "$ORCH_ROOT"/layers/*/diff/data -maxdepth 1 -name a -type c 2>/dev/null | wc -l)
check_eq "whiteout became an overlay whiteout (char 0/0)" 1 "$wh"
opq=$(for d in "$ORCH_ROOT"/layers/*/diff/opq; do
	python3 -c 'import os,sys;print(os.getxattr(sys.argv[1],"trusted.overlay.opaque").decode())' "$d" 2>/dev/null
done | grep -c y)
check_eq "opaque directory marked for overlayfs" 1 "$opq"

# ---- failures: nothing is left behind ---------------------------------------------
imgs=$(images_count) n=$(layers_count)
$O image pull "$R/nosuch:v1" >/dev/null 2>"$W/err"
check_eq "unknown image: exit 1" 1 $?
check_match "unknown image: names the reference and the registry" "$R/nosuch:v1: not found in $R" "$(cat "$W/err")"
$O image pull "127.0.0.1:5999/bb:v1" >/dev/null 2>"$W/err"
check_eq "no registry there: exit 1" 1 $?
check_match "no registry there: says so" "127.0.0.1:5999" "$(cat "$W/err")"
$O image pull "Bad/Name" >/dev/null 2>"$W/err"
check_eq "malformed reference: exit 1" 1 $?
check_match "malformed reference: says why" "invalid reference format" "$(cat "$W/err")"
# A corrupted blob in the registry's storage: the digest check refuses it.
$MK tar "$W/small.tar" "$W/l2"
gzip -kn "$W/small.tar"
$MK oci "$W/sm" v1 "$W/small.tar.gz"
skopeo_put "oci:$W/sm:v1" "$R/corrupt:v1"
blob=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/corrupt/manifests/v1" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"][7:])')
data=$(find "$T/reg" -path "*/blobs/sha256/*/$blob/data")
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[-9]^=0xff; open(p,"wb").write(b)' "$data"
imgs=$(images_count) n=$(layers_count)
$O image pull "$R/corrupt:v1" >/dev/null 2>"$W/err"
check_eq "corrupted layer: exit 1" 1 $?
check_match "corrupted layer: digest mismatch named" "digest mismatch|crc|checksum|corrupt" "$(cat "$W/err")"
check_eq "corrupted layer: no image" "$imgs" "$(images_count)"
check_eq "corrupted layer: no layer" "$n" "$(layers_count)"
check_eq "corrupted layer: scratch directory empty" 0 "$(tmp_layers)"
# Not a container image: an artifact with its own config type.
printf '{}' >"$W/art.json"
adg=sha256:$(sha256sum "$W/art.json" | cut -c1-64)
loc=$(curl -s -D - -o /dev/null -X POST "http://$R/v2/art/blobs/uploads/" | tr -d '\r' | sed -n 's/^Location: //Ip')
case $loc in http*) ;; *) loc=http://$R$loc ;; esac
curl -s -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$W/art.json" "$loc&digest=$adg"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"%s","size":2},"layers":[]}' "$adg" >"$W/art-m.json"
curl -s -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @"$W/art-m.json" "http://$R/v2/art/manifests/v1"
$O image pull "$R/art:v1" >/dev/null 2>"$W/err"
check_eq "artifact: exit 1" 1 $?
check_match "artifact: unsupported media type named" "unsupported media type application/vnd.cncf.helm.config.v1\+json" "$(cat "$W/err")"
check_eq "failures changed no image" "$imgs" "$(images_count)"

finish
