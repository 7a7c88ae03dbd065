#!/bin/bash
# The attached forms: `up` following logs with --abort-on-container-exit
# and --exit-code-from, `run` of a one-off container, `up` building a
# service's image first, and --wait failing fast on an unhealthy service.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"

project att <<'Y'
services:
  server:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
  job:
    image: bb:1
    command: ["sh", "-c", "echo job-output; exit 5"]
    network_mode: none
Y
out=$(inp att timeout 30 "$O" up --exit-code-from job 2>/dev/null)
check_eq "up --exit-code-from returns the job's exit code" 5 "$?"
check_match "up streams prefixed logs" 'att-job-1 +\| job-output' "$out"
check_eq "the other service was stopped" exited "$(psf att server State)"

# logs -f started while a container writes fast loses no line and shows
# none twice: what is there, then from where that read ended.
project stream <<'Y'
services:
  w:
    image: bb:1
    command: ["sh", "-c", "i=0; while [ $$i -lt 100000 ]; do echo $$i; i=$$((i+1)); done"]
    network_mode: none
Y
inp stream "$O" up -d >/dev/null 2>&1
inp stream timeout 60 "$O" logs -f --no-log-prefix w > "$T/stream.out"
check_eq "logs -f from the middle of a fast writer: every line once, in order" \
	"$(seq 0 99999 | md5sum)" "$(md5sum < "$T/stream.out")"
check "down stream" inp stream "$O" down

out=$(inp att "$O" run --rm -T job sh -c 'echo from-run; exit 3')
check_eq "run returns the command's exit code" 3 "$?"
check_eq "run's output comes through" from-run "$out"
check_eq "run --rm leaves no container" "" "$(inp att "$O" ps -a --format json | grep -- -run-)"
VOL=' / / .* - overlay .*volatile'
check_eq "run --rm's overlay is volatile (never synced: it goes)" 1 \
	"$(inp att "$O" run --rm -T job grep -c "$VOL" /proc/self/mountinfo)"
check_eq "run without --rm keeps a synced one" 0 \
	"$(inp att "$O" run -T job grep -c "$VOL" /proc/self/mountinfo)"
