#!/bin/sh
# develop.watch, the dev-environment loop: `orch watch` starts the project
# and follows its rules on inotify, debounced.  sync: an edited file
# reaches the running container without a restart, a new directory and a
# deletion too, an ignored file does not; sync+restart: synced, then the
# container restarted; rebuild: the image built again and the container
# recreated.  A symlink the container plants does not lead a sync out of
# it.  `up --watch` watches too, and Ctrl-C stops its containers.  Bad
# rules are refused at config time with file:line:col.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"
on_exit 'kill $WATCH 2>/dev/null'

mkdir -p "$T/w/src/keep" "$T/w/conf" "$T/w/img"
echo v1 >"$T/w/src/app.txt"
echo c1 >"$T/w/conf/app.conf"
echo build-1 >"$T/w/img/version.txt"
printf 'FROM bb:1\nCOPY version.txt /version.txt\n' >"$T/w/img/Dockerfile"
project w <<'EOF'
services:
  app:
    image: bb:1
    command: ["sleep", "1000"]
    develop:
      watch:
        - action: sync
          path: ./src
          target: /app
          ignore: ["*.tmp", "cache/"]
        - action: sync+restart
          path: ./conf/app.conf
          target: /etc/app.conf
  web:
    build: ./img
    command: ["sleep", "1000"]
    develop:
      watch:
        - action: rebuild
          path: ./img
EOF
in_ctr() { inp w "$O" exec -T "$@" 2>/dev/null; }
(cd "$T/w" && exec "$O" watch >"$T/watch.log" 2>&1) &
WATCH=$!
until_true 60 grep -q "Watch enabled" "$T/watch.log"
check_match "orch watch started the project and watches" "Watch enabled" "$(cat "$T/watch.log")"
until_true 10 sh -c "[ \"\$(cd '$T/w' && '$O' ps -q | wc -l)\" = 2 ]"

echo v2 >"$T/w/src/app.txt"
until_true 10 sh -c "cd '$T/w' && '$O' exec -T app cat /app/app.txt 2>/dev/null | grep -qx v2"
check_eq "sync: an edited file reaches the container" v2 "$(in_ctr app cat /app/app.txt)"
check_match "and says so" 'Syncing service "app" after 1 change' "$(cat "$T/watch.log")"
pid1=$(pid_of w w-app-1)
mkdir -p "$T/w/src/new/deep"
echo deep >"$T/w/src/new/deep/f.txt"
echo ignored >"$T/w/src/skip.tmp"
mkdir -p "$T/w/src/cache" && echo ignored >"$T/w/src/cache/c"
until_true 10 sh -c "cd '$T/w' && '$O' exec -T app cat /app/new/deep/f.txt 2>/dev/null | grep -qx deep"
check_eq "a new directory, with what it holds" deep "$(in_ctr app cat /app/new/deep/f.txt)"
check "an ignored file is not synced" sh -c "! (cd '$T/w' && '$O' exec -T app test -e /app/skip.tmp)"
check "nor what an ignored directory holds" sh -c "! (cd '$T/w' && '$O' exec -T app test -e /app/cache/c)"
rm "$T/w/src/app.txt"
until_true 10 sh -c "! (cd '$T/w' && '$O' exec -T app test -e /app/app.txt)"
check "a deleted file is deleted in the container" sh -c "! (cd '$T/w' && '$O' exec -T app test -e /app/app.txt)"
check_eq "sync does not restart the container" "$pid1" "$(pid_of w w-app-1)"

# The container makes /app/evil a link to the host's /; a sync through it
# must stay in the container.
in_ctr app ln -s / /app/evil
mkdir -p "$T/w/src/evil"
echo nope >"$T/w/src/evil/escaped"
until_true 10 sh -c "cd '$T/w' && '$O' exec -T app test -e /escaped"
check "a link the container planted resolves in the container" in_ctr app test -e /escaped
check "and does not lead a sync out of it" test ! -e /escaped
rm -rf "$T/w/src/evil"

echo c2 >"$T/w/conf/app.conf"
until_true 15 sh -c "[ \"\$(cd '$T/w' && '$O' exec -T app cat /etc/app.conf 2>/dev/null)\" = c2 ] && [ \"$pid1\" != \"\$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"w-app-1\"][\"pid\"])' '$ORCH_RUN/projects/w/status.json')\" ]"
check_eq "sync+restart: the file is synced" c2 "$(in_ctr app cat /etc/app.conf)"
check "and the container restarted" test "$pid1" != "$(pid_of w w-app-1)"

check_eq "before a rebuild: the first build" build-1 "$(in_ctr web cat /version.txt)"
echo build-2 >"$T/w/img/version.txt"
until_true 60 sh -c "cd '$T/w' && '$O' exec -T web cat /version.txt 2>/dev/null | grep -qx build-2"
check_eq "rebuild: the image is built again and the container recreated" build-2 "$(in_ctr web cat /version.txt)"
check_match "and says so" 'Rebuilding service "web"' "$(cat "$T/watch.log")"
kill -INT $WATCH
until_true 10 sh -c "! kill -0 $WATCH 2>/dev/null"
check "Ctrl-C ends orch watch" sh -c "! kill -0 $WATCH 2>/dev/null"
check_eq "and the project keeps running" 2 "$(inp w "$O" ps -q | wc -l)"
check "down" inp w "$O" down

