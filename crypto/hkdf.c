/* SPDX-License-Identifier: MIT */
/* RFC 5869 HKDF with HMAC-SHA256 (nettle). */
#include <errno.h>

#include <nettle/hkdf.h>
#include <nettle/hmac.h>

#include "common/common.h"
#include "crypto/crypto.h"

int hkdf_sha256(uint8_t *out, size_t out_len, const void *salt, size_t salt_len,
		const void *ikm, size_t ikm_len, const void *info, size_t info_len)
{
	struct hmac_sha256_ctx ctx;
	uint8_t prk[SHA256_DIGEST_SIZE];

	if (out_len > 255 * SHA256_DIGEST_SIZE)
		return -EINVAL;
	hmac_sha256_set_key(&ctx, salt_len, salt);
	hkdf_extract(&ctx, (nettle_hash_update_func *)hmac_sha256_update,
		     (nettle_hash_digest_func *)hmac_sha256_digest, SHA256_DIGEST_SIZE, ikm_len, ikm, prk);
	hmac_sha256_set_key(&ctx, sizeof(prk), prk);
	hkdf_expand(&ctx, (nettle_hash_update_func *)hmac_sha256_update,
		    (nettle_hash_digest_func *)hmac_sha256_digest, SHA256_DIGEST_SIZE, info_len, info,
		    out_len, out);
	secret_wipe(prk, sizeof(prk));
	secret_wipe(&ctx, sizeof(ctx));
	return 0;
}
