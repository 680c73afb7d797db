#!/bin/bash
# SPDX-License-Identifier: MIT
# The mesh end to end on the host (userspace WireGuard), in one harness run:
#   3 nodes form a full mesh; an app reaches every peer through the C API;
#   a 4th node joins; an agent is SIGKILLed and restarted without a gap in the pings
#   (and without registering again); a node's endpoint changes and its peers follow;
#   a record the nodes cannot use is dropped with the reason logged; the RPC goes away
#   and nothing changes; a token burned meanwhile disappears from every node once it is
#   back; SIGTERM leaves the mesh up and `status` works without the agent; no private key
#   is written anywhere; --remove-on-exit removes the interface.
# Expectations come from wg, ping and cast, never from the agent.
set -euo pipefail
. "$(dirname "$0")/../../netns-harness/lib.sh"
pass() { h_log "PASS: $*"; }

h_init dpt
h_deploy
for i in 1 2 3; do h_node_up "$i"; done
for i in 1 2 3; do h_agent_wait_registered "$i" 30; done
h_wait_mesh 30 1 2 3 || h_die "3-node mesh did not converge"
[ "$(h_ping_all 1 2 3)" = 6 ] || h_die "3-node mesh: not every pair answers"
pass "3 nodes: wg show lists exactly the live peers, 6/6 pairs ping"

# --- an app on node 1: the example built against the installed library (DESTDIR + pkg-config)
make -s -C "$H_ROOT" install DESTDIR="$H_RUN/inst" PREFIX=/usr >"$H_RUN/install.log" 2>&1 ||
	{ cat "$H_RUN/install.log"; h_die "make install DESTDIR=... failed"; }
export PKG_CONFIG_SYSROOT_DIR=$H_RUN/inst PKG_CONFIG_LIBDIR=$H_RUN/inst/usr/lib/pkgconfig
cc -Wall -Wextra -Werror "$H_ROOT/examples/reach-peers.c" $(pkg-config --cflags --libs dstack-p2p) \
	-o "$H_RUN/reach-peers" || h_die "the example does not build against the installed library"
for i in 1 2 3; do
	ip netns exec "$(h_ns "$i")" socat TCP-LISTEN:7777,reuseaddr,fork SYSTEM:"echo hello from node $i" >/dev/null 2>&1 &
	H_OTHER_PIDS+=($!)
done
# The listeners start in the background: on a loaded machine the app could dial before
# they listen (it then exited non-zero and set -e ended the test without a word).
for i in 1 2 3; do
	for t in $(seq 1 100); do h_in "$i" ss -Htln 'sport = :7777' | grep -q . && break; sleep 0.05; done
done
app() { h_in 1 env LD_LIBRARY_PATH="$H_RUN/inst/usr/lib" DSTACK_P2P_CONTROL="$H_RUN/ctl1.sock" "$H_RUN/reach-peers" "$@"; }
out=$(app "$H_CONTRACT" 7777 2>&1) || h_log "the example exited $?"
echo "$out"
for j in 2 3; do echo "$out" | grep -qx "reached 10.0.1.${H_TOKEN[$j]}: hello from node $j" || h_die "app did not reach node $j"; done
ip netns exec "$(h_ns 1)" env LD_LIBRARY_PATH="$H_RUN/inst/usr/lib" DSTACK_P2P_CONTROL="$H_RUN/ctl1.sock" \
	"$H_RUN/reach-peers" "$H_CONTRACT" 7777 --watch 25 >"$H_RUN/watch.log" 2>&1 &
H_OTHER_PIDS+=($!)
pass "the C API example reaches every peer"

