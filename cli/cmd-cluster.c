/* SPDX-License-Identifier: MIT */
/*
 * dstack-p2p cluster: the whole life of a cluster from the operator's side. Every action
 * that changes the contract is simulated first (a revert is refused with its decoded error
 * and nothing is sent), sent under fee caps, and followed to its receipt.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cluster-cmd.h"
#include "mesh/mesh.h"
#include "ops/ops.h"
#include "registry/registry.h"

#define MAX_OPERANDS 4

enum {
	O_RPC = 256, O_CONTRACT, O_KEY_FILE, O_KEYSTORE, O_PASSWORD_FILE, O_CHAIN_ID, O_TIMEOUT,
	O_JSON, O_MAX_FEE, O_MAX_TIP, O_MAX_COST, O_GAS_LIMIT, O_VALUE, O_WATCH, O_INTERVAL,
	O_COUNT, O_FROM_BLOCK, O_KMS, O_KMS_ROOT, O_OWNER, O_ARTIFACT, O_MAX_NODES, O_MODES,
	O_BOOT_POLICY, O_TCB_POLICY, O_ANY_DEVICE, O_COMPOSE_HASH, O_MINT_PRICE, O_PUBLIC_MINTING,
	O_LISTEN, O_WEB_DIR, O_ALLOW_REMOTE, O_KMS_ROOT_KEY_FILE,
};

static const struct cli_opt opts[] = {
	CLI_OPT_RPC(O_RPC),
	CLI_OPT_CONTRACT(O_CONTRACT),
	CLI_OPT_KEY_FILE(O_KEY_FILE),
	{ "keystore", O_KEYSTORE, "FILE", "the paying key as an encrypted keystore v3 JSON\n"
					  "(env DSTACK_P2P_KEYSTORE)" },
	CLI_OPT_PASSWORD_FILE(O_PASSWORD_FILE),
	CLI_OPT_CHAIN_ID(O_CHAIN_ID),
	{ "timeout", O_TIMEOUT, "MS", "per RPC request (default 10000); receipts wait 6x" },
	{ "json", O_JSON, NULL, "JSON output" },
	{ "max-fee-per-gas", O_MAX_FEE, "WEI", "cap on the fee per gas (default 100gwei)" },
	{ "max-priority-fee", O_MAX_TIP, "WEI", "cap on the tip per gas (default: the max fee)" },
	{ "max-cost", O_MAX_COST, "WEI", "cap on what one transaction may cost, gas limit x\n"
					 "max fee + value (default 0.05ether)" },
	{ "gas-limit", O_GAS_LIMIT, "N", "skip the estimate (the simulation still runs)" },
	{ "value", O_VALUE, "WEI", "payment sent along (mint under public minting)" },
	{ "watch", O_WATCH, NULL, "status: then follow the contract's events" },
	{ "interval", O_INTERVAL, "MS", "--watch: poll interval (default 1000)" },
	{ "count", O_COUNT, "N", "--watch: stop after N events" },
	{ "from-block", O_FROM_BLOCK, "N", "--watch: start at block N (default: the next one)" },
	{ "kms", O_KMS, "ADDR", "the dstack KMS contract (kms-info, register-app, deploy)" },
	{ "kms-root", O_KMS_ROOT, "ADDR", "deploy: the KMS root key's address (else read from --kms)" },
	{ "kms-root-key-file", O_KMS_ROOT_KEY_FILE, "FILE", "deploy-kms: the stand-in KMS root's secret\n"
							  "(hex; dstack-sim reads the same file)" },
	{ "owner", O_OWNER, "ADDR", "deploy: offer the ownership to ADDR (it accepts)" },
	{ "artifact", O_ARTIFACT, "FILE", "deploy: forge's DstackClusterNFT.json (env\n"
					  "DSTACK_P2P_ARTIFACT)" },
	{ "max-nodes", O_MAX_NODES, "N", "deploy: cap on live tokens, 1..254" },
	{ "modes", O_MODES, "MODES", "deploy: tls, wireguard or both" },
	{ "boot-policy", O_BOOT_POLICY, "POLICY", "deploy: strict (default) or permissive" },
	{ "tcb-policy", O_TCB_POLICY, "POLICY", "deploy: up-to-date (default) or any" },
	{ "any-device", O_ANY_DEVICE, "yes|no", "deploy: ignore the device list (default yes)" },
	{ "compose-hash", O_COMPOSE_HASH, "HASH", "deploy: allow this compose hash" },
	{ "mint-price", O_MINT_PRICE, "WEI", "deploy: price of a public mint" },
	{ "public-minting", O_PUBLIC_MINTING, NULL, "deploy: anyone may mint at --mint-price" },
	{ "listen", O_LISTEN, "HOST:PORT", "serve: where (default 127.0.0.1:8080, loopback only)" },
	{ "web-dir", O_WEB_DIR, "DIR", "serve: the page's files (default: web/ of the checkout\n"
				       "this binary was built in, else " DSTACK_P2P_WEBDIR ")" },
	{ "allow-remote", O_ALLOW_REMOTE, NULL, "serve: allow a --listen address that is not\n"
					       "loopback (plain HTTP, no login: see the man page)" },
	{ 0 },
};

static const struct cli_cmd cmd = {
	.name = "cluster",
	.synopsis = "[options] ACTION [ARGS]",
	.about =
		"Run a cluster from the operator's side: deploy it, mint and bind node tokens, set\n"
		"its policies, and see it whole. Actions that send a transaction are simulated\n"
		"first: a revert is refused with the contract's error by name, fields and a hint\n"
		"(ClusterFull(maxNodes=8): ...) and nothing is sent; then sent under the fee caps\n"
		"and followed to the receipt.\n"
		"The paying key comes from --key-file or --keystore, never the command line.\n\n"
		"Actions:\n"
		"  status [--json] [--watch]     every token, the policies and allowed lists, the\n"
		"                                leader, the balance\n"
		"  serve [--listen HOST:PORT]    a web page of the cluster, live, with wallet actions\n"
		"  deploy --kms-root ADDR|--kms ADDR [policy options]\n"
		"  kms-info --kms ADDR           the KMS root address and settings of a dstack KMS\n"
		"  register-app --kms ADDR       register the cluster as an app with that KMS\n"
		"  deploy-kms --kms-root-key-file FILE\n"
		"                                a stand-in dstack KMS for a local cluster (anvil)\n"
		"  mint TO LABEL                 mint the next token to TO\n"
		"  bind TOKEN INSTANCE           bind a dstack instance id to a token\n"
		"  unbind TOKEN | burn TOKEN\n"
		"  transfer TOKEN TO             move a token (its peer record is revoked)\n"
		"  allow-compose HASH | remove-compose HASH\n"
		"  allow-device ID | remove-device ID | set-any-device yes|no\n"
		"  set-config MAX_NODES MODES    MODES: tls, wireguard or both\n"
		"  set-minting PRICE public|owner-only\n"
		"  set-boot-policy strict|permissive\n"
		"  set-tcb-policy up-to-date|any\n"
		"  set-lease SECONDS             the leader's lease\n"
		"  withdraw TO                   send the collected mint payments to TO\n"
		"  transfer-ownership ADDR | accept-ownership",
	.opts = opts,
	.min_operands = 1,
	.max_operands = MAX_OPERANDS,
	.footer = "Amounts take units: 12wei, 1.5gwei, 0.01ether.\n"
		  "Exit status: 0 done, 1 refused, reverted or failed at run time, 2 usage or\n"
		  "configuration.",
};

/* ---- transactions ------------------------------------------------------------------------ */

