/* SPDX-License-Identifier: MIT */
/*
 * mesh: what the agent tells the CLI and apps, rendered from a snapshot only (the agent's
 * turn and `status` without an agent build the same one): the peers and status documents,
 * the leader, the last change, the on-change command's variables, the hosts file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "netlink/netlink.h"
#include "registry/registry.h"

void mesh_snapshot_init(struct mesh_snapshot *s, const struct mesh_config *cfg,
			const struct attest_identity *id, struct wg_backend *wg)
{
	bool wg_mode = cfg->mode == REGISTRY_MODE_WIREGUARD;

	*s = (struct mesh_snapshot){ .mode = cfg->mode,
				     .contract = cfg->contract,
				     .endpoint = "",
				     .rpc_error = "",
				     .conflict = "",
				     .last_sync_ms_ago = -1,
				     .rpc_ok = true };
	s->ifname = wg_mode ? cfg->ifname : "";
	s->listen_port = wg_mode ? cfg->listen_port : 0;
	s->backend = !wg ? "none" : wg_backend_kind(wg) == WG_BACKEND_KERNEL ? "kernel" : "userspace";
	if (!id)
		return;
	hex_encode(s->instance_hex, id->instance_id, 20);
	memcpy(s->instance_id, id->instance_id, 20);
	memcpy(s->app_id, id->app_id, 20);
	if (wg_mode)
		memcpy(s->wg_public_key, id->wg_public_key, 32);
}

const char *mesh_snapshot_label(const struct mesh_snapshot *s, uint64_t token,
				const uint8_t instance_id[static 20])
{
	if (!s->labels || token < 1 || token > REGISTRY_MAX_PEERS ||
	    memcmp(s->labels[token].instance_id, instance_id, 20))
		return "";
	return s->labels[token].text;
}

static bool has_connect_string(const struct mesh_peer *list, size_t n, const char *s)
{
	char addr[16];

	for (size_t i = 0; i < n; i++)
		if (!strcmp(mesh_peer_connect_string(&list[i], addr), s))
			return true;
	return false;
}

/*
 * A list's connect strings for lookups: the overlay addresses of wireguard entries as one
 * flag per token, so that a change costs O(N), not N formatted strings per entry.
 */
struct connect_set {
	bool token[REGISTRY_MAX_PEERS + 1];
	bool rest; /* some entry's string is not an overlay address of token 1..254 */
};

static bool overlay_entry(const struct mesh_peer *p)
{
	return p->mode != REGISTRY_MODE_TLS_GATEWAY && p->token >= 1 && p->token <= REGISTRY_MAX_PEERS;
}

static void connect_set_fill(struct connect_set *set, const struct mesh_peer *list, size_t n)
{
	memset(set, 0, sizeof(*set));
	for (size_t i = 0; i < n; i++) {
		if (overlay_entry(&list[i]))
			set->token[list[i].token] = true;
		else
			set->rest = true;
	}
}

/* Is p's connect string s one of list's? As has_connect_string, by token where it can. */
static bool connect_set_has(const struct connect_set *set, const struct mesh_peer *list, size_t n,
			    const struct mesh_peer *p, const char *s)
{
	if (overlay_entry(p) && set->token[p->token])
		return true;
	/* A tls endpoint may spell an overlay address; any other string only matches the rest. */
	if (!overlay_entry(p) || set->rest)
		return has_connect_string(list, n, s);
	return false;
}

/* The last change's entries, as a JSON array or space-separated words. */
static int change_list(const struct mesh_snapshot *snap, bool added, bool json, struct buf *out)
{
	const struct mesh_peer *from = added ? snap->published : snap->before;
	const struct mesh_peer *other = added ? snap->before : snap->published;
	size_t n_from = added ? snap->n_published : snap->n_before;
	size_t n_other = added ? snap->n_before : snap->n_published;
	struct connect_set set;
	bool first = true;
	char addr[16];
	int r = json ? buf_printf(out, "[") : 0;

	connect_set_fill(&set, other, n_other);
	for (size_t i = 0; i < n_from && r == 0; i++) {
		const char *s = mesh_peer_connect_string(&from[i], addr);

		if (connect_set_has(&set, other, n_other, &from[i], s))
			continue;
		r = buf_printf(out, "%s", first ? "" : json ? "," : " ");
		if (r == 0)
			r = json ? json_append_string(out, s) : buf_printf(out, "%s", s);
		first = false;
	}
	return r == 0 && json ? buf_printf(out, "]") : r;
}

