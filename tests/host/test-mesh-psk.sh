#!/bin/bash
# SPDX-License-Identifier: MIT
# Pairwise pre-shared keys in the harness mesh (issue 26), checked with wg(8), ping and an
# independent Python derivation of docs/keys.md (the cluster secret read from each node's
# simulated guest agent with curl):
#   - every pair of a 3-node UDP mesh has the PSK docs/keys.md gives for the current epoch,
#     the same on both ends; `wg show` says "(hidden)", status says "psk" and no key;
#   - pings at 10/s from node 1 to 2 and 3 across three changes of a 30 s epoch (the
#     contract's pskEpoch) lose nothing, and a handshake completes after a change;
#   - a node of another cluster (own contract, same KMS), registered there by its agent:
#     its record, injected into node 1's getPeers() by node 1's RPC proxy at a full re-read
#     (SIGHUP), is dropped with the reason logged, listed as rejected in status, and in
#     neither the peers document nor `wg show dump`;
#   - the same node programmed by hand on node 1 (its agent paused) with the PSK node 1
#     would use never completes a handshake while the members do; given the PSK derived
#     from this cluster's secret by hand (`wg set ... preshared-key`), it does;
#   - P2P_PSK=off on one node: it advertises nothing, its pairs run without a PSK and reach it;
#   - two nodes through the gateway stand-in (UDP dropped) use their PSK too.
set -euo pipefail
. "$(dirname "$0")/../../netns-harness/lib.sh"
. "$(dirname "$0")/../../netns-harness/gateway.sh"
pass() { h_log "PASS: $*"; }
H_CLEANUP_HOOK=h_gw_cleanup
EPOCH_S=30

h_init psk
h_deploy
h_cast send --private-key "$H_OPERATOR_KEY" "$H_CONTRACT" "setPskEpoch(uint64)" "$EPOCH_S" >/dev/null
[ "$(h_cast call "$H_CONTRACT" 'pskEpoch()(uint64)')" = "$EPOCH_S" ] || h_die "pskEpoch not set"

