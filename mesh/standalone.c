/* SPDX-License-Identifier: MIT */
/* mesh: `status` without a running agent: the same report, read from the kernel and the chain. */
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

int mesh_status_standalone(const struct mesh_config *cfg, struct buf *out, struct err_detail *why)
{
	struct mesh_agent a = { .cfg = cfg, .control = { .fd = -1 }, .iface_lock = -1 };
	struct mesh_rejected *rejected = calloc(REGISTRY_MAX_PEERS, sizeof(*rejected));
	const struct registry_record *recs, *own;
	uint8_t own_root[20];
	bool changed, have_id = false;
	size_t n;
	int r;

	a.st.peers = calloc(REGISTRY_MAX_PEERS, sizeof(*a.st.peers));
	if (!a.st.peers || !rejected) {
		r = -ENOMEM;
		goto out;
	}
	if (!cfg->contract[0]) {
		r = -EINVAL;
		err_detail_set(why, "no cluster contract (CLUSTER_CONTRACT or --contract)");
		goto out;
	}
	memcpy(a.self.contract, cfg->contract_addr, 20);
	/* Without the guest agent we cannot tell which record is ours: all are peers then. */
	if (attest_client_new(NULL, &a.attest) == 0 && attest_load_identity(a.attest, &a.id, NULL) == 0) {
		/* Then the KMS root is ours, not the RPC's (which must agree). */
		have_id = attest_identity_kms_root(&a.id, own_root) == 0;
		hex_encode(a.instance_hex, a.id.instance_id, 20);
		memcpy(a.self.instance_id, a.id.instance_id, 20);
		memcpy(a.self.wg_public_key, a.id.wg_public_key, 32);
	}
	a.self.mode = cfg->mode;
	r = cfg->rpc_error < 0 ? cfg->rpc_error
			       : registry_handle_open(&a.reg, &cfg->rpc, a.self.contract, NULL);
	if (r == 0)
		r = registry_handle_chain_id(a.reg, &a.self.chain_id);
	if (r == 0) {
		registry_handle_expect_chain_id(a.reg, a.self.chain_id);
		r = registry_handle_kms_root(a.reg, a.self.kms_root);
	}
	if (r == 0 && have_id && memcmp(own_root, a.self.kms_root, 20)) {
		char theirs[41], ours[41];

		hex_encode(theirs, a.self.kms_root, 20);
		hex_encode(ours, own_root, 20);
		err_detail_set(why, "the RPC's kmsRoot() says 0x%s, but our own key was issued by the KMS "
			 "root 0x%s: not believing this RPC", theirs, ours);
		r = -EPROTO;
		goto out;
	}
	if (r == 0)
		r = registry_handle_poll(a.reg, true, &changed);
	if (r < 0) {
		err_detail_set(why, "%s", a.reg ? registry_handle_error(a.reg) : errstr(r));
		goto out;
	}
	a.chain_ready = true;
	a.block = registry_handle_block(a.reg);
	a.last_sync_ms = now_ms();
	if (cfg->mode == REGISTRY_MODE_WIREGUARD && wg_backend_open_auto(&a.wg, cfg->ifname, 0, NULL) < 0)
		a.wg = NULL;  /* no interface: the report says backend "none" */

	recs = registry_handle_peers(a.reg, &n);
	own = mesh_classify_records(&a.self, recs, n, a.st.peers, &a.st.n_peers, rejected, &a.st.n_rejected);
	memcpy(a.st.rejected, rejected, a.st.n_rejected * sizeof(*rejected));
	if (own) {
		a.st.token = own->token_id;
		a.st.registered = registry_record_verify(own, a.self.chain_id, a.self.contract, a.self.kms_root) == ATTEST_VALID;
		snprintf(a.self.endpoint, sizeof(a.self.endpoint), "%s", own->endpoint ? own->endpoint : "");
	}
	r = agent_status_json(&a, out);
out:
	if (a.wg)
		wg_backend_close(a.wg);
	registry_handle_close(a.reg);
	attest_client_free(a.attest);
	free(a.st.peers);
	free(rejected);
	return r;
}
