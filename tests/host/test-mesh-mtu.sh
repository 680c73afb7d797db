#!/bin/bash
# SPDX-License-Identifier: MIT
# The WireGuard interface's MTU, as ip(8), ping and iperf3 see it (docs/transport.md, MTU):
#   UDP path: route MTU towards the peers' endpoints minus 80 (1500 -> 1420); a don't-
#   fragment ping of MTU-28 bytes passes and one byte more is refused at the sender; an
#   iperf3 stream runs with full-size segments (MSS = MTU - 40, less TCP timestamps); node 1's underlay link
#   shrinks to 1300 (ip link set mtu) and its interface follows to 1220, pings sized to it;
#   gateway path (UDP dropped by nftables, P2P_TRANSPORT=gateway): 1420, the same pings and
#   iperf3; P2P_MTU=1300 overrides; P2P_MTU=100 and P2P_MTU=abc stop the agent at start
#   with an error naming P2P_MTU.
set -euo pipefail
. "$(dirname "$0")/../../netns-harness/lib.sh"
. "$(dirname "$0")/../../netns-harness/gateway.sh"
pass() { h_log "PASS: $*"; }
H_CLEANUP_HOOK=h_gw_cleanup
command -v iperf3 >/dev/null || { echo "test-mesh-mtu: iperf3 missing (make deps)"; exit 1; }

