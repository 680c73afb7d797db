/* SPDX-License-Identifier: MIT */
/*
 * dstack-p2p cluster status: every token (label, holder, bound instance, its record and
 * whether that record verifies as the agent checks it), the policies, the leader and the
 * balance, all read at one block; --watch then follows the contract's events by name.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/attest.h"
#include "cli/args.h"
#include "cli/cluster-cmd.h"
#include "mesh/mesh.h"
#include "registry/registry.h"

enum global {
	G_OWNER, G_PENDING_OWNER, G_KMS_ROOT, G_MAX_NODES, G_MODES, G_BOOT, G_PUBLIC_MINTING,
	G_MINT_PRICE, G_ANY_DEVICE, G_TCB, G_SUPPLY, G_PEER_COUNT, G_LIVE_BITMAP, G_LEADER_TOKEN,
	G_LEADER, G_TERM, G_EXPIRY, G_LEASE, G_VOTES, G_REQUIRED, G_COUNT
};

static const char *const global_sigs[G_COUNT] = {
	"owner()", "pendingOwner()", "kmsRoot()", "maxNodes()", "networkModes()", "bootPolicy()",
	"publicMinting()", "mintPrice()", "allowAnyDevice()", "requireTcbUpToDate()",
	"totalSupply()", "peerCount()", "liveTokenBitmap()", "currentLeaderTokenId()",
	"currentLeader()", "leaderTerm()", "leadershipExpiry()", "leaderLease()",
	"noConfidenceVotes()", "requiredVotes()",
};

enum token_view { T_OWNER, T_LABEL, T_INSTANCE, T_VOTE, T_VIEWS };

struct token_row {
	uint64_t id;
	uint8_t holder[20];
	char label[80];
	bool bound;
	uint8_t instance[20];
	uint64_t stored_nonce;
	uint64_t vote_term, vote_target;
	const struct registry_record *peer;   /* NULL: no record */
	enum attest_verdict verdict;
};

struct snapshot {
	struct eth_block block;
	char tag[ETH_BLOCK_TAG_MAX];
	uint8_t g[G_COUNT][32];
	bool have[G_COUNT];
	uint8_t balance[32];
	struct token_row *rows;
	size_t nrows;
	struct registry_record *peers;
	size_t npeers;
	struct cluster_lists *lists;          /* NULL: not read (the dashboard's document) */
	bool lists_failed;                    /* status asked, the RPC could not say */
};

static uint64_t word_u64(const uint8_t w[static 32])
{
	uint64_t v = 0;

	for (int i = 24; i < 32; i++)
		v = (v << 8) | w[i];
	return v;
}

static bool is_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (p[n])
			return false;
	return true;
}

static void word_of_u64(uint8_t w[static 32], uint64_t v)
{
	memset(w, 0, 32);
	for (int i = 0; i < 8; i++)
		w[31 - i] = (uint8_t)(v >> (8 * i));
}

static int read_globals(struct cluster_ctx *c, struct snapshot *s)
{
	struct cluster_view v[G_COUNT];
	int r = 0;

	cluster_views_init(v, G_COUNT);
	for (int i = 0; i < G_COUNT && r == 0; i++)
		r = cluster_calldata_word(&v[i].data, global_sigs[i], NULL);
	if (r == 0)
		r = cluster_views_run(c->rpc, c->contract, s->tag, v, G_COUNT);
	for (int i = 0; r == 0 && i < G_COUNT; i++) {
		s->have[i] = v[i].ok && v[i].out.len >= 32;
		if (s->have[i])
			memcpy(s->g[i], v[i].out.data, 32);
	}
	cluster_views_free(v, G_COUNT);
	if (r == 0 && !s->have[G_KMS_ROOT]) {
		cli_error("%s answers no kmsRoot(): not a cluster contract (or not deployed at this "
			  "block)", c->o->contract_hex);
		return -ENOENT;
	}
	return r;
}

