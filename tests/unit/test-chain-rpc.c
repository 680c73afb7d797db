/* SPDX-License-Identifier: MIT */
/*
 * The JSON-RPC client and the registry decoder against bad input: a small scripted
 * server in a thread (HTTP on loopback, or raw IPC on a unix socket in a temp dir)
 * answers with garbage, errors, wrong ids, storms of 429/5xx, or nothing at all.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "chain/internal.h"
#include "registry/internal.h"
#include "tests/unit/test-chain-helpers.h"
#include "tests/unit/test-loopback.h"

/* What the scripted server answers to one request body. status 0: never answer. */
struct answer {
	int status;
	char body[1 << 18];
};

typedef void (*answer_fn)(const char *request, size_t n, struct answer *a, void *ctx);

enum fake_transport { FAKE_HTTP, FAKE_HTTP_UNIX, FAKE_IPC };

struct fake_server {
	int fd;
	bool raw_ipc;
	bool unix_socket;
	char url[160];
	char dir[64];
	answer_fn answer;
	void *ctx;
	atomic_int requests;
	atomic_bool stop;
	pthread_t thread;
};

static bool read_request(struct fake_server *s, int c, char *buf, size_t cap, size_t *body_off,
			 size_t *len)
{
	size_t n = 0;

	for (int spins = 0; spins < 200 && n < cap - 1; spins++) {
		struct pollfd p = { .fd = c, .events = POLLIN };
		ssize_t k;

		if (poll(&p, 1, 20) <= 0)
			continue;
		k = recv(c, buf + n, cap - 1 - n, 0);
		if (k <= 0)
			return false;
		n += (size_t)k;
		buf[n] = '\0';
		if (s->raw_ipc) {
			/* Our requests are one object or array; enough to wait for the closer. */
			if (buf[n - 1] == '}' || buf[n - 1] == ']') {
				*body_off = 0;
				*len = n;
				return true;
			}
			continue;
		}
		char *end = strstr(buf, "\r\n\r\n");
		char *cl = strcasestr(buf, "Content-Length:");
		if (end && cl) {
			size_t want = strtoul(cl + 15, NULL, 10);

			if (n - (size_t)(end + 4 - buf) >= want) {
				*body_off = (size_t)(end + 4 - buf);
				*len = want;
				return true;
			}
		}
	}
	return false;
}

static void *serve(void *arg)
{
	struct fake_server *s = arg;
	static char req[1 << 16];

	while (!s->stop) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		struct answer a = { 0 };
		size_t off, n;
		char head[256];
		int c;

		if (poll(&p, 1, 50) <= 0)
			continue;
		c = accept(s->fd, NULL, NULL);
		if (c < 0)
			continue;
		if (!read_request(s, c, req, sizeof(req), &off, &n)) {
			close(c);
			continue;
		}
		s->requests++;
		s->answer(req + off, n, &a, s->ctx);
		if (a.status == 0) {
			/* Hang: hold the connection open without a word until the test ends. */
			while (!s->stop)
				usleep(10000);
			close(c);
			break;
		}
		if (!s->raw_ipc) {
			snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
				 "Connection: close\r\n\r\n", a.status, strlen(a.body));
			(void)!write(c, head, strlen(head));
		}
		(void)!write(c, a.body, strlen(a.body));
		close(c);
	}
	return NULL;
}

static void server_start(struct fake_server *s, enum fake_transport t, answer_fn fn, void *ctx)
{
	memset(s, 0, sizeof(*s));
	s->raw_ipc = t == FAKE_IPC;
	s->unix_socket = t != FAKE_HTTP;
	s->answer = fn;
	s->ctx = ctx;
	if (s->unix_socket) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		snprintf(s->dir, sizeof(s->dir), "/tmp/chain-rpc-test.XXXXXX");
		cr_assert_not_null(mkdtemp(s->dir));
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/rpc.sock", s->dir);
		s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_eq(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		snprintf(s->url, sizeof(s->url), "%s%s", s->raw_ipc ? "" : "http+unix://", sa.sun_path);
	} else {
		s->fd = loopback_listen(s->url, sizeof(s->url));
	}
	loopback_serve(s->fd, &s->thread, serve, s);
}

static void server_stop(struct fake_server *s)
{
	s->stop = true;
	pthread_join(s->thread, NULL);
	close(s->fd);
	if (s->unix_socket) {
		char path[128];

		snprintf(path, sizeof(path), "%s/rpc.sock", s->dir);
		unlink(path);
		rmdir(s->dir);
	}
}

static struct eth_rpc *client(const char *urls, long timeout_ms, int retries)
{
	struct eth_rpc_config cfg = { .urls = urls, .timeout_ms = timeout_ms, .retries = retries,
				      .backoff_ms = 10 };
	struct eth_rpc *rpc;

	cr_assert_eq(eth_rpc_new(&cfg, &rpc), 0);
	return rpc;
}

/* ---- canned answers ------------------------------------------------------------------- */

static void answer_text(const char *req, size_t n, struct answer *a, void *ctx)
{
	a->status = 200;
	snprintf(a->body, sizeof(a->body), "%s", (const char *)ctx);
}

static void answer_status(const char *req, size_t n, struct answer *a, void *ctx)
{
	a->status = *(int *)ctx;
	snprintf(a->body, sizeof(a->body), "{\"error\":\"busy\"}");
}

static void answer_hang(const char *req, size_t n, struct answer *a, void *ctx)
{
	a->status = 0;
}

/* Reply to every request of a batch in reverse order, with result "0x<id>". */
static void answer_reversed(const char *req, size_t n, struct answer *a, void *ctx)
{
	struct json j;
	int ids[8], k = 0;

	cr_assert_eq(json_parse(&j, req, n, 0), 0);
	for (int e = 0; e < j.tok[0].size && k < 8; e++) {
		int64_t id;

		json_int64(&j, json_get(&j, json_array_at(&j, 0, e), "id"), &id);
		ids[k++] = (int)id;
	}
	json_clear(&j);
	a->status = 200;
	strcpy(a->body, "[");
	for (int i = k - 1; i >= 0; i--)
		snprintf(a->body + strlen(a->body), sizeof(a->body) - strlen(a->body),
			 "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"result\":\"0x%x\"}", i == k - 1 ? "" : ",",
			 ids[i], ids[i]);
	strcat(a->body, "]");
}

/* ---- tests ------------------------------------------------------------------------------ */

Test(rpc, reply_that_is_not_json)
{
	struct fake_server s;
	struct eth_rpc *rpc;
	uint64_t id;

	server_start(&s, FAKE_HTTP, answer_text, "<html>bad gateway</html>");
	rpc = client(s.url, 2000, -1);
	cr_assert_eq(eth_chain_id(rpc, &id), -EPROTO);
	cr_assert(strstr(eth_rpc_error(rpc), "not a JSON-RPC reply"), "%s", eth_rpc_error(rpc));
	cr_assert(strstr(eth_rpc_error(rpc), "(not a JSON-RPC endpoint?)"), "%s", eth_rpc_error(rpc));
	eth_rpc_free(rpc);
	server_stop(&s);
}

