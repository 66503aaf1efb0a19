#!/bin/bash
# tfguard-proxy, gRPC flow control end to end: a client calls a server-streaming method
# that would send 256 MiB (256 replies of 1 MiB) and then never reads. The proxy must
# stop taking data from the backend once the client's window and its own small buffers
# are full: the stand-in's generator stalls after a few MiB, the proxy's memory does not
# grow with what the backend would send, and other calls and REST keep working meanwhile.
# Three concurrent 40 MB calls on one channel all succeed (none waits for ever for budget),
# and so do eight concurrent 20 MB calls (more than the budget holds at once).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
. "$TOP/tests/helpers/grpc_env.sh"
need_cmd ss
px_init
px_stub
gx_stub
htpasswd -bB "$PX_HT" root root-pw 2>/dev/null
PX_ACL="root = *, @grpc:tfguard.test.Stream/*"
gx_conf
px_start

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$PX_PID/status"; }
check "warm-up call → OK" expect_grpc OK /tensorflow.serving.PredictionService/Predict --user root:root-pw --model m1
rss0=$(rss_kb)
authz="Basic $(printf root:root-pw | base64)"
"$PY" "$TOP/tests/helpers/h2_flood.py" "$PX_PORT" "$TFG_TMP/cert.pem" noread 256 "$authz" \
	/tfguard.test.Stream/Flood 8 >"$TFG_TMP/noread.out" 2>&1 &
reader=$!
_PIDS+=("$reader")
flood=$GREC.flood
poll 5000 test -s "$flood" || fail "the stand-in never started sending"
# let it run into the closed windows, then see that it stays put
sleep_until_stable() {
	local a b
	a=$(cat "$flood")
	sleep 1
	b=$(cat "$flood")
	[ "$a" = "$b" ]
}
poll 6000 sleep_until_stable || fail "the stand-in kept sending: $(cat "$flood") MiB"
n=$(cat "$flood")
rss1=$(rss_kb)
say "stand-in stalled after $n of 256 MiB; proxy RSS ${rss0} kB -> ${rss1} kB"
check "the backend is held back: stalled at $n MiB of 256" [ "$n" -lt 32 ]
check "proxy memory grew by less than 16 MiB ($(((rss1 - rss0) / 1024)) MiB)" [ $((rss1 - rss0)) -lt 16384 ]
check "another gRPC call meanwhile → OK" expect_grpc OK /tensorflow.serving.PredictionService/Predict --user root:root-pw --model m1
check "REST meanwhile → 200" expect_code 200 -u root:root-pw "$(PURL /v1/models/half_plus_two)"
wait "$reader"

# ten stalled readers at once (2.5 MiB of stream windows, more than a small shared backend
# connection window): the pooled backend connections must keep serving everybody else
readers=()
for i in $(seq 1 10); do
	"$PY" "$TOP/tests/helpers/h2_flood.py" "$PX_PORT" "$TFG_TMP/cert.pem" noread 256 "$authz" \
		/tfguard.test.Stream/Flood 8 >/dev/null 2>&1 &
	readers+=($!)
	_PIDS+=($!)
done
sleep_until_stable_n() {
	local a b
	a=$(grep -c . "$GREC")
	sleep 1
	b=$(grep -c . "$GREC")
	[ "$a" = "$b" ]
}
poll 6000 sleep_until_stable_n || true
ok=0
for i in 1 2 3 4 5 6; do
	QUIET=1 expect_grpc OK /tensorflow.serving.PredictionService/Predict --user root:root-pw --model m1 --timeout 3 && ok=$((ok + 1))
done
check "with 10 stalled readers, 6 of 6 other calls → OK ($ok)" [ "$ok" = 6 ]
for r in "${readers[@]}"; do wait "$r"; done
check "after the reader left, calls still work" expect_grpc OK /tensorflow.serving.PredictionService/Predict --user root:root-pw --model m1

# concurrent large calls on one connection: each first message is read whole before it is
# forwarded, out of a per-connection budget (grpc_max_message + 1 MiB) that they share
out=$(gcall /tensorflow.serving.PredictionService/Predict --user root:root-pw --model m1 \
	--pad 40000000 --concurrent 3 --timeout 60)
say "3 concurrent 40 MB calls on one channel: $out"
check "3 concurrent 40 MB calls on one channel → all OK" grep -q '"codes": \["OK", "OK", "OK"\]' <<<"$out"
# more large first messages at once than the budget holds: the ones that wait must not
# hold the connection window with their unacknowledged bytes (before: with 5 or more, one
# stalled until body_timeout)
out=$(gcall /tensorflow.serving.PredictionService/Predict --user root:root-pw --model m1 \
	--pad 20000000 --concurrent 8 --timeout 60)
say "8 concurrent 20 MB calls on one channel: $out"
check "8 concurrent 20 MB calls on one channel → all OK" \
	grep -q '"codes": \["OK", "OK", "OK", "OK", "OK", "OK", "OK", "OK"\]' <<<"$out"
pass
