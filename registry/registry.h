/* SPDX-License-Identifier: MIT */
/*
 * registry: the cluster contract's peer record (docs/registry.md), the project's central
 * concept, in one place: the struct, the digest the node key signs, signing and
 * verifying a record, its ABI codec, the contract's interface in one table (functions,
 * events, custom errors), its signed leader calls, the relayer's request format, and a
 * reorg-aware follower of the peer set.
 * Built on chain/ (a plain Ethereum client) and attest/ (dstack's signature chain).
 * Every fallible function returns 0 or a negative errno; for RPC failures
 * eth_rpc_error() says what and where, and a check that has more to say fills the
 * caller's struct err_detail.
 */
#ifndef DSTACK_P2P_REGISTRY_H
#define DSTACK_P2P_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/attest.h"
#include "chain/chain.h"

struct buf;
struct err_detail;

/* ---- the contract's interface (registry/contract.c) ---------------------------------------- */

/*
 * The cluster contract (contracts/src/DstackClusterNFT.sol) in one table, checked by the
 * unit tests against forge's ABI artifact: the functions the project calls, every event
 * the contract emits, its custom errors.
 */
enum registry_fn {
	REGISTRY_FN_GET_PEERS,
	REGISTRY_FN_GET_PEER_BY_TOKEN,
	REGISTRY_FN_REGISTER_PEER,
	REGISTRY_FN_NONCE_OF,
	REGISTRY_FN_TOKEN_OF_INSTANCE,
	REGISTRY_FN_INSTANCE_IS_REGISTERED,
	REGISTRY_FN_KMS_ROOT,
	REGISTRY_FN_LABEL_OF,
	REGISTRY_FN_LEADER_ACTION_NONCE,
	REGISTRY_FN_LEADER_STATE,
	REGISTRY_FN_PEER_RECORD_TYPEHASH,
	REGISTRY_FN_ELECT_LEADER_SIGNED,
	REGISTRY_FN_LEADER_HEARTBEAT_SIGNED,
	REGISTRY_FN_CAST_VOTE_SIGNED,
	REGISTRY_FN_MINT_NODE_ACCESS,
	REGISTRY_FN_BIND_INSTANCE,
	REGISTRY_FN_UNBIND_INSTANCE,
	REGISTRY_FN_BURN,
	REGISTRY_FN_TRANSFER_FROM,
	REGISTRY_FN_ADD_COMPOSE_HASH,
	REGISTRY_FN_REMOVE_COMPOSE_HASH,
	REGISTRY_FN_ADD_DEVICE,
	REGISTRY_FN_REMOVE_DEVICE,
	REGISTRY_FN_SET_ALLOW_ANY_DEVICE,
	REGISTRY_FN_SET_BOOT_POLICY,
	REGISTRY_FN_SET_CLUSTER_CONFIG,
	REGISTRY_FN_SET_LEADER_LEASE,
	REGISTRY_FN_SET_PSK_EPOCH,
	REGISTRY_FN_SET_MINTING_POLICY,
	REGISTRY_FN_SET_REQUIRE_TCB_UP_TO_DATE,
	REGISTRY_FN_TRANSFER_OWNERSHIP,
	REGISTRY_FN_ACCEPT_OWNERSHIP,
	REGISTRY_FN_WITHDRAW,
	REGISTRY_FN_OWNER,
	REGISTRY_FN_PENDING_OWNER,
	REGISTRY_FN_OWNER_OF,
	REGISTRY_FN_INSTANCE_OF_TOKEN,
	REGISTRY_FN_ALLOWED_COMPOSE_HASHES,
	REGISTRY_FN_ALLOWED_DEVICE_IDS,
	REGISTRY_FN_ALLOW_ANY_DEVICE,
	REGISTRY_FN_BOOT_POLICY,
	REGISTRY_FN_CURRENT_LEADER,
	REGISTRY_FN_CURRENT_LEADER_TOKEN_ID,
	REGISTRY_FN_LEADER_LEASE,
	REGISTRY_FN_LEADER_TERM,
	REGISTRY_FN_LEADERSHIP_EXPIRY,
	REGISTRY_FN_LIVE_TOKEN_BITMAP,
	REGISTRY_FN_MAX_NODES,
	REGISTRY_FN_MINT_PRICE,
	REGISTRY_FN_NETWORK_MODES,
	REGISTRY_FN_NO_CONFIDENCE_VOTES,
	REGISTRY_FN_PEER_COUNT,
	REGISTRY_FN_PSK_EPOCH,
	REGISTRY_FN_PUBLIC_MINTING,
	REGISTRY_FN_REQUIRE_TCB_UP_TO_DATE,
	REGISTRY_FN_REQUIRED_VOTES,
	REGISTRY_FN_TOTAL_SUPPLY,
	REGISTRY_FN_VOTE_OF,
	REGISTRY_FN_COUNT
};
/* Each function's canonical signature, "bindInstance(uint256,address)". */
extern const char *const registry_functions[REGISTRY_FN_COUNT];
/* Its selector (the first 4 bytes of the signature's Keccak-256). */
void registry_fn_selector(enum registry_fn fn, uint8_t out[static 4]);

