/* SPDX-License-Identifier: MIT */
/* mesh: what the agent tells the CLI and apps: the peers document and the status document. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "netlink/netlink.h"
#include "registry/registry.h"

/* The peers with their token, label and address: "members" of the peers document. */
static int members_json(const struct mesh_agent *a, struct buf *out)
{
	char addr[16];
	int r = buf_printf(out, "[");

	for (size_t i = 0; i < a->st.n_peers && r == 0; i++) {
		const struct mesh_peer *p = &a->st.peers[i];
		char inst[41];

		hex_encode(inst, p->instance_id, 20);
		mesh_overlay_addr_str(p->token, addr);
		r = buf_printf(out, "%s{\"token\":%u,\"label\":", i ? "," : "", p->token);
		if (r == 0)
			r = json_append_string(out, agent_label(a, p->token, p->instance_id));
		if (r == 0)
			r = buf_printf(out, ",\"instance_id\":\"%s\",\"address\":\"%s\",\"connect\":", inst,
				       p->mode == REGISTRY_MODE_TLS_GATEWAY ? "" : addr);
		if (r == 0)
			r = json_append_string(out, mesh_peer_connect_string(p, addr));
		if (r == 0)
			r = buf_printf(out, "}");
	}
	return r == 0 ? buf_printf(out, "]") : r;
}

/*
 * {"version":1,"registered":..,"contract":..,"mode":..,"token":..,"address":..,"label":..,
 *  "instance_id":..,"generation":..,"peers":[..],"members":[..],"added":[..],"removed":[..],
 *  "leader":{..}|null}  (docs/control-protocol.md)
 */
int agent_peers_json(const struct mesh_agent *a, struct buf *out)
{
	char addr[16];
	int r;

	mesh_overlay_addr_str((uint32_t)a->st.token, addr);
	r = buf_printf(out, "{\"version\":%d,\"registered\":%s,\"contract\":\"%s\",\"mode\":\"%s\",\"token\":%llu,"
			    "\"address\":\"%s\",\"label\":",
		       CONTROL_VERSION, a->st.registered ? "true" : "false", a->cfg->contract,
		       mesh_mode_name(a->cfg->mode), (unsigned long long)a->st.token,
		       a->st.token ? addr : "");
	if (r == 0)
		r = json_append_string(out, agent_label(a, a->st.token, a->id.instance_id));
	if (r == 0 && a->st.revoked)
		r = buf_printf(out, ",\"reason\":\"revoked\"");
	if (r == 0)
		r = buf_printf(out, ",\"instance_id\":\"%s\",\"generation\":%llu,\"peers\":", a->instance_hex,
			       (unsigned long long)a->st.generation);
	if (r == 0)
		r = mesh_peers_format_json(a->st.peers, a->st.n_peers, out);
	if (r == 0)
		r = buf_printf(out, ",\"members\":");
	if (r == 0)
		r = members_json(a, out);
	if (r == 0)
		r = buf_printf(out, ",\"added\":");
	if (r == 0)
		r = agent_change_json(a, true, out);
	if (r == 0)
		r = buf_printf(out, ",\"removed\":");
	if (r == 0)
		r = agent_change_json(a, false, out);
	if (r == 0)
		r = buf_printf(out, ",\"leader\":");
	if (r == 0)
		r = agent_leader_json(a, out);
	if (r == 0)
		r = buf_printf(out, "}");
	return r < 0 ? r : buf_terminate(out);
}

static int status_peer(struct mesh_agent *a, struct buf *out, const struct mesh_peer *p, const struct wg_peer *h,
		       bool first)
{
	char addr[16], key[WG_KEY_B64_LEN], inst[41];
	int r;

	mesh_overlay_addr_str(p->token, addr);
	wg_key_to_base64(key, p->wg_key);
	hex_encode(inst, p->instance_id, 20);
	r = buf_printf(out, "%s{\"token\":%u,\"instance_id\":\"%s\",\"address\":\"%s\",\"endpoint\":",
		       first ? "" : ",", p->token, inst, p->mode == REGISTRY_MODE_TLS_GATEWAY ? "" : addr);
	if (r == 0)
		r = json_append_string(out, p->endpoint);
	if (r == 0 && p->mode == REGISTRY_MODE_WIREGUARD)
		r = buf_printf(out, ",\"public_key\":\"%s\",\"configured\":%s,\"last_handshake\":%lld,"
				    "\"rx_bytes\":%llu,\"tx_bytes\":%llu",
			       key, h ? "true" : "false", h ? (long long)h->last_handshake.tv_sec : 0LL,
			       h ? (unsigned long long)h->rx_bytes : 0ULL,
			       h ? (unsigned long long)h->tx_bytes : 0ULL);
	if (r == 0)
		r = agent_transport_status(a, p, h, out);
	if (r == 0)
		r = buf_printf(out, ",\"nonce\":%llu,\"verification\":\"valid\"}", (unsigned long long)p->nonce);
	return r;
}

