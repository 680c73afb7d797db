#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Deploy one dstack-p2p node on Phala Cloud with @phala/cloud (pinned in package-lock.json),
// the whole flow of seed 000, each step resumable (docs/deploy.md, "Phala Cloud"):
//
//   provision -> compose hash (ours over app-compose.json == the API's, else stop) ->
//   allow-list (sent with --key-file, else the command printed and awaited) -> the KMS env
//   key verified against the cluster's KMS root -> seal the env, commit -> the instance id
//   (made at first boot) -> strict boot: stop the CVM -> mint and bind a token to that
//   instance -> start -> the node's record on chain and valid -> summary.
//
// Every step first looks at what is already done (the state file, the API, the chain), so
// running the same command again after a failure resumes where it stopped. Chain writes go
// through `dstack-p2p cluster` (its fee caps, simulation and error decoding); reads are
// eth_calls on --operator-rpc.
//
// Exit status: 0 done, 1 the API, the chain or a check refused, 2 usage or configuration.
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const HERE = dirname(fileURLToPath(import.meta.url));
const DEFAULT_COMPOSE = join(HERE, "../../examples/compose/phala.yml");
// The image line the example compose files carry; --image replaces it.
const IMAGE_PLACEHOLDER = /^(\s*image:\s*)dstack-p2p:latest\s*$/gm;
const ENV_KEYS = ["CLUSTER_CONTRACT", "ETH_RPC_URL", "P2P_RELAYER_URL"];
const POLL_MS = 1000;

const USAGE = `Usage: deploy.mjs --name NAME --image REF@sha256:DIGEST --deployer ADDR [options]

Deploys one dstack-p2p node on Phala Cloud, from provisioning to its record on chain (API
key in PHALA_CLOUD_API_KEY; the API base URL in PHALA_CLOUD_API_PREFIX, default
https://cloud-api.phala.com/api/v1). Run it again after a failure: it resumes.

  --name NAME          the CVM's name (5-63 letters, digits, hyphens; starts with a letter)
  --image REF          the dstack-p2p image, pinned by digest (registry/dstack-p2p@sha256:...)
  --deployer ADDR      the cluster contract's owner (the address that deployed it)
  --contract ADDR      the cluster contract = the app id      (env CLUSTER_CONTRACT)
  --rpc URLS           comma-separated RPC URLs for the agent (env ETH_RPC_URL)
  --relayer URL        the relayer that pays for registrations (env P2P_RELAYER_URL)
  --operator-rpc URL   the RPC this script and dstack-p2p cluster use (default: the first --rpc)
  --key-file FILE      the cluster owner's key: allow-list, mint and bind are sent with
                       dstack-p2p cluster; without it each command is printed and awaited
  --holder ADDR        who holds the node's token (default --deployer; must be --key-file's)
  --label TEXT         the token's label (default NAME)
  --token N            use this (already minted, unbound) token instead of minting one
  --cli PATH           the dstack-p2p program (default dstack-p2p)
  --state FILE         the resume file (default ./NAME.phala-deploy.json; holds no secret)
  --timeout S          bound on each wait: instance id, state changes, allow-list, bind,
                       registration (default 900)
  --compose FILE       compose file (default examples/compose/phala.yml)
  --kms BASE|ETHEREUM  the on-chain KMS (default BASE)
  --kms-id ID          the KMS's id at Phala (default: the one provisioning picks)
  --node-id N          the Phala node to run on (default: any)
  --instance-type T    default tdx.small
  --provision-only     stop after the compose hash is checked and allow-listed
  --dry-run            print every request (API, RPC, dstack-p2p cluster) and send none
  -h, --help`;

class UsageError extends Error {}
class StepError extends Error {}

function fail(msg) {
  throw new UsageError(msg);
}

const ADDR = /^0x[0-9a-fA-F]{40}$/;
const HTTP = /^https?:\/\/\S+$/;

