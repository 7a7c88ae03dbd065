#!/bin/bash
# Rootless: two real users without privileges (made here, in a private
# /etc) run orch with their ranges from /etc/subuid, while netd runs as
# root; each gets bridges, link-only isolation, DNS, published ports and
# cgroup limits, and neither can see, touch or reach the other's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"

# ---- two users, in a private /etc ----------------------------------------
cp -a /etc "$T/etc" && mount --bind "$T/etc" /etc
echo '{"quota_networks": 3}' >"$ORCH_ROOT/netd.json"
for u in alice bob; do
	useradd -m -d "$T/home/$u" -s /bin/sh "$u" ||
		{ echo "cannot add user $u"; exit 1; }
	mkdir -p "$T/home/$u/run" && chown "$u:" "$T/home/$u/run" && chmod 700 "$T/home/$u/run"
done
ALICE=$(id -u alice) BOB=$(id -u bob)
check_match "useradd gave alice a range in /etc/subuid" "^alice:[0-9]+:65536$" "$(grep ^alice: /etc/subuid)"
cc -static -O1 -o "$T/escape" "$TOP/tests/fixtures/escape.c" ||
	{ echo "cannot build the escape helper"; exit 1; }
chmod 755 "$T/escape"

# As on a fresh host, root's state directory lets no one in: netd opens
# the way to its socket, and only that.
chmod 0700 "$ORCH_RUN"
"$O" network ls >/dev/null # root starts netd
export ORCH_NETD_SOCKET=$ORCH_RUN/netd.sock
# as USER CMD...: CMD as USER, in a login-like environment, in the cwd.
as() {
	local u=$1
	shift
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$T/home/$u" \
		XDG_RUNTIME_DIR="$T/home/$u/run" ORCH_NETD_SOCKET="$ORCH_NETD_SOCKET" \
		${ORCH_CGROUP_ROOT:+ORCH_CGROUP_ROOT=$ORCH_CGROUP_ROOT} \
		setpriv --reuid "$u" --regid "$u" --init-groups -- "$@"
}
# uproject USER NAME: $T/home/USER/NAME/compose.yaml from stdin.
uproject() { mkdir -p "$T/home/$1/$2" && cat >"$T/home/$1/$2/compose.yaml" && chown -R "$1:" "$T/home/$1/$2"; }
uin() { local u=$1 d=$2; shift 2; (cd "$T/home/$u/$d" && as "$u" "$@"); }
user_down_all() {
	for u in alice bob; do
		for d in "$T/home/$u"/run/orch/projects/*/; do
			[ -d "$d" ] && (cd / && as "$u" "$O" -p "$(basename "$d")" down -v -t 0 >/dev/null 2>&1)
		done
		pkill -KILL -u "$u" 2>/dev/null
	done
	return 0
}
on_exit user_down_all
# empty CMD...: it prints nothing (fails is lib.sh's).
empty() { [ -z "$("$@" 2>/dev/null)" ]; }
cgdirs() { ls -d /sys/fs/cgroup/*/orch/user-"$1" /sys/fs/cgroup/orch/user-"$1" 2>/dev/null; }

# ---- alice: the example stack ------------------------------------------------
mkdir -p "$T/home/alice/ex/examples"
cp "$TOP/compose.example.yaml" "$T/home/alice/ex/compose.yaml"
cp -r "$TOP/examples/app" "$T/home/alice/ex/examples/"
chown -R alice: "$T/home/alice/ex"
ex() { uin alice ex "$O" "$@"; }
check "alice imports an image" quiet as alice "$O" image import "$FIXTURE_TAR" busybox:latest
check "her images live under ~/.local/share/orch" test -d "$T/home/alice/.local/share/orch"
check_eq "and belong to her" "$ALICE" "$(stat -c %u "$T/home/alice/.local/share/orch")"
check "her state lives under \$XDG_RUNTIME_DIR/orch" test -d "$T/home/alice/run/orch"
out=$(ex up -d --wait --wait-timeout 60 2>&1)
check "alice: up -d of the example stack succeeds" [ $? -eq 0 ]
[ $? -eq 0 ] || echo "$out"
check_eq "ps lists its five services" "app db migrate web worker" \
	"$(ex ps -a --format json | "$PY" -c 'import json,sys; print(" ".join(sorted(json.loads(l)["Service"] for l in sys.stdin if l.strip())))')"
