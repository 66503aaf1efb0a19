# shellcheck shell=bash
# proxy_env.sh: shared set-up for the tfguard-proxy integration tests (tests/integ/3N-, 4N-).
# Source after lib.sh. Everything runs on loopback in the root namespace on ports
# picked free by the kernel; every process goes through lib.sh's bg (killed by the trap).
#
#   px_init                      cert + key (openssl req -x509), empty htpasswd, dirs
#   px_stub [ARGS]               starts the TF Serving stand-in; STUB_PORT, REC (record file)
#   px_conf [EXTRA [proxy] LINES] writes $PX_CONF ([acl] from $PX_ACL)
#   px_start                     starts the proxy, waits for its port; PX_PID, PX_PORT, PX_ADMIN
#   pcurl ARGS...                curl over TLS to the proxy (cert verified)
#   rec_count / rec_last FIELD   what the stand-in received

PX_BIN=$B/tfguard-proxy
STUB=$TOP/tests/helpers/tfserving_stub.py
[ -x "$PX_BIN" ] || fail "$PX_BIN not built (run make)"

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

px_init() {
	need_cmd curl openssl htpasswd
	chmod 0755 "$TFG_TMP"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 2 \
		-keyout "$TFG_TMP/key.pem" -out "$TFG_TMP/cert.pem" 2>/dev/null ||
		fail "openssl req -x509 failed"
	chmod 0600 "$TFG_TMP/key.pem"
	PX_HT=$TFG_TMP/htpasswd
	: >"$PX_HT"
	PX_ACL=${PX_ACL:-}
	PX_LOG=$TFG_TMP/proxy.log
	# like /var/log/tfguard: owned by the service user, so SIGUSR1 can create a new file
	mkdir -p "$TFG_TMP/logs"
	PX_ACCESS=$TFG_TMP/logs/access.log
	# The proxy drops to nobody: it must be able to re-read these on reload.
	PX_USER=nobody
	REC=$TFG_TMP/record.jsonl
	: >"$REC"
}

px_stub() {
	STUB_PORT=$(free_port)
	bg "$PY" "$STUB" --port "$STUB_PORT" --record "$REC" "$@"
	STUB_PID=$BG_PID
	poll 5000 listening_local "$STUB_PORT" || fail "stand-in did not start"
}

listening_local() { [ -n "$(ss -Hltn "sport = :$1")" ]; }

px_conf() {
	PX_PORT=${PX_PORT:-$(free_port)}
	PX_ADMIN=${PX_ADMIN:-$(free_port)}
	PX_CONF=$TFG_TMP/tfguard.conf
	{
		echo "[proxy]"
		echo "listen = 127.0.0.1:$PX_PORT"
		echo "tls_cert = $TFG_TMP/cert.pem"
		echo "tls_key = $TFG_TMP/key.pem"
		echo "backend_rest = 127.0.0.1:${STUB_PORT:-1}"
		echo "htpasswd = $PX_HT"
		echo "user = $PX_USER"
		echo "workers = 2"
		echo "max_connections = 2000"
		echo "admin_listen = 127.0.0.1:$PX_ADMIN"
		echo "access_log = $PX_ACCESS"
		local l
		for l in "$@"; do echo "$l"; done
		echo "[acl]"
		printf '%s\n' "$PX_ACL"
	} >"$PX_CONF"
	chown "$PX_USER" "$TFG_TMP/key.pem" "$PX_HT" "$TFG_TMP/logs" 2>/dev/null
}

# px_start: starts the proxy with stderr in $PX_LOG and waits for its port.
px_start() {
	bg bash -c 'exec "$0" -c "$1" 2>>"$2"' "$PX_BIN" "$PX_CONF" "$PX_LOG"
	PX_PID=$BG_PID
	poll 5000 listening_local "$PX_PORT" || { cat "$PX_LOG"; fail "proxy did not start"; }
}

# At the end of a passing test: stop the proxy with SIGTERM (a graceful exit, so that a
# sanitizer build runs its leak check) and fail on any sanitizer report in its log.
pass_hook() {
	[ -n "${PX_PID:-}" ] || return 0
	kill -TERM "$PX_PID" 2>/dev/null
	QUIET=1 poll 10000 bash -c "! kill -0 $PX_PID 2>/dev/null" || { say "proxy did not stop on SIGTERM"; return 1; }
	if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$PX_LOG"; then
		grep -E -A12 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$PX_LOG" | head -40
		say "sanitizer report in the proxy's log"
		return 1
	fi
	return 0
}

# When a test fails: the end of the proxy's log, and whether it is still running.
fail_hook() {
	[ -n "${PX_LOG:-}" ] && [ -f "$PX_LOG" ] || return 0
	printf '# proxy (pid %s) %s; last lines of its log:\n' "${PX_PID:-?}" \
		"$(kill -0 "${PX_PID:-0}" 2>/dev/null && echo running || echo 'NOT running')"
	tail -n 12 "$PX_LOG" | sed 's/^/#   /'
}

pcurl() {
	curl -s --max-time 20 --cacert "$TFG_TMP/cert.pem" --resolve "localhost:$PX_PORT:127.0.0.1" "$@"
}
PURL() { printf 'https://localhost:%s%s' "$PX_PORT" "$1"; }

# expect_code CODE CURL-ARGS...: status must be CODE; body in $TFG_TMP/body.
expect_code() {
	local want=$1 got
	shift
	got=$(pcurl -o "$TFG_TMP/body" -w '%{http_code}' "$@")
	[ "$got" = "$want" ] || { [ -n "${QUIET:-}" ] || say "expected $want, got $got: $* ; body: $(head -c 300 "$TFG_TMP/body")"; return 1; }
}

rec_count() { wc -l <"$REC"; }
# rec_field EXPR: a Python expression over the last record r (a dict).
rec_last() { tail -n 1 "$REC" | "$PY" -c "import json,sys; r=json.load(sys.stdin); print($1)"; }

# raw_tls PAYLOAD-FILE: sends the bytes over TLS, prints the answer (until close or 3 s).
raw_tls() {
	"$PY" - "$PX_PORT" "$TFG_TMP/cert.pem" "$1" <<'PYEOF'
import socket, ssl, sys, time
port, ca, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
data = open(path, "rb").read()
ctx = ssl.create_default_context(cafile=ca)
s = socket.create_connection(("127.0.0.1", port), timeout=5)
t = ctx.wrap_socket(s, server_hostname="localhost")
t.sendall(data)
out = b""
deadline = time.time() + 3
t.settimeout(0.5)
while time.time() < deadline:
    try:
        d = t.recv(65536)
    except socket.timeout:
        continue
    except (ssl.SSLError, ConnectionError, OSError):
        break
    if not d:
        break
    out += d
sys.stdout.write(out.decode("latin1"))
PYEOF
}
