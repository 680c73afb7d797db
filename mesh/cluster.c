/* SPDX-License-Identifier: MIT */
/* mesh: the cluster contract as the agent sees it, through chain/'s RPC client and registry reader. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "net/net.h"
#include "registry/registry.h"

#define CLUSTER_MAX_PROVIDERS 8

struct cluster {
	struct eth_rpc *rpc;
	struct registry_reader *reader;
	uint8_t contract[20];
	uint64_t chain_id;      /* 0 until known */
	char error[512];

	/* With two or more URLs: each on its own, to read a second provider (cross-check). */
	struct eth_rpc *providers[CLUSTER_MAX_PROVIDERS];
	size_t n_providers;
	struct registry_record *second;   /* the other provider's records at our block */
	size_t n_second;
	bool have_second;
	uint64_t second_block;          /* the block they are of */
	const char *second_label;
	char disagreement[512];         /* the last cross-check's finding; "" when they agreed */

	struct eth_tx_caps caps;        /* every transaction the agent pays for (the funded key) */
	uint64_t nonce_hint;            /* the funded key's next nonce as far as we sent */
};

static int fail(struct cluster *c, int r, const char *what)
{
	const char *detail = eth_rpc_error(c->rpc);

	snprintf(c->error, sizeof(c->error), "%s: %s", what, *detail ? detail : errstr(r));
	return r;
}

/* One RPC client per URL of the list (only when it has two or more). */
static int open_providers(struct cluster *c, const struct rpc_url_list *rpc, const struct eth_rpc_config *base)
{
	size_t n = 0;

	if (rpc->n < 2)
		return 0;
	for (; n < rpc->n && n < CLUSTER_MAX_PROVIDERS; n++) {
		struct rpc_url_list one_url = { .n = 1, .url = { rpc->url[n] } };
		struct eth_rpc_config one = *base;
		int r;

		one.list = &one_url;
		r = eth_rpc_new(&one, &c->providers[n]);
		if (r < 0)
			return r;
		c->n_providers = n + 1;  /* so cluster_close frees those opened */
	}
	return 0;
}

int cluster_open(struct cluster **out, const struct rpc_url_list *rpc, const uint8_t contract[static 20],
		 const volatile sig_atomic_t *abort_flag)
{
	/* Short timeouts: a hung RPC must not stall the loop (the control socket, signals). */
	struct eth_rpc_config cfg = { .list = rpc, .timeout_ms = 3000, .retries = 1,
				      .abort_flag = abort_flag, .errors = &registry_contract_errors };
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
	c->caps.max_fee_per_gas = ETH_DEFAULT_MAX_FEE_PER_GAS;
	c->caps.max_cost = ETH_DEFAULT_MAX_COST;
	r = open_providers(c, rpc, &cfg);
	if (r < 0) {
		cluster_close(c);
		return r;
	}
	*out = c;
	return 0;
}

void cluster_close(struct cluster *c)
{
	if (!c)
		return;
	registry_reader_free(c->reader);
	eth_rpc_free(c->rpc);
	for (size_t i = 0; i < c->n_providers; i++)
		eth_rpc_free(c->providers[i]);
	registry_records_free(c->second, c->n_second);
	free(c);
}

size_t cluster_providers(const struct cluster *c)
{
	return c->n_providers;
}

const char *cluster_primary_label(const struct cluster *c)
{
	return eth_rpc_current_label(c->rpc);
}

/* The first provider that is not the one the follower reads from. */
static struct eth_rpc *other_provider(const struct cluster *c)
{
	const char *primary = eth_rpc_current_label(c->rpc);

	for (size_t i = 0; i < c->n_providers; i++)
		if (strcmp(eth_rpc_current_label(c->providers[i]), primary))
			return c->providers[i];
	return NULL;
}

static void drop_second(struct cluster *c)
{
	registry_records_free(c->second, c->n_second);
	c->second = NULL;
	c->n_second = 0;
	c->have_second = false;
}

/*
 * The other provider's records at our block (number `at`, tag): patched by the records of
 * the tokens the follower read one by one since the last cross-check, when that is all
 * that changed and the copy we hold is as of the block they were read from; else getPeers()
 * in full. A change thus costs the other provider what it cost the follower's.
 */