int cluster_report_failure(struct cluster_ctx *c, const char *what, int r,
			   const struct eth_tx_result *res)
{
	const char *why = ops_error(c->ops);
	char hash[65];

	if (!why[0])
		why = errstr(r);
	hex_encode(hash, res->tx_hash, 32);
	if (r == -EINVAL)
		cli_error("%s", why); /* the paying key: a configuration mistake */
	else if (r == -EPERM && !res->sent)
		cli_error("%s refused (simulated, nothing sent): %s", what, why);
	else if (r == -EPERM)
		cli_error("%s reverted in transaction 0x%s: %s", what, hash, why);
	else if (r == -EDQUOT)
		cli_error("%s not sent: %s (raise --max-fee-per-gas or --max-cost)", what, why);
	else if (r == -ETIMEDOUT)
		cli_error("%s: transaction 0x%s sent, no receipt yet: %s", what, hash, why);
	else
		cli_error("%s failed: %s", what, why);
	return r == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
}

int cluster_transact(struct cluster_ctx *c, const char *what, const uint8_t *to,
		     const struct buf *calldata, uint64_t value, struct eth_tx_result *res)
{
	int r = ops_transact(c->ops, to, calldata, value, res);

	if (r < 0)
		return cluster_report_failure(c, what, r, res);
	if (!c->o->json) {
		printf("%s: transaction ", what);
		cli_print_hex(stdout, res->tx_hash, 32);
		printf(" mined in block %" PRIu64 ", gas used %" PRIu64 "\n",
		       res->receipt.block_number, res->receipt.gas_used);
	}
	return CLI_EXIT_OK;
}

