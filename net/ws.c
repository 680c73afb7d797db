/* SPDX-License-Identifier: MIT */
/*
 * A small RFC 6455 WebSocket client (ws:// and wss://) for following an RPC's pushed
 * notifications: Upgrade handshake with its Sec-WebSocket-Accept check, masked frames
 * out, bounded messages in (fragments joined, ping answered, close honoured), and a
 * non-blocking socket whose fd the caller polls. Debian's libcurl has no WebSocket.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/tcp.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <openssl/ssl.h>

#include "common/common.h"
#include "net/net.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_HEAD_MAX 8192            /* the server's handshake reply */
#define WS_SEND_MS 2000             /* a frame we send must be out within this */

enum { WS_OP_CONT = 0, WS_OP_TEXT = 1, WS_OP_BINARY = 2, WS_OP_CLOSE = 8, WS_OP_PING = 9, WS_OP_PONG = 10 };

/* ---- URLs -------------------------------------------------------------------------------- */

int ws_url_parse(const char *url, struct ws_url *u)
{
	struct hostport hp;
	const char *p, *path;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (!strncasecmp(url, "ws://", 5)) {
		p = url + 5;
		u->port = 80;
	} else if (!strncasecmp(url, "wss://", 6)) {
		p = url + 6;
		u->tls = true;
		u->port = 443;
	} else {
		return -EINVAL;
	}
	path = p + strcspn(p, "/?#");
	if (*path == '#')
		return -EINVAL;
	if (memchr(p, '@', (size_t)(path - p)))
		return -EINVAL;  /* no credentials in the authority: they would go out in the clear */
	hp.port = u->port;
	if (hostport_split(p, (size_t)(path - p), HOSTPORT_PORT_OPTIONAL, &hp) < 0)
		return -EINVAL;
	u->port = hp.port;
	n = strlen(hp.host);
	memcpy(u->host, hp.host, n + 1);
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)u->host[i]))
			return -EINVAL;
	n = strlen(path);
	if (n + 2 > sizeof(u->path) || strchr(path, '#'))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)path[i]))
			return -EINVAL;
	snprintf(u->path, sizeof(u->path), "%s%s", *path == '/' ? "" : "/", path);
	return 0;
}

