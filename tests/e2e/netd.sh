#!/bin/sh
# netd end to end: two networks and real containers of the busybox fixture.
#   front (link-only): web, api, stray; web may open connections to api
#   back  (icc):       api, db
#   priv  (internal):  vault
# plus an "outside" host (its own netns) reached over a veth.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netd_helpers.inc"

# The outside world: 192.0.2.2 behind the host's 192.0.2.1.
ip netns add outside
ip link add out0 type veth peer name eth0 netns outside
ip addr add 192.0.2.1/24 dev out0
ip link set out0 up
ip netns exec outside ip addr add 192.0.2.2/24 dev eth0
ip netns exec outside ip link set eth0 up
ip netns exec outside ip link set lo up
mkdir -p "$T/outside" && echo outside > "$T/outside/index.html"
ip netns exec outside busybox httpd -p 80 -h "$T/outside"
on_exit 'ip netns pids outside | xargs -r kill'

check "netd starts" netd_start 7>"$T/held"
check "netd holds no fd its caller left open" sh -c "! ls -l /proc/$(netd_pid)/fd | grep -qF '$T/held'"
check_eq "netd runs under its own name (ps, pkill, the suites' clean-up)" netd "$(cat /proc/$(netd_pid)/comm)"
check_match "without malloc's thread cache" 'tcache_count=0' "$(tr '\0' '\n' < /proc/$(netd_pid)/environ | grep GLIBC_TUNABLES)"
front=$(ncall network.create '{"name":"p_front","project":"p"}')
check "create link-only network" test -n "$front"
back=$(ncall network.create '{"name":"p_back","project":"p","icc":true}')
priv=$(ncall network.create '{"name":"p_priv","project":"p","internal":true,"icc":true}')
fgw=$(echo "$front" | json_get gateway)
bgw=$(echo "$back" | json_get gateway)
pgw=$(echo "$priv" | json_get gateway)
check_eq "pool subnets are consecutive /24s" "10.210.0.0/24 10.210.1.0/24 10.210.2.0/24" \
	"$(echo "$front" | json_get subnet) $(echo "$back" | json_get subnet) $(echo "$priv" | json_get subnet)"
again=$(ncall network.create '{"name":"p_front","project":"p"}' | json_get id)
check_eq "create is idempotent" "$(echo "$front" | json_get id)" "$again"
out=$(ncall network.create '{"name":"q_x","project":"q","subnet":"10.210.1.128/25"}')
check_match "overlapping subnet refused naming the holder" 'overlaps 10.210.1.0/24 of network p_back \(project p\)' "$out"

for c in web api stray; do container $c "$fgw" sh -c "$(httpd_cmd $c)"; done
container db "$bgw" sh -c "$(httpd_cmd db)"
container vault "$pgw" sh -c "$(httpd_cmd vault)"
attach() { # NET CONTAINER SERVICE
	ncall endpoint.attach "{\"network\":\"$1\",\"container_id\":\"$UNIQ-$2\",\"container_name\":\"p-$3-1\",\"service\":\"$3\"}" --netns "/run/netns/$2" >/dev/null
}
check "attach web" attach p_front web web
check "attach api to front" attach p_front api api
check "attach stray" attach p_front stray stray
check "attach api to back" attach p_back api api
check "attach db" attach p_back db db
check "attach vault" attach p_priv vault vault
check "links set" ncallq links.set '{"network":"p_front","pairs":[{"from":"web","to":"api"}]}'
check_eq "api has eth0 and eth1" "eth0 eth1" "$(cx api ip -o link | awk -F': ' '/eth/ {sub(/@.*/,"",$2); print $2}' | sort | xargs)"

web_ip=$(cx web ip -o -4 addr show eth0 | awk '{sub(/\/.*/, "", $4); print $4}')
check_eq "the MAC follows the address" "$(echo "$web_ip" | awk -F. '{printf "02:42:%02x:%02x:%02x:%02x", $1, $2, $3, $4}')" \
	"$(cx web cat /sys/class/net/eth0/address)"
check_eq "no IPv6 on container interfaces" "" "$(cx api ip -o addr | grep inet6 | grep eth)"
api_front=$(resolve web api)
check_match "web resolves api" '^10\.210\.0\.' "$api_front"
check_match "db resolves api on back" '^10\.210\.1\.' "$(resolve db api)"
check_match "container names resolve" '^10\.210\.0\.' "$(resolve web p-api-1)"
check_eq "web cannot resolve db (other network)" "" "$(resolve web db)"
check_eq "DNS over TCP" "rcode=0 answers=1" "$(resolve_tcp web "$fgw" api 2>&1)"
check_eq "DNS over TCP: NXDOMAIN across networks" "rcode=3 answers=0" "$(resolve_tcp web "$fgw" db 2>&1)"
check_match "NXDOMAIN for a name of another network" "NXDOMAIN" "$(cx web nslookup db 2>&1)"

