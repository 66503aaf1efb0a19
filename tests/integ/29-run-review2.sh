#!/bin/bash
# tfguard-run, second review: (1) AF_SMC and SCTP sockets are refused (both can
# put a listener on a TCP/SCTP port without the bind the supervisor checks);
# (2) a caller with hundreds of supplementary groups cannot gain a group
# through a cut group list; (3) an AF_UNIX listener shows its own uid in
# SO_PEERCRED, not the supervisor's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/run-lib.sh"
run_need
need_cmd setpriv
run_topology
chmod 0755 "$TFG_TMP"

say "-- (1) AF_SMC and SCTP"
probe='
import errno, socket, sys
fam, typ, proto = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
try:
    socket.socket(fam, typ, proto).close()
    print("allowed")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
'
# family type protocol: SOCK_STREAM 1, SOCK_SEQPACKET 5; protocol 0 with SOCK_SEQPACKET
# is SCTP (the kernel's first protocol of that type)
for case in "43 1 0 AF_SMC" "2 1 132 SCTP-stream" "2 5 132 SCTP-seqpacket" \
	"2 5 0 inet-seqpacket-proto-0" "10 5 0 inet6-seqpacket-proto-0"; do
	set -- $case
	ctl=$(in_ns "$SRV" "$PY" -c "$probe" "$1" "$2" "$3" 2>/dev/null)
	got=$(in_ns "$SRV" "$RUN" -- "$PY" -c "$probe" "$1" "$2" "$3" 2>/dev/null)
	say "$4: without tfguard-run $ctl, under tfguard-run $got"
	[ "$ctl" != EPERM ] || fail "control: $4 must not be EPERM without tfguard-run"
	[ "$got" = EPERM ] || fail "$4 socket must be refused with EPERM by the filter, got $got"
done

say "-- (2) 400 supplementary groups do not make the caller a member of group 10"
mkdir -m 0770 "$TFG_TMP/g10" && chown root:10 "$TFG_TMP/g10"
groups=$(seq -s, 1000000 1000399),1099999
bindsock='
import errno, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.bind(sys.argv[1]); print("bound")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
'
ctl=$(setpriv --reuid=1000 --regid=1000 --groups="$groups" "$PY" -c "$bindsock" "$TFG_TMP/g10/a.sock")
say "control, without tfguard-run: $ctl"
[ "$ctl" = EACCES ] || fail "the control must be refused (got $ctl)"
got=$(in_ns "$SRV" setpriv --reuid=1000 --regid=1000 --groups="$groups" "$RUN" -- "$PY" -c "$bindsock" \
	"$TFG_TMP/g10/b.sock" 2>/dev/null)
say "under tfguard-run: $got"
[ "$got" != bound ] || fail "tfguard-run bound a socket in a directory the caller may not write"
[ ! -e "$TFG_TMP/g10/b.sock" ] || fail "b.sock exists"

say "-- (3) SO_PEERCRED of an AF_UNIX listener is the server's, not the supervisor's"
server='
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(4)
print("ready", flush=True)
c, _ = s.accept(); time.sleep(0.2)
'
mkdir -m 0777 "$TFG_TMP/peer"
bg ip netns exec "$SRV" setpriv --reuid=65534 --regid=65534 --clear-groups "$RUN" -- "$PY" -c "$server" \
	"$TFG_TMP/peer/s.sock"
poll 5000 test -S "$TFG_TMP/peer/s.sock" || fail "the AF_UNIX server did not start"
got=$("$PY" - "$TFG_TMP/peer/s.sock" <<'PYEOF'
import socket, struct, sys
c = socket.socket(socket.AF_UNIX)
c.connect(sys.argv[1])
pid, uid, gid = struct.unpack("3i", c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
print(uid, gid)
PYEOF
)
say "peer uid gid: $got"
[ "$got" = "65534 65534" ] || fail "SO_PEERCRED shows '$got', not the server's 65534 65534"
pass
