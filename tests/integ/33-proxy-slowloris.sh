#!/bin/bash
# tfguard-proxy, deadlines and the connection limit: many clients dribbling a request
# head (slowloris) and many that never finish the TLS handshake are closed at their
# deadlines while a normal client is still served; past max_connections new
# connections are refused cleanly (closed at once, counted) and the proxy keeps serving.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss
px_init
px_stub
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL="bob = *"
px_conf 'header_timeout = 2s' 'handshake_timeout = 2s' 'idle_timeout = 3s' 'body_timeout = 2s'
sed -i 's/^max_connections = .*/max_connections = 400/' "$PX_CONF"
px_start
check "normal request before the attack" expect_code 200 -u bob:bob-pw "$(PURL /v1/models/fraud)"

# 150 TLS clients dribbling a head (one byte every 300 ms) + 100 TCP clients silent
# before the handshake; a normal client is served meanwhile; all attackers must be
# closed within [deadline - 0.5 s, deadline + 2 s].
"$PY" - "$PX_PORT" "$TFG_TMP/cert.pem" "$TFG_TMP" <<'PYEOF' &
import select, socket, ssl, sys, time
port, ca, tmp = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
slow, silent = [], []
for i in range(150):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    t = ctx.wrap_socket(s, server_hostname="localhost")
    t.setblocking(False)
    slow.append([t, time.time(), None])
for i in range(100):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    silent.append([s, time.time(), None])
open(tmp + "/attack.started", "w").close()
head = b"GET /v1/models/fraud HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 10000
pos = 0
deadline = time.time() + 10
while time.time() < deadline and any(c[2] is None for c in slow + silent):
    for c in slow:
        if c[2] is not None:
            continue
        try:
            c[0].send(head[pos:pos + 1])
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            pass
        except (OSError, ssl.SSLError):
            c[2] = time.time()
    pos += 1
    socks = [c[0] for c in slow + silent if c[2] is None]
    r, _, _ = select.select(socks, [], [], 0.3)
    for c in slow + silent:
        if c[2] is None and c[0] in r:
            try:
                d = c[0].recv(100)
                if not d:
                    c[2] = time.time()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                pass
            except (OSError, ssl.SSLError):
                c[2] = time.time()
def stats(cs):
    d = [c[2] - c[1] for c in cs if c[2] is not None]
    return len(d), min(d) if d else -1, max(d) if d else -1
with open(tmp + "/attack.out", "w") as f:
    f.write("slow %d %.2f %.2f\n" % stats(slow))
    f.write("silent %d %.2f %.2f\n" % stats(silent))
PYEOF
apid=$!
poll 15000 test -e "$TFG_TMP/attack.started" || fail "attack did not start"
t0=$(date +%s%N)
check "a normal client is served during the attack" expect_code 200 -u bob:bob-pw "$(PURL /v1/models/fraud)"
say "served in $((($(date +%s%N) - t0) / 1000000)) ms"
wait "$apid"
cat "$TFG_TMP/attack.out"
read -r _ n lo hi < <(grep '^slow' "$TFG_TMP/attack.out")
check "all 150 dribbling clients closed" [ "$n" = 150 ]
check "closed at the 2 s head deadline ($lo..$hi s)" "$PY" -c "import sys; sys.exit(not (1.5 <= $lo and $hi <= 4.0))"
read -r _ n lo hi < <(grep '^silent' "$TFG_TMP/attack.out")
check "all 100 silent clients closed" [ "$n" = 100 ]
check "closed at the 2 s handshake deadline ($lo..$hi s)" "$PY" -c "import sys; sys.exit(not (1.5 <= $lo and $hi <= 4.0))"
check "proxy still serves" expect_code 200 -u bob:bob-pw "$(PURL /v1/models/fraud)"

