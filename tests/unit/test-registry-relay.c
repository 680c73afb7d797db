/* SPDX-License-Identifier: MIT */
/* Unit tests of the relayer's request parser and rate limiter, and of uint256 to decimal. */
#include <errno.h>
#include <string.h>

#include "chain/chain.h"
#include "registry/registry.h"
#include "tests/unit/test-chain-helpers.h"

#define CONTRACT "0x5fbdb2315678afecb367f032d93f642f64180aa3"
/* registerPeer calldata head: selector, offset 0x20, then the tuple's instanceId. */
#define REGISTER_HEAD "0x9f7f9e9e" \
	"0000000000000000000000000000000000000000000000000000000000000020" \
	"000000000000000000000000c4b9eb534caf2cf9ef257f6f705be4597722bd7c"

static int parse(const char *body, struct relayer_request *q, struct err_detail *why)
{
	return relayer_parse_request(body, strlen(body), 4096, q, why);
}

Test(relay, registration_names_its_instance)
{
	const char *body = "{\"to\":\"" CONTRACT "\",\"data\":\"" REGISTER_HEAD "\"}";
	struct relayer_request q;
	struct err_detail why = { "" };
	uint8_t sel[4];

	abi_selector(REGISTRY_REGISTER_SIG, sel);
	cr_assert_eq(memcmp(sel, "\x9f\x7f\x9e\x9e", 4), 0, "the selector in this test");
	cr_assert_eq(parse(body, &q, &why), 0, "%s", why.text);
	cr_assert_eq(q.len, 68);
	cr_assert(q.has_subject);
	cr_assert_eq(q.subject[12], 0xc4);
	cr_assert_eq(q.subject[31], 0x7c);
	cr_assert_eq(q.to[0], 0x5f);
	relayer_request_clear(&q);
}

Test(relay, other_calls_are_keyed_on_their_first_word)
{
	const char *body = "{\"data\":\"0x12345678" /* castVote(7, ...) */
			   "0000000000000000000000000000000000000000000000000000000000000007\","
			   "\"to\":\"" CONTRACT "\"}";
	struct relayer_request q;
	struct err_detail why = { "" };

	cr_assert_eq(parse(body, &q, &why), 0, "%s", why.text);
	cr_assert(q.has_subject);
	cr_assert_eq(q.subject[31], 7);
	relayer_request_clear(&q);
	cr_assert_eq(parse("{\"to\":\"" CONTRACT "\",\"data\":\"0x12345678\"}", &q, &why), 0);
	cr_assert_not(q.has_subject, "a call without arguments has no subject");
	relayer_request_clear(&q);
}

Test(relay, refuses_what_is_not_a_call)
{
	static const char *const bad[] = {
		"", "[]", "null", "{}", "{\"to\":\"" CONTRACT "\"}",
		"{\"to\":\"0x1234\",\"data\":\"0x12345678\"}",
		"{\"to\":\"" CONTRACT "\",\"data\":\"12345678\"}",
		"{\"to\":\"" CONTRACT "\",\"data\":\"0x123456\"}",
		"{\"to\":\"" CONTRACT "\",\"data\":\"0x1234567\"}",
		"{\"to\":\"" CONTRACT "\",\"data\":\"0x1234567g\"}",
		"{\"to\":\"" CONTRACT "\",\"data\":\"0x12345678\",\"value\":\"0x1\"}",
		"{\"to\":\"" CONTRACT "\",\"data\":\"0x12345678\",\"a\":1,\"b\":2,\"c\":3,\"d\":4,"
		"\"e\":5,\"f\":6,\"g\":7}",
		"{\"to\":\"" CONTRACT "\",\"data\":\"0x12345678\"} trailing",
	};
	struct relayer_request q;
	struct err_detail why = { "" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why.text[0] = '\0';
		cr_assert_eq(parse(bad[i], &q, &why), -EINVAL, "accepted: %s", bad[i]);
		cr_assert(why.text[0], "no reason for: %s", bad[i]);
		cr_assert_null(q.data);
	}
}

Test(relay, calldata_is_bounded)
{
	char body[512];
	struct relayer_request q;
	struct err_detail why = { "" };

	snprintf(body, sizeof(body), "{\"to\":\"" CONTRACT "\",\"data\":\"0x%0200d\"}", 0);
	cr_assert_eq(relayer_parse_request(body, strlen(body), 100, &q, &why), 0);
	relayer_request_clear(&q);
	cr_assert_eq(relayer_parse_request(body, strlen(body), 99, &q, &why), -EINVAL);
	cr_assert(strstr(why.text, "longer than 99 bytes"), "%s", why.text);
}

