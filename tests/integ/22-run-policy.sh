#!/bin/bash
# tfguard-run policy edges: a specific public address on a protected port gets
# EACCES (and says so), unprotected ports are untouched and reachable,
# --allow-bind lets exactly its endpoint through, and ports below 1024 are
# bound only for a process that could bind them itself.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/run-lib.sh"
run_need
need_cmd setpriv
run_topology

# run_bt EXPECT_RC EXPECT_OUT DESCRIPTION RUN-ARGS... -- BINDTEST-ARGS...
run_bt() {
	local want_rc=$1 want_out=$2 what=$3 rc
	shift 3
	in_ns "$SRV" "$RUN" "$@" >"$TFG_TMP/out" 2>"$TFG_TMP/err"
	rc=$?
	cat "$TFG_TMP/out" "$TFG_TMP/err"
	check "$what: exit $want_rc (got $rc)" test "$rc" = "$want_rc"
	check "$what: prints '$want_out'" grep -qx -- "$want_out" "$TFG_TMP/out"
}

for bt in bindtest bindtest-static; do
	run_bt 13 "bind: Permission denied" "$bt $SRV4:8501" -- "$H/$bt" "$SRV4" 8501
	check "$bt $SRV4:8501: refusal logged with the reason" \
		grep -q "bind $SRV4:8501 refused (protected port on a non-loopback address, EACCES)" "$TFG_TMP/err"
	run_bt 13 "bind: Permission denied" "$bt [$SRV6]:8500" -- "$H/$bt" "$SRV6" 8500
	run_bt 13 "bind: Permission denied" "$bt [::ffff:$SRV4]:8501" -- "$H/$bt" -6 0 "::ffff:$SRV4" 8501
done
# control: the same bind without tfguard-run succeeds
in_ns "$SRV" "$H/bindtest" "$SRV4" 8501 >"$TFG_TMP/out" 2>&1
check "control: $SRV4:8501 binds without tfguard-run" grep -qx "bound $SRV4:8501" "$TFG_TMP/out"

say "-- unprotected port 9000 on 0.0.0.0 is untouched"
bg ip netns exec "$SRV" "$RUN" -- "$H/bindtest" -s 0.0.0.0 9000
wait_port "$SRV" 9000 5000
check "9000 listens on 0.0.0.0" listening "$SRV" 9000 0.0.0.0
check "9000 reachable from the client" reachable "$CLI" "$SRV4" 9000
stop "$BG_PID" 9000

say "-- --allow-bind 0.0.0.0:8443"
bg ip netns exec "$SRV" "$RUN" --allow-bind 0.0.0.0:8443 -- "$H/bindtest-static" -s 0.0.0.0 8443
wait_port "$SRV" 8443 5000
check "8443 listens on 0.0.0.0" listening "$SRV" 8443 0.0.0.0
check "8443 reachable from the client" reachable "$CLI" "$SRV4" 8443
stop "$BG_PID" 8443
for bt in bindtest bindtest-static; do
	run_bt 13 "bind: Permission denied" "--allow-bind 0.0.0.0:8443, $bt 0.0.0.0:9000" \
		--allow-bind 0.0.0.0:8443 -- "$H/$bt" 0.0.0.0 9000
	check "refusal names --allow-bind" grep -q "not listed in --allow-bind" "$TFG_TMP/err"
	run_bt 13 "listen: Permission denied" "--allow-bind 0.0.0.0:8443, $bt listen() without bind" \
		--allow-bind 0.0.0.0:8443 -- "$H/$bt" -l 0.0.0.0 0
	run_bt 0 "bound 127.0.0.1:9000" "--allow-bind 0.0.0.0:8443, $bt 127.0.0.1:9000" \
		--allow-bind 0.0.0.0:8443 -- "$H/$bt" 127.0.0.1 9000
	run_bt 0 "bound 127.0.0.1:8501" "--allow-bind 0.0.0.0:8443, $bt 0.0.0.0:8501 still rewritten" \
		--allow-bind 0.0.0.0:8443 -- "$H/$bt" 0.0.0.0 8501
