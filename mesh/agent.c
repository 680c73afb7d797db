/* SPDX-License-Identifier: MIT */
/*
 * mesh: the agent's I/O around the decision (decide.c). Each turn follows the registry,
 * dumps the device, asks mesh_decide for a plan and applies it: WireGuard, our
 * registration, the published peer list, the log. A failing RPC never changes the mesh:
 * the last good state stays, we back off and retry. The loop and the signals belong to
 * the command (cli/cmd-agent.c).
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "attest/attest.h"
#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "net/net.h"
#include "registry/registry.h"

#define BACKOFF_MAX_MS 30000

/* Print the plan's log lines at their level. */
static void log_plan(struct buf *log)
{
	char *line = (char *)log->data, *end;

	if (!log->len)
		return;
	buf_terminate(log);
	for (; line && *line; line = end ? end + 1 : NULL) {
		end = strchr(line, '\n');
		if (end)
			*end = '\0';
		switch (line[0]) {
		case 'E': log_error("%s", line + 1); break;
		case 'W': log_warn("%s", line + 1); break;
		default: log_info("%s", line + 1); break;
		}
	}
	buf_reset(log);
}

/*
 * Tell apps: the peers and hosts files when the list changed, the on-change command
 * (DSTACK_P2P_EVENT "peers" or "leader") and the watchers every time.
 */
static void publish(struct mesh_agent *a, bool list_changed)
{
	struct buf lines, doc, env;
	const char *envv[MESH_ENV_MAX + 1];
	struct mesh_snapshot snap;
	int r;

	buf_init(&lines, 1 << 16);
	buf_init(&doc, 1 << 20);
	buf_init(&env, 1 << 20);
	if (list_changed) {
		agent_refresh_labels(a);
		if (agent_note_published(a) < 0)
			goto out;
	}
	agent_snapshot(a, &snap);
	if (mesh_peers_format_lines(snap.peers, snap.n_peers, &lines) < 0)
		goto out;
	if (list_changed && a->cfg->peers_file[0]) {
		r = mesh_write_file_atomic(a->cfg->peers_file, lines.data, lines.len);
		if (r < 0)
			log_warn("writing the peers file %s: %s", a->cfg->peers_file, errstr(r));
	}
	if (list_changed && a->cfg->hosts_file[0]) {
		r = mesh_snapshot_write_hosts(&snap, a->cfg->hosts_file);
		if (r < 0)
			log_warn("writing the hosts file %s: %s", a->cfg->hosts_file, errstr(r));
	}
	if (a->cfg->on_change[0]) {
		r = mesh_snapshot_env(&snap, list_changed ? "peers" : "leader", &env, envv);
		if (r == 0)
			r = mesh_run_on_change(a->cfg->on_change, (const char *)lines.data, envv);
		if (r < 0)
			log_warn("running the on-change command: %s", errstr(r));
	}
	if (mesh_snapshot_peers_json(&snap, &doc) == 0)
		control_broadcast(&a->control, (const char *)doc.data);
out:
	buf_clear(&lines);
	buf_clear(&doc);
	buf_clear(&env);
}

static void publish_peers(struct mesh_agent *a)
{
	publish(a, true);
}

/* The leadership changed, the list did not. */
void agent_publish_leader(struct mesh_agent *a)
{
	publish(a, false);
}

/* Malformed getPeers() entries never reach verification: report them like rejections. */
static void log_skipped(struct mesh_agent *a)
{
	const struct registry_skip *skips;
	size_t n;

	skips = registry_handle_skipped(a->reg, &n);
	for (size_t i = 0; i < n; i++)
		log_warn("dropping getPeers() entry %zu: %s", skips[i].index, skips[i].reason);
}


/*
 * Revoked, are we bound to a token again (the operator's bindInstance after a burn and a
 * mint)? A binding adds no record, so the follower sees nothing change; without asking,
 * the node would wait for the next full re-read to register. One call per RPC turn, only
 * while revoked; an RPC that lies here gets a view decided on, nothing more.
 */
static bool rebound(struct mesh_agent *a)
{
	uint64_t token = 0;

	return a->st.revoked && registry_handle_token_of_instance(a->reg, a->id.instance_id, &token) == 0 &&
	       token != 0;
}

