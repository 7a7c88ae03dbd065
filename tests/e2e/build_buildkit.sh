#!/bin/sh
# BuildKit's Dockerfile syntax, as real Dockerfiles use it: a `# syntax=`
# line; heredocs (RUN <<EOF as a script, with a #! interpreter, fed to a
# command, <<- and quoted delimiters; COPY <<EOF with variables expanded
# unless quoted); RUN --mount of a cache (kept across builds, not in the
# image), of the context (read-only; rw writes thrown away), of another
# stage, of a tmpfs and of a secret from compose's build.secrets; ADD of
# URLs from a web server of the suite's own (--checksum, --chmod); and the
# errors, each with the Dockerfile's line.
. "$(dirname "$0")/lib.sh"
O=$B/orch
W=$T/work
mkdir -p "$W"
cd "$W" || exit 1
$O image import "$FIXTURE_TAR" busybox >/dev/null || fail "importing busybox"
on_exit stop_netd

mkdir -p app/data
echo from-context >app/data/x
echo s3cr3t >token.txt
cat >app/Dockerfile <<'DF'
# syntax=docker/dockerfile:1.4
FROM busybox AS gen
RUN echo generated >/gen.txt

FROM busybox
ARG GREETING=hello
ENV WHO=world
RUN --mount=type=cache,target=/root/.cache,sharing=locked \
    sh -c 'echo run >>/root/.cache/runs; wc -l </root/.cache/runs >/cache-count'
RUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data/x >/from-context
RUN --mount=type=bind,target=/ctx sh -c 'if touch /ctx/new 2>/dev/null; then echo writable; else echo read-only; fi >/bind-ro'
RUN --mount=type=bind,target=/ctx,rw touch /ctx/written-by-rw
RUN --mount=type=bind,from=gen,source=/gen.txt,target=/g.txt cp /g.txt /from-stage
RUN --mount=type=tmpfs,target=/scratch sh -c 'echo x >/scratch/f && grep -q " /scratch tmpfs " /proc/mounts && echo tmpfs >/tmpfs-ok'
RUN --mount=type=secret,id=token,required cat /run/secrets/token >/secret-seen
RUN <<EOF
echo "script $GREETING $WHO" >/heredoc-run
echo second line >>/heredoc-run
EOF
RUN <<EOF
#!/bin/sh -e
echo "run by its own interpreter" >/heredoc-shebang
EOF
RUN cat >/heredoc-fed <<-END && echo after >>/heredoc-fed
	fed to cat
	END
COPY <<CONF /etc/app.conf
greeting=$GREETING
who=${WHO}
CONF
COPY <<'RAW' /raw.txt
kept $GREETING
RAW
DF
cat >compose.yaml <<'YAML'
services:
  app:
    build:
      context: ./app
      secrets: [token]
    image: bk:1
secrets:
  token:
    file: ./token.txt
YAML

$O build app >"$W/build1.log" 2>&1
rc=$?
check_eq "build with BuildKit syntax: exit 0" 0 "$rc"
[ "$rc" = 0 ] || tail -5 "$W/build1.log" | sed 's/^/  /'
check_eq "a cache mount: the first build's RUN saw one run" 1 "$(run_in bk:1 cat /cache-count)"
check "the cache's content is not in the image" run_in bk:1 sh -c '! test -e /root/.cache/runs'
check_eq "a bind mount of the context" from-context "$(run_in bk:1 cat /from-context)"
check_eq "is read-only" read-only "$(run_in bk:1 cat /bind-ro)"
check "rw: the RUN's writes are thrown away, the context untouched" test ! -e app/written-by-rw
check_eq "a bind mount from another stage" generated "$(run_in bk:1 cat /from-stage)"
check_eq "a tmpfs mount" tmpfs "$(run_in bk:1 cat /tmpfs-ok)"
check "the tmpfs's content is not in the image" run_in bk:1 sh -c '! test -e /scratch/f'
check_eq "a secret from compose's build.secrets" s3cr3t "$(run_in bk:1 cat /secret-seen)"
check "the secret is not in the image" run_in bk:1 sh -c '! test -e /run/secrets/token'
check_eq "RUN <<EOF: the heredoc is the script, variables seen" "script hello world
second line" "$(run_in bk:1 cat /heredoc-run)"
check_eq "RUN <<EOF with #!: run by its interpreter" "run by its own interpreter" "$(run_in bk:1 cat /heredoc-shebang)"
check_eq "RUN cmd <<-END: fed to the command, tabs stripped" "fed to cat
after" "$(run_in bk:1 cat /heredoc-fed)"
check_eq "COPY <<CONF: a file, variables expanded" "greeting=hello
who=world" "$(run_in bk:1 cat /etc/app.conf)"
check_eq "COPY <<'RAW': quoted, kept as written" 'kept $GREETING' "$(run_in bk:1 cat /raw.txt)"

