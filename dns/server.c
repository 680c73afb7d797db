/* SPDX-License-Identifier: MIT */
/*
 * dns: the server: a UDP and a TCP socket on one address, their connections and a timer for
 * the connections' deadlines, all behind one epoll fd the caller's loop polls. Nothing here
 * blocks: every socket is non-blocking and each dns_server_serve handles a bounded number
 * of events; what is left keeps the fd readable for the next turn.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "dns/dns.h"

enum { TAG_UDP = 0, TAG_TCP = 1, TAG_TIMER = 2, TAG_CONN = 16 };

struct dns_conn {
	int fd;            /* -1: a free slot */
	uint64_t deadline; /* closed then, whatever it is doing */
	uint64_t born;     /* the oldest goes first when all slots are taken */
	size_t in_len;
	uint8_t in[2 + DNS_QUERY_MAX];
	size_t out_len, out_off;
	uint8_t out[2 + DNS_REPLY_MAX];
};

struct dns_server {
	struct dns_server_config cfg;
	int ep, udp, tcp, timer;
	uint16_t port;
	struct dns_conn *conns; /* cfg.max_tcp of them */
	struct dns_server_stats st;
	uint8_t rx[DNS_QUERY_MAX + 1]; /* one byte more: a longer datagram is seen as such */
	uint8_t tx[DNS_REPLY_MAX];
};

/* ---- opening --------------------------------------------------------------------- */

static int listen_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	struct hostport hp;

	if (hostport_split(spec, strlen(spec), HOSTPORT_PORT_ZERO | HOSTPORT_LAST_COLON, &hp) < 0)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (!hp.bracketed && inet_pton(AF_INET, hp.host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(hp.port);
		*sl = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, hp.host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(hp.port);
		*sl = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

static int watch(int ep, int fd, uint32_t events, uint64_t tag, int op)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	return epoll_ctl(ep, op, fd, &ev) < 0 ? -errno : 0;
}

static int bound_socket(int type, const struct sockaddr_storage *ss, socklen_t sl, bool freebind, int *out)
{
	int fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (freebind)
		(void)setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, sl) < 0 || (type == SOCK_STREAM && listen(fd, 16) < 0)) {
		int r = -errno;

		close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

static void defaults(struct dns_server_config *c)
{
	if (!c->budget)
		c->budget = 64;
	if (!c->max_tcp)
		c->max_tcp = 16;
	if (!c->tcp_timeout_ms)
		c->tcp_timeout_ms = 5000;
	if (c->allow_prefix > 32)
		c->allow_prefix = 32;
}

static int sockets_open(struct dns_server *s, struct err_detail *why)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int r;

	if (listen_addr(s->cfg.listen, &ss, &sl) < 0) {
		err_detail_set(why, "DNS listen address '%s' is not a numeric address:port", s->cfg.listen);
		return -EINVAL;
	}
	r = bound_socket(SOCK_DGRAM, &ss, sl, s->cfg.freebind, &s->udp);
	if (!r) { /* TCP on the port UDP got (port 0: the one the kernel picked) */
		struct sockaddr_storage got;
		socklen_t gl = sizeof(got);

		r = getsockname(s->udp, (struct sockaddr *)&got, &gl) < 0 ? -errno : 0;
		s->port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
							 : ((struct sockaddr_in6 *)&got)->sin6_port);
		((struct sockaddr_in *)&ss)->sin_port = htons(s->port); /* same offset in sin6 */
	}
	if (!r)
		r = bound_socket(SOCK_STREAM, &ss, sl, s->cfg.freebind, &s->tcp);
	if (r < 0)
		err_detail_set(why, "DNS on %s: %s", s->cfg.listen, errstr(r));
	return r;
}

int dns_server_open(struct dns_server **out, const struct dns_server_config *cfg, struct err_detail *why)
{
	struct dns_server *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	defaults(&s->cfg);
	s->ep = s->udp = s->tcp = s->timer = -1;
	s->conns = calloc(s->cfg.max_tcp, sizeof(*s->conns));
	if (!s->conns) {
		r = -ENOMEM;
		goto err;
	}
	for (unsigned i = 0; i < s->cfg.max_tcp; i++)
		s->conns[i].fd = -1;
	r = sockets_open(s, why);
	if (r < 0)
		goto err;
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	s->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->ep < 0 || s->timer < 0) {
		r = -errno;
		err_detail_set(why, "DNS server: %s", errstr(r));
		goto err;
	}
	r = watch(s->ep, s->udp, EPOLLIN, TAG_UDP, EPOLL_CTL_ADD);
	if (!r)
		r = watch(s->ep, s->tcp, EPOLLIN, TAG_TCP, EPOLL_CTL_ADD);
	if (!r)
		r = watch(s->ep, s->timer, EPOLLIN, TAG_TIMER, EPOLL_CTL_ADD);
	if (r < 0) {
		err_detail_set(why, "DNS server: epoll: %s", errstr(r));
		goto err;
	}
	*out = s;
	return 0;
