/* SPDX-License-Identifier: MIT */
/* RLP encoding (Ethereum yellow paper, appendix B): the items a transaction is made of. */
#include <errno.h>

#include "chain/chain.h"
#include "common/common.h"

/* A header: short form (offset + length) below 56 bytes, else offset + 55 + length of length. */
static int put_header(struct buf *b, uint8_t short_base, size_t len)
{
	uint8_t h[1 + sizeof(size_t)];
	size_t n = 0;

	if (len < 56) {
		h[0] = (uint8_t)(short_base + len);
		return buf_append(b, h, 1);
	}
	for (size_t v = len; v; v >>= 8)
		n++;
	h[0] = (uint8_t)(short_base + 55 + n);
	for (size_t i = 0; i < n; i++)
		h[n - i] = (uint8_t)(len >> (8 * i));
	return buf_append(b, h, n + 1);
}

int rlp_put_bytes(struct buf *b, const void *p, size_t n)
{
	const uint8_t *s = p;
	int r;

	/* A single byte below 0x80 is its own encoding. */
	if (n == 1 && s[0] < 0x80)
		return buf_append(b, s, 1);
	r = put_header(b, 0x80, n);
	if (r < 0)
		return r;
	return buf_append(b, s, n);
}

int rlp_put_uint256(struct buf *b, const uint8_t be[static 32])
{
	size_t skip = 0;

	/* Integers are big-endian without leading zeros; zero is the empty string. */
	while (skip < 32 && be[skip] == 0)
		skip++;
	return rlp_put_bytes(b, be + skip, 32 - skip);
}

int rlp_put_uint(struct buf *b, uint64_t v)
{
	uint8_t be[32] = { 0 };

	for (int i = 0; i < 8; i++)
		be[31 - i] = (uint8_t)(v >> (8 * i));
	return rlp_put_uint256(b, be);
}

int rlp_put_list(struct buf *b, const void *payload, size_t n)
{
	int r = put_header(b, 0xc0, n);

	if (r < 0)
		return r;
	return buf_append(b, payload, n);
}
