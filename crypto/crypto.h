/* SPDX-License-Identifier: MIT */
/*
 * crypto: the primitives every other module builds on, with no knowledge of Ethereum
 * RPC, dstack or WireGuard devices: Keccak-256, secp256k1 keys and recoverable
 * signatures, X25519, BLAKE2s and HKDF-SHA256. Depends on common/ only. Fallible
 * functions return 0 or a negative errno.
 */
#ifndef DSTACK_P2P_CRYPTO_H
#define DSTACK_P2P_CRYPTO_H

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
int crypto_pubkey_from_secret(const uint8_t sk[static 32], uint8_t pub64[static 64]);
/* keccak256(x||y)[12:] */
void crypto_address_from_pubkey(const uint8_t pub64[static 64], uint8_t addr[static 20]);
/* SEC1 compressed form: 0x02|0x03 (parity of y) || x. */
void crypto_compress_pubkey(const uint8_t pub64[static 64], uint8_t out33[static 33]);
/* -EINVAL when in33 is not a point on the curve. */
int crypto_decompress_pubkey(const uint8_t in33[static 33], uint8_t pub64[static 64]);
/* Deterministic (RFC 6979) signature r||s||v over a 32-byte digest; v in {0,1}, s low. */
int crypto_sign_digest(const uint8_t sk[static 32], const uint8_t digest[static 32],
		    uint8_t sig65[static 65]);
/* v is the only byte whose range can be judged before recovery: 0/1 (dstack) or 27/28. */
bool crypto_signature_v_valid(const uint8_t sig[static 65]);
/* Recover the signer; v may be 0/1 or 27/28. -EINVAL for other v, high s, or no key. */
int crypto_recover_pubkey(const uint8_t digest[static 32], const uint8_t sig65[static 65],
		       uint8_t pub64[static 64]);

/* ---- X25519 (RFC 7748) ------------------------------------------------------------ */

/* The public key of an X25519 private key (clamped as RFC 7748 says); cannot fail: 0. */
int x25519_public_from_private(uint8_t pub[static 32], const uint8_t priv[static 32]);

/* ---- BLAKE2s (RFC 7693) ------------------------------------------------------- */

/*
 * outlen (1..32) bytes of BLAKE2s of in, keyed with key (keylen 0..32; 0: unkeyed).
 * Its working state is wiped. 0, or -EINVAL for a length out of range.
 */
int blake2s_hash(uint8_t *out, size_t outlen, const void *in, size_t inlen, const void *key,
		 size_t keylen);

/* ---- HKDF (RFC 5869) with HMAC-SHA256 ------------------------------------------------- */

/* out_len bytes; the PRK and the HMAC state are wiped. -EINVAL past 255 * 32 bytes. */
int hkdf_sha256(uint8_t *out, size_t out_len, const void *salt, size_t salt_len,
		const void *ikm, size_t ikm_len, const void *info, size_t info_len);

#endif
