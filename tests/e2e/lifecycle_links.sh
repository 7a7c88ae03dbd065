#!/bin/sh
# Link-only that explains itself: a stack whose services talk without
# links fails at once (TCP refused in well under a second, not a hang),
# up warns for each service that names one it is not linked to (with the
# variable), `orch links` shows the policy as a table and as dot and
# mermaid graphs, and the same stack with links works.
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
finish
