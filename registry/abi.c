/* SPDX-License-Identifier: MIT */
/*
 * The registry contract's ABI: registerPeer calldata, the Peer[] that getPeers() returns
 * (decoded entry by entry, a malformed entry skipped rather than failing the rest), and
 * the small views the agent needs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "registry/internal.h"

/* Head slots of the Peer struct (docs/registry.md). */
enum peer_slot {
	PEER_TOKEN_ID, PEER_INSTANCE_ID, PEER_WG_KEY, PEER_ENDPOINT, PEER_MODE, PEER_NONCE,
	PEER_NODE_PUBKEY, PEER_APP_PUBKEY, PEER_APP_SIG, PEER_KMS_SIG, PEER_NODE_SIG,
	PEER_SLOTS
};

int registry_encode_register_call(const struct registry_record *rec, struct buf *calldata)
{
	struct abi_encoder call, reg;
	uint8_t sel[4];
	int r;

	if (!rec->endpoint || strlen(rec->endpoint) > REGISTRY_ENDPOINT_MAX)
		return -EINVAL;
	registry_fn_selector(REGISTRY_FN_REGISTER_PEER, sel);
	if ((r = buf_append(calldata, sel, 4)) < 0 || (r = abi_enc_begin(&call, calldata, 1)) < 0 ||
	    (r = abi_put_tuple_begin(&call, &reg, 10)) < 0)
		return r;
	if ((r = abi_put_address(&reg, rec->instance_id)) < 0 ||
	    (r = abi_put_word(&reg, rec->wg_public_key)) < 0 ||
	    (r = abi_put_string(&reg, rec->endpoint)) < 0 || (r = abi_put_uint64(&reg, rec->mode)) < 0 ||
	    (r = abi_put_uint64(&reg, rec->nonce)) < 0 ||
	    (r = abi_put_bytes(&reg, rec->node_pubkey, 64)) < 0 ||
	    (r = abi_put_bytes(&reg, rec->app_pubkey, 64)) < 0 ||
	    (r = abi_put_bytes(&reg, rec->app_signature, 65)) < 0 ||
	    (r = abi_put_bytes(&reg, rec->kms_signature, 65)) < 0 ||
	    (r = abi_put_bytes(&reg, rec->node_signature, 65)) < 0)
		return r;
	if ((r = abi_enc_end(&reg)) < 0)
		return r;
	return abi_enc_end(&call);
}

/* A bytes field that must be exactly n bytes long. */
static int get_exact_bytes(const struct abi_tuple *t, size_t slot, uint8_t *out, size_t n,
			   const char *what, char *why, size_t whylen)
{
	const uint8_t *p;
	size_t len;

	if (abi_get_bytes(t, slot, &p, &len) < 0) {
		snprintf(why, whylen, "%s: offset or length outside the reply", what);
		return -EPROTO;
	}
	if (len != n) {
		snprintf(why, whylen, "%s is %zu bytes, not %zu", what, len, n);
		return -EBADMSG;
	}
	memcpy(out, p, n);
	return 0;
}

/*
 * A Peer (getPeers, getPeerByToken: token id first) or, with base 1, a
 * PeerRegistration (registerPeer's argument: the same fields without the token id).
 */
