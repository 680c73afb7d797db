/* SPDX-License-Identifier: MIT */
/*
 * mesh: the agent's main loop. Follow the registry, verify every record, keep our own
 * record registered, program WireGuard with only the difference, publish the peer list.
 * A failing RPC never changes the mesh: the last good state stays, we back off and retry.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "attest/attest.h"
#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"

#define BACKOFF_MAX_MS 30000
#define TX_RETRY_MS 15000  /* a registration not seen on chain by then is sent again */

/*
 * SIGTERM/SIGINT: set by a handler rather than read from the signalfd, so an RPC that
 * hangs gives up at once (the flag is its abort hook) instead of after its timeout.
 * The pipe wakes the main loop's poll; the other signals go through the signalfd.
 */
static volatile sig_atomic_t stop_signal;
static int stop_pipe[2] = { -1, -1 };

/* ---- registration ----------------------------------------------------------------------- */

/* The funded key that pays for our registration: hex in a file, into locked memory. */
static int read_tx_key(const char *path, uint8_t *key)
{
	char text[80] = { 0 };
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	r = n < 0 ? -errno : 0;
	close(fd);
	if (r == 0) {
		size_t len = strcspn(text, " \t\r\n");

		r = hex_decode_exact(key, 32, text, len) < 0 ? -EINVAL : 0;
	}
	secret_wipe(text, sizeof(text));
	return r;
}

/*
 * No key and no relayer: say exactly how an operator can send our registration, once
 * for each distinct record (a new nonce or endpoint prints again).
 */
static void print_relay_instructions(struct agent *a, const struct registry_peer *rec)
{
	char contract[41], *hex = NULL;
	uint8_t digest[32];
	struct buf data;

	buf_init(&data, 1 << 16);
	if (cluster_registration_calldata(rec, &data) < 0)
		goto out;
	keccak256(digest, data.data, data.len);
	if (!memcmp(digest, a->printed_calldata, sizeof(digest)))
		goto out;
	hex = malloc(2 * data.len + 1);
	if (!hex)
		goto out;
	memcpy(a->printed_calldata, digest, sizeof(digest));
	hex_encode(hex, data.data, data.len);
	hex_encode(contract, a->contract, 20);
	log_info("no funded key (P2P_TX_KEY_FILE) and no relayer (P2P_RELAYER_URL): "
		 "relay this registration from any funded account:");
	printf("registration calldata: 0x%s\n", hex);
	printf("send it with: cast send 0x%s 0x%s --rpc-url <RPC> --private-key <FUNDED_KEY>\n",
	       contract, hex);
	fflush(stdout);
out:
	free(hex);
	buf_free(&data);
}

static int send_registration(struct agent *a)
{
	struct registry_peer rec = { 0 };
	uint64_t stored_nonce;
	uint8_t *tx_key = NULL;
	int r;

	r = cluster_nonce_of(a->cluster, a->id.instance_id, &stored_nonce);
	if (r < 0) {
		log_warn("reading our registration nonce: %s", cluster_error(a->cluster));
		return r;
	}
	r = attest_sign_record(&a->id, a->secrets, a->chain_id, a->contract, a->endpoint,
			       (enum registry_mode)a->cfg->mode, stored_nonce + 1, &rec);
	if (r < 0) {
		log_error("signing our registry record: %s", errstr(r));
		return r;
	}
	if (a->cfg->tx_key_file[0]) {
		tx_key = secret_alloc(32);
		r = tx_key ? read_tx_key(a->cfg->tx_key_file, tx_key) : -ENOMEM;
		if (r < 0) {
			log_error("reading the funded key from %s: %s", a->cfg->tx_key_file, errstr(r));
			goto out;
		}
		log_info("registering: endpoint %s, nonce %llu", a->endpoint,
			 (unsigned long long)rec.nonce);
		r = cluster_send_registration(a->cluster, &rec, tx_key);
		if (r < 0)
			log_error("registration transaction: %s", cluster_error(a->cluster));
	} else if (a->cfg->relayer_url[0]) {
		r = cluster_relay_registration(a->cluster, a->cfg->relayer_url, &rec);
		if (r < 0)
			log_error("handing the registration to the relayer %s: %s", a->cfg->relayer_url,
				  cluster_error(a->cluster));
	} else {
		print_relay_instructions(a, &rec);
	}
out:
	secret_free(tx_key, 32);
	registry_peer_clear(&rec);
	return r;
}

