/* SPDX-License-Identifier: MIT */
/*
 * mesh: the transaction sender. What the agent sends to the contract: its registration
 * and signed leader calls, paid by the funded key under the caps (no receipt wait; the
 * loop follows the receipts) or handed to a paying relayer; the receipts it asks for.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"
#include "net/net.h"
#include "mesh/internal.h"
#include "net/net.h"
#include "registry/registry.h"

struct mesh_sender {
	struct registry_handle *reg;   /* borrowed: the providers and the contract */
	const struct mesh_config *cfg; /* borrowed: the funded key's file, the relayer, the caps */
	struct eth_tx_caps caps;       /* every transaction the agent pays for (the funded key) */
	uint64_t nonce_hint;           /* the funded key's next nonce as far as we sent */
	uint8_t funded_address[20];    /* of the funded key, when it pays */
	uint8_t *tx_key;               /* between hold and release: the funded key, locked memory */
	/* leader actions: the last ones sent (ring), and when actions were asked (the caps) */
	struct agent_action actions[AGENT_ACTIONS_KEPT];
	size_t n_actions;
	uint64_t action_ms[MESH_MAX_ACTION_PER_HOUR];
	size_t n_action_ms;
	uint8_t printed_calldata[32]; /* keccak of the registration last given for relaying by hand */
	struct mesh_sender_stats stats;
	char error[512];
};

static int fail(struct mesh_sender *s, int r, const char *what)
{
	const char *detail = eth_rpc_error(registry_handle_rpc(s->reg));

	snprintf(s->error, sizeof(s->error), "%s: %s", what, *detail ? detail : errstr(r));
	return r;
}

/* The funded key's address, for its nonce (the registration in flight). */
static int load_funded_address(struct mesh_sender *s, struct err_detail *why)
{
	uint8_t pub[64];
	int r;

	s->tx_key = secret_alloc(32);
	r = s->tx_key ? key_file_read32(s->cfg->tx_key_file, s->tx_key, why) : -ENOMEM;
	if (r == 0)
		r = crypto_pubkey_from_secret(s->tx_key, pub);
	if (r == 0)
		crypto_address_from_pubkey(pub, s->funded_address);
	mesh_sender_release_key(s);
	return r;
}

int mesh_sender_open(struct mesh_sender **out, struct registry_handle *reg, const struct mesh_config *cfg,
		     struct err_detail *why)
{
	struct mesh_sender *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->reg = reg;
	s->cfg = cfg;
	s->caps = (struct eth_tx_caps){ .max_fee_per_gas = cfg->tx_max_fee_per_gas,
					.max_priority_fee_per_gas = cfg->tx_max_priority_fee_per_gas,
					.max_gas = cfg->tx_max_gas,
					.max_cost = cfg->tx_max_cost,
					.no_wait = true };
	r = mesh_sender_pays(s) ? load_funded_address(s, why) : 0;
	if (r < 0) {
		mesh_sender_close(s);
		return r;
	}
	*out = s;
	return 0;
}

void mesh_sender_close(struct mesh_sender *s)
{
	if (!s)
		return;
	mesh_sender_release_key(s);
	free(s);
}

bool mesh_sender_configured(const struct mesh_sender *s)
{
	return s->cfg->tx_key_file[0] || s->cfg->relayer_url[0];
}

bool mesh_sender_pays(const struct mesh_sender *s)
{
	return s->cfg->tx_key_file[0] != '\0';
}

int mesh_sender_hold_key(struct mesh_sender *s)
{
	struct err_detail why = { "" };
	int r;

	if (!mesh_sender_pays(s) || s->tx_key)
		return 0;
	s->tx_key = secret_alloc(32);
	r = s->tx_key ? key_file_read32(s->cfg->tx_key_file, s->tx_key, &why) : -ENOMEM;
	if (r < 0) {
		snprintf(s->error, sizeof(s->error), "reading the funded key: %s",
			 why.text[0] ? why.text : errstr(r));
		mesh_sender_release_key(s);
	}
	return r;
}

void mesh_sender_release_key(struct mesh_sender *s)
{
	secret_free(s->tx_key, 32);
	s->tx_key = NULL;
}

const char *mesh_sender_error(const struct mesh_sender *s)
{
	return s->error;
}

const struct mesh_sender_stats *mesh_sender_stats(const struct mesh_sender *s)
{
	return &s->stats;
}

int mesh_sender_funded_nonce(struct mesh_sender *s, uint64_t *nonce)
{
	int r;

	if (!mesh_sender_pays(s))
		return -ENOENT;
	r = eth_get_transaction_count(registry_handle_rpc(s->reg), s->funded_address, "latest", nonce);
	return r < 0 ? fail(s, r, "eth_getTransactionCount") : 0;
}

