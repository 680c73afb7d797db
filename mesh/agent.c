/* SPDX-License-Identifier: MIT */
/*
 * mesh: the agent's I/O around the decision (decide.c). Each turn follows the registry,
 * dumps the device, asks mesh_decide for a plan and applies it: WireGuard, our
 * registration, the published peer list, the log. A failing RPC never changes the mesh:
 * the last good state stays, we back off and retry. The loop and the signals belong to
 * the command (cli/cmd-agent.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "attest/attest.h"
#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "net/net.h"
#include "registry/registry.h"

#define BACKOFF_MAX_MS 30000
#define TX_RETRY_MS 15000  /* a registration not seen on chain by then is sent again */
#define AGENT_MMAP_THRESHOLD (256 << 10)


/* ---- registration ----------------------------------------------------------------------- */

/*
 * No key and no relayer: say exactly how an operator can send our registration, once
 * for each distinct record (a new nonce or endpoint prints again), on stdout.
 */
static void print_relay_instructions(struct mesh_agent *a, const struct registry_record *rec)
{
	struct buf text;

	buf_init(&text, 1 << 17);
	if (mesh_sender_manual(a->sender, rec, &text) > 0 && buf_terminate(&text) == 0) {
		log_info("no funded key (P2P_TX_KEY_FILE) and no relayer (P2P_RELAYER_URL): "
			 "relay this registration from any funded account:");
		fputs((const char *)text.data, stdout);
		fflush(stdout);
	}
	buf_clear(&text);
}

/* Our record signed with the next nonce, sent, relayed or printed for an operator. */
static int send_registration(struct mesh_agent *a)
{
	struct registry_record rec = { 0 };
	uint64_t stored_nonce, nonce;
	uint8_t tx_hash[32];
	char hex[65];
	int r;

	r = registry_handle_nonce_of(a->reg, a->id.instance_id, &stored_nonce);
	if (r < 0) {
		log_warn("reading our registration nonce: %s", registry_handle_error(a->reg));
		return r;
	}
	/* stored + 1, or the next nonce carrying our features (docs/registry.md) */
	r = registry_nonce_next(stored_nonce, a->self.features, &nonce);
	if (r == 0)
		r = registry_record_sign(&a->id, a->secrets, a->self.chain_id, a->self.contract,
					 a->self.endpoint, (enum registry_mode)a->cfg->mode, nonce, &rec);
	if (r < 0) {
		log_error("signing our registry record: %s", errstr(r));
		return r;
	}
	if (!mesh_sender_configured(a->sender)) {
		print_relay_instructions(a, &rec);
	} else if ((r = mesh_sender_hold_key(a->sender)) < 0) {
		log_error("%s", mesh_sender_error(a->sender));
	} else if (mesh_sender_pays(a->sender)) {
		log_info("registering: endpoint %s, nonce %llu", a->self.endpoint,
			 (unsigned long long)rec.nonce);
		r = mesh_sender_register(a->sender, &rec, tx_hash);
		if (r < 0) {
			log_error("registration transaction: %s", mesh_sender_error(a->sender));
		} else {
			hex_encode(hex, tx_hash, 32);
			log_info("registration transaction 0x%s sent; the registry will show it", hex);
		}
	} else {
		r = mesh_sender_register(a->sender, &rec, tx_hash);
		if (r < 0)
			log_error("handing the registration to the relayer %s: %s", a->cfg->relayer_url,
				  mesh_sender_error(a->sender));
	}
	mesh_sender_release_key(a->sender);
	registry_record_clear(&rec);
	return r < 0 ? r : 0;
}

/*
 * The plan says register: find our token (a record needs a bound instance), then sign
 * and send. Every attempt is noted, sent or not, so the spacing holds whatever happens.
 */
