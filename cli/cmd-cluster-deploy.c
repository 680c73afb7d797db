/* SPDX-License-Identifier: MIT */
/*
 * dstack-p2p cluster deploy / kms-info / register-app: bring a cluster contract into the
 * world under a dstack KMS. The KMS root address is read from the KMS contract itself, so
 * an operator never guesses KMS_ROOT_ADDRESS.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cluster-cmd.h"

/* ---- the KMS ----------------------------------------------------------------------------- */

static int need_kms(struct cluster_ctx *c, uint8_t kms[static 20])
{
	if (!c->o->kms_hex)
		return -ENOENT;
	if (ops_parse_address(c->o->kms_hex, kms) < 0) {
		cli_error("--kms '%s' is not a 20-byte 0x address", c->o->kms_hex);
		return -EINVAL;
	}
	return 0;
}

int cluster_kms_root_of(struct cluster_ctx *c, const uint8_t kms[static 20], uint8_t root[static 20])
{
	struct ops_kms_facts f;
	int r = ops_kms_read(c->ops, kms, &f);

	if (r < 0)
		cli_error("%s", ops_error(c->ops));
	else
		memcpy(root, f.root, 20);
	return r;
}

static void hex_str(char *out, const uint8_t *p, size_t n)
{
	out[0] = '0';
	out[1] = 'x';
	hex_encode(out + 2, p, n);
}

int cluster_kms_info(struct cluster_ctx *c)
{
	char root[43], owner[43], pub[2 * 65 + 3], kms_hex[43];
	struct ops_kms_facts f;
	uint8_t kms[20];

	if (need_kms(c, kms) < 0)
		return c->o->kms_hex ? CLI_EXIT_USAGE
				     : (cli_error("kms-info needs --kms ADDR (the dstack KMS contract)"),
					CLI_EXIT_USAGE);
	if (ops_kms_read(c->ops, kms, &f) < 0) {
		cli_error("%s", ops_error(c->ops));
		return CLI_EXIT_FAILURE;
	}
	hex_str(root, f.root, 20);
	hex_str(owner, f.owner, 20);
	hex_str(pub, f.pubkey, f.pubkey_len);
	hex_str(kms_hex, kms, 20);
	if (c->o->json) {
		printf("{\"kms\":\"%s\",\"kmsRoot\":\"%s\",\"k256Pubkey\":\"%s\",\"gatewayAppId\":\"%s\","
		       "\"owner\":%s%s%s", kms_hex, root, pub, f.gateway_app_id,
		       f.have_owner ? "\"" : "", f.have_owner ? owner : "null", f.have_owner ? "\"" : "");
		if (f.have_registered)
			printf(",\"clusterRegistered\":%s", f.registered ? "true" : "false");
		printf("}\n");
		return CLI_EXIT_OK;
	}
	printf("kms            %s\nkms root       %s\nk256 pubkey    %s\ngateway app    %s\n"
	       "owner          %s\n", kms_hex, root, pub, f.gateway_app_id[0] ? f.gateway_app_id : "-",
	       f.have_owner ? owner : "-");
	if (f.have_registered)
		printf("cluster app    %s\n", f.registered ? "registered" : "not registered");
	printf("\nDeploy a cluster under this KMS with --kms %s (or KMS_ROOT_ADDRESS=%s for\n"
	       "contracts/deploy.sh).\n", kms_hex, root);
	return CLI_EXIT_OK;
}

int cluster_register_app(struct cluster_ctx *c)
{
	struct eth_tx_result res;
	struct ops_kms_facts f;
	struct buf calldata;
	uint8_t kms[20], w[32] = { 0 };
	int r;

	if (need_kms(c, kms) < 0) {
		if (!c->o->kms_hex)
			cli_error("register-app needs --kms ADDR (the dstack KMS contract)");
		return CLI_EXIT_USAGE;
	}
	if (ops_kms_read(c->ops, kms, &f) < 0) {
		cli_error("%s", ops_error(c->ops));
		return CLI_EXIT_FAILURE;
	}
	if (f.registered) {
		if (c->o->json)
			printf("{\"action\":\"register-app\",\"alreadyRegistered\":true}\n");
		else
			printf("register-app: the cluster is already registered with this KMS\n");
		return CLI_EXIT_OK;
	}
	buf_init(&calldata, 0);
	memcpy(w + 12, c->contract, 20);
	r = ops_calldata_word(&calldata, "registerApp(address)", w) < 0
		    ? CLI_EXIT_FAILURE
		    : cluster_transact(c, "register-app", kms, &calldata, 0, &res);
	buf_clear(&calldata);
	if (r == CLI_EXIT_OK && c->o->json) {
		char hash[67];

		hex_str(hash, res.tx_hash, 32);
		printf("{\"action\":\"register-app\",\"tx\":\"%s\",\"block\":%" PRIu64 "}\n", hash,
		       res.receipt.block_number);
	}
	return r;
}

/* ---- deploy ------------------------------------------------------------------------------ */

