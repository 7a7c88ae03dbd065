#!/bin/sh
# Link-only that explains itself: a stack whose services talk without
# links fails at once (TCP refused in well under a second, not a hang),
# up warns for each service that names one it is not linked to (with the
# variable), each refusal is explained by one line in `orch logs`, `orch
# events` and an attached `up` (rate-limited under a flood, never for
# allowed traffic), `orch links` shows the policy as a table and as dot
# and mermaid graphs, and the same stack with links works, a link's alias
# resolving for the linking container alone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"

project lk <<'EOF'
services:
  db:
    image: bb:1
    command: ["sh", "-c", "echo db-answer >/www/index.html; exec httpd -f -p 80 -h /www"]
    tmpfs: [/www]
  app:
    image: bb:1
    command: ["sleep", "1000"]
    environment:
      APP_DB_HOST: db:80
  web:
    image: bb:1
    command: ["sleep", "1000"]
    depends_on: [db]
EOF
out=$(inp lk "$O" up -d 2>&1)
check_eq "up: exit 0" 0 $?
inp lk "$O" events >"$T/events.out" 2>&1 &
events_pid=$!
check_match "up warns for a service that names one it is not linked to, with the variable" \
	'service "app" names service "db" \(APP_DB_HOST=db:80\) but is not linked to it: network "default" is link-only' "$out"
check_match "and says what to do" 'add "links: \[db\]" or "depends_on", or set enable_icc on network default' "$out"
case $out in
*'service "web" names'*) fail "no warning for a linked service" ;;
*) pass "no warning for a linked service" ;;
esac
until_true 10 sh -c "cd '$T/lk' && '$O' exec -T web wget -qO- http://db/ 2>/dev/null | grep -q db-answer"
check_eq "linked: web reaches db" db-answer "$(inp lk "$O" exec -T web wget -qO- http://db/ 2>/dev/null)"
t0=$(_now_ms)
out=$(inp lk timeout 20 "$O" exec -T app wget -qO- http://db/ 2>&1)
dt=$(($(_now_ms) - t0))
check_match "unlinked: app -> db is refused" "refused" "$out"
if [ "$dt" -lt 3000 ]; then
	pass "at once (${dt} ms), not after the client's timeout"
else
	fail "at once (${dt} ms), not after the client's timeout"
fi
why='orch: app → db:80 refused: app is not linked to db \(add "links: \[db\]" or "depends_on", or set enable_icc on network default\)'
logs_have() { inp lk "$O" logs "$1" 2>/dev/null | grep -q "$2"; }
check "the refusal is explained in orch logs app" wait_for 10 logs_have app 'orch: app → db:80 refused'
check_match "with who, why and what to do" "$why" "$(inp lk "$O" logs app)"
check "and in orch events" wait_for 10 grep -q 'container refused .*reason=app → db:80 refused: app is not linked to db.*name=lk-app-1' "$T/events.out"
kill "$events_pid" 2>/dev/null
wait "$events_pid" 2>/dev/null
# UDP: an ICMP "administratively prohibited" reaches the client at once
# (a DNS query to db itself).
t0=$(_now_ms)
out=$(inp lk timeout 20 "$O" exec -T app nslookup example db 2>&1)
dt=$(($(_now_ms) - t0))
check_match "udp: the client is told at once" "No route to host" "$out"
if [ "$dt" -lt 3000 ]; then
	pass "udp: refused at once (${dt} ms)"
else
	fail "udp: refused at once (${dt} ms: $out)"
fi
check "udp: explained too" wait_for 10 logs_have app 'orch: app → db:53/udp refused'
check_eq "no refusal line for allowed traffic" 0 "$(inp lk "$O" logs web | grep -c refused)"
# A flood of refused connections: a few lines, not one per attempt.
inp lk "$O" exec -T app sh -c 'p=2000; while [ $p -lt 2400 ]; do nc -w 1 db $p </dev/null 2>/dev/null; p=$((p+1)); done'
check "the flood is explained" wait_for 10 logs_have app 'db:2000 refused'
n=$(inp lk "$O" logs app | grep -c 'refused: app is not linked')
if [ "$n" -ge 2 ] && [ "$n" -lt 200 ]; then
	pass "and rate-limited: $n lines for 400 refused connections"
else
	fail "and rate-limited: $n lines for 400 refused connections"
fi
# netd restarted: the supervisor watches again on its own.
stop_netd
check "netd back (any command starts it)" inp lk "$O" ps -q
again_shown() {
	inp lk "$O" exec -T app nc -w 1 db 6666 </dev/null >/dev/null 2>&1
	logs_have app 'orch: app → db:6666 refused'
}
check "after a netd restart, refusals are still explained" wait_for 30 again_shown
# An attached up shows the lines as they come, with the container's prefix.
(cd "$T/lk" && exec "$O" up >"$T/attached.out" 2>&1) &
up_pid=$!
# (refused again until up, once attached, shows it)
refused_shown() {
	inp lk "$O" exec -T app nc -w 1 db 7777 </dev/null >/dev/null 2>&1
	grep -q 'lk-app-1 *| orch: app → db:7777 refused' "$T/attached.out"
}
check "attached up shows the refusal" wait_for 20 refused_shown
kill -INT "$up_pid" 2>/dev/null
check "attached up ends on SIGINT" wait_for 30 _exited "$up_pid"
wait "$up_pid" 2>/dev/null
check "up -d again" inp lk "$O" up -d

# An up that changes nothing changes no rule: the link pairs are not
# emptied and made again.  Markers (a table made and deleted, until the
# monitor shows it) bound what it saw.
nft monitor > "$T/monitor.out" 2>&1 &
monitor=$!
mark() { nft add table inet "$1" && nft delete table inet "$1" && grep -q "delete table inet $1" "$T/monitor.out"; }
check "nft monitor listens" wait_for 10 mark mark1
check "up -d once more, nothing changed" inp lk "$O" up -d
check "nft monitor saw the marker after it" wait_for 10 mark mark2
kill "$monitor"
wait "$monitor" 2>/dev/null
check_eq "an up that changes nothing changes no rule" "" \
	"$(sed -n '/delete table inet mark1/,/table inet mark2/p' "$T/monitor.out" |
		grep -v -e 'table inet mark[12]' -e '^# new generation .* (nft)$')"

