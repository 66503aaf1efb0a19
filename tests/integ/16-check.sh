#!/bin/bash
# tfguard check: a host where everything is right is compliant (exit 0); then,
# one at a time, each fault flips exactly the expected control, with evidence,
# and --json parses. The host runs the TF Serving stand-in under tfguard-run and
# a real tfguard-proxy, all inside the test's namespaces.
. "$(dirname "$0")/lib.sh"
fw_topology
netns_new OTHER
need_cmd openssl htpasswd

chmod 0755 "$TFG_TMP"
conf=$TFG_TMP/tfguard.conf
htp=$TFG_TMP/users.htpasswd
htpasswd -nbB -C 10 alice 'correct horse' >"$htp" || fail "htpasswd -B"
chmod 0640 "$htp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 90 \
	-subj /CN=localhost -keyout "$TFG_TMP/key.pem" -out "$TFG_TMP/cert.pem" 2>/dev/null ||
	fail "openssl req"
chmod 0600 "$TFG_TMP/key.pem"
cat >"$conf" <<CONF
[proxy]
listen = 127.0.0.1:8443
tls_cert = $TFG_TMP/cert.pem
tls_key = $TFG_TMP/key.pem
backend_rest = 127.0.0.1:8501
htpasswd = $htp
user = nobody
[limits]
default = 100r/s
CONF
bg ip netns exec "$SRV" "$B/tfguard-run" -c "$conf" -- "$PY" "$TOP/tests/helpers/tfserving_stub.py" \
	--host 0.0.0.0 --port 8501
