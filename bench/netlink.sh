#!/bin/bash
# netlink/ benchmark: boots the test VM once (kernel WireGuard needs it) and runs
# netns-harness/vm/bench-netlink-guest.sh there: programming 1,000 and 10,000 peers,
# changing one peer of 10,000, dumping 10,000 peers, ours against wg(8), with the
# netlink messages our code used. Figures are printed, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
VM_LOG=${O:-build}/vm/bench-netlink.log netns-harness/vm/run-tests.sh netns-harness/vm/bench-netlink-guest.sh |
	sed -n 's/^\[bench-netlink-guest\] //p'
