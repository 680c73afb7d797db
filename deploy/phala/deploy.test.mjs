// SPDX-License-Identifier: MIT
// deploy.mjs against a local stand-in of the Phala Cloud API on loopback (the real API
// cannot be reached from the test machines): the request sequence, each body, the
// sealed env (opened with the stand-in's KMS key), the printed lines, --dry-run sending
// nothing, and the exit status of configuration mistakes and API refusals.
// Run: node --test deploy/phala/
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createDecipheriv, createHash, createPublicKey, diffieHellman, generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "deploy.mjs");
const CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const APP_ID = CONTRACT.slice(2).toLowerCase();
const DEPLOYER = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
const IMAGE = `registry.example/dstack-p2p@sha256:${"ab".repeat(32)}`;
const INSTANCE = "c0ffee00".repeat(5);
const KMS_ID = "kms-base-1";
const API_KEY = "phak_test_not_a_secret";

// The stand-in: records each request, answers in the shapes @phala/cloud parses.
async function standIn({ failCommit = false } = {}) {
  const kms = generateKeyPairSync("x25519");
  const kmsPub = Buffer.from(kms.publicKey.export({ format: "jwk" }).x, "base64url");
  const requests = [];
  const server = createServer((req, res) => {
    let data = "";
    req.on("data", (c) => { data += c; });
    req.on("end", () => {
      const body = data ? JSON.parse(data) : undefined;
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      const reply = (status, obj) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(obj));
      };
      if (req.method === "POST" && req.url === "/api/v1/cvms/provision") {
        const hash = createHash("sha256").update(body.compose_file.docker_compose_file).digest("hex");
        return reply(200, { app_id: null, app_env_encrypt_pubkey: null, compose_hash: hash,
          kms_info: { id: KMS_ID, slug: "base", url: "https://kms.example", version: "v0.5",
            chain_id: 8453, kms_contract_address: "0x2f83172a49584c017f2b256f0fb2dca14126ba9c",
            gateway_app_id: "0x0000000000000000000000000000000000000001" },
          device_id: null, os_image_hash: null, node_id: 3, kms_id: KMS_ID });
      }
      if (req.method === "GET" && req.url === `/api/v1/kms/${KMS_ID}/pubkey/${APP_ID}`)
        return reply(200, { public_key: kmsPub.toString("hex"), signature: "00".repeat(65) });
      if (req.method === "POST" && req.url === "/api/v1/cvms") {
        if (failCommit) return reply(400, { detail: "compose hash not allowed by the app contract" });
        return reply(200, { id: 42, name: "node-one", status: "creating", teepod_id: 3,
          teepod: { id: 3, name: "prod7" }, user_id: 1, app_id: body.app_id, vm_uuid: "u-1",
          instance_id: INSTANCE, app_url: null, base_image: "dstack-0.5.4", vcpu: 1, memory: 2048,
          disk_size: 20, manifest_version: 2, version: "1.0.0", runner: "docker-compose",
          docker_compose_file: null, features: ["kms", "tproxy-net"], created_at: "2026-01-01T00:00:00Z" });
      }
      return reply(404, { detail: `no ${req.method} ${req.url} in the stand-in` });
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { server, requests, kms, prefix: `http://127.0.0.1:${server.address().port}/api/v1` };
}

function run(args, env) {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 60000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

const ARGS = ["--name", "node-one", "--image", IMAGE, "--deployer", DEPLOYER, "--contract", CONTRACT,
  "--rpc", "https://rpc-a.example,https://rpc-b.example", "--relayer", "https://relayer.example/register",
  "--token", "7"];

// Open what encryptEnvVars sealed: ephemeral x25519 key (32) || iv (12) || AES-256-GCM.
function openEnv(hex, kms) {
  const buf = Buffer.from(hex, "hex");
  const peer = createPublicKey({ key: { kty: "OKP", crv: "X25519", x: buf.subarray(0, 32).toString("base64url") }, format: "jwk" });
  const key = diffieHellman({ privateKey: kms.privateKey, publicKey: peer });
  const d = createDecipheriv("aes-256-gcm", key, buf.subarray(32, 44));
  d.setAuthTag(buf.subarray(buf.length - 16));
  return JSON.parse(Buffer.concat([d.update(buf.subarray(44, buf.length - 16)), d.final()]).toString());
}

test("deploys one node: provision, KMS key, commit, in that order and shape", async () => {
  const s = await standIn();
  try {
    const r = await run(ARGS, { PHALA_CLOUD_API_KEY: API_KEY, PHALA_CLOUD_API_PREFIX: s.prefix });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(s.requests.map((q) => `${q.method} ${q.url}`), [
      "POST /api/v1/cvms/provision", `GET /api/v1/kms/${KMS_ID}/pubkey/${APP_ID}`, "POST /api/v1/cvms"]);
    for (const q of s.requests) assert.equal(q.headers["x-api-key"], API_KEY);

    const p = s.requests[0].body;
    assert.equal(p.name, "node-one");
    assert.equal(p.kms, "BASE");
    assert.equal(p.instance_type, "tdx.small");
    assert.deepEqual(p.env_keys, ["CLUSTER_CONTRACT", "ETH_RPC_URL", "P2P_RELAYER_URL"]);
    assert.deepEqual(p.compose_file.allowed_envs, p.env_keys);
    assert.equal(p.compose_file.gateway_enabled, true);
    assert.equal(p.compose_file.kms_enabled, true);
    const compose = p.compose_file.docker_compose_file;
    assert.ok(compose.includes(`image: ${IMAGE}`), "the image is pinned in the compose text");
    assert.ok(!/^\s*image:\s*dstack-p2p:latest/m.test(compose), "no unpinned agent image left");
    assert.equal(compose.split(`image: ${IMAGE}`).length - 1, 2, "agent and gate pinned");
    assert.ok(compose.includes("P2P_TRANSPORT: gateway"), "the Phala compose file");

    const c = s.requests[2].body;
    const hash = createHash("sha256").update(compose).digest("hex");
    assert.equal(c.app_id, APP_ID);
    assert.equal(c.compose_hash, hash);
    assert.equal(c.kms_id, KMS_ID);
    assert.equal(c.contract_address, CONTRACT.toLowerCase());
    assert.equal(c.deployer_address, DEPLOYER);
    assert.deepEqual(c.env_keys, p.env_keys);
    assert.ok(!JSON.stringify(c).includes("rpc-a.example"), "env values travel sealed only");
    assert.deepEqual(openEnv(c.encrypted_env, s.kms), { env: [
      { key: "CLUSTER_CONTRACT", value: CONTRACT.toLowerCase() },
      { key: "ETH_RPC_URL", value: "https://rpc-a.example,https://rpc-b.example" },
      { key: "P2P_RELAYER_URL", value: "https://relayer.example/register" }] });

    assert.match(r.stdout, new RegExp(`compose hash: 0x${hash}`));
    assert.match(r.stdout, new RegExp(`dstack-p2p cluster allow-compose 0x${hash}`));
    assert.match(r.stdout, /dstack-p2p cluster register-app --kms 0x2f83172a49584c017f2b256f0fb2dca14126ba9c/);
    assert.match(r.stdout, new RegExp(`instance id: 0x${INSTANCE}`));
    assert.match(r.stdout, new RegExp(`dstack-p2p cluster bind 7 0x${INSTANCE}`));
  } finally {
    s.server.close();
  }
});

test("--provision-only stops before the commit and prints the hash to allow-list", async () => {
  const s = await standIn();
  try {
    const r = await run([...ARGS, "--provision-only"], { PHALA_CLOUD_API_KEY: API_KEY, PHALA_CLOUD_API_PREFIX: s.prefix });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(s.requests.map((q) => q.url), ["/api/v1/cvms/provision"]);
    assert.match(r.stdout, /dstack-p2p cluster allow-compose 0x[0-9a-f]{64}/);
    assert.doesNotMatch(r.stdout, /cluster bind/);
  } finally {
    s.server.close();
  }
});

test("--dry-run prints every request and sends none", async () => {
  const s = await standIn();
  try {
    const r = await run([...ARGS, "--dry-run"], { PHALA_CLOUD_API_KEY: API_KEY, PHALA_CLOUD_API_PREFIX: s.prefix });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(s.requests.length, 0);
    const lines = r.stdout.split("\n").filter((l) => /^(GET|POST) /.test(l));
    assert.deepEqual(lines.map((l) => l.replace(s.prefix, "")), [
      "POST /cvms/provision", "GET /kms/<kms id>/pubkey/" + APP_ID, "POST /cvms"]);
    assert.match(r.stdout, /"docker_compose_file"/);
    assert.match(r.stdout, /"encrypted_env": "<\d+ bytes, sealed to the KMS key>"/);
    assert.ok(!r.stdout.includes(API_KEY) && !r.stderr.includes(API_KEY), "the API key is never printed");
  } finally {
    s.server.close();
  }
});

test("configuration mistakes exit 2 and say what is wrong, before any request", async () => {
  const s = await standIn();
  const env = { PHALA_CLOUD_API_KEY: API_KEY, PHALA_CLOUD_API_PREFIX: s.prefix };
  const swap = (flag, value) => ARGS.map((a, i) => (ARGS[i - 1] === flag ? value : a));
  try {
    for (const [args, e, why] of [
      [swap("--image", "registry.example/dstack-p2p:latest"), env, /pinned by digest/],
      [swap("--contract", "0x1234"), env, /cluster contract/],
      [swap("--rpc", "ftp://x"), env, /not an http/],
      [[...ARGS, "--kms", "PHALA"], env, /on-chain KMS/],
      [ARGS, { PHALA_CLOUD_API_PREFIX: s.prefix }, /PHALA_CLOUD_API_KEY/],
      [[...ARGS, "--bogus"], env, /bogus/],
      [[...ARGS, "--compose", "/nonexistent.yml"], env, /--compose/],
    ]) {
      const r = await run(args, e);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, why);
    }
    assert.equal(s.requests.length, 0);
  } finally {
    s.server.close();
  }
});

test("an API refusal exits 1 with the API's reason", async () => {
  const s = await standIn({ failCommit: true });
  try {
    const r = await run(ARGS, { PHALA_CLOUD_API_KEY: API_KEY, PHALA_CLOUD_API_PREFIX: s.prefix });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /commit: HTTP 400: compose hash not allowed/);
    assert.equal(s.requests.length, 3);
  } finally {
    s.server.close();
  }
});
