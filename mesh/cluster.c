/* SPDX-License-Identifier: MIT */
/* mesh: the cluster contract as the agent sees it, through chain/'s RPC client and ABI. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"

struct cluster {
	struct eth_rpc *rpc;
	uint8_t contract[20];
	bool followed;          /* next_block is meaningful */
	uint64_t next_block;    /* the first block whose logs we have not seen */
	char error[512];
};

static int fail(struct cluster *c, int r, const char *what)
{
	snprintf(c->error, sizeof(c->error), "%s: %s", what,
		 *eth_rpc_last_error(c->rpc) ? eth_rpc_last_error(c->rpc) : errstr(r));
	return r;
}

int cluster_open(struct cluster **out, const char *rpc_urls, const uint8_t contract[static 20])
{
	/* Short timeouts: a hung RPC must not stall the loop (the control socket, signals). */
	struct eth_rpc_config cfg = { .urls = rpc_urls, .timeout_ms = 3000, .retries = 1 };
	struct cluster *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	r = eth_rpc_new(&cfg, &c->rpc);
	if (r < 0) {
		free(c);
		return r;
	}
	memcpy(c->contract, contract, 20);
	*out = c;
	return 0;
}

void cluster_close(struct cluster *c)
{
	if (!c)
		return;
	eth_rpc_free(c->rpc);
	free(c);
}

const char *cluster_error(const struct cluster *c)
{
	return c->error;
}

uint64_t cluster_rpc_calls(const struct cluster *c)
{
	return eth_rpc_round_trips(c->rpc);
}

int cluster_chain_id(struct cluster *c, uint64_t *chain_id)
{
	int r = eth_chain_id(c->rpc, chain_id);

	return r < 0 ? fail(c, r, "eth_chainId") : 0;
}

/* A view function with at most one static argument, returning one word. */
static int call_view(struct cluster *c, const char *signature, const uint8_t *address_arg,
		     const uint8_t **word, struct buf *reply)
{
	struct abi_encoder e;
	struct abi_tuple t;
	struct buf data;
	uint8_t sel[4];
	int r;

	buf_init(&data, 256);
	abi_selector(signature, sel);
	r = buf_append(&data, sel, 4);
	if (r == 0 && address_arg) {
		r = abi_enc_begin(&e, &data, 1);
		if (r == 0)
			r = abi_put_address(&e, address_arg);
		if (r == 0)
			r = abi_enc_end(&e);
	}
	if (r == 0)
		r = eth_call(c->rpc, c->contract, data.data, data.len, "latest", reply);
	buf_free(&data);
	if (r < 0)
		return fail(c, r, signature);
	abi_tuple_init(&t, reply->data, reply->len);
	r = abi_get_word(&t, 0, word);
	if (r < 0) {
		snprintf(c->error, sizeof(c->error), "%s: malformed reply (%zu bytes)", signature, reply->len);
		return r;
	}
	return 0;
}

int cluster_kms_root(struct cluster *c, uint8_t kms_root[static 20])
{
	struct buf reply;
	struct abi_tuple t;
	const uint8_t *w;
	int r;

	buf_init(&reply, 4096);
	r = call_view(c, "kmsRoot()", NULL, &w, &reply);
	if (r == 0) {
		abi_tuple_init(&t, reply.data, reply.len);
		r = abi_get_address(&t, 0, kms_root);
		if (r < 0)
			snprintf(c->error, sizeof(c->error), "kmsRoot(): not an address");
	}
	buf_free(&reply);
	return r;
}

static int call_uint(struct cluster *c, const char *signature, const uint8_t *arg, unsigned bits,
		     uint64_t *out)
{
	struct buf reply;
	struct abi_tuple t;
	const uint8_t *w;
	int r;

	buf_init(&reply, 4096);
	r = call_view(c, signature, arg, &w, &reply);
	if (r == 0) {
		abi_tuple_init(&t, reply.data, reply.len);
		r = abi_get_uint(&t, 0, bits, out);
		if (r < 0)
			snprintf(c->error, sizeof(c->error), "%s: value out of range", signature);
	}
	buf_free(&reply);
	return r;
}

int cluster_token_of_instance(struct cluster *c, const uint8_t instance_id[static 20], uint64_t *token)
{
	/* uint256 on chain, but ids stop at 254: anything wider is a format error. */
	return call_uint(c, "tokenOfInstance(address)", instance_id, 64, token);
}

int cluster_nonce_of(struct cluster *c, const uint8_t instance_id[static 20], uint64_t *nonce)
{
	return call_uint(c, "nonceOf(address)", instance_id, 64, nonce);
}

/* ---- following the registry ----------------------------------------------------------- */

/*
 * One round trip per idle poll: the head block number. Only when new blocks arrived,
 * a second one for the contract's logs in them. Any log means "re-read"
 * (docs/registry.md); the agent's periodic full re-read covers what a reorg could hide.
 */
