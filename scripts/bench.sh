#!/bin/bash
# make bench: tfguard-proxy beside nginx + auth_basic, in one run, on this machine.
#
# Both proxies get the same backend (an nginx answering a fixed predict JSON),
# the same certificate, the same htpasswd file and the same number of workers.
# Everything listens on 127.0.0.1 on free ports picked here; every load is a
# bounded wrk run; rounds are interleaved (nginx, tfguard, nginx, ...) so that
# drift on a noisy machine hits both. Only the ratios inside one run mean much.
#
#   BENCH_QUICK=1       smoke run: 1 round of 2 s, 1,000 idle connections
#   BENCH_ROUNDS=N      rounds per row (default 3)
#   BENCH_DURATION=S    seconds per wrk run (default 10)
#   BENCH_IDLE=N        idle TLS connections for the memory row (default 10000)
#   BENCH_OUT=DIR       where the CSV and logs go (default build/bench)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=${TFG_BUILD:-$TOP/build}
PROXY_BIN=${TFG_PROXY:-$B/tfguard-proxy}
OUT=${BENCH_OUT:-$TOP/build/bench}
PY=/usr/bin/python3
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	ROUNDS=${BENCH_ROUNDS:-1} DUR=${BENCH_DURATION:-2} IDLE=${BENCH_IDLE:-1000}
else
	ROUNDS=${BENCH_ROUNDS:-3} DUR=${BENCH_DURATION:-10} IDLE=${BENCH_IDLE:-10000}
fi
WORKERS=2 THREADS=2 CONNS=64

die() { echo "bench: $*" >&2; exit 1; }
for c in nginx wrk openssl htpasswd curl "$PY"; do
	command -v "$c" >/dev/null || die "$c is missing (run scripts/deps.sh)"
done
[ -x "$PROXY_BIN" ] || die "$PROXY_BIN is missing (run make)"
NGINX=$(command -v nginx)

