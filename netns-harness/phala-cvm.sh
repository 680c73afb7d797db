#!/bin/bash
# SPDX-License-Identifier: MIT
# netns-harness: what "running a CVM" means for the Phala stand-in (deploy/phala/standin.mjs
# --hook). The stand-in calls it once a boot is allowed and once at each stop:
#
#   phala-cvm.sh boot NAME INSTANCE_ID APP_ID COMPOSE_HASH   (the CVM's env in ours)
#   phala-cvm.sh stop NAME
#
# NAME ends in -<i>: the CVM runs in node namespace i, which the test made with h_node_add
# (veth, wireguard-go). Boot starts the guest agent (dstack-sim, with the instance id the
# platform made and the compose hash it booted), routes the instance's name through the
# gateway stand-in (gateway.sh) and starts the agent as examples/compose/phala.yml does:
# gateway transport, the relayer pays, CLUSTER_CONTRACT / ETH_RPC_URL / P2P_RELAYER_URL from
# the sealed env. Needs H_RUN, H_PREFIX and H_BIN from the test's environment.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway.sh"
H_T0=$(date +%s%N)
action=$1 name=$2
i=${name##*-}
[[ "$i" =~ ^[0-9]+$ ]] || { echo "phala-cvm: $name does not end in -<node>" >&2; exit 1; }
ns=$(h_ns "$i")
pids=$H_RUN/cvm$i.pids

if [ "$action" = stop ]; then
	[ -f "$pids" ] && h_kill $(cat "$pids")
	rm -f "$pids"
	exit 0
fi
[ "$action" = boot ] || { echo "phala-cvm: boot or stop, not $action" >&2; exit 1; }
inst=$3 app=$4 hash=$5
ip netns list | grep -q "^$ns\b" || { echo "phala-cvm: no namespace $ns" >&2; exit 1; }

rm -f "$H_RUN/sim$i.sock"
"$H_BIN/dstack-sim" --kms-root-key-file "$H_RUN/kms.key" --app-id "$app" --instance-id "$inst" \
	--compose-hash "$hash" --socket "$H_RUN/sim$i.sock" >>"$H_RUN/sim$i.log" 2>&1 &
echo $! >>"$pids"
for _ in $(seq 1 250); do [ -S "$H_RUN/sim$i.sock" ] && break; sleep 0.02; done
[ -S "$H_RUN/sim$i.sock" ] || { echo "phala-cvm: the guest agent did not start" >&2; exit 1; }

# The gateway routes <instance>-<port>.<domain> to this node; every booted node resolves
# every other's name (appending keeps the inode a running agent's namespace has mounted).
grep -q "^$inst " "$H_RUN/gw/routes.conf" || printf '%s %s.%s;\n' "$inst" "$H_SUBNET" "$i" >>"$H_RUN/gw/routes.conf"
grep -q "^$i $inst\$" "$H_RUN/cvm-booted" 2>/dev/null || echo "$i $inst" >>"$H_RUN/cvm-booted"
mkdir -p "/etc/netns/$ns"
[ -f "/etc/netns/$ns/hosts" ] || printf '127.0.0.1 localhost\n' >"/etc/netns/$ns/hosts"
while read -r j jinst; do
	[ -f "/etc/netns/$(h_ns "$j")/hosts" ] || continue
	for line in "$H_GW_IP $inst-$H_RELAY_PORT.$H_GW_DOMAIN:$j" "$H_GW_IP $jinst-$H_RELAY_PORT.$H_GW_DOMAIN:$i"; do
		f=/etc/netns/$(h_ns "${line##*:}")/hosts
		grep -qF "${line%:*}" "$f" || echo "${line%:*}" >>"$f"
	done
done <"$H_RUN/cvm-booted"
kill -HUP "$(cat "$H_RUN/gw/nginx.pid")"
sleep 0.3

ip netns exec "$ns" env DSTACK_SIMULATOR_ENDPOINT="$H_RUN/sim$i.sock" \
	CLUSTER_CONTRACT="$CLUSTER_CONTRACT" ETH_RPC_URL="$ETH_RPC_URL" P2P_RELAYER_URL="$P2P_RELAYER_URL" \
	P2P_TRANSPORT=gateway P2P_RELAY_PORT="$H_RELAY_PORT" DSTACK_GATEWAY_DOMAIN="$H_GW_DOMAIN" \
	P2P_GATEWAY_CA="$H_RUN/gw/ca.pem" P2P_INTERFACE="$(h_if "$i")" P2P_KEEPALIVE="$H_KEEPALIVE" \
	P2P_POLL_MS="$H_POLL_MS" P2P_PEERS_FILE="$H_RUN/peers$i" DSTACK_P2P_CONTROL="$H_RUN/ctl$i.sock" \
	"$H_BIN/dstack-p2p" agent >>"$H_RUN/agent$i.log" 2>&1 &
echo $! >>"$pids"
h_log "cvm $name booted in $ns: instance 0x$inst, compose hash 0x$hash" >>"$H_RUN/cvm.log"