# The cache outlives the build: a second build (no step cache) sees it.
$O build --no-cache app >"$W/build2.log" 2>&1
check_eq "second build: exit 0" 0 $?
check_eq "a cache mount: the second build's RUN found the first one's file" 2 "$(run_in bk:1 cat /cache-count)"
check_eq "the cache is kept under the store" 1 "$(find "$ORCH_ROOT/build-cache" -name runs | wc -l)"
# A changed bind source changes the step's key; an unchanged one is cached.
$O build app >"$W/build3.log" 2>&1
check_match "unchanged: the bind step is taken from the cache" "Using cache" "$(cat "$W/build3.log")"
echo changed >app/data/x
$O build app >/dev/null 2>&1
check_eq "a changed bind source runs its step again" changed "$(run_in bk:1 cat /from-context)"
check_eq "no mount or scratch directory is left" "" \
	"$(grep " $ORCH_ROOT" /proc/self/mounts; find "$ORCH_ROOT/tmp" -mindepth 1 -maxdepth 1 -name 'build-*' 2>/dev/null)"

# ---- errors -----------------------------------------------------------------------
bad() {
	printf 'FROM busybox\n%s\n' "$2" >bad.Dockerfile
	out=$($O image build -f bad.Dockerfile --network none . 2>&1)
	check_eq "$1: exit 1" 1 $?
	check_match "$1: says so, at line 2" "bad.Dockerfile:2.*$3" "$out"
}
# ---- ADD of a URL: downloaded, 0600 unless --chmod, never unpacked, its
# content in the step's key; --checksum checked.
mkdir -p srv/dir ctx-url
echo hello-url >srv/dir/file.txt
(cd "$W" && tar cf srv/packed.tar token.txt)
python3 -m http.server 8123 --bind 127.0.0.1 --directory srv >/dev/null 2>&1 &
on_exit "kill $!"
U=http://127.0.0.1:8123
served() { curl -sf -o /dev/null "$U/dir/file.txt"; }
check "a web server for ADD" wait_for 10 served
sum=$(sha256sum srv/dir/file.txt | cut -d' ' -f1)
cat >ctx-url/Dockerfile <<DF
FROM busybox
ADD $U/dir/file.txt /opt/
ADD --checksum=sha256:$sum $U/dir/file.txt /named
ADD --chmod=644 $U/dir/file.txt?v=1 $U/packed.tar /multi/
DF
$O image build -t url-img ctx-url >"$W/out" 2>&1
check_eq "ADD of URLs: exit 0" 0 $?
out=$(run_in url-img sh -c 'stat -c "%a %n" /opt/file.txt /named /multi/file.txt /multi/packed.tar; cat /named; ls /multi')
check_match "into a directory: the URL's last part, mode 600" "600 /opt/file.txt" "$out"
check_match "as a file name given" "600 /named" "$out"
check_match "--chmod applies" "644 /multi/file.txt" "$out"
check_match "a remote archive is not unpacked" "644 /multi/packed.tar" "$out"
check_match "the content is the server's" "hello-url" "$out"
check "nothing unpacked from the archive" test -z "$(echo "$out" | grep token.txt)"
$O image build -t url-img ctx-url >"$W/out" 2>&1
check_match "the same content again: from the cache" "3 cached" "$(cat "$W/out")"
echo changed >srv/dir/file.txt
$O image build -t url-img ctx-url >"$W/out" 2>&1
check_eq "--checksum no longer matches: exit 1" 1 $?
check_match "the mismatch is named with its line" "Dockerfile:3: ADD $U/dir/file.txt: checksum mismatch: want sha256:$sum, got sha256:" "$(cat "$W/out")"
check_match "the step before it saw the new content: not from the cache" "STEP 2/4: .*
--> sha256:" "$(cat "$W/out")"
printf 'FROM busybox\nADD %s/dir/file.txt /opt/\n' "$U" >ctx-url/Dockerfile
$O image build -t url-img ctx-url >/dev/null 2>&1
check_eq "the new content is in the image" changed "$(run_in url-img cat /opt/file.txt)"

