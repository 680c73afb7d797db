/* SPDX-License-Identifier: MIT */
/*
 * Following a cluster's events for a live view (the dashboard): the blocks not read yet,
 * in bounded ranges and at most every OPS_FOLLOW_GAP_MS whoever asks; the recent events
 * kept by name as JSON, the allowed lists folded from them. And the contract's interface
 * as the page needs it: the selectors of its actions and every error by name.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ops/internal.h"

#define LOG_RANGE 5000        /* blocks per eth_getLogs */
#define LOG_RANGES_PER_POLL 4 /* a long backlog is read over several polls */

void ops_follow_init(struct ops_follow *f, uint64_t from_block)
{
	memset(f, 0, sizeof(*f));
	f->next_block = from_block;
	for (size_t i = 0; i < OPS_RECENT_EVENTS; i++)
		buf_init(&f->recent[i].json, 8192);
	ops_lists_init(&f->lists);
}

void ops_follow_clear(struct ops_follow *f)
{
	for (size_t i = 0; i < OPS_RECENT_EVENTS; i++)
		buf_clear(&f->recent[i].json);
}

/* Keep one event as {"id":..,"block":..,"tx":..,"log":{"event":..,"args":{..}}}. */
static int keep_event(struct ops_follow *f, const struct eth_log *l)
{
	struct ops_event *e = &f->recent[++f->seq % OPS_RECENT_EVENTS];
	char hash[65];

	buf_clear(&e->json);
	buf_init(&e->json, 8192);
	e->id = f->seq;
	hex_encode(hash, l->tx_hash, 32);
	buf_printf(&e->json, "{\"id\":%" PRIu64 ",\"block\":%" PRIu64 ",\"tx\":\"0x%s\",\"log\":", e->id,
		   l->block_number, hash);
	ops_describe_log(l, true, &e->json);
	return buf_printf(&e->json, "}");
}

int ops_follow_poll(struct ops *o, struct ops_follow *f)
{
	uint64_t head, now = now_ms();
	int r;

	if (f->polled_at && now - f->polled_at < OPS_FOLLOW_GAP_MS)
		return 0;
	f->polled_at = now;
	r = eth_block_number(o->rpc, &head);
	for (int k = 0; r == 0 && k < LOG_RANGES_PER_POLL && head >= f->next_block; k++) {
		struct eth_log_filter q = { .from_block = f->next_block, .address = o->contract };
		struct eth_log *logs = NULL;
		size_t n = 0;

		q.to_block = head - f->next_block >= LOG_RANGE ? f->next_block + LOG_RANGE - 1 : head;
		r = eth_get_logs(o->rpc, &q, &logs, &n);
		for (size_t i = 0; r == 0 && i < n; i++) {
			if (logs[i].removed)
				continue;
			ops_lists_fold(&f->lists, &logs[i]);
			r = keep_event(f, &logs[i]);
		}
		eth_logs_free(logs, n);
		if (r == 0)
			f->next_block = q.to_block + 1;
	}
	if (r < 0)
		snprintf(f->last_error, sizeof(f->last_error), "%s", eth_rpc_error(o->rpc));
	else
		f->last_error[0] = '\0';
	return r;
}

const struct ops_event *ops_follow_event(const struct ops_follow *f, uint64_t id)
{
	const struct ops_event *e = &f->recent[id % OPS_RECENT_EVENTS];

	return id && id <= f->seq && e->id == id ? e : NULL;
}

uint64_t ops_follow_first(const struct ops_follow *f)
{
	return f->seq > OPS_RECENT_EVENTS ? f->seq - OPS_RECENT_EVENTS + 1 : 1;
}

int ops_abi_json(struct buf *out)
{
	static const char *const actions[] = {
		"mint",           "bind",          "unbind",          "burn",
		"set-config",     "set-minting",   "set-boot-policy", "set-tcb-policy",
		"set-any-device", "allow-compose", "remove-compose",  "allow-device",
		"remove-device",  "set-lease",
	};
	uint8_t sel[4];
	char hex[9];

	buf_printf(out, "{\"functions\":{");
	for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
		const char *sig = ops_action_signature(actions[i]);

		if (!sig)
			continue;
		abi_selector(sig, sel);
		hex_encode(hex, sel, 4);
		buf_printf(out, "%s\"%s\":{\"signature\":\"%s\",\"selector\":\"0x%s\"}", i ? "," : "",
			   actions[i], sig, hex);
	}
	buf_printf(out, "},\"errors\":{");
	for (size_t i = 0; i < REGISTRY_ERROR_COUNT; i++) {
		const char *fields = "", *hint = "", *sig = registry_error_sigs[i];
		char name[64];

		snprintf(name, sizeof(name), "%.*s", (int)strcspn(sig, "("), sig);
		registry_error_doc(name, &fields, &hint);
		abi_selector(sig, sel);
		hex_encode(hex, sel, 4);
		buf_printf(out, "%s\"0x%s\":{\"signature\":\"%s\",\"fields\":\"%s\",\"hint\":", i ? "," : "",
			   hex, sig, fields);
		json_append_string(out, hint);
		buf_printf(out, "}");
	}
	return buf_printf(out, "}}");
}