/* ---- the actions that are one contract call ----------------------------------------------- */

static void print_json_result(const char *action, const struct eth_tx_result *res, uint64_t token)
{
	char hash[65];

	hex_encode(hash, res->tx_hash, 32);
	printf("{\"action\":\"%s\",\"tx\":\"0x%s\",\"block\":%" PRIu64 ",\"gasUsed\":%" PRIu64,
	       action, hash, res->receipt.block_number, res->receipt.gas_used);
	if (token)
		printf(",\"tokenId\":%" PRIu64, token);
	printf("}\n");
}

static int run_tx_action(struct cluster_ctx *c, const struct ops_action *a, const struct buf *calldata)
{
	bool mint = a->fn == REGISTRY_FN_MINT_NODE_ACCESS;
	struct eth_tx_result res;
	uint64_t token = 0;
	int r;

	r = cluster_transact(c, a->name, c->contract, calldata, mint ? c->o->value : 0, &res);
	if (r != CLI_EXIT_OK)
		return r;
	if (mint)
		token = ops_minted_token(c->ops, &res);
	if (c->o->json)
		print_json_result(a->name, &res, token);
	else if (token) {
		char addr[16];

		mesh_overlay_addr_str((uint32_t)token, addr);
		printf("minted token %" PRIu64 " (overlay address %s)\n", token, addr);
	}
	return CLI_EXIT_OK;
}

/* transfer TOKEN TO: transferFrom(holder, TO, TOKEN). */
static int run_transfer(struct cluster_ctx *c, char **args)
{
	struct eth_tx_result res;
	struct buf calldata;
	uint8_t to[20];
	uint64_t token;
	int r;

	ops_parse_u64(args[0], &token); /* checked by check_operands */
	ops_parse_address(args[1], to);
	buf_init(&calldata, 0);
	r = ops_transfer_calldata(c->ops, token, to, &calldata);
	if (r < 0) {
		cli_error("transfer: %s", ops_error(c->ops));
		r = CLI_EXIT_FAILURE;
	} else {
		r = cluster_transact(c, "transfer", c->contract, &calldata, 0, &res);
		if (r == CLI_EXIT_OK && c->o->json)
			print_json_result("transfer", &res, 0);
	}
	buf_clear(&calldata);
	return r;
}

/* ---- options and dispatch ------------------------------------------------------------------ */

static int parse_policy_word(struct cli_args *a, const char *const *words, int *out)
{
	*out = ops_word_index(words, a->value);
	return *out < 0 ? cli_bad_value(a, "not one of the words listed in --help") : 0;
}