static void register_now(struct mesh_agent *a, uint64_t now)
{
	uint64_t token = 0, fnonce = 0;
	bool known, sent;
	int r;

	r = registry_handle_token_of_instance(a->reg, a->id.instance_id, &token);
	if (r < 0 || !token) {
		if (r == 0 && !a->said_unbound)
			log_info("instance 0x%s is not bound to a cluster token yet; waiting for the "
				 "operator's bindInstance", a->instance_hex);
		a->said_unbound = r == 0;
		return;  /* nothing sent: asking again next turn costs one call, no gas */
	}
	/* Once per token: an agent waiting for its registration to be relayed retries every
	 * 15 s and would say it each time. */
	if (a->said_unbound || a->said_token != token)
		log_info("instance 0x%s holds token %llu", a->instance_hex, (unsigned long long)token);
	a->said_unbound = false;
	a->said_token = token;
	known = mesh_sender_funded_nonce(a->sender, &fnonce) == 0;
	r = send_registration(a);
	sent = r == 0 && mesh_sender_configured(a->sender);
	mesh_note_registration(&a->st, now, sent, known, fnonce);
}

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
static void publish_leader(struct mesh_agent *a)
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
static int chain_check(struct mesh_agent *a, bool full)
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
	r = chain_check(a, *full);
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
		publish_leader(a);
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
		register_now(a, now);
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

/* ---- the control socket -------------------------------------------------------------------- */

/* The status document: the snapshot with the device's live counters (status works without them). */
static int status_json(struct mesh_agent *a, const struct mesh_snapshot *snap, struct buf *out)
{
	struct wg_device *dev = NULL;
	int r;

	if (a->cfg->mode == REGISTRY_MODE_WIREGUARD)
		mesh_device_dump(a->device, &dev);
	r = mesh_snapshot_status_json(snap, dev, out);
	wg_device_free(dev);
	return r;
}

static int control_reply(void *ctx, const struct control_request *req, struct buf *out)
{
	struct mesh_agent *a = ctx;
	struct mesh_snapshot snap;

	if (!strcmp(req->name, "peers") || !strcmp(req->name, "status")) {
		agent_snapshot(a, &snap);
		return req->name[0] == 'p' ? mesh_snapshot_peers_json(&snap, out)
					   : status_json(a, &snap, out);
	}
	if (!strncmp(req->name, "leader.", 7)) {
		/* Sent, not mined: a change seen already is published now, else by a later turn. */
		int r = agent_leader_act(a, req, out);

		if (r > 0)
			publish_leader(a);
		return r < 0 ? r : 0;
	}
	if (!strcmp(req->name, "metrics"))
		return agent_metrics_json(a, out);
	if (!strcmp(req->name, "leader")) {
		int r = buf_printf(out, "{\"version\":%d,\"leader\":", CONTROL_VERSION);

		agent_snapshot(a, &snap);
		if (r == 0)
			r = mesh_snapshot_leader_json(&snap, out);
		if (r == 0)
			r = buf_printf(out, ",\"actions\":");
		if (r == 0)
			r = mesh_sender_actions_json(a->sender, out);
		return r == 0 ? buf_printf(out, "}") : r;
	}
	return -ENOENT;
}

int agent_add_source(struct mesh_agent *a, int (*fd)(void *ctx), void (*serve)(void *ctx), void *ctx)
{
	if (a->n_sources == MESH_AGENT_SOURCES_MAX)
		return -ENOSPC;
	a->sources[a->n_sources++] = (struct agent_source){ .fd = fd, .serve = serve, .ctx = ctx };
	return 0;
}

static int control_fd(void *ctx)
{
	const struct mesh_agent *a = ctx;

	return a->control.fd;
}

static void serve_control(void *ctx)
{
	struct mesh_agent *a = ctx;

	control_accept(&a->control, control_reply, a);
}

static int push_fd(void *ctx)
{
	return agent_push_fd(ctx);
}

static void serve_push(void *ctx)
{
	agent_push_serve(ctx);
}

/* ---- start and stop ------------------------------------------------------------------------ */

/*
 * One agent per interface: an abstract unix socket named after it, bound for the
 * agent's life. Interface names and abstract sockets are both per network namespace,
 * and the kernel releases the name when the process dies, however it dies.
 */
static int lock_interface(const char *ifname, int *fd_out)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd, n;

	n = snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "dstack-p2p/interface/%s", ifname);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sun, len) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}

/* The funded key's address (for its nonce on chain); the key itself is wiped at once. */
static int fill_self(struct mesh_agent *a)
{
	struct mesh_self *self = &a->self;

	self->mode = a->cfg->mode;
	memcpy(self->instance_id, a->id.instance_id, 20);
	if (a->cfg->mode == REGISTRY_MODE_WIREGUARD)
		memcpy(self->wg_public_key, a->id.wg_public_key, 32);
	self->listen_port = a->cfg->listen_port;
	self->keepalive = a->cfg->keepalive;
	self->reg_spacing_ms = TX_RETRY_MS;
	self->reg_max_per_hour = a->cfg->register_max_per_hour;
	self->chain_id = a->cfg->chain_id;
	return 0;
}

