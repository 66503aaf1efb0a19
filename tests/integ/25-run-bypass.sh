#!/bin/bash
# tfguard-run against a hostile program (the third review's findings):
#  - dup2() races on the fd number between the supervisor's check and the
#    kernel's bind/listen (dupswap), for bind and for listen's autobind;
#  - a thread with its own fd table on a kernel without PIDFD_THREAD (splitfd,
#    with tfguard-run's pidfd_open() given its pre-6.9 behaviour);
#  - a root child taking the supervisor's notification fd (steal);
#  - a public listener passed as stdin;
#  - fail-closed start-up and a broken notification fd (fault injection into
#    tfguard-run itself), and a nested tfguard-run.
# Each case first shows the helper does catch the hole without the guard.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/run-lib.sh"
run_need
for h in dupswap-static splitfd-static steal libtfgfault.so; do
	[ -e "$H/$h" ] || fail "$H/$h not built (make test-bins)"
done
run_topology
N=${DUPSWAP_ITERATIONS:-3000}
# The controls stop at their first violation, which usually comes within a
# few iterations; the high bound only matters on a loaded machine, where the
# loop can finish inside one time slice of the flipping thread (seen in CI).
CONTROL_N=200000
FAULT=$H/libtfgfault.so

# summary FIELD FILE: a number from dupswap's summary line
field() { sed -n "s/.*\b$1 \([0-9]*\).*/\1/p" "$2"; }

say "-- dup2() race on bind: control without the guard"
in_ns "$SRV" "$H/dupswap-static" bind 8501 "$CONTROL_N" >"$TFG_TMP/out" 2>&1
rc=$?
cat "$TFG_TMP/out"
check "control: dupswap bind reports a violation (rc $rc)" test "$rc" = 1

say "-- dup2() race on bind under tfguard-run ($N iterations)"
in_ns "$SRV" "$RUN" -- "$H/dupswap-static" bind 8501 "$N" >"$TFG_TMP/out" 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/out"
grep -c 'moved to loopback' "$TFG_TMP/err" | sed 's/^/# binds moved to loopback: /'
check "dupswap bind: no violation (rc $rc)" test "$rc" = 0
check "dupswap bind: zero violations" test "$(field violations "$TFG_TMP/out")" = 0
check "dupswap bind: some binds really landed on loopback" test "$(field ok "$TFG_TMP/out")" -gt 0
check "dupswap bind: no public listener left" eval "! listening $SRV 8501"

say "-- dup2() race on listen (autobind) in --allow-bind mode: control"
in_ns "$SRV" "$H/dupswap-static" listen "$CONTROL_N" >"$TFG_TMP/out" 2>&1
rc=$?
cat "$TFG_TMP/out"
check "control: dupswap listen reports a violation (rc $rc)" test "$rc" = 1
say "-- dup2() race on listen under tfguard-run --allow-bind 0.0.0.0:8443"
in_ns "$SRV" "$RUN" --allow-bind 0.0.0.0:8443 -- "$H/dupswap-static" listen "$N" \
	>"$TFG_TMP/out" 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/out"
check "dupswap listen: no autobind of the wildcard (rc $rc)" test "$rc" = 0
check "dupswap listen: zero violations" test "$(field violations "$TFG_TMP/out")" = 0
check "dupswap listen: the autobinds were refused" grep -q 'listen 0.0.0.0:0 refused' "$TFG_TMP/err"

say "-- a thread with its own fd table (CLONE_THREAD without CLONE_FILES)"
in_ns "$SRV" "$H/splitfd-static" 8501 >"$TFG_TMP/out" 2>&1
rc=$?
cat "$TFG_TMP/out"
check "control: unguarded, the thread binds 0.0.0.0:8501 (rc $rc)" test "$rc" = 1
# tfguard-run's pidfd_open() as before Linux 6.9 (no PIDFD_THREAD): the
# supervisor only gets the leader's fd table, where fd 100 is AF_UNIX.
in_ns "$SRV" env LD_PRELOAD="$FAULT" TFG_FAULT=oldpidfd "$RUN" -- "$H/splitfd-static" 8501 \
	>"$TFG_TMP/out" 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/out" "$TFG_TMP/err"
