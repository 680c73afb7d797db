# Sourced by the tests/vm/test-netlink-*.sh guest scripts (busybox sh): helpers to run
# in namespaces and to compare what our code reads against what wg(8) reads.
IP=/usr/sbin/ip
WGTOOL=${REPO:-.}/build/bench/netlink-wgtool
T=/tmp/netlink-test.$$
mkdir -p "$T"

fail() {
	echo "FAIL: $*"
	exit 1
}
in_ns() {
	local where=$1
	shift
	$IP netns exec "$where" "$@"
}
elapsed_since() { awk -v a="$1" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.2f", b - a }'; }
now() { cut -d' ' -f1 /proc/uptime; }

# wg show dump with secrets replaced the way our dump prints them: "(hidden)".
wg_dump_hidden() {
	in_ns "$1" wg show "$2" dump | awk -F'\t' 'BEGIN { OFS = "\t" }
		NR == 1 { if ($1 != "(none)") $1 = "(hidden)"; print; next }
		{ if ($2 != "(none)") $2 = "(hidden)"; print }'
}

# Our dump parser must agree with wg show dump, line for line.
assert_dumps_agree() {
	local ns=$1 ifname=$2 what=$3
	in_ns "$ns" "$WGTOOL" -b kernel dump "$ifname" >"$T/ours" || fail "$what: our dump failed"
	wg_dump_hidden "$ns" "$ifname" >"$T/wg"
	if ! cmp -s "$T/ours" "$T/wg"; then
		diff "$T/wg" "$T/ours" | head -20
		fail "$what: our dump differs from wg show dump"
	fi
}

# The peers and allowed IPs wg reports are exactly those of a wg config file.
assert_matches_conf() {
	local ns=$1 ifname=$2 conf=$3 what=$4
	sed -n 's/^PublicKey = //p' "$conf" | sort >"$T/want-keys"
	in_ns "$ns" wg show "$ifname" peers | sort >"$T/got-keys"
	cmp -s "$T/want-keys" "$T/got-keys" ||
		fail "$what: peers differ ($(wc -l <"$T/want-keys") wanted, $(wc -l <"$T/got-keys") present)"
	sed -n 's/^AllowedIPs = //p' "$conf" | tr -d ' ' | tr ',' '\n' | sort >"$T/want-ips"
	in_ns "$ns" wg show "$ifname" allowed-ips | cut -f2 | tr ' ' '\n' | grep -v '^(none)$' | sort >"$T/got-ips"
	cmp -s "$T/want-ips" "$T/got-ips" ||
		fail "$what: allowed IPs differ ($(wc -l <"$T/want-ips") wanted, $(wc -l <"$T/got-ips") present)"
}
