#!/bin/sh
# Idempotent setup: install what is missing of what a target needs, and nothing that is
# already there. Debian packages without recommends; the Solidity toolchain (Foundry,
# solc-js, OpenZeppelin) from npm, pinned by package-lock.json.
#   deps.sh              the build, the tests and the demo
#   deps.sh image        that, and the container tools of the image tests (podman, runc)
#   deps.sh image-build  only what `make image` needs: the agent's build and mmdebstrap
#   deps.sh --list ...   print the Debian packages of those targets and install nothing
set -eu
cd "$(dirname "$0")/.."

# Compiling the agent (also the Dockerfile's build stage).
BUILD_PACKAGES="
  make gcc libc6-dev pkg-config git ca-certificates
  libmnl-dev libcurl4-openssl-dev libcurl3-gnutls libssl-dev libjsmn-dev libsecp256k1-dev
  nettle-dev
"
TEST_PACKAGES="
  clang libclang-rt-14-dev libcriterion-dev
  iproute2 iputils-ping procps psmisc wireguard-tools wireguard-go socat curl jq iptables
  python3 python3-yaml python3-pytest python3-pip python3-setuptools python3-venv
  nginx libnginx-mod-stream nftables openssl iperf3 redis-server redis-tools
  qemu-system-x86 busybox-static cpio kmod libcap2-bin
"
# Only tests/host/test-cluster-dash.sh needs these: the dashboard in a real browser, headless
# chromium driven through chromedriver by python3-selenium (Debian's; no browser download).
TEST_PACKAGES="$TEST_PACKAGES chromium chromium-driver python3-selenium"
# The metrics' real parts: Debian's Prometheus server scrapes the harness
# (tests/host/test-metrics.sh) and its Python client's parser reads the exposition.
TEST_PACKAGES="$TEST_PACKAGES prometheus python3-prometheus-client"
# dig, the independent reader of the agent's DNS answers (tests/host/test-dns.sh,
# test-mesh-dns.sh, test-mesh-labels.sh).
TEST_PACKAGES="$TEST_PACKAGES bind9-dnsutils"
PACKAGES="$BUILD_PACKAGES $TEST_PACKAGES"
npm=1 list=
for arg in "$@"; do
	case $arg in
	--list) list=1 ;;
	image) PACKAGES="$PACKAGES mmdebstrap podman runc" ;;
	image-build) PACKAGES="$BUILD_PACKAGES mmdebstrap"; npm= ;;
	*) echo "deps: unknown target '$arg' (known: image, image-build)" >&2; exit 2 ;;
	esac
done
# Node.js may come from elsewhere than Debian (e.g. a NodeSource build); only a machine
# without npm gets Debian's.
[ -z "$npm" ] || command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs npm"
if [ -n "$list" ]; then
	echo $PACKAGES | tr ' ' '\n'
	exit 0
fi

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

[ -n "$npm" ] || exit 0
# npm ci only when the lock file changed since the last install. The lock holds every
# platform's optional Foundry binary, so npm ci accepts it and never rewrites it.
stamp=node_modules/.dstack-p2p-lock
if ! [ -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
	echo "deps: installing the Solidity toolchain from package-lock.json"
	npm ci --no-audit --no-fund --loglevel=error
	cp package-lock.json "$stamp"
fi
# The npm packages' node wrappers (bin.mjs) never pass their child's exit status on: a
# failing `forge test` or a reverting `cast call` exited 0 through them. Link .bin to the
# platform binaries themselves, on every run (npm ci puts the wrappers back).
for tool in forge anvil cast; do
	bin=node_modules/@foundry-rs/$tool-linux-amd64/bin/$tool
	[ -x "$bin" ] || { echo "deps: $bin missing (only linux-amd64 is supported)" >&2; exit 1; }
	ln -sfn "../@foundry-rs/$tool-linux-amd64/bin/$tool" "node_modules/.bin/$tool"
done
