#!/bin/bash
# SPDX-License-Identifier: MIT
# WireGuard through a dstack-gateway stand-in (netns-harness/gateway.sh: nginx terminating
# TLS for *.<domain> with a CA of this run, routing by SNI <instance_id>-<port>), with
# nftables dropping every UDP packet between the nodes, so only the gateway path works:
#   3 nodes join and ping each other, a 4th joins; an agent is SIGKILLed and restarted;
#   the gateway restarts; the gateway's idle limit is cut to 2 s (streams are cut and
#   come back); a reader that stops reading is cut and dialled again, without holding up
#   the other streams; a burned node's streams are refused. Then a mixed mesh in auto mode:
#   UDP between 1-2 and 2-3, the gateway between 1-3, and back to UDP once 1-3 is open.
# Expectations come from wg show, ping, cast and ss; the gap across the restart is printed.
set -euo pipefail
. "$(dirname "$0")/../../netns-harness/lib.sh"
. "$(dirname "$0")/../../netns-harness/gateway.sh"
pass() { h_log "PASS: $*"; }
H_CLEANUP_HOOK=h_gw_cleanup

h_init dpg
h_deploy
h_gw_up
gw_node_up() { # i transport [flags]
	local i=$1 tr=$2
	shift 2
	h_node_add "$i"
	h_gw_node "$i"
	h_mint_bind "$i"
	h_agent_start "$i" $(h_gw_agent_flags "$tr") "$@"
}
# every endpoint node i's device has for the others: the relay's loopback sockets
endpoints_are_gateway() {
	local i=$1 j want have
	shift
	want=$(for j in "$@"; do [ "$i" = "$j" ] || printf '%s 127.0.1.%s:%s\n' "${H_PUB[$j]}" "${H_TOKEN[$j]}" "$H_RELAY_PORT"; done | sort)
	have=$(h_in "$i" wg show "$(h_if "$i")" endpoints | tr '\t' ' ' | sort)
	[ "$want" = "$have" ]
}
ping_all_retry() { # expected live...: up to 20 rounds until every pair answers
	local want=$1 t n
	shift
	for t in $(seq 1 20); do
		n=$(h_ping_all "$@")
		[ "$n" = "$want" ] && return 0
	done
	h_log "only $n of $want pairs answer"
	return 1
}

for i in 1 2 3; do h_node_add "$i"; h_gw_node "$i"; done
for i in 1 2 3; do for j in 1 2 3; do [ "$i" -lt "$j" ] && h_gw_block_udp "$i" "$j"; done; done
for i in 1 2 3; do h_mint_bind "$i"; h_agent_start "$i" $(h_gw_agent_flags gateway); done
for i in 1 2 3; do h_agent_wait_registered "$i" 30; done
getpeer='getPeer(address)((uint256,address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes))'
for i in 1 2 3; do
	h_cast call "$H_CONTRACT" "$getpeer" "0x${H_INSTANCE[$i]}" |
		grep -q "\"https://${H_INSTANCE[$i]}-$H_RELAY_PORT.$H_GW_DOMAIN\", 1," ||
		h_die "node $i: the record does not carry its gateway name in wireguard mode"
done
h_wait_mesh 30 1 2 3 || h_die "3-node mesh did not converge"
for i in 1 2 3; do endpoints_are_gateway "$i" 1 2 3 || h_die "node $i: endpoints are not the relay's"; done
ping_all_retry 6 1 2 3 || h_die "3 nodes over the gateway: not every pair answers"
# UDP really is blocked: nothing reaches another node's WireGuard port directly.
rules=$(h_in 1 nft list table inet dp2p)
echo "$rules" | grep -q "ip saddr $H_SUBNET.2 meta l4proto udp drop" || h_die "no nftables UDP block"
# The operator's view: status's PATH column names the gateway for both peers.
text=$(DSTACK_P2P_CONTROL="$H_RUN/ctl1.sock" "$H_BIN/dstack-p2p" status) || h_die "node 1: status exits $?"
[ "$(echo "$text" | grep -cE '^[0-9]+ +10\.0\.1\.[0-9]+ .* gateway( \([0-9]+ redials\))? +valid$')" = 2 ] ||
	h_die "node 1: status does not show the gateway path for both peers: $text"
