#!/bin/sh
# The build and the fixture: binaries exist, the fixture rootfs is complete.
. "$(dirname "$0")/lib.sh"

check "orch version runs" "$B/orch" version
check "orch with a bad command exits 2" sh -c '"$1" nosuchcmd 2>/dev/null; [ $? -eq 2 ]' _ "$B/orch"
check "fixture has busybox" test -x "$FIXTURE/bin/busybox"
check "fixture has sh applet" test -L "$FIXTURE/bin/sh"
check_match "fixture has uid 1000 user" '^user:x:1000:1000:' "$(cat "$FIXTURE/etc/passwd")"
check "fixture tarball exists" test -s "$FIXTURE_TAR"
check "running inside a private network namespace" sh -c '[ "$(ip -o link | wc -l)" -eq 1 ]'
finish
