/* SPDX-License-Identifier: MIT */
/*
 * chain: everything the agent needs from Ethereum, in C: Keccak-256, secp256k1 keys and
 * recoverable signatures, the registry record (docs/registry.md) and its digest.
 * Every fallible function returns 0 or a negative errno.
 */
#ifndef DSTACK_P2P_CHAIN_H
#define DSTACK_P2P_CHAIN_H

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

/*
 * The digest the node key signs:
 * keccak256(abi.encode(keccak256("dstack-p2p.PeerRecord.v1"), chainid, contract,
 *                      instanceId, wgPublicKey, keccak256(bytes(endpoint)), mode, nonce))
 * A NULL endpoint hashes as the empty string.
 */
void registry_record_digest(uint64_t chain_id, const uint8_t contract[static 20],
			    const struct registry_peer *p, uint8_t out[static 32]);

#endif
