#!/bin/bash
# SPDX-License-Identifier: MIT
# Gateway transport benchmark (userspace WireGuard in namespaces, nginx as the gateway):
#   two nodes, side by side under each link condition (clean; 0.1 % and 1 % loss; 20 and
#   80 ms delay; 1 % loss + 20 ms): iperf3 TCP throughput and ping p50/p99 over (a) direct
#   UDP and (b) the gateway path (UDP blocked by nftables), the ratio b/a, and the relay's
#   queue drops; the relay's CPU per Gbit (both agents' CPU time during the clean iperf3
#   run); iperf3 on the gateway path at several interface MTUs; the agent's RSS with 16
#   peers relayed (bench/relay-peers.c, in-process); the time auto mode takes to fall back
#   from UDP to the gateway when UDP stops, and back once it passes again.
# Conditions: the host kernel may lack sch_netem (this one does), so loss is iptables'
# statistic match and delay is bench/netem-queue.c (NFQUEUE), both on each node's eth0
# ingress: every direction of either path crosses exactly one conditioned ingress, so
# both paths see the loss per direction and the added round trip (half the delay on each
# node). The hub's ports segment in software (gso_max_segs 1): a GSO burst of dozens of
# datagrams (wireguard-go's UDP_SEGMENT, TCP's TSO) then crosses the loss as single
# packets, as on a wire, instead of being lost or kept whole. Figures are printed, never
# asserted. BENCH_GW_SECONDS sets the iperf3 duration (10 s, after 2 s left out for slow
# start), BENCH_GW_AUTO=0 skips the fallback timing.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/gateway.sh: needs root (network namespaces); skipped"; exit 0; }
for tool in nginx iperf3 nft iptables; do
	command -v "$tool" >/dev/null || { echo "bench/gateway.sh: $tool missing (make deps); skipped"; exit 0; }
