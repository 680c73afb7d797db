/* SPDX-License-Identifier: MIT */
/*
 * A cluster's status read at one block: every token (label, holder, bound instance, its
 * record and whether that record verifies as the agent checks it), the policies, the
 * leader, the balance, the allowed lists; for `cluster status` and the dashboard.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"

static const enum registry_fn global_fns[OPS_G_COUNT] = {
	REGISTRY_FN_OWNER,
	REGISTRY_FN_PENDING_OWNER,
	REGISTRY_FN_KMS_ROOT,
	REGISTRY_FN_MAX_NODES,
	REGISTRY_FN_NETWORK_MODES,
	REGISTRY_FN_BOOT_POLICY,
	REGISTRY_FN_PUBLIC_MINTING,
	REGISTRY_FN_MINT_PRICE,
	REGISTRY_FN_ALLOW_ANY_DEVICE,
	REGISTRY_FN_REQUIRE_TCB_UP_TO_DATE,
	REGISTRY_FN_TOTAL_SUPPLY,
	REGISTRY_FN_PEER_COUNT,
	REGISTRY_FN_LIVE_TOKEN_BITMAP,
	REGISTRY_FN_CURRENT_LEADER_TOKEN_ID,
	REGISTRY_FN_CURRENT_LEADER,
	REGISTRY_FN_LEADER_TERM,
	REGISTRY_FN_LEADERSHIP_EXPIRY,
	REGISTRY_FN_LEADER_LEASE,
	REGISTRY_FN_NO_CONFIDENCE_VOTES,
	REGISTRY_FN_REQUIRED_VOTES,
};

enum token_view { T_OWNER, T_LABEL, T_INSTANCE, T_VOTE, T_VIEWS };

uint64_t ops_word_u64(const uint8_t w[static 32])
{
	uint64_t v = 0;

	for (int i = 24; i < 32; i++)
		v = (v << 8) | w[i];
	return v;
}

static void word_of_u64(uint8_t w[static 32], uint64_t v)
{
	memset(w, 0, 32);
	for (int i = 0; i < 8; i++)
		w[31 - i] = (uint8_t)(v >> (8 * i));
}

static int read_globals(struct ops *c, struct ops_status *s)
{
	struct ops_view v[OPS_G_COUNT];
	int r = 0;

	ops_views_init(v, OPS_G_COUNT);
	for (int i = 0; i < OPS_G_COUNT && r == 0; i++)
		r = ops_calldata_word(&v[i].data, registry_functions[global_fns[i]], NULL);
	if (r == 0)
		r = ops_views_run(c->rpc, c->contract, s->tag, v, OPS_G_COUNT);
	for (int i = 0; r == 0 && i < OPS_G_COUNT; i++) {
		s->have[i] = v[i].ok && v[i].out.len >= 32;
		if (s->have[i])
			memcpy(s->g[i], v[i].out.data, 32);
	}
	ops_views_free(v, OPS_G_COUNT);
	if (r == 0 && !s->have[OPS_G_KMS_ROOT]) {
		char hex[41];

		hex_encode(hex, c->contract, 20);
		ops_set_error(c,
			      "0x%s answers no kmsRoot(): not a cluster contract (or not deployed at "
			      "this block)",
			      hex);
		return -ENOENT;
	}
	return r;
}

/* The live token ids, from bit t of liveTokenBitmap. */
static int list_tokens(struct ops_status *s)
{
	const uint8_t *bm = s->g[OPS_G_LIVE_BITMAP];

	s->rows = calloc(REGISTRY_MAX_PEERS, sizeof(*s->rows));
	if (!s->rows)
		return -ENOMEM;
	for (uint64_t t = 1; t <= REGISTRY_MAX_PEERS; t++)
		if (bm[31 - t / 8] >> (t % 8) & 1)
			s->rows[s->nrows++].id = t;
	return 0;
}

static void row_from_views(struct ops_token_row *row, struct ops_view *v)
{
	struct abi_tuple t;
	const uint8_t *p;
	size_t n;

	if (v[T_OWNER].ok && v[T_OWNER].out.len == 32)
		memcpy(row->holder, v[T_OWNER].out.data + 12, 20);
	abi_tuple_init(&t, v[T_LABEL].out.data, v[T_LABEL].out.len);
	if (v[T_LABEL].ok && abi_get_bytes(&t, 0, &p, &n) == 0) {
		n = n < sizeof(row->label) - 1 ? n : sizeof(row->label) - 1;
		for (size_t i = 0; i < n; i++)
			row->label[i] =
				p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\' ? (char)p[i] : '?';
	}
	if (v[T_INSTANCE].ok && v[T_INSTANCE].out.len == 32) {
		memcpy(row->instance, v[T_INSTANCE].out.data + 12, 20);
		row->bound = memcmp(row->instance, (const uint8_t[20]){ 0 }, 20) != 0;
	}
	abi_tuple_init(&t, v[T_VOTE].out.data, v[T_VOTE].out.len);
	if (v[T_VOTE].ok) {
		abi_get_uint64(&t, 0, &row->vote_term);
		abi_get_uint64(&t, 1, &row->vote_target);
	}
}

