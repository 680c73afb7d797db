#!/bin/bash
# SPDX-License-Identifier: MIT
# Zero trust, round three (issue 24), the agent's side: what a local user, a lying fee
# suggestion and a slow chain can make a node do. One harness run of 2 nodes; node 1
# reads the chain through netns-harness/rpc-proxy.py. Ground truth from cast (nonce,
# balance, contract reads), wg show dump and the replies as this script times them
# (tests/host/ztl-client.py). Each scenario asserts its bound:
#   fee      an RPC suggesting a 139,000 gwei tip while node 1 re-registers: the
#            registration costs at most P2P_TX_MAX_COST (cast balance); a cost cap below
#            the registration's price sends nothing and names the cap
#   local    uid 65534 asks for leader.elect/heartbeat/vote 15 times: 0 transactions
#            (cast nonce); root is spaced (P2P_ACTION_SPACING_MS): 1 transaction of 6
#            rapid calls; a uid the operator allows (P2P_CONTROL_ACTION_UID) may act
#   slow     12 s blocks and root repeating leader actions: every reply says "pending" with
#            the hash; "status" p99 < 100 ms; the action is followed to "confirmed"
#   relay    through the relayer: its refusal's reason and its transaction's hash reach the
#            agent's reply (issue 28 point 9)
#   keyfile  a funded key file of mode 644/640/604, or owned by another user: the agent
#            exits 2 naming what is wrong
#   ws       a hostile WebSocket endpoint: confirm-then-close (at most 6 dials in 20 s, the
#            back-off is not reset), a stalling Upgrade (status p99 < 100 ms: the dial runs
#            off the loop), a flood of invented heads (distrusted; the burn below is seen
#            by the flooded node within a poll)
#   rss      8 MB RPC replies for a while: node 1's VmRSS back within 2 MB of its baseline
#   burn     node 1's token burned: its device has no peer within 2 s (wg show dump), the
#            peers file is empty and the peers document says "revoked" with no peers, the
#            interface stays, no transaction
# ZTL_SCENARIOS="fee local" runs a subset. About 2 min on an idle 2-core machine.
# Fixed ports only inside the run's own hub namespace (proxy 8601, relayer 8600, ws 8700).
set -euo pipefail
. "$(dirname "$0")/../../netns-harness/lib.sh"

CLIENT=$H_ROOT/tests/host/ztl-client.py
ztl_pass() { h_log "PASS: $*"; }
ztl_figure() { h_log "FIGURE $*"; }
ztl_ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
ztl_addr() { "$H_CAST" wallet address --private-key "$(cat "$H_RUN/txkey$1")"; }
ztl_nonce() { h_cast nonce "$(ztl_addr "$1")"; }
ztl_balance() { h_cast balance "$(ztl_addr "$1")"; }
# ztl_wait_nonce i N SECONDS: until node i's funded key has sent more than N (bounded in time).
ztl_wait_nonce() {
	local end=$(( $(date +%s) + $3 ))
	while [ "$(date +%s)" -lt "$end" ]; do
		[ "$(ztl_nonce "$1")" -gt "$2" ] && return 0
		sleep 0.2
	done
	[ "$(ztl_nonce "$1")" -gt "$2" ]
}
ztl_ask() { /usr/bin/python3 "$CLIENT" ask "$H_RUN/ctl$1.sock" "$2"; }
ztl_as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups /usr/bin/python3 "$CLIENT" "$@"; }

# ztl_restart i "NAME=VALUE ..." [agent flags...]: node i's agent again, with these
# variables in its environment (an agent that does not know one ignores it, so the same
# scenario runs against older builds).
ztl_restart() {
	local i=$1 kv vars=$2
	shift 2
	kill "${H_PID_AGENT[$i]}" 2>/dev/null || true
	wait "${H_PID_AGENT[$i]}" 2>/dev/null || true
	echo "--- ztl restart $vars $*" >>"$H_RUN/agent$i.log"
	for kv in $vars; do export "${kv?}"; done
	h_agent_start "$i" "$@"
	for kv in $vars; do unset "${kv%%=*}"; done
}

ztl_setup() {
	h_deploy
	h_proxy_start a 8601
	H_RPC_NODE[1]=${H_PROXY_URL[a]}
	h_node_up 1
	h_node_up 2
	h_agent_wait_registered 1 30
	h_agent_wait_registered 2 30
	h_wait_mesh 30 1 2 || h_die "2-node mesh did not converge"
	# uid 65534 reaches the sockets (0666) through the run's folder, as an app would.
	chmod 711 "$H_RUN"
	chmod 644 "$CLIENT"
}

