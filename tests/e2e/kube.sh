#!/bin/sh
# orch kube generate, checked against real parts:
#   - every document generated for the reference stacks (the example
#     stack, examples/, stack10, a file with every mapped key), in every
#     --publish mode, validates against Kubernetes' OpenAPI schemas
#     (tests/kube/validate.mjs: kubernetes-models' validators, and tsc
#     over its types for unknown fields);
#   - the CLI: -o FILE, -o DIR (one file per object), SERVICE selection,
#     warnings naming the service and key, and refusals that write
#     nothing;
#   - the NetworkPolicies, evaluated (tests/kube/netpol.py) for every pair
#     of services and port, agree with what orch really lets through on a
#     running project, probed from inside its containers;
#   - an image that came from a registry is pinned by its digest;
#   - the example stack's claim and Deployments (made without wait init
#     containers, which need the Kubernetes API) run under `podman kube
#     play` (Debian's podman) and answer on the published port.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_helpers.inc"
. "$(dirname "$0")/registry_helpers.inc"
KT=$B/kube-tools
[ -f "$KT/.done" ] || { echo "no $KT: run make e2e (it installs tests/kube)"; exit 1; }
validate() { node "$KT/validate.mjs" "$@"; }
gen() { "$O" kube generate "$@"; }

# ---- schemas -----------------------------------------------------------------
n=0
for f in compose.example.yaml examples/internal-network/compose.yaml \
	examples/limits/compose.yaml examples/test-teardown/compose.yaml \
	examples/build-hello/compose.yaml tests/soak/stack10.yaml \
	tests/unit/kube/features.yaml tests/unit/kube/edges.yaml; do
	for how in clusterip nodeport loadbalancer hostport; do
		n=$((n + 1))
		gen -f "$TOP/$f" --allow-hostpath --publish $how >"$T/schema-$n.yaml" 2>/dev/null ||
			fail "generate $f --publish $how"
	done
done
out=$(validate "$T"/schema-*.yaml 2>&1)
check_eq "every document of the reference stacks validates against the schemas" 0 $?
check_match "and there were documents to check" 'kube-validate: [0-9]{3,} documents, 0 invalid' "$out"
printf '%s\n' "$out" | tail -3
# The validator refuses what Kubernetes refuses: a field it does not know,
# a wrong type, a missing required field.
sed 's/^      containers:$/      containerz:/; s/replicas: 1$/replicas: "1"/' "$T/schema-1.yaml" >"$T/bad.yaml"
out=$(validate "$T/bad.yaml" 2>&1)
check_eq "the validator refuses bad documents" 1 $?
check_match "an unknown field, by name" "containerz.*does not exist" "$out"
check_match "a wrong type" "replicas.*(must be integer|not assignable to type 'number)" "$out"

# ---- the command -----------------------------------------------------------------
project st <<'EOF'
services:
  web:
    image: bb:1
    ports: ["8080:80"]
    pid: host
    volumes: [./site:/site]
  db:
    image: bb:1
    volumes: [data:/data]
volumes:
  data: {}
EOF
out=$(inp st "$O" kube generate 2>&1)
check_eq "a bind mount without --allow-hostpath: exit 1" 1 $?
check_match "the error names the file, line, service and path" \
	"compose.yaml:6:15: service web: the bind mount of $T/st/site has no portable Kubernetes form.*--allow-hostpath" "$out"
inp st "$O" kube generate -o "$T/st-out/" >/dev/null 2>&1
check "and writes nothing" test ! -e "$T/st-out"
err=$(inp st "$O" kube generate --allow-hostpath -o "$T/st-out/" 2>&1 >/dev/null)
check_eq "-o DIR/: exit 0" 0 $?
check_eq "one file per object, named kind-name" \
	"deployment-web.yaml namespace-st.yaml networkpolicy-default-deny.yaml networkpolicy-web.yaml persistentvolumeclaim-data.yaml service-db.yaml service-web.yaml statefulset-db.yaml" \
	"$(cd "$T/st-out" && ls | tr '\n' ' ' | sed 's/ $//')"
check_match "a key with no Kubernetes form is a warning naming the service and key" \
	"compose.yaml:5:5: warning: service web pid: no Kubernetes form; left out" "$err"
inp st "$O" kube generate --allow-hostpath -o "$T/st.yaml" 2>/dev/null
check_eq "-o FILE: the same objects in one file" 8 "$(grep -c '^kind:' "$T/st.yaml")"
check_eq "stdout: the same text" "$(cat "$T/st.yaml")" "$(inp st "$O" kube generate --allow-hostpath 2>/dev/null)"
check_eq "deterministic" "$(cat "$T/st.yaml")" "$(inp st "$O" kube generate --allow-hostpath 2>/dev/null)"
out=$(inp st "$O" kube generate --allow-hostpath db 2>/dev/null)
check_eq "SERVICE...: only the service named and what it uses" \
	"Namespace PersistentVolumeClaim Service StatefulSet NetworkPolicy" \
	"$(printf '%s\n' "$out" | sed -n 's/^kind: //p' | tr '\n' ' ' | sed 's/ $//')"
