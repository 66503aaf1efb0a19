#!/bin/bash
# tfguard-proxy, gRPC limits: the failure throttle shared with REST answers
# RESOURCE_EXHAUSTED (also for the right password, and REST from that address gets 429);
# a rapid-reset flood (HEADERS + RST_STREAM, CVE-2023-44487) is disconnected and logged;
# grpc_max_streams is enforced (REFUSED_STREAM past it); an oversized header list resets
# the stream; h2load drives 4000 calls over 10 connections × 10 streams, all answered
# OK by the stand-in over at most one pooled backend connection per worker, while REST over
# HTTP/1.1 on the same port keeps answering 200.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
. "$TOP/tests/helpers/grpc_env.sh"
need_cmd ss h2load
px_init
px_stub
gx_stub
htpasswd -bB "$PX_HT" alice alice-pw 2>/dev/null
htpasswd -bB "$PX_HT" eve eve-pw 2>/dev/null
PX_ACL="alice = m1, half_plus_two
eve = m1"
gx_conf 'auth_fail_limit = 4' 'auth_fail_window = 60s' 'grpc_max_streams = 20'
px_start
P=/tensorflow.serving.PredictionService/Predict
FLOOD=$TOP/tests/helpers/h2_flood.py


# --- rapid reset flood -------------------------------------------------------------------
out=$("$PY" "$FLOOD" "$PX_PORT" "$TFG_TMP/cert.pem" reset 5000)
say "flood: $out"
check "rapid-reset flood: connection closed by the proxy" grep -q '"closed": true' <<<"$out"
sent=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["sent"])' "$out")
goaway=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["goaway"])' "$out")
# the flooder writes faster than a sanitizer build reads: either the close cut it short,
# or the GOAWAY it read says why (11 = ENHANCE_YOUR_CALM)
check "... cut short ($sent of 5000 written) or told ENHANCE_YOUR_CALM (GOAWAY $goaway)" \
	bash -c "[ $sent -lt 5000 ] || [ '$goaway' = 11 ]"
check "... logged" grep -q 'stream reset flood' "$PX_LOG"
check "a normal gRPC call right after → OK" expect_grpc OK $P --user alice:alice-pw --model m1
check "REST right after → 200" expect_code 200 -u alice:alice-pw "$(PURL /v1/models/half_plus_two)"

# --- concurrent streams per connection, header list size ---------------------------------
out=$("$PY" "$FLOOD" "$PX_PORT" "$TFG_TMP/cert.pem" streams 30)
say "30 open streams: $out"
check "grpc_max_streams = 20: the 10 streams past it are refused (REFUSED_STREAM)" grep -q '"7": 10' <<<"$out"
out=$("$PY" "$FLOOD" "$PX_PORT" "$TFG_TMP/cert.pem" bighead 40000)
say "40 kB header list: $out"
check "header list over max_header_bytes → stream reset" grep -Eq '"rst": \{"[0-9]+": 1\}' <<<"$out"

# --- h2load concurrency, REST at the same time -------------------------------------------
printf '\x00\x00\x00\x00\x06\x0a\x04\x0a\x02m1' >"$TFG_TMP/req.bin"
n0=$(grec_count)
a0=$(grep -c '"method":"GRPC","path":"/tensorflow.serving.PredictionService/Predict","status":200' "$PX_ACCESS")
rest_loop() {
	local i ok=0
	for i in $(seq 1 100); do
		[ "$(pcurl -o /dev/null -w '%{http_code}' -u alice:alice-pw "$(PURL /v1/models/half_plus_two)")" = 200 ] && ok=$((ok + 1))
	done
	echo "$ok" >"$TFG_TMP/rest_ok"
}
rest_loop &
rest_pid=$!
h2load -n 4000 -c 10 -m 10 --npn-list=h2 -H 'content-type: application/grpc' -H 'te: trailers' \
	-H "authorization: Basic $(printf alice:alice-pw | base64)" -d "$TFG_TMP/req.bin" \
	"https://127.0.0.1:$PX_PORT$P" >"$TFG_TMP/h2load.out" 2>&1 &
h2pid=$!
# backend connections while it runs: the workers' pools, not one per client connection
maxbe=0
while kill -0 "$h2pid" 2>/dev/null; do
	nb=$(ss -Htn state established "dport = :$GSTUB_PORT" | wc -l)
	[ "$nb" -gt "$maxbe" ] && maxbe=$nb
	sleep 0.05
done
wait "$h2pid"
wait "$rest_pid"
say "$(grep -E '^(finished|requests|status codes)' "$TFG_TMP/h2load.out" | tr '\n' ' ')"
check "h2load: 4000 calls succeeded" grep -q 'requests: 4000 total, 4000 started, 4000 done, 4000 succeeded' "$TFG_TMP/h2load.out"
check "... all 4000 reached the stand-in" [ $(($(grec_count) - n0)) = 4000 ]
poll 3000 bash -c "[ \$((\$(grep -c '\"path\":\"$P\",\"status\":200' '$PX_ACCESS') - $a0)) -ge 4000 ]"
check "... and were logged with grpc-status OK (200)" [ $(($(grep -c "\"path\":\"$P\",\"status\":200" "$PX_ACCESS") - a0)) = 4000 ]
check "10 client connections used at most 2 backend connections (2 workers' pools; saw $maxbe)" bash -c "[ $maxbe -ge 1 ] && [ $maxbe -le 2 ]"
check "REST over HTTP/1.1 meanwhile: 100 of 100 answered 200" [ "$(cat "$TFG_TMP/rest_ok")" = 100 ]

# --- the failure throttle (last: it blocks 127.0.0.1) --------------------------------------
for i in 1 2 3 4; do
	check "failure $i → UNAUTHENTICATED" expect_grpc UNAUTHENTICATED $P --user "eve:wrong$i" --model m1
done
n=$(grec_count)
check "then the right password → RESOURCE_EXHAUSTED (throttled)" expect_grpc RESOURCE_EXHAUSTED $P --user eve:eve-pw --model m1
check "REST from the same address is throttled too (429)" expect_code 429 -u eve:eve-pw "$(PURL /v1/models/half_plus_two)"
check "nothing of it reached the stand-in" [ "$(grec_count)" = "$n" ]
check "throttle counted in metrics" bash -c "curl -s http://127.0.0.1:$PX_ADMIN/metrics | grep -Eq '^tfguard_proxy_auth_throttled_total [1-9]'"
pass
