/* SPDX-License-Identifier: MIT */
/* mesh: the agent's local control socket: a one-line request, a JSON reply; "watch" streams. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"

/* What one control client may cost the agent's loop, request and reply together. */
#define CONTROL_CLIENT_MS 1000

static int unix_address(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

/* mkdir -p of path's parent directory, bounded by PATH_MAX. */
static int make_parent_dir(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int control_listen(struct control_server *s, const char *path)
{
	struct sockaddr_un sun;
	int fd, r;

	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < ARRAY_SIZE(s->watchers); i++)
		s->watchers[i] = -1;
	s->fd = -1;
	r = unix_address(path, &sun);
	if (r < 0)
		return r;
	r = make_parent_dir(path);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/*
	 * A socket left by a killed agent refuses connections, so it is safe to replace.
	 * Anything else (a live agent, or one whose backlog is full: EAGAIN) is left alone.
	 */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 || errno == EAGAIN) {
		close(fd);
		return -EADDRINUSE;
	}
	if (errno != ECONNREFUSED && errno != ENOENT) {
		r = -errno;
		close(fd);
		return r;
	}
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, CONTROL_BACKLOG) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	/* The peer list and status are not secret; apps in other containers may ask. */
	chmod(path, 0666);
	s->fd = fd;
	snprintf(s->path, sizeof(s->path), "%s", path);
	return 0;
}

void control_close(struct control_server *s)
{
	if (s->fd < 0)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(s->watchers); i++)
		if (s->watchers[i] >= 0)
			close(s->watchers[i]);
	close(s->fd);
	unlink(s->path);
	s->fd = -1;
}

/*
 * Whole buffer or an error. The socket's send timeout bounds each send, the deadline
 * the whole: a client that reads a byte now and then must not hold the agent's loop.
 */
static int send_all(int fd, const void *data, size_t len, uint64_t deadline)
{
	const char *p = data;

	while (len) {
		ssize_t w;

		if (now_ms() > deadline)
			return -ETIMEDOUT;
		w = send(fd, p, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

void control_accept(struct control_server *s, control_reply_fn reply, void *ctx)
{
	/* Bounded: a burst of clients is served over several loop turns. */
	for (int n = 0; n < 8; n++) {
		struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
		uint64_t deadline;
		char req[64];
		struct buf out;
		ssize_t got;
		size_t len = 0;
		int fd;

		fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return;
		/* A client that says nothing, or drips its request or reads its reply slowly,
		 * costs us at most about a second. */
		deadline = now_ms() + CONTROL_CLIENT_MS;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		while (len < sizeof(req) - 1 && now_ms() < deadline) {
			got = recv(fd, req + len, sizeof(req) - 1 - len, 0);
			if (got <= 0)
				break;
			len += (size_t)got;
			if (memchr(req, '\n', len))
				break;
		}
		req[len] = '\0';
		req[strcspn(req, "\r\n")] = '\0';

		buf_init(&out, 1 << 20);
		if (!strcmp(req, "watch")) {
			size_t i;

			for (i = 0; i < ARRAY_SIZE(s->watchers) && s->watchers[i] >= 0; i++)
				;
			if (i == ARRAY_SIZE(s->watchers)) {
				static const char full[] = "{\"error\":\"too many watchers (at most "
					CONTROL_MAX_WATCHERS_STR "); try again later\"}\n";

				send_all(fd, full, sizeof(full) - 1, deadline);
			} else if (reply(ctx, "peers", &out) == 0 &&
			    buf_append(&out, "\n", 1) == 0 && send_all(fd, out.data, out.len, deadline) == 0) {
				s->watchers[i] = fd;
				fd = -1;
			}
		} else if (reply(ctx, req, &out) == 0) {
			if (buf_append(&out, "\n", 1) == 0)
				send_all(fd, out.data, out.len, deadline);
		} else {
			static const char unknown[] = "{\"error\":\"unknown request\"}\n";

			send_all(fd, unknown, sizeof(unknown) - 1, deadline);
		}
		buf_free(&out);
		if (fd >= 0)
			close(fd);
	}
}

void control_broadcast(struct control_server *s, const char *line)
{
	size_t len = strlen(line);

	for (size_t i = 0; i < ARRAY_SIZE(s->watchers); i++) {
		uint64_t deadline = now_ms() + CONTROL_CLIENT_MS;
		int fd = s->watchers[i];

		if (fd < 0)
			continue;
		/* A watcher that stopped reading (or left) is dropped; it can reconnect. */
		if (send_all(fd, line, len, deadline) < 0 || send_all(fd, "\n", 1, deadline) < 0) {
			close(fd);
			s->watchers[i] = -1;
		}
	}
}

/* ---- the client side: CLI commands and the C API ------------------------------------- */

const char *mesh_control_path(const char *flag)
{
	const char *env = getenv("DSTACK_P2P_CONTROL");

	if (flag && *flag)
		return flag;
	return env && *env ? env : MESH_DEFAULT_CONTROL;
}

static int control_connect(const char *path, int timeout_ms)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	struct sockaddr_un sun;
	int fd, r;

	r = unix_address(path, &sun);
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

int mesh_control_query(const char *path, const char *request, struct buf *out, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 5000);
	char chunk[4096];
	int fd, r = 0;

	fd = control_connect(path, timeout_ms > 0 ? timeout_ms : 5000);
	if (fd < 0)
		return fd;
	r = send_all(fd, request, strlen(request), deadline);
	if (r == 0)
		r = send_all(fd, "\n", 1, deadline);
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

int mesh_control_watch(const char *path)
{
	int fd = control_connect(path, 5000), r;
	struct timeval none = { 0 };

	if (fd < 0)
		return fd;
	r = send_all(fd, "watch\n", 6, now_ms() + 5000);
	if (r < 0) {
		close(fd);
		return r;
	}
	/* The stream is long-lived: reads block until the next change. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	return fd;
}
