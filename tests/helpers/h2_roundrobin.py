#!/usr/bin/python3
"""h2_roundrobin.py PORT CA N PAD AUTHZ: N gRPC Predict calls (model m1, a PAD-byte field)
on one HTTP/2 connection over TLS, their DATA sent round-robin across the streams within
the flow-control windows the server grants (what grpcio does not do: it fills one stream
after another). Prints one JSON line: how many streams ended, or where it stalled (no
progress for 10 s); exit 1 on a stall."""
import json, os, socket, ssl, struct, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h2_flood import frame, request_block, lit
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7f; n >>= 7
        if n: out.append(b | 0x80)
        else: out.append(b); return bytes(out)
def ld(f, d): return varint(f << 3 | 2) + varint(len(d)) + d
port, ca, N, pad, authz = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
body = ld(1, ld(1, b"m1")) + ld(2, b"x" * pad)
msg = b"\x00" + struct.pack(">I", len(body)) + body
ctx = ssl.create_default_context(cafile=ca); ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="localhost")
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, struct.pack(">HI", 4, 1 << 30)) + frame(8, 0, 0, struct.pack(">I", (1 << 30) - 65535)))
conn_win, init_win = 65535, 65535
sids = [2 * i + 1 for i in range(N)]
off = {sid: 0 for sid in sids}; win = {}; done = set()
blk = request_block(lit(23, authz))
for sid in sids:
    s.sendall(frame(1, 4, sid, blk)); win[sid] = init_win
buf = b""; last = time.time(); t0 = time.time()
s.setblocking(False)
def pump():
    global buf, conn_win, init_win, last
    while True:
        try: d = s.recv(1 << 16)
        except (ssl.SSLWantReadError, BlockingIOError): return
        if not d: raise SystemExit("closed by server")
        buf += d
        while len(buf) >= 9:
            ln = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + ln: break
            ft, fl, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff
            pl = buf[9:9 + ln]; buf = buf[9 + ln:]
            if ft == 4 and not fl & 1:
                for j in range(0, len(pl), 6):
                    k, v = struct.unpack(">HI", pl[j:j + 6])
                    if k == 4:
                        for x in win: win[x] += v - init_win
                        init_win = v
                s.sendall(frame(4, 1, 0))
            elif ft == 8:
                inc = int.from_bytes(pl[:4], "big") & 0x7fffffff
                if sid == 0: conn_win += inc
                elif sid in win: win[sid] += inc
                last = time.time()
            elif ft == 3:
                done.add(sid); last = time.time()
            elif ft in (0, 1) and fl & 1:
                done.add(sid); last = time.time()
            elif ft == 7:
                raise SystemExit("goaway")
            elif ft == 6 and not fl & 1:
                s.sendall(frame(6, 1, 0, pl))
while len(done) < N:
    pump()
    sent = False
    for sid in sids:
        rem = len(msg) - off[sid]
        if rem <= 0 or sid in done: continue
        n = min(16384, rem, win[sid], conn_win)
        if n <= 0: continue
        end = 1 if n == rem else 0
        s.setblocking(True); s.sendall(frame(0, end, sid, msg[off[sid]:off[sid] + n])); s.setblocking(False)
        off[sid] += n; win[sid] -= n; conn_win -= n; sent = True; last = time.time()
    if not sent:
        time.sleep(0.01)
    if time.time() - last > 10:
        full = sum(1 for x in sids if off[x] >= len(msg))
        print(json.dumps({"stalled": True, "done": len(done), "fully_sent": full, "conn_win": conn_win,
                          "streams_blocked_on_conn_window": sum(1 for x in sids if off[x] < len(msg) and win[x] > 0),
                          "secs": round(time.time() - t0, 1)}))
        sys.exit(1)
print(json.dumps({"stalled": False, "done": len(done), "secs": round(time.time() - t0, 1)}))
