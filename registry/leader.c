/* SPDX-License-Identifier: MIT */
/*
 * Signed leader calls of the registry contract (docs/contracts.md "Signed leader calls"):
 * the EIP-712 digest a node key signs, and the electLeaderSigned / leaderHeartbeatSigned /
 * castVoteSigned calldata anyone may send.
 */
#include <errno.h>
#include <string.h>

#include "common/common.h"
#include "registry/registry.h"

#define LEADER_ACTION_TYPE \
	"LeaderAction(uint8 action,uint256 tokenId,uint256 target,bool noConfidence,uint256 nonce,uint256 deadline)"
#define EIP712_DOMAIN_TYPE "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"

static void word_u64(uint8_t w[static 32], uint64_t v)
{
	memset(w, 0, 32);
	for (int i = 0; i < 8; i++)
		w[31 - i] = (uint8_t)(v >> (8 * i));
}

static void hash_str(uint8_t out[static 32], const char *s)
{
	keccak256(out, s, strlen(s));
}

void registry_leader_domain(uint64_t chain_id, const uint8_t contract[static 20], uint8_t out[static 32])
{
	uint8_t enc[5 * 32] = { 0 };

	hash_str(enc, EIP712_DOMAIN_TYPE);
	hash_str(enc + 32, "DstackClusterNFT");
	hash_str(enc + 64, "1");
	word_u64(enc + 96, chain_id);
	memcpy(enc + 128 + 12, contract, 20);
	keccak256(out, enc, sizeof(enc));
}

void registry_leader_digest(uint64_t chain_id, const uint8_t contract[static 20],
			    const struct registry_leader_call *c, uint8_t out[static 32])
{
	uint8_t st[7 * 32], msg[2 + 64];

	hash_str(st, LEADER_ACTION_TYPE);
	word_u64(st + 32, c->action);
	word_u64(st + 64, c->token);
	word_u64(st + 96, c->target);
	word_u64(st + 128, c->no_confidence);
	word_u64(st + 160, c->nonce);
	word_u64(st + 192, c->deadline);
	msg[0] = 0x19;
	msg[1] = 0x01;
	registry_leader_domain(chain_id, contract, msg + 2);
	keccak256(msg + 34, st, sizeof(st));
	keccak256(out, msg, sizeof(msg));
}

int registry_sign_leader_call(uint64_t chain_id, const uint8_t contract[static 20],
			      const uint8_t node_key[static 32], struct registry_leader_call *c)
{
	uint8_t digest[32];
	int r;

	if (c->action > REGISTRY_LEADER_VOTE)
		return -EINVAL;
	registry_leader_digest(chain_id, contract, c, digest);
	r = crypto_sign_digest(node_key, digest, c->signature);
	if (r == 0)
		c->signature[64] += 27;  /* what ecrecover and `cast wallet sign` use */
	return r;
}

const char *const registry_leader_call_sigs[3] = {
	[REGISTRY_LEADER_ELECT] = "electLeaderSigned(uint256,uint256,bytes)",
	[REGISTRY_LEADER_HEARTBEAT] = "leaderHeartbeatSigned(uint256,uint256,bytes)",
	[REGISTRY_LEADER_VOTE] = "castVoteSigned(uint256,uint256,bool,uint256,bytes)",
};

int registry_encode_leader_call(const struct registry_leader_call *c, struct buf *calldata)
{
	const char *const *sigs = registry_leader_call_sigs;
	struct abi_encoder e;
	uint8_t sel[4];
	int r;

	if (c->action > REGISTRY_LEADER_VOTE)
		return -EINVAL;
	abi_selector(sigs[c->action], sel);
	if ((r = buf_append(calldata, sel, 4)) < 0 ||
	    (r = abi_enc_begin(&e, calldata, c->action == REGISTRY_LEADER_VOTE ? 5 : 3)) < 0 ||
	    (r = abi_put_uint64(&e, c->token)) < 0)
		return r;
	if (c->action == REGISTRY_LEADER_VOTE &&
	    ((r = abi_put_uint64(&e, c->target)) < 0 || (r = abi_put_bool(&e, c->no_confidence)) < 0))
		return r;
	if ((r = abi_put_uint64(&e, c->deadline)) < 0 || (r = abi_put_bytes(&e, c->signature, 65)) < 0)
		return r;
	return abi_enc_end(&e);
}

int registry_decode_leader_call(const uint8_t *data, size_t len, struct registry_leader_call *c)
{
	struct abi_tuple args;
	const uint8_t *sig;
	uint8_t sel[4];
	size_t n, slot = 0;
	int action = -1;

	memset(c, 0, sizeof(*c));
	for (int i = REGISTRY_LEADER_ELECT; len >= 4 && i <= REGISTRY_LEADER_VOTE; i++) {
		abi_selector(registry_leader_call_sigs[i], sel);
		if (!memcmp(data, sel, 4))
			action = i;
	}
	if (action < 0)
		return -EINVAL;
	c->action = (uint8_t)action;
	abi_tuple_init(&args, data + 4, len - 4);
	if (abi_get_uint64(&args, slot++, &c->token) < 0)
		return -EBADMSG;
	if (action == REGISTRY_LEADER_VOTE &&
	    (abi_get_uint64(&args, slot++, &c->target) < 0 ||
	     abi_get_bool(&args, slot++, &c->no_confidence) < 0))
		return -EBADMSG;
	if (abi_get_uint64(&args, slot++, &c->deadline) < 0 ||
	    abi_get_bytes(&args, slot, &sig, &n) < 0 || n != 65)
		return -EBADMSG;
	memcpy(c->signature, sig, 65);
	return 0;
}

int registry_leader_call_signer(uint64_t chain_id, const uint8_t contract[static 20],
				const struct registry_leader_call *c, uint8_t signer[static 20])
{
	uint8_t digest[32], pub[64];

	if (!crypto_signature_v_valid(c->signature))
		return -EBADMSG;
	registry_leader_digest(chain_id, contract, c, digest);
	if (crypto_recover_pubkey(digest, c->signature, pub) < 0)
		return -EBADMSG;
	crypto_address_from_pubkey(pub, signer);
	return 0;
}
