#!/bin/sh
# Attacks on netd by a second, real local user (and by root where it
# applies), each of which must fail with a clear message and leave the
# host as it was: another user's network by name, subnets outside the
# user's ranges or over special space and the host's routes, privileged
# and busy host ports.  Also: a 20,000-port range publishes in seconds,
# and any orch command brings a killed netd back with its DNS.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netd_helpers.inc"
. "$(dirname "$0")/lifecycle_helpers.inc"

U=osec$ID
useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$U" || { echo "cannot add user $U"; exit 1; }
on_exit "userdel $U"
UUID=$(id -u "$U")
as_u() { setpriv --reuid="$U" --regid="$(id -g "$U")" --init-groups "$@"; }
ucall() { as_u "$B/netd" call "$@" 2>&1; }

cat > "$ORCH_ROOT/netd.json" <<J
{"pool": "10.77.0.0/16", "user_subnets": ["10.200.0.0/16"],
 "user_ports": {"$U": ["81"]}}
J
# A host network of this namespace: its route is the host's.
ip link add hostv0 type veth peer name hostv1
ip addr add 10.99.5.1/24 dev hostv0
ip link set hostv0 up

# What the host looks like: routes, firewall, listeners.
host_view() { ip -4 route show table all; nft list ruleset; ss -Hlntu | sort; }
same_host() { host_view > "$T/after"; cmp -s "$T/before" "$T/after"; }
snap() { host_view > "$T/before"; }

"$O" network ls >/dev/null
check_match "netd runs" '"version":1' "$(ncall ping)"

# ---- 3: another user's network, by name -------------------------------------
project sq <<Y
services:
  web: {image: bb:1, command: [sleep, '3600']}
Y
out=$(ucall network.create '{"name":"sq_default","project":"sq","labels":["com.docker.compose.project=sq","com.docker.compose.network=default"]}')
check_match "the user pre-creates sq_default with root's labels" "\"owner\":$UUID" "$out"
snap
out=$(inp sq "$O" up -d 2>&1)
check_eq "root's up on that name fails" "1" "$(inp sq "$O" up -d >/dev/null 2>&1; echo $?)"
check_match "naming the owner" "^orch: [^ ]*/compose.yaml:[0-9]+:[0-9]+: network \"default\": network sq_default already exists and belongs to uid $UUID \($U\)" "$out"
check_match "root's network.create never returns the user's network" "belongs to uid $UUID \($U\).*not yours" "$(ncall network.create '{"name":"sq_default","project":"sq","labels":["com.docker.compose.project=sq","com.docker.compose.network=default"]}' 2>&1)"
check_eq "nothing joined the user's network" "0" "$(ucall network.inspect '{"name":"sq_default"}' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["result"]["endpoints"]))')"
check "no container of root's project runs" test -z "$(inp sq "$O" ps -q 2>/dev/null)"
check "the host did not change" same_host
check_match "root's own network" '"owner":0' "$(ncall network.create '{"name":"r_net","project":"r","labels":["a=b"]}')"
check_match "the user cannot take root's network by name" "r_net already exists and belongs to uid 0 \(root\)" "$(ucall network.create '{"name":"r_net","project":"r","labels":["a=b"]}')"
check_match "root again with other labels: refused, naming the owner" "r_net already exists with other labels \(owner uid 0 \(root\)" "$(ncall network.create '{"name":"r_net","project":"r","labels":["a=c"]}' 2>&1)"
check_match "root again with another project: refused" "r_net already exists for project r \(owner uid 0 \(root\)\), not for project x" "$(ncall network.create '{"name":"r_net","project":"x","labels":["a=b"]}' 2>&1)"
check_match "root again, same request: its own network back" '"name":"r_net"' "$(ncall network.create '{"name":"r_net","project":"r","labels":["a=b"]}')"
project ext <<Y
services:
  web: {image: bb:1, command: [sleep, '3600'], networks: [outside]}
networks:
  outside: {external: true, name: sq_default}
Y
check_match "root's up refuses the user's network as an external one" 'external network "sq_default" belongs to uid '"$UUID"' \(project sq\), not to uid 0' "$(inp ext "$O" up -d 2>&1)"
check_eq "still nothing joined the user's network" "0" "$(ucall network.inspect '{"name":"sq_default"}' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["result"]["endpoints"]))')"
check_match "the user removes its network" '"removed":true' "$(ucall network.remove '{"name":"sq_default"}')"
inp sq "$O" up -d >/dev/null 2>&1
check_match "then root's up makes its own" '"owner":0' "$(ncall network.inspect '{"name":"sq_default"}')"
inp sq "$O" down -t 0 >/dev/null 2>&1

# ---- 4: subnets --------------------------------------------------------------
snap
for s in 8.8.8.0/24 1.0.0.0/8 169.254.169.0/24 224.0.0.0/24 10.0.0.0/8; do
	check_match "the user may not create $s" "subnet $s is (outside the ranges uid $UUID may use|in .* address space)" "$(ucall network.create "{\"name\":\"u_bad\",\"project\":\"u\",\"subnet\":\"$s\"}")"
