#!/bin/bash
# tfguard check and config validation for mTLS and tokens: AUTH-3 (client CA present and
# not expiring soon, CRL not past nextUpdate), AUTH-4 (token file owner and mode),
# AUTH-5 (tokens older than token_max_age, or of unknown age → warn); PROXY-1 accepts a
# Bearer challenge and, under client_cert = require, a refused handshake. Bad
# combinations of the client_* keys are refused with FILE:LINE. Read-only: the audit runs
# in this namespace, scoped by --netns to a namespace of the test's own.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
. "$TOP/tests/helpers/mtls_pki.sh"
need_root
need_cmd ss jq
netns_new NS
px_init
px_stub
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL="alice = *"
CLI=$B/tfguard
pki_ca ca 365
pki_crl ca
TOK=$TFG_TMP/tokens
: >"$TOK"
chown "root:$(id -gn "$PX_USER")" "$TOK"
chmod 0640 "$TOK"
"$CLI" token -f "$TOK" new alice >/dev/null 2>&1 || fail "token new"
old_hash=$(printf '%s' tfg_old | sha256sum | cut -c1-64)
printf 'alice:%s:created=2020-01-01T00:00:00Z old laptop\n' "$old_hash" >>"$TOK"
printf 'bob:%s\n' "$(printf '%s' tfg_undated | sha256sum | cut -c1-64)" >>"$TOK"

run_check() {
	JSON=$("$CLI" -c "$PX_CONF" check --netns "$NS" --json)
	jq -e . >/dev/null <<<"$JSON" || fail "--json does not parse: $JSON"
}
status_of() { jq -r --arg id "$1" '.controls[] | select(.id == $id) | .status' <<<"$JSON"; }
evidence_of() { jq -r --arg id "$1" '.controls[] | select(.id == $id) | .evidence[]' <<<"$JSON"; }

px_conf "auth = mtls, token, basic" "tokens = $TOK" "client_ca = $PKI/ca.pem" "client_crl = $PKI/ca.crl"
px_start
run_check
check "AUTH-3 passes: CA valid for a year, CRL fresh ($(evidence_of AUTH-3 | tr '\n' '|'))" [ "$(status_of AUTH-3)" = pass ]
check "AUTH-3 evidence names the CA and the CRL" bash -c "grep -q 'ca.pem: /CN=ca, 36[45] days left' <<<'$(evidence_of AUTH-3)' && grep -q 'ca.crl: CRL of /CN=ca: 0 revoked, nextUpdate in' <<<'$(evidence_of AUTH-3)'"
check "AUTH-4 passes: 0640 root:$(id -gn "$PX_USER")" [ "$(status_of AUTH-4)" = pass ]
check "AUTH-5 warns: an old token and one of unknown age" [ "$(status_of AUTH-5)" = warn ]
check "... the old one by line and age" grep -Eq "tokens:2: user alice token ${old_hash:0:12}: [0-9]+ days old" <<<"$(evidence_of AUTH-5)"
check "... the undated one" grep -q "tokens:3: user bob token .*: no created= date, age unknown" <<<"$(evidence_of AUTH-5)"
check "... and the count" grep -q "3 tokens, 1 older than 90 days, 1 of unknown age" <<<"$(evidence_of AUTH-5)"
check "PROXY-1 passes with both challenges" bash -c "[ '$(status_of PROXY-1)' = pass ] && grep -q 'with a Basic challenge with a Bearer challenge' <<<'$(evidence_of PROXY-1)'"
out=$("$CLI" -c "$PX_CONF" probe --proxy-port "$PX_PORT" 127.0.0.1:1)
check "probe: PASS with both challenges ($(grep proxy <<<"$out"))" grep -q "PASS  127.0.0.1:$PX_PORT (proxy): .* 401 with a Basic challenge with a Bearer challenge" <<<"$out"

chmod 0644 "$TOK"
run_check
check "AUTH-4 fails on a world-readable token file" [ "$(status_of AUTH-4)" = fail ]
check "... saying why" grep -q "world-readable" <<<"$(evidence_of AUTH-4)"
chmod 0640 "$TOK"

