#!/bin/bash
# A service's secrets and configs, as compose mounts them: at
# /run/secrets/NAME and /NAME (or a target of their own), read-only, from
# a file, an environment variable or inline content, with the owner and
# mode asked for; a secret file only the host's root reads is read by
# the container's root (remapped or not); a config's file is bound (edits
# show).  A source that cannot be had fails up, naming it, and leaves
# nothing; down leaves nothing of them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"

project sec <<'Y'
services:
  app:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
    secrets:
      - token
      - source: token
        target: custom
      - source: fromenv
        target: /etc/abs-secret
        uid: "1000"
        gid: "1001"
        mode: 0400
    configs:
      - inline
      - source: cfgfile
        target: /etc/app.conf
      - source: cfgfile
        target: copied.conf
        mode: 0640
secrets:
  token:
    file: ./token.txt
  fromenv:
    environment: SEC_VALUE
configs:
  inline:
    content: |
      key=${SEC_INLINE:-value}
  cfgfile:
    file: ./app.conf
Y
printf 's3cr3t\n' > "$T/sec/token.txt"
chmod 600 "$T/sec/token.txt"
printf 'first\n' > "$T/sec/app.conf"
cx() { inp sec "$O" exec -T app "$@" 2>&1; }
check "up with secrets and configs" quiet inp sec env SEC_VALUE=from-env "$O" up -d
check_eq "a secret at /run/secrets/NAME" "s3cr3t" "$(cx cat /run/secrets/token)"
check_eq "owned by the container's root, mode 0444 (a 0600 file of the host's root)" \
	"-r--r--r-- 0 0" "$(cx stat -c '%A %u %g' /run/secrets/token)"
check_eq "a relative target is under /run/secrets" "s3cr3t" "$(cx cat /run/secrets/custom)"
check_eq "from the environment, at an absolute target" "from-env" "$(cx cat /etc/abs-secret)"
check_eq "with the uid, gid and mode asked for" "-r-------- 1000 1001" \
	"$(cx stat -c '%A %u %g' /etc/abs-secret)"
check_eq "inline config content at /NAME" "key=value" "$(cx cat /inline)"
check_eq "a config file at its target" "first" "$(cx cat /etc/app.conf)"
check_eq "a config with a mode, relative target under /" "-rw-r----- first" \
	"$(cx sh -c 'stat -c %A /copied.conf; cat /copied.conf' | xargs)"
check "the container's root cannot write a secret" \
	fails inp sec "$O" exec -T app sh -c 'echo x > /run/secrets/token'
check "nor a config" fails inp sec "$O" exec -T app sh -c 'echo x > /etc/app.conf'
check_eq "which are unchanged" "s3cr3t first" \
	"$(cx cat /run/secrets/token /etc/app.conf | xargs)"
printf 'second\n' > "$T/sec/app.conf.new"
cat "$T/sec/app.conf.new" > "$T/sec/app.conf"
check_eq "a config's file is bound: an edit shows" "second" "$(cx cat /etc/app.conf)"
check_match "the secret's copy is on ORCH_RUN, not the disk" "s3cr3t" \
	"$(cat "$ORCH_RUN"/projects/sec/etc/*/files/* 2>/dev/null)"
check "down" quiet inp sec "$O" down
check_eq "down leaves no copy" "" "$(find "$ORCH_RUN/projects/sec" -path '*files*' 2>/dev/null)"

# An unset variable, an external secret, a missing file: up fails, says
# which, and leaves no container.
check_fails_clean() {
	local p=$1 d=$2 want=$3
	local out
	out=$(inp "$p" "$O" up -d 2>&1)
	local rc=$?
	check "$d: up fails" test "$rc" -ne 0
	check_match "$d: says so" "$want" "$out"
	check_eq "$d: no container left" "" "$(inp "$p" "$O" ps -a -q)"
}
check_fails_clean sec "unset variable" 'secret fromenv: environment variable SEC_VALUE is not set'
rm "$T/sec/token.txt"
check_fails_clean sec "missing file" "secret token: .*token.txt: No such file"
project ext <<'Y'
services:
  app:
    image: bb:1
    command: ["true"]
    network_mode: none
    secrets: [swarm]
secrets:
  swarm:
    external: true
Y
check_fails_clean ext "external secret" "secret swarm is external"
finish
