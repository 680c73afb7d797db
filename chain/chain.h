/* SPDX-License-Identifier: MIT */
/*
 * chain: a plain Ethereum client in C that knows nothing of the cluster: the Solidity
 * ABI, RLP and signed EIP-1559 transactions, a JSON-RPC client (HTTP(S) and IPC; batches,
 * retries, failover), typed Ethereum methods, revert reasons decoded against a table of
 * custom errors, the one sender of transactions under fee and cost caps, and Web3 keystore
 * decryption. Keccak-256 and secp256k1 are crypto/'s; the cluster registry built on this
 * client is registry/ (docs/registry.md). docs/chain.md explains the choices. Every
 * fallible function returns 0 or a negative errno; for RPC failures eth_rpc_error() says
 * what and where.
 */
#ifndef DSTACK_P2P_CHAIN_H
#define DSTACK_P2P_CHAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"

struct buf;

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

/* The custom errors a contract reverts with, by signature ("ClusterFull(uint256)"),
 * every argument a static type (one word each). */
struct eth_error_table {
	const char *const *signatures;
	size_t n;
	/* Optional: a fuller wording of error signatures[i] with its argument words (field
	 * names, units, a hint) appended to out; non-zero to fall back to "Name(1, 0x..)". */
	int (*describe)(size_t i, const uint8_t *args, size_t len, struct buf *out);
};

/* ---- JSON-RPC client ------------------------------------------------------------------------ */

/*
 * Endpoints, comma-separated (ETH_RPC_URL): "http://..." / "https://...", a path or
 * "ipc://<path>" for the raw unix socket of geth / anvil --ipc, "http+unix://<path>" for
 * HTTP over a unix socket. The one that answered last is tried first; the others are
 * the failover order. Transport errors, HTTP 429 and 5xx are retried with doubling
 * backoff; a timeout moves on to the next endpoint at once.
 */
#define RPC_URLS_MAX 8

enum rpc_transport { RPC_HTTP, RPC_HTTP_UNIX, RPC_IPC };

struct rpc_url {
	enum rpc_transport transport;
	char target[1024];         /* the URL (RPC_HTTP) or the socket's path */
};

/* The list taken apart once: by the configuration that holds it, or by eth_rpc_new. */
struct rpc_url_list {
	size_t n;
	struct rpc_url url[RPC_URLS_MAX];
};

/*
 * Parse the comma-separated list (blanks around an entry and empty entries skipped) into
 * out; no connection is made. 0, or -EINVAL (an unknown scheme, an empty target, no
 * entry), -E2BIG (more than RPC_URLS_MAX), -ENAMETOOLONG (an entry of 1024 bytes or more).
 */
int rpc_url_list_parse(const char *urls, struct rpc_url_list *out);

struct eth_rpc_config {
	const char *urls;          /* parsed here, unless list is given */
	const struct rpc_url_list *list;
	long timeout_ms;           /* per exchange; 0: 10 s */
	int retries;               /* per endpoint; 0: 2, negative: none; at most 10 */
	long backoff_ms;           /* first backoff; 0: 200 ms; doubling up to 5 s */
	size_t max_reply;          /* bytes; 0: 32 MiB */
	uint64_t max_log_range;    /* blocks per eth_getLogs request; 0: 10000 */
	/* Non-NULL: calls give up (-ECANCELED, no retries) soon after it turns non-zero. */
	const volatile sig_atomic_t *abort_flag;
	/* The custom errors of the contracts called, named in revert reasons; may be NULL. */
	const struct eth_error_table *errors;
};

struct eth_rpc;

int eth_rpc_new(const struct eth_rpc_config *cfg, struct eth_rpc **out);
void eth_rpc_free(struct eth_rpc *rpc);
/* What went wrong last, naming the endpoint or method ("" if nothing); for a log line. */
const char *eth_rpc_error(const struct eth_rpc *rpc);
/* Record what went wrong, for eth_rpc_error: layers above (registry/) name their
 * own failures of a call, such as malformed return data. */
