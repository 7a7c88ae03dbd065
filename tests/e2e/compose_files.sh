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

finish
