/* SPDX-License-Identifier: MIT */
/* mesh: what apps learn besides the peer list: token labels, the last change, the leader. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "registry/registry.h"

#define LABEL_RETRY_MS 2000 /* a failed label read is tried again after this long */

/* Is token's label, as remembered, of another instance or of an older version of the token? */
static bool label_stale(const struct mesh_agent *a, uint64_t token, const uint8_t instance_id[static 20])
{
	const struct agent_label *l;

	if (token < 1 || token > REGISTRY_MAX_PEERS)
		return false;
	l = &a->labels[token];
	return memcmp(l->instance_id, instance_id, 20) ||
	       l->version != registry_handle_token_version(a->reg, token);
}

/*
 * Read token's label again if stale (or, with retry, if the last read failed): true when its
 * text changed. A failed read leaves the version it was for unread, so the label stays stale
 * and is read again LABEL_RETRY_MS later: a labelOf that failed once after a re-mint kept the
 * old label until the peer list changed again (for good in a quiet cluster).
 */
static bool refresh_label(struct mesh_agent *a, uint64_t token, const uint8_t instance_id[static 20], bool retry)
{
	struct agent_label *l;
	char text[sizeof(l->text)];
	uint64_t version, now = now_ms();
	bool changed;

	if (token < 1 || token > REGISTRY_MAX_PEERS)
		return false;
	l = &a->labels[token];
	if (!(retry && l->failed) && !label_stale(a, token, instance_id))
		return false;
	if (!retry && l->failed && now < l->retry_ms)
		return false;
	version = registry_handle_token_version(a->reg, token);
	if (registry_handle_label_of(a->reg, token, text, sizeof(text)) < 0) {
		log_debug("reading the label of token %llu: %s", (unsigned long long)token,
			  registry_handle_error(a->reg));
		/* Unknown for another instance; the last one known for this one, until read. */
		text[0] = '\0';
		if (!memcmp(l->instance_id, instance_id, 20))
			memcpy(text, l->text, sizeof(text));
		l->failed = true;
		l->retry_ms = now + LABEL_RETRY_MS;
		version = UINT64_MAX; /* not read: stale until a read succeeds */
	} else {
		l->failed = false;
	}
	changed = strcmp(l->text, text) != 0;
	memcpy(l->instance_id, instance_id, 20);
	l->version = version;
	memcpy(l->text, text, sizeof(l->text));
	return changed;
}

static bool refresh_labels(struct mesh_agent *a, bool retry)
{
	bool changed = false;

	if (!a->reg)
		return false;
	if (a->st.token)
		changed |= refresh_label(a, a->st.token, a->id.instance_id, retry);
	for (size_t i = 0; i < a->st.n_peers; i++)
		changed |= refresh_label(a, a->st.peers[i].token, a->st.peers[i].instance_id, retry);
	return changed;
}

void agent_refresh_labels(struct mesh_agent *a)
{
	refresh_labels(a, true);
}

bool agent_labels_changed(struct mesh_agent *a)
{
	/* While the RPC fails (backing off), labels wait: a read per token per turn would not. */
	return a->st.generation && !a->backoff_ms && refresh_labels(a, false);
}

static int path_status(void *ctx, const struct mesh_peer *p, const struct wg_peer *h, struct buf *out)
{
	return mesh_transport_status(ctx, p, h, out);
}

