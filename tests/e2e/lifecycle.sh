#!/bin/bash
# orch up/down end to end: a five-service stack over three networks with
# depends_on conditions, a named volume, two published ports and restart
# policies; idempotent up, recreation of only what changed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"
[ -n "${TRACE:-}" ] && { PS4='+ $(date +%S.%N | cut -c1-6) '; set -x; }

project app <<'Y'
services:
  db:
    image: bb:1
    command: ["sh", "-c", "rm -f /data/ready; sleep 0.5; date +%s%N > /data/ready; exec httpd -f -p 5432 -h /data"]
    networks: [back]
    volumes: ["dbdata:/data"]
    healthcheck:
      test: ["CMD", "test", "-f", "/data/ready"]
      interval: 2s
      start_period: 10s
      start_interval: 100ms
    restart: always
  migrate:
    image: bb:1
    command: ["sh", "-c", "test -f /data/ready && date +%s%N > /data/migrated"]
    networks: [back]
    volumes: ["dbdata:/data"]
    depends_on:
      db: {condition: service_healthy}
  api:
    image: bb:1
    command: ["sh", "-c", "mkdir -p /www && echo api-ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    networks: [back, front]
    ports: ["18080:8080"]
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
    restart: on-failure:3
  web:
    image: bb:1
    command: ["sh", "-c", "mkdir -p /www && echo web-ok > /www/index.html && exec httpd -f -p 80 -h /www"]
    networks: [front, edge]
    ports: ["127.0.0.1:18081:80"]
    depends_on: [api]
    restart: unless-stopped
  worker:
    image: bb:1
    command: ["sleep", "3600"]
    networks: [back]
    environment: {MODE: one}
    depends_on: [db]
networks:
  front: {}
  back: {}
  edge: {}
volumes:
  dbdata: {}
Y

check "up -d --wait succeeds" inp app "$O" up -d --wait
check_eq "migrate ran after db was healthy (it found db's marker)" 0 "$(psf app migrate ExitCode)"
check_eq "migrate exited" exited "$(psf app migrate State)"
for s in db api web worker; do
	check_eq "$s is running" running "$(psf app $s State)"
done
check_eq "db is healthy" healthy "$(psf app db Health)"
check_eq "published port 18080 answers on 127.0.0.1" api-ok "$(http_get http://127.0.0.1:18080/)"
check_eq "published port 18081 answers on 127.0.0.1" web-ok "$(http_get http://127.0.0.1:18081/)"
check_match "ps shows api's port" '"PublishedPort": ?18080' "$(psf app api Publishers)"
check_match "ps shows web's port" '"URL": ?"127.0.0.1".*18081' "$(psf app web Publishers)"
check_eq "web reaches api by name" api-ok "$(inp app "$O" exec -T web wget -qO- http://api:8080/)"
check_match "resolv.conf points at the gateway" '^nameserver 10\.' "$(inp app "$O" exec -T web cat /etc/resolv.conf)"
check "the named volume exists" "$O" volume inspect app_dbdata
# Worker processes make the containers, each one a child of the
# supervisor from its birth; a project at rest has no worker.
sup_pid=$(cat "$ORCH_RUN/projects/app/supervisor.pid")
parent_of() { awk '/^PPid:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
pid_of() {
	"$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' \
		"$ORCH_RUN/runtime/$(psf app "$1" ID)/state.json" 2>/dev/null
}
workers() {
	for d in /proc/[0-9]*; do
		[ "$(cat "$d/comm" 2>/dev/null)" = orch-worker ] && echo "${d#/proc/}"
	done
}
no_workers() { [ -z "$(workers)" ]; }
check_eq "a container's parent is its supervisor" "$sup_pid" "$(parent_of "$(pid_of worker)")"
check "the supervisor's workers leave once idle" wait_for 10 no_workers

ids() { inp app "$O" ps -a -q | sort | tr '\n' ' '; }
before=$(ids)
check "up -d again succeeds" inp app "$O" up -d
check_eq "up -d again keeps every container" "$before" "$(ids)"

id_of() { psf app "$1" ID; }
api_id=$(id_of api) worker_id=$(id_of worker)
sed -i 's/MODE: one/MODE: two/' "$T/app/compose.yaml"
check "up -d after an edit succeeds" inp app "$O" up -d
check "the edited service is recreated" test "$(id_of worker)" != "$worker_id"
check_eq "the others are kept" "$api_id" "$(id_of api)"
check_eq "the new worker has the new environment" two "$(inp app "$O" exec -T worker sh -c 'echo $MODE')"
# A recreated container gets its old address back; the host's neighbour
# entry for it must not point at the old interface.
check_eq "api answers before its recreation" api-ok "$(http_get http://127.0.0.1:18080/)"
sed -i 's/echo api-ok/echo api-two/' "$T/app/compose.yaml"
check "up -d after editing api" inp app "$O" up -d
check_eq "the recreated api answers on its port at once" api-two "$(http_get http://127.0.0.1:18080/)"

check "stop web" inp app "$O" stop web
check_eq "a stopped container publishes nothing (as docker)" "[]" "$(psf app web Publishers)"
check_match "its PORTS column is empty" 'app-web-1 .*Exited \([0-9]+\) [^>]*$' "$(inp app "$O" ps -a web)"
check "start web" inp app "$O" start web
check_match "started, it shows its port again" '18081' "$(psf app web Publishers)"
check "logs show db's output" inp app "$O" logs db
check "start web, by a worker started for it" inp app "$O" restart web
check "down succeeds" inp app "$O" down
check_eq "no worker outlives its supervisor" "" "$(workers)"
check_eq "nothing of the project is listed" "" "$("$O" ls -q)"
check "down again exits 0" inp app "$O" down
check "the named volume stays without -v" "$O" volume inspect app_dbdata
# orch alone, without orch-supervisor beside it, runs the same supervisor
# code itself (orch __supervise).
mkdir -p "$T/solo/bin"
cp "$O" "$T/solo/bin/orch"
cat >"$T/solo/compose.yaml" <<'YAML'
services:
  one:
    image: bb:1
    command: ["sleep", "300"]
YAML
check "orch without orch-supervisor beside it: up -d" inp solo "$T/solo/bin/orch" up -d
check_match "its supervisor is orch __supervise" '__supervise solo' \
	"$(tr '\0' ' ' </proc/"$(cat "$ORCH_RUN/projects/solo/supervisor.pid" 2>/dev/null || echo 0)"/cmdline 2>/dev/null)"
check_eq "the container runs" running "$(psf solo one State)"
check "down" inp solo "$T/solo/bin/orch" down -t 0

# A container whose dependency is not ready yet is made meanwhile (as
# compose creates every container before it starts the first): set up,
# its process waits for the word to exec, which up gives once the
# dependency is healthy.
project ahead <<'Y'
services:
  slow:
    image: bb:1
    command: ["sh", "-c", "until test -f /tmp/go; do sleep 0.1; done; exec sleep 3601"]
    healthcheck: {test: ["CMD", "test", "-f", "/tmp/go"], interval: 100ms, retries: 1000}
  next:
    image: bb:1
    command: ["sleep", "3602"]
    depends_on: {slow: {condition: service_healthy}}
Y
inp ahead "$O" up -d >"$T/ahead.out" 2>&1 &
up_job=$!
# The runtime's state of a container exists from its creation on.
made() {
	local id
	id=$(psf "$1" "$2" ID)
	[ -n "$id" ] && ls -d "$ORCH_RUN/runtime/$id"* >/dev/null 2>&1
}
check "while slow is not healthy, next is made" wait_for 20 made ahead next
check_eq "next shows as created (ps answers while up waits)" created "$(psf ahead next State)"
check "logs answer while up waits" inp ahead "$O" logs slow
check_eq "next's program has not run" "" "$(pgrep -f 'sleep 3602')"
check "exec runs while up waits: slow is told to become healthy" inp ahead "$O" exec -T slow touch /tmp/go
check "up then ends well" wait $up_job || cat "$T/ahead.out"
check_eq "next runs" running "$(psf ahead next State)"
check "next's program runs" pgrep -f 'sleep 3602'
check "down ahead" inp ahead "$O" down -t 0
# A dependency that fails leaves its dependents made ahead and not
# started, as compose leaves them created: start starts one, down removes
# the other with its waiting process.
project sick <<'Y'
services:
  sick:
    image: bb:1
    command: ["sleep", "3603"]
    healthcheck: {test: ["CMD", "false"], interval: 100ms, retries: 1}
  a:
    image: bb:1
    command: ["sleep", "3604"]
    depends_on: {sick: {condition: service_healthy}}
  b:
    image: bb:1
    command: ["sleep", "3605"]
    depends_on: {sick: {condition: service_healthy}}
Y
check "up fails on the unhealthy dependency" fails inp sick "$O" up -d
check_eq "a is created" created "$(psf sick a State)"
check "a is made" made sick a
check "start a" inp sick "$O" start a
check_eq "a runs" running "$(psf sick a State)"
check "a's program runs" pgrep -f 'sleep 3604'
b_id=$(psf sick b ID)
check "b is made too" made sick b
check "down sick" inp sick "$O" down -t 0
check "nothing of b is left" test -z "$(ls -d "$ORCH_RUN/runtime/$b_id"* 2>/dev/null)"
check_eq "no process of sick is left" "" "$(pgrep -f 'sleep 360[345]|orch-worker sick')"

# ---- /sys/fs/cgroup: the container's own cgroups, with its limits -----------
project lim <<'Y'
services:
  app:
    image: bb:1
    command: ["sleep", "3600"]
    mem_limit: 64m
    mem_reservation: 32m
    cpus: 0.5
  rsv:
    image: bb:1
    command: ["sleep", "3600"]
    deploy: {resources: {reservations: {memory: 16M}}}
  over:
    image: bb:1
    command: ["sleep", "3600"]
    mem_limit: 16m
    mem_reservation: 32m
Y
check "up lim" inp lim "$O" up -d app rsv
cg() { inp lim "$O" exec -T app sh -c "$1" 2>&1; }
check_eq "the memory limit is read where a JVM reads it" 67108864 \
	"$(cg 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes')"
check_match "and the CPU quota" "^50000( 100000)?$" \
	"$(cg 'cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us')"
check_match "it is the container's own cgroup (its pid 1 in it)" "^1$" \
	"$(cg 'cat /sys/fs/cgroup/cgroup.procs 2>/dev/null || cat /sys/fs/cgroup/memory/cgroup.procs' | head -1)"
check_match "read-only" "Read-only file system" \
	"$(cg 'echo 1 >/sys/fs/cgroup/memory.max 2>&1 || echo 1 >/sys/fs/cgroup/memory/memory.limit_in_bytes')"
check_eq "mem_reservation: kept under pressure (memory.low, v1's soft limit)" 33554432 \
	"$(cg 'cat /sys/fs/cgroup/memory.low 2>/dev/null || cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes')"
check_eq "deploy's reservation, without a limit" 16777216 \
	"$(inp lim "$O" exec -T rsv sh -c 'cat /sys/fs/cgroup/memory.low 2>/dev/null || cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes' 2>&1)"
out=$(inp lim "$O" up -d over 2>&1)
check_eq "a reservation above the limit: up fails" 1 "$?"
check_match "saying so" "memory reservation 33554432 is above the memory limit 16777216" "$out"
check "down lim" inp lim "$O" down -t 0

# ---- cpuset, mem_swappiness, oom_kill_disable, blkio_config, cgroup: host --
# The disk the root file system is on, and this machine's last CPU.
DEV=/dev/$(sed -n 's/^DEVNAME=//p' \
	"/sys/dev/block/$(awk '$5 == "/" {print $3; exit}' /proc/self/mountinfo)/uevent")
CPU=$(sed 's/.*[,-]//' /sys/devices/system/cpu/online)
project res <<Y
services:
  app:
    image: bb:1
    command: ["sleep", "3600"]
    mem_limit: 64m
    cpuset: "$CPU"
    mem_swappiness: 10
    oom_kill_disable: true
    blkio_config:
      device_read_bps: [{path: $DEV, rate: 12mb}]
      device_write_iops: [{path: $DEV, rate: 120}]
  plain:
    image: bb:1
    command: ["sleep", "3600"]
  hostcg:
    image: bb:1
    command: ["sleep", "3600"]
    cgroup: host
    userns_mode: host
  remapped:
    image: bb:1
    command: ["sleep", "3600"]
    cgroup: host
  far:
    image: bb:1
    command: ["sleep", "3600"]
    cpuset: "0-4095"
  notblk:
    image: bb:1
    command: ["sleep", "3600"]
    blkio_config: {device_read_iops: [{path: /dev/null, rate: 1}]}
Y
check "up res" inp res "$O" up -d app plain hostcg
rs() { inp res "$O" exec -T "$1" sh -c "$2" 2>&1; }
check_eq "cpuset: the container runs on those CPUs only" "$CPU" \
	"$(rs app 'sed -n "s/^Cpus_allowed_list:\t//p" /proc/self/status')"
check_eq "and reads them where a JVM reads them" "$CPU" \
	"$(rs app 'cat /sys/fs/cgroup/cpuset.cpus 2>/dev/null || cat /sys/fs/cgroup/cpuset/cpuset.cpus')"
check_eq "a container without one runs on every CPU" \
	"$(cat /sys/devices/system/cpu/online)" \
	"$(rs plain 'sed -n "s/^Cpus_allowed_list:\t//p" /proc/self/status')"
if [ -e /sys/fs/cgroup/memory/memory.swappiness ]; then
	check_eq "mem_swappiness (v1)" 10 \
		"$(rs app 'cat /sys/fs/cgroup/memory/memory.swappiness')"
	check_match "oom_kill_disable (v1)" "oom_kill_disable 1" \
		"$(rs app 'cat /sys/fs/cgroup/memory/memory.oom_control')"
	DEVNO=$(printf '%d:%d' "0x$(stat -c %t "$DEV")" "0x$(stat -c %T "$DEV")")
	check_eq "blkio_config: the read rate of the disk (v1)" "$DEVNO 12582912" \
		"$(rs app 'cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device')"
	check_eq "and its write operations" "$DEVNO 120" \
		"$(rs app 'cat /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device')"
else
	check_match "blkio_config: the read rate of the disk (v2)" "rbps=12582912 wbps=max riops=max wiops=120" \
		"$(rs app 'cat /sys/fs/cgroup/io.max')"
fi
check_match "cgroup: host: the host's cgroup paths, its own among them" \
	"$(psf res hostcg ID)" "$(rs hostcg 'cat /proc/self/cgroup')"
check_match "a container of its own cgroup namespace sees its root" \
	"^0::/\$|:/\$" "$(rs plain 'cat /proc/self/cgroup' | head -1)"
out=$(inp res "$O" up -d remapped 2>&1)
if [ "${ORCH_USERNS:-remap}" = host ]; then
	check_eq "cgroup: host without user namespaces: up makes it" 0 "$?"
	check_match "and it sees the host's cgroup paths" \
		"$(psf res remapped ID)" "$(rs remapped 'cat /proc/self/cgroup')"
else
	check_eq "cgroup: host in the container's user namespace: up fails" 1 "$?"
	check_match "saying the way out" "compose.yaml:23:5: .*set userns_mode: host" "$out"
fi
out=$(inp res "$O" up -d far 2>&1)
check_eq "a cpuset of CPUs this machine lacks: up fails" 1 "$?"
check_match "naming the key and the CPUs there are" "compose.yaml:27:5: service \"far\": cpuset \"0-4095\": this machine's CPUs are" "$out"
out=$(inp res "$O" up -d notblk 2>&1)
check_eq "blkio_config of a path that is no block device: up fails" 1 "$?"
check_match "naming it" "compose.yaml:31:.*device_read_iops: /dev/null: not a block device" "$out"
check_eq "neither was made" "" "$(psf res far ID)$(psf res notblk ID)"
check "down res" inp res "$O" down -t 0

# ---- pid and ipc of another service: a debugging sidecar ----------------------
project share <<'Y'
services:
  app:
    image: bb:1
    command: ["sh", "-c", "echo shared > /dev/shm/note; exec sleep 3611"]
  dbg:
    image: bb:1
    command: ["sleep", "3612"]
    pid: service:app
    ipc: service:app
    userns_mode: host
  remapped:
    image: bb:1
    command: ["sleep", "3613"]
    pid: service:app
Y
check "up share" inp share "$O" up -d app dbg
check_match "pid: service:app: the sidecar sees app's processes" "sleep 3611" \
	"$(inp share "$O" exec -T dbg ps 2>&1)"
check_match "app is PID 1 there, the sidecar's own process another" \
	"^1 .*sleep 3611" "$(inp share "$O" exec -T dbg ps -o pid,args 2>&1 | sed 's/^ *//')"
check_eq "ipc: service:app: the same IPC namespace" \
	"$(inp share "$O" exec -T app readlink /proc/self/ns/ipc 2>&1)" \
	"$(inp share "$O" exec -T dbg readlink /proc/self/ns/ipc 2>&1)"
check_eq "and the same /dev/shm" shared \
	"$(inp share "$O" exec -T dbg cat /dev/shm/note 2>&1)"
out=$(inp share "$O" up -d remapped 2>&1)
if [ "${ORCH_USERNS:-remap}" = host ]; then
	check_eq "pid: service:app without user namespaces: up makes it" 0 "$?"
else
	check_eq "pid: service:app in a user namespace of its own: up fails" 1 "$?"
	check_match "saying the way out" "compose.yaml:14:5: .*set userns_mode: host" "$out"
fi
check_match "a one-off of the sidecar (run) joins it too" "^1 .*sleep 3611" \
	"$(inp share "$O" run --rm -T dbg ps -o pid,args 2>&1 | sed 's/^ *//')"
check "stop app" inp share "$O" stop -t 0 app
out=$(inp share "$O" run --rm -T dbg true 2>&1)
check_eq "app stopped: the one-off is not made" 126 "$?"
check_match "saying why" "share-app-1, whose PID namespace it shares, is not running" "$out"
check "down share" inp share "$O" down -t 0
check_eq "no process of share is left" "" "$(pgrep -f 'sleep 361[123]')"
# A MAC asked for that another endpoint's address would give it: that
# one gets a MAC drawn at random instead.
project macs <<'Y'
networks:
  n: {ipam: {config: [{subnet: 10.77.0.0/24}]}}
services:
  x:
    image: bb:1
    command: ["sleep", "3600"]
    mac_address: "02:42:0a:4d:00:02"
    networks: {n: {ipv4_address: 10.77.0.5}}
  y:
    image: bb:1
    command: ["sleep", "3600"]
    networks: [n]
    depends_on: [x]
Y
check "up macs" inp macs "$O" up -d
mx=$(inp macs "$O" exec -T x cat /sys/class/net/eth0/address 2>&1)
my=$(inp macs "$O" exec -T y cat /sys/class/net/eth0/address 2>&1)
check_eq "the MAC asked for" 02:42:0a:4d:00:02 "$mx"
check_match "the address that would have given it" "inet 10.77.0.2/" "$(inp macs "$O" exec -T y ip -4 addr show eth0 2>&1)"
check_match "gives the other a MAC of its own, locally administered" '^[0-9a-f][26ae](:[0-9a-f]{2}){5}$' "$my"
check "not the same" test "$mx" != "$my"
check "down macs" inp macs "$O" down -t 0
printf 'services:\n  a: {image: bb:1, pid: "service:nope"}\n' >"$T/pidref.yaml"
out=$("$O" -f "$T/pidref.yaml" config -q 2>&1)
check_eq "pid of a service the file lacks: config fails" 1 "$?"
check_match "at the key" "pidref.yaml:2:.*nope" "$out"
finish
