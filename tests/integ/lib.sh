# shellcheck shell=bash
# lib.sh: helpers for integration tests. Source it first thing:
#	. "$(dirname "$0")/lib.sh"
#
# Every namespace, veth and process a test creates is named with the test's pid
# plus a random part and removed again by the EXIT trap, so two runs cannot
# collide and nothing is left on the host. Nothing here touches the host's own
# firewall or interfaces. Readiness is polled with a deadline, never slept for.
# Exit codes: 0 pass, 1 fail, 77 skip.

set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${TFG_BUILD:-$TOP/build}
case "$B" in /*) ;; *) B=$TOP/$B ;; esac
PY=/usr/bin/python3
TEST_NAME=$(basename "$0" .sh)
TFG_ID="$$$RANDOM"
TFG_TMP=$(mktemp -d "/tmp/tfg-$TEST_NAME.XXXXXX")
_NETNS=()
_PIDS=()
_NSEQ=0

_cleanup() {
	local p ns
	for p in "${_PIDS[@]+"${_PIDS[@]}"}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${_PIDS[@]+"${_PIDS[@]}"}"; do
		# bounded: a process that ignores TERM gets KILL after ~2 s
		for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for ns in "${_NETNS[@]+"${_NETNS[@]}"}"; do
		# kill anything still running inside the namespace, then delete it
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$TFG_TMP"
}
trap _cleanup EXIT
trap 'exit 1' INT TERM

say() { printf '# %s\n' "$*"; }
# fail MSG: the test failed (after the optional fail_hook, e.g. the tail of a server's log)
fail() {
	printf 'FAIL: %s\n' "$*"
	if declare -F fail_hook >/dev/null; then fail_hook; fi
	exit 1
}
skip() { printf 'SKIP: %s\n' "$*"; exit 77; }
# pass [NAME]: the test passed, after the optional pass_hook (e.g. a sanitizer log check)
pass() {
	if declare -F pass_hook >/dev/null; then pass_hook || fail "pass_hook"; fi
	printf 'PASS: %s\n' "${1:-$TEST_NAME}"
	exit 0
}
# check DESCRIPTION CMD...: runs CMD, fails the test with DESCRIPTION if it fails.
check() {
	local what=$1
	shift
	if "$@"; then say "ok: $what"; else fail "$what"; fi
}
# check_not DESCRIPTION CMD...: CMD must fail.
check_not() {
	local what=$1
	shift
	if "$@"; then fail "$what"; else say "ok: $what"; fi
}

need_root() { [ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"; }
need_cmd() { local c; for c; do command -v "$c" >/dev/null 2>&1 || skip "needs $c"; done; }

# netns_new VAR: creates a namespace with lo up, stores its name in VAR.
netns_new() {
	local name="tfg-$TFG_ID-$((++_NSEQ))"
	ip netns add "$name" || fail "cannot create network namespace $name"
	_NETNS+=("$name")
	ip -n "$name" link set lo up
	printf -v "$1" '%s' "$name"
}

# veth NS_A NS_B ADDR4_A ADDR4_B ADDR6_A ADDR6_B: a veth pair between two namespaces
# with IPv4 (/24) and IPv6 (/64, no DAD) addresses, both ends up.
veth() {
	local a=$1 b=$2 n="v$((_NSEQ++))${TFG_ID: -6}"
	ip link add "${n}a" netns "$a" type veth peer name "${n}b" netns "$b" ||
		fail "cannot create veth pair"
	ip -n "$a" addr add "$3/24" dev "${n}a"
	ip -n "$b" addr add "$4/24" dev "${n}b"
	ip -n "$a" addr add "$5/64" dev "${n}a" nodad
	ip -n "$b" addr add "$6/64" dev "${n}b" nodad
	ip -n "$a" link set "${n}a" up
	ip -n "$b" link set "${n}b" up
	VETH_A="${n}a"
	VETH_B="${n}b"
}

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# bg CMD...: starts CMD in the background, remembered for cleanup; pid in BG_PID.
bg() {
	"$@" &
	BG_PID=$!
	_PIDS+=("$BG_PID")
}

# poll DEADLINE_MS CMD...: runs CMD until it succeeds or the deadline passes.
poll() {
	local deadline=$(($(date +%s%3N) + $1))
	shift
	while :; do
		"$@" && return 0
		[ "$(date +%s%3N)" -ge "$deadline" ] && return 1
		sleep 0.02
	done
}

# listening NS PORT [ADDR]: something listens on TCP PORT (optionally on ADDR) in NS.
listening() {
	local out
	out=$(ip netns exec "$1" ss -Hltn "sport = :$2") || return 1
	[ -n "$out" ] || return 1
	[ -z "${3:-}" ] || grep -qF " $3:$2 " <<<"$out "
}
# wait_port NS PORT DEADLINE_MS: waits until a listener on PORT exists in NS.
wait_port() { poll "$3" listening "$1" "$2" || fail "nothing listens on port $2 in $1 after $3 ms"; }

# tcp_open NS HOST PORT [TIMEOUT_S]: connects from NS to HOST:PORT. Exit 0 when
# connected, 124 when nothing answered before the timeout (a firewall drop),
# anything else when refused or unroutable.
tcp_open() {
	ip netns exec "$1" timeout "${4:-1}" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null
}
reachable() { tcp_open "$@"; }
# unreachable: dropped, i.e. no answer at all. A refused connection (RST) does
# not count: it would mean the listener died, not that the firewall works.
unreachable() {
	tcp_open "$@"
	[ $? -eq 124 ]
}

# serve NS ADDR PORT [v6only]: a TCP server that answers "tfg PORT" and closes.
# ADDR may be 0.0.0.0, ::, or any local address. v6only defaults to 0 (dual-stack).
serve() {
	bg ip netns exec "$1" "$PY" -c '
import socket, sys
addr, port, v6only = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if fam == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
s.bind((addr, port))
s.listen(64)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"tfg %d\n" % port)
    finally:
        c.close()
' "$2" "$3" "${4:-0}"
	wait_port "$1" "$3" 5000
}

# expect_http CODE CURL-ARGS...: curl's status code must be CODE.
expect_http() {
	local want=$1 got
	shift
	got=$(curl -s -o "$TFG_TMP/body" -w '%{http_code}' "$@")
	[ "$got" = "$want" ] || { say "expected HTTP $want, got $got: curl $*"; return 1; }
}


# ---- firewall topology ---------------------------------------------------------------
# fw_topology: a "server" namespace SRV and a "client" namespace CLI joined by a
# veth: server 10.99.0.1 / fd99::1, client 10.99.0.2 / fd99::2.
SRV4=10.99.0.1 CLI4=10.99.0.2 SRV6=fd99::1 CLI6=fd99::2
fw_topology() {
	need_root
	need_cmd nft ip ss "$PY"
	netns_new SRV
	netns_new CLI
	veth "$SRV" "$CLI" "$SRV4" "$CLI4" "$SRV6" "$CLI6"
	SRV_IF=$VETH_A
	CLI_IF=$VETH_B
}
# tfguard in NS: tfguard_ns NS [-c CONF] ARGS... Without -c it reads an empty
# config (built-in defaults), never the host's /etc/tfguard/tfguard.conf.
tfguard_ns() {
	local ns=$1
	shift
	if [ "${1:-}" != -c ]; then
		: >"$TFG_TMP/empty.conf"
		set -- -c "$TFG_TMP/empty.conf" "$@"
	fi
	ip netns exec "$ns" "$B/tfguard" "$@"
}
# dump_ruleset NS: the whole ruleset of NS as nft prints it (with counters, no handles)
dump_ruleset() { ip netns exec "$1" nft list ruleset; }
