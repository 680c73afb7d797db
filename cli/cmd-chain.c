/* SPDX-License-Identifier: MIT */
/* dstack-p2p chain: look at the chain and the registry the way the agent does, for debugging. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain/chain.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cluster.h"
#include "common/common.h"
#include "registry/registry.h"

#define RECORD_FILE_MAX (64 << 10)

struct chain_opts {
	const char *rpc;
	const char *contract_hex;
	uint8_t contract[20];
	long timeout_ms;
	uint64_t expected_chain_id;
	uint64_t max_log_range;
	const char *block;
	const char *record;
	const char *calldata;
	const char *key_env;
	uint64_t from, to;
	bool have_from, have_to;
	uint64_t gas_limit;
	long interval_ms;
	long count;
	bool json;
};

enum { O_RPC = 256, O_CONTRACT, O_CHAIN_ID, O_TIMEOUT, O_RANGE, O_BLOCK, O_RECORD,
       O_CALLDATA, O_KEY_ENV, O_FROM, O_TO, O_INTERVAL, O_COUNT, O_JSON, O_GAS_LIMIT };

static const struct cli_opt opts[] = {
	CLI_OPT_RPC(O_RPC),
	CLI_OPT_CONTRACT(O_CONTRACT),
	CLI_OPT_CHAIN_ID(O_CHAIN_ID),
	{ "timeout", O_TIMEOUT, "MS", "per request (default 10000)" },
	{ "max-log-range", O_RANGE, "N", "blocks per eth_getLogs request (default 10000)" },
	{ "key-env", O_KEY_ENV, "NAME", "environment variable holding the paying key (ETH_PRIVATE_KEY)" },
	{ "gas-limit", O_GAS_LIMIT, "N", "send without estimating (a revert then shows after mining)" },
	{ "json", O_JSON, NULL, "JSON output (block, peers, instance)" },
	{ "block", O_BLOCK, "TAG", "peers: read at this block (default latest)" },
	{ "from", O_FROM, "N", "logs: the first block (required)" },
	{ "to", O_TO, "M", "logs: the last block (default latest)" },
	{ "interval", O_INTERVAL, "MS", "watch: between polls (default 1000, at least 10)" },
	{ "count", O_COUNT, "N", "watch: stop after N polls (default 0: never)" },
	{ "record", O_RECORD, "FILE", "calldata, send-registration: a prepared record" },
	{ "calldata", O_CALLDATA, "FILE", "send-registration: hex calldata, as calldata prints it" },
	{ 0 },
};

static const struct cli_cmd cmd = {
	.name = "chain",
	.synopsis = "[options] <command> [args]",
	.about = "Talk to the chain and the cluster registry as the agent does.\n\n"
		 "Commands:\n"
		 "  id                          the chain id the RPC serves\n"
		 "  block [TAG]                 number, hash, parent hash, time, base fee (default latest)\n"
		 "  peers [--json] [--block T]  every live peer record (getPeers())\n"
		 "  instance ADDR               token, stored nonce and registration of an instance\n"
		 "  kms-root                    the KMS root address the contract trusts\n"
		 "  logs --from N [--to M]      the contract's logs (split into provider-sized ranges)\n"
		 "  watch [--interval MS] [--count N]\n"
		 "                              follow the registry; a line per change, totals at the end\n"
		 "  calldata --record FILE      registerPeer calldata of a prepared record, as hex\n"
		 "  send-registration (--record FILE | --calldata FILE)\n"
		 "                              send it, paid by the key in $ETH_PRIVATE_KEY",
	.opts = opts,
	.max_operands = 2,
	.footer = "A record FILE is JSON with the PeerRegistration fields of docs/registry.md:\n"
		  "instanceId, wgPublicKey, endpoint, mode, nonce, nodePubkey, appPubkey,\n"
		  "appSignature, kmsSignature, nodeSignature (bytes as 0x-hex).\n\n"
		  "Exit status: 0 ok, 1 the RPC or the transaction failed, 2 usage or configuration.",
};

/* The commands, with the operands each takes after its name. */
static const struct {
	const char *name;
	int min_args, max_args;
	bool rpc;
} actions[] = {
	{ "id", 0, 0, true }, { "block", 0, 1, true }, { "peers", 0, 0, true },
	{ "instance", 1, 1, true }, { "kms-root", 0, 0, true }, { "logs", 0, 0, true },
	{ "watch", 0, 0, true }, { "calldata", 0, 0, false }, { "send-registration", 0, 0, true },
};