void eth_rpc_set_error(struct eth_rpc *rpc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The endpoint that answered last (tried first next time), as messages name it. */
const char *eth_rpc_current_label(const struct eth_rpc *rpc);
/* Its answer was provably wrong: try the next endpoint of the list first from now on. */
void eth_rpc_distrust_current(struct eth_rpc *rpc);
/* Exchanges made so far (each batch is one), for tests and the benchmark. */
uint64_t eth_rpc_round_trips(const struct eth_rpc *rpc);
uint64_t eth_rpc_max_log_range(const struct eth_rpc *rpc);

/* What went wrong with an exchange or a call, by kind (docs/metrics.md). */
enum eth_rpc_fault {
	ETH_RPC_TIMEOUT,       /* no reply in time */
	ETH_RPC_HTTP_STATUS,   /* an HTTP status other than 200 */
	ETH_RPC_JSONRPC_ERROR, /* a call answered with a JSON-RPC error (reverts included) */
	ETH_RPC_MALFORMED,     /* a reply that is not a JSON-RPC reply to the request, or too large */
	ETH_RPC_CONNECTION,    /* no connection, or it broke */
	ETH_RPC_FAULTS
};

/* Counters since eth_rpc_new, for metrics: the RPC's and the capped sender's. */
struct eth_rpc_stats {
	uint64_t calls;                  /* JSON-RPC calls sent (a batch of n: n) */
	uint64_t errors[ETH_RPC_FAULTS]; /* failed exchanges (each retry counts) and calls */
	uint64_t tx_sent;                /* transactions eth_send_capped had accepted */
	uint64_t tx_gas_limit;           /* their gas limits, summed */
	uint64_t tx_mined;               /* receipts eth_send_capped waited for ... */
	uint64_t tx_reverted;            /* ... of them reverted */
	uint64_t tx_gas_used;            /* the gas those receipts used */
};

void eth_rpc_get_stats(const struct eth_rpc *rpc, struct eth_rpc_stats *out);
/* Every counter of s added to sum's (several clients counted as one). */
void eth_rpc_stats_add(struct eth_rpc_stats *sum, const struct eth_rpc_stats *s);
/* "timeout", "http_status", "jsonrpc_error", "malformed", "connection": a metric's label. */
const char *eth_rpc_fault_name(enum eth_rpc_fault kind);

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
 * eth_rpc_error says what and where.
 */
int eth_rpc_batch(struct eth_rpc *rpc, struct eth_rpc_call *calls, size_t n);
/* A single call; returns its transport error or c->error. */
int eth_rpc_call(struct eth_rpc *rpc, const char *method, const char *params,
		 struct eth_rpc_call *c);

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
 * gives -EREMOTEIO, with the decoded revert reason in eth_rpc_error.
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

/* The caps eth_send_transaction sends under (the CLI and the agent default to them too). */
#define ETH_DEFAULT_MAX_FEE_PER_GAS 100000000000ull   /* 100 gwei */
#define ETH_DEFAULT_MAX_COST 50000000000000000ull     /* 0.05 ether per transaction */

struct eth_send_opts {
	uint64_t chain_id;    /* signed into the transaction; 0: ask the node */
	uint64_t gas_limit;   /* 0: estimate (+25%); else skip the estimate, send as is */
	long timeout_ms;      /* for the receipt; 0: 60 s */
};

/*
 * eth_send_capped under the default caps (ETH_DEFAULT_*), waiting for the receipt: for
 * tools that set no caps of their own. With opts->gas_limit nothing is simulated or
 * estimated (a revert is mined and then explained). -EDQUOT: a cap would be exceeded,
 * nothing sent.
 */
int eth_send_transaction(struct eth_rpc *rpc, const uint8_t sk[static 32],
			 const uint8_t to[static 20], const void *data, size_t len,
			 const struct eth_send_opts *opts, struct eth_receipt *rc);

/*
 * Human-readable revert reason of revert data: Error(string), Panic(uint256) or a custom
 * error of known (may be NULL) by name with its arguments; else the selector in hex.
 */
void eth_describe_revert(const uint8_t *data, size_t len, const struct eth_error_table *known,
			 char *out, size_t outlen);

/* ---- transactions under caps: the one sender (agent, relayer, operator tools) ------------- */

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
	uint64_t max_gas;             /* a gas limit above this is refused; 0: no cap */
	long timeout_ms;              /* for the receipt; 0: 60 s */
	bool no_wait;                 /* return once sent (res->sent): the caller follows the
				       * receipt (eth_get_receipt) */
	bool no_simulation;           /* with gas_limit: send as is, a revert is mined (tests
				       * and tools that mean to send one); the caps still hold */
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
 * (e.g. "ClusterFull(8)") in eth_rpc_error.
 */
int eth_simulate(struct eth_rpc *rpc, const uint8_t from[static 20],
		 const struct eth_tx_request *req, struct buf *out);
/*
 * Simulate, estimate, price under caps, send and (unless no_wait) wait for the receipt.
 * -EPERM: reverted (simulated, estimated or mined; res->sent tells whether gas was
 * spent); -EDQUOT: above a cap, nothing sent, the message names the cap (max_fee_per_gas,
 * max_gas, max_cost); -ETIMEDOUT: sent (res->tx_hash) but no receipt in time. The nonce
 * is the larger of the pending and latest counts (and *nonce_hint); a node that says it
 * is taken gets the next one, at most 4 times. The reason is in eth_rpc_error.
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

#endif
