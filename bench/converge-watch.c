/* SPDX-License-Identifier: MIT */
/*
 * For bench/push.sh: when does each node's WireGuard device hold a change, against when
 * its block became available? Follows anvil's new heads (eth_subscribe over ws://) and
 * asks each node's wireguard-go for its peers the way `wg show dump` does (UAPI get=1 on
 * /var/run/wireguard/<if>.sock; spawning wg per sample is too coarse at 16 nodes), in
 * rounds about 2 ms apart, until every device lists at least TARGET peers or TIMEOUT_MS
 * passes. Prints "ready" once subscribed, then "head <number> <us>" per head and
 * "seen <i> <us>" per device (monotonic microseconds); the script pairs them.
 * Usage: converge-watch WS_URL TARGET TIMEOUT_MS SOCKET...
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/common.h"
#include "net/net.h"

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Peers of the device behind a UAPI socket, or -1. */
static int uapi_peers(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	static char buf[1 << 20];
	size_t got = 0;
	int fd, n = 0;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || write(fd, "get=1\n\n", 7) != 7) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (got < sizeof(buf) - 1) {
		ssize_t k = read(fd, buf + got, sizeof(buf) - 1 - got);

		if (k <= 0)
			break;
		got += (size_t)k;
		buf[got] = '\0';
		if (strstr(buf, "\n\n"))
			break;
	}
	close(fd);
	buf[got] = '\0';
	for (const char *p = buf; (p = strstr(p, "public_key=")); p++)
		n++;
	return n;
}

struct heads {
	bool subscribed;
};

static int on_message(void *ctx, int opcode, const uint8_t *data, size_t len)
{
	struct heads *h = ctx;
	struct json j;
	int params, res, num;

	if (opcode != 1 || json_parse(&j, (const char *)data, len, 512) < 0)
		return 0;
	if (!h->subscribed && json_get(&j, 0, "result") > 0) {
		h->subscribed = true;
		printf("ready\n");
	} else if ((params = json_get(&j, 0, "params")) > 0 && (res = json_get(&j, params, "result")) > 0 &&
		   (num = json_get(&j, res, "number")) > 0) {
		size_t n;
		const char *s = json_raw(&j, num, &n);

		printf("head %llu %llu\n", strtoull(s, NULL, 16), (unsigned long long)now_us());
	}
	fflush(stdout);
	json_clear(&j);
	return 0;
}

int main(int argc, char **argv)
{
	static const char sub[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_subscribe\",\"params\":[\"newHeads\"]}";
	struct heads h = { 0 };
	struct ws_client *ws;
	int target, n, left, r;
	uint64_t deadline;
	bool *seen;

	if (argc < 5) {
		fprintf(stderr, "usage: converge-watch WS_URL TARGET TIMEOUT_MS SOCKET...\n");
		return 2;
	}
	target = atoi(argv[2]);
	deadline = now_us() + (uint64_t)atoi(argv[3]) * 1000;
	n = argc - 4;
	left = n;
	seen = calloc((size_t)n, sizeof(*seen));
	r = ws_client_connect(&ws, argv[1], 3000, NULL);
	if (r < 0 || ws_client_send(ws, 1, sub, sizeof(sub) - 1) < 0) {
		fprintf(stderr, "converge-watch: %s: %s\n", argv[1], errstr(r));
		return 1;
	}
	while (left && now_us() < deadline) {
		struct pollfd pfd = { .fd = ws_client_fd(ws), .events = POLLIN };

		if (poll(&pfd, 1, 2) > 0 && ws_client_read(ws, on_message, &h) < 0)
			break;
		if (!h.subscribed)
			continue;
		for (int i = 0; i < n; i++) {
			if (seen[i] || uapi_peers(argv[4 + i]) < target)
				continue;
			seen[i] = true;
			left--;
			printf("seen %d %llu\n", i, (unsigned long long)now_us());
			fflush(stdout);
		}
	}
	ws_client_free(ws);
	free(seen);
	return left ? 1 : 0;
}
