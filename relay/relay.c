/* SPDX-License-Identifier: MIT */
/* relay: the epoll loop that moves WireGuard datagrams between loopback sockets and gateway streams. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/common.h"
#include "net/net.h"
#include "relay/internal.h"

#define MAX_TOKEN 254
#define IN_CAP (RELAY_MAX_DATAGRAM + 2)  /* a whole frame always fits once earlier ones moved out */
#define BATCH 32                   /* datagrams per recvmmsg / sendmmsg */
#define READS_PER_EVENT 32         /* stream reads per wake-up, so one busy peer cannot starve the rest */
#define BACKOFF_MIN_MS 100
#define BACKOFF_FAST_MS 500        /* cap while the peer was up (or added) less than FAST_WINDOW ago */
#define BACKOFF_SLOW_MS 15000
#define FAST_WINDOW_MS 30000
#define REDIAL_AFTER_CLOSE_MS 20   /* a stream that was up and closed (gateway cap, restart) */
#define UDP_SOCKET_BYTES (1 << 20) /* each loopback socket, each way (docs/transport.md, socket sizes) */
#define STREAM_SNDBUF (4 << 20)    /* a stream's send buffer (the kernel doubles it for its overhead) */
#define STREAM_NOTSENT_LOWAT (128 << 10) /* bytes written but not yet sent, at most */

enum ev_kind { EV_WAKE, EV_LISTEN, EV_UDP, EV_CONN };

/* The first member of everything registered with epoll: what it is. */
struct ev {
	enum ev_kind kind;
};

enum conn_state { C_CONNECTING, C_TLS, C_HELLO, C_UP, C_DEAD };

struct peer;

struct conn {
	struct ev ev;
	int fd;
	SSL *ssl;
	enum conn_state state;
	bool dialed;                    /* we dialled it (else the gateway brought it to us) */
	bool want_out;                  /* EPOLLOUT is registered */
	bool more;                      /* stopped reading before EAGAIN: read again next round */
	bool got_challenge;
	struct peer *peer;              /* dialled: from the start; accepted: once proven */
	uint8_t my_nonce[32], their_nonce[32], their_id[20];
	uint64_t deadline_ms;           /* until proven */
	uint64_t last_tx_ms;
	struct conn *next;              /* every conn (live and dead) */
	size_t in_len;
	size_t out_off, out_len;
	uint8_t in[IN_CAP];
	uint8_t out[RELAY_QUEUE_BYTES];
};

struct peer {
	struct ev ev;
	bool used;
	bool dialer;
	int udp;
	struct relay_peer info;
	struct sockaddr_storage gw;
	socklen_t gw_len;
	struct conn *conn;              /* the stream we dial, or the proven one */
	uint64_t next_dial_ms;
	uint64_t fast_until_ms;         /* fast redials until then */
	unsigned backoff_ms;
	struct relay_stats st;
};

struct relay {
	struct relay_config cfg;
	pthread_mutex_t lock;
	pthread_t thread;
	bool running;
	volatile bool stop;
	int epfd, wakefd, listenfd;
	struct ev wake_ev, listen_ev;
	SSL_CTX *tls;
	struct sockaddr_in wg_addr;     /* 127.0.0.1:wg_port */
	struct conn *conns;
	uint64_t refused_unknown;
	struct peer peers[MAX_TOKEN + 1];
	/* recvmmsg/sendmmsg scratch, allocated once */
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in from[BATCH];
	uint8_t slots[BATCH][2 + RELAY_MAX_DATAGRAM];
};

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t jitter(unsigned ms)
{
	unsigned x = 0;

	if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x))
		x = (unsigned)now_ms();
	return ms + (ms ? x % (ms / 4 + 1) : 0);
}

static void peer_error(struct peer *p, const char *what, int err)
{
	if (!p)
		return;
	if (err)
		snprintf(p->st.error, sizeof(p->st.error), "%s: %s", what, errstr(err));
	else
		snprintf(p->st.error, sizeof(p->st.error), "%s", what);
}

static int ep_mod(struct relay *r, struct conn *c, bool out)
{
	struct epoll_event e = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = &c->ev };

	if (c->want_out == out)
		return 0;
	c->want_out = out;
	return epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &e) < 0 ? -errno : 0;
}

