/* SPDX-License-Identifier: MIT */
/* Hex encoding and strict, bounded decoding. */
#include <errno.h>
#include <string.h>

#include "common.h"

void hex_encode(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(uint8_t *out, size_t outlen, const char *in, size_t len)
{
	if (len >= 2 && in[0] == '0' && (in[1] == 'x' || in[1] == 'X')) {
		in += 2;
		len -= 2;
	}
	if (len % 2)
		return -EINVAL;
	if (len / 2 > outlen)
		return -EMSGSIZE;
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hex_digit(in[2 * i]), lo = hex_digit(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (int)(len / 2);
}

int hex_decode_exact(uint8_t *out, size_t n, const char *in, size_t len)
{
	int r = hex_decode(out, n, in, len);

	if (r < 0)
		return r;
	return (size_t)r == n ? r : -EINVAL;
}
