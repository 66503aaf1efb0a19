#!/bin/bash
# tfguard-proxy, API tokens: tokens made by `tfguard token new` work with
# curl -H 'Authorization: Bearer …' (user, ACL, X-Forwarded-User, access log); the token
# file holds no clear token, only its SHA-256; a revoked token (`tfguard token revoke`,
# picked up from the file change without a signal) and an altered one get 401; an
# ambiguous hash prefix is refused with nothing changed; the file keeps its mode and
# owner; bearer failures count in the per-address failure throttle like wrong passwords;
# the backend stand-in never sees a refused request or any Authorization header.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
. "$TOP/tests/helpers/mtls_pki.sh"
need_cmd ss
px_init
px_stub
PX_ACL="alice = *
bob = fraud"
TOK=$TFG_TMP/tokens
CLI=$B/tfguard
: >"$TOK"
chown "root:$(id -gn "$PX_USER")" "$TOK"
chmod 0640 "$TOK"
px_conf "auth = token" "tokens = $TOK" "auth_fail_limit = 1000"

t_alice=$("$CLI" -c "$PX_CONF" token new -m "laptop" alice 2>"$TFG_TMP/new.err") || fail "token new: $(cat "$TFG_TMP/new.err")"
t_bob=$("$CLI" -c "$PX_CONF" token new bob 2>/dev/null) || fail "token new bob"
t_bob2=$("$CLI" -c "$PX_CONF" token new bob 2>/dev/null) || fail "token new bob (2)"
say "token shape: ${t_alice:0:8}… (${#t_alice} chars)"
check "token is tfg_ + 43 base64url characters (256 bits)" grep -Eq '^tfg_[A-Za-z0-9_-]{43}$' <<<"$t_alice"
check "two tokens differ" [ "$t_bob" != "$t_bob2" ]
check "stderr says it is shown once" grep -q "shown only once" "$TFG_TMP/new.err"
check "the token file holds no clear token" bash -c "! grep -qF -e '$t_alice' -e '$t_bob' -e '$t_bob2' '$TOK'"
check "... but the SHA-256 of each" grep -q "^alice:$(printf '%s' "$t_alice" | sha256sum | cut -c1-64):created=20[0-9-]*T[0-9:]*Z laptop$" "$TOK"
check "the file kept its mode and group" [ "$(stat -c '%a %U %G' "$TOK")" = "640 root $(id -gn "$PX_USER")" ]

px_start
n0=$(rec_count)
check "alice's token → 200" expect_code 200 -H "Authorization: Bearer $t_alice" "$(PURL /v1/models/churn)"
check "X-Forwarded-User: alice, no Authorization forwarded" [ "$(rec_last '[(h.lower(),v) for h,v in r["headers"] if h.lower() in ("x-forwarded-user","authorization")]')" = "[('x-forwarded-user', 'alice')]" ]
check "bob's second token → 200 (several tokens per user)" expect_code 200 -H "Authorization: Bearer $t_bob2" "$(PURL /v1/models/fraud)"
check "bob is held to his ACL: churn → 403" expect_code 403 -H "Authorization: Bearer $t_bob" "$(PURL /v1/models/churn)"
check "the scheme is case-insensitive (bearer)" expect_code 200 -H "Authorization: bearer $t_alice" "$(PURL /v1/models/churn)"
n1=$(rec_count)
check "no credential → 401 with a Bearer challenge" expect_code 401 "$(PURL /v1/models/churn)"
check "... and only Bearer (auth = token)" [ "$(challenges "$(PURL /v1/models/churn)")" = 'WWW-Authenticate: Bearer realm="TensorFlow Serving"' ]
altered=${t_alice%?}$([ "${t_alice: -1}" = A ] && echo B || echo A)
check "an altered token → 401" expect_code 401 -H "Authorization: Bearer $altered" "$(PURL /v1/models/churn)"
check "the token's hash as a token → 401" expect_code 401 -H "Authorization: Bearer $(printf '%s' "$t_alice" | sha256sum | cut -c1-64)" "$(PURL /v1/models/churn)"
check "nothing refused reached the backend" [ "$(rec_count)" = "$n1" ]
check "three good requests did ($n0 → $n1)" [ $((n1 - n0)) = 3 ]
poll 3000 grep -q '"user":"alice"' "$PX_ACCESS" || fail "access log has no user alice"
say "ok: access log names the token's user"

