/* SPDX-License-Identifier: MIT */
/*
 * dstack-p2p relayer: the operator's small HTTP service that sends the nodes' registrations
 * (TEEs hold no gas). Only calls to the configured contract with an allowed selector; rate
 * limited per instance and in total; simulated before anything is signed; under fee caps
 * and a spending cap for the relayer's whole life. Bad input costs no gas.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cluster.h"
#include "net/net.h"
#include "registry/registry.h"

#define MAX_ALLOWED 16
#define MAX_LISTEN 4
#define SUBJECT_SLOTS 1024
#define DEFAULT_MAX_DATA (8 << 10)     /* a registration is about 1 KiB of calldata */
#define DEFAULT_SPEND_CAP 100000000000000000ull   /* 0.1 ether */
#define DEFAULT_MAX_COST 10000000000000000ull     /* 0.01 ether per transaction */
#define MAX_PENDING 64            /* sent, receipt not seen yet */
#define MAX_TRACKED 256           /* pending and finished, for GET /tx/HASH */
#define INSTANCE_SLOTS 1024       /* instances whose stored registration nonce is known */
#define TOKEN_REFRESH_MS 2000     /* a token's record and nonce are read again at most this often */
#define DEADLINE_SLACK_S 60       /* the relayer's clock against block time */
#define TICK_MS 250               /* how often pending receipts are looked at */
#define RECEIPTS_PER_TICK 8
#define PENDING_GIVE_UP_MS (15 * 60 * 1000)

enum relay_kind { RELAY_OTHER, RELAY_REGISTRATION, RELAY_LEADER };

enum {
	O_LISTEN = 256, O_RPC, O_CONTRACT, O_KEY_FILE, O_KEYSTORE, O_PASSWORD_FILE, O_CHAIN_ID,
	O_ALLOW, O_PER_INSTANCE, O_TOTAL, O_WINDOW, O_SPEND_CAP, O_MAX_FEE, O_MAX_COST, O_MAX_BODY,
	O_TIMEOUT,
};

static const struct cli_opt opts[] = {
	{ "listen", O_LISTEN, "HOST:PORT", "where to serve (default 127.0.0.1:8600; repeatable)" },
	CLI_OPT_RPC(O_RPC),
	{ "contract", O_CONTRACT, "ADDR", "the only contract it sends to (env CLUSTER_CONTRACT)" },
	CLI_OPT_KEY_FILE(O_KEY_FILE),
	{ "keystore", O_KEYSTORE, "FILE", "the paying key as a keystore v3 JSON" },
	CLI_OPT_PASSWORD_FILE(O_PASSWORD_FILE),
	CLI_OPT_CHAIN_ID(O_CHAIN_ID),
	{ "allow", O_ALLOW, "SIG", "a function it relays, e.g. 'castVote(uint256,uint256,bool)'\n"
				   "(repeatable; default: registerPeer and the signed\n"
				   "leader calls)" },
	{ "per-instance", O_PER_INSTANCE, "N", "verified requests per instance (or token) per\n"
					       "window (5)" },
	{ "total", O_TOTAL, "N", "transactions per window in all (60)" },
	{ "window", O_WINDOW, "SECONDS", "the rate-limit window, sliding (60)" },
	{ "spend-cap", O_SPEND_CAP, "WEI", "what it may spend in its life (default 0.1ether)" },
	{ "max-fee-per-gas", O_MAX_FEE, "WEI", "cap on the fee per gas (default 100gwei)" },
	{ "max-cost", O_MAX_COST, "WEI", "cap on one transaction (default 0.01ether)" },
	{ "max-body", O_MAX_BODY, "BYTES", "largest request body (default 17000)" },
	{ "timeout", O_TIMEOUT, "MS", "per RPC request (default 10000)" },
	{ 0 },
};

static const struct cli_cmd cmd = {
	.name = "relayer",
	.synopsis = "--contract ADDR --key-file FILE [options]",
	.about =
		"Serve POST {\"to\":\"0x..\",\"data\":\"0x..\"} (what the agent sends with\n"
		"P2P_RELAYER_URL) and send it as a transaction paid by the relayer's key, if it\n"
		"calls the configured contract with an allowed function, verifies offline (a\n"
		"registration's signature chain against the KMS root, a leader call's node-key\n"
		"signature), is within the rate limits, and does not revert when simulated. It\n"
		"does not wait for the receipt: 202 {\"txHash\",\"status\":\"pending\"} (200 with\n"
		"\"block\" and \"gasUsed\" when mined at once), or an error: 400 malformed, 403 wrong\n"
		"contract or function or a signature that does not verify, 409 one of the same\n"
		"instance or token pending, 413 too large, 422 reverts (the decoded error), 429 rate\n"
		"limited, 503 over a cap, 502 the chain failed. GET /tx/0xHASH follows a\n"
		"transaction it sent; GET /health answers its address, spending and counters.",
	.opts = opts,
	.footer = "Exit status: 0 stopped by SIGTERM/SIGINT, 1 failed at run time, 2 usage or\n"
		  "configuration.",
};

