/* SPDX-License-Identifier: MIT */
/*
 * The relay's memory at 16 peers: anonymous RSS of a running relay before any peer, with 16 peers
 * (loopback sockets), with 16 proven streams, and after 2000 datagrams of 1400 bytes went
 * each way on every stream. The peers are played over plain TCP, as the gateway hands
 * streams over after terminating TLS. Figures are printed, never asserted.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "chain/chain.h"
#include "relay/internal.h"

#define PEERS 16
#define DATAGRAMS 2000
#define SIZE 1400

static const uint8_t key_b[32] = { [0] = 0x42, [31] = 0x42 };
static uint8_t inst_b[20], contract[20];

static int sign_b(void *ctx, const uint8_t digest[static 32], uint8_t sig[static 65])
{
	(void)ctx;
	return crypto_sign_digest(key_b, digest, sig);
}

/*
 * Anonymous RSS (RssAnon): the relay's own memory. File-backed pages are left out: each
 * signature recovery touches other pages of libsecp256k1's precomputed tables, which an
 * agent has touched anyway verifying the registry.
 */
static long rss_kb(void)
{
	char line[128];
	long kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static uint16_t free_port(int type)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, type, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		exit(1);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	close(fd);
	return ntohs(sin.sin_port);
}

static int read_full(int fd, uint8_t *p, size_t n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	for (size_t got = 0; got < n;) {
		ssize_t k;

		if (poll(&pfd, 1, 5000) <= 0 || (k = read(fd, p + got, n - got)) <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

static int frame_send(int fd, const void *p, size_t len)
{
	uint8_t buf[2 + SIZE];
	int n = relay_frame_put(buf, sizeof(buf), p, len);

	return n < 0 || write(fd, buf, (size_t)n) != n ? -1 : 0;
}

/* Play peer i: challenge, proof; the proven stream's fd. */
static int play_peer(uint16_t port, const uint8_t inst[20], const uint8_t sk[32])
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint8_t hdr[2], frame[128], id[20], nb[32], na[32] = { 7 }, digest[32], proof[65];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return -1;
	if (read_full(fd, hdr, 2) < 0 || hdr[1] != RELAY_CHALLENGE_LEN || read_full(fd, frame, RELAY_CHALLENGE_LEN) < 0 ||
	    relay_challenge_parse(frame, RELAY_CHALLENGE_LEN, id, nb) < 0)
		return -1;
	relay_challenge_encode(frame, inst, na);
	relay_proof_digest(digest, 1, contract, inst, inst_b, nb, na);
	if (frame_send(fd, frame, RELAY_CHALLENGE_LEN) < 0 || crypto_sign_digest(sk, digest, proof) < 0 ||
	    frame_send(fd, proof, sizeof(proof)) < 0)
		return -1;
	if (read_full(fd, hdr, 2) < 0 || read_full(fd, frame, RELAY_PROOF_LEN) < 0)
		return -1;
	return fd;
}

int main(void)
{
	struct relay_config cfg = { .chain_id = 1, .sign = sign_b };
	struct sockaddr_in wg = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t wl = sizeof(wg);
	struct relay *r;
	int wgfd, fds[PEERS];
	long rss[4];
	uint8_t payload[SIZE], sk[PEERS][32];
	uint64_t delivered = 0;
	struct relay_peer peers[PEERS];
	int big = 8 << 20;

	memset(inst_b, 0xff, 20);
	memcpy(cfg.instance_id, inst_b, 20);
	cfg.listen_port = free_port(SOCK_STREAM);
	cfg.loop_port = free_port(SOCK_DGRAM);
	wgfd = socket(AF_INET, SOCK_DGRAM, 0);
	if (wgfd < 0 || bind(wgfd, (struct sockaddr *)&wg, sizeof(wg)) < 0)
		return 1;
	getsockname(wgfd, (struct sockaddr *)&wg, &wl);
	cfg.wg_port = ntohs(wg.sin_port);
	setsockopt(wgfd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	memset(payload, 0xa5, sizeof(payload));

	/* Keys and the resolver first: their one-time cost is not the relay's. */
	for (int i = 0; i < PEERS; i++) {
		uint8_t pub[64];

		peers[i] = (struct relay_peer){ .token = (uint32_t)i + 1, .port = 443 };
		memset(sk[i], i + 1, 32);
		peers[i].instance_id[19] = (uint8_t)(i + 1);
		crypto_pubkey_from_secret(sk[i], pub);
		crypto_address_from_pubkey(pub, peers[i].node_addr);
		snprintf(peers[i].host, sizeof(peers[i].host), "localhost");
	}
	if (relay_new(&r, &cfg) < 0 || relay_start(r) < 0) {
		fprintf(stderr, "relay-peers: cannot start a relay\n");
		return 1;
	}
	{
		/*
		 * Warm what an agent has loaded anyway: the resolver (NSS modules), secp256k1's
		 * signing and recovery tables (the agent verifies every record with them).
		 */
		uint8_t d[32] = { 1 }, sig[65], pub[64];
		struct relay_peer warm = peers[0];

		crypto_sign_digest(key_b, d, sig);
		crypto_recover_pubkey(d, sig, pub);
		warm.token = 254;
		relay_peer_set(r, &warm, NULL);
		relay_peer_remove(r, 254);
	}
	rss[0] = rss_kb();
	for (int i = 0; i < PEERS; i++)
		if (relay_peer_set(r, &peers[i], NULL) < 0)
			return 1;
	rss[1] = rss_kb();
	for (int i = 0; i < PEERS; i++) {
		uint8_t inst[20] = { 0 };

		inst[19] = (uint8_t)(i + 1);
		fds[i] = play_peer(cfg.listen_port, inst, sk[i]);
		if (fds[i] < 0) {
			fprintf(stderr, "relay-peers: peer %d was not accepted\n", i + 1);
			return 1;
		}
	}
	rss[2] = rss_kb();
	for (int n = 0; n < DATAGRAMS; n++) {
		uint8_t sink[65536];

		for (int i = 0; i < PEERS; i++) {
			struct sockaddr_in loop;

			frame_send(fds[i], payload, sizeof(payload));
			relay_loop_endpoint(r, (uint32_t)i + 1, &loop);
			sendto(wgfd, payload, sizeof(payload), MSG_DONTWAIT, (struct sockaddr *)&loop, sizeof(loop));
		}
		/* drain both ways so nothing waits in a kernel buffer forever */
		while (recv(wgfd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			delivered++;
		for (int i = 0; i < PEERS; i++)
			while (recv(fds[i], sink, sizeof(sink), MSG_DONTWAIT) > 0) {
			}
	}
	usleep(200000);
	rss[3] = rss_kb();
	printf("relay at %d peers: anonymous RSS %ld kB empty, +%ld kB with %d loopback sockets, +%ld kB with %d proven "
	       "streams, +%ld kB after %d x %d B each way per stream (total growth %ld kB, goal < 1024)\n",
	       PEERS, rss[0], rss[1] - rss[0], PEERS, rss[2] - rss[1], PEERS, rss[3] - rss[2], DATAGRAMS, SIZE,
	       rss[3] - rss[0]);
	(void)delivered;
	for (int i = 0; i < PEERS; i++)
		close(fds[i]);
	relay_free(r);
	close(wgfd);
	return 0;
}
