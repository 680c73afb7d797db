#!/bin/bash
# The app library as an app developer installs it: `make install DESTDIR=...`, then
# what nm and ldd say about libdstack-p2p (only dstack_p2p_* exported, in the shared and
# the static library; libc and pthreads only, no libcurl/libcrypto/...), and
# examples/reach-peers.c built with pkg-config, dynamically and statically. Then the
# dynamic build against a stand-in agent (fake-control.py): it reads the peers through
# the library. Only files and unix sockets under a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
T=$(mktemp -d /tmp/test-app-library.XXXXXX)
FAKE_PID=
cleanup() {
	# The stand-in dies of our SIGTERM: its status (143) is not the test's.
	if [ -n "$FAKE_PID" ]; then kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null || true; fi
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

make -s install DESTDIR="$T/inst" PREFIX=/usr >"$T/install.log" 2>&1 || { cat "$T/install.log"; fail "make install"; }
lib=$T/inst/usr/lib
so=$(readlink -f "$lib/libdstack-p2p.so")

exported=$(nm -D --defined-only "$so" | awk '{print $3}' | sort)
echo "nm -D: $(echo $exported)"
extra=$(echo "$exported" | grep -v '^dstack_p2p_' || true)
[ -z "$extra" ] || fail "libdstack-p2p.so exports more than dstack_p2p_*: $extra"
[ "$(echo "$exported" | wc -l)" -ge 7 ] || fail "libdstack-p2p.so exports too little: $exported"
static_globals=$(nm -g --defined-only "$lib/libdstack-p2p.a" | awk 'NF == 3 {print $3}' | grep -v '^dstack_p2p_' || true)
[ -z "$static_globals" ] || fail "libdstack-p2p.a has global symbols besides dstack_p2p_*: $static_globals"
echo "ok: only dstack_p2p_* exported (shared and static)"

needed=$(ldd "$so" | awk '{print $1}')
echo "ldd: $(echo $needed)"
if echo "$needed" | grep -Eq 'libcurl|libcrypto|libssl|libmnl|libsecp256k1|libnettle|libb2'; then
	fail "libdstack-p2p.so pulls in the agent's libraries"
fi
echo "ok: ldd shows no libcurl/libcrypto/libmnl/libsecp256k1/libnettle/libb2"

export PKG_CONFIG_SYSROOT_DIR=$T/inst PKG_CONFIG_LIBDIR=$lib/pkgconfig
cc -Wall -Wextra -Werror examples/reach-peers.c $(pkg-config --cflags --libs dstack-p2p) -o "$T/reach-peers" ||
	fail "reach-peers does not build with pkg-config"
cc -Wall -Wextra -Werror -static examples/reach-peers.c $(pkg-config --static --cflags --libs dstack-p2p) \
	-o "$T/reach-peers-static" 2>"$T/static.log" || { cat "$T/static.log"; fail "reach-peers does not link statically"; }
echo "ok: examples/reach-peers.c builds with pkg-config (shared and -static)"

# A stand-in agent with two peers: the example reads them through the installed library.
mkdir -p "$T/docs"
contract=0x5fbdb2315678afecb367f032d93f642f64180aa3
printf '{"version":1,"registered":true,"contract":"%s","mode":"wireguard","token":1,"address":"10.0.1.1","generation":1,"peers":["127.0.0.1"]}\n' \
	"$contract" >"$T/docs/peers.json"
/usr/bin/python3 tests/host/fake-control.py "$T/ctl.sock" "$T/docs" &
FAKE_PID=$!
for _ in $(seq 1 100); do [ -f "$T/docs/ready" ] && break; sleep 0.05; done
out=$(DSTACK_P2P_CONTROL=$T/ctl.sock LD_LIBRARY_PATH=$lib timeout 30 "$T/reach-peers" "$contract" 1 2>&1 || true)
echo "$out" | grep -q '127.0.0.1' || fail "reach-peers did not list the stand-in's peer: $out"
# A reply of another protocol version is refused, not misread.
printf '{"version":2,"registered":true,"contract":"%s","mode":"wireguard","peers":["127.0.0.1"]}\n' \
	"$contract" >"$T/docs/peers.json"
out=$(DSTACK_P2P_CONTROL=$T/ctl.sock LD_LIBRARY_PATH=$lib timeout 30 "$T/reach-peers" "$contract" 1 2>&1 || true)
echo "$out" | grep -q 'another version of the control protocol' || fail "a version 2 reply was not refused: $out"
echo "ok: the installed library reads the agent's peers and refuses another protocol version"
echo "test-app-library: all passed"
