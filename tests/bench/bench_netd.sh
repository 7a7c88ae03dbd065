#!/bin/sh
# netd: medians per operation (create a network, attach 100 endpoints,
# publish 20 ports, resolve a name) and the nft rule count for 10 networks
# x 20 endpoints.  Runs in its own network namespace like the e2e suites.
. "$(dirname "$0")/../e2e/lib.sh"
# netd's state lives under /run (tmpfs) on a real host; the sandbox's
# $ORCH_RUN is on the build disk, where each atomic save pays two fsyncs.
mount -t tmpfs tmpfs "$ORCH_RUN"
on_exit "umount $ORCH_RUN"
. "$(dirname "$0")/../e2e/netd_helpers.inc"
check "netd starts" netd_start
if python3 "$(dirname "$0")/bench_netd.py"; then pass "benchmark ran"; else fail "benchmark ran"; fi
check_eq "nothing left" "" "$(ip -o link | grep -E ' (ob|ov)-')"
finish
