#!/bin/bash
# [limits] client and model, and reload: the client limit is checked before
# authentication, so 401s cost a token (it bounds password guessing next to
# auth_fail_limit); another address is unaffected; SIGHUP with a new rate does not
# refill an existing bucket; model.NAME is one bucket shared by every user. tfguard check
# LIM-1 passes with [limits] and warns, with its evidence, without.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss jq
px_init
px_stub
htpasswd -bB -C 4 "$PX_HT" alice alice-pw 2>/dev/null
htpasswd -bB -C 4 "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL=$'alice = *\nbob = *'
px_conf '[limits]' 'client = 5r/m'
px_start
# fromc ADDR CODE USER:PW PATH: status must be CODE from source address ADDR
fromc() {
	local got
	got=$(curl -s -D "$TFG_TMP/hdrs" -o "$TFG_TMP/body" -w '%{http_code}' --max-time 20 \
		--cacert "$TFG_TMP/cert.pem" --interface "$1" \
		--resolve "localhost:$PX_PORT:127.0.0.1" -u "$3" "https://localhost:$PX_PORT$4")
	[ "$got" = "$2" ] || { say "expected $2, got $got from $1: $(head -c 200 "$TFG_TMP/body")"; return 1; }
}
for i in 1 2 3 4 5; do
	check "127.0.0.1 wrong password $i → 401 (costs a client token)" fromc 127.0.0.1 401 alice:wrong /v1/models/fraud
done
check "6th from 127.0.0.1, right password → 429 (client limit, before authentication)" \
	fromc 127.0.0.1 429 alice:alice-pw /v1/models/fraud
check "Retry-After 12 s (5r/m)" grep -qi '^Retry-After: 12' "$TFG_TMP/hdrs"
check "body is {\"error\": ...}" grep -q '"error"' "$TFG_TMP/body"
check "access log: limit client" bash -c "grep '\"status\":429' '$PX_ACCESS' | grep -q '\"limit\":\"client\"'"
check "127.0.0.2 is not affected" fromc 127.0.0.2 200 alice:alice-pw /v1/models/fraud

r0=$(grep -c reloaded "$PX_LOG")
px_conf '[limits]' 'client = 6r/m burst=5' 'model.fraud = 2r/m'
kill -HUP "$PX_PID"
poll 5000 bash -c "[ \$(grep -c reloaded '$PX_LOG') -gt $r0 ]" || fail "no reload"
check "after SIGHUP 127.0.0.1's bucket was not refilled: still 429" \
	fromc 127.0.0.1 429 alice:alice-pw /v1/models/fraud
check "Retry-After now from the new rate (6r/m: ≤ 10 s)" grep -Eqi '^Retry-After: ([1-9]|10)[^0-9]' "$TFG_TMP/hdrs"
check "model.fraud (2r/m): alice 1st" fromc 127.0.0.3 200 alice:alice-pw /v1/models/fraud
check "model.fraud: alice 2nd" fromc 127.0.0.3 200 alice:alice-pw /v1/models/fraud
check "model.fraud: alice 3rd → 429" fromc 127.0.0.3 429 alice:alice-pw /v1/models/fraud
check "access log: limit model" bash -c "grep '\"status\":429' '$PX_ACCESS' | grep -q '\"limit\":\"model\"'"
check "model.fraud is shared: bob from another address → 429" fromc 127.0.0.4 429 bob:bob-pw /v1/models/fraud
check "another model is not limited" fromc 127.0.0.4 200 bob:bob-pw /v1/models/churn
m=$(curl -s "http://127.0.0.1:$PX_ADMIN/metrics")
check "metrics: limited{client} = 2" grep -qx 'tfguard_proxy_limited_total{limit="client"} 2' <<<"$m"
check "metrics: limited{model} = 2" grep -qx 'tfguard_proxy_limited_total{limit="model"} 2' <<<"$m"

# tfguard check, LIM-1 (in a namespace of its own: nothing of the host is inspected)
netns_new CK
lim1() { tfguard_ns "$CK" -c "$1" check --netns "$CK" --json | jq -c '.controls[] | select(.id == "LIM-1")'; }
# is JQ-FILTER: true for $out
is() { jq -e "$1" >/dev/null <<<"$out"; }
out=$(lim1 "$PX_CONF")
say "with [limits]: $out"
check "LIM-1 passes with [limits]" is '.status == "pass"'
check "... its evidence names them" is 'any(.evidence[]; . == "per client address: 6 requests per minute")'
px_conf
out=$(lim1 "$PX_CONF")
say "without [limits]: $out"
check "LIM-1 warns without [limits]" is '.status == "warn"'
check "... with its evidence" is 'any(.evidence[]; . == "no [limits]: one client can take the whole model server")'
pass