# a body that stalls half-way: 408 at body_timeout, connection closed, nothing forwarded whole
n=$(rec_count)
out=$("$PY" - "$PX_PORT" "$TFG_TMP/cert.pem" <<'PYEOF'
import base64, socket, ssl, sys, time
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
t.sendall(b"POST /v1/models/fraud:predict HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " +
          base64.b64encode(b"bob:bob-pw") + b"\r\nContent-Length: 100\r\n\r\n{\"instan")
t0 = time.time()
t.settimeout(10)
buf = b""
while True:
    try:
        d = t.recv(4096)
    except (OSError, ssl.SSLError):
        break
    if not d:
        break
    buf += d
print("%s %.1f" % (buf.split(b" ")[1].decode() if buf else "-", time.time() - t0))
PYEOF
)
say "stalled body: status and seconds to close: $out"
check "stalled body → 408" [ "${out% *}" = 408 ]
check "... closed at the 2 s body deadline" "$PY" -c "import sys; sys.exit(not (1.5 <= ${out#* } <= 4.5))"
check "... the partial body was never forwarded as a request" [ "$(rec_count)" = "$n" ]

# connection limit: hold 400 idle connections (for less than the 2 s handshake deadline);
# the 401st is closed at once and counted
"$PY" - "$PX_PORT" "$TFG_TMP" <<'PYEOF' &
import socket, sys, time
port, tmp = int(sys.argv[1]), sys.argv[2]
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(400)]
open(tmp + "/held", "w").close()
time.sleep(1.5)
PYEOF
hpid=$!
poll 10000 test -e "$TFG_TMP/held" || fail "could not hold connections"
# the 400 are accepted asynchronously: wait until the proxy counts them
poll 5000 bash -c "curl -s http://127.0.0.1:$PX_ADMIN/metrics | grep -Eq '^tfguard_proxy_connections_open 4[0-9][0-9]'" ||
	say "open: $(curl -s "http://127.0.0.1:$PX_ADMIN/metrics" | grep '^tfguard_proxy_connections_open')"
out=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TFG_TMP/cert.pem" \
	--resolve "localhost:$PX_PORT:127.0.0.1" -u bob:bob-pw "$(PURL /v1/models/fraud)")
check "past max_connections: refused at once (curl code $out)" [ "$out" = 000 ]
check "refusal counted" bash -c "curl -s http://127.0.0.1:$PX_ADMIN/metrics | grep -Eq '^tfguard_proxy_connections_refused_total [1-9]'"
check "refusal logged" grep -q "max_connections (400) reached" "$PX_LOG"
wait "$hpid"
poll 5000 expect_code 200 -u bob:bob-pw "$(PURL /v1/models/fraud)" || fail "not serving after the limit cleared"
say "ok: serves again once connections close"
check "proxy process alive" kill -0 "$PX_PID"

# out of file descriptors (open-files limit 64): accepting pauses instead of spinning,
# and resumes once descriptors are free again
kill "$PX_PID"
poll 5000 bash -c "! kill -0 $PX_PID 2>/dev/null" || fail "proxy did not stop"
PX_PORT=$(free_port)
PX_ADMIN=$(free_port)
px_conf 'handshake_timeout = 30s'
bg bash -c 'ulimit -n 64 && exec "$0" -c "$1" 2>>"$2"' "$PX_BIN" "$PX_CONF" "$PX_LOG"
PX_PID=$BG_PID
poll 5000 listening_local "$PX_PORT" || fail "proxy (64 fds) did not start"
"$PY" - "$PX_PORT" "$TFG_TMP" <<'PYEOF2' &
import socket, sys, time
port, tmp = int(sys.argv[1]), sys.argv[2]
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(120)]
open(tmp + "/fds-held", "w").close()
time.sleep(2.5)
PYEOF2
hpid=$!
poll 10000 test -e "$TFG_TMP/fds-held" || fail "could not open the connections"
cpu() { awk '{print $14 + $15}' "/proc/$PX_PID/stat"; }
c0=$(cpu)
sleep 1
c1=$(cpu)
check "out of descriptors: the loop does not spin ($((c1 - c0)) ticks in 1 s)" [ $((c1 - c0)) -lt 30 ]
check "EMFILE logged" grep -q "accept: Too many open files" "$PX_LOG"
wait "$hpid"
QUIET=1 poll 8000 expect_code 200 -u bob:bob-pw "$(PURL /v1/models/fraud)" || fail "not serving after descriptors were freed"
say "ok: serving again once descriptors were free"
pass