static int read_second(struct cluster *c, struct eth_rpc *other, const char *tag, uint64_t at)
{
	bool named[REGISTRY_MAX_PEERS + 1] = { false };
	struct registry_record *got;
	size_t count = 0, n_got;
	uint64_t from;
	bool changed;
	int r;

	if (registry_reader_take_named(c->reader, named, &from) && c->have_second && from == c->second_block) {
		for (size_t t = 1; t <= REGISTRY_MAX_PEERS; t++)
			count += named[t];
		r = registry_read_tokens(other, c->contract, tag, named, count, &got, &n_got);
		if (r == 0) {
			r = registry_peers_patch(&c->second, &c->n_second, named, got, n_got, &changed);
			if (r < 0)
				registry_records_free(got, n_got);
			else
				free(got);
		}
		if (r <= 0) {
			c->second_block = at;
			return r;
		}
	}
	drop_second(c);
	r = registry_read_peers(other, c->contract, tag, &c->second, &c->n_second, NULL, 0, NULL);
	c->second_block = at;
	return r;
}

int cluster_cross_check(struct cluster *c)
{
	const struct eth_block *at = c->reader ? registry_reader_block(c->reader) : NULL;
	struct eth_rpc *other = other_provider(c);
	struct eth_block theirs;
	char tag[ETH_BLOCK_TAG_MAX], ours_hex[65], theirs_hex[65];
	int r;

	c->disagreement[0] = '\0';
	if (!at || !other) {
		drop_second(c);
		return 0;
	}
	/* Another provider than last time: what we hold of the last one's view is no use. */
	if (c->second_label && strcmp(c->second_label, eth_rpc_current_label(other)))
		c->have_second = false;
	c->second_label = eth_rpc_current_label(other);
	eth_block_tag(tag, at->number);
	r = eth_get_block(other, tag, &theirs);
	if (r == 0 && memcmp(theirs.hash, at->hash, 32)) {
		hex_encode(ours_hex, at->hash, 32);
		hex_encode(theirs_hex, theirs.hash, 32);
		snprintf(c->disagreement, sizeof(c->disagreement), "providers disagree on block %llu: "
			 "0x%.16s... at %s, 0x%.16s... at %s", (unsigned long long)at->number, ours_hex,
			 eth_rpc_current_label(c->rpc), theirs_hex, c->second_label);
	}
	if (r == 0)
		r = read_second(c, other, tag, at->number);
	if (r < 0) {
		drop_second(c);
		snprintf(c->disagreement, sizeof(c->disagreement), "providers disagree: %s cannot serve "
			 "the registry at block %llu (%s)", c->second_label, (unsigned long long)at->number,
			 eth_rpc_error(other));
		return r;
	}
	c->have_second = true;
	return 0;
}

const struct registry_record *cluster_second_view(const struct cluster *c, size_t *n, const char **label)
{
	*n = c->n_second;
	*label = c->second_label;
	return c->have_second ? c->second : NULL;
}

