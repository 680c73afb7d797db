# SPDX-License-Identifier: MIT
# Guest script (busybox sh, in the qemu VM): KERNEL WireGuard created from inside the
# container image. The root filesystem of `make image` (its one layer, put in the VM by
# netns-harness/with-vm-chain.sh) runs as a container in node 2's namespace: its own
# mount, PID, IPC and UTS namespaces, chrooted into the layer, with every capability but
# CAP_NET_ADMIN dropped from its bounding set by capsh (podman does not install in this
# guest), the guest agent's socket, the chain's socket and a /run/dstack-p2p volume bound
# in as the compose files do. Node 1's agent runs outside, from the build tree.
# Asserts: the container's agent holds CAP_NET_ADMIN and nothing else (/proc status),
# its interface is a kernel WireGuard link (ip -d link), both devices list each other
# with 10.0.1.<token>/32 (wg show), and the nodes ping both ways.
IP=/usr/sbin/ip
M=/opt/mesh
L=/opt/image/layer.tar.gz
T=/tmp/image-kernel
if [ ! -f "$M/mesh.env" ] || [ ! -f "$L" ]; then
	echo "SKIP: no prepared chain or image layer in this VM (run through netns-harness/with-vm-chain.sh, as make check does)"
	exit 0
fi
. "$M/mesh.env"
. "${REPO:-.}/netns-harness/vm/lib-mesh.sh"
mesh_chain_up i 1 2

# Node 1: the agent from the build tree, outside any container.
$IP netns exec in1 env DSTACK_SIMULATOR_ENDPOINT="$T/sim1.sock" CLUSTER_CONTRACT="$CONTRACT" \
	ETH_RPC_URL="ipc://$T/anvil.ipc" P2P_INTERFACE=ik1 P2P_ENDPOINT=192.168.77.1:51830 \
	P2P_LISTEN_PORT=51830 P2P_POLL_MS=300 P2P_KEEPALIVE=5 P2P_TX_KEY_FILE="$T/txkey1" \
	DSTACK_P2P_CONTROL="$T/ctl1.sock" dstack-p2p agent >>"$T/agent1.log" 2>&1 &
pids="$pids $!"

# Node 2: the image's root filesystem as a container.
R=$T/root
mkdir -p "$R"
tar -xzf "$L" -C "$R" || fail "unpacking the image layer"
[ -x "$R/usr/bin/dstack-p2p" ] || fail "no agent in the layer"
mkdir -p "$R/run/dstack-p2p" "$R/run/chain" "$R/proc" "$R/dev" "$R/tmp"
(umask 077 && var TXKEY 2 >"$R/run/dstack-p2p/txkey")  # the agent refuses a key file others can read
: >"$R/run/dstack.sock"
: >"$R/run/chain/anvil.ipc"
capsh=$(command -v capsh) || fail "no capsh in this VM"
keep=cap_net_admin
drop=$("$capsh" --print | sed -n 's/^Bounding set =//p' | tr ',' '\n' | grep -vx "$keep" | tr '\n' ',' | sed 's/,$//')
[ -n "$drop" ] || fail "capsh lists no bounding set"
# What a runtime does before it starts the container's process: a private mount
# namespace with /proc, a minimal /dev and the compose files' mounts, then chroot and the
# capabilities dropped, the image's /bin/sh exec'ing the agent (PID 1's child: busybox
# unshare forks).
cat >"$T/container.sh" <<-EOS
	mount --make-rprivate / 2>/dev/null
	mount -t proc proc "$R/proc"
	mount -t tmpfs -o mode=755 dev "$R/dev"
	for d in null zero random urandom; do touch "$R/dev/\$d"; mount -o bind "/dev/\$d" "$R/dev/\$d"; done
	mount -o bind "$T/sim2.sock" "$R/run/dstack.sock"
	mount -o bind "$T/anvil.ipc" "$R/run/chain/anvil.ipc"
	exec $capsh --chroot="$R" --drop="$drop" --shell=/bin/sh -- -c 'exec dstack-p2p agent'
EOS
$IP netns exec in2 env -i PATH=/usr/bin:/bin CLUSTER_CONTRACT="$CONTRACT" \
	ETH_RPC_URL=ipc:///run/chain/anvil.ipc P2P_INTERFACE=ik2 P2P_ENDPOINT=192.168.77.2:51830 \
	P2P_LISTEN_PORT=51830 P2P_POLL_MS=300 P2P_KEEPALIVE=5 P2P_TX_KEY_FILE=/run/dstack-p2p/txkey \
	P2P_PEERS_FILE=/run/dstack-p2p/peers \
	unshare -m -p -i -u -f sh "$T/container.sh" >>"$T/agent2.log" 2>&1 &
pids="$pids $!"

for i in 1 2; do
	ctl=$T/ctl1.sock
	[ $i = 2 ] && ctl=$R/run/dstack-p2p/control.sock
	DSTACK_P2P_CONTROL=$ctl dstack-p2p wait --timeout 120 >/dev/null || fail "node $i did not register"
done
echo "both agents registered"

# The container's agent: its capabilities as the kernel reports them.
apid=""
for p in $(ls /proc | grep -E '^[0-9]+$'); do
	[ "$(readlink /proc/$p/exe 2>/dev/null)" = "$R/usr/bin/dstack-p2p" ] && apid=$p
done
[ -n "$apid" ] || fail "no agent process from the image's root"
[ "$(readlink /proc/$apid/root)" = "$R" ] || fail "the agent's root is $(readlink /proc/$apid/root)"
want=$(printf '%016x' $((1 << 12)))  # CAP_NET_ADMIN is 12
for f in CapEff CapPrm CapBnd; do
	have=$(sed -n "s/^$f:[[:space:]]*//p" /proc/$apid/status)
	[ "$have" = "$want" ] || fail "the container's agent has $f $have (want $want: CAP_NET_ADMIN alone)"
done
[ "$(readlink /proc/$apid/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] || fail "the container shares our mounts"
echo "the container's agent (pid $apid) runs with CAP_NET_ADMIN alone, chrooted into the image"

$IP -n in2 -d link show ik2 | grep -q wireguard || fail "ik2 is not a kernel WireGuard link: $($IP -n in2 -d link show ik2 2>&1)"
n=0
until [ "$($IP netns exec in2 wg show ik2 allowed-ips)" = "$($IP netns exec in1 wg show ik1 public-key)	10.0.1.$TOKEN_1/32" ] &&
	[ "$($IP netns exec in1 wg show ik1 allowed-ips)" = "$($IP netns exec in2 wg show ik2 public-key)	10.0.1.$TOKEN_2/32" ]; do
	n=$((n + 1))
	[ $n -lt 300 ] || fail "the devices do not list each other: $($IP netns exec in2 wg show ik2 allowed-ips)"
	sleep 0.1
done
echo "kernel WireGuard made by the container's agent lists node 1, and node 1 lists it"
for pair in "1 2" "2 1"; do
	set -- $pair
	k=0
	until $IP netns exec in$1 ping -c 1 -W 2 -q 10.0.1.$(var TOKEN $2) >/dev/null 2>&1; do
		k=$((k + 1))
		[ $k -lt 8 ] || fail "node $1 cannot ping node $2 over the kernel mesh"
	done
done
echo "PASS: the image's agent, with CAP_NET_ADMIN alone, made kernel WireGuard and pings node 1 both ways"
