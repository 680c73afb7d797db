# Sourced by the netlink test scripts, in the VM (busybox sh) and on the host (bash):
# helpers to run in namespaces, to expect clear errors, and to compare what our code
# reads against what wg(8) reads. Set IP and WGTOOL before sourcing to override.
IP=${IP:-/usr/sbin/ip}
WGTOOL=${WGTOOL:-${REPO:-.}/build/bench/netlink-wgtool}
T=$(mktemp -d) # removed by the scripts' cleanup

fail() {
	echo "FAIL: $*"
	exit 1
}
in_ns() {
	local where=$1
	shift
	$IP netns exec "$where" "$@"
}
# The command must fail, saying want (a grep pattern).
expect_error() {
	local want=$1
	shift
	if "$@" >"$T/out" 2>&1; then fail "'$*' succeeded"; fi
	grep -q "$want" "$T/out" || fail "'$*': expected '$want', got: $(cat "$T/out")"
	echo "error as expected: $(cat "$T/out")"
}
elapsed_since() { awk -v a="$1" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.2f", b - a }'; }
now() { cut -d' ' -f1 /proc/uptime; }

# wg show dump with secrets replaced the way our dump prints them: "(hidden)".
wg_dump_hidden() {
	in_ns "$1" wg show "$2" dump | awk -F'\t' 'BEGIN { OFS = "\t" }
		NR == 1 { if ($1 != "(none)") $1 = "(hidden)"; print; next }
		{ if ($2 != "(none)") $2 = "(hidden)"; print }'
}

# Peer lines sorted, the interface line first: wireguard-go lists peers in map order,
# different on every get. The kernel's order is stable and compared as it is.
sort_peers() { awk 'NR == 1 { print; next } { print | "sort" }'; }

# Our dump parser must agree with wg show dump, line for line (backend: kernel|uapi).
assert_dumps_agree() {
	local ns=$1 ifname=$2 what=$3 backend=${4:-kernel} order=cat
	[ "$backend" = uapi ] && order=sort_peers
	in_ns "$ns" "$WGTOOL" -b "$backend" dump "$ifname" | $order >"$T/ours" ||
		fail "$what: our dump failed"
	wg_dump_hidden "$ns" "$ifname" | $order >"$T/wg"
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