# ---- fee: a lying fee suggestion costs at most the cap ---------------------------------
ztl_fee() {
	local n0 b0 b1 cost lies cap=10000000000000000
	h_proxy_set a '{"priority_fee": "0x7e6b759fb000"}'  # 139,000 gwei
	lies=$(grep -c "priority-fee lie" "$H_RUN/proxy-a.log" || true)
	n0=$(ztl_nonce 1)
	b0=$(ztl_balance 1)
	# A new endpoint: node 1 must register again, pricing through the lying proxy.
	ztl_restart 1 "P2P_TX_MAX_COST=0.01ether" --endpoint "$H_SUBNET.1:51831" --listen-port 51831
	ztl_wait_nonce 1 "$n0" 30 || h_die "fee: node 1 sent no registration for its new endpoint"
	h_agent_wait_registered 1 30
	[ "$(grep -c "priority-fee lie" "$H_RUN/proxy-a.log" || true)" -gt "$lies" ] ||
		h_die "fee: the proxy never told its fee lie"
	b1=$(ztl_balance 1)
	cost=$(python3 -c "print($b0 - $b1)")
	ztl_figure "fee: registration with a 139,000 gwei tip suggested cost $cost wei (cap $cap); $(( $(ztl_nonce 1) - n0 )) transaction(s)"
	python3 -c "import sys; sys.exit(0 if 0 < $cost <= $cap else 1)" ||
		h_die "fee: the registration cost $cost wei, above the cap of $cap wei (P2P_TX_MAX_COST)"
	# A cost cap below any registration: nothing is sent, and the log names the cap.
	n0=$(ztl_nonce 1)
	ztl_restart 1 "P2P_TX_MAX_COST=1gwei" --endpoint "$H_SUBNET.1:51832" --listen-port 51832
	for t in $(seq 1 100); do
		grep -q "max_cost" "$H_RUN/agent1.log" && break
		sleep 0.1
	done
	grep -q "max_cost" "$H_RUN/agent1.log" || h_die "fee: a registration above P2P_TX_MAX_COST was not refused naming the cap"
	sleep 1
	[ "$(ztl_nonce 1)" = "$n0" ] || h_die "fee: a registration above the cost cap was sent"
	h_proxy_set a '{}'
	ztl_restart 1 "" --endpoint "$H_SUBNET.1:51831" --listen-port 51831
	h_agent_wait_registered 1 30
	h_wait_mesh 30 1 2 || h_die "fee: mesh not whole again"
	ztl_pass "fee: a 139,000 gwei tip suggestion cost $cost wei <= the cap; a cap below the price sends nothing and is named"
}

