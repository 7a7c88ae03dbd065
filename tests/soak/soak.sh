#!/bin/bash
# Soak: CYCLES (default 200) cycles, on stack10 and on a 50-service stack,
# of `up -d --wait`, one to three random faults (restart, kill -9 of a
# container, of the supervisor, of netd, of an `up` at a random moment),
# `up -d --wait` again (everything must run) and `down -v`; after every
# cycle a census of what orch holds in the kernel and on disk must match
# the one after the first cycle: links, addresses, routes, nft ruleset,
# mounts, loop devices, cgroups, processes, netd's fds, files under
# ORCH_RUN and ORCH_ROOT.  netd's memory (measured idle, every PSS_EVERY
# cycles, after cycles one netd served whole) must stay within 10% of its
# value after the first such cycle.
#
# Runs in its own network, mount and pid namespaces (so every process it
# sees is one it started), with ORCH_ROOT/ORCH_RUN in a temporary
# directory.  SEED=N replays a run; STACKS="10 50" picks the stacks.
set -u
. "$(dirname "$0")/../e2e/lib.sh"
CYCLES=${CYCLES:-200}
STACKS=${STACKS:-10 50}
PSS_EVERY=${PSS_EVERY:-10}
PSS_DUE=0
SEED=${SEED:-$(($(date +%s%N) % 32768))}
RANDOM=$SEED
echo "# soak: seed $SEED, $CYCLES cycles on stacks: $STACKS (replay: SEED=$SEED)"

chmod 755 "$T" "$ORCH_RUN"
mount -t tmpfs tmpfs "$ORCH_RUN" && chmod 755 "$ORCH_RUN"
on_exit umount -l "$ORCH_RUN"
touch "$T/ids"
O=$B/orch
"$O" image import "$FIXTURE_TAR" localhost/bb:1 >/dev/null || { fail "importing the fixture"; finish; }
on_exit 'for d in "$ORCH_RUN"/projects/*/; do [ -d "$d" ] && "$O" -p "$(basename "$d")" down -v -t 0; done'

# ---- the stacks ----------------------------------------------------------
# stack10: the reference topology (3 networks, 2 published ports, a named
# volume, depends_on chains); its httpd serves /.
mkdir -p "$T/stack10" "$T/stack50"
sed 's/"-h", "\/var\/www"/"-h", "\/"/; /^version:/d' "$(dirname "$0")/stack10.yaml" > "$T/stack10/compose.yaml"

# stack50: 50 services over 3 networks in depends_on chains, every restart
# policy, health checks, two published ports (tcp, udp), a named volume,
# a size-limited one (a loop device) and anonymous volumes.
{
	echo "services:"
	for i in $(seq 1 50); do
		nets="[back]"
		[ $((i % 3)) = 0 ] && nets="[front, back]"
		[ $((i % 3)) = 1 ] && nets="[back, data]"
		echo "  s$i:"
		echo "    image: localhost/bb:1"
		if [ "$i" = 1 ]; then
			echo '    command: ["httpd", "-f", "-p", "80", "-h", "/"]'
		else
			echo '    command: ["sleep", "3600"]'
		fi
		echo "    stop_signal: SIGKILL"
		echo "    networks: $nets"
		case $((i % 4)) in
		0) echo "    restart: always" ;;
		1) echo "    restart: on-failure" ;;
		2) echo "    restart: unless-stopped" ;;
		esac
		[ "$i" = 1 ] && echo '    ports: ["18180:80"]'
		[ "$i" = 2 ] && echo '    ports: ["18181:53/udp"]'
		[ "$i" = 1 ] && echo '    volumes: ["dbdata:/data", "sized:/sized"]'
		[ $((i % 10)) = 5 ] && echo '    volumes: ["/anon"]'
		[ $((i % 10)) = 7 ] &&
			echo '    healthcheck: {test: ["CMD", "true"], interval: 10s, start_period: 10s, start_interval: 200ms}'
		[ "$i" -gt 3 ] && echo "    depends_on: [s$((i / 2))]"
	done
	echo "networks: {front: {}, back: {}, data: {}}"
	echo "volumes: {dbdata: {}, sized: {driver_opts: {size: 16m}}}"
} > "$T/stack50/compose.yaml"

