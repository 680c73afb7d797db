/* SPDX-License-Identifier: MIT */
/*
 * Following the registry: one batched round trip per idle poll (the head, the block we
 * last read at, and the contract's logs since then); any log or a reorg of the block we
 * read at triggers a full re-read of getPeers() pinned to the new head.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "registry/registry.h"

#define READER_MAX_SKIPS 8

struct registry_reader {
	struct eth_rpc *rpc;  /* borrowed */
	uint8_t contract[20];
	uint64_t expected_chain_id;
	bool synced;           /* peers hold getPeers() as of block `at` */
	struct eth_block at;
	struct registry_record *peers;
	size_t npeers;
	struct registry_skip skips[READER_MAX_SKIPS];
	size_t nskips;
	struct registry_reader_stats stats;
};

int registry_reader_new(struct eth_rpc *rpc, const uint8_t contract[static 20],
			uint64_t expected_chain_id, struct registry_reader **out)
{
	struct registry_reader *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->rpc = rpc;
	memcpy(r->contract, contract, 20);
	r->expected_chain_id = expected_chain_id;
	*out = r;
	return 0;
}

void registry_reader_free(struct registry_reader *r)
{
	if (!r)
		return;
	registry_records_free(r->peers, r->npeers);
	free(r);
}

const struct registry_record *registry_reader_peers(const struct registry_reader *r, size_t *n)
{
	*n = r->npeers;
	return r->peers;
}

const struct eth_block *registry_reader_block(const struct registry_reader *r)
{
	return r->synced ? &r->at : NULL;
}

const struct registry_skip *registry_reader_skipped(const struct registry_reader *r, size_t *n)
{
	*n = r->nskips;
	return r->skips;
}

void registry_reader_get_stats(const struct registry_reader *r, struct registry_reader_stats *s)
{
	*s = r->stats;
}

static bool peer_equal(const struct registry_record *a, const struct registry_record *b)
{
	return a->token_id == b->token_id && a->mode == b->mode && a->nonce == b->nonce &&
	       !memcmp(a->instance_id, b->instance_id, 20) &&
	       !memcmp(a->wg_public_key, b->wg_public_key, 32) &&
	       !memcmp(a->node_pubkey, b->node_pubkey, 64) &&
	       !memcmp(a->app_pubkey, b->app_pubkey, 64) &&
	       !memcmp(a->app_signature, b->app_signature, 65) &&
	       !memcmp(a->kms_signature, b->kms_signature, 65) &&
	       !memcmp(a->node_signature, b->node_signature, 65) &&
	       !strcmp(a->endpoint, b->endpoint);
}

/* getPeers() at exactly block `head`; the peer set and `at` change only on success. */
static int full_read(struct registry_reader *r, const struct eth_block *head, bool *changed)
{
	struct registry_skip skips[READER_MAX_SKIPS];
	struct registry_record *peers;
	char tag[ETH_BLOCK_TAG_MAX];
	size_t n, nskips;
	int err;

	eth_block_tag(tag, head->number);
	err = registry_read_peers(r->rpc, r->contract, tag, &peers, &n, skips, READER_MAX_SKIPS,
				  &nskips);
	if (err < 0)
		return err;
	/* The skipped entries belong to the set they were read with: replaced together. */
	memcpy(r->skips, skips, nskips * sizeof(skips[0]));
	r->nskips = nskips;
	r->stats.full_reads++;
	*changed = !r->synced || n != r->npeers;
	for (size_t i = 0; i < n && !*changed; i++)
		*changed = !peer_equal(&peers[i], &r->peers[i]);
	registry_records_free(r->peers, r->npeers);
	r->peers = peers;
	r->npeers = n;
	r->at = *head;
	r->synced = true;
	return 0;
}

