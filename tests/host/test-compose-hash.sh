#!/bin/bash
# SPDX-License-Identifier: MIT
# The compose hash, computed as dstack does (sha256 of the raw app-compose.json bytes)
# and as the dstack SDK's getComposeHash does (sha256 of the JSON with sorted keys, no
# spaces): they agree exactly when the file is written sorted and compact. Checked on
# the simulator's Info (its app-compose is written that way) and on the vector in
# docs/deploy.md, which an unsorted copy of the same JSON does not match.
set -eu
cd "$(dirname "$0")/../.."
fail() { echo "test-compose-hash: FAIL: $*"; exit 1; }
[ -x build/dstack-sim ] || fail "build/dstack-sim missing (make)"
[ -d node_modules/@phala/dstack-sdk ] || fail "@phala/dstack-sdk missing (make deps)"
tmp=$(mktemp -d /tmp/dstack-p2p-hash.XXXXXX)
sim=
trap '[ -n "$sim" ] && kill "$sim" 2>/dev/null; rm -rf "$tmp"' EXIT
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/kms.key"
build/dstack-sim --socket "$tmp/agent.sock" --kms-root-key-file "$tmp/kms.key" \
	--app-id 5fbdb2315678afecb367f032d93f642f64180aa3 \
	--instance-id 0123456789abcdef0123456789abcdef01234567 >"$tmp/sim.log" 2>&1 &
sim=$!
for _ in $(seq 1 250); do [ -S "$tmp/agent.sock" ] && break; sleep 0.02; done
curl -sf --max-time 5 --unix-socket "$tmp/agent.sock" -X POST -H 'Content-Type: application/json' \
	-d '{}' http://localhost/Info >"$tmp/info.json" || fail "Info ($(cat "$tmp/sim.log"))"

# The vector of docs/deploy.md: bytes, and the hash sha256sum gives them.
vector='{"docker_compose_file":"services: {}\n","gateway_enabled":true,"kms_enabled":true,"manifest_version":2,"name":"p2p-node","runner":"docker-compose"}'
want=$(printf '%s' "$vector" | sha256sum | cut -c1-64)
grep -qF "$want" docs/deploy.md || fail "docs/deploy.md does not show the vector's hash $want"

VECTOR=$vector WANT=$want node --input-type=module -e '
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { getComposeHash } from "@phala/dstack-sdk/get-compose-hash";
const sha = (s) => createHash("sha256").update(s, "utf8").digest("hex");
const info = JSON.parse(readFileSync(process.argv[1], "utf8"));
const raw = JSON.parse(info.tcb_info).app_compose;
const fail = (m) => { console.log("test-compose-hash: FAIL: " + m); process.exit(1); };
if (sha(raw) !== info.compose_hash) fail(`simulator: sha256(app_compose) ${sha(raw)} != Info.compose_hash ${info.compose_hash}`);
if (getComposeHash(JSON.parse(raw)) !== info.compose_hash) fail(`simulator: getComposeHash ${getComposeHash(JSON.parse(raw))} != Info.compose_hash ${info.compose_hash} (app_compose keys unsorted?)`);
const v = process.env.VECTOR, want = process.env.WANT;
if (sha(v) !== want || getComposeHash(JSON.parse(v)) !== want) fail("vector: the two hashes differ from " + want);
const o = JSON.parse(v), unsorted = JSON.stringify({ name: o.name, ...o });
if (sha(unsorted) === want) fail("an unsorted copy hashes the same: the vector proves nothing");
if (getComposeHash(JSON.parse(unsorted)) !== want) fail("getComposeHash depends on key order");
console.log(`test-compose-hash: simulator ${info.compose_hash} and vector ${want} agree both ways; PASS`);
' "$tmp/info.json"
