#!/bin/bash
# dstack-sim + `dstack-p2p identity`, checked by independent tools: cast for the node
# key's address and the KMS root, python's BLAKE2s + `wg pubkey` for the WireGuard key
# schedule of docs/keys.md. Only unix sockets and 127.0.0.1 are used.
set -euo pipefail
cd "$(dirname "$0")/../.."
O=${O:-build}
SIM=$O/dstack-sim
P2P=$O/dstack-p2p
CAST=node_modules/.bin/cast
RUN=$(mktemp -d /tmp/test-attest-sim.XXXXXX)
SIM_PID=

cleanup() {
	[ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
	rm -rf "$RUN"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
lower() { tr 'A-F' 'a-f'; }

KMS_KEY=$(openssl rand -hex 32)
echo "$KMS_KEY" > "$RUN/kms.key"
APP_ID=$(openssl rand -hex 20)
INSTANCE_A=$(openssl rand -hex 20)
INSTANCE_B=$(openssl rand -hex 20)
ROOT=$("$CAST" wallet address --private-key "0x$KMS_KEY" | lower)

# start_sim INSTANCE: run the simulator and wait (at most 5 s) until it listens.
start_sim() {
	rm -f "$RUN/ready"
	"$SIM" --socket "$RUN/agent.sock" --listen 127.0.0.1:0 --kms-root-key-file "$RUN/kms.key" \
		--app-id "$APP_ID" --instance-id "$1" --ready-file "$RUN/ready" \
		>"$RUN/sim.out" 2>"$RUN/sim.err" &
	SIM_PID=$!
	for _ in $(seq 50); do [ -s "$RUN/ready" ] && break; sleep 0.1; done
	[ -s "$RUN/ready" ] || fail "dstack-sim did not start: $(cat "$RUN/sim.err")"
	grep -q "NOT a TEE" "$RUN/sim.err" || fail "no simulator banner on stderr"
}

stop_sim() {
	kill -TERM "$SIM_PID"
	wait "$SIM_PID" || fail "dstack-sim exited $? on SIGTERM"
	SIM_PID=
	[ ! -e "$RUN/agent.sock" ] || fail "socket left behind after SIGTERM"
}

# agent_key PATH PURPOSE: the raw GetKey key, straight from the socket with curl.
agent_key() {
	curl -sf --unix-socket "$RUN/agent.sock" -H 'Content-Type: application/json' \
		-d "{\"path\":\"$1\",\"purpose\":\"$2\"}" http://localhost/GetKey | jq -r .key
}

# The documented WireGuard schedule (docs/keys.md), written independently in python.
wg_private_from_material() {
	python3 - "$1" <<'PY'
import base64, hashlib, sys
k = bytearray(hashlib.blake2s(b"dstack-p2p wireguard x25519 private key v1",
                              key=bytes.fromhex(sys.argv[1]), digest_size=32).digest())
k[0] &= 248; k[31] &= 127; k[31] |= 64
print(base64.b64encode(bytes(k)).decode())
PY
}

start_sim "$INSTANCE_A"
"$P2P" identity --agent "$RUN/agent.sock" --json --kms-root "$ROOT" > "$RUN/id-a.json" \
	|| fail "identity with the right KMS root exited $?"
jq -e '.chain == "valid"' "$RUN/id-a.json" >/dev/null || fail "chain not valid: $(cat "$RUN/id-a.json")"
[ "$(jq -r .instance_id "$RUN/id-a.json")" = "0x$INSTANCE_A" ] || fail "instance id"
[ "$(jq -r .app_id "$RUN/id-a.json")" = "0x$APP_ID" ] || fail "app id"
grep -qi "private" "$RUN/id-a.json" && fail "identity output mentions a private key"

node_key=$(agent_key "dstack-p2p/node/$INSTANCE_A" "dstack-p2p:node")
want=$("$CAST" wallet address --private-key "0x$node_key" | lower)
[ "$(jq -r .node_address "$RUN/id-a.json")" = "$want" ] || fail "node address != cast's $want"
echo "ok: node address $want matches cast"

material=$(agent_key "dstack-p2p/wireguard/$INSTANCE_A" "dstack-p2p:wireguard")
want=$(wg_private_from_material "$material" | wg pubkey)
[ "$(jq -r .wireguard_public_key "$RUN/id-a.json")" = "$want" ] || fail "wg key != $want"
echo "ok: WireGuard public key $want matches BLAKE2s + wg pubkey"

# The same agent over TCP, found through the SDKs' environment variable.
url=$(sed -n 2p "$RUN/ready")
DSTACK_SIMULATOR_ENDPOINT=$url "$P2P" identity --json > "$RUN/id-tcp.json"
[ "$(jq -r .node_address "$RUN/id-tcp.json")" = "$(jq -r .node_address "$RUN/id-a.json")" ] ||
	fail "TCP endpoint gave another identity"

# A wrong root is refused, with its own exit status.
rc=0
"$P2P" identity --agent "$RUN/agent.sock" --kms-root 0x000000000000000000000000000000000000dead \
	>/dev/null 2>"$RUN/err" || rc=$?
[ "$rc" = 3 ] || fail "wrong KMS root: exit $rc"
grep -q "not by the expected KMS root" "$RUN/err" || fail "wrong KMS root message: $(cat "$RUN/err")"

# Info carries the real field names; tcb_info is a JSON document in a string with what the
# SDKs' TcbInfo requires, and compose_hash is sha256 of app_compose, as dstack computes it.
curl -sf --unix-socket "$RUN/agent.sock" -H 'Content-Type: application/json' -d '{}' \
	http://localhost/Info > "$RUN/info.json"
python3 - "$RUN/info.json" <<'PY' || fail "Info is not shaped like the real agent's"
import hashlib, json, sys
info = json.load(open(sys.argv[1]))
for k in ("app_id", "instance_id", "app_cert", "tcb_info", "app_name", "device_id",
          "mr_aggregated", "os_image_hash", "key_provider_info", "compose_hash", "vm_config"):
    assert k in info, k
tcb = json.loads(info["tcb_info"])
for k in ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "app_compose", "event_log",
          "mr_aggregated", "os_image_hash", "compose_hash", "device_id"):
    assert k in tcb, k
assert hashlib.sha256(tcb["app_compose"].encode()).hexdigest() == info["compose_hash"]
assert json.loads(info["key_provider_info"])["simulated"] is True
PY

# Like the real agent, a body without Content-Type: application/json is refused.
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$RUN/agent.sock" \
	-d '{"path":"x"}' http://localhost/GetKey)
[ "$code" = 400 ] || fail "GetKey without JSON content type: HTTP $code"

# Bad requests get an HTTP error, and an idle client does not hold up the others.
code=$(head -c 70000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' --unix-socket \
	"$RUN/agent.sock" -H 'Content-Type: application/json' --data-binary @- http://localhost/GetKey)
[ "$code" = 413 ] || fail "70 kB request: HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$RUN/agent.sock" \
	-H 'Content-Type: application/json' -d '{}' http://localhost/Nope)
[ "$code" = 404 ] || fail "unknown method: HTTP $code"
(sleep 3 | socat - "UNIX-CONNECT:$RUN/agent.sock" >/dev/null 2>&1 &)
sleep 0.2
timeout 2 curl -sf --unix-socket "$RUN/agent.sock" -H 'Content-Type: application/json' -d '{}' \
	http://localhost/Info >/dev/null || fail "an idle connection blocked Info"

# Restart: same keys. Another instance of the same app: other keys.
stop_sim
start_sim "$INSTANCE_A"
"$P2P" identity --agent "$RUN/agent.sock" --json --kms-root "$ROOT" > "$RUN/id-a2.json"
cmp -s "$RUN/id-a.json" "$RUN/id-a2.json" || fail "identity changed across a restart"
stop_sim
start_sim "$INSTANCE_B"
"$P2P" identity --agent "$RUN/agent.sock" --json --kms-root "$ROOT" > "$RUN/id-b.json"
for field in node_address wireguard_public_key; do
	[ "$(jq -r ".$field" "$RUN/id-a.json")" != "$(jq -r ".$field" "$RUN/id-b.json")" ] ||
		fail "two instances share $field"
done
[ "$(jq -r .app_public_key "$RUN/id-a.json")" = "$(jq -r .app_public_key "$RUN/id-b.json")" ] ||
	fail "two instances of one app have different app keys"
stop_sim

# No agent at all: one clear message, non-zero exit.
rc=0
DSTACK_SIMULATOR_ENDPOINT=$RUN/none.sock "$P2P" identity 2>"$RUN/err" >/dev/null || rc=$?
[ "$rc" = 1 ] && grep -q "no such socket" "$RUN/err" || fail "missing agent: exit $rc, $(cat "$RUN/err")"

echo "PASS test-attest-sim"
