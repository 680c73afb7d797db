/* SPDX-License-Identifier: MIT */
/* Key derivation: dstack's HKDF schedule (KMS/agent side) and the node's WireGuard key. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <nettle/hkdf.h>
#include <nettle/hmac.h>

#include "attest/attest.h"
#include "common/common.h"

/* dstack's HKDF salt for every key it derives (ra-tls crate). */
static const char dstack_hkdf_salt[] = "RATLS";

/*
 * Domain separation for the WireGuard key: the agent's secp256k1 key material is used as
 * a BLAKE2s key over this string, so the X25519 key is unrelated to any secp256k1 key
 * even if the same path were ever used for both. Changing it changes every node's key.
 */
static const char wireguard_key_domain[] = "dstack-p2p wireguard x25519 private key v1";

/* RFC 5869 HKDF with HMAC-SHA256 (nettle); the PRK and the HMAC state are wiped. */
static int hkdf_sha256(uint8_t *out, size_t out_len, const void *ikm, size_t ikm_len,
		       const void *info, size_t info_len)
{
	struct hmac_sha256_ctx ctx;
	uint8_t prk[SHA256_DIGEST_SIZE];

	if (out_len > 255 * SHA256_DIGEST_SIZE)
		return -EINVAL;
	hmac_sha256_set_key(&ctx, strlen(dstack_hkdf_salt), (const uint8_t *)dstack_hkdf_salt);
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

int attest_derive_app_key(const uint8_t kms_root_sk[static 32], const uint8_t app_id[static 20],
			  uint8_t app_sk[static 32])
{
	static const char suffix[] = "app-key";
	uint8_t info[20 + sizeof(suffix) - 1];

	memcpy(info, app_id, 20);
	memcpy(info + 20, suffix, sizeof(suffix) - 1);
	return hkdf_sha256(app_sk, 32, kms_root_sk, 32, info, sizeof(info));
}

int attest_derive_path_key(const uint8_t app_sk[static 32], const char *path,
			   uint8_t key[static 32])
{
	return hkdf_sha256(key, 32, app_sk, 32, path, strlen(path));
}

void attest_wireguard_key_from_material(const uint8_t material[static 32],
					uint8_t wg_private[static 32])
{
	uint8_t key[32];

	/* A copy, so material and wg_private may be the same (locked) buffer. */
	memcpy(key, material, 32);
	/* Cannot fail: the lengths are fixed and in range. */
	(void)blake2s_hash(wg_private, 32, wireguard_key_domain, strlen(wireguard_key_domain), key, 32);
	secret_wipe(key, sizeof(key));
	/* Its state is wiped; what the compiler spilled (parts of the key) is not. */
	secret_wipe_stack();
	/* RFC 7748 clamping, as wg genkey does. */
	wg_private[0] &= 248;
	wg_private[31] &= 127;
	wg_private[31] |= 64;
}

int attest_key_path(char *out, size_t out_len, const char *prefix,
		    const uint8_t instance_id[static 20])
{
	char hex[41];
	int n;

	hex_encode(hex, instance_id, 20);
	n = snprintf(out, out_len, "%s%s", prefix, hex);
	return n < 0 || (size_t)n >= out_len ? -ENAMETOOLONG : 0;
}
