# SPDX-License-Identifier: MIT
# netns-harness: N dstack-p2p nodes on one host, as functions for demo.sh and the tests.
#
#   hub namespace  : bridge 192.168.77.254/24 + anvil (HTTP for nodes, --ipc socket for
#                    the operator's cast in the root namespace)
#   node namespace : eth0 192.168.77.i/24 (veth into the bridge), wireguard-go with a
#                    unique interface name, a guest-agent simulator, one agent
#
# Nothing is added to the root namespace and node namespaces have no default route.
# Every name carries the per-run prefix $H_PREFIX so parallel runs never collide.
# Source this file, call h_init, then the h_* functions; h_cleanup runs on EXIT.

H_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
H_BIN=${H_BIN:-$H_ROOT/build}
H_CAST=$H_ROOT/node_modules/.bin/cast
H_ANVIL=$H_ROOT/node_modules/.bin/anvil
H_FORGE=$H_ROOT/node_modules/.bin/forge
H_SUBNET=192.168.77
H_HUB_IP=$H_SUBNET.254
H_RPC=http://$H_HUB_IP:8545
H_POLL_MS=${H_POLL_MS:-300}
H_ANVIL_ARGS=${H_ANVIL_ARGS:-}    # more anvil flags (the VM preparation dumps the state)
H_KEEPALIVE=${H_KEEPALIVE:-5}
# anvil's first well-known dev account: the cluster operator (deploys, mints, binds).
H_OPERATOR_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80

# h_check_n TARGET MIN MAX N: N (a demo's node count) is a whole number from MIN to MAX, or
# exit 2 saying so the way the demo was started: `make TARGET N=...` from make (which
# sets MAKELEVEL), else the script's own command line.
h_check_n() {
	local target=$1 min=$2 max=$3 n=$4 how
	[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge "$min" ] && [ "$n" -le "$max" ] && return 0
	if [ -n "${MAKELEVEL:-}" ]; then how="make $target N=$n"; else how="$0 $n"; fi
	echo "$how: N is the number of nodes, $min to $max (e.g. make $target N=$min)" >&2
	exit 2
}

h_log() { printf '[%6s ms] %s\n' "$(( ($(date +%s%N) - H_T0) / 1000000 ))" "$*"; }
h_die() { h_log "FAIL: $*"; exit 1; }

# h_init ROLE: scratch dir, cleanup trap, hub with anvil. ROLE (at most 4 letters) and
# 4 random hex digits make the per-run prefix; interface names stay under IFNAMSIZ
# ("<role><hex>w<node>" is at most 12 characters) whatever the PID.
h_init() {
	[ "$(id -u)" = 0 ] || { echo "netns-harness: run as root (network namespaces)" >&2; exit 1; }
	local role=${1:-dp} t
	for t in $(seq 1 20); do
		H_PREFIX=${role:0:4}$(printf '%04x' $((RANDOM ^ ($$ & 0xffff))))
		ip netns list | grep -q "^${H_PREFIX}hub\b" || break
	done
	H_RUN=$(mktemp -d "${TMPDIR:-/tmp}/dstack-p2p-$H_PREFIX.XXXXXX")
	export H_RUN H_PREFIX  # marks our processes (h_ours)
	H_T0=$(date +%s%N)
	H_NODES=()
	declare -gA H_PID_AGENT=() H_PID_SIM=() H_PID_WG=() H_TOKEN=() H_INSTANCE=() H_PUB=()
	declare -gA H_RPC_NODE=() H_PROXY_URL=()  # h_agent_start: node i's RPC URL (list)
	H_OTHER_PIDS=() H_AGENT_PIDS=() H_CONTAINERS=()
	trap h_cleanup EXIT
	trap 'exit 130' INT TERM
	for tool in "$H_CAST" "$H_ANVIL" "$H_BIN/dstack-p2p" "$H_BIN/dstack-sim"; do
		[ -x "$tool" ] || { echo "netns-harness: $tool missing (make deps all)" >&2; exit 1; }
	done
	h_hub_up
}