static int decode_fields(const struct abi_tuple *t, size_t base, struct registry_record *p,
			 char *why, size_t whylen)
{
	const uint8_t *ep;
	uint64_t v;
	size_t n;
	int r;

	memset(p, 0, sizeof(*p));
	if (t->len < (PEER_SLOTS - base) * 32) {
		snprintf(why, whylen, "the entry ends inside its head");
		return -EPROTO;
	}
	if (!base && (r = abi_get_uint64(t, PEER_TOKEN_ID, &p->token_id)) < 0) {
		snprintf(why, whylen, "token id %s", r == -ERANGE ? "above 2^64" : "missing");
		return -EBADMSG;
	}
	if (abi_get_address(t, PEER_INSTANCE_ID - base, p->instance_id) < 0 ||
	    abi_get_fixed_bytes(t, PEER_WG_KEY - base, 32, p->wg_public_key) < 0 ||
	    abi_get_uint(t, PEER_MODE - base, 8, &v) < 0 || abi_get_uint64(t, PEER_NONCE - base, &p->nonce) < 0) {
		snprintf(why, whylen, "a fixed-size field is malformed");
		return -EBADMSG;
	}
	if (v > REGISTRY_MODE_WIREGUARD) {
		snprintf(why, whylen, "unknown network mode %llu", (unsigned long long)v);
		return -EBADMSG;
	}
	p->mode = (uint8_t)v;
	if (abi_get_bytes(t, PEER_ENDPOINT - base, &ep, &n) < 0) {
		snprintf(why, whylen, "endpoint: offset or length outside the reply");
		return -EPROTO;
	}
	if (n == 0 || n > REGISTRY_ENDPOINT_MAX || memchr(ep, '\0', n)) {
		if (!n)
			snprintf(why, whylen, "endpoint is empty");
		else if (n > REGISTRY_ENDPOINT_MAX)
			snprintf(why, whylen, "endpoint is %zu bytes, more than %d", n,
				 REGISTRY_ENDPOINT_MAX);
		else
			snprintf(why, whylen, "endpoint holds a NUL byte");
		return -EBADMSG;
	}
	if ((r = get_exact_bytes(t, PEER_NODE_PUBKEY - base, p->node_pubkey, 64, "node key", why, whylen)) < 0 ||
	    (r = get_exact_bytes(t, PEER_APP_PUBKEY - base, p->app_pubkey, 64, "app key", why, whylen)) < 0 ||
	    (r = get_exact_bytes(t, PEER_APP_SIG - base, p->app_signature, 65, "app signature", why, whylen)) < 0 ||
	    (r = get_exact_bytes(t, PEER_KMS_SIG - base, p->kms_signature, 65, "KMS signature", why, whylen)) < 0 ||
	    (r = get_exact_bytes(t, PEER_NODE_SIG - base, p->node_signature, 65, "node signature", why, whylen)) < 0)
		return r;
	p->endpoint = strndup((const char *)ep, n);
	return p->endpoint ? 0 : -ENOMEM;
}

void registry_records_free(struct registry_record *peers, size_t n)
{
	if (!peers)
		return;
	for (size_t i = 0; i < n; i++)
		registry_record_clear(&peers[i]);
	free(peers);
}

int registry_decode_peers(const uint8_t *data, size_t len, struct registry_record **out, size_t *n,
			  struct registry_skip *skips, size_t max_skips, size_t *nskips)
{
	struct registry_record *peers = NULL;
	struct abi_tuple top, arr, entry;
	size_t count, kept = 0, skipped = 0;
	int r;

	*out = NULL;
	*n = 0;
	if (nskips)
		*nskips = 0;
	abi_tuple_init(&top, data, len);
	r = abi_get_array(&top, 0, 1, &arr, &count);
	if (r < 0)
		return -EBADMSG;
	if (count > REGISTRY_MAX_PEERS)
		return -E2BIG;
	if (count) {
		peers = calloc(count, sizeof(*peers));
		if (!peers)
			return -ENOMEM;
	}
	for (size_t i = 0; i < count; i++) {
		char why[96] = "bad offset";

		r = abi_get_tuple(&arr, i, &entry);
		if (r == 0)
			r = decode_fields(&entry, 0, &peers[kept], why, sizeof(why));
		else
			r = -EPROTO;
		/*
		 * An entry that points outside the reply means the reply itself is cut short or
		 * forged, not that one record is bad: the whole read fails and nothing is removed.
		 */
		if (r == -ENOMEM || r == -EPROTO) {
			registry_record_clear(&peers[kept]);
			registry_records_free(peers, kept);
			if (nskips)
				*nskips = 0;
			return r == -ENOMEM ? r : -EBADMSG;
		}
		if (r < 0) {
			registry_record_clear(&peers[kept]);
			if (skips && skipped < max_skips) {
				skips[skipped].index = i;
				snprintf(skips[skipped].reason, sizeof(skips[skipped].reason), "%s", why);
			}
			skipped++;
			continue;
		}
		kept++;
	}
	if (nskips)
		*nskips = skipped < max_skips ? skipped : max_skips;
	if (!kept) {
		free(peers);
		peers = NULL;
	}
	*out = peers;
	*n = kept;
	return 0;
}