mkdir -p ctx-bad && cd ctx-bad || exit 1
bad "a URL the server has not" "ADD $U/nosuch /x" "ADD: $U/nosuch: the server answered HTTP 404"
bad "no server there" "ADD http://127.0.0.1:1/x /x" "Couldn't connect"
bad "a URL with a local source" "ADD $U/dir/file.txt bad.Dockerfile /x/" "one ADD takes URLs or local sources, not both"
bad "a git repository it cannot reach" "ADD https://127.0.0.1:9/x/y.git#v0.10.1 /x" "ADD https://127.0.0.1:9/x/y.git\#v0.10.1: git: "
bad "--checksum on COPY" "COPY --checksum=sha256:$sum bad.Dockerfile /x" "COPY does not take --checksum"
bad "--checksum not sha256" "ADD --checksum=md5:00 $U/dir/file.txt /x" "want sha256: and 64"
bad "unknown mount type" 'RUN --mount=type=nfs,target=/x true' 'unknown type "nfs"'
bad "unknown mount option" 'RUN --mount=type=cache,target=/x,colour=blue true' 'unknown option "colour"'
bad "relative target" 'RUN --mount=type=tmpfs,target=x true' 'target=x: an absolute path'
bad "a required ssh agent not forwarded" 'RUN --mount=type=ssh,required true' 'ssh "default" is not forwarded'
bad "a required secret not given" 'RUN --mount=type=secret,id=nope,required true' 'secret "nope" is not given'
bad "a bind source out of the context" 'RUN --mount=type=bind,source=../..,target=/x true' ''
bad "an unclosed heredoc" 'RUN <<EOF
echo never closed' 'heredoc <<EOF is not closed'
cd "$W" || exit 1
printf 'services:\n  app:\n    build:\n      context: ./app\n      secrets: [nosuch]\n' >bad-secret.yaml
out=$($O -f bad-secret.yaml build app 2>&1)
check_eq "a build secret not defined: exit 1" 1 $?
check_match "named with its place" 'bad-secret.yaml:5:17: service app: build secret "nosuch" is not defined' "$out"

# ---- build.additional_contexts: another service's image as a base
# (service:NAME, built first), a directory (COPY --from, RUN --mount
# from=), an image (docker-image://); and the errors.
mkdir -p ac/cli ac/app ac/shared
printf 'FROM busybox\nRUN echo from-cli >/cli.txt\n' >ac/cli/Dockerfile
echo shared-file >ac/shared/hello.txt
cat >ac/app/Dockerfile <<'DF'
FROM cli
COPY --from=shared hello.txt /hello.txt
RUN --mount=from=shared,target=/s cat /s/hello.txt >/mounted.txt
COPY --from=img /bin/busybox /bb2
DF
cat >ac/compose.yaml <<'YAML'
services:
  app:
    build:
      context: ./app
      additional_contexts:
        cli: service:cli
        shared: ./shared
        img: docker-image://busybox
  cli:
    build: ./cli
YAML
$O -f ac/compose.yaml build app >"$W/ac.log" 2>&1
check_eq "additional contexts: exit 0" 0 $?
check_match "the service named is built first" "Building cli .*Building app" "$(tr '\n' ' ' <"$W/ac.log")"
check_eq "FROM service:cli: its image is the base" from-cli "$(run_in ac-app cat /cli.txt)"
check_eq "COPY --from a directory context" shared-file "$(run_in ac-app cat /hello.txt)"
check_eq "RUN --mount from= a directory context" shared-file "$(run_in ac-app cat /mounted.txt)"
check "COPY --from a docker-image:// context" run_in ac-app test -x /bb2
check_match "config shows them, the directory absolute" "shared: $W/ac/shared" \
	"$($O -f ac/compose.yaml config)"
echo changed >ac/shared/hello.txt
$O -f ac/compose.yaml build app >/dev/null 2>&1
check_eq "a changed file of a directory context is built again" changed "$(run_in ac-app cat /hello.txt)"
$O image build -t ctxcli --build-context shared=ac/shared --build-context cli=docker-image://busybox \
	--build-context img=docker-image://busybox \
	-f ac/app/Dockerfile ac/app >/dev/null 2>"$W/acimg.log"