# h_relayer_start: `dstack-p2p relayer` in the hub on $H_HUB_IP:8600 (.../relay), paying
# with a fresh key that anvil funds, for agents that hold no funded key of their own.
h_relayer_start() {
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$H_RUN/relayer.key"
	chmod 600 "$H_RUN/relayer.key"
	h_cast rpc anvil_setBalance "$("$H_CAST" wallet address --private-key "0x$(cat "$H_RUN/relayer.key")")" \
		0x56BC75E2D63100000 >/dev/null
	ip netns exec "${H_PREFIX}hub" env H_RUN="$H_RUN" "$H_BIN/dstack-p2p" relayer --listen "$H_HUB_IP:8600" \
		--rpc "$H_RUN/anvil.ipc" --contract "$H_CONTRACT" --key-file "$H_RUN/relayer.key" \
		>"$H_RUN/relayer.log" 2>&1 &
	H_OTHER_PIDS+=($!)
}

h_ns() { echo "${H_PREFIX}n$1"; }
h_if() { echo "${H_PREFIX}w$1"; }
h_in() { local i=$1; shift; ip netns exec "$(h_ns "$i")" "$@"; }
# Background jobs use `ip netns exec` directly, never through a function: then $! is the
# process itself (ip and env exec), so a signal reaches the daemon and not a subshell.
h_cast() { "$H_CAST" "$1" --rpc-url "$H_RUN/anvil.ipc" "${@:2}"; }

# Ours: every process the harness starts inherits H_RUN in its environment. A PID that
# died long ago may have been reused by someone else's process: that one is left alone.
h_ours() { grep -qaF "H_RUN=$H_RUN" "/proc/$1/environ" 2>/dev/null; }

h_kill() { # pid...: TERM, then KILL after a bounded wait; only our own processes
	local p t mine=()
	for p in "$@"; do h_ours "$p" && mine+=("$p"); done
	set -- "${mine[@]}"
	for p in "$@"; do kill "$p" 2>/dev/null || true; done
	for p in "$@"; do
		for t in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.02; done
		kill -9 "$p" 2>/dev/null || true
	done
}

h_cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	# Every agent ever started (a restart replaces H_PID_AGENT[i]), then the rest.
	h_kill "${H_AGENT_PIDS[@]}"
	for i in "${H_CONTAINERS[@]}"; do  # their logs as agent-<name>.log, shown on failure
		h_podman logs "$i" >"$H_RUN/agent-$i.log" 2>&1 || true
		h_podman rm -f -t 2 "$i" >/dev/null 2>&1 || true
	done
	# podman's overlay driver bind-mounts its own folder (and a container's layers below it,
	# busy for a moment while its last process exits): every mount under the run's folder
	# goes, deepest first, lazily if still busy, before the folder does.
	if [ -n "${H_RUN:-}" ]; then
		awk -v d="$H_RUN/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
			while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
	fi
	for i in "${H_NODES[@]}"; do
		h_kill ${H_PID_SIM[$i]:-} ${H_PID_WG[$i]:-}
		ip netns del "$(h_ns "$i")" 2>/dev/null || true
		rm -f "/var/run/wireguard/$(h_if "$i").sock"
	done
	h_kill "${H_OTHER_PIDS[@]}"
	[ -z "${H_CLEANUP_HOOK:-}" ] || $H_CLEANUP_HOOK  # e.g. gateway.sh's h_gw_cleanup
	ip netns del "${H_PREFIX}hub" 2>/dev/null || true
	if [ "$rc" != 0 ] && [ -n "${H_RUN:-}" ]; then
		for f in "$H_RUN"/agent*.log; do
			[ -f "$f" ] && { echo "--- last lines of $f"; tail -15 "$f"; }
		done
	fi
	if [ -z "${H_KEEP:-}" ]; then
		rm -rf "${H_RUN:?}" 2>/dev/null || { sleep 1; rm -rf "$H_RUN" 2>/dev/null; } ||
			echo "harness: could not remove $H_RUN (a mount still busy)" >&2
	fi
	exit "$rc"
}