/*
 * The init code of contract `name`: --artifact FILE for the cluster (env DSTACK_P2P_ARTIFACT),
 * else forge's output in the checkout this binary was built in, else the copy `make install`
 * put in DSTACK_P2P_CONTRACTSDIR.
 */
static int find_initcode(const struct cluster_opts *o, const char *name, struct buf *code)
{
	char file[128], in_checkout[128], dir[4096];
	int r;

	if (o->artifact && !strcmp(name, "DstackClusterNFT")) {
		r = ops_initcode_load(o->artifact, code);
		if (r < 0)
			cli_error("--artifact %s: %s (want forge's DstackClusterNFT.json with "
				  "bytecode.object)", o->artifact, errstr(r));
		return r;
	}
	snprintf(file, sizeof(file), "%s.json", name);
	snprintf(in_checkout, sizeof(in_checkout), "contracts/out/%s.sol", name);
	r = cluster_find_data(DSTACK_P2P_CONTRACTSDIR, "contracts", in_checkout, file, dir,
			      sizeof(dir));
	if (r == 0) {
		char path[sizeof(dir) + sizeof(file) + 1];

		snprintf(path, sizeof(path), "%s/%s", dir, file);
		r = ops_initcode_load(path, code);
		if (r < 0)
			cli_error("%s: %s (want forge's artifact with bytecode.object)", path, errstr(r));
		return r;
	}
	cli_error("no %s artifact: not in " DSTACK_P2P_CONTRACTSDIR " (make install puts it "
		  "there) nor, for a binary built in a checkout, in its %s/ (make contracts "
		  "builds it); or give --artifact FILE", file, in_checkout);
	return -ENOENT;
}

/* The KMS root and what to set up, from the options; an exit status. */
static int deploy_args(struct cluster_ctx *c, uint8_t root[static 20], struct ops_deploy *d)
{
	const struct cluster_opts *o = c->o;
	uint8_t kms[20];

	*d = (struct ops_deploy){ .boot_policy = o->boot_policy,
				  .max_nodes = o->max_nodes,
				  .modes = o->modes,
				  .any_device = o->any_device,
				  .tcb_up_to_date = o->tcb_up_to_date,
				  .have_mint_policy = o->have_mint_policy,
				  .mint_price = o->mint_price,
				  .public_minting = o->public_minting };
	if (o->kms_root_hex) {
		if (ops_parse_address(o->kms_root_hex, root) < 0) {
			cli_error("--kms-root '%s' is not a 20-byte 0x address", o->kms_root_hex);
			return CLI_EXIT_USAGE;
		}
	} else if (need_kms(c, kms) == 0) {
		if (cluster_kms_root_of(c, kms, root) < 0)
			return CLI_EXIT_FAILURE;
	} else {
		cli_error("deploy needs the KMS root: --kms ADDR (read from the KMS contract) or "
			  "--kms-root ADDR");
		return CLI_EXIT_USAGE;
	}
	if (o->compose_hash && ops_parse_bytes32(o->compose_hash, d->compose_hash) < 0) {
		cli_error("--compose-hash '%s' is not a 32-byte 0x hash", o->compose_hash);
		return CLI_EXIT_USAGE;
	}
	d->have_compose_hash = o->compose_hash != NULL;
	if (o->owner_hex) {
		if (ops_parse_address(o->owner_hex, d->owner) < 0) {
			cli_error("--owner '%s' is not a 20-byte 0x address", o->owner_hex);
			return CLI_EXIT_USAGE;
		}
		d->offer_owner = true;
	}
	return CLI_EXIT_OK;
}

static void print_next_steps(const struct cluster_ctx *c, const char *addr, bool offered)
{
	if (c->o->json) {
		printf("{\"action\":\"deploy\",\"contract\":\"%s\",\"chainId\":%" PRIu64 "}\n", addr,
		       c->chain_id);
		return;
	}
	printf("\nDstackClusterNFT deployed at %s (chain %" PRIu64 ")\n\nNext steps:\n"
	       "  export CLUSTER_CONTRACT=%s\n"
	       "  dstack-p2p cluster register-app --kms <KMS>     # the KMS then asks this contract\n"
	       "  dstack-p2p cluster allow-compose <COMPOSE_HASH>\n"
	       "  dstack-p2p cluster mint <HOLDER> <LABEL>; dstack-p2p cluster bind <TOKEN> <INSTANCE>\n"
	       "  dstack-p2p cluster status\n", addr, c->chain_id, addr);
	if (offered)
		printf("  (the new owner runs: dstack-p2p cluster accept-ownership)\n");
}

/* The new contract's configuration, one owner transaction per call of the plan. */
static int configure(struct cluster_ctx *c, const struct ops_deploy *d, const uint8_t deployer[static 20])
{
	struct ops_call calls[OPS_DEPLOY_CALLS_MAX];
	struct eth_tx_result res;
	size_t n;
	int r = ops_deploy_plan(d, deployer, calls, &n) < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;

	for (size_t i = 0; r == CLI_EXIT_OK && i < n; i++)
		r = cluster_transact(c, calls[i].what, c->contract, &calls[i].calldata, 0, &res);
	ops_calls_clear(calls, n);
	return r;
}

