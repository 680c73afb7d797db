/* SPDX-License-Identifier: MIT */
/* dns: the zone, the name table, the query parser and the responder (no I/O). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dns/dns.h"
#include "dns/internal.h"

#define HDR 12
#define FLAG_QR 0x8000u
#define FLAG_AA 0x0400u
#define FLAG_TC 0x0200u
#define FLAG_RD 0x0100u
#define OPT_LEN 11 /* root name, type, class, ttl, rdlength 0 */

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* ---- zone and table ---------------------------------------------------------------- */

static bool hostname_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

int dns_zone_set(struct dns_zone *z, const char *text, uint32_t ttl, struct err_detail *why)
{
	size_t n = strlen(text), i, start = 0, w = 0;

	if (n && text[n - 1] == '.')
		n--;
	if (!n || n > 253) {
		err_detail_set(why, "DNS zone '%s': 1 to 253 characters", text);
		return -EINVAL;
	}
	memset(z, 0, sizeof(*z));
	for (i = 0; i <= n; i++) {
		if (i < n && text[i] != '.') {
			if (!hostname_char(text[i])) {
				err_detail_set(why, "DNS zone '%s': '%c' is not a letter, digit or hyphen",
					       text, text[i]);
				return -EINVAL;
			}
			continue;
		}
		if (i == start || i - start > 63) {
			err_detail_set(why, "DNS zone '%s': a label of %zu characters (1 to 63)", text,
				       i - start);
			return -EINVAL;
		}
		z->wire[w++] = (uint8_t)(i - start);
		for (; start < i; start++)
			z->wire[w++] = lower((uint8_t)text[start]);
		start = i + 1;
	}
	z->wire[w++] = 0;
	z->wire_len = w;
	for (i = 0; i < n; i++)
		z->text[i] = (char)lower((uint8_t)text[i]);
	z->ttl = ttl ? ttl : DNS_TTL_DEFAULT;
	return 0;
}

void dns_table_reset(struct dns_table *t)
{
	t->n = 0;
}

int dns_table_add(struct dns_table *t, uint32_t token, uint32_t addr, const char *label)
{
	struct dns_entry *e;

	if (!token)
		return -EINVAL;
	if (label && strlen(label) > DNS_LABEL_TEXT_MAX)
		return -ENAMETOOLONG;
	if (t->n >= DNS_TABLE_MAX)
		return -ENOSPC;
	e = &t->e[t->n++];
	e->token = token;
	e->addr = addr;
	snprintf(e->label, sizeof(e->label), "%s", label ? label : "");
	return 0;
}

/* ---- the query --------------------------------------------------------------------- */

/*
 * The uncompressed name at msg[*off..len) into lname (lower case) and *lname_len; *off moves
 * past it. -EBADMSG for a pointer, an extended label type, a label past the end or a name
 * over DNS_NAME_MAX.
 */
static int name_parse(const uint8_t *msg, size_t len, size_t *off, uint8_t *lname, size_t *lname_len)
{
	size_t o = *off, w = 0;

	for (;;) {
		uint8_t l;

		if (o >= len)
			return -EBADMSG;
		l = msg[o];
		if (l & 0xc0) /* compression (0xc0) or a label type of RFC 6891's reserved ones */
			return -EBADMSG;
		if (w + 1 + l > DNS_NAME_MAX || o + 1 + l > len)
			return -EBADMSG;
		lname[w++] = l;
		for (size_t i = 0; i < l; i++)
			lname[w++] = lower(msg[o + 1 + i]);
		o += 1 + (size_t)l;
		if (!l)
			break;
	}
	*off = o;
	*lname_len = w;
	return 0;
}

/* The additional section: an OPT record is noted (one at most), others are skipped. */
static int additional_parse(const uint8_t *msg, size_t len, size_t *off, unsigned count, struct dns_query *q)
{
	uint8_t name[DNS_NAME_MAX];
	size_t name_len, o = *off;

	for (unsigned i = 0; i < count; i++) {
		uint16_t type, rdlen;

		if (name_parse(msg, len, &o, name, &name_len) < 0 || len - o < 10)
			return -EBADMSG;
		type = dns_get16(msg + o);
		rdlen = dns_get16(msg + o + 8);
		if (len - o - 10 < rdlen)
			return -EBADMSG;
		if (type == DNS_TYPE_OPT) {
			if (q->edns || name_len != 1)
				return -EBADMSG;
			q->edns = true;
			q->edns_size = dns_get16(msg + o + 2);
			q->edns_version = msg[o + 5];
		}
		o += 10 + (size_t)rdlen;
	}
	*off = o;
	return 0;
}

