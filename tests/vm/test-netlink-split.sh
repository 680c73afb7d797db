#!/bin/sh
# Message splitting against the kernel, the cases of its own netns.sh: one peer with
# 130,560 allowed IPs, 40 peers x 52 IPs, exactly 23 peers (systemd#11404), 1,000 and
# 10,000 peers; then remove half, change one endpoint. At every step wg(8) must see
# exactly the file's peers and allowed IPs, and our dump parser must agree with it.
set -e
. "${REPO:-.}/netns-harness/vm/lib-netlink.sh"
ns=nlsplit
cleanup() {
	$IP netns del $ns 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
$IP netns add $ns
in_ns $ns "$WGTOOL" link-add wg0

# Each case with our default message size, and with 1 KiB messages so that message
# boundaries fall everywhere: between peers and inside allowed-IP lists.
load_case() {
	local what=$1 peers=$2 ips=$3 seed=$4
	"$WGTOOL" gen-conf "$peers" "$ips" "$seed" >"$T/$seed.conf"
	for size in "" 1024; do
		t0=$(now)
		in_ns $ns "$WGTOOL" -v ${size:+-m $size} setconf wg0 "$T/$seed.conf" 2>"$T/stats"
		echo "$what, ${size:-default} message size: $(cat "$T/stats") ($(elapsed_since "$t0") s)"
		assert_matches_conf $ns wg0 "$T/$seed.conf" "$what"
		assert_dumps_agree $ns wg0 "$what"
	done
}

load_case "1 peer x 130560 IPs" 1 130560 11
load_case "40 peers x 52 IPs" 40 52 12
load_case "exactly 23 peers" 23 1 13
load_case "1000 peers" 1000 1 14
load_case "${SPLIT_PEERS:-10000} peers" "${SPLIT_PEERS:-10000}" 1 15

# Remove every second peer, incrementally (no REPLACE_PEERS).
in_ns $ns wg show wg0 peers | awk 'NR % 2 == 0' >"$T/remove"
t0=$(now)
in_ns $ns "$WGTOOL" -v remove wg0 "$T/remove" 2>"$T/stats"
echo "remove $(wc -l <"$T/remove") peers: $(cat "$T/stats") ($(elapsed_since "$t0") s)"
in_ns $ns wg show wg0 peers | sort >"$T/left"
[ "$(wc -l <"$T/left")" -eq $((${SPLIT_PEERS:-10000} - $(wc -l <"$T/remove"))) ] || fail "wrong number of peers left"
if grep -Fxf "$T/remove" "$T/left" >/dev/null; then fail "a removed peer is still there"; fi
assert_dumps_agree $ns wg0 "after removing half"

# One endpoint changes; every other peer stays exactly as it was.
key=$(head -1 "$T/left")
in_ns $ns wg show wg0 dump | grep -v "^$key" >"$T/before"
in_ns $ns "$WGTOOL" -v endpoint wg0 "$key" 192.0.2.77:7777 2>"$T/stats"
echo "change one endpoint: $(cat "$T/stats")"
grep -q 'messages=1 ' "$T/stats" || fail "one endpoint change took more than one message"
in_ns $ns wg show wg0 endpoints | grep -q "^$key	192.0.2.77:7777$" || fail "endpoint not changed"
in_ns $ns wg show wg0 dump | grep -v "^$key" | cmp -s - "$T/before" || fail "other peers changed"
assert_dumps_agree $ns wg0 "after one endpoint change"
echo "split: ok"
