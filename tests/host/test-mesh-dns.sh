#!/bin/bash
# SPDX-License-Identifier: MIT
# Peer names over DNS in the agent (issue 27.2): P2P_DNS=on on nodes 1 and 2 (node 2 with
# its own zone), off on node 3 (the default). Asked over the overlay by dig(1) from another
# node: every node by label and by token, NXDOMAIN, REFUSED, TCP; by glibc's getent hosts
# through node 3's own resolv.conf; a client outside the overlay (the hub, routed to node
# 1's overlay address over the underlay) gets nothing; a flood from node 3 is served a
# budget per turn while node 1's agent still answers `status` and dig. The re-label after a
# burn and re-mint is tests/host/test-mesh-labels.sh (dig there too).
# Parallel-safe: its own namespace prefix, temp dir and cleanup (netns-harness/lib.sh).
set -euo pipefail
. "$(dirname "$0")/../../netns-harness/lib.sh"
pass() { h_log "PASS: $*"; }

h_init dns
H_CLEANUP_HOOK=dns_cleanup
dns_cleanup() { rm -rf "/etc/netns/$(h_ns 3)"; }
h_deploy
for i in 1 2 3; do h_node_add "$i"; h_mint_bind "$i"; done
P2P_DNS=on h_agent_start 1
P2P_DNS=on P2P_DNS_ZONE=Mesh.Test h_agent_start 2
h_agent_start 3
for i in 1 2 3; do h_agent_wait_registered "$i" 60; done
h_wait_mesh 60 1 2 3 || h_die "3-node mesh did not converge"
A1=$(h_addr 1) A2=$(h_addr 2) A3=$(h_addr 3)

q() { local i=$1; shift; h_in "$i" dig +time=2 +tries=1 "$@"; }
status() { local i=$1; shift; q "$i" "$@" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }

# Labels are read after the peers are known, by each node on its own turns: wait (bounded)
# until both DNS nodes name every node.
labels_known() {
	local j
	for j in 1 2 3; do
		[ "$(q 3 +short @"$A1" "node-$j.p2p.internal" 2>/dev/null)" = "$(h_addr "$j")" ] &&
			[ "$(q 1 +short @"$A2" "node-$j.mesh.test" 2>/dev/null)" = "$(h_addr "$j")" ] || return 1
	done
}
for _ in $(seq 1 50); do labels_known && break; sleep 0.2; done
for j in 1 2 3; do
	[ "$(q 3 +short @"$A1" "node-$j.p2p.internal")" = "$(h_addr "$j")" ] || h_die "node-$j at node 1: $(q 3 @"$A1" "node-$j.p2p.internal")"
	[ "$(q 3 +short @"$A1" "${H_TOKEN[$j]}.p2p.internal")" = "$(h_addr "$j")" ] || h_die "token ${H_TOKEN[$j]} at node 1"
	[ "$(q 1 +short @"$A2" "NODE-$j.mesh.test")" = "$(h_addr "$j")" ] || h_die "NODE-$j.mesh.test at node 2"
done
grep -qF "DNS: answering for p2p.internal on $A1:53 (UDP and TCP)" "$H_RUN/agent1.log" || h_die "node 1's log"
grep -qF "DNS: answering for mesh.test on $A2:53 (UDP and TCP)" "$H_RUN/agent2.log" || h_die "node 2's log"
q 3 @"$A1" node-2.p2p.internal >"$H_RUN/dig.txt"
grep -q 'flags: qr aa rd;' "$H_RUN/dig.txt" || h_die "flags: $(grep flags "$H_RUN/dig.txt")"
[ "$(status 3 @"$A1" nobody.p2p.internal)" = NXDOMAIN ] || h_die "nobody.p2p.internal"
[ "$(status 3 @"$A1" example.com)" = REFUSED ] || h_die "example.com"
[ "$(status 3 @"$A2" node-1.p2p.internal)" = REFUSED ] || h_die "node 2 answers another zone"
[ "$(q 3 +short +tcp @"$A1" node-2.p2p.internal)" = "$A2" ] || h_die "TCP"
pass "dig over the overlay: every node by label and token, own zone on node 2, NXDOMAIN, REFUSED, TCP"

# Off by default: node 3 has nothing on port 53.
! h_in 3 ss -Hluntp | grep -q ':53 ' || h_die "node 3 listens on port 53 without P2P_DNS"
[ -z "$(status 1 @"$A3" node-1.p2p.internal 2>/dev/null)" ] || h_die "node 3 answered DNS"
pass "P2P_DNS off (node 3): no socket on port 53"

# glibc through node 3's resolv.conf (ip netns exec bind-mounts /etc/netns/<ns>/resolv.conf).
mkdir -p "/etc/netns/$(h_ns 3)"
printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$A1" >"/etc/netns/$(h_ns 3)/resolv.conf"
out=$(h_in 3 getent hosts node-2.p2p.internal) || h_die "getent hosts node-2.p2p.internal on node 3"
[ "$(echo "$out" | awk '{print $1}')" = "$A2" ] || h_die "getent: $out"
! h_in 3 getent hosts nobody.p2p.internal >/dev/null || h_die "getent found nobody"
pass "getent hosts through resolv.conf: $out"

# A client outside the overlay: the hub, routed to node 1's overlay address over eth0.
ip -n "${H_PREFIX}hub" route add "$A1/32" via "$H_SUBNET.1"
! ip netns exec "${H_PREFIX}hub" dig +time=1 +tries=1 @"$A1" node-1.p2p.internal >"$H_RUN/stranger.txt" 2>&1 ||
	h_die "the hub got an answer: $(cat "$H_RUN/stranger.txt")"
! ip netns exec "${H_PREFIX}hub" dig +time=1 +tries=1 +tcp @"$A1" node-1.p2p.internal >"$H_RUN/stranger.txt" 2>&1 ||
	h_die "the hub got an answer over TCP"
pass "a client outside the overlay gets nothing (UDP, TCP)"

# A flood from node 3: node 1's agent still answers status and dig during it.
h_in 3 python3 "$H_ROOT/tests/host/dns-flood.py" "$A1" 4 &
flood=$!
sleep 0.5
t0=$(date +%s%N)
DSTACK_P2P_CONTROL="$H_RUN/ctl1.sock" timeout 10 "$H_BIN/dstack-p2p" status >"$H_RUN/status1.txt" 2>&1 ||
	h_die "status on node 1 during the flood: $(cat "$H_RUN/status1.txt")"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
ok=0
for _ in 1 2 3; do [ "$(q 2 +short +tries=3 @"$A1" node-2.p2p.internal)" = "$A2" ] && ok=$((ok + 1)); done
wait "$flood"
[ "$ok" -ge 1 ] || h_die "no dig answer from node 1 during the flood"
kill -0 "${H_PID_AGENT[1]}" || h_die "node 1's agent died"
pass "a flood: node 1's status answered in $ms ms, dig $ok of 3"