/* A transaction the relayer sent: followed until its receipt, then kept for GET /tx/HASH. */
enum tx_state { TX_FREE, TX_PENDING, TX_MINED, TX_REVERTED, TX_UNKNOWN };

struct tracked_tx {
	enum tx_state state;
	uint8_t hash[32];
	uint8_t subject[32];      /* the instance (left-padded) or the token word */
	enum relay_kind kind;
	uint64_t nonce;           /* the record's nonce, or the leader nonce it was signed with */
	uint64_t worst_cost;      /* reserved from the spending cap until the receipt */
	uint64_t max_fee_per_gas;
	uint64_t sent_ms;
	uint64_t block, gas_used;
	char name[32];
};

/* The highest registration nonce the contract holds for an instance (a lower bound). */
struct known_instance {
	uint8_t id[20];
	uint64_t stored;
	uint64_t used_ms;
	bool used;
};

/* A token's node key (from its verified record) and leader nonce, as last read. */
struct known_token {
	bool fetched, registered;
	uint8_t node_addr[20];
	uint64_t nonce;
	uint64_t fetched_ms;
};

struct relayer {
	struct eth_rpc *rpc;
	uint8_t contract[20];
	uint8_t kms_root[20];
	uint64_t chain_id;
	uint8_t *sk;
	uint8_t from[20];
	uint8_t allowed[MAX_ALLOWED][4];
	char allowed_names[MAX_ALLOWED][96];
	size_t nallowed;
	struct relayer_limiter per_subject, total;
	size_t max_data;
	struct eth_tx_caps caps;
	uint64_t max_cost;
	uint64_t spend_cap, spent;
	uint64_t nonce_hint;
	uint64_t sent, refused, unverified;
	struct tracked_tx txs[MAX_TRACKED];
	size_t npending, next_receipt;
	struct known_instance instances[INSTANCE_SLOTS];
	struct known_token tokens[REGISTRY_MAX_PEERS + 1];
};

