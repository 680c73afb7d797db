/* SPDX-License-Identifier: MIT */
/*
 * The JSON-RPC client: endpoints with failover, bounded retries with backoff, batches in
 * one round trip, and the parser that matches replies to requests by id.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain/internal.h"
#include "net/net.h"

#define RPC_DEFAULT_TIMEOUT_MS 10000
#define RPC_DEFAULT_RETRIES 2
#define RPC_DEFAULT_BACKOFF_MS 200
#define RPC_MAX_RETRIES 10
#define RPC_MAX_BACKOFF_MS 5000
#define RPC_DEFAULT_MAX_REPLY (32u << 20)
#define RPC_DEFAULT_LOG_RANGE 10000
/* JSON tokens per reply (16 bytes each): room for tens of thousands of logs. */
#define RPC_MAX_TOKENS (1 << 20)

struct rpc_endpoint {
	enum rpc_transport transport;
	char *label;  /* for messages: the URL without its path, which often holds an API key */
	char *target; /* URL (RPC_HTTP) or socket path */
	bool no_batches; /* it answered a batch with one error object: send it calls one by one */
	struct http_conn *conn; /* HTTP transports: the kept connection, reused poll after poll */
};

struct eth_rpc {
	struct rpc_endpoint ep[RPC_URLS_MAX];
	size_t nep;
	size_t current;          /* the endpoint that answered last: tried first */
	long timeout_ms;
	unsigned retries;
	long backoff_ms;
	size_t max_reply;
	uint64_t max_log_range;
	const volatile sig_atomic_t *abort_flag;
	const struct eth_error_table *errors;
	uint64_t next_id;
	uint64_t round_trips;
	struct eth_rpc_stats stats;
	char last_error[512];
};

void eth_rpc_set_error(struct eth_rpc *rpc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rpc->last_error, sizeof(rpc->last_error), fmt, ap);
	va_end(ap);
}

const struct eth_error_table *rpc_error_table(const struct eth_rpc *rpc)
{
	return rpc->errors;
}

const char *eth_rpc_error(const struct eth_rpc *rpc)
{
	return rpc->last_error;
}

uint64_t eth_rpc_round_trips(const struct eth_rpc *rpc)
{
	return rpc->round_trips;
}

uint64_t eth_rpc_max_log_range(const struct eth_rpc *rpc)
{
	return rpc->max_log_range;
}

void eth_rpc_get_stats(const struct eth_rpc *rpc, struct eth_rpc_stats *out)
{
	*out = rpc->stats;
}

void eth_rpc_stats_add(struct eth_rpc_stats *sum, const struct eth_rpc_stats *s)
{
	sum->calls += s->calls;
	for (size_t k = 0; k < ETH_RPC_FAULTS; k++)
		sum->errors[k] += s->errors[k];
	sum->tx_sent += s->tx_sent;
	sum->tx_gas_limit += s->tx_gas_limit;
	sum->tx_mined += s->tx_mined;
	sum->tx_reverted += s->tx_reverted;
	sum->tx_gas_used += s->tx_gas_used;
}

struct eth_rpc_stats *rpc_stats(struct eth_rpc *rpc)
{
	return &rpc->stats;
}

const char *eth_rpc_fault_name(enum eth_rpc_fault kind)
{
	static const char *const names[ETH_RPC_FAULTS] = {
		[ETH_RPC_TIMEOUT] = "timeout",
		[ETH_RPC_HTTP_STATUS] = "http_status",
		[ETH_RPC_JSONRPC_ERROR] = "jsonrpc_error",
		[ETH_RPC_MALFORMED] = "malformed",
		[ETH_RPC_CONNECTION] = "connection",
	};

	return (unsigned)kind < ETH_RPC_FAULTS ? names[kind] : "unknown";
}

