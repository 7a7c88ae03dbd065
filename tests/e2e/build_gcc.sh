#!/bin/sh
# The three-stage example (examples/build-hello): gcc on the Debian base
# image, a test stage, and the binary alone on busybox.  Needs the Debian
# tarball that examples/images/debian-base.sh makes once (about a minute
# with the network, then cached in build/).
. "$(dirname "$0")/lib.sh"
O=$B/orch
EX=$TOP/examples/build-hello

"$TOP/examples/images/debian-base.sh" >/dev/null 2>"$T/base.err"
check_eq "debian base image imported" 0 $?
[ -s "$T/base.err" ] && cat "$T/base.err"
$O image import "$FIXTURE_TAR" busybox >/dev/null
check "busybox imported" quiet $O image inspect busybox

id=$($O image build -t hello:1 "$EX" 2>"$T/log")
rc=$?
check_eq "three-stage build succeeds" 0 $rc
[ $rc -eq 0 ] || cat "$T/log"
check_match "gcc ran in the build stage and the test stage ran" 'STEP 7/15: RUN ./hello -t && ./hello.*test, world! cwd=/src uid=0' "$(tr '\n' ' ' < "$T/log")"
cfg() { $O image inspect hello:1 | jq -cS ".[0].Config.$1"; }
check_eq "Entrypoint" '["/usr/local/bin/hello"]' "$(cfg Entrypoint)"
check_eq "Cmd" '["orch"]' "$(cfg Cmd)"
check_eq "Env" '["GREETING=Bonjour"]' "$(cfg Env)"
check_eq "WorkingDir" '"/srv"' "$(cfg WorkingDir)"
check_eq "User" '"user"' "$(cfg User)"
check_eq "ExposedPorts" '{"8080/tcp":{}}' "$(cfg ExposedPorts)"
# busybox + COPY + WORKDIR (creates /srv): the Debian layers stay behind.
check_eq "one layer per file-changing step of the final stage" 3 \
	"$($O image inspect hello:1 | jq '.[0].RootFS.Layers | length')"

# Runs with the image's config: entrypoint, cmd, env, workdir, user.
if "$B/orch-runtime" --help 2>&1 | grep -q -- '--image'; then
	out=$("$B/orch-runtime" run --net none --image hello:1 2>&1)
else
	lowers=$($O image inspect hello:1 | jq -r '.[0].RootFS.Layers | reverse | .[]' |
		while read -r l; do printf -- '--rootfs %s/layers/%s/diff ' "$ORCH_ROOT" "${l#sha256:}"; done)
	# shellcheck disable=SC2086
	out=$("$B/orch-runtime" run --net none $lowers --env GREETING=Bonjour \
		--workdir /srv --user 1000:1000 -- /usr/local/bin/hello orch 2>&1)
fi
check_eq "the binary runs on busybox with the image's config" "Bonjour, orch! cwd=/srv uid=1000" "$out"

# The example's compose file: `orch build` makes <project>-<service> and
# `orch up` runs it.
cp -r "$EX" "$T/hello"
on_exit "cd $T/hello && $O down -t 0; stop_netd"
(cd "$T/hello" && $O build >/dev/null 2>"$T/log3")
check_eq "orch build of the compose example" 0 $?
check_match "orch build: every step cached from the image build" '15 steps, 6 cached, 0 containers run' "$(cat "$T/log3")"
check_eq "orch build tags <project>-<service>" "$id" "$($O image inspect hello-hello | jq -r '.[0].Id' | sed 's/^sha256://')"
out=$(cd "$T/hello" && timeout 60 $O up 2>&1)
check_match "orch up runs the built image" 'hello-hello-1 \| Bonjour, orch! cwd=/srv uid=1000' "$out"
(cd "$T/hello" && $O down -t 0 >/dev/null 2>&1)
check_eq "orch down" 0 $?

id2=$($O image build -t hello:1 "$EX" 2>"$T/log2")
check_eq "rebuild: same image id" "$id" "$id2"
check_match "rebuild: no container started" '0 containers run' "$(cat "$T/log2")"
finish
