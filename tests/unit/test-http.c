/* SPDX-License-Identifier: MIT */
/*
 * Kept connections (net/http.c): a loopback HTTP/1.1 server in a thread counts the TCP
 * connections it accepts and the requests it answers; it can close a connection after
 * every k-th reply, or drop one without a reply, to see the client connect anew.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "chain/chain.h"
#include "common/common.h"
#include "net/net.h"
#include "tests/unit/test-loopback.h"

#define MAX_CLIENTS 8

struct client {
	int fd;
	size_t n;          /* bytes of the request read so far */
	unsigned served;   /* replies on this connection */
	char buf[8192];
};

struct ka_server {
	int fd;
	char url[64];
	unsigned close_every;  /* > 0: "Connection: close" and close after this many replies */
	unsigned drop_at;      /* > 0: close without a reply when the request count hits this */
	atomic_uint accepted;
	atomic_uint requests;
	atomic_bool stop;
	struct client c[MAX_CLIENTS];
	pthread_t thread;
};

static void client_close(struct client *c)
{
	close(c->fd);
	c->fd = -1;
}

/* A whole request is buffered: answer it (a JSON-RPC reply with its id), or drop it. */
static void answer(struct ka_server *s, struct client *c, size_t len)
{
	const char *id = memmem(c->buf, len, "\"id\":", 5);
	unsigned n = ++s->requests;
	char head[256], body[128];
	bool last;

	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":%lu,\"result\":\"0x10\"}",
		 id ? strtoul(id + 5, NULL, 10) : 1ul);
	memmove(c->buf, c->buf + len, c->n - len);
	c->n -= len;
	if (s->drop_at && n == s->drop_at) {
		client_close(c);
		return;
	}
	c->served++;
	last = s->close_every && c->served % s->close_every == 0;
	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\n%s\r\n", strlen(body), last ? "Connection: close\r\n" : "");
	(void)!write(c->fd, head, strlen(head));
	(void)!write(c->fd, body, strlen(body));
	if (last)
		client_close(c);
}

/* Length of the first complete request in the buffer, 0 if it is not whole yet. */
static size_t request_length(const struct client *c)
{
	const char *end = memmem(c->buf, c->n, "\r\n\r\n", 4);
	const char *cl;
	size_t head, want = 0;

	if (!end)
		return 0;
	head = (size_t)(end + 4 - c->buf);
	cl = strcasestr(c->buf, "Content-Length:");
	if (cl && cl < end)
		want = strtoul(cl + 15, NULL, 10);
	return c->n - head >= want ? head + want : 0;
}

static void client_read(struct ka_server *s, struct client *c)
{
	ssize_t k = recv(c->fd, c->buf + c->n, sizeof(c->buf) - 1 - c->n, 0);
	size_t len;

	if (k <= 0) {
		client_close(c);
		return;
	}
	c->n += (size_t)k;
	c->buf[c->n] = '\0';
	while (c->fd >= 0 && (len = request_length(c)) > 0)
		answer(s, c, len);
}

static void *serve(void *arg)
{
	struct ka_server *s = arg;

	while (!s->stop) {
		struct pollfd p[MAX_CLIENTS + 1] = { { .fd = s->fd, .events = POLLIN } };

		for (int i = 0; i < MAX_CLIENTS; i++)
			p[i + 1] = (struct pollfd){ .fd = s->c[i].fd, .events = POLLIN };
		if (poll(p, MAX_CLIENTS + 1, 50) <= 0)
			continue;
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (s->c[i].fd >= 0 && p[i + 1].revents)
				client_read(s, &s->c[i]);
		if (p[0].revents & POLLIN) {
			int fd = accept(s->fd, NULL, NULL);
			int i = 0;

			if (fd < 0)
				continue;
			s->accepted++;
			while (i < MAX_CLIENTS && s->c[i].fd >= 0)
				i++;
			if (i == MAX_CLIENTS) {
				close(fd);
				continue;
			}
			s->c[i].fd = fd;
			s->c[i].n = 0;
			s->c[i].served = 0;
		}
	}
	return NULL;
}

