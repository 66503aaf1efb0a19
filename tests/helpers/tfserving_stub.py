#!/usr/bin/python3
"""tfserving_stub: a stand-in for tensorflow_model_server's REST API (tests only).

Serves, over threaded HTTP/1.1 with keep-alive:
  GET  /v1/models/{m}[/versions/{v}|/labels/{l}]           model status
  GET  /v1/models/{m}[/versions/{v}|/labels/{l}]/metadata  metadata
  POST /v1/models/{m}[...]:predict|:classify|:regress
  GET  /monitoring/prometheus/metrics                      Prometheus text
Errors are TF Serving-shaped {"error": "..."} with its status codes. Like TF
Serving, the /v1/ prefix is matched case-insensitively and names are
percent-decoded.

Test switches, chosen by model name so one stub serves every case:
  slow      answers after --slow-ms milliseconds
  closemid  sends a head promising 100000 bytes, 10 of them, then closes
  big       predict answers with --big-bytes bytes of JSON (streamed)
  extra     answers, then writes a second, unasked-for response on the same connection
  dropsecond answers the first request of a connection; closes a later one unanswered
            and unrecorded (a backend dying under a reused keep-alive connection)
Each request is appended to --record as one JSON line: method, path, raw
headers (list of [name, value]), body length and SHA-256, HTTP version.
"""
import argparse
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
RECORD_LOCK = threading.Lock()
API_RE = re.compile(
    r"^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?(?:(/metadata)|:([A-Za-z]+))?$")


def record(entry):
    if not ARGS.record:
        return
    line = json.dumps(entry, sort_keys=True) + "\n"
    with RECORD_LOCK:
        with open(ARGS.record, "a", encoding="utf-8") as f:
            f.write(line)


