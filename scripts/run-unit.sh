#!/bin/sh
# Runs every unit-test binary in BUILD/tests/unit with prove (TAP).
set -u
B=${1:-build}
bins=$(find "$B/tests/unit" -type f -name 'test_*' ! -name '*.d' 2>/dev/null | sort)
if [ -z "$bins" ]; then
	echo "unit: no unit tests built in $B" >&2
	exit 1
fi
# shellcheck disable=SC2086
prove --exec '' $bins
