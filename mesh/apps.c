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

/* Read token's label again if stale (or, with retry, if the last read failed): true when its text changed. */
static bool refresh_label(struct mesh_agent *a, uint64_t token, const uint8_t instance_id[static 20], bool retry)
{
	struct agent_label *l;
	char text[sizeof(l->text)];
	uint64_t version;
	bool changed;

	if (token < 1 || token > REGISTRY_MAX_PEERS)
		return false;
	l = &a->labels[token];
	if (!(retry && l->failed) && !label_stale(a, token, instance_id))
		return false;
	version = registry_handle_token_version(a->reg, token);
	if (registry_handle_label_of(a->reg, token, text, sizeof(text)) < 0) {
		log_debug("reading the label of token %llu: %s", (unsigned long long)token,
			  registry_handle_error(a->reg));
		/* Unknown for another instance; asked again at the next publication, not every turn. */
		text[0] = '\0';
		if (!memcmp(l->instance_id, instance_id, 20))
			memcpy(text, l->text, sizeof(text));
		l->failed = true;
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
	return a->st.generation && refresh_labels(a, false);
}

const char *agent_label(const struct mesh_agent *a, uint64_t token, const uint8_t instance_id[static 20])
{
	if (token < 1 || token > REGISTRY_MAX_PEERS || memcmp(a->labels[token].instance_id, instance_id, 20))
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

/*
 * A list's connect strings for lookups: the overlay addresses of wireguard entries as one
 * flag per token, so that a change costs O(N), not N formatted strings per entry.
 */
struct connect_set {
	bool token[REGISTRY_MAX_PEERS + 1];
	bool rest;  /* some entry's string is not an overlay address of token 1..254 */
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
static int change_list(const struct mesh_agent *a, bool added, bool json, struct buf *out)
{
	const struct mesh_peer *from = added ? a->published : a->before;
	const struct mesh_peer *other = added ? a->before : a->published;
	size_t n_from = added ? a->n_published : a->n_before;
	size_t n_other = added ? a->n_before : a->n_published;
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

int agent_change_json(const struct mesh_agent *a, bool added, struct buf *out)
{
	return change_list(a, added, true, out);
}

/* The leader's name for apps: its overlay address (wireguard) or gateway URL (tls). */
static const char *leader_connect(const struct mesh_agent *a, char addr[static 16])
{
	if (!a->leader_known || !a->leader.token)
		return "";
	if (a->cfg->mode == REGISTRY_MODE_WIREGUARD) {
		mesh_overlay_addr_str((uint32_t)a->leader.token, addr);
		return addr;
	}
	for (size_t i = 0; i < a->st.n_peers; i++)
		if (!memcmp(a->st.peers[i].instance_id, a->leader.instance_id, 20))
			return a->st.peers[i].endpoint;
	return "";  /* ourselves in tls mode: apps know their own URL */
}

int agent_on_change_env(const struct mesh_agent *a, const char *event, struct buf *storage,
			const char *envv[static AGENT_ENV_MAX + 1])
{
	size_t offsets[AGENT_ENV_MAX], n = 0;
	char addr[16], leader[16];
	bool is_leader = a->leader_known && a->leader.token && a->leader.token == a->st.token;
	int r;

	mesh_overlay_addr_str((uint32_t)a->st.token, addr);
#define ENTRY(...) \
	do { \
		offsets[n++] = storage->len; \
		if (r == 0) \
			r = buf_printf(storage, __VA_ARGS__); \
		if (r == 0) \
			r = buf_append(storage, "", 1); \
	} while (0)
	r = 0;
	ENTRY("DSTACK_P2P_EVENT=%s", event);
	ENTRY("DSTACK_P2P_ADDRESS=%s", a->st.token && a->cfg->mode == REGISTRY_MODE_WIREGUARD ? addr : "");
	ENTRY("DSTACK_P2P_TOKEN=%llu", (unsigned long long)a->st.token);
	ENTRY("DSTACK_P2P_LABEL=%s", agent_label(a, a->st.token, a->id.instance_id));
	ENTRY("DSTACK_P2P_GENERATION=%llu", (unsigned long long)a->st.generation);
	offsets[n++] = storage->len;
	if (r == 0)
		r = buf_printf(storage, "DSTACK_P2P_ADDED=");
	if (r == 0)
		r = change_list(a, true, false, storage);
	if (r == 0)
		r = buf_append(storage, "", 1);
	offsets[n++] = storage->len;
	if (r == 0)
		r = buf_printf(storage, "DSTACK_P2P_REMOVED=");
	if (r == 0)
		r = change_list(a, false, false, storage);
	if (r == 0)
		r = buf_append(storage, "", 1);
	ENTRY("DSTACK_P2P_LEADER=%s", leader_connect(a, leader));
	ENTRY("DSTACK_P2P_LEADER_TOKEN=%llu", a->leader_known ? (unsigned long long)a->leader.token : 0ULL);
	ENTRY("DSTACK_P2P_IS_LEADER=%d", is_leader);
#undef ENTRY
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		envv[i] = (const char *)storage->data + offsets[i];
	envv[n] = NULL;
	return 0;
}

int agent_write_hosts_file(const struct mesh_agent *a)
{
	struct buf out;
	char addr[16];
	int r = 0;

	buf_init(&out, 1 << 16);
	/* tls mode has no overlay addresses: the file stays empty. */
	for (size_t i = 0; a->cfg->mode == REGISTRY_MODE_WIREGUARD && i <= a->st.n_peers && r == 0; i++) {
		uint64_t token = i < a->st.n_peers ? a->st.peers[i].token : a->st.token;
		const uint8_t *inst = i < a->st.n_peers ? a->st.peers[i].instance_id : a->id.instance_id;
		const char *label = agent_label(a, token, inst);

		if (token < 1 || token > REGISTRY_MAX_PEERS)
			continue;
		mesh_overlay_addr_str((uint32_t)token, addr);
		r = *label ? buf_printf(&out, "%s %s\n", addr, label)
			   : buf_printf(&out, "%s token-%llu\n", addr, (unsigned long long)token);
	}
	if (r == 0)
		r = mesh_write_file_atomic(a->cfg->hosts_file, out.data ? out.data : (const uint8_t *)"", out.len);
	buf_clear(&out);
	return r;
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
		r = json_append_string(out, agent_label(a, l->token, l->instance_id));
	if (r == 0)
		r = buf_printf(out, ",\"instance_id\":\"%s\",\"address\":\"%s\",\"term\":%llu,\"expiry\":%llu,"
				    "\"lease_active\":%s,\"votes\":%llu,\"required\":%llu,\"self\":%s}",
			       inst, addr, (unsigned long long)l->term, (unsigned long long)l->expiry,
			       (uint64_t)time(NULL) <= l->expiry ? "true" : "false",
			       (unsigned long long)l->votes, (unsigned long long)l->required,
			       l->token == a->st.token ? "true" : "false");
	return r;
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

static const char *const action_state_names[] = {
	[AGENT_ACTION_PENDING] = "pending", [AGENT_ACTION_CONFIRMED] = "confirmed",
	[AGENT_ACTION_REVERTED] = "reverted", [AGENT_ACTION_UNKNOWN] = "unknown",
};

/* {"action":..,"tx":..,"state":..,"relayed":..[,"block":..]} */
static int action_json(const struct agent_action *x, struct buf *out)
{
	char hex[65];
	int r;

	hex_encode(hex, x->tx, 32);
	r = buf_printf(out, "{\"action\":\"%s\",", x->name);
	if (r == 0)
		r = x->has_tx ? buf_printf(out, "\"tx\":\"0x%s\",", hex) : buf_printf(out, "\"tx\":null,");
	if (r == 0)
		r = buf_printf(out, "\"state\":\"%s\",\"relayed\":%s", action_state_names[x->state],
			       x->relayed ? "true" : "false");
	if (r == 0 && (x->state == AGENT_ACTION_CONFIRMED || x->state == AGENT_ACTION_REVERTED))
		r = buf_printf(out, ",\"block\":%llu", (unsigned long long)x->block);
	return r == 0 ? buf_printf(out, "}") : r;
}

int agent_actions_json(const struct mesh_agent *a, struct buf *out)
{
	size_t n = a->n_actions < AGENT_ACTIONS_KEPT ? a->n_actions : AGENT_ACTIONS_KEPT;
	int r = buf_printf(out, "[");

	/* newest first */
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct agent_action *x = &a->actions[(a->n_actions - 1 - i) % AGENT_ACTIONS_KEPT];

		r = i ? buf_printf(out, ",") : 0;
		if (r == 0)
			r = action_json(x, out);
	}
	return r == 0 ? buf_printf(out, "]") : r;
}

int agent_follow_actions(struct mesh_agent *a)
{
	size_t n = a->n_actions < AGENT_ACTIONS_KEPT ? a->n_actions : AGENT_ACTIONS_KEPT;
	uint64_t now = now_ms();
	int decided = 0;

	for (size_t i = 0; i < n && a->sender; i++) {
		struct agent_action *x = &a->actions[i];
		struct eth_receipt rc;
		char hex[65];
		int r;

		if (x->state != AGENT_ACTION_PENDING || !x->has_tx)
			continue;
		hex_encode(hex, x->tx, 32);
		r = mesh_sender_receipt(a->sender, x->tx, &rc);
		if (r == -ENOENT && now > x->sent_ms + AGENT_ACTION_FOLLOW_MS) {
			x->state = AGENT_ACTION_UNKNOWN;
			log_warn("leader.%s: transaction 0x%s not mined after %d s; no longer followed", x->name, hex,
				 AGENT_ACTION_FOLLOW_MS / 1000);
		}
		if (r < 0)
			continue;
		x->state = rc.success ? AGENT_ACTION_CONFIRMED : AGENT_ACTION_REVERTED;
		x->block = rc.block_number;
		if (rc.success)
			log_info("leader.%s: transaction 0x%s confirmed in block %llu", x->name, hex,
				 (unsigned long long)rc.block_number);
		else
			log_warn("leader.%s: transaction 0x%s reverted in block %llu", x->name, hex,
				 (unsigned long long)rc.block_number);
		decided = 1;
	}
	if (decided)
		a->leader_known = false;  /* read the leadership again at this turn */
	return decided;
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

/* Actions in the hour before now. */
static unsigned actions_in_last_hour(const struct mesh_agent *a, uint64_t now)
{
	size_t n = a->n_action_ms < MESH_MAX_ACTION_PER_HOUR ? a->n_action_ms : MESH_MAX_ACTION_PER_HOUR;
	unsigned count = 0;

	for (size_t i = 0; i < n; i++)
		count += a->action_ms[i] + 3600000 > now;
	return count;
}

/* The spacing and the hourly cap: 0 and the action counted, or an error in out. */
static int take_action_slot(struct mesh_agent *a, struct buf *out)
{
	uint64_t now = now_ms(), last = a->n_action_ms ? a->action_ms[(a->n_action_ms - 1) % MESH_MAX_ACTION_PER_HOUR] : 0;
	char msg[300];

	if (a->n_action_ms && now < last + a->cfg->action_spacing_ms) {
		snprintf(msg, sizeof(msg), "one action per %u ms (P2P_ACTION_SPACING_MS); try again in %llu ms",
			 a->cfg->action_spacing_ms, (unsigned long long)(last + a->cfg->action_spacing_ms - now));
		control_error(out, "rate_limited", msg);
		return -EAGAIN;
	}
	if (actions_in_last_hour(a, now) >= a->cfg->action_max_per_hour) {
		snprintf(msg, sizeof(msg), "%u actions in the last hour, the most P2P_ACTION_MAX_PER_HOUR allows; "
			 "try again later", a->cfg->action_max_per_hour);
		control_error(out, "rate_limited", msg);
		return -EAGAIN;
	}
	a->action_ms[a->n_action_ms % MESH_MAX_ACTION_PER_HOUR] = now;
	a->n_action_ms++;
	return 0;
}

/* Remember a sent action; the reply shows it (pending). */
static struct agent_action *note_action(struct mesh_agent *a, const char *name, const uint8_t *tx, bool relayed)
{
	struct agent_action *x = &a->actions[a->n_actions++ % AGENT_ACTIONS_KEPT];

	memset(x, 0, sizeof(*x));
	snprintf(x->name, sizeof(x->name), "%s", name);
	x->has_tx = tx != NULL;
	if (tx)
		memcpy(x->tx, tx, 32);
	x->relayed = relayed;
	x->state = tx ? AGENT_ACTION_PENDING : AGENT_ACTION_UNKNOWN;
	x->sent_ms = now_ms();
	return x;
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
		r = buf_printf(out, "\"state\":\"%s\",\"relayed\":%s,\"leader\":", action_state_names[x->state],
			       x->relayed ? "true" : "false");
	if (r == 0)
		r = agent_leader_json(a, out);
	return r == 0 ? buf_printf(out, "}") : r;
}

int agent_leader_act(struct mesh_agent *a, const struct control_request *req, struct buf *out)
{
	struct registry_leader_call c = { 0 };
	struct err_detail why = { "" };
	uint8_t tx_hash[32], *tx_key = NULL;
	char msg[700];
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
	if (!a->cfg->tx_key_file[0] && !a->cfg->relayer_url[0]) {
		control_error(out, "no_sender", "neither a funded key (P2P_TX_KEY_FILE) nor a relayer "
			      "(P2P_RELAYER_URL) is configured to send the signed call");
		return 0;
	}
	if (take_action_slot(a, out) < 0)
		return 0;
	if (prepare_call(a, req, &c, out) < 0)
		return 0;
	r = registry_sign_leader_call(a->self.chain_id, a->self.contract, a->secrets->node_key, &c);
	if (r < 0)
		return r;
	if (a->cfg->tx_key_file[0]) {
		tx_key = secret_alloc(32);
		r = tx_key ? key_file_read32(a->cfg->tx_key_file, tx_key, &why) : -ENOMEM;
		if (r < 0) {
			snprintf(msg, sizeof(msg), "reading the funded key: %s", why.text[0] ? why.text : errstr(r));
			control_error(out, "no_sender", msg);
			r = 0;
			goto out;
		}
	}
	log_info("%s: signed for token %llu (nonce %llu), sending %s", req->name, (unsigned long long)c.token,
		 (unsigned long long)c.nonce, tx_key ? "with the funded key" : "to the relayer");
	r = mesh_sender_leader_call(a->sender, &c, tx_key, a->cfg->relayer_url, tx_hash);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "%s", mesh_sender_error(a->sender));
		log_warn("%s: %s", req->name, msg);
		control_error(out, r == -EPERM ? "refused" : r == -EDQUOT ? "over_cap" : "chain", msg);
		r = 0;
		goto out;
	}
	/*
	 * Sent: the receipt is followed on later turns (agent_follow_actions), not waited for.
	 * One leaderState() read now: a chain that mines at once shows the outcome already.
	 */
	changed = reread_leader(a);
	r = leader_reply(a, note_action(a, req->name + 7, r > 0 ? tx_hash : NULL, !tx_key), out);
	r = r < 0 ? r : changed;
out:
	secret_free(tx_key, 32);
	return r;
}