# ---- running orch --------------------------------------------------------
# orc CMD...: orch on the current stack; a command that hangs is killed.
orc() { timeout -s KILL 120 "$O" --progress quiet -p "$P" -f "$T/$P/compose.yaml" "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# Random choices are made by this shell, never in a subshell (bash seeds
# each subshell afresh): a run is replayed from its seed.
# rand_delay MS: DELAY, a random delay in [0, MS] ms, in seconds.
rand_delay() { local ms=$((RANDOM * RANDOM % ($1 + 1))); DELAY=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000))); }
container_pids() { grep -o '"pid":[1-9][0-9]*' "$ORCH_RUN/projects/$P/status.json" 2>/dev/null | cut -d: -f2; }
sup_alive() { kill -0 "$(cat "$ORCH_RUN/projects/$P/supervisor.pid" 2>/dev/null)" 2>/dev/null; }
pid_gone() { ! container_pids | grep -qx "$1"; }
# until_true SECONDS CMD...: polls CMD every 50 ms.
until_true() {
	local n=$(($1 * 20)); shift
	while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.05; n=$((n - 1)); done
	return 1
}
# pick WORDS: PICKED, one of them at random (empty if none).
pick() { local a=($1); PICKED=; [ ${#a[@]} -gt 0 ] && PICKED=${a[RANDOM % ${#a[@]}]}; return 0; }
# Every container id this stack has had: its cgroups are looked for.
note_ids() {
	touch "$T/ids"
	{
		grep -o '"id":"[0-9a-f]\{64\}"' "$ORCH_RUN/projects/$P/status.json" "$ORCH_RUN/projects/$P/state.json" 2>/dev/null | grep -o '[0-9a-f]\{64\}'
		ls "$ORCH_RUN/runtime" "$ORCH_ROOT/containers" 2>/dev/null | grep -x '[0-9a-f]\{64\}'
	} >> "$T/ids"
	sort -u -o "$T/ids" "$T/ids"
}

# up_killed ARGS...: runs `up -d ARGS` and kills it -9 at a random moment.
up_killed() {
	"$O" --progress quiet -p "$P" -f "$T/$P/compose.yaml" up -d "$@" >/dev/null 2>&1 &
	local up=$!
	rand_delay "$UP_MS"
	sleep "$DELAY"
	kill -9 "$up" 2>/dev/null
	wait "$up" 2>/dev/null
	note_ids
}

# fault: one random fault; OP is its name.
fault() {
	local p
	case $((RANDOM % 7)) in
	0) OP=restart; orc restart -t 0 >/dev/null 2>&1 ;;
	1) pick "$SERVICES"; OP="restart-$PICKED"; orc restart -t 0 "$PICKED" >/dev/null 2>&1 ;;
	2 | 3)
		pick "$(container_pids)"; p=$PICKED
		OP=kill-container
		# The supervisor records the exit before anything else is done,
		# as a user who saw it die would wait (if it lives).
		[ -n "$p" ] && kill -9 "$p" && sup_alive && until_true 3 pid_gone "$p" ;;
	4) OP=kill-supervisor; kill -9 "$(cat "$ORCH_RUN/projects/$P/supervisor.pid" 2>/dev/null)" 2>/dev/null ;;
	5) OP=kill-netd; kill -9 "$(cat "$ORCH_RUN/netd/netd.pid" 2>/dev/null)" 2>/dev/null ;;
	6) OP=kill-up-recreate; up_killed --force-recreate ;;
	esac
	return 0
}

# ---- the census ----------------------------------------------------------
# census FILE: one line per object orch may hold, sorted.  Processes are
# read first, by the shell itself, so none of the census' own appear.
census() {
	local d c a st out=$1.tmp
	: > "$out"
	for d in /proc/[0-9]*; do
		[ "${d#/proc/}" = 1 ] && continue
		read -r c 2>/dev/null < "$d/comm" || continue
		[ "$c" = "${0##*/}" ] && continue
		a=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)
		echo "process: $c ($a)" >> "$out"
	done
	{
		ip -o link | awk -F': ' '{sub(/@.*/, "", $2); print "link: " $2}'
		ip -o addr | awk '{print "address: " $2 " " $4}'
		{ ip route; ip -6 route; } | sed 's/^/route: /'
		nft list ruleset | sed 's/ # handle [0-9]*//; s/^[[:space:]]*//; /^$/d; s/^/nft: /'
		awk '{print "mount: " $5 " " $9}' /proc/self/mountinfo
		losetup -n -l -O NAME,BACK-FILE 2>/dev/null | grep -F "$T" | sed 's/^/loop: /'
		# cgroups named for a container id this soak has had: orch's own
		# place, or under systemd the scopes of orch.slice
		# (orch-<id>-<pid>.scope).
		find /sys/fs/cgroup/*/orch /sys/fs/cgroup/orch /sys/fs/cgroup/orch.slice \
			-mindepth 1 -maxdepth 1 -type d 2>/dev/null |
			awk 'NR == FNR {ours[$1] = 1; next}
				{n = split($0, p, "/"); id = p[n]}
				id ~ /^orch-.*-[0-9]+\.scope$/ {sub(/^orch-/, "", id); sub(/-[0-9]+\.scope$/, "", id)}
				id in ours {print "cgroup: " $0}' "$T/ids" -
		local n
		n=$(cat "$ORCH_RUN/netd/netd.pid" 2>/dev/null)
		[ -n "$n" ] && for d in /proc/"$n"/fd/*; do
			a=$(readlink "$d") && echo "netd fd: ${a%%:\[*}"
		done
		find "$ORCH_RUN" "$ORCH_ROOT" -path "$ORCH_ROOT/images" -prune -o -path "$ORCH_ROOT/layers" -prune -o -path "$ORCH_ROOT/containers/.spare" -prune -o -print | sed 's/^/file: /'
	} >> "$out"
	LC_ALL=C sort "$out" > "$1"
	rm -f "$out"
}
# What may be new after the first cycle: netd and the folders orch keeps.
FIRST_OWN='^(process: netd |netd fd: |nft: |file: .*/(netd|netd\.sock|netd/.*|projects|runtime|runtime/\.seccomp.*|runtime/\.boot|containers|containers/\.boot|volumes|volumes/\.lock|tmp)$)'