done
run_bt 13 "bind: Permission denied" "--allow-bind 0.0.0.0:8443, raw syscall 0.0.0.0:9000" \
	--allow-bind 0.0.0.0:8443 -- "$H/bindtest" -r 0.0.0.0 9000
in_ns "$SRV" "$RUN" --allow-bind 0.0.0.0:8501 -- true 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/err"
check "--allow-bind on a protected port is a usage error (2, got $rc)" test "$rc" = 2
check "... and says the port is protected" grep -q "port 8501 is protected" "$TFG_TMP/err"

say "-- nginx as a proxy: --allow-bind 0.0.0.0:8443"
need_cmd nginx curl
nginx_conf "$TFG_TMP/ngx" 8443 8501
bg ip netns exec "$SRV" "$RUN" --allow-bind 0.0.0.0:8443 -- \
	nginx -p "$TFG_TMP/ngx" -c "$TFG_TMP/ngx/nginx.conf" -e stderr
wait_port "$SRV" 8443 10000
wait_port "$SRV" 8501 10000
check "nginx: 8443 listens on 0.0.0.0" listening "$SRV" 8443 0.0.0.0
check "nginx: 8443 answers the client" in_ns "$CLI" curl -sf -m 2 -o /dev/null "http://$SRV4:8443/"
check "nginx: 8501 on loopback only" on_loopback_only "$SRV" 8501
check "nginx: 8501 refused from the client" refused "$CLI" "$SRV4" 8501
stop "$BG_PID" 8443
nginx_conf "$TFG_TMP/ngx" 8443 9000
in_ns "$SRV" timeout 10 "$RUN" --allow-bind 0.0.0.0:8443 -- \
	nginx -p "$TFG_TMP/ngx" -c "$TFG_TMP/ngx/nginx.conf" -e stderr 2>"$TFG_TMP/err"
rc=$?
grep -E 'tfguard|9000' "$TFG_TMP/err" | head -5
check "nginx with a non-allowed public listen (9000) fails to start (rc $rc)" test "$rc" = 1
check "... nginx reports the refused bind" grep -q '0.0.0.0:9000 failed (13: Permission denied)' "$TFG_TMP/err"
check "... and the refusal was logged with its reason" grep -q 'bind 0.0.0.0:9000 refused (non-loopback address not listed' "$TFG_TMP/err"

say "-- privileged ports"
run_bt 0 "bound 0.0.0.0:80" "root binds 0.0.0.0:80 (has CAP_NET_BIND_SERVICE)" -- "$H/bindtest-static" 0.0.0.0 80
# nobody could not bind port 80 itself: the (root) supervisor must not do it for it
run_bt 13 "bind: Permission denied" "nobody, static, 0.0.0.0:80" -- \
	setpriv --reuid=65534 --regid=65534 --clear-groups "$H/bindtest-static" 0.0.0.0 80
check "refusal explains the privileged port" grep -q "lacks CAP_NET_BIND_SERVICE" "$TFG_TMP/err"
run_bt 0 "bound 0.0.0.0:8080" "nobody, static, 0.0.0.0:8080 works" -- \
	setpriv --reuid=65534 --regid=65534 --clear-groups "$H/bindtest-static" 0.0.0.0 8080
run_bt 0 "bound 127.0.0.1:8501" "nobody, static, 0.0.0.0:8501 rewritten" -- \
	setpriv --reuid=65534 --regid=65534 --clear-groups "$H/bindtest-static" 0.0.0.0 8501

say "-- privileged ports in a network namespace the program made itself"
# ip_unprivileged_port_start is per network namespace, and the kernel checks a
# bind against the socket's own: root unshares a namespace, raises it to 2000
# there and becomes nobody; 1500 is then privileged for it, 2500 is not.
netns_bind() {
	in_ns "$SRV" "${@:2}" unshare -n sh -c "sysctl -qw net.ipv4.ip_unprivileged_port_start=2000 &&
		exec setpriv --reuid=65534 --regid=65534 --clear-groups '$H/bindtest-static' 0.0.0.0 $1"
}
out=$(netns_bind 1500 2>&1)
check "control: nobody cannot bind 1500 in its namespace without tfguard-run ($out)" \
	grep -q "Permission denied" <<<"$out"