/* ---- socket set-up ------------------------------------------------------------------------ */

/*
 * A peer's loopback UDP socket holds what WireGuard sends while the loop is busy with
 * other peers: 1 MiB each way (about 450 full-size datagrams), not the kernel's 208 KiB
 * default, which a burst from a fast WireGuard overruns in under 100 datagrams. FORCE
 * passes net.core.rmem_max/wmem_max with CAP_NET_ADMIN (the agent has it); without it
 * the plain option takes what the limit allows.
 */
static void udp_size_buffers(int fd)
{
	int bytes = UDP_SOCKET_BYTES;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

/*
 * A stream, dialled or accepted. No Nagle delay: each flush is a batch of whole frames
 * already, and a lone handshake or ping must not wait for an ACK. The send buffer is
 * fixed, not autotuned: autotuning starts at tcp_wmem's 16 KiB and grows only with the
 * congestion window, so one burst from WireGuard (wireguard-go hands over 64 KiB at once)
 * overflows it and our queue while the stream is young, and every frame that does not
 * fit is a loss for the TCP inside. 4 MiB holds 300 Mbit/s x 80 ms in flight.
 * TCP_NOTSENT_LOWAT bounds what waits unsent in the kernel to 128 KiB (3.5 ms at
 * 300 Mbit/s), so a stream the path cannot carry still drops early instead of queueing
 * seconds of traffic in front of every ping. Figures: docs/transport.md, socket sizes.
 */
static void stream_set_options(int fd)
{
	int one = 1, sndbuf = STREAM_SNDBUF, lowat = STREAM_NOTSENT_LOWAT;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
}

/* ---- streams ------------------------------------------------------------------------------ */

static struct conn *conn_new(struct relay *r, int fd, bool dialed)
{
	struct conn *c = malloc(sizeof(*c));
	struct epoll_event e = { .events = EPOLLIN | (dialed ? EPOLLOUT : 0) };

	if (!c)
		return NULL;
	/* The buffers stay untouched (and out of the RSS) until data flows. */
	memset(c, 0, offsetof(struct conn, in));
	c->ev.kind = EV_CONN;
	c->fd = fd;
	c->dialed = dialed;
	c->want_out = dialed;
	c->deadline_ms = now_ms() + RELAY_HELLO_TIMEOUT_MS;
	e.data.ptr = &c->ev;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		free(c);
		return NULL;
	}
	c->next = r->conns;
	r->conns = c;
	return c;
}

/* Close a stream now; its memory goes at the end of the round (events may still name it). */
static void conn_kill(struct relay *r, struct conn *c)
{
	if (c->state == C_DEAD)
		return;
	if (c->peer && c->peer->conn == c) {
		struct peer *p = c->peer;

		p->conn = NULL;
		if (p->dialer) {
			uint64_t now = now_ms();
			unsigned cap = now < p->fast_until_ms ? BACKOFF_FAST_MS : BACKOFF_SLOW_MS;

			if (c->state == C_UP) {
				p->backoff_ms = 0;
				p->next_dial_ms = now + REDIAL_AFTER_CLOSE_MS;
			} else {
				p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
				if (p->backoff_ms > cap)
					p->backoff_ms = cap;
				p->next_dial_ms = now + jitter(p->backoff_ms);
			}
		}
		if (c->state == C_UP)
			p->st.state = RELAY_DOWN;
		else if (p->st.state == RELAY_CONNECTING)
			p->st.state = RELAY_DOWN;
	}
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd);
	c->fd = -1;
	c->state = C_DEAD;
}

static void conns_reap(struct relay *r)
{
	struct conn **pp = &r->conns;

	while (*pp) {
		struct conn *c = *pp;

		if (c->state == C_DEAD) {
			*pp = c->next;
			free(c);
		} else {
			pp = &c->next;
		}
	}
}

