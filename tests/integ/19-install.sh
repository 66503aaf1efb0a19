#!/bin/bash
# make install: binaries, preload, units and man pages where PREFIX/DESTDIR say;
# systemd-analyze verify passes on the units; the man pages pass mandoc -T lint.
. "$(dirname "$0")/lib.sh"
need_cmd systemd-analyze mandoc man
P=$TFG_TMP/prefix
make -s -C "$TOP" install PREFIX="$P/usr" UNITDIR="$P/units" SYSUSERSDIR="$P/sysusers" >/dev/null || fail "make install"
for f in usr/sbin/tfguard usr/sbin/tfguard-proxy usr/bin/tfguard-run \
	usr/lib/tfguard/libtfguard-preload.so usr/share/man/man8/tfguard.8 \
	usr/share/man/man8/tfguard-run.8 usr/share/man/man8/tfguard-proxy.8 \
	usr/share/man/man5/tfguard.conf.5 units/tfguard-apply.service units/tfguard-proxy.service \
	usr/share/doc/tfguard/tensorflow-serving.service.example sysusers/tfguard.conf; do
	[ -e "$P/$f" ] || fail "make install did not install $f"
done
[ "$(stat -c %a "$P/usr/sbin/tfguard")" = 755 ] || fail "binaries must be 0755"
grep -q "ExecStart=$P/usr/sbin/tfguard apply" "$P/units/tfguard-apply.service" ||
	fail "the unit does not point at the installed binary"
# the installed tfguard-run finds the installed shim (../lib/tfguard/)
"$P/usr/bin/tfguard-run" -- true || fail "installed tfguard-run cannot run with its installed shim"

# DESTDIR stages without touching PREFIX
make -s -C "$TOP" install DESTDIR="$TFG_TMP/stage" PREFIX=/usr/local UNITDIR=/lib/systemd/system \
	SYSUSERSDIR=/usr/lib/sysusers.d \
	>/dev/null || fail "make install DESTDIR"
[ -x "$TFG_TMP/stage/usr/local/sbin/tfguard" ] || fail "DESTDIR not honoured"
grep -q 'ExecStart=/usr/local/sbin/tfguard apply' "$TFG_TMP/stage/lib/systemd/system/tfguard-apply.service" ||
	fail "DESTDIR leaked into the unit"

sed "s|/usr/bin/tensorflow_model_server|$(command -v true)|" \
	"$P/usr/share/doc/tfguard/tensorflow-serving.service.example" >"$P/units/tensorflow-serving.service"
out=$(cd "$P/units" && MANPATH="$P/usr/share/man:" systemd-analyze verify \
	tfguard-apply.service tfguard-proxy.service tensorflow-serving.service 2>&1)
say "systemd-analyze verify: ${out:-no findings}"
[ -z "$out" ] || fail "systemd-analyze verify reported problems"

out=$(mandoc -T lint -W warning "$P"/usr/share/man/man*/* 2>&1)
[ -z "$out" ] || fail "mandoc -T lint: $out"
for m in "$P"/usr/share/man/man*/*; do
	w=$(man --warnings -l "$m" 2>&1 >/dev/null)
	[ -z "$w" ] || fail "man --warnings $m: $w"
done
say "ok: man pages lint clean"
pass
