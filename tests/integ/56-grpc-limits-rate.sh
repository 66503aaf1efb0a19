#!/bin/bash
# tfguard-proxy, gRPC and the [limits] rates: a gRPC call takes the same buckets as a REST
# request and is refused with RESOURCE_EXHAUSTED, never reaching the stand-in. A user at
# 3r/m gets 3 OK, then RESOURCE_EXHAUSTED (the stand-in saw 3), and REST for that user
# then gets 429: one bucket for both protocols. model.m2 = 2r/m refuses the third call
# (logged "limit":"model"). The client-address limit refuses gRPC, then REST from that
# address; another address is not affected. The failed-login throttle is named in the
# access log for gRPC as for REST: auth_inflight for guesses refused while others are
# being verified, auth_fail once the address is blocked. Metrics count each refusal.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
. "$TOP/tests/helpers/grpc_env.sh"
px_init
px_stub
gx_stub
htpasswd -bB -C 4 "$PX_HT" alice alice-pw 2>/dev/null
htpasswd -bB -C 4 "$PX_HT" bob bob-pw 2>/dev/null
# a slow hash (bcrypt cost 13, ~0.5 s) so that parallel guesses are in flight together
htpasswd -bB -C 13 "$PX_HT" carol carol-pw 2>/dev/null
PX_ACL=$'alice = *\nbob = *\ncarol = *'
gx_conf 'auth_fail_limit = 2' 'auth_fail_window = 60s' '[limits]' 'default = 3r/m' 'model.m2 = 2r/m'
px_start
P=/tensorflow.serving.PredictionService/Predict
# nlog LIMIT: gRPC calls in the access log refused (429) naming LIMIT
nlog() { grep '"method":"GRPC"' "$PX_ACCESS" | grep '"status":429' | grep -c "\"limit\":\"$1\""; }
# logged LIMIT N: poll until there are N such lines (the log is written after the answer)
nlog_is() { [ "$(nlog "$1")" = "$2" ]; }
logged() { poll 3000 nlog_is "$1" "$2"; }

# --- user rate: one bucket for gRPC and REST ----------------------------------------------
n0=$(grec_count)
for i in 1 2 3; do
	check "alice (3r/m) call $i → OK" expect_grpc OK $P --user alice:alice-pw --model m1
done
check "alice call 4 → RESOURCE_EXHAUSTED" expect_grpc RESOURCE_EXHAUSTED $P --user alice:alice-pw --model m1
check "the stand-in saw 3 ($(($(grec_count) - n0)))" [ $(($(grec_count) - n0)) = 3 ]
check "access log: the refused call is status 429 with limit user" logged user 1
check "alice over REST after that → 429 (the same bucket)" expect_code 429 -u alice:alice-pw "$(PURL /v1/models/fraud)"
check "... with Retry-After" grep -qi '^Retry-After: [1-9]' < <(pcurl -D - -o /dev/null -u alice:alice-pw "$(PURL /v1/models/fraud)")
check "metrics: limited{user} = 3 (1 gRPC + 2 REST)" [ "$(px_limited user)" = 3 ]

# --- model rate ----------------------------------------------------------------------------
check "bob m2 (model.m2 = 2r/m) 1 → OK" expect_grpc OK $P --user bob:bob-pw --model m2
check "bob m2 2 → OK" expect_grpc OK $P --user bob:bob-pw --model m2
n0=$(grec_count)
check "bob m2 3 → RESOURCE_EXHAUSTED" expect_grpc RESOURCE_EXHAUSTED $P --user bob:bob-pw --model m2
check "... not forwarded" [ "$(grec_count)" = "$n0" ]
check "access log: limit model" logged model 1
check "metrics: limited{model} = 1" [ "$(px_limited model)" = 1 ]

# --- client address ------------------------------------------------------------------------
gx_reload 'auth_fail_limit = 2' 'auth_fail_window = 60s' '[limits]' 'client = 2r/m'
check "client = 2r/m: call 1 from 127.0.0.1 → OK" expect_grpc OK $P --user bob:bob-pw --model m1
check "call 2 → OK" expect_grpc OK $P --user bob:bob-pw --model m1
n0=$(grec_count)
check "call 3 → RESOURCE_EXHAUSTED" expect_grpc RESOURCE_EXHAUSTED $P --user bob:bob-pw --model m1
check "... without credentials too (the client limit comes first)" expect_grpc RESOURCE_EXHAUSTED $P --model m1
check "... neither forwarded" [ "$(grec_count)" = "$n0" ]
check "access log: limit client" logged client 2
check "REST from 127.0.0.1 → 429 (the address's one bucket)" expect_code 429 -u bob:bob-pw "$(PURL /v1/models/fraud)"
check "REST from 127.0.0.2 → 200 (another address)" expect_code 200 --interface 127.0.0.2 -u bob:bob-pw "$(PURL /v1/models/fraud)"
check "metrics: limited{client} = 3" [ "$(px_limited client)" = 3 ]

# --- the failed-login throttle, named in the access log (last: it blocks 127.0.0.1) -------
gx_reload 'auth_fail_limit = 2' 'auth_fail_window = 60s'
# 6 different wrong passwords at once on one connection: 2 are verified (their address's
# in-flight guesses), the other 4 refused at once while those are being verified
out=$(gcall $P --user carol:guess --vary-password --model m1 --concurrent 6 --timeout 30 |
	"$PY" -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["codes"])))')
say "6 parallel guesses: $out"
check "2 verified (UNAUTHENTICATED), 4 refused (RESOURCE_EXHAUSTED)" \
	[ "$out" = "RESOURCE_EXHAUSTED RESOURCE_EXHAUSTED RESOURCE_EXHAUSTED RESOURCE_EXHAUSTED UNAUTHENTICATED UNAUTHENTICATED" ]
check "access log: the 4 refusals name limit auth_inflight" logged auth_inflight 4
n0=$(grec_count)
check "then the right password → RESOURCE_EXHAUSTED (address blocked)" \
	expect_grpc RESOURCE_EXHAUSTED $P --user alice:alice-pw --model m1
check "access log: limit auth_fail" logged auth_fail 1
check "every gRPC 429 in the access log names its limit" \
	[ "$(grep '"method":"GRPC"' "$PX_ACCESS" | grep '"status":429' | grep -vc '"limit":"')" = 0 ]
check "nothing of it reached the stand-in" [ "$(grec_count)" = "$n0" ]
pass