# --- a 4th node joins
t0=$(date +%s%N)
h_node_up 4
ip netns exec "$(h_ns 4)" socat TCP-LISTEN:7777,reuseaddr,fork SYSTEM:"echo hello from node 4" >/dev/null 2>&1 &
H_OTHER_PIDS+=($!)
h_wait_mesh 30 1 2 3 4 || h_die "the 4th node did not converge"
h_log "4 nodes converged $(( ($(date +%s%N) - t0) / 1000000 )) ms after the 4th node's mint"
[ "$(h_ping_all 1 2 3 4)" = 12 ] || h_die "4-node mesh: not every pair answers"
for t in $(seq 1 50); do grep -q "10.0.1.${H_TOKEN[4]}" "$H_RUN/watch.log" && break; sleep 0.1; done
grep -q "peers changed (3):.*10.0.1.${H_TOKEN[4]}" "$H_RUN/watch.log" || h_die "monitor_peers did not report the join"
# The two other ways apps hear of peers: the peers file and the --on-change command.
for i in 1 2 3 4; do
	want=$(for j in 1 2 3 4; do [ "$i" = "$j" ] || echo "10.0.1.${H_TOKEN[$j]}"; done)
	for t in $(seq 1 50); do [ "$(cat "$H_RUN/on-change$i" 2>/dev/null)" = "$want" ] && break; sleep 0.1; done
	[ "$(cat "$H_RUN/peers$i")" = "$want" ] || h_die "node $i: peers file is not the 3 other nodes"
	[ "$(cat "$H_RUN/on-change$i")" = "$want" ] || h_die "node $i: on-change did not get the 3 other nodes"
done
pass "a 4th node joins: all converge, 12/12 pairs ping, C API monitor, peers file and on-change saw it"

