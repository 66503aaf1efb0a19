#!/bin/bash
# tfguard-proxy, strict parsing: one raw request per RFC 9110/9112 rule, sent over TLS
# with a small socket client. Each must be answered with the expected status, the
# connection closed, and nothing may reach the stand-in (its record stays empty).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss
px_init
px_stub
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL="bob = *"
px_conf 'auth_fail_limit = 1000' 'max_body = 1M' 'max_header_bytes = 16K'
px_start
# warm the credential cache so that every case below is decided by the parser
check "a valid request passes" expect_code 200 -u bob:bob-pw "$(PURL /v1/models/fraud)"
: >"$REC"

"$PY" - "$PX_PORT" "$TFG_TMP/cert.pem" <<'PYEOF' || fail "smuggling cases"
import base64, socket, ssl, sys, time
port, ca = int(sys.argv[1]), sys.argv[2]
AUTH = b"Authorization: Basic " + base64.b64encode(b"bob:bob-pw") + b"\r\n"
H = b"Host: localhost\r\n" + AUTH
P = b"POST /v1/models/fraud:predict HTTP/1.1\r\n"
G = b"GET /v1/models/fraud HTTP/1.1\r\n"
CASES = [
    ("CL and TE together", P + H + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {400}),
    ("two different Content-Length", P + H + b"Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", {400}),
    ("Content-Length list", P + H + b"Content-Length: 4, 4\r\n\r\nabcd", {400}),
    ("Content-Length with sign", P + H + b"Content-Length: +4\r\n\r\nabcd", {400}),
    ("Content-Length negative", P + H + b"Content-Length: -1\r\n\r\n", {400}),
    ("Content-Length hex", P + H + b"Content-Length: 0x4\r\n\r\nabcd", {400}),
    ("TE not chunked (gzip)", P + H + b"Transfer-Encoding: gzip\r\n\r\nabcd", {400, 501}),
    ("TE chunked not last", P + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", {400, 501}),
    ("TE twice", P + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {400, 501}),
    ("TE with junk token", P + H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", {400, 501}),
    ("TE in HTTP/1.0", b"POST /v1/models/fraud:predict HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {400}),
    ("bad chunk size", P + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", {400}),
    ("chunk size overflow", P + H + b"Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nabc\r\n0\r\n\r\n", {400, 413}),
    ("chunk without CRLF after data", P + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", {400}),
    ("chunk size with space", P + H + b"Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", {400}),
    ("chunk size LF only", P + H + b"Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", {400}),
    ("chunked body over max_body", P + H + b"Transfer-Encoding: chunked\r\n\r\n200000\r\n" + b"x" * 65536, {413}),
    ("Content-Length over max_body", P + H + b"Content-Length: 2000000\r\n\r\n", {413}),
    ("obs-fold", G + H + b"X-A: 1\r\n  folded\r\n\r\n", {400}),
    ("bare LF line ends", b"GET /v1/models/fraud HTTP/1.1\nHost: localhost\n" + AUTH.replace(b"\r\n", b"\n") + b"\n", {400}),
    ("bare CR in a header", G + H + b"X-A: 1\r2\r\n\r\n", {400}),
    ("NUL in a header value", G + H + b"X-A: 1\x002\r\n\r\n", {400}),
    ("space before colon", G + b"Host : localhost\r\n" + AUTH + b"\r\n", {400}),
    ("header name with bad char", G + H + b"X(A): 1\r\n\r\n", {400}),
    ("line starting with space after request line", G + b" Host: localhost\r\n" + AUTH + b"\r\n", {400}),
    ("missing Host", G + AUTH + b"\r\n", {400}),
    ("two Host headers", G + H + b"Host: other\r\n\r\n", {400}),
    ("absolute-form target", b"GET http://localhost/v1/models/fraud HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("asterisk target", b"GET * HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("two spaces in request line", b"GET  /v1/models/fraud HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("lowercase version", b"GET /v1/models/fraud http/1.1\r\n" + H + b"\r\n", {400}),
    ("HTTP/2.0 version", b"GET /v1/models/fraud HTTP/2.0\r\n" + H + b"\r\n", {505, 400}),
    ("h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400, 505}),
    ("bad method chars", b"G{T /v1/models/fraud HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("unknown method", b"FOO /v1/models/fraud HTTP/1.1\r\n" + H + b"\r\n", {501, 405}),
    ("raw byte >= 0x80 in target", b"GET /v1/models/fr\xe4ud HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("raw space in target", b"GET /v1/models/fr aud HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("URI too long", b"GET /v1/models/" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", {414}),
    ("header block too large", G + H + b"X-Big: " + b"a" * 17000 + b"\r\n\r\n", {431}),
    ("too many header lines", G + H + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n", {431}),
    ("Expect other than 100-continue", P + H + b"Expect: 200-ok\r\nContent-Length: 2\r\n\r\n{}", {417, 400}),
    ("HTTP/0.9 request (no version)", b"GET /v1/models/fraud\r\n" + H + b"\r\n", {400}),
    ("header line without a colon", G + H + b"X-A 1\r\n\r\n", {400}),
    ("control byte in a header value", G + H + b"X-A: 1\x012\r\n\r\n", {400}),
    ("DEL in a header value", G + H + b"X-A: 1\x7f2\r\n\r\n", {400}),
    ("control byte in a header name", G + H + b"X\x01A: 1\r\n\r\n", {400}),
    ("control byte in the target", b"GET /v1/models/fr\x01aud HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("TAB in the target", b"GET /v1/models/fr\taud HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("empty line, then CONNECT", b"\r\nCONNECT localhost:8501 HTTP/1.1\r\n" + H + b"\r\n", {400, 405}),
    ("upgrade to h2c is not forwarded", G + H + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n", {200}),
]
fails = 0
for name, data, want in CASES:
    ctx = ssl.create_default_context(cafile=ca)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    t = ctx.wrap_socket(s, server_hostname="localhost")
    try:
        t.sendall(data)
    except (ssl.SSLError, OSError):
        pass
    out = b""
    closed = False
    t.settimeout(3)
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            d = t.recv(65536)
        except socket.timeout:
            break
        except (ssl.SSLError, ConnectionError, OSError):
            closed = True
            break
        if not d:
            closed = True
            break
        out += d
        if 200 in want and b"\r\n\r\n" in out:
            break
    t.close()
    try:
        code = int(out.split(b" ", 2)[1])
    except (IndexError, ValueError):
        code = -1
    ok = code in want and (closed or 200 in want)
    if code in (400, 413, 414, 431, 501, 505) and b'"error"' not in out:
        ok = False
    print("# %s: %s -> %d%s" % ("ok" if ok else "FAIL", name, code, "" if closed else " (left open)"))
    fails += not ok
sys.exit(1 if fails else 0)
PYEOF
# only the h2c case may have reached the stand-in, and without any Upgrade
check "only the one valid request reached the stand-in" [ "$(rec_count)" = 1 ]
check "it carried no Upgrade/HTTP2-Settings" [ "$(rec_last '[h for h,v in r["headers"] if h.lower() in ("upgrade","http2-settings","connection")]')" = "[]" ]

# pipelining: a body that ends early must not smuggle a second request in; the second is
# parsed as its own request and needs its own credentials
: >"$REC"
printf 'POST /v1/models/fraud:predict HTTP/1.1\r\nHost: localhost\r\n%sContent-Length: 17\r\n\r\n{"instances":[1]}GET /v1/models/secret HTTP/1.1\r\nHost: localhost\r\n\r\n' \
	"Authorization: Basic $(printf bob:bob-pw | base64)"$'\r\n' >"$TFG_TMP/pipe.req"
out=$(raw_tls "$TFG_TMP/pipe.req")
check "first answered 200" grep -q '^HTTP/1.1 200' <<<"$out"
check "second (no credentials) answered 401 in order" bash -c "grep '^HTTP/1.1' <<<'$out' | sed -n 2p | grep -q ' 401 '"
check "only the first reached the stand-in" [ "$(rec_count)" = 1 ]
pass
