/* SPDX-License-Identifier: MIT */
/* The cluster secret and the pairwise WireGuard pre-shared keys it gives (docs/keys.md). */
#include <errno.h>
#include <string.h>

#include "attest/attest.h"
#include "common/common.h"
#include "crypto/crypto.h"

/*
 * HKDF's salt: extracting with it makes the pseudo-random key specific to this use, so
 * the cluster secret would stay separated even if its GetKey path were ever used for
 * something else. Changing it (v2) changes every PSK.
 */
static const char psk_salt[] = "dstack-p2p wireguard psk v1";

struct attest_cluster_secret *attest_cluster_secret_new(void)
{
	return secret_alloc(sizeof(struct attest_cluster_secret));
}

void attest_cluster_secret_free(struct attest_cluster_secret *s)
{
	secret_free(s, sizeof(*s));
}

int attest_load_cluster_secret(struct attest_client *c, struct attest_cluster_secret *s)
{
	struct attest_kms_signatures chain;

	/* The chain is not kept: nothing about the secret is ever published. */
	return attest_get_key(c, ATTEST_CLUSTER_PSK_PATH, ATTEST_CLUSTER_PSK_PURPOSE, s->key, &chain);
}

int attest_psk_epoch(int64_t unix_seconds, uint64_t epoch_seconds, uint64_t *epoch)
{
	if (unix_seconds < 0 || epoch_seconds == 0)
		return -EINVAL;
	*epoch = (uint64_t)unix_seconds / epoch_seconds;
	return 0;
}

int attest_pair_psk(const struct attest_cluster_secret *s, const uint8_t key_a[static 32],
		    const uint8_t key_b[static 32], uint64_t epoch, uint8_t psk[static 32])
{
	uint8_t info[32 + 32 + 8];
	int c = memcmp(key_a, key_b, 32), r;

	if (c == 0)
		return -EINVAL;
	/* Canonical order: both ends of the pair build the same info. */
	memcpy(info, c < 0 ? key_a : key_b, 32);
	memcpy(info + 32, c < 0 ? key_b : key_a, 32);
	for (int i = 0; i < 8; i++)
		info[64 + i] = (uint8_t)(epoch >> (56 - 8 * i));
	r = hkdf_sha256(psk, 32, psk_salt, strlen(psk_salt), s->key, sizeof(s->key), info, sizeof(info));
	/* HKDF wipes its own state; its spills on the stack are overwritten here. */
	secret_wipe_stack();
	return r;
}
