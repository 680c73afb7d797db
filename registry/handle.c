/* SPDX-License-Identifier: MIT */
/*
 * registry: the handle one node reads the registry through: its RPC providers (the
 * failover list, and each URL on its own for cross-checks), the contract, the chain id
 * and KMS root it trusts, the follower of the peer set, and the last failure in words.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"
#include "registry/registry.h"

#define HANDLE_MAX_PROVIDERS 8

struct registry_handle {
	struct eth_rpc *rpc;
	struct registry_reader *reader;
	uint8_t contract[20];
	uint64_t chain_id; /* the one the follower insists on; 0: any */
	char error[512];

	/* With two or more URLs: each on its own, to read a second provider (cross-check). */
	struct eth_rpc *providers[HANDLE_MAX_PROVIDERS];
	size_t n_providers;
	struct registry_record *second; /* the other provider's records at our block */
	size_t n_second;
	bool have_second;
	uint64_t second_block; /* the block they are of */
	const char *second_label;
	char disagreement[512]; /* the last cross-check's finding; "" when they agreed */
};

static int fail(struct registry_handle *h, int r, const char *what)
{
	const char *detail = eth_rpc_error(h->rpc);

	snprintf(h->error, sizeof(h->error), "%s: %s", what, *detail ? detail : errstr(r));
	return r;
}

/* One RPC client per URL of the list (only when it has two or more). */
static int open_providers(struct registry_handle *h, const struct rpc_url_list *rpc,
			  const struct eth_rpc_config *base)
{
	size_t n = 0;

	if (rpc->n < 2)
		return 0;
	for (; n < rpc->n && n < HANDLE_MAX_PROVIDERS; n++) {
		struct rpc_url_list one_url = { .n = 1, .url = { rpc->url[n] } };
		struct eth_rpc_config one = *base;
		int r;

		one.list = &one_url;
		r = eth_rpc_new(&one, &h->providers[n]);
		if (r < 0)
			return r;
		h->n_providers = n + 1; /* so registry_handle_close frees those opened */
	}
	return 0;
}

int registry_handle_open(struct registry_handle **out, const struct rpc_url_list *rpc,
			 const uint8_t contract[static 20], const volatile sig_atomic_t *abort_flag)
{
	/* Short timeouts: a hung RPC must not stall the loop (the control socket, signals). */
	struct eth_rpc_config cfg = { .list = rpc,
				      .timeout_ms = 3000,
				      .retries = 1,
				      .abort_flag = abort_flag,
				      .errors = &registry_contract_errors };
	struct registry_handle *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return -ENOMEM;
	r = eth_rpc_new(&cfg, &h->rpc);
	if (r < 0) {
		free(h);
		return r;
	}
	memcpy(h->contract, contract, 20);
	r = open_providers(h, rpc, &cfg);
	if (r < 0) {
		registry_handle_close(h);
		return r;
	}
	*out = h;
	return 0;
}

void registry_handle_close(struct registry_handle *h)
{
	if (!h)
		return;
	registry_reader_free(h->reader);
	eth_rpc_free(h->rpc);
	for (size_t i = 0; i < h->n_providers; i++)
		eth_rpc_free(h->providers[i]);
	registry_records_free(h->second, h->n_second);
	free(h);
}

const char *registry_handle_primary_label(const struct registry_handle *h)
{
	return eth_rpc_current_label(h->rpc);
}

/* The first provider that is not the one the follower reads from. */
static struct eth_rpc *other_provider(const struct registry_handle *h)
{
	const char *primary = eth_rpc_current_label(h->rpc);

	for (size_t i = 0; i < h->n_providers; i++)
		if (strcmp(eth_rpc_current_label(h->providers[i]), primary))
			return h->providers[i];
	return NULL;
}

static void drop_second(struct registry_handle *h)
{
	registry_records_free(h->second, h->n_second);
	h->second = NULL;
	h->n_second = 0;
	h->have_second = false;
}

/*
 * The other provider's records at our block (number `at`, tag): patched by the records of
 * the tokens the follower read one by one since the last cross-check, when that is all
 * that changed and the copy we hold is as of the block they were read from; else getPeers()
 * in full. A change thus costs the other provider what it cost the follower's.
 */
