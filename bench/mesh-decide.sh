#!/bin/bash
# SPDX-License-Identifier: MIT
# The agent's every-poll device check at the registry's limit (254 peers): mesh_decide in
# process, then the dump of a real interface holding 254 peers (kernel WireGuard if the
# kernel has it, else wireguard-go) in a network namespace of its own. Figures only.
set -euo pipefail
cd "$(dirname "$0")/.."
O=${O:-build}
make -s "$O/bench/mesh-decide" "$O/bench/netlink-wgtool" >/dev/null
"$O/bench/mesh-decide" 500
if [ "$(id -u)" != 0 ]; then
	echo "mesh: dump of 254 peers: needs root (a network namespace); skipped"
	exit 0
fi
IF=bd$$
CONF=$(mktemp /tmp/bench-decide.XXXXXX)
trap 'rm -f "$CONF"' EXIT
"$O/bench/netlink-wgtool" gen-conf 254 1 7 > "$CONF"
# The interface lives and dies with the namespace unshare makes (wireguard-go too).
unshare -n bash -c '
	set -e
	"$1/bench/netlink-wgtool" up "$2" >/dev/null 2>&1
	"$1/bench/netlink-wgtool" setconf "$2" "$3"
	"$1/bench/mesh-decide" 1 "$2" | tail -1
	"$1/bench/netlink-wgtool" link-del "$2" 2>/dev/null || true
' _ "$O" "$IF" "$CONF"