/* The KMS root from our own GetKey reply, checked against the P2P_KMS_ROOT pin. */
static int kms_root_from_identity(struct mesh_agent *a)
{
	uint8_t pin[20];
	char root[41];
	int r = attest_identity_kms_root(&a->id, a->self.kms_root);

	if (r < 0) {
		log_error("recovering the KMS root from our own key's signature chain: %s", r == -ENOKEY ?
			  "no KMS signature (a local key provider): no KMS vouches for this node" : errstr(r));
		return r == -ENOKEY ? -EBADR : r;
	}
	hex_encode(root, a->self.kms_root, 20);
	if (a->cfg->kms_root[0]) {
		hex_decode_exact(pin, 20, a->cfg->kms_root, strlen(a->cfg->kms_root));
		if (memcmp(pin, a->self.kms_root, 20)) {
			log_error("P2P_KMS_ROOT is %s, but our own key was issued by the KMS root 0x%s: "
				  "this CVM does not belong to the KMS you pinned", a->cfg->kms_root, root);
			return -EBADR;
		}
	}
	log_info("KMS root 0x%s (from our own key%s)", root, a->cfg->kms_root[0] ? ", as pinned" : "");
	return 0;
}

static int agent_start(struct mesh_agent *a)
{
	struct err_detail why = { "" };
	int r;

	if (!a->cfg->contract[0])
		return -EINVAL;
	memcpy(a->self.contract, a->cfg->contract_addr, 20);
	r = attest_client_new(NULL, &a->attest);
	if (r < 0)
		return r;
	a->secrets = attest_node_secrets_new();
	if (!a->secrets)
		return -ENOMEM;
	r = attest_load_identity(a->attest, &a->id, a->secrets);
	if (r < 0) {
		log_error("reading our identity from the guest agent: %s", attest_client_error(a->attest));
		return r;
	}
	hex_encode(a->instance_hex, a->id.instance_id, 20);
	if (memcmp(a->id.app_id, a->self.contract, 20)) {
		char app[41];

		hex_encode(app, a->id.app_id, 20);
		log_error("the guest agent says app id 0x%s, but the cluster contract is %s: this CVM was "
			  "not deployed as an app of this cluster, so no peer would accept it", app,
			  a->cfg->contract);
		return -EPERM;
	}
	fill_self(a);
	r = kms_root_from_identity(a);
	if (r < 0)
		return r;
	r = mesh_psk_open(&a->psk, a->cfg->psk && a->cfg->mode == REGISTRY_MODE_WIREGUARD, a->attest,
			  a->id.wg_public_key);
	if (r < 0) {
		log_error("reading the cluster secret (P2P_PSK=on) from the guest agent: %s",
			  r == -ENOMEM ? errstr(r) : attest_client_error(a->attest));
		return r;
	}
	a->self.features = mesh_psk_features(a->psk);
	log_info("instance 0x%s of cluster %s, %s mode", a->instance_hex, a->cfg->contract,
		 mesh_mode_name(a->cfg->mode));

	r = a->cfg->rpc_error < 0
		    ? a->cfg->rpc_error
		    : registry_handle_open(&a->reg, &a->cfg->rpc, a->self.contract, a->abort_flag);
	if (r < 0) {
		if (r == -EINVAL || r == -E2BIG)
			log_error("ETH_RPC_URL '%s' is not a comma-separated list of RPC URLs (http://, "
				  "https://, http+unix://, ipc:// or a socket path)%s", a->cfg->rpc_urls,
				  r == -E2BIG ? ", or it lists too many" : "");
		else
			log_error("RPC URL list '%s': %s", a->cfg->rpc_urls, errstr(r));
		return r == -EINVAL || r == -E2BIG ? -EBADR : r;
	}
	r = mesh_sender_open(&a->sender, a->reg, a->cfg, &why);
	if (r < 0) {
		log_error("reading the funded key: %s", why.text[0] ? why.text : errstr(r));
		return r == -ENOMEM ? r : -EBADR;
	}
	if (a->cfg->chain_id) {
		a->chain_confirmed = true;
		registry_handle_expect_chain_id(a->reg, a->cfg->chain_id);
	}
	r = agent_push_open(a);
	if (r < 0) {
		log_error("P2P_RPC_WS_URL '%s': %s", a->cfg->ws_url, r == -EINVAL ?
			  "auto needs an http:// or https:// URL in ETH_RPC_URL to derive ws(s):// from" : errstr(r));
		return r == -ENOMEM ? r : -EBADR;
	}

	if (a->cfg->mode == REGISTRY_MODE_WIREGUARD) {
		r = lock_interface(a->cfg->ifname, &a->iface_lock);
		if (r < 0) {
			log_error("interface %s: %s", a->cfg->ifname, r == -EADDRINUSE ?
				  "another agent manages it already (one agent per interface)" : errstr(r));
			return r == -EADDRINUSE ? -EBADR : r;
		}
		a->self.transport = a->cfg->transport;
		/* our UDP endpoint and/or gateway name */
		r = mesh_transport_open(&a->transport, a->cfg, a->id.instance_id, a->self.contract,
					a->secrets, &why);
		if (r < 0)
			log_error("%s", why.text[0] ? why.text : errstr(r));
		a->self.gateway = mesh_transport_gateway(a->transport);
		snprintf(a->self.endpoint, sizeof(a->self.endpoint), "%s",
			 mesh_transport_endpoint(a->transport));
		if (r == 0)
			r = mesh_device_open(&a->device, a->cfg, a->id.wg_public_key,
					     a->secrets->wg_private_key);
		if (r < 0)
			return r;
	} else {
		r = agent_gateway_url(a->cfg, a->instance_hex, a->self.endpoint, sizeof(a->self.endpoint));
		if (r < 0) {
			log_error("cannot tell our gateway URL (set DSTACK_GATEWAY_DOMAIN): %s", errstr(r));
			return r;
		}
	}
	log_info("our endpoint: %s", a->self.endpoint);

	r = control_listen(&a->control, a->cfg->control_path);
	if (r < 0) {
		log_error("control socket %s: %s", a->cfg->control_path,
			  r == -EADDRINUSE ? "another agent is running" : errstr(r));
		return r;
	}
	/* The loop's sources: a DNS server or a metrics listener is one more line here. */
	agent_add_source(a, control_fd, serve_control, a);
	agent_add_source(a, push_fd, serve_push, a);
	r = agent_names_open(a);
	return r < 0 ? r : agent_metrics_open(a);
}

