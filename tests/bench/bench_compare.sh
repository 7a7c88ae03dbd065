#!/bin/bash
# orch side by side with podman on the same machine, the same image and the
# same stacks, the tools alternating run by run:
#   - `up -d` and `down` wall time for stack10 (tests/soak/stack10.yaml,
#     which is ../shared/anchors/stack10.yaml: 3 networks, 2 published
#     ports, 1 named volume), driven by orch, by plain podman commands
#     (podman-raw-stack10.sh: what podman itself costs) and by
#     podman-compose 1.0.3, which sleeps 1 s after each `podman run`; and a
#     50-service stack (orch and podman-compose); orch's stack10 `up -d`
#     without user namespaces, and with netd stopped before it (started
#     cold by that up); and orch's `down` when PID 1 ignores SIGTERM;
#   - memory left resident per project: RSS and PSS of the tools' own
#     processes of this run (orch: supervisor, keeper, netd; podman:
#     conmon, aardvark-dns), not of the containers;
#   - TCP throughput container to container on one network, and through a
#     published port, against the same on the host's loopback (iperf3).
# Every timed `up` and `down` starts on a quiet machine (settle: the
# teardown a tool leaves to the kernel is over), then after a pause
# (0.2 s): the kernel's
# cgroup migration lock, which every container start takes, is then as
# cold for each tool (its first taker waits for an RCU grace period, some
# 10 ms on this kind of host) whichever tool ran before it.  Each cycle
# runs the peers first, then orch's variants in an order that turns from
# cycle to cycle: the first after the peers (their processes and
# namespaces still going away) runs slower, and is not always the same.
# Every timed `down` does the same work on every side: containers,
# networks and the volume (podman-compose's `down -v` leaves the networks,
# which are removed in the timed part).  netd answers `down` once the
# kernel lists none of the project's links, before it has freed them (the
# bridges' RCU grace periods), and serves its next request after: orch's
# "links freed" line is the time until a request made right after `down`
# is answered (`orch network ls`), what a `down` then `up` waits in all.
# The peers' ratios on that line are to it: podman's `down` returns once
# its bridges are freed.  One warm-up cycle per tool and stack is run
# first and not counted.  Container start latency against
# crun is bench_runtime.sh's.
#
# podman and podman-compose are measured when installed
# (apt-get install podman podman-compose); their config and storage live in
# a temporary directory, as do orch's.  Everything runs in a private network
# and mount namespace and is removed afterwards.
#   REPS=5 REPS50=1 tests/bench/bench_compare.sh
set -u
. "$(dirname "$0")/sandbox.inc"
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=$TOP/build
REPS=${REPS:-5}
REPS50=${REPS50:-1} # podman-compose takes minutes per 50-service cycle
W=$(mktemp -d /tmp/orch-bench.XXXXXX)
export ORCH_ROOT=$W/orch-root ORCH_RUN=$W/orch-run
# Runtime state lives on tmpfs (/run) on a real host: give both tools one.
mkdir -p "$ORCH_RUN" "$W/podman/run"
mount -t tmpfs tmpfs "$ORCH_RUN"
mount -t tmpfs tmpfs "$W/podman/run"
ORCH=$B/orch
HAVE_PODMAN=0
PEER_NOTE="podman-compose not installed"
STACK10=$TOP/tests/soak/stack10.yaml
ANCHOR=$TOP/../shared/anchors/stack10.yaml
[ -f "$ANCHOR" ] && ! cmp -s "$ANCHOR" "$STACK10" && STACK10=$ANCHOR
command -v podman >/dev/null && command -v podman-compose >/dev/null && HAVE_PODMAN=1

