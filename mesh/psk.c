/* SPDX-License-Identifier: MIT */
/*
 * mesh: pairwise WireGuard pre-shared keys (docs/keys.md). Holds the cluster secret in
 * locked memory and the cluster's epoch length; gives the decision the PSK of a pair now,
 * for peers whose record advertises the feature, and the nonce features we register.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/attest.h"
#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "registry/registry.h"

struct mesh_psk {
	struct attest_cluster_secret *secret; /* NULL: P2P_PSK=off */
	uint8_t self_pub[32];
	uint64_t epoch_s; /* the contract's pskEpoch(), or the default */
	uint64_t next_read_ms;
	bool said_default;
};

int mesh_psk_open(struct mesh_psk **out, bool on, struct attest_client *c, const uint8_t self_pub[static 32])
{
	struct mesh_psk *k = calloc(1, sizeof(*k));
	int r;

	*out = NULL;
	if (!k)
		return -ENOMEM;
	memcpy(k->self_pub, self_pub, 32);
	k->epoch_s = REGISTRY_PSK_EPOCH_DEFAULT;
	if (on) {
		k->secret = attest_cluster_secret_new();
		r = k->secret ? attest_load_cluster_secret(c, k->secret) : -ENOMEM;
		if (r < 0) {
			mesh_psk_close(k);
			return r;
		}
	}
	*out = k;
	return 0;
}

void mesh_psk_close(struct mesh_psk *k)
{
	if (!k)
		return;
	attest_cluster_secret_free(k->secret);
	free(k);
}

uint8_t mesh_psk_features(const struct mesh_psk *k)
{
	return k && k->secret ? REGISTRY_FEATURE_PSK_V1 : 0;
}

void mesh_psk_tick(struct mesh_psk *k, struct registry_handle *reg, uint64_t now_ms, unsigned interval_ms)
{
	struct eth_rpc *rpc;
	uint64_t s;

	if (!k || !k->secret || now_ms < k->next_read_ms)
		return;
	k->next_read_ms = now_ms + interval_ms;
	rpc = registry_handle_rpc(reg);

	if (registry_psk_epoch(rpc, registry_handle_contract(reg), &s) == 0) {
		if (s != k->epoch_s)
			log_info("PSK epoch: %llu s (the contract's pskEpoch)", (unsigned long long)s);
		k->epoch_s = s;
		k->said_default = false;
	} else if (!k->said_default) {
		/* A contract from before pskEpoch, or an RPC that failed: keep the last length. */
		log_warn("pskEpoch() unread (%s); PSK epoch stays %llu s", eth_rpc_error(rpc),
			 (unsigned long long)k->epoch_s);
		k->said_default = true;
	}
}

bool mesh_psk_pair_uses(const struct mesh_psk *k, const struct mesh_peer *m)
{
	return k && k->secret && m->mode == REGISTRY_MODE_WIREGUARD &&
	       (registry_nonce_features(m->nonce) & REGISTRY_FEATURE_PSK_V1);
}

int mesh_psk_for_peer(const void *ctx, const struct mesh_peer *m, uint8_t out[static 32])
{
	const struct mesh_psk *k = ctx;
	uint64_t epoch;

	if (!mesh_psk_pair_uses(k, m) || attest_psk_epoch((int64_t)time(NULL), k->epoch_s, &epoch) < 0)
		return 0;
	return attest_pair_psk(k->secret, k->self_pub, m->wg_key, epoch, out) == 0;
}
