/* SPDX-License-Identifier: MIT */
/*
 * mesh: what the chain must say before the agent believes any of it: the contract is a
 * cluster, the chain id (pinned or confirmed), the KMS root our own key came from.
 */
#include <errno.h>
#include <string.h>

#include "attest/attest.h"
#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "net/net.h"
#include "registry/registry.h"

/* At the first answer: is the contract a cluster at all? A mistake exits 2, not an outage. */
static int contract_check(struct mesh_agent *a)
{
	int r = registry_handle_check_contract(a->reg);

	if (r == -ENOTTY)
		log_error("CLUSTER_CONTRACT %s has no code on this chain (an account, not a contract, or "
			  "a wrong address or chain): check CLUSTER_CONTRACT and ETH_RPC_URL",
			  a->cfg->contract);
	else if (r == -EPROTOTYPE)
		log_error("CLUSTER_CONTRACT %s is a contract but not a dstack-p2p cluster (no "
			  "PEER_RECORD_TYPEHASH() of dstack-p2p.PeerRecord.v1): check CLUSTER_CONTRACT",
			  a->cfg->contract);
	return r == -ENOTTY || r == -EPROTOTYPE ? -EBADR : r;
}

/*
 * The chain id records are verified against. Pinned (P2P_CHAIN_ID), or confirmed by our
 * own record verifying under it: then an RPC that says another is failed, not believed.
 * Before that, re-read at every full read, so a wrong answer at start does not stick.
 */
static int chain_id_check(struct mesh_agent *a)
{
	uint64_t id;
	int r;

	r = registry_handle_chain_id(a->reg, &id);
	if (r < 0)
		return r;
	if (a->chain_confirmed && id != a->self.chain_id) {
		registry_handle_distrust(a->reg,
					 "serves chain %llu, the cluster is on chain %llu%s; not using "
					 "its answers",
					 (unsigned long long)id, (unsigned long long)a->self.chain_id,
					 a->cfg->chain_id ? " (P2P_CHAIN_ID)" : "");
		return -EPROTO;
	}
	if (a->chain_ready && id != a->self.chain_id)
		log_warn("the RPC now serves chain %llu, not %llu", (unsigned long long)id,
			 (unsigned long long)a->self.chain_id);
	a->self.chain_id = id;
	registry_handle_expect_chain_id(a->reg, id);
	return 0;
}

/*
 * kmsRoot() must name the root our own key came from. An RPC that says otherwise is
 * lying (or serves another cluster): refuse its answers, never adopt its root.
 */
static int kms_root_check(struct mesh_agent *a)
{
	uint8_t root[20];
	char theirs[41], ours[41];
	int r = registry_handle_kms_root(a->reg, root);

	if (r < 0)
		return r;
	if (!memcmp(root, a->self.kms_root, 20))
		return 0;
	hex_encode(theirs, root, 20);
	hex_encode(ours, a->self.kms_root, 20);
	registry_handle_distrust(a->reg,
				 "kmsRoot() says 0x%s, but our own key was issued by the KMS root "
				 "0x%s; not using its answers",
				 theirs, ours);
	return -EPROTO;
}

/* What the chain must say before we believe any of it: a cluster, the chain id, the KMS root. */
int agent_chain_check(struct mesh_agent *a, bool full)
{
	int r;

	if (!a->chain_ready) {
		r = contract_check(a);
		if (r < 0)
			return r;
	}
	if (full || !a->chain_ready) {
		r = chain_id_check(a);
		if (r == 0)
			r = kms_root_check(a);
		if (r < 0)
			return r;
	}
	if (!a->chain_ready)
		log_info("cluster on chain %llu, contract and KMS root checked",
			 (unsigned long long)a->self.chain_id);
	a->chain_ready = true;
	return 0;
}