h_hub_up() {
	local hub=${H_PREFIX}hub t
	ip netns add "$hub"
	ip -n "$hub" link set lo up
	# A fixed MAC: a bridge otherwise takes its lowest port's MAC, which changes when a
	# node leaves, and every other node's ARP entry for anvil goes stale for seconds.
	ip -n "$hub" link add br0 address 02:00:00:00:00:fe type bridge
	ip -n "$hub" addr add "$H_HUB_IP/24" dev br0
	ip -n "$hub" link set br0 up
	ip netns exec "$hub" "$H_ANVIL" --host "$H_HUB_IP" --port 8545 --ipc "$H_RUN/anvil.ipc" \
		--silent ${H_ANVIL_ARGS:-} >"$H_RUN/anvil.log" 2>&1 &
	H_OTHER_PIDS+=($!)
	for t in $(seq 1 250); do
		[ -S "$H_RUN/anvil.ipc" ] && h_cast chain-id >/dev/null 2>&1 && break
		sleep 0.04
	done
	h_cast chain-id >/dev/null 2>&1 || h_die "anvil did not start ($H_RUN/anvil.log)"
	h_log "hub ${H_PREFIX}hub: anvil on $H_RPC"
}

# h_contract_compiled: forge's artifact exists and no contract source is newer (forge
# would compile nothing).
h_contract_compiled() {
	local art=$H_ROOT/contracts/out/DstackClusterNFT.sol/DstackClusterNFT.json
	[ -f "$art" ] && [ -z "$(find "$H_ROOT/contracts/src" "$H_ROOT/contracts/script" -name '*.sol' -newer "$art" 2>/dev/null | head -1)" ]
}

# h_deploy: the cluster contract, with a fresh KMS root key for this run.
h_deploy() {
	local kms_addr bytecode args
	H_KMS_KEY=0x$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
	kms_addr=$("$H_CAST" wallet address --private-key "$H_KMS_KEY")
	(umask 077 && echo "${H_KMS_KEY#0x}" >"$H_RUN/kms.key")
	H_OPERATOR=$("$H_CAST" wallet address --private-key "$H_OPERATOR_KEY")
	H_MINTED_TOPIC=$("$H_CAST" keccak "NodeAccessMinted(uint256,address,string)")
	H_CONTRACT=
	# A cold checkout compiles the contract first (solc, 20-60 s on 2 cores): say so.
	if ! h_contract_compiled; then
		h_log "compiling the cluster contract (solc; the first run only, 20-60 s)"
	fi
	if [ -x "$H_ROOT/contracts/deploy.sh" ]; then
		H_CONTRACT=$(KMS_ROOT_ADDRESS=$kms_addr PRIVATE_KEY=$H_OPERATOR_KEY RPC_URL=$H_RUN/anvil.ipc \
			QUIET=1 "$H_ROOT/contracts/deploy.sh" 2>"$H_RUN/deploy.log" | tail -1) || true
	fi
	if ! [[ "$H_CONTRACT" =~ ^0x[0-9a-fA-F]{40}$ ]]; then
		# No deploy script (or it failed): the compiled artifact, created with cast.
		local art=$H_ROOT/contracts/out/DstackClusterNFT.sol/DstackClusterNFT.json
		[ -f "$art" ] || (cd "$H_ROOT/contracts" && "$H_FORGE" build -q) >/dev/null
		bytecode=$(sed -n 's/.*"bytecode":{"object":"\(0x[0-9a-f]*\)".*/\1/p' "$art")
		args=$("$H_CAST" abi-encode "constructor(address,address)" "$H_OPERATOR" "$kms_addr")
		H_CONTRACT=$(h_cast send --private-key "$H_OPERATOR_KEY" --json --create "$bytecode${args#0x}" |
			sed -n 's/.*"contractAddress":"\(0x[0-9a-fA-F]*\)".*/\1/p')
	fi
	[[ "$H_CONTRACT" =~ ^0x[0-9a-fA-F]{40}$ ]] || h_die "deploy failed: '$H_CONTRACT'"
	H_CONTRACT=$(echo "$H_CONTRACT" | tr 'A-F' 'a-f')
	h_log "cluster contract $H_CONTRACT (KMS root $kms_addr)"
}

