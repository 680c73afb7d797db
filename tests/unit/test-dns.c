/* SPDX-License-Identifier: MIT */
/* Unit tests of dns/: the zone, the table, every kind of answer, malformed queries, the server on loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common/common.h"
#include "dns/dns.h"
#include "dns/internal.h"

static struct dns_zone zone;
static struct dns_table table;

static uint32_t ip(const char *s)
{
	struct in_addr a;

	cr_assert_eq(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static void setup(void)
{
	cr_assert_eq(dns_zone_set(&zone, "p2p.internal", 0, NULL), 0);
	zone.serial = 42;
	dns_table_reset(&table);
	cr_assert_eq(dns_table_add(&table, 1, ip("10.0.1.1"), "node-1"), 0);
	cr_assert_eq(dns_table_add(&table, 2, ip("10.0.1.2"), "Web.Front"), 0);
	cr_assert_eq(dns_table_add(&table, 3, ip("10.0.1.3"), "7"), 0);
	cr_assert_eq(dns_table_add(&table, 7, ip("10.0.1.7"), ""), 0);
}

/* A query: header, dotted name in wire form, type, class; an OPT when edns_size. */
static size_t query(uint8_t *q, uint16_t id, uint16_t flags, const char *name, uint16_t type, uint16_t klass,
		    uint16_t edns_size)
{
	size_t n = 12;
	const char *p = name;

	memset(q, 0, 12);
	q[0] = (uint8_t)(id >> 8), q[1] = (uint8_t)id;
	q[2] = (uint8_t)(flags >> 8), q[3] = (uint8_t)flags;
	q[5] = 1;
	q[11] = edns_size ? 1 : 0;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		q[n++] = (uint8_t)l;
		memcpy(q + n, p, l);
		n += l;
		p += l + (dot ? 1 : 0);
	}
	q[n++] = 0;
	q[n++] = (uint8_t)(type >> 8), q[n++] = (uint8_t)type;
	q[n++] = (uint8_t)(klass >> 8), q[n++] = (uint8_t)klass;
	if (edns_size) {
		uint8_t opt[11] = {
			0, 0, 41, (uint8_t)(edns_size >> 8), (uint8_t)edns_size, 0, 0, 0, 0, 0, 0
		};

		memcpy(q + n, opt, 11);
		n += 11;
	}
	return n;
}

/* The reply to q[0..n), read back; returns its length (0: none). */
static int ask(const uint8_t *q, size_t n, bool tcp, struct dns_reply_view *v)
{
	static uint8_t out[DNS_REPLY_MAX];
	int len = dns_answer(&zone, &table, q, n, tcp, out, sizeof(out));

	cr_assert_geq(len, 0);
	if (len)
		cr_assert_eq(dns_reply_parse(out, (size_t)len, v), 0, "reply does not parse");
	return len;
}

static void ask_name(const char *name, uint16_t type, struct dns_reply_view *v)
{
	uint8_t q[600];

	cr_assert_gt(ask(q, query(q, 0x1234, 0x0100, name, type, DNS_CLASS_IN, 0), false, v), 0);
	cr_assert_eq(v->id, 0x1234);
	cr_assert(v->flags & 0x8000, "QR");
	cr_assert_eq(v->flags & 0x0080, 0, "RA must be clear");
	cr_assert(v->flags & 0x0100, "RD copied");
	cr_assert_eq(v->qd, 1);
	cr_assert_str_eq(v->qname, name, "question echoed as asked");
}

TestSuite(dns, .init = setup);

