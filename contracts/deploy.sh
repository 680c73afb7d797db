#!/usr/bin/env bash
# Deploy DstackClusterNFT to RPC_URL (else ETH_RPC_URL, else anvil on 127.0.0.1:8545); prints the
# address on stdout.
#
#   KMS_ROOT_ADDRESS=0x... [PRIVATE_KEY=0x...] [RPC_URL=http://...] ./deploy.sh
#   addr=$(KMS_ROOT_ADDRESS=0x... ./deploy.sh)      # forge's chatter goes to stderr
#
# PRIVATE_KEY defaults to anvil's first account. Optional policy env (OWNER, COMPOSE_HASH, BOOT_POLICY,
# MAX_NODES, NETWORK_MODES, ALLOW_ANY_DEVICE, MINT_PRICE, PUBLIC_MINTING): see
# script/DeployDstackClusterNFT.s.sol. Set QUIET=1 to drop forge's output entirely.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
forge=${FORGE:-$here/../node_modules/.bin/forge}
export RPC_URL=${RPC_URL:-${ETH_RPC_URL:-http://127.0.0.1:8545}}
export PRIVATE_KEY=${PRIVATE_KEY:-0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80}
: "${KMS_ROOT_ADDRESS:?set KMS_ROOT_ADDRESS to the address of the dstack KMS root key}"
export KMS_ROOT_ADDRESS

# Each run keeps its broadcast record to itself, so parallel deployments (tests) do not collide.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export FOUNDRY_BROADCAST="$work/broadcast"

# forge may (re)compile and rewrites its cache: one forge at a time in this directory.
log="$work/forge.log"
if ! flock "$here/.forge.lock" "$forge" script script/DeployDstackClusterNFT.s.sol:DeployDstackClusterNFT \
        --rpc-url "$RPC_URL" --broadcast --slow >"$log" 2>&1; then
    cat "$log" >&2
    echo "deploy.sh: forge script failed (RPC_URL=$RPC_URL)" >&2
    exit 1
fi
[ "${QUIET:-0}" = 1 ] || cat "$log" >&2

addr=$(sed -n 's/.*DstackClusterNFT deployed at: *\(0x[0-9a-fA-F]\{40\}\).*/\1/p' "$log" | tail -n 1)
if [ -z "$addr" ]; then # forge 1.7.1 can exit 0 after an RPC error: the log says what happened
    [ "${QUIET:-0}" = 1 ] && cat "$log" >&2
    echo "deploy.sh: no address in forge's output (RPC_URL=$RPC_URL)" >&2
    exit 1
fi
echo "$addr"
