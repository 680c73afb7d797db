#!/bin/sh
# Idempotent setup: install what the build, the tests and the demo need, and nothing
# that is already there. Debian packages without recommends; the Solidity toolchain
# (Foundry, solc-js, OpenZeppelin) from npm, pinned by package-lock.json.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="
  make gcc clang libclang-rt-14-dev pkg-config git ca-certificates
  libmnl-dev libcurl4-openssl-dev libjsmn-dev libsecp256k1-dev libb2-dev libssl-dev
  nettle-dev libcriterion-dev
  iproute2 iputils-ping procps psmisc wireguard-tools wireguard-go socat curl jq iptables redis-server redis-tools python3 python3-pytest python3-pip python3-setuptools
  qemu-system-x86 busybox-static cpio kmod
"
# Node.js may come from elsewhere than Debian (e.g. a NodeSource build); only a machine
# without npm gets Debian's.
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs npm"

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing Debian packages:$missing (run as root, or install them)" >&2
		exit 1
	fi
	echo "deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# An old or empty package list finds nothing: refresh it once before installing.
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# npm ci only when the lock file changed since the last install. The lock holds every
# platform's optional Foundry binary, so npm ci accepts it and never rewrites it.
stamp=node_modules/.dstack-p2p-lock
if ! [ -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
	echo "deps: installing the Solidity toolchain from package-lock.json"
	npm ci --no-audit --no-fund --loglevel=error
	cp package-lock.json "$stamp"
fi
for tool in forge anvil cast; do
	[ -x "node_modules/.bin/$tool" ] || { echo "deps: node_modules/.bin/$tool missing" >&2; exit 1; }
done