/*
 * Send calldata to the contract, paid by tx_key, under the caps; no receipt wait (the
 * loop follows it). -EDQUOT names the cap in mesh_sender_error.
 */
static int send_capped(struct mesh_sender *s, const struct buf *data, const uint8_t tx_key[static 32],
		       enum mesh_tx_kind kind, const char *what, uint8_t tx_hash[static 32])
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
		s->stats.failed_by[kind]++;
		return fail(s, r, what);
	}
	s->stats.sent++;
	s->stats.sent_by[kind]++;
	s->stats.gas_limit_by[kind] += res.gas_limit;
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
			  enum mesh_tx_kind kind, uint8_t *tx_hash)
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
	if (r < 0) {
		s->stats.failed++;
		s->stats.failed_by[kind]++;
	} else {
		s->stats.relayed++;
		s->stats.relayed_by[kind]++;
	}
	http_reply_clear(&reply);
	free(hex);
	buf_clear(&body);
	return r;
}

/*
 * calldata (encoded by the caller, r its result; what names it) paid by the funded key
 * held or, without it, handed to the relayer: 1 with tx_hash set, 0 relayed without a hash.
 */
static int send_or_relay(struct mesh_sender *s, int r, struct buf *data, enum mesh_tx_kind kind,
			 const char *what, uint8_t tx_hash[static 32])
{
	if (r < 0)
		snprintf(s->error, sizeof(s->error), "encoding %s: %s", what, errstr(r));
	else if (s->tx_key)
		r = (r = send_capped(s, data, s->tx_key, kind, what, tx_hash)) < 0 ? r : 1;
	else
		r = relay_calldata(s, s->cfg->relayer_url, data, kind, tx_hash);
	buf_clear(data);
	return r;
}

int mesh_sender_register(struct mesh_sender *s, const struct registry_record *rec, uint8_t tx_hash[static 32])
{
	struct buf data;

	/* No receipt wait: the decision sees the record, or the funded key's nonce, later. */
	buf_init(&data, 1 << 16);
	return send_or_relay(s, registry_encode_register_call(rec, &data), &data, MESH_TX_REGISTRATION,
			     "registerPeer", tx_hash);
}

int mesh_sender_leader_call(struct mesh_sender *s, const struct registry_leader_call *call,
			    uint8_t tx_hash[static 32])
{
	struct buf data;

	buf_init(&data, 1 << 12);
	return send_or_relay(s, registry_encode_leader_call(call, &data), &data, MESH_TX_LEADER_CALL,
			     "the leader call", tx_hash);
}

int mesh_sender_manual(struct mesh_sender *s, const struct registry_record *rec, struct buf *out)
{
	char contract[41], *hex = NULL;
	uint8_t digest[32];
	struct buf data;
	int r;

	buf_init(&data, 1 << 16);
	r = registry_encode_register_call(rec, &data);
	if (r < 0)
		goto out;
	keccak256(digest, data.data, data.len);
	if (!memcmp(digest, s->printed_calldata, sizeof(digest)))
		goto out;
	hex = malloc(2 * data.len + 1);
	r = hex ? 0 : -ENOMEM;
	if (r < 0)
		goto out;
	hex_encode(hex, data.data, data.len);
	hex_encode(contract, registry_handle_contract(s->reg), 20);
	r = buf_printf(out,
		       "registration calldata: 0x%s\nsend it with: cast send 0x%s 0x%s --rpc-url <RPC> "
		       "--private-key <FUNDED_KEY>\n",
		       hex, contract, hex);
	if (r == 0) {
		memcpy(s->printed_calldata, digest, sizeof(digest));
		r = 1;
	}
out:
	free(hex);
	buf_clear(&data);
	return r;
}

static const char *const action_state_names[] = {
	[AGENT_ACTION_PENDING] = "pending",
	[AGENT_ACTION_CONFIRMED] = "confirmed",
	[AGENT_ACTION_REVERTED] = "reverted",
	[AGENT_ACTION_UNKNOWN] = "unknown",
};

/* {"action":..,"tx":..,"state":..,"relayed":..[,"block":..]} */
static int action_json(const struct agent_action *x, struct buf *out)
{
	char hex[65];
	int r;

	hex_encode(hex, x->tx, 32);
	r = buf_printf(out, "{\"action\":\"%s\",", x->name);
	if (r == 0)
		r = x->has_tx ? buf_printf(out, "\"tx\":\"0x%s\",", hex) : buf_printf(out, "\"tx\":null,");
	if (r == 0)
		r = buf_printf(out, "\"state\":\"%s\",\"relayed\":%s", action_state_names[x->state],
			       x->relayed ? "true" : "false");
	if (r == 0 && (x->state == AGENT_ACTION_CONFIRMED || x->state == AGENT_ACTION_REVERTED))
		r = buf_printf(out, ",\"block\":%llu", (unsigned long long)x->block);
	return r == 0 ? buf_printf(out, "}") : r;
}

