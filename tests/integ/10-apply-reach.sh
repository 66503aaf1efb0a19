#!/bin/bash
# tfguard apply: protected ports reachable from loopback only, IPv4 and IPv6;
# an unprotected port stays reachable; status reports it with counters.
. "$(dirname "$0")/lib.sh"
fw_topology

serve "$SRV" 0.0.0.0 8501	# like TF Serving's REST fallback
serve "$SRV" :: 8500 0		# dual-stack, like gRPC's wildcard
serve "$SRV" 0.0.0.0 9000	# unprotected

say "before apply: everything is reachable from the client"
check "client -> $SRV4:8501" reachable "$CLI" "$SRV4" 8501
check "client -> $SRV4:8500 (dual-stack socket, IPv4)" reachable "$CLI" "$SRV4" 8500
check "client -> [$SRV6]:8500" reachable "$CLI" "$SRV6" 8500
check "client -> $SRV4:9000" reachable "$CLI" "$SRV4" 9000
check_not "status before apply is not compliant" tfguard_ns "$SRV" status

check "apply" tfguard_ns "$SRV" apply

say "after apply"
check "client -/-> $SRV4:8501" unreachable "$CLI" "$SRV4" 8501
check "client -/-> $SRV4:8500" unreachable "$CLI" "$SRV4" 8500
check "client -/-> [$SRV6]:8500" unreachable "$CLI" "$SRV6" 8500
check "client -> $SRV4:9000 (unprotected) still reachable" reachable "$CLI" "$SRV4" 9000
check "server -> 127.0.0.1:8501" reachable "$SRV" 127.0.0.1 8501
check "server -> 127.0.0.1:8500" reachable "$SRV" 127.0.0.1 8500
check "server -> [::1]:8500" reachable "$SRV" ::1 8500
# pitfall 4 of the research: the host's own connections to its own addresses
# arrive on lo, so they are local traffic and are accepted.
check "server -> its own $SRV4:8501 (arrives on lo)" reachable "$SRV" "$SRV4" 8501

out=$(tfguard_ns "$SRV" status)
rc=$?
say "$out"
[ $rc -eq 0 ] || fail "status after apply: exit $rc, want 0"
grep -q "installed and current" <<<"$out" || fail "status does not say current"

json=$(tfguard_ns "$SRV" status --json) || fail "status --json failed"
jq -e '.installed and .current and .rules_match' <<<"$json" >/dev/null || fail "json: $json"
jq -e '.installed_ports == [8500, 8501]' <<<"$json" >/dev/null || fail "json ports: $json"
drops=$(jq '[.rules[] | select(.verdict == "drop") | .packets] | add' <<<"$json")
say "drop counters: $drops packets"
[ "$drops" -gt 0 ] || fail "the drop rule counted nothing after blocked connections"

# golden dump: the exact table the default policy installs (DUMPGEN=1 regenerates)
dump=$(ip netns exec "$SRV" nft list table inet tfguard | sed -E 's/packets [0-9]+ bytes [0-9]+/packets 0 bytes 0/')
golden=$TOP/tests/integ/dumps/default.nft
if [ -n "${DUMPGEN:-}" ]; then printf '%s\n' "$dump" >"$golden"; fi
diff -u "$golden" <(printf '%s\n' "$dump") || fail "installed table differs from $golden"
pass