check_eq "linked: web -> api over TCP by name" "api" "$(tcp web api)"
check "linked: web -> api over UDP" udp web "$api_front" api
check_eq "unlinked: stray -> api refused" "" "$(tcp stray api)"
check "unlinked: stray -> api over UDP refused" udp_refused stray "$api_front" api
# Refused at once, not left to time out: a TCP reset ("connection
# refused"), an ICMP "administratively prohibited" for UDP.
refusal() {
	nsenter --net="/run/netns/$1" python3 - "$2" "$3" <<'PY'
import socket, sys, time
ip, proto = sys.argv[1], sys.argv[2]
t = time.monotonic()
try:
    if proto == "tcp":
        socket.create_connection((ip, 80), timeout=10)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(10)
        s.connect((ip, 5000))
        s.send(b"x")
        s.recv(10)
    print("answered")
except socket.timeout:
    print("timed out")
except OSError as e:
    print(e.strerror if time.monotonic() - t < 5 else "slow: " + e.strerror)
PY
}
check_eq "unlinked TCP fails at once: connection refused" "Connection refused" "$(refusal stray "$api_front" tcp)"
check_eq "unlinked UDP fails at once: administratively prohibited" "No route to host" "$(refusal stray "$api_front" udp)"
check_eq "reverse of a link: api -> web refused" "" "$(tcp api web)"
# Pair changes go to the kernel as netlink batches; one it refuses (the
# table removed behind netd's back) is made good by a rebuild from the
# state, and a later change empties the sets it replaces.
nft delete table inet orch
check "links set after the table was removed" ncallq links.set '{"network":"p_front","pairs":[{"from":"web","to":"api"},{"from":"stray","to":"api"}]}'
check_match "netd rebuilt the table" 'rebuilding the table' "$(cat "$ORCH_RUN/netd/netd.log")"
check_eq "rebuilt: web -> api" "api" "$(tcp web api)"
check_eq "rebuilt: the new link, stray -> api" "api" "$(tcp stray api)"
check "links set back" ncallq links.set '{"network":"p_front","pairs":[{"from":"web","to":"api"}]}'
check_eq "a link taken away: stray -> api refused again" "" "$(tcp stray api)"
check_eq "and web -> api still linked" "api" "$(tcp web api)"
check_eq "no second rebuild" "1" "$(grep -c 'rebuilding the table' "$ORCH_RUN/netd/netd.log")"
check_eq "icc: db -> api" "api" "$(tcp db api)"
check_eq "icc: api -> db" "db" "$(tcp api db)"
db_ip=$(resolve api db)
check_eq "different networks: web -> db by address refused" "" "$(cx web timeout 3 wget -qO- http://$db_ip/ 2>/dev/null)"
check_eq "different networks: vault -> api refused" "" "$(cx vault timeout 3 wget -qO- http://$api_front/ 2>/dev/null)"
check_eq "non-internal reaches the outside" "outside" "$(tcp web 192.0.2.2)"
check_eq "internal has no route out" "" "$(tcp vault 192.0.2.2)"
check_eq "internal has no default route" "" "$(cx vault ip route | grep default)"
busybox httpd -f -p 81 -h "$T/outside" &  # a service of the host's own
hostsvc=$!
on_exit "kill $hostsvc"
wait_for 10 sh -c "ss -Hltn | grep -q ':81 '"
check_eq "containers cannot reach host services" "" "$(tcp web 192.0.2.1:81)"

