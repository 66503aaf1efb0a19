#!/bin/bash
# tfguard-proxy, several methods on one listener: a request presenting two different
# identities (certificate for one user, Basic or Bearer for another) gets 400; the same
# user twice is fine, but every credential presented must verify (a wrong password or
# token beside a good certificate → 401); `auth` decides which methods count (a
# credential of an unlisted method is ignored, never a way in) and the order of the 401
# challenges; nothing refused ever reaches the backend stand-in.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
. "$TOP/tests/helpers/mtls_pki.sh"
need_cmd ss
px_init
px_stub
htpasswd -bB "$PX_HT" alice alice-pw 2>/dev/null
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
chown "$PX_USER" "$PX_HT"
PX_ACL="alice = *
bob = *"
pki_ca ca
pki_client ca alice
TOK=$TFG_TMP/tokens
: >"$TOK"
t_alice=$("$B/tfguard" token -f "$TOK" new alice 2>/dev/null) || fail "token new alice"
t_bob=$("$B/tfguard" token -f "$TOK" new bob 2>/dev/null) || fail "token new bob"
CA_LINES=("client_ca = $PKI/ca.pem" "client_cert = optional")

restart() {
	if [ -n "${PX_PID:-}" ]; then
		kill -TERM "$PX_PID"
		poll 5000 bash -c "! kill -0 $PX_PID 2>/dev/null" || fail "proxy did not stop"
	fi
	PX_PORT= PX_ADMIN=
	px_conf "$@"
	px_start
	U=$(PURL /v1/models/fraud)
}
xfu() { rec_last '[v for h,v in r["headers"] if h.lower()=="x-forwarded-user"]'; }

# ---- all three, token first -------------------------------------------------------------
restart "auth = token, mtls, basic" "tokens = $TOK" "${CA_LINES[@]}"
n0=$(rec_count)
check "certificate alice + Bearer bob → 400" [ "$(mcode alice -H "Authorization: Bearer $t_bob" "$U")" = 400 ]
check "certificate alice + Basic bob → 400" [ "$(mcode alice -u bob:bob-pw "$U")" = 400 ]
check "certificate alice + Basic bob with a wrong password → 400 (before any hash)" [ "$(mcode alice -u bob:nope "$U")" = 400 ]
check "certificate alice + Bearer alice, wrong token → 401" [ "$(mcode alice -H "Authorization: Bearer ${t_alice}x" "$U")" = 401 ]
check "certificate alice + Basic alice, wrong password → 401" [ "$(mcode alice -u alice:nope "$U")" = 401 ]
check "no credential → 401" expect_code 401 "$U"
check "the challenges follow auth's order: Bearer, then Basic" [ "$(challenges "$U" | cut -d' ' -f2 | tr '\n' ' ')" = "Bearer Basic " ]
grep -q 'refused request from 127.0.0.1 (two identities: token says "bob", mtls says "alice")' "$PX_LOG" ||
	fail "conflict not logged: $(grep refused "$PX_LOG" | tail -2)"
say "ok: the conflict is logged: $(grep -m1 'two identities' "$PX_LOG")"
check "nothing refused reached the backend" [ "$(rec_count)" = "$n0" ]
check "certificate alice + Bearer alice → 200" [ "$(mcode alice -H "Authorization: Bearer $t_alice" "$U")" = 200 ]
check "... as alice" [ "$(xfu)" = "['alice']" ]
check "certificate alice + Basic alice → 200" [ "$(mcode alice -u alice:alice-pw "$U")" = 200 ]
check "Bearer bob alone → 200 as bob" expect_code 200 -H "Authorization: Bearer $t_bob" "$U"
check "... as bob" [ "$(xfu)" = "['bob']" ]
check "Basic bob alone → 200" expect_code 200 -u bob:bob-pw "$U"
check "certificate alone → 200 as alice" [ "$(mcode alice "$U")" = 200 ]
check "the five good requests reached the backend" [ $(($(rec_count) - n0)) = 5 ]

# ---- basic before token, no mtls: the certificate is not even asked for -------------------
restart "auth = basic, token" "tokens = $TOK"
check "the challenges follow auth's order: Basic, then Bearer" [ "$(challenges "$U" | cut -d' ' -f2 | tr '\n' ' ')" = "Basic Bearer " ]
check "a certificate of alice is not an identity here: Bearer bob → 200 as bob" [ "$(mcode alice -H "Authorization: Bearer $t_bob" "$U")" = 200 ]
check "... as bob" [ "$(xfu)" = "['bob']" ]
check "a certificate alone is not enough → 401" [ "$(mcode alice "$U")" = 401 ]

# ---- token only: Basic is not accepted -------------------------------------------------------
restart "auth = token" "tokens = $TOK"
n1=$(rec_count)
check "auth = token: a valid Basic password → 401" expect_code 401 -u bob:bob-pw "$U"
check "... with only the Bearer challenge" [ "$(challenges "$U")" = 'WWW-Authenticate: Bearer realm="TensorFlow Serving"' ]
check "nothing refused reached the backend" [ "$(rec_count)" = "$n1" ]

# ---- basic only: tokens are not accepted ------------------------------------------------------
restart "tokens = $TOK"
check "auth = basic (default): a valid token → 401" expect_code 401 -H "Authorization: Bearer $t_bob" "$U"
check "... with only the Basic challenge" [ "$(challenges "$U")" = 'WWW-Authenticate: Basic realm="TensorFlow Serving", charset="UTF-8"' ]
check "nothing refused reached the backend" [ "$(rec_count)" = "$n1" ]

# ---- mtls + token without basic: no htpasswd needed, Basic ignored -----------------------------
PX_HT=$TFG_TMP/does-not-exist
restart "auth = mtls, token" "tokens = $TOK" "${CA_LINES[@]}"
check "starts without an htpasswd file" kill -0 "$PX_PID"
check "certificate alice + Basic bob (not a listed method: ignored) → 200 as alice" [ "$(mcode alice -u bob:bob-pw "$U")" = 200 ]
check "... as alice, without the Authorization header" [ "$(rec_last '[(h.lower(),v) for h,v in r["headers"] if h.lower() in ("x-forwarded-user","authorization")]')" = "[('x-forwarded-user', 'alice')]" ]
check "mtls + token: 401 challenge is Bearer only" [ "$(challenges "$U")" = 'WWW-Authenticate: Bearer realm="TensorFlow Serving"' ]
restart "auth = mtls" "${CA_LINES[@]}"
check "auth = mtls alone: 401 without a certificate" expect_code 401 "$U"
check "... and no WWW-Authenticate (no HTTP scheme for certificates)" [ -z "$(challenges "$U")" ]
pass
