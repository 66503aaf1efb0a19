#!/bin/bash
# tfguard print writes the policy as nft input; loading it with `nft -f` must
# give the ruleset that apply installs (nft -j output compared, handles aside).
. "$(dirname "$0")/lib.sh"
need_root
need_cmd nft jq
netns_new A
netns_new N
conf=$TFG_TMP/t.conf
for variant in default logging; do
	if [ $variant = logging ]; then
		printf '[guard]\nprotected_ports = 8500, 8501, 9443\nlog_drops = yes\nlog_rate = 2r/s burst=4\nstrict = yes\n' >"$conf"
	else
		: >"$conf"
	fi
	check "$variant: apply" tfguard_ns "$A" -c "$conf" apply
	tfguard_ns "$A" -c "$conf" print >"$TFG_TMP/p.nft" || fail "print"
	check "$variant: nft -f of the printed text" in_ns "$N" nft -f "$TFG_TMP/p.nft"
	norm='walk(if type == "object" then del(.handle) else . end) | .nftables | map(select(has("metainfo") | not))'
	a=$(in_ns "$A" nft -j list table inet tfguard | jq -S "$norm")
	n=$(in_ns "$N" nft -j list table inet tfguard | jq -S "$norm")
	if [ "$a" != "$n" ]; then
		diff <(printf '%s\n' "$a") <(printf '%s\n' "$n")
		fail "$variant: apply and nft -f give different rulesets"
	fi
	say "ok: $variant: identical nft -j output ($(jq length <<<"$a") objects)"
	check "$variant: status reads the nft-loaded table as current" tfguard_ns "$N" -c "$conf" status
	check "$variant: loading it again replaces it" in_ns "$N" nft -f "$TFG_TMP/p.nft"
	[ "$(in_ns "$N" nft list table inet tfguard | grep -c "chain ")" = 3 ] || fail "duplicate chains"
done
pass
