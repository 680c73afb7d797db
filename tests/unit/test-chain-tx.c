/* SPDX-License-Identifier: MIT */
/* Unit tests of RLP (the Ethereum wiki examples) and EIP-1559 signing (against cast mktx). */
#include <errno.h>

#include "chain/chain.h"
#include "tests/unit/test-chain-helpers.h"

static void assert_buf_hex(struct buf *b, const char *want)
{
	char *got = hex0x(b->data, b->len);

	cr_assert_str_eq(got, want);
	free(got);
	buf_reset(b);
}

/* https://ethereum.org/developers/docs/data-structures-and-encoding/rlp examples. */
Test(rlp, wiki_examples)
{
	static const char lorem[] = "Lorem ipsum dolor sit amet, consectetur adipisicing elit";
	struct buf b, inner, l2;

	buf_init(&b, 0);
	cr_assert_eq(rlp_put_bytes(&b, "dog", 3), 0);
	assert_buf_hex(&b, "0x83646f67");
	rlp_put_bytes(&b, "", 0);
	assert_buf_hex(&b, "0x80");
	rlp_put_list(&b, NULL, 0);
	assert_buf_hex(&b, "0xc0");
	rlp_put_uint(&b, 0);
	assert_buf_hex(&b, "0x80");
	rlp_put_bytes(&b, "\x00", 1);
	assert_buf_hex(&b, "0x00");
	rlp_put_bytes(&b, "\x0f", 1);
	assert_buf_hex(&b, "0x0f");
	rlp_put_bytes(&b, "\x04\x00", 2);
	assert_buf_hex(&b, "0x820400");
	rlp_put_uint(&b, 15);
	assert_buf_hex(&b, "0x0f");
	rlp_put_uint(&b, 1024);
	assert_buf_hex(&b, "0x820400");

	/* [ "cat", "dog" ] */
	buf_init(&inner, 0);
	rlp_put_bytes(&inner, "cat", 3);
	rlp_put_bytes(&inner, "dog", 3);
	rlp_put_list(&b, inner.data, inner.len);
	assert_buf_hex(&b, "0xc88363617483646f67");

	/* The set-theoretical three: [ [], [[]], [ [], [[]] ] ] */
	buf_reset(&inner);
	buf_init(&l2, 0);
	rlp_put_list(&inner, NULL, 0);              /* [] */
	rlp_put_list(&l2, NULL, 0);
	rlp_put_list(&inner, l2.data, l2.len);      /* [[]] */
	buf_reset(&l2);
	rlp_put_list(&l2, NULL, 0);
	rlp_put_list(&l2, "\xc0", 1);               /* [], [[]] */
	rlp_put_list(&inner, l2.data, l2.len);
	rlp_put_list(&b, inner.data, inner.len);
	assert_buf_hex(&b, "0xc7c0c1c0c3c0c1c0");

	/* 56 bytes: the first string that needs the long form. */
	rlp_put_bytes(&b, lorem, strlen(lorem));
	cr_assert_eq(b.len, 58);
	cr_assert_eq(b.data[0], 0xb8);
	cr_assert_eq(b.data[1], 0x38);
	cr_assert_eq(memcmp(b.data + 2, lorem, 56), 0);
	buf_clear(&b), buf_clear(&inner), buf_clear(&l2);
}

/* A list over 255 bytes: 0xf9 and a two-byte length. */
Test(rlp, long_list_header)
{
	uint8_t payload[300] = { 0 };
	struct buf b;

	buf_init(&b, 0);
	cr_assert_eq(rlp_put_list(&b, payload, sizeof(payload)), 0);
	cr_assert_eq(b.len, 303);
	cr_assert_eq(b.data[0], 0xf9);
	cr_assert_eq(b.data[1], 0x01);
	cr_assert_eq(b.data[2], 0x2c);
	buf_clear(&b);
}

static void mktx_case(uint64_t nonce, size_t data_len, uint64_t value, bool create)
{
	struct eth_tx tx = {
		.chain_id = 31337, .nonce = nonce, .max_priority_fee_per_gas = 1000000000,
		.max_fee_per_gas = 30000000000ULL, .gas_limit = 2100000, .has_to = !create,
	};
	uint8_t sk[32], data[300], hash[32];
	char *skhex, *to, *datahex, *want, *got, *want_hash, *got_hash;
	struct buf raw;

	fill_random(sk, 32);
	sk[0] &= 0x7f;
	fill_random(tx.to, 20);
	fill_random(data, data_len);
	for (int i = 0; i < 8; i++)
		tx.value[31 - i] = (uint8_t)(value >> (8 * i));
	tx.data = data;
	tx.data_len = data_len;
	buf_init(&raw, 0);
	cr_assert_eq(eth_tx_sign(&tx, sk, &raw, hash), 0);

	skhex = hex0x(sk, 32);
	to = hex0x(tx.to, 20);
	datahex = hex0x(data, data_len);
	want = cast_output("mktx --private-key %s --chain 31337 --nonce %llu --gas-limit 2100000 "
			   "--priority-gas-price 1000000000 --gas-price 30000000000 --value %llu %s %s",
			   skhex, (unsigned long long)nonce, (unsigned long long)value,
			   create ? "--create" : to, datahex);
	got = hex0x(raw.data, raw.len);
	cr_assert_str_eq(got, want, "nonce %llu, %zu data bytes", (unsigned long long)nonce, data_len);
	want_hash = cast_output("keccak %s", want);
	got_hash = hex0x(hash, 32);
	cr_assert_str_eq(got_hash, want_hash);
	free(skhex), free(to), free(datahex), free(want), free(got), free(want_hash), free(got_hash);
	buf_clear(&raw);
}

/* The same transaction fields signed by us and by `cast mktx` give the same bytes. */
Test(tx, eip1559_matches_cast_mktx, .timeout = 60)
{
	srand(31);
	mktx_case(0, 0, 0, false);
	mktx_case(5, 4, 12345, false);
	mktx_case(1000, 300, 0, false);     /* data over 255 bytes: long headers */
	mktx_case(7, 60, 1, true);          /* contract creation: empty "to" */
}

Test(tx, rejects_bad_fields)
{
	struct eth_tx tx = { .chain_id = 1, .max_priority_fee_per_gas = 2, .max_fee_per_gas = 1 };
	uint8_t sk[32], hash[32];
	struct buf raw;

	memset(sk, 1, 32);
	buf_init(&raw, 0);
	cr_assert_eq(eth_tx_sign(&tx, sk, &raw, hash), -EINVAL);
	tx.max_fee_per_gas = 2;
	tx.chain_id = 0;
	cr_assert_eq(eth_tx_sign(&tx, sk, &raw, hash), -EINVAL);
	buf_clear(&raw);
}