int cluster_deploy(struct cluster_ctx *c)
{
	struct ops_deploy d;
	struct eth_tx_result res;
	struct buf code;
	uint8_t root[20], *sk, deployer[20];
	char addr[43];
	int r;

	r = deploy_args(c, root, &d);
	if (r != CLI_EXIT_OK)
		return r;
	if (cluster_load_key(&c->o->key.src, &sk, deployer) < 0)
		return CLI_EXIT_USAGE;
	secret_free(sk, 32);
	buf_init(&code, 0);
	if (find_initcode(c->o, "DstackClusterNFT", &code) < 0) {
		buf_clear(&code);
		return CLI_EXIT_USAGE;
	}
	r = ops_deploy_constructor(&code, deployer, root) < 0
		    ? CLI_EXIT_FAILURE
		    : cluster_transact(c, "deploy", NULL, &code, 0, &res);
	buf_clear(&code);
	if (r != CLI_EXIT_OK)
		return r;
	if (!res.receipt.has_contract_address) {
		cli_error("deploy: the receipt names no contract address");
		return CLI_EXIT_FAILURE;
	}
	memcpy(c->contract, res.receipt.contract_address, 20);
	c->have_contract = true;
	hex_str(addr, c->contract, 20);
	r = configure(c, &d, deployer);
	if (r != CLI_EXIT_OK)
		cli_error("deploy: the contract is at %s but its configuration stopped here", addr);
	print_next_steps(c, addr, d.offer_owner);
	return r;
}

/* ---- a stand-in KMS for a local cluster ------------------------------------------------- */

/*
 * deploy-kms --kms-root-key-file FILE: contracts/src/LocalDstackKms.sol with the compressed
 * public key of FILE's secret as kmsInfo().k256Pubkey, so kms-info, deploy --kms and
 * register-app work as against dstack's KMS; dstack-sim signs with the same FILE. Only the
 * public key leaves this function; the secret is wiped at once.
 */
int cluster_deploy_kms(struct cluster_ctx *c)
{
	const struct ops_key_source root_key = { .key_file = c->o->kms_root_key_file };
	struct eth_tx_result res;
	struct abi_encoder e = { 0 };
	struct buf code;
	uint8_t *sk, root[20], pub[64], pub33[33];
	char addr[43], root_hex[43];
	int r;

	if (!c->o->kms_root_key_file) {
		cli_error("deploy-kms needs --kms-root-key-file FILE: the stand-in KMS root's secret "
			  "(hex, as dstack-sim --kms-root-key-file reads it)");
		return CLI_EXIT_USAGE;
	}
	if (cluster_load_key(&root_key, &sk, root) < 0)
		return CLI_EXIT_USAGE;
	r = crypto_pubkey_from_secret(sk, pub);
	secret_free(sk, 32);
	if (r < 0) {
		cli_error("--kms-root-key-file: not a valid secp256k1 secret");
		return CLI_EXIT_USAGE;
	}
	crypto_compress_pubkey(pub, pub33);
	buf_init(&code, 0);
	if (find_initcode(c->o, "LocalDstackKms", &code) < 0) {
		buf_clear(&code);
		return CLI_EXIT_USAGE;
	}
	/* constructor(bytes k256Pubkey, string gatewayAppId) */
	r = abi_enc_begin(&e, &code, 2) < 0 || abi_put_bytes(&e, pub33, 33) < 0 ||
		    abi_put_string(&e, "local") < 0 || abi_enc_end(&e) < 0
		? CLI_EXIT_FAILURE : cluster_transact(c, "deploy-kms", NULL, &code, 0, &res);
	buf_clear(&code);
	if (r != CLI_EXIT_OK)
		return r;
	if (!res.receipt.has_contract_address) {
		cli_error("deploy-kms: the receipt names no contract address");
		return CLI_EXIT_FAILURE;
	}
	hex_str(addr, res.receipt.contract_address, 20);
	hex_str(root_hex, root, 20);
	if (c->o->json) {
		printf("{\"action\":\"deploy-kms\",\"kms\":\"%s\",\"kmsRoot\":\"%s\",\"chainId\":%"
		       PRIu64 "}\n", addr, root_hex, c->chain_id);
		return CLI_EXIT_OK;
	}
	printf("\nA stand-in dstack KMS (LocalDstackKms) deployed at %s, root %s\n\nNext steps:\n"
	       "  dstack-p2p cluster deploy --kms %s [policy options]\n"
	       "  dstack-p2p cluster register-app --kms %s\n"
	       "  dstack-sim --kms-root-key-file %s --app-id <CLUSTER_CONTRACT> ...\n",
	       addr, root_hex, addr, addr, c->o->kms_root_key_file);
	return CLI_EXIT_OK;
}
