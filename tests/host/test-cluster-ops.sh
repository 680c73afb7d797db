#!/bin/bash
# The whole life of a cluster with `dstack-p2p cluster` and `dstack-p2p relayer` only, on anvil,
# every effect read back with cast: kms-info and register-app against a stand-in KMS with dstack's
# registerApp, deploy, compose and device lists, mint (also two at once), bind, a registration
# through the relayer, status against cast call field by field, policies, public minting and
# withdraw, transfer, unbind, burn, two-step ownership, --watch by event name. Every refused
# action names its decoded error, exits non-zero and sends nothing (the payer's nonce stays);
# fee caps hold against a hostile RPC; the relayer under bad input and a flood spends no gas.
set -euo pipefail
. "$(dirname "$0")/anvil-env.bash" cluster-ops
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/relayer.log" ] && tail -5 "$tmp/relayer.log" | sed 's/^/  relayer: /' >&2; exit 1; }

[ -x "$BIN" ] || fail "build/dstack-p2p missing: run make"
artifacts LocalDstackKms DstackClusterNFT
anvil_start

# anvil's dev accounts: 0 operator, 1 token holder (through a keystore), 2 relayer, 3 new owner.
HOLDER_SK=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d
RELAYER_SK=0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a
NEWOWNER_SK=0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6
OWNER=$(addr $OWNER_SK) HOLDER=$(addr $HOLDER_SK) RELAYER=$(addr $RELAYER_SK) NEWOWNER=$(addr $NEWOWNER_SK)
umask 077
echo "$OWNER_SK" >"$tmp/owner.key"
echo "${RELAYER_SK#0x}" >"$tmp/relayer.key"
echo "$NEWOWNER_SK" >"$tmp/newowner.key"
printf 'correct horse\n' >"$tmp/pw"
"$CAST" wallet import holder --private-key "$HOLDER_SK" --keystore-dir "$tmp" --unsafe-password 'correct horse' >/dev/null
HOLDER_KS=(--keystore "$tmp/holder" --password-file "$tmp/pw")
KMS_SK=$(rand32) APP_SK=$(rand32) NODE_SK=$(rand32)
KMS_ROOT=$(addr "$KMS_SK")
INSTANCE=$(addr "$(rand32)") INSTANCE2=$(addr "$(rand32)")
OTHER=$(addr "$(rand32)") TREASURY=$(addr "$(rand32)")

cl() { "$BIN" cluster "$@"; }
call() { "$CAST" call "$CONTRACT" "$@"; }
nonce_of() { "$CAST" nonce "$1"; }
lower() { tr A-F a-f; }

# refused EXPECTED-TEXT cmd...: exits 1, says EXPECTED-TEXT, and the payer sent nothing.
refused() {
	local want=$1 payer=$2 before after rc=0
	shift 2
	before=$(nonce_of "$payer")
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	[ "$rc" = 1 ] || fail "'$*' exited $rc, not 1: $(cat "$tmp/err")"
	grep -qF -- "$want" "$tmp/err" || fail "'$*' did not say '$want': $(cat "$tmp/err")"
	after=$(nonce_of "$payer")
	[ "$before" = "$after" ] || fail "'$*' was refused but sent a transaction"
	ok "refused with $want: $(sed 's/^dstack-p2p cluster: //' "$tmp/err" | head -1)"
}

# ---- a stand-in KMS with dstack's kmsInfo()/registerApp(address), its root key compressed
kms_pub=$("$CAST" wallet public-key --private-key "$KMS_SK" | sed 's/^0x//')
case ${kms_pub: -1} in [02468ace]) kms_k256=0x02${kms_pub:0:64} ;; *) kms_k256=0x03${kms_pub:0:64} ;; esac
kms_code=$(jq -r .bytecode.object "$art/LocalDstackKms.sol/LocalDstackKms.json")
kms_args=$("$CAST" abi-encode 'c(bytes,string)' "$kms_k256" "gateway-app-1")
KMS=$("$CAST" send --private-key $OWNER_SK --create "$kms_code${kms_args#0x}" --json | jq -r .contractAddress | lower)
[ -n "$KMS" ] && [ "$KMS" != null ] || fail "deploying the stand-in KMS"

