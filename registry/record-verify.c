/* SPDX-License-Identifier: MIT */
/* Verifying a registry record: its fields, the node key's KMS chain and the node's signature. */
#include <string.h>

#include "common/common.h"
#include "registry/registry.h"

enum attest_verdict registry_record_verify(const struct registry_record *p, uint64_t chain_id,
					   const uint8_t contract[static 20],
					   const uint8_t kms_root[static 20])
{
	struct attest_kms_signatures sigs = { .has_kms_signature = true };
	struct attest_key_claim chain = {
		.key_pub = p->node_pubkey,
		.purpose = ATTEST_NODE_KEY_PURPOSE,
		.app_id = contract,
		.app_pub = p->app_pubkey,
		.sigs = &sigs,
	};
	struct attest_expect expect = {
		.purpose = ATTEST_NODE_KEY_PURPOSE,
		.app_id = contract,
		.kms_root = kms_root,
	};
	uint8_t digest[32], signer[64];
	enum attest_verdict v;

	if (p->mode > REGISTRY_MODE_WIREGUARD)
		return ATTEST_MALFORMED;
	memcpy(sigs.app_signature, p->app_signature, 65);
	memcpy(sigs.kms_signature, p->kms_signature, 65);
	v = attest_verify_kms_chain(&chain, &expect, NULL);
	if (v != ATTEST_VALID)
		return v;

	if (!crypto_signature_v_valid(p->node_signature))
		return ATTEST_MALFORMED;
	registry_record_digest(chain_id, contract, p, digest);
	if (crypto_recover_pubkey(digest, p->node_signature, signer) < 0 ||
	    memcmp(signer, p->node_pubkey, 64))
		return ATTEST_BAD_NODE_SIGNATURE;
	return ATTEST_VALID;
}

const char *registry_record_field_problem(const struct registry_record *p)
{
	if (p->token_id < 1 || p->token_id > REGISTRY_MAX_PEERS)
		return "token id outside 1..254";
	if (!p->endpoint || !*p->endpoint)
		return "empty endpoint";
	/* It goes into logs, the peers file's lines and the on-change command's input. */
	for (const char *c = p->endpoint; *c; c++)
		if (*c <= ' ' || *c > '~')
			return "endpoint holds a space, control or non-ASCII byte";
	return NULL;
}
