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
struct err_detail;

/* The control socket's limits (docs/agent.md): watchers, and clients waiting in accept. */
#define CONTROL_MAX_WATCHERS 16
#define CONTROL_MAX_WATCHERS_STR "16"
#define CONTROL_BACKLOG 16

/* What the control server counts, for metrics. */
struct control_stats {
	uint64_t requests;         /* connections served (a request line read or not) */
	uint64_t malformed;        /* of them, not a request (answered with an error) */
	uint64_t watchers_dropped; /* watchers that stopped reading */
	size_t watchers;           /* watching now */
};

/* The listening control socket and the "watch" clients it streams peer lists to. */
struct control_server {
	struct control_stats stats;
	int fd;
	int watchers[CONTROL_MAX_WATCHERS];
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
	/* who asks (SO_PEERCRED; set by control_accept, not the parser) */
	bool cred_known;
	long uid, gid;
};

/*
 * A request line (no newline): a bare word or a JSON object with "version" and
 * "request". -EINVAL with why (may be NULL) a sentence for the client, emptied on
 * success. The version is not checked.
 */
int control_request_parse(const char *line, size_t len, struct control_request *req, struct err_detail *why);
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
struct control_stats control_stats(const struct control_server *s);

/* ---- the transaction sender (sender.c) ------------------------------------------------ */

struct registry_record;
struct registry_leader_call;
struct registry_handle;
struct mesh_config;
struct eth_tx_caps;
struct eth_receipt;

/*
 * What the agent sends to the contract over reg's providers (borrowed: it outlives the
 * sender): registrations and signed leader calls, paid by the funded key of cfg
 * (P2P_TX_KEY_FILE, under its caps, no receipt wait) or handed to its relayer
 * (P2P_RELAYER_URL); the leader actions sent, followed to their receipts across turns,
 * under the spacing and hourly cap. What went wrong last: mesh_sender_error().
 */
struct mesh_sender;
/* -ENOMEM, or the funded key's file does not read (why says how). */
int mesh_sender_open(struct mesh_sender **out, struct registry_handle *reg, const struct mesh_config *cfg,
		     struct err_detail *why);
void mesh_sender_close(struct mesh_sender *s);
const char *mesh_sender_error(const struct mesh_sender *s);
/* What the sender sends (docs/metrics.md: the label kind). */
enum mesh_tx_kind { MESH_TX_REGISTRATION, MESH_TX_LEADER_CALL, MESH_TX_KINDS };
struct mesh_sender_stats {
	uint64_t sent;    /* transactions paid by the funded key */
	uint64_t relayed; /* calls a relayer took */
	uint64_t failed;  /* refused, above a cap, or not sent */
	/* the same by kind, and the gas limits of the transactions paid */
	uint64_t sent_by[MESH_TX_KINDS], relayed_by[MESH_TX_KINDS], failed_by[MESH_TX_KINDS];
	uint64_t gas_limit_by[MESH_TX_KINDS];
};
const struct mesh_sender_stats *mesh_sender_stats(const struct mesh_sender *s);
/* The funded key's nonce at "latest" (its transactions mined so far); -ENOENT: no funded key. */
int mesh_sender_funded_nonce(struct mesh_sender *s, uint64_t *nonce);
/* A funded key or a relayer is configured; the funded key is (it pays, the relayer does not). */
bool mesh_sender_configured(const struct mesh_sender *s);
bool mesh_sender_pays(const struct mesh_sender *s);
/*
 * Read the funded key (when configured) into locked memory for the sends that follow, until
 * mesh_sender_release_key wipes it; the relayer is used without it. -errno (mesh_sender_error:
 * "reading the funded key: ...").
 */
int mesh_sender_hold_key(struct mesh_sender *s);
void mesh_sender_release_key(struct mesh_sender *s);
/*
 * Send registerPeer(rec) paid by the key held, under the caps, without waiting for the
 * receipt, or without a key hand its calldata to the relayer (POST {"to","data"}). 1 with
 * tx_hash set, 0 relayed without a hash; -EPERM: the simulation reverts or the relayer
 * refused, -EDQUOT: above a cap (mesh_sender_error names it), nothing sent either way;
 * other -errno.
 */
int mesh_sender_register(struct mesh_sender *s, const struct registry_record *rec,
			 uint8_t tx_hash[static 32]);
/*
 * Neither key nor relayer: what an operator runs to send rec ("registration calldata:
 * 0x...\nsend it with: cast send ...\n") appended to out, 1; 0 when it was given for this
 * very record already (a new nonce or endpoint gives it again); -ENOMEM.
 */
int mesh_sender_manual(struct mesh_sender *s, const struct registry_record *rec, struct buf *out);
/* eth_getTransactionReceipt: 0, -ENOENT while not mined, other -errno (mesh_sender_error). */
int mesh_sender_receipt(struct mesh_sender *s, const uint8_t tx_hash[static 32], struct eth_receipt *rc);
/* The same for a signed leader call (1 with tx_hash, 0 relayed without a hash). */
int mesh_sender_leader_call(struct mesh_sender *s, const struct registry_leader_call *call,
			    uint8_t tx_hash[static 32]);