/* Our record as it should be on chain. */
static bool own_record_matches(const struct agent *a, const struct registry_peer *p)
{
	static const uint8_t zero[32];
	const uint8_t *want_key = a->cfg->mode == MESH_MODE_WIREGUARD ? a->id.wg_public_key : zero;

	return p->mode == (uint8_t)a->cfg->mode && !memcmp(p->wg_public_key, want_key, 32) &&
	       p->endpoint && !strcmp(p->endpoint, a->endpoint);
}

/* Not registered (or registered with stale data): register unless a tx is in flight. */
static void keep_registered(struct agent *a)
{
	uint64_t now = now_ms();

	if (!a->token) {
		int r = cluster_token_of_instance(a->cluster, a->id.instance_id, &a->token);

		if (r < 0 || !a->token) {
			if (r == 0 && !a->said_unbound)
				log_info("instance 0x%s is not bound to a cluster token yet; waiting for the "
					 "operator's bindInstance", a->instance_hex);
			a->said_unbound = r == 0;
			return;
		}
		log_info("instance 0x%s holds token %llu", a->instance_hex, (unsigned long long)a->token);
		a->said_unbound = false;
		a->tx_sent_ms = 0;
	}
	if (a->tx_sent_ms && now - a->tx_sent_ms < TX_RETRY_MS)
		return;
	a->tx_sent_ms = now;
	send_registration(a);
}

/* ---- the registry, verified ---------------------------------------------------------------- */

static bool was_rejected_before(const struct agent *a, const struct mesh_rejected *x)
{
	for (size_t i = 0; i < a->n_rejected; i++)
		if (a->rejected[i].token == x->token && a->rejected[i].nonce == x->nonce &&
		    !strcmp(a->rejected[i].reason, x->reason))
			return true;
	return false;
}

/* Why a record cannot be a peer of ours, or NULL when it can. */
static const char *peer_record_problem(const struct agent *a, const struct registry_peer *p,
				       char *why, size_t why_len)
{
	enum attest_verdict v;
	struct sockaddr_storage ss;

	if (p->token_id < 1 || p->token_id > MESH_MAX_PEERS)
		return "token id outside 1..254";
	if (!p->endpoint || !*p->endpoint)
		return "empty endpoint";
	/* It goes into logs, the peers file's lines and the on-change command's input. */
	for (const char *c = p->endpoint; *c; c++)
		if (*c <= ' ' || *c > '~')
			return "endpoint holds a space, control or non-ASCII byte";
	v = attest_verify_record(p, a->chain_id, a->contract, a->kms_root);
	if (v != ATTEST_VALID) {
		snprintf(why, why_len, "verification failed: %s", attest_verdict_str(v));
		return why;
	}
	if (p->mode != (uint8_t)a->cfg->mode) {
		snprintf(why, why_len, "registered in %s mode, we run %s",
			 mesh_mode_name((enum mesh_mode)p->mode), mesh_mode_name(a->cfg->mode));
		return why;
	}
	if (p->mode == REGISTRY_MODE_WIREGUARD) {
		static const uint8_t zero[32];

		if (!memcmp(p->wg_public_key, zero, 32))
			return "no WireGuard key";
		if (!memcmp(p->wg_public_key, a->id.wg_public_key, 32))
			return "uses our own WireGuard key";
		if (mesh_endpoint_parse(p->endpoint, &ss) < 0) {
			snprintf(why, why_len, "endpoint '%.64s' is not host:port", p->endpoint);
			return why;
		}
	} else if (strncmp(p->endpoint, "https://", 8)) {
		return "gateway endpoint is not an https URL";
	}
	return NULL;
}

static int peer_by_token(const void *x, const void *y)
{
	const struct mesh_peer *a = x, *b = y;

	return (a->token > b->token) - (a->token < b->token);
}

