/* SPDX-License-Identifier: MIT */
/* The parts of `dstack-p2p cluster` (cli/cmd-cluster*.c): its options and its actions. */
#ifndef DSTACK_P2P_CLI_CLUSTER_CMD_H
#define DSTACK_P2P_CLI_CLUSTER_CMD_H

#include "cli/cluster.h"

struct cluster_opts {
	const char *rpc;
	const char *contract_hex;
	struct cluster_key_opts key;
	uint64_t chain_id;
	long timeout_ms;
	bool json;
	struct eth_tx_caps caps;
	uint64_t value;
	/* status */
	bool watch;
	long interval_ms;
	long count;
	uint64_t from_block;
	bool have_from_block;
	/* deploy, kms-info, register-app */
	const char *kms_hex;
	const char *kms_root_hex;
	const char *kms_root_key_file;   /* deploy-kms */
	const char *owner_hex;
	const char *artifact;
	uint64_t max_nodes;
	int modes;                /* -1: unchanged */
	int boot_policy;          /* -1: unchanged */
	int tcb_up_to_date;       /* -1: unchanged */
	int any_device;           /* -1: unchanged */
	const char *compose_hash;
	bool have_mint_policy;
	uint64_t mint_price;
	bool public_minting;
	/* serve */
	const char *listen;
	const char *web_dir;
	bool allow_remote;
};

/* What every action gets: the options, the operator's handle and, from it, the RPC, the
 * chain and the contract (when one was given; deploy sets it). */
struct cluster_ctx {
	const struct cluster_opts *o;
	struct ops *ops;
	struct eth_rpc *rpc;
	uint64_t chain_id;
	uint8_t contract[20];
	bool have_contract;
};

/* A transaction to `to` paid by the configured key, reported as `what`; an exit status.
 * Simulated first: a revert is reported with its decoded error and nothing is sent. */
int cluster_transact(struct cluster_ctx *c, const char *what, const uint8_t *to,
		     const struct buf *calldata, uint64_t value, struct eth_tx_result *res);
/* "what refused: why" or "what failed: why" for a -errno of eth_send_capped. */
int cluster_report_failure(struct cluster_ctx *c, const char *what, int r,
			   const struct eth_tx_result *res);

int cluster_status(struct cluster_ctx *c);
/* The document of `status --json`, read at one block, appended to out; -errno (the RPC's
 * words in eth_rpc_error), -ENOENT when the address is not a cluster contract. */
int cluster_status_json(struct cluster_ctx *c, struct buf *out);
/* `cluster serve`: the dashboard page and its JSON API; an exit status. */
int cluster_serve(struct cluster_ctx *c);
int cluster_watch(struct cluster_ctx *c, uint64_t from_block);
int cluster_deploy(struct cluster_ctx *c);
int cluster_kms_info(struct cluster_ctx *c);
int cluster_register_app(struct cluster_ctx *c);
/* deploy-kms: a stand-in dstack KMS contract for a local cluster (anvil, dstack-sim). */
int cluster_deploy_kms(struct cluster_ctx *c);

/* The KMS root address from a dstack KMS contract's kmsInfo().k256Pubkey. */
int cluster_kms_root_of(struct cluster_ctx *c, const uint8_t kms[static 20], uint8_t root[static 20]);

#endif
