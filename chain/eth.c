/* SPDX-License-Identifier: MIT */
/* Typed Ethereum JSON-RPC methods over the client in rpc.c: blocks, calls, fees, txs, logs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "chain/internal.h"

/* ---- parsing of reply values ------------------------------------------------------------ */

int eth_parse_quantity(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 2;

	if (len < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return -EINVAL;
	while (i < len - 1 && s[i] == '0')
		i++;
	if (len - i > 16)
		return -ERANGE;
	for (; i < len; i++) {
		int d = hex_digit(s[i]);

		if (d < 0)
			return -EINVAL;
		v = (v << 4) | (uint64_t)d;
	}
	*out = v;
	return 0;
}

int eth_parse_data(const char *s, size_t len, size_t max, uint8_t **out, size_t *out_len)
{
	uint8_t *p;
	int r;

	if (len < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || len % 2)
		return -EINVAL;
	if ((len - 2) / 2 > max)
		return -EMSGSIZE;
	p = malloc((len - 2) / 2 + 1);
	if (!p)
		return -ENOMEM;
	r = hex_decode(p, (len - 2) / 2, s, len);
	if (r < 0) {
		free(p);
		return r;
	}
	*out = p;
	*out_len = (size_t)r;
	return 0;
}

/* The text of string member key of object obj. */
static int field_text(const struct json *j, int obj, const char *key, const char **s, size_t *n)
{
	int i = json_get(j, obj, key);

	if (i < 0 || j->tok[i].type != JSON_STRING)
		return -EBADMSG;
	*s = json_raw(j, i, n);
	return 0;
}

static int field_quantity(const struct json *j, int obj, const char *key, uint64_t *out)
{
	const char *s;
	size_t n;

	if (field_text(j, obj, key, &s, &n) < 0 || eth_parse_quantity(s, n, out) < 0)
		return -EBADMSG;
	return 0;
}

static int field_bytes(const struct json *j, int obj, const char *key, uint8_t *out, size_t len)
{
	const char *s;
	size_t n;

	if (field_text(j, obj, key, &s, &n) < 0 || hex_decode_exact(out, len, s, n) < 0)
		return -EBADMSG;
	return 0;
}

static bool field_is_null_or_missing(const struct json *j, int obj, const char *key)
{
	int i = json_get(j, obj, key);

	return i < 0 || json_is_null(j, i);
}

/* Parse text that must be one JSON object (a block, a receipt). */
static int parse_object(struct json *j, const char *text, size_t len)
{
	int r = json_parse(j, text, len, 0);

	if (r < 0)
		return r == -ENOMEM ? r : -EBADMSG;
	if (j->ntok < 1 || j->tok[0].type != JSON_OBJECT) {
		json_clear(j);
		return -EBADMSG;
	}
	return 0;
}

int eth_parse_block(const char *text, size_t len, struct eth_block *b)
{
	struct json j = { 0 };
	int r;

	memset(b, 0, sizeof(*b));
	r = parse_object(&j, text, len);
	if (r < 0)
		return r;
	r = -EBADMSG;
	if (field_quantity(&j, 0, "number", &b->number) < 0 ||
	    field_bytes(&j, 0, "hash", b->hash, 32) < 0 ||
	    field_bytes(&j, 0, "parentHash", b->parent_hash, 32) < 0 ||
	    field_quantity(&j, 0, "timestamp", &b->timestamp) < 0)
		goto out;
	if (!field_is_null_or_missing(&j, 0, "baseFeePerGas") &&
	    field_quantity(&j, 0, "baseFeePerGas", &b->base_fee_per_gas) < 0)
		goto out;
	r = 0;
out:
	json_clear(&j);
	return r;
}

static void log_clear(struct eth_log *l)
{
	free(l->data);
	memset(l, 0, sizeof(*l));
}

void eth_logs_free(struct eth_log *logs, size_t n)
{
	if (!logs)
		return;
	for (size_t i = 0; i < n; i++)
		log_clear(&logs[i]);
	free(logs);
}

static int parse_one_log(const struct json *j, int obj, struct eth_log *l)
{
	int topics, i;
	const char *s;
	size_t n;

	memset(l, 0, sizeof(*l));
	if (j->tok[obj].type != JSON_OBJECT)
		return -EBADMSG;
	if (field_bytes(j, obj, "address", l->address, 20) < 0 ||
	    field_quantity(j, obj, "blockNumber", &l->block_number) < 0 ||
	    field_bytes(j, obj, "blockHash", l->block_hash, 32) < 0 ||
	    field_bytes(j, obj, "transactionHash", l->tx_hash, 32) < 0 ||
	    field_quantity(j, obj, "logIndex", &l->log_index) < 0)
		return -EBADMSG;
	topics = json_get(j, obj, "topics");
	if (topics < 0 || j->tok[topics].type != JSON_ARRAY || j->tok[topics].size > 4)
		return -EBADMSG;
	for (int t = 0; t < j->tok[topics].size; t++) {
		i = json_array_at(j, topics, t);
		if (i < 0 || j->tok[i].type != JSON_STRING)
			return -EBADMSG;
		s = json_raw(j, i, &n);
		if (hex_decode_exact(l->topics[t], 32, s, n) < 0)
			return -EBADMSG;
		l->ntopics++;
	}
	i = json_get(j, obj, "removed");
	if (i >= 0 && json_bool(j, i, &l->removed) < 0)
		return -EBADMSG;
	i = json_get(j, obj, "data");
	if (i < 0 || j->tok[i].type != JSON_STRING)
		return -EBADMSG;
	s = json_raw(j, i, &n);
	return eth_parse_data(s, n, n, &l->data, &l->data_len) < 0 ? -EBADMSG : 0;
}

/* A log object and its 7 required members: address, blockNumber, blockHash, transactionHash,
 * logIndex, topics, data; each member is a key and a value. */
#define LOG_MIN_TOKENS 15

int eth_parse_logs(const char *text, size_t len, struct eth_log **logs, size_t *count)
{
	struct json j = { 0 };
	struct eth_log *grown;
	size_t base = *count;
	int r;

	r = json_parse(&j, text, len, 1 << 20);
	if (r < 0)
		return r == -ENOMEM ? r : -EBADMSG;
	r = -EBADMSG;
	if (j.ntok < 1 || j.tok[0].type != JSON_ARRAY)
		goto out;
	if (j.tok[0].size == 0) {
		r = 0;
		goto out;
	}
	/*
	 * A log is an object of at least 7 members (15 tokens). An array claiming more logs
	 * than its tokens can hold is not a log list; refusing it keeps "{}," * 2^20 (3 MB)
	 * from costing a 250 MB allocation.
	 */
	if (j.tok[0].size > (j.ntok - 1) / LOG_MIN_TOKENS)
		goto out;
	grown = realloc(*logs, (base + (size_t)j.tok[0].size) * sizeof(**logs));
	if (!grown) {
		r = -ENOMEM;
		goto out;
	}
	*logs = grown;
	/* Walk the elements in order: json_array_at per element would be quadratic. */
	for (int e = 0, obj = 1; e < j.tok[0].size; e++, obj = json_skip(&j, obj)) {
		r = obj >= j.ntok ? -EBADMSG : parse_one_log(&j, obj, &grown[base + (size_t)e]);
		if (r < 0) {
			/* Keep the ones before; drop the half-parsed one and everything after. */
			log_clear(&grown[base + (size_t)e]);
			*count = base + (size_t)e;
			goto out;
		}
	}
	*count = base + (size_t)j.tok[0].size;
	r = 0;
out:
	json_clear(&j);
	return r;
}

/* ---- requests ------------------------------------------------------------------------ */

void eth_block_tag(char tag[static ETH_BLOCK_TAG_MAX], uint64_t number)
{
	snprintf(tag, ETH_BLOCK_TAG_MAX, "0x%llx", (unsigned long long)number);
}

/* A tag goes into the request JSON verbatim: only names and 0x-numbers get there. */
static bool valid_block_tag(const char *tag)
{
	static const char *names[] = { "latest", "pending", "safe", "finalized", "earliest" };
	uint64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcmp(tag, names[i]))
			return true;
	return strlen(tag) < ETH_BLOCK_TAG_MAX && eth_parse_quantity(tag, strlen(tag), &v) == 0;
}

