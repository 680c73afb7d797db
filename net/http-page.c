/* SPDX-License-Identifier: MIT */
/*
 * One page over HTTP from the caller's loop (the agent's GET /metrics): every socket is
 * non-blocking and lives in an epoll set of the page's own, whose one fd the caller polls
 * among its sources. So no client can make the caller wait: a connection is served as
 * its bytes arrive, a full table drops its oldest connection, and each connection has a
 * deadline for the request and the reply together.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "net/net.h"

/* The connection slot an epoll event names: index + 1 (0 is the listener). */
static struct http_page_conn *slot_of(struct http_page *p, uint64_t tag)
{
	return tag >= 1 && tag <= HTTP_PAGE_CONNS ? &p->conn[tag - 1] : NULL;
}

int http_page_open(struct http_page *p, int listen_fd, const char *path, const char *content_type,
		   http_page_fn render, void *ctx)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };

	memset(p, 0, sizeof(*p));
	p->listen_fd = -1;
	for (size_t i = 0; i < HTTP_PAGE_CONNS; i++)
		p->conn[i].fd = -1;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->epfd < 0)
		return -errno;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		int r = -errno;

		close(p->epfd);
		p->epfd = -1;
		return r;
	}
	p->listen_fd = listen_fd;
	p->path = path;
	p->content_type = content_type;
	p->render = render;
	p->ctx = ctx;
	return 0;
}

static void conn_close(struct http_page *p, struct http_page_conn *c)
{
	if (c->fd < 0)
		return;
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	buf_clear(&c->out);
}

void http_page_close(struct http_page *p)
{
	for (size_t i = 0; i < HTTP_PAGE_CONNS; i++)
		conn_close(p, &p->conn[i]);
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	p->epfd = p->listen_fd = -1;
}

int http_page_fd(const struct http_page *p)
{
	return p->epfd;
}

/* A free slot, or the oldest connection's, closed (a flood replaces itself). */
static struct http_page_conn *take_slot(struct http_page *p)
{
	struct http_page_conn *oldest = &p->conn[0];

	for (size_t i = 0; i < HTTP_PAGE_CONNS; i++) {
		if (p->conn[i].fd < 0)
			return &p->conn[i];
		if (p->conn[i].deadline < oldest->deadline)
			oldest = &p->conn[i];
	}
	p->stats.evicted++;
	conn_close(p, oldest);
	return oldest;
}

static void accept_some(struct http_page *p, uint64_t now)
{
	static const int sndbuf = 128 << 10;

	for (int n = 0; n < HTTP_PAGE_CONNS; n++) {
		int fd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct http_page_conn *c;
		struct epoll_event ev = { .events = EPOLLIN };

		if (fd < 0)
			return;
		/* What a client that does not read can make the kernel hold for it. */
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		c = take_slot(p);
		c->fd = fd;
		c->deadline = now + HTTP_PAGE_DEADLINE_MS;
		c->in_len = 0;
		c->out_off = 0;
		buf_init(&c->out, HTTP_PAGE_REPLY_MAX);
		ev.data.u64 = (uint64_t)(c - p->conn) + 1;
		if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			conn_close(p, c);
	}
}

static const char *reason(int status)
{
	return status == 200   ? "OK"
	       : status == 400 ? "Bad Request"
	       : status == 404 ? "Not Found"
	       : status == 405 ? "Method Not Allowed"
	       : status == 431 ? "Request Header Fields Too Large"
	       : status == 413 ? "Content Too Large"
	       : status == 411 ? "Length Required"
			       : "Internal Server Error";
}

/* The whole reply to a complete head (or to one that cannot be), into c->out. */
static void build_reply(struct http_page *p, struct http_page_conn *c, int status,
			const struct http_request *req)
{
	struct buf body;
	size_t plen = strlen(p->path);
	int r;

	buf_init(&body, HTTP_PAGE_REPLY_MAX - 256);
	if (status == 0 && strcmp(req->method, "GET") && strcmp(req->method, "HEAD"))
		status = 405;
	else if (status == 0 &&
		 (strncmp(req->path, p->path, plen) || (req->path[plen] && req->path[plen] != '?')))
		status = 404;
	if (status == 0)
		status = p->render(p->ctx, &body) < 0 ? 500 : 200;
	if (status != 200) {
		buf_reset(&body);
		buf_printf(&body, "%d %s\n", status, reason(status));
		p->stats.refused++;
	} else {
		p->stats.served++;
	}
	r = buf_printf(&c->out,
		       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		       "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
		       status, reason(status), status == 200 ? p->content_type : "text/plain; charset=utf-8",
		       body.len);
	if (r == 0 && !(status == 200 && !strcmp(req->method, "HEAD")))
		buf_append(&c->out, body.data, body.len);
	buf_clear(&body);
}

/* Send what the socket takes now; the connection closes once all is out. */
static void send_some(struct http_page *p, struct http_page_conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			struct epoll_event ev = { .events = EPOLLOUT,
						  .data.u64 = (uint64_t)(c - p->conn) + 1 };

			epoll_ctl(p->epfd, EPOLL_CTL_MOD, c->fd, &ev);
			return;
		}
		if (n <= 0)
			break;
		c->out_off += (size_t)n;
	}
	/* Done, or the client went away. What it still sends is not read: the reply was whole. */
	shutdown(c->fd, SHUT_WR);
	conn_close(p, c);
}

static void readable(struct http_page *p, struct http_page_conn *c)
{
	struct http_request req;
	ssize_t n;
	int status;

	if (c->out.len) {
		send_some(p, c);
		return;
	}
	n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		conn_close(p, c);
		return;
	}
	c->in_len += (size_t)n;
	/* No bodies: a request that announces one is refused (413) before it is read. */
	status = http_parse_head(c->in, c->in_len, sizeof(c->in), 0, &req);
	if (status == 1)
		return;
	build_reply(p, c, status, &req);
	send_some(p, c);
}

void http_page_dispatch(struct http_page *p, uint64_t now)
{
	struct epoll_event ev[HTTP_PAGE_CONNS + 1];
	int n = epoll_wait(p->epfd, ev, (int)ARRAY_SIZE(ev), 0);

	for (int i = 0; i < n; i++) {
		struct http_page_conn *c = slot_of(p, ev[i].data.u64);

		if (ev[i].data.u64 == 0)
			accept_some(p, now);
		else if (c && c->fd >= 0)
			readable(p, c);
	}
	http_page_expire(p, now);
}

void http_page_expire(struct http_page *p, uint64_t now)
{
	for (size_t i = 0; i < HTTP_PAGE_CONNS; i++)
		if (p->conn[i].fd >= 0 && now >= p->conn[i].deadline) {
			p->stats.expired++;
			conn_close(p, &p->conn[i]);
		}
}