/* The live token ids, from bit t of liveTokenBitmap. */
static int list_tokens(struct snapshot *s)
{
	const uint8_t *bm = s->g[G_LIVE_BITMAP];

	s->rows = calloc(REGISTRY_MAX_PEERS, sizeof(*s->rows));
	if (!s->rows)
		return -ENOMEM;
	for (uint64_t t = 1; t <= REGISTRY_MAX_PEERS; t++)
		if (bm[31 - t / 8] >> (t % 8) & 1)
			s->rows[s->nrows++].id = t;
	return 0;
}

static void row_from_views(struct token_row *row, struct cluster_view *v)
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
			row->label[i] = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\'
				? (char)p[i] : '?';
	}
	if (v[T_INSTANCE].ok && v[T_INSTANCE].out.len == 32) {
		memcpy(row->instance, v[T_INSTANCE].out.data + 12, 20);
		row->bound = !is_zero(row->instance, 20);
	}
	abi_tuple_init(&t, v[T_VOTE].out.data, v[T_VOTE].out.len);
	if (v[T_VOTE].ok) {
		abi_get_uint64(&t, 0, &row->vote_term);
		abi_get_uint64(&t, 1, &row->vote_target);
	}
}

/* ownerOf, labelOf, instanceOfToken and voteOf of every token in one batch; then nonceOf of
 * every bound instance (it needs the instance) in a second. */
static int read_tokens(struct cluster_ctx *c, struct snapshot *s)
{
	static const char *const sigs[T_VIEWS] = { "ownerOf(uint256)", "labelOf(uint256)",
						   "instanceOfToken(uint256)", "voteOf(uint256)" };
	size_t n = s->nrows * T_VIEWS;
	struct cluster_view *v = calloc(n + s->nrows + 1, sizeof(*v)), *nv = v + n;
	int r = 0;

	if (!v)
		return -ENOMEM;
	cluster_views_init(v, n + s->nrows);
	for (size_t i = 0; i < s->nrows && r == 0; i++) {
		uint8_t w[32];

		word_of_u64(w, s->rows[i].id);
		for (int k = 0; k < T_VIEWS && r == 0; k++)
			r = cluster_calldata_word(&v[i * T_VIEWS + k].data, sigs[k], w);
	}
	if (r == 0)
		r = cluster_views_run(c->rpc, c->contract, s->tag, v, n);
	for (size_t i = 0; i < s->nrows && r == 0; i++) {
		uint8_t w[32] = { 0 };

		row_from_views(&s->rows[i], &v[i * T_VIEWS]);
		memcpy(w + 12, s->rows[i].instance, 20);
		r = cluster_calldata_word(&nv[i].data, "nonceOf(address)", w);
	}
	if (r == 0)
		r = cluster_views_run(c->rpc, c->contract, s->tag, nv, s->nrows);
	for (size_t i = 0; i < s->nrows && r == 0; i++)
		if (s->rows[i].bound && nv[i].ok && nv[i].out.len == 32)
			s->rows[i].stored_nonce = word_u64(nv[i].out.data);
	cluster_views_free(v, n + s->nrows);
	free(v);
	return r;
}

static void match_peers(struct cluster_ctx *c, struct snapshot *s)
{
	const uint8_t *root = s->g[G_KMS_ROOT] + 12;

	for (size_t i = 0; i < s->nrows; i++) {
		for (size_t k = 0; k < s->npeers; k++) {
			if (s->peers[k].token_id != s->rows[i].id)
				continue;
			s->rows[i].peer = &s->peers[k];
			s->rows[i].verdict = registry_record_verify(&s->peers[k], c->chain_id, c->contract,
								  root);
		}
	}
}

static int take_snapshot(struct cluster_ctx *c, struct snapshot *s)
{
	struct registry_skip skips[4];
	size_t nskips = 0;
	int r;

	memset(s, 0, sizeof(*s));
	if ((r = eth_get_block(c->rpc, "latest", &s->block)) < 0)
		return r;
	eth_block_tag(s->tag, s->block.number);
	if ((r = read_globals(c, s)) < 0 || (r = list_tokens(s)) < 0 || (r = read_tokens(c, s)) < 0 ||
	    (r = eth_get_balance(c->rpc, c->contract, s->balance)) < 0)
		return r;
	r = registry_read_peers(c->rpc, c->contract, s->tag, &s->peers, &s->npeers, skips,
				ARRAY_SIZE(skips), &nskips);
	for (size_t i = 0; r == 0 && i < nskips; i++)
		cli_error("getPeers() entry %zu left out: %s", skips[i].index, skips[i].reason);
	if (r == 0)
		match_peers(c, s);
	return r;
}