cl kms-info --kms "$KMS" --json >"$tmp/kms.json" || fail "kms-info"
[ "$(jq -r .kmsRoot "$tmp/kms.json")" = "$KMS_ROOT" ] || fail "kms-info root $(jq -r .kmsRoot "$tmp/kms.json") != $KMS_ROOT"
[ "$(jq -r .gatewayAppId "$tmp/kms.json")" = gateway-app-1 ] || fail "kms-info gateway app id"
ok "kms-info reads the KMS root $KMS_ROOT from the KMS contract"
# deploy-kms: the same stand-in from the CLI, its root from a key file as dstack-sim reads it
echo "${KMS_SK#0x}" >"$tmp/kms-root.key"
cl deploy-kms --key-file "$tmp/owner.key" --kms-root-key-file "$tmp/kms-root.key" --json >"$tmp/lkms.json" ||
	fail "deploy-kms"
LKMS=$(jq -r .kms "$tmp/lkms.json")
[ "$("$CAST" call "$LKMS" 'kmsInfo()(bytes,bytes,bytes,bytes)' | head -1)" = "$kms_k256" ] ||
	fail "deploy-kms: kmsInfo().k256Pubkey per cast is not the key file's compressed key"
[ "$(jq -r .kmsRoot "$tmp/lkms.json")" = "$KMS_ROOT" ] || fail "deploy-kms names root $(jq -r .kmsRoot "$tmp/lkms.json")"
rc=0; cl deploy-kms --key-file "$tmp/owner.key" 2>"$tmp/err" || rc=$?
[ $rc = 2 ] && grep -q 'needs --kms-root-key-file' "$tmp/err" || fail "deploy-kms without a root key: exit $rc"
ok "deploy-kms: a stand-in KMS at $LKMS whose kmsInfo() holds the key file's root (per cast)"
cl kms-info 2>"$tmp/err" && fail "kms-info without --kms"; grep -q 'needs --kms' "$tmp/err" || fail "kms-info usage"
rc=0; cl kms-info --kms 0x1234 2>/dev/null || rc=$?; [ $rc = 2 ] || fail "a bad --kms exits $rc, not 2"

# ---- deploy under that KMS (root read from it), strict boot, at most 3 nodes
COMPOSE=$(rand32) DEVICE=$(rand32) DEVICE2=$(rand32) COMPOSE2=$(rand32)
cl deploy --key-file "$tmp/owner.key" --kms "$KMS" --max-nodes 3 --compose-hash "$COMPOSE" \
	--json >"$tmp/deploy.json" 2>"$tmp/err" || fail "deploy: $(cat "$tmp/err")"
CONTRACT=$(jq -r .contract "$tmp/deploy.json" | tail -1)
export CLUSTER_CONTRACT=$CONTRACT DSTACK_P2P_KEY_FILE=$tmp/owner.key
[ "$(call 'kmsRoot()(address)' | lower)" = "$KMS_ROOT" ] || fail "deployed kmsRoot"
[ "$(call 'owner()(address)' | lower)" = "$OWNER" ] || fail "deployed owner"
[ "$(call 'maxNodes()(uint256)')" = 3 ] || fail "deployed maxNodes"
[ "$(call 'allowedComposeHashes(bytes32)(bool)' "$COMPOSE")" = true ] || fail "deployed compose hash"
ok "deploy: $CONTRACT, root from the KMS, max nodes 3, compose hash allowed"

cl register-app --kms "$KMS" >/dev/null || fail "register-app"
[ "$("$CAST" call "$KMS" 'registeredApps(address)(bool)' "$CONTRACT")" = true ] || fail "registeredApps per cast"
cl register-app --kms "$KMS" | grep -q 'already registered' || fail "register-app twice"
ok "register-app: the KMS lists the cluster"

# ---- allow lists
cl allow-device "$DEVICE" >/dev/null && [ "$(call 'allowedDeviceIds(bytes32)(bool)' "$DEVICE")" = true ] || fail "allow-device"
cl remove-device "$DEVICE" >/dev/null && [ "$(call 'allowedDeviceIds(bytes32)(bool)' "$DEVICE")" = false ] || fail "remove-device"
cl remove-compose "$COMPOSE" >/dev/null && [ "$(call 'allowedComposeHashes(bytes32)(bool)' "$COMPOSE")" = false ] || fail "remove-compose"
cl allow-compose "$COMPOSE" >/dev/null && [ "$(call 'allowedComposeHashes(bytes32)(bool)' "$COMPOSE")" = true ] || fail "allow-compose"
cl allow-device "$DEVICE2" >/dev/null && cl allow-compose "$COMPOSE2" >/dev/null && cl remove-compose "$COMPOSE2" >/dev/null ||
	fail "a second device and a compose hash added and removed"
