#!/bin/sh
# A 3-node kernel WireGuard mesh configured only through our netlink code (links,
# keys, peers, addresses, state), on a bridge between namespaces: every node must
# ping every other over 10.0.1.x, and wg(8) must show the handshakes.
set -e
. "${REPO:-.}/netns-harness/vm/lib-netlink.sh"
N=3
cleanup() {
	for i in $(seq 1 $N); do $IP netns del nlmesh$i 2>/dev/null || true; done
	$IP link del nlmesh-br 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

# Underlay: a bridge in the VM's root namespace, one veth per node namespace.
$IP link add nlmesh-br type bridge
$IP link set nlmesh-br up
for i in $(seq 1 $N); do
	ns=nlmesh$i
	$IP netns add $ns
	$IP link add nlmesh-v$i type veth peer name eth0 netns $ns
	$IP link set nlmesh-v$i master nlmesh-br up
	in_ns $ns $IP link set lo up
	in_ns $ns $IP addr add 192.168.77.$i/24 dev eth0
	in_ns $ns $IP link set eth0 up
	"$WGTOOL" genkey >"$T/key$i"
	"$WGTOOL" pubkey <"$T/key$i" >"$T/pub$i"
done

# Overlay: everything below goes through netlink/ (the tool is a thin shell over it).
for i in $(seq 1 $N); do
	ns=nlmesh$i
	{
		printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n' "$(cat "$T/key$i")"
		for j in $(seq 1 $N); do
			[ $i = $j ] && continue
			printf '[Peer]\nPublicKey = %s\nEndpoint = 192.168.77.%s:51820\nAllowedIPs = 10.0.1.%s/32\n' \
				"$(cat "$T/pub$j")" $j $j
		done
	} >"$T/wg$i.conf"
	in_ns $ns "$WGTOOL" link-add wg0
	in_ns $ns "$WGTOOL" addconf wg0 "$T/wg$i.conf"
	in_ns $ns "$WGTOOL" addr-add wg0 10.0.1.$i/24
	in_ns $ns "$WGTOOL" link-up wg0
	in_ns $ns "$WGTOOL" route-add wg0 10.0.1.0/24
done

ok=0
for i in $(seq 1 $N); do
	for j in $(seq 1 $N); do
		[ $i = $j ] && continue
		if in_ns nlmesh$i ping -c 2 -i 0.3 -W 3 10.0.1.$j >"$T/ping" 2>&1; then
			ok=$((ok + 1))
			echo "nlmesh$i -> 10.0.1.$j: $(tail -1 "$T/ping")"
		else
			cat "$T/ping"
			echo "nlmesh$i -> 10.0.1.$j: no answer"
		fi
	done
done
[ $ok -eq $((N * (N - 1))) ] || fail "$ok of $((N * (N - 1))) pings answered"
for i in $(seq 1 $N); do
	hs=$(in_ns nlmesh$i wg show wg0 latest-handshakes | awk '$2 > 0' | wc -l)
	[ "$hs" -eq $((N - 1)) ] || fail "nlmesh$i has $hs handshakes"
	assert_dumps_agree nlmesh$i wg0 "nlmesh$i after traffic"
done
echo "mesh: $ok pings answered, handshakes with every peer"

# Revoking one peer is one change: the session with the other peer stays as it was
# (same handshake, no new one needed), the revoked peer is unreachable at once, and
# adding it back restores it.
in_ns nlmesh1 wg show wg0 latest-handshakes | grep "^$(cat "$T/pub2")" >"$T/hs2-before"
cat "$T/pub3" >"$T/revoke"
in_ns nlmesh1 "$WGTOOL" -v remove wg0 "$T/revoke" 2>"$T/stats"
grep -q 'messages=1 ' "$T/stats" || fail "revoking one peer took more than one message"
in_ns nlmesh1 wg show wg0 peers | grep -q "$(cat "$T/pub3")" && fail "revoked peer still present"
in_ns nlmesh1 ping -c 1 -W 2 10.0.1.2 >/dev/null || fail "the session with node 2 did not survive"
in_ns nlmesh1 wg show wg0 latest-handshakes | grep "^$(cat "$T/pub2")" | cmp -s - "$T/hs2-before" ||
	fail "node 2's session was renegotiated by a change to another peer"
if in_ns nlmesh1 ping -c 1 -W 1 10.0.1.3 >/dev/null 2>&1; then fail "revoked node 3 still answers"; fi
in_ns nlmesh1 "$WGTOOL" addconf wg0 "$T/wg1.conf"
in_ns nlmesh1 ping -c 2 -i 0.3 -W 3 10.0.1.3 >/dev/null || fail "node 3 not reachable after re-adding it"
echo "revocation: one message, other session untouched, revoked peer cut off, re-add restores it"

# Pre-shared keys (docs/keys.md, rotation): a PSK set on one end only leaves the running
# session alone (no new handshake: the PSK enters the next one); a fresh handshake with
# the same PSK on both ends completes, with different PSKs it never does.
with_psk() { # conf peer-public-key psk: the conf with that peer's PresharedKey set
	awk -v k="$2" -v p="$3" '{ print } $0 == "PublicKey = " k { print "PresharedKey = " p }' "$1"
}
hs_of() { in_ns "$1" wg show wg0 latest-handshakes | awk -v k="$2" '$1 == k { print $2 }'; }
"$WGTOOL" genkey >"$T/psk-a"
"$WGTOOL" genkey >"$T/psk-b"
with_psk "$T/wg1.conf" "$(cat "$T/pub2")" "$(cat "$T/psk-a")" >"$T/wg1-psk.conf"
with_psk "$T/wg2.conf" "$(cat "$T/pub1")" "$(cat "$T/psk-a")" >"$T/wg2-psk.conf"
with_psk "$T/wg2.conf" "$(cat "$T/pub1")" "$(cat "$T/psk-b")" >"$T/wg2-other.conf"
hs_before=$(hs_of nlmesh1 "$(cat "$T/pub2")")
in_ns nlmesh1 "$WGTOOL" -v syncconf wg0 "$T/wg1-psk.conf" 2>"$T/stats"
grep -q 'changes=1 ' "$T/stats" || fail "a PSK change is not one change: $(cat "$T/stats")"
[ "$(in_ns nlmesh1 wg show wg0 preshared-keys | awk -v k="$(cat "$T/pub2")" '$1 == k { print $2 }')" = \
	"$(cat "$T/psk-a")" ] || fail "the kernel does not report the PSK we set"
in_ns nlmesh1 ping -c 3 -i 0.3 -W 2 10.0.1.2 >/dev/null || fail "a one-sided PSK change dropped the session"
[ "$(hs_of nlmesh1 "$(cat "$T/pub2")")" = "$hs_before" ] || fail "a PSK change forced a handshake"
echo "PSK: one-sided change is one message, the kernel reports it, the session carries on"

# A fresh handshake (node 1 forgets the peer and learns it again) with matching PSKs...
in_ns nlmesh2 "$WGTOOL" syncconf wg0 "$T/wg2-psk.conf"
cat "$T/pub2" >"$T/revoke-2"
in_ns nlmesh1 "$WGTOOL" remove wg0 "$T/revoke-2"
in_ns nlmesh1 "$WGTOOL" syncconf wg0 "$T/wg1-psk.conf"
in_ns nlmesh1 ping -c 2 -i 0.3 -W 3 10.0.1.2 >/dev/null || fail "no handshake with matching PSKs"
[ "$(hs_of nlmesh1 "$(cat "$T/pub2")")" != 0 ] || fail "matching PSKs: no handshake"
in_ns nlmesh2 wg show wg0 | grep -q 'preshared key: (hidden)' || fail "wg show does not say (hidden)"
# ... and with different ones: never.
in_ns nlmesh2 "$WGTOOL" syncconf wg0 "$T/wg2-other.conf"
in_ns nlmesh1 "$WGTOOL" remove wg0 "$T/revoke-2"
in_ns nlmesh1 "$WGTOOL" syncconf wg0 "$T/wg1-psk.conf"
if in_ns nlmesh1 ping -c 3 -i 0.5 -W 2 10.0.1.2 >/dev/null 2>&1; then fail "different PSKs, yet node 2 answers"; fi
[ "$(hs_of nlmesh1 "$(cat "$T/pub2")")" = 0 ] || fail "different PSKs, yet a handshake completed"
echo "PSK: a fresh handshake completes with the same PSK on both ends and never with different ones"