/* A leader action the agent sent, followed to its receipt on later turns (sender.c). */
enum agent_action_state {
	AGENT_ACTION_PENDING,
	AGENT_ACTION_CONFIRMED,
	AGENT_ACTION_REVERTED,
	AGENT_ACTION_UNKNOWN
};
struct agent_action {
	char name[16]; /* "elect", "heartbeat", "vote" */
	uint8_t tx[32];
	bool has_tx; /* a relayer may not name its transaction */
	bool relayed;
	enum agent_action_state state;
	uint64_t sent_ms;
	uint64_t block; /* mined in (confirmed, reverted) */
};
#define AGENT_ACTIONS_KEPT 8
/* A pending action's receipt is looked for this long, then its state is "unknown". */
#define AGENT_ACTION_FOLLOW_MS 180000
/* The spacing (P2P_ACTION_SPACING_MS) and hourly cap (P2P_ACTION_MAX_PER_HOUR): 0 and the
 * action counted, or -EAGAIN with why in msg (cap bytes) for the client. */
int mesh_sender_take_action_slot(struct mesh_sender *s, char *msg, size_t cap);
/* Remember a sent action (tx NULL: a relayer that named none); the reply shows it. */
const struct agent_action *mesh_sender_note_action(struct mesh_sender *s, const char *name, const uint8_t *tx,
						   bool relayed);
/* The pending actions' receipts (one RPC call each): 1 when one was decided (mined or given up). */
int mesh_sender_follow_actions(struct mesh_sender *s);
/* "actions":[...] of the leader document: the last actions sent, newest first, and their state. */
int mesh_sender_actions_json(const struct mesh_sender *s, struct buf *out);
const char *mesh_action_state_name(enum agent_action_state state);
/*
 * A relayer's reply body (outside input; fuzzed): its "error" string into reason (cap
 * bytes, control bytes replaced; "" without one; reason may be NULL with cap 0) and 1
 * with its "txHash" (0x and 64 hex) in tx_hash, else 0.
 */
int mesh_relayer_reply_parse(const char *body, size_t len, char *reason, size_t cap,
			     uint8_t tx_hash[static 32]);

/* ---- the decision (decide.c): pure, no sockets, no clock, no logging ------------- */

#include "attest/attest.h"
#include "common/common.h"
#include "mesh/mesh.h"
#include "netlink/netlink.h"
#include "registry/registry.h"

/* A record that failed verification, remembered so the reason is logged once. */
/* Which rule left a record out (docs/metrics.md, dstack_p2p_registry_records_rejected). */
enum mesh_reject_kind {
	MESH_REJECT_MALFORMED,     /* a getPeers() entry that does not decode (registry/'s) */
	MESH_REJECT_FIELD,         /* a token or endpoint no peer may have */
	MESH_REJECT_VERIFICATION,  /* the KMS chain or a signature does not verify */
	MESH_REJECT_MODE,          /* another network mode than ours */
	MESH_REJECT_WIREGUARD_KEY, /* no key, ours, or another peer's */
	MESH_REJECT_TRANSPORT,     /* a path our transport rules out */
	MESH_REJECT_REPLAYED,      /* a nonce older than one verified before */
	MESH_REJECT_KINDS
};

struct mesh_rejected {
	uint64_t token;
	uint64_t nonce;
	uint8_t instance_id[20];
	uint8_t kind; /* enum mesh_reject_kind */
	char reason[96];
};

/* Who we are and what we trust: set at start, never from the RPC alone. */
struct mesh_self {
	enum registry_mode mode;
	uint8_t contract[20];
	uint8_t instance_id[20];
	uint8_t wg_public_key[32];          /* zero in tls mode */
	char endpoint[REGISTRY_ENDPOINT_MAX + 1];   /* what we register */
	uint64_t chain_id;                  /* records are verified against this */
	uint8_t kms_root[20];               /* recovered from our own GetKey reply */
	uint16_t listen_port;
	uint16_t keepalive;
	unsigned reg_spacing_ms;            /* at least this long between two registrations */
	unsigned reg_max_per_hour;          /* then only log */
	enum mesh_transport transport;      /* which peers we can reach (docs/transport.md) */
	bool gateway;                       /* we have a gateway name: gateway-only peers are reachable */
	uint8_t features;                   /* the nonce features we register (REGISTRY_FEATURE_*) */
};

/* What the loop saw this turn. */
struct mesh_input {
	const union wg_endpoint *path_endpoints; /* by token: the path chosen (transport.c); AF_UNSPEC
						  * or NULL: the record's UDP endpoint */
	uint64_t now_ms;
	bool have_view;                     /* the registry was read (else: RPC failed or idle) */
	bool full;                          /* ...by a fresh full getPeers() */
	bool registry_read;                 /* it answered, changed or not (idle: !have_view) */
	bool chain_unconfirmed;             /* no record has verified under self->chain_id yet */
	const struct registry_record *recs;
	size_t n_recs;
	uint64_t block;
	const struct registry_record *recs2;  /* a second provider's records at the same block, */
	size_t n_recs2;                     /* or NULL (one URL, or it did not answer) */
	const char *provider, *provider2;   /* their names, for messages */
	const char *block_disagreement;     /* what the providers' blocks disagreed on, or "" */
	const struct wg_device *dev;        /* the device now; NULL: not read (tls mode, error) */
	bool funded_nonce_known;            /* the funded key's nonce on chain ("latest") */
	uint64_t funded_nonce;
	bool revoked;                       /* with the view: our instance is bound to no token
					       (burned or unbound): leave, send nothing */
	/* The pre-shared key of the pair with m now: 1 (written to out) or 0 (none); NULL: none at all. */
	int (*psk)(const void *ctx, const struct mesh_peer *m, uint8_t out[static 32]);
	const void *psk_ctx;
};

