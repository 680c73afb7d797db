/* SPDX-License-Identifier: MIT */
/*
 * The allowed compose hashes and devices of a cluster. The contract keeps them as mappings,
 * which cannot be listed: the lists are folded from its ComposeHashAdded/Removed and DeviceAdded/Removed events, and
 * `status` then asks allowedComposeHashes / allowedDeviceIds of each at its one block, so
 * what it prints is what the contract answers there.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cluster-cmd.h"

void cluster_lists_init(struct cluster_lists *l)
{
	memset(l, 0, sizeof(*l));
	abi_event_topic("ComposeHashAdded(bytes32)", l->topic[0]);
	abi_event_topic("ComposeHashRemoved(bytes32)", l->topic[1]);
	abi_event_topic("DeviceAdded(bytes32)", l->topic[2]);
	abi_event_topic("DeviceRemoved(bytes32)", l->topic[3]);
}

static void list_set(struct cluster_hash_list *l, const uint8_t h[static 32], bool present)
{
	for (size_t i = 0; i < l->n; i++) {
		if (memcmp(l->h[i], h, 32))
			continue;
		if (!present) {
			memmove(l->h[i], l->h[i + 1], (l->n - i - 1) * 32);
			l->n--;
		}
		return;
	}
	if (!present)
		return;
	if (l->n == CLUSTER_LIST_MAX) {
		l->overflow = true;
		return;
	}
	memcpy(l->h[l->n++], h, 32);
}

void cluster_lists_fold(struct cluster_lists *l, const struct eth_log *log)
{
	if (!log->ntopics || log->data_len < 32 || log->removed)
		return;
	for (int k = 0; k < 4; k++)
		if (!memcmp(log->topics[0], l->topic[k], 32))
			list_set(k < 2 ? &l->compose : &l->devices, log->data, k % 2 == 0);
}

/* The first block with the contract's code: bisecting eth_getCode, about log2(head) calls. */
static int creation_block(struct cluster_ctx *c, uint64_t head, uint64_t *block)
{
	uint64_t lo = 0, hi = head;
	char tag[ETH_BLOCK_TAG_MAX];
	size_t size;
	int r;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		eth_block_tag(tag, mid);
		if ((r = eth_get_code_size(c->rpc, c->contract, tag, &size)) < 0)
			return r;
		if (size)
			hi = mid;
		else
			lo = mid + 1;
	}
	*block = lo;
	return 0;
}

/* Keep only the entries whose getter answers true at tag (one batch per list). */
static int confirm(struct cluster_ctx *c, const char *tag, const char *sig,
		   struct cluster_hash_list *l)
{
	struct cluster_view v[CLUSTER_LIST_MAX];
	size_t kept = 0, n = l->n;
	int r = 0;

	cluster_views_init(v, n);
	for (size_t i = 0; i < n && r == 0; i++)
		r = cluster_calldata_word(&v[i].data, sig, l->h[i]);
	if (r == 0 && n)
		r = cluster_views_run(c->rpc, c->contract, tag, v, n);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (v[i].ok && v[i].out.len == 32 && v[i].out.data[31])
			memmove(l->h[kept++], l->h[i], 32);
	if (r == 0)
		l->n = kept;
	cluster_views_free(v, n);
	return r;
}

int cluster_read_lists(struct cluster_ctx *c, uint64_t block, const char *tag,
		       struct cluster_lists *l)
{
	struct eth_log_filter f = { .to_block = block, .address = c->contract };
	struct eth_log *logs = NULL;
	size_t n = 0;
	int r;

	cluster_lists_init(l);
	r = creation_block(c, block, &f.from_block);
	if (r < 0)
		return r;
	l->from_block = f.from_block;
	r = eth_get_logs(c->rpc, &f, &logs, &n);
	for (size_t i = 0; r == 0 && i < n; i++)
		cluster_lists_fold(l, &logs[i]);
	eth_logs_free(logs, n);
	if (r == 0)
		r = confirm(c, tag, "allowedComposeHashes(bytes32)", &l->compose);
	if (r == 0)
		r = confirm(c, tag, "allowedDeviceIds(bytes32)", &l->devices);
	return r;
}

void cluster_lists_json(const struct cluster_lists *l, struct buf *out)
{
	const struct cluster_hash_list *ls[2] = { &l->compose, &l->devices };
	static const char *const keys[2] = { "composeHashes", "devices" };
	char hex[65];

	for (int k = 0; k < 2; k++) {
		buf_printf(out, "%s\"%s\":[", k ? "," : "", keys[k]);
		for (size_t i = 0; i < ls[k]->n; i++) {
			hex_encode(hex, ls[k]->h[i], 32);
			buf_printf(out, "%s\"0x%s\"", i ? "," : "", hex);
		}
		buf_printf(out, "],\"%sComplete\":%s", keys[k], ls[k]->overflow ? "false" : "true");
	}
}
