#!/bin/bash
# make demo (scripts/demo.sh) prints the commands it runs, and fails when a step
# does not behave as shown. Its tfguard is replaced by a wrapper that logs every
# invocation: each one must appear, word for word, in a printed "$ ..." line. Then
# the wrapper makes `tfguard probe` report NOT COMPLIANT (exit 3, with its real
# output): the demo must fail, naming the probe (review 5: the exit code was lost
# in a pipe, and the printed commands were not the ones run).
. "$(dirname "$0")/lib.sh"
need_root
need_cmd ip nft curl openssl
W=$TFG_TMP/build
mkdir -p "$W"
for b in tfguard-run tfguard-proxy libtfguard-preload.so; do ln -s "$B/$b" "$W/$b"; done
cat >"$W/tfguard" <<EOF2
#!/bin/bash
# logs its command line; TFG_DEMO_FAULT=probe: probe runs, then reports exit 3
printf '%s\n' "\$0 \$*" >>"$TFG_TMP/invocations"
if [ "\${TFG_DEMO_FAULT:-}" = probe ] && [[ " \$* " == *" probe "* ]]; then
	"$B/tfguard" "\$@"
	exit 3
fi
exec "$B/tfguard" "\$@"
EOF2
chmod 0755 "$W/tfguard" "$TFG_TMP"

TFG_BUILD=$W "$TOP/scripts/demo.sh" >"$TFG_TMP/demo.out" 2>&1
rc=$?
sed 's/\x1b\[[0-9;]*m//g' "$TFG_TMP/demo.out" >"$TFG_TMP/demo.txt"
[ $rc -eq 0 ] || { tail -n 30 "$TFG_TMP/demo.txt"; fail "the demo failed (exit $rc)"; }
grep '^\$ ' "$TFG_TMP/demo.txt" >"$TFG_TMP/shown"
check "the demo ran tfguard ($(wc -l <"$TFG_TMP/invocations") times)" [ -s "$TFG_TMP/invocations" ]
while IFS= read -r inv; do
	check "shown as run: $inv" grep -qF -- "$inv" "$TFG_TMP/shown"
done <"$TFG_TMP/invocations"
check "check is shown with its namespace" grep -Eq "^\\$ ip netns exec tfgdemo-srv-[0-9]+ $W/tfguard -c [^ ]+/tfguard.conf check --netns tfgdemo-srv-[0-9]+,tfgdemo-cli-[0-9]+\$" "$TFG_TMP/shown"
check "probe is shown from the client namespace" grep -Eq "^\\$ ip netns exec tfgdemo-cli-[0-9]+ $W/tfguard -c [^ ]+/tfguard.conf probe 10.77.0.1\$" "$TFG_TMP/shown"

say "tfguard probe reports NOT COMPLIANT"
: >"$TFG_TMP/invocations"
TFG_DEMO_FAULT=probe TFG_BUILD=$W "$TOP/scripts/demo.sh" >"$TFG_TMP/demo.out" 2>&1
rc=$?
sed 's/\x1b\[[0-9;]*m//g' "$TFG_TMP/demo.out" >"$TFG_TMP/demo.txt"
check "the demo fails when probe exits 3 (exit $rc)" [ $rc -ne 0 ]
check "... saying so ($(grep 'demo FAILED' "$TFG_TMP/demo.txt"))" grep -q 'demo FAILED: tfguard probe is not compliant (exit 3)' "$TFG_TMP/demo.txt"
check_not "... and never claims it passed" grep -q 'demo passed' "$TFG_TMP/demo.txt"
pass