ok "allow-compose / remove-compose / allow-device / remove-device"

# ---- watch from here on, by event name
"$BIN" cluster status --watch --json --count 12 --interval 100 >"$tmp/watch.log" 2>&1 &
watch_pid=$!
pids+=($watch_pid)
for _ in $(seq 100); do [ -s "$tmp/watch.log" ] && break; sleep 0.1; done

# ---- mint: two at once (both read the same pending nonce; one moves on), then bind
cl mint "$HOLDER" node-a --json >"$tmp/m1" 2>"$tmp/e1" & m1=$!
cl mint "$HOLDER" node-b --json >"$tmp/m2" 2>"$tmp/e2" & m2=$!
wait $m1 || fail "first of two concurrent mints: $(cat "$tmp/e1")"
wait $m2 || fail "second of two concurrent mints: $(cat "$tmp/e2")"
[ "$(jq -s 'map(.tokenId) | sort | join(",")' -r "$tmp/m1" "$tmp/m2")" = "1,2" ] || fail "minted ids $(cat "$tmp/m1" "$tmp/m2")"
[ "$(call 'ownerOf(uint256)(address)' 1 | lower)" = "$HOLDER" ] || fail "minted token 1 per cast"
labels=$( (call 'labelOf(uint256)(string)' 1; call 'labelOf(uint256)(string)' 2) | sort | tr -d '"\n')
[ "$labels" = node-anode-b ] || fail "minted labels per cast: $labels"
ok "two mints at once both landed (tokens 1 and 2)"
cl mint "$HOLDER" node-c >/dev/null || fail "third mint"
refused 'ClusterFull(maxNodes=3): every token the cluster allows is live' "$OWNER" cl mint "$HOLDER" node-d

cl bind 1 "$INSTANCE" "${HOLDER_KS[@]}" >/dev/null || fail "bind with the holder's keystore"
[ "$(call 'instanceOfToken(uint256)(address)' 1 | lower)" = "$INSTANCE" ] || fail "bind per cast"
ok "bind: token 1 -> $INSTANCE (key from an encrypted keystore)"
refused "NotTokenOwner(tokenId=2, caller=$OWNER): only the token's holder" "$OWNER" cl bind 2 "$INSTANCE2"
refused "InstanceAlreadyBound(instanceId=$INSTANCE, tokenId=1)" "$HOLDER" cl bind 2 "$INSTANCE" "${HOLDER_KS[@]}"
refused 'TokenNotBound(tokenId=2)' "$HOLDER" cl unbind 2 "${HOLDER_KS[@]}"
refused 'ERC721NonexistentToken(tokenId=9): no such token' "$OWNER" cl burn 9
refused 'InvalidLeaderLease(leaseSeconds=0 s)' "$OWNER" cl set-lease 0
refused "OwnableUnauthorizedAccount(account=$HOLDER): only the contract's owner" "$HOLDER" cl set-boot-policy permissive "${HOLDER_KS[@]}"
refused 'MaxNodesBelowLiveTokens(maxNodes=2, liveTokens=3)' "$OWNER" cl set-config 2 both
rc=0; cl bind 1 "$INSTANCE2" --keystore "$tmp/holder" --password-file "$tmp/owner.key" 2>"$tmp/err" || rc=$?
[ $rc = 2 ] && grep -q 'does not open with this password' "$tmp/err" || fail "a wrong keystore password exits $rc: $(cat "$tmp/err")"
rc=0; cl set-boot-policy lax 2>"$tmp/err" || rc=$?
[ $rc = 2 ] && grep -q "strict|permissive" "$tmp/err" || fail "a bad policy word exits $rc"
rc=0; cl mint 0xnothex x 2>/dev/null || rc=$?; [ $rc = 2 ] || fail "a bad address exits $rc"
# The paying key has one loader (ops_key_load): a key file others may read is refused, as
# the agent and the relayer refuse it, before anything is simulated or sent.
cp "$tmp/owner.key" "$tmp/readable.key" && chmod 644 "$tmp/readable.key"
rc=0; cl set-lease 400 --key-file "$tmp/readable.key" 2>"$tmp/err" || rc=$?
[ $rc = 2 ] && grep -q 'has mode 0644' "$tmp/err" || fail "a key file of mode 0644 exits $rc: $(cat "$tmp/err")"
ok "a key file others may read is refused: $(cat "$tmp/err")"

