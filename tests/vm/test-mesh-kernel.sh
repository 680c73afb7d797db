# SPDX-License-Identifier: MIT
# Guest script (busybox sh, in the qemu VM): three dstack-p2p agents form a mesh with
# KERNEL WireGuard, programmed through our genetlink code. The chain was prepared on
# the host by netns-harness/with-vm-chain.sh (contract deployed, tokens bound); anvil
# runs here from that state, reachable from every namespace on its IPC socket.
# Checks with wg(8) and ping: every device lists exactly the other nodes with
# 10.0.1.<token>/32, every pair pings, each pair holds one pre-shared key on both ends,
# and a restarted agent changes nothing.
IP=/usr/sbin/ip
M=/opt/mesh
T=/tmp/mesh-kernel
if [ ! -f "$M/mesh.env" ]; then
	echo "SKIP: no prepared chain in this image (run through netns-harness/with-vm-chain.sh, as make check does)"
	exit 0
fi
. "$M/mesh.env"
. "${REPO:-.}/netns-harness/vm/lib-mesh.sh"
mesh_chain_up "" 1 2 3
echo "anvil up from the prepared state after $(elapsed)"

start_agent() {
	$IP netns exec n$1 env DSTACK_SIMULATOR_ENDPOINT="$T/sim$1.sock" CLUSTER_CONTRACT="$CONTRACT" \
		ETH_RPC_URL="ipc://$T/anvil.ipc" P2P_INTERFACE=km$1 P2P_ENDPOINT=192.168.77.$1:51830 \
		P2P_LISTEN_PORT=51830 P2P_POLL_MS=300 P2P_KEEPALIVE=5 P2P_TX_KEY_FILE="$T/txkey$1" \
		DSTACK_P2P_CONTROL="$T/ctl$1.sock" dstack-p2p agent >>"$T/agent$1.log" 2>&1 &
	pids="$pids $!"
	eval "agent_$1=$!"
}
for i in 1 2 3; do start_agent $i; done
for i in 1 2 3; do
	DSTACK_P2P_CONTROL="$T/ctl$i.sock" dstack-p2p wait --timeout 90 >/dev/null || fail "node $i did not register"
done
echo "3 agents registered after $(elapsed)"

for i in 1 2 3; do
	$IP -n n$i -d link show km$i | grep -q 'wireguard' || fail "km$i is not a kernel WireGuard link"
done

# Expected peers of node i, computed from what each device reports as its own key.
mesh_matches() {
	for i in 1 2 3; do
		: >"$T/want$i"
		for j in 1 2 3; do
			[ $i = $j ] && continue
			printf '%s\t10.0.1.%s/32\n' "$($IP netns exec n$j wg show km$j public-key)" "$(var TOKEN $j)" >>"$T/want$i"
		done
		sort "$T/want$i" >"$T/want$i.s"
		$IP netns exec n$i wg show km$i allowed-ips | sort >"$T/have$i.s"
		cmp -s "$T/want$i.s" "$T/have$i.s" || return 1
	done
}
n=0
until mesh_matches; do
	n=$((n + 1))
	[ $n -lt 300 ] || { diff "$T/want$i.s" "$T/have$i.s"; fail "node $i's kernel peers differ from the registry"; }
	sleep 0.1
done
echo "kernel WireGuard peers match the registry on every node after $(elapsed)"

ok=0
for i in 1 2 3; do
	for j in 1 2 3; do
		[ $i = $j ] && continue
		# A handshake that raced its peer's configuration is retried after REKEY_TIMEOUT
		# (5 s); under TCG on a loaded host give it three of those.
		k=0
		until $IP netns exec n$i ping -c 1 -W 2 -q 10.0.1.$(var TOKEN $j) >/dev/null 2>&1; do
			k=$((k + 1))
			[ $k -lt 8 ] || fail "node $i cannot ping node $j over the kernel mesh"
		done
		[ $k = 0 ] || echo "node $i reached node $j after $k lost pings"
		ok=$((ok + 1))
	done
done
echo "$ok/6 pairs ping over kernel WireGuard after $(elapsed)"

# Pairwise PSKs on kernel WireGuard: every peer of every node has one, the same on both
# ends of the pair (docs/keys.md), and wg shows it as (hidden).
for i in 1 2 3; do
	$IP netns exec n$i wg show km$i preshared-keys >"$T/psk$i"
	[ "$(grep -c '(none)' "$T/psk$i")" = 0 ] || fail "node $i has a peer without a PSK: $(cat "$T/psk$i")"
	[ "$($IP netns exec n$i wg show km$i | grep -c 'preshared key: (hidden)')" = 2 ] || fail "node $i: wg show hides no PSK"
done
for i in 1 2 3; do
	for j in 1 2 3; do
		[ $i -lt $j ] || continue
		a=$(awk -v k="$($IP netns exec n$j wg show km$j public-key)" '$1 == k { print $2 }' "$T/psk$i")
		b=$(awk -v k="$($IP netns exec n$i wg show km$i public-key)" '$1 == k { print $2 }' "$T/psk$j")
		[ -n "$a" ] && [ "$a" = "$b" ] || fail "nodes $i and $j hold different PSKs for their pair"
	done
done
echo "PSKs: each pair holds one PSK, the same on both ends, over kernel WireGuard"

# A restarted agent adopts the kernel link and changes nothing.
kill -9 "$agent_2"
echo "--- restart" >>"$T/agent2.log"
start_agent 2
DSTACK_P2P_CONTROL="$T/ctl2.sock" dstack-p2p wait --timeout 60 >/dev/null || fail "node 2 did not come back"
sleep 1
if sed -n '/^--- restart/,$p' "$T/agent2.log" | grep -qE 'peer .*: (added|removed|updated)'; then
	fail "the restarted agent re-programmed peers"
fi
mesh_matches || fail "the mesh changed across the restart"
$IP netns exec n1 ping -c 1 -W 2 -q 10.0.1.$TOKEN_2 >/dev/null || fail "node 1 lost node 2 after the restart"
echo "PASS: kernel mesh of 3, restart adopts without changes ($(elapsed))"