/* The highest verified nonce of an instance, for the agent's lifetime (no rollback). */
struct mesh_seen {
	uint8_t instance_id[20];
	uint64_t nonce;
	bool warned;                        /* a replay of it was logged */
};
#define MESH_SEEN_MAX 1024

/* The endpoint we last set for a peer: one the device learned by roaming is kept. */
struct mesh_applied {
	uint8_t key[WG_KEY_LEN];
	union wg_endpoint endpoint;
};

/*
 * The verdict of a record as last verified (decide.c), by token: a record is verified again
 * only when something the verdict depends on differs. Two ways per token, as two providers
 * may serve two records for one token. Bounded (REGISTRY_MAX_PEERS + 1 tokens); the tokens
 * that left the registry are dropped when a view is applied.
 */
struct mesh_verified {
	uint8_t key[32];                    /* keccak of every field of the record, with the
					       chain id, contract and KMS root it was checked under */
	uint8_t verdict;                    /* enum attest_verdict */
	bool used;
};
#define MESH_VERIFIED_WAYS 2
struct mesh_verify_cache {
	struct mesh_verified by_token[REGISTRY_MAX_PEERS + 1][MESH_VERIFIED_WAYS];
	uint64_t hits, misses;              /* verifications saved and done (tests, bench) */
};

/* What the decision remembers between turns. Only mesh_decide and mesh_note_* change it. */
struct mesh_state {
	/* the verified peer list apps see (never includes this node), sorted by token */
	struct mesh_peer *peers;
	size_t n_peers;
	uint64_t generation;
	struct mesh_rejected rejected[REGISTRY_MAX_PEERS];
	size_t n_rejected;
	struct mesh_seen seen[MESH_SEEN_MAX];
	size_t n_seen;
	struct mesh_applied applied[REGISTRY_MAX_PEERS];
	size_t n_applied;
	bool applied_view;                  /* a registry view was applied since start */
	bool recheck;                       /* a suspicious view waits for a fresh full re-read */
	struct mesh_verify_cache verified;  /* verdicts of records seen before */

	/* our registration */
	uint64_t token;                     /* from our own record; 0 = unknown */
	bool registered;                    /* our record is on chain, matches and verifies */
	uint64_t registered_nonce;
	uint64_t reg_sent_ms[MESH_MAX_REGISTER_PER_HOUR]; /* ring of the last sends (the hourly cap) */
	size_t n_reg_sent;                  /* sends so far (ring index = n % cap) */
	uint64_t reg_last_ms;               /* last send; 0 = none */
	bool reg_pending;                   /* a sent tx not yet mined, by the funded key's nonce */
	uint64_t reg_funded_nonce;          /* the funded key's nonce before that send */
	bool reg_capped_said;
	bool revoked;                       /* our token was burned (or unbound): no peers, no sends */

	/* several providers: what they disagreed on last, for the log (once) and status */
	char disagreement[512];
	uint64_t disagreements;             /* cross-checked views that disagreed */
};

enum mesh_plan_log_level { MESH_PLAN_ERROR, MESH_PLAN_WARN, MESH_PLAN_INFO };

/* What the loop should do now. */
struct mesh_plan {
	struct wg_peer *changes;            /* for wg_apply_peers; mesh_plan_clear frees */
	size_t n_changes;
	struct ip_prefix *ips;              /* the changes' allowed IPs point here */
	struct mesh_applied *applied;       /* the endpoints set once applied (mesh_note_applied) */
	size_t n_applied;
	bool set_listen_port;
	uint64_t address_token;             /* 10.0.1.t the interface should carry; 0 = none */
	bool publish;                       /* the peer list changed: file, on-change, watchers */
	bool send_registration;             /* our record is missing or stale: register now */
	bool recheck;                       /* re-read the registry in full next turn */
	bool refuse_view;                   /* records, none verifying under an unconfirmed chain id:
					       the RPC is failed, the view unused */
	struct buf *log;                    /* lines "<level char><text>\n"; may be NULL */
};

void mesh_state_init(struct mesh_state *st);
void mesh_state_clear(struct mesh_state *st);
void mesh_plan_clear(struct mesh_plan *plan);

/*
 * One decision: verify the view (if any), keep the highest nonce per instance, hold a
 * suspicious view (empty, or nothing verifies) until a fresh full read confirms it,
 * say whether to register (spacing, hourly cap, pending by the funded key's nonce),
 * and diff the device against the desired state (peers, allowed IPs, listen port).
 * 0 or -ENOMEM.
 */
