#!/bin/sh
# Start-to-exit latency of one container: median wall time of N (default
# 200) sequential `orch-runtime run --rootfs R -- /bin/true` (overlay root),
# of the same with R used as is (--rw --read-only), and, when crun
# is installed, of `crun run` on the same rootfs, the two alternating run by
# run so that both see the same machine load.  Prints both medians and the
# ratio.  Runs in a private mount namespace; state goes to a temporary
# directory and everything is removed at the end.
#
# Debian's crun 1.8.1 refuses every container on v1/v2 hybrid hosts whose
# cgroup2 still holds a controller (hugetlb here).  Inside this script's
# private mount namespace a v1 hierarchy is mounted for hugetlb, which
# binds the controller to v1 and empties cgroup2's list; the hierarchy (and
# the binding) goes away with the namespace.
set -eu
N=${BENCH_RUNS:-200}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=$TOP/build
R=$B/rootfs
[ -x "$B/orch-runtime" ] && [ -x "$R/bin/busybox" ] || {
	echo "bench_runtime: build first (make)" >&2
	exit 1
}
if [ -z "${ORCH_BENCH_NS:-}" ]; then
	export ORCH_BENCH_NS=1
	exec unshare --mount -- "$0" "$@"
fi
mount --make-rprivate /
T=$(mktemp -d /tmp/orch-bench.XXXXXX)
cleanup() {
	umount "$T/cg-hugetlb" 2>/dev/null || true
	umount "$T/run" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/run" "$T/root" "$T/crun" "$T/bundle" "$T/cg-hugetlb"
# Runtime state lives on tmpfs as /run does; upper dirs on disk as
# /var/lib does.
mount -t tmpfs tmpfs "$T/run"
export ORCH_RUN=$T/run ORCH_ROOT=$T/root

CRUN=""
if command -v crun >/dev/null 2>&1; then
	if [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
		mount -t cgroup -o hugetlb cgroup "$T/cg-hugetlb" 2>/dev/null || true
	fi
	if [ -z "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
		(cd "$T/bundle" && crun spec)
		python3 - "$T/bundle/config.json" "$R" <<'PY'
import json, sys
path, rootfs = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["root"]["path"] = rootfs
json.dump(c, open(path, "w"))
PY
		CRUN=crun
	else
		echo "crun: cannot free cgroup2's controllers here; measuring orch-runtime only"
	fi
else
	echo "crun not installed; measuring orch-runtime only"
fi

python3 - "$N" "$B/orch-runtime" "$R" "$CRUN" "$T" <<'PY'
import os, statistics, subprocess, sys, time
n, rt, rootfs, crun, tmp = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ours = [rt, "run", "--rootfs", rootfs, "--", "/bin/true"]
# The same rootfs used as is (no overlay, no upper dir), as crun's bundle.
ours_rw = [rt, "run", "--rw", rootfs, "--read-only", "--", "/bin/true"]
def once(cmd):
    t = time.perf_counter()
    rc = subprocess.run(cmd, stdin=subprocess.DEVNULL).returncode
    dt = time.perf_counter() - t
    if rc != 0:
        sys.exit("bench_runtime: %s exited %d" % (cmd[0], rc))
    return dt * 1000
# Warm-up: the first run compiles and caches the seccomp filter.
for _ in range(3):
    once(ours)
    if crun:
        once([crun, "--root", tmp + "/crun", "run", "-b", tmp + "/bundle", "bench-warm"])
a, b, c = [], [], []
for i in range(n):
    a.append(once(ours))
    c.append(once(ours_rw))
    if crun:
        b.append(once([crun, "--root", tmp + "/crun", "run", "-b", tmp + "/bundle", "bench-%d" % i]))
ma = statistics.median(a)
mc = statistics.median(c)
print("orch-runtime run /bin/true: median %.2f ms (min %.2f, n=%d)" % (ma, min(a), n))
print("  same, --rw --read-only:   median %.2f ms (min %.2f, n=%d)" % (mc, min(c), n))
if crun:
    mb = statistics.median(b)
    print("crun run /bin/true:         median %.2f ms (min %.2f, n=%d)" % (mb, min(b), n))
    print("ratio orch-runtime/crun: %.2f (goal <= 0.50); --rw --read-only/crun: %.2f" % (ma / mb, mc / mb))
PY