# a CA that expires in 10 days, a CRL past its nextUpdate
pki_ca shortca 10
_pki ca -config "$PKI/shortca.cnf" -gencrl -crl_lastupdate 20200101000000Z -crl_nextupdate 20200102000000Z -out "$PKI/shortca.crl"
kill -TERM "$PX_PID"
poll 5000 bash -c "! kill -0 $PX_PID 2>/dev/null" || fail "proxy did not stop"
PX_PORT= PX_ADMIN=
px_conf "auth = mtls" "client_ca = $PKI/shortca.pem" "client_crl = $PKI/shortca.crl" "client_cert = require" "token_max_age = 1d"
px_start
run_check
check "AUTH-3 fails: CRL past nextUpdate ($(evidence_of AUTH-3 | tail -1))" [ "$(status_of AUTH-3)" = fail ]
check "... and says the CA has 9-10 days left" grep -Eq "shortca.pem: /CN=shortca, (9|10) days left" <<<"$(evidence_of AUTH-3)"
check "AUTH-4/AUTH-5 pass when auth has no token" bash -c "[ '$(status_of AUTH-4)' = pass ] && [ '$(status_of AUTH-5)' = pass ]"
check "AUTH-1 passes when auth has no basic (no htpasswd read)" grep -q "auth does not include basic" <<<"$(evidence_of AUTH-1)"
check "PROXY-1: a client without a certificate is refused (client_cert = require)" bash -c "[ '$(status_of PROXY-1)' = pass ] && grep -q 'client_cert = require' <<<'$(evidence_of PROXY-1)'"
check "... by a TLS alert after a CertificateRequest ($(evidence_of PROXY-1 | head -1))" grep -q "alert certificate required (116) after asking for a client certificate" <<<"$(evidence_of PROXY-1)"
out=$("$CLI" -c "$PX_CONF" probe --proxy-port "$PX_PORT" 127.0.0.1:1)
check "probe: refused in TLS counts as a pass under require ($(grep proxy <<<"$out"))" grep -q "PASS  127.0.0.1:$PX_PORT (proxy): no client certificate -> refused in TLS" <<<"$out"
kill -TERM "$PX_PID"
poll 5000 bash -c "! kill -0 $PX_PID 2>/dev/null" || fail "proxy did not stop"
run_check
check "PROXY-1 fails under client_cert = require when nothing listens" [ "$(status_of PROXY-1)" = fail ]
"$CLI" -c "$PX_CONF" probe --proxy-port "$PX_PORT" 127.0.0.1:1 >/dev/null
check "probe: a dead proxy port is not compliant under require either" [ $? = 3 ]
# a plain-HTTP server where the proxy should be: its connection fails TLS too, but it
# never asked for a certificate, so it is no refusal (review 5: it passed)
bg "$PY" -m http.server --bind 127.0.0.1 "$PX_PORT"
HTTPD=$BG_PID
poll 5000 listening_local "$PX_PORT" || fail "http.server did not start"
run_check
check "PROXY-1 fails when a non-TLS server answers on the proxy port ($(status_of PROXY-1): $(evidence_of PROXY-1 | head -1))" [ "$(status_of PROXY-1)" = fail ]
out=$("$CLI" -c "$PX_CONF" probe --proxy-port "$PX_PORT" 127.0.0.1:1); rc=$?
check "probe: FAIL and exit 3 against a non-TLS server under require ($(grep proxy <<<"$out"), exit $rc)" bash -c "[ $rc = 3 ] && grep -q 'FAIL  127.0.0.1:$PX_PORT (proxy)' <<<\"\$1\"" _ "$out"
kill "$HTTPD"
wait "$HTTPD" 2>/dev/null
poll 5000 bash -c "! ss -Hltn 'sport = :$PX_PORT' | grep -q ." || fail "http.server still listening"
px_start
pki_crl shortca
run_check
check "AUTH-3 warns once the CRL is fresh: the CA expires within 30 days" [ "$(status_of AUTH-3)" = warn ]
# two CAs in client_ca, the CRL of only one (the proxy would refuse every client of the other)
cat "$PKI/shortca.pem" "$PKI/ca.pem" >"$PKI/two-ca.pem"
px_conf "auth = mtls" "client_ca = $PKI/two-ca.pem" "client_crl = $PKI/shortca.crl" "client_cert = require" "token_max_age = 1d"
run_check
check "AUTH-3 fails: a CA of client_ca without its CRL ($(evidence_of AUTH-3 | tail -1))" bash -c "[ '$(status_of AUTH-3)' = fail ] && grep -q 'NO CRL of /CN=ca in .*shortca.crl' <<<'$(evidence_of AUTH-3)'"
cat "$PKI/shortca.crl" "$PKI/ca.crl" >"$PKI/two.crl"
px_conf "auth = mtls" "client_ca = $PKI/two-ca.pem" "client_crl = $PKI/two.crl" "client_cert = require" "token_max_age = 1d"
run_check
check "AUTH-3 reads every CRL of the file: with both, only the short CA warns" bash -c "[ '$(status_of AUTH-3)' = warn ] && [ \$(grep -c 'CRL of /CN=' <<<'$(evidence_of AUTH-3)') = 2 ]"

# config validation: FILE:LINE, and the proxy refuses to start
bad=$TFG_TMP/bad.conf
# bad_conf CONTENT MESSAGE DESCRIPTION: --check-config fails and prints MESSAGE
bad_conf() {
	printf '%b' "$1" >"$bad"
	out=$("$PX_BIN" -c "$bad" --check-config 2>&1) && fail "$3: accepted"
	check "$3 → FILE:LINE" grep -qF "$2" <<<"$out"
}
bad_conf '[proxy]\nclient_cert = require\n' "bad.conf:2: client_cert = require but auth does not include mtls" "client_cert = require without mtls"
bad_conf '[proxy]\nauth = basic, mtls\n' "bad.conf:2: auth includes mtls but [proxy] client_ca is not set" "auth = mtls without client_ca"
bad_conf '[proxy]\nclient_crl = /x.crl\n' "bad.conf:2: client_crl is set but client_ca is not" "client_crl without client_ca"
bad_conf '[proxy]\ntoken_max_age = soon\n' "bad.conf:2: token_max_age: 'soon' is not a duration" "a bad token_max_age"
# a CRL file that is not a CRL: --check-config names it
cp "$PKI/ca.pem" "$TFG_TMP/not-a-crl.pem"
sed -i "s|^client_crl = .*|client_crl = $TFG_TMP/not-a-crl.pem|" "$PX_CONF"
out=$("$PX_BIN" -c "$PX_CONF" --check-config 2>&1) && fail "a certificate accepted as CRL"
check "a certificate given as client_crl is refused, the file named" grep -q "not-a-crl.pem: cannot load the CRL" <<<"$out"

# the token command's own errors
out=$("$CLI" -c /dev/null token new alice 2>&1); rc=$?
check "token new without a token file: exit 1, says how ($out)" bash -c "[ $rc = 1 ] && grep -q 'set \[proxy\] tokens = FILE' <<<'$out'"
"$CLI" -c /dev/null token -f "$TOK" new 'al ice' >/dev/null 2>&1
check "token new with an invalid user name: exit 2" [ $? = 2 ]
check "token appears in tfguard --help" bash -c "'$CLI' --help | grep -q '^  token '"
pass
