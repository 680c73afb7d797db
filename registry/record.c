/* SPDX-License-Identifier: MIT */
/* The registry record of docs/registry.md: its lifetime, the digest the node key signs, and
 * signing it with the node key. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "registry/registry.h"

#define RECORD_DOMAIN_TAG "dstack-p2p.PeerRecord.v1"

void registry_record_clear(struct registry_record *p)
{
	if (!p)
		return;
	free(p->endpoint);
	memset(p, 0, sizeof(*p));
}

#define NONCE_FEATURE_SHIFT 32
#define NONCE_ERA_SHIFT 40

uint8_t registry_nonce_features(uint64_t nonce)
{
	return (uint8_t)(nonce >> NONCE_FEATURE_SHIFT);
}

int registry_nonce_next(uint64_t stored, uint8_t features, uint64_t *next)
{
	uint64_t era = stored >> NONCE_ERA_SHIFT, block = (uint64_t)features << NONCE_FEATURE_SHIFT;

	if (stored == UINT64_MAX)
		return -EOVERFLOW;
	if (registry_nonce_features(stored + 1) == features) {
		*next = stored + 1;
		return 0;
	}
	/* The features' block in this era, if it lies ahead; else in the next era. */
	if ((era << NONCE_ERA_SHIFT | block) > stored) {
		*next = era << NONCE_ERA_SHIFT | block;
		return 0;
	}
	if (era + 1 >= (1ull << (64 - NONCE_ERA_SHIFT)))
		return -EOVERFLOW;
	*next = (era + 1) << NONCE_ERA_SHIFT | block;
	return 0;
}

/* One abi.encode word: a big-endian integer or an address, left-padded with zeros. */
static void word_uint64(uint8_t w[static 32], uint64_t v)
{
	memset(w, 0, 32);
	for (int i = 0; i < 8; i++)
		w[31 - i] = (uint8_t)(v >> (8 * i));
}

static void word_address(uint8_t w[static 32], const uint8_t a[static 20])
{
	memset(w, 0, 12);
	memcpy(w + 12, a, 20);
}

void registry_record_digest(uint64_t chain_id, const uint8_t contract[static 20],
			    const struct registry_record *p, uint8_t out[static 32])
{
	uint8_t words[8][32];
	const char *endpoint = p->endpoint ? p->endpoint : "";

	keccak256(words[0], RECORD_DOMAIN_TAG, strlen(RECORD_DOMAIN_TAG));
	word_uint64(words[1], chain_id);
	word_address(words[2], contract);
	word_address(words[3], p->instance_id);
	memcpy(words[4], p->wg_public_key, 32);
	keccak256(words[5], endpoint, strlen(endpoint));
	word_uint64(words[6], p->mode);
	word_uint64(words[7], p->nonce);
	keccak256(out, words, sizeof(words));
}

int registry_record_sign(const struct attest_identity *id, const struct attest_node_secrets *s,
			 uint64_t chain_id, const uint8_t contract[static 20], const char *endpoint,
			 enum registry_mode mode, uint64_t nonce, struct registry_record *out)
{
	uint8_t digest[32];
	int r;

	memset(out, 0, sizeof(*out));
	if (memcmp(contract, id->app_id, 20) || !endpoint ||
	    strlen(endpoint) > REGISTRY_ENDPOINT_MAX || nonce == 0 ||
	    (mode != REGISTRY_MODE_TLS_GATEWAY && mode != REGISTRY_MODE_WIREGUARD) ||
	    !id->chain.has_kms_signature)
		return -EINVAL;
	out->endpoint = strdup(endpoint);
	if (!out->endpoint)
		return -ENOMEM;
	memcpy(out->instance_id, id->instance_id, 20);
	if (mode == REGISTRY_MODE_WIREGUARD)
		memcpy(out->wg_public_key, id->wg_public_key, 32);
	out->mode = (uint8_t)mode;
	out->nonce = nonce;
	memcpy(out->node_pubkey, id->node_pubkey, 64);
	memcpy(out->app_pubkey, id->app_pubkey, 64);
	memcpy(out->app_signature, id->chain.app_signature, 65);
	memcpy(out->kms_signature, id->chain.kms_signature, 65);

	registry_record_digest(chain_id, contract, out, digest);
	r = crypto_sign_digest(s->node_key, digest, out->node_signature);
	if (r < 0)
		registry_record_clear(out);
	return r;
}
