#!/bin/bash
# Restart policies, stop semantics, logs across restarts, and a supervisor
# killed with SIGKILL: its containers keep running and are re-adopted.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"

project rs <<'Y'
services:
  always:
    image: bb:1
    command: ["sh", "-c", "echo started; exec sleep 3600"]
    network_mode: none
    restart: always
  onfail:
    image: bb:1
    command: ["sh", "-c", "echo failing; exit 3"]
    network_mode: none
    restart: on-failure:2
  never:
    image: bb:1
    command: ["sh", "-c", "exit 1"]
    network_mode: none
    restart: "no"
  unless:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
    restart: unless-stopped
    stop_grace_period: 60s
  graceful:
    image: bb:1
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
    network_mode: none
    restart: always
Y

check "up -d succeeds" inp rs "$O" up -d
p1=$(pid_of rs rs-always-1)
check "always runs" kill -0 "$p1"
(cd "$T/rs" && exec "$O" logs -f always) > "$T/follow.log" 2>&1 &
follower=$!
kill -9 "$p1"
restarted() { p=$(pid_of rs rs-always-1); [ "$p" != "$p1" ] && [ "$p" != 0 ] && kill -0 "$p" 2>/dev/null; }
check "always is running again after kill -9" wait_for 10 restarted
check_eq "always: restart count 1" 1 "$(psf rs always RestartCount)"
check_eq "always: running" running "$(psf rs always State)"
check "logs -f follows across the restart" wait_for 10 sh -c "[ \$(grep -c started '$T/follow.log') -ge 2 ]"
kill "$follower" 2>/dev/null

done_failing() { [ "$(psf rs onfail State)" = exited ] && [ "$(psf rs onfail RestartCount)" = 2 ]; }
check "on-failure:2 stops after 2 restarts" wait_for 20 done_failing
check "on-failure:2: still 2 restarts a second later" holds 1 done_failing
check_eq "on-failure:2: exit code 3" 3 "$(psf rs onfail ExitCode)"
check_eq "on-failure:2: three runs logged" 3 "$(inp rs "$O" logs onfail | grep -c failing)"
check_eq "no: stays exited" exited "$(psf rs never State)"
check_eq "no: never restarted" 0 "$(psf rs never RestartCount)"

# A PID 1 without a TERM handler cannot get TERM: no 60 s grace wait.
start=$(date +%s)
check "stop of a PID 1 without handler succeeds" inp rs "$O" stop unless
check "it did not wait the 60 s grace period" test $(($(date +%s) - start)) -lt 30
unless_exited() { [ "$(psf rs unless State)" = exited ]; }
check "unless-stopped: stays stopped after stop" holds 1 unless_exited
check "stop of a PID 1 with a TERM handler" inp rs "$O" stop graceful
check_eq "it got TERM and exited by itself" 0 "$(psf rs graceful ExitCode)"
check "start brings it back" inp rs "$O" start graceful
check_eq "graceful: running again" running "$(psf rs graceful State)"

# kill -9 of the supervisor: containers live on, the next command adopts.
# Its workers (alive for a moment after a start) end with it and leave no
# exit record for a container that would get the same pid.
sup=$(cat "$ORCH_RUN/projects/rs/supervisor.pid")
p2=$(pid_of rs rs-always-1)
for _ in 1 2 3 4 5; do
	inp rs "$O" restart graceful >/dev/null
	workers=$(pgrep -P "$sup" -x orch-worker) && break
done
kill -9 "$sup"
wait_for 10 gone "$sup"
check "workers ran when the supervisor was killed" test -n "$workers"
for w in $workers; do
	wait_for 10 gone "$w"
	check "worker $w left no exit record" test ! -e "$ORCH_RUN/projects/rs/exits/$w"
done
check "the container outlives its supervisor" kill -0 "$p2"
check "ps works (and starts a supervisor)" inp rs "$O" ps
sup2=$(cat "$ORCH_RUN/projects/rs/supervisor.pid")
check "a new supervisor runs" kill -0 "$sup2"
check "it is another process" test "$sup2" != "$sup"
check_eq "it re-adopted the same process" "$p2" "$(pid_of rs rs-always-1)"
check_eq "no duplicate was started" 2 "$(inp rs "$O" ps -q | wc -l)"
check "stop the adopted graceful" inp rs "$O" stop graceful
check_eq "an adopted container's exit code is known (from the old keeper)" 0 "$(psf rs graceful ExitCode)"
kill -9 "$p2"
readopted_restart() { p=$(pid_of rs rs-always-1); [ "$p" != "$p2" ] && [ "$p" != 0 ] && kill -0 "$p" 2>/dev/null; }
check "restart policies apply again after re-adoption" wait_for 10 readopted_restart
check_eq "unless-stopped is still stopped" exited "$(psf rs unless State)"

pids=$("$PY" -c 'import json,sys; print(" ".join(str(c["pid"]) for c in json.load(open(sys.argv[1])).values() if c["pid"]))' "$ORCH_RUN/projects/rs/status.json")
check "down succeeds" inp rs "$O" down
check "the supervisor is gone" wait_for 10 gone "$sup2"
for p in $pids; do
	check "container process $p is gone" wait_for 10 gone "$p"
done
finish