/* ownerOf, labelOf, instanceOfToken and voteOf of every token in one batch; then nonceOf of
 * every bound instance (it needs the instance) in a second. */
static int read_tokens(struct ops *c, struct ops_status *s)
{
	static const enum registry_fn fns[T_VIEWS] = { REGISTRY_FN_OWNER_OF, REGISTRY_FN_LABEL_OF,
						       REGISTRY_FN_INSTANCE_OF_TOKEN, REGISTRY_FN_VOTE_OF };
	size_t n = s->nrows * T_VIEWS;
	struct ops_view *v = calloc(n + s->nrows + 1, sizeof(*v)), *nv = v + n;
	int r = 0;

	if (!v)
		return -ENOMEM;
	ops_views_init(v, n + s->nrows);
	for (size_t i = 0; i < s->nrows && r == 0; i++) {
		uint8_t w[32];

		word_of_u64(w, s->rows[i].id);
		for (int k = 0; k < T_VIEWS && r == 0; k++)
			r = ops_calldata_word(&v[i * T_VIEWS + k].data, registry_functions[fns[k]], w);
	}
	if (r == 0)
		r = ops_views_run(c->rpc, c->contract, s->tag, v, n);
	for (size_t i = 0; i < s->nrows && r == 0; i++) {
		uint8_t w[32] = { 0 };

		row_from_views(&s->rows[i], &v[i * T_VIEWS]);
		memcpy(w + 12, s->rows[i].instance, 20);
		r = ops_calldata_word(&nv[i].data, registry_functions[REGISTRY_FN_NONCE_OF], w);
	}
	if (r == 0)
		r = ops_views_run(c->rpc, c->contract, s->tag, nv, s->nrows);
	for (size_t i = 0; i < s->nrows && r == 0; i++)
		if (s->rows[i].bound && nv[i].ok && nv[i].out.len == 32)
			s->rows[i].stored_nonce = ops_word_u64(nv[i].out.data);
	ops_views_free(v, n + s->nrows);
	free(v);
	return r;
}

static void match_peers(struct ops *c, struct ops_status *s)
{
	const uint8_t *root = s->g[OPS_G_KMS_ROOT] + 12;

	for (size_t i = 0; i < s->nrows; i++) {
		for (size_t k = 0; k < s->npeers; k++) {
			if (s->peers[k].token_id != s->rows[i].id)
				continue;
			s->rows[i].peer = &s->peers[k];
			s->rows[i].verdict =
				registry_record_verify(&s->peers[k], c->chain_id, c->contract, root);
		}
	}
}

int ops_status_read(struct ops *c, struct ops_status *s, struct registry_skip *skips, size_t max_skips,
		    size_t *nskips)
{
	int r;

	memset(s, 0, sizeof(*s));
	*nskips = 0;
	if ((r = eth_get_block(c->rpc, "latest", &s->block)) == 0) {
		eth_block_tag(s->tag, s->block.number);
		if ((r = read_globals(c, s)) == 0 && (r = list_tokens(s)) == 0 &&
		    (r = read_tokens(c, s)) == 0)
			r = eth_get_balance(c->rpc, c->contract, s->balance);
	}
	if (r < 0) {
		if (r != -ENOENT)
			ops_set_error(c, "%s", eth_rpc_error(c->rpc)[0] ? eth_rpc_error(c->rpc) : errstr(r));
		return r;
	}
	r = registry_read_peers(c->rpc, c->contract, s->tag, &s->peers, &s->npeers, skips, max_skips, nskips);
	if (r == 0)
		match_peers(c, s);
	if (r < 0 && r != -ENOENT)
		ops_set_error(c, "%s", eth_rpc_error(c->rpc)[0] ? eth_rpc_error(c->rpc) : errstr(r));
	return r;
}

void ops_status_clear(struct ops_status *s)
{
	free(s->lists);
	free(s->rows);
	registry_records_free(s->peers, s->npeers);
	memset(s, 0, sizeof(*s));
}

int ops_status_read_lists(struct ops *c, struct ops_status *s)
{
	int r;

	s->lists = malloc(sizeof(*s->lists));
	if (!s->lists)
		return -ENOMEM;
	r = ops_read_lists(c, s->block.number, s->tag, s->lists);
	if (r < 0) {
		free(s->lists);
		s->lists = NULL;
		s->lists_failed = r != -ENOMEM;
	}
	return r;
}
