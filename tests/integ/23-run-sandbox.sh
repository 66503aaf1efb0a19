#!/bin/bash
# tfguard-run: the seccomp denials (io_uring, AF_PACKET, SOCK_RAW), exit codes,
# signal forwarding, inheritance by grandchildren, and fail-closed start-up
# (nothing is exec'd when a protection step fails).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/run-lib.sh"
run_need
# everything that opens sockets runs in a namespace of its own, never on the host
netns_new SRV
[ -x "$H/sockprobe" ] || fail "$H/sockprobe not built"

say "-- denials (each first shown to work without tfguard-run)"
for p in io_uring packet raw; do
	out=$(in_ns "$SRV" "$H/sockprobe" "$p")
	rc=$?
	if [ "$rc" != 0 ]; then
		# e.g. kernel.io_uring_disabled=2: the control cannot show anything
		say "control: $out (not available here; checking the denial only)"
	else
		say "control: $out"
	fi
	out=$(in_ns "$SRV" "$RUN" -- "$H/sockprobe" "$p")
	rc=$?
	say "under tfguard-run: $out"
	check "$p denied with EPERM under tfguard-run (rc $rc)" test "$rc" = 1
	out=$(in_ns "$SRV" "$RUN" -- sh -c "exec '$H/sockprobe' $p")
	check "$p denied for a grandchild (sh -> sockprobe) too" test "$?" = 1
done
check "control: an ordinary TCP socket still works under tfguard-run" in_ns "$SRV" "$RUN" -- "$H/sockprobe" inet
# int $0x80 reaches the ia32 table (socketcall bind) from a 64-bit process;
# libseccomp's bad-arch action kills it (SIGSYS) before any call runs.
if [ "$(uname -m)" = x86_64 ] && "$H/sockprobe" int80 >/dev/null 2>&1; then
	"$RUN" -- "$H/sockprobe" int80 >/dev/null 2>&1
	rc=$?
	check "a 32-bit syscall via int \$0x80 is killed with SIGSYS (rc $rc = 128+31)" test "$rc" = 159
else
	say "ia32 emulation not available on this kernel: the int \$0x80 path does not exist here"
fi

say "-- the shim exports only what it interposes"
exported=$(nm -D --defined-only "$B/libtfguard-preload.so" | awk '{print $3}' | sort | tr '\n' ' ')
say "exported: $exported"
check "libtfguard-preload.so exports exactly bind and listen" test "$exported" = "bind listen "
imports=$(nm -D --undefined-only "$B/libtfguard-preload.so" | awk '{print $2}' | sed 's/@.*//')
check "the shim imports no allocator and no stdio" \
	eval "! grep -Exq 'malloc|calloc|realloc|free|.*printf.*|fputs|fwrite|fopen|puts|perror' <<<\"\$imports\""

say "-- environment"
shim=$(readlink -f "$B/libtfguard-preload.so")
LD_PRELOAD=/nonexistent/other.so TFGUARD_ALLOW_BIND=1.2.3.4:1 "$RUN" -- /usr/bin/env >"$TFG_TMP/env" 2>/dev/null
check "the shim is prepended to LD_PRELOAD, existing entries kept" \
	grep -qx "LD_PRELOAD=$shim /nonexistent/other.so" "$TFG_TMP/env"
check "protected ports exported for the shim" grep -qx "TFGUARD_PROTECTED_PORTS=8500,8501" "$TFG_TMP/env"
check_not "an inherited TFGUARD_ALLOW_BIND is dropped without --allow-bind" \
	grep -q "^TFGUARD_ALLOW_BIND=" "$TFG_TMP/env"