int registry_decode_peer(const uint8_t *data, size_t len, struct registry_record *p,
			 struct err_detail *why)
{
	struct abi_tuple top, entry;
	struct err_detail scratch;
	int r;

	if (!why)
		why = &scratch;
	memset(p, 0, sizeof(*p));
	abi_tuple_init(&top, data, len);
	/* abi.encode(Peer): one head word, the offset of the (dynamic) tuple. */
	if (abi_get_tuple(&top, 0, &entry) < 0) {
		err_detail_set(why, "the record's offset points outside the reply");
		return -EPROTO;
	}
	r = decode_fields(&entry, 0, p, why->text, sizeof(why->text));
	if (r < 0)
		registry_record_clear(p);
	return r;
}

int registry_decode_register_call(const uint8_t *data, size_t len, struct registry_record *p,
				  struct err_detail *why)
{
	struct abi_tuple args, reg;
	uint8_t sel[4];
	int r;

	memset(p, 0, sizeof(*p));
	registry_fn_selector(REGISTRY_FN_REGISTER_PEER, sel);
	if (len < 4 || memcmp(data, sel, 4)) {
		err_detail_set(why, "not a registerPeer call");
		return -EINVAL;
	}
	abi_tuple_init(&args, data + 4, len - 4);
	if (abi_get_tuple(&args, 0, &reg) < 0) {
		err_detail_set(why, "the record's offset points outside the calldata");
		return -EPROTO;
	}
	r = decode_fields(&reg, 1, p, why->text, sizeof(why->text));
	if (r < 0)
		registry_record_clear(p);
	return r;
}

/* ---- the contract's logs ----------------------------------------------------------------- */

/* A uint256 topic holding a token id 1..REGISTRY_MAX_PEERS. */
static int topic_token(const uint8_t word[static 32], uint64_t *token)
{
	uint64_t v = 0;

	for (int i = 0; i < 24; i++)
		if (word[i])
			return -EBADMSG;
	for (int i = 24; i < 32; i++)
		v = v << 8 | word[i];
	if (v < 1 || v > REGISTRY_MAX_PEERS)
		return -EBADMSG;
	*token = v;
	return 0;
}

int registry_log_token(const struct eth_log *log, const uint8_t contract[static 20], uint64_t *token)
{
	const struct registry_event *e;
	struct abi_tuple t;
	const uint8_t *p;
	size_t n, slot = 0;

	*token = 0;
	if (memcmp(log->address, contract, 20) || log->ntopics < 1 || log->ntopics > 4 ||
	    (log->data_len && !log->data))
		return -EBADMSG;
	e = registry_event_by_topic(log->topics[0]);
	if (!e || log->ntopics != e->ntopics)
		return -EBADMSG;
	if (!e->token_topic)
		return 0; /* no record changes: nothing of it is read */
	if (log->data_len < e->min_data || log->data_len > e->max_data || log->data_len % 32)
		return -EBADMSG;
	/* Every string the data holds lies inside it. */
	abi_tuple_init(&t, log->data, log->data_len);
	for (size_t i = 0; i < e->nparams; i++) {
		if (e->params[i].indexed)
			continue;
		if (!strcmp(e->params[i].type, "string") && abi_get_bytes(&t, slot, &p, &n) < 0)
			return -EBADMSG;
		slot++;
	}
	return topic_token(log->topics[e->token_topic], token) < 0 ? -EBADMSG : 1;
}