static void snapshot_free(struct snapshot *s)
{
	free(s->lists);
	free(s->rows);
	registry_records_free(s->peers, s->npeers);
}

/* ---- output ----------------------------------------------------------------------------- */

static void put_addr(struct buf *b, const uint8_t *a, bool json)
{
	char hex[41];

	hex_encode(hex, a, 20);
	buf_printf(b, json ? "\"0x%s\"" : "0x%s", hex);
}

static const char *mode_name(uint64_t modes)
{
	static const char *const names[] = { "none", "tls", "wireguard", "tls+wireguard" };

	return modes < 4 ? names[modes] : "?";
}

static void put_global_json(struct buf *b, const struct snapshot *s, const char *key, enum global g,
			    char kind)
{
	char dec[ETH_U256_DEC_MAX];

	buf_printf(b, ",\"%s\":", key);
	if (!s->have[g]) {
		buf_printf(b, "null");
	} else if (kind == 'a') {
		put_addr(b, s->g[g] + 12, true);
	} else if (kind == 'b') {
		buf_printf(b, "%s", s->g[g][31] ? "true" : "false");
	} else if (kind == 'w') {
		eth_u256_to_dec(s->g[g], dec);
		buf_printf(b, "\"%s\"", dec);
	} else {
		buf_printf(b, "%" PRIu64, word_u64(s->g[g]));
	}
}

static void put_row_json(struct buf *b, const struct token_row *row)
{
	buf_printf(b, "{\"tokenId\":%" PRIu64 ",\"label\":\"%s\",\"holder\":", row->id, row->label);
	put_addr(b, row->holder, true);
	buf_printf(b, ",\"instanceId\":");
	if (row->bound)
		put_addr(b, row->instance, true);
	else
		buf_printf(b, "null");
	buf_printf(b, ",\"storedNonce\":%" PRIu64 ",\"registered\":%s", row->stored_nonce,
		   row->peer ? "true" : "false");
	if (row->peer) {
		buf_printf(b, ",\"endpoint\":");
		json_append_string(b, row->peer->endpoint);
		buf_printf(b, ",\"mode\":\"%s\",\"nonce\":%" PRIu64 ",\"verification\":\"%s\"",
			   row->peer->mode == REGISTRY_MODE_WIREGUARD ? "wireguard" : "tls",
			   row->peer->nonce, attest_verdict_str(row->verdict));
	}
	buf_printf(b, ",\"vote\":");
	if (row->vote_term)
		buf_printf(b, "{\"term\":%" PRIu64 ",\"target\":%" PRIu64 "}", row->vote_term,
			   row->vote_target);
	else
		buf_printf(b, "null");
	buf_printf(b, "}");
}

/* The leader's label and overlay address (10.0.1.t), null without a leader. */
static void put_leader_names(const struct snapshot *s, struct buf *b)
{
	uint64_t leader = word_u64(s->g[G_LEADER_TOKEN]);
	const char *label = NULL;
	char addr[16];

	if (!leader || leader > REGISTRY_MAX_PEERS) {
		buf_printf(b, ",\"label\":null,\"overlayAddress\":null");
		return;
	}
	for (size_t i = 0; i < s->nrows; i++)
		if (s->rows[i].id == leader)
			label = s->rows[i].label;  /* printable, no quote or backslash (row_from_views) */
	buf_printf(b, label ? ",\"label\":\"%s\"" : ",\"label\":null", label);
	mesh_overlay_addr_str((uint32_t)leader, addr);
	buf_printf(b, ",\"overlayAddress\":\"%s\"", addr);
}