Test(dns, zone_text)
{
	struct err_detail why = { "" };
	struct dns_zone z;

	cr_assert_eq(dns_zone_set(&z, "Mesh.Example.", 30, NULL), 0);
	cr_assert_str_eq(z.text, "mesh.example");
	cr_assert_eq(z.wire_len, 14);
	cr_assert_eq(memcmp(z.wire, "\4mesh\7example\0", 14), 0);
	cr_assert_eq(z.ttl, 30);
	cr_assert_eq(dns_zone_set(&z, "a..b", 0, &why), -EINVAL);
	cr_assert(strstr(why.text, "label of 0"), "%s", why.text);
	cr_assert_eq(dns_zone_set(&z, "a_b.c", 0, &why), -EINVAL);
	cr_assert(strstr(why.text, "'_'"), "%s", why.text);
	cr_assert_eq(dns_zone_set(&z, "", 0, NULL), -EINVAL);
	cr_assert_eq(dns_zone_set(&z, ".", 0, NULL), -EINVAL);
	char long_label[80];
	memset(long_label, 'a', 64);
	strcpy(long_label + 64, ".x");
	cr_assert_eq(dns_zone_set(&z, long_label, 0, NULL), -EINVAL);
}

Test(dns, table_limits)
{
	char label[DNS_LABEL_TEXT_MAX + 2];

	memset(label, 'x', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	cr_assert_eq(dns_table_add(&table, 0, 0, "x"), -EINVAL);
	cr_assert_eq(dns_table_add(&table, 9, 0, label), -ENAMETOOLONG);
	dns_table_reset(&table);
	for (int i = 0; i < DNS_TABLE_MAX; i++)
		cr_assert_eq(dns_table_add(&table, (uint32_t)i + 1, 0, NULL), 0);
	cr_assert_eq(dns_table_add(&table, 999, 0, NULL), -ENOSPC);
}

Test(dns, a_by_label_any_case)
{
	struct dns_reply_view v;

	ask_name("NODE-1.P2P.Internal", DNS_TYPE_A, &v);
	cr_assert_eq(v.rcode, DNS_RCODE_NOERROR);
	cr_assert(v.flags & 0x0400, "AA");
	cr_assert_eq(v.an, 1);
	cr_assert_eq(v.n_a, 1);
	cr_assert_eq(v.a[0], ip("10.0.1.1"));
	ask_name("web.front.p2p.internal", DNS_TYPE_A, &v); /* a label with a dot: two DNS labels */
	cr_assert_eq(v.n_a, 1);
	cr_assert_eq(v.a[0], ip("10.0.1.2"));
}

Test(dns, a_by_token_before_label)
{
	struct dns_reply_view v;

	ask_name("3.p2p.internal", DNS_TYPE_A, &v);
	cr_assert_eq(v.n_a, 1);
	cr_assert_eq(v.a[0], ip("10.0.1.3"));
	ask_name("7.p2p.internal", DNS_TYPE_A, &v); /* token 7, not token 3's label "7" */
	cr_assert_eq(v.n_a, 1);
	cr_assert_eq(v.a[0], ip("10.0.1.7"));
	ask_name("07.p2p.internal", DNS_TYPE_A, &v);
	cr_assert_eq(v.rcode, DNS_RCODE_NXDOMAIN);
	ask_name("node-1.p2p.internal", DNS_TYPE_ANY, &v);
	cr_assert_eq(v.n_a, 1);
}

Test(dns, nodata_for_other_types)
{
	struct dns_reply_view v;

	ask_name("node-1.p2p.internal", DNS_TYPE_AAAA, &v);
	cr_assert_eq(v.rcode, DNS_RCODE_NOERROR);
	cr_assert_eq(v.an, 0);
	cr_assert_eq(v.ns, 1);
	cr_assert(v.soa, "SOA in authority");
	cr_assert(v.flags & 0x0400, "AA");
}

Test(dns, nxdomain_with_soa)
{
	struct dns_reply_view v;

	ask_name("nobody.p2p.internal", DNS_TYPE_A, &v);
	cr_assert_eq(v.rcode, DNS_RCODE_NXDOMAIN);
	cr_assert(v.soa);
	cr_assert(v.flags & 0x0400, "AA");
	ask_name("x.node-1.p2p.internal", DNS_TYPE_A, &v);
	cr_assert_eq(v.rcode, DNS_RCODE_NXDOMAIN);
	ask_name("255.p2p.internal", DNS_TYPE_A, &v);
	cr_assert_eq(v.rcode, DNS_RCODE_NXDOMAIN);
}

Test(dns, empty_non_terminal_is_nodata)
{
	struct dns_reply_view v;

	ask_name("FRONT.p2p.internal", DNS_TYPE_A, &v); /* of the label Web.Front */
	cr_assert_eq(v.rcode, DNS_RCODE_NOERROR);
	cr_assert_eq(v.an, 0);
	cr_assert(v.soa);
	ask_name("ront.p2p.internal", DNS_TYPE_A, &v); /* not on a label boundary */
	cr_assert_eq(v.rcode, DNS_RCODE_NXDOMAIN);
}

Test(dns, apex)
{
	struct dns_reply_view v;

	ask_name("p2p.internal", DNS_TYPE_SOA, &v);
	cr_assert_eq(v.rcode, DNS_RCODE_NOERROR);
	cr_assert_eq(v.an, 1);
	ask_name("p2p.internal", DNS_TYPE_A, &v);
	cr_assert_eq(v.rcode, DNS_RCODE_NOERROR);
	cr_assert_eq(v.an, 0);
	cr_assert(v.soa);
}

Test(dns, refused_outside_the_zone)
{
	struct dns_reply_view v;
	uint8_t q[600];

	ask_name("example.com", DNS_TYPE_A, &v);
	cr_assert_eq(v.rcode, DNS_RCODE_REFUSED);
	cr_assert_eq(v.flags & 0x0400, 0, "not authoritative");
	cr_assert_eq(v.an + v.ns, 0);
	ask_name("node-1.xp2p.internal", DNS_TYPE_A, &v);
	cr_assert_eq(v.rcode, DNS_RCODE_REFUSED);
	ask_name("internal", DNS_TYPE_A, &v);
	cr_assert_eq(v.rcode, DNS_RCODE_REFUSED);
	ask(q, query(q, 1, 0, "version.bind", 16, 3 /* CH */, 0), false, &v);
	cr_assert_eq(v.rcode, DNS_RCODE_REFUSED);
	ask(q, query(q, 1, 0, "node-1.p2p.internal", DNS_TYPE_A, 3, 0), false, &v);
	cr_assert_eq(v.rcode, DNS_RCODE_REFUSED);
}

Test(dns, nothing_for_short_input_or_responses)
{
	struct dns_reply_view v;
	uint8_t q[600];
	size_t n = query(q, 1, 0, "node-1.p2p.internal", DNS_TYPE_A, DNS_CLASS_IN, 0);

	for (size_t i = 0; i < 12; i++)
		cr_assert_eq(ask(q, i, false, &v), 0, "%zu bytes", i);
	q[2] |= 0x80; /* QR: a response */
	cr_assert_eq(ask(q, n, false, &v), 0);
}

static void expect_formerr(const uint8_t *q, size_t n, const char *what)
{
	struct dns_reply_view v;

	cr_assert_eq(ask(q, n, false, &v), 12, "%s", what);
	cr_assert_eq(v.rcode, DNS_RCODE_FORMERR, "%s", what);
	cr_assert_eq(v.qd + v.an + v.ns + v.ar, 0, "%s", what);
}

Test(dns, formerr_for_malformed_queries)
{
	uint8_t q[1200];
	size_t n = query(q, 1, 0, "node-1.p2p.internal", DNS_TYPE_A, DNS_CLASS_IN, 0);

	expect_formerr(q, 12, "header only");
	expect_formerr(q, n - 1, "question cut short");
	expect_formerr(q, n - 5, "name cut short");
	q[5] = 2;
	expect_formerr(q, n, "two questions");
	q[5] = 0;
	expect_formerr(q, n, "no question");
	q[5] = 1, q[7] = 1;
	expect_formerr(q, n, "an answer in a query");
	q[7] = 0;
	q[n] = 0;
	expect_formerr(q, n + 1, "a trailing byte");
	q[11] = 1;
	expect_formerr(q, n, "an additional record announced, none there");
	q[11] = 0;

	/* A compression pointer instead of the name; a label of 64; a name over 255. */
	n = query(q, 1, 0, "a", DNS_TYPE_A, DNS_CLASS_IN, 0);
	q[12] = 0xc0, q[13] = 12;
	expect_formerr(q, n, "a pointer");
	q[12] = 0x40;
	expect_formerr(q, n, "an extended label type");
	char name[400];
	memset(name, 'a', 64);
	strcpy(name + 64, ".p2p.internal");
	expect_formerr(q, query(q, 1, 0, name, DNS_TYPE_A, DNS_CLASS_IN, 0), "a label of 64");
	for (int i = 0; i < 130; i++)
		memcpy(name + 2 * i, "a.", 2);
	strcpy(name + 260, "p2p.internal");
	expect_formerr(q, query(q, 1, 0, name, DNS_TYPE_A, DNS_CLASS_IN, 0), "a name over 255");

	/* Two OPTs; a query over DNS_QUERY_MAX. */
	n = query(q, 1, 0, "node-1.p2p.internal", DNS_TYPE_A, DNS_CLASS_IN, 1232);
	memcpy(q + n, q + n - 11, 11);
	q[11] = 2;
	expect_formerr(q, n + 11, "two OPTs");
	n = query(q, 1, 0, "node-1.p2p.internal", DNS_TYPE_A, DNS_CLASS_IN, 1232);
	q[n - 1] = 200; /* the OPT's rdata: 200 bytes of padding, 500 more of trailing */
	memset(q + n, 0, 700);
	q[11] = 1;
	expect_formerr(q, n + 200 + 500, "a query of 900 bytes");
}

Test(dns, notimp_for_other_opcodes)
{
	struct dns_reply_view v;
	uint8_t q[600];
	size_t n = query(q, 9, 0x2800 /* UPDATE */, "p2p.internal", DNS_TYPE_SOA, DNS_CLASS_IN, 0);

	cr_assert_eq(ask(q, n, false, &v), 12);
	cr_assert_eq(v.rcode, DNS_RCODE_NOTIMP);
	cr_assert_eq((v.flags >> 11) & 0xf, 5, "opcode echoed");
}

Test(dns, edns)
{
	struct dns_reply_view v;
	uint8_t q[600];
	size_t n = query(q, 1, 0, "node-1.p2p.internal", DNS_TYPE_A, DNS_CLASS_IN, 4096);

	ask(q, n, false, &v);
	cr_assert(v.opt, "OPT echoed");
	cr_assert_eq(v.ar, 1);
	cr_assert_eq(v.n_a, 1);
	q[n - 11 + 6] = 1; /* EDNS version 1 */
	ask(q, n, false, &v);
	cr_assert_eq(v.rcode, 16, "BADVERS");
	cr_assert_eq(v.an, 0);
	/* An OPT with options (a cookie) is taken as well. */
	n = query(q, 1, 0, "node-1.p2p.internal", DNS_TYPE_A, DNS_CLASS_IN, 1232);
	q[n - 1] = 12;
	memcpy(q + n,
	       "\0\x0a\0\x08"
	       "abcdefgh",
	       12);
	ask(q, n + 12, false, &v);
	cr_assert_eq(v.rcode, 0);
	cr_assert_eq(v.n_a, 1);
}

Test(dns, truncated_over_udp_whole_over_tcp)
{
	struct dns_reply_view v;
	uint8_t q[600];
	size_t n = query(q, 1, 0, "many.p2p.internal", DNS_TYPE_A, DNS_CLASS_IN, 0);

	dns_table_reset(&table);
	for (uint32_t i = 1; i <= DNS_TABLE_MAX; i++)
		cr_assert_eq(dns_table_add(&table, i, htonl(0x0a000100 + i), "many"), 0);
	cr_assert_leq(ask(q, n, false, &v), DNS_UDP_REPLY_MAX);
	cr_assert(v.flags & 0x0200, "TC");
	cr_assert_lt(v.n_a, DNS_TABLE_MAX);
	cr_assert_gt(v.n_a, 20);
	ask(q, query(q, 1, 0, "many.p2p.internal", DNS_TYPE_A, DNS_CLASS_IN, 1232), false, &v);
	cr_assert(v.flags & 0x0200, "TC");
	cr_assert(v.opt, "OPT kept when truncated");
	ask(q, query(q, 1, 0, "many.p2p.internal", DNS_TYPE_A, DNS_CLASS_IN, 0), true, &v);
	cr_assert_eq(v.flags & 0x0200, 0);
	cr_assert_eq(v.n_a, DNS_TABLE_MAX, "%zu of %u", v.n_a, v.an);
}

Test(dns, answer_needs_a_whole_buffer)
{
	uint8_t q[600], out[100];
	size_t n = query(q, 1, 0, "node-1.p2p.internal", DNS_TYPE_A, DNS_CLASS_IN, 0);

	cr_assert_eq(dns_answer(&zone, &table, q, n, false, out, sizeof(out)), -ENOBUFS);
}

/* ---- the server on loopback ---------------------------------------------------------- */

static struct dns_server *srv;

static void serve_until(bool (*done)(void *), void *ctx)
{
	for (int i = 0; i < 200 && !done(ctx); i++) {
		struct pollfd p = { .fd = dns_server_fd(srv), .events = POLLIN };

		if (poll(&p, 1, 10) > 0)
			cr_assert_geq(dns_server_serve(srv, &zone, &table), 0);
	}
}

static bool readable(void *ctx)
{
	struct pollfd p = { .fd = *(int *)ctx, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

static struct sockaddr_in server_addr(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(dns_server_port(srv)) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static void server_open(unsigned budget, unsigned max_tcp, unsigned timeout_ms)
{
	struct dns_server_config cfg = { .listen = "127.0.0.1:0",
					 .allow_net = 0x0a000100,
					 .allow_prefix = 24,
					 .budget = budget,
					 .max_tcp = max_tcp,
					 .tcp_timeout_ms = timeout_ms };
	struct err_detail why = { "" };

	cr_assert_eq(dns_server_open(&srv, &cfg, &why), 0, "%s", why.text);
	cr_assert_gt(dns_server_port(srv), 0);
}

static int tcp_connect(void)
{
	struct sockaddr_in a = server_addr();
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

Test(dns, server_udp_and_budget)
{
	struct sockaddr_in a;
	struct dns_reply_view v;
	struct dns_server_stats st;
	uint8_t q[800], r[DNS_REPLY_MAX];
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), got = 0;
	size_t n = query(q, 7, 0, "node-1.p2p.internal", DNS_TYPE_A, DNS_CLASS_IN, 0);

	server_open(8, 0, 0);
	a = server_addr();
	for (int i = 0; i < 20; i++)
		cr_assert_eq(sendto(fd, q, n, 0, (struct sockaddr *)&a, sizeof(a)), (ssize_t)n);
	cr_assert_eq(dns_server_serve(srv, &zone, &table), 8, "one turn serves its budget");
	cr_assert(readable(&(int){ dns_server_fd(srv) }), "the rest keeps the fd readable");
	serve_until(readable, &fd);
	while (recv(fd, r, sizeof(r), MSG_DONTWAIT) > 0)
		got++;
	for (int i = 0; i < 10 && got < 20; i++) {
		serve_until(readable, &fd);
		while (recv(fd, r, sizeof(r), MSG_DONTWAIT) > 0)
			got++;
	}
	cr_assert_eq(got, 20);
	/* Oversized: FORMERR, and the next query is answered. */
	memset(q + n, 0, 700);
	cr_assert_eq(sendto(fd, q, 700, 0, (struct sockaddr *)&a, sizeof(a)), 700);
	serve_until(readable, &fd);
	ssize_t len = recv(fd, r, sizeof(r), 0);
	cr_assert_eq(len, 12);
	cr_assert_eq(r[3] & 0xf, DNS_RCODE_FORMERR);
	cr_assert_eq(sendto(fd, q, n, 0, (struct sockaddr *)&a, sizeof(a)), (ssize_t)n);
	serve_until(readable, &fd);
	len = recv(fd, r, sizeof(r), 0);
	cr_assert_eq(dns_reply_parse(r, (size_t)len, &v), 0);
	cr_assert_eq(v.a[0], ip("10.0.1.1"));
	dns_server_stats(srv, &st);
	cr_assert_eq(st.queries, 22);
	cr_assert_eq(st.formerr, 1);
	close(fd);
	dns_server_free(srv);
}

Test(dns, server_tcp_frames)
{
	struct dns_reply_view v;
	uint8_t q[600], r[2 + DNS_REPLY_MAX];
	int fd;
	size_t n = query(q + 2, 7, 0, "web.front.p2p.internal", DNS_TYPE_A, DNS_CLASS_IN, 0);

	server_open(0, 0, 0);
	fd = tcp_connect();
	q[0] = (uint8_t)(n >> 8), q[1] = (uint8_t)n;
	/* Two queries in one write, the second split: both answered. */
	cr_assert_eq(send(fd, q, n + 2, 0), (ssize_t)n + 2);
	cr_assert_eq(send(fd, q, 5, 0), 5);
	serve_until(readable, &fd);
	cr_assert_eq(send(fd, q + 5, n - 3, 0), (ssize_t)n - 3);
	size_t have = 0;
	for (int i = 0; i < 20 && have < 2 * (size_t)(2 + 54); i++) {
		serve_until(readable, &fd);
		ssize_t k = recv(fd, r + have, sizeof(r) - have, MSG_DONTWAIT);
		if (k > 0)
			have += (size_t)k;
	}
	size_t flen = (size_t)(r[0] << 8 | r[1]);
	cr_assert_eq(have, 2 * (2 + flen));
	cr_assert_eq(dns_reply_parse(r + 2, flen, &v), 0);
	cr_assert_eq(v.a[0], ip("10.0.1.2"));
	/* A frame longer than DNS_QUERY_MAX: the connection is closed. */
	cr_assert_eq(send(fd, "\x10\x00", 2, 0), 2);
	serve_until(readable, &fd);
	cr_assert_eq(recv(fd, r, sizeof(r), 0), 0, "closed");
	close(fd);
	dns_server_free(srv);
}

Test(dns, server_tcp_cap_and_deadline)
{
	struct dns_server_stats st;
	uint8_t b[4];
	int fd[3];

	server_open(0, 2, 200);
	for (int i = 0; i < 3; i++) {
		fd[i] = tcp_connect();
		usleep(2000);
		for (int k = 0; k < 5; k++)
			dns_server_serve(srv, &zone, &table);
	}
	serve_until(readable, &fd[0]);
	cr_assert_eq(recv(fd[0], b, sizeof(b), 0), 0, "the oldest closed for the third");
	cr_assert(!readable(&fd[2]), "the newest still open");
	serve_until(readable, &fd[2]); /* the timer wakes the server at the deadline */
	cr_assert_eq(recv(fd[2], b, sizeof(b), 0), 0, "closed at its deadline");
	dns_server_stats(srv, &st);
	cr_assert_eq(st.tcp_evicted, 3);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
	dns_server_free(srv);
}

Test(dns, server_refuses_a_bad_listen_address)
{
	struct dns_server_config cfg = { .listen = "localhost:53" };
	struct err_detail why = { "" };

	cr_assert_eq(dns_server_open(&srv, &cfg, &why), -EINVAL);
	cr_assert(strstr(why.text, "localhost:53"), "%s", why.text);
	/* An address not (yet) on an interface: refused, unless freebind (the agent's overlay
	 * address before its interface has it). Nothing is sent. */
	cfg.listen = "192.0.2.1:0";
	cr_assert_eq(dns_server_open(&srv, &cfg, &why), -EADDRNOTAVAIL);
	cfg.freebind = true;
	cr_assert_eq(dns_server_open(&srv, &cfg, &why), 0, "%s", why.text);
	dns_server_free(srv);
	cfg.freebind = false;
	cfg.listen = "[::1]:0";
	if (dns_server_open(&srv, &cfg, NULL) == 0) /* where IPv6 is up */
		dns_server_free(srv);
}
