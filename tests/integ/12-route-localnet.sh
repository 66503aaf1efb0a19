#!/bin/bash
# CVE-2020-8558 class: with route_localnet=1 a neighbour can route to the
# server's 127.x addresses. A service bound to 127.0.0.99:8500 must not be
# reachable from the client after apply (binding to loopback alone is not enough).
. "$(dirname "$0")/lib.sh"
fw_topology
for ns in "$SRV" "$CLI"; do
	in_ns "$ns" sysctl -qw net.ipv4.conf.all.route_localnet=1
done
in_ns "$SRV" sysctl -qw "net.ipv4.conf.$SRV_IF.route_localnet=1"
in_ns "$CLI" sysctl -qw "net.ipv4.conf.$CLI_IF.route_localnet=1"
ip -n "$CLI" route add 127.0.0.99/32 via "$SRV4"
serve "$SRV" 127.0.0.99 8500

check "before: client reaches 127.0.0.99:8500 through route_localnet" \
	reachable "$CLI" 127.0.0.99 8500
check "apply" tfguard_ns "$SRV" apply
check "after: client -/-> 127.0.0.99:8500" unreachable "$CLI" 127.0.0.99 8500
check "after: the server still reaches it" reachable "$SRV" 127.0.0.99 8500
pass