/* Publish a new peer list: file, on-change command, watchers. */
static void publish_peers(struct agent *a)
{
	struct buf lines, doc;
	int r;

	buf_init(&lines, 1 << 16);
	buf_init(&doc, 1 << 20);
	agent_refresh_labels(a);
	if (agent_note_published(a) < 0)
		goto out;
	if (mesh_peers_format_lines(a->peers, a->n_peers, &lines) < 0)
		goto out;
	if (a->cfg->peers_file[0]) {
		r = mesh_write_file_atomic(a->cfg->peers_file, lines.data, lines.len);
		if (r < 0)
			log_warn("writing the peers file %s: %s", a->cfg->peers_file, errstr(r));
	}
	if (a->cfg->on_change[0]) {
		r = mesh_run_on_change(a->cfg->on_change, (const char *)lines.data);
		if (r < 0)
			log_warn("running the on-change command: %s", errstr(r));
	}
	if (agent_peers_json(a, &doc) == 0)
		control_broadcast(&a->control, (const char *)doc.data);
out:
	buf_free(&lines);
	buf_free(&doc);
}

/* The leadership changed, the list did not: tell the watchers. */
static void publish_leader(struct agent *a)
{
	struct buf doc;

	buf_init(&doc, 1 << 20);
	if (agent_peers_json(a, &doc) == 0)
		control_broadcast(&a->control, (const char *)doc.data);
	buf_free(&doc);
}

/*
 * Two records with one WireGuard key cannot both be peers: the device would refuse the
 * whole change and freeze the mesh (no joins, no revocations). The lower token keeps
 * the key, the same choice on every node; the others are rejected. peers is sorted.
 */
static void drop_shared_keys(struct mesh_peer *peers, size_t *n_peers, struct mesh_rejected *rejected,
			     size_t *n_rejected)
{
	size_t kept = 0;

	for (size_t i = 0; i < *n_peers; i++) {
		const struct mesh_peer *first = NULL;

		for (size_t k = 0; k < kept && !first; k++)
			if (!memcmp(peers[k].wg_key, peers[i].wg_key, sizeof(peers[i].wg_key)))
				first = &peers[k];
		if (first) {
			struct mesh_rejected *x = &rejected[(*n_rejected)++];

			x->token = peers[i].token;
			x->nonce = peers[i].nonce;
			hex_decode_exact(x->instance_id, 20, peers[i].instance_id, 40);
			snprintf(x->reason, sizeof(x->reason), "shares its WireGuard key with token %u",
				 first->token);
			continue;
		}
		peers[kept++] = peers[i];
	}
	*n_peers = kept;
}

const struct registry_peer *agent_classify_records(const struct agent *a, const struct registry_peer *recs,
						   size_t n, struct mesh_peer *peers, size_t *n_peers,
						   struct mesh_rejected *rejected, size_t *n_rejected)
{
	const struct registry_peer *own = NULL;

	*n_peers = *n_rejected = 0;
	for (size_t i = 0; i < n && i < MESH_MAX_PEERS; i++) {
		const struct registry_peer *p = &recs[i];
		char why[96];
		const char *problem;

		if (!memcmp(p->instance_id, a->id.instance_id, 20)) {
			own = p;
			continue;
		}
		problem = peer_record_problem(a, p, why, sizeof(why));
		if (problem) {
			struct mesh_rejected *x = &rejected[(*n_rejected)++];

			x->token = p->token_id;
			x->nonce = p->nonce;
			memcpy(x->instance_id, p->instance_id, 20);
			snprintf(x->reason, sizeof(x->reason), "%s", problem);
			continue;
		}
		struct mesh_peer *m = &peers[(*n_peers)++];
		m->token = (uint32_t)p->token_id;
		hex_encode(m->instance_id, p->instance_id, 20);
		memcpy(m->wg_key, p->wg_public_key, 32);
		snprintf(m->endpoint, sizeof(m->endpoint), "%s", p->endpoint);
		m->mode = (enum mesh_mode)p->mode;
		m->nonce = p->nonce;
	}
	qsort(peers, *n_peers, sizeof(*peers), peer_by_token);
	if (a->cfg->mode == MESH_MODE_WIREGUARD)
		drop_shared_keys(peers, n_peers, rejected, n_rejected);
	return own;
}

/*
 * One full view of the registry: find our own record, keep it registered, and turn every
 * other record that verifies into a peer.
 */
