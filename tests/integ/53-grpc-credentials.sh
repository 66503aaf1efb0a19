#!/bin/bash
# tfguard-proxy, gRPC with the stronger credentials of [proxy] auth: the gRPC path goes
# through the same ident_resolve() as REST, so an API token in the `authorization`
# metadata ("Bearer tfg_...") and a client certificate (mTLS) identify the caller of a
# gRPC call exactly as they do a REST request: right token or certificate → OK with
# x-forwarded-user; altered token, no credential → UNAUTHENTICATED, nothing reaches the
# stand-in; the user's [acl] still applies; a certificate and a token naming two
# different users are refused.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/helpers/proxy_env.sh"
. "$TOP/tests/helpers/grpc_env.sh"
. "$TOP/tests/helpers/mtls_pki.sh"
need_cmd ss
px_init
px_stub
gx_stub
htpasswd -bB "$PX_HT" bob bob-pw 2>/dev/null
PX_ACL="alice = m1
bob = m2
carol = m2"
TOK=$TFG_TMP/tokens
: >"$TOK"
chown "root:$(id -gn "$PX_USER")" "$TOK"
chmod 0640 "$TOK"
pki_ca ca
pki_client ca carol
pki_crl ca
gx_conf "auth = mtls, token, basic" "tokens = $TOK" "client_ca = $PKI/ca.pem" \
	"client_crl = $PKI/ca.crl" "client_cert = optional" "auth_fail_limit = 1000"
t_alice=$("$B/tfguard" -c "$PX_CONF" token new alice 2>/dev/null) || fail "token new alice"
px_start
P=/tensorflow.serving.PredictionService/Predict
md() { grec_last "[v for k,v in r['metadata'] if k=='$1']"; }

n0=$(grec_count)
check "alice's token in the authorization metadata → OK" expect_grpc OK $P --authz "Bearer $t_alice" --model m1
check "... the stand-in sees x-forwarded-user alice" [ "$(md x-forwarded-user)" = "['alice']" ]
check "... and no authorization" [ "$(md authorization)" = "[]" ]
check "alice is held to her [acl] (m2) → PERMISSION_DENIED" expect_grpc PERMISSION_DENIED $P --authz "Bearer $t_alice" --model m2
altered=${t_alice%?}$([ "${t_alice: -1}" = A ] && echo B || echo A)
n1=$(grec_count)
check "an altered token → UNAUTHENTICATED" expect_grpc UNAUTHENTICATED $P --authz "Bearer $altered" --model m1
check "no credential → UNAUTHENTICATED" expect_grpc UNAUTHENTICATED $P --model m1
check "nothing refused reached the stand-in" [ "$(grec_count)" = "$n1" ]
check "Basic still works beside them" expect_grpc OK $P --user bob:bob-pw --model m2

C="--cert $PKI/carol.pem --key $PKI/carol.key"
check "carol's client certificate, no metadata → OK" expect_grpc OK $P $C --model m2
check "... the stand-in sees x-forwarded-user carol (the CN)" [ "$(md x-forwarded-user)" = "['carol']" ]
check "carol is held to her [acl] (m1) → PERMISSION_DENIED" expect_grpc PERMISSION_DENIED $P $C --model m1
n2=$(grec_count)
check "carol's certificate with alice's token (two users) → UNAUTHENTICATED" expect_grpc UNAUTHENTICATED $P $C --authz "Bearer $t_alice" --model m2
check "... and it did not reach the stand-in" [ "$(grec_count)" = "$n2" ]
check "the conflict is logged" grep -q 'refused gRPC call from 127.0.0.1' "$PX_LOG"
pass
