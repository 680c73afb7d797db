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
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cluster.h"
#include "registry/registry.h"

#define MAX_ALLOWED 16
#define MAX_LISTEN 4
#define SUBJECT_SLOTS 1024
#define DEFAULT_MAX_DATA (8 << 10)     /* a registration is about 1 KiB of calldata */
#define DEFAULT_SPEND_CAP 100000000000000000ull   /* 0.1 ether */
#define DEFAULT_MAX_COST 10000000000000000ull     /* 0.01 ether per transaction */

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
	{ "per-instance", O_PER_INSTANCE, "N", "requests per instance (or token) per window (5)" },
	{ "total", O_TOTAL, "N", "requests per window in all (60)" },
	{ "window", O_WINDOW, "SECONDS", "the rate-limit window (60)" },
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
		"calls the configured contract with an allowed function, is within the rate limits,\n"
		"and does not revert when simulated. Answers 200 {\"txHash\",\"block\",\"gasUsed\"}\n"
		"or an error: 400 malformed, 403 wrong contract or function, 413 too large, 422\n"
		"reverts (the decoded error), 429 rate limited, 503 over a cap, 502 the chain failed.\n"
		"GET /health answers the relayer's address, spending and counters.",
	.opts = opts,
	.footer = "Exit status: 0 stopped by SIGTERM/SIGINT, 1 failed at run time, 2 usage or\n"
		  "configuration.",
};

struct relayer {
	struct eth_rpc *rpc;
	uint8_t contract[20];
	uint8_t *sk;
	uint8_t from[20];
	uint8_t allowed[MAX_ALLOWED][4];
	char allowed_names[MAX_ALLOWED][96];
	size_t nallowed;
	struct relay_limiter per_subject, total;
	size_t max_data;
	struct eth_tx_caps caps;
	uint64_t max_cost;
	uint64_t spend_cap, spent;
	uint64_t nonce_hint;
	uint64_t sent, refused;
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
		   ",\"sent\":%" PRIu64 ",\"refused\":%" PRIu64 "}", from, rl->spent, rl->spend_cap,
		   rl->sent, rl->refused);
	return 200;
}

static const char *allowed_name(const struct relayer *rl, const uint8_t sel[static 4])
{
	for (size_t i = 0; i < rl->nallowed; i++)
		if (!memcmp(rl->allowed[i], sel, 4))
			return rl->allowed_names[i];
	return NULL;
}

/* Gas actually charged is at most gas used x the max fee we signed. */
static uint64_t charged(const struct eth_tx_result *res)
{
	uint64_t v;

	if (!res->mined)
		return res->worst_cost;
	return __builtin_mul_overflow(res->receipt.gas_used, res->max_fee_per_gas, &v) ? UINT64_MAX : v;
}

static void add_spent(struct relayer *rl, uint64_t wei)
{
	rl->spent = __builtin_add_overflow(rl->spent, wei, &rl->spent) ? UINT64_MAX : rl->spent;
}

static int send_request(struct relayer *rl, const struct relay_request *q, const char *name,
			struct buf *out)
{
	struct eth_tx_request req = { .to = q->to, .data = q->data, .len = q->len };
	struct eth_tx_caps caps = rl->caps;
	struct eth_tx_result res;
	const char *why;
	char hash[65];
	int r;

	caps.max_cost = rl->spend_cap - rl->spent < rl->max_cost ? rl->spend_cap - rl->spent
								   : rl->max_cost;
	caps.nonce_hint = &rl->nonce_hint;
	r = eth_send_capped(rl->rpc, rl->sk, &req, &caps, &res);
	why = eth_rpc_error(rl->rpc);
	if (!strncmp(why, "eth_call reverted: ", 19))
		why += 19;
	if (res.sent)
		add_spent(rl, charged(&res));
	hex_encode(hash, res.tx_hash, 32);
	if (r == -EPERM && !res.sent)
		return reply_error(rl, out, 422, "%s reverts: %s", name, why);
	if (r == -EDQUOT)
		return reply_error(rl, out, 503, "not sent: %s", why);
	if (r == -ETIMEDOUT) {
		rl->sent++;
		buf_printf(out, "{\"txHash\":\"0x%s\",\"status\":\"pending\"}", hash);
		return 202;
	}
	if (r == -EPERM)
		return reply_error(rl, out, 502, "transaction 0x%s reverted: %s", hash, why);
	if (r < 0)
		return reply_error(rl, out, 502, "the chain: %s", why[0] ? why : errstr(r));
	rl->sent++;
	buf_printf(out, "{\"txHash\":\"0x%s\",\"block\":%" PRIu64 ",\"gasUsed\":%" PRIu64 "}", hash,
		   res.receipt.block_number, res.receipt.gas_used);
	return 200;
}