/* "0x" + hex of n bytes, malloc'd. */
static char *hex_string(const void *p, size_t n)
{
	char *s = malloc(2 * n + 3);

	if (!s)
		return NULL;
	s[0] = '0';
	s[1] = 'x';
	hex_encode(s + 2, p, n);
	return s;
}

/* A call whose result must be a quantity. */
static int call_quantity(struct eth_rpc *rpc, const char *method, const char *params,
			 uint64_t *out)
{
	struct eth_rpc_call c = { 0 };
	int r = eth_rpc_call(rpc, method, params, &c);

	if (r == 0 && (c.result_type != JSON_STRING ||
		       eth_parse_quantity(c.result, c.result_len, out) < 0)) {
		eth_rpc_set_error(rpc, "%s: result is not a quantity", method);
		r = -EBADMSG;
	}
	eth_rpc_call_clear(&c);
	return r;
}

int eth_chain_id(struct eth_rpc *rpc, uint64_t *chain_id)
{
	return call_quantity(rpc, "eth_chainId", NULL, chain_id);
}

int eth_block_number(struct eth_rpc *rpc, uint64_t *number)
{
	return call_quantity(rpc, "eth_blockNumber", NULL, number);
}

int eth_get_block(struct eth_rpc *rpc, const char *tag, struct eth_block *block)
{
	struct eth_rpc_call c = { 0 };
	char params[64];
	int r;

	if (!valid_block_tag(tag)) {
		eth_rpc_set_error(rpc, "'%.32s' is not a block tag", tag);
		return -EINVAL;
	}
	snprintf(params, sizeof(params), "[\"%s\",false]", tag);
	r = eth_rpc_call(rpc, "eth_getBlockByNumber", params, &c);
	if (r < 0)
		goto out;
	if (c.result_type == JSON_PRIMITIVE) {  /* null: no such block */
		eth_rpc_set_error(rpc, "eth_getBlockByNumber: no block %s", tag);
		r = -ENOENT;
		goto out;
	}
	r = eth_parse_block(c.result, c.result_len, block);
	if (r < 0)
		eth_rpc_set_error(rpc, "eth_getBlockByNumber %s: malformed block object", tag);
out:
	eth_rpc_call_clear(&c);
	return r;
}

