/* SPDX-License-Identifier: MIT */
/*
 * chain: everything the agent needs from Ethereum, in C: Keccak-256, secp256k1 keys and
 * recoverable signatures, the Solidity ABI, RLP and signed EIP-1559 transactions, a
 * JSON-RPC client (HTTP(S) and IPC; batches, retries, failover), and the cluster registry
 * (docs/registry.md): its record, its calls and a reorg-aware follower. docs/chain.md
 * explains the choices. Every fallible function returns 0 or a negative errno; for RPC
 * failures eth_rpc_last_error() says what and where.
 */
#ifndef DSTACK_P2P_CHAIN_H
#define DSTACK_P2P_CHAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* ---- Keccak-256 ------------------------------------------------------------------- */

/* Ethereum's Keccak-256 (original padding 0x01 .. 0x80), not FIPS-202 SHA3-256. */
#define KECCAK256_RATE 136

struct keccak256_ctx {
	uint64_t lanes[25];
	size_t absorbed;  /* bytes of the current block already xored into lanes */
};

void keccak256_init(struct keccak256_ctx *c);
void keccak256_update(struct keccak256_ctx *c, const void *data, size_t len);
/* Writes the digest and wipes the context. */
void keccak256_final(struct keccak256_ctx *c, uint8_t out[static 32]);
void keccak256(uint8_t out[static 32], const void *data, size_t len);

/* ---- secp256k1 keys and recoverable signatures ---------------------------------------- */

/* Public key x||y (no 0x04 prefix) of a secret key; -EINVAL if sk is zero or >= n. */
int eth_pubkey_from_secret(const uint8_t sk[static 32], uint8_t pub64[static 64]);
/* keccak256(x||y)[12:] */
void eth_address_from_pubkey(const uint8_t pub64[static 64], uint8_t addr[static 20]);
/* SEC1 compressed form: 0x02|0x03 (parity of y) || x. */
void eth_compress_pubkey(const uint8_t pub64[static 64], uint8_t out33[static 33]);
/* -EINVAL when in33 is not a point on the curve. */
int eth_decompress_pubkey(const uint8_t in33[static 33], uint8_t pub64[static 64]);
/* Deterministic (RFC 6979) signature r||s||v over a 32-byte digest; v in {0,1}, s low. */
int eth_sign_digest(const uint8_t sk[static 32], const uint8_t digest[static 32],
		    uint8_t sig65[static 65]);
/* Recover the signer; v may be 0/1 or 27/28. -EINVAL for other v, high s, or no key. */
int eth_recover_pubkey(const uint8_t digest[static 32], const uint8_t sig65[static 65],
		       uint8_t pub64[static 64]);

/* ---- Solidity ABI ----------------------------------------------------------------------- */

/* First 4 bytes of keccak256("name(type,...)"), and an event's topic 0 (all 32 bytes). */
void abi_selector(const char *signature, uint8_t out[static 4]);
void abi_event_topic(const char *signature, uint8_t out[static 32]);

/*
 * Encoder. abi_enc_begin reserves the head of a tuple of nslots words at the end of out;
 * each abi_put_* fills the next head slot, dynamic values appending their tail to out.
 * A static tuple or T[k] takes its words inline (put each member); a dynamic tuple or
 * T[] is a child encoder, finished with abi_enc_end before the parent's next put.
 * Puts return -ENOSPC past nslots; abi_enc_end -EINVAL when slots are left unfilled.
 */
struct abi_encoder {
	struct buf *out;
	size_t start;   /* where this tuple's head begins in out */
	size_t nslots;
	size_t next;
};

int abi_enc_begin(struct abi_encoder *e, struct buf *out, size_t nslots);
int abi_put_uint64(struct abi_encoder *e, uint64_t v);            /* any uintN that fits */
int abi_put_word(struct abi_encoder *e, const uint8_t word[static 32]); /* uint256 BE, bytes32 */
int abi_put_address(struct abi_encoder *e, const uint8_t addr[static 20]);
int abi_put_bool(struct abi_encoder *e, bool v);
int abi_put_fixed_bytes(struct abi_encoder *e, const void *p, size_t n);  /* bytesN, n <= 32 */
int abi_put_bytes(struct abi_encoder *e, const void *p, size_t n);
int abi_put_string(struct abi_encoder *e, const char *s);
int abi_put_tuple_begin(struct abi_encoder *e, struct abi_encoder *child, size_t nslots);
/* T[]: count elements of words_per_element head words each (1 for dynamic T). */
int abi_put_array_begin(struct abi_encoder *e, struct abi_encoder *child, size_t count,
			size_t words_per_element);
