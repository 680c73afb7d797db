#!/bin/bash
# SPDX-License-Identifier: MIT
# One registry change, by registry size (16, 64, 254 entries): the agent's CPU for the read
# and the decision, its RPC bytes and requests, and the eth_call gas of the reads, for the
# incremental follower (now) against a full getPeers() with every record verified (before).
# A real registry on anvil filled with synthetic peers signed by the run's KMS root
# (build/bench/chain-registry --fill); the RPC goes through a counting proxy (request and
# reply bodies). Figures are printed, never asserted.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CAST=$ROOT/node_modules/.bin/cast
ANVIL=$ROOT/node_modules/.bin/anvil
FILL=$ROOT/build/bench/chain-registry
BENCH=$ROOT/build/bench/registry-change
for b in "$FILL" "$BENCH"; do [ -x "$b" ] || { echo "registry-change: $b missing (make bench builds it)"; exit 1; }; done
SIZES=${REGISTRY_CHANGE_SIZES:-16 64 254}

tmp=$(mktemp -d /tmp/registry-change.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
"$ANVIL" --host 127.0.0.1 --port "$port" --ipc "$tmp/anvil.ipc" --silent >/dev/null 2>&1 &
pids+=($!)
http=http://127.0.0.1:$port
for _ in $(seq 100); do "$CAST" chain-id --rpc-url "$http" >/dev/null 2>&1 && break; sleep 0.1; done

pport=$(free_port)
/usr/bin/python3 "$ROOT/bench/rpc-count-proxy.py" 127.0.0.1 "$pport" "$http" "$tmp/counter" &
pids+=($!)
for _ in $(seq 100); do "$CAST" chain-id --rpc-url "http://127.0.0.1:$pport" >/dev/null 2>&1 && break; sleep 0.1; done

# anvil's dev account 0 owns the cluster; the KMS root is a throwaway key.
export OWNER_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
export KMS_KEY=0x$(openssl rand -hex 32)
kms=$("$CAST" wallet address --private-key "$KMS_KEY")
contract=$(KMS_ROOT_ADDRESS=$kms RPC_URL=$http PRIVATE_KEY=$OWNER_KEY QUIET=1 "$ROOT/contracts/deploy.sh")

# The filler goes to anvil directly (its traffic is not the agent's).
cat >"$tmp/fill.sh" <<SH
#!/bin/bash
if [ "\$1" = gas ]; then
	echo "registry-change: \$("$CAST" call --rpc-url "$http" "$contract" 'peerCount()(uint256)') entries, eth_call gas" \\
		"(eth_estimateGas): getPeers() \$("$CAST" estimate --rpc-url "$http" "$contract" 'getPeers()')," \\
		"getPeerByToken(1) \$("$CAST" estimate --rpc-url "$http" "$contract" 'getPeerByToken(uint256)' 1)"
	exit
fi
exec "$FILL" --fill "\$1" "$tmp/anvil.ipc" "$contract" 2>/dev/null
SH
chmod +x "$tmp/fill.sh"

echo "registry-change: one change = one peer minted, bound and registered (3 blocks, one poll);"
echo "registry-change: median of 3 changes per size; CPU of the read and the decision in process"
"$BENCH" "http://127.0.0.1:$pport" "$contract" "$tmp/counter" "$tmp/fill.sh" $SIZES