# ---- fee caps: a cap below the base fee, a cost cap below the gas, and a hostile RPC
refused 'above the fee cap (max_fee_per_gas)' "$OWNER" cl set-lease 400 --max-fee-per-gas 1wei
refused 'above the cost cap (max_cost) of 1000 wei' "$OWNER" cl set-lease 400 --max-cost 1000wei
hostile_port=$(free_port)
$PY - "$hostile_port" "$port" >"$tmp/hostile.log" 2>&1 <<'PY' &
# Forwards to anvil but suggests a tip of 1 ether per gas and a gas price of 10 ether, and
# serves no past state (eth_getCode at a block number fails, as on a pruned node).
import http.server, json, sys, urllib.request
up = "http://127.0.0.1:%s" % sys.argv[2]
def fix(req, rep):
    if req.get("method") == "eth_maxPriorityFeePerGas": rep["result"] = hex(10**18)
    if req.get("method") == "eth_gasPrice": rep["result"] = hex(10**19)
    if req.get("method") == "eth_getCode" and str(req["params"][1]).startswith("0x"):
        rep.pop("result", None); rep["error"] = {"code": -32000, "message": "missing trie node"}
    return rep
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        r = urllib.request.urlopen(urllib.request.Request(up, body, {"Content-Type": "application/json"}))
        req, rep = json.loads(body), json.loads(r.read())
        out = [fix(q, p) for q, p in zip(req, rep)] if isinstance(req, list) else fix(req, rep)
        data = json.dumps(out).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)
for _ in $(seq 50); do "$CAST" chain-id --rpc-url "http://127.0.0.1:$hostile_port" >/dev/null 2>&1 && break; sleep 0.1; done
cl set-lease 400 --rpc "http://127.0.0.1:$hostile_port" --max-fee-per-gas 5gwei >"$tmp/out" 2>&1 || fail "set-lease through the hostile RPC: $(cat "$tmp/out")"
tx=$(awk '/transaction/ {print $3}' "$tmp/out")
price=$(( $("$CAST" receipt "$tx" --json | jq -r .effectiveGasPrice) ))
[ "$price" -le 5000000000 ] || fail "the hostile RPC priced the transaction at $price wei/gas"
max_fee=$(( $("$CAST" tx "$tx" --json | jq -r .maxFeePerGas) ))
[ "$max_fee" -le 5000000000 ] || fail "signed max fee $max_fee above the cap"
[ "$(call 'leaderLease()(uint64)')" = 400 ] || fail "set-lease per cast"
ok "fee caps: a 1 ether/gas tip suggested by the RPC was signed as at most 5 gwei (paid $price wei/gas)"
cl status --rpc "http://127.0.0.1:$hostile_port" --json >"$tmp/out" 2>"$tmp/err" || fail "status on a pruned RPC: $(cat "$tmp/err")"
[ "$(jq -c .allowed "$tmp/out")" = null ] && [ "$(jq -r .policy.maxNodes "$tmp/out")" = 3 ] &&
	grep -q 'warning: the allowed compose hashes and devices are unknown: .*missing trie node' "$tmp/err" ||
	fail "status on a pruned RPC: $(cat "$tmp/err") $(jq -c .allowed "$tmp/out")"
ok "status on an RPC without past state: the rest, \"allowed\": null and a warning"