check_match "the published port answers from the host" 'hello-from-orch' "$(http_get http://127.0.0.1:8080/cgi-bin/hello)"
check "app reaches db by name (linked)" ex exec -T app timeout 2 wget -q -O /dev/null "http://db:7000/cgi-bin/kv?get=greeting"
check "web cannot reach db (different networks)" fails ex exec -T web timeout 2 wget -q -O /dev/null "http://db:7000/cgi-bin/kv?get=greeting"
check "worker cannot reach app (link-only)" fails ex exec -T worker timeout 2 wget -q -O /dev/null "http://app:8000/"
out=$(ex exec -T web nslookup db 2>&1)
check "web does not resolve db (DNS scope)" sh -c '! printf "%s" "$1" | grep -q "^Address: 10\."' _ "$out"
check_match "logs work" 'migrate' "$(ex logs migrate 2>&1 | head -3)"
check_match "ls names alice as the owner" '^orch-example .* alice +/' "$(ex ls 2>&1)"
check_eq "exec gives root in the container" "0" "$(ex exec -T app id -u)"
check_eq "exec on a terminal: a pty of the container's /dev/pts, its root's" "/dev/pts/0 0" \
	"$(uin alice ex script -qec "$O exec app sh -c 'tty; stat -c %u \$(tty)'" /dev/null | tr -d '\r' | sed 's/\^@//g' | xargs)"
echo alice-data > "$T/home/alice/ex/in.txt" && chown alice: "$T/home/alice/ex/in.txt"
check "alice: cp a file in" quiet ex cp in.txt app:/tmp/in.txt
check_eq "it is there, her container root's" "alice-data 0" \
	"$(ex exec -T app sh -c 'cat /tmp/in.txt; stat -c %u /tmp/in.txt' | xargs)"
check "alice: cp it out" quiet ex cp app:/tmp/in.txt out.txt
check_eq "out, hers" "alice-data $ALICE" \
	"$({ cat "$T/home/alice/ex/out.txt"; stat -c %u "$T/home/alice/ex/out.txt"; } | xargs)"
check "alice: cp of a host file she cannot read fails" fails ex cp /etc/shadow app:/tmp/
check_eq "alice: cp SERVICE:FILE - writes a tar, her container root's file" "0/0 alice-data" \
	"$({ ex cp app:/tmp/in.txt - | tar tvf - --numeric-owner | awk '{print $2}'; ex cp app:/tmp/in.txt - | tar xOf -; } | xargs)"
ex exec -T app mkdir -p /tmp/tarin
tar cf - -C "$T/home/alice/ex" in.txt | ex cp - app:/tmp/tarin >/dev/null 2>&1
check_eq "alice: cp - SERVICE:DIR reads one: exit 0" 0 "$?"
check_eq "there, her container root's" "alice-data 0" \
	"$(ex exec -T app sh -c 'cat /tmp/tarin/in.txt; stat -c %u /tmp/tarin/in.txt' | xargs)"
check_match "alice: export, her container's root as it sees it" "0/0 .* tmp/in.txt" \
	"$(ex export app | tar tvf - --numeric-owner)"
ex commit app alice-app:1 >/dev/null 2>&1
check_eq "alice: commit: exit 0" 0 "$?"
uproject alice cimg <<'Y'
services:
  c:
    image: alice-app:1
    entrypoint: ["cat", "/tmp/in.txt"]
    network_mode: none
Y
check_eq "her image holds the container's file" alice-data \
	"$(uin alice cimg "$O" run --rm -T c 2>/dev/null)"
check "its project down" quiet uin alice cimg "$O" down
uproject alice sec <<'Y'
services:
  s:
    image: busybox:latest
    command: ["sleep", "1000"]
    network_mode: none
    secrets: [shadow]
secrets:
  shadow:
    file: /etc/shadow
Y
out=$(uin alice sec "$O" up -d 2>&1)
check "alice: a secret from a file she cannot read fails up" [ $? -ne 0 ]
check_match "saying so" "secret shadow: /etc/shadow.*Permission denied" "$out"
check_eq "and leaves no container" "" "$(uin alice sec "$O" ps -a -q 2>/dev/null)"
pid=$(pid_of_user() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["pid"])' "$T/home/alice/run/orch/projects/orch-example/status.json" "$1"; }; pid_of_user orch-example-app-1)
check_eq "its processes run as alice on the host" "$ALICE" "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")"
check_match "in her cgroup" "orch/user-$ALICE/" "$(cat "/proc/$pid/cgroup")"
check_match "the container's root is her uid, the rest her range" "^0 $ALICE 1 1 [0-9]+ 65536 $" "$(awk '{printf "%s %s %s ", $1, $2, $3}' "/proc/$pid/uid_map")"

