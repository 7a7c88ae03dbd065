#!/bin/bash
# Registries over TLS with a CA made here, and with authentication:
# htpasswd Basic (orch login/logout, the docker config file, DOCKER_CONFIG)
# and a token service (Bearer) that the registry trusts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/registry_helpers.inc"
cd "$W" || exit 1
export DOCKER_CONFIG=$T/docker
R=127.0.0.1:5443

# ---- a CA, a server certificate, htpasswd ------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca \
	-keyout "$T/ca.key" -out "$T/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
	-keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$T/san.ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial \
	-days 2 -extfile "$T/san.ext" -out "$T/srv.crt" 2>/dev/null
htpasswd -Bbn alice s3cret >"$T/htpasswd"
REG_TLS_CERT=$T/srv.crt REG_TLS_KEY=$T/srv.key REG_EXTRA="auth:
  htpasswd:
    realm: test-realm
    path: $T/htpasswd" reg_start basic "$R" || { fail "registry starts"; finish; }

$MK docker "$W/bb" bb:v1 --cmd /bin/sh "$FIXTURE_TAR"
docker_archive "$W/bb" "$W/bb.tar"
skopeo_put "docker-archive:$W/bb.tar" "$R/bb:v1" --dest-creds alice:s3cret

# ---- TLS -------------------------------------------------------------------------------
$O image pull "$R/bb:v1" >/dev/null 2>"$W/err"
check_eq "unknown CA: exit 1" 1 $?
check_match "unknown CA: a certificate error naming the registry" "$R.*(certificate|SSL)" "$(cat "$W/err")"
printf '{"insecure-registries": ["%s"]}\n' "$R" >"$ORCH_ROOT/registries.json"
$O image pull "$R/bb:v1" >/dev/null 2>"$W/err"
check_match "listed as insecure: TLS not verified (the registry's 401 comes through)" "HTTP 401" "$(cat "$W/err")"
rm "$ORCH_ROOT/registries.json"
mkdir -p "$ORCH_ROOT/certs.d/$R"
cp "$T/ca.crt" "$ORCH_ROOT/certs.d/$R/ca.crt"

# ---- Basic auth --------------------------------------------------------------------------
$O image pull "$R/bb:v1" >/dev/null 2>"$W/err"
check_eq "anonymous on a Basic registry: exit 1" 1 $?
check_match "401 names the registry and orch login" "$R refused anonymous access \(HTTP 401.*run \`orch login $R\`" "$(cat "$W/err")"
check_eq "401: nothing stored" 0 "$(layers_count)"
$O login -u alice -p wrong "$R" >/dev/null 2>"$W/err"
check_eq "login with a wrong password: exit 1" 1 $?
check "wrong password: nothing written" test ! -e "$DOCKER_CONFIG/config.json"
echo s3cret | $O login -u alice --password-stdin "https://$R/" >"$W/out" 2>&1
check_eq "login: exit 0" 0 $?
check_match "login: Login Succeeded" "Login Succeeded" "$(cat "$W/out")"
auth=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["auths"][sys.argv[2]]["auth"])' "$DOCKER_CONFIG/config.json" "$R")
check_eq "credentials stored as docker does (base64 user:password)" "$(printf alice:s3cret | base64)" "$auth"
$O image pull "$R/bb:v1" >/dev/null 2>"$W/err"
rc=$?
check_eq "pull with stored credentials: exit 0" 0 "$rc"
[ "$rc" = 0 ] || sed "s/^/  /" "$W/err"
check_match "pulled" "^$R/bb +v1 " "$($O images)"
$O image tag "$R/bb:v1" "$R/mine:v1"
$O image push "$R/mine:v1" >/dev/null 2>"$W/err"
rc=$?
check_eq "push with stored Basic credentials: exit 0" 0 "$rc"
[ "$rc" = 0 ] || sed "s/^/  /" "$W/err"
check_eq "logout" "Removing login credentials for $R" "$($O logout "$R")"
check_eq "logout again" "Not logged in to $R" "$($O logout "$R")"
$O image rm "$R/bb:v1" >/dev/null
$O image pull "$R/bb:v1" >/dev/null 2>"$W/err"
check_eq "after logout: 401 again" 1 $?
# A config written by docker elsewhere, named by DOCKER_CONFIG.
mkdir -p "$T/other"
printf '{"auths":{"%s":{"auth":"%s"}},"psFormat":"x"}\n' "$R" "$(printf alice:s3cret | base64)" >"$T/other/config.json"
DOCKER_CONFIG=$T/other $O image pull "$R/bb:v1" >/dev/null 2>"$W/err"
rc=$?
check_eq "DOCKER_CONFIG's credentials used: exit 0" 0 "$rc"
[ "$rc" = 0 ] || sed "s/^/  /" "$W/err"
DOCKER_CONFIG=$T/other $O logout "$R" >/dev/null
check_match "logout keeps the file's other keys" '"psFormat": "x"' "$(cat "$T/other/config.json")"

