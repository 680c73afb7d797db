/* SPDX-License-Identifier: MIT */
/* The registry record of docs/registry.md: its lifetime and the digest the node key signs. */
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"

#define RECORD_DOMAIN_TAG "dstack-p2p.PeerRecord.v1"

void registry_peer_clear(struct registry_peer *p)
{
	if (!p)
		return;
	free(p->endpoint);
	memset(p, 0, sizeof(*p));
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
			    const struct registry_peer *p, uint8_t out[static 32])
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
