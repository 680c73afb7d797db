/* SPDX-License-Identifier: MIT */
/* secp256k1 keys, Ethereum addresses and recoverable signatures, over one shared libsecp256k1 context. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include "common/common.h"
#include "crypto/crypto.h"

/* n/2 (big-endian): a signature with s above this is the malleable twin of a low-s one. */
static const uint8_t half_order[32] = {
	0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
};

static secp256k1_context *shared_ctx;
static pthread_once_t shared_ctx_once = PTHREAD_ONCE_INIT;

static void shared_ctx_create(void)
{
	uint8_t seed[32];
	secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);

	if (!ctx)
		return;
	/*
	 * Blinding against side channels when signing; without entropy we still work,
	 * unblinded. randomize only fails on misuse, and then we do not trust the context.
	 */
	if (getrandom(seed, sizeof(seed), 0) == (ssize_t)sizeof(seed) &&
	    !secp256k1_context_randomize(ctx, seed)) {
		secp256k1_context_destroy(ctx);
		ctx = NULL;
	}
	secret_wipe(seed, sizeof(seed));
	shared_ctx = ctx;
}

/* The context is only read after creation, which libsecp256k1 allows from many threads. */
static const secp256k1_context *ctx_get(void)
{
	pthread_once(&shared_ctx_once, shared_ctx_create);
	return shared_ctx;
}

static int serialize_pub64(const secp256k1_context *ctx, const secp256k1_pubkey *pk,
			   uint8_t pub64[static 64])
{
	uint8_t full[65];
	size_t len = sizeof(full);

	if (!secp256k1_ec_pubkey_serialize(ctx, full, &len, pk, SECP256K1_EC_UNCOMPRESSED) ||
	    len != 65)
		return -EINVAL;
	memcpy(pub64, full + 1, 64);
	return 0;
}

int crypto_pubkey_from_secret(const uint8_t sk[static 32], uint8_t pub64[static 64])
{
	const secp256k1_context *ctx = ctx_get();
	secp256k1_pubkey pk;

	if (!ctx)
		return -ENOMEM;
	if (!secp256k1_ec_pubkey_create(ctx, &pk, sk))
		return -EINVAL;
	return serialize_pub64(ctx, &pk, pub64);
}

void crypto_address_from_pubkey(const uint8_t pub64[static 64], uint8_t addr[static 20])
{
	uint8_t h[32];

	keccak256(h, pub64, 64);
	memcpy(addr, h + 12, 20);
}

void crypto_compress_pubkey(const uint8_t pub64[static 64], uint8_t out33[static 33])
{
	out33[0] = (pub64[63] & 1) ? 0x03 : 0x02;
	memcpy(out33 + 1, pub64, 32);
}

int crypto_decompress_pubkey(const uint8_t in33[static 33], uint8_t pub64[static 64])
{
	const secp256k1_context *ctx = ctx_get();
	secp256k1_pubkey pk;

	if (!ctx)
		return -ENOMEM;
	if (!secp256k1_ec_pubkey_parse(ctx, &pk, in33, 33))
		return -EINVAL;
	return serialize_pub64(ctx, &pk, pub64);
}

int crypto_sign_digest(const uint8_t sk[static 32], const uint8_t digest[static 32],
		    uint8_t sig65[static 65])
{
	const secp256k1_context *ctx = ctx_get();
	secp256k1_ecdsa_recoverable_signature sig;
	int recid;

	if (!ctx)
		return -ENOMEM;
	/* The default nonce function is RFC 6979, and libsecp256k1 always emits low s. */
	if (!secp256k1_ecdsa_sign_recoverable(ctx, &sig, digest, sk, NULL, NULL))
		return -EINVAL;
	secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, sig65, &recid, &sig);
	sig65[64] = (uint8_t)recid;
	return 0;
}

bool crypto_signature_v_valid(const uint8_t sig[static 65])
{
	return sig[64] <= 1 || sig[64] == 27 || sig[64] == 28;
}

int crypto_recover_pubkey(const uint8_t digest[static 32], const uint8_t sig65[static 65],
		       uint8_t pub64[static 64])
{
	const secp256k1_context *ctx = ctx_get();
	secp256k1_ecdsa_recoverable_signature sig;
	secp256k1_pubkey pk;
	int v = sig65[64];

	if (!ctx)
		return -ENOMEM;
	if (v >= 27)
		v -= 27;
	if (v != 0 && v != 1)
		return -EINVAL;
	if (memcmp(sig65 + 32, half_order, 32) > 0)
		return -EINVAL;
	if (!secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &sig, sig65, v))
		return -EINVAL;
	if (!secp256k1_ecdsa_recover(ctx, &pk, &sig, digest))
		return -EINVAL;
	return serialize_pub64(ctx, &pk, pub64);
}