int mesh_decide(struct mesh_state *st, const struct mesh_self *self, const struct mesh_input *in,
		struct mesh_plan *plan);
/* The loop sent (sent) or could not send our registration at now; funded_nonce before it. */
void mesh_note_registration(struct mesh_state *st, uint64_t now, bool sent, bool funded_nonce_known,
			    uint64_t funded_nonce);

/* The device took the plan's changes: remember the endpoints we set (roaming policy). */
void mesh_note_applied(struct mesh_state *st, const struct mesh_plan *plan);

/*
 * Split the registry into our own record (returned, or NULL), the records that can be
 * our peers (sorted by token) and the rejected ones with the reason. No side effects.
 */
const struct registry_record *mesh_classify_records(const struct mesh_self *self,
						  const struct registry_record *recs, size_t n,
						  struct mesh_peer *peers, size_t *n_peers,
						  struct mesh_rejected *rejected, size_t *n_rejected);
/* Our record as it should be on chain, and verifying. */
bool mesh_own_record_valid(const struct mesh_self *self, const struct registry_record *own);

/* ---- the agent: the I/O around the decision (agent.c, wireguard.c, report.c) ---------- */

struct wg_backend;

/* ---- the snapshot: what the agent publishes, as of now (report.c renders it) ---------- */

/*
 * A token's label (labelOf), remembered for the instance and the follower's version of the
 * token it was read at: a burn and a mint with a new label (same instance) change the version.
 */
struct agent_label {
	uint8_t instance_id[20];            /* all zero: not read (the contract has no zero id) */
	uint64_t version;                   /* registry_handle_token_version when read; UINT64_MAX: not */
	bool failed;                        /* that read failed: text is the last known one, or "" */
	uint64_t retry_ms;                  /* then: not read again before this (now_ms) */
	char text[65];
};

/*
 * Everything the documents, files and the on-change command say, in one place: built by
 * the agent from its state (agent_snapshot, apps.c) or by `status` without an agent from
 * the kernel and the chain (standalone.c), and rendered by the same code. It borrows: the
 * pointers are valid until the state changes (the next turn or control request).
 */
struct mesh_snapshot {
	/* who we are */
	enum registry_mode mode;
	const char *contract; /* as configured, 0x and 40 hex */
	char instance_hex[41];
	uint8_t instance_id[20];
	uint8_t app_id[20];
	uint8_t wg_public_key[32]; /* zero in tls mode */
	uint64_t chain_id;
	const char *endpoint; /* what we register */
	const char *ifname;   /* "" in tls mode */
	uint16_t listen_port; /* 0 in tls mode */
	const char *backend;  /* "kernel", "userspace" or "none" */
	uint64_t token;       /* 0: unknown */
	bool registered;      /* our record is on chain, matches and verifies */
	bool revoked;
	/* the verified peers (never this node), sorted by token, and their labels */
	const struct mesh_peer *peers;
	size_t n_peers;
	uint64_t generation;
	const struct agent_label *labels; /* by token, REGISTRY_MAX_PEERS + 1; NULL: none read */
	const struct mesh_rejected *rejected;
	size_t n_rejected;
	/* the last change: the list as last published, and the one before */
	const struct mesh_peer *published, *before;
	size_t n_published, n_before;
	const struct registry_leader *leader; /* NULL: leaderState() not read yet */
	/* health */
	uint64_t block;           /* the registry was last seen at */
	int64_t last_sync_ms_ago; /* -1: never */
	bool rpc_ok;
	const char *rpc_error; /* while !rpc_ok: what the last failure said */
	struct registry_handle_stats rpc;
	uint64_t conflicts;   /* cross-checked views that disagreed */
	const char *conflict; /* the last disagreement */
	/* the transport's part of a peer's status entry (",\"path\":..."), or NULL */
	int (*path_status)(void *ctx, const struct mesh_peer *p, const struct wg_peer *h, struct buf *out);
	void *path_ctx;
};

/* What the configuration, our identity (NULL: unknown) and the WireGuard backend (NULL:
 * none) say; every other field zero, no peers, no leader, the RPC answering. */
struct wg_backend;
void mesh_snapshot_init(struct mesh_snapshot *s, const struct mesh_config *cfg,
			const struct attest_identity *id, struct wg_backend *wg);
/* The label of a token held by instance, "" when unknown. */
const char *mesh_snapshot_label(const struct mesh_snapshot *s, uint64_t token,
				const uint8_t instance_id[static 20]);
/* The peers document and the status document (dev: the device now, for live counters; may
 * be NULL) of docs/control-protocol.md, terminated. 0 or -ENOMEM. */
int mesh_snapshot_peers_json(const struct mesh_snapshot *s, struct buf *out);
int mesh_snapshot_status_json(const struct mesh_snapshot *s, const struct wg_device *dev, struct buf *out);
/* {"token":..,"label":..,...} or null. */
int mesh_snapshot_leader_json(const struct mesh_snapshot *s, struct buf *out);
/* The variables the on-change command gets besides DSTACK_P2P_PEERS. */
#define MESH_ENV_MAX 12
/*
 * DSTACK_P2P_EVENT=event, _ADDRESS, _TOKEN, _LABEL, _GENERATION, _ADDED, _REMOVED,
 * _LEADER, _LEADER_TOKEN, _IS_LEADER as NAME=VALUE strings in storage, pointed to by
 * envv (NULL-terminated, at most MESH_ENV_MAX). 0 or -ENOMEM/-EMSGSIZE.
 */
