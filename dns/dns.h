/* SPDX-License-Identifier: MIT */
/*
 * dns: a tiny authoritative DNS responder for the mesh's peer names (RFC 1035, RFC 2308
 * negative answers, RFC 6891 EDNS tolerated, RFC 7766 TCP framing).
 *
 * One zone (default p2p.internal) and a name table the caller fills: a token and an
 * optional label per IPv4 address. `<token>.<zone>` and `<label>.<zone>` (ASCII case
 * ignored) have A records; any other type of such a name is NODATA; any other name in
 * the zone is NXDOMAIN with the zone's SOA in the authority section (so resolvers cache
 * the negative for the SOA's minimum); a name outside the zone is REFUSED. No recursion
 * (RA clear). A query whose header is readable but whose rest is malformed gets FORMERR;
 * shorter input, and anything with the QR bit set, gets nothing.
 *
 * dns_answer (message.c) is pure: bytes in, bytes out, no I/O. The server (server.c)
 * owns UDP and TCP sockets behind one pollable fd and serves what is ready, within a
 * budget, only to clients of the configured network and loopback. Every fallible function
 * returns 0 (or a length) or a negative errno.
 */
#ifndef DSTACK_P2P_DNS_H
#define DSTACK_P2P_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

#define DNS_ZONE_DEFAULT "p2p.internal"
#define DNS_NAME_MAX 255        /* a name in wire form, the root label included */
#define DNS_QUERY_MAX 512       /* longer queries get FORMERR (UDP) or a closed connection (TCP) */
#define DNS_UDP_REPLY_MAX 512   /* without EDNS (RFC 1035 4.2.1) */
#define DNS_EDNS_REPLY_MAX 1232 /* what we accept to send with EDNS, whatever the client offers */
#define DNS_REPLY_MAX 4608      /* the largest reply we build: 256 A records, a long question */
#define DNS_TABLE_MAX 256
#define DNS_LABEL_TEXT_MAX 64 /* the contract's MAX_LABEL_LENGTH */
#define DNS_TTL_DEFAULT 5     /* seconds: answers follow the registry within a poll or two */

enum dns_rcode {
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_FORMERR = 1,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_NOTIMP = 4,
	DNS_RCODE_REFUSED = 5,
};

enum {
	DNS_TYPE_A = 1,
	DNS_TYPE_NS = 2,
	DNS_TYPE_SOA = 6,
	DNS_TYPE_AAAA = 28,
	DNS_TYPE_OPT = 41,
	DNS_TYPE_ANY = 255
};
enum { DNS_CLASS_IN = 1, DNS_CLASS_ANY = 255 };

/* The zone we answer for, parsed once. */
struct dns_zone {
	uint8_t wire[DNS_NAME_MAX]; /* lower case, ends with the root label */
	size_t wire_len;
	char text[DNS_NAME_MAX]; /* "p2p.internal" */
	uint32_t ttl;            /* of every record, and the SOA minimum (negative TTL) */
	uint32_t serial;         /* the SOA serial: the caller's generation of the table */
};

/*
 * The zone from its text ("p2p.internal", a trailing dot allowed): letters, digits and
 * hyphens, labels of 1 to 63, at most 253 characters; case is ignored. ttl 0 means
 * DNS_TTL_DEFAULT. 0, or -EINVAL with why naming what is wrong.
 */
int dns_zone_set(struct dns_zone *z, const char *text, uint32_t ttl, struct err_detail *why);

/* A name: a token's overlay address, by token and (when the label is not empty) by label. */
struct dns_entry {
	uint32_t token;
	uint32_t addr;                      /* IPv4, network byte order */
	char label[DNS_LABEL_TEXT_MAX + 1]; /* "" when the token has none */
};

/* The names the server answers; the caller rebuilds it when the registry changes. */
struct dns_table {
	struct dns_entry e[DNS_TABLE_MAX];
	size_t n;
};