# ---- a registration through the relayer (the agent's POST {"to","data"})
pub64() { "$CAST" wallet public-key --private-key "$1" | sed 's/^0x//'; }
compress() { local y=${1:64:64}; case ${y: -1} in [02468ace]) echo "02${1:0:64}" ;; *) echo "03${1:0:64}" ;; esac; }
sign() { "$CAST" wallet sign --no-hash --private-key "$1" "$2"; }
NODE_PUB=$(pub64 "$NODE_SK") APP_PUB=$(pub64 "$APP_SK")
app_sig=$(sign "$APP_SK" "$("$CAST" keccak "dstack-p2p:node:$(compress "$NODE_PUB")")")
kms_msg=0x$(printf 'dstack-kms-issued:' | od -An -tx1 | tr -d ' \n')${CONTRACT#0x}$(compress "$APP_PUB")
kms_sig=$(sign "$KMS_SK" "$("$CAST" keccak "$kms_msg")")
record() { # nonce endpoint -> registerPeer calldata
	local nonce=$1 endpoint=$2 wg digest
	wg=0x$(printf '%064x' $((nonce + 1000)))
	digest=$("$CAST" keccak "$("$CAST" abi-encode 'f(bytes32,uint256,address,address,bytes32,bytes32,uint8,uint64)' \
		"$("$CAST" keccak dstack-p2p.PeerRecord.v1)" "$("$CAST" chain-id)" "$CONTRACT" "$INSTANCE" "$wg" \
		"$("$CAST" keccak "$endpoint")" 1 "$nonce")")
	jq -n --arg i "$INSTANCE" --arg w "$wg" --arg e "$endpoint" --argjson n "$nonce" \
		--arg np "0x$NODE_PUB" --arg ap "0x$APP_PUB" --arg asig "$app_sig" --arg ks "$kms_sig" \
		--arg ns "$(sign "$NODE_SK" "$digest")" \
		'{instanceId:$i, wgPublicKey:$w, endpoint:$e, mode:1, nonce:$n, nodePubkey:$np,
		  appPubkey:$ap, appSignature:$asig, kmsSignature:$ks, nodeSignature:$ns}' >"$tmp/rec.json"
	"$BIN" chain calldata --record "$tmp/rec.json"
}
REG1=$(record 1 203.0.113.10:51820)

rport=$(free_port)
"$BIN" relayer --listen "127.0.0.1:$rport" --key-file "$tmp/relayer.key" --per-instance 3 --total 12 \
	--window 600 --spend-cap 0.05ether >"$tmp/relayer.log" 2>&1 &
pids+=($!)
R=http://127.0.0.1:$rport
# http METHOD URL [BODY-FILE]: the status on stdout, the body in $tmp/body (python, not curl).
http() {
	$PY - "$@" "$tmp/body" <<'PY'
import sys, urllib.error, urllib.request
method, url, out = sys.argv[1], sys.argv[2], sys.argv[-1]
data = open(sys.argv[3], "rb").read() if len(sys.argv) == 5 else None
req = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method=method)
try:
    r = urllib.request.urlopen(req, timeout=60)
    code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
except OSError:
    code, body = 0, b""
open(out, "wb").write(body)
print(code)
PY
}
health() { http GET "$R/health" >/dev/null; cat "$tmp/body"; }
for _ in $(seq 100); do [ "$(http GET "$R/health")" = 200 ] && break; sleep 0.1; done
health | jq -e ".address == \"$RELAYER\"" >/dev/null || fail "relayer health"
post() { printf '%s' "$1" >"$tmp/req"; http POST "$R/relay" "$tmp/req"; }
code=$(post "{\"to\":\"$CONTRACT\",\"data\":\"$REG1\"}")
case $code in 200|202) ;; *) fail "relayed registration: HTTP $code $(cat "$tmp/body")" ;; esac  # 202: sent, receipt pending
[ "$("$CAST" receipt "$(jq -r .txHash "$tmp/body")" --json | jq -r .status)" = 0x1 ] || fail "relayed tx receipt per cast"
[ "$(call 'instanceIsRegistered(address)(bool)' "$INSTANCE")" = true ] || fail "registered per cast"
ok "relayer: registration sent ($(jq -r .txHash "$tmp/body" | cut -c1-18)..), registered per cast"