out=$(netns_bind 1500 "$RUN" -- 2>"$TFG_TMP/err")
check "under tfguard-run: still refused (the supervisor reads the socket's namespace) ($out)" \
	grep -q "Permission denied" <<<"$out"
check "... and says why" grep -q "lacks CAP_NET_BIND_SERVICE" "$TFG_TMP/err"
out=$(netns_bind 2500 "$RUN" -- 2>/dev/null)
check "under tfguard-run: 2500 is above that namespace's start and binds ($out)" \
	grep -qx "bound 0.0.0.0:2500" <<<"$out"

say "-- tfguard-run itself running as nobody (no CAP_NET_ADMIN for SIOCGSKNS)"
nobody_run() {
	in_ns "$SRV" setpriv --reuid=65534 --regid=65534 --clear-groups "$RUN" -c /dev/null -- \
		"$H/bindtest-static" 0.0.0.0 "$1" 2>"$TFG_TMP/err"
}
out=$(nobody_run 8080)
check "nobody's tfguard-run: 0.0.0.0:8080 binds ($out)" test "$out" = "bound 0.0.0.0:8080"
out=$(nobody_run 8501)
check "nobody's tfguard-run: 0.0.0.0:8501 lands on loopback ($out)" test "$out" = "bound 127.0.0.1:8501"
out=$(nobody_run 80)
check "nobody's tfguard-run: port 80 refused ($out)" grep -q "Permission denied" <<<"$out"

say "-- root without CAP_NET_ADMIN, the program holding a socket of another namespace"
# tfguard-run in SRV (start 0 there) cannot ask the socket for its namespace; the socket
# comes from CLI (start 1024): port 80 must not be bound for nobody.
in_ns "$SRV" sysctl -qw net.ipv4.ip_unprivileged_port_start=0
cat >"$TFG_TMP/xns.py" <<'PYEOF'
import os, socket, sys
s = socket.socket()
os.set_inheritable(s.fileno(), True)
os.dup2(s.fileno(), 3)
os.execvp(sys.argv[1], sys.argv[1:])
PYEOF
bind3='import socket; s = socket.socket(fileno=3)
try:
    s.bind(("0.0.0.0", 80)); print("bound", s.getsockname()[1])
except OSError as e: print("refused", e.errno)'
xns() {
	in_ns "$CLI" "$PY" "$TFG_TMP/xns.py" nsenter --net="/run/netns/$SRV" "$@" \
		setpriv --reuid=65534 --regid=65534 --clear-groups "$PY" -c "$bind3"
}
out=$(xns 2>&1)
check "control: nobody cannot bind port 80 on the other namespace's socket ($out)" grep -q "^refused" <<<"$out"
out=$(xns setpriv --inh-caps=-net_admin --bounding-set=-net_admin "$RUN" -c /dev/null -- 2>/dev/null)
check "tfguard-run without CAP_NET_ADMIN: still refused ($out)" grep -q "^refused" <<<"$out"
in_ns "$SRV" sysctl -qw net.ipv4.ip_unprivileged_port_start=1024

say "-- a port the kernel picks (port-0 bind, listen autobind) that is protected"
# The server namespace is this test's own: narrowing its ephemeral range to the
# protected port makes the kernel hand out exactly 8501 (v4 and v6).
in_ns "$SRV" sysctl -qw net.ipv4.ip_local_port_range="8501 8501"
# layer_pre LAYER: pre=(how to run a program under both layers, the supervisor alone, the shim alone)
layer_pre() {
	case $1 in
	both) pre=("$RUN" --) ;;
	supervisor) pre=("$RUN" -- env -u LD_PRELOAD) ;;
	shim) pre=("$RUN" --no-seccomp --) ;;
	esac
}
cat >"$TFG_TMP/eph.py" <<'PYEOF'
import errno, socket, sys
fam = socket.AF_INET6 if sys.argv[2] == "6" else socket.AF_INET
s = socket.socket(fam)
try:
    if sys.argv[1] in ("noport", "noport-lo"):
        # IP_BIND_ADDRESS_NO_PORT: a bind without a port, listen() picks it
        s.setsockopt(socket.SOL_IP, 24, 1)
    if sys.argv[1] == "bind0":
        s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
    if sys.argv[1] == "stale":
        try:
            s.connect(("::1" if fam == socket.AF_INET6 else "127.0.0.1", 1))
        except ConnectionRefusedError:
            pass
    if sys.argv[1] == "noport-lo":
        s.bind(("::1" if fam == socket.AF_INET6 else "127.0.0.1", 0))
    s.listen()
    print("listening", s.getsockname()[0], s.getsockname()[1])
