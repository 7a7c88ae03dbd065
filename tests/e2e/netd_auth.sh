#!/bin/sh
# netd's front door: `orch` starts it on demand; SO_PEERCRED authorization
# and per-uid quotas; malformed and oversized messages get error replies
# and the daemon stays up; orch network ls|inspect|prune.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netd_helpers.inc"

as_user() { setpriv --reuid 1000 --regid 1000 --clear-groups "$@"; }
echo '{"quota_networks": 1, "pool": "10.77.0.0/16"}' > "$ORCH_ROOT/netd.json"
# Another engine's bridge on the host: its subnet is skipped by the pool.
ip link add other0 type veth peer name other1
ip link set other0 up
ip addr add 10.77.0.1/24 dev other0

check_match "orch network ls starts netd on demand" "NETWORK ID +NAME" "$("$B/orch" network ls 2>&1)"
check "netd is running" kill -0 "$(netd_pid)"
pid=$(netd_pid)

check_match "root creates a network from the configured pool, skipping the host's subnet" '"subnet":"10\.77\.1\.0/24"' "$(ncall network.create '{"name":"r_net","project":"r"}')"
check_match "a requested subnet overlapping the host's routes is refused" "overlaps the host's route 10\.77\.0\.0/24" "$(ncall network.create '{"name":"r_x","project":"r","subnet":"10.77.0.128/25"}')"
# Many projects at once never share a subnet.
for i in 1 2 3 4 5 6 7 8; do ncall network.create "{\"name\":\"par_$i\",\"project\":\"par$i\"}" > "$T/par.$i" & done
wait
check_eq "eight parallel creates, eight distinct subnets" "8" "$(cat "$T"/par.* | python3 -c 'import json,sys; print(len({json.loads(l)["result"]["subnet"] for l in sys.stdin}))')"
for i in 1 2 3 4 5 6 7 8; do ncallq network.remove "{\"name\":\"par_$i\"}"; done
ip netns add victim
out=$(as_user "$B/netd" call network.remove '{"name":"r_net"}' 2>&1)
check_match "uid 1000 cannot remove root's network" "permission denied \(it belongs to uid 0, you are uid 1000\)" "$out"
out=$(as_user "$B/netd" call endpoint.attach '{"network":"r_net","container_id":"x"}' 2>&1)
check_match "uid 1000 cannot attach to root's network" "permission denied" "$out"
out=$(as_user "$B/netd" call network.inspect '{"name":"r_net"}' 2>&1)
check_match "uid 1000 cannot inspect root's network" "permission denied" "$out"
check_eq "uid 1000 does not list root's network" '[]' "$(as_user "$B/netd" call network.list | python3 -c 'import json,sys; print(json.dumps([n["name"] for n in json.load(sys.stdin)["result"]["networks"]]))')"
check_match "root's network is still there" '"ok":true' "$(ncall network.inspect '{"name":"r_net"}')"
check_match "uid 1000 creates its own network" '"owner":1000' "$(as_user "$B/netd" call network.create '{"name":"u_net","project":"u"}')"
check_match "uid 1000 quota of networks" "quota of 1 networks" "$(as_user "$B/netd" call network.create '{"name":"u_two","project":"u"}')"
check_match "uid 1000 may not attach the host's namespace" "host's own network namespace" "$(as_user "$B/netd" call endpoint.attach '{"network":"u_net","container_id":"h"}' --netns /proc/self/ns/net)"
check_match "uid 1000 may not name a namespace path" "no network namespace passed" "$(as_user "$B/netd" call endpoint.attach '{"network":"u_net","container_id":"v","netns_path":"/run/netns/victim"}')"
check_match "root cannot publish a port of a container that is not attached" "not attached" "$(ncall port.publish '{"network":"r_net","container_id":"nope","host_port":9000,"container_port":80}')"
out=$(as_user "$B/netd" call network.remove '{"names":["u_net","r_net"]}' 2>&1)
check_match "uid 1000 cannot remove root's network in a batch" "permission denied \(it belongs to uid 0, you are uid 1000\)" "$out"
check_match "a refused batch removes none of it" '"ok":true' "$(as_user "$B/netd" call network.inspect '{"name":"u_net"}')"
check_match "uid 1000 removes its own network" '"removed":true' "$(as_user "$B/netd" call network.remove '{"name":"u_net"}')"
# Network namespaces made ahead are root's: a user's containers live in
# its own user namespace.
check_match "uid 1000 takes no network namespace from netd" "only root's containers" "$(as_user "$B/netd" call netns.take 2>&1)"
check_match "none is made before one is asked for" '"netns":false' "$(ncall netns.take)"
ns_held() { ls -l "/proc/$pid/fd" | grep -q 'net:\['; }
check "one is made once netd is idle" wait_for 5 ns_held
check_match "root takes it" '"netns":true' "$(ncall netns.take)"
check_match "netns.take takes no arguments" 'unknown argument' "$(ncall netns.take '{"n":2}' 2>&1)"

