/* SPDX-License-Identifier: MIT */
/* Unit tests of net/ws.c: URLs, the handshake check, frames, messages, a loopback client. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include "common/common.h"
#include "net/net.h"
#include "tests/unit/test-loopback.h"

Test(ws, url_parse)
{
	struct ws_url u;

	cr_assert_eq(ws_url_parse("ws://127.0.0.1:8545", &u), 0);
	cr_assert(!u.tls);
	cr_assert_str_eq(u.host, "127.0.0.1");
	cr_assert_eq(u.port, 8545);
	cr_assert_str_eq(u.path, "/");
	cr_assert_eq(ws_url_parse("wss://eth.example/v2/KEY?x=1", &u), 0);
	cr_assert(u.tls);
	cr_assert_eq(u.port, 443);
	cr_assert_str_eq(u.path, "/v2/KEY?x=1");
	cr_assert_eq(ws_url_parse("ws://[::1]:9/p", &u), 0);
	cr_assert_str_eq(u.host, "::1");
	cr_assert_eq(u.port, 9);
	cr_assert_eq(ws_url_parse("WS://h?q", &u), 0);
	cr_assert_str_eq(u.path, "/?q");
	cr_assert_eq(ws_url_parse("http://h", &u), -EINVAL);
	cr_assert_eq(ws_url_parse("ws://", &u), -EINVAL);
	cr_assert_eq(ws_url_parse("ws://h:", &u), -EINVAL);
	cr_assert_eq(ws_url_parse("ws://h:0", &u), -EINVAL);
	cr_assert_eq(ws_url_parse("ws://h:65536", &u), -EINVAL);
	cr_assert_eq(ws_url_parse("ws://h:8x", &u), -EINVAL);
	cr_assert_eq(ws_url_parse("ws://user:pw@h/", &u), -EINVAL);
	cr_assert_eq(ws_url_parse("ws://h/#frag", &u), -EINVAL);
	cr_assert_eq(ws_url_parse("ws://h/a b", &u), -EINVAL);
	cr_assert_eq(ws_url_parse("ws://[::1/", &u), -EINVAL);
}

Test(ws, url_from_http)
{
	char out[64];

	cr_assert_eq(ws_url_from_http("http://1.2.3.4:8545", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "ws://1.2.3.4:8545");
	cr_assert_eq(ws_url_from_http("https://eth.example/v2/k", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "wss://eth.example/v2/k");
	cr_assert_eq(ws_url_from_http("ipc:///x", out, sizeof(out)), -EINVAL);
	cr_assert_eq(ws_url_from_http("https://a-very-long-host-name.example/with/a/long/path/too", out, 16),
		     -ENAMETOOLONG);
}

/* RFC 6455 section 1.3's example. */
#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

Test(ws, accept_key_rfc_example)
{
	char out[WS_ACCEPT_LEN + 1];

	ws_accept_key(KEY, out);
	cr_assert_str_eq(out, ACCEPT);
}

static int check(const char *resp)
{
	return ws_handshake_check(resp, strlen(resp), KEY);
}