# ---- local: who may make the node sign and pay ----------------------------------------
ztl_local() {
	local n0 out sent limited i
	n0=$(ztl_nonce 1)
	out=$(ztl_as_nobody repeat "$H_RUN/ctl1.sock" 5 0 leader.elect leader.heartbeat \
		'{"version":1,"request":"leader.vote","target":1}')
	[ "$(grep -c '^forbidden$' <<<"$out")" = 15 ] || h_die "local: uid 65534's 15 actions were not all refused: $(sort <<<"$out" | uniq -c)"
	# Reads stay open to it.
	ztl_as_nobody ask "$H_RUN/ctl1.sock" status | grep -q '"registered":true' || h_die "local: uid 65534 cannot read status"
	sleep 1
	[ "$(ztl_nonce 1)" = "$n0" ] || h_die "local: uid 65534 made node 1 send $(( $(ztl_nonce 1) - n0 )) transaction(s)"
	ztl_figure "local: uid 65534: 15 actions asked, 15 refused (forbidden), 0 transactions"
	# Root is allowed, and spaced: 6 calls in a row, one goes out.
	out=$(/usr/bin/python3 "$CLIENT" repeat "$H_RUN/ctl1.sock" 6 0 leader.elect)
	sent=$(grep -c '^sent pending$' <<<"$out" || true)
	limited=$(grep -c '^rate_limited$' <<<"$out" || true)
	[ "$sent" = 1 ] && [ "$limited" = 5 ] || h_die "local: root's 6 rapid elections: $(sort <<<"$out" | uniq -c)"
	ztl_wait_nonce 1 "$n0" 5 || true
	[ "$(( $(ztl_nonce 1) - n0 ))" = 1 ] || h_die "local: root's 6 rapid elections made $(( $(ztl_nonce 1) - n0 )) transactions, not 1"
	[ "$(h_cast call "$H_CONTRACT" 'currentLeaderTokenId()(uint256)')" = "${H_TOKEN[1]}" ] ||
		h_die "local: node 1's election did not make it the leader"
	for t in $(seq 1 50); do
		ztl_ask 1 leader | grep -q '"state":"confirmed"' && break
		sleep 0.1
	done
	ztl_ask 1 leader | grep -q '"action":"elect","tx":"0x[0-9a-f]\{64\}","state":"confirmed"' ||
		h_die "local: the leader document does not report the election confirmed: $(ztl_ask 1 leader)"
	ztl_figure "local: root: 6 rapid elections, 1 sent, 5 rate_limited; 1 transaction"
	# A uid the operator names may act: node 2 allows 65534.
	n0=$(ztl_nonce 2)
	ztl_restart 2 "P2P_CONTROL_ACTION_UID=65534"
	h_agent_wait_registered 2 30
	out=$(ztl_as_nobody repeat "$H_RUN/ctl2.sock" 1 0 "{\"version\":1,\"request\":\"leader.vote\",\"target\":${H_TOKEN[1]}}")
	[ "$out" = "sent pending" ] || h_die "local: the allowed uid's vote on node 2: $out"
	ztl_wait_nonce 2 "$n0" 5 || true
	[ "$(( $(ztl_nonce 2) - n0 ))" = 1 ] || h_die "local: the allowed uid's vote made $(( $(ztl_nonce 2) - n0 )) transactions"
	ztl_pass "local: uid 65534 causes 0 transactions; root is spaced (1 of 6); an allowed uid acts"
}

# ---- slow: 12 s blocks, leader actions repeated, status stays fast ----------------------
ztl_slow() {
	local out p50 p99 max rpid node
	# The leader's node (node 2's vote in "local" may have moved it) repeats its actions.
	node=1
	[ "$(h_cast call "$H_CONTRACT" 'currentLeaderTokenId()(uint256)')" = "${H_TOKEN[2]}" ] && node=2
	h_cast rpc evm_setAutomine false >/dev/null
	h_cast rpc evm_setIntervalMining 12 >/dev/null
	sleep 3  # the spacing of the last actions has passed
	/usr/bin/python3 "$CLIENT" repeat "$H_RUN/ctl$node.sock" 20 0.3 leader.heartbeat leader.elect \
		>"$H_RUN/slow-actions" 2>&1 &
	rpid=$!
	read -r p50 p99 max <<<"$(/usr/bin/python3 "$CLIENT" latency "$H_RUN/ctl$node.sock" 200 0.04)"
	wait "$rpid" || true
	ztl_figure "slow: 12 s blocks, leader actions every 0.3 s: status p50 $p50 ms, p99 $p99 ms, max $max ms; actions: $(sort "$H_RUN/slow-actions" | uniq -c | tr '\n' ' ')"
	grep -q '^sent pending$' "$H_RUN/slow-actions" || h_die "slow: no action was sent ($(sort "$H_RUN/slow-actions" | uniq -c))"
	grep -vq '^sent pending$\|^rate_limited$\|^refused$' "$H_RUN/slow-actions" &&
		h_die "slow: unexpected replies: $(sort "$H_RUN/slow-actions" | uniq -c)"
	python3 -c "import sys; sys.exit(0 if $p99 < 100 else 1)" || h_die "slow: status p99 $p99 ms (bound 100 ms)"
	# The sent heartbeat is followed to its receipt within two blocks or so.
	for t in $(seq 1 300); do
		ztl_ask "$node" leader | grep -q '"action":"heartbeat","tx":"0x[0-9a-f]*","state":"confirmed"' && break
		sleep 0.1
	done
	ztl_ask "$node" leader | grep -q '"action":"heartbeat","tx":"0x[0-9a-f]*","state":"confirmed"' ||
		h_die "slow: no heartbeat reported confirmed: $(ztl_ask "$node" leader)"
	h_cast rpc evm_setIntervalMining 0 >/dev/null
	h_cast rpc evm_setAutomine true >/dev/null
	ztl_pass "slow: with 12 s blocks status p99 $p99 ms < 100 ms while leader actions run; their outcome is reported"
}

