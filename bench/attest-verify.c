/* SPDX-License-Identifier: MIT */
/* Benchmark of attest/: what a node pays to verify peers' records and to derive its keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/attest.h"
#include "chain/chain.h"
#include "common/common.h"
#include "netlink/netlink.h"
#include "registry/registry.h"

/* One node's identity from a fixed KMS root, derived as the KMS and agent would. */
static int make_identity(struct attest_identity *id, struct attest_node_secrets *s,
			 uint8_t root[20])
{
	uint8_t root_sk[32], app_sk[32], pub[64], digest[32], material[32];
	char path[ATTEST_KEY_PATH_MAX];

	memset(id, 0, sizeof(*id));
	memset(root_sk, 0x42, 32);
	memset(id->app_id, 0x5b, 20);
	memset(id->instance_id, 0xa0, 20);
	if (crypto_pubkey_from_secret(root_sk, pub) < 0 ||
	    attest_derive_app_key(root_sk, id->app_id, app_sk) < 0 ||
	    crypto_pubkey_from_secret(app_sk, id->app_pubkey) < 0)
		return -1;
	crypto_address_from_pubkey(pub, root);
	attest_kms_message_digest(id->app_id, id->app_pubkey, digest);
	if (crypto_sign_digest(root_sk, digest, id->chain.kms_signature) < 0)
		return -1;
	id->chain.has_kms_signature = true;
	attest_key_path(path, sizeof(path), ATTEST_NODE_KEY_PATH_PREFIX, id->instance_id);
	if (attest_derive_path_key(app_sk, path, s->node_key) < 0 ||
	    crypto_pubkey_from_secret(s->node_key, id->node_pubkey) < 0)
		return -1;
	attest_app_message_digest(ATTEST_NODE_KEY_PURPOSE, id->node_pubkey, digest);
	if (crypto_sign_digest(app_sk, digest, id->chain.app_signature) < 0)
		return -1;
	attest_key_path(path, sizeof(path), ATTEST_WG_KEY_PATH_PREFIX, id->instance_id);
	if (attest_derive_path_key(app_sk, path, material) < 0)
		return -1;
	attest_wireguard_key_from_material(material, s->wg_private_key);
	return x25519_public_from_private(id->wg_public_key, s->wg_private_key);
}

/* Prints the figure and returns microseconds per operation. */
static double report(const char *what, int n, uint64_t t0)
{
	uint64_t ms = now_ms() - t0;
	double us = ms * 1000.0 / n;

	printf("attest: %-34s %6d in %5llu ms  %8.1f us each\n", what, n, (unsigned long long)ms, us);
	return us;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	struct attest_node_secrets *s = attest_node_secrets_new();
	struct attest_identity id;
	struct registry_record rec;
	uint8_t root[20], key[32], wg[32];
	double verify_us;
	uint64_t t0;
	int bad = 0;

	if (!s || n <= 0 || make_identity(&id, s, root) < 0) {
		fprintf(stderr, "attest-verify: setup failed\n");
		return 1;
	}
	if (registry_record_sign(&id, s, 1, id.app_id, "10.0.0.1:51820", REGISTRY_MODE_WIREGUARD, 1,
			       &rec) < 0)
		return 1;

	t0 = now_ms();
	for (int i = 0; i < n; i++)
		bad += registry_record_verify(&rec, 1, id.app_id, root) != ATTEST_VALID;
	verify_us = report("verify_record (3 recoveries)", n, t0);

	t0 = now_ms();
	for (int i = 0; i < n; i++) {
		struct registry_record r2;

		bad += registry_record_sign(&id, s, 1, id.app_id, "10.0.0.1:51820",
					  REGISTRY_MODE_WIREGUARD, 2, &r2) < 0;
		registry_record_clear(&r2);
	}
	report("sign_record", n, t0);

	t0 = now_ms();
	for (int i = 0; i < n; i++)
		bad += attest_derive_path_key(s->node_key, "dstack-p2p/node/x", key) < 0;
	report("HKDF path key", n, t0);

	t0 = now_ms();
	for (int i = 0; i < n; i++) {
		attest_wireguard_key_from_material(key, s->wg_private_key);
		bad += x25519_public_from_private(wg, s->wg_private_key) < 0;
	}
	report("WireGuard key (BLAKE2s + X25519)", n, t0);
	/* The agent re-verifies every record it has not seen before; a full cluster: */
	printf("attest: verifying 254 records once:     %.1f ms\n", 254 * verify_us / 1000);

	registry_record_clear(&rec);
	secret_wipe(key, sizeof(key));
	attest_node_secrets_free(s);
	return bad ? 1 : 0;
}
