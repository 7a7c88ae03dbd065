#!/bin/bash
# A hostile compose file: host-wide sysctls, lines injected into
# /etc/hosts and /etc/resolv.conf, names that are paths, huge counts.
# `config` and `up` refuse each with exit 1 and file:line:col, create
# nothing and leave the host as it was.  Also: one project name check for
# every command, down leaving no directory or lock, and errors about the
# implicit default network naming the file.  And a hostile container:
# a container joining its PID namespace is set up in its sight, from a
# copy of the supervisor's memory, which it may not read.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"

# What the host looks like; kernel.* is the real host's, net.* this
# suite's network namespace (the containers' "host" here).
host_state() {
	cat /proc/sys/kernel/printk_ratelimit /proc/sys/kernel/core_pattern \
		/proc/sys/kernel/domainname /proc/sys/net/core/somaxconn
	ip -o link | awk '{print $2}' | sort
	ls "$ORCH_RUN/projects" 2>/dev/null
	"$O" volume ls -q 2>/dev/null
	[ -S "$ORCH_RUN/netd.sock" ] && "$B/netd" call network.list '{}'
}
state0=$(host_state)

# refused NAME LINE:COL REGEX: config and up -d of project NAME exit 1 with
# compose.yaml:LINE:COL and REGEX on stderr, and nothing changed.
refused() {
	local out rc
	out=$(inp "$1" "$O" config 2>&1 >/dev/null)
	rc=$?
	check_eq "$1: config exits 1" 1 "$rc"
	check_match "$1: config names file:line:col" \
		"$T/$1/compose.yaml:$2: .*$3" "$out"
	out=$(inp "$1" "$O" up -d 2>&1 >/dev/null)
	rc=$?
	check_eq "$1: up exits 1" 1 "$rc"
	check_match "$1: up names file:line:col" "compose.yaml:$2: .*$3" "$out"
	check_eq "$1: nothing created, host unchanged" "$state0" "$(host_state)"
}

project printk <<'Y'
services:
  web:
    image: bb:1
    command: [sleep, "100"]
    sysctls:
      kernel.printk_ratelimit: "6"
Y
refused printk 6:7 'sysctl "kernel.printk_ratelimit" is refused: it is not in a namespace'

project corepattern <<'Y'
services:
  web:
    image: bb:1
    sysctls: ["kernel.core_pattern=|/tmp/pwn %p"]
Y
refused corepattern 4:15 'sysctl "kernel.core_pattern" is refused'

project slashed <<'Y'
services:
  web:
    image: bb:1
    sysctls:
      kernel/printk_ratelimit: "6"
Y
refused slashed 5:7 'sysctl "kernel/printk_ratelimit" is refused'

project hostnet <<'Y'
services:
  web:
    image: bb:1
    network_mode: host
    sysctls:
      net.core.somaxconn: "7"
Y
refused hostnet 6:7 'not allowed with network_mode: host'

project hostipc <<'Y'
services:
  web:
    image: bb:1
    ipc: host
    sysctls: {kernel.shmmni: "7"}
Y
refused hostipc 5:15 'not allowed with ipc: host'

project hostname <<'Y'
services:
  web:
    image: bb:1
    hostname: "good\nbad"
Y
refused hostname 4:5 'services.web.hostname: "good\\nbad" is not a valid host name'

project hosts <<'Y'
services:
  web:
    image: bb:1
    extra_hosts: ["evil\n6.6.6.6 injected:1.2.3.4"]
Y
refused hosts 4:19 'extra_hosts: "evil\\n6.6.6.6 injected" is not a valid host name'

project hostsip <<'Y'
services:
  web:
    image: bb:1
    extra_hosts:
      ok: "1.2.3.4\n6.6.6.6 injected"
Y
refused hostsip 5:7 'is not an IP address'

project search <<'Y'
services:
  web:
    image: bb:1
    dns_search: ["x.com\nnameserver 6.6.6.6"]
Y
refused search 4:5 'dns_search: "x.com\\nnameserver 6.6.6.6" is not a valid search domain'

project dnsopt <<'Y'
services:
  web:
    image: bb:1
    dns_opt: ["ndots:1\nnameserver 6.6.6.6"]
Y
refused dnsopt 4:5 'is not a resolver option'

project alias <<'Y'
services:
  web:
    image: bb:1
    networks:
      n:
        aliases: ["a\nb", "../../x"]
networks:
  n: {}
Y
refused alias 5:7 '"a\\nb" is not a valid network alias'

project linkalias <<'Y'
services:
  web:
    image: bb:1
    links: ["db:../../x"]
  db:
    image: bb:1
Y
refused linkalias 4:5 '"../../x" is not a valid link alias'

project domain <<'Y'
services:
  web:
    image: bb:1
    domainname: "a..b"
Y
refused domain 4:5 'is not a valid domain name'

project netname <<'Y'
services:
  web:
    image: bb:1
networks:
  default:
    name: "../../etc"
Y
refused netname 5:3 'invalid network name "../../etc"'

project workdir <<'Y'
services:
  web:
    image: bb:1
    working_dir: tmp
Y
refused workdir 4:5 'working_dir: "tmp" is not an absolute path'

project tinymem <<'Y'
services:
  web:
    image: bb:1
    mem_limit: 1m
Y
refused tinymem 4:5 'mem_limit: 1048576 bytes is below the smallest memory limit'

# Counts: refused at once, within a small address space.
project replicas <<'Y'
services:
  web:
    image: bb:1
    deploy:
      replicas: 1000000
Y
refused replicas 5:17 '1000000 is out of range \(0 to 1000\)'
out=$(cd "$T/replicas" && ulimit -v 300000 && timeout 20 "$O" up -d 2>&1)
check_eq "replicas: up fails fast in 300 MB of address space" 1 "$?"
check_match "replicas: with the limit as the reason" 'out of range \(0 to 1000\)' "$out"

