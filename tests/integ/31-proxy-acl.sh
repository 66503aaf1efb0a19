#!/bin/bash
# tfguard-proxy, authorisation: per-user model allow-lists on the normalised,
# percent-decoded model name (as TF Serving decodes it), case-insensitive /v1/models,
# encoded slashes refused, only TF Serving's API forwarded (404 / 405 otherwise,
# CONNECT never tunnelled), the metrics path only for users granted @metrics, and a
# client-sent X-Forwarded-User / X-Forwarded-For never reaching the backend.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss
px_init
px_stub
htpasswd -bB "$PX_HT" alice alice-pw 2>/dev/null
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
htpasswd -bB "$PX_HT" carol carol-pw 2>/dev/null
htpasswd -bB "$PX_HT" ops ops-pw 2>/dev/null
PX_ACL="alice = fraud, churn
bob = *
ops = @metrics"
px_conf 'auth_fail_limit = 1000'
px_start

A=(-u alice:alice-pw)
n0=$(rec_count)
check "alice: fraud allowed" expect_code 200 "${A[@]}" -d '{"instances":[1]}' "$(PURL /v1/models/fraud:predict)"
check "alice: churn status allowed" expect_code 200 "${A[@]}" "$(PURL /v1/models/churn)"
check "alice: churn metadata allowed" expect_code 200 "${A[@]}" "$(PURL /v1/models/churn/metadata)"
check "alice: versions path" expect_code 200 "${A[@]}" -d '{"instances":[1]}' "$(PURL /v1/models/fraud/versions/3:predict)"
check "alice: labels path" expect_code 200 "${A[@]}" -d '{"examples":[{}]}' "$(PURL /v1/models/fraud/labels/stable:classify)"
check "alice: regress" expect_code 200 "${A[@]}" -d '{"examples":[{}]}' "$(PURL /v1/models/fraud:regress)"
check "alice: secret denied" expect_code 403 "${A[@]}" -d '{"instances":[1]}' "$(PURL /v1/models/secret:predict)"
check "403 body is TF Serving-shaped" grep -q '"error"' "$TFG_TMP/body"
check "alice: /V1/MODELS/secret:predict denied (case-folded prefix)" expect_code 403 "${A[@]}" -d '{}' "$(PURL /V1/MODELS/secret:predict)"
check "alice: /V1/MODELS/fraud:predict allowed like TF Serving routes it" expect_code 200 "${A[@]}" -d '{"instances":[1]}' "$(PURL /V1/MODELS/fraud:predict)"
check "alice: %73ecret (= secret) denied" expect_code 403 "${A[@]}" -d '{}' "$(PURL /v1/models/%73ecret:predict)"
check "alice: %66raud (= fraud) allowed" expect_code 200 "${A[@]}" -d '{"instances":[1]}' "$(PURL /v1/models/%66raud:predict)"
check "alice: Fraud (other case) denied: names are case-sensitive" expect_code 403 "${A[@]}" -d '{}' "$(PURL /v1/models/Fraud:predict)"
check "alice: encoded slash refused" expect_code 400 "${A[@]}" -d '{}' "$(PURL /v1/models/fraud%2f..%2fsecret:predict)"
check "alice: encoded slash (upper) refused" expect_code 400 "${A[@]}" -d '{}' "$(PURL /v1/models/a%2Fb:predict)"
check "alice: NUL refused" expect_code 400 "${A[@]}" -d '{}' "$(PURL /v1/models/fraud%00:predict)"
check "alice: bad escape refused" expect_code 400 "${A[@]}" -d '{}' "$(PURL /v1/models/fra%zzud:predict)"
check "alice: query glued to the name is another model" expect_code 403 "${A[@]}" "$(PURL '/v1/models/fraud?x=1')"
check "alice: metrics path denied" expect_code 403 "${A[@]}" "$(PURL /monitoring/prometheus/metrics)"
check "bob (*): secret allowed" expect_code 200 -u bob:bob-pw -d '{"instances":[1]}' "$(PURL /v1/models/secret:predict)"
check "bob (*): metrics path still denied" expect_code 403 -u bob:bob-pw "$(PURL /monitoring/prometheus/metrics)"
check "ops (@metrics): metrics path allowed" expect_code 200 -u ops:ops-pw "$(PURL /monitoring/prometheus/metrics)"
check "ops: no model" expect_code 403 -u ops:ops-pw "$(PURL /v1/models/fraud)"
# TF Serving matches the verb case-insensitively in routing and then refuses it: the
# model is still "fraud", so the ACL decision is the same as TF Serving's.
check ":PREDICT on an allowed model reaches TF Serving, which refuses it" expect_code 400 "${A[@]}" -d '{}' "$(PURL /v1/models/fraud:PREDICT)"
check ":PREDICT on a denied model → 403" expect_code 403 "${A[@]}" -d '{}' "$(PURL /v1/models/secret:PREDICT)"
check "carol (no [acl] line): denied" expect_code 403 -u carol:carol-pw "$(PURL /v1/models/fraud)"
n1=$(rec_count)
# forwarded above: fraud x4 + churn x2 + V1 fraud + %66raud + bob + ops metrics + :PREDICT = 11
check "exactly the allowed calls reached the stand-in ($((n1 - n0)))" [ $((n1 - n0)) = 11 ]