int cluster_poll_changes(struct cluster *c, uint64_t *block)
{
	struct eth_log_filter f = { .address = c->contract };
	struct eth_log *logs = NULL;
	size_t n = 0;
	uint64_t head;
	int r;

	r = eth_block_number(c->rpc, &head);
	if (r < 0)
		return fail(c, r, "eth_blockNumber");
	*block = head;
	if (!c->followed) {
		c->followed = true;
		c->next_block = head + 1;
		return 1;
	}
	if (head < c->next_block) {
		/* Same head, or a shorter chain after a reorg: only the latter is news. */
		r = head + 1 < c->next_block;
		c->next_block = head + 1;
		return r;
	}
	f.from_block = c->next_block;
	f.to_block = head;
	r = eth_get_logs(c->rpc, &f, &logs, &n);
	if (r < 0)
		return fail(c, r, "eth_getLogs");
	eth_logs_free(logs, n);
	c->next_block = head + 1;
	return n > 0;
}

/* ---- reading every live peer ------------------------------------------------------------ */

static int copy_bytes(const struct abi_tuple *t, size_t slot, uint8_t *out, size_t want)
{
	const uint8_t *p;
	size_t n;
	int r = abi_get_bytes(t, slot, &p, &n);

	if (r < 0)
		return r;
	if (n != want)
		return -EBADMSG;
	memcpy(out, p, n);
	return 0;
}

/* One Peer tuple of getPeers() (docs/registry.md field order). */
static int decode_peer(const struct abi_tuple *t, struct registry_peer *p)
{
	const uint8_t *s;
	size_t n;
	uint64_t mode;
	int r;

	r = abi_get_uint64(t, 0, &p->token_id);
	if (r == 0)
		r = abi_get_address(t, 1, p->instance_id);
	if (r == 0)
		r = abi_get_fixed_bytes(t, 2, 32, p->wg_public_key);
	if (r == 0)
		r = abi_get_bytes(t, 3, &s, &n);
	if (r == 0 && (n > REGISTRY_ENDPOINT_MAX || memchr(s, '\0', n)))
		r = -EBADMSG;
	if (r == 0 && !(p->endpoint = strndup((const char *)s, n)))
		r = -ENOMEM;
	if (r == 0)
		r = abi_get_uint(t, 4, 8, &mode);
	if (r == 0)
		p->mode = (uint8_t)mode;
	if (r == 0)
		r = abi_get_uint64(t, 5, &p->nonce);
	if (r == 0)
		r = copy_bytes(t, 6, p->node_pubkey, 64);
	if (r == 0)
		r = copy_bytes(t, 7, p->app_pubkey, 64);
	if (r == 0)
		r = copy_bytes(t, 8, p->app_signature, 65);
	if (r == 0)
		r = copy_bytes(t, 9, p->kms_signature, 65);
	if (r == 0)
		r = copy_bytes(t, 10, p->node_signature, 65);
	return r;
}

int cluster_read_peers(struct cluster *c, struct registry_peer **peers, size_t *n)
{
	struct abi_tuple t, elements, one;
	struct registry_peer *out = NULL;
	struct buf reply, data;
	uint8_t sel[4];
	size_t count = 0, k;
	int r;

	*peers = NULL;
	*n = 0;
	buf_init(&reply, 4 << 20);
	buf_init(&data, 16);
	abi_selector("getPeers()", sel);
	r = buf_append(&data, sel, 4);
	if (r == 0)
		r = eth_call(c->rpc, c->contract, data.data, data.len, "latest", &reply);
	if (r < 0) {
		fail(c, r, "getPeers()");
		goto out;
	}
	abi_tuple_init(&t, reply.data, reply.len);
	r = abi_get_array(&t, 0, 1, &elements, &count);
	if (r == 0 && count > 254)
		r = -EBADMSG;
	if (r == 0 && count) {
		out = calloc(count, sizeof(*out));
		if (!out)
			r = -ENOMEM;
	}
	for (k = 0; r == 0 && k < count; k++) {
		r = abi_get_tuple(&elements, k, &one);
		if (r == 0)
			r = decode_peer(&one, &out[k]);
	}
	if (r < 0) {
		snprintf(c->error, sizeof(c->error), "getPeers(): malformed reply at peer %zu: %s", k, errstr(r));
		cluster_peers_free(out, count);
		goto out;
	}
	*peers = out;
	*n = count;
out:
	buf_free(&data);
	buf_free(&reply);
	return r;
}

void cluster_peers_free(struct registry_peer *peers, size_t n)
{
	if (!peers)
		return;
	for (size_t i = 0; i < n; i++)
		registry_peer_clear(&peers[i]);
	free(peers);
}

/* ---- registration ----------------------------------------------------------------------- */

#define REGISTER_PEER_SIG \
	"registerPeer((address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes))"