/* ---- views ----------------------------------------------------------------------------- */

/* Call a view taking no argument or one address and return its data. */
/* sig with no argument, one address, or one 32-byte word (word wins when both are given). */
static int call_view_any(struct eth_rpc *rpc, const uint8_t contract[static 20], const char *sig,
			 const uint8_t *addr_arg, const uint8_t *word_arg, const char *tag, struct buf *ret)
{
	struct abi_encoder e;
	struct buf calldata;
	uint8_t sel[4];
	int r;

	buf_init(&calldata, 0);
	abi_selector(sig, sel);
	r = buf_append(&calldata, sel, 4);
	if (r == 0 && (addr_arg || word_arg)) {
		if ((r = abi_enc_begin(&e, &calldata, 1)) == 0 &&
		    (r = word_arg ? abi_put_word(&e, word_arg) : abi_put_address(&e, addr_arg)) == 0)
			r = abi_enc_end(&e);
	}
	if (r == 0)
		r = eth_call(rpc, contract, calldata.data, calldata.len, tag ? tag : "latest", ret);
	if (r == 0 && ret->len == 0) {
		char hex[41];

		/* What a call to an address without code returns. */
		hex_encode(hex, contract, 20);
		eth_rpc_set_error(rpc, "%s returned nothing: is 0x%s the cluster contract, on this chain?",
			      sig, hex);
		r = -ENOENT;
	}
	buf_clear(&calldata);
	return r;
}

static int call_view(struct eth_rpc *rpc, const uint8_t contract[static 20], const char *sig,
		     const uint8_t *addr_arg, const char *tag, struct buf *ret)
{
	return call_view_any(rpc, contract, sig, addr_arg, NULL, tag, ret);
}

static int call_view_word(struct eth_rpc *rpc, const uint8_t contract[static 20], const char *sig,
			  const uint8_t word[static 32], struct buf *ret)
{
	return call_view_any(rpc, contract, sig, NULL, word, NULL, ret);
}

static int view_uint64(struct eth_rpc *rpc, const uint8_t contract[static 20], const char *sig,
		       const uint8_t *addr_arg, unsigned bits, uint64_t *out)
{
	struct abi_tuple t;
	struct buf ret;
	int r;

	buf_init(&ret, 0);
	r = call_view(rpc, contract, sig, addr_arg, NULL, &ret);
	if (r == 0) {
		abi_tuple_init(&t, ret.data, ret.len);
		r = abi_get_uint(&t, 0, bits, out);
		if (r < 0)
			eth_rpc_set_error(rpc, "%s: malformed return data (%zu bytes)", sig, ret.len);
	}
	buf_clear(&ret);
	return r;
}

int registry_nonce_of(struct eth_rpc *rpc, const uint8_t contract[static 20],
		      const uint8_t instance_id[static 20], uint64_t *nonce)
{
	return view_uint64(rpc, contract, registry_functions[REGISTRY_FN_NONCE_OF], instance_id, 64, nonce);
}

int registry_token_of_instance(struct eth_rpc *rpc, const uint8_t contract[static 20],
			       const uint8_t instance_id[static 20], uint64_t *token)
{
	return view_uint64(rpc, contract, registry_functions[REGISTRY_FN_TOKEN_OF_INSTANCE], instance_id, 64,
			   token);
}

int registry_psk_epoch(struct eth_rpc *rpc, const uint8_t contract[static 20], uint64_t *seconds)
{
	uint64_t v;
	int r = view_uint64(rpc, contract, registry_functions[REGISTRY_FN_PSK_EPOCH], NULL, 64, &v);

	if (r == 0 && (v < REGISTRY_PSK_EPOCH_MIN || v > REGISTRY_PSK_EPOCH_MAX)) {
		eth_rpc_set_error(rpc, "pskEpoch(): %llu s is outside 30 s .. 30 days",
				  (unsigned long long)v);
		return -EBADMSG;
	}
	if (r == 0)
		*seconds = v;
	return r;
}