/* Read into buf: >0 bytes, 0 at the end of the stream, -EAGAIN, or another negative errno. */
static ssize_t conn_read(struct relay *r, struct conn *c, void *buf, size_t n)
{
	ssize_t k;

	if (!c->ssl) {
		k = read(c->fd, buf, n);
		if (k < 0)
			return errno == EINTR ? -EAGAIN : -errno;
		return k;
	}
	ERR_clear_error();
	k = SSL_read(c->ssl, buf, (int)n);
	if (k > 0)
		return k;
	switch (SSL_get_error(c->ssl, (int)k)) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		ep_mod(r, c, true);
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		return errno ? -errno : 0;
	default:
		return -EPROTO;
	}
}

static ssize_t conn_write(struct conn *c, const void *buf, size_t n)
{
	ssize_t k;

	if (!c->ssl) {
		k = send(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0)
			return errno == EINTR || errno == EWOULDBLOCK ? -EAGAIN : -errno;
		return k;
	}
	ERR_clear_error();
	k = SSL_write(c->ssl, buf, (int)n);
	if (k > 0)
		return k;
	switch (SSL_get_error(c->ssl, (int)k)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_SYSCALL:
		return errno ? -errno : -EPIPE;
	default:
		return -EPROTO;
	}
}

/* Send what is queued; EPOLLOUT while something is left. 0, or negative: the stream is dead. */
static int conn_flush(struct relay *r, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t k = conn_write(c, c->out + c->out_off, c->out_len - c->out_off);

		if (k == -EAGAIN)
			return ep_mod(r, c, true);
		if (k < 0)
			return (int)k;
		c->out_off += (size_t)k;
		c->last_tx_ms = now_ms();
	}
	c->out_off = c->out_len = 0;
	return ep_mod(r, c, false);
}

/* Queue one frame; false (and nothing queued) when the queue is full: the caller drops. */
static bool conn_queue(struct conn *c, const void *payload, size_t len)
{
	int n;

	if (RELAY_QUEUE_BYTES - c->out_len < len + 2 && c->out_off) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	n = relay_frame_put(c->out + c->out_len, RELAY_QUEUE_BYTES - c->out_len, payload, len);
	if (n < 0)
		return false;
	c->out_len += (size_t)n;
	return true;
}

static void conn_fail(struct relay *r, struct conn *c, const char *what, int err)
{
	peer_error(c->peer, what, err);
	conn_kill(r, c);
}

static int conn_start_hello(struct relay *r, struct conn *c)
{
	uint8_t frame[RELAY_CHALLENGE_LEN];

	if (getrandom(c->my_nonce, sizeof(c->my_nonce), 0) != (ssize_t)sizeof(c->my_nonce))
		return -EIO;
	relay_challenge_encode(frame, r->cfg.instance_id, c->my_nonce);
	c->state = C_HELLO;
	conn_queue(c, frame, sizeof(frame));
	return conn_flush(r, c);
}

static struct peer *peer_by_instance(struct relay *r, const uint8_t id[static 20])
{
	for (unsigned t = 1; t <= MAX_TOKEN; t++)
		if (r->peers[t].used && !memcmp(r->peers[t].info.instance_id, id, 20))
			return &r->peers[t];
	return NULL;
}

/* Our proof for the other side's challenge: bound to its nonce and our own fresh one. */
static int send_proof(struct relay *r, struct conn *c)
{
	uint8_t digest[32], proof[RELAY_PROOF_LEN];

	relay_proof_digest(digest, r->cfg.chain_id, r->cfg.contract, r->cfg.instance_id, c->their_id,
			   c->their_nonce, c->my_nonce);
	if (r->cfg.sign(r->cfg.sign_ctx, digest, proof) < 0)
		return -EIO;
	conn_queue(c, proof, sizeof(proof));
	return conn_flush(r, c);
}

/*
 * The other side's challenge: who it claims to be. On a stream we dialled (to the peer's
 * own gateway address) we answer with our proof at once; on a stream we accepted, from
 * anyone who can reach the gateway, only after its proof checked out (on_proof), so a
 * stranger who names a peer gets no signature at all (docs/transport.md).
 */
static int on_challenge(struct relay *r, struct conn *c, const uint8_t *p, size_t len)
{
	struct peer *peer;

	if (relay_challenge_parse(p, len, c->their_id, c->their_nonce) < 0)
		return -EPROTO;
	peer = c->dialed ? c->peer : peer_by_instance(r, c->their_id);
	/* The lower instance id dials: a stream from a peer we dial ourselves is not its to open. */
	if (!peer || memcmp(peer->info.instance_id, c->their_id, 20) || peer->dialer != c->dialed)
		return -EACCES;
	c->got_challenge = true;
	return c->dialed ? send_proof(r, c) : 0;
}