project ports <<'Y'
services:
  web:
    image: bb:1
    ports: ["1-65535", "1-65535", "1-65535"]
Y
refused ports '4:[0-9]+' 'too many ports: a project declares at most 65536'

project scaled <<'Y'
services:
  web:
    image: bb:1
    command: [sleep, "100"]
Y
out=$(inp scaled "$O" up -d --scale web=1000000 2>&1)
check_eq "--scale 1000000: up exits 1" 1 "$?"
check_match "--scale 1000000: says the bound" 'want a number from 0 to 1000' "$out"
check_eq "--scale 1000000: nothing created" "$state0" "$(host_state)"

# What may be set is set in the container only.
project allowed <<'Y'
services:
  web:
    image: bb:1
    command: [sleep, "100"]
    hostname: web-1.example
    dns_search: [corp.example]
    extra_hosts: ["h6=[2001:db8::6]"]
    sysctls:
      net.core.somaxconn: "77"
      kernel.shmmni: "77"
Y
check "allowed: up" quiet inp allowed "$O" up -d
check_eq "allowed: the container has its own somaxconn" 77 \
	"$(inp allowed "$O" exec -T web cat /proc/sys/net/core/somaxconn)"
check_eq "allowed: and its own shmmni" 77 \
	"$(inp allowed "$O" exec -T web cat /proc/sys/kernel/shmmni)"
check_match "allowed: /etc/hosts has the address without brackets" \
	'^2001:db8::6[[:space:]]+h6$' \
	"$(inp allowed "$O" exec -T web cat /etc/hosts)"
check_eq "allowed: the suite's own values did not change" \
	"$(echo "$state0" | head -4)" "$(host_state | head -4)"
check "allowed: down" quiet inp allowed "$O" down
check "allowed: down leaves no project directory" test ! -e "$ORCH_RUN/projects/allowed"

# An up killed before it recorded anything leaves a directory and a lock:
# down removes them.
mkdir -p "$ORCH_RUN/projects/killed" && : > "$ORCH_RUN/projects/killed/lock"
check "down after a killed up exits 0" quiet "$O" -p killed down
check "and removes the project's directory and lock" test ! -e "$ORCH_RUN/projects/killed"

# One name check for every command.
for cmd in ps down logs stop images; do
	out=$("$O" -p a/b $cmd 2>&1)
	check_eq "-p a/b $cmd exits 1" 1 "$?"
	check_match "-p a/b $cmd says why" 'invalid project name "a/b"' "$out"
done
out=$(COMPOSE_PROJECT_NAME=../x "$O" ps 2>&1)
check_eq "COMPOSE_PROJECT_NAME=../x ps exits 1" 1 "$?"
for ref in a/../b ./x x/. a/./b; do
	out=$("$O" image tag bb:1 "$ref" 2>&1)
	check_eq "image tag to $ref exits 1" 1 "$?"
	check_match "image tag to $ref says why" 'invalid reference format' "$out"
done

# A network conflict on the implicit default network names the file: the
# holder takes the name the second project's default network would have.
project holder <<'Y'
services:
  web:
    image: bb:1
    command: [sleep, "100"]
networks:
  default:
    name: second_default
Y
check "holder: up" quiet inp holder "$O" up -d
project second <<'Y'
services:
  web:
    image: bb:1
    command: [sleep, "100"]
Y
out=$(inp second "$O" up -d 2>&1)
check_eq "second: up exits 1" 1 "$?"
check_match "second: the error names the file, not (null)" \
	"^orch: $T/second/compose.yaml:2:3: network \"default\"" "$out"
check "holder: down" quiet inp holder "$O" down

# b joins a's PID namespace and waits there, made, for c to be healthy:
# a's processes see its setup (creds and capabilities already the
# container's) and may not read its memory.
project pidjoin <<'Y'
services:
  a:
    image: bb:1
    command: [sleep, "3600"]
    userns_mode: host
  c:
    image: bb:1
    command: [sh, -c, "sleep 2; touch /tmp/ok; exec sleep 3600"]
    healthcheck: {test: [CMD, test, -f, /tmp/ok], interval: 1s, retries: 30}
  b:
    image: bb:1
    command: [sleep, "3601"]
    userns_mode: host
    pid: "service:a"
    depends_on:
      a: {condition: service_started}
      c: {condition: service_healthy}
Y
(cd "$T/pidjoin" && exec "$O" up -d) >/dev/null 2>&1 &
up=$!
setup_pid() { inp pidjoin "$O" exec -T a ps -o pid,args 2>/dev/null | awk '$1 != "PID" && $1 != 1 && $2 !~ /^(sleep|ps)$/ {print $1; exit}'; }
seen() { [ -n "$(setup_pid)" ]; }
check "a sees b's setup in its PID namespace" wait_for 20 seen
p=$(setup_pid)
check "a cannot read the memory map of b's setup" sh -c '! (cd "$1" && "$2" exec -T a cat "/proc/$3/maps") >/dev/null 2>&1' _ "$T/pidjoin" "$O" "$p"
check "nor open its memory" sh -c '! (cd "$1" && "$2" exec -T a sh -c "exec 3</proc/$3/mem") >/dev/null 2>&1' _ "$T/pidjoin" "$O" "$p"
wait "$up"
check_eq "up waited for c and started b" 0 "$?"
check "b runs in a's PID namespace" sh -c '(cd "$1" && "$2" exec -T a ps) | grep -q "sleep 3601"' _ "$T/pidjoin" "$O"
check "pidjoin: down" quiet inp pidjoin "$O" down
finish