int mesh_snapshot_env(const struct mesh_snapshot *s, const char *event, struct buf *storage,
		      const char *envv[static MESH_ENV_MAX + 1]);
/* P2P_HOSTS_FILE: "10.0.1.<t> <label>" for this node and each peer (wireguard mode), atomically. */
int mesh_snapshot_write_hosts(const struct mesh_snapshot *s, const char *path);

/* ---- the agent ---- */

/* ---- pairwise pre-shared keys (mesh/psk.c, docs/keys.md) ------------------------------------ */

struct mesh_psk;
/* on (P2P_PSK): the cluster secret from the guest agent, in locked memory; off: no PSKs. */
int mesh_psk_open(struct mesh_psk **out, bool on, struct attest_client *c, const uint8_t self_pub[static 32]);
void mesh_psk_close(struct mesh_psk *k);
/* The nonce features we register: REGISTRY_FEATURE_PSK_V1 when on. */
uint8_t mesh_psk_features(const struct mesh_psk *k);
/* Read pskEpoch() when due (at once, then every interval_ms); a failed read keeps the last length. */
void mesh_psk_tick(struct mesh_psk *k, struct registry_handle *reg, uint64_t now_ms, unsigned interval_ms);
/* Both ends advertise PSKs (we are on, m's record carries the feature). */
bool mesh_psk_pair_uses(const struct mesh_psk *k, const struct mesh_peer *m);
/* mesh_input.psk: the pair's PSK of the epoch now, or 0 when the pair uses none. */
int mesh_psk_for_peer(const void *ctx, const struct mesh_peer *m, uint8_t out[static 32]);

struct mesh_agent {
	const struct mesh_config *cfg;
	struct mesh_self self;
	struct mesh_state st;

	/* identity: public half here, private keys only in locked memory */
	struct attest_client *attest;
	struct attest_identity id;
	struct attest_node_secrets *secrets;
	char instance_hex[41];
	int iface_lock;                     /* held for the agent's life: one agent per interface */

	/* chain */
	struct registry_handle *reg;        /* the registry: providers, contract, follower */
	struct mesh_sender *sender;         /* registrations and leader calls */
	bool chain_ready;                   /* contract, chain id and KMS root checked */
	bool chain_confirmed;               /* the chain id is pinned or our record verified under it */
	uint64_t block;                     /* latest block the registry was seen at */
	bool said_unbound;                  /* "not bound yet" logged once until it changes */
	uint64_t said_token;                /* the token "holds token" last named */

	struct mesh_device *device; /* wireguard mode: the interface (wireguard.c) */
	struct mesh_psk *psk;       /* pairwise pre-shared keys (psk.c) */

	/* health */
	uint64_t last_sync_ms;              /* last successful registry read */
	uint64_t next_full_read_ms;
	unsigned backoff_ms;                /* 0 while the RPC answers */
	bool rpc_down;
	char rpc_error[256];                /* while rpc_down: what the last failure said */
	uint64_t next_turn_ms;              /* every poll: the device is checked */
	uint64_t next_rpc_ms;               /* the RPC, later while backing off */
	const volatile sig_atomic_t *abort_flag;
	struct buf log;                     /* the plan's log lines, printed each turn */

	struct control_server control;
	struct agent_source {         /* what the command's poll watches (agent_add_source) */
		int (*fd)(void *ctx); /* -1: none now */
		void (*serve)(void *ctx);
		void *ctx;
	} sources[MESH_AGENT_SOURCES_MAX];
	size_t n_sources;
	struct mesh_transport_handle *transport; /* transport.c: paths and the gateway relay */
	struct agent_names *names;          /* names.c: the DNS server (P2P_DNS), NULL when off */
	struct agent_metrics *metrics;      /* metrics.c: the exposition and its listener */
	struct agent_push *push;            /* push.c: new heads by eth_subscribe; NULL: off */

	/* what apps are told besides the list (mesh/apps.c) */
	struct agent_label labels[REGISTRY_MAX_PEERS + 1];  /* by token */
	struct mesh_peer *published;        /* the list as last published ... */
	size_t n_published;
	struct mesh_peer *before;           /* ... and the one before: added/removed */
	size_t n_before;
	struct registry_leader leader;
	bool leader_known;                  /* leaderState() read at least once */
	uint64_t leader_block;              /* the block it was read at */
};

/*
 * push.c: new heads over a WebSocket wake the agent for a turn (a trigger only; the turn
 * reads through the HTTP RPC). agent_push_open: 0 (also when P2P_RPC_WS_URL is off),
 * -EINVAL (auto without an http(s) RPC URL), -ENAMETOOLONG, -ENOMEM.
 */
