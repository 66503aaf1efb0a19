#!/bin/bash
# [limits] inflight: with a slow stand-in (1.5 s per answer) and inflight = 2, five
# requests at once from one user: exactly 2 reach the backend, 3 get 429 at once.
# The slot is given back however a request ends: backend error (502), client gone
# (curl aborts), backend timeout (504), normal answer; a leak would turn later requests into 429s.
# Then, on SIGHUP, a bounded queue: queue = 1 lets one more wait for a slot, the rest
# 429; queue_timeout ends a wait that lasts too long with 429 (limit queue_timeout).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss
px_init
px_stub --slow-ms 1500
htpasswd -bB -C 4 "$PX_HT" alice alice-pw 2>/dev/null
htpasswd -bB -C 4 "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL=$'alice = *\nbob = *'
px_conf '[limits]' 'inflight = 2'
px_start
LOAD=(env "$PY" "$TOP/tests/helpers/limit_load.py" --port "$PX_PORT" --ca "$TFG_TMP/cert.pem")
j() { "$PY" -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }
nslow() { grep -c '/v1/models/slow' "$REC"; }
# conc N PATH: N requests at once from alice; result in $TFG_TMP/c.json
conc() { "${LOAD[@]}" --user alice:alice-pw --concurrent "$1" --path "$2" >"$TFG_TMP/c.json" || fail "load generator failed"; say "$(j "$TFG_TMP/c.json" 'r["results"]')"; }
codes() { j "$TFG_TMP/c.json" '" ".join(str(x["status"]) for x in sorted(r["results"], key=lambda x: x["status"]))'; }
limited() { curl -s "http://127.0.0.1:$PX_ADMIN/metrics" | sed -n "s/^tfguard_proxy_limited_total{limit=\"$1\"} //p"; }

check "warm-up (credential cache)" expect_code 200 -u alice:alice-pw "$(PURL /v1/models/fraud)"
before=$(nslow)
conc 5 /v1/models/slow
check "5 at once, inflight = 2: 200 200 429 429 429 ($(codes))" [ "$(codes)" = "200 200 429 429 429" ]
check "the 429s came at once (< 1 s), the 200s after the backend (≥ 1.4 s)" j "$TFG_TMP/c.json" \
	'exit(0 if all((x["secs"] < 1.0) == (x["status"] == 429) for x in r["results"]) and all(x["secs"] >= 1.4 for x in r["results"] if x["status"] == 200) else 1)'
check "429s carry Retry-After" j "$TFG_TMP/c.json" 'exit(0 if all(x["retry_after"] == "1" for x in r["results"] if x["status"] == 429) else 1)'
check "exactly 2 reached the backend ($(($(nslow) - before)))" [ $(($(nslow) - before)) = 2 ]
check "access log: limit inflight" bash -c "grep '\"status\":429' '$PX_ACCESS' | grep -q '\"limit\":\"inflight\"'"

# release on backend error (the stand-in closes in the middle of the body, the proxy
# closes the client connection): from the third on these would be 429 if leaked
for i in 1 2 3; do
	code=$(pcurl -o /dev/null -w '%{http_code}' -u alice:alice-pw "$(PURL /v1/models/closemid)")
	check "backend closed mid-body $i (got $code, not 429): slot given back" [ "$code" = 200 ]
done
# release when the client goes away: two aborted requests hold both slots until the
# backend answers (the proxy notices the dead client when it writes), then free them
pcurl -o /dev/null --max-time 0.3 -u alice:alice-pw "$(PURL /v1/models/slow)" &
a1=$!
pcurl -o /dev/null --max-time 0.3 -u alice:alice-pw "$(PURL /v1/models/slow)" &
a2=$!
wait "$a1" "$a2"
both_ok() { conc 2 /v1/models/fraud >/dev/null; [ "$(codes)" = "200 200" ]; }
check "after the clients went away both slots come back (within 5 s)" poll 5000 both_ok
check "bob is not limited by alice's slots" expect_code 200 -u bob:bob-pw "$(PURL /v1/models/fraud)"
conc 2 /v1/models/slow
check "no slot leaked: 2 slow requests at once both pass ($(codes))" [ "$(codes)" = "200 200" ]

