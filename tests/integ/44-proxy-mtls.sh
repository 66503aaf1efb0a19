#!/bin/bash
# tfguard-proxy, mTLS: a test CA made with `openssl ca` issues a client certificate
# (alice), an expired one, a revoked one (in the CRL) and carol's; a second CA issues
# another "alice". Through real curl --cert/--key:
#   client_cert = require: the good ones get 200 and their CN is the user (ACL, access
#   log, X-Forwarded-User); no certificate, expired, other CA and revoked fail the
#   handshake; carol is held to her ACL (403 for another model).
#   client_cert = optional (auth = mtls, basic): without any credential 401; the bad
#   certificates get 401 (even with a valid password: fail closed); Basic alone works.
#   client_user_from = san: the user is the DNS subjectAltName (exactly one).
#   Open connections: a keep-alive connection whose certificate is revoked (CRL + SIGHUP),
#   expires, or whose CA is replaced gets 401 + Connection: close on its next request; a
#   session resumed after the expiry gets 401. Every certificate of a chain is checked
#   against its CRL (a revoked intermediate). A reload whose TLS context fails while
#   client_* changed is rejected whole. The README's CA recipes run as written.
# Nothing refused ever reaches the backend stand-in (its record is counted).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
. "$TOP/tests/helpers/mtls_pki.sh"
need_cmd ss
px_init
px_stub
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL="alice = *
bob = *
carol = fraud
svc-a.internal = churn"

pki_ca ca
pki_ca otherca
pki_client ca alice
pki_client ca carol
pki_client ca expired -startdate 20200101000000Z -enddate 20200102000000Z
pki_client ca revoked
pki_client otherca alice-other -subj /CN=alice
PKI_SAN=DNS:svc-a.internal,email:ops@example.org pki_client ca svc
PKI_SAN=DNS:svc-a.internal,DNS:admin.internal pki_client ca twodns
PKI_SAN=email:svc-a.internal,email:admin.internal pki_client ca twomail
PKI_SAN=email:svc-a.internal pki_client ca onemail
pki_revoke ca revoked
check "the expired certificate really is expired" bash -c "! openssl x509 -in '$PKI/expired.pem' -noout -checkend 0 >/dev/null"
check "the CRL lists the revoked serial" bash -c "openssl crl -in '$PKI/ca.crl' -noout -text | grep -q 'Serial Number'"

