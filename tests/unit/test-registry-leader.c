/* SPDX-License-Identifier: MIT */
/* Signed leader calls (registry/leader.c) against Foundry's cast: the EIP-712 digest, the
 * node key's signature and the calldata, for random actions, keys and fields. */
#include <errno.h>
#include <stdlib.h>

#include "chain/chain.h"
#include "registry/registry.h"
#include "tests/unit/test-chain-helpers.h"

static const char *const call_sigs[] = {
	"electLeaderSigned(uint256,uint256,bytes)",
	"leaderHeartbeatSigned(uint256,uint256,bytes)",
	"castVoteSigned(uint256,uint256,bool,uint256,bytes)",
};

/* The contract's digest, rebuilt with cast alone. */
static char *cast_digest(uint64_t chain_id, const char *contract, const struct registry_leader_call *c)
{
	char *dom_t = cast_output("keccak 'EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)'");
	char *name = cast_output("keccak DstackClusterNFT"), *one = cast_output("keccak 1");
	char *dom_enc = cast_output("abi-encode 'f(bytes32,bytes32,bytes32,uint256,address)' %s %s %s %llu %s",
				    dom_t, name, one, (unsigned long long)chain_id, contract);
	char *dom = cast_output("keccak %s", dom_enc);
	char *type = cast_output("keccak 'LeaderAction(uint8 action,uint256 tokenId,uint256 target,bool "
				 "noConfidence,uint256 nonce,uint256 deadline)'");
	char *st_enc = cast_output("abi-encode 'f(bytes32,uint8,uint256,uint256,bool,uint256,uint256)' %s %u %llu "
				   "%llu %s %llu %llu", type, c->action, (unsigned long long)c->token,
				   (unsigned long long)c->target, c->no_confidence ? "true" : "false",
				   (unsigned long long)c->nonce, (unsigned long long)c->deadline);
	char *st = cast_output("keccak %s", st_enc);
	char *digest = cast_output("keccak 0x1901%s%s", dom + 2, st + 2);

	free(dom_t), free(name), free(one), free(dom_enc), free(dom), free(type), free(st_enc), free(st);
	return digest;
}

Test(chain_leader, digest_signature_and_calldata_match_cast)
{
	srand(14);
	for (int round = 0; round < 6; round++) {
		struct registry_leader_call c = { 0 };
		uint8_t contract[20], key[32], digest[32];
		uint64_t chain_id = round % 2 ? 31337 : 8453;
		char *contract_hex, *key_hex, *digest_hex, *want_digest, *want_sig, *sig_hex, *want_cd, *cd_hex;
		struct buf cd;

		fill_random(contract, sizeof(contract));
		do
			fill_random(key, sizeof(key));
		while (key[0] == 0 || key[0] == 0xff);  /* inside the curve order */
		c.action = (uint8_t)(round % 3);
		c.token = 1 + (uint64_t)rand() % 254;
		c.target = c.action == REGISTRY_LEADER_VOTE ? 1 + (uint64_t)rand() % 254 : 0;
		c.no_confidence = c.action == REGISTRY_LEADER_VOTE && rand() % 2;
		c.nonce = (uint64_t)rand();
		c.deadline = 1700000000u + (uint64_t)rand();
		contract_hex = hex0x(contract, 20);
		key_hex = hex0x(key, 32);

		registry_leader_digest(chain_id, contract, &c, digest);
		digest_hex = hex0x(digest, 32);
		want_digest = cast_digest(chain_id, contract_hex, &c);
		cr_assert_str_eq(digest_hex, want_digest, "round %d: digest", round);

		cr_assert_eq(registry_sign_leader_call(chain_id, contract, key, &c), 0);
		sig_hex = hex0x(c.signature, 65);
		want_sig = cast_output("wallet sign --no-hash --private-key %s %s", key_hex, want_digest);
		cr_assert_str_eq(sig_hex, want_sig, "round %d: signature", round);

		buf_init(&cd, 0);
		cr_assert_eq(registry_encode_leader_call(&c, &cd), 0);
		cd_hex = hex0x(cd.data, cd.len);
		if (c.action == REGISTRY_LEADER_VOTE)
			want_cd = cast_output("calldata '%s' %llu %llu %s %llu %s", call_sigs[c.action],
					      (unsigned long long)c.token, (unsigned long long)c.target,
					      c.no_confidence ? "true" : "false", (unsigned long long)c.deadline, sig_hex);
		else
			want_cd = cast_output("calldata '%s' %llu %llu %s", call_sigs[c.action],
					      (unsigned long long)c.token, (unsigned long long)c.deadline, sig_hex);
		cr_assert_str_eq(cd_hex, want_cd, "round %d: calldata", round);

		buf_clear(&cd);
		free(contract_hex), free(key_hex), free(digest_hex), free(want_digest), free(want_sig);
		free(sig_hex), free(want_cd), free(cd_hex);
	}
}

Test(chain_leader, unknown_action_is_refused)
{
	struct registry_leader_call c = { .action = 3 };
	uint8_t contract[20] = { 0 }, key[32] = { 1 };
	struct buf cd;

	buf_init(&cd, 0);
	cr_assert_eq(registry_sign_leader_call(1, contract, key, &c), -EINVAL);
	cr_assert_eq(registry_encode_leader_call(&c, &cd), -EINVAL);
	buf_clear(&cd);
}