static int apply_registry(struct agent *a, const struct registry_peer *recs, size_t n)
{
	struct mesh_rejected *rejected = calloc(MESH_MAX_PEERS, sizeof(*rejected));
	struct mesh_peer *peers = calloc(MESH_MAX_PEERS, sizeof(*peers));
	const struct registry_peer *own;
	size_t n_peers = 0, n_rejected = 0;
	bool changed;
	int r = 0;

	if (!peers || !rejected) {
		r = -ENOMEM;
		goto out;
	}
	own = agent_classify_records(a, recs, n, peers, &n_peers, rejected, &n_rejected);
	for (size_t i = 0; i < n_rejected; i++)
		if (!was_rejected_before(a, &rejected[i]))
			log_warn("dropping the record of token %llu: %s",
				 (unsigned long long)rejected[i].token, rejected[i].reason);

	/* Our own record: registered only when it says what we would say now, and verifies. */
	bool was_registered = a->registered;
	a->registered = own && own_record_matches(a, own) &&
			attest_verify_record(own, a->chain_id, a->contract, a->kms_root) == ATTEST_VALID;
	if (own)
		a->token = own->token_id;
	if (a->registered) {
		a->tx_sent_ms = 0;
		a->registered_nonce = own->nonce;
		if (!was_registered)
			log_info("registered: token %llu, 10.0.1.%llu, endpoint %s",
				 (unsigned long long)a->token, (unsigned long long)a->token, a->endpoint);
	} else {
		if (was_registered)
			log_warn("our registry record is gone or stale; registering again");
		if (!own)
			a->token = 0;  /* re-read: a re-bind may have moved us to another token */
		keep_registered(a);
	}
	/* A token outside 1..254 has no overlay address (the registry never holds one). */
	if (a->cfg->mode == MESH_MODE_WIREGUARD && a->token && a->token <= MESH_MAX_PEERS &&
	    a->token != a->addr_token)
		agent_wg_set_address(a, a->token);

	changed = n_peers != a->n_peers ||
		  (n_peers && memcmp(peers, a->peers, n_peers * sizeof(*peers)));
	free(a->peers);
	a->peers = peers;
	a->n_peers = n_peers;
	peers = NULL;
	memcpy(a->rejected, rejected, n_rejected * sizeof(*rejected));
	a->n_rejected = n_rejected;

	/* A device that refused a change was logged; try again next turn, it is not the RPC. */
	if (a->cfg->mode == MESH_MODE_WIREGUARD && (changed || a->force_reconcile))
		a->force_reconcile = agent_wg_reconcile(a) < 0;
	if (changed) {
		a->generation++;
		log_info("peer list: %zu peer%s (generation %llu)", a->n_peers, a->n_peers == 1 ? "" : "s",
			 (unsigned long long)a->generation);
		publish_peers(a);
	}
out:
	free(peers);
	free(rejected);
	return r;
}

/* Malformed getPeers() entries never reach verification: report them like rejections. */
static void log_skipped(struct agent *a)
{
	const struct registry_skip *skips;
	size_t n;

	skips = cluster_skipped(a->cluster, &n);
	for (size_t i = 0; i < n; i++)
		log_warn("dropping getPeers() entry %zu: %s", skips[i].index, skips[i].reason);
}