enum registry_event_id {
	REGISTRY_EV_PEER_REGISTERED,
	REGISTRY_EV_PEER_UPDATED,
	REGISTRY_EV_PEER_REMOVED,
	REGISTRY_EV_INSTANCE_BOUND,
	REGISTRY_EV_INSTANCE_UNBOUND,
	REGISTRY_EV_TRANSFER,
	REGISTRY_EV_NODE_ACCESS_MINTED,
	REGISTRY_EV_APPROVAL,
	REGISTRY_EV_APPROVAL_FOR_ALL,
	REGISTRY_EV_VOTE_CAST,
	REGISTRY_EV_LEADER_CHANGED,
	REGISTRY_EV_LEADER_HEARTBEAT,
	REGISTRY_EV_LEADER_LEASE_SET,
	REGISTRY_EV_PSK_EPOCH_SET,
	REGISTRY_EV_CLUSTER_CONFIG_SET,
	REGISTRY_EV_MINTING_POLICY_SET,
	REGISTRY_EV_BOOT_POLICY_SET,
	REGISTRY_EV_ALLOW_ANY_DEVICE_SET,
	REGISTRY_EV_REQUIRE_TCB_UP_TO_DATE_SET,
	REGISTRY_EV_COMPOSE_HASH_ADDED,
	REGISTRY_EV_COMPOSE_HASH_REMOVED,
	REGISTRY_EV_DEVICE_ADDED,
	REGISTRY_EV_DEVICE_REMOVED,
	REGISTRY_EV_WITHDRAWN,
	REGISTRY_EV_OWNERSHIP_TRANSFER_STARTED,
	REGISTRY_EV_OWNERSHIP_TRANSFERRED,
	REGISTRY_EV_COUNT
};

#define REGISTRY_EVENT_PARAMS_MAX 8

struct registry_event_param {
	char type[16]; /* "uint256", "address", "bytes32", "bool", "string" */
	char name[32]; /* as the contract names it */
	bool indexed;
	char unit; /* registry_put_worded's unit; 0: as the type reads */
};

/* An event, parsed from its declaration, with what a log of it must look like. */
struct registry_event {
	char name[40];
	char sig[160];      /* canonical: "PeerRemoved(uint256,address,uint8)" */
	uint8_t topic0[32]; /* keccak256(sig) */
	struct registry_event_param params[REGISTRY_EVENT_PARAMS_MAX];
	uint8_t nparams;
	uint8_t ntopics;     /* topic0 and one per indexed argument */
	uint8_t token_topic; /* the topic naming a token whose record it may change; 0: none */
	uint16_t min_data;   /* a head word per argument in the data, a length word per string */
	uint16_t max_data;   /* UINT16_MAX: a string, no bound but the reply's */
};

/* The event id of the table (parsed once), and the event a log's topic0 is, or NULL. */
const struct registry_event *registry_event_get(enum registry_event_id id);
const struct registry_event *registry_event_by_topic(const uint8_t topic0[static 32]);
/*
 * Parse a declaration as the table writes it, "Name(type !indexedName,type name:u,...)"
 * ('!' an indexed argument, ":u" a unit of registry_put_worded), into e with its
 * signature, topic0 and bounds: for events of other contracts (the KMS's). -EINVAL for
 * a declaration that is not of that form, or more than REGISTRY_EVENT_PARAMS_MAX
 * arguments or 3 indexed ones.
 */
