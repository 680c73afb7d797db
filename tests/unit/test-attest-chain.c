/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of attest/'s key schedule and signature chains against the public dstack
 * simulator fixture, and of registry record signing and verification.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "attest/attest.h"
#include "chain/chain.h"
#include "common/common.h"
#include "netlink/netlink.h"
#include "registry/registry.h"
#include "tests/unit/test-chain-helpers.h"
#include "tests/unit/test-node-helpers.h"

#define VECTOR_FILE "attest/sim/dstack-simulator-chain.json"

struct vector {
	uint8_t app_id[20];
	uint8_t app_sk[32];
	uint8_t app_pub33[33];
	uint8_t kms_sig[65];
	uint8_t root[20];
	struct {
		char path[64], purpose[64];
		uint8_t key[32];
		uint8_t pub33[33];
	} derived[2];
};

static void vector_hex(const struct json *j, int obj, const char *name, uint8_t *out, size_t n)
{
	const char *s;
	size_t len;
	int i = json_get(j, obj, name);

	cr_assert_geq(i, 0, "vector has no %s", name);
	s = json_raw(j, i, &len);
	cr_assert_eq(hex_decode_exact(out, n, s, len), (int)n, "vector field %s", name);
}

static void vector_string(const struct json *j, int obj, const char *name, char *out, size_t n)
{
	const char *s;
	size_t len;
	int i = json_get(j, obj, name);

	cr_assert_geq(i, 0);
	s = json_raw(j, i, &len);
	cr_assert_lt(len, n);
	memcpy(out, s, len);
	out[len] = '\0';
}

static void load_vector(struct vector *v)
{
	static char text[16384];
	struct json j;
	size_t n;
	FILE *f = fopen(VECTOR_FILE, "r");
	int arr;

	cr_assert_not_null(f, "run from the repository root: %s", VECTOR_FILE);
	n = fread(text, 1, sizeof(text), f);
	fclose(f);
	cr_assert_eq(json_parse(&j, text, n, 0), 0);
	vector_hex(&j, 0, "app_id", v->app_id, 20);
	vector_hex(&j, 0, "app_k256_private_key", v->app_sk, 32);
	vector_hex(&j, 0, "app_pub_compressed", v->app_pub33, 33);
	vector_hex(&j, 0, "kms_signature_chain1", v->kms_sig, 65);
	vector_hex(&j, 0, "kms_root_address", v->root, 20);
	arr = json_get(&j, 0, "derived");
	for (int k = 0; k < 2; k++) {
		int e = json_array_at(&j, arr, k);

		vector_string(&j, e, "path", v->derived[k].path, sizeof(v->derived[k].path));
		vector_string(&j, e, "purpose", v->derived[k].purpose, sizeof(v->derived[k].purpose));
		vector_hex(&j, e, "key", v->derived[k].key, 32);
		vector_hex(&j, e, "pub_compressed", v->derived[k].pub33, 33);
	}
	json_clear(&j);
}

/* The fixture's chain for derived key k: what a GetKey reply would carry. */
static void fixture_chain(const struct vector *v, int k, uint8_t key_pub[64],
			  struct attest_kms_signatures *sigs)
{
	uint8_t digest[32];

	cr_assert_eq(crypto_pubkey_from_secret(v->derived[k].key, key_pub), 0);
	attest_app_message_digest(v->derived[k].purpose, key_pub, digest);
	cr_assert_eq(crypto_sign_digest(v->app_sk, digest, sigs->app_signature), 0);
	memcpy(sigs->kms_signature, v->kms_sig, 65);
	sigs->has_kms_signature = true;
}

