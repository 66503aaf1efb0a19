# shellcheck shell=bash
# run-lib.sh: what the tfguard-run tests (2N-*.sh) share, on top of lib.sh.
# Source after lib.sh. run_topology creates the server namespace SRV and the
# client namespace CLI joined by a veth (IPv4 + IPv6). There is no firewall in
# either namespace: whatever the client cannot reach, it cannot reach because
# of where the server's sockets are bound.

# TFG_RUN: another build of tfguard-run (make test runs these tests again with an
# ASan+UBSan one; the shim and helpers stay the ones of $B)
RUN=${TFG_RUN:-$B/tfguard-run}
H=$B/helpers
SRV4=10.231.0.1
CLI4=10.231.0.2
SRV6=fd00:231::1
CLI6=fd00:231::2

run_need() {
	need_root
	need_cmd ss ip timeout readelf
	[ -x "$RUN" ] || fail "$RUN not built (make)"
	[ -f "$B/libtfguard-preload.so" ] || fail "$B/libtfguard-preload.so not built (make)"
}

run_topology() {
	netns_new SRV
	netns_new CLI
	veth "$SRV" "$CLI" "$SRV4" "$CLI4" "$SRV6" "$CLI6"
	# the veth must be up before any "refused" means anything (each
	# guarded case also shows the same server reachable without tfguard-run)
	poll 5000 veth_up || fail "veth between $SRV and $CLI does not come up"
}
veth_up() {
	ip -n "$SRV" -br link show "$VETH_A" | grep -q ' UP ' &&
		ip -n "$CLI" -br link show "$VETH_B" | grep -q ' UP '
}

# refused NS HOST PORT: the connection is actively refused (RST: nothing listens
# on HOST:PORT). There is no firewall here, so that is the only right answer
# for a loopback-bound server; a timeout (124, something dropped the SYN) or a
# connection (0) both fail. (lib.sh's `unreachable` means "dropped by the firewall".)
refused() {
	tcp_open "$@"
	local rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]
}

# reachable_any PORT: the client reaches the server's PORT over IPv4 or IPv6.
reachable_any() { reachable "$CLI" "$SRV4" "$1" || reachable "$CLI" "$SRV6" "$1"; }

# no_listener NS PORT: nothing listens on PORT in NS any more.
no_listener() { ! listening "$1" "$2"; }

# stop PID PORT: TERM (forwarded by tfguard-run), wait, and check the port is free.
stop() {
	kill -TERM "$1" 2>/dev/null
	poll 5000 eval "! kill -0 $1 2>/dev/null" || fail "pid $1 did not exit on SIGTERM"
	wait "$1" 2>/dev/null
	poll 5000 no_listener "$SRV" "$2" || fail "port $2 still in use after stopping $1"
}

# listeners NS PORT: the local addresses listening on PORT, one per line.
listeners() { ip netns exec "$1" ss -Hltn "sport = :$2" | awk '{print $4}'; }

# on_loopback_only NS PORT: every listener on PORT is 127.x, [::1] or [::ffff:127.x].
on_loopback_only() {
	local l out
	out=$(listeners "$1" "$2")
	[ -n "$out" ] || return 1
	while read -r l; do
		case $l in
		127.*:"$2" | "[::1]:$2" | "[::ffff:127."*"]:$2") ;;
		*) say "public listener: $l"; return 1 ;;
		esac
	done <<<"$out"
}

# guarded_server NAME PORT CMD...: runs CMD under tfguard-run in SRV and proves
# the listener is on loopback, reachable inside SRV on 127.0.0.1, refused
# from CLI over IPv4 and IPv6 (GS_LOOP=::1 for a v6-only server). CMD is first run without tfguard-run to show the
# client does reach it then (so the test can fail).
guarded_server() {
	local name=$1 port=$2
	shift 2
	say "-- $name: control run without tfguard-run"
	bg ip netns exec "$SRV" "$@"
	wait_port "$SRV" "$port" 10000
	check "$name unguarded: reachable from the client" poll 3000 reachable_any "$port"
	stop "$BG_PID" "$port"

	say "-- $name: under tfguard-run"
	bg ip netns exec "$SRV" "$RUN" -- "$@"
	wait_port "$SRV" "$port" 10000
	say "listeners on $port: $(listeners "$SRV" "$port" | tr '\n' ' ')"
	check "$name: listens on loopback only" on_loopback_only "$SRV" "$port"
	check "$name: reachable in the server namespace on ${GS_LOOP:-127.0.0.1}" \
		reachable "$SRV" "${GS_LOOP:-127.0.0.1}" "$port"
	check "$name: refused from the client over IPv4 (nothing listens there)" refused "$CLI" "$SRV4" "$port"
	check "$name: refused from the client over IPv6 (nothing listens there)" refused "$CLI" "$SRV6" "$port"
	GUARDED_PID=$BG_PID
}

# nginx_conf DIR LISTEN...: a minimal nginx config (master + 2 workers, no
# daemon) in DIR/nginx.conf with one "listen" line per argument.
nginx_conf() {
	local dir=$1 l listens=""
	shift
	for l; do listens="$listens		listen $l;
"; done
	mkdir -p "$dir/logs"
	cat >"$dir/nginx.conf" <<NGX
daemon off;
master_process on;
worker_processes 2;
pid $dir/nginx.pid;
error_log stderr;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $dir/body;
	proxy_temp_path $dir/proxy;
	fastcgi_temp_path $dir/fcgi;
	uwsgi_temp_path $dir/uwsgi;
	scgi_temp_path $dir/scgi;
	server {
$listens		location / { return 200 "nginx\n"; }
	}
}
NGX
}