const char *cluster_disagreement(const struct cluster *c)
{
	return c->disagreement;
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

void cluster_expect_chain_id(struct cluster *c, uint64_t chain_id)
{
	c->chain_id = chain_id;
}

int cluster_check_contract(struct cluster *c)
{
	int r = registry_check_cluster(c->rpc, c->contract);

	return r < 0 && r != -ENOTTY && r != -EPROTOTYPE ? fail(c, r, "checking the contract") : r;
}

void cluster_distrust(struct cluster *c, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	n = (size_t)snprintf(c->error, sizeof(c->error), "%s: ", eth_rpc_current_label(c->rpc));
	if (n < sizeof(c->error)) {
		va_start(ap, fmt);
		vsnprintf(c->error + n, sizeof(c->error) - n, fmt, ap);
		va_end(ap);
	}
	eth_rpc_distrust_current(c->rpc);
}

int cluster_kms_root(struct cluster *c, uint8_t kms_root[static 20])
{
	int r = registry_kms_root(c->rpc, c->contract, kms_root);

	return r < 0 ? fail(c, r, "kmsRoot()") : 0;
}

int cluster_token_of_instance(struct cluster *c, const uint8_t instance_id[static 20], uint64_t *token)
{
	int r = registry_token_of_instance(c->rpc, c->contract, instance_id, token);

	return r < 0 ? fail(c, r, "tokenOfInstance()") : 0;
}

int cluster_nonce_of(struct cluster *c, const uint8_t instance_id[static 20], uint64_t *nonce)
{
	int r = registry_nonce_of(c->rpc, c->contract, instance_id, nonce);

	return r < 0 ? fail(c, r, "nonceOf()") : 0;
}

int cluster_tx_count(struct cluster *c, const uint8_t address[static 20], uint64_t *nonce)
{
	int r = eth_get_transaction_count(c->rpc, address, "latest", nonce);

	return r < 0 ? fail(c, r, "eth_getTransactionCount") : 0;
}

int cluster_poll(struct cluster *c, bool full, bool *changed)
{
	int r;

	*changed = false;
	if (!c->reader) {
		r = registry_reader_new(c->rpc, c->contract, c->chain_id, &c->reader);
		if (r < 0)
			return fail(c, r, "registry reader");
	}
	/*
	 * The periodic full re-read resyncs the follower: the chain id again and getPeers() at
	 * the head, whatever the logs said. The old set stays until it worked; the decision
	 * re-verifies only the records that differ from what it verified before.
	 */
	if (full)
		registry_reader_resync(c->reader, c->chain_id);
	r = registry_reader_poll(c->reader, changed);
	if (r < 0)
		return fail(c, r, full ? "reading the registry (getPeers)" : "following the registry");
	if (full)
		*changed = true;
	return 0;
}

const struct registry_record *cluster_peers(const struct cluster *c, size_t *n)
{
	*n = 0;
	return c->reader ? registry_reader_peers(c->reader, n) : NULL;
}

const struct registry_skip *cluster_skipped(const struct cluster *c, size_t *n)
{
	*n = 0;
	return c->reader ? registry_reader_skipped(c->reader, n) : NULL;
}

uint64_t cluster_block(const struct cluster *c)
{
	const struct eth_block *b = c->reader ? registry_reader_block(c->reader) : NULL;

	return b ? b->number : 0;
}

uint64_t cluster_token_version(const struct cluster *c, uint64_t token)
{
	return c->reader ? registry_reader_token_version(c->reader, token) : 0;
}

void cluster_set_tx_caps(struct cluster *c, const struct eth_tx_caps *caps)
{
	c->caps = *caps;
	c->caps.nonce_hint = NULL;
	c->caps.no_wait = true;
}

/*
 * Send calldata to the contract, paid by tx_key, under the caps; no receipt wait (the
 * loop follows it). -EDQUOT names the cap in cluster_error.
 */
static int send_capped(struct cluster *c, const struct buf *data, const uint8_t tx_key[static 32],
		       const char *what, uint8_t tx_hash[static 32])
{
	struct eth_tx_request req = { .to = c->contract, .data = data->data, .len = data->len };
	struct eth_tx_caps caps = c->caps;
	struct eth_tx_result res;
	int r;

	caps.chain_id = c->chain_id;
	caps.nonce_hint = &c->nonce_hint;
	r = eth_send_capped(c->rpc, tx_key, &req, &caps, &res);
	if (r < 0)
		return fail(c, r, what);
	memcpy(tx_hash, res.tx_hash, 32);
	return 0;
}

int cluster_send_registration(struct cluster *c, const struct registry_record *rec,
			      const uint8_t tx_key[static 32], uint8_t tx_hash[static 32])
{
	struct buf data;
	int r;

	/* No receipt wait: the decision sees the record, or the funded key's nonce, later. */
	buf_init(&data, 1 << 16);
	r = registry_encode_register_call(rec, &data);
	if (r < 0)
		snprintf(c->error, sizeof(c->error), "encoding registerPeer: %s", errstr(r));
	else
		r = send_capped(c, &data, tx_key, "registerPeer", tx_hash);
	buf_clear(&data);
	return r;
}

int cluster_receipt(struct cluster *c, const uint8_t tx_hash[static 32], struct eth_receipt *rc)
{
	int r = eth_get_receipt(c->rpc, tx_hash, rc);

	return r < 0 && r != -ENOENT ? fail(c, r, "eth_getTransactionReceipt") : r;
}

int mesh_relayer_reply_parse(const char *body, size_t len, char *reason, size_t cap, uint8_t tx_hash[static 32])
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
		for (size_t k = 0; k < n; k++)  /* for a log line: no control bytes */
			reason[k] = (unsigned char)s[k] < 0x20 || s[k] == 0x7f ? '?' : s[k];
		reason[n] = '\0';
	}
	i = json_get(&j, 0, "txHash");
	if (i >= 0 && j.tok[i].type == JSON_STRING) {
		s = json_raw(&j, i, &n);
		if (n == 66 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && hex_decode_exact(tx_hash, 32, s + 2, 64) >= 0)
			r = 1;
	}