# Malformed messages.
raw() { printf '%s' "$1" | "$B/netd" call --raw; }
check_match "garbage" '"ok":false.*malformed' "$(raw 'garbage')"
check_match "empty message" '"ok":false' "$(printf '' | "$B/netd" call --raw)"
check_match "wrong version" 'version 9 not supported' "$(raw '{"v":9,"op":"ping"}')"
check_match "unknown op" 'unknown operation' "$(raw '{"v":1,"op":"rm -rf"}')"
check_match "wrong type" 'expected a string' "$(raw '{"v":1,"op":"network.remove","args":{"name":[1]}}')"
check_match "unknown argument" 'unknown argument' "$(raw '{"v":1,"op":"network.remove","args":{"name":"a","x":1}}')"
check_match "remove without a name" 'missing argument .*name' "$(raw '{"v":1,"op":"network.remove","args":{}}')"
check_match "remove: a bad name in the list" 'invalid name' "$(raw '{"v":1,"op":"network.remove","args":{"names":["ok","../x"]}}')"
check_match "bad name" 'invalid name' "$(raw '{"v":1,"op":"network.create","args":{"name":"../../etc","project":"p"}}')"
check_match "bad subnet" 'expected A.B.C.D/N' "$(raw '{"v":1,"op":"network.create","args":{"name":"b","project":"p","subnet":"10.0.0.0/99"}}')"
check_match "oversized message" 'larger than 65536 bytes' "$(head -c 70000 /dev/zero | tr '\0' 'x' | "$B/netd" call --raw)"
check_match "truncated JSON" 'malformed' "$(raw '{"v":1,"op":"network.create","args":{"name":"a"')"
python3 - "$ORCH_RUN/netd.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.close()  # connects and leaves without a word
PY
check_eq "the daemon is still the same process" "$pid" "$(netd_pid)"
check "and still answers" kill -0 "$pid"
check_match "ping" '"version":1' "$(ncall ping)"

# orch network commands.
check_match "orch network ls" "r_net +bridge +10\.77\.1\.0/24" "$("$B/orch" network ls)"
id=$(ncall network.inspect '{"name":"r_net"}' | json_get id)
check_eq "orch network ls -q" "$(echo "$id" | cut -c1-12)" "$("$B/orch" network ls -q)"
check_match "orch network inspect by id prefix" '"name": "r_net"' "$("$B/orch" network inspect "$(echo "$id" | cut -c1-6)")"
"$B/orch" network inspect nope >/dev/null 2>&1
check_eq "orch network inspect unknown fails" "1" "$?"
"$B/orch" network ls --bogus >/dev/null 2>&1
check_eq "bad flag is a usage error" "2" "$?"
check_match "orch network prune removes unused networks" "Deleted Networks:.*r_net" "$("$B/orch" network prune -f | tr '\n' ' ')"
check_eq "nothing left" "" "$("$B/orch" network ls -q)"
finish
