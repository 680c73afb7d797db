/* SPDX-License-Identifier: MIT */
/*
 * dns-serve: the dns/ server on a name table from the command line, for the host test
 * (tests/host/test-dns.sh) and for measuring it; the agent serves the same from its
 * registry (P2P_DNS=on).
 *
 *   dns-serve [-a NET/PREFIX] [-b BUDGET] [-z ZONE] LISTEN TOKEN=ADDR[=LABEL]...
 *
 * Prints "ready PORT" once both sockets are bound; on SIGTERM or SIGINT prints its counters
 * to stderr and exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "dns/dns.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: dns-serve [-a NET/PREFIX] [-b BUDGET] [-z ZONE] LISTEN TOKEN=ADDR[=LABEL]...\n");
	return 2;
}

static int parse_allow(const char *s, struct dns_server_config *cfg)
{
	char net[32];
	const char *slash = strchr(s, '/');
	struct in_addr a;

	if (!slash || (size_t)(slash - s) >= sizeof(net))
		return -EINVAL;
	memcpy(net, s, (size_t)(slash - s));
	net[slash - s] = '\0';
	if (inet_pton(AF_INET, net, &a) != 1)
		return -EINVAL;
	cfg->allow_net = ntohl(a.s_addr);
	cfg->allow_prefix = (unsigned)atoi(slash + 1);
	return cfg->allow_prefix <= 32 ? 0 : -EINVAL;
}

/* TOKEN=ADDR[=LABEL] */
static int parse_entry(char *s, struct dns_table *t)
{
	char *addr = strchr(s, '='), *label;
	struct in_addr a;

	if (!addr)
		return -EINVAL;
	*addr++ = '\0';
	label = strchr(addr, '=');
	if (label)
		*label++ = '\0';
	if (inet_pton(AF_INET, addr, &a) != 1)
		return -EINVAL;
	return dns_table_add(t, (uint32_t)strtoul(s, NULL, 10), a.s_addr, label);
}

int main(int argc, char **argv)
{
	static struct dns_table table;
	struct dns_server_config cfg = { 0 };
	struct dns_server_stats st;
	struct err_detail why = { "" };
	const char *zone_text = DNS_ZONE_DEFAULT;
	struct dns_server *srv;
	struct dns_zone zone;
	int opt, r;

	while ((opt = getopt(argc, argv, "a:b:z:")) != -1) {
		if (opt == 'a' && parse_allow(optarg, &cfg) == 0)
			continue;
		if (opt == 'b')
			cfg.budget = (unsigned)atoi(optarg);
		else if (opt == 'z')
			zone_text = optarg;
		else
			return usage();
	}
	if (optind >= argc)
		return usage();
	cfg.listen = argv[optind++];
	if (dns_zone_set(&zone, zone_text, 0, &why) < 0) {
		fprintf(stderr, "dns-serve: %s\n", why.text);
		return 2;
	}
	for (; optind < argc; optind++) {
		if (parse_entry(argv[optind], &table) < 0) {
			fprintf(stderr, "dns-serve: bad entry '%s' (TOKEN=ADDR[=LABEL])\n", argv[optind]);
			return 2;
		}
	}
	r = dns_server_open(&srv, &cfg, &why);
	if (r < 0) {
		fprintf(stderr, "dns-serve: %s\n", err_detail_str(&why, r));
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("ready %u\n", dns_server_port(srv));
	fflush(stdout);
	while (!stop) {
		struct pollfd p = { .fd = dns_server_fd(srv), .events = POLLIN };

		if (poll(&p, 1, 1000) > 0 && dns_server_serve(srv, &zone, &table) < 0)
			break;
	}
	dns_server_stats(srv, &st);
	fprintf(stderr, "queries %llu formerr %llu ignored %llu dropped %llu tcp_evicted %llu\n",
		(unsigned long long)st.queries, (unsigned long long)st.formerr,
		(unsigned long long)st.ignored, (unsigned long long)st.dropped,
		(unsigned long long)st.tcp_evicted);
	dns_server_free(srv);
	return 0;
}
