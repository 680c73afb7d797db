/* SPDX-License-Identifier: MIT */
/* Revert data in words: Error(string), Panic(uint256) and a contract's custom errors by name. */
#include <stdio.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"

/* Solidity's panic codes (docs: "Panic via assert and internal errors"). */
static const char *panic_name(uint64_t code)
{
	switch (code) {
	case 0x01: return "assertion failed";
	case 0x11: return "arithmetic overflow";
	case 0x12: return "division by zero";
	case 0x21: return "invalid enum value";
	case 0x22: return "bad storage byte array";
	case 0x31: return "pop on empty array";
	case 0x32: return "array index out of bounds";
	case 0x41: return "out of memory";
	case 0x51: return "call to zero function";
	default: return "unknown panic";
	}
}

/* One static argument word, printed as its type reads best. */
static void append_arg(struct buf *b, const char *type, size_t tlen, const uint8_t w[static 32])
{
	char hex[65];
	size_t lead = 0;

	while (lead < 24 && w[lead] == 0)
		lead++;
	if (tlen == 7 && !memcmp(type, "address", 7)) {
		hex_encode(hex, w + 12, 20);
		buf_printf(b, "0x%s", hex);
	} else if (tlen > 4 && !memcmp(type, "uint", 4) && lead == 24) {
		uint64_t v = 0;

		for (int i = 24; i < 32; i++)
			v = (v << 8) | w[i];
		buf_printf(b, "%llu", (unsigned long long)v);
	} else {
		hex_encode(hex, w, 32);
		buf_printf(b, "0x%s", hex);
	}
}

/* "Name(type,type)" with the words of data as arguments: "Name(1, 0xab..)". */
static void describe_custom(const char *sig, const uint8_t *args, size_t nargs_bytes, struct buf *b)
{
	const char *open = strchr(sig, '(');
	const char *t = open + 1;
	size_t slot = 0;

	buf_printf(b, "%.*s(", (int)(open - sig), sig);
	while (*t && *t != ')') {
		size_t tlen = strcspn(t, ",)");

		if (slot)
			buf_printf(b, ", ");
		if ((slot + 1) * 32 <= nargs_bytes)
			append_arg(b, t, tlen, args + 32 * slot);
		else
			buf_printf(b, "<missing>");
		slot++;
		t += tlen;
		if (*t == ',')
			t++;
	}
	buf_printf(b, ")");
}

void eth_describe_revert(const uint8_t *data, size_t len, const struct eth_error_table *known,
			 char *out, size_t outlen)
{
	static const uint8_t error_string[4] = { 0x08, 0xc3, 0x79, 0xa0 };
	static const uint8_t panic[4] = { 0x4e, 0x48, 0x7b, 0x71 };
	struct abi_tuple t;
	struct buf b;
	char sel_hex[9];

	buf_init(&b, 0);
	if (len < 4) {
		buf_printf(&b, len ? "malformed revert data" : "no reason given");
		goto out;
	}
	abi_tuple_init(&t, data + 4, len - 4);
	if (!memcmp(data, error_string, 4)) {
		const uint8_t *s;
		size_t n;

		if (abi_get_bytes(&t, 0, &s, &n) < 0) {
			buf_printf(&b, "Error(<malformed string>)");
			goto out;
		}
		/* The text comes from outside: bounded, and nothing a terminal would act on. */
		buf_printf(&b, "Error(\"");
		for (size_t i = 0; i < n && i < 200; i++) {
			char c = (char)s[i];

			buf_append(&b, c >= 0x20 && c < 0x7f && c != '"' ? &c : "?", 1);
		}
		buf_printf(&b, "\")");
		goto out;
	}
	if (!memcmp(data, panic, 4)) {
		uint64_t code;

		if (abi_get_uint64(&t, 0, &code) < 0)
			buf_printf(&b, "Panic(<malformed code>)");
		else
			buf_printf(&b, "Panic(0x%02llx: %s)", (unsigned long long)code, panic_name(code));
		goto out;
	}
	for (size_t i = 0; known && i < known->n; i++) {
		uint8_t sel[4];

		abi_selector(known->signatures[i], sel);
		if (!memcmp(sel, data, 4)) {
			if (known->describe && known->describe(i, data + 4, len - 4, &b) == 0)
				goto out;
			buf_reset(&b);
			describe_custom(known->signatures[i], data + 4, len - 4, &b);
			goto out;
		}
	}
	hex_encode(sel_hex, data, 4);
	buf_printf(&b, "custom error 0x%s (%zu bytes of arguments)", sel_hex, len - 4);
out:
	/* A message longer than out is cut; buf_printf refused the last piece whole. */
	if (outlen) {
		size_t n = b.len < outlen - 1 ? b.len : outlen - 1;

		if (n)
			memcpy(out, b.data, n);
		out[n] = '\0';
	}
	buf_clear(&b);
}