# ---- limits ----------------------------------------------------------------
uproject alice lim <<Y
services:
  m:
    image: busybox:latest
    command: ["sleep", "1000"]
    mem_limit: 64m
    pids_limit: 20
    volumes: ["$T/escape:/escape:ro"]
  b:
    build: .
    image: mine:1
    command: ["cat", "/f"]
    profiles: [build]
Y
# The last step replaces a directory: an opaque one (user.overlay.opaque in
# a user's namespace), which must hide what the layer below holds.
printf 'FROM busybox:latest\nRUN echo built > /f && mkdir /d && touch /d/old\nRUN rm -rf /d && mkdir /d && touch /d/new\n' >"$T/home/alice/lim/Dockerfile"
check "alice: a stack with limits starts" quiet uin alice lim "$O" up -d
check_eq "her container reads its memory limit in /sys/fs/cgroup" 67108864 \
	"$(uin alice lim "$O" exec -T m sh -c 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes' 2>&1)"
uin alice lim "$O" exec -T m /escape alloc 256 >/dev/null 2>&1
rc=$?
check "an allocation past mem_limit is killed ($rc)" [ "$rc" -eq 137 ]
out=$(uin alice lim "$O" exec -T m /escape forks 40 2>/dev/null)
check "pids_limit stops forks (${out:-?} of 40)" [ "${out:-40}" -lt 40 ]
check "build works" quiet uin alice lim "$O" --profile build build b
check_eq "and its image runs" "built" "$(uin alice lim "$O" --profile build run --rm -T b 2>/dev/null)"
check_eq "a directory replaced by a step hides the one below" "new" "$(uin alice lim "$O" --profile build run --rm -T b ls /d 2>/dev/null)"

# ---- pull, from a real registry: an image with a whiteout and an opaque dir --
. "$(dirname "$0")/registry_helpers.inc"
R=127.0.0.1:5000
reg_start reg "$R" || { fail "registry starts"; finish; }
mkdir -p "$W/l1/data" "$W/l1/opq" "$W/l2/opq"
echo gone >"$W/l1/data/a"
echo old >"$W/l1/opq/old"
echo new >"$W/l2/opq/new"
$MK tar "$W/l1.tar" "$W/l1"
$MK tar "$W/l2.tar" "$W/l2" --whiteout data/a --opaque opq
$MK docker "$W/wh" wh:v1 --cmd /bin/sh "$FIXTURE_TAR" "$W/l1.tar" "$W/l2.tar"
docker_archive "$W/wh" "$W/wh.tar"
skopeo_put "docker-archive:$W/wh.tar" "$R/wh:v1"
check "alice pulls from a registry" quiet as alice "$O" image pull "$R/wh:v1"
uproject alice pl <<Y
services:
  s:
    image: $R/wh:v1
    command: ["sleep", "1000"]
    network_mode: none
Y
check "and runs the image" quiet uin alice pl "$O" up -d
check_eq "its whiteout and opaque directory hold" "new" "$(uin alice pl "$O" exec -T s sh -c 'ls /data; ls /opq')"
check "its down succeeds" quiet uin alice pl "$O" down -t 0

# ---- userns_mode: keep-id: alice is herself in the container ----------------
mkdir -p "$T/home/alice/kid/share"
uproject alice kid <<Y
services:
  k:
    image: $R/wh:v1
    command: ["sleep", "1000"]
    network_mode: none
    userns_mode: keep-id
    volumes: ["./share:/share", "kv:/opq"]
  r:
    image: $R/wh:v1
    command: ["sleep", "1000"]
    network_mode: none
    userns_mode: keep-id
    user: "0"
volumes:
  kv:
Y
AGID=$(id -g alice)
check "alice: a keep-id stack starts" quiet uin alice kid "$O" up -d
kx() { uin alice kid "$O" exec -T "$@" 2>&1; }
check_eq "its process runs as alice's own uid and gid" "$ALICE $AGID" "$(kx k sh -c 'echo $(id -u) $(id -g)')"
kpid=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["pid"])' \
	"$T/home/alice/run/orch/projects/kid/status.json" kid-k-1)