# revoke by ambiguous and by unique hash prefix; by user
h2=$(printf '%s' "$t_bob2" | sha256sum | cut -c1-12)
cp "$TOK" "$TFG_TMP/tok.before"
check_not "a hash prefix shorter than 8 digits is refused" "$CLI" -c "$PX_CONF" token revoke "${h2:0:4}"
check "... and nothing changed" cmp -s "$TOK" "$TFG_TMP/tok.before"
check "revoke bob's second token by hash prefix" "$CLI" -c "$PX_CONF" token revoke "$h2"
QUIET=1 poll 5000 expect_code 401 -H "Authorization: Bearer $t_bob2" "$(PURL /v1/models/fraud)" || fail "revoked token still accepted"
say "ok: revoked token → 401 (file change picked up without a signal)"
check "bob's other token still works" expect_code 200 -H "Authorization: Bearer $t_bob" "$(PURL /v1/models/fraud)"
check "revoke every token of alice" "$CLI" -c "$PX_CONF" token revoke alice
QUIET=1 poll 5000 expect_code 401 -H "Authorization: Bearer $t_alice" "$(PURL /v1/models/churn)" || fail "alice's token still accepted"
say "ok: revoked user → 401"
check "the file kept its mode and group after revoke" [ "$(stat -c '%a %U %G' "$TOK")" = "640 root $(id -gn "$PX_USER")" ]
check "token list shows bob once, no token" bash -c "'$CLI' -c '$PX_CONF' token list | grep -c '^bob ' | grep -qx 1"
# an ambiguous prefix: two hash lines (written by hand) that share 10 hex digits
printf 'carol:%s:created=2026-01-01T00:00:00Z\ndave:%s\n' "0123456789a$(printf '%053d' 1)" "0123456789b$(printf '%053d' 2)" >>"$TOK"
cp "$TOK" "$TFG_TMP/tok.before"
out=$("$CLI" -c "$PX_CONF" token revoke 0123456789 2>&1) && fail "an ambiguous prefix was accepted"
check "an ambiguous hash prefix is refused, saying so" grep -q "is ambiguous: 2 tokens match" <<<"$out"
check "... and nothing changed" cmp -s "$TOK" "$TFG_TMP/tok.before"
check "one more digit makes it unique" "$CLI" -c "$PX_CONF" token revoke 0123456789b
check_not "an unknown user/prefix is refused" "$CLI" -c "$PX_CONF" token revoke nobody-here

# SIGHUP reloads the file too; a token appended by hand (hash only) works
t_hand=tfg_handmade-$RANDOM$RANDOM
echo "alice:$(printf '%s' "$t_hand" | sha256sum | cut -c1-64):added by hand" >>"$TOK"
kill -HUP "$PX_PID"
QUIET=1 poll 5000 expect_code 200 -H "Authorization: Bearer $t_hand" "$(PURL /v1/models/churn)" || { tail -5 "$PX_LOG"; fail "hand-added token not accepted"; }
say "ok: a hand-added hash line works after reload"

# bearer failures count in the per-address throttle (restarted with auth_fail_limit = 4)
kill -TERM "$PX_PID"
poll 5000 bash -c "! kill -0 $PX_PID 2>/dev/null" || fail "proxy did not stop"
PX_PORT= PX_ADMIN=
px_conf "auth = token" "tokens = $TOK" "auth_fail_limit = 4"
px_start
check "bob's token works before the guesses" expect_code 200 -H "Authorization: Bearer $t_bob" "$(PURL /v1/models/fraud)"
n2=$(rec_count)
for i in 1 2 3 4; do
	code=$(pcurl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer tfg_guess$i" "$(PURL /v1/models/churn)")
	[ "$code" = 401 ] || fail "guess $i: expected 401, got $code"
done
check "after 4 bad tokens the address is throttled (429), even with a good token" expect_code 429 -H "Authorization: Bearer $t_bob" "$(PURL /v1/models/fraud)"
grep -q 'failed login from 127.0.0.1 user "" (unknown or revoked bearer token)' "$PX_LOG" || fail "no fail2ban line for bad tokens"
say "ok: each bad token logged: $(grep -m1 'unknown or revoked bearer token' "$PX_LOG")"
check "nothing refused reached the backend" [ "$(rec_count)" = "$n2" ]
pass
