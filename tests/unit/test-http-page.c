/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of net/http-page.c, one page served from the caller's loop, against
 * hostile callers: wrong paths, methods, bodies and oversized heads are refused; clients
 * that send nothing, drip their request or never read a large reply neither wait the
 * loop nor keep others out (the oldest is replaced, each has a deadline).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "net/net.h"

static size_t page_size = 5;

static int render(void *ctx, struct buf *body)
{
	int *renders = ctx;

	(*renders)++;
	if (page_size == 5)
		return buf_append(body, "m 1\n\n", 5);
	for (size_t i = 0; i < page_size; i++) {
		int r = buf_append(body, "x", 1);

		if (r < 0)
			return r;
	}
	return 0;
}

static uint16_t open_page(struct http_page *p, int *renders)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd;

	cr_assert_eq(http_listen("127.0.0.1:0", &fd, NULL), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	cr_assert_eq(http_page_open(p, fd, "/metrics", "text/plain; version=0.0.4", render, renders), 0);
	return ntohs(sin.sin_port);
}

static int client(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* The caller's loop: poll the page's fd, dispatch, until fd (a client) has input or EOF. */
static void pump_until_readable(struct http_page *p, int fd)
{
	for (int i = 0; i < 200; i++) {
		struct pollfd pf[2] = { { .fd = http_page_fd(p), .events = POLLIN },
					{ .fd = fd, .events = POLLIN } };

		if (poll(pf, 2, 10) < 0)
			cr_assert_fail("poll: %s", strerror(errno));
		if (pf[0].revents)
			http_page_dispatch(p, now_ms());
		if (pf[1].revents)
			return;
	}
	cr_assert_fail("no reply in 2 s");
}

/* Everything the server sends on fd until it closes, as text (the caller frees). */
static char *read_all(struct http_page *p, int fd)
{
	struct buf b;
	char chunk[4096];

	buf_init(&b, 1 << 20);
	for (;;) {
		ssize_t n;

		pump_until_readable(p, fd);
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n <= 0)
			break;
		cr_assert_eq(buf_append(&b, chunk, (size_t)n), 0);
	}
	close(fd);
	buf_terminate(&b);
	return (char *)b.data;
}

static char *exchange(struct http_page *p, uint16_t port, const char *request)
{
	int fd = client(port);

	cr_assert_eq(send(fd, request, strlen(request), 0), (ssize_t)strlen(request));
	return read_all(p, fd);
}

Test(http_page, answers_the_page_and_refuses_everything_else)
{
	static const struct {
		const char *request, *status;
	} cases[] = {
		{ "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\n" },
		{ "GET /metrics?x=1 HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n" },
		{ "GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.1 404 " },
		{ "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 " },
		{ "POST /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 " },
		{ "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 413 " },
		{ "GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 411 " },
		{ "\x01\x02 garbage\r\n\r\n", "HTTP/1.1 400 " },
	};
	struct http_page p;
	int renders = 0;
	uint16_t port = open_page(&p, &renders);
	char *reply;

	page_size = 5;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		reply = exchange(&p, port, cases[i].request);
		cr_assert(!strncmp(reply, cases[i].status, strlen(cases[i].status)), "%s -> %s",
			  cases[i].request, reply);
		if (i == 0) {
			cr_assert(strstr(reply, "\r\nContent-Type: text/plain; version=0.0.4\r\n"), "%s",
				  reply);
			cr_assert(strstr(reply, "\r\nContent-Length: 5\r\n"), "%s", reply);
			cr_assert(strstr(reply, "\r\n\r\nm 1\n\n"), "%s", reply);
		}
		free(reply);
	}
	cr_assert_eq(renders, 2, "only the page's requests render it");
	reply = exchange(&p, port, "HEAD /metrics HTTP/1.1\r\n\r\n");
	cr_assert(strstr(reply, "\r\nContent-Length: 5\r\n"), "%s", reply);
	cr_assert(!strcmp(strstr(reply, "\r\n\r\n"), "\r\n\r\n"), "HEAD has no body: %s", reply);
	free(reply);
	cr_assert_eq(p.stats.served, 3);
	cr_assert_eq(p.stats.refused, 6);
	http_page_close(&p);
	http_page_close(&p);
}