out=$(inp st "$O" kube generate nosuch 2>&1)
check_eq "an unknown service: exit 1" 1 $?
check_match "named" "nosuch" "$out"
out=$(inp st "$O" kube generate --publish everywhere 2>&1)
check_eq "a bad --publish: exit 2" 2 $?
check_match "says what it takes" "clusterip, nodeport, loadbalancer or hostport" "$out"
out=$(inp st "$O" kube generate -n Bad_NS --allow-hostpath 2>&1)
check_eq "a namespace that is not a DNS label: exit 1" 1 $?
check_match "named" 'namespace "Bad_NS" is not a DNS label' "$out"
project cf <<'EOF'
services:
  a: {image: bb:1, configs: [zero]}
configs:
  zero: {file: /dev/zero}
EOF
out=$(inp cf timeout 20 "$O" kube generate 2>&1)
check_eq "a config read from a device: exit 1, at once" 1 $?
check_match "named, with why" "config zero: /dev/zero: not a regular file" "$out"
check_eq "--namespace on every namespaced object" 7 \
	"$(inp st "$O" kube generate -n team-a --allow-hostpath 2>/dev/null | grep -c '^  namespace: team-a$')"

# ---- the NetworkPolicies against orch's own isolation -----------------------------
# Link-only networks (front, back: internal), an enable_icc one (mesh),
# links and depends_on, a published port; each service serves HTTP on its
# declared ports.
serve() { printf 'sh -c "mkdir -p /w && echo ok >/w/index.html && for p in %s; do httpd -p $$p -h /w; done; exec sleep 100000"' "$*"; }
project iso <<EOF
services:
  web:
    image: bb:1
    command: $(serve 80)
    ports: ["18080:80"]
    networks: [front]
    links: [api]
  api:
    image: bb:1
    command: $(serve 8000 8001)
    expose: ["8000-8001"]
    networks: [front, back]
    depends_on: [db]
  db:
    image: bb:1
    command: $(serve 5432)
    expose: ["5432"]
    networks: [back]
  worker:
    image: bb:1
    command: $(serve 9000)
    expose: ["9000"]
    networks: [back]
  p1:
    image: bb:1
    command: $(serve 7000)
    expose: ["7000"]
    networks: [mesh, back]
    links: [db]
  p2:
    image: bb:1
    command: $(serve 7000)
    expose: ["7000"]
    networks: [mesh]
networks:
  front: {}
  back: {internal: true}
  mesh:
    driver_opts: {com.docker.network.bridge.enable_icc: "true"}
EOF
inp iso "$O" kube generate -o "$T/iso.yaml" 2>/dev/null
check_eq "generate the isolation stack" 0 $?
"$PY" "$TOP/tests/kube/netpol.py" "$T/iso.yaml" >"$T/iso.policy"
check_eq "the evaluator covers every pair and port" 35 "$(wc -l <"$T/iso.policy")"
inp iso "$O" up -d >/dev/null 2>&1
check_eq "up the isolation stack" 0 $?
# (busybox 1.35's wget -T crashes: timeout bounds it instead.)
# What orch lets through: a connection by name to the container port, or
# to the published port on the host's address on the source's network.
gw_of() { inp iso "$O" exec -T "$1" sh -c 'ip route | sed -n "s/^default via \([^ ]*\).*/\1/p"' 2>/dev/null | head -1; }
reach() {
	inp iso "$O" exec -T "$1" timeout 3 wget -q -O /dev/null "http://$2:$3/" >/dev/null 2>&1
}
for s in web api db worker p1 p2; do
	wait_for 20 reach "$s" "$s" "$(sed -n "s/^[a-z0-9]* $s \([0-9]*\)\/tcp.*/\1/p" "$T/iso.policy" | head -1)" ||
		fail "$s serves"