/* One option's value into o; NULL, or what is wrong with it. */
static const char *set_opt(struct chain_opts *o, int c, const char *val)
{
	uint64_t v;

	switch (c) {
	case O_RPC: o->rpc = val; break;
	case O_CONTRACT: o->contract_hex = val; break;
	case O_CHAIN_ID:
		if (ops_parse_u64(val, &o->expected_chain_id) < 0)
			return "want a chain id";
		break;
	case O_TIMEOUT:
		if (ops_parse_u64(val, &v) < 0 || v > 3600000)
			return "want milliseconds, at most 3600000";
		o->timeout_ms = (long)v;
		break;
	case O_RANGE:
		if (ops_parse_u64(val, &o->max_log_range) < 0 || !o->max_log_range)
			return "want a positive number of blocks";
		break;
	case O_BLOCK: o->block = val; break;
	case O_RECORD: o->record = val; break;
	case O_CALLDATA: o->calldata = val; break;
	case O_KEY_ENV: o->key_env = val; break;
	case O_FROM:
		o->have_from = ops_parse_u64(val, &o->from) == 0;
		return o->have_from ? NULL : "want a block number";
	case O_TO:
		o->have_to = ops_parse_u64(val, &o->to) == 0;
		return o->have_to ? NULL : "want a block number";
	case O_INTERVAL:
		if (ops_parse_u64(val, &v) < 0 || v < 10 || v > 3600000)
			return "want milliseconds, 10 to 3600000";
		o->interval_ms = (long)v;
		break;
	case O_COUNT:
		if (ops_parse_u64(val, &v) < 0 || v > 1000000000)
			return "want a count, at most 1000000000";
		o->count = (long)v;
		break;
	case O_JSON: o->json = true; break;
	case O_GAS_LIMIT:
		if (ops_parse_u64(val, &o->gas_limit) < 0 || !o->gas_limit)
			return "want a positive gas limit";
		break;
	}
	return NULL;
}

/* The options into o and the command's index into *action; an exit status when that fails. */
static int parse_opts(int argc, char **argv, struct chain_opts *o, size_t *action, const char **arg)
{
	struct cli_args a;
	const char *why;
	int c, n;

	o->rpc = getenv("ETH_RPC_URL");
	o->contract_hex = getenv("CLUSTER_CONTRACT");
	o->key_env = "ETH_PRIVATE_KEY";
	o->interval_ms = 1000;
	cli_args_init(&a, &cmd, argc, argv);
	while ((c = cli_next(&a)) > 0)
		if ((why = set_opt(o, c, a.value)))
			return cli_bad_value(&a, why);
	if (c == CLI_STOP)
		return a.status;
	if (!a.n_operands)
		return cli_usage_error(&cmd, "no command given");
	for (*action = 0; *action < ARRAY_SIZE(actions); (*action)++)
		if (!strcmp(a.operands[0], actions[*action].name))
			break;
	if (*action == ARRAY_SIZE(actions))
		return cli_usage_error(&cmd, "unknown command '%s'", a.operands[0]);
	n = a.n_operands - 1;
	if (n > actions[*action].max_args)
		return cli_usage_error(&cmd, "%s: unexpected argument '%s'", a.operands[0],
				       a.operands[1 + actions[*action].max_args]);
	if (n < actions[*action].min_args)
		return cli_usage_error(&cmd, "%s: missing argument", a.operands[0]);
	*arg = n ? a.operands[1] : NULL;
	/* What each command needs of the options, before any RPC is opened. */
	if (!strcmp(a.operands[0], "logs") && !o->have_from)
		return cli_usage_error(&cmd, "logs: --from is required");
	if ((!strcmp(a.operands[0], "calldata") || !strcmp(a.operands[0], "send-registration")) &&
	    !o->record == !o->calldata)
		return cli_usage_error(&cmd, "%s: need one of --record FILE and --calldata FILE",
				       a.operands[0]);
	return -1;
}

static int need_contract(struct chain_opts *o)
{
	if (!o->contract_hex) {
		cli_error("no contract (--contract or CLUSTER_CONTRACT)");
		return -EINVAL;
	}
	if (hex_decode_exact(o->contract, 20, o->contract_hex, strlen(o->contract_hex)) < 0) {
		cli_error("contract '%s' is not a 20-byte address",
			o->contract_hex);
		return -EINVAL;
	}
	return 0;
}