done
for s in 224.0.0.0/24:multicast 127.0.0.0/16:loopback 169.254.0.0/24:link-local 0.0.0.0/8:unspecified 255.255.255.0/24:broadcast; do
	check_match "nobody, root included, may create ${s%%:*}" "subnet ${s%%:*} is in ${s#*:} .*address space" "$(ncall network.create "{\"name\":\"r_bad\",\"project\":\"r\",\"subnet\":\"${s%%:*}\"}" 2>&1)"
done
check_match "a subnet covering a host route is refused for root" "subnet 10.99.0.0/16 overlaps the host's route 10.99.5.0/24" "$(ncall network.create '{"name":"r_bad","project":"r","subnet":"10.99.0.0/16"}' 2>&1)"
check_match "so is one inside it" "overlaps the host's route 10.99.5.0/24" "$(ncall network.create '{"name":"r_bad","project":"r","subnet":"10.99.5.128/25"}' 2>&1)"
check "the host did not change" same_host
check_match "the user may create a subnet of user_subnets" '"subnet":"10.200.5.0/24"' "$(ucall network.create '{"name":"u_net","project":"u","subnet":"10.200.5.0/24"}')"
check_match "root may create 8.8.8.0/24 (not a host route here)" '"subnet":"8.8.8.0/24"' "$(ncall network.create '{"name":"r_eight","project":"r","subnet":"8.8.8.0/24"}')"
ncallq network.remove '{"name":"r_eight"}'

# ---- 5: privileged and busy ports ------------------------------------------
# A namespace root made, where a process of the user's runs: not the
# user's to hand over (only one of a user namespace the user made is).
ip netns add "u$ID"
on_exit "ip netns del u$ID"
ip netns exec "u$ID" setpriv --reuid="$U" --regid="$(id -g "$U")" --init-groups sleep 600 &
rpid=$!
on_exit "kill $rpid"
wait_for 10 sh -c '[ "$(stat -c %u "/proc/$1" 2>/dev/null)" = "$2" ]' _ "$rpid" "$UUID"
check_match "the user may not attach a namespace root made" "belongs to uid 0, not to you" "$(ucall endpoint.attach '{"network":"u_net","container_id":"uc"}' --netns /proc/$rpid/ns/net)"
setpriv --reuid="$U" --regid="$(id -g "$U")" --init-groups unshare --user --net sleep 600 &
upid=$!
on_exit "kill $upid"
wait_for 10 sh -c '[ "$(readlink "/proc/$1/ns/user")" != "$(readlink /proc/self/ns/user)" ]' _ "$upid"
check_match "the user attaches a namespace of its own" '"address":"10\.200\.5\.' "$(ucall endpoint.attach '{"network":"u_net","container_id":"uc"}' --netns /proc/$upid/ns/net)"
snap
check_match "the user may not publish port 80" "host port 80 is privileged \(below 1024" "$(ucall port.publish '{"network":"u_net","container_id":"uc","host_port":80,"container_port":80}')"
check_match "nor a range reaching into privileged ports" "host port 1000 is privileged" "$(ucall port.publish '{"network":"u_net","container_id":"uc","host_port":1000,"container_port":80,"count":30}')"
check_match "port.check says so too" "privileged" "$(ucall port.check '{"network":"u_net","container_id":"uc","host_port":443,"container_port":80}')"
check "nothing listens on port 80 and the firewall is as it was" same_host
check_match "netd.json allows the user port 81" '"ok":true' "$(ucall port.publish '{"network":"u_net","container_id":"uc","host_port":81,"container_port":80}')"
check_match "root may publish port 80" '"ok":true' "$(ncall port.publish '{"network":"u_net","container_id":"uc","host_port":80,"container_port":80}')"
python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",18555)); s.listen(); time.sleep(600)' &
lpid=$!
on_exit "kill $lpid"
wait_for 10 sh -c "ss -Hltn | grep -q ':18555 '"
snap
check_match "a port a host process listens on is refused for root" "18555/tcp is already in use by pid $lpid" "$(ncall port.publish '{"network":"u_net","container_id":"uc","host_port":18555,"container_port":80}' 2>&1)"
check_match "and for the user" "18555/tcp is already in use" "$(ucall port.publish '{"network":"u_net","container_id":"uc","host_port":18555,"container_port":80}')"
check_match "and in the middle of a long range" "18555/tcp is already in use by pid $lpid" "$(ncall port.publish '{"network":"u_net","container_id":"uc","host_port":18500,"container_port":80,"count":100}' 2>&1)"
check "the listener and the firewall are as they were" same_host
kill $lpid
snap
ncallq port.publish '{"network":"u_net","container_id":"uc","host_port":40000,"container_port":100,"count":10}'
check_match "unpublishing the middle of a range" '"removed":3' "$(ncall port.unpublish '{"network":"u_net","container_id":"uc","host_port":40003,"count":3}')"
check_eq "leaves both ends" "40000 40001 40002 40006 40007 40008 40009" "$(nft list map inet orch port_any | grep -oE 'tcp \. 400[0-9]+ ' | awk '{printf "%s%s", s, $3; s=" "}')"
check_match "and the rest goes" '"removed":7' "$(ncall port.unpublish '{"network":"u_net","container_id":"uc","host_port":40000,"count":10}')"
check "the firewall is as it was" same_host
ncallq network.remove '{"name":"u_net"}'
ncallq network.remove '{"name":"r_net"}'

