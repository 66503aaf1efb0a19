#!/bin/bash
# tfguard-proxy, operations: htpasswd reloaded when the file changes and on SIGHUP; a
# broken new file is rejected with a log line and the old one stays in force; a changed
# password takes effect (the credential cache does not keep the old one alive); SIGUSR1
# reopens the access log; the certificate is reloaded on SIGHUP; the proxy runs as the
# configured user under a seccomp filter; SIGTERM finishes an in-flight request, then exits 0.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss
px_init
px_stub --slow-ms 1500
htpasswd -bB "$PX_HT" alice alice-pw 2>/dev/null
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL="alice = *
bob = *
carol = *"
px_conf 'auth_fail_limit = 1000'
px_start
check "alice logs in" expect_code 200 -u alice:alice-pw "$(PURL /v1/models/fraud)"

# privilege drop: every uid of the process is the service user's
uid=$(id -u "$PX_USER")
check "runs as $PX_USER (real, effective, saved, fs uid)" bash -c "grep -E '^Uid:' /proc/$PX_PID/status | awk '{exit !(\$2==$uid && \$3==$uid && \$4==$uid && \$5==$uid)}'"
check "no supplementary groups" bash -c "grep -E '^Groups:' /proc/$PX_PID/status | awk '{exit NF!=1}'"
check "no capabilities left" bash -c "grep -E '^CapEff:' /proc/$PX_PID/status | grep -q 0000000000000000"
case "$B" in
*/san) say "SAN build: no seccomp filter (LeakSanitizer needs ptrace)" ;;
*)
	check "no_new_privs set" grep -Eq '^NoNewPrivs:[[:space:]]+1' "/proc/$PX_PID/status"
	check "seccomp filter in force" grep -Eq '^Seccomp:[[:space:]]+2' "/proc/$PX_PID/status"
	;;
esac

# file change: carol added by rewriting the file (atomic rename, like htpasswd does)
cp "$PX_HT" "$TFG_TMP/ht.new"
htpasswd -bB "$TFG_TMP/ht.new" carol carol-pw 2>/dev/null
chown "$PX_USER" "$TFG_TMP/ht.new"
mv "$TFG_TMP/ht.new" "$PX_HT"
QUIET=1 poll 5000 expect_code 200 -u carol:carol-pw "$(PURL /v1/models/fraud)" || fail "carol not picked up"
say "ok: htpasswd change picked up without a signal"

# changed password: the cached old one stops working
htpasswd -bB "$PX_HT" alice alice-new 2>/dev/null
QUIET=1 poll 5000 expect_code 200 -u alice:alice-new "$(PURL /v1/models/fraud)" || fail "new password not picked up"
check "old (cached) password refused after the change" expect_code 401 -u alice:alice-pw "$(PURL /v1/models/fraud)"

# broken file: rejected, the old table stays
cp "$PX_HT" "$TFG_TMP/ht.good"
printf 'garbage without colon\nmore garbage\n' >"$PX_HT"
kill -HUP "$PX_PID"
poll 5000 grep -q "reload rejected: .*no usable entry" "$PX_LOG" || fail "no rejection logged"
say "ok: broken htpasswd rejected: $(grep -m1 'reload rejected' "$PX_LOG")"
check "old table still in force (alice)" expect_code 200 -u alice:alice-new "$(PURL /v1/models/fraud)"
check "old table still in force (carol)" expect_code 200 -u carol:carol-pw "$(PURL /v1/models/fraud)"
rm -f "$PX_HT"
kill -HUP "$PX_PID"
poll 5000 bash -c "grep -c 'reload rejected' '$PX_LOG' | grep -qv '^1$'" || fail "missing file not rejected"
check "missing file: old table still in force" expect_code 200 -u bob:bob-pw "$(PURL /v1/models/fraud)"
cp "$TFG_TMP/ht.good" "$PX_HT"
chown "$PX_USER" "$PX_HT"
check "reload failures counted" bash -c "curl -s http://127.0.0.1:$PX_ADMIN/metrics | grep -Eq '^tfguard_proxy_reload_failures_total [2-9]'"

# broken config on SIGHUP: rejected, old config stays
cp "$PX_CONF" "$TFG_TMP/conf.good"
sed -i "s/^\[proxy\]$/[proxy]\nbogus_key = 1/" "$PX_CONF"
kill -HUP "$PX_PID"
poll 5000 grep -q "reload rejected: .*bogus_key" "$PX_LOG" || fail "bad config not rejected"
check "bad config: still serving" expect_code 200 -u bob:bob-pw "$(PURL /v1/models/fraud)"
cp "$TFG_TMP/conf.good" "$PX_CONF"

