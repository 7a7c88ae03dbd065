#!/bin/sh
# init: true — the reaper that is PID 1 holds nothing of its creator, and
# shows nothing of it.
. "$(dirname "$0")/lib.sh"
R=$B/orch-runtime
id=init-fds-$ID
# fd 7 stands for a creator's pipe, socket or lock: open, not close-on-exec.
exec 7>"$T/creator-lock"
"$R" run --detach --name "$id" --init --rootfs "$FIXTURE" -- sleep 30 >/dev/null
on_exit "$R" delete "$id"
# The container's PID 1 as orch-runtime records it.
pid=$("$R" ps | awk -v n="$id" '$1 == n {print $2}')
check_eq "the container's PID 1 is the reaper" orch-init "$(cat "/proc/$pid/comm" 2>/dev/null)"
fds=$(ls "/proc/$pid/fd" 2>/dev/null | sort -n | tr '\n' ' ')
check_eq "the reaper holds no fd at all" "" "$fds"
check "the creator's fd is not in the reaper" sh -c '! ls -l /proc/$1/fd | grep -q creator-lock' _ "$pid"
check_match "the command runs under the reaper" 'sleep 30' "$("$R" exec "$id" ps)"
# Its memory is a copy of its creator's: the container may not read it.
check "the container cannot read the reaper's memory map" sh -c '! "$1" exec "$2" cat /proc/1/maps >/dev/null 2>&1' _ "$R" "$id"
check "nor its environment" sh -c '! "$1" exec "$2" cat /proc/1/environ >/dev/null 2>&1' _ "$R" "$id"
check "while the command's own is readable" "$R" exec "$id" cat /proc/self/maps
"$R" delete "$id" >/dev/null 2>&1
# Gone, or a zombie until this suite's reaper collects it.
ended() { ! grep -q '^State:.*[RSD]' "/proc/$1/status" 2>/dev/null; }
check "delete ends the reaper" wait_for 10 ended "$pid"
finish