# ---- a token service (Bearer) ---------------------------------------------------------------
RT=127.0.0.1:5444
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=token-signer \
	-keyout "$T/tok.key" -out "$T/tok.crt" 2>/dev/null
python3 "$TOP/tests/fixtures/token-server.py" 127.0.0.1:5001 "$T/tok.key" "$T/tok.crt" \
	test-issuer bob:t0ken "$T/tokens.log" 2>"$T/token-server.err" &
on_exit "kill $!"
REG_EXTRA="auth:
  token:
    realm: http://127.0.0.1:5001/token
    service: test-registry
    issuer: test-issuer
    rootcertbundle: $T/tok.crt" reg_start token "$RT" || { fail "token registry starts"; finish; }
mkdir -p "$W/extra/data" && echo extra >"$W/extra/data/file"
$MK tar "$W/extra.tar" "$W/extra"
$MK docker "$W/two" two:v1 --cmd /bin/sh "$FIXTURE_TAR" "$W/extra.tar"
docker_archive "$W/two" "$W/two.tar"
skopeo_put "docker-archive:$W/two.tar" "$RT/team/two:v1" --dest-creds bob:t0ken
$O image pull "$RT/team/two:v1" >/dev/null 2>"$W/err"
check_eq "anonymous, token service refuses: exit 1" 1 $?
check_match "token refused: names the registry and orch login" "$RT: the token service refused anonymous access.*orch login $RT" "$(cat "$W/err")"
echo t0ken | $O login -u bob --password-stdin "$RT" >/dev/null 2>"$W/err"
check_eq "login through the token service: exit 0" 0 $?
: >"$T/tokens.log"
$O image pull "$RT/team/two:v1" >/dev/null 2>"$W/err"
rc=$?
check_eq "pull with a bearer token: exit 0" 0 "$rc"
[ "$rc" = 0 ] || sed "s/^/  /" "$W/err" "$T/token-server.err"
check_match "pulled the 2-layer image" "^$RT/team/two +v1 " "$($O images)"
check_eq "one token for the repository, reused for every blob" \
	"token repository:team/two:pull" "$(cat "$T/tokens.log")"
$O image tag "$RT/team/two:v1" "$RT/team/copy:v1"
: >"$T/tokens.log"
$O image push "$RT/team/copy:v1" >"$W/out" 2>"$W/err"
rc=$?
check_eq "push with a bearer token: exit 0" 0 "$rc"
[ "$rc" = 0 ] || sed "s/^/  /" "$W/err"
check_eq "one token, for pushing there and reading where the image came from" \
	"token repository:team/copy:pull,push repository:team/two:pull" "$(cat "$T/tokens.log")"
check_match "its layers are mounted from there" "Mounted from team/two" "$(cat "$W/out")"
# Blobs redirected to another host (object storage): followed, and the
# token is not sent there.
RP=127.0.0.1:5445
python3 "$TOP/tests/fixtures/redirect-proxy.py" "$RP" "$RT" 127.0.0.2:5446 "$T/token" \
	"$T/blobs.log" 2>"$T/redirect.err" &
on_exit "kill $!"
wait_for 5 curl -s -o /dev/null "http://$RP/v2/" || fail "the redirecting front listens"
echo t0ken | $O login -u bob --password-stdin "$RP" >/dev/null 2>"$W/err"
ORCH_ROOT=$T/redirected $O image pull "$RP/team/two:v1" >/dev/null 2>"$W/err"
rc=$?
check_eq "pull with blobs redirected to another host: exit 0" 0 "$rc"
[ "$rc" = 0 ] || sed "s/^/  /" "$W/err"
check_eq "both layers (and the config) came from the blob host" 3 "$(wc -l <"$T/blobs.log")"
check_eq "without the registry's credentials" 0 "$(grep -c 'auth=yes' "$T/blobs.log")"
$O logout "$RP" >/dev/null
$O logout "$RT" >/dev/null
$O image push "$RT/team/copy:v1" >/dev/null 2>"$W/err"
check_eq "anonymous push: exit 1" 1 $?
check_match "anonymous push: names the registry and orch login" "$RT.*orch login $RT" "$(cat "$W/err")"

finish
