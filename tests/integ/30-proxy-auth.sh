#!/bin/bash
# tfguard-proxy, authentication: real curl over real TLS against htpasswd files made by
# Apache's htpasswd for every scheme it offers (-B -m -2 -5 -s -d) plus a {SSHA} line
# built here. The right user gets the stand-in's answer byte for byte; wrong password,
# unknown user, missing or malformed Authorization get 401 with the challenge; the
# stand-in never sees Authorization and sees the right X-Forwarded-User/-For/-Proto.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss
px_init
px_stub

# one user per scheme; passwords differ per user
htpasswd -bB "$PX_HT" u_bcrypt 'pw-bcrypt' 2>/dev/null || fail "htpasswd -B"
htpasswd -bm "$PX_HT" u_apr1 'pw-apr1' 2>/dev/null || fail "htpasswd -m"
htpasswd -b2 "$PX_HT" u_sha256 'pw-sha256' 2>/dev/null || fail "htpasswd -2"
htpasswd -b5 "$PX_HT" u_sha512 'pw-sha512' 2>/dev/null || fail "htpasswd -5"
htpasswd -bs "$PX_HT" u_sha1 'pw-sha1' 2>/dev/null || fail "htpasswd -s"
htpasswd -bd "$PX_HT" u_des 'pwdes' 2>/dev/null || fail "htpasswd -d"
# {SSHA}: base64(SHA1(password + salt) + salt), as OpenLDAP's slappasswd makes it
ssha=$("$PY" -c 'import hashlib,base64; s=b"\x01\x02saltsalt"; print("{SSHA}"+base64.b64encode(hashlib.sha1(b"pw-ssha"+s).digest()+s).decode())')
echo "u_ssha:$ssha" >>"$PX_HT"
# a malformed line: warned about with file:line, everyone else still works
echo "broken-line-without-colon" >>"$PX_HT"
echo "u_bad:\$9\$notascheme" >>"$PX_HT"
PX_ACL=""
px_conf 'realm = Model zoo' 'auth_fail_limit = 1000'
check "--check-config accepts the setup" "$PX_BIN" -c "$PX_CONF" --check-config
px_start
check "malformed htpasswd line named with file:line" grep -q "htpasswd:8: " "$PX_LOG"
check "an empty [acl] is a warning at start (every user may call every model)" \
	grep -q 'no \[acl\] lines: every user in the htpasswd file may call every model' "$PX_LOG"

direct() { curl -s "http://127.0.0.1:$STUB_PORT$1" "${@:2}"; }
want=$(direct /v1/models/half_plus_two)
for u in bcrypt apr1 sha256 sha512 sha1 des ssha; do
	pw="pw-$u"
	[ "$u" = des ] && pw=pwdes
	got=$(pcurl -u "u_$u:$pw" "$(PURL /v1/models/half_plus_two)")
	[ "$got" = "$want" ] || fail "scheme $u: answer differs: $got"
	say "ok: $u logs in, answer byte for byte"
	check "$u: no Authorization forwarded" [ "$(rec_last '[h for h,v in r["headers"] if h.lower()=="authorization"]')" = "[]" ]
	check "$u: X-Forwarded-User" [ "$(rec_last '[v for h,v in r["headers"] if h=="X-Forwarded-User"]')" = "['u_$u']" ]
	check "$u: X-Forwarded-For" [ "$(rec_last '[v for h,v in r["headers"] if h=="X-Forwarded-For"]')" = "['127.0.0.1']" ]
	check "$u: X-Forwarded-Proto" [ "$(rec_last '[v for h,v in r["headers"] if h=="X-Forwarded-Proto"]')" = "['https']" ]
	check "$u: wrong password → 401" expect_code 401 -u "u_$u:wrong" "$(PURL /v1/models/half_plus_two)"
done

# predict, row and columnar, byte for byte
body='{"instances": [1.0, 2.0, 5.0]}'
want=$(direct /v1/models/half_plus_two:predict -d "$body")
got=$(pcurl -u u_bcrypt:pw-bcrypt -d "$body" "$(PURL /v1/models/half_plus_two:predict)")
check "predict (row) byte for byte" [ "$got" = "$want" ]
body='{"inputs": {"x": [1.0, 2.0]}}'
want=$(direct /v1/models/half_plus_two:predict -d "$body")
got=$(pcurl -u u_bcrypt:pw-bcrypt -d "$body" "$(PURL /v1/models/half_plus_two:predict)")
check "predict (columnar) byte for byte" [ "$got" = "$want" ]
check "forwarded body hash" [ "$(rec_last 'r["body_sha256"]')" = "$(printf %s "$body" | sha256sum | cut -d' ' -f1)" ]

