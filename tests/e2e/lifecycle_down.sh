#!/bin/bash
# `down` leaves nothing: processes, mounts, cgroups, links, addresses,
# routes, nft rules and state files are listed before and after.  Two
# projects with the same service and network names live side by side.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"

stack() {
	cat <<Y
services:
  web:
    image: bb:1
    command: ["sh", "-c", "mkdir -p /www && echo \$\$HOSTNAME-$1 > /www/index.html && exec httpd -f -p 80 -h /www"]
    networks: [front]
    ports: ["$2:80"]
    depends_on: [app]
  app:
    image: bb:1
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
    networks: [front, back]
    volumes: ["data:/data", "/anon"]
  db:
    image: bb:1
    command: ["sleep", "3600"]
    networks: [back]
    volumes: ["data:/data"]
networks:
  front: {}
  back: {}
volumes:
  data: {}
Y
}
stack one 18091 | project one
stack two 18092 | project two

links() { ip -o link | sed 's/^[0-9]*: //' | awk '{print $1}' | sort; }
addrs() { ip -o addr | awk '{print $2, $4}' | sort; }
routes() { { ip route; ip -6 route; } | sort; }
mounts() { grep -F "$T" /proc/self/mountinfo | awk '{print $5}' | sort; }
# (the runtime's seccomp filter cache is shared by all containers; the
# removed containers' emptied directories wait in .spare for the next;
# .boot is the boot their records are from)
state_files() { find "$ORCH_RUN/projects" "$ORCH_RUN/runtime" "$ORCH_ROOT/containers" -mindepth 1 -maxdepth 1 ! -name .seccomp ! -name .spare ! -name .boot 2>/dev/null | sort; }
# What a spare holds other than its two empty directories, root's, as
# mkdir makes them.
spare_dirt() {
	local s=$ORCH_ROOT/containers/.spare d
	for d in "$s"/*; do
		[ "$(ls -A "$d" 2>&1 | tr '\n' ' ')" = "upper work " ] || echo "$d"
	done
	find "$s" -mindepth 2 -maxdepth 2 ! \( -type d -empty -user 0 \( -name upper -perm 755 -o -name work -perm 700 \) \)
	find "$s" -mindepth 3
}
ids() { inp "$1" "$O" ps -a -q; }

links0=$(links) addrs0=$(addrs) routes0=$(routes) mounts0=$(mounts) files0=$(state_files)

check "up one" inp one "$O" up -d
check "up two (same service and network names)" inp two "$O" up -d
check_match "one answers (with its HOSTNAME)" '^[0-9a-f]{12}-one$' "$(http_get http://127.0.0.1:18091/)"
check_match "two answers" '^[0-9a-f]{12}-two$' "$(http_get http://127.0.0.1:18092/)"
sub() { inp "$1" "$O" exec -T app ip -o -4 addr show eth0 | awk '{print $4}'; }
check "their networks have different subnets" test "$(sub one)" != "$(sub two)"

# Another directory may not take project "one" over.
mkdir -p "$T/elsewhere" && cp "$T/one/compose.yaml" "$T/elsewhere/"
out=$(cd "$T/elsewhere" && "$O" -p one up -d 2>&1)
check "up of a name held by another directory is refused" test $? -ne 0
check_match "the refusal names the holder and suggests -p" "$T/one.*-p" "$out"

# What project "one" holds in the kernel, to look for after its down.
one_ids=$(ids one)
one_pids=$("$PY" -c 'import json,sys; print(" ".join(str(c["pid"]) for c in json.load(open(sys.argv[1])).values() if c["pid"]))' "$ORCH_RUN/projects/one/status.json")
one_sup=$(cat "$ORCH_RUN/projects/one/supervisor.pid")
one_bridges=$(for n in one_front one_back; do "$B/netd" call network.inspect "{\"name\":\"$n\"}" | "$PY" -c 'import json,sys; r=json.load(sys.stdin)["result"]; print(r["bridge"], r["subnet"])'; done)
check "one's bridges are known" test -n "$one_bridges"
anon=$(find "$ORCH_ROOT/volumes" -mindepth 1 -maxdepth 1 -name '[0-9a-f]*' | wc -l)
check "anonymous volumes exist (one per project)" test "$anon" -eq 2

check "down one" inp one "$O" down
for p in $one_pids $one_sup; do
	check "process $p of one is gone" wait_for 10 gone "$p"
done
for id in $one_ids; do
	check_eq "no cgroup of ${id:0:12}" "" "$(find /sys/fs/cgroup -maxdepth 4 -name "*$id*" 2>/dev/null)"
	check "no runtime state of ${id:0:12}" test ! -e "$ORCH_RUN/runtime/$id"
	check "no container dir of ${id:0:12}" test ! -e "$ORCH_ROOT/containers/$id"
done
rules=$(nft list ruleset)
for w in $one_bridges; do
	check "no link, address or route of $w" sh -c "! { ip -o link; ip -o addr; ip route; } | grep -qF '$w'"
	check "no nft rule mentions $w" sh -c "! printf '%s' \"\$1\" | grep -qF '$w'" _ "$rules"
done
check "no state directory of one" test ! -e "$ORCH_RUN/projects/one"
check "no mount of one" sh -c "! grep -F '$ORCH_RUN/projects/one' /proc/self/mountinfo"
check_eq "one anonymous volume left (two's)" 1 "$(find "$ORCH_ROOT/volumes" -mindepth 1 -maxdepth 1 -name '[0-9a-f]*' | wc -l)"

check_match "two is intact" '^[0-9a-f]{12}-two$' "$(http_get http://127.0.0.1:18092/)"
check_eq "two still runs its three containers" 3 "$(ids two | wc -l)"
check "down one again exits 0" inp one "$O" down

# A half-gone project: kill its supervisor and a container, remove a
# network namespace file's mount behind its back; down still finishes.
kill -9 "$(cat "$ORCH_RUN/projects/two/supervisor.pid")"
kill -9 "$(pid_of two two-db-1)"
check "down of a half-gone project succeeds" inp two "$O" down -v
check "down -v removed the named volume" sh -c "! '$O' volume inspect two_data >/dev/null 2>&1"

check_eq "links are back to before" "$links0" "$(links)"
check_eq "addresses are back to before" "$addrs0" "$(addrs)"
check_eq "routes are back to before" "$routes0" "$(routes)"
check_eq "mounts are back to before" "$mounts0" "$(mounts)"
check_eq "state files are back to before" "$files0" "$(state_files)"
check "the containers' directories are kept as spares" test -n "$(ls "$ORCH_ROOT/containers/.spare")"
check_eq "each spare is two empty directories" "" "$(spare_dirt)"
check_eq "no nft rule of either project" "" "$(nft list ruleset | grep -E 'one_|two_|10\.210\.' )"

# An up killed (kill -9) at any point: down still finds and removes what
# it had made (networks, endpoints and ports, volumes, namespaces), and an
# up after the kill completes the project.
{
	echo "services:"
	for i in 1 2 3 4 5 6; do
		echo "  s$i: {image: bb:1, command: [sleep, '3600'], networks: [a, b], ports: ['$((18300 + i)):80'], volumes: ['v$i:/v', '/anon']}"
	done
	echo "networks: {a: {}, b: {}}"
	echo "volumes: {v1: {}, v2: {}, v3: {}, v4: {}, v5: {}, v6: {}}"
} | project crash
vols0=$("$O" volume ls -q | sort)
for delay in 0.05 0.1 0.2 0.4; do
	# exec: $! is orch itself, not a subshell whose kill would leave it running.
	(cd "$T/crash" && exec "$O" up -d) >/dev/null 2>&1 &
	up=$!
	sleep "$delay"
	kill -9 "$up" 2>/dev/null
	wait "$up" 2>/dev/null
	if [ "$delay" = 0.1 ]; then
		check "up after an up killed after ${delay}s" inp crash "$O" up -d
		check_eq "all six run" 6 "$(inp crash "$O" ps -q | wc -l)"
	fi
	check "down -v after an up killed after ${delay}s" inp crash "$O" down -v
	check_eq "no link is left ($delay)" "$links0" "$(links)"
	check_eq "no nft rule is left ($delay)" "" "$(nft list ruleset)"
	check_eq "no mount is left ($delay)" "$mounts0" "$(mounts)"
	check_eq "no volume is left ($delay)" "$vols0" "$("$O" volume ls -q | sort)"
	check "no state directory is left ($delay)" test ! -e "$ORCH_RUN/projects/crash"
done

# An up killed while it removed containers (a recreation) leaves records
# marked as being removed, whose namespaces may be gone: the next up
# finishes the removal and creates them anew rather than starting them.
check "up crash" inp crash "$O" up -d
old=$(inp crash "$O" ps -q s1)
ns=$("$PY" - "$ORCH_RUN/projects/crash/state.json" <<'E'
import json, sys
s = json.load(open(sys.argv[1]))
for c in s["containers"]:
    if c["name"] == "crash-s1-1":
        c["removing"] = True
        print(c["netns"])
json.dump(s, open(sys.argv[1], "w"))
E
)
umount "$ns" && rm "$ns"
check "up after a removal cut short" inp crash "$O" up -d
check_eq "all six run" 6 "$(inp crash "$O" ps -q | wc -l)"
check "s1 is a new container" test "$(inp crash "$O" ps -q s1)" != "$old"
check "s1 has its namespace again" mountpoint -q "$ns"
check "down -v" inp crash "$O" down -v

# An up killed before it recorded anything leaves the project's directory
# and lock: down removes them.
mkdir -p "$ORCH_RUN/projects/crash" && : > "$ORCH_RUN/projects/crash/lock"
check "down of a project with nothing recorded" inp crash "$O" down
check "its directory and lock are gone" test ! -e "$ORCH_RUN/projects/crash"
# Killed sooner, between the directory and its lock.
mkdir -p "$ORCH_RUN/projects/crash"
check "down of a project directory without its lock" inp crash "$O" down
check "the directory is gone" test ! -e "$ORCH_RUN/projects/crash"

# A reboot empties ORCH_RUN, and with it the records of the containers
# whose writable layers are in ORCH_ROOT: the next down (or container)
# removes those the boot before left, never a live one's, nor those of
# this boot (another ORCH_RUN's).
printf 'services: {idle: {image: bb:1}}\n' | project nothing
check "up crash" inp crash "$O" up -d
live=$(inp crash "$O" ps -q --no-trunc s1)
old_ctr() { mkdir -p "$ORCH_ROOT/containers/$1/upper/etc" "$ORCH_ROOT/containers/$1/work" && echo data > "$ORCH_ROOT/containers/$1/upper/etc/f"; }
a=$(printf 'a%.0s' $(seq 64)) b=$(printf 'b%.0s' $(seq 64))
old_ctr "$a"
mkdir -p "$ORCH_ROOT/containers/.spare/.new-$a-" # a spare half made at the crash
check_match "the containers' directories were made in this boot" "^$(cat /proc/sys/kernel/random/boot_id)\$" "$(cat "$ORCH_ROOT/containers/.boot")"
echo 00000000-0000-0000-0000-000000000000 > "$ORCH_ROOT/containers/.boot"
rm "$ORCH_RUN/runtime/.boot"
check "down after a reboot" inp nothing "$O" down
check "the previous boot's container directory is gone" test ! -e "$ORCH_ROOT/containers/$a"
check_eq "nothing of it is left, in spares either" "" "$(find "$ORCH_ROOT/containers" -name f -o -name ".new-*")"
check "a live container's directory is kept" test -d "$ORCH_ROOT/containers/$live/upper"
check_eq "and it runs on" 6 "$(inp crash "$O" ps -q | wc -l)"
check_eq "the boot is recorded" "$(cat /proc/sys/kernel/random/boot_id)" "$(cat "$ORCH_ROOT/containers/.boot")"
old_ctr "$b"
rm "$ORCH_RUN/runtime/.boot"
check "down with ORCH_RUN emptied in the same boot" inp nothing "$O" down
check "this boot's directory is kept (another ORCH_RUN's)" test -e "$ORCH_ROOT/containers/$b/upper/etc/f"
rm -rf "${ORCH_ROOT:?}/containers/$b"
echo 00000000-0000-0000-0000-000000000000 > "$ORCH_ROOT/containers/.boot"
old_ctr "$a"
check "down with ORCH_RUN kept over the reboot" inp nothing "$O" down
check "its directories are kept (their records are there)" test -e "$ORCH_ROOT/containers/$a/upper/etc/f"
rm -rf "${ORCH_ROOT:?}/containers/$a"
check "down -v" inp crash "$O" down -v

# A cgroup_parent an administrator made (with a limit for every project
# put in it) stays after down; one orch made for it goes.
if [ -d /sys/fs/cgroup/memory ]; then M=/sys/fs/cgroup/memory LIM=memory.limit_in_bytes; else M=/sys/fs/cgroup LIM=memory.max; fi
adm=orch-e2e-admin-$$ made=orch-e2e-made-$$
mkdir "$M/$adm" && echo 268435456 > "$M/$adm/$LIM"
printf 'services:\n  a: {image: bb:1, command: [sleep, "60"], cgroup_parent: %s}\n  b: {image: bb:1, command: [sleep, "60"], cgroup_parent: %s}\n' "$adm" "$made" | project cgp
check "up with cgroup parents" inp cgp "$O" up -d
check_eq "a's container is in the administrator's parent" 1 "$(ls "$M/$adm" | grep -cx '[0-9a-f]\{64\}')"
check "b's parent was made" test -d "$M/$made"
check "down" inp cgp "$O" down
check "the administrator's parent stays" test -d "$M/$adm"
check_eq "with its limit" 268435456 "$(cat "$M/$adm/$LIM")"
check_eq "the parents orch made are gone" "" "$(ls -d /sys/fs/cgroup/*/"$made" /sys/fs/cgroup/"$made" /sys/fs/cgroup/*/"$adm" 2>/dev/null | grep -v "^$M/$adm\$")"
rmdir /sys/fs/cgroup/*/"$adm" /sys/fs/cgroup/"$adm" /sys/fs/cgroup/*/"$made" /sys/fs/cgroup/"$made" 2>/dev/null

# Network namespaces netd makes while idle, as many as the last up took:
# each becomes one container's (lo up), never two's, and netd keeps none
# it gave.
netd_nsfds() { ls -l "/proc/$(cat "$ORCH_RUN/netd/netd.pid")/fd" | grep -o 'net:\[[0-9]*\]' | sort -u; }
ns_ahead() { [ "$(netd_nsfds | wc -l)" -ge 6 ]; }
check "up crash" inp crash "$O" up -d
check "down -v" inp crash "$O" down -v
check "netd makes six network namespaces ahead once idle" wait_for 10 ns_ahead
ahead=$(netd_nsfds)
check "up crash, with them" inp crash "$O" up -d
used=$(for i in 1 2 3 4 5 6; do readlink "/proc/$(pid_of crash "crash-s$i-1")/ns/net"; done | sort)
check_eq "six containers, six network namespaces" 6 "$(echo "$used" | sort -u | grep -c net:)"
check_eq "each one netd made ahead" 6 "$(comm -12 <(echo "$ahead") <(echo "$used") | wc -l)"
check_eq "netd holds none of them any more" 0 "$(comm -12 <(netd_nsfds) <(echo "$used") | wc -l)"
check_match "lo is up in them" "state UNKNOWN|LOOPBACK,UP" "$(nsenter --net="/proc/$(pid_of crash crash-s1-1)/ns/net" ip -o link show lo)"
check "down -v" inp crash "$O" down -v
finish