Test(attest_vectors, hkdf_reproduces_derived_keys)
{
	struct vector v;
	uint8_t key[32], pub[64], pub33[33];

	load_vector(&v);
	cr_assert_eq(crypto_pubkey_from_secret(v.app_sk, pub), 0);
	crypto_compress_pubkey(pub, pub33);
	cr_assert_eq(memcmp(pub33, v.app_pub33, 33), 0, "app key's compressed public key");
	for (int k = 0; k < 2; k++) {
		cr_assert_eq(attest_derive_path_key(v.app_sk, v.derived[k].path, key), 0);
		cr_assert_eq(memcmp(key, v.derived[k].key, 32), 0, "key for path %s", v.derived[k].path);
		cr_assert_eq(crypto_pubkey_from_secret(key, pub), 0);
		crypto_compress_pubkey(pub, pub33);
		cr_assert_eq(memcmp(pub33, v.derived[k].pub33, 33), 0);
	}
}

Test(attest_vectors, kms_signature_recovers_the_fixture_root)
{
	static const char want[] = "a7f6043c29f9cc1d9d6acf554c53e0c6792aaeaf";
	struct vector v;
	uint8_t app_pub[64], digest[32], root_pub[64], root[20];
	char hex[41];

	load_vector(&v);
	cr_assert_eq(crypto_decompress_pubkey(v.app_pub33, app_pub), 0);
	attest_kms_message_digest(v.app_id, app_pub, digest);
	cr_assert_eq(crypto_recover_pubkey(digest, v.kms_sig, root_pub), 0);
	crypto_address_from_pubkey(root_pub, root);
	hex_encode(hex, root, 20);
	cr_assert_str_eq(hex, want);
}

Test(attest_vectors, fixture_chain_verifies)
{
	struct attest_kms_signatures sigs;
	struct vector v;
	uint8_t key_pub[64], app_pub[64], want_app_pub[64];

	load_vector(&v);
	for (int k = 0; k < 2; k++) {
		fixture_chain(&v, k, key_pub, &sigs);
		struct attest_key_claim chain = { key_pub, v.derived[k].purpose, v.app_id, NULL, &sigs };
		struct attest_expect expect = { v.derived[k].purpose, v.app_id, v.root };

		cr_assert_eq(attest_verify_kms_chain(&chain, &expect, app_pub), ATTEST_VALID);
		cr_assert_eq(crypto_decompress_pubkey(v.app_pub33, want_app_pub), 0);
		cr_assert_eq(memcmp(app_pub, want_app_pub, 64), 0);
	}
}

Test(attest_vectors, wrong_claims_are_named)
{
	struct attest_kms_signatures sigs;
	struct vector v;
	uint8_t key_pub[64], other[20];

	load_vector(&v);
	fixture_chain(&v, 0, key_pub, &sigs);
	memcpy(other, v.app_id, 20);
	other[19] ^= 1;
	struct attest_key_claim chain = { key_pub, v.derived[0].purpose, v.app_id, NULL, &sigs };
	struct attest_expect expect = { v.derived[0].purpose, v.app_id, v.root };

	expect.purpose = "dstack-p2p:node";
	cr_assert_eq(attest_verify_kms_chain(&chain, &expect, NULL), ATTEST_WRONG_PURPOSE);
	expect.purpose = v.derived[0].purpose;
	expect.app_id = other;
	cr_assert_eq(attest_verify_kms_chain(&chain, &expect, NULL), ATTEST_WRONG_APP_ID);
	expect.app_id = v.app_id;
	expect.kms_root = other;
	cr_assert_eq(attest_verify_kms_chain(&chain, &expect, NULL), ATTEST_WRONG_ROOT);
	/* A chain presented under another purpose or app id than it was signed for. */
	expect.kms_root = v.root;
	chain.purpose = expect.purpose = v.derived[1].purpose;
	cr_assert_eq(attest_verify_kms_chain(&chain, &expect, NULL), ATTEST_WRONG_ROOT);
	chain.purpose = expect.purpose = v.derived[0].purpose;
	chain.app_id = expect.app_id = other;
	cr_assert_eq(attest_verify_kms_chain(&chain, &expect, NULL), ATTEST_WRONG_ROOT);
	/* A local key provider: no KMS vouches for the app key. */
	chain.app_id = expect.app_id = v.app_id;
	sigs.has_kms_signature = false;
	cr_assert_eq(attest_verify_kms_chain(&chain, &expect, NULL), ATTEST_NO_KMS_SIGNATURE);
}

