/* SPDX-License-Identifier: MIT */
/*
 * mesh: the transaction sender. What the agent sends to the contract: its registration
 * and signed leader calls, paid by the funded key under the caps (no receipt wait; the
 * loop follows the receipts) or handed to a paying relayer; the receipts it asks for.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "registry/registry.h"

struct mesh_sender {
	struct registry_handle *reg; /* borrowed: the providers and the contract */
	struct eth_tx_caps caps;     /* every transaction the agent pays for (the funded key) */
	uint64_t nonce_hint;         /* the funded key's next nonce as far as we sent */
	struct mesh_sender_stats stats;
	char error[512];
};

static int fail(struct mesh_sender *s, int r, const char *what)
{
	const char *detail = eth_rpc_error(registry_handle_rpc(s->reg));

	snprintf(s->error, sizeof(s->error), "%s: %s", what, *detail ? detail : errstr(r));
	return r;
}

int mesh_sender_open(struct mesh_sender **out, struct registry_handle *reg, const struct eth_tx_caps *caps)
{
	struct mesh_sender *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->reg = reg;
	s->caps = *caps;
	s->caps.nonce_hint = NULL;
	s->caps.no_wait = true;
	*out = s;
	return 0;
}

void mesh_sender_close(struct mesh_sender *s)
{
	free(s);
}

const char *mesh_sender_error(const struct mesh_sender *s)
{
	return s->error;
}

const struct mesh_sender_stats *mesh_sender_stats(const struct mesh_sender *s)
{
	return &s->stats;
}

int mesh_sender_tx_count(struct mesh_sender *s, const uint8_t address[static 20], uint64_t *nonce)
{
	int r = eth_get_transaction_count(registry_handle_rpc(s->reg), address, "latest", nonce);

	return r < 0 ? fail(s, r, "eth_getTransactionCount") : 0;
}

/*
 * Send calldata to the contract, paid by tx_key, under the caps; no receipt wait (the
 * loop follows it). -EDQUOT names the cap in mesh_sender_error.
 */
static int send_capped(struct mesh_sender *s, const struct buf *data, const uint8_t tx_key[static 32],
		       const char *what, uint8_t tx_hash[static 32])
{
	struct eth_tx_request req = { .to = registry_handle_contract(s->reg),
				      .data = data->data,
				      .len = data->len };
	struct eth_tx_caps caps = s->caps;
	struct eth_tx_result res;
	int r;

	caps.chain_id = registry_handle_expected_chain_id(s->reg);
	caps.nonce_hint = &s->nonce_hint;
	r = eth_send_capped(registry_handle_rpc(s->reg), tx_key, &req, &caps, &res);
	if (r < 0) {
		s->stats.failed++;
		return fail(s, r, what);
	}
	s->stats.sent++;
	memcpy(tx_hash, res.tx_hash, 32);
	return 0;
}

int mesh_sender_receipt(struct mesh_sender *s, const uint8_t tx_hash[static 32], struct eth_receipt *rc)
{
	int r = eth_get_receipt(registry_handle_rpc(s->reg), tx_hash, rc);

	return r < 0 && r != -ENOENT ? fail(s, r, "eth_getTransactionReceipt") : r;
}

int mesh_relayer_reply_parse(const char *body, size_t len, char *reason, size_t cap,
			     uint8_t tx_hash[static 32])
{
	struct json j;
	const char *s;
	size_t n;
	int i, r = 0;

	if (cap)
		reason[0] = '\0';
	if (!len || json_parse(&j, body, len, 64) < 0)
		return 0;
	if (j.ntok < 1 || j.tok[0].type != JSON_OBJECT)
		goto out;
	i = json_get(&j, 0, "error");
	if (i >= 0 && j.tok[i].type == JSON_STRING && cap) {
		s = json_raw(&j, i, &n);
		n = n < cap - 1 ? n : cap - 1;
		for (size_t k = 0; k < n; k++) /* for a log line: no control bytes */
			reason[k] = (unsigned char)s[k] < 0x20 || s[k] == 0x7f ? '?' : s[k];
		reason[n] = '\0';
	}
	i = json_get(&j, 0, "txHash");
	if (i >= 0 && j.tok[i].type == JSON_STRING) {
		s = json_raw(&j, i, &n);
		if (n == 66 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') &&
		    hex_decode_exact(tx_hash, 32, s + 2, 64) >= 0)
			r = 1;
	}
out:
	json_clear(&j);
	return r;
}

