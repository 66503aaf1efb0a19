#!/bin/bash
# The probe's TLS client offers TLS 1.2 and 1.3 only (review 5: the minimum was set
# on the SSL_CTX after SSL_new, so it never reached the probe's connection, which
# offered TLS 1.0 and 1.1 as well). Read from the ClientHello itself, with no
# system OpenSSL policy (OPENSSL_CONF is an empty file) to hide it.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss
: >"$TFG_TMP/empty.conf"
: >"$TFG_TMP/openssl.cnf"
port=$(free_port)
bg "$PY" "$TOP/tests/helpers/clienthello.py" "$port" >"$TFG_TMP/hello"
HELLO=$BG_PID
poll 5000 listening_local "$port" || fail "clienthello.py did not start"
OPENSSL_CONF=$TFG_TMP/openssl.cnf "$B/tfguard" -c "$TFG_TMP/empty.conf" probe --timeout 2000 \
	--proxy-port "$port" 127.0.0.1:1 >"$TFG_TMP/probe.out"
say "$(cat "$TFG_TMP/probe.out")"
wait "$HELLO" || fail "no ClientHello read"
say "versions offered: $(cat "$TFG_TMP/hello")"
check "the probe offers exactly TLS 1.3 and 1.2 (0304 0303)" [ "$(cat "$TFG_TMP/hello")" = "0304 0303" ]
check "... and, the server having closed, does not call the proxy compliant" grep -q "FAIL  127.0.0.1:$port (proxy)" "$TFG_TMP/probe.out"
pass