/* Read the registry: 0 with *have_view when there is a view to decide on. */
static int read_registry(struct mesh_agent *a, uint64_t now, bool *have_view, bool *full)
{
	bool changed;
	int r;

	*have_view = false;
	*full = now >= a->next_full_read_ms || !a->chain_ready;
	/*
	 * Until our own record confirms the chain id, ask for it every poll: a wrong one at
	 * start (every record failing the node signature) is dropped within a poll of the
	 * RPC answering right, not at the next periodic re-read.
	 */
	if (!*full && !a->chain_confirmed) {
		uint64_t id;

		r = registry_handle_chain_id(a->reg, &id);
		if (r < 0)
			return r;
		*full = id != a->self.chain_id;
	}
	r = agent_chain_check(a, *full);
	if (r == 0)
		r = registry_handle_poll(a->reg, *full, &changed);
	if (r < 0)
		return r;
	/* A decided action makes the leadership be read again below. */
	if (mesh_sender_follow_actions(a->sender) > 0)
		a->leader_known = false;
	a->block = registry_handle_block(a->reg);
	a->last_sync_ms = now_ms();
	/* Before the first list is out, that first publication carries the leader. */
	if (agent_follow_leader(a) > 0 && a->st.generation > 0)
		agent_publish_leader(a);
	if (*full)
		a->next_full_read_ms = a->last_sync_ms + a->cfg->full_reread_ms;
	if (changed)
		log_skipped(a);
	/* Several providers: what the follower read is checked against another one. */
	if ((changed || *full) && registry_handle_stats(a->reg).providers >= 2)
		registry_handle_cross_check(a->reg);
	/* Unchanged: the last decision on the records still holds (verification is not free),
	 * registered or not; mesh_decide retries a missing registration without them. */
	*have_view = changed || *full || a->st.recheck || rebound(a);
	return 0;
}

/*
 * Has this node been revoked? Asked only when the view holds no record of ours:
 * tokenOfInstance() names no token, and we were registered (this run, or before: our
 * stored registration nonce is not 0). An RPC that merely hides our record (zero trust,
 * scenario 2) still answers our token here, so that is not taken for a revocation; a node
 * not bound yet has never registered.
 */
static bool revoked_now(struct mesh_agent *a, const struct registry_record *recs, size_t n)
{
	uint64_t token = 0, nonce = 0;

	for (size_t i = 0; i < n; i++)
		if (!memcmp(recs[i].instance_id, a->id.instance_id, 20))
			return false;
	if (registry_handle_token_of_instance(a->reg, a->id.instance_id, &token) < 0 || token)
		return false;
	return a->st.registered || a->st.revoked ||
	       (registry_handle_nonce_of(a->reg, a->id.instance_id, &nonce) == 0 && nonce > 0);
}

/* Apply a plan: device, address, registration, publishing. */
static void apply_plan(struct mesh_agent *a, const struct mesh_plan *plan, uint64_t now)
{
	if (a->device && (plan->n_changes || plan->set_listen_port)) {
		if (mesh_device_apply(a->device, plan) == 0)
			mesh_note_applied(&a->st, plan);
	} else if (a->device) {
		mesh_note_applied(&a->st, plan);
	}
	if (a->device && plan->address_token && plan->address_token != mesh_device_address_token(a->device))
		mesh_device_set_address(a->device, plan->address_token);
	if (plan->send_registration)
		agent_register_now(a, now);
	/* A label may change with the list as it was (a burn and a mint with a new label). */
	if (plan->publish || agent_labels_changed(a))
		publish_peers(a);
	if (plan->recheck)
		a->next_full_read_ms = 0;
}

/* The RPC failed (r < 0) or answered: back off, say so once, keep the mesh either way. */
static void note_rpc(struct mesh_agent *a, int r)
{
	if (r < 0) {
		snprintf(a->rpc_error, sizeof(a->rpc_error), "%s", registry_handle_error(a->reg));
		a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : a->cfg->poll_ms;
		if (a->backoff_ms > BACKOFF_MAX_MS)
			a->backoff_ms = BACKOFF_MAX_MS;
		if (!a->rpc_down)
			log_warn("registry unreachable, keeping the current peers: %s",
				 registry_handle_error(a->reg));
		a->rpc_down = true;
		a->next_rpc_ms = now_ms() + a->backoff_ms;
		return;
	}
	if (a->rpc_down)
		log_info("registry reachable again");
	a->rpc_down = false;
	a->rpc_error[0] = '\0';
	a->backoff_ms = 0;
}

/*
 * One turn: read the registry (unless backing off), dump the device, decide, apply.
 * The device is compared with the desired state every turn, RPC or not.
 */
