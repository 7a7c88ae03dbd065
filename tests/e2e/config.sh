#!/bin/sh
# orch config on files shaped like real compose files: the normalized JSON
# a compose user expects, and invalid files failing with exit 1, nothing on
# stdout and file:line on stderr.
. "$(dirname "$0")/lib.sh"

D=$T/proj
mkdir -p "$D/html" "$D/app"
cd "$D" || exit 1

cat > .env <<'EOF'
# defaults for the stack
WEB_PORT=8080
PG_VERSION=16
EOF
cat > app.env <<'EOF'
# application settings
export APP_MODE=production
DB_HOST="db"
GREETING='hello $USER'
OVERRIDDEN=from-file
EOF
cat > compose.yaml <<'EOF'
name: shop
x-logging: &logging
  driver: json-file
  options:
    max-size: 10m
services:
  web:
    image: nginx:1.25
    ports:
      - "${WEB_PORT}:80"
      - "127.0.0.1:8443:443/tcp"
      - "5353:53/udp"
    volumes:
      - ./html:/usr/share/nginx/html:ro
    depends_on:
      api:
        condition: service_healthy
    networks: [front]
    logging: *logging
    restart: unless-stopped
  api:
    build: ./app
    env_file: app.env
    environment:
      OVERRIDDEN: from-environment
      PG_URL: postgres://db:5432/shop
    depends_on: [db]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://localhost:3000/health"]
      interval: 90s
      timeout: 5s
      retries: 3
      start_period: 1m
    networks: [front, back]
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 256m}
  db:
    image: postgres:${PG_VERSION}
    volumes:
      - pgdata:/var/lib/postgresql/data
    networks:
      back:
        ipv4_address: 10.9.0.10
    stop_grace_period: 1m30s
networks:
  front:
  back:
    internal: true
    ipam:
      config:
        - subnet: 10.9.0.0/24
volumes:
  pgdata:
EOF

out=$("$B/orch" config --format json 2>"$T/err")
check_eq "config exits 0 on a valid file" 0 $?
check_eq "no error output" "" "$(cat "$T/err")"
printf '%s' "$out" > "$T/out.json"

# py EXPR: evaluates EXPR with the JSON as j and prints it.
py() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($1)" "$T/out.json"; }

check_eq "project name from name:" shop "$(py 'j["name"]')"
check_eq "ports in long form" \
	"[{'mode': 'ingress', 'target': 80, 'published': '8080', 'protocol': 'tcp'}, {'mode': 'ingress', 'host_ip': '127.0.0.1', 'target': 443, 'published': '8443', 'protocol': 'tcp'}, {'mode': 'ingress', 'target': 53, 'published': '5353', 'protocol': 'udp'}]" \
	"$(py 'j["services"]["web"]["ports"]')"
check_eq "published is a string" str "$(py 'type(j["services"]["web"]["ports"][0]["published"]).__name__')"
check_eq "depends_on map with condition" "service_healthy" \
	"$(py 'j["services"]["web"]["depends_on"]["api"]["condition"]')"
check_eq "depends_on list becomes a map" "{'condition': 'service_started', 'required': True}" \
	"$(py 'j["services"]["api"]["depends_on"]["db"]')"
check_eq "environment merged from env_file and environment" \
	"{'APP_MODE': 'production', 'DB_HOST': 'db', 'GREETING': 'hello \$\$USER', 'OVERRIDDEN': 'from-environment', 'PG_URL': 'postgres://db:5432/shop'}" \
	"$(py 'j["services"]["api"]["environment"]')"
check_eq "healthcheck durations as compose prints them" "1m30s 5s 1m0s 3" \
	"$(py '" ".join(str(j["services"]["api"]["healthcheck"][k]) for k in ("interval","timeout","start_period","retries"))')"
