#!/bin/sh
# Replays each committed fuzz corpus through its target (gcc build, no libFuzzer),
# so the invariants the fuzzers check are enforced on every `make test`.
set -u
B=${1:-build}
pass=0 fail=0
for r in "$B"/fuzz/replay_*; do
	[ -x "$r" ] || continue
	name=${r##*/replay_}
	dir=tests/fuzz/corpus/$name
	if "$r" "$dir" >/dev/null; then
		pass=$((pass + 1))
	else
		echo "fuzz replay FAILED: $name ($dir)" >&2
		fail=$((fail + 1))
	fi
done
echo "fuzz replay: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
