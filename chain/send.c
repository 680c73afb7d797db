/* SPDX-License-Identifier: MIT */
/*
 * The one transaction sender (agent, relayer, operator CLI): simulated as the sender
 * first, priced under fee, gas and cost caps the RPC cannot raise, sent with a nonce that
 * survives a lagging node, and followed to the receipt unless the caller follows it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chain/internal.h"

#define GAS_HEADROOM_PERCENT 25
#define GAS_HEADROOM_MIN 20000
/* Far above any chain's block gas limit, and far below where the headroom overflows. */
#define GAS_ESTIMATE_MAX (1ull << 48)
/* Tries with the next nonce when the node says ours is taken. */
#define NONCE_TRIES 4

/* {"from","to","value","data"} of a request; "to" left out for a creation. */
static int request_object(struct buf *b, const uint8_t from[static 20],
			  const struct eth_tx_request *req)
{
	char addr[41];
	char *hex = malloc(2 * req->len + 1);
	int r;

	if (!hex)
		return -ENOMEM;
	hex_encode(hex, req->data, req->len);
	hex_encode(addr, from, 20);
	r = buf_printf(b, "{\"from\":\"0x%s\",", addr);
	if (r == 0 && req->to) {
		hex_encode(addr, req->to, 20);
		r = buf_printf(b, "\"to\":\"0x%s\",", addr);
	}
	if (r == 0 && req->value)
		r = buf_printf(b, "\"value\":\"0x%llx\",", (unsigned long long)req->value);
	if (r == 0)
		r = buf_printf(b, "\"data\":\"0x%s\"}", hex);
	free(hex);
	return r;
}

/* method(request[, "latest"]): a revert is -EPERM with its decoded reason. */
static int run_request(struct eth_rpc *rpc, const char *method, const uint8_t from[static 20],
		       const struct eth_tx_request *req, bool with_tag, struct eth_rpc_call *c)
{
	struct buf params;
	int r;

	buf_init(&params, 0);
	if ((r = buf_printf(&params, "[")) < 0 || (r = request_object(&params, from, req)) < 0 ||
	    (r = buf_printf(&params, with_tag ? ",\"latest\"]" : "]")) < 0)
		goto out;
	r = eth_rpc_call(rpc, method, (const char *)params.data, c);
	if (r == -EREMOTEIO) {
		rpc_set_execution_error(rpc, method, c);
		r = -EPERM;
	}
out:
	buf_clear(&params);
	return r;
}

int eth_simulate(struct eth_rpc *rpc, const uint8_t from[static 20],
		 const struct eth_tx_request *req, struct buf *out)
{
	struct eth_rpc_call c = { 0 };
	int r = run_request(rpc, "eth_call", from, req, true, &c);

	if (r == 0)
		r = eth_call_result(rpc, &c, out);
	eth_rpc_call_clear(&c);
	return r;
}

static int estimate(struct eth_rpc *rpc, const uint8_t from[static 20],
		    const struct eth_tx_request *req, uint64_t *gas)
{
	struct eth_rpc_call c = { 0 };
	int r = run_request(rpc, "eth_estimateGas", from, req, false, &c);

	if (r == 0 && (c.result_type != JSON_STRING ||
		       eth_parse_quantity(c.result, c.result_len, gas) < 0)) {
		eth_rpc_set_error(rpc, "eth_estimateGas: result is not a quantity");
		r = -EBADMSG;
	}
	if (r == 0 && *gas > GAS_ESTIMATE_MAX) {
		eth_rpc_set_error(rpc, "eth_estimateGas answered %llu gas: not a usable estimate",
			      (unsigned long long)*gas);
		r = -EBADMSG;
	}
	eth_rpc_call_clear(&c);
	return r;
}

int eth_get_balance(struct eth_rpc *rpc, const uint8_t addr[static 20], uint8_t wei[static 32])
{
	struct eth_rpc_call c = { 0 };
	char params[96], hex[41], padded[65];
	int r;

	hex_encode(hex, addr, 20);
	snprintf(params, sizeof(params), "[\"0x%s\",\"latest\"]", hex);
	r = eth_rpc_call(rpc, "eth_getBalance", params, &c);
	if (r < 0)
		goto out;
	/* A quantity: "0x" and 1..64 hex digits, no leading zeros required. */
	if (c.result_type != JSON_STRING || c.result_len < 3 || c.result_len > 66 ||
	    strncasecmp(c.result, "0x", 2)) {
		r = -EBADMSG;
	} else {
		size_t digits = c.result_len - 2;

		memset(padded, '0', 64 - digits);
		memcpy(padded + 64 - digits, c.result + 2, digits);
		padded[64] = '\0';
		r = hex_decode_exact(wei, 32, padded, 64) < 0 ? -EBADMSG : 0;
	}
	if (r < 0)
		eth_rpc_set_error(rpc, "eth_getBalance: result is not a quantity");
out:
	eth_rpc_call_clear(&c);
	return r;
}

