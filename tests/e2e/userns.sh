#!/bin/sh
# User namespaces: each project's containers run in a range of host ids of
# its own, taken from the pool (orch.json here, then user orch's range in
# /etc/subuid) at up and given back by down; the mapping is shown by ps and
# seen in the container; processes, volume files and files written to a
# bind belong to the range or to the host user they map to; userns_mode:
# host opts out; limits, exec, health checks, logs and builds work
# remapped; and root in a container is refused what would reach the host.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"
export ORCH_USERNS=remap

cc -static -O1 -o "$T/escape" "$TOP/tests/fixtures/escape.c" ||
	{ echo "cannot build the escape helper"; exit 1; }
chmod 755 "$T/escape"
printf '{"userns": {"start": 300000, "count": 196608}}\n' >"$ORCH_ROOT/orch.json"
# held PROJECT: the base of the range the pool gives it, or nothing.
held() {
	"$PY" -c 'import json, sys
print(json.load(open(sys.argv[1]))["held"].get(sys.argv[2], ""))' \
		"$ORCH_ROOT/userns.json" "$1" 2>/dev/null
}
uidmap() { inp "$1" "$O" exec -T "$2" cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //'; }

mkdir -p "$T/host1000" "$T/hostroot"
chown 1000:1000 "$T/host1000"
echo secret >"$T/hostroot/file" && chmod 666 "$T/hostroot/file"
project un <<EOF
services:
  app:
    image: bb:1
    command: ["sh", "-c", "echo started as \$\$(id -u); exec sleep 1000"]
    volumes:
      - data:/data
      - $T/host1000:/h
      - $T/hostroot:/hr
      - $T/escape:/escape:ro
    mem_limit: 64m
    pids_limit: 20
    ulimits: {nofile: {soft: 2048, hard: 4096}}
    healthcheck: {test: ["CMD", "true"], interval: 1s, retries: 30}
  user:
    image: bb:1
    user: "1000"
    command: ["sh", "-c", "touch /h/by1000 && exec sleep 1000"]
    volumes: ["$T/host1000:/h"]
  hostns:
    image: bb:1
    userns_mode: host
    command: ["sleep", "1000"]
    shm_size: 96m
    oom_score_adj: 300
    group_add: ["nogroup", "4321"]
  copy:
    image: bb:1
    command: ["sleep", "1000"]
    volumes: ["etc:/etc"]
volumes:
  data: {}
  etc: {}
EOF
check "up -d --wait" inp un "$O" up -d --wait
base=$(held un)
check_eq "the project holds the pool's first range (orch.json)" 300000 "$base"
check_eq "ps --format json shows the mapping" "0:$base:65536" "$(psf un app UidMap)"
check_eq "and the mode" private "$(psf un app UsernsMode)"
check_eq "/proc/self/uid_map in the container is the project's range" \
	"0 $base 65536" "$(uidmap un app)"
pid=$(pid_of un un-app-1)
check_eq "from the host, the container's processes run as BASE" "$base" \
	"$(ps -o uid= -p "$pid" | tr -d ' ')"
check "a file written to a named volume" inp un "$O" exec -T app touch /data/f
check_eq "is owned by BASE on the host" "$base:$base" \
	"$(stat -c %u:%g "$ORCH_ROOT/volumes/un_data/_data/f")"
wait_for 10 test -e "$T/host1000/by1000"
check_eq "uid 1000's file in a bind of a host dir owned by 1000 is 1000's on the host" \
	1000:1000 "$(stat -c %u:%g "$T/host1000/by1000" 2>/dev/null)"
check_eq "the container sees the host's owners in the bind" 1000 \
	"$(inp un "$O" exec -T app stat -c %u /h)"
check "root writes to that bind" inp un "$O" exec -T app touch /h/byroot
check_eq "and its file belongs to the range's root" "$base" \
	"$(stat -c %u "$T/host1000/byroot")"
check_eq "the host's root is nobody in the bind" 65534 \
	"$(inp un "$O" exec -T app stat -c %u /hr/file)"
check_eq "a new volume is filled from the image's content" root \
	"$(inp un "$O" exec -T copy sh -c 'head -1 /etc/passwd | cut -d: -f1')"
check_eq "which the container's root owns" 0 \
	"$(inp un "$O" exec -T copy stat -c %u /etc/passwd)"
check_eq "and BASE on the host" "$base" \
	"$(stat -c %u "$ORCH_ROOT/volumes/un_etc/_data/passwd")"
check_eq "userns_mode: host opts out" host "$(psf un hostns UsernsMode)"
check_eq "and its container runs as the host's root" 0 \
	"$(ps -o uid= -p "$(pid_of un un-hostns-1)" | tr -d ' ')"
check_eq "with the host's map" "0 0 4294967295" "$(uidmap un hostns)"
check_eq "health checks run remapped" healthy "$(psf un app Health)"
check_eq "ulimits apply in exec" 2048 "$(inp un "$O" exec -T app sh -c 'ulimit -n')"
check_eq "and to the container's process" "2048 4096" \
	"$(grep 'open files' /proc/$pid/limits | awk '{print $4, $5}')"
check_match "logs of a remapped container" "started as 0" "$(inp un "$O" logs app 2>&1)"
shm_kib() { inp un "$O" exec -T "$1" df -k /dev/shm | awk 'NR == 2 {print $2}'; }
check_eq "/dev/shm is 64 MiB by default" 65536 "$(shm_kib app)"
check_eq "shm_size sets it" 98304 "$(shm_kib hostns)"
check_eq "oom_score_adj is the container's" 300 \
	"$(cat /proc/"$(pid_of un un-hostns-1)"/oom_score_adj)"
check_eq "and not another's" 0 "$(cat /proc/"$pid"/oom_score_adj)"
check_eq "group_add: supplementary groups by name and number" "4321 65534" \
	"$(inp un "$O" exec -T hostns id -G | tr ' ' '\n' | grep -v '^0$' | sort -n | xargs)"

# ---- escapes, as root in the remapped container -----------------------------
esc() { inp un "$O" exec -T app /escape "$@" 2>&1; }
out=$(esc write /hr/file)
check_eq "writing a host root's file (mode 666) through a bind fails" 1 "$?"
check_eq "and the file is unchanged" secret "$(cat "$T/hostroot/file")"
for w in unshare-user unshare-mount mount keyctl sysctl module; do
	out=$(esc $w)
	check_eq "$w fails: $out" 1 "$?"
done
out=$(esc ptrace "$(pid_of un un-hostns-1)")
check_eq "ptrace of a host pid fails: $out" 1 "$?"

# ---- cgroup limits under the mapping -----------------------------------------
out=$(esc alloc 256)
rc=$?
check "an allocation past mem_limit is killed ($rc)" [ "$rc" -eq 137 ]
out=$(esc forks 40)
check "pids_limit stops forks ($out of 40)" [ "${out:-40}" -lt 40 ]
check_eq "the container still runs" running "$(psf un app State)"

# ---- refusals -----------------------------------------------------------------
project bad <<EOF
services:
  mod:
    image: bb:1
    cap_add: [SYS_MODULE]
    command: ["true"]
EOF
out=$(inp bad "$O" up -d 2>&1)
check "cap_add SYS_MODULE in a remapped service fails" [ $? -ne 0 ]
check_match "naming the place and the way out" \
	'compose.yaml:[0-9]+:[0-9]+: service "mod": cap_add SYS_MODULE .*userns_mode: host' "$out"
check_eq "and creates nothing" "" "$(inp bad "$O" ps -a -q 2>/dev/null)"
project keep <<EOF
services:
  k:
    image: bb:1
    userns_mode: keep-id
    command: ["true"]
EOF
out=$(inp keep "$O" up -d 2>&1)
check_match "userns_mode: keep-id is refused for a root-run project" \
	'compose.yaml:[0-9]+:[0-9]+: .*keep-id .*rootless' "$out"

# ---- two projects, and the pool after down ----------------------------------
project un2 <<EOF
services:
  a:
    image: bb:1
    command: ["sleep", "1000"]
EOF
check "a second project" inp un2 "$O" up -d
base2=$(held un2)
check "gets a range disjoint from the first ($base2)" \
	[ -n "$base2" ] && [ $((base2 - base)) -ge 65536 -o $((base - base2)) -ge 65536 ]
check_eq "which its container runs in" "0 $base2 65536" "$(uidmap un2 a)"
check "down" inp un "$O" down -t 0
check_eq "after down the range is back in the pool" "" "$(held un)"
# Two ups at once take two ranges: the pool is locked.
project un3 <<EOF
services:
  a:
    image: bb:1
    command: ["sleep", "1000"]
EOF
inp un3 "$O" up -d >/dev/null 2>&1 &
p3=$!
inp un "$O" up -d >/dev/null 2>&1
wait $p3
check "two ups at once get two ranges ($(held un), $(held un3))" \
	[ -n "$(held un)" ] && [ -n "$(held un3)" ] && [ "$(held un)" != "$(held un3)" ]
check "down" inp un3 "$O" down -t 0
check "down" inp un "$O" down -t 0
check "up again" inp un "$O" up -d --wait
check_eq "the project gets its range back" "$base" "$(held un)"
check_eq "and its volume's files are still its root's" 0 \
	"$(inp un "$O" exec -T app stat -c %u /data/f)"
check "down -v" inp un "$O" down -v -t 0
check "down" inp un2 "$O" down -t 0
# An up that fails once it began making things takes nothing with it.
project unfail <<EOF
services:
  a:
    image: bb:1
    command: ["sleep", "1000"]
    network_mode: none
    ports: ["18099:80"]
EOF
out=$(inp unfail "$O" up -d 2>&1)
check_match "an up failing in a container's set-up says why" "ports need a network" "$out"
check_eq "and leaves no range held" "" "$(held unfail)"
check_eq "no range is held" "{}" "$("$PY" -c 'import json, sys
print(json.dumps(json.load(open(sys.argv[1]))["held"]))' "$ORCH_ROOT/userns.json")"

# ---- builds ---------------------------------------------------------------------
mkdir -p "$T/bld"
cat >"$T/bld/Dockerfile" <<'EOF'
FROM bb:1
RUN cat /proc/self/uid_map >/map && touch /built && chown 1000:1000 /built
EOF
project bld <<EOF
services:
  b:
    build: .
    image: bld:1
    command: ["sleep", "1000"]
EOF
check "build with a RUN step" inp bld "$O" build
out=$(inp bld "$O" run --rm -T b sh -c 'stat -c %u:%g /built; tr -s " " </map | sed "s/^ //"')
check_eq "the layer keeps the ids RUN gave" 1000:1000 "$(echo "$out" | head -1)"
check_match "and RUN ran remapped" "^0 [1-9][0-9]+ 65536$" "$(echo "$out" | tail -1)"
check "down" inp bld "$O" down -t 0

# ---- the pool from /etc/subuid ------------------------------------------------
# In this suite's mount namespace only.
printf 'someone:100000:65536\norch:500000:131072\n' >"$T/subuid"
cp "$T/subuid" "$T/subgid"
# SUBUID, SUBGID: the files seen there, to write to.
if [ -e /etc/subuid ] && [ -e /etc/subgid ]; then
	SUBUID=$T/subuid SUBGID=$T/subgid
	check "a private /etc/subuid" mount --bind "$T/subuid" /etc/subuid
	check "and /etc/subgid" mount --bind "$T/subgid" /etc/subgid
else # a private copy of /etc, to add them to
	SUBUID=$T/etc/subuid SUBGID=$T/etc/subgid
	cp -a /etc "$T/etc" && cp "$T/subuid" "$T/subgid" "$T/etc/"
	check "a private /etc with subuid and subgid" mount --bind "$T/etc" /etc
fi
check "up with the pool of user orch" inp un2 "$O" up -d
check_eq "gives a range from user orch's" "0 500000 65536" "$(uidmap un2 a)"
check "down" inp un2 "$O" down -t 0
# Without user orch or orch.json, the default pool, which must not take
# what /etc/subuid gives a user.
rm "$ORCH_ROOT/orch.json"
printf 'bob:1073741824:65536\n' >"$SUBUID"
printf 'bob:1073741824:65536\n' >"$SUBGID"
out=$(inp un2 "$O" up -d 2>&1)
check "the default pool meeting a user's range fails" [ $? -ne 0 ]
check_match "naming the file, the user and the way out" \
	'/etc/subuid gives ids of orch.s default user-namespace pool .* to bob: .*orch.json' "$out"
printf 'orch:x:y\n' >"$SUBUID"
out=$(inp un2 "$O" up -d 2>&1)
check_match "a bad range of user orch is refused at its line" \
	'/etc/subuid:1: the range of user orch must be START:COUNT' "$out"
printf '\n' >"$SUBUID"
printf '\n' >"$SUBGID"
check "up with the default pool" inp un2 "$O" up -d
check_eq "gives its first range" "0 1073741824 65536" "$(uidmap un2 a)"
check "down" inp un2 "$O" down -t 0
# Lowering it takes CAP_SYS_RESOURCE, which the suite may not hold.
project oom <<'EOF'
services:
  low:
    image: bb:1
    command: ["sleep", "1000"]
    network_mode: none
    oom_score_adj: -10
EOF
out=$(inp oom "$O" up -d 2>&1)
if [ $(( $(awk '/^CapEff/ {print "0x" $2}' /proc/self/status) >> 24 & 1 )) = 1 ]; then
	check_eq "a lower oom_score_adj, with CAP_SYS_RESOURCE" -10 \
		"$(cat /proc/"$(pid_of oom oom-low-1)"/oom_score_adj 2>&1)"
else
	check_match "a lower oom_score_adj, without CAP_SYS_RESOURCE: said" \
		"oom_score_adj -10: lowering it takes CAP_SYS_RESOURCE" "$out"
fi
inp oom "$O" down >/dev/null 2>&1
finish
