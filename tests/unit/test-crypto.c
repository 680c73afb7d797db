/* SPDX-License-Identifier: MIT */
/* Unit tests of chain/ crypto: Keccak-256, secp256k1 keys and signatures, the record digest. */
#include <errno.h>

#include "chain/chain.h"
#include "registry/registry.h"
#include "tests/unit/test-chain-helpers.h"

static void assert_keccak_hex(const void *data, size_t len, const char *want)
{
	uint8_t d[32];
	char got[65];

	keccak256(d, data, len);
	hex_encode(got, d, 32);
	cr_assert_str_eq(got, want, "keccak256 of %zu bytes", len);
}

/* Published vectors: the empty string and "abc" (Keccak team / Ethereum yellow paper usage). */
Test(keccak, published_vectors)
{
	assert_keccak_hex("", 0, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
	assert_keccak_hex("abc", 3, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
	/* FIPS-202 SHA3-256("") is a7ffc6f8...; ours must differ (different padding). */
}

/* Inputs around the 136-byte rate boundary, checked against `cast keccak` at test time. */
Test(keccak, rate_boundary_matches_cast)
{
	static const size_t lens[] = { 1, 7, 8, 9, 135, 136, 137, 200, 271, 272, 273, 1000 };
	uint8_t data[1000];

	srand(4);
	fill_random(data, sizeof(data));
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		char *hex = hex0x(data, lens[i]);
		char *want = cast_output("keccak %s", hex);
		uint8_t d[32];
		char *got;

		keccak256(d, data, lens[i]);
		got = hex0x(d, 32);
		cr_assert_str_eq(got, want, "keccak256 of %zu bytes", lens[i]);
		free(hex);
		free(want);
		free(got);
	}
}

/* Feeding the same bytes in odd-sized pieces gives the one-shot digest. */
Test(keccak, incremental_equals_one_shot)
{
	uint8_t data[600], one[32], inc[32];
	struct keccak256_ctx c;

	srand(9);
	fill_random(data, sizeof(data));
	keccak256(one, data, sizeof(data));
	for (size_t step = 1; step < 150; step += 13) {
		keccak256_init(&c);
		for (size_t off = 0; off < sizeof(data); off += step) {
			size_t n = sizeof(data) - off < step ? sizeof(data) - off : step;
			keccak256_update(&c, data + off, n);
		}
		keccak256_final(&c, inc);
		cr_assert_eq(memcmp(one, inc, 32), 0, "step %zu", step);
	}
}

/*
 * The public dstack simulator fixture (shared/vectors/dstack-simulator-chain.json beside the checkout):
 * the app key, its compressed key and address, the KMS signature over the 71-byte message
 * and the KMS root it recovers to.
 */
Test(secp256k1, dstack_simulator_fixture)
{
	uint8_t sk[32], pub[64], comp[33], want_comp[33], addr[20], want_addr[20];
	uint8_t msg[71], digest[32], want_digest[32], sig[65], root_comp[33];

	unhex(sk, 32, "d6e88992cdeeee35fe70b5db61ab66cdb191fb9b6ec9313757ef162dd7214d5d");
	cr_assert_eq(crypto_pubkey_from_secret(sk, pub), 0);
	crypto_compress_pubkey(pub, comp);
	unhex(want_comp, 33, "02818494263695e8839122dbd88e281d7380622999df4e60a14befa0f2d096fc7c");
	cr_assert_eq(memcmp(comp, want_comp, 33), 0);
	crypto_address_from_pubkey(pub, addr);
	unhex(want_addr, 20, "0xd508660da170d8b162779698a64e6707d5aa217a");
	cr_assert_eq(memcmp(addr, want_addr, 20), 0);

	unhex(msg, 71, "64737461636b2d6b6d732d6973737565643a5bb4ff9a3837357f19dc176407a5709c62eb6c56"
		       "02818494263695e8839122dbd88e281d7380622999df4e60a14befa0f2d096fc7c");
	keccak256(digest, msg, sizeof(msg));
	unhex(want_digest, 32, "1f1acc59bf7234477601c8abf24b462777d69b8497e91189bb4c4c0568308bf5");
	cr_assert_eq(memcmp(digest, want_digest, 32), 0);

	unhex(sig, 65, "9e618603e72d01fedb82deff6daf2d62a572becf0059eec3f89c1ab40e1f2e59"
		       "4d2a283f843f34e8f39e4cc49a612496ce67223a12ac923f8efe330346dfc6c500");
	cr_assert_eq(crypto_recover_pubkey(digest, sig, pub), 0);
	crypto_compress_pubkey(pub, comp);
	unhex(root_comp, 33, "0321529e458424ab1f710a3a57ec4dad2fb195ddca572f7469242ba6c7563085b6");
	cr_assert_eq(memcmp(comp, root_comp, 33), 0);
	crypto_address_from_pubkey(pub, addr);
	unhex(want_addr, 20, "a7f6043c29f9cc1d9d6acf554c53e0c6792aaeaf");
	cr_assert_eq(memcmp(addr, want_addr, 20), 0);

	/* v = 27 is the same signature in Solidity's convention. */
	sig[64] = 27;
	cr_assert_eq(crypto_recover_pubkey(digest, sig, pub), 0);
	crypto_compress_pubkey(pub, comp);
	cr_assert_eq(memcmp(comp, root_comp, 33), 0);
}

Test(secp256k1, decompress_round_trip)
{
	uint8_t sk[32], pub[64], comp[33], back[64];

	srand(11);
	for (int i = 0; i < 20; i++) {
		fill_random(sk, 32);
		sk[0] &= 0x7f;  /* keep it below n */
		cr_assert_eq(crypto_pubkey_from_secret(sk, pub), 0);
		crypto_compress_pubkey(pub, comp);
		cr_assert_eq(crypto_decompress_pubkey(comp, back), 0);
		cr_assert_eq(memcmp(pub, back, 64), 0);
	}
	comp[0] = 0x04;
	cr_assert_eq(crypto_decompress_pubkey(comp, back), -EINVAL);
}

Test(secp256k1, sign_recover_and_reject_malleable)
{
	/* n, big-endian, to build the high-s twin n - s. */
	static const uint8_t order[32] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c,
		0xd0, 0x36, 0x41, 0x41,
	};
	uint8_t sk[32], pub[64], got[64], digest[32], sig[65], twin[65];
	int borrow = 0;

	memset(sk, 0x42, 32);
	keccak256(digest, "hello", 5);
	cr_assert_eq(crypto_pubkey_from_secret(sk, pub), 0);
	cr_assert_eq(crypto_sign_digest(sk, digest, sig), 0);
	cr_assert(sig[64] == 0 || sig[64] == 1);
	cr_assert_eq(crypto_recover_pubkey(digest, sig, got), 0);
	cr_assert_eq(memcmp(pub, got, 64), 0);

	/* (r, n - s, v ^ 1) recovers the same key in plain ECDSA; we must refuse it. */
	memcpy(twin, sig, 32);
	for (int i = 31; i >= 0; i--) {
		int d = order[i] - sig[32 + i] - borrow;
		borrow = d < 0;
		twin[32 + i] = (uint8_t)(d + (borrow ? 256 : 0));
	}
	twin[64] = sig[64] ^ 1;
	cr_assert_eq(crypto_recover_pubkey(digest, twin, got), -EINVAL);

	sig[64] = 2;
	cr_assert_eq(crypto_recover_pubkey(digest, sig, got), -EINVAL);
	sig[64] = 29;
	cr_assert_eq(crypto_recover_pubkey(digest, sig, got), -EINVAL);

	memset(sk, 0, 32);
	cr_assert_eq(crypto_pubkey_from_secret(sk, pub), -EINVAL);
}