static int fail(struct eth_rpc *rpc, const char *what, int r)
{
	const char *why = rpc ? eth_rpc_error(rpc) : "";

	cli_error("%s: %s", what, why[0] ? why : errstr(r));
	return 1;
}

/* ---- records as JSON ----------------------------------------------------------------- */

/* The byte fields of a record, by their Solidity names (docs/registry.md). */
static const struct {
	const char *key;
	size_t off, len;
} record_hex_fields[] = {
	{ "instanceId", offsetof(struct registry_record, instance_id), 20 },
	{ "wgPublicKey", offsetof(struct registry_record, wg_public_key), 32 },
	{ "nodePubkey", offsetof(struct registry_record, node_pubkey), 64 },
	{ "appPubkey", offsetof(struct registry_record, app_pubkey), 64 },
	{ "appSignature", offsetof(struct registry_record, app_signature), 65 },
	{ "kmsSignature", offsetof(struct registry_record, kms_signature), 65 },
	{ "nodeSignature", offsetof(struct registry_record, node_signature), 65 },
};

static int json_hex_field(const struct json *j, const char *key, uint8_t *out, size_t n)
{
	size_t len;
	const char *s;
	int i = json_get(j, 0, key);

	if (i < 0 || j->tok[i].type != JSON_STRING)
		return -ENOENT;
	s = json_raw(j, i, &len);
	return hex_decode_exact(out, n, s, len) < 0 ? -EINVAL : 0;
}

static int load_record(const char *path, struct registry_record *rec)
{
	struct json j = { 0 };
	struct buf text;
	int64_t v;
	int i, r;

	memset(rec, 0, sizeof(*rec));
	r = ops_read_file(path, &text, RECORD_FILE_MAX);
	if (r < 0) {
		cli_error("reading %s: %s", path, errstr(r));
		return r;
	}
	r = json_parse(&j, (const char *)text.data, text.len, 256);
	if (r < 0 || j.tok[0].type != JSON_OBJECT) {
		cli_error("%s is not a JSON object", path);
		r = -EINVAL;
		goto out;
	}
	for (size_t k = 0; k < ARRAY_SIZE(record_hex_fields); k++) {
		r = json_hex_field(&j, record_hex_fields[k].key, (uint8_t *)rec + record_hex_fields[k].off,
				   record_hex_fields[k].len);
		if (r < 0) {
			cli_error("%s: field %s %s (want %zu bytes of 0x-hex)",
				path, record_hex_fields[k].key, r == -ENOENT ? "missing" : "malformed",
				record_hex_fields[k].len);
			goto out;
		}
	}
	r = -EINVAL;
	i = json_get(&j, 0, "mode");
	if (i < 0 || json_int64(&j, i, &v) < 0 || v < 0 || v > REGISTRY_MODE_WIREGUARD) {
		cli_error("%s: mode must be 0 or 1", path);
		goto out;
	}
	rec->mode = (uint8_t)v;
	i = json_get(&j, 0, "nonce");
	if (i < 0 || json_int64(&j, i, &v) < 0 || v < 0) {
		cli_error("%s: nonce must be a non-negative integer", path);
		goto out;
	}
	rec->nonce = (uint64_t)v;
	i = json_get(&j, 0, "endpoint");
	if (i < 0 || json_strdup(&j, i, &rec->endpoint) < 0 ||
	    strlen(rec->endpoint) > REGISTRY_ENDPOINT_MAX) {
		cli_error("%s: endpoint missing or longer than %d bytes",
			path, REGISTRY_ENDPOINT_MAX);
		goto out;
	}
	r = 0;
out:
	if (r < 0)
		registry_record_clear(rec);
	json_clear(&j);
	buf_clear(&text);
	return r;
}

static void print_peer_json(const struct registry_record *p, struct buf *b)
{
	char hex[2 * 65 + 1];

	buf_printf(b, "{\"tokenId\":%" PRIu64 ",\"endpoint\":", p->token_id);
	json_append_string(b, p->endpoint);
	buf_printf(b, ",\"mode\":%u,\"nonce\":%" PRIu64, p->mode, p->nonce);
	for (size_t k = 0; k < ARRAY_SIZE(record_hex_fields); k++) {
		hex_encode(hex, (const uint8_t *)p + record_hex_fields[k].off, record_hex_fields[k].len);
		buf_printf(b, ",\"%s\":\"0x%s\"", record_hex_fields[k].key, hex);
	}
	buf_printf(b, "}");
}