# ---- bad input and a flood cost the relayer nothing
bal_before=$("$CAST" balance "$RELAYER") nonce_before=$(nonce_of "$RELAYER")
expect() { # status body-regex request-body
	local code
	code=$(post "$3")
	[ "$code" = "$1" ] || fail "relayer answered $code, not $1, to ${3:0:60}: $(cat "$tmp/body")"
	grep -qE "$2" "$tmp/body" || fail "relayer's $code does not say /$2/: $(cat "$tmp/body")"
	ok "relayer $code: $(jq -r .error "$tmp/body")"
}
expect 400 'JSON object' 'not json'
expect 400 'must be a 20-byte' '{"data":"0x00"}'
expect 400 'shorter than a selector' "{\"to\":\"$CONTRACT\",\"data\":\"0x00\"}"
expect 400 'no value' "{\"to\":\"$CONTRACT\",\"data\":\"$REG1\",\"value\":\"0x1\"}"
expect 403 'only to its cluster contract' "{\"to\":\"$OTHER\",\"data\":\"$REG1\"}"
mintdata=$("$CAST" calldata 'mintNodeAccess(address,string)' "$RELAYER" x)
expect 403 'not relayed here' "{\"to\":\"$CONTRACT\",\"data\":\"$mintdata\"}"
expect 422 'StaleNonce\(1, 1\)' "{\"to\":\"$CONTRACT\",\"data\":\"$REG1\"}"
head -c 200000 /dev/zero | tr '\0' 'a' >"$tmp/huge"
code=$(http POST "$R/relay" "$tmp/huge")
[ "$code" = 413 ] || fail "a 200 kB body: HTTP $code"
ok "relayer 413: a 200 kB body"
# The flood: the same stale registration again and again is refused before any limit (the
# relayer knows the stored nonce); a registration that does not verify takes no slot either
# (tests/host/test-relayer-attack.sh has the limits under junk).
codes=""
for _ in $(seq 6); do codes="$codes $(post "{\"to\":\"$CONTRACT\",\"data\":\"$REG1\"}")"; done
[ "$codes" = " 422 422 422 422 422 422" ] || fail "per-instance flood answered:$codes"
fake=$("$CAST" calldata 'registerPeer((address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes))' \
	"($OTHER,0x$(printf '%064x' 1),x,1,1,0x,0x,0x,0x,0x)")
codes=""
for _ in $(seq 8); do codes="$codes $(post "{\"to\":\"$CONTRACT\",\"data\":\"$fake\"}")"; done
[ "$codes" = " 400 400 400 400 400 400 400 400" ] || fail "malformed registrations answered:$codes"
[ "$("$CAST" balance "$RELAYER")" = "$bal_before" ] || fail "rejected requests cost the relayer gas"
[ "$(nonce_of "$RELAYER")" = "$nonce_before" ] || fail "rejected requests sent transactions"
health | jq -e '.sent == 1 and .refused >= 20' >/dev/null || fail "relayer counters $(health)"
ok "relayer: bad input and a flood of $(health | jq .refused) requests, balance unchanged ($bal_before wei)"

# ---- a leader (elected by the token's holder, as a node would), then status against cast
"$CAST" send --private-key "$HOLDER_SK" "$CONTRACT" 'electLeader(uint256)' 1 >/dev/null
cl status --json >"$tmp/status.json" || fail "status --json"
S() { jq -r "$1" "$tmp/status.json"; }
check() { [ "$1" = "$2" ] || fail "status $3: ours '$1', cast '$2'"; }
check "$(S .owner)" "$(call 'owner()(address)' | lower)" owner
check "$(S .kmsRoot)" "$KMS_ROOT" kmsRoot
check "$(S .policy.maxNodes)" "$(call 'maxNodes()(uint256)')" maxNodes
check "$(S .policy.bootPolicy)" strict bootPolicy
check "$(S .policy.requireTcbUpToDate)" "$(call 'requireTcbUpToDate()(bool)')" requireTcbUpToDate
check "$(S .policy.allowAnyDevice)" "$(call 'allowAnyDevice()(bool)')" allowAnyDevice
check "$(S .leader.tokenId)" "$(call 'currentLeaderTokenId()(uint256)')" leader
check "$(S .leader.instanceId)" "$(call 'currentLeader()(address)' | lower)" leaderInstance
check "$(S .leader.term)" "$(call 'leaderTerm()(uint64)')" term
check "$(S .leader.expiry)" "$(call 'leadershipExpiry()(uint64)' | awk '{print $1}')" expiry
check "$(S .leader.lease)" 400 lease
check "$(S .leader.votes)" "$(call 'noConfidenceVotes()(uint256)')" votes
check "$(S .leader.requiredVotes)" "$(call 'requiredVotes()(uint256)')" requiredVotes
check "$(S .totalSupply)" "$(call 'totalSupply()(uint256)')" totalSupply
check "$(S .peerCount)" "$(call 'peerCount()(uint256)')" peerCount
check "$(S .balance)" "$("$CAST" balance "$CONTRACT")" balance
check "$(S '.tokens | length')" 3 "token count"
for t in 1 2 3; do
	check "$(S ".tokens[] | select(.tokenId == $t) | .holder")" "$(call 'ownerOf(uint256)(address)' $t | lower)" "holder of $t"
	check "\"$(S ".tokens[] | select(.tokenId == $t) | .label")\"" "$(call 'labelOf(uint256)(string)' $t)" "label of $t"
	inst=$(call 'instanceOfToken(uint256)(address)' $t | lower)
	[ "$inst" = 0x0000000000000000000000000000000000000000 ] && inst=null
	check "$(S ".tokens[] | select(.tokenId == $t) | .instanceId")" "$inst" "instance of $t"