wait_port "$SRV" 8501 5000
bg ip netns exec "$SRV" "$B/tfguard-proxy" -c "$conf"
wait_port "$SRV" 8443 5000
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
# expect_flip ID [OTHER=STATUS...]: control ID fails now; every other control is as in
# the baseline, except the OTHER ones named (a fault that is also another finding)
expect_flip() {
	local id=$1 c got want
	shift
	[ "$RC" -eq 3 ] || fail "$id: check must exit 3, got $RC"
	for c in $(jq -r '.controls[].id' <<<"$JSON"); do
		got=$(status_of "$c")
		want=${BASE[$c]}
		for o in "$@"; do [ "${o%%=*}" = "$c" ] && want=${o#*=}; done
		if [ "$c" = "$id" ]; then
			[ "$got" = fail ] || fail "$id: expected fail, got $got"
		else
			[ "$got" = "$want" ] || fail "$id: control $c changed too ($got, expected $want)"
		fi
	done
	say "ok: only $id failed: $(evidence_of "$id" | head -2 | tr '\n' ' ')"
}

run_check --junit "$TFG_TMP/junit.xml"
say "$OUT"
[ "$RC" -eq 0 ] || fail "a correct host must be compliant (exit $RC)"
# the 17 controls of the README's table, each once
jq -e '.compliant == true and (.controls | length) == 17 and ([.controls[].id] | unique | length) == 17' \
	<<<"$JSON" >/dev/null || fail "json: $(jq -c '[.compliant, [.controls[].id]]' <<<"$JSON")"
grep -q '<testsuite name="tfguard check"' "$TFG_TMP/junit.xml" || fail "no JUnit XML"
"$PY" -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$TFG_TMP/junit.xml" ||
	fail "the JUnit file is not well-formed XML"
declare -A BASE
for c in $(jq -r '.controls[].id' <<<"$JSON"); do BASE[$c]=$(status_of "$c"); done
jq -e '[.controls[] | select(.status != "pass")] | length == 0' <<<"$JSON" >/dev/null ||
	fail "baseline not all pass: $(jq -c '[.controls[] | {id, status}]' <<<"$JSON")"
say "ok: baseline: all $(jq '.controls | length' <<<"$JSON") controls pass"

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
# without the table its digest, its rules and the DNAT coverage are gone too
expect_flip FW-1 FW-2=fail FW-3=fail FW-4=fail
evidence_of FW-1 | grep -qx 'no table inet tfguard in this network namespace' ||
	fail "FW-1 evidence: $(evidence_of FW-1)"
tfguard_ns "$SRV" -c "$conf" apply >/dev/null

say "fault: a public listener in a second namespace"
serve "$OTHER" 0.0.0.0 8501
run_check
# the same listener is also not under tfguard-run: RUN-1 warns about it too
expect_flip NET-1 RUN-1=warn
evidence_of NET-1 | grep -q "netns $OTHER: 0.0.0.0:8501 listens, pid [0-9]* (python3)" ||
	fail "NET-1 evidence must name namespace, address, pid and command: $(evidence_of NET-1)"
kill "$BG_PID"; wait "$BG_PID" 2>/dev/null
poll 3000 bash -c "! ip netns exec $OTHER ss -Hltn 'sport = :8501' | grep -q ." || fail "listener still there"

say "fault: a listener whose namespace is held by its socket alone (no process, no name in it)"
netns_new GHOST
cat >"$TFG_TMP/ghost.py" <<'PYEOF'
# creates a listener inside namespace argv[1], moves back home, and holds it
import ctypes, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
home = os.open("/proc/self/ns/net", os.O_RDONLY)
there = os.open("/run/netns/" + sys.argv[1], os.O_RDONLY)
if libc.setns(there, 0x40000000) != 0:
    sys.exit("setns: %d" % ctypes.get_errno())
s = socket.socket()
s.bind(("0.0.0.0", 8501))
s.listen()
libc.setns(home, 0x40000000)
os.close(there)
print("ready", flush=True)
time.sleep(120)
PYEOF
bg "$PY" "$TFG_TMP/ghost.py" "$GHOST"
GHOST_PID=$BG_PID
poll 5000 bash -c "ip netns exec $GHOST ss -Hltn 'sport = :8501' | grep -q ." || fail "ghost listener"
ip netns del "$GHOST"  # only the socket keeps the namespace alive now
OUT=$(tfguard_ns "$SRV" -c "$conf" check --json)
jq -e '.controls[] | select(.id == "NET-1") | .status == "fail"' <<<"$OUT" >/dev/null ||
	fail "NET-1 must find a listener in a namespace held only by its socket: $(jq -c '.controls[] | select(.id == "NET-1")' <<<"$OUT")"
jq -r '.controls[] | select(.id == "NET-1") | .evidence[]' <<<"$OUT" |
	grep -Eq "^netns net:\[[0-9]+\]: 0.0.0.0:8501 listens, pid $GHOST_PID \(python3\)" ||
	fail "NET-1 evidence must name the unnamed namespace (net:[INODE]) and the holder: $(jq -c '.controls[] | select(.id == "NET-1")' <<<"$OUT")"
say "ok: $(jq -r '.controls[] | select(.id == "NET-1") | .evidence[0]' <<<"$OUT")"
kill "$GHOST_PID"; wait "$GHOST_PID" 2>/dev/null

say "fault: DNAT onto a protected port in another table (reported, covered)"
in_ns "$SRV" nft -f - <<NFT || fail "nat table"
table ip pub {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 9501 dnat to 127.0.0.1:8501
		tcp dport 9502 redirect to :8500
	}
}
NFT
run_check
[ "$(status_of FW-4)" = pass ] || fail "FW-4 with coverage must pass"
evidence_of FW-4 | grep -q 'DNAT onto port 8501: covered' || fail "FW-4 must report the dnat: $(evidence_of FW-4)"
evidence_of FW-4 | grep -q 'redirect onto port 8500: covered' || fail "FW-4 must report the redirect: $(evidence_of FW-4)"
in_ns "$SRV" nft delete table ip pub

say "fault: route_localnet=1 (firewall present: warn only)"
in_ns "$SRV" sysctl -qw net.ipv4.conf.all.route_localnet=1
run_check
[ "$(status_of NET-2)" = warn ] || fail "NET-2 must warn when the firewall covers it"
[ "$RC" -eq 0 ] || fail "a warning must not make the host non-compliant"
evidence_of NET-2 | grep -qx "netns $SRV: net.ipv4.conf.all.route_localnet = 1 (covered: the tfguard firewall here drops it)" ||
	fail "NET-2 evidence (covered): $(evidence_of NET-2)"
in_ns "$SRV" nft delete table inet tfguard
run_check
[ "$(status_of NET-2)" = fail ] || fail "NET-2 must fail without the firewall"
evidence_of NET-2 | grep -qx "netns $SRV: net.ipv4.conf.all.route_localnet = 1 (and no tfguard firewall here)" ||
	fail "NET-2 evidence (no firewall): $(evidence_of NET-2)"
in_ns "$SRV" sysctl -qw net.ipv4.conf.all.route_localnet=0
tfguard_ns "$SRV" -c "$conf" apply >/dev/null

