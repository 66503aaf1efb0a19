#!/bin/bash
# tfguard-run keeps supervising after CMD exits, for as long as any process
# under its filter is left (subreaper; POLLHUP on the notification fd):
#  - a job a shell script started in the background binds after the script
#    has exited: it still lands on loopback (it used to get ENOSYS);
#  - nginx in its default "daemon on" mode: the master outlives the command;
#    a reload that adds "listen 8500" lands on loopback too;
#  - tfguard-run then exits with CMD's status, once the last one is gone,
#    and forwards signals to the processes it adopted.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/run-lib.sh"
run_need
need_cmd nginx curl
run_topology

gone() { ! kill -0 "$1" 2>/dev/null; }

say "-- a backgrounded grandchild binds after CMD has exited"
# the grandchild waits (bounded) until CMD is gone and reaped, then binds
bg ip netns exec "$SRV" "$RUN" -- sh -c "(i=0; while kill -0 \$\$ 2>/dev/null && [ \$i -lt 200 ]; do
	sleep 0.05; i=\$((i + 1)); done; kill -0 \$\$ 2>/dev/null && echo 'CMD still alive' >&2
	exec '$H/bindtest-static' -s 0.0.0.0 8501) & exit 5" 2>"$TFG_TMP/err"
RUNPID=$BG_PID
wait_port "$SRV" 8501 10000
cat "$TFG_TMP/err"
say "listeners on 8501: $(listeners "$SRV" 8501 | tr '\n' ' ')"
check "grandchild: listens on loopback only" on_loopback_only "$SRV" 8501
check "grandchild: refused from the client" refused "$CLI" "$SRV4" 8501
check "tfguard-run is still there while the grandchild runs" kill -0 "$RUNPID"
check_not "no ENOSYS" grep -q 'Function not implemented' "$TFG_TMP/err"
check_not "the grandchild bound after CMD had exited" grep -q 'CMD still alive' "$TFG_TMP/err"
# CMD (sh) is gone: a TERM to tfguard-run goes to the adopted grandchild
kill -TERM "$RUNPID"
poll 5000 gone "$RUNPID" || fail "tfguard-run did not exit after its last process"
wait "$RUNPID"
rc=$?
check "tfguard-run exits with CMD's status 5 once the last process is gone (got $rc)" test "$rc" = 5
poll 5000 no_listener "$SRV" 8501 || fail "the grandchild did not get the forwarded SIGTERM"

say "-- nginx, daemon on, reload adds listen 8500: control without tfguard-run"
ngx() {
	nginx_conf "$TFG_TMP/ngx" "$@"
	sed -i 's/^daemon off;/daemon on;/' "$TFG_TMP/ngx/nginx.conf"
}
ngx 8501
in_ns "$SRV" nginx -p "$TFG_TMP/ngx" -c "$TFG_TMP/ngx/nginx.conf" -e stderr ||
	fail "nginx did not start"
wait_port "$SRV" 8501 10000
ngx 8501 8500
in_ns "$SRV" nginx -p "$TFG_TMP/ngx" -c "$TFG_TMP/ngx/nginx.conf" -e stderr -s reload
wait_port "$SRV" 8500 10000
check "control: after the reload 8500 is reachable from the client" poll 3000 reachable "$CLI" "$SRV4" 8500
master=$(cat "$TFG_TMP/ngx/nginx.pid")
kill -TERM "$master"
poll 5000 no_listener "$SRV" 8500 || fail "control nginx did not stop"

say "-- nginx, daemon on, under tfguard-run"
ngx 8501
bg ip netns exec "$SRV" "$RUN" -- nginx -p "$TFG_TMP/ngx" -c "$TFG_TMP/ngx/nginx.conf" -e stderr \
	2>"$TFG_TMP/err"
RUNPID=$BG_PID
wait_port "$SRV" 8501 10000
master=$(cat "$TFG_TMP/ngx/nginx.pid")
check "nginx daemonised: its master is not tfguard-run's direct child (ppid)" \
	eval "test \"\$(awk '{print \$4}' /proc/$master/stat)\" = $RUNPID -o -n \"\$(pgrep -P $RUNPID -x nginx)\""
check "nginx: 8501 on loopback only" on_loopback_only "$SRV" 8501
check "tfguard-run stays while the daemon runs" kill -0 "$RUNPID"
ngx 8501 8500
in_ns "$SRV" nginx -p "$TFG_TMP/ngx" -c "$TFG_TMP/ngx/nginx.conf" -e stderr -s reload
poll 10000 listening "$SRV" 8500 || { cat "$TFG_TMP/err"; fail "the reload did not add 8500"; }
cat "$TFG_TMP/err"
say "listeners on 8500: $(listeners "$SRV" 8500 | tr '\n' ' ')"
check "reload: 8500 on loopback only" on_loopback_only "$SRV" 8500
check "reload: 8500 refused from the client" refused "$CLI" "$SRV4" 8500
check "reload: 8500 answers in the server namespace" in_ns "$SRV" curl -sf -m 2 -o /dev/null http://127.0.0.1:8500/
check "the shim names nginx by its comm, not its setproctitle() title" \
	grep -q '^tfguard-preload: nginx\[[0-9]*\]: bind 0.0.0.0:8500 -> 127.0.0.1:8500' "$TFG_TMP/err"
check_not "no ENOSYS during the reload" grep -q 'Function not implemented' "$TFG_TMP/err"
kill -TERM "$(cat "$TFG_TMP/ngx/nginx.pid")"
poll 10000 gone "$RUNPID" || fail "tfguard-run did not exit after nginx stopped"
wait "$RUNPID"
rc=$?
check "tfguard-run exits with nginx's foreground status 0 (got $rc)" test "$rc" = 0
pass