/* The other side's proof: the node key of the record it claimed. Then the stream is the peer's. */
static int on_proof(struct relay *r, struct conn *c, const uint8_t *p, size_t len)
{
	struct peer *peer = c->dialed ? c->peer : peer_by_instance(r, c->their_id);
	uint8_t digest[32];
	int err;

	if (!peer)
		return -EACCES;
	relay_proof_digest(digest, r->cfg.chain_id, r->cfg.contract, c->their_id, r->cfg.instance_id,
			   c->my_nonce, c->their_nonce);
	err = relay_proof_check(p, len, digest, peer->info.node_addr);
	if (err < 0) {
		peer->st.refused++;
		return err;
	}
	if (!c->dialed && (err = send_proof(r, c)) < 0)
		return err;
	if (!c->dialed) {
		/* A proven newcomer replaces the old stream: the peer restarted or lost it. */
		if (peer->conn && peer->conn != c)
			conn_kill(r, peer->conn);
		c->peer = peer;
		peer->conn = c;
	}
	c->state = C_UP;
	peer->st.state = RELAY_UP;
	peer->st.connects++;
	peer->st.error[0] = '\0';
	peer->backoff_ms = 0;
	peer->fast_until_ms = now_ms() + FAST_WINDOW_MS;
	return 0;
}

/* Datagrams from the stream to WireGuard, in batches; stream bytes stay where they are. */
static void deliver(struct relay *r, struct peer *p, struct iovec *iov, unsigned n)
{
	struct mmsghdr msgs[BATCH];
	unsigned sent = 0;

	memset(msgs, 0, n * sizeof(msgs[0]));
	for (unsigned i = 0; i < n; i++) {
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &r->wg_addr;
		msgs[i].msg_hdr.msg_namelen = sizeof(r->wg_addr);
	}
	while (sent < n) {
		int k = sendmmsg(p->udp, msgs + sent, n - sent, MSG_DONTWAIT);

		if (k <= 0)
			break;  /* WireGuard's socket is full: it would drop them too */
		for (int i = 0; i < k; i++) {
			p->st.rx_bytes += iov[sent + (unsigned)i].iov_len;
			p->st.rx_packets++;
		}
		sent += (unsigned)k;
	}
	p->st.drops += n - sent;
}

/* Every whole frame in the input buffer. 0, or negative when the stream must close. */
static int conn_frames(struct relay *r, struct conn *c)
{
	struct iovec iov[BATCH];
	unsigned n = 0;
	size_t pos = 0;
	int err = 0;

	for (;;) {
		const uint8_t *payload;
		size_t plen, used;
		int k = relay_frame_next(c->in + pos, c->in_len - pos, RELAY_MAX_DATAGRAM, &payload, &plen, &used);

		if (k < 0) {
			err = k;
			break;
		}
		if (k == 0)
			break;
		pos += used;
		if (c->state == C_HELLO) {
			err = !c->got_challenge ? on_challenge(r, c, payload, plen) : on_proof(r, c, payload, plen);
			if (err < 0)
				break;
			continue;
		}
		if (c->state != C_UP || !plen)
			continue;  /* an empty frame keeps an idle stream alive */
		iov[n].iov_base = (void *)payload;
		iov[n].iov_len = plen;
		if (++n == BATCH) {
			deliver(r, c->peer, iov, n);
			n = 0;
		}
	}
	if (n && c->state == C_UP)
		deliver(r, c->peer, iov, n);
	if (pos) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
	}
	return err;
}

