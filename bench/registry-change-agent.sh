#!/bin/bash
# SPDX-License-Identifier: MIT
# One registry change as real agents see it (netns harness: wireguard-go, the simulator,
# anvil): node 1's agent follows the registry at 16, 64 and 254 entries (the others
# synthetic peers signed by the run's KMS root, build/bench/chain-registry --fill) while a
# peer is minted, bound and registered. Per change: the agent's CPU from /proc (utime+stime
# in clock ticks, and the on-CPU nanoseconds of /proc/<pid>/task/*/schedstat), less the
# idle polls of a window as long without a change, and its JSON-RPC bytes through a
# counting proxy (bench/rpc-count-proxy.py). With REGISTRY_CHANGE_BASE_BIN=<a build folder
# of an earlier tree>, node 2 runs that agent beside it and sees the same changes (the
# before/after comparison). Figures are printed, never asserted.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/registry-change-agent.sh: needs root (network namespaces); skipped"; exit 0; }
H_POLL_MS=${H_POLL_MS:-1000}
. "$(dirname "$0")/../netns-harness/lib.sh"
FILL=$H_ROOT/build/bench/chain-registry
[ -x "$FILL" ] || { echo "registry-change-agent: $FILL missing (make bench builds it)"; exit 1; }
BASE=${REGISTRY_CHANGE_BASE_BIN:-}
SIZES=${REGISTRY_CHANGE_SIZES:-16 64 254}
CHANGES=3
WINDOW=${REGISTRY_CHANGE_WINDOW_S:-6}

fill() { # n: registry entries in all
	OWNER_KEY=$H_OPERATOR_KEY KMS_KEY=$H_KMS_KEY "$FILL" --fill "$1" "$H_RUN/anvil.ipc" "$H_CONTRACT" \
		2>/dev/null || h_die "filling the registry to $1"
}
peers_of() { h_in "$1" wg show "$(h_if "$1")" peers | wc -l; }
wait_peers() { # node n: its device holds n peers (bounded)
	local t
	for t in $(seq 1 600); do
		[ "$(peers_of "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	h_die "node $1 did not reach $2 peers"
}
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
sched_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
bytes() { awk '{ print $1 + $2 }' "$H_RUN/count$1" 2>/dev/null || echo 0; }
count_proxy() { # i port: node i's agent reads the chain through a counting proxy in the hub
	ip netns exec "${H_PREFIX}hub" /usr/bin/python3 "$H_ROOT/bench/rpc-count-proxy.py" "$H_HUB_IP" "$2" \
		"$H_RPC" "$H_RUN/count$1" >"$H_RUN/count$1.err" 2>&1 &
	H_OTHER_PIDS+=($!)
	H_RPC_NODE[$1]=http://$H_HUB_IP:$2
	for _ in $(seq 1 100); do
		ip netns exec "${H_PREFIX}hub" ss -Hltn "sport = :$2" | grep -q LISTEN && return 0
		sleep 0.05
	done
	h_die "count proxy $1 did not start"
}
# sample i...: "ticks ns bytes" of each node's agent, one line per node
sample() { local i; for i in "$@"; do echo "$(ticks "${H_PID_AGENT[$i]}") $(sched_ns "${H_PID_AGENT[$i]}") $(bytes "$i")"; done; }

h_init rcha
h_deploy
nodes=(1)
count_proxy 1 8701
h_node_add 1
h_mint_bind 1
h_agent_start 1 --full-reread-ms 600000
h_agent_wait_registered 1 60
if [ -n "$BASE" ]; then
	[ -x "$BASE/dstack-p2p" ] || h_die "REGISTRY_CHANGE_BASE_BIN=$BASE holds no dstack-p2p"
	count_proxy 2 8702
	h_node_add 2
	h_mint_bind 2
	H_BIN=$BASE h_agent_start 2 --full-reread-ms 600000
	h_agent_wait_registered 2 60
	nodes=(1 2)
fi
label() { [ "$1" = 1 ] && echo "this tree" || echo "base ($BASE)"; }
echo "registry-change-agent: CPU per change less idle polls over a ${WINDOW} s window (poll ${H_POLL_MS} ms);" \
	"median of $CHANGES changes; one change = a peer minted, bound and registered"
hz=$(getconf CLK_TCK)
for size in $SIZES; do
	fill $((size - CHANGES))
	for i in "${nodes[@]}"; do wait_peers "$i" $((size - CHANGES - 1)); done
	sleep 3
	declare -A results=()
	for k in $(seq 1 $CHANGES); do
		mapfile -t a < <(sample "${nodes[@]}")
		sleep "$WINDOW"
		mapfile -t b < <(sample "${nodes[@]}")
		t0=$(date +%s%N)
		fill $((size - CHANGES + k))
		for i in "${nodes[@]}"; do wait_peers "$i" $((size - CHANGES + k - 1)); done
		left=$(( WINDOW * 1000 - ($(date +%s%N) - t0) / 1000000 ))
		[ "$left" -gt 0 ] && sleep "$(awk -v m="$left" 'BEGIN { print m / 1000 }')"
		mapfile -t c < <(sample "${nodes[@]}")
		for j in "${!nodes[@]}"; do
			i=${nodes[$j]}
			results[$i]+=$(awk -v a="${a[$j]}" -v b="${b[$j]}" -v c="${c[$j]}" -v hz="$hz" 'BEGIN {
				split(a, x); split(b, y); split(c, z)
				printf "%.2f %.2f %d\n", 1000 * ((z[1] - y[1]) - (y[1] - x[1])) / hz,
					((z[2] - y[2]) - (y[2] - x[2])) / 1e6, (z[3] - y[3]) - (y[3] - x[3]) }')$'\n'
		done
	done
	for i in "${nodes[@]}"; do
		printf '%s' "${results[$i]}" | sort -n -k2 | sed -n "$(( (CHANGES + 1) / 2 ))p" |
			awk -v s="$size" -v who="$(label "$i")" '{ printf "registry-change-agent: %4d entries  %-28s %7.2f ms CPU (utime+stime %s ms)  %8d B RPC\n", s, who, $2, $1, $3 }'
	done
	unset results
done
