#!/bin/sh
# `make test`: the one test command (README, .ci/run). Installs missing Debian
# packages, builds, then runs unit tests, fuzz-corpus replays, integration tests
# in network namespaces, the unit tests and replays again under ASan+UBSan, and
# the format check. Prints one closing line: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
JOBS=$(nproc 2>/dev/null || echo 2)
pass=0 fail=0 failed=""

step() {
	name=$1
	shift
	echo "== $name"
	if "$@"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed="$failed $name"
	fi
}

scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }
if ! $MAKE -s -j"$JOBS" test-bins; then
	echo "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi
step unit $MAKE -s check-unit
step fuzz-replay $MAKE -s check-fuzz
step integration $MAKE -s check-integ
# the README's first command must keep working
step demo scripts/demo.sh
if $MAKE -s -j"$JOBS" SAN=1 san-bins >/dev/null; then
	step unit-asan $MAKE -s SAN=1 check-unit
	step fuzz-replay-asan $MAKE -s SAN=1 check-fuzz
	step integration-asan $MAKE -s check-integ-san
	step integration-asan-run $MAKE -s check-integ-san-run
else
	echo "SAN build failed"
	fail=$((fail + 1))
	failed="$failed san-build"
fi
step format $MAKE -s check-format

echo
[ -n "$failed" ] && echo "failed steps:$failed"
echo "test steps: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