check "pre-6.9 pidfd: the thread's socket is not bound publicly (rc $rc)" test "$rc" = 0
check "pre-6.9 pidfd: its bind is refused (EACCES)" grep -q 'bind=-1 (Permission denied)' "$TFG_TMP/out"
check "pre-6.9 pidfd: the supervisor says why" grep -q 'cannot prove that fd 100' "$TFG_TMP/err"
in_ns "$SRV" "$RUN" -- "$H/splitfd-static" 8501 >"$TFG_TMP/out" 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/out"
check "this kernel's pidfd_open: the thread's socket is not public (rc $rc)" test "$rc" = 0

say "-- a root child that tries to take over its supervisor"
in_ns "$SRV" sh -c "'$H/steal'; exit \$?" >"$TFG_TMP/out" 2>&1
rc=$?
cat "$TFG_TMP/out"
check "control: steal takes fds of an ordinary parent (rc $rc)" test "$rc" = 1
in_ns "$SRV" "$RUN" -- "$H/steal" >"$TFG_TMP/out" 2>&1
rc=$?
cat "$TFG_TMP/out"
check "steal under tfguard-run gets no fd and no ptrace (rc $rc)" test "$rc" = 0
check_not "... not even the notification fd" grep -q 'seccomp notify' "$TFG_TMP/out"
eff=$("$RUN" -- sh -c 'grep ^CapEff /proc/self/status' | awk '{print $2}')
bnd=$("$RUN" -- sh -c 'grep ^CapBnd /proc/self/status' | awk '{print $2}')
say "child CapEff $eff CapBnd $bnd"
check "CAP_SYS_PTRACE (19) is not in the child's effective set" test $((0x$eff >> 19 & 1)) = 0
check "CAP_SYS_PTRACE (19) is not in the child's bounding set" test $((0x$bnd >> 19 & 1)) = 0

say "-- a public listener passed as stdin"
for fd in 0 1 2; do
	rm -f "$TFG_TMP/ran"
	in_ns "$SRV" "$PY" - "$RUN" "$TFG_TMP/ran" "$fd" 2>"$TFG_TMP/err" <<'PYEOF'
import socket, subprocess, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8501))
s.listen()
io = {["stdin", "stdout", "stderr"][int(sys.argv[3])]: s.fileno()}
sys.exit(subprocess.run([sys.argv[1], "--", "touch", sys.argv[2]], **io).returncode)
PYEOF
	rc=$?
	cat "$TFG_TMP/err"
	# as fd 2 the error message itself goes to the socket: SIGPIPE (rc 243)
	check "listener 0.0.0.0:8501 as fd $fd: refused (exit $rc)" test "$rc" != 0
	check_not "... and the command was not run" test -e "$TFG_TMP/ran"
done
check "... the message names fd 0" eval "in_ns $SRV $PY -c '
import socket, subprocess, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((\"0.0.0.0\", 8501)); s.listen()
subprocess.run([\"$RUN\", \"--\", \"true\"], stdin=s.fileno())' 2>&1 | grep -q 'fd 0: inherited socket already bound to 0.0.0.0:8501'"

say "-- fail closed"
rm -f "$TFG_TMP/ran"
env LD_PRELOAD="$FAULT" TFG_FAULT=dumpable "$RUN" -- touch "$TFG_TMP/ran" 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/err"
check "PR_SET_DUMPABLE fails: exit 1 (got $rc)" test "$rc" = 1
check_not "... and the command was not run" test -e "$TFG_TMP/ran"
in_ns "$SRV" timeout 20 env LD_PRELOAD="$FAULT" TFG_FAULT=recv "$RUN" -- \
	"$H/bindtest-static" 0.0.0.0 8501 >"$TFG_TMP/out" 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/out" "$TFG_TMP/err"
check "notification receive fails: no hang (rc $rc, 124 = timeout)" test "$rc" != 124
check "... the bind fails with ENOSYS" grep -q "Function not implemented" "$TFG_TMP/out" "$TFG_TMP/err"
check "... and tfguard-run says so loudly" grep -q 'notification fd broken' "$TFG_TMP/err"
check_not "... nothing bound" grep -q '^bound' "$TFG_TMP/out"

say "-- nested tfguard-run"
"$RUN" -- "$RUN" -- true 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/err"
check "nested: exit 1 (got $rc)" test "$rc" = 1
check "nested: the message says why" grep -q 'already runs under a tfguard-run supervisor' "$TFG_TMP/err"
pass
