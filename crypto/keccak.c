/* SPDX-License-Identifier: MIT */
/* Keccak-256 as Ethereum uses it: nettle's Keccak-f[1600] permutation under our own sponge. */
#include <string.h>

#include <nettle/sha3.h>

#include "common/common.h"
#include "crypto/crypto.h"

/* struct keccak256_ctx keeps its lanes in the layout nettle permutes. */
_Static_assert(sizeof(((struct sha3_state *)0)->a) == sizeof(((struct keccak256_ctx *)0)->lanes),
	       "Keccak state size");

static void permute(struct keccak256_ctx *c)
{
	sha3_permute((struct sha3_state *)c->lanes);
	c->absorbed = 0;
}

static uint64_t load64_le(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

void keccak256_init(struct keccak256_ctx *c)
{
	memset(c, 0, sizeof(*c));
}

static void absorb_byte(struct keccak256_ctx *c, uint8_t b)
{
	c->lanes[c->absorbed / 8] ^= (uint64_t)b << (8 * (c->absorbed % 8));
	if (++c->absorbed == KECCAK256_RATE)
		permute(c);
}

void keccak256_update(struct keccak256_ctx *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len && c->absorbed % 8) {
		absorb_byte(c, *p++);
		len--;
	}
	/* Whole lanes at a time once aligned to a lane boundary. */
	while (len >= 8) {
		c->lanes[c->absorbed / 8] ^= load64_le(p);
		c->absorbed += 8;
		if (c->absorbed == KECCAK256_RATE)
			permute(c);
		p += 8;
		len -= 8;
	}
	while (len--)
		absorb_byte(c, *p++);
}

void keccak256_final(struct keccak256_ctx *c, uint8_t out[static 32])
{
	/* Keccak's multi-rate padding: 0x01 first, 0x80 in the last byte of the block. */
	c->lanes[c->absorbed / 8] ^= (uint64_t)0x01 << (8 * (c->absorbed % 8));
	c->lanes[(KECCAK256_RATE - 1) / 8] ^= (uint64_t)0x80 << (8 * ((KECCAK256_RATE - 1) % 8));
	permute(c);
	for (size_t i = 0; i < 32; i++)
		out[i] = (uint8_t)(c->lanes[i / 8] >> (8 * (i % 8)));
	secret_wipe(c, sizeof(*c));
}

void keccak256(uint8_t out[static 32], const void *data, size_t len)
{
	struct keccak256_ctx c;

	keccak256_init(&c);
	keccak256_update(&c, data, len);
	keccak256_final(&c, out);
}