def halve(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v / 2 + 2
    if isinstance(v, list):
        return [halve(x) for x in v]
    if isinstance(v, dict):
        return {k: halve(x) for k, x in v.items()}
    return v


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tfserving-stub"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet; the record file is the log
        pass

    # ---- body ------------------------------------------------------------------
    def read_body(self):
        h = hashlib.sha256()
        n = 0
        keep = bytearray()
        te = self.headers.get("Transfer-Encoding", "")
        if te.lower() == "chunked":
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    d = self.rfile.read(min(left, 1 << 16))
                    if not d:
                        raise ConnectionError("eof in chunk")
                    h.update(d)
                    n += len(d)
                    if len(keep) < (1 << 20):
                        keep += d
                    left -= len(d)
                self.rfile.readline(16)
        else:
            left = int(self.headers.get("Content-Length", "0") or "0")
            while left:
                d = self.rfile.read(min(left, 1 << 16))
                if not d:
                    raise ConnectionError("eof in body")
                h.update(d)
                n += len(d)
                if len(keep) < (1 << 20):
                    keep += d
                left -= len(d)
        return n, h.hexdigest(), bytes(keep)

    def send_json(self, code, obj, extra=None):
        body = (json.dumps(obj, indent=4) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def error(self, code, msg):
        self.send_json(code, {"error": msg})

    # ---- dispatch --------------------------------------------------------------
    def handle_any(self):
        try:
            blen, bhash, body = self.read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            return
        self.nreq = getattr(self, "nreq", 0) + 1
        if "/dropsecond" in self.path and self.nreq > 1:
            self.close_connection = True
            return
        record({
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_len": blen,
            "body_sha256": bhash,
            "peer": self.client_address[0],
            "conn": id(self.connection),
        })
        path = self.path.split("?", 1)[0]
        if path == "/monitoring/prometheus/metrics":
            if self.command != "GET":
                return self.error(400, "Malformed request: %s %s" % (self.command, path))
            text = b"# TYPE :tensorflow:serving:request_count counter\n" \
                   b":tensorflow:serving:request_count{model_name=\"half_plus_two\"} 1\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)
            return
        if not path.lower().startswith("/v1/"):
            msg = b"<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD><BODY>Not Found</BODY></HTML>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        path = "/v1/" + path[4:]
        if path[:11].lower() == "/v1/models/":
            path = "/v1/models/" + path[11:]
        if self.command not in ("GET", "POST"):
            return self.error(400, "Malformed request: %s %s" % (self.command, self.path))
        if path.rstrip("/") == "/v1/models":
            return self.error(400, "Missing model name in request.")
        m = API_RE.match(path)
        if not m:
            return self.error(400, "Malformed request: %s %s" % (self.command, self.path))
        model = urllib.parse.unquote(m.group(1))
        version, label, meta, verb = m.group(2), m.group(3), m.group(4), m.group(5)
        if label is not None:
            label = urllib.parse.unquote(label)
        if model not in ARGS.models:
            return self.error(404, "Servable not found for request: Latest(%s)" % model)
        if model == "slow":
            time.sleep(ARGS.slow_ms / 1000.0)
        if model == "closemid":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b'{"predictio')
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if model == "extra":
            body = b'{"ok": true}\n'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body + b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"smuggled\":1}")
            return
        ver = version or "123"
        if self.command == "GET" and verb is None:
            if meta:
                return self.send_json(200, {
                    "model_spec": {"name": model, "signature_name": "", "version": ver},
                    "metadata": {"signature_def": {"signature_def": {"serving_default": {
                        "inputs": {"x": {"dtype": "DT_FLOAT", "name": "x:0"}},
                        "outputs": {"y": {"dtype": "DT_FLOAT", "name": "y:0"}},
                        "method_name": "tensorflow/serving/predict"}}}}})
            return self.send_json(200, {"model_version_status": [{
                "version": ver, "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""}}]})
        if self.command != "POST" or verb is None or meta:
            return self.error(400, "Malformed request: %s %s" % (self.command, self.path))
        if verb not in ("predict", "classify", "regress"):
            return self.error(400, "Malformed request: %s %s" % (self.command, self.path))
        if model == "big" and verb == "predict":
            return self.send_big()
        if blen > len(body):  # large upload: answer with what was received
            return self.send_json(200, {"predictions": [], "received": blen, "sha256": bhash})
        try:
            req = json.loads(body.decode() or "null")
        except (ValueError, UnicodeDecodeError) as e:
            return self.error(400, "JSON Parse error: %s" % e)
        if not isinstance(req, dict):
            return self.error(400, "JSON Value: %s Is not object" % body[:40].decode("latin1"))
        if verb == "predict":
            if "instances" in req and "inputs" in req:
                return self.error(400, "JSON Value: ... expecting only one of 'inputs' or "
                                       "'instances' keys.")
            if "instances" in req:
                return self.send_json(200, {"predictions": halve(req["instances"])})
            if "inputs" in req:
                return self.send_json(200, {"outputs": halve(req["inputs"])})
            return self.error(400, "Missing 'inputs' or 'instances' key")
        ex = req.get("examples")
        if not isinstance(ex, list):
            return self.error(400, "Missing 'examples' key")
        if verb == "classify":
            return self.send_json(200, {"results": [[["yes", 0.75], ["no", 0.25]] for _ in ex]})
        return self.send_json(200, {"results": [0.5 for _ in ex]})

    def send_big(self):
        n = ARGS.big_bytes
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        head = b'{"predictions": "'
        tail = b'"}'
        self.wfile.write(head)
        left = n - len(head) - len(tail)
        blk = b"x" * 65536
        while left > 0:
            k = min(left, len(blk))
            self.wfile.write(blk[:k])
            left -= k
        self.wfile.write(tail)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--record", help="append one JSON line per request here")
    ap.add_argument("--models", default="half_plus_two,fraud,churn,secret,slow,closemid,big,extra,"
                                         "dropsecond,a/b,caf\u00e9")
    ap.add_argument("--slow-ms", type=int, default=3000)
    ap.add_argument("--big-bytes", type=int, default=8 << 20)
    ARGS = ap.parse_args()
    ARGS.models = set(ARGS.models.split(","))
    fam = socket.AF_INET6 if ":" in ARGS.host else socket.AF_INET
    Server.address_family = fam
    srv = Server((ARGS.host, ARGS.port), Handler)
    port = srv.server_address[1]
    if ARGS.port_file:
        tmp = ARGS.port_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write("%d\n" % port)
        os.rename(tmp, ARGS.port_file)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
