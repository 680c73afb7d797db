/* SPDX-License-Identifier: MIT */
/* mesh: what apps learn besides the peer list: token labels, the last change, the leader. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"

static void refresh_label(struct mesh_agent *a, uint64_t token, const char *instance_hex)
{
	struct agent_label *l;
	char text[sizeof(l->text)];

	if (token < 1 || token > MESH_MAX_PEERS)
		return;
	l = &a->labels[token];
	if (!strcmp(l->instance_id, instance_hex))
		return;
	/* Unknown on error: asked again at the next change. */
	if (cluster_label_of(a->cluster, token, text, sizeof(text)) < 0) {
		log_debug("reading the label of token %llu: %s", (unsigned long long)token,
			  cluster_error(a->cluster));
		return;
	}
	snprintf(l->instance_id, sizeof(l->instance_id), "%s", instance_hex);
	memcpy(l->text, text, sizeof(l->text));
}

void agent_refresh_labels(struct mesh_agent *a)
{
	if (!a->cluster)
		return;
	if (a->st.token)
		refresh_label(a, a->st.token, a->instance_hex);
	for (size_t i = 0; i < a->st.n_peers; i++)
		refresh_label(a, a->st.peers[i].token, a->st.peers[i].instance_id);
}

const char *agent_label(const struct mesh_agent *a, uint64_t token, const char *instance_hex)
{
	if (token < 1 || token > MESH_MAX_PEERS || strcmp(a->labels[token].instance_id, instance_hex))
		return "";
	return a->labels[token].text;
}

int agent_note_published(struct mesh_agent *a)
{
	struct mesh_peer *copy = NULL;

	if (a->st.n_peers) {
		copy = malloc(a->st.n_peers * sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		memcpy(copy, a->st.peers, a->st.n_peers * sizeof(*copy));
	}
	free(a->before);
	a->before = a->published;
	a->n_before = a->n_published;
	a->published = copy;
	a->n_published = a->st.n_peers;
	return 0;
}

static bool has_connect_string(const struct mesh_peer *list, size_t n, const char *s)
{
	char addr[16];

	for (size_t i = 0; i < n; i++)
		if (!strcmp(mesh_peer_connect_string(&list[i], addr), s))
			return true;
	return false;
}

int agent_change_json(const struct mesh_agent *a, bool added, struct buf *out)
{
	const struct mesh_peer *from = added ? a->published : a->before;
	const struct mesh_peer *other = added ? a->before : a->published;
	size_t n_from = added ? a->n_published : a->n_before;
	size_t n_other = added ? a->n_before : a->n_published;
	bool first = true;
	char addr[16];
	int r;

	r = buf_printf(out, "[");
	for (size_t i = 0; i < n_from && r == 0; i++) {
		const char *s = mesh_peer_connect_string(&from[i], addr);

		if (has_connect_string(other, n_other, s))
			continue;
		r = buf_printf(out, "%s", first ? "" : ",");
		if (r == 0)
			r = json_append_string(out, s);
		first = false;
	}
	return r == 0 ? buf_printf(out, "]") : r;
}

int agent_follow_leader(struct mesh_agent *a)
{
	struct registry_leader l;
	uint64_t block = cluster_block(a->cluster);
	bool changed;
	int r;

	/* The leadership changes only with a transaction: nothing to read on an idle chain. */
	if (a->leader_known && block == a->leader_block)
		return 0;
	r = cluster_leader_state(a->cluster, &l);
	if (r < 0)
		return r;
	changed = !a->leader_known || memcmp(&l, &a->leader, sizeof(l));
	a->leader = l;
	a->leader_known = true;
	a->leader_block = block;
	return changed;
}

int agent_leader_json(const struct mesh_agent *a, struct buf *out)
{
	const struct registry_leader *l = &a->leader;
	char inst[41], addr[16];
	int r;

	if (!a->leader_known || !l->token)
		return buf_printf(out, "null");
	hex_encode(inst, l->instance_id, 20);
	mesh_overlay_addr_str((uint32_t)l->token, addr);
	r = buf_printf(out, "{\"token\":%llu,\"label\":", (unsigned long long)l->token);
	if (r == 0)
		r = json_append_string(out, agent_label(a, l->token, inst));
	if (r == 0)
		r = buf_printf(out, ",\"instance_id\":\"%s\",\"address\":\"%s\",\"term\":%llu,\"expiry\":%llu,"
				    "\"lease_active\":%s,\"votes\":%llu,\"required\":%llu,\"self\":%s}",
			       inst, addr, (unsigned long long)l->term, (unsigned long long)l->expiry,
			       (uint64_t)time(NULL) <= l->expiry ? "true" : "false",
			       (unsigned long long)l->votes, (unsigned long long)l->required,
			       l->token == a->st.token ? "true" : "false");
	return r;
}