cleanup() {
	for f in "$STACK10" "$W"/stack*.yaml; do
		[ -e "$f" ] && "$ORCH" -p bench -f "$f" down -v -t 0 >/dev/null 2>&1
	done
	[ -e "$W/tp.yaml" ] && "$ORCH" -p tp -f "$W/tp.yaml" down -t 0 >/dev/null 2>&1
	if [ $HAVE_PODMAN -eq 1 ]; then
		podman_clean bench
		podman rm -af -t 0 >/dev/null 2>&1
		podman system reset -f >/dev/null 2>&1
		# podman's cgroupfs manager leaves its parent cgroups behind
		for d in /sys/fs/cgroup/*/libpod_parent; do
			[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
		done
	fi
	pkill -f "iperf3 -s -p 15202" 2>/dev/null
	[ -f "$ORCH_RUN/netd/netd.pid" ] && kill "$(cat "$ORCH_RUN/netd/netd.pid")" 2>/dev/null
	awk -v w="$W" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r m; do umount -l "$m"; done
	rm -rf "$W"
}
trap cleanup EXIT
trap "exit 130" INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# settle: waits (at most 3 s) until the machine is quiet, its CPUs under
# 10% busy over 100 ms: a tool's teardown goes on after it returns (the
# kernel frees network namespaces and bridges in workers of its own), and
# the next tool's `up` would pay for it.  Every timed `up` and `down`
# starts on a quiet machine, whichever tool ran before.
settle() {
	local i a b
	cpu() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat; }
	for ((i = 0; i < 30; i++)); do
		a=$(cpu)
		sleep 0.1
		b=$(cpu)
		awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
			busy = y[1] - x[1]; idle = y[2] - x[2]
			exit !(busy + idle > 0 && busy / (busy + idle) < 0.1) }' && return
	done
}
# median FILE -> "median min max" of the numbers in FILE
median() {
	sort -n "$1" | awk '{a[NR]=$1} END {
		m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
		printf "%.0f %.0f %.0f", m, a[1], a[NR] }'
}
# mem_of REGEX ENV OUT: appends to OUT.rss, OUT.pss and OUT.priv the summed
# RSS, PSS and private (RSS minus shared) KiB of the processes whose comm
# matches REGEX and whose environment holds ENV (this run's, not another's).
# RSS counts shared libraries in full, PSS shares them with whoever else
# maps them, private counts them not at all: all three are reported.
mem_of() {
	local r=0 p=0 u=0 c v
	for d in /proc/[0-9]*; do
		c=$(cat "$d/comm" 2>/dev/null) || continue
		[[ $c =~ $1 ]] || continue
		tr '\0' '\n' 2>/dev/null <"$d/environ" | grep -qxF "$2" || continue
		v=$(awk '/^Rss:/{r=$2} /^Pss:/{p=$2} /^Private_(Clean|Dirty):/{u+=$2}
			END{print r+0, p+0, u+0}' "$d/smaps_rollup" 2>/dev/null)
		set -- "$1" "$2" "$3" $v
		r=$((r + ${4:-0})) p=$((p + ${5:-0})) u=$((u + ${6:-0}))
	done
	echo $r >>"$3.rss"
	echo $p >>"$3.pss"
	echo $u >>"$3.priv"
}

# gen_stack N IMAGE STOPSIG FILE: web1 and web2 (httpd, published 18080 and
# 18081) in front; api1, api2 in front and back; the rest sleepers spread
# over back and data, chained by depends_on to db, which (with backup)
# mounts the named volume.
gen_stack() {
	local n=$1 img=$2 sig=$3 f=$4 i net
	{
		echo "services:"
		for i in 1 2; do
			cat <<EOF
  web$i:
    image: $img
    command: ["httpd", "-f", "-p", "80", "-h", "/var"]
${sig:+    stop_signal: $sig
}    ports: ["1808$((i - 1)):80"]
    networks: [front]
    depends_on: [api$i]
  api$i:
    image: $img
    command: ["sleep", "3600"]
${sig:+    stop_signal: $sig
}    networks: [front, back]
    depends_on: [db]
EOF
		done
		for i in $(seq 5 $((n - 1))); do
			case $((i % 3)) in 0) net="[back]" ;; 1) net="[back, data]" ;; *) net="[data]" ;; esac
			cat <<EOF
  svc$i:
    image: $img
    command: ["sleep", "3600"]
${sig:+    stop_signal: $sig
}    networks: $net
    depends_on: [db]
EOF
		done
		cat <<EOF
  db:
    image: $img
    command: ["sleep", "3600"]
${sig:+    stop_signal: $sig
}    networks: [back, data]
    volumes: ["dbdata:/data"]
networks:
  front: {}
  back: {}
  data: {}
volumes:
  dbdata: {}
EOF
	} >"$f"
}

podman_env() {
	"$TOP/tests/fixtures/podman-conf.sh" "$W/podman"
	export CONTAINERS_CONF=$W/podman/containers.conf CONTAINERS_STORAGE_CONF=$W/podman/storage.conf
}
podman_clean() {
	local ids n
	ids=$(podman ps -aq --filter "label=com.docker.compose.project=$1" 2>/dev/null)
	[ -n "$ids" ] && podman rm -f -t 0 $ids >/dev/null 2>&1
	for n in front back data; do podman network rm -f "${1}_$n" >/dev/null 2>&1; done
	podman volume rm -f "${1}_dbdata" >/dev/null 2>&1
	true
}

# all_up FILE IDS: IDS (one a line) are as many as FILE's services: every
# container of the stack is running once `up -d` returns, none of them
# exited at once (a timing of a stack half down would flatter both sides).
all_up() {
	local want got
	want=$("$ORCH" -f "$1" config --services 2>/dev/null | wc -l)
	got=$(printf '%s' "$2" | grep -c .)
	[ "$got" -eq "$want" ] && return 0
	echo "$got of $want containers of $1 running after up -d" >>"$W/log"
	return 1
}

# time_cycle TOOL FILE OUTPREFIX [mem]: one cold up -d / down, appended in
# ms (and, with mem, what stays resident while it is up).
time_cycle() {
	local tool=$1 f=$2 out=$3 t0 t1 t1b t2 t3 rc
	case $tool in
	orch | orchhost | orchcold)
		# orchhost: without user namespaces; orchcold: netd stopped
		# first, so that up starts it
		local ns=remap np
		[ "$tool" = orchhost ] && ns=host
		if [ "$tool" = orchcold ]; then
			np=$(cat "$ORCH_RUN/netd/netd.pid" 2>/dev/null)
			[ -n "$np" ] && kill "$np" 2>/dev/null
			while [ -n "$np" ] && kill -0 "$np" 2>/dev/null; do sleep 0.01; done
		fi
		settle
		sleep 0.2
		t0=$(now_ms)
		ORCH_USERNS=$ns "$ORCH" -p bench -f "$f" up -d >"$W/log" 2>&1
		rc=$?
		t1=$(now_ms)
		all_up "$f" "$("$ORCH" -p bench -f "$f" ps -q --status running)" || rc=1
		# what stays resident: after netd's idle trim (1 s)
		[ "${4:-}" = mem ] && sleep 1.5 && mem_of '^(orch-supervisor|orch-keeper|orch-worker|netd)$' "ORCH_RUN=$ORCH_RUN" "$out"
		settle
		sleep 0.2
		t1b=$(now_ms)
		ORCH_USERNS=$ns "$ORCH" -p bench -f "$f" down -v >>"$W/log" 2>&1 || rc=1
		t2=$(now_ms)
		"$ORCH" network ls >/dev/null 2>&1 || rc=1
		t3=$(now_ms)
		echo $((t3 - t1b)) >>"$out.freed" ;;
	raw | podman)
		podman_clean bench
		settle
		sleep 0.2
		t0=$(now_ms)
		if [ "$tool" = raw ]; then
			"$TOP/tests/bench/podman-raw-stack10.sh" up bench >"$W/log" 2>&1
		else
			podman-compose -p bench -f "$f" up -d >"$W/log" 2>&1
		fi
		rc=$?
		t1=$(now_ms)
		all_up "$f" "$(podman ps -q --filter label=com.docker.compose.project=bench)" || rc=1
		[ "${4:-}" = mem ] && sleep 1.5 && mem_of '^(conmon|aardvark-dns|podman|netavark)$' "CONTAINERS_CONF=$CONTAINERS_CONF" "$out"
		settle
		sleep 0.2
		t1b=$(now_ms)
		if [ "$tool" = raw ]; then
			"$TOP/tests/bench/podman-raw-stack10.sh" down bench >>"$W/log" 2>&1 || rc=1
		else
			# down -v, and the networks podman-compose leaves
			podman-compose -p bench -f "$f" down -v >>"$W/log" 2>&1 || rc=1
			podman_clean bench
		fi
		t2=$(now_ms)
		podman_clean bench ;;
	esac
	if [ $rc -ne 0 ]; then
		echo "$tool failed on $f:" >&2
		tail -5 "$W/log" >&2
		return 1
	fi
	echo $((t1 - t0)) >>"$out.up"
	echo $((t2 - t1b)) >>"$out.down"
}

# rotate N WORD...: the words, turned left N times.
rotate() {
	local n=$1
	shift
	local k=$# i
	for ((i = 0; i < k; i++)); do
		local j=$(((i + n) % k + 1))
		printf '%s ' "${!j}"
	done
}

# report LABEL UNIT ORCH RAW COMPOSE: medians, and each peer's ratio to orch
# (a missing file: that peer did not run).
report() {
	local l=$1 u=$2 o r c
	o=$(median "$3")
	printf "%-34s orch %6d %s" "$l" "${o%% *}" "$u"
	for f in "$4" "$5"; do
		[ -s "$f" ] || continue
		r=$(median "$f")
		c="podman CLI"
		[ "$f" = "$5" ] && c="podman-compose"
		awk -v c="$c" -v o="${o%% *}" -v p="${r%% *}" -v u="$u" 'BEGIN {
			printf "   %s %6d %s (%.1fx)", c, p, u, (o > 0 ? p / o : 0) }'
	done
	[ -s "$4" ] || [ -s "$5" ] || printf "   (%s)" "$PEER_NOTE"
	echo
}

"$ORCH" image import "$B/busybox-rootfs.tar" busybox:latest >/dev/null || exit 1
"$ORCH" image import "$B/busybox-rootfs.tar" localhost/bb:1 >/dev/null || exit 1
if [ $HAVE_PODMAN -eq 1 ]; then
	podman_env
	podman import "$B/busybox-rootfs.tar" localhost/bb:1 >/dev/null 2>&1 || HAVE_PODMAN=0
fi

echo "orch vs podman: $REPS alternating cold cycles per stack after one warm-up cycle each (medians)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); command: REPS=$REPS REPS50=$REPS50 $0"
echo "podman CLI: the stack as plain podman commands (podman-raw-stack10.sh); podman-compose 1.0.3"
echo "sleeps 1 s after each podman run: 10 s of its stack10 up -d, 50 s of stack50's, are that sleep."
for n in 10 50; do
	if [ $n -eq 10 ]; then
		f=$STACK10 peers="raw podman" orchs="orch orchhost orchcold" reps=$REPS
	else
		gen_stack $n localhost/bb:1 SIGKILL "$W/stack$n.yaml"
		f=$W/stack$n.yaml peers=podman orchs=orch reps=$REPS50
	fi
	[ "$reps" -gt 0 ] || continue
	for rep in $(seq 0 "$reps"); do
		# The peers first, then orch's variants in an order that turns
		# each cycle: the first after the peers' work (their processes
		# and namespaces still going away) is slower, and is not always
		# the same one.
		# shellcheck disable=SC2086
		for t in $peers $(rotate "$rep" $orchs); do
			case $t in raw | podman) [ $HAVE_PODMAN -eq 0 ] && continue ;; esac
			out=$W/$t$n
			[ "$rep" = 0 ] && out=$W/warmup
			mem=no
			[ "$rep" = 1 ] && mem=mem
			time_cycle $t "$f" "$out" $mem || {
				case $t in orch*) exit 1 ;; esac
				HAVE_PODMAN=0 PEER_NOTE="podman failed, see above"
			}
		done
	done
	report "stack$n up -d" ms "$W/orch$n.up" "$W/raw$n.up" "$W/podman$n.up"
	report "stack$n down -v" ms "$W/orch$n.down" "$W/raw$n.down" "$W/podman$n.down"
	report "stack$n down -v, links freed" ms "$W/orch$n.freed" "$W/raw$n.down" "$W/podman$n.down"
	report "stack$n resident RSS" KiB "$W/orch$n.rss" "$W/raw$n.rss" "$W/podman$n.rss"
	report "stack$n resident PSS" KiB "$W/orch$n.pss" "$W/raw$n.pss" "$W/podman$n.pss"
	report "stack$n resident private" KiB "$W/orch$n.priv" "$W/raw$n.priv" "$W/podman$n.priv"
	[ -s "$W/orchcold$n.up" ] &&
		printf "%-34s orch %6d ms (goal <= 120)\n" "stack$n up -d, netd started cold" \
			"$(median "$W/orchcold$n.up" | cut -d' ' -f1)"
	[ -s "$W/orchhost$n.up" ] || continue
	o=$(median "$W/orch$n.up")
	h=$(median "$W/orchhost$n.up")
	awk -v o="${o%% *}" -v h="${h%% *}" -v n="$n" 'BEGIN {
		printf "%-34s orch %6d ms: user namespaces cost %+.1f%% (goal < 10%%)\n",
			"stack" n " up -d, no user namespace", h,
			(h > 0 ? 100 * (o / h - 1) : 0) }'
done

# down when PID 1 ignores SIGTERM (no stop_signal: sleep and httpd as PID 1
# have no handler).  podman-compose stops one container at a time with a
# 10 s grace each (104 s measured for this stack), so only orch is timed.
gen_stack 10 busybox:latest "" "$W/stack10-term.yaml"
for rep in $(seq 1 "$REPS"); do time_cycle orch "$W/stack10-term.yaml" "$W/orchterm" no || exit 1; done
PEER_NOTE="podman-compose: not run, 10 s grace per container"
report "stack10 down, PID 1 ignores TERM" ms "$W/orchterm.down" /dev/null /dev/null

# Throughput (iperf3, 3 s per run) where iperf3 is installed: its binary and
# libraries are added to the busybox rootfs to make a bench image.
if command -v iperf3 >/dev/null; then
	"$TOP/tests/bench/iperf-image.sh" "$W/iperf.tar"
	"$ORCH" image import "$W/iperf.tar" bench-iperf:latest >/dev/null
	cat >"$W/tp.yaml" <<EOF
services:
  server:
    image: bench-iperf:latest
    command: ["iperf3", "-s"]
    ports: ["15201:5201"]
  client:
    image: bench-iperf:latest
    command: ["sleep", "3600"]
    init: true
    depends_on: [server]
EOF
	"$ORCH" -p tp -f "$W/tp.yaml" up -d >/dev/null 2>&1 || { echo "throughput stack failed"; exit 1; }
	sleep 0.5
	gbps() { awk '/receiver/ { v=$7; u=$8; if (u ~ /^M/) v/=1000; printf "%.2f", v }'; }
	c2c=$("$ORCH" -p tp -f "$W/tp.yaml" exec -T client iperf3 -c server -t 3 2>/dev/null | gbps)
	pub=$(iperf3 -c 127.0.0.1 -p 15201 -t 3 2>/dev/null | gbps)
	iperf3 -s -p 15202 -D >/dev/null 2>&1
	sleep 0.3
	host=$(iperf3 -c 127.0.0.1 -p 15202 -t 3 2>/dev/null | gbps)
	"$ORCH" -p tp -f "$W/tp.yaml" down -t 0 >/dev/null 2>&1
	printf "%-34s container->container %s Gbit/s, host->published port %s Gbit/s, host loopback %s Gbit/s\n" \
		"TCP throughput (iperf3)" "${c2c:-?}" "${pub:-?}" "${host:-?}"
	awk -v a="${c2c:-0}" -v b="${pub:-0}" 'BEGIN { if (a > 0) printf "%-34s %.0f%% of container->container\n", "published-port throughput", 100 * b / a }'
fi
