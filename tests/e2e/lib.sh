# Sourced by every e2e suite.  Re-executes the suite in its own network,
# mount and pid namespaces, with ORCH_ROOT/ORCH_RUN in a temporary
# directory, and counts checks.  A suite calls `check DESC CMD...` (or
# pass/fail), may register teardown with `on_exit CMD`, and ends with
# `finish`.  A suite that stops before `finish` (an error, `exit`, a
# signal, an unset variable) says so and exits non-zero: it never prints
# the "N passed, N failed" of a suite that ran to its end.
#
# The pid namespace: /proc shows only the suite's own processes, and
# everything it started (netd, supervisors, containers) dies with it.  $$
# is therefore the same small number in every suite: names that must be
# unique on the host (runtime containers, cgroups) use $ID instead.
set -u
if [ -z "${ORCH_E2E_SANDBOX:-}" ]; then
	export ORCH_E2E_SANDBOX=1
	# In make check-vm's throwaway VM (ORCH_E2E_VM) the suite stays in
	# systemd's pid namespace, so that orch asks systemd for its cgroups as
	# on a real host, and with ORCH_E2E_NETD=system in the VM's network
	# namespace too, to use the netd systemd started.
	ns="--net --pid --mount-proc"
	[ -n "${ORCH_E2E_VM:-}" ] && ns=--net
	[ "${ORCH_E2E_NETD:-}" = system ] && ns=
	# PID 1 is a small reaper: it forwards INT/TERM/HUP to the suite, reaps
	# the orphans (daemons whose parent exited) and exits with the suite's
	# status; the kernel then kills whatever is left in the namespace.
	# shellcheck disable=SC2086
	exec unshare $ns --mount --fork --kill-child -- perl -e '
		my $c = fork() // die "fork: $!\n";
		if (!$c) { exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\n"; }
		$SIG{$_} = sub { kill $_[0], $c } for qw(INT TERM HUP);
		my $s = 0;
		while ((my $p = wait()) != -1) { if ($p == $c) { $s = $?; last } }
		exit($s & 127 ? 128 + ($s & 127) : $s >> 8);' -- "$0" "$@"
fi
mount --make-rprivate /
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=$TOP/build
FIXTURE=$B/rootfs
FIXTURE_TAR=$B/busybox-rootfs.tar
# Every suite needs the busybox fixture that `make all` builds.
[ -x "$FIXTURE/bin/busybox" ] && [ -s "$FIXTURE_TAR" ] ||
	{ echo "no busybox fixture in $B: run make all first" >&2; exit 1; }
T=$(mktemp -d /tmp/orch-e2e.XXXXXX)
# ID: unique on the host for as long as the suite runs.
ID=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
export ORCH_ROOT=$T/root ORCH_RUN=$T/run
mkdir -p "$ORCH_ROOT" "$ORCH_RUN"
# /run/orch and /var/lib/orch are never touched: hide them to be sure
# (but in check-vm's VM, where /run is systemd's, which orch talks to).
[ -n "${ORCH_E2E_VM:-}" ] || mount -t tmpfs tmpfs /run 2>/dev/null || true
[ "${ORCH_E2E_NETD:-}" = system ] && ln -s /run/orch/netd.sock "$ORCH_RUN/netd.sock"
ip link set lo up
PASS=0
FAIL=0
_exit_hooks=""
# Every check appends a line here, so that checks made in a subshell (a
# pipeline, a `( ... )`) count too.
_results=$T/.results
: >"$_results"

on_exit() { _exit_hooks="$*; $_exit_hooks"; }
pass() { PASS=$((PASS + 1)); echo ok >>"$_results"; echo "ok - $1"; }
fail() {
	FAIL=$((FAIL + 1))
	echo "not ok" >>"$_results"
	echo "not ok - $1"
	[ $# -gt 1 ] && printf '  %s\n' "$2"
	return 0
}
# check DESC CMD... : passes when CMD succeeds.  The ok/not ok line goes to
# the suite's output: silence CMD itself with `quiet`, never the check.
check() { d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
# check_eq DESC WANT GOT
check_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "want [$2] got [$3]"; fi
}
# check_match DESC REGEX TEXT
check_match() {
	if printf '%s' "$3" | grep -Eq -- "$2"; then pass "$1"; else fail "$1" "[$3] does not match /$2/"; fi
}
# quiet CMD... : CMD with its standard output discarded.
quiet() { "$@" >/dev/null; }
# fails CMD... : CMD fails (its output discarded).
fails() { ! "$@" >/dev/null 2>&1; }
# wait_for SECONDS CMD... : polls CMD every 0.1 s until it succeeds; fails
# when it still fails after SECONDS.  Use it instead of a fixed sleep before
# a check, with a bound that holds on a loaded machine.
wait_for() {
	local end
	end=$(($(_now_ms) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(_now_ms)" -lt "$end" ] || return 1
		sleep 0.1
	done
}
# holds SECONDS CMD... : CMD succeeds every time it is polled for SECONDS
# (for what must not happen, as a restart that should not come).
holds() {
	local end
	end=$(($(_now_ms) + $1 * 1000))
	shift
	while "$@"; do
		[ "$(_now_ms)" -lt "$end" ] || return 0
		sleep 0.1
	done
	return 1
}
_now_ms() { echo $(($(date +%s%N) / 1000000)); }
# stop_netd: stops the netd of this suite's ORCH_RUN, if one runs, and
# waits until it has exited.
# rootfs_args IMAGE: an image's layer directories, uppermost first, as
# orch-runtime's --rootfs options; run_in IMAGE CMD...: CMD in a container
# of IMAGE with no network.
rootfs_args() {
	"$B/orch" image inspect "$1" | jq -r '.[0].RootFS.Layers | reverse | .[]' |
		while read -r l; do printf -- '--rootfs %s/layers/%s/diff ' "$ORCH_ROOT" "${l#sha256:}"; done
}
run_in() {
	_img=$1
	shift
	# shellcheck disable=SC2046
	"$B/orch-runtime" run --net none $(rootfs_args "$_img") -- "$@"
}
stop_netd() {
	local p
	p=$(cat "$ORCH_RUN/netd/netd.pid" 2>/dev/null)
	[ -n "$p" ] && kill "$p" 2>/dev/null && wait_for 10 _exited "$p"
	return 0
}
# _exited PID: gone, or a zombie that this suite's reaper is about to collect.
_exited() { [ ! -d "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
# gone NAME: nothing of the runtime's container $P-NAME is left on the
# host (cgroup, runtime state, upper directory, mount, process).  Under
# systemd, the container's leaf is orch's and gone at once; its scope is
# systemd's, which collects it once empty.
_no_scope() { ! ls -d /sys/fs/cgroup/orch.slice/orch-"$1"-[0-9]*.scope >/dev/null 2>&1; }
gone() {
	id=$P-$1
	left=""
	for d in /sys/fs/cgroup/*/orch/"$id" /sys/fs/cgroup/orch/"$id" \
		/sys/fs/cgroup/orch.slice/orch-"$id"-[0-9]*.scope/"$id"; do
		[ -e "$d" ] && left="$left cgroup:$d"
	done
	wait_for 10 _no_scope "$id" ||
		left="$left scope:$(echo /sys/fs/cgroup/orch.slice/orch-"$id"-[0-9]*.scope)"
	[ -e "$ORCH_RUN/runtime/$id" ] && left="$left state"
	[ -e "$ORCH_ROOT/containers/$id" ] && left="$left upper"
	grep -q "$id" /proc/self/mountinfo && left="$left mount"
	procs=$(grep -ls "/$id\$" /proc/[0-9]*/cgroup 2>/dev/null)
	[ -n "$procs" ] && left="$left processes:$procs"
	if [ -n "$left" ]; then
		fail "nothing left of $1" "$left"
	else
		pass "nothing left of $1"
	fi
}
# The daemons a suite started (netd on demand, project supervisors) die with
# its pid namespace; stop those of this suite's ORCH_RUN before its
# clean-up removes their files.  /proc shows only the suite's processes.
_stop_daemons() {
	for d in /proc/[0-9]*; do
		case $(cat "$d/comm" 2>/dev/null) in netd | orch-supervisor | orch-keeper | orch-worker | orch-tty) ;; *) continue ;; esac
		tr '\0' '\n' 2>/dev/null <"$d/environ" | grep -qx "ORCH_RUN=$ORCH_RUN" &&
			kill -9 "${d#/proc/}" 2>/dev/null
	done
	return 0
}
_count() { grep -c "^$1\$" "$_results" 2>/dev/null || true; }
_cleanup() {
	eval "$_exit_hooks" >/dev/null 2>&1 || true
	_stop_daemons
	_ok=$(_count ok) _notok=$(_count "not ok")
	rm -rf "$T"
}
finish() {
	trap - EXIT
	_cleanup
	echo "$_ok passed, $_notok failed"
	[ "$_notok" -eq 0 ]
	exit $?
}
# The EXIT trap runs only when the suite did not reach `finish`.
_ended_early() {
	trap - EXIT
	trap '' INT TERM HUP
	_cleanup
	echo "suite ended early (${_signal:-exit $1}) after $((_ok + _notok)) checks, $_notok of them not ok"
	[ "$1" -ne 0 ] && exit "$1"
	exit 1
}
_signal=""
trap '_ended_early $?' EXIT
trap '_signal=SIGHUP; exit 129' HUP
trap '_signal=SIGINT; exit 130' INT
trap '_signal=SIGTERM; exit 143' TERM
