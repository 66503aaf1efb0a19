#!/bin/bash
# apply --fallback (what tfguard-apply.service runs at boot): a config that
# cannot be loaded must not leave the protected ports open when no table is
# installed. With no table: the [guard] section alone (or the built-in
# defaults when [guard] is broken too) is installed, exit 1, the message names
# FILE:LINE and what was installed. With a table: it stays byte for byte.
# Plain apply with the same config still changes nothing.
. "$(dirname "$0")/lib.sh"
fw_topology
serve "$SRV" 0.0.0.0 8501
serve "$SRV" 0.0.0.0 9000
empty_ruleset() { [ -z "$(dump_ruleset "$SRV")" ]; }
# fallback CONF [ENV...]: apply --fallback with CONF, output in $out; it must exit 1
fallback() {
	local conf=$1 rc
	shift
	out=$(ip netns exec "$SRV" env "$@" "$B/tfguard" -c "$conf" apply --fallback 2>&1)
	rc=$?
	say "$out"
	[ $rc -eq 1 ] || fail "apply --fallback with $conf must exit 1, got $rc"
}
# fresh_fallback CONF [ENV...]: the same, from no table (as at boot)
fresh_fallback() {
	tfguard_ns "$SRV" remove >/dev/null || fail "remove"
	fallback "$@"
}
# says TEXT: the output of the last run contains TEXT
says() { grep -qF -- "$1" <<<"$out" || fail "the message lacks '$1': $out"; }

grep -q '^ExecStart=@SBINDIR@/tfguard apply --fallback$' "$TOP/systemd/tfguard-apply.service" ||
	fail "tfguard-apply.service does not run apply --fallback"
say "ok: the boot unit runs apply --fallback"

# a typo in [proxy], as after a reboot: no table yet
boot=$TFG_TMP/boot.conf
printf '[guard]\nprotected_ports = 8500, 8501, 9000\n[proxy]\nworkers = many\n' >"$boot"
check "9000 reachable before" reachable "$CLI" "$SRV4" 9000

out=$(tfguard_ns "$SRV" -c "$boot" apply 2>&1)
rc=$?
say "$out"
[ $rc -eq 1 ] || fail "plain apply with a bad config must exit 1, got $rc"
check "plain apply with a bad config installs nothing" empty_ruleset

fallback "$boot"
says "$boot:4: workers: 'many' is not a whole number"
says "FALLBACK POLICY INSTALLED"
says "TCP ports 8500, 8501, 9000 reachable from loopback only, from the [guard] section of $boot alone"
check "fallback from [guard]: 9000 dropped" unreachable "$CLI" "$SRV4" 9000
check "fallback from [guard]: 8501 dropped" unreachable "$CLI" "$SRV4" 8501
check "fallback from [guard]: loopback still reaches 8501" reachable "$SRV" 127.0.0.1 8501
guard_only=$TFG_TMP/guard.conf
printf '[guard]\nprotected_ports = 8500, 8501, 9000\n' >"$guard_only"
check "status with the [guard] section alone: current (the same policy)" \
	tfguard_ns "$SRV" -c "$guard_only" status

say "a table is installed: a broken config leaves it byte for byte"
only9000=$TFG_TMP/9000.conf
printf '[guard]\nprotected_ports = 9000\n' >"$only9000"
check "apply a 9000-only policy" tfguard_ns "$SRV" -c "$only9000" apply
unreachable "$CLI" "$SRV4" 9000 # move a counter
golden=$(dump_ruleset "$SRV")
grep -q 'packets [1-9]' <<<"$golden" || fail "no counter moved"
fallback "$boot"
says "$boot:4:"
says "stays as it is (nothing was changed)"
[ "$(dump_ruleset "$SRV")" = "$golden" ] || fail "apply --fallback changed an installed table"
say "ok: the installed table and its counters are unchanged"

say "[guard] itself broken: the built-in defaults (8500, 8501)"
both=$TFG_TMP/both.conf
printf '[proxy]\nworkers = many\n[guard]\nprotected_ports = 9000, lots\n' >"$both"
fresh_fallback "$both"
says "$both:2: workers"
says "TCP ports 8500, 8501 reachable from loopback only, from the built-in defaults"
says "$both:4: protected_ports: 'lots'"
check "defaults: 8501 dropped" unreachable "$CLI" "$SRV4" 8501
check "defaults: 9000 (not a default) reachable" reachable "$CLI" "$SRV4" 9000
check "status with an empty config: current (the defaults)" tfguard_ns "$SRV" status

say "CRLF, a comment after the header, [guard] in two parts"
crlf=$TFG_TMP/crlf.conf
printf '[guard]   # the firewall\r\nprotected_ports = 9000\r\n[proxy]\r\nworkers = many\r\n[ guard ]\r\nstrict = yes\r\n' >"$crlf"
fresh_fallback "$crlf"
says "$crlf:4: workers"
says "TCP ports 9000 reachable from loopback only, strict forwarding, from the [guard] section of $crlf alone"

say "a misspelled [guard] header: the built-in defaults, and it says so"
typo=$TFG_TMP/typo.conf
printf '[gaurd]\nprotected_ports = 9000\n' >"$typo"
fresh_fallback "$typo"
says "$typo:1:"
says "TCP ports 8500, 8501 reachable from loopback only, from the built-in defaults, as $typo has no [guard] section"

say "an unreadable config: the built-in defaults"
fresh_fallback "$TFG_TMP/missing.conf"
says "$TFG_TMP/missing.conf: No such file or directory"
check "status: the defaults are current" tfguard_ns "$SRV" status

say "the kernel refuses the fallback batch: nothing installed, and it says so"
fresh_fallback "$boot" TFGUARD_TEST_FAULT=3
says 'rule "test fault": refused by the kernel'
says "NO tfguard FIREWALL IS INSTALLED"
check "nothing was installed" empty_ruleset

say "a good config: apply --fallback is plain apply"
out=$(tfguard_ns "$SRV" -c "$guard_only" apply --fallback 2>&1)
[ $? -eq 0 ] || fail "apply --fallback with a good config must exit 0: $out"
says "applied: TCP ports 8500, 8501, 9000"
check "status: current" tfguard_ns "$SRV" -c "$guard_only" status
pass