/* One turn of the loop: a cheap follow step, and the full picture when anything moved. */
static int agent_step(struct agent *a)
{
	const struct registry_peer *recs;
	uint64_t now = now_ms();
	bool full = now >= a->next_full_read_ms, changed;
	size_t n;
	int r;

	if (!a->chain_ready) {
		char root[41];

		r = cluster_chain_id(a->cluster, &a->chain_id);
		if (r == 0)
			r = cluster_kms_root(a->cluster, a->kms_root);
		if (r < 0)
			return r;
		a->chain_ready = true;
		hex_encode(root, a->kms_root, 20);
		log_info("cluster on chain %llu, KMS root 0x%s", (unsigned long long)a->chain_id, root);
	}
	r = cluster_poll(a->cluster, full, &changed);
	if (r < 0)
		return r;
	a->block = cluster_block(a->cluster);
	a->last_sync_ms = now_ms();
	if (agent_follow_leader(a) > 0)
		publish_leader(a);
	if (full) {
		a->next_full_read_ms = a->last_sync_ms + a->cfg->full_reread_ms;
		a->force_reconcile = true;  /* and check the device for drift (someone ran wg set) */
	}
	if (changed)
		log_skipped(a);
	if (a->keepalive_due_ms && now >= a->keepalive_due_ms) {
		a->keepalive_due_ms = 0;
		a->force_reconcile = true;
	}
	/* Not registered yet: look at our own record (and maybe register) every turn. */
	if (!changed && a->registered && !a->force_reconcile)
		return 0;
	recs = cluster_peers(a->cluster, &n);
	/*
	 * No record at all, while we have peers (or have not looked yet: the interface may
	 * keep peers from our last run). Every token burnt reads like this, but so does an
	 * RPC node that lags behind or answers for the wrong state. Believe it only when a
	 * fresh full read a poll later says the same (a follow step after a failed re-read
	 * does not count); until then nothing is removed.
	 */
	if (n == 0 && (a->n_peers > 0 || !a->applied_view) && !(a->empty_recheck && full)) {
		if (a->n_peers)
			log_warn("the registry reads empty at block %llu; re-reading before removing "
				 "%zu peer%s", (unsigned long long)a->block, a->n_peers,
				 a->n_peers == 1 ? "" : "s");
		a->empty_recheck = true;
		a->next_full_read_ms = 0;
		return 0;
	}
	a->empty_recheck = false;
	a->applied_view = true;
	return apply_registry(a, recs, n);
}

/* ---- the control socket -------------------------------------------------------------------- */

static int control_reply(void *ctx, const struct control_request *req, struct buf *out)
{
	struct agent *a = ctx;

	if (!strcmp(req->name, "peers"))
		return agent_peers_json(a, out);
	if (!strcmp(req->name, "status"))
		return agent_status_json(a, out);
	if (!strcmp(req->name, "leader")) {
		int r = buf_printf(out, "{\"version\":%d,\"leader\":", CONTROL_VERSION);

		if (r == 0)
			r = agent_leader_json(a, out);
		return r == 0 ? buf_printf(out, "}") : r;
	}
	return -ENOENT;
}

/* ---- start, loop, stop --------------------------------------------------------------------- */

static int agent_start(struct agent *a)
{
	int r;

	r = hex_decode_exact(a->contract, 20, a->cfg->contract, strlen(a->cfg->contract));
	if (r < 0)
		return -EINVAL;
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
	if (memcmp(a->id.app_id, a->contract, 20)) {
		char app[41];

		hex_encode(app, a->id.app_id, 20);
		log_error("the guest agent says app id 0x%s, but the cluster contract is %s: this CVM was "
			  "not deployed as an app of this cluster, so no peer would accept it", app,
			  a->cfg->contract);
		return -EPERM;
	}
	log_info("instance 0x%s of cluster %s, %s mode", a->instance_hex, a->cfg->contract,
		 mesh_mode_name(a->cfg->mode));

	if (a->cfg->mode == MESH_MODE_WIREGUARD) {
		if (a->cfg->endpoint[0])
			snprintf(a->endpoint, sizeof(a->endpoint), "%s", a->cfg->endpoint);
		else if ((r = agent_guess_endpoint(a->cfg, a->endpoint, sizeof(a->endpoint))) < 0) {
			log_error("cannot tell our endpoint (set P2P_ENDPOINT=host:port): %s", errstr(r));
			return r;
		}
		r = agent_wg_open(a);
		if (r < 0)
			return r;
	} else {
		r = agent_gateway_url(a->cfg, a->instance_hex, a->endpoint, sizeof(a->endpoint));
		if (r < 0) {
			log_error("cannot tell our gateway URL (set DSTACK_GATEWAY_DOMAIN): %s", errstr(r));
			return r;
		}
	}
	log_info("our endpoint: %s", a->endpoint);

	r = cluster_open(&a->cluster, a->cfg->rpc_urls, a->contract, &stop_signal);
	if (r < 0) {
		log_error("RPC URL list '%s': %s", a->cfg->rpc_urls, errstr(r));
		return r;
	}
	r = control_listen(&a->control, a->cfg->control_path);
	if (r < 0) {
		log_error("control socket %s: %s", a->cfg->control_path,
			  r == -EADDRINUSE ? "another agent is running" : errstr(r));
		return r;
	}
	a->force_reconcile = true;  /* the first full read also checks the device */
	return 0;
}

