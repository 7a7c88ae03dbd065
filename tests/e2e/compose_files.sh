#!/bin/sh
# Which files and variables a project is loaded from, as docker compose
# decides it: the working directory's .env and the project directory's,
# COMPOSE_FILE, COMPOSE_PROFILES and COMPOSE_PROJECT_NAME set by a .env,
# extends and include across directories.
. "$(dirname "$0")/lib.sh"

# cfg DIR ARGS...: `orch config --format json` run in DIR; stderr in $T/err.
cfg() { (cd "$1" && shift && "$B/orch" "$@" config --format json 2>"$T/err"); }
# jq_py EXPR: evaluates EXPR over the JSON on stdin (as j).
jq_py() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

# ---- the project directory's .env under the working directory's ----------
N=$T/nested
mkdir -p "$N/sub"
cat > "$N/compose.yaml" <<'EOF'
services:
  echo:
    image: busybox
    command: echo $ROOT $SUB win=$WIN
EOF
printf 'ROOT=root\nWIN=root\n' > "$N/.env"
printf 'SUB=sub\nWIN=sub\n' > "$N/sub/.env"
check_eq "the project directory's .env" "['echo', 'root', 'win=root']" \
	"$(cfg "$N" | jq_py 'j["services"]["echo"]["command"]')"
check_eq "found from a subdirectory, its .env wins over the project's" \
	"['echo', 'root', 'sub', 'win=sub']" \
	"$(cfg "$N/sub" | jq_py 'j["services"]["echo"]["command"]')"
check_eq "the environment wins over both" "['echo', 'root', 'sub', 'win=env']" \
	"$(cd "$N/sub" && WIN=env "$B/orch" config --format json 2>/dev/null |
		jq_py 'j["services"]["echo"]["command"]')"

# ---- COMPOSE_FILE and COMPOSE_PROFILES from the working directory's .env ---
E=$T/dotenv
mkdir -p "$E/development"
cat > "$E/.env" <<'EOF'
COMPOSE_FILE="${COMPOSE_FILE:-development/compose.yaml}"
IMAGE_NAME=test
COMPOSE_PROFILES=test
EOF
cat > "$E/development/.env" <<'EOF'
IMAGE_NAME="${IMAGE_NAME:-backend}"
IMAGE_TAG="${IMAGE_TAG:-latest}"
EOF
cat > "$E/development/compose.yaml" <<'EOF'
services:
  backend:
    image: $IMAGE_NAME:$IMAGE_TAG
  test:
    profiles: [test]
    image: enabled:profile
EOF
out=$(cfg "$E")
check_eq "COMPOSE_FILE from .env, variables from both .env files" "test:latest" \
	"$(printf '%s' "$out" | jq_py 'j["services"]["backend"]["image"]')"
check_eq "COMPOSE_PROFILES from .env" "enabled:profile" \
	"$(printf '%s' "$out" | jq_py 'j["services"]["test"]["image"]')"
check_eq "project name from the project directory" development \
	"$(printf '%s' "$out" | jq_py 'j["name"]')"
check_eq "--project-directory reads that directory's .env" "backend:latest" \
	"$(cfg "$T" --project-directory "$E/development" |
		jq_py 'j["services"]["backend"]["image"]')"
printf 'COMPOSE_PROJECT_NAME=fromdotenv\n' >> "$E/.env"
check_eq "COMPOSE_PROJECT_NAME from .env" "fromdotenv fromdotenv-b" \
	"$(cd "$E" && printf 'services:\n  b:\n    image: x\n    container_name: ${COMPOSE_PROJECT_NAME}-b\n' |
		"$B/orch" -f - config --format json 2>/dev/null |
		jq_py 'j["name"] + " " + j["services"]["b"]["container_name"]')"

# ---- extends and include across directories --------------------------------
X=$T/xi
mkdir -p "$X/base/ctx" "$X/lib"
cat > "$X/compose.yaml" <<'EOF'
include:
  - path: lib/lib.yaml
