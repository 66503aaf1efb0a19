#!/bin/bash
# tfguard-proxy, streaming: a 200 MB predict body (Content-Length and chunked) and a
# 200 MB response pass byte for byte while the proxy's peak RSS (VmHWM) stays small;
# Expect: 100-continue gets its 401 before the body is sent; max_body is enforced on
# Content-Length before reading and while streaming a chunked body.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
need_cmd ss sha256sum
px_init
px_stub --big-bytes $((200 << 20))
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL="bob = *"
px_conf 'max_body = 256M' 'auth_fail_limit = 1000'
px_start
U=(-u bob:bob-pw)
big=$TFG_TMP/body.bin
head -c $((200 << 20)) /dev/urandom >"$big"
sum=$(sha256sum <"$big" | cut -d' ' -f1)
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$PX_PID/status"; }
say "VmHWM before: $(hwm) kB"

t0=$(date +%s%N)
out=$(pcurl "${U[@]}" -H 'Content-Type: application/octet-stream' --data-binary "@$big" "$(PURL /v1/models/fraud:predict)")
ms=$((($(date +%s%N) - t0) / 1000000))
check "200 MB body (Content-Length) arrived whole" [ "$(rec_last 'r["body_len"]')" = $((200 << 20)) ]
check "... byte for byte" [ "$(rec_last 'r["body_sha256"]')" = "$sum" ]
check "... and the answer came back" grep -q "\"sha256\": \"$sum\"" <<<"$out"
say "200 MB upload in $ms ms; VmHWM $(hwm) kB"

out=$(pcurl "${U[@]}" -H 'Transfer-Encoding: chunked' --data-binary "@-" "$(PURL /v1/models/fraud:predict)" <"$big")
check "200 MB chunked body arrived whole" [ "$(rec_last 'r["body_len"]')" = $((200 << 20)) ]
check "... byte for byte" [ "$(rec_last 'r["body_sha256"]')" = "$sum" ]
check "... sent chunked to the backend" [ "$(rec_last '[v for h,v in r["headers"] if h.lower()=="transfer-encoding"]')" = "['chunked']" ]

t0=$(date +%s%N)
got=$(pcurl "${U[@]}" -d '{}' "$(PURL /v1/models/big:predict)" | wc -c)
ms=$((($(date +%s%N) - t0) / 1000000))
check "200 MB response streamed whole ($got bytes)" [ "$got" = $((200 << 20)) ]
say "200 MB download in $ms ms"
peak=$(hwm)
say "proxy peak RSS (VmHWM) after 600 MB streamed: $peak kB"
case "$B" in
*/san) say "SAN build: ASan's quarantine keeps freed TLS records; RSS bound not checked" ;;
*) check "peak RSS stays under 48 MB" [ "$peak" -lt 49152 ] ;;
esac

# Expect: 100-continue: a wrong password is answered before the body is sent
n=$(rec_count)
res=$(pcurl -o "$TFG_TMP/body" -w '%{http_code} %{size_upload}' -u bob:wrong -H 'Expect: 100-continue' \
	--data-binary "@$big" "$(PURL /v1/models/fraud:predict)")
check "Expect: 100-continue + wrong password → 401 ($res)" [ "${res% *}" = 401 ]
check "... before the body was sent (uploaded ${res#* } bytes)" [ "${res#* }" -lt $((16 << 20)) ]
# and with the right password the body follows the 100 Continue
res=$(pcurl -o /dev/null -w '%{http_code}' "${U[@]}" -H 'Expect: 100-continue' \
	--data-binary '{"instances":[1]}' "$(PURL /v1/models/fraud:predict)")
check "Expect: 100-continue + right password → 200" [ "$res" = 200 ]
check "Expect is not forwarded" [ "$(rec_last '[h for h,v in r["headers"] if h.lower()=="expect"]')" = "[]" ]

# max_body: Content-Length checked before reading, chunked while streaming
head -c $((300 << 20)) /dev/zero >"$TFG_TMP/toolarge.bin"
res=$(pcurl -o "$TFG_TMP/body" -w '%{http_code} %{size_upload}' "${U[@]}" --data-binary "@$TFG_TMP/toolarge.bin" "$(PURL /v1/models/fraud:predict)")
check "Content-Length over max_body → 413 ($res)" [ "${res% *}" = 413 ]
check "... before the body was read (uploaded ${res#* } bytes)" [ "${res#* }" -lt $((16 << 20)) ]
res=$(pcurl -o "$TFG_TMP/body" -w '%{http_code}' "${U[@]}" -H 'Transfer-Encoding: chunked' --data-binary "@-" "$(PURL /v1/models/fraud:predict)" <"$TFG_TMP/toolarge.bin")
check "chunked body over max_body → 413 ($res)" [ "$res" = 413 ]
check "413 body is TF Serving-shaped" grep -q '"error"' "$TFG_TMP/body"
check "no oversized body reached the stand-in" [ "$(rec_count)" = $((n + 1)) ]
pass
