#!/bin/bash
# SPDX-License-Identifier: MIT
# deploy/phala/deploy.mjs walks seed 000's whole Phala flow against deploy/phala/standin.mjs,
# a stand-in that models the platform (CVM states, the instance id made at first boot, each
# boot asking the cluster contract's isAppAllowed on anvil as dstack's KMS does, the compose
# hash over app-compose.json, the env key signed by the KMS root). A "running" CVM is a
# harness namespace with the guest-agent simulator and the agent (the container image's, in
# podman; build/dstack-p2p with PHALA_AGENT=build), configured as examples/compose/phala.yml
# configures it (gateway transport, a relayer pays), started by netns-harness/phala-cvm.sh
# when the stand-in boots it.
#   1. the unit tests of deploy.mjs (node --test deploy/phala/)
#   2. a compose-hash mismatch stops before anything is allow-listed, sealed or committed
#   3. an env key signed by another key than the cluster's KMS root stops before sealing
#   4. strict boot, node 1: the first boots are refused by the contract; a failure injected
#      at the stop makes deploy.mjs exit 1; the same command again resumes (one provision,
#      one commit, one token) and ends with the node's record on chain, valid
#   5. permissive boot, node 2: no stop; bound while running; registered
#   6. the two nodes ping each other through the gateway stand-in (UDP between them dropped)
#   7. running deploy.mjs again changes nothing, also without its state file
# Assertions read the stand-in's request log, cast, wg show, ping and the guest agent's Info.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d node_modules/@phala/cloud ] && [ -d node_modules/viem ] || { echo "test-phala-deploy: @phala/cloud or viem missing (make deps)" >&2; exit 1; }
unit=$(mktemp /tmp/dstack-p2p-phala-unit.XXXXXX)
node --test deploy/phala/ >"$unit" 2>&1 || { cat "$unit"; rm -f "$unit"; echo "test-phala-deploy: FAIL: node --test deploy/phala/" >&2; exit 1; }
echo "test-phala-deploy: node --test deploy/phala/: $(grep -E '^# (pass|fail) ' "$unit" | tr '\n' ' ')"
rm -f "$unit"

# The agent runs from the container image (make image, as in test-image.sh); PHALA_AGENT=build
# runs build/dstack-p2p instead (no mmdebstrap or podman needed).
if [ "${PHALA_AGENT:-image}" = image ]; then
	for tool in mmdebstrap podman runc; do
		command -v "$tool" >/dev/null || { echo "test-phala-deploy: $tool missing (scripts/deps.sh image; or PHALA_AGENT=build)" >&2; exit 1; }
	done
	ilog=$(mktemp /tmp/dstack-p2p-phala-image.XXXXXX)
	scripts/image.sh >"$ilog" 2>&1 || { tail -20 "$ilog"; rm -f "$ilog"; exit 1; }
	digest=$(sed -n 's/^image: digest sha256:\([0-9a-f]\{64\}\).*/\1/p' "$ilog")
	rm -f "$ilog"
	[ -n "$digest" ] || { echo "test-phala-deploy: scripts/image.sh printed no digest" >&2; exit 1; }
fi

. netns-harness/lib.sh
. netns-harness/gateway.sh
pass() { h_log "PASS: $*"; }
cleanup() {
	local f
	for f in "$H_RUN"/cvm*.pids; do [ -f "$f" ] && h_kill $(cat "$f"); done
	h_gw_cleanup
}
H_CLEANUP_HOOK=cleanup
h_init phd
export H_RUN H_PREFIX H_BIN
if [ -n "${digest:-}" ]; then
	h_image_load "${O:-build}/image/dstack-p2p.oci.tar"
	export H_IMAGE H_MNT_PID=$$
	H_CONTAINERS+=("${H_PREFIX}a1" "${H_PREFIX}a2")  # what phala-cvm.sh names them; h_cleanup removes them
	h_log "the agents run from image $H_IMAGE (digest sha256:$digest)"