int registry_event_parse(const char *decl, uint8_t token_topic, struct registry_event *e);

/* The custom errors' signatures, "StaleNonce(uint64,uint64)". */
#define REGISTRY_ERROR_COUNT 53
extern const char *const registry_error_sigs[REGISTRY_ERROR_COUNT];
/* The same errors for eth_rpc_config.errors and eth_describe_revert. */
extern const struct eth_error_table registry_contract_errors;
/* The same errors as an operator reads them: field names, units and a hint,
 * "WrongMintPayment(sent=0 ETH, price=0.01 ETH): a public mint pays exactly the price: ...".
 * For the operator's tools; the agent and the relayer log the compact form above. */
extern const struct eth_error_table registry_contract_errors_explained;
/* The wording of error `name`: its fields as "name:unit name:unit" (units as
 * registry_put_worded takes them; -: as the type reads) and its hint; -ENOENT when it is
 * not one of the contract's errors. */
int registry_error_doc(const char *name, const char **fields, const char **hint);

/* text with the first contract error in the compact form ("... LeaderStillActive(2,
 * 1764520000) ...", as the agent reports it) in the operator's wording, appended to out;
 * -ENOENT when text holds none (out unchanged), -EINVAL, -ENOMEM. */
int registry_explain_compact(const char *text, struct buf *out);

/* A word in an operator's unit, appended to b: e wei in ETH, t a Unix time in ISO 8601 UTC,
 * s seconds, m network-mode mask (tls, wireguard, both), r a record's mode, p boot policy,
 * R why a record was removed (burned, transferred, rebound), C why the leader changed
 * (elected, no-confidence, left). -ENOENT when the unit is none of these or the value is
 * not one of its names (b unchanged); -ENOMEM. */
int registry_put_worded(struct buf *b, char unit, const uint8_t w[static 32]);

/* An amount of wei in ETH, "0.01 ETH", every significant digit kept. */
#define REGISTRY_ETHER_STR_MAX 96
void registry_ether_str(const uint8_t wei[static 32], char out[static REGISTRY_ETHER_STR_MAX]);
/* A Unix time as ISO 8601 UTC, "2026-12-07T16:30:00Z" (the number when out of range). */
#define REGISTRY_TIME_STR_MAX 32
void registry_time_str(uint64_t unix_time, char out[static REGISTRY_TIME_STR_MAX]);

/* ---- relaying (dstack-p2p relayer) -------------------------------------------------------- */

#define REGISTRY_REGISTER_SIG \
	"registerPeer((address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes))"

/* A call to relay, as the agent posts it: {"to":"0x<20 bytes>","data":"0x<calldata>"}. */
struct relayer_request {
	uint8_t to[20];
	uint8_t *data;            /* malloc'd */
	size_t len;
	uint8_t selector[4];
	/* What rate limits count on: registerPeer's instance id (left-padded), else the first
	 * argument word (an election call's token id); has_subject false when there is none. */
	uint8_t subject[32];
	bool has_subject;
};

/*
 * Parse a relay request body (JSON, at most 16 tokens). -EINVAL with why filled for
 * anything else: not an object, a "value" member, a bad address, calldata that is not hex,
 * shorter than a selector or longer than max_data bytes.
 */
int relayer_parse_request(const char *body, size_t len, size_t max_data, struct relayer_request *out,
			  struct err_detail *why);
void relayer_request_clear(struct relayer_request *r);

/*
 * Sliding-window limits: a take is refused when this window's takes plus the last window's,
 * weighted by how much of it the window ending now still covers, reach `limit`. So no
 * boundary lets 2 x limit through in one window's time. A table of slots, one per key.
 */
struct relayer_slot {
	uint8_t key[32];
	uint64_t window_start;
	uint32_t count;
	uint32_t prev;            /* takes in the window before window_start */
	bool used;
};

struct relayer_limiter {
	struct relayer_slot *slots;
	size_t nslots;
	uint32_t limit;
	uint64_t window_ms;
};

/* -EINVAL for a zero size, limit or window; -ENOMEM. */
int relayer_limiter_init(struct relayer_limiter *l, size_t slots, uint32_t limit, uint64_t window_ms);
void relayer_limiter_clear(struct relayer_limiter *l);
/* Count one for key at time now (ms); false when its window is already full. */
bool relayer_limiter_take(struct relayer_limiter *l, const uint8_t key[static 32], uint64_t now);