# up --watch: up, then the watch; Ctrl-C stops the containers.
mkdir -p "$T/w/src" && echo v3 >"$T/w/src/app.txt"
(cd "$T/w" && exec "$O" up --watch app >"$T/upwatch.log" 2>&1) &
WATCH=$!
until_true 30 grep -q "Watch enabled" "$T/upwatch.log"
echo v4 >"$T/w/src/app.txt"
until_true 10 sh -c "cd '$T/w' && '$O' exec -T app cat /app/app.txt 2>/dev/null | grep -qx v4"
check_eq "up --watch syncs" v4 "$(in_ctr app cat /app/app.txt)"
kill -INT $WATCH
until_true 20 sh -c "! kill -0 $WATCH 2>/dev/null"
check_eq "Ctrl-C on up --watch stops its containers" exited "$(psf w app State)"
check "down" inp w "$O" down

# initial_sync (its patterns applied), include, restart, sync+exec.
mkdir -p "$T/w2/src/node_modules" "$T/w2/cfg"
echo first >"$T/w2/src/main.js"
echo notes >"$T/w2/src/README.md"
echo dep >"$T/w2/src/node_modules/dep.js"
echo r1 >"$T/w2/cfg/r.conf"
project w2 <<'EOF'
services:
  app:
    image: bb:1
    command: ["sleep", "1000"]
    develop:
      watch:
        - action: sync+exec
          path: ./src
          target: /app
          include: ["*.js"]
          ignore: ["node_modules/"]
          initial_sync: true
          exec:
            command: ["sh", "-c", "ls /app | xargs > /tmp/seen; echo $$MARK >> /tmp/seen"]
            environment: {MARK: executed}
        - action: restart
          path: ./cfg
EOF
(cd "$T/w2" && exec "$O" watch >"$T/watch2.log" 2>&1) &
WATCH=$!
until_true 60 grep -q "Watch enabled" "$T/watch2.log"
w2() { inp w2 "$O" exec -T app "$@" 2>/dev/null; }
until_true 10 sh -c "cd '$T/w2' && '$O' exec -T app test -e /app/main.js 2>/dev/null"
check_eq "initial_sync: what the rule covers is there at start" first "$(w2 cat /app/main.js)"
check "not what it ignores" sh -c "! (cd '$T/w2' && '$O' exec -T app test -e /app/node_modules)"
check "nor what include leaves out" sh -c "! (cd '$T/w2' && '$O' exec -T app test -e /app/README.md)"
echo second >"$T/w2/src/main.js"
until_true 10 sh -c "cd '$T/w2' && '$O' exec -T app cat /tmp/seen 2>/dev/null | grep -q executed"
check_eq "sync+exec: synced" second "$(w2 cat /app/main.js)"
check_eq "then its command ran in the container, with its environment" "main.js executed" "$(w2 cat /tmp/seen | xargs)"
echo changed >"$T/w2/src/README.md"
echo other >"$T/w2/src/extra.js"
until_true 10 sh -c "cd '$T/w2' && '$O' exec -T app test -e /app/extra.js 2>/dev/null"
check "a file include leaves out is not synced" sh -c "! (cd '$T/w2' && '$O' exec -T app test -e /app/README.md)"
pid2=$(pid_of w2 w2-app-1)
echo r2 >"$T/w2/cfg/r.conf"
until_true 15 sh -c "[ \"$pid2\" != \"\$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"w2-app-1\"][\"pid\"])' '$ORCH_RUN/projects/w2/status.json')\" ]"
check "restart: the container restarted" test "$pid2" != "$(pid_of w2 w2-app-1)"
check_match "and says so" 'Restarting service "app" after 1 change' "$(cat "$T/watch2.log")"
check "nothing of cfg was synced" sh -c "! (cd '$T/w2' && '$O' exec -T app test -e /r.conf)"
kill -INT $WATCH
until_true 10 sh -c "! kill -0 $WATCH 2>/dev/null"
check "down w2" inp w2 "$O" down

project wnone <<'EOF'
services:
  app: {image: bb:1, command: ["sleep", "1000"]}
EOF
out=$(inp wnone "$O" watch --no-up 2>&1)
check_eq "watch with no rules: exit 1" 1 $?
check_match "says so" "none of the selected services has develop.watch rules" "$out"

project wbad <<'EOF'
services:
  app:
    image: bb:1
    develop:
      watch:
        - action: copy
          path: ./src
        - action: sync
          path: ./src
        - path: ./src
          target: /x
        - action: sync+exec
          path: ./src
          target: /x
        - action: sync
          path: ./src
          target: /x
          exec: {command: ["true"]}
EOF
out=$(inp wbad "$O" config 2>&1)
check_eq "bad watch rules: config exits 1" 1 $?
check_match "an unknown action" 'compose.yaml:6:19: .*unknown watch action "copy"' "$out"
check_match "sync without a target" "compose.yaml:8:11: .*a sync rule needs an absolute target" "$out"
check_match "a rule without an action" "compose.yaml:10:11: .*a watch rule needs an action" "$out"
check_match "sync+exec without exec" "compose.yaml:12:11: .*a sync\\+exec rule needs exec" "$out"
check_match "exec on a sync rule" "compose.yaml:18:17: .*exec is for a sync\\+exec rule" "$out"
out=$(inp w "$O" config 2>&1)
check_match "config prints the rules" "develop:
      watch:
        - action: sync" "$out"
finish