fi
cl() { "$H_BIN/dstack-p2p" cluster "$@" --rpc "$H_RUN/anvil.ipc" --key-file "$H_RUN/operator.key"; }

# ---- the cluster, as docs/deploy.md section 2: a KMS contract (`cluster deploy-kms`, a
# stand-in with dstack's kmsInfo/registerApp; its root key signs the guest agents' keys and the env key), then
# `cluster deploy --kms` reading the root from it. The app is registered by deploy.mjs.
(umask 077 && echo "$H_OPERATOR_KEY" >"$H_RUN/operator.key")
H_KMS_KEY=0x$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && echo "${H_KMS_KEY#0x}" >"$H_RUN/kms.key")
H_OPERATOR=$("$H_CAST" wallet address --private-key "$H_OPERATOR_KEY" | tr A-F a-f)
KMS=$(cl deploy-kms --kms-root-key-file "$H_RUN/kms.key" --json | jq -r .kms | tr A-F a-f)
[[ "$KMS" =~ ^0x[0-9a-f]{40}$ ]] || h_die "cluster deploy-kms: '$KMS'"
H_CONTRACT=$(cl deploy --kms "$KMS" --json | jq -r 'select(.contract) | .contract' | tail -1 | tr A-F a-f)
[[ "$H_CONTRACT" =~ ^0x[0-9a-f]{40}$ ]] || h_die "cluster deploy: '$H_CONTRACT'"
h_log "KMS contract $KMS, cluster contract $H_CONTRACT (KMS root $("$H_CAST" wallet address --private-key "$H_KMS_KEY"))"
h_gw_up
h_relayer_start
for i in 1 2; do
	h_node_add "$i"
	h_kill "${H_PID_SIM[$i]}"  # the CVM's guest agent starts at boot, with the platform's instance id
done
h_gw_block_udp 1 2
# The image, pinned by digest (the stand-in pulls nothing: the hook runs the loaded image).
IMG=registry.example/dstack-p2p@sha256:${digest:-$(sha256sum "$H_BIN/dstack-p2p" | cut -c1-64)}
hub() { ip netns exec "${H_PREFIX}hub" "$@"; }

# standin NAME [faults...]: a stand-in in the hub namespace on its loopback; sets PREFIX.
standin() {
	local name=$1 t
	shift
	rm -f "$H_RUN/standin-$name.addr"
	# Not through hub(): $! must be the stand-in itself for the cleanup to reach it.
	ip netns exec "${H_PREFIX}hub" node deploy/phala/standin.mjs --listen 127.0.0.1:0 --ready-file "$H_RUN/standin-$name.addr" \
		--kms-key-file "$H_RUN/kms.key" --kms-contract "$KMS" --rpc "$H_RUN/anvil.ipc" --cast "$H_CAST" \
		--hook "$H_ROOT/netns-harness/phala-cvm.sh" --log "$H_RUN/standin-$name.log" --boot-retry-ms 500 \
		"$@" >"$H_RUN/standin-$name.err" 2>&1 &
	H_OTHER_PIDS+=($!)
	for t in $(seq 1 200); do [ -s "$H_RUN/standin-$name.addr" ] && break; sleep 0.05; done
	[ -s "$H_RUN/standin-$name.addr" ] || h_die "stand-in $name did not start: $(cat "$H_RUN/standin-$name.err")"
	PREFIX=http://$(cat "$H_RUN/standin-$name.addr")/api/v1
}
# deploy NODE STATE [flags]: the documented command (docs/deploy.md), from the hub namespace
# where the operator's RPC (anvil over HTTP) and the stand-in are reachable.
deploy() {
	local i=$1 state=$2
	shift 2
	hub env PHALA_CLOUD_API_KEY=phak-test PHALA_CLOUD_API_PREFIX="$PREFIX" \
		node deploy/phala/deploy.mjs --name "p2p-node-$i" --image "$IMG" --deployer "$H_OPERATOR" \
		--contract "$H_CONTRACT" --rpc "$H_RPC" --relayer "http://$H_HUB_IP:8600/relay" \
		--key-file "$H_RUN/operator.key" --cli "$H_BIN/dstack-p2p" --state "$H_RUN/$state.json" \
		--timeout 120 "$@"
}
count() { grep -c "$2" "$H_RUN/standin-$1.log" || true; }
allowed() { h_cast call "$H_CONTRACT" 'allowedComposeHashes(bytes32)(bool)' "$1"; }

