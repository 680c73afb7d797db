/* SPDX-License-Identifier: MIT */
/* Sending a contract call as a signed EIP-1559 transaction and waiting for its receipt. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "chain/internal.h"

#define GAS_HEADROOM_PERCENT 25
#define GAS_HEADROOM_MIN 20000
/* Far above any chain's block gas limit, and far below where the headroom overflows. */
#define GAS_ESTIMATE_MAX (1ull << 48)

/*
 * Why a mined transaction failed: replay it as a call on the state after its block. A
 * reverted transaction left nothing there, and the block's earlier transactions (which
 * are what usually made it fail, e.g. a competing registration) are all applied.
 */
static void explain_failed_tx(struct eth_rpc *rpc, const uint8_t to[static 20], const void *data,
			      size_t len, const struct eth_receipt *rc)
{
	char tag[ETH_BLOCK_TAG_MAX], hash[65];
	struct buf out;

	hex_encode(hash, rc->tx_hash, 32);
	eth_block_tag(tag, rc->block_number);
	buf_init(&out, 0);
	if (eth_call(rpc, to, data, len, tag, &out) == 0)
		eth_rpc_set_error(rpc, "transaction 0x%s reverted in block %llu (the replay did not)",
			      hash, (unsigned long long)rc->block_number);
	/* else eth_call left the decoded reason in last_error */
	buf_clear(&out);
}

int eth_send_transaction(struct eth_rpc *rpc, const uint8_t sk[static 32],
			 const uint8_t to[static 20], const void *data, size_t len,
			 const struct eth_send_opts *opts, struct eth_receipt *rc)
{
	struct eth_tx tx = { .chain_id = opts->chain_id, .has_to = true, .data = data,
			     .data_len = len, .gas_limit = opts->gas_limit };
	uint8_t pub[64], from[20], hash[32], sent_hash[32];
	uint64_t gas;
	struct buf raw;
	int r;

	buf_init(&raw, 0);
	memcpy(tx.to, to, 20);
	r = eth_pubkey_from_secret(sk, pub);
	if (r < 0) {
		eth_rpc_set_error(rpc, "the transaction key is not a valid secp256k1 secret");
		goto out;
	}
	eth_address_from_pubkey(pub, from);
	if (!tx.chain_id && (r = eth_chain_id(rpc, &tx.chain_id)) < 0)
		goto out;
	/* Estimating first turns a revert into a named error before anything is paid. */
	if (!tx.gas_limit) {
		r = eth_estimate_gas(rpc, from, to, data, len, &gas);
		if (r == -EREMOTEIO)
			r = -EPERM;
		if (r < 0)
			goto out;
		if (gas > GAS_ESTIMATE_MAX) {
			eth_rpc_set_error(rpc, "eth_estimateGas answered %llu gas: not a usable estimate",
				      (unsigned long long)gas);
			r = -EBADMSG;
			goto out;
		}
		tx.gas_limit = gas + gas * GAS_HEADROOM_PERCENT / 100 + GAS_HEADROOM_MIN;
	}
	if ((r = eth_get_transaction_count(rpc, from, "pending", &tx.nonce)) < 0 ||
	    (r = eth_suggest_fees(rpc, &tx.max_fee_per_gas, &tx.max_priority_fee_per_gas)) < 0)
		goto out;
	r = eth_tx_sign(&tx, sk, &raw, hash);
	if (r < 0)
		goto out;
	r = eth_send_raw_transaction(rpc, raw.data, raw.len, sent_hash);
	if (r < 0)
		goto out;
	if (memcmp(hash, sent_hash, 32)) {
		eth_rpc_set_error(rpc, "eth_sendRawTransaction answered with another transaction hash");
		r = -EBADMSG;
		goto out;
	}
	r = eth_wait_receipt(rpc, hash, opts->timeout_ms > 0 ? opts->timeout_ms : 60000, 1000, rc);
	if (r < 0)
		goto out;
	if (!rc->success) {
		explain_failed_tx(rpc, to, data, len, rc);
		r = -EPERM;
	}
out:
	buf_clear(&raw);
	return r;
}