static bool verdict_in(enum attest_verdict v, const enum attest_verdict *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v == set[i])
			return true;
	return false;
}

/* Every single-bit flip of every signed byte is rejected, with an error for its field. */
Test(attest_vectors, every_flipped_byte_is_rejected)
{
	static const enum attest_verdict app_sig_errors[] = {
		ATTEST_MALFORMED, ATTEST_BAD_APP_SIGNATURE, ATTEST_APP_KEY_MISMATCH,
	};
	static const enum attest_verdict kms_sig_errors[] = {
		ATTEST_MALFORMED, ATTEST_BAD_KMS_SIGNATURE, ATTEST_WRONG_ROOT,
	};
	static const enum attest_verdict key_errors[] = {
		ATTEST_MALFORMED, ATTEST_BAD_APP_SIGNATURE, ATTEST_APP_KEY_MISMATCH,
	};
	struct attest_kms_signatures sigs, bad;
	struct vector v;
	uint8_t key_pub[64], app_pub[64], bad_key[64];

	load_vector(&v);
	fixture_chain(&v, 0, key_pub, &sigs);
	cr_assert_eq(crypto_decompress_pubkey(v.app_pub33, app_pub), 0);
	struct attest_expect expect = { v.derived[0].purpose, v.app_id, v.root };

	for (int i = 0; i < 65; i++) {
		struct attest_key_claim chain = { key_pub, v.derived[0].purpose, v.app_id, app_pub, &bad };
		enum attest_verdict r;

		bad = sigs;
		bad.app_signature[i] ^= 0x01;
		r = attest_verify_kms_chain(&chain, &expect, NULL);
		cr_assert(verdict_in(r, app_sig_errors, 3), "app sig byte %d: %s", i,
			  attest_verdict_str(r));
		bad = sigs;
		bad.kms_signature[i] ^= 0x01;
		r = attest_verify_kms_chain(&chain, &expect, NULL);
		cr_assert(verdict_in(r, kms_sig_errors, 3), "kms sig byte %d: %s", i,
			  attest_verdict_str(r));
	}
	for (int i = 0; i < 64; i++) {
		struct attest_key_claim chain = { bad_key, v.derived[0].purpose, v.app_id, app_pub, &sigs };
		enum attest_verdict r;

		memcpy(bad_key, key_pub, 64);
		bad_key[i] ^= 0x01;
		r = attest_verify_kms_chain(&chain, &expect, NULL);
		cr_assert(verdict_in(r, key_errors, 3), "key byte %d: %s", i, attest_verdict_str(r));
	}
}

