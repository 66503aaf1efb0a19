#!/bin/bash
# make demo: the whole tfguard story, in two network namespaces it creates and
# removes (safe on any machine: the host's own firewall and interfaces are never
# touched). A "server" namespace runs a TensorFlow Serving stand-in the way
# tensorflow_model_server listens (REST on [::]:8501, dual-stack), under
# tfguard-run; tfguard apply closes the raw port; tfguard-proxy serves TLS +
# Basic auth on 8443. A "client" namespace then shows, command by command, what
# an outsider gets. Exits non-zero as soon as a step does not behave as shown.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=${TFG_BUILD:-$TOP/build}
PY=/usr/bin/python3
STUB=$TOP/tests/helpers/tfserving_stub.py
SRV=tfgdemo-srv-$$
CLI=tfgdemo-cli-$$
SRV4=10.77.0.1 CLI4=10.77.0.2 SRV6=fd77::1 CLI6=fd77::2
W=$(mktemp -d /tmp/tfguard-demo.XXXXXX)
PIDS=()

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# q ARGS...: the arguments as one shell command line (quoted where needed)
q() {
	local a out=
	for a; do
		if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
			out+="$a "
		else
			out+="'${a//\'/\'\\\'\'}' "
		fi
	done
	printf '%s' "${out% }"
}
# Every command shown is exactly the one run, and it is run once: its output and
# exit code are what the checks look at.
show() { printf '\033[36m$ %s\033[0m\n' "$(q "$@")"; }
run() { # show the command, then run it; its output is shown too
	show "$@"
	"$@"
}
# runcap CMD...: show CMD, run it, print its output indented; OUT and RC hold them
runcap() {
	show "$@"
	OUT=$("$@")
	RC=$?
	[ -z "$OUT" ] || printf '%s\n' "$OUT" | sed 's/^/   /'
}
ok() { printf '\033[32m   ok: %s\033[0m\n' "$*"; }
die() {
	printf '\033[31mdemo FAILED: %s\033[0m\n' "$*" >&2
	for l in "$W"/*.log; do [ -s "$l" ] && { echo "--- $l"; tail -n 15 "$l"; } >&2; done
	exit 1
}
cleanup() {
	local p
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do
		for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		kill -KILL "$p" 2>/dev/null
	done
	for ns in "$SRV" "$CLI"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[ "$(id -u)" = 0 ] || die "needs root (it creates network namespaces)"
for b in tfguard tfguard-run tfguard-proxy libtfguard-preload.so; do
	[ -e "$B/$b" ] || die "$B/$b is missing (run make)"
done
for c in ip nft curl openssl "$PY"; do command -v "$c" >/dev/null || die "$c is missing"; done
START=$(date +%s)
# the commands run in a namespace, as they are shown: ip netns exec NS ...
IN_SRV=(ip netns exec "$SRV")
IN_CLI=(ip netns exec "$CLI")
in_srv() { "${IN_SRV[@]}" "$@"; }
# poll CMD... for up to 10 s: readiness is waited for, never slept for
poll() {
	local end=$(($(date +%s%3N) + 10000))
	until "$@"; do
		[ "$(date +%s%3N)" -ge $end ] && return 1
		sleep 0.05
	done
}
listening() { [ -n "$(in_srv ss -Hltn "sport = :$1")" ]; }

bold "1. Two hosts: a model server and an outside client (network namespaces)"
ip netns add "$SRV" && ip netns add "$CLI" || die "ip netns add"
ip -n "$SRV" link set lo up
ip -n "$CLI" link set lo up
ip link add "tfgd$$a" netns "$SRV" type veth peer name "tfgd$$b" netns "$CLI" || die "veth"
ip -n "$SRV" addr add $SRV4/24 dev "tfgd$$a"
ip -n "$CLI" addr add $CLI4/24 dev "tfgd$$b"
ip -n "$SRV" addr add $SRV6/64 dev "tfgd$$a" nodad
ip -n "$CLI" addr add $CLI6/64 dev "tfgd$$b" nodad
ip -n "$SRV" link set "tfgd$$a" up
ip -n "$CLI" link set "tfgd$$b" up
echo "server $SRV4 / $SRV6, client $CLI4 / $CLI6"

# the demo's config, certificate and user
chmod 0755 "$W"
cat >"$W/tfguard.conf" <<EOF
[guard]
protected_ports = 8500, 8501
[proxy]
listen = 0.0.0.0:8443, [::]:8443
tls_cert = $W/cert.pem
tls_key = $W/key.pem
backend_rest = 127.0.0.1:8501
htpasswd = $W/htpasswd
user = nobody
access_log = $W/access.log
[limits]
default = 50r/s burst=100
client = 100r/s burst=200
[acl]
demo = half_plus_two
EOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 90 \
	-subj /CN=tfguard-demo -addext "subjectAltName=IP:$SRV4" \
	-keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null || die "openssl req"
chmod 0600 "$W/key.pem"
: >"$W/access.log"
chown nobody "$W/access.log"
TF=("$B/tfguard" -c "$W/tfguard.conf")

bold "2. TF Serving (stand-in) starts the way tensorflow_model_server does: [::]:8501"
echo "   ... but under tfguard-run, so the bind lands on loopback"
c=("${IN_SRV[@]}" "$B/tfguard-run" -c "$W/tfguard.conf" -- "$PY" "$STUB" --host :: --port 8501)
printf '\033[36m$ %s >%s 2>&1 &\033[0m\n' "$(q "${c[@]}")" "$W/stub.log"
"${c[@]}" >"$W/stub.log" 2>&1 &
PIDS+=($!)
poll listening 8501 || die "the stand-in did not start"
grep 'tfguard' "$W/stub.log" | head -n 2
runcap "${IN_SRV[@]}" ss -Hltn "sport = :8501"
grep -q '127.0.0.1]*:8501 ' <<<"$OUT" || die "8501 is not on loopback"
ok "listening on loopback only, though the program asked for [::]"

bold "3. The firewall: tfguard apply (one atomic netlink batch)"
run "${IN_SRV[@]}" "${TF[@]}" apply || die "tfguard apply"
runcap "${IN_SRV[@]}" "${TF[@]}" status
[ $RC -eq 0 ] || die "tfguard status is not current (exit $RC)"

bold "4. tfguard-proxy: TLS + Basic auth + per-model ACL in front of it"
c=("${IN_SRV[@]}" "${TF[@]}" passwd --stdin -f "$W/htpasswd" demo)
printf '\033[36m$ echo demo-password | %s\033[0m\n' "$(q "${c[@]}")"
echo demo-password | "${c[@]}" || die "passwd"
run chown nobody "$W/htpasswd"
run chmod 0600 "$W/htpasswd"
c=("${IN_SRV[@]}" "$B/tfguard-run" -c "$W/tfguard.conf" --allow-bind 0.0.0.0:8443
	--allow-bind '[::]:8443' -- "$B/tfguard-proxy" -c "$W/tfguard.conf")
printf '\033[36m$ %s >%s 2>&1 &\033[0m\n' "$(q "${c[@]}")" "$W/proxy.log"
"${c[@]}" >"$W/proxy.log" 2>&1 &
PIDS+=($!)
poll listening 8443 || die "tfguard-proxy did not start"
ok "tfguard-proxy listens on :8443"

bold "5. From the client: the raw REST port is closed"
run "${IN_CLI[@]}" curl -s -o /dev/null --max-time 2 "http://$SRV4:8501/v1/models/half_plus_two"
rc=$?
# curl exit 28 is a timeout: no answer at all, the firewall dropped it (7 would be
# a refusal, which only shows that nothing listens there)
echo "   -> curl exit $rc (timeout: no answer, dropped)"
[ $rc -eq 28 ] || die "direct access to 8501: curl exit $rc, expected a timeout (28)"
run "${IN_CLI[@]}" curl -s -o /dev/null --max-time 2 -g "http://[$SRV6]:8501/v1/models/half_plus_two"
rc=$?
[ $rc -eq 28 ] || die "direct IPv6 access to 8501: curl exit $rc, expected a timeout (28)"
ok "8501 is dropped over IPv4 and IPv6"

CURL=(curl -s --cacert "$W/cert.pem" --max-time 5)
URL=https://$SRV4:8443/v1/models
bold "6. Through the proxy without credentials"
runcap "${IN_CLI[@]}" "${CURL[@]}" -w '\n%{http_code}' -d '{"instances": [1.0, 2.0, 5.0]}' "$URL/half_plus_two:predict"
[ "${OUT##*$'\n'}" = 401 ] || die "no 401 without credentials"
ok "401, TF Serving-shaped error"

bold "7. With credentials: a prediction"
runcap "${IN_CLI[@]}" "${CURL[@]}" -w '\n%{http_code}' -u demo:demo-password \
	-d '{"instances": [1.0, 2.0, 5.0]}' "$URL/half_plus_two:predict"
[ "${OUT##*$'\n'}" = 200 ] || die "no 200 with credentials"
grep -q '"predictions"' <<<"$OUT" || die "no predictions in the answer"
ok "200 with the model's answer"

bold "8. A model the user may not call"
runcap "${IN_CLI[@]}" "${CURL[@]}" -w '\n%{http_code}' -u demo:demo-password \
	-d '{"instances": [1.0]}' "$URL/secret:predict"
[ "${OUT##*$'\n'}" = 403 ] || die "no 403 for a forbidden model"
ok "403"

bold "9. The audit: tfguard check (on the server) and tfguard probe (from the client)"
runcap "${IN_SRV[@]}" "${TF[@]}" check --netns "$SRV,$CLI"
[ $RC -eq 0 ] || die "tfguard check is not compliant (exit $RC)"
grep -q ' 0 fail' <<<"$OUT" || die "tfguard check reported failures"
grep -q '^WARN\|^FAIL\|^SKIP' <<<"$OUT" && die "tfguard check is not all green"
ok "all green"
runcap "${IN_CLI[@]}" "${TF[@]}" probe "$SRV4"
[ $RC -eq 0 ] || die "tfguard probe is not compliant (exit $RC)"
grep -q "^PASS  $SRV4:8501: filtered" <<<"$OUT" || die "probe did not see 8501 filtered"
grep -qx compliant <<<"$OUT" || die "probe did not say compliant"
ok "compliant from outside too"

bold "10. Tear-down"
echo "demo passed in $(($(date +%s) - START)) s; removing the namespaces"