void dns_table_reset(struct dns_table *t);
/*
 * Add token (1 or more) at addr (network byte order) with label (NULL or "" for none).
 * 0, -ENOSPC (DNS_TABLE_MAX entries), -EINVAL (token 0), -ENAMETOOLONG (a label longer
 * than DNS_LABEL_TEXT_MAX). A label holding bytes a name cannot match is kept but never
 * answered; two tokens with one label both answer it.
 */
int dns_table_add(struct dns_table *t, uint32_t token, uint32_t addr, const char *label);

/*
 * The reply to the query msg[0..len) into out[cap] (cap at least DNS_REPLY_MAX). Over UDP
 * (tcp false) a reply is at most DNS_UDP_REPLY_MAX bytes, or with EDNS the smaller of the
 * client's size and DNS_EDNS_REPLY_MAX; answers that do not fit are left out and TC is
 * set (the client asks again over TCP, where all fit). Returns the reply's length, 0 when
 * no reply is due (shorter than a header, or a response), or -ENOBUFS (cap too small).
 */
int dns_answer(const struct dns_zone *z, const struct dns_table *t, const uint8_t *msg, size_t len, bool tcp,
	       uint8_t *out, size_t cap);

/*
 * TCP framing (RFC 7766: a 2-byte big-endian length, then the message). The length of the
 * message whose frame starts at p[0..n): 0 while the 2 bytes are not all there, -EMSGSIZE
 * for an empty message or one over DNS_QUERY_MAX (the connection is then closed: we never
 * read a query we would not answer).
 */
int dns_tcp_frame_len(const uint8_t *p, size_t n);
/* The 2-byte length of a len-byte message (len <= 65535) into out. */
void dns_tcp_frame_put(uint8_t out[static 2], size_t len);

/* ---- the server (server.c) ----------------------------------------------------------- */

struct dns_server_config {
	const char *listen;      /* "10.0.1.3:53", "127.0.0.1:5353" (numeric; IPv4 or [IPv6]) */
	uint32_t allow_net;      /* clients besides loopback: allow_net/allow_prefix (host order) */
	unsigned allow_prefix;   /* 0..32; e.g. 10.0.1.0/24, the overlay */
	unsigned budget;         /* queries and connection events per dns_server_serve; 0: 64 */
	unsigned max_tcp;        /* TCP connections at once (the oldest is closed for a new one); 0: 16 */
	unsigned tcp_timeout_ms; /* a TCP connection's whole life; 0: 5000 */
	bool freebind;           /* bind before the address is on an interface (IP_FREEBIND) */
};

struct dns_server_stats {
	uint64_t queries;     /* replies sent (UDP) or queued (TCP) */
	uint64_t formerr;     /* of those, FORMERR */
	uint64_t ignored;     /* datagrams and connections from clients not allowed */
	uint64_t dropped;     /* no reply due, a UDP reply the socket did not take, a bad TCP frame */
	uint64_t tcp_evicted; /* connections closed for a newer one, or at their deadline */
};

struct dns_server;

/*
 * Bind UDP and TCP on cfg->listen (SO_REUSEADDR; non-blocking, close-on-exec). 0, or
 * -EINVAL (listen does not parse), -errno of socket/bind/listen/epoll/timerfd; why says
 * which.
 */
int dns_server_open(struct dns_server **out, const struct dns_server_config *cfg, struct err_detail *why);
/* Readable when there is work for dns_server_serve: a query, a connection, a deadline. */
int dns_server_fd(const struct dns_server *s);
/*
 * Serve what is ready without blocking, at most cfg->budget events (what is left keeps the
 * fd readable), answering from z and t. Returns the number of events handled, or -errno
 * of epoll_wait.
 */
int dns_server_serve(struct dns_server *s, const struct dns_zone *z, const struct dns_table *t);
void dns_server_stats(const struct dns_server *s, struct dns_server_stats *out);
/* The bound port (for a listen address with port 0). */
uint16_t dns_server_port(const struct dns_server *s);
/* Closes every socket; accepts NULL. */
void dns_server_free(struct dns_server *s);

#endif