int ws_url_from_http(const char *http_url, char *out, size_t cap)
{
	const char *rest;
	int n;

	if (!strncasecmp(http_url, "http://", 7))
		rest = http_url + 7, n = snprintf(out, cap, "ws://%s", rest);
	else if (!strncasecmp(http_url, "https://", 8))
		rest = http_url + 8, n = snprintf(out, cap, "wss://%s", rest);
	else
		return -EINVAL;
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* ---- the handshake ------------------------------------------------------------------------- */

void ws_accept_key(const char *key_b64, char out[static WS_ACCEPT_LEN + 1])
{
	uint8_t md[SHA1_DIGEST_SIZE];
	struct sha1_ctx h;
	char in[64];
	int n = snprintf(in, sizeof(in), "%s%s", key_b64, WS_GUID);

	/* nettle, not OpenSSL: its SHA1() loads OpenSSL 3's default provider (about 2 MB
	 * resident) even when the WebSocket is plain ws:// (docs/memory.md). */
	sha1_init(&h);
	sha1_update(&h, n > 0 && (size_t)n < sizeof(in) ? (size_t)n : 0, (const uint8_t *)in);
	sha1_digest(&h, sizeof(md), md);
	base64_encode_raw(out, sizeof(md), md);
	out[WS_ACCEPT_LEN] = '\0';
}

/* Does the comma-separated header value v[0..n) hold token (case-insensitive)? */
static bool has_token(const char *v, size_t n, const char *token)
{
	size_t tl = strlen(token);

	while (n) {
		size_t len = 0;

		while (n && (*v == ' ' || *v == '\t' || *v == ','))
			v++, n--;
		while (len < n && v[len] != ',')
			len++;
		while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
			len--;
		if (len == tl && !strncasecmp(v, token, tl))
			return true;
		while (n && *v != ',')
			v++, n--;
	}
	return false;
}

int ws_handshake_check(const char *resp, size_t len, const char *key_b64)
{
	char accept[WS_ACCEPT_LEN + 1];
	const char *end = NULL, *line, *stop;
	bool upgrade = false, connection = false, accepted = false;

	for (size_t i = 3; i < len && i < WS_HEAD_MAX; i++)
		if (resp[i - 3] == '\r' && resp[i - 2] == '\n' && resp[i - 1] == '\r' && resp[i] == '\n') {
			end = resp + i + 1;
			break;
		}
	if (!end)
		return len >= WS_HEAD_MAX ? -EMSGSIZE : 0;
	if (memchr(resp, '\0', (size_t)(end - resp)))
		return -EPROTO;
	if ((size_t)(end - resp) < 13 || strncmp(resp, "HTTP/1.1 101", 12) || (resp[12] != ' ' && resp[12] != '\r'))
		return -EPROTO;
	ws_accept_key(key_b64, accept);
	stop = end - 2;
	line = memchr(resp, '\n', (size_t)(end - resp)) + 1;
	while (line < stop) {
		const char *eol = memchr(line, '\r', (size_t)(stop - line));
		const char *colon, *v;
		size_t vn;

		if (!eol || eol[1] != '\n')
			return -EPROTO;
		colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon)
			return -EPROTO;
		v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		vn = (size_t)(eol - v);
		while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
			vn--;
#define IS(name) ((size_t)(colon - line) == strlen(name) && !strncasecmp(line, name, strlen(name)))
		if (IS("Upgrade"))
			upgrade = has_token(v, vn, "websocket");
		else if (IS("Connection"))
			connection = has_token(v, vn, "upgrade");
		else if (IS("Sec-WebSocket-Accept"))
			accepted = vn == WS_ACCEPT_LEN && !memcmp(v, accept, WS_ACCEPT_LEN);
		else if (IS("Sec-WebSocket-Extensions") || IS("Sec-WebSocket-Protocol"))
			return -EPROTO;  /* we asked for neither: a server must not pick one */
#undef IS
		line = eol + 2;
	}
	if (!upgrade || !connection)
		return -EPROTO;
	if (!accepted)
		return -EACCES;
	return (int)(end - resp);
}

/* ---- frames in ------------------------------------------------------------------------------- */

int ws_frame_parse(const uint8_t *p, size_t n, size_t max_payload, struct ws_frame *f)
{
	size_t head = 2;
	uint64_t len;

	if (n < 2)
		return 0;
	f->fin = p[0] & 0x80;
	f->opcode = p[0] & 0x0f;
	if (p[0] & 0x70)
		return -EPROTO;  /* no extension was negotiated */
	if (p[1] & 0x80)
		return -EPROTO;  /* a server never masks */
	switch (f->opcode) {
	case WS_OP_CONT: case WS_OP_TEXT: case WS_OP_BINARY:
		break;
	case WS_OP_CLOSE: case WS_OP_PING: case WS_OP_PONG:
		if (!f->fin || (p[1] & 0x7f) > 125)
			return -EPROTO;
		break;
	default:
		return -EPROTO;
	}
	len = p[1] & 0x7f;
	if (len == 126) {
		if (n < 4)
			return 0;
		len = (uint64_t)p[2] << 8 | p[3];
		if (len < 126)
			return -EPROTO;  /* not the minimal length encoding */
		head = 4;
	} else if (len == 127) {
		if (n < 10)
			return 0;
		len = 0;
		for (int i = 2; i < 10; i++)
			len = len << 8 | p[i];
		if (len >> 63 || len < 65536)
			return -EPROTO;
		head = 10;
	}
	if (len > max_payload)
		return -EMSGSIZE;
	if (n - head < len)
		return 0;
	f->payload = p + head;
	f->len = (size_t)len;
	return (int)(head + len);
}

void ws_parser_init(struct ws_parser *p)
{
	p->in_len = 0;
	p->msg_len = 0;
	p->msg_op = -1;
}

