#!/bin/bash
# tfguard check finds a listener whose namespace is held only by a socket in a
# thread's private fd table (the thread unshared its fd table with
# unshare(CLONE_FILES), listened inside the namespace, moved back; the namespace
# was then deleted), and names the process holding it: fd tables are read per
# thread (/proc/PID/task/TID/fd) and reached with a PIDFD_THREAD pidfd.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/check_env.sh"
ck_setup

say "a namespace held only by a socket in a thread's private fd table"
netns_new GHOST
cat >"$TFG_TMP/tghost.py" <<'PYEOF'
# a thread unshares its fd table, listens inside namespace argv[1], moves back home
import ctypes, os, socket, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
def thread():
    if libc.unshare(0x400) != 0:  # CLONE_FILES
        sys.exit("unshare(CLONE_FILES): %d" % ctypes.get_errno())
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open("/run/netns/" + sys.argv[1], os.O_RDONLY)
    assert libc.setns(there, 0x40000000) == 0
    s = socket.socket()
    s.bind(("0.0.0.0", 8501))
    s.listen()
    assert libc.setns(home, 0x40000000) == 0
    os.close(there)
    os.close(home)
    print("ready", flush=True)
    time.sleep(120)
t = threading.Thread(target=thread)
t.start()
t.join()
PYEOF
bg "$PY" "$TFG_TMP/tghost.py" "$GHOST"
GPID=$BG_PID
poll 5000 bash -c "ip netns exec $GHOST ss -Hltn 'sport = :8501' | grep -q ." || fail "thread listener"
ip netns del "$GHOST" # only the thread's private socket keeps the namespace alive now
# shellcheck disable=SC2012
check "the socket is not in the process's (leader's) fd table" bash -c "! ls -l /proc/$GPID/fd | grep -q socket"
JSON=$(tfguard_ns "$NS" -c "$CK_CONF" check --json)
say "$(ck_evidence NET-1 | head -3)"
check "NET-1 finds it ($(ck_status NET-1))" [ "$(ck_status NET-1)" = fail ]
check "... in a namespace named by its inode, with the process that holds it" grep -Eq "netns net:\[[0-9]+\]: 0.0.0.0:8501 listens, pid $GPID \(python3\)" <<<"$(ck_evidence NET-1)"
check "RUN-1 names the process too, not 'no process holds it'" grep -Eq "netns net:\[[0-9]+\]: 0.0.0.0:8501 pid $GPID \(python3\) is not under tfguard-run" <<<"$(ck_evidence RUN-1)"
pass