int abi_enc_end(const struct abi_encoder *e);

/*
 * Decoder: a view of one encoded tuple. Offsets in its head are relative to data and
 * every read is checked against len, so a hostile reply can neither make us read outside
 * it nor claim more array elements than it holds words for. Malformed data: -EBADMSG;
 * an integer too wide for the requested type: -ERANGE. Pointers returned point into data.
 */
struct abi_tuple {
	const uint8_t *data;
	size_t len;
};

void abi_tuple_init(struct abi_tuple *t, const uint8_t *data, size_t len);
int abi_get_word(const struct abi_tuple *t, size_t slot, const uint8_t **word);
/* uintN with N in 8..64: higher bits set is -ERANGE. */
int abi_get_uint(const struct abi_tuple *t, size_t slot, unsigned bits, uint64_t *out);
int abi_get_uint64(const struct abi_tuple *t, size_t slot, uint64_t *out);
int abi_get_address(const struct abi_tuple *t, size_t slot, uint8_t out[static 20]);
int abi_get_bool(const struct abi_tuple *t, size_t slot, bool *out);
/* bytesN, n in 1..32: the padding must be zero. */
int abi_get_fixed_bytes(const struct abi_tuple *t, size_t slot, size_t n, uint8_t *out);
int abi_get_bytes(const struct abi_tuple *t, size_t slot, const uint8_t **p, size_t *n);
int abi_get_tuple(const struct abi_tuple *t, size_t slot, struct abi_tuple *sub);
/* T[]: elements is the tuple of count * words_per_element head words (1 for dynamic T). */
int abi_get_array(const struct abi_tuple *t, size_t slot, size_t words_per_element,
		  struct abi_tuple *elements, size_t *count);

/* ---- RLP and EIP-1559 transactions ------------------------------------------------------- */

int rlp_put_bytes(struct buf *b, const void *p, size_t n);
int rlp_put_uint(struct buf *b, uint64_t v);
int rlp_put_uint256(struct buf *b, const uint8_t be[static 32]);
/* A list whose items are already encoded back to back in payload. */
int rlp_put_list(struct buf *b, const void *payload, size_t n);

/* A type-2 transaction with an empty access list. Fees in wei per gas. */
struct eth_tx {
	uint64_t chain_id;           /* EIP-155: signed into the transaction */
	uint64_t nonce;
	uint64_t max_priority_fee_per_gas;
	uint64_t max_fee_per_gas;
	uint64_t gas_limit;
	bool has_to;                 /* false: contract creation */
	uint8_t to[20];
	uint8_t value[32];           /* wei, big-endian */
	const uint8_t *data;
	size_t data_len;
};

/* Append 0x02 || rlp([..., yParity, r, s]) to raw and give its hash (the tx hash). */
int eth_tx_sign(const struct eth_tx *tx, const uint8_t sk[static 32], struct buf *raw,
		uint8_t tx_hash[static 32]);

/* ---- JSON-RPC client ------------------------------------------------------------------------ */

/*
 * Endpoints, comma-separated (ETH_RPC_URL): "http://..." / "https://...", a path or
 * "ipc://<path>" for the raw unix socket of geth / anvil --ipc, "http+unix://<path>" for
 * HTTP over a unix socket. The one that answered last is tried first; the others are
 * the failover order. Transport errors, HTTP 429 and 5xx are retried with doubling
 * backoff; a timeout moves on to the next endpoint at once.
 */
struct eth_rpc_config {
	const char *urls;
	long timeout_ms;           /* per exchange; 0: 10 s */
	int retries;               /* per endpoint; 0: 2, negative: none; at most 10 */
	long backoff_ms;           /* first backoff; 0: 200 ms; doubling up to 5 s */
	size_t max_reply;          /* bytes; 0: 32 MiB */
	uint64_t max_log_range;    /* blocks per eth_getLogs request; 0: 10000 */
	/* Non-NULL: calls give up (-ECANCELED, no retries) soon after it turns non-zero. */
	const volatile sig_atomic_t *abort_flag;
};

