/* SPDX-License-Identifier: MIT */
/*
 * What a relayer accepts: a request body {"to":"0x..","data":"0x.."} as the agent sends it,
 * the subject a request is rate-limited on (the instance of a registration, the token of an
 * election call), and sliding-window rate limits kept in a bounded table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "registry/registry.h"

#define RELAY_MAX_TOKENS 16

void relayer_request_clear(struct relayer_request *r)
{
	free(r->data);
	memset(r, 0, sizeof(*r));
}

/* The subject: registerPeer's record names its instance (first member of the tuple); any
 * other call is keyed on its first argument word (the token of an election call). */
static void find_subject(struct relayer_request *r)
{
	static uint8_t register_sel[4];
	struct abi_tuple args, rec;
	const uint8_t *w;

	if (!register_sel[0] && !register_sel[1])
		abi_selector(REGISTRY_REGISTER_SIG, register_sel);
	memset(r->subject, 0, sizeof(r->subject));
	abi_tuple_init(&args, r->data + 4, r->len - 4);
	if (!memcmp(r->selector, register_sel, 4)) {
		if (abi_get_tuple(&args, 0, &rec) == 0 && abi_get_address(&rec, 0, r->subject + 12) == 0)
			r->has_subject = true;
		return;
	}
	if (abi_get_word(&args, 0, &w) == 0) {
		memcpy(r->subject, w, 32);
		r->has_subject = true;
	}
}

static int hex_field(const struct json *j, const char *key, const char **s, size_t *n)
{
	int i = json_get(j, 0, key);

	if (i < 0 || j->tok[i].type != JSON_STRING)
		return -ENOENT;
	*s = json_raw(j, i, n);
	return 0;
}

int relayer_parse_request(const char *body, size_t len, size_t max_data, struct relayer_request *out,
			  struct err_detail *why)
{
	struct json j = { 0 };
	const char *s;
	size_t n;
	int r;

	memset(out, 0, sizeof(*out));
	r = json_parse(&j, body, len, RELAY_MAX_TOKENS);
	if (r < 0 || j.tok[0].type != JSON_OBJECT) {
		err_detail_set(why, "the body is not a JSON object {\"to\":\"0x...\",\"data\":\"0x...\"}");
		r = -EINVAL;
		goto out;
	}
	r = -EINVAL;
	if (json_get(&j, 0, "value") >= 0) {
		err_detail_set(why, "a relayed call carries no value");
		goto out;
	}
	if (hex_field(&j, "to", &s, &n) < 0 || hex_decode_exact(out->to, 20, s, n) < 0) {
		err_detail_set(why, "\"to\" must be a 20-byte 0x address");
		goto out;
	}
	if (hex_field(&j, "data", &s, &n) < 0 || n < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) {
		err_detail_set(why, "\"data\" must be 0x-hex calldata");
		goto out;
	}
	r = eth_parse_data(s, n, max_data, &out->data, &out->len);
	if (r == -EMSGSIZE)
		err_detail_set(why, "\"data\" is longer than %zu bytes", max_data);
	else if (r < 0)
		err_detail_set(why, "\"data\" is not hex");
	if (r < 0) {
		r = -EINVAL;
		goto out;
	}
	if (out->len < 4) {
		err_detail_set(why, "\"data\" is shorter than a selector");
		r = -EINVAL;
		goto out;
	}
	memcpy(out->selector, out->data, 4);
	find_subject(out);
	r = 0;
out:
	if (r < 0)
		relayer_request_clear(out);
	json_clear(&j);
	return r;
}

/* ---- sliding-window rate limits ------------------------------------------------------- */

int relayer_limiter_init(struct relayer_limiter *l, size_t slots, uint32_t limit, uint64_t window_ms)
{
	memset(l, 0, sizeof(*l));
	if (!slots || !limit || !window_ms)
		return -EINVAL;
	l->slots = calloc(slots, sizeof(*l->slots));
	if (!l->slots)
		return -ENOMEM;
	l->nslots = slots;
	l->limit = limit;
	l->window_ms = window_ms;
	return 0;
}

void relayer_limiter_clear(struct relayer_limiter *l)
{
	free(l->slots);
	memset(l, 0, sizeof(*l));
}

/* Move s's window up to now: the last full window's count becomes prev. */
static void slot_advance(const struct relayer_limiter *l, struct relayer_slot *s, uint64_t now)
{
	uint64_t windows;

	if (now < s->window_start || now - s->window_start < l->window_ms)
		return;
	windows = (now - s->window_start) / l->window_ms;
	s->prev = windows == 1 ? s->count : 0;
	s->count = 0;
	s->window_start += windows * l->window_ms;
}

/* What counts against the limit at now: this window's takes, and last window's weighted by
 * the part of it the sliding window still covers. */
static uint64_t slot_weight(const struct relayer_limiter *l, const struct relayer_slot *s, uint64_t now)
{
	uint64_t into = now > s->window_start ? now - s->window_start : 0;

	/* Rounded up: a fraction of a take still counts. */
	return s->count + ((uint64_t)s->prev * (l->window_ms - into) + l->window_ms - 1) / l->window_ms;
}

/*
 * The subject's slot, or the one to reuse: a free slot, else one with nothing in the last
 * two windows, else the one whose window started longest ago. Evicting a subject forgets
 * its count, so the table is sized for the subjects two windows see; the total limit still
 * holds whatever the churn.
 */
static struct relayer_slot *slot_for(struct relayer_limiter *l, const uint8_t key[static 32],
				     uint64_t now)
{
	struct relayer_slot *oldest = &l->slots[0];

	for (size_t i = 0; i < l->nslots; i++) {
		struct relayer_slot *s = &l->slots[i];

		if (s->used && !memcmp(s->key, key, 32))
			return s;
		if (s->used)
			slot_advance(l, s, now);
		if (!s->used || !slot_weight(l, s, now)) {
			oldest = s;
			oldest->used = false;
			continue;
		}
		if (oldest->used && s->window_start < oldest->window_start)
			oldest = s;
	}
	return oldest;
}

bool relayer_limiter_take(struct relayer_limiter *l, const uint8_t key[static 32], uint64_t now)
{
	struct relayer_slot *s = slot_for(l, key, now);

	if (!s->used || memcmp(s->key, key, 32)) {
		memcpy(s->key, key, 32);
		s->used = true;
		s->window_start = now;
		s->count = 0;
		s->prev = 0;
	}
	slot_advance(l, s, now);
	if (slot_weight(l, s, now) >= l->limit)
		return false;
	s->count++;
	return true;
}
