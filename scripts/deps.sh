#!/bin/sh
# Installs the Debian packages tfguard needs to build, test, demo and bench.
# Idempotent and quiet when everything is present. Needs root (apt-get).
set -eu

PKGS="gcc make pkg-config libc6-dev
libnftnl-dev libmnl-dev libseccomp-dev libssl-dev libcrypt-dev
nftables iproute2 procps curl openssl ca-certificates python3 perl
apache2-utils nginx-light wrk jq clang clang-format man-db mandoc systemd
libnghttp2-dev nghttp2-client python3-grpcio python3-protobuf"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing (run scripts/deps.sh as root)" >&2
	exit 1
fi
echo "deps: installing:$missing"
# Package scripts must not start services (nginx would grab port 80): policy-rc.d 101.
cleanup_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 0755 /usr/sbin/policy-rc.d
	cleanup_policy=1
fi
trap '[ -n "$cleanup_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
