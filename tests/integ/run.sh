#!/bin/bash
# Runs every tests/integ/NN-*.sh (or those named in $TESTS), each with a time
# limit, logs in BUILD/integ-logs/. Exit 0 pass, 1 fail, 77 skip (a kernel
# feature missing). Prints one closing line: "integration: N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
B=${1:-build}
export TFG_BUILD=$B
logs=$B/integ-logs
mkdir -p "$logs"
pass=0 fail=0 skipped=0 failed=""
for t in tests/integ/[0-9][0-9]-*.sh; do
	name=$(basename "$t" .sh)
	if [ -n "${TESTS:-}" ]; then
		# each word of $TESTS selects the tests whose name starts with it: "10 11-docker"
		sel=
		for w in $TESTS; do [[ $name == "$w"* ]] && sel=1; done
		[ -n "$sel" ] || continue
	fi
	start=$(date +%s)
	timeout -k 10 "${TEST_TIMEOUT:-600}" bash "$t" >"$logs/$name.log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	case $rc in
	0) pass=$((pass + 1)); echo "PASS $name (${secs}s)" ;;
	77) skipped=$((skipped + 1)); echo "SKIP $name: $(grep -m1 '^SKIP' "$logs/$name.log")" ;;
	*)
		fail=$((fail + 1)); failed="$failed $name"
		echo "FAIL $name (rc=$rc, ${secs}s); last lines of $logs/$name.log:"
		tail -n 40 "$logs/$name.log" | sed 's/^/    /'
		;;
	esac
done
if [ $((pass + fail + skipped)) -eq 0 ]; then
	echo "integration: no test selected by TESTS='${TESTS:-}'"
	exit 1
fi
echo "integration: $pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ]
