#!/bin/bash
# tfguard probe from a client namespace: compliant against a protected host
# (protected ports filtered, proxy answers 401 over TLS); not compliant after
# tfguard remove plus a public listener.
. "$(dirname "$0")/lib.sh"
fw_topology
need_cmd openssl
chmod 0755 "$TFG_TMP"
conf=$TFG_TMP/tfguard.conf
htpasswd -nbB -C 10 alice secret >"$TFG_TMP/users.htpasswd" 2>/dev/null || fail "htpasswd"
chmod 0644 "$TFG_TMP/users.htpasswd"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 90 \
	-subj /CN=localhost -keyout "$TFG_TMP/key.pem" -out "$TFG_TMP/cert.pem" 2>/dev/null ||
	fail "openssl req"
cat >"$conf" <<CONF
[proxy]
listen = 0.0.0.0:8443, [::]:8443
tls_cert = $TFG_TMP/cert.pem
tls_key = $TFG_TMP/key.pem
backend_rest = 127.0.0.1:8501
htpasswd = $TFG_TMP/users.htpasswd
user = nobody
CONF
bg ip netns exec "$SRV" "$B/tfguard-run" -c "$conf" -- "$PY" "$TOP/tests/helpers/tfserving_stub.py" \
	--host :: --port 8501
wait_port "$SRV" 8501 5000
bg ip netns exec "$SRV" "$B/tfguard-proxy" -c "$conf"
PROXY=$BG_PID
wait_port "$SRV" 8443 5000
check "apply" tfguard_ns "$SRV" -c "$conf" apply

probe() { OUT=$(ip netns exec "$CLI" "$B/tfguard" -c "$conf" probe --timeout 1000 "$@"); RC=$?; say "$OUT"; }

probe "$SRV4"
[ "$RC" -eq 0 ] || fail "a protected host must probe compliant (exit $RC)"
grep -q "PASS  $SRV4:8501: filtered" <<<"$OUT" || fail "8501 must be reported filtered"
grep -q "PASS  $SRV4:8443 (proxy): TLSv1.[23] .* no credentials -> 401 with a Basic challenge" <<<"$OUT" ||
	fail "the proxy must be reported as answering 401"
probe "[$SRV6]"
[ "$RC" -eq 0 ] || fail "IPv6 probe (exit $RC)"
grep -q "PASS  \[$SRV6\]:8500: filtered" <<<"$OUT" || fail "IPv6 8500 must be reported filtered"
probe "$SRV4:9" --no-proxy
[ "$RC" -eq 0 ] || fail "a refused port answers: the host is up (exit $RC)"
grep -q "PASS  $SRV4:9: refused" <<<"$OUT" || fail "port 9 must be reported refused"
probe "$SRV4:8500,8501" --no-proxy
[ "$RC" -eq 1 ] || fail "only filtered ports and no proxy cannot prove the host is up (exit $RC)"
grep -q "UNKNOWN" <<<"$OUT" || fail "an unanswered probe must say UNKNOWN"

check "remove" tfguard_ns "$SRV" -c "$conf" remove
serve "$SRV" 0.0.0.0 8500
probe "$SRV4"
[ "$RC" -eq 3 ] || fail "after remove and a public listener, probe must exit 3 (got $RC)"
grep -q "FAIL  $SRV4:8500: open" <<<"$OUT" || fail "8500 must be reported open"
grep -q "NOT COMPLIANT" <<<"$OUT" || fail "the verdict must say NOT COMPLIANT"

kill "$PROXY"
wait "$PROXY" 2>/dev/null
probe "$SRV4:9" --proxy-port 8443
[ "$RC" -eq 3 ] || fail "a dead proxy must make the probe fail (exit $RC)"
grep -q "FAIL  $SRV4:8443 (proxy)" <<<"$OUT" || fail "the proxy failure must be named"
pass
