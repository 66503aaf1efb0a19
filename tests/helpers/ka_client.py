#!/usr/bin/python3
"""ka_client.py PORT CA CERT KEY PATH GOFILE: one keep-alive TLS connection with a client
certificate, for the mTLS tests (tests/integ/44-).

Sends GET PATH and prints "1 STATUS"; waits (at most 60 s) until GOFILE exists; sends the
same request on the same connection and prints "2 STATUS CONNECTION-HEADER", then "closed"
when the proxy closed the connection after that answer, or "open" when it kept it (waited
for 3 s). Connection errors print "error: ..." and exit 1. Output is flushed per line."""
import os
import socket
import ssl
import sys
import time

port, ca, cert, key, path, go = int(sys.argv[1]), *sys.argv[2:7]


def out(line):
    print(line, flush=True)


def answer(t, buf):
    """Reads one response; returns (status, connection header, leftover bytes)."""
    while b"\r\n\r\n" not in buf:
        d = t.recv(65536)
        if not d:
            raise ConnectionError("closed before a full response head")
        buf += d
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin1").split("\r\n")
    status = lines[0].split(" ")[1]
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    while len(buf) < n:
        d = t.recv(65536)
        if not d:
            raise ConnectionError("closed inside the body")
        buf += d
    return status, hdrs.get("connection", "-"), buf[n:]


try:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                        server_hostname="localhost")
    req = ("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode()
    t.sendall(req)
    status, _, rest = answer(t, b"")
    out("1 %s" % status)
    deadline = time.time() + 60
    while not os.path.exists(go):
        if time.time() > deadline:
            raise TimeoutError("no go file")
        time.sleep(0.05)
    t.sendall(req)
    status, conn, rest = answer(t, rest)
    out("2 %s %s" % (status, conn))
    t.settimeout(3)
    try:
        d = t.recv(1)
        out("closed" if not d else "open")
    except socket.timeout:
        out("open")
    except (ssl.SSLError, OSError):
        out("closed")
except Exception as e:  # noqa: BLE001 -- reported to the test
    out("error: %s" % e)
    sys.exit(1)
