#!/bin/bash
# SPDX-License-Identifier: MIT
# New heads by push (P2P_RPC_WS_URL): with the registry's safety poll set to 10 minutes,
# a node that joins shows up in the other agents' `wg show dump` anyway, so only the
# eth_subscribe notification over anvil's WebSocket can have brought it; drift is still
# repaired every P2P_POLL_MS; then the
# WebSocket path dies (the forwarder in front of it is killed, and another agent points at
# a closed port) and the agents say they poll, and a further change still converges by
# polling; wss:// works through TLS with a trusted certificate and is refused without.
# No timing is asserted beyond generous bounds.
set -euo pipefail
. "$(dirname "$0")/../../netns-harness/lib.sh"

# dump_has i j: node j's public key is a peer in node i's `wg show dump`, with its address.
dump_has() {
	h_in "$1" wg show "$(h_if "$1")" dump | awk -v k="$(h_wg_pubkey "$2")" -v ip="10.0.1.${H_TOKEN[$2]}/32" \
		'NR > 1 && $1 == k && $4 == ip { f = 1 } END { exit !f }'
}
wait_dump() { # i j timeout_s
	local t
	for t in $(seq 1 $(($3 * 10))); do
		dump_has "$1" "$2" && return 0
		sleep 0.1
	done
	return 1
}
wait_log() { # i pattern timeout_s
	local t
	for t in $(seq 1 $(($3 * 10))); do
		grep -qs "$2" "$H_RUN/agent$1.log" && return 0
		sleep 0.1
	done
	return 1
}

h_init push
h_deploy
# anvil's WebSocket, through a forwarder in the hub that the test can kill: node 1 and 2
# follow heads through it. The forwarder is socat, one child per connection.
ip netns exec "${H_PREFIX}hub" socat TCP-LISTEN:8546,bind="$H_HUB_IP",reuseaddr,fork \
	TCP:"$H_HUB_IP":8545 >"$H_RUN/ws-fwd.log" 2>&1 &
FWD=$!
H_OTHER_PIDS+=($FWD)
for t in $(seq 1 100); do
	ip netns exec "${H_PREFIX}hub" ss -Hltn "sport = :8546" | grep -q LISTEN && break
	sleep 0.05
done

LONG=600000  # the safety poll: 10 minutes, far beyond any bound below
for i in 1 2; do
	h_node_add $i
	h_mint_bind $i
	h_agent_start $i --rpc-ws "ws://$H_HUB_IP:8546" --push-poll-ms $LONG
done
for i in 1 2; do
	h_agent_wait_registered $i 60
	wait_log $i "push: subscribed to new heads" 30 || h_die "node $i did not subscribe ($H_RUN/agent$i.log)"
done
h_wait_mesh 60 1 2 || h_die "nodes 1 and 2 did not mesh"
h_log "nodes 1 and 2 follow new heads by push; registry safety poll ${LONG} ms"

# Node 3 joins (mint, bind, its registration): only push can tell nodes 1 and 2 within 60 s.
t0=$(date +%s%N)
h_node_up 3
h_agent_wait_registered 3 60
for i in 1 2; do
	wait_dump $i 3 60 || h_die "node $i: node 3 not in wg show dump with the poll at $LONG ms ($H_RUN/agent$i.log)"
done
h_log "node 3 in nodes 1 and 2's wg show dump by push, $(( ($(date +%s%N) - t0) / 1000000 )) ms after its mint (printed, not asserted)"
h_wait_mesh 60 1 2 3 || h_die "the mesh of 3 did not form"

# Drift with push on and the registry read only every 10 min: the device check still runs
# every P2P_POLL_MS, so a peer removed by hand is back (it costs no RPC read).
added() { grep -c "peer 10.0.1.${H_TOKEN[3]} .*: added" "$H_RUN/agent1.log" || true; }
n0=$(added)
h_in 1 wg set "$(h_if 1)" peer "$(h_wg_pubkey 3)" remove
for t in $(seq 1 300); do [ "$(added)" -gt "$n0" ] && break; sleep 0.1; done
[ "$(added)" -gt "$n0" ] || h_die "node 1 did not add back the peer removed by hand with push on"
wait_dump 1 3 30 || h_die "node 1: the peer removed by hand is not in wg show dump"
h_log "node 1 put back a peer removed by hand, the registry's safety poll at ${LONG} ms"

