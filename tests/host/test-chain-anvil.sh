#!/bin/bash
# chain/ against a real anvil: deploy the registry contract, register a peer with a
# transaction our code signs, read it back through our reader and through cast, decode a
# revert, split eth_getLogs, and follow the registry across an evm_snapshot/evm_revert reorg.
# Records are signed with cast (an independent signer); only our code sends and reads.
set -euo pipefail
# BIN may be e.g. a SANITIZE=address,undefined build (DSTACK_P2P_BIN).
. "$(dirname "$0")/anvil-env.bash" chain-anvil
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/watch.log" ] && sed 's/^/  watch: /' "$tmp/watch.log" >&2; exit 1; }

[ -x "$BIN" ] || fail "build/dstack-p2p missing: run make"

# ---- anvil on a free loopback port and on an IPC socket in our temp dir
port=$(free_port)
ipc=$tmp/anvil.ipc
"$ANVIL" --host 127.0.0.1 --port "$port" --ipc "$ipc" --silent >"$tmp/anvil.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$ipc" ] && "$CAST" chain-id --rpc-url "http://127.0.0.1:$port" >/dev/null 2>&1 && break; sleep 0.1; done
[ -S "$ipc" ] || fail "anvil did not start"
http=http://127.0.0.1:$port
c() { local sub=$1; shift; "$CAST" "$sub" --rpc-url "$http" "$@"; }
chain() { "$BIN" chain "$@"; }

# anvil's well-known dev accounts 0 (cluster owner) and 1 (pays for the registration).
PAYER_SK=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d
OWNER=$("$CAST" wallet address --private-key $OWNER_SK)
KMS_SK=$(rand32) APP_SK=$(rand32) NODE_SK=$(rand32)
KMS=$("$CAST" wallet address --private-key "$KMS_SK")
INSTANCE=$("$CAST" wallet address --private-key "$(rand32)")

# ---- our reads of chain basics equal cast's, over both transports
[ "$(chain --rpc "$ipc" id)" = "$(c chain-id)" ] || fail "chain id over IPC"
[ "$(chain --rpc "$http" id)" = "$(c chain-id)" ] || fail "chain id over HTTP"
# failover: a dead endpoint first, the live one second
[ "$(chain --rpc "http://127.0.0.1:1,$ipc" id)" = "$(c chain-id)" ] || fail "failover"
[ "$(chain --rpc "$ipc" --json block latest | jq -r .hash)" = "$(c block latest --field hash)" ] \
	|| fail "latest block hash"

# ---- deploy the registry with the project's script, mint token 1, bind our instance
contract=$(KMS_ROOT_ADDRESS=$KMS RPC_URL=$http PRIVATE_KEY=$OWNER_SK QUIET=1 "$ROOT/contracts/deploy.sh") \
	|| fail "contracts/deploy.sh"
c send --private-key $OWNER_SK "$contract" 'mintNodeAccess(address,string)' "$OWNER" node-1 >/dev/null
c send --private-key $OWNER_SK "$contract" 'bindInstance(uint256,address)' 1 "$INSTANCE" >/dev/null
export CLUSTER_CONTRACT=$contract ETH_RPC_URL=$ipc
[ "$(chain kms-root)" = "$(echo "$KMS" | tr A-F a-f)" ] || fail "kmsRoot()"
chain --json instance "$INSTANCE" | jq -e '.token == 1 and .nonce == 0 and .registered == false' \
	>/dev/null || fail "instance views before registration"

# ---- a signed record (docs/registry.md), every signature made by cast
pub64() { "$CAST" wallet public-key --private-key "$1" | sed 's/^0x//'; }
compress() { local y=${1:64:64}; case ${y: -1} in [02468ace]) echo "02${1:0:64}" ;; *) echo "03${1:0:64}" ;; esac; }
sign() { "$CAST" wallet sign --no-hash --private-key "$1" "$2"; }
NODE_PUB=$(pub64 "$NODE_SK") APP_PUB=$(pub64 "$APP_SK")
app_sig=$(sign "$APP_SK" "$("$CAST" keccak "dstack-p2p:node:$(compress "$NODE_PUB")")")
kms_msg=0x$(printf 'dstack-kms-issued:' | od -An -tx1 | tr -d ' \n')${contract#0x}$(compress "$APP_PUB")
kms_sig=$(sign "$KMS_SK" "$("$CAST" keccak "$kms_msg")")

make_record() { # nonce endpoint -> record JSON on stdout
	local nonce=$1 endpoint=$2 wg digest
	wg=0x$(printf '%064x' "$nonce")
	digest=$("$CAST" keccak "$("$CAST" abi-encode 'f(bytes32,uint256,address,address,bytes32,bytes32,uint8,uint64)' \
		"$("$CAST" keccak dstack-p2p.PeerRecord.v1)" "$(c chain-id)" "$contract" "$INSTANCE" "$wg" \
		"$("$CAST" keccak "$endpoint")" 1 "$nonce")")
	jq -n --arg i "$INSTANCE" --arg w "$wg" --arg e "$endpoint" --argjson n "$nonce" \
		--arg np "0x$NODE_PUB" --arg ap "0x$APP_PUB" --arg asig "$app_sig" --arg ks "$kms_sig" \
		--arg ns "$(sign "$NODE_SK" "$digest")" \
		'{instanceId:$i, wgPublicKey:$w, endpoint:$e, mode:1, nonce:$n, nodePubkey:$np,
		  appPubkey:$ap, appSignature:$asig, kmsSignature:$ks, nodeSignature:$ns}'
}
make_record 1 "203.0.113.10:51820" >"$tmp/rec1.json"