static int change_json(const struct mesh_snapshot *s, bool added, struct buf *out)
{
	return change_list(s, added, true, out);
}

/* The leader's name for apps: its overlay address (wireguard) or gateway URL (tls). */
static const char *leader_connect(const struct mesh_snapshot *s, char addr[static 16])
{
	if (!s->leader || !s->leader->token)
		return "";
	if (s->mode == REGISTRY_MODE_WIREGUARD) {
		mesh_overlay_addr_str((uint32_t)s->leader->token, addr);
		return addr;
	}
	for (size_t i = 0; i < s->n_peers; i++)
		if (!memcmp(s->peers[i].instance_id, s->leader->instance_id, 20))
			return s->peers[i].endpoint;
	return ""; /* ourselves in tls mode: apps know their own URL */
}

int mesh_snapshot_env(const struct mesh_snapshot *s, const char *event, struct buf *storage,
		      const char *envv[static MESH_ENV_MAX + 1])
{
	size_t offsets[MESH_ENV_MAX], n = 0;
	char addr[16], leader[16];
	bool is_leader = s->leader && s->leader->token && s->leader->token == s->token;
	int r;

	mesh_overlay_addr_str((uint32_t)s->token, addr);
#define ENTRY(...)                                            \
	do {                                                  \
		offsets[n++] = storage->len;                  \
		if (r == 0)                                   \
			r = buf_printf(storage, __VA_ARGS__); \
		if (r == 0)                                   \
			r = buf_append(storage, "", 1);       \
	} while (0)
	r = 0;
	ENTRY("DSTACK_P2P_EVENT=%s", event);
	ENTRY("DSTACK_P2P_ADDRESS=%s", s->token && s->mode == REGISTRY_MODE_WIREGUARD ? addr : "");
	ENTRY("DSTACK_P2P_TOKEN=%llu", (unsigned long long)s->token);
	ENTRY("DSTACK_P2P_LABEL=%s", mesh_snapshot_label(s, s->token, s->instance_id));
	ENTRY("DSTACK_P2P_GENERATION=%llu", (unsigned long long)s->generation);
	for (int removed = 0; removed < 2; removed++) {
		offsets[n++] = storage->len;
		if (r == 0)
			r = buf_printf(storage, "DSTACK_P2P_%s=", removed ? "REMOVED" : "ADDED");
		if (r == 0)
			r = change_list(s, !removed, false, storage);
		if (r == 0)
			r = buf_append(storage, "", 1);
	}
	ENTRY("DSTACK_P2P_LEADER=%s", leader_connect(s, leader));
	ENTRY("DSTACK_P2P_LEADER_TOKEN=%llu", s->leader ? (unsigned long long)s->leader->token : 0ULL);
	ENTRY("DSTACK_P2P_IS_LEADER=%d", is_leader);
#undef ENTRY
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		envv[i] = (const char *)storage->data + offsets[i];
	envv[n] = NULL;
	return 0;
}

int mesh_snapshot_write_hosts(const struct mesh_snapshot *s, const char *path)
{
	struct buf out;
	char addr[16];
	int r = 0;

	buf_init(&out, 1 << 16);
	/* tls mode has no overlay addresses: the file stays empty. */
	for (size_t i = 0; s->mode == REGISTRY_MODE_WIREGUARD && i <= s->n_peers && r == 0; i++) {
		uint64_t token = i < s->n_peers ? s->peers[i].token : s->token;
		const uint8_t *inst = i < s->n_peers ? s->peers[i].instance_id : s->instance_id;
		const char *label = mesh_snapshot_label(s, token, inst);

		if (token < 1 || token > REGISTRY_MAX_PEERS)
			continue;
		mesh_overlay_addr_str((uint32_t)token, addr);
		r = *label ? buf_printf(&out, "%s %s\n", addr, label)
			   : buf_printf(&out, "%s token-%llu\n", addr, (unsigned long long)token);
	}
	if (r == 0)
		r = mesh_write_file_atomic(path, out.data ? out.data : (const uint8_t *)"", out.len);
	buf_clear(&out);
	return r;
}

