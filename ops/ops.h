/* SPDX-License-Identifier: MIT */
/*
 * ops: the operator's side of a cluster, as a library under the `cluster` and `relayer`
 * commands: a handle on the RPC, its chain and a cluster contract; the paying key (one
 * loader: a 0600 key file, an encrypted keystore or an environment variable); the
 * contract's transactions (simulated first, sent under fee caps, followed to the
 * receipt) and its one-call actions by name; batched views; the allowed compose hashes
 * and devices folded from the events; the events by name (registry/contract.c's table).
 * Built on chain/ and registry/. Nothing here prints: every fallible function returns 0
 * or a negative errno, and ops_error() or the caller's struct err_detail says why.
 */
#ifndef DSTACK_P2P_OPS_H
#define DSTACK_P2P_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/attest.h"
#include "chain/chain.h"
#include "common/common.h"
#include "registry/registry.h"

/* Defaults of the caps: 100 gwei per gas, 0.05 ether per transaction. */
#define OPS_DEFAULT_MAX_FEE 100000000000ull
#define OPS_DEFAULT_MAX_COST 50000000000000000ull

/* ---- the paying key (ops/key.c) ------------------------------------------------------------ */

/* Where the paying key is: exactly one of key_file, keystore, env. */
struct ops_key_source {
	const char *key_file;      /* one hex secret, 0x optional, in a 0600/0400 file we own */
	const char *keystore;      /* Web3 Secret Storage v3 JSON */
	const char *password_file; /* the keystore's password (first line); else ask */
	const char *env;           /* the name of an environment variable holding the hex secret */
};

/* Asks for a keystore's password (the caller's terminal): up to max bytes into pw, its
 * length in *len; 0 or -errno. */
typedef int (*ops_password_fn)(char *pw, size_t max, size_t *len);

/*
 * Load the paying key into locked memory (*sk: free with secret_free(*sk, 32)) and its
 * address. -EINVAL with why filled for a configuration mistake: no source or two, a key
 * file others may read or that does not hold one 32-byte hex key (key_file_read32's
 * rule), an unset or malformed variable, a keystore that does not read or open (ask NULL
 * without a password file included), not a secp256k1 secret; -ENOMEM.
 */
int ops_key_load(const struct ops_key_source *src, ops_password_fn ask, uint8_t **sk, uint8_t addr[static 20],
		 struct err_detail *why);

/* ---- values as the operator writes them (ops/parse.c) ------------------------------------ */

/* "1.5gwei", "0.01ether", "12wei" or a plain integer of wei; -EINVAL / -ERANGE (> 2^64-1). */
int ops_parse_wei(const char *s, uint64_t *wei);
/* Decimal or 0x-hex, no sign. */
int ops_parse_u64(const char *s, uint64_t *out);
int ops_parse_address(const char *s, uint8_t out[static 20]);
int ops_parse_bytes32(const char *s, uint8_t out[static 32]);
/* Mode words: "tls" 1, "wireguard" 2, "both" 3, or the mask as a number; -EINVAL. */
int ops_parse_modes(const char *s);
/* The index of s in a NULL-terminated word list (ops_words_*), -EINVAL. */
int ops_word_index(const char *const *words, const char *s);
extern const char *const ops_words_boot[];    /* strict, permissive */
extern const char *const ops_words_tcb[];     /* any, up-to-date */
extern const char *const ops_words_yes_no[];  /* no, yes */
extern const char *const ops_words_minting[]; /* owner-only, public */
/* Up to max bytes of a file into b (NUL-terminated); on error b is wiped and cleared. */
int ops_read_file(const char *path, struct buf *b, size_t max);

/* ---- the handle (ops/ops.c) ---------------------------------------------------------------- */

struct ops_config {
	const char *rpc_urls;       /* ETH_RPC_URL's form (chain/chain.h) */
	const char *contract_hex;   /* the cluster contract, NULL: none (deploy, KMS actions) */
	uint64_t expected_chain_id; /* 0: any */
	long timeout_ms;            /* per RPC request; 0: chain/'s default */
	struct eth_tx_caps caps;    /* chain_id is the served one */
	struct ops_key_source key;
	ops_password_fn ask_password; /* NULL: a keystore needs a password file */
	/* Reverts worded for the operator (registry_contract_errors_explained) or compact. */
	const struct eth_error_table *errors;
};

