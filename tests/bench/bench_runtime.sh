#!/bin/sh
# Start-to-exit latency of one container: median wall time of N (default
# 200) sequential `orch-runtime run --rootfs R -- /bin/true` (overlay root),
# of the same with R used as is (--rw --read-only), of the same with its
# upper directory on a tmpfs (what the disk adds), of `crun run` and `runc
# run` on the same rootfs where installed, and of the floor, `unshare
# --fork --pid --mount --uts --ipc --net chroot R /bin/true`, all
# interleaved run by run so that they see the same machine load.
#
# Each run starts after a pause (BENCH_PAUSE_MS, 50): moving a process
# into a cgroup takes the kernel's global cgroup migration lock, whose
# first taker after a quiet moment waits for an RCU grace period (some
# 10 ms here, on cgroup v1).  Back to back, a runtime would find the lock
# warm or cold depending on which tool ran just before it; after a pause
# every runtime that takes it finds it as a start after other work does,
# and pays it.  On cgroup v1 orch-runtime's container joins its cgroup
# itself, through the tasks files, which the kernel does without that
# lock; the floor makes no cgroup.
#
# crun and runc get the isolation orch-runtime gives (the OCI bundle is
# made to match, not `crun spec`'s defaults): the same six namespaces
# (pid, mount, uts, ipc, net, cgroup), Docker's 14 capabilities, Docker's
# default seccomp profile (Debian's /usr/share/containers/seccomp.json,
# resolved for those capabilities and x86_64), no_new_privs, the masked
# and read-only /proc paths, a read-only rootfs.  What still differs is
# printed with the figures.  Runs in a private mount namespace; state goes
# to a temporary directory and everything is removed at the end.
#
# Debian's crun 1.8.1 refuses every container on v1/v2 hybrid hosts whose
# cgroup2 still holds a controller (hugetlb here).  Inside this script's
# private mount namespace a v1 hierarchy is mounted for hugetlb, which
# binds the controller to v1 and empties cgroup2's list; the hierarchy (and
# the binding) goes away with the namespace.
set -eu
N=${BENCH_RUNS:-200}
PAUSE_MS=${BENCH_PAUSE_MS:-50}
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
HUGETLB_V2=$(grep -ow hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null || true)
cleanup() {
	# A cgroup left in the hugetlb hierarchy would keep it bound to v1
	# after the namespace is gone: the host must get its cgroup2 back.
	find "$T/cg/hugetlb" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
	umount "$T/cg/hugetlb" 2>/dev/null || true
	# The kernel does not always let go of the hierarchy when its last
	# mount goes: mount and unmount it again until cgroup2 has hugetlb
	# back, as the host had it.
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		[ -z "$HUGETLB_V2" ] && break
		grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers && break
		mount -t cgroup -o hugetlb cgroup "$T/cg/hugetlb" 2>/dev/null &&
			umount "$T/cg/hugetlb"
		sleep 0.2
	done
	umount "$T/run" "$T/root-tmpfs" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/run" "$T/root" "$T/root-tmpfs" "$T/crun" "$T/bundle" "$T/cg/hugetlb"
# Runtime state lives on tmpfs as /run does; upper dirs on disk as
# /var/lib does.
mount -t tmpfs tmpfs "$T/run"
mount -t tmpfs tmpfs "$T/root-tmpfs"
export ORCH_RUN=$T/run ORCH_ROOT=$T/root

# The OCI bundle (made with `crun spec`, or `runc spec` without crun) is
# the same for both.
CRUN="" RUNC="" SPEC=""
command -v runc >/dev/null 2>&1 && SPEC=runc
command -v crun >/dev/null 2>&1 && SPEC=crun
if [ -n "$SPEC" ]; then
	# Mounted on every hybrid host, also when a hierarchy of a run just
	# ended still holds hugetlb (the kernel releases it a moment later);
	# named hugetlb: runc names a v1 hierarchy after its mount point.
	if [ -e /sys/fs/cgroup/unified/cgroup.controllers ]; then
		mount -t cgroup -o hugetlb cgroup "$T/cg/hugetlb" 2>/dev/null || true
	fi
	if [ -z "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
		(cd "$T/bundle" && $SPEC spec)
		python3 - "$T/bundle/config.json" "$R" <<'PY'
import json, os, sys
path, rootfs = sys.argv[1], sys.argv[2]
c = json.load(open(path))
p = c["process"]
p["terminal"] = False
p["args"] = ["/bin/true"]
p["noNewPrivileges"] = True
c["root"] = {"path": rootfs, "readonly": True}
caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
        "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT",
        "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"]
p["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
ns = c["linux"]["namespaces"]
if not any(n["type"] == "cgroup" for n in ns):
    ns.append({"type": "cgroup"})
# Docker's profile in OCI form: the rules that apply with these
# capabilities on x86_64 (includes met, excludes not).
prof = "/usr/share/containers/seccomp.json"
if os.path.exists(prof):
    d = json.load(open(prof))
    def applies(r):
        inc, exc = r.get("includes", {}), r.get("excludes", {})
        if inc.get("caps") and not set(inc["caps"]) <= set(caps): return False
        if inc.get("arches") and not set(inc["arches"]) & {"amd64", "x86_64"}: return False
        if exc.get("caps") and set(exc["caps"]) & set(caps): return False
        if exc.get("arches") and set(exc["arches"]) & {"amd64", "x86_64"}: return False
        return True
    rules = []
    for r in d["syscalls"]:
        if not applies(r): continue
        o = {"names": r["names"], "action": r["action"]}
        if r.get("args"): o["args"] = r["args"]
        if "errnoRet" in r: o["errnoRet"] = r["errnoRet"]
        rules.append(o)
    c["linux"]["seccomp"] = {"defaultAction": d["defaultAction"],
        "defaultErrnoRet": d.get("defaultErrnoRet", 1),
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules}
json.dump(c, open(path, "w"))
# The same in a user namespace mapped as orch-runtime --userns maps it.
c["linux"]["namespaces"].append({"type": "user"})
m = [{"containerID": 0, "hostID": 2000000000, "size": 65536}]
c["linux"]["uidMappings"] = m
c["linux"]["gidMappings"] = m
os.makedirs(os.path.dirname(path) + "-userns", exist_ok=True)
json.dump(c, open(os.path.dirname(path) + "-userns/config.json", "w"))
PY
		[ "$SPEC" = crun ] && CRUN=crun
		command -v runc >/dev/null 2>&1 && RUNC=runc
	else
		echo "crun, runc: cannot free cgroup2's controllers here; measuring orch-runtime only"
	fi
fi
[ -n "$CRUN" ] || echo "crun not installed (apt-get install crun): no ratio to crun"
[ -n "$RUNC" ] || echo "runc not installed (apt-get install runc): no ratio to runc"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); command: BENCH_RUNS=$N BENCH_PAUSE_MS=$PAUSE_MS $0"
python3 - "$N" "$B/orch-runtime" "$R" "$CRUN" "$T" "$RUNC" "$PAUSE_MS" <<'PY'
import os, statistics, subprocess, sys, time
n, rt, rootfs, crun, tmp, runc = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
pause = int(sys.argv[7]) / 1000
ours = [rt, "run", "--rootfs", rootfs, "--", "/bin/true"]
# The same rootfs used as is (no overlay, no upper dir), as crun's bundle.
ours_rw = [rt, "run", "--rw", rootfs, "--read-only", "--", "/bin/true"]
# In a user namespace of 65536 ids (the layers idmapped).
ours_ns = [rt, "run", "--rootfs", rootfs, "--userns", "2000000000", "--", "/bin/true"]
# The upper directory on a tmpfs: the same run without the disk's work.
tmpfs_env = dict(os.environ, ORCH_ROOT=tmp + "/root-tmpfs")
def once(cmd, env=None):
    time.sleep(pause)
    t = time.perf_counter()
    rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, env=env).returncode
    dt = time.perf_counter() - t
    if rc != 0:
        sys.exit("bench_runtime: %s exited %d" % (cmd[0], rc))
    return dt * 1000