/*
 * POST {"to": the contract, "data": calldata} to the relayer; a refusal's reason in
 * s->error; the hash it sent (tx_hash may be NULL): 1 with it, 0 without.
 */
static int relay_calldata(struct mesh_sender *s, const char *relayer_url, const struct buf *data,
			  uint8_t *tx_hash)
{
	struct http_target target = { .base_url = relayer_url, .timeout_ms = 5000 };
	struct http_reply reply = { 0 };
	uint8_t scratch[32];
	struct buf body;
	char contract[41];
	char *hex;
	int r;

	hex = malloc(2 * data->len + 1);
	if (!hex)
		return -ENOMEM;
	buf_init(&body, 1 << 17);
	hex_encode(hex, data->data, data->len);
	hex_encode(contract, registry_handle_contract(s->reg), 20);
	r = buf_printf(&body, "{\"to\":\"0x%s\",\"data\":\"0x%s\"}", contract, hex);
	if (r == 0)
		r = http_post(&target, "", NULL, body.data, body.len, &reply);
	if (r < 0) {
		snprintf(s->error, sizeof(s->error), "%s", reply.error[0] ? reply.error : errstr(r));
	} else if (reply.status < 200 || reply.status > 299) {
		char why[400];

		mesh_relayer_reply_parse((const char *)reply.body.data, reply.body.len, why, sizeof(why),
					 scratch);
		if (why[0])
			snprintf(s->error, sizeof(s->error), "the relayer refused (HTTP %ld): %s",
				 reply.status, why);
		else
			snprintf(s->error, sizeof(s->error), "the relayer answered HTTP %ld", reply.status);
		r = reply.status == 403 || reply.status == 422 ? -EPERM : -EREMOTEIO;
	} else {
		r = mesh_relayer_reply_parse((const char *)reply.body.data, reply.body.len, NULL, 0,
					     tx_hash ? tx_hash : scratch);
	}
	if (r < 0)
		s->stats.failed++;
	else
		s->stats.relayed++;
	http_reply_clear(&reply);
	free(hex);
	buf_clear(&body);
	return r;
}

/*
 * calldata (encoded by the caller, r its result; what names it) paid by tx_key or, with
 * tx_key NULL, handed to the relayer: 1 with tx_hash set, 0 relayed without a hash.
 */
static int send_or_relay(struct mesh_sender *s, int r, struct buf *data, const char *what,
			 const uint8_t *tx_key, const char *relayer_url, uint8_t tx_hash[static 32])
{
	if (r < 0)
		snprintf(s->error, sizeof(s->error), "encoding %s: %s", what, errstr(r));
	else if (tx_key)
		r = (r = send_capped(s, data, tx_key, what, tx_hash)) < 0 ? r : 1;
	else
		r = relay_calldata(s, relayer_url, data, tx_hash);
	buf_clear(data);
	return r;
}

int mesh_sender_register(struct mesh_sender *s, const struct registry_record *rec, const uint8_t *tx_key,
			 const char *relayer_url, uint8_t tx_hash[static 32])
{
	struct buf data;

	/* No receipt wait: the decision sees the record, or the funded key's nonce, later. */
	buf_init(&data, 1 << 16);
	return send_or_relay(s, registry_encode_register_call(rec, &data), &data, "registerPeer", tx_key,
			     relayer_url, tx_hash);
}

int mesh_sender_leader_call(struct mesh_sender *s, const struct registry_leader_call *call,
			    const uint8_t *tx_key, const char *relayer_url, uint8_t tx_hash[static 32])
{
	struct buf data;

	buf_init(&data, 1 << 12);
	return send_or_relay(s, registry_encode_leader_call(call, &data), &data, "the leader call", tx_key,
			     relayer_url, tx_hash);
}