static int relay(struct relayer *rl, const struct http_request *req, struct buf *out)
{
	struct relay_request q;
	const char *name;
	struct err_detail why;
	char sel[9];
	uint64_t now = now_ms();
	int status;

	if (relay_parse_request(req->body, req->content_length, rl->max_data, &q, &why) < 0)
		return reply_error(rl, out, 400, "%s", why.text);
	hex_encode(sel, q.selector, 4);
	if (memcmp(q.to, rl->contract, 20))
		status = reply_error(rl, out, 403, "this relayer sends only to its cluster contract");
	else if (!(name = allowed_name(rl, q.selector)))
		status = reply_error(rl, out, 403, "function 0x%s is not relayed here", sel);
	else if (!relay_limiter_take(&rl->total, (const uint8_t[32]){ 0 }, now))
		status = reply_error(rl, out, 429, "too many requests in all; try later");
	else if (q.has_subject && !relay_limiter_take(&rl->per_subject, q.subject, now))
		status = reply_error(rl, out, 429, "too many requests for this instance; try later");
	else if (rl->spent >= rl->spend_cap)
		status = reply_error(rl, out, 503, "the relayer's spending cap is reached");
	else
		status = send_request(rl, &q, name, out);
	log_info("relayer: %s %s 0x%s -> %d %.*s", req->peer, req->path, sel, status,
		 (int)(out->len < 200 ? out->len : 200), (const char *)out->data);
	relay_request_clear(&q);
	return status;
}

static int handle(void *ctx, const struct http_request *req, struct buf *out)
{
	struct relayer *rl = ctx;

	if (!strcmp(req->method, "GET") && !strcmp(req->path, "/health"))
		return reply_health(rl, out);
	if (strcmp(req->method, "POST"))
		return reply_error(rl, out, 405, "POST a {\"to\",\"data\"} JSON body");
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
	return cluster_parse_u64(a->value, out) < 0 || !*out || *out > max
		? cli_bad_value(a, "a number in range") : 0;
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
	case O_PASSWORD_FILE: o->key.password_file = a->value; return 0;
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
		return cluster_parse_wei(a->value, &rl->spend_cap) < 0 || !rl->spend_cap
			? cli_bad_value(a, "a non-zero amount (0.1ether)") : 0;
	case O_MAX_FEE:
		return cluster_parse_wei(a->value, &rl->caps.max_fee_per_gas) < 0 ||
				       !rl->caps.max_fee_per_gas
			? cli_bad_value(a, "a non-zero amount (100gwei)") : 0;
	case O_MAX_COST:
		return cluster_parse_wei(a->value, &rl->max_cost) < 0 || !rl->max_cost
			? cli_bad_value(a, "a non-zero amount (0.01ether)") : 0;
	}
	return 0;
}

static int setup(struct relayer *rl, struct relayer_opts *o)
{
	uint64_t served;
	int r;

	if (!o->rpc)
		return cli_usage_error(&cmd, "no RPC endpoint (--rpc or ETH_RPC_URL)");
	if (!o->contract_hex || cluster_parse_address(o->contract_hex, rl->contract) < 0)
		return cli_usage_error(&cmd, "--contract ADDR (or CLUSTER_CONTRACT): the cluster "
				       "contract, a 20-byte 0x address");
	if (!rl->nallowed) {
		/* The calls a node signs with its own key: the contract checks that signature,
		 * so relaying them lets nobody act for a node it is not. */
		add_allowed(rl, REGISTRY_REGISTER_SIG);
		for (size_t i = 0; i < ARRAY_SIZE(registry_leader_call_sigs); i++)
			add_allowed(rl, registry_leader_call_sigs[i]);
	}
	if (relay_limiter_init(&rl->per_subject, SUBJECT_SLOTS, (uint32_t)o->per_instance,
			       o->window_s * 1000) < 0 ||
	    relay_limiter_init(&rl->total, 1, (uint32_t)o->total, o->window_s * 1000) < 0)
		return CLI_EXIT_FAILURE;
	rl->max_data = o->max_body;
	if (cluster_load_key(&o->key, &rl->sk, rl->from) < 0)
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
	rl->caps.chain_id = served;
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
					      .deadline_ms = 5000, .handler = handle, .ctx = rl },
		       fds, n, &wait_mask, &stop_requested);
	while (n--)
		close(fds[n]);
	log_info("relayer: stopped; %" PRIu64 " sent, %" PRIu64 " refused, %" PRIu64 " wei spent",
		 rl->sent, rl->refused, rl->spent);
	return r < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

int cmd_relayer(int argc, char **argv)
{
	struct relayer rl = { .spend_cap = DEFAULT_SPEND_CAP, .max_cost = DEFAULT_MAX_COST,
			      .caps = { .max_fee_per_gas = CLUSTER_DEFAULT_MAX_FEE } };
	struct relayer_opts o = { .rpc = getenv("ETH_RPC_URL"),
				  .contract_hex = getenv("CLUSTER_CONTRACT"),
				  .key = { .key_file = getenv("DSTACK_P2P_KEY_FILE") },
				  .per_instance = 5, .total = 60, .window_s = 60, .max_body = 17000 };
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
	relay_limiter_clear(&rl.per_subject);
	relay_limiter_clear(&rl.total);
	eth_rpc_free(rl.rpc);
	return status;
}