int mesh_sender_actions_json(const struct mesh_sender *s, struct buf *out)
{
	size_t n = s->n_actions < AGENT_ACTIONS_KEPT ? s->n_actions : AGENT_ACTIONS_KEPT;
	int r = buf_printf(out, "[");

	/* newest first */
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct agent_action *x = &s->actions[(s->n_actions - 1 - i) % AGENT_ACTIONS_KEPT];

		r = i ? buf_printf(out, ",") : 0;
		if (r == 0)
			r = action_json(x, out);
	}
	return r == 0 ? buf_printf(out, "]") : r;
}

int mesh_sender_follow_actions(struct mesh_sender *s)
{
	size_t n = s->n_actions < AGENT_ACTIONS_KEPT ? s->n_actions : AGENT_ACTIONS_KEPT;
	uint64_t now = now_ms();
	int decided = 0;

	for (size_t i = 0; i < n; i++) {
		struct agent_action *x = &s->actions[i];
		struct eth_receipt rc;
		char hex[65];
		int r;

		if (x->state != AGENT_ACTION_PENDING || !x->has_tx)
			continue;
		hex_encode(hex, x->tx, 32);
		r = mesh_sender_receipt(s, x->tx, &rc);
		if (r == -ENOENT && now > x->sent_ms + AGENT_ACTION_FOLLOW_MS) {
			x->state = AGENT_ACTION_UNKNOWN;
			log_warn("leader.%s: transaction 0x%s not mined after %d s; no longer followed",
				 x->name, hex, AGENT_ACTION_FOLLOW_MS / 1000);
		}
		if (r < 0)
			continue;
		x->state = rc.success ? AGENT_ACTION_CONFIRMED : AGENT_ACTION_REVERTED;
		x->block = rc.block_number;
		if (rc.success)
			log_info("leader.%s: transaction 0x%s confirmed in block %llu", x->name, hex,
				 (unsigned long long)rc.block_number);
		else
			log_warn("leader.%s: transaction 0x%s reverted in block %llu", x->name, hex,
				 (unsigned long long)rc.block_number);
		decided = 1;
	}
	return decided;
}

/* Actions in the hour before now. */
static unsigned actions_in_last_hour(const struct mesh_sender *s, uint64_t now)
{
	size_t n = s->n_action_ms < MESH_MAX_ACTION_PER_HOUR ? s->n_action_ms : MESH_MAX_ACTION_PER_HOUR;
	unsigned count = 0;

	for (size_t i = 0; i < n; i++)
		count += s->action_ms[i] + 3600000 > now;
	return count;
}

int mesh_sender_take_action_slot(struct mesh_sender *s, char *msg, size_t cap)
{
	uint64_t now = now_ms(),
		 last = s->n_action_ms ? s->action_ms[(s->n_action_ms - 1) % MESH_MAX_ACTION_PER_HOUR] : 0;

	if (s->n_action_ms && now < last + s->cfg->action_spacing_ms) {
		snprintf(msg, cap, "one action per %u ms (P2P_ACTION_SPACING_MS); try again in %llu ms",
			 s->cfg->action_spacing_ms,
			 (unsigned long long)(last + s->cfg->action_spacing_ms - now));
		return -EAGAIN;
	}
	if (actions_in_last_hour(s, now) >= s->cfg->action_max_per_hour) {
		snprintf(msg, cap,
			 "%u actions in the last hour, the most P2P_ACTION_MAX_PER_HOUR allows; "
			 "try again later",
			 s->cfg->action_max_per_hour);
		return -EAGAIN;
	}
	s->action_ms[s->n_action_ms % MESH_MAX_ACTION_PER_HOUR] = now;
	s->n_action_ms++;
	return 0;
}

const struct agent_action *mesh_sender_note_action(struct mesh_sender *s, const char *name, const uint8_t *tx,
						   bool relayed)
{
	struct agent_action *x = &s->actions[s->n_actions++ % AGENT_ACTIONS_KEPT];

	memset(x, 0, sizeof(*x));
	snprintf(x->name, sizeof(x->name), "%s", name);
	x->has_tx = tx != NULL;
	if (tx)
		memcpy(x->tx, tx, 32);
	x->relayed = relayed;
	x->state = tx ? AGENT_ACTION_PENDING : AGENT_ACTION_UNKNOWN;
	x->sent_ms = now_ms();
	return x;
}

const char *mesh_action_state_name(enum agent_action_state state)
{
	return action_state_names[state];
}
