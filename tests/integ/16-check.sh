#!/bin/bash
# tfguard check: a host where everything is right is compliant (exit 0); then,
# one at a time, each fault flips exactly the expected control, with evidence,
# and --json parses.
. "$(dirname "$0")/lib.sh"
fw_topology
netns_new OTHER

conf=$TFG_TMP/tfguard.conf
htp=$TFG_TMP/htpasswd
htpasswd -nbB -C 10 alice 'correct horse' >"$htp" || fail "htpasswd -B"
chmod 0640 "$htp"
cat >"$conf" <<CONF
[proxy]
htpasswd = $htp
[limits]
default = 100r/s
CONF
serve "$SRV" 127.0.0.1 8501  # a loopback-only backend
check "apply" tfguard_ns "$SRV" -c "$conf" apply

# run_check [ARGS]: check scoped to this test's namespaces; sets OUT, JSON, RC
run_check() {
	OUT=$(tfguard_ns "$SRV" -c "$conf" check --netns "$SRV,$OTHER" "$@")
	RC=$?
	JSON=$(tfguard_ns "$SRV" -c "$conf" check --netns "$SRV,$OTHER" --json)
	jq -e . >/dev/null <<<"$JSON" || fail "--json does not parse: $JSON"
}
status_of() { jq -r --arg id "$1" '.controls[] | select(.id == $id) | .status' <<<"$JSON"; }
evidence_of() { jq -r --arg id "$1" '.controls[] | select(.id == $id) | .evidence[]' <<<"$JSON"; }
# expect_flip ID: exactly control ID fails now; every other control as in the baseline
expect_flip() {
	local id=$1 c got
	[ "$RC" -eq 3 ] || fail "$id: check must exit 3, got $RC"
	for c in $(jq -r '.controls[].id' <<<"$JSON"); do
		got=$(status_of "$c")
		if [ "$c" = "$id" ]; then
			[ "$got" = fail ] || fail "$id: expected fail, got $got"
		else
			[ "$got" = "${BASE[$c]}" ] || fail "$id: control $c changed too ($got, was ${BASE[$c]})"
		fi
	done
	say "ok: only $id failed: $(evidence_of "$id" | head -2 | tr '\n' ' ')"
}

run_check --junit "$TFG_TMP/junit.xml"
say "$OUT"
[ "$RC" -eq 0 ] || fail "a correct host must be compliant (exit $RC)"
jq -e '.compliant == true and (.controls | length) >= 10' <<<"$JSON" >/dev/null || fail "json"
grep -q '<testsuite name="tfguard check"' "$TFG_TMP/junit.xml" || fail "no JUnit XML"
declare -A BASE
for c in $(jq -r '.controls[].id' <<<"$JSON"); do BASE[$c]=$(status_of "$c"); done
[ "${BASE[NET-1]}" = pass ] && [ "${BASE[FW-3]}" = pass ] && [ "${BASE[AUTH-2]}" = pass ] ||
	fail "baseline not clean: $(jq -c '[.controls[] | {id, status}]' <<<"$JSON")"

say "fault: a rule edited in place"
h=$(in_ns "$SRV" nft -a list chain inet tfguard prerouting | sed -n 's/.*protected port from outside.*# handle \([0-9]*\)/\1/p')
in_ns "$SRV" nft replace rule inet tfguard prerouting handle "$h" \
	fib daddr type local tcp dport 8500 counter drop comment '"tfguard: protected port from outside"' ||
	fail "cannot edit the rule"
run_check
expect_flip FW-3
evidence_of FW-3 | grep -q 'was changed' || fail "FW-3 evidence: $(evidence_of FW-3)"
tfguard_ns "$SRV" -c "$conf" apply >/dev/null

say "fault: table removed"
in_ns "$SRV" nft delete table inet tfguard
run_check
[ "$(status_of FW-1)" = fail ] || fail "FW-1 must fail without the table"
[ "$RC" -eq 3 ] || fail "exit $RC"
tfguard_ns "$SRV" -c "$conf" apply >/dev/null

say "fault: a public listener in a second namespace"
serve "$OTHER" 0.0.0.0 8501
run_check
expect_flip NET-1
evidence_of NET-1 | grep -q "netns $OTHER: 0.0.0.0:8501 listens, pid [0-9]* (python3)" ||
	fail "NET-1 evidence must name namespace, address, pid and command: $(evidence_of NET-1)"
kill "$BG_PID"; wait "$BG_PID" 2>/dev/null
poll 3000 bash -c "! ip netns exec $OTHER ss -Hltn 'sport = :8501' | grep -q ." || fail "listener still there"

say "fault: route_localnet=1 (firewall present: warn only)"
in_ns "$SRV" sysctl -qw net.ipv4.conf.all.route_localnet=1
run_check
[ "$(status_of NET-2)" = warn ] || fail "NET-2 must warn when the firewall covers it"
[ "$RC" -eq 0 ] || fail "a warning must not make the host non-compliant"
in_ns "$SRV" nft delete table inet tfguard
run_check
[ "$(status_of NET-2)" = fail ] || fail "NET-2 must fail without the firewall"
in_ns "$SRV" sysctl -qw net.ipv4.conf.all.route_localnet=0
tfguard_ns "$SRV" -c "$conf" apply >/dev/null

say "fault: world-readable htpasswd"
chmod 0644 "$htp"
run_check
expect_flip AUTH-1
evidence_of AUTH-1 | grep -q 'world-readable' || fail "AUTH-1 evidence"
chmod 0640 "$htp"

say "fault: a {SHA} user"
printf 'bob:{SHA}%s\n' "$(printf 'secret' | openssl dgst -binary -sha1 | base64)" >>"$htp"
run_check
[ "$(status_of AUTH-2)" = warn ] || fail "AUTH-2 must warn on {SHA}"
evidence_of AUTH-2 | grep -q 'user bob: unsalted SHA-1' || fail "AUTH-2 evidence: $(evidence_of AUTH-2)"
[ "$RC" -eq 0 ] || fail "a weak hash is a warning, not a failure"

say "not root: still runs, marks what it cannot see"
chmod 0755 "$TFG_TMP"; chmod 0644 "$conf"
out=$(ip netns exec "$SRV" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
	--bounding-set=-all "$B/tfguard" -c "$conf" check --json)
jq -e '.controls[] | select(.id == "FW-1") | .status == "skipped"' <<<"$out" >/dev/null ||
	fail "FW-1 must be skipped without root: $out"
jq -e '.controls[] | select(.id == "FW-1") | .evidence[0] | test("needs root")' <<<"$out" >/dev/null ||
	fail "the skip must say it needs root"
pass
