#!/bin/sh
# orch-runtime: cgroup limits (memory OOM, pids, cpus), detached containers
# with exec/kill/ps/stats/pause/resume/delete, the --init reaper, joining a
# network namespace and the host network.  After every container: no
# mount, cgroup, process, state or upper dir left.
. "$(dirname "$0")/lib.sh"

RT=$B/orch-runtime
R=$FIXTURE
P=e2e-rto-$ID

on_exit "for c in \$(ls $ORCH_RUN/runtime 2>/dev/null); do $RT delete \$c; done; ip netns del $P 2>/dev/null"

# A hierarchy path of the container's cgroup for a v1 controller (or v2;
# under systemd, in the container's scope).
cgdir() {
	if [ -d "/sys/fs/cgroup/$2/orch/$P-$1" ]; then
		echo "/sys/fs/cgroup/$2/orch/$P-$1"
	elif [ -d /sys/fs/cgroup/orch.slice ] && [ ! -d "/sys/fs/cgroup/orch/$P-$1" ]; then
		ls -d /sys/fs/cgroup/orch.slice/orch-"$P-$1"-[0-9]*.scope/"$P-$1" | head -1
	else
		echo "/sys/fs/cgroup/orch/$P-$1"
	fi
}

# ---- limits -----------------------------------------------------------------
"$RT" run --name "$P-oom" --rootfs "$R" --memory 32m -- sh -c 'head -c 200m /dev/zero | tail > /dev/null' 2>/dev/null
check_eq "--memory 32m: allocating 200 MB ends in OOM (137)" "137" "$?"
gone oom
check "the host is fine after the OOM" "$RT" run --name "$P-after" --rootfs "$R" -- true
gone after

"$RT" run --name "$P-pids" --detach --rootfs "$R" --pids 20 -- sh -c '(while :; do sleep 30 & done) 2>/dev/null; exec sleep 30' >/dev/null
pids_now() { "$RT" stats "$P-pids" | sed -n 's/^pids //p'; }
refused() { grep -q 'max [1-9]' "$(cgdir pids pids)/pids.events" 2>/dev/null; }
# 20 at the peak: the looping shell then dies of its failed fork.
capped() { refused && n=$(pids_now) && [ "$n" -ge 18 ] && [ "$n" -le 20 ]; }
wait_for 30 capped
n=$(pids_now)
check "--pids 20 stops a fork loop at 20 processes ($n left)" sh -c '[ "$1" -ge 18 ] && [ "$1" -le 20 ]' _ "$n"
check "the pids cgroup refused forks" refused
"$RT" delete "$P-pids"
gone pids

"$RT" run --name "$P-cpu" --detach --rootfs "$R" --cpus 0.5 -- sh -c 'while :; do :; done' >/dev/null
cpu_ns() { "$RT" stats "$P-cpu" | sed -n 's/^cpu_usage_ns //p'; }
busy() { [ "$(cpu_ns)" -gt 0 ]; }
wait_for 10 busy
# Percent of one CPU over at least 2 s of real time, measured around the
# two readings.  The quota caps it at 50% (plus at most one period's worth
# over the window); what it gets below that depends on the machine's load,
# so the lower bound only says that it ran.
t0=$(_now_ms)
u0=$(cpu_ns)
sleep 2
u1=$(cpu_ns)
t1=$(_now_ms)
share=$(((u1 - u0) / 10000 / (t1 - t0)))
check "--cpus 0.5 holds a busy loop under half a CPU ($share%)" sh -c '[ "$1" -ge 1 ] && [ "$1" -le 55 ]' _ "$share"
quota=$(cat "$(cgdir cpu cpu)/cpu.cfs_quota_us" 2>/dev/null || cut -d' ' -f1 "$(cgdir cpu cpu)/cpu.max")
check_eq "the cpu quota is 50 ms per 100 ms" "50000" "$quota"
"$RT" delete "$P-cpu"
gone cpu

