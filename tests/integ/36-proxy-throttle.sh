#!/bin/bash
# tfguard-proxy, brute-force defence: failures counted per client address (the socket
# peer, never X-Forwarded-For); past auth_fail_limit within auth_fail_window → 429 with
# Retry-After, even for the right password; each failure is one log line with the
# client address and the escaped user name, matched here with the fail2ban regex from
# the README; another address is not affected.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss
px_init
px_stub
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
# a slow hash (bcrypt cost 12, ~0.25 s) so that parallel guesses really overlap
htpasswd -bBC 12 "$PX_HT" carol carol-pw 2>/dev/null
PX_ACL="bob = *"
px_conf 'auth_fail_limit = 5' 'auth_fail_window = 6s'
px_start
for i in 1 2 3 4 5; do
	check "failure $i → 401 (spoofed X-Forwarded-For ignored)" expect_code 401 -u "bob:wrong$i" \
		-H "X-Forwarded-For: 10.0.0.$i" "$(PURL /v1/models/fraud)"
done
hdrs=$(pcurl -D - -o "$TFG_TMP/body" -u bob:bob-pw "$(PURL /v1/models/fraud)")
check "6th attempt (right password) → 429" grep -q '^HTTP/1.1 429' <<<"$hdrs"
check "429 carries Retry-After" grep -Eq '^Retry-After: [1-9][0-9]*' <<<"$hdrs"
check "429 body is TF Serving-shaped" grep -q '"error"' "$TFG_TMP/body"
check "another client address (127.0.0.2) is not throttled" bash -c "curl -s -o /dev/null -w '%{http_code}' --cacert '$TFG_TMP/cert.pem' --interface 127.0.0.2 --resolve localhost:$PX_PORT:127.0.0.1 -u bob:bob-pw https://localhost:$PX_PORT/v1/models/fraud | grep -q 200"
# escaped user names in the failure line (a quote and a newline cannot forge a line)
pcurl -o /dev/null -H "Authorization: Basic $(printf 'ev"il\nname:x' | base64 -w0)" --interface 127.0.0.2 "https://localhost:$PX_PORT/v1/models/fraud"
# the fail2ban filter documented in the README
re='^tfguard-proxy: auth: failed login from ([0-9a-fA-F.:]+) user "'
n=$(grep -Ec "$re" "$PX_LOG")
check "5 failures from 127.0.0.1 logged one line each ($n lines)" [ "$(grep -Ec '^tfguard-proxy: auth: failed login from 127\.0\.0\.1 user "bob" ' "$PX_LOG")" = 5 ]
check "throttle logged" grep -q 'auth: throttled 127.0.0.1' "$PX_LOG"
QUIET=1 poll 3000 grep -q '"status":429.*"limit":"auth_fail"' "$PX_ACCESS" ||
	fail "the 429 access-log line does not name the auth_fail limit"
say "ok: the 429 access-log line names limit auth_fail"
check "no line was forged by a user name" [ "$(grep -c 'il$' "$PX_LOG")" = 0 ]
check "failures counted in metrics" bash -c "curl -s http://127.0.0.1:$PX_ADMIN/metrics | grep -Eq '^tfguard_proxy_auth_failures_total [5-9]'"
check "throttled counted in metrics" bash -c "curl -s http://127.0.0.1:$PX_ADMIN/metrics | grep -Eq '^tfguard_proxy_auth_throttled_total [1-9]'"

say "-- parallel guesses cannot outrun the limit (40 at once from 127.0.0.3, limit 5)"
before=$(rec_count) pids= t0=$(date +%s%N)
for i in $(seq 1 40); do
	pw=wrong$i
	[ "$i" = 20 ] && pw=carol-pw
	pcurl -o "$TFG_TMP/par.body.$i" -w '%{http_code}\n' --interface 127.0.0.3 -u "carol:$pw" \
		"$(PURL /v1/models/fraud)" >"$TFG_TMP/par.$i" &
	pids+=" $!"
