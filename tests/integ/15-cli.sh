#!/bin/bash
# The command line: --help lists every command, usage errors exit 2, config
# errors exit 1 with FILE:LINE, print needs no privileges.
. "$(dirname "$0")/lib.sh"
T=$B/tfguard

help=$("$T" --help) || fail "--help must exit 0"
for c in apply remove status print; do
	grep -qE "^  $c( |$)" <<<"$help" || fail "--help does not list '$c'"
done
say "ok: --help lists apply, remove, status, print"
"$T" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no command must exit 2"
out=$("$T" frobnicate 2>&1); [ $? -eq 2 ] || fail "unknown command must exit 2"
grep -q "frobnicate: unknown command" <<<"$out" || fail "unknown command message: $out"
"$T" --bogus >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown option must exit 2"
"$T" -V | grep -q '^tfguard [0-9]' || fail "-V"
"$T" status --help | grep -q 'status \[--json\]' || fail "status --help"

conf=$TFG_TMP/t.conf
printf '[guard]\nprotected_ports = 8500\n[proxy]\nlisten = 0.0.0.0:8443\nbogus = 1\n' >"$conf"
out=$("$T" -c "$conf" print 2>&1); rc=$?
[ $rc -eq 1 ] || fail "a bad [proxy] key must fail every command (print exit $rc)"
grep -qF "$conf:5: unknown key 'bogus' in [proxy]" <<<"$out" || fail "message: $out"
say "ok: $out"
out=$("$T" -c /nonexistent.conf print 2>&1); [ $? -eq 1 ] || fail "missing -c file must exit 1"
grep -q "/nonexistent.conf: No such file or directory" <<<"$out" || fail "message: $out"

printf '[guard]\nprotected_ports = 9000, 8500\n' >"$conf"
chmod 0755 "$TFG_TMP"
chmod 0644 "$conf"
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$T" -c "$conf" print) ||
		fail "print must work without privileges"
else
	out=$("$T" -c "$conf" print) || fail "print"
fi
grep -q 'elements = { 8500, 9000 }' <<<"$out" || fail "print does not show the configured ports"
pass
