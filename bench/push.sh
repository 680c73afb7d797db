#!/bin/bash
# SPDX-License-Identifier: MIT
# New heads by push against polling (P2P_RPC_WS_URL, docs/agent.md), in the netns harness:
# - convergence at N=3, 8 and 16 nodes, anvil with instant mining and with 1 s blocks,
#   push and poll (P2P_POLL_MS 1000): a synthetic registry entry is added (mint, bind,
#   registerPeer), and build/bench/converge-watch times each node's device listing it
#   (UAPI get=1, what `wg show dump` asks) from its block's head; p50 and max over
#   BENCH_PUSH_CHANGES changes x N nodes; push-nohook is push with no on-change command
#   (the harness's agents each start `cat >file` per change: 16 shells on 2 cores are part
#   of what push-at-N=16 measures, the agent's own latency is the no-hook figure);
# - idle CPU over 30 s beside 253 registry entries (instant mining: no blocks while idle):
#   a registered agent and an unregistered one (bound, waiting for an operator), each
#   with push and with poll.
# Figures are printed, never asserted. BENCH_PUSH_NS="3 8", BENCH_PUSH_BLOCKS="0" and
# BENCH_PUSH_IDLE=0 choose a subset (N=16 on a loaded 2-core machine measures the machine as much as us).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/push.sh: needs root (network namespaces); skipped"; exit 0; }
NS=${BENCH_PUSH_NS-3 8 16}  # "" for none (the idle figures only)
BLOCKS=${BENCH_PUSH_BLOCKS:-0 1}
CHANGES=${BENCH_PUSH_CHANGES:-5}

if [ "${1:-}" != --one ]; then
	for b in $BLOCKS; do bash "$0" --one "$b" || echo "push: the run with block time $b failed"; done
	exit 0
fi
BLOCK_TIME=$2
[ "$BLOCK_TIME" = 0 ] || export H_ANVIL_ARGS="--block-time $BLOCK_TIME"
H_POLL_MS=1000
. "$(dirname "$0")/../netns-harness/lib.sh"
. "$(dirname "$0")/cpu.bash"
FILL=$H_ROOT/build/bench/chain-registry
WATCH=$H_ROOT/build/bench/converge-watch
for t in "$FILL" "$WATCH"; do [ -x "$t" ] || { echo "push: $t missing (make bench builds it)"; exit 1; }; done
WS=ws://$H_HUB_IP:8545
chain=$([ "$BLOCK_TIME" = 0 ] && echo "instant mining" || echo "${BLOCK_TIME} s blocks")

entries=0  # registry entries
fill() { # n: registry entries in all
	OWNER_KEY=$H_OPERATOR_KEY KMS_KEY=$H_KMS_KEY "$FILL" --fill "$1" "$H_RUN/anvil.ipc" "$H_CONTRACT" \
		2>/dev/null || h_die "filling the registry to $1"
	entries=$1
}
peers() { h_in "$1" wg show "$(h_if "$1")" peers | wc -l; }
wait_peers() { # node n
	local t
	for t in $(seq 1 600); do [ "$(peers "$1")" -ge "$2" ] && return 0; sleep 0.2; done
	h_die "node $1 did not reach $2 peers"
}
subscribed() { grep -c "push: subscribed to new heads" "$H_RUN/agent$1.log" || true; }

# restart MODE nodes...: the agents again, with push (auto from the HTTP URL) or polling.
restart() {
	local mode=$1 i t before=()
	shift
	for i in "$@"; do
		before[$i]=$(subscribed "$i")
		h_kill "${H_PID_AGENT[$i]}"
		case $mode in
		push) h_agent_start "$i" --rpc-ws auto "${EXTRA[@]}" ;;
		push-nohook) h_agent_start "$i" --rpc-ws auto --on-change "" "${EXTRA[@]}" ;;
		*) h_agent_start "$i" "${EXTRA[@]}" ;;
		esac
	done
	for i in "$@"; do
		h_agent_wait_registered "$i" 60
		[ "$mode" != poll ] || continue
		for t in $(seq 1 100); do [ "$(subscribed "$i")" -gt "${before[$i]}" ] && break; sleep 0.1; done
		[ "$(subscribed "$i")" -gt "${before[$i]}" ] || h_die "node $i did not subscribe ($H_RUN/agent$i.log)"
	done
	sleep 2  # the first reads after a start
}

