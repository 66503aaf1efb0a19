#!/bin/bash
# tfguard check never calls a host clean that it could not see: a namespace whose
# listeners could not be read (NETLINK_SOCK_DIAG made to fail by an LD_PRELOAD
# shim, as on a kernel without sock_diag) makes NET-1 skipped (verdict
# INCOMPLETE, exit 1 as root), each such namespace named with the reason, while
# a public listener found elsewhere still fails it.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/check_env.sh"
ck_setup
need_cmd cc
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -shared -fPIC -o "$TFG_TMP/libnodiag.so" \
	"$TOP/tests/helpers/preload/nodiag.c" -ldl || fail "cannot build the sock_diag fault shim"
ck_baseline

say "NETLINK_SOCK_DIAG fails everywhere (LD_PRELOAD shim)"
ck_run LD_PRELOAD="$TFG_TMP/libnodiag.so" -- --netns "$NS,$OTHER"
say "$(ck_evidence NET-1)"
check "NET-1 is skipped, not passed or warned ($(ck_status NET-1))" [ "$(ck_status NET-1)" = skipped ]
check "the verdict is incomplete, never compliant" ck_jq '.compliant == false and .complete == false'
check "as root an audit that could not run exits 1 (got $RC)" [ "$RC" = 1 ]
check "the evidence names the own namespace and why" grep -q "netns $NS: NOT inspected: NETLINK_SOCK_DIAG query: Protocol not supported" <<<"$(ck_evidence NET-1)"
check "... and the other one" grep -q "netns $OTHER: NOT inspected: NETLINK_SOCK_DIAG query" <<<"$(ck_evidence NET-1)"
check_not "... and does not say 'could not be entered' for a failed query" grep -q "could not be entered" <<<"$(ck_evidence NET-1)"

say "only the other namespace cannot be read"
ck_run LD_PRELOAD="$TFG_TMP/libnodiag.so" TFG_NODIAG_AFTER=2 -- --netns "$NS,$OTHER"
check "NET-1 is skipped ($(ck_status NET-1))" [ "$(ck_status NET-1)" = skipped ]
check "... naming only $OTHER" bash -c "grep -q 'netns $OTHER: NOT inspected' <<<'$(ck_evidence NET-1)' && ! grep -q 'netns $NS: NOT' <<<'$(ck_evidence NET-1)'"
serve "$NS" 0.0.0.0 8501
LISTENER=$BG_PID
ck_run LD_PRELOAD="$TFG_TMP/libnodiag.so" TFG_NODIAG_AFTER=2 -- --netns "$NS,$OTHER"
check "a public listener seen elsewhere still fails NET-1 ($(ck_status NET-1), exit $RC)" bash -c "[ '$(ck_status NET-1)' = fail ] && [ $RC = 3 ]"
check "... with both the listener and the unseen namespace in the evidence" bash -c "grep -q 'netns $NS: 0.0.0.0:8501 listens' <<<'$(ck_evidence NET-1)' && grep -q 'netns $OTHER: NOT inspected' <<<'$(ck_evidence NET-1)'"

pass
