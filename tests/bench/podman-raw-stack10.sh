#!/bin/bash
# stack10 (tests/soak/stack10.yaml, which is ../shared/anchors/stack10.yaml)
# as plain podman commands: what podman itself costs for the stack when a
# script drives it, without podman-compose's one-second sleep after every
# `podman run` and its per-container probes.  The podman arguments are
# those podman-compose 1.0.3 generates for the stack (`--dry-run up -d`),
# in the same dependency order; taken from ../shared/anchors/
# podman-raw-stack10.sh, with down removing the volume too, so that it does
# the work of `orch down -v`.
# Usage: podman-raw-stack10.sh up|down PROJECT   (podman configured by the caller)
set -euo pipefail
P=${2:?project}
L=(--label com.docker.compose.project=$P --label io.podman.compose.project=$P)
IMG=localhost/bb:1
SLEEP=(sleep 3600)
HTTPD=(httpd -f -p 80 -h /var/www)
run() { # name nets [extra...] -- cmd...
	local svc=$1 nets=$2
	shift 2
	local extra=()
	while [ "$1" != "--" ]; do extra+=("$1"); shift; done
	shift
	podman run -d --name "${P}_${svc}_1" "${L[@]}" --label com.docker.compose.service="$svc" \
		--net "$nets" --network-alias "$svc" --stop-signal SIGKILL "${extra[@]}" $IMG "$@" >/dev/null
}
up() {
	for n in data back front; do podman network create "${L[@]}" "${P}_$n" >/dev/null; done
	podman volume create "${L[@]}" "${P}_dbdata" >/dev/null
	run db      "${P}_data"              -v "${P}_dbdata:/data"    -- "${SLEEP[@]}"
	run cache   "${P}_back"                                        -- "${SLEEP[@]}"
	run worker1 "${P}_data,${P}_back"                              -- "${SLEEP[@]}"
	run queue   "${P}_data"                                        -- "${SLEEP[@]}"
	run backup  "${P}_data"              -v "${P}_dbdata:/data:ro" -- "${SLEEP[@]}"
	run api1    "${P}_front,${P}_back"                             -- "${SLEEP[@]}"
	run api2    "${P}_front,${P}_back"                             -- "${SLEEP[@]}"
	run worker2 "${P}_data,${P}_back"                              -- "${SLEEP[@]}"
	run web1    "${P}_front"             -p 18080:80               -- "${HTTPD[@]}"
	run web2    "${P}_front"             -p 18081:80               -- "${HTTPD[@]}"
}
down() {
	# one rm for all containers (reverse dependency order), then the
	# networks and the volume
	podman rm -f -t 0 "${P}_web2_1" "${P}_web1_1" "${P}_worker2_1" "${P}_api2_1" "${P}_api1_1" \
		"${P}_backup_1" "${P}_queue_1" "${P}_worker1_1" "${P}_cache_1" "${P}_db_1" >/dev/null
	podman network rm "${P}_front" "${P}_back" "${P}_data" >/dev/null
	podman volume rm "${P}_dbdata" >/dev/null
}
"${1:?up|down}"
