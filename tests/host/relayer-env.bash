# Sourced (after anvil-env.bash) by the test-relayer-*.sh scripts: a cluster on anvil whose
# tokens 1..N are bound to fresh instances, the calldata a node would send through the
# relayer (registrations and signed leader calls, signed with cast), the relayer itself, and
# HTTP helpers that time every reply.
#   relayer_cluster N        deploy (max N nodes), mint and bind tokens 1..N
#   reg_calldata I NONCE     token I's registerPeer calldata (its node key signs)
#   elect_calldata I [DL]    electLeaderSigned for token I with its current nonce
#   relayer_start ARGS...    the relayer on a free port ($R), key file $tmp/relayer.key
#   http METHOD URL [FILE] [TIMEOUT]   status on stdout ("0": no answer), body in $tmp/body
RELAYER_SK=0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a
RELAYER=$(addr $RELAYER_SK)
OWNER=$(addr $OWNER_SK)
umask 077
echo "$OWNER_SK" >"$tmp/owner.key"
echo "${RELAYER_SK#0x}" >"$tmp/relayer.key"
call() { "$CAST" call "$CONTRACT" "$@"; }

KMS_SK=$(rand32) APP_SK=$(rand32)
pub64() { "$CAST" wallet public-key --private-key "$1" | sed 's/^0x//'; }
compress() { local y=${1:64:64}; case ${y: -1} in [02468ace]) echo "02${1:0:64}" ;; *) echo "03${1:0:64}" ;; esac; }
sign() { "$CAST" wallet sign --no-hash --private-key "$1" "$2"; }

relayer_cluster() {
	local n=$1 i
	"$BIN" cluster deploy --key-file "$tmp/owner.key" --kms-root "$(addr "$KMS_SK")" --max-nodes "$n" \
		--compose-hash "$(rand32)" --artifact "$art/DstackClusterNFT.sol/DstackClusterNFT.json" \
		--json >"$tmp/deploy.json" 2>"$tmp/err" || fail "deploy: $(cat "$tmp/err")"
	CONTRACT=$(jq -r .contract "$tmp/deploy.json" | tail -1)
	export CLUSTER_CONTRACT=$CONTRACT DSTACK_P2P_KEY_FILE=$tmp/owner.key
	CHAIN_ID=$("$CAST" chain-id)
	APP_PUB=$(pub64 "$APP_SK")
	kms_msg=0x$(printf 'dstack-kms-issued:' | od -An -tx1 | tr -d ' \n')${CONTRACT#0x}$(compress "$APP_PUB")
	KMS_SIG=$(sign "$KMS_SK" "$("$CAST" keccak "$kms_msg")")
	for i in $(seq "$n"); do
		NODE_SK[$i]=$(rand32)
		INSTANCE[$i]=$(addr "$(rand32)")
		NODE_PUB[$i]=$(pub64 "${NODE_SK[$i]}")
		APP_SIG[$i]=$(sign "$APP_SK" "$("$CAST" keccak "dstack-p2p:node:$(compress "${NODE_PUB[$i]}")")")
		"$BIN" cluster mint "$OWNER" "node-$i" >/dev/null || fail "mint $i"
		"$BIN" cluster bind "$i" "${INSTANCE[$i]}" >/dev/null || fail "bind $i"
	done
}

reg_calldata() { # token nonce -> registerPeer calldata signed by the token's node key
	local i=$1 nonce=$2 endpoint="203.0.113.$1:51820" wg digest
	wg=0x$(printf '%056x%08x' "$i" "$nonce")
	digest=$("$CAST" keccak "$("$CAST" abi-encode 'f(bytes32,uint256,address,address,bytes32,bytes32,uint8,uint64)' \
		"$("$CAST" keccak dstack-p2p.PeerRecord.v1)" "$CHAIN_ID" "$CONTRACT" "${INSTANCE[$i]}" "$wg" \
		"$("$CAST" keccak "$endpoint")" 1 "$nonce")")
	jq -n --arg i "${INSTANCE[$i]}" --arg w "$wg" --arg e "$endpoint" --argjson n "$nonce" \
		--arg np "0x${NODE_PUB[$i]}" --arg ap "0x$APP_PUB" --arg asig "${APP_SIG[$i]}" --arg ks "$KMS_SIG" \
		--arg ns "$(sign "${NODE_SK[$i]}" "$digest")" \
		'{instanceId:$i, wgPublicKey:$w, endpoint:$e, mode:1, nonce:$n, nodePubkey:$np,
		  appPubkey:$ap, appSignature:$asig, kmsSignature:$ks, nodeSignature:$ns}' >"$tmp/rec.json"
	"$BIN" chain calldata --record "$tmp/rec.json"
}

elect_calldata() { # token [deadline] -> electLeaderSigned calldata signed by its node key
	local i=$1 deadline=${2:-$(($(date +%s) + 600))} nonce digest
	nonce=$(call 'leaderActionNonce(uint256)(uint256)' "$i")
	digest=$(call 'leaderActionDigest(uint8,uint256,uint256,bool,uint256,uint256)(bytes32)' 0 "$i" 0 false "$nonce" "$deadline")
	"$CAST" calldata 'electLeaderSigned(uint256,uint256,bytes)' "$i" "$deadline" "$(sign "${NODE_SK[$i]}" "$digest")"
}

relayer_start() {
	rport=$(free_port)
	R=http://127.0.0.1:$rport
	"$BIN" relayer --listen "127.0.0.1:$rport" --key-file "$tmp/relayer.key" "$@" >"$tmp/relayer.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do [ "$(http GET "$R/health")" = 200 ] && return; sleep 0.1; done
	fail "the relayer does not answer: $(tail -3 "$tmp/relayer.log")"
}

# http METHOD URL [BODY-FILE] [TIMEOUT-S]: the status on stdout (0: no answer), the body in $tmp/body.
http() {
	local code
	code=$(curl -s -o "$tmp/body" -w '%{http_code}' -m "${4:-60}" -X "$1" -H 'Content-Type: application/json' \
		${3:+--data-binary "@$3"} "$2") || true
	echo $((10#${code:-0}))
}
post() { printf '{"to":"%s","data":"%s"}' "$CONTRACT" "$1" >"$tmp/req"; http POST "$R/relay" "$tmp/req"; }
health() { http GET "$R/health" >/dev/null; cat "$tmp/body"; }