# pss_kib PID: the process's PSS and the anonymous part of it (its heap
# and stacks), in KiB.  The rest, its share of the libraries' pages, moves
# with how many other processes on the host map them.
pss_kib() { awk '$1 == "Pss:" {p = $2} $1 == "Pss_Anon:" {a = $2} END {print p + 0, a + 0}' "/proc/$1/smaps_rollup" 2>/dev/null; }
# netd_idle_pss: netd's PSS once it is idle (libnftables unloaded, heap
# trimmed, a second after its last request).
netd_idle_pss() {
	local n i=0
	n=$(cat "$ORCH_RUN/netd/netd.pid" 2>/dev/null) || return 1
	while grep -q libnftables "/proc/$n/maps" 2>/dev/null && [ $i -lt 60 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	pss_kib "$n"
}

# ---- a cycle -------------------------------------------------------------
# cycle N: up, faults, up again, down, census; one ok/not ok line.
cycle() {
	local n=$1 ops="" k nf t0 t1 running why=""
	t0=$(now_ms)
	# The netd this cycle starts with: its memory is judged only after a
	# cycle it served whole (one killed mid-cycle is replaced by a netd
	# that has not yet done, nor paged in, all a cycle does).
	NETD_PID0=$(cat "$ORCH_RUN/netd/netd.pid" 2>/dev/null)
	# A quarter of the cycles start with an up killed at a random moment;
	# half of those go straight to down.
	if [ $((RANDOM % 4)) = 0 ]; then
		up_killed
		ops="kill-up"
		if [ $((RANDOM % 2)) = 0 ]; then
			ops="$ops down"
			orc down -v -t 0 >/dev/null 2>&1 || why="down after a killed up failed"
			n_done "$n" "$t0" "$ops" "$why"
			return
		fi
	fi
	orc up -d --wait >"$T/out" 2>&1 || why="up --wait failed: $(tail -3 "$T/out")"
	note_ids
	if [ -z "$why" ]; then
		nf=$((1 + RANDOM % 3))
		for k in $(seq 1 "$nf"); do
			fault
			ops="$ops $OP"
			note_ids
		done
		orc up -d --wait >"$T/out" 2>&1 || why="up --wait after the faults failed: $(tail -3 "$T/out")"
		note_ids
		running=$(orc ps -q 2>/dev/null | wc -l)
		[ -z "$why" ] && [ "$running" != "$NSVC" ] && why="$running of $NSVC services run after the faults"
		[ -z "$why" ] && ! port_answers && why="published port $PORT does not answer"
		if [ -z "$why" ] && [ $((n % PSS_EVERY)) = 0 -o "$n" = 1 -o "$n" = "$CYCLES" ]; then
			SUP_PSS=$(pss_kib "$(cat "$ORCH_RUN/projects/$P/supervisor.pid")")
			echo "$n ${SUP_PSS% *}" >> "$T/sup-pss-$P"
		fi
	fi
	ops="$ops down"
	orc down -v -t 0 >"$T/out" 2>&1 || why="${why:+$why; }down failed: $(tail -3 "$T/out")"
	n_done "$n" "$t0" "$ops" "$why"
}
port_answers() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; }