done
check "$(S '.tokens[0].registered')" "$(call 'instanceIsRegistered(address)(bool)' "$INSTANCE")" registered
check "$(S '.tokens[0].nonce')" "$(call 'nonceOf(address)(uint64)' "$INSTANCE")" nonce
check "$(S '.tokens[0].endpoint')" 203.0.113.10:51820 endpoint
check "$(S '.tokens[0].mode')" wireguard mode
check "$(S '.tokens[0].verification')" valid verification
# The allowed lists: every hash cast says is allowed is listed, and nothing else of the ones used.
for h in "$COMPOSE" "$COMPOSE2"; do
	listed=$(S "[.allowed.composeHashes[] | select(. == \"$(echo "$h" | lower)\")] | length")
	[ "$listed" = 1 ] && want=true || want=false
	check "$want" "$(call 'allowedComposeHashes(bytes32)(bool)' "$h")" "compose hash $h listed"
done
for h in "$DEVICE" "$DEVICE2"; do
	listed=$(S "[.allowed.devices[] | select(. == \"$(echo "$h" | lower)\")] | length")
	[ "$listed" = 1 ] && want=true || want=false
	check "$want" "$(call 'allowedDeviceIds(bytes32)(bool)' "$h")" "device $h listed"
done
check "$(S '.allowed.composeHashes | length'),$(S '.allowed.devices | length')" 1,1 "list lengths"
cl status >"$tmp/status.txt" || fail "status (text)"
grep -A1 '^compose   1 allowed$' "$tmp/status.txt" | grep -qx "          $(echo "$COMPOSE" | lower)" ||
	fail "status text lists no compose hash: $(cat "$tmp/status.txt")"
grep -A1 '^devices   1 allowed, not enforced' "$tmp/status.txt" | grep -qx "          $(echo "$DEVICE2" | lower)" ||
	fail "status text lists no device: $(cat "$tmp/status.txt")"
grep -q "lease until $(date -u -d "@$(S .leader.expiry)" +%Y-%m-%dT%H:%M:%SZ)" "$tmp/status.txt" ||
	fail "status text: no ISO lease expiry: $(grep leader "$tmp/status.txt")"
grep -Eq "^ +1  node-[ab] .* yes  wireguard +1  valid +203.0.113.10:51820" "$tmp/status.txt" || fail "status text row: $(cat "$tmp/status.txt")"
ok "status --json agrees with cast call on $(S '.tokens | length') tokens, policy, leader, balance, the allowed compose hashes and devices; the record verifies"

# ---- policies, public minting and withdraw
cl set-boot-policy permissive >/dev/null && [ "$(call 'bootPolicy()(uint8)')" = 1 ] || fail "set-boot-policy"
cl set-tcb-policy any >/dev/null && [ "$(call 'requireTcbUpToDate()(bool)')" = false ] || fail "set-tcb-policy any"
cl set-tcb-policy up-to-date >/dev/null && [ "$(call 'requireTcbUpToDate()(bool)')" = true ] || fail "set-tcb-policy"
cl set-any-device no >/dev/null && [ "$(call 'allowAnyDevice()(bool)')" = false ] || fail "set-any-device"
cl set-config 5 wireguard >/dev/null && [ "$(call 'networkModes()(uint8)')" = 2 ] && [ "$(call 'maxNodes()(uint256)')" = 5 ] || fail "set-config"
cl set-minting 0.01ether public >/dev/null && [ "$(call 'publicMinting()(bool)')" = true ] || fail "set-minting"
refused 'WrongMintPayment(sent=0 ETH, price=0.01 ETH): a public mint pays exactly the price' "$HOLDER" cl mint "$HOLDER" paid "${HOLDER_KS[@]}"
cl mint "$HOLDER" paid --value 0.01ether "${HOLDER_KS[@]}" >/dev/null || fail "a paid public mint"
[ "$("$CAST" balance "$CONTRACT")" = 10000000000000000 ] || fail "contract balance after a paid mint"
cl withdraw "$TREASURY" >/dev/null && [ "$("$CAST" balance "$TREASURY")" = 10000000000000000 ] || fail "withdraw"
ok "policies set, a paid public mint and its withdrawal, each read back with cast"