Test(attest_record, signed_record_verifies_and_tampering_is_named)
{
	struct test_node n;
	struct registry_record p, t;
	char other_endpoint[] = "10.0.0.2:51820";
	uint8_t other[20];

	make_node(&n, 0x11);
	cr_assert_eq(registry_record_sign(&n.id, n.secrets, 31337, n.app_id, "10.0.0.1:51820",
					REGISTRY_MODE_WIREGUARD, 1, &p), 0);
	cr_assert_eq(memcmp(p.wg_public_key, n.id.wg_public_key, 32), 0);
	cr_assert_eq(registry_record_verify(&p, 31337, n.app_id, n.root), ATTEST_VALID);

	/* Replayed on another chain or contract. */
	cr_assert_eq(registry_record_verify(&p, 1, n.app_id, n.root), ATTEST_BAD_NODE_SIGNATURE);
	memcpy(other, n.app_id, 20);
	other[0] ^= 0x80;
	cr_assert_eq(registry_record_verify(&p, 31337, other, n.root), ATTEST_WRONG_ROOT);
	cr_assert_eq(registry_record_verify(&p, 31337, n.app_id, other), ATTEST_WRONG_ROOT);

	/* Every signed field of the record. */
	t = p;
	t.nonce++;
	cr_assert_eq(registry_record_verify(&t, 31337, n.app_id, n.root), ATTEST_BAD_NODE_SIGNATURE);
	t = p;
	t.wg_public_key[3] ^= 1;
	cr_assert_eq(registry_record_verify(&t, 31337, n.app_id, n.root), ATTEST_BAD_NODE_SIGNATURE);
	t = p;
	t.instance_id[0] ^= 1;
	cr_assert_eq(registry_record_verify(&t, 31337, n.app_id, n.root), ATTEST_BAD_NODE_SIGNATURE);
	t = p;
	t.mode = REGISTRY_MODE_TLS_GATEWAY;
	cr_assert_eq(registry_record_verify(&t, 31337, n.app_id, n.root), ATTEST_BAD_NODE_SIGNATURE);
	t = p;
	t.mode = 7;
	cr_assert_eq(registry_record_verify(&t, 31337, n.app_id, n.root), ATTEST_MALFORMED);
	t = p;
	t.endpoint = other_endpoint;
	cr_assert_eq(registry_record_verify(&t, 31337, n.app_id, n.root), ATTEST_BAD_NODE_SIGNATURE);
	t = p;
	t.app_pubkey[10] ^= 1;
	cr_assert_eq(registry_record_verify(&t, 31337, n.app_id, n.root), ATTEST_MALFORMED);
	t = p;
	t.node_signature[64] = 5;
	cr_assert_eq(registry_record_verify(&t, 31337, n.app_id, n.root), ATTEST_MALFORMED);

	/* Another node's valid chain under this record's node signature. */
	{
		struct test_node m;

		make_node(&m, 0x22);
		t = p;
		memcpy(t.node_pubkey, m.id.node_pubkey, 64);
		memcpy(t.app_signature, m.id.chain.app_signature, 65);
		cr_assert_eq(registry_record_verify(&t, 31337, n.app_id, n.root),
			     ATTEST_BAD_NODE_SIGNATURE);
		attest_node_secrets_free(m.secrets);
	}
	registry_record_clear(&p);
	attest_node_secrets_free(n.secrets);
}

Test(attest_record, sign_rejects_bad_arguments)
{
	struct test_node n;
	struct registry_record p;
	uint8_t other[20];

	make_node(&n, 0x11);
	memset(other, 0x77, 20);
	cr_assert_eq(registry_record_sign(&n.id, n.secrets, 1, other, "h:1", REGISTRY_MODE_WIREGUARD,
					1, &p), -EINVAL);
	cr_assert_eq(registry_record_sign(&n.id, n.secrets, 1, n.app_id, "h:1",
					REGISTRY_MODE_WIREGUARD, 0, &p), -EINVAL);
	cr_assert_eq(registry_record_sign(&n.id, n.secrets, 1, n.app_id, "h:1", (enum registry_mode)2,
					1, &p), -EINVAL);
	/* TLS-gateway records carry no WireGuard key. */
	cr_assert_eq(registry_record_sign(&n.id, n.secrets, 1, n.app_id, "https://x-443.example",
					REGISTRY_MODE_TLS_GATEWAY, 1, &p), 0);
	for (int i = 0; i < 32; i++)
		cr_assert_eq(p.wg_public_key[i], 0);
	cr_assert_eq(registry_record_verify(&p, 1, n.app_id, n.root), ATTEST_VALID);
	registry_record_clear(&p);
	attest_node_secrets_free(n.secrets);
}