int mesh_agent_turn(struct mesh_agent *a)
{
	struct mesh_input in = { .now_ms = now_ms() };
	struct mesh_plan plan = { .log = &a->log };
	struct wg_device *dev = NULL;
	size_t n = 0;
	bool rpc_turn;
	int r = 0, rpc = 0;

	agent_push_tick(a);
	in.now_ms = now_ms();
	if (in.now_ms < a->next_turn_ms)
		return 0;
	rpc_turn = in.now_ms >= a->next_rpc_ms;
	if (rpc_turn) {
		rpc = read_registry(a, in.now_ms, &in.have_view, &in.full);
		if (a->abort_flag && *a->abort_flag)
			return 0;  /* an RPC cut short by a stop signal says nothing about the chain */
		if (rpc == -EBADR)
			return rpc;
		in.registry_read = rpc == 0;
		if (a->chain_ready)
			mesh_psk_tick(a->psk, a->reg, in.now_ms, a->cfg->full_reread_ms);
	}
	/* Asked whenever the registry answered, not only with a view: without one a pending
	 * registration is still decided on (mesh_decide). */
	if (in.registry_read && !a->st.registered && a->st.reg_pending)
		in.funded_nonce_known = mesh_sender_funded_nonce(a->sender, &in.funded_nonce) == 0;
	if (in.have_view) {
		in.recs = registry_handle_peers(a->reg, &n);
		in.n_recs = n;
		in.revoked = revoked_now(a, in.recs, n);
		in.block = a->block;
		in.provider = registry_handle_primary_label(a->reg);
		in.recs2 = registry_handle_second_view(a->reg, &in.n_recs2, &in.provider2);
		in.block_disagreement = registry_handle_disagreement(a->reg);
	}
	if (a->device && mesh_device_dump(a->device, &dev) == 0)
		in.dev = dev;
	in.path_endpoints = mesh_transport_endpoints(a->transport, dev);
	in.chain_unconfirmed = !a->chain_confirmed;
	in.psk = mesh_psk_for_peer;
	in.psk_ctx = a->psk;
	r = mesh_decide(&a->st, &a->self, &in, &plan);
	if (r == 0 && plan.refuse_view) {
		registry_handle_distrust(a->reg,
					 "serves chain %llu, under which no record of the registry "
					 "verifies (not even ours); not using its answers",
					 (unsigned long long)a->self.chain_id);
		rpc = -EPROTO;
	} else if (in.have_view && (a->st.registered || a->st.n_peers) && !a->chain_confirmed) {
		/* Records verify under it: the cluster's chain, kept from now on. */
		a->chain_confirmed = true;
		log_info("chain %llu confirmed by the registry's records", (unsigned long long)a->self.chain_id);
	}
	if (rpc_turn)
		note_rpc(a, rpc);
	if (rpc_turn && rpc == 0)
		agent_push_after_read(a, in.now_ms);  /* push works: the next read is the safety poll */
	log_plan(&a->log);
	if (r == 0)
		apply_plan(a, &plan, in.now_ms);
	if (r == 0 && a->chain_ready) /* the relay follows the verified peer list */
		mesh_transport_sync(a->transport, a->self.chain_id, a->st.peers, a->st.n_peers);
	a->self.gateway = mesh_transport_gateway(a->transport); /* false if its relay failed */
	if (r == 0)
		agent_names_sync(a);  /* DNS answers what this turn published */
	mesh_device_follow_mtu(a->device, dev);
	if (r < 0)
		log_error("deciding the next step: %s", errstr(r));
	log_plan(&a->log);
	mesh_plan_clear(&plan);
	wg_device_free(dev);
	if (rpc_turn)
		malloc_trim(AGENT_MMAP_THRESHOLD);  /* what a large read left at the heap's top */
	a->next_turn_ms = now_ms() + a->cfg->poll_ms;
	/* push: a read due before the next device check (the RPC behind a head) brings it forward */
	if (agent_push_active(a) && !a->rpc_down && a->next_rpc_ms < a->next_turn_ms)
		a->next_turn_ms = a->next_rpc_ms;
	return 0;
}

int mesh_agent_timeout_ms(const struct mesh_agent *a)
{
	uint64_t now = now_ms(), next = a->next_turn_ms, push = agent_push_deadline_ms(a);

	if (push < next)
		next = push;
	return next > now ? (int)(next - now) : 0;
}

void mesh_agent_refresh(struct mesh_agent *a)
{
	a->next_full_read_ms = 0;
	a->next_turn_ms = 0;
	a->next_rpc_ms = 0;
}


size_t mesh_agent_sources(const struct mesh_agent *a,
			  struct mesh_agent_source out[static MESH_AGENT_SOURCES_MAX])
{
	for (size_t i = 0; i < a->n_sources; i++)
		out[i] = (struct mesh_agent_source){ .fd = a->sources[i].fd(a->sources[i].ctx),
						     .serve = a->sources[i].serve,
						     .ctx = a->sources[i].ctx };
	return a->n_sources;
}