# The WebSocket path dies: nodes 1 and 2 fall back to polling, and say so.
kids=$(pgrep -P "$FWD" || true)  # socat's per-connection children, by their parent's pid
h_kill "$FWD" $kids
for i in 1 2; do
	wait_log $i "push: .*polling the registry every $H_POLL_MS ms, retrying the WebSocket" 30 ||
		h_die "node $i did not say it falls back to polling ($H_RUN/agent$i.log)"
done
h_log "nodes 1 and 2: $(grep -m1 "polling the registry every [0-9]* ms, retrying" "$H_RUN/agent1.log" | cut -c1-160)"

# A WebSocket URL on a closed port from the start: node 4 polls, says so, and joins.
h_node_add 4
h_mint_bind 4
h_agent_start 4 --rpc-ws "ws://$H_HUB_IP:1" --push-poll-ms $LONG
wait_log 4 "push: ws://$H_HUB_IP:1.*polling the registry every $H_POLL_MS ms, retrying the WebSocket" 30 ||
	h_die "node 4 did not say it polls ($H_RUN/agent4.log)"
h_agent_wait_registered 4 60
for i in 1 2 3; do
	wait_dump $i 4 60 || h_die "node $i: node 4 not in wg show dump after the fallback ($H_RUN/agent$i.log)"
done
h_wait_mesh 60 1 2 3 4 || h_die "the mesh of 4 did not form by polling"
h_log "node 4 joined by polling: every node's wg show dump lists it"

# wss://: TLS in front of anvil's WebSocket (socat, a certificate for the hub's address),
# trusted through OpenSSL's SSL_CERT_FILE: node 5 subscribes over TLS, checked by name.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=hub" \
	-addext "subjectAltName=IP:$H_HUB_IP" -keyout "$H_RUN/ws.key" -out "$H_RUN/ws.pem" 2>/dev/null
ip netns exec "${H_PREFIX}hub" socat OPENSSL-LISTEN:8547,bind="$H_HUB_IP",reuseaddr,fork,cert="$H_RUN/ws.pem",key="$H_RUN/ws.key",verify=0 \
	TCP:"$H_HUB_IP":8545 >"$H_RUN/wss-fwd.log" 2>&1 &
H_OTHER_PIDS+=($!)
for t in $(seq 1 100); do
	ip netns exec "${H_PREFIX}hub" ss -Hltn "sport = :8547" | grep -q LISTEN && break
	sleep 0.05
done
h_node_add 5
h_mint_bind 5
SSL_CERT_FILE=$H_RUN/ws.pem h_agent_start 5 --rpc-ws "wss://$H_HUB_IP:8547/" --push-poll-ms $LONG
wait_log 5 "push: subscribed to new heads at wss://" 30 || h_die "node 5 did not subscribe over wss ($H_RUN/agent5.log)"
h_agent_wait_registered 5 60
h_wait_mesh 60 1 2 3 4 5 || h_die "the mesh of 5 did not form"
# The same server, not trusted (the system store): refused, and the agent polls.
h_node_add 6
h_mint_bind 6
h_agent_start 6 --rpc-ws "wss://$H_HUB_IP:8547/"
wait_log 6 "push: wss://$H_HUB_IP:8547/ (its TLS certificate does not verify): .*; polling the registry" 30 ||
	h_die "node 6 did not refuse an untrusted certificate ($H_RUN/agent6.log)"
h_log "wss: subscribed through TLS with the certificate trusted, refused without"

# Configuration mistakes exit 2 with a message.
rc=0
P2P_RPC_WS_URL=ftp://x ETH_RPC_URL=$H_RPC CLUSTER_CONTRACT=$H_CONTRACT "$H_BIN/dstack-p2p" agent \
	>"$H_RUN/bad1.log" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q P2P_RPC_WS_URL "$H_RUN/bad1.log" || h_die "a bad P2P_RPC_WS_URL: exit $rc ($(cat "$H_RUN/bad1.log"))"
rc=0
P2P_RPC_WS_URL=auto ETH_RPC_URL=/tmp/none.ipc CLUSTER_CONTRACT=$H_CONTRACT "$H_BIN/dstack-p2p" agent \
	>"$H_RUN/bad2.log" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q "auto" "$H_RUN/bad2.log" || h_die "auto without an http RPC: exit $rc ($(cat "$H_RUN/bad2.log"))"
h_log "push: all checks passed"