void agent_snapshot(struct mesh_agent *a, struct mesh_snapshot *s)
{
	uint64_t now = now_ms();

	mesh_snapshot_init(s, a->cfg, &a->id, mesh_device_backend(a->device));
	s->chain_id = a->self.chain_id;
	s->endpoint = a->self.endpoint;
	s->token = a->st.token;
	s->registered = a->st.registered;
	s->revoked = a->st.revoked;
	s->peers = a->st.peers;
	s->n_peers = a->st.n_peers;
	s->generation = a->st.generation;
	s->labels = a->labels;
	s->rejected = a->st.rejected;
	s->n_rejected = a->st.n_rejected;
	s->published = a->published;
	s->n_published = a->n_published;
	s->before = a->before;
	s->n_before = a->n_before;
	s->leader = a->leader_known ? &a->leader : NULL;
	s->block = a->block;
	s->last_sync_ms_ago = a->last_sync_ms ? (int64_t)(now - a->last_sync_ms) : -1;
	s->rpc_ok = !a->backoff_ms;
	s->rpc_error = a->rpc_error;
	s->rpc = a->reg ? registry_handle_stats(a->reg) : (struct registry_handle_stats){ 0 };
	s->conflicts = a->st.disagreements;
	s->conflict = a->st.disagreement;
	s->path_status = path_status;
	s->path_ctx = a->transport;
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

int agent_follow_leader(struct mesh_agent *a)
{
	struct registry_leader l;
	uint64_t block = registry_handle_block(a->reg);
	bool changed;
	int r;

	/* The leadership changes only with a transaction: nothing to read on an idle chain. */
	if (a->leader_known && block == a->leader_block)
		return 0;
	r = registry_handle_leader_state(a->reg, &l);
	if (r < 0)
		return r;
	changed = !a->leader_known || memcmp(&l, &a->leader, sizeof(l));
	a->leader = l;
	a->leader_known = true;
	a->leader_block = block;
	return changed;
}

/* ---- leader election as a service: sign with the node key, send, reply ---------------- */

/* How long a relayer may hold a signed leader call before it is void. */
#define LEADER_CALL_VALID_S 600

static int parse_action(const char *name, uint8_t *action)
{
	if (!strcmp(name, "leader.elect"))
		*action = REGISTRY_LEADER_ELECT;
	else if (!strcmp(name, "leader.heartbeat"))
		*action = REGISTRY_LEADER_HEARTBEAT;
	else if (!strcmp(name, "leader.vote"))
		*action = REGISTRY_LEADER_VOTE;
	else
		return -ENOENT;
	return 0;
}

/* The call as the node means it: its token, the target of a vote, a fresh nonce. */
static int prepare_call(struct mesh_agent *a, const struct control_request *req, struct registry_leader_call *c,
			struct buf *out)
{
	char msg[600];

	c->token = a->st.token;
	c->deadline = (uint64_t)time(NULL) + LEADER_CALL_VALID_S;
	if (c->action == REGISTRY_LEADER_VOTE) {
		c->no_confidence = req->no_confidence;
		c->target = (uint64_t)req->target;
		if (!c->target) {
			struct registry_leader l;

			if (registry_handle_leader_state(a->reg, &l) < 0)
				goto chain;
			c->target = l.token;
		}
	}
	if (registry_handle_leader_nonce(a->reg, c->token, &c->nonce) < 0)
		goto chain;
	return 0;
chain:
	snprintf(msg, sizeof(msg), "reading the contract: %s", registry_handle_error(a->reg));
	control_error(out, "chain", msg);
	return -EIO;
}

/* May this caller make the node sign and pay? Root, our own user, or whom the operator names. */
static bool caller_allowed(const struct mesh_agent *a, const struct control_request *req)
{
	if (!req->cred_known)
		return false;
	return req->uid == 0 || req->uid == (long)geteuid() ||
	       (a->cfg->action_uid != MESH_ID_NONE && req->uid == a->cfg->action_uid) ||
	       (a->cfg->action_gid != MESH_ID_NONE && req->gid == a->cfg->action_gid);
}

/* 1 when the leadership read now differs from what we held (an instantly mined action). */
static int reread_leader(struct mesh_agent *a)
{
	struct registry_leader before = a->leader;
	bool known = a->leader_known;

	a->leader_known = false;
	if (agent_follow_leader(a) < 0)
		return 0;
	return !known || memcmp(&before, &a->leader, sizeof(before)) != 0;
}

static int leader_reply(struct mesh_agent *a, const struct agent_action *x, struct buf *out)
{
	char hex[65];
	int r;

	hex_encode(hex, x->tx, 32);
	buf_reset(out);
	r = buf_printf(out, "{\"version\":%d,\"action\":\"%s\",", CONTROL_VERSION, x->name);
	if (r == 0)
		r = x->has_tx ? buf_printf(out, "\"tx\":\"0x%s\",", hex) : buf_printf(out, "\"tx\":null,");
	if (r == 0)
		r = buf_printf(out, "\"state\":\"%s\",\"relayed\":%s,\"leader\":",
			       mesh_action_state_name(x->state), x->relayed ? "true" : "false");
	if (r == 0) {
		struct mesh_snapshot snap;

		agent_snapshot(a, &snap);
		r = mesh_snapshot_leader_json(&snap, out);
	}
	return r == 0 ? buf_printf(out, "}") : r;
}

int agent_leader_act(struct mesh_agent *a, const struct control_request *req, struct buf *out)
{
	struct registry_leader_call c = { 0 };
	uint8_t tx_hash[32];
	char msg[700];
	bool pays = mesh_sender_pays(a->sender);
	int r, changed;

	if (parse_action(req->name, &c.action) < 0)
		return -ENOENT;
	/* Before anything is read, signed or counted: a stranger costs one getsockopt. */
	if (!caller_allowed(a, req)) {
		snprintf(msg, sizeof(msg), "uid %ld may read this socket but not ask for actions; the agent "
			 "takes them from root, its own user, P2P_CONTROL_ACTION_UID or P2P_CONTROL_ACTION_GID",
			 req->uid);
		control_error(out, "forbidden", msg);
		return 0;
	}
	if (!a->st.registered || !a->st.token || !a->chain_ready || !a->reg) {
		control_error(out, "not_registered", "this node has no registered record yet, so it cannot act");
		return 0;
	}
	if (!mesh_sender_configured(a->sender)) {
		control_error(out, "no_sender", "neither a funded key (P2P_TX_KEY_FILE) nor a relayer "
			      "(P2P_RELAYER_URL) is configured to send the signed call");
		return 0;
	}
	if (mesh_sender_take_action_slot(a->sender, msg, sizeof(msg)) < 0) {
		control_error(out, "rate_limited", msg);
		return 0;
	}
	if (prepare_call(a, req, &c, out) < 0)
		return 0;
	r = registry_sign_leader_call(a->self.chain_id, a->self.contract, a->secrets->node_key, &c);
	if (r < 0)
		return r;
	if (mesh_sender_hold_key(a->sender) < 0) {
		control_error(out, "no_sender", mesh_sender_error(a->sender));
		return 0;
	}
	log_info("%s: signed for token %llu (nonce %llu), sending %s", req->name, (unsigned long long)c.token,
		 (unsigned long long)c.nonce, pays ? "with the funded key" : "to the relayer");
	r = mesh_sender_leader_call(a->sender, &c, tx_hash);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "%s", mesh_sender_error(a->sender));
		log_warn("%s: %s", req->name, msg);
		control_error(out, r == -EPERM ? "refused" : r == -EDQUOT ? "over_cap" : "chain", msg);
		r = 0;
		goto out;
	}
	/*
	 * Sent: the receipt is followed on later turns (mesh_sender_follow_actions), not waited for.
	 * One leaderState() read now: a chain that mines at once shows the outcome already.
	 */
	changed = reread_leader(a);
	r = leader_reply(a, mesh_sender_note_action(a->sender, req->name + 7, r > 0 ? tx_hash : NULL, !pays),
			 out);
	r = r < 0 ? r : changed;
out:
	mesh_sender_release_key(a->sender);
	return r;
}
