#!/bin/bash
# Stacks whose images are only in a registry: `up` pulls what is missing
# before it creates anything, as each service's pull_policy (or --pull)
# says; `orch pull`; a failed pull creates nothing; a pull killed half-way
# leaves nothing and the next one succeeds; two pulls of the same image at
# once fetch each layer once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"
REG_NO_ACCESSLOG=false
. "$(dirname "$0")/registry_helpers.inc"
cd "$W" || exit 1
R=127.0.0.1:5000
reg_start reg "$R" || { fail "registry starts"; finish; }

$MK docker "$W/bb" bb:v1 --cmd /bin/sh "$FIXTURE_TAR"
docker_archive "$W/bb" "$W/bb.tar"
skopeo_put "docker-archive:$W/bb.tar" "$R/bb:v1"
skopeo_put "docker-archive:$W/bb.tar" "$R/bb:v2"
mkdir -p "$W/extra/data" && echo extra >"$W/extra/data/file"
$MK tar "$W/extra.tar" "$W/extra"
$MK docker "$W/two" two:v1 --cmd /bin/sh "$FIXTURE_TAR" "$W/extra.tar"
docker_archive "$W/two" "$W/two.tar"
skopeo_put "docker-archive:$W/two.tar" "$R/team/two:v1"
ps_names() { inp "$1" "$O" ps -a --format json | "$PY" -c '
import json, sys
print(" ".join(sorted(json.loads(l)["Service"] for l in sys.stdin if l.strip())))'; }

# ---- up pulls what is missing ---------------------------------------------------
project st <<Y
services:
  web:
    image: $R/bb:v1
    command: ["sleep", "3600"]
    network_mode: none
  db:
    image: $R/team/two:v1
    command: ["sleep", "3600"]
    network_mode: none
Y
inp st "$O" up -d >"$W/out" 2>&1
check_eq "up of registry-only images: exit 0" 0 $?
check_match "up says it pulled web" " web Pulled" "$(cat "$W/out")"
check_match "up says it pulled db" " db Pulled" "$(cat "$W/out")"
check_eq "both run" "running" "$(psf st web State)"
check_eq "db runs the pulled image" extra "$(inp st "$O" exec -T db cat /data/file)"
inp st "$O" up -d >"$W/out" 2>&1
check_eq "second up: exit 0" 0 $?
check "second up pulls nothing (missing is the default)" test -z "$(grep Pulling "$W/out")"
inp st "$O" up -d --pull always >"$W/out" 2>&1
check_match "up --pull always pulls again" " web Pulling" "$(cat "$W/out")"
check "down st" silent inp st "$O" down -t 0
"$O" image rm "$R/bb:v1" >/dev/null 2>&1
inp st "$O" create web >"$W/out" 2>&1
check_eq "create pulls what is missing: exit 0" 0 $?
check_match "create says it pulled web" " web Pulled" "$(cat "$W/out")"
check_eq "create makes the container without starting it" created "$(psf st web State)"
check "down st" silent inp st "$O" down -t 0

# ---- pull_policy ------------------------------------------------------------------
project pp <<Y
services:
  never:
    image: $R/bb:v2
    pull_policy: never
    command: ["sleep", "3600"]
    network_mode: none
Y
inp pp "$O" up -d >"$W/out" 2>&1
check_eq "pull_policy never, image missing: up fails" 1 $?
check_match "never: the image is named as not present" "bb:v2.* is not present" "$(cat "$W/out")"
check_eq "never: nothing created" "" "$(ps_names pp)"
inp pp "$O" up -d --pull missing >"$W/out" 2>&1
check_eq "up --pull missing overrides never: exit 0" 0 $?
check_match "the image was pulled" " never Pulled" "$(cat "$W/out")"
check "down pp" silent inp pp "$O" down -t 0

project pa <<Y
services:
  daily:
    image: $R/bb:v2
    pull_policy: daily
    command: ["sleep", "3600"]
    network_mode: none
  always:
    image: $R/bb:v1
    pull_policy: always
    command: ["sleep", "3600"]
    network_mode: none
Y
inp pa "$O" up -d >"$W/out" 2>&1
check_eq "daily + always: exit 0" 0 $?
check_match "always pulls although the image is there" " always Pulled" "$(cat "$W/out")"
check "daily, pulled just now: not pulled" test -z "$(grep ' daily Pull' "$W/out")"
# A day later (the time of the last pull, moved back):
for f in "$ORCH_ROOT"/images/pulled/*; do echo 1000 >"$f"; done
inp pa "$O" up -d >"$W/out" 2>&1
check_match "daily, pulled long ago: pulled again" " daily Pulled" "$(cat "$W/out")"
check "down pa" silent inp pa "$O" down -t 0

# pull_policy: refresh pulls again once pull_refresh_after has passed
# (without it, at every up).
project pr <<Y
services:
  fresh:
    image: $R/bb:v2
    pull_policy: refresh
    pull_refresh_after: 1h
    command: ["sleep", "3600"]
    network_mode: none
  every:
    image: $R/bb:v1
    pull_policy: refresh
    command: ["sleep", "3600"]
    network_mode: none
Y
inp pr "$O" up -d >"$W/out" 2>&1
check_eq "pull_policy refresh: exit 0" 0 $?
check_match "refresh without pull_refresh_after pulls at every up" " every Pulled" "$(cat "$W/out")"
check "refresh after 1h, pulled just now: not pulled" test -z "$(grep ' fresh Pull' "$W/out")"
for f in "$ORCH_ROOT"/images/pulled/*; do echo 1000 >"$f"; done
inp pr "$O" up -d >"$W/out" 2>&1
check_match "refresh after 1h, pulled long ago: pulled again" " fresh Pulled" "$(cat "$W/out")"
check "down pr" silent inp pr "$O" down -t 0

project pbad <<Y
services:
  web:
    image: $R/bb:v1
    pull_policy: sometimes
    network_mode: none
Y
inp pbad "$O" up -d >"$W/out" 2>&1
check_eq "invalid pull_policy: exit 1" 1 $?
check_match "invalid pull_policy: file:line:col" "compose.yaml:4:[0-9]+: .*pull_policy" "$(cat "$W/out")"

# ---- a failed pull creates nothing -----------------------------------------------------
project fail <<Y
services:
  web:
    image: $R/bb:v1
    command: ["sleep", "3600"]
    network_mode: none
  bad:
    image: $R/nosuch:v1
    network_mode: none
Y
inp fail "$O" up -d >"$W/out" 2>&1
check_eq "one image missing from the registry: up fails" 1 $?
check_match "the failure names the service and the reference" \
	"service \"bad\": pulling $R/nosuch:v1: .*not found in $R" "$(cat "$W/out")"
check_eq "nothing created" "" "$(ps_names fail)"

# ---- orch pull -----------------------------------------------------------------------------
inp fail "$O" pull web >"$W/out" 2>&1
check_eq "orch pull web: exit 0" 0 $?
check_match "orch pull web pulls it (always)" " web Pulled" "$(cat "$W/out")"
inp fail "$O" pull >"$W/out" 2>&1
check_eq "orch pull with a missing image: exit 1" 1 $?
inp fail "$O" pull --ignore-pull-failures >"$W/out" 2>&1
check_eq "--ignore-pull-failures: exit 0" 0 $?
check_match "--ignore-pull-failures: warns" " bad Warning .*nosuch" "$(cat "$W/out")"
check_eq "--quiet: no output" "" "$(inp fail "$O" pull -q web 2>&1)"
inp fail "$O" pull --policy missing web >"$W/out" 2>&1
check "--policy missing: nothing to pull" test ! -s "$W/out"

# ---- a build pulls the images its file names ----------------------------------------------
"$O" image rm "$R/bb:v1" "$R/team/two:v1" >/dev/null 2>&1
project bd <<Y
services:
  app:
    build: .
    command: ["sleep", "3600"]
    network_mode: none
Y
cat >"$T/bd/Dockerfile" <<D
FROM $R/bb:v1
COPY --from=$R/team/two:v1 /data/file /copied
D
inp bd "$O" build >"$W/out" 2>&1
check_eq "build on registry images: exit 0" 0 $?
check_match "the build pulled its base" "Pulling $R/bb:v1" "$(cat "$W/out")"
check_match "and the image COPY --from names" "Pulling $R/team/two:v1" "$(cat "$W/out")"
check "the base is in the store after" silent "$O" image inspect "$R/bb:v1"
inp bd "$O" up -d >/dev/null 2>&1
check_eq "the built image holds the file copied from the pulled one" extra "$(inp bd "$O" exec -T app cat /copied)"
check "down bd" silent inp bd "$O" down -t 0
inp bd "$O" build >"$W/out" 2>&1
check_eq "build again: exit 0" 0 $?
check "build again: the stored base is not pulled" test -z "$(grep Pulling "$W/out")"
inp bd "$O" build --pull >"$W/out" 2>&1
check_eq "build --pull: exit 0" 0 $?
check_match "build --pull pulls the base again" "Image is up to date for $R/bb:v1" "$(cat "$W/out")"
check_eq "build -q: no output" "" "$(inp bd "$O" build -q 2>&1)"
cat >>"$T/bd/compose.yaml" <<Y
  pulled:
    build: {context: ., pull: true}
    network_mode: none
Y
inp bd "$O" build pulled >"$W/out" 2>&1
check_match "build.pull: true pulls the base again" "Pulling $R/bb:v1" "$(cat "$W/out")"
# build --push pushes what it built; --with-dependencies builds what the
# named services depend on too.
cat >>"$T/bd/compose.yaml" <<Y
  pushed:
    build: .
    image: $R/built:v1
    network_mode: none
  front:
    build: .
    network_mode: none
    depends_on: [pushed]
Y
"$O" image rm "$R/built:v1" >/dev/null 2>&1
inp bd "$O" build --with-dependencies front >"$W/out" 2>&1
check_eq "build --with-dependencies: exit 0" 0 $?
check_match "it built the dependency" "Building pushed" "$(cat "$W/out")"
check "and not the others" test -z "$(grep 'Building app' "$W/out")"
inp bd "$O" build --push pushed >"$W/out" 2>&1
check_eq "build --push: exit 0" 0 $?
check_match "says it pushed" "pushed Pushed $R/built:v1" "$(cat "$W/out")"
"$O" image rm "$R/built:v1" >/dev/null 2>&1
check "the pushed image pulls back" silent "$O" image pull "$R/built:v1"
inp bd "$O" build --with-dependencies nosuch >/dev/null 2>&1
check_eq "build of an unknown service: exit 1" 1 $?
imgs=$(images_count)
printf 'FROM %s\nRUN true\n' "$R/nosuch:v1" >"$T/bd/Dockerfile"
inp bd "$O" build app >"$W/out" 2>&1
check_eq "build on an image the registry lacks: exit 1" 1 $?
check_match "the failure names the line, the image and the registry's answer" \
	"Dockerfile:1: FROM $R/nosuch:v1: pulling $R/nosuch:v1: .*not found in $R" "$(cat "$W/out")"
check_eq "the failed build left no image" "$imgs" "$(images_count)"

# ---- killed half-way, then pulled again; two pulls at once ------------------------------------
DEB=$B/debian-bookworm.tar
if [ -f "$DEB" ]; then
	gzip -1nc "$DEB" >"$W/deb.tar.gz"
	$MK oci "$W/deb" v1 --cmd /bin/sh "$W/deb.tar.gz"
	skopeo_put "oci:$W/deb:v1" "$R/deb:v1"
	layers_before=$(layers_count)
	"$O" image pull "$R/deb:v1" >/dev/null 2>&1 &
	pid=$!
	extracting() { [ "$(tmp_layers)" -gt 0 ]; }
	check "the pull starts extracting" wait_for 60 extracting
	kill -9 $pid
	wait $pid 2>/dev/null
	check_eq "killed: no image" "" "$("$O" images | grep "^$R/deb ")"
	check_eq "killed: no layer published" "$layers_before" "$(layers_count)"
	"$O" image pull "$R/deb:v1" >/dev/null 2>"$W/err"
	check_eq "pull again: exit 0" 0 $?
	check "the layer is complete" test -s "$(ls -d "$ORCH_ROOT"/layers/*/diff/etc/debian_version | head -1)"
	check_eq "pull again: no scratch left" 0 "$(tmp_layers)"
	"$O" image rm "$R/deb:v1" >/dev/null
	n=$(layers_count)
	: >"$T/reg.log"
	"$O" image pull "$R/deb:v1" >"$W/p1" 2>&1 &
	p1=$!
	"$O" image pull "$R/deb:v1" >"$W/p2" 2>&1 &
	p2=$!
	wait $p1
	r1=$?
	wait $p2
	r2=$?
	check_eq "two pulls at once: both succeed" "0 0" "$r1 $r2"
	check_eq "two pulls at once: one layer more" $((n + 1)) "$(layers_count)"
	blob=$(sha256sum "$W/deb.tar.gz" | cut -c1-64)
	check_eq "two pulls at once: the layer fetched once" 1 "$(grep -c "GET /v2/deb/blobs/sha256:$blob" "$T/reg.log")"
else
	echo "# $DEB missing: kill and concurrency checks skipped"
fi

finish