/* What a web server that is not a node answers a JSON POST with: the message says so. */
Test(rpc, statuses_of_a_web_server_hint_at_the_url, .timeout = 20)
{
	static const int not_node[] = { 404, 405, 413, 415, 501 };
	struct fake_server s;
	struct eth_rpc *rpc;
	uint64_t id;
	int status;

	for (size_t i = 0; i < ARRAY_SIZE(not_node); i++) {
		status = not_node[i];
		server_start(&s, FAKE_HTTP, answer_status, &status);
		rpc = client(s.url, 2000, 0);
		cr_assert_lt(eth_chain_id(rpc, &id), 0);
		cr_assert(strstr(eth_rpc_error(rpc), "(not a JSON-RPC endpoint?)"), "%d: %s", status, eth_rpc_error(rpc));
		eth_rpc_free(rpc);
		server_stop(&s);
	}
	status = 429;  /* a node's rate limit: no hint */
	server_start(&s, FAKE_HTTP, answer_status, &status);
	rpc = client(s.url, 2000, 0);
	cr_assert_lt(eth_chain_id(rpc, &id), 0);
	cr_assert_null(strstr(eth_rpc_error(rpc), "JSON-RPC endpoint"), "%s", eth_rpc_error(rpc));
	eth_rpc_free(rpc);
	server_stop(&s);
}

/* URLs often carry an API key in their path: messages name the host only. */
Test(rpc, messages_do_not_leak_url_paths)
{
	struct eth_rpc *rpc = client("http://127.0.0.1:1/v3/SECRETKEY?x=1, ipc:///nonexistent/dir/x.ipc,"
				     "https://user:PASSWORD@127.0.0.1:2", 500, -1);
	struct eth_block b;
	uint64_t id;

	cr_assert_lt(eth_chain_id(rpc, &id), 0);
	cr_assert(strstr(eth_rpc_error(rpc), "http://127.0.0.1:1/..."), "%s", eth_rpc_error(rpc));
	cr_assert(strstr(eth_rpc_error(rpc), "/nonexistent/dir/x.ipc"), "%s", eth_rpc_error(rpc));
	cr_assert(strstr(eth_rpc_error(rpc), "; https://127.0.0.1:2:"), "%s", eth_rpc_error(rpc));
	cr_assert_null(strstr(eth_rpc_error(rpc), "SECRETKEY"), "%s", eth_rpc_error(rpc));
	cr_assert_null(strstr(eth_rpc_error(rpc), "PASSWORD"), "%s", eth_rpc_error(rpc));
	/* A block tag is checked before it goes into the request. */
	cr_assert_eq(eth_get_block(rpc, "latest\",true]", &b), -EINVAL);
	eth_rpc_free(rpc);
}

Test(rpc, json_rpc_error_and_wrong_id)
{
	struct fake_server s;
	struct eth_rpc *rpc;
	uint64_t id;

	server_start(&s, FAKE_HTTP, answer_text,
		     "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":\"header not found\"}}");
	rpc = client(s.url, 2000, -1);
	cr_assert_eq(eth_chain_id(rpc, &id), -EREMOTEIO);
	cr_assert(strstr(eth_rpc_error(rpc), "header not found"), "%s", eth_rpc_error(rpc));
	/* The next request has id 2: a reply for id 1 is no reply to it. */
	cr_assert_eq(eth_chain_id(rpc, &id), -EPROTO);
	eth_rpc_free(rpc);
	server_stop(&s);
}

/* A provider's error text ends up in our logs: no escape sequences, no forged lines. */
Test(rpc, error_message_has_no_control_characters)
{
	const char *reply = "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":3,"
			    "\"message\":\"bad\\u001b[2J\\nerror: forged\\u007f\"}}";
	struct eth_rpc_call c = { .method = "eth_call" };

	cr_assert_eq(eth_rpc_parse_reply(reply, strlen(reply), 1, &c, 1), 0);
	cr_assert_eq(c.error, -EREMOTEIO);
	cr_assert_str_eq(c.message, "bad?[2J?error: forged?");
	eth_rpc_call_clear(&c);
}

#define Z64 "0000000000000000000000000000000000000000000000000000000000000000"

