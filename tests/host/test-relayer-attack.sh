#!/bin/bash
# The relayer verifies before it counts (issue 24 point 4): under 30 junk requests a second
# (registrations naming a real node's instance with forged signatures, leader calls for its
# token with forged signatures, registrations of made-up instances) a node registers through
# the relayer within 5 s and its signed leader call goes through, and the junk sends nothing
# (cast nonce/balance of the relayer's key). Every new check refuses its hostile input with
# a clear reason: a forged chain, a replayed registration or leader call, an unregistered
# token, an expired deadline, a malformed /tx query; the log names functions, not selectors.
# And (point 9) the relayer refuses a key file others may read or someone else owns.
set -euo pipefail
. "$(dirname "$0")/anvil-env.bash" relayer-attack
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/relayer.log" ] && tail -5 "$tmp/relayer.log" | sed 's/^/  relayer: /' >&2; exit 1; }
. "$(dirname "$0")/relayer-env.bash"

[ -x "$BIN" ] || fail "build/dstack-p2p missing: run make"
artifacts DstackClusterNFT
anvil_start
relayer_cluster 3
relayer_start   # the defaults: 5 per instance or token, 60 in all, per 60 s
ok "cluster $CONTRACT, tokens 1..3 bound; relayer on $R"

# ---- the junk: 30 requests a second for 14 s, each answered within its 2 s timeout
forged() { openssl rand -hex "$1" | sed 's/^/0x/'; }
REGSIG='registerPeer((address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes))'
junk_reg() { "$CAST" calldata "$REGSIG" "($1,0x$(printf '%064x' 7),203.0.113.99:51820,1,$2,$(forged 64),$(forged 64),$(forged 65),$(forged 65),$(forged 65))"; }
for k in $(seq 6); do
	jq -nc --arg c "$CONTRACT" --arg d "$(junk_reg "${INSTANCE[1]}" $((k + 1)))" '{to:$c,data:$d}'
	jq -nc --arg c "$CONTRACT" --arg d "$(junk_reg "$(addr "$(rand32)")" 1)" '{to:$c,data:$d}'
	jq -nc --arg c "$CONTRACT" --arg d "$("$CAST" calldata 'electLeaderSigned(uint256,uint256,bytes)' 1 \
		$(($(date +%s) + 600)) "$(forged 65)")" '{to:$c,data:$d}'
done >"$tmp/junk.jsonl"
$PY - "$R/relay" "$tmp/junk.jsonl" 30 14 >"$tmp/flood.json" <<'PY' &
import json, sys, time, urllib.error, urllib.request
url, bodies, rate, secs = sys.argv[1], open(sys.argv[2], "rb").read().split(b"\n"), int(sys.argv[3]), float(sys.argv[4])
bodies = [b for b in bodies if b]
codes, start, n = {}, time.monotonic(), 0
while time.monotonic() - start < secs:
    req = urllib.request.Request(url, bodies[n % len(bodies)], {"Content-Type": "application/json"})
    try:
        code = urllib.request.urlopen(req, timeout=2).status
    except urllib.error.HTTPError as e:
        code = e.code
    except OSError:
        code = 0
    codes[code] = codes.get(code, 0) + 1
    n += 1
    time.sleep(max(0, start + n / rate - time.monotonic()))
print(json.dumps({"sent": n, "codes": codes, "seconds": time.monotonic() - start}))
PY
flood=$!
pids+=($flood)
nonce0=$("$CAST" nonce "$RELAYER") bal0=$("$CAST" balance "$RELAYER")
sleep 3   # long enough to fill a fixed total of 60 requests a minute

t0=$(date +%s%N)
code=$(post "$(reg_calldata 1 1)")
case $code in 200|202) ;; *) fail "the node's registration under junk: HTTP $code $(cat "$tmp/body")" ;; esac
REG_TX=$(jq -r .txHash "$tmp/body")
for _ in $(seq 50); do
	[ "$(call 'instanceIsRegistered(address)(bool)' "${INSTANCE[1]}")" = true ] && break
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -gt 5000 ] && break
	sleep 0.1
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$(call 'instanceIsRegistered(address)(bool)' "${INSTANCE[1]}")" = true ] || fail "not registered per cast after ${ms} ms of junk"
[ "$ms" -le 5000 ] || fail "registered per cast after $ms ms (bound 5000)"
ok "under 30 junk requests/s the node registered through the relayer in $ms ms (cast: registered)"

ELECT=$(elect_calldata 1)
code=$(post "$ELECT")
case $code in 200|202) ;; *) fail "token 1's signed election under junk: HTTP $code $(cat "$tmp/body")" ;; esac
for _ in $(seq 50); do [ "$(call 'currentLeaderTokenId()(uint256)')" = 1 ] && break; sleep 0.1; done
[ "$(call 'currentLeaderTokenId()(uint256)')" = 1 ] || fail "token 1 is not the leader per cast"
ok "token 1's signed leader call went through under the junk (cast: leader 1)"

wait $flood || true
jq -e '.sent >= 380' "$tmp/flood.json" >/dev/null || fail "the flood sent too little: $(cat "$tmp/flood.json")"
jq -e '.codes | keys - ["400","403","422"] | length == 0' "$tmp/flood.json" >/dev/null ||
	fail "junk answered other than 400/403/422 (or not at all): $(cat "$tmp/flood.json")"
