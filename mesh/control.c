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
#include "registry/registry.h"

/* What one control client may cost the agent's loop, request and reply together. */
#define CONTROL_CLIENT_MS 1000

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
	r = unix_sockaddr(path, &sun);
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

int control_error(struct buf *out, const char *code, const char *message)
{
	int r;

	buf_reset(out);
	r = buf_printf(out, "{\"version\":%d,\"error\":{\"code\":\"%s\",\"message\":", CONTROL_VERSION, code);
	if (r == 0)
		r = json_append_string(out, message);
	if (r == 0 && !strcmp(code, "unsupported_version"))
		r = buf_printf(out, ",\"supported\":[%d]", CONTROL_VERSION);
	if (r == 0)
		r = buf_printf(out, "}}");
	return r;
}

/* A request name: lowercase letters, digits, '.', '_' and '-', at most 31 bytes. */
static bool request_name_ok(const char *s, size_t len)
{
	if (len == 0 || len >= sizeof(((struct control_request *)0)->name))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

/* The fields of a JSON request into req; *what names the first one wrong. */
static int request_parse_json(const char *line, size_t len, struct control_request *req, const char **what)
{
	struct json j;
	int64_t v;
	size_t n;
	const char *s;
	int i, r = -EINVAL;

	if (json_parse(&j, line, len, 32) < 0) {
		*what = "the request is not one JSON object of at most 32 tokens";
		return -EINVAL;
	}
	*what = "the request is not a JSON object";
	if (j.ntok < 1 || j.tok[0].type != JSON_OBJECT)
		goto out;
	i = json_get(&j, 0, "version");
	*what = "\"version\" is missing or not a positive integer";
	if (i < 0 || json_int64(&j, i, &v) < 0 || v < 1 || v > 1000000)
		goto out;
	req->version = (unsigned)v;
	i = json_get(&j, 0, "request");
	*what = "\"request\" is missing or not a request name";
	if (i < 0 || j.tok[i].type != JSON_STRING)
		goto out;
	s = json_raw(&j, i, &n);
	if (!request_name_ok(s, n))
		goto out;
	memcpy(req->name, s, n);
	req->name[n] = '\0';
	i = json_get(&j, 0, "target");
	*what = "\"target\" is not a token id (1..254)";
	if (i >= 0 && (json_int64(&j, i, &req->target) < 0 || req->target < 1 || req->target > REGISTRY_MAX_PEERS))
		goto out;
	i = json_get(&j, 0, "no_confidence");
	*what = "\"no_confidence\" is not a boolean";
	if (i >= 0 && json_bool(&j, i, &req->no_confidence) < 0)
		goto out;
	r = 0;
	*what = "";
out:
	json_clear(&j);
	return r;
}

int control_request_parse(const char *line, size_t len, struct control_request *req, struct err_detail *why)
{
	const char *what = "";
	int r;

	memset(req, 0, sizeof(*req));
	req->version = CONTROL_VERSION;
	req->no_confidence = true;
	err_detail_set(why, "%s", "");
	if (len && line[0] == '{') {
		r = request_parse_json(line, len, req, &what);
		if (r < 0)
			err_detail_set(why, "%s", what);
		return r;
	}
	/* A bare word: the shell-friendly form of {"version":1,"request":WORD}. */
	if (!request_name_ok(line, len)) {
		err_detail_set(why, "a request is one word (peers, status, watch, ...) or a JSON object");
		return -EINVAL;
	}
	memcpy(req->name, line, len);
	req->name[len] = '\0';
	return 0;
}

/* Read one request line, bounded in size and time. */
static size_t read_request(int fd, char *req, size_t cap, uint64_t deadline)
{
	size_t len = 0;

	while (len < cap - 1 && now_ms() < deadline) {
		ssize_t got = recv(fd, req + len, cap - 1 - len, 0);

		if (got <= 0)
			break;
		len += (size_t)got;
		if (memchr(req, '\n', len))
			break;
	}
	req[len] = '\0';
	return strcspn(req, "\r\n");
}

/* Who is on the other end (actions are only for the users the operator allows). */
static void peer_cred(int fd, struct control_request *req)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	req->cred_known = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred);
	req->uid = req->cred_known ? (long)cred.uid : MESH_ID_NONE;
	req->gid = req->cred_known ? (long)cred.gid : MESH_ID_NONE;
}

