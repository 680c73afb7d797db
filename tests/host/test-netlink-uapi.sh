#!/bin/bash
# netlink/ against wireguard-go (the host kernel has no WireGuard): automatic backend
# choice (starts wireguard-go), the same set/dump/diff API over UAPI checked against
# wg(8), a 3-node userspace mesh that pings over 10.0.1.x, the MTU calls (route MTU, TUN
# MTU, read back by ip(8)), and the errors of a kernel without WireGuard and of an
# unprivileged caller. Only namespaces this test creates are touched; names carry a
# per-run id (/var/run/wireguard is shared by all).
set -euo pipefail
cd "$(dirname "$0")/../.."
O=${O:-build}
case $O in /*) ;; *) O=$PWD/$O ;; esac
make -s O="$O" "$O/bench/netlink-wgtool" >&2
WGTOOL=$O/bench/netlink-wgtool
IP=ip
. netns-harness/vm/lib-netlink.sh
id=$(printf '%04x' $((RANDOM ^ $$ & 0xffff)))
P=nlu$id
N=3

cleanup() {
	# wireguard-go exits when its TUN link is deleted (not when its namespace goes).
	for i in $(seq 1 $N); do ip -n "${P}n$i" link del "wu$id$i" 2>/dev/null || true; done
	for i in $(seq 1 $N); do
		for _ in $(seq 1 30); do [ -S "/var/run/wireguard/wu$id$i.sock" ] || break; sleep 0.1; done
		# Still there: end it by its pid, found by its exact, per-run command line.
		pid=$(pgrep -xf "wireguard-go wu$id$i" || true)
		[ -n "$pid" ] && kill $pid 2>/dev/null
	done
	for i in $(seq 1 $N); do ip netns del "${P}n$i" 2>/dev/null || true; done
	ip netns del "${P}hub" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
n() {
	local i=$1
	shift
	ip netns exec "${P}n$i" "$@"
}

# Underlay: a hub namespace with a bridge, a veth from it into each node namespace.
ip netns add "${P}hub"
ip -n "${P}hub" link add br0 type bridge
ip -n "${P}hub" link set br0 up
for i in $(seq 1 $N); do
	ip netns add "${P}n$i"
	ip -n "${P}hub" link add "v$i" type veth peer name eth0 netns "${P}n$i"
	ip -n "${P}hub" link set "v$i" master br0 up
	n "$i" ip link set lo up
	n "$i" ip addr add "192.168.77.$i/24" dev eth0
	n "$i" ip link set eth0 up
done

# The host kernel has no WireGuard: clear errors, then wireguard-go chosen and started.
expect_error "kernel has no WireGuard" n 1 "$WGTOOL" -b kernel dump "wu${id}1"
expect_error "kernel has no WireGuard" n 1 "$WGTOOL" link-add "wu${id}1"
expect_error "no userspace WireGuard serves" n 1 "$WGTOOL" -b uapi dump "wu${id}9"
expect_error "CAP_NET_ADMIN\|Operation not permitted" \
	n 1 setpriv --reuid=65534 --regid=65534 --clear-groups "$WGTOOL" link-add "wu${id}9"
for i in $(seq 1 $N); do
	kind=$(n "$i" "$WGTOOL" up "wu$id$i" 2>"$T/up.log") || { cat "$T/up.log"; fail "starting wireguard-go"; }
	[ "$kind" = userspace ] || fail "backend for wu$id$i is '$kind'"
	kind=$(n "$i" "$WGTOOL" up "wu$id$i" 2>/dev/null)
	[ "$kind" = userspace ] || fail "running wireguard-go not adopted"
	"$WGTOOL" genkey >"$T/key$i"
	"$WGTOOL" pubkey <"$T/key$i" >"$T/pub$i"
	[ "$(wg pubkey <"$T/key$i")" = "$(cat "$T/pub$i")" ] || fail "our public key differs from wg pubkey's"
done
echo "auto backend: wireguard-go started for $N interfaces"

# A larger configuration over UAPI on node 1, read back by wg(8) and by us.
"$WGTOOL" gen-conf 200 3 21 | sed 's/^ListenPort = .*/ListenPort = 51999\nFwMark = 0x77/' >"$T/big.conf"
n 1 "$WGTOOL" -v setconf "wu${id}1" "$T/big.conf"
[ "$(n 1 wg show "wu${id}1" peers | wc -l)" -eq 200 ] || fail "not 200 peers"
sed -n 's/^AllowedIPs = //p' "$T/big.conf" | tr -d ' ' | tr ',' '\n' | sort >"$T/want-ips"
n 1 wg show "wu${id}1" allowed-ips | cut -f2 | tr ' ' '\n' | sort >"$T/got-ips"
cmp -s "$T/want-ips" "$T/got-ips" || fail "allowed IPs differ from the file's"
[ "$(n 1 wg show "wu${id}1" fwmark)" = 0x77 ] || fail "fwmark not set"
assert_dumps_agree "${P}n1" "wu${id}1" "200 peers over UAPI" uapi
n 1 wg show "wu${id}1" peers | awk 'NR % 2 == 0' >"$T/remove"
n 1 "$WGTOOL" -v remove "wu${id}1" "$T/remove"
[ "$(n 1 wg show "wu${id}1" peers | wc -l)" -eq 100 ] || fail "not 100 peers after removing half"
n 1 "$WGTOOL" -v syncconf "wu${id}1" "$T/big.conf" 2>"$T/sync"
grep -q 'changes=100 ' "$T/sync" || fail "syncconf: $(cat "$T/sync")"
[ "$(n 1 wg show "wu${id}1" peers | wc -l)" -eq 200 ] || fail "syncconf did not restore 200 peers"
assert_dumps_agree "${P}n1" "wu${id}1" "after remove and syncconf" uapi
echo "UAPI: 200 peers set, half removed, restored by a 100-change diff; dumps agree"

