#!/usr/bin/env python3
"""Writes the seed corpora: inputs taken from the unit tests, one file per input,
named by the SHA-1 of its content (like libFuzzer names what it finds).
Run from the repository root: python3 tests/fuzz/seeds.py"""
import hashlib
import os

def put(target, data):
    if isinstance(data, str):
        data = data.encode('latin-1')
    d = os.path.join('tests/fuzz/corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), 'wb') as f:
        f.write(data)

H = 'Host: h\r\n'
requests = [
    'GET /v1/models/m?x=1 HTTP/1.1\r\nHost: example.com:8443\r\nUser-Agent: curl/8\r\nX-Empty:\r\nAccept:   */*  \r\n\r\n',
    'POST /v1/models/m:predict HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nExpect: 100-Continue\r\nConnection: close\r\n\r\n{"instances":',
    'POST /v1/models/m/versions/2:classify HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n',
    '\r\n\r\nGET /monitoring/prometheus/metrics HTTP/1.1\r\n' + H + '\r\n',
    'GET /V1/MODELS/fr%61ud/VERSIONS/1/METADATA HTTP/1.1\r\n' + H + 'Authorization: Basic dXNlcjpwYXNz\r\n\r\n',
    'POST /v1/models/a%2Fb:predict HTTP/1.1\r\n' + H + 'Content-Length: 0\r\n\r\n',
    'POST /v1/models/%2e%2e:regress HTTP/1.1\r\n' + H + 'Content-Length: 0\r\n\r\n',
    'GET /v1/models/x/labels/stable HTTP/1.1\r\n' + H + 'Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n',
    'POST / HTTP/1.1\r\n' + H + 'Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
    'POST / HTTP/1.1\r\n' + H + 'Content-Length: 3\r\nContent-Length: 3\r\n\r\n',
    'POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: gzip, chunked\r\n\r\n',
    'GET / HTTP/1.1\r\n' + H + 'X-A: a\r\n b\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n',
    'GET / HTTP/1.1\r\nHost : h\r\n\r\n',
    'GET /\r\n\r\n',
    'GET / HTTP/2.0\r\n' + H + '\r\n',
    'GET http://h/v1/models/m HTTP/1.1\r\n' + H + '\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    'GET / HTTP/1.1\r\n' + H + 'Expect: 200-ok\r\n\r\n',
    'GET /' + 'a' * 600 + ' HTTP/1.1\r\n' + H + '\r\n',
    'GET / HTTP/1.1\r\n' + H + ''.join('X-%d: v\r\n' % i for i in range(20)) + '\r\n',
    'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{"predictions":1}',
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
    'HTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.0 404\r\n\r\n',
    'HTTP/1.1 101 Switching Protocols\r\n\r\n',
]
for r in requests:
    put('http_request', r)

bodies = [
    '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    '0\r\n\r\n',
    '00000000000000a\r\n0123456789\r\n0\r\n\r\n',
    '5;ext\r\nhello\r\n0;a=b;c="d\\"e"\r\n\r\n',
    '5 ; ext = v \r\nhello\r\n0\r\n\r\n',
    '5\r\nhello\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n',
    '5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n',
    '10000000000000000\r\n',
    'ffffffffffffffff\r\n',
    '5\r\nhelloX\r\n0\r\n\r\n',
    '5\nhello\r\n0\r\n\r\n',
    '0\r\n X: 1\r\n\r\n',
]
for b in bodies:
    for opt in (0, 1, 2, 3):
        put('http_chunked', chr(opt) + b)

headers = [
    'Basic dXNlcjpwYXNz', 'basic dXNlcjpwYXNz', 'BASIC   dXNlcjpwYXNz', 'Basic dTpwOmE6c3M=',
    'Basic dTo=', 'Basic OnBhc3M=', 'Basic dXNlcnBhc3M=', 'Bearer abc', 'Basic', 'Basic ',
    'Basic dXNlcjpwYXN', 'Basic dXNlcjpwYX=', 'Basic dXNlcjpw YXNz', 'Basic dXNlcjpwYXNz====',
    'Basic dXMAcjpwYXNz', 'Basicx dXNlcjpwYXNz', '',
]
for h in headers:
    put('basic_header', h)

lines = [
    'ubcrypt:$2y$05$.f/.mZ6lNBtg3i30eeZXXOsE33n/ewdhvLq43diA8Ggz9lD5abwMG',
    'uapr1:$apr1$mQfdWBd2$39GW1q69HLxqHrja3oAdf1',
    'usha:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=',
    'usha256:$5$nwpJZnC/zg0Zyqfx$kfDiNSXn/C61Q2B8Jo9PQQ4JVWgXLpuvgt.6c9PCxE4',
    'usha512:$6$rounds=5000$SYfBQiyKk0zpt6yJ$1kpSsxXB9aRe9GwOzpkWOrztLP7T1bq.fz9abn96aRgQZmGP2wFY9c4Nzwrlnx9u0AYIt6wfpZukZFA3.GJ3D1',
    'udes:pY87yJls7xh.Q',
    'ussha:{SSHA}X0F1TPjlv+WIKsJudYY7dPMCq1kBAgME/v8AgA==',
    'uy:$y$j9T$abcdefghijklmnop$0123456789012345678901234567890123456789012',
    'um:$1$abcdefgh$0123456789012345678901',
    'ucolon:$2y$04$y8WB2PQ0AmN71YxKDFToH.Y37nTynH.gBMCrkIJM7blRZbvzjSchW:a comment',
    'uplain:{PLAIN}correct horse\x01',
    '# comment', 'nocolon', ':{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=', 'unknown:$7$abc',
    'crlf:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\r',
]
for l in lines:
    put('htpasswd_line', l)
put('htpasswd_line', '\n'.join(lines) + '\n')
put('htpasswd_line', 'a:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\na:{SHA}AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n  # x\n')

confs = [
    '',
    '[guard]\nprotected_ports = 8500, 8501\nlog_drops = yes\n\n[proxy]\nlisten = 0.0.0.0:8443\n'
    'tls_cert = /etc/tfguard/cert.pem\ntls_key = /etc/tfguard/key.pem\nbackend_rest = 127.0.0.1:8501\n'
    'backend_grpc = 127.0.0.1:8500\nhtpasswd = /etc/tfguard/htpasswd\nrealm = TensorFlow Serving\n'
    'max_body = 64M\nuser = tfguard\naccess_log = /var/log/tfguard/access.log\n\n'
    '[limits]\ndefault = 100r/s burst=200\nclient = 50r/s burst=100\ninflight = 16\n'
    'user.alice = 10r/s burst=20\nmodel.fraud = 200r/s\n\n[acl]\nalice = fraud, churn\nbob = *\n'
    'carol = fraud, @metrics\n',
    '[proxy]\nauth_fail_limit = 5\nauth_fail_window = 30s\ncred_cache_size = 100\n'
    'cred_cache_ttl = 5m\nallow_plain_passwords = yes\nmax_header_bytes = 16K\n',
    '[acl]\nalice = a, a\n', '[nope]\n', '[proxy]\nlisten = [::]:8443, 0.0.0.0:8443 # c\n',
]
for c in confs:
    put('conf', c)

routes = [
    (0, '/v1/models/fraud'), (0, '/v1/models/fraud/versions/3'), (0, '/v1/models/fraud/labels/stable'),
    (0, '/v1/models/fraud/metadata'), (0, '/v1/models/fraud/versions/7/metadata'),
    (0, '/v1/models/fraud/labels/canary/metadata'), (0, '/v1/models/metadata'),
    (1, '/v1/models/fraud:predict'), (1, '/v1/models/fraud:classify'), (1, '/v1/models/fraud:regress'),
    (1, '/v1/models/fraud/versions/2:predict'), (1, '/v1/models/fraud/labels/stable:predict'),
    (1, '/V1/MODELS/fraud:PREDICT'), (1, '/v1/models/fr%61ud:predict'), (1, '/v1/models/a%3Ab:predict'),
    (0, '/v1/models/fraud?x=1'), (1, '/v1/models/fraud?x:predict'), (0, '/monitoring/prometheus/metrics'),
    (1, '/v1/models/a%2Fb:predict'), (1, '/v1/models/a%00b:predict'), (1, '/v1/models/%2e%2e:predict'),
    (0, '/v1/models/versions/1'), (1, '/v1/models/x/versions/99999999999999999999:predict'),
    (2, '/v1/models/x'), (3, '/v1/models/x:predict'), (0, '/v1/models/x:predict'), (1, '/v1/models/x'),
]
for m, t in routes:
    put('route', chr(m) + t)

H64 = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'
token_lines = [
    'alice:' + H64, 'alice:' + H64.upper(), 'svc.a@x:' + H64 + ':created=2026-01-02T03:04:05Z ci: bot',
    'bob:' + H64 + ':laptop created=1970-01-01T00:00:10Z', 'bob:' + H64 + '\r', '', '   # comment',
    'alice', ':' + H64, 'al ice:' + H64, 'alice:' + H64 + '0', 'alice:9f86',
    'alice:' + H64 + '\nbob:' + H64 + '\ngarbage\nbob:' + '0' * 63 + '1\n',
    'Bearer abc', 'bEARER   tfg_x-y.z~+/==', 'Bearer', 'Bearer a b', 'Bearer ab=c', 'Basic YTpi',
    'Bearerx abc', 'Bearer tfg_DA6HFk4BUqtP4ZB_Z2ABP0BkIdoYJ3iFK-ks3B-r6MM',
]
for t in token_lines:
    put('token_line', t)
