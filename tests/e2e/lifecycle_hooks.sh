#!/bin/sh
# Lifecycle hooks as compose runs them: post_start after each start by orch
# (up, start, restart) with its user, working_dir, environment and
# privileged; pre_start in a one-off container of the service before it
# starts; pre_stop before each stop (stop, restart, down), its failure
# said but not stopping the stop; a failing post_start fails up and names
# the container, which is kept for logs and ps; bad hooks refused at config
# time with file:line:col.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"

# Owned by a user: in a user namespace nothing of the host's root is
# writable, whatever its mode.
mkdir -p "$T/out" && chmod 777 "$T/out" && chown 1000:1000 "$T/out"
project hk <<EOF
services:
  app:
    image: bb:1
    command: ["sleep", "1000"]
    volumes: ["$T/out:/out"]
    post_start:
      - command: sh -c 'echo "\$\$(id -u) \$\$(pwd) \$\$GREETING" >>/out/post_start'
        user: "1000"
        working_dir: /tmp
        environment: {GREETING: hello}
      - command: ["sh", "-c", "grep CapEff /proc/self/status >/out/caps"]
        privileged: true
      - command: ["sh", "-c", "grep CapEff /proc/self/status >/out/caps-plain"]
    pre_stop:
      - command: ["sh", "-c", "echo stopping >>/out/pre_stop"]
EOF
out=$(inp hk "$O" up -d 2>&1)
check_eq "up with hooks: exit 0" 0 $?
check_eq "post_start ran once, as its user, in its working_dir, with its environment" \
	"1000 /tmp hello" "$(cat "$T/out/post_start" 2>/dev/null)"
caps() { awk '{print $2}' "$T/out/$1" 2>/dev/null; }
check_eq "a privileged hook has every capability orch holds" \
	"$(awk '/^CapPrm/ {print $2}' /proc/self/status)" "$(caps caps)"
if [ -n "$(caps caps-plain)" ] && [ "$(caps caps-plain)" != "$(caps caps)" ]; then
	pass "a plain hook has the container's capabilities only"
else
	fail "a plain hook has the container's capabilities only"
fi
check "pre_stop did not run yet" test ! -e "$T/out/pre_stop"
check "stop" inp hk "$O" stop
check_eq "pre_stop ran before the stop" stopping "$(cat "$T/out/pre_stop" 2>/dev/null)"
check "start" inp hk "$O" start
check_eq "post_start ran again on start" 2 "$(wc -l <"$T/out/post_start")"
check "restart" inp hk "$O" restart
check_eq "restart: pre_stop ran" 2 "$(wc -l <"$T/out/pre_stop")"
check_eq "restart: post_start ran" 3 "$(wc -l <"$T/out/post_start")"
check_eq "and the container runs" running "$(psf hk app State)"
check "down" inp hk "$O" down
check_eq "down: pre_stop ran" 3 "$(wc -l <"$T/out/pre_stop")"

project hkfail <<'EOF'
services:
  app:
    image: bb:1
    command: ["sleep", "1000"]
    post_start:
      - command: ["sh", "-c", "echo broken hook >&2; exit 3"]
    pre_stop:
      - command: ["false"]
EOF
out=$(inp hkfail "$O" up -d 2>&1)
check_eq "a failing post_start fails up" 1 $?
check_match "and says which container, which hook and its code" \
	"hkfail-app-1: post_start hook \`sh -c echo broken hook >&2; exit 3\` exited with code 3" "$out"
check_match "the hook's own output is shown" "broken hook" "$out"
check_eq "the container is kept, for logs and ps" running "$(psf hkfail app State)"
out=$(inp hkfail "$O" down 2>&1)
check_eq "a failing pre_stop does not stop down" 0 $?
check_match "but is said" "pre_stop hook \`false\` exited with code 1" "$out"
check_eq "down removed the container" "" "$(inp hkfail "$O" ps -aq)"

# pre_start: a one-off container of the service (its image, volumes and
# environment) runs each hook to its end before the service starts.
project hkpre <<'EOF'
services:
  app:
    image: bb:1
    command: ["sh", "-c", "cat /data/prepared; exec sleep 1000"]
    environment: {SVC: app-env}
    volumes: ["prep:/data"]
    pre_start:
      - command: ["sh", "-c", "echo \"$$SVC $$STEP $$(id -u)\" >/data/prepared"]
        environment: {STEP: one}
  broken:
    image: bb:1
    command: ["sleep", "1000"]
    pre_start:
      - command: ["sh", "-c", "exit 4"]
    profiles: [broken]
volumes:
  prep:
EOF
out=$(inp hkpre "$O" up -d 2>&1)
check_eq "up with a pre_start hook: exit 0" 0 $?
until_true 10 sh -c "cd '$T/hkpre' && '$O' logs app 2>/dev/null | grep -q 'app-env one 0'"
check_match "the service saw what its pre_start prepared, with the service's and the hook's environment" \
	"app-env one 0" "$(inp hkpre "$O" logs app 2>&1)"
check_eq "the hook's one-off container is gone" "1" "$(inp hkpre "$O" ps -aq | wc -l)"
out=$(inp hkpre "$O" --profile broken up -d broken 2>&1)
check_eq "a failing pre_start fails up" 1 $?
check_match "and names the service, the hook and its code" \
	"service \"broken\": pre_start hook \`sh -c exit 4\` exited with code 4" "$out"
check_eq "the service did not start" "" "$(psf hkpre broken State | grep running)"
check "down" inp hkpre "$O" --profile broken down -v

project hkbad <<'EOF'
services:
  app:
    image: bb:1
    post_start:
      - user: root
      - command: ["true"]
        working_dir: relative
        colour: blue
    pre_stop: {command: ["true"]}
EOF
out=$(inp hkbad "$O" config 2>&1)
check_eq "bad hooks: config exits 1" 1 $?
check_match "a hook without a command" "compose.yaml:5:9: .*a hook needs a command" "$out"
check_match "a relative working_dir" "compose.yaml:7:22: .*working_dir must be an absolute path" "$out"
check_match "an unknown hook key" "compose.yaml:8:9: .*unknown key \"colour\"" "$out"
check_match "hooks not given as a list" "compose.yaml:9:15: .*must be a list of hooks" "$out"
out=$(inp hk "$O" config 2>&1)
check_match "config prints the hooks back" "post_start:
      - command:" "$out"
finish
