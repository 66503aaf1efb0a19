#!/bin/bash
# tfguard-run: what is not TCP keeps working now that the supervisor performs
# every bind itself (no CONTINUE):
#  - netlink (SOCK_RAW, but not an IP socket): ip addr, ss, if_nameindex();
#    raw IP, SOCK_PACKET, AF_PACKET and AF_XDP sockets stay denied;
#  - AF_UNIX binds: abstract and autobind, and path binds made by the helper
#    with the caller's cwd, uid/gid, groups and umask: a relative path lands
#    in the caller's cwd, the socket belongs to the caller and has its umask,
#    and an unprivileged caller cannot bind in a directory it may not write.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/run-lib.sh"
run_need
need_cmd setpriv
[ -x "$H/sockprobe" ] || fail "$H/sockprobe not built"
run_topology

say "-- netlink"
in_ns "$SRV" "$RUN" -- ip -br addr >"$TFG_TMP/out" 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/out" "$TFG_TMP/err"
check "ip addr works under tfguard-run (rc $rc)" test "$rc" = 0
check "... and lists the veth address" grep -q "$SRV4" "$TFG_TMP/out"
in_ns "$SRV" "$RUN" -- ss -Hltn >/dev/null 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/err"
check "ss -ltn works under tfguard-run (rc $rc)" test "$rc" = 0
out=$(in_ns "$SRV" "$RUN" -- "$PY" -c 'import socket; print(sorted(n for _, n in socket.if_nameindex()))' 2>&1)
say "if_nameindex: $out"
check "python socket.if_nameindex() works (getifaddrs-style netlink dump)" grep -q "'lo'" <<<"$out"
out=$(in_ns "$SRV" "$RUN" -- "$PY" -c '
import socket
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.bind((0, 1))  # RTMGRP_LINK: a netlink bind that joins a group (helper path)
print("netlink groups bind ok", s.getsockname()[1])' 2>&1)
say "$out"
check "a netlink bind with multicast groups works" grep -q "netlink groups bind ok 1" <<<"$out"
# The supervisor binds on the caller's behalf; a port id of 0 must still come
# out as the caller's own pid, as the kernel gives it to a process binding
# itself (programs compare replies' nlmsg_pid with getpid()).
cat >"$TFG_TMP/nlpid.py" <<'PYEOF'
import os, socket
for groups in (0, 1):  # the supervisor's own bind, and the helper's
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    s.bind((0, groups))
    print("groups", groups, "portid-is-pid", s.getsockname()[0] == os.getpid())
    s.close()
taken = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
taken.bind((0, 0))
t = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
t.bind((0, 0))  # our pid is taken now: the kernel picks another id
print("second", t.getsockname()[0] != os.getpid() and t.getsockname()[0] != 0)
PYEOF
out=$(in_ns "$SRV" "$PY" "$TFG_TMP/nlpid.py" 2>&1)
say "control: $out"
check "control: without tfguard-run a netlink autobind takes the pid" \
	grep -q "groups 0 portid-is-pid True" <<<"$out"
out=$(in_ns "$SRV" "$RUN" -- "$PY" "$TFG_TMP/nlpid.py" 2>&1)
say "$out"
check "netlink port id 0 → the caller's pid (supervisor's bind)" \
	grep -q "groups 0 portid-is-pid True" <<<"$out"
check "netlink port id 0 → the caller's pid (helper's bind, with groups)" \
	grep -q "groups 1 portid-is-pid True" <<<"$out"
check "netlink: a second socket gets another id, as without tfguard-run" \
	grep -q "second True" <<<"$out"
check "socket(AF_NETLINK, SOCK_RAW) allowed" in_ns "$SRV" "$RUN" -- "$H/sockprobe" netlink
for p in raw raw6 sockpacket packet xdp; do
	out=$(in_ns "$SRV" "$H/sockprobe" "$p")
	check "control: $p is possible without tfguard-run ($out)" test "$?" = 0
	out=$(in_ns "$SRV" "$RUN" -- "$H/sockprobe" "$p")
	check "$p denied under tfguard-run ($out)" test "$?" = 1
done

say "-- AF_UNIX"
mkdir -p "$TFG_TMP/own" "$TFG_TMP/closed"
chown nobody:nogroup "$TFG_TMP/own"
chmod 0755 "$TFG_TMP/closed" "$TFG_TMP"
cat >"$TFG_TMP/ux.py" <<'PYEOF'
import os, socket, stat, sys
os.chdir(sys.argv[1])
os.umask(0o077)
s = socket.socket(socket.AF_UNIX)
s.bind("rel.sock")  # relative: the caller's cwd
st = os.stat("rel.sock")
print("rel", st.st_uid, st.st_gid, oct(stat.S_IMODE(st.st_mode)))
s.listen()
a = socket.socket(socket.AF_UNIX)
a.bind("\0tfg-abstract-%d" % os.getpid())
a.listen()
print("abstract ok")
b = socket.socket(socket.AF_UNIX)
b.bind("")
print("autobind ok", len(b.getsockname()) > 0)
c = socket.socket(socket.AF_UNIX)
try:
    c.bind(sys.argv[2] + "/x.sock")
    print("closed dir: bound")
except PermissionError:
    print("closed dir: EACCES")
PYEOF
for how in control guarded; do
	rm -f "$TFG_TMP/own/rel.sock"
	if [ "$how" = control ]; then
		pre=()
	else
		pre=("$RUN" --)
	fi
	in_ns "$SRV" "${pre[@]}" setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$PY" "$TFG_TMP/ux.py" "$TFG_TMP/own" "$TFG_TMP/closed" >"$TFG_TMP/out" 2>"$TFG_TMP/err"
	rc=$?
	cat "$TFG_TMP/out" "$TFG_TMP/err"
	check "$how: the AF_UNIX script ran (rc $rc)" test "$rc" = 0
	check "$how: relative path bound in the caller's cwd, owned by nobody:nogroup, mode 0700" \
		grep -qx 'rel 65534 65534 0o700' "$TFG_TMP/out"
	check "$how: abstract bind" grep -qx 'abstract ok' "$TFG_TMP/out"
	check "$how: autobind" grep -qx 'autobind ok True' "$TFG_TMP/out"
	check "$how: no bind in a directory nobody cannot write" grep -qx 'closed dir: EACCES' "$TFG_TMP/out"
	check_not "$how: ... and no socket file there" test -e "$TFG_TMP/closed/x.sock"
done
pass
