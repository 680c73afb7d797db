# SPDX-License-Identifier: MIT
# Sourced by the guest scripts that run agents on the chain netns-harness/with-vm-chain.sh
# prepared (busybox sh, in the VM), after they set IP, M (/opt/mesh), T (their scratch
# folder) and loaded $M/mesh.env: fail, elapsed, var, the pids killed on exit, and
# mesh_chain_up.
mkdir -p "$T"
fail() {
	echo "FAIL: $*"
	for f in "$T"/agent*.log; do [ -f "$f" ] && { echo "--- $f"; tail -12 "$f"; }; done
	exit 1
}
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT
t0=$(cut -d' ' -f1 /proc/uptime)
elapsed() { awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f s", b - a }'; }
var() { eval "echo \$$1_$2"; }

# mesh_chain_up PREFIX NODE...: anvil from the prepared state on $T/anvil.ipc; the
# underlay, a bridge in namespace PREFIXhub and one veth per node namespace PREFIXn<i>
# (eth0 192.168.77.<i>); a guest-agent simulator per node on $T/sim<i>.sock and its
# funded key in $T/txkey<i>.
mesh_chain_up() {
	local p=$1 i n
	shift
	"$ANVIL" --load-state "$M/anvil-state.json" --ipc "$T/anvil.ipc" --port 0 --silent >"$T/anvil.log" 2>&1 &
	pids="$pids $!"
	echo "$KMS_KEY" >"$T/kms.key"
	$IP netns add ${p}hub
	$IP -n ${p}hub link add br0 type bridge
	$IP -n ${p}hub link set br0 up
	for i in "$@"; do
		$IP netns add ${p}n$i
		$IP link add ${p}v$i netns ${p}hub type veth peer name eth0 netns ${p}n$i
		$IP -n ${p}hub link set ${p}v$i master br0 up
		$IP -n ${p}n$i link set lo up
		$IP -n ${p}n$i addr add 192.168.77.$i/24 dev eth0
		$IP -n ${p}n$i link set eth0 up
		dstack-sim --kms-root-key-file "$T/kms.key" --app-id "$CONTRACT" --instance-id "$(var INSTANCE $i)" \
			--socket "$T/sim$i.sock" >"$T/sim$i.log" 2>&1 &
		pids="$pids $!"
		(umask 077 && var TXKEY $i >"$T/txkey$i")  # the agent refuses a key file others can read
	done
	n=0
	while [ ! -S "$T/anvil.ipc" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
	[ -S "$T/anvil.ipc" ] || fail "anvil did not start: $(tail -3 "$T/anvil.log")"
}
