#!/usr/bin/env python3
"""limit_load: paced HTTPS load for the [limits] tests (tests/integ/4N-limits*.sh).

Sends --rate requests per second for --duration seconds to https://localhost:PORT/PATH,
spread round-robin over --conns keep-alive connections (each its own thread, so the
kernel's SO_REUSEPORT hash spreads them over the proxy's workers), with Basic
credentials --user. Prints one JSON object: counts by status, the Retry-After values of
the 429s, whether every 429 body was TF Serving-shaped, and the time from the first
request sent to the last one (what the token bucket saw).

With --concurrent N it instead sends N requests at once, one per connection, and
prints each status with the time it took (the in-flight tests).
"""
import argparse
import base64
import http.client
import json
import socket
import ssl
import sys
import threading
import time


def connect(a, ctx):
    return http.client.HTTPSConnection("localhost", a.port, context=ctx, timeout=a.timeout)


def one(conn, a, hdrs):
    conn.request("GET", a.path, headers=hdrs)
    r = conn.getresponse()
    body = r.read()
    return r.status, r.getheader("Retry-After"), body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--user", required=True, help="name:password")
    ap.add_argument("--path", default="/v1/models/fraud")
    ap.add_argument("--rate", type=float, default=10)
    ap.add_argument("--duration", type=float, default=3)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--concurrent", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=20)
    a = ap.parse_args()
    ctx = ssl.create_default_context(cafile=a.ca)
    hdrs = {"Authorization": "Basic " + base64.b64encode(a.user.encode()).decode()}
    lock = threading.Lock()
    res = {"status": {}, "retry_after": [], "bad_429_body": 0, "errors": 0, "results": []}

    if a.concurrent:
        conns = [connect(a, ctx) for _ in range(a.concurrent)]
        for c in conns:
            c.connect()  # TLS first, so the requests below leave together
        go = threading.Barrier(a.concurrent)

        def conc(c):
            go.wait()
            t = time.monotonic()
            try:
                st, ra, body = one(c, a, hdrs)
            except (OSError, http.client.HTTPException):
                st, ra = 0, None
            with lock:
                res["results"].append({"status": st, "retry_after": ra,
                                       "secs": round(time.monotonic() - t, 3)})

        ts = [threading.Thread(target=conc, args=(c,)) for c in conns]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        res["results"].sort(key=lambda r: r["secs"])
        print(json.dumps(res))
        return 0

    total = int(a.rate * a.duration)
    conns = [connect(a, ctx) for _ in range(a.conns)]
    for c in conns:
        c.connect()
    t0 = time.monotonic() + 0.2
    sent = []

    def worker(k):
        c = conns[k]
        for i in range(k, total, a.conns):
            delay = t0 + i / a.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ts = time.monotonic()
            try:
                st, ra, body = one(c, a, hdrs)
            except (OSError, http.client.HTTPException):
                with lock:
                    res["errors"] += 1
                c.close()
                c = connect(a, ctx)
                continue
            with lock:
                sent.append(ts)
                res["status"][str(st)] = res["status"].get(str(st), 0) + 1
                if st == 429:
                    res["retry_after"].append(ra)
                    try:
                        if "error" not in json.loads(body):
                            res["bad_429_body"] += 1
                    except ValueError:
                        res["bad_429_body"] += 1

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(a.conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    res["span"] = round(max(sent) - min(sent), 3) if sent else 0
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