struct relayer_opts {
	const char *listen[MAX_LISTEN];
	int nlisten;
	const char *rpc;
	const char *contract_hex;
	struct cluster_key_opts key;
	uint64_t chain_id;
	uint64_t per_instance, total, window_s, max_body;
	long timeout_ms;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* ---- answering ------------------------------------------------------------------------- */

static int reply_error(struct relayer *rl, struct buf *out, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int reply_error(struct relayer *rl, struct buf *out, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rl->refused++;
	buf_reset(out);
	buf_printf(out, "{\"error\":");
	json_append_string(out, msg);
	buf_printf(out, "}");
	return status;
}

static int reply_health(struct relayer *rl, struct buf *out)
{
	char from[41];

	hex_encode(from, rl->from, 20);
	buf_printf(out, "{\"address\":\"0x%s\",\"spentWei\":%" PRIu64 ",\"spendCapWei\":%" PRIu64
		   ",\"sent\":%" PRIu64 ",\"pending\":%zu,\"refused\":%" PRIu64 ",\"unverified\":%" PRIu64
		   "}", from, rl->spent, rl->spend_cap, rl->sent, rl->npending, rl->refused,
		   rl->unverified);
	return 200;
}

static const char *const tx_state_names[] = {
	[TX_PENDING] = "pending", [TX_MINED] = "mined", [TX_REVERTED] = "reverted",
	[TX_UNKNOWN] = "unknown",
};

/* {"txHash","status"[,"block","gasUsed"]}: what the reply to a send and GET /tx/HASH say. */
static void tx_json(const struct tracked_tx *t, struct buf *out)
{
	char hash[65];

	hex_encode(hash, t->hash, 32);
	buf_printf(out, "{\"txHash\":\"0x%s\",\"status\":\"%s\"", hash, tx_state_names[t->state]);
	if (t->state == TX_MINED || t->state == TX_REVERTED)
		buf_printf(out, ",\"block\":%" PRIu64 ",\"gasUsed\":%" PRIu64, t->block, t->gas_used);
	buf_printf(out, "}");
}

static int reply_tx(struct relayer *rl, const char *path, struct buf *out)
{
	uint8_t hash[32];
	const char *hex = path + strlen("/tx/");

	if (strncmp(hex, "0x", 2) || hex_decode_exact(hash, 32, hex + 2, strlen(hex + 2)) < 0)
		return reply_error(rl, out, 400, "GET /tx/0x<32-byte transaction hash>");
	for (size_t i = 0; i < MAX_TRACKED; i++)
		if (rl->txs[i].state != TX_FREE && !memcmp(rl->txs[i].hash, hash, 32)) {
			tx_json(&rl->txs[i], out);
			return 200;
		}
	return reply_error(rl, out, 404, "no transaction 0x%.64s sent by this relayer (it keeps "
			   "the last %d)", hex + 2, MAX_TRACKED);
}

static const char *allowed_name(const struct relayer *rl, const uint8_t sel[static 4])
{
	for (size_t i = 0; i < rl->nallowed; i++)
		if (!memcmp(rl->allowed[i], sel, 4))
			return rl->allowed_names[i];
	return NULL;
}

static void add_spent(struct relayer *rl, uint64_t wei)
{
	rl->spent = __builtin_add_overflow(rl->spent, wei, &rl->spent) ? UINT64_MAX : rl->spent;
}

/* ---- what the relayer knows of the chain ------------------------------------------------ */

static struct known_instance *known_instance(struct relayer *rl, const uint8_t id[static 20])
{
	struct known_instance *lru = &rl->instances[0];

	for (size_t i = 0; i < INSTANCE_SLOTS; i++) {
		struct known_instance *k = &rl->instances[i];

		if (k->used && !memcmp(k->id, id, 20))
			return k;
		if (!k->used || (lru->used && k->used_ms < lru->used_ms))
			lru = k;
	}
	return lru;
}

static struct tracked_tx *pending_for(struct relayer *rl, const uint8_t subject[static 32])
{
	for (size_t i = 0; i < MAX_TRACKED; i++)
		if (rl->txs[i].state == TX_PENDING && !memcmp(rl->txs[i].subject, subject, 32))
			return &rl->txs[i];
	return NULL;
}

/* A receipt's effect on what the relayer knows: the nonce the contract now holds. */
static void learn_from_receipt(struct relayer *rl, const struct tracked_tx *t)
{
	if (t->state != TX_MINED)
		return;
	if (t->kind == RELAY_REGISTRATION) {
		struct known_instance *k = known_instance(rl, t->subject + 12);

		if (k->used && !memcmp(k->id, t->subject + 12, 20) && k->stored < t->nonce)
			k->stored = t->nonce;
		/* Some token has a new node key, or is newly registered: each may be read again. */
		for (size_t i = 1; i <= REGISTRY_MAX_PEERS; i++)
			rl->tokens[i].fetched_ms = 0;
	} else if (t->kind == RELAY_LEADER) {
		uint64_t token = 0;

		for (int i = 24; i < 32; i++)
			token = token << 8 | t->subject[i];
		if (token && token <= REGISTRY_MAX_PEERS && rl->tokens[token].fetched &&
		    rl->tokens[token].nonce <= t->nonce)
			rl->tokens[token].nonce = t->nonce + 1;
	}
}

/* Read token's record (verified against the KMS root) and leader nonce from the chain. */
static int fetch_token(struct relayer *rl, uint64_t token, struct known_token *k)
{
	bool named[REGISTRY_MAX_PEERS + 1] = { false };
	struct registry_record *got = NULL;
	size_t n = 0;
	int r;

	named[token] = true;
	r = registry_read_tokens(rl->rpc, rl->contract, "latest", named, 1, &got, &n);
	if (r != 0)
		return r < 0 ? r : -EBADMSG;
	k->registered = n == 1 && got[0].token_id == token &&
			registry_record_verify(&got[0], rl->chain_id, rl->contract, rl->kms_root) ==
				ATTEST_VALID;
	if (k->registered) {
		uint8_t pub_addr[20];

		crypto_address_from_pubkey(got[0].node_pubkey, pub_addr);
		memcpy(k->node_addr, pub_addr, 20);
	}
	registry_records_free(got, n);
	if (k->registered && (r = registry_leader_nonce(rl->rpc, rl->contract, token, &k->nonce)) < 0)
		return r;
	k->fetched = true;
	k->fetched_ms = now_ms();
	return 0;
}

/* ---- verifying before anything is counted ---------------------------------------------- */

/*
 * A registration: its signature chain against the KMS root and this cluster, offline; its
 * nonce against what the contract holds (read once per instance, then followed). 0 with
 * *nonce set, or the status of the reply written to out.
 */
static int verify_registration(struct relayer *rl, const struct relayer_request *q, uint64_t *nonce,
			       struct buf *out)
{
	struct registry_record rec;
	struct err_detail why = { "" };
	struct known_instance *k;
	struct tracked_tx *t;
	enum attest_verdict v;
	char hash[65];
	int status = 0, r;

	if (registry_decode_register_call(q->data, q->len, &rec, &why) < 0)
		return reply_error(rl, out, 400, "registerPeer calldata: %s", why.text);
	v = registry_record_verify(&rec, rl->chain_id, rl->contract, rl->kms_root);
	*nonce = rec.nonce;
	if (v != ATTEST_VALID) {
		status = reply_error(rl, out, 403, "the registration does not verify against the KMS "
				     "root and this cluster: %s", attest_verdict_str(v));
		goto out;
	}
	if ((t = pending_for(rl, q->subject))) {
		hex_encode(hash, t->hash, 32);
		status = reply_error(rl, out, 409, "a registration of this instance is pending: 0x%s "
				     "(GET /tx/0x%s)", hash, hash);
		goto out;
	}
	k = known_instance(rl, rec.instance_id);
	if (!k->used || memcmp(k->id, rec.instance_id, 20)) {
		if ((r = registry_nonce_of(rl->rpc, rl->contract, rec.instance_id, &k->stored)) < 0) {
			k->used = false;
			status = reply_error(rl, out, 502, "the chain: nonceOf: %s", eth_rpc_error(rl->rpc));
			goto out;
		}
		memcpy(k->id, rec.instance_id, 20);
		k->used = true;
	}
	k->used_ms = now_ms();
	if (rec.nonce <= k->stored)
		status = reply_error(rl, out, 422, "registerPeer reverts: StaleNonce(%" PRIu64 ", %" PRIu64
				     ") (known without asking the chain again)", rec.nonce, k->stored);
out:
	registry_record_clear(&rec);
	return status;
}

/* Does the token's node key sign c with the nonce the relayer knows? */
static bool leader_signed(struct relayer *rl, struct registry_leader_call *c, const struct known_token *k)
{
	uint8_t signer[20];

	c->nonce = k->nonce;
	return k->registered &&
	       registry_leader_call_signer(rl->chain_id, rl->contract, c, signer) == 0 &&
	       !memcmp(signer, k->node_addr, 20);
}

/*
 * A signed leader call: the token's node key (from its record, verified against the KMS
 * root) signs it with the token's current nonce, and its deadline has not passed. The
 * record and nonce are read once and again at most every TOKEN_REFRESH_MS per token, so
 * junk naming tokens costs at most that many reads. 0 with *nonce set, or the status.
 */
static int verify_leader_call(struct relayer *rl, const struct relayer_request *q, uint64_t *nonce,
			      struct buf *out)
{
	struct registry_leader_call c;
	struct known_token *k;
	struct tracked_tx *t;
	uint64_t now = now_ms();
	char hash[65];
	int r;

	if (registry_decode_leader_call(q->data, q->len, &c) < 0)
		return reply_error(rl, out, 400, "the leader call's arguments do not decode");
	if (c.token < 1 || c.token > REGISTRY_MAX_PEERS)
		return reply_error(rl, out, 403, "token %" PRIu64 " is outside 1..%d", c.token,
				   REGISTRY_MAX_PEERS);
	if (c.deadline + DEADLINE_SLACK_S < (uint64_t)time(NULL))
		return reply_error(rl, out, 422, "LeaderActionExpired(%" PRIu64 ", %" PRIu64 ") (by "
				   "the relayer's clock)", c.deadline, (uint64_t)time(NULL));
	k = &rl->tokens[c.token];
	if (!k->fetched || !leader_signed(rl, &c, k)) {
		if (k->fetched && now - k->fetched_ms < TOKEN_REFRESH_MS)
			goto refused;
		if ((r = fetch_token(rl, c.token, k)) < 0)
			return reply_error(rl, out, 502, "the chain: token %" PRIu64 "'s record: %s",
					   c.token, eth_rpc_error(rl->rpc)[0] ? eth_rpc_error(rl->rpc) : errstr(r));
		if (!leader_signed(rl, &c, k))
			goto refused;
	}
	/* Signed, so the node's: a second call while one is pending would only revert. */
	if ((t = pending_for(rl, q->subject))) {
		hex_encode(hash, t->hash, 32);
		return reply_error(rl, out, 409, "a leader call of token %" PRIu64 " is pending: 0x%s "
				   "(GET /tx/0x%s)", c.token, hash, hash);
	}
	*nonce = c.nonce;
	return 0;
refused:
	if (!k->registered)
		return reply_error(rl, out, 422, "NotRegisteredNode(%" PRIu64 ")", c.token);
	return reply_error(rl, out, 403, "the leader call is not signed by token %" PRIu64 "'s node "
			   "key with its nonce %" PRIu64, c.token, k->nonce);
}

/* ---- sending without waiting ----------------------------------------------------------- */

static struct tracked_tx *track(struct relayer *rl, const struct eth_tx_result *res,
				const uint8_t subject[static 32], enum relay_kind kind, uint64_t nonce,
				const char *name)
{
	struct tracked_tx *t = &rl->txs[0];

	/* A free entry, else the oldest finished one (MAX_PENDING < MAX_TRACKED: one exists). */
	for (size_t i = 0; i < MAX_TRACKED; i++) {
		struct tracked_tx *c = &rl->txs[i];

		if (c->state == TX_FREE) {
			t = c;
			break;
		}
		if (c->state != TX_PENDING && (t->state == TX_PENDING || c->sent_ms < t->sent_ms))
			t = c;
	}
	memset(t, 0, sizeof(*t));
	t->state = res->mined ? (res->receipt.success ? TX_MINED : TX_REVERTED) : TX_PENDING;
	memcpy(t->hash, res->tx_hash, 32);
	memcpy(t->subject, subject, 32);
	t->kind = kind;
	t->nonce = nonce;
	t->worst_cost = res->worst_cost;
	t->max_fee_per_gas = res->max_fee_per_gas;
	t->sent_ms = now_ms();
	t->block = res->receipt.block_number;
	t->gas_used = res->receipt.gas_used;
	snprintf(t->name, sizeof(t->name), "%s", name);
	if (t->state == TX_PENDING)
		rl->npending++;
	return t;
}

/* Gas actually charged is at most gas used x the max fee we signed. */
static uint64_t charged(uint64_t gas_used, uint64_t max_fee_per_gas)
{
	uint64_t v;

	return __builtin_mul_overflow(gas_used, max_fee_per_gas, &v) ? UINT64_MAX : v;
}

/*
 * Send under the caps without waiting for a receipt: 200 with the receipt when the node
 * mined it at once (dev chains), else 202 {"txHash","status":"pending"}; the tick follows
 * it. Until then its worst cost counts against the spending cap.
 */
static int send_request(struct relayer *rl, const struct relayer_request *q, const uint8_t subject[static 32],
			enum relay_kind kind, uint64_t nonce, const char *name, struct buf *out)
{
	struct eth_tx_request req = { .to = q->to, .data = q->data, .len = q->len };
	struct eth_tx_caps caps = rl->caps;
	struct eth_tx_result res;
	struct tracked_tx *t;
	const char *why;
	char hash[65];
	int r;

	caps.max_cost = rl->spend_cap - rl->spent < rl->max_cost ? rl->spend_cap - rl->spent
								   : rl->max_cost;
	caps.nonce_hint = &rl->nonce_hint;
	caps.timeout_ms = 1;  /* one look for the receipt, no wait */
	r = eth_send_capped(rl->rpc, rl->sk, &req, &caps, &res);
	why = eth_rpc_error(rl->rpc);
	if (!strncmp(why, "eth_call reverted: ", 19))
		why += 19;
	if (!res.sent) {
		if (r == -EPERM)
			return reply_error(rl, out, 422, "%s reverts: %s", name, why);
		if (r == -EDQUOT)
			return reply_error(rl, out, 503, "not sent: %s", why);
		return reply_error(rl, out, 502, "the chain: %s", why[0] ? why : errstr(r));
	}
	/* Sent: gas is spent whatever follows; a failed receipt look leaves it pending. */
	rl->sent++;
	add_spent(rl, res.mined ? charged(res.receipt.gas_used, res.max_fee_per_gas) : res.worst_cost);
	t = track(rl, &res, subject, kind, nonce, name);
	learn_from_receipt(rl, t);
	if (t->state == TX_REVERTED) {
		hex_encode(hash, res.tx_hash, 32);
		return reply_error(rl, out, 502, "transaction 0x%s reverted: %s", hash, why);
	}
	tx_json(t, out);
	return t->state == TX_PENDING ? 202 : 200;
}

/* One round of following receipts: at most RECEIPTS_PER_TICK of the pending transactions. */
static void follow_receipts(void *ctx)
{
	struct relayer *rl = ctx;
	uint64_t now = now_ms();
	size_t base = rl->next_receipt;

	for (size_t looked = 0, i = 0; i < MAX_TRACKED && looked < RECEIPTS_PER_TICK && rl->npending;
	     i++) {
		struct tracked_tx *t = &rl->txs[(base + i) % MAX_TRACKED];
		struct eth_receipt rc;
		char hash[65];
		int r;

		if (t->state != TX_PENDING)
			continue;
		looked++;
		r = eth_get_receipt(rl->rpc, t->hash, &rc);
		if (r == -ENOENT && now - t->sent_ms > PENDING_GIVE_UP_MS)
			t->state = TX_UNKNOWN;  /* its worst cost stays counted */
		if (r == 0) {
			t->state = rc.success ? TX_MINED : TX_REVERTED;
			t->block = rc.block_number;
			t->gas_used = rc.gas_used;
			rl->spent -= t->worst_cost < rl->spent ? t->worst_cost : rl->spent;
			add_spent(rl, charged(rc.gas_used, t->max_fee_per_gas));
			learn_from_receipt(rl, t);
		}
		if (t->state != TX_PENDING) {
			rl->npending--;
			hex_encode(hash, t->hash, 32);
			log_info("relayer: %s 0x%s %s in block %" PRIu64 " (gas %" PRIu64 ")", t->name,
				 hash, tx_state_names[t->state], t->block, t->gas_used);
		}
		rl->next_receipt = (base + i + 1) % MAX_TRACKED;  /* the next round starts after it */
	}
}

/* What a request is, for its checks and the log: a registration, a leader call, or another. */
static enum relay_kind kind_of(const uint8_t sel[static 4])
{
	uint8_t s[4];

	abi_selector(REGISTRY_REGISTER_SIG, s);
	if (!memcmp(s, sel, 4))
		return RELAY_REGISTRATION;
	for (size_t i = 0; i < ARRAY_SIZE(registry_leader_call_sigs); i++) {
		abi_selector(registry_leader_call_sigs[i], s);
		if (!memcmp(s, sel, 4))
			return RELAY_LEADER;
	}
	return RELAY_OTHER;
}

/*
 * The order is what keeps junk from costing anything: shape, contract and function; then
 * the signatures, offline (junk stops here and takes no slot); then the subject's limit
 * (a subject that verified is one the node signed for); then the simulation; only a request
 * that passes it takes a slot of the cluster-wide limit and is sent.
 */
static int relay_checked(struct relayer *rl, const struct relayer_request *q, const char *name,
			 struct buf *out)
{
	struct eth_tx_request req = { .to = q->to, .data = q->data, .len = q->len };
	enum relay_kind kind = kind_of(q->selector);
	uint64_t nonce = 0, now;
	const char *why;
	int status = 0, r;

	if (kind == RELAY_REGISTRATION)
		status = verify_registration(rl, q, &nonce, out);
	else if (kind == RELAY_LEADER)
		status = verify_leader_call(rl, q, &nonce, out);
	if (status) {
		rl->unverified++;
		return status;
	}
	now = now_ms();
	if (q->has_subject && !relayer_limiter_take(&rl->per_subject, q->subject, now))
		return reply_error(rl, out, 429, "too many requests for this %s; try later",
				   kind == RELAY_REGISTRATION ? "instance" : "token");
	if (rl->spent >= rl->spend_cap)
		return reply_error(rl, out, 503, "the relayer's spending cap is reached");
	if (rl->npending >= MAX_PENDING)
		return reply_error(rl, out, 503, "%d transactions are pending; try later", MAX_PENDING);
	r = eth_simulate(rl->rpc, rl->from, &req, NULL);
	why = eth_rpc_error(rl->rpc);
	if (!strncmp(why, "eth_call reverted: ", 19))
		why += 19;
	if (r == -EPERM)
		return reply_error(rl, out, 422, "%s reverts: %s", name, why);
	if (r < 0)
		return reply_error(rl, out, 502, "the chain: %s", why[0] ? why : errstr(r));
	if (!relayer_limiter_take(&rl->total, (const uint8_t[32]){ 0 }, now_ms()))
		return reply_error(rl, out, 429, "too many transactions in all; try later");
	return send_request(rl, q, q->subject, kind, nonce, name, out);
}

static int relay(struct relayer *rl, const struct http_request *req, struct buf *out)
{
	struct relayer_request q;
	const char *name = NULL;
	struct err_detail why;
	char sel[9] = "-";
	int status;

	if (relayer_parse_request(req->body, req->content_length, rl->max_data, &q, &why) < 0) {
		status = reply_error(rl, out, 400, "%s", why.text);
	} else {
		hex_encode(sel, q.selector, 4);
		if (memcmp(q.to, rl->contract, 20))
			status = reply_error(rl, out, 403, "this relayer sends only to its cluster contract");
		else if (!(name = allowed_name(rl, q.selector)))
			status = reply_error(rl, out, 403, "function 0x%s is not relayed here", sel);
		else
			status = relay_checked(rl, &q, name, out);
	}
	log_info("relayer: %s %s %s%s -> %d %.*s", req->peer, req->path, name ? name : "unknown function 0x",
		 name ? "" : sel, status, (int)(out->len < 200 ? out->len : 200), (const char *)out->data);
	relayer_request_clear(&q);
	return status;
}

static int handle(void *ctx, const struct http_request *req, struct buf *out)
{
	struct relayer *rl = ctx;

	if (!strcmp(req->method, "GET") && !strcmp(req->path, "/health"))
		return reply_health(rl, out);
	if (!strcmp(req->method, "GET") && !strncmp(req->path, "/tx/", 4))
		return reply_tx(rl, req->path, out);
	if (strcmp(req->method, "POST"))
		return reply_error(rl, out, 405, "POST a {\"to\",\"data\"} JSON body, or GET /health or "
				   "/tx/0xHASH");
	return relay(rl, req, out);
}

/* ---- setup ----------------------------------------------------------------------------- */

static int add_allowed(struct relayer *rl, const char *sig)
{
	if (rl->nallowed == MAX_ALLOWED || !strchr(sig, '(') || sig[strlen(sig) - 1] != ')' ||
	    strchr(sig, ' ') || strlen(sig) >= sizeof(rl->allowed_names[0]))
		return -EINVAL;
	abi_selector(sig, rl->allowed[rl->nallowed]);
	snprintf(rl->allowed_names[rl->nallowed], sizeof(rl->allowed_names[0]), "%.*s",
		 (int)strcspn(sig, "("), sig);
	rl->nallowed++;
	return 0;
}

static int parse_count(struct cli_args *a, uint64_t max, uint64_t *out)
{
	return ops_parse_u64(a->value, out) < 0 || !*out || *out > max ? cli_bad_value(a, "a number in range")
								       : 0;
}

static int parse_option(struct cli_args *a, int c, struct relayer_opts *o, struct relayer *rl)
{
	uint64_t v;

	switch (c) {
	case O_LISTEN:
		if (o->nlisten == MAX_LISTEN)
			return cli_bad_value(a, "at most 4 --listen");
		o->listen[o->nlisten++] = a->value;
		return 0;
	case O_RPC: o->rpc = a->value; return 0;
	case O_CONTRACT: o->contract_hex = a->value; return 0;
	case O_KEY_FILE:
	case O_KEYSTORE:
		cluster_key_opt_set(&o->key, c == O_KEYSTORE, a->value);
		return 0;
	case O_PASSWORD_FILE:
		o->key.src.password_file = a->value;
		return 0;
	case O_CHAIN_ID: return parse_count(a, UINT64_MAX, &o->chain_id);
	case O_ALLOW:
		return add_allowed(rl, a->value) < 0
			? cli_bad_value(a, "a function signature like 'name(uint256,bool)', at most 16") : 0;
	case O_PER_INSTANCE: return parse_count(a, 1000000, &o->per_instance);
	case O_TOTAL: return parse_count(a, 1000000, &o->total);
	case O_WINDOW: return parse_count(a, 86400, &o->window_s);
	case O_MAX_BODY: return parse_count(a, 1 << 20, &o->max_body);
	case O_TIMEOUT:
		if (parse_count(a, 600000, &v))
			return CLI_EXIT_USAGE;
		o->timeout_ms = (long)v;
		return 0;
	case O_SPEND_CAP:
		return ops_parse_wei(a->value, &rl->spend_cap) < 0 || !rl->spend_cap
			       ? cli_bad_value(a, "a non-zero amount (0.1ether)")
			       : 0;
	case O_MAX_FEE:
		return ops_parse_wei(a->value, &rl->caps.max_fee_per_gas) < 0 || !rl->caps.max_fee_per_gas
			       ? cli_bad_value(a, "a non-zero amount (100gwei)")
			       : 0;
	case O_MAX_COST:
		return ops_parse_wei(a->value, &rl->max_cost) < 0 || !rl->max_cost
			       ? cli_bad_value(a, "a non-zero amount (0.01ether)")
			       : 0;
	}
	return 0;
}

static int setup(struct relayer *rl, struct relayer_opts *o)
{
	uint64_t served;
	int r;

	if (!o->rpc)
		return cli_usage_error(&cmd, "no RPC endpoint (--rpc or ETH_RPC_URL)");
	if (!o->contract_hex || ops_parse_address(o->contract_hex, rl->contract) < 0)
		return cli_usage_error(&cmd, "--contract ADDR (or CLUSTER_CONTRACT): the cluster "
				       "contract, a 20-byte 0x address");
	if (!rl->nallowed) {
		/* The calls a node signs with its own key: the contract checks that signature,
		 * so relaying them lets nobody act for a node it is not. */
		add_allowed(rl, REGISTRY_REGISTER_SIG);
		for (size_t i = 0; i < ARRAY_SIZE(registry_leader_call_sigs); i++)
			add_allowed(rl, registry_leader_call_sigs[i]);
	}
	if (relayer_limiter_init(&rl->per_subject, SUBJECT_SLOTS, (uint32_t)o->per_instance,
				 o->window_s * 1000) < 0 ||
	    relayer_limiter_init(&rl->total, 1, (uint32_t)o->total, o->window_s * 1000) < 0)
		return CLI_EXIT_FAILURE;
	rl->max_data = o->max_body;
	if (cluster_load_key(&o->key.src, &rl->sk, rl->from) < 0)
		return CLI_EXIT_USAGE;
	r = eth_rpc_new(&(struct eth_rpc_config){ .urls = o->rpc, .timeout_ms = o->timeout_ms,
						  .errors = &registry_contract_errors },
			&rl->rpc);
	if (r < 0)
		return cli_usage_error(&cmd, "bad --rpc '%s': %s", o->rpc, errstr(r));
	r = eth_chain_id(rl->rpc, &served);
	if (r < 0 || (o->chain_id && served != o->chain_id)) {
		cli_error(r < 0 ? "eth_chainId: %s" : "the RPC serves another chain than --chain-id%s",
			  r < 0 ? eth_rpc_error(rl->rpc) : "");
		return CLI_EXIT_FAILURE;
	}
	rl->caps.chain_id = rl->chain_id = served;
	/* What registrations are checked against, offline, from now on. */
	if ((r = registry_kms_root(rl->rpc, rl->contract, rl->kms_root)) < 0) {
		cli_error("kmsRoot() of %s: %s (is it a cluster contract?)", o->contract_hex,
			  eth_rpc_error(rl->rpc)[0] ? eth_rpc_error(rl->rpc) : errstr(r));
		return CLI_EXIT_FAILURE;
	}
	rl->caps.timeout_ms = 4 * (o->timeout_ms ? o->timeout_ms : 10000);
	return CLI_EXIT_OK;
}

static int serve(struct relayer *rl, const struct relayer_opts *o)
{
	sigset_t wait_mask;
	int fds[MAX_LISTEN], n = 0, r;
	char from[41];

	for (; n < (o->nlisten ? o->nlisten : 1); n++) {
		const char *spec = o->nlisten ? o->listen[n] : "127.0.0.1:8600";

		if ((r = http_listen(spec, &fds[n], NULL)) < 0) {
			cli_error("listening on %s: %s", spec, errstr(r));
			while (n--)
				close(fds[n]);
			return CLI_EXIT_FAILURE;
		}
	}
	cli_serve_signals(on_signal, &wait_mask);
	hex_encode(from, rl->from, 20);
	log_info("relayer: serving for contract %s, paying from 0x%s, spending cap %" PRIu64 " wei",
		 o->contract_hex, from, rl->spend_cap);
	r = http_serve(&(struct http_server){ .max_header = 8192, .max_body = o->max_body,
					      .deadline_ms = 5000, .handler = handle, .ctx = rl,
					      .tick = follow_receipts, .tick_ms = TICK_MS },
		       fds, n, &wait_mask, &stop_requested);
	while (n--)
		close(fds[n]);
	log_info("relayer: stopped; %" PRIu64 " sent, %" PRIu64 " refused, %" PRIu64 " wei spent",
		 rl->sent, rl->refused, rl->spent);
	return r < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

int cmd_relayer(int argc, char **argv)
{
	struct relayer rl = { .spend_cap = DEFAULT_SPEND_CAP,
			      .max_cost = DEFAULT_MAX_COST,
			      .caps = { .max_fee_per_gas = OPS_DEFAULT_MAX_FEE } };
	struct relayer_opts o = { .rpc = getenv("ETH_RPC_URL"),
				  .contract_hex = getenv("CLUSTER_CONTRACT"),
				  .key = { .src = { .key_file = getenv("DSTACK_P2P_KEY_FILE") } },
				  .per_instance = 5,
				  .total = 60,
				  .window_s = 60,
				  .max_body = 17000 };
	struct cli_args a;
	int c, status;

	cli_args_init(&a, &cmd, argc, argv);
	while ((c = cli_next(&a)) > 0)
		if ((status = parse_option(&a, c, &o, &rl)) != 0)
			return status;
	if (c == CLI_STOP)
		return a.status;
	status = setup(&rl, &o);
	if (status == CLI_EXIT_OK)
		status = serve(&rl, &o);
	secret_free(rl.sk, 32);
	relayer_limiter_clear(&rl.per_subject);
	relayer_limiter_clear(&rl.total);
	eth_rpc_free(rl.rpc);
	return status;
}