int agent_status_json(struct mesh_agent *a, struct buf *out)
{
	struct wg_device *dev = NULL;
	char addr[16], app[41], key[WG_KEY_B64_LEN] = "";
	uint64_t now = now_ms();
	int r;

	if (a->cfg->mode == REGISTRY_MODE_WIREGUARD) {
		wg_key_to_base64(key, a->id.wg_public_key);
		agent_wg_dump(a, &dev);  /* live counters; status works without them */
	}
	hex_encode(app, a->id.app_id, 20);
	mesh_overlay_addr_str((uint32_t)a->st.token, addr);
	r = buf_printf(out, "{\"version\":%d,\"instance_id\":\"%s\",\"app_id\":\"0x%s\",\"contract\":\"%s\","
			    "\"chain_id\":%llu,\"mode\":\"%s\",\"token\":%llu,\"address\":\"%s\","
			    "\"registered\":%s,\"endpoint\":",
		       CONTROL_VERSION, a->instance_hex, app, a->cfg->contract, (unsigned long long)a->self.chain_id,
		       mesh_mode_name(a->cfg->mode), (unsigned long long)a->st.token, a->st.token ? addr : "",
		       a->st.registered ? "true" : "false");
	if (r == 0)
		r = json_append_string(out, a->self.endpoint);
	if (r == 0)
		r = buf_printf(out,
			       ",\"interface\":\"%s\",\"public_key\":\"%s\",\"listen_port\":%u,"
			       "\"backend\":\"%s\",\"block\":%llu,\"last_sync_ms_ago\":%lld,"
			       "\"rpc_ok\":%s,\"rpc_calls\":%llu,\"generation\":%llu,",
			       a->cfg->mode == REGISTRY_MODE_WIREGUARD ? a->cfg->ifname : "", key,
			       a->cfg->mode == REGISTRY_MODE_WIREGUARD ? a->cfg->listen_port : 0,
			       !a->wg                                        ? "none"
			       : wg_backend_kind(a->wg) == WG_BACKEND_KERNEL ? "kernel"
									     : "userspace",
			       (unsigned long long)a->block,
			       a->last_sync_ms ? (long long)(now - a->last_sync_ms) : -1LL,
			       a->backoff_ms ? "false" : "true",
			       (unsigned long long)(a->reg ? registry_handle_stats(a->reg).rpc_calls : 0),
			       (unsigned long long)a->st.generation);
	/* Why the RPC fails, for status and wait to say. */
	if (r == 0)
		r = buf_printf(out, "\"rpc_error\":");
	if (r == 0)
		r = a->backoff_ms && a->rpc_error[0] ? json_append_string(out, a->rpc_error) : buf_printf(out, "null");
	if (r == 0)
		r = buf_printf(out, ",");
	if (r == 0 && a->reg && registry_handle_stats(a->reg).providers >= 2) {
		r = buf_printf(out, "\"rpc_providers\":%zu,\"rpc_conflicts\":%llu,\"rpc_conflict\":",
			       registry_handle_stats(a->reg).providers,
			       (unsigned long long)a->st.disagreements);
		if (r == 0)
			r = json_append_string(out, a->st.disagreement);
		if (r == 0)
			r = buf_printf(out, ",");
	}
	if (r == 0)
		r = buf_printf(out, "\"peers\":[");
	for (size_t i = 0; i < a->st.n_peers && r == 0; i++)
		r = status_peer(a, out, &a->st.peers[i], wg_device_find_peer(dev, a->st.peers[i].wg_key), i == 0);
	if (r == 0)
		r = buf_printf(out, "],\"rejected\":[");
	for (size_t i = 0; i < a->st.n_rejected && r == 0; i++) {
		char inst[41];

		hex_encode(inst, a->st.rejected[i].instance_id, 20);
		r = buf_printf(out, "%s{\"token\":%llu,\"instance_id\":\"%s\",\"verification\":",
			       i ? "," : "", (unsigned long long)a->st.rejected[i].token, inst);
		if (r == 0)
			r = json_append_string(out, a->st.rejected[i].reason);
		if (r == 0)
			r = buf_printf(out, "}");
	}
	if (r == 0)
		r = buf_printf(out, "],\"leader\":");
	if (r == 0)
		r = agent_leader_json(a, out);
	if (r == 0)
		r = buf_printf(out, "}");
	wg_device_free(dev);
	return r < 0 ? r : buf_terminate(out);
}
