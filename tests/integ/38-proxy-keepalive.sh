#!/bin/bash
# tfguard-proxy, connection handling: client keep-alive (many requests, one TLS
# connection), pipelined requests answered in order, HTTP/1.0 clients, the keep-alive
# idle deadline, an IPv6 listener, plain_http mode (with its warning), the metrics and
# health endpoints, and the access log in combined format.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss
px_init
px_stub
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL="bob = *"
PX_PORT=$(free_port)
px_conf 'idle_timeout = 1s' 'access_log_format = combined'
ipv6=0
if "$PY" -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
	ipv6=1
	sed -i "s/^listen = .*/listen = 127.0.0.1:$PX_PORT, [::1]:$PX_PORT/" "$PX_CONF"
fi
px_start
AUTH="Authorization: Basic $(printf bob:bob-pw | base64)"

# keep-alive: 20 requests over one client connection (curl reuses it)
urls=()
for i in $(seq 1 20); do urls+=("$(PURL /v1/models/fraud)"); done
n=$(pcurl -u bob:bob-pw -w '%{num_connects} %{http_code}\n' -o /dev/null "${urls[@]}" | awk '{c+=$1; if ($2==200) ok++} END {print c, ok}')
check "20 requests, 200 each, over one connection ($n)" [ "$n" = "1 20" ]

# pipelining: three requests written at once, answered in order
printf 'GET /v1/models/fraud HTTP/1.1\r\nHost: x\r\n%s\r\n\r\nGET /v1/models/nosuch HTTP/1.1\r\nHost: x\r\n%s\r\n\r\nGET /v1/models/churn/versions/7 HTTP/1.1\r\nHost: x\r\n%s\r\nConnection: close\r\n\r\n' \
	"$AUTH" "$AUTH" "$AUTH" >"$TFG_TMP/pipe.req"
out=$(raw_tls "$TFG_TMP/pipe.req")
codes=$(grep -o '^HTTP/1.1 [0-9]*' <<<"$out" | awk '{printf "%s ", $2}')
check "pipelined answers in order ($codes)" [ "$codes" = "200 404 200 " ]
check "third answer is version 7 of churn" grep -q '"version": "7"' <<<"$out"
check "last answer closes (Connection: close)" grep -q '^Connection: close' <<<"$out"

# HTTP/1.0: answered, closed unless keep-alive asked for
printf 'GET /v1/models/fraud HTTP/1.0\r\n%s\r\n\r\n' "$AUTH" >"$TFG_TMP/h10.req"
out=$(raw_tls "$TFG_TMP/h10.req")
check "HTTP/1.0 request answered" grep -q '^HTTP/1.1 200' <<<"$out"
check "HTTP/1.0 without keep-alive: Connection: close" grep -q '^Connection: close' <<<"$out"

# idle deadline: a kept-alive connection is closed after idle_timeout (1 s)
# idle_close POKE MAX: one request, then (POKE = yes) after 0.5 s one raw byte that does not
# complete a TLS record; the proxy must close the idle connection within 0.8..MAX s
idle_close() {
	"$PY" - "$PX_PORT" "$TFG_TMP/cert.pem" "$AUTH" "$1" "$2" <<'PYEOF'
import os, socket, ssl, sys, time
port, ca, auth, poke, most = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "yes", float(sys.argv[5])
ctx = ssl.create_default_context(cafile=ca)
t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
t.sendall(b"GET /v1/models/fraud HTTP/1.1\r\nHost: x\r\n" + auth.encode() + b"\r\n\r\n")
t.settimeout(5)
buf = b""
while b"}\n" not in buf:
    buf += t.recv(65536)
t0 = time.time()
if poke:
    time.sleep(0.5)                  # past the 100 ms buffer release, before the 1 s deadline
    os.write(t.fileno(), b"\x17")    # one raw byte: the start of a record header, under TLS
try:
    d = t.recv(100)
except (ssl.SSLError, OSError):
    d = b""
dt = time.time() - t0
print("# idle connection%s closed after %.2f s" % (" with a partial record" if poke else "", dt))
sys.exit(0 if d == b"" and 0.8 <= dt <= most else 1)
PYEOF
}
idle_close no 3 || fail "idle timeout"
say "ok: idle keep-alive closed at idle_timeout"
# ... also when the client sends a byte that does not complete a TLS record meanwhile
# (before the fix, each such byte bought one more idle_timeout: closed after ~1.9 s)
idle_close yes 1.5 || fail "idle timeout with a partial TLS record"
say "ok: a partial TLS record does not extend idle_timeout"

if [ "$ipv6" = 1 ]; then
	check "IPv6 listener [::1]" bash -c "curl -s -o /dev/null -w '%{http_code}' --cacert '$TFG_TMP/cert.pem' --resolve 'localhost:$PX_PORT:::1' -u bob:bob-pw 'https://localhost:$PX_PORT/v1/models/fraud' | grep -q 200"
	check "X-Forwarded-For is the IPv6 peer" [ "$(rec_last '[v for h,v in r["headers"] if h=="X-Forwarded-For"]')" = "['::1']" ]
else
	say "no IPv6 on loopback: IPv6 listener not tested"
fi

# admin endpoint
check "/healthz" bash -c "curl -s http://127.0.0.1:$PX_ADMIN/healthz | grep -q ok"
m=$(curl -s "http://127.0.0.1:$PX_ADMIN/metrics")
check "requests by model and code" grep -q '^tfguard_proxy_requests_total{model="fraud",code="200"} [1-9]' <<<"$m"
check "latency histogram" grep -q '^tfguard_proxy_request_duration_seconds_bucket{le="+Inf"} [1-9]' <<<"$m"
check "open connections gauge" grep -q '^tfguard_proxy_connections_open ' <<<"$m"
check "admin: other paths 404" bash -c "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PX_ADMIN/x | grep -q 404"
check "combined access log line" grep -Eq '^127\.0\.0\.1 - bob \[[^]]+\] "GET /v1/models/fraud HTTP/1.1" 200 [0-9]+ "-" "curl/[^"]*" model="fraud" bytes_in=0 duration_us=[0-9]+$' "$PX_ACCESS"

# plain_http: opt-in, warned about, serves plain HTTP with X-Forwarded-Proto: http
kill "$PX_PID"
poll 5000 bash -c "! kill -0 $PX_PID 2>/dev/null" || fail "proxy did not stop"
PX_PORT=$(free_port)
PX_ADMIN=$(free_port)
: >"$PX_LOG"
px_conf 'plain_http = yes'
px_start
check "plain_http warning at start" grep -q 'plain_http = yes: listening WITHOUT TLS' "$PX_LOG"
check "plain HTTP served" bash -c "curl -s -o /dev/null -w '%{http_code}' -u bob:bob-pw http://127.0.0.1:$PX_PORT/v1/models/fraud | grep -q 200"
check "X-Forwarded-Proto: http" [ "$(rec_last '[v for h,v in r["headers"] if h=="X-Forwarded-Proto"]')" = "['http']" ]
pass