err:
	dns_server_free(s);
	return r;
}

int dns_server_fd(const struct dns_server *s)
{
	return s->ep;
}

uint16_t dns_server_port(const struct dns_server *s)
{
	return s->port;
}

void dns_server_stats(const struct dns_server *s, struct dns_server_stats *out)
{
	*out = s->st;
}

static void conn_close(struct dns_server *s, struct dns_conn *c)
{
	if (c->fd < 0)
		return;
	close(c->fd); /* leaves the epoll set with it */
	c->fd = -1;
}

void dns_server_free(struct dns_server *s)
{
	if (!s)
		return;
	for (unsigned i = 0; s->conns && i < s->cfg.max_tcp; i++)
		conn_close(s, &s->conns[i]);
	free(s->conns);
	if (s->ep >= 0)
		close(s->ep);
	if (s->udp >= 0)
		close(s->udp);
	if (s->tcp >= 0)
		close(s->tcp);
	if (s->timer >= 0)
		close(s->timer);
	free(s);
}

/* ---- who may ask ------------------------------------------------------------------- */

static bool v4_allowed(const struct dns_server *s, uint32_t a)
{
	uint32_t mask = s->cfg.allow_prefix ? ~0u << (32 - s->cfg.allow_prefix) : 0;

	if ((a >> 24) == 127)
		return true;
	return s->cfg.allow_prefix && (a & mask) == (s->cfg.allow_net & mask);
}

/* Loopback, or the configured network (the overlay). */
static bool client_allowed(const struct dns_server *s, const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return v4_allowed(s, ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr));
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		uint32_t v4;

		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		if (!IN6_IS_ADDR_V4MAPPED(a))
			return false;
		memcpy(&v4, a->s6_addr + 12, 4);
		return v4_allowed(s, ntohl(v4));
	}
	return false;
}

/* ---- UDP ----------------------------------------------------------------------------- */

/* One datagram, if there is one: 1 handled, 0 none waiting. */
static int udp_one(struct dns_server *s, const struct dns_zone *z, const struct dns_table *t)
{
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(s->udp, s->rx, sizeof(s->rx), MSG_TRUNC | MSG_DONTWAIT, (struct sockaddr *)&from,
			     &fl);
	int len;

	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1; /* e.g. an ICMP error: go on */
	if (!client_allowed(s, &from)) {
		s->st.ignored++;
		return 1;
	}
	/* A datagram longer than rx is seen as DNS_QUERY_MAX + 1 bytes: FORMERR. */
	len = dns_answer(z, t, s->rx, (size_t)n < sizeof(s->rx) ? (size_t)n : sizeof(s->rx), false, s->tx,
			 sizeof(s->tx));
	if (len <= 0) {
		s->st.dropped++;
		return 1;
	}
	if (sendto(s->udp, s->tx, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&from, fl) !=
	    len) {
		s->st.dropped++;
		return 1;
	}
	s->st.queries++;
	s->st.formerr += (s->tx[3] & 0xf) == DNS_RCODE_FORMERR;
	return 1;
}

/* ---- TCP ----------------------------------------------------------------------------- */

static struct dns_conn *slot_take(struct dns_server *s)
{
	struct dns_conn *oldest = NULL;

	for (unsigned i = 0; i < s->cfg.max_tcp; i++) {
		struct dns_conn *c = &s->conns[i];

		if (c->fd < 0)
			return c;
		if (!oldest || c->born < oldest->born)
			oldest = c;
	}
	conn_close(s, oldest);
	s->st.tcp_evicted++;
	return oldest;
}

