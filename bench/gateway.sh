#!/bin/bash
# SPDX-License-Identifier: MIT
# Gateway transport benchmark (userspace WireGuard in namespaces, nginx as the gateway):
#   two nodes, side by side: iperf3 TCP throughput and ping latency over (a) direct UDP and
#   (b) the gateway path (UDP blocked by nftables), the ratio b/a; the relay's CPU per Gbit
#   (both agents' CPU time during the iperf3 run); the agent's RSS with 16 peers relayed
#   (bench/relay-peers.c, in-process); the time auto mode takes to fall back from UDP to
#   the gateway when UDP stops, and back once it passes again (default P2P_FALLBACK_MS).
# Figures are printed, never asserted. BENCH_GW_SECONDS sets the iperf3 duration.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/gateway.sh: needs root (network namespaces); skipped"; exit 0; }
for tool in nginx iperf3 nft; do
	command -v "$tool" >/dev/null || { echo "bench/gateway.sh: $tool missing (make deps); skipped"; exit 0; }
done
. "$(dirname "$0")/../netns-harness/lib.sh"
. "$(dirname "$0")/../netns-harness/gateway.sh"
H_CLEANUP_HOOK=h_gw_cleanup
SECONDS_RUN=${BENCH_GW_SECONDS:-5}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# iperf3 from node 1 to node 2: received Mbit/s, and both agents' CPU seconds meanwhile
run_iperf() {
	local c1 c2 out mbps hz
	hz=$(getconf CLK_TCK)
	ip netns exec "$(h_ns 2)" iperf3 -s -1 -B "$(h_addr 2)" >/dev/null 2>&1 &
	H_OTHER_PIDS+=($!)
	sleep 0.5
	c1=$(( $(cpu_ticks "${H_PID_AGENT[1]}") + $(cpu_ticks "${H_PID_AGENT[2]}") ))
	out=$(h_in 1 iperf3 -c "$(h_addr 2)" -t "$SECONDS_RUN" -f m 2>&1) || { echo "0 0"; return; }
	c2=$(( $(cpu_ticks "${H_PID_AGENT[1]}") + $(cpu_ticks "${H_PID_AGENT[2]}") ))
	mbps=$(echo "$out" | awk '/receiver/ { print $(NF-2) }')
	echo "${mbps:-0} $(awk -v t=$((c2 - c1)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')"
}
# ping p50 / avg in ms, 100 pings
run_ping() {
	h_in 1 ping -c 100 -i 0.02 -W 1 "$(h_addr 2)" 2>/dev/null |
		sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -n |
		awk '{ v[NR] = $1; s += $1 } END { if (NR) printf "%.3f %.3f\n", v[int((NR + 1) / 2)], s / NR; else print "0 0" }'
}
wait_ping() { local t; for t in $(seq 1 100); do h_ping 1 2 && return 0; done; return 1; }
ep12() { h_in 1 wg show "$(h_if 1)" endpoints | grep "^${H_PUB[2]}" | cut -f2; }

h_init dpw
h_deploy
h_gw_up
for i in 1 2; do h_node_add "$i"; h_gw_node "$i"; h_mint_bind "$i"; done
for i in 1 2; do h_agent_start "$i" $(h_gw_agent_flags udp); done
h_wait_mesh 60 1 2 || h_die "UDP mesh did not converge"
wait_ping || h_die "no ping over UDP"
read -r udp_mbps udp_cpu < <(run_iperf)
read -r udp_p50 udp_avg < <(run_ping)

for i in 1 2; do kill "${H_PID_AGENT[$i]}"; wait "${H_PID_AGENT[$i]}" 2>/dev/null || true; done
h_gw_block_udp 1 2
for i in 1 2; do h_agent_start "$i" $(h_gw_agent_flags gateway); done
for t in $(seq 1 100); do [ "$(ep12)" = "127.0.1.${H_TOKEN[2]}:$H_RELAY_PORT" ] && break; sleep 0.1; done
wait_ping || h_die "no ping over the gateway"
read -r gw_mbps gw_cpu < <(run_iperf)
read -r gw_p50 gw_avg < <(run_ping)

printf 'iperf3 TCP, %s s:    direct UDP %8.1f Mbit/s   gateway %8.1f Mbit/s   ratio %.2f (goal >= 0.5)\n' \
	"$SECONDS_RUN" "$udp_mbps" "$gw_mbps" "$(awk -v a="$udp_mbps" -v b="$gw_mbps" 'BEGIN { print a ? b / a : 0 }')"
printf 'ping p50 / avg:       direct UDP %.3f / %.3f ms   gateway %.3f / %.3f ms   added p50 %.3f ms (goal < 1)\n' \
	"$udp_p50" "$udp_avg" "$gw_p50" "$gw_avg" "$(awk -v a="$udp_p50" -v b="$gw_p50" 'BEGIN { print b - a }')"
printf 'agents CPU (both) during iperf3: UDP %s s, gateway %s s = %.2f CPU s per Gbit relayed\n' \
	"$udp_cpu" "$gw_cpu" "$(awk -v c="$gw_cpu" -v m="$gw_mbps" -v s="$SECONDS_RUN" 'BEGIN { g = m * s / 1000; print g ? c / g : 0 }')"

# auto: UDP first; UDP stops; the gateway after the fallback bound; UDP back after a probe
for i in 1 2; do kill "${H_PID_AGENT[$i]}"; wait "${H_PID_AGENT[$i]}" 2>/dev/null || true; done
h_gw_unblock_udp 1 2
for i in 1 2; do h_agent_start "$i" $(h_gw_agent_flags auto); done
h_cache_keys 1 2
for t in $(seq 1 300); do [ "$(ep12)" = "$H_SUBNET.2:51830" ] && h_ping 1 2 && break; sleep 0.1; done
t0=$(date +%s%N)
h_gw_block_udp 1 2
for t in $(seq 1 600); do h_ping 1 2 && [ "$(ep12)" = "127.0.1.${H_TOKEN[2]}:$H_RELAY_PORT" ] && break; done
down=$(( ($(date +%s%N) - t0) / 1000000 ))
t0=$(date +%s%N)
h_gw_unblock_udp 1 2
for t in $(seq 1 1200); do [ "$(ep12)" = "$H_SUBNET.2:51830" ] && break; sleep 0.1; done
up=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "auto, P2P_FALLBACK_MS=10000: UDP blocked -> pings through the gateway after $down ms; UDP open -> back on UDP after $up ms (probe 30 s after falling back)"

[ -x "$H_BIN/bench/relay-peers" ] && "$H_BIN/bench/relay-peers" || echo "relay-peers: not built (make bench)"