/* ---- the registry record (docs/registry.md) ------------------------------------------- */

enum registry_mode { REGISTRY_MODE_TLS_GATEWAY = 0, REGISTRY_MODE_WIREGUARD = 1 };

/* Longest endpoint, in bytes: the contract's MAX_ENDPOINT_LENGTH. */
#define REGISTRY_ENDPOINT_MAX 255

struct registry_record {
	uint64_t token_id;             /* uint256 on chain; larger values are a format error */
	uint8_t instance_id[20];
	uint8_t wg_public_key[32];
	char *endpoint;                /* malloc'd, NUL-terminated, no inner NUL */
	uint8_t mode;                  /* enum registry_mode */
	uint64_t nonce;
	uint8_t node_pubkey[64];
	uint8_t app_pubkey[64];
	uint8_t app_signature[65];
	uint8_t kms_signature[65];
	uint8_t node_signature[65];
};

/* Frees the endpoint and zeroes the record; accepts NULL. */
void registry_record_clear(struct registry_record *p);
void registry_records_free(struct registry_record *peers, size_t n);

/* The contract's MAX_NODES_LIMIT: a getPeers() reply claiming more is malformed. */
#define REGISTRY_MAX_PEERS 254

/* An entry of getPeers() that was skipped, and why. */
struct registry_skip {
	size_t index;
	char reason[96];
};

/*
 * The digest the node key signs:
 * keccak256(abi.encode(keccak256("dstack-p2p.PeerRecord.v1"), chainid, contract,
 *                      instanceId, wgPublicKey, keccak256(bytes(endpoint)), mode, nonce))
 * A NULL endpoint hashes as the empty string.
 */
void registry_record_digest(uint64_t chain_id, const uint8_t contract[static 20],
			    const struct registry_record *p, uint8_t out[static 32]);

/* Append registerPeer(PeerRegistration) calldata; -EINVAL without a valid endpoint. */
int registry_encode_register_call(const struct registry_record *rec, struct buf *calldata);

/*
 * What a log of the registry contract means for getPeers(): 1 with *token set when it
 * names a token whose record may have changed (PeerRegistered, PeerUpdated, PeerRemoved,
 * InstanceBound, InstanceUnbound, Transfer: mint, transfer, burn), 0 for an event that
 * changes no record (leader, policy, PSK epoch, minting, ownership), -EBADMSG for a log not to be
 * taken at its word: another address, an event not in the contract's table, the wrong
 * number of topics, and for an event that names a token, data of another length than its
 * declaration gives or with a string outside it, a token outside 1..REGISTRY_MAX_PEERS.
 */
int registry_log_token(const struct eth_log *log, const uint8_t contract[static 20], uint64_t *token);

/*
 * Views of the registry at "latest" (getPeers at tag, e.g. from eth_block_tag). -ENOENT
 * when the call returns nothing, as calls to an address without code do.
 */
int registry_read_peers(struct eth_rpc *rpc, const uint8_t contract[static 20], const char *tag,
			struct registry_record **peers, size_t *n, struct registry_skip *skips,
			size_t max_skips, size_t *nskips);
int registry_nonce_of(struct eth_rpc *rpc, const uint8_t contract[static 20],
		      const uint8_t instance_id[static 20], uint64_t *nonce);
int registry_token_of_instance(struct eth_rpc *rpc, const uint8_t contract[static 20],
			       const uint8_t instance_id[static 20], uint64_t *token);
int registry_instance_is_registered(struct eth_rpc *rpc, const uint8_t contract[static 20],
				    const uint8_t instance_id[static 20], bool *registered);
int registry_kms_root(struct eth_rpc *rpc, const uint8_t contract[static 20],
		      uint8_t kms_root[static 20]);
/*
 * pskEpoch(): the cluster's pairwise-PSK epoch length in seconds (docs/keys.md). -EBADMSG
 * outside the contract's 30 s .. 30 days (a bad RPC reply never reaches a division); the
 * call's error for a contract deployed before pskEpoch existed, whose members then use
 * REGISTRY_PSK_EPOCH_DEFAULT.
 */