/* Our address from a random key equals `cast wallet address` of the same key. */
Test(secp256k1, address_matches_cast_wallet)
{
	uint8_t sk[32], pub[64], addr[20];

	srand(12);
	for (int i = 0; i < 4; i++) {
		char *skhex, *want, *got;

		fill_random(sk, 32);
		sk[0] &= 0x7f;
		skhex = hex0x(sk, 32);
		want = cast_output("wallet address --private-key %s", skhex);
		cr_assert_eq(crypto_pubkey_from_secret(sk, pub), 0);
		crypto_address_from_pubkey(pub, addr);
		got = hex0x(addr, 20);
		cr_assert_eq(strcasecmp(got, want), 0, "address %s != cast %s", got, want);
		free(skhex);
		free(want);
		free(got);
	}
}

/*
 * The record digest equals keccak256(cast abi-encode(...)) of the same fields, built by
 * cast from the definition in docs/registry.md.
 */
Test(registry, record_digest_matches_cast_abi_encode)
{
	struct registry_record p = { 0 };
	uint8_t contract[20], digest[32];
	char *tag, *ephash, *enc, *want, *got, *c, *inst, *wg;

	srand(13);
	fill_random(contract, 20);
	fill_random(p.instance_id, 20);
	fill_random(p.wg_public_key, 32);
	p.endpoint = strdup("203.0.113.7:51820");
	p.mode = REGISTRY_MODE_WIREGUARD;
	p.nonce = 0x1234567890ULL;
	registry_record_digest(31337, contract, &p, digest);

	tag = cast_output("keccak dstack-p2p.PeerRecord.v1");
	ephash = cast_output("keccak %s", p.endpoint);
	c = hex0x(contract, 20);
	inst = hex0x(p.instance_id, 20);
	wg = hex0x(p.wg_public_key, 32);
	enc = cast_output("abi-encode 'f(bytes32,uint256,address,address,bytes32,bytes32,uint8,uint64)'"
			  " %s 31337 %s %s %s %s 1 %llu",
			  tag, c, inst, wg, ephash, (unsigned long long)p.nonce);
	want = cast_output("keccak %s", enc);
	got = hex0x(digest, 32);
	cr_assert_str_eq(got, want);
	free(tag), free(ephash), free(enc), free(want), free(got), free(c), free(inst), free(wg);
	registry_record_clear(&p);
	cr_assert_null(p.endpoint);
	registry_record_clear(NULL);
}
