# shellcheck shell=bash
# grpc_env.sh: gRPC additions to proxy_env.sh for the tests 5N-grpc-* (source after it).
#
#   gx_stub [ARGS]          starts the gRPC stand-in (h2c); GSTUB_PORT, GSTUB_PID, GREC
#   gx_conf [EXTRA LINES]   px_conf with backend_grpc pointing at the stand-in
#   gcall METHOD ARGS...    one call through the proxy over TLS; prints the JSON result
#   gdirect METHOD ARGS...  the same call straight to the stand-in (plaintext h2c)
#   gcode METHOD ARGS...    only the status name ("OK", "UNAUTHENTICATED"...)
#   grec_count / grec_last EXPR   what the stand-in received

GSTUB=$TOP/tests/helpers/grpc_stub.py
GCLIENT=$TOP/tests/helpers/grpc_client.py
"$PY" -c 'import grpc' 2>/dev/null || skip "needs python3-grpcio"

gx_stub() {
	GSTUB_PORT=${GSTUB_PORT:-$(free_port)}
	GREC=$TFG_TMP/grpc-record.jsonl
	touch "$GREC"
	bg "$PY" "$GSTUB" --port "$GSTUB_PORT" --record "$GREC" "$@"
	GSTUB_PID=$BG_PID
	poll 10000 listening_local "$GSTUB_PORT" || fail "gRPC stand-in did not start"
}

gx_conf() { px_conf "backend_grpc = 127.0.0.1:$GSTUB_PORT" "$@"; }
# gx_reload KEY=VALUE...: rewrite the config (as gx_conf) and SIGHUP the proxy, waiting
# until it logged the reload
gx_reload() {
	local r0
	r0=$(grep -c reloaded "$PX_LOG")
	gx_conf "$@"
	kill -HUP "$PX_PID"
	poll 5000 bash -c "[ \$(grep -c reloaded '$PX_LOG') -gt $r0 ]" || fail "no reload"
}
# px_limited LIMIT: the proxy's tfguard_proxy_limited_total{limit="LIMIT"}
px_limited() { curl -s "http://127.0.0.1:$PX_ADMIN/metrics" | sed -n "s/^tfguard_proxy_limited_total{limit=\"$1\"} //p"; }

gcall() { "$PY" "$GCLIENT" "127.0.0.1:$PX_PORT" "$@" --ca "$TFG_TMP/cert.pem"; }
gdirect() { "$PY" "$GCLIENT" "127.0.0.1:$GSTUB_PORT" "$@"; }
gcode() { gcall "$@" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["code"])'; }
# expect_grpc CODE METHOD ARGS...: the call through the proxy ends with CODE.
expect_grpc() {
	local want=$1 got
	shift
	got=$(gcall "$@")
	case "$got" in
	*"\"code\": \"$want\""*) return 0 ;;
	esac
	[ -n "${QUIET:-}" ] || say "expected $want: $*: got $got"
	return 1
}
grec_count() { wc -l <"$GREC"; }
grec_last() { tail -n 1 "$GREC" | "$PY" -c "import json,sys; r=json.load(sys.stdin); print($1)"; }