# h_node_add i: namespace, veth, wireguard-go, guest-agent simulator. No agent yet.
h_node_add() {
	local i=$1 ns t
	ns=$(h_ns "$i")
	H_NODES+=("$i")  # first: a node half set up when we are interrupted is cleaned up too
	ip netns add "$ns"
	ip link add "${H_PREFIX}v$i" netns "${H_PREFIX}hub" type veth peer name eth0 netns "$ns"
	ip -n "${H_PREFIX}hub" link set "${H_PREFIX}v$i" master br0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$H_SUBNET.$i/24" dev eth0
	ip -n "$ns" link set eth0 up
	if [ "${H_WG:-1}" = 1 ]; then  # H_WG=0: tls mode, no WireGuard at all
		# WG_PROCESS_FOREGROUND=1 (what wireguard-go sets for its own daemonized child):
		# without it every run's log starts with the 9-line "Running wireguard-go is not
		# required" box, which is wrong here (no kernel WireGuard) and only noise.
		ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$(h_if "$i")" >"$H_RUN/wg$i.log" 2>&1 &
		H_PID_WG[$i]=$!
	fi
	H_INSTANCE[$i]=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
	"$H_BIN/dstack-sim" --kms-root-key-file "$H_RUN/kms.key" --app-id "$H_CONTRACT" \
		--instance-id "${H_INSTANCE[$i]}" --socket "$H_RUN/sim$i.sock" >"$H_RUN/sim$i.log" 2>&1 &
	H_PID_SIM[$i]=$!
	# A funded key of its own pays for the node's registration (nonces never collide).
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | sed 's/^/0x/' >"$H_RUN/txkey$i"
	chmod 600 "$H_RUN/txkey$i"
	h_cast rpc anvil_setBalance "$("$H_CAST" wallet address --private-key "$(cat "$H_RUN/txkey$i")")" \
		0x56BC75E2D63100000 >/dev/null
	for t in $(seq 1 250); do
		{ [ "${H_WG:-1}" = 0 ] || [ -S "/var/run/wireguard/$(h_if "$i").sock" ]; } &&
			[ -S "$H_RUN/sim$i.sock" ] && break
		sleep 0.02
	done
	[ -S "$H_RUN/sim$i.sock" ] || h_die "node $i: simulator did not start ($H_RUN/sim$i.log)"
}

# h_mint_bind i [label]: the operator mints the next token (labelled node-i unless given)
# and binds node i's instance to it.
h_mint_bind() {
	local i=$1 label=${2:-node-$1}
	# Minting takes the lowest free id: read it from the receipt's NodeAccessMinted log.
	H_TOKEN[$i]=$(h_cast send --private-key "$H_OPERATOR_KEY" --json "$H_CONTRACT" \
		"mintNodeAccess(address,string)" "$H_OPERATOR" "$label" |
		grep -o "\"topics\":\[\"$H_MINTED_TOPIC\",\"0x[0-9a-f]*\"" | grep -o '0x[0-9a-f]*"$' | tr -d '"')
	[ -n "${H_TOKEN[$i]}" ] || h_die "mint for node $i"
	H_TOKEN[$i]=$(( H_TOKEN[$i] ))
	h_cast send --private-key "$H_OPERATOR_KEY" "$H_CONTRACT" "bindInstance(uint256,address)" \
		"${H_TOKEN[$i]}" "0x${H_INSTANCE[$i]}" >/dev/null || h_die "bind for node $i"
	h_log "node $i: token ${H_TOKEN[$i]} bound to instance 0x${H_INSTANCE[$i]}"
}

# h_agent_start i [extra agent flags...]: flags win over the environment set here.
h_agent_start() {
	local i=$1
	shift
	ip netns exec "$(h_ns "$i")" env DSTACK_SIMULATOR_ENDPOINT="$H_RUN/sim$i.sock" \
		CLUSTER_CONTRACT="$H_CONTRACT" P2P_MODE=wireguard ETH_RPC_URL="${H_RPC_NODE[$i]:-$H_RPC}" \
		P2P_INTERFACE="$(h_if "$i")" P2P_ENDPOINT="$H_SUBNET.$i:51830" \
		P2P_LISTEN_PORT=51830 P2P_KEEPALIVE="$H_KEEPALIVE" P2P_POLL_MS="$H_POLL_MS" \
		P2P_TX_KEY_FILE="$H_RUN/txkey$i" P2P_PEERS_FILE="$H_RUN/peers$i" \
		P2P_ON_CHANGE="cat >'$H_RUN/on-change$i'" \
		DSTACK_P2P_CONTROL="$H_RUN/ctl$i.sock" \
		"$H_BIN/dstack-p2p" agent "$@" >>"$H_RUN/agent$i.log" 2>&1 &
	H_PID_AGENT[$i]=$!
	H_AGENT_PIDS+=($!)
}