int registry_instance_is_registered(struct eth_rpc *rpc, const uint8_t contract[static 20],
				    const uint8_t instance_id[static 20], bool *registered)
{
	uint64_t v;
	int r = view_uint64(rpc, contract, registry_functions[REGISTRY_FN_INSTANCE_IS_REGISTERED],
			    instance_id, 8, &v);

	if (r == 0 && v > 1) {
		eth_rpc_set_error(rpc, "instanceIsRegistered: not a bool");
		return -EBADMSG;
	}
	if (r == 0)
		*registered = v;
	return r;
}

/* A view taking one uint256 argument. */
static int call_view_uint(struct eth_rpc *rpc, const uint8_t contract[static 20], const char *sig,
			  uint64_t arg, struct buf *ret)
{
	uint8_t word[32] = { 0 };

	for (int i = 0; i < 8; i++)
		word[31 - i] = (uint8_t)(arg >> (8 * i));
	/* The same head slot as an address argument, left-padded: one word. */
	return call_view_word(rpc, contract, sig, word, ret);
}

int registry_label_of(struct eth_rpc *rpc, const uint8_t contract[static 20], uint64_t token,
		      char *out, size_t cap)
{
	struct abi_tuple t;
	const uint8_t *p;
	struct buf ret;
	size_t len;
	int r;

	buf_init(&ret, 0);
	r = call_view_uint(rpc, contract, registry_functions[REGISTRY_FN_LABEL_OF], token, &ret);
	if (r == 0) {
		abi_tuple_init(&t, ret.data, ret.len);
		r = abi_get_bytes(&t, 0, &p, &len);
		if (r == 0 && len >= cap)
			r = -EBADMSG;
		/* It goes into JSON, hosts files and the environment: printable ASCII only. */
		for (size_t i = 0; r == 0 && i < len; i++)
			if (p[i] <= ' ' || p[i] > '~')
				r = -EBADMSG;
		if (r == 0) {
			memcpy(out, p, len);
			out[len] = '\0';
		} else {
			eth_rpc_set_error(rpc, "labelOf(%llu): not a printable label of at most %zu bytes",
				      (unsigned long long)token, cap - 1);
		}
	}
	buf_clear(&ret);
	return r;
}

int registry_leader_nonce(struct eth_rpc *rpc, const uint8_t contract[static 20], uint64_t token, uint64_t *nonce)
{
	struct abi_tuple t;
	struct buf ret;
	int r;

	buf_init(&ret, 0);
	r = call_view_uint(rpc, contract, registry_functions[REGISTRY_FN_LEADER_ACTION_NONCE], token, &ret);
	if (r == 0) {
		abi_tuple_init(&t, ret.data, ret.len);
		r = abi_get_uint(&t, 0, 64, nonce);
		if (r < 0)
			eth_rpc_set_error(rpc, "leaderActionNonce: malformed return data (%zu bytes)", ret.len);
	}
	buf_clear(&ret);
	return r;
}

int registry_leader_state(struct eth_rpc *rpc, const uint8_t contract[static 20], struct registry_leader *out)
{
	struct abi_tuple t;
	struct buf ret;
	int r;

	buf_init(&ret, 0);
	r = call_view(rpc, contract, registry_functions[REGISTRY_FN_LEADER_STATE], NULL, NULL, &ret);
	if (r == 0) {
		abi_tuple_init(&t, ret.data, ret.len);
		if (abi_get_uint(&t, 0, 64, &out->token) < 0 || abi_get_address(&t, 1, out->instance_id) < 0 ||
		    abi_get_uint(&t, 2, 64, &out->term) < 0 || abi_get_uint(&t, 3, 64, &out->expiry) < 0 ||
		    abi_get_uint(&t, 4, 64, &out->votes) < 0 || abi_get_uint(&t, 5, 64, &out->required) < 0 ||
		    out->token > REGISTRY_MAX_PEERS) {
			eth_rpc_set_error(rpc, "leaderState(): malformed return data (%zu bytes)", ret.len);
			r = -EBADMSG;
		}
	}
	buf_clear(&ret);
	return r;
}

