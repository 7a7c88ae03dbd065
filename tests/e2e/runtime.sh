#!/bin/sh
# orch-runtime run: isolation (pid, uts, net, mount, caps, no_new_privs,
# seccomp, masked /proc), users, mounts, read-only root, errors, and a
# hostile rootfs.  After every container: no mount, cgroup, process, state
# or upper dir left.
. "$(dirname "$0")/lib.sh"

RT=$B/orch-runtime
R=$FIXTURE
P=e2e-rt-$ID
N=0

# run NAME [orch-runtime run args...]: a container with a unique id.
run() {
	n=$1
	shift
	"$RT" run --name "$P-$n" "$@"
}

on_exit "for c in \$(ls $ORCH_RUN/runtime 2>/dev/null); do $RT delete \$c; done"

out=$(run pid1 --rootfs "$R" -- sh -c 'echo $$')
check_eq "the command is pid 1" "1" "$out"
gone pid1

out=$(run host --rootfs "$R" --hostname box-1 -- hostname)
check_eq "hostname is the given one" "box-1" "$out"
gone host

out=$(run status --rootfs "$R" -- cat /proc/self/status)
check_match "default CapEff is docker's" 'CapEff:[[:space:]]+00000000a80425fb' "$out"
check_match "NoNewPrivs is set" 'NoNewPrivs:[[:space:]]+1' "$out"
check_match "seccomp filter is on" 'Seccomp:[[:space:]]+2' "$out"
check_match "bounding set is the default too" 'CapBnd:[[:space:]]+00000000a80425fb' "$out"
gone status

check "mount fails inside" sh -c '! "$1" run --name "$2" --rootfs "$3" -- mount -t tmpfs x /mnt 2>/dev/null' _ "$RT" "$P-mnt" "$R"
gone mnt

# The filter at work in the kernel: a user namespace needs no capability,
# only the profile's leave (given with CAP_SYS_ADMIN, as Docker's).
out=$(run scun --rootfs "$R" -- sh -c 'unshare -U true 2>&1; echo rc=$?')
check_match "seccomp refuses unshare without CAP_SYS_ADMIN" 'Operation not permitted' "$out"
check_match "and the refusal is an error, not a kill" 'rc=1' "$out"
gone scun
out=$(run scunok --rootfs "$R" --cap-add SYS_ADMIN -- sh -c 'unshare -U true 2>&1; echo rc=$?')
check_eq "with CAP_SYS_ADMIN it is allowed" "rc=0" "$out"
gone scunok

