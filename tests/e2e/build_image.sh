#!/bin/sh
# `orch image build` on the busybox fixture: instructions and config, one
# layer per file-changing step, the layer cache (no container on an
# unchanged rebuild, same image id; a changed file re-runs only its step
# and those after), RUN deleting a base file, .dockerignore, ADD of a
# tarball, multi-stage, hostile contexts and failing steps leaving nothing.
. "$(dirname "$0")/lib.sh"
O=$B/orch
W=$T/work
mkdir -p "$W"
cd "$W" || exit 1

$O image import "$FIXTURE_TAR" busybox >/dev/null || fail "importing busybox"
# RUN steps start netd (inside this suite's namespaces) for the build
# network: stop it at the end.
on_exit stop_netd

config() { $O image inspect "$1" | jq -cS ".[0].Config.$2"; }
nlayers() { $O image inspect "$1" | jq '.[0].RootFS.Layers | length'; }
# The build containers this suite ran, from its build logs ("Running in").
build_ids() { grep -rhoa 'Running in build-[0-9a-f]*' "$W" | sed 's/^Running in //' | sort -u; }
# cgroups of this suite's build containers (other builds may run on the
# host at the same time: their cgroups are theirs).
build_cgroups() {
	for id in $(build_ids); do
		ls -d /sys/fs/cgroup/*/orch/"$id" /sys/fs/cgroup/orch/"$id" 2>/dev/null
	done
}
# Nothing of a build is left: no runtime state, cgroup, mount or scratch dir.
no_leftovers() {
	! ls -A "$ORCH_RUN/runtime" 2>/dev/null | grep -q build- &&
		! grep -q "$T" /proc/self/mountinfo &&
		[ -z "$(ls -d "$ORCH_ROOT"/tmp/build-* 2>/dev/null)" ] &&
		[ -z "$(build_cgroups)" ]
}

# ---- a single-stage build --------------------------------------------------
mkdir -p ctx/dir ctx/skip
echo A > ctx/a.txt
echo B > ctx/b.txt
echo D > ctx/dir/d
echo secret > ctx/dir/secret.key
echo junk > ctx/skip/junk
printf 'skip\n**/*.key\n' > ctx/.dockerignore
cat > ctx/Containerfile <<'EOF'
# comment
ARG GREETING=hello
FROM busybox
ARG GREETING
ENV APP_HOME=/app \
    MODE="two words"
WORKDIR $APP_HOME
COPY a.txt b.txt ./
COPY . /ctx/
RUN echo "$GREETING" > greeting && rm /etc/motd && date +%s%N > /stamp
LABEL org.example.name="demo app"
USER user
EXPOSE 8080 53/udp
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD cat /app/greeting
ENTRYPOINT ["/bin/cat"]
CMD ["/app/greeting"]
EOF
id1=$($O image build -t app:1 --build-arg GREETING=bonjour ctx 2>"$W/log1")
check_eq "build succeeds" 0 $?
check_match "build prints the image id" '^[0-9a-f]{64}$' "$id1"
check_match "one RUN container" '1 containers run' "$(cat "$W/log1")"
check_match "steps are numbered" 'STEP 3/14: ENV APP_HOME' "$(cat "$W/log1")"
check_eq "config User" '"user"' "$(config app:1 User)"
check_eq "config WorkingDir" '"/app"' "$(config app:1 WorkingDir)"
check_eq "config Env" '["APP_HOME=/app","MODE=two words"]' "$(config app:1 Env)"
check_eq "config Entrypoint" '["/bin/cat"]' "$(config app:1 Entrypoint)"
check_eq "config Cmd" '["/app/greeting"]' "$(config app:1 Cmd)"
check_eq "config ExposedPorts" '{"53/udp":{},"8080/tcp":{}}' "$(config app:1 ExposedPorts)"
check_eq "config Labels" '{"org.example.name":"demo app"}' "$(config app:1 Labels)"
check_eq "config StopSignal" '"SIGINT"' "$(config app:1 StopSignal)"
check_match "config Healthcheck" '"CMD-SHELL","cat /app/greeting"' "$(config app:1 Healthcheck)"
# base + WORKDIR (creates /app) + COPY + COPY + RUN
check_eq "one layer per file-changing step" 5 "$(nlayers app:1)"
check_eq "the build arg reached RUN" bonjour "$(run_in app:1 cat /app/greeting)"
check_eq "COPY into the workdir" "A B" "$(run_in app:1 cat /app/a.txt /app/b.txt | tr '\n' ' ' | sed 's/ $//')"
check "COPY . copies the context" run_in app:1 test -f /ctx/dir/d
check "excluded by .dockerignore: a directory" run_in app:1 test ! -e /ctx/skip
check "excluded by .dockerignore: **/*.key" run_in app:1 test ! -e /ctx/dir/secret.key
check "RUN deleted a file of the base: gone in the new image" run_in app:1 test ! -e /etc/motd
check "and still present in the base image" run_in busybox test -f /etc/motd
check_eq "copied files belong to root" "0:0" "$(run_in app:1 stat -c %u:%g /app/a.txt)"
check "the build log names its containers" test -n "$(build_ids)"
check "nothing left after a build" no_leftovers

# ---- the build network -------------------------------------------------------
mkdir -p net
printf 'FROM busybox\nRUN ip -o -4 addr > /addrs; ip route > /routes; cat /etc/resolv.conf > /dns\nRUN --network=none ip -o -4 addr > /none\n' > net/Containerfile
$O image build -t net net >/dev/null 2>"$W/lognet"
check_eq "build with RUN on the network" 0 $?
check_match "RUN joins the build network" 'eth0 +inet 10\.' "$(run_in net cat /addrs)"
check_match "RUN has a default route" '^default via ' "$(run_in net cat /routes)"
gw=$(run_in net cat /routes | sed -n 's/^default via \([0-9.]*\).*/\1/p')
check_eq "RUN's DNS is the network's gateway" "nameserver $gw" "$(run_in net cat /dns)"
check_eq "RUN --network=none has only a loopback" 1 "$(run_in net cat /none | wc -l)"
check_match "the build network is netd's" 'orch-build' "$($O network ls)"
$O image build --no-cache --network none -t net2 net >/dev/null 2>"$W/lognet2"
check_eq "--network none: no eth0" "" "$(run_in net2 cat /addrs | grep eth0)"
check "nothing left after network builds" no_leftovers

# ---- the cache ---------------------------------------------------------------
id2=$($O image build -t app:1 --build-arg GREETING=bonjour ctx 2>"$W/log2")
check_eq "unchanged rebuild: same image id" "$id1" "$id2"
check_match "unchanged rebuild: no container started" '0 containers run' "$(cat "$W/log2")"
check "unchanged rebuild: no step ran" sh -c "! grep -q 'Running in' '$W/log2'"
echo B2 > ctx/b.txt
id3=$($O image build -t app:2 --build-arg GREETING=bonjour ctx 2>"$W/log3")
check "changed file: new image" test "$id3" != "$id1"
check_match "changed file: steps before it cached" 'STEP 4/14: WORKDIR[^S]*Using cache' "$(tr '\n' ' ' < "$W/log3")"
check_match "changed file: its COPY runs again" 'STEP 5/14: COPY a.txt b.txt ./ --> sha256' "$(tr '\n' ' ' < "$W/log3")"
check_match "changed file: the RUN after it runs again" '1 containers run' "$(cat "$W/log3")"
check_eq "changed file: new content" B2 "$(run_in app:2 cat /app/b.txt)"
id4=$($O image build -t app:1 --no-cache --build-arg GREETING=bonjour ctx 2>"$W/log4")
check_match "--no-cache runs every step" '0 cached, 1 containers run' "$(cat "$W/log4")"
check "--no-cache gives a new image" test "$id4" != "$id3"

# ---- ADD of a tarball, --chown, multi-stage with --from ----------------------
mkdir -p ms/payload
echo inside > ms/payload/file
tar -C ms -czf ms/payload.tar.gz payload
rm -r ms/payload
cat > ms/Containerfile <<'EOF'
FROM busybox AS builder
RUN mkdir /out && echo built > /out/artifact && echo unused > /out/other
FROM busybox AS unused
RUN exit 1
FROM scratch
COPY --from=builder /bin/busybox /bin/busybox
COPY --from=builder --chown=1000:1000 /out/artifact /data/
ADD payload.tar.gz /opt/
ENTRYPOINT ["/bin/busybox"]
EOF
$O image build -t ms ms >/dev/null 2>"$W/log5"
check_eq "multi-stage build succeeds (the unused stage is skipped)" 0 $?
check_eq "scratch + COPY --from: 3 layers" 3 "$(nlayers ms)"
check_eq "COPY --from a stage" built "$(run_in ms /bin/busybox cat /data/artifact)"
check_eq "--chown" "1000:1000" "$(run_in ms /bin/busybox stat -c %u:%g /data/artifact)"
check_eq "ADD unpacks a local tarball" inside "$(run_in ms /bin/busybox cat /opt/payload/file)"
$O image build --target builder -t ms-builder ms >/dev/null 2>"$W/logms"
check "--target builds up to a stage" run_in ms-builder test -f /out/other

# ---- errors -------------------------------------------------------------------
mkdir -p bad
printf 'FROM busybox\nRUN true\nFROBNICATE x\n' > bad/Containerfile
$O image build bad >/dev/null 2>"$W/err"
check_eq "unknown instruction: exit 1" 1 $?
check_match "unknown instruction names the line" 'Containerfile:3: unknown instruction: FROBNICATE' "$(cat "$W/err")"
printf 'FROM busybox\nCOPY only\n' > bad/Containerfile
$O image build bad >/dev/null 2>"$W/err"
check_match "bad form names the line" 'Containerfile:2: COPY requires at least two arguments' "$(cat "$W/err")"
printf 'FROM nosuchimage\n' > bad/Containerfile
$O image build bad >/dev/null 2>"$W/err"
check_match "missing base image: pulled, and the failure named" 'Containerfile:1: FROM nosuchimage: pulling nosuchimage: ' "$(cat "$W/err")"

# A failing RUN: its output and exit code are shown, no image is made,
# nothing is left behind.
printf 'FROM busybox\nRUN touch /x\nRUN echo visible-output; exit 3\nCMD ["x"]\n' > bad/Containerfile
$O image build -t failing bad >/dev/null 2>"$W/err"
check_eq "failing RUN: exit 1" 1 $?
check_match "failing RUN: its output is shown" 'visible-output' "$(cat "$W/err")"
check_match "failing RUN: exit code and line" 'Containerfile:3: RUN echo visible-output; exit 3: the command exited with code 3' "$(cat "$W/err")"
check "failing RUN: no image" sh -c "! $O image inspect failing >/dev/null 2>&1"
check "failing RUN: no container, cgroup, mount or scratch dir left" no_leftovers

# An interrupted build removes its container too.
printf 'FROM busybox\nRUN echo started; sleep 60\n' > bad/Containerfile
$O image build -t interrupted bad >/dev/null 2>"$W/err" &
bpid=$!
wait_for 30 grep -q started "$W/err"
kill -TERM $bpid
wait $bpid
check_eq "interrupted build: exit 1" 1 $?
check_match "interrupted build: says so" 'interrupted by SIGTERM' "$(cat "$W/err")"
check "interrupted build: nothing left" no_leftovers

# Hostile contexts.
mkdir -p hostile/dir
echo outside > "$W/outside"
ln -s /etc/shadow hostile/abs
ln -s ../../outside hostile/dir/rel
echo ok > hostile/fine
for src in abs dir ../outside "../*"; do
	printf 'FROM busybox\nCOPY %s /x\n' "$src" > hostile/Containerfile
	$O image build -t hostile hostile >/dev/null 2>"$W/err"
	check_eq "hostile COPY $src: refused" 1 $?
	check_match "hostile COPY $src: says why" 'outside the build context' "$(cat "$W/err")"
done
check "hostile: no image" sh -c "! $O image inspect hostile >/dev/null 2>&1"
printf 'FROM busybox\nADD https://example.com/x.git /x\n' > hostile/Containerfile
$O image build hostile >/dev/null 2>"$W/err"
check_match "ADD of a git repository it cannot reach fails with git's answer" 'ADD https://example.com/x.git: git: ' "$(cat "$W/err")"
check "nothing left after the failures" no_leftovers

$O image build 2>/dev/null
check_eq "no context: usage error" 2 $?

# ---- compose build: sections --------------------------------------------------
mkdir -p proj/web proj/tool
printf 'FROM busybox\nARG FLAVOR=plain\nRUN echo $FLAVOR > /flavor\n' > proj/web/Containerfile
printf 'FROM busybox AS one\nRUN echo one > /stage\nFROM one AS two\nRUN echo two > /stage\n' > proj/tool/Build.df
cat > proj/compose.yaml <<'Y'
services:
  web:
    build: ./web
  tool:
    build:
      context: tool
      dockerfile: Build.df
      target: one
      args:
        UNUSED: x
      labels:
        org.example.tool: "yes"
  plain:
    image: busybox
Y
(cd proj && $O build >/dev/null 2>"$W/log6")
check_eq "orch build: succeeds" 0 $?
check_eq "orch build: context string, named <project>-<service>" plain "$(run_in proj-web cat /flavor)"
check_eq "orch build: long form with dockerfile and target" one "$(run_in proj-tool cat /stage)"
check_eq "orch build: labels" '{"org.example.tool":"yes"}' "$(config proj-tool Labels)"
(cd proj && $O build --build-arg FLAVOR=spicy web >/dev/null 2>"$W/log7")
check_eq "orch build SERVICE --build-arg" spicy "$(run_in proj-web cat /flavor)"
check "orch build SERVICE builds only that service" sh -c "! grep -q 'Building tool' '$W/log7'"
(cd proj && $O -p other build --no-cache tool >/dev/null 2>"$W/log8")
check_match "global -p and --no-cache" 'Built [0-9a-f]{12} as other-tool: 2 steps, 0 cached, 1 containers run' "$(cat "$W/log8")"
(cd proj && $O build nosuch >/dev/null 2>"$W/err")
check_eq "orch build of an unknown service: exit 1" 1 $?
check_match "orch build of an unknown service: says so" 'no such service: nosuch' "$(cat "$W/err")"
finish
