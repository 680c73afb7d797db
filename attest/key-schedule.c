/* SPDX-License-Identifier: MIT */
/* Key derivation: dstack's HKDF schedule (KMS/agent side) and the node's WireGuard key. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "attest/attest.h"
#include "common/common.h"
#include "crypto/crypto.h"

/* dstack's HKDF salt for every key it derives (ra-tls crate). */
static const char dstack_hkdf_salt[] = "RATLS";

/*
 * Domain separation for the WireGuard key: the agent's secp256k1 key material is used as
 * a BLAKE2s key over this string, so the X25519 key is unrelated to any secp256k1 key
 * even if the same path were ever used for both. Changing it changes every node's key.
 */
static const char wireguard_key_domain[] = "dstack-p2p wireguard x25519 private key v1";

/* HKDF-SHA256 with dstack's salt. */
static int hkdf_sha256_dstack(uint8_t *out, size_t out_len, const void *ikm, size_t ikm_len,
			      const void *info, size_t info_len)
{
	return hkdf_sha256(out, out_len, dstack_hkdf_salt, strlen(dstack_hkdf_salt), ikm, ikm_len,
			   info, info_len);
}

int attest_derive_app_key(const uint8_t kms_root_sk[static 32], const uint8_t app_id[static 20],
			  uint8_t app_sk[static 32])
{
	static const char suffix[] = "app-key";
	uint8_t info[20 + sizeof(suffix) - 1];

	memcpy(info, app_id, 20);
	memcpy(info + 20, suffix, sizeof(suffix) - 1);
	return hkdf_sha256_dstack(app_sk, 32, kms_root_sk, 32, info, sizeof(info));
}

int attest_derive_path_key(const uint8_t app_sk[static 32], const char *path,
			   uint8_t key[static 32])
{
	return hkdf_sha256_dstack(key, 32, app_sk, 32, path, strlen(path));
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
