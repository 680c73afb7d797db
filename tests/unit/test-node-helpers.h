/* SPDX-License-Identifier: MIT */
/* Helpers shared by the unit tests: a node with a full dstack key chain under a test KMS root. */
#ifndef TEST_NODE_HELPERS_H
#define TEST_NODE_HELPERS_H

#include <string.h>

#include <criterion/criterion.h>

#include "attest/attest.h"
#include "chain/chain.h"
#include "netlink/netlink.h"

/* A node whose keys come from a random KMS root, as the simulator would give them. */
struct test_node {
	uint8_t root_sk[32], root[20], app_id[20];
	struct attest_identity id;
	struct attest_node_secrets *secrets;
};

/* A node under the KMS root derived from root_seed (1: the test cluster's). */
static inline void make_node_rooted(struct test_node *n, uint8_t instance_byte, uint8_t root_seed)
{
	uint8_t app_sk[32], root_pub[64], app_pub[64], digest[32], material[32];
	char path[ATTEST_KEY_PATH_MAX];

	memset(n, 0, sizeof(*n));
	for (int i = 0; i < 32; i++)
		n->root_sk[i] = (uint8_t)(i * 7 + root_seed);
	memset(n->app_id, 0x5b, 20);
	memcpy(n->id.app_id, n->app_id, 20);
	memset(n->id.instance_id, instance_byte, 20);
	n->secrets = attest_node_secrets_new();
	cr_assert_not_null(n->secrets);
	cr_assert_eq(crypto_pubkey_from_secret(n->root_sk, root_pub), 0);
	crypto_address_from_pubkey(root_pub, n->root);
	cr_assert_eq(attest_derive_app_key(n->root_sk, n->app_id, app_sk), 0);
	cr_assert_eq(crypto_pubkey_from_secret(app_sk, app_pub), 0);
	attest_kms_message_digest(n->app_id, app_pub, digest);
	cr_assert_eq(crypto_sign_digest(n->root_sk, digest, n->id.chain.kms_signature), 0);
	n->id.chain.has_kms_signature = true;

	attest_key_path(path, sizeof(path), ATTEST_NODE_KEY_PATH_PREFIX, n->id.instance_id);
	cr_assert_eq(attest_derive_path_key(app_sk, path, n->secrets->node_key), 0);
	cr_assert_eq(crypto_pubkey_from_secret(n->secrets->node_key, n->id.node_pubkey), 0);
	crypto_address_from_pubkey(n->id.node_pubkey, n->id.node_address);
	attest_app_message_digest(ATTEST_NODE_KEY_PURPOSE, n->id.node_pubkey, digest);
	cr_assert_eq(crypto_sign_digest(app_sk, digest, n->id.chain.app_signature), 0);
	memcpy(n->id.app_pubkey, app_pub, 64);

	attest_key_path(path, sizeof(path), ATTEST_WG_KEY_PATH_PREFIX, n->id.instance_id);
	cr_assert_eq(attest_derive_path_key(app_sk, path, material), 0);
	attest_wireguard_key_from_material(material, n->secrets->wg_private_key);
	cr_assert_eq(x25519_public_from_private(n->id.wg_public_key, n->secrets->wg_private_key), 0);
}

static inline void make_node(struct test_node *n, uint8_t instance_byte)
{
	make_node_rooted(n, instance_byte, 1);
}

#endif