check_eq "image build --build-context: exit 0" 0 $?
check_eq "its directory context" changed "$(run_in ctxcli cat /hello.txt)"
$O image build --build-context nosuch ac/app >/dev/null 2>&1
check_eq "a --build-context without NAME=: usage" 2 $?
# ONBUILD: kept in the image; run first when an image is built FROM it.
mkdir -p onb/base onb/child
printf 'FROM busybox\nONBUILD COPY app.txt /app/app.txt\nONBUILD RUN echo triggered >/app/run.txt\n' >onb/base/Dockerfile
echo child-app >onb/child/app.txt
printf 'FROM onb-base\nRUN cat /app/app.txt /app/run.txt >/all.txt\n' >onb/child/Dockerfile
$O image build -t onb-base onb/base >/dev/null 2>&1
check_match "ONBUILD: the triggers are kept in the image" '"RUN echo triggered >/app/run.txt"' \
	"$($O image inspect onb-base)"
$O image build -t onb-child onb/child >"$W/onb.log" 2>&1
check_eq "an image built FROM it: exit 0" 0 $?
check_eq "ran them first, in its context" "child-app triggered" "$(run_in onb-child cat /all.txt | xargs)"
check "and does not keep them" sh -c "! '$O' image inspect onb-child | grep -q OnBuild"
acbad() {
	printf 'services:\n  app:\n    build:\n      context: ./app\n      additional_contexts:\n        %s\n  cli:\n    build: ./cli\n' "$2" >ac/bad.yaml
	out=$($O -f ac/bad.yaml build app 2>&1)
	check_eq "$1: exit 1" 1 $?
	check_match "$1: says so" "$3" "$out"
}
acbad "a git context" "cli: https://github.com/x/y.git" "bad.yaml:6:9: service app: additional context cli: https://github.com/x/y.git is not supported"
acbad "no such service" "cli: service:nosuch" "additional context cli: no service nosuch"
acbad "a missing directory" "cli: ./nosuch" "additional context cli: opening build context $W/ac/nosuch"
acbad "FROM a directory context" "cli: ./shared" "cli is a directory \(an additional context\)"
printf 'services:\n  a:\n    build:\n      context: ./cli\n      additional_contexts: {x: "service:b"}\n  b:\n    build:\n      context: ./cli\n      additional_contexts: {x: "service:a"}\n' >ac/loop.yaml
out=$($O -f ac/loop.yaml build 2>&1)
check_eq "services whose contexts name each other: exit 1" 1 $?
check_match "says so" "additional contexts name services that need its own image" "$out"
# build.extra_hosts and build.ulimits: RUN steps' /etc/hosts and limits.
mkdir -p eh
printf 'FROM busybox\nRUN cat /etc/hosts >/hosts.txt; ulimit -n >/nofile.txt; ulimit -Hn >>/nofile.txt\n' >eh/Dockerfile
cat >eh/compose.yaml <<'Y'
services:
  app:
    image: eh-app
    build:
      context: .
      extra_hosts: ["registry.local=10.1.2.3", "gw:host-gateway"]
      ulimits: {nofile: {soft: 1234, hard: 2345}}
Y
$O -f eh/compose.yaml build >"$W/eh.log" 2>&1
check_eq "build.extra_hosts, build.ulimits: exit 0" 0 $?
check_match "RUN sees the extra host" "10.1.2.3[[:space:]]+registry.local" "$(run_in eh-app cat /hosts.txt)"
check_match "host-gateway is the build network's gateway" "^[0-9.]+[[:space:]]+gw$" \
	"$(run_in eh-app grep -w gw /hosts.txt)"
