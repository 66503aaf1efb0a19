#!/bin/bash
# tfguard-run: binds under a storm of signals (Go's SIGURG preemption, timers).
# With SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19+) a bind the
# supervisor has received is not interrupted any more by a non-fatal signal:
# bind() never returns EINTR for a socket that was in fact bound. Without
# SA_RESTART, EINTR before the supervisor picked the call up is still possible
# (nothing bound then); with SA_RESTART every bind completes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/run-lib.sh"
run_need
[ -x "$H/sigbind-static" ] || fail "$H/sigbind-static not built"
kmaj=$(uname -r | cut -d. -f1)
kmin=$(uname -r | cut -d. -f2)
[ "$kmaj" -gt 5 ] || { [ "$kmaj" = 5 ] && [ "$kmin" -ge 19 ]; } ||
	skip "kernel $(uname -r) < 5.19: no SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (README: EINTR)"
netns_new SRV
N=${SIGBIND_ITERATIONS:-3000}

field() { sed -n "s/.*\b$1 \([0-9]*\).*/\1/p" "$2"; }

for gap in 20 200; do
	say "-- SIGUSR1 every ${gap} us, no SA_RESTART, $N binds"
	in_ns "$SRV" timeout 120 "$RUN" -- "$H/sigbind-static" 8501 "$N" "$gap" 0 \
		>"$TFG_TMP/out" 2>"$TFG_TMP/err"
	rc=$?
	cat "$TFG_TMP/out"
	grep -v 'moved to loopback' "$TFG_TMP/err" | head -5
	check "gap $gap: finished (rc $rc, 124 = timeout)" test "$rc" != 124
	check "gap $gap: never EINTR for a socket that was bound" test "$(field eintr_bound "$TFG_TMP/out")" = 0
	check "gap $gap: never public" test "$(field bad "$TFG_TMP/out")" = 0
	check "gap $gap: no other errors (no ENOSYS: the supervisor kept going)" test "$(field other "$TFG_TMP/out")" = 0
	check "gap $gap: signals did hit binds (some EINTR)" test "$(field eintr "$TFG_TMP/out")" -gt 0
	# how many get through depends on speed (an ASan build gets fewer): no share is asserted
	check "gap $gap: binds do complete between the signals" test "$(field ok "$TFG_TMP/out")" -gt 0
done
say "-- SA_RESTART, SIGUSR1 every 50 us"
in_ns "$SRV" timeout 120 "$RUN" -- "$H/sigbind-static" 8501 "$N" 50 1 >"$TFG_TMP/out" 2>"$TFG_TMP/err"
rc=$?
cat "$TFG_TMP/out"
check "SA_RESTART: all $N binds on loopback (rc $rc)" test "$(field ok "$TFG_TMP/out")" = "$N"
pass