Test(rpc, log_list_is_bounded_by_its_tokens)
{
	const char *one = "[{\"address\":\"0x0000000000000000000000000000000000000001\","
			  "\"blockNumber\":\"0x5\",\"blockHash\":\"0x" Z64 "\","
			  "\"transactionHash\":\"0x" Z64 "\",\"logIndex\":\"0x0\","
			  "\"topics\":[],\"data\":\"0x01\"}]";
	const char *hollow = "[{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}]";
	struct eth_log *logs = NULL;
	size_t n = 0;

	cr_assert_eq(eth_parse_logs(one, strlen(one), &logs, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(logs[0].block_number, 5);
	cr_assert_eq(logs[0].data_len, 1);
	/* 17 elements in 18 tokens cannot be logs: refused before anything is allocated. */
	cr_assert_eq(eth_parse_logs(hollow, strlen(hollow), &logs, &n), -EBADMSG);
	cr_assert_eq(n, 1);
	eth_logs_free(logs, n);
}

Test(rpc, result_of_the_wrong_type)
{
	struct fake_server s;
	struct eth_rpc *rpc;
	struct eth_block b;
	uint64_t id;

	server_start(&s, FAKE_HTTP, answer_text, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"number\":7}}");
	rpc = client(s.url, 2000, -1);
	cr_assert_eq(eth_chain_id(rpc, &id), -EBADMSG);
	cr_assert_eq(eth_get_block(rpc, "latest", &b), -EPROTO);  /* id 2 never answered */
	eth_rpc_free(rpc);
	server_stop(&s);
}

Test(rpc, batch_replies_matched_by_id)
{
	struct eth_rpc_call c[4] = {
		{ .method = "a" }, { .method = "b" }, { .method = "c" }, { .method = "d" },
	};
	struct fake_server s;
	struct eth_rpc *rpc;

	server_start(&s, FAKE_HTTP, answer_reversed, NULL);
	rpc = client(s.url, 2000, -1);
	cr_assert_eq(eth_rpc_batch(rpc, c, 4), 0);
	for (int i = 0; i < 4; i++) {
		char want[8];

		snprintf(want, sizeof(want), "0x%x", i + 1);
		cr_assert_eq(c[i].error, 0);
		cr_assert_str_eq(c[i].result, want);
		eth_rpc_call_clear(&c[i]);
	}
	cr_assert_eq(eth_rpc_round_trips(rpc), 1);
	eth_rpc_free(rpc);
	server_stop(&s);
}

/* A provider without batches: one error object for the batch, answers to single calls. */
static void answer_no_batches(const char *req, size_t n, struct answer *a, void *ctx)
{
	struct json j;
	int64_t id = 0;

	a->status = 200;
	cr_assert_eq(json_parse(&j, req, n, 0), 0);
	if (j.tok[0].type == JSON_ARRAY)
		snprintf(a->body, sizeof(a->body), "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":"
			 "{\"code\":-32600,\"message\":\"batch requests are not supported\"}}");
	else if (json_int64(&j, json_get(&j, 0, "id"), &id) == 0)
		snprintf(a->body, sizeof(a->body), "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":\"0x%llx\"}",
			 (long long)id, (long long)id);
	json_clear(&j);
}

Test(rpc, provider_without_batches)
{
	struct eth_rpc_call c[3] = { { .method = "a" }, { .method = "b" }, { .method = "c" } };
	struct fake_server s;
	struct eth_rpc *rpc;

	server_start(&s, FAKE_HTTP, answer_no_batches, NULL);
	rpc = client(s.url, 2000, -1);
	for (int round = 0; round < 2; round++) {
		cr_assert_eq(eth_rpc_batch(rpc, c, 3), 0);
		for (int i = 0; i < 3; i++) {
			cr_assert_eq(c[i].error, 0, "round %d call %d: %d", round, i, c[i].error);
			eth_rpc_call_clear(&c[i]);
		}
	}
	/* 1 refused batch + 3 single calls, then 3 single calls: no batch is tried again. */
	cr_assert_eq(s.requests, 7);
	eth_rpc_free(rpc);
	server_stop(&s);
}

/* A provider that takes batches and single calls alike. */
static void answer_batches_and_singles(const char *req, size_t n, struct answer *a, void *ctx)
{
	size_t i = strspn(req, " \t\r\n");

	if (i < n && req[i] == '[')
		answer_reversed(req, n, a, ctx);
	else
		answer_no_batches(req, n, a, ctx);
}

/* Refusing batches is one endpoint's trait: the endpoint failed over to gets batches. */
Test(rpc, batches_refused_by_one_endpoint_only)
{
	struct eth_rpc_call c[3] = { { .method = "a" }, { .method = "b" }, { .method = "c" } };
	struct fake_server a, b;
	struct eth_rpc *rpc;
	char urls[400];

	server_start(&a, FAKE_HTTP, answer_no_batches, NULL);
	server_start(&b, FAKE_HTTP, answer_batches_and_singles, NULL);
	snprintf(urls, sizeof(urls), "%s,%s", a.url, b.url);
	rpc = client(urls, 2000, -1);
	for (int round = 0; round < 3; round++) {
		if (round == 1)
			server_stop(&a);  /* from now on b answers */
		cr_assert_eq(eth_rpc_batch(rpc, c, 3), 0, "round %d: %s", round, eth_rpc_error(rpc));
		for (int i = 0; i < 3; i++) {
			cr_assert_eq(c[i].error, 0, "round %d call %d: %d", round, i, c[i].error);
			eth_rpc_call_clear(&c[i]);
		}
	}
	/* a: the refused batch and 3 single calls. b: round 1 one by one (a failed mid-way
	 * through the single calls), round 2 one batch. */
	cr_assert_eq(a.requests, 4);
	cr_assert_eq(b.requests, 4, "got %d", (int)b.requests);
	eth_rpc_free(rpc);
	server_stop(&b);
}

Test(rpc, http_429_storm_is_bounded, .timeout = 20)
{
	int status = 429;
	struct fake_server s;
	struct eth_rpc *rpc;
	uint64_t id;

	server_start(&s, FAKE_HTTP, answer_status, &status);
	rpc = client(s.url, 2000, 2);
	cr_assert_eq(eth_chain_id(rpc, &id), -EREMOTEIO);
	cr_assert_eq(s.requests, 3, "one try and two retries, got %d", (int)s.requests);
	cr_assert(strstr(eth_rpc_error(rpc), "HTTP 429"), "%s", eth_rpc_error(rpc));
	eth_rpc_free(rpc);
	server_stop(&s);
}

Test(rpc, failover_past_a_5xx_endpoint_and_stay, .timeout = 20)
{
	int status = 503;
	struct fake_server bad, good;
	struct eth_rpc *rpc;
	char urls[400];
	uint64_t id;

	server_start(&bad, FAKE_HTTP, answer_status, &status);
	server_start(&good, FAKE_HTTP, answer_text, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x7a69\"}");
	snprintf(urls, sizeof(urls), "%s, %s", bad.url, good.url);
	rpc = client(urls, 2000, 1);
	cr_assert_eq(eth_chain_id(rpc, &id), 0);
	cr_assert_eq(id, 31337);
	cr_assert_eq(bad.requests, 2);
	/* The endpoint that answered is tried first from now on. */
	eth_chain_id(rpc, &id);
	cr_assert_eq(bad.requests, 2);
	cr_assert_eq(good.requests, 2);
	eth_rpc_free(rpc);
	server_stop(&bad);
	server_stop(&good);
}

static void rpc_that_hangs(enum fake_transport t)
{
	struct fake_server s;
	struct eth_rpc *rpc;
	uint64_t t0, id;
	int r;

	server_start(&s, t, answer_hang, NULL);
	rpc = client(s.url, 300, 3);
	t0 = now_ms();
	r = eth_chain_id(rpc, &id);
	cr_assert_eq(r, -ETIMEDOUT, "got %d (%s)", r, eth_rpc_error(rpc));
	/* A hung endpoint is not retried: one timeout, not four. */
	cr_assert_lt(now_ms() - t0, 1500);
	cr_assert(strstr(eth_rpc_error(rpc), "imed out"), "%s", eth_rpc_error(rpc));
	eth_rpc_free(rpc);
	server_stop(&s);
}

Test(rpc, http_rpc_that_hangs_times_out, .timeout = 20) { rpc_that_hangs(FAKE_HTTP); }
Test(rpc, ipc_rpc_that_hangs_times_out, .timeout = 20) { rpc_that_hangs(FAKE_IPC); }

static volatile sig_atomic_t abort_flag;

static void *set_abort_flag_later(void *arg)
{
	struct timespec ts = { .tv_nsec = 200 * 1000000L };

	(void)arg;
	nanosleep(&ts, NULL);
	abort_flag = 1;
	return NULL;
}

/* A hung RPC with a 10 s timeout and retries gives up soon after the abort flag is set. */
static void rpc_that_hangs_is_cancelled(enum fake_transport t)
{
	struct fake_server s;
	struct eth_rpc_config cfg = { .timeout_ms = 10000, .retries = 3, .backoff_ms = 10,
				      .abort_flag = &abort_flag };
	struct eth_rpc *rpc;
	pthread_t setter;
	uint64_t t0, id;
	int r;

	server_start(&s, t, answer_hang, NULL);
	cfg.urls = s.url;
	cr_assert_eq(eth_rpc_new(&cfg, &rpc), 0);
	abort_flag = 0;
	cr_assert_eq(pthread_create(&setter, NULL, set_abort_flag_later, NULL), 0);
	t0 = now_ms();
	r = eth_chain_id(rpc, &id);
	cr_assert_eq(r, -ECANCELED, "got %d (%s)", r, eth_rpc_error(rpc));
	cr_assert_lt(now_ms() - t0, 2000, "took %llu ms", (unsigned long long)(now_ms() - t0));
	pthread_join(setter, NULL);
	/* Already set: no request at all. */
	t0 = now_ms();
	cr_assert_eq(eth_chain_id(rpc, &id), -ECANCELED);
	cr_assert_lt(now_ms() - t0, 500);
	eth_rpc_free(rpc);
	server_stop(&s);
}

Test(rpc, http_rpc_that_hangs_is_cancelled, .timeout = 20) { rpc_that_hangs_is_cancelled(FAKE_HTTP); }
Test(rpc, ipc_rpc_that_hangs_is_cancelled, .timeout = 20) { rpc_that_hangs_is_cancelled(FAKE_IPC); }

Test(rpc, http_over_unix_socket_round_trip)
{
	struct fake_server s;
	struct eth_rpc *rpc;
	uint64_t id;

	server_start(&s, FAKE_HTTP_UNIX, answer_text, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x2a\"}");
	rpc = client(s.url, 2000, -1);
	cr_assert_eq(eth_chain_id(rpc, &id), 0, "%s", eth_rpc_error(rpc));
	cr_assert_eq(id, 42);
	eth_rpc_free(rpc);
	server_stop(&s);
}

Test(rpc, ipc_transport_round_trip)
{
	struct fake_server s;
	struct eth_rpc *rpc;
	char url[200];
	uint64_t id;

	server_start(&s, FAKE_IPC, answer_text, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x2a\"}\n");
	snprintf(url, sizeof(url), "ipc://%s", s.url);
	rpc = client(url, 2000, -1);
	cr_assert_eq(eth_chain_id(rpc, &id), 0);
	cr_assert_eq(id, 42);
	eth_rpc_free(rpc);
	server_stop(&s);
}

Test(rpc, oversized_reply_is_refused)
{
	static char big[4000];
	struct eth_rpc_config cfg = { .max_reply = 1024, .retries = -1 };
	struct fake_server s;
	struct eth_rpc *rpc;
	uint64_t id;

	snprintf(big, sizeof(big), "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x%03000d\"}", 0);
	server_start(&s, FAKE_HTTP, answer_text, big);
	cfg.urls = s.url;
	cr_assert_eq(eth_rpc_new(&cfg, &rpc), 0);
	cr_assert_eq(eth_chain_id(rpc, &id), -EMSGSIZE);
	eth_rpc_free(rpc);
	server_stop(&s);
}

Test(rpc, wrong_chain_id_is_refused)
{
	struct fake_server s;
	struct eth_rpc *rpc;
	struct registry_reader *reader;
	uint8_t contract[20] = { 1 };
	bool changed;

	server_start(&s, FAKE_HTTP, answer_text,
		     "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x1\"},{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":null}]");
	rpc = client(s.url, 2000, -1);
	cr_assert_eq(registry_reader_new(rpc, contract, 31337, &reader), 0);
	cr_assert_eq(registry_reader_poll(reader, &changed), -EXDEV);
	cr_assert(strstr(eth_rpc_error(rpc), "chain 1, not the expected 31337"), "%s",
		  eth_rpc_error(rpc));
	registry_reader_free(reader);
	eth_rpc_free(rpc);
	server_stop(&s);
}

/* eth_getLogs against a provider that refuses ranges over 3 blocks. */
static void answer_range_limited(const char *req, size_t n, struct answer *a, void *ctx)
{
	struct json j;
	uint64_t from, to;
	size_t len;
	const char *s;
	int64_t id;
	int filter;

	cr_assert_eq(json_parse(&j, req, n, 0), 0);
	json_int64(&j, json_get(&j, 0, "id"), &id);
	filter = json_array_at(&j, json_get(&j, 0, "params"), 0);
	s = json_raw(&j, json_get(&j, filter, "fromBlock"), &len);
	eth_parse_quantity(s, len, &from);
	s = json_raw(&j, json_get(&j, filter, "toBlock"), &len);
	eth_parse_quantity(s, len, &to);
	json_clear(&j);
	a->status = 200;
	if (to - from + 1 > 3)
		snprintf(a->body, sizeof(a->body), "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32600,"
			 "\"message\":\"query exceeds max block range 3\"}}", (long long)id);
	else
		snprintf(a->body, sizeof(a->body), "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":[{"
			 "\"address\":\"0x%040d\",\"blockNumber\":\"0x%llx\",\"blockHash\":\"0x%064d\","
			 "\"transactionHash\":\"0x%064d\",\"logIndex\":\"0x0\",\"topics\":[],\"data\":\"0x\"}]}",
			 (long long)id, 0, (unsigned long long)from, 0, 0);
}

Test(rpc, get_logs_splits_on_range_limit, .timeout = 20)
{
	struct eth_log_filter f = { .from_block = 10, .to_block = 29 };
	struct fake_server s;
	struct eth_rpc *rpc;
	struct eth_log *logs = NULL;
	size_t n = 0;

	server_start(&s, FAKE_HTTP, answer_range_limited, NULL);
	rpc = client(s.url, 2000, -1);
	cr_assert_eq(eth_get_logs(rpc, &f, &logs, &n), 0, "%s", eth_rpc_error(rpc));
	/* 10000 -> ... -> 2 blocks a request: every request after the halvings succeeds. */
	cr_assert_eq(n, 10);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(logs[i].block_number, 10 + 2 * i);
	eth_logs_free(logs, n);
	eth_rpc_free(rpc);
	server_stop(&s);
}

/* ---- the registry decoder on crafted getPeers() data ------------------------------------ */

struct test_peer {
	uint64_t token;
	const char *endpoint;
	size_t endpoint_len;
	size_t sig_len;
	uint64_t mode;
};

static void encode_peers(const struct test_peer *tp, size_t n, struct buf *b)
{
	struct abi_encoder top, arr, p;
	uint8_t zeros[80] = { 0 }, inst[20] = { 0 }, wg[32] = { 0 };

	buf_init(b, 0);
	cr_assert_eq(abi_enc_begin(&top, b, 1), 0);
	cr_assert_eq(abi_put_array_begin(&top, &arr, n, 1), 0);
	for (size_t i = 0; i < n; i++) {
		inst[19] = (uint8_t)tp[i].token;
		cr_assert_eq(abi_put_tuple_begin(&arr, &p, 11), 0);
		abi_put_uint64(&p, tp[i].token);
		abi_put_address(&p, inst);
		abi_put_word(&p, wg);
		abi_put_bytes(&p, tp[i].endpoint, tp[i].endpoint_len);
		abi_put_uint64(&p, tp[i].mode);
		abi_put_uint64(&p, 1);
		abi_put_bytes(&p, zeros, 64);
		abi_put_bytes(&p, zeros, 64);
		abi_put_bytes(&p, zeros, tp[i].sig_len);
		abi_put_bytes(&p, zeros, 65);
		abi_put_bytes(&p, zeros, 65);
		cr_assert_eq(abi_enc_end(&p), 0);
	}
	cr_assert_eq(abi_enc_end(&arr), 0);
	cr_assert_eq(abi_enc_end(&top), 0);
}

Test(registry, malformed_entries_are_skipped_not_fatal)
{
	static char long_endpoint[300];
	const struct test_peer tp[] = {
		{ 1, "10.0.0.1:51820", 14, 65, 1 },
		{ 2, "10.0.0.2:51820", 14, 64, 1 },      /* short signature */
		{ 3, "a\0b:1", 5, 65, 1 },               /* NUL inside the endpoint */
		{ 4, long_endpoint, 256, 65, 1 },        /* longer than the contract allows */
		{ 5, "https://x", 9, 65, 7 },            /* unknown mode */
		{ 6, "", 0, 65, 0 },                     /* empty endpoint */
		{ 7, "[2001:db8::1]:51820", 19, 65, 1 },
	};
	struct registry_skip skips[8];
	struct registry_record *peers;
	size_t n, nskips;
	struct buf b;

	memset(long_endpoint, 'a', sizeof(long_endpoint) - 1);
	encode_peers(tp, ARRAY_SIZE(tp), &b);
	cr_assert_eq(registry_decode_peers(b.data, b.len, &peers, &n, skips, 8, &nskips), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(peers[0].token_id, 1);
	cr_assert_str_eq(peers[0].endpoint, "10.0.0.1:51820");
	cr_assert_eq(peers[1].token_id, 7);
	cr_assert_str_eq(peers[1].endpoint, "[2001:db8::1]:51820");
	cr_assert_eq(nskips, 5);
	cr_assert_eq(skips[0].index, 1);
	cr_assert(strstr(skips[0].reason, "app signature is 64 bytes"), "%s", skips[0].reason);
	cr_assert(strstr(skips[1].reason, "NUL"), "%s", skips[1].reason);
	cr_assert(strstr(skips[3].reason, "mode 7"), "%s", skips[3].reason);
	registry_records_free(peers, n);

	/*
	 * Truncated anywhere: never a crash, never an entry read past the end, and never a
	 * partial list. A reply that promises 7 entries and ends early fails as a whole (the
	 * agent keeps its peers); only a cut inside the last field's zero padding still
	 * holds every byte of every entry.
	 */
	for (size_t cut = 0; cut < b.len; cut += 7) {
		int r = registry_decode_peers(b.data, cut, &peers, &n, NULL, 0, NULL);

		if (cut + 32 <= b.len) {
			cr_assert_eq(r, -EBADMSG, "cut at %zu of %zu: %d", cut, b.len, r);
			cr_assert_eq(n, 0);
		}
		registry_records_free(peers, n);
	}
	buf_clear(&b);
}

Test(registry, token_id_above_64_bits_and_too_many_peers)
{
	const struct test_peer one = { 1, "10.0.0.1:1", 10, 65, 1 };
	struct registry_record *peers;
	struct buf b;
	size_t n, nskips;
	struct registry_skip skip;

	encode_peers(&one, 1, &b);
	/* The token id word of entry 0: top (1) + count (1) + offset (1) words in. */
	b.data[3 * 32 + 23] = 1;
	cr_assert_eq(registry_decode_peers(b.data, b.len, &peers, &n, &skip, 1, &nskips), 0);
	cr_assert_eq(n, 0);
	cr_assert(strstr(skip.reason, "above 2^64"), "%s", skip.reason);
	/* An array count beyond what the registry can hold. */
	b.data[32 + 30] = 0x01;  /* count 0x101 = 257 */
	b.data[32 + 31] = 0x01;
	cr_assert_lt(registry_decode_peers(b.data, b.len, &peers, &n, NULL, 0, NULL), 0);
	buf_clear(&b);
}

/* Revert reasons: Error(string), Panic, a registry custom error, an unknown selector. */
Test(revert, describes_reasons)
{
	struct abi_encoder e;
	char out[256];
	uint8_t sel[4];
	struct buf b;

	buf_init(&b, 0);
	abi_selector("Error(string)", sel);
	buf_append(&b, sel, 4);
	abi_enc_begin(&e, &b, 1);
	abi_put_string(&e, "not owner\x1b[2J");
	eth_describe_revert(b.data, b.len, &registry_contract_errors, out, sizeof(out));
	cr_assert_str_eq(out, "Error(\"not owner?[2J\")");

	buf_reset(&b);
	abi_selector("StaleNonce(uint64,uint64)", sel);
	buf_append(&b, sel, 4);
	abi_enc_begin(&e, &b, 2);
	abi_put_uint64(&e, 3);
	abi_put_uint64(&e, 5);
	eth_describe_revert(b.data, b.len, &registry_contract_errors, out, sizeof(out));
	cr_assert_str_eq(out, "StaleNonce(3, 5)");
	eth_describe_revert(b.data, 4 + 32, &registry_contract_errors, out, sizeof(out));
	cr_assert_str_eq(out, "StaleNonce(3, <missing>)");

	buf_reset(&b);
	abi_selector("Panic(uint256)", sel);
	buf_append(&b, sel, 4);
	abi_enc_begin(&e, &b, 1);
	abi_put_uint64(&e, 0x11);
	eth_describe_revert(b.data, b.len, &registry_contract_errors, out, sizeof(out));
	cr_assert_str_eq(out, "Panic(0x11: arithmetic overflow)");

	eth_describe_revert((const uint8_t *)"\xde\xad\xbe\xef", 4, &registry_contract_errors, out, sizeof(out));
	cr_assert_str_eq(out, "custom error 0xdeadbeef (0 bytes of arguments)");
	eth_describe_revert(NULL, 0, &registry_contract_errors, out, sizeof(out));
	cr_assert_str_eq(out, "no reason given");
	buf_clear(&b);
}

/*
 * Our table of custom errors equals the errors of the compiled contract's ABI, read with
 * jq (the artifact is built with forge when missing).
 */
#define ARTIFACT "\"$(git rev-parse --show-toplevel)/contracts/out/DstackClusterNFT.sol/DstackClusterNFT.json\""

Test(revert, error_table_matches_the_contract_abi)
{
	const char *const *sigs = registry_contract_errors.signatures;
	size_t n = registry_contract_errors.n;
	char cmd[1024], *count;

	count = command_output("top=$(git rev-parse --show-toplevel) && "
			       "{ [ -f " ARTIFACT " ] || (cd \"$top/contracts\" && ../node_modules/.bin/forge build --quiet); } && "
			       "jq '[.abi[] | select(.type == \"error\")] | length' " ARTIFACT);
	cr_assert_eq((size_t)atoi(count), n, "the contract has %s errors, our table %zu", count, n);
	free(count);
	for (size_t i = 0; i < n; i++) {
		int name_len = (int)strcspn(sigs[i], "(");
		char *sig;

		snprintf(cmd, sizeof(cmd), "jq -r '.abi[] | select(.type == \"error\" and .name == \"%.*s\") "
			 "| .name + \"(\" + ([.inputs[].type] | join(\",\")) + \")\"' " ARTIFACT,
			 name_len, sigs[i]);
		sig = command_output(cmd);
		cr_assert_str_eq(sig, sigs[i]);
		free(sig);
	}
}

/* ---- the registry follower against a scripted chain ------------------------------------ */

/*
 * A chain the test moves by hand: its head, a fork (blocks from fork_at on have other
 * hashes), the getPeers() reply, each token's getPeerByToken reply and the logs since the
 * block we read at. Records and log data are encoded by cast in the test's thread.
 */
struct chain_script {
	uint64_t head;
	uint64_t fork_at;               /* 0: no fork */
	const char *peers_hex;          /* getPeers() return data */
	const char *by_token[8];        /* NULL: reverts TokenHasNoPeer; "error": another error */
	char logs[1 << 17];
	atomic_int get_peers, by_token_calls;
};

#define CONTRACT_HEX "c047120000000000000000000000000000000001"

static void block_json(const struct chain_script *cs, uint64_t n, char *out, size_t cap)
{
	snprintf(out, cap, "{\"number\":\"0x%llx\",\"hash\":\"0x%02x%062llx\",\"parentHash\":\"0x%064x\","
		 "\"timestamp\":\"0x1\"}", (unsigned long long)n, cs->fork_at && n >= cs->fork_at ? 0xf0 : 0xb0,
		 (unsigned long long)n, 0);
}

static void answer_chain_call(struct chain_script *cs, const struct json *j, int obj, struct buf *out)
{
	char sel_peers[9], sel_token[9], block[256];
	const char *method, *params;
	size_t mlen, plen;
	uint8_t sel[4];
	int64_t id;

	json_int64(j, json_get(j, obj, "id"), &id);
	method = json_raw(j, json_get(j, obj, "method"), &mlen);
	params = json_raw(j, json_get(j, obj, "params"), &plen);
	abi_selector("getPeers()", sel);
	hex_encode(sel_peers, sel, 4);
	abi_selector("getPeerByToken(uint256)", sel);
	hex_encode(sel_token, sel, 4);
	buf_printf(out, "{\"jsonrpc\":\"2.0\",\"id\":%lld,", (long long)id);
	if (!strncmp(method, "eth_chainId", mlen)) {
		buf_printf(out, "\"result\":\"0x7a69\"}");
	} else if (!strncmp(method, "eth_getBlockByNumber", mlen)) {
		uint64_t n = memmem(params, plen, "latest", 6) ? cs->head : strtoull(params + 4, NULL, 16);

		block_json(cs, n, block, sizeof(block));
		buf_printf(out, "\"result\":%s}", block);
	} else if (!strncmp(method, "eth_getLogs", mlen)) {
		buf_printf(out, "\"result\":%s}", cs->logs[0] ? cs->logs : "[]");
	} else if (memmem(params, plen, sel_peers, 8)) {
		cs->get_peers++;
		buf_printf(out, "\"result\":\"%s\"}", cs->peers_hex);
	} else if (memmem(params, plen, sel_token, 8)) {
		const char *data = memmem(params, plen, sel_token, 8);
		unsigned t = (unsigned)strtoul(data + 8 + 56, NULL, 16);
		const char *rec = t < 8 ? cs->by_token[t] : NULL;

		cs->by_token_calls++;
		if (rec && !strcmp(rec, "error"))
			buf_printf(out, "\"error\":{\"code\":-32000,\"message\":\"header not found\"}}");
		else if (rec)
			buf_printf(out, "\"result\":\"%s\"}", rec);
		else
			buf_printf(out, "\"error\":{\"code\":3,\"message\":\"execution reverted\",\"data\":"
				   "\"0x%s%064x\"}}", sel_token, t);
		/* the revert's selector is TokenHasNoPeer's, patched below */
	} else {
		buf_printf(out, "\"error\":{\"code\":-32601,\"message\":\"no such method\"}}");
	}
}

static void answer_chain(const char *req, size_t n, struct answer *a, void *ctx)
{
	struct chain_script *cs = ctx;
	char sel_token[9], sel_none[9], *p;
	struct json j;
	struct buf out;
	uint8_t sel[4];

	buf_init(&out, 0);
	a->status = 200;
	if (json_parse(&j, req, n, 0) < 0) {
		snprintf(a->body, sizeof(a->body), "garbage");
		return;
	}
	if (j.tok[0].type == JSON_ARRAY) {
		buf_printf(&out, "[");
		for (int e = 0; e < j.tok[0].size; e++) {
			if (e)
				buf_printf(&out, ",");
			answer_chain_call(cs, &j, json_array_at(&j, 0, e), &out);
		}
		buf_printf(&out, "]");
	} else {
		answer_chain_call(cs, &j, 0, &out);
	}
	json_clear(&j);
	buf_terminate(&out);
	/* A revert names TokenHasNoPeer(t), not the function's selector. */
	abi_selector("getPeerByToken(uint256)", sel);
	hex_encode(sel_token, sel, 4);
	abi_selector("TokenHasNoPeer(uint256)", sel);
	hex_encode(sel_none, sel, 4);
	for (p = strstr((char *)out.data, "\"data\":\"0x"); p; p = strstr(p + 1, "\"data\":\"0x"))
		if (!strncmp(p + 10, sel_token, 8))
			memcpy(p + 10, sel_none, 8);
	snprintf(a->body, sizeof(a->body), "%s", (char *)out.data);
	buf_clear(&out);
}

#define PEER_T "(uint256,address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes)"
#define K64 "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define S65 "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* cast's tuple text of token t's record at nonce. */
static void peer_text(char *out, size_t cap, unsigned t, unsigned nonce)
{
	snprintf(out, cap, "(%u,0x%040x,0x%064x,10.0.0.%u:51820,1,%u," K64 "," K64 "," S65 "," S65 "," S65 ")",
		 t, 0xa0 + t, t, t, nonce);
}

/* getPeers() data of tokens[] (nonces[]), and getPeerByToken data of one record. */
static char *cast_peers(size_t n, const unsigned *tokens, const unsigned *nonces)
{
	char list[8192] = "", one[1024];

	for (size_t i = 0; i < n; i++) {
		peer_text(one, sizeof(one), tokens[i], nonces[i]);
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? "," : "", one);
	}
	return cast_output("abi-encode 'f(" PEER_T "[])' '[%s]'", list);
}

static char *cast_peer_by_token(unsigned t, unsigned nonce)
{
	char one[1024];

	peer_text(one, sizeof(one), t, nonce);
	return cast_output("abi-encode 'f(" PEER_T ")' '%s'", one);
}

/*
 * Logs JSON: each (event signature, token, block, removed, nonce); data encoded by cast. A
 * PeerRegistered / PeerUpdated log carries the fields of peer_text(token, nonce).
 */
struct log_spec {
	const char *sig;
	unsigned token;
	uint64_t block;
	bool removed;
	unsigned nonce;
};

static void set_logs(struct chain_script *cs, const struct log_spec *l, size_t n)
{
	char *peer_data = NULL;
	size_t len = 0;
	char *topic = NULL;

	len += (size_t)snprintf(cs->logs, sizeof(cs->logs), "[");
	for (size_t i = 0; i < n; i++) {
		if (!i || strcmp(l[i].sig, l[i - 1].sig)) {
			free(topic);
			topic = cast_output("keccak '%s'", l[i].sig);
		}
		bool peer = strstr(l[i].sig, "Peer") == l[i].sig && strstr(l[i].sig, "string");

		if (peer && (!peer_data || strcmp(l[i].sig, l[i - 1].sig) || l[i].token != l[i - 1].token ||
			     l[i].nonce != l[i - 1].nonce)) {
			free(peer_data);
			peer_data = cast_output("abi-encode 'f(bytes32,string,uint8,uint64)' 0x%064x 10.0.0.%u:51820 1 %u",
						l[i].token, l[i].token, l[i].nonce);
		}
		const char *data = peer ? peer_data
				   : strstr(l[i].sig, "PeerRemoved") ? "0x0000000000000000000000000000000000000000000000000000000000000001"
				   : "0x";

		len += (size_t)snprintf(cs->logs + len, sizeof(cs->logs) - len,
			"%s{\"address\":\"0x" CONTRACT_HEX "\",\"topics\":[\"%s\",\"0x%064x\",\"0x%064x\"],"
			"\"data\":\"%s\",\"blockNumber\":\"0x%llx\",\"blockHash\":\"0x%064x\","
			"\"transactionHash\":\"0x%064x\",\"logIndex\":\"0x%zx\",\"removed\":%s}",
			i ? "," : "", topic, l[i].token, 0xa0 + l[i].token, data, (unsigned long long)l[i].block,
			1, 2, i, l[i].removed ? "true" : "false");
		cr_assert_lt(len, sizeof(cs->logs));
	}
	free(topic);
	snprintf(cs->logs + len, sizeof(cs->logs) - len, "]");
	free(peer_data);
}

#define REG "PeerRegistered(uint256,address,bytes32,string,uint8,uint64)"
#define UPD "PeerUpdated(uint256,address,bytes32,string,uint8,uint64)"

/* One poll; the reader's stats after it. */
static struct registry_reader_stats poll_once(struct registry_reader *r, bool *changed)
{
	struct registry_reader_stats s;

	cr_assert_eq(registry_reader_poll(r, changed), 0);
	registry_reader_get_stats(r, &s);
	return s;
}

/*
 * A reader on a scripted chain at block 10 holding tokens 1 and 2, after its first
 * poll (a full read); *s and *changed are that poll's.
 */
static struct registry_reader *synced_reader(struct chain_script *cs, struct fake_server *srv,
					     struct eth_rpc **rpc, struct registry_reader_stats *s,
					     bool *changed)
{
	struct registry_reader *reader;
	uint8_t contract[20];

	unhex(contract, 20, CONTRACT_HEX);
	cs->head = 10;
	cs->peers_hex = cast_peers(2, (unsigned[]){ 1, 2 }, (unsigned[]){ 1, 1 });
	server_start(srv, FAKE_HTTP, answer_chain, cs);
	*rpc = client(srv->url, 2000, -1);
	cr_assert_eq(registry_reader_new(*rpc, contract, 31337, &reader), 0);
	*s = poll_once(reader, changed);
	return reader;
}

Test(reader, a_change_is_read_by_the_tokens_its_logs_name, .timeout = 60)
{
	static struct chain_script cs;
	struct registry_reader_stats s;
	struct registry_reader *reader;
	const struct registry_record *p;
	bool named[REGISTRY_MAX_PEERS + 1];
	struct fake_server srv;
	struct eth_rpc *rpc;
	uint64_t from, v1, v2;
	size_t n;
	bool changed;

	reader = synced_reader(&cs, &srv, &rpc, &s, &changed);
	cr_assert(changed);
	cr_assert_eq(s.full_reads, 1);
	cr_assert_eq(s.head, 10);
	registry_reader_peers(reader, &n);
	cr_assert_eq(n, 2);
	cr_assert_not(registry_reader_take_named(reader, named, &from), "a full read: no patches to repeat");
	v1 = registry_reader_token_version(reader, 1);
	v2 = registry_reader_token_version(reader, 2);
	cr_assert(v1 && v2, "the first read gives each token it finds a version");
	cr_assert_eq(registry_reader_token_version(reader, 3), 0);
	cr_assert_eq(registry_reader_token_version(reader, 0), 0);
	cr_assert_eq(registry_reader_token_version(reader, REGISTRY_MAX_PEERS + 1), 0);

	/* Token 2 updated: one getPeerByToken, no getPeers(). */
	cs.head = 11;
	cs.by_token[2] = cast_peer_by_token(2, 2);
	set_logs(&cs, (struct log_spec[]){ { UPD, 2, 11, false, 2 } }, 1);
	s = poll_once(reader, &changed);
	p = registry_reader_peers(reader, &n);
	cr_assert(changed);
	cr_assert_eq(n, 2);
	cr_assert_eq(p[1].token_id, 2);
	cr_assert_eq(p[1].nonce, 2);
	cr_assert_eq(s.full_reads, 1);
	cr_assert_eq(s.records_read, 1);
	cr_assert_eq(s.head, 11);
	cr_assert_eq(cs.get_peers, 1);
	cr_assert(registry_reader_take_named(reader, named, &from));
	cr_assert_eq(from, 10);
	cr_assert(named[2] && !named[1] && !named[3]);
	cr_assert_neq(registry_reader_token_version(reader, 2), v2, "a log named token 2");
	cr_assert_eq(registry_reader_token_version(reader, 1), v1);
	v2 = registry_reader_token_version(reader, 2);

	/* Token 1 removed: its read reverts TokenHasNoPeer; the log of block 11 is not read again. */
	cs.head = 12;
	set_logs(&cs, (struct log_spec[]){ { UPD, 2, 11, false, 2 }, { "PeerRemoved(uint256,address,uint8)", 1, 12, false, 0 } }, 2);
	s = poll_once(reader, &changed);
	p = registry_reader_peers(reader, &n);
	cr_assert(changed);
	cr_assert_eq(n, 1);
	cr_assert_eq(p[0].token_id, 2);
	cr_assert_eq(s.records_read, 2);
	cr_assert_eq(s.full_reads, 1);
	cr_assert_eq(registry_reader_block(reader)->number, 12);
	cr_assert(registry_reader_take_named(reader, named, &from));
	cr_assert_eq(from, 11);
	cr_assert(named[1] && !named[2], "only what was read since the last take");
	cr_assert_neq(registry_reader_token_version(reader, 1), v1, "a log named token 1");
	cr_assert_eq(registry_reader_token_version(reader, 2), v2);
	v1 = registry_reader_token_version(reader, 1);

	/* A mint names no record; nothing read. */
	cs.head = 13;
	set_logs(&cs, (struct log_spec[]){ { "NodeAccessMinted(uint256,address,string)", 3, 13, false, 0 } }, 1);
	/* (its data is "0x": a NodeAccessMinted is not checked past its topics) */
	s = poll_once(reader, &changed);
	cr_assert_not(changed);
	cr_assert_eq(s.records_read, 2);
	cr_assert_eq(s.full_reads, 1);

	/* Each of these costs one full read, and nothing else. */
	free((char *)cs.peers_hex);
	cs.peers_hex = cast_peers(1, (unsigned[]){ 2 }, (unsigned[]){ 2 });
	cs.head = 14;
	set_logs(&cs, (struct log_spec[]){ { "PeerMoved(uint256,address)", 2, 14, false, 0 } }, 1);
	s = poll_once(reader, &changed);
	cr_assert_eq(s.full_reads, 2, "an unknown event");
	cr_assert_eq(registry_reader_token_version(reader, 2), v2, "a full read finding token 2 as it was");
	cr_assert_eq(registry_reader_token_version(reader, 1), v1, "gone before and after");
	cr_assert_not(registry_reader_take_named(reader, named, &from), "a full read since");
	cs.head = 15;
	set_logs(&cs, (struct log_spec[]){ { REG, 3, 15, true, 0 } }, 1);
	s = poll_once(reader, &changed);
	cr_assert_eq(s.full_reads, 3, "a removed log");
	cs.head = 16;
	cs.by_token[3] = "error";
	set_logs(&cs, (struct log_spec[]){ { REG, 3, 16, false, 0 } }, 1);
	s = poll_once(reader, &changed);
	cr_assert_eq(s.full_reads, 4, "a read that proves nothing");
	cs.head = 17;
	cs.fork_at = 16;                       /* block 16, which we read at, is gone */
	cs.logs[0] = '\0';
	s = poll_once(reader, &changed);
	cr_assert_eq(s.full_reads, 5, "a reorg");
	cr_assert_eq(s.reorgs, 1);
	cs.head = 18;
	cs.by_token[3] = NULL;                 /* every read would answer: only the count decides */
	{
		static struct log_spec many[65];

		for (unsigned i = 0; i < 65; i++)
			many[i] = (struct log_spec){ "InstanceBound(uint256,address)", i + 1, 18, false, 0 };
		set_logs(&cs, many, 65);
	}
	s = poll_once(reader, &changed);
	cr_assert_eq(s.full_reads, 6, "65 tokens");
	cr_assert_eq(s.records_read, 2, "no record read one by one in any of these");
	p = registry_reader_peers(reader, &n);
	cr_assert_eq(n, 1);
	cr_assert_eq(p[0].nonce, 2);

	registry_reader_free(reader);
	eth_rpc_free(rpc);
	server_stop(&srv);
	free((char *)cs.peers_hex);
	free((char *)cs.by_token[2]);
}

/*
 * A record read by token other than the logs said: none (a TokenHasNoPeer revert, or no
 * data) without a PeerRemoved, other fields than the PeerUpdated that named it, a change
 * after a log that changes no record, one after a PeerRemoved. A lying RPC's ways to tear
 * a live peer down by token; not believed: one full read at the same block decides. What
 * the logs said is believed without one.
 */
Test(reader, a_record_read_by_token_other_than_its_logs_say_is_read_in_full, .timeout = 60)
{
	static struct chain_script cs;
	struct registry_reader_stats s;
	struct registry_reader *reader;
	const struct registry_record *p;
	struct fake_server srv;
	struct eth_rpc *rpc;
	size_t n;
	bool changed;

	reader = synced_reader(&cs, &srv, &rpc, &s, &changed);
	cr_assert_eq(s.full_reads, 1);

	/* A PeerUpdated of token 2, and its read reverts TokenHasNoPeer: getPeers() keeps it. */
	cs.head = 11;
	set_logs(&cs, (struct log_spec[]){ { UPD, 2, 11, false, 0 } }, 1);
	s = poll_once(reader, &changed);
	p = registry_reader_peers(reader, &n);
	cr_assert_not(changed, "the full read agrees with the set");
	cr_assert_eq(n, 2);
	cr_assert_eq(p[1].token_id, 2);
	cr_assert_eq(cs.by_token_calls, 1);
	cr_assert_eq(s.records_read, 0, "a read that proved nothing is not counted");
	cr_assert_eq(s.full_reads, 2);
	cr_assert_eq(cs.get_peers, 2);
	cr_assert_eq(registry_reader_block(reader)->number, 11);

	/* No data at all for token 2 after an InstanceBound: the same. */
	cs.head = 12;
	cs.by_token[2] = "0x";
	set_logs(&cs, (struct log_spec[]){ { "InstanceBound(uint256,address)", 2, 12, false, 0 } }, 1);
	s = poll_once(reader, &changed);
	registry_reader_peers(reader, &n);
	cr_assert_eq(n, 2);
	cr_assert_eq(s.full_reads, 3);

	/* A record other than the PeerUpdated that named it (nonce 5 read, 3 logged): in full. */
	cs.head = 14;
	cs.by_token[2] = cast_peer_by_token(2, 5);
	set_logs(&cs, (struct log_spec[]){ { UPD, 2, 14, false, 3 } }, 1);
	s = poll_once(reader, &changed);
	p = registry_reader_peers(reader, &n);
	cr_assert_eq(s.full_reads, 4);
	cr_assert_eq(n, 2);
	cr_assert_eq(p[1].nonce, 1, "getPeers() decides");
	/* A changed record after a log that changes none (InstanceBound): in full. */
	cs.head = 15;
	set_logs(&cs, (struct log_spec[]){ { "InstanceBound(uint256,address)", 2, 15, false, 0 } }, 1);
	s = poll_once(reader, &changed);
	cr_assert_eq(s.full_reads, 5);
	/* A record where the last log of its token is PeerRemoved: in full. */
	cs.head = 16;
	set_logs(&cs, (struct log_spec[]){ { UPD, 2, 16, false, 5 }, { "PeerRemoved(uint256,address,uint8)", 2, 16, false, 0 } }, 2);
	s = poll_once(reader, &changed);
	cr_assert_eq(s.full_reads, 6);
	/* What the logs said: believed, no full read (the set takes nonce 5). */
	cs.head = 17;
	set_logs(&cs, (struct log_spec[]){ { "PeerRemoved(uint256,address,uint8)", 2, 17, false, 0 }, { REG, 2, 17, false, 5 } }, 2);
	s = poll_once(reader, &changed);
	p = registry_reader_peers(reader, &n);
	cr_assert_eq(s.full_reads, 6);
	cr_assert(changed);
	cr_assert_eq(p[1].nonce, 5);
	free((char *)cs.by_token[2]);

	/* A PeerRemoved of token 1 and its read reverts: believed, no full read. */
	cs.head = 18;
	cs.by_token[2] = NULL;
	set_logs(&cs, (struct log_spec[]){ { "PeerRemoved(uint256,address,uint8)", 1, 18, false, 0 } }, 1);
	s = poll_once(reader, &changed);
	p = registry_reader_peers(reader, &n);
	cr_assert(changed);
	cr_assert_eq(n, 1);
	cr_assert_eq(p[0].token_id, 2);
	cr_assert_eq(s.full_reads, 6);
	cr_assert_eq(s.records_read, 2);
	cr_assert_eq(cs.by_token_calls, 7);

	registry_reader_free(reader);
	eth_rpc_free(rpc);
	server_stop(&srv);
	free((char *)cs.peers_hex);
}

Test(rpc, url_list_taken_apart_once)
{
	struct rpc_url_list l;
	char many[256] = "";

	cr_assert_eq(rpc_url_list_parse(" http://a:8545/x , ,ipc:///run/geth.ipc,/tmp/s,http+unix:///run/h.sock", &l), 0);
	cr_assert_eq(l.n, 4);
	cr_assert_eq(l.url[0].transport, RPC_HTTP);
	cr_assert_str_eq(l.url[0].target, "http://a:8545/x");
	cr_assert_eq(l.url[1].transport, RPC_IPC);
	cr_assert_str_eq(l.url[1].target, "/run/geth.ipc");
	cr_assert_eq(l.url[2].transport, RPC_IPC);
	cr_assert_str_eq(l.url[2].target, "/tmp/s");
	cr_assert_eq(l.url[3].transport, RPC_HTTP_UNIX);
	cr_assert_str_eq(l.url[3].target, "/run/h.sock");
	cr_assert_eq(rpc_url_list_parse("ftp://a", &l), -EINVAL);
	cr_assert_eq(l.n, 0);
	cr_assert_eq(rpc_url_list_parse("ipc://", &l), -EINVAL);
	cr_assert_eq(rpc_url_list_parse(" , ", &l), -EINVAL);
	for (int i = 0; i < RPC_URLS_MAX + 1; i++)
		strcat(many, "http://h,");
	cr_assert_eq(rpc_url_list_parse(many, &l), -E2BIG);
}

/* pskEpoch(): the contract's value; out of range (a lying RPC) or a revert is an error. */
Test(rpc, psk_epoch_is_read_and_bounded)
{
	static const struct {
		const char *reply;
		int r;
		uint64_t seconds;
	} cases[] = {
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x"
		  "000000000000000000000000000000000000000000000000000000000000001e\"}",
		  0, 30 },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x"
		  "0000000000000000000000000000000000000000000000000000000000000e10\"}",
		  0, 3600 },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x"
		  "0000000000000000000000000000000000000000000000000000000000000000\"}",
		  -EBADMSG, 0 },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x"
		  "0000000000000000000000000000000000000000000000000000000000278d01\"}",
		  -EBADMSG, 0 },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":3,\"message\":\"execution reverted\"}}",
		  -1, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t contract[20] = { 1 };
		struct fake_server s;
		struct eth_rpc *rpc;
		uint64_t seconds = 0;
		int r;

		server_start(&s, FAKE_HTTP, answer_text, (void *)cases[i].reply);
		rpc = client(s.url, 2000, -1);
		r = registry_psk_epoch(rpc, contract, &seconds);
		if (cases[i].r == -1)
			cr_assert_lt(r, 0, "a revert (a contract without pskEpoch) is an error");
		else
			cr_assert_eq(r, cases[i].r, "case %zu: %d (%s)", i, r, eth_rpc_error(rpc));
		if (r == 0)
			cr_assert_eq(seconds, cases[i].seconds);
		eth_rpc_free(rpc);
		server_stop(&s);
	}
}