done
# shellcheck disable=SC2086 # (not a bare wait: that would wait for the proxy too)
wait $pids
cat "$TFG_TMP"/par.[0-9]* | sort | uniq -c | sed 's/^/#   /'
cat "$TFG_TMP"/par.body.* >"$TFG_TMP/busy.body"
verified=$(cat "$TFG_TMP"/par.[0-9]* | grep -Ec '^(200|401|403)$')
throttled=$(cat "$TFG_TMP"/par.[0-9]* | grep -c '^429$')
check "at most auth_fail_limit (5) of the 40 were verified ($verified)" [ "$verified" -le 5 ]
check "the rest were refused with 429 ($throttled)" [ "$((verified + throttled))" = 40 ]
check "at most 5 failure lines for 127.0.0.3" [ "$(grep -c 'failed login from 127\.0\.0\.3 ' "$PX_LOG")" -le 5 ]
check "nothing reached the stand-in (carol has no [acl] line)" [ "$(rec_count)" = "$before" ]

check "refused as busy, not as failures: 429 says so" grep -q 'being verified' "$TFG_TMP/busy.body"
n=$(grep -Ec 'auth: (busy|throttled) 127\.0\.0\.3' "$PX_LOG")
secs=$((($(date +%s%N) - t0 + 999999999) / 1000000000))
check "the $throttled refusals of 127.0.0.3 over ${secs} s logged in $n lines (at most one a second per worker)" \
	[ "$n" -le "$((2 * (secs + 1)))" ] && [ "$n" -lt "$throttled" ]
QUIET=1 poll 3000 grep -q '"limit":"auth_inflight"' "$PX_ACCESS" || fail "access log does not name auth_inflight"
say "ok: access log names the limit auth_inflight"
check "busy refusals counted in metrics" bash -c "curl -s http://127.0.0.1:$PX_ADMIN/metrics | grep -Eq '^tfguard_proxy_auth_busy_total [1-9]'"

say "-- guesses whose clients hang up (TCP reset) are counted and logged, or never hashed"
"$PY" - "$PX_PORT" "$TFG_TMP/cert.pem" <<'PYEOF' || fail "reset clients"
import base64, socket, ssl, struct, subprocess, sys, threading, time
port, ca = int(sys.argv[1]), sys.argv[2]
def proxy_recvq(cport):
    # the proxy's side of this connection: bytes it has not read yet (None: not found)
    out = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%d and dport = :%d )" % (port, cport)],
                         capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None
def one(i):
    ctx = ssl.create_default_context(cafile=ca)
    s = socket.socket()
    s.bind(("127.0.0.4", 0))
    s.connect(("127.0.0.1", port))
    cport = s.getsockname()[1]  # before wrap_socket, which detaches s
    t = ctx.wrap_socket(s, server_hostname="localhost")
    cred = base64.b64encode(b"carol:gone%d" % i)
    t.sendall(b"GET /v1/models/fraud HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic " + cred + b"\r\n\r\n")
    # a reset discards what the proxy has not read yet: wait (bounded) until it has
    deadline = time.time() + 3
    while proxy_recvq(cport) != 0 and time.time() < deadline:
        time.sleep(0.005)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    t.close()
ths = [threading.Thread(target=one, args=(i,)) for i in range(3)]
for th in ths: th.start()
for th in ths: th.join()
PYEOF
QUIET=1 poll 5000 grep -q 'failed login from 127\.0\.0\.4 user "carol" (wrong password or unknown user; client gone)' "$PX_LOG" ||
	fail "no 'client gone' failure line for a client that reset its connection"
say "ok: failure of a departed client logged for fail2ban"
for i in 4 5 6 7 8 9; do
	pcurl -o /dev/null -w '%{http_code}\n' --interface 127.0.0.4 -u "carol:late$i" "$(PURL /v1/models/fraud)" >>"$TFG_TMP/late"
done
gone=$(grep -c 'failed login from 127\.0\.0\.4 .*client gone' "$PX_LOG")
late=$(grep -c '^401$' "$TFG_TMP/late")
say "$gone departed guesses were hashed (the rest were dropped unhashed), $late later ones got 401"
check "the departed guesses that were hashed count: $gone + $late = the limit of 5" [ "$((gone + late))" = 5 ]
check "then 429" [ "$(tail -n 1 "$TFG_TMP/late")" = 429 ]

# the window passes: allowed again
QUIET=1 poll 14000 expect_code 200 -u bob:bob-pw "$(PURL /v1/models/fraud)" || fail "still throttled after the window"
say "ok: allowed again after the window"
pass