# ---- 2. the platform's app-compose.json is not what deploy.mjs sent: stop
standin mismatch --manifest-extra '{"secure_time":true}'
rc=0; deploy 1 mismatch >"$H_RUN/mm.out" 2>"$H_RUN/mm.err" || rc=$?
[ "$rc" = 1 ] || h_die "compose-hash mismatch: exit $rc, not 1: $(cat "$H_RUN/mm.err")"
grep -q "compose hash: the API's 0x[0-9a-f]* is not sha256 of the app-compose.json" "$H_RUN/mm.err" || h_die "mismatch: $(cat "$H_RUN/mm.err")"
api_hash=$(grep -o "the API's 0x[0-9a-f]*" "$H_RUN/mm.err" | cut -d' ' -f3)
our_hash=$(grep -o "(0x[0-9a-f]*," "$H_RUN/mm.err" | tr -d '(,')
[ "$(sha256sum <"$H_RUN/mismatch.app-compose.json" | cut -c1-64)" = "${our_hash#0x}" ] || h_die "the written app-compose.json does not hash to $our_hash"
[ "$(count mismatch 'GET .*/pubkey/')" = 0 ] && [ "$(count mismatch 'POST /api/v1/cvms$')" = 0 ] || h_die "mismatch: the env key was fetched or a CVM committed"
[ "$(allowed "$api_hash")" = false ] && [ "$(allowed "$our_hash")" = false ] || h_die "mismatch: a hash was allow-listed"
[ "$(h_cast call "$KMS" 'registeredApps(address)(bool)' "$H_CONTRACT")" = false ] || h_die "mismatch: the app was registered"
pass "compose-hash mismatch (API $api_hash, ours $our_hash): exit 1, nothing registered or allow-listed, no env key fetched, no commit"

# ---- 3. the env key signed by another key than the cluster's KMS root: stop before sealing
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$H_RUN/evil.key"
evil=$("$H_CAST" wallet address --private-key "0x$(cat "$H_RUN/evil.key")" | tr A-F a-f)
standin badsig --env-signer-key-file "$H_RUN/evil.key"
rc=0; deploy 1 badsig >"$H_RUN/bs.out" 2>"$H_RUN/bs.err" || rc=$?
[ "$rc" = 1 ] || h_die "bad KMS signature: exit $rc, not 1: $(cat "$H_RUN/bs.err")"
grep -qF "is signed by $evil, not by the cluster's KMS root" "$H_RUN/bs.err" || h_die "bad signature: $(cat "$H_RUN/bs.err")"
[ "$(count badsig 'GET .*/pubkey/')" = 1 ] && [ "$(count badsig 'POST /api/v1/cvms$')" = 0 ] || h_die "bad signature: a CVM was committed"
[ "$(h_cast call "$KMS" 'registeredApps(address)(bool)' "$H_CONTRACT")" = true ] || h_die "the app is not registered with the KMS"
pass "env key signed by $evil (not the KMS root): exit 1 before anything was sealed or committed (the app registered with the KMS and the hash allowed before that)"

# ---- 4. strict boot, with a failure injected at the stop
standin main --fail-once 'POST /cvms/[^/]+/stop$'
[ "$(h_cast call "$H_CONTRACT" 'bootPolicy()(uint8)')" = 0 ] || h_die "the cluster does not boot strict"
rc=0; deploy 1 node1 >"$H_RUN/d1a.out" 2>"$H_RUN/d1a.err" || rc=$?
[ "$rc" = 1 ] && grep -q 'stop: HTTP 500' "$H_RUN/d1a.err" || h_die "the injected stop failure: exit $rc: $(cat "$H_RUN/d1a.err")"
# The instance id is made as the boot starts; the KMS's answer (cast call) comes after.
for t in $(seq 1 100); do
	grep -q 'boot p2p-node-1 [0-9a-f]*: refused: Instance not bound to a live node token' "$H_RUN/standin-main.log" && break
	sleep 0.2