out=$(inp lk "$O" links)
check_match "orch links: a table of who may connect to whom" "web +db +default +links/depends_on" "$out"
case $out in
*"app  "*"db"*) fail "orch links: no row for an unlinked pair" ;;
*) pass "orch links: no row for an unlinked pair" ;;
esac
out=$(inp lk "$O" links --format dot)
check_match "dot: a digraph with the network as a cluster" 'digraph "lk" \{' "$out"
check_match "dot: the allowed direction as an arrow" 'n0_s2 -> n0_s1;' "$out"
out=$(inp lk "$O" links --format mermaid)
check_match "mermaid: a flowchart" "flowchart LR" "$out"
check_match "mermaid: the arrow" "n0_s2 --> n0_s1" "$out"
out=$(inp lk "$O" links --format png 2>&1)
check_eq "links: an unknown format exits 2" 2 $?
check "down" inp lk "$O" down

# up --open-networks: compose's semantics, said by ps.
out=$(inp lk "$O" up -d --open-networks 2>&1)
check_eq "up --open-networks: exit 0" 0 $?
case $out in
*warning*) fail "open networks: no link warning" ;;
*) pass "open networks: no link warning" ;;
esac
until_true 10 sh -c "cd '$T/lk' && '$O' exec -T app wget -qO- http://db/ 2>/dev/null | grep -q db-answer"
check_eq "open networks: app reaches db without a link" db-answer "$(inp lk timeout 20 "$O" exec -T app wget -qO- http://db/ 2>/dev/null)"
check_match "ps says the networks are open" "networks of project lk are open" "$(inp lk "$O" ps 2>&1 >/dev/null)"
check "down" inp lk "$O" down
check "up, link-only" inp lk "$O" up -d
out=$(inp lk "$O" up -d --open-networks 2>&1)
check_eq "--open-networks on link-only networks that exist: exit 1" 1 $?
check_match "says to run down first" "exists link-only: run \`orch down\` first" "$out"
check "down" inp lk "$O" down
# The same, as a setting of the file.
printf 'x-orch:\n  open_networks: true\n' >>"$T/lk/compose.yaml"
check "up with x-orch open_networks" inp lk "$O" up -d
until_true 10 sh -c "cd '$T/lk' && '$O' exec -T app wget -qO- http://db/ 2>/dev/null | grep -q db-answer"
check_eq "x-orch open_networks: app reaches db" db-answer "$(inp lk timeout 20 "$O" exec -T app wget -qO- http://db/ 2>/dev/null)"
check_match "orch links says why" "app +db +default +open_networks" "$(inp lk "$O" links)"
check "down" inp lk "$O" down
sed -i '/^x-orch:$/,$d' "$T/lk/compose.yaml"

