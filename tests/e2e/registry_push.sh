#!/bin/sh
# Pushing to a real registry (docker-registry on 127.0.0.1): an image built
# from a compose file (`orch push`), pulled back on a clean store with the
# same image id; a second push that finds every blob there; a retag pushed
# to another repository (blobs mounted); an imported (uncompressed) image
# sent gzip-compressed; a zstd image kept zstd (OCI manifest); RepoDigests
# recorded; a foreign layer fetched from its URL and named, not sent, by a
# push; and the failures, each with its message.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/registry_helpers.inc"
cd "$W" || exit 1
R=127.0.0.1:5000
reg_start reg "$R" || { fail "registry starts"; finish; }
# The build's RUN steps start netd in this suite's namespaces.
on_exit stop_netd

image_id() { $O image inspect "$1" | jq -r '.[0].Id'; }
manifest_at() { curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' "http://$1/v2/$2/manifests/$3"; }
manifest() { manifest_at "$R" "$@"; }
# A clean store of its own, for pulling back what was pushed.
clean() { _n=$1; shift; ORCH_ROOT=$T/clean$_n $O "$@"; }

$O image import "$FIXTURE_TAR" busybox >/dev/null || fail "importing busybox"
mkdir -p app
cat >app/Dockerfile <<'EOF'
FROM busybox
RUN mkdir -p /data && echo one >/data/a && echo two >/data/b
COPY hello.txt /hello.txt
RUN rm /data/a
CMD ["cat", "/hello.txt"]
EOF
echo hello >app/hello.txt
cat >compose.yaml <<EOF
services:
  app:
    build: ./app
    image: $R/team/app:v1
  plain:
    image: busybox
EOF

# ---- orch push of a built service -----------------------------------------
$O build app >"$W/build.log" 2>&1
check_eq "build app: exit 0" 0 $?
id=$(image_id "$R/team/app:v1")
out=$($O push 2>&1)
check_eq "orch push: exit 0" 0 $?
check_match "says the service is pushed" "app Pushed" "$out"
if printf '%s\n' "$out" | grep -q "plain Push"; then
	fail "a service that is not built is not pushed"
else
	pass "a service that is not built is not pushed"
fi
m=$(manifest team/app v1)
check_eq "the registry has the tag, as a Docker v2 schema 2 manifest" \
	application/vnd.docker.distribution.manifest.v2+json "$(printf '%s' "$m" | jq -r .mediaType)"
check_eq "its config is the image's config (same id)" "$id" "$(printf '%s' "$m" | jq -r .config.digest)"
check_eq "one blob per layer" "$($O image inspect "$R/team/app:v1" | jq '.[0].RootFS.Layers | length')" \
	"$(printf '%s' "$m" | jq '.layers | length')"
check_eq "every layer gzip" "" "$(printf '%s' "$m" | jq -r '.layers[].mediaType' | grep -v '^application/vnd.docker.image.rootfs.diff.tar.gzip$')"
digest=sha256:$(printf '%s' "$m" | sha256sum | cut -d' ' -f1)
check_match "RepoDigests records the pushed manifest" "$R/team/app@$digest" \
	"$($O image inspect "$R/team/app:v1" | jq -r '.[0].RepoDigests[]')"

out=$(clean 1 image pull "$R/team/app:v1" 2>&1)
check_eq "pull back on a clean store: exit 0" 0 $?
check_eq "pulled back: the same image id" "$id" "$(clean 1 image inspect "$R/team/app:v1" | jq -r '.[0].Id')"
check_eq "pulled back: the same layers" \
	"$($O image inspect "$R/team/app:v1" | jq -c '.[0].RootFS.Layers')" \
	"$(clean 1 image inspect "$R/team/app:v1" | jq -c '.[0].RootFS.Layers')"
layer_of() { clean 1 image inspect "$R/team/app:v1" | jq -r ".[0].RootFS.Layers[$1]" | cut -d: -f2; }
check "pulled back: the deleted file is a whiteout in the top layer" test -c "$T/clean1/layers/$(layer_of -1)/diff/data/a"
check "pulled back: the copied file in the layer below" grep -qx hello "$T/clean1/layers/$(layer_of -2)/diff/hello.txt"

# ---- a second push finds everything there -----------------------------------
out=$($O image push "$R/team/app:v1" 2>&1)
check_eq "second push: exit 0" 0 $?
check_eq "second push: every layer already exists" \
	"$($O image inspect "$R/team/app:v1" | jq '.[0].RootFS.Layers | length')" \
	"$(printf '%s\n' "$out" | grep -c 'Layer already exists')"
check_match "and prints the same digest" "v1: digest: $digest size: [0-9]+" "$out"

# ---- a retag to another repository: mounted, not sent again -------------------
$O image tag "$R/team/app:v1" "$R/other/app:v2"
out=$($O image push "$R/other/app:v2" 2>&1)
check_eq "push of a retag: exit 0" 0 $?
check_match "its layers are mounted from the first repository" "Mounted from team/app" "$out"
check_eq "pulled back from there: the same image id" "$id" \
	"$(clean 2 image pull -q "$R/other/app:v2" >/dev/null && clean 2 image inspect "$R/other/app:v2" | jq -r '.[0].Id')"

# ---- an imported image: its uncompressed layer is sent gzip ------------------
bid=$(image_id busybox)
$O image tag busybox "$R/bb:v1"
out=$($O image push "$R/bb:v1" 2>&1)
check_eq "push of an imported image: exit 0" 0 $?
m=$(manifest bb v1)
check_eq "its layer is sent gzip" application/vnd.docker.image.rootfs.diff.tar.gzip "$(printf '%s' "$m" | jq -r '.layers[0].mediaType')"
blob=$(printf '%s' "$m" | jq -r '.layers[0].digest')
check_eq "the blob is the gzip of the imported tar" "$(sha256sum <"$FIXTURE_TAR" | cut -d' ' -f1)" \
	"$(curl -sf "http://$R/v2/bb/blobs/$blob" | gzip -dc | sha256sum | cut -d' ' -f1)"
check_eq "pulled back: the same image id" "$bid" \
	"$(clean 3 image pull -q "$R/bb:v1" >/dev/null && clean 3 image inspect "$R/bb:v1" | jq -r '.[0].Id')"
$O image tag busybox "$R/bb2:v1"
$O image push "$R/bb2:v1" >/dev/null 2>&1
check_eq "compressed again, the same blob (no time in the gzip header)" "$blob" \
	"$(manifest bb2 v1 | jq -r '.layers[0].digest')"

# ---- a zstd image stays zstd: an OCI manifest ------------------------------------
# (pulled into a store of its own: in this one the busybox layer is kept
# as imported)
zstd -q -c "$FIXTURE_TAR" >"$W/base.tar.zst"
$MK oci "$W/zoci" v1 --cmd /bin/sh "$W/base.tar.zst"
skopeo_put "oci:$W/zoci:v1" "$R/bbz:v1"
clean 5 image pull -q "$R/bbz:v1" >/dev/null
zid=$(clean 5 image inspect "$R/bbz:v1" | jq -r '.[0].Id')
clean 5 image tag "$R/bbz:v1" "$R/bbz2:v1"
out=$(clean 5 image push "$R/bbz2:v1" 2>&1)
check_eq "push of a zstd image: exit 0" 0 $?
m=$(manifest bbz2 v1)
check_eq "an OCI manifest" application/vnd.oci.image.manifest.v1+json "$(printf '%s' "$m" | jq -r .mediaType)"
check_eq "its layer zstd, as pulled" application/vnd.oci.image.layer.v1.tar+zstd "$(printf '%s' "$m" | jq -r '.layers[0].mediaType')"
check_eq "pulled back: the same image id" "$zid" \
	"$(clean 4 image pull -q "$R/bbz2:v1" >/dev/null && clean 4 image inspect "$R/bbz2:v1" | jq -r '.[0].Id')"

# ---- a foreign layer: fetched from its URL, named (not sent) by a push ----------------
RF=127.0.0.1:5002
REG_EXTRA="validation: {manifests: {urls: {allow: ['^http://127\\.0\\.0\\.1:5010/']}}}" \
	reg_start foreign "$RF" || fail "registry accepting foreign URLs starts"
mkdir -p "$W/fsrv" "$W/fl/etc" && echo foreign >"$W/fl/etc/foreign"
$MK tar "$W/fl.tar" "$W/fl"
gzip -n -c "$W/fl.tar" >"$W/fsrv/fl.tar.gz"
(cd "$W/fsrv" && exec python3 -m http.server --bind 127.0.0.1 5010 >"$T/fsrv.log" 2>&1) &
on_exit "kill $!"
wait_for 5 curl -s -o /dev/null http://127.0.0.1:5010/ || fail "the foreign layer's server listens"
$MK docker "$W/bb" bb:v1 --cmd /bin/sh "$FIXTURE_TAR"
docker_archive "$W/bb" "$W/bb.tar"
skopeo_put "docker-archive:$W/bb.tar" "$RF/fbase:v1"
# The image: busybox's layer, then the foreign one, which the registry
# never holds (as Windows base layers are published).
python3 - "$RF" "$W/fl.tar" "$W/fsrv/fl.tar.gz" <<'PY' || fail "the foreign image is made"
import hashlib, json, sys, urllib.request
reg, tar, gz = sys.argv[1:4]
def call(method, url, data=None, ctype=None, accept=None):
    rq = urllib.request.Request("http://%s%s" % (reg, url) if url.startswith("/") else url,
                                data=data, method=method)
    if ctype: rq.add_header("Content-Type", ctype)
    if accept: rq.add_header("Accept", accept)
    return urllib.request.urlopen(rq)
D2 = "application/vnd.docker.distribution.manifest.v2+json"
m = json.load(call("GET", "/v2/fbase/manifests/v1", accept=D2))
cfg = json.load(call("GET", "/v2/fbase/blobs/" + m["config"]["digest"]))
cfg["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(open(tar, "rb").read()).hexdigest())
cb = json.dumps(cfg).encode()
cd = "sha256:" + hashlib.sha256(cb).hexdigest()
loc = call("POST", "/v2/fimg/blobs/uploads/").headers["Location"]
call("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + cd, cb, "application/octet-stream")
call("POST", "/v2/fimg/blobs/uploads/?mount=%s&from=fbase" % m["layers"][0]["digest"])
g = open(gz, "rb").read()
m["config"] = {"mediaType": m["config"]["mediaType"], "size": len(cb), "digest": cd}
m["layers"].append({"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                    "size": len(g), "digest": "sha256:" + hashlib.sha256(g).hexdigest(),
                    "urls": ["http://127.0.0.1:5010/fl.tar.gz"]})
call("PUT", "/v2/fimg/manifests/v1", json.dumps(m).encode(), D2)
PY
fdigest=sha256:$(sha256sum <"$W/fsrv/fl.tar.gz" | cut -d' ' -f1)
check_eq "the registry does not hold the foreign layer" 404 \
	"$(curl -s -o /dev/null -w '%{http_code}' "http://$RF/v2/fimg/blobs/$fdigest")"
out=$(clean 6 image pull "$RF/fimg:v1" 2>&1)
check_eq "pull of an image with a foreign layer: exit 0" 0 $?
check_match "the foreign layer came from its URL" "GET /fl.tar.gz" "$(cat "$T/fsrv.log")"
check "and is in the image" grep -rqx foreign "$T/clean6/layers" --include=foreign
clean 6 image tag "$RF/fimg:v1" "$RF/fcopy:v1"
out=$(clean 6 image push "$RF/fcopy:v1" 2>&1)
check_eq "push of an image with a foreign layer: exit 0" 0 $?
check_match "the foreign layer is skipped, as docker does" "Skipped foreign layer" "$out"
check_eq "and not sent to the registry" 404 \
	"$(curl -s -o /dev/null -w '%{http_code}' "http://$RF/v2/fcopy/blobs/$fdigest")"
check_eq "the manifest names it with its URL" "http://127.0.0.1:5010/fl.tar.gz" \
	"$(manifest_at "$RF" fcopy v1 | jq -r '.layers[1].urls[0]')"
check_eq "pulled back from there: the same image id" "$(clean 6 image inspect "$RF/fimg:v1" | jq -r '.[0].Id')" \
	"$(clean 7 image pull -q "$RF/fcopy:v1" >/dev/null && clean 7 image inspect "$RF/fcopy:v1" | jq -r '.[0].Id')"

# ---- failures ------------------------------------------------------------------
out=$($O image push "$R/nosuch:v1" 2>&1)
check_eq "push of an image not in the store: exit 1" 1 $?
check_match "says so, and how to tag one" "$R/nosuch:v1: no such image in the store .*orch image tag" "$out"
out=$($O image push "$R/bb@sha256:$(printf %064d 0)" 2>&1)
check_eq "push by digest: exit 1" 1 $?
check_match "says a push names a tag" "a push names a tag, not a digest" "$out"
$O image tag busybox 127.0.0.1:5999/bb:v1
out=$($O image push 127.0.0.1:5999/bb:v1 2>&1)
check_eq "push to a registry that does not answer: exit 1" 1 $?
check_match "names the registry" "127.0.0.1:5999" "$out"
out=$($O image push 2>&1)
check_eq "image push without a name: exit 2" 2 $?
out=$($O push nosuch 2>&1)
check_eq "orch push of an unknown service: exit 1" 1 $?
check_match "names it" "no such service: nosuch" "$out"
check_eq "nothing left in the scratch directory" 0 \
	"$(find "$ORCH_ROOT/tmp" -mindepth 1 -maxdepth 1 -name 'push-*' 2>/dev/null | wc -l)"
finish