mtu_of() { h_in "$1" ip -o link show "$(h_if "$1")" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'; }
wait_mtu() { # i mtu: up to 15 s for node i's interface to have it
	local t
	for t in $(seq 1 150); do [ "$(mtu_of "$1")" = "$2" ] && return 0; sleep 0.1; done
	h_die "node $1: interface MTU $(mtu_of "$1"), not $2 ($H_RUN/agent$1.log)"
}
wait_ping() { local t; for t in $(seq 1 30); do h_ping "$1" "$2" && return 0; done; return 1; }
# df_pings i j mtu: MTU-28 bytes of ICMP payload pass with DF set, one byte more does not
df_pings() {
	local i=$1 j=$2 mtu=$3 out
	h_in "$i" ping -c 2 -i 0.2 -W 2 -q -M do -s $((mtu - 28)) "$(h_addr "$j")" >/dev/null ||
		h_die "node $i -> $j: a $mtu-byte don't-fragment ping got no answer"
	out=$(h_in "$i" ping -c 1 -W 1 -M do -s $((mtu - 27)) "$(h_addr "$j")" 2>&1) &&
		h_die "node $i -> $j: a $((mtu + 1))-byte don't-fragment ping passed an MTU of $mtu"
	echo "$out" | grep -qi "message too long\|mtu = $mtu" ||
		h_die "node $i -> $j: one byte over the MTU failed, but not as too long: $out"
}
# iperf_mss i j mtu: a TCP stream from i to j whose segments are MTU - 40 bytes
iperf_mss() {
	local i=$1 j=$2 mtu=$3 srv out mss bps
	ip netns exec "$(h_ns "$j")" iperf3 -s -1 -B "$(h_addr "$j")" >/dev/null 2>&1 &
	srv=$!
	H_OTHER_PIDS+=($srv)
	sleep 0.5
	out=$(h_in "$i" iperf3 -c "$(h_addr "$j")" -t 2 -J 2>&1) || { kill "$srv" 2>/dev/null; h_die "iperf3 $i -> $j: $out"; }
	wait "$srv" 2>/dev/null || true
	mss=$(echo "$out" | sed -n 's/.*"tcp_mss_default":[[:space:]]*\([0-9]*\).*/\1/p' | head -1)
	bps=$(echo "$out" | sed -n '/"sum_received"/,/}/s/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' | head -1)
	# TCP_MAXSEG, which iperf3 reports, leaves out the 12-byte timestamp option when in use
	[ "$mss" = $((mtu - 40)) ] || [ "$mss" = $((mtu - 52)) ] ||
		h_die "iperf3 $i -> $j: MSS $mss, not $((mtu - 40)) (or - 12 for timestamps) for an MTU of $mtu"
	awk -v b="${bps:-0}" 'BEGIN { exit !(b > 1e6) }' || h_die "iperf3 $i -> $j: ${bps:-0} bit/s"
	h_log "iperf3 $i -> $j: MSS $mss, $(awk -v b="$bps" 'BEGIN { printf "%.0f", b / 1e6 }') Mbit/s"
}

h_init dpm
h_deploy
h_gw_up
for i in 1 2; do h_node_add "$i"; h_gw_node "$i"; h_mint_bind "$i"; done

# Bad values stop the agent at start, naming the variable.
for bad in 100 abc 70000; do
	P2P_MTU=$bad h_agent_start 1 $(h_gw_agent_flags udp)
	for t in $(seq 1 50); do kill -0 "${H_PID_AGENT[1]}" 2>/dev/null || break; sleep 0.1; done
	kill -0 "${H_PID_AGENT[1]}" 2>/dev/null && h_die "P2P_MTU=$bad: the agent kept running"
	grep -q "P2P_MTU" "$H_RUN/agent1.log" || h_die "P2P_MTU=$bad: no error naming P2P_MTU ($(tail -3 "$H_RUN/agent1.log"))"
	: >"$H_RUN/agent1.log"
done
pass "P2P_MTU=100, abc, 70000: the agent stops at start naming P2P_MTU"

# UDP path: 1500 - 80.
for i in 1 2; do h_agent_start "$i" $(h_gw_agent_flags udp); done
h_wait_mesh 60 1 2 || h_die "UDP mesh did not converge"
wait_ping 1 2 || h_die "no ping over UDP"
for i in 1 2; do wait_mtu "$i" 1420; done
df_pings 1 2 1420
df_pings 2 1 1420
iperf_mss 1 2 1420
pass "UDP path: MTU 1420, 1392-byte DF pings pass both ways, 1393 refused; iperf3 with full-size segments"

# A smaller underlay on node 1's link: its interface follows within a few polls.
h_in 1 ip link set eth0 mtu 1300
wait_mtu 1 1220
grep -q "MTU 1220" "$H_RUN/agent1.log" || h_die "node 1 did not log its new MTU"
df_pings 1 2 1220
iperf_mss 1 2 1220
h_in 1 ip link set eth0 mtu 1500
wait_mtu 1 1420
pass "underlay MTU 1300 on node 1: interface 1220, DF pings and iperf3 sized to it; back to 1420 at 1500"

# Gateway path only.
for i in 1 2; do kill "${H_PID_AGENT[$i]}"; wait "${H_PID_AGENT[$i]}" 2>/dev/null || true; done
h_gw_block_udp 1 2
h_in 1 ip link set eth0 mtu 1300  # the gateway path's MTU does not follow the underlay
for i in 1 2; do h_in "$i" ip link set "$(h_if "$i")" mtu 1280; done  # the agent must set it
for i in 1 2; do h_agent_start "$i" $(h_gw_agent_flags gateway); done
for i in 1 2; do wait_mtu "$i" 1420; done
wait_ping 1 2 || h_die "no ping over the gateway"
h_in 1 wg show "$(h_if 1)" endpoints | grep -q "127.0.1.${H_TOKEN[2]}:$H_RELAY_PORT" || h_die "node 1 is not on the gateway path"
df_pings 1 2 1420
df_pings 2 1 1420
iperf_mss 1 2 1420
pass "gateway path: MTU 1420 whatever the underlay, DF pings both ways, iperf3 with full-size segments"

# P2P_MTU overrides.
kill "${H_PID_AGENT[2]}"; wait "${H_PID_AGENT[2]}" 2>/dev/null || true
P2P_MTU=1300 h_agent_start 2 $(h_gw_agent_flags gateway)
wait_mtu 2 1300
wait_ping 2 1 || h_die "no ping after the restart with P2P_MTU"
df_pings 2 1 1300
pass "P2P_MTU=1300: interface 1300, DF pings sized to it"
