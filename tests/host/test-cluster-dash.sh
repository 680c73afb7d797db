#!/bin/bash
# `dstack-p2p cluster serve` in a real browser (Debian's headless chromium through
# chromium-driver and python3-selenium) against a cluster on anvil, every claim checked with
# cast: the page lists exactly the tokens cast reports, a mint and a burn made with cast
# appear on the open page without a reload, a bind made from the page through a test
# EIP-1193 wallet (an unlocked anvil dev account) lands on chain, registered and verified
# records, the leader and a vote of no confidence show as cast reads them, a boot policy set
# from the page lands, a reverting mint shows ClusterFull(maxNodes=3) with its hint and sends
# nothing (nonce kept). The manage forms show the cluster's policy (cast's values), amounts in
# ETH, enums by name and times in ISO 8601 in the events, the leader's label and overlay address.
# The server's own refusals too: non-loopback --listen, POST, a bad Last-Event-ID, a foreign
# Host, huge heads. Screenshots go to build/dash-*.png (not committed). About 30 s.
set -euo pipefail
. "$(dirname "$0")/anvil-env.bash" cluster-dash
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/serve.log" ] && tail -5 "$tmp/serve.log" | sed 's/^/  serve: /' >&2; exit 1; }

[ -x "$BIN" ] || fail "build/dstack-p2p missing: run make"
for t in /usr/bin/chromium /usr/bin/chromedriver; do
	[ -x "$t" ] || fail "$t missing: run scripts/deps.sh"
done
$PY -c 'import selenium' 2>/dev/null || fail "python3-selenium missing: run scripts/deps.sh"
artifacts DstackClusterNFT
anvil_start

# anvil's dev account 0 is the operator; its key signs only the cast commands here: the
# page's wallet is anvil's own unlocked account, the server holds no key at all.
OWNER=$(addr $OWNER_SK)
umask 077
echo "$OWNER_SK" >"$tmp/owner.key"
cl() { "$BIN" cluster "$@"; }

KMS_SK=$(rand32)
# Every policy away from its default, so the page's forms show the cluster's, not defaults.
cl deploy --key-file "$tmp/owner.key" --kms-root "$(addr "$KMS_SK")" --max-nodes 3 --modes wireguard \
	--boot-policy permissive --tcb-policy any --any-device no --mint-price 0.02ether --public-minting \
	--compose-hash "$(rand32)" --artifact "$art/DstackClusterNFT.sol/DstackClusterNFT.json" \
	--json >"$tmp/deploy.json" 2>"$tmp/err" || fail "deploy: $(cat "$tmp/err")"
CONTRACT=$(jq -r .contract "$tmp/deploy.json" | tail -1)
export CLUSTER_CONTRACT=$CONTRACT DSTACK_P2P_KEY_FILE=$tmp/owner.key
cl mint "$OWNER" alpha >/dev/null || fail "mint alpha"
cl mint "$OWNER" beta >/dev/null || fail "mint beta"
ok "cluster $CONTRACT deployed with tokens 1 and 2 (max 3, wireguard, permissive, tcb any, device list, public at 0.02 ETH)"

# ---- the server's refusals
rc=0; cl serve --listen 0.0.0.0:0 2>"$tmp/err" || rc=$?
[ $rc = 2 ] && grep -q 'not a loopback address: pass --allow-remote' "$tmp/err" ||
	fail "a non-loopback --listen without --allow-remote: exit $rc, $(cat "$tmp/err")"
rc=0; cl serve --listen nonsense 2>"$tmp/err" || rc=$?
[ $rc = 2 ] || fail "--listen nonsense exits $rc, not 2"
ok "serve refuses a non-loopback address without --allow-remote, and a bad --listen (exit 2)"

web=$(free_port)
# No --web-dir: a binary built in a checkout serves that checkout's web/.
"$BIN" cluster serve --listen 127.0.0.1:$web >"$tmp/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do $PY - "$web" <<'PY' 2>/dev/null && break; sleep 0.1; done
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
PY
grep -q "(page from $(dirname "$BIN")/../web)" "$tmp/serve.log" || fail "serve did not take the checkout's page: $(cat "$tmp/serve.log")"
ok "serve without --web-dir serves the checkout's web/"

export BIN
# status --json and /api/status are the same document (one source of truth): same tokens.
$PY - "$web" "$tmp" <<'PY' || fail "raw HTTP checks"
import json, os, socket, subprocess, sys, urllib.request
port, tmp = int(sys.argv[1]), sys.argv[2]
base = f"http://127.0.0.1:{port}"
def raw(req):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.sendall(req)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    return out.split(b"\r\n", 1)[0].decode()
api = json.load(urllib.request.urlopen(base + "/api/status", timeout=10))
cli = json.loads(subprocess.check_output([os.environ["BIN"], "cluster", "status", "--json"]))
assert [t["tokenId"] for t in api["tokens"]] == [t["tokenId"] for t in cli["tokens"]], (api, cli)
assert api["policy"] == cli["policy"] and api["owner"] == cli["owner"], (api, cli)
abi = json.load(urllib.request.urlopen(base + "/api/abi", timeout=10))
open(tmp + "/abi.json", "w").write(json.dumps(abi))
checks = [
    (b"POST /api/status HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", "413"),
    (b"PUT /api/status HTTP/1.1\r\n\r\n", "405"),
    (b"GET /api/events HTTP/1.1\r\nHost: localhost\r\nLast-Event-ID: 12x\r\n\r\n", "400"),
    (b"GET /../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "404"),
    (b"GET /api/status HTTP/1.1\r\nHost: evil.example:%d\r\n\r\n" % port, "403"),
    (b"GET /api/status HTTP/1.1\r\n\r\n", "403"),
    (b"GET /api/status HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", "431"),
]
for req, want in checks:
    got = raw(req)
    assert want in got, (req[:40], got)
# Event streams stay open, 16 at most: the 17th is refused and plain requests still work.
streams = []
for i in range(17):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = s.recv(4096).split(b"\r\n", 1)[0].decode()
    streams.append(s)
    assert ("503" if i == 16 else "200") in head, (i, head)
assert "200" in raw(b"GET /api/abi HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
for s in streams:
    s.close()
print("ok: /api/status lists what status --json lists; POST 413, PUT 405, bad Last-Event-ID 400, "
      "a path outside the page 404, a Host not loopback (DNS rebinding) 403, a 9 kB head 431, a 17th event stream 503")
PY
# Selectors the page sends: the server's table against cast's keccak.
for a in mint bind burn unbind set-config; do
	sig=$(jq -r ".functions[\"$a\"].signature" "$tmp/abi.json")
	[ "$(jq -r ".functions[\"$a\"].selector" "$tmp/abi.json")" = "$("$CAST" sig "$sig")" ] ||
		fail "selector of $a ($sig)"
done
ok "/api/abi selectors agree with cast sig"

mkdir -p "$ROOT/build"
start=$(date +%s)
DASH_URL=http://127.0.0.1:$web/ OWNER=$OWNER CAST=$CAST OUT=$ROOT/build KMS_SK=$KMS_SK \
	$PY "$ROOT/tests/host/dash-browser.py" || fail "browser checks"
echo "browser part took $(( $(date +%s) - start )) s"
echo PASS