/* ---- commands ------------------------------------------------------------------------ */

static int do_id(struct eth_rpc *rpc)
{
	uint64_t id;
	int r = eth_chain_id(rpc, &id);

	if (r < 0)
		return fail(rpc, "eth_chainId", r);
	printf("%" PRIu64 "\n", id);
	return 0;
}

static int do_block(struct eth_rpc *rpc, const char *tag, bool json)
{
	struct eth_block b;
	int r = eth_get_block(rpc, tag, &b);

	if (r < 0)
		return fail(rpc, "eth_getBlockByNumber", r);
	if (json) {
		printf("{\"number\":%" PRIu64 ",\"hash\":\"", b.number);
		cli_print_hex(stdout, b.hash, 32);
		printf("\",\"parentHash\":\"");
		cli_print_hex(stdout, b.parent_hash, 32);
		printf("\",\"timestamp\":%" PRIu64 ",\"baseFeePerGas\":%" PRIu64 "}\n", b.timestamp,
		       b.base_fee_per_gas);
		return 0;
	}
	printf("number      %" PRIu64 "\nhash        ", b.number);
	cli_print_hex(stdout, b.hash, 32);
	printf("\nparent      ");
	cli_print_hex(stdout, b.parent_hash, 32);
	printf("\ntimestamp   %" PRIu64 "\nbase fee    %" PRIu64 "\n", b.timestamp, b.base_fee_per_gas);
	return 0;
}

static void print_skips(const struct registry_skip *skips, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cli_error("skipped peer entry %zu: %s", skips[i].index,
			skips[i].reason);
}

static int do_peers(struct eth_rpc *rpc, const struct chain_opts *o)
{
	struct registry_skip skips[8];
	struct registry_record *peers;
	size_t n, nskips;
	struct buf out;
	int r;

	r = registry_read_peers(rpc, o->contract, o->block ? o->block : "latest", &peers, &n, skips,
				ARRAY_SIZE(skips), &nskips);
	if (r < 0)
		return fail(rpc, "reading the registry", r);
	print_skips(skips, nskips);
	buf_init(&out, 0);
	if (o->json)
		buf_printf(&out, "[");
	for (size_t i = 0; i < n; i++) {
		char inst[41];

		if (o->json) {
			if (i)
				buf_printf(&out, ",");
			print_peer_json(&peers[i], &out);
			continue;
		}
		hex_encode(inst, peers[i].instance_id, 20);
		buf_printf(&out, "%3" PRIu64 "  0x%s  %-9s nonce %-4" PRIu64 " %s\n", peers[i].token_id,
			   inst, peers[i].mode == REGISTRY_MODE_WIREGUARD ? "wireguard" : "tls",
			   peers[i].nonce, peers[i].endpoint);
	}
	if (o->json)
		buf_printf(&out, "]\n");
	fwrite(out.data, 1, out.len, stdout);
	buf_clear(&out);
	registry_records_free(peers, n);
	return 0;
}

static int do_instance(struct eth_rpc *rpc, const struct chain_opts *o, const char *addr_hex)
{
	uint8_t inst[20];
	uint64_t token, nonce;
	bool registered;
	int r;

	if (!addr_hex || hex_decode_exact(inst, 20, addr_hex, strlen(addr_hex)) < 0) {
		cli_error("instance: need a 20-byte instance id");
		return 2;
	}
	if ((r = registry_token_of_instance(rpc, o->contract, inst, &token)) < 0)
		return fail(rpc, "reading the instance", r);
	if ((r = registry_nonce_of(rpc, o->contract, inst, &nonce)) < 0)
		return fail(rpc, "reading the instance", r);
	if ((r = registry_instance_is_registered(rpc, o->contract, inst, &registered)) < 0)
		return fail(rpc, "reading the instance", r);
	if (o->json)
		printf("{\"token\":%" PRIu64 ",\"nonce\":%" PRIu64 ",\"registered\":%s}\n", token,
		       nonce, registered ? "true" : "false");
	else
		printf("token       %" PRIu64 "\nnonce       %" PRIu64 "\nregistered  %s\n", token,
		       nonce, registered ? "yes" : "no");
	return 0;
}

