#!/bin/bash
# tfguard-proxy, gRPC: many large first messages at once on one connection take turns
# through the per-connection budget (grpc_max_message + 1 MiB) and all finish. With
# grpc_max_message = 4M, 40 concurrent 3 MB calls on one channel: one fits the budget
# at a time, 39 wait, each with up to 256 KiB buffered (≈ 10 MiB together). Waiting
# streams must not close the connection window, or the call holding the budget can
# never finish (seen with a cap on what waiting streams may hold: all 40 stalled).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
. "$TOP/tests/helpers/grpc_env.sh"
px_init
px_stub
gx_stub
htpasswd -bB "$PX_HT" root root-pw 2>/dev/null
PX_ACL="root = *"
gx_conf 'grpc_max_message = 4M' 'body_timeout = 20s'
px_start

out=$(gcall /tensorflow.serving.PredictionService/Predict --user root:root-pw --model m1 \
	--pad 3000000 --concurrent 40 --timeout 60)
codes=$("$PY" -c 'import json,sys; c=json.loads(sys.argv[1])["codes"]; print(len(c), c.count("OK"))' "$out")
say "40 concurrent 3 MB calls on one channel: $codes (count, OK) — $(head -c 300 <<<"$out")"
check "40 concurrent 3 MB calls on one channel → 40 OK" test "$codes" = "40 40"
check "the stand-in received all 40" [ "$(grec_count)" = 40 ]

# the same with DATA sent round-robin over all 40 streams (every stream has some bytes
# buffered while it waits)
authz="Basic $(printf root:root-pw | base64)"
out=$("$PY" "$TOP/tests/helpers/h2_roundrobin.py" "$PX_PORT" "$TFG_TMP/cert.pem" 40 3000000 "$authz")
say "round-robin, 40 x 3 MB: $out"
check "round-robin: no stall, all 40 streams ended" grep -q '"stalled": false, "done": 40' <<<"$out"
check "the stand-in received 40 more" [ "$(grec_count)" = 80 ]
pass