# One change watched on nodes 1..n: appends "latency_ms" lines to $H_RUN/lat.
one_change() {
	local n=$1 from socks=() i t out=$H_RUN/watch.out b
	for i in $(seq 1 "$n"); do socks+=("/var/run/wireguard/$(h_if "$i").sock"); done
	from=$(h_cast block-number)
	: >"$out"
	# in the hub's namespace (anvil's address); the UAPI sockets are paths, seen from any
	ip netns exec "${H_PREFIX}hub" "$WATCH" "$WS" $(( $(peers 1) + 1 )) 8000 "${socks[@]}" >"$out" 2>"$H_RUN/watch.err" &
	local wpid=$!
	for t in $(seq 1 100); do grep -q '^ready' "$out" && break; sleep 0.05; done
	fill $((entries + 1))
	wait "$wpid" || echo "push: some node did not list the change within 8 s ($(grep -c '^seen' "$out")/$n)"
	# the change's block: the contract's last log (registerPeer)
	b=$(h_cast logs --from-block "$from" --address "$H_CONTRACT" --json | jq -r '.[].blockNumber' |
		while read -r x; do echo $((x)); done | sort -n | tail -1)
	awk -v b="$b" '$1 == "head" && $2 == b { t = $3 } $1 == "seen" { s[$2] = $3 }
		END { if (!t) { print "push: no head seen for block " b > "/dev/stderr"; exit }
		      for (i in s) printf "%.1f\n", (s[i] - t) / 1000 }' "$out" >>"$H_RUN/lat"
}

# stats: p50 and max of $H_RUN/lat, and how many samples
stats() {
	sort -n "$H_RUN/lat" | awk '{ v[NR] = $1 } END { if (!NR) { print "no samples"; exit }
		printf "p50 %7.1f ms, max %7.1f ms (%d samples)", v[int((NR + 1) / 2)], v[NR], NR }'
}

h_init bpsh
h_deploy
EXTRA=()
n_up=0
for n in $NS; do
	for i in $(seq $((n_up + 1)) "$n"); do h_node_add "$i"; h_mint_bind "$i"; h_agent_start "$i"; done
	for i in $(seq $((n_up + 1)) "$n"); do h_agent_wait_registered "$i" 120; done
	entries=$((entries + n - n_up))
	n_up=$n
	for i in $(seq 1 "$n"); do wait_peers "$i" $((entries - 1)); done
	for mode in poll push push-nohook; do
		restart "$mode" $(seq 1 "$n")
		: >"$H_RUN/lat"
		for k in $(seq 1 "$CHANGES"); do one_change "$n"; done
		echo "push: convergence N=$n, $chain, $mode (poll ${H_POLL_MS} ms): $(stats)"
	done
done

# Idle CPU beside 253 registry entries (instant mining only: with blocks, push reads per block).
[ "$BLOCK_TIME" = 0 ] && [ "${BENCH_PUSH_IDLE:-1}" = 1 ] || exit 0
for i in $(seq $((n_up + 1)) 2); do h_node_add "$i"; h_mint_bind "$i"; h_agent_start "$i"; done
for i in $(seq $((n_up + 1)) 2); do h_agent_wait_registered "$i" 120; done
[ "$n_up" -ge 2 ] || n_up=2
for i in $(seq 3 "$n_up"); do h_kill "${H_PID_AGENT[$i]}"; done  # two registered agents are enough
# 253 entries and node U bound to token 254 with no funded key and no relayer: it waits,
# unregistered (as in bench/agent.sh); tokens stop at 254.
fill 253
u=$((n_up + 1))
h_node_add "$u"
h_mint_bind "$u"
restart push 1
restart poll 2
h_agent_start "$u" --tx-key-file "" --rpc-ws auto
for i in 1 2; do wait_peers "$i" 252; done
wait_peers "$u" 253
sleep 5
cpu=($(bench_idle_cpu 30 "${H_PID_AGENT[1]}" "${H_PID_AGENT[2]}" "${H_PID_AGENT[$u]}"))
h_kill "${H_PID_AGENT[$u]}"
h_agent_start "$u" --tx-key-file ""
wait_peers "$u" 253
sleep 5
cpu+=($(bench_idle_cpu 30 "${H_PID_AGENT[$u]}"))
echo "push: idle CPU beside 253 registry entries over 30 s (device check every ${H_POLL_MS} ms;" \
	"with push a registry read every 10 s): registered push ${cpu[0]}, registered poll ${cpu[1]};" \
	"unregistered push ${cpu[2]}, unregistered poll ${cpu[3]} (the last one measured alone)"
