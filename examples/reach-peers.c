/* SPDX-License-Identifier: MIT */
/*
 * reach-peers: an app's view of the mesh through the dstack-p2p C API. Registers,
 * then opens a TCP connection to PORT on every peer and prints the first line each
 * one sends. With --watch it keeps running and prints the peer list on every change.
 *
 *   cc reach-peers.c $(pkg-config --cflags --libs dstack-p2p) -o reach-peers
 *   ./reach-peers 0x5fbd...0aa3 7777 [--watch SECONDS]
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <dstack-p2p.h>

/* Connect to host:port with a 2 s timeout and print the first line the peer sends. */
static int reach(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	struct timeval tv = { .tv_sec = 2 };
	char line[256] = "";
	ssize_t n;
	int fd = -1, ok = -1;

	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    (n = read(fd, line, sizeof(line) - 1)) > 0) {
			line[n] = '\0';
			line[strcspn(line, "\r\n")] = '\0';
			printf("reached %s: %s\n", host, line);
			ok = 0;
		}
		close(fd);
	}
	if (ok < 0)
		printf("cannot reach %s:%s\n", host, port);
	freeaddrinfo(ai);
	return ok;
}

static void on_change(const char *const *peers, size_t n, void *user)
{
	(void)user;
	printf("peers changed (%zu):", n);
	for (size_t i = 0; i < n; i++)
		printf(" %s", peers[i]);
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct dstack_p2p *p2p;
	char **peers;
	size_t n;
	int r, failed = 0;

	if (argc != 3 && !(argc == 5 && !strcmp(argv[3], "--watch"))) {
		fprintf(stderr, "usage: %s CONTRACT PORT [--watch SECONDS]\n", argv[0]);
		return 2;
	}
	r = dstack_p2p_open(&p2p, argv[1], "wireguard");
	if (r == 0)
		r = dstack_p2p_register(p2p, 60000);
	if (r == 0)
		r = dstack_p2p_get_peers(p2p, &peers, &n);
	if (r < 0) {
		fprintf(stderr, "dstack-p2p: %s\n", dstack_p2p_strerror(r));
		dstack_p2p_close(p2p);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		failed += reach(peers[i], argv[2]) < 0;
	printf("%zu of %zu peers reached\n", n - (size_t)failed, n);
	fflush(stdout);
	dstack_p2p_free_peers(peers, n);

	if (argc == 5) {
		/* No loop of our own: the library calls on_change from its thread. */
		r = dstack_p2p_monitor_peers(p2p, on_change, NULL);
		if (r < 0)
			fprintf(stderr, "dstack-p2p: %s\n", dstack_p2p_strerror(r));
		else
			sleep((unsigned)atoi(argv[4]));
	}
	dstack_p2p_close(p2p);
	return failed ? 1 : 0;
}