static void agent_stop(struct agent *a)
{
	control_close(&a->control);
	if (a->wg)
		agent_wg_close(a);
	cluster_close(a->cluster);
	attest_node_secrets_free(a->secrets);
	attest_client_free(a->attest);
	free(a->peers);
	free(a->applied);
	free(a->published);
	free(a->before);
}

static void on_stop_signal(int signo)
{
	int saved = errno;

	stop_signal = signo;
	if (write(stop_pipe[1], "", 1) < 0) {
		/* Full pipe: a wake-up is already pending. */
	}
	errno = saved;
}

/* The signalfd for SIGHUP and SIGCHLD; SIGTERM and SIGINT set stop_signal. */
static int signals_open(void)
{
	/* SA_RESTART: file and netlink I/O carry on; poll (ours, curl's, the IPC's) wakes. */
	struct sigaction sa = { .sa_handler = on_stop_signal, .sa_flags = SA_RESTART };
	sigset_t set;
	int fd;

	if (stop_pipe[0] < 0 && pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		return -errno;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

static void signals_close(int sfd)
{
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	if (sfd >= 0)
		close(sfd);
	for (int i = 0; i < 2; i++) {
		if (stop_pipe[i] >= 0)
			close(stop_pipe[i]);
		stop_pipe[i] = -1;
	}
}

/* 1 to keep running, 0 to stop. */
static int handle_signal(struct agent *a, int sfd)
{
	struct signalfd_siginfo si;

	if (stop_signal) {
		log_info("stopping on signal %d%s", (int)stop_signal,
			 a->cfg->remove_on_exit ? "" : "; the interface and its peers stay up");
		return 0;
	}
	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			a->next_full_read_ms = 0;
			a->force_reconcile = true;
			break;
		case SIGCHLD:
			mesh_reap_children();
			break;
		}
	}
	return 1;
}

int mesh_agent_run(const struct mesh_config *cfg)
{
	struct agent a = { .cfg = cfg, .control = { .fd = -1 } };
	uint64_t next_tick = 0;
	bool rpc_down = false;
	int sfd = -1, r;

	http_global_init();
	r = agent_start(&a);
	if (r < 0)
		goto out;
	sfd = signals_open();
	if (sfd < 0) {
		r = sfd;
		goto out;
	}
	for (;;) {
		struct pollfd pfd[3] = { { .fd = sfd, .events = POLLIN }, { .fd = a.control.fd, .events = POLLIN },
					 { .fd = stop_pipe[0], .events = POLLIN } };
		uint64_t now = now_ms();
		int timeout = next_tick > now ? (int)(next_tick - now) : 0;

		if (poll(pfd, 3, stop_signal ? 0 : timeout) < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		if (!handle_signal(&a, sfd)) {
			r = 0;
			break;
		}
		if (pfd[1].revents & POLLIN)
			control_accept(&a.control, control_reply, &a);
		if (now_ms() < next_tick)
			continue;

		r = agent_step(&a);
		if (stop_signal)
			continue;  /* an RPC cut short by SIGTERM: stop, it says nothing about the chain */
		if (r < 0 && r != -ENOMEM && a.cluster) {
			/* Keep every tunnel as it is; only the view of the chain is stale. */
			a.backoff_ms = a.backoff_ms ? a.backoff_ms * 2 : cfg->poll_ms;
			if (a.backoff_ms > BACKOFF_MAX_MS)
				a.backoff_ms = BACKOFF_MAX_MS;
			if (!rpc_down)
				log_warn("registry unreachable, keeping the current peers: %s",
					 cluster_error(a.cluster));
			rpc_down = true;
		} else {
			if (rpc_down)
				log_info("registry reachable again");
			rpc_down = false;
			a.backoff_ms = 0;
		}
		next_tick = now_ms() + (a.backoff_ms ? a.backoff_ms : cfg->poll_ms);
	}
out:
	signals_close(sfd);
	agent_stop(&a);
	return r;
}