# ---- transfer, unbind, burn
cl transfer 2 "$OTHER" "${HOLDER_KS[@]}" >/dev/null && [ "$(call 'ownerOf(uint256)(address)' 2 | lower)" = "$OTHER" ] || fail "transfer"
cl unbind 1 "${HOLDER_KS[@]}" >/dev/null && [ "$(call 'instanceIsRegistered(address)(bool)' "$INSTANCE")" = false ] || fail "unbind"
cl burn 3 >/dev/null || fail "burn by the owner"
# Live tokens 1, 2 and 4 (the paid mint): bits 1, 2 and 4 of liveTokenBitmap.
[ "$(call 'liveTokenBitmap()(uint256)')" = 22 ] || fail "live tokens after the burn: $(call 'liveTokenBitmap()(uint256)')"
ok "transfer, unbind (the record went with it), burn"

# ---- two-step ownership
cl transfer-ownership "$NEWOWNER" >/dev/null && [ "$(call 'pendingOwner()(address)' | lower)" = "$NEWOWNER" ] || fail "transfer-ownership"
[ "$(call 'owner()(address)' | lower)" = "$OWNER" ] || fail "owner changed before acceptance"
refused "OwnableUnauthorizedAccount(account=$HOLDER)" "$HOLDER" cl accept-ownership "${HOLDER_KS[@]}"
cl accept-ownership --key-file "$tmp/newowner.key" >/dev/null && [ "$(call 'owner()(address)' | lower)" = "$NEWOWNER" ] || fail "accept-ownership"
refused "OwnableUnauthorizedAccount(account=$OWNER)" "$OWNER" cl set-lease 300
ok "ownership moved in two steps"

# ---- the text form words enums, amounts and times (JSON keeps the numbers)
watch_all() { rc=0; timeout 8 "$BIN" cluster status --watch --from-block 0 --count 1000 --interval 100 "$@" || rc=$?; [ $rc = 124 ]; }
watch_all >"$tmp/watch.txt" 2>&1 & w1=$!
watch_all --json >"$tmp/watch-all.json" 2>&1 & w2=$!
wait $w1 || fail "status --watch from block 0: $(tail -2 "$tmp/watch.txt")"
wait $w2 || fail "status --watch --json from block 0: $(tail -2 "$tmp/watch-all.json")"
expiry=$(grep '^{"block"' "$tmp/watch-all.json" | jq -r 'select(.log.event == "LeaderChanged") | .log.args.expiry' | head -1)
for want in "BootPolicySet(policy=permissive)" "MintingPolicySet(price=0.01 ETH, publicMinting=true)" \
	"ClusterConfigSet(maxNodes=5, networkModes=wireguard)" "amount=0.01 ETH)" "reason=rebound)" \
	"LeaderLeaseSet(leaseSeconds=400 s)" "expiry=$(date -u -d "@$expiry" +%Y-%m-%dT%H:%M:%SZ), cause=elected)"; do
	grep -qF "$want" "$tmp/watch.txt" || fail "status --watch text lacks '$want': $(grep -o '[A-Z][A-Za-z]*(.*' "$tmp/watch.txt" | head -40)"
done
ok "status --watch text: BootPolicySet(policy=permissive), prices in ETH, reason and cause by name, ISO expiry"

# ---- the watcher saw the events by name
for _ in $(seq 100); do kill -0 $watch_pid 2>/dev/null || break; sleep 0.1; done
for ev in NodeAccessMinted Transfer InstanceBound LeaderLeaseSet PeerRegistered; do
	grep -q "\"event\":\"$ev\"" "$tmp/watch.log" || fail "--watch did not name $ev: $(head -c 600 "$tmp/watch.log")"
done
grep -q '"label":"node-a"' "$tmp/watch.log" || fail "--watch did not decode the label"
ok "status --watch: $(grep -c '"event"' "$tmp/watch.log") events by name"
echo "PASS test-cluster-ops"