done
. "$(dirname "$0")/../netns-harness/lib.sh"
. "$(dirname "$0")/../netns-harness/gateway.sh"
H_CLEANUP_HOOK=h_gw_cleanup  # netem-queue is in H_OTHER_PIDS; the rules go with the namespaces
SECONDS_RUN=${BENCH_GW_SECONDS:-10}
NETEM=$H_BIN/bench/netem-queue
[ -x "$NETEM" ] || { echo "bench/gateway.sh: $NETEM missing (make bench)"; exit 0; }
# name, loss %, added round trip ms
CONDS=("clean 0 0" "loss-0.1% 0.1 0" "loss-1% 1 0" "delay-20ms 0 20" "delay-80ms 0 80" "1%+20ms 1 20")

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
declare -A NETEM_PID=()
# cond_set LOSS DELAY: on both nodes' eth0 ingress, drop LOSS % and hold DELAY/2 ms
cond_set() {
	local loss=$1 delay=$2 i
	for i in 1 2; do
		if [ "$loss" != 0 ]; then
			h_in "$i" iptables -t mangle -A PREROUTING -i eth0 -m statistic --mode random \
				--probability "$(awk -v l="$loss" 'BEGIN { print l / 100 }')" -j DROP
		fi
		if [ "$delay" != 0 ]; then
			h_in "$i" iptables -t mangle -A PREROUTING -i eth0 -j NFQUEUE --queue-num 7 --queue-bypass
			ip netns exec "$(h_ns "$i")" "$NETEM" 7 "$(awk -v d="$delay" 'BEGIN { print d / 2 }')" 0 \
				2>>"$H_RUN/netem$i.log" &
			NETEM_PID[$i]=$!
			H_OTHER_PIDS+=($!)
		fi
	done
	sleep 0.3
}
cond_clear() {
	local i
	for i in 1 2; do
		# packets the loss rule dropped (its counter), into R_LOST
		h_in "$i" iptables -t mangle -nvxL PREROUTING 2>/dev/null | awk '/DROP/ { d += $1 } END { printf "%d ", d }' >>"$H_RUN/lost"
		[ -n "${NETEM_PID[$i]:-}" ] && { kill "${NETEM_PID[$i]}" 2>/dev/null; wait "${NETEM_PID[$i]}" 2>/dev/null || true; }
		NETEM_PID[$i]=
		h_in "$i" iptables -t mangle -F PREROUTING 2>/dev/null || true
	done
}
# iperf3 from node 1 to node 2: received Mbit/s, and both agents' CPU seconds meanwhile
run_iperf() {
	local c1 c2 out mbps hz server
	hz=$(getconf CLK_TCK)
	ip netns exec "$(h_ns 2)" iperf3 -s -1 -B "$(h_addr 2)" >/dev/null 2>&1 &
	server=$!
	H_OTHER_PIDS+=($server)
	sleep 0.5
	c1=$(( $(cpu_ticks "${H_PID_AGENT[1]}") + $(cpu_ticks "${H_PID_AGENT[2]}") ))
	# latency under load: pings beside the stream, after the 2 s iperf3 omits (slow start)
	(sleep 2; h_in 1 ping -c $(( (SECONDS_RUN - 1) * 20 )) -i 0.05 -W 1 "$(h_addr 2)" >"$H_RUN/loaded-ping" 2>&1 || true) &
	out=$(h_in 1 iperf3 -c "$(h_addr 2)" -t "$SECONDS_RUN" -O 2 -f m 2>&1) || out=
	wait $! 2>/dev/null || true
	c2=$(( $(cpu_ticks "${H_PID_AGENT[1]}") + $(cpu_ticks "${H_PID_AGENT[2]}") ))
	kill "$server" 2>/dev/null || true
	wait "$server" 2>/dev/null || true
	mbps=$(echo "$out" | awk '/receiver/ { print $(NF-2) }')
	echo "${mbps:-0} $(awk -v t=$((c2 - c1)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')"
}
# p50 / p99 of ping's output on stdin, in ms
ping_pct() {
	sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -n |
		awk '{ v[NR] = $1 } END { if (NR) printf "%.3f %.3f\n", v[int((NR + 1) / 2)], v[int(NR * 0.99 + 0.5)]; else print "0 0" }'
}
# ping p50 / p99 in ms, 200 pings on an idle path
run_ping() { h_in 1 ping -c 200 -i 0.01 -W 1 "$(h_addr 2)" 2>/dev/null | ping_pct; }
wait_ping() { local t; for t in $(seq 1 100); do h_ping 1 2 && return 0; done; return 1; }
ep12() { h_in 1 wg show "$(h_if 1)" endpoints | grep "^${H_PUB[2]}" | cut -f2; }
# the relay's queue drops, both agents, all peers (status --json)
relay_drops() {
	local i n=0 d
	for i in 1 2; do
		d=$(DSTACK_P2P_CONTROL="$H_RUN/ctl$i.sock" "$H_BIN/dstack-p2p" status --json 2>/dev/null |
			grep -o '"drops":[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }')
		n=$((n + d))
	done
	echo "$n"
}
# UDP datagrams the kernel dropped for a full socket buffer, both namespaces (relay + WireGuard)
udp_rcvbuf_errors() {
	local i n=0 e
	for i in 1 2; do
		e=$(h_in "$i" awk '/^Udp:/ { if (!h) { for (f = 1; f <= NF; f++) if ($f == "RcvbufErrors") c = f; h = 1 } else print $c }' /proc/net/snmp)
		n=$((n + e))
	done
	echo "$n"
}
# measure PATH: every condition; results in R_MBPS[path/cond], R_P50, R_P99, R_DROPS
declare -A R_MBPS=() R_P50=() R_P99=() R_DROPS=() R_CPU=() R_RCVBUF=() R_LOST=() R_LP99=()
measure() {
	local path=$1 c name loss delay d0 e0 mbps cpu p50 p99
	for c in "${CONDS[@]}"; do
		read -r name loss delay <<<"$c"
		cond_set "$loss" "$delay"
		wait_ping || true
		d0=$(relay_drops) e0=$(udp_rcvbuf_errors)
		read -r mbps cpu < <(run_iperf)
		read -r _ R_LP99[$path/$name] < <(ping_pct <"$H_RUN/loaded-ping")
		read -r p50 p99 < <(run_ping)
		R_DROPS[$path/$name]=$(( $(relay_drops) - d0 )) R_RCVBUF[$path/$name]=$(( $(udp_rcvbuf_errors) - e0 ))
		: >"$H_RUN/lost"
		cond_clear
		R_LOST[$path/$name]=$(awk '{ print $1 + $2 }' "$H_RUN/lost")
		R_MBPS[$path/$name]=$mbps R_CPU[$path/$name]=$cpu R_P50[$path/$name]=$p50 R_P99[$path/$name]=$p99
		h_log "$path $name: $mbps Mbit/s, ping p50 $p50 p99 $p99 ms (p99 under load ${R_LP99[$path/$name]}), relay drops ${R_DROPS[$path/$name]}, UDP rcvbuf drops ${R_RCVBUF[$path/$name]}, lost by the loss rule ${R_LOST[$path/$name]}"
	done
}