/* A JSON-RPC error from a call that executes code: name the revert if there is data. */
void rpc_set_execution_error(struct eth_rpc *rpc, const char *method,
				const struct eth_rpc_call *c)
{
	char reason[512];
	uint8_t *data = NULL;
	size_t n = 0;

	if (c->data && eth_parse_data(c->data, strlen(c->data), 1 << 16, &data, &n) == 0 && n) {
		eth_describe_revert(data, n, rpc_error_table(rpc), reason, sizeof(reason));
		eth_rpc_set_error(rpc, "%s reverted: %s", method, reason);
	} else {
		eth_rpc_set_error(rpc, "%s: error %ld: %s", method, c->code,
			      c->message ? c->message : "(no message)");
	}
	free(data);
}

/* {"from":..,"to":..,"data":..} with the optional parts left out when NULL. */
static int tx_object(struct buf *b, const uint8_t *from, const uint8_t *to, const void *data,
		     size_t len)
{
	char *hex = hex_string(data, len);
	char addr[41];
	int r;

	if (!hex)
		return -ENOMEM;
	r = buf_printf(b, "{");
	if (r == 0 && from) {
		hex_encode(addr, from, 20);
		r = buf_printf(b, "\"from\":\"0x%s\",", addr);
	}
	if (r == 0 && to) {
		hex_encode(addr, to, 20);
		r = buf_printf(b, "\"to\":\"0x%s\",", addr);
	}
	if (r == 0)
		r = buf_printf(b, "\"data\":\"%s\"}", hex);
	free(hex);
	return r;
}

int eth_call_result(struct eth_rpc *rpc, const struct eth_rpc_call *c, struct buf *out)
{
	uint8_t *bytes = NULL;
	size_t n;
	int r;

	if (c->result_type != JSON_STRING ||
	    eth_parse_data(c->result, c->result_len, c->result_len, &bytes, &n) < 0) {
		eth_rpc_set_error(rpc, "eth_call: result is not hex data");
		return -EBADMSG;
	}
	r = out ? buf_append(out, bytes, n) : 0;
	free(bytes);
	return r;
}

