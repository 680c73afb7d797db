#!/bin/bash
# netlink/ benchmark, ours against wg(8) like with like (whole command against whole
# command, call against call; see netns-harness/vm/bench-netlink-guest.sh):
#  1. kernel WireGuard: boots the test VM once and runs the guest script there
#     (programming 1,000 and 10,000 peers, one known change against `wg set`, dump+diff+
#     apply against `wg syncconf`, dump, removal of half);
#  2. natively on this machine against wireguard-go over UAPI, where the TCG guest is
#     too slow for its figures to mean much (the same script, NETLINK_BENCH_BACKEND=uapi).
# Figures are printed, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
O=${O:-build}
echo "netlink: kernel WireGuard in the test VM (TCG: several times slower than the host)"
VM_LOG=$O/vm/bench-netlink.log netns-harness/vm/run-tests.sh netns-harness/vm/bench-netlink-guest.sh |
	sed -n 's/^\[bench-netlink-guest\] //p'
echo "netlink: natively, wireguard-go $(wireguard-go --version 2>/dev/null | head -1 | awk '{ print $NF }') over UAPI"
make -s "$O/bench/netlink-wgtool" "$O/bench/wg-call-window.so"
id=$(printf '%04x' $((RANDOM ^ $$ & 0xffff)))
REPO=$PWD IP=ip NETLINK_BENCH_BACKEND=uapi NETLINK_BENCH_IF=wgb$id \
	bash netns-harness/vm/bench-netlink-guest.sh
