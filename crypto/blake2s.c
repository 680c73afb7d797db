/* SPDX-License-Identifier: MIT */
/*
 * BLAKE2s (RFC 7693): the one BLAKE2 the WireGuard key derivation uses, in-tree so the
 * agent needs no libb2 (and, through it, no OpenMP runtime). Sequential, keyed, digests
 * of 1..32 bytes; the state, which ends as the digest (a private key), is wiped.
 */
#include <errno.h>
#include <string.h>

#include "common/common.h"
#include "crypto/crypto.h"

#define BLAKE2S_BLOCK 64

struct blake2s_state {
	uint32_t h[8];
	uint64_t t;             /* bytes compressed so far */
	uint8_t buf[BLAKE2S_BLOCK];
	size_t buflen;
};

static const uint32_t blake2s_iv[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static const uint8_t blake2s_sigma[10][16] = {
	{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
	{ 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
	{ 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 },
	{ 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
	{ 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 },
	{ 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
	{ 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 },
	{ 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
	{ 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 },
	{ 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
};

static uint32_t ror32(uint32_t x, unsigned n)
{
	return x >> n | x << (32 - n);
}

static uint32_t load32_le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The mixing function G on columns and diagonals of v. */
static void blake2s_g(uint32_t v[16], int a, int b, int c, int d, uint32_t x, uint32_t y)
{
	v[a] = v[a] + v[b] + x;
	v[d] = ror32(v[d] ^ v[a], 16);
	v[c] = v[c] + v[d];
	v[b] = ror32(v[b] ^ v[c], 12);
	v[a] = v[a] + v[b] + y;
	v[d] = ror32(v[d] ^ v[a], 8);
	v[c] = v[c] + v[d];
	v[b] = ror32(v[b] ^ v[c], 7);
}

static void blake2s_compress(struct blake2s_state *s, const uint8_t block[BLAKE2S_BLOCK], bool last)
{
	uint32_t m[16], v[16];

	for (int i = 0; i < 16; i++)
		m[i] = load32_le(block + 4 * i);
	for (int i = 0; i < 8; i++) {
		v[i] = s->h[i];
		v[i + 8] = blake2s_iv[i];
	}
	v[12] ^= (uint32_t)s->t;
	v[13] ^= (uint32_t)(s->t >> 32);
	if (last)
		v[14] = ~v[14];
	for (int r = 0; r < 10; r++) {
		const uint8_t *x = blake2s_sigma[r];

		blake2s_g(v, 0, 4, 8, 12, m[x[0]], m[x[1]]);
		blake2s_g(v, 1, 5, 9, 13, m[x[2]], m[x[3]]);
		blake2s_g(v, 2, 6, 10, 14, m[x[4]], m[x[5]]);
		blake2s_g(v, 3, 7, 11, 15, m[x[6]], m[x[7]]);
		blake2s_g(v, 0, 5, 10, 15, m[x[8]], m[x[9]]);
		blake2s_g(v, 1, 6, 11, 12, m[x[10]], m[x[11]]);
		blake2s_g(v, 2, 7, 8, 13, m[x[12]], m[x[13]]);
		blake2s_g(v, 3, 4, 9, 14, m[x[14]], m[x[15]]);
	}
	for (int i = 0; i < 8; i++)
		s->h[i] ^= v[i] ^ v[i + 8];
	secret_wipe(m, sizeof(m));
	secret_wipe(v, sizeof(v));
}

/* Buffers input; a full block is compressed only once more input follows it. */
static void blake2s_update(struct blake2s_state *s, const uint8_t *in, size_t n)
{
	while (n > 0) {
		size_t k;

		if (s->buflen == BLAKE2S_BLOCK) {
			s->t += BLAKE2S_BLOCK;
			blake2s_compress(s, s->buf, false);
			s->buflen = 0;
		}
		k = BLAKE2S_BLOCK - s->buflen < n ? BLAKE2S_BLOCK - s->buflen : n;
		memcpy(s->buf + s->buflen, in, k);
		s->buflen += k;
		in += k;
		n -= k;
	}
}

int blake2s_hash(uint8_t *out, size_t outlen, const void *in, size_t inlen, const void *key,
		 size_t keylen)
{
	struct blake2s_state s = { .t = 0 };
	uint8_t digest[32];

	if (outlen < 1 || outlen > 32 || keylen > 32 || (keylen && !key) || (inlen && !in))
		return -EINVAL;
	memcpy(s.h, blake2s_iv, sizeof(s.h));
	s.h[0] ^= 0x01010000u ^ (uint32_t)keylen << 8 ^ (uint32_t)outlen;
	if (keylen) {
		uint8_t block[BLAKE2S_BLOCK] = { 0 };

		memcpy(block, key, keylen);
		blake2s_update(&s, block, sizeof(block));
		secret_wipe(block, sizeof(block));
	}
	blake2s_update(&s, in, inlen);
	s.t += s.buflen;
	memset(s.buf + s.buflen, 0, BLAKE2S_BLOCK - s.buflen);
	blake2s_compress(&s, s.buf, true);
	for (int i = 0; i < 8; i++) {
		digest[4 * i] = (uint8_t)s.h[i];
		digest[4 * i + 1] = (uint8_t)(s.h[i] >> 8);
		digest[4 * i + 2] = (uint8_t)(s.h[i] >> 16);
		digest[4 * i + 3] = (uint8_t)(s.h[i] >> 24);
	}
	memcpy(out, digest, outlen);
	secret_wipe(digest, sizeof(digest));
	secret_wipe(&s, sizeof(s));
	return 0;
}