static void conn_readable(struct relay *r, struct conn *c)
{
	c->more = false;
	for (int i = 0; i < READS_PER_EVENT; i++) {
		ssize_t k = conn_read(r, c, c->in + c->in_len, IN_CAP - c->in_len);
		int err;

		if (k == -EAGAIN)
			return;
		if (k <= 0) {
			conn_fail(r, c, k ? "stream" : "stream closed", (int)k);
			return;
		}
		c->in_len += (size_t)k;
		err = conn_frames(r, c);
		if (err < 0) {
			if (!c->dialed && !c->peer)
				r->refused_unknown++;
			conn_fail(r, c, err == -EACCES ? "peer's proof refused" :
				  err == -EMSGSIZE ? "oversized frame" : "bad hello", err == -EACCES ? 0 : err);
			return;
		}
		if (c->state == C_DEAD)
			return;
	}
	c->more = true;
}

static void tls_step(struct relay *r, struct conn *c)
{
	int k, e;

	ERR_clear_error();
	k = SSL_connect(c->ssl);
	if (k == 1) {
		if (conn_start_hello(r, c) < 0)
			conn_fail(r, c, "sending the challenge", -EIO);
		return;
	}
	e = SSL_get_error(c->ssl, k);
	if (e == SSL_ERROR_WANT_READ) {
		ep_mod(r, c, false);
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		ep_mod(r, c, true);
		return;
	}
	if (SSL_get_verify_result(c->ssl) != X509_V_OK)
		snprintf(c->peer->st.error, sizeof(c->peer->st.error), "gateway certificate: %s",
			 X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
	else
		peer_error(c->peer, "TLS handshake with the gateway", -EPROTO);
	conn_kill(r, c);
}

static void conn_connected(struct relay *r, struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		conn_fail(r, c, "connecting to the gateway", -err);
		return;
	}
	if (tls_client_new(r->tls, c->fd, c->peer->info.host, &c->ssl) < 0) {
		conn_fail(r, c, "TLS set-up", -ENOMEM);
		return;
	}
	c->state = C_TLS;
	tls_step(r, c);
}

static void conn_event(struct relay *r, struct conn *c, uint32_t events)
{
	if (c->state == C_DEAD)
		return;
	if (c->state == C_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			conn_connected(r, c);
		return;
	}
	if (c->state == C_TLS) {
		tls_step(r, c);
		return;
	}
	if (events & EPOLLOUT) {
		int err = conn_flush(r, c);

		if (err < 0) {
			conn_fail(r, c, "stream", err);
			return;
		}
	}
	/* A TLS read that wanted to write (a key update) goes on once the socket is writable. */
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP) || (c->ssl && (events & EPOLLOUT)))
		conn_readable(r, c);
}

