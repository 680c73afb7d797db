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

/* ---- the registry record (docs/registry.md) ------------------------------------------- */

enum registry_mode { REGISTRY_MODE_TLS_GATEWAY = 0, REGISTRY_MODE_WIREGUARD = 1 };

/* Longest endpoint we accept from the chain or send to it (a DNS name is <= 253). */
#define REGISTRY_ENDPOINT_MAX 512

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
