#!/bin/bash
# SPDX-License-Identifier: MIT
# tls mode: no WireGuard. Each agent registers its gateway URL
# https://<instance_id>-<port>.<domain> (node 3 through a relayer, having no funded key);
# `dstack-p2p peers` on every node lists exactly the other nodes' URLs, as the contract
# stores them (read back with cast). Then: a node with neither key nor relayer prints a
# cast command that registers it; an agent of another app refuses to start.
set -euo pipefail
. "$(dirname "$0")/../../netns-harness/lib.sh"
H_WG=0
DOMAIN=gw.dstack-p2p.test
h_init dps
h_deploy
# Node 3 has no funded key: the operator's relayer (dstack-p2p relayer, its own funded key)
# in the hub sends its registration.
h_relayer_start
for i in 1 2 3; do
	h_node_add "$i"
	h_mint_bind "$i"
	if [ "$i" = 3 ]; then
		h_agent_start "$i" --mode tls --gateway-domain "$DOMAIN" --gateway-port 8443 \
			--tx-key-file "" --relayer "http://$H_HUB_IP:8600/relay"
	else
		h_agent_start "$i" --mode tls --gateway-domain "$DOMAIN" --gateway-port 8443
	fi
done
for i in 1 2 3; do h_agent_wait_registered "$i" 30; done

getpeer='getPeer(address)((uint256,address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes))'
for i in 1 2 3; do
	want="https://${H_INSTANCE[$i]}-8443.$DOMAIN"
	h_cast call "$H_CONTRACT" "$getpeer" "0x${H_INSTANCE[$i]}" | grep -q "\"$want\", 0," ||
		h_die "node $i: the contract does not hold $want in tls mode (0)"
done
for i in 1 2 3; do
	want=$(for j in 1 2 3; do [ "$i" = "$j" ] || echo "https://${H_INSTANCE[$j]}-8443.$DOMAIN"; done | sort)
	for t in $(seq 1 50); do
		have=$(DSTACK_P2P_CONTROL="$H_RUN/ctl$i.sock" "$H_BIN/dstack-p2p" peers | sort)
		[ "$have" = "$want" ] && break
		sleep 0.1
	done
	[ "$have" = "$want" ] || h_die "node $i lists '$have', wanted '$want'"
	ip netns exec "$(h_ns "$i")" ip link show "$(h_if "$i")" >/dev/null 2>&1 &&
		h_die "node $i created a WireGuard interface in tls mode"
done
grep -qE ' -> 20[02] {"txHash"' "$H_RUN/relayer.log" || h_die "the relayer did not send node 3's registration"
h_log "PASS: tls mode: 3 nodes (one through a relayer) registered their gateway URLs and list each other's"

# No funded key and no relayer: the agent prints the calldata and the cast command; an
# operator relays it exactly as printed (with the real RPC and key filled in).
h_node_add 4
h_mint_bind 4
h_agent_start 4 --mode tls --gateway-domain "$DOMAIN" --gateway-port 8443 --tx-key-file ""
for t in $(seq 1 100); do grep -q '^send it with: cast send' "$H_RUN/agent4.log" && break; sleep 0.1; done
cmd=$(sed -n 's/^send it with: cast send \(0x[0-9a-f]*\) \(0x[0-9a-f]*\) .*/\1 \2/p' "$H_RUN/agent4.log" | tail -1)
[ -n "$cmd" ] || h_die "node 4 printed no relay command"
h_cast send --private-key "$H_OPERATOR_KEY" $cmd >/dev/null || h_die "the printed registration does not go through"
h_agent_wait_registered 4 30
h_log "PASS: without a key or relayer, the printed cast command registers the node"

# An agent whose guest agent names another app than the contract refuses to start.
if out=$(ip netns exec "$(h_ns 1)" env DSTACK_SIMULATOR_ENDPOINT="$H_RUN/sim1.sock" \
	"$H_BIN/dstack-p2p" agent --contract 0x00000000000000000000000000000000000000a1 --mode tls \
	--gateway-domain "$DOMAIN" --rpc "$H_RPC" --control "$H_RUN/wrong.sock" 2>&1); then
	h_die "an agent of another app started"
fi
echo "$out" | grep -q 'not deployed as an app of this cluster' || h_die "no clear reason: $out"
h_log "PASS: an agent of another app refuses to start and says why"