# ---- the README's CA recipes, run as written (paths moved to a temporary directory) ----------
# recipe NAME: the first fenced block after the README line "<!-- recipe: NAME (...) -->",
# with /etc/tfguard/clients-ca moved and the systemctl lines dropped (no service here)
RCA=$TFG_TMP/readme-ca
recipe() {
	awk -v name="$1" 'index($0, "<!-- recipe: " name " ") == 1 { f = 1; next }
		f && /^```/ { if (b) exit; b = 1; next }
		f && b { print }' "$TOP/README.md" | sed -e "s|/etc/tfguard/clients-ca|$RCA|g" -e '/^systemctl /d'
}
run_recipe() {
	local sh=$TFG_TMP/recipe-$1.sh
	recipe "$1" >"$sh"
	[ -s "$sh" ] || fail "README has no recipe $1"
	(cd "$RCA" 2>/dev/null || cd "$TFG_TMP"; bash -e "$sh") >>"$TFG_TMP/recipe.log" 2>&1
}
rverify() { openssl verify -CAfile "$RCA/ca.pem" -crl_check -CRLfile "$RCA/clients.crl" "$RCA/$1" 2>&1; }
check "README recipe mtls-ca runs" run_recipe mtls-ca
check "... and its certificate verifies against its CA and CRL" grep -q ': OK$' <<<"$(rverify svc-fraud.pem)"
check "... CN = svc-fraud" grep -q 'CN *= *svc-fraud' <<<"$(openssl x509 -in "$RCA/svc-fraud.pem" -noout -subject)"
# a request that asks for another user's name as its subjectAltName, issued as the recipe does
(cd "$RCA" && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=svc-fraud \
	-addext subjectAltName=DNS:admin -keyout svc-fraud.key -out svc-fraud.csr 2>/dev/null &&
	openssl ca -batch -config ca.cnf -extensions client -in svc-fraud.csr -out evil.pem 2>/dev/null) ||
	fail "the recipe's ca.cnf does not issue a second certificate for the same CN"
check "the recipe's ca.cnf does not copy a requested subjectAltName" bash -c "! openssl x509 -in '$RCA/evil.pem' -noout -ext subjectAltName 2>/dev/null | grep -q DNS"
check "README recipe mtls-san runs (a second certificate for the same CN)" run_recipe mtls-san
san=$(openssl x509 -in "$RCA/svc-fraud.pem" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' ')
check "... the subjectAltName is the CA's (DNS:svc-fraud), not the request's (DNS:admin): got '$san'" [ "$san" = DNS:svc-fraud ]
check "README recipe mtls-rotate runs" run_recipe mtls-rotate
check "... the old certificate is revoked" grep -q 'certificate revoked' <<<"$(rverify svc-fraud.old.pem)"
check "... the new one verifies" grep -q ': OK$' <<<"$(rverify svc-fraud.pem)"

# ---- require -------------------------------------------------------------------------
px_conf "auth = mtls" "client_ca = $PKI/ca.pem" "client_crl = $PKI/ca.crl" "client_cert = require"
check "--check-config accepts client_ca and client_crl" "$PX_BIN" -c "$PX_CONF" --check-config
px_start
n0=$(rec_count)
check "require: alice's certificate → 200" [ "$(mcode alice "$(PURL /v1/models/fraud)")" = 200 ]
check "the backend sees X-Forwarded-User: alice (the CN)" [ "$(rec_last '[v for h,v in r["headers"] if h.lower()=="x-forwarded-user"]')" = "['alice']" ]
check "carol (CN) may call fraud" [ "$(mcode carol "$(PURL /v1/models/fraud)")" = 200 ]
n1=$(rec_count)
check "carol is held to her ACL: churn → 403" [ "$(mcode carol "$(PURL /v1/models/churn)")" = 403 ]
code=$(pcurl -o /dev/null -w '%{http_code}' "$(PURL /v1/models/fraud)")
check "require: no certificate → handshake fails (got $code)" [ "$code" = 000 ]
check "require: expired certificate → handshake fails" [ "$(mcode expired "$(PURL /v1/models/fraud)")" = 000 ]
check "require: certificate of another CA → handshake fails" [ "$(mcode alice-other "$(PURL /v1/models/fraud)")" = 000 ]
check "require: revoked certificate → handshake fails" [ "$(mcode revoked "$(PURL /v1/models/fraud)")" = 000 ]
check "require: a password does not replace the certificate" [ "$(pcurl -o /dev/null -w '%{http_code}' -u bob:bob-pw "$(PURL /v1/models/fraud)")" = 000 ]
check "nothing refused reached the backend ($n1 → $(rec_count))" [ "$(rec_count)" = "$n1" ]
check "two requests reached it before ($n0 → $n1)" [ $((n1 - n0)) = 2 ]
poll 3000 grep -q '"user":"alice"' "$PX_ACCESS" || fail "access log has no user alice: $(tail -3 "$PX_ACCESS")"
say "ok: access log user field: $(grep -m1 -o '"user":"alice"' "$PX_ACCESS")"
check "metrics count TLS failures" bash -c "curl -s http://127.0.0.1:$PX_ADMIN/metrics | grep -Eq '^tfguard_proxy_tls_handshake_failures_total [4-9]'"
kill -TERM "$PX_PID"
poll 5000 bash -c "! kill -0 $PX_PID 2>/dev/null" || fail "proxy did not stop"

# ---- optional, beside Basic ------------------------------------------------------------
PX_PORT= PX_ADMIN=
px_conf "auth = mtls, basic" "client_ca = $PKI/ca.pem" "client_crl = $PKI/ca.crl" "client_cert = optional"
px_start
n1=$(rec_count)
check "optional: no credential at all → 401" expect_code 401 "$(PURL /v1/models/fraud)"
check "optional: the 401 carries the Basic challenge" grep -q '^WWW-Authenticate: Basic realm=' <<<"$(challenges "$(PURL /v1/models/fraud)")"
check "optional: expired certificate → 401" [ "$(mcode expired "$(PURL /v1/models/fraud)")" = 401 ]
check "optional: certificate of another CA → 401" [ "$(mcode alice-other "$(PURL /v1/models/fraud)")" = 401 ]
check "optional: revoked certificate → 401" [ "$(mcode revoked "$(PURL /v1/models/fraud)")" = 401 ]
check "optional: revoked certificate + valid password → 401 (fail closed)" [ "$(mcode revoked -u bob:bob-pw "$(PURL /v1/models/fraud)")" = 401 ]
grep -q 'failed login from 127.0.0.1 user "" (client certificate not verified: certificate revoked)' "$PX_LOG" ||
	fail "no fail2ban line for the revoked certificate: $(grep 'failed login' "$PX_LOG" | tail -3)"
say "ok: revoked certificate logged: $(grep -m1 'certificate revoked' "$PX_LOG")"
check "nothing refused reached the backend" [ "$(rec_count)" = "$n1" ]
check "optional: Basic alone still works" expect_code 200 -u bob:bob-pw "$(PURL /v1/models/fraud)"
check "optional: alice's certificate → 200" [ "$(mcode alice "$(PURL /v1/models/churn)")" = 200 ]
check "optional: carol still held to her ACL" [ "$(mcode carol "$(PURL /v1/models/churn)")" = 403 ]
kill -TERM "$PX_PID"
poll 5000 bash -c "! kill -0 $PX_PID 2>/dev/null" || fail "proxy did not stop"

# ---- user from subjectAltName; CRL reloaded on SIGHUP ---------------------------------------
PX_PORT= PX_ADMIN=
px_conf "auth = mtls" "client_ca = $PKI/ca.pem" "client_crl = $PKI/ca.crl" "client_user_from = san"
px_start
check "san: the DNS name is the user (svc-a.internal may call churn)" [ "$(mcode svc "$(PURL /v1/models/churn)")" = 200 ]
check "san: X-Forwarded-User is the DNS name" [ "$(rec_last '[v for h,v in r["headers"] if h.lower()=="x-forwarded-user"]')" = "['svc-a.internal']" ]
check "san: and its ACL applies (fraud → 403)" [ "$(mcode svc "$(PURL /v1/models/fraud)")" = 403 ]
check "san: a certificate without a SAN → 401" [ "$(mcode alice "$(PURL /v1/models/churn)")" = 401 ]
check "san: two DNS names → 401 (no guessing which)" [ "$(mcode twodns "$(PURL /v1/models/churn)")" = 401 ]
check "... logged as such" grep -q 'failed login from 127.0.0.1 user "" (certificate has 2 DNS subjectAltNames (one is needed))' "$PX_LOG"
check "san: no DNS name, one email → that is the user (200)" [ "$(mcode onemail "$(PURL /v1/models/churn)")" = 200 ]
check "san: no DNS name, two emails → 401" [ "$(mcode twomail "$(PURL /v1/models/churn)")" = 401 ]
# the server key made root-only (as a started-as-root proxy may keep it): the certificate
# cannot be re-read after the privilege drop, but the new CRL must still apply
chown root "$TFG_TMP/key.pem"
pki_revoke ca svc
kill -HUP "$PX_PID"
poll 5000 grep -q 'certificate not reloaded: .*client CA and CRL reloaded' "$PX_LOG" ||
	fail "reload with a root-only key did not say the client CA and CRL were reloaded"
say "ok: $(grep -m1 'client CA and CRL reloaded' "$PX_LOG")"
QUIET=1 poll 5000 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert '$TFG_TMP/cert.pem' --resolve localhost:$PX_PORT:127.0.0.1 --cert '$PKI/svc.pem' --key '$PKI/svc.key' '$(PURL /v1/models/churn)')\" = 401 ]" ||
	fail "svc still accepted after its revocation and SIGHUP"
say "ok: a certificate revoked later is refused after SIGHUP reloads the CRL (server key root-only)"
check "the old server certificate still serves" [ "$(mcode twodns -o /dev/null "$(PURL /v1/models/churn)")" = 401 ]
chown "$PX_USER" "$TFG_TMP/key.pem"

# ---- session resumption cannot carry a certificate past its revocation --------------------
# (session tickets outlive a reload: the session id context is bound to the CA and CRL)
kill -TERM "$PX_PID"
poll 5000 bash -c "! kill -0 $PX_PID 2>/dev/null" || fail "proxy did not stop"
pki_client ca dave
pki_client ca eve
PX_ACL="dave = *
eve = *
brief = *"
PX_PORT= PX_ADMIN=
px_conf "auth = mtls" "client_ca = $PKI/ca.pem" "client_crl = $PKI/ca.crl" "client_cert = require"
px_start
printf 'GET /v1/models/fraud HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$TFG_TMP/req"
sclient() {
	timeout 5 openssl s_client -connect "127.0.0.1:$PX_PORT" -tls1_3 -CAfile "$TFG_TMP/cert.pem" \
		-cert "$PKI/${SC_CERT:-dave}.pem" -key "$PKI/${SC_CERT:-dave}.key" -ign_eof "$@" <"$TFG_TMP/req" 2>&1
}
out=$(sclient -sess_out "$TFG_TMP/sess")
check "dave: full handshake, 200" grep -q '^HTTP/1.1 200' <<<"$out"
out=$(sclient -sess_in "$TFG_TMP/sess")
check "dave: the session resumes (control: resumption works here)" grep -q '^Reused, TLSv1.3' <<<"$out"
check "... and the resumed request gets 200" grep -q '^HTTP/1.1 200' <<<"$out"
pki_revoke ca dave
nrel=$(grep -c 'reloaded .*tfguard.conf' "$PX_LOG")
kill -HUP "$PX_PID"
poll 5000 bash -c "[ \$(grep -c 'reloaded .*tfguard.conf' '$PX_LOG') -gt $nrel ]" || fail "no reload logged"
out=$(sclient -sess_in "$TFG_TMP/sess")
check_not "after revocation + reload the old session is not resumed" grep -q '^Reused' <<<"$out"
check_not "... and the revoked certificate gets no answer" grep -q '^HTTP/1.1' <<<"$out"

# ---- a keep-alive connection does not outlive its certificate ---------------------------------
# The handshake's verdict is made again after a reload, and the notAfter is checked on every
# request: a revoked or expired certificate gets 401 with Connection: close on its open
# connection, and a session resumed after the expiry gets 401 too.
# ka NAME: a keep-alive connection with NAME's certificate (tests/helpers/ka_client.py); its
# second request waits for $TFG_TMP/go-NAME; its lines go to $TFG_TMP/ka-NAME.
ka() {
	bg "$PY" "$TOP/tests/helpers/ka_client.py" "$PX_PORT" "$TFG_TMP/cert.pem" "$PKI/$1.pem" \
		"$PKI/$1.key" /v1/models/fraud "$TFG_TMP/go-$1" >"$TFG_TMP/ka-$1"
	poll 10000 grep -q '^[1e]' "$TFG_TMP/ka-$1" || fail "$1: no first answer"
}
ka_second() {
	touch "$TFG_TMP/go-$1"
	poll 15000 grep -Eq '^(closed|open|error)' "$TFG_TMP/ka-$1" || fail "$1: no second answer: $(cat "$TFG_TMP/ka-$1")"
	say "$1: $(tr '\n' ' ' <"$TFG_TMP/ka-$1")"
}
ka eve
check "eve: keep-alive connection, first request → 200" grep -qx '1 200' "$TFG_TMP/ka-eve"
pki_revoke ca eve
nrel=$(grep -c 'reloaded .*tfguard.conf' "$PX_LOG")
kill -HUP "$PX_PID"
poll 5000 bash -c "[ \$(grep -c 'reloaded .*tfguard.conf' '$PX_LOG') -gt $nrel ]" || fail "no reload logged"
ka_second eve
check "eve revoked + SIGHUP: the next request on the open connection → 401, Connection: close" grep -qx '2 401 close' "$TFG_TMP/ka-eve"
check "... and the proxy closed that connection" grep -qx closed "$TFG_TMP/ka-eve"
grep -q 'failed login from 127.0.0.1 user "" (client certificate not verified: certificate revoked)' "$PX_LOG" ||
	fail "no failed-login line for eve's revoked certificate"

# a certificate valid for a few seconds: one keep-alive connection and one saved session
pki_client ca brief -enddate "$(date -u -d '+5 sec' +%Y%m%d%H%M%SZ)"
until_s=$(date -u -d "$(openssl x509 -in "$PKI/brief.pem" -noout -enddate | cut -d= -f2)" +%s)
ka brief
check "brief: keep-alive connection, first request → 200" grep -qx '1 200' "$TFG_TMP/ka-brief"
out=$(SC_CERT=brief sclient -sess_out "$TFG_TMP/sess-brief")
check "brief: full handshake, 200 (session saved)" grep -q '^HTTP/1.1 200' <<<"$out"
poll 20000 bash -c "[ \$(date +%s) -gt $until_s ]" || fail "clock did not pass brief's notAfter"
ka_second brief
check "brief expired: the next request on the open connection → 401, Connection: close" grep -qx '2 401 close' "$TFG_TMP/ka-brief"
check "... and the proxy closed that connection" grep -qx closed "$TFG_TMP/ka-brief"
out=$(SC_CERT=brief sclient -sess_in "$TFG_TMP/sess-brief")
check "brief expired: its saved session still resumes (control)" grep -q '^Reused, TLSv1.3' <<<"$out"
check "... but the resumed request → 401" grep -q '^HTTP/1.1 401' <<<"$out"
check "expiry logged as a failed login" grep -q 'failed login from 127.0.0.1 user "" (client certificate not verified: certificate has expired)' "$PX_LOG"

# ---- an intermediate CA: every certificate of the chain is checked against its issuer's CRL --
kill -TERM "$PX_PID"
poll 5000 bash -c "! kill -0 $PX_PID 2>/dev/null" || fail "proxy did not stop"
pki_ca root
pki_subca root inter
pki_client inter ivan
cat "$PKI/ivan.pem" "$PKI/inter.pem" >"$PKI/ivan-chain.pem" # the client sends leaf + intermediate
cp "$PKI/ivan.key" "$PKI/ivan-chain.key"
pki_crl root
pki_crl inter
cat "$PKI/root.crl" "$PKI/inter.crl" >"$PKI/chain.crl"
PX_ACL="ivan = *"
PX_PORT= PX_ADMIN=
px_conf "auth = mtls" "client_ca = $PKI/root.pem" "client_crl = $PKI/inter.crl" "client_cert = require"
out=$("$PX_BIN" -c "$PX_CONF" --check-config 2>&1) && fail "a client_crl without the CRL of a client_ca CA was accepted"
check "a CA of client_ca without its CRL is refused at load, naming it" grep -q 'no CRL of the client CA /CN=root' <<<"$out"
px_conf "auth = mtls" "client_ca = $PKI/root.pem" "client_crl = $PKI/chain.crl" "client_cert = require"
px_start
check "ivan (issued by an intermediate, chain sent) → 200" [ "$(mcode ivan-chain "$(PURL /v1/models/fraud)")" = 200 ]
pki_revoke root inter
cat "$PKI/root.crl" "$PKI/inter.crl" >"$PKI/chain.crl"
kill -HUP "$PX_PID"
QUIET=1 poll 5000 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert '$TFG_TMP/cert.pem' --resolve localhost:$PX_PORT:127.0.0.1 --cert '$PKI/ivan-chain.pem' --key '$PKI/ivan-chain.key' '$(PURL /v1/models/fraud)')\" = 000 ]" ||
	fail "ivan still accepted after its intermediate CA was revoked (only the leaf checked?)"
say "ok: the intermediate revoked in the root's CRL → ivan's handshake fails"

# ---- a TLS context that fails to load cannot run under new client_* settings -------------------
# optional → require with an unreadable CA: the whole reload is rejected (the [acl] change too),
# rather than the old optional context running under a configuration that says require
kill -TERM "$PX_PID"
poll 5000 bash -c "! kill -0 $PX_PID 2>/dev/null" || fail "proxy did not stop"
PX_ACL="bob = *
alice = *"
PX_PORT= PX_ADMIN=
px_conf "auth = mtls, basic" "client_ca = $PKI/ca.pem" "client_crl = $PKI/ca.crl" "client_cert = optional"
px_start
check "optional: bob by password → 200" expect_code 200 -u bob:bob-pw "$(PURL /v1/models/fraud)"
# (first: a new client_ca also applies to open connections)
ka alice
check "alice: keep-alive connection, first request → 200" grep -qx '1 200' "$TFG_TMP/ka-alice"
pki_crl otherca
px_conf "auth = mtls, basic" "client_ca = $PKI/otherca.pem" "client_crl = $PKI/otherca.crl" "client_cert = optional"
nrel=$(grep -c 'reloaded .*tfguard.conf' "$PX_LOG")
kill -HUP "$PX_PID"
poll 5000 bash -c "[ \$(grep -c 'reloaded .*tfguard.conf' '$PX_LOG') -gt $nrel ]" || fail "no reload logged"
ka_second alice
check "client_ca changed to another CA: alice's open connection → 401, Connection: close" grep -qx '2 401 close' "$TFG_TMP/ka-alice"
check "... and closed" grep -qx closed "$TFG_TMP/ka-alice"
PX_ACL="bob = churn"
px_conf "auth = mtls, basic" "client_ca = $PKI/no-such-ca.pem" "client_crl = $PKI/ca.crl" "client_cert = require"
nrej=$(grep -c 'reload rejected' "$PX_LOG")
kill -HUP "$PX_PID"
poll 5000 bash -c "[ \$(grep -c 'reload rejected' '$PX_LOG') -gt $nrej ]" || fail "reload with a bad client CA not rejected: $(tail -3 "$PX_LOG")"
check "the rejection names the CA and the changed client_* settings" grep -q "reload rejected: .*no-such-ca.pem.*client_\* changed" "$PX_LOG"
check "... and the [acl] change of the same reload is not in force (bob → fraud still 200)" expect_code 200 -u bob:bob-pw "$(PURL /v1/models/fraud)"
pass
