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

static bool is_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (p[n])
			return false;
	return true;
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

static void put_global_json(struct buf *b, const struct ops_status *s, const char *key, enum ops_global g,
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
		buf_printf(b, "%" PRIu64, ops_word_u64(s->g[g]));
	}
}

static void put_row_json(struct buf *b, const struct ops_token_row *row)
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

/* Globals as JSON members: key, which, and how the word reads (see put_global_json). */
struct global_field {
	const char *key;
	enum ops_global g;
	char kind;
};

static const struct global_field policy_fields[] = {
	{ "requireTcbUpToDate", OPS_G_TCB, 'b' },       { "allowAnyDevice", OPS_G_ANY_DEVICE, 'b' },
	{ "networkModes", OPS_G_MODES, 'u' },           { "maxNodes", OPS_G_MAX_NODES, 'u' },
	{ "publicMinting", OPS_G_PUBLIC_MINTING, 'b' }, { "mintPrice", OPS_G_MINT_PRICE, 'w' },
};

static const struct global_field leader_fields[] = {
	{ "instanceId", OPS_G_LEADER, 'a' }, { "term", OPS_G_TERM, 'u' },
	{ "expiry", OPS_G_EXPIRY, 'u' },     { "lease", OPS_G_LEASE, 'u' },
	{ "votes", OPS_G_VOTES, 'u' },       { "requiredVotes", OPS_G_REQUIRED, 'u' },
};

static void put_globals_json(struct buf *b, const struct ops_status *s, const struct global_field *f,
			     size_t n)
{
	for (size_t i = 0; i < n; i++)
		put_global_json(b, s, f[i].key, f[i].g, f[i].kind);
}

/* The leader's label and overlay address (10.0.1.t), null without a leader. */
static void put_leader_names(const struct ops_status *s, struct buf *b)
{
	uint64_t leader = ops_word_u64(s->g[OPS_G_LEADER_TOKEN]);
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

static void status_json(struct cluster_ctx *c, const struct ops_status *s, struct buf *b)
{
	char dec[ETH_U256_DEC_MAX];

	buf_printf(b, "{\"contract\":");
	put_addr(b, c->contract, true);
	buf_printf(b, ",\"chainId\":%" PRIu64 ",\"block\":%" PRIu64 ",\"timestamp\":%" PRIu64,
		   c->chain_id, s->block.number, s->block.timestamp);
	put_global_json(b, s, "owner", OPS_G_OWNER, 'a');
	put_global_json(b, s, "pendingOwner", OPS_G_PENDING_OWNER, 'a');
	put_global_json(b, s, "kmsRoot", OPS_G_KMS_ROOT, 'a');
	buf_printf(b, ",\"policy\":{\"bootPolicy\":\"%s\"",
		   !s->have[OPS_G_BOOT]   ? "?"
		   : s->g[OPS_G_BOOT][31] ? "permissive"
					  : "strict");
	put_globals_json(b, s, policy_fields, ARRAY_SIZE(policy_fields));
	buf_printf(b, "},\"leader\":{\"tokenId\"");
	buf_printf(b, ":%" PRIu64, ops_word_u64(s->g[OPS_G_LEADER_TOKEN]));
	put_leader_names(s, b);
	put_globals_json(b, s, leader_fields, ARRAY_SIZE(leader_fields));
	buf_printf(b, "}");
	put_global_json(b, s, "totalSupply", OPS_G_SUPPLY, 'u');
	put_global_json(b, s, "peerCount", OPS_G_PEER_COUNT, 'u');
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
		ops_lists_json(s->lists, b);
		buf_printf(b, "}");
	} else if (s->lists_failed) {
		buf_printf(b, ",\"allowed\":null");
	}
	buf_printf(b, "}\n");
}

static void put_row_text(struct buf *b, const struct ops_token_row *row)
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
static void put_list_text(struct buf *b, const char *what, const struct ops_hash_list *l, const char *note)
{
	char hex[65];

	buf_printf(b, "%-9s %zu allowed%s%s%s\n", what, l->n, l->overflow ? " (more than listed)" : "",
		   note ? ", " : "", note ? note : "");
	for (size_t i = 0; i < l->n; i++) {
		hex_encode(hex, l->h[i], 32);
		buf_printf(b, "          0x%s\n", hex);
	}
}

static void put_lists_text(const struct ops_status *s, struct buf *b)
{
	if (s->lists_failed)
		buf_printf(b, "compose   ? (the RPC could not say: see the warning)\n");
	if (!s->lists)
		return;
	put_list_text(b, "compose", &s->lists->compose, NULL);
	put_list_text(b, "devices", &s->lists->devices,
		      s->g[OPS_G_ANY_DEVICE][31] ? "not enforced: any device may boot" : "enforced");
}