# SIGHUP: a queue of 1
reloads() { grep -c 'reloaded' "$PX_LOG"; }
r0=$(reloads)
px_conf '[limits]' 'inflight = 2' 'queue = 1' 'queue_timeout = 4s'
kill -HUP "$PX_PID"
poll 5000 bash -c "[ \$(grep -c reloaded '$PX_LOG') -gt $r0 ]" || fail "no reload"
before=$(nslow)
lim0=$(limited inflight)
conc 4 /v1/models/slow
check "queue = 1: 200 200 200 429 ($(codes))" [ "$(codes)" = "200 200 200 429" ]
check "metrics: the refusal with the queue full counted, limited{inflight} +1 ($lim0 → $(limited inflight))" \
	[ $(($(limited inflight) - lim0)) = 1 ]
check "the queued one waited for a slot (≥ 2.9 s)" j "$TFG_TMP/c.json" \
	'exit(0 if max(x["secs"] for x in r["results"]) >= 2.9 else 1)'
check "3 reached the backend, one after the other freed a slot" [ $(($(nslow) - before)) = 3 ]

say "a queued client that gives up never reaches the backend"
before=$(nslow)
pcurl -o /dev/null -u alice:alice-pw "$(PURL /v1/models/slow)" &
q1=$!
pcurl -o /dev/null -u alice:alice-pw "$(PURL /v1/models/slow)" &
q2=$!
poll 3000 bash -c "[ \$((\$(grep -c /v1/models/slow '$REC') - $before)) -ge 2 ]" ||
	fail "the two slots were not taken"
pcurl -o /dev/null --max-time 0.4 -u alice:alice-pw "$(PURL /v1/models/slow)"
wait "$q1" "$q2"
check "only the 2 running ones reached the backend ($(($(nslow) - before)))" \
	[ $(($(nslow) - before)) = 2 ]

r0=$(reloads)
px_conf '[limits]' 'inflight = 2' 'queue = 1' 'queue_timeout = 500ms'
kill -HUP "$PX_PID"
poll 5000 bash -c "[ \$(grep -c reloaded '$PX_LOG') -gt $r0 ]" || fail "no reload"
conc 3 /v1/models/slow
check "queue_timeout 500 ms < backend 1.5 s: 200 200 429 ($(codes))" [ "$(codes)" = "200 200 429" ]
check "the 429 came after the queue timeout (0.4–1.4 s)" j "$TFG_TMP/c.json" \
	'exit(0 if all(0.4 <= x["secs"] < 1.4 for x in r["results"] if x["status"] == 429) else 1)'
check "access log: limit queue_timeout" bash -c "grep '\"status\":429' '$PX_ACCESS' | grep -q '\"limit\":\"queue_timeout\"'"
m=$(curl -s "http://127.0.0.1:$PX_ADMIN/metrics")
# 4 above, plus those the poll for freed slots met while the aborted requests held them
n=$(awk '$1 == "tfguard_proxy_limited_total{limit=\"inflight\"}" { print $2 }' <<<"$m")
check "metrics: limited{inflight} ≥ 4 ($n)" [ "${n:-0}" -ge 4 ]
check "metrics: limited{queue_timeout} = 1" grep -qx 'tfguard_proxy_limited_total{limit="queue_timeout"} 1' <<<"$m"

# release on backend timeout: restart with response_timeout (not reloadable) < 1.5 s
kill "$PX_PID"
wait "$PX_PID" 2>/dev/null
poll 10000 bash -c "[ -z \"\$(ss -Hltn 'sport = :$PX_PORT')\" ]" || fail "old proxy still listening"
px_conf 'response_timeout = 500ms' '[limits]' 'inflight = 2'
px_start
conc 2 /v1/models/slow
check "backend timeout: 504 504 ($(codes))" [ "$(codes)" = "504 504" ]
conc 2 /v1/models/fraud
check "both slots came back after the timeouts ($(codes))" [ "$(codes)" = "200 200" ]
pass