services:
  web:
    extends:
      file: base/common.yaml
      service: app
    environment: [LEVEL=web]
EOF
cat > "$X/base/common.yaml" <<'EOF'
services:
  app:
    image: busybox
    build: ./ctx
    environment: [LEVEL=app, FROM=base]
EOF
cat > "$X/lib/lib.yaml" <<'EOF'
services:
  cache:
    image: ${CACHE_IMG}
    volumes: ["./data:/data"]
EOF
printf 'CACHE_IMG=redis:7\n' > "$X/lib/.env"
out=$(cfg "$X")
check_eq "extends: merged, build context relative to the base's file" \
	"$X/base/ctx {'FROM': 'base', 'LEVEL': 'web'}" \
	"$(printf '%s' "$out" | jq_py 'j["services"]["web"]["build"]["context"] + " " + str(j["services"]["web"]["environment"])')"
check_eq "include: its own .env and relative paths" "redis:7 $X/lib/data" \
	"$(printf '%s' "$out" | jq_py 'j["services"]["cache"]["image"] + " " + j["services"]["cache"]["volumes"][0]["source"]')"
printf 'services:\n  cache:\n    image: x\n    mem_limit: lots\n' > "$X/lib/lib.yaml"
cfg "$X" >/dev/null
check_eq "an error in an included file exits 1" 1 $?
check_match "and names that file's line and column" "lib/lib.yaml:4:16: " "$(cat "$T/err")"

# ---- a missing env_file fails only the commands that need its service -----
. "$(dirname "$0")/lifecycle_helpers.inc"
project envf <<'EOF'
services:
  ok:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
  needs:
    image: bb:1
    command: ["sleep", "3600"]
    network_mode: none
    env_file: missing.env
  soft:
    image: bb:1
    command: ["sh", "-c", "echo soft-$${SOFT:-unset}; exec sleep 3600"]
    network_mode: none
    env_file:
      - path: absent.env
        required: false
EOF
out=$(inp envf "$O" up -d 2>&1)
check_eq "up of every service fails" 1 $?
check_match "naming the env_file where it is written" \
	"compose.yaml:10:15: services.needs.env_file: env file: .*missing.env" "$out"
check "up of the other services works" inp envf "$O" up -d ok soft
out=$(inp envf "$O" -f compose.yaml ps --services 2>&1)
check_eq "ps works (with -f)" "ok soft" "$(printf '%s\n' "$out" | sort | tr '\n' ' ' | sed 's/ $//')"
soft_logged() { inp envf "$O" logs soft 2>/dev/null | grep -q soft-unset; }
check "logs work; required: false leaves the variable unset" until_true 10 soft_logged
mkdir -p "$T/nofile" && printf 'COMPOSE_PROJECT_NAME=envf\n' > "$T/nofile/.env"
check_eq "without a compose file, COMPOSE_PROJECT_NAME from .env names the project" "ok soft" \
	"$(cd "$T/nofile" && "$O" ps --services 2>/dev/null | sort | tr '\n' ' ' | sed 's/ $//')"
out=$(inp envf "$O" run --rm needs true 2>&1)
check_eq "run of that service fails" 1 $?
check_match "and says why" "missing.env" "$out"
out=$(inp envf "$O" -f compose.yaml down -t 0 2>&1)
check_eq "down works" 0 $?
check "nothing is left" test -z "$(inp envf "$O" ps -a -q 2>/dev/null)"
printf 'services:\n  a: [\n' > "$T/envf/broken.yaml"
out=$(inp envf "$O" -f broken.yaml ps 2>&1)
check_eq "ps on a broken -f file fails" 1 $?
check_match "naming the file" "broken.yaml:[0-9]+:[0-9]+: " "$out"
case $out in *"give a compose file"*) fail "never asking for a compose file given with -f" ;;
*) pass "never asking for a compose file given with -f" ;; esac