struct ops;

/*
 * Connect: parse the contract address, open the RPC, ask its chain id. -EINVAL (a bad
 * address or RPC URL list), -EXDEV (another chain than expected), the RPC's -errno; the
 * handle is made whenever it can be (ops_error says why; free it either way).
 */
int ops_open(const struct ops_config *cfg, struct ops **out);
void ops_free(struct ops *o);
/* What went wrong last, for a log line ("" if nothing). */
const char *ops_error(const struct ops *o);
struct eth_rpc *ops_rpc(const struct ops *o);
uint64_t ops_chain_id(const struct ops *o);
/* The cluster contract, NULL when none was configured. */
const uint8_t *ops_contract(const struct ops *o);

/* ---- transactions (ops/tx.c) --------------------------------------------------------------- */

/*
 * A transaction to `to` (NULL: a contract creation, calldata its init code) paid by the
 * configured key, simulated first, under the caps,
 * followed to its receipt (res filled as far as it got). -EINVAL: the key (ops_error says
 * which mistake); else eth_send_capped's: -EPERM refused by the simulation (res->sent
 * false) or reverted, -EDQUOT a cap, -ETIMEDOUT no receipt yet; ops_error says why (a
 * revert by the contract's error name and fields).
 */
int ops_transact(struct ops *o, const uint8_t *to, const struct buf *calldata, uint64_t value,
		 struct eth_tx_result *res);
/* The token a mint made: the NodeAccessMinted log of its transaction; 0 when none is found. */
uint64_t ops_minted_token(struct ops *o, const struct eth_tx_result *res);

/* An action that is one call of the cluster contract, by its name on the command line. */
struct ops_action {
	const char *name;    /* "bind" */
	enum registry_fn fn; /* bindInstance(uint256,address) */
	/* Operand kinds: a address, u uint, s string, h bytes32, w wei, m modes, e a word of words. */
	const char *kinds;
	const char *const *words;
};
const struct ops_action *ops_action_find(const char *name);
/* The Solidity signature an action name sends ("bind": "bindInstance(uint256,address)"), or NULL. */
const char *ops_action_signature(const char *name);
/* Its calldata from the operands as written; -EINVAL with why naming the operand, -ENOMEM. */
int ops_action_encode(const struct ops_action *a, char *const *args, size_t nargs, struct buf *calldata,
		      struct err_detail *why);
/* transferFrom(holder, to, token) calldata, the holder read at "latest" (so an approved
 * operator can move it too): -ENOENT when the token has no holder, else the RPC's. */
int ops_transfer_calldata(struct ops *o, uint64_t token, const uint8_t to[static 20], struct buf *calldata);

/* ---- batched views (ops/views.c) ----------------------------------------------------------- */

/* One eth_call of a batch: calldata in, return data or failure out. */
struct ops_view {
	struct buf data;
	struct buf out;
	bool ok;
};
void ops_views_init(struct ops_view *v, size_t n);
void ops_views_free(struct ops_view *v, size_t n);
/* Run the calls to `to` at block tag in batches; -errno only when the RPC fails as a whole. */
int ops_views_run(struct eth_rpc *rpc, const uint8_t to[static 20], const char *tag, struct ops_view *v,
		  size_t n);
/* Calldata of sig with one static argument word (NULL: none). */
int ops_calldata_word(struct buf *b, const char *sig, const uint8_t *word);

/* ---- the allowed compose hashes and devices (ops/lists.c) ---------------------------------- */

#define OPS_LIST_MAX 64 /* per list: more are reported (overflow), not kept */

struct ops_hash_list {
	uint8_t h[OPS_LIST_MAX][32];
	size_t n;
	bool overflow;
};

struct ops_lists {
	struct ops_hash_list compose, devices;
	uint64_t from_block; /* the events were read from here (the creation) */
};

