#!/bin/bash
# The command line: --help lists every command, usage errors exit 2, config
# errors exit 1 with FILE:LINE, print needs no privileges, `-c` after the
# command is the config unless it is another option's value, and a kernel
# without netfilter netlink gets a one-line error saying what to do.
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

say "-c after the command, and -c as the value of another option"
out=$("$T" print -c "$conf") || fail "print -c CONF after the command"
grep -q 'elements = { 8500, 9000 }' <<<"$out" || fail "-c after the command was not the config"
tok=$TFG_TMP/tokens
out=$("$T" -c "$conf" token -f "$tok" new -m -c bob 2>&1) ||
	fail "token new -m -c bob: '-c' is the comment, not the config: $out"
grep -q '^bob:[0-9a-f]\{64\}:created=[^ ]* -c$' "$tok" || fail "bob's token lacks the comment '-c': $(cat "$tok")"
"$T" -c "$conf" token --file "$tok" new --comm -c carol >/dev/null 2>&1 ||
	fail "an abbreviated --comment takes -c as its value"
"$T" token -f "$tok" new -m x -c "$conf" dave >/dev/null 2>&1 || fail "token ... -c CONF dave"
grep -q '^carol:.* -c$' "$tok" || fail "carol's comment"
grep -q '^dave:.* x$' "$tok" || fail "dave's comment"
say "ok: '-c' as an option's value stays that option's value"

say "no netfilter netlink in the kernel (socket() fails with EPROTONOSUPPORT)"
need_cmd cc
cat >"$TFG_TMP/nonfnl.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/netlink.h>
#include <sys/socket.h>
/* what a kernel without nfnetlink answers (netlink_create: no such protocol) */
int socket(int domain, int type, int protocol)
{
	static int (*real)(int, int, int);

	if (domain == AF_NETLINK && protocol == NETLINK_NETFILTER) {
		errno = EPROTONOSUPPORT;
		return -1;
	}
	if (!real)
		real = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
	return real(domain, type, protocol);
}
C
cc -shared -fPIC -o "$TFG_TMP/nonfnl.so" "$TFG_TMP/nonfnl.c" -ldl || fail "cannot build the shim"
for c in status apply remove; do
	# (the ASan build would otherwise insist on its runtime coming first)
	out=$(ASAN_OPTIONS=verify_asan_link_order=0 LD_PRELOAD=$TFG_TMP/nonfnl.so \
		"$T" -c "$conf" $c 2>&1)
	rc=$?
	say "$c: $out"
	[ $rc -eq 1 ] || fail "$c without nf_tables: exit $rc, want 1"
	[ "$(wc -l <<<"$out")" -eq 1 ] || fail "$c without nf_tables: not one line"
	grep -q 'Protocol not supported (the kernel has no nf_tables: modprobe nf_tables, or use a kernel built with CONFIG_NF_TABLES' <<<"$out" ||
		fail "$c without nf_tables does not say what to do"
done
pass
