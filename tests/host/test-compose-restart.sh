#!/bin/bash
# SPDX-License-Identifier: MIT
# examples/compose/*.yml run as users run them, one harness node per file: each service
# becomes a podman container as docker compose would make it (tests/host/compose-run.py
# translates the YAML; network_mode: host is the node's namespace, as the CVM's own is
# on dstack), with `make image`'s image and a busybox app image made here. Nodes 1 and 2
# run the agent from the build tree.
#
# The startup gate: the nodes are bound only BIND_AFTER (20) s after their gate started,
# later than any deadline the files give `dstack-p2p wait` divided by GATE_DIVISOR (100:
# 600 s and 1800 s become 6 s and 18 s). Compose runs the gate once (restart: "no") and
# starts the app only if it exits 0: the app must still start.
# The restart: the agent container's process is SIGKILLed; its restart policy (else an
# explicit `podman start`, said in the log) brings it back. The app container, never
# restarted, must share the agent's network namespace again and reach every peer
# (ping, from inside the app) within 5 s of the agent's return; the agent must answer
# registered again and its device list every peer (wg show).
# Transport variables are the harness's (UDP in the node namespaces): the layout is
# what is tested, test-compose.sh checks the files' own settings.
set -eu
cd "$(dirname "$0")/../.."
for tool in mmdebstrap podman runc busybox; do
	command -v "$tool" >/dev/null || { echo "test-compose-restart: $tool missing (scripts/deps.sh image)" >&2; exit 1; }
done
py=/usr/bin/python3
"$py" -c 'import yaml' 2>/dev/null || { echo "test-compose-restart: python3-yaml missing" >&2; exit 1; }
BIND_AFTER=${BIND_AFTER:-20}
GATE_DIVISOR=${GATE_DIVISOR:-100}
archive=${O:-build}/image/dstack-p2p.oci.tar
log=$(mktemp /tmp/dstack-p2p-compose-restart.XXXXXX)
scripts/image.sh >"$log" 2>&1 || { tail -20 "$log"; rm -f "$log"; exit 1; }
rm -f "$log"
source netns-harness/lib.sh
h_init cmr
h_deploy
h_relayer_start
h_image_load "$archive"

# The app's image: busybox, under the name the files use, from Debian's busybox-static.
mkdir -p "$H_RUN/bb/bin"
cp "$(command -v busybox)" "$H_RUN/bb/bin/busybox"
for a in sh cat sleep ping echo; do ln -s busybox "$H_RUN/bb/bin/$a"; done
tar -C "$H_RUN/bb" -cf "$H_RUN/bb.tar" bin
h_podman import -q "$H_RUN/bb.tar" docker.io/library/busybox:1.36 >/dev/null || h_die "busybox image"