# Warm-up: the first run compiles and caches the seccomp filter.
for _ in range(3):
    once(ours)
    if crun:
        once([crun, "--root", tmp + "/crun", "run", "-b", tmp + "/bundle", "bench-warm"])
floor = ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net",
         "chroot", rootfs, "/bin/true"]
if runc:
    for _ in range(3):
        once([runc, "--root", tmp + "/runc", "run", "-b", tmp + "/bundle", "bench-warm"])
a, b, c, d, f, u, v, w = [], [], [], [], [], [], [], []
for i in range(n):
    a.append(once(ours))
    c.append(once(ours_rw))
    w.append(once(ours, tmpfs_env))
    u.append(once(ours_ns))
    f.append(once(floor))
    if crun:
        b.append(once([crun, "--root", tmp + "/crun", "run", "-b", tmp + "/bundle", "bench-%d" % i]))
        v.append(once([crun, "--root", tmp + "/crun", "run", "-b", tmp + "/bundle-userns", "bench-u%d" % i]))
    if runc:
        d.append(once([runc, "--root", tmp + "/runc", "run", "-b", tmp + "/bundle", "bench-%d" % i]))
def row(name, v):
    print("%-34s median %6.2f ms (min %.2f, n=%d)" % (name, statistics.median(v), min(v), len(v)))
