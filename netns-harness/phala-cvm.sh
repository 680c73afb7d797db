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
# the sealed env. The agent runs from the container image when H_IMAGE is set (podman, as
# lib.sh's h_agent_start_image), else from the build. Needs H_RUN, H_PREFIX and H_BIN (and
# H_IMAGE, H_MNT_PID) from the test's environment.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway.sh"
H_T0=$(date +%s%N)
# The stand-in runs in the hub namespace, where `ip netns exec` remounted /sys without the
# cgroup mounts runc needs: podman runs in the test's own mount namespace (H_MNT_PID).
podman() { nsenter --mount="/proc/$H_MNT_PID/ns/mnt" -- env CONTAINERS_CONF="$CONTAINERS_CONF" podman "$@"; }
action=$1 name=$2
i=${name##*-}
[[ "$i" =~ ^[0-9]+$ ]] || { echo "phala-cvm: $name does not end in -<node>" >&2; exit 1; }
ns=$(h_ns "$i")
pids=$H_RUN/cvm$i.pids

if [ "$action" = stop ]; then
	[ -z "${H_IMAGE:-}" ] || h_podman rm -f -t 5 "${H_PREFIX}a$i" >/dev/null 2>&1 || true
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

# The agent's settings as examples/compose/phala.yml sets them (the sealed env, gateway
# transport), plus the harness's interface name, gateway CA and pace.
agent_env=(CLUSTER_CONTRACT="$CLUSTER_CONTRACT" ETH_RPC_URL="$ETH_RPC_URL" P2P_RELAYER_URL="$P2P_RELAYER_URL"
	P2P_TRANSPORT=gateway P2P_RELAY_PORT="$H_RELAY_PORT" DSTACK_GATEWAY_DOMAIN="$H_GW_DOMAIN"
	P2P_INTERFACE="$(h_if "$i")" P2P_KEEPALIVE="$H_KEEPALIVE" P2P_POLL_MS="$H_POLL_MS")
if [ -n "${H_IMAGE:-}" ]; then
	# The image's agent (H_IMAGE, loaded by the test with h_image_load), laid out as the compose
	# file does: the guest agent's socket, a /run/dstack-p2p volume; here also wireguard-go's
	# UAPI folder, the namespace's hosts file (the gateway names) and the gateway's test CA.
	mkdir -p "$H_RUN/run$i"
	cp "$H_RUN/gw/ca.pem" "$H_RUN/run$i/gateway-ca.pem"
	h_podman rm -f -t 2 "${H_PREFIX}a$i" >/dev/null 2>&1 || true
	env_flags=()
	for e in "${agent_env[@]}"; do env_flags+=(-e "$e"); done
	h_podman run -d --name "${H_PREFIX}a$i" --network "ns:/run/netns/$ns" --cap-add NET_ADMIN \
		--device /dev/net/tun -v "$H_RUN/sim$i.sock:/var/run/dstack.sock" -v "$H_RUN/run$i:/run/dstack-p2p" \
		-v /var/run/wireguard:/var/run/wireguard -v "/etc/netns/$ns/hosts:/etc/hosts:ro" "${env_flags[@]}" \
		-e P2P_GATEWAY_CA=/run/dstack-p2p/gateway-ca.pem -e P2P_PEERS_FILE=/run/dstack-p2p/peers \
		"$H_IMAGE" dstack-p2p agent >"$H_RUN/podman-run$i.log" 2>&1 ||
		{ echo "phala-cvm: podman run: $(cat "$H_RUN/podman-run$i.log")" >&2; exit 1; }
else
	ip netns exec "$ns" env DSTACK_SIMULATOR_ENDPOINT="$H_RUN/sim$i.sock" "${agent_env[@]}" \
		P2P_GATEWAY_CA="$H_RUN/gw/ca.pem" P2P_PEERS_FILE="$H_RUN/peers$i" DSTACK_P2P_CONTROL="$H_RUN/ctl$i.sock" \
		"$H_BIN/dstack-p2p" agent >>"$H_RUN/agent$i.log" 2>&1 &
	echo $! >>"$pids"
fi
h_log "cvm $name booted in $ns: instance 0x$inst, compose hash 0x$hash" >>"$H_RUN/cvm.log"
