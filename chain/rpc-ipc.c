/* SPDX-License-Identifier: MIT */
/*
 * The IPC transport of geth and anvil (--ipc): JSON-RPC over a raw unix stream socket,
 * no HTTP. A reply ends where its top-level JSON value ends, so we scan for that; the
 * write side stays open, because anvil drops a request whose socket was half-closed.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "chain/internal.h"
#include "common/common.h"

/* Tracks where one JSON value ends in a byte stream, across reads. */
struct json_end_scanner {
	int depth;
	bool in_string;
	bool escaped;
	bool started;
};

/* Feed bytes; returns how many belong to the value once it is complete, else 0. */
static size_t json_end_feed(struct json_end_scanner *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (s->in_string) {
			if (s->escaped)
				s->escaped = false;
			else if (c == '\\')
				s->escaped = true;
			else if (c == '"')
				s->in_string = false;
			continue;
		}
		if (c == '"') {
			s->in_string = true;
		} else if (c == '{' || c == '[') {
			s->depth++;
			s->started = true;
		} else if (c == '}' || c == ']') {
			if (--s->depth == 0 && s->started)
				return i + 1;
		}
	}
	return 0;
}

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = now_ms();

	if (now >= deadline)
		return 0;
	/* poll() takes an int, and a negative one means forever. */
	return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

/*
 * Until fd is ready, the deadline passes or the abort flag is set. A signal handled on
 * another thread does not interrupt our poll, so the flag is also looked at every 200 ms.
 */
static int wait_fd(int fd, short events, uint64_t deadline, const volatile sig_atomic_t *abort_flag)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	for (;;) {
		int ms = remaining_ms(deadline);

		if (abort_flag && *abort_flag)
			return -ECANCELED;
		if (ms == 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, abort_flag && ms > 200 ? 200 : ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int rpc_ipc_exchange(const char *path, const char *req, size_t req_len, long timeout_ms,
		     const volatile sig_atomic_t *abort_flag, struct buf *reply, struct err_detail *why)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct json_end_scanner scan = { 0 };
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	size_t sent = 0;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		err_detail_set(why, "socket path too long");
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		r = -errno;
		err_detail_set(why, "connect: %s", strerror(errno));
		goto out;
	}
	while (sent < req_len) {
		ssize_t n;

		r = wait_fd(fd, POLLOUT, deadline, abort_flag);
		if (r < 0)
			goto io_error;
		n = send(fd, req + sent, req_len - sent, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			r = -errno;
			goto io_error;
		}
		sent += (size_t)n;
	}
	for (;;) {
		char chunk[16384];
		ssize_t n;
		size_t end;

		r = wait_fd(fd, POLLIN, deadline, abort_flag);
		if (r < 0)
			goto io_error;
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			r = -errno;
			goto io_error;
		}
		if (n == 0) {
			r = -ECONNRESET;
			err_detail_set(why, "connection closed before a complete reply");
			goto out;
		}
		end = json_end_feed(&scan, chunk, (size_t)n);
		r = buf_append(reply, chunk, end ? end : (size_t)n);
		if (r < 0) {
			err_detail_set(why, "reply larger than %zu bytes", reply->max);
			goto out;
		}
		if (end) {
			r = buf_terminate(reply);
			goto out;
		}
	}
io_error:
	err_detail_set(why, "%s", r == -ETIMEDOUT ? "timed out" : r == -ECANCELED ? "cancelled" : strerror(-r));
out:
	close(fd);
	return r;
}
