#!/bin/bash
# Replacing, failing and removing: apply twice gives the same ruleset; a new
# port list replaces the table with no window (no SYN of a prober in the client
# is ever answered by the server); a batch the kernel refuses, a bad config and a caller without
# CAP_NET_ADMIN leave the previous table and its counters exactly as they were;
# remove restores reachability and is idempotent; other tables are untouched.
. "$(dirname "$0")/lib.sh"
fw_topology
serve "$SRV" 0.0.0.0 8501
serve "$SRV" 0.0.0.0 9000

in_ns "$SRV" nft -f - <<'NFT' || fail "cannot install the unrelated tables"
table inet other {
	chain input {
		type filter hook input priority 10; policy accept;
		tcp dport 22 counter accept comment "someone else's rule"
	}
}
table ip legacy {
	chain output {
		type filter hook output priority 0; policy accept;
	}
}
NFT
others() { dump_ruleset "$SRV" | sed -n '/^table inet other/,/^}/p;/^table ip legacy/,/^}/p'; }
others_before=$(others)

check "apply" tfguard_ns "$SRV" apply
genid() { tfguard_ns "$SRV" status --json | jq .genid; }
g1=$(genid)
first=$(dump_ruleset "$SRV")
check "apply again" tfguard_ns "$SRV" apply
[ "$(dump_ruleset "$SRV")" = "$first" ] || fail "a second apply changed the ruleset"
say "ok: apply twice gives an identical ruleset"
g2=$(genid)
# one apply is one transaction: the ruleset generation moves by exactly one
[ "$g2" -eq $((g1 + 1)) ] || fail "apply moved the generation from $g1 to $g2, not by one"
say "ok: generation $g1 -> $g2: the whole replace was one transaction"

say "a dormant table (rules inactive) is not current"
in_ns "$SRV" nft add table inet tfguard '{ flags dormant; }'
out=$(tfguard_ns "$SRV" status)
[ $? -eq 3 ] || fail "status must exit 3 for a dormant table"
grep -q 'dormant' <<<"$out" || fail "status must say the table is dormant: $out"
check "apply revives it" tfguard_ns "$SRV" apply
check "and status is current again" tfguard_ns "$SRV" status

# a prober in the client sends SYNs to 8501 for as long as the re-applies run;
# the server side counts every SYN-ACK its kernel sends back to the client (an
# nft counter in the output hook, in a table of its own): any SYN that got
# through the firewall, even for a moment, is answered and counted, whether or
# not the handshake could complete and however loaded the machine is.
conf9000=$TFG_TMP/9000.conf
printf '[guard]\nprotected_ports = 8500, 8501, 9000\n' >"$conf9000"
check "9000 reachable before it is protected" reachable "$CLI" "$SRV4" 9000
in_ns "$SRV" nft -f - <<NFT || fail "cannot install the SYN-ACK counter"
table inet gapcount {
	counter synack { }
	chain output {
		type filter hook output priority 0; policy accept;
		ip daddr $CLI4 tcp sport 8501 tcp flags & (syn | ack) == syn | ack counter name "synack"
	}
}
NFT
synacks() { in_ns "$SRV" nft list counter inet gapcount synack | grep -o 'packets [0-9]*' | cut -d' ' -f2; }
# the counter can fail: without the table, a SYN from the client is answered
check "remove (to show the counter sees a SYN that gets through)" tfguard_ns "$SRV" remove
s0=$(synacks)
check "client -> 8501 with no table" reachable "$CLI" "$SRV4" 8501
[ "$(synacks)" -gt "$s0" ] || fail "the SYN-ACK counter did not count an open 8501"
check "apply again" tfguard_ns "$SRV" apply
stop=$TFG_TMP/stop
cat >"$TFG_TMP/probe.py" <<'PY'
import os, socket, sys, time
host, stop, out = sys.argv[1], sys.argv[2], sys.argv[3]
tries = 0
deadline = time.time() + 60          # bounded even if the test dies
while not os.path.exists(stop) and time.time() < deadline:
    # connect() sends the SYN before it returns; the server counts what answers it
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex((host, 8501))
    s.close()
    tries += 1
    time.sleep(0.0005)
