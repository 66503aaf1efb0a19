#!/bin/bash
# tfguard-proxy, API tokens: tokens made by `tfguard token new` work with
# curl -H 'Authorization: Bearer …' (user, ACL, X-Forwarded-User, access log); the token
# file holds no clear token, only its SHA-256; a revoked token (`tfguard token revoke`,
# picked up from the file change without a signal) and an altered one get 401; an
# ambiguous hash prefix is refused with nothing changed; the file keeps its mode and
# owner; bearer failures count in the per-address failure throttle like wrong passwords;
# the backend stand-in never sees a refused request or any Authorization header.
# revoke: a hex-looking non-user needs --hash; a hash on two lines is one token. SIGHUP is
# all or nothing (a bad htpasswd or token file leaves the old tokens, and says so).
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
check_not "a hash prefix shorter than 8 digits is refused" "$CLI" -c "$PX_CONF" token revoke --hash "${h2:0:4}"
check "... and nothing changed" cmp -s "$TOK" "$TFG_TMP/tok.before"
# a hex-looking argument that is no user of the file never revokes by prefix unasked
out=$("$CLI" -c "$PX_CONF" token revoke "$h2" 2>&1) && fail "a bare hash prefix (no such user) revoked a token"
check "a bare hex argument that is no user is refused, pointing at --hash" grep -q "no user '$h2'; to revoke by hash prefix say --hash $h2" <<<"$out"
check "... and nothing changed" cmp -s "$TOK" "$TFG_TMP/tok.before"
check_not "--user with a hash prefix: no such user, refused" "$CLI" -c "$PX_CONF" token revoke --user "$h2"
check "... and nothing changed" cmp -s "$TOK" "$TFG_TMP/tok.before"
check "revoke bob's second token by hash prefix (--hash)" "$CLI" -c "$PX_CONF" token revoke --hash "$h2"
QUIET=1 poll 5000 expect_code 401 -H "Authorization: Bearer $t_bob2" "$(PURL /v1/models/fraud)" || fail "revoked token still accepted"
say "ok: revoked token → 401 (file change picked up without a signal)"
check "bob's other token still works" expect_code 200 -H "Authorization: Bearer $t_bob" "$(PURL /v1/models/fraud)"
check_not "--hash with a user name is refused" "$CLI" -c "$PX_CONF" token revoke --hash alice
check "revoke every token of alice" "$CLI" -c "$PX_CONF" token revoke alice
QUIET=1 poll 5000 expect_code 401 -H "Authorization: Bearer $t_alice" "$(PURL /v1/models/churn)" || fail "alice's token still accepted"
say "ok: revoked user → 401"
check "the file kept its mode and group after revoke" [ "$(stat -c '%a %U %G' "$TOK")" = "640 root $(id -gn "$PX_USER")" ]
check "token list shows bob once, no token" bash -c "'$CLI' -c '$PX_CONF' token list | grep -c '^bob ' | grep -qx 1"
# an ambiguous prefix: two hash lines (written by hand) that share 10 hex digits
printf 'carol:%s:created=2026-01-01T00:00:00Z\ndave:%s\n' "0123456789a$(printf '%053d' 1)" "0123456789b$(printf '%053d' 2)" >>"$TOK"
cp "$TOK" "$TFG_TMP/tok.before"
out=$("$CLI" -c "$PX_CONF" token revoke --hash 0123456789 2>&1) && fail "an ambiguous prefix was accepted"
check "an ambiguous hash prefix is refused, saying so" grep -q "is ambiguous: 2 tokens match" <<<"$out"
check "... and nothing changed" cmp -s "$TOK" "$TFG_TMP/tok.before"
check "one more digit makes it unique" "$CLI" -c "$PX_CONF" token revoke --hash 0123456789b
check_not "an unknown user/prefix is refused" "$CLI" -c "$PX_CONF" token revoke nobody-here
# the same hash on two lines (a line pasted twice) is one token: revoking it drops both
dup=fedcba9876$(printf '%054d' 7)
printf 'erin:%s:created=2026-01-01T00:00:00Z\nerin:%s:pasted again\n' "$dup" "$dup" >>"$TOK"
check "a hash on two lines is revoked by its full hash (no --hash needed), not 'ambiguous'" "$CLI" -c "$PX_CONF" token revoke "$dup"
check "... both lines are gone" bash -c "! grep -q '$dup' '$TOK'"
printf 'erin:%s\nfrank:%s\n' "$dup" "$dup" >>"$TOK"
check "... and by prefix too (--hash)" "$CLI" -c "$PX_CONF" token revoke --hash "${dup:0:10}"
check "... both lines are gone" bash -c "! grep -q '$dup' '$TOK'"

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

