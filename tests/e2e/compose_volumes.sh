#!/bin/sh
# Named volumes under `orch up`: filled from the image's content once, kept
# across down/up, removed by down -v; anonymous ones kept across a
# recreation (unless -V), removed by down.
. "$(dirname "$0")/lib.sh"
O=$B/orch
"$O" image import "$FIXTURE_TAR" busybox:latest >/dev/null
mkdir -p "$T/p"
cat >"$T/p/compose.yaml" <<'Y'
services:
  app:
    image: busybox:latest
    command: ["sleep", "3600"]
    init: true
    volumes:
      - conf:/etc
      - empty:/srv/data
volumes:
  conf: {}
  empty: {}
Y
F=$T/p/compose.yaml
on_exit "$O" -f "$F" down -v -t 0
"$O" -f "$F" up -d >/dev/null 2>&1
check "up with volumes over image content succeeds" [ $? -eq 0 ]
check_eq "the volume holds the image's file" "orch busybox fixture" "$("$O" -f "$F" exec -T app cat /etc/motd)"
check "the volume's directory on the host holds it too" grep -qx "orch busybox fixture" "$ORCH_ROOT/volumes/p_conf/_data/motd"
check_eq "a volume over an empty path starts empty" "" "$("$O" -f "$F" exec -T app ls -A /srv/data)"
"$O" -f "$F" exec -T app sh -c 'echo changed > /etc/motd; rm /etc/group'
"$O" -f "$F" down -t 0 >/dev/null 2>&1
"$O" -f "$F" up -d >/dev/null 2>&1
check_eq "data survives down and up (never filled again)" "changed" "$("$O" -f "$F" exec -T app cat /etc/motd)"
check "a deleted file stays deleted" sh -c '! "$1" -f "$2" exec -T app test -e /etc/group' _ "$O" "$F"
"$O" -f "$F" down -v -t 0 >/dev/null 2>&1
check "down -v removes the volumes" sh -c '! ls "$1/volumes/p_conf" 2>/dev/null' _ "$ORCH_ROOT"
# down, then down -v: the volumes the first down kept go (as compose does).
"$O" -f "$F" up -d >/dev/null 2>&1
"$O" -f "$F" down -t 0 >/dev/null 2>&1
check "down keeps the named volume" test -d "$ORCH_ROOT/volumes/p_conf"
out=$("$O" -f "$F" down -v 2>&1)
check_eq "down -v of a project with no containers exits 0" 0 "$?"
check_match "and says the volume went" 'Volume p_conf +Removed' "$out"
check "and removes it" test ! -e "$ORCH_ROOT/volumes/p_conf"

# volumes_from: the anonymous and named volumes and binds of a service's
# container (made first: zsrc sorts last), read-only when asked; a target
# the service mounts itself stays its own; an unknown source is refused.
mkdir -p "$T/vf/hostdir" && echo from-host > "$T/vf/hostdir/h"
cat > "$T/vf/compose.yaml" <<'Y'
services:
  zsrc:
    image: busybox:latest
    command: ["sh", "-c", "echo anon > /anon/x; echo named > /named/x; exec sleep 3600"]
    network_mode: none
    volumes: ["/anon", "named:/named", "./hostdir:/hostdir:ro"]
  ro:
    image: busybox:latest
    command: ["sleep", "3600"]
    network_mode: none
    volumes_from: ["zsrc:ro"]
  rw:
    image: busybox:latest
    command: ["sleep", "3600"]
    network_mode: none
    volumes_from: ["zsrc"]
    volumes: ["./hostdir:/named"]
volumes:
  named: {}