Test(ws, handshake_check)
{
	const char *ok = "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
			 "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n";

	cr_assert_eq(check(ok), (int)strlen(ok));
	cr_assert_eq(ws_handshake_check(ok, strlen(ok) - 1, KEY), 0);  /* not complete yet */
	cr_assert_eq(check("HTTP/1.1 200 OK\r\n\r\n"), -EPROTO);
	cr_assert_eq(check("HTTP/1.1 1010\r\n\r\n"), -EPROTO);
	cr_assert_eq(check("HTTP/1.1 101 x\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\n"),
		     -EPROTO);  /* no Upgrade: websocket */
	cr_assert_eq(check("HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			   "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"), -EACCES);
	cr_assert_eq(check("HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), -EACCES);
	cr_assert_eq(check("HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			   "Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\n"),
		     -EPROTO);
	cr_assert_eq(check("HTTP/1.1 101 x\r\nno colon\r\n\r\n"), -EPROTO);
	{
		char big[9000];

		memset(big, 'a', sizeof(big));
		memcpy(big, "HTTP/1.1 101 x\r\nX: ", 19);
		cr_assert_eq(ws_handshake_check(big, sizeof(big), KEY), -EMSGSIZE);
	}
}

Test(ws, frame_parse)
{
	uint8_t f[16] = { 0x81, 0x03, 'a', 'b', 'c' };
	struct ws_frame fr;

	cr_assert_eq(ws_frame_parse(f, 1, 100, &fr), 0);
	cr_assert_eq(ws_frame_parse(f, 4, 100, &fr), 0);
	cr_assert_eq(ws_frame_parse(f, 5, 100, &fr), 5);
	cr_assert(fr.fin);
	cr_assert_eq(fr.opcode, 1);
	cr_assert_eq(fr.len, 3);
	cr_assert_eq(memcmp(fr.payload, "abc", 3), 0);
	cr_assert_eq(ws_frame_parse(f, 5, 2, &fr), -EMSGSIZE);
	f[1] = 0x83;  /* masked by the server */
	cr_assert_eq(ws_frame_parse(f, 5, 100, &fr), -EPROTO);
	f[1] = 0x03;
	f[0] = 0xc1;  /* RSV1 */
	cr_assert_eq(ws_frame_parse(f, 5, 100, &fr), -EPROTO);
	f[0] = 0x83;  /* reserved opcode */
	cr_assert_eq(ws_frame_parse(f, 5, 100, &fr), -EPROTO);
	f[0] = 0x09;  /* a fragmented ping */
	cr_assert_eq(ws_frame_parse(f, 5, 100, &fr), -EPROTO);
	f[0] = 0x89;
	f[1] = 126;   /* a long ping */
	cr_assert_eq(ws_frame_parse(f, 5, 1000, &fr), -EPROTO);
	f[0] = 0x82;
	f[2] = 0;
	f[3] = 125;   /* 16-bit length below 126: not minimal */
	cr_assert_eq(ws_frame_parse(f, 8, 1000, &fr), -EPROTO);
	f[3] = 200;
	cr_assert_eq(ws_frame_parse(f, 8, 1000, &fr), 0);  /* needs 204 bytes */
	f[1] = 127;
	memset(f + 2, 0, 8);
	f[2] = 0x80;  /* 64-bit length with the top bit */
	cr_assert_eq(ws_frame_parse(f, 10, 1000, &fr), -EPROTO);
	f[2] = 0;
	f[7] = 1;     /* 2^16 as a 64-bit length: over the limit */
	cr_assert_eq(ws_frame_parse(f, 10, 1000, &fr), -EMSGSIZE);
}

Test(ws, frame_build_masks)
{
	uint8_t out[300], payload[200];
	int n;

	memset(payload, 'x', sizeof(payload));
	n = ws_frame_build(out, sizeof(out), 1, payload, 5);
	cr_assert_eq(n, 11);
	cr_assert_eq(out[0], 0x81);
	cr_assert_eq(out[1], 0x85);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(out[6 + i] ^ out[2 + (i & 3)], 'x');
	n = ws_frame_build(out, sizeof(out), 2, payload, 200);
	cr_assert_eq(n, 208);
	cr_assert_eq(out[1], 0x80 | 126);
	cr_assert_eq(out[3], 200);
	cr_assert_eq(ws_frame_build(out, 100, 2, payload, 200), -EMSGSIZE);
}

struct events {
	int n;
	int op[8];
	char data[8][64];
};

static int record(void *ctx, int opcode, const uint8_t *data, size_t len)
{
	struct events *e = ctx;

	if (e->n < 8) {
		e->op[e->n] = opcode;
		snprintf(e->data[e->n], sizeof(e->data[0]), "%.*s", (int)len, (const char *)data);
	}
	e->n++;
	return 0;
}

Test(ws, parser_joins_fragments_byte_by_byte)
{
	/* "he" + ping "p" + "llo" (final), then a close */
	static const uint8_t s[] = { 0x01, 2, 'h', 'e', 0x89, 1, 'p', 0x80, 3, 'l', 'l', 'o', 0x88, 0 };
	struct ws_parser *p = malloc(sizeof(*p));
	struct events e = { 0 };

	ws_parser_init(p);
	for (size_t i = 0; i < sizeof(s); i++)
		cr_assert_eq(ws_parser_feed(p, s + i, 1, record, &e), 0);
	cr_assert_eq(e.n, 3);
	cr_assert_eq(e.op[0], 9);
	cr_assert_str_eq(e.data[0], "p");
	cr_assert_eq(e.op[1], 1);
	cr_assert_str_eq(e.data[1], "hello");
	cr_assert_eq(e.op[2], 8);
	free(p);
}

Test(ws, parser_rejects_bad_sequences)
{
	static const uint8_t cont[] = { 0x80, 1, 'x' };
	static const uint8_t twice[] = { 0x01, 1, 'a', 0x81, 1, 'b' };
	struct ws_parser *p = malloc(sizeof(*p));
	struct events e = { 0 };
	uint8_t hdr[4] = { 0x00, 126, 0xff, 0xff };  /* 65535-byte fragments, unfinished */
	uint8_t *big = calloc(1, 65535);

	ws_parser_init(p);
	cr_assert_eq(ws_parser_feed(p, cont, sizeof(cont), record, &e), -EPROTO);
	ws_parser_init(p);
	cr_assert_eq(ws_parser_feed(p, twice, sizeof(twice), record, &e), -EPROTO);
	/* a message joined past WS_MSG_MAX */
	ws_parser_init(p);
	hdr[0] = 0x01;
	cr_assert_eq(ws_parser_feed(p, hdr, 4, record, &e), 0);
	cr_assert_eq(ws_parser_feed(p, big, 65535, record, &e), 0);
	hdr[0] = 0x00;
	cr_assert_eq(ws_parser_feed(p, hdr, 4, record, &e), 0);
	cr_assert_eq(ws_parser_feed(p, big, 65535, record, &e), -EMSGSIZE);
	cr_assert_eq(e.n, 0);
	free(big);
	free(p);
}

/* ---- a loopback server: the real client against a scripted one ---------------------------- */

struct server {
	int lfd;
	uint16_t port;
	bool bad_accept;
	char got[256];          /* the client's text frame, unmasked */
	bool got_pong;
};

static ssize_t read_some(int fd, void *buf, size_t n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, 5000) <= 0)
		return -1;
	return read(fd, buf, n);
}

/* One client frame (masked, short): its opcode, payload unmasked into out. */
static int read_frame(int fd, char *out, size_t cap)
{
	uint8_t h[6], m[126];
	size_t got = 0, len;

	while (got < 6) {
		ssize_t k = read_some(fd, h + got, 6 - got);
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	len = h[1] & 0x7f;
	if (!(h[1] & 0x80) || len > 125 || len >= cap)
		return -1;
	for (got = 0; got < len;) {
		ssize_t k = read_some(fd, m + got, len - got);
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	for (size_t i = 0; i < len; i++)
		out[i] = (char)(m[i] ^ h[2 + (i & 3)]);
	out[len] = '\0';
	return h[0] & 0x0f;
}

static void *serve(void *arg)
{
	struct server *s = arg;
	char req[2048], accept[WS_ACCEPT_LEN + 1], resp[512], key[64] = "", tmp[128];
	size_t got = 0;
	int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC), n;
	const char *k;

	if (fd < 0)
		return NULL;
	while (got < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
		ssize_t r = read_some(fd, req + got, sizeof(req) - 1 - got);
		if (r <= 0)
			goto out;
		got += (size_t)r;
		req[got] = '\0';
	}
	k = strstr(req, "Sec-WebSocket-Key: ");
	if (!k || sscanf(k + 19, "%63[^\r]", key) != 1)
		goto out;
	ws_accept_key(key, accept);
	if (s->bad_accept)
		accept[0] = accept[0] == 'A' ? 'B' : 'A';
	n = snprintf(resp, sizeof(resp), "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
	/* A text frame and a ping right behind the head, in the same write. */
	memcpy(resp + n, "\x81\x05hello\x89\x02hi", 11);
	if (write(fd, resp, (size_t)n + 11) < 0)
		goto out;
	while ((n = read_frame(fd, tmp, sizeof(tmp))) > 0) {
		if (n == 10 && !strcmp(tmp, "hi"))
			s->got_pong = true;
		else if (n == 1)
			snprintf(s->got, sizeof(s->got), "%s", tmp);
		if (n == 1 && write(fd, "\x88\x02\x03\xe8", 4) < 0)  /* then close */
			break;
	}
out:
	close(fd);
	return NULL;
}

static void server_start(struct server *s, pthread_t *t)
{
	s->lfd = loopback_bind(&s->port);
	loopback_serve(s->lfd, t, serve, s);
}

Test(ws, client_loopback)
{
	struct server s = { 0 };
	struct events e = { 0 };
	struct ws_client *c;
	pthread_t t;
	char url[64];
	int r = 0;

	server_start(&s, &t);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%u/", s.port);
	cr_assert_eq(ws_client_connect(&c, url, 3000, NULL), 0);
	cr_assert_eq(ws_client_send(c, 1, "{\"id\":1}", 8), 0);
	/* read until the server's close: the early message, the ping answered, then -ECONNRESET */
	for (int i = 0; i < 50 && r == 0; i++) {
		struct pollfd pfd = { .fd = ws_client_fd(c), .events = POLLIN };

		poll(&pfd, 1, 100);
		r = ws_client_read(c, record, &e);
	}
	cr_assert_eq(r, -ECONNRESET);
	cr_assert_eq(e.n, 1);
	cr_assert_str_eq(e.data[0], "hello");
	ws_client_free(c);
	pthread_join(t, NULL);
	close(s.lfd);
	cr_assert_str_eq(s.got, "{\"id\":1}");
	cr_assert(s.got_pong);
}

Test(ws, client_refuses_a_wrong_accept)
{
	struct server s = { .bad_accept = true };
	struct ws_client *c;
	pthread_t t;
	char url[64];

	server_start(&s, &t);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%u", s.port);
	cr_assert_eq(ws_client_connect(&c, url, 3000, NULL), -EACCES);
	cr_assert_null(c);
	pthread_join(t, NULL);
	close(s.lfd);
}