# --- SIGKILL an agent and restart it: tunnels must not notice
gap_log() { # i j: pings from node i to node j, 5/s for 8 s, with timestamps
	h_in "$1" ping -D -i 0.2 -w 8 -W 1 "10.0.1.${H_TOKEN[$2]}" >"$H_RUN/gap-$1-$2.log" 2>&1 || true
}
gap_log 1 2 & p1=$!
gap_log 2 1 & p2=$!
gap_log 3 2 & p3=$!
sleep 1
nonce_before=$(h_cast call "$H_CONTRACT" "nonceOf(address)(uint64)" "0x${H_INSTANCE[2]}")
kill -9 "${H_PID_AGENT[2]}"
{ wait "${H_PID_AGENT[2]}"; } 2>/dev/null || true
sleep 1
echo "--- restart" >>"$H_RUN/agent2.log"
h_agent_start 2
h_agent_wait_registered 2 20
wait $p1 $p2 $p3
for pair in 1-2 2-1 3-2; do
	gap=$(awk -F'[][]' '/bytes from/ { t = $2; if (last) { g = t - last; if (g > max) max = g }; last = t }
		END { printf "%.2f", max + 0 }' "$H_RUN/gap-$pair.log")
	n=$(grep -c 'bytes from' "$H_RUN/gap-$pair.log" || true)
	h_log "pings $pair across the restart: $n replies, longest gap ${gap} s"
	[ "$n" -ge 30 ] || h_die "pings $pair: only $n replies"
	awk -v g="$gap" -v k="$H_KEEPALIVE" 'BEGIN { exit !(g < k) }' || h_die "pings $pair stopped for $gap s"
done
changes=$(sed -n '/^--- restart/,$p' "$H_RUN/agent2.log" | grep -cE 'peer .*: (added|removed|updated)' || true)
[ "$changes" = 0 ] || h_die "the restarted agent changed $changes peers"
[ "$(h_cast call "$H_CONTRACT" "nonceOf(address)(uint64)" "0x${H_INSTANCE[2]}")" = "$nonce_before" ] ||
	h_die "the restarted agent registered again although its record matched"
h_mesh_matches 1 2 3 4 || h_die "mesh differs after the restart"
pass "SIGKILL + restart: no ping gap over one keepalive (${H_KEEPALIVE} s), no peer re-programmed, no new registration"

# --- node 3 moves to another address and port; its peers follow the registry
# (promote_secondaries: dropping the old primary address must keep the new one)
h_in 3 sysctl -qw net.ipv4.conf.eth0.promote_secondaries=1
ip -n "$(h_ns 3)" addr add "$H_SUBNET.103/24" dev eth0
kill "${H_PID_AGENT[3]}"
wait "${H_PID_AGENT[3]}" 2>/dev/null || true
h_agent_start 3 --endpoint "$H_SUBNET.103:51831" --listen-port 51831
ip -n "$(h_ns 3)" addr del "$H_SUBNET.3/24" dev eth0
key3=$(h_wg_pubkey 3)
for t in $(seq 1 100); do
	onchain=$(h_cast call "$H_CONTRACT" "getPeer(address)((uint256,address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes))" "0x${H_INSTANCE[3]}")
	echo "$onchain" | grep -q "\"$H_SUBNET.103:51831\"" && break
	sleep 0.1
done
echo "$onchain" | grep -q "\"$H_SUBNET.103:51831\"" || h_die "node 3's new endpoint never reached the registry"
for i in 1 2 4; do
	for t in $(seq 1 100); do
		h_in "$i" wg show "$(h_if "$i")" endpoints | grep -qx "$key3	$H_SUBNET.103:51831" && break
		sleep 0.1
	done
	h_in "$i" wg show "$(h_if "$i")" endpoints | grep -qx "$key3	$H_SUBNET.103:51831" ||
		h_die "node $i did not follow node 3's endpoint"
done
[ "$(h_ping_all 1 2 3 4)" = 12 ] || h_die "after the endpoint change: not every pair answers"
pass "endpoint change: every peer has node 3 at $H_SUBNET.103:51831, 12/12 pairs ping"

# --- a record the wireguard nodes cannot use (a tls-mode node) is dropped, saying why
h_node_add 5
h_mint_bind 5
h_agent_start 5 --mode tls --gateway-domain gw.test
h_agent_wait_registered 5 30
for i in 1 2 3 4; do
	for t in $(seq 1 50); do grep -q "dropping the record of token ${H_TOKEN[5]}: registered in tls mode" "$H_RUN/agent$i.log" && break; sleep 0.1; done
	grep -q "dropping the record of token ${H_TOKEN[5]}: registered in tls mode" "$H_RUN/agent$i.log" ||
		h_die "node $i did not log why it dropped the tls record"
	# A rejected record makes the node "up but not healthy": status exits 3 (its contract).
	rc=0
	st=$(DSTACK_P2P_CONTROL="$H_RUN/ctl$i.sock" "$H_BIN/dstack-p2p" status --json 2>/dev/null) || rc=$?
	[ "$rc" = 3 ] || h_die "node $i's status exits $rc with a record rejected, not 3"
	echo "$st" | grep -q "\"rejected\":\[{\"token\":${H_TOKEN[5]}," || h_die "node $i's status does not show the rejection"
	echo "$st" | grep -q '"healthy":false,"problems":\["1 record rejected"\]' ||
		h_die "node $i's status does not name the rejection as its health problem"
done
h_mesh_matches 1 2 3 4 || h_die "a tls record changed the WireGuard peers"
h_cast send --private-key "$H_OPERATOR_KEY" "$H_CONTRACT" "burn(uint256)" "${H_TOKEN[5]}" >/dev/null
pass "a tls-mode record is dropped by every wireguard node, with the reason logged and in status"

# --- the RPC goes away: the mesh stays as it is
# log_within SECONDS NODE PATTERN: the agent's log shows PATTERN within the bound (how soon
# depends on the RPC timeout of a request already on a kept connection, and on load).
log_within() {
	local t
	for t in $(seq 1 $(($1 * 10))); do grep -q "$3" "$H_RUN/agent$2.log" && return 0; sleep 0.1; done
	grep -q "$3" "$H_RUN/agent$2.log"
}
ip -n "${H_PREFIX}hub" addr del "$H_HUB_IP/24" dev br0
for i in 1 2 3 4; do
	log_within 30 "$i" 'registry unreachable, keeping the current peers' ||
		h_die "node $i did not notice the RPC outage"
done
h_mesh_matches 1 2 3 4 || h_die "an RPC outage changed the mesh"
[ "$(h_ping_all 1 2 3 4)" = 12 ] || h_die "an RPC outage broke pings"
pass "RPC outage: every agent noticed, the mesh and 12/12 pings stay"

# --- the operator burns node 4's token (during the outage: the operator reaches anvil on IPC)
h_cast send --private-key "$H_OPERATOR_KEY" "$H_CONTRACT" "burn(uint256)" "${H_TOKEN[4]}" >/dev/null
sleep 1
h_mesh_matches 1 2 3 4 || h_die "the mesh changed while the registry was unreachable"
t0=$(date +%s%N)
ip -n "${H_PREFIX}hub" addr add "$H_HUB_IP/24" dev br0
h_wait_mesh 30 1 2 3 || h_die "the burned peer was not removed everywhere"
h_log "burn applied on every node $(( ($(date +%s%N) - t0) / 1000000 )) ms after the RPC came back"
for i in 1 2 3; do
	log_within 10 "$i" 'registry reachable again' || h_die "node $i did not log its recovery"
done
for i in 1 2 3; do h_ping "$i" 4 && h_die "node $i still reaches the burned node"; done
[ "$(h_ping_all 1 2 3)" = 6 ] || h_die "after the burn: the others lost each other"
pass "burn: node 4 is gone from every wg show, pings to it stop, 6/6 remaining pairs ping"

# --- SIGTERM leaves the interface and its peers up; status then works without the agent
kill "${H_PID_AGENT[1]}"
wait "${H_PID_AGENT[1]}" 2>/dev/null || true
h_mesh_matches 1 2 3 || h_die "SIGTERM took node 1's peers down"
h_ping 1 2 || h_die "node 1 cannot reach node 2 after its agent stopped"
rc=0
st=$(ip netns exec "$(h_ns 1)" env DSTACK_SIMULATOR_ENDPOINT="$H_RUN/sim1.sock" CLUSTER_CONTRACT="$H_CONTRACT" \
	ETH_RPC_URL="$H_RPC" P2P_INTERFACE="$(h_if 1)" DSTACK_P2P_CONTROL="$H_RUN/ctl1.sock" \
	"$H_BIN/dstack-p2p" status --json 2>/dev/null) || rc=$?
[ "$rc" = 3 ] || h_die "standalone status exits $rc, not 3 (no agent running)"
echo "$st" | grep -q '"healthy":false,"problems":\["no agent running"\]' ||
	h_die "standalone status does not say that no agent runs"
for j in 2 3; do
	echo "$st" | grep -q "\"token\":${H_TOKEN[$j]},\"instance_id\":\"0x${H_INSTANCE[$j]}\",\"address\":\"10.0.1.${H_TOKEN[$j]}\"" ||
		h_die "standalone status lacks node $j"
	echo "$st" | grep -q "\"public_key\":\"${H_PUB[$j]}\",\"configured\":true" ||
		h_die "standalone status: node $j not configured on the device"
done
echo "$st" | grep -q '"registered":true' || h_die "standalone status: node 1 not registered"
pass "SIGTERM leaves the mesh up; status without an agent reads the kernel and the chain"

# --- no private key in any log, peers file or status output; --remove-on-exit removes
for i in 1 2 3; do
	priv=$(h_in "$i" wg show "$(h_if "$i")" private-key)
	privhex=$(echo "$priv" | base64 -d | od -An -tx1 | tr -d ' \n')
	if grep -rqF -e "$priv" -e "$privhex" "$H_RUN" --exclude='*.sock'; then
		h_die "node $i's WireGuard private key is written somewhere under $H_RUN"
	fi
done
# (node 1's agent is the one stopped above: start it again, asked to clean up this time)
h_agent_start 1 --remove-on-exit
h_agent_wait_registered 1 20
kill "${H_PID_AGENT[1]}"
wait "${H_PID_AGENT[1]}" 2>/dev/null || true
for t in $(seq 1 50); do ip -n "$(h_ns 1)" link show "$(h_if 1)" >/dev/null 2>&1 || break; sleep 0.1; done
ip -n "$(h_ns 1)" link show "$(h_if 1)" >/dev/null 2>&1 && h_die "--remove-on-exit left the interface"
grep -q "removed $(h_if 1)" "$H_RUN/agent1.log" || h_die "the agent did not say it removed the interface"
pass "no private key in logs or files; --remove-on-exit deletes the interface"
h_log "all mesh scenarios passed"
