#!/bin/bash
# orch side by side with podman-compose on the same machine, same image and
# same stacks, runs alternating:
#   - `up -d` and `down` wall time for a 10-service stack (3 networks,
#     2 published ports, 1 named volume; the reference topology) and a
#     50-service one; and orch's `down` when PID 1 ignores SIGTERM;
#   - memory left resident per project (PSS of the tool's processes);
#   - TCP throughput container to container on one network, and through a
#     published port, against the same on the host's loopback (iperf3).
# Container start latency against crun is bench_runtime.sh's.
#
# podman and podman-compose are measured when installed
# (apt-get install podman podman-compose); their config and storage live in
# a temporary directory, as do orch's.  Everything runs in a private network
# and mount namespace and is removed afterwards.
#   REPS=5 REPS50=1 tests/bench/bench_compare.sh
set -u
if [ -z "${ORCH_BENCH_SANDBOX:-}" ]; then
	export ORCH_BENCH_SANDBOX=1
	exec unshare --net --mount --fork -- "$0" "$@"
fi
mount --make-rprivate /
ip link set lo up
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
command -v podman >/dev/null && command -v podman-compose >/dev/null && HAVE_PODMAN=1

cleanup() {
	for f in "$W"/stack*.yaml; do
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
# median FILE -> "median min max" of the numbers in FILE
median() {
	sort -n "$1" | awk '{a[NR]=$1} END {
		m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
		printf "%.0f %.0f %.0f", m, a[1], a[NR] }'
}
# pss_of REGEX [ENV] -> summed PSS (KiB) of processes whose comm matches
# (and, given ENV, whose environment holds it: this run's, not another's)
pss_of() {
	local t=0 p c
	for d in /proc/[0-9]*; do
		c=$(cat "$d/comm" 2>/dev/null) || continue
		[[ $c =~ $1 ]] || continue
		[ -z "${2:-}" ] || tr '\0' '\n' 2>/dev/null <"$d/environ" | grep -qxF "$2" || continue
		p=$(awk '/^Pss:/{print $2}' "$d/smaps_rollup" 2>/dev/null)
		t=$((t + ${p:-0}))
	done
	echo $t
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
	local P=$W/podman
	mkdir -p "$P/root" "$P/run" "$P/tmp" "$P/networks" "$P/volumes"
	# Root here lacks CAP_SYS_RESOURCE and its hard RLIMIT_NOFILE is 20000:
	# podman's default ulimits cannot be set, so lower them; no systemd.
	cat >"$P/containers.conf" <<EOF
[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$P/events.log"
tmp_dir = "$P/tmp"
volume_path = "$P/volumes"
[network]
network_backend = "netavark"
network_config_dir = "$P/networks"
EOF
	cat >"$P/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$P/root"
runroot = "$P/run"
EOF
	export CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf
}
podman_clean() {
	local ids n
	ids=$(podman ps -aq --filter "label=com.docker.compose.project=$1" 2>/dev/null)
	[ -n "$ids" ] && podman rm -f -t 0 $ids >/dev/null 2>&1
	for n in front back data; do podman network rm -f "${1}_$n" >/dev/null 2>&1; done
	podman volume rm -f "${1}_dbdata" >/dev/null 2>&1
	true
}

# time_cycle TOOL FILE OUTPREFIX: one cold up -d / down, appended in ms.
time_cycle() {
	local tool=$1 f=$2 out=$3 t0 t1 t1b t2 rc
	case $tool in
	orch)
		t0=$(now_ms)
		"$ORCH" -p bench -f "$f" up -d >"$W/log" 2>&1
		rc=$?
		t1=$(now_ms)
		# what stays resident: after netd's idle trim (1 s)
		[ "$4" = mem ] && sleep 1.5 && echo "$(pss_of '^(orch-supervisor|orch-keeper|netd)$' "ORCH_RUN=$ORCH_RUN")" >>"$out.pss"
		t1b=$(now_ms)
		"$ORCH" -p bench -f "$f" down -v >>"$W/log" 2>&1 || rc=1
		t2=$(now_ms) ;;
	podman)
		podman_clean bench
		t0=$(now_ms)
		podman-compose -p bench -f "$f" up -d >"$W/log" 2>&1
		rc=$?
		t1=$(now_ms)
		[ "$4" = mem ] && sleep 1.5 && echo "$(pss_of '^(conmon|aardvark-dns|catatonit|podman|netavark)$')" >>"$out.pss"
		t1b=$(now_ms)
		podman-compose -p bench -f "$f" down >>"$W/log" 2>&1 || rc=1
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