static void server_start(struct ka_server *s, unsigned close_every, unsigned drop_at)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < MAX_CLIENTS; i++)
		s->c[i].fd = -1;
	s->close_every = close_every;
	s->drop_at = drop_at;
	s->fd = loopback_listen(s->url, sizeof(s->url));
	loopback_serve(s->fd, &s->thread, serve, s);
}

static void server_stop(struct ka_server *s)
{
	s->stop = true;
	pthread_join(s->thread, NULL);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (s->c[i].fd >= 0)
			close(s->c[i].fd);
	close(s->fd);
}

static const char request[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_blockNumber\",\"params\":[]}";

/* n POSTs through http_post; each must get a 200 with the server's body. */
static void post_n(struct ka_server *s, struct http_conn *conn, unsigned n)
{
	struct http_target t = { .base_url = s->url, .conn = conn, .timeout_ms = 5000 };

	for (unsigned i = 0; i < n; i++) {
		struct http_reply reply;

		cr_assert_eq(http_post(&t, "/", NULL, request, strlen(request), &reply), 0,
			     "request %u: %s", i, reply.error);
		cr_assert_eq(reply.status, 200);
		cr_assert(strstr((const char *)reply.body.data, "\"0x10\""));
		http_reply_clear(&reply);
	}
}

Test(http, kept_connection_is_one_tcp_connection)
{
	struct ka_server s;
	struct http_conn *conn;

	server_start(&s, 0, 0);
	cr_assert_eq(http_conn_new(&conn), 0);
	post_n(&s, conn, 20);
	cr_assert_eq(s.requests, 20);
	cr_assert_eq(s.accepted, 1, "%u connections for 20 requests", s.accepted);
	http_conn_free(conn);
	server_stop(&s);
}

Test(http, without_a_kept_connection_each_request_connects)
{
	struct ka_server s;

	server_start(&s, 0, 0);
	post_n(&s, NULL, 5);
	cr_assert_eq(s.requests, 5);
	cr_assert_eq(s.accepted, 5);
	server_stop(&s);
}

Test(http, server_closing_makes_the_next_request_reconnect)
{
	struct ka_server s;
	struct http_conn *conn;

	server_start(&s, 4, 0);
	cr_assert_eq(http_conn_new(&conn), 0);
	post_n(&s, conn, 12);
	cr_assert_eq(s.requests, 12);
	cr_assert_eq(s.accepted, 3, "%u connections", s.accepted);
	http_conn_free(conn);
	server_stop(&s);
}

/* A kept connection that dies under a request: that request fails or is retried by curl
 * on a new connection; either way the requests after it succeed on a new connection. */
Test(http, dropped_connection_is_replaced)
{
	struct http_target t;
	struct ka_server s;
	struct http_conn *conn;
	struct http_reply reply;
	int r;

	server_start(&s, 0, 3);
	t = (struct http_target){ .base_url = s.url, .timeout_ms = 5000 };
	cr_assert_eq(http_conn_new(&conn), 0);
	t.conn = conn;
	post_n(&s, conn, 2);
	r = http_post(&t, "/", NULL, request, strlen(request), &reply);
	cr_assert(r == 0 || r == -EIO, "%d %s", r, reply.error);
	http_reply_clear(&reply);
	post_n(&s, conn, 5);
	cr_assert_eq(s.accepted, 2, "%u connections", s.accepted);
	http_conn_free(conn);
	server_stop(&s);
}

/* The JSON-RPC client keeps one connection per endpoint across calls. */
Test(http, rpc_client_polls_over_one_connection)
{
	struct eth_rpc_config cfg = { .timeout_ms = 5000, .retries = 0 };
	struct ka_server s;
	struct eth_rpc *rpc;

	server_start(&s, 0, 0);
	cfg.urls = s.url;
	cr_assert_eq(eth_rpc_new(&cfg, &rpc), 0);
	for (int i = 0; i < 30; i++) {
		uint64_t block;

		cr_assert_eq(eth_block_number(rpc, &block), 0, "%s", eth_rpc_error(rpc));
		cr_assert_eq(block, 16);
	}
	cr_assert_eq(s.requests, 30);
	cr_assert_eq(s.accepted, 1, "%u connections for 30 calls", s.accepted);
	eth_rpc_free(rpc);
	server_stop(&s);
}