done
grep -q 'boot p2p-node-1 [0-9a-f]*: refused: Instance not bound to a live node token' "$H_RUN/standin-main.log" ||
	h_die "strict: the first boot was not refused by the contract"
h_log "strict, first run: stopped by the injected failure after the instance id; the contract refused the boots"
deploy 1 node1 >"$H_RUN/d1b.out" 2>"$H_RUN/d1b.err" || h_die "resume: $(cat "$H_RUN/d1b.err")"
cat "$H_RUN/d1b.out"
grep -q '^provision: done' "$H_RUN/d1b.out" && grep -q '^commit: done' "$H_RUN/d1b.out" || h_die "resume did not skip the done steps"
for want in 'POST /api/v1/cvms/provision:1' 'POST /api/v1/cvms$:1' 'POST .*/stop$:2' 'POST .*/start$:1'; do
	[ "$(count main "${want%:*}")" = "${want##*:}" ] || h_die "requests '${want%:*}': $(count main "${want%:*}"), not ${want##*:}"
done
# The stop came before the mint, the start after the bind (the log orders API calls).
order=$(grep -nE 'POST .*/(stop|start)$' "$H_RUN/standin-main.log" | tail -2 | cut -d: -f2 | grep -o 'stop\|start' | tr '\n' ' ')
[ "$order" = "stop start " ] || h_die "strict order: $order"
INST1=0x$(grep -o 'boot p2p-node-1 [0-9a-f]*' "$H_RUN/standin-main.log" | head -1 | cut -d' ' -f3)
[ "$(h_cast call "$H_CONTRACT" 'totalSupply()(uint256)')" = 1 ] || h_die "more than one token minted"
H_TOKEN[1]=$(h_cast call "$H_CONTRACT" 'tokenOfInstance(address)(uint256)' "$INST1")
[ "${H_TOKEN[1]}" = 1 ] || h_die "instance $INST1 is bound to token '${H_TOKEN[1]}'"
grep -q "instance id  $INST1" "$H_RUN/d1b.out" && grep -q 'record .*wireguard https://.*-51831\.gw\.dstack-p2p\.test, valid' "$H_RUN/d1b.out" ||
	h_die "summary: $(tail -7 "$H_RUN/d1b.out")"
pass "strict: failure at the stop, then resumed: 1 provision, 1 commit, 2 stops (1 failed), 1 start, 1 token bound to $INST1, record valid"

# ---- 5. permissive boot: the CVM boots before its token exists and is bound while running
cl set-boot-policy permissive --contract "$H_CONTRACT" >/dev/null || h_die "set-boot-policy permissive"
stops=$(count main 'POST .*/stop$')
deploy 2 node2 >"$H_RUN/d2.out" 2>"$H_RUN/d2.err" || h_die "permissive deploy: $(cat "$H_RUN/d2.err")"
grep -q '^boot policy: permissive' "$H_RUN/d2.out" || h_die "node 2 was not deployed permissive"
[ "$(count main 'POST .*/stop$')" = "$stops" ] || h_die "permissive: the CVM was stopped"
INST2=0x$(grep -o 'boot p2p-node-2 [0-9a-f]*: running' "$H_RUN/standin-main.log" | head -1 | cut -d' ' -f3 | tr -d :)
H_TOKEN[2]=$(h_cast call "$H_CONTRACT" 'tokenOfInstance(address)(uint256)' "$INST2")
[ "${H_TOKEN[2]}" = 2 ] || h_die "node 2's instance $INST2 is bound to '${H_TOKEN[2]}'"
grep -q 'record .*valid' "$H_RUN/d2.out" || h_die "node 2's summary: $(tail -7 "$H_RUN/d2.out")"
pass "permissive: booted unbound, bound while running (token 2), record valid, never stopped"

