#!/bin/bash
# tfguard-run: real servers (python http.server on 0.0.0.0 and dual-stack [::],
# nginx master + worker, a gRPC-like dual-stack [::]:8500 listener) end up on
# loopback; proved from a second namespace with no firewall anywhere.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/run-lib.sh"
run_need
need_cmd nginx
run_topology
cd "$TFG_TMP" || fail "tmp dir"

guarded_server "python3 -m http.server 8501" 8501 "$PY" -m http.server 8501
check "http.server answers HTTP on 127.0.0.1:8501" in_ns "$SRV" curl -sf -o /dev/null http://127.0.0.1:8501/
stop "$GUARDED_PID" 8501

guarded_server "python3 -m http.server --bind :: 8501" 8501 "$PY" -m http.server --bind :: 8501
check "dual-stack http.server answers on 127.0.0.1 (v4-mapped loopback)" \
	in_ns "$SRV" curl -sf -o /dev/null http://127.0.0.1:8501/
stop "$GUARDED_PID" 8501

guarded_server "bindtest -s -6 0 :: 8500 (gRPC-like dual-stack)" 8500 "$H/bindtest" -s -6 0 :: 8500
check "gRPC-like listener is [::ffff:127.0.0.1]:8500" listening "$SRV" 8500 "[::ffff:127.0.0.1]"
stop "$GUARDED_PID" 8500

nginx_conf "$TFG_TMP/nginx" 8501 "[::]:8501"
guarded_server "nginx (master + workers, 0.0.0.0 and [::])" 8501 \
	nginx -p "$TFG_TMP/nginx" -c "$TFG_TMP/nginx/nginx.conf" -e stderr
check "nginx answers on 127.0.0.1:8501" in_ns "$SRV" curl -sf -o /dev/null http://127.0.0.1:8501/
check "nginx answers on [::1]:8501" in_ns "$SRV" curl -sf -o /dev/null 'http://[::1]:8501/'
# both layers are inherited by the workers nginx forks
master=$(cat "$TFG_TMP/nginx/nginx.pid")
workers=$(pgrep -P "$master" || true)
[ -n "$workers" ] || fail "no nginx worker found under master $master"
for w in $workers; do
	check "nginx worker $w runs under seccomp (filter mode)" grep -q '^Seccomp:[[:space:]]*2' "/proc/$w/status"
	check "nginx worker $w has the shim mapped" grep -q libtfguard-preload.so "/proc/$w/maps"
done
stop "$GUARDED_PID" 8501
pass