static int parse_option(struct cli_args *a, int c, struct cluster_opts *o)
{
	const char *v = a->value;

	switch (c) {
	case O_RPC: o->rpc = v; return 0;
	case O_CONTRACT: o->contract_hex = v; return 0;
	case O_KEY_FILE:
	case O_KEYSTORE:
		cluster_key_opt_set(&o->key, c == O_KEYSTORE, v);
		return 0;
	case O_PASSWORD_FILE:
		o->key.src.password_file = v;
		return 0;
	case O_JSON: o->json = true; return 0;
	case O_WATCH: o->watch = true; return 0;
	case O_KMS: o->kms_hex = v; return 0;
	case O_KMS_ROOT: o->kms_root_hex = v; return 0;
	case O_KMS_ROOT_KEY_FILE: o->kms_root_key_file = v; return 0;
	case O_OWNER: o->owner_hex = v; return 0;
	case O_ARTIFACT: o->artifact = v; return 0;
	case O_COMPOSE_HASH: o->compose_hash = v; return 0;
	case O_PUBLIC_MINTING: o->public_minting = o->have_mint_policy = true; return 0;
	case O_LISTEN: o->listen = v; return 0;
	case O_WEB_DIR: o->web_dir = v; return 0;
	case O_ALLOW_REMOTE: o->allow_remote = true; return 0;
	case O_CHAIN_ID:
		return ops_parse_u64(v, &o->chain_id) < 0 ? cli_bad_value(a, "not a number") : 0;
	case O_TIMEOUT: {
		uint64_t ms;

		if (ops_parse_u64(v, &ms) < 0 || ms < 100 || ms > 600000)
			return cli_bad_value(a, "milliseconds, 100 to 600000");
		o->timeout_ms = (long)ms;
		return 0;
	}
	case O_MAX_FEE:
		return ops_parse_wei(v, &o->caps.max_fee_per_gas) < 0 || !o->caps.max_fee_per_gas
			       ? cli_bad_value(a, "a non-zero amount (1.5gwei)")
			       : 0;
	case O_MAX_TIP:
		return ops_parse_wei(v, &o->caps.max_priority_fee_per_gas) < 0
			       ? cli_bad_value(a, "an amount (1gwei)")
			       : 0;
	case O_MAX_COST:
		return ops_parse_wei(v, &o->caps.max_cost) < 0 || !o->caps.max_cost
			       ? cli_bad_value(a, "a non-zero amount (0.01ether)")
			       : 0;
	case O_GAS_LIMIT:
		return ops_parse_u64(v, &o->caps.gas_limit) < 0 || !o->caps.gas_limit
			       ? cli_bad_value(a, "a non-zero number")
			       : 0;
	case O_VALUE:
		return ops_parse_wei(v, &o->value) < 0 ? cli_bad_value(a, "an amount (0.01ether)") : 0;
	case O_MINT_PRICE:
		o->have_mint_policy = true;
		return ops_parse_wei(v, &o->mint_price) < 0 ? cli_bad_value(a, "an amount") : 0;
	case O_INTERVAL: {
		uint64_t ms;

		if (ops_parse_u64(v, &ms) < 0 || ms < 10 || ms > 3600000)
			return cli_bad_value(a, "milliseconds, 10 to 3600000");
		o->interval_ms = (long)ms;
		return 0;
	}
	case O_COUNT: {
		uint64_t n;

		if (ops_parse_u64(v, &n) < 0 || !n || n > 1000000000)
			return cli_bad_value(a, "a number, 1 to 10^9");
		o->count = (long)n;
		return 0;
	}
	case O_FROM_BLOCK:
		o->have_from_block = true;
		return ops_parse_u64(v, &o->from_block) < 0 ? cli_bad_value(a, "a block number") : 0;
	case O_MAX_NODES:
		return ops_parse_u64(v, &o->max_nodes) < 0 || !o->max_nodes || o->max_nodes > 254
			       ? cli_bad_value(a, "1 to 254")
			       : 0;
	case O_MODES:
		o->modes = ops_parse_modes(v);
		return o->modes < 0 ? cli_bad_value(a, "tls, wireguard or both") : 0;
	case O_BOOT_POLICY:
		return parse_policy_word(a, ops_words_boot, &o->boot_policy);
	case O_TCB_POLICY:
		return parse_policy_word(a, ops_words_tcb, &o->tcb_up_to_date);
	case O_ANY_DEVICE:
		return parse_policy_word(a, ops_words_yes_no, &o->any_device);
	}
	return 0;
}

static void opts_defaults(struct cluster_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->rpc = getenv("ETH_RPC_URL");
	o->contract_hex = getenv("CLUSTER_CONTRACT");
	o->key.src.key_file = getenv("DSTACK_P2P_KEY_FILE");
	o->key.src.keystore = getenv("DSTACK_P2P_KEYSTORE");
	o->artifact = getenv("DSTACK_P2P_ARTIFACT");
	o->caps.max_fee_per_gas = OPS_DEFAULT_MAX_FEE;
	o->caps.max_cost = OPS_DEFAULT_MAX_COST;
	o->interval_ms = 1000;
	o->listen = "127.0.0.1:8080";
	o->modes = o->boot_policy = o->tcb_up_to_date = o->any_device = -1;
}

