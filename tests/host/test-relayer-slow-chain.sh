#!/bin/bash
# The relayer never waits for a receipt while serving (issue 24 point 5): on a chain that
# mines every 12 s, four relayed registrations at once are each answered at once with their
# hash and "pending", /health is answered to every probe (1 s timeout each) meanwhile, GET
# /tx/HASH follows each one to "mined", and cast sees all four registered, the relayer's
# nonce up by four and no more paid than the relayer counts.
set -euo pipefail
. "$(dirname "$0")/anvil-env.bash" relayer-slow
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/relayer.log" ] && tail -5 "$tmp/relayer.log" | sed 's/^/  relayer: /' >&2; exit 1; }
. "$(dirname "$0")/relayer-env.bash"

[ -x "$BIN" ] || fail "build/dstack-p2p missing: run make"
artifacts DstackClusterNFT
anvil_start
relayer_cluster 4
for i in 1 2 3 4; do REG[$i]=$(reg_calldata "$i" 1); done
relayer_start
# From here on a block every 12 s, as on a slow chain (setup above mined at once).
"$CAST" rpc evm_setAutomine false >/dev/null
"$CAST" rpc evm_setIntervalMining 12 >/dev/null
ok "cluster $CONTRACT with 4 bound tokens; anvil now mines every 12 s"
nonce0=$("$CAST" nonce "$RELAYER") bal0=$("$CAST" balance "$RELAYER")

posts=()
for i in 1 2 3 4; do
	printf '{"to":"%s","data":"%s"}' "$CONTRACT" "${REG[$i]}" >"$tmp/req$i"
	( s=$(date +%s%N)
	  code=$(curl -s -o "$tmp/reply$i" -w '%{http_code}' -m 30 -X POST --data-binary "@$tmp/req$i" "$R/relay") || true
	  echo "$code $(( ($(date +%s%N) - s) / 1000000 ))" >"$tmp/code$i" ) &
	posts+=($!)
done
answered=0 probes=0 worst=0
for _ in $(seq 40); do   # 40 probes, 250 ms apart: about 14 s, more than a block
	s=$(date +%s%N)
	code=$(curl -s -o /dev/null -w '%{http_code}' -m 1 "$R/health") || true
	ms=$(( ($(date +%s%N) - s) / 1000000 ))
	probes=$((probes + 1))
	[ "$code" = 200 ] && answered=$((answered + 1))
	[ "$ms" -gt "$worst" ] && worst=$ms
	sleep 0.25
done
wait "${posts[@]}"
[ "$answered" = "$probes" ] || fail "health answered $answered of $probes probes during 4 relayed calls"
ok "health answered $answered of $probes probes (slowest $worst ms) while 4 relayed calls ran on 12 s blocks"

for i in 1 2 3 4; do
	read -r code ms <"$tmp/code$i"
	[ "$code" = 202 ] && jq -e '.status == "pending"' "$tmp/reply$i" >/dev/null ||
		fail "relayed call $i: HTTP $code $(cat "$tmp/reply$i")"
	[ "$ms" -lt 5000 ] || fail "relayed call $i answered after $ms ms"
	HASH[$i]=$(jq -r .txHash "$tmp/reply$i")
done
ok "each relayed call answered 202 pending with its hash, without waiting for a block"

for i in 1 2 3 4; do
	for _ in $(seq 120); do   # up to 30 s: two blocks and the relayer's next look
		[ "$(http GET "$R/tx/${HASH[$i]}" "" 2)" = 200 ] && jq -e '.status != "pending"' "$tmp/body" >/dev/null && break
		sleep 0.25
	done
	jq -e '.status == "mined" and .block > 0 and .gasUsed > 0' "$tmp/body" >/dev/null || fail "GET /tx/${HASH[$i]}: $(cat "$tmp/body")"
	[ "$("$CAST" receipt "${HASH[$i]}" --json | jq -r .status)" = 0x1 ] || fail "receipt of call $i per cast"
	[ "$(call 'instanceIsRegistered(address)(bool)' "${INSTANCE[$i]}")" = true ] || fail "instance $i not registered per cast"
done
[ "$("$CAST" nonce "$RELAYER")" = $((nonce0 + 4)) ] || fail "relayer nonce $("$CAST" nonce "$RELAYER"), not $((nonce0 + 4))"
health | jq -e '.pending == 0 and .sent == 4' >/dev/null || fail "health after the receipts: $(health)"
spent=$(health | jq .spentWei)
paid=$($PY -c "print($bal0 - $("$CAST" balance "$RELAYER"))")
[ "$paid" -gt 0 ] && [ "$paid" -le "$spent" ] || fail "paid $paid wei, the relayer counts $spent"
grep -q 'registerPeer 0x[0-9a-f]* mined in block' "$tmp/relayer.log" || fail "the log does not report the receipts"
ok "GET /tx followed all 4 to mined; cast: 4 registered, nonce +4, paid $paid wei <= $spent counted"
echo "PASS: the relayer answers while its transactions wait for blocks"