h_init dpw
h_deploy
h_gw_up
for i in 1 2; do h_node_add "$i"; h_gw_node "$i"; h_mint_bind "$i"; done
for port in v1 v2 vg; do ip -n "${H_PREFIX}hub" link set "${H_PREFIX}$port" gso_max_segs 1; done
for i in 1 2; do h_agent_start "$i" $(h_gw_agent_flags udp); done
h_wait_mesh 60 1 2 || h_die "UDP mesh did not converge"
wait_ping || h_die "no ping over UDP"
measure udp

for i in 1 2; do kill "${H_PID_AGENT[$i]}"; wait "${H_PID_AGENT[$i]}" 2>/dev/null || true; done
h_gw_block_udp 1 2
for i in 1 2; do h_agent_start "$i" $(h_gw_agent_flags gateway); done
for t in $(seq 1 100); do [ "$(ep12)" = "127.0.1.${H_TOKEN[2]}:$H_RELAY_PORT" ] && break; sleep 0.1; done
wait_ping || h_die "no ping over the gateway"
measure gw

echo "iperf3 TCP ($SECONDS_RUN s after 2 s of slow start) and ping (200) node 1 -> node 2, direct UDP vs the gateway path; loss per direction, delay = added round trip"
printf '%-11s %9s %9s %6s  %-22s %-22s %s\n' condition "UDP Mb/s" "gw Mb/s" ratio "UDP ping p50/p99/load" "gw ping p50/p99/load" "gw drops: relay queue / UDP socket"
for c in "${CONDS[@]}"; do
	read -r name _ _ <<<"$c"
	printf '%-11s %9.1f %9.1f %6.2f  %-22s %-22s %s\n' "$name" "${R_MBPS[udp/$name]}" "${R_MBPS[gw/$name]}" \
		"$(awk -v a="${R_MBPS[udp/$name]}" -v b="${R_MBPS[gw/$name]}" 'BEGIN { print a ? b / a : 0 }')" \
		"$(printf '%.2f/%.2f/%.1f' "${R_P50[udp/$name]}" "${R_P99[udp/$name]}" "${R_LP99[udp/$name]}")" \
		"$(printf '%.2f/%.2f/%.1f' "${R_P50[gw/$name]}" "${R_P99[gw/$name]}" "${R_LP99[gw/$name]}")" \
		"${R_DROPS[gw/$name]} / ${R_RCVBUF[gw/$name]}"
done
echo "ping in ms: p50 and p99 of 200 on the idle path, then p99 of pings beside the iperf3 stream (load)"
echo "goals: gateway >= 0.9x UDP clean, >= 0.5x at 1%+20ms"
printf 'agents CPU (both) during the clean iperf3: UDP %s s, gateway %s s = %.2f CPU s per Gbit relayed\n' \
	"${R_CPU[udp/clean]}" "${R_CPU[gw/clean]}" \
	"$(awk -v c="${R_CPU[gw/clean]}" -v m="${R_MBPS[gw/clean]}" -v s="$SECONDS_RUN" 'BEGIN { g = m * s / 1000; print g ? c / g : 0 }')"

# The gateway path at other interface MTUs (clean link): what the relay's frames cost.
line="gateway path, clean, iperf3 by interface MTU:"
for mtu in 1280 1420 2800 8000; do
	for i in 1 2; do h_in "$i" ip link set "$(h_if "$i")" mtu "$mtu"; done
	wait_ping || true
	d0=$(relay_drops)
	read -r mbps _ < <(run_iperf)
	line+=" $mtu: $mbps Mbit/s ($(( $(relay_drops) - d0 )) drops);"
done
for i in 1 2; do h_in "$i" ip link set "$(h_if "$i")" mtu 1420; done
echo "$line"

# auto: UDP first; UDP stops; the gateway after the fallback bound; UDP back after a probe
[ "${BENCH_GW_AUTO:-1}" = 0 ] || {
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
}

[ -x "$H_BIN/bench/relay-peers" ] && "$H_BIN/bench/relay-peers" || echo "relay-peers: not built (make bench)"