/* A transport failure of one exchange, by kind; a caller stopping is none. */
static void count_transport_fault(struct eth_rpc *rpc, int r)
{
	if (r == -ECANCELED)
		return;
	rpc->stats.errors[r == -ETIMEDOUT  ? ETH_RPC_TIMEOUT
			  : r == -EMSGSIZE ? ETH_RPC_MALFORMED
					   : ETH_RPC_CONNECTION]++;
}

/* The calls of a batch that came back with an error, by kind. */
static void count_call_faults(struct eth_rpc *rpc, const struct eth_rpc_call *calls, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (calls[k].error)
			rpc->stats.errors[calls[k].error == -EREMOTEIO ? ETH_RPC_JSONRPC_ERROR
								       : ETH_RPC_MALFORMED]++;
}

/*
 * "https://user:pw@host:port/v3/KEY" -> "https://host:port/...": credentials and API keys
 * stay out of messages and logs. Socket paths stay whole.
 */
static char *redacted_label(const char *url, enum rpc_transport t)
{
	const char *scheme_end, *host, *rest, *at;
	struct buf b;

	if (t != RPC_HTTP)
		return strdup(url);
	scheme_end = strstr(url, "://");
	host = scheme_end ? scheme_end + 3 : url;
	rest = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(rest - host));
	if (at)
		host = at + 1;
	buf_init(&b, 0);
	if (buf_printf(&b, "%.*s%.*s%s", (int)(scheme_end ? scheme_end + 3 - url : 0), url,
		       (int)(rest - host), host, *rest && rest[1] ? "/..." : "") < 0) {
		buf_clear(&b);
		return NULL;
	}
	return (char *)b.data;  /* buf keeps its bytes NUL-terminated; free() releases it */
}

static int url_parse(struct rpc_url *u, const char *spec, size_t n)
{
	static const struct { const char *prefix; enum rpc_transport t; bool keep; } kinds[] = {
		{ "http://", RPC_HTTP, true },
		{ "https://", RPC_HTTP, true },
		{ "http+unix://", RPC_HTTP_UNIX, false },
		{ "ipc://", RPC_IPC, false },
		{ "/", RPC_IPC, true },
	};

	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		size_t plen = strlen(kinds[i].prefix);

		if (n < plen || strncmp(spec, kinds[i].prefix, plen))
			continue;
		if (!kinds[i].keep) {
			spec += plen;
			n -= plen;
		}
		if (n >= sizeof(u->target))
			return -ENAMETOOLONG;
		u->transport = kinds[i].t;
		memcpy(u->target, spec, n);
		u->target[n] = '\0';
		return n ? 0 : -EINVAL;
	}
	return -EINVAL;
}