#define REGISTRY_PSK_EPOCH_DEFAULT 3600
#define REGISTRY_PSK_EPOCH_MIN 30
#define REGISTRY_PSK_EPOCH_MAX (30 * 86400)
int registry_psk_epoch(struct eth_rpc *rpc, const uint8_t contract[static 20], uint64_t *seconds);
/* labelOf(token) into out (cap bytes, NUL-terminated); -EBADMSG for a label that does not fit or is not printable ASCII. */
int registry_label_of(struct eth_rpc *rpc, const uint8_t contract[static 20], uint64_t token,
		      char *out, size_t cap);

/* ---- signed leader calls (registry/leader.c, docs/contracts.md) ---------------------------- */

enum registry_leader_action { REGISTRY_LEADER_ELECT = 0, REGISTRY_LEADER_HEARTBEAT = 1, REGISTRY_LEADER_VOTE = 2 };

/* One LeaderAction as the contract's EIP-712 type has it, and its node-key signature. */
struct registry_leader_call {
	uint8_t action;                /* enum registry_leader_action */
	uint64_t token;                /* the acting node's token */
	uint64_t target;               /* vote: the leader voted on; else 0 */
	bool no_confidence;            /* vote: true votes, false withdraws; else false */
	uint64_t nonce;                /* leaderActionNonce(token) */
	uint64_t deadline;             /* unix seconds (block time) */
	uint8_t signature[65];         /* r || s || v, v in {27,28} */
};

/* The contract's domainSeparator() and leaderActionDigest(...). */
void registry_leader_domain(uint64_t chain_id, const uint8_t contract[static 20], uint8_t out[static 32]);
void registry_leader_digest(uint64_t chain_id, const uint8_t contract[static 20],
			    const struct registry_leader_call *c, uint8_t out[static 32]);
/* Fill c->signature with node_key's signature over the digest; -EINVAL for an unknown action. */
int registry_sign_leader_call(uint64_t chain_id, const uint8_t contract[static 20],
			      const uint8_t node_key[static 32], struct registry_leader_call *c);
/* Their function signatures, by action (what a relayer allows besides registration). */
extern const char *const registry_leader_call_sigs[3];
/* electLeaderSigned / leaderHeartbeatSigned / castVoteSigned calldata, appended. */
int registry_encode_leader_call(const struct registry_leader_call *c, struct buf *calldata);
/*
 * The leader call in electLeaderSigned / leaderHeartbeatSigned / castVoteSigned calldata
 * (selector first), its nonce left 0 (the contract supplies it). -EINVAL: another
 * function; -EBADMSG: arguments that do not decode, a value above 2^64, a signature that is
 * not 65 bytes.
 */
int registry_decode_leader_call(const uint8_t *data, size_t len, struct registry_leader_call *c);
/* The address whose key signed c (with c->nonce); -EBADMSG for a signature that recovers none. */
int registry_leader_call_signer(uint64_t chain_id, const uint8_t contract[static 20],
				const struct registry_leader_call *c, uint8_t signer[static 20]);
/* leaderActionNonce(token). */
int registry_leader_nonce(struct eth_rpc *rpc, const uint8_t contract[static 20], uint64_t token, uint64_t *nonce);

/* leaderState(): who leads, in which term, until when, and the votes against it. */
struct registry_leader {
	uint64_t token;                /* 0: no leader */
	uint8_t instance_id[20];
	uint64_t term;
	uint64_t expiry;               /* unix seconds (block time) the lease runs to */
	uint64_t votes;                /* standing no-confidence votes in this term */
	uint64_t required;             /* votes that replace the leader */
};
int registry_leader_state(struct eth_rpc *rpc, const uint8_t contract[static 20], struct registry_leader *out);

/*
 * Is contract a dstack-p2p cluster of the record format we verify? It must have code
 * (-ENOTTY: none, an EOA or a wrong address) and PEER_RECORD_TYPEHASH() must return
 * keccak256("dstack-p2p.PeerRecord.v1") (-EPROTOTYPE: another contract or version).
 * Other errors are the RPC's.
 */
int registry_check_cluster(struct eth_rpc *rpc, const uint8_t contract[static 20]);

