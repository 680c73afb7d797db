#!/bin/sh
# Kernel WireGuard through our netlink code: link create/adopt, MTU, addresses, routes,
# a full device configuration that wg(8) must read back exactly as wg setconf leaves
# it, incremental changes, and the errors a caller can make.
set -e
. "${REPO:-.}/netns-harness/vm/lib-netlink.sh"
ns=nlbasic
ref=nlbasic-ref
cleanup() {
	$IP netns del $ns 2>/dev/null || true
	$IP netns del $ref 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
$IP netns add $ns
$IP netns add $ref

# Link, MTU, state, addresses and routes, each twice: the second time is a no-op.
in_ns $ns "$WGTOOL" link-add wg0
in_ns $ns "$WGTOOL" link-add wg0
in_ns $ns $IP -d link show wg0 | grep -q wireguard || fail "wg0 is not a wireguard link"
in_ns $ns "$WGTOOL" link-mtu wg0 1380
in_ns $ns $IP link show wg0 | grep -q 'mtu 1380' || fail "MTU not set"
for a in 10.0.1.1/24 10.0.1.1/24 fd00:1::1/64 fd00:1::1/64; do in_ns $ns "$WGTOOL" addr-add wg0 $a; done
in_ns $ns $IP -4 addr show dev wg0 | grep -q 'inet 10.0.1.1/24' || fail "IPv4 address missing"
in_ns $ns $IP -6 addr show dev wg0 | grep -q 'inet6 fd00:1::1/64' || fail "IPv6 address missing"
in_ns $ns "$WGTOOL" link-up wg0
in_ns $ns $IP link show wg0 | grep -q ',UP' || fail "link not up"
in_ns $ns "$WGTOOL" route-add wg0 10.0.1.0/24
in_ns $ns "$WGTOOL" route-add wg0 10.9.0.0/16
in_ns $ns "$WGTOOL" route-add wg0 10.9.0.0/16
in_ns $ns $IP route show | grep -q '^10.9.0.0/16 dev wg0' || fail "route missing"
in_ns $ns "$WGTOOL" addr-del wg0 fd00:1::1/64
in_ns $ns "$WGTOOL" addr-del wg0 fd00:1::1/64
in_ns $ns $IP -6 addr show dev wg0 | grep -q 'fd00:1::1' && fail "IPv6 address not removed"

# A whole configuration: private key, port, fwmark, PSKs, v4+v6 endpoints, keepalive.
"$WGTOOL" gen-conf 8 5 7 | sed 's/^ListenPort = .*/&\nFwMark = 0x1234/' >"$T/c.conf"
in_ns $ns "$WGTOOL" -v setconf wg0 "$T/c.conf"
in_ns $ref $IP link add wg0 type wireguard
in_ns $ref wg setconf wg0 "$T/c.conf"
# wg itself must read back from our device exactly what wg setconf left in its own.
in_ns $ns wg show wg0 dump >"$T/ours-raw"
in_ns $ref wg show wg0 dump >"$T/ref-raw"
cmp -s "$T/ours-raw" "$T/ref-raw" || { diff "$T/ref-raw" "$T/ours-raw"; fail "device differs from wg setconf's"; }
grep -q "$(sed -n 's/^PrivateKey = //p' "$T/c.conf" | "$WGTOOL" pubkey)" "$T/ours-raw" ||
	fail "public key derived by us differs from the kernel's"
assert_matches_conf $ns wg0 "$T/c.conf" "setconf"
assert_dumps_agree $ns wg0 "setconf"
echo "device configuration: identical to wg setconf's ($(wc -l <"$T/ours-raw") dump lines)"

# dstack-p2p show reads the same through the same code, and never prints a secret.
priv=$(sed -n 's/^PrivateKey = //p' "$T/c.conf")
in_ns $ns dstack-p2p show wg0 --dump >"$T/show-dump"
in_ns $ns "$WGTOOL" dump wg0 | cmp -s - "$T/show-dump" || fail "show --dump differs from our dump"
in_ns $ns dstack-p2p show --json >"$T/show.json"
grep -q '"name":"wg0","backend":"kernel"' "$T/show.json" || fail "show --json: $(head -c 300 "$T/show.json")"
[ "$(grep -o '"public_key"' "$T/show.json" | wc -l)" -eq 9 ] || fail "show --json does not list 8 peers"
in_ns $ns dstack-p2p show >"$T/show.txt"
grep -q "^peer: $(in_ns $ns wg show wg0 peers | head -1)" "$T/show.txt" || fail "show misses a peer"
grep -q 'listening port: 51820' "$T/show.txt" || fail "show misses the port"
for psk in $(sed -n 's/^PresharedKey = //p' "$T/c.conf") "$priv"; do
	if grep -qF "$psk" "$T/show-dump" "$T/show.json" "$T/show.txt"; then fail "show printed a secret key"; fi
done

# Incremental: one endpoint changes, nothing else does.
key=$(in_ns $ns wg show wg0 peers | sed -n 3p)
in_ns $ns "$WGTOOL" -v endpoint wg0 "$key" '[2001:db8::99]:4242'
in_ns $ns wg show wg0 endpoints | grep -q "$key	\[2001:db8::99\]:4242" || fail "endpoint not changed"
in_ns $ns wg show wg0 dump | grep -v "^$key" >"$T/after"
grep -v "^$key" "$T/ours-raw" | cmp -s - "$T/after" || fail "other peers changed"
assert_dumps_agree $ns wg0 "endpoint change"

# syncconf back to the file: exactly one peer differs, one change applied.
in_ns $ns "$WGTOOL" -v syncconf wg0 "$T/c.conf" 2>"$T/sync"
grep -q 'changes=1 messages=2 ' "$T/sync" || fail "syncconf (one dump + one set) did not apply exactly one change: $(cat "$T/sync")"
in_ns $ns wg show wg0 dump | cmp -s - "$T/ours-raw" || fail "syncconf did not restore the file's state"

# Errors a caller can make, each with a clear reason.
expect_error "no interface 'nosuch0'" in_ns $ns "$WGTOOL" -b kernel dump nosuch0
expect_error "longer than 15 characters" in_ns $ns "$WGTOOL" -b kernel dump averyveryverylongname
printf '[Peer]\nPublicKey = AAAA\n' >"$T/bad.conf"
expect_error "44 base64 characters" in_ns $ns "$WGTOOL" addconf wg0 "$T/bad.conf"
# The kernel's own reason (extended ACK), passed through.
in_ns $ns "$WGTOOL" link-add wg1
expect_error "kernel says: Device for nexthop is not up" in_ns $ns "$WGTOOL" route-add wg1 10.8.0.0/16
in_ns $ns $IP link add dummy0 type dummy 2>/dev/null || in_ns $ns $IP link add dummy0 type bridge
expect_error "not a kernel WireGuard interface\|Operation not supported" in_ns $ns "$WGTOOL" -b kernel dump dummy0
expect_error "exists and is not a WireGuard interface" in_ns $ns "$WGTOOL" link-add dummy0

in_ns $ns "$WGTOOL" link-del wg0
in_ns $ns $IP link show wg0 2>/dev/null && fail "wg0 not deleted"
echo "basic: ok"
