# Sourced by every e2e suite.  Re-executes the suite in its own network and
# mount namespaces, with ORCH_ROOT/ORCH_RUN in a temporary directory, and
# counts checks.  A suite calls `check DESC CMD...` (or pass/fail), may
# register teardown with `on_exit CMD`, and ends with `finish`.
set -u
if [ -z "${ORCH_E2E_SANDBOX:-}" ]; then
	export ORCH_E2E_SANDBOX=1
	exec unshare --net --mount --fork -- "$0" "$@"
fi
mount --make-rprivate /
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=$TOP/build
FIXTURE=$B/rootfs
FIXTURE_TAR=$B/busybox-rootfs.tar
T=$(mktemp -d /tmp/orch-e2e.XXXXXX)
export ORCH_ROOT=$T/root ORCH_RUN=$T/run
mkdir -p "$ORCH_ROOT" "$ORCH_RUN"
# /run/orch and /var/lib/orch are never touched: hide them to be sure.
mount -t tmpfs tmpfs /run 2>/dev/null || true
ip link set lo up
PASS=0
FAIL=0
_exit_hooks=""

on_exit() { _exit_hooks="$*; $_exit_hooks"; }
pass() { PASS=$((PASS + 1)); echo "ok - $1"; }
fail() { FAIL=$((FAIL + 1)); echo "not ok - $1"; [ $# -gt 1 ] && printf '  %s\n' "$2"; return 0; }
# check DESC CMD... : passes when CMD succeeds.
check() { d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
# check_eq DESC WANT GOT
check_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "want [$2] got [$3]"; fi
}
# check_match DESC REGEX TEXT
check_match() {
	if printf '%s' "$3" | grep -Eq -- "$2"; then pass "$1"; else fail "$1" "[$3] does not match /$2/"; fi
}
# The daemons a suite started (netd on demand, project supervisors) run
# outside its namespaces' lifetime: stop those of this suite's ORCH_RUN.
_stop_daemons() {
	for d in /proc/[0-9]*; do
		case $(cat "$d/comm" 2>/dev/null) in netd | orch-supervisor | orch-keeper) ;; *) continue ;; esac
		tr '\0' '\n' 2>/dev/null <"$d/environ" | grep -qx "ORCH_RUN=$ORCH_RUN" &&
			kill -9 "${d#/proc/}" 2>/dev/null
	done
	return 0
}
_finish() {
	eval "$_exit_hooks" >/dev/null 2>&1 || true
	_stop_daemons
	rm -rf "$T"
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}
finish() {
	trap - EXIT
	_finish
	exit $?
}
trap '_finish' EXIT