/* One frame: joined into a message, or a control frame handed on as it is. */
static int on_frame(struct ws_parser *p, const struct ws_frame *f, ws_event_fn cb, void *ctx)
{
	if (f->opcode >= WS_OP_CLOSE)
		return cb(ctx, f->opcode, f->payload, f->len);
	if (f->opcode == WS_OP_CONT && p->msg_op < 0)
		return -EPROTO;  /* a continuation of nothing */
	if (f->opcode != WS_OP_CONT && p->msg_op >= 0)
		return -EPROTO;  /* a new message inside a fragmented one */
	if (f->len > WS_MSG_MAX - p->msg_len)
		return -EMSGSIZE;
	if (f->opcode != WS_OP_CONT)
		p->msg_op = f->opcode;
	memcpy(p->msg + p->msg_len, f->payload, f->len);
	p->msg_len += f->len;
	if (!f->fin)
		return 0;
	{
		int op = p->msg_op, r;

		p->msg_op = -1;
		r = cb(ctx, op, p->msg, p->msg_len);
		p->msg_len = 0;
		return r;
	}
}

/* The whole frames at the head of the buffer, handed on and dropped from it. */
static int parse_buffered(struct ws_parser *p, ws_event_fn cb, void *ctx)
{
	size_t off = 0;
	int r = 0;

	for (;;) {
		struct ws_frame f;
		int k = ws_frame_parse(p->in + off, p->in_len - off, WS_MSG_MAX, &f);

		if (k <= 0) {
			r = k;
			break;
		}
		r = on_frame(p, &f, cb, ctx);
		if (r < 0)
			break;
		off += (size_t)k;
	}
	memmove(p->in, p->in + off, p->in_len - off);
	p->in_len -= off;
	return r;
}

int ws_parser_feed(struct ws_parser *p, const uint8_t *data, size_t n, ws_event_fn cb, void *ctx)
{
	int r = parse_buffered(p, cb, ctx);

	while (r == 0 && n) {
		size_t take = sizeof(p->in) - p->in_len;

		if (!take)
			return -EMSGSIZE;  /* cannot happen: a whole frame fits the buffer */
		if (take > n)
			take = n;
		memcpy(p->in + p->in_len, data, take);
		p->in_len += take;
		data += take;
		n -= take;
		r = parse_buffered(p, cb, ctx);
	}
	return r;
}

/* ---- frames out ------------------------------------------------------------------------------ */

/* A masked frame (RFC 6455 5.3) into out: its length, or -EMSGSIZE. */
int ws_frame_build(uint8_t *out, size_t cap, int opcode, const void *payload, size_t len)
{
	const uint8_t *in = payload;
	uint8_t mask[4];
	size_t head;

	if (len < 126)
		head = 6;
	else if (len <= 0xffff)
		head = 8;
	else
		return -EMSGSIZE;
	if (cap < head || cap - head < len)
		return -EMSGSIZE;
	if (getrandom(mask, sizeof(mask), 0) != sizeof(mask))
		return -EIO;
	out[0] = 0x80 | (uint8_t)opcode;
	if (len < 126) {
		out[1] = 0x80 | (uint8_t)len;
	} else {
		out[1] = 0x80 | 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
	}
	memcpy(out + head - 4, mask, 4);
	for (size_t i = 0; i < len; i++)
		out[head + i] = in[i] ^ mask[i & 3];
	return (int)(head + len);
}

/* ---- the client ------------------------------------------------------------------------------ */

struct ws_client {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	bool closing;                   /* a close frame was exchanged */
	struct ws_parser parser;
};

static int wait_fd(int fd, short events, uint64_t deadline, const volatile sig_atomic_t *abort_flag)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	uint64_t now = now_ms();
	int k;

	if (abort_flag && *abort_flag)
		return -ECANCELED;
	if (now >= deadline)
		return -ETIMEDOUT;
	/* short slices, so a stop signal is seen soon */
	k = poll(&pfd, 1, deadline - now > 200 ? 200 : (int)(deadline - now));
	if (k < 0)
		return errno == EINTR ? 0 : -errno;
	return 0;
}

