/* SPDX-License-Identifier: MIT */
/* EIP-1559 (type 2) transactions: RLP payload, signing hash, signature, raw bytes and hash. */
#include <errno.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"

#define TX_TYPE_EIP1559 0x02

/* rlp([chainId, nonce, maxPriorityFee, maxFee, gas, to, value, data, accessList]) fields. */
static int put_unsigned_fields(struct buf *b, const struct eth_tx *tx)
{
	int r;

	if ((r = rlp_put_uint(b, tx->chain_id)) < 0 || (r = rlp_put_uint(b, tx->nonce)) < 0 ||
	    (r = rlp_put_uint(b, tx->max_priority_fee_per_gas)) < 0 ||
	    (r = rlp_put_uint(b, tx->max_fee_per_gas)) < 0 || (r = rlp_put_uint(b, tx->gas_limit)) < 0)
		return r;
	/* Contract creation has an empty "to". */
	r = rlp_put_bytes(b, tx->to, tx->has_to ? 20 : 0);
	if (r < 0)
		return r;
	if ((r = rlp_put_uint256(b, tx->value)) < 0 ||
	    (r = rlp_put_bytes(b, tx->data, tx->data_len)) < 0)
		return r;
	return rlp_put_list(b, NULL, 0);  /* empty access list */
}

/* 0x02 || rlp(list(fields)) */
static int wrap_typed(struct buf *out, const struct buf *fields)
{
	static const uint8_t type = TX_TYPE_EIP1559;
	int r = buf_append(out, &type, 1);

	if (r < 0)
		return r;
	return rlp_put_list(out, fields->data, fields->len);
}

int eth_tx_sign(const struct eth_tx *tx, const uint8_t sk[static 32], struct buf *raw,
		uint8_t tx_hash[static 32])
{
	struct buf fields, unsigned_tx;
	uint8_t digest[32], sig[65];
	size_t start = raw->len;
	int r;

	if (tx->max_priority_fee_per_gas > tx->max_fee_per_gas || tx->chain_id == 0)
		return -EINVAL;
	buf_init(&fields, 0);
	buf_init(&unsigned_tx, 0);
	r = put_unsigned_fields(&fields, tx);
	if (r < 0)
		goto out;
	r = wrap_typed(&unsigned_tx, &fields);
	if (r < 0)
		goto out;
	keccak256(digest, unsigned_tx.data, unsigned_tx.len);
	r = crypto_sign_digest(sk, digest, sig);
	if (r < 0)
		goto out;
	/* yParity, r, s: r and s are integers, so leading zero bytes are dropped. */
	if ((r = rlp_put_uint(&fields, sig[64])) < 0 || (r = rlp_put_uint256(&fields, sig)) < 0 ||
	    (r = rlp_put_uint256(&fields, sig + 32)) < 0)
		goto out;
	r = wrap_typed(raw, &fields);
	if (r < 0)
		goto out;
	keccak256(tx_hash, raw->data + start, raw->len - start);
out:
	secret_wipe(sig, sizeof(sig));
	buf_clear(&fields);
	buf_clear(&unsigned_tx);
	return r;
}