/* Connect, check the chain, and take the contract when the action needs one. */
static int cluster_connect(struct cluster_ctx *c, const struct cluster_opts *o, bool need_contract)
{
	struct ops_config cfg = { .rpc_urls = o->rpc,
				  .contract_hex = o->contract_hex,
				  .expected_chain_id = o->chain_id,
				  .timeout_ms = o->timeout_ms,
				  .caps = o->caps,
				  .key = o->key.src,
				  .ask_password = cluster_ask_password,
				  .errors = &registry_contract_errors_explained };
	int r;

	if (!o->rpc)
		return cli_usage_error(&cmd, "no RPC endpoint (--rpc or ETH_RPC_URL)");
	if (need_contract && !o->contract_hex)
		return cli_usage_error(&cmd, "no contract (--contract or CLUSTER_CONTRACT)");
	r = ops_open(&cfg, &c->ops);
	if (r == -EINVAL)
		return cli_usage_error(&cmd, "%s", ops_error(c->ops));
	if (r < 0) {
		cli_error("%s", ops_error(c->ops));
		return CLI_EXIT_FAILURE;
	}
	c->rpc = ops_rpc(c->ops);
	c->chain_id = ops_chain_id(c->ops);
	if (ops_contract(c->ops)) {
		memcpy(c->contract, ops_contract(c->ops), 20);
		c->have_contract = true;
	}
	return CLI_EXIT_OK;
}

/* What an action was given, checked before anything is asked of the RPC. */
struct plan {
	const char *action;
	char **args;
	const struct ops_action *tx; /* a one-call action, its calldata encoded */
	struct buf calldata;
};

static int check_operands(struct plan *p, int nargs)
{
	static const char *const bare[] = { "status", "deploy", "kms-info", "register-app", "serve",
					    "deploy-kms" };
	struct err_detail why = { 0 };
	uint64_t token;
	uint8_t to[20];
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(bare); i++)
		if (!strcmp(p->action, bare[i]))
			return nargs ? cli_usage_error(&cmd, "unexpected argument '%s'", p->args[0]) : 0;
	if (!strcmp(p->action, "transfer")) {
		if (nargs > 2)
			return cli_usage_error(&cmd, "unexpected argument '%s'", p->args[2]);
		if (nargs < 2 || ops_parse_u64(p->args[0], &token) < 0 ||
		    ops_parse_address(p->args[1], to) < 0)
			return cli_usage_error(&cmd, "transfer takes TOKEN TO: a token number and a "
					       "0x address");
		return 0;
	}
	p->tx = ops_action_find(p->action);
	if (!p->tx)
		return cli_usage_error(&cmd, "unknown action '%s'", p->action);
	r = ops_action_encode(p->tx, p->args, (size_t)nargs, &p->calldata, &why);
	if (r == -EINVAL)
		return cli_usage_error(&cmd, "%s", why.text);
	return r < 0 ? CLI_EXIT_FAILURE : 0;
}

static int dispatch(struct cluster_ctx *c, struct plan *p)
{
	if (p->tx)
		return run_tx_action(c, p->tx, &p->calldata);
	if (!strcmp(p->action, "status"))
		return cluster_status(c);
	if (!strcmp(p->action, "serve"))
		return cluster_serve(c);
	if (!strcmp(p->action, "transfer"))
		return run_transfer(c, p->args);
	if (!strcmp(p->action, "deploy"))
		return cluster_deploy(c);
	if (!strcmp(p->action, "kms-info"))
		return cluster_kms_info(c);
	if (!strcmp(p->action, "deploy-kms"))
		return cluster_deploy_kms(c);
	return cluster_register_app(c);
}

static bool action_needs_contract(const char *action)
{
	return strcmp(action, "deploy") && strcmp(action, "kms-info") && strcmp(action, "deploy-kms");
}

int cmd_cluster(int argc, char **argv)
{
	struct cluster_opts o;
	struct cluster_ctx c = { .o = &o };
	struct cli_args a;
	struct plan p = { 0 };
	int k, status;

	opts_defaults(&o);
	cli_args_init(&a, &cmd, argc, argv);
	while ((k = cli_next(&a)) > 0)
		if ((status = parse_option(&a, k, &o)) != 0)
			return status;
	if (k == CLI_STOP)
		return a.status;
	if (o.caps.max_priority_fee_per_gas > o.caps.max_fee_per_gas)
		return cli_usage_error(&cmd, "--max-priority-fee is above --max-fee-per-gas");
	o.caps.timeout_ms = 6 * (o.timeout_ms ? o.timeout_ms : 10000);
	p.action = a.operands[0];
	p.args = a.operands + 1;
	buf_init(&p.calldata, 0);
	status = check_operands(&p, a.n_operands - 1);
	if (status == CLI_EXIT_OK)
		status = cluster_connect(&c, &o, action_needs_contract(p.action));
	if (status == CLI_EXIT_OK)
		status = dispatch(&c, &p);
	buf_clear(&p.calldata);
	ops_free(c.ops);
	return status;
}