static int do_kms_root(struct eth_rpc *rpc, const struct chain_opts *o)
{
	uint8_t root[20];
	int r = registry_kms_root(rpc, o->contract, root);

	if (r < 0)
		return fail(rpc, "reading the KMS root", r);
	cli_print_hex(stdout, root, 20);
	printf("\n");
	return 0;
}

static int do_logs(struct eth_rpc *rpc, const struct chain_opts *o)
{
	struct eth_log_filter f = { .from_block = o->from, .address = o->contract };
	struct eth_log *logs = NULL;
	size_t n = 0;
	int r;

	if (!o->have_from) {
		cli_error("logs: --from is required");
		return 2;
	}
	f.to_block = o->to;
	if (!o->have_to && (r = eth_block_number(rpc, &f.to_block)) < 0)
		return fail(rpc, "eth_blockNumber", r);
	r = eth_get_logs(rpc, &f, &logs, &n);
	if (r < 0) {
		eth_logs_free(logs, n);
		return fail(rpc, "eth_getLogs", r);
	}
	for (size_t i = 0; i < n; i++) {
		printf("%" PRIu64 " %" PRIu64 " ", logs[i].block_number, logs[i].log_index);
		if (logs[i].ntopics)
			cli_print_hex(stdout, logs[i].topics[0], 32);
		printf(" %zu\n", logs[i].data_len);
	}
	eth_logs_free(logs, n);
	return 0;
}

/* One line per change: "block N 0xhash peers K reorgs R full-reads F". */
static int do_watch(struct eth_rpc *rpc, const struct chain_opts *o)
{
	struct registry_reader *reader;
	struct registry_reader_stats st;
	int r;

	r = registry_reader_new(rpc, o->contract, o->expected_chain_id, &reader);
	if (r < 0)
		return fail(NULL, "registry reader", r);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (long i = 0; !o->count || i < o->count; i++) {
		const struct eth_block *at;
		bool changed;
		size_t n, nskips;
		const struct registry_skip *skips;

		if (i)
			sleep_ms(o->interval_ms);
		r = registry_reader_poll(reader, &changed);
		if (r == -EXDEV) {
			fail(rpc, "registry", r);
			break;
		}
		if (r < 0) {
			cli_error("poll: %s", eth_rpc_error(rpc));
			continue;
		}
		if (!changed)
			continue;
		skips = registry_reader_skipped(reader, &nskips);
		print_skips(skips, nskips);
		registry_reader_peers(reader, &n);
		registry_reader_get_stats(reader, &st);
		at = registry_reader_block(reader);
		printf("block %" PRIu64 " ", at->number);
		cli_print_hex(stdout, at->hash, 32);
		printf(" peers %zu reorgs %" PRIu64 " full-reads %" PRIu64 " round-trips %" PRIu64 "\n",
		       n, st.reorgs, st.full_reads, eth_rpc_round_trips(rpc));
	}
	registry_reader_get_stats(reader, &st);
	printf("watch: %" PRIu64 " polls, %" PRIu64 " round trips, %" PRIu64 " full reads, %" PRIu64
	       " reorgs\n", st.polls, eth_rpc_round_trips(rpc), st.full_reads, st.reorgs);
	registry_reader_free(reader);
	return r == -EXDEV ? 1 : 0;
}

static int load_calldata(const struct chain_opts *o, struct buf *calldata)
{
	struct registry_record rec;
	struct buf text;
	size_t len;
	int r;

	if (o->record) {
		r = load_record(o->record, &rec);
		if (r < 0)
			return r;
		r = registry_encode_register_call(&rec, calldata);
		registry_record_clear(&rec);
		return r;
	}
	if (!o->calldata) {
		cli_error("need --record FILE or --calldata FILE");
		return -EINVAL;
	}
	r = ops_read_file(o->calldata, &text, 2 * RECORD_FILE_MAX);
	if (r < 0) {
		cli_error("reading %s: %s", o->calldata, errstr(r));
		return r;
	}
	len = strcspn((const char *)text.data, " \t\r\n");
	r = -EINVAL;
	if (len >= 2 && len % 2 == 0) {
		uint8_t *bytes = malloc(len / 2);

		r = bytes ? hex_decode(bytes, len / 2, (const char *)text.data, len) : -ENOMEM;
		if (r >= 0)
			r = buf_append(calldata, bytes, (size_t)r);
		free(bytes);
	}
	if (r < 0)
		cli_error("%s does not hold hex calldata", o->calldata);
	buf_clear(&text);
	return r < 0 ? r : 0;
}

