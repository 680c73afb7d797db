/* SPDX-License-Identifier: MIT */
/* Key derivation: dstack's HKDF schedule (KMS/agent side) and the node's WireGuard key. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <blake2.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

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

static int hkdf_sha256(uint8_t *out, size_t out_len, const void *ikm, size_t ikm_len,
		       const void *info, size_t info_len)
{
	OSSL_PARAM params[5], *p = params;
	EVP_KDF_CTX *ctx = NULL;
	EVP_KDF *kdf;
	int r = -EIO;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (!kdf)
		return -EIO;
	ctx = EVP_KDF_CTX_new(kdf);
	if (!ctx)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)dstack_hkdf_salt,
						 strlen(dstack_hkdf_salt));
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, out_len, params) == 1)
		r = 0;
out:
	EVP_KDF_CTX_free(ctx);  /* cleanses the key it copied */
	EVP_KDF_free(kdf);
	return r;
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

/*
 * libb2's blake2s() keeps its state on its own stack and returns without wiping it; by
 * then that state is the digest, i.e. our private key, and its compression frames hold
 * more copies. Overwrite the stack they used, once they have returned. 4 KiB is several
 * times what libb2 uses.
 */
static __attribute__((noinline)) void wipe_callee_stack(void)
{
	uint8_t scratch[4096];

	explicit_bzero(scratch, sizeof(scratch));
}

void attest_wireguard_key_from_material(const uint8_t material[static 32],
					uint8_t wg_private[static 32])
{
	uint8_t key[32];

	/* A copy, so material and wg_private may be the same (locked) buffer. */
	memcpy(key, material, 32);
	blake2s(wg_private, wireguard_key_domain, key, 32, strlen(wireguard_key_domain), 32);
	secret_wipe(key, sizeof(key));
	wipe_callee_stack();
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