int eth_call(struct eth_rpc *rpc, const uint8_t to[static 20], const void *data, size_t len,
	     const char *tag, struct buf *out)
{
	struct eth_rpc_call c = { 0 };
	struct buf params;
	int r;

	if (!valid_block_tag(tag)) {
		eth_rpc_set_error(rpc, "'%.32s' is not a block tag", tag);
		return -EINVAL;
	}
	buf_init(&params, 0);
	if ((r = buf_printf(&params, "[")) < 0 || (r = tx_object(&params, NULL, to, data, len)) < 0 ||
	    (r = buf_printf(&params, ",\"%s\"]", tag)) < 0)
		goto out;
	r = eth_rpc_call(rpc, "eth_call", (const char *)params.data, &c);
	if (r == -EREMOTEIO)
		rpc_set_execution_error(rpc, "eth_call", &c);
	if (r < 0)
		goto out;
	r = eth_call_result(rpc, &c, out);
out:
	buf_clear(&params);
	eth_rpc_call_clear(&c);
	return r;
}

int eth_get_code_size(struct eth_rpc *rpc, const uint8_t addr[static 20], const char *tag, size_t *size)
{
	struct eth_rpc_call c = { 0 };
	char params[96], hex[41];
	int r;

	if (!valid_block_tag(tag)) {
		eth_rpc_set_error(rpc, "'%.32s' is not a block tag", tag);
		return -EINVAL;
	}
	hex_encode(hex, addr, 20);
	snprintf(params, sizeof(params), "[\"0x%s\",\"%s\"]", hex, tag);
	r = eth_rpc_call(rpc, "eth_getCode", params, &c);
	if (r < 0)
		goto out;
	/* "0x" then two hex digits a byte: only the length matters, the digits must be hex. */
	if (c.result_type != JSON_STRING || c.result_len < 2 || c.result_len % 2 ||
	    memcmp(c.result, "0x", 2) ||
	    strspn(c.result + 2, "0123456789abcdefABCDEF") < c.result_len - 2) {
		eth_rpc_set_error(rpc, "eth_getCode: result is not hex data");
		r = -EBADMSG;
		goto out;
	}
	*size = (c.result_len - 2) / 2;
out:
	eth_rpc_call_clear(&c);
	return r;
}

int eth_get_transaction_count(struct eth_rpc *rpc, const uint8_t addr[static 20], const char *tag,
			      uint64_t *nonce)
{
	char params[96], hex[41];

	if (!valid_block_tag(tag)) {
		eth_rpc_set_error(rpc, "'%.32s' is not a block tag", tag);
		return -EINVAL;
	}
	hex_encode(hex, addr, 20);
	snprintf(params, sizeof(params), "[\"0x%s\",\"%s\"]", hex, tag);
	return call_quantity(rpc, "eth_getTransactionCount", params, nonce);
}

int eth_estimate_gas(struct eth_rpc *rpc, const uint8_t from[static 20], const uint8_t *to,
		     const void *data, size_t len, uint64_t *gas)
{
	struct eth_rpc_call c = { 0 };
	struct buf params;
	int r;

	buf_init(&params, 0);
	if ((r = buf_printf(&params, "[")) < 0 || (r = tx_object(&params, from, to, data, len)) < 0 ||
	    (r = buf_printf(&params, "]")) < 0)
		goto out;
	r = eth_rpc_call(rpc, "eth_estimateGas", (const char *)params.data, &c);
	if (r == -EREMOTEIO)
		rpc_set_execution_error(rpc, "eth_estimateGas", &c);
	if (r < 0)
		goto out;
	if (c.result_type != JSON_STRING || eth_parse_quantity(c.result, c.result_len, gas) < 0) {
		eth_rpc_set_error(rpc, "eth_estimateGas: result is not a quantity");
		r = -EBADMSG;
	}
out:
	buf_clear(&params);
	eth_rpc_call_clear(&c);
	return r;
}

