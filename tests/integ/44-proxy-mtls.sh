#!/bin/bash
# tfguard-proxy, mTLS: a test CA made with `openssl ca` issues a client certificate
# (alice), an expired one, a revoked one (in the CRL) and carol's; a second CA issues
# another "alice". Through real curl --cert/--key:
#   client_cert = require: the good ones get 200 and their CN is the user (ACL, access
#   log, X-Forwarded-User); no certificate, expired, other CA and revoked fail the
#   handshake; carol is held to her ACL (403 for another model).
#   client_cert = optional (auth = mtls, basic): without any credential 401; the bad
#   certificates get 401 (even with a valid password: fail closed); Basic alone works.
#   client_user_from = san: the user is the DNS subjectAltName.
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
pki_revoke ca revoked
check "the expired certificate really is expired" bash -c "! openssl x509 -in '$PKI/expired.pem' -noout -checkend 0 >/dev/null"
check "the CRL lists the revoked serial" bash -c "openssl crl -in '$PKI/ca.crl' -noout -text | grep -q 'Serial Number'"

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
pki_revoke ca svc
kill -HUP "$PX_PID"
QUIET=1 poll 5000 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert '$TFG_TMP/cert.pem' --resolve localhost:$PX_PORT:127.0.0.1 --cert '$PKI/svc.pem' --key '$PKI/svc.key' '$(PURL /v1/models/churn)')\" = 401 ]" ||
	fail "svc still accepted after its revocation and SIGHUP"
say "ok: a certificate revoked later is refused after SIGHUP reloads the CRL"

# ---- session resumption cannot carry a certificate past its revocation --------------------
# (session tickets outlive a reload: the session id context is bound to the CA and CRL)
kill -TERM "$PX_PID"
poll 5000 bash -c "! kill -0 $PX_PID 2>/dev/null" || fail "proxy did not stop"
pki_client ca dave
PX_ACL="dave = *"
PX_PORT= PX_ADMIN=
px_conf "auth = mtls" "client_ca = $PKI/ca.pem" "client_crl = $PKI/ca.crl" "client_cert = require"
px_start
printf 'GET /v1/models/fraud HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$TFG_TMP/req"
sclient() {
	timeout 5 openssl s_client -connect "127.0.0.1:$PX_PORT" -tls1_3 -CAfile "$TFG_TMP/cert.pem" \
		-cert "$PKI/dave.pem" -key "$PKI/dave.key" -ign_eof "$@" <"$TFG_TMP/req" 2>&1
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
pass
