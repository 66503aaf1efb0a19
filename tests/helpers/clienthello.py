#!/usr/bin/python3
"""clienthello.py PORT: accepts one TCP connection on 127.0.0.1:PORT, reads the
TLS ClientHello and prints the versions the client offers (supported_versions,
else the legacy version) as hex, e.g. "0304 0303", then closes. Tells which
TLS versions a client is willing to speak without completing any handshake."""
import socket
import struct
import sys

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(1)
conn, _ = srv.accept()
conn.settimeout(5)
data = b""
while len(data) < 5 or len(data) < 5 + struct.unpack("!H", data[3:5])[0]:
    chunk = conn.recv(65536)
    if not chunk:
        sys.exit("connection closed before a whole ClientHello")
    data += chunk
conn.close()
if data[0] != 22 or data[5] != 1:
    sys.exit("not a TLS ClientHello")
hs = data[9:]
legacy = hs[0:2]
p = 2 + 32
p += 1 + hs[p]                                   # session id
p += 2 + struct.unpack("!H", hs[p:p + 2])[0]     # cipher suites
p += 1 + hs[p]                                   # compression methods
end = p + 2 + struct.unpack("!H", hs[p:p + 2])[0]
p += 2
versions = [legacy.hex()]
while p + 4 <= end:
    etype, elen = struct.unpack("!HH", hs[p:p + 4])
    body = hs[p + 4:p + 4 + elen]
    if etype == 43:  # supported_versions
        versions = [body[i:i + 2].hex() for i in range(1, 1 + body[0], 2)]
    p += 4 + elen
print(" ".join(versions), flush=True)