/* One waiting connection: 1 handled, 0 none waiting. */
static int tcp_accept_one(struct dns_server *s, uint64_t now)
{
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	int fd = accept4(s->tcp, (struct sockaddr *)&from, &fl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct dns_conn *c;

	if (fd < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
	if (!client_allowed(s, &from)) {
		s->st.ignored++;
		close(fd);
		return 1;
	}
	c = slot_take(s);
	c->fd = fd;
	c->born = now;
	c->deadline = now + s->cfg.tcp_timeout_ms;
	c->in_len = c->out_len = c->out_off = 0;
	if (watch(s->ep, fd, EPOLLIN, TAG_CONN + (uint64_t)(c - s->conns), EPOLL_CTL_ADD) < 0)
		conn_close(s, c);
	return 1;
}

/* Send what is queued; wait for the socket (EPOLLOUT) when it does not take it all. */
static void conn_flush(struct dns_server *s, struct dns_conn *c)
{
	uint64_t tag = TAG_CONN + (uint64_t)(c - s->conns);

	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (watch(s->ep, c->fd, EPOLLOUT, tag, EPOLL_CTL_MOD) < 0)
				conn_close(s, c);
			return;
		}
		if (w <= 0) {
			conn_close(s, c);
			return;
		}
		c->out_off += (size_t)w;
	}
	c->out_len = c->out_off = 0;
	if (watch(s->ep, c->fd, EPOLLIN, tag, EPOLL_CTL_MOD) < 0)
		conn_close(s, c);
}

/* A whole frame is in c->in: its reply queued, or the connection closed. */
static void conn_answer(struct dns_server *s, struct dns_conn *c, const struct dns_zone *z,
			const struct dns_table *t)
{
	int len = dns_answer(z, t, c->in + 2, c->in_len - 2, true, c->out + 2, sizeof(c->out) - 2);

	c->in_len = 0;
	if (len <= 0) {
		s->st.dropped++;
		conn_close(s, c);
		return;
	}
	dns_tcp_frame_put(c->out, (size_t)len);
	c->out_len = 2 + (size_t)len;
	s->st.queries++;
	s->st.formerr += (c->out[5] & 0xf) == DNS_RCODE_FORMERR;
	conn_flush(s, c);
}

/* Read towards the next frame: its 2-byte length first, then exactly that much. */
static void conn_read(struct dns_server *s, struct dns_conn *c, const struct dns_zone *z,
		      const struct dns_table *t)
{
	int flen = dns_tcp_frame_len(c->in, c->in_len);
	size_t want = flen > 0 ? 2 + (size_t)flen : 2;
	ssize_t n = recv(c->fd, c->in + c->in_len, want - c->in_len, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(s, c);
		return;
	}
	c->in_len += (size_t)n;
	flen = dns_tcp_frame_len(c->in, c->in_len);
	if (flen < 0) { /* never read into: the connection goes */
		s->st.dropped++;
		conn_close(s, c);
	} else if (flen && c->in_len == 2 + (size_t)flen) {
		conn_answer(s, c, z, t);
	}
}

static void conn_event(struct dns_server *s, struct dns_conn *c, uint32_t events, const struct dns_zone *z,
		       const struct dns_table *t)
{
	if (c->fd < 0)
		return;
	if (c->out_len) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			conn_flush(s, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_read(s, c, z, t);
}

/* Close the connections past their deadline; arm the timer for the next one. */
static void deadlines(struct dns_server *s, uint64_t now)
{
	struct itimerspec its = { 0 };
	uint64_t next = 0;
	uint64_t expirations;

	(void)!read(s->timer, &expirations, sizeof(expirations));
	for (unsigned i = 0; i < s->cfg.max_tcp; i++) {
		struct dns_conn *c = &s->conns[i];

		if (c->fd < 0)
			continue;
		if (c->deadline <= now) {
			conn_close(s, c);
			s->st.tcp_evicted++;
		} else if (!next || c->deadline < next) {
			next = c->deadline;
		}
	}
	if (next) {
		its.it_value.tv_sec = (time_t)((next - now) / 1000);
		its.it_value.tv_nsec = (long)((next - now) % 1000) * 1000000L;
	}
	(void)timerfd_settime(s->timer, 0, &its, NULL);
}

/* ---- serving --------------------------------------------------------------------------- */

int dns_server_serve(struct dns_server *s, const struct dns_zone *z, const struct dns_table *t)
{
	struct epoll_event ev[32];
	unsigned done = 0;
	uint64_t now = now_ms();
	int n = epoll_wait(s->ep, ev, (int)ARRAY_SIZE(ev), 0);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n && done < s->cfg.budget; i++) {
		uint64_t tag = ev[i].data.u64;

		if (tag == TAG_UDP) {
			while (done < s->cfg.budget && udp_one(s, z, t))
				done++;
		} else if (tag == TAG_TCP) {
			while (done < s->cfg.budget && tcp_accept_one(s, now))
				done++;
		} else if (tag >= TAG_CONN && tag - TAG_CONN < s->cfg.max_tcp) {
			conn_event(s, &s->conns[tag - TAG_CONN], ev[i].events, z, t);
			done++;
		}
	}
	deadlines(s, now);
	return (int)done;
}
