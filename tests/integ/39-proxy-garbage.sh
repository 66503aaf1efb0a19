#!/bin/bash
# tfguard-proxy, robustness: 600 connections send mutated requests (random bytes flipped,
# inserted, deleted, cut at random points, sent in random fragments, peers vanishing
# mid-request). The proxy must answer or close each one, stay up, keep serving a
# normal client, and forward only requests that are still valid and authorised.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss
px_init
px_stub
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL="bob = fraud"
px_conf 'auth_fail_limit = 100000' 'header_timeout = 2s' 'body_timeout = 2s'
px_start
check "normal request" expect_code 200 -u bob:bob-pw -d '{"instances":[1]}' "$(PURL /v1/models/fraud:predict)"

"$PY" - "$PX_PORT" "$TFG_TMP/cert.pem" <<'PYEOF' || fail "garbage run"
import base64, random, socket, ssl, sys, time
port, ca = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(int(time.time()))
auth = b"Authorization: Basic " + base64.b64encode(b"bob:bob-pw") + b"\r\n"
seeds = [
    b"POST /v1/models/fraud:predict HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 17\r\n\r\n{\"instances\":[1]}",
    b"POST /v1/models/fraud:predict HTTP/1.1\r\nHost: x\r\n" + auth + b"Transfer-Encoding: chunked\r\n\r\n11\r\n{\"instances\":[1]}\r\n0\r\n\r\n",
    b"GET /v1/models/fraud/metadata HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
    b"GET /v1/models/secret HTTP/1.1\r\nHost: x\r\n" + auth + b"Connection: close\r\n\r\n",
]
def mutate(b):
    b = bytearray(b)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.random()
        i = rnd.randrange(len(b)) if b else 0
        if op < 0.3 and b:
            b[i] = rnd.randrange(256)
        elif op < 0.5:
            b[i:i] = bytes(rnd.choice([b"\r\n", b"\n", b"\r", b"\x00", b" ", b":", b"0", b"\t", b"%", b"\xff"]))
        elif op < 0.7 and b:
            del b[i:i + rnd.randint(1, 8)]
        elif op < 0.85:
            b[i:i] = b * rnd.randint(1, 2)   # duplication: pipelines, repeated headers
        else:
            b = b[:i]                      # cut short
    return bytes(b)
ctx = ssl.create_default_context(cafile=ca)
import concurrent.futures, threading
lock = threading.Lock()
counts = {"answered": 0, "closed": 0, "errors": 0}
def one(n, data, frags, vanish):
    kind = "errors"
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        t = ctx.wrap_socket(s, server_hostname="localhost")
        t.settimeout(3)
        pos = 0
        for k in frags:
            t.sendall(data[pos:pos + k])
            pos += k
        t.sendall(data[pos:])
        if vanish:
            t.close()          # the peer vanishes right after sending
            kind = "closed"
        else:
            try:
                out = t.recv(4096)
            except socket.timeout:
                out = b""
            kind = "answered" if out.startswith(b"HTTP/1.1 ") else "errors"
            t.close()
    except (OSError, ssl.SSLError):
        pass
    with lock:
        counts[kind] += 1
jobs = []
for n in range(600):
    data = mutate(rnd.choice(seeds)) if n % 10 else rnd.randbytes(rnd.randint(1, 3000))
    frags = [rnd.randint(1, 400) for _ in range(len(data) // 200)]
    jobs.append((n, data, frags, n % 7 == 0))
with concurrent.futures.ThreadPoolExecutor(max_workers=40) as ex:
    for j in jobs:
        ex.submit(one, *j)
answered, closed, errors = counts["answered"], counts["closed"], counts["errors"]
print("# answered %d, dropped by us %d, closed/errored by the proxy %d" % (answered, closed, errors))
sys.exit(0 if answered > 100 else 1)
PYEOF
check "proxy still running" kill -0 "$PX_PID"
check "normal request still served" expect_code 200 -u bob:bob-pw -d '{"instances":[1]}' "$(PURL /v1/models/fraud:predict)"
check "only the fraud model ever reached the stand-in" "$PY" -c '
import json, sys, urllib.parse
bad = [r["path"] for r in map(json.loads, open(sys.argv[1])) if not urllib.parse.unquote(r["path"]).lower().startswith("/v1/models/fraud")]
print("# unexpected:", bad[:5]) if bad else None
sys.exit(1 if bad else 0)' "$REC"
check "nothing reached the stand-in without our X-Forwarded-User" "$PY" -c '
import json, sys
bad = [r for r in map(json.loads, open(sys.argv[1])) if [v for h, v in r["headers"] if h.lower() == "x-forwarded-user"] != ["bob"]]
sys.exit(1 if bad else 0)' "$REC"
check "no Authorization ever reached the stand-in" bash -c "! grep -qi authorization '$REC'"
say "forwarded: $(rec_count) requests"
pass
