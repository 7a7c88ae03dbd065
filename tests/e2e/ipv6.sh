#!/bin/sh
# IPv6: a dual-stack network (enable_ipv6) gives each container an
# address from a ULA /64 beside its IPv4 one; names answer AAAA; link-only
# and cross-network isolation hold over ip6 as over ip; a published port
# answers on ::1 (netd's relay) and on the host's IPv6 addresses; fixed
# subnets and ipv6_address are honoured; an IPv6-only network
# (enable_ipv4: false) works; bad combinations are refused with the file
# and line; down removes every trace.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"

# The host side has an IPv6 address of its own (on a veth pair, in the
# suite's namespace) to publish on.
# A UDP echo server needs more than busybox: Debian's perl.
"$O" image import "$B/debian-bookworm.tar" deb:1 >/dev/null || fail "import the Debian base"
ip link add hostv6 type veth peer name hostv6p && ip link set hostv6 up &&
	ip link set hostv6p up && ip addr add fd99::10/64 dev hostv6 nodad ||
	fail "a host IPv6 address for the suite"

project six <<'EOF'
networks:
  front:
    enable_ipv6: true
  back:
    enable_ipv6: true
    ipam:
      config:
        - subnet: 10.231.7.0/24
        - subnet: fd42:1:2:3::/64
services:
  web:
    image: bb:1
    command: ["sh", "-c", "echo web-answer >/www/index.html; exec httpd -f -p 80 -h /www"]
    tmpfs: [/www]
    networks: [front]
    ports: ["8080:80", "[::1]:8082:80"]
  client:
    image: bb:1
    command: ["sleep", "1000"]
    networks: [front]
    links: [web]
  udp:
    image: deb:1
    command:
      - perl
      - -MIO::Socket::IP
      - -e
      - |
        $$| = 1;
        my $$s = IO::Socket::IP->new(LocalHost => "::", LocalPort => 5353,
            Proto => "udp", V6Only => 0) or die "$$!";
        while (defined $$s->recv(my $$m, 2048)) { print $$m; $$s->send("echo:$$m"); }
    networks: [front]
    ports: ["5353:5353/udp"]
  stranger:
    image: bb:1
    command: ["sleep", "1000"]
    networks: [front, back]
  db:
    image: bb:1
    command: ["sh", "-c", "echo db-answer >/www/index.html; exec httpd -f -p 80 -h /www"]
    tmpfs: [/www]
    networks:
      back:
        ipv6_address: fd42:1:2:3::42