int dns_query_parse(const uint8_t *msg, size_t len, struct dns_query *q)
{
	size_t off = HDR;

	memset(q, 0, sizeof(*q));
	if (len < HDR)
		return -ENODATA;
	q->id = dns_get16(msg);
	q->flags = dns_get16(msg + 2);
	if (q->flags & FLAG_QR)
		return -ENODATA;
	if (len > DNS_QUERY_MAX)
		return -EBADMSG;
	if ((q->flags >> 11 & 0xf) != 0)
		return -EOPNOTSUPP;
	if (dns_get16(msg + 4) != 1 || dns_get16(msg + 6) || dns_get16(msg + 8))
		return -EBADMSG;
	if (name_parse(msg, len, &off, q->name, &q->name_len) < 0 || len - off < 4)
		return -EBADMSG;
	q->qtype = dns_get16(msg + off);
	q->qclass = dns_get16(msg + off + 2);
	off += 4;
	q->question_len = off - HDR;
	if (additional_parse(msg, len, &off, dns_get16(msg + 10), q) < 0 || off != len)
		return -EBADMSG;
	return 0;
}

/* ---- the reply --------------------------------------------------------------------- */

struct writer {
	uint8_t *p;
	size_t len;
	size_t limit; /* what this reply may hold */
};

static int put(struct writer *w, const void *data, size_t n)
{
	if (n > w->limit - w->len)
		return -ENOBUFS;
	memcpy(w->p + w->len, data, n);
	w->len += n;
	return 0;
}

static int put16(struct writer *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	return put(w, b, 2);
}

static int put32(struct writer *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	return put(w, b, 4);
}

/* A record's owner (a pointer into the question), type, class IN, TTL and rdlength. */
static int put_rr_head(struct writer *w, uint16_t name_off, uint16_t type, uint32_t ttl, uint16_t rdlen)
{
	int r = put16(w, (uint16_t)(0xc000 | name_off));

	if (!r)
		r = put16(w, type);
	if (!r)
		r = put16(w, DNS_CLASS_IN);
	if (!r)
		r = put32(w, ttl);
	if (!r)
		r = put16(w, rdlen);
	return r;
}

static const uint8_t hostmaster[] = { 10, 'h', 'o', 's', 't', 'm', 'a', 's', 't', 'e', 'r' };

/* The zone's SOA, its owner the zone's suffix of the question's name at apex_off. */
static int put_soa_parts(struct writer *w, const struct dns_zone *z, uint16_t apex_off)
{
	int r = put_rr_head(w, apex_off, DNS_TYPE_SOA, z->ttl, 2 + sizeof(hostmaster) + 2 + 20);

	if (!r)
		r = put16(w, (uint16_t)(0xc000 | apex_off)); /* MNAME: the zone itself */
	if (!r)
		r = put(w, hostmaster, sizeof(hostmaster)); /* RNAME: hostmaster.<zone> */
	if (!r)
		r = put16(w, (uint16_t)(0xc000 | apex_off));
	if (!r)
		r = put32(w, z->serial);
	if (!r)
		r = put32(w, 3600); /* refresh */
	if (!r)
		r = put32(w, 600); /* retry */
	if (!r)
		r = put32(w, 86400); /* expire */
	if (!r)
		r = put32(w, z->ttl); /* minimum: the negative TTL */
	return r;
}

/* The SOA whole, or nothing written (-ENOBUFS). */
static int put_soa(struct writer *w, const struct dns_zone *z, uint16_t apex_off)
{
	size_t mark = w->len;
	int r = put_soa_parts(w, z, apex_off);

	if (r < 0)
		w->len = mark;
	return r;
}

