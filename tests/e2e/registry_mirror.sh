#!/bin/sh
# Registry mirrors and registries configuration: docker's "registry-mirrors"
# (for Docker Hub) and "mirrors" in $ORCH_ROOT/registries.json, and
# podman's registries.conf ([[registry]] with location, insecure, blocked
# and [[registry.mirror]]), read from CONTAINERS_REGISTRIES_CONF here.  A
# mirror that is down or lacks the image is passed over; the suite's
# network namespace has no way out, so Docker Hub itself never answers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/registry_helpers.inc"
cd "$W" || exit 1
ORIGIN=127.0.0.1:5000
MIRROR=127.0.0.1:5001
reg_start origin "$ORIGIN" || { fail "origin registry starts"; finish; }
reg_start mirror "$MIRROR" || { fail "mirror registry starts"; finish; }

$MK docker "$W/bb" bb:v1 --cmd /bin/sh "$FIXTURE_TAR"
docker_archive "$W/bb" "$W/bb.tar"
mkdir -p "$W/x/etc" && echo only-origin >"$W/x/etc/where"
$MK tar "$W/x.tar" "$W/x"
$MK docker "$W/orig" orig:v1 --cmd /bin/sh "$FIXTURE_TAR" "$W/x.tar"
docker_archive "$W/orig" "$W/orig.tar"
# Docker Hub's busybox, as a mirror of it would hold it.
skopeo_put "docker-archive:$W/bb.tar" "$MIRROR/library/busybox:mirrored"
# An image of the origin, and a copy of it in the mirror under a prefix.
skopeo_put "docker-archive:$W/bb.tar" "$ORIGIN/team/app:v1"
skopeo_put "docker-archive:$W/bb.tar" "$MIRROR/cache/team/app:v1"
skopeo_put "docker-archive:$W/orig.tar" "$ORIGIN/team/app:only-origin"
# Only the mirror has this one: pulling it proves the mirror was asked.
skopeo_put "docker-archive:$W/bb.tar" "$MIRROR/cache/team/app:mirror-only"

# ---- Docker Hub through registry-mirrors ------------------------------------
out=$($O image pull busybox:mirrored 2>&1)
check_eq "without a mirror, Docker Hub is out of reach: exit 1" 1 $?
check_match "and the error names Docker Hub" "docker.io" "$out"
printf '{"registry-mirrors": ["http://%s"]}\n' "$MIRROR" >"$ORCH_ROOT/registries.json"
out=$($O image pull busybox:mirrored 2>&1)
check_eq "with registry-mirrors: pulled from the mirror" 0 $?
check_match "recorded under its Docker Hub name" "^busybox +mirrored " "$($O images)"
check_match "and its digest" "busybox@sha256:" "$($O image inspect busybox:mirrored | jq -r '.[0].RepoDigests[]')"
$O image rm busybox:mirrored >/dev/null
out=$($O image pull busybox:nosuchtag 2>&1)
check_eq "a tag the mirror lacks: exit 1" 1 $?
check_match "the error is Docker Hub's (the mirror is only a mirror)" "docker.io" "$out"

printf '{"mirrors": {"%s": ["%s/cache"]}}\n' "$ORIGIN" "$MIRROR" >"$ORCH_ROOT/registries.json"
$O image pull "$ORIGIN/team/app:mirror-only" >/dev/null 2>"$W/err"
check_eq "\"mirrors\" for another registry, with a path prefix: from the mirror" 0 $?
$O image rm "$ORIGIN/team/app:mirror-only" >/dev/null

# ---- registries.conf ----------------------------------------------------------
rm "$ORCH_ROOT/registries.json"
export CONTAINERS_REGISTRIES_CONF=$T/registries.conf
cat >"$CONTAINERS_REGISTRIES_CONF" <<CONF
# as podman users write it
unqualified-search-registries = [
  "docker.io",
]

[[registry]]
location = "$ORIGIN"

[[registry.mirror]]
location = "127.0.0.1:5999"     # down

[[registry.mirror]]
location = "$MIRROR/cache"

[aliases]
"app" = "$ORIGIN/team/app"
CONF
$O image pull "$ORIGIN/team/app:mirror-only" >/dev/null 2>"$W/err"
check_eq "registries.conf mirror (the first one down): exit 0" 0 $?
check_match "recorded under the origin's name" "^$ORIGIN/team/app +mirror-only " "$($O images)"
$O image pull "$ORIGIN/team/app:only-origin" >/dev/null 2>"$W/err"
check_eq "an image the mirror lacks comes from the origin" 0 $?
check "its own layer is there" grep -rqx only-origin "$ORCH_ROOT/layers" --include=where

cat >"$CONTAINERS_REGISTRIES_CONF" <<CONF
[[registry]]
prefix = "$ORIGIN/team"
location = "$ORIGIN/team"
blocked = true
CONF
out=$($O image pull "$ORIGIN/team/app:v1" 2>&1)
check_eq "blocked = true: exit 1" 1 $?
check_match "says the configuration blocks it" "blocked by the registries configuration" "$out"

# ---- insecure = true: a TLS registry with a CA nobody trusts ---------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$T/tls.key" -out "$T/tls.crt" 2>/dev/null
TLS=127.0.0.1:5443
REG_TLS_CERT=$T/tls.crt REG_TLS_KEY=$T/tls.key reg_start tls "$TLS" || fail "TLS registry starts"
skopeo_put "docker-archive:$W/bb.tar" "$TLS/bb:v1"
: >"$CONTAINERS_REGISTRIES_CONF"
out=$($O image pull "$TLS/bb:v1" 2>&1)
check_eq "self-signed TLS: exit 1" 1 $?
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$TLS" >"$CONTAINERS_REGISTRIES_CONF"
$O image pull "$TLS/bb:v1" >/dev/null 2>"$W/err"
check_eq "insecure = true in registries.conf: exit 0" 0 $?
finish