done
while read -r a b pp _; do
	port=${pp%/*}
	if reach "$a" "$b" "$port"; then
		v=allow
	elif [ "$b" = web ] && [ "$port" = 80 ] && gw=$(gw_of "$a") && [ -n "$gw" ] &&
		reach "$a" "$gw" 18080; then
		v=allow
	else
		v=deny
	fi
	echo "$a $b $pp $v"
done <"$T/iso.policy" >"$T/iso.orch"
if diff "$T/iso.policy" "$T/iso.orch" >"$T/iso.diff"; then
	pass "the NetworkPolicies and orch agree on every pair and port ($(grep -c allow "$T/iso.orch") allowed, $(grep -c deny "$T/iso.orch") refused)"
else
	fail "the NetworkPolicies and orch agree on every pair and port"
	cat "$T/iso.diff"
fi
check "web reaches api (links)" grep -qx 'web api 8000/tcp allow' "$T/iso.orch"
check "api reaches web's published port, through the host" grep -qx 'api web 80/tcp allow' "$T/iso.orch"
check "db does not (its internal network has no route out)" grep -qx 'db web 80/tcp deny' "$T/iso.orch"
check "api does not reach p1 (not linked)" grep -qx 'api p1 7000/tcp deny' "$T/iso.orch"
check "worker reaches nobody it is not linked to" grep -qx 'worker db 5432/tcp deny' "$T/iso.orch"
check "p2 reaches p1 (enable_icc)" grep -qx 'p2 p1 7000/tcp allow' "$T/iso.orch"
inp iso "$O" down -t 0 >/dev/null 2>&1

# ---- digests -----------------------------------------------------------------------
R=127.0.0.1:5000
if reg_start reg "$R"; then
	"$O" image tag bb:1 "$R/bb:1" && "$O" image push "$R/bb:1" >/dev/null 2>&1
	check_eq "push to the local registry" 0 $?
	digest=$(curl -sfI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' \
		"http://$R/v2/bb/manifests/1" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
	project pin <<EOF
services:
  app: {image: "$R/bb:1", command: ["sleep", "1000"]}
  local: {image: "bb:1"}
EOF
	out=$(inp pin "$O" kube generate 2>/dev/null)
	check_match "an image from a registry is pinned by its digest" "image: $R/bb@$digest" "$out"
	check_match "a local image keeps its name" "image: bb:1" "$out"
	# A running project: the digest of the image its container runs,
	# even when the tag has moved on since.
	inp pin "$O" up -d app >/dev/null 2>&1
	check_eq "up the pinned project" 0 $?
	cp "$FIXTURE_TAR" "$T/bb2.tar" && echo two >"$T/marker" && tar -rf "$T/bb2.tar" -C "$T" marker &&
		"$O" image import "$T/bb2.tar" "$R/bb:1" >/dev/null && "$O" image push "$R/bb:1" >/dev/null 2>&1
	check_eq "a new image pushed under the same tag" 0 $?
	digest2=$(curl -sfI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' \
		"http://$R/v2/bb/manifests/1" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
	check "with another digest" test -n "$digest2" -a "$digest2" != "$digest"
	check_match "the running project is pinned to what its container runs" \
		"image: $R/bb@$digest" "$(inp pin "$O" kube generate app 2>/dev/null)"
	inp pin "$O" down -t 0 >/dev/null 2>&1
	check_match "once it is down, to the tag's image" \
		"image: $R/bb@$digest2" "$(inp pin "$O" kube generate app 2>/dev/null)"
else
	fail "the registry starts"
fi

# ---- a real run under podman kube play ---------------------------------------------
PA=$T/podman
"$TOP/tests/fixtures/podman-conf.sh" "$PA"
export CONTAINERS_CONF=$PA/containers.conf CONTAINERS_STORAGE_CONF=$PA/storage.conf
pm() { podman "$@"; }
# podman's cgroupfs manager makes a libpod_parent cgroup in every
# hierarchy and leaves it: those this suite made go with its pods.
pm_cgroups=$(for d in /sys/fs/cgroup/*/; do [ -d "${d}libpod_parent" ] || echo "${d}libpod_parent"; done)
pm_cleanup() {
	pm pod rm -fa -t 0 >/dev/null 2>&1
	pm volume rm -fa >/dev/null 2>&1
	for d in $pm_cgroups; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	true
}
on_exit pm_cleanup
pm import --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' "$FIXTURE_TAR" docker.io/library/busybox:latest >/dev/null 2>&1
check_eq "podman has the busybox image" 0 $?
# podman has no Kubernetes API, which the wait init containers ask:
# --no-waits leaves them out.
gen -f "$TOP/compose.example.yaml" --allow-hostpath --publish hostport --no-waits -o "$T/ex/" 2>/dev/null
check_eq "generate the example stack with hostPorts and no waits" 0 $?
# podman 4.3 plays Pods, Deployments and PersistentVolumeClaims (not
# StatefulSets, Jobs, Services or policies): the claim, then every
# Deployment.
pm kube play "$T/ex/persistentvolumeclaim-data.yaml" >"$T/play.log" 2>&1
check_eq "podman plays the claim" 0 $?
check_match "as a podman volume" "^data$" "$(pm volume ls --format '{{.Name}}')"
deps=$(cd "$T/ex" && ls deployment-*.yaml | sed 's/^deployment-//; s/\.yaml$//' | tr '\n' ' ')
check_eq "the example stack's Deployments" "app web worker " "$deps"
for d in $deps; do
	pm kube play "$T/ex/deployment-$d.yaml" >"$T/play.log" 2>&1
	rc=$?
	[ $rc -eq 0 ] || cat "$T/play.log"
	check_eq "podman plays $d's Deployment" 0 $rc
	check "and its pod runs" wait_for 30 sh -c \
		"podman pod ps --format '{{.Name}} {{.Status}}' | grep -q '^$d-pod-0 Running'"
done
check "the example stack answers on its published port" wait_for 30 sh -c \
	"curl -sf http://127.0.0.1:8080/ | grep -q 'orch example'"
pm_cleanup
finish