/* First contact: check we talk to the expected chain, then read everything at the head. */
static int initial_sync(struct registry_reader *r, bool *changed)
{
	struct eth_rpc_call c[2] = {
		{ .method = "eth_chainId" },
		{ .method = "eth_getBlockByNumber", .params = "[\"latest\",false]" },
	};
	struct eth_block head;
	uint64_t chain_id;
	int err;

	r->stats.polls++;
	err = eth_rpc_batch(r->rpc, c, 2);
	if (err < 0)
		goto out;
	err = -EBADMSG;
	if (c[0].error || c[0].result_type != JSON_STRING ||
	    eth_parse_quantity(c[0].result, c[0].result_len, &chain_id) < 0) {
		eth_rpc_set_error(r->rpc, "eth_chainId: no usable answer");
		goto out;
	}
	if (r->expected_chain_id && chain_id != r->expected_chain_id) {
		eth_rpc_set_error(r->rpc, "the RPC serves chain %llu, not the expected %llu",
			      (unsigned long long)chain_id, (unsigned long long)r->expected_chain_id);
		err = -EXDEV;
		goto out;
	}
	if (c[1].error || c[1].result_type != JSON_OBJECT ||
	    eth_parse_block(c[1].result, c[1].result_len, &head) < 0) {
		eth_rpc_set_error(r->rpc, "eth_getBlockByNumber latest: no usable block");
		goto out;
	}
	err = full_read(r, &head, changed);
out:
	eth_rpc_call_clear(&c[0]);
	eth_rpc_call_clear(&c[1]);
	return err;
}

/* Whether the logs reply shows a change after the block we read at (or cannot tell). */
static bool logs_show_change(const struct registry_reader *r, const struct eth_rpc_call *c)
{
	struct eth_log *logs = NULL;
	size_t n = 0;
	bool change = false;

	/* A failed or malformed logs query proves nothing: re-read to be safe. */
	if (c->error || c->result_type != JSON_ARRAY ||
	    eth_parse_logs(c->result, c->result_len, &logs, &n) < 0) {
		eth_logs_free(logs, n);
		return true;
	}
	for (size_t i = 0; i < n && !change; i++)
		change = logs[i].block_number > r->at.number || logs[i].removed;
	eth_logs_free(logs, n);
	return change;
}

int registry_reader_poll(struct registry_reader *r, bool *changed)
{
	char at_tag[ETH_BLOCK_TAG_MAX], block_params[64], logs_params[160], addr[41];
	struct eth_rpc_call c[3] = {
		{ .method = "eth_getBlockByNumber", .params = "[\"latest\",false]" },
		{ .method = "eth_getBlockByNumber", .params = block_params },
		{ .method = "eth_getLogs", .params = logs_params },
	};
	struct eth_block head, then;
	bool reorg, need_read;
	int err;

	*changed = false;
	if (!r->synced)
		return initial_sync(r, changed);
	r->stats.polls++;
	eth_block_tag(at_tag, r->at.number);
	hex_encode(addr, r->contract, 20);
	snprintf(block_params, sizeof(block_params), "[\"%s\",false]", at_tag);
	snprintf(logs_params, sizeof(logs_params),
		 "[{\"fromBlock\":\"%s\",\"toBlock\":\"latest\",\"address\":\"0x%s\"}]", at_tag, addr);
	err = eth_rpc_batch(r->rpc, c, 3);
	if (err == -E2BIG || err == -EMSGSIZE) {
		/* Too many logs to take in: something happened, so read it all at the head. */
		err = eth_get_block(r->rpc, "latest", &head);
		if (err == 0)
			err = full_read(r, &head, changed);
		goto out;
	}
	if (err < 0)
		goto out;
	if (c[0].error || c[0].result_type != JSON_OBJECT ||
	    eth_parse_block(c[0].result, c[0].result_len, &head) < 0) {
		eth_rpc_set_error(r->rpc, "eth_getBlockByNumber latest: no usable block");
		err = -EBADMSG;
		goto out;
	}
	if (!memcmp(head.hash, r->at.hash, 32))
		goto out;  /* no new block: idle */
	/* The block we read at must still be on the chain, or what we read may be gone. */
	reorg = head.number < r->at.number || c[1].error || c[1].result_type != JSON_OBJECT ||
		eth_parse_block(c[1].result, c[1].result_len, &then) < 0 ||
		memcmp(then.hash, r->at.hash, 32);
	need_read = reorg || head.number - r->at.number > eth_rpc_max_log_range(r->rpc) ||
		    logs_show_change(r, &c[2]);
	if (reorg)
		r->stats.reorgs++;
	if (need_read)
		err = full_read(r, &head, changed);
	else
		r->at = head;
out:
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		eth_rpc_call_clear(&c[i]);
	return err;
}
