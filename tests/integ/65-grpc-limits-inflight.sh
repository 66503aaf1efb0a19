#!/bin/bash
# tfguard-proxy, gRPC and [limits] inflight: with a slow stand-in (4 s per call) and
# inflight = 2, five calls at once from one user: 2 OK, 3 RESOURCE_EXHAUSTED at once, the
# stand-in saw 2; another user is not affected meanwhile. The slot comes back however a
# call ends: cancelled by the client (deadline), client SIGKILLed mid-call. gRPC calls
# never wait in the queue: with queue = 5 set, calls over inflight are refused at once
# and counted in tfguard_proxy_limited_total{limit="inflight"} like every refusal.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
. "$TOP/tests/helpers/grpc_env.sh"
px_init
px_stub
gx_stub --slow-ms 4000
htpasswd -bB -C 4 "$PX_HT" alice alice-pw 2>/dev/null
htpasswd -bB -C 4 "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL=$'alice = *\nbob = *'
gx_conf '[limits]' 'inflight = 2'
px_start
P=/tensorflow.serving.PredictionService/Predict
j() { "$PY" -c "import json,sys; r=json.loads(sys.argv[1]); print($2)" "$1"; }
# nlog: gRPC calls in the access log refused (429) by the in-flight limit
nlog() { grep '"method":"GRPC"' "$PX_ACCESS" | grep '"status":429' | grep -c '"limit":"inflight"'; }
nlog_is() { [ "$(nlog)" = "$1" ]; }
ok_now() { QUIET=1 expect_grpc OK $P --user alice:alice-pw --model m1; }
# burst N: N slow calls of alice at once; sets codes (sorted) and ms (how long they took)
burst() {
	local t0 out
	t0=$(date +%s%3N)
	out=$(gcall $P --user alice:alice-pw --model slow --concurrent "$1")
	ms=$(($(date +%s%3N) - t0))
	codes=$(j "$out" '" ".join(sorted(r["codes"]))')
}

check "warm-up (credential cache)" expect_grpc OK $P --user alice:alice-pw --model m1
n0=$(grec_count)
burst 5
check "5 slow calls at once, inflight = 2: 2 OK, 3 RESOURCE_EXHAUSTED ($codes)" \
	[ "$codes" = "OK OK RESOURCE_EXHAUSTED RESOURCE_EXHAUSTED RESOURCE_EXHAUSTED" ]
check "the stand-in saw 2 ($(($(grec_count) - n0)))" [ $(($(grec_count) - n0)) = 2 ]
check "the 2 admitted ran in parallel, not one after the other ($ms ms < 8000)" [ "$ms" -lt 8000 ]
check "access log: 3 refusals with limit inflight" poll 3000 nlog_is 3
check "metrics: limited{inflight} = 3" [ "$(px_limited inflight)" = 3 ]

say "alice's two slots busy: bob is not affected, alice is refused"
gcall $P --user alice:alice-pw --model slow --concurrent 2 >"$TFG_TMP/bg.json" &
bgc=$!
n0=$(grec_count)
poll 3000 bash -c "[ \$((\$(wc -l <'$GREC') - $n0)) -ge 2 ]" || fail "the two slow calls did not start"
check "bob → OK" expect_grpc OK $P --user bob:bob-pw --model m1
check "alice → RESOURCE_EXHAUSTED" expect_grpc RESOURCE_EXHAUSTED $P --user alice:alice-pw --model m1
wait "$bgc"
check "... and her two slow calls ended OK" grep -q '"codes": \["OK", "OK"\]' "$TFG_TMP/bg.json"

gx_reload '[limits]' 'inflight = 1'
say "a call cancelled by its client (deadline 0.3 s) gives its slot back"
check "the slow call is cancelled (DEADLINE_EXCEEDED)" expect_grpc DEADLINE_EXCEEDED $P --user alice:alice-pw --model slow --timeout 0.3
# the stand-in got the call at most 0.3 s before the client gave up: it would answer ≥ 3.7 s
# after that, so an OK within 3 s is the slot given back at the cancel
t0=$(date +%s%3N)
check "a call right after gets the slot (within 3 s, before the stand-in would answer)" poll 3000 ok_now
say "slot back after $(($(date +%s%3N) - t0)) ms"

say "a client SIGKILLed in the middle of a call gives its slot back"
n0=$(grec_count)
"$PY" "$GCLIENT" "127.0.0.1:$PX_PORT" $P --ca "$TFG_TMP/cert.pem" --user alice:alice-pw --model slow >/dev/null 2>&1 &
k=$!
poll 5000 bash -c "[ \$(wc -l <'$GREC') -gt $n0 ]" || fail "the slow call did not reach the stand-in"
t_rec=$(date +%s%3N)
check "while it runs, alice is refused (inflight = 1)" expect_grpc RESOURCE_EXHAUSTED $P --user alice:alice-pw --model m1
kill -KILL "$k"
wait "$k" 2>/dev/null
t0=$(date +%s%3N)
# the last try starts 3.5 s after the stand-in got the killed call, before it answers it
left=$((t_rec + 3500 - t0))
check "after the kill the slot comes back ($left ms left before the stand-in would answer)" \
	poll "$left" ok_now
say "slot back after $(($(date +%s%3N) - t0)) ms"

say "with a queue configured gRPC calls still do not wait; each refusal is counted"
gx_reload '[limits]' 'inflight = 1' 'queue = 5' 'queue_timeout = 3s'
l0=$(px_limited inflight)
a0=$(nlog)
n0=$(grec_count)
burst 3
check "3 slow calls at once, inflight = 1, queue = 5: OK + 2 RESOURCE_EXHAUSTED ($codes)" \
	[ "$codes" = "OK RESOURCE_EXHAUSTED RESOURCE_EXHAUSTED" ]
check "none waited for the first (all done in $ms ms < 8000)" [ "$ms" -lt 8000 ]
check "the stand-in saw 1" [ $(($(grec_count) - n0)) = 1 ]
check "metrics: limited{inflight} +2 ($l0 → $(px_limited inflight))" [ $(($(px_limited inflight) - l0)) = 2 ]
check "access log: 2 more refusals with limit inflight" poll 3000 nlog_is $((a0 + 2))
check "no slot or queue place leaked: a call now → OK" expect_grpc OK $P --user alice:alice-pw --model m1
pass