# ---- SIGHUP is all or nothing: a bad htpasswd or token file leaves no half-reload ----------
kill -TERM "$PX_PID"
poll 5000 bash -c "! kill -0 $PX_PID 2>/dev/null" || fail "proxy did not stop"
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
TOK2=$TFG_TMP/tokens2
t_new=tfg_second-file-$RANDOM$RANDOM
echo "alice:$(printf '%s' "$t_new" | sha256sum | cut -c1-64)" >"$TOK2"
chmod 0644 "$TOK2"
PX_PORT= PX_ADMIN=
px_conf "auth = token, basic" "tokens = $TOK"
px_start
check "before: bob's token → 200" expect_code 200 -H "Authorization: Bearer $t_bob" "$(PURL /v1/models/fraud)"
# reload_rejections: how many "reload rejected" lines the log has
reload_rejections() { grep -c 'reload rejected' "$PX_LOG"; }
hup_rejected() {
	local n
	n=$(reload_rejections)
	kill -HUP "$PX_PID"
	poll 5000 bash -c "[ \$(grep -c 'reload rejected' '$PX_LOG') -gt $n ]" || fail "reload not rejected: $(tail -3 "$PX_LOG")"
}
# a new token file and a missing htpasswd: the reload is rejected as a whole
PX_HT=$TFG_TMP/no-such-htpasswd px_conf "auth = token, basic" "tokens = $TOK2"
hup_rejected
check "bad htpasswd: the new token file is not in force (its token → 401)" expect_code 401 -H "Authorization: Bearer $t_new" "$(PURL /v1/models/fraud)"
check "... the old tokens are (bob's → 200)" expect_code 200 -H "Authorization: Bearer $t_bob" "$(PURL /v1/models/fraud)"
check "... and the log says nothing was reloaded" grep -q "reload rejected: .*no-such-htpasswd.*nothing was reloaded" "$PX_LOG"
# a missing token file: rejected, and the log says the CRL was not reloaded either
px_conf "auth = token, basic" "tokens = $TFG_TMP/no-such-tokens"
hup_rejected
check "missing token file: the log says the client CA and CRL were not reloaded either" grep -q "reload rejected: .*no-such-tokens.*nothing was reloaded: .*client CA and CRL" "$PX_LOG"
check "... the old tokens stay (bob's → 200)" expect_code 200 -H "Authorization: Bearer $t_bob" "$(PURL /v1/models/fraud)"
px_conf "auth = token, basic" "tokens = $TOK2"
n=$(grep -c "reloaded $TOK2" "$PX_LOG")
kill -HUP "$PX_PID"
poll 5000 bash -c "[ \$(grep -c 'reloaded $TOK2' '$PX_LOG') -gt $n ]" || fail "good reload not logged: $(tail -3 "$PX_LOG")"
check "a good reload then takes the new file (its token → 200)" expect_code 200 -H "Authorization: Bearer $t_new" "$(PURL /v1/models/fraud)"
check "... and drops the old one (bob's → 401)" expect_code 401 -H "Authorization: Bearer $t_bob" "$(PURL /v1/models/fraud)"
pass