static void status_json(struct cluster_ctx *c, const struct snapshot *s, struct buf *b)
{
	char dec[ETH_U256_DEC_MAX];

	buf_printf(b, "{\"contract\":");
	put_addr(b, c->contract, true);
	buf_printf(b, ",\"chainId\":%" PRIu64 ",\"block\":%" PRIu64 ",\"timestamp\":%" PRIu64,
		   c->chain_id, s->block.number, s->block.timestamp);
	put_global_json(b, s, "owner", G_OWNER, 'a');
	put_global_json(b, s, "pendingOwner", G_PENDING_OWNER, 'a');
	put_global_json(b, s, "kmsRoot", G_KMS_ROOT, 'a');
	buf_printf(b, ",\"policy\":{\"bootPolicy\":\"%s\"",
		   !s->have[G_BOOT] ? "?" : s->g[G_BOOT][31] ? "permissive" : "strict");
	put_global_json(b, s, "requireTcbUpToDate", G_TCB, 'b');
	put_global_json(b, s, "allowAnyDevice", G_ANY_DEVICE, 'b');
	put_global_json(b, s, "networkModes", G_MODES, 'u');
	put_global_json(b, s, "maxNodes", G_MAX_NODES, 'u');
	put_global_json(b, s, "publicMinting", G_PUBLIC_MINTING, 'b');
	put_global_json(b, s, "mintPrice", G_MINT_PRICE, 'w');
	buf_printf(b, "},\"leader\":{\"tokenId\"");
	buf_printf(b, ":%" PRIu64, word_u64(s->g[G_LEADER_TOKEN]));
	put_leader_names(s, b);
	put_global_json(b, s, "instanceId", G_LEADER, 'a');
	put_global_json(b, s, "term", G_TERM, 'u');
	put_global_json(b, s, "expiry", G_EXPIRY, 'u');
	put_global_json(b, s, "lease", G_LEASE, 'u');
	put_global_json(b, s, "votes", G_VOTES, 'u');
	put_global_json(b, s, "requiredVotes", G_REQUIRED, 'u');
	buf_printf(b, "}");
	put_global_json(b, s, "totalSupply", G_SUPPLY, 'u');
	put_global_json(b, s, "peerCount", G_PEER_COUNT, 'u');
	eth_u256_to_dec(s->balance, dec);
	buf_printf(b, ",\"balance\":\"%s\",\"tokens\":[", dec);
	for (size_t i = 0; i < s->nrows; i++) {
		if (i)
			buf_printf(b, ",");
		put_row_json(b, &s->rows[i]);
	}
	buf_printf(b, "]");
	if (s->lists) {
		buf_printf(b, ",\"allowed\":{\"fromBlock\":%" PRIu64 ",", s->lists->from_block);
		cluster_lists_json(s->lists, b);
		buf_printf(b, "}");
	} else if (s->lists_failed) {
		buf_printf(b, ",\"allowed\":null");
	}
	buf_printf(b, "}\n");
}

static void put_row_text(struct buf *b, const struct token_row *row)
{
	buf_printf(b, "%5" PRIu64 "  %-12.32s ", row->id, row->label[0] ? row->label : "-");
	put_addr(b, row->holder, false);
	buf_printf(b, "  ");
	if (row->bound)
		put_addr(b, row->instance, false);
	else
		buf_printf(b, "%-42s", "-");
	if (row->peer)
		buf_printf(b, "  yes  %-9s %5" PRIu64 "  %-18s %s\n",
			   row->peer->mode == REGISTRY_MODE_WIREGUARD ? "wireguard" : "tls",
			   row->peer->nonce, attest_verdict_str(row->verdict), row->peer->endpoint);
	else
		buf_printf(b, "  no   %-9s %5" PRIu64 "  %-18s %s\n", "-", row->stored_nonce, "-", "-");
}

/* Every allowed compose hash and device in full: an operator rolling a new app version
 * checks the list here before removing the old hash. */