pass "join: 3 nodes, UDP blocked, records carry https://<instance>-$H_RELAY_PORT.$H_GW_DOMAIN, wg endpoints are the relay's, 6/6 pairs ping"
# The same in node 1's metrics (docs/metrics.md), as python3-prometheus-client reads them:
# "series path-label" per sample of the path and relay series.
metric_samples() {
	DSTACK_P2P_CONTROL="$H_RUN/ctl$1.sock" "$H_BIN/dstack-p2p" metrics | /usr/bin/python3 -c '
import sys
from prometheus_client.parser import text_string_to_metric_families as f
for fam in f(sys.stdin.read()):
    for s in fam.samples:
        if s.name.startswith(("dstack_p2p_peer_path", "dstack_p2p_peer_relay_")):
            print(s.name, s.labels.get("path", "-"), s.labels["token"], int(s.value))'
}
samples=$(metric_samples 1) || h_die "node 1: dstack-p2p metrics does not parse"
[ "$(echo "$samples" | grep -c '^dstack_p2p_peer_path gateway ')" = 2 ] &&
	[ "$(echo "$samples" | grep -c '^dstack_p2p_peer_relay_queue_drops_total ')" = 2 ] &&
	[ "$(echo "$samples" | grep -c '^dstack_p2p_peer_relay_redials_total ')" = 2 ] ||
	h_die "node 1's metrics do not show both peers on the gateway path with relay counters: $samples"
pass "node 1's metrics: both peers on path=\"gateway\", relay redials and queue drops per peer"

# --- strangers reach a relay through the gateway (anyone can): an HTTP request, random
# bytes, a well-formed challenge naming a real peer without its key. The target is the node
# with the highest instance id (it accepts every pair's stream), the forged name the lowest.
# The forged proof is counted as refused; no proven stream is replaced or cut.
order=$(for i in 1 2 3; do echo "${H_INSTANCE[$i]} $i"; done | sort | cut -d' ' -f2)
lo=$(echo "$order" | head -1)
hi=$(echo "$order" | tail -1)
sum_of() { DSTACK_P2P_CONTROL="$H_RUN/ctl$1.sock" "$H_BIN/dstack-p2p" status --json |
	grep -o "\"$2\":[0-9]*" | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }'; }
before=$(sum_of "$hi" connects)
stranger() { timeout 8 ip netns exec "$(h_ns "$lo")" openssl s_client -quiet -connect "$H_GW_IP:443" \
	-servername "${H_INSTANCE[$hi]}-$H_RELAY_PORT.$H_GW_DOMAIN" -verify_return_error -CAfile "$H_GW_CA" \
	>/dev/null 2>&1 || true; }
printf 'GET / HTTP/1.0\r\n\r\n' | stranger
head -c 4096 /dev/urandom | stranger
{ printf '\000\074DP2PRLY1'; printf "$(echo "${H_INSTANCE[$lo]}" | sed 's/../\\x&/g')"; head -c 32 /dev/urandom
  sleep 1; printf '\000\101'; head -c 65 /dev/urandom; sleep 1; } | stranger
ping_all_retry 6 1 2 3 || h_die "after strangers knocked: not every pair answers"
after=$(sum_of "$hi" connects)
refused=$(sum_of "$hi" refused)
[ "$refused" -ge 1 ] || h_die "node $hi never saw the forged proof (refused $refused)"
[ "$before" = "$after" ] || h_die "strangers made node $hi replace a stream ($before -> $after connects)"
pass "strangers through the gateway (HTTP, noise, a forged proof: $refused refused) change none of node $hi's $after streams"