/* Raw or TLS I/O: bytes moved, -EAGAIN with *want set to the event to wait for, or an error. */
static ssize_t io(struct ws_client *c, void *buf, size_t n, bool out, short *want)
{
	ssize_t k;
	int e;

	*want = out ? POLLOUT : POLLIN;
	if (!c->ssl) {
		k = out ? send(c->fd, buf, n, MSG_NOSIGNAL) : recv(c->fd, buf, n, 0);
		if (k < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
		return !out && k == 0 ? -ECONNRESET : k;
	}
	k = out ? SSL_write(c->ssl, buf, (int)n) : SSL_read(c->ssl, buf, (int)n);
	if (k > 0)
		return k;
	e = SSL_get_error(c->ssl, (int)k);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return -EAGAIN;
	}
	return e == SSL_ERROR_ZERO_RETURN ? -ECONNRESET : -EIO;
}

static int send_all(struct ws_client *c, const void *data, size_t n, uint64_t deadline,
		    const volatile sig_atomic_t *abort_flag)
{
	const uint8_t *p = data;

	while (n) {
		short want;
		ssize_t k = io(c, (void *)p, n, true, &want);
		int r;

		if (k == -EAGAIN) {
			r = wait_fd(c->fd, want, deadline, abort_flag);
			if (r < 0)
				return r;
			continue;
		}
		if (k < 0)
			return (int)k;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int tcp_connect(struct ws_client *c, const struct ws_url *u, uint64_t deadline,
		       const volatile sig_atomic_t *abort_flag)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char service[8];
	int err = 0, one = 1, r;
	socklen_t len = sizeof(err);

	snprintf(service, sizeof(service), "%u", u->port);
	if (getaddrinfo(u->host, service, &hints, &ai) || !ai)
		return -EHOSTUNREACH;
	c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		r = -errno;
		goto out;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		r = -errno;
		goto out;
	}
	for (;;) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };

		if (poll(&pfd, 1, 0) > 0)
			break;
		r = wait_fd(c->fd, POLLOUT, deadline, abort_flag);
		if (r < 0)
			goto out;
	}
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	r = -err;
out:
	freeaddrinfo(ai);
	return r;
}

static int tls_handshake(struct ws_client *c, const struct ws_url *u, uint64_t deadline,
			 const volatile sig_atomic_t *abort_flag)
{
	int r = tls_client_ctx_new(NULL, &c->ctx);

	if (r == 0)
		r = tls_client_new(c->ctx, c->fd, u->host, &c->ssl);
	while (r == 0) {
		int k = SSL_connect(c->ssl), e;

		if (k == 1)
			return SSL_get_verify_result(c->ssl) == X509_V_OK ? 0 : -EPERM;
		e = SSL_get_error(c->ssl, k);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return SSL_get_verify_result(c->ssl) != X509_V_OK ? -EPERM : -EPROTO;
		r = wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, abort_flag);
	}
	return r;
}

/* The Upgrade request, its reply checked; bytes after the reply go to the frame parser. */
static int upgrade(struct ws_client *c, const struct ws_url *u, uint64_t deadline,
		   const volatile sig_atomic_t *abort_flag)
{
	uint8_t nonce[16];
	char key[25], req[1536], resp[WS_HEAD_MAX];
	size_t got = 0;
	bool v6 = strchr(u->host, ':');
	int n, r;

	if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce))
		return -EIO;
	base64_encode_raw(key, sizeof(nonce), nonce);
	key[24] = '\0';
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s%s%s:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		     u->path, v6 ? "[" : "", u->host, v6 ? "]" : "", u->port, key);
	if (n < 0 || (size_t)n >= sizeof(req))
		return -ENAMETOOLONG;
	r = send_all(c, req, (size_t)n, deadline, abort_flag);
	while (r == 0) {
		short want;
		ssize_t k = io(c, resp + got, sizeof(resp) - got, false, &want);

		if (k == -EAGAIN) {
			r = wait_fd(c->fd, want, deadline, abort_flag);
			continue;
		}
		if (k < 0)
			return (int)k;
		got += (size_t)k;
		r = ws_handshake_check(resp, got, key);
		if (r > 0) {
			/* Frames right behind the reply (a server may push at once) wait in the
			 * parser's buffer for the first ws_client_read. */
			memcpy(c->parser.in, resp + r, got - (size_t)r);
			c->parser.in_len = got - (size_t)r;
			return 0;
		}
	}
	return r;
}