# ---- 6. the mesh, through the gateway stand-in
for i in 1 2; do
	info=$(curl -sf --max-time 5 --unix-socket "$H_RUN/sim$i.sock" -X POST -H 'Content-Type: application/json' -d '{}' http://localhost/Info)
	hash=0x$(echo "$info" | grep -o '"compose_hash":"[0-9a-f]*"' | cut -d'"' -f4)
	[ "$(allowed "$hash")" = true ] || h_die "node $i booted compose hash $hash, not on the allow-list"
done
h_wait_mesh 60 1 2 || h_die "the two nodes do not list each other: $(h_in 1 wg show "$(h_if 1)" allowed-ips)"
ok=0
for t in $(seq 1 20); do ok=$(h_ping_all 1 2); [ "$ok" = 2 ] && break; done
[ "$ok" = 2 ] || h_die "$ok of 2 pings through the gateway"
# Each reaches the other through its relay's loopback socket (the gateway path), not UDP.
for i in 1 2; do
	j=$((3 - i))
	for t in $(seq 1 50); do
		[ "$(h_in "$i" wg show "$(h_if "$i")" endpoints | cut -f2)" = "127.0.1.${H_TOKEN[$j]}:$H_RELAY_PORT" ] && break
		sleep 0.2
	done
	[ "$(h_in "$i" wg show "$(h_if "$i")" endpoints | cut -f2)" = "127.0.1.${H_TOKEN[$j]}:$H_RELAY_PORT" ] ||
		h_die "node $i reaches $j elsewhere than through its relay: $(h_in "$i" wg show "$(h_if "$i")" endpoints)"
done
agents="build/dstack-p2p"
if [ -n "${H_IMAGE:-}" ]; then  # the agents are the image's, each in its node's namespace
	for i in 1 2; do
		cpid=$(h_podman inspect -f '{{.State.Pid}}' "${H_PREFIX}a$i")
		[ "$(ip netns identify "$cpid")" = "$(h_ns "$i")" ] && [ "$(readlink /proc/"$cpid"/exe)" = /usr/bin/dstack-p2p ] ||
			h_die "node $i's agent is not the image's in $(h_ns "$i")"
	done
	agents="the image's agents (podman)"
fi
pass "nodes 1 and 2 ping each other through the gateway stand-in (UDP between them dropped by nftables), $agents"

# ---- 7. again: every step is found done, nothing is sent
before=$(wc -l <"$H_RUN/standin-main.log")
nonce=$(h_cast nonce "$H_OPERATOR")
deploy 1 node1 >"$H_RUN/d1c.out" 2>&1 || h_die "third run: $(cat "$H_RUN/d1c.out")"
new=$(tail -n +"$((before + 1))" "$H_RUN/standin-main.log" | grep -cE '^(POST|PATCH) .*/(provision|cvms|stop|start)$' || true)
[ "$new" = 0 ] && [ "$(h_cast nonce "$H_OPERATOR")" = "$nonce" ] || h_die "a third run sent $new API writes or a transaction"
# The state file lost: the API knows the CVM by name and its instance id, the chain the token.
deploy 1 node1-lost >"$H_RUN/d1d.out" 2>&1 || h_die "run without the state file: $(cat "$H_RUN/d1d.out")"
grep -q '^provision: the API already has p2p-node-1' "$H_RUN/d1d.out" || h_die "the CVM was not found by name: $(cat "$H_RUN/d1d.out")"
new=$(tail -n +"$((before + 1))" "$H_RUN/standin-main.log" | grep -cE '^(POST|PATCH) .*/(provision|cvms|stop|start)$' || true)
[ "$new" = 0 ] && [ "$(h_cast nonce "$H_OPERATOR")" = "$nonce" ] || h_die "without its state file: $new API writes or a transaction"
pass "a third run finds every step done: no API write, no transaction; also without its state file (the CVM found by name)"
