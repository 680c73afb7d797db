#!/bin/sh
# Guest half of bench/netlink.sh: the same peer sets programmed, changed and dumped
# by our code and by wg(8), on fresh kernel interfaces in one namespace. Prints a
# table of wall-clock milliseconds (whole processes, config parsing included) and of
# the netlink messages our code used. Figures only: nothing is asserted.
set -e
IP=/usr/sbin/ip
WGTOOL=${REPO:-.}/build/bench/netlink-wgtool
T=/tmp/netlink-bench
ns=nlbench
mkdir -p $T
trap '$IP netns del $ns 2>/dev/null; rm -rf $T' EXIT
$IP netns add $ns
in_ns() { $IP netns exec $ns "$@"; }
fresh() {
	in_ns $IP link del wg0 2>/dev/null || true
	in_ns "$WGTOOL" link-add wg0
}
# ms of one command: "timed" prints ms=..., the command's own stderr (our -v) is kept.
ms_of() {
	"$WGTOOL" timed "$@" 2>$T/err >/dev/null || { cat $T/err; exit 1; }
	sed -n 's/^ms=//p' $T/err | tail -1
}
msgs_of() { sed -n 's/.*messages=\([0-9]*\).*/\1/p' $T/err | head -1; }
# Our operation alone, as a long-running agent pays it (no process start, no parsing).
op_ms_of() { sed -n 's/.*messages=[0-9]* ms=\([0-9]*\).*/\1/p' $T/err | head -1; }
row() { printf '%-42s %9s %10s %10s %10s\n' "$1" "$2" "$3" "$4" "$5"; }

row "operation" "ours: op" "ours: cmd" "wg: cmd" "our msgs"
for n in 1000 ${BENCH_PEERS:-10000}; do
	"$WGTOOL" gen-conf "$n" 1 $((n + 7)) >$T/c$n.conf
	fresh
	ours=$(ms_of $IP netns exec $ns "$WGTOOL" -v setconf wg0 $T/c$n.conf)
	m=$(msgs_of) op=$(op_ms_of)
	fresh
	theirs=$(ms_of $IP netns exec $ns wg setconf wg0 $T/c$n.conf)
	row "program $n peers from empty" "$op" "$ours" "$theirs" "$m"
done

# The 10,000-peer device from wg setconf above; one peer's endpoint changes.
n=${BENCH_PEERS:-10000}
key=$(in_ns wg show wg0 peers | sed -n 77p)
awk -v k="$key" '$0 == "PublicKey = " k { hit = 1 } hit && /^Endpoint/ { $0 = "Endpoint = 192.0.2.200:9999"; hit = 0 } { print }' \
	$T/c$n.conf >$T/changed.conf
ours=$(ms_of $IP netns exec $ns "$WGTOOL" -v endpoint wg0 "$key" 192.0.2.201:9999)
m=$(msgs_of) op=$(op_ms_of)
theirs=$(ms_of $IP netns exec $ns wg syncconf wg0 $T/changed.conf)
row "change 1 of $n peers (known change)" "$op" "$ours" "$theirs" "$m"
ours=$(ms_of $IP netns exec $ns "$WGTOOL" -v syncconf wg0 $T/c$n.conf)
m=$(msgs_of) op=$(op_ms_of)
theirs=$(ms_of $IP netns exec $ns wg syncconf wg0 $T/changed.conf)
row "change 1 of $n peers (dump+diff+apply)" "$op" "$ours" "$theirs" "$m"

ours=$(ms_of $IP netns exec $ns "$WGTOOL" -v dump wg0)
m=$(msgs_of) op=$(op_ms_of)
theirs=$(ms_of $IP netns exec $ns wg show wg0 dump)
row "dump $n peers" "$op" "$ours" "$theirs" "$m"
in_ns wg show wg0 peers | awk 'NR % 2 == 0' >$T/half
ours=$(ms_of $IP netns exec $ns "$WGTOOL" -v remove wg0 $T/half)
m=$(msgs_of) op=$(op_ms_of)
row "remove $(wc -l <$T/half) of $n peers" "$op" "$ours" "-" "$m"
echo "ms, TCG-emulated guest (several times slower than a real machine). op: our library"
echo "call alone, as the agent pays it; cmd: whole process incl. start-up and config parsing."
echo "msgs: netlink requests we sent (a dump counts one). wg setconf uses 4 KiB messages."