"$RUN" --allow-bind 0.0.0.0:8443 --allow-bind '[::]:9443' -- /usr/bin/env >"$TFG_TMP/env"
check "--allow-bind entries exported" grep -qx "TFGUARD_ALLOW_BIND=0.0.0.0:8443,\[::\]:9443" "$TFG_TMP/env"
# The shim fails closed on a policy it cannot parse (LD_PRELOAD alone, no tfguard-run).
out=$(in_ns "$SRV" env TFGUARD_PROTECTED_PORTS=85x1 LD_PRELOAD="$shim" "$H/bindtest" 127.0.0.1 9000 2>"$TFG_TMP/err")
rc=$?
cat "$TFG_TMP/err"
check "malformed policy in the environment: the shim refuses inet binds (rc $rc: $out)" test "$rc" = 13
check "... and says why" grep -q "malformed TFGUARD_PROTECTED_PORTS" "$TFG_TMP/err"
out=$(in_ns "$SRV" env LD_PRELOAD="$shim" "$H/bindtest" 0.0.0.0 8501 2>/dev/null)
check "the shim alone, without tfguard-run, uses the default ports ($out)" test "$out" = "bound 127.0.0.1:8501"

say "-- exit status"
"$RUN" -- sh -c 'exit 7'
check "exit status of the child (7) returned (got $?)" test "$?" = 7
"$RUN" -- sh -c 'exit 0'
check "exit 0 returned" test "$?" = 0
"$RUN" -- sh -c 'kill -KILL $$'
rc=$?
check "killed by SIGKILL -> 137 (got $rc)" test "$rc" = 137
"$RUN" -- /nonexistent/program 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/err"
check "a command that cannot be executed -> 127 (got $rc)" test "$rc" = 127
"$RUN" >/dev/null 2>&1
check "no command -> usage error 2" test "$?" = 2
"$RUN" --bogus -- true >/dev/null 2>&1
check "unknown option -> usage error 2" test "$?" = 2
"$RUN" --help >"$TFG_TMP/help"
check "--help exits 0" test "$?" = 0
for opt in --allow-bind --no-seccomp --preload -c; do
	check "--help documents $opt" grep -q -- "$opt" "$TFG_TMP/help"
done

say "-- signal forwarding"
# The child installs its own handlers (a shell cannot: background jobs start
# with INT and QUIT ignored, and sh may not trap a signal ignored on entry).
# Its wait is bounded (10 s) so a lost signal fails the test instead of hanging.
for sig in TERM INT HUP USR1 USR2 QUIT; do
	rm -f "$TFG_TMP/ready" "$TFG_TMP/got"
	bg "$RUN" -- "$PY" -c '
import signal, sys, time
def got(n, f):
    open(sys.argv[1] + "/got", "w").write(signal.Signals(n).name + "\n")
    sys.exit(3)
signal.signal(getattr(signal, "SIG" + sys.argv[2]), got)
open(sys.argv[1] + "/ready", "w").close()
for _ in range(200):
    time.sleep(0.05)
sys.exit(4)
' "$TFG_TMP" "$sig"
	poll 5000 test -e "$TFG_TMP/ready" || fail "child for $sig did not start"
	kill -"$sig" "$BG_PID"
	wait "$BG_PID"
	rc=$?
	check "SIG$sig reached the child (its handler ran)" grep -qx "SIG$sig" "$TFG_TMP/got"
	check "... and tfguard-run returned the child's exit status 3 (got $rc)" test "$rc" = 3
done
bg "$RUN" -- sleep 30
poll 5000 eval "pgrep -P $BG_PID -x sleep >/dev/null" || fail "sleep did not start"
kill -TERM "$BG_PID"
wait "$BG_PID"
rc=$?
check "child killed by the forwarded SIGTERM -> 143 (got $rc)" test "$rc" = 143