struct agent_push;
int agent_push_open(struct mesh_agent *a);
void agent_push_close(struct mesh_agent *a);
bool agent_push_active(const struct mesh_agent *a);
int agent_push_fd(const struct mesh_agent *a);
/* The socket is readable: notifications set next_turn_ms/next_rpc_ms (bounded rate). */
void agent_push_serve(struct mesh_agent *a);
/* Dial, ping, time out, release a deferred turn: whatever is due now. */
void agent_push_tick(struct mesh_agent *a);
/* After a successful registry read at now: the next read is the safety poll. */
void agent_push_after_read(struct mesh_agent *a, uint64_t now);
uint64_t agent_push_deadline_ms(const struct mesh_agent *a);

/*
 * One more source for the command's poll (mesh_agent_sources): fd(ctx) gives its fd now,
 * serve(ctx) runs when it is ready. 0 or -ENOSPC past MESH_AGENT_SOURCES_MAX.
 */
int agent_add_source(struct mesh_agent *a, int (*fd)(void *ctx), void (*serve)(void *ctx), void *ctx);

/*
 * The agent's parts around its turn (agent.c): agent-start.c starts and stops it,
 * agent-chain.c checks the chain, agent-register.c registers, agent-control.c answers the
 * control socket.
 */
/* Large replies are mapped, not kept in the heap; the turn trims what a read left. */
#define AGENT_MMAP_THRESHOLD (256 << 10)
/* The contract, the chain id and the KMS root, before any answer is believed (all of it at
 * the first read, the chain id and the KMS root again at each full read): 0, -EBADR (not a
 * cluster: a configuration mistake), -EPROTO (the RPC contradicts us), an RPC error. */
int agent_chain_check(struct mesh_agent *a, bool full);
/* The plan says register: find our token, sign, send, relay or print; noted either way. */
void agent_register_now(struct mesh_agent *a, uint64_t now);
/* The leader document and the on-change command, after the leadership changed. */
void agent_publish_leader(struct mesh_agent *a);
/* The control socket and push as the loop's first sources: 0 or -ENOSPC. */
int agent_add_control_sources(struct mesh_agent *a);

/* ---- the interface MTU (mtu.c; docs/transport.md, MTU) ---------------------------------- */

#define MESH_MTU_DEFAULT 1420 /* 1500 - 80: no route MTU known, and the gateway path */
#define MESH_MTU_OVERHEAD 80  /* WireGuard 32 + UDP 8 + IPv6 40 (wg-quick's rule) */
#define MESH_MTU_MIN 576
#define MESH_MTU_MAX 16352     /* the relay's largest frame (16384) minus WireGuard's 32 */
#define MESH_MTU_CHECK_MS 2000 /* route MTUs are asked again this often */

struct mesh_mtu {
	uint32_t applied;        /* set on the interface; 0 = not yet */
	uint32_t failed;         /* the value the last failed set wanted (logged once) */
	uint32_t route;          /* the smallest route MTU towards a UDP peer, last known */
	union wg_endpoint where; /* towards which address */
	uint64_t next_check_ms;
};

/* The MTU: P2P_MTU, else 1420 on the gateway only or with no route MTU, else route - 80. */
uint32_t mesh_mtu_choose(uint32_t override, enum mesh_transport transport, uint32_t route_mtu);
/* Every turn with the device's dump: asks the route MTUs (every 2 s) and sets what differs. */
void mesh_mtu_follow(struct mesh_mtu *m, const struct mesh_config *cfg, const struct wg_device *dev);

/*
 * wireguard.c: the device. The WireGuard interface cfg->ifname, created or adopted (key
 * and port set only where they differ), its overlay address, and a plan's peer changes
 * applied (only the differences: netlink's wg_device_diff made them). The desired peer's
 * pre-shared key (when set) and the interface MTU go through here too.
 */
struct mesh_device;
struct mesh_device_stats {
	uint64_t applies;  /* plans with peer changes applied */
	uint64_t changes;  /* peer changes in them */
	uint64_t failures; /* applies the kernel or wireguard-go refused */
};
/* public_key/private_key: ours (the private one locked, used during the call only). 0 or
 * -errno, logged; on failure nothing is held (remove_on_exit removes what was created). */
int mesh_device_open(struct mesh_device **out, const struct mesh_config *cfg,
		     const uint8_t public_key[static WG_KEY_LEN],
		     const uint8_t private_key[static WG_KEY_LEN]);
void mesh_device_close(struct mesh_device *d);
/* 10.0.1.token/24 on the interface (the old one of another token removed). */
int mesh_device_set_address(struct mesh_device *d, uint64_t token);
uint64_t mesh_device_address_token(const struct mesh_device *d);
/* Apply a plan's device part (peer changes, listen port); 0 or negative errno, logged. */
int mesh_device_apply(struct mesh_device *d, const struct mesh_plan *plan);
/* The device as it is now (wg_device_free it); -ENODEV without a device (d NULL). */
int mesh_device_dump(struct mesh_device *d, struct wg_device **dev);
/* The backend (kernel or userspace) for status; NULL without a device. */
struct wg_backend *mesh_device_backend(const struct mesh_device *d);
struct mesh_device_stats mesh_device_stats(const struct mesh_device *d);
/* The interface MTU followed (mtu.c) with this turn's dump (may be NULL); d may be NULL. */
void mesh_device_follow_mtu(struct mesh_device *d, const struct wg_device *dump);