void eth_u256_to_dec(const uint8_t be[static 32], char out[static ETH_U256_DEC_MAX])
{
	uint8_t v[32];
	char tmp[ETH_U256_DEC_MAX];
	size_t n = 0;
	bool nonzero;

	memcpy(v, be, 32);
	do {
		unsigned rem = 0;

		nonzero = false;
		for (int i = 0; i < 32; i++) {
			unsigned cur = rem * 256 + v[i];

			v[i] = (uint8_t)(cur / 10);
			rem = cur % 10;
			nonzero |= v[i] != 0;
		}
		tmp[n++] = (char)('0' + rem);
	} while (nonzero && n < ETH_U256_DEC_MAX - 1);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
}

/* The worst a transaction can cost: gas limit at the max fee, plus the value it carries. */
static bool worst_cost(uint64_t gas, uint64_t fee, uint64_t value, uint64_t *cost)
{
	uint64_t fees;

	return !__builtin_mul_overflow(gas, fee, &fees) && !__builtin_add_overflow(fees, value, cost);
}

/*
 * Fees under the caps. The RPC's tip is clamped to its cap first and the max fee made of
 * the base fee and that tip (a lying tip cannot raise it), then clamped to the fee cap; a
 * base fee above the cap would leave the transaction unmined, so that is refused instead
 * (-EDQUOT).
 */
static int capped_fees(struct eth_rpc *rpc, const struct eth_tx_caps *caps, struct eth_tx *tx)
{
	uint64_t max_fee, tip, base;
	int r = eth_suggest_fees(rpc, &max_fee, &tip);

	if (r < 0)
		return r;
	if (tip > max_fee)
		tip = max_fee;
	base = (max_fee - tip) / 2;  /* eth_suggest_fees: 2 * base + tip */
	if (base > caps->max_fee_per_gas) {
		eth_rpc_set_error(rpc, "the base fee (about %llu wei/gas) is above the fee cap "
			      "(max_fee_per_gas) of %llu wei/gas",
			      (unsigned long long)base, (unsigned long long)caps->max_fee_per_gas);
		return -EDQUOT;
	}
	if (caps->max_priority_fee_per_gas && tip > caps->max_priority_fee_per_gas)
		tip = caps->max_priority_fee_per_gas;
	if (__builtin_mul_overflow(base, 2, &max_fee) || __builtin_add_overflow(max_fee, tip, &max_fee) ||
	    max_fee > caps->max_fee_per_gas)
		max_fee = caps->max_fee_per_gas;
	tx->max_fee_per_gas = max_fee;
	tx->max_priority_fee_per_gas = tip < max_fee ? tip : max_fee;
	return 0;
}

/* Pending and latest count: a node behind its peers may answer a lower pending count. */
static int next_nonce(struct eth_rpc *rpc, const uint8_t from[static 20], uint64_t hint,
		      uint64_t *nonce)
{
	uint64_t pending, latest;
	int r;

	if ((r = eth_get_transaction_count(rpc, from, "pending", &pending)) < 0 ||
	    (r = eth_get_transaction_count(rpc, from, "latest", &latest)) < 0)
		return r;
	*nonce = pending > latest ? pending : latest;
	if (hint > *nonce)
		*nonce = hint;
	return 0;
}

static bool nonce_taken(const char *why)
{
	return strcasestr(why, "nonce too low") || strcasestr(why, "replacement transaction") ||
	       strcasestr(why, "already imported") || strcasestr(why, "nonce has already been used");
}

/* Sign and send; on "nonce too low" and kin move to the next nonce, a bounded number of times. */
static int sign_and_send(struct eth_rpc *rpc, const uint8_t sk[static 32], struct eth_tx *tx,
			 struct eth_tx_result *res)
{
	uint8_t sent_hash[32];
	struct buf raw;
	int r = -EAGAIN;

	buf_init(&raw, 0);
	for (int i = 0; i < NONCE_TRIES; i++, tx->nonce++) {
		buf_reset(&raw);
		r = eth_tx_sign(tx, sk, &raw, res->tx_hash);
		if (r < 0)
			break;
		r = eth_send_raw_transaction(rpc, raw.data, raw.len, sent_hash);
		if (r == -EREMOTEIO && strcasestr(eth_rpc_error(rpc), "already known")) {
			memcpy(sent_hash, res->tx_hash, 32);  /* this very transaction is in the pool */
			r = 0;
		}
		if (r != -EREMOTEIO || !nonce_taken(eth_rpc_error(rpc)))
			break;
	}
	if (r == 0 && memcmp(res->tx_hash, sent_hash, 32)) {
		eth_rpc_set_error(rpc, "eth_sendRawTransaction answered with another transaction hash");
		r = -EBADMSG;
	}
	res->nonce = tx->nonce;
	res->sent = r == 0;
	if (res->sent) {
		rpc_stats(rpc)->tx_sent++;
		rpc_stats(rpc)->tx_gas_limit += tx->gas_limit;
	}
	buf_clear(&raw);
	return r;
}