# A Docker-format profile: argument checks, errno, kill, default allow.
cat >"$T/profile.json" <<'EOF'
{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
 {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
  "args": [{"index": 1, "value": 511, "op": "SCMP_CMP_EQ"}]},
 {"names": ["fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
  "args": [{"index": 2, "value": 511, "op": "SCMP_CMP_EQ"}]},
 {"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]}
EOF
out=$(run scjson --rootfs "$R" --seccomp-profile "$T/profile.json" -- sh -c 'touch /tmp/f; chmod 755 /tmp/f && echo 755 ok; chmod 777 /tmp/f 2>&1; unshare -U true && echo unshare ok')
check_match "a profile's argument check lets other values through" '755 ok' "$out"
check_match "and refuses the listed one with its errno" 'Permission denied' "$out"
check_match "its default allows the rest" 'unshare ok' "$out"
gone scjson
check "a syscall the profile kills ends the container with SIGSYS" sh -c '"$1" run --name "$2" --rootfs "$3" --seccomp-profile "$4" -- uname >/dev/null 2>&1; [ $? = 159 ]' _ "$RT" "$P-sckill" "$R" "$T/profile.json"
gone sckill

out=$(run kcore --rootfs "$R" -- sh -c 'cat /proc/kcore 2>/dev/null | wc -c; cat /proc/keys /proc/timer_list 2>/dev/null | wc -c')
check_eq "masked /proc files read empty" "0
0" "$out"
gone kcore

out=$(run procro --rootfs "$R" -- sh -c '{ echo 1 > /proc/sys/kernel/domainname; } 2>/dev/null && echo writable; touch /sys/x 2>/dev/null && echo syswritable; echo done')
check_eq "/proc/sys and /sys are read-only" "done" "$(echo "$out" | tail -1)"
check "nothing was written" sh -c '! echo "$1" | grep -q writable' _ "$out"
gone procro

out=$(run cgns --rootfs "$R" -- sh -c 'cut -d: -f3 /proc/self/cgroup | sort -u')
check_eq "the cgroup namespace is rooted at the container's cgroup" "/" "$out"
gone cgns

out=$(run sysctl --rootfs "$R" --sysctl net.ipv4.ip_forward=1 -- cat /proc/sys/net/ipv4/ip_forward)
check_eq "--sysctl is applied in the container's namespaces" "1" "$out"
check_eq "and not on the host" "0" "$(cat /proc/sys/net/ipv4/ip_forward)"
gone sysctl

out=$(run iplink --rootfs "$R" -- ip -o link)
check_eq "only lo in the network namespace" "1" "$(echo "$out" | wc -l)"
check_match "lo is up" 'lo: <LOOPBACK,UP' "$out"
gone iplink

# Waits (with builtins only, so that no pid is used) until the child has
# become sleep.
out=$(run ps --rootfs "$R" -- sh -c 'sleep 5 & until read -r c </proc/$!/comm && [ "$c" = sleep ]; do :; done; ps -o pid,comm; true')
check_eq "ps shows only the container's processes" "PID   COMMAND
    1 sh
    2 sleep
    3 ps" "$out"
gone ps

run rootfs --rootfs "$R" -- sh -c 'echo x > /newfile; rm /etc/motd; mkdir /d' >/dev/null
check "writing in the container leaves the rootfs unchanged" sh -c '[ ! -e "$1/newfile" ] && [ -f "$1/etc/motd" ] && [ ! -e "$1/d" ]' _ "$R"
gone rootfs

out=$(run dev --rootfs "$R" -- sh -c 'ls /dev | tr "\n" " "; echo x > /dev/null && head -c 4 /dev/zero | wc -c')
check_match "/dev has the standard nodes" 'full.*null.*ptmx.*pts.*random.*shm.*stderr.*stdin.*stdout.*tty.*urandom.*zero' "$out"
check_match "/dev/null and /dev/zero work" '4$' "$out"
gone dev

out=$(run limits --rootfs "$R" -- sh -c 'ulimit -n; ulimit -Hn')
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -gt 524288 ] && hard=524288
check_eq "RLIMIT_NOFILE is 1024 / min(524288, host hard)" "1024
$hard" "$out"
gone limits

out=$(run user --rootfs "$R" --user 1000:1000 -- sh -c 'id -u; id -g; grep CapEff /proc/self/status')
check_match "--user 1000:1000 runs as that uid and gid" '^1000
1000' "$out"
check_match "a non-root user has no effective caps" 'CapEff:[[:space:]]+0000000000000000' "$out"
gone user

out=$(run capdrop --rootfs "$R" --cap-drop ALL -- grep CapEff /proc/self/status)
check_match "--cap-drop ALL gives CapEff 0" 'CapEff:[[:space:]]+0000000000000000' "$out"
gone capdrop

out=$(run capadd --rootfs "$R" --cap-add NET_ADMIN --cap-drop CHOWN -- sh -c 'grep CapEff /proc/self/status; ip addr add 10.9.9.9/32 dev lo && echo added')
check_match "--cap-add / --cap-drop adjust the set" 'CapEff:[[:space:]]+00000000a80435fa' "$out"
check_match "NET_ADMIN works when added" 'added' "$out"
gone capadd

out=$(run ro --rootfs "$R" --read-only --tmpfs /tmp -- sh -c 'touch /x 2>/dev/null && echo rootwritable; touch /tmp/x && echo tmpok')
check_eq "--read-only root, writable --tmpfs" "tmpok" "$out"
gone ro

mkdir -p "$T/host/ro" "$T/host/rw"
echo from-host > "$T/host/ro/f"
out=$(run mnt-ro --rootfs "$R" --mount "$T/host/ro:/data:ro" -- sh -c 'cat /data/f; { echo y > /data/g; } 2>/dev/null && echo written')
check_eq "--mount :ro reads but does not write" "from-host" "$out"
check "the read-only bind wrote nothing" test ! -e "$T/host/ro/g"
gone mnt-ro
run mnt-rw --rootfs "$R" --mount "$T/host/rw:/srv/data" -- sh -c 'echo y > /srv/data/g'
check_eq "--mount rw writes through to the host" "y" "$(cat "$T/host/rw/g" 2>/dev/null)"
gone mnt-rw

printf '10.0.0.9 other\n' > "$T/host/hosts"
echo named > "$T/host/hostname"
out=$(run mnt-file --rootfs "$R" --mount "$T/host/hosts:/etc/hosts:ro" --mount "$T/host/hostname:/etc/new/hostname" -- sh -c 'cat /etc/hosts /etc/new/hostname')
check_eq "files bind onto files, created when missing" "10.0.0.9 other
named" "$out"
gone mnt-file

out=$(run tmpfs-size --rootfs "$R" --tmpfs /scratch:1m -- sh -c 'head -c 2097152 /dev/zero > /scratch/big 2>/dev/null; du -k /scratch/big | cut -f1')
check_match "--tmpfs size is enforced" '^10[0-9][0-9]$' "$out"
gone tmpfs-size

out=$(run env --rootfs "$R" --env FOO=bar --workdir /work/here -- sh -c 'echo $FOO; pwd; echo $PATH')
check_eq "--env and --workdir apply" "bar
/work/here
/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$out"
gone env

"$RT" run --name "$P-notfound" --rootfs "$R" -- nosuch 2>"$T/err"
rc=$?
check_eq "a missing command exits 127" "127" "$rc"
check_match "the exec error names the command" 'exec nosuch: No such file or directory' "$(cat "$T/err")"
gone notfound

"$RT" run --name "$P-exit" --rootfs "$R" -- sh -c 'exit 42'
check_eq "the exit status is forwarded" "42" "$?"
gone exit
"$RT" run --name "$P-sig" --rootfs "$R" -- sleep 30 &
runpid=$!
wait_for 30 quiet "$RT" kill "$P-sig" KILL 2>/dev/null
wait $runpid
check_eq "death by signal N exits 128+N" "137" "$?"
gone sig

"$RT" run --bogus 2>/dev/null
check_eq "a bad flag exits 2" "2" "$?"
"$RT" run --rootfs "$R" 2>/dev/null
check_eq "a missing command exits 2" "2" "$?"

"$RT" run --name "$P-badroot" --rootfs /nonexistent -- true 2>"$T/err"
check_eq "a bad rootfs fails" "125" "$?"
check_match "the child's error comes back with context" 'creating container .*overlay' "$(cat "$T/err")"
gone badroot

"$RT" run --name "$P-dup" --detach --rootfs "$R" -- sleep 30 >/dev/null
"$RT" run --name "$P-dup" --rootfs "$R" -- true 2>"$T/err"
check_match "an id in use is refused" 'exists already' "$(cat "$T/err")"
"$RT" delete "$P-dup"
gone dup

# A run deleted when it ends has a volatile overlay, never synced to
# disk; a detached one stays after it ends, and is synced.
VOL=' / / .* - overlay .*volatile'
out=$(run vol --rootfs "$R" -- grep -c "$VOL" /proc/self/mountinfo)
check_eq "a run's overlay is volatile" "1" "$out"
gone vol
"$RT" run --name "$P-keep" --detach --rootfs "$R" -- sleep 30 >/dev/null
out=$("$RT" exec "$P-keep" -- grep -c "$VOL" /proc/self/mountinfo)
check_eq "a detached run's overlay is not" "0" "$out"
"$RT" delete "$P-keep"
gone keep

# A hostile rootfs: symlinks aimed at the host must resolve inside it.
cp -a "$R" "$T/evil"
mkdir -p "$T/outside"
rm -rf "$T/evil/work"
ln -s "$T/outside" "$T/evil/work"
ln -s "../../../../../../../$T/outside" "$T/evil/data"
run evil --rw "$T/evil" --workdir /work/sub --mount "$T/host/ro:/data/x" -- true
check "workdir and mount targets stay inside the rootfs" sh -c '[ -z "$(ls -A "$1")" ] && [ -d "$2$1/sub" ] && [ -d "$2$1/x" ]' _ "$T/outside" "$T/evil"
gone evil

run rw --rw "$T/evil" -- sh -c 'echo direct > /written'
check_eq "--rw uses the directory as is" "direct" "$(cat "$T/evil/written")"
gone rw

finish
