/* SPDX-License-Identifier: MIT */
/* Values as the operator writes them: amounts with units, numbers, addresses, words; files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

const char *const ops_words_boot[] = { "strict", "permissive", NULL };
const char *const ops_words_tcb[] = { "any", "up-to-date", NULL };
const char *const ops_words_yes_no[] = { "no", "yes", NULL };
const char *const ops_words_minting[] = { "owner-only", "public", NULL };

int ops_word_index(const char *const *words, const char *s)
{
	for (int i = 0; words[i]; i++)
		if (!strcmp(words[i], s))
			return i;
	return -EINVAL;
}

int ops_parse_modes(const char *s)
{
	static const char *const names[] = { NULL, "tls", "wireguard", "both" };
	uint64_t v;

	for (int i = 1; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return ops_parse_u64(s, &v) == 0 && v >= 1 && v <= 3 ? (int)v : -EINVAL;
}

int ops_read_file(const char *path, struct buf *b, size_t max)
{
	char chunk[4096];
	FILE *f = fopen(path, "re");
	size_t n;
	int r = 0;

	buf_init(b, max);
	if (!f)
		return -errno;
	while (r == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		r = buf_append(b, chunk, n);
	if (r == 0 && ferror(f))
		r = -EIO;
	fclose(f);
	secret_wipe(chunk, sizeof(chunk));
	if (r == 0)
		r = buf_terminate(b);
	if (r < 0)
		buf_wipe_clear(b);
	return r;
}

int ops_parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	return errno || *end ? -EINVAL : 0;
}

/* Units as exponents of ten. */
static const struct {
	const char *name;
	unsigned exp;
} wei_units[] = {
	{ "wei", 0 },
	{ "gwei", 9 },
	{ "ether", 18 },
	{ "eth", 18 },
};

int ops_parse_wei(const char *s, uint64_t *wei)
{
	const char *p = s;
	uint64_t v = 0;
	unsigned exp = 0, frac = 0;
	bool dot = false, digits = false;

	for (; *p && ((*p >= '0' && *p <= '9') || (*p == '.' && !dot)); p++) {
		if (*p == '.') {
			dot = true;
			continue;
		}
		digits = true;
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return -ERANGE;
		frac += dot;
	}
	if (!digits)
		return -EINVAL;
	if (*p) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(wei_units) && strcmp(p, wei_units[i].name); i++)
			;
		if (i == ARRAY_SIZE(wei_units))
			return -EINVAL;
		exp = wei_units[i].exp;
	}
	if (frac > exp)
		return -EINVAL; /* a fraction of a wei */
	for (unsigned k = frac; k < exp; k++)
		if (__builtin_mul_overflow(v, 10, &v))
			return -ERANGE;
	*wei = v;
	return 0;
}

int ops_parse_address(const char *s, uint8_t out[static 20])
{
	return s && hex_decode_exact(out, 20, s, strlen(s)) > 0 ? 0 : -EINVAL;
}

int ops_parse_bytes32(const char *s, uint8_t out[static 32])
{
	return s && hex_decode_exact(out, 32, s, strlen(s)) > 0 ? 0 : -EINVAL;
}