export function parseOptions(argv, env) {
  let parsed;
  const str = { type: "string" };
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        name: str, image: str, deployer: str, contract: str, rpc: str, relayer: str, compose: str,
        kms: str, "kms-id": str, "node-id": str, "instance-type": str, token: str,
        "operator-rpc": str, "key-file": str, holder: str, label: str, cli: str, state: str, timeout: str,
        "provision-only": { type: "boolean" }, "dry-run": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (e) {
    fail(e.message);
  }
  if (parsed.help) return { help: true };
  const o = {
    name: parsed.name,
    image: parsed.image,
    deployer: parsed.deployer,
    contract: parsed.contract ?? env.CLUSTER_CONTRACT,
    rpc: parsed.rpc ?? env.ETH_RPC_URL,
    relayer: parsed.relayer ?? env.P2P_RELAYER_URL,
    compose: parsed.compose ?? DEFAULT_COMPOSE,
    kms: (parsed.kms ?? "BASE").toUpperCase(),
    kmsId: parsed["kms-id"],
    nodeId: parsed["node-id"],
    instanceType: parsed["instance-type"] ?? "tdx.small",
    token: parsed.token,
    keyFile: parsed["key-file"],
    holder: parsed.holder ?? parsed.deployer,
    label: parsed.label ?? parsed.name,
    cli: parsed.cli ?? "dstack-p2p",
    state: parsed.state ?? `${parsed.name}.phala-deploy.json`,
    timeout: Number(parsed.timeout ?? 900),
    provisionOnly: !!parsed["provision-only"],
    dryRun: !!parsed["dry-run"],
    apiKey: env.PHALA_CLOUD_API_KEY,
  };
  if (!o.name || !/^[A-Za-z][A-Za-z0-9-]{4,62}$/.test(o.name))
    fail("--name: 5-63 letters, digits or hyphens, starting with a letter");
  if (!o.image || !/^[^\s@]+@sha256:[0-9a-f]{64}$/.test(o.image))
    fail("--image: a reference pinned by digest (name@sha256:<64 hex>); a tag can move, and the compose hash would not cover the move");
  if (!o.deployer || !ADDR.test(o.deployer)) fail("--deployer: the cluster owner's 0x address");
  if (!o.contract || !ADDR.test(o.contract)) fail("--contract / CLUSTER_CONTRACT: the cluster contract's 0x address");
  if (!ADDR.test(o.holder)) fail("--holder: a 0x address");
  if (!o.rpc) fail("--rpc / ETH_RPC_URL: at least one RPC URL");
  for (const url of o.rpc.split(","))
    if (!HTTP.test(url)) fail(`--rpc: '${url}' is not an http(s) URL`);
  o.operatorRpc = parsed["operator-rpc"] ?? o.rpc.split(",")[0];
  if (!HTTP.test(o.operatorRpc)) fail(`--operator-rpc: '${o.operatorRpc}' is not an http(s) URL`);
  if (!o.relayer || !HTTP.test(o.relayer))
    fail("--relayer / P2P_RELAYER_URL: the relayer's http(s) URL (the node holds no funded key)");
  if (!["BASE", "ETHEREUM"].includes(o.kms)) fail("--kms: BASE or ETHEREUM (the custom app id needs an on-chain KMS)");
  if (o.nodeId !== undefined && !/^[0-9]+$/.test(o.nodeId)) fail("--node-id: a number");
  if (o.token !== undefined && !/^[1-9][0-9]*$/.test(o.token)) fail("--token: a token id (1, 2, ...)");
  if (!(o.timeout >= 10 && o.timeout <= 86400)) fail("--timeout: seconds, 10 to 86400");
  if (!o.label || o.label.length > 64 || /[\s"\\]/.test(o.label)) fail("--label: up to 64 characters, no spaces or quotes");
  if (!o.dryRun && !o.apiKey) fail("PHALA_CLOUD_API_KEY is not set");
  o.appId = o.contract.slice(2).toLowerCase();
  return o;
}

// Our compose file with the agent's image pinned in it: the compose hash, and so the
// cluster's allow-list, covers exactly this text.
export function composeText(o) {
  let text;
  try {
    text = readFileSync(o.compose, "utf8");
  } catch (e) {
    fail(`--compose: ${e.message}`);
  }
  const pinned = text.replace(IMAGE_PLACEHOLDER, (_, lead) => `${lead}${o.image}`);
  if (pinned === text) fail(`--compose: ${o.compose} has no 'image: dstack-p2p:latest' line to pin`);
  return pinned;
}

// What provisioning sends as compose_file, and the app-compose.json the platform makes of
// it: dstack's manifest (version 2, docker-compose runner) with exactly these fields.
function composeFile(o, compose) {
  return { name: o.name, docker_compose_file: compose, allowed_envs: ENV_KEYS,
    gateway_enabled: true,   // the gateway carries the mesh (P2P_TRANSPORT=gateway)
    kms_enabled: true, public_logs: false, public_sysinfo: true };
}

export function appCompose(o, compose) {
  return { manifest_version: 2, runner: "docker-compose", ...composeFile(o, compose) };
}

// app-compose.json's bytes as dstack hashes them: keys sorted at every level, no spaces
// (the same bytes @phala/dstack-sdk's getComposeHash hashes; docs/deploy.md has a vector).
export function appComposeBytes(v) {
  if (Array.isArray(v)) return `[${v.map(appComposeBytes).join(",")}]`;
  if (v && typeof v === "object")
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${appComposeBytes(v[k])}`).join(",")}}`;
  return JSON.stringify(v);
}

const sha256 = (s) => createHash("sha256").update(s, "utf8").digest("hex");

// A compressed secp256k1 key (0x02/0x03 || x) as its Ethereum address.
const P = 2n ** 256n - 2n ** 32n - 977n;
function modPow(b, e) {
  let r = 1n;
  for (b %= P; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) r = (r * b) % P;
  return r;
}
export function compressedToAddress(hex, keccak256) {
  const b = Buffer.from(hex.replace(/^0x/, ""), "hex");
  if (b.length !== 33 || (b[0] !== 2 && b[0] !== 3)) return null;
  const x = BigInt(`0x${b.subarray(1).toString("hex")}`);
  let y = modPow((x * x * x + 7n) % P, (P + 1n) / 4n);
  if ((y & 1n) !== BigInt(b[0] & 1)) y = P - y;
  const xy = x.toString(16).padStart(64, "0") + y.toString(16).padStart(64, "0");
  return `0x${keccak256(`0x${xy}`).slice(-40)}`;
}

// The resume file: what each step learned (ids, hashes, token), never a secret.
function loadState(o, compose) {
  const want = { name: o.name, contract: o.contract.toLowerCase(), image: o.image, compose: sha256(compose) };
  let s;
  try {
    s = JSON.parse(readFileSync(o.state, "utf8"));
  } catch (e) {
    if (e.code !== "ENOENT") fail(`--state: ${o.state}: ${e.message}`);
    return { ...want };
  }
  for (const k of Object.keys(want))
    if (s[k] !== want[k])
      fail(`--state: ${o.state} belongs to another deployment (its ${k} is ${s[k]}, not ${want[k]}); give another --state or remove it`);
  return s;
}

function saveState(o, s) {
  if (o.dryRun) return;
  writeFileSync(`${o.state}.tmp`, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(`${o.state}.tmp`, o.state);
}

// --dry-run: every request goes to this stand-in, which prints it (the API key and the
// ciphertext elided) and answers with placeholders of the real shapes.
const DRY_INSTANCE = "d1d1d1d1".repeat(5);
function installDryRunFetch(o, print) {
  globalThis.fetch = async (input, init = {}) => {
    const url = typeof input === "string" ? input : input.url;
    const method = init.method ?? "GET";
    let body = init.body ? JSON.parse(init.body) : undefined;
    if (body?.encrypted_env) body = { ...body, encrypted_env: `<${body.encrypted_env.length / 2} bytes, sealed to the KMS key>` };
    let reply;
    const path = url.replace(/\?.*$/, "");
    if (body?.jsonrpc) {
      print(`${method} ${url} ${body.method} ${JSON.stringify(body.params)}`);
      reply = { jsonrpc: "2.0", id: body.id, result: `0x${"0".repeat(64)}` };
    } else {
      print(`${method} ${url}`);
      if (body !== undefined) print(JSON.stringify(body, null, 2));
    }
    if (reply) { /* the RPC's answer */ } else if (path.endsWith("/cvms/provision")) {
      reply = { app_id: null, app_env_encrypt_pubkey: null, compose_hash: sha256(appComposeBytes(appCompose(o, body.compose_file.docker_compose_file))),
        kms_info: { id: o.kmsId ?? "<kms id>", slug: null, url: "", version: "", chain_id: null,
          kms_contract_address: null, gateway_app_id: null }, kms_id: o.kmsId ?? "<kms id>" };
    } else if (path.includes("/pubkey/")) {
      reply = { public_key: "9".repeat(64), signature: "" };  // any valid x25519 point
    } else if (path.endsWith("/instance-id")) {
      reply = { cvm_id: 0, identifier: "", status: "updated", new_instance_id: DRY_INSTANCE, source: "teepod_state", verified_with_gateway: false };
    } else if (method === "GET" && /\/cvms\/[^/]+$/.test(path)) {
      return new Response(JSON.stringify({ detail: "dry run: no CVM yet" }), { status: 404, headers: { "content-type": "application/json" } });
    } else if (path.endsWith("/state")) {
      return new Response("event: complete\ndata: {\"name\":\"dry-run\",\"status\":\"(target)\"}\n\n", { status: 200, headers: { "content-type": "text/event-stream" } });
    } else {
      reply = { id: 0, name: o.name, status: "creating", teepod_id: 0, teepod: null, user_id: null,
        app_id: o.appId, vm_uuid: "00000000-0000-4000-8000-000000000000", instance_id: null, base_image: null, vcpu: 0, memory: 0,
        disk_size: 0, docker_compose_file: null, created_at: "", encrypted_env_pubkey: null };
    }
    return new Response(JSON.stringify(reply), { status: 200, headers: { "content-type": "application/json" } });
  };
}

function apiError(step, e) {
  const detail = e?.data?.detail ?? e?.data ?? e?.issues ?? e?.message ?? e;
  const status = e?.status ?? e?.statusCode;
  return new StepError(`${step}: ${status ? `HTTP ${status}: ` : ""}${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
}

async function api(step, f) {
  try {
    return await f();
  } catch (e) {
    throw apiError(step, e);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Deployment {
  constructor(o, print, cloud, viem) {
    Object.assign(this, { o, print, cloud, viem });
    this.client = cloud.createClient({ apiKey: o.apiKey ?? "dry-run" });
    this.chain = viem.createPublicClient({ transport: viem.http(o.operatorRpc, { retryCount: 1, timeout: 10000 }) });
  }

  // One eth_call on the cluster contract.
  async read(sig, ...args) {
    const [name, types, outs] = sig.match(/^(\w+)\(([^)]*)\)\((\w+)\)$/).slice(1);
    const abi = [{ type: "function", name, stateMutability: "view",
      inputs: types ? types.split(",").map((t) => ({ type: t })) : [], outputs: [{ type: outs }] }];
    try {
      return await this.chain.readContract({ address: this.o.contract, abi, functionName: name, args });
    } catch (e) {
      throw new StepError(`chain: ${name}() on ${this.o.contract} via ${this.o.operatorRpc}: ${e.shortMessage ?? e.message}`);
    }
  }

  // `dstack-p2p cluster ACTION ...` with the operator's RPC, contract and key; --json output.
  cluster(args, { key = true } = {}) {
    const o = this.o;
    const full = ["cluster", ...args, "--rpc", o.operatorRpc, "--contract", o.contract,
      ...(key && o.keyFile ? ["--key-file", o.keyFile] : []), "--json"];
    if (o.dryRun) {
      this.print(`$ ${o.cli} ${full.join(" ")}`);
      return Promise.resolve([]);
    }
    return new Promise((resolve, reject) => {
      execFile(o.cli, full, { timeout: 180000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (err) return reject(new StepError(`${o.cli} cluster ${args[0]}: ${(stderr || err.message).trim()}`));
        try {
          resolve(stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)));
        } catch {
          reject(new StepError(`${o.cli} cluster ${args[0]}: not JSON: ${stdout.slice(0, 200)}`));
        }
      });
    });
  }

  // Polls check() until it returns a truthy value; `what` is printed as progress.
  async until(what, check, detail = async () => "") {
    const t0 = Date.now();
    let last = "";
    for (;;) {
      const v = await check();
      if (v) return v;
      const waited = Math.round((Date.now() - t0) / 1000);
      if (waited >= this.o.timeout) throw new StepError(`gave up after ${this.o.timeout} s waiting for ${what}`);
      const d = await detail();
      if (d !== last || waited % 30 === 0) this.print(`  waiting for ${what} (${waited} s)${d ? `: ${d}` : ""}`);
      last = d;
      await sleep(POLL_MS);
    }
  }

  // The CVM of this name, if the API has one (ours: same app id), else null.
  async findCvm() {
    const { o } = this;
    const found = await this.cloud.getCvmInfo(this.client, { name: o.name }).catch((e) => {
      if (e?.status === 404) return null;
      throw apiError("look up the CVM", e);
    });
    if (found && String(found.app_id).replace(/^(0x|app_)/, "").toLowerCase() !== o.appId)
      throw new StepError(`a CVM named ${o.name} exists with app id ${found.app_id}, not 0x${o.appId}`);
    return found;
  }

  async provision(S) {
    const { o, cloud, client } = this;
    if (S.provision) {
      this.print(`provision: done (compose hash 0x${S.provision.compose_hash} from the API)`);
      return;
    }
    // Without a state file: a CVM committed before is found by name, with its compose hash.
    const found = await this.findCvm();
    if (found?.compose_hash) {
      S.cvm = { id: found.id, vm_uuid: found.vm_uuid };
      S.provision = { compose_hash: found.compose_hash.replace(/^0x/, "").toLowerCase(), kms_id: null,
        kms_contract: found.kms_info?.dstack_kms_address ?? null };
      if (found.instance_id) S.instance = `0x${found.instance_id.replace(/^0x/, "").toLowerCase()}`;
      saveState(o, S);
      this.print(`provision: the API already has ${o.name} (${found.vm_uuid}), compose hash 0x${S.provision.compose_hash}`);
      return;
    }
    const p = await api("provision", () => cloud.provisionCvm(client, {
      name: o.name, instance_type: o.instanceType,
      ...(o.nodeId !== undefined ? { node_id: Number(o.nodeId) } : {}),
      kms: o.kms, ...(o.kmsId ? { kms_id: o.kmsId } : {}),
      compose_file: composeFile(o, this.compose), env_keys: ENV_KEYS,
    }));
    S.provision = { compose_hash: String(p.compose_hash).replace(/^0x/, "").toLowerCase(),
      kms_id: o.kmsId ?? p.kms_info?.id ?? p.kms_id ?? null, kms_contract: p.kms_info?.kms_contract_address ?? null };
    saveState(o, S);
    this.print(`provision: done (compose hash 0x${S.provision.compose_hash} from the API)`);
  }

  // Ours, over the app-compose.json the platform makes of what we sent, against the API's.
  composeHash(S) {
    const bytes = appComposeBytes(appCompose(this.o, this.compose));
    const ours = sha256(bytes);
    const file = `${this.o.state.replace(/\.json$/, "")}.app-compose.json`;
    if (!this.o.dryRun) writeFileSync(file, bytes);
    if (ours !== S.provision.compose_hash)
      throw new StepError(`compose hash: the API's 0x${S.provision.compose_hash} is not sha256 of the app-compose.json we sent ` +
        `(0x${ours}, ${file}): the CVM would boot something else than what you review; nothing was allow-listed, sealed or committed`);
    this.print(`compose hash: 0x${ours} = sha256(${this.o.dryRun ? "app-compose.json" : file}), the API agrees`);
    return ours;
  }

  async allowList(S, hash) {
    const { o } = this;
    if (S.provision.kms_contract) {
      if (o.keyFile) await this.cluster(["register-app", "--kms", S.provision.kms_contract]);
      else this.print(`  once per cluster: ${o.cli} cluster register-app --kms ${S.provision.kms_contract}`);
    }
    const allowed = () => this.read("allowedComposeHashes(bytes32)(bool)", `0x${hash}`);
    if (await allowed()) {
      this.print(`allow-list: 0x${hash} is allowed by ${o.contract}`);
      return;
    }
    if (o.keyFile) {
      await this.cluster(["allow-compose", `0x${hash}`]);
    } else {
      this.print(`allow-list: as the cluster owner, run:\n  ${o.cli} cluster allow-compose 0x${hash} --contract ${o.contract}`);
      if (o.dryRun || o.provisionOnly) return;
    }
    if (o.dryRun) return;
    await this.until(`0x${hash} on the allow-list`, allowed);
    this.print(`allow-list: 0x${hash} is allowed by ${o.contract}`);
  }

  // The env key must be the cluster KMS's, or the sealed env goes to whoever signed it.
  async envKey(S) {
    const { o, cloud, client, viem } = this;
    const key = await api("env encryption key", () => cloud.getAppEnvEncryptPubKey(client, { kms: S.provision.kms_id, app_id: o.appId }));
    const pub = key.public_key.replace(/^0x/, "");
    if (o.dryRun) {
      this.print("env key: (dry run: its KMS signature is not checked)");
      return pub;
    }
    const root = String(await this.read("kmsRoot()(address)")).toLowerCase();
    const signer = cloud.verifyEnvEncryptPublicKey(Buffer.from(pub, "hex"), Buffer.from(key.signature.replace(/^0x/, ""), "hex"), o.appId);
    const addr = signer ? compressedToAddress(signer, viem.keccak256) : null;
    if (addr !== root)
      throw new StepError(`env key: the KMS's env key for app 0x${o.appId} is ${addr ? `signed by ${addr}` : "not validly signed"}, ` +
        `not by the cluster's KMS root ${root} (kmsRoot()): nothing was sealed or committed`);
    this.print(`env key: signed by the KMS root ${root}`);
    return pub;
  }

  async commit(S, pub) {
    const { o, cloud, client } = this;
    if (!S.cvm) {
      // A commit that went through before a crash: the API knows the CVM by name.
      const found = await this.findCvm();
      if (found) {
        S.cvm = { id: found.id, vm_uuid: found.vm_uuid };
        this.print(`commit: the API already has ${o.name} (${found.vm_uuid})`);
      } else {
        const envs = [
          { key: "CLUSTER_CONTRACT", value: o.contract.toLowerCase() },
          { key: "ETH_RPC_URL", value: o.rpc },
          { key: "P2P_RELAYER_URL", value: o.relayer },
        ];
        const encrypted = await cloud.encryptEnvVars(envs, pub);
        const cvm = await api("commit", () => cloud.commitCvmProvision(client, {
          app_id: o.appId, compose_hash: S.provision.compose_hash, encrypted_env: encrypted, env_keys: ENV_KEYS,
          kms_id: S.provision.kms_id, contract_address: o.contract.toLowerCase(), deployer_address: o.deployer.toLowerCase(),
        }));
        S.cvm = { id: cvm.id, vm_uuid: cvm.vm_uuid };
        if (cvm.instance_id) S.instance = `0x${cvm.instance_id.replace(/^0x/, "").toLowerCase()}`;
        this.print(`commit: CVM ${cvm.id} (${cvm.name}, ${cvm.vm_uuid}), app id 0x${o.appId}`);
      }
      saveState(o, S);
    } else {
      this.print(`commit: done (${S.cvm.vm_uuid})`);
    }
  }

  async instanceId(S) {
    const { o, cloud, client } = this;
    const id = { uuid: S.cvm.vm_uuid };
    if (!S.instance) {
      const found = await this.until("the instance id (made at the CVM's first boot)", async () => {
        const r = await api("refresh instance id", () => cloud.refreshCvmInstanceId(client, id));
        if (r.new_instance_id) return r.new_instance_id;
        const info = await api("cvm info", () => cloud.getCvmInfo(client, id));
        return info.instance_id;
      }, async () => {
        const s = await api("cvm state", () => cloud.getCvmState(client, id));
        return `${s.status}${s.boot_progress ? `, ${s.boot_progress}` : ""}${s.boot_error ? ` (${s.boot_error})` : ""}`;
      });
      S.instance = `0x${String(found).replace(/^0x/, "").toLowerCase()}`;
      saveState(o, S);
    }
    this.print(`instance id: ${S.instance}`);
  }

  async watch(S, target) {
    const { cloud, client, o } = this;
    if (o.dryRun) {
      this.print(`  (dry run: would wait until the CVM is ${target})`);
      return;
    }
    const t = Math.min(600, Math.max(10, o.timeout));
    let last = "";
    let failed = null;
    const abort = new AbortController();
    const onEvent = (e) => {  // progress: each change of state or boot error, once
      const line = `  cvm: ${e.data?.status}${e.data?.boot_error ? ` (${e.data.boot_error})` : ""}`;
      if (e.type === "state" && line !== last) this.print(line);
      last = e.type === "state" ? line : last;
      // A CVM that stopped with a boot error while we wait for it to run will not run.
      if (e.type === "state" && target === "running" && e.data?.status === "stopped" && e.data?.boot_error) {
        failed = e.data.boot_error;
        abort.abort();
      }
    };
    const r = await cloud.watchCvmState(client, { uuid: S.cvm.vm_uuid, target, timeout: t, maxRetries: 1, retryDelay: 0 },
      { onEvent, signal: abort.signal })
      .catch((e) => { throw new StepError(`waiting until the CVM is ${target}: ${failed ? `it stopped: ${failed}` : e.message}`); });
    if (r?.status !== target) throw new StepError(`waiting until the CVM is ${target}: it is ${r?.status}`);
  }

  async status(S) {
    return this.o.dryRun ? "(dry run)" : (await api("cvm state", () => this.cloud.getCvmState(this.client, { uuid: S.cvm.vm_uuid }))).status;
  }

  // Strict boot: nothing unbound gets keys, so the CVM waits stopped until its token is bound.
  async pause(S, strict, bound) {
    if (!strict || bound) return;
    if (await this.status(S) !== "stopped") {
      this.print("strict boot: stopping the CVM until its instance is bound (its boots are refused until then)");
      await api("stop", () => this.cloud.stopCvm(this.client, { uuid: S.cvm.vm_uuid }));
      await this.watch(S, "stopped");
    }
    this.print("strict boot: the CVM is stopped");
  }

  async mintBind(S) {
    const { o } = this;
    let token = Number(await this.read("tokenOfInstance(address)(uint256)", S.instance));
    if (token) {
      this.print(`bind: ${S.instance} is bound to token ${token}`);
      return token;
    }
    S.token ??= o.token ? Number(o.token) : undefined;
    if (!S.token && o.keyFile) {
      // A mint that landed before a crash: an unbound token of ours with this label.
      const st = (await this.cluster(["status"], { key: false }))[0];
      const mine = st?.tokens?.find((t) => t.label === o.label && !t.instanceId && t.holder.toLowerCase() === o.holder.toLowerCase());
      S.token = mine?.tokenId ?? (await this.cluster(["mint", o.holder, o.label]))[0]?.tokenId;
      if (!S.token && !o.dryRun) throw new StepError("mint: dstack-p2p cluster mint printed no token id");
      saveState(o, S);
      this.print(`mint: token ${S.token ?? "<new token>"} (${o.label}) held by ${o.holder}`);
    }
    if (o.keyFile && (S.token || o.dryRun)) {
      await this.cluster(["bind", String(S.token ?? "<new token>"), S.instance]);
    } else {
      this.print(`bind: as the token's holder, run:`);
      if (!S.token) this.print(`  ${o.cli} cluster mint ${o.holder} ${o.label} --contract ${o.contract}`);
      this.print(`  ${o.cli} cluster bind ${S.token ?? "TOKEN"} ${S.instance} --contract ${o.contract}`);
    }
    if (o.dryRun) return S.token;
    token = await this.until(`${S.instance} bound to a token`, async () => Number(await this.read("tokenOfInstance(address)(uint256)", S.instance)));
    this.print(`bind: ${S.instance} is bound to token ${token}`);
    return token;
  }

  async start(S) {
    if (await this.status(S) !== "running") {
      this.print("start: starting the CVM");
      await api("start", () => this.cloud.startCvm(this.client, { uuid: S.cvm.vm_uuid }));
      await this.watch(S, "running");
    }
    this.print("start: the CVM is running");
  }

  async registered(S, token) {
    if (this.o.dryRun) {
      await this.cluster(["status"], { key: false });
      return null;
    }
    let row;
    await this.until(`token ${token}'s record on chain, valid`, async () => {
      const st = (await this.cluster(["status"], { key: false }))[0];
      row = st?.tokens?.find((t) => t.tokenId === token);
      return row?.registered && row.instanceId?.toLowerCase() === S.instance && row.verification === "valid";
    }, async () => (row ? (row.registered ? `record ${row.verification}` : "not registered yet") : "no such token"));
    return row;
  }
}

export async function deploy(o, print = console.log) {
  const compose = composeText(o);
  const S = loadState(o, compose);
  if (o.dryRun) installDryRunFetch(o, print);
  // Imported after the dry-run stand-in is in place.
  const cloud = await import("@phala/cloud");
  const viem = await import("viem");
  const d = new Deployment(o, print, cloud, viem);
  d.compose = compose;

  await d.provision(S);
  const hash = d.composeHash(S);
  await d.allowList(S, hash);
  if (o.provisionOnly) return S;
  if (!S.cvm && !S.provision.kms_id) throw new StepError("provision: the reply names no KMS; give --kms-id");
  const pub = S.cvm ? null : await d.envKey(S);
  await d.commit(S, pub);
  await d.instanceId(S);
  const strict = Number(await d.read("bootPolicy()(uint8)")) === 0;
  const bound = Number(await d.read("tokenOfInstance(address)(uint256)", S.instance)) !== 0;
  print(`boot policy: ${strict ? "strict" : "permissive"}`);
  await d.pause(S, strict, bound);
  const token = await d.mintBind(S);
  await d.start(S);
  const row = await d.registered(S, token);
  S.done = true;
  saveState(o, S);
  print("summary:");
  print(`  cvm          ${o.name} (${S.cvm.vm_uuid}), running`);
  print(`  app id       0x${o.appId} (the cluster contract)`);
  print(`  compose hash 0x${hash}, allowed`);
  print(`  instance id  ${S.instance}`);
  print(`  token        ${token ?? "<token>"}, overlay address 10.0.1.${token ?? "<token>"}`);
  print(`  record       ${row ? `${row.mode} ${row.endpoint}, ${row.verification}` : "(dry run)"}`);
  return S;
}

async function main() {
  let o;
  try {
    o = parseOptions(process.argv.slice(2), process.env);
  } catch (e) {
    console.error(`deploy.mjs: ${e.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (o.help) {
    console.log(USAGE);
    return;
  }
  try {
    await deploy(o);
  } catch (e) {
    console.error(`deploy.mjs: ${e.message}`);
    if (!(e instanceof UsageError) && !o.dryRun) console.error(`deploy.mjs: run the same command again to resume (state in ${o.state})`);
    process.exit(e instanceof UsageError ? 2 : 1);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