int eth_suggest_fees(struct eth_rpc *rpc, uint64_t *max_fee, uint64_t *priority_fee)
{
	struct eth_rpc_call c[2] = {
		{ .method = "eth_maxPriorityFeePerGas" },
		{ .method = "eth_getBlockByNumber", .params = "[\"latest\",false]" },
	};
	struct eth_block latest;
	uint64_t tip, price;
	int r;

	r = eth_rpc_batch(rpc, c, 2);
	if (r < 0)
		goto out;
	if (c[1].error || c[1].result_type != JSON_OBJECT ||
	    eth_parse_block(c[1].result, c[1].result_len, &latest) < 0) {
		eth_rpc_set_error(rpc, "eth_getBlockByNumber latest: no usable block");
		r = -EBADMSG;
		goto out;
	}
	if (c[0].error == 0 && c[0].result_type == JSON_STRING &&
	    eth_parse_quantity(c[0].result, c[0].result_len, &tip) == 0 && latest.base_fee_per_gas) {
		/* Room for the base fee to double before the transaction is priced out. */
		if (latest.base_fee_per_gas > (UINT64_MAX - tip) / 2) {
			r = -ERANGE;
			goto out;
		}
		*priority_fee = tip;
		*max_fee = 2 * latest.base_fee_per_gas + tip;
		goto out;
	}
	r = call_quantity(rpc, "eth_gasPrice", NULL, &price);
	if (r < 0)
		goto out;
	*priority_fee = price;
	*max_fee = price;
out:
	eth_rpc_call_clear(&c[0]);
	eth_rpc_call_clear(&c[1]);
	return r;
}

int eth_send_raw_transaction(struct eth_rpc *rpc, const void *raw, size_t len,
			     uint8_t tx_hash[static 32])
{
	struct eth_rpc_call c = { 0 };
	char *hex = hex_string(raw, len);
	struct buf params;
	int r;

	buf_init(&params, 0);
	if (!hex)
		return -ENOMEM;
	r = buf_printf(&params, "[\"%s\"]", hex);
	if (r < 0)
		goto out;
	r = eth_rpc_call(rpc, "eth_sendRawTransaction", (const char *)params.data, &c);
	if (r == -EREMOTEIO)
		rpc_set_execution_error(rpc, "eth_sendRawTransaction", &c);
	if (r < 0)
		goto out;
	if (c.result_type != JSON_STRING || hex_decode_exact(tx_hash, 32, c.result, c.result_len) < 0) {
		eth_rpc_set_error(rpc, "eth_sendRawTransaction: result is not a transaction hash");
		r = -EBADMSG;
	}
out:
	free(hex);
	buf_clear(&params);
	eth_rpc_call_clear(&c);
	return r;
}

static int parse_receipt(const char *text, size_t len, struct eth_receipt *rc)
{
	struct json j = { 0 };
	uint64_t status;
	int r;

	memset(rc, 0, sizeof(*rc));
	r = parse_object(&j, text, len);
	if (r < 0)
		return r;
	r = -EBADMSG;
	if (field_bytes(&j, 0, "transactionHash", rc->tx_hash, 32) < 0 ||
	    field_quantity(&j, 0, "blockNumber", &rc->block_number) < 0 ||
	    field_bytes(&j, 0, "blockHash", rc->block_hash, 32) < 0 ||
	    field_quantity(&j, 0, "status", &status) < 0 ||
	    field_quantity(&j, 0, "gasUsed", &rc->gas_used) < 0)
		goto out;
	rc->success = status == 1;
	if (!field_is_null_or_missing(&j, 0, "contractAddress")) {
		if (field_bytes(&j, 0, "contractAddress", rc->contract_address, 20) < 0)
			goto out;
		rc->has_contract_address = true;
	}
	r = 0;
out:
	json_clear(&j);
	return r;
}

