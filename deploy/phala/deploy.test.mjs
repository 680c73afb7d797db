// SPDX-License-Identifier: MIT
// deploy.mjs and standin.mjs without a chain or namespaces (the whole flow, with anvil, the
// stand-in booting agents and a gateway mesh, is tests/host/test-phala-deploy.sh): the
// compose-hash rule against @phala/cloud's getComposeHash and docs/deploy.md's vector, the
// stand-in's app-compose.json and its env key signature as verifyEnvEncryptPublicKey reads
// it, --dry-run printing every request and sending none, and configuration mistakes.
// Run: node --test deploy/phala/
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { encryptEnvVars, getComposeHash, verifyEnvEncryptPublicKey } from "@phala/cloud";
import { keccak256 } from "viem";
import { privateKeyToAddress } from "viem/accounts";
import { appCompose, appComposeBytes, compressedToAddress } from "./deploy.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const SCRIPT = join(HERE, "deploy.mjs");
const CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const APP_ID = CONTRACT.slice(2).toLowerCase();
const DEPLOYER = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
const IMAGE = `registry.example/dstack-p2p@sha256:${"ab".repeat(32)}`;
const API_KEY = "phak_test_not_a_secret";
const sha256 = (s) => createHash("sha256").update(s, "utf8").digest("hex");

