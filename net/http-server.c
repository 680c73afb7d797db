/* SPDX-License-Identifier: MIT */
/*
 * A small HTTP/1.1 server over poll: bounded requests, one per connection (dstack-sim,
 * relayer, cluster serve). Idle clients cannot hold it: a short deadline for the request
 * head, a per-address share of the table, and a full table evicts the oldest waiting
 * connection of the address holding most.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "net/net.h"

#define MAX_LISTENERS   4
#define MAX_CONNECTIONS 32
/* A client has this long to send its request and take the reply, unless configured. */
#define REQUEST_DEADLINE_MS 5000
/* And this long for the request's head (line and headers): a slow head is a held slot. */
#define HEAD_DEADLINE_MS 2000
/* Connections one address may hold; a new one beyond that replaces its oldest waiting one. */
#define PER_ADDRESS_DEFAULT 8
/* And at least this long to take the reply once the handler is done. */
#define REPLY_DEADLINE_MS 2000

struct connection {
	int fd;                /* -1: free slot */
	uint64_t deadline;
	uint64_t accepted;     /* ms: the oldest waiting connection is the one evicted */
	bool head_done;        /* the head is in: the request's full deadline applies */
	struct buf in;
	bool unread_input;     /* answered before the whole request was read */
	bool streaming;        /* answered, held open: stream_more writes to it */
	uint64_t cursor;       /* the stream's position */
	char peer[HTTP_PEER_MAX];
};

/* How long a stream's client has to take one round of data. */
#define STREAM_SEND_MS 200

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 403: return "Forbidden";
	case 413: return "Content Too Large";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 431: return "Request Header Fields Too Large";
	default: return "Internal Server Error";
	}
}

/* Blocking-with-deadline write of the whole reply; the fd is non-blocking. False: not all sent. */
static bool send_all(int fd, const void *data, size_t len, uint64_t deadline)
{
	const uint8_t *p = data;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		uint64_t now = now_ms();

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if ((n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || now >= deadline)
			return false;
		if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
			return false;
	}
	return true;
}

static void send_typed_reply(int fd, int status, const char *type, const struct buf *body,
			     uint64_t deadline)
{
	char head[384];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
		     "Connection: close\r\n\r\n", status, status_text(status), type, body->len);
	if (n < 0 || (size_t)n >= sizeof(head))
		return;
	send_all(fd, head, (size_t)n, deadline);
	send_all(fd, body->data, body->len, deadline);
}

/* The head of a stream: no Content-Length, the body ends when the connection closes. */
static bool send_stream_head(int fd, const char *type, const struct buf *first, uint64_t deadline)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
			 "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n", type);

	if (n < 0 || (size_t)n >= sizeof(head))
		return false;
	return send_all(fd, head, (size_t)n, deadline) &&
	       send_all(fd, first->data, first->len, deadline);
}

static void send_reply(int fd, int status, const struct buf *body, uint64_t deadline)
{
	send_typed_reply(fd, status, "application/json", body, deadline);
}

static void send_error(int fd, int status, const char *msg, uint64_t deadline)
{
	struct buf body;

	buf_init(&body, 1024);
	if (!buf_printf(&body, "{\"error\":") && !json_append_string(&body, msg) &&
	    !buf_printf(&body, "}"))
		send_reply(fd, status, &body, deadline);
	buf_clear(&body);
}