# ---- the agent from its container image (make image) ------------------------------
# podman with storage of this run's own (nothing shared with other runs or the host's
# images) and the settings it needs on these machines: runc, cgroupfs, no ulimits.
h_podman() {
	CONTAINERS_CONF=$H_RUN/containers.conf podman --root "$H_RUN/podman" \
		--runroot "$H_RUN/podman-run" --runtime runc "$@"
}

# h_image_load ARCHIVE: load the OCI archive; sets H_IMAGE to the image id.
h_image_load() {
	printf '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n' \
		>"$H_RUN/containers.conf"
	h_podman load -q -i "$1" >"$H_RUN/podman-load.log" 2>&1 || h_die "podman load $1 ($H_RUN/podman-load.log)"
	H_IMAGE=$(h_podman images -q --no-trunc | head -1)
	[ -n "$H_IMAGE" ] || h_die "podman load $1 left no image"
}

# h_agent_start_image i [extra agent flags...]: node i's agent runs in a container of
# $H_IMAGE in the node's namespace, laid out as in examples/compose/: the guest agent's
# socket at /var/run/dstack.sock, the control socket and peers file on a volume at
# /run/dstack-p2p ($H_RUN/run<i> here), and wireguard-go's UAPI folder (the host kernel
# has no WireGuard). The control socket is $H_RUN/run<i>/control.sock from outside.
# The image's only program besides dstack-p2p is /bin/sh (dash): the on-change hook
# uses its builtins.
h_agent_start_image() {
	local i=$1 name=${H_PREFIX}a$1
	shift
	mkdir -p "$H_RUN/run$i"
	cp "$H_RUN/txkey$i" "$H_RUN/run$i/txkey"
	H_CONTAINERS+=("$name")
	h_podman run -d --name "$name" --network "ns:/run/netns/$(h_ns "$i")" \
		--cap-add NET_ADMIN --device /dev/net/tun \
		-v "$H_RUN/sim$i.sock:/var/run/dstack.sock" -v "$H_RUN/run$i:/run/dstack-p2p" \
		-v /var/run/wireguard:/var/run/wireguard \
		-e CLUSTER_CONTRACT="$H_CONTRACT" -e P2P_MODE=wireguard -e ETH_RPC_URL="$H_RPC" \
		-e P2P_INTERFACE="$(h_if "$i")" -e P2P_ENDPOINT="$H_SUBNET.$i:51830" \
		-e P2P_LISTEN_PORT=51830 -e P2P_KEEPALIVE="$H_KEEPALIVE" -e P2P_POLL_MS="$H_POLL_MS" \
		-e P2P_TX_KEY_FILE=/run/dstack-p2p/txkey -e P2P_PEERS_FILE=/run/dstack-p2p/peers \
		-e P2P_ON_CHANGE='while IFS= read -r l; do printf "%s\n" "$l"; done >/run/dstack-p2p/on-change' \
		"$H_IMAGE" dstack-p2p agent "$@" >"$H_RUN/podman-run$i.log" 2>&1 ||
		h_die "node $i: podman run ($H_RUN/podman-run$i.log)"
}

h_agent_wait_registered() { # i [timeout s]
	local i=$1
	DSTACK_P2P_CONTROL="$H_RUN/ctl$i.sock" "$H_BIN/dstack-p2p" wait --timeout "${2:-30}" >/dev/null ||
		h_die "node $i did not register ($H_RUN/agent$i.log)"
}

# h_node_up i: everything for one node, registered and running.
h_node_up() {
	h_node_add "$1"
	h_mint_bind "$1"
	h_agent_start "$1"
}

# Node i's WireGuard public key, as its device reports it.
h_wg_pubkey() { h_in "$1" wg show "$(h_if "$1")" public-key; }

