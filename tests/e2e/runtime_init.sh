#!/bin/sh
# init: true — the reaper that is PID 1 holds nothing of its creator.
. "$(dirname "$0")/lib.sh"
R=$B/orch-runtime
id=init-fds-$ID
# fd 7 stands for a creator's pipe, socket or lock: open, not close-on-exec.
exec 7>"$T/creator-lock"
"$R" run --detach --name "$id" --init --rootfs "$FIXTURE" -- sleep 30 >/dev/null
on_exit "$R" delete "$id"
pid=$(cat /proc/*/task/*/children 2>/dev/null | tr ' ' '\n' | while read -r p; do
	[ -n "$p" ] && grep -qx orch-init "/proc/$p/comm" 2>/dev/null && echo "$p"; done | head -1)
check "the container's PID 1 is the reaper" [ -n "$pid" ]
fds=$(ls "/proc/$pid/fd" 2>/dev/null | sort -n | tr '\n' ' ')
check_eq "the reaper holds no fd at all" "" "$fds"
check "the creator's fd is not in the reaper" sh -c '! ls -l /proc/$1/fd | grep -q creator-lock' _ "$pid"
check_match "the command runs under the reaper" 'sleep 30' "$("$R" exec "$id" ps)"
"$R" delete "$id" >/dev/null 2>&1
sleep 0.2
check "delete ends the reaper" sh -c '! grep -q "^State:.*[RS]" /proc/$1/status 2>/dev/null' _ "$pid"
finish