# The same stack with the link: no warning, and app reaches db.
sed -i 's/^      APP_DB_HOST: db:80$/      APP_DB_HOST: db:80\n    links: [db]/' "$T/lk/compose.yaml"
out=$(inp lk "$O" up -d 2>&1)
case $out in
*warning*) fail "with links: no warning" ;;
*) pass "with links: no warning" ;;
esac
until_true 10 sh -c "cd '$T/lk' && '$O' exec -T app wget -qO- http://db/ 2>/dev/null | grep -q db-answer"
check_eq "with links: app reaches db" db-answer "$(inp lk "$O" exec -T app wget -qO- http://db/ 2>/dev/null)"
check "down" inp lk "$O" down

# A link's alias (links: [SERVICE:ALIAS]) is the service's name for the
# linking container, and for it alone.
sed -i 's/^    links: \[db\]$/    links: ["db:database"]/' "$T/lk/compose.yaml"
check "up with a link alias" inp lk "$O" up -d
until_true 10 sh -c "cd '$T/lk' && '$O' exec -T app wget -qO- http://database/ 2>/dev/null | grep -q db-answer"
check_eq "app reaches db by its alias" db-answer "$(inp lk "$O" exec -T app wget -qO- http://database/ 2>/dev/null)"
check_match "the alias resolves to db's address" "Address: $(inp lk "$O" exec -T db hostname -i | tr -d ' ')" "$(inp lk "$O" exec -T app nslookup database 2>&1)"
check_match "web, which has no such link, does not know the alias" "NXDOMAIN" "$(inp lk "$O" exec -T web nslookup database 2>&1)"
check "down" inp lk "$O" down

# extra_hosts "NAME:host-gateway" names the host, as the first network's
# gateway: a container reaches published ports there (docker's
# host.docker.internal).
project hg <<'EOF'
services:
  web:
    image: bb:1
    command: ["sh", "-c", "echo via-host >/www/index.html; exec httpd -f -p 80 -h /www"]
    tmpfs: [/www]
    ports: ["8089:80"]
  cli:
    image: bb:1
    command: ["sleep", "1000"]
    extra_hosts: ["host.docker.internal:host-gateway"]
EOF
check "up with host-gateway" inp hg "$O" up -d
gw=$(inp hg "$O" exec -T cli ip route | awk '/^default/ {print $3}')
check_match "host.docker.internal is the gateway" "^$gw[[:space:]]+host.docker.internal$" "$(inp hg "$O" exec -T cli grep host.docker.internal /etc/hosts)"
until_true 10 sh -c "cd '$T/hg' && '$O' exec -T cli wget -qO- http://host.docker.internal:8089/ 2>/dev/null | grep -q via-host"
check_eq "a published port answers there" via-host "$(inp hg "$O" exec -T cli wget -qO- http://host.docker.internal:8089/ 2>/dev/null)"
check "down" inp hg "$O" down -t 0
finish