# h_node_matches i live...: (after h_cache_keys) node i's device lists exactly the other live nodes, each with
# allowed IP 10.0.1.<token>/32, as `wg show` reports it.
h_node_matches() {
	local i=$1 j want have
	shift
	want=$(for j in "$@"; do [ "$i" = "$j" ] || printf '%s %s.%s/32\n' "${H_PUB[$j]}" "$H_OVERLAY_NET" "${H_TOKEN[$j]}"; done | sort)
	have=$(h_in "$i" wg show "$(h_if "$i")" allowed-ips | tr '\t' ' ' | sort)
	[ "$want" = "$have" ]
}

# h_cache_keys nodes...: H_PUB[i] for h_node_matches. Keys never change, so each is read
# once (call this in the current shell, not a subshell, or the cache is lost).
h_cache_keys() {
	local j
	for j in "$@"; do [ "${#H_PUB[$j]}" = 44 ] || H_PUB[$j]=$(h_wg_pubkey "$j"); done
}

# h_mesh_matches live...: every live node matches.
h_mesh_matches() {
	local i
	h_cache_keys "$@"
	for i in "$@"; do h_node_matches "$i" "$@" || return 1; done
}

h_wait_mesh() { # timeout_s live...
	local timeout=$1 t0
	shift
	t0=$(date +%s%N)
	until h_mesh_matches "$@"; do
		[ $(( ($(date +%s%N) - t0) / 1000000000 )) -lt "$timeout" ] || return 1
		sleep 0.1
	done
}

# h_ping i j: one bounded ping from node i to node j's overlay address.
# The overlay address of node i: 10.0.1.<token> (the C side: MESH_OVERLAY_NET in mesh/mesh.h).
H_OVERLAY_NET=10.0.1
h_addr() { echo "$H_OVERLAY_NET.${H_TOKEN[$1]}"; }
h_ping() { h_in "$1" ping -c 1 -W 1 -q "$(h_addr $2)" >/dev/null 2>&1; }

# h_ping_all live...: every ordered pair, up to 3 tries each (first handshakes); prints the
# number that answered.
h_ping_all() {
	local i j k ok=0
	for i in "$@"; do for j in "$@"; do
		[ "$i" = "$j" ] && continue
		for k in 1 2 3; do h_ping "$i" "$j" && { ok=$((ok + 1)); break; }; done
	done; done
	echo "$ok"
}

# h_proxy_start NAME PORT: netns-harness/rpc-proxy.py in the hub namespace on
# $H_HUB_IP:PORT in front of anvil, pass-through until h_proxy_set says otherwise. Its URL
# is H_PROXY_URL[NAME]; point node i at it with H_RPC_NODE[i]=... before h_agent_start.
h_proxy_start() {
	local name=$1 port=$2 t
	echo '{}' >"$H_RUN/proxy-$name.json"
	: >"$H_RUN/proxy-$name.log"
	ip netns exec "${H_PREFIX}hub" /usr/bin/python3 "$H_ROOT/netns-harness/rpc-proxy.py" \
		--listen "$H_HUB_IP:$port" --upstream "$H_RPC" --control "$H_RUN/proxy-$name.json" \
		--log "$H_RUN/proxy-$name.log" --records "$H_RUN/records-$name" >"$H_RUN/proxy-$name.err" 2>&1 &
	H_OTHER_PIDS+=($!)
	H_PROXY_URL[$name]=http://$H_HUB_IP:$port
	for t in $(seq 1 100); do
		ip netns exec "${H_PREFIX}hub" ss -Hltn "sport = :$port" | grep -q LISTEN && return 0
		sleep 0.05
	done
	h_die "rpc proxy $name did not start ($H_RUN/proxy-$name.err)"
}

# h_proxy_set NAME JSON: the proxy's behaviour from its next request on (rpc-proxy.py's
# docstring lists the keys; '{}' is pass-through). Written whole, then renamed.
h_proxy_set() {
	printf '%s\n' "$2" >"$H_RUN/proxy-$1.json.tmp"
	mv "$H_RUN/proxy-$1.json.tmp" "$H_RUN/proxy-$1.json"
}
