#!/bin/bash
# tfguard-run: a thread flips the caller's address buffer between 0.0.0.0 and
# the server's public address while another thread binds from it, hundreds of
# times. No bind may ever end on the public address or the wildcard: through
# libc (shim + supervisor), through the shim alone (--no-seccomp), and through
# raw syscalls in a static build (supervisor alone).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/run-lib.sh"
run_need
[ -x "$H/racebind-static" ] || fail "$H/racebind-static not built"
run_topology
N=${RACE_ITERATIONS:-600}

# summary FIELD FILE: a number from racebind's summary line
field() { sed -n "s/.*\b$1 \([0-9]*\).*/\1/p" "$2"; }

say "-- control: without a guard the helper does catch violations"
in_ns "$SRV" "$H/racebind" "$SRV4" 8501 "$N" >"$TFG_TMP/out" 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/out"
head -3 "$TFG_TMP/err"
check "control: unguarded racebind reports violations (rc $rc)" test "$rc" = 1
check "control: violation count > 0" test "$(field violations "$TFG_TMP/out")" -gt 0

race() {
	local what=$1 rc
	shift
	say "-- $what"
	in_ns "$SRV" "$@" >"$TFG_TMP/out" 2>"$TFG_TMP/err"
	rc=$?
	cat "$TFG_TMP/out"
	grep VIOLATION "$TFG_TMP/err" | head -3
	check "$what: no violation (rc $rc)" test "$rc" = 0
	check "$what: at least $N iterations ran" test "$(field iterations "$TFG_TMP/out")" -ge "$N"
	check "$what: zero violations" test "$(field violations "$TFG_TMP/out")" = 0
	# both values of the buffer were really seen by the guard
	check "$what: some binds were rewritten to loopback" test "$(field loopback "$TFG_TMP/out")" -gt 0
	check "$what: some binds were refused" test "$(field refused "$TFG_TMP/out")" -gt 0
	check "$what: no other failures" test "$(field failed "$TFG_TMP/out")" = 0
}
race "libc bind under tfguard-run (shim + supervisor)" "$RUN" -- "$H/racebind" "$SRV4" 8501 "$N"
race "libc bind under the shim alone (--no-seccomp)" "$RUN" --no-seccomp -- "$H/racebind" "$SRV4" 8501 "$N"
race "raw syscall, static binary (supervisor alone)" "$RUN" -- "$H/racebind-static" -r "$SRV4" 8501 "$N"
race "libc bind, static binary (supervisor alone)" "$RUN" -- "$H/racebind-static" "$SRV4" 8501 "$N"
pass
