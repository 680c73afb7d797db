/* SPDX-License-Identifier: MIT */
/* mesh: pieces shared by the agent's files, not part of the module's interface. */
#ifndef DSTACK_P2P_MESH_INTERNAL_H
#define DSTACK_P2P_MESH_INTERNAL_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* The listening control socket and the "watch" clients it streams peer lists to. */
struct control_server {
	int fd;
	int watchers[16];
	char path[PATH_MAX];
};

/* The control protocol's version (docs/control-protocol.md); every reply carries it. */
#define CONTROL_VERSION 1
/* Longest request line, newline excluded. */
#define CONTROL_REQUEST_MAX 512

/* One request, parsed (docs/control-protocol.md). */
struct control_request {
	unsigned version;        /* asked for; CONTROL_VERSION for a bare word */
	char name[32];           /* "peers", "status", "watch", "leader", "leader.elect", ... */
	int64_t target;          /* leader.vote: the leader's token; 0: the current leader */
	bool no_confidence;      /* leader.vote: true (default) votes, false withdraws */
};

/*
 * A request line (no newline): a bare word or a JSON object with "version" and
 * "request". -EINVAL with *why a sentence for the client. The version is not checked.
 */
int control_request_parse(const char *line, size_t len, struct control_request *req, const char **why);
/* Replace out with {"version":1,"error":{"code":code,"message":message}}. */
int control_error(struct buf *out, const char *code, const char *message);

/*
 * Fill out with the JSON reply to req (its version is CONTROL_VERSION): a document, or
 * an error object written with control_error (return 0 then). -ENOENT: unknown request.
 */
typedef int (*control_reply_fn)(void *ctx, const struct control_request *req, struct buf *out);

int control_listen(struct control_server *s, const char *path);
void control_close(struct control_server *s);
/* Serve the clients waiting in accept (bounded per call). */
void control_accept(struct control_server *s, control_reply_fn reply, void *ctx);
/* Send one line to every watcher, dropping those that cannot keep up. */
void control_broadcast(struct control_server *s, const char *line);

/* ---- the cluster contract, as the agent sees it through chain/ (mesh/cluster.c) ---- */

struct cluster;
struct registry_peer;
struct registry_leader;

/* A view of contract over the RPC URLs (comma-separated failover list). */
/* abort_flag (may be NULL): RPC calls give up once it is set (the agent is stopping). */
int cluster_open(struct cluster **out, const char *rpc_urls, const uint8_t contract[static 20],
		 const volatile sig_atomic_t *abort_flag);
void cluster_close(struct cluster *c);
/* One line about the last failure ("eth_call getPeers() at http://...: timed out"). */
const char *cluster_error(const struct cluster *c);
/* JSON-RPC requests sent so far (the benchmark's "RPC calls per idle poll"). */
uint64_t cluster_rpc_calls(const struct cluster *c);

int cluster_chain_id(struct cluster *c, uint64_t *chain_id);
int cluster_kms_root(struct cluster *c, uint8_t kms_root[static 20]);
int cluster_token_of_instance(struct cluster *c, const uint8_t instance_id[static 20], uint64_t *token);
/* The stored registration nonce of an instance (kept across removals). */
int cluster_nonce_of(struct cluster *c, const uint8_t instance_id[static 20], uint64_t *nonce);
/*
 * Bring the view of the registry up to the chain's head: one round trip when idle, a
 * getPeers() when the contract logged something or a reorg happened; full = start over
 * with a fresh getPeers(). *changed when the peer set may differ. On error the last good
 * set stays.
 */
int cluster_poll(struct cluster *c, bool full, bool *changed);
/* Every live record, valid until the next poll; the block it was read at. */
const struct registry_peer *cluster_peers(const struct cluster *c, size_t *n);
uint64_t cluster_block(const struct cluster *c);
/* Entries of getPeers() too malformed to decode, with the reason. */
const struct registry_skip *cluster_skipped(const struct cluster *c, size_t *n);
/* The registerPeer(...) calldata for a signed record. */
int cluster_registration_calldata(const struct registry_peer *rec, struct buf *out);
/*
 * Send registerPeer(rec) paid by tx_key (32 bytes, locked memory) and wait (bounded) for
 * its receipt; a revert comes back as -EPERM with the reason in cluster_error().
 */
int cluster_send_registration(struct cluster *c, const struct registry_peer *rec,
			      const uint8_t tx_key[static 32]);
/* labelOf(token) and leaderState() (chain/registry-abi.c). */
int cluster_label_of(struct cluster *c, uint64_t token, char *out, size_t cap);
int cluster_leader_state(struct cluster *c, struct registry_leader *out);
/* Hand the calldata to a relayer (POST {"to","data"} to url). */
int cluster_relay_registration(struct cluster *c, const char *relayer_url,
			       const struct registry_peer *rec);

/* ---- the agent's state, shared by agent.c, wireguard.c and report.c ----------------- */

#include "attest/attest.h"
#include "mesh/mesh.h"

struct wg_backend;