/*
 * registerPeer(rec) in a transaction paid by tx_key, waiting up to timeout_ms for the
 * receipt. A revert (at estimation or mined) is -EPERM, its decoded reason (e.g.
 * "StaleNonce(3, 5)") in eth_rpc_error.
 */
int registry_send_registration(struct eth_rpc *rpc, uint64_t chain_id,
			       const uint8_t contract[static 20], const struct registry_record *rec,
			       const uint8_t tx_key[static 32], long timeout_ms, struct eth_receipt *rc);

/*
 * The record in registerPeer calldata (selector first; token id 0): -EINVAL for another
 * function, -EPROTO for an offset or length outside the data, -EBADMSG for a malformed field
 * (why says which), -ENOMEM. Clear *p with registry_record_clear (done on failure).
 */
int registry_decode_register_call(const uint8_t *data, size_t len, struct registry_record *p,
				  struct err_detail *why);

/* ---- following the registry -------------------------------------------------------------- */

struct registry_reader;

struct registry_reader_stats {
	uint64_t polls;
	uint64_t full_reads;   /* getPeers() calls */
	uint64_t reorgs;       /* times the block we had read at left the chain */
	uint64_t patches;      /* changes taken from the logs, by the records they name */
	uint64_t records_read; /* getPeerByToken calls */
	uint64_t head;         /* the latest block a poll saw at the head (the set may be older:
				* registry_reader_block; the difference is the follower's lag) */
};

/*
 * A follower of the registry at contract over rpc (borrowed: it must outlive the reader).
 * expected_chain_id 0 accepts any chain; otherwise another chain is -EXDEV at first poll.
 */
int registry_reader_new(struct eth_rpc *rpc, const uint8_t contract[static 20],
			uint64_t expected_chain_id, struct registry_reader **out);
void registry_reader_free(struct registry_reader *r);
/*
 * Bring the peer set up to the head of the chain. The first poll checks the chain id and
 * reads getPeers(); after that an idle poll is one round trip, and logs from the contract
 * lead to one more: getPeerByToken of each token they name (a batch pinned to the new
 * head; a revert TokenHasNoPeer or empty data removes it), or getPeers() at the new head
 * to resync (a reorg of the block we read at, a gap wider than the log range, a log that
 * does not decode or was removed, more than 64 tokens, a reply that proves nothing, a
 * record read other than the logs said: gone without a PeerRemoved, other fields than
 * its last PeerRegistered / PeerUpdated, changed without either).
 * *changed tells whether the peer set differs from before. On error the previous set
 * stays, and eth_rpc_error says why.
 */
int registry_reader_poll(struct registry_reader *r, bool *changed);
/* The current peer set (valid until the next poll) and the block it was read at (NULL
 * before the first successful poll). */
const struct registry_record *registry_reader_peers(const struct registry_reader *r, size_t *n);
const struct eth_block *registry_reader_block(const struct registry_reader *r);
/* Entries of the last getPeers() that were malformed and left out. */
const struct registry_skip *registry_reader_skipped(const struct registry_reader *r, size_t *n);
void registry_reader_get_stats(const struct registry_reader *r, struct registry_reader_stats *s);
/*
 * A number that changes whenever a poll sees something happen to token: a log of the
 * contract named it (a record event, a bind, a mint, a transfer, a burn) or a full read
 * found its record new, gone or other than before. 0 before any; 0 outside
 * 1..REGISTRY_MAX_PEERS. What the chain holds of a token besides its record (its label)
 * is worth reading again when this changes.
 */
uint64_t registry_reader_token_version(const struct registry_reader *r, uint64_t token);
/*
 * The next poll checks the chain id (expected_chain_id, 0: any) and reads getPeers() in
 * full at the head, keeping the current set until that succeeds.
 */
void registry_reader_resync(struct registry_reader *r, uint64_t expected_chain_id);
/*
 * The tokens whose records the follower read one by one (patches) since the last call,
 * into named[], and *from the block it held at that call: true when those patches are all
 * that changed since then (no full read), so a copy of the set as of *from can be patched
 * the same way. Resets what it reports either way. For the cross-check of another provider.
 */
bool registry_reader_take_named(struct registry_reader *r, bool named[static REGISTRY_MAX_PEERS + 1],
				uint64_t *from);