out:
	json_clear(&j);
	return r;
}

/*
 * POST {"to": the contract, "data": calldata} to the relayer; a refusal's reason in
 * c->error; the hash it sent (tx_hash may be NULL): 1 with it, 0 without.
 */
static int relay_calldata(struct cluster *c, const char *relayer_url, const struct buf *data, uint8_t *tx_hash)
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
	hex_encode(contract, c->contract, 20);
	r = buf_printf(&body, "{\"to\":\"0x%s\",\"data\":\"0x%s\"}", contract, hex);
	if (r == 0)
		r = http_post(&target, "", NULL, body.data, body.len, &reply);
	if (r < 0) {
		snprintf(c->error, sizeof(c->error), "%s", reply.error[0] ? reply.error : errstr(r));
	} else if (reply.status < 200 || reply.status > 299) {
		char why[400];

		mesh_relayer_reply_parse((const char *)reply.body.data, reply.body.len, why, sizeof(why), scratch);
		if (why[0])
			snprintf(c->error, sizeof(c->error), "the relayer refused (HTTP %ld): %s", reply.status, why);
		else
			snprintf(c->error, sizeof(c->error), "the relayer answered HTTP %ld", reply.status);
		r = reply.status == 403 || reply.status == 422 ? -EPERM : -EREMOTEIO;
	} else {
		r = mesh_relayer_reply_parse((const char *)reply.body.data, reply.body.len, NULL, 0,
					     tx_hash ? tx_hash : scratch);
	}
	http_reply_clear(&reply);
	free(hex);
	buf_clear(&body);
	return r;
}

int cluster_relay_registration(struct cluster *c, const char *relayer_url, const struct registry_record *rec)
{
	struct buf data;
	int r;

	buf_init(&data, 1 << 16);
	r = registry_encode_register_call(rec, &data);
	if (r < 0)
		snprintf(c->error, sizeof(c->error), "encoding registerPeer: %s", errstr(r));
	else
		r = relay_calldata(c, relayer_url, &data, NULL);
	buf_clear(&data);
	return r < 0 ? r : 0;
}

int cluster_leader_nonce(struct cluster *c, uint64_t token, uint64_t *nonce)
{
	int r = registry_leader_nonce(c->rpc, c->contract, token, nonce);

	return r < 0 ? fail(c, r, "leaderActionNonce()") : 0;
}

int cluster_send_leader_call(struct cluster *c, const struct registry_leader_call *call, const uint8_t *tx_key,
			     const char *relayer_url, uint8_t tx_hash[static 32])
{
	struct buf data;
	int r;

	buf_init(&data, 1 << 12);
	r = registry_encode_leader_call(call, &data);
	if (r < 0)
		snprintf(c->error, sizeof(c->error), "encoding the leader call: %s", errstr(r));
	else if (tx_key)
		r = (r = send_capped(c, &data, tx_key, "the leader call", tx_hash)) < 0 ? r : 1;
	else
		r = relay_calldata(c, relayer_url, &data, tx_hash);
	buf_clear(&data);
	return r;
}

int cluster_label_of(struct cluster *c, uint64_t token, char *out, size_t cap)
{
	int r = registry_label_of(c->rpc, c->contract, token, out, cap);

	return r < 0 ? fail(c, r, "labelOf()") : 0;
}

int cluster_leader_state(struct cluster *c, struct registry_leader *out)
{
	int r = registry_leader_state(c->rpc, c->contract, out);

	return r < 0 ? fail(c, r, "leaderState()") : 0;
}
