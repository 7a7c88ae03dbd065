#!/bin/sh
# What explaining link-only refusals costs allowed traffic: between two
# linked services of a link-only network, the connection rate (wget to
# httpd, one process per connection) and TCP throughput (512 MiB through
# nc), with netd explaining refusals (the default) and with
# "explain_refusals": false in netd.json, alternating, BENCH_RUNS (3)
# runs each, medians side by side.  Allowed connections are accepted by
# the link pairs before the logging rule is reached, so the two should
# agree within noise.  Runs in the e2e sandbox.
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../e2e/lifecycle_helpers.inc"
RUNS=${BENCH_RUNS:-3}
CONNS=300

project lb <<'EOF'
services:
  server:
    image: bb:1
    command: ["sh", "-c", "echo ok >/www/index.html; httpd -p 80 -h /www; exec nc -ll -p 9000 -e sh -c 'cat >/dev/null'"]
    tmpfs: [/www]
  client:
    image: bb:1
    command: ["sleep", "3600"]
    links: [server]
EOF

# one MODE: a run with explain_refusals MODE; appends "rate MB/s".
one() {
	printf '{"explain_refusals": %s}\n' "$1" >"$ORCH_ROOT/netd.json"
	stop_netd
	inp lb "$O" up -d >/dev/null 2>&1 || return 1
	wait_for 10 sh -c "cd '$T/lb' && '$O' exec -T client wget -qO- http://server/ 2>/dev/null | grep -q ok" || return 1
	nft list table inet orch | grep -c "group 4271" >>"$T/$1.logrules"
	t0=$(_now_ms)
	inp lb "$O" exec -T client sh -c "i=0; while [ \$i -lt $CONNS ]; do wget -qO /dev/null http://server/ || exit 1; i=\$((i+1)); done" || return 1
	t1=$(_now_ms)
	inp lb "$O" exec -T client sh -c 'dd if=/dev/zero bs=65536 count=8192 2>/dev/null | nc server 9000' || return 1
	t2=$(_now_ms)
	inp lb "$O" down -t 0 >/dev/null 2>&1
	echo "$((CONNS * 1000 / (t1 - t0))) $((512 * 1000 / (t2 - t1)))" >>"$T/$1.runs"
}

ok=1
for i in $(seq 1 "$RUNS"); do
	one true || ok=0
	one false || ok=0
done
if [ $ok = 1 ]; then pass "benchmark ran"; else fail "benchmark ran"; fi
check_eq "explained: the network logs its refusals" 1 "$(sort -u "$T/true.logrules")"
check_eq "silent: it does not" 0 "$(sort -u "$T/false.logrules")"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for m in true false; do
	eval "rate_$m=\$(cut -d' ' -f1 \"\$T/$m.runs\" | median)"
	eval "tput_$m=\$(cut -d' ' -f2 \"\$T/$m.runs\" | median)"
done
printf "%-44s %8s %8s\n" "linked services, allowed traffic (median of $RUNS)" explained silent
printf "%-44s %8s %8s\n" "connections/s (wget, a process each)" "$rate_true" "$rate_false"
printf "%-44s %8s %8s\n" "throughput MB/s (512 MiB through nc)" "$tput_true" "$tput_false"
finish