static int read_second(struct registry_handle *h, struct eth_rpc *other, const char *tag, uint64_t at)
{
	bool named[REGISTRY_MAX_PEERS + 1] = { false };
	struct registry_record *got;
	size_t count = 0, n_got;
	uint64_t from;
	bool changed;
	int r;

	if (registry_reader_take_named(h->reader, named, &from) && h->have_second &&
	    from == h->second_block) {
		for (size_t t = 1; t <= REGISTRY_MAX_PEERS; t++)
			count += named[t];
		r = registry_read_tokens(other, h->contract, tag, named, count, &got, &n_got);
		if (r == 0) {
			r = registry_peers_patch(&h->second, &h->n_second, named, got, n_got, &changed);
			if (r < 0)
				registry_records_free(got, n_got);
			else
				free(got);
		}
		if (r <= 0) {
			h->second_block = at;
			return r;
		}
	}
	drop_second(h);
	r = registry_read_peers(other, h->contract, tag, &h->second, &h->n_second, NULL, 0, NULL);
	h->second_block = at;
	return r;
}

int registry_handle_cross_check(struct registry_handle *h)
{
	const struct eth_block *at = h->reader ? registry_reader_block(h->reader) : NULL;
	struct eth_rpc *other = other_provider(h);
	struct eth_block theirs;
	char tag[ETH_BLOCK_TAG_MAX], ours_hex[65], theirs_hex[65];
	int r;

	h->disagreement[0] = '\0';
	if (!at || !other) {
		drop_second(h);
		return 0;
	}
	/* Another provider than last time: what we hold of the last one's view is no use. */
	if (h->second_label && strcmp(h->second_label, eth_rpc_current_label(other)))
		h->have_second = false;
	h->second_label = eth_rpc_current_label(other);
	eth_block_tag(tag, at->number);
	r = eth_get_block(other, tag, &theirs);
	if (r == 0 && memcmp(theirs.hash, at->hash, 32)) {
		hex_encode(ours_hex, at->hash, 32);
		hex_encode(theirs_hex, theirs.hash, 32);
		snprintf(h->disagreement, sizeof(h->disagreement),
			 "providers disagree on block %llu: "
			 "0x%.16s... at %s, 0x%.16s... at %s",
			 (unsigned long long)at->number, ours_hex, eth_rpc_current_label(h->rpc), theirs_hex,
			 h->second_label);
	}
	if (r == 0)
		r = read_second(h, other, tag, at->number);
	if (r < 0) {
		drop_second(h);
		snprintf(h->disagreement, sizeof(h->disagreement),
			 "providers disagree: %s cannot serve "
			 "the registry at block %llu (%s)",
			 h->second_label, (unsigned long long)at->number, eth_rpc_error(other));
		return r;
	}
	h->have_second = true;
	return 0;
}

const struct registry_record *registry_handle_second_view(const struct registry_handle *h, size_t *n,
							  const char **label)
{
	*n = h->n_second;
	*label = h->second_label;
	return h->have_second ? h->second : NULL;
}

const char *registry_handle_disagreement(const struct registry_handle *h)
{
	return h->disagreement;
}

const char *registry_handle_error(const struct registry_handle *h)
{
	return h->error;
}

struct registry_handle_stats registry_handle_stats(const struct registry_handle *h)
{
	struct registry_handle_stats s = { .rpc_calls = eth_rpc_round_trips(h->rpc),
					   .providers = h->n_providers,
					   .cross_checked = h->have_second };

	if (h->reader)
		registry_reader_get_stats(h->reader, &s.follower);
	for (size_t i = 0; i <= h->n_providers; i++) {
		struct eth_rpc_stats e;

		eth_rpc_get_stats(i ? h->providers[i - 1] : h->rpc, &e);
		eth_rpc_stats_add(&s.eth, &e);
	}
	return s;
}

struct eth_rpc *registry_handle_rpc(struct registry_handle *h)
{
	return h->rpc;
}

const uint8_t *registry_handle_contract(const struct registry_handle *h)
{
	return h->contract;
}

uint64_t registry_handle_expected_chain_id(const struct registry_handle *h)
{
	return h->chain_id;
}

