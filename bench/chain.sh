#!/bin/bash
# chain/ benchmark on a real anvil with the registry contract holding 254 peers: ABI
# decode time of getPeers(), round trips per idle poll, memory of a reader with 254 peers.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CAST=$ROOT/node_modules/.bin/cast
ANVIL=$ROOT/node_modules/.bin/anvil
BENCH=$ROOT/build/bench/chain-registry
[ -x "$BENCH" ] || { echo "chain: $BENCH missing (make bench builds it)"; exit 1; }

tmp=$(mktemp -d /tmp/chain-bench.XXXXXX)
anvil_pid=
cleanup() { [ -n "$anvil_pid" ] && kill "$anvil_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$ANVIL" --host 127.0.0.1 --port "$port" --ipc "$tmp/anvil.ipc" --silent >/dev/null 2>&1 &
anvil_pid=$!
http=http://127.0.0.1:$port
for _ in $(seq 100); do "$CAST" chain-id --rpc-url "$http" >/dev/null 2>&1 && break; sleep 0.1; done

# anvil's dev account 0 owns the cluster; the KMS root is a throwaway key.
export OWNER_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
export KMS_KEY=0x$(openssl rand -hex 32)
kms=$("$CAST" wallet address --private-key "$KMS_KEY")
contract=$(KMS_ROOT_ADDRESS=$kms RPC_URL=$http PRIVATE_KEY=$OWNER_KEY QUIET=1 "$ROOT/contracts/deploy.sh")

echo "chain: over IPC ($tmp/anvil.ipc)"
"$BENCH" "$tmp/anvil.ipc" "$contract"
