/* SPDX-License-Identifier: MIT */
/*
 * net: talking over the network, on common/ only: an HTTP client over libcurl (TCP or a
 * unix socket, kept connections), a small bounded HTTP server (the simulator, the
 * relayer, the dashboard), a TLS client over OpenSSL (the gateway relay, wss://) and a
 * WebSocket client (RFC 6455, new heads by push). Every fallible function returns 0 or a
 * negative errno; nothing here prints.
 */
#ifndef DSTACK_P2P_NET_H
#define DSTACK_P2P_NET_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* ---- HTTP (libcurl) ------------------------------------------------------------ */

/*
 * A kept connection to one endpoint: requests made with it reuse one TCP (and TLS)
 * connection, the CA store and the TLS session; after a transport failure the next
 * request connects anew. curl's buffers keep the last reply until the next request or
 * http_conn_free (which wipes them), so replies that hold keys go without one. Used by
 * one thread at a time. http_conn_new: 0 or -ENOMEM. http_conn_free accepts NULL.
 */
struct http_conn;
int http_conn_new(struct http_conn **out);
void http_conn_free(struct http_conn *conn);

/*
 * Where an HTTP service is: a base URL ("http://127.0.0.1:8545", "https://...") or a
 * unix socket path (then requests go to http://localhost<path>).
 */
struct http_target {
	const char *base_url;     /* NULL when unix_socket is set */
	const char *unix_socket;  /* NULL for TCP */
	long timeout_ms;          /* whole request; 0 = 10 s */
	long connect_timeout_ms;  /* 0 = 3 s */
	size_t max_reply;         /* 0 = 16 MiB */
	/* Non-NULL: the request gives up (-ECANCELED) soon after *abort_flag turns non-zero,
	 * e.g. set by a SIGTERM handler; NULL: only the timeouts end it. */
	const volatile sig_atomic_t *abort_flag;
	/* Non-NULL: the request goes over this kept connection; NULL: a fresh connection,
	 * closed after the request, curl's buffers wiped. */
	struct http_conn *conn;
	/* CA bundle for https; NULL: the system's. */
	const char *ca_file;
};

struct http_reply {
	long status;       /* HTTP status, 0 if none was received */
	struct buf body;   /* NUL-terminated */
	char error[256];   /* transport error text (curl's), empty if none */
};

/*
 * POST body to target + path with the given content type (NULL: application/json).
 * Returns 0 when an HTTP reply was received (any status: check reply->status),
 * -ETIMEDOUT, -ECONNREFUSED, -ENOENT (socket path missing), -EMSGSIZE (reply too
 * large) or -EIO for other transport failures; reply->error says more.
 * The caller frees reply->body with http_reply_clear.
 */
int http_post(const struct http_target *target, const char *path, const char *content_type,
	      const void *body, size_t body_len, struct http_reply *reply);
int http_get(const struct http_target *target, const char *path, struct http_reply *reply);
void http_reply_clear(struct http_reply *reply);

/* Call once at program start (curl_global_init); safe to call more than once. */
int http_global_init(void);

/* ---- HTTP server (small and bounded: dstack-sim, the relayer) -------------------- */

#define HTTP_PEER_MAX 48

struct http_request {
	char method[8];
	char path[128];
	char content_type[128];   /* "" when absent */
	char last_event_id[64];   /* Last-Event-ID (an EventSource reconnecting), "" when absent */
	char host[128];           /* Host, "" when absent */
	size_t content_length;
	size_t header_len;        /* through the blank line */
	const char *body;         /* content_length bytes (set before the handler runs) */
	char peer[HTTP_PEER_MAX]; /* the client's address */
};

/* Fills reply with a JSON body and returns the HTTP status to answer with. */
typedef int (*http_handler_fn)(void *ctx, const struct http_request *req, struct buf *reply);
/* What a typed handler says about its reply. */
struct http_reply_meta {
	const char *type;   /* Content-Type (a static string); "application/json" preset */
	bool stream;        /* keep the connection open: the reply is the stream's first chunk */
	uint64_t cursor;    /* a stream's position, handed to stream_more */
};
/* The same, for replies that are not JSON or that stream (server-sent events). */
typedef int (*http_typed_handler_fn)(void *ctx, const struct http_request *req, struct buf *reply,
				     struct http_reply_meta *meta);
/* What is new on a stream after *cursor, appended to out (cursor advanced); -errno ends it. */
typedef int (*http_stream_fn)(void *ctx, uint64_t *cursor, struct buf *out);