static void dial(struct relay *r, struct peer *p)
{
	int fd = socket(p->gw.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct conn *c;

	p->next_dial_ms = 0;
	if (p->st.dials++)
		p->st.redials++;
	if (fd < 0) {
		peer_error(p, "socket", -errno);
		p->next_dial_ms = now_ms() + BACKOFF_FAST_MS;
		return;
	}
	stream_set_options(fd);
	if (connect(fd, (struct sockaddr *)&p->gw, p->gw_len) < 0 && errno != EINPROGRESS) {
		peer_error(p, "connecting to the gateway", -errno);
		close(fd);
		p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
		if (p->backoff_ms > BACKOFF_SLOW_MS)
			p->backoff_ms = BACKOFF_SLOW_MS;
		p->next_dial_ms = now_ms() + jitter(p->backoff_ms);
		return;
	}
	c = conn_new(r, fd, true);
	if (!c) {
		close(fd);
		p->next_dial_ms = now_ms() + BACKOFF_FAST_MS;
		return;
	}
	c->state = C_CONNECTING;
	c->peer = p;
	p->conn = c;
	p->st.state = RELAY_CONNECTING;
}

/* Unproven streams above the bound: the oldest goes (a flood cannot keep a peer out for long). */
static void limit_pending(struct relay *r)
{
	struct conn *oldest = NULL;
	unsigned n = 0;

	for (struct conn *c = r->conns; c; c = c->next) {
		if (c->state != C_HELLO || c->dialed || c->peer)
			continue;
		n++;
		if (!oldest || c->deadline_ms < oldest->deadline_ms)
			oldest = c;
	}
	if (n > RELAY_MAX_PENDING && oldest) {
		r->refused_unknown++;
		conn_kill(r, oldest);
	}
}

static void on_accept(struct relay *r)
{
	for (int i = 0; i < 16; i++) {
		int fd = accept4(r->listenfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return;
		stream_set_options(fd);
		c = conn_new(r, fd, false);
		if (!c) {
			close(fd);
			continue;
		}
		if (conn_start_hello(r, c) < 0) {
			conn_kill(r, c);
			continue;
		}
		limit_pending(r);
	}
}

/* Datagrams WireGuard sent to a peer's loopback socket: onto its stream, or dropped. */
static void on_udp(struct relay *r, struct peer *p)
{
	for (int round = 0; round < 4; round++) {
		struct conn *c = p->conn;
		int n;

		for (unsigned i = 0; i < BATCH; i++) {
			r->iov[i] = (struct iovec){ .iov_base = r->slots[i] + 2, .iov_len = RELAY_MAX_DATAGRAM };
			r->msgs[i].msg_hdr = (struct msghdr){
				.msg_iov = &r->iov[i], .msg_iovlen = 1,
				.msg_name = &r->from[i], .msg_namelen = sizeof(r->from[i]),
			};
		}
		n = recvmmsg(p->udp, r->msgs, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			size_t len = r->msgs[i].msg_len;

			/* Only the local WireGuard's port speaks here; anything else is not relayed. */
			if (r->msgs[i].msg_hdr.msg_flags & MSG_TRUNC || r->from[i].sin_port != r->wg_addr.sin_port)
				continue;
			if (!c || c->state != C_UP) {
				p->st.drops++;
				continue;
			}
			if (!conn_queue(c, r->slots[i] + 2, len)) {
				p->st.drops++;
				p->st.queue_drops++;
				continue;
			}
			p->st.tx_bytes += len;
			p->st.tx_packets++;
		}
		if (c && c->state == C_UP) {
			int err = conn_flush(r, c);

			if (err < 0)
				conn_fail(r, c, "stream", err);
		} else if (p->dialer && !p->conn && p->next_dial_ms > now_ms() + BACKOFF_MIN_MS &&
			   now_ms() < p->fast_until_ms) {
			p->next_dial_ms = now_ms();  /* traffic waits: do not sit out a long backoff */
		}
		if (n < BATCH)
			return;
	}
}

/* Timers: dials due, hello deadlines, keepalives. Returns ms until the next one. */
static int run_timers(struct relay *r)
{
	uint64_t now = now_ms(), next = now + 1000;

	for (struct conn *c = r->conns; c; c = c->next) {
		if (c->state == C_DEAD)
			continue;
		if (c->state != C_UP) {
			if (now >= c->deadline_ms) {
				if (!c->peer)
					r->refused_unknown++;
				conn_fail(r, c, "no proof from the peer in time", -ETIMEDOUT);
				continue;
			}
			if (c->deadline_ms < next)
				next = c->deadline_ms;
			continue;
		}
		if (now - c->last_tx_ms >= RELAY_KEEPALIVE_MS) {
			conn_queue(c, NULL, 0);
			if (conn_flush(r, c) < 0) {
				conn_fail(r, c, "stream", -EPIPE);
				continue;
			}
		}
	}
	for (unsigned t = 1; t <= MAX_TOKEN; t++) {
		struct peer *p = &r->peers[t];

		if (!p->used || !p->dialer || p->conn || !p->gw_len)
			continue;
		if (now >= p->next_dial_ms)
			dial(r, p);
		else if (p->next_dial_ms < next)
			next = p->next_dial_ms;
	}
	return next > now ? (int)(next - now) : 0;
}

int relay_dispatch(struct relay *r, int timeout_ms)
{
	struct epoll_event events[64];
	bool again = false;
	int n, t;

	pthread_mutex_lock(&r->lock);
	t = run_timers(r);
	for (struct conn *c = r->conns; c; c = c->next)
		again |= c->more && c->state != C_DEAD;
	pthread_mutex_unlock(&r->lock);
	if (again)
		t = 0;
	if (timeout_ms >= 0 && timeout_ms < t)
		t = timeout_ms;
	n = epoll_wait(r->epfd, events, 64, t);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;

	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < n; i++) {
		struct ev *ev = events[i].data.ptr;

		switch (ev->kind) {
		case EV_WAKE: {
			uint64_t v;

			if (read(r->wakefd, &v, sizeof(v)) < 0) {
				/* nothing pending */
			}
			break;
		}
		case EV_LISTEN:
			on_accept(r);
			break;
		case EV_UDP: {
			struct peer *p = (struct peer *)ev;

			if (p->used && p->udp >= 0)
				on_udp(r, p);
			break;
		}
		case EV_CONN:
			conn_event(r, (struct conn *)ev, events[i].events);
			break;
		}
	}
	for (struct conn *c = r->conns; c; c = c->next)
		if (c->more && c->state != C_DEAD)
			conn_readable(r, c);
	run_timers(r);
	conns_reap(r);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* ---- peers ----------------------------------------------------------------------------- */

void relay_loop_endpoint(const struct relay *r, uint32_t token, struct sockaddr_in *out)
{
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons(r->cfg.loop_port);
	out->sin_addr.s_addr = htonl(0x7f000100u | (token & 0xff));
}

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *out, socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *res = NULL;
	char service[8];

	snprintf(service, sizeof(service), "%u", port);
	if (getaddrinfo(host, service, &hints, &res) || !res)
		return -EADDRNOTAVAIL;
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int udp_open(struct relay *r, struct peer *p, uint32_t token)
{
	struct sockaddr_in sin;
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &p->ev };
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A restarted agent binds the same address at once: WireGuard's endpoint stays valid. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	udp_size_buffers(fd);
	relay_loop_endpoint(r, token, &sin);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	p->udp = fd;
	return 0;
}

static void wake(struct relay *r)
{
	uint64_t one = 1;

	if (write(r->wakefd, &one, sizeof(one)) < 0) {
		/* the counter is already non-zero: a wake-up is pending */
	}
}

int relay_peer_set(struct relay *r, const struct relay_peer *in, struct sockaddr_in *loop)
{
	struct sockaddr_storage gw = { 0 };
	socklen_t gw_len = 0;
	struct peer *p;
	int err = 0;

	if (in->token < 1 || in->token > MAX_TOKEN || !in->host[0] || !in->port ||
	    !memchr(in->host, '\0', sizeof(in->host)))
		return -EINVAL;
	err = resolve(in->host, in->port, &gw, &gw_len);  /* outside the lock: DNS may be slow */
	if (err < 0)
		return err;
	pthread_mutex_lock(&r->lock);
	p = &r->peers[in->token];
	if (p->used && (memcmp(p->info.instance_id, in->instance_id, 20) ||
			memcmp(p->info.node_addr, in->node_addr, 20) || strcmp(p->info.host, in->host) ||
			p->info.port != in->port)) {
		if (p->conn)
			conn_kill(r, p->conn);
		if (memcmp(p->info.instance_id, in->instance_id, 20))
			memset(&p->st, 0, sizeof(p->st));
		p->next_dial_ms = 0;
	}
	if (!p->used) {
		memset(p, 0, sizeof(*p));
		p->ev.kind = EV_UDP;
		p->udp = -1;
		p->fast_until_ms = now_ms() + FAST_WINDOW_MS;
	}
	if (p->udp < 0)
		err = udp_open(r, p, in->token);
	if (err == 0) {
		p->used = true;
		p->info = *in;
		p->gw = gw;
		p->gw_len = gw_len;
		p->dialer = memcmp(r->cfg.instance_id, in->instance_id, 20) < 0;
		p->st.dialer = p->dialer;
		if (loop)
			relay_loop_endpoint(r, in->token, loop);
	}
	pthread_mutex_unlock(&r->lock);
	wake(r);
	return err;
}

int relay_peer_remove(struct relay *r, uint32_t token)
{
	struct peer *p;
	int err = 0;

	if (token < 1 || token > MAX_TOKEN)
		return -ENOENT;
	pthread_mutex_lock(&r->lock);
	p = &r->peers[token];
	if (!p->used) {
		err = -ENOENT;
	} else {
		if (p->conn)
			conn_kill(r, p->conn);
		if (p->udp >= 0) {
			epoll_ctl(r->epfd, EPOLL_CTL_DEL, p->udp, NULL);
			close(p->udp);
		}
		p->udp = -1;
		p->used = false;
	}
	/* Streams this peer proved earlier are gone with it; unproven ones naming it fail later. */
	pthread_mutex_unlock(&r->lock);
	return err;
}

int relay_peer_stats(struct relay *r, uint32_t token, struct relay_stats *st)
{
	int err = 0;

	if (token < 1 || token > MAX_TOKEN)
		return -ENOENT;
	pthread_mutex_lock(&r->lock);
	if (r->peers[token].used)
		*st = r->peers[token].st;
	else
		err = -ENOENT;
	pthread_mutex_unlock(&r->lock);
	return err;
}

uint64_t relay_refused_unknown(struct relay *r)
{
	uint64_t n;

	pthread_mutex_lock(&r->lock);
	n = r->refused_unknown;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* ---- set-up ----------------------------------------------------------------------------- */

static int tls_open(struct relay *r)
{
	return tls_client_ctx_new(r->cfg.ca_file, &r->tls);
}

static int listen_open(struct relay *r)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(r->cfg.listen_port) };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(r->cfg.listen_port) };
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &r->listen_ev };
	int one = 1, zero = 0;

	/* Dual stack when the host has IPv6, else IPv4. */
	r->listenfd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->listenfd >= 0) {
		setsockopt(r->listenfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		setsockopt(r->listenfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(r->listenfd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0) {
			close(r->listenfd);
			r->listenfd = -1;
		}
	}
	if (r->listenfd < 0) {
		r->listenfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (r->listenfd < 0)
			return -errno;
		setsockopt(r->listenfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(r->listenfd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
			return -errno;
	}
	if (listen(r->listenfd, 128) < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->listenfd, &e) < 0)
		return -errno;
	return 0;
}

int relay_new(struct relay **out, const struct relay_config *cfg)
{
	struct epoll_event e = { .events = EPOLLIN };
	struct relay *r;
	int err;

	*out = NULL;
	if (!cfg->sign || !cfg->wg_port || !cfg->loop_port)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->cfg = *cfg;
	r->epfd = r->wakefd = r->listenfd = -1;
	r->wake_ev.kind = EV_WAKE;
	r->listen_ev.kind = EV_LISTEN;
	for (unsigned t = 0; t <= MAX_TOKEN; t++)
		r->peers[t].udp = -1;
	pthread_mutex_init(&r->lock, NULL);
	r->wg_addr.sin_family = AF_INET;
	r->wg_addr.sin_port = htons(cfg->wg_port);
	r->wg_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->epfd < 0 || r->wakefd < 0) {
		err = -errno;
		goto fail;
	}
	e.data.ptr = &r->wake_ev;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wakefd, &e) < 0) {
		err = -errno;
		goto fail;
	}
	err = tls_open(r);
	if (err < 0)
		goto fail;
	if (cfg->listen_port) {
		err = listen_open(r);
		if (err < 0)
			goto fail;
	}
	*out = r;
	return 0;
fail:
	relay_free(r);
	return err;
}

static void *relay_thread(void *arg)
{
	struct relay *r = arg;

	while (!r->stop)
		relay_dispatch(r, 1000);
	return NULL;
}

int relay_start(struct relay *r)
{
	int err;

	if (r->running)
		return -EALREADY;
	r->stop = false;
	err = pthread_create(&r->thread, NULL, relay_thread, r);
	if (err)
		return -err;
	r->running = true;
	return 0;
}

void relay_stop(struct relay *r)
{
	if (!r || !r->running)
		return;
	r->stop = true;
	wake(r);
	pthread_join(r->thread, NULL);
	r->running = false;
}

void relay_free(struct relay *r)
{
	if (!r)
		return;
	relay_stop(r);
	for (struct conn *c = r->conns; c; c = c->next)
		conn_kill(r, c);
	conns_reap(r);
	for (unsigned t = 1; t <= MAX_TOKEN; t++)
		if (r->peers[t].udp >= 0)
			close(r->peers[t].udp);
	if (r->listenfd >= 0)
		close(r->listenfd);
	if (r->wakefd >= 0)
		close(r->wakefd);
	if (r->epfd >= 0)
		close(r->epfd);
	SSL_CTX_free(r->tls);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