say "fault: route_localnet=1 in the second namespace, which has no tfguard firewall: fail"
in_ns "$OTHER" sysctl -qw net.ipv4.conf.all.route_localnet=1
run_check
expect_flip NET-2
evidence_of NET-2 | grep -qx "netns $OTHER: net.ipv4.conf.all.route_localnet = 1 (and no tfguard table there)" ||
	fail "NET-2 evidence (other namespace, no table): $(evidence_of NET-2)"
tfguard_ns "$OTHER" -c "$conf" apply >/dev/null || fail "apply in $OTHER"
run_check
[ "$(status_of NET-2)" = warn ] || fail "NET-2 must only warn once that namespace has the firewall ($(status_of NET-2))"
[ "$RC" -eq 0 ] || fail "a warning must not make the host non-compliant ($RC)"
evidence_of NET-2 | grep -qx "netns $OTHER: net.ipv4.conf.all.route_localnet = 1 (a tfguard table is there)" ||
	fail "NET-2 evidence (other namespace, table): $(evidence_of NET-2)"
in_ns "$OTHER" sysctl -qw net.ipv4.conf.all.route_localnet=0
in_ns "$OTHER" nft delete table inet tfguard

say "fault: world-readable htpasswd"
chmod 0644 "$htp"
run_check
expect_flip AUTH-1
evidence_of AUTH-1 | grep -q 'world-readable' || fail "AUTH-1 evidence"
chmod 0640 "$htp"

say "fault: an expired certificate (same key)"
cp "$TFG_TMP/cert.pem" "$TFG_TMP/good-cert.pem"
mkdir -p "$TFG_TMP/ca" && : >"$TFG_TMP/ca/index.txt" && echo 01 >"$TFG_TMP/ca/serial"
cat >"$TFG_TMP/ca/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $TFG_TMP/ca/index.txt
new_certs_dir = $TFG_TMP/ca
serial = $TFG_TMP/ca/serial
default_md = sha256
policy = p
[p]
commonName = supplied
CNF
openssl req -new -key "$TFG_TMP/key.pem" -subj /CN=localhost -out "$TFG_TMP/ca/req.csr" 2>/dev/null &&
	openssl ca -batch -config "$TFG_TMP/ca/ca.cnf" -selfsign -keyfile "$TFG_TMP/key.pem" \
		-in "$TFG_TMP/ca/req.csr" -startdate 20200101000000Z -enddate 20200201000000Z \
		-out "$TFG_TMP/cert.pem" >/dev/null 2>&1 || fail "cannot make an expired certificate"
run_check
expect_flip TLS-3
evidence_of TLS-3 | grep -q 'EXPIRED' || fail "TLS-3 evidence: $(evidence_of TLS-3)"
cp "$TFG_TMP/good-cert.pem" "$TFG_TMP/cert.pem"

say "fault: a {SHA} user"
printf 'bob:{SHA}%s\n' "$(printf 'secret' | openssl dgst -binary -sha1 | base64)" >>"$htp"
run_check
[ "$(status_of AUTH-2)" = warn ] || fail "AUTH-2 must warn on {SHA}"
evidence_of AUTH-2 | grep -q 'user bob: unsalted SHA-1' || fail "AUTH-2 evidence: $(evidence_of AUTH-2)"
[ "$RC" -eq 0 ] || fail "a weak hash is a warning, not a failure"

say "not root: still runs, marks what it cannot see"
chmod 0644 "$conf"
out=$(ip netns exec "$SRV" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
	--bounding-set=-all "$B/tfguard" -c "$conf" check --json)
jq -e '.controls[] | select(.id == "FW-1") | .status == "skipped"' <<<"$out" >/dev/null ||
	fail "FW-1 must be skipped without root: $out"
jq -e '.controls[] | select(.id == "FW-1") | .evidence[0] | test("needs root")' <<<"$out" >/dev/null ||
	fail "the skip must say it needs root"
jq -e '.compliant == false and .complete == false' <<<"$out" >/dev/null ||
	fail "without root the audit is incomplete, never compliant"
jq -e '.controls[] | select(.id == "AUTH-1") | .status != "fail"' <<<"$out" >/dev/null ||
	fail "an unreadable file must not be a failure without root"
ip netns exec "$SRV" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
	--bounding-set=-all "$B/tfguard" -c "$conf" check >/dev/null
[ $? -eq 3 ] || fail "an incomplete audit must exit 3 without root"
pass