[ "$("$CAST" nonce "$RELAYER")" = $((nonce0 + 2)) ] || fail "relayer nonce $("$CAST" nonce "$RELAYER"), not $((nonce0 + 2)): junk was sent"
spent=$(health | jq .spentWei)
paid=$($PY -c "print($bal0 - $("$CAST" balance "$RELAYER"))")
[ "$paid" -gt 0 ] && [ "$paid" -le "$spent" ] || fail "paid $paid wei, the relayer counts $spent"
health | jq -e '.unverified >= 380 and .sent == 2' >/dev/null || fail "counters: $(health)"
ok "junk: $(jq -c .codes "$tmp/flood.json") in $(jq .sent "$tmp/flood.json") requests, 2 transactions sent (cast nonce), $paid wei paid <= $spent counted"

# ---- each new check against its hostile input (no gas: the nonce stays)
expect() { # status body-regex calldata
	local code
	code=$(post "$3")
	[ "$code" = "$1" ] || fail "relayer answered $code, not $1: $(cat "$tmp/body")"
	grep -qE "$2" "$tmp/body" || fail "relayer's $code does not say /$2/: $(cat "$tmp/body")"
	ok "relayer $code: $(jq -r .error "$tmp/body")"
}
code=$(post "$(reg_calldata 2 1)")
case $code in 200|202) ;; *) fail "token 2's registration: HTTP $code $(cat "$tmp/body")" ;; esac
nonce1=$("$CAST" nonce "$RELAYER")
expect 422 'StaleNonce\(1, 1\)' "$(reg_calldata 1 1)"
expect 403 'does not verify against the KMS root' "$(junk_reg "${INSTANCE[3]}" 1)"
expect 400 'registerPeer calldata' "$("$CAST" calldata "$REGSIG" "(${INSTANCE[2]},0x$(printf '%064x' 1),x,1,1,0x,0x,0x,0x,0x)")"
expect 403 "not signed by token 1's node key with its nonce 1" "$ELECT"
expect 403 "not signed by token 2's node key" "$(elect_calldata 1 | sed "s/^\(0x.\{8\}\).\{64\}/\1$(printf '%064x' 2)/")"
expect 422 'NotRegisteredNode\(3\)' "$(elect_calldata 3)"
expect 422 "LeaderActionExpired.*relayer's clock" "$(elect_calldata 1 $(($(date +%s) - 3600)))"
expect 403 'outside 1..254' "$("$CAST" calldata 'electLeaderSigned(uint256,uint256,bytes)' 255 1 "$(forged 65)")"
expect 400 'do not decode' "$("$CAST" calldata 'electLeaderSigned(uint256,uint256,bytes)' 1 1 0x00)"
[ "$("$CAST" nonce "$RELAYER")" = "$nonce1" ] || fail "a refused request sent a transaction"
[ "$(http GET "$R/tx/0x1234")" = 400 ] || fail "GET /tx/0x1234: $(cat "$tmp/body")"
[ "$(http GET "$R/tx/0x$(openssl rand -hex 32)")" = 404 ] || fail "GET /tx of an unknown hash: $(cat "$tmp/body")"
[ "$(http GET "$R/tx/$REG_TX")" = 200 ] && jq -e '.status == "mined" and .block > 0' "$tmp/body" >/dev/null ||
	fail "GET /tx/$REG_TX: $(cat "$tmp/body")"
ok "GET /tx: 400 for a malformed hash, 404 for an unknown one, the registration mined"

# ---- the log names functions (issue 28 point 11)
grep -q ' registerPeer -> 20[02]' "$tmp/relayer.log" || fail "the log does not name registerPeer: $(grep -m2 relay "$tmp/relayer.log")"
grep -q ' electLeaderSigned -> ' "$tmp/relayer.log" || fail "the log does not name electLeaderSigned"
! grep -qE ' 0x[0-9a-f]{8} -> ' "$tmp/relayer.log" || fail "the log still shows raw selectors"
ok "the relayer's log names registerPeer and electLeaderSigned, no raw selectors"

# ---- point 9: a key file others may read, or that another user owns, is refused
chmod 644 "$tmp/relayer.key"
rc=0; "$BIN" relayer --listen "127.0.0.1:$(free_port)" --key-file "$tmp/relayer.key" >"$tmp/out" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q "relayer.key has mode 0644; it must be 0600 or 0400" "$tmp/out" ||
	fail "a 0644 key file: exit $rc, $(cat "$tmp/out")"
ok "a 0644 key file: exit 2, $(head -1 "$tmp/out")"
chmod 600 "$tmp/relayer.key"
if [ "$(id -u)" = 0 ]; then
	chown 65534 "$tmp/relayer.key"
	rc=0; "$BIN" relayer --listen "127.0.0.1:$(free_port)" --key-file "$tmp/relayer.key" >"$tmp/out" 2>&1 || rc=$?
	[ "$rc" = 2 ] && grep -q "not owned by the user running this (uid 0; its owner is uid 65534)" "$tmp/out" || fail "another user's key file: exit $rc, $(cat "$tmp/out")"
	ok "another user's key file: exit 2, $(head -1 "$tmp/out")"
fi
echo "PASS: the relayer verifies before it counts"