# Keys compose knows that have no effect here: one warning each, naming the
# service, key and position; the file still loads.  label_file works.
K=$T/keys
mkdir -p "$K"
printf 'com.example.a=1\ncom.example.b=two\n' > "$K/labels.env"
cat > "$K/compose.yaml" <<'EOF'
services:
  web:
    image: bb
    build:
      context: .
      platforms: [linux/amd64]
      entitlements: [network.host]
    deploy:
      placement: {constraints: [node.role==manager]}
      update_config: {parallelism: 2}
    label_file: ./labels.env
    labels: {com.example.b: "2"}
models:
  m: {model: ai/smollm2}
EOF
out=$(cfg "$K")
check_eq "a file with ignored keys loads" 0 "$?"
err=$(cat "$T/err")
for w in "6:7: warning: services.web.build: platforms is not supported and is ignored" \
	"7:7: warning: services.web.build: entitlements is not supported and is ignored" \
	"9:7: warning: services.web.deploy: placement is not supported and is ignored" \
	"10:7: warning: services.web.deploy: update_config is not supported and is ignored" \
	"13:1: warning: models is not supported and is ignored"; do
	check_match "warns: ${w#*warning: }" "compose.yaml:$w" "$err"
done
check_eq "one line each, and nothing else" 5 "$(echo "$err" | grep -c .)"
check_match "label_file's labels are the service's" '"com.example.a": ?"1"' "$out"
check_match "labels win over label_file" '"com.example.b": ?"2"' "$out"
cat > "$K/compose.yaml" <<'EOF'
services:
  ai:
    provider:
      type: model
EOF
out=$(cfg "$K")
check_eq "a provider service is refused" 1 "$?"
check_eq "with one error, at its type" \
	"$K/compose.yaml:4:13: services.ai.provider: provider services are not supported: orch runs containers only" \
	"$(cat "$T/err")"

# config prints values as compose does, and reads its own output back.
Y=$T/types
mkdir -p "$Y"
echo x > "$Y/s.txt"
cat > "$Y/compose.yaml" <<'EOF'
services:
  web:
    image: bb
    devices: ["/dev/fuse:/dev/fuse:rw", "/dev/null"]
    volumes:
      - type: bind
        source: ./d2
        target: /d2
    secrets:
      - source: s
        mode: 0440
secrets:
  s: {file: ./s.txt}
EOF
out=$(cd "$Y" && "$B/orch" config 2>&1)
check_match "a file mode prints as an octal string" 'mode: "0440"' "$out"
check_match "devices print in the long form" 'source: /dev/fuse +target: /dev/fuse +permissions: rw +- source: /dev/null +target: /dev/null +permissions: rwm' "$(echo $out)"
out2=$(cd "$Y" && sed "s#/dev/fuse:/dev/fuse:rw#/dev/fuse:r#" compose.yaml > c2.yaml && "$B/orch" -f c2.yaml config 2>&1)
check_match "HOST:PERMS keeps the host path as the target" "source: /dev/fuse +target: /dev/fuse +permissions: r " "$(echo $out2)"
case $out in *"bind: {}"*) fail "no empty bind: {}" "$out" ;; *) pass "no empty bind: {}" ;; esac
echo "$out" > "$Y/out.yaml"
check_eq "config reads its own output back unchanged" "$out" "$("$B/orch" -f "$Y/out.yaml" config 2>&1)"

# A failed extends is said once: not followed by "neither an image nor a
# build context" for the service it left without one.
Z=$T/badext
mkdir -p "$Z"
cat > "$Z/compose.yaml" <<'EOF'
services:
  web:
    extends:
      file: nope.yaml
      service: base
  api:
    extends: {service: missing}
  plain: {}
EOF
cfg "$Z" >/dev/null
err=$(cat "$T/err")
check_match "the missing file is named" 'compose.yaml:4:13: reading .*nope.yaml' "$err"
check_match "the missing service is named" 'compose.yaml:7:24: services.api.extends: no service "missing"' "$err"
check_eq "and nothing else about them" 0 "$(echo "$err" | grep -c 'service "web" has neither\|service "api" has neither')"
check_match "a service with no error of its own still gets it" 'service "plain" has neither an image nor a build context' "$err"

finish