row("orch-runtime run /bin/true", a)
row("  same, --rw --read-only", c)
row("  same, upper dir on a tmpfs", w)
row("  same, --userns (user namespace)", u)
if crun: row("crun run /bin/true", b)
if crun: row("  same, in a user namespace", v)
if runc: row("runc run /bin/true", d)
row("floor: unshare ... chroot", f)
ma, mf = statistics.median(a), statistics.median(f)
print("ratio orch-runtime/floor: %.2f (goal <= 1.30); upper dir on a tmpfs/floor: %.2f" % (ma / mf, statistics.median(w) / mf))
if crun:
    mb = statistics.median(b)
    print("ratio orch-runtime/crun: %.2f (goal <= 0.50); --rw --read-only/crun: %.2f" % (ma / mb, statistics.median(c) / mb))
if runc:
    print("ratio orch-runtime/runc: %.2f" % (ma / statistics.median(d)))
print("user namespace cost: orch-runtime %+.1f%% (goal < 10%%)" % (100 * (statistics.median(u) / ma - 1)), end="")
if crun:
    print(", crun %+.1f%%; orch-runtime --userns/crun in a user namespace: %.2f" % (
        100 * (statistics.median(v) / statistics.median(b) - 1), statistics.median(u) / statistics.median(v)))
else:
    print()
print("what still differs: orch-runtime mounts an overlay with an upper dir (crun and runc use the")
print("directory as is: compare the --rw row).  The upper dir is on disk, under ORCH_ROOT, taken")
print("from the spares a run before left (a rename): the overlay's own checks in it and what a")
print("volatile overlay leaves there, removed after the run, are the disk filesystem's work, which")
print("the tmpfs row leaves out (a discard mount trims each freed block before rmdir returns).")
print("Its /dev is its own tmpfs with Docker's device nodes")
print("and cgroup rules, crun's and runc's are their defaults; cgroups on v1: orch-runtime makes one")
print("in memory, cpu(acct), pids, freezer and devices, crun and runc in every mounted controller;")
print("the floor has no cgroups, mounts, capabilities or seccomp.  Each run came %d ms after the" % (pause * 1000))
print("one before: crun's and runc's moves into their cgroups waited for the kernel's migration")
print("lock; on cgroup v1 orch-runtime's container joins its own through the tasks files, without it.")
PY