/* The counters metrics read: calls, and each failure under its kind. */
Test(rpc, stats_count_calls_and_errors_by_kind, .timeout = 20)
{
	int status = 503;
	struct fake_server bad, err, junk, hang;
	struct eth_rpc_stats st;
	struct eth_rpc *rpc;
	char urls[400];
	uint64_t id;

	server_start(&bad, FAKE_HTTP, answer_status, &status);
	server_start(&err, FAKE_HTTP, answer_text,
		     "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":\"no\"}}");
	snprintf(urls, sizeof(urls), "http://127.0.0.1:1, %s, %s", bad.url, err.url);
	rpc = client(urls, 2000, 1);
	cr_assert_eq(eth_chain_id(rpc, &id), -EREMOTEIO);
	eth_rpc_get_stats(rpc, &st);
	cr_assert_eq(st.calls, 1);
	cr_assert_eq(st.errors[ETH_RPC_CONNECTION], 2, "a try and a retry, got %llu",
		     (unsigned long long)st.errors[ETH_RPC_CONNECTION]);
	cr_assert_eq(st.errors[ETH_RPC_HTTP_STATUS], 2);
	cr_assert_eq(st.errors[ETH_RPC_JSONRPC_ERROR], 1);
	cr_assert_eq(st.errors[ETH_RPC_MALFORMED] + st.errors[ETH_RPC_TIMEOUT], 0);
	eth_rpc_free(rpc);

	server_start(&junk, FAKE_HTTP, answer_text, "<html>bad gateway</html>");
	server_start(&hang, FAKE_IPC, answer_hang, NULL);
	snprintf(urls, sizeof(urls), "%s, %s", junk.url, hang.url);
	rpc = client(urls, 300, -1);
	cr_assert_lt(eth_chain_id(rpc, &id), 0);
	eth_rpc_get_stats(rpc, &st);
	cr_assert_eq(st.calls, 1);
	cr_assert_eq(st.errors[ETH_RPC_MALFORMED], 1);
	cr_assert_eq(st.errors[ETH_RPC_TIMEOUT], 1);
	cr_assert_str_eq(eth_rpc_fault_name(ETH_RPC_JSONRPC_ERROR), "jsonrpc_error");
	eth_rpc_free(rpc);
	server_stop(&bad);
	server_stop(&err);
	server_stop(&junk);
	server_stop(&hang);
}
