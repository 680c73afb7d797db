#!/usr/bin/env bash
# Gas of registerPeer (new peer), registerPeer (update), burn and the getPeers() view at 10, 100 and
# 254 peers, measured from real transaction receipts on a throw-away anvil; getPeers() is then called
# by eth_call with an explicit 30M gas cap (geth's default RPC cap is 50M, anvil's the 30M block limit).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
bin=${FOUNDRY_BIN:-$here/../node_modules/.bin}
port=${BENCH_PORT:-$((20000 + RANDOM % 10000))}
rpc=http://127.0.0.1:$port
cap=30000000

work=$(mktemp -d)
"$bin/anvil" --port "$port" --silent --gas-limit "$cap" >"$work/anvil.log" 2>&1 &
anvil_pid=$!
trap 'kill "$anvil_pid" 2>/dev/null || true; wait "$anvil_pid" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
for _ in $(seq 50); do
    "$bin/cast" chain-id --rpc-url "$rpc" >/dev/null 2>&1 && break
    sleep 0.1
done
export FOUNDRY_BROADCAST="$work/broadcast"

flock "$here/.forge.lock" "$bin/forge" build --quiet   # same lock as deploy.sh

printf '%-6s %12s %12s %12s %14s %14s\n' peers register update burn getPeers_gas getPeers_bytes
cluster=0x0000000000000000000000000000000000000000
for n in 10 100 254; do
    TARGET=$n CLUSTER=$cluster "$bin/forge" script script/GasBench.s.sol:GasBench \
        --rpc-url "$rpc" --broadcast >"$work/bench.log" 2>&1 || { cat "$work/bench.log" >&2; exit 1; }
    cluster=$(sed -n 's/.*bench cluster at: *\(0x[0-9a-fA-F]\{40\}\).*/\1/p' "$work/bench.log" | tail -n 1)
    # The run ends [.., registerPeer (new), registerPeer (update), burn, mint, bind, registerPeer]:
    # take the last six transactions from the chain itself and check what each one called.
    head=$("$bin/cast" block-number --rpc-url "$rpc")
    hashes=()
    from=$((head > 12 ? head - 11 : 1))    # anvil may pack several transactions into one block
    for ((b = from; b <= head; b++)); do
        while read -r h; do [ -n "$h" ] && hashes+=("$h"); done < <("$bin/cast" block "$b" --rpc-url "$rpc" --json |
            node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{for(const t of JSON.parse(s).transactions)console.log(typeof t==="string"?t:t.hash)})')
    done
    k=${#hashes[@]}
    gas_of() { # hash expected-selector
        local sel
        sel=$("$bin/cast" tx --rpc-url "$rpc" "$1" input | cut -c1-10)
        [ "$sel" = "$2" ] || { echo "gas-report.sh: tx $1 calls $sel, expected $2" >&2; exit 1; }
        "$bin/cast" receipt --rpc-url "$rpc" "$1" gasUsed
    }
    register_sel=$("$bin/cast" sig "registerPeer((address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes))")
    reg=$(gas_of "${hashes[k - 6]}" "$register_sel")
    upd=$(gas_of "${hashes[k - 5]}" "$register_sel")
    burn=$(gas_of "${hashes[k - 4]}" "$("$bin/cast" sig "burn(uint256)")")
    data=$("$bin/cast" calldata "getPeers()")
    est=$("$bin/cast" estimate --rpc-url "$rpc" "$cluster" "getPeers()")
    out=$("$bin/cast" rpc --rpc-url "$rpc" eth_call \
        "{\"to\":\"$cluster\",\"data\":\"$data\",\"gas\":\"$(printf '0x%x' $cap)\"}" latest)
    bytes=$(( (${#out} - 4) / 2 ))   # quoted "0x..." hex
    count=$("$bin/cast" call --rpc-url "$rpc" "$cluster" "peerCount()(uint256)")
    [ "$count" = "$n" ] || { echo "gas-report.sh: expected $n peers, found $count" >&2; exit 1; }
    printf '%-6s %12s %12s %12s %14s %14s\n' "$n" "$reg" "$upd" "$burn" "$est" "$bytes"
done
first=$("$bin/cast" block 1 --rpc-url "$rpc" --json | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const t=JSON.parse(s).transactions[0];console.log(typeof t==="string"?t:t.hash)})')
echo "deployment: $("$bin/cast" receipt --rpc-url "$rpc" "$first" gasUsed) gas; getPeers() at 254 peers answered an eth_call capped at $cap gas."