int registry_handle_chain_id(struct registry_handle *h, uint64_t *chain_id)
{
	int r = eth_chain_id(h->rpc, chain_id);

	return r < 0 ? fail(h, r, "eth_chainId") : 0;
}

void registry_handle_expect_chain_id(struct registry_handle *h, uint64_t chain_id)
{
	h->chain_id = chain_id;
}

int registry_handle_check_contract(struct registry_handle *h)
{
	int r = registry_check_cluster(h->rpc, h->contract);

	return r < 0 && r != -ENOTTY && r != -EPROTOTYPE ? fail(h, r, "checking the contract") : r;
}

void registry_handle_distrust(struct registry_handle *h, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	n = (size_t)snprintf(h->error, sizeof(h->error), "%s: ", eth_rpc_current_label(h->rpc));
	if (n < sizeof(h->error)) {
		va_start(ap, fmt);
		vsnprintf(h->error + n, sizeof(h->error) - n, fmt, ap);
		va_end(ap);
	}
	eth_rpc_distrust_current(h->rpc);
}

int registry_handle_kms_root(struct registry_handle *h, uint8_t kms_root[static 20])
{
	int r = registry_kms_root(h->rpc, h->contract, kms_root);

	return r < 0 ? fail(h, r, "kmsRoot()") : 0;
}

int registry_handle_token_of_instance(struct registry_handle *h, const uint8_t instance_id[static 20],
				      uint64_t *token)
{
	int r = registry_token_of_instance(h->rpc, h->contract, instance_id, token);

	return r < 0 ? fail(h, r, "tokenOfInstance()") : 0;
}

int registry_handle_nonce_of(struct registry_handle *h, const uint8_t instance_id[static 20], uint64_t *nonce)
{
	int r = registry_nonce_of(h->rpc, h->contract, instance_id, nonce);

	return r < 0 ? fail(h, r, "nonceOf()") : 0;
}

int registry_handle_poll(struct registry_handle *h, bool full, bool *changed)
{
	int r;

	*changed = false;
	if (!h->reader) {
		r = registry_reader_new(h->rpc, h->contract, h->chain_id, &h->reader);
		if (r < 0)
			return fail(h, r, "registry reader");
	}
	/*
	 * The periodic full re-read resyncs the follower: the chain id again and getPeers() at
	 * the head, whatever the logs said. The old set stays until it worked; the decision
	 * re-verifies only the records that differ from what it verified before.
	 */
	if (full)
		registry_reader_resync(h->reader, h->chain_id);
	r = registry_reader_poll(h->reader, changed);
	if (r < 0)
		return fail(h, r, full ? "reading the registry (getPeers)" : "following the registry");
	if (full)
		*changed = true;
	return 0;
}

const struct registry_record *registry_handle_peers(const struct registry_handle *h, size_t *n)
{
	*n = 0;
	return h->reader ? registry_reader_peers(h->reader, n) : NULL;
}

const struct registry_skip *registry_handle_skipped(const struct registry_handle *h, size_t *n)
{
	*n = 0;
	return h->reader ? registry_reader_skipped(h->reader, n) : NULL;
}

uint64_t registry_handle_block(const struct registry_handle *h)
{
	const struct eth_block *b = h->reader ? registry_reader_block(h->reader) : NULL;

	return b ? b->number : 0;
}

uint64_t registry_handle_token_version(const struct registry_handle *h, uint64_t token)
{
	return h->reader ? registry_reader_token_version(h->reader, token) : 0;
}

int registry_handle_leader_nonce(struct registry_handle *h, uint64_t token, uint64_t *nonce)
{
	int r = registry_leader_nonce(h->rpc, h->contract, token, nonce);

	return r < 0 ? fail(h, r, "leaderActionNonce()") : 0;
}

int registry_handle_label_of(struct registry_handle *h, uint64_t token, char *out, size_t cap)
{
	int r = registry_label_of(h->rpc, h->contract, token, out, cap);

	return r < 0 ? fail(h, r, "labelOf()") : 0;
}

int registry_handle_leader_state(struct registry_handle *h, struct registry_leader *out)
{
	int r = registry_leader_state(h->rpc, h->contract, out);

	return r < 0 ? fail(h, r, "leaderState()") : 0;
}
