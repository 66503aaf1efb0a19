#!/bin/bash
# Docker-style published ports: the host DNATs 8501 -> container:8501 and
# 9501 -> container:8501 (a third namespace plays the container, nat rules
# like Docker's are installed by the test). After apply neither path reaches
# the container from the client, while the container still serves itself.
# A redirect or DNAT onto the host's own protected port (9502 -> 8501) is
# dropped in input. Strict mode also closes direct routing to the container.
. "$(dirname "$0")/lib.sh"
fw_topology
netns_new CTR
veth "$SRV" "$CTR" 172.30.0.1 172.30.0.2 fd98::1 fd98::2
CTR_IF_HOST=$VETH_A
ip -n "$CTR" route add default via 172.30.0.1
ip -n "$CTR" -6 route add default via fd98::1
ip -n "$CLI" route add 172.30.0.0/24 via "$SRV4"
in_ns "$SRV" sysctl -qw net.ipv4.ip_forward=1
in_ns "$SRV" sysctl -qw net.ipv6.conf.all.forwarding=1

serve "$CTR" 0.0.0.0 8501
serve "$SRV" :: 8500 0	# the host's own model server, dual-stack
serve "$SRV" 0.0.0.0 8501

in_ns "$SRV" nft -f - <<NFT || fail "cannot install the docker-like nat table"
table ip dockersim {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local tcp dport 8501 dnat to 172.30.0.2:8501
		fib daddr type local tcp dport 9501 dnat to 172.30.0.2:8501
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 172.30.0.0/24 oifname != "$CTR_IF_HOST" masquerade
	}
}
table inet redirsim {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 9502 redirect to :8501
		ip daddr $SRV4 tcp dport 9503 dnat ip to $SRV4:8500
		ip6 daddr $SRV6 tcp dport 9504 dnat ip6 to [$SRV6]:8500
	}
}
NFT
before=$(dump_ruleset "$SRV" | sed -n '/table ip dockersim/,/^}/p;/table inet redirsim/,/^}/p')

check "before: client -> $SRV4:8501 (DNAT to the container)" reachable "$CLI" "$SRV4" 8501
check "before: client -> $SRV4:9501 (DNAT 9501 -> 8501)" reachable "$CLI" "$SRV4" 9501
check "before: client -> 172.30.0.2:8501 (routed)" reachable "$CLI" 172.30.0.2 8501
check "before: client -> $SRV4:9502 (redirect onto the host's 8501)" reachable "$CLI" "$SRV4" 9502
check "before: client -> $SRV4:9503 (DNAT onto the host's own 8500)" reachable "$CLI" "$SRV4" 9503
check "before: client -> [$SRV6]:9504 (IPv6 DNAT onto the host's 8500)" reachable "$CLI" "$SRV6" 9504

check "apply" tfguard_ns "$SRV" apply
check "client -/-> $SRV4:8501 (same-port publish)" unreachable "$CLI" "$SRV4" 8501
check "client -/-> $SRV4:9501 (other-port publish onto 8501)" unreachable "$CLI" "$SRV4" 9501
check "client -/-> $SRV4:9502 (redirect onto the host)" unreachable "$CLI" "$SRV4" 9502
check "client -/-> $SRV4:9503 (DNAT onto the host)" unreachable "$CLI" "$SRV4" 9503
check "client -/-> [$SRV6]:9504 (IPv6 DNAT onto the host)" unreachable "$CLI" "$SRV6" 9504
check "container still serves its own clients" reachable "$CTR" 127.0.0.1 8501
check "container reachable from its own address" reachable "$CTR" 172.30.0.2 8501
# documented limit of the default policy: direct routing to the container's
# address is forwarding, not DNAT, so only strict mode closes it
check "default policy: direct routing to the container is not covered" \
	reachable "$CLI" 172.30.0.2 8501
json=$(tfguard_ns "$SRV" status --json)
dnat=$(jq '.rules[] | select(.comment | test("DNAT")) | .packets' <<<"$json")
[ "${dnat:-0}" -gt 0 ] || fail "the DNAT rule counted nothing: $json"
say "DNAT drop counter: $dnat packets"

conf=$TFG_TMP/strict.conf
printf '[guard]\nstrict = yes\n' >"$conf"
check "apply -c strict.conf" tfguard_ns "$SRV" -c "$conf" apply
check "strict: client -/-> 172.30.0.2:8501 (routed)" unreachable "$CLI" 172.30.0.2 8501
check "strict: client -/-> $SRV4:9501" unreachable "$CLI" "$SRV4" 9501
check "strict: container still serves itself" reachable "$CTR" 127.0.0.1 8501
check "strict: status current" tfguard_ns "$SRV" -c "$conf" status

after=$(dump_ruleset "$SRV" | sed -n '/table ip dockersim/,/^}/p;/table inet redirsim/,/^}/p')
[ "$before" = "$after" ] || fail "the docker-like nat table was changed"
say "ok: the nat table is untouched"
pass