int eth_get_receipt(struct eth_rpc *rpc, const uint8_t tx_hash[static 32], struct eth_receipt *rc)
{
	struct eth_rpc_call c = { 0 };
	char params[80], hex[65];
	int r;

	hex_encode(hex, tx_hash, 32);
	snprintf(params, sizeof(params), "[\"0x%s\"]", hex);
	r = eth_rpc_call(rpc, "eth_getTransactionReceipt", params, &c);
	if (r < 0)
		goto out;
	if (c.result_type == JSON_PRIMITIVE) {
		r = -ENOENT;
		goto out;
	}
	r = parse_receipt(c.result, c.result_len, rc);
	if (r < 0)
		eth_rpc_set_error(rpc, "eth_getTransactionReceipt: malformed receipt");
out:
	eth_rpc_call_clear(&c);
	return r;
}

int eth_wait_receipt(struct eth_rpc *rpc, const uint8_t tx_hash[static 32], long timeout_ms,
		     long poll_ms, struct eth_receipt *rc)
{
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	long wait = 20;
	struct timespec ts;
	int r;

	if (poll_ms <= 0)
		poll_ms = 500;
	for (;;) {
		r = eth_get_receipt(rpc, tx_hash, rc);
		if (r != -ENOENT)
			return r;
		if (now_ms() + (uint64_t)wait > deadline)
			break;
		ts.tv_sec = wait / 1000;
		ts.tv_nsec = (wait % 1000) * 1000000L;
		nanosleep(&ts, NULL);
		/* Dev chains mine at once, real ones every few seconds: start fast, back off. */
		wait = wait * 2 > poll_ms ? poll_ms : wait * 2;
	}
	eth_rpc_set_error(rpc, "no receipt within %ld ms", timeout_ms);
	return -ETIMEDOUT;
}

/* Providers word "range too large" in many ways; these are the ones seen in the wild. */
static bool is_range_limit_error(const struct eth_rpc_call *c)
{
	static const char *hints[] = { "range", "limit", "too many", "too large", "exceed",
				       "max results", "query returned more than" };

	if (c->code == -32005)  /* Infura and others: limit exceeded */
		return true;
	for (size_t i = 0; c->message && i < ARRAY_SIZE(hints); i++)
		if (strcasestr(c->message, hints[i]))
			return true;
	return false;
}

int eth_get_logs(struct eth_rpc *rpc, const struct eth_log_filter *f, struct eth_log **logs,
		 size_t *n)
{
	uint64_t from = f->from_block, range = eth_rpc_max_log_range(rpc);
	char addr[41] = "", topic[65] = "";
	struct buf params;
	int r = 0;

	if (f->from_block > f->to_block)
		return -EINVAL;
	if (f->address)
		hex_encode(addr, f->address, 20);
	if (f->topic0)
		hex_encode(topic, f->topic0, 32);
	buf_init(&params, 0);
	for (;;) {
		struct eth_rpc_call c = { 0 };
		uint64_t end = f->to_block - from < range - 1 ? f->to_block : from + range - 1;

		buf_reset(&params);
		r = buf_printf(&params, "[{\"fromBlock\":\"0x%llx\",\"toBlock\":\"0x%llx\"",
			       (unsigned long long)from, (unsigned long long)end);
		if (r == 0 && f->address)
			r = buf_printf(&params, ",\"address\":\"0x%s\"", addr);
		if (r == 0 && f->topic0)
			r = buf_printf(&params, ",\"topics\":[\"0x%s\"]", topic);
		if (r == 0)
			r = buf_printf(&params, "}]");
		if (r < 0)
			break;
		r = eth_rpc_call(rpc, "eth_getLogs", (const char *)params.data, &c);
		if (r == -EREMOTEIO && range > 1 && is_range_limit_error(&c)) {
			/* Each halving shrinks the range for good: at most 64 of them. */
			range /= 2;
			eth_rpc_call_clear(&c);
			continue;
		}
		if (r == 0 && (c.result_type != JSON_ARRAY ||
			       eth_parse_logs(c.result, c.result_len, logs, n) < 0)) {
			eth_rpc_set_error(rpc, "eth_getLogs %llu..%llu: malformed log list",
				      (unsigned long long)from, (unsigned long long)end);
			r = -EBADMSG;
		}
		eth_rpc_call_clear(&c);
		if (r < 0 || end == f->to_block)
			break;
		from = end + 1;
	}
	buf_clear(&params);
	return r;
}