struct http_server {
	size_t max_header;        /* larger heads get 431 */
	size_t max_body;          /* larger bodies get 413, before they are read */
	long deadline_ms;         /* to send the request and take the reply; 0: 5 s */
	http_handler_fn handler;  /* runs once per complete request, one at a time */
	http_typed_handler_fn typed_handler;  /* used instead of handler when set */
	/*
	 * Streams: when the typed handler sets meta->stream, the connection stays open (no
	 * Content-Length, closed after stream_ms) and every stream_tick_ms stream_more adds what
	 * is new. At most max_streams at once (more get 503), so plain requests keep slots; a
	 * client that does not take its data within 200 ms is dropped.
	 */
	http_stream_fn stream_more;
	long stream_tick_ms;
	long stream_ms;
	int max_streams;
	/* Connections waiting for their request one client address may hold (0: 8); its next
	 * one replaces its oldest. Streams do not count (max_streams bounds them); unix-socket
	 * clients have no address: only the table bounds them. */
	int max_per_address;
	/* Called every tick_ms (when set) between requests: work that must not wait for one. */
	void (*tick)(void *ctx);
	long tick_ms;
	void *ctx;
};

/*
 * Parse a request head in data: 0 done (req filled, body not set), 1 need more bytes, or
 * the HTTP status to answer with (400 malformed, 411 chunked, 413 body too large, 431 head
 * too large).
 */
int http_parse_head(const uint8_t *data, size_t len, size_t max_header, size_t max_body,
		    struct http_request *req);
/*
 * Serve HTTP/1.1 on the listening sockets until *stop (signals blocked by the caller are
 * let through by ppoll with wait_mask). One request per connection, Connection: close; at
 * most 32 connections, each with a deadline (2 s for the head, deadline_ms in all); an
 * address beyond max_per_address, or anyone when all 32 are taken, evicts the oldest
 * connection still waiting for its request. Returns 0 or a poll error.
 */
int http_serve(const struct http_server *srv, const int *listen_fds, int nfds,
	       const sigset_t *wait_mask, volatile sig_atomic_t *stop);
/*
 * A listening socket (non-blocking, close-on-exec) on "HOST:PORT" ("[::1]:80", ":8080" for
 * every address); *loopback (may be NULL) tells whether HOST is a loopback address.
 * -EINVAL for a spec that does not parse or resolve, else -errno of socket/bind/listen.
 */
int http_listen(const char *spec, int *fd, bool *loopback);

/* ---- one page over HTTP, served from the caller's loop (http-page.c) ------------------- */

/*
 * A listening socket's clients get one page (GET or HEAD of path, a query ignored): 404
 * for another path, 405 for another method, 413 for a request with a body, 431 for a head
 * above HTTP_PAGE_REQUEST_MAX, 500 when render fails. Each connection has
 * HTTP_PAGE_DEADLINE_MS from accept for its request and the whole reply; at most
 * HTTP_PAGE_CONNS at once, a new one replacing the oldest. Every socket is non-blocking
 * and in an epoll set whose fd (http_page_fd) the caller polls for input among its own;
 * http_page_dispatch then does what is ready, without waiting. Used by one thread.
 */
#define HTTP_PAGE_CONNS 8
#define HTTP_PAGE_REQUEST_MAX 2048
#define HTTP_PAGE_REPLY_MAX (4u << 20)
#define HTTP_PAGE_DEADLINE_MS 2000

/* The page's body, appended to body (bounded): 0, or -errno (the client gets a 500). */
typedef int (*http_page_fn)(void *ctx, struct buf *body);

struct http_page_conn {
	int fd;            /* -1: free */
	uint64_t deadline; /* now_ms clock; also its age: the oldest is replaced first */
	size_t in_len;
	uint8_t in[HTTP_PAGE_REQUEST_MAX];
	struct buf out; /* the reply, once the head is in */
	size_t out_off;
};

struct http_page_stats {
	uint64_t served;  /* pages sent (200) */
	uint64_t refused; /* other answers (4xx, 500) */
	uint64_t evicted; /* connections replaced by a newer one */
	uint64_t expired; /* connections past their deadline */
};

struct http_page {
	int epfd, listen_fd;
	const char *path;         /* "/metrics" (borrowed) */
	const char *content_type; /* of the page (borrowed) */
	http_page_fn render;
	void *ctx;
	struct http_page_conn conn[HTTP_PAGE_CONNS];
	struct http_page_stats stats;
};

/* Serve on listen_fd (non-blocking; owned from now on, closed by http_page_close): 0 or
 * -errno of epoll. */
int http_page_open(struct http_page *p, int listen_fd, const char *path, const char *content_type,
		   http_page_fn render, void *ctx);
/* The fd to poll for input: readable when a client or the listener has something. */
int http_page_fd(const struct http_page *p);
/* Accept, read, answer and send what is ready now, then http_page_expire. */
void http_page_dispatch(struct http_page *p, uint64_t now);
/* Close the connections past their deadline (call it now and then even when idle). */
void http_page_expire(struct http_page *p, uint64_t now);
/* Closes every connection and the listener; again after that, or after a failed open, it
 * does nothing. */
void http_page_close(struct http_page *p);

/* ---- TLS client (OpenSSL; tls.c) --------------------------------------------------- */

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
/*
 * A client context that verifies the server against ca_file, or the system store when
 * ca_file is NULL or empty; TLS 1.2 at least. 0, -ENOMEM, or -ENOENT (the CAs do not load).
 */