/* Feature bits ride in the signed nonce: docs/registry.md's layout, every transition. */
Test(attest_record, nonce_features_layout_and_transitions)
{
	const uint64_t psk = REGISTRY_FEATURE_PSK_V1;
	uint64_t next;

	cr_assert_eq(registry_nonce_features(1), 0, "an agent of today: stored + 1, no feature");
	cr_assert_eq(registry_nonce_features(0xffffffffull), 0);
	cr_assert_eq(registry_nonce_features(psk << 32 | 7), REGISTRY_FEATURE_PSK_V1);
	cr_assert_eq(registry_nonce_features(5ull << 40 | psk << 32 | 7), REGISTRY_FEATURE_PSK_V1);

	cr_assert_eq(registry_nonce_next(0, 0, &next), 0);
	cr_assert_eq(next, 1, "first registration without features");
	cr_assert_eq(registry_nonce_next(41, 0, &next), 0);
	cr_assert_eq(next, 42, "what agents without features send");
	cr_assert_eq(registry_nonce_next(0, REGISTRY_FEATURE_PSK_V1, &next), 0);
	cr_assert_eq(next, psk << 32, "first registration with PSKs");
	cr_assert_eq(registry_nonce_next(41, REGISTRY_FEATURE_PSK_V1, &next), 0);
	cr_assert_eq(next, psk << 32, "an upgraded agent");
	cr_assert_eq(registry_nonce_next(psk << 32 | 9, REGISTRY_FEATURE_PSK_V1, &next), 0);
	cr_assert_eq(next, psk << 32 | 10, "updates keep the features");
	cr_assert_eq(registry_nonce_next(psk << 32 | 9, 0, &next), 0);
	cr_assert_eq(next, 1ull << 40, "P2P_PSK=off: the next era, no feature");
	cr_assert_eq(registry_nonce_next(1ull << 40 | 3, REGISTRY_FEATURE_PSK_V1, &next), 0);
	cr_assert_eq(next, 1ull << 40 | psk << 32, "on again, same era");
	cr_assert_eq(registry_nonce_next(psk << 32 | 0xffffffffull, REGISTRY_FEATURE_PSK_V1, &next), 0);
	cr_assert_eq(next, 1ull << 40 | psk << 32, "the counter's end moves to the next era");
	cr_assert_eq(registry_nonce_next(UINT64_MAX, 0, &next), -EOVERFLOW);
	cr_assert_eq(registry_nonce_next(0xffffffull << 40 | psk << 32, 0, &next), -EOVERFLOW);
	/* Every step grows the nonce and lands on the features asked for. */
	uint64_t n = 0;
	for (int i = 0; i < 64; i++) {
		uint8_t f = (uint8_t)((i * 37) % 3);

		cr_assert_eq(registry_nonce_next(n, f, &next), 0);
		cr_assert_gt(next, n);
		cr_assert_eq(registry_nonce_features(next), f);
		n = next;
	}
}

/* A record that advertises PSKs verifies; the bits are signed: flipping one breaks it. */
Test(attest_record, features_are_signed)
{
	struct test_node n;
	struct registry_record p;
	uint64_t nonce;

	make_node(&n, 0x13);
	cr_assert_eq(registry_nonce_next(3, REGISTRY_FEATURE_PSK_V1, &nonce), 0);
	cr_assert_eq(registry_record_sign(&n.id, n.secrets, 1, n.app_id, "h:1", REGISTRY_MODE_WIREGUARD,
					  nonce, &p),
		     0);
	cr_assert_eq(registry_record_verify(&p, 1, n.app_id, n.root), ATTEST_VALID);
	cr_assert_eq(registry_nonce_features(p.nonce), REGISTRY_FEATURE_PSK_V1);
	p.nonce ^= (uint64_t)REGISTRY_FEATURE_PSK_V1 << 32;
	cr_assert_eq(registry_record_verify(&p, 1, n.app_id, n.root), ATTEST_BAD_NODE_SIGNATURE,
		     "a feature bit stripped by the RPC");
	registry_record_clear(&p);
	attest_node_secrets_free(n.secrets);
}

