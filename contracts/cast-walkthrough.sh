#!/usr/bin/env bash
# Every operator action of docs/contracts.md, run with cast against a throw-away anvil (or RPC_URL):
# deploy, set policy, mint, bind, build + sign + relay a registration, read, vote, heartbeat, burn.
# It doubles as a reference for the record signature chain in plain shell. Exits non-zero on a failure.
#
#   ./cast-walkthrough.sh            # starts anvil on a random port, prints each step
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
bin=${FOUNDRY_BIN:-$here/../node_modules/.bin}
cast=$bin/cast

if [ -z "${RPC_URL:-}" ]; then
    port=$((30000 + RANDOM % 10000))
    "$bin/anvil" --port "$port" --silent >/dev/null 2>&1 &
    anvil_pid=$!
    export RPC_URL=http://127.0.0.1:$port
    for _ in $(seq 50); do "$cast" chain-id --rpc-url "$RPC_URL" >/dev/null 2>&1 && break; sleep 0.1; done
fi
export ETH_RPC_URL=$RPC_URL
work=$(mktemp -d)
cleanup() {
    [ -z "${anvil_pid:-}" ] || { kill "$anvil_pid" 2>/dev/null || true; wait "$anvil_pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT

# anvil's accounts 0 (cluster admin) and 1 (a node operator).
ADMIN_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
OPERATOR_KEY=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d
OPERATOR=$("$cast" wallet address "$OPERATOR_KEY")
# Test-only keys standing in for the dstack KMS root, the app key and a node key.
ROOT_KEY=0x$(printf '%064x' 0x1001)
APP_KEY=0x$(printf '%064x' 0x2002)
NODE_KEY=0x$(printf '%064x' 0x3003)
INSTANCE=0x00000000000000000000000000000000000c0ffe

step() { printf '\n== %s\n' "$*"; }
# cast 1.7.1 exits 0 even when gas estimation reverts: judge by the receipt's status instead.
send() {
    local out
    out=$("$cast" send --json "$@" 2>&1) || true
    case $out in
    *'"status":"0x1"'*) return 0 ;;
    *) printf 'send failed: %s\n' "$out" >&2; return 1 ;;
    esac
}

step "deploy (KMS root $("$cast" wallet address "$ROOT_KEY"))"
C=$(KMS_ROOT_ADDRESS=$("$cast" wallet address "$ROOT_KEY") PRIVATE_KEY=$ADMIN_KEY QUIET=1 ./deploy.sh)
echo "cluster: $C"

step "policy: compose hash, boot policy, cluster config, minting policy"
COMPOSE_HASH=0x$(printf 'app-compose.json' | sha256sum | cut -c1-64)
send --private-key "$ADMIN_KEY" "$C" "addComposeHash(bytes32)" "$COMPOSE_HASH"
send --private-key "$ADMIN_KEY" "$C" "setBootPolicy(uint8)" 0                 # 0 strict, 1 permissive
send --private-key "$ADMIN_KEY" "$C" "setClusterConfig(uint256,uint8)" 16 2   # 16 nodes, WireGuard only
send --private-key "$ADMIN_KEY" "$C" "setMintingPolicy(uint256,bool)" 1000000000000000 true

step "mint (public, paying the price) and bind the instance"
send --private-key "$OPERATOR_KEY" --value 1000000000000000 "$C" "mintNodeAccess(address,string)" "$OPERATOR" "node-a"
TOKEN=1 # the lowest free id; NodeAccessMinted(tokenId, to, label) in the receipt says so too
send --private-key "$OPERATOR_KEY" "$C" "bindInstance(uint256,address)" "$TOKEN" "$INSTANCE"
"$cast" call "$C" "tokenOfInstance(address)(uint256)" "$INSTANCE"

step "isAppAllowed as the KMS asks it"
"$cast" call "$C" "isAppAllowed((address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[]))(bool,string)" \
    "($C,$COMPOSE_HASH,$INSTANCE,0x$(printf '%064x' 1),0x$(printf '%064x' 0),0x$(printf '%064x' 0),0x$(printf '%064x' 0),UpToDate,[])"