static int do_calldata(const struct chain_opts *o)
{
	struct buf calldata;
	int r;

	buf_init(&calldata, 0);
	r = load_calldata(o, &calldata);
	if (r == 0) {
		cli_print_hex(stdout, calldata.data, calldata.len);
		printf("\n");
	}
	buf_clear(&calldata);
	return r < 0 ? 1 : 0;
}

static int do_send(struct eth_rpc *rpc, const struct chain_opts *o)
{
	struct eth_receipt rc;
	struct buf calldata;
	uint8_t *key = NULL, from[20];
	int r, status = 1;

	buf_init(&calldata, 0);
	if (cluster_load_key(&(struct ops_key_source){ .env = o->key_env }, &key, from) < 0)
		goto out;
	if (load_calldata(o, &calldata) < 0)
		goto out;
	r = eth_send_transaction(rpc, key, o->contract, calldata.data, calldata.len,
				 &(struct eth_send_opts){ .chain_id = o->expected_chain_id,
							  .gas_limit = o->gas_limit,
							  .timeout_ms = o->timeout_ms ? 4 * o->timeout_ms : 0 },
				 &rc);
	if (r < 0) {
		fail(rpc, "sending", r);
		goto out;
	}
	printf("transaction ");
	cli_print_hex(stdout, rc.tx_hash, 32);
	printf(" mined in block %" PRIu64 ", gas used %" PRIu64 "\n", rc.block_number, rc.gas_used);
	status = 0;
out:
	secret_free(key, 32);
	buf_clear(&calldata);
	return status;
}

int cmd_chain(int argc, char **argv)
{
	struct chain_opts o = { 0 };
	struct eth_rpc *rpc = NULL;
	const char *name, *arg = NULL;
	size_t action = 0;
	int r, status;

	status = parse_opts(argc, argv, &o, &action, &arg);
	if (status >= 0)
		return status;
	name = actions[action].name;
	if (!actions[action].rpc)
		return do_calldata(&o);
	if (!o.rpc) {
		cli_error("no RPC endpoint (--rpc or ETH_RPC_URL)");
		return CLI_EXIT_USAGE;
	}
	r = eth_rpc_new(&(struct eth_rpc_config){ .urls = o.rpc, .timeout_ms = o.timeout_ms,
						  .max_log_range = o.max_log_range,
						  .errors = &registry_contract_errors_explained }, &rpc);
	if (r < 0) {
		cli_error("bad --rpc '%s': %s", o.rpc, errstr(r));
		return CLI_EXIT_USAGE;
	}
	if (o.expected_chain_id) {
		uint64_t served;

		/* Checked once for every command, before anything is read or sent. */
		r = eth_chain_id(rpc, &served);
		if (r < 0 || served != o.expected_chain_id) {
			if (r < 0)
				cli_error("eth_chainId: %s",
					  eth_rpc_error(rpc)[0] ? eth_rpc_error(rpc) : errstr(r));
			else
				cli_error("the RPC serves chain %" PRIu64 ", not the expected %" PRIu64
					  " (--chain-id)", served, o.expected_chain_id);
			eth_rpc_free(rpc);
			return CLI_EXIT_FAILURE;
		}
	}
	if (!strcmp(name, "id"))
		status = do_id(rpc);
	else if (!strcmp(name, "block"))
		status = do_block(rpc, arg ? arg : "latest", o.json);
	else if (need_contract(&o) < 0)
		status = CLI_EXIT_USAGE;
	else if (!strcmp(name, "peers"))
		status = do_peers(rpc, &o);
	else if (!strcmp(name, "instance"))
		status = do_instance(rpc, &o, arg);
	else if (!strcmp(name, "kms-root"))
		status = do_kms_root(rpc, &o);
	else if (!strcmp(name, "logs"))
		status = do_logs(rpc, &o);
	else if (!strcmp(name, "watch"))
		status = do_watch(rpc, &o);
	else
		status = do_send(rpc, &o);
	eth_rpc_free(rpc);
	return status;
}