check_match "and localhost" "127.0.0.1[[:space:]]+localhost" "$(run_in eh-app cat /hosts.txt)"
check_eq "and the limits" "1234 2345" "$(run_in eh-app cat /nofile.txt | xargs)"
top=$($O image inspect eh-app | jq -r '.[0].RootFS.Layers[-1]')
check_eq "the RUN layer holds what it wrote, not the mounts" "hosts.txt nofile.txt" \
	"$(ls -A "$ORCH_ROOT/layers/${top#sha256:}/diff" | xargs)"
$O image build -t eh-cli --add-host cli.local:10.9.8.7 --ulimit nofile=99 eh >/dev/null 2>&1
check_eq "image build --add-host --ulimit: exit 0" 0 $?
check_match "its host" "10.9.8.7[[:space:]]+cli.local" "$(run_in eh-cli cat /hosts.txt)"
check_eq "its limit" "99 99" "$(run_in eh-cli cat /nofile.txt | xargs)"
$O image build --add-host nohost eh >/dev/null 2>&1
check_eq "--add-host without an address: usage" 2 $?
$O image build --ulimit nofiles=1 eh >/dev/null 2>&1
check_eq "--ulimit of an unknown limit: usage" 2 $?
printf 'services:\n  a:\n    build:\n      context: .\n      extra_hosts: ["x=not-an-ip"]\n' >eh/bad.yaml
out=$($O -f eh/bad.yaml config -q 2>&1)
check_eq "build.extra_hosts not an address: config fails" 1 $?
check_match "at the entry" "bad.yaml:5:.*not-an-ip.* is not an IP address" "$out"
# RUN --mount=type=ssh: an agent of the suite's own, holding one key,
# asked for its identities by a static client in the image.
mkdir -p sshb
cat >sshb/agentq.c <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(void)
{
	const char *p = getenv("SSH_AUTH_SOCK");
	if (!p)
		return puts("no agent"), 0;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strncpy(a.sun_path, p, sizeof(a.sun_path) - 1);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return perror("connect"), 1;
	unsigned char q[5] = {0, 0, 0, 1, 11}, r[9]; /* REQUEST_IDENTITIES */
	size_t n = 0;
	if (write(fd, q, 5) != 5)
		return 1;
	for (ssize_t k; n < 9 && (k = read(fd, r + n, 9 - n)) > 0; n += (size_t)k)
		;
	if (n < 9 || r[4] != 12)
		return 1;
	printf("%u keys\n", (unsigned)r[5] << 24 | r[6] << 16 | r[7] << 8 | r[8]);
	return 0;
}
C
cc -static -O2 -o sshb/agentq sshb/agentq.c
check_eq "the agent client builds" 0 $?
ssh-keygen -q -t ed25519 -N '' -f "$T/sshkey"
ssh-agent -a "$T/agent.sock" >/dev/null
on_exit 'SSH_AUTH_SOCK=$T/agent.sock ssh-agent -k >/dev/null 2>&1; pkill -f "ssh-agent -a $T/agent.sock"'
SSH_AUTH_SOCK=$T/agent.sock ssh-add -q "$T/sshkey" 2>/dev/null
check_eq "a key in the suite's agent" 0 $?
cat >sshb/Dockerfile <<'DF'
FROM busybox
COPY agentq /agentq
RUN --mount=type=ssh /agentq >/default.txt
RUN --mount=type=ssh,id=other,target=/run/other.sock sh -c 'echo $SSH_AUTH_SOCK; SSH_AUTH_SOCK=/run/other.sock /agentq' >/other.txt
RUN --mount=type=ssh,id=absent /agentq >/absent.txt
DF
cat >sshb/compose.yaml <<'Y'
services:
  app:
    image: sshb-app
    build:
      context: .
      ssh: [default, "other=../agent.sock"]
Y
ln -s "$T/agent.sock" "$W/agent.sock"
SSH_AUTH_SOCK=$T/agent.sock $O -f sshb/compose.yaml build >"$W/ssh.log" 2>&1
check_eq "build.ssh: exit 0" 0 $?
check_eq "RUN --mount=type=ssh reaches the agent (SSH_AUTH_SOCK)" "1 keys" "$(run_in sshb-app cat /default.txt)"
check_eq "an id of its own, at its target" "/run/other.sock 1 keys" "$(run_in sshb-app cat /other.txt | xargs)"
check_eq "an id not forwarded and not required: no agent" "no agent" "$(run_in sshb-app cat /absent.txt)"
top=$($O image inspect sshb-app | jq -r '.[0].RootFS.Layers[-1]')
check_eq "no socket left in the layers" "absent.txt" \
	"$(ls -A "$ORCH_ROOT/layers/${top#sha256:}/diff" | xargs)"
sed -i 's/id=absent/id=absent,required/' sshb/Dockerfile
out=$(SSH_AUTH_SOCK=$T/agent.sock $O -f sshb/compose.yaml build 2>&1)
check_eq "a required id not forwarded: exit 1" 1 $?
check_match "naming the line and the way" 'Dockerfile:5: .*ssh "absent" is not forwarded \(compose.s build.ssh, or --ssh absent=SOCKET\)' "$out"
$O image build -t sshcli --ssh "absent=$T/agent.sock" --ssh "other=$T/agent.sock" \
	--ssh "default=$T/agent.sock" sshb >/dev/null 2>&1
check_eq "image build --ssh ID=SOCKET: exit 0" 0 $?
check_eq "its agent" "1 keys" "$(run_in sshcli cat /absent.txt)"
out=$(env -u SSH_AUTH_SOCK $O image build --ssh default sshb 2>&1)
check_eq "--ssh default without an agent: usage" 2 $?
check_match "saying so" "SSH_AUTH_SOCK is not set" "$out"
out=$($O image build --ssh "k=$T/sshkey" sshb 2>&1)
check_eq "--ssh of a key file: usage" 2 $?
check_match "saying keys go to an agent" "ssh-add them to an agent" "$out"
out=$(env -u SSH_AUTH_SOCK $O -f sshb/compose.yaml build 2>&1)
check_eq "build.ssh default without an agent: exit 1" 1 $?
check_match "at the entry" "compose.yaml:6:13: service app: build.ssh default: SSH_AUTH_SOCK is not set" "$out"
# ADD of a git repository, served by a git daemon of the suite's own.
G=$T/git
gitc() { git -c user.name=t -c user.email=t@example.com "$@"; }
mkdir -p "$G/src/sub"
(cd "$G/src" && git init -q && echo top >top.txt && echo deep >sub/deep.txt &&
	ln -s /etc out && gitc add -A && gitc commit -qm one && git tag v1 &&
	echo later >top.txt && gitc commit -qam two) >/dev/null 2>&1
git clone -q --bare "$G/src" "$G/repo.git"
git daemon --base-path="$G" --export-all --reuseaddr --listen=127.0.0.1 \
	--port=9418 --detach --pid-file="$G/pid" "$G"
on_exit 'kill "$(cat "$G/pid")" 2>/dev/null'
git_up() { git ls-remote git://127.0.0.1:9418/repo.git >/dev/null 2>&1; }
check "a git daemon serves the repository" wait_for 10 git_up
mkdir -p gitb
cat >gitb/Dockerfile <<'DF'
FROM busybox
ADD git://127.0.0.1:9418/repo.git /src
ADD git://127.0.0.1:9418/repo.git#v1:sub /v1sub
ADD --keep-git-dir=true git://127.0.0.1:9418/repo.git#v1 /kept
DF
$O image build -t gitb gitb >"$W/git.log" 2>&1
check_eq "ADD git://...: exit 0" 0 $?
check_eq "the default branch's tree" later "$(run_in gitb cat /src/top.txt)"
check "without its .git" run_in gitb sh -c '! test -e /src/.git'
check_eq "#REF:DIR: a directory of a tag" deep "$(run_in gitb cat /v1sub/deep.txt)"
check_eq "--keep-git-dir: the tag's tree" top "$(run_in gitb cat /kept/top.txt)"
check "with its .git" run_in gitb test -d /kept/.git
check_match "a symlink of the tree stays a symlink" "/etc" "$(run_in gitb readlink /src/out)"
out=$($O image build -t gitb gitb 2>&1)
check_match "unchanged: from the cache" "3 cached" "$out"
(cd "$G/src" && echo newer >top.txt && gitc commit -qam three && git push -q "$G/repo.git" HEAD) >/dev/null 2>&1
$O image build -t gitb gitb >/dev/null 2>&1
check_eq "a new commit: fetched again" newer "$(run_in gitb cat /src/top.txt)"
printf 'FROM busybox\nADD git://127.0.0.1:9418/repo.git#v1:out /x\n' >gitb/Dockerfile
out=$($O image build gitb 2>&1)
check_eq "#REF:DIR through a symlink out of the tree: exit 1" 1 $?
check_match "refused at its line" "Dockerfile:2: ADD git://127.0.0.1:9418/repo.git#v1:out: .*out" "$out"
printf 'FROM busybox\nADD git://127.0.0.1:9418/nosuch.git /x\n' >gitb/Dockerfile
out=$($O image build gitb 2>&1)
check_eq "a repository the server lacks: exit 1" 1 $?
check_match "git's answer, at the line" "Dockerfile:2: ADD git://127.0.0.1:9418/nosuch.git: git: " "$out"
printf 'FROM busybox\nADD git://127.0.0.1:9418/repo.git ./local /x/\n' >gitb/Dockerfile
out=$($O image build gitb 2>&1)
check_eq "a repository with other sources: exit 1" 1 $?
check_match "said" "a git repository is the only source of its ADD" "$out"
finish
