/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for dns/message.c: arbitrary bytes as a query over UDP and over TCP
 * (the first byte picks), and as a TCP stream of frames. Every reply is read back with the
 * strict reader and must be a sane response to that query: QR set, RA clear, the query's
 * id, within the transport's size, its answers from the table only.
 */
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "dns/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dns_zone zone;
static struct dns_table table;

static void init(void)
{
	static const char *labels[] = { "node-1", "Web.Front", "7", "", "many", "many" };

	if (zone.wire_len)
		return;
	if (dns_zone_set(&zone, "p2p.internal", 0, NULL) < 0)
		abort();
	for (uint32_t i = 0; i < 6; i++)
		if (dns_table_add(&table, i + 1, 0x0100000a + (i << 24), labels[i]) < 0)
			abort();
}

static bool from_table(uint32_t a)
{
	for (size_t i = 0; i < table.n; i++)
		if (table.e[i].addr == a)
			return true;
	return false;
}

static void check(const uint8_t *q, size_t n, bool tcp)
{
	static uint8_t out[DNS_REPLY_MAX];
	struct dns_reply_view v;
	int len = dns_answer(&zone, &table, q, n, tcp, out, sizeof(out));

	if (len < 0 || (len == 0 && n >= 12 && !(q[2] & 0x80)))
		abort(); /* a query with a readable header always gets a reply */
	if (!len)
		return;
	if (dns_reply_parse(out, (size_t)len, &v) < 0)
		abort();
	if (!(v.flags & 0x8000) || (v.flags & 0x0080) || v.id != (q[0] << 8 | q[1]))
		abort();
	if (!tcp && len > (v.opt ? DNS_EDNS_REPLY_MAX : DNS_UDP_REPLY_MAX))
		abort();
	if (v.an && (v.qd != 1 || (v.rcode != 0)))
		abort();
	for (size_t i = 0; i < v.n_a; i++)
		if (!from_table(v.a[i]))
			abort();
}

/* The input as a TCP stream: each whole frame answered, a bad length ends it. */
static void stream(const uint8_t *p, size_t n)
{
	while (n) {
		int len = dns_tcp_frame_len(p, n);

		if (len <= 0 || (size_t)len > n - 2)
			return;
		check(p + 2, (size_t)len, true);
		p += 2 + (size_t)len;
		n -= 2 + (size_t)len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 2048)
		return 0;
	init();
	switch (data[0] & 3) {
	case 0:
		check(data + 1, size - 1, false);
		break;
	case 1:
		check(data + 1, size - 1, true);
		break;
	default:
		stream(data + 1, size - 1);
	}
	return 0;
}
