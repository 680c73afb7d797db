#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// A stand-in for Phala Cloud's API, for tests on loopback: it models the platform the
// way @phala/cloud 0.2.9 talks to it, not a recording of answers.
//
//   POST  /cvms/provision        writes the app-compose.json the CVM will boot (sorted keys,
//                                compact, by python3's json module) and answers its compose
//                                hash: sha256 of those raw bytes, dstack's rule
//   GET   /kms/<kms>/pubkey/<app> the app's x25519 env key, signed by the KMS root key as
//                                dstack's KMS signs it: keccak256("dstack-env-encrypt-pubkey"
//                                ":" || app_id[20] || pubkey[32]), 65 bytes r||s||v, v in {0,1}
//   POST  /cvms                  commit: opens the sealed env with that key, makes the CVM
//                                and boots it
//   GET   /cvms/<id>             the CVM (API version 2026-01-21 shape)
//   GET   /cvms/<id>/state       its state; with ?target= a server-sent event stream
//                                (watchCvmState): "state" events, then "complete"/"timeout"
//   PATCH /cvms/<id>/instance-id the platform learns the instance id from the VM
//   POST  /cvms/<id>/stop, start
//
// CVM states: provisioned -> starting -> running, stopped. The instance id is made at the
// first boot and kept. Every boot asks the chain, as dstack's KMS does (cast call): the app
// registered with the KMS contract, then the app contract's `isAppAllowed(AppBootInfo)`; a refused boot keeps the CVM in "starting" with
// boot_error set and is retried (the boot loop the seed's pause avoids). An allowed boot
// runs `HOOK boot NAME INSTANCE_ID APP_ID COMPOSE_HASH` with the CVM's decrypted env in the
// hook's environment (what ${...} in the compose file resolves to); stop runs `HOOK stop
// NAME`. The hook is what "runs" the CVM: the test starts the guest agent and the agent.
//
// Faults for tests: --fail-once 'METHOD REGEX' (the first matching request gets HTTP 500),
// --manifest-extra JSON (the platform puts more in app-compose.json than the client sent),
// --env-signer-key-file (the env key signed by another key than the KMS root).
//
//   node standin.mjs --listen 127.0.0.1:0 --ready-file F --kms-key-file F --rpc RPC
//                    --cast PATH --hook CMD [--kms-contract ADDR] [--log F] [--boot-retry-ms N]
//                    [faults]
// --kms-contract: the KMS contract provisioning names (kms_info.kms_contract_address); boots
// then also need registeredApps(app) on it, as DstackKms.isAppAllowed checks first.
import { execFile, spawnSync } from "node:child_process";
import { createDecipheriv, createHash, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { concat, hexToBytes, keccak256, toBytes } from "viem";
import { privateKeyToAccount } from "viem/accounts";

const { values: opt } = parseArgs({
  options: {
    listen: { type: "string", default: "127.0.0.1:0" }, "ready-file": { type: "string" },
    "kms-key-file": { type: "string" }, "env-signer-key-file": { type: "string" },
    rpc: { type: "string" }, cast: { type: "string", default: "cast" }, hook: { type: "string" },
    log: { type: "string" }, "kms-contract": { type: "string" }, "boot-retry-ms": { type: "string", default: "1000" },
    "fail-once": { type: "string", multiple: true, default: [] }, "manifest-extra": { type: "string" },
  },
  strict: true,
});
for (const need of ["kms-key-file", "rpc", "hook"])
  if (!opt[need]) { console.error(`standin: --${need} is required`); process.exit(2); }

const readKey = (f) => `0x${readFileSync(f, "utf8").trim().replace(/^0x/, "")}`;
const kmsSigner = privateKeyToAccount(readKey(opt["env-signer-key-file"] ?? opt["kms-key-file"]));
const KMS_ID = "kms-standin";
const API = "/api/v1";
const faults = opt["fail-once"].map((f) => { const [m, re] = f.split(" "); return { m, re: new RegExp(re) }; });
const extra = opt["manifest-extra"] ? JSON.parse(opt["manifest-extra"]) : {};
const log = (line) => { if (opt.log) appendFileSync(opt.log, `${line}\n`); };

const provisions = new Map();  // compose hash -> { manifest, bytes }
const envKeys = new Map();     // app id (hex, no 0x) -> x25519 key pair
const cvms = [];

class HttpError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

// app-compose.json as the platform writes it: python3's json module, keys sorted, compact.
function writeAppCompose(manifest) {
  const r = spawnSync("python3", ["-c",
    "import json,sys; sys.stdout.write(json.dumps(json.load(sys.stdin), sort_keys=True, separators=(',', ':'), ensure_ascii=False))"],
  { input: JSON.stringify(manifest), encoding: "utf8" });
  if (r.status !== 0) throw new HttpError(500, `app-compose: ${r.stderr}`);
  return r.stdout;
}

function provision(body) {
  const cf = body?.compose_file;
  if (!cf || typeof cf.docker_compose_file !== "string") throw new HttpError(422, "compose_file.docker_compose_file is required");
  if (!/^[A-Za-z][A-Za-z0-9-]{4,62}$/.test(body.name ?? "")) throw new HttpError(422, "name: 5-63 letters, digits, hyphens");
  const manifest = { manifest_version: 2, name: cf.name || body.name, runner: "docker-compose",
    docker_compose_file: cf.docker_compose_file, kms_enabled: cf.kms_enabled ?? true,
    gateway_enabled: cf.gateway_enabled ?? false, public_logs: cf.public_logs ?? false,
    public_sysinfo: cf.public_sysinfo ?? false, allowed_envs: cf.allowed_envs ?? [], ...extra };
  const bytes = writeAppCompose(manifest);
  const hash = createHash("sha256").update(bytes, "utf8").digest("hex");
  provisions.set(hash, { manifest, bytes, body, hash });
  return { app_id: null, app_env_encrypt_pubkey: null, compose_hash: hash,
    kms_info: { id: KMS_ID, slug: "standin", url: "http://kms.standin", version: "v0.5.11", chain_id: 31337,
      kms_contract_address: opt["kms-contract"] ?? null, gateway_app_id: null },
    fmspc: null, device_id: null, os_image_hash: null, instance_type: body.instance_type ?? "tdx.small",
    node_id: body.teepod_id ?? 1, kms_id: KMS_ID };
}

function envKey(appId) {
  if (!envKeys.has(appId)) envKeys.set(appId, generateKeyPairSync("x25519"));
  return envKeys.get(appId);
}

async function pubkey(kms, app) {
  if (kms !== KMS_ID) throw new HttpError(404, `no KMS ${kms}`);
  const appId = app.replace(/^0x/, "").toLowerCase();
  if (!/^[0-9a-f]{40}$/.test(appId)) throw new HttpError(422, "app id: 20 bytes hex");
  const pub = Buffer.from(envKey(appId).publicKey.export({ format: "jwk" }).x, "base64url");
  const digest = keccak256(concat([toBytes("dstack-env-encrypt-pubkey:"), hexToBytes(`0x${appId}`), pub]));
  const sig = hexToBytes(await kmsSigner.sign({ hash: digest }));
  sig[64] -= 27;  // dstack's KMS: v in {0, 1}
  return { public_key: pub.toString("hex"), signature: Buffer.from(sig).toString("hex") };
}

// What encryptEnvVars sealed: ephemeral x25519 key (32) || iv (12) || AES-256-GCM (+ tag 16).
function openEnv(hex, appId) {
  const buf = Buffer.from(hex ?? "", "hex");
  if (buf.length < 61) throw new HttpError(400, "encrypted_env: too short");
  try {
    const peer = createPublicKey({ key: { kty: "OKP", crv: "X25519", x: buf.subarray(0, 32).toString("base64url") }, format: "jwk" });
    const key = diffieHellman({ privateKey: envKey(appId).privateKey, publicKey: peer });
    const d = createDecipheriv("aes-256-gcm", key, buf.subarray(32, 44));
    d.setAuthTag(buf.subarray(buf.length - 16));
    const plain = JSON.parse(Buffer.concat([d.update(buf.subarray(44, buf.length - 16)), d.final()]).toString());
    return Object.fromEntries(plain.env.map((e) => [e.key, e.value]));
  } catch (e) {
    throw new HttpError(400, `encrypted_env: not sealed to this app's env key (${e.message})`);
  }
}

function commit(body) {
  const p = provisions.get(String(body?.compose_hash ?? "").replace(/^0x/, ""));
  if (!p) throw new HttpError(404, "no provision with this compose hash");
  const appId = String(body.app_id ?? "").replace(/^0x/, "").toLowerCase();
  if (!/^[0-9a-f]{40}$/.test(appId)) throw new HttpError(422, "app_id: 20 bytes hex");
  if (cvms.some((c) => c.name === p.body.name)) throw new HttpError(409, `a CVM named ${p.body.name} exists`);
  const env = openEnv(body.encrypted_env, appId);
  for (const k of Object.keys(env))
    if (!p.manifest.allowed_envs.includes(k)) throw new HttpError(400, `env ${k} is not in allowed_envs`);
  const c = { id: cvms.length + 1, name: p.body.name, vm_uuid: randomUUID(), app_id: appId, compose_hash: p.hash,
    manifest: p.manifest, env, status: "provisioned", instance: null, known_instance: null, boot_error: null,
    boot_progress: null, desired: "running", timer: null, created: new Date().toISOString(), boots: 0,
    contract: body.contract_address ?? null, deployer: body.deployer_address ?? null };
  cvms.push(c);
  setImmediate(() => boot(c));
  return vmReply(c);
}

function castCall(to, sig, ...args) {
  return new Promise((resolve) => {
    execFile(opt.cast, ["call", "--rpc-url", opt.rpc, to, sig, ...args], { timeout: 20000 }, (err, stdout, stderr) => {
      resolve(err ? { err: stderr.trim() || err.message } : { out: stdout.trim().split("\n") });
    });
  });
}

// What dstack's KMS asks before it hands out the app's keys: the app is registered with the
// KMS contract (with --kms-contract), then the app contract's own isAppAllowed(AppBootInfo).
async function castAllowed(c) {
  if (opt["kms-contract"]) {
    const r = await castCall(opt["kms-contract"], "registeredApps(address)(bool)", `0x${c.app_id}`);
    if (r.err) return { ok: false, reason: `the KMS could not read its app registry: ${r.err}` };
    if (r.out[0] !== "true") return { ok: false, reason: "App not registered with the KMS" };
  }
  const zero = `0x${"00".repeat(32)}`;
  const info = `(0x${c.app_id},0x${c.compose_hash},0x${c.instance},${zero},${zero},${zero},${zero},UpToDate,[])`;
  const r = await castCall(`0x${c.app_id}`,
    "isAppAllowed((address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[]))(bool,string)", info);
  if (r.err) return { ok: false, reason: `the KMS could not ask the app contract: ${r.err}` };
  return { ok: r.out[0] === "true", reason: (r.out[1] ?? "").replace(/^"|"$/g, "") };
}

function runHook(args, env) {
  return new Promise((resolve) => {
    execFile(opt.hook, args, { env: { ...process.env, ...env }, timeout: 60000 }, (err, stdout, stderr) => {
      log(`hook ${args.join(" ")}: ${err ? `failed: ${stderr.trim()}` : "ok"}`);
      resolve(!err);
    });
  });
}

// One boot: the instance id at the first, the KMS's question to the chain, then the hook.
async function boot(c) {
  if (c.desired !== "running" || c.status === "running") return;
  c.status = "starting";
  c.boots += 1;
  c.boot_progress = "booting";
  if (!c.instance) c.instance = randomBytes(20).toString("hex");
  const allowed = await castAllowed(c);
  if (c.desired !== "running") return;
  if (!allowed.ok) {
    c.boot_error = `KMS refused the app keys: isAppAllowed says no (${allowed.reason})`;
    c.boot_progress = "boot failed, retrying";
    log(`boot ${c.name} ${c.instance}: refused: ${allowed.reason}`);
    c.timer = setTimeout(() => { c.timer = null; c.status = "provisioned"; boot(c); }, Number(opt["boot-retry-ms"]));
    return;
  }
  c.boot_progress = "starting containers";
  const ok = await runHook(["boot", c.name, c.instance, c.app_id, c.compose_hash], c.env);
  if (c.desired !== "running") return;
  c.status = ok ? "running" : "stopped";
  c.boot_error = ok ? null : "the containers did not start";
  c.boot_progress = ok ? "done" : null;
  c.started = Date.now();
  log(`boot ${c.name} ${c.instance}: ${c.status}`);
}

async function stop(c) {
  c.desired = "stopped";
  if (c.timer) clearTimeout(c.timer);
  c.timer = null;
  if (c.status === "running") await runHook(["stop", c.name], {});
  c.status = "stopped";
  c.boot_progress = null;
  return vmReply(c);
}

function start(c) {
  c.desired = "running";
  c.boot_error = null;
  if (c.status === "stopped" || c.status === "provisioned") setImmediate(() => boot(c));
  if (c.status === "stopped") c.status = "starting";
  return vmReply(c);
}

function find(id) {
  const hex = id.replace(/-/g, "");
  const c = cvms.find((x) => x.vm_uuid.replace(/-/g, "") === hex || x.name === id || String(x.id) === id);
  if (!c) throw new HttpError(404, `no CVM ${id}`);
  return c;
}

const vmReply = (c) => ({ id: c.id, name: c.name, status: c.status, teepod_id: 1, teepod: { id: 1, name: "standin-node" },
  user_id: 1, app_id: c.app_id, vm_uuid: c.vm_uuid, instance_id: c.known_instance, app_url: null, base_image: "dstack-0.5.11",
  vcpu: 1, memory: 2048, disk_size: 20, manifest_version: 2, version: "1.0.0", runner: "docker-compose",
  docker_compose_file: c.manifest.docker_compose_file, features: ["kms", "tproxy-net"], created_at: c.created,
  encrypted_env_pubkey: null, app_auth_contract_address: c.contract, deployer_address: c.deployer });

const uptime = (c) => (c.status === "running" ? `${Math.floor((Date.now() - c.started) / 1000)}s` : undefined);
const state = (c) => Object.fromEntries(Object.entries({ id: c.vm_uuid, instance_id: c.known_instance ?? undefined, name: c.name,
  status: c.status, uptime: uptime(c), boot_progress: c.boot_progress ?? undefined, boot_error: c.boot_error ?? undefined })
  .filter(([, v]) => v !== undefined));

const info = (c) => ({ id: c.vm_uuid, name: c.name, app_id: c.app_id, vm_uuid: c.vm_uuid, instance_id: c.known_instance,
  resource: { instance_type: "tdx.small", vcpu: 1, memory_in_gb: 2, disk_in_gb: 20 }, node_info: null, os: null,
  kms_type: "ethereum", kms_info: { chain_id: 31337, dstack_kms_address: opt["kms-contract"] ?? null,
    dstack_app_address: `0x${c.app_id}`, deployer_address: c.deployer }, status: c.status, progress: null, compose_hash: c.compose_hash,
  gateway: { base_domain: null, cname: null }, services: [], endpoints: [], listed: false,
  compose_file: c.manifest });

// refreshCvmInstanceId: the platform asks the VM for the id it made at first boot.
function refreshInstance(c) {
  const old = c.known_instance;
  if (!c.instance) return { cvm_id: c.id, identifier: c.vm_uuid, status: "skipped", old_instance_id: old,
    new_instance_id: null, source: "none", verified_with_gateway: false, reason: "the CVM has not booted yet" };
  c.known_instance = c.instance;
  return { cvm_id: c.id, identifier: c.vm_uuid, status: old === c.instance ? "unchanged" : "updated",
    old_instance_id: old, new_instance_id: c.instance, source: "teepod_state", verified_with_gateway: false, reason: null };
}

// watchCvmState: events until the CVM reaches the target, or the timeout.
function watch(c, url, res) {
  const target = url.searchParams.get("target");
  const timeout = Math.min(Number(url.searchParams.get("timeout") ?? 300), 600) * 1000;
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const t0 = Date.now();
  let last = "";
  const tick = () => {
    const s = JSON.stringify(state(c));
    if (s !== last) { res.write(`event: state\ndata: ${s}\n\n`); last = s; }
    if (c.status === target) { res.end(`event: complete\ndata: ${s}\n\n`); return; }
    if (Date.now() - t0 >= timeout) { res.end(`event: timeout\ndata: {}\n\n`); return; }
    setTimeout(tick, 200);
  };
  tick();
}

async function route(req, url, body, res) {
  const p = url.pathname.slice(API.length);
  const m = req.method;
  let r;
  if (m === "POST" && p === "/cvms/provision") return provision(body);
  if (m === "POST" && p === "/cvms") return commit(body);
  if (m === "GET" && (r = p.match(/^\/kms\/([^/]+)\/pubkey\/([^/]+)$/))) return pubkey(r[1], r[2]);
  if (!(r = p.match(/^\/cvms\/([^/]+)(\/[a-z-]+)?$/))) throw new HttpError(404, `no ${m} ${p}`);
  const c = find(decodeURIComponent(r[1]));
  const sub = r[2] ?? "";
  if (m === "GET" && sub === "") return info(c);
  if (m === "GET" && sub === "/state") return url.searchParams.has("target") ? watch(c, url, res) : state(c);
  if (m === "PATCH" && sub === "/instance-id") return refreshInstance(c);
  if (m === "POST" && sub === "/stop") return stop(c);
  if (m === "POST" && sub === "/start") return start(c);
  throw new HttpError(404, `no ${m} ${p}`);
}

const server = createServer((req, res) => {
  let data = "";
  req.on("data", (chunk) => { data += chunk; if (data.length > 1 << 20) req.destroy(); });
  req.on("end", async () => {
    const url = new URL(req.url, "http://standin");
    const send = (status, obj) => { res.writeHead(status, { "content-type": "application/json" }); res.end(JSON.stringify(obj)); };
    log(`${req.method} ${url.pathname}`);
    try {
      if (!req.headers["x-api-key"]) throw new HttpError(401, "X-API-Key is required");
      if (!url.pathname.startsWith(API)) throw new HttpError(404, "not under /api/v1");
      const i = faults.findIndex((f) => f.m === req.method && f.re.test(url.pathname));
      if (i >= 0) { faults.splice(i, 1); throw new HttpError(500, "injected fault"); }
      const body = data ? JSON.parse(data) : undefined;
      const reply = await route(req, url, body, res);
      if (reply !== undefined) send(200, reply);
    } catch (e) {
      send(e.status ?? 500, { detail: e.message });
    }
  });
});

const [host, port] = opt.listen.split(/:(?=\d+$)/);
server.listen(Number(port), host, () => {
  const addr = `${host}:${server.address().port}`;
  if (opt["ready-file"]) writeFileSync(opt["ready-file"], `${addr}\n`);
  log(`listening on ${addr}`);
});
const quit = async () => {
  for (const c of cvms) if (c.status === "running") await runHook(["stop", c.name], {});
  process.exit(0);
};
process.on("SIGTERM", quit);
process.on("SIGINT", quit);