check_match "her uid is itself, the rest her range around it" \
	"^0 [0-9]+ $ALICE $ALICE $ALICE 1 $((ALICE + 1)) [0-9]+ $((65536 - ALICE)) $" \
	"$(awk '{printf "%s %s %s ", $1, $2, $3}' "/proc/$kpid/uid_map")"
check_eq "on the host, the process is alice" "$ALICE" "$(awk '/^Uid:/ {print $2}' "/proc/$kpid/status")"
check_eq "the image's files keep the image's owners" "0 0" "$(kx k stat -c '%u %g' /bin/busybox)"
check_eq "its whiteout and opaque directory hold" "new" "$(kx k sh -c 'ls /data; ls /opq')"
kx k touch /share/made >/dev/null
check_eq "a file she makes in a bind mount is hers on the host" "$ALICE" "$(stat -c %u "$T/home/alice/kid/share/made" 2>&1)"
check_eq "a volume filled from the image keeps the image's owners" "0" "$(kx k stat -c %u /opq/new)"
check_eq "user: 0 overrides keep-id's user" "0" "$(kx r id -u)"
check_eq "and is the first id of her range on the host" \
	"$(awk -F: '$1 == "alice" {print $2}' /etc/subuid)" \
	"$(awk '/^Uid:/ {print $2}' "/proc/$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["pid"])' "$T/home/alice/run/orch/projects/kid/status.json" kid-r-1)/status")"
check "the shifted copies are kept with the layers" \
	sh -c 'ls -d "$1"/layers/*/ids-* >/dev/null' _ "$T/home/alice/.local/share/orch"
check "its down succeeds" quiet uin alice kid "$O" down -v -t 0

# ---- quotas ------------------------------------------------------------------
# Her two stacks hold 3 networks: the quota netd.json gives.
uproject alice q <<'Y'
services:
  s:
    image: busybox:latest
    command: ["sleep", "1000"]
Y
out=$(uin alice q "$O" up -d 2>&1)
check_match "a fourth network is refused by netd's quota" "quota of 3 networks" "$out"
uin alice q "$O" down -t 0 >/dev/null 2>&1

# ---- bob cannot see, touch, reach or take what is alice's -----------------------
mkdir -p "$T/home/bob/ex" && cp "$T/home/alice/ex/compose.yaml" "$T/home/bob/ex/" &&
	cp -r "$T/home/alice/ex/examples" "$T/home/bob/ex/" && chown -R bob: "$T/home/bob/ex"
as bob "$O" image import "$FIXTURE_TAR" busybox:latest >/dev/null
check_eq "bob's ls shows none of alice's projects" "" "$(as bob "$O" ls -q 2>&1)"
check_match "bob cannot stop alice's project" "no such project" "$(cd / && as bob "$O" -p orch-example stop 2>&1)"
out=$(cd / && as bob env ORCH_RUN="$T/home/alice/run/orch" "$O" -p orch-example exec -T app id 2>&1)
check_match "nor exec into it through her state directory" "ermission denied|belongs to uid" "$out"
check "nor read her logs" as bob sh -c '! cat "$1"/home/alice/run/orch/projects/orch-example/logs/*.log 2>/dev/null' _ "$T"
out=$(uin bob ex "$O" up -d 2>&1)
check_match "bob cannot take alice's project's networks" "belongs to uid $ALICE" "$out"
uin bob ex "$O" down -t 0 >/dev/null 2>&1
uproject bob port <<'Y'
services:
  s:
    image: busybox:latest
    command: ["httpd", "-f", "-p", "80"]
    ports: ["8080:80"]
Y
out=$(uin bob port "$O" up -d 2>&1)
check_match "nor publish a port alice holds" "8080" "$out"
check "and that creates nothing" empty uin bob port "$O" ps -aq
uin bob port "$O" down -t 0 >/dev/null 2>&1
uproject bob low <<'Y'
services:
  s:
    image: busybox:latest
    command: ["httpd", "-f", "-p", "80"]
    ports: ["80:80"]
Y
out=$(uin bob low "$O" up -d 2>&1)
check_match "a user may not publish a port below ip_unprivileged_port_start" "port 80.*unprivileged" "$out"
uin bob low "$O" down -t 0 >/dev/null 2>&1
uproject bob root <<'Y'
services:
  s:
    image: busybox:latest
    command: ["sleep", "1000"]
    privileged: true
Y
uproject bob vol <<'Y'
services:
  t:
    image: busybox:latest
    command: ["sleep", "1000"]
    volumes: [big:/big]
volumes:
  big:
    driver_opts: {size: 10m}
