#!/bin/bash
# SPDX-License-Identifier: MIT
# Mesh benchmark (userspace WireGuard in network namespaces, anvil, the simulator):
#   convergence from the block holding a join (a relayed registerPeer) or a burn to the
#   moment every node's `wg show` matches, at N = 3, 8, 16 (p50 / max over a few cycles);
#   then, at 16 peers, one agent's RSS, CPU while idle, and RPC calls per idle poll; then
#   two nodes with pairwise PSKs and without (P2P_PSK=on/off): handshake time and iperf3.
# Figures are printed, never asserted. BENCH_MESH_SIZES, BENCH_MESH_CYCLES override.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/mesh.sh: needs root (network namespaces); skipped"; exit 0; }
. "$(dirname "$0")/../netns-harness/lib.sh"
SIZES=${BENCH_MESH_SIZES:-3 8 16}
CYCLES=${BENCH_MESH_CYCLES:-5}

# ms from t0 until every live node's device matched, each node's time being the first
# check that saw it match (only unmatched nodes are checked again, so the cost of
# looking at 17 namespaces does not pile onto the figure).
converged_ms() {
	local t0=$1 latest=0 deadline i now
	shift
	local pending=("$@") next
	h_cache_keys "$@"
	deadline=$(( $(date +%s) + 30 ))
	while [ ${#pending[@]} -gt 0 ]; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		next=()
		for i in "${pending[@]}"; do
			if h_node_matches "$i" "$@"; then
				now=$(date +%s%N)
				[ "$now" -gt "$latest" ] && latest=$now
			else
				next+=("$i")
			fi
		done
		pending=("${next[@]}")
		[ ${#pending[@]} -gt 0 ] && sleep 0.02
	done
	echo $(( (latest - t0) / 1000000 ))
}
stats() { sort -n | awk '{ v[NR] = $1 } END { printf "p50 %d ms, max %d ms (%d samples)", v[int((NR + 1) / 2)], v[NR], NR }'; }

# Wait (bounded) for the joiner's agent to print a registration calldata we have not sent.
next_calldata() {
	local log=$1 seen=$2 t data
	for t in $(seq 1 300); do
		data=$(sed -n 's/^registration calldata: \(0x[0-9a-f]*\)$/\1/p' "$log" | tail -1)
		[ -n "$data" ] && [ "$data" != "$seen" ] && { echo "$data"; return 0; }
		sleep 0.05
	done
	return 1
}

bench_size() {
	local n=$1 j=$(( $1 + 1 )) c t0 sent="" data
	local nodes=($(seq 1 "$n")) all=($(seq 1 "$j"))
	h_init dpb
	h_deploy
	for i in "${nodes[@]}"; do h_node_up "$i"; done
	h_wait_mesh 120 "${nodes[@]}" || h_die "N=$n did not converge"
	# The joiner has no funded key: it prints its signed registration, the operator relays it,
	# so the join's block is the one our `cast send` waited for.
	h_node_add "$j"
	h_agent_start "$j" --tx-key-file ""
	: >"$H_RUN/join.ms"
	: >"$H_RUN/burn.ms"
	for c in $(seq 1 "$CYCLES"); do
		h_mint_bind "$j" >/dev/null
		data=$(next_calldata "$H_RUN/agent$j.log" "$sent") || h_die "joiner printed no calldata"
		sent=$data
		h_cast send --private-key "$H_OPERATOR_KEY" "$H_CONTRACT" "$data" >/dev/null
		t0=$(date +%s%N)
		converged_ms "$t0" "${all[@]}" >>"$H_RUN/join.ms" || h_die "join $c did not converge"
		h_cast send --private-key "$H_OPERATOR_KEY" "$H_CONTRACT" "burn(uint256)" "${H_TOKEN[$j]}" >/dev/null
		t0=$(date +%s%N)
		converged_ms "$t0" "${nodes[@]}" >>"$H_RUN/burn.ms" || h_die "burn $c did not converge"
	done
	echo "mesh N=$n (+1 joining), poll ${H_POLL_MS} ms: join $(stats <"$H_RUN/join.ms"); burn $(stats <"$H_RUN/burn.ms")"

	if [ "$n" -ge 16 ]; then
		# Idle with 16 peers: node 1 of 17 (rejoin the joiner first).
		h_mint_bind "$j" >/dev/null
		data=$(next_calldata "$H_RUN/agent$j.log" "$sent") || h_die "joiner printed no calldata"
		h_cast send --private-key "$H_OPERATOR_KEY" "$H_CONTRACT" "$data" >/dev/null
		h_wait_mesh 30 "${all[@]}" || h_die "rejoin did not converge"
		sleep 2
		local pid=${H_PID_AGENT[1]} calls0 calls1 cpu0 cpu1 hz secs=10
		hz=$(getconf CLK_TCK)
		status() { DSTACK_P2P_CONTROL="$H_RUN/ctl1.sock" "$H_BIN/dstack-p2p" status --json; }
		calls0=$(status | sed -n 's/.*"rpc_calls":\([0-9]*\).*/\1/p')
		cpu0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
		sleep "$secs"
		calls1=$(status | sed -n 's/.*"rpc_calls":\([0-9]*\).*/\1/p')
		cpu1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
		# RssFile is mostly shared library pages (libcrypto, libcurl and its deps), shared
		# with every other process; RssAnon is what this agent costs on its own.
		echo "agent idle with $(( j - 1 )) peers: RSS $(awk '/VmRSS/ { print $2 " " $3 }' "/proc/$pid/status")" \
			"(anonymous $(awk '/RssAnon/ { print $2 " " $3 }' "/proc/$pid/status")," \
			"file-backed $(awk '/RssFile/ { print $2 " " $3 }' "/proc/$pid/status"))," \
			"CPU $(awk -v t=$((cpu1 - cpu0)) -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.2f%%", 100 * t / hz / s }')" \
			"over ${secs} s, RPC calls per idle poll" \
			"$(awk -v c=$((calls1 - calls0)) -v s="$secs" -v p="$H_POLL_MS" 'BEGIN { printf "%.2f", c / (s * 1000 / p) }')" \
			"(a status request costs none)"
	fi
	h_cleanup_now
}

# Each size is its own harness run; h_cleanup_now tears it down without leaving the shell.
h_cleanup_now() { (h_cleanup) || true; trap - EXIT INT TERM; }
# Pairwise PSKs: handshake time and iperf3 throughput between two nodes, with PSKs
# (P2P_PSK=on, the default) and without (off), in the same run. Handshake time: the first
# ping after node 1 forgets node 2's session (its agent paused, the peer removed and set
# again by hand with the same fields, PSK included) answers after one handshake.
bench_psk() {
	local mode i k pid t0 rtt
	h_init dpk
	h_deploy
	for i in 1 2; do h_node_add "$i"; h_mint_bind "$i"; done
	for mode in on off; do
		for i in 1 2; do P2P_PSK=$mode h_agent_start "$i"; done
		h_wait_mesh 60 1 2 || h_die "psk=$mode: no mesh"
		for k in 1 2 3 4 5; do h_ping 1 2 && break; done
		: >"$H_RUN/hs-$mode.ms"
		pid=${H_PID_AGENT[1]}
		for k in $(seq 1 "${BENCH_PSK_HANDSHAKES:-10}"); do
			kill -STOP "$pid"
			h_in 1 wg showconf "$(h_if 1)" >"$H_RUN/conf1"
			h_in 1 wg set "$(h_if 1)" peer "${H_PUB[2]}" remove
			awk -v k="${H_PUB[2]}" '/^\[Peer\]/ { p = 0 } $0 == "PublicKey = " k { p = 1; print "[Peer]" } p' \
				"$H_RUN/conf1" >"$H_RUN/peer2.conf"
			h_in 1 wg addconf "$(h_if 1)" "$H_RUN/peer2.conf"
			t0=$(date +%s%N)
			h_in 1 ping -c 1 -W 5 -q "$(h_addr 2)" >/dev/null || h_die "psk=$mode: no answer after a new handshake"
			echo $(( ($(date +%s%N) - t0) / 1000000 )) >>"$H_RUN/hs-$mode.ms"
			kill -CONT "$pid"
			sleep 0.5
		done
		h_in 2 iperf3 -s -1 -B "$(h_addr 2)" >/dev/null 2>&1 &
		sleep 0.5
		h_in 1 iperf3 -c "$(h_addr 2)" -t "${BENCH_PSK_SECONDS:-5}" -J >"$H_RUN/iperf-$mode.json" || h_die "iperf3"
		echo "psk=$mode: handshake + first ping $(stats <"$H_RUN/hs-$mode.ms"); iperf3 over wireguard-go" \
			"$(jq -r '.end.sum_received.bits_per_second / 1e6 | floor' "$H_RUN/iperf-$mode.json") Mbit/s" \
			"($(h_in 1 wg show "$(h_if 1)" preshared-keys | awk '{ print $2 }' | sed 's/^[^(].*/set/') PSK)"
		for i in 1 2; do h_kill "${H_PID_AGENT[$i]}"; done
	done
	h_cleanup_now
}

for n in $SIZES; do bench_size "$n"; done
[ "${BENCH_MESH_PSK:-1}" = 0 ] || bench_psk
