#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Deploy one dstack-p2p node on Phala Cloud with the npm package @phala/cloud (pinned in
// package-lock.json): provision a CVM with our compose file, attach the cluster contract
// as its app id (the custom app-id path of on-chain KMS), pass the encrypted env (cluster
// contract, RPC URLs, relayer URL), commit, and print the instance id and the
// `dstack-p2p cluster bind` line to run next. docs/deploy.md walks through it.
//
// Exit status: 0 done, 1 the API refused or failed, 2 usage or configuration.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const HERE = dirname(fileURLToPath(import.meta.url));
const DEFAULT_COMPOSE = join(HERE, "../../examples/compose/phala.yml");
// The image line the example compose files carry; --image replaces it.
const IMAGE_PLACEHOLDER = /^(\s*image:\s*)dstack-p2p:latest\s*$/gm;
const ENV_KEYS = ["CLUSTER_CONTRACT", "ETH_RPC_URL", "P2P_RELAYER_URL"];

const USAGE = `Usage: deploy.mjs --name NAME --image REF@sha256:DIGEST --deployer ADDR [options]

Deploys one dstack-p2p node on Phala Cloud (API key in PHALA_CLOUD_API_KEY; the API base
URL in PHALA_CLOUD_API_PREFIX, default https://cloud-api.phala.com/api/v1).

  --name NAME          the CVM's name (5-63 letters, digits, hyphens; starts with a letter)
  --image REF          the dstack-p2p image, pinned by digest (registry/dstack-p2p@sha256:...)
  --deployer ADDR      the cluster contract's owner (the address that deployed it)
  --contract ADDR      the cluster contract = the app id      (env CLUSTER_CONTRACT)
  --rpc URLS           comma-separated RPC URLs for the agent (env ETH_RPC_URL)
  --relayer URL        the relayer that pays for registrations (env P2P_RELAYER_URL)
  --compose FILE       compose file (default examples/compose/phala.yml)
  --kms BASE|ETHEREUM  the on-chain KMS (default BASE)
  --kms-id ID          the KMS's id at Phala (default: the one provisioning picks)
  --node-id N          the Phala node to run on (default: any)
  --instance-type T    default tdx.small
  --token N            the cluster token this node will hold (for the bind line)
  --provision-only     stop after provisioning: print the compose hash to allow-list
  --dry-run            print every request instead of sending it
  -h, --help`;

class UsageError extends Error {}

function fail(msg) {
  throw new UsageError(msg);
}

export function parseOptions(argv, env) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        name: { type: "string" }, image: { type: "string" }, deployer: { type: "string" },
        contract: { type: "string" }, rpc: { type: "string" }, relayer: { type: "string" },
        compose: { type: "string" }, kms: { type: "string" }, "kms-id": { type: "string" },
        "node-id": { type: "string" }, "instance-type": { type: "string" }, token: { type: "string" },
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
    provisionOnly: !!parsed["provision-only"],
    dryRun: !!parsed["dry-run"],
    apiKey: env.PHALA_CLOUD_API_KEY,
  };
  const addr = /^0x[0-9a-fA-F]{40}$/;
  if (!o.name || !/^[A-Za-z][A-Za-z0-9-]{4,62}$/.test(o.name))
    fail("--name: 5-63 letters, digits or hyphens, starting with a letter");
  if (!o.image || !/^[^\s@]+@sha256:[0-9a-f]{64}$/.test(o.image))
    fail("--image: a reference pinned by digest (name@sha256:<64 hex>); a tag can move, and the compose hash would not cover the move");
  if (!o.deployer || !addr.test(o.deployer)) fail("--deployer: the cluster owner's 0x address");
  if (!o.contract || !addr.test(o.contract)) fail("--contract / CLUSTER_CONTRACT: the cluster contract's 0x address");
  if (!o.rpc) fail("--rpc / ETH_RPC_URL: at least one RPC URL");
  for (const url of o.rpc.split(","))
    if (!/^https?:\/\/\S+$/.test(url)) fail(`--rpc: '${url}' is not an http(s) URL`);
  if (!o.relayer || !/^https?:\/\/\S+$/.test(o.relayer))
    fail("--relayer / P2P_RELAYER_URL: the relayer's http(s) URL (the node holds no funded key)");
  if (!["BASE", "ETHEREUM"].includes(o.kms)) fail("--kms: BASE or ETHEREUM (the custom app id needs an on-chain KMS)");
  if (o.nodeId !== undefined && !/^[0-9]+$/.test(o.nodeId)) fail("--node-id: a number");
  if (o.token !== undefined && !/^[0-9]+$/.test(o.token)) fail("--token: a number");
  if (!o.dryRun && !o.apiKey) fail("PHALA_CLOUD_API_KEY is not set");
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

