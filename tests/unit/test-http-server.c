/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of net/http-server.c against idle and slow clients: a head that does not
 * arrive within 2 s is cut, one address keeps at most its share, a full table evicts a
 * waiting connection for a newcomer, a request that has arrived is answered, and the tick
 * runs while nothing else happens.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "common/common.h"
#include "net/net.h"

struct server {
	int fd;
	uint16_t port;
	pthread_t thread;
	volatile sig_atomic_t stop;
	volatile int ticks;
};

static int ok_handler(void *ctx, const struct http_request *req, struct buf *reply)
{
	(void)ctx;
	(void)req;
	return buf_printf(reply, "{}") < 0 ? 500 : 200;
}

static void on_tick(void *ctx)
{
	((struct server *)ctx)->ticks++;
}

static void *serve(void *arg)
{
	struct server *s = arg;
	sigset_t none;

	sigemptyset(&none);
	http_serve(&(struct http_server){ .max_header = 4096, .handler = ok_handler, .ctx = s,
					  .tick = on_tick, .tick_ms = 20 },
		   &s->fd, 1, &none, &s->stop);
	return NULL;
}

static void start(struct server *s)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);

	memset(s, 0, sizeof(*s));
	cr_assert_eq(http_listen("127.0.0.1:0", &s->fd, NULL), 0);
	cr_assert_eq(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
	s->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void stop(struct server *s)
{
	s->stop = 1;  /* the 20 ms tick wakes the loop */
	pthread_join(s->thread, NULL);
	close(s->fd);
}

/* A connection from src (a loopback address) to the server. */
static int dial(const struct server *s, const char *src)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(s->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in from = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	inet_pton(AF_INET, src, &from.sin_addr);
	cr_assert_eq(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Within ms: 1 when the server closed fd (EOF or reset), 0 when it is still open. */
static int closed_within(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c[256];

	if (poll(&p, 1, ms) <= 0)
		return 0;
	return recv(fd, c, sizeof(c), MSG_DONTWAIT) <= 0;
}

/* A whole GET from src answered 200 within 1 s. */
static bool answered(const struct server *s, const char *src)
{
	static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
	struct pollfd p;
	char reply[512] = "";
	int fd = dial(s, src);
	ssize_t n;

	cr_assert_eq(send(fd, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	n = poll(&p, 1, 1000) > 0 ? recv(fd, reply, sizeof(reply) - 1, 0) : -1;
	close(fd);
	return n > 0 && !strncmp(reply, "HTTP/1.1 200", 12);
}

Test(http_server, idle_clients_do_not_hold_it, .timeout = 20)
{
	struct server s;
	int other[40], mine[12], slow, evicted = 0, kept = 0;

	start(&s);
	/* 40 silent connections from another address: more than the table holds. */
	for (int i = 0; i < 40; i++)
		other[i] = dial(&s, "127.0.0.2");
	usleep(100000);
	for (int i = 0; i < 40; i++)
		evicted += closed_within(other[i], 0);
	cr_assert_geq(evicted, 32, "one address kept %d of 40 (share 8)", 40 - evicted);
	cr_assert(answered(&s, "127.0.0.1"), "a request among idle connections");
	/* The probes' own address: 12 silent, the oldest 4 make room; a request still passes. */
	for (int i = 0; i < 12; i++)
		mine[i] = dial(&s, "127.0.0.1");
	cr_assert(answered(&s, "127.0.0.1"), "a request beside its own address's idle ones");
	usleep(100000);
	for (int i = 0; i < 12; i++)
		kept += !closed_within(mine[i], 0);
	cr_assert_leq(kept, 8, "127.0.0.1 kept %d silent connections", kept);
	/* A head that drips: cut after about 2 s, not the 5 s of a whole request. */
	slow = dial(&s, "127.0.0.3");
	cr_assert_eq(send(slow, "GET / HT", 8, 0), 8);
	cr_assert_eq(closed_within(slow, 1500), 0, "cut too early");
	cr_assert_eq(closed_within(slow, 1500), 1, "a slow head held its slot past 3 s");
	cr_assert_gt(s.ticks, 10, "the tick ran %d times", s.ticks);
	for (int i = 0; i < 40; i++)
		close(other[i]);
	for (int i = 0; i < 12; i++)
		close(mine[i]);
	close(slow);
	stop(&s);
}
