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
check_eq "pull with stored credentials: exit 0" 0 $?
check_match "pulled" "^$R/bb +v1 " "$($O images)"
check_eq "logout" "Removing login credentials for $R" "$($O logout "$R")"
check_eq "logout again" "Not logged in to $R" "$($O logout "$R")"
$O image rm "$R/bb:v1" >/dev/null
$O image pull "$R/bb:v1" >/dev/null 2>"$W/err"
check_eq "after logout: 401 again" 1 $?
# A config written by docker elsewhere, named by DOCKER_CONFIG.
mkdir -p "$T/other"
printf '{"auths":{"%s":{"auth":"%s"}},"psFormat":"x"}\n' "$R" "$(printf alice:s3cret | base64)" >"$T/other/config.json"
DOCKER_CONFIG=$T/other $O image pull "$R/bb:v1" >/dev/null 2>"$W/err"
check_eq "DOCKER_CONFIG's credentials used: exit 0" 0 $?
DOCKER_CONFIG=$T/other $O logout "$R" >/dev/null
check_match "logout keeps the file's other keys" '"psFormat": "x"' "$(cat "$T/other/config.json")"

finish