# The 3-node userspace mesh, configured through our code only, a PSK per pair (wg genpsk).
umask 077
for i in $(seq 1 $N); do
	for j in $(seq $((i + 1)) $N); do wg genpsk >"$T/psk$i-$j"; cp "$T/psk$i-$j" "$T/psk$j-$i"; done
done
for i in $(seq 1 $N); do
	{
		printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n' "$(cat "$T/key$i")"
		for j in $(seq 1 $N); do
			[ "$i" = "$j" ] && continue
			printf '[Peer]\nPublicKey = %s\nPresharedKey = %s\nEndpoint = 192.168.77.%s:51820\nAllowedIPs = 10.0.1.%s/32\n' \
				"$(cat "$T/pub$j")" "$(cat "$T/psk$i-$j")" "$j" "$j"
		done
	} >"$T/wg$i.conf"
	n "$i" "$WGTOOL" setconf "wu$id$i" "$T/wg$i.conf"
	n "$i" "$WGTOOL" addr-add "wu$id$i" "10.0.1.$i/24"
	n "$i" "$WGTOOL" link-up "wu$id$i"
	n "$i" "$WGTOOL" route-add "wu$id$i" 10.0.1.0/24
done
ok=0
for i in $(seq 1 $N); do
	for j in $(seq 1 $N); do
		[ "$i" = "$j" ] && continue
		if n "$i" ping -c 2 -i 0.2 -W 3 -q "10.0.1.$j" >/dev/null; then ok=$((ok + 1)); else echo "no answer: n$i -> 10.0.1.$j"; fi
	done
done
[ "$ok" -eq $((N * (N - 1))) ] || fail "$ok of $((N * (N - 1))) pings answered"
for i in $(seq 1 $N); do assert_dumps_agree "${P}n$i" "wu$id$i" "node $i after pings" uapi; done
n 1 "$O/dstack-p2p" show "wu${id}1" --json >"$T/show.json" 2>/dev/null || true
if [ -s "$T/show.json" ]; then
	grep -q "\"backend\":\"userspace\"" "$T/show.json" || fail "dstack-p2p show --json: $(cat "$T/show.json")"
	grep -q "$(cat "$T/pub2")" "$T/show.json" || fail "dstack-p2p show misses a peer"
	grep -q "$(cat "$T/key1")" "$T/show.json" && fail "dstack-p2p show printed a private key"
fi
echo "userspace mesh: $ok pings answered; dumps agree with wg"

# Each pair's PSK went in with the peer (wg shows it with preshared-keys, hides it in show).
for i in $(seq 1 $N); do
	for j in $(seq 1 $N); do
		[ "$i" = "$j" ] && continue
		got=$(n "$i" wg show "wu$id$i" preshared-keys | awk -v k="$(cat "$T/pub$j")" '$1 == k { print $2 }')
		[ "$got" = "$(cat "$T/psk$i-$j")" ] || fail "node $i, peer $j: preshared key '$got'"
	done
	hidden=$(n "$i" wg show "wu$id$i" | grep -c 'preshared key: (hidden)' || true)
	[ "$hidden" -eq $((N - 1)) ] || fail "node $i: 'preshared key: (hidden)' $hidden times"
done
n 1 wg show "wu${id}1" | grep -qF "$(cat "$T/psk1-2")" && fail "wg show printed a PSK"
echo "PSKs: wg show preshared-keys has each pair's key on both ends; wg show hides them"