Y
F=$T/vf/compose.yaml
on_exit "$O" -f "$F" down -v -t 0
check "up with volumes_from" quiet "$O" -f "$F" up -d
vf() { "$O" -f "$F" exec -T "$@" 2>&1; }
src_wrote() { [ "$(vf ro cat /named/x)" = named ]; }
check "the source wrote its files" wait_for 10 src_wrote
check_eq "the anonymous volume is shared" anon "$(vf ro cat /anon/x)"
check_eq "the named volume and the bind too" "named from-host" "$(vf ro cat /named/x /hostdir/h | xargs)"
check_match ":ro makes them read-only" "Read-only file system" "$(vf ro touch /anon/y)"
check "without it, as the source mounts them (read-write)" quiet "$O" -f "$F" exec -T rw touch /anon/y
check_eq "a target the service mounts itself stays its own" from-host "$(vf rw cat /named/h)"
check "down -v" quiet "$O" -f "$F" down -v
sed -i 's/volumes_from: \["zsrc:ro"\]/volumes_from: ["nosuch"]/' "$F"
out=$("$O" -f "$F" up -d 2>&1)
check_match "an unknown source is refused, naming it" 'service "ro" takes volumes from undefined service "nosuch"' "$out"

# Anonymous volumes (the service's, and an image's VOLUME) go to the
# container that replaces theirs, as compose keeps them; -V
# (--renew-anon-volumes) gives fresh ones; down removes them.
mkdir -p "$T/an/img"
printf 'FROM busybox:latest\nVOLUME /imgvol\n' >"$T/an/img/Containerfile"
"$O" image build -t withvol:1 "$T/an/img" >/dev/null 2>&1
cat >"$T/an/compose.yaml" <<'Y'
services:
  db:
    image: withvol:1
    command: ["sleep", "3600"]
    volumes: ["/anon"]
    environment: {GEN: "1"}
Y
A=$T/an/compose.yaml
on_exit "$O" -f "$A" down -v -t 0
anon_count() { "$O" volume ls -q | wc -l; }
check "up with anonymous volumes" quiet "$O" -f "$A" up -d
"$O" -f "$A" exec -T db sh -c 'echo kept >/anon/f; echo kept >/imgvol/f'
n=$(anon_count)
check_eq "two anonymous volumes" 2 "$n"
sed -i 's/GEN: "1"/GEN: "2"/' "$A"
out=$("$O" -f "$A" up -d 2>&1)
check_match "a changed service is recreated" "Container an-db-1 +Created" "$out"
check_eq "its anonymous volume's data is there" kept "$("$O" -f "$A" exec -T db cat /anon/f)"
check_eq "and the image VOLUME's" kept "$("$O" -f "$A" exec -T db cat /imgvol/f)"
check_eq "no volume more" "$n" "$(anon_count)"
sed -i 's/GEN: "2"/GEN: "3"/' "$A"
check "up -V" quiet "$O" -f "$A" up -d -V
check_eq "-V: fresh anonymous volumes" "" "$("$O" -f "$A" exec -T db ls -A /anon)"
check_eq "-V: the old ones are gone" "$n" "$(anon_count)"
# A recreation that fails after the old container is gone (here: a MAC
# address another container holds) keeps its volumes for the next up.
"$O" -f "$A" exec -T db sh -c 'echo again >/anon/f'
cat >>"$A" <<'Y'
    mac_address: "02:42:0a:00:00:99"
  other:
    image: busybox:latest
    command: ["sleep", "3600"]
    mac_address: "02:42:0a:00:00:99"
Y
"$O" -f "$A" up -d other >/dev/null 2>&1
out=$("$O" -f "$A" up -d db 2>&1)
check_eq "a recreation that fails: exit 1" 1 "$?"
check_match "naming why" "mac_address 02:42:0a:00:00:99 is already used by an-other-1" "$out"
check_eq "its anonymous volumes are still the project's" 2 \
	"$("$O" -f "$A" volumes -q | grep -vc an_)"
sed -i '/mac_address/d' "$A"
check "the next up" quiet "$O" -f "$A" up -d db
check_eq "gets them back" again "$("$O" -f "$A" exec -T db cat /anon/f)"
check_eq "no volume more" "$n" "$(anon_count)"
check "down" quiet "$O" -f "$A" down -t 0
check_eq "down removes the anonymous volumes" 0 "$(anon_count)"
finish
