#!/bin/sh
# scripts/fuzz.sh SECONDS [TARGET...]: libFuzzer runs of tests/fuzz/fuzz_<target>.c.
#
# Each target is built with clang -fsanitize=fuzzer,address,undefined from its own
# sources (guard/lib and the pure proxy modules, no sockets) and run for SECONDS on
# its committed corpus (tests/fuzz/corpus/<target>, read-only here) plus a scratch
# corpus in build/fuzzer/corpus/<target>. Afterwards the inputs that add coverage are
# merged into the committed corpus (file names are SHA-1s of the content). A crash or
# failed invariant leaves its input in build/fuzzer/artifacts/: add it to the corpus
# once fixed. Exit status: 0 if every target ran clean.
set -u
secs=${1:-60}
[ $# -gt 0 ] && shift
CC=${FUZZ_CC:-clang}
B=build/fuzzer

if ! command -v "$CC" >/dev/null 2>&1; then
	echo "fuzz: $CC not found (apt-get install clang)" >&2
	exit 1
fi
cflags="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Iguard/lib -Iguard/proxy -Ipreload -Itests/fuzz $(pkg-config --cflags openssl libcrypt)"
libs="$(pkg-config --libs openssl libcrypt) -pthread"
lib_srcs=$(ls guard/lib/*.c)
proxy_srcs="guard/proxy/http.c guard/proxy/route.c guard/proxy/htpasswd.c guard/proxy/auth.c \
	guard/proxy/b64.c guard/proxy/token.c guard/proxy/pb.c guard/proxy/grpc.c"

if [ $# -gt 0 ]; then
	targets=$*
else
	targets=$(ls tests/fuzz/fuzz_*.c | sed 's|tests/fuzz/fuzz_||; s|\.c$||')
fi

failed=""
mkdir -p "$B/artifacts"
for t in $targets; do
	bin=$B/fuzz_$t
	echo "fuzz: building $t"
	srcs=$proxy_srcs
	tlibs=$libs
	# the h2 request path needs the whole proxy runtime (loop, auth, limits) and nghttp2
	if [ "$t" = h2 ]; then
		srcs=$(ls guard/proxy/*.c | grep -v '/main\.c$')
		tlibs="$libs $(pkg-config --libs libnghttp2)"
	fi
	# shellcheck disable=SC2086
	if ! $CC $cflags -o "$bin" "tests/fuzz/fuzz_$t.c" $lib_srcs $srcs $tlibs; then
		failed="$failed $t(build)"
		continue
	fi
	mkdir -p "$B/corpus/$t" "tests/fuzz/corpus/$t"
	dict=""
	case $t in http_* | route) dict="-dict=tests/fuzz/http.dict" ;; esac
	echo "fuzz: running $t for ${secs}s"
	# shellcheck disable=SC2086
	if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$B/artifacts/$t-" $dict "$B/corpus/$t" "tests/fuzz/corpus/$t" \
		>"$B/$t.log" 2>&1; then
		echo "fuzz: $t FAILED, see $B/$t.log and $B/artifacts/" >&2
		tail -30 "$B/$t.log" >&2
		failed="$failed $t"
		continue
	fi
	grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$B/$t.log" |
		sed "s/^/fuzz: $t: /"
	# keep what adds coverage, so the gcc replay in `make test` covers it too
	"$bin" -merge=1 "tests/fuzz/corpus/$t" "$B/corpus/$t" >"$B/$t.merge.log" 2>&1 ||
		echo "fuzz: $t: merge failed, see $B/$t.merge.log" >&2
done
if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed" >&2
	exit 1
fi
echo "fuzz: all targets clean (${secs}s each)"