Test(http_page, a_head_too_large_is_refused)
{
	char big[HTTP_PAGE_REQUEST_MAX + 100];
	struct http_page p;
	int renders = 0;
	uint16_t port = open_page(&p, &renders);
	char *reply;

	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
	big[sizeof(big) - 1] = '\0';
	reply = exchange(&p, port, big);
	cr_assert(!strncmp(reply, "HTTP/1.1 431 ", 13), "%s", reply);
	free(reply);
	cr_assert_eq(renders, 0);
	http_page_close(&p);
}

/*
 * A table full of clients that say nothing, and one that drips its request a byte per
 * turn: a newcomer replaces the oldest and is answered at once; the dripper is answered
 * when its head is whole; the silent ones go at their deadline.
 */
Test(http_page, silent_and_dripping_clients_neither_wait_the_loop_nor_keep_others_out)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";
	int idle[HTTP_PAGE_CONNS], drip;
	struct http_page p;
	int renders = 0;
	uint16_t port = open_page(&p, &renders);
	char *reply, c;

	page_size = 5;
	drip = client(port);
	for (size_t i = 0; i < ARRAY_SIZE(idle); i++)
		idle[i] = client(port);
	for (int i = 0; i < 20; i++) /* the loop takes them all in; nothing to answer */
		http_page_dispatch(&p, now_ms());
	cr_assert_geq(p.stats.evicted, 1, "nine connections in a table of eight");
	reply = exchange(&p, port, req);
	cr_assert(!strncmp(reply, "HTTP/1.1 200 ", 13), "%s", reply);
	free(reply);
	/* The dripper was the oldest: replaced, its connection closed. */
	cr_assert_eq(send(drip, "G", 1, MSG_NOSIGNAL), 1);
	pump_until_readable(&p, drip);
	cr_assert_leq(recv(drip, &c, 1, 0), 0, "the oldest connection was not closed");
	close(drip);
	/* A new dripper: one byte a turn, answered once the head is whole. */
	drip = client(port);
	for (size_t i = 0; i < sizeof(req) - 1; i++) {
		cr_assert_eq(send(drip, req + i, 1, 0), 1);
		usleep(1000);
		http_page_dispatch(&p, now_ms());
	}
	reply = read_all(&p, drip);
	cr_assert(!strncmp(reply, "HTTP/1.1 200 ", 13), "%s", reply);
	free(reply);
	/* The silent ones are closed at their deadline. */
	http_page_expire(&p, now_ms() + HTTP_PAGE_DEADLINE_MS);
	cr_assert_geq(p.stats.expired, 1);
	for (size_t i = 0; i < ARRAY_SIZE(idle); i++) {
		struct pollfd pf = { .fd = idle[i], .events = POLLIN };

		cr_assert_eq(poll(&pf, 1, 0), 1, "silent client %zu still held", i);
		close(idle[i]);
	}
	for (size_t i = 0; i < HTTP_PAGE_CONNS; i++)
		cr_assert_eq(p.conn[i].fd, -1);
	http_page_close(&p);
}

/* A client that asks for a large page and never reads it: held only until its deadline. */
Test(http_page, a_reply_nobody_reads_is_dropped_at_the_deadline)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";
	int buf = 4096, slow, held;
	struct http_page p;
	int renders = 0;
	uint16_t port = open_page(&p, &renders);
	char *reply;

	page_size = 3u << 20;
	slow = client(port);
	setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	cr_assert_eq(send(slow, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
	for (int i = 0; i < 50; i++) {
		usleep(2000);
		http_page_dispatch(&p, now_ms());
	}
	cr_assert_eq(renders, 1);
	held = 0;
	for (size_t i = 0; i < HTTP_PAGE_CONNS; i++)
		held += p.conn[i].fd >= 0 && p.conn[i].out_off < p.conn[i].out.len;
	cr_assert_eq(held, 1, "the reply went out whole: the test shows nothing");
	page_size = 5;
	reply = exchange(&p, port, req); /* others are served meanwhile */
	cr_assert(!strncmp(reply, "HTTP/1.1 200 ", 13), "%s", reply);
	free(reply);
	http_page_expire(&p, now_ms() + HTTP_PAGE_DEADLINE_MS);
	for (size_t i = 0; i < HTTP_PAGE_CONNS; i++)
		cr_assert_eq(p.conn[i].fd, -1, "the unread reply is still held");
	close(slow);
	http_page_close(&p);
}
