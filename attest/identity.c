/* SPDX-License-Identifier: MIT */
/* The node's identity from the guest agent (docs/keys.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attest/attest.h"
#include "common/common.h"
#include "crypto/crypto.h"

struct attest_node_secrets *attest_node_secrets_new(void)
{
	return secret_alloc(sizeof(struct attest_node_secrets));
}

void attest_node_secrets_free(struct attest_node_secrets *s)
{
	secret_free(s, sizeof(*s));
}

/* GetKey for "<prefix><instance id>"; the key goes only into key_out. */
static int get_instance_key(struct attest_client *c, const char *prefix, const char *purpose,
			    const uint8_t instance_id[static 20], uint8_t key_out[static 32],
			    struct attest_kms_signatures *chain)
{
	char path[ATTEST_KEY_PATH_MAX];
	int r;

	r = attest_key_path(path, sizeof(path), prefix, instance_id);
	if (r < 0)
		return r;
	return attest_get_key(c, path, purpose, key_out, chain);
}

int attest_load_identity(struct attest_client *c, struct attest_identity *id,
			 struct attest_node_secrets *secrets)
{
	struct attest_node_secrets *keys;
	struct attest_kms_signatures wg_chain;
	struct attest_info info;
	uint8_t digest[32];
	int r;

	memset(id, 0, sizeof(*id));
	/* Work in our own locked copy so a failure never leaves half a key with the caller. */
	keys = attest_node_secrets_new();
	if (!keys)
		return -ENOMEM;
	r = attest_get_info(c, &info);
	if (r < 0)
		goto out;
	memcpy(id->app_id, info.app_id, 20);
	memcpy(id->instance_id, info.instance_id, 20);
	attest_info_clear(&info);

	r = get_instance_key(c, ATTEST_NODE_KEY_PATH_PREFIX, ATTEST_NODE_KEY_PURPOSE,
			     id->instance_id, keys->node_key, &id->chain);
	if (r < 0)
		goto out;
	r = crypto_pubkey_from_secret(keys->node_key, id->node_pubkey);
	if (r < 0)
		goto out;
	crypto_address_from_pubkey(id->node_pubkey, id->node_address);
	attest_app_message_digest(ATTEST_NODE_KEY_PURPOSE, id->node_pubkey, digest);
	r = crypto_recover_pubkey(digest, id->chain.app_signature, id->app_pubkey);
	if (r < 0)
		goto out;

	/* The material's own chain is not needed: only its derived X25519 key is used. */
	r = get_instance_key(c, ATTEST_WG_KEY_PATH_PREFIX, ATTEST_WG_KEY_PURPOSE, id->instance_id,
			     keys->wg_private_key, &wg_chain);
	if (r < 0)
		goto out;
	attest_wireguard_key_from_material(keys->wg_private_key, keys->wg_private_key);
	r = x25519_public_from_private(id->wg_public_key, keys->wg_private_key);
	if (r < 0)
		goto out;
	if (secrets)
		memcpy(secrets, keys, sizeof(*keys));
out:
	attest_node_secrets_free(keys);
	if (r < 0)
		memset(id, 0, sizeof(*id));
	return r;
}