EOF
out=$(inp six "$O" up -d 2>&1)
check_eq "up: exit 0" 0 $?
[ $? = 0 ] || echo "$out" | sed 's/^/  /'
addr6() { inp six "$O" exec -T "$1" ip -6 -o addr show scope global 2>/dev/null | awk '{print $4}' | sed 's|/.*||' | sort | tr '\n' ' ' | sed 's/ $//'; }
web6=$(addr6 web)
check_match "web has an address from a ULA /64" '^fd[0-9a-f:]+$' "$web6"
check_match "and an IPv4 one" '^[0-9.]+/' "$(inp six "$O" exec -T web ip -4 -o addr show eth0 | awk '{print $4}')"
check_match "a fixed subnet and ipv6_address are honoured" "fd42:1:2:3::42" "$(addr6 db)"
check_match "the default route goes through the network's IPv6 gateway" "default via fd" "$(inp six "$O" exec -T web ip -6 route)"
aaaa=$(inp six "$O" exec -T client nslookup -type=AAAA web 2>&1)
check_match "web answers AAAA with its IPv6 address" "Address: $web6" "$aaaa"
check_match "and A as before" 'Address: [0-9.]+$' "$(inp six "$O" exec -T client nslookup -type=A web 2>&1)"
until_true 10 sh -c "cd '$T/six' && '$O' exec -T client wget -qO- 'http://[$web6]/' 2>/dev/null | grep -q web-answer"
check_eq "linked: client reaches web over IPv6" web-answer "$(inp six "$O" exec -T client wget -qO- "http://[$web6]/" 2>/dev/null)"
check_eq "and by name" web-answer "$(inp six "$O" exec -T client wget -qO- http://web/ 2>/dev/null)"
t0=$(_now_ms)
out=$(inp six timeout 20 "$O" exec -T stranger wget -qO- "http://[$web6]/" 2>&1)
dt=$(($(_now_ms) - t0))
check_match "unlinked: stranger -> web over IPv6 is refused" "refused" "$out"
check "at once, not after the client's timeout" test "$dt" -lt 3000
check "the refusal is explained" wait_for 10 sh -c "cd '$T/six' && '$O' logs stranger 2>/dev/null | grep -q 'stranger → web:80 refused'"
t0=$(_now_ms)
out=$(inp six timeout 20 "$O" exec -T stranger nslookup example "$web6" 2>&1)
dt=$(($(_now_ms) - t0))
check_match "udp over IPv6: the client is told at once" "No route to host|Permission denied|refused|unreachable" "$out"
check "udp over IPv6: refused at once (${dt} ms)" test "$dt" -lt 3000
check "udp over IPv6: explained too" wait_for 10 sh -c "cd '$T/six' && '$O' logs stranger 2>/dev/null | grep -q 'stranger → web:53/udp refused'"
db6=fd42:1:2:3::42
out=$(inp six timeout 20 "$O" exec -T client wget -T 3 -qO- "http://[$db6]/" 2>&1)
check "another network is out of reach over IPv6" test "$(echo "$out" | grep -c db-answer)" = 0
# Published ports: ::1 through netd's relay, the host's IPv6 address and
# 127.0.0.1 through the kernel.
check "published: [::1]:8080 answers" wait_for 10 sh -c "curl -gsf --max-time 3 'http://[::1]:8080/' | grep -q web-answer"
check_eq "published: [fd99::10]:8080 answers" web-answer "$(curl -gsf --max-time 3 'http://[fd99::10]:8080/')"
check_eq "published: 127.0.0.1:8080 still answers" web-answer "$(curl -gsf --max-time 3 http://127.0.0.1:8080/)"
ps_out=$(inp six "$O" ps)
check_match "ps shows the mapping on both families, as docker" '0\.0\.0\.0:8080->80/tcp, \[::\]:8080->80/tcp' "$ps_out"
check_match "and one on ::1 in brackets" '\[::1\]:8082->80/tcp' "$ps_out"
check_eq "a port published on [::1] answers there" web-answer "$(curl -gsf --max-time 3 'http://[::1]:8082/')"
check "and not on 127.0.0.1" sh -c "! curl -gsf --max-time 3 http://127.0.0.1:8082/ >/dev/null"
check_match "network inspect shows the IPv6 subnet and gateway" '"subnet6": "fd6f:7263:68[0-9a-f:]*::/64",.*"gateway6": "fd' "$(inp six "$O" network inspect six_front | tr -d '\n')"
check_match "and each endpoint's IPv6 address" "\"address6\": \"$web6\"" "$(inp six "$O" network inspect six_front)"
# UDP on ::1 goes through the relay too.
udp_echo() {
	"$PY" -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(b"hello-udp-relay\n", ("::1", 5353))
print(s.recv(100).decode().strip())' 2>/dev/null
}
check_eq "UDP on [::1]:5353: the container answers through the relay" "echo:hello-udp-relay" "$(for i in 1 2 3 4 5; do udp_echo && break; done)"
check "the datagram is in the container's log" wait_for 5 sh -c "cd '$T/six' && '$O' logs udp 2>/dev/null | grep -q hello-udp-relay"
# netd killed: the next command brings it back, with its relays and its
# resolver on both gateways, from its state.
netd_pid=$(cat "$ORCH_RUN/netd/netd.pid")
kill -9 "$netd_pid"
wait_for 10 _exited "$netd_pid"
inp six "$O" ps >/dev/null 2>&1
check "after a netd crash: [::1]:8080 answers again" wait_for 10 sh -c "curl -gsf --max-time 3 'http://[::1]:8080/' | grep -q web-answer"
check_match "and names still answer AAAA" "Address: $web6" "$(inp six "$O" exec -T client nslookup -type=AAAA web 2>&1)"

# IPv6 only.  Names netd does not know go to the service's dns server,
# here a fake one on the host's IPv6 address that answers every query
# with 203.0.113.7.
ip addr add fd99::53/64 dev hostv6 nodad
"$PY" "$TOP/tests/fixtures/fake-dns.py" fd99::53 &
on_exit "kill $!"
project only6 <<'EOF'
networks:
  v6:
    enable_ipv6: true
    enable_ipv4: false
  closed:
    enable_ipv6: true
    internal: true
services:
  c:
    image: bb:1
    command: ["sleep", "1000"]
    networks: [closed]
  a:
    image: bb:1
    command: ["sh", "-c", "echo a-answer >/www/index.html; exec httpd -f -p 80 -h /www"]
    tmpfs: [/www]
    networks: [v6]
  b:
    image: bb:1
    command: ["sleep", "1000"]
    networks: [v6]
    links: [a]
    dns: ["fd99::53"]