/* Copy a header's value (trimmed) when the line names it. */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t out_len)
{
	size_t nlen = strlen(name), vlen;
	const char *v;

	if (len <= nlen || strncasecmp(line, name, nlen) || line[nlen] != ':')
		return false;
	v = line + nlen + 1;
	vlen = len - nlen - 1;
	while (vlen && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (vlen >= out_len)
		vlen = out_len - 1;
	memcpy(out, v, vlen);
	out[vlen] = '\0';
	return true;
}

/* "POST /GetKey HTTP/1.1" */
static bool parse_request_line(const char *text, size_t len, struct http_request *req)
{
	char line[256], version[16];

	if (len >= sizeof(line))
		return false;
	memcpy(line, text, len);
	line[len] = '\0';
	return sscanf(line, "%7s %127s %15s", req->method, req->path, version) == 3 &&
	       !strncmp(version, "HTTP/1.", 7);
}

int http_parse_head(const uint8_t *data, size_t len, size_t max_header, size_t max_body,
		    struct http_request *req)
{
	const char *text = (const char *)data, *end, *line, *eol;
	char value[32];

	memset(req, 0, sizeof(*req));
	end = len >= 4 ? memmem(text, len, "\r\n\r\n", 4) : NULL;
	if (!end)
		return len >= max_header ? 431 : 1;
	req->header_len = (size_t)(end - text) + 4;
	if (req->header_len > max_header)
		return 431;

	eol = memmem(text, req->header_len, "\r\n", 2);
	if (!parse_request_line(text, (size_t)(eol - text), req))
		return 400;
	for (line = eol + 2; line < end; line = eol + 2) {
		eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
		if (!eol)
			break;
		if (header_value(line, (size_t)(eol - line), "Content-Length", value, sizeof(value))) {
			char *stop;
			unsigned long long n = strtoull(value, &stop, 10);

			if (!*value || *stop || *value == '-' || *value == '+')
				return 400;
			if (n > max_body)
				return 413;
			req->content_length = (size_t)n;
		} else if (header_value(line, (size_t)(eol - line), "Transfer-Encoding", value,
					sizeof(value))) {
			return 411;  /* chunked bodies: not needed by any client here */
		} else if (!header_value(line, (size_t)(eol - line), "Content-Type",
					 req->content_type, sizeof(req->content_type)) &&
			   !header_value(line, (size_t)(eol - line), "Host", req->host,
					 sizeof(req->host))) {
			header_value(line, (size_t)(eol - line), "Last-Event-ID", req->last_event_id,
				     sizeof(req->last_event_id));
		}
	}
	return 0;
}

/*
 * Closing a socket that still has unread input makes the kernel send a reset, which can
 * destroy the error reply before the client reads it (curl then reports "failed sending
 * data" instead of our 413). So after an early answer, say we are done writing and
 * read what is still coming, for at most 200 ms and 1 MiB.
 */
static void drain_before_close(int fd)
{
	uint64_t deadline = now_ms() + 200;
	size_t drained = 0;
	uint8_t chunk[4096];

	shutdown(fd, SHUT_WR);
	while (drained < (1u << 20)) {
		uint64_t now = now_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
			break;
		n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR)))
			break;
		if (n > 0)
			drained += (size_t)n;
	}
}

static void connection_close(struct connection *c)
{
	/* Requests are not secret, but wipe anyway: cheap, and replies share the allocator. */
	buf_wipe_clear(&c->in);
	if (c->unread_input)
		drain_before_close(c->fd);
	close(c->fd);
	c->fd = -1;
	c->unread_input = false;
	c->streaming = false;
}

static int count_streams(const struct connection *conns)
{
	int n = 0;

	for (int i = 0; i < MAX_CONNECTIONS; i++)
		n += conns[i].fd >= 0 && conns[i].streaming;
	return n;
}

/* A stream's client only closes; anything it sends is dropped. True: it is gone. */
static bool stream_readable(struct connection *c)
{
	uint8_t chunk[512];
	ssize_t n = recv(c->fd, chunk, sizeof(chunk), MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* One round: what is new on every stream; a stream that fails or stalls is closed. */
static void streams_tick(const struct http_server *srv, struct connection *conns)
{
	for (int i = 0; i < MAX_CONNECTIONS; i++) {
		struct connection *c = &conns[i];
		struct buf out;
		bool alive;

		if (c->fd < 0 || !c->streaming)
			continue;
		buf_init(&out, 1 << 20);
		alive = srv->stream_more(srv->ctx, &c->cursor, &out) == 0 &&
			send_all(c->fd, out.data, out.len, now_ms() + STREAM_SEND_MS);
		buf_clear(&out);
		if (!alive)
			connection_close(c);
	}
}

/* Read what is there; answer once the request is whole. Returns true when done. */
static bool connection_readable(const struct http_server *srv, struct connection *c,
				int open_streams)
{
	struct http_request req;
	struct buf reply;
	struct http_reply_meta meta = { .type = "application/json" };
	uint8_t chunk[4096];
	ssize_t n;
	int r;

	n = recv(c->fd, chunk, sizeof(chunk), 0);
	if (n < 0)
		return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
	if (n == 0)
		return true;  /* the client gave up */
	if (buf_append(&c->in, chunk, (size_t)n) < 0) {
		send_error(c->fd, 413, "request too large", c->deadline);
		c->unread_input = true;
		return true;
	}
	r = http_parse_head(c->in.data, c->in.len, srv->max_header, srv->max_body, &req);
	if (r == 1)
		return false;
	if (r) {
		send_error(c->fd, r, status_text(r), c->deadline);
		c->unread_input = true;
		return true;
	}
	if (!c->head_done) {
		/* The head made it in time: the body gets what is left of the full deadline. */
		c->head_done = true;
		c->deadline = c->accepted + (uint64_t)(srv->deadline_ms > 0 ? srv->deadline_ms
										: REQUEST_DEADLINE_MS);
	}
	if (c->in.len < req.header_len + req.content_length)
		return false;
	if (strcmp(req.method, "POST") && strcmp(req.method, "GET")) {
		send_error(c->fd, 405, "use POST", c->deadline);
		return true;
	}
	buf_init(&reply, 1 << 20);
	req.body = (const char *)c->in.data + req.header_len;
	memcpy(req.peer, c->peer, sizeof(req.peer));
	if (srv->typed_handler)
		r = srv->typed_handler(srv->ctx, &req, &reply, &meta);
	else
		r = srv->handler(srv->ctx, &req, &reply);
	/* A handler may take a while (RPC round trips): the reply gets its own time. */
	if (c->deadline < now_ms() + REPLY_DEADLINE_MS)
		c->deadline = now_ms() + REPLY_DEADLINE_MS;
	if (meta.stream && srv->stream_more && open_streams < srv->max_streams) {
		c->streaming = send_stream_head(c->fd, meta.type, &reply, c->deadline);
		c->cursor = meta.cursor;
		c->deadline = now_ms() + (uint64_t)srv->stream_ms;
		buf_clear(&reply);
		buf_clear(&c->in);
		return !c->streaming;
	}
	if (meta.stream) {
		buf_reset(&reply);
		send_error(c->fd, 503, "too many streams open", c->deadline);
		buf_clear(&reply);
		return true;
	}
	send_typed_reply(c->fd, r, meta.type, &reply, c->deadline);
	buf_wipe_clear(&reply);  /* replies may carry keys (dstack-sim's GetKey) */
	return true;
}

/* The client's address as text: what a handler may rate-limit on. */
static void peer_text(const struct sockaddr_storage *ss, char out[static HTTP_PEER_MAX])
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof(host));
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, host, sizeof(host));
	else if (ss->ss_family == AF_UNIX)
		snprintf(host, sizeof(host), "unix");
	snprintf(out, HTTP_PEER_MAX, "%s", host);
}

