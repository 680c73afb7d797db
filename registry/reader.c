/* SPDX-License-Identifier: MIT */
/*
 * Following the registry: one batched round trip per idle poll (the head, the block we
 * last read at, and the contract's logs since then). The logs name the tokens whose
 * records changed; only those are read (getPeerByToken, one batch pinned to the new head)
 * and patched into the set. getPeers() in full only to resync: the first poll, a reorg of
 * the block we read at, a gap wider than the provider's log range, a log we cannot take at
 * its word, a removed log, more than READER_MAX_CHANGED tokens, a record read by token
 * that is not what the logs said (below), or when asked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "registry/internal.h"

#define READER_MAX_SKIPS 8
/* Named tokens above this: one getPeers() costs less than that many getPeerByToken. */
#define READER_MAX_CHANGED 64
/* One getPeerByToken reply: a Peer is about 1.2 KB at the longest endpoint. */
#define READER_MAX_RECORD 8192

struct registry_reader {
	struct eth_rpc *rpc;  /* borrowed */
	uint8_t contract[20];
	uint64_t expected_chain_id;
	bool synced;           /* peers hold getPeers() as of block `at` */
	bool resync;           /* the next poll reads getPeers() in full (and the chain id) */
	struct eth_block at;
	struct registry_record *peers;
	size_t npeers;
	struct registry_skip skips[READER_MAX_SKIPS];
	size_t nskips;
	struct registry_reader_stats stats;
	/* since the last registry_reader_take_named: tokens read one by one, or a full read */
	bool taken_named[REGISTRY_MAX_PEERS + 1];
	size_t taken_count;
	bool taken_full;
	uint64_t taken_from;    /* the block they were read from */
	/* registry_reader_token_version: by token, the value of seq when a read last saw it change */
	uint64_t seq;
	uint64_t version[REGISTRY_MAX_PEERS + 1];
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

uint64_t registry_reader_token_version(const struct registry_reader *r, uint64_t token)
{
	return token >= 1 && token <= REGISTRY_MAX_PEERS ? r->version[token] : 0;
}

void registry_reader_resync(struct registry_reader *r, uint64_t expected_chain_id)
{
	r->expected_chain_id = expected_chain_id;
	r->resync = true;
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

/* A new version for each token whose record a full read finds other than before (or new, or gone). */
static void note_versions(struct registry_reader *r, const struct registry_record *peers, size_t n)
{
	const struct registry_record *was[REGISTRY_MAX_PEERS + 1] = { NULL }, *is[REGISTRY_MAX_PEERS + 1] = { NULL };

	for (size_t i = 0; i < r->npeers; i++)
		if (r->peers[i].token_id >= 1 && r->peers[i].token_id <= REGISTRY_MAX_PEERS)
			was[r->peers[i].token_id] = &r->peers[i];
	for (size_t i = 0; i < n; i++)
		if (peers[i].token_id >= 1 && peers[i].token_id <= REGISTRY_MAX_PEERS)
			is[peers[i].token_id] = &peers[i];
	r->seq++;
	for (size_t t = 1; t <= REGISTRY_MAX_PEERS; t++)
		if (!was[t] != !is[t] || (was[t] && !peer_equal(was[t], is[t])))
			r->version[t] = r->seq;
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
	note_versions(r, peers, n);
	registry_records_free(r->peers, r->npeers);
	r->peers = peers;
	r->npeers = n;
	r->at = *head;
	r->synced = true;
	r->resync = false;
	r->taken_full = true;
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
	r->stats.head = head.number;
	err = full_read(r, &head, changed);
out:
	eth_rpc_call_clear(&c[0]);
	eth_rpc_call_clear(&c[1]);
	return err;
}

/*
 * What the logs of the range say a named token's record is after them: its last record
 * event (the contract writes a record only where it emits PeerRegistered or PeerUpdated
 * with the record's fields, and deletes one only where it emits PeerRemoved). NONE: no
 * record event, the record is as it was (a mint, a bind, an unbind of a token without one).
 */
enum logged_kind { LOGGED_NONE, LOGGED_SET, LOGGED_REMOVED };

struct logged {
	uint8_t kind;             /* enum logged_kind */
	uint8_t instance[20];
	uint8_t wg_key[32];
	uint8_t mode[32];         /* the ABI words, as logged */
	uint8_t nonce[32];
	uint8_t endpoint_hash[32];
};

/* Note what a log that registry_log_token decoded (so its data is whole) says of *l. */
static void note_logged(const struct eth_log *log, struct logged *l)
{
	const struct registry_event *e = registry_event_by_topic(log->topics[0]);
	struct abi_tuple tu;
	const uint8_t *ep;
	size_t n;

	if (e == registry_event_get(REGISTRY_EV_PEER_REMOVED)) {
		l->kind = LOGGED_REMOVED;
		return;
	}
	if (e != registry_event_get(REGISTRY_EV_PEER_REGISTERED) &&
	    e != registry_event_get(REGISTRY_EV_PEER_UPDATED))
		return;
	/* data: wgPublicKey, endpoint (offset), mode, nonce; topics: token, instance */
	abi_tuple_init(&tu, log->data, log->data_len);
	if (abi_get_bytes(&tu, 1, &ep, &n) < 0)
		return;  /* (not reached: registry_log_token checked it) */
	l->kind = LOGGED_SET;
	memcpy(l->instance, log->topics[2] + 12, 20);
	memcpy(l->wg_key, log->data, 32);
	memcpy(l->mode, log->data + 64, 32);
	memcpy(l->nonce, log->data + 96, 32);
	keccak256(l->endpoint_hash, ep, n);
}

/*
 * The tokens named by the logs of blocks at+1 .. head into named[], their count in
 * *count, and what the logs say of each into logged[]. false when the reply cannot be
 * taken at its word (a failed or malformed query, a removed log, a log that does not
 * decode): then only a full read is safe. Logs past head are left for the next poll,
 * which asks again from head.
 */
static bool logs_tokens(const struct registry_reader *r, const struct eth_rpc_call *c,
			const struct eth_block *head, bool named[static REGISTRY_MAX_PEERS + 1],
			struct logged logged[static REGISTRY_MAX_PEERS + 1], size_t *count)
{
	struct eth_log *logs = NULL;
	size_t n = 0;
	bool ok = true;

	*count = 0;
	if (c->error || c->result_type != JSON_ARRAY ||
	    eth_parse_logs(c->result, c->result_len, &logs, &n) < 0) {
		eth_logs_free(logs, n);
		return false;
	}
	for (size_t i = 0; i < n && ok; i++) {
		uint64_t token;
		int k;

		if (logs[i].removed) {
			ok = false;
			break;
		}
		if (logs[i].block_number <= r->at.number || logs[i].block_number > head->number)
			continue;
		k = registry_log_token(&logs[i], r->contract, &token);
		if (k < 0)
			ok = false;
		else if (k == 1) {
			if (!named[token]) {
				named[token] = true;
				(*count)++;
			}
			note_logged(&logs[i], &logged[token]);
		}
	}
	eth_logs_free(logs, n);
	return ok;
}

/* getPeerByToken(token) at tag as JSON-RPC params (eth_call). */
static int peer_call_params(const uint8_t contract[static 20], uint64_t token, const char *tag,
			    char *out, size_t cap)
{
	uint8_t data[36] = { 0 };
	char addr[41], hex[73];
	int n;

	registry_fn_selector(REGISTRY_FN_GET_PEER_BY_TOKEN, data);
	for (int i = 0; i < 8; i++)
		data[35 - i] = (uint8_t)(token >> (8 * i));
	hex_encode(addr, contract, 20);
	hex_encode(hex, data, 36);
	n = snprintf(out, cap, "[{\"to\":\"0x%s\",\"data\":\"0x%s\"},\"%s\"]", addr, hex, tag);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

/* A revert with TokenHasNoPeer(token): the token has no record (any other error: unknown). */
static bool reverted_no_peer(const struct eth_rpc_call *c, uint64_t token)
{
	uint8_t sel[4], *data = NULL;
	size_t n = 0;
	bool yes;

	if (c->error != -EREMOTEIO || !c->data ||
	    eth_parse_data(c->data, strlen(c->data), 36, &data, &n) < 0)
		return false;
	abi_selector("TokenHasNoPeer(uint256)", sel);
	yes = n == 36 && !memcmp(data, sel, 4);
	for (int i = 4; yes && i < 28; i++)
		yes = data[i] == 0;
	for (int i = 0; yes && i < 8; i++)
		yes = data[35 - i] == (uint8_t)(token >> (8 * i));
	free(data);
	return yes;
}

/*
 * One reply of getPeerByToken(token): 1 with *p filled (a record), 0 (no record: a
 * TokenHasNoPeer revert or empty return data), -EBADMSG when it proves nothing (another
 * error, a malformed or mismatched record): the caller falls back to a full read.
 */
static int peer_reply(const struct eth_rpc_call *c, uint64_t token, struct registry_record *p)
{
	uint8_t *data = NULL;
	size_t n = 0;
	int r;

	if (c->error)
		return reverted_no_peer(c, token) ? 0 : -EBADMSG;
	if (c->result_type != JSON_STRING ||
	    eth_parse_data(c->result, c->result_len, READER_MAX_RECORD, &data, &n) < 0)
		return -EBADMSG;
	r = n ? registry_decode_peer(data, n, p, NULL) : 0;
	free(data);
	if (r == 0 && n && p->token_id != token) {
		registry_record_clear(p);
		r = -EBADMSG;
	}
	if (r < 0)
		return r == -ENOMEM ? r : -EBADMSG;
	return n ? 1 : 0;
}

static int peer_by_token_id(const void *x, const void *y)
{
	const struct registry_record *a = x, *b = y;

	return (a->token_id > b->token_id) - (a->token_id < b->token_id);
}

/*
 * The set with the named tokens' records replaced by got[] (n_got records; a named token
 * without one is removed). Takes the records of got; *changed when the set differs.
 */
int registry_peers_patch(struct registry_record **peers, size_t *npeers,
			 const bool named[static REGISTRY_MAX_PEERS + 1], struct registry_record *got,
			 size_t n_got, bool *changed)
{
	struct registry_record *old = *peers, *next;
	size_t n = 0, n_old = *npeers;

	*changed = false;
	next = calloc(n_old + n_got + 1, sizeof(*next));
	if (!next)
		return -ENOMEM;
	for (size_t i = 0; i < n_old; i++) {
		uint64_t t = old[i].token_id;

		if (t >= 1 && t <= REGISTRY_MAX_PEERS && named[t])
			continue;
		next[n++] = old[i];
	}
	if (n_got) /* got may be NULL when there is nothing: memcpy(_, NULL, 0) is undefined */
		memcpy(next + n, got, n_got * sizeof(*got));
	n += n_got;
	qsort(next, n, sizeof(*next), peer_by_token_id);
	/* Changed unless every named token's record is as before (same records, same order). */
	*changed = n != n_old;
	for (size_t i = 0, j = 0; i < n && !*changed; i++, j++)
		*changed = !peer_equal(&next[i], &old[j]);
	/* The kept records moved to next: free only the replaced ones. */
	for (size_t i = 0; i < n_old; i++) {
		uint64_t t = old[i].token_id;

		if (t >= 1 && t <= REGISTRY_MAX_PEERS && named[t])
			registry_record_clear(&old[i]);
	}
	free(old);
	if (!n) {
		free(next);
		next = NULL;
	}
	*peers = next;
	*npeers = n;
	return 0;
}

int registry_read_tokens(struct eth_rpc *rpc, const uint8_t contract[static 20], const char *tag,
			 const bool named[static REGISTRY_MAX_PEERS + 1], size_t count,
			 struct registry_record **out, size_t *n_out)
{
	enum { PARAMS_MAX = 192 };
	struct eth_rpc_call *c = calloc(count + 1, sizeof(*c));
	struct registry_record *got = calloc(count + 1, sizeof(*got));
	char *params = malloc((count + 1) * PARAMS_MAX);
	uint64_t *tokens = calloc(count + 1, sizeof(*tokens));
	size_t n = 0, n_got = 0;
	int err = -ENOMEM;

	*out = NULL;
	*n_out = 0;
	if (!c || !got || !params || !tokens)
		goto out;
	for (uint64_t t = 1; t <= REGISTRY_MAX_PEERS && n < count; t++) {
		if (!named[t])
			continue;
		tokens[n] = t;
		c[n].method = "eth_call";
		c[n].params = params + n * PARAMS_MAX;
		err = peer_call_params(contract, t, tag, params + n * PARAMS_MAX, PARAMS_MAX);
		if (err < 0)
			goto out;
		n++;
	}
	err = n ? eth_rpc_batch(rpc, c, n) : 0;
	if (err == -E2BIG || err == -EMSGSIZE)
		err = 1;
	if (err != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		int k = peer_reply(&c[i], tokens[i], &got[n_got]);

		if (k < 0) {
			err = k == -ENOMEM ? k : 1;
			goto out;
		}
		n_got += (size_t)k;
	}
	*out = got;
	*n_out = n_got;
	got = NULL;
	n_got = 0;
out:
	for (size_t i = 0; i < n; i++)
		eth_rpc_call_clear(&c[i]);
	for (size_t i = 0; i < n_got; i++)
		registry_record_clear(&got[i]);
	free(c);
	free(got);
	free(params);
	free(tokens);
	return err;
}

/*
 * The tokens named since the last registry_reader_take_named, for its caller, and a new
 * version of each: a log named it (a mint or burn may leave its record as it was).
 */
static void note_named(struct registry_reader *r, const bool named[static REGISTRY_MAX_PEERS + 1])
{
	r->seq++;
	for (size_t t = 1; t <= REGISTRY_MAX_PEERS; t++)
		if (named[t])
			r->version[t] = r->seq;
	for (size_t t = 1; t <= REGISTRY_MAX_PEERS; t++)
		if (named[t] && !r->taken_named[t]) {
			r->taken_named[t] = true;
			r->taken_count++;
		}
}

static void word_of_u64(uint8_t out[static 32], uint64_t v)
{
	memset(out, 0, 32);
	for (int i = 0; i < 8; i++)
		out[31 - i] = (uint8_t)(v >> (8 * i));
}

/* Is rec (NULL: none) what the logs said of its token, or as before (old) when they said nothing? */
static bool read_as_logged(const struct logged *l, const struct registry_record *rec,
			   const struct registry_record *old)
{
	uint8_t w[32], h[32];

	if (l->kind == LOGGED_REMOVED)
		return !rec;
	if (l->kind == LOGGED_NONE)
		return rec && old ? peer_equal(rec, old) : !rec && !old;
	if (!rec || memcmp(rec->instance_id, l->instance, 20) || memcmp(rec->wg_public_key, l->wg_key, 32))
		return false;
	word_of_u64(w, rec->mode);
	if (memcmp(w, l->mode, 32))
		return false;
	word_of_u64(w, rec->nonce);
	keccak256(h, rec->endpoint, strlen(rec->endpoint));
	return !memcmp(w, l->nonce, 32) && !memcmp(h, l->endpoint_hash, 32);
}

/*
 * Is every record read by token (got[], sorted by token) what the logs said? A record gone
 * with no PeerRemoved, or other than the PeerRegistered / PeerUpdated that named it, is
 * what a lying RPC answers to tear a live peer down by token (a TokenHasNoPeer revert, a
 * forged key or endpoint that fails verification): only a full read at the same block may
 * say so. (A lie in the logs and the reads together is one in getPeers(): decide.c's.)
 */
static bool reads_as_logged(const struct registry_reader *r,
			    const bool named[static REGISTRY_MAX_PEERS + 1],
			    const struct logged logged[static REGISTRY_MAX_PEERS + 1],
			    const struct registry_record *got, size_t n_got)
{
	const struct registry_record *now[REGISTRY_MAX_PEERS + 1] = { NULL };
	const struct registry_record *old[REGISTRY_MAX_PEERS + 1] = { NULL };

	for (size_t i = 0; i < n_got; i++)
		if (got[i].token_id >= 1 && got[i].token_id <= REGISTRY_MAX_PEERS)
			now[got[i].token_id] = &got[i];
	for (size_t i = 0; i < r->npeers; i++)
		if (r->peers[i].token_id >= 1 && r->peers[i].token_id <= REGISTRY_MAX_PEERS)
			old[r->peers[i].token_id] = &r->peers[i];
	for (size_t t = 1; t <= REGISTRY_MAX_PEERS; t++)
		if (named[t] && !read_as_logged(&logged[t], now[t], old[t]))
			return false;
	return true;
}

/*
 * Read the named tokens' records at head in one batch and patch them into the set.
 * 1: the replies prove nothing, or are not what the logs said (read in full instead);
 * 0 or negative errno (the set as before).
 */
static int read_named(struct registry_reader *r, const struct eth_block *head,
		      const bool named[static REGISTRY_MAX_PEERS + 1],
		      const struct logged logged[static REGISTRY_MAX_PEERS + 1], size_t count, bool *changed)
{
	struct registry_record *got;
	char tag[ETH_BLOCK_TAG_MAX];
	size_t n_got;
	int err;

	eth_block_tag(tag, head->number);
	err = registry_read_tokens(r->rpc, r->contract, tag, named, count, &got, &n_got);
	if (err != 0)
		return err;
	if (!reads_as_logged(r, named, logged, got, n_got)) {
		registry_records_free(got, n_got);
		return 1;
	}
	r->stats.records_read += count;
	err = registry_peers_patch(&r->peers, &r->npeers, named, got, n_got, changed);
	if (err < 0) {
		registry_records_free(got, n_got);
		return err;
	}
	free(got);  /* the records are the set's now */
	r->stats.patches++;
	r->at = *head;
	note_named(r, named);
	return 0;
}

bool registry_reader_take_named(struct registry_reader *r, bool named[static REGISTRY_MAX_PEERS + 1],
				uint64_t *from)
{
	bool ok = !r->taken_full && r->synced && r->taken_count <= READER_MAX_CHANGED;

	if (ok) {
		memcpy(named, r->taken_named, sizeof(r->taken_named));
		*from = r->taken_from;
	}
	memset(r->taken_named, 0, sizeof(r->taken_named));
	r->taken_count = 0;
	r->taken_full = false;
	r->taken_from = r->at.number;
	return ok;
}

/* Follow from `at` to head: read only what the logs name, or everything when they cannot say. */
static int follow(struct registry_reader *r, const struct eth_rpc_call *logs,
		  const struct eth_block *head, bool *changed)
{
	bool named[REGISTRY_MAX_PEERS + 1] = { false };
	struct logged *logged = calloc(REGISTRY_MAX_PEERS + 1, sizeof(*logged));
	size_t count;
	int err;

	if (!logged)
		return -ENOMEM;
	if (!logs_tokens(r, logs, head, named, logged, &count) || count > READER_MAX_CHANGED)
		err = full_read(r, head, changed);
	else if (!count) {
		r->at = *head;
		err = 0;
	} else {
		err = read_named(r, head, named, logged, count, changed);
		if (err == 1)
			err = full_read(r, head, changed);
	}
	free(logged);
	return err;
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
	bool reorg;
	int err;

	*changed = false;
	if (!r->synced || r->resync)
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
		if (err == 0) {
			r->stats.head = head.number;
			err = full_read(r, &head, changed);
		}
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
	r->stats.head = head.number;
	if (!memcmp(head.hash, r->at.hash, 32))
		goto out;  /* no new block: idle */
	/* The block we read at must still be on the chain, or what we read may be gone. */
	reorg = head.number < r->at.number || c[1].error || c[1].result_type != JSON_OBJECT ||
		eth_parse_block(c[1].result, c[1].result_len, &then) < 0 ||
		memcmp(then.hash, r->at.hash, 32);
	if (reorg)
		r->stats.reorgs++;
	if (reorg || head.number - r->at.number > eth_rpc_max_log_range(r->rpc))
		err = full_read(r, &head, changed);
	else
		err = follow(r, &c[2], &head, changed);
out:
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		eth_rpc_call_clear(&c[i]);
	return err;
}