# ---- detached containers, exec, kill, ps, stats, pause ----------------------------
"$RT" run --name "$P-d" --detach --rootfs "$R" --hostname dbox --tmpfs /data -- sh -c 'echo seen > /data/f; exec sleep 60' >/dev/null
# runs_sleep NAME: the container's command (its PID 1, or the child of the
# --init reaper) has become sleep.
runs_sleep() {
	local p
	p=$("$RT" ps | awk -v n="$1" '$1 == n {print $2}')
	[ -n "$p" ] && [ "$p" != 0 ] || return 1
	grep -qx orch-init "/proc/$p/comm" 2>/dev/null &&
		p=$(cat "/proc/$p/task/$p/children" 2>/dev/null | cut -d' ' -f1)
	grep -qx sleep "/proc/$p/comm" 2>/dev/null
}
wait_for 10 runs_sleep "$P-d"
out=$("$RT" ps)
check_match "ps lists the running container" "$P-d +[0-9]+ running" "$out"
out=$("$RT" exec "$P-d" -- sh -c 'echo $$; hostname; cat /data/f; ps -o pid,comm | grep -c sleep')
check_eq "exec sees the same pid namespace, hostname and mounts" "2
dbox
seen
1" "$out"
out=$("$RT" exec "$P-d" -- sh -c 'cat /proc/1/cgroup; echo ==; cat /proc/self/cgroup')
check_eq "exec joins every cgroup of the container" "${out%%
==*}" "${out#*==
}"
out=$("$RT" exec --user 1000:1000 --env X=y --workdir /tmp "$P-d" -- sh -c 'id -u; echo $X; pwd; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status | tr -s "\t" " "')
check_eq "exec takes user, env, workdir and keeps the restrictions" "1000
y
/tmp
CapEff: 0000000000000000
NoNewPrivs: 1
Seccomp: 2" "$out"
"$RT" exec "$P-d" -- sh -c 'exit 3'
check_eq "exec forwards the exit status" "3" "$?"
"$RT" exec "$P-d" -- nosuch 2>"$T/err"
check_eq "exec of a missing command exits 127" "127" "$?"
check_match "exec error names the command" 'exec nosuch: No such file' "$(cat "$T/err")"
out=$("$RT" stats "$P-d")
check_match "stats report memory and pids" 'memory_current [1-9][0-9]*' "$out"
check_match "stats count the processes" 'pids 1' "$out"
"$RT" pause "$P-d"
state=$(cat "$(cgdir d freezer)/freezer.state" 2>/dev/null || cat "$(cgdir d freezer)/cgroup.freeze")
check_match "pause freezes the cgroup" 'FROZEN|1' "$state"
"$RT" resume "$P-d"
state=$(cat "$(cgdir d freezer)/freezer.state" 2>/dev/null || cat "$(cgdir d freezer)/cgroup.freeze")
check_match "resume thaws it" 'THAWED|0' "$state"
"$RT" kill "$P-d" KILL
# stopped NAME: ps shows the container stopped.
stopped() { "$RT" ps | grep -Eq "^$1 +0 stopped"; }
wait_for 10 stopped "$P-d"
check_match "after kill the container is stopped" "$P-d +0 stopped" "$("$RT" ps)"
"$RT" kill "$P-d" KILL 2>"$T/err"
check_match "killing a stopped container says so" 'not running' "$(cat "$T/err")"
"$RT" delete "$P-d"
check "delete removes it from ps" sh -c '! "$1" ps | grep -q "$2"' _ "$RT" "$P-d"
gone d
"$RT" delete "$P-d"
check_eq "deleting what is gone succeeds" "0" "$?"

"$RT" run --name "$P-dnx" --detach --rootfs "$R" -- nosuch 2>"$T/err"
check_eq "a detached container whose exec fails exits 127" "127" "$?"
check_match "with the exec error" 'exec nosuch: No such file' "$(cat "$T/err")"
gone dnx
check "ps lists only containers" sh -c '[ "$("$1" ps | wc -l)" -eq 1 ]' _ "$RT"

"$RT" run --name "$P-live" --detach --rootfs "$R" -- sleep 60 >/dev/null
"$RT" delete "$P-live"
gone live

# ---- init ----------------------------------------------------------------------
out=$("$RT" run --name "$P-init" --rootfs "$R" --init -- sh -c 'echo $$; cat /proc/1/comm; sleep 0.2 & wait; echo reaped')
check_eq "--init: the command is pid 2 under a reaper" "2
orch-init
reaped" "$out"
gone init
"$RT" run --name "$P-initsig" --detach --rootfs "$R" --init -- sleep 60 >/dev/null
wait_for 10 runs_sleep "$P-initsig"
"$RT" kill "$P-initsig" TERM
check "--init forwards SIGTERM to the command" wait_for 10 stopped "$P-initsig"
"$RT" delete "$P-initsig"
gone initsig
# The reaper never execs: it must not keep the caller's descriptors (here
# a file on fd 9, as a command substitution's pipe would be) open for the
# container's life.  /proc shows only this suite's processes.
"$RT" run --name "$P-initfd" --detach --rootfs "$R" --init -- sleep 20 9>"$T/initfd" >/dev/null
wait_for 10 runs_sleep "$P-initfd"
check "--init keeps none of the caller's descriptors" sh -c '! ls -l /proc/[0-9]*/fd 2>/dev/null | grep -qF "$1"' _ "$T/initfd"
"$RT" delete "$P-initfd"
gone initfd
"$RT" run --name "$P-initexit" --rootfs "$R" --init -- sh -c 'exit 5'
check_eq "--init exits with the command's status" "5" "$?"
gone initexit

# ---- networks -------------------------------------------------------------------------
ip netns add "$P"
ip -n "$P" addr add 10.77.0.1/32 dev lo
out=$("$RT" run --name "$P-netns" --rootfs "$R" --netns "/run/netns/$P" -- ip -o addr show dev lo)
check_match "--netns joins the given network namespace" '10\.77\.0\.1' "$out"
gone netns
ip netns del "$P"
ip addr add 10.78.0.1/32 dev lo
out=$("$RT" run --name "$P-hostnet" --rootfs "$R" --net host -- ip -o addr show dev lo)
check_match "--net host shares the caller's network" '10\.78\.0\.1' "$out"
ip addr del 10.78.0.1/32 dev lo
gone hostnet

finish