struct eth_rpc;

int eth_rpc_new(const struct eth_rpc_config *cfg, struct eth_rpc **out);
void eth_rpc_free(struct eth_rpc *rpc);
/* What went wrong last, naming the endpoint or method ("" if nothing); for a log line. */
const char *eth_rpc_last_error(const struct eth_rpc *rpc);
/* The endpoint that answered last (tried first next time), as messages name it. */
const char *eth_rpc_current_label(const struct eth_rpc *rpc);
/* Its answer was provably wrong: try the next endpoint of the list first from now on. */
void eth_rpc_distrust_current(struct eth_rpc *rpc);
/* Exchanges made so far (each batch is one), for tests and the benchmark. */
uint64_t eth_rpc_round_trips(const struct eth_rpc *rpc);
uint64_t eth_rpc_max_log_range(const struct eth_rpc *rpc);

/* One call of a batch: method and params (a JSON array, NULL for []) in, the reply out. */
struct eth_rpc_call {
	const char *method;
	const char *params;
	char *result;             /* raw JSON of the result (strings without their quotes) */
	size_t result_len;
	int result_type;          /* JSON_STRING, JSON_OBJECT, JSON_ARRAY, JSON_PRIMITIVE */
	int error;                /* 0, -EREMOTEIO (JSON-RPC error below) or -EPROTO (no reply) */
	long code;
	char *message;
	char *data;               /* error data, e.g. revert bytes as hex, or NULL */
};

void eth_rpc_call_clear(struct eth_rpc_call *c);
/*
 * Send n calls in one round trip (a JSON-RPC batch; a single object when n is 1). An
 * endpoint that refuses batches is remembered and sent the calls one by one.
 * Returns 0 when a reply arrived (then check each calls[i].error), -E2BIG for a reply
 * with more JSON values than we parse (2^20), or the error of the last endpoint tried;
 * eth_rpc_last_error says what and where.
 */
int eth_rpc_batch(struct eth_rpc *rpc, struct eth_rpc_call *calls, size_t n);
/* A single call; returns its transport error or c->error. */
int eth_rpc_call(struct eth_rpc *rpc, const char *method, const char *params,
		 struct eth_rpc_call *c);
/*
 * Match a reply (one object or a batch array) to calls with ids first_id .. first_id+n-1.
 * -EINVAL/-EPROTO when text is not JSON-RPC; calls without a reply get error -EPROTO.
 */
int eth_rpc_parse_reply(const char *text, size_t len, uint64_t first_id,
			struct eth_rpc_call *calls, size_t n);

/* ---- typed Ethereum methods ------------------------------------------------------------------ */

/* "0x" quantities and data from replies; -EINVAL for malformed, -ERANGE past 64 bits. */
int eth_parse_quantity(const char *s, size_t len, uint64_t *out);
/* Hex data of at most max bytes into a malloc'd buffer. */
int eth_parse_data(const char *s, size_t len, size_t max, uint8_t **out, size_t *out_len);

struct eth_block {
	uint64_t number;
	uint8_t hash[32];
	uint8_t parent_hash[32];
	uint64_t base_fee_per_gas;   /* 0 before London */
	uint64_t timestamp;
};

struct eth_receipt {
	uint8_t tx_hash[32];
	uint64_t block_number;
	uint8_t block_hash[32];
	bool success;                /* status 1 */
	uint64_t gas_used;
	bool has_contract_address;
	uint8_t contract_address[20];
};

struct eth_log {
	uint64_t block_number;
	uint8_t block_hash[32];
	uint8_t tx_hash[32];
	uint64_t log_index;
	uint8_t address[20];
	uint8_t topics[4][32];
	size_t ntopics;
	uint8_t *data;               /* malloc'd */
	size_t data_len;
	bool removed;
};

struct eth_log_filter {
	uint64_t from_block;
	uint64_t to_block;
	const uint8_t *address;      /* 20 bytes, or NULL for any contract */
	const uint8_t *topic0;       /* 32 bytes, or NULL for any event */
};

/* Block tags: "latest", "pending", "safe", "finalized", "earliest" or a number as 0x-hex. */
#define ETH_BLOCK_TAG_MAX 24
void eth_block_tag(char tag[static ETH_BLOCK_TAG_MAX], uint64_t number);

