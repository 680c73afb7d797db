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

#include "ops/internal.h"

/* ComposeHashAdded, -Removed, DeviceAdded, -Removed: adds at even places. */
static const enum registry_event_id list_events[4] = {
	REGISTRY_EV_COMPOSE_HASH_ADDED,
	REGISTRY_EV_COMPOSE_HASH_REMOVED,
	REGISTRY_EV_DEVICE_ADDED,
	REGISTRY_EV_DEVICE_REMOVED,
};

void ops_lists_init(struct ops_lists *l)
{
	memset(l, 0, sizeof(*l));
}

static void list_set(struct ops_hash_list *l, const uint8_t h[static 32], bool present)
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
	if (l->n == OPS_LIST_MAX) {
		l->overflow = true;
		return;
	}
	memcpy(l->h[l->n++], h, 32);
}

void ops_lists_fold(struct ops_lists *l, const struct eth_log *log)
{
	if (!log->ntopics || log->data_len < 32 || log->removed)
		return;
	for (int k = 0; k < 4; k++)
		if (!memcmp(log->topics[0], registry_event_get(list_events[k])->topic0, 32))
			list_set(k < 2 ? &l->compose : &l->devices, log->data, k % 2 == 0);
}

/* The first block with the contract's code: bisecting eth_getCode, about log2(head) calls. */
static int creation_block(struct ops *c, uint64_t head, uint64_t *block)
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
static int confirm(struct ops *c, const char *tag, const char *sig, struct ops_hash_list *l)
{
	struct ops_view v[OPS_LIST_MAX];
	size_t kept = 0, n = l->n;
	int r = 0;

	ops_views_init(v, n);
	for (size_t i = 0; i < n && r == 0; i++)
		r = ops_calldata_word(&v[i].data, sig, l->h[i]);
	if (r == 0 && n)
		r = ops_views_run(c->rpc, c->contract, tag, v, n);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (v[i].ok && v[i].out.len == 32 && v[i].out.data[31])
			memmove(l->h[kept++], l->h[i], 32);
	if (r == 0)
		l->n = kept;
	ops_views_free(v, n);
	return r;
}

int ops_read_lists(struct ops *c, uint64_t block, const char *tag, struct ops_lists *l)
{
	struct eth_log_filter f = { .to_block = block, .address = c->contract };
	struct eth_log *logs = NULL;
	size_t n = 0;
	int r;

	ops_lists_init(l);
	r = creation_block(c, block, &f.from_block);
	if (r == 0) {
		l->from_block = f.from_block;
		r = eth_get_logs(c->rpc, &f, &logs, &n);
	}
	for (size_t i = 0; r == 0 && i < n; i++)
		ops_lists_fold(l, &logs[i]);
	eth_logs_free(logs, n);
	if (r == 0)
		r = confirm(c, tag, registry_functions[REGISTRY_FN_ALLOWED_COMPOSE_HASHES], &l->compose);
	if (r == 0)
		r = confirm(c, tag, registry_functions[REGISTRY_FN_ALLOWED_DEVICE_IDS], &l->devices);
	if (r < 0)
		ops_set_error(c, "%s", eth_rpc_error(c->rpc)[0] ? eth_rpc_error(c->rpc) : errstr(r));
	return r;
}

void ops_lists_json(const struct ops_lists *l, struct buf *out)
{
	const struct ops_hash_list *ls[2] = { &l->compose, &l->devices };
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
