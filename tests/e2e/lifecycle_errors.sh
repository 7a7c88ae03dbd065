#!/bin/bash
# Invalid files and runtime failures: `up` fails with a clear message and
# leaves nothing behind (no state, link, volume, network or container).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"

links0=$(ip -o link | awk '{print $2}' | sort)
vols0=$("$O" volume ls -q 2>/dev/null | sort)
nothing_of() {
	test ! -e "$ORCH_RUN/projects/$1" &&
		test "$(ip -o link | awk '{print $2}' | sort)" = "$links0" &&
		test "$("$O" volume ls -q 2>/dev/null | sort)" = "$vols0" &&
		! { [ -S "$ORCH_RUN/netd.sock" ] && "$B/netd" call network.list '{}' | grep -q "\"$1_"; }
}
# fails NAME REGEX: up -d in project NAME fails, stderr matches REGEX,
# and nothing of the project exists afterwards.
fails() {
	out=$(inp "$1" "$O" up -d 2>&1 >/dev/null)
	rc=$?
	check_eq "$1: up exits 1" 1 "$rc"
	check_match "$1: the error says why" "$2" "$out"
	check "$1: nothing was created" nothing_of "$1"
}

project badyaml <<'Y'
services:
  web:
    image: bb:1
    command: [sleep, 1
Y
fails badyaml 'compose.yaml:[0-9]+:[0-9]+'

project baddep <<'Y'
services:
  web:
    image: bb:1
    depends_on: [nope]
Y
fails baddep 'compose.yaml:[0-9]+:[0-9]+.*nope'

project cycle <<'Y'
services:
  a: {image: bb:1, depends_on: [b]}
  b: {image: bb:1, depends_on: [a]}
Y
fails cycle 'cycle'

# What a network's addresses cannot be is refused, never ignored (IPv6
# itself: ipv6.sh).
project v6net <<'Y'
services:
  web: {image: bb:1, command: [sleep, "100"], networks: [back]}
networks:
  back:
    enable_ipv6: true
    ipam:
      config:
        - subnet: fd00:78::/64
        - subnet: fd00:79::/64
Y
fails v6net 'compose.yaml:9:11: network "back": a second IPv6 ipam pool is not supported: a network has one subnet of each family'
project v6subnet <<'Y'
services:
  web: {image: bb:1, command: [sleep, "100"], networks: [back]}
networks:
  back:
    ipam:
      config:
        - subnet: 10.77.0.0/24
        - subnet: fd00:77::/64
Y
fails v6subnet 'compose.yaml:8:11: network "back": subnet fd00:77::/64 is IPv6 but the network has no IPv6 \(set enable_ipv6: true\)'
project v6addr <<'Y'
services:
  web:
    image: bb:1
    command: [sleep, "100"]
    networks:
      default:
        ipv6_address: fd00:77::5
Y
fails v6addr 'compose.yaml:6:7: service "web": a static address \(fd00:77::5\) needs a subnet'

project noimage <<'Y'
services:
  web:
    image: bb:1
    command: ["sleep", "1000"]
    networks: [n]
  db:
    image: missing:7
    networks: [n]
networks:
  n: {}
Y
# Not in the store: up pulls it, and the registry (docker.io, out of
# reach in the suite's network namespace) cannot be contacted.
fails noimage 'compose.yaml:7:[0-9]+: service "db": pulling missing:7: contacting the registry'

project nocmd <<'Y'
services:
  web:
    image: bb:1
    command: ["no-such-program", "x"]
Y
fails nocmd 'compose.yaml:4:[0-9]+: service "web": command "no-such-program" not found'

# A port held by a listening socket on the host.
"$PY" -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 18097)); s.listen(); time.sleep(600)' &
holder=$!
on_exit "kill $holder"
wait_for 20 sh -c "ss -ltn | grep -q ':18097 '"
project porttaken <<'Y'
services:
  web:
    image: bb:1
    command: ["sleep", "1000"]
    ports: ["18097:80"]