mkdir -p "$OUT"
W=$(mktemp -d /tmp/tfguard-bench.XXXXXX)
chmod 0755 "$W"
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		kill -KILL "$p" 2>/dev/null
	done
	# nginx masters write their pid files; their workers follow the master
	for f in "$W"/*/nginx.pid; do [ -f "$f" ] && kill -QUIT "$(cat "$f")" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- ports: free ones, checked again right before use -----------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
read -r P_BACKEND P_NGX_TLS P_NGX_PLAIN P_TFG_TLS P_TFG_PLAIN <<<"$("$PY" -c '
import socket
socks = []
for _ in range(5):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))')"
for p in $P_BACKEND $P_NGX_TLS $P_NGX_PLAIN $P_TFG_TLS $P_TFG_PLAIN; do
	port_free "$p" || die "port $p is busy: refusing to start"
done

wait_listen() { # PORT: poll until something accepts on 127.0.0.1:PORT, 10 s at most
	local end=$(($(date +%s%3N) + 10000))
	until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
		[ "$(date +%s%3N)" -ge "$end" ] && die "nothing listens on port $1"
		sleep 0.02
	done
}

# ---- shared material ---------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
	-keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null || die "openssl req failed"
chmod 0600 "$W/key.pem"
htpasswd -bcm "$W/htpasswd" apr 'apr-secret' 2>/dev/null || die "htpasswd -m"
htpasswd -bB -C 10 "$W/htpasswd" bc 'bc-secret' 2>/dev/null || die "htpasswd -B"
chmod 0644 "$W/htpasswd"
AUTH_APR="Authorization: Basic $(printf 'apr:apr-secret' | base64)"
AUTH_BC="Authorization: Basic $(printf 'bc:bc-secret' | base64)"
BODY='{"instances": [[1.0, 2.0, 3.0, 4.0]]}'
REPLY='{"predictions": [[0.1, 0.9]]}'

# ---- backend: nginx answering like TF Serving's predict, fast enough not to matter --------
mkdir -p "$W/be"
cat >"$W/be/nginx.conf" <<EOF
daemon on;
pid $W/be/nginx.pid;
error_log $W/be/error.log warn;
worker_processes 1;
worker_rlimit_nofile 20000;
events { worker_connections 20000; }
http {
	access_log off;
	client_body_temp_path $W/be;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$P_BACKEND;
		client_max_body_size 0;
		location / { default_type application/json; return 200 '$REPLY'; }
	}
}
EOF
"$NGINX" -c "$W/be/nginx.conf" -e "$W/be/error.log" || die "backend nginx did not start"
wait_listen "$P_BACKEND"

# ---- nginx as users run it: auth_basic + proxy_pass, upstream keep-alive, TLS ------------
mkdir -p "$W/ngx"
cat >"$W/ngx/nginx.conf" <<EOF
daemon on;
pid $W/ngx/nginx.pid;
error_log $W/ngx/error.log warn;
worker_processes $WORKERS;
worker_rlimit_nofile 20000;
events { worker_connections 20000; }
http {
	access_log off;
	client_body_temp_path $W/ngx;
	proxy_temp_path $W/ngx;
	keepalive_requests 1000000;
	keepalive_timeout 300s;
	upstream tfserving { server 127.0.0.1:$P_BACKEND; keepalive 64; }
	server {
		listen 127.0.0.1:$P_NGX_TLS ssl;
		ssl_certificate $W/cert.pem;
		ssl_certificate_key $W/key.pem;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_session_cache shared:SSL:10m;
		client_max_body_size 64m;
		location / {
			auth_basic "TensorFlow Serving";
			auth_basic_user_file $W/htpasswd;
			proxy_pass http://tfserving;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
	server {
		listen 127.0.0.1:$P_NGX_PLAIN;
		client_max_body_size 64m;
		location / {
			proxy_pass http://tfserving;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
EOF
"$NGINX" -c "$W/ngx/nginx.conf" -e "$W/ngx/error.log" || die "nginx did not start"

# ---- tfguard-proxy: the same backend, cert, htpasswd and worker count -------------------
tfg_conf() { # PORT PLAIN
	cat <<EOF
[proxy]
listen = 127.0.0.1:$1
plain_http = $2
tls_cert = $W/cert.pem
tls_key = $W/key.pem
backend_rest = 127.0.0.1:$P_BACKEND
htpasswd = $W/htpasswd
workers = $WORKERS
max_connections = 10500
user = nobody
access_log =
idle_timeout = 300s
EOF
}
tfg_conf "$P_TFG_TLS" no >"$W/tfg-tls.conf"
tfg_conf "$P_TFG_PLAIN" yes >"$W/tfg-plain.conf"
ulimit -n 20000 2>/dev/null
for c in tls plain; do
	"$PROXY_BIN" -c "$W/tfg-$c.conf" 2>"$OUT/tfguard-$c.log" &
	PIDS+=($!)
done
for p in $P_NGX_TLS $P_NGX_PLAIN $P_TFG_TLS $P_TFG_PLAIN; do wait_listen "$p"; done

# ---- correctness first: 200 with credentials, 401 without -------------------------------
status() { curl -sk -o /dev/null -w '%{http_code}' "$@"; }
for who in "nginx https://127.0.0.1:$P_NGX_TLS" "tfguard https://127.0.0.1:$P_TFG_TLS"; do
	set -- $who
	url=$2/v1/models/m:predict
	[ "$(status -u apr:apr-secret -d "$BODY" "$url")" = 200 ] || die "$1: no 200 for apr"
	[ "$(status -u bc:bc-secret -d "$BODY" "$url")" = 200 ] || die "$1: no 200 for bcrypt"
	[ "$(status -d "$BODY" "$url")" = 401 ] || die "$1: no 401 without credentials"
	[ "$(status -u apr:wrong -d "$BODY" "$url")" = 401 ] || die "$1: no 401 for a wrong password"
done
[ "$(status -d "$BODY" "http://127.0.0.1:$P_NGX_PLAIN/v1/models/m:predict")" = 200 ] || die "nginx plain"
[ "$(status -u apr:apr-secret -d "$BODY" "http://127.0.0.1:$P_TFG_PLAIN/v1/models/m:predict")" = 200 ] ||
	die "tfguard plain"
echo "bench: both proxies answer 200 with credentials and 401 without"

# ---- wrk ---------------------------------------------------------------------------------
cat >"$W/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
EOF
cat >"$W/close.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Connection"] = "close"
EOF
cat >"$W/big.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"instances": "' .. string.rep("A", 10 * 1024 * 1024 - 18) .. '"}'
wrk.headers["Content-Type"] = "application/json"
EOF

# to_ms "1.23ms" -> 1.23
to_ms() {
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0;
		else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
# run_wrk LOG CONNS SCRIPT HEADER URL: prints "rps p50_ms p99_ms"
run_wrk() {
	local log=$1 conns=$2 script=$3 header=$4 url=$5
	local args=(-t"$THREADS" -c"$conns" -d"${DUR}s" --latency --timeout 10s -s "$script")
	[ -n "$header" ] && args+=(-H "$header")
	timeout $((DUR + 30)) wrk "${args[@]}" "$url" >"$log" 2>&1
	local rps p50 p99 errs
	rps=$(awk '/^Requests\/sec/ { print $2 }' "$log")
	p50=$(awk '$1 == "50%" { print $2 }' "$log")
	p99=$(awk '$1 == "99%" { print $2 }' "$log")
	errs=$(awk '/Non-2xx or 3xx responses/ { print $5 }' "$log")
	[ -n "$errs" ] && echo "bench: warning: $errs non-2xx answers in $log" >&2
	echo "${rps:-0} $(to_ms "${p50:-0}") $(to_ms "${p99:-0}")"
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
minmax() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f-%.0f", lo, hi }'; }

CSV=$OUT/bench.csv
echo "row,proxy,rps_median,rps_min,rps_max,p50_ms,p99_ms,ratio_tfguard_over_nginx" >"$CSV"
TABLE=()
# row NAME CONNS SCRIPT NGX_HEADER NGX_URL TFG_HEADER TFG_URL
row() {
	local name=$1 conns=$2 script=$3 nh=$4 nu=$5 th=$6 tu=$7 r who
	declare -A rps p50 p99
	echo "bench: $name ($ROUNDS x ${DUR}s per proxy)"
	for r in $(seq 1 "$ROUNDS"); do
		for who in nginx tfguard; do
			local res
			if [ $who = nginx ]; then
				res=$(run_wrk "$OUT/$name-$who-$r.log" "$conns" "$script" "$nh" "$nu")
			else
				res=$(run_wrk "$OUT/$name-$who-$r.log" "$conns" "$script" "$th" "$tu")
			fi
			read -r a b c <<<"$res"
			rps[$who]+="$a "
			p50[$who]+="$b "
			p99[$who]+="$c "
		done
	done
	local nm tm
	nm=$(tr ' ' '\n' <<<"${rps[nginx]}" | grep . | median)
	tm=$(tr ' ' '\n' <<<"${rps[tfguard]}" | grep . | median)
	local ratio
	ratio=$(awk -v t="$tm" -v n="$nm" 'BEGIN { printf (n > 0 ? "%.2f" : "inf"), (n > 0 ? t / n : 0) }')
	for who in nginx tfguard; do
		local med mm q50 q99
		med=$(tr ' ' '\n' <<<"${rps[$who]}" | grep . | median)
		mm=$(tr ' ' '\n' <<<"${rps[$who]}" | grep . | minmax)
		q50=$(tr ' ' '\n' <<<"${p50[$who]}" | grep . | median)
		q99=$(tr ' ' '\n' <<<"${p99[$who]}" | grep . | median)
		echo "$name,$who,$med,${mm%-*},${mm#*-},$q50,$q99,$ratio" >>"$CSV"
		TABLE+=("$(printf '%-34s %-8s %10.0f  %-17s %8.2f %8.2f  %s' "$name" "$who" "$med" "$mm" "$q50" "$q99" \
			"$([ $who = tfguard ] && echo "${ratio}x" || echo)")")
	done
}

NT=https://127.0.0.1:$P_NGX_TLS/v1/models/m:predict
TT=https://127.0.0.1:$P_TFG_TLS/v1/models/m:predict
row https-keepalive-apr1 $CONNS "$W/post.lua" "$AUTH_APR" "$NT" "$AUTH_APR" "$TT"
row https-keepalive-bcrypt10 $CONNS "$W/post.lua" "$AUTH_BC" "$NT" "$AUTH_BC" "$TT"
# Connection: close on every request: a new connection and a full TLS handshake each
# time (wrk does not resume sessions)
row https-new-connection-apr1 16 "$W/close.lua" "$AUTH_APR" "$NT" "$AUTH_APR" "$TT"
# nginx without auth_basic here; tfguard cannot turn authentication off, so it still
# checks Basic credentials (cached): the proxying cost, as near as tfguard allows
row plain-http-keepalive $CONNS "$W/post.lua" "" \
	"http://127.0.0.1:$P_NGX_PLAIN/v1/models/m:predict" "$AUTH_APR" \
	"http://127.0.0.1:$P_TFG_PLAIN/v1/models/m:predict"
row predict-10MB-body-https 4 "$W/big.lua" "$AUTH_APR" "$NT" "$AUTH_APR" "$TT"

# ---- gRPC: tfguard vs nginx grpc_pass + auth_basic (self-contained; needs h2load) --------
# One more backend (nginx speaking h2c, answering every call with the same serialized
# PredictResponse and grpc-status 0), nginx in front with `grpc_pass` + auth_basic over
# TLS (ALPN h2), tfguard with backend_grpc: the same cert, htpasswd, credentials and
# worker count. Load: h2load, $GRPC_CONNS connections x 10 streams, unary Predict calls;
# p50/p99 from h2load's per-request log.
grpc_row() {
	local name=grpc-unary-predict-apr1 be gngx gtfg r who
	command -v h2load >/dev/null || { echo "bench: h2load missing (nghttp2-client): no gRPC row" >&2; return; }
	read -r be gngx gtfg <<<"$("$PY" -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"
	mkdir -p "$W/gbe" "$W/gngx"
	# PredictResponse { outputs { "y": TensorProto { dtype: 1, ... } } }, gRPC-framed
	printf '\x00\x00\x00\x00\x0e\x0a\x0c\x0a\x0a\x0a\x01y\x12\x05\x08\x01\x12\x01\x33' >"$W/gbe/reply.bin"
	# PredictRequest { model_spec { name: "m" } inputs ... }, gRPC-framed
	printf '\x00\x00\x00\x00\x13\x0a\x03\x0a\x01m\x12\x0c\x0a\x01x\x12\x07\x08\x01\x12\x03\x0a\x01\x34' >"$W/grpc-req.bin"
	cat >"$W/gbe/nginx.conf" <<GEOF
daemon on;
pid $W/gbe/nginx.pid;
error_log $W/gbe/error.log warn;
worker_processes 1;
worker_rlimit_nofile 20000;
events { worker_connections 20000; }
http {
	access_log off;
	client_body_temp_path $W/gbe;
	server {
		listen 127.0.0.1:$be http2;
		http2_max_concurrent_streams 1024;
		keepalive_requests 1000000;
		client_max_body_size 0;
		location / { error_page 405 =200 /reply.bin; return 405; }
		location = /reply.bin {
			internal;
			root $W/gbe;
			default_type application/grpc;
			add_trailer grpc-status 0 always;
		}
	}
}
GEOF
	cat >"$W/gngx/nginx.conf" <<GEOF
daemon on;
pid $W/gngx/nginx.pid;
error_log $W/gngx/error.log warn;
worker_processes $WORKERS;
worker_rlimit_nofile 20000;
events { worker_connections 20000; }
http {
	access_log off;
	client_body_temp_path $W/gngx;
	keepalive_requests 1000000;
	upstream tfgrpc { server 127.0.0.1:$be; keepalive 64; }
	server {
		listen 127.0.0.1:$gngx ssl http2;
		ssl_certificate $W/cert.pem;
		ssl_certificate_key $W/key.pem;
		ssl_protocols TLSv1.2 TLSv1.3;
		http2_max_concurrent_streams 128;
		client_max_body_size 64m;
		location / {
			auth_basic "TensorFlow Serving";
			auth_basic_user_file $W/htpasswd;
			grpc_pass grpc://tfgrpc;
		}
	}
}
GEOF
	"$NGINX" -c "$W/gbe/nginx.conf" -e "$W/gbe/error.log" || { echo "bench: gRPC backend nginx did not start" >&2; return; }
	"$NGINX" -c "$W/gngx/nginx.conf" -e "$W/gngx/error.log" || { echo "bench: nginx grpc_pass did not start" >&2; return; }
	tfg_conf "$gtfg" no >"$W/tfg-grpc.conf"
	echo "backend_grpc = 127.0.0.1:$be" >>"$W/tfg-grpc.conf"
	"$PROXY_BIN" -c "$W/tfg-grpc.conf" 2>"$OUT/tfguard-grpc.log" &
	PIDS+=($!)
	wait_listen "$be"
	wait_listen "$gngx"
	wait_listen "$gtfg"
	local auth="authorization: Basic $(printf 'apr:apr-secret' | base64)"
	declare -A url=([nginx]="https://127.0.0.1:$gngx/tensorflow.serving.PredictionService/Predict"
		[tfguard]="https://127.0.0.1:$gtfg/tensorflow.serving.PredictionService/Predict")
	h2() { # LOG URL H2LOAD-ARGS...: h2load with the gRPC headers and body
		local log=$1 u=$2
		shift 2
		timeout $((DUR + 30)) h2load --npn-list=h2 -H 'content-type: application/grpc' \
			-H 'te: trailers' -H "$auth" -d "$W/grpc-req.bin" "$@" "$u" >"$log" 2>&1
	}
	# correctness first: the reply through each proxy is the backend's, byte for byte
	# (a Python grpcio client when there is one), and calls without credentials fail
	for who in nginx tfguard; do
		h2 "$OUT/$name-$who-check.log" "${url[$who]}" -n 20 -c 2 ||
			{ echo "bench: $who: h2load check failed" >&2; return; }
		grep -q 'status codes: 20 2xx' "$OUT/$name-$who-check.log" ||
			{ echo "bench: $who: not 20 x 200 in the gRPC check" >&2; return; }
	done
	if "$PY" -c 'import grpc' 2>/dev/null; then
		for who in nginx tfguard; do
			local port=$gngx
			[ $who = tfguard ] && port=$gtfg
			"$PY" "$TOP/tests/helpers/grpc_client.py" "127.0.0.1:$port" \
				/tensorflow.serving.PredictionService/Predict --ca "$W/cert.pem" \
				--user apr:apr-secret --model m --out "$W/grpc-$who.bin" | grep -q '"OK"' ||
				{ echo "bench: $who: gRPC call not OK" >&2; return; }
			cmp -s "$W/grpc-$who.bin" <(tail -c +6 "$W/gbe/reply.bin") ||
				{ echo "bench: $who: reply differs from the backend's" >&2; return; }
			"$PY" "$TOP/tests/helpers/grpc_client.py" "127.0.0.1:$port" \
				/tensorflow.serving.PredictionService/Predict --ca "$W/cert.pem" \
				--model m 2>/dev/null | grep -q UNAUTHENTICATED ||
				{ echo "bench: $who: no UNAUTHENTICATED without credentials" >&2; return; }
		done
		echo "bench: gRPC: both proxies pass the reply byte for byte and refuse calls without credentials"
	fi
	declare -A rps p50 p99
	echo "bench: $name ($ROUNDS x ${DUR}s per proxy, h2load -c$GRPC_CONNS -m10)"
	for r in $(seq 1 "$ROUNDS"); do
		for who in nginx tfguard; do
			local log=$OUT/$name-$who-$r.log reqlog=$W/h2load-$who-$r.tsv
			h2 "$log" "${url[$who]}" -D "$DUR" -c "$GRPC_CONNS" -m 10 -t "$THREADS" \
				--log-file="$reqlog"
			grep -Eq 'status codes: [0-9]+ 2xx, 0 3xx, 0 4xx, 0 5xx' "$log" ||
				echo "bench: warning: non-2xx answers in $log" >&2
			rps[$who]+="$(awk '/^finished in/ { gsub(",", "", $4); print $4 }' "$log") "
			# log-file: start time, status, duration in µs per request
			p50[$who]+="$(awk -F'\t' '{ print $3 / 1000 }' "$reqlog" | sort -g |
				awk '{ a[NR] = $1 } END { print a[int(NR * 0.50) + 1] + 0 }') "
			p99[$who]+="$(awk -F'\t' '{ print $3 / 1000 }' "$reqlog" | sort -g |
				awk '{ a[NR] = $1 } END { i = int(NR * 0.99) + 1; if (i > NR) i = NR; print a[i] + 0 }') "
		done
	done
	local nm tm ratio med mm q50 q99
	nm=$(tr ' ' '\n' <<<"${rps[nginx]}" | grep . | median)
	tm=$(tr ' ' '\n' <<<"${rps[tfguard]}" | grep . | median)
	ratio=$(awk -v t="$tm" -v n="$nm" 'BEGIN { printf (n > 0 ? "%.2f" : "inf"), (n > 0 ? t / n : 0) }')
	for who in nginx tfguard; do
		med=$(tr ' ' '\n' <<<"${rps[$who]}" | grep . | median)
		mm=$(tr ' ' '\n' <<<"${rps[$who]}" | grep . | minmax)
		q50=$(tr ' ' '\n' <<<"${p50[$who]}" | grep . | median)
		q99=$(tr ' ' '\n' <<<"${p99[$who]}" | grep . | median)
		echo "$name,$who,$med,${mm%-*},${mm#*-},$q50,$q99,$ratio" >>"$CSV"
		TABLE+=("$(printf '%-34s %-8s %10.0f  %-17s %8.2f %8.2f  %s' "$name" "$who" "$med" "$mm" "$q50" "$q99" \
			"$([ $who = tfguard ] && echo "${ratio}x" || echo)")")
	done
}
GRPC_CONNS=16
grpc_row

# ---- memory: idle TLS keep-alive connections --------------------------------------------
cat >"$W/idle.py" <<'PYEOF'
# Opens N TLS connections, sends one authenticated request on each (so each is a
# keep-alive connection after a request), holds them all, prints "ready" and waits
# for a line on stdin. Bounded: gives up after 150 s.
import resource, socket, ssl, sys, time
port, n, auth = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
req = ("GET /v1/models/m HTTP/1.1\r\nHost: localhost\r\n%s\r\n\r\n" % auth).encode()
conns, deadline = [], time.time() + 150
for i in range(n):
    if time.time() > deadline:
        sys.exit("idle: took too long after %d connections" % i)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("idle: connection %d closed" % i)
        buf += chunk
    if not buf.startswith(b"HTTP/1.1 200"):
        sys.exit("idle: connection %d got %r" % (i, buf[:40]))
    conns.append(s)
print("ready", flush=True)
sys.stdin.readline()
PYEOF
rss_kb() { # PID...: summed VmRSS of the processes and their children
	local p total=0 v
	for p in "$@" $(for q in "$@"; do pgrep -P "$q"; done); do
		v=$(awk '/^VmRSS/ { print $2 }' "/proc/$p/status" 2>/dev/null)
		total=$((total + ${v:-0}))
	done
	echo $total
}
idle_row() { # NAME PORT PID...: prints "bytes_per_conn rss_before_kb rss_after_kb"
	local name=$1 port=$2 before after fifo=$W/idle-$1.fifo out=$W/idle-$1.out cpid end
	shift 2
	before=$(rss_kb "$@")
	mkfifo "$fifo"
	"$PY" "$W/idle.py" "$port" "$IDLE" "$AUTH_APR" <"$fifo" >"$out" 2>&1 &
	cpid=$!
	exec 7>"$fifo"
	end=$(($(date +%s) + 160))
	until grep -q ready "$out"; do
		if ! kill -0 $cpid 2>/dev/null || [ "$(date +%s)" -ge $end ]; then
			kill $cpid 2>/dev/null
			exec 7>&-
			echo "bench: idle client for $name failed: $(cat "$out")" >&2
			echo "0 0 0"
			return
		fi
		sleep 0.2
	done
	after=$(rss_kb "$@")
	echo >&7
	exec 7>&-
	wait $cpid
	awk -v b="$before" -v a="$after" -v n="$IDLE" 'BEGIN { printf "%.0f %d %d", (a - b) * 1024 / n, b, a }'
}
echo "bench: $IDLE idle TLS keep-alive connections per proxy"
read -r ngx_per ngx_b ngx_a <<<"$(idle_row nginx "$P_NGX_TLS" "$(cat "$W/ngx/nginx.pid")")"
read -r tfg_per tfg_b tfg_a <<<"$(idle_row tfguard "$P_TFG_TLS" "${PIDS[0]}")"
echo "idle-tls-connections,nginx,,,,,,bytes_per_conn=$ngx_per" >>"$CSV"
echo "idle-tls-connections,tfguard,,,,,,bytes_per_conn=$tfg_per" >>"$CSV"

# ---- the table ---------------------------------------------------------------------------
csv() { awk -F, -v r="$1" -v p="$2" '$1 == r && $2 == p { print $3 }' "$CSV"; }
ratio() { awk -v t="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.2fx", t / n; else print "n/a" }'; }
echo
echo "tfguard-proxy vs nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') + auth_basic on $(nproc) cores:" \
	"$WORKERS workers each, wrk -t$THREADS, $ROUNDS x ${DUR}s rounds, interleaved"
printf '%-34s %-8s %10s  %-17s %8s %8s  %s\n' row proxy "req/s" "min-max" "p50 ms" "p99 ms" \
	"tfguard/nginx"
printf '%s\n' "${TABLE[@]}"
echo
big_n=$(csv predict-10MB-body-https nginx)
big_t=$(csv predict-10MB-body-https tfguard)
printf '%-40s nginx %6.0f MB/s   tfguard %6.0f MB/s   %s\n' "10 MB predict body, HTTPS" \
	"$(awk -v r="$big_n" 'BEGIN { print r * 10 }')" "$(awk -v r="$big_t" 'BEGIN { print r * 10 }')" \
	"$(ratio "$big_t" "$big_n")"
printf '%-40s nginx %6s B      tfguard %6s B      (RSS kB: nginx %s -> %s, tfguard %s -> %s)\n' \
	"memory per idle TLS connection" "$ngx_per" "$tfg_per" "$ngx_b" "$ngx_a" "$tfg_b" "$tfg_a"
printf '%-40s %s\n' "stretch: tfguard TLS+auth / nginx plain" \
	"$(ratio "$(csv https-keepalive-apr1 tfguard)" "$(csv plain-http-keepalive nginx)")"
echo "CSV: $CSV; wrk logs: $OUT/"