int mesh_agent_new(const struct mesh_config *cfg, const volatile sig_atomic_t *abort_flag,
		   struct mesh_agent **out)
{
	struct mesh_agent *a = calloc(1, sizeof(*a));
	int r;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	a->cfg = cfg;
	a->abort_flag = abort_flag;
	/*
	 * A fixed mmap threshold: an RPC reply of megabytes (an oversized or hostile one) is
	 * mapped and unmapped, not left in the heap; glibc's sliding threshold would otherwise
	 * rise after the first such free and keep the next ones for good.
	 */
	mallopt(M_MMAP_THRESHOLD, AGENT_MMAP_THRESHOLD);
	a->control.fd = -1;
	a->iface_lock = -1;
	mesh_state_init(&a->st);
	buf_init(&a->log, 1 << 20);
	http_global_init();
	r = agent_start(a);
	if (r < 0) {
		mesh_agent_free(a);
		return r;
	}
	*out = a;
	return 0;
}

void mesh_agent_free(struct mesh_agent *a)
{
	if (!a)
		return;
	control_close(&a->control);
	agent_names_close(a);
	mesh_device_close(a->device);
	mesh_psk_close(a->psk);
	if (a->iface_lock >= 0)
		close(a->iface_lock);
	agent_metrics_close(a);
	mesh_transport_close(a->transport); /* the relay thread signs with the node key: stop it first */
	agent_push_close(a);
	mesh_sender_close(a->sender);
	registry_handle_close(a->reg);
	attest_node_secrets_free(a->secrets);
	attest_client_free(a->attest);
	mesh_state_clear(&a->st);
	buf_clear(&a->log);
	free(a->published);
	free(a->before);
	free(a);
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