# ---- a range of 20,000 ports ---------------------------------------------------
python3 -c 'import socket,time; s=socket.socket(); s.bind(("0.0.0.0",30555)); s.listen(); time.sleep(600)' &
lpid=$!
on_exit "kill $lpid"
wait_for 10 sh -c "ss -Hltn | grep -q ':30555 '"
project busy <<Y
services:
  web: {image: bb:1, command: [sleep, '3600'], ports: ["30500-30599:80-179"]}
Y
check_match "up refuses a range holding a host listener, naming the port" 'host port 30555/tcp is already in use' "$(inp busy "$O" up -d 2>&1)"
check "and creates nothing" test -z "$(ncall network.list | grep busy_default)"
kill $lpid
project big <<Y
services:
  web:
    image: bb:1
    command: [sh, -c, 'mkdir -p /w && echo big > /w/index.html && exec httpd -f -p 80 -h /w']
    ports: ["20000-39999:80-20079"]
Y
snap
t0=$(date +%s%N)
inp big "$O" up -d >/dev/null 2>&1
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
echo "# up publishing 20000 ports: $ms ms"
check "up publishing 20,000 ports takes seconds, not minutes ($ms ms)" test "$ms" -lt 20000
check_eq "every port is one map element" "20000" "$(nft -j list map inet orch port_any | python3 -c 'import json,sys; print(sum(len(o["map"].get("elem",[])) for o in json.load(sys.stdin)["nftables"] if "map" in o))')"
check_eq "ps lists them" "20000" "$(psf big web Publishers | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
check_match "host port 20000 reaches container port 80" "big" "$(until_true 5 sh -c 'wget -qO- http://127.0.0.1:20000/ 2>/dev/null | grep -q big' && wget -qO- http://127.0.0.1:20000/)"
t0=$(date +%s%N)
inp big "$O" down -t 0 >/dev/null 2>&1
t1=$(date +%s%N)
echo "# down: $(( (t1 - t0) / 1000000 )) ms"
check "down removes them all: the host is as it was" same_host

# ---- netd killed: any orch command brings it back, with its DNS -------------------
# dns_a NETNS SERVER NAME: the first A record SERVER gives for NAME over UDP.
dns_a() {
	nsenter --net="$1" python3 - "$2" "$3" <<'PY'
import socket, struct, sys
q = struct.pack(">HHHHHH", 9, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in sys.argv[2].split(".")) + b"\0\0\1\0\1"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
try:
    s.sendto(q, (sys.argv[1], 53))
    r = s.recv(4096)
except OSError:
    sys.exit(1)
if struct.unpack(">H", r[6:8])[0] and r[-6:-4] == b"\0\4":
    print(socket.inet_ntoa(r[-4:]))
PY
}
# resolves NETNS SERVER NAME ADDRESS
resolves() { [ "$(dns_a "$1" "$2" "$3")" = "$4" ]; }
project dn <<Y
services:
  web: {image: bb:1, command: [sleep, '3600']}
  cli: {image: bb:1, command: [sleep, '3600'], depends_on: [web]}
Y
inp dn "$O" up -d >/dev/null 2>&1
gw=$(ncall network.inspect '{"name":"dn_default"}' | json_get gateway)
ns=$ORCH_RUN/projects/dn/netns/dn-cli-1
web_ip=$(ncall network.inspect '{"name":"dn_default"}' | python3 -c 'import json,sys; print([e["address"] for e in json.load(sys.stdin)["result"]["endpoints"] if e["service"]=="web"][0])')
check_eq "a container resolves a service name" "$web_ip" "$(dns_a "$ns" "$gw" web)"
old=$(netd_pid)
netd_kill9
check "with netd killed, the name does not resolve" test -z "$(dns_a "$ns" "$gw" web)"
inp dn "$O" ps >/dev/null 2>&1
check "orch ps starts netd again" test -n "$(netd_pid)" -a "$(netd_pid)" != "$old"
check "and the name resolves again" until_true 10 resolves "$ns" "$gw" web "$web_ip"
for cmd in "logs" "exec -T cli true"; do
	old=$(netd_pid)
	netd_kill9
	inp dn "$O" $cmd >/dev/null 2>&1
	check "orch $cmd starts netd again" test -n "$(netd_pid)" -a "$(netd_pid)" != "$old"
done
check "and the name still resolves" until_true 10 resolves "$ns" "$gw" web "$web_ip"
inp dn "$O" down -t 0 >/dev/null 2>&1
finish