Test(relay, limiter_slides)
{
	struct relayer_limiter l;
	uint8_t a[32] = { 1 }, b[32] = { 2 }, c[32] = { 3 };

	cr_assert_eq(relayer_limiter_init(&l, 2, 2, 1000), 0);
	cr_assert(relayer_limiter_take(&l, a, 0));
	cr_assert(relayer_limiter_take(&l, a, 10));
	cr_assert_not(relayer_limiter_take(&l, a, 20), "a third in the window");
	cr_assert(relayer_limiter_take(&l, b, 30), "another key has its own count");
	cr_assert_not(relayer_limiter_take(&l, a, 999));
	cr_assert_not(relayer_limiter_take(&l, a, 1000), "no burst at the window's edge");
	cr_assert(relayer_limiter_take(&l, a, 1500), "half of the last window has slid out");
	cr_assert_not(relayer_limiter_take(&l, a, 1501));
	cr_assert(relayer_limiter_take(&l, a, 2000), "the last window held one");
	cr_assert_not(relayer_limiter_take(&l, a, 2001));
	cr_assert(relayer_limiter_take(&l, a, 5000), "two windows later nothing counts");
	cr_assert(relayer_limiter_take(&l, a, 5001));
	cr_assert_not(relayer_limiter_take(&l, a, 5002));
	/* Full table: b's slot, idle for two windows, is taken by c; a keeps its count. */
	cr_assert(relayer_limiter_take(&l, c, 5003));
	cr_assert(relayer_limiter_take(&l, c, 5004));
	cr_assert_not(relayer_limiter_take(&l, c, 5005));
	cr_assert_not(relayer_limiter_take(&l, a, 5006), "a kept its slot and its count");
	/* Both slots busy: a new key evicts the one whose window started longest ago. */
	cr_assert(relayer_limiter_take(&l, b, 5007));
	cr_assert_not(relayer_limiter_take(&l, c, 5008), "c kept its slot and its count");
	relayer_limiter_clear(&l);
	cr_assert_eq(relayer_limiter_init(&l, 0, 1, 1), -EINVAL);
	cr_assert_eq(relayer_limiter_init(&l, 1, 0, 1), -EINVAL);
}

Test(relay, registration_calldata_round_trip)
{
	struct registry_record rec = { .mode = REGISTRY_MODE_WIREGUARD, .nonce = 7 }, got;
	struct err_detail why = { "" };
	struct buf data;

	rec.endpoint = "203.0.113.5:51820";
	memset(rec.instance_id, 0xc4, 20);
	memset(rec.node_pubkey, 0x11, 64);
	memset(rec.kms_signature, 0x22, 65);
	buf_init(&data, 1 << 16);
	cr_assert_eq(registry_encode_register_call(&rec, &data), 0);
	cr_assert_eq(registry_decode_register_call(data.data, data.len, &got, &why), 0, "%s", why.text);
	cr_assert_str_eq(got.endpoint, rec.endpoint);
	cr_assert_eq(got.nonce, 7);
	cr_assert_eq(got.token_id, 0);
	cr_assert_eq(memcmp(got.instance_id, rec.instance_id, 20), 0);
	cr_assert_eq(memcmp(got.node_pubkey, rec.node_pubkey, 64), 0);
	cr_assert_eq(memcmp(got.kms_signature, rec.kms_signature, 65), 0);
	registry_record_clear(&got);
	/* Cut anywhere: an error, never a read outside the data. */
	for (size_t n = 0; n + 31 < data.len; n += 7)  /* the last 31: padding */
		cr_assert_lt(registry_decode_register_call(data.data, n, &got, &why), 0, "cut at %zu", n);
	((uint8_t *)data.data)[0] ^= 1;
	cr_assert_eq(registry_decode_register_call(data.data, data.len, &got, &why), -EINVAL);
	buf_clear(&data);
}

Test(relay, leader_calldata_round_trip_and_signer)
{
	static const uint8_t contract[20] = { 0x5f, 0xbd };
	uint8_t sk[32] = { 0 }, pub[64], addr[20], signer[20];
	struct registry_leader_call c = { .action = REGISTRY_LEADER_VOTE, .token = 3, .target = 5,
					  .no_confidence = true, .nonce = 4, .deadline = 1800000000 },
				    got;
	struct buf data;

	sk[31] = 9;
	cr_assert_eq(crypto_pubkey_from_secret(sk, pub), 0);
	crypto_address_from_pubkey(pub, addr);
	cr_assert_eq(registry_sign_leader_call(31337, contract, sk, &c), 0);
	buf_init(&data, 1 << 12);
	cr_assert_eq(registry_encode_leader_call(&c, &data), 0);
	cr_assert_eq(registry_decode_leader_call(data.data, data.len, &got), 0);
	cr_assert_eq(got.action, REGISTRY_LEADER_VOTE);
	cr_assert_eq(got.token, 3);
	cr_assert_eq(got.target, 5);
	cr_assert(got.no_confidence);
	cr_assert_eq(got.deadline, 1800000000);
	cr_assert_eq(got.nonce, 0, "the nonce is not in the calldata");
	got.nonce = 4;
	cr_assert_eq(registry_leader_call_signer(31337, contract, &got, signer), 0);
	cr_assert_eq(memcmp(signer, addr, 20), 0, "signed by the node key");
	got.nonce = 5;
	cr_assert_eq(registry_leader_call_signer(31337, contract, &got, signer), 0);
	cr_assert_neq(memcmp(signer, addr, 20), 0, "another nonce recovers someone else");
	for (size_t n = 0; n + 31 < data.len; n += 5)
		cr_assert_lt(registry_decode_leader_call(data.data, n, &got), 0, "cut at %zu", n);
	buf_clear(&data);
}

Test(u256, decimal)
{
	uint8_t w[32] = { 0 };
	char s[ETH_U256_DEC_MAX];

	eth_u256_to_dec(w, s);
	cr_assert_str_eq(s, "0");
	w[31] = 10;
	eth_u256_to_dec(w, s);
	cr_assert_str_eq(s, "10");
	memset(w, 0xff, 32);
	eth_u256_to_dec(w, s);
	cr_assert_str_eq(s, "115792089237316195423570985008687907853269984665640564039457584007913129639935");
	memset(w, 0, 32);
	w[22] = 0x02, w[23] = 0x1e, w[24] = 0x19, w[25] = 0xe0, w[26] = 0xc9, w[27] = 0xba,
	w[28] = 0xb2, w[29] = 0x40, w[30] = 0x00, w[31] = 0x00;  /* 10000 ether */
	eth_u256_to_dec(w, s);
	cr_assert_str_eq(s, "10000000000000000000000");
}