# Our registerPeer calldata equals cast's encoding of the same tuple.
tuple=$(jq -r '"(\(.instanceId),\(.wgPublicKey),\(.endpoint),\(.mode),\(.nonce),\(.nodePubkey),\(.appPubkey),\(.appSignature),\(.kmsSignature),\(.nodeSignature))"' "$tmp/rec1.json")
want=$("$CAST" calldata 'registerPeer((address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes))' "$tuple")
[ "$(chain calldata --record "$tmp/rec1.json")" = "$want" ] || fail "registerPeer calldata differs from cast"

# ---- follow the registry from before the registration
snapshot=$(c rpc evm_snapshot | tr -d '"')
# "$BIN" itself, not the chain function: then $! is the watcher and the cleanup stops it
"$BIN" chain watch --interval 100 --count 600 >"$tmp/watch.log" 2>&1 &
pids+=($!)
wait_watch() { # regex: bounded wait for a watcher line
	for _ in $(seq 100); do grep -Eq "$1" "$tmp/watch.log" && return 0; sleep 0.1; done
	fail "watcher never printed /$1/"
}
wait_watch ' peers 0 '

# ---- register through our signer and sender (over HTTP this time)
ETH_PRIVATE_KEY=$PAYER_SK chain --rpc "$http" send-registration --record "$tmp/rec1.json" \
	>"$tmp/send.out" || fail "send-registration: $(cat "$tmp/send.out")"
tx=$(awk '{print $2}' "$tmp/send.out")
[ "$(c receipt --json "$tx" | jq -r .status)" = 0x1 ] || fail "receipt status per cast"
[ "$(c call "$contract" 'instanceIsRegistered(address)(bool)' "$INSTANCE")" = true ] || fail "not registered per cast"
[ "$(c call "$contract" 'nonceOf(address)(uint64)' "$INSTANCE")" = 1 ] || fail "nonce per cast"

# Our reader and cast's decoding of getPeers() agree field by field.
chain peers --json >"$tmp/ours.json"
c call "$contract" 'getPeers()((uint256,address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes)[])' \
	--json >"$tmp/cast.json"