/* The reply to one request into out: a document, or an error object. */
static void answer(const struct control_request *req, const char *why, control_reply_fn reply, void *ctx,
		   struct buf *out)
{
	char msg[160];
	int r;

	if (*why) {
		control_error(out, "bad_request", why);
		return;
	}
	if (req->version != CONTROL_VERSION) {
		snprintf(msg, sizeof(msg), "this agent speaks control protocol version %d; the request "
			 "asked for version %u", CONTROL_VERSION, req->version);
		control_error(out, "unsupported_version", msg);
		return;
	}
	r = reply(ctx, req, out);
	if (r == -ENOENT) {
		snprintf(msg, sizeof(msg), "unknown request '%s'", req->name);
		control_error(out, "unknown_request", msg);
	} else if (r < 0) {
		control_error(out, "internal", errstr(r));
	}
}

void control_accept(struct control_server *s, control_reply_fn reply, void *ctx)
{
	/* Bounded: a burst of clients is served over several loop turns. */
	for (int n = 0; n < 8; n++) {
		struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
		struct control_request req;
		uint64_t deadline;
		char line[CONTROL_REQUEST_MAX + 1];
		struct err_detail why;
		struct buf out;
		size_t len;
		int fd;

		fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return;
		/* A client that says nothing, or drips its request or reads its reply slowly,
		 * costs us at most about a second. */
		deadline = now_ms() + CONTROL_CLIENT_MS;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		len = read_request(fd, line, sizeof(line), deadline);
		s->stats.requests++;
		if (control_request_parse(line, len, &req, &why) < 0 && !why.text[0])
			err_detail_set(&why, "malformed request");
		s->stats.malformed += why.text[0] != '\0';
		peer_cred(fd, &req);

		buf_init(&out, 1 << 20);
		if (!why.text[0] && req.version == CONTROL_VERSION && !strcmp(req.name, "watch")) {
			struct control_request peers = req;
			size_t i;

			snprintf(peers.name, sizeof(peers.name), "peers");
			for (i = 0; i < ARRAY_SIZE(s->watchers) && s->watchers[i] >= 0; i++)
				;
			if (i == ARRAY_SIZE(s->watchers))
				control_error(&out, "busy", "too many watchers (at most " CONTROL_MAX_WATCHERS_STR
					      "); try again later");
			else if (reply(ctx, &peers, &out) < 0)
				control_error(&out, "internal", "no peers document");
			if (buf_append(&out, "\n", 1) == 0 && unix_send_all(fd, out.data, out.len, deadline) == 0 &&
			    i < ARRAY_SIZE(s->watchers)) {
				s->watchers[i] = fd;
				fd = -1;
			}
		} else {
			answer(&req, why.text, reply, ctx, &out);
			/* A leader action's RPC calls (or relayer request) took time: the client's
			 * second for the reply starts now. */
			deadline = now_ms() + CONTROL_CLIENT_MS;
			if (buf_append(&out, "\n", 1) == 0)
				unix_send_all(fd, out.data, out.len, deadline);
		}
		buf_clear(&out);
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
		if (unix_send_all(fd, line, len, deadline) < 0 || unix_send_all(fd, "\n", 1, deadline) < 0) {
			close(fd);
			s->watchers[i] = -1;
			s->stats.watchers_dropped++;
		}
	}
}

struct control_stats control_stats(const struct control_server *s)
{
	struct control_stats st = s->stats;

	st.watchers = 0;
	for (size_t i = 0; i < ARRAY_SIZE(s->watchers); i++)
		st.watchers += s->watchers[i] >= 0;
	return st;
}
