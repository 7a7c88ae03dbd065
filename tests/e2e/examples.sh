#!/bin/sh
# The example stacks of the README and examples/, as a user runs them.
. "$(dirname "$0")/lib.sh"
O=$B/orch
cd "$TOP"
"$O" image import "$FIXTURE_TAR" busybox:latest >/dev/null

leftovers() {
	{
		ip -o link | grep -v ': lo:'
		nft list table inet orch 2>/dev/null | grep -E 'elements|jump n_|dnat'
		grep -E "$T|overlay" /proc/mounts
		ls "$ORCH_RUN/projects" 2>/dev/null
		ls "$ORCH_RUN/runtime" 2>/dev/null | grep -vx seccomp # the filter cache
	} | sort
}
before=$(leftovers)

# --- compose.example.yaml, through make demo's script ----------------------
F=compose.example.yaml
check_eq "global -f before config is honoured" "app db migrate web worker" "$("$O" -f "$F" config --services | sort | tr '\n' ' ' | sed 's/ $//')"
on_exit "$O" -f "$TOP/$F" down -v -t 1
out=$(examples/demo.sh 2>&1)
check "demo script succeeds" [ $? -eq 0 ]
check_match "demo shows the app's answer through port 8080" 'hello-from-orch \(served by' "$out"
check_match "demo shows link-only isolation" 'worker -> app: refused' "$out"
check "web cannot reach db (different networks)" sh -c '! "$1" -f "$2" exec -T web timeout 2 wget -q -O /dev/null "http://db:7000/cgi-bin/kv?get=greeting" 2>/dev/null' _ "$O" "$F"
check "app reaches db by name (linked)" "$O" -f "$F" exec -T app timeout 2 wget -q -O /dev/null "http://db:7000/cgi-bin/kv?get=greeting"
mig=$("$O" -f "$F" ps -a --format json | python3 -c '
import json,sys
for l in sys.stdin:
    l=l.strip()
    if not l: continue
    for c in (json.loads(l) if l.startswith("[") else [json.loads(l)]):
        if c["Service"]=="migrate": print(c["State"], c["ExitCode"])')
check_eq "migrate ran once and exited 0" "exited 0" "$mig"
"$O" -f "$F" down -v -t 1 >/dev/null 2>&1
check "demo stack: down -v exits 0" [ $? -eq 0 ]
check_eq "demo stack: nothing left after down -v" "$before" "$(leftovers)"
check "demo stack: named volume removed by down -v" sh -c '! "$1" volume ls -q | grep -q orch-example_data' _ "$O"

# --- internal network -----------------------------------------------------
F=examples/internal-network/compose.yaml
on_exit "$O" -f "$TOP/$F" down -t 1
"$O" -f "$F" up -d --wait --wait-timeout 30 >/dev/null 2>&1
check "internal-network: up --wait succeeds" [ $? -eq 0 ]
check_match "internal-network: api answers on 127.0.0.1:18000" 'internal-network example' "$(timeout 3 wget -q -O - http://127.0.0.1:18000/ 2>&1)"
check_match "internal-network: api reaches db by its alias" 'internal-network example' "$("$O" -f "$F" exec -T api timeout 2 wget -q -O - http://database:5432/ 2>&1)"
check "internal-network: db has no default route" sh -c '! "$1" -f "$2" exec -T db ip route | grep -q ^default' _ "$O" "$F"
check "internal-network: api has a default route" sh -c '"$1" -f "$2" exec -T api ip route | grep -q ^default' _ "$O" "$F"
"$O" -f "$F" down -t 1 >/dev/null 2>&1
check_eq "internal-network: nothing left after down" "$before" "$(leftovers)"

# --- test-teardown runner ---------------------------------------------------
out=$(ORCH=$O examples/test-teardown/run-tests.sh 2>&1)
rc=$?
check_eq "test-teardown: the runner's tests pass" "0" "$rc"
check_match "test-teardown: runner reports its totals" '^3 passed, 0 failed$' "$(printf '%s\n' "$out" | tail -1)"
check_eq "test-teardown: nothing left after the runner" "$before" "$(leftovers)"
check "test-teardown: its volume is gone" sh -c '! "$1" volume ls -q | grep -q teardown-demo_store' _ "$O"

# --- limits -----------------------------------------------------------------
F=examples/limits/compose.yaml
on_exit "$O" -f "$TOP/$F" down -v -t 1
"$O" -f "$F" up -d --wait --wait-timeout 30 >/dev/null 2>&1
check "limits: up succeeds" [ $? -eq 0 ]
E="$O -f $F exec -T uploader"
check_match "limits: runs as uid 1000" '^1000$' "$($E id -u)"
check_match "limits: no capabilities" 'CapEff:[[:space:]]*0000000000000000' "$($E cat /proc/self/status)"
check_match "limits: / is read-only" 'Read-only file system' "$($E touch /etc/x 2>&1)"
check "limits: /tmp is writable" $E touch /tmp/x
check_match "limits: the 16m volume refuses to grow past its limit" 'No space left on device' "$("$O" -f "$F" exec -T -u 0 uploader dd if=/dev/zero of=/uploads/big bs=1M count=64 2>&1)"
"$O" -f "$F" down -v -t 1 >/dev/null 2>&1
check_eq "limits: nothing left after down -v" "$before" "$(leftovers)"
finish