/* Where the zone's labels start in the query's name (an offset into it), or -1. */
static int zone_offset(const struct dns_zone *z, const struct dns_query *q)
{
	size_t i = 0;

	while (i < q->name_len) {
		if (q->name_len - i == z->wire_len && !memcmp(q->name + i, z->wire, z->wire_len))
			return (int)i;
		i += 1 + (size_t)q->name[i];
	}
	return -1;
}

/*
 * The labels before the zone, joined with dots, into text (DNS_NAME_MAX bytes): false when
 * a label holds a dot or a NUL (such a name matches no entry).
 */
static bool relative_text(const struct dns_query *q, size_t end, char *text)
{
	size_t i = 0, w = 0;

	while (i < end) {
		uint8_t l = q->name[i];

		if (w)
			text[w++] = '.';
		for (size_t k = 1; k <= l; k++) {
			uint8_t c = q->name[i + k];

			if (c == '.' || !c)
				return false;
			text[w++] = (char)c;
		}
		i += 1 + (size_t)l;
	}
	text[w] = '\0';
	return true;
}

static bool label_eq(const char *label, const char *text)
{
	size_t i;

	for (i = 0; label[i] && text[i]; i++)
		if (lower((uint8_t)label[i]) != (uint8_t)text[i])
			return false;
	return !label[i] && !text[i];
}

/*
 * Which entries the relative name names, as marks in hit[]: a token's number when one
 * matches (a token's name is its identity), else every entry with that label. The count.
 */
static size_t lookup(const struct dns_table *t, const char *text, bool hit[static DNS_TABLE_MAX])
{
	size_t n = 0;
	char num[12];

	memset(hit, 0, DNS_TABLE_MAX * sizeof(bool));
	for (size_t i = 0; i < t->n; i++) {
		snprintf(num, sizeof(num), "%u", t->e[i].token);
		if (!strcmp(num, text)) {
			hit[i] = true;
			n++;
		}
	}
	if (n)
		return n;
	for (size_t i = 0; i < t->n; i++)
		if (t->e[i].label[0] && label_eq(t->e[i].label, text)) {
			hit[i] = true;
			n++;
		}
	return n;
}

/*
 * Whether the relative name is an empty non-terminal: the tail of a dotted label (front
 * of web.front). It exists without data (NODATA, not NXDOMAIN: RFC 8020 lets a resolver
 * take NXDOMAIN as "nothing below", and one that minimises its queries asks it first).
 */
static bool empty_non_terminal(const struct dns_table *t, const char *text)
{
	size_t n = strlen(text);

	for (size_t i = 0; i < t->n; i++) {
		size_t l = strlen(t->e[i].label);

		if (l > n && t->e[i].label[l - n - 1] == '.' && label_eq(t->e[i].label + l - n, text))
			return true;
	}
	return false;
}

/* A records for the entries marked; those that do not fit set TC. The count written. */
static uint16_t put_answers(struct writer *w, const struct dns_zone *z, const struct dns_table *t,
			    const bool hit[static DNS_TABLE_MAX], bool *truncated)
{
	uint16_t n = 0;

	for (size_t i = 0; i < t->n; i++) {
		size_t mark = w->len;

		if (!hit[i])
			continue;
		if (put_rr_head(w, HDR, DNS_TYPE_A, z->ttl, 4) < 0 || put(w, &t->e[i].addr, 4) < 0) {
			w->len = mark;
			*truncated = true;
			break;
		}
		n++;
	}
	return n;
}

struct counts {
	uint16_t an, ns;
	uint16_t flags;
	uint8_t rcode; /* the full (extended) rcode */
};

/* The answer for a query about a name in the zone, whose zone suffix starts at zoff. */
static void answer_in_zone(struct writer *w, const struct dns_zone *z, const struct dns_table *t,
			   const struct dns_query *q, size_t zoff, struct counts *c)
{
	uint16_t apex = (uint16_t)(HDR + zoff);
	bool hit[DNS_TABLE_MAX], truncated = false, named;
	char text[DNS_NAME_MAX];

	c->flags |= FLAG_AA;
	if (!zoff) { /* the apex: its SOA, no other data */
		if (q->qtype == DNS_TYPE_SOA || q->qtype == DNS_TYPE_ANY) {
			c->an += !put_soa(w, z, apex);
			return;
		}
		c->ns += !put_soa(w, z, apex);
		return;
	}
	named = relative_text(q, zoff, text);
	if (!named || !lookup(t, text, hit)) {
		if (!named || !empty_non_terminal(t, text))
			c->rcode = DNS_RCODE_NXDOMAIN;
		c->ns += !put_soa(w, z, apex);
		return;
	}
	if (q->qtype == DNS_TYPE_A || q->qtype == DNS_TYPE_ANY) {
		c->an = put_answers(w, z, t, hit, &truncated);
		if (truncated)
			c->flags |= FLAG_TC;
		return;
	}
	c->ns += !put_soa(w, z, apex); /* NODATA */
}

