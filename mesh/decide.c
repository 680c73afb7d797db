/* SPDX-License-Identifier: MIT */
/*
 * mesh: the agent's decision, pure. From the verified registry view, the device dump,
 * our identity, the time and what was sent, the plan: peers to add, change or remove,
 * whether to register, whether to publish, what to log. No sockets, no clock: the unit
 * tests drive every case through mesh_decide (tests/unit/test-mesh-decide.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "registry/registry.h"

#define HOUR_MS 3600000ull
#define REG_PENDING_MAX_MS 600000u  /* a registration not mined by then was dropped */

static void say(struct mesh_plan *plan, enum mesh_plan_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Log lines go to the plan; the loop prints them. Level letter, text, newline. */
static void say(struct mesh_plan *plan, enum mesh_plan_log_level level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!plan->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	buf_printf(plan->log, "%c%s\n", "EWI"[level], line);
}

void mesh_state_init(struct mesh_state *st)
{
	memset(st, 0, sizeof(*st));
}

void mesh_state_clear(struct mesh_state *st)
{
	free(st->peers);
	st->peers = NULL;
	st->n_peers = 0;
}

void mesh_plan_clear(struct mesh_plan *plan)
{
	struct buf *log = plan->log;

	free(plan->changes);
	free(plan->ips);
	free(plan->applied);
	memset(plan, 0, sizeof(*plan));
	plan->log = log;
}

/* ---- the registry, verified ---------------------------------------------------------------- */

static void put_u64(struct keccak256_ctx *k, uint64_t v)
{
	uint8_t w[8];

	for (int i = 0; i < 8; i++)
		w[7 - i] = (uint8_t)(v >> (8 * i));
	keccak256_update(k, w, 8);
}

/* What a verdict depends on: the whole record and what it is checked under. */
static void verdict_key(const struct mesh_self *self, const struct registry_record *p, uint8_t out[static 32])
{
	static const char tag[] = "dstack-p2p.verdict.v1";
	struct keccak256_ctx k;
	size_t len = p->endpoint ? strlen(p->endpoint) : 0;

	keccak256_init(&k);
	keccak256_update(&k, tag, sizeof(tag) - 1);
	put_u64(&k, self->chain_id);
	keccak256_update(&k, self->contract, 20);
	keccak256_update(&k, self->kms_root, 20);
	put_u64(&k, p->token_id);
	keccak256_update(&k, p->instance_id, 20);
	keccak256_update(&k, p->wg_public_key, 32);
	keccak256_update(&k, &p->mode, 1);
	put_u64(&k, p->nonce);
	keccak256_update(&k, p->node_pubkey, 64);
	keccak256_update(&k, p->app_pubkey, 64);
	keccak256_update(&k, p->app_signature, 65);
	keccak256_update(&k, p->kms_signature, 65);
	keccak256_update(&k, p->node_signature, 65);
	put_u64(&k, p->endpoint ? len : UINT64_MAX);
	keccak256_update(&k, p->endpoint ? p->endpoint : "", len);
	keccak256_final(&k, out);
}

/*
 * registry_record_verify, remembered in vc (NULL: none): the secp256k1 recoveries run once per
 * distinct record, not once per view. The verdict is a function of what the key hashes.
 */
static enum attest_verdict verify(struct mesh_verify_cache *vc, const struct mesh_self *self,
				  const struct registry_record *p)
{
	struct mesh_verified *ways;
	uint8_t key[32];
	enum attest_verdict v;

	if (!vc || p->token_id < 1 || p->token_id > REGISTRY_MAX_PEERS)
		return registry_record_verify(p, self->chain_id, self->contract, self->kms_root);
	ways = vc->by_token[p->token_id];
	verdict_key(self, p, key);
	for (size_t i = 0; i < MESH_VERIFIED_WAYS; i++)
		if (ways[i].used && !memcmp(ways[i].key, key, 32)) {
			vc->hits++;
			return (enum attest_verdict)ways[i].verdict;
		}
	vc->misses++;
	v = registry_record_verify(p, self->chain_id, self->contract, self->kms_root);
	/* The newest first; the oldest way goes. */
	memmove(&ways[1], &ways[0], (MESH_VERIFIED_WAYS - 1) * sizeof(ways[0]));
	memcpy(ways[0].key, key, 32);
	ways[0].verdict = (uint8_t)v;
	ways[0].used = true;
	return v;
}

/* Forget the verdicts of tokens that have no record in the view applied (recs, recs2). */
static void verified_keep(struct mesh_verify_cache *vc, const struct mesh_input *in)
{
	bool present[REGISTRY_MAX_PEERS + 1] = { false };

	for (size_t i = 0; i < in->n_recs; i++)
		if (in->recs[i].token_id >= 1 && in->recs[i].token_id <= REGISTRY_MAX_PEERS)
			present[in->recs[i].token_id] = true;
	for (size_t i = 0; in->recs2 && i < in->n_recs2; i++)
		if (in->recs2[i].token_id >= 1 && in->recs2[i].token_id <= REGISTRY_MAX_PEERS)
			present[in->recs2[i].token_id] = true;
	for (size_t t = 1; t <= REGISTRY_MAX_PEERS; t++)
		if (!present[t])
			memset(vc->by_token[t], 0, sizeof(vc->by_token[t]));
}

/* Why a record cannot be a peer of ours, or NULL when it can; *kind says which rule. */
static const char *peer_record_problem(struct mesh_verify_cache *vc, const struct mesh_self *self,
				       const struct registry_record *p, struct err_detail *why,
				       enum mesh_reject_kind *kind)
{
	const char *problem = registry_record_field_problem(p);
	enum attest_verdict v;

	*kind = MESH_REJECT_FIELD;
	if (problem)
		return problem;
	v = verify(vc, self, p);
	*kind = MESH_REJECT_VERIFICATION;
	if (v != ATTEST_VALID) {
		err_detail_set(why, "verification failed: %s", attest_verdict_str(v));
		return why->text;
	}
	*kind = MESH_REJECT_MODE;
	if (p->mode != (uint8_t)self->mode) {
		err_detail_set(why, "registered in %s mode, we run %s",
			 mesh_mode_name((enum registry_mode)p->mode), mesh_mode_name(self->mode));
		return why->text;
	}
	if (p->mode == REGISTRY_MODE_WIREGUARD) {
		static const uint8_t zero[32];

		*kind = MESH_REJECT_WIREGUARD_KEY;
		if (!memcmp(p->wg_public_key, zero, 32))
			return "no WireGuard key";
		if (!memcmp(p->wg_public_key, self->wg_public_key, 32))
			return "uses our own WireGuard key";
		*kind = MESH_REJECT_TRANSPORT;
		return mesh_transport_problem(self->transport, self->gateway, p->endpoint, p->instance_id, why);
	} else if (strncmp(p->endpoint, "https://", 8)) {
		*kind = MESH_REJECT_TRANSPORT;
		return "gateway endpoint is not an https URL";
	}
	return NULL;
}

static int peer_by_token(const void *x, const void *y)
{
	const struct mesh_peer *a = x, *b = y;

	return (a->token > b->token) - (a->token < b->token);
}

static void reject(struct mesh_rejected *rejected, size_t *n_rejected, uint64_t token, uint64_t nonce,
		   const uint8_t instance_id[static 20], enum mesh_reject_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

static void reject(struct mesh_rejected *rejected, size_t *n_rejected, uint64_t token, uint64_t nonce,
		   const uint8_t instance_id[static 20], enum mesh_reject_kind kind, const char *fmt, ...)
{
	struct mesh_rejected *x;
	va_list ap;

	if (*n_rejected >= REGISTRY_MAX_PEERS)
		return;
	x = &rejected[(*n_rejected)++];
	x->token = token;
	x->nonce = nonce;
	x->kind = (uint8_t)kind;
	memcpy(x->instance_id, instance_id, 20);
	va_start(ap, fmt);
	vsnprintf(x->reason, sizeof(x->reason), fmt, ap);
	va_end(ap);
}

/*
 * Two records with one WireGuard key cannot both be peers: the device would refuse the
 * whole change and freeze the mesh (no joins, no revocations). The lower token keeps
 * the key, the same choice on every node; the others are rejected. peers is sorted.
 */
static void drop_shared_keys(struct mesh_peer *peers, size_t *n_peers, struct mesh_rejected *rejected,
			     size_t *n_rejected)
{
	size_t kept = 0;

	for (size_t i = 0; i < *n_peers; i++) {
		const struct mesh_peer *first = NULL;

		for (size_t k = 0; k < kept && !first; k++)
			if (!memcmp(peers[k].wg_key, peers[i].wg_key, sizeof(peers[i].wg_key)))
				first = &peers[k];
		if (first) {
			reject(rejected, n_rejected, peers[i].token, peers[i].nonce, peers[i].instance_id,
			       MESH_REJECT_WIREGUARD_KEY, "shares its WireGuard key with token %u",
			       first->token);
			continue;
		}
		peers[kept++] = peers[i];
	}
	*n_peers = kept;
}

static const struct registry_record *classify(struct mesh_verify_cache *vc, const struct mesh_self *self,
					    const struct registry_record *recs, size_t n,
					    struct mesh_peer *peers, size_t *n_peers,
					    struct mesh_rejected *rejected, size_t *n_rejected)
{
	const struct registry_record *own = NULL;

	*n_peers = *n_rejected = 0;
	/* Two providers' views merged hold at most two records per token. */
	for (size_t i = 0; i < n && i < 2 * REGISTRY_MAX_PEERS; i++) {
		const struct registry_record *p = &recs[i];
		enum mesh_reject_kind kind;
		struct mesh_peer *m;
		struct err_detail why;
		const char *problem;

		if (!memcmp(p->instance_id, self->instance_id, 20)) {
			own = p;
			continue;
		}
		problem = peer_record_problem(vc, self, p, &why, &kind);
		if (problem) {
			reject(rejected, n_rejected, p->token_id, p->nonce, p->instance_id, kind, "%s",
			       problem);
			continue;
		}
		m = &peers[(*n_peers)++];
		memset(m, 0, sizeof(*m));
		m->token = (uint32_t)p->token_id;
		memcpy(m->instance_id, p->instance_id, 20);
		memcpy(m->wg_key, p->wg_public_key, 32);
		snprintf(m->endpoint, sizeof(m->endpoint), "%s", p->endpoint);
		mesh_endpoint_udp(m->endpoint, false, &m->udp); /* a name stays AF_UNSPEC */
		crypto_address_from_pubkey(p->node_pubkey, m->node_addr);
		m->mode = (enum registry_mode)p->mode;
		m->nonce = p->nonce;
	}
	qsort(peers, *n_peers, sizeof(*peers), peer_by_token);
	if (self->mode == REGISTRY_MODE_WIREGUARD)
		drop_shared_keys(peers, n_peers, rejected, n_rejected);
	return own;
}

const struct registry_record *mesh_classify_records(const struct mesh_self *self,
						  const struct registry_record *recs, size_t n,
						  struct mesh_peer *peers, size_t *n_peers,
						  struct mesh_rejected *rejected, size_t *n_rejected)
{
	return classify(NULL, self, recs, n, peers, n_peers, rejected, n_rejected);
}

static bool own_record_valid(struct mesh_verify_cache *vc, const struct mesh_self *self,
			     const struct registry_record *own)
{
	static const uint8_t zero[32];
	const uint8_t *want_key = self->mode == REGISTRY_MODE_WIREGUARD ? self->wg_public_key : zero;

	return own && own->mode == (uint8_t)self->mode && !memcmp(own->wg_public_key, want_key, 32) &&
	       registry_nonce_features(own->nonce) == self->features && own->endpoint &&
	       !strcmp(own->endpoint, self->endpoint) && verify(vc, self, own) == ATTEST_VALID;
}

bool mesh_own_record_valid(const struct mesh_self *self, const struct registry_record *own)
{
	return own_record_valid(NULL, self, own);
}

static bool was_rejected_before(const struct mesh_state *st, const struct mesh_rejected *x)
{
	for (size_t i = 0; i < st->n_rejected; i++)
		if (st->rejected[i].token == x->token && st->rejected[i].nonce == x->nonce &&
		    !strcmp(st->rejected[i].reason, x->reason))
			return true;
	return false;
}

/* ---- no rollback: the highest verified nonce of each instance ------------------------------ */

static struct mesh_seen *seen_find(struct mesh_state *st, const uint8_t instance_id[static 20])
{
	for (size_t i = 0; i < st->n_seen; i++)
		if (!memcmp(st->seen[i].instance_id, instance_id, 20))
			return &st->seen[i];
	return NULL;
}

/* Remember nonce as verified for instance; full memory keeps the first MESH_SEEN_MAX. */
static void seen_raise(struct mesh_state *st, const uint8_t instance_id[static 20], uint64_t nonce)
{
	struct mesh_seen *s = seen_find(st, instance_id);

	if (!s && st->n_seen < MESH_SEEN_MAX) {
		s = &st->seen[st->n_seen++];
		memcpy(s->instance_id, instance_id, 20);
		s->nonce = nonce;
	}
	if (s && nonce > s->nonce) {
		s->nonce = nonce;
		s->warned = false;
	}
}

static const struct mesh_peer *current_peer_by_instance(const struct mesh_state *st,
							const uint8_t instance_id[static 20])
{
	for (size_t i = 0; i < st->n_peers; i++)
		if (!memcmp(st->peers[i].instance_id, instance_id, 20))
			return &st->peers[i];
	return NULL;
}

/*
 * A verified record older than one we verified before (a lying or lagging RPC replays
 * it): keep the newer one we have, or drop it when we have none any more. Warn once.
 */
static void refuse_rollbacks(struct mesh_state *st, struct mesh_peer *peers, size_t *n_peers,
			     struct mesh_rejected *rejected, size_t *n_rejected, struct mesh_plan *plan)
{
	size_t kept = 0;

	for (size_t i = 0; i < *n_peers; i++) {
		const uint8_t *inst = peers[i].instance_id;
		struct mesh_seen *s;
		const struct mesh_peer *cur;

		s = seen_find(st, inst);
		if (!s || peers[i].nonce >= s->nonce) {
			peers[kept++] = peers[i];
			continue;
		}
		if (!s->warned)
			say(plan, MESH_PLAN_WARN, "token %u: the registry serves nonce %llu, older than the "
			    "nonce %llu we verified before (a replayed record); keeping the newer one",
			    peers[i].token, (unsigned long long)peers[i].nonce, (unsigned long long)s->nonce);
		s->warned = true;
		cur = current_peer_by_instance(st, peers[i].instance_id);
		if (cur && cur->nonce == s->nonce && cur->token == peers[i].token) {
			peers[kept++] = *cur;
			continue;
		}
		reject(rejected, n_rejected, peers[i].token, peers[i].nonce, inst, MESH_REJECT_REPLAYED,
		       "replayed: nonce %llu is older than %llu", (unsigned long long)peers[i].nonce,
		       (unsigned long long)s->nonce);
	}
	*n_peers = kept;
	for (size_t i = 0; i < kept; i++)
		seen_raise(st, peers[i].instance_id, peers[i].nonce);
}

/* ---- registration -------------------------------------------------------------------------- */

static size_t sends_in_last_hour(const struct mesh_state *st, uint64_t now)
{
	size_t n = st->n_reg_sent < MESH_MAX_REGISTER_PER_HOUR ? st->n_reg_sent : MESH_MAX_REGISTER_PER_HOUR, count = 0;

	for (size_t i = 0; i < n; i++)
		if (now < st->reg_sent_ms[i] + HOUR_MS)
			count++;
	return count;
}

/*
 * Not registered (or registered with stale data): register, unless the last one was
 * sent less than the spacing ago, a sent one is still pending by the funded key's nonce
 * on chain, or the hourly cap is reached. Whatever the RPC says about the registry.
 */
static void decide_registration(struct mesh_state *st, const struct mesh_self *self,
				const struct mesh_input *in, struct mesh_plan *plan)
{
	unsigned cap = self->reg_max_per_hour < MESH_MAX_REGISTER_PER_HOUR ? self->reg_max_per_hour : MESH_MAX_REGISTER_PER_HOUR;

	if (st->reg_last_ms && in->now_ms < st->reg_last_ms + self->reg_spacing_ms)
		return;
	/*
	 * Our transaction is not mined yet (the funded key's nonce has not moved past it, or
	 * we cannot tell): another would only queue behind it. One dropped from every mempool
	 * never moves the nonce, so after REG_PENDING_MAX_MS it no longer holds us back.
	 */
	if (st->reg_pending && in->now_ms < st->reg_last_ms + REG_PENDING_MAX_MS) {
		if (!in->funded_nonce_known || in->funded_nonce <= st->reg_funded_nonce)
			return;
	}
	st->reg_pending = false;
	if (sends_in_last_hour(st, in->now_ms) >= cap) {
		if (!st->reg_capped_said)
			say(plan, MESH_PLAN_WARN, "%u registrations sent in the last hour and our record is "
			    "still not in the registry as this RPC serves it; not sending more this hour "
			    "(P2P_REGISTER_MAX_PER_HOUR)", cap);
		st->reg_capped_said = true;
		return;
	}
	st->reg_capped_said = false;
	plan->send_registration = true;
}

void mesh_note_registration(struct mesh_state *st, uint64_t now, bool sent, bool funded_nonce_known,
			    uint64_t funded_nonce)
{
	/* Spacing holds for a failed attempt too: a failing RPC must not make us spin. */
	st->reg_last_ms = now ? now : 1;
	if (!sent)
		return;
	st->reg_sent_ms[st->n_reg_sent % MESH_MAX_REGISTER_PER_HOUR] = now;
	st->n_reg_sent++;
	st->reg_pending = funded_nonce_known;
	st->reg_funded_nonce = funded_nonce;
}

/* ---- several providers: one view that no single provider's omission can shrink -------------- */

static const struct registry_record *by_token(const struct registry_record *recs, size_t n, uint64_t token)
{
	for (size_t i = 0; i < n; i++)
		if (recs[i].token_id == token)
			return &recs[i];
	return NULL;
}

/* Of two records of one instance, the one that verifies, the newer if both do. */
static const struct registry_record *prefer(struct mesh_verify_cache *vc, const struct mesh_self *self,
					  const struct registry_record *a, const struct registry_record *b)
{
	bool va, vb;

	if (a->nonce == b->nonce)
		return a;
	va = verify(vc, self, a) == ATTEST_VALID;
	vb = verify(vc, self, b) == ATTEST_VALID;
	if (va != vb)
		return va ? a : b;
	return a->nonce >= b->nonce ? a : b;
}

static void note(char *text, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Append "; <what>" to text, bounded. */
static void note(char *text, size_t cap, const char *fmt, ...)
{
	size_t n = strlen(text);
	va_list ap;

	if (n + 3 >= cap)
		return;
	if (n)
		n += (size_t)snprintf(text + n, cap - n, "; ");
	va_start(ap, fmt);
	vsnprintf(text + n, cap - n, fmt, ap);
	va_end(ap);
}

/*
 * Merge two providers' views of the registry at one block, by token: a record one of
 * them omits is kept (an omission never removes a peer another provider still serves);
 * for two records of one instance the one that verifies, and the newer, wins; for two
 * different instances on one token, the followed provider's. What differed goes to why.
 * out has room for n_recs + n_recs2 records (shallow copies, not to be cleared).
 */
static size_t merge_views(struct mesh_verify_cache *vc, const struct mesh_self *self,
			  const struct mesh_input *in, struct registry_record *out, char *why, size_t why_len)
{
	const char *x = in->provider ? in->provider : "one provider";
	const char *y = in->provider2 ? in->provider2 : "another";
	size_t n = 0;

	for (size_t i = 0; i < in->n_recs; i++) {
		const struct registry_record *a = &in->recs[i], *b = by_token(in->recs2, in->n_recs2, a->token_id);

		if (!b) {
			note(why, why_len, "%s omits token %llu", y, (unsigned long long)a->token_id);
			out[n++] = *a;
		} else if (!memcmp(a->instance_id, b->instance_id, 20)) {
			if (a->nonce != b->nonce)
				note(why, why_len, "token %llu: nonce %llu at %s, %llu at %s",
				     (unsigned long long)a->token_id, (unsigned long long)a->nonce, x,
				     (unsigned long long)b->nonce, y);
			out[n++] = *prefer(vc, self, a, b);
		} else {
			note(why, why_len, "token %llu: another instance at %s than at %s",
			     (unsigned long long)a->token_id, y, x);
			out[n++] = *a;
		}
	}
	for (size_t i = 0; i < in->n_recs2; i++) {
		const struct registry_record *b = &in->recs2[i];

		if (by_token(in->recs, in->n_recs, b->token_id))
			continue;
		note(why, why_len, "%s omits token %llu", x, (unsigned long long)b->token_id);
		out[n++] = *b;
	}
	return n;
}

/* Log a disagreement once (until it changes), count it, keep it for status. */
static void report_disagreement(struct mesh_state *st, const struct mesh_input *in, const char *why,
				struct mesh_plan *plan)
{
	char text[sizeof(st->disagreement)] = "";

	if (in->block_disagreement && *in->block_disagreement)
		note(text, sizeof(text), "%s", in->block_disagreement);
	if (*why)
		note(text, sizeof(text), "providers disagree at block %llu: %s", (unsigned long long)in->block, why);
	if (!*text) {
		if (st->disagreement[0])
			say(plan, MESH_PLAN_INFO, "the RPC providers agree again");
		st->disagreement[0] = '\0';
		return;
	}
	st->disagreements++;
	if (strcmp(text, st->disagreement))
		say(plan, MESH_PLAN_WARN, "%s (keeping every record that verifies)", text);
	snprintf(st->disagreement, sizeof(st->disagreement), "%s", text);
}

/* ---- one registry view --------------------------------------------------------------------- */

static bool peers_equal(const struct mesh_peer *a, size_t na, const struct mesh_peer *b, size_t nb)
{
	return na == nb && (!na || !memcmp(a, b, na * sizeof(*a)));
}

/*
 * Does any record verify, whatever its mode (a tls-mode node in a cluster of WireGuard
 * nodes has no peers, yet their records vouch for the chain id and the KMS root)?
 */
static bool any_record_verifies(struct mesh_verify_cache *vc, const struct mesh_self *self,
				const struct mesh_input *in)
{
	for (size_t i = 0; i < in->n_recs && i < 2 * REGISTRY_MAX_PEERS; i++)
		if (verify(vc, self, &in->recs[i]) == ATTEST_VALID)
			return true;
	return false;
}

/*
 * A view that would take every peer away: no record at all, or records of which none
 * verifies, ours included. A burnt cluster reads like this, but so does an RPC that
 * lags, truncates or serves another chain. Believed only when a fresh full read a poll
 * later says the same (a follow step after a failed re-read does not count).
 */
static bool view_suspicious(struct mesh_state *st, const struct mesh_self *self,
			    const struct mesh_input *in, size_t n_valid, const struct registry_record *own)
{
	if (st->n_peers == 0 && st->applied_view)
		return false;
	if (in->n_recs == 0)
		return true;
	return n_valid == 0 && !own_record_valid(&st->verified, self, own) &&
	       !any_record_verifies(&st->verified, self, in);
}

static int decide_view(struct mesh_state *st, const struct mesh_self *self, const struct mesh_input *in,
		       struct mesh_plan *plan)
{
	struct mesh_rejected *rejected = calloc(REGISTRY_MAX_PEERS, sizeof(*rejected));
	struct mesh_peer *peers = calloc(2 * REGISTRY_MAX_PEERS, sizeof(*peers));
	struct registry_record *merged = NULL;
	struct mesh_input view = *in;
	const struct registry_record *own;
	size_t n_peers = 0, n_rejected = 0;
	bool was_registered = st->registered;
	int r = 0;

	if (!peers || !rejected) {
		r = -ENOMEM;
		goto out;
	}
	if (in->recs2 || (in->block_disagreement && *in->block_disagreement)) {
		char why[512] = "";

		merged = calloc(in->n_recs + in->n_recs2 + 1, sizeof(*merged));
		if (!merged) {
			r = -ENOMEM;
			goto out;
		}
		view.n_recs = merge_views(&st->verified, self, in, merged, why, sizeof(why));
		view.recs = merged;
		report_disagreement(st, in, why, plan);
		in = &view;
	}
	own = classify(&st->verified, self, in->recs, in->n_recs, peers, &n_peers, rejected, &n_rejected);
	/*
	 * Records, and not one verifies under a chain id nothing has confirmed yet: the chain
	 * id is what is wrong (a lying RPC, a failover URL on another network), not every
	 * record. That RPC is failed; nothing changes until one answers right.
	 */
	if (in->chain_unconfirmed && in->n_recs && !n_peers && !any_record_verifies(&st->verified, self, in)) {
		plan->refuse_view = true;
		goto out;
	}
	if (view_suspicious(st, self, in, n_peers, own) && !(st->recheck && in->full)) {
		if (st->n_peers && !st->recheck)
			say(plan, MESH_PLAN_WARN, "the registry reads %s at block %llu; re-reading before "
			    "removing %zu peer%s", in->n_recs ? "with no record that verifies" : "empty",
			    (unsigned long long)in->block, st->n_peers, st->n_peers == 1 ? "" : "s");
		st->recheck = plan->recheck = true;
		goto out;
	}
	st->recheck = false;
	st->applied_view = true;
	verified_keep(&st->verified, in);
	refuse_rollbacks(st, peers, &n_peers, rejected, &n_rejected, plan);
	for (size_t i = 0; i < n_rejected; i++)
		if (!was_rejected_before(st, &rejected[i]))
			say(plan, MESH_PLAN_WARN, "dropping the record of token %llu: %s",
			    (unsigned long long)rejected[i].token, rejected[i].reason);
	memcpy(st->rejected, rejected, n_rejected * sizeof(*rejected));
	st->n_rejected = n_rejected;

	/*
	 * Revoked (our token burned, or our instance unbound, and no record of ours): the node
	 * leaves. No peers on the device or in the list, no registration; the interface stays.
	 */
	if (in->revoked && !own) {
		if (!st->revoked)
			say(plan, MESH_PLAN_WARN, "our instance is bound to no token any more (burned or "
			    "unbound): leaving the mesh, removing %zu peer%s, sending nothing", st->n_peers,
			    st->n_peers == 1 ? "" : "s");
		st->revoked = true;
		st->registered = false;
		st->token = 0;
		st->reg_pending = false;
		n_peers = 0;
	} else if (own && own_record_valid(&st->verified, self, own)) {
		struct mesh_seen *s = seen_find(st, self->instance_id);

		if (s && own->nonce < s->nonce) {
			if (!s->warned)
				say(plan, MESH_PLAN_WARN, "the registry serves our own record with nonce %llu, "
				    "older than %llu (a replayed record)", (unsigned long long)own->nonce,
				    (unsigned long long)s->nonce);
			s->warned = true;
		}
		seen_raise(st, self->instance_id, own->nonce);
		st->registered = true;
		st->revoked = false;
		st->token = own->token_id;
		st->registered_nonce = own->nonce;
		/* reg_last_ms stays: an RPC that flaps our record must not reset the spacing. */
		st->reg_pending = false;
		if (!was_registered) {
			char addr[16];

			mesh_overlay_addr_str((uint32_t)st->token, addr);
			say(plan, MESH_PLAN_INFO, "registered: token %llu, %s, endpoint %s",
			    (unsigned long long)st->token, addr, self->endpoint);
		}
	} else {
		st->registered = false;
		st->revoked = false;
		if (was_registered)
			say(plan, MESH_PLAN_WARN, "our registry record is gone or stale; registering again");
		/* re-read: a re-bind may have moved us to another token */
		st->token = own ? own->token_id : 0;
		decide_registration(st, self, in, plan);
	}

	/* The first view is published even when empty: apps hear "no peers yet" at once. */
	if (!peers_equal(peers, n_peers, st->peers, st->n_peers) || st->generation == 0) {
		free(st->peers);
		st->peers = peers;
		st->n_peers = n_peers;
		peers = NULL;
		st->generation++;
		plan->publish = true;
		say(plan, MESH_PLAN_INFO, "peer list: %zu peer%s (generation %llu)", st->n_peers,
		    st->n_peers == 1 ? "" : "s", (unsigned long long)st->generation);
	}
out:
	free(merged);
	free(peers);
	free(rejected);
	return r;
}

/* ---- the device ------------------------------------------------------------------------------ */

static const struct mesh_applied *applied_by_key(const struct mesh_state *st, const uint8_t key[static 32])
{
	for (size_t i = 0; i < st->n_applied; i++)
		if (!memcmp(st->applied[i].key, key, WG_KEY_LEN))
			return &st->applied[i];
	return NULL;
}

/*
 * Endpoint policy: a new peer gets the registered endpoint; an existing peer gets it
 * again only when the registry's endpoint changed since we last set it (or we have no
 * memory of setting it, e.g. after a restart) or the device has none. That keeps an
 * endpoint learned by roaming behind NAT.
 */
static bool endpoint_wanted(const struct mesh_state *st, const struct wg_peer *have,
			    const uint8_t key[static 32], const union wg_endpoint *ep)
{
	const struct mesh_applied *prev;

	if (ep->addr.sa_family == AF_UNSPEC)
		return false;
	if (!have || have->endpoint.addr.sa_family == AF_UNSPEC)
		return true;
	prev = applied_by_key(st, key);
	return !prev || !wg_endpoint_equal(&prev->endpoint, ep);
}

/*
 * The device the verified peers want, as a wg_device for wg_device_diff (the one diff):
 * each peer once, 10.0.1.t/32, keepalive, an endpoint only where the policy says so.
 */
static int desired_device(const struct mesh_state *st, const struct mesh_self *self,
			  const struct mesh_input *in, struct wg_device *want, struct ip_prefix *ips)
{
	const union wg_endpoint *paths = in->path_endpoints;
	const struct wg_device *dev = in->dev;

	for (size_t i = 0; i < st->n_peers; i++) {
		const struct mesh_peer *m = &st->peers[i];
		const struct wg_peer *have = wg_device_find_peer(dev, m->wg_key);
		struct wg_peer *p = &want->peers[i];
		union wg_endpoint ep;

		memset(p, 0, sizeof(*p));
		memcpy(p->public_key, m->wg_key, WG_KEY_LEN);
		/*
		 * The path transport.c chose (UDP or the relay's socket; a name it resolved), else
		 * the record's numeric UDP part parsed when it was accepted: no DNS here.
		 */
		ep = paths && paths[m->token].addr.sa_family != AF_UNSPEC ? paths[m->token] : m->udp;
		if (endpoint_wanted(st, have, m->wg_key, &ep)) {
			p->endpoint = ep;
			p->flags |= WG_PEER_HAS_ENDPOINT;
		}
		/*
		 * The pair's PSK of this epoch when both ends advertise PSKs (mesh/psk.c); none
		 * otherwise, which removes one the device holds. wg_device_diff counts a
		 * differing key as a change of the peer: at an epoch boundary every PSK peer
		 * changes, its session stays (docs/keys.md, rotation).
		 */
		if (in->psk && in->psk(in->psk_ctx, m, p->preshared_key) > 0)
			p->flags |= WG_PEER_HAS_PRESHARED_KEY;
		ips[i] = (struct ip_prefix){ .family = AF_INET, .len = 32 };
		ips[i].ip4.s_addr = mesh_overlay_addr(m->token);
		p->allowedips = &ips[i];
		p->n_allowedips = 1;
		p->persistent_keepalive = self->keepalive;
		/*
		 * A peer added with a keepalive is sent a handshake at once. When both sides of
		 * a pair add each other in the same instant (they follow the same block), both
		 * initiate, each one's state is overwritten by the other's initiation, both
		 * responses are dropped and the pair retries in step every REKEY_TIMEOUT (5 s).
		 * So only the lower token initiates at once; the higher one gets its keepalive
		 * a poll later (the next comparison), over the session by then.
		 */
		if (!have && st->token > m->token)
			p->persistent_keepalive = 0;
		if (p->persistent_keepalive)
			p->flags |= WG_PEER_HAS_KEEPALIVE;
	}
	want->n_peers = st->n_peers;
	return 0;
}

/* The first IPv4 allowed IP the device gives the peer with key (a removed peer's address), or NULL. */
static const char *device_peer_addr(const struct wg_device *dev, const uint8_t key[static WG_KEY_LEN],
				    char out[static INET_ADDRSTRLEN])
{
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wg_peer *p = &dev->peers[i];

		if (memcmp(p->public_key, key, WG_KEY_LEN))
			continue;
		for (size_t k = 0; k < p->n_allowedips; k++)
			if (p->allowedips[k].family == AF_INET)
				return inet_ntop(AF_INET, &p->allowedips[k].ip4, out, INET_ADDRSTRLEN);
		return NULL;
	}
	return NULL;
}

static void log_change(struct mesh_plan *plan, const struct mesh_state *st, const struct wg_device *dev,
		       const struct wg_peer *c)
{
	const struct mesh_peer *m = NULL;
	char key[WG_KEY_B64_LEN], addr[16], was[INET_ADDRSTRLEN];

	for (size_t i = 0; i < st->n_peers && !m; i++)
		if (!memcmp(st->peers[i].wg_key, c->public_key, WG_KEY_LEN))
			m = &st->peers[i];
	wg_key_to_base64(key, c->public_key);
	mesh_overlay_addr_str(m ? m->token : 0, addr);
	if ((c->flags & WG_PEER_REMOVE) && device_peer_addr(dev, c->public_key, was))
		say(plan, MESH_PLAN_INFO, "peer %s (%s): removed", was, key);
	else if (c->flags & WG_PEER_REMOVE)
		say(plan, MESH_PLAN_INFO, "peer %s: removed (no address on the interface)", key);
	else
		say(plan, MESH_PLAN_INFO, "peer %s (%s): %s%s%s%s%s%s", addr, key,
		    c->flags & WG_PEER_UPDATE_ONLY ? "updated" : "added",
		    (c->flags & WG_PEER_HAS_ENDPOINT) && m ? ", endpoint " : "",
		    (c->flags & WG_PEER_HAS_ENDPOINT) && m ? m->endpoint : "",
		    (c->flags & WG_PEER_UPDATE_ONLY) && (c->flags & WG_PEER_REPLACE_ALLOWEDIPS)
			    ? ", allowed IPs"
			    : "",
		    (c->flags & WG_PEER_UPDATE_ONLY) && (c->flags & WG_PEER_HAS_KEEPALIVE) ? ", keepalive"
											   : "",
		    (c->flags & WG_PEER_UPDATE_ONLY) && (c->flags & WG_PEER_HAS_PRESHARED_KEY)
			    ? ", pre-shared key"
			    : "");
}

/* The endpoints the plan sets (and those of unchanged peers), kept once it is applied. */
static void plan_applied(const struct mesh_state *st, const struct wg_device *want, struct mesh_plan *plan)
{
	struct mesh_applied *next = plan->applied;
	size_t n = 0;

	for (size_t i = 0; i < want->n_peers && n < REGISTRY_MAX_PEERS; i++) {
		const struct wg_peer *p = &want->peers[i];
		const struct mesh_applied *prev = applied_by_key(st, p->public_key);

		memcpy(next[n].key, p->public_key, WG_KEY_LEN);
		if (p->flags & WG_PEER_HAS_ENDPOINT)
			next[n].endpoint = p->endpoint;
		else if (prev)
			next[n].endpoint = prev->endpoint;
		else
			memset(&next[n].endpoint, 0, sizeof(next[n].endpoint));
		n++;
	}
	plan->n_applied = n;
}

void mesh_note_applied(struct mesh_state *st, const struct mesh_plan *plan)
{
	if (!plan->applied)
		return;
	memcpy(st->applied, plan->applied, plan->n_applied * sizeof(st->applied[0]));
	st->n_applied = plan->n_applied;
}

/*
 * The device against the desired state, every turn: a peer removed or changed by hand,
 * a foreign peer (even one claiming another node's overlay address) and a listen port
 * changed by hand are all repaired at once.
 */
static int decide_device(struct mesh_state *st, const struct mesh_self *self, const struct mesh_input *in,
			 struct mesh_plan *plan)
{
	const struct wg_device *dev = in->dev;
	struct wg_device want = { 0 };
	struct ip_prefix *ips;
	int r;

	plan->set_listen_port = dev->listen_port != self->listen_port;
	if (plan->set_listen_port)
		say(plan, MESH_PLAN_WARN, "the listen port of the interface is %u, not %u; restoring it",
		    dev->listen_port, self->listen_port);
	want.peers = calloc(st->n_peers + 1, sizeof(*want.peers));
	ips = calloc(st->n_peers + 1, sizeof(*ips));
	plan->applied = calloc(st->n_peers + 1, sizeof(*plan->applied));
	if (!want.peers || !ips || !plan->applied) {
		r = -ENOMEM;
		goto out;
	}
	desired_device(st, self, in, &want, ips);
	r = wg_device_diff(dev, &want, &plan->changes, &plan->n_changes);
	if (r < 0)
		goto out;
	/* The changes point into ips: the plan owns them now. */
	plan->ips = ips;
	ips = NULL;
	for (size_t i = 0; i < plan->n_changes; i++)
		log_change(plan, st, dev, &plan->changes[i]);
	plan_applied(st, &want, plan);
out:
	wipe_free(want.peers, (st->n_peers + 1) * sizeof(*want.peers)); /* pre-shared keys */
	free(ips);
	return r;
}

int mesh_decide(struct mesh_state *st, const struct mesh_self *self, const struct mesh_input *in,
		struct mesh_plan *plan)
{
	int r = 0;

	mesh_plan_clear(plan);
	if (in->have_view)
		r = decide_view(st, self, in, plan);
	else if (in->registry_read && !st->registered && !st->revoked && st->applied_view && !st->recheck)
		/* The registry is as it was at the last view: its records verify as they did and
		 * ours is still missing; only the registration's timing can have moved on. */
		decide_registration(st, self, in, plan);
	/* Before a first view, what the device holds (peers adopted from our last run) stays. */
	if (r == 0 && self->mode == REGISTRY_MODE_WIREGUARD && in->dev && st->applied_view)
		r = decide_device(st, self, in, plan);
	else if (r == 0 && self->mode == REGISTRY_MODE_WIREGUARD && in->dev)
		plan->set_listen_port = in->dev->listen_port != self->listen_port;
	if (self->mode == REGISTRY_MODE_WIREGUARD && st->token >= 1 && st->token <= REGISTRY_MAX_PEERS)
		plan->address_token = st->token;
	return r;
}
