#!/bin/sh
# Guest half of bench/netlink.sh (also run natively against wireguard-go, see below): the
# same peer sets programmed, changed and dumped by our code and by wg(8), like with like:
#   cmd   the whole process, start-up and configuration parsing included, ours against
#         the wg(8) command that does the same (setconf, set, syncconf, show dump);
#   call  the same process from its first WireGuard socket (netlink or UAPI) to its exit,
#         measured for both by one LD_PRELOAD observer (build/bench/wg-call-window.so):
#         the exchange with the kernel, the diff and the output, without start-up/parsing;
#   op    our library call alone, timed inside our tool with the socket already open and
#         the family resolved, as the long-running agent pays it (wg has no such figure).
# Figures only: nothing is asserted.
#   env: NETLINK_BENCH_BACKEND=kernel|uapi (uapi: a wireguard-go per fresh interface)
#        NETLINK_BENCH_IF=wg0  BENCH_PEERS=10000  IP=/usr/sbin/ip  REPO=.
set -e
IP=${IP:-/usr/sbin/ip}
WGTOOL=${REPO:-.}/build/bench/netlink-wgtool
PRELOAD=$(cd "${REPO:-.}" && pwd)/build/bench/wg-call-window.so
BACKEND=${NETLINK_BENCH_BACKEND:-kernel}
IF=${NETLINK_BENCH_IF:-wg0}
T=$(mktemp -d /tmp/netlink-bench.XXXXXX)
ns=nlb$$
cleanup() {
	$IP -n $ns link del $IF 2>/dev/null || true
	$IP netns del $ns 2>/dev/null || true
	rm -rf $T
}
trap cleanup EXIT
$IP netns add $ns
in_ns() { $IP netns exec $ns "$@"; }
# A fresh interface: a kernel link, or a wireguard-go started for it (it exits when its
# link is deleted).
fresh() {
	$IP -n $ns link del $IF 2>/dev/null || true
	if [ "$BACKEND" = uapi ]; then
		for _ in $(seq 50); do [ -S /var/run/wireguard/$IF.sock ] || break; sleep 0.1; done
		in_ns wireguard-go $IF >/dev/null 2>&1
		for _ in $(seq 50); do [ -S /var/run/wireguard/$IF.sock ] && break; sleep 0.1; done
	else
		in_ns "$WGTOOL" link-add $IF
	fi
}
# Runs one command in the namespace under the observer; sets cmd (whole process, ms) and
# call (from its first WireGuard socket to its exit, ms). Our -v also gives op and msgs.
run() {
	"$WGTOOL" timed $IP netns exec $ns env LD_PRELOAD=$PRELOAD "$@" 2>$T/err >/dev/null ||
		{ cat $T/err; exit 1; }
	cmd=$(sed -n 's/^ms=//p' $T/err | tail -1)
	call=$(sed -n 's/^call_ms=//p' $T/err | tail -1)
	msgs=$(sed -n 's/.*messages=\([0-9]*\).*/\1/p' $T/err | head -1)
	op=$(sed -n 's/.*messages=[0-9]* ms=\([0-9]*\).*/\1/p' $T/err | head -1)
}
ours() { run "$WGTOOL" -b $BACKEND -v "$@"; o_cmd=$cmd o_call=$call o_op=$op o_msgs=$msgs; }
theirs() { run wg "$@"; w_cmd=$cmd w_call=$call; }
row() { printf '%-34s %-16s %9s %9s %9s %9s %7s %6s\n' "$@"; }
result() { row "$1" "$2" "$o_cmd" "$w_cmd" "$o_call" "$w_call" "$o_op" "$o_msgs"; }

echo "backend: $BACKEND"
row "operation" "wg(8) equivalent" "ours:cmd" "wg:cmd" "ours:call" "wg:call" "ours:op" "msgs"
n=${BENCH_PEERS:-10000}
for k in 1000 $n; do
	# Without PersistentKeepalive: a peer with one starts handshakes at once, and thousands
	# of them to endpoints nobody answers kept wireguard-go busy (1.2 cores on 2 for 10,000
	# peers) and slowed every later UAPI call of both tools by 10-50x: a handshake storm,
	# not the cost of the calls (docs/netlink.md "Benchmark").
	"$WGTOOL" gen-conf "$k" 1 $((k + 7)) | grep -v '^PersistentKeepalive' >$T/c$k.conf
	fresh
	ours setconf $IF $T/c$k.conf
	fresh
	theirs setconf $IF $T/c$k.conf
	result "program $k peers from empty" "wg setconf"
done

# The n-peer device from wg setconf above. One peer's endpoint changes, the change known.
key=$(in_ns wg show $IF peers | sed -n 77p)
ours endpoint $IF "$key" 192.0.2.201:9999
theirs set $IF peer "$key" endpoint 192.0.2.202:9999
result "change 1 of $n peers (known)" "wg set"
# The change found by reading the device: dump + diff + apply, one peer differs each time.
awk -v k="$key" '$0 == "PublicKey = " k { hit = 1 } hit && /^Endpoint/ { $0 = "Endpoint = 192.0.2.200:9999"; hit = 0 } { print }' \
	$T/c$n.conf >$T/changed.conf
ours syncconf $IF $T/c$n.conf
theirs syncconf $IF $T/changed.conf
result "change 1 of $n (dump+diff+apply)" "wg syncconf"

ours dump $IF
theirs show $IF dump
result "dump $n peers" "wg show dump"

in_ns wg show $IF peers | awk 'NR % 2 == 0' >$T/half
ours remove $IF $T/half
in_ns wg setconf $IF $T/c$n.conf
# shellcheck disable=SC2046 # one word per key and keyword
theirs set $IF $(awk '{ printf "peer %s remove ", $1 }' $T/half)
result "remove $(wc -l <$T/half) of $n peers" "wg set ... remove"

echo "ms. cmd: whole process vs whole process; call: from the first WireGuard socket to exit,"
echo "one LD_PRELOAD observer for both; op: our library call alone, socket open (the agent's"
echo "cost; no wg figure). msgs: requests we sent (a dump counts one); wg uses 4 KiB messages."
if [ "$BACKEND" = kernel ]; then
	t0=$(cut -d' ' -f1 /proc/uptime)
	timeout 30 wg genkey >/dev/null || echo "wg genkey: no key within 30 s (no entropy?)"
	echo "wg genkey: $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.2f", b - a }') s (guest entropy from virtio-rng)"
fi