int eth_chain_id(struct eth_rpc *rpc, uint64_t *chain_id);
int eth_block_number(struct eth_rpc *rpc, uint64_t *number);
/* -ENOENT when the node has no such block. */
int eth_get_block(struct eth_rpc *rpc, const char *tag, struct eth_block *block);
int eth_parse_block(const char *json, size_t len, struct eth_block *block);
/*
 * eth_call; the return data is appended to out. A JSON-RPC error, a revert included,
 * gives -EREMOTEIO, with the decoded revert reason in eth_rpc_last_error.
 */
int eth_call(struct eth_rpc *rpc, const uint8_t to[static 20], const void *data, size_t len,
	     const char *tag, struct buf *out);
/* The size of the code at addr (0: an externally owned account, or nothing there). */
int eth_get_code_size(struct eth_rpc *rpc, const uint8_t addr[static 20], const char *tag, size_t *size);
int eth_get_transaction_count(struct eth_rpc *rpc, const uint8_t addr[static 20], const char *tag,
			      uint64_t *nonce);
int eth_estimate_gas(struct eth_rpc *rpc, const uint8_t from[static 20], const uint8_t *to,
		     const void *data, size_t len, uint64_t *gas);
/*
 * Fees for a type-2 transaction in one round trip: eth_maxPriorityFeePerGas and the latest
 * block's base fee (max fee = 2 * base + tip); eth_gasPrice where the first is missing.
 */
int eth_suggest_fees(struct eth_rpc *rpc, uint64_t *max_fee, uint64_t *priority_fee);
int eth_send_raw_transaction(struct eth_rpc *rpc, const void *raw, size_t len,
			     uint8_t tx_hash[static 32]);
/* -ENOENT while the transaction is not mined. */
int eth_get_receipt(struct eth_rpc *rpc, const uint8_t tx_hash[static 32], struct eth_receipt *rc);
/* Poll for the receipt (20 ms first, doubling up to poll_ms) until timeout_ms: -ETIMEDOUT. */
int eth_wait_receipt(struct eth_rpc *rpc, const uint8_t tx_hash[static 32], long timeout_ms,
		     long poll_ms, struct eth_receipt *rc);
/*
 * Logs of a block range, split into requests of at most the configured range, halving it
 * when the provider says the range or result is too large. The logs are appended to
 * *logs (realloc'd); free them with eth_logs_free.
 */
int eth_get_logs(struct eth_rpc *rpc, const struct eth_log_filter *f, struct eth_log **logs,
		 size_t *n);
int eth_parse_logs(const char *json, size_t len, struct eth_log **logs, size_t *n);
void eth_logs_free(struct eth_log *logs, size_t n);

struct eth_send_opts {
	uint64_t chain_id;    /* signed into the transaction; 0: ask the node */
	uint64_t gas_limit;   /* 0: estimate (+25%); else skip the estimate, send as is */
	long timeout_ms;      /* for the receipt; 0: 60 s */
};

/*
 * Call contract `to` with data in a transaction signed by sk: estimate gas (a revert
 * there is -EPERM before anything is sent), take the pending nonce and suggested fees,
 * send, and wait for the receipt. A mined failure is -EPERM too, its reason recovered by
 * replaying the call on the block's state. The reason is in eth_rpc_last_error.
 */
int eth_send_transaction(struct eth_rpc *rpc, const uint8_t sk[static 32],
			 const uint8_t to[static 20], const void *data, size_t len,
			 const struct eth_send_opts *opts, struct eth_receipt *rc);

/*
 * Human-readable revert reason of revert data: Error(string), Panic(uint256) or a custom
 * error of the registry contract by name with its arguments; else the selector in hex.
 */
void eth_describe_revert(const uint8_t *data, size_t len, char *out, size_t outlen);
/* The custom error signatures eth_describe_revert knows by name. */
size_t eth_known_errors(const char *const **signatures);

/* ---- transactions under caps (operator tools, relayer) ---------------------------------- */

/* A call (to set) or a contract creation (to NULL, data = init code). */
struct eth_tx_request {
	const uint8_t *to;
	const void *data;
	size_t len;
	uint64_t value;               /* wei sent along */
};