// --dry-run: the library's requests go to this stand-in, which prints each one (the API
// key and the ciphertext elided) and answers with placeholders of the real shapes.
function installDryRunFetch(o, print) {
  const appId = o.contract.slice(2).toLowerCase();
  globalThis.fetch = async (input, init = {}) => {
    const url = typeof input === "string" ? input : input.url;
    const method = init.method ?? "GET";
    let body = init.body ? JSON.parse(init.body) : undefined;
    if (body?.encrypted_env) body = { ...body, encrypted_env: `<${body.encrypted_env.length / 2} bytes, sealed to the KMS key>` };
    print(`${method} ${url}`);
    if (body !== undefined) print(JSON.stringify(body, null, 2));
    let reply;
    if (url.endsWith("/cvms/provision"))
      reply = { app_id: null, app_env_encrypt_pubkey: null, compose_hash: "<compose hash>",
        kms_info: { id: o.kmsId ?? "<kms id>", slug: null, url: "", version: "", chain_id: null,
          kms_contract_address: null, gateway_app_id: null }, kms_id: o.kmsId ?? "<kms id>" };
    else if (url.includes("/pubkey/"))
      reply = { public_key: "9".repeat(64), signature: "" };  // any valid x25519 point
    else
      reply = { id: 0, name: o.name, status: "creating", teepod_id: 0, teepod: null, user_id: null,
        app_id: appId, vm_uuid: null, instance_id: null, base_image: null, vcpu: 0, memory: 0,
        disk_size: 0, docker_compose_file: null, created_at: "" };
    return new Response(JSON.stringify(reply), { status: 200, headers: { "content-type": "application/json" } });
  };
}

function apiError(step, e) {
  const detail = e?.data?.detail ?? e?.data ?? e?.issues ?? e?.message ?? e;
  const status = e?.status ?? e?.statusCode;
  return new Error(`${step}: ${status ? `HTTP ${status}: ` : ""}${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
}

export async function deploy(o, print = console.log) {
  const compose = composeText(o);
  if (o.dryRun) installDryRunFetch(o, print);
  // Imported after the dry-run stand-in is in place.
  const cloud = await import("@phala/cloud");
  const client = cloud.createClient({ apiKey: o.apiKey ?? "dry-run" });
  const appId = o.contract.slice(2).toLowerCase();

  let provision;
  try {
    provision = await cloud.provisionCvm(client, {
      name: o.name,
      instance_type: o.instanceType,
      ...(o.nodeId !== undefined ? { node_id: Number(o.nodeId) } : {}),
      kms: o.kms,
      ...(o.kmsId ? { kms_id: o.kmsId } : {}),
      compose_file: {
        name: o.name,
        docker_compose_file: compose,
        allowed_envs: ENV_KEYS,
        gateway_enabled: true,   // the gateway carries the mesh (P2P_TRANSPORT=gateway)
        kms_enabled: true,
        public_logs: false,
        public_sysinfo: true,
      },
      env_keys: ENV_KEYS,
    });
  } catch (e) {
    throw apiError("provision", e);
  }
  const hash = String(provision.compose_hash).replace(/^0x/, "");
  const kmsId = o.kmsId ?? provision.kms_info?.id ?? provision.kms_id;
  const kmsContract = provision.kms_info?.kms_contract_address;
  print(`compose hash: 0x${hash}`);
  print(`before the node boots, as the cluster owner (CLUSTER_CONTRACT=${o.contract}):`);
  if (kmsContract) print(`  dstack-p2p cluster register-app --kms ${kmsContract}   # once per cluster`);
  print(`  dstack-p2p cluster allow-compose 0x${hash}`);
  if (o.provisionOnly) return { provision };
  if (!kmsId) throw new Error("provision: the reply names no KMS; give --kms-id");

  let pubkey;
  try {
    pubkey = await cloud.getAppEnvEncryptPubKey(client, { kms: kmsId, app_id: appId });
  } catch (e) {
    throw apiError("env encryption key", e);
  }
  const envs = [
    { key: "CLUSTER_CONTRACT", value: o.contract.toLowerCase() },
    { key: "ETH_RPC_URL", value: o.rpc },
    { key: "P2P_RELAYER_URL", value: o.relayer },
  ];
  const encrypted = await cloud.encryptEnvVars(envs, pubkey.public_key.replace(/^0x/, ""));

  let cvm;
  try {
    cvm = await cloud.commitCvmProvision(client, {
      app_id: appId,
      compose_hash: hash,
      encrypted_env: encrypted,
      env_keys: ENV_KEYS,
      kms_id: kmsId,
      contract_address: o.contract.toLowerCase(),
      deployer_address: o.deployer.toLowerCase(),
    });
  } catch (e) {
    throw apiError("commit", e);
  }
  const instance = cvm.instance_id ? `0x${String(cvm.instance_id).replace(/^0x/, "")}` : null;
  print(`cvm: ${cvm.id} (${cvm.name}), app id 0x${appId}`);
  print(instance ? `instance id: ${instance}`
    : `instance id: not assigned yet (it is made at first boot); read it with 'phala cvms get ${cvm.id}'`);
  print("next, as the cluster owner:");
  print(`  dstack-p2p cluster bind ${o.token ?? "TOKEN"} ${instance ?? "INSTANCE_ID"}`);
  return { provision, cvm, instance };
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
    process.exit(e instanceof UsageError ? 2 : 1);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