# paths and methods outside the API
check "other path → 404" expect_code 404 "${A[@]}" "$(PURL /admin)"
check "404 body is TF Serving-shaped" grep -q '"error"' "$TFG_TMP/body"
check "/v1/models without a name → 404" expect_code 404 "${A[@]}" "$(PURL /v2/models/fraud)"
check "PUT → 405" expect_code 405 "${A[@]}" -X PUT -d '{}' "$(PURL /v1/models/fraud:predict)"
check "DELETE → 405" expect_code 405 "${A[@]}" -X DELETE "$(PURL /v1/models/fraud)"
check "405 body is TF Serving-shaped" grep -q '"error"' "$TFG_TMP/body"
check "GET on :predict → 405" expect_code 405 "${A[@]}" "$(PURL /v1/models/fraud:predict)"
check "POST on status path → 405" expect_code 405 "${A[@]}" -d '{}' "$(PURL /v1/models/fraud)"
printf 'CONNECT 127.0.0.1:%s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nAuthorization: Basic %s\r\n\r\n' \
	"$STUB_PORT" "$STUB_PORT" "$(printf alice:alice-pw | base64)" >"$TFG_TMP/connect.req"
out=$(raw_tls "$TFG_TMP/connect.req")
check "CONNECT → 405, never tunnelled" grep -q '^HTTP/1.1 405' <<<"$out"
check "nothing of those reached the stand-in" [ "$(rec_count)" = "$n1" ]

# spoofed identity headers are replaced, never trusted
pcurl -o /dev/null "${A[@]}" -H 'X-Forwarded-User: bob' -H 'X-Forwarded-For: 6.6.6.6' \
	-H 'x-forwarded-proto: http' -H 'X-Real-IP: 6.6.6.6' -H 'Forwarded: for=6.6.6.6' \
	"$(PURL /v1/models/fraud)"
check "X-Forwarded-User is the authenticated user only" [ "$(rec_last '[v for h,v in r["headers"] if h.lower()=="x-forwarded-user"]')" = "['alice']" ]
check "X-Forwarded-For is the socket peer only" [ "$(rec_last '[v for h,v in r["headers"] if h.lower()=="x-forwarded-for"]')" = "['127.0.0.1']" ]
check "X-Forwarded-Proto is ours" [ "$(rec_last '[v for h,v in r["headers"] if h.lower()=="x-forwarded-proto"]')" = "['https']" ]
check "X-Real-IP and Forwarded dropped" [ "$(rec_last '[h for h,v in r["headers"] if h.lower() in ("x-real-ip","forwarded")]')" = "[]" ]
# hop-by-hop headers do not cross
pcurl -o /dev/null "${A[@]}" -H 'Connection: keep-alive, X-Secret-Hop' -H 'X-Secret-Hop: 1' \
	-H 'Keep-Alive: timeout=5' -H 'TE: trailers' -H 'Proxy-Authorization: Basic eDp5' "$(PURL /v1/models/fraud)"
check "hop-by-hop headers removed" [ "$(rec_last '[h for h,v in r["headers"] if h.lower() in ("connection","x-secret-hop","keep-alive","te","proxy-authorization")]')" = "[]" ]
# the access log has the user and the model
check "access log line with user and model" grep -q '"user":"alice","model":"fraud"' "$PX_ACCESS"

# ACL reload on SIGHUP: alice loses fraud
sed -i 's/^alice = .*/alice = churn/' "$PX_CONF"
kill -HUP "$PX_PID"
poll 5000 grep -q "reloaded $PX_CONF" "$PX_LOG" || fail "no reload line"
check "after SIGHUP, alice: fraud denied" expect_code 403 "${A[@]}" "$(PURL /v1/models/fraud)"
check "after SIGHUP, alice: churn allowed" expect_code 200 "${A[@]}" "$(PURL /v1/models/churn)"
pass
