#!/bin/bash
# tfguard-proxy, the backend side: refused → 502, connect hangs → 504, slow → 504,
# closed mid-response → the client connection is closed (never hung); keep-alive reuse
# of backend connections, no desynchronisation by extra backend bytes, transparent retry of a GET on a stale pooled connection
# after the backend restarted, and an 8 MiB response streamed byte for byte.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss sha256sum
px_init
px_stub --slow-ms 3000
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL="bob = *"
px_conf 'response_timeout = 1s' 'connect_timeout = 1s'
px_start
U=(-u bob:bob-pw)

# keep-alive to the backend: several requests, one backend connection
: >"$REC"
pcurl "${U[@]}" -o /dev/null -o /dev/null -o /dev/null "$(PURL /v1/models/fraud)" \
	"$(PURL /v1/models/churn)" "$(PURL /v1/models/fraud/metadata)"
check "three requests forwarded" [ "$(rec_count)" = 3 ]
check "over one backend connection" [ "$("$PY" -c 'import json,sys; print(len({json.loads(l)["conn"] for l in open(sys.argv[1])}))' "$REC")" = 1 ]

# big response, streamed
want=$(curl -s "http://127.0.0.1:$STUB_PORT/v1/models/big:predict" -d '{}' | sha256sum)
got=$(pcurl "${U[@]}" -d '{}' "$(PURL /v1/models/big:predict)" | sha256sum)
check "8 MiB response byte for byte" [ "$want" = "$got" ]

# a backend that sends an unasked-for second response: it is never given to anyone
out=$(pcurl "${U[@]}" "$(PURL /v1/models/extra)" "$(PURL /v1/models/fraud)" "$(PURL /v1/models/churn)")
check "extra bytes from the backend are not taken as the next answer" bash -c "! grep -q smuggled <<<'$out'"
check "... the next answers are the real ones" [ "$(grep -c model_version_status <<<"$out")" = 2 ]

# slow backend → 504 after response_timeout
t0=$(date +%s%N)
check "slow backend → 504" expect_code 504 "${U[@]}" -d '{"instances":[1]}' "$(PURL /v1/models/slow:predict)"
ms=$((($(date +%s%N) - t0) / 1000000))
check "504 body is TF Serving-shaped" grep -q '"error"' "$TFG_TMP/body"
check "504 after ~1 s ($ms ms)" [ "$ms" -ge 900 ] && [ "$ms" -lt 2500 ]

# closed mid-response → client closed, promptly
t0=$(date +%s%N)
pcurl -o "$TFG_TMP/partial" "${U[@]}" -d '{}' "$(PURL /v1/models/closemid:predict)"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "mid-response close → curl sees a short transfer (rc=$rc)" [ "$rc" = 18 ]
check "... within 2 s ($ms ms)" [ "$ms" -lt 2000 ]
check "... the partial bytes arrived" grep -q 'predictio' "$TFG_TMP/partial"
check "proxy still serves" expect_code 200 "${U[@]}" "$(PURL /v1/models/fraud)"

# backend restart: pooled connections are stale; a GET is retried on a fresh one
kill "$STUB_PID"
poll 5000 bash -c "! ss -Hltn 'sport = :$STUB_PORT' | grep -q ." || fail "stub did not stop"
check "backend down → 502" expect_code 502 "${U[@]}" "$(PURL /v1/models/fraud)"
check "502 body is TF Serving-shaped" grep -q '"error"' "$TFG_TMP/body"
bg "$PY" "$STUB" --port "$STUB_PORT" --record "$REC"
STUB_PID=$BG_PID
poll 5000 listening_local "$STUB_PORT" || fail "stub did not restart"
check "after the backend restarted: 200" expect_code 200 "${U[@]}" "$(PURL /v1/models/fraud)"
# fill the pool, restart the backend again, then a GET on a (now stale) pooled socket
pcurl "${U[@]}" -o /dev/null -o /dev/null "$(PURL /v1/models/fraud)" "$(PURL /v1/models/fraud)"
kill "$STUB_PID"
poll 5000 bash -c "! ss -Hltn 'sport = :$STUB_PORT' | grep -q ." || fail "stub did not stop"
bg "$PY" "$STUB" --port "$STUB_PORT" --record "$REC"
STUB_PID=$BG_PID
poll 5000 listening_local "$STUB_PORT" || fail "stub did not restart"
check "stale pooled connection: GET still 200" expect_code 200 "${U[@]}" "$(PURL /v1/models/fraud)"
check "upstream errors are counted" bash -c "curl -s http://127.0.0.1:$PX_ADMIN/metrics | grep -Eq '^tfguard_proxy_upstream_errors_total\{kind=\"connect\"\} [1-9]'"
# A backend that dies under a reused connection (dropsecond: the 2nd request on a backend
# connection is closed unanswered). One client connection (curl --next) keeps both
# requests on one worker, so the 2nd goes out on the pooled connection of the 1st.
# dropsecond ITEM: curl args for a GET to /v1/models/dropsecond after a first plain GET
dropsecond() {
	curl -s --max-time 20 --cacert "$TFG_TMP/cert.pem" --resolve "localhost:$PX_PORT:127.0.0.1" \
		"${U[@]}" -o /dev/null -w '%{http_code} ' "$(PURL /v1/models/dropsecond)" --next \
		--max-time 20 --cacert "$TFG_TMP/cert.pem" --resolve "localhost:$PX_PORT:127.0.0.1" \
		"${U[@]}" -o /dev/null -w '%{http_code}' "$@" "$(PURL /v1/models/dropsecond)"
}
check "dropped on a reused backend connection: a GET is retried once → 200" \
	[ "$(dropsecond)" = "200 200" ]
# ... but not a GET with a body: its body went to the dead socket; resending the head
# alone would leave the next backend connection waiting for it (before: 504 after
# response_timeout)
t0=$(date +%s%N)
got=$(dropsecond -X GET -H 'Content-Type: application/json' --data-binary '{"instances": [1.0]}')
ms=$((($(date +%s%N) - t0) / 1000000))
check "... a GET with a body is not retried: 502 ($got)" [ "$got" = "200 502" ]
check "... at once ($ms ms)" [ "$ms" -lt 900 ]

# a backend whose accept queue is full: connect() hangs → 504 after connect_timeout
kill "$STUB_PID"
poll 5000 bash -c "! ss -Hltn 'sport = :$STUB_PORT' | grep -q ." || fail "stub did not stop"
"$PY" - "$STUB_PORT" "$TFG_TMP" <<'PYEOF' &
import socket, sys, time
port, tmp = int(sys.argv[1]), sys.argv[2]
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port))
l.listen(0)
fill = []
for _ in range(4):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    fill.append(s)
time.sleep(0.3)
open(tmp + "/full", "w").close()
time.sleep(6)
PYEOF
fpid=$!
_PIDS+=("$fpid")
poll 5000 test -e "$TFG_TMP/full" || fail "could not fill the backlog"
t0=$(date +%s%N)
check "connect hangs → 504" expect_code 504 "${U[@]}" "$(PURL /v1/models/fraud)"
ms=$((($(date +%s%N) - t0) / 1000000))
check "... after ~1 s ($ms ms)" [ "$ms" -ge 900 ] && [ "$ms" -lt 2500 ]
check "timeouts are counted" bash -c "curl -s http://127.0.0.1:$PX_ADMIN/metrics | grep -Eq '^tfguard_proxy_upstream_errors_total\{kind=\"timeout\"\} [1-9]'"
pass