n=$(rec_count)
check "unknown user → 401" expect_code 401 -u nobody-here:pw "$(PURL /v1/models/half_plus_two)"
check "no Authorization → 401" expect_code 401 "$(PURL /v1/models/half_plus_two)"
check "401 body is TF Serving-shaped" grep -q '"error"' "$TFG_TMP/body"
hdrs=$(pcurl -D - -o /dev/null "$(PURL /v1/models/half_plus_two)")
check "WWW-Authenticate with realm and charset" grep -qF 'WWW-Authenticate: Basic realm="Model zoo", charset="UTF-8"' <<<"$hdrs"
check "malformed base64 → 401" expect_code 401 -H 'Authorization: Basic !!!notbase64' "$(PURL /v1/models/half_plus_two)"
check "no colon → 401" expect_code 401 -H "Authorization: Basic $(printf alice | base64)" "$(PURL /v1/models/half_plus_two)"
check "Bearer scheme → 401" expect_code 401 -H 'Authorization: Bearer abc' "$(PURL /v1/models/half_plus_two)"
check "user from the malformed line cannot log in" expect_code 401 -u 'u_bad:x' "$(PURL /v1/models/half_plus_two)"
check "nothing of the refused requests reached the stand-in" [ "$(rec_count)" = "$n" ]
check "failures are logged for fail2ban" grep -q 'auth: failed login from 127.0.0.1 user "nobody-here"' "$PX_LOG"

# the credential cache: a second bcrypt login is much faster than the first
t0=$(date +%s%N); pcurl -o /dev/null -u u_bcrypt:pw-bcrypt "$(PURL /v1/models/half_plus_two)"; t1=$(date +%s%N)
say "cached bcrypt login: $(((t1 - t0) / 1000)) µs"
check "cache hits counted" bash -c "curl -s http://127.0.0.1:$PX_ADMIN/metrics | grep -Eq '^tfguard_proxy_cred_cache_hits_total [1-9]'"

# plain HTTP on the TLS port: a clear 400, then close
out=$(curl -s -m 5 -o "$TFG_TMP/body" -w '%{http_code}' "http://127.0.0.1:$PX_PORT/v1/models/half_plus_two")
check "plain HTTP on the TLS port → 400" [ "$out" = 400 ]
check "... with a clear message" grep -q 'plain HTTP request was sent to the HTTPS port' "$TFG_TMP/body"
# TLS: 1.2 and 1.3 only, AEAD suites only
check "TLS 1.3 works" curl -s -o /dev/null --tlsv1.3 --cacert "$TFG_TMP/cert.pem" --resolve "localhost:$PX_PORT:127.0.0.1" "https://localhost:$PX_PORT/v1/models/x"
check "TLS 1.2 works" curl -s -o /dev/null --tls-max 1.2 --cacert "$TFG_TMP/cert.pem" --resolve "localhost:$PX_PORT:127.0.0.1" "https://localhost:$PX_PORT/v1/models/x"
check_not "TLS 1.1 refused" curl -s -o /dev/null --tlsv1.1 --tls-max 1.1 --cacert "$TFG_TMP/cert.pem" --resolve "localhost:$PX_PORT:127.0.0.1" "https://localhost:$PX_PORT/v1/models/x"
check_not "CBC suite refused" curl -s -o /dev/null --tls-max 1.2 --ciphers ECDHE-ECDSA-AES128-SHA256 --cacert "$TFG_TMP/cert.pem" --resolve "localhost:$PX_PORT:127.0.0.1" "https://localhost:$PX_PORT/v1/models/x"
# resumption: openssl s_client -reconnect reports "Reused"
res=$(timeout 10 openssl s_client -connect "127.0.0.1:$PX_PORT" -tls1_2 -reconnect -CAfile "$TFG_TMP/cert.pem" </dev/null 2>/dev/null | grep -c '^Reused')
check "TLS 1.2 session resumption" [ "$res" -ge 1 ]

# --check-config: a key that does not match the certificate is refused
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=other \
	-keyout "$TFG_TMP/other.pem" -out /dev/null 2>/dev/null
chmod 600 "$TFG_TMP/other.pem"
sed "s|^tls_key = .*|tls_key = $TFG_TMP/other.pem|" "$PX_CONF" >"$TFG_TMP/bad.conf"
out=$("$PX_BIN" -c "$TFG_TMP/bad.conf" --check-config 2>&1)
check_not "--check-config refuses a key/cert mismatch" "$PX_BIN" -c "$TFG_TMP/bad.conf" --check-config
check "mismatch message names the key" grep -q "does not match" <<<"$out"
check "--help describes --check-config" bash -c "'$PX_BIN' --help | grep -q check-config"
pass