int rpc_url_list_parse(const char *urls, struct rpc_url_list *out)
{
	const char *p;
	int r;

	out->n = 0;
	for (p = urls; *p;) {
		size_t n = strcspn(p, ",");
		size_t lead = strspn(p, " \t");

		if (n > lead) {
			size_t len = n - lead;

			while (len && (p[lead + len - 1] == ' ' || p[lead + len - 1] == '\t'))
				len--;
			if (out->n == RPC_URLS_MAX) {
				out->n = 0;
				return -E2BIG;
			}
			r = url_parse(&out->url[out->n++], p + lead, len);
			if (r < 0) {
				out->n = 0;
				return r;
			}
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return out->n ? 0 : -EINVAL;
}

static int endpoint_open(struct rpc_endpoint *ep, const struct rpc_url *u)
{
	ep->transport = u->transport;
	ep->target = strdup(u->target);
	if (!ep->target)
		return -ENOMEM;
	ep->label = redacted_label(ep->target, ep->transport);
	if (!ep->label)
		return -ENOMEM;
	if (ep->transport != RPC_IPC && http_conn_new(&ep->conn) < 0)
		return -ENOMEM;
	return 0;
}

static int endpoints_open(struct eth_rpc *rpc, const struct eth_rpc_config *cfg)
{
	struct rpc_url_list *own = NULL;
	const struct rpc_url_list *list = cfg->list;
	int r = 0;

	if (!list) {
		if (!cfg->urls)
			return -EINVAL;
		own = malloc(sizeof(*own));
		if (!own)
			return -ENOMEM;
		r = rpc_url_list_parse(cfg->urls, own);
		list = own;
	}
	for (size_t i = 0; r == 0 && i < list->n; i++)
		r = endpoint_open(&rpc->ep[rpc->nep++], &list->url[i]);
	if (r == 0 && !rpc->nep)
		r = -EINVAL;
	free(own);
	return r;
}

int eth_rpc_new(const struct eth_rpc_config *cfg, struct eth_rpc **out)
{
	struct eth_rpc *rpc;
	int r;

	*out = NULL;
	if (!cfg->list && (!cfg->urls || !cfg->urls[0]))
		return -EINVAL;
	rpc = calloc(1, sizeof(*rpc));
	if (!rpc)
		return -ENOMEM;
	rpc->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : RPC_DEFAULT_TIMEOUT_MS;
	rpc->retries = cfg->retries > 0 ? (unsigned)cfg->retries
		       : cfg->retries < 0 ? 0 : RPC_DEFAULT_RETRIES;
	if (rpc->retries > RPC_MAX_RETRIES)
		rpc->retries = RPC_MAX_RETRIES;
	rpc->backoff_ms = cfg->backoff_ms > 0 ? cfg->backoff_ms : RPC_DEFAULT_BACKOFF_MS;
	if (rpc->backoff_ms > RPC_MAX_BACKOFF_MS)
		rpc->backoff_ms = RPC_MAX_BACKOFF_MS;
	rpc->max_reply = cfg->max_reply ? cfg->max_reply : RPC_DEFAULT_MAX_REPLY;
	rpc->max_log_range = cfg->max_log_range ? cfg->max_log_range : RPC_DEFAULT_LOG_RANGE;
	rpc->abort_flag = cfg->abort_flag;
	rpc->errors = cfg->errors;
	rpc->next_id = 1;
	r = endpoints_open(rpc, cfg);
	if (r < 0) {
		eth_rpc_free(rpc);
		return r;
	}
	*out = rpc;
	return 0;
}

const char *eth_rpc_current_label(const struct eth_rpc *rpc)
{
	return rpc->ep[rpc->current].label;
}

void eth_rpc_distrust_current(struct eth_rpc *rpc)
{
	rpc->current = (rpc->current + 1) % rpc->nep;
}

void eth_rpc_free(struct eth_rpc *rpc)
{
	if (!rpc)
		return;
	for (size_t i = 0; i < rpc->nep; i++) {
		free(rpc->ep[i].label);
		free(rpc->ep[i].target);
		http_conn_free(rpc->ep[i].conn);
	}
	free(rpc);
}

void eth_rpc_call_clear(struct eth_rpc_call *c)
{
	if (!c)
		return;
	free(c->result);
	free(c->message);
	free(c->data);
	c->result = c->message = c->data = NULL;
	c->result_len = 0;
	c->result_type = 0;
	c->error = 0;
	c->code = 0;
}

/* ---- the reply parser ---------------------------------------------------------------- */

static int dup_raw(const struct json *j, int i, char **out, size_t *len)
{
	size_t n;
	const char *s = json_raw(j, i, &n);

	*out = strndup(s, n);
	if (!*out)
		return -ENOMEM;
	if (len)
		*len = n;
	return 0;
}

static int fill_error(struct eth_rpc_call *c, const struct json *j, int err)
{
	int i;
	int64_t code;

	c->error = -EREMOTEIO;
	if (j->tok[err].type != JSON_OBJECT) {
		c->error = -EPROTO;
		return 0;
	}
	i = json_get(j, err, "code");
	if (i >= 0 && json_int64(j, i, &code) == 0)
		c->code = code;
	i = json_get(j, err, "message");
	if (i >= 0 && j->tok[i].type == JSON_STRING && json_strdup(j, i, &c->message) == -ENOMEM)
		return -ENOMEM;
	/* The text goes into eth_rpc_error and from there into logs: nothing a terminal acts on. */
	for (char *m = c->message; m && *m; m++)
		if ((unsigned char)*m < 0x20 || *m == 0x7f)
			*m = '?';
	i = json_get(j, err, "data");
	if (i >= 0 && !json_is_null(j, i))
		return dup_raw(j, i, &c->data, NULL);
	return 0;
}

/* One reply object: find its request by id and store the result or error there. */
static int take_reply_object(const struct json *j, int obj, uint64_t first_id,
			     struct eth_rpc_call *calls, size_t n, bool *seen)
{
	int64_t id;
	int i, res, err;
	struct eth_rpc_call *c;

	if (j->tok[obj].type != JSON_OBJECT)
		return -EPROTO;
	i = json_get(j, obj, "id");
	err = json_get(j, obj, "error");
	if (i < 0 || json_int64(j, i, &id) < 0) {
		/* A reply without a usable id is the server rejecting the whole request. */
		if (err < 0)
			return -EPROTO;
		for (size_t k = 0; k < n; k++) {
			if (seen[k])
				continue;
			seen[k] = true;
			eth_rpc_call_clear(&calls[k]);
			if (fill_error(&calls[k], j, err) < 0)
				return -ENOMEM;
		}
		return 0;
	}
	/* Ids we never sent are ignored; a second reply to the same request is not. */
	if (id < 0 || (uint64_t)id < first_id || (uint64_t)id - first_id >= n)
		return 0;
	if (seen[id - first_id])
		return -EPROTO;
	seen[id - first_id] = true;
	c = &calls[id - first_id];
	res = json_get(j, obj, "result");
	if (err >= 0 && !json_is_null(j, err))
		return fill_error(c, j, err);
	if (res < 0) {
		c->error = -EPROTO;
		return 0;
	}
	c->result_type = j->tok[res].type;
	return dup_raw(j, res, &c->result, &c->result_len);
}

int eth_rpc_parse_reply(const char *text, size_t len, uint64_t first_id,
			struct eth_rpc_call *calls, size_t n)
{
	struct json j = { 0 };
	bool *seen;
	int r;

	if (n == 0)
		return -EINVAL;
	seen = calloc(n, sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++)
		eth_rpc_call_clear(&calls[k]);
	r = json_parse(&j, text, len, RPC_MAX_TOKENS);
	if (r < 0)
		goto out;
	if (j.ntok < 1) {
		r = -EPROTO;
		goto out;
	}
	if (j.tok[0].type == JSON_ARRAY) {
		/* Walk the elements in order: json_array_at per element would be quadratic. */
		int obj = 1;

		for (int e = 0; e < j.tok[0].size; e++, obj = json_skip(&j, obj)) {
			r = obj >= j.ntok ? -EPROTO : take_reply_object(&j, obj, first_id, calls, n, seen);
			if (r < 0)
				goto out;
		}
	} else {
		r = take_reply_object(&j, 0, first_id, calls, n, seen);
		if (r < 0)
			goto out;
	}
	for (size_t k = 0; k < n; k++)
		if (!seen[k])
			calls[k].error = -EPROTO;
	r = 0;
out:
	if (r < 0)
		for (size_t k = 0; k < n; k++)
			eth_rpc_call_clear(&calls[k]);
	json_clear(&j);
	free(seen);
	return r;
}

/* ---- transport, retries and failover ------------------------------------------------------ */

static int build_request(const struct eth_rpc_call *calls, size_t n, uint64_t first_id,
			 struct buf *b)
{
	int r = 0;

	if (n > 1)
		r = buf_append(b, "[", 1);
	for (size_t k = 0; k < n && r == 0; k++)
		r = buf_printf(b, "%s{\"jsonrpc\":\"2.0\",\"id\":%llu,\"method\":\"%s\",\"params\":%s}",
			       k ? "," : "", (unsigned long long)(first_id + k), calls[k].method,
			       calls[k].params ? calls[k].params : "[]");
	if (n > 1 && r == 0)
		r = buf_append(b, "]", 1);
	return r;
}

enum attempt_outcome { ATTEMPT_OK, ATTEMPT_RETRY, ATTEMPT_NEXT_ENDPOINT };

/*
 * Statuses a JSON-RPC node does not send to a small POST of JSON but other web servers
 * do (no such path, no POST, body refused, method not implemented): the URL is likely
 * not a node.
 */
static bool not_a_node_status(long status)
{
	return status == 404 || status == 405 || status == 413 || status == 415 || status == 501;
}

/* A reply that does not even start as JSON: an HTML page or plain text, not a node's. */
static bool not_json(const struct buf *reply)
{
	size_t i = 0;

	while (i < reply->len && strchr(" \t\r\n", reply->data[i]))
		i++;
	return i == reply->len || (reply->data[i] != '{' && reply->data[i] != '[');
}

/* One exchange with one endpoint; on failure says whether to retry it or move on. */
static int exchange(struct eth_rpc *rpc, const struct rpc_endpoint *ep, const struct buf *req,
		    struct buf *reply, enum attempt_outcome *outcome)
{
	struct err_detail err = { "" };
	int r;

	rpc->round_trips++;
	buf_reset(reply);
	if (ep->transport == RPC_IPC) {
		r = rpc_ipc_exchange(ep->target, (const char *)req->data, req->len, rpc->timeout_ms,
				     rpc->abort_flag, reply, &err);
	} else {
		struct http_target t = {
			.base_url = ep->transport == RPC_HTTP ? ep->target : NULL,
			.unix_socket = ep->transport == RPC_HTTP_UNIX ? ep->target : NULL,
			.timeout_ms = rpc->timeout_ms,
			.max_reply = rpc->max_reply,
			.abort_flag = rpc->abort_flag,
			.conn = ep->conn,
		};
		struct http_reply hr;

		r = http_post(&t, ep->transport == RPC_HTTP ? "" : "/", NULL, req->data, req->len, &hr);
		err_detail_set(&err, "%s", hr.error);
		if (r == 0 && hr.status != 200) {
			rpc->stats.errors[ETH_RPC_HTTP_STATUS]++;
			eth_rpc_set_error(rpc, "%s: HTTP %ld%s", ep->label, hr.status,
					  not_a_node_status(hr.status) ? " (not a JSON-RPC endpoint?)" : "");
			/* Rate limits and server trouble pass; other statuses are this endpoint's. */
			*outcome = hr.status == 429 || hr.status >= 500 ? ATTEMPT_RETRY
								       : ATTEMPT_NEXT_ENDPOINT;
			http_reply_clear(&hr);
			return -EREMOTEIO;
		}
		if (r == 0) {
			buf_clear(reply);
			*reply = hr.body;
		} else {
			http_reply_clear(&hr);
		}
	}
	if (r < 0) {
		count_transport_fault(rpc, r);
		eth_rpc_set_error(rpc, "%s: %s", ep->label, err.text[0] ? err.text : errstr(r));
		/* A hung endpoint already cost a whole timeout: do not wait for it again. */
		*outcome = r == -ETIMEDOUT || r == -EMSGSIZE ? ATTEMPT_NEXT_ENDPOINT : ATTEMPT_RETRY;
		return r;
	}
	*outcome = ATTEMPT_OK;
	return 0;
}

/* Some providers refuse batches; then each call costs its own round trip. */
static int calls_one_by_one(struct eth_rpc *rpc, struct eth_rpc_call *calls, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		int r = eth_rpc_batch(rpc, &calls[k], 1);

		if (r < 0)
			return r;
	}
	return 0;
}

/* A batch answered by one object rather than an array: the batch itself was refused. */
static bool batch_refused(const struct buf *reply, size_t n)
{
	size_t i = 0;

	while (i < reply->len && strchr(" \t\r\n", reply->data[i]))
		i++;
	return n > 1 && i < reply->len && reply->data[i] == '{';
}

int eth_rpc_batch(struct eth_rpc *rpc, struct eth_rpc_call *calls, size_t n)
{
	uint64_t first_id = rpc->next_id;
	struct buf req, reply, why;
	int r;

	if (n == 0)
		return 0;
	if (n > 1 && rpc->ep[rpc->current].no_batches)
		return calls_one_by_one(rpc, calls, n);
	rpc->next_id += n;
	rpc->stats.calls += n;
	rpc->last_error[0] = '\0';
	buf_init(&req, 0);
	buf_init(&reply, rpc->max_reply);
	buf_init(&why, sizeof(rpc->last_error));
	r = build_request(calls, n, first_id, &req);
	if (r < 0)
		goto out;
	r = -EIO;
	for (size_t e = 0; e < rpc->nep; e++) {
		size_t idx = (rpc->current + e) % rpc->nep;
		long backoff = rpc->backoff_ms;

		for (unsigned attempt = 0; attempt <= rpc->retries; attempt++) {
			enum attempt_outcome outcome;

			if (attempt) {
				sleep_ms(backoff);
				backoff = backoff * 2 > RPC_MAX_BACKOFF_MS ? RPC_MAX_BACKOFF_MS : backoff * 2;
			}
			r = exchange(rpc, &rpc->ep[idx], &req, &reply, &outcome);
			if (r == 0) {
				r = eth_rpc_parse_reply((const char *)reply.data, reply.len, first_id,
							calls, n);
				if (r == 0 && batch_refused(&reply, n)) {
					rpc->ep[idx].no_batches = true;
					rpc->current = idx;
					r = calls_one_by_one(rpc, calls, n);
					goto out;
				}
				if (r == 0) {
					rpc->current = idx;
					rpc->last_error[0] = '\0';  /* earlier attempts are history now */
					count_call_faults(rpc, calls, n);
					goto out;
				}
				if (r != -ENOMEM)
					rpc->stats.errors[ETH_RPC_MALFORMED]++;
				if (r == -E2BIG || r == -ENOMEM) {
					/* Well-formed but too big for us: another endpoint says the same. */
					eth_rpc_set_error(rpc, "%s: reply of %zu bytes has too many JSON values",
						      rpc->ep[idx].label, reply.len);
					goto out;
				}
				eth_rpc_set_error(rpc, "%s: reply is not a JSON-RPC reply to our request (%s)%s",
					      rpc->ep[idx].label, errstr(r),
					      not_json(&reply) ? " (not a JSON-RPC endpoint?)" : "");
				r = -EPROTO;
				break;
			}
			if (r == -ECANCELED)
				goto out;  /* the caller is stopping: no retries, no other endpoint */
			if (outcome == ATTEMPT_NEXT_ENDPOINT)
				break;
		}
		/* What each endpoint said, in order (a message cut short is still useful). */
		buf_printf(&why, "%s%s", e ? "; " : "", rpc->last_error);
	}
	eth_rpc_set_error(rpc, "%s", why.len ? (const char *)why.data : "");
out:
	buf_clear(&req);
	buf_clear(&reply);
	buf_clear(&why);
	return r;
}

int eth_rpc_call(struct eth_rpc *rpc, const char *method, const char *params,
		 struct eth_rpc_call *c)
{
	int r;

	c->method = method;
	c->params = params;
	r = eth_rpc_batch(rpc, c, 1);
	if (r < 0)
		return r;
	if (c->error == -EREMOTEIO)
		eth_rpc_set_error(rpc, "%s: error %ld: %s", method, c->code,
			      c->message ? c->message : "(no message)");
	else if (c->error)
		eth_rpc_set_error(rpc, "%s: no reply to this request", method);
	return c->error;
}
