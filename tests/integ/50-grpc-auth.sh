#!/bin/bash
# tfguard-proxy, gRPC: real grpcio clients over TLS (ALPN h2) through the proxy to a
# grpcio stand-in for TF Serving's port 8500. Right credentials → the stand-in's reply
# byte for byte, without authorization and with x-forwarded-user/-for; none, wrong or
# malformed → UNAUTHENTICATED and nothing reaches the stand-in; ModelService/
# HandleReloadConfigRequest and unknown services → PERMISSION_DENIED unless granted with
# @grpc:; a model outside the user's [acl] (also inside MultiInference, or a second
# model_spec) → PERMISSION_DENIED; server streaming and bidi pass; a 20 MB request
# passes, one over grpc_max_message is RESOURCE_EXHAUSTED; grpc-timeout is enforced;
# backend stopped → UNAVAILABLE; REST over HTTP/1.1 on the same port keeps working;
# access log and metrics count the calls.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
. "$TOP/tests/helpers/grpc_env.sh"
need_cmd ss
px_init
px_stub
gx_stub --slow-ms 3000
htpasswd -bB "$PX_HT" alice alice-pw 2>/dev/null
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
htpasswd -bB "$PX_HT" root root-pw 2>/dev/null
htpasswd -bB "$PX_HT" carl carl-pw 2>/dev/null
PX_ACL="alice = m1, slow, big, half_plus_two
bob = m2
carl = *
root = *, @grpc:tensorflow.serving.ModelService/HandleReloadConfigRequest, @grpc:tfguard.test.Stream/*"
gx_conf 'auth_fail_limit = 1000' 'grpc_max_message = 24m'
check "--check-config accepts @grpc: grants and grpc_max_message" "$PX_BIN" -c "$PX_CONF" --check-config
px_start

P=/tensorflow.serving.PredictionService/Predict
# --- authentication --------------------------------------------------------------------
gcall $P --user alice:alice-pw --model m1 --out "$TFG_TMP/via.bin" >"$TFG_TMP/via.json"
gdirect $P --model m1 --out "$TFG_TMP/direct.bin" >/dev/null
check "right credentials → OK" grep -q '"code": "OK"' "$TFG_TMP/via.json"
check "reply byte for byte" cmp "$TFG_TMP/via.bin" "$TFG_TMP/direct.bin"
tail -n 2 "$GREC" | head -n 1 >"$TFG_TMP/proxied.json"
md() { "$PY" -c "import json,sys; r=json.load(open(sys.argv[1])); print([v for k,v in r['metadata'] if k==sys.argv[2]])" "$TFG_TMP/proxied.json" "$1"; }
check "no authorization reaches the stand-in" [ "$(md authorization)" = "[]" ]
check "x-forwarded-user" [ "$(md x-forwarded-user)" = "['alice']" ]
check "x-forwarded-for" [ "$(md x-forwarded-for)" = "['127.0.0.1']" ]
check "the request message reached it unchanged" [ "$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['sha256'])" "$TFG_TMP/proxied.json")" = "$(grec_last 'r["sha256"]')" ]

n=$(grec_count)
check "no credentials → UNAUTHENTICATED" expect_grpc UNAUTHENTICATED $P --model m1
check "wrong password → UNAUTHENTICATED" expect_grpc UNAUTHENTICATED $P --user alice:wrong --model m1
check "unknown user → UNAUTHENTICATED" expect_grpc UNAUTHENTICATED $P --user mallory:x --model m1
check "malformed Basic → UNAUTHENTICATED" expect_grpc UNAUTHENTICATED $P --authz 'Basic !!!' --model m1
check "Bearer → UNAUTHENTICATED" expect_grpc UNAUTHENTICATED $P --authz 'Bearer abc' --model m1
check "spoofed x-forwarded-user without credentials → UNAUTHENTICATED" expect_grpc UNAUTHENTICATED $P --model m1
check "nothing of the refused calls reached the stand-in" [ "$(grec_count)" = "$n" ]
check "gRPC failures logged for fail2ban" grep -q 'auth: failed login from 127.0.0.1 user "alice"' "$PX_LOG"

# --- authorisation: methods ----------------------------------------------------------------
R=/tensorflow.serving.ModelService/HandleReloadConfigRequest
check "HandleReloadConfigRequest → PERMISSION_DENIED" expect_grpc PERMISSION_DENIED $R --user alice:alice-pw
check "... even for a user with every model (*)" expect_grpc PERMISSION_DENIED $R --user carl:carl-pw
check "PredictionService methods not on the list → PERMISSION_DENIED" expect_grpc PERMISSION_DENIED /tensorflow.serving.PredictionService/PredictX --user carl:carl-pw --model m1
check "profiler → PERMISSION_DENIED" expect_grpc PERMISSION_DENIED /tensorflow.ProfilerService/Profile --user alice:alice-pw
check "SessionService → PERMISSION_DENIED" expect_grpc PERMISSION_DENIED /tensorflow.serving.SessionService/SessionRun --user alice:alice-pw --model m1
check "reflection → PERMISSION_DENIED" expect_grpc PERMISSION_DENIED /grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo --user alice:alice-pw
check "nothing of the denied calls reached the stand-in" [ "$(grec_count)" = "$n" ]
check "granted: root may reload" expect_grpc OK $R --user root:root-pw
check "... and it reached the stand-in" [ "$(grec_last 'r["method"]')" = "$R" ]
check "GetModelStatus is allowed by default" expect_grpc OK /tensorflow.serving.ModelService/GetModelStatus --user alice:alice-pw --model m1
check "GetModelMetadata is allowed by default" expect_grpc OK /tensorflow.serving.PredictionService/GetModelMetadata --user alice:alice-pw --model m1

# --- authorisation: models -----------------------------------------------------------------
n=$(grec_count)
check "model outside the user's [acl] → PERMISSION_DENIED" expect_grpc PERMISSION_DENIED $P --user bob:bob-pw --model m1
check "no model_spec.name → PERMISSION_DENIED" expect_grpc PERMISSION_DENIED $P --user bob:bob-pw
check "a second model_spec naming a forbidden model → PERMISSION_DENIED" expect_grpc PERMISSION_DENIED $P --user bob:bob-pw --model m2 --model m1
check "MultiInference with one forbidden task → PERMISSION_DENIED" expect_grpc PERMISSION_DENIED /tensorflow.serving.PredictionService/MultiInference --user bob:bob-pw --model m2 --model m1 --multi
check "nothing of the denied models reached the stand-in" [ "$(grec_count)" = "$n" ]
check "bob's own model → OK" expect_grpc OK $P --user bob:bob-pw --model m2
check "MultiInference with allowed tasks → OK" expect_grpc OK /tensorflow.serving.PredictionService/MultiInference --user bob:bob-pw --model m2 --multi
check "Classify → OK" expect_grpc OK /tensorflow.serving.PredictionService/Classify --user alice:alice-pw --model m1
check "root (*) may call any model" expect_grpc OK $P --user root:root-pw --model anything

# --- streaming, size, deadline -------------------------------------------------------------
gcall /tfguard.test.Stream/Numbers --user root:root-pw --stream 50 --out "$TFG_TMP/s1" >/dev/null
gdirect /tfguard.test.Stream/Numbers --stream 50 --out "$TFG_TMP/s2" >/dev/null
check "server streaming: 50 replies, byte for byte" cmp "$TFG_TMP/s1" "$TFG_TMP/s2"
check "bidirectional streaming passes" expect_grpc OK /tfguard.test.Stream/Echo --user root:root-pw --echo 20
check "... every message reached the stand-in" [ "$(grec_last 'r["requests"]')" = 20 ]
check "streaming methods need a grant too" expect_grpc PERMISSION_DENIED /tfguard.test.Stream/Echo --user alice:alice-pw --echo 2
gcall $P --user alice:alice-pw --model m1 --pad 20000000 --out "$TFG_TMP/big.bin" >"$TFG_TMP/big.json"
check "20 MB request → OK" grep -q '"code": "OK"' "$TFG_TMP/big.json"
check "... all of it reached the stand-in" [ "$(grec_last 'r["bytes"]')" -ge 20000000 ]
gdirect $P --model m1 --pad 20000000 --out "$TFG_TMP/bigd.bin" >/dev/null
check "... and the reply is byte for byte" cmp "$TFG_TMP/big.bin" "$TFG_TMP/bigd.bin"
gcall $P --user alice:alice-pw --model big --out "$TFG_TMP/bigr.bin" >/dev/null
check "1 MiB reply passes whole" [ "$(stat -c %s "$TFG_TMP/bigr.bin")" = 1048576 ]
check "request over grpc_max_message (24m) → RESOURCE_EXHAUSTED" expect_grpc RESOURCE_EXHAUSTED $P --user alice:alice-pw --model m1 --pad 26000000
t0=$(date +%s%3N)
check "grpc-timeout 500ms on a 3 s call → DEADLINE_EXCEEDED" expect_grpc DEADLINE_EXCEEDED $P --user alice:alice-pw --model slow --timeout 0.5
t1=$(date +%s%3N)
check "... within 2 s ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 2000 ]

# --- REST on the same port, logs, metrics ---------------------------------------------------
check "REST over HTTP/1.1 on the same port" expect_code 200 -u alice:alice-pw "$(PURL /v1/models/half_plus_two)"
check "curl negotiated HTTP/1.1 (ALPN prefers it)" [ "$(pcurl -o /dev/null -w '%{http_version}' -u alice:alice-pw "$(PURL /v1/models/half_plus_two)")" = 1.1 ]
check "access log: a gRPC line with method, model and status" grep -q '"user":"alice","model":"m1","method":"GRPC","path":"/tensorflow.serving.PredictionService/Predict","status":200' "$PX_ACCESS"
check "access log: refusals are logged (403)" grep -q '"path":"/tensorflow.serving.ModelService/HandleReloadConfigRequest","status":403' "$PX_ACCESS"
check "metrics count gRPC calls per model" bash -c "curl -s http://127.0.0.1:$PX_ADMIN/metrics | grep -q 'model=\"m1\"'"

# --- [acl] reload (SIGHUP) applies to gRPC at the next call -----------------------------------
check "before the reload bob may not call m1" expect_grpc PERMISSION_DENIED $P --user bob:bob-pw --model m1
PX_ACL="${PX_ACL/bob = m2/bob = m2, m1, @grpc:tensorflow.serving.ModelService/HandleReloadConfigRequest}"
gx_conf 'auth_fail_limit = 1000' 'grpc_max_message = 24m'
kill -HUP "$PX_PID"
QUIET=1 poll 5000 expect_grpc OK $P --user bob:bob-pw --model m1 >/dev/null || fail "new [acl] not applied to gRPC"
say "ok: after SIGHUP bob may call m1"
check "... and the reload grant applies" expect_grpc OK /tensorflow.serving.ModelService/HandleReloadConfigRequest --user bob:bob-pw

# --- backend going away, then stopped --------------------------------------------------------
n=$(grec_count)
gcall $P --user alice:alice-pw --model slow --out "$TFG_TMP/slow.bin" >"$TFG_TMP/slow.json" &
slow=$!
poll 5000 bash -c "[ \$(wc -l <'$GREC') -gt $n ]" || fail "the slow call did not reach the stand-in"
kill "$GSTUB_PID" # graceful: GOAWAY, the call in flight has 10 s to finish
wait "$slow"
check "a call in flight when the backend sent GOAWAY completes → OK" grep -q '"code": "OK"' "$TFG_TMP/slow.json"
poll 5000 bash -c "! ss -Hltn 'sport = :$GSTUB_PORT' | grep -q ." || fail "stand-in did not stop"
check "backend stopped → UNAVAILABLE" expect_grpc UNAVAILABLE $P --user alice:alice-pw --model m1
# at most one backend line a second per worker: the refusal, or the close just before it
check "backend failure logged" grep -Eq "\(gRPC\): (Connection refused|closed the connection)" "$PX_LOG"
gx_stub
check "backend back → OK again" expect_grpc OK $P --user alice:alice-pw --model m1
pass