/*
 * getPeerByToken of each named token (count of them) at tag, in one batch: 0 with the
 * records that exist in *got (*n_got of them, sorted by token; free with
 * registry_records_free), a named token without one (reverts TokenHasNoPeer, or returns no
 * data) left out. 1 when the replies prove nothing (another error, a record that does not
 * decode or names another token, a reply too large): read getPeers() instead. Else the
 * RPC's negative errno.
 */
int registry_read_tokens(struct eth_rpc *rpc, const uint8_t contract[static 20], const char *tag,
			 const bool named[static REGISTRY_MAX_PEERS + 1], size_t count,
			 struct registry_record **got, size_t *n_got);
/*
 * Replace the records of the named tokens (named[t]) in *peers (sorted by token) by the
 * n_got records of got (taken over: do not clear them after success); a named token
 * without one in got is removed. *changed when the set differs. 0 or -ENOMEM (nothing
 * taken). For the reader and its tests.
 */
int registry_peers_patch(struct registry_record **peers, size_t *npeers,
			 const bool named[static REGISTRY_MAX_PEERS + 1], struct registry_record *got,
			 size_t n_got, bool *changed);

/* ---- what a node supports: feature bits in its record's nonce (docs/registry.md) --------- */

/*
 * A record's nonce is era (bits 40..63) || features (bits 32..39) || counter (bits 0..31).
 * The nonce is signed and only ever has to grow, so the deployed contract and agents that
 * know no features accept such records as they are; records of those agents (nonces below
 * 2^32) advertise no feature.
 */
#define REGISTRY_FEATURE_PSK_V1 0x01u /* pairwise pre-shared keys, docs/keys.md schedule v1 */

/* The feature bits a nonce carries. */
uint8_t registry_nonce_features(uint64_t nonce);

/*
 * The smallest nonce above stored that carries exactly features: stored + 1 when that one
 * does, else the first nonce of the next feature block (the next era when the features
 * shrink). -EOVERFLOW when no larger nonce is left.
 */
int registry_nonce_next(uint64_t stored, uint8_t features, uint64_t *next);

/* ---- signing and verifying a record ------------------------------------------------------ */

/*
 * Fill a record ready for registerPeer: instance id, keys, chain, endpoint (strdup'd;
 * registry_record_clear frees it), mode, nonce (registry_nonce_next of the stored nonce and
 * the node's features), and the node's signature.
 * The WireGuard key is zero in TLS-gateway mode. -EINVAL when contract is not the
 * identity's app id (the chain would not verify), when the identity has no KMS signature
 * (a local key provider: the contract could not check it), or on out-of-range arguments.
 */
int registry_record_sign(const struct attest_identity *id, const struct attest_node_secrets *s,
			 uint64_t chain_id, const uint8_t contract[static 20], const char *endpoint,
			 enum registry_mode mode, uint64_t nonce, struct registry_record *out);

/*
 * A registry record as read from the cluster contract at address contract (which is the
 * app id): the KMS chain for ATTEST_NODE_KEY_PURPOSE, the carried public keys against the
 * recovered ones, and the node signature over registry_record_digest.
 */
enum attest_verdict registry_record_verify(const struct registry_record *p, uint64_t chain_id,
					   const uint8_t contract[static 20],
					   const uint8_t kms_root[static 20]);

/*
 * Why a record read from the contract can be nobody's peer whatever it verifies to, or
 * NULL: a token id outside 1..REGISTRY_MAX_PEERS, an empty endpoint or one holding a
 * space, control or non-ASCII byte (it goes into logs and files). The signatures are
 * registry_record_verify's; what a node's own mode and transport rule out is mesh/'s.
 */
const char *registry_record_field_problem(const struct registry_record *p);

/* ---- the handle: the registry as one node reads it (registry/handle.c) ------------------- */

/*
 * One node's view of the registry: the RPC providers (ETH_RPC_URL's failover list, and
 * with two or more URLs each on its own for cross-checks), the contract, the chain id it
 * insists on, and the follower of the peer set. What went wrong last is
 * registry_handle_error(): one line naming the call and the provider ("eth_call getPeers()
 * at http://...: timed out"). Every fallible function returns 0 or a negative errno.
 */
struct registry_handle;

/* Over the parsed URL list rpc (copied); abort_flag (may be NULL): RPC calls give up once it
 * is set (the agent is stopping). -ENOMEM, or eth_rpc_new's error. */