/* Replay a mined failure on the state after its block to name the revert. */
static void explain_failure(struct eth_rpc *rpc, const uint8_t from[static 20],
			    const struct eth_tx_request *req, const struct eth_receipt *rc)
{
	char hash[65];
	int r;

	hex_encode(hash, rc->tx_hash, 32);
	r = eth_simulate(rpc, from, req, NULL);
	if (r != -EPERM)
		eth_rpc_set_error(rpc, "transaction 0x%s reverted in block %llu (the replay did not)",
			      hash, (unsigned long long)rc->block_number);
}

int eth_send_capped(struct eth_rpc *rpc, const uint8_t sk[static 32],
		    const struct eth_tx_request *req, const struct eth_tx_caps *caps,
		    struct eth_tx_result *res)
{
	struct eth_tx tx = { .chain_id = caps->chain_id, .has_to = req->to != NULL,
			     .data = req->data, .data_len = req->len, .gas_limit = caps->gas_limit };
	uint8_t pub[64], from[20];
	uint64_t gas, cost;
	int r;

	memset(res, 0, sizeof(*res));
	if (!caps->max_fee_per_gas) {
		eth_rpc_set_error(rpc, "no cap on the fee per gas");
		return -EINVAL;
	}
	if (crypto_pubkey_from_secret(sk, pub) < 0) {
		eth_rpc_set_error(rpc, "the transaction key is not a valid secp256k1 secret");
		return -EINVAL;
	}
	crypto_address_from_pubkey(pub, from);
	if (req->to)
		memcpy(tx.to, req->to, 20);
	for (int i = 0; i < 8; i++)
		tx.value[31 - i] = (uint8_t)(req->value >> (8 * i));
	if (!tx.chain_id && (r = eth_chain_id(rpc, &tx.chain_id)) < 0)
		return r;
	/* The simulation names a revert before anything is signed or paid. */
	if (!(caps->no_simulation && tx.gas_limit) && (r = eth_simulate(rpc, from, req, NULL)) < 0)
		return r;
	if (!tx.gas_limit) {
		if ((r = estimate(rpc, from, req, &gas)) < 0)
			return r;
		tx.gas_limit = gas + gas * GAS_HEADROOM_PERCENT / 100 + GAS_HEADROOM_MIN;
	}
	if (caps->max_gas && tx.gas_limit > caps->max_gas) {
		eth_rpc_set_error(rpc, "this transaction needs a gas limit of %llu, above the gas cap "
			      "(max_gas) of %llu", (unsigned long long)tx.gas_limit,
			      (unsigned long long)caps->max_gas);
		return -EDQUOT;
	}
	if ((r = capped_fees(rpc, caps, &tx)) < 0)
		return r;
	if (!worst_cost(tx.gas_limit, tx.max_fee_per_gas, req->value, &cost) ||
	    (caps->max_cost && cost > caps->max_cost)) {
		eth_rpc_set_error(rpc, "this transaction may cost up to %llu gas x %llu wei/gas%s, above "
			      "the cost cap (max_cost) of %llu wei", (unsigned long long)tx.gas_limit,
			      (unsigned long long)tx.max_fee_per_gas, req->value ? " + its value" : "",
			      (unsigned long long)caps->max_cost);
		return -EDQUOT;
	}
	res->gas_limit = tx.gas_limit;
	res->max_fee_per_gas = tx.max_fee_per_gas;
	res->worst_cost = cost;
	if ((r = next_nonce(rpc, from, caps->nonce_hint ? *caps->nonce_hint : 0, &tx.nonce)) < 0)
		return r;
	if ((r = sign_and_send(rpc, sk, &tx, res)) < 0)
		return r;
	if (caps->nonce_hint)
		*caps->nonce_hint = res->nonce + 1;
	if (caps->no_wait)
		return 0;
	r = eth_wait_receipt(rpc, res->tx_hash, caps->timeout_ms > 0 ? caps->timeout_ms : 60000,
			     1000, &res->receipt);
	if (r < 0)
		return r;
	res->mined = true;
	rpc_stats(rpc)->tx_mined++;
	rpc_stats(rpc)->tx_gas_used += res->receipt.gas_used;
	if (!res->receipt.success) {
		rpc_stats(rpc)->tx_reverted++;
		explain_failure(rpc, from, req, &res->receipt);
		return -EPERM;
	}
	return 0;
}

int eth_send_transaction(struct eth_rpc *rpc, const uint8_t sk[static 32],
			 const uint8_t to[static 20], const void *data, size_t len,
			 const struct eth_send_opts *opts, struct eth_receipt *rc)
{
	struct eth_tx_request req = { .to = to, .data = data, .len = len };
	struct eth_tx_caps caps = { .chain_id = opts->chain_id, .gas_limit = opts->gas_limit,
				    .timeout_ms = opts->timeout_ms, .no_simulation = true,
				    .max_fee_per_gas = ETH_DEFAULT_MAX_FEE_PER_GAS,
				    .max_cost = ETH_DEFAULT_MAX_COST };
	struct eth_tx_result res;
	int r = eth_send_capped(rpc, sk, &req, &caps, &res);

	if (res.mined || res.sent)
		*rc = res.receipt;
	if (res.sent && !res.mined)
		memcpy(rc->tx_hash, res.tx_hash, 32);
	return r;
}