# ---- relay: the relayer's refusal and its transaction reach the agent's reply (issue 28.9) ----
ztl_relay() {
	local leader k out
	h_relayer_start
	for t in $(seq 1 50); do
		ip netns exec "${H_PREFIX}hub" ss -Hltn "sport = :8600" | grep -q LISTEN && break
		sleep 0.1
	done
	leader=$(h_cast call "$H_CONTRACT" 'currentLeaderTokenId()(uint256)')
	k=1
	[ "$leader" = "${H_TOKEN[1]}" ] && k=2
	ztl_restart "$k" "" --tx-key-file "" --relayer "http://$H_HUB_IP:8600/relay"
	h_agent_wait_registered "$k" 30
	sleep 2.1  # past the action spacing of the restart's first turn
	# Not the leader: the relayer's simulation refuses; its reason must come back.
	out=$(ztl_ask "$k" leader.heartbeat)
	grep -q '"code":"refused"' <<<"$out" && grep -q 'NotCurrentLeader\|NoLeader' <<<"$out" ||
		h_die "relay: the relayer's refusal did not reach the reply: $out"
	grep -q 'HTTP 422"' <<<"$out" && h_die "relay: the reply says only the HTTP status: $out"
	ztl_figure "relay: refused heartbeat: $(grep -o '"message":"[^"]*"' <<<"$out")"
	sleep 2.1
	# A vote (an election when there is no leader) the relayer sends: the reply names its
	# transaction.
	if [ "$leader" = 0 ]; then
		out=$(ztl_ask "$k" leader.elect)
	else
		out=$(ztl_ask "$k" "{\"version\":1,\"request\":\"leader.vote\",\"target\":$leader}")
	fi
	grep -q '"tx":"0x[0-9a-f]\{64\}","state":"pending","relayed":true' <<<"$out" ||
		h_die "relay: the relayed action's reply does not carry its transaction: $out"
	ztl_figure "relay: relayed action: $(grep -o '"action":"[a-z]*","tx":"0x[0-9a-f]*"' <<<"$out")"
	ztl_restart "$k" ""
	h_agent_wait_registered "$k" 30
	ztl_pass "relay: the relayer's reason reaches the agent's reply; a relayed action carries its hash"
}

# ---- keyfile: the funded key's file must be ours and private ---------------------------
ztl_keyfile() {
	local out rc
	kill "${H_PID_AGENT[2]}" 2>/dev/null || true
	wait "${H_PID_AGENT[2]}" 2>/dev/null || true
	for mode in 644 640 604; do
		chmod "$mode" "$H_RUN/txkey2"
		out=$(timeout 20 ip netns exec "$(h_ns 2)" env DSTACK_SIMULATOR_ENDPOINT="$H_RUN/sim2.sock" \
			CLUSTER_CONTRACT="$H_CONTRACT" ETH_RPC_URL="$H_RPC" P2P_INTERFACE="$(h_if 2)" \
			P2P_ENDPOINT="$H_SUBNET.2:51830" P2P_TX_KEY_FILE="$H_RUN/txkey2" \
			DSTACK_P2P_CONTROL="$H_RUN/ctl-key2.sock" "$H_BIN/dstack-p2p" agent 2>&1) && rc=0 || rc=$?
		[ "$rc" = 2 ] || h_die "keyfile: a funded key file of mode $mode: exit $rc, not 2"
		grep -q "0600 or 0400" <<<"$out" || h_die "keyfile: mode $mode: the message does not say what is wrong: $(tail -1 <<<"$out")"
	done
	chmod 600 "$H_RUN/txkey2"
	chown 65534 "$H_RUN/txkey2"
	out=$(timeout 20 ip netns exec "$(h_ns 2)" env DSTACK_SIMULATOR_ENDPOINT="$H_RUN/sim2.sock" \
		CLUSTER_CONTRACT="$H_CONTRACT" ETH_RPC_URL="$H_RPC" P2P_INTERFACE="$(h_if 2)" \
		P2P_ENDPOINT="$H_SUBNET.2:51830" P2P_TX_KEY_FILE="$H_RUN/txkey2" \
		DSTACK_P2P_CONTROL="$H_RUN/ctl-key2.sock" "$H_BIN/dstack-p2p" agent 2>&1) && rc=0 || rc=$?
	chown 0 "$H_RUN/txkey2"
	[ "$rc" = 2 ] && grep -q "not owned by the user" <<<"$out" ||
		h_die "keyfile: a key file owned by another user: exit $rc: $(tail -1 <<<"$out")"
	ztl_figure "keyfile: $(tail -1 <<<"$out" | cut -c1-160)"
	h_agent_start 2
	h_agent_wait_registered 2 30
	ztl_pass "keyfile: a funded key file readable by others, or not ours, stops the agent with a clear error"
}

# ---- ws: a hostile WebSocket endpoint cannot slow the agent ----------------------------
ztl_ws_mode() { echo "$1" >"$H_RUN/ws.mode"; }
ztl_ws_count() { wc -l <"$H_RUN/ws.log"; }
ztl_ws() {
	local c0 n p50 p99 max t0
	ztl_ws_mode close
	: >"$H_RUN/ws.log"
	ip netns exec "${H_PREFIX}hub" /usr/bin/python3 "$H_ROOT/netns-harness/ws-hostile.py" \
		--listen "$H_HUB_IP:8700" --control "$H_RUN/ws.mode" --log "$H_RUN/ws.log" >"$H_RUN/ws.err" 2>&1 &
	H_OTHER_PIDS+=($!)
	for t in $(seq 1 50); do
		ip netns exec "${H_PREFIX}hub" ss -Hltn "sport = :8700" | grep -q LISTEN && break
		sleep 0.1
	done
	# close: each subscription is confirmed, then the socket closes. The back-off grows.
	c0=$(ztl_ws_count)
	ztl_restart 1 "" --rpc-ws "ws://$H_HUB_IP:8700" --push-poll-ms 10000
	sleep 20
	n=$(( $(ztl_ws_count) - c0 ))
	ztl_figure "ws: confirm-then-close endpoint: $n dials in 20 s"
	[ "$n" -le 6 ] || h_die "ws: $n dials in 20 s to an endpoint that closes each subscription (the back-off was reset)"
	# stall: the endpoint accepts and never answers the Upgrade; status stays fast.
	ztl_ws_mode stall
	ztl_restart 1 "" --rpc-ws "ws://$H_HUB_IP:8700" --push-poll-ms 10000
	h_agent_wait_registered 1 30  # (its first turns read the registry in full)
	read -r p50 p99 max <<<"$(/usr/bin/python3 "$CLIENT" latency "$H_RUN/ctl1.sock" 150 0.08)"
	ztl_figure "ws: stalling endpoint ($(( $(ztl_ws_count) - c0 - n )) dials): status p50 $p50 ms, p99 $p99 ms, max $max ms"
	python3 -c "import sys; sys.exit(0 if $p99 < 100 else 1)" || h_die "ws: status p99 $p99 ms while dialling a stalling endpoint (bound 100 ms)"
	ztl_restart 1 ""
	h_agent_wait_registered 1 30
	# flood: invented heads, 200 a second, that the HTTP RPC never shows: node 2 stops
	# trusting the socket (and polls), so the burn that follows is seen within a poll.
	ztl_ws_mode flood
	t0=$(date +%s%N)
	ztl_restart 2 "" --rpc-ws "ws://$H_HUB_IP:8700" --push-poll-ms 10000
	for t in $(seq 1 150); do
		grep -q "heads that the HTTP RPC never shows" "$H_RUN/agent2.log" && break
		sleep 0.1
	done
	grep -q "heads that the HTTP RPC never shows" "$H_RUN/agent2.log" ||
		h_die "ws: node 2 still trusts a socket that floods it with heads no block shows"
	ztl_figure "ws: flood of invented heads distrusted after $(ztl_ms "$t0") ms"
	ZTL_FLOODED=2
	ztl_pass "ws: the back-off holds ($n dials in 20 s), a stalling dial does not slow status (p99 $p99 ms), invented heads are distrusted"
}

# ---- rss: oversized RPC replies do not stay in the agent's memory -------------------------
ztl_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
ztl_rss() {
	local pid base peak after n0
	pid=${H_PID_AGENT[1]}
	sleep 2
	base=$(ztl_rss_kb "$pid")
	n0=$(grep -c "oversize" "$H_RUN/proxy-a.log" || true)
	h_proxy_set a '{"oversize": 8000000}'
	for t in $(seq 1 150); do
		[ "$(( $(grep -c "oversize" "$H_RUN/proxy-a.log" || true) - n0 ))" -ge 6 ] && break
		sleep 0.1
	done
	peak=$(ztl_rss_kb "$pid")
	[ "$(( $(grep -c "oversize" "$H_RUN/proxy-a.log" || true) - n0 ))" -ge 6 ] ||
		h_die "rss: the agent read fewer than 6 oversized replies"
	h_proxy_set a '{}'
	sleep 3
	after=$(ztl_rss_kb "$pid")
	ztl_figure "rss: node 1's agent VmRSS $base kB at rest, $peak kB during 8 MB replies, $after kB 3 s after"
	[ "$after" -le $(( base + 2048 )) ] || h_die "rss: VmRSS $after kB after the oversized replies, baseline $base kB (bound +2048 kB)"
	ztl_pass "rss: after oversized replies the agent's RSS is back within 2 MB of its baseline"
}

# ---- burn: a burned node leaves cleanly -----------------------------------------------
ztl_burn() {
	local n0 t0 ms ms2 dev
	dev=$(h_if 1)
	h_wait_mesh 30 1 2 || h_die "burn: mesh not whole before the burn"
	[ -n "$(h_in 1 wg show "$dev" peers)" ] || h_die "burn: node 1 has no peer to drop"
	n0=$(ztl_nonce 1)
	h_cast send --private-key "$H_OPERATOR_KEY" "$H_CONTRACT" "burn(uint256)" "${H_TOKEN[1]}" >/dev/null ||
		h_die "burn: the operator could not burn token ${H_TOKEN[1]}"
	t0=$(date +%s%N)  # the burn is mined (cast send waited for its receipt)
	ms2=
	while [ "$(ztl_ms "$t0")" -lt 10000 ]; do
		[ -n "$ms2" ] || [ -n "$(h_in 2 wg show "$(h_if 2)" peers)" ] || ms2=$(ztl_ms "$t0")
		[ -z "$(h_in 1 wg show "$dev" dump | tail -n +2)" ] && break
		sleep 0.05
	done
	ms=$(ztl_ms "$t0")
	[ -z "$(h_in 1 wg show "$dev" dump | tail -n +2)" ] || h_die "burn: node 1's device still has peers 10 s after the burn"
	ztl_figure "burn: node 1's device empty $ms ms after the burn was mined (poll ${H_POLL_MS} ms)"
	[ "$ms" -le 2000 ] || h_die "burn: node 1's device emptied after $ms ms (bound 2000 ms)"
	# The list apps read: the peers file (one line per peer) empty, the document says why.
	[ ! -s "$H_RUN/peers1" ] || h_die "burn: the peers file still lists: $(cat "$H_RUN/peers1")"
	ztl_ask 1 peers | grep -q '"registered":false,.*"reason":"revoked".*"peers":\[\]' ||
		h_die "burn: the peers document does not say revoked with no peers: $(ztl_ask 1 peers)"
	h_in 1 ip link show "$dev" >/dev/null || h_die "burn: node 1's interface is gone"
	# Node 2 drops node 1 too (within a poll, even while a hostile WebSocket floods it with
	# heads: scenario ws); node 1 sends nothing (no registration, no action).
	h_wait_mesh 10 2 || h_die "burn: node 2 still lists node 1"
	ms2=${ms2:-$(ztl_ms "$t0")}
	ztl_figure "burn: node 2 dropped node 1 within $ms2 ms${ZTL_FLOODED:+ (node 2 under a flood of invented heads)}"
	[ -z "${ZTL_FLOODED:-}" ] || [ "$ms2" -le 3000 ] ||
		h_die "burn: node 2 under a head flood saw the burn after $ms2 ms (bound: a poll, checked at 3000 ms)"
	ztl_ask 1 leader.elect | grep -q '"code":"not_registered"' || h_die "burn: a burned node still takes actions"
	sleep 3
	[ "$(ztl_nonce 1)" = "$n0" ] || h_die "burn: the burned node sent $(( $(ztl_nonce 1) - n0 )) transaction(s)"
	[ -z "$(h_in 1 wg show "$dev" dump | tail -n +2)" ] || h_die "burn: peers came back on node 1's device"
	ztl_pass "burn: device empty in $ms ms, peers file says revoked, interface kept, 0 transactions"
}

# In this shell (agents restarted by one scenario are the next one's): the first failure ends the run.
ztl_run() {
	local n t0
	for n in "$@"; do
		t0=$(date +%s%N)
		h_log "=== scenario $n"
		"ztl_$n"
		ztl_figure "scenario $n: pass in $(ztl_ms "$t0") ms"
	done
}

h_init ztl
ztl_setup
ztl_run ${ZTL_SCENARIOS:-fee local slow relay keyfile ws rss burn}
h_log "all zero-trust (local) scenarios passed"
