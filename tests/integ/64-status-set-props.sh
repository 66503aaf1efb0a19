#!/bin/bash
# status compares the set itself, not only its elements: the printed table
# loaded with set flags, a timeout, a size, a policy, a counter, per-element
# timeouts or comments (all things apply never sets) is STALE (exit 3), with
# the difference named; the printed table as is stays current. The timeout case
# is the reviewer's: status said "current" and 6 s later the set was empty.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd nft
netns_new NS
: >"$TFG_TMP/empty.conf"
"$B/tfguard" -c "$TFG_TMP/empty.conf" print >"$TFG_TMP/p.nft" || fail "print"
check "the printed table as is: current" in_ns "$NS" nft -f "$TFG_TMP/p.nft"
check "status: current" tfguard_ns "$NS" status

# variant NAME WANT SED: load the printed text edited by SED; status must exit 3
# and say WANT
variant() {
	local name=$1 want=$2 out rc
	sed "$3" "$TFG_TMP/p.nft" >"$TFG_TMP/v.nft"
	cmp -s "$TFG_TMP/p.nft" "$TFG_TMP/v.nft" && fail "$name: the edit changed nothing"
	in_ns "$NS" nft -f "$TFG_TMP/v.nft" || fail "$name: nft -f refused the edited table"
	out=$(tfguard_ns "$NS" status)
	rc=$?
	say "$name: $(head -n 1 <<<"$out")"
	[ $rc -eq 3 ] || fail "$name: status exit $rc, want 3 (stale)"
	grep -qF "STALE: set ports $want" <<<"$out" || fail "$name: status does not say '$want'"
	say "ok: $name: stale"
}
variant "timeouts" "has flags 0x10 (timeout)" \
	's/type inet_service/type inet_service; flags timeout/; s/elements = { 8500, 8501 }/elements = { 8500 timeout 1h, 8501 timeout 1h }/'
variant "set timeout" "has flags 0x10 (timeout)" 's/type inet_service/type inet_service; flags timeout; timeout 1h/'
variant "dynamic" "has flags 0x20 (dynamic)" 's/type inet_service/type inet_service; flags dynamic/'
variant "constant" "has flags 0x2 (constant)" 's/type inet_service/type inet_service; flags constant/'
variant "interval" "has flags 0x4 (interval)" 's/type inet_service/type inet_service; flags interval/'
variant "size" "has a size" 's/type inet_service/type inet_service; size 64/'
variant "policy" "has a policy" 's/type inet_service/type inet_service; policy memory/'
variant "set counter" "has an expression" 's/type inet_service/type inet_service; counter/'
variant "element comment" "element 8500 has a comment" 's/elements = { 8500,/elements = { 8500 comment "x",/'
check "apply repairs it" tfguard_ns "$NS" apply
check "status: current" tfguard_ns "$NS" status

say "elements that expire on their own"
sed 's/type inet_service/type inet_service; flags timeout/; s/elements = { 8500, 8501 }/elements = { 8500 timeout 2s, 8501 timeout 2s }/' \
	"$TFG_TMP/p.nft" | in_ns "$NS" nft -f - || fail "cannot load the 2 s variant"
out=$(tfguard_ns "$NS" status)
[ $? -eq 3 ] || fail "a set whose elements expire must be stale: $out"
expired() { ! in_ns "$NS" nft list set inet tfguard ports | grep -q 8501; }
poll 10000 expired || fail "the elements did not expire"
say "ok: the elements expired, as status warned they would"
pass