say "-- fail closed: nothing runs when a protection step fails"
rm -f "$TFG_TMP/ran"
"$RUN" --preload /nonexistent/libtfguard-preload.so -- touch "$TFG_TMP/ran" 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/err"
check "missing shim: exit 1 (got $rc)" test "$rc" = 1
check_not "missing shim: the command was not run" test -e "$TFG_TMP/ran"
mkdir -p "$TFG_TMP/lone"
cp "$RUN" "$TFG_TMP/lone/tfguard-run"
"$TFG_TMP/lone/tfguard-run" -- touch "$TFG_TMP/ran" 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/err"
check "tfguard-run with no shim beside it: exit 1 (got $rc)" test "$rc" = 1
check "... with a message naming the shim" grep -q "libtfguard-preload.so: not found" "$TFG_TMP/err"
check_not "... and the command was not run" test -e "$TFG_TMP/ran"
printf '[guard]\nprotected_ports = 8500, nope\n' >"$TFG_TMP/bad.conf"
"$RUN" -c "$TFG_TMP/bad.conf" -- touch "$TFG_TMP/ran" 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/err"
check "bad config: exit 1 (got $rc)" test "$rc" = 1
check_not "bad config: the command was not run" test -e "$TFG_TMP/ran"
# A socket inherited already bound publicly on a protected port never calls
# bind() again: tfguard-run must refuse to start the program with it.
in_ns "$SRV" "$PY" - "$RUN" "$TFG_TMP/ran" 2>"$TFG_TMP/err" <<'PYEOF'
import socket, subprocess, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8501))
s.listen()
sys.exit(subprocess.run([sys.argv[1], "--", "touch", sys.argv[2]], pass_fds=[s.fileno()]).returncode)
PYEOF
rc=$?
cat "$TFG_TMP/err"
check "inherited public listener on 8501: exit 1 (got $rc)" test "$rc" = 1
check "... naming the fd and the address" grep -q "fd [0-9]*: inherited socket already bound to 0.0.0.0:8501" "$TFG_TMP/err"
check_not "... and the command was not run" test -e "$TFG_TMP/ran"
in_ns "$SRV" "$PY" - "$RUN" "$TFG_TMP/ran" <<'PYEOF'
import socket, subprocess, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8501))
s.listen()
sys.exit(subprocess.run([sys.argv[1], "--", "touch", sys.argv[2]], pass_fds=[s.fileno()]).returncode)
PYEOF
check "inherited loopback listener on 8501 is fine (exit $?)" test -e "$TFG_TMP/ran"
rm -f "$TFG_TMP/ran"

# A filter that cannot be installed: a parent filter that makes seccomp(2)
# itself fail. The child must then not exec at all.
if command -v "$PY" >/dev/null; then
	"$PY" - "$RUN" "$TFG_TMP/ran" 2>"$TFG_TMP/err" <<'PYEOF'
import ctypes, os, struct, sys
# A classic BPF filter that returns ERRNO(EPERM) for seccomp(2) (nr 317 on
# x86_64) and ALLOW otherwise, loaded with no_new_privs.
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
BPF_LD, BPF_W, BPF_ABS, BPF_JMP, BPF_JEQ, BPF_K, BPF_RET = 0, 0, 0x20, 5, 0x10, 0, 6
def stmt(code, k): return struct.pack("HBBI", code, 0, 0, k)
def jump(code, k, jt, jf): return struct.pack("HBBI", code, jt, jf, k)
prog = (stmt(BPF_LD | BPF_W | BPF_ABS, 0) +
        jump(BPF_JMP | BPF_JEQ | BPF_K, 317, 0, 1) +
        stmt(BPF_RET | BPF_K, 0x00050000 | 1) +
        stmt(BPF_RET | BPF_K, 0x7fff0000))
buf = ctypes.create_string_buffer(prog)
fprog = struct.pack("HxxxxxxQ", 4, ctypes.addressof(buf))
fbuf = ctypes.create_string_buffer(fprog)
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.addressof(fbuf), 0, 0) != 0:
    sys.exit(99)
os.execv(sys.argv[1], [sys.argv[1], "--", "touch", sys.argv[2]])
PYEOF
	rc=$?
	cat "$TFG_TMP/err"
	if [ "$rc" = 99 ]; then
		say "could not install the test's own seccomp filter; skipping this case"
	else
		check "seccomp cannot be loaded: exit 1 (got $rc)" test "$rc" = 1
		check "... with a clear message" grep -q "seccomp:" "$TFG_TMP/err"
		check_not "... and the command was not run" test -e "$TFG_TMP/ran"
	fi
fi
pass