except OSError as e:
    print("refused", errno.errorcode.get(e.errno, e.errno))
PYEOF
for how in listen bind0 noport; do
	for v in 4 6; do
		out=$(in_ns "$SRV" "$PY" "$TFG_TMP/eph.py" $how $v 2>&1)
		check "control ($how, IPv$v): without tfguard-run the kernel picks the protected port ($out)" \
			grep -Eq "^listening (0.0.0.0|::) 8501$" <<<"$out"
		for layer in both supervisor shim; do
			layer_pre $layer
			out=$(in_ns "$SRV" "${pre[@]}" "$PY" "$TFG_TMP/eph.py" $how $v 2>"$TFG_TMP/err")
			check "$how, IPv$v, $layer: listen on the kernel-picked protected port refused ($out)" \
				test "$out" = "refused EACCES"
			check "... and logged with the reason" \
				grep -Eq "ip_local_port_range|IP_BIND_ADDRESS_NO_PORT" "$TFG_TMP/err"
		done
	done
done
# a refused connect() gives the socket's port back while getsockname() still shows it;
# listen() then autobinds a fresh one: the range 8499-8500 hands out 8499 to connect()
# and then the protected 8500 to listen()
in_ns "$SRV" sysctl -qw net.ipv4.ip_local_port_range="8499 8500"
for v in 4 6; do
	out=$(in_ns "$SRV" "$PY" "$TFG_TMP/eph.py" stale $v 2>&1)
	check "control (stale, IPv$v): without tfguard-run, listen() lands on 8500 ($out)" \
		grep -Eq "^listening (0.0.0.0|::) 8500$" <<<"$out"
	for layer in both supervisor shim; do
		layer_pre $layer
		out=$(in_ns "$SRV" "${pre[@]}" "$PY" "$TFG_TMP/eph.py" stale $v 2>/dev/null)
		check "stale, IPv$v, $layer: never listens on the protected port ($out)" \
			grep -Evq "^listening .* 8500$" <<<"$out"
	done
done
# the same under --allow-bind with the stale port allow-listed: refused before listen()
out=$(in_ns "$SRV" "$RUN" --allow-bind 0.0.0.0:8499 -- "$PY" "$TFG_TMP/eph.py" stale 4 2>/dev/null)
check "stale, --allow-bind 0.0.0.0:8499: never listens on the protected port ($out)" \
	grep -Evq "^listening .* 8500$" <<<"$out"
in_ns "$SRV" sysctl -qw net.ipv4.ip_local_port_range="8501 8501"
for v in 4 6; do
	out=$(in_ns "$SRV" "$RUN" -- "$PY" "$TFG_TMP/eph.py" noport-lo $v 2>/dev/null)
	check "IP_BIND_ADDRESS_NO_PORT on loopback (IPv$v): listens, whatever port ($out)" \
		grep -Eq "^listening (127.0.0.1|::1) 8501$" <<<"$out"
done
in_ns "$SRV" sysctl -qw net.ipv4.ip_local_port_range="32768 60999"
out=$(in_ns "$SRV" "$RUN" -- "$PY" "$TFG_TMP/eph.py" listen 4 2>/dev/null)
check "an ordinary ephemeral port still listens ($out)" grep -Eq "^listening 0.0.0.0 [0-9]+$" <<<"$out"
pass