check_eq "stop_grace_period normalized" 1m30s "$(py 'j["services"]["db"]["stop_grace_period"]')"
check_eq "bind mount made absolute" "$D/html" "$(py 'j["services"]["web"]["volumes"][0]["source"]')"
check_eq "bind mount read only" True "$(py 'j["services"]["web"]["volumes"][0]["read_only"]')"
check_eq "named volume long form" "volume pgdata" \
	"$(py 'j["services"]["db"]["volumes"][0]["type"] + " " + j["services"]["db"]["volumes"][0]["source"]')"
check_eq "build context absolute" "$D/app" "$(py 'j["services"]["api"]["build"]["context"]')"
check_eq ".env interpolation" "postgres:16" "$(py 'j["services"]["db"]["image"]')"
check_eq "network names prefixed" "shop_front shop_back" \
	"$(py 'j["networks"]["front"]["name"] + " " + j["networks"]["back"]["name"]')"
check_eq "volume names prefixed" shop_pgdata "$(py 'j["volumes"]["pgdata"]["name"]')"
check_eq "anchored logging merged in" 10m "$(py 'j["services"]["web"]["logging"]["options"]["max-size"]')"
check_eq "deploy limits" "0.5 268435456" \
	"$(py 'j["services"]["api"]["deploy"]["resources"]["limits"]["cpus"] + " " + str(j["services"]["api"]["deploy"]["resources"]["limits"]["memory"])')"

# The default YAML output parses back to the same thing through orch.
"$B/orch" config > "$T/out.yaml" 2>/dev/null
check_eq "yaml output exits 0" 0 $?
"$B/orch" config -f "$T/out.yaml" -p shop --format json > "$T/again.json" 2>"$T/err"
check_eq "yaml output loads again" 0 $?
check_eq "yaml round trip keeps ports" "$(py 'j["services"]["web"]["ports"]')" \
	"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["services"]["web"]["ports"])' "$T/again.json")"
check_eq "yaml round trip keeps literal dollars" "$(py 'j["services"]["api"]["environment"]')" \
	"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["services"]["api"]["environment"])' "$T/again.json")"

check_eq "--services" "api db web" "$("$B/orch" config --services | tr '\n' ' ' | sed 's/ $//')"
check_eq "--volumes" pgdata "$("$B/orch" config --volumes)"
check_eq "--networks" "back front" "$("$B/orch" config --networks | tr '\n' ' ' | sed 's/ $//')"
check_eq "-q prints nothing" "" "$("$B/orch" config -q)"
check_eq "-p overrides name:" other "$("$B/orch" config -p other --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])')"
"$B/orch" config --format xml >/dev/null 2>&1
check_eq "bad flag value is a usage error" 2 $?

# Override file and discovery from a subdirectory.
cat > compose.override.yaml <<'EOF'
services:
  web:
    environment:
      DEBUG: "1"
    ports:
      - "9090:90"
EOF
mkdir -p sub
check_eq "found from a subdirectory with its .env and override (ports appended)" "4 8080" \
	"$(cd sub && "$B/orch" config --format json 2>/dev/null | python3 -c 'import json,sys; p=json.load(sys.stdin)["services"]["web"]["ports"]; print(len(p), p[0]["published"])')"
rm compose.override.yaml

# -f - reads standard input; environment from the process wins over .env.
got=$(printf 'services:\n  s:\n    image: busybox\n    ports: ["${WEB_PORT}:80"]\n' |
	WEB_PORT=7000 "$B/orch" config -f - -p stdinproj --format json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["services"]["s"]["ports"][0]["published"])')
check_eq "-f - with the environment over .env" 7000 "$got"

# Profiles.
cat > prof.yaml <<'EOF'
services:
  app: {image: busybox}
  debug: {image: busybox, profiles: [debug]}
EOF
check_eq "profile off by default" app "$("$B/orch" config -f prof.yaml --services | tr '\n' ' ' | sed 's/ $//')"
check_eq "--profile enables" "app debug" "$("$B/orch" config -f prof.yaml --profile debug --services | tr '\n' ' ' | sed 's/ $//')"