# cluster_secret i: GetKey of the fixed path from node i's simulated guest agent.
cluster_secret() {
	curl -sf --unix-socket "$H_RUN/sim$1.sock" -H 'Content-Type: application/json' \
		-d '{"path":"dstack-p2p/cluster-psk/v1","purpose":"dstack-p2p:cluster-psk"}' \
		http://localhost/GetKey | jq -r .key
}
# psk_of SECRET_HEX PUB_A PUB_B EPOCH: docs/keys.md's formula, base64 as wg prints it.
psk_of() {
	python3 - "$@" <<'PY'
import base64, hashlib, hmac, sys
s, a, b, e = bytes.fromhex(sys.argv[1]), base64.b64decode(sys.argv[2]), base64.b64decode(sys.argv[3]), int(sys.argv[4])
lo, hi = sorted([a, b])
prk = hmac.new(b"dstack-p2p wireguard psk v1", s, hashlib.sha256).digest()
print(base64.b64encode(hmac.new(prk, lo + hi + e.to_bytes(8, "big") + b"\x01", hashlib.sha256).digest()).decode())
PY
}
epoch_now() { echo $(( $(date +%s) / EPOCH_S )); }
psk_on() { # i pub: the PSK node i's device has for the peer with public key pub
	h_in "$1" wg show "$(h_if "$1")" preshared-keys | awk -v k="$2" '$1 == k { print $2 }'
}
hs_on() { h_in "$1" wg show "$(h_if "$1")" latest-handshakes | awk -v k="$2" '$1 == k { print $2 }'; }
# pair_has_psk i j: both ends hold the documented PSK of this epoch (read again across a boundary).
pair_has_psk() {
	local i=$1 j=$2 t e want
	for t in 1 2 3; do
		e=$(epoch_now)
		want=$(psk_of "$SECRET" "${H_PUB[$i]}" "${H_PUB[$j]}" "$e")
		[ "$(psk_on "$i" "${H_PUB[$j]}")" = "$want" ] && [ "$(psk_on "$j" "${H_PUB[$i]}")" = "$want" ] &&
			[ "$(epoch_now)" = "$e" ] && return 0
		sleep 1.5  # a boundary in between: each agent switches within a poll
	done
	# Say what each end holds, never the key: none, or another key than docs/keys.md's.
	for t in "$i $j" "$j $i"; do
		set -- $t
		h_log "node $1 for node $2: $(psk_on "$1" "${H_PUB[$2]}" | sed "s|^$want\$|the documented key|; s|^[^(t].*|another key|")"
	done
	return 1
}

# Node 1 reads the chain through a proxy that can inject records (rpc-proxy.py).
h_proxy_start n1 8601
H_RPC_NODE[1]=${H_PROXY_URL[n1]}
for i in 1 2 3; do h_node_up "$i"; done
h_wait_mesh 60 1 2 3 || h_die "3-node mesh did not converge"
[ "$(h_ping_all 1 2 3)" = 6 ] || h_die "not every pair pings"
# features_of i: the feature bits of node i's registered nonce (docs/registry.md), read with cast.
features_of() {
	local nonce
	nonce=$(h_cast call "$H_CONTRACT" 'nonceOf(address)(uint64)' "0x${H_INSTANCE[$1]}" | cut -d' ' -f1)
	echo $(( (nonce >> 32) & 255 ))
}
for i in 1 2 3; do [ "$(features_of "$i")" = 1 ] || h_die "node $i's record does not advertise PSKs"; done
SECRET=$(cluster_secret 1)
[ "$SECRET" = "$(cluster_secret 3)" ] || h_die "two members of one app got different cluster secrets"
for p in "1 2" "1 3" "2 3"; do pair_has_psk $p || h_die "pair $p: not the documented PSK"; done
for i in 1 2 3; do
	[ "$(h_in "$i" wg show "$(h_if "$i")" | grep -c 'preshared key: (hidden)')" = 2 ] ||
		h_die "node $i: wg show does not hide 2 PSKs"
done
st=$(DSTACK_P2P_CONTROL="$H_RUN/ctl1.sock" "$H_BIN/dstack-p2p" status --json)
[ "$(echo "$st" | jq '[.peers[] | select(.psk == true)] | length')" = 2 ] || h_die "status: $st"
echo "$st" | grep -qF "$(psk_of "$SECRET" "${H_PUB[1]}" "${H_PUB[2]}" "$(epoch_now)")" && h_die "status shows a PSK"
grep -rqF "$SECRET" "$H_RUN"/agent*.log && h_die "an agent logged the cluster secret"
pass "3 nodes: each pair has docs/keys.md's PSK of epoch $(epoch_now) on both ends, hidden by wg show and status"

# --- rotation: 10 pings a second from node 1 to 2 and 3 across three epoch changes, and
# beyond the first sessions' rekey (120 s after they were made), so handshakes happen
# under the new PSKs. 0 % loss: established sessions never drop (docs/keys.md).
hs0=$(hs_on 1 "${H_PUB[2]}")
n=$(( 125 * 10 ))
h_in 1 ping -i 0.1 -c "$n" -W 1 -q "$(h_addr 2)" >"$H_RUN/rot2" 2>&1 &
p2=$!
h_in 1 ping -i 0.1 -c "$n" -W 1 -q "$(h_addr 3)" >"$H_RUN/rot3" 2>&1 &
p3=$!
e0=$(epoch_now)
wait "$p2" || true
wait "$p3" || true
changes=$(( $(epoch_now) - e0 ))
[ "$changes" -ge 3 ] || h_die "only $changes epoch changes during the pings"
for f in rot2 rot3; do
	loss=$(grep -o '[0-9.]*% packet loss' "$H_RUN/$f" | cut -d% -f1)
	h_log "FIGURE rotation $f: $(grep 'packets transmitted' "$H_RUN/$f")"
	[ "$loss" = 0 ] || h_die "$f: $loss % loss across $changes epoch changes"
done
[ "$(hs_on 1 "${H_PUB[2]}")" -gt "$hs0" ] || h_die "no handshake completed after an epoch change"
pair_has_psk 1 2 || h_die "after the rotation: pair 1 2 has not the documented PSK"
pass "rotation: $changes epoch changes, 0 % loss at 10/s to two peers, a handshake under a later epoch's PSK"

# --- a node of another cluster (its own contract, the same KMS), programmed by hand on node 1.
art=$H_ROOT/contracts/out/DstackClusterNFT.sol/DstackClusterNFT.json
kms_addr=$("$H_CAST" wallet address --private-key "$H_KMS_KEY")
other=$(KMS_ROOT_ADDRESS=$kms_addr PRIVATE_KEY=$H_OPERATOR_KEY RPC_URL=$H_RUN/anvil.ipc QUIET=1 \
	"$H_ROOT/contracts/deploy.sh" 2>>"$H_RUN/deploy.log" | tail -1 | tr 'A-F' 'a-f')
[[ "$other" =~ ^0x[0-9a-f]{40}$ ]] || h_die "second contract: '$other'"
mine=$H_CONTRACT
H_CONTRACT=$other h_node_add 9  # its simulator's app id is the other contract
H_CONTRACT=$mine
SECRET9=$(cluster_secret 9)
[ "$SECRET9" != "$SECRET" ] || h_die "another app got this cluster's secret"
# Node 9 registers in its own contract with its own agent; node 1's RPC then injects that
# record (as `cast call` reads it) into getPeers() while node 1's agent re-reads (SIGHUP).
H_CONTRACT=$other h_mint_bind 9
H_CONTRACT=$other h_agent_start 9
H_CONTRACT=$other h_agent_wait_registered 9 30
rec9pub=$(h_wg_pubkey 9)
rec9=$(h_cast call "$other" "getPeerByToken(uint256)" "${H_TOKEN[9]}" | sed 's/^0x.\{64\}//')
[[ "$rec9" =~ ^[0-9a-f]{1000,}$ ]] || h_die "node 9's record from its contract: '$rec9'"
h_kill "${H_PID_AGENT[9]}"
h_in 9 ip addr flush dev "$(h_if 9)"
log0=$(wc -l <"$H_RUN/agent1.log")
h_proxy_set n1 "{\"on\": \"getPeers\", \"inject\": [\"$rec9\"]}"
kill -HUP "${H_PID_AGENT[1]}"
why=
for t in $(seq 1 100); do
	why=$(tail -n +"$((log0 + 1))" "$H_RUN/agent1.log" | grep -m1 "dropping the record of token ${H_TOKEN[9]}: " || true)
	[ -n "$why" ] && grep -q "getPeers injected 0x${H_INSTANCE[9]}" "$H_RUN/proxy-n1.log" && break
	sleep 0.1
done
grep -q "getPeers injected 0x${H_INSTANCE[9]}" "$H_RUN/proxy-n1.log" || h_die "the proxy never injected node 9's record"
[ -n "$why" ] || h_die "node 1's agent did not log why it dropped node 9's record ($H_RUN/agent1.log)"
why=${why#*"dropping the record of token ${H_TOKEN[9]}: "}
st=$(DSTACK_P2P_CONTROL="$H_RUN/ctl1.sock" "$H_BIN/dstack-p2p" status --json 2>/dev/null) || true
echo "$st" | jq -e --argjson t "${H_TOKEN[9]}" '[.rejected[] | select(.token == $t)] | length == 1' >/dev/null ||
	h_die "node 1's status does not list node 9's record as rejected: $st"
echo "$st" | grep -qF "$rec9pub" && h_die "node 1's status lists node 9's key"
[ -s "$H_RUN/peers1" ] || h_die "node 1 wrote no peers document"
grep -qF "$rec9pub" "$H_RUN/peers1" && h_die "node 1's peers document lists node 9"
h_in 1 wg show "$(h_if 1)" dump | grep -qF "$rec9pub" && h_die "node 1's agent programmed node 9's key"
h_proxy_set n1 '{}'
kill -HUP "${H_PID_AGENT[1]}"
pass "another cluster's record injected into node 1's getPeers(): dropped ($why), not in status, peers or wg"
(umask 077 && wg genkey >"$H_RUN/key9")
pub9=$(wg pubkey <"$H_RUN/key9")
h_in 9 wg set "$(h_if 9)" private-key "$H_RUN/key9" listen-port 51830
h_in 9 ip addr add 10.0.1.99/24 dev "$(h_if 9)"
h_in 9 ip link set "$(h_if 9)" up
kill -STOP "${H_PID_AGENT[1]}"  # node 1's agent would remove a peer it did not verify
e=$(epoch_now)
(umask 077 && psk_of "$SECRET" "${H_PUB[1]}" "$pub9" "$e" >"$H_RUN/psk1-9")   # what node 1 would use
(umask 077 && psk_of "$SECRET9" "${H_PUB[1]}" "$pub9" "$e" >"$H_RUN/psk9-own") # what node 9 can derive
h_in 1 wg set "$(h_if 1)" peer "$pub9" allowed-ips 10.0.1.99/32 endpoint "$H_SUBNET.9:51830" \
	preshared-key "$H_RUN/psk1-9"
h_in 9 wg set "$(h_if 9)" peer "${H_PUB[1]}" allowed-ips "$(h_addr 1)/32" endpoint "$H_SUBNET.1:51830" \
	preshared-key "$H_RUN/psk9-own"
h_in 9 ping -c 12 -i 0.5 -W 1 -q "$(h_addr 1)" >/dev/null 2>&1 && h_die "node 9 (another cluster) got an answer"
[ "$(hs_on 9 "${H_PUB[1]}")" = 0 ] && [ "$(hs_on 1 "$pub9")" = 0 ] ||
	h_die "node 9 (another cluster) completed a handshake"
h_ping 2 3 || h_die "members stopped answering each other"
# The same node with the PSK derived from this cluster's secret, set by hand: it handshakes.
h_in 9 wg set "$(h_if 9)" peer "${H_PUB[1]}" preshared-key "$H_RUN/psk1-9"
h_in 9 ping -c 6 -i 0.5 -W 2 -q "$(h_addr 1)" >/dev/null 2>&1 || h_die "the hand-configured derived PSK does not handshake"
[ "$(hs_on 9 "${H_PUB[1]}")" != 0 ] || h_die "no handshake with the derived PSK"
h_in 1 wg set "$(h_if 1)" peer "$pub9" remove
kill -CONT "${H_PID_AGENT[1]}"
pass "another cluster's node (same KMS): no handshake in 6 s with its own PSK; with this cluster's derived PSK set by hand, it handshakes"

# --- P2P_PSK=off on node 3: it advertises no PSK, its pairs run without one and still ping.
h_kill "${H_PID_AGENT[3]}"
P2P_PSK=off h_agent_start 3
for t in $(seq 1 100); do
	[ -z "$(psk_on 1 "${H_PUB[3]}")" ] || [ "$(psk_on 1 "${H_PUB[3]}")" = "(none)" ] && break
	sleep 0.3
done
[ "$(psk_on 1 "${H_PUB[3]}")" = "(none)" ] || h_die "node 1 keeps a PSK for node 3 (P2P_PSK=off)"
[ "$(features_of 3)" = 0 ] || h_die "node 3 (P2P_PSK=off) still advertises PSKs"
[ "$(psk_on 3 "${H_PUB[1]}")" = "(none)" ] || h_die "node 3 (P2P_PSK=off) programs a PSK"
pair_has_psk 1 2 || h_die "pair 1 2 lost its PSK"
for t in 1 2 3 4 5 6 7 8 9 10; do h_ping 1 3 && h_ping 3 2 && break; sleep 1; done
h_ping 1 3 && h_ping 3 2 || h_die "P2P_PSK=off node 3 unreachable"
pass "P2P_PSK=off: node 3 runs without PSKs and reaches both members; 1-2 keep theirs"

# --- the gateway path: two more nodes with UDP between them dropped.
h_gw_up
for i in 4 5; do h_node_add "$i"; h_gw_node "$i"; done
h_gw_block_udp 4 5
for i in 4 5; do h_mint_bind "$i"; h_agent_start "$i" $(h_gw_agent_flags gateway); done
for t in $(seq 1 100); do h_ping 4 5 && break; sleep 0.3; done
h_ping 4 5 || h_die "4 -> 5 over the gateway"
h_cache_keys 4 5  # now: right after the start a device may not have its key yet
pair_has_psk 4 5 || h_die "pair 4 5 (gateway): not the documented PSK"
pass "gateway path: nodes 4 and 5 ping through the gateway with docs/keys.md's PSK"
h_log "PASS test-mesh-psk"