/*
 * Is c the better one to evict than best: the older. Not "the one that sent least": a
 * client that drips a byte now and then would outrank a newcomer that has not sent its
 * request yet, and every head has its 2 s deadline anyway (a dashboard probe was evicted
 * that way in test-relayer-idle-conns.sh).
 */
static bool worse(const struct connection *c, const struct connection *best)
{
	return !best || c->accepted < best->accepted;
}

/* Waiting with nothing new to read: a request that has arrived unread is not evicted. */
static bool evictable(const struct connection *c)
{
	int pending = 0;

	return !c->streaming && (ioctl(c->fd, FIONREAD, &pending) < 0 || pending == 0);
}

/*
 * The connection to give up for a newcomer from peer: when peer already holds its share
 * (of connections waiting for their request; streams do not count),
 * its own oldest waiting connection; when the table is full, the oldest waiting one of
 * the address holding most. Streams and
 * connections whose request bytes wait to be read are never evicted (a share of such is
 * let be). NULL: there is room, or nothing to evict (then *refuse says whether the
 * newcomer must be turned away).
 */
static struct connection *eviction_victim(const struct http_server *srv, struct connection *conns,
					  const char *peer, bool *refuse)
{
	int per_address = srv->max_per_address > 0 ? srv->max_per_address : PER_ADDRESS_DEFAULT;
	int mine = 0, open = 0, most = 0;
	struct connection *own = NULL, *any = NULL;

	for (int i = 0; i < MAX_CONNECTIONS; i++) {
		struct connection *c = &conns[i];
		int same = 0;

		if (c->fd < 0)
			continue;
		open++;
		/* Streams are bounded by max_streams: a page open in several tabs is not idle. */
		if (!strcmp(c->peer, peer) && !c->streaming)
			mine++;
		if (!evictable(c))
			continue;
		if (!strcmp(c->peer, peer) && worse(c, own))
			own = c;
		for (int j = 0; j < MAX_CONNECTIONS; j++)
			same += conns[j].fd >= 0 && !strcmp(conns[j].peer, c->peer);
		if (!any || same > most || (same == most && worse(c, any))) {
			any = c;
			most = same;
		}
	}
	*refuse = false;
	/* Unix-socket clients share one name ("unix"): only the table bounds them. */
	if (mine >= per_address && own && strcmp(peer, "unix"))
		return own;
	if (open < MAX_CONNECTIONS)
		return NULL;
	*refuse = !any;
	return any;
}