struct eth_tx_caps {
	uint64_t chain_id;            /* signed into the transaction; 0: ask the node */
	uint64_t max_fee_per_gas;     /* wei/gas, required: a suggestion above is clamped, a base
				       * fee above is refused */
	uint64_t max_priority_fee_per_gas;  /* 0: only max_fee_per_gas bounds the tip */
	uint64_t max_cost;            /* wei: gas limit x max fee + value above this is refused;
				       * 0: no cap */
	uint64_t gas_limit;           /* 0: estimate (+25%) */
	long timeout_ms;              /* for the receipt; 0: 60 s */
	uint64_t *nonce_hint;         /* NULL, or the next nonce this process expects (updated) */
};

struct eth_tx_result {
	bool sent;                    /* the node accepted it: tx_hash is on its way */
	bool mined;                   /* receipt holds the receipt */
	uint8_t tx_hash[32];
	uint64_t nonce;
	uint64_t gas_limit;
	uint64_t max_fee_per_gas;
	uint64_t worst_cost;          /* wei: gas limit x max fee + value */
	struct eth_receipt receipt;
};

/*
 * eth_call of the request as `from` would make it (value included) at "latest"; the
 * return data is appended to out (may be NULL). A revert is -EPERM, its decoded reason
 * (e.g. "ClusterFull(8)") in eth_rpc_last_error.
 */
int eth_simulate(struct eth_rpc *rpc, const uint8_t from[static 20],
		 const struct eth_tx_request *req, struct buf *out);
/*
 * Simulate, estimate, price under caps, send and wait for the receipt. -EPERM: reverted
 * (simulated, estimated or mined; res->sent tells whether gas was spent); -EDQUOT: above
 * a cap, nothing sent; -ETIMEDOUT: sent (res->tx_hash) but no receipt in time. The nonce
 * is the larger of the pending and latest counts (and *nonce_hint); a node that says it
 * is taken gets the next one, at most 4 times. The reason is in eth_rpc_last_error.
 */
int eth_send_capped(struct eth_rpc *rpc, const uint8_t sk[static 32],
		    const struct eth_tx_request *req, const struct eth_tx_caps *caps,
		    struct eth_tx_result *res);
/* Balance at "latest", wei as a big-endian uint256. */
int eth_get_balance(struct eth_rpc *rpc, const uint8_t addr[static 20], uint8_t wei[static 32]);
/* Decimal text of a big-endian uint256 (at most 78 digits). */
#define ETH_U256_DEC_MAX 80
void eth_u256_to_dec(const uint8_t be[static 32], char out[static ETH_U256_DEC_MAX]);

/*
 * Decrypt a Web3 Secret Storage (v3) keystore: scrypt or pbkdf2 (hmac-sha256), AES-128-CTR,
 * the keccak MAC checked in constant time. The key goes to sk (caller's locked memory).
 * -EINVAL: not a v3 keystore we read (kdf parameters beyond the bounds in keystore.c
 * included), -EACCES: wrong password (MAC mismatch), -ENOMEM.
 */
int eth_keystore_decrypt(const char *json, size_t len, const char *password, size_t password_len,
			 uint8_t sk[static 32]);

/* ---- relaying (dstack-p2p relayer) -------------------------------------------------------- */

#define REGISTRY_REGISTER_SIG \
	"registerPeer((address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes))"

/* A call to relay, as the agent posts it: {"to":"0x<20 bytes>","data":"0x<calldata>"}. */
struct relay_request {
	uint8_t to[20];
	uint8_t *data;            /* malloc'd */
	size_t len;
	uint8_t selector[4];
	/* What rate limits count on: registerPeer's instance id (left-padded), else the first
	 * argument word (an election call's token id); has_subject false when there is none. */
	uint8_t subject[32];
	bool has_subject;
};

/*
 * Parse a relay request body (JSON, at most 16 tokens). -EINVAL with why filled for
 * anything else: not an object, a "value" member, a bad address, calldata that is not hex,
 * shorter than a selector or longer than max_data bytes.
 */
int relay_parse_request(const char *body, size_t len, size_t max_data, struct relay_request *out,
			char *why, size_t why_len);
void relay_request_clear(struct relay_request *r);

/* Fixed-window limits: at most `limit` takes per key per window, in a table of slots. */
struct relay_slot {
	uint8_t key[32];
	uint64_t window_start;
	uint32_t count;
	bool used;
};