files=(examples/compose/*.yml)
h_node_up 1
h_node_up 2
declare -A FILE=()
k=2
for f in "${files[@]}"; do
	k=$((k + 1))
	FILE[$k]=$f
	h_node_add "$k"
	mkdir -p "$H_RUN/vol$k" "$H_RUN/dstack$k"
	cp "$H_RUN/txkey$k" "$H_RUN/vol$k/txkey"
done
nodes=(1 2 "${!FILE[@]}")

# run k SERVICE [extra podman args]: the service of node k's file, as compose runs it.
run() {
	local k=$1 svc=$2 args=()
	shift 2
	mapfile -d '' args < <("$py" tests/host/compose-run.py "${FILE[$k]}" "$svc" \
		--name-prefix "${H_PREFIX}c$k-" --netns "/run/netns/$(h_ns "$k")" \
		--image dstack-p2p:latest="$H_IMAGE" --image busybox:1.36=docker.io/library/busybox:1.36 \
		--volume p2p-run="$H_RUN/vol$k" --bind /var/run/dstack.sock="$H_RUN/sim$k.sock" \
		--bind /dstack="$H_RUN/dstack$k" --gate-divisor "$GATE_DIVISOR" \
		--var CLUSTER_CONTRACT="$H_CONTRACT" --var ETH_RPC_URL="$H_RPC" \
		--var P2P_RELAYER_URL="http://$H_HUB_IP:8600/relay" --var P2P_ENDPOINT="$H_SUBNET.$k:51830" \
		"$@") || h_die "compose-run ${FILE[$k]} $svc"
	H_CONTAINERS+=("${H_PREFIX}c$k-$svc")
	h_podman run -d "${args[@]}" >"$H_RUN/run-$k-$svc.log" 2>&1 || h_die "podman run $svc ($(cat "$H_RUN/run-$k-$svc.log"))"
}
for k in "${!FILE[@]}"; do
	# The harness's transport (wireguard-go's UAPI, outside the image) and node k's
	# settings; the rest is the file's.
	run "$k" dstack-p2p --set P2P_MODE=wireguard --set P2P_TRANSPORT=udp --set P2P_LISTEN_PORT=51830 \
		--set P2P_INTERFACE="$(h_if "$k")" --set P2P_ENDPOINT="$H_SUBNET.$k:51830" \
		--set P2P_KEEPALIVE="$H_KEEPALIVE" --set P2P_POLL_MS="$H_POLL_MS" \
		--extra --device=/dev/net/tun --extra --volume=/var/run/wireguard:/var/run/wireguard
	run "$k" p2p-wait
done
gate_t0=$(date +%s)
h_log "agents and gates of ${files[*]} started; binding after ${BIND_AFTER} s"
sleep $((BIND_AFTER - ($(date +%s) - gate_t0)))
for k in "${!FILE[@]}"; do h_mint_bind "$k"; done

# depends_on: { p2p-wait: { condition: service_completed_successfully } }: the app
# starts once the gate exited 0, and never if it exited otherwise (restart: "no").
for k in "${!FILE[@]}"; do
	g=${H_PREFIX}c$k-p2p-wait
	for t in $(seq 1 300); do
		[ "$(h_podman inspect -f '{{.State.Status}}' "$g")" = exited ] && break
		sleep 0.2
	done
	rc=$(h_podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$g")
	[ "${rc% *}" = exited ] || h_die "${FILE[$k]}: the gate has not passed 60 s after the bind ($(h_podman logs "$g" 2>&1 | tail -1))"
	[ "$rc" = "exited 0" ] || h_die "${FILE[$k]}: the gate exited ${rc#* } when the node was bound after ${BIND_AFTER} s: the app never starts ($(h_podman logs "$g" 2>&1 | tail -1))"
	# docker's default capabilities hold NET_RAW (ping); podman's do not.
	run "$k" app --extra --cap-add=NET_RAW
	h_log "${FILE[$k]}: the gate passed $(( $(date +%s) - gate_t0 )) s after it started, the app runs"
done
h_wait_mesh 90 "${nodes[@]}" || h_die "mesh did not converge"
h_log "mesh of ${#nodes[@]} converged"

netns_of() { readlink "/proc/$(h_podman inspect -f '{{.State.Pid}}' "$1")/ns/net"; }
# app_reaches k: node k's app container pings every other node's overlay address.
app_reaches() {
	local k=$1 j
	for j in "${nodes[@]}"; do
		[ "$j" = "$k" ] && continue
		h_podman exec "${H_PREFIX}c$k-app" ping -c 1 -W 1 -q "$(h_addr "$j")" >/dev/null 2>&1 || return 1
	done
}
for k in "${!FILE[@]}"; do
	app_reaches "$k" || app_reaches "$k" || h_die "${FILE[$k]}: the app reaches not every peer before the restart"
done

for k in "${!FILE[@]}"; do
	a=${H_PREFIX}c$k-dstack-p2p app=${H_PREFIX}c$k-app
	app_pid=$(h_podman inspect -f '{{.State.Pid}}' "$app")
	old=$(h_podman inspect -f '{{.State.Pid}}' "$a")
	kill -KILL "$old"
	h_log "${FILE[$k]}: agent container's process $old SIGKILLed"
	how="its restart policy"
	new=
	for t in $(seq 1 100); do
		new=$(h_podman inspect -f '{{.State.Pid}} {{.State.Status}}' "$a")
		[ "${new% *}" != 0 ] && [ "${new% *}" != "$old" ] && [ "${new#* }" = running ] && break
		sleep 0.1
	done
	if [ "${new#* }" != running ] || [ "${new% *}" = "$old" ]; then
		how="an explicit podman start"
		h_podman start "$a" >/dev/null || h_die "podman start $a"
	fi
	back=$(date +%s%N)
	h_log "${FILE[$k]}: the agent is back ($how)"
	[ "$(h_podman inspect -f '{{.State.Pid}}' "$app")" = "$app_pid" ] || h_die "the app was restarted"
	[ "$(netns_of "$app")" = "$(netns_of "$a")" ] ||
		h_die "${FILE[$k]}: the app is stranded: its network namespace $(netns_of "$app") is not the restarted agent's $(netns_of "$a")"
	until app_reaches "$k"; do
		[ $(( ($(date +%s%N) - back) / 1000000 )) -lt 5000 ] ||
			h_die "${FILE[$k]}: the app reaches not every peer 5 s after the agent's return"
		sleep 0.1
	done
	h_log "${FILE[$k]}: the app (not restarted) reaches every peer $(( ($(date +%s%N) - back) / 1000000 )) ms after the agent's return"
	DSTACK_P2P_CONTROL=$H_RUN/vol$k/control.sock "$H_BIN/dstack-p2p" wait --timeout 30 >/dev/null ||
		h_die "${FILE[$k]}: the restarted agent does not answer registered"
	h_wait_mesh 30 "${nodes[@]}" || h_die "${FILE[$k]}: mesh after the restart"
done
h_log "PASS: ${files[*]}: gate passed when bound after the old deadlines, apps kept every peer across agent restarts"