int mesh_snapshot_leader_json(const struct mesh_snapshot *s, struct buf *out)
{
	const struct registry_leader *l = s->leader;
	char inst[41], addr[16];
	int r;

	if (!l || !l->token)
		return buf_printf(out, "null");
	hex_encode(inst, l->instance_id, 20);
	mesh_overlay_addr_str((uint32_t)l->token, addr);
	r = buf_printf(out, "{\"token\":%llu,\"label\":", (unsigned long long)l->token);
	if (r == 0)
		r = json_append_string(out, mesh_snapshot_label(s, l->token, l->instance_id));
	if (r == 0)
		r = buf_printf(out,
			       ",\"instance_id\":\"%s\",\"address\":\"%s\",\"term\":%llu,\"expiry\":%llu,"
			       "\"lease_active\":%s,\"votes\":%llu,\"required\":%llu,\"self\":%s}",
			       inst, addr, (unsigned long long)l->term, (unsigned long long)l->expiry,
			       (uint64_t)time(NULL) <= l->expiry ? "true" : "false",
			       (unsigned long long)l->votes, (unsigned long long)l->required,
			       l->token == s->token ? "true" : "false");
	return r;
}

/* The peers with their token, label and address: "members" of the peers document. */
static int members_json(const struct mesh_snapshot *s, struct buf *out)
{
	char addr[16];
	int r = buf_printf(out, "[");

	for (size_t i = 0; i < s->n_peers && r == 0; i++) {
		const struct mesh_peer *p = &s->peers[i];
		char inst[41];

		hex_encode(inst, p->instance_id, 20);
		mesh_overlay_addr_str(p->token, addr);
		r = buf_printf(out, "%s{\"token\":%u,\"label\":", i ? "," : "", p->token);
		if (r == 0)
			r = json_append_string(out, mesh_snapshot_label(s, p->token, p->instance_id));
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
int mesh_snapshot_peers_json(const struct mesh_snapshot *s, struct buf *out)
{
	char addr[16];
	int r;

	mesh_overlay_addr_str((uint32_t)s->token, addr);
	r = buf_printf(out,
		       "{\"version\":%d,\"registered\":%s,\"contract\":\"%s\",\"mode\":\"%s\",\"token\":%llu,"
		       "\"address\":\"%s\",\"label\":",
		       CONTROL_VERSION, s->registered ? "true" : "false", s->contract,
		       mesh_mode_name(s->mode), (unsigned long long)s->token, s->token ? addr : "");
	if (r == 0)
		r = json_append_string(out, mesh_snapshot_label(s, s->token, s->instance_id));
	if (r == 0 && s->revoked)
		r = buf_printf(out, ",\"reason\":\"revoked\"");
	if (r == 0)
		r = buf_printf(out, ",\"instance_id\":\"%s\",\"generation\":%llu,\"peers\":", s->instance_hex,
			       (unsigned long long)s->generation);
	if (r == 0)
		r = mesh_peers_format_json(s->peers, s->n_peers, out);
	if (r == 0)
		r = buf_printf(out, ",\"members\":");
	if (r == 0)
		r = members_json(s, out);
	if (r == 0)
		r = buf_printf(out, ",\"added\":");
	if (r == 0)
		r = change_json(s, true, out);
	if (r == 0)
		r = buf_printf(out, ",\"removed\":");
	if (r == 0)
		r = change_json(s, false, out);
	if (r == 0)
		r = buf_printf(out, ",\"leader\":");
	if (r == 0)
		r = mesh_snapshot_leader_json(s, out);
	if (r == 0)
		r = buf_printf(out, "}");
	return r < 0 ? r : buf_terminate(out);
}

static int status_peer(const struct mesh_snapshot *s, struct buf *out, const struct mesh_peer *p,
		       const struct wg_peer *h, bool first)
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
		r = buf_printf(out,
			       ",\"public_key\":\"%s\",\"configured\":%s,\"last_handshake\":%lld,"
			       "\"rx_bytes\":%llu,\"tx_bytes\":%llu,\"psk\":%s",
			       key, h ? "true" : "false", h ? (long long)h->last_handshake.tv_sec : 0LL,
			       h ? (unsigned long long)h->rx_bytes : 0ULL,
			       h ? (unsigned long long)h->tx_bytes : 0ULL,
			       h && (h->flags & WG_PEER_HAS_PRESHARED_KEY) ? "true" : "false");
	if (r == 0 && s->path_status)
		r = s->path_status(s->path_ctx, p, h, out);
	if (r == 0)
		r = buf_printf(out, ",\"nonce\":%llu,\"verification\":\"valid\"}", (unsigned long long)p->nonce);
	return r;
}

int mesh_snapshot_status_json(const struct mesh_snapshot *s, const struct wg_device *dev, struct buf *out)
{
	char addr[16], app[41], key[WG_KEY_B64_LEN] = "";
	int r;

	if (s->mode == REGISTRY_MODE_WIREGUARD)
		wg_key_to_base64(key, s->wg_public_key);
	hex_encode(app, s->app_id, 20);
	mesh_overlay_addr_str((uint32_t)s->token, addr);
	r = buf_printf(out,
		       "{\"version\":%d,\"instance_id\":\"%s\",\"app_id\":\"0x%s\",\"contract\":\"%s\","
		       "\"chain_id\":%llu,\"mode\":\"%s\",\"token\":%llu,\"address\":\"%s\","
		       "\"registered\":%s,\"endpoint\":",
		       CONTROL_VERSION, s->instance_hex, app, s->contract, (unsigned long long)s->chain_id,
		       mesh_mode_name(s->mode), (unsigned long long)s->token, s->token ? addr : "",
		       s->registered ? "true" : "false");
	if (r == 0)
		r = json_append_string(out, s->endpoint);
	if (r == 0)
		r = buf_printf(out,
			       ",\"interface\":\"%s\",\"public_key\":\"%s\",\"listen_port\":%u,"
			       "\"backend\":\"%s\",\"block\":%llu,\"last_sync_ms_ago\":%lld,"
			       "\"rpc_ok\":%s,\"rpc_calls\":%llu,\"generation\":%llu,",
			       s->ifname, key, s->listen_port, s->backend, (unsigned long long)s->block,
			       (long long)s->last_sync_ms_ago, s->rpc_ok ? "true" : "false",
			       (unsigned long long)s->rpc.rpc_calls, (unsigned long long)s->generation);
	/* Why the RPC fails, for status and wait to say. */
	if (r == 0)
		r = buf_printf(out, "\"rpc_error\":");
	if (r == 0)
		r = !s->rpc_ok && s->rpc_error[0] ? json_append_string(out, s->rpc_error)
						  : buf_printf(out, "null");
	if (r == 0)
		r = buf_printf(out, ",");
	if (r == 0 && s->rpc.providers >= 2) {
		r = buf_printf(out, "\"rpc_providers\":%zu,\"rpc_conflicts\":%llu,\"rpc_conflict\":",
			       s->rpc.providers, (unsigned long long)s->conflicts);
		if (r == 0)
			r = json_append_string(out, s->conflict);
		if (r == 0)
			r = buf_printf(out, ",");
	}
	if (r == 0)
		r = buf_printf(out, "\"peers\":[");
	for (size_t i = 0; i < s->n_peers && r == 0; i++)
		r = status_peer(s, out, &s->peers[i], wg_device_find_peer(dev, s->peers[i].wg_key), i == 0);
	if (r == 0)
		r = buf_printf(out, "],\"rejected\":[");
	for (size_t i = 0; i < s->n_rejected && r == 0; i++) {
		char inst[41];

		hex_encode(inst, s->rejected[i].instance_id, 20);
		r = buf_printf(out,
			       "%s{\"token\":%llu,\"instance_id\":\"%s\",\"verification\":", i ? "," : "",
			       (unsigned long long)s->rejected[i].token, inst);
		if (r == 0)
			r = json_append_string(out, s->rejected[i].reason);
		if (r == 0)
			r = buf_printf(out, "}");
	}
	if (r == 0)
		r = buf_printf(out, "],\"leader\":");
	if (r == 0)
		r = mesh_snapshot_leader_json(s, out);
	if (r == 0)
		r = buf_printf(out, "}");
	return r < 0 ? r : buf_terminate(out);
}
