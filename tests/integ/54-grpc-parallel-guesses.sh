#!/bin/bash
# tfguard-proxy, gRPC: parallel password guesses cannot outrun auth_fail_limit. gRPC calls
# go through the same admission as REST (auth.h: a new user/password pair takes one of its
# address's in-flight slots), so of 20 simultaneous calls with different wrong passwords
# at most auth_fail_limit are verified (UNAUTHENTICATED) and the rest are refused with
# RESOURCE_EXHAUSTED before any hash; nothing reaches the stand-in.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
. "$TOP/tests/helpers/grpc_env.sh"
need_cmd ss
px_init
px_stub
gx_stub
# a slow hash (bcrypt cost 13, ~0.5 s) so that the calls really overlap
htpasswd -bBC 13 "$PX_HT" carol carol-pw 2>/dev/null
PX_ACL="carol = m1"
gx_conf 'auth_fail_limit = 3' 'auth_fail_window = 60s'
px_start
P=/tensorflow.serving.PredictionService/Predict
n=$(grec_count) pids=
for i in $(seq 1 20); do
	gcode $P --user "carol:guess$i" --model m1 >"$TFG_TMP/g.$i" 2>&1 &
	pids+=" $!"
done
# shellcheck disable=SC2086 # (not a bare wait: that would wait for the proxy too)
wait $pids
cat "$TFG_TMP"/g.* | sort | uniq -c | sed 's/^/#   /'
unauth=$(cat "$TFG_TMP"/g.* | grep -c '^UNAUTHENTICATED$')
exhausted=$(cat "$TFG_TMP"/g.* | grep -c '^RESOURCE_EXHAUSTED$')
check "at most auth_fail_limit (3) of the 20 were verified ($unauth)" [ "$unauth" -le 3 ]
check "the rest were refused with RESOURCE_EXHAUSTED ($exhausted)" [ "$((unauth + exhausted))" = 20 ]
check "at most 3 failure lines" [ "$(grep -c 'failed login from 127\.0\.0\.1 user "carol"' "$PX_LOG")" -le 3 ]
check "nothing reached the stand-in" [ "$(grec_count)" = "$n" ]
pass