struct relay_limiter {
	struct relay_slot *slots;
	size_t nslots;
	uint32_t limit;
	uint64_t window_ms;
};

/* -EINVAL for a zero size, limit or window; -ENOMEM. */
int relay_limiter_init(struct relay_limiter *l, size_t slots, uint32_t limit, uint64_t window_ms);
void relay_limiter_free(struct relay_limiter *l);
/* Count one for key at time now (ms); false when its window is already full. */
bool relay_limiter_take(struct relay_limiter *l, const uint8_t key[static 32], uint64_t now);

/* ---- the registry record (docs/registry.md) ------------------------------------------- */

enum registry_mode { REGISTRY_MODE_TLS_GATEWAY = 0, REGISTRY_MODE_WIREGUARD = 1 };

/* Longest endpoint, in bytes: the contract's MAX_ENDPOINT_LENGTH. */
#define REGISTRY_ENDPOINT_MAX 255

struct registry_peer {
	uint64_t token_id;             /* uint256 on chain; larger values are a format error */
	uint8_t instance_id[20];
	uint8_t wg_public_key[32];
	char *endpoint;                /* malloc'd, NUL-terminated, no inner NUL */
	uint8_t mode;                  /* enum registry_mode */
	uint64_t nonce;
	uint8_t node_pubkey[64];
	uint8_t app_pubkey[64];
	uint8_t app_signature[65];
	uint8_t kms_signature[65];
	uint8_t node_signature[65];
};

/* Frees the endpoint and zeroes the record; accepts NULL. */
void registry_peer_clear(struct registry_peer *p);
void registry_peers_free(struct registry_peer *peers, size_t n);

/* The contract's MAX_NODES_LIMIT: a getPeers() reply claiming more is malformed. */
#define REGISTRY_MAX_PEERS 254

/* An entry of getPeers() that was skipped, and why. */
struct registry_skip {
	size_t index;
	char reason[96];
};

/*
 * The digest the node key signs:
 * keccak256(abi.encode(keccak256("dstack-p2p.PeerRecord.v1"), chainid, contract,
 *                      instanceId, wgPublicKey, keccak256(bytes(endpoint)), mode, nonce))
 * A NULL endpoint hashes as the empty string.
 */
void registry_record_digest(uint64_t chain_id, const uint8_t contract[static 20],
			    const struct registry_peer *p, uint8_t out[static 32]);

/* Append registerPeer(PeerRegistration) calldata; -EINVAL without a valid endpoint. */
int registry_encode_register_call(const struct registry_peer *rec, struct buf *calldata);
/*
 * Decode getPeers() return data (Peer[]). Entries with wrong byte lengths, an unknown
 * mode, a token id above 2^64 or an empty, over-long or NUL-holding endpoint are skipped;
 * the first max_skips of them are described in skips. -EBADMSG when the array itself is
 * malformed or any entry reaches outside the data (a truncated reply fails as a whole),
 * -E2BIG past REGISTRY_MAX_PEERS. Free *peers with registry_peers_free.
 */
int registry_decode_peers(const uint8_t *data, size_t len, struct registry_peer **peers, size_t *n,
			  struct registry_skip *skips, size_t max_skips, size_t *nskips);

/*
 * Decode the return data of getPeerByToken / getPeer (abi.encode(Peer)). -EPROTO when an
 * offset or length points outside data, -EBADMSG for a malformed field (why says which),
 * -ENOMEM. Clear *p with registry_peer_clear (done on failure).
 */
int registry_decode_peer(const uint8_t *data, size_t len, struct registry_peer *p, char *why,
			 size_t whylen);
/*
 * What a log of the registry contract means for getPeers(): 1 with *token set when it
 * names a token whose record may have changed (PeerRegistered, PeerUpdated, PeerRemoved,
 * InstanceBound, InstanceUnbound, Transfer: mint, transfer, burn), 0 for an event that
 * changes no record (leader, policy, minting, ownership), -EBADMSG for a log not to be
 * taken at its word: another address, an unknown event, the wrong number of topics, data
 * of the wrong length or with a string outside it, a token outside 1..REGISTRY_MAX_PEERS.
 */
int registry_log_token(const struct eth_log *log, const uint8_t contract[static 20], uint64_t *token);

