#!/bin/bash
# [limits], token buckets per user: alice sends at 5× her rate for 3 s over 16 keep-alive
# connections (so that SO_REUSEPORT spreads them over both workers) and must get about
# burst + rate × time 200s, the rest 429 with Retry-After and a TF Serving-shaped body,
# never forwarded; with one bucket per worker she would get nearly twice as many.
# Meanwhile bob, under his own rate, is never refused. The access log names the limit
# and the metrics count it.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss
px_init
px_stub
htpasswd -bB -C 4 "$PX_HT" alice alice-pw 2>/dev/null
htpasswd -bB -C 4 "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL=$'alice = *\nbob = *'
RATE=10 BURST=10
px_conf '[limits]' "default = ${RATE}r/s burst=$BURST"
px_start
LOAD=(env "$PY" "$TOP/tests/helpers/limit_load.py" --port "$PX_PORT" --ca "$TFG_TMP/cert.pem")

check "one request passes" expect_code 200 -u alice:alice-pw "$(PURL /v1/models/fraud)"
# let the bucket that request touched fill up again (1 token at 10r/s: 100 ms)
sleep 0.2
before=$(rec_count)
# context switches per thread of the proxy: a worker that served connections wakes up
# from epoll_wait at least once per request; the others barely move
ctxsw() { for f in /proc/"$PX_PID"/task/*/status; do
	printf '%s %s\n' "${f%/status}" "$(awk '/^voluntary_ctxt_switches/ { print $2 }' "$f")"; done; }
ctxsw >"$TFG_TMP/ctx0"
"${LOAD[@]}" --user bob:bob-pw --rate 5 --duration 3 --conns 2 >"$TFG_TMP/bob.json" &
bobpid=$!
"${LOAD[@]}" --user alice:alice-pw --rate $((RATE * 5)) --duration 3 --conns 16 >"$TFG_TMP/alice.json" ||
	fail "load generator failed"
wait "$bobpid" || fail "load generator (bob) failed"
ctxsw >"$TFG_TMP/ctx1"
say "wake-ups per thread: $(join "$TFG_TMP/ctx0" "$TFG_TMP/ctx1" | awk '{ printf "%d ", $3 - $2 }')"
busy=$(join "$TFG_TMP/ctx0" "$TFG_TMP/ctx1" | awk '$3 - $2 >= 30 { n++ } END { print n + 0 }')
check "the load reached both workers ($busy threads woke ≥ 30 times)" [ "$busy" -ge 2 ]
j() { "$PY" -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }
ok=$(j "$TFG_TMP/alice.json" 'r["status"].get("200",0)')
lim=$(j "$TFG_TMP/alice.json" 'r["status"].get("429",0)')
span=$(j "$TFG_TMP/alice.json" 'r["span"]')
want=$("$PY" -c "print(int($BURST + $RATE * $span))")
say "alice: $ok × 200, $lim × 429 over ${span}s; one shared bucket allows $want"
check "alice sent 150 requests, all answered 200 or 429" [ "$((ok + lim))" = 150 ]
# tolerance: the refill between the first and the last request is measured by the
# client, the proxy sees it a few ms shifted: ±3 requests (30 ms at 10r/s)
check "alice got about burst + rate × time 200s ($ok, want $want ± 3)" \
	[ "$ok" -ge $((want - 3)) -a "$ok" -le $((want + 3)) ]
check "every 429 carries Retry-After 1" j "$TFG_TMP/alice.json" \
	'exit(0 if r["retry_after"] and all(x=="1" for x in r["retry_after"]) else 1)'
check "every 429 body is {\"error\": ...}" [ "$(j "$TFG_TMP/alice.json" 'r["bad_429_body"]')" = 0 ]
check "no connection error" [ "$(j "$TFG_TMP/alice.json" 'r["errors"]')" = 0 ]
fwd=$(($(rec_count) - before))
bok=$(j "$TFG_TMP/bob.json" 'r["status"].get("200",0)')
check "bob, under his rate meanwhile, got 15 × 200 ($bok)" [ "$bok" = 15 ]
check "only admitted requests reached the backend ($fwd = $ok + $bok)" [ "$fwd" = $((ok + bok)) ]
check "access log: 429 with limit user" bash -c "grep '\"status\":429' '$PX_ACCESS' | grep -q '\"limit\":\"user\"'"
check "access log: no limit field on 200s" bash -c "! grep '\"status\":200' '$PX_ACCESS' | grep -q '\"limit\"'"
m=$(curl -s "http://127.0.0.1:$PX_ADMIN/metrics")
check "metrics: limited{user} = $lim" grep -qx "tfguard_proxy_limited_total{limit=\"user\"} $lim" <<<"$m"
check "metrics: allowed{user} counted" grep -Eq '^tfguard_proxy_limit_allowed_total\{limit="user"\} [1-9]' <<<"$m"
check "metrics: evictions exported" grep -q '^tfguard_proxy_limit_evictions_total 0' <<<"$m"
pass
