# Sourced (not run) by the host tests that drive a cluster on anvil: the tools, a temp dir
# removed on exit with the processes in pids, the contract artifacts, anvil's dev account 0,
# and anvil_start. The test defines fail() (what to print on failure is its own).
#   . "$(dirname "$0")/anvil-env.bash" NAME   # NAME: the temp dir's prefix
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${DSTACK_P2P_BIN:-$ROOT/build/dstack-p2p}
CAST=$ROOT/node_modules/.bin/cast
ANVIL=$ROOT/node_modules/.bin/anvil
FORGE=$ROOT/node_modules/.bin/forge
PY=/usr/bin/python3
art=$ROOT/contracts/out

tmp=$(mktemp -d "/tmp/$1.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
ok() { echo "ok: $*"; }

# anvil's dev account 0: the cluster's operator in every test.
OWNER_SK=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
addr() { "$CAST" wallet address --private-key "$1" | tr A-F a-f; }
rand32() { echo "0x$(openssl rand -hex 32)"; }
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# artifacts NAME...: contracts/out/NAME.sol/NAME.json exist (forge build, serialised).
artifacts() {
	local n
	for n in "$@"; do
		[ -f "$art/$n.sol/$n.json" ] && continue
		(cd "$ROOT/contracts" && flock .forge.lock "$FORGE" build >/dev/null) || fail "forge build"
		return
	done
}

# anvil_start: a fresh anvil on a free loopback port ($port); ETH_RPC_URL is exported.
anvil_start() {
	port=$(free_port)
	"$ANVIL" --host 127.0.0.1 --port "$port" --silent >"$tmp/anvil.log" 2>&1 &
	pids+=($!)
	export ETH_RPC_URL=http://127.0.0.1:$port
	for _ in $(seq 100); do "$CAST" chain-id >/dev/null 2>&1 && break; sleep 0.1; done
	"$CAST" chain-id >/dev/null 2>&1 || fail "anvil did not start"
}