static void put_list_text(struct buf *b, const char *what, const struct cluster_hash_list *l,
			  const char *note)
{
	char hex[65];

	buf_printf(b, "%-9s %zu allowed%s%s%s\n", what, l->n, l->overflow ? " (more than listed)" : "",
		   note ? ", " : "", note ? note : "");
	for (size_t i = 0; i < l->n; i++) {
		hex_encode(hex, l->h[i], 32);
		buf_printf(b, "          0x%s\n", hex);
	}
}

static void put_lists_text(const struct snapshot *s, struct buf *b)
{
	if (s->lists_failed)
		buf_printf(b, "compose   ? (the RPC could not say: see the warning)\n");
	if (!s->lists)
		return;
	put_list_text(b, "compose", &s->lists->compose, NULL);
	put_list_text(b, "devices", &s->lists->devices,
		      s->g[G_ANY_DEVICE][31] ? "not enforced: any device may boot" : "enforced");
}

static void status_text(struct cluster_ctx *c, const struct snapshot *s, struct buf *b)
{
	char eth[REGISTRY_ETHER_STR_MAX], when[REGISTRY_TIME_STR_MAX];
	uint64_t expiry = word_u64(s->g[G_EXPIRY]), leader = word_u64(s->g[G_LEADER_TOKEN]);

	buf_printf(b, "cluster   ");
	put_addr(b, c->contract, false);
	buf_printf(b, "  chain %" PRIu64 ", block %" PRIu64 "\nowner     ", c->chain_id, s->block.number);
	put_addr(b, s->g[G_OWNER] + 12, false);
	if (s->have[G_PENDING_OWNER] && !is_zero(s->g[G_PENDING_OWNER], 32)) {
		buf_printf(b, "  (offered to ");
		put_addr(b, s->g[G_PENDING_OWNER] + 12, false);
		buf_printf(b, ")");
	}
	buf_printf(b, "\nkms root  ");
	put_addr(b, s->g[G_KMS_ROOT] + 12, false);
	registry_ether_str(s->g[G_MINT_PRICE], eth);
	buf_printf(b, "\npolicy    boot %s, tcb %s, devices %s, modes %s, max nodes %" PRIu64
		   ", minting %s (price %s)\n",
		   s->g[G_BOOT][31] ? "permissive" : "strict",
		   !s->have[G_TCB] ? "?" : s->g[G_TCB][31] ? "up-to-date required" : "any",
		   s->g[G_ANY_DEVICE][31] ? "any" : "allow list", mode_name(word_u64(s->g[G_MODES])),
		   word_u64(s->g[G_MAX_NODES]), s->g[G_PUBLIC_MINTING][31] ? "public" : "owner-only",
		   eth);
	if (leader) {
		buf_printf(b, "leader    token %" PRIu64 " (instance ", leader);
		put_addr(b, s->g[G_LEADER] + 12, false);
		registry_time_str(expiry, when);
		buf_printf(b, "), term %" PRIu64 ", lease %s %s", word_u64(s->g[G_TERM]),
			   expiry < s->block.timestamp ? "expired at" : "until", when);
	} else {
		buf_printf(b, "leader    none, term %" PRIu64, word_u64(s->g[G_TERM]));
	}
	buf_printf(b, " (lease %" PRIu64 " s); no-confidence votes %" PRIu64 " of %" PRIu64
		   " required\n", word_u64(s->g[G_LEASE]), word_u64(s->g[G_VOTES]),
		   word_u64(s->g[G_REQUIRED]));
	put_lists_text(s, b);
	registry_ether_str(s->balance, eth);
	buf_printf(b, "tokens    %" PRIu64 " live, %" PRIu64 " registered; balance %s\n\n",
		   word_u64(s->g[G_SUPPLY]), word_u64(s->g[G_PEER_COUNT]), eth);
	buf_printf(b, "%5s  %-12s %-42s  %-42s  %-4s %-9s %5s  %-18s %s\n", "TOKEN", "LABEL", "HOLDER",
		   "INSTANCE", "REG", "MODE", "NONCE", "VERIFICATION", "ENDPOINT");
	for (size_t i = 0; i < s->nrows; i++)
		put_row_text(b, &s->rows[i]);
}