EOF
out=$(inp only6 "$O" up -d 2>&1)
check_eq "IPv6-only: up: exit 0" 0 $?
[ $? = 0 ] || echo "$out" | sed 's/^/  /'
check_eq "IPv6-only: no IPv4 address" "" "$(inp only6 "$O" exec -T b ip -4 -o addr show scope global 2>/dev/null)"
check_match "IPv6-only: the resolver is the IPv6 gateway" "^nameserver fd" "$(inp only6 "$O" exec -T b cat /etc/resolv.conf)"
check "IPv6-only: b reaches a by name" wait_for 10 sh -c "cd '$T/only6' && '$O' exec -T b wget -qO- http://a/ 2>/dev/null | grep -q a-answer"
check_eq "IPv6-only: ps works" 3 "$(inp only6 "$O" ps -q | wc -l)"
check_eq "an internal network has no IPv6 route out" "" "$(inp only6 "$O" exec -T c ip -6 route show default)"
check_match "but an IPv6 address" '^fd' "$(inp only6 "$O" exec -T c ip -6 -o addr show scope global | awk '{print $4}')"
check_match "IPv6-only: other names go to the service's IPv6 dns server" '203\.0\.113\.7' \
	"$(inp only6 "$O" exec -T b nslookup ext.example 2>&1)"

# Refused with the file and line.
project bad1 <<'EOF'
networks:
  n:
    ipam:
      config:
        - subnet: fd43::/64
services:
  s:
    image: bb:1
    command: ["sleep", "1"]
    networks: [n]
EOF
out=$(inp bad1 "$O" up -d 2>&1)
check_eq "an IPv6 subnet without enable_ipv6: exit 1" 1 $?
check_match "names the file, line and what to set" 'compose.yaml:5:[0-9]+: network "n": subnet fd43::/64 is IPv6 but the network has no IPv6 \(set enable_ipv6: true\)' "$out"
project bad2 <<'EOF'
networks:
  n:
    enable_ipv4: false
services:
  s:
    image: bb:1
    command: ["sleep", "1"]
    networks: [n]
EOF
out=$(inp bad2 "$O" config 2>&1)
check_eq "enable_ipv4: false alone: exit 1" 1 $?
check_match "names the line" 'compose.yaml:3:[0-9]+: .*enable_ipv4: false needs enable_ipv6: true' "$out"
check_eq "nothing was created by the refused files" "" "$(ls "$ORCH_RUN/projects" 2>/dev/null | grep -E '^bad')"

# A container on a dual-stack and an IPv4-only network: IPv6 on the
# interface of the first only (each is born so, in either order), and lo
# keeps ::1.
project mix <<'EOF'
networks:
  plain: {}
  dual:
    enable_ipv6: true
services:
  m1:
    image: bb:1
    command: ["sleep", "1000"]
    networks: [dual, plain]
  m2:
    image: bb:1
    command: ["sleep", "1000"]
    networks: [plain, dual]
EOF
check "mixed networks: up" inp mix "$O" up -d
for s in m1 m2; do
	# Per interface: IPv6 disabled (0/1), then its global IPv6 addresses.
	check_eq "$s: IPv6 on the dual-stack interface only" "0 1 1 0" "$(inp mix "$O" exec -T "$s" sh -c 'for i in eth0 eth1; do echo "$(cat /proc/sys/net/ipv6/conf/$i/disable_ipv6) $(ip -6 -o addr show dev $i scope global | wc -l)"; done' | sort | xargs)"
	check_match "$s: lo keeps ::1" "::1/128" "$(inp mix "$O" exec -T "$s" ip -6 -o addr show dev lo)"
done
inp mix "$O" down -t 0 >/dev/null 2>&1

# down removes everything.
inp six "$O" down -t 0 >/dev/null 2>&1
check_eq "down: exit 0" 0 $?
inp only6 "$O" down -t 0 >/dev/null 2>&1
check_eq "no bridge left" "" "$(ip -o link show | grep -o 'ob-[0-9a-f]*')"
check_eq "no IPv6 address of ours left" "" "$(ip -6 -o addr show | grep -E 'inet6 fd(6f|42):')"
check "nothing listens on [::1]:8080 any more" sh -c "! curl -gsf --max-time 2 'http://[::1]:8080/' >/dev/null"
check_eq "no element left in the table" "" "$(nft list table inet orch 2>/dev/null | grep -E 'fd(6f|42):')"
finish