void ops_lists_init(struct ops_lists *l);
/* One log of the cluster contract: an add or remove of either list changes it. */
void ops_lists_fold(struct ops_lists *l, const struct eth_log *log);
/* Both lists as they stand at block (tag its tag): folded from the events since the
 * contract's creation, each entry confirmed with the contract's getter at tag. -errno (the
 * RPC's words in ops_error); the RPC must serve eth_getCode at past blocks. */
int ops_read_lists(struct ops *o, uint64_t block, const char *tag, struct ops_lists *l);
/* "composeHashes":[..],"composeHashesComplete":..,"devices":[..],"devicesComplete":.. */
void ops_lists_json(const struct ops_lists *l, struct buf *out);

/* ---- deploying (ops/deploy.c) -------------------------------------------------------------- */

/* What a dstack KMS contract says: kmsInfo().k256Pubkey (and its address, the root),
 * gatewayAppId(), owner(), and registeredApps(the cluster) when a contract is configured. */
struct ops_kms_facts {
	uint8_t root[20];
	uint8_t pubkey[65];
	size_t pubkey_len;
	char gateway_app_id[80];
	uint8_t owner[20];
	bool have_owner;
	bool have_registered, registered;
};
/* -ENOENT when kms answers no usable k256Pubkey (not a dstack KMS, or no root key yet);
 * else the RPC's -errno; ops_error says why. */
int ops_kms_read(struct ops *o, const uint8_t kms[static 20], struct ops_kms_facts *f);
/* The init code (bytecode.object) of forge's artifact at path into code (buf_init'd here):
 * -EINVAL for a file that is not such an artifact or holds more than 64 KiB of code, -errno
 * of reading it. */
int ops_initcode_load(const char *path, struct buf *code);

/* What `cluster deploy` sets up beyond the constructor; -1: leave the contract's default. */
struct ops_deploy {
	bool have_compose_hash;
	uint8_t compose_hash[32]; /* allowed at once */
	int boot_policy;          /* 0 strict (the default), 1 permissive */
	uint64_t max_nodes;       /* 0: unchanged (with modes < 0) */
	int modes;                /* the network-mode mask */
	int any_device;           /* 0: enforce the device list */
	int tcb_up_to_date;       /* 0: any TCB status */
	bool have_mint_policy;
	uint64_t mint_price;
	bool public_minting;
	bool offer_owner; /* offer the ownership to owner (it accepts) */
	uint8_t owner[20];
};
/* A call of a plan: what the operator calls it ("set-config") and its calldata. */
struct ops_call {
	const char *what;
	struct buf calldata;
};
#define OPS_DEPLOY_CALLS_MAX 8
/* The cluster constructor's arguments appended to its init code (the deployer owns it until
 * it has configured it; the KMS root): 0 or -ENOMEM. */
int ops_deploy_constructor(struct buf *code, const uint8_t deployer[static 20],
			   const uint8_t kms_root[static 20]);
/* The owner calls that configure a new cluster as d says, in the order to send them, into
 * calls[OPS_DEPLOY_CALLS_MAX] (*n of them; ops_calls_clear them): 0 or -ENOMEM. */
int ops_deploy_plan(const struct ops_deploy *d, const uint8_t deployer[static 20], struct ops_call *calls,
		    size_t *n);
void ops_calls_clear(struct ops_call *calls, size_t n);

/* ---- status (ops/status.c) ------------------------------------------------------------------ */

/* The contract's globals a status reads, each one word: owner(), pendingOwner(), ... */
enum ops_global {
	OPS_G_OWNER,
	OPS_G_PENDING_OWNER,
	OPS_G_KMS_ROOT,
	OPS_G_MAX_NODES,
	OPS_G_MODES,
	OPS_G_BOOT,
	OPS_G_PUBLIC_MINTING,
	OPS_G_MINT_PRICE,
	OPS_G_ANY_DEVICE,
	OPS_G_TCB,
	OPS_G_SUPPLY,
	OPS_G_PEER_COUNT,
	OPS_G_LIVE_BITMAP,
	OPS_G_LEADER_TOKEN,
	OPS_G_LEADER,
	OPS_G_TERM,
	OPS_G_EXPIRY,
	OPS_G_LEASE,
	OPS_G_VOTES,
	OPS_G_REQUIRED,
	OPS_G_COUNT
};

