/* SPDX-License-Identifier: MIT */
/* The loopback servers of the HTTP and JSON-RPC unit tests: a listener and its thread. */
#ifndef TEST_LOOPBACK_H
#define TEST_LOOPBACK_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

/* A TCP socket bound to 127.0.0.1 at a free port (*port), not yet listening. */
static inline int loopback_bind(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* The same, with its URL "http://127.0.0.1:PORT" into url. */
static inline int loopback_listen(char *url, size_t cap)
{
	uint16_t port;
	int fd = loopback_bind(&port);

	snprintf(url, cap, "http://127.0.0.1:%u", port);
	return fd;
}

/* listen(fd) and run serve(arg) on a new thread. */
static inline void loopback_serve(int fd, pthread_t *thread, void *(*serve)(void *), void *arg)
{
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(pthread_create(thread, NULL, serve, arg), 0);
}

#endif
