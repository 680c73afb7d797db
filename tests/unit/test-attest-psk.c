/* SPDX-License-Identifier: MIT */
/*
 * The pairwise PSK schedule of docs/keys.md: its vectors (also in the page), an
 * independent computation with Python's hmac, canonical order and separation, the epoch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "attest/attest.h"
#include "common/common.h"
#include "tests/unit/test-chain-helpers.h"

#define KEYS_DOC "docs/keys.md"

struct psk_vector {
	const char *secret, *key_a, *key_b;
	uint64_t epoch;
	const char *psk;
};

/* The vectors of docs/keys.md, computed there with Python's hmac (the page shows how). */
static const struct psk_vector vectors[] = {
	{ "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
	  "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
	  "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f", 0,
	  "b56a84bf586cff6ff22905627432d6cc69f7797079b0d45ebf6c6f4bac194167" },
	{ "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
	  "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f",
	  "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f", 490277,
	  "6d48de56dca8171b444b2e9c04e8af0f71c604f2c88eca04bcd120c355a85e16" },
	{ "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	  "e011111111111111111111111111111111111111111111111111111111111111",
	  "0122222222222222222222222222222222222222222222222222222222222222", 9223372036854775809ull,
	  "28ea70eb26f5e4f22e6fb4edb493cc86bbad7615e9c1dab619aaf3e19aecd3f9" },
};

static void from_hex(uint8_t *out, size_t n, const char *hex)
{
	cr_assert_eq(hex_decode_exact(out, n, hex, strlen(hex)), (int)n, "%s", hex);
}

static struct attest_cluster_secret *secret_from_hex(const char *hex)
{
	struct attest_cluster_secret *s = attest_cluster_secret_new();

	cr_assert_not_null(s);
	from_hex(s->key, 32, hex);
	return s;
}

static void psk_hex(const struct attest_cluster_secret *s, const uint8_t a[32], const uint8_t b[32],
		    uint64_t epoch, char out[65])
{
	uint8_t psk[32];

	cr_assert_eq(attest_pair_psk(s, a, b, epoch, psk), 0);
	hex_encode(out, psk, 32);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text;
	long n;

	cr_assert_not_null(f, "%s (tests run from the checkout)", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	cr_assert_not_null(text);
	cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return text;
}

Test(attest_psk, documented_vectors)
{
	char *doc = read_file(KEYS_DOC);

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const struct psk_vector *v = &vectors[i];
		struct attest_cluster_secret *s = secret_from_hex(v->secret);
		uint8_t a[32], b[32];
		char got[65];

		from_hex(a, 32, v->key_a);
		from_hex(b, 32, v->key_b);
		psk_hex(s, a, b, v->epoch, got);
		cr_assert_str_eq(got, v->psk, "vector %zu", i);
		cr_assert_not_null(strstr(doc, v->psk), "vector %zu is not in " KEYS_DOC, i);
		attest_cluster_secret_free(s);
	}
	free(doc);
}

/* The formula of docs/keys.md written again in Python (hmac, hashlib), for other inputs. */
Test(attest_psk, matches_python_hkdf)
{
	static const char script[] =
		"/usr/bin/python3 -c 'import hmac,hashlib,sys\n"
		"s,a,b,e=bytes.fromhex(sys.argv[1]),bytes.fromhex(sys.argv[2]),bytes.fromhex(sys.argv[3]),"
		"int(sys.argv[4])\n"
		"lo,hi=sorted([a,b])\n"
		"prk=hmac.new(b\"dstack-p2p wireguard psk v1\",s,hashlib.sha256).digest()\n"
		"print(hmac.new(prk,lo+hi+e.to_bytes(8,\"big\")+bytes([1]),hashlib.sha256).hexdigest())'";
	uint64_t state = 0x9e3779b97f4a7c15ull;

	for (int round = 0; round < 4; round++) {
		struct attest_cluster_secret *s = attest_cluster_secret_new();
		uint8_t a[32], b[32];
		char cmd[1024], sh[65], ah[65], bh[65], got[65], *want;
		uint64_t epoch;

		cr_assert_not_null(s);
		for (int i = 0; i < 32; i++) {
			state = state * 6364136223846793005ull + 1442695040888963407ull;
			s->key[i] = (uint8_t)(state >> 56);
			a[i] = (uint8_t)(state >> 48);
			b[i] = (uint8_t)(state >> 40);
		}
		epoch = state >> (round * 16);
		hex_encode(sh, s->key, 32);
		hex_encode(ah, a, 32);
		hex_encode(bh, b, 32);
		snprintf(cmd, sizeof(cmd), "%s %s %s %s %llu", script, sh, ah, bh, (unsigned long long)epoch);
		want = command_output(cmd);
		psk_hex(s, a, b, epoch, got);
		cr_assert_str_eq(got, want, "round %d", round);
		free(want);
		attest_cluster_secret_free(s);
	}
}

Test(attest_psk, both_ends_agree_and_every_input_separates)
{
	struct attest_cluster_secret *s = secret_from_hex(vectors[0].secret);
	struct attest_cluster_secret *other = secret_from_hex(vectors[2].secret);
	uint8_t a[32], b[32], c[32];
	char ab[65], ba[65], x[65];

	from_hex(a, 32, vectors[0].key_a);
	from_hex(b, 32, vectors[0].key_b);
	memcpy(c, b, 32);
	c[31] ^= 1;
	psk_hex(s, a, b, 7, ab);
	psk_hex(s, b, a, 7, ba);
	cr_assert_str_eq(ab, ba, "the two ends of a pair");
	psk_hex(s, a, b, 8, x);
	cr_assert_str_neq(ab, x, "another epoch");
	psk_hex(s, a, c, 7, x);
	cr_assert_str_neq(ab, x, "another peer");
	psk_hex(other, a, b, 7, x);
	cr_assert_str_neq(ab, x, "another cluster");
	cr_assert_eq(attest_pair_psk(s, a, a, 7, (uint8_t[32]){ 0 }), -EINVAL, "no pair with itself");
	attest_cluster_secret_free(s);
	attest_cluster_secret_free(other);
	attest_cluster_secret_free(NULL);
}

Test(attest_psk, epoch_is_time_over_length)
{
	uint64_t e = 99;

	cr_assert_eq(attest_psk_epoch(0, 3600, &e), 0);
	cr_assert_eq(e, 0);
	cr_assert_eq(attest_psk_epoch(3599, 3600, &e), 0);
	cr_assert_eq(e, 0);
	cr_assert_eq(attest_psk_epoch(3600, 3600, &e), 0);
	cr_assert_eq(e, 1);
	cr_assert_eq(attest_psk_epoch(1765000000, 3600, &e), 0);
	cr_assert_eq(e, 490277);
	cr_assert_eq(attest_psk_epoch(-1, 3600, &e), -EINVAL);
	cr_assert_eq(attest_psk_epoch(10, 0, &e), -EINVAL);
}