# A PSK change alone is a change of that peer in the diff, one peer changed. Made on node 1
# only (node 2 keeps the old key), it leaves the established session in place: WireGuard
# uses the PSK in the next handshake only, which the rotation of docs/keys.md relies on.
hs_before=$(n 1 wg show "wu${id}1" latest-handshakes | awk -v k="$(cat "$T/pub2")" '$1 == k { print $2 }')
wg genpsk >"$T/psk-new"
sed "/^PublicKey = $(sed 's/[/]/\\&/g' "$T/pub2")\$/{n;s|^PresharedKey = .*|PresharedKey = $(cat "$T/psk-new")|}" \
	"$T/wg1.conf" >"$T/wg1-new.conf"
cmp -s "$T/wg1.conf" "$T/wg1-new.conf" && fail "test bug: the new configuration has the old PSK"
n 1 "$WGTOOL" -v syncconf "wu${id}1" "$T/wg1-new.conf" 2>"$T/sync"
grep -q 'changes=1 ' "$T/sync" || fail "PSK change: $(cat "$T/sync")"
got=$(n 1 wg show "wu${id}1" preshared-keys | awk -v k="$(cat "$T/pub2")" '$1 == k { print $2 }')
[ "$got" = "$(cat "$T/psk-new")" ] || fail "PSK change not applied: '$got'"
n 1 ping -c 5 -i 0.2 -W 2 -q 10.0.1.2 >/dev/null || fail "a one-sided PSK change dropped the session"
hs_after=$(n 1 wg show "wu${id}1" latest-handshakes | awk -v k="$(cat "$T/pub2")" '$1 == k { print $2 }')
[ "$hs_before" = "$hs_after" ] || fail "a PSK change forced a handshake ($hs_before -> $hs_after)"
n 1 "$WGTOOL" -v syncconf "wu${id}1" "$T/wg1-new.conf" 2>"$T/sync"
grep -q 'changes=0 ' "$T/sync" || fail "the same PSK read back as a change: $(cat "$T/sync")"
echo "PSK change: one change in the diff, none once applied; the session carries on (handshake $hs_after)"

# MTU over rtnetlink, read back by ip(8): the route MTU towards an address (the output
# device's MTU, a route's own `mtu`, a smaller link) and the TUN's MTU set like a link's.
mtu_of() { n "$1" ip -o link show "$2" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'; }
[ "$(n 1 "$WGTOOL" route-mtu 192.168.77.2)" = "$(mtu_of 1 eth0)" ] || fail "route MTU is not eth0's ($(mtu_of 1 eth0))"
n 1 ip route add 192.168.77.2/32 dev eth0 mtu 1380
n 1 ip route get 192.168.77.2 | grep -q 'mtu 1380' || fail "ip route get does not show the route's mtu"
[ "$(n 1 "$WGTOOL" route-mtu 192.168.77.2:51820)" = 1380 ] || fail "route MTU: not the route's 1380"
[ "$(n 1 "$WGTOOL" route-mtu 192.168.77.3)" = 1500 ] || fail "route MTU towards .3 is not 1500"
n 1 ip link set eth0 mtu 1300
[ "$(n 1 "$WGTOOL" route-mtu 192.168.77.3)" = 1300 ] || fail "route MTU does not follow eth0's 1300"
n 1 ip link set eth0 mtu 1500
n 1 ip route del 192.168.77.2/32 dev eth0
[ "$(n 1 "$WGTOOL" route-mtu 192.168.77.2)" = 1500 ] || fail "route MTU not back to 1500"
expect_error "no route to the endpoint" n 1 "$WGTOOL" route-mtu 203.0.113.9
n 1 "$WGTOOL" link-mtu "wu${id}1" 1380
[ "$(mtu_of 1 "wu${id}1")" = 1380 ] || fail "TUN MTU is $(mtu_of 1 "wu${id}1"), not 1380"
[ "$(n 1 "$WGTOOL" link-get-mtu "wu${id}1")" = 1380 ] || fail "link-get-mtu disagrees with ip link"
n 1 ping -c 1 -W 3 -q -M do -s 1352 10.0.1.2 >/dev/null || fail "1380-byte ping over the TUN"
n 1 ping -c 1 -W 1 -q -M do -s 1353 10.0.1.2 >/dev/null 2>&1 && fail "a 1381-byte ping passed a 1380 MTU"
expect_error "outside 576..65535" n 1 "$WGTOOL" link-mtu "wu${id}1" 100
n 1 "$WGTOOL" link-mtu "wu${id}1" 1420
echo "MTU: route MTU read as ip(8) sets it (device, route mtu, smaller link); TUN MTU set and enforced"