int ws_client_connect(struct ws_client **out, const char *url, int timeout_ms,
		      const volatile sig_atomic_t *abort_flag)
{
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
	struct ws_client *c;
	struct ws_url u;
	int r;

	*out = NULL;
	r = ws_url_parse(url, &u);
	if (r < 0)
		return r;
	/*
	 * malloc, not calloc: the parser's two 64 KiB buffers are written only as far as
	 * messages reach (a head is about 1 KB), and calloc would touch all 128 KiB of them
	 * when they come from a thread's arena (the agent dials on a helper thread).
	 */
	c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->ctx = NULL;
	c->ssl = NULL;
	c->closing = false;
	ws_parser_init(&c->parser);
	r = tcp_connect(c, &u, deadline, abort_flag);
	if (r == 0 && u.tls)
		r = tls_handshake(c, &u, deadline, abort_flag);
	if (r == 0)
		r = upgrade(c, &u, deadline, abort_flag);
	if (r < 0) {
		ws_client_free(c);
		return r;
	}
	*out = c;
	return 0;
}

int ws_client_fd(const struct ws_client *c)
{
	return c ? c->fd : -1;
}

int ws_client_send(struct ws_client *c, int opcode, const void *data, size_t len)
{
	uint8_t frame[WS_SEND_MAX + 8];
	int n = ws_frame_build(frame, sizeof(frame), opcode, data, len);

	if (n < 0)
		return n;
	return send_all(c, frame, (size_t)n, now_ms() + WS_SEND_MS, NULL);
}

struct read_ctx {
	struct ws_client *c;
	ws_event_fn cb;
	void *ctx;
};

static int on_event(void *arg, int opcode, const uint8_t *data, size_t len)
{
	struct read_ctx *rc = arg;

	switch (opcode) {
	case WS_OP_PING:
		return ws_client_send(rc->c, WS_OP_PONG, data, len);
	case WS_OP_PONG:
		return rc->cb(rc->ctx, opcode, data, len);
	case WS_OP_CLOSE:
		if (!rc->c->closing)
			(void)ws_client_send(rc->c, WS_OP_CLOSE, data, len >= 2 ? 2 : 0);
		rc->c->closing = true;
		return -ECONNRESET;
	default:
		return rc->cb(rc->ctx, opcode, data, len);
	}
}

int ws_client_read(struct ws_client *c, ws_event_fn cb, void *ctx)
{
	struct read_ctx rc = { c, cb, ctx };
	uint8_t buf[16384];
	int r = ws_parser_feed(&c->parser, NULL, 0, on_event, &rc);

	if (r < 0)
		return r;

	/* Bounded: a peer that never stops sending gives way to the rest of the loop. */
	for (int i = 0; i < 64; i++) {
		short want;
		ssize_t k = io(c, buf, sizeof(buf), false, &want);

		if (k == -EAGAIN)
			return 0;
		if (k < 0)
			return (int)k;
		r = ws_parser_feed(&c->parser, buf, (size_t)k, on_event, &rc);
		if (r < 0)
			return r;
	}
	return 0;
}

void ws_client_free(struct ws_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0 && !c->closing && c->parser.in_len == 0) {
		static const uint8_t normal[2] = { 0x03, 0xe8 };  /* 1000: normal closure */
		uint8_t frame[16];
		int n = ws_frame_build(frame, sizeof(frame), WS_OP_CLOSE, normal, sizeof(normal));
		short want;

		if (n > 0)
			(void)io(c, frame, (size_t)n, true, &want);  /* best effort, never waits */
	}
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}
