/* SPDX-License-Identifier: MIT */
/* mesh: `status` without a running agent: the same snapshot, read from the kernel and the chain. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/attest.h"
#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "netlink/netlink.h"
#include "registry/registry.h"

/* What status reads: our identity (if the guest agent answers), the registry, the device. */
struct standalone {
	struct mesh_self self;
	struct attest_identity id;
	bool loaded;          /* the guest agent gave us our identity */
	bool have_id;         /* ...and own_root */
	uint8_t own_root[20]; /* with have_id: the KMS root of our own key */
	struct registry_handle *reg;
	struct wg_backend *wg;
	struct wg_device *dev;
	struct mesh_peer *peers;
	struct mesh_rejected *rejected;
	size_t n_peers, n_rejected;
};

/* Our identity from the guest agent, if there is one: without it no record is ours. */
static void load_identity(struct standalone *st)
{
	struct attest_client *attest = NULL;

	if (attest_client_new(NULL, &attest) == 0 && attest_load_identity(attest, &st->id, NULL) == 0) {
		st->loaded = true;
		/* Then the KMS root is ours, not the RPC's (which must agree). */
		st->have_id = attest_identity_kms_root(&st->id, st->own_root) == 0;
		memcpy(st->self.instance_id, st->id.instance_id, 20);
		memcpy(st->self.wg_public_key, st->id.wg_public_key, 32);
	}
	attest_client_free(attest);
}

/* The chain id and KMS root from the RPC (checked against our own), then the registry. */
static int read_chain(struct standalone *st, const struct mesh_config *cfg, struct err_detail *why)
{
	bool changed;
	int r;

	r = cfg->rpc_error < 0 ? cfg->rpc_error
			       : registry_handle_open(&st->reg, &cfg->rpc, st->self.contract, NULL);
	if (r == 0)
		r = registry_handle_chain_id(st->reg, &st->self.chain_id);
	if (r == 0) {
		registry_handle_expect_chain_id(st->reg, st->self.chain_id);
		r = registry_handle_kms_root(st->reg, st->self.kms_root);
	}
	if (r == 0 && st->have_id && memcmp(st->own_root, st->self.kms_root, 20)) {
		char theirs[41], ours[41];

		hex_encode(theirs, st->self.kms_root, 20);
		hex_encode(ours, st->own_root, 20);
		err_detail_set(why,
			       "the RPC's kmsRoot() says 0x%s, but our own key was issued by the KMS "
			       "root 0x%s: not believing this RPC",
			       theirs, ours);
		return -EPROTO;
	}
	if (r == 0)
		r = registry_handle_poll(st->reg, true, &changed);
	if (r < 0)
		err_detail_set(why, "%s", st->reg ? registry_handle_error(st->reg) : errstr(r));
	return r;
}

/* The snapshot of what was read, "registered" decided as the agent decides it. */
static void fill_snapshot(struct standalone *st, const struct mesh_config *cfg, struct mesh_snapshot *s)
{
	const struct registry_record *recs, *own;
	size_t n;

	recs = registry_handle_peers(st->reg, &n);
	/* Our record is current when it carries the features the agent registers. */
	st->self.features = cfg->psk && cfg->mode == REGISTRY_MODE_WIREGUARD ? REGISTRY_FEATURE_PSK_V1 : 0;
	own = mesh_classify_records(&st->self, recs, n, st->peers, &st->n_peers, st->rejected,
				    &st->n_rejected);
	if (own)
		snprintf(st->self.endpoint, sizeof(st->self.endpoint), "%s",
			 own->endpoint ? own->endpoint : "");
	mesh_snapshot_init(s, cfg, st->loaded ? &st->id : NULL, st->wg);
	s->chain_id = st->self.chain_id;
	s->endpoint = st->self.endpoint;
	s->token = own ? own->token_id : 0;
	s->registered = mesh_own_record_valid(&st->self, own);
	s->peers = st->peers;
	s->n_peers = st->n_peers;
	s->rejected = st->rejected;
	s->n_rejected = st->n_rejected;
	s->block = registry_handle_block(st->reg);
	s->last_sync_ms_ago = 0; /* read just now */
	s->rpc = registry_handle_stats(st->reg);
}

int mesh_status_standalone(const struct mesh_config *cfg, struct buf *out, struct err_detail *why)
{
	struct standalone st = { .self.mode = cfg->mode };
	struct mesh_snapshot snap;
	int r;

	st.peers = calloc(REGISTRY_MAX_PEERS, sizeof(*st.peers));
	st.rejected = calloc(REGISTRY_MAX_PEERS, sizeof(*st.rejected));
	if (!st.peers || !st.rejected) {
		r = -ENOMEM;
		goto out;
	}
	if (!cfg->contract[0]) {
		r = -EINVAL;
		err_detail_set(why, "no cluster contract (CLUSTER_CONTRACT or --contract)");
		goto out;
	}
	memcpy(st.self.contract, cfg->contract_addr, 20);
	load_identity(&st);
	r = read_chain(&st, cfg, why);
	if (r < 0)
		goto out;
	/* No interface: the report says backend "none". */
	if (cfg->mode == REGISTRY_MODE_WIREGUARD && wg_backend_open_auto(&st.wg, cfg->ifname, 0, NULL) == 0)
		wg_get_device(st.wg, cfg->ifname, &st.dev, NULL); /* live counters, if it answers */
	fill_snapshot(&st, cfg, &snap);
	r = mesh_snapshot_status_json(&snap, st.dev, out);
out:
	wg_device_free(st.dev);
	if (st.wg)
		wg_backend_close(st.wg);
	registry_handle_close(st.reg);
	free(st.peers);
	free(st.rejected);
	return r;
}
