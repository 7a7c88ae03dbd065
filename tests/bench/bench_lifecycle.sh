#!/bin/bash
# Wall time of `orch up -d` and `orch down` for stacks of 10, 50, 100 and 200
# containers (median of BENCH_RUNS, default 3), once with `sleep` as PID 1
# (no SIGTERM handler: no grace wait) and once with a PID 1 that handles
# SIGTERM; then the memory that stays resident while the reference stack10
# (../shared/anchors/stack10.yaml shape: 3 networks, 2 published ports, a
# named volume) is up: RSS and PSS of the supervisor and of netd.
# netd answers `down` before the kernel has freed the links and serves its
# next request after: "links freed" is the time until a request made right
# after `down` (`orch network ls`) is answered.  The next `up` starts then.
# Runs in private network and mount namespaces; everything goes away at the
# end.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=$TOP/build
RUNS=${BENCH_RUNS:-3}
if [ -z "${ORCH_BENCH_NS:-}" ]; then
	export ORCH_BENCH_NS=1
	exec unshare --net --mount --fork -- "$0" "$@"
fi
mount --make-rprivate /
mount -t tmpfs tmpfs /run
ip link set lo up
T=$(mktemp -d /tmp/orch-bench-lc.XXXXXX)
mkdir -p "$T/run" "$T/root"
mount -t tmpfs tmpfs "$T/run"
chmod 755 "$T" "$T/run"
export ORCH_RUN=$T/run ORCH_ROOT=$T/root
O=$B/orch
cleanup() {
	for d in "$ORCH_RUN"/projects/*/; do
		[ -d "$d" ] && "$O" -p "$(basename "$d")" down -v -t 0 >/dev/null 2>&1
	done
	p=$(cat "$ORCH_RUN/netd/netd.pid" 2>/dev/null)
	[ -n "$p" ] && kill "$p" 2>/dev/null
	sleep 0.2
	umount "$T/run" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
"$O" image import "$B/busybox-rootfs.tar" localhost/bb:1 >/dev/null || exit 1

# stack N HANDLER: N services over 3 networks in depends_on chains, the
# first two publishing ports, one named volume; HANDLER=1 gives PID 1 a
# SIGTERM handler (it exits on TERM).
stack() {
	n=$1
	if [ "$2" = 1 ]; then
		cmd='["sh", "-c", "trap \"exit 0\" TERM; sleep 3600 & wait"]'
	else
		cmd='["sleep", "3600"]'
	fi
	echo "services:"
	for i in $(seq 1 "$n"); do
		nets="[back]"
		[ $((i % 3)) = 0 ] && nets="[front, back]"
		[ $((i % 3)) = 1 ] && nets="[back, data]"
		echo "  s$i:"
		echo "    image: localhost/bb:1"
		echo "    command: $cmd"
		echo "    networks: $nets"
		[ "$i" -le 2 ] && echo "    ports: [\"$((18180 + i)):80\"]"
		[ "$i" = 1 ] && echo "    volumes: [\"dbdata:/data\"]"
		[ "$i" -gt 3 ] && echo "    depends_on: [s$((i / 2))]"
	done
	echo "networks: {front: {}, back: {}, data: {}}"
	echo "volumes: {dbdata: {}}"
}

ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# resident WHEN: what stays resident while stack10 is up: RSS and PSS of
# the supervisor, its keeper and netd.
resident() {
	d=$T/mem
	mkdir -p "$d"
	stack 10 0 > "$d/compose.yaml"
	(cd "$d" && "$O" --progress quiet up -d) || exit 1
	# netd unloads libnftables and trims its heap after a second idle.
	sleep 2
	sup=$(cat "$ORCH_RUN/projects/mem/supervisor.pid")
	keeper=$(awk '{print $4}' "/proc/$sup/stat") # the supervisor's parent
	netd=$(cat "$ORCH_RUN/netd/netd.pid")
	sr=$(kib /proc/$sup/status VmRSS) sp=$(kib /proc/$sup/smaps_rollup Pss)
	kr=$(kib /proc/$keeper/status VmRSS) kp=$(kib /proc/$keeper/smaps_rollup Pss)
	nr=$(kib /proc/$netd/status VmRSS) np=$(kib /proc/$netd/smaps_rollup Pss)
	printf 'resident for stack10, %s: supervisor RSS %d KiB PSS %d KiB; its keeper RSS %d KiB PSS %d KiB; netd RSS %d KiB PSS %d KiB; together PSS %.2f MiB\n' \
		"$1" "$sr" "$sp" "$kr" "$kp" "$nr" "$np" "$(echo "($sp + $kp + $np) / 1024" | bc -l)"
	(cd "$d" && "$O" --progress quiet down) >/dev/null
}
kib() { awk -v k="$2" '$1 == k":" {print $2}' "$1"; }
resident "on a fresh netd"

for handler in 0 1; do
	for n in 10 50 100 200; do
		d=$T/s$n-$handler
		mkdir -p "$d"
		stack "$n" "$handler" > "$d/compose.yaml"
		ups="" downs="" freed=""
		for r in $(seq 1 "$RUNS"); do
			t0=$(date +%s%N)
			(cd "$d" && "$O" --progress quiet up -d) || { echo "up failed"; exit 1; }
			t1=$(date +%s%N)
			(cd "$d" && "$O" --progress quiet down) || { echo "down failed"; exit 1; }
			t2=$(date +%s%N)
			"$O" network ls >/dev/null || { echo "network ls failed"; exit 1; }
			t3=$(date +%s%N)
			ups="$ups $(ms "$t0" "$t1")" downs="$downs $(ms "$t1" "$t2")"
			freed="$freed $(ms "$t1" "$t3")"
		done
		what="sleep as PID 1"
		[ "$handler" = 1 ] && what="PID 1 handles SIGTERM"
		printf 'stack of %3d (%s): up -d %5d ms, down %5d ms, links freed %5d ms (median of %d)\n' \
			"$n" "$what" "$(printf '%s\n' $ups | median)" \
			"$(printf '%s\n' $downs | median)" "$(printf '%s\n' $freed | median)" "$RUNS"
	done
done
resident "after the 200-container stacks"