# ---- invalid files: exit 1, nothing on stdout, file:line on stderr -------
# bad NAME LINE TEXT: the file fails and stderr names bad-NAME.yaml:LINE.
bad() {
	f=$D/bad-$1.yaml
	printf '%b' "$3" > "$f"
	"$B/orch" config -f "$f" > "$T/bad.out" 2> "$T/bad.err"
	rc=$?
	if [ $rc -eq 1 ] && [ ! -s "$T/bad.out" ] && grep -q "^$f:$2:" "$T/bad.err"; then
		pass "invalid: $1"
	else
		fail "invalid: $1" "rc=$rc stdout=[$(cat "$T/bad.out")] stderr=[$(cat "$T/bad.err")]"
	fi
}
bad syntax 4 'services:\n  web:\n    image: x\n     ports: y\n'
bad duplicate 4 'services:\n  web:\n    image: a\n    image: b\n'
bad type 3 'services:\n  web:\n    image: {a: 1}\n'
bad unknown-key 3 'services:\n  web:\n    imgae: x\n'
bad unknown-top 1 'servics:\n  web: {image: x}\n'
bad undefined-service 4 'services:\n  web:\n    image: x\n    depends_on: [db]\n'
bad undefined-network 4 'services:\n  web:\n    image: x\n    networks: [nope]\n'
bad undefined-volume 4 'services:\n  web:\n    image: x\n    volumes: ["data:/d"]\n'
bad cycle 3 'services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n'
bad port-syntax 4 'services:\n  web:\n    image: x\n    ports: ["80:http"]\n'
bad port-range 4 'services:\n  web:\n    image: x\n    ports: ["99999:80"]\n'
bad port-twice 5 'services:\n  a: {image: x, ports: ["80:80"]}\n  b:\n    image: x\n    ports: ["80:81"]\n'
bad subnet-overlap 8 'services:\n  a: {image: x}\nnetworks:\n  n1:\n    ipam: {config: [{subnet: 10.0.0.0/8}]}\n  n2:\n    ipam:\n      config: [{subnet: 10.1.0.0/16}]\n'
bad address-outside 5 'services:\n  a:\n    image: x\n    networks:\n      n1: {ipv4_address: 10.2.0.1}\nnetworks:\n  n1:\n    ipam: {config: [{subnet: 10.1.0.0/16}]}\n'
bad duration 5 'services:\n  web:\n    image: x\n    healthcheck:\n      interval: 10\n'
bad bytes 4 'services:\n  web:\n    image: x\n    mem_limit: 1zb\n'
bad mac-multicast 4 'services:\n  web:\n    image: x\n    mac_address: "01:00:5e:00:00:01"\n'
bad mac-syntax 6 'services:\n  web:\n    image: x\n    networks:\n      n1:\n        mac_address: 02:42:zz:00:00:01\nnetworks:\n  n1: {}\n'
bad restart 4 'services:\n  web:\n    image: x\n    restart: sometimes\n'
bad no-image 2 'services:\n  web:\n    command: ["true"]\n'
bad required-var 3 'services:\n  web:\n    image: ${NOPE_IMAGE:?set NOPE_IMAGE}\n'

check_match "required variable message shown" "required variable NOPE_IMAGE is missing a value: set NOPE_IMAGE" \
	"$(cat "$T/bad.err")"
printf 'services:\n  web:\n    imgae: x\n    ports: ["x"]\n    restart: sometimes\n' > multi.yaml
"$B/orch" config -f multi.yaml >/dev/null 2>"$T/err"
check_eq "all errors reported" 4 "$(grep -c "multi.yaml:" "$T/err")"
check_match "did-you-mean" 'unknown key "imgae" \(did you mean "image"\?\)' "$(cat "$T/err")"
"$B/orch" config -f "$D/does-not-exist.yaml" >"$T/bad.out" 2>"$T/err"
check_eq "missing file exits 1" 1 $?
check_match "missing file named" "does-not-exist.yaml" "$(cat "$T/err")"