name=$(inp att "$O" run -d job sh -c 'echo detached-out; exit 6')
check_match "run -d prints the one-off's name" '^att-job-run-[0-9a-f]{12}$' "$name"
oneoff_done() { inp att "$O" ps -a --format json | "$PY" -c '
import json, sys
for l in sys.stdin:
    j = json.loads(l)
    if j["Name"] == sys.argv[1] and j["State"] == "exited":
        print(j["ExitCode"])' "$name" | grep -q .; }
check "the detached one-off runs to its end" wait_for 20 oneoff_done
check_eq "ps has its exit code" 6 "$(inp att "$O" ps -a --format json | "$PY" -c '
import json, sys
for l in sys.stdin:
    j = json.loads(l)
    if j["Name"] == sys.argv[1]:
        print(j["ExitCode"])' "$name")"
check_match "logs has its output" 'detached-out' "$(inp att "$O" logs job)"
# create then start, while the project's supervisor runs.
inp att "$O" up -d server >/dev/null 2>&1
inp att "$O" rm -f -s server >/dev/null 2>&1
check "create makes the container again" quiet inp att "$O" create server
check_eq "which is created" created "$(psf att server State)"
check "and start starts it, with the supervisor already running" quiet inp att "$O" start server
check_eq "which runs" running "$(psf att server State)"
check "down att" inp att "$O" down

# run's additions to its service, as compose's: -v, -p (which replaces
# the service's ports, left out of a one-off), -l, --cap-drop; a value
# is taken as written (never interpolated), and a bad one is refused
# naming it.  -p after run is --publish; the project's is given before.
project runx <<'Y'
services:
  s:
    image: bb:1
    command: ["sleep", "3600"]
    ports: ["127.0.0.1:18096:80"]
Y
mkdir -p "$T/runx/src"
echo from-bind >"$T/runx/src/f"
check_eq "run -v binds a directory, relative to the project's" from-bind \
	"$(inp runx "$O" run --rm -T -v ./src:/src s cat /src/f 2>/dev/null)"
check_match "run -v SRC:DST:ro binds it read-only" 'Read-only file system' \
	"$(inp runx "$O" run --rm -T -v "$T/runx/src:/src:ro" s touch /src/x 2>&1)"
check_eq "run --cap-drop ALL leaves the command no capability" \
	"$(printf 'CapEff:\t0000000000000000')" \
	"$(inp runx "$O" run --rm -T --cap-drop ALL s grep CapEff /proc/self/status 2>/dev/null)"
lab=$(inp runx "$O" run -d -l team=blue -l 'cost=$HOME' s true 2>/dev/null)
check_match "run -l labels the one-off" '"team": ?"blue"' \
	"$(inp runx "$O" ps -a --format json | grep "$lab")"
check_match "a label's \$ is kept as written" '"cost": ?"\$HOME"' \
	"$(inp runx "$O" ps -a --format json | grep "$lab")"
pub=$(inp runx "$O" run -d -p 127.0.0.1:18097:80 s httpd -f -p 80 -h /etc 2>/dev/null)
check_match "run -d -p prints the one-off's name" '^runx-s-run-' "$pub"
check "run -p publishes its port" wait_for 20 http_get http://127.0.0.1:18097/hostname
check "and not the service's, which a one-off leaves out" fails http_get http://127.0.0.1:18096/hostname
out=$(inp runx "$O" run --rm -p abc s true 2>&1)
check_match "run -p with a bad value is refused, naming it" 'the command line:[0-9]+:[0-9]+: .*invalid port "abc"' "$out"
out=$(inp runx "$O" run --rm -v :/x s true 2>&1)
check_match "run -v with a bad value is refused, naming it" 'the command line:[0-9]+:[0-9]+: .*invalid volume ":/x"' "$out"
# run builds the image it lacks, and again with --build; exec
# --privileged gives the command every capability.
mkdir -p "$T/runx/app"
printf 'FROM bb:1\nRUN echo v1 >/ver\n' >"$T/runx/app/Dockerfile"
cat >>"$T/runx/compose.yaml" <<'Y'
  b:
    build: ./app
    network_mode: none
Y
check_eq "run builds the image the service lacks" v1 "$(inp runx "$O" run --rm -T b cat /ver 2>/dev/null)"
sed -i 's/v1/v2/' "$T/runx/app/Dockerfile"
check_eq "run without --build takes the image there" v1 "$(inp runx "$O" run --rm -T b cat /ver 2>/dev/null)"
check_eq "run --build builds it again" v2 "$(inp runx "$O" run --rm -T --build b cat /ver 2>/dev/null)"
inp runx "$O" run --rm -T --pull sometimes b true >/dev/null 2>&1
check_eq "run --pull with a bad policy: usage" 2 "$?"
check "up s" quiet inp runx "$O" up -d s
check_eq "exec --privileged: every capability (the host's bounding set)" \
	"$(awk '/^CapBnd/ {print $2}' /proc/self/status)" \
	"$(inp runx "$O" exec -T --privileged s awk '/^CapEff/ {print $2}' /proc/self/status 2>/dev/null)"
inp runx "$O" run --rm --privileged s true >/dev/null 2>&1
check_eq "run --privileged is exec's: usage" 2 "$?"
inp runx "$O" exec --rm s true >/dev/null 2>&1
check_eq "exec --rm is run's: usage" 2 "$?"
check "down runx" inp runx "$O" down -t 0

# --abort-on-container-exit returns the code of the first container that
# exits (as compose), and never watches an orphan of an earlier file.
project abort <<'Y'
services:
  old:
    image: bb:1
    command: ["true"]
    network_mode: none
Y
check "up -d abort (a one-shot that will be an orphan)" inp abort "$O" up -d
project abort <<'Y'
services:
  a:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
  b:
    image: bb:1
    command: ["sh", "-c", "sleep 1; exit 4"]
    network_mode: none
Y
inp abort timeout 30 "$O" up --abort-on-container-exit >/dev/null 2>&1
check_eq "up --abort-on-container-exit returns the first exit code" 4 "$?"
check_eq "the other service was stopped" exited "$(psf abort a State)"
check "down abort" inp abort "$O" down --remove-orphans

# --abort-on-container-failure ignores a clean exit and stops at the first
# failure, with its code; --attach, --no-attach, --attach-dependencies,
# --no-log-prefix and --timestamps choose what is shown.
project fail <<'Y'
services:
  db:
    image: bb:1
    command: ["sh", "-c", "echo db-says-hi; exec sleep 3600"]
    network_mode: none
  ok:
    image: bb:1
    command: ["sh", "-c", "echo ok-done"]
    network_mode: none
  web:
    image: bb:1
    command: ["sh", "-c", "echo web-says-hi; sleep 1; exit 7"]
    network_mode: none
    depends_on: [db]
Y
out=$(inp fail timeout 30 "$O" up --abort-on-container-failure 2>/dev/null)
check_eq "up --abort-on-container-failure returns the failure's code" 7 "$?"
check_match "a clean exit did not stop it" "ok-done" "$out"
check_eq "the others were stopped" exited "$(psf fail db State)"
check_eq "ps --filter status=exited lists them" "db ok web" \
	"$(inp fail "$O" ps --filter status=exited --services | sort | xargs)"
check_eq "ps --filter status=running: none" "" "$(inp fail "$O" ps --filter status=running -q)"
inp fail "$O" ps --filter name=x >/dev/null 2>&1
check_eq "ps --filter of another property: usage" 2 "$?"
out=$(inp fail timeout 30 "$O" up --attach web --no-log-prefix --timestamps --abort-on-container-failure 2>/dev/null)
check_match "--attach web --no-log-prefix --timestamps: web's lines, bare and timed" \
	"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z web-says-hi$" "$out"
check "and nothing of the others" test -z "$(echo "$out" | grep -e db-says-hi -e ok-done)"
out=$(inp fail timeout 30 "$O" up web --attach-dependencies --no-attach web --abort-on-container-failure 2>/dev/null)
check_match "--attach-dependencies shows web's dependency" "fail-db-1 +\| db-says-hi" "$out"
check "--no-attach web hides web" test -z "$(echo "$out" | grep web-says-hi)"
out=$(inp fail "$O" up --attach nosuch 2>&1)
check_eq "--attach of no service: exit 1" 1 "$?"
check_match "names it" "no such service: nosuch" "$out"
inp fail "$O" up --abort-on-container-failure --exit-code-from web >/dev/null 2>&1
check_eq "--abort-on-container-failure with --exit-code-from: usage" 2 "$?"
check "down fail" inp fail "$O" down -t 0
# attach: false hides a service's lines from an attached up (still
# followed: its failure stops it), unless --attach names it.
sed -i 's/^  ok:$/  ok:\n    attach: false/; s/^  web:$/  web:\n    attach: false/' "$T/fail/compose.yaml"
out=$(inp fail timeout 30 "$O" up --abort-on-container-failure 2>/dev/null)
check_eq "attach: false: still followed, its failure's code" 7 "$?"
check_match "the others' lines shown" "db-says-hi" "$out"
check "not theirs" test -z "$(echo "$out" | grep -e web-says-hi -e ok-done)"
out=$(inp fail timeout 30 "$O" up --attach web --abort-on-container-failure 2>/dev/null)
check_match "--attach names it: shown" "web-says-hi" "$out"
check_match "config keeps it" "attach: false" "$(inp fail "$O" config)"
check "down fail" inp fail "$O" down -t 0

# depends_on: required: false on a service that is not enabled is
# ignored; restart: true restarts the dependent with its dependency.
project deps <<'Y'
services:
  app:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
    depends_on:
      extra: {condition: service_started, required: false}
      db: {condition: service_started, restart: true}
  db:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
  extra:
    image: bb:1
    network_mode: none
    profiles: [debug]
Y
out=$(inp deps "$O" up -d 2>&1)
check_eq "up with a dependency that is not required and not enabled" 0 "$?"
check_match "warning about it" 'depends on service "extra", which is not there \(required: false\): ignored' "$out"
app_pid=$(pid_of deps deps-app-1)
check "restart db" inp deps "$O" restart db
check "app was restarted with db (restart: true)" test "$(pid_of deps deps-app-1)" != "$app_pid"
out=$(inp deps script -qec "$O down" /dev/null)
check_eq "down on a terminal" 0 "$?"
check_match "shows each object done, with the elapsed time" 'Container deps-app-1 +Removed +[0-9]+\.[0-9]s' "$out"

# events: json lines for create, start, die, health_status, restart,
# destroy.
project ev <<'Y'
services:
  h:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
    healthcheck: {test: ["CMD", "true"], interval: 200ms}
  r:
    image: bb:1
    command: ["sh", "-c", "sleep 0.5; exit 1"]
    network_mode: none
    restart: on-failure:1
Y
check "up ev h" inp ev "$O" up -d h
(cd "$T/ev" && exec "$O" events --json) > "$T/ev.json" &
evpid=$!
# It listens once it waits for the supervisor's first line.
listening() { grep -q '^unix_stream' "/proc/$evpid/wchan" 2>/dev/null; }
wait_for 10 listening
check "up --scale h=2 (and r, which fails once)" inp ev "$O" up -d --scale h=2
actions() {
	"$PY" -c '
import json, sys
print(" ".join(sorted({json.loads(l)["action"] for l in open(sys.argv[1])})))' "$T/ev.json"
}
seen() { [ "$(actions)" = "$1" ]; }
check "events: create, start, health_status, die and restart" \
	wait_for 30 seen "create die health_status restart start"
check "down ev" inp ev "$O" down
check "events ends with the project" wait_for 10 gone "$evpid"
kill "$evpid" 2>/dev/null
check_eq "every kind of event was seen" "create destroy die health_status restart start" "$(actions)"

# dns: on a network: netd forwards the names it does not know to the
# service's servers (here a fake one on the host that answers every A
# query with 203.0.113.7), not to the host's.
ip link add dnsbr type bridge
ip addr add 192.0.2.53/24 dev dnsbr
ip link set dnsbr up
"$PY" "$TOP/tests/fixtures/fake-dns.py" 192.0.2.53 &
fakedns=$!
on_exit "kill $fakedns; ip link del dnsbr"
project dnsfw <<'Y'
services:
  c:
    image: bb:1
    command: ["sleep", "3600"]
    dns: [192.0.2.53]
Y
check "up dnsfw" inp dnsfw "$O" up -d
check_match "a name netd does not know goes to the service's dns server" '203\.0\.113\.7' \
	"$(inp dnsfw "$O" exec -T c nslookup ext.example 2>&1)"
check "down dnsfw" inp dnsfw "$O" down
project baddns <<'Y'
services:
  c:
    image: bb:1
    dns: [not-an-address]
Y
out=$(inp baddns "$O" up -d 2>&1)
check_eq "a dns server that is not an address is refused" 1 "$?"
check_match "naming the line" 'compose.yaml:4:[0-9]+: service "c": dns server "not-an-address" is not an IP address' "$out"

# A host without a resolver (an empty /etc/resolv.conf, as on a machine with
# no network; bind-mounted in the suite's own mount namespace): a service
# without a network gets an empty one.
project nodns <<'Y'
services:
  c:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
Y
: >"$T/empty-resolv.conf"
mount --bind "$T/empty-resolv.conf" /etc/resolv.conf
check "up with an empty host resolv.conf" inp nodns "$O" up -d
check_eq "the container's resolv.conf is empty too" "" "$(inp nodns "$O" exec -T c cat /etc/resolv.conf)"
check "down nodns" inp nodns "$O" down
umount /etc/resolv.conf

# Options after service names, service names checked, rm's -f.
project cli <<'Y'
services:
  a:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
    restart: always
    dns: [192.0.2.53]
    dns_search: [corp.example]
  b:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
Y
check "up cli" inp cli "$O" up -d
check_eq "without a network, resolv.conf names the service's dns servers" "nameserver 192.0.2.53 search corp.example" \
	"$(inp cli "$O" exec -T a cat /etc/resolv.conf | xargs)"
check_match "images in a project lists its containers' images" '^cli-a-1 +bb +1 +[0-9a-f]{12} ' "$(inp cli "$O" images)"
check_match "images --format json" '"ContainerName": ?"cli-b-1"' "$(inp cli "$O" images --format json)"
check_match "ps SERVICE --format json (options after names)" '"Service": ?"a"' "$(inp cli "$O" ps a --format json)"
out=$(inp cli "$O" ps nope 2>&1)
check_eq "ps of an unknown service exits 1" 1 "$?"
check_match "naming it" 'no such service: nope' "$out"
out=$(inp cli "$O" stop nope 2>&1)
check_match "stop of an unknown service names it" 'no such service: nope' "$out"
check "stop b -t 0 (options after names)" inp cli "$O" stop b -t 0
check_eq "b is stopped" exited "$(psf cli b State)"
out=$(inp cli "$O" exec -T b true 2>&1)
check_eq "exec into a stopped service exits 1" 1 "$?"
check_match "saying it is not running" 'service "b" is not running' "$out"
check "rm -f b" inp cli "$O" rm -f b
check_eq "rm -f b removes b only" "a" "$(inp cli "$O" ps -a --services | xargs)"
check "kill a" inp cli "$O" kill a
a_exited() { [ "$(psf cli a State)" = exited ]; }
wait_for 10 a_exited
check "a killed stays down despite restart: always (as docker)" holds 2 a_exited
project hup <<'Y'
services:
  h:
    image: bb:1
    command: ["sh", "-c", "trap 'exit 3' HUP; while true; do sleep 0.1; done"]
    network_mode: none
    restart: always
Y
check "up hup" inp hup "$O" up -d
hup_pid=$(pid_of hup hup-h-1)
check "kill -s SIGHUP h" inp hup "$O" kill -s SIGHUP h
hup_restarted() { p=$(pid_of hup hup-h-1); [ "$p" != "$hup_pid" ] && [ "$p" != 0 ]; }
check "a signal that is not its stop signal leaves the restart policy on" wait_for 10 hup_restarted
check "down hup" inp hup "$O" down
check "down cli" inp cli "$O" down

mkdir -p "$T/bld/ctx"
cat > "$T/bld/ctx/Containerfile" <<'D'
FROM bb:1
RUN echo built-content > /built.txt
CMD ["sleep", "3600"]
D
project bld <<'Y'
services:
  app:
    build: ./ctx
    network_mode: none
Y
check "up builds the missing image" inp bld "$O" up -d
check_eq "the container runs the built image" built-content "$(inp bld "$O" exec -T app cat /built.txt)"
check "down bld" inp bld "$O" down

project sick <<'Y'
services:
  bad:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
    healthcheck:
      test: ["CMD", "false"]
      interval: 100ms
      retries: 2
Y
out=$(inp sick timeout 30 "$O" up -d --wait 2>&1)
check_eq "up --wait fails on an unhealthy service" 1 "$?"
check_match "naming it" 'sick-bad-1 is unhealthy' "$out"
check "down sick" inp sick "$O" down
# ps pads by display width: a long command cut with "…", accented letters
# and CJK (two columns each) keep every column aligned.
project wide <<'Y'
services:
  a:
    image: bb:1
    command: ["sh", "-c", "echo héllo wörld; sleep 3600"]
    network_mode: none
  b:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
  c:
    image: bb:1
    command: ["sh", "-c", "echo 日本; sleep 3600"]
    network_mode: none
Y
check "up wide" quiet inp wide "$O" up -d
# Each row's SERVICE cell starts at the header's column, counted in
# terminal columns (a CJK character takes two).
cols=$(inp wide "$O" ps | perl -CSD -ne '
	chomp; my $w = 0; my @c;
	for my $ch (split //) { push @c, [$w, $ch]; $w += ($ch =~ /\p{East_Asian_Width=Wide}/) ? 2 : 1 }
	my $line = $_;
	if ($. == 1) { $h = index($line, "SERVICE"); $hc = $c[$h][0]; next }
	my ($svc) = $line =~ /^wide-(\w)-1 /;
	my $i = 0; $i++ while $i < @c && $c[$i][0] < $hc;
	print substr($line, $i, 1) eq $svc ? "ok " : "off($svc) ";')
check_eq "ps: the SERVICE column is aligned on every row" "ok ok ok " "$cols"
check_match "ps: a long command is cut with … after 17 columns" '"sh -c "echo héllo…" +a ' "$(inp wide "$O" ps)"
out=$(inp wide "$O" up -d 2>&1)
check_eq "up -d with nothing to change says each container is Running" \
	"Container wide-a-1 Running|Container wide-b-1 Running|Container wide-c-1 Running|" \
	"$(echo "$out" | awk '{printf "%s %s %s|", $1, $2, $3}')"
out=$(inp wide "$O" restart -t 0 b 2>&1)
check_eq "restart says Restarting, then Started" "Container wide-b-1 Restarting|Container wide-b-1 Started|" \
	"$(echo "$out" | awk '{printf "%s %s %s|", $1, $2, $3}')"
check "down wide" quiet inp wide "$O" down -t 0

# A dependency that turns unhealthy fails up, and its containers stay (as
# compose keeps them), so that ps and logs show why.
project keep <<'Y'
services:
  db:
    image: bb:1
    command: ["sh", "-c", "echo db is broken; sleep 3600"]
    network_mode: none
    healthcheck:
      test: ["CMD", "false"]
      interval: 100ms
      retries: 2
  app:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
    depends_on:
      db: {condition: service_healthy}
Y
out=$(inp keep timeout 60 "$O" up -d 2>&1)
check_eq "up fails when a service_healthy dependency turns unhealthy" 1 "$?"
check_match "naming it" 'dependency failed to start: container keep-db-1 is unhealthy' "$out"
check_match "its containers stay: ps -a lists them" 'keep-app-1.*keep-db-1|keep-db-1.*keep-app-1' \
	"$(inp keep "$O" ps -a | tr '\n' ' ')"
check_match "and logs shows why" 'db is broken' "$(inp keep "$O" logs db)"
check "down keep" quiet inp keep "$O" down -t 0

# A static address on an external network: accepted by config (the
# network's subnet is netd's to know), checked at up.
project netowner <<'Y'
services:
  o:
    image: bb:1
    command: ["sleep", "3600"]
    networks: [shared]
networks:
  shared:
    name: shared-net
    ipam:
      config: [{subnet: 10.123.0.0/24}]
Y
check "up netowner" quiet inp netowner "$O" up -d
project netuser <<'Y'
services:
  u:
    image: bb:1
    command: ["sleep", "3600"]
    networks:
      ext: {ipv4_address: 10.123.0.50}
networks:
  ext:
    name: shared-net
    external: true
Y
check "config accepts a static address on an external network" quiet inp netuser "$O" config
check "up netuser" quiet inp netuser "$O" up -d
check_match "the container has that address" 'inet 10\.123\.0\.50/24' "$(inp netuser "$O" exec -T u ip -4 addr)"
check "down netuser" quiet inp netuser "$O" down -t 0
sed -i 's/10\.123\.0\.50/10.124.0.50/' "$T/netuser/compose.yaml"
out=$(inp netuser "$O" up -d 2>&1)
check_eq "an address outside the external network's subnet fails up" 1 "$?"
check_match "naming the address" '10\.124\.0\.50' "$out"
check "down netuser" quiet inp netuser "$O" down -t 0
check "down netowner" quiet inp netowner "$O" down -t 0

# mac_address: the service's on its first network, a network's own there;
# one another container holds on that network is refused, naming it.
project mac <<'Y'
services:
  a:
    image: bb:1
    command: ["sleep", "3600"]
    mac_address: "02:42:ac:11:00:99"
    networks: [n1, n2]
    depends_on: [b]
  b:
    image: bb:1
    command: ["httpd", "-f", "-p", "80", "-h", "/var/www"]
    networks:
      n1:
        mac_address: 02:00:00:00:00:0b
networks:
  n1: {}
  n2: {}
Y
check "up mac" quiet inp mac "$O" up -d
check_match "the service's MAC on its first network" "eth0.* link/ether 02:42:ac:11:00:99 " \
	"$(inp mac "$O" exec -T a ip -o link show eth0)"
check "not on its second" sh -c "! '$O' -f '$T/mac/compose.yaml' exec -T a ip -o link show eth1 | grep -q 02:42:ac:11:00:99"
check_match "a network's own MAC" "link/ether 02:00:00:00:00:0b " "$(inp mac "$O" exec -T b ip -o link show eth0)"
check_match "they reach each other" "orch ok" \
	"$(inp mac "$O" exec -T a wget -qO- http://b/ 2>&1)"
sed -i 's/02:00:00:00:00:0b/02:42:ac:11:00:99/' "$T/mac/compose.yaml"
out=$(inp mac "$O" up -d b 2>&1)
check_eq "a MAC another holds on the network: up fails" 1 "$?"
check_match "naming who" "mac_address 02:42:ac:11:00:99 is already used by mac-a-1" "$out"
check "down mac" quiet inp mac "$O" down -t 0

# attach: a running container's output from now on, bare, until it
# exits, whose code is attach's; its standard input (stdin_open) and the
# signals attach gets go to it.
project att2 <<'Y'
services:
  t:
    image: bb:1
    command: ["sh", "-c", "read go </dev/null; sleep 1; for i in 1 2 3; do echo tick$$i; sleep 0.2; done; exit 3"]
    network_mode: none
  c:
    image: bb:1
    command: ["sh", "-c", "trap 'echo got-term; exit 5' TERM; while read l; do echo echo:$$l; done"]
    stdin_open: true
    network_mode: none
  r:
    image: bb:1
    command: ["sh"]
    stdin_open: true
    tty: true
    network_mode: none
  p:
    image: bb:1
    command: ["cat"]
    stdin_open: true
    network_mode: none
Y
check "up att2" quiet inp att2 "$O" up -d
out=$(inp att2 timeout 30 "$O" attach t 2>&1)
check_eq "attach: its exit code" 3 "$?"
check_eq "its lines, bare" "tick1 tick2 tick3" "$(echo "$out" | xargs)"
(sleep 1; echo hello; sleep 30) | (cd "$T/att2" && exec timeout 30 "$O" attach c >"$T/att2.out" 2>&1) &
apid=$!
said() { grep -q echo:hello "$T/att2.out"; }
check "its standard input reaches it" wait_for 15 said
kill -TERM "$apid"
wait "$apid"
check_eq "a signal attach gets goes to it; its exit code" 5 "$?"
check_match "it got it" "got-term" "$(cat "$T/att2.out")"
# A terminal's: what is typed reaches its shell, whose answer comes
# back; Ctrl-P Ctrl-Q detaches and leaves it running.
cat >"$T/ttydrive.py" <<'PY'
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
def until(word, secs):
    out, end = b"", time.time() + secs
    while word not in out and time.time() < end:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
    return word in out
time.sleep(1)
os.write(fd, b"echo hi-$((6*7))\r")
print("answered" if until(b"hi-42", 15) else "no answer")
os.write(fd, b"\x10\x11")
end = time.time() + 15
while time.time() < end:
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        print("exit", os.waitstatus_to_exitcode(st))
        break
    time.sleep(0.1)
else:
    print("still attached")
PY
out=$(cd "$T/att2" && "$PY" "$T/ttydrive.py" "$O" attach r 2>&1)
check_match "attach to a terminal: typed keys reach it, its answer comes back" answered "$out"
check_match "Ctrl-P Ctrl-Q detaches, exit 0" "exit 0" "$out"
check_eq "and it keeps running" running "$(psf att2 r State)"
(printf 'one\n'; sleep 1; printf '\020\021') |
	(cd "$T/att2" && timeout 30 "$O" attach p >"$T/att2.det" 2>&1)
check_eq "the detach keys on a pipe too: exit 0" 0 "$?"
check_match "what came before them went in" one "$(cat "$T/att2.det")"
check_eq "p keeps running" running "$(psf att2 p State)"
out=$(inp att2 "$O" attach --detach-keys ctrl-pp p 2>&1)
check_eq "bad --detach-keys: usage" 2 "$?"
out=$(inp att2 "$O" attach t 2>&1)
check_eq "attach to a container that is not running: 1" 1 "$?"
out=$(inp att2 "$O" attach --sig-proxy=maybe c 2>&1)
check_eq "attach --sig-proxy of neither true nor false: usage" 2 "$?"
check_match "naming it" '--sig-proxy takes true or false, not "maybe"' "$out"
check "down att2" quiet inp att2 "$O" down -t 0

# A one-off of run answers to its name only, not to its service's name
# or aliases (they stay the service's containers'), unless --use-aliases.
project alias <<'Y'
services:
  web:
    image: bb:1
    command: ["sleep", "3600"]
    networks:
      default:
        aliases: [www]
  c:
    image: bb:1
    command: ["sleep", "3600"]
    depends_on: [web]
Y
check "up alias" quiet inp alias "$O" up -d
inp alias "$O" run -d --name one web sleep 300 >/dev/null 2>&1
inp alias "$O" run -d --use-aliases --name two web sleep 300 >/dev/null 2>&1
look() { inp alias "$O" exec -T c nslookup "$1" 2>/dev/null | awk '/^Address: / {print $2}' | sort | xargs; }
w=$(look alias-web-1) one=$(look one) two=$(look two)
check_match "each one-off answers to its own name" '^10\.[0-9.]+ 10\.[0-9.]+$' "$one $two"
check_eq "the service's name: its container and the --use-aliases one-off" \
	"$(printf '%s\n' "$w" "$two" | sort | xargs)" "$(look web)"
check_eq "its alias too" "$(printf '%s\n' "$w" "$two" | sort | xargs)" "$(look www)"
check "down alias" quiet inp alias "$O" down -t 0 --remove-orphans

# run before any up makes the networks and volumes the service needs (as
# compose's run does); down removes them.
project firstrun <<'Y'
services:
  a:
    image: bb:1
    volumes: [data:/data]
volumes:
  data: {}
Y
out=$(inp firstrun "$O" run --rm a sh -c 'echo kept > /data/f; ip -4 -o addr show eth0' 2>&1)
check_eq "run before any up works" 0 "$?"
check_match "on the project's default network" 'Network firstrun_default +Created' "$out"
check_match "attached to it" 'eth0 +inet 1' "$out"
check_eq "with its named volume" kept "$(inp firstrun "$O" run --rm a cat /data/f 2>/dev/null)"
check "down -v firstrun" quiet inp firstrun "$O" down -v
check "removes its network" sh -c '! "$1" network ls | grep -q firstrun_default' _ "$O"
check "nor the volume" test ! -e "$ORCH_ROOT/volumes/firstrun_data"

# A number option that is not one is a usage error, before anything is done.
for a in "stop -t abc:--timeout" "restart -t -1:--timeout" "down -t 5x:--timeout" \
	"up -d -t 1.5:--timeout" "up -d --wait-timeout 1e3:--wait-timeout" \
	"logs --tail ten:--tail" "exec --index 0 a true:--index"; do
	out=$(inp sick "$O" ${a%%:*} 2>&1)
	check_eq "${a%%:*}: exits 2" 2 "$?"
	check_match "${a%%:*}: names the option and the value" "invalid value \".*\" for ${a##*:}" "$out"
done
check "and nothing was created" test ! -e "$ORCH_RUN/projects/sick"

# tty and stdin_open (docker's -t and -i): a shell given either waits for
# input instead of ending at once; with tty its output is a terminal's,
# logged line by line, and a relay of its own holds the pty's other end.
project term <<'Y'
services:
  both:
    image: bb:1
    command: sh
    network_mode: none
    stdin_open: true
    tty: true
  tty:
    image: bb:1
    command: ["sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo on-a-tty; printf 'a\\nb\\n'; exec sh"]
    network_mode: none
    tty: true
  stdin:
    image: bb:1
    command: sh
    network_mode: none
    stdin_open: true
  plain:
    image: bb:1
    command: sh
    network_mode: none
Y
relays() { for d in /proc/[0-9]*; do [ "$(cat "$d/comm" 2>/dev/null)" = orch-tty ] && echo "${d#/proc/}"; done; }
check "up" quiet inp term "$O" up -d
plain_ended() { [ "$(psf term plain State)" = exited ]; }
check "without either, sh ends at once (its input is empty)" wait_for 10 plain_ended
for s in both tty stdin; do
	check_eq "$s: sh still runs" running "$(psf term "$s" State)"
done
tty_said() { [ "$(inp term "$O" logs --no-log-prefix tty | head -3 | wc -l)" = 3 ]; }
check "tty: its first lines are logged" wait_for 10 tty_said
check_eq "tty: the terminal is its input and output" "on-a-tty a b" \
	"$(inp term "$O" logs --no-log-prefix tty | head -3 | xargs)"
check_eq "tty: lines logged without a carriage return" 0 \
	"$(inp term "$O" logs tty | grep -c $'\r')"
check_eq "tty: a pty of the container's own /dev/pts, 80 by 24" "/dev/pts/0 24 80" \
	"$(inp term "$O" exec -T tty sh -c 'readlink /proc/1/fd/0; stty size </proc/1/fd/0' | xargs)"
check_match "stdin: its input is a pipe that stays open" "stdin" \
	"$(inp term "$O" exec -T stdin readlink /proc/1/fd/0)"
check_eq "a relay for each pty" 2 "$(relays | wc -l)"
# exec and run on a terminal: a pty of the container's own /dev/pts, as
# docker gives, so that it has a name there; its user's, sized as ours.
# (script, its input at its end, may send a NUL, which the pty echoes.)
on_term() { inp term script -qec "stty cols 91 rows 19; $*" /dev/null | tr -d '\r' | sed 's/\^@//g'; }
check_eq "exec on a terminal: a pty of the container's /dev/pts, sized as ours" \
	"/dev/pts/0 19 91 root" \
	"$(on_term "$O" exec stdin sh -c "'tty; stty size; stat -c %U \$(tty)'" | xargs)"
check_eq "as another user, that user's" "/dev/pts/0 1000" \
	"$(on_term "$O" exec -u 1000 stdin sh -c "'tty; stat -c %u \$(tty)'" | xargs)"
check_eq "its input is the terminal, its exit code ours" "hi /dev/pts/0 rc=3" \
	"$(echo 'echo hi; tty; exit 3' | on_term "$O" exec stdin sh -s "; echo rc=\$?" | grep -x 'hi\|/dev/pts/0\|rc=3' | xargs)"
check_eq "run on a terminal: the same" "/dev/pts/0 19 91" \
	"$(on_term "$O" run --rm plain sh -c "'tty; stty size'" | grep -v Container | xargs)"
check_eq "exec -T: no terminal" "not a tty" "$(inp term "$O" exec -T both tty)"
old_relays=$(relays | xargs)
check "restart" quiet inp term "$O" restart both
check_eq "after a restart, still running" running "$(psf term both State)"
two_relays() { [ "$(relays | wc -l)" = 2 ] && [ "$(relays | xargs)" != "$old_relays" ]; }
check "the old relay ends with its container, a new one serves the new" wait_for 10 two_relays
check "down" quiet inp term "$O" down
no_relays() { [ -z "$(relays)" ]; }
check "no relay is left" wait_for 10 no_relays
check_eq "nor its input's FIFO" "" "$(ls "$ORCH_RUN/projects/term/logs" 2>/dev/null | grep stdin)"

# network_mode service:NAME and container:NAME share a container's network
# namespace (made first: no depends_on needed); a name no container of the
# project has is refused, naming it, and nothing stays.
project nm <<'Y'
services:
  zfirst:
    image: bb:1
    container_name: nm-owner
    command: ["sleep", "3600"]
  bysvc:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: "service:zfirst"
  byname:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: "container:nm-owner"
Y
check "up" quiet inp nm "$O" up -d
addr_of() { inp nm "$O" exec -T "$1" ip -o -4 addr show eth0 | awk '{print $4}'; }
own=$(addr_of zfirst)
check_match "the owner has an address" '^10\.' "$own"
check_eq "service:NAME shares it" "$own" "$(addr_of bysvc)"
check_eq "container:NAME shares it" "$own" "$(addr_of byname)"
check "down" quiet inp nm "$O" down
project nm2 <<'Y'
services:
  lost:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: "container:nobody-here"
Y
out=$(inp nm2 "$O" up -d 2>&1)
check_match "container:NAME of no container: refused, naming it" \
	"network_mode container:nobody-here: no container of this project has that name" "$out"
check_eq "and no container stays" "" "$(inp nm2 "$O" ps -a -q)"

# What up reads and does not do is said, at its line, and up goes on.
project unap <<'Y'
services:
  s:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
    external_links: ["elsewhere_db_1:db"]
    annotations: {com.example.a: "1"}
Y
out=$(inp unap "$O" up -d 2>&1)
check_eq "up with keys it does not apply succeeds" running "$(psf unap s State)"
for k in external_links:6 annotations:7; do
	check_match "${k%%:*}: a warning at its line" \
		"compose.yaml:${k##*:}:5: warning: service \"s\": ${k%%:*} is not applied by orch" "$out"
done
check "down" quiet inp unap "$O" down

# uts: host: the host's name, which the container cannot change; with a
# hostname of its own, refused.
project uts <<'Y'
services:
  h:
    image: bb:1
    command: ["sh", "-c", "echo $$(hostname) $$(cat /etc/hostname) $$HOSTNAME; exec sleep 3600"]
    network_mode: none
    uts: host
Y
check "up" quiet inp uts "$O" up -d
named() { inp uts "$O" logs --no-log-prefix h 2>/dev/null | grep -q .; }
check "it said its names" wait_for 10 named
check_eq "hostname, /etc/hostname and HOSTNAME are the host's" \
	"$(hostname) $(hostname) $(hostname)" "$(inp uts "$O" logs --no-log-prefix h)"
check "it cannot change the host's" fails inp uts "$O" exec -T h hostname other
check_eq "the host's name is unchanged" "$(uname -n)" "$(hostname)"
check "down" quiet inp uts "$O" down
printf '    hostname: mine\n' >> "$T/uts/compose.yaml"
out=$(inp uts "$O" up -d 2>&1)
check_match "with hostname: refused at its line" 'compose.yaml:6:5: service "h": uts: host takes the host' "$out"

# pid: host shows the host's processes (here this suite's PID namespace);
# the container's first process is no init: the stop signal ends it,
# and what it left is killed with it.  Refused in a user namespace of the
# container's own.  ipc: host shares the host's IPC namespace and its
# /dev/shm.
project hostns <<'Y'
services:
  p:
    image: bb:1
    command: ["sh", "-c", "sleep 3706 & exec sleep 3707"]
    network_mode: none
    pid: host
    userns_mode: host
  i:
    image: bb:1
    command: ["sleep", "3708"]
    network_mode: none
    ipc: host
  r:
    image: bb:1
    command: ["sleep", "3709"]
    network_mode: none
Y
echo from-host >/dev/shm/orch-e2e-$$
on_exit "rm -f /dev/shm/orch-e2e-$$"
check "up" quiet inp hostns "$O" up -d
check_eq "pid: host: the host's PID namespace" "$(readlink /proc/self/ns/pid)" \
	"$(inp hostns "$O" exec -T p readlink /proc/self/ns/pid)"
check "its /proc shows the host's processes (this suite's netd)" \
	inp hostns "$O" exec -T p test -d "/proc/$(cat "$ORCH_RUN/netd/netd.pid")"
check_eq "ipc: host: the host's IPC namespace" "$(readlink /proc/self/ns/ipc)" \
	"$(inp hostns "$O" exec -T i readlink /proc/self/ns/ipc)"
check_eq "and the host's /dev/shm" from-host \
	"$(inp hostns "$O" exec -T i cat /dev/shm/orch-e2e-$$)"
check "a container without it has its own" \
	test "$(readlink /proc/self/ns/ipc)" != "$(inp hostns "$O" exec -T r readlink /proc/self/ns/ipc)"
check "nor sees the host's /dev/shm" fails inp hostns "$O" exec -T r cat /dev/shm/orch-e2e-$$
check "stop p" quiet inp hostns "$O" stop p
check_eq "its first process ended on the stop signal (143), no init" 143 "$(psf hostns p ExitCode)"
check_eq "what it started is gone with it" "" "$(pgrep -f 'sleep 370[67]')"
check "down" quiet inp hostns "$O" down -t 0
sed -i '/userns_mode: host/d' "$T/hostns/compose.yaml"
out=$(inp hostns "$O" up -d 2>&1)
if [ "${ORCH_USERNS:-remap}" = host ]; then
	check_eq "pid: host without user namespaces needs no userns_mode" \
		running "$(psf hostns p State)"
	check "down" quiet inp hostns "$O" down -t 0
else
	check_match "pid: host in the container's own user namespace: refused at its line" \
		'compose.yaml:6:5: service "p": pid: host shows the host' "$out"
	check_eq "and nothing is made" "" "$(inp hostns "$O" ps -a -q)"
fi

# ps --format with a Go template, as compose takes it.
project fmt <<'Y'
services:
  one:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
Y
check_eq "a table template before up: its header" "NAME   STATE" \
	"$(inp fmt "$O" ps --format 'table {{.Name}}\t{{.State}}')"
check "up" quiet inp fmt "$O" up -d
check_eq "{{.Field}}" "fmt-one-1 running" "$(inp fmt "$O" ps --format '{{.Name}} {{.State}}')"
check_eq "table: a header, aligned columns" "NAME        EXIT CODE|fmt-one-1   0" \
	"$(inp fmt "$O" ps --format 'table {{.Name}}\t{{.ExitCode}}' | paste -sd'|')"
check_eq "{{json .Field}}" '"one"' "$(inp fmt "$O" ps --format '{{json .Service}}')"
out=$(inp fmt "$O" ps --format '{{.Nope}}' 2>&1)
check_eq "an unknown field fails" 1 "$?"
check_match "naming it" "no field Nope" "$out"
label_hash=$(inp fmt "$O" ps --format '{{json .Labels}}' |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["com.docker.compose.config-hash"])')
check_eq "config --hash: the hash its container is labelled with" "one $label_hash" \
	"$(inp fmt "$O" config --hash '*')"
check_match "config --hash of an unknown service: said, exit 1" \
	'no such service: nope' "$(inp fmt "$O" config --hash one,nope 2>&1; echo "rc=$?")"
check_match "(exit 1)" 'rc=1$' "$(inp fmt "$O" config --hash nope 2>&1; echo "rc=$?")"
out=$(inp fmt "$O" ps --format '{{range .Labels}}x{{end}}' 2>&1)
check_match "what it does not understand is refused, naming it" "\{\{range .Labels\}\}: only" "$out"
check "down" quiet inp fmt "$O" down

# pause and unpause freeze and thaw the container's cgroup; ps says so; a
# stop thaws it first; a container not running is refused.
project pz <<'Y'
services:
  one:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
Y
frozen() {
	local pid cg
	pid=$(pid_of pz pz-one-1)
	cg=$(grep -E '^[0-9]+:freezer:' /proc/"$pid"/cgroup | cut -d: -f3)
	if [ -n "$cg" ]; then
		grep -qx FROZEN "/sys/fs/cgroup/freezer$cg/freezer.state"
	else
		cg=$(grep '^0::' /proc/"$pid"/cgroup | cut -d: -f3)
		grep -qx 'frozen 1' "/sys/fs/cgroup$cg/cgroup.events"
	fi
}
thawed() { ! frozen; }
check "up" quiet inp pz "$O" up -d
check "thawed at first" thawed
check_match "pause" "pz-one-1 +Paused" "$(inp pz "$O" pause one 2>&1)"
check "its cgroup is frozen" wait_for 5 frozen
check_eq "ps: State paused" paused "$(psf pz one State)"
check_match "ps: Status (Paused)" "\(Paused\)" "$(psf pz one Status)"
check_match "unpause" "pz-one-1 +Unpaused" "$(inp pz "$O" unpause one 2>&1)"
check "thawed again" wait_for 5 thawed
check_eq "ps: running" running "$(psf pz one State)"
inp pz "$O" pause one >/dev/null 2>&1
check "stop of a paused container" quiet inp pz "$O" stop one
check_eq "stops it" exited "$(psf pz one State)"
out=$(inp pz "$O" pause one 2>&1)
check_eq "pause of a stopped container fails" 1 "$?"
check_match "saying why" "container pz-one-1 is not running" "$out"
check "down" quiet inp pz "$O" down

# cp, both ways: files and directories, DIR/., into an existing directory;
# what the container links never leads out of it.
project cpy <<'Y'
services:
  c:
    image: bb:1
    command: ["sh", "-c", "mkdir -p /d/sub; echo one > /d/f1; echo two > /d/sub/f2; ln -s /etc/passwd /d/link; ln -s /../../../../tmp /esc; exec sleep 3600"]
    network_mode: none
Y
check "up" quiet inp cpy "$O" up -d
made() { inp cpy "$O" exec -T c test -L /esc; }
check "its files are made" wait_for 10 made
H=$T/cpy/host
mkdir -p "$H"
check "cp SERVICE:DIR DEST" quiet inp cpy "$O" cp c:/d "$H/d"
check_eq "the tree, its link a link" "one two /etc/passwd" \
	"$({ cat "$H/d/f1" "$H/d/sub/f2"; readlink "$H/d/link"; } | xargs)"
check "cp SERVICE:FILE DIR/" quiet inp cpy "$O" cp c:/d/f1 "$H/"
check "cp -L SERVICE:LINK DIR/" quiet inp cpy "$O" cp -L c:/d/link "$H/"
check_eq "the link's target, under its name, resolved in the container" \
	"root:x:0:0:root:/root:/bin/sh regular file" \
	"$({ head -1 "$H/link"; stat -c %F "$H/link"; } | xargs)"
check_eq "into the directory" one "$(cat "$H/f1")"
check "cp SERVICE:DIR/. NEW" quiet inp cpy "$O" cp c:/d/. "$H/contents"
check_eq "the contents" "f1 link sub" "$(ls "$H/contents" | xargs)"
out=$(inp cpy "$O" cp c:/nosuch "$H/x" 2>&1)
check_eq "a missing source fails" 1 "$?"
check_match "naming it" "/nosuch: No such file or directory" "$out"
echo hostdata > "$H/hf"
check "cp FILE SERVICE:DIR/" quiet inp cpy "$O" cp "$H/hf" c:/tmp/
check_eq "in the container, its root's" "hostdata 0 0" \
	"$(inp cpy "$O" exec -T c sh -c 'cat /tmp/hf; stat -c "%u %g" /tmp/hf' | xargs)"
echo newer > "$H/hf" && chown 1234:1235 "$H/hf"
check "cp again: the file is replaced" quiet inp cpy "$O" cp "$H/hf" c:/tmp/hf
check_eq "with the new content, still its root's" "newer 0 0" \
	"$(inp cpy "$O" exec -T c sh -c 'cat /tmp/hf; stat -c "%u %g" /tmp/hf' | xargs)"
check "cp -a keeps the owners" quiet inp cpy "$O" cp -a "$H/hf" c:/tmp/owned
check_eq "as the container sees them" "1234 1235" \
	"$(inp cpy "$O" exec -T c stat -c "%u %g" /tmp/owned)"
check "cp DIR SERVICE:NEW" quiet inp cpy "$O" cp "$H/d" c:/tmp/copied
check_eq "the tree in" two "$(inp cpy "$O" exec -T c cat /tmp/copied/sub/f2)"
check "through a link the container made" quiet inp cpy "$O" cp "$H/hf" c:/esc/escaped
check "it lands in the container" quiet inp cpy "$O" exec -T c test -f /tmp/escaped
check "not on the host" test ! -e /tmp/escaped
check "cp -L through a link leading out of the root" quiet inp cpy "$O" cp -L c:/esc "$H/escl"
check "copies the container's /tmp, not the host's" test -f "$H/escl/escaped"
# SERVICE:SRC -: a tar on standard output, named from SRC, links kept,
# with the owners the container sees.
inp cpy "$O" exec -T c chown 1234:1235 /d/f1
inp cpy "$O" cp c:/d - >"$H/d.tar"
check_eq "cp SERVICE:DIR -: exit 0" 0 "$?"
check_eq "a tar of the directory, named from it" "d/ d/f1 d/link d/sub/ d/sub/f2" \
	"$(tar tf "$H/d.tar" | sort | xargs)"
check_match "its link kept as a link" "d/link -> /etc/passwd" "$(tar tvf "$H/d.tar")"
check_match "owners as the container sees them" "1234/1235 .* d/f1" "$(tar tvf "$H/d.tar" --numeric-owner)"
check_eq "cp SERVICE:DIR/. -: what it holds" "f1 link sub/ sub/f2" \
	"$(inp cpy "$O" cp c:/d/. - | tar tf - | sort | xargs)"
check_eq "cp SERVICE:FILE -" two "$(inp cpy "$O" cp c:/d/sub/f2 - | tar xOf -)"
check_match "a link the container made is written as a link, not followed" \
	"esc -> /../../../../tmp$" "$(inp cpy "$O" cp c:/esc - | tar tvf -)"
out=$(inp cpy "$O" cp c:/nosuch - 2>&1 >/dev/null)
check_eq "cp of a missing source to -: exit 1" 1 "$?"
check_match "naming it" "/nosuch: No such file or directory" "$out"
# - SERVICE:DIR: a tar from standard input, extracted in the directory,
# its root's (or, with -a, the tar's owners through its map); nothing of
# it leads out of the directory.
inp cpy "$O" exec -T c mkdir -p /in
tar cf "$H/in.tar" -C "$H" d hf
inp cpy "$O" cp - c:/in <"$H/in.tar"
check_eq "cp - SERVICE:DIR: exit 0" 0 "$?"
check_eq "the tar's tree is there, its link a link" "two /etc/passwd" \
	"$(inp cpy "$O" exec -T c sh -c 'cat /in/d/sub/f2; readlink /in/d/link' | xargs)"
check_eq "its root's" "0 0" "$(inp cpy "$O" exec -T c stat -c '%u %g' /in/hf)"
inp cpy "$O" cp -a - c:/in <"$H/in.tar"
check_eq "cp -a - keeps the tar's owners" "1234 1235" "$(inp cpy "$O" exec -T c stat -c '%u %g' /in/hf)"
"$PY" - "$H" <<'PY'
import io, sys, tarfile
def put(name, entries):
    t = tarfile.open(sys.argv[1] + "/" + name, "w")
    for n, kind, target in entries:
        i = tarfile.TarInfo(n)
        if kind == "link":
            i.type, i.linkname = tarfile.SYMTYPE, target
            t.addfile(i)
        else:
            i.size = 1
            t.addfile(i, io.BytesIO(b"x"))
    t.close()
put("dotdot.tar", [("../../../../tmp/cp-escaped", "file", None)])
put("abs.tar", [("/tmp/cp-escaped", "file", None)])
put("through.tar", [("lnk", "link", "/tmp"), ("lnk/cp-escaped", "file", None)])
PY
for t in dotdot abs through; do
	out=$(inp cpy "$O" cp - c:/in 2>&1 <"$H/$t.tar")
	check_eq "a hostile tar ($t) fails" 1 "$?"
	check "and writes nothing out of the directory, in the container or on the host" \
		sh -c "! test -e /tmp/cp-escaped && ! '$O' -f '$T/cpy/compose.yaml' exec -T c test -e /tmp/cp-escaped"
done
check_match "the entry is named" "entry .*cp-escaped" "$out"
out=$(echo notatar | inp cpy "$O" cp - c:/in 2>&1)
check_eq "what is no tar fails" 1 "$?"
check "down" quiet inp cpy "$O" down

# logging: driver none keeps nothing (and logs says so); another driver
# is warned of, its logs kept in orch's files.
project lg <<'Y'
services:
  quiet:
    image: bb:1
    command: ["sh", "-c", "echo not-kept; exec sleep 3600"]
    network_mode: none
    logging: {driver: none}
  loud:
    image: bb:1
    command: ["sh", "-c", "echo kept; exec sleep 3600"]
    network_mode: none
    logging: {driver: syslog}
Y
out=$(inp lg "$O" up -d 2>&1)
check_match "another driver: warned at its line" \
	"compose.yaml:11:5: warning: service \"loud\": logging driver syslog is not applied" "$out"
loud_logged() { inp lg "$O" logs loud 2>/dev/null | grep -q kept; }
check "and its output is logged" wait_for 10 loud_logged
out=$(inp lg "$O" logs quiet 2>&1)
check_match "none: logs says nothing is kept" "w*lg-quiet-1: its logging driver is none" "$out"
check "and keeps nothing" sh -c "! echo '$out' | grep -q not-kept"
check "no log file" test ! -e "$ORCH_RUN/projects/lg/logs/lg-quiet-1.log"
check "down" quiet inp lg "$O" down

# commit: the container's changes (files made, changed and deleted, as
# the owners the container sees) as one more layer, the container's
# environment and labels, then --change; volumes are not in it.
# volumes lists the project's volumes, by service.
project cm <<'Y'
services:
  c:
    image: bb:1
    command: ["sleep", "3600"]
    environment: [A=1]
    volumes: [data:/data, /anon]
    network_mode: none
  d:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
volumes:
  data: {}
Y
check "up" quiet inp cm "$O" up -d
inp cm "$O" exec -T c sh -c 'echo hi > /hello; chown 1234:1235 /hello; rm /etc/motd; echo vol > /data/v'
inp cm "$O" commit -a me -m 'a message' -c 'CMD ["cat", "/hello"]' -c 'ENV B=$A-2' \
	-c 'LABEL z=1' -c 'WORKDIR sub' c cm-img:1 >"$T/cm.id"
check_eq "commit: exit 0" 0 "$?"
check_match "prints the image's id" '^sha256:[0-9a-f]{64}$' "$(cat "$T/cm.id")"
insp=$("$O" image inspect cm-img:1)
check_match "its author" '"Author": "me"' "$insp"
check_match "its comment" '"Comment": "a message"' "$insp"
check_match "the container's labels" '"com.docker.compose.service": "c"' "$insp"
check_match "and the changed one" '"z": "1"' "$insp"
project cm2 <<'Y'
services:
  t:
    image: cm-img:1
    network_mode: none
Y
check_eq "the image's command, from --change" hi "$(inp cm2 "$O" run --rm -T t)"
check_eq "its files, owners and deletions; env expanded; workdir; no volume content" \
	"1234:1235 gone A=1 B=1-2 /sub nodata" \
	"$(inp cm2 "$O" run --rm -T t sh -c 'stat -c %u:%g /hello; test -e /etc/motd || echo gone; echo A=$A B=$B; pwd; test -e /data/v || echo nodata' | xargs)"
check "down cm2" quiet inp cm2 "$O" down
out=$(inp cm "$O" commit -c 'RUN true' c cm-img:2 2>&1)
check_eq "commit --change RUN: refused" 1 "$?"
check_match "naming the change" '--change "RUN true": RUN cannot be changed' "$out"
out=$(inp cm "$O" commit -c 'FOO bar' c cm-img:2 2>&1)
check_eq "commit --change of no instruction: refused" 1 "$?"
check_match "naming it" '--change "FOO bar": unknown instruction' "$out"
out=$(inp cm "$O" commit c 'Bad Ref' 2>&1)
check_eq "a bad reference: refused" 1 "$?"
check "and no image made" sh -c "! '$O' image inspect cm-img:2 >/dev/null 2>&1"
out=$(inp cm "$O" commit --pause=maybe c 2>&1)
check_eq "commit --pause of neither true nor false: usage" 2 "$?"
out=$(inp cm "$O" commit nosuch 2>&1)
check_eq "a service without container: refused" 1 "$?"
check_match "saying so" 'service "nosuch" has no container' "$out"
check_eq "the container still runs, unpaused" running \
	"$(inp cm "$O" ps --format '{{.State}}' c)"
inp cm "$O" pause c >/dev/null 2>&1
check "commit of a paused container" quiet inp cm "$O" commit c cm-img:3
check_eq "leaves it paused" paused "$(inp cm "$O" ps --format '{{.State}}' c)"
inp cm "$O" unpause c >/dev/null 2>&1
"$O" image rm cm-img:3 >/dev/null 2>&1
check_match "volumes: the project's, named and anonymous" \
	'^DRIVER +VOLUME NAME local +cm_data local +[0-9a-f]{64}$' "$(inp cm "$O" volumes | xargs)"
check_eq "volumes of a service that has none" "" "$(inp cm "$O" volumes -q d)"
check_eq "volumes --format json" cm_data \
	"$(inp cm "$O" volumes --format json c | head -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["Name"])')"
inp cm "$O" volumes nosuch >/dev/null 2>&1
check_eq "volumes of no such service: 1" 1 "$?"
# export: the root as a tar, without what is mounted on it; the same
# for a running and a stopped container; written whole or not at all.
inp cm "$O" export c >"$T/cm-run.tar"
check_eq "export of a running container: exit 0" 0 "$?"
check_match "its file, owners as the container sees them" \
	"1234/1235 .* hello" "$(tar tvf "$T/cm-run.tar" --numeric-owner)"
check "the deleted file is not in it" sh -c "! tar tf '$T/cm-run.tar' | grep -qx etc/motd"
check "nor the volume's content" sh -c "! tar tf '$T/cm-run.tar' | grep -q data/v"
check "nor /proc's" sh -c "! tar tf '$T/cm-run.tar' | grep -q '^proc/.'"
check "stop" quiet inp cm "$O" stop c
check "export -o of a stopped container" quiet inp cm "$O" export -o "$T/cm-stop.tar" c
check_eq "the same entries" "$(tar tf "$T/cm-run.tar" | sort | md5sum)" \
	"$(tar tf "$T/cm-stop.tar" | sort | md5sum)"
check "no mount left" sh -c "! grep -q ' $ORCH_RUN/export' /proc/mounts"
check "no directory left" sh -c "! ls '$ORCH_RUN' | grep -q export"
out=$(inp cm "$O" export -o "$T/nodir/x.tar" c 2>&1)
check_eq "export to a missing directory: 1" 1 "$?"
check_match "naming it" "nodir/x.tar" "$out"
out=$(script -qec "cd '$T/cm' && '$O' export c" /dev/null)
check_match "export to a terminal: refused" "not written to a terminal" "$out"
check "down" quiet inp cm "$O" down -v
"$O" image rm cm-img:1 >/dev/null 2>&1

# wait returns the exit code of the first container to end; scale sets
# a service's replicas, leaving the others as they are.
project ws <<'Y'
services:
  job:
    image: bb:1
    command: ["sh", "-c", "exit 7"]
    network_mode: none
  web:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
Y
check "up" quiet inp ws "$O" up -d
inp ws "$O" wait job
check_eq "wait: the job's exit code" 7 "$?"
check "scale web=3" quiet inp ws "$O" scale web=3
check_eq "three web containers run" "ws-web-1 ws-web-2 ws-web-3" \
	"$(inp ws "$O" ps --format '{{.Name}}' web | xargs)"
check "scale web=1" quiet inp ws "$O" scale web=1
check_eq "one left" "ws-web-1" "$(inp ws "$O" ps --format '{{.Name}}' web | xargs)"
inp ws "$O" scale web >/dev/null 2>&1
check_eq "scale without =N: usage" 2 "$?"
check "down" quiet inp ws "$O" down
finish