int cluster_status_json(struct cluster_ctx *c, struct buf *out)
{
	struct snapshot s;
	int r = take_snapshot(c, &s);

	if (r == 0)
		status_json(c, &s, out);
	snapshot_free(&s);
	return r;
}

/*
 * The allowed lists at the snapshot's block, for `status` (the dashboard keeps its own). An
 * RPC that serves no past state (a pruned node) cannot say: the rest of the status is still
 * worth printing, with a warning and the lists unknown.
 */
static int read_allowed(struct cluster_ctx *c, struct snapshot *s)
{
	int r;

	s->lists = malloc(sizeof(*s->lists));
	if (!s->lists)
		return -ENOMEM;
	r = cluster_read_lists(c, s->block.number, s->tag, s->lists);
	if (r < 0 && r != -ENOMEM) {
		cli_error("warning: the allowed compose hashes and devices are unknown: %s (they are "
			  "read from the contract's events since its creation block, found with "
			  "eth_getCode at past blocks)", eth_rpc_error(c->rpc)[0]
			  ? eth_rpc_error(c->rpc) : errstr(r));
		free(s->lists);
		s->lists = NULL;
		s->lists_failed = true;
		return 0;
	}
	return r;
}

int cluster_status(struct cluster_ctx *c)
{
	struct snapshot s;
	struct buf out;
	int r;

	r = take_snapshot(c, &s);
	if (r == 0)
		r = read_allowed(c, &s);
	if (r < 0) {
		if (r != -ENOENT)
			cli_error("reading the cluster: %s", eth_rpc_error(c->rpc)[0]
				  ? eth_rpc_error(c->rpc) : errstr(r));
		snapshot_free(&s);
		return CLI_EXIT_FAILURE;
	}
	buf_init(&out, 0);
	if (c->o->json)
		status_json(c, &s, &out);
	else
		status_text(c, &s, &out);
	fwrite(out.data, 1, out.len, stdout);
	fflush(stdout);
	buf_clear(&out);
	snapshot_free(&s);
	if (!c->o->watch)
		return CLI_EXIT_OK;
	return cluster_watch(c, c->o->have_from_block ? c->o->from_block : s.block.number + 1);
}

/* ---- --watch ---------------------------------------------------------------------------- */

static void print_log(const struct cluster_ctx *c, const struct eth_log *l)
{
	char hash[65];
	struct buf b;

	buf_init(&b, 0);
	hex_encode(hash, l->tx_hash, 32);
	if (c->o->json) {
		buf_printf(&b, "{\"block\":%" PRIu64 ",\"tx\":\"0x%s\",\"log\":", l->block_number, hash);
		cluster_describe_log(l, true, &b);
		buf_printf(&b, "}\n");
	} else {
		buf_printf(&b, "block %" PRIu64 " tx 0x%.16s..  ", l->block_number, hash);
		cluster_describe_log(l, false, &b);
		buf_printf(&b, "\n");
	}
	fwrite(b.data, 1, b.len, stdout);
	fflush(stdout);
	buf_clear(&b);
}

/* Until --count events were printed (or forever): each round reads the new blocks' logs. */
int cluster_watch(struct cluster_ctx *c, uint64_t next)
{
	long printed = 0;

	for (;;) {
		struct eth_log_filter f = { .from_block = next, .address = c->contract };
		struct eth_log *logs = NULL;
		size_t n = 0;
		uint64_t head;
		int r = eth_block_number(c->rpc, &head);

		if (r == 0 && head >= next) {
			f.to_block = head;
			r = eth_get_logs(c->rpc, &f, &logs, &n);
			for (size_t i = 0; r == 0 && i < n; i++) {
				if (logs[i].removed)
					continue;
				print_log(c, &logs[i]);
				if (c->o->count && ++printed >= c->o->count) {
					eth_logs_free(logs, n);
					return CLI_EXIT_OK;
				}
			}
			if (r == 0)
				next = head + 1;
		}
		eth_logs_free(logs, n);
		if (r < 0)
			cli_error("watch: %s", eth_rpc_error(c->rpc));
		sleep_ms(c->o->interval_ms);
	}
}
