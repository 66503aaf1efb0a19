# shellcheck shell=bash
# mtls_pki.sh: a throw-away client PKI made with `openssl ca`, for the mTLS tests
# (tests/integ/44-, 46-, 47-). Source after lib.sh; everything lives in $PKI.
#
#   pki_ca NAME [DAYS]              a CA (EC P-256): $PKI/NAME.pem, .key, .cnf
#   pki_client CA NAME [ARGS...]    a client certificate CN=NAME (clientAuth) signed by CA:
#                                   $PKI/NAME.pem, .key; ARGS go to `openssl ca`
#                                   (-startdate/-enddate for an expired one)
#   PKI_SAN=DNS:x pki_client ...    with a subjectAltName
#   pki_revoke CA NAME              revokes NAME and writes the CRL $PKI/CA.crl
#   pki_crl CA                      (re)writes $PKI/CA.crl

PKI=$TFG_TMP/pki
mkdir -p "$PKI"

_pki() { openssl "$@" >>"$PKI/openssl.log" 2>&1 || { tail -5 "$PKI/openssl.log"; fail "openssl $1 failed"; }; }

pki_ca() {
	local n=$1 days=${2:-30} db=$PKI/$1.db
	mkdir -p "$db"
	: >"$db/index.txt"
	echo 1000 >"$db/serial"
	echo 1000 >"$db/crlnumber"
	cat >"$PKI/$n.cnf" <<EOF
[ ca ]
default_ca = tfg
[ tfg ]
dir = $db
database = $db/index.txt
new_certs_dir = $db
certificate = $PKI/$n.pem
private_key = $PKI/$n.key
serial = $db/serial
crlnumber = $db/crlnumber
default_md = sha256
default_days = 30
default_crl_days = 30
policy = pol
unique_subject = no
copy_extensions = copy
[ pol ]
commonName = supplied
[ client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
EOF
	_pki req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$n" \
		-days "$days" -keyout "$PKI/$n.key" -out "$PKI/$n.pem" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}

pki_client() {
	local ca=$1 n=$2 san=()
	shift 2
	[ -n "${PKI_SAN:-}" ] && san=(-addext "subjectAltName=$PKI_SAN")
	_pki req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$n" \
		"${san[@]}" -keyout "$PKI/$n.key" -out "$PKI/$n.csr"
	_pki ca -batch -config "$PKI/$ca.cnf" -extensions client -notext \
		-in "$PKI/$n.csr" -out "$PKI/$n.pem" "$@"
}

pki_crl() { _pki ca -config "$PKI/$1.cnf" -gencrl -out "$PKI/$1.crl"; }

pki_revoke() {
	_pki ca -config "$PKI/$1.cnf" -revoke "$PKI/$2.pem"
	pki_crl "$1"
}

# mcurl NAME ARGS...: curl to the proxy presenting NAME's certificate.
mcurl() { local n=$1; shift; pcurl --cert "$PKI/$n.pem" --key "$PKI/$n.key" "$@"; }
# mcode NAME ARGS...: the status (000 when TLS failed).
mcode() { mcurl "$@" -o "$TFG_TMP/body" -w '%{http_code}'; }
# challenges CURL-ARGS...: the WWW-Authenticate lines of the answer, CR stripped.
challenges() { pcurl -D - -o /dev/null "$@" | tr -d '\r' | grep -i '^WWW-Authenticate:'; }