static void accept_one(const struct http_server *srv, int listen_fd, struct connection *conns)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl = sizeof(ss);
	int fd = accept4(listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
	char peer[HTTP_PEER_MAX];
	struct connection *victim;
	bool refuse;
	uint64_t now = now_ms(), full;

	if (fd < 0)
		return;
	peer_text(&ss, peer);
	victim = eviction_victim(srv, conns, peer, &refuse);
	if (refuse) {
		close(fd);
		return;
	}
	if (victim)
		connection_close(victim);
	full = (uint64_t)(srv->deadline_ms > 0 ? srv->deadline_ms : REQUEST_DEADLINE_MS);
	for (int i = 0; i < MAX_CONNECTIONS; i++) {
		if (conns[i].fd < 0) {
			conns[i].fd = fd;
			conns[i].accepted = now;
			conns[i].deadline = now + (full < HEAD_DEADLINE_MS ? full : HEAD_DEADLINE_MS);
			conns[i].head_done = false;
			conns[i].unread_input = false;
			conns[i].streaming = false;
			conns[i].cursor = 0;
			memcpy(conns[i].peer, peer, sizeof(peer));
			buf_init(&conns[i].in, srv->max_header + srv->max_body);
			return;
		}
	}
	close(fd);
}

int http_serve(const struct http_server *srv, const int *listen_fds, int nfds,
	       const sigset_t *wait_mask, volatile sig_atomic_t *stop)
{
	struct connection conns[MAX_CONNECTIONS];
	struct pollfd pfds[MAX_LISTENERS + MAX_CONNECTIONS];
	int slot_of[MAX_LISTENERS + MAX_CONNECTIONS];
	uint64_t next_tick = 0, next_user_tick = 0;
	int r = 0;

	if (nfds > MAX_LISTENERS)
		return -EINVAL;
	for (int i = 0; i < MAX_CONNECTIONS; i++)
		conns[i].fd = -1;

	while (!*stop) {
		uint64_t now = now_ms(), next = now + 60000;
		int n = 0, streams = count_streams(conns);
		struct timespec ts;

		if (streams && now >= next_tick) {
			streams_tick(srv, conns);
			next_tick = now + (uint64_t)srv->stream_tick_ms;
		}
		if (streams && next_tick < next)
			next = next_tick;
		if (srv->tick && srv->tick_ms > 0) {
			if (now >= next_user_tick) {
				srv->tick(srv->ctx);
				now = now_ms();
				next_user_tick = now + (uint64_t)srv->tick_ms;
				next = now + 60000;
			}
			if (next_user_tick < next)
				next = next_user_tick;
		}

		for (int i = 0; i < MAX_CONNECTIONS; i++) {
			if (conns[i].fd < 0)
				continue;
			if (conns[i].deadline <= now) {
				connection_close(&conns[i]);
				continue;
			}
			if (conns[i].deadline < next)
				next = conns[i].deadline;
			pfds[n] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
			slot_of[n++] = i;
		}
		/* Listeners stay polled when the table is full: a newcomer evicts a waiting one. */
		for (int i = 0; i < nfds; i++) {
			pfds[n] = (struct pollfd){ .fd = listen_fds[i], .events = POLLIN };
			slot_of[n++] = -1;
		}
		ts.tv_sec = (time_t)((next - now) / 1000);
		ts.tv_nsec = (long)((next - now) % 1000) * 1000000L;
		if (ppoll(pfds, (nfds_t)n, &ts, wait_mask) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		for (int k = 0; k < n; k++) {
			/* Skip a slot whose connection an accept of this round replaced. */
			if (!pfds[k].revents || (slot_of[k] >= 0 && conns[slot_of[k]].fd != pfds[k].fd))
				continue;
			if (slot_of[k] < 0)
				accept_one(srv, pfds[k].fd, conns);
			else if (conns[slot_of[k]].streaming ? stream_readable(&conns[slot_of[k]])
				 : connection_readable(srv, &conns[slot_of[k]], streams))
				connection_close(&conns[slot_of[k]]);
		}
	}
	for (int i = 0; i < MAX_CONNECTIONS; i++)
		if (conns[i].fd >= 0)
			connection_close(&conns[i]);
	return r;
}

static bool addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return false;
}

int http_listen(const char *spec, int *fd, bool *loopback)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
	struct hostport hp;
	char port[6];
	int one = 1, r;

	if (hostport_split(spec, strlen(spec), HOSTPORT_PORT_ZERO | HOSTPORT_HOST_EMPTY | HOSTPORT_LAST_COLON,
			   &hp) < 0)
		return -EINVAL;
	snprintf(port, sizeof(port), "%u", hp.port);
	hints.ai_flags |= AI_NUMERICSERV;
	if (getaddrinfo(hp.host[0] ? hp.host : NULL, port, &hints, &ai))
		return -EINVAL;
	if (loopback)
		*loopback = addr_is_loopback(ai->ai_addr);
	*fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	r = *fd < 0 ? -errno : 0;
	if (r == 0) {
		setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(*fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(*fd, 64) < 0) {
			r = -errno;
			close(*fd);
		}
	}
	freeaddrinfo(ai);
	return r;
}
