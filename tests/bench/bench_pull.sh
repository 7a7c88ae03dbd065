#!/bin/sh
# Pull speed from a local registry (Debian's docker-registry on 127.0.0.1,
# in a network namespace of its own), side by side in one run, alternating:
#   orch image pull             (download, decompress, extract: in parallel)
#   podman pull                 (when installed: the same, into its store)
#   skopeo copy docker:// oci:  (download and store blobs, no extraction)
#   floor                       the same blobs fetched with curl in parallel,
#                               each piped through gzip -d | tar -x
# on a 5-layer image of about 150 MiB compressed (the Debian base and four
# layers of incompressible data) and on a 10-image stack sharing the Debian
# base, where the registry's log counts how often each blob was fetched.
# REPS (3) runs of each; medians and ratios are printed.
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=$TOP/build
. "$(dirname "$0")/sandbox.inc"
REPS=${REPS:-3}
T=$(mktemp -d /tmp/orch-bench-pull.XXXXXX)
trap 'kill $REG 2>/dev/null; rm -rf "$T"' EXIT
O=$B/orch
MK="python3 $TOP/tests/fixtures/mkimage.py"
R=127.0.0.1:5000
BASE=$B/debian-bookworm.tar
[ -s "$BASE" ] || { echo "bench_pull: $BASE missing (make $BASE)"; exit 1; }

cat >"$T/reg.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $T/reg}}
http: {addr: $R}
EOF
docker-registry serve "$T/reg.yml" >"$T/reg.log" 2>&1 &
REG=$!
i=0
until curl -s -o /dev/null "http://$R/v2/"; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "bench_pull: the registry did not start"; exit 1; }
	sleep 0.1
done

# ---- the images ------------------------------------------------------------
gzip -1 -c "$BASE" >"$T/base.tar.gz"
layers="$T/base.tar.gz"
for n in 1 2 3 4; do
	mkdir -p "$T/l$n/data"
	head -c $((12 << 20)) /dev/urandom >"$T/l$n/data/blob$n"
	$MK tar "$T/l$n.tar" "$T/l$n"
	gzip -1 -c "$T/l$n.tar" >"$T/l$n.tar.gz"
	layers="$layers $T/l$n.tar.gz"
done
# shellcheck disable=SC2086
$MK oci "$T/big" v1 --cmd /bin/sh $layers
skopeo copy -q --dest-tls-verify=false "oci:$T/big:v1" "docker://$R/big:v1"
for n in 0 1 2 3 4 5 6 7 8 9; do
	mkdir -p "$T/s$n/app"
	head -c $((2 << 20)) /dev/urandom >"$T/s$n/app/own$n"
	$MK tar "$T/s$n.tar" "$T/s$n"
	gzip -1 -c "$T/s$n.tar" >"$T/s$n.tar.gz"
	$MK oci "$T/stack$n" v1 --cmd /bin/sh "$T/base.tar.gz" "$T/s$n.tar.gz"
	skopeo copy -q --dest-tls-verify=false "oci:$T/stack$n:v1" "docker://$R/stack$n:v1"
done
size=$(du -cb "$T"/base.tar.gz "$T"/l?.tar.gz | tail -1 | cut -f1)
echo "image: 5 layers, $((size >> 20)) MiB compressed; stack: 10 images sharing the base"

now() { date +%s%N; }
# Runs "$@" REPS times alternating is the caller's job: this times one.
timed() {
	t0=$(now)
	"$@" >/dev/null 2>"$T/err" || { echo "bench_pull: failed: $*"; sed 's/^/  /' "$T/err"; return 1; }
	echo $((($(now) - t0) / 1000000))
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
fresh() { rm -rf "$T/out" && mkdir -p "$T/out"; }

orch_pull() { ORCH_ROOT=$T/out/orch "$O" image pull -q "$@"; }
orch_stack() { ORCH_ROOT=$T/out/orch "$O" -f "$T/stack.yaml" pull -q; }
{
	echo "services:"
	for n in 0 1 2 3 4 5 6 7 8 9; do printf '  s%s:\n    image: %s/stack%s:v1\n' $n "$R" $n; done
} >"$T/stack.yaml"
HAVE_PODMAN=
command -v podman >/dev/null 2>&1 && HAVE_PODMAN=1
pm() {
	podman --root "$T/out/podman" --runroot "$T/out/podman-run" --storage-driver overlay \
		--cgroup-manager cgroupfs "$@"
}
podman_pull() { pm pull -q --tls-verify=false "$@"; }
podman_stack() {
	for n in 0 1 2 3 4 5 6 7 8 9; do podman_pull "$R/stack$n:v1" & done
	wait
}
skopeo_pull() { skopeo copy -q --src-tls-verify=false "docker://$1" "oci:$T/out/oci:x"; }
# The floor: every blob of the manifest, in parallel, through gzip -d | tar -x.
floor() {
	repo=$1 tag=$2
	curl -sf -H "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" \
		"http://$R/v2/$repo/manifests/$tag" >"$T/out/m.json"
	n=0
	for d in $(jq -r '.layers[].digest' "$T/out/m.json"); do
		n=$((n + 1))
		mkdir -p "$T/out/f$n"
		(curl -sf "http://$R/v2/$repo/blobs/$d" | gzip -d | tar -x -C "$T/out/f$n") &
	done
	wait
	[ "$n" -gt 0 ]
}
blob_gets() { grep -c "GET /v2/[^ ]*/blobs/sha256:$1" "$T/reg.log" || true; }

o1= p1= s1= f1= o2= p2=
for rep in $(seq "$REPS"); do
	fresh; o1="$o1 $(timed orch_pull "$R/big:v1")"
	if [ -n "$HAVE_PODMAN" ]; then fresh; p1="$p1 $(timed podman_pull "$R/big:v1")"; fi
	fresh; s1="$s1 $(timed skopeo_pull "$R/big:v1")"
	fresh; f1="$f1 $(timed floor big v1)"
	fresh; : >"$T/reg.log"
	o2="$o2 $(timed orch_stack)"
	base_gets=$(blob_gets "$(sha256sum <"$T/base.tar.gz" | cut -c1-64)")
	if [ -n "$HAVE_PODMAN" ]; then fresh; p2="$p2 $(timed podman_stack)"; fi
done
fresh
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mo1=$(echo "$o1" | median) ms1=$(echo "$s1" | median) mf1=$(echo "$f1" | median)
echo "5-layer image (median of $REPS, ms):"
echo "  orch image pull:   $mo1"
if [ -n "$HAVE_PODMAN" ]; then
	mp1=$(echo "$p1" | median)
	echo "  podman pull:       $mp1   (orch/podman $(ratio "$mo1" "$mp1"), goal <= 0.5)"
else
	echo "  podman pull:       not installed (apt-get install podman), no comparison"
fi
echo "  skopeo copy (oci): $ms1   (orch/skopeo $(ratio "$mo1" "$ms1"); skopeo does not extract)"
echo "  floor (curl | gzip -d | tar -x, parallel): $mf1   (orch/floor $(ratio "$mo1" "$mf1"), goal <= 1.2)"
mo2=$(echo "$o2" | median)
echo "10-image stack sharing a base (median of $REPS, ms):"
echo "  orch pull:         $mo2   (the shared base fetched $base_gets time(s))"
if [ -n "$HAVE_PODMAN" ]; then
	mp2=$(echo "$p2" | median)
	echo "  podman pull x10 (parallel): $mp2   (orch/podman $(ratio "$mo2" "$mp2"))"
fi