/* One live token as the contract has it at the status's block. */
struct ops_token_row {
	uint64_t id;
	uint8_t holder[20];
	char label[80];
	bool bound;
	uint8_t instance[20];
	uint64_t stored_nonce;
	uint64_t vote_term, vote_target;
	const struct registry_record *peer; /* NULL: no record; else one of ops_status.peers */
	enum attest_verdict verdict;
};

/* Everything `cluster status` shows, read at one block. */
struct ops_status {
	struct eth_block block;
	char tag[ETH_BLOCK_TAG_MAX];
	uint8_t g[OPS_G_COUNT][32];
	bool have[OPS_G_COUNT];
	uint8_t balance[32];
	struct ops_token_row *rows;
	size_t nrows;
	struct registry_record *peers;
	size_t npeers;
	struct ops_lists *lists; /* NULL: not read (the dashboard's document) */
	bool lists_failed;       /* asked for, the RPC could not say */
};

/*
 * Read the status at the head: the globals, every live token (holder, label, instance,
 * vote, stored nonce) in batches, the balance, getPeers() with each record verified as
 * the agent verifies it. Entries of getPeers() left out are described in skips (up to
 * max_skips, *nskips of them). -ENOENT when the address answers no kmsRoot() (not a
 * cluster contract); else the RPC's -errno; ops_error says why. Free with
 * ops_status_clear either way.
 */
int ops_status_read(struct ops *o, struct ops_status *s, struct registry_skip *skips, size_t max_skips,
		    size_t *nskips);
/*
 * The allowed compose hashes and devices at the status's block into s->lists. An RPC that
 * serves no past state cannot say: then s->lists_failed, and its -errno (ops_error says
 * why); -ENOMEM.
 */
int ops_status_read_lists(struct ops *o, struct ops_status *s);
void ops_status_clear(struct ops_status *s);
/* The low 64 bits of a big-endian word (the globals are uint64 at most but for the price). */
uint64_t ops_word_u64(const uint8_t w[static 32]);

/* ---- following the events for a live view (ops/follow.c) ----------------------------------- */

#define OPS_RECENT_EVENTS 100 /* kept for a view that connects, oldest dropped first */
#define OPS_FOLLOW_GAP_MS 250 /* the chain is asked at most this often, whoever asks */

struct ops_event {
	uint64_t id;     /* 1, 2, ...: its place in the sequence of events seen */
	struct buf json; /* {"id":..,"block":..,"tx":..,"log":{"event":..,"args":{..}}} */
};

struct ops_follow {
	uint64_t next_block; /* the first block not read yet */
	uint64_t polled_at;
	uint64_t seq; /* id of the newest event */
	struct ops_event recent[OPS_RECENT_EVENTS];
	struct ops_lists lists; /* folded from every event read */
	char last_error[160];   /* the last poll's failure, "" when it worked */
};

void ops_follow_init(struct ops_follow *f, uint64_t from_block);
void ops_follow_clear(struct ops_follow *f);
/* Read the contract's logs of the blocks not read yet (at most 4 ranges of 5000 blocks a
 * call, and nothing within OPS_FOLLOW_GAP_MS of the last call): 0 or the RPC's -errno, its
 * words in f->last_error. */
int ops_follow_poll(struct ops *o, struct ops_follow *f);
/* The kept event with this id, NULL when it was dropped or is not there yet. */
const struct ops_event *ops_follow_event(const struct ops_follow *f, uint64_t id);
/* The oldest id still kept. */
uint64_t ops_follow_first(const struct ops_follow *f);
/* What a wallet page needs of the contract's interface: {"functions":{action:{"signature",
 * "selector"}},"errors":{selector:{"signature","fields","hint"}}}, appended; 0 or -ENOMEM. */
int ops_abi_json(struct buf *out);

/* ---- events by name (ops/events.c) --------------------------------------------------------- */

/* "Name(arg=value, ...)" of a log of the cluster contract, the KMS or OpenZeppelin's ERC721 and
 * Ownable2Step; "unknown event 0x<topic0>" otherwise. JSON: {"event":..,"args":{..}} when json. */
int ops_describe_log(const struct eth_log *log, bool json, struct buf *out);

#endif
