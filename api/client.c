/* SPDX-License-Identifier: MIT */
/* api: the control socket's client, shared by the C API and the CLI (libc only). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/internal.h"
#include "common/common.h"

const char *api_control_path(const char *flag)
{
	const char *env = getenv("DSTACK_P2P_CONTROL");

	if (flag && *flag)
		return flag;
	return env && *env ? env : API_DEFAULT_CONTROL;
}

static int control_connect(const char *path, int timeout_ms)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	struct sockaddr_un sun;
	int fd, r;

	r = unix_sockaddr(path, &sun);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (timeout_ms > 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int api_control_query(const char *path, const char *request, struct buf *out, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 5000);
	char chunk[4096];
	int fd, r = 0;

	fd = control_connect(path, timeout_ms > 0 ? timeout_ms : 5000);
	if (fd < 0)
		return fd;
	r = unix_send_all(fd, request, strlen(request), deadline);
	if (r == 0)
		r = unix_send_all(fd, "\n", 1, deadline);
	while (r == 0) {
		ssize_t got = recv(fd, chunk, sizeof(chunk), 0);

		if (got == 0)
			break;
		if (got < 0) {
			r = errno == EAGAIN ? -ETIMEDOUT : -errno;
			break;
		}
		r = buf_append(out, chunk, (size_t)got);
		if (now_ms() > deadline)
			r = -ETIMEDOUT;
	}
	close(fd);
	if (r == 0)
		r = buf_terminate(out);
	return r;
}

int api_control_watch(const char *path)
{
	int fd = control_connect(path, 5000), r;
	struct timeval none = { 0 };

	if (fd < 0)
		return fd;
	r = unix_send_all(fd, "watch\n", 6, now_ms() + 5000);
	if (r < 0) {
		close(fd);
		return r;
	}
	/* The stream is long-lived: reads block until the next change. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	return fd;
}
