#!/bin/bash
# tfguard-proxy, certificates: an RSA leaf signed by an intermediate CA, served as a
# chain (leaf + intermediate in tls_cert) so a client trusting only the root verifies it;
# ECDHE-RSA suites only (no RSA key exchange); TLS 1.3 resumption with a session ticket;
# --check-config on a chain; an expired-looking/unreadable key is named in the error.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss
px_init
px_stub
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL="bob = *"
d=$TFG_TMP/pki
mkdir -p "$d"
ossl() { openssl "$@" 2>/dev/null || fail "openssl $1 failed"; }
ossl req -x509 -newkey rsa:2048 -nodes -subj /CN=tfg-root -days 2 -keyout "$d/root.key" -out "$d/root.pem" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
ossl req -newkey rsa:2048 -nodes -subj /CN=tfg-intermediate -keyout "$d/int.key" -out "$d/int.csr"
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$d/int.ext"
ossl x509 -req -in "$d/int.csr" -CA "$d/root.pem" -CAkey "$d/root.key" -CAcreateserial -days 2 \
	-extfile "$d/int.ext" -out "$d/int.pem"
ossl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$d/leaf.key" -out "$d/leaf.csr"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$d/leaf.ext"
ossl x509 -req -in "$d/leaf.csr" -CA "$d/int.pem" -CAkey "$d/int.key" -CAcreateserial -days 2 \
	-extfile "$d/leaf.ext" -out "$d/leaf.pem"
cat "$d/leaf.pem" "$d/int.pem" >"$TFG_TMP/cert.pem"
cp "$d/leaf.key" "$TFG_TMP/key.pem"
chmod 600 "$TFG_TMP/key.pem"
px_conf
check "--check-config accepts the chain" "$PX_BIN" -c "$PX_CONF" --check-config
px_start
check "client trusting only the root verifies the chain" bash -c "curl -s -o /dev/null -w '%{http_code}' --cacert '$d/root.pem' --resolve localhost:$PX_PORT:127.0.0.1 -u bob:bob-pw https://localhost:$PX_PORT/v1/models/fraud | grep -q 200"
n=$(timeout 5 openssl s_client -connect "127.0.0.1:$PX_PORT" -showcerts </dev/null 2>/dev/null | grep -c 'BEGIN CERTIFICATE')
check "two certificates sent ($n)" [ "$n" = 2 ]
check "ECDHE-RSA-AES128-GCM-SHA256 (TLS 1.2) accepted" curl -s -o /dev/null --tls-max 1.2 --ciphers ECDHE-RSA-AES128-GCM-SHA256 --cacert "$d/root.pem" --resolve "localhost:$PX_PORT:127.0.0.1" "https://localhost:$PX_PORT/v1/models/x"
check_not "AES128-GCM-SHA256 (RSA key exchange) refused" curl -s -o /dev/null --tls-max 1.2 --ciphers AES128-GCM-SHA256 --cacert "$d/root.pem" --resolve "localhost:$PX_PORT:127.0.0.1" "https://localhost:$PX_PORT/v1/models/x"
check_not "ECDHE-RSA-AES128-SHA (CBC) refused" curl -s -o /dev/null --tls-max 1.2 --ciphers ECDHE-RSA-AES128-SHA --cacert "$d/root.pem" --resolve "localhost:$PX_PORT:127.0.0.1" "https://localhost:$PX_PORT/v1/models/x"
# TLS 1.3 resumption: save the ticket, reconnect with it
printf 'GET /v1/models/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$TFG_TMP/req"
timeout 5 openssl s_client -connect "127.0.0.1:$PX_PORT" -tls1_3 -CAfile "$d/root.pem" -sess_out "$TFG_TMP/sess" -ign_eof <"$TFG_TMP/req" >/dev/null 2>&1
out=$(timeout 5 openssl s_client -connect "127.0.0.1:$PX_PORT" -tls1_3 -CAfile "$d/root.pem" -sess_in "$TFG_TMP/sess" </dev/null 2>/dev/null)
check "TLS 1.3 session resumed with a ticket" grep -q '^Reused, TLSv1.3' <<<"$out"
# a key that is readable by every user is refused with the path named
chmod 644 "$TFG_TMP/key.pem"
out=$("$PX_BIN" -c "$PX_CONF" --check-config 2>&1)
check_not "world-readable key refused" "$PX_BIN" -c "$PX_CONF" --check-config
check "... with the path and the fix" grep -q "key.pem: readable by every user (chmod 600" <<<"$out"
pass
