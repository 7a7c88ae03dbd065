#!/bin/sh
# Runs inside the check-vm VM (from orch-vm-check.service, as root, with
# systemd as PID 1 on the unified cgroup v2 hierarchy).  The work disk is at
# /mnt/work: built/ is the tree with the host's binaries, fresh/ a plain
# copy.  Installs orch and starts netd as a systemd service, runs the e2e
# suites that touch cgroups, devices, user namespaces, the supervisor or
# netd (the lifecycle suites against the systemd-started netd), then `make
# demo` in the fresh copy.  Writes "check-vm: result N" last, then powers
# the VM off.
set -u
W=/mnt/work
exec 2>&1
# The VM ends with the checks, whatever they left running: systemd's own
# poweroff would first wait for every process of this unit to stop.
trap 'sync; systemctl poweroff -ff || echo o >/proc/sysrq-trigger' EXIT
echo "check-vm: started on $(uname -r), /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup), PID 1 is $(cat /proc/1/comm)"
failed=0
# Every failure is said where it happens and again at the end, where the
# last lines of a long log (all that CI may show) find it.
fails=/tmp/check-vm-failures
: >"$fails"
bad() { echo "check-vm: FAILED: $*" | tee -a "$fails"; failed=1; }
cd "$W/built" || { echo "check-vm: result 1"; exit 1; }
# A crash anywhere leaves a core on the work disk; its backtrace is printed
# at the end, so that a failure in the VM can be read from the host.
mkdir -p "$W/cores"
sysctl -q kernel.core_pattern="$W/cores/core.%e.%p" || true
ulimit -c unlimited
backtraces() {
	for c in "$W"/cores/core.*; do
		[ -e "$c" ] || continue
		exe=$(file -b "$c" | sed -n "s/.*execfn: '\([^']*\)'.*/\1/p")
		echo "check-vm: core $(basename "$c") of ${exe:-?}"
		[ -n "$exe" ] && command -v gdb >/dev/null &&
			gdb -q -batch -ex bt "$exe" "$c" 2>&1 | grep -v '^\[' | head -40
	done
}

# As the README says a user installs it: binaries, then netd's unit.
make -s -o all install >/dev/null || bad "make install"
install -m 0644 examples/orch-netd.service /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now orch-netd >/dev/null 2>&1 || bad "systemctl enable --now orch-netd"
for _ in $(seq 100); do [ -S /run/orch/netd.sock ] && break; sleep 0.1; done
systemctl is-active --quiet orch-netd && [ -S /run/orch/netd.sock ] ||
	{ bad "orch-netd.service is not running"; systemctl status orch-netd --no-pager; }

# Every suite with a bound: a hang is a failure, reported, not a dead VM.
suites() {
	for s in "$@"; do [ -f "$s" ] && echo "$s"; done
}
# Emulation is slow: a suite gets more time than make check gives it.
export ORCH_E2E_VM=1 E2E_TIMEOUT=${E2E_TIMEOUT:-1500}
# orch's scopes, and what keeps one that systemd did not collect: its
# state, what its cgroup holds, its transient file and its journal.
scopes() { systemctl list-units --no-legend --all --plain 'orch-*.scope' | grep -c . ; }
scopes_report() {
	for u in $(systemctl list-units --no-legend --all --plain 'orch-*.scope' | awk '{print $1}'); do
		echo "check-vm: scope $(systemctl show -p ActiveState,SubState,Result,ControlGroup "$u" | tr '\n' ' ')"
		cg=$(systemctl show -P ControlGroup "$u")
		if [ -n "$cg" ] && [ -d "/sys/fs/cgroup$cg" ]; then
			echo "  events: $(tr '\n' ' ' <"/sys/fs/cgroup$cg/cgroup.events")"
			for f in $(find "/sys/fs/cgroup$cg" -name cgroup.procs); do
				for p in $(cat "$f"); do
					echo "  $f: $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
				done
			done
		fi
		ls -l "/run/systemd/transient/$u" 2>&1 | sed 's/^/  /'
		journalctl -b --no-pager -o short-monotonic -u "$u" 2>&1 | tail -n 12 | sed 's/^/  /'
	done
}
# Once a project is down, systemd collects its containers' scopes.
scopes_gone() {
	for _ in $(seq 100); do [ "$(scopes)" -eq 0 ] && return 0; sleep 0.2; done
	bad "orch scopes left after $*"
	scopes_report | tee -a "$fails"
	return 1
}
run() {
	t0=$(date +%s)
	for s in "$@"; do
		{ tests/run-e2e.sh "$s"; echo $? >/tmp/suite.rc; } 2>&1 | tee /tmp/suite.log
		if [ "$(cat /tmp/suite.rc)" != 0 ]; then
			bad "e2e: $s"
			grep -E '^not ok|^FAILED' /tmp/suite.log >>"$fails"
		fi
		scopes_gone "$s"
	done
	echo "check-vm: $(($(date +%s) - t0)) s"
}
# Each with a netd of its own in its own network namespace, as in make
# check: those that start netd themselves, and the lifecycle suites that
# check that a network namespace is left empty.
run $(suites tests/e2e/runtime*.sh tests/e2e/netd*.sh tests/e2e/security_devices.sh \
	tests/e2e/lifecycle_down.sh tests/e2e/lifecycle_errors.sh tests/e2e/userns.sh)
# The other lifecycle suites against the netd systemd started; they must
# leave no network in it.
ORCH_E2E_NETD=system run $(suites tests/e2e/lifecycle.sh tests/e2e/lifecycle_cli.sh \
	tests/e2e/lifecycle_restart.sh tests/e2e/lifecycle_hooks.sh)
