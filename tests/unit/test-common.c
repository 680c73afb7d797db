/* SPDX-License-Identifier: MIT */
/* Unit tests of common/: hex, host:port, bounded buffers, the JSON reader. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common/common.h"
#include "crypto/crypto.h"

Test(hex, round_trip_and_prefix)
{
	uint8_t in[] = { 0x00, 0x01, 0xab, 0xff }, out[4];
	char s[9];

	hex_encode(s, in, sizeof(in));
	cr_assert_str_eq(s, "0001abff");
	cr_assert_eq(hex_decode(out, sizeof(out), "0x0001ABff", 10), 4);
	cr_assert_eq(memcmp(in, out, 4), 0);
}

Test(hex, rejects_bad_input)
{
	uint8_t out[2];

	cr_assert_eq(hex_decode(out, sizeof(out), "abc", 3), -EINVAL);
	cr_assert_eq(hex_decode(out, sizeof(out), "zz", 2), -EINVAL);
	cr_assert_eq(hex_decode(out, sizeof(out), "001122", 6), -EMSGSIZE);
	cr_assert_eq(hex_decode_exact(out, 2, "00", 2), -EINVAL);
}

Test(buf, limit_is_enforced)
{
	struct buf b;

	buf_init(&b, 8);
	cr_assert_eq(buf_append(&b, "12345678", 8), 0);
	cr_assert_eq(buf_append(&b, "9", 1), -EMSGSIZE);
	cr_assert_eq(b.len, 8);
	cr_assert_eq(b.data[8], '\0');
	buf_clear(&b);
}

Test(json, lookups_and_escapes)
{
	const char *doc = "{\"a\": [1, {\"x\": null}, \"q\"], \"s\": \"h\\u00e9\\n\\\"\", \"n\": -42, "
			  "\"t\": true}";
	struct json j;
	char *s;
	int64_t n;
	bool t;

	cr_assert_eq(json_parse(&j, doc, strlen(doc), 0), 0);
	int a = json_get(&j, 0, "a");
	cr_assert_gt(a, 0);
	cr_assert(json_is_null(&j, json_get(&j, json_array_at(&j, a, 1), "x")));
	cr_assert(json_eq(&j, json_array_at(&j, a, 2), "q"));
	cr_assert_eq(json_array_at(&j, a, 3), -ENOENT);
	cr_assert_eq(json_strdup(&j, json_get(&j, 0, "s"), &s), 0);
	cr_assert_str_eq(s, "h\xc3\xa9\n\"");
	free(s);
	cr_assert_eq(json_int64(&j, json_get(&j, 0, "n"), &n), 0);
	cr_assert_eq(n, -42);
	cr_assert_eq(json_bool(&j, json_get(&j, 0, "t"), &t), 0);
	cr_assert(t);
	cr_assert_eq(json_get(&j, 0, "missing"), -ENOENT);
	json_clear(&j);
}

Test(json, rejects_garbage)
{
	struct json j;
	const char *bad[] = { "", "   ", "{", "{\"a\":1} x", "[1,]x", "nope", "{\"a\": tru}",
			      "<html>502</html>" };

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		cr_assert_lt(json_parse(&j, bad[i], strlen(bad[i]), 0), 0, "accepted: %s", bad[i]);
}

/* jsmn's strict mode alone takes these: a ':' or a missing ',' makes a value a key. */
Test(json, rejects_misplaced_keys)
{
	struct json j;
	const char *bad[] = { "{\"a\":1,:2}", "[1,:2]", "{\"a\":1 \"b\":2}", "{\"a\"}",
			      "{\"a\":1,\"b\"}", "{\"a\":}", "{\"a\":-,:-,\"\":-}", "{1:2}" };
	const char *good[] = { "{\"a\":{\"b\":[1,{\"c\":null}]},\"d\":\"e\"}", "[[],{},\"x\",-1]",
			       "{}", "[]", " {\"a\" : [ true , false ] } " };

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		cr_assert_lt(json_parse(&j, bad[i], strlen(bad[i]), 0), 0, "accepted: %s", bad[i]);
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		cr_assert_eq(json_parse(&j, good[i], strlen(good[i]), 0), 0, "refused: %s", good[i]);
		cr_assert_eq(json_skip(&j, 0), j.ntok, "tree of %s", good[i]);
		json_clear(&j);
	}
}

