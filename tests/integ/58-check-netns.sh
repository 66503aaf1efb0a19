#!/bin/bash
# tfguard check --netns: the audit's own namespace (whose firewall FW-* judge) is
# always inspected too, and a name that matches no namespace is an error (exit 1,
# the name said), never a "compliant" over nothing.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/check_env.sh"
ck_setup
ck_baseline

say "--netns: the audit's own namespace is always included"
serve "$NS" 0.0.0.0 8501
LISTENER=$BG_PID
ck_run -- --netns "$OTHER"
check "a public listener in the own namespace fails NET-1 under --netns OTHER ($(ck_status NET-1))" [ "$(ck_status NET-1)" = fail ]
check "... naming it" grep -q "netns $NS: 0.0.0.0:8501 listens, pid [0-9]* (python3)" <<<"$(ck_evidence NET-1)"
kill "$LISTENER"; wait "$LISTENER" 2>/dev/null
poll 3000 bash -c "! ip netns exec $NS ss -Hltn 'sport = :8501' | grep -q ." || fail "listener still there"

ck_run -- --netns "$OTHER,no-such-ns-$TFG_ID"
check "a --netns name that matches nothing is an error (exit $RC)" [ "$RC" = 1 ]
check "... naming it ($ERR)" grep -q "no network namespace named 'no-such-ns-$TFG_ID'" <<<"$ERR"
check "... and printing no verdict" [ -z "$JSON" ]

pass