/*
 * Views of the registry at "latest" (getPeers at tag, e.g. from eth_block_tag). -ENOENT
 * when the call returns nothing, as calls to an address without code do.
 */
int registry_read_peers(struct eth_rpc *rpc, const uint8_t contract[static 20], const char *tag,
			struct registry_peer **peers, size_t *n, struct registry_skip *skips,
			size_t max_skips, size_t *nskips);
int registry_nonce_of(struct eth_rpc *rpc, const uint8_t contract[static 20],
		      const uint8_t instance_id[static 20], uint64_t *nonce);
int registry_token_of_instance(struct eth_rpc *rpc, const uint8_t contract[static 20],
			       const uint8_t instance_id[static 20], uint64_t *token);
int registry_instance_is_registered(struct eth_rpc *rpc, const uint8_t contract[static 20],
				    const uint8_t instance_id[static 20], bool *registered);
int registry_kms_root(struct eth_rpc *rpc, const uint8_t contract[static 20],
		      uint8_t kms_root[static 20]);
/* labelOf(token) into out (cap bytes, NUL-terminated); -EBADMSG for a label that does not fit or is not printable ASCII. */
int registry_label_of(struct eth_rpc *rpc, const uint8_t contract[static 20], uint64_t token,
		      char *out, size_t cap);

/* ---- signed leader calls (chain/leader.c, docs/contracts.md) ---------------------------- */

enum registry_leader_action { REGISTRY_LEADER_ELECT = 0, REGISTRY_LEADER_HEARTBEAT = 1, REGISTRY_LEADER_VOTE = 2 };

/* One LeaderAction as the contract's EIP-712 type has it, and its node-key signature. */
struct registry_leader_call {
	uint8_t action;                /* enum registry_leader_action */
	uint64_t token;                /* the acting node's token */
	uint64_t target;               /* vote: the leader voted on; else 0 */
	bool no_confidence;            /* vote: true votes, false withdraws; else false */
	uint64_t nonce;                /* leaderActionNonce(token) */
	uint64_t deadline;             /* unix seconds (block time) */
	uint8_t signature[65];         /* r || s || v, v in {27,28} */
};

/* The contract's domainSeparator() and leaderActionDigest(...). */
void registry_leader_domain(uint64_t chain_id, const uint8_t contract[static 20], uint8_t out[static 32]);
void registry_leader_digest(uint64_t chain_id, const uint8_t contract[static 20],
			    const struct registry_leader_call *c, uint8_t out[static 32]);
/* Fill c->signature with node_key's signature over the digest; -EINVAL for an unknown action. */
int registry_sign_leader_call(uint64_t chain_id, const uint8_t contract[static 20],
			      const uint8_t node_key[static 32], struct registry_leader_call *c);
/* Their function signatures, by action (what a relayer allows besides registration). */
extern const char *const registry_leader_call_sigs[3];
/* electLeaderSigned / leaderHeartbeatSigned / castVoteSigned calldata, appended. */
int registry_encode_leader_call(const struct registry_leader_call *c, struct buf *calldata);
/* leaderActionNonce(token). */
int registry_leader_nonce(struct eth_rpc *rpc, const uint8_t contract[static 20], uint64_t token, uint64_t *nonce);

/* leaderState(): who leads, in which term, until when, and the votes against it. */
struct registry_leader {
	uint64_t token;                /* 0: no leader */
	uint8_t instance_id[20];
	uint64_t term;
	uint64_t expiry;               /* unix seconds (block time) the lease runs to */
	uint64_t votes;                /* standing no-confidence votes in this term */
	uint64_t required;             /* votes that replace the leader */
};
int registry_leader_state(struct eth_rpc *rpc, const uint8_t contract[static 20], struct registry_leader *out);

/*
 * Is contract a dstack-p2p cluster of the record format we verify? It must have code
 * (-ENOTTY: none, an EOA or a wrong address) and PEER_RECORD_TYPEHASH() must return
 * keccak256("dstack-p2p.PeerRecord.v1") (-EPROTOTYPE: another contract or version).
 * Other errors are the RPC's.
 */
int registry_check_cluster(struct eth_rpc *rpc, const uint8_t contract[static 20]);

/*
 * registerPeer(rec) in a transaction paid by tx_key, waiting up to timeout_ms for the
 * receipt. A revert (at estimation or mined) is -EPERM, its decoded reason (e.g.
 * "StaleNonce(3, 5)") in eth_rpc_last_error.
 */