static void status_text(struct cluster_ctx *c, const struct ops_status *s, struct buf *b)
{
	char eth[REGISTRY_ETHER_STR_MAX], when[REGISTRY_TIME_STR_MAX];
	uint64_t expiry = ops_word_u64(s->g[OPS_G_EXPIRY]), leader = ops_word_u64(s->g[OPS_G_LEADER_TOKEN]);

	buf_printf(b, "cluster   ");
	put_addr(b, c->contract, false);
	buf_printf(b, "  chain %" PRIu64 ", block %" PRIu64 "\nowner     ", c->chain_id, s->block.number);
	put_addr(b, s->g[OPS_G_OWNER] + 12, false);
	if (s->have[OPS_G_PENDING_OWNER] && !is_zero(s->g[OPS_G_PENDING_OWNER], 32)) {
		buf_printf(b, "  (offered to ");
		put_addr(b, s->g[OPS_G_PENDING_OWNER] + 12, false);
		buf_printf(b, ")");
	}
	buf_printf(b, "\nkms root  ");
	put_addr(b, s->g[OPS_G_KMS_ROOT] + 12, false);
	registry_ether_str(s->g[OPS_G_MINT_PRICE], eth);
	buf_printf(b,
		   "\npolicy    boot %s, tcb %s, devices %s, modes %s, max nodes %" PRIu64
		   ", minting %s (price %s)\n",
		   s->g[OPS_G_BOOT][31] ? "permissive" : "strict",
		   !s->have[OPS_G_TCB]   ? "?"
		   : s->g[OPS_G_TCB][31] ? "up-to-date required"
					 : "any",
		   s->g[OPS_G_ANY_DEVICE][31] ? "any" : "allow list",
		   mode_name(ops_word_u64(s->g[OPS_G_MODES])), ops_word_u64(s->g[OPS_G_MAX_NODES]),
		   s->g[OPS_G_PUBLIC_MINTING][31] ? "public" : "owner-only", eth);
	if (leader) {
		buf_printf(b, "leader    token %" PRIu64 " (instance ", leader);
		put_addr(b, s->g[OPS_G_LEADER] + 12, false);
		registry_time_str(expiry, when);
		buf_printf(b, "), term %" PRIu64 ", lease %s %s", ops_word_u64(s->g[OPS_G_TERM]),
			   expiry < s->block.timestamp ? "expired at" : "until", when);
	} else {
		buf_printf(b, "leader    none, term %" PRIu64, ops_word_u64(s->g[OPS_G_TERM]));
	}
	buf_printf(b, " (lease %" PRIu64 " s); no-confidence votes %" PRIu64 " of %" PRIu64 " required\n",
		   ops_word_u64(s->g[OPS_G_LEASE]), ops_word_u64(s->g[OPS_G_VOTES]),
		   ops_word_u64(s->g[OPS_G_REQUIRED]));
	put_lists_text(s, b);
	registry_ether_str(s->balance, eth);
	buf_printf(b, "tokens    %" PRIu64 " live, %" PRIu64 " registered; balance %s\n\n",
		   ops_word_u64(s->g[OPS_G_SUPPLY]), ops_word_u64(s->g[OPS_G_PEER_COUNT]), eth);
	buf_printf(b, "%5s  %-12s %-42s  %-42s  %-4s %-9s %5s  %-18s %s\n", "TOKEN", "LABEL", "HOLDER",
		   "INSTANCE", "REG", "MODE", "NONCE", "VERIFICATION", "ENDPOINT");
	for (size_t i = 0; i < s->nrows; i++)
		put_row_text(b, &s->rows[i]);
}

/* ops_status_read, the records it left out and why it failed said on stderr. */
static int take_snapshot(struct cluster_ctx *c, struct ops_status *s)
{
	struct registry_skip skips[4];
	size_t nskips = 0;
	int r = ops_status_read(c->ops, s, skips, ARRAY_SIZE(skips), &nskips);

	for (size_t i = 0; r == 0 && i < nskips; i++)
		cli_error("getPeers() entry %zu left out: %s", skips[i].index, skips[i].reason);
	if (r == -ENOENT)
		cli_error("%s", ops_error(c->ops));
	return r;
}

int cluster_status_json(struct cluster_ctx *c, struct buf *out)
{
	struct ops_status s;
	int r = take_snapshot(c, &s);

	if (r == 0)
		status_json(c, &s, out);
	ops_status_clear(&s);
	return r;
}

/*
 * The allowed lists at the snapshot's block, for `status` (the dashboard keeps its own). An
 * RPC that serves no past state (a pruned node) cannot say: the rest of the status is still
 * worth printing, with a warning and the lists unknown.
 */
static int read_allowed(struct cluster_ctx *c, struct ops_status *s)
{
	int r = ops_status_read_lists(c->ops, s);

	if (r < 0 && s->lists_failed) {
		cli_error("warning: the allowed compose hashes and devices are unknown: %s (they are "
			  "read from the contract's events since its creation block, found with "
			  "eth_getCode at past blocks)",
			  ops_error(c->ops));
		return 0;
	}
	return r;
}

int cluster_status(struct cluster_ctx *c)
{
	struct ops_status s;
	struct buf out;
	uint64_t next;
	int r;

	r = take_snapshot(c, &s);
	if (r == 0)
		r = read_allowed(c, &s);
	if (r < 0) {
		if (r != -ENOENT)
			cli_error("reading the cluster: %s",
				  ops_error(c->ops)[0] ? ops_error(c->ops) : errstr(r));
		ops_status_clear(&s);
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
	next = c->o->have_from_block ? c->o->from_block : s.block.number + 1;
	ops_status_clear(&s);
	return c->o->watch ? cluster_watch(c, next) : CLI_EXIT_OK;
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
		ops_describe_log(l, true, &b);
		buf_printf(&b, "}\n");
	} else {
		buf_printf(&b, "block %" PRIu64 " tx 0x%.16s..  ", l->block_number, hash);
		ops_describe_log(l, false, &b);
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