Y
out=$(uin bob root "$O" up -d 2>&1)
check_match "what needs root is refused at its place" "compose.yaml:5:5: service \"s\": privileged needs root" "$out"
out=$(uin bob vol "$O" up -d 2>&1)
check_match "a size-limited volume too, with the way out" "compose.yaml:7:3: volume \"big\": a size limit needs a loop device.*administrator" "$out"
check "and no container is made" empty uin bob vol "$O" ps -aq
check_eq "nor a volume" "" "$(as bob "$O" volume ls -q 2>&1)"
out=$(cd / && as bob env ORCH_NETD_SOCKET="$T/nothing.sock" "$O" -p x -f "$T/home/bob/port/compose.yaml" up -d 2>&1)
check_match "without netd, a user is told what to do" "netd is not running.*install and start its service" "$out"
uproject bob att <<'Y'
services:
  s:
    image: busybox:latest
    command: ["sleep", "1000"]
    networks: [theirs]
networks:
  theirs:
    external: true
    name: orch-example_back
Y
out=$(uin bob att "$O" up -d 2>&1)
check_match "nor attach to alice's network (he does not even see it)" "does not exist|belongs to uid $ALICE" "$out"
uproject bob own <<'Y'
services:
  s:
    image: busybox:latest
    command: ["sleep", "1000"]
Y
check "bob runs a stack of his own" quiet uin bob own "$O" up -d
dbip=$(ex exec -T db ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)
check "alice's app reaches her db by address ($dbip)" ex exec -T app timeout 2 wget -q -O /dev/null "http://$dbip:7000/cgi-bin/kv?get=greeting"
check "bob's container cannot reach alice's db" fails uin bob own "$O" exec -T s timeout 2 wget -q -O /dev/null "http://$dbip:7000/cgi-bin/kv?get=greeting"
touch "$T/rootns" && unshare --net="$T/rootns" true
out=$(as bob "$B/netd" call endpoint.attach '{"network":"own_default","container_id":"x"}' --netns "$T/rootns" 2>&1)
check_match "netd refuses bob a network namespace that is not his" "belongs to uid 0" "$out"
umount "$T/rootns"
check "bob's down succeeds" quiet uin bob own "$O" down -t 0

# ---- cgroup v2: netd moves the user's orch below the cgroup it hands over ------
# The unified hierarchy of this hybrid host, for netd and alice alike.
stop_netd
export ORCH_CGROUP_ROOT=/sys/fs/cgroup/unified
"$O" network ls >/dev/null
check "on cgroup v2, a user's stack starts" quiet uin bob own "$O" up -d
pid=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["own-s-1"]["pid"])' "$T/home/bob/run/orch/projects/own/status.json")
check_match "in the cgroup netd handed over" "^0::/orch/user-$BOB/[0-9a-f]{64}$" "$(grep ^0:: "/proc/$pid/cgroup")"
check_eq "which belongs to bob" "$BOB" "$(stat -c %u "$ORCH_CGROUP_ROOT/orch/user-$BOB")"
check "on cgroup v2, his down succeeds" quiet uin bob own "$O" down -t 0
check_eq "and his cgroup is gone" "" "$(ls -d "$ORCH_CGROUP_ROOT/orch/user-$BOB" 2>/dev/null)"
stop_netd
unset ORCH_CGROUP_ROOT
"$O" network ls >/dev/null

# ---- nothing left -------------------------------------------------------------
check "alice's down succeeds" quiet ex down -v -t 0
check "and the limits stack's" quiet uin alice lim "$O" down -v -t 0
# Commands with no project to work on leave nothing either.
check "alice lists her images" quiet as alice "$O" images
check "bob lists his projects" quiet as bob "$O" ls
check "no process of alice's is left" wait_for 10 sh -c '! pgrep -u alice >/dev/null'
check "no process of bob's is left" wait_for 10 sh -c '! pgrep -u bob >/dev/null'
check_eq "no cgroup of theirs is left" "" "$(cgdirs "$ALICE"; cgdirs "$BOB")"
check_eq "no link is left but lo" "lo" "$(ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | tr '\n' ' ' | sed 's/ $//')"
check_eq "no rule of theirs is left" "" "$(nft list table inet orch 2>/dev/null | grep -E 'elements|dnat')"
check "no holder of their namespaces is left" sh -c '! pgrep -x orch-userns'
check_eq "no mount of theirs is left" "" "$(grep "$T/home" /proc/mounts)"
finish
