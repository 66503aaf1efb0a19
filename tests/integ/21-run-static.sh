#!/bin/bash
# tfguard-run: binaries the LD_PRELOAD shim cannot see (a -static build, and a
# dynamic one that calls syscall(SYS_bind) directly) still end up on loopback,
# through the seccomp supervisor alone; with --no-seccomp they would not.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/run-lib.sh"
run_need
[ -x "$H/bindtest-static" ] || fail "$H/bindtest-static not built"
run_topology

check "bindtest-static is really static (no interpreter)" \
	eval "! readelf -l '$H/bindtest-static' 2>/dev/null | grep -q 'program interpreter'"

guarded_server "static bindtest 0.0.0.0:8501" 8501 "$H/bindtest-static" -s 0.0.0.0 8501
stop "$GUARDED_PID" 8501
guarded_server "static bindtest dual-stack [::]:8500" 8500 "$H/bindtest-static" -s -6 0 :: 8500
check "static dual-stack listener is [::ffff:127.0.0.1]:8500" listening "$SRV" 8500 "[::ffff:127.0.0.1]"
stop "$GUARDED_PID" 8500
GS_LOOP=::1 guarded_server "static bindtest v6-only [::]:8500" 8500 "$H/bindtest-static" -s -6 1 :: 8500
check "static v6-only listener is [::1]:8500" listening "$SRV" 8500 "[::1]"
stop "$GUARDED_PID" 8500
guarded_server "static bindtest, bind from a second thread" 8501 "$H/bindtest-static" -T -s 0.0.0.0 8501
stop "$GUARDED_PID" 8501
guarded_server "raw syscall(SYS_bind) 0.0.0.0:8501" 8501 "$H/bindtest" -r -s 0.0.0.0 8501
stop "$GUARDED_PID" 8501

# Who decided: the supervisor, never the shim (it cannot see these binds).
for c in "$H/bindtest-static 0.0.0.0 8501" "$H/bindtest -r 0.0.0.0 8501"; do
	# shellcheck disable=SC2086
	in_ns "$SRV" "$RUN" -- $c >"$TFG_TMP/out" 2>"$TFG_TMP/err"
	rc=$?
	cat "$TFG_TMP/out" "$TFG_TMP/err"
	check "$c: exit 0" test "$rc" = 0
	check "$c: reports 127.0.0.1:8501" grep -qx 'bound 127.0.0.1:8501' "$TFG_TMP/out"
	check "$c: the supervisor logged the rewrite" \
		grep -q '^tfguard-run: bindtest.*\[[0-9]*\]: bind 0.0.0.0:8501 -> 127.0.0.1:8501' "$TFG_TMP/err"
	check_not "$c: the shim did not see it" grep -q tfguard-preload "$TFG_TMP/err"
done

# The same static binary with only the LD_PRELOAD layer is NOT protected:
# proof that the seccomp layer is what holds above, and that the warning is loud.
in_ns "$SRV" "$RUN" --no-seccomp -- "$H/bindtest-static" 0.0.0.0 8501 >"$TFG_TMP/out" 2>"$TFG_TMP/err"
cat "$TFG_TMP/out" "$TFG_TMP/err"
check "--no-seccomp warns loudly" grep -q 'WARNING: --no-seccomp' "$TFG_TMP/err"
check "--no-seccomp: a static binary binds 0.0.0.0 (the shim alone cannot stop it)" \
	grep -qx 'bound 0.0.0.0:8501' "$TFG_TMP/out"
pass
