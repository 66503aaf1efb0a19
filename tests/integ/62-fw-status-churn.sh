#!/bin/bash
# status, remove and check read the ruleset while other programs change it: a
# read that the kernel flags as interrupted (NLM_F_DUMP_INTR, libmnl: EINTR) or
# that sees the generation id move is read again, so every run succeeds. A
# churner adds and deletes an unrelated table (one transaction each, about
# 1500 a second) for the whole test; the runs are bounded (200 status, 30 check,
# 50 apply + remove).
. "$(dirname "$0")/lib.sh"
need_root
need_cmd nft "$PY"
netns_new NS
stop=$TFG_TMP/stop
cat >"$TFG_TMP/churn.py" <<'PY'
import os, socket, struct, sys, time
# churn.py STOPFILE SECONDS RATE: add and delete table ip tfg_churn, one
# transaction each, at most RATE pairs a second, until STOPFILE exists.
stop, secs, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
s.bind((0, 0))
seq = 1
def msg(typ, flags, family, payload=b"", res_id=0):
    global seq
    body = struct.pack("=BBH", family, 0, socket.htons(res_id)) + payload
    seq += 1
    return struct.pack("=IHHII", 16 + len(body), typ, flags, seq, 0) + body
name = b"tfg_churn\0"
name = struct.pack("=HH", 4 + len(name), 1) + name  # NFTA_TABLE_NAME
name += b"\0" * (-len(name) % 4)
REQ, ACK, CREATE = 1, 4, 0x400
BEGIN, END, NEWTABLE, DELTABLE = 0x10, 0x11, 0xa00, 0xa02  # subsystem nftables (10)
n = 0
deadline = time.time() + secs
while not os.path.exists(stop) and time.time() < deadline:
    for typ, fl in ((NEWTABLE, REQ | ACK | CREATE), (DELTABLE, REQ | ACK)):
        s.send(msg(BEGIN, REQ, 0, res_id=10) + msg(typ, fl, 2, name) + msg(END, REQ, 0, res_id=10))
        s.recv(65536)  # its ack: one transaction at a time
        n += 1
    time.sleep(1.0 / rate)
open(stop + ".n", "w").write("%d\n" % n)
PY
check "apply" tfguard_ns "$NS" apply
bg ip netns exec "$NS" "$PY" "$TFG_TMP/churn.py" "$stop" 300 2000
churner=$BG_PID
# the churner is running once the generation id moves on its own
gen() { tfguard_ns "$NS" status --json | jq .genid; }
g0=$(gen)
moved() { [ "$(gen)" != "$g0" ]; }
poll 5000 moved || fail "the churner does not change the ruleset"

fails=0
for i in $(seq 1 200); do
	if ! out=$(tfguard_ns "$NS" status 2>&1); then
		fails=$((fails + 1))
		say "status run $i: $(tail -n 1 <<<"$out")"
	fi
done
say "status: $fails of 200 runs failed"
[ "$fails" -eq 0 ] || fail "status failed while an unrelated table changed"

fails=0
for i in $(seq 1 30); do
	out=$(tfguard_ns "$NS" check --json 2>&1)
	if grep -q 'reading the ruleset' <<<"$out"; then
		fails=$((fails + 1))
		say "check run $i: $(grep -o 'reading the ruleset[^"]*' <<<"$out" | head -n 1)"
	fi
done
say "check: $fails of 30 runs could not read the ruleset"
[ "$fails" -eq 0 ] || fail "check could not read the ruleset while an unrelated table changed"

for i in $(seq 1 50); do
	out=$(tfguard_ns "$NS" remove 2>&1) || fail "remove run $i: $out"
	out=$(tfguard_ns "$NS" apply 2>&1) || fail "apply run $i: $out"
done
say "ok: 50 remove + apply runs"
touch "$stop"
wait "$churner"
say "the churner made $(cat "$stop.n") transactions"
check "the table is current after all of it" tfguard_ns "$NS" status
pass