report() { # LABEL ORCHFILE PEERFILE UNIT
	local o p
	o=$(median "$2")
	if [ -s "$3" ]; then
		p=$(median "$3")
		awk -v l="$1" -v o="$o" -v p="$p" -v u="$4" 'BEGIN {
			split(o, a, " "); split(p, b, " ")
			printf "%-34s orch %7d %s   podman-compose %7d %s   ratio %.1fx\n", l, a[1], u, b[1], u, (a[1] > 0 ? b[1] / a[1] : 0) }'
	else
		printf "%-34s orch %7s %s   (%s)\n" "$1" "${o%% *}" "$4" "$PEER_NOTE"
	fi
}

"$ORCH" image import "$B/busybox-rootfs.tar" busybox:latest >/dev/null || exit 1
if [ $HAVE_PODMAN -eq 1 ]; then
	podman_env
	podman import "$B/busybox-rootfs.tar" localhost/bb:1 >/dev/null || HAVE_PODMAN=0
fi

echo "orch vs podman-compose: $REPS alternating cold cycles per stack (medians; load $(cut -d' ' -f1-3 /proc/loadavg))"
for n in 10 50; do
	gen_stack $n busybox:latest SIGKILL "$W/stack$n.yaml"
	gen_stack $n localhost/bb:1 SIGKILL "$W/stack$n-podman.yaml"
	reps=$REPS
	[ $n -eq 50 ] && reps=$REPS50
	for rep in $(seq 1 "$reps"); do
		mem=no
		[ "$rep" = 1 ] && mem=mem
		time_cycle orch "$W/stack$n.yaml" "$W/orch$n" $mem || exit 1
		if [ $HAVE_PODMAN -eq 1 ]; then
			time_cycle podman "$W/stack$n-podman.yaml" "$W/podman$n" $mem ||
				{ HAVE_PODMAN=0; PEER_NOTE="podman-compose failed, see above"; }
		fi
	done
	report "stack$n up -d" "$W/orch$n.up" "$W/podman$n.up" ms
	report "stack$n down" "$W/orch$n.down" "$W/podman$n.down" ms
	report "stack$n resident (PSS)" "$W/orch$n.pss" "$W/podman$n.pss" KiB
done

# down when PID 1 ignores SIGTERM (no stop_signal: sleep and httpd as PID 1
# have no handler).  podman-compose stops one container at a time with a
# 10 s grace each (104 s measured for this stack), so only orch is timed.
gen_stack 10 busybox:latest "" "$W/stack10-term.yaml"
for rep in $(seq 1 "$REPS"); do time_cycle orch "$W/stack10-term.yaml" "$W/orchterm" no || exit 1; done
PEER_NOTE="podman-compose: not run, 10 s grace per container"
report "stack10 down, PID 1 ignores TERM" "$W/orchterm.down" /dev/null ms

# Throughput (iperf3, 3 s per run) where iperf3 is installed: its binary and
# libraries are added to the busybox rootfs to make a bench image.
if command -v iperf3 >/dev/null; then
	R=$W/iperf-rootfs
	cp -a "$B/rootfs" "$R"
	for f in $(command -v iperf3) $(ldd "$(command -v iperf3)" | grep -o '/[^ ]*'); do
		mkdir -p "$R$(dirname "$f")"
		cp -L "$f" "$R$f"
	done
	tar -C "$R" -cf "$W/iperf.tar" .
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