step "build the signature chain (docs/registry.md)"
compress() { # 0x<x><y> -> 0x02|03<x>
    local k=${1#0x} last
    last=${k:127:1}
    case $last in [02468aceACE]) echo "0x02${k:0:64}" ;; *) echo "0x03${k:0:64}" ;; esac
}
NODE_PUB=$("$cast" wallet public-key --private-key "$NODE_KEY")
APP_PUB=$("$cast" wallet public-key --private-key "$APP_KEY")
node_c=$(compress "$NODE_PUB")
app_c=$(compress "$APP_PUB")
APP_SIG=$("$cast" wallet sign --no-hash --private-key "$APP_KEY" \
    "$("$cast" keccak "dstack-p2p:node:${node_c#0x}")")
KMS_SIG=$("$cast" wallet sign --no-hash --private-key "$ROOT_KEY" \
    "$("$cast" keccak "0x$(printf 'dstack-kms-issued:' | xxd -p | tr -d '\n')${C#0x}${app_c#0x}")")
WG_KEY=0x$(printf 'wireguard public key of node a' | sha256sum | cut -c1-64)
ENDPOINT=198.51.100.7:51820
NONCE=$(( $("$cast" call "$C" "nonceOf(address)(uint64)" "$INSTANCE") + 1 ))
DIGEST=$("$cast" call "$C" "peerRecordDigest(address,bytes32,string,uint8,uint64)(bytes32)" \
    "$INSTANCE" "$WG_KEY" "$ENDPOINT" 1 "$NONCE")
NODE_SIG=$("$cast" wallet sign --no-hash --private-key "$NODE_KEY" "$DIGEST")

step "relay the registration (any account may send it)"
REG="($INSTANCE,$WG_KEY,$ENDPOINT,1,$NONCE,$NODE_PUB,$APP_PUB,$APP_SIG,$KMS_SIG,$NODE_SIG)"
send --private-key "$ADMIN_KEY" "$C" \
    "registerPeer((address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes))" "$REG"
"$cast" call "$C" "instanceIsRegistered(address)(bool)" "$INSTANCE"
"$cast" call "$C" "getPeerEndpoints()(string[])"
"$cast" call "$C" "getPeers()((uint256,address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes)[])" | cut -c1-160

step "a replay of the same record is refused (StaleNonce)"
if send --private-key "$ADMIN_KEY" "$C" \
    "registerPeer((address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes))" "$REG" 2>"$work/replay.err"; then
    echo "replay accepted!" >&2
    exit 1
fi
grep -o 'StaleNonce([0-9, ]*)' "$work/replay.err" | head -n 1

step "leader election: elect, heartbeat, vote"
send --private-key "$OPERATOR_KEY" "$C" "electLeader(uint256)" "$TOKEN"
send --private-key "$OPERATOR_KEY" "$C" "leaderHeartbeat()"
"$cast" call "$C" "currentLeaderTokenId()(uint256)"
"$cast" call "$C" "leadershipExpiry()(uint64)"
send --private-key "$OPERATOR_KEY" "$C" "castVote(uint256,uint256,bool)" "$TOKEN" "$TOKEN" true
echo "leader after the only node's no-confidence vote: $("$cast" call "$C" "currentLeaderTokenId()(uint256)")"

step "burn (holder or admin): the peer is gone"
send --private-key "$ADMIN_KEY" "$C" "burn(uint256)" "$TOKEN"
"$cast" call "$C" "peerCount()(uint256)"
test "$("$cast" call "$C" "instanceIsRegistered(address)(bool)" "$INSTANCE")" = false

step "withdraw mint payments"
send --private-key "$ADMIN_KEY" "$C" "withdraw(address)" "$("$cast" wallet address "$ADMIN_KEY")"
echo "walkthrough ok"