int registry_kms_root(struct eth_rpc *rpc, const uint8_t contract[static 20],
		      uint8_t kms_root[static 20])
{
	struct abi_tuple t;
	struct buf ret;
	int r;

	buf_init(&ret, 0);
	r = call_view(rpc, contract, registry_functions[REGISTRY_FN_KMS_ROOT], NULL, NULL, &ret);
	if (r == 0) {
		abi_tuple_init(&t, ret.data, ret.len);
		r = abi_get_address(&t, 0, kms_root);
		if (r < 0)
			eth_rpc_set_error(rpc, "kmsRoot(): malformed return data (%zu bytes)", ret.len);
	}
	buf_clear(&ret);
	return r;
}

int registry_check_cluster(struct eth_rpc *rpc, const uint8_t contract[static 20])
{
	static const char typehash_text[] = "dstack-p2p.PeerRecord.v1";
	uint8_t want[32];
	struct buf ret, calldata;
	uint8_t sel[4];
	size_t code = 0;
	int r;

	r = eth_get_code_size(rpc, contract, "latest", &code);
	if (r < 0)
		return r;
	if (!code)
		return -ENOTTY;
	buf_init(&ret, 0);
	buf_init(&calldata, 0);
	registry_fn_selector(REGISTRY_FN_PEER_RECORD_TYPEHASH, sel);
	r = buf_append(&calldata, sel, 4);
	if (r == 0)
		r = eth_call(rpc, contract, calldata.data, calldata.len, "latest", &ret);
	keccak256(want, typehash_text, sizeof(typehash_text) - 1);
	/* A revert (no such function) is an answer too: not a cluster. Other errors: the RPC's. */
	if ((r == -EREMOTEIO && strstr(eth_rpc_error(rpc), "revert")) ||
	    (r == 0 && (ret.len != 32 || memcmp(ret.data, want, 32))))
		r = -EPROTOTYPE;
	buf_clear(&ret);
	buf_clear(&calldata);
	return r;
}

int registry_read_peers(struct eth_rpc *rpc, const uint8_t contract[static 20], const char *tag,
			struct registry_record **peers, size_t *n, struct registry_skip *skips,
			size_t max_skips, size_t *nskips)
{
	struct buf ret;
	int r;

	buf_init(&ret, 0);
	r = call_view(rpc, contract, registry_functions[REGISTRY_FN_GET_PEERS], NULL, tag, &ret);
	if (r == 0) {
		r = registry_decode_peers(ret.data, ret.len, peers, n, skips, max_skips, nskips);
		if (r < 0)
			eth_rpc_set_error(rpc, "getPeers() at %s: %s return data (%zu bytes)", tag,
				      r == -E2BIG ? "more peers than the registry can hold in"
						  : "malformed", ret.len);
	}
	buf_clear(&ret);
	return r;
}

int registry_send_registration(struct eth_rpc *rpc, uint64_t chain_id,
			       const uint8_t contract[static 20], const struct registry_record *rec,
			       const uint8_t tx_key[static 32], long timeout_ms, struct eth_receipt *rc)
{
	struct buf calldata;
	int r;

	buf_init(&calldata, 0);
	r = registry_encode_register_call(rec, &calldata);
	if (r < 0)
		eth_rpc_set_error(rpc, "the record cannot be encoded (endpoint missing or too long)");
	else
		r = eth_send_transaction(rpc, tx_key, contract, calldata.data, calldata.len,
					 &(struct eth_send_opts){ .chain_id = chain_id,
								  .timeout_ms = timeout_ms }, rc);
	buf_clear(&calldata);
	return r;
}