int cluster_registration_calldata(const struct registry_peer *rec, struct buf *out)
{
	struct abi_encoder e, tuple;
	uint8_t sel[4];
	int r;

	abi_selector(REGISTER_PEER_SIG, sel);
	r = buf_append(out, sel, 4);
	if (r == 0)
		r = abi_enc_begin(&e, out, 1);
	if (r == 0)
		r = abi_put_tuple_begin(&e, &tuple, 10);
	if (r == 0)
		r = abi_put_address(&tuple, rec->instance_id);
	if (r == 0)
		r = abi_put_word(&tuple, rec->wg_public_key);
	if (r == 0)
		r = abi_put_string(&tuple, rec->endpoint ? rec->endpoint : "");
	if (r == 0)
		r = abi_put_uint64(&tuple, rec->mode);
	if (r == 0)
		r = abi_put_uint64(&tuple, rec->nonce);
	if (r == 0)
		r = abi_put_bytes(&tuple, rec->node_pubkey, 64);
	if (r == 0)
		r = abi_put_bytes(&tuple, rec->app_pubkey, 64);
	if (r == 0)
		r = abi_put_bytes(&tuple, rec->app_signature, 65);
	if (r == 0)
		r = abi_put_bytes(&tuple, rec->kms_signature, 65);
	if (r == 0)
		r = abi_put_bytes(&tuple, rec->node_signature, 65);
	if (r == 0)
		r = abi_enc_end(&tuple);
	if (r == 0)
		r = abi_enc_end(&e);
	return r;
}

int cluster_send_registration(struct cluster *c, const struct registry_peer *rec,
			      const uint8_t tx_key[static 32])
{
	struct eth_tx tx = { .has_to = true };
	struct eth_receipt rc;
	struct buf data, raw;
	uint8_t pub[64], from[20], hash[32];
	int r;

	buf_init(&data, 1 << 16);
	buf_init(&raw, 1 << 16);
	r = cluster_registration_calldata(rec, &data);
	if (r < 0) {
		snprintf(c->error, sizeof(c->error), "encoding registerPeer: %s", errstr(r));
		goto out;
	}
	r = eth_pubkey_from_secret(tx_key, pub);
	if (r < 0) {
		snprintf(c->error, sizeof(c->error), "the funded key is not a valid secp256k1 key");
		goto out;
	}
	eth_address_from_pubkey(pub, from);
	memcpy(tx.to, c->contract, 20);
	tx.data = data.data;
	tx.data_len = data.len;
	r = eth_chain_id(c->rpc, &tx.chain_id);
	if (r == 0)
		r = eth_get_transaction_count(c->rpc, from, "pending", &tx.nonce);
	if (r == 0)
		r = eth_suggest_fees(c->rpc, &tx.max_fee_per_gas, &tx.max_priority_fee_per_gas);
	if (r < 0) {
		fail(c, r, "preparing the registration transaction");
		goto out;
	}
	/* Estimating runs the contract's checks: a revert is reported here, before paying. */
	r = eth_estimate_gas(c->rpc, from, c->contract, data.data, data.len, &tx.gas_limit);
	if (r < 0) {
		fail(c, r, "registerPeer would revert");
		r = -EPERM;
		goto out;
	}
	tx.gas_limit += tx.gas_limit / 5;
	r = eth_tx_sign(&tx, tx_key, &raw, hash);
	if (r == 0)
		r = eth_send_raw_transaction(c->rpc, raw.data, raw.len, hash);
	if (r < 0) {
		fail(c, r, "sending the registration");
		goto out;
	}
	r = eth_wait_receipt(c->rpc, hash, 30000, 200, &rc);
	if (r < 0) {
		fail(c, r, "waiting for the registration's receipt");
		goto out;
	}
	if (!rc.success) {
		snprintf(c->error, sizeof(c->error), "the registration reverted in block %llu",
			 (unsigned long long)rc.block_number);
		r = -EPERM;
	}
out:
	buf_free(&data);
	buf_free(&raw);
	return r;
}

int cluster_relay_registration(struct cluster *c, const char *relayer_url, const struct registry_peer *rec)
{
	struct http_target target = { .base_url = relayer_url, .timeout_ms = 30000 };
	struct http_reply reply = { 0 };
	struct buf data, body;
	char contract[41];
	char *hex = NULL;
	int r;

	buf_init(&data, 1 << 16);
	buf_init(&body, 1 << 17);
	r = cluster_registration_calldata(rec, &data);
	if (r == 0 && !(hex = malloc(2 * data.len + 1)))
		r = -ENOMEM;
	if (r < 0)
		goto out;
	hex_encode(hex, data.data, data.len);
	hex_encode(contract, c->contract, 20);
	r = buf_printf(&body, "{\"to\":\"0x%s\",\"data\":\"0x%s\"}", contract, hex);
	if (r == 0)
		r = http_post(&target, "", NULL, body.data, body.len, &reply);
	if (r < 0) {
		snprintf(c->error, sizeof(c->error), "%s", reply.error[0] ? reply.error : errstr(r));
	} else if (reply.status < 200 || reply.status > 299) {
		snprintf(c->error, sizeof(c->error), "HTTP %ld", reply.status);
		r = -EREMOTEIO;
	}
out:
	http_reply_free(&reply);
	free(hex);
	buf_free(&data);
	buf_free(&body);
	return r;
}