/* transport.c: UDP or the gateway relay per peer (docs/transport.md). */
/* Why a peer's endpoint field does not fit our transport, or NULL (pure). */
const char *mesh_transport_problem(enum mesh_transport t, bool gateway, const char *endpoint,
				   const uint8_t instance[static 20], struct err_detail *why);
/*
 * The transport (wireguard mode): our endpoint field, each verified peer's path (UDP or
 * the gateway relay) with its UDP endpoint resolved on change (a name cached, looked up
 * again every 30 s while it does not resolve), and the relay (relay/, a thread of its
 * own: no fd for the agent's loop). It borrows cfg and secrets (the relay signs with the
 * node key): they outlive it. (A handle, as enum mesh_transport names P2P_TRANSPORT's mode.)
 */
struct mesh_transport_handle;
struct attest_node_secrets;
struct mesh_transport_stats {
	uint64_t resolves;          /* names of UDP endpoints looked up (a change, or a retry) */
	uint64_t resolve_failures;  /* of them, names that did not resolve */
	uint64_t path_changes;      /* a peer's path switched (udp <-> gateway) */
	uint64_t probes;            /* UDP probes after a fallback */
	uint64_t relay_peers;       /* peers handed to the relay now */
	uint64_t relay_dials;       /* the relay's streams dialled, summed over its peers now */
	uint64_t relay_redials;     /* of them, after the first */
	uint64_t relay_queue_drops; /* datagrams dropped for a full stream queue */
	uint64_t relay_refused;     /* streams closed for a bad or missing proof */
};
/*
 * Our endpoint field: P2P_ENDPOINT or the guess (not in gateway mode) and/or our gateway
 * name (not in udp mode). 0; -ENOMEM; the guess's or the gateway name's -errno when the
 * transport needs it; -EBADR (the relay's port is WireGuard's); -EADDRNOTAVAIL (neither
 * part); -ENAMETOOLONG. why (may be NULL) says what to set.
 */
int mesh_transport_open(struct mesh_transport_handle **out, const struct mesh_config *cfg,
			const uint8_t instance_id[static 20], const uint8_t contract[static 20],
			const struct attest_node_secrets *secrets, struct err_detail *why);
void mesh_transport_close(struct mesh_transport_handle *t);
/* What we register ("host:port", "https://...", or both comma-separated). */
const char *mesh_transport_endpoint(const struct mesh_transport_handle *t);
/* We have a gateway name and its relay did not fail to start: gateway-only peers are reachable. */
bool mesh_transport_gateway(const struct mesh_transport_handle *t);
/*
 * After each decision, once the chain is checked (chain_id: the relay's proofs): the
 * table follows the verified peers (sorted by token), the relay starts (first call with a
 * gateway name) and its peers follow; a peer whose UDP part changed is resolved now.
 */
void mesh_transport_sync(struct mesh_transport_handle *t, uint64_t chain_id, const struct mesh_peer *peers,
			 size_t n_peers);
/* Each turn, from the device (may be NULL): every peer's path; the table by token for
 * mesh_input.path_endpoints, valid until the next call; NULL without a transport. */
const union wg_endpoint *mesh_transport_endpoints(struct mesh_transport_handle *t,
						  const struct wg_device *dev);
/* The transport's part of p's status entry (",\"path\":..."); 0 or -ENOMEM. */
int mesh_transport_status(struct mesh_transport_handle *t, const struct mesh_peer *p, const struct wg_peer *h,
			  struct buf *out);
/* The counters; the relay's summed over its peers now. Zero without a transport. */
struct mesh_transport_stats mesh_transport_stats(struct mesh_transport_handle *t);

/* names.c: peer names over DNS (P2P_DNS). open adds the loop source (0 when off, or
 * -ENOMEM/-ENOSPC, logged); sync binds to our overlay address once the token is known and
 * rebuilds the names from the snapshot, every turn; close accepts an agent without. */
int agent_names_open(struct mesh_agent *a);
void agent_names_sync(struct mesh_agent *a);
void agent_names_close(struct mesh_agent *a);

/* apps.c: labels, the last change and the leader, for the documents apps read. */
/* The snapshot of the agent's state now (see struct mesh_snapshot). */
void agent_snapshot(struct mesh_agent *a, struct mesh_snapshot *s);
/* Read the labels of our token and our peers' that are not known yet or changed (RPC). */
void agent_refresh_labels(struct mesh_agent *a);
/*
 * After the first publication: read again the labels of the tokens (ours and our peers')
 * the follower saw change since they were read; true when one of them reads differently.
 * Costs nothing while no token changes.
 */
bool agent_labels_changed(struct mesh_agent *a);
/* The list was just published: remember it, so added/removed name this change. */
int agent_note_published(struct mesh_agent *a);
/* Read leaderState() when the chain moved; 1 when the leadership changed, 0, negative errno. */
int agent_follow_leader(struct mesh_agent *a);
/*
 * leader.elect / leader.heartbeat / leader.vote: only for allowed callers (req's
 * credentials), spaced and capped per hour; sign with the node key, send through the
 * funded key (no receipt wait) or the relayer, reply "pending" with the hash
 * (docs/control-protocol.md). 1 when sent and the leadership read right after differs,
 * 0 when sent without a visible change or out holds an error object, -ENOENT for another
 * request, other negative errno.
 */