# x-* extensions kept at every level, env_file kept, byte sizes as compose
# prints them (strings of bytes), and the output read back unchanged.
mkdir -p "$T/ext" && echo A=1 >"$T/ext/web.env"
cat >"$T/ext/compose.yaml" <<'EOF'
x-common: &common
  restart: always
x-top: {a: 1, b: [x, "2"], c: null}
services:
  web:
    <<: *common
    image: busybox
    x-svc: hello
    env_file: [web.env, {path: opt.env, required: false}]
    mem_limit: 512m
    build: {context: ., x-bld: true}
    networks:
      back: {x-att: 2}
networks:
  back: {x-net: 3.5}
volumes:
  data: {x-vol: "4"}
EOF
"$B/orch" -f "$T/ext/compose.yaml" config --format json >"$T/ext.json" 2>"$T/err"
check_eq "config with extensions: exit 0" 0 $?
jqx() { jq -c "$1" "$T/ext.json"; }
check_eq "top-level x-* kept (anchors resolved)" '{"restart":"always"}' "$(jqx '."x-common"')"
check_eq "top-level x-* keeps its types" '{"a":1,"b":["x","2"],"c":null}' "$(jqx '."x-top"')"
check_eq "a service's x-*" '"hello"' "$(jqx '.services.web."x-svc"')"
check_eq "build's x-*" 'true' "$(jqx '.services.web.build."x-bld"')"
check_eq "a network attachment's x-*" '{"x-att":2}' "$(jqx '.services.web.networks.back')"
check_eq "a network's x-*" '3.5' "$(jqx '.networks.back."x-net"')"
check_eq "a volume's x-*" '"4"' "$(jqx '.volumes.data."x-vol"')"
check_eq "env_file kept, absolute, with required" \
	"[{\"path\":\"$T/ext/web.env\",\"required\":true},{\"path\":\"$T/ext/opt.env\",\"required\":false}]" \
	"$(jqx '.services.web.env_file')"
check_eq "byte sizes as strings of bytes, as compose prints them" '"536870912"' "$(jqx '.services.web.mem_limit')"
"$B/orch" -f "$T/ext/compose.yaml" config >"$T/ext1.yaml"
(cd "$T/ext" && "$B/orch" -f - config <"$T/ext1.yaml" >"$T/ext2.yaml" 2>"$T/err")
check_eq "the output reads back to itself" "$(cat "$T/ext1.yaml")" "$(cat "$T/ext2.yaml")"

# --variables: each variable the files name (not $$ escapes), with its
# default, alternate value and whether one is required, without
# needing them set; --format json as compose prints it; --environment:
# what interpolation sees, .env included.
mkdir -p "$T/vars"
cat >"$T/vars/compose.yaml" <<'Y'
services:
  web:
    image: ${IMAGE:-busybox}:${TAG-latest}
    command: ["sh", "-c", "echo $$NOTAVAR $${ALSO}"]
    environment:
      A: ${A:?A is needed}
      B: ${B:+set}
      D: ${OUTER:-${INNER:-x}}
Y
echo "FROMDOTENV=1" >"$T/vars/.env"
out=$(cd "$T/vars" && env -u A "$B/orch" config --variables)
check_eq "--variables: exit 0 with a required one unset" 0 "$?"
check_eq "--variables: a table, sorted" "NAME REQUIRED DEFAULT VALUE ALTERNATE VALUE
A true
B false set
IMAGE false busybox
INNER false x
OUTER false \${INNER:-x}
TAG false latest" "$(echo "$out" | sed 's/  */ /g; s/ $//')"
check_eq "--variables --format json" '{"DefaultValue": "busybox", "Name": "IMAGE", "PresenceValue": "", "Required": false}' \
	"$(cd "$T/vars" && "$B/orch" config --variables --format json | jq -c '.IMAGE' | sed 's/,/, /g; s/:/: /g')"
check_match "--environment: .env's too" "^FROMDOTENV=1$" "$(cd "$T/vars" && "$B/orch" config --environment)"
finish