/* A flat array of many small objects: jsmn without parent links took minutes. */
Test(json, large_flat_array_is_linear)
{
	struct buf b;
	struct json j;
	uint64_t t;

	buf_init(&b, 0);
	cr_assert_eq(buf_append(&b, "[{}", 3), 0);
	for (int i = 1; i < 300000; i++)
		cr_assert_eq(buf_append(&b, ",{}", 3), 0);
	cr_assert_eq(buf_append(&b, "]", 1), 0);
	t = now_ms();
	cr_assert_eq(json_parse(&j, (const char *)b.data, b.len, 1 << 20), 0);
	cr_assert_lt(now_ms() - t, 2000, "parsing took %llu ms", (unsigned long long)(now_ms() - t));
	cr_assert_eq(j.ntok, 300001);
	json_clear(&j);
	buf_clear(&b);
}

Test(json, token_limit)
{
	struct json j;
	const char *doc = "[1,2,3,4,5,6,7,8,9,10]";

	cr_assert_eq(json_parse(&j, doc, strlen(doc), 4), -E2BIG);
	cr_assert_eq(json_parse(&j, doc, strlen(doc), 11), 0);
	json_clear(&j);
}

/* RFC 7693 Appendix B: BLAKE2s-256("abc"). */
Test(blake2s, rfc7693_abc)
{
	uint8_t out[32];
	char hex[65];

	cr_assert_eq(blake2s_hash(out, 32, "abc", 3, NULL, 0), 0);
	hex_encode(hex, out, 32);
	cr_assert_str_eq(hex, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
}

Test(blake2s, rejects_lengths_out_of_range)
{
	uint8_t out[33], key[33] = { 0 };

	cr_assert_eq(blake2s_hash(out, 0, "", 0, NULL, 0), -EINVAL);
	cr_assert_eq(blake2s_hash(out, 33, "", 0, NULL, 0), -EINVAL);
	cr_assert_eq(blake2s_hash(out, 32, "", 0, key, 33), -EINVAL);
}

/*
 * Against Python's hashlib.blake2s (Debian's /usr/bin/python3), computed at test time
 * in one run: message lengths around the 64-byte block, keyed and unkeyed, short digests.
 * Message byte i is i * 7 + 1, key byte i is 255 - i.
 */
Test(blake2s, matches_python_hashlib)
{
	static const size_t lens[] = { 0, 1, 3, 55, 63, 64, 65, 127, 128, 129, 200, 1000 };
	static const size_t keylens[] = { 0, 1, 16, 32 };
	static const size_t outlens[] = { 32, 16, 1 };
	uint8_t msg[1000], key[32];
	int checked = 0;
	FILE *f;

	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(255 - i);
	f = popen("/usr/bin/python3 -c 'import hashlib\n"
		  "for n in (0, 1, 3, 55, 63, 64, 65, 127, 128, 129, 200, 1000):\n"
		  " for k in (0, 1, 16, 32):\n"
		  "  for o in (32, 16, 1):\n"
		  "   print(hashlib.blake2s(bytes((i * 7 + 1) % 256 for i in range(n)),"
		  " key=bytes(255 - i for i in range(k)), digest_size=o).hexdigest())'", "r");
	cr_assert_not_null(f);
	for (size_t a = 0; a < ARRAY_SIZE(lens); a++)
		for (size_t b = 0; b < ARRAY_SIZE(keylens); b++)
			for (size_t c = 0; c < ARRAY_SIZE(outlens); c++) {
				uint8_t out[32];
				char hex[65], want[80] = "";

				cr_assert_not_null(fgets(want, sizeof(want), f), "python3 stopped early");
				want[strcspn(want, "\n")] = '\0';
				cr_assert_eq(blake2s_hash(out, outlens[c], msg, lens[a], key, keylens[b]), 0);
				hex_encode(hex, out, outlens[c]);
				cr_assert_str_eq(hex, want, "len %zu key %zu out %zu", lens[a], keylens[b],
						 outlens[c]);
				checked++;
			}
	cr_assert_eq(pclose(f), 0);
	cr_assert_eq(checked, 144);
}

/* ---- host:port ---------------------------------------------------------------------------- */

static int split(const char *s, unsigned flags, struct hostport *hp)
{
	return hostport_split(s, strlen(s), flags, hp);
}

Test(hostport, brackets_and_bare)
{
	struct hostport hp;

	cr_assert_eq(split("10.0.0.1:51820", 0, &hp), 0);
	cr_assert_str_eq(hp.host, "10.0.0.1");
	cr_assert_eq(hp.port, 51820);
	cr_assert(!hp.bracketed);
	cr_assert_eq(split("[fd00::1]:443", 0, &hp), 0);
	cr_assert_str_eq(hp.host, "fd00::1");
	cr_assert_eq(hp.port, 443);
	cr_assert(hp.bracketed);
	cr_assert_eq(split("[fd00::1]443", 0, &hp), -EINVAL);
	cr_assert_eq(split("[fd00::1:443", 0, &hp), -EINVAL);
	cr_assert_eq(split("fd00::1:443", 0, &hp), -ERANGE, "first colon without LAST_COLON");
	cr_assert_eq(split("fd00::1:443", HOSTPORT_LAST_COLON, &hp), 0);
	cr_assert_str_eq(hp.host, "fd00::1");
	cr_assert_eq(hp.port, 443);
	/* Only len bytes are read: the rest of a URL is not the port's. */
	cr_assert_eq(hostport_split("h.example:8443/path", 14, 0, &hp), 0);
	cr_assert_str_eq(hp.host, "h.example");
	cr_assert_eq(hp.port, 8443);
}

Test(hostport, missing_port)
{
	struct hostport hp = { .port = 443 };

	cr_assert_eq(split("h.example", 0, &hp), -ENOENT);
	cr_assert_eq(split("[::1]", 0, &hp), -ENOENT);
	cr_assert_eq(split("h.example", HOSTPORT_PORT_OPTIONAL, &hp), 0);
	cr_assert_eq(hp.port, 443, "the caller's default stays");
	cr_assert_eq(split("[::1]", HOSTPORT_PORT_OPTIONAL, &hp), 0);
	cr_assert_str_eq(hp.host, "::1");
	cr_assert_eq(split("h.example:", HOSTPORT_PORT_OPTIONAL, &hp), -ERANGE, "a colon wants a port");
}

Test(hostport, port_range)
{
	struct hostport hp;

	cr_assert_eq(split("h:0", 0, &hp), -ERANGE);
	cr_assert_eq(split("h:0", HOSTPORT_PORT_ZERO, &hp), 0);
	cr_assert_eq(hp.port, 0);
	cr_assert_eq(split("h:1", 0, &hp), 0);
	cr_assert_eq(split("h:65535", 0, &hp), 0);
	cr_assert_eq(hp.port, 65535);
	cr_assert_eq(split("h:65536", 0, &hp), -ERANGE);
	cr_assert_eq(split("h:99999", 0, &hp), -ERANGE);
	cr_assert_eq(split("h:000080", 0, &hp), -ERANGE, "6 digits");
	cr_assert_eq(split("h:+80", 0, &hp), -ERANGE);
	cr_assert_eq(split("h:-1", 0, &hp), -ERANGE);
	cr_assert_eq(split("h: 80", 0, &hp), -ERANGE);
	cr_assert_eq(split("h:8x", 0, &hp), -ERANGE);
}

Test(hostport, host_empty_and_overlong)
{
	struct hostport hp;
	char big[300];

	cr_assert_eq(split(":80", 0, &hp), -EDESTADDRREQ);
	cr_assert_eq(split("[]:80", 0, &hp), -EDESTADDRREQ);
	cr_assert_eq(split(":80", HOSTPORT_HOST_EMPTY, &hp), 0);
	cr_assert_str_eq(hp.host, "");
	cr_assert_eq(split("", 0, &hp), -ENOENT);
	cr_assert_eq(split("", HOSTPORT_PORT_OPTIONAL, &hp), -EDESTADDRREQ);
	memset(big, 'a', 255);
	strcpy(big + 255, ":1");
	cr_assert_eq(split(big, 0, &hp), 0, "255 bytes fit");
	memset(big, 'a', 256);
	strcpy(big + 256, ":1");
	cr_assert_eq(split(big, 0, &hp), -ENAMETOOLONG);
	cr_assert_eq(hostport_split("a\0b:1", 5, 0, &hp), -EINVAL, "a NUL in the host");
}
