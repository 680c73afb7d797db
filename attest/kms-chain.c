/* SPDX-License-Identifier: MIT */
/* dstack's KMS signature chain (app key -> KMS root): the signed messages and their verification. */
#include <errno.h>
#include <string.h>

#include "attest/attest.h"
#include "common/common.h"

static const char kms_message_prefix[] = "dstack-kms-issued:";

void attest_app_message_digest(const char *purpose, const uint8_t key_pub[static 64],
			       uint8_t digest[static 32])
{
	struct keccak256_ctx k;
	uint8_t compressed[33];
	char hex[2 * 33 + 1];

	crypto_compress_pubkey(key_pub, compressed);
	hex_encode(hex, compressed, sizeof(compressed));
	keccak256_init(&k);
	keccak256_update(&k, purpose, strlen(purpose));
	keccak256_update(&k, ":", 1);
	keccak256_update(&k, hex, 2 * 33);
	keccak256_final(&k, digest);
}

void attest_kms_message_digest(const uint8_t app_id[static 20], const uint8_t app_pub[static 64],
			       uint8_t digest[static 32])
{
	uint8_t msg[sizeof(kms_message_prefix) - 1 + 20 + 33], *p = msg;

	memcpy(p, kms_message_prefix, sizeof(kms_message_prefix) - 1);
	p += sizeof(kms_message_prefix) - 1;
	memcpy(p, app_id, 20);
	crypto_compress_pubkey(app_pub, p + 20);
	keccak256(digest, msg, sizeof(msg));
}

const char *attest_verdict_str(enum attest_verdict v)
{
	switch (v) {
	case ATTEST_VALID:
		return "valid";
	case ATTEST_MALFORMED:
		return "malformed key or signature";
	case ATTEST_WRONG_PURPOSE:
		return "key issued for another purpose";
	case ATTEST_WRONG_APP_ID:
		return "key issued to another app";
	case ATTEST_BAD_APP_SIGNATURE:
		return "app signature (chain[0]) is invalid";
	case ATTEST_APP_KEY_MISMATCH:
		return "app signature (chain[0]) is not by the claimed app key";
	case ATTEST_NO_KMS_SIGNATURE:
		return "no KMS signature (chain[1] empty: local key provider)";
	case ATTEST_BAD_KMS_SIGNATURE:
		return "KMS signature (chain[1]) is invalid";
	case ATTEST_WRONG_ROOT:
		return "KMS signature (chain[1]) is not by the expected KMS root";
	case ATTEST_BAD_NODE_SIGNATURE:
		return "node signature over the record is invalid";
	}
	return "unknown verdict";
}

/* A 64-byte x||y is a key only if it is a point on the curve: round-trip it. */
static bool pubkey_valid(const uint8_t pub[static 64])
{
	uint8_t compressed[33], back[64];

	crypto_compress_pubkey(pub, compressed);
	return crypto_decompress_pubkey(compressed, back) == 0 && !memcmp(back, pub, 64);
}

enum attest_verdict attest_verify_kms_chain(const struct attest_key_claim *chain,
					const struct attest_expect *expect,
					uint8_t *app_pub_out)
{
	uint8_t digest[32], app_pub[64], root_pub[64], root[20];

	if (!chain->key_pub || !chain->purpose || !chain->app_id || !chain->sigs ||
	    !pubkey_valid(chain->key_pub) || (chain->app_pub && !pubkey_valid(chain->app_pub)) ||
	    !crypto_signature_v_valid(chain->sigs->app_signature))
		return ATTEST_MALFORMED;
	/* Claims first: they are cheap and say exactly what is wrong. */
	if (strcmp(chain->purpose, expect->purpose))
		return ATTEST_WRONG_PURPOSE;
	if (memcmp(chain->app_id, expect->app_id, 20))
		return ATTEST_WRONG_APP_ID;

	attest_app_message_digest(chain->purpose, chain->key_pub, digest);
	if (crypto_recover_pubkey(digest, chain->sigs->app_signature, app_pub) < 0)
		return ATTEST_BAD_APP_SIGNATURE;
	if (chain->app_pub && memcmp(app_pub, chain->app_pub, 64))
		return ATTEST_APP_KEY_MISMATCH;
	if (app_pub_out)
		memcpy(app_pub_out, app_pub, 64);

	if (!chain->sigs->has_kms_signature)
		return ATTEST_NO_KMS_SIGNATURE;
	if (!crypto_signature_v_valid(chain->sigs->kms_signature))
		return ATTEST_MALFORMED;
	attest_kms_message_digest(chain->app_id, app_pub, digest);
	if (crypto_recover_pubkey(digest, chain->sigs->kms_signature, root_pub) < 0)
		return ATTEST_BAD_KMS_SIGNATURE;
	crypto_address_from_pubkey(root_pub, root);
	if (memcmp(root, expect->kms_root, 20))
		return ATTEST_WRONG_ROOT;
	return ATTEST_VALID;
}

int attest_identity_kms_root(const struct attest_identity *id, uint8_t root[static 20])
{
	uint8_t digest[32], root_pub[64];

	if (!id->chain.has_kms_signature)
		return -ENOKEY;
	if (!crypto_signature_v_valid(id->chain.kms_signature) || !pubkey_valid(id->app_pubkey))
		return -EBADMSG;
	attest_kms_message_digest(id->app_id, id->app_pubkey, digest);
	if (crypto_recover_pubkey(digest, id->chain.kms_signature, root_pub) < 0)
		return -EBADMSG;
	crypto_address_from_pubkey(root_pub, root);
	return 0;
}