Y
fails porttaken 'host port 18097/tcp is already in use'
kill $holder

# A port and a subnet held by another project.
project holder <<'Y'
services:
  web:
    image: bb:1
    command: ["sleep", "1000"]
    networks: [n]
    ports: ["18098:80"]
networks:
  n:
    ipam:
      config: [{subnet: 10.99.0.0/24}]
Y
check "the holder project is up" inp holder "$O" up -d
links0=$(ip -o link | awk '{print $2}' | sort)
vols0=$("$O" volume ls -q 2>/dev/null | sort)
project portclash <<'Y'
services:
  web:
    image: bb:1
    command: ["sleep", "1000"]
    ports: ["18098:80"]
Y
fails portclash '18098/tcp is already published by network holder_n \(project holder\)'
project subnetclash <<'Y'
services:
  web:
    image: bb:1
    command: ["sleep", "1000"]
    networks: [n]
networks:
  n:
    ipam:
      config: [{subnet: 10.99.0.128/25}]
Y
fails subnetclash 'compose.yaml:7:3: network "n": .*subnet 10.99.0.128/25 overlaps 10.99.0.0/24 of network holder_n \(project holder\)'

# A subnet on one of the host's routes, checked before the project's
# other network is created; two networks of one project that overlap.
ip link add hostbr type bridge
ip addr add 10.98.0.1/24 dev hostbr
ip link set hostbr up
links0=$(ip -o link | awk '{print $2}' | sort)
project hostroute <<'Y'
services:
  web:
    image: bb:1
    command: ["sleep", "1000"]
    networks: [a, b]
networks:
  a: {}
  b:
    ipam:
      config: [{subnet: 10.98.0.0/16}]
Y
fails hostroute 'compose.yaml:8:3: network "b": .*subnet 10.98.0.0/16 overlaps the host.s route 10.98.0'
check_eq "hostroute: no network was created on the way" "" "$(inp hostroute "$O" up -d 2>/dev/null | grep Created)"
ip link del hostbr
links0=$(ip -o link | awk '{print $2}' | sort)
project selfoverlap <<'Y'
services:
  web:
    image: bb:1
    command: ["sleep", "1000"]
    networks: [a, b]
networks:
  a:
    ipam:
      config: [{subnet: 10.97.0.0/24}]
  b:
    ipam:
      config: [{subnet: 10.97.0.0/16}]
Y
fails selfoverlap 'compose.yaml:12:[0-9]+: subnet 10.97.0.0/16 of network "b" overlaps subnet 10.97.0.0/24 of network "a"'

# A failure in the middle of up (exec of a file that is not a program,
# after another service started): everything of this up is rolled back.
project midway <<'Y'
services:
  first:
    image: bb:1
    command: ["sleep", "1001"]
    networks: [n]
    volumes: ["v:/v"]
  second:
    image: bb:1
    command: ["/etc/passwd"]
    networks: [n]
    depends_on: [first]
networks:
  n: {}
volumes:
  v: {}
Y
fails midway 'second.*(Permission denied|exec)'
# /proc (and so pgrep) shows only this suite's processes: its own pid
# namespace, and the containers' nested in it.
check_eq "no process of midway's first service is left" "" "$(pgrep -a -x -f 'sleep 1001')"

# One level of six, created by workers in batches, one of them failing:
# the error is that one's, and what its batch-mates started is rolled
# back with the rest.
{
	echo "services:"
	for i in 1 2 3 4 5; do
		printf '  ok%d:\n    image: bb:1\n    command: ["sleep", "100%d"]\n    network_mode: none\n' $i $((i + 1))
	done
	printf '  bad:\n    image: bb:1\n    command: ["/etc/passwd"]\n    network_mode: none\n'
} | project batch
fails batch 'bad.*(Permission denied|exec)'
check_eq "batch: no process of its five good services is left" "" "$(pgrep -a -f 'sleep 100[2-6]')"
check "the holder project is untouched" test "$(psf holder web State)" = running
check "down holder" inp holder "$O" down
finish