int agent_leader_act(struct mesh_agent *a, const struct control_request *req, struct buf *out);

/* endpoint.c: what this node registers. */
int agent_guess_endpoint(const struct mesh_config *cfg, char *out, size_t len);
int agent_gateway_url(const struct mesh_config *cfg, const char *instance_hex, char *out, size_t len);
/* The same for another port of ours (the relay's). */
int agent_gateway_name(const struct mesh_config *cfg, const char *instance_hex, uint16_t port, char *out,
		       size_t len);
/*
 * The gateway's domain ("base_domain", or "base_domain:external_port" when that is not
 * 443) from the first of gateway_urls[] in the host-shared config at sys_config (dstack:
 * /dstack/.host-shared/.sys-config.json) and that gateway's GET /prpc/Info. -errno of
 * fopen, -ENOENT (no gateway_urls[0]), -EBADMSG (Info not 200 or no base_domain), a
 * JSON or HTTP error, -ENAMETOOLONG.
 */
int agent_gateway_domain_discover(const char *sys_config, char *domain, size_t len);

/*
 * One decision for one peer. observed: the path the device uses now (it roams to where
 * the peer's packets come from); last_handshake in unix seconds (0 = never), rx_bytes
 * from the peer. In auto mode UDP comes first; UDP counts as working once, within
 * fallback_ms, the peer's packets arrived over it (rx grew since a dump that showed our
 * UDP endpoint, and the device still has it: relayed packets roam it to the relay) with
 * a fresh session; otherwise the peer moves to the gateway and a UDP
 * probe follows later (3 bounds, doubling to 10 min, spread by seed). A UDP path whose
 * session goes stale (180 s), that hears nothing from the peer for silence_ms (its
 * keepalives stopped arriving; 0 = not checked), or that the peer left for the gateway,
 * falls back too. Returns the path to program; s is updated.
 */
enum mesh_path mesh_path_decide(struct mesh_path_state *s, enum mesh_transport t, bool has_udp, bool has_gw,
				enum mesh_path observed, int64_t last_handshake, uint64_t rx_bytes, int64_t now_s,
				uint64_t now_ms, unsigned fallback_ms, unsigned silence_ms);

/* ---- metrics (metrics.c, docs/metrics.md) ------------------------------------------------ */

/* One peer's numbers; a has_ flag false leaves its series out for the peer. */
struct mesh_metrics_peer {
	uint32_t token;
	const char *label; /* "" when unknown */
	bool has_device;   /* the device has the peer: bytes */
	bool has_handshake;
	double handshake_age_s;
	uint64_t rx_bytes, tx_bytes;
	const char *path; /* "udp", "gateway"; NULL: none (no session, tls mode) */
	bool has_relay;   /* the relay carries the peer */
	uint64_t relay_redials, relay_drops, relay_queue_drops;
};

/* What the exposition shows, filled from the components' accessors. */
struct mesh_metrics {
	const struct mesh_metrics_peer *peers;
	size_t n_peers;
	uint64_t block; /* the block followed; 0: none read yet */
	struct registry_reader_stats registry;
	uint64_t rejected[MESH_REJECT_KINDS]; /* records of the current view, by rule */
	uint64_t disagreements;
	struct eth_rpc_stats rpc;
	struct mesh_sender_stats sender; /* transactions by kind */
	bool leader_known;
	uint64_t leader_term, leader_token;
};

/* The Prometheus text exposition of m, appended to out (whole, or nothing on failure):
 * 0, -EMSGSIZE past out's bound, -ENOMEM. Pure: no I/O, no clock. */
int mesh_metrics_render(const struct mesh_metrics *m, struct buf *out);

/*
 * The agent's metrics: the exposition rendered from its components at most every
 * AGENT_METRICS_TTL_MS (requests in between get the same page), for the control request
 * "metrics" and the P2P_METRICS_LISTEN listener, a source of the loop (opened at start on
 * loopback, or on the overlay address once the interface has it). agent_metrics_open: 0
 * (also when no listener is configured), or -errno of the loopback listener.
 */
#define AGENT_METRICS_TTL_MS 500
struct agent_metrics;
int agent_metrics_open(struct mesh_agent *a);
void agent_metrics_close(struct mesh_agent *a);
/* {"version":1,"metrics":"<exposition>"} for the control socket. */
int agent_metrics_json(struct mesh_agent *a, struct buf *out);
/* transport.c: out's path (what the device uses to p now; h: its device entry, NULL:
 * unknown) and, when the relay carries p, its relay counters. Nothing without t. */
void mesh_transport_peer_metrics(struct mesh_transport_handle *t, const struct mesh_peer *p,
				 const struct wg_peer *h, struct mesh_metrics_peer *out);

/* The same from an open stream, called name in the detail (the file parser itself; fuzzed). */
int mesh_config_load_stream(struct mesh_config *cfg, FILE *f, const char *name, struct err_detail *why);

#endif
