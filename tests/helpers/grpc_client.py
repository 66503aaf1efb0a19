#!/usr/bin/python3
"""grpc_client: a real gRPC client (python3-grpcio) for the tests, one call per run.

  grpc_client.py TARGET METHOD [options]
    --ca FILE         TLS with this CA (server name "localhost"); without: plaintext h2c
    --user U:P        authorization metadata "Basic base64(U:P)"
    --authz VALUE     raw authorization metadata value ("Bearer tfg_...")
    --cert F --key F  a client certificate and its key (mTLS)
    --model NAME      model_spec.name (field 1 → field 1); repeatable (MultiInference:
                      --multi puts each in a task)
    --pad N           N extra bytes in field 2 of the request (a 20 MB request...)
    --timeout S       deadline in seconds (0: none, no grpc-timeout sent)
    --stream N        /tfguard.test.Stream/Numbers with an N-byte request
    --echo N          /tfguard.test.Stream/Echo with N messages
    --out FILE        write the reply bytes there
    --concurrent N    N such unary calls at once on the one channel; "code" is OK only if
                      all are, "codes" lists each
    --vary-password   with --concurrent and --user: call i sends the password with i
                      appended (N different guesses at once)
Prints one JSON line: {"code": "OK"|status name, "details": ..., "reply_len", "reply_sha256"}.
Exit 0 whatever the status (the test compares), 2 on usage errors.
"""
import argparse
import base64
import hashlib
import json
import sys

import grpc


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ld(field, data):
    return varint(field << 3 | 2) + varint(len(data)) + data


def request(models, multi, pad):
    body = b""
    for m in models:
        spec = ld(1, ld(1, m.encode()))
        body += ld(1, spec) if multi else spec
    if pad:
        body += ld(2, b"x" * pad)
    return body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("method")
    ap.add_argument("--ca")
    ap.add_argument("--user")
    ap.add_argument("--authz")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--model", action="append", default=[])
    ap.add_argument("--multi", action="store_true")
    ap.add_argument("--pad", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("--stream", type=int, default=0)
    ap.add_argument("--echo", type=int, default=0)
    ap.add_argument("--out")
    ap.add_argument("--concurrent", type=int, default=0)
    ap.add_argument("--vary-password", action="store_true")
    a = ap.parse_args()
    if a.timeout <= 0:
        a.timeout = None
    opts = [("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20)]
    if a.ca:
        def read(path):
            with open(path, "rb") as f:
                return f.read()
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(a.ca),
            private_key=read(a.key) if a.key else None,
            certificate_chain=read(a.cert) if a.cert else None)
        opts.append(("grpc.ssl_target_name_override", "localhost"))
        ch = grpc.secure_channel(a.target, creds, options=opts)
    else:
        ch = grpc.insecure_channel(a.target, options=opts)
    md = []
    if a.user:
        md.append(("authorization", "Basic " + base64.b64encode(a.user.encode()).decode()))
    if a.authz:
        md.append(("authorization", a.authz))
    ident = dict(request_serializer=None, response_deserializer=None)
    reply = b""
    if a.concurrent:
        call = ch.unary_unary(a.method, **ident)
        req = request(a.model, a.multi, a.pad)
        def md_for(i):
            if not (a.vary_password and a.user):
                return md
            u = (a.user + str(i)).encode()
            return [("authorization", "Basic " + base64.b64encode(u).decode())]
        futs = [call.future(req, metadata=md_for(i), timeout=a.timeout)
                for i in range(a.concurrent)]
        codes, details = [], ""
        for f in futs:
            try:
                f.result()
                codes.append("OK")
            except grpc.RpcError as e:
                codes.append(e.code().name)
                details = details or e.details() or ""
        bad = [c for c in codes if c != "OK"]
        print(json.dumps({"code": bad[0] if bad else "OK", "details": details, "codes": codes}))
        return
    try:
        if a.stream:
            call = ch.unary_stream(a.method, **ident)
            reply = b"|".join(call(b"x" * a.stream, metadata=md, timeout=a.timeout))
        elif a.echo:
            call = ch.stream_stream(a.method, **ident)
            msgs = [b"m%d" % i for i in range(a.echo)]
            reply = b"|".join(call(iter(msgs), metadata=md, timeout=a.timeout))
        else:
            call = ch.unary_unary(a.method, **ident)
            reply = call(request(a.model, a.multi, a.pad), metadata=md, timeout=a.timeout)
        code, details = "OK", ""
    except grpc.RpcError as e:
        code, details = e.code().name, e.details() or ""
    if a.out:
        with open(a.out, "wb") as f:
            f.write(reply)
    print(json.dumps({"code": code, "details": details, "reply_len": len(reply),
                      "reply_sha256": hashlib.sha256(reply).hexdigest()}))


if __name__ == "__main__":
    main()