static void put_header(uint8_t *out, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns,
		       uint16_t ar)
{
	uint16_t v[6] = { id, flags, qd, an, ns, ar };

	for (int i = 0; i < 6; i++) {
		out[2 * i] = (uint8_t)(v[i] >> 8);
		out[2 * i + 1] = (uint8_t)v[i];
	}
}

static size_t reply_limit(const struct dns_query *q, bool tcp, size_t cap)
{
	size_t max = DNS_UDP_REPLY_MAX;

	if (tcp)
		max = 65535;
	else if (q->edns && q->edns_size > max)
		max = q->edns_size < DNS_EDNS_REPLY_MAX ? q->edns_size : DNS_EDNS_REPLY_MAX;
	return max < cap ? max : cap;
}

/* A reply with no question: FORMERR, NOTIMP. */
static int short_reply(const struct dns_query *q, uint8_t rcode, uint8_t *out)
{
	put_header(out, q->id, (uint16_t)(FLAG_QR | (q->flags & 0x7800) | (q->flags & FLAG_RD) | rcode), 0, 0,
		   0, 0);
	return HDR;
}

int dns_answer(const struct dns_zone *z, const struct dns_table *t, const uint8_t *msg, size_t len, bool tcp,
	       uint8_t *out, size_t cap)
{
	struct counts c = { .flags = FLAG_QR };
	struct dns_query q;
	struct writer w;
	int r, zoff;

	if (cap < DNS_REPLY_MAX)
		return -ENOBUFS;
	r = dns_query_parse(msg, len, &q);
	if (r == -ENODATA)
		return 0;
	if (r == -EOPNOTSUPP)
		return short_reply(&q, DNS_RCODE_NOTIMP, out);
	if (r < 0)
		return short_reply(&q, DNS_RCODE_FORMERR, out);

	w = (struct writer){ .p = out,
			     .len = HDR,
			     .limit = reply_limit(&q, tcp, cap) - (q.edns ? OPT_LEN : 0) };
	(void)put(&w, msg + HDR, q.question_len); /* as asked: resolvers check the case they sent */
	c.flags |= q.flags & FLAG_RD;
	zoff = zone_offset(z, &q);
	if (q.edns && q.edns_version != 0)
		c.rcode = 16; /* BADVERS */
	else if ((q.qclass != DNS_CLASS_IN && q.qclass != DNS_CLASS_ANY) || zoff < 0)
		c.rcode = DNS_RCODE_REFUSED;
	else
		answer_in_zone(&w, z, t, &q, (size_t)zoff, &c);

	if (q.edns) { /* our OPT: the size we take, the upper bits of the rcode */
		w.limit += OPT_LEN;
		(void)put(&w, (const uint8_t[]){ 0, 0, DNS_TYPE_OPT }, 3);
		(void)put16(&w, DNS_EDNS_REPLY_MAX);
		(void)put32(&w, (uint32_t)(c.rcode >> 4) << 24);
		(void)put16(&w, 0);
	}
	put_header(out, q.id, (uint16_t)(c.flags | (c.rcode & 0xf)), 1, c.an, c.ns, q.edns);
	return (int)w.len;
}

/* ---- TCP framing ---------------------------------------------------------------------- */

int dns_tcp_frame_len(const uint8_t *p, size_t n)
{
	size_t len;

	if (n < 2)
		return 0;
	len = dns_get16(p);
	return !len || len > DNS_QUERY_MAX ? -EMSGSIZE : (int)len;
}

void dns_tcp_frame_put(uint8_t out[static 2], size_t len)
{
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
}