# Published ports.
check "publish web:80 on 8081" ncallq port.publish "{\"network\":\"p_front\",\"container_id\":\"$UNIQ-web\",\"host_port\":8081,\"container_port\":80}"
check "publish api:80 on 127.0.0.1:8082" ncallq port.publish "{\"network\":\"p_front\",\"container_id\":\"$UNIQ-api\",\"host_ip\":\"127.0.0.1\",\"host_port\":8082,\"container_port\":80}"
check_eq "published port on 127.0.0.1 from the host" "web" "$(timeout 3 busybox wget -qO- http://127.0.0.1:8081/)"
check_eq "published port on the host's other address" "web" "$(timeout 3 busybox wget -qO- http://192.0.2.1:8081/)"
check_eq "127.0.0.1-only port from the host" "api" "$(timeout 3 busybox wget -qO- http://127.0.0.1:8082/)"
check_eq "127.0.0.1-only port not on other addresses" "" "$(timeout 3 busybox wget -qO- http://192.0.2.1:8082/ 2>/dev/null)"
check_eq "published port from a container on another network" "web" "$(tcp db 192.0.2.1:8081)"
check_eq "published port from the same network (hairpin)" "web" "$(tcp stray 192.0.2.1:8081)"
check_eq "published port from the outside host" "web" "$(ip netns exec outside timeout 3 busybox wget -qO- http://192.0.2.1:8081/)"
# CVE-2020-8558: the bridges have route_localnet; a container that routes
# 127.0.0.1 to its gateway must still not reach the host's loopback.
ip netns add attacker
ncallq endpoint.attach '{"network":"p_front","container_id":"attacker"}' --netns /run/netns/attacker
ip netns exec attacker sh -c "ip route del local 127.0.0.0/8 dev lo table local &&
	ip route del local 127.0.0.1 dev lo table local &&
	sysctl -qw net.ipv4.conf.eth0.route_localnet=1 &&
	ip route add 127.0.0.1/32 via $fgw dev eth0"
check_eq "a container cannot reach the host's 127.0.0.1" "" "$(ip netns exec attacker timeout 3 busybox wget -qO- http://127.0.0.1:81/ 2>/dev/null)"
ncallq endpoint.detach '{"network":"p_front","container_id":"attacker"}'

out=$(ncall port.publish "{\"network\":\"p_back\",\"container_id\":\"$UNIQ-db\",\"host_port\":8081,\"container_port\":80}")
check_match "conflicting mapping refused naming the holder" "already published by p-web-1 \(project p, network p_front\)" "$out"
out=$(ncall port.check "{\"network\":\"p_back\",\"container_id\":\"$UNIQ-db\",\"host_ip\":\"127.0.0.1\",\"host_port\":81,\"container_port\":80}")
check_match "port held by a host process refused naming it" "in use by pid [0-9]+ \(busybox\)" "$out"
check_eq "unpublish" "1" "$(ncall port.unpublish "{\"network\":\"p_front\",\"container_id\":\"$UNIQ-api\"}" | json_get removed)"
check_eq "unpublished port is gone" "" "$(timeout 3 busybox wget -qO- http://127.0.0.1:8082/ 2>/dev/null)"

# Restart keeps everything.
netd_stop
check "netd restarts" netd_start
check_eq "after restart: linked pair still talks" "api" "$(tcp web api)"
check_eq "after restart: published port" "web" "$(timeout 3 busybox wget -qO- http://127.0.0.1:8081/)"

# Teardown leaves nothing.
for n in p_front p_back; do
	ncall endpoint.detach "{\"network\":\"$n\",\"container_id\":\"$UNIQ-web\"}" >/dev/null
done
check_eq "detach twice is success" "false" "$(ncall endpoint.detach "{\"network\":\"p_front\",\"container_id\":\"$UNIQ-web\"}" | json_get removed | tr A-Z a-z)"
# Links are deleted in one batch through a kernel link group; a link of
# someone else's in that group turns the batch off and is left alone.
ip link add keep0 group 1869767528 type bridge
vault_veth=$(ncall network.inspect '{"name":"p_priv"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["endpoints"][0]["host_ifname"])')
link_there() { ip link show dev "$1" >/dev/null 2>&1; }
link_gone() { ! link_there "$1"; }
check "vault's veth is there" link_there "$vault_veth"
check_eq "remove a network with its endpoint (foreign link in the group)" "True" "$(ncall network.remove '{"name":"p_priv"}' | json_get removed)"
check_eq "the foreign link is untouched" "keep0" "$(ip -o link show keep0 | awk -F': ' '{print $2}')"
check "the endpoint's veth went with it" link_gone "$vault_veth"
ip link del keep0
out=$(ncall network.remove '{"names":["p_front","p_nope","p_back"]}')
check_eq "batch remove names what existed" "['p_front', 'p_back']" "$(echo "$out" | json_get removed)"
check_eq "remove twice is success" "false" "$(ncall network.remove '{"name":"p_front"}' | json_get removed | tr A-Z a-z)"
check_eq "no link left in the batch group" "" "$(ip -o link show group 1869767528)"
check_eq "the batch went through the group" "" "$(grep 'one by one' "$ORCH_RUN/netd/netd.log")"
check_eq "no orch links left" "" "$(ip -o link | grep -E ' (ob|ov)-')"
check_eq "no nft table left" "" "$(nft list ruleset)"
check_eq "ip_forward restored" "0" "$(cat /proc/sys/net/ipv4/ip_forward)"
finish
