#!/bin/bash
# tfguard passwd: bcrypt entries that Apache's htpasswd -v and tfguard-proxy
# both accept; mode and owner kept; -D and -v; concurrent runs lose nothing.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd htpasswd
T=$B/tfguard
ht=$TFG_TMP/users.htpasswd

printf 'first secret\n' | "$T" passwd --stdin -f "$ht" alice >/dev/null || fail "passwd alice"
check "a new file is created 0640" [ "$(stat -c %a "$ht")" = 640 ]
grep -q '^alice:\$2y\$12\$' "$ht" || fail "not a bcrypt cost-12 entry: $(cat "$ht")"
check "Apache's htpasswd -v accepts it" htpasswd -vb "$ht" alice 'first secret'
check_not "and refuses a wrong password" htpasswd -vb "$ht" alice 'second secret'

chown nobody "$ht" && chmod 0600 "$ht"
printf 'second secret\n' | "$T" passwd --stdin -f "$ht" alice >/dev/null || fail "passwd update"
check "an update keeps mode 0600" [ "$(stat -c %a "$ht")" = 600 ]
check "and owner nobody" [ "$(stat -c %U "$ht")" = nobody ]
check "the new password verifies" htpasswd -vb "$ht" alice 'second secret'
[ "$(grep -c '^alice:' "$ht")" = 1 ] || fail "alice twice"
printf 'second secret\n' | "$T" passwd -v --stdin -f "$ht" alice >/dev/null
[ $? -eq 0 ] || fail "passwd -v of the right password must exit 0"
printf 'first secret\n' | "$T" passwd -v --stdin -f "$ht" alice >/dev/null
[ $? -eq 3 ] || fail "passwd -v of a wrong password must exit 3"
printf 'x:y\n' | "$T" passwd --stdin -f "$ht" 'a:b' >/dev/null 2>&1
[ $? -eq 2 ] || fail "a user name with ':' must be a usage error"
printf '\n' | "$T" passwd --stdin -f "$ht" carol >/dev/null 2>&1
[ $? -eq 1 ] || fail "an empty password must be refused"
grep -q '^carol:' "$ht" && fail "a refused password was written"

say "a user who cannot keep the owner changes nothing"
chmod 0755 "$TFG_TMP"
mkdir -m 0777 "$TFG_TMP/shared"
printf 'alice:%s\n' "$(cut -d: -f2 "$ht" | head -n 1)" >"$TFG_TMP/shared/ht"
chown root:nogroup "$TFG_TMP/shared/ht" && chmod 0660 "$TFG_TMP/shared/ht"
before=$(cat "$TFG_TMP/shared/ht")
out=$(printf 'pw\n' | setpriv --reuid=65534 --regid=65534 --clear-groups "$T" passwd --stdin \
	-f "$TFG_TMP/shared/ht" bob 2>&1)
rc=$?
say "$out"
[ $rc -eq 1 ] || fail "passwd as nobody on a root-owned file must fail (exit $rc)"
grep -q 'cannot keep its owner' <<<"$out" || fail "the error must say why"
[ "$(stat -c %U:%G "$TFG_TMP/shared/ht")" = root:nogroup ] || fail "the owner changed"
[ "$(cat "$TFG_TMP/shared/ht")" = "$before" ] || fail "the content changed"

say "concurrent runs: 20 users added at once"
pids=()
for i in $(seq 1 20); do
	(printf 'pw%d\n' "$i" | "$T" passwd -C 4 --stdin -f "$ht" "user$i" >/dev/null) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent passwd failed"; done
n=$(grep -c '^user[0-9]*:' "$ht")
[ "$n" = 20 ] || fail "only $n of 20 concurrent users are in the file"
check "alice survived the concurrent runs" htpasswd -vb "$ht" alice 'second secret'
check "user17 verifies" htpasswd -vb "$ht" user17 pw17
say "ok: 21 entries, none lost"

check "-D deletes" "$T" passwd -D -f "$ht" user3
grep -q '^user3:' "$ht" && fail "user3 still there"
before=$(cat "$ht")
check_not "-D of an absent user fails" "$T" passwd -D -f "$ht" user3
[ "$(cat "$ht")" = "$before" ] || fail "a failed -D changed the file"

say "tfguard-proxy accepts what passwd wrote"
px_init
PX_HT=$ht
px_stub
px_conf
chown nobody "$ht"
px_start
check "alice gets through the proxy" expect_code 200 -u 'alice:second secret' \
	-d '{"instances": [1.0]}' "$(PURL /v1/models/half_plus_two:predict)"
check "a wrong password gets 401" expect_code 401 -u 'alice:first secret' \
	-d '{"instances": [1.0]}' "$(PURL /v1/models/half_plus_two:predict)"
pass
