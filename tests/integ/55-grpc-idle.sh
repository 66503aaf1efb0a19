#!/bin/bash
# tfguard-proxy, gRPC connections that never finish a request are not held: requests
# without credentials and without END_STREAM are answered UNAUTHENTICATED, reset after
# body_timeout (RST_STREAM NO_ERROR) and the connection idles out; a HEADERS frame
# without END_HEADERS and nothing after it is cut off after header_timeout. Ten such
# connections with 100 streams of 30 kB headers each: the proxy's highest RSS grows by
# less than 20 MiB (before the fix: 38 MiB, held until the clients left). A call without
# grpc-timeout that the backend does not answer ends after response_timeout. PINGs alone
# do not push the idle timeout back (before: a PING every 0.4 s kept it open for ever).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
. "$TOP/tests/helpers/grpc_env.sh"
px_init
px_stub
gx_stub --slow-ms 3000
htpasswd -bB "$PX_HT" alice alice-pw 2>/dev/null
PX_ACL="alice = m1, slow, half_plus_two"
gx_conf 'header_timeout = 1s' 'body_timeout = 1s' 'idle_timeout = 2s' 'auth_fail_limit = 100000' \
	'response_timeout = 1s'
px_start
FLOOD=$TOP/tests/helpers/h2_flood.py
P=/tensorflow.serving.PredictionService/Predict
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$PX_PID/status"; }
field() { "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

check "warm-up call → OK" expect_grpc OK $P --user alice:alice-pw --model m1

out=$("$PY" "$FLOOD" "$PX_PORT" "$TFG_TMP/cert.pem" halfopen 3 0 10)
say "3 unfinished requests without credentials: $out"
check "unfinished unauthenticated requests: connection closed by the proxy" grep -q '"closed": true' <<<"$out"
check "... within idle_timeout and a margin ($(field "$out" after) s ≤ 6 s)" \
	"$PY" -c "import sys; sys.exit(not $(field "$out" after) <= 6)"
check "... each request reset with NO_ERROR after its answer" grep -q '"rst": {"0": 3}' <<<"$out"

out=$("$PY" "$FLOOD" "$PX_PORT" "$TFG_TMP/cert.pem" nohdrend 1 0 8)
say "HEADERS without END_HEADERS: $out"
check "header block never finished: connection closed by the proxy" grep -q '"closed": true' <<<"$out"
check "... within header_timeout and a margin ($(field "$out" after) s ≤ 4 s)" \
	"$PY" -c "import sys; sys.exit(not $(field "$out" after) <= 4)"

out=$("$PY" "$FLOOD" "$PX_PORT" "$TFG_TMP/cert.pem" ping 400 0 8)
say "no request, a PING every 0.4 s: $out"
check "PINGs alone do not keep a connection open: closed by the proxy" grep -q '"closed": true' <<<"$out"
check "... within idle_timeout and a margin ($(field "$out" after) s ≤ 4 s)" \
	"$PY" -c "import sys; sys.exit(not $(field "$out" after) <= 4)"

# memory: 10 connections x 100 unfinished requests with 30 kB of headers each
rss0=$(rss_kb)
pids=()
for i in $(seq 1 10); do
	"$PY" "$FLOOD" "$PX_PORT" "$TFG_TMP/cert.pem" halfopen 100 30000 10 >"$TFG_TMP/ho$i.out" 2>&1 &
	pids+=($!)
	_PIDS+=($!)
done
# the highest RSS while the clients run (each waits at most 10 s for the close)
rss1=$rss0
alive() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
for k in $(seq 1 120); do
	r=$(rss_kb)
	[ "$r" -gt "$rss1" ] && rss1=$r
	alive || break
	sleep 0.1
done
for p in "${pids[@]}"; do wait "$p"; done
closed=$(grep -l '"closed": true' "$TFG_TMP"/ho*.out | wc -l)
say "RSS ${rss0} kB -> ${rss1} kB; $(head -c 300 "$TFG_TMP/ho1.out")"
check "10 connections x 100 unfinished requests: all 10 closed by the proxy ($closed)" [ "$closed" = 10 ]
if grep -q 'sanitizer build' "$PX_LOG"; then
	say "RSS not compared: ASan keeps freed memory in quarantine ($(((rss1 - rss0) / 1024)) MiB)"
else
	check "... proxy memory (highest RSS) grew by less than 20 MiB ($(((rss1 - rss0) / 1024)) MiB)" [ $((rss1 - rss0)) -lt 20480 ]
fi
check "a normal call afterwards → OK" expect_grpc OK $P --user alice:alice-pw --model m1

# a call without grpc-timeout is bounded by response_timeout, as REST is
out=$(gcall $P --user alice:alice-pw --model slow --timeout 0)
say "3 s call, no grpc-timeout, response_timeout 1 s: $out"
check "no grpc-timeout: response_timeout ends a call the backend does not answer → DEADLINE_EXCEEDED" \
	grep -q '"code": "DEADLINE_EXCEEDED", "details": "No response from the backend within response_timeout"' <<<"$out"
check "REST afterwards → 200" expect_code 200 -u alice:alice-pw "$(PURL /v1/models/half_plus_two)"
pass
