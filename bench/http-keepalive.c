/* SPDX-License-Identifier: MIT */
/*
 * Benchmark of net/http.c: CPU per https JSON-RPC request (an idle poll's batch) with a
 * kept connection and with a fresh connection per request, against a local TLS server.
 * Usage: http-keepalive URL CA_FILE REQUESTS
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/common.h"
#include "net/net.h"

/* What the agent's reader sends on an idle poll (docs/chain.md). */
static const char poll_batch[] =
	"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getBlockByNumber\",\"params\":[\"latest\",false]},"
	"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"eth_getBlockByNumber\",\"params\":[\"0x1\",false]},"
	"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"eth_getLogs\",\"params\":[{\"fromBlock\":\"0x1\","
	"\"toBlock\":\"latest\",\"address\":\"0x5fbdb2315678afecb367f032d93f642f64180aa3\"}]}]";

static double cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* CPU ms per request over n requests, kept or fresh; exits on any failed request. */
static double run(const char *url, const char *ca, unsigned n, bool kept)
{
	struct http_target t = { .base_url = url, .ca_file = ca, .timeout_ms = 10000 };
	struct http_conn *conn = NULL;
	double start;

	if (kept && http_conn_new(&conn) < 0)
		exit(1);
	t.conn = conn;
	start = cpu_ms();
	for (unsigned i = 0; i < n; i++) {
		struct http_reply reply;
		int r = http_post(&t, "/", NULL, poll_batch, strlen(poll_batch), &reply);

		if (r < 0 || reply.status != 200) {
			fprintf(stderr, "http-keepalive: %s: %s (HTTP %ld)\n", url,
				reply.error[0] ? reply.error : errstr(r), reply.status);
			exit(1);
		}
		http_reply_clear(&reply);
	}
	http_conn_free(conn);
	return (cpu_ms() - start) / n;
}

int main(int argc, char **argv)
{
	unsigned n;
	double kept, fresh;

	if (argc != 4 || !(n = (unsigned)strtoul(argv[3], NULL, 10))) {
		fprintf(stderr, "usage: http-keepalive URL CA_FILE REQUESTS\n");
		return 2;
	}
	if (http_global_init() < 0)
		return 1;
	run(argv[1], argv[2], 2, true);  /* warm up: libraries paged in */
	kept = run(argv[1], argv[2], n, true);
	fresh = run(argv[1], argv[2], n, false);
	printf("https poll request, client CPU: kept connection %.3f ms, fresh connection %.3f ms "
	       "(%.0fx; %u requests each)\n", kept, fresh, kept > 0 ? fresh / kept : 0.0, n);
	printf("  at a 1 s poll: %.2f %% of a core kept, %.2f %% fresh\n", kept / 10, fresh / 10);
	return 0;
}