int registry_send_registration(struct eth_rpc *rpc, uint64_t chain_id,
			       const uint8_t contract[static 20], const struct registry_peer *rec,
			       const uint8_t tx_key[static 32], long timeout_ms, struct eth_receipt *rc);

/* ---- following the registry -------------------------------------------------------------- */

struct registry_reader;

struct registry_reader_stats {
	uint64_t polls;
	uint64_t full_reads;   /* getPeers() calls */
	uint64_t reorgs;       /* times the block we had read at left the chain */
	uint64_t patches;      /* changes taken from the logs, by the records they name */
	uint64_t records_read; /* getPeerByToken calls */
};

/*
 * A follower of the registry at contract over rpc (borrowed: it must outlive the reader).
 * expected_chain_id 0 accepts any chain; otherwise another chain is -EXDEV at first poll.
 */
int registry_reader_new(struct eth_rpc *rpc, const uint8_t contract[static 20],
			uint64_t expected_chain_id, struct registry_reader **out);
void registry_reader_free(struct registry_reader *r);
/*
 * Bring the peer set up to the head of the chain. The first poll checks the chain id and
 * reads getPeers(); after that an idle poll is one round trip, and logs from the contract
 * lead to one more: getPeerByToken of each token they name (a batch pinned to the new
 * head; a revert TokenHasNoPeer or empty data removes it), or getPeers() at the new head
 * to resync (a reorg of the block we read at, a gap wider than the log range, a log that
 * does not decode or was removed, more than 64 tokens, a reply that proves nothing, a
 * record read other than the logs said: gone without a PeerRemoved, other fields than
 * its last PeerRegistered / PeerUpdated, changed without either).
 * *changed tells whether the peer set differs from before. On error the previous set
 * stays, and eth_rpc_last_error says why.
 */
int registry_reader_poll(struct registry_reader *r, bool *changed);
/* The current peer set (valid until the next poll) and the block it was read at (NULL
 * before the first successful poll). */
const struct registry_peer *registry_reader_peers(const struct registry_reader *r, size_t *n);
const struct eth_block *registry_reader_block(const struct registry_reader *r);
/* Entries of the last getPeers() that were malformed and left out. */
const struct registry_skip *registry_reader_skipped(const struct registry_reader *r, size_t *n);
void registry_reader_get_stats(const struct registry_reader *r, struct registry_reader_stats *s);
/*
 * The next poll checks the chain id (expected_chain_id, 0: any) and reads getPeers() in
 * full at the head, keeping the current set until that succeeds.
 */
void registry_reader_resync(struct registry_reader *r, uint64_t expected_chain_id);
/*
 * The tokens whose records the follower read one by one (patches) since the last call,
 * into named[], and *from the block it held at that call: true when those patches are all
 * that changed since then (no full read), so a copy of the set as of *from can be patched
 * the same way. Resets what it reports either way. For the cross-check of another provider.
 */
bool registry_reader_take_named(struct registry_reader *r, bool named[static REGISTRY_MAX_PEERS + 1],
				uint64_t *from);
/*
 * getPeerByToken of each named token (count of them) at tag, in one batch: 0 with the
 * records that exist in *got (*n_got of them, sorted by token; free with
 * registry_peers_free), a named token without one (reverts TokenHasNoPeer, or returns no
 * data) left out. 1 when the replies prove nothing (another error, a record that does not
 * decode or names another token, a reply too large): read getPeers() instead. Else the
 * RPC's negative errno.
 */
int registry_read_tokens(struct eth_rpc *rpc, const uint8_t contract[static 20], const char *tag,
			 const bool named[static REGISTRY_MAX_PEERS + 1], size_t count,
			 struct registry_peer **got, size_t *n_got);
/*
 * Replace the records of the named tokens (named[t]) in *peers (sorted by token) by the
 * n_got records of got (taken over: do not clear them after success); a named token
 * without one in got is removed. *changed when the set differs. 0 or -ENOMEM (nothing
 * taken). For the reader and its tests.
 */
int registry_peers_patch(struct registry_peer **peers, size_t *npeers,
			 const bool named[static REGISTRY_MAX_PEERS + 1], struct registry_peer *got,
			 size_t n_got, bool *changed);

#endif