int registry_handle_open(struct registry_handle **out, const struct rpc_url_list *rpc,
			 const uint8_t contract[static 20], const volatile sig_atomic_t *abort_flag);
void registry_handle_close(struct registry_handle *h);
const char *registry_handle_error(const struct registry_handle *h);

/* What the handle counts, for status and metrics. */
struct registry_handle_stats {
	uint64_t rpc_calls; /* JSON-RPC requests sent so far (the bench's calls per idle poll) */
	size_t providers;   /* URLs read on their own for cross-checks: 0 with one URL, else >= 2 */
	bool cross_checked; /* the last cross-check read a second provider's view */
	struct registry_reader_stats follower; /* the follower's polls, reads, head */
	struct eth_rpc_stats eth;              /* calls, errors and sends over every provider */
};
struct registry_handle_stats registry_handle_stats(const struct registry_handle *h);

/* For the transaction sender, which sends over the same providers. */
struct eth_rpc *registry_handle_rpc(struct registry_handle *h);
const uint8_t *registry_handle_contract(const struct registry_handle *h);
/* The chain id the follower insists on (0: any), as set by registry_handle_expect_chain_id. */
uint64_t registry_handle_expected_chain_id(const struct registry_handle *h);

/* eth_chainId of the provider answering now. */
int registry_handle_chain_id(struct registry_handle *h, uint64_t *chain_id);
void registry_handle_expect_chain_id(struct registry_handle *h, uint64_t chain_id);
/* -ENOTTY: no code at the contract address; -EPROTOTYPE: not a dstack-p2p cluster. */
int registry_handle_check_contract(struct registry_handle *h);
/* The provider that answered last gave a provably wrong answer: registry_handle_error()
 * says what (fmt), naming it, and the next provider of the list is tried first. */
void registry_handle_distrust(struct registry_handle *h, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* kmsRoot(), tokenOfInstance(), nonceOf() (the stored registration nonce, kept across
 * removals), labelOf(), leaderState(), leaderActionNonce(): as registry_*() above. */
int registry_handle_kms_root(struct registry_handle *h, uint8_t kms_root[static 20]);
int registry_handle_token_of_instance(struct registry_handle *h, const uint8_t instance_id[static 20],
				      uint64_t *token);
int registry_handle_nonce_of(struct registry_handle *h, const uint8_t instance_id[static 20],
			     uint64_t *nonce);
int registry_handle_label_of(struct registry_handle *h, uint64_t token, char *out, size_t cap);
int registry_handle_leader_state(struct registry_handle *h, struct registry_leader *out);
int registry_handle_leader_nonce(struct registry_handle *h, uint64_t token, uint64_t *nonce);

/*
 * Bring the view of the registry up to the chain's head: one round trip when idle, a
 * getPeers() when the contract logged something or a reorg happened; full = start over
 * with a fresh getPeers(). *changed when the peer set may differ. On error the last good
 * set stays.
 */
int registry_handle_poll(struct registry_handle *h, bool full, bool *changed);
/* Every live record, valid until the next poll; the block it was read at (0: none yet). */
const struct registry_record *registry_handle_peers(const struct registry_handle *h, size_t *n);
uint64_t registry_handle_block(const struct registry_handle *h);
/* registry_reader_token_version of the follower (0 before its first read). */
uint64_t registry_handle_token_version(const struct registry_handle *h, uint64_t token);
/* Entries of getPeers() too malformed to decode, with the reason. */
const struct registry_skip *registry_handle_skipped(const struct registry_handle *h, size_t *n);
/* The provider the follower reads from, as messages name it. */
const char *registry_handle_primary_label(const struct registry_handle *h);
/*
 * Read the registry from another provider at the follower's block: its block hash is
 * compared (registry_handle_disagreement says what differed) and its records kept for
 * registry_handle_second_view. -errno when it cannot serve that block (a disagreement too).
 */
int registry_handle_cross_check(struct registry_handle *h);
/* The other provider's records from the last cross-check, or NULL; label names it. */
const struct registry_record *registry_handle_second_view(const struct registry_handle *h, size_t *n,
							  const char **label);
/* The last cross-check's finding at the block level; "" when the providers agreed. */
const char *registry_handle_disagreement(const struct registry_handle *h);

#endif