function run(args, env) {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 60000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

const ARGS = ["--name", "node-one", "--image", IMAGE, "--deployer", DEPLOYER, "--contract", CONTRACT,
  "--rpc", "https://rpc-a.example,https://rpc-b.example", "--relayer", "https://relayer.example/register"];

// Something on loopback that records every request: nothing may reach it in a dry run.
async function recorder() {
  const requests = [];
  const server = createServer((req, res) => { requests.push(`${req.method} ${req.url}`); res.writeHead(500); res.end(); });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { server, requests, url: `http://127.0.0.1:${server.address().port}` };
}

// The stand-in, with a KMS root key of this test; it boots nothing here.
async function standIn(t, ...extra) {
  const dir = mkdtempSync(join(tmpdir(), "phala-standin-"));
  const kmsKey = `0x${"11".repeat(32)}`;
  writeFileSync(join(dir, "kms.key"), kmsKey);
  const p = spawn(process.execPath, [join(HERE, "standin.mjs"), "--ready-file", join(dir, "addr"), "--kms-key-file",
    join(dir, "kms.key"), "--rpc", "/nonexistent", "--hook", "/bin/false", ...extra], { stdio: "ignore" });
  t.after(() => { p.kill(); rmSync(dir, { recursive: true, force: true }); });
  for (let i = 0; i < 200; i++) {
    try { if (readFileSync(join(dir, "addr"), "utf8").trim()) break; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 25));
  }
  const base = `http://${readFileSync(join(dir, "addr"), "utf8").trim()}/api/v1`;
  const call = async (method, path, body) => {
    const r = await fetch(`${base}${path}`, { method, headers: { "x-api-key": API_KEY, "content-type": "application/json" },
      body: body && JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  };
  return { call, base, kmsRoot: privateKeyToAddress(kmsKey).toLowerCase() };
}

test("the compose hash: sha256 of app-compose.json with sorted keys, as getComposeHash and docs/deploy.md", () => {
  const vector = '{"docker_compose_file":"services: {}\\n","gateway_enabled":true,"kms_enabled":true,"manifest_version":2,"name":"p2p-node","runner":"docker-compose"}';
  const v = JSON.parse(vector);
  assert.equal(appComposeBytes({ name: v.name, ...v }), vector, "keys sorted, no spaces, whatever the order");
  assert.equal(sha256(appComposeBytes(v)), "31eb7309198367959e9b99f3c3e9b430dcca57ba6e1bd0052bee69afafad327e");
  const m = appCompose({ name: "node-one" }, "services:\n  a: {image: \"x\": y}\n");
  assert.equal(sha256(appComposeBytes(m)), getComposeHash(m));
  assert.deepEqual(Object.keys(m).sort(), ["allowed_envs", "docker_compose_file", "gateway_enabled", "kms_enabled",
    "manifest_version", "name", "public_logs", "public_sysinfo", "runner"]);
});

test("the stand-in: app-compose.json hashed by its own rule, env key signed by the KMS root, sealed env checked", async (t) => {
  const s = await standIn(t);
  const compose = readFileSync(join(HERE, "../../examples/compose/phala.yml"), "utf8");
  const m = appCompose({ name: "node-one" }, compose);
  const { manifest_version: _v, runner: _r, ...compose_file } = m;
  const p = await s.call("POST", "/cvms/provision", { name: "node-one", compose_file });
  assert.equal(p.status, 200);
  assert.equal(p.body.compose_hash, sha256(appComposeBytes(m)), "python3's json and ours agree on the bytes");

  const k = (await s.call("GET", `/kms/${p.body.kms_id}/pubkey/${APP_ID}`)).body;
  const sig = Buffer.from(k.signature, "hex");
  assert.equal(sig.length, 65);
  assert.ok(sig[64] <= 1, "v in {0, 1} as dstack's KMS signs");
  const signer = verifyEnvEncryptPublicKey(Buffer.from(k.public_key, "hex"), sig, APP_ID);
  assert.equal(compressedToAddress(signer, keccak256), s.kmsRoot);
  sig[10] ^= 1;
  const forged = verifyEnvEncryptPublicKey(Buffer.from(k.public_key, "hex"), sig, APP_ID);
  assert.notEqual(forged && compressedToAddress(forged, keccak256), s.kmsRoot, "a changed signature names another key");
  const other = verifyEnvEncryptPublicKey(Buffer.from(k.public_key, "hex"), Buffer.from(k.signature, "hex"), "00".repeat(20));
  assert.notEqual(other && compressedToAddress(other, keccak256), s.kmsRoot, "the signature covers the app id");

  // A commit whose env is sealed to another key is refused; the right key is accepted.
  const wrong = await encryptEnvVars([{ key: "CLUSTER_CONTRACT", value: CONTRACT }], "9".repeat(64));
  const bad = await s.call("POST", "/cvms", { app_id: APP_ID, compose_hash: p.body.compose_hash, encrypted_env: wrong });
  assert.equal(bad.status, 400);
  assert.match(bad.body.detail, /not sealed to this app's env key/);
  const sealed = await encryptEnvVars([{ key: "CLUSTER_CONTRACT", value: CONTRACT }], k.public_key);
  const ok = await s.call("POST", "/cvms", { app_id: APP_ID, compose_hash: p.body.compose_hash, encrypted_env: sealed });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.instance_id, null, "no instance id before the first boot");
  const st = (await s.call("GET", `/cvms/${ok.body.vm_uuid.replace(/-/g, "")}/state`)).body;
  assert.match(st.status, /^(provisioned|starting)$/);
});

// A JSON-RPC endpoint whose every eth_call answers `word` (one 32-byte word).
async function fakeRpc(word) {
  const calls = [];
  const server = createServer((req, res) => {
    let data = "";
    req.on("data", (c) => { data += c; });
    req.on("end", () => {
      const q = JSON.parse(data);
      calls.push(q.method);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ jsonrpc: "2.0", id: q.id, result: `0x${word.padStart(64, "0")}` }));
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { server, calls, url: `http://127.0.0.1:${server.address().port}` };
}

test("--provision-only: provision, the hash checked, the allow-list read; no key: the command printed", async (t) => {
  const s = await standIn(t, "--log", join(tmpdir(), `phala-po-${process.pid}.log`));
  const log = join(tmpdir(), `phala-po-${process.pid}.log`);
  t.after(() => rmSync(log, { force: true }));
  const dir = mkdtempSync(join(tmpdir(), "phala-po-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = { PHALA_CLOUD_API_KEY: API_KEY, PHALA_CLOUD_API_PREFIX: s.base };
  for (const [word, want] of [["0", /cluster allow-compose 0x[0-9a-f]{64} --contract/], ["1", /is allowed by/]]) {
    const rpc = await fakeRpc(word);
    t.after(() => rpc.server.close());
    const r = await run([...ARGS, "--provision-only", "--operator-rpc", rpc.url, "--state", join(dir, `s${word}.json`)], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, want);
    assert.deepEqual(rpc.calls, ["eth_call"]);
    const hash = JSON.parse(readFileSync(join(dir, `s${word}.json`), "utf8")).provision.compose_hash;
    assert.equal(sha256(readFileSync(join(dir, `s${word}.app-compose.json`), "utf8")), hash);
  }
  const sent = readFileSync(log, "utf8").split("\n").filter((l) => /^(POST|PATCH) /.test(l));
  assert.deepEqual(sent, ["POST /api/v1/cvms/provision", "POST /api/v1/cvms/provision"], "no commit");
});

test("--dry-run prints every request (API, RPC, dstack-p2p cluster) and sends none", async (t) => {
  const r0 = await recorder();
  t.after(() => r0.server.close());
  const dir = mkdtempSync(join(tmpdir(), "phala-dry-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = await run([...ARGS, "--dry-run", "--operator-rpc", r0.url, "--key-file", "/k", "--state", join(dir, "s.json")],
    { PHALA_CLOUD_API_KEY: API_KEY, PHALA_CLOUD_API_PREFIX: `${r0.url}/api/v1` });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r0.requests, []);
  const api = r.stdout.split("\n").filter((l) => /^(GET|POST|PATCH) http\S*\/api\/v1/.test(l)).map((l) => l.replace(`${r0.url}/api/v1`, ""));
  assert.deepEqual(api, ["GET /cvms/node-one", "POST /cvms/provision", `GET /kms/<kms id>/pubkey/${APP_ID}`, "GET /cvms/node-one", "POST /cvms",
    "PATCH /cvms/00000000000040008000000000000000/instance-id", "POST /cvms/00000000000040008000000000000000/stop",
    "POST /cvms/00000000000040008000000000000000/start"]);
  assert.ok(r.stdout.split("\n").filter((l) => l.includes(" eth_call ")).length >= 3, "chain reads are printed");
  const cli = r.stdout.split("\n").filter((l) => l.startsWith("$ dstack-p2p cluster ")).map((l) => l.split(" ")[3]);
  assert.deepEqual(cli, ["allow-compose", "status", "mint", "bind", "status"]);
  assert.match(r.stdout, /"encrypted_env": "<\d+ bytes, sealed to the KMS key>"/);
  assert.ok(!r.stdout.includes(API_KEY) && !r.stderr.includes(API_KEY), "the API key is never printed");
  assert.throws(() => readFileSync(join(dir, "s.json")), /ENOENT/, "a dry run writes no state");
});

test("configuration mistakes exit 2 and say what is wrong, before any request", async (t) => {
  const r0 = await recorder();
  t.after(() => r0.server.close());
  const env = { PHALA_CLOUD_API_KEY: API_KEY, PHALA_CLOUD_API_PREFIX: `${r0.url}/api/v1` };
  const swap = (flag, value) => ARGS.map((a, i) => (ARGS[i - 1] === flag ? value : a));
  const dir = mkdtempSync(join(tmpdir(), "phala-cfg-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "other.json"), JSON.stringify({ name: "node-one", contract: "0x1", image: IMAGE, compose: "x" }));
  for (const [args, e, why] of [
    [swap("--image", "registry.example/dstack-p2p:latest"), env, /pinned by digest/],
    [swap("--contract", "0x1234"), env, /cluster contract/],
    [swap("--rpc", "ftp://x"), env, /not an http/],
    [[...ARGS, "--kms", "PHALA"], env, /on-chain KMS/],
    [[...ARGS, "--timeout", "5"], env, /--timeout/],
    [[...ARGS, "--token", "0"], env, /--token/],
    [[...ARGS, "--holder", "me"], env, /--holder/],
    [ARGS, { PHALA_CLOUD_API_PREFIX: env.PHALA_CLOUD_API_PREFIX }, /PHALA_CLOUD_API_KEY/],
    [[...ARGS, "--bogus"], env, /bogus/],
    [[...ARGS, "--compose", "/nonexistent.yml"], env, /--compose/],
    [[...ARGS, "--state", join(dir, "other.json")], env, /belongs to another deployment/],
  ]) {
    const r = await run(args, e);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, why);
  }
  assert.deepEqual(r0.requests, []);
});
