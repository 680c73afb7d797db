/* SPDX-License-Identifier: MIT */
/* dns: what only its tests, fuzz target and tools use: the parsed query, and a reply reader. */
#ifndef DSTACK_P2P_DNS_INTERNAL_H
#define DSTACK_P2P_DNS_INTERNAL_H

#include "dns/dns.h"

/* A big-endian 16-bit field of a message. */
static inline uint16_t dns_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

struct dns_query {
	uint16_t id;
	uint16_t flags;
	uint8_t name[DNS_NAME_MAX]; /* wire form, lower case */
	size_t name_len;
	uint16_t qtype, qclass;
	size_t question_len; /* the name as sent, type and class */
	bool edns;
	uint16_t edns_size;
	uint8_t edns_version;
};

/*
 * One query: 0; -ENODATA (shorter than a header, or QR set: no reply); -EOPNOTSUPP (an
 * opcode other than QUERY); -EBADMSG (anything else malformed: not one question, answer
 * or authority records, a compression pointer or a bad name, a record past the end, two
 * OPTs, trailing bytes, longer than DNS_QUERY_MAX).
 */
int dns_query_parse(const uint8_t *msg, size_t len, struct dns_query *q);

/* A reply, read back (tests, the fuzz target): what its sections hold. */
struct dns_reply_view {
	uint16_t id;
	uint16_t flags;
	unsigned rcode; /* with the OPT's upper bits */
	uint16_t qd, an, ns, ar;
	char qname[DNS_NAME_MAX]; /* the question's name, dotted ("" for the root) */
	uint16_t qtype;
	uint32_t a[DNS_TABLE_MAX]; /* the A records' addresses (network order) */
	size_t n_a;
	bool soa; /* an SOA in the authority section */
	bool opt;
};

/*
 * Walk a whole reply: names with backward compression pointers only (at most 32 hops, 255
 * bytes), every record inside the message, A records of 4 bytes, SOA rdata exactly two
 * names and 20 bytes, nothing after the last record. 0 or -EBADMSG.
 */
int dns_reply_parse(const uint8_t *msg, size_t len, struct dns_reply_view *v);

#endif