# certificate reload on SIGHUP: a new cert (new key) is served to new connections
old_fp=$(openssl x509 -in "$TFG_TMP/cert.pem" -noout -fingerprint -sha256)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 2 \
	-keyout "$TFG_TMP/key2.pem" -out "$TFG_TMP/cert2.pem" 2>/dev/null
chmod 600 "$TFG_TMP/key2.pem"
chown "$PX_USER" "$TFG_TMP/key2.pem"
cp "$TFG_TMP/cert2.pem" "$TFG_TMP/cert.pem"
cp -p "$TFG_TMP/key2.pem" "$TFG_TMP/key.pem"
kill -HUP "$PX_PID"
poll 5000 bash -c "grep -c '^tfguard-proxy: reloaded $PX_CONF' '$PX_LOG' | grep -q '^[1-9]'" || fail "no reload"
served=$(timeout 5 openssl s_client -connect "127.0.0.1:$PX_PORT" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256)
check "new certificate served after SIGHUP" [ "$served" = "$(openssl x509 -in "$TFG_TMP/cert2.pem" -noout -fingerprint -sha256)" ] && [ "$served" != "$old_fp" ]
check "requests work with the new certificate" expect_code 200 -u bob:bob-pw "$(PURL /v1/models/fraud)"

# a key the service user cannot read (root-only): the certificate stays, the rest reloads
chown root "$TFG_TMP/key.pem"
sed -i 's/^carol = \*$/carol = churn/' "$PX_CONF"
kill -HUP "$PX_PID"
poll 5000 grep -q "certificate not reloaded: .*key.pem" "$PX_LOG" || fail "unreadable key not reported"
say "ok: $(grep -m1 'certificate not reloaded' "$PX_LOG")"
QUIET=1 poll 3000 expect_code 403 -u carol:carol-pw "$(PURL /v1/models/fraud)" || fail "[acl] not reloaded"
say "ok: [acl] reloaded although the key was not"
check "old certificate still served" [ "$(timeout 5 openssl s_client -connect "127.0.0.1:$PX_PORT" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256)" = "$served" ]
chown "$PX_USER" "$TFG_TMP/key.pem"

# a key that only a restart applies: the reload says so, by name, and keeps the old value
printf '{"instances": [%s1.0]}' "$(printf '1.0, %.0s' $(seq 1 400))" >"$TFG_TMP/2k"
sed -i 's/^auth_fail_limit = 1000$/auth_fail_limit = 7\nmax_body = 1k/' "$PX_CONF"
kill -HUP "$PX_PID"
poll 5000 grep -q "reload: \[proxy\] max_body, auth_fail_limit changed: kept as started" "$PX_LOG" ||
	fail "no warning naming the keys a reload keeps"
say "ok: $(grep -m1 'kept as started' "$PX_LOG")"
check "max_body kept as started (a 2 KiB body still passes)" expect_code 200 -u bob:bob-pw \
	--data-binary "@$TFG_TMP/2k" "$(PURL /v1/models/fraud:predict)"

# SIGUSR1: access log reopened after rotation
mv "$PX_ACCESS" "$PX_ACCESS.1"
kill -USR1 "$PX_PID"
poll 5000 grep -q "access log reopened" "$PX_LOG" || fail "no reopen"
pcurl -o /dev/null -u bob:bob-pw "$(PURL /v1/models/fraud)"
check "new access log written" grep -q '"user":"bob"' "$PX_ACCESS"
check "rotated log kept its lines" grep -q '"user":"alice"' "$PX_ACCESS.1"
check "access log line has the fields" "$PY" -c '
import json,sys
r=json.loads(open(sys.argv[1]).readline())
need={"time","client","user","model","method","path","status","bytes_in","bytes_out","duration_us"}
sys.exit(not need <= set(r))' "$PX_ACCESS"

# SIGTERM with a request in flight: it completes, then the process exits 0
pcurl -o "$TFG_TMP/inflight" -w '%{http_code}' -u bob:bob-pw -d '{"instances":[1]}' "$(PURL /v1/models/slow:predict)" >"$TFG_TMP/inflight.code" &
cpid=$!
poll 3000 bash -c "curl -s http://127.0.0.1:$PX_ADMIN/metrics | grep -Eq '^tfguard_proxy_connections_open [1-9]'"
kill -TERM "$PX_PID"
poll 2000 bash -c "! ss -Hltn 'sport = :$PX_PORT' | grep -q ." || fail "still accepting after SIGTERM"
say "ok: stopped accepting"
wait "$cpid"
check "in-flight request finished with 200" [ "$(cat "$TFG_TMP/inflight.code")" = 200 ]
poll 5000 bash -c "! kill -0 $PX_PID 2>/dev/null" || fail "proxy did not exit"
wait "$PX_PID"
check "exit status 0" [ $? = 0 ]
pass