int tls_client_ctx_new(const char *ca_file, SSL_CTX **out);
/* A connection on fd that sends SNI host and checks the certificate names host (an IP
 * literal: no SNI, the certificate's IP names): 0 or -ENOMEM. */
int tls_client_new(SSL_CTX *ctx, int fd, const char *host, SSL **out);

/* ---- WebSocket client (RFC 6455; ws.c) ------------------------------------------------ */

#define WS_MSG_MAX (64 * 1024)       /* a longer message from the server fails the connection */
#define WS_SEND_MAX 4096              /* what we send in one frame */
#define WS_ACCEPT_LEN 28              /* base64 of a SHA-1 */

struct ws_url {
	bool tls;                       /* wss:// */
	char host[256];                 /* without the brackets of an IPv6 literal */
	uint16_t port;                  /* 80 or 443 unless given */
	char path[1024];                /* path and query, "/" at least */
};
/* ws:// or wss:// URLs only, no user:password@, no #fragment: 0 or -EINVAL. */
int ws_url_parse(const char *url, struct ws_url *u);
/* http://X -> ws://X, https://X -> wss://X: 0, -EINVAL (another scheme), -ENAMETOOLONG. */
int ws_url_from_http(const char *http_url, char *out, size_t cap);
/* The Sec-WebSocket-Accept a server must answer to key_b64. */
void ws_accept_key(const char *key_b64, char out[static WS_ACCEPT_LEN + 1]);
/*
 * The server's reply to our Upgrade (resp[0..len), not NUL-terminated): the length of its
 * head (> 0) when it is a valid 101 with the accept for key_b64; 0 when the head is not
 * complete yet; -EMSGSIZE (head longer than 8 KiB), -EPROTO (not a 101 upgrade to
 * websocket, or an extension or subprotocol we did not ask for), -EACCES (wrong accept).
 */
int ws_handshake_check(const char *resp, size_t len, const char *key_b64);

struct ws_frame {
	bool fin;
	int opcode;
	const uint8_t *payload;         /* inside the parsed buffer */
	size_t len;
};
/*
 * One server frame at p[0..n): its size (> 0), 0 when incomplete, -EPROTO (masked,
 * reserved bits or opcode, a fragmented or long control frame, a non-minimal length),
 * -EMSGSIZE (payload over max_payload).
 */
int ws_frame_parse(const uint8_t *p, size_t n, size_t max_payload, struct ws_frame *f);
/* A masked client frame into out[cap]: its length, -EMSGSIZE, -EIO (no randomness). */
int ws_frame_build(uint8_t *out, size_t cap, int opcode, const void *payload, size_t len);

/*
 * Called per whole message (opcode 1 text, 2 binary: fragments joined) and per control
 * frame (8 close, 9 ping, 10 pong). A negative return stops the parse and is returned.
 */
typedef int (*ws_event_fn)(void *ctx, int opcode, const uint8_t *data, size_t len);
struct ws_parser {
	uint8_t in[WS_MSG_MAX + 14];    /* one frame at most, header included */
	size_t in_len;
	uint8_t msg[WS_MSG_MAX];        /* the message being joined */
	size_t msg_len;
	int msg_op;                     /* its opcode, -1 between messages */
};
void ws_parser_init(struct ws_parser *p);
/* Bytes from the server, in any split: 0, or the first error of ws_frame_parse, of the
 * message rules (-EPROTO, -EMSGSIZE over WS_MSG_MAX) or of cb. */
int ws_parser_feed(struct ws_parser *p, const uint8_t *data, size_t n, ws_event_fn cb, void *ctx);

/*
 * A connected client: TCP, TLS for wss:// (system CAs, SNI, name checked), the Upgrade,
 * all within timeout_ms (abort_flag, may be NULL, cuts it short: -ECANCELED). Then its
 * socket is non-blocking: poll ws_client_fd for POLLIN and call ws_client_read, which
 * reads what is there, answers pings, hands messages and pongs to cb, and returns 0
 * (nothing more to read), -ECONNRESET (closed by the server), or another negative errno
 * (the connection is unusable: free it). Errors of connect: -EINVAL (URL),
 * -EHOSTUNREACH (name), -errno of connect, -ETIMEDOUT, -EPERM (certificate), -EPROTO,
 * -EACCES, -EMSGSIZE (the handshake), -ENOMEM.
 */
struct ws_client;
int ws_client_connect(struct ws_client **out, const char *url, int timeout_ms,
		      const volatile sig_atomic_t *abort_flag);
int ws_client_fd(const struct ws_client *c);
int ws_client_read(struct ws_client *c, ws_event_fn cb, void *ctx);
/* One frame (len <= WS_SEND_MAX), out within 2 s: 0 or negative errno. */
int ws_client_send(struct ws_client *c, int opcode, const void *data, size_t len);
/* Sends a close frame if it can without waiting; accepts NULL. */
void ws_client_free(struct ws_client *c);

#endif