systemctl is-active --quiet orch-netd || bad "orch-netd.service died during the suites"
netd_nets() { orch-netd call network.list | python3 -c 'import json,sys; print(" ".join(n["name"] for n in json.load(sys.stdin)["result"]["networks"]))'; }
# Every project's network is gone; the shared build network (docker's
# default bridge, for RUN steps) stays until `orch network prune`.
nets=$(netd_nets)
[ -z "$(echo "$nets" | tr ' ' '\n' | grep -vx orch-build)" ] ||
	bad "networks left in the systemd-started netd: $nets"
orch network prune -f >/dev/null || bad "orch network prune"
nets=$(netd_nets)
[ -z "$nets" ] || bad "networks left in the systemd-started netd after prune: $nets"

# A new user on a fresh machine: make demo in a plain copy of the tree
# (make deps finds every package already installed: the VM has no network).
t0=$(date +%s)
echo "== make demo (fresh copy of the tree)"
if (cd "$W/fresh" && timeout 1800 make demo); then
	echo "check-vm: make demo: $(($(date +%s) - t0)) s"
	# orch's cgroups are where systemd expects them: nothing but systemd's
	# units at the root of the hierarchy, the containers in scopes of
	# orch.slice.
	stray=$(find /sys/fs/cgroup -mindepth 1 -maxdepth 1 -type d ! -name '*.slice' \
		! -name '*.scope' ! -name '*.mount' ! -name '*.swap' ! -name '*.service')
	[ -z "$stray" ] || bad "cgroups outside systemd's units at the root: $stray"
	n=$(systemctl list-units --no-legend --state=running 'orch-*.scope' | wc -l)
	[ "$n" -ge 1 ] || bad "no running orch-*.scope unit while the demo stack is up"
	echo "check-vm: demo containers in $n running scope(s) of orch.slice"
	(cd "$W/fresh" && build/orch -f compose.example.yaml down -v) || bad "demo down"
	# and systemd collects them once the containers are gone.
	scopes_gone "the demo's down"
	left=$(find /sys/fs/cgroup/orch.slice -mindepth 1 -type d 2>/dev/null)
	[ -z "$left" ] || bad "cgroups left after down: $left"
else
	bad "make demo"
fi

# A user on a systemd host: the user's own manager (user@UID.service, on
# the user's bus) makes the containers' cgroups, as it does podman's, and
# netd makes none.
echo "== rootless, under the user's systemd manager"
useradd -m -s /bin/sh carol || bad "useradd carol"
RU=$(id -u carol)
RUN=/run/user/$RU
loginctl enable-linger carol || bad "loginctl enable-linger carol"
for _ in $(seq 300); do [ -S "$RUN/bus" ] && break; sleep 0.1; done
[ -S "$RUN/bus" ] || bad "carol's manager and bus did not start"
mkdir -p /home/carol/s
cp build/busybox-rootfs.tar /home/carol/
cat >/home/carol/s/compose.yaml <<'Y'
services:
  s:
    image: busybox:latest
    command: ["sleep", "1000"]
    mem_limit: 64m
    pids_limit: 20
Y
chown -R carol: /home/carol
carol() {
	(cd /home/carol/s && setpriv --reuid carol --regid carol --init-groups \
		env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/home/carol \
		XDG_RUNTIME_DIR="$RUN" "$@")
}
MGR=/sys/fs/cgroup/user.slice/user-$RU.slice/user@$RU.service
carol orch image import /home/carol/busybox-rootfs.tar busybox:latest >/dev/null ||
	bad "rootless: image import"
if carol orch up -d; then
	pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["s-s-1"]["pid"])' \
		"$RUN/orch/projects/s/status.json")
	cg=$(cat "/proc/$pid/cgroup")
	case "$cg" in
	"0::/user.slice/user-$RU.slice/user@$RU.service/orch.slice/orch-"*.scope/*)
		echo "check-vm: rootless container in $cg" ;;
	*) bad "carol's container is not in a scope of her manager: $cg" ;;
	esac
	dir=/sys/fs/cgroup${cg#0::}
	[ "$(cat "$dir/memory.max" 2>&1)" = 67108864 ] || bad "rootless mem_limit: $(cat "$dir/memory.max" 2>&1)"
	[ "$(cat "$dir/pids.max" 2>&1)" = 20 ] || bad "rootless pids_limit: $(cat "$dir/pids.max" 2>&1)"
	[ "$(carol orch exec -T s id -u 2>&1)" = 0 ] || bad "rootless exec: $(carol orch exec -T s id -u 2>&1)"
	[ -z "$(ls -d /sys/fs/cgroup/orch/user-"$RU" 2>/dev/null)" ] ||
		bad "netd made a cgroup for carol, whose manager makes them"
	carol orch down -t 0 || bad "rootless down"
	for _ in $(seq 100); do
		[ -z "$(find "$MGR/orch.slice" -mindepth 1 -type d 2>/dev/null)" ] && break
		sleep 0.2
	done
	left=$(find "$MGR/orch.slice" -mindepth 1 -type d 2>/dev/null)
	[ -z "$left" ] || bad "carol's cgroups left after down: $left"
	[ -z "$(pgrep -u carol orch 2>/dev/null)" ] || bad "carol's orch processes left: $(pgrep -a -u carol orch)"
else
	bad "rootless up under the user's manager"
fi
loginctl disable-linger carol
backtraces
if [ -s "$fails" ]; then
	echo "== check-vm: the failures again"
	cat "$fails"
fi
echo "check-vm: result $failed"