gw_node_up 4 gateway
for j in 1 2 3; do h_gw_block_udp "$j" 4; done
h_agent_wait_registered 4 30
h_wait_mesh 30 1 2 3 4 || h_die "the 4th node did not converge"
ping_all_retry 12 1 2 3 4 || h_die "4 nodes over the gateway: not every pair answers"
pass "a 4th node joins over the gateway: 12/12 pairs ping"

# --- SIGKILL an agent and restart it: the gap in pings through the gateway is printed
gap_log() { h_in "$1" ping -D -i 0.2 -w 10 -W 1 "10.0.1.${H_TOKEN[$2]}" >"$H_RUN/gap-$1-$2.log" 2>&1 || true; }
gap_log 1 2 & p1=$!
gap_log 3 2 & p2=$!
sleep 1
kill -9 "${H_PID_AGENT[2]}"
{ wait "${H_PID_AGENT[2]}"; } 2>/dev/null || true
echo "--- restart" >>"$H_RUN/agent2.log"
h_agent_start 2 $(h_gw_agent_flags gateway)
h_agent_wait_registered 2 20
wait $p1 $p2
for pair in 1-2 3-2; do
	gap=$(awk -F'[][]' '/bytes from/ { t = $2; if (last) { g = t - last; if (g > max) max = g }; last = t }
		END { printf "%.2f", max + 0 }' "$H_RUN/gap-$pair.log")
	n=$(grep -c 'bytes from' "$H_RUN/gap-$pair.log" || true)
	h_log "pings $pair across the SIGKILL + restart: $n replies, longest gap ${gap} s"
	late=$(grep -o 'icmp_seq=[0-9]*' "$H_RUN/gap-$pair.log" | cut -d= -f2 | awk '$1 > 40' | wc -l)
	[ "$late" -ge 1 ] || h_die "pings $pair did not come back after the restart (no reply in the last 2 s)"
done
changes=$(sed -n '/^--- restart/,$p' "$H_RUN/agent2.log" | grep -cE 'peer .*: (added|removed|updated)' || true)
[ "$changes" = 0 ] || h_die "the restarted agent changed $changes peers"
pass "SIGKILL + restart: pings over the gateway resume, no peer re-programmed"

# --- the gateway restarts: every stream is cut, the relays dial again
h_gw_restart
ping_all_retry 12 1 2 3 4 || h_die "after the gateway restart: not every pair answers"
pass "gateway restart: 12/12 pairs ping again"

# --- the gateway's limits set short: streams idle for 2 s are cut (dstack: 10 min)
H_GW_IDLE=2s h_gw_conf
h_gw_reload
sleep 6
ping_all_retry 12 1 2 3 4 || h_die "with a 2 s idle cut: not every pair answers"
cut=$(grep -c 'timed out' "$H_RUN/gw/error.log" || true)
status=$(DSTACK_P2P_CONTROL="$H_RUN/ctl1.sock" "$H_BIN/dstack-p2p" status --json)
reconnects=$(echo "$status" | grep -o '"reconnects":[0-9]*' | cut -d: -f2 | sort -n | tail -1)
h_log "2 s idle cut: node 1's most reconnected stream came back $reconnects times"
[ "${reconnects:-0}" -ge 1 ] || h_die "no stream of node 1 was ever cut and re-dialled ($cut cut in nginx's log)"
h_gw_conf
h_gw_reload
# Redials are counted where a stream is dialled, and one end of each pair dials (node 1 may
# dial none): the four nodes' metrics together count every redial.
redials=$(for i in 1 2 3 4; do metric_samples "$i" || true; done |
	awk '$1 == "dstack_p2p_peer_relay_redials_total" { s += $4 } END { print s + 0 }')
[ "$redials" -ge 1 ] || h_die "the nodes' metrics count no relay redial after the idle cuts ($reconnects reconnects of node 1 in status)"
pass "short gateway limits: streams cut and re-dialled ($redials redials in the nodes' metrics), 12/12 pairs ping"

# --- a reader that stops reading (dstack cuts it after 5 s): node 2's agent is stopped, so
# its relay reads nothing, while node 1 floods it. nginx has one timeout for idle and stalled
# streams: 8 s here, above the 5 s keepalives, so only the flooded stream stalls that long.
# Node 1's other streams keep going; the gateway cuts 1-2; once node 2 reads again, 1-2 is
# dialled again and pings resume.
relay_connects() { # i j: connects of node i's stream to node j (status --json)
	DSTACK_P2P_CONTROL="$H_RUN/ctl$1.sock" "$H_BIN/dstack-p2p" status --json | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
print(sum(p.get("relay", {}).get("connects", 0) for p in s["peers"] if p["token"] == int(sys.argv[1])))' "${H_TOKEN[$2]}"
}
cut12() { # streams between nodes 1 and 2 that nginx cut for their timeout
	grep 'timed out' "$H_RUN/gw/error.log" | grep -cE "client: $H_SUBNET\.1,.*upstream: \"$H_SUBNET\.2:|client: $H_SUBNET\.2,.*upstream: \"$H_SUBNET\.1:" || true
}
# The kernel here lets a socket's buffers grow to 32 MiB, and nginx's timer restarts on every
# read it gets: a flood took from 30 s to over a minute to fill them. The gateway's own are
# capped (its namespace, until the streams the reload cuts are dialled again) to fill at once.
gw_bufs=$(ip netns exec "${H_PREFIX}gw" sysctl -n net.ipv4.tcp_rmem net.ipv4.tcp_wmem | tr '\t' ' ')
ip netns exec "${H_PREFIX}gw" sysctl -qw net.ipv4.tcp_rmem="4096 16384 65536" net.ipv4.tcp_wmem="4096 16384 65536"
H_GW_IDLE=8s h_gw_conf
h_gw_reload
# The old worker carries the old streams for worker_shutdown_timeout (1 s): wait (bounded)
# until it is gone. Otherwise the pings below may pass over its stream 1-2, which it then
# cuts just after node 2 stops; when node 2 is the side that dials (the lower instance id),
# nothing dials 1-2 again, the flood goes nowhere and nginx has nothing to cut.
for t in $(seq 1 50); do
	[ "$(ip netns pids "${H_PREFIX}gw" | wc -l)" -le 2 ] && break  # the master and one worker
	sleep 0.1
done
ping_all_retry 12 1 2 3 4 || h_die "before the stall: not every pair answers"
c12=$(relay_connects 1 2) c21=$(relay_connects 2 1) cut=$(cut12)
kill -STOP "${H_PID_AGENT[2]}"
ip netns exec "$(h_ns 1)" ping -q -s 1200 -i 0.001 -w 60 "10.0.1.${H_TOKEN[2]}" >/dev/null 2>&1 &
flood=$!
sleep 1
others=$(h_in 1 ping -c 10 -i 0.2 -W 1 "10.0.1.${H_TOKEN[3]}" 2>/dev/null | grep -c 'bytes from' || true)
for t in $(seq 1 200); do
	[ "$(cut12)" -gt "$cut" ] && break
	sleep 0.2
done
kill "$flood" 2>/dev/null || true
wait "$flood" 2>/dev/null || true
kill -CONT "${H_PID_AGENT[2]}"
h_log "stalled reader: node 1 -> 3 answered $others/10 pings while 1 flooded the stopped node 2;" \
	"the gateway cut 1-2 $(( $(cut12) - cut )) times"
[ "$others" -ge 8 ] || h_die "a stalled peer held up node 1's other streams ($others/10 pings to node 3)"
[ "$(cut12)" -gt "$cut" ] ||
	h_die "the gateway never cut the stalled stream 1-2 (its cuts: $(grep 'timed out' "$H_RUN/gw/error.log" | tail -2))"
ping_all_retry 12 1 2 3 4 || h_die "after the stalled reader: not every pair answers"
for t in $(seq 1 100); do
	[ $(( $(relay_connects 1 2) + $(relay_connects 2 1) )) -gt $(( c12 + c21 )) ] && break
	sleep 0.2
done
h_log "stalled reader: stream 1-2 connects $c12/$c21 before, $(relay_connects 1 2)/$(relay_connects 2 1) after"
[ $(( $(relay_connects 1 2) + $(relay_connects 2 1) )) -gt $(( c12 + c21 )) ] || h_die "stream 1-2 was not dialled again"
ip netns exec "${H_PREFIX}gw" sysctl -qw net.ipv4.tcp_rmem="$(echo "$gw_bufs" | sed -n 1p)" \
	net.ipv4.tcp_wmem="$(echo "$gw_bufs" | sed -n 2p)"
h_gw_conf
h_gw_reload
pass "stalled reader: the gateway cut it, node 1's other peers were not held up, 1-2 dialled again, 12/12 pairs ping"

# --- burn node 4: gone from every device, and its streams are refused by every relay
h_cast send --private-key "$H_OPERATOR_KEY" "$H_CONTRACT" "burn(uint256)" "${H_TOKEN[4]}" >/dev/null
h_wait_mesh 30 1 2 3 || h_die "the burned node was not removed everywhere"
for i in 1 2 3; do h_ping 4 "$i" && h_die "the burned node still reaches node $i"; done
for t in $(seq 1 50); do
	up=$(DSTACK_P2P_CONTROL="$H_RUN/ctl4.sock" "$H_BIN/dstack-p2p" status --json | grep -o '"state":"up"' | wc -l || true)
	[ "$up" = 0 ] && break
	sleep 0.1
done
[ "$up" = 0 ] || h_die "the burned node still has $up streams up"
ping_all_retry 6 1 2 3 || h_die "after the burn: the others lost each other"
pass "burn: node 4 gone from every wg show, its streams refused, 6/6 remaining pairs ping"

# --- mixed mesh, auto: UDP where it passes (1-2, 2-3), the gateway where it does not (1-3)
for i in 1 2 3; do kill "${H_PID_AGENT[$i]}"; done
for i in 1 2 3; do wait "${H_PID_AGENT[$i]}" 2>/dev/null || true; done
h_gw_unblock_udp 1 2 3
h_gw_block_udp 1 3
for i in 1 2 3; do echo "--- auto" >>"$H_RUN/agent$i.log"; done
for i in 1 2 3; do h_agent_start "$i" $(h_gw_agent_flags auto) --fallback-ms 3000; done
for i in 1 2 3; do
	for t in $(seq 1 100); do
		h_cast call "$H_CONTRACT" "$getpeer" "0x${H_INSTANCE[$i]}" |
			grep -q "\"$H_SUBNET.$i:51830,https://${H_INSTANCE[$i]}-$H_RELAY_PORT.$H_GW_DOMAIN\"" && break
		sleep 0.2
	done
done
h_wait_mesh 30 1 2 3 || h_die "auto: mesh did not converge"
ep() { h_in "$1" wg show "$(h_if "$1")" endpoints | grep "^${H_PUB[$2]}" | cut -f2; }
# one reading of all four (a probe of 1-3 may start between two readings; each side probes
# on its own back-off, and a probe holds the UDP endpoint up to 3 s: on a loaded machine
# 30 s of readings once found node 3 mid-probe of 1-3 at every one, hence 90 s)
for t in $(seq 1 450); do
	e12=$(ep 1 2) e13=$(ep 1 3) e31=$(ep 3 1) e32=$(ep 3 2)
	[ "$e12" = "$H_SUBNET.2:51830" ] && [ "$e13" = "127.0.1.${H_TOKEN[3]}:$H_RELAY_PORT" ] &&
		[ "$e31" = "127.0.1.${H_TOKEN[1]}:$H_RELAY_PORT" ] && [ "$e32" = "$H_SUBNET.2:51830" ] && break
	sleep 0.2
done
h_log "auto: node 1 -> 2 via $e12, 1 -> 3 via $e13, 3 -> 1 via $e31, 3 -> 2 via $e32"
[ "$e12" = "$H_SUBNET.2:51830" ] && [ "$e32" = "$H_SUBNET.2:51830" ] || h_die "auto: 1-2 or 3-2 is not on UDP"
[ "$e13" = "127.0.1.${H_TOKEN[3]}:$H_RELAY_PORT" ] && [ "$e31" = "127.0.1.${H_TOKEN[1]}:$H_RELAY_PORT" ] ||
	h_die "auto: 1-3 did not fall back to the gateway"
ping_all_retry 6 1 2 3 || h_die "auto: not every pair answers"
pass "mixed mesh (auto): 1-2 and 2-3 over UDP, 1-3 through the gateway, 6/6 pairs ping"

# Both 1 and 3 probe UDP towards each other (twice each) while it is dropped: no probe may
# be confirmed by the packets that came through the relay meanwhile (the old flip).
since_auto() { sed -n '/^--- auto/,$p' "$H_RUN/agent$1.log" | grep -c "peer 10.0.1.${H_TOKEN[$2]}: $3" || true; }
for t in $(seq 1 450); do
	[ "$(since_auto 1 3 'gateway path -> udp')" -ge 2 ] && [ "$(since_auto 3 1 'gateway path -> udp')" -ge 2 ] && break
	sleep 0.2
done
h_log "auto: probes while 1-3 is blocked: node 1 $(since_auto 1 3 'gateway path -> udp'), node 3 $(since_auto 3 1 'gateway path -> udp')"
[ "$(since_auto 1 3 'gateway path -> udp')" -ge 2 ] && [ "$(since_auto 3 1 'gateway path -> udp')" -ge 2 ] ||
	h_die "auto: 1 and 3 did not probe UDP twice each"
[ "$(since_auto 1 3 'udp path confirmed')" = 0 ] && [ "$(since_auto 3 1 'udp path confirmed')" = 0 ] ||
	h_die "auto: a probe into the blocked 1-3 was taken for working UDP"
# A working pair can need a second probe: while only one side probes, the other's packets
# still come through the relay and roam the endpoint away (see docs/transport.md); the
# next probe comes after the doubled back-off, so wait for it (bounded) before judging.
for t in $(seq 1 450); do
	[ "$(since_auto 1 2 'udp path confirmed')" -ge 1 ] && [ "$(since_auto 3 2 'udp path confirmed')" -ge 1 ] && break
	sleep 0.2
done
[ "$(since_auto 1 2 'udp path confirmed')" -ge 1 ] && [ "$(since_auto 3 2 'udp path confirmed')" -ge 1 ] ||
	h_die "auto: 1-2 or 3-2 never confirmed UDP"
ping_all_retry 6 1 2 3 || h_die "auto: not every pair answers after the probes"
pass "auto: UDP probes into the blocked 1-3 all failed (none taken for UDP by relayed packets)"

h_gw_unblock_udp 1 3
# the next probe comes 9 s (3 fallback bounds) after a fall-back, doubling after each failed one
for t in $(seq 1 600); do
	e13=$(ep 1 3) e31=$(ep 3 1)
	[ "$e13" = "$H_SUBNET.3:51830" ] && [ "$e31" = "$H_SUBNET.1:51830" ] && break
	sleep 0.2
done
[ "$e13" = "$H_SUBNET.3:51830" ] && [ "$e31" = "$H_SUBNET.1:51830" ] ||
	h_die "auto: 1-3 stayed on $e13 / $e31 after UDP opened"
for t in $(seq 1 100); do
	[ $(( $(since_auto 1 3 'udp path confirmed') + $(since_auto 3 1 'udp path confirmed') )) -ge 1 ] && break
	sleep 0.2
done
[ $(( $(since_auto 1 3 'udp path confirmed') + $(since_auto 3 1 'udp path confirmed') )) -ge 1 ] ||
	h_die "auto: 1-3 on UDP but no side confirmed it"
ping_all_retry 6 1 2 3 || h_die "auto: not every pair answers after going back to UDP"
pass "auto: once UDP passes between 1 and 3 again, a probe moves them back to UDP"
