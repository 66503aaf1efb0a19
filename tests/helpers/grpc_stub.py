#!/usr/bin/python3
"""grpc_stub: a stand-in for tensorflow_model_server's gRPC API on port 8500 (tests only).

Plain HTTP/2 (h2c), like TF Serving. Every method is served by one generic handler with
identity (de)serialisers, so any TF Serving method name works without generated code:

  unary-unary  any method        → reply = b"reply:" + method + b":" + SHA-256(request)
                                   (deterministic: a direct call gives the same bytes)
  slow         model name "slow" → answers after --slow-ms milliseconds
  big          model name "big"  → reply of --big-bytes bytes
  /tfguard.test.Stream/Numbers   server streaming: N replies for a request of N bytes
  /tfguard.test.Stream/Echo      bidirectional: echoes every message
  /tfguard.test.Stream/Flood     server streaming: N replies of 1 MiB for N request bytes;
                                 progress in RECORD.flood

Each call is appended to --record as one JSON line: method, metadata (list of [key,
value]), request count, total bytes and SHA-256 of the first request.
SIGTERM stops it gracefully (GOAWAY; calls in flight have --grace seconds).
Run with /usr/bin/python3 (Debian's python3-grpcio).
"""
import argparse
import hashlib
import json
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

ARGS = None
LOCK = threading.Lock()


def record(method, ctx, reqs):
    if not ARGS.record:
        return
    md = [[k, v if isinstance(v, str) else v.hex()] for k, v in ctx.invocation_metadata()]
    first = reqs[0] if reqs else b""
    entry = {"method": method, "metadata": md, "requests": len(reqs),
             "bytes": sum(len(r) for r in reqs),
             "sha256": hashlib.sha256(first).hexdigest()}
    with LOCK:
        with open(ARGS.record, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")


def model_name(req):
    """model_spec.name (field 1 → field 1) if the request is shaped like TF Serving's."""
    def fields(b):
        i = 0
        while i < len(b):
            tag, i = varint(b, i)
            wt = tag & 7
            if wt == 0:
                _, i = varint(b, i)
                continue
            if wt != 2:
                return
            n, i = varint(b, i)
            yield tag >> 3, b[i:i + n]
            i += n

    def varint(b, i):
        v = s = 0
        while True:
            c = b[i]
            i += 1
            v |= (c & 0x7f) << s
            s += 7
            if c < 0x80:
                return v, i
    try:
        for num, spec in fields(req):
            if num == 1:
                for n2, name in fields(spec):
                    if n2 == 1:
                        return name.decode()
    except (IndexError, UnicodeDecodeError):
        pass
    return ""


def reply_for(method, req):
    if model_name(req) == "slow":
        time.sleep(ARGS.slow_ms / 1000)
    if model_name(req) == "big":
        return bytes(i % 251 for i in range(ARGS.big_bytes))
    return b"reply:" + method.encode() + b":" + hashlib.sha256(req).hexdigest().encode()


class Handler(grpc.GenericRpcHandler):
    def service(self, details):
        m = details.method
        if m == "/tfguard.test.Stream/Numbers":
            def numbers(req, ctx):
                record(m, ctx, [req])
                for i in range(len(req)):
                    yield b"n%d" % i
            return grpc.unary_stream_rpc_method_handler(numbers)
        if m == "/tfguard.test.Stream/Flood":
            def flood(req, ctx):
                # len(req) replies of 1 MiB; how many were produced so far goes to
                # RECORD.flood (a reader that stops reading must stop this loop)
                chunk = b"f" * (1 << 20)
                for i in range(len(req)):
                    with open(ARGS.record + ".flood", "w", encoding="utf-8") as f:
                        f.write("%d\n" % (i + 1))
                    yield chunk
            return grpc.unary_stream_rpc_method_handler(flood)
        if m == "/tfguard.test.Stream/Echo":
            def echo(it, ctx):
                got = []
                for req in it:
                    got.append(req)
                    yield req
                record(m, ctx, got)
            return grpc.stream_stream_rpc_method_handler(echo)

        def unary(req, ctx):
            record(m, ctx, [req])
            return reply_for(m, req)
        return grpc.unary_unary_rpc_method_handler(unary)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--record", default="")
    ap.add_argument("--slow-ms", type=int, default=2000)
    ap.add_argument("--big-bytes", type=int, default=1 << 20)
    ap.add_argument("--grace", type=float, default=10)
    ARGS = ap.parse_args()
    opts = [("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20)]
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=opts)
    srv.add_generic_rpc_handlers((Handler(),))
    srv.add_insecure_port("127.0.0.1:%d" % ARGS.port)
    srv.start()
    print("grpc_stub listening on 127.0.0.1:%d" % ARGS.port, file=sys.stderr, flush=True)
    # SIGTERM: a graceful stop like TF Serving's: GOAWAY, calls in flight get --grace s
    signal.signal(signal.SIGTERM, lambda *_: srv.stop(ARGS.grace))
    srv.wait_for_termination()


if __name__ == "__main__":
    main()