# n_done N T0 OPS WHY: the census, its verdict and the cycle's line.
n_done() {
	local n=$1 ms leaked
	census "$T/census.now"
	if [ ! -e "$T/census.ref" ]; then
		# The first cycle: only netd's own objects may be new.
		leaked=$(LC_ALL=C comm -13 "$T/census.pre" "$T/census.now" | grep -Ev "$FIRST_OWN")
		cp "$T/census.now" "$T/census.ref"
	else
		leaked=$(LC_ALL=C comm -13 "$T/census.ref" "$T/census.now")
	fi
	if [ -n "$leaked" ] || [ "$PSS_DUE" = 1 ] || [ $((n % PSS_EVERY)) = 0 -o "$n" = 1 -o "$n" = "$CYCLES" ]; then
		pss=$(netd_idle_pss)
		local pid whole=0
		pid=$(cat "$ORCH_RUN/netd/netd.pid" 2>/dev/null)
		[ -n "$pid" ] && [ "$pid" = "$NETD_PID0" ] && whole=1
		echo "$P $n $pss $pid $whole" >> "$T/netd-pss"
		# A netd that did not serve the whole cycle: measured again
		# after the next one.
		PSS_DUE=$((1 - whole))
	fi
	ms=$(($(now_ms) - $2))
	TOTAL_MS=$((TOTAL_MS + ms))
	if [ -n "$4" ]; then
		fail "$P cycle $n ($3) ${ms} ms" "$4"
	elif [ -n "$leaked" ]; then
		fail "$P cycle $n ($3) ${ms} ms: leaked" "$(echo "$leaked" | head -40 | sed "2,\$s/^/  /")"
		LEAKS=$((LEAKS + $(echo "$leaked" | wc -l)))
		# Report each leak once.
		LC_ALL=C sort -m "$T/census.ref" <(echo "$leaked") > "$T/census.ref2"
		mv "$T/census.ref2" "$T/census.ref"
	elif [ "${VERBOSE:-0}" = 1 ] || [ $((n % 10)) = 0 ]; then
		pass "$P cycle $n ($3) ${ms} ms"
	else
		pass "$P cycle $n" >/dev/null
	fi
}

# ---- the run -------------------------------------------------------------
census "$T/census.pre"
LEAKS=0
START=$(now_ms)
for s in $STACKS; do
	P=stack$s
	SERVICES=$(orc config --services)
	NSVC=$(echo "$SERVICES" | wc -l)
	PORT=18080; [ "$s" = 50 ] && PORT=18180
	# How long an up takes here: a killed up dies within it.
	t=$(now_ms); orc up -d --wait >/dev/null 2>&1; UP_MS=$(($(now_ms) - t))
	note_ids
	orc down -v -t 0 >/dev/null 2>&1
	TOTAL_MS=0
	for n in $(seq 1 "$CYCLES"); do
		cycle "$n"
		[ "$FAIL" -gt 20 ] && { echo "# stopping: more than 20 failures"; break; }
	done
	echo "# $P: $n cycles in $((TOTAL_MS / 1000)) s ($((TOTAL_MS / n)) ms a cycle; an up took $UP_MS ms)"
	awk -v p="$P" '{print "# " p " supervisor PSS after up, cycle " $1 ": " $2 " KiB"}' "$T/sup-pss-$P" 2>/dev/null | sed -n '1p;$p' | uniq
	# netd's memory is flat: its heap within 10% of its size after the
	# first cycle (its PSS is shown too).
	# Judged over the cycles a netd served whole (see NETD_PID0): the
	# first such one against the last and the highest.
	grep "^$P " "$T/netd-pss" > "$T/netd-pss-$P"
	awk '$6 == 1' "$T/netd-pss-$P" > "$T/netd-pss-whole-$P"
	f=($(head -1 "$T/netd-pss-whole-$P")) l=($(tail -1 "$T/netd-pss-whole-$P"))
	hi=$(awk 'm < $3 {m = $3} END {print m + 0}' "$T/netd-pss-whole-$P")
	echo "# $P: netd idle after cycle ${f[1]:-?} (the first it served whole): PSS ${f[2]:-?} KiB (anonymous ${f[3]:-?}), after cycle ${l[1]:-?}: PSS ${l[2]:-?} KiB (anonymous ${l[3]:-?}); highest PSS $hi KiB"
	echo "# $P: netd PSS/anonymous KiB by cycle (pid, * = not served whole): $(awk '{printf "%s:%s/%s(%s%s) ", $2, $3, $4, $5, $6 == 1 ? "" : "*"}' "$T/netd-pss-$P")"
	if [ -z "${f[2]:-}" ]; then
		fail "$P: netd served no cycle whole: its memory cannot be judged"
	else
		check "$P: netd's PSS after the last cycle (${l[2]} KiB) and at its highest ($hi KiB) within 10% of the first (${f[2]} KiB)" \
			test "$((l[2] * 10))" -le "$((f[2] * 11))" -a "$((hi * 10))" -le "$((f[2] * 11))"
		check "$P: netd's anonymous memory after the last cycle (${l[3]} KiB) within 10% of the first (${f[3]} KiB)" \
			test "$((l[3] * 10))" -le "$((f[3] * 11))"
	fi
done
check_eq "leaked objects" 0 "$LEAKS"
echo "# soak took $((($(now_ms) - START) / 1000)) s; seed $SEED"
finish