/* A record that failed verification, remembered so the reason is logged once. */
struct mesh_rejected {
	uint64_t token;
	uint64_t nonce;
	uint8_t instance_id[20];
	char reason[96];
};

/* A token's label (labelOf), remembered for the instance it was read for. */
struct agent_label {
	char instance_id[41];               /* empty: not read */
	char text[65];
};

struct agent {
	const struct mesh_config *cfg;
	uint8_t contract[20];

	/* identity: public half here, private keys only in locked memory */
	struct attest_client *attest;
	struct attest_identity id;
	struct attest_node_secrets *secrets;
	char instance_hex[41];
	char endpoint[MESH_ENDPOINT_MAX];   /* what we register */

	/* chain */
	struct cluster *cluster;
	bool chain_ready;                   /* chain id and KMS root known */
	uint64_t chain_id;
	uint8_t kms_root[20];
	uint64_t block;                     /* latest block the registry was seen at */
	uint64_t token;                     /* 0 until bound */
	bool registered;                    /* our record is on chain and matches */
	uint64_t registered_nonce;
	uint64_t tx_sent_ms;                /* last registration attempt; 0 = none */
	bool said_unbound;                  /* "not bound yet" logged once until it changes */
	uint8_t printed_calldata[32];       /* keccak of the registration last printed for relaying */

	/* WireGuard */
	struct wg_backend *wg;
	bool iface_ready;
	uint64_t addr_token;                /* token whose 10.0.1.t is on the interface */
	struct mesh_wg_want *applied;       /* what we last programmed (endpoint roaming policy) */
	uint64_t keepalive_due_ms;          /* new peers were added without keepalive; add it then */
	size_t n_applied;

	/* the verified peer list apps see (never includes this node) */
	struct mesh_peer *peers;
	size_t n_peers;
	uint64_t generation;
	struct mesh_rejected rejected[MESH_MAX_PEERS];
	size_t n_rejected;

	/* health */
	uint64_t last_sync_ms;              /* last successful registry read */
	uint64_t next_full_read_ms;
	bool applied_view;                  /* a registry view was applied since start */
	bool empty_recheck;                 /* an empty registry read waits for a fresh re-read */
	unsigned backoff_ms;                /* 0 while the RPC answers */
	bool force_reconcile;

	struct control_server control;

	/* what apps are told besides the list (mesh/apps.c) */
	struct agent_label labels[MESH_MAX_PEERS + 1];  /* by token */
	struct mesh_peer *published;        /* the list as last published ... */
	size_t n_published;
	struct mesh_peer *before;           /* ... and the one before: added/removed */
	size_t n_before;
	struct registry_leader leader;
	bool leader_known;                  /* leaderState() read at least once */
	uint64_t leader_block;              /* the block it was read at */
};

/*
 * Split the registry into our own record (returned, or NULL), the records that can be
 * our peers (sorted by token) and the rejected ones with the reason. No side effects.
 */
const struct registry_peer *agent_classify_records(const struct agent *a, const struct registry_peer *recs,
						   size_t n, struct mesh_peer *peers, size_t *n_peers,
						   struct mesh_rejected *rejected, size_t *n_rejected);

/* wireguard.c: interface set-up (create or adopt) and the apply-only-the-difference step. */
int agent_wg_open(struct agent *a);
int agent_wg_set_address(struct agent *a, uint64_t token);
/* Program the device so its peers are exactly a->peers; 0 or negative errno. */
int agent_wg_reconcile(struct agent *a);
/* The entry of a dump with this key, or NULL. */
const struct mesh_wg_have *agent_have_by_key(const struct mesh_wg_have *have, size_t n,
					     const uint8_t *key);
/* Per-peer live state for status (handshake, transfer), keyed by WireGuard key. */
int agent_wg_dump(struct agent *a, struct mesh_wg_have **have, size_t *n);
void agent_wg_close(struct agent *a);

/* report.c: the control socket's JSON documents. */
int agent_peers_json(const struct agent *a, struct buf *out);
int agent_status_json(struct agent *a, struct buf *out);

/* apps.c: labels, the last change and the leader, for the documents apps read. */
/* Read the labels of our token and our peers' that are not known yet (RPC). */
void agent_refresh_labels(struct agent *a);
/* The label of a token held by instance (hex), "" when unknown. */
const char *agent_label(const struct agent *a, uint64_t token, const char *instance_hex);
/* The list was just published: remember it, so added/removed name this change. */
int agent_note_published(struct agent *a);
/* Connect strings of the last change: in published and not in before (added) or the reverse. */
int agent_change_json(const struct agent *a, bool added, struct buf *out);
/* Read leaderState() when the chain moved; 1 when the leadership changed, 0, negative errno. */
int agent_follow_leader(struct agent *a);
/* {"token":..,"label":..,...} or null. */
int agent_leader_json(const struct agent *a, struct buf *out);

/* endpoint.c: what this node registers. */
int agent_guess_endpoint(const struct mesh_config *cfg, char *out, size_t len);
int agent_gateway_url(const struct mesh_config *cfg, const char *instance_hex, char *out, size_t len);

#endif