python3 - "$tmp/ours.json" "$tmp/cast.json" <<'PY' || fail "getPeers: our reader and cast disagree"
import json, sys
ours = json.load(open(sys.argv[1]))
raw = json.load(open(sys.argv[2]))[0]
cast = json.loads(raw) if isinstance(raw, str) else raw
keys = ["tokenId", "instanceId", "wgPublicKey", "endpoint", "mode", "nonce", "nodePubkey",
        "appPubkey", "appSignature", "kmsSignature", "nodeSignature"]
assert len(ours) == len(cast) == 1, (len(ours), len(cast))
for o, c in zip(ours, cast):
    for k, v in zip(keys, c):
        a, b = str(o[k]).lower(), str(v).lower()
        assert a == b, (k, a, b)
PY
wait_watch ' peers 1 '

# A replayed record is refused by the contract, and we name the custom error.
if ETH_PRIVATE_KEY=$PAYER_SK chain send-registration --record "$tmp/rec1.json" 2>"$tmp/err" >/dev/null; then
	fail "a stale nonce was accepted"
fi
grep -q 'StaleNonce(nonce=1, storedNonce=1)' "$tmp/err" || fail "revert not decoded: $(cat "$tmp/err")"

# The same, sent without estimation: now the transaction is mined, fails, and the reason
# comes from replaying it on its block.
if ETH_PRIVATE_KEY=$PAYER_SK chain send-registration --gas-limit 900000 --record "$tmp/rec1.json" \
	2>"$tmp/err" >/dev/null; then
	fail "a stale nonce was accepted on chain"
fi
grep -q 'StaleNonce(nonce=1, storedNonce=1)' "$tmp/err" || fail "mined revert not explained: $(cat "$tmp/err")"
failed_tx=$(c block latest --json | jq -r '.transactions[0]')
[ "$(c receipt --json "$failed_tx" | jq -r .status)" = 0x0 ] || fail "the stale registration was not mined as a failure"

# eth_getLogs split into ranges of 2 blocks returns what cast sees in one query.
want=$(c logs --from-block 0 --address "$contract" --json | jq length)
got=$(chain --max-log-range 2 logs --from 0 | wc -l)
[ "$want" -gt 0 ] && [ "$got" = "$want" ] || fail "logs: ours $got, cast $want"

# ---- reorg: back to before the registration; the follower must notice and re-read
c rpc evm_revert "$snapshot" >/dev/null
c rpc evm_mine >/dev/null
c rpc evm_mine >/dev/null
wait_watch ' peers 0 reorgs [1-9]'
[ "$(c call "$contract" 'instanceIsRegistered(address)(bool)' "$INSTANCE")" = false ] || fail "revert"

# ... and the chain moves on: a new registration after the reorg is followed too.
make_record 2 "203.0.113.11:51820" >"$tmp/rec2.json"
ETH_PRIVATE_KEY=$PAYER_SK chain send-registration --record "$tmp/rec2.json" >/dev/null \
	|| fail "registration after the reorg"
wait_watch ' peers 1 reorgs [1-9]'
[ "$(chain peers | awk '{print $5}')" = 2 ] || fail "nonce after the reorg: $(chain peers)"

# ---- an idle registry costs one round trip per poll: 2 for the first (chain id + head,
# then getPeers), then 1 each, with anvil mining nothing in between.
chain watch --interval 10 --count 20 >"$tmp/idle.log" || fail "idle watch"
grep -q '^watch: 20 polls, 21 round trips, 1 full reads' "$tmp/idle.log" \
	|| fail "idle polls: $(tail -1 "$tmp/idle.log")"

# ---- the wrong chain is refused
if chain --chain-id 1 watch --count 1 >/dev/null 2>"$tmp/err"; then fail "wrong chain id accepted"; fi
grep -q 'not the expected 1' "$tmp/err" || fail "wrong chain message: $(cat "$tmp/err")"

echo "chain on anvil: deploy, register, read back, revert decoding, log splitting, reorg: ok"
