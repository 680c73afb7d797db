/* SPDX-License-Identifier: MIT */
/* dns: a reply read back, strictly, for the tests and the fuzz target (dns/internal.h). */
#include <errno.h>
#include <string.h>

#include "dns/internal.h"

/* A possibly compressed name at msg[*off]: dotted into text (may be NULL); *off past it. */
static int name_read(const uint8_t *msg, size_t len, size_t *off, char *text)
{
	size_t o = *off, end = 0, total = 0, w = 0, floor = *off;
	int hops = 0;

	for (;;) {
		uint8_t l;

		if (o >= len)
			return -EBADMSG;
		l = msg[o];
		if ((l & 0xc0) == 0xc0) {
			size_t to;

			if (o + 1 >= len || ++hops > 32)
				return -EBADMSG;
			to = (size_t)(l & 0x3f) << 8 | msg[o + 1];
			if (to >= floor) /* backward only: no loops */
				return -EBADMSG;
			if (!end)
				end = o + 2;
			floor = to;
			o = to;
			continue;
		}
		if (l & 0xc0 || o + 1 + l > len || (total += 1 + (size_t)l) > DNS_NAME_MAX)
			return -EBADMSG;
		if (!l)
			break;
		if (text) {
			if (w)
				text[w++] = '.';
			memcpy(text + w, msg + o + 1, l);
			w += l;
		}
		o += 1 + (size_t)l;
	}
	if (text)
		text[w] = '\0';
	*off = end ? end : o + 1;
	return 0;
}

static int record_read(const uint8_t *msg, size_t len, size_t *off, int section, struct dns_reply_view *v)
{
	size_t o = *off, rd;
	uint16_t type, rdlen;

	if (name_read(msg, len, &o, NULL) < 0 || len - o < 10)
		return -EBADMSG;
	type = dns_get16(msg + o);
	rdlen = dns_get16(msg + o + 8);
	rd = o + 10;
	if (len - rd < rdlen)
		return -EBADMSG;
	if (type == DNS_TYPE_A) {
		if (rdlen != 4 || v->n_a >= DNS_TABLE_MAX)
			return -EBADMSG;
		if (section == 1)
			memcpy(&v->a[v->n_a++], msg + rd, 4);
	} else if (type == DNS_TYPE_SOA) {
		size_t p = rd;

		if (name_read(msg, rd + rdlen, &p, NULL) < 0 || name_read(msg, rd + rdlen, &p, NULL) < 0 ||
		    p + 20 != rd + rdlen)
			return -EBADMSG;
		v->soa |= section == 2;
	} else if (type == DNS_TYPE_OPT) {
		if (section != 3 || v->opt)
			return -EBADMSG;
		v->opt = true;
		v->rcode |= (unsigned)msg[o + 4] << 4;
	}
	*off = rd + rdlen;
	return 0;
}

int dns_reply_parse(const uint8_t *msg, size_t len, struct dns_reply_view *v)
{
	size_t off = 12;
	unsigned i;

	memset(v, 0, sizeof(*v));
	if (len < 12)
		return -EBADMSG;
	v->id = dns_get16(msg);
	v->flags = dns_get16(msg + 2);
	v->rcode = v->flags & 0xf;
	v->qd = dns_get16(msg + 4);
	v->an = dns_get16(msg + 6);
	v->ns = dns_get16(msg + 8);
	v->ar = dns_get16(msg + 10);
	if (v->qd > 1)
		return -EBADMSG;
	if (v->qd) {
		if (name_read(msg, len, &off, v->qname) < 0 || len - off < 4)
			return -EBADMSG;
		v->qtype = dns_get16(msg + off);
		off += 4;
	}
	for (i = 0; i < (unsigned)v->an + v->ns + v->ar; i++) {
		int section = i < v->an ? 1 : i < (unsigned)v->an + v->ns ? 2 : 3;

		if (record_read(msg, len, &off, section, v) < 0)
			return -EBADMSG;
	}
	return off == len ? 0 : -EBADMSG;
}