Test(attest_keys, instance_ids_separate_keys)
{
	struct test_node a, b, a2;

	make_node(&a, 0x11);
	make_node(&b, 0x12);
	make_node(&a2, 0x11);
	cr_assert_neq(memcmp(a.secrets->node_key, b.secrets->node_key, 32), 0);
	cr_assert_neq(memcmp(a.secrets->wg_private_key, b.secrets->wg_private_key, 32), 0);
	cr_assert_eq(memcmp(a.secrets->wg_private_key, a2.secrets->wg_private_key, 32), 0);
	/* The WireGuard key is not the material itself, nor the node key. */
	cr_assert_neq(memcmp(a.secrets->wg_private_key, a.secrets->node_key, 32), 0);
	attest_node_secrets_free(a.secrets);
	attest_node_secrets_free(b.secrets);
	attest_node_secrets_free(a2.secrets);
}

/* Clamping and the public key, checked by wireguard-tools at test time. */
Test(attest_keys, wireguard_key_matches_wg_pubkey)
{
	uint8_t material[32], priv[32], pub[32];
	char priv_b64[WG_KEY_B64_LEN], pub_b64[WG_KEY_B64_LEN], cmd[128], out[64] = "";
	FILE *f;

	for (int i = 0; i < 32; i++)
		material[i] = (uint8_t)(0xa0 + i);
	attest_wireguard_key_from_material(material, priv);
	cr_assert_eq(priv[0] & 7, 0);
	cr_assert_eq(priv[31] & 0xc0, 0x40);
	cr_assert_eq(x25519_public_from_private(pub, priv), 0);
	wg_key_to_base64(priv_b64, priv);
	wg_key_to_base64(pub_b64, pub);
	snprintf(cmd, sizeof(cmd), "echo '%s' | wg pubkey", priv_b64);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(out, sizeof(out), f), "wg pubkey printed nothing");
	pclose(f);
	out[strcspn(out, "\n")] = '\0';
	cr_assert_str_eq(out, pub_b64);
}

/* The derivation docs/keys.md gives (Python's hashlib.blake2s, then clamping) is ours. */
Test(attest_keys, wireguard_key_is_the_documented_blake2s)
{
	uint8_t material[32], priv[32];
	char hex[65], mhex[65], cmd[512], *want;

	for (int i = 0; i < 32; i++)
		material[i] = (uint8_t)(0x31 * i + 5);
	hex_encode(mhex, material, 32);
	attest_wireguard_key_from_material(material, priv);
	hex_encode(hex, priv, 32);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c 'import hashlib,sys; k=bytearray(hashlib.blake2s("
		 "b\"dstack-p2p wireguard x25519 private key v1\", key=bytes.fromhex(sys.argv[1])).digest());"
		 " k[0]&=248; k[31]&=127; k[31]|=64; print(k.hex())' %s", mhex);
	want = command_output(cmd);
	cr_assert_str_eq(hex, want);
	free(want);
}

/* Issue 10, point 1: the KMS root comes from our own GetKey reply, never from the RPC. */
Test(attest_record, kms_root_is_recovered_from_our_own_key)
{
	struct test_node n;
	uint8_t root[20];

	make_node(&n, 0x21);
	cr_assert_eq(attest_identity_kms_root(&n.id, root), 0);
	cr_assert_eq(memcmp(root, n.root, 20), 0, "the root that signed our app key");
	n.id.chain.kms_signature[10] ^= 0x01;
	cr_assert(attest_identity_kms_root(&n.id, root) < 0 || memcmp(root, n.root, 20),
		  "a tampered signature never yields the genuine root");
	n.id.chain.has_kms_signature = false;
	cr_assert_eq(attest_identity_kms_root(&n.id, root), -ENOKEY, "a local key provider");
	attest_node_secrets_free(n.secrets);
}