open(out, "w").write("%d\n" % tries)
PY
s0=$(synacks)
bg ip netns exec "$CLI" "$PY" "$TFG_TMP/probe.py" "$SRV4" "$stop" "$TFG_TMP/probe.out"
prober=$BG_PID
# replace back and forth for at least 2 s (bounded: at most 300 rounds)
end=$(($(date +%s%3N) + 2000))
rounds=0
while [ "$(date +%s%3N)" -lt "$end" ] && [ $rounds -lt 300 ]; do
	tfguard_ns "$SRV" -c "$conf9000" apply >/dev/null || fail "apply with 9000 ($rounds)"
	tfguard_ns "$SRV" apply >/dev/null || fail "apply default ($rounds)"
	rounds=$((rounds + 1))
done
tfguard_ns "$SRV" -c "$conf9000" apply >/dev/null || fail "apply with 9000"
touch "$stop"
wait "$prober"
read -r tries <"$TFG_TMP/probe.out"
got=$(($(synacks) - s0))
say "prober: $tries SYNs during $((2 * rounds + 1)) replacements, the server answered $got"
[ "$tries" -ge 100 ] || fail "the prober sent only $tries SYNs"
[ "$got" -eq 0 ] || fail "$got SYNs got through while the table was being replaced"
in_ns "$SRV" nft delete table inet gapcount
check "9000 now protected" unreachable "$CLI" "$SRV4" 9000
check "status with the new config: current" tfguard_ns "$SRV" -c "$conf9000" status
check_not "status with the old config: stale" tfguard_ns "$SRV" status

# some traffic so that counters are not zero, then three ways to fail
unreachable "$CLI" "$SRV4" 8501
golden=$(dump_ruleset "$SRV")
grep -q 'packets [1-9]' <<<"$golden" || fail "no counter moved before the failure tests"

out=$(TFGUARD_TEST_FAULT=4 tfguard_ns "$SRV" apply 2>&1)
rc=$?
say "$out"
[ $rc -eq 1 ] || fail "a refused batch must exit 1, got $rc"
grep -q 'rule "test fault": refused by the kernel' <<<"$out" || fail "error does not name the object"
grep -q 'nothing was changed' <<<"$out" || fail "error does not say nothing was changed"
[ "$(dump_ruleset "$SRV")" = "$golden" ] || fail "the failed batch changed the ruleset"
say "ok: refused batch (after the old table was deleted inside it) left everything as it was"

bad=$TFG_TMP/bad.conf
printf '[guard]\nprotected_ports = 8500, 8501\nlog_drops = sometimes\n' >"$bad"
out=$(tfguard_ns "$SRV" -c "$bad" apply 2>&1)
rc=$?
say "$out"
[ $rc -eq 1 ] || fail "bad config must exit 1, got $rc"
grep -qF "$bad:3: log_drops: 'sometimes' is not yes or no" <<<"$out" || fail "error lacks file:line"
[ "$(dump_ruleset "$SRV")" = "$golden" ] || fail "a bad config changed the ruleset"

# -c /dev/null: the built-in defaults, never the host's /etc/tfguard/tfguard.conf
out=$(ip netns exec "$SRV" setpriv --reuid=65534 --regid=65534 --clear-groups \
	--inh-caps=-all --bounding-set=-all "$B/tfguard" -c /dev/null apply 2>&1)
rc=$?
say "$out"
[ $rc -eq 1 ] || fail "apply without privileges must exit 1, got $rc"
grep -q 'CAP_NET_ADMIN' <<<"$out" || fail "the error does not say what to do"
[ "$(dump_ruleset "$SRV")" = "$golden" ] || fail "an unprivileged apply changed the ruleset"

out=$(tfguard_ns "$SRV" apply --bogus 2>&1)
[ $? -eq 2 ] || fail "an unknown option must exit 2: $out"

check "remove" tfguard_ns "$SRV" remove
check "8501 reachable again after remove" reachable "$CLI" "$SRV4" 8501
out=$(tfguard_ns "$SRV" remove)
rc=$?
say "$out"
[ $rc -eq 0 ] || fail "a second remove must exit 0"
grep -q 'nothing to remove' <<<"$out" || fail "a second remove must say there was nothing"
[ "$(others)" = "$others_before" ] || fail "unrelated tables were changed"
say "ok: unrelated tables untouched"
pass
