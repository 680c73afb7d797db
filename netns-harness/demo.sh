#!/bin/bash
# SPDX-License-Identifier: MIT
# make demo [N=3]: a local dstack-p2p mesh of N nodes on anvil and the guest-agent
# simulator, with userspace WireGuard. Shows each node's peer table and a ping matrix,
# then cleans up (also on Ctrl-C). H_KEEP=1 keeps the scratch directory with the logs.
set -euo pipefail
N=${1:-3}
. "$(dirname "$0")/lib.sh"
h_check_n demo 2 200 "$N"

h_init dpd
h_deploy
for i in $(seq 1 "$N"); do h_node_add "$i"; done
for i in $(seq 1 "$N"); do h_mint_bind "$i"; done
h_log "starting $N agents (one per node namespace, userspace WireGuard)"
for i in $(seq 1 "$N"); do h_agent_start "$i"; done
for i in $(seq 1 "$N"); do h_agent_wait_registered "$i" 60; done
h_log "every node is registered on chain"
nodes=($(seq 1 "$N"))
h_wait_mesh 60 "${nodes[@]}" || h_die "the WireGuard peers did not converge"
h_log "every node's WireGuard peers match the registry"

for i in "${nodes[@]}"; do
	echo
	echo "=== node $i ($(h_ns "$i"), $(h_addr $i)) — dstack-p2p status"
	DSTACK_P2P_CONTROL="$H_RUN/ctl$i.sock" "$H_BIN/dstack-p2p" status
done

echo
echo "=== ping matrix (row pings column over the mesh; ms of one echo, or FAIL)"
W=12  # column width: 10.0.1.254 and two spaces
printf '%-*s' $W ""
for j in "${nodes[@]}"; do printf '%-*s' $W "$(h_addr $j)"; done
echo
fails=0
for i in "${nodes[@]}"; do
	printf '%-*s' $W "$(h_addr $i)"
	for j in "${nodes[@]}"; do
		if [ "$i" = "$j" ]; then printf '%-*s' $W "-"; continue; fi
		rtt=""
		for try in 1 2 3; do
			rtt=$(h_in "$i" ping -c 1 -W 1 "$(h_addr $j)" 2>/dev/null |
				sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p') && [ -n "$rtt" ] && break
		done
		if [ -n "$rtt" ]; then printf '%-*s' $W "$rtt"; else printf '%-*s' $W "FAIL"; fails=$((fails + 1)); fi
	done
	echo
done
echo
if [ "$fails" = 0 ]; then
	h_log "demo: $N nodes, $((N * (N - 1))) of $((N * (N - 1))) pairs answer over WireGuard"
else
	h_die "demo: $fails of $((N * (N - 1))) pairs did not answer"
fi
# DEMO_HOLD=1: keep the mesh up for apps (docs/api.md's Python examples) until Enter.
if [ -n "${DEMO_HOLD:-}" ]; then
	echo "cluster contract: $H_CONTRACT"
	for i in "${nodes[@]}"; do echo "node $i: DSTACK_P2P_CONTROL=$H_RUN/ctl$i.sock"; done
	echo "the mesh stays up; press Enter to stop it"
	read -r _ || true
fi
