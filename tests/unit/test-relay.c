/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of relay/: frames, the proof of identity, and a running relay's listening
 * side driven by a scripted peer over a real TCP socket (what the gateway hands over
 * after terminating TLS) with a UDP socket standing in for the local WireGuard.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include "chain/chain.h"
#include "relay/internal.h"

Test(relay_frame, whole_partial_oversized_empty)
{
	const uint8_t *p;
	size_t plen, used;
	uint8_t buf[8] = { 0x00, 0x03, 'a', 'b', 'c', 0x00, 0x00, 0xff };

	cr_assert_eq(relay_frame_next(buf, 0, 100, &p, &plen, &used), 0);
	cr_assert_eq(relay_frame_next(buf, 1, 100, &p, &plen, &used), 0);
	cr_assert_eq(relay_frame_next(buf, 4, 100, &p, &plen, &used), 0);
	cr_assert_eq(relay_frame_next(buf, 5, 100, &p, &plen, &used), 1);
	cr_assert_eq(plen, 3);
	cr_assert_eq(used, 5);
	cr_assert_eq(memcmp(p, "abc", 3), 0);
	cr_assert_eq(relay_frame_next(buf + 5, 2, 100, &p, &plen, &used), 1);
	cr_assert_eq(plen, 0);
	cr_assert_eq(relay_frame_next(buf, 5, 2, &p, &plen, &used), -EMSGSIZE);
	buf[6] = 0xff;
	cr_assert_eq(relay_frame_next(buf + 6, 2, RELAY_MAX_DATAGRAM, &p, &plen, &used), -EMSGSIZE);
}

Test(relay_frame, put_bounds)
{
	uint8_t out[6];

	cr_assert_eq(relay_frame_put(out, sizeof(out), "abcd", 4), 6);
	cr_assert_eq(out[0], 0);
	cr_assert_eq(out[1], 4);
	cr_assert_eq(relay_frame_put(out, sizeof(out), "abcde", 5), -ENOSPC);
	cr_assert_eq(relay_frame_put(out, 1, NULL, 0), -ENOSPC);
	cr_assert_eq(relay_frame_put(out, 2, NULL, 0), 2);
}

Test(relay_hello, challenge_round_trip_and_garbage)
{
	uint8_t id[20], nonce[32], frame[RELAY_CHALLENGE_LEN], id2[20], nonce2[32];

	memset(id, 0xab, sizeof(id));
	memset(nonce, 0x5c, sizeof(nonce));
	relay_challenge_encode(frame, id, nonce);
	cr_assert_eq(relay_challenge_parse(frame, sizeof(frame), id2, nonce2), 0);
	cr_assert_eq(memcmp(id, id2, 20), 0);
	cr_assert_eq(memcmp(nonce, nonce2, 32), 0);
	cr_assert_eq(relay_challenge_parse(frame, sizeof(frame) - 1, id2, nonce2), -EPROTO);
	frame[0] ^= 1;
	cr_assert_eq(relay_challenge_parse(frame, sizeof(frame), id2, nonce2), -EPROTO);
}

static const uint8_t key_a[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t key_b[32] = { 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
				   0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
				   0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42 };
static const uint8_t key_evil[32] = { 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
				      0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
				      0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66 };

static void addr_of(const uint8_t sk[static 32], uint8_t addr[static 20])
{
	uint8_t pub[64];

	cr_assert_eq(crypto_pubkey_from_secret(sk, pub), 0);
	crypto_address_from_pubkey(pub, addr);
}

Test(relay_hello, proof_binds_key_roles_and_nonces)
{
	uint8_t a[20], b[20], contract[20], na[32], nb[32], digest[32], sig[65], addr_a[20], addr_b[20];

	memset(a, 0xaa, 20);
	memset(b, 0xbb, 20);
	memset(contract, 0xcc, 20);
	memset(na, 1, 32);
	memset(nb, 2, 32);
	addr_of(key_a, addr_a);
	addr_of(key_b, addr_b);
	relay_proof_digest(digest, 31337, contract, a, b, nb, na);
	cr_assert_eq(crypto_sign_digest(key_a, digest, sig), 0);
	cr_assert_eq(relay_proof_check(sig, sizeof(sig), digest, addr_a), 0);
	cr_assert_eq(relay_proof_check(sig, sizeof(sig), digest, addr_b), -EACCES);
	cr_assert_eq(relay_proof_check(sig, 64, digest, addr_a), -EPROTO);
	/* Another nonce of the verifier, swapped roles or another chain: another digest. */
	uint8_t other[32];
	relay_proof_digest(other, 31337, contract, a, b, na, na);
	cr_assert_eq(relay_proof_check(sig, sizeof(sig), other, addr_a), -EACCES);
	relay_proof_digest(other, 31337, contract, b, a, nb, na);
	cr_assert_eq(relay_proof_check(sig, sizeof(sig), other, addr_a), -EACCES);
	relay_proof_digest(other, 1, contract, a, b, nb, na);
	cr_assert_eq(relay_proof_check(sig, sizeof(sig), other, addr_a), -EACCES);
}

/* ---- a running relay, listening side ----------------------------------------------------- */

#define CHAIN_ID 31337

static uint8_t inst_a[20], inst_b[20], contract[20];

static int sign_b(void *ctx, const uint8_t digest[static 32], uint8_t sig[static 65])
{
	(void)ctx;
	return crypto_sign_digest(key_b, digest, sig);
}

static uint16_t free_port(int type)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, type, 0);

	cr_assert(fd >= 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	close(fd);
	return ntohs(sin.sin_port);
}

/* Read exactly one frame from a blocking stream (2 s bound); its length, or -1 at EOF. */
static int read_frame(int fd, uint8_t *out, size_t cap)
{
	uint8_t hdr[2];
	size_t got = 0, n;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	while (got < 2) {
		if (poll(&pfd, 1, 2000) <= 0)
			return -2;
		ssize_t k = read(fd, hdr + got, 2 - got);
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	n = (size_t)hdr[0] << 8 | hdr[1];
	cr_assert(n <= cap);
	for (got = 0; got < n;) {
		if (poll(&pfd, 1, 2000) <= 0)
			return -2;
		ssize_t k = read(fd, out + got, n - got);
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return (int)n;
}

static void write_frame(int fd, const void *p, size_t len)
{
	uint8_t buf[2 + 256];

	cr_assert(len <= 256);
	cr_assert_eq(relay_frame_put(buf, sizeof(buf), p, len), (int)len + 2);
	cr_assert_eq(write(fd, buf, len + 2), (ssize_t)len + 2);
}

/*
 * Connect as peer A (signing with sk, or sending replay_proof) and run the hello; the
 * stream fd. B, the listening side, signs only after A's proof checked out: with
 * expect_proof its proof is read and checked, else none must come (the stream closes).
 */
static int hello_as_a(uint16_t port, const uint8_t sk[static 32], uint8_t *replay_proof,
		      bool expect_proof)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint8_t frame[128], id[20], nb[32], na[32], digest[32], proof[65], addr_b[20];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(read_frame(fd, frame, sizeof(frame)), RELAY_CHALLENGE_LEN);
	cr_assert_eq(relay_challenge_parse(frame, RELAY_CHALLENGE_LEN, id, nb), 0);
	cr_assert_eq(memcmp(id, inst_b, 20), 0);
	memset(na, 0x77, sizeof(na));
	relay_challenge_encode(frame, inst_a, na);
	write_frame(fd, frame, RELAY_CHALLENGE_LEN);
	if (replay_proof) {
		write_frame(fd, replay_proof, RELAY_PROOF_LEN);
	} else {
		relay_proof_digest(digest, CHAIN_ID, contract, inst_a, inst_b, nb, na);
		cr_assert_eq(crypto_sign_digest(sk, digest, proof), 0);
		write_frame(fd, proof, sizeof(proof));
	}
	if (!expect_proof) {
		cr_assert_eq(read_frame(fd, frame, sizeof(frame)), -1, "B signed for an unproven stream");
		return fd;
	}
	/* Then B answers our challenge with its proof. */
	cr_assert_eq(read_frame(fd, frame, sizeof(frame)), RELAY_PROOF_LEN);
	relay_proof_digest(digest, CHAIN_ID, contract, inst_b, inst_a, na, nb);
	addr_of(key_b, addr_b);
	cr_assert_eq(relay_proof_check(frame, RELAY_PROOF_LEN, digest, addr_b), 0);
	return fd;
}

static int recv_udp(int fd, uint8_t *buf, size_t cap, struct sockaddr_in *from)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	socklen_t len = sizeof(*from);

	if (poll(&pfd, 1, 2000) <= 0)
		return -1;
	return (int)recvfrom(fd, buf, cap, 0, (struct sockaddr *)from, &len);
}

static void wait_state(struct relay *r, uint32_t token, enum relay_state want, uint64_t min_refused)
{
	struct relay_stats st;

	for (int i = 0; i < 200; i++) {
		cr_assert_eq(relay_peer_stats(r, token, &st), 0);
		if (st.state == want && st.refused >= min_refused)
			return;
		usleep(10000);
	}
	cr_assert_fail("peer %u: state %d, refused %llu", token, st.state, (unsigned long long)st.refused);
}

/* Send datagrams of 200 bytes to token's loopback endpoint until its queue drops (bounded). */
static void flood_until_queue_drops(struct relay *r, uint32_t token, int wgfd, const struct sockaddr_in *loop)
{
	uint8_t d[200] = { 0 };
	struct relay_stats st;

	for (int i = 0; i < 400000; i++) {
		sendto(wgfd, d, sizeof(d), 0, (const struct sockaddr *)loop, sizeof(*loop));
		if (i % 256)
			continue;
		usleep(500); /* the relay's thread takes them in */
		cr_assert_eq(relay_peer_stats(r, token, &st), 0);
		if (st.queue_drops) {
			cr_assert_geq(st.drops, st.queue_drops);
			return;
		}
	}
	cr_assert_fail("no queue drops after 400000 datagrams");
}

/* We dial (lower instance id) a gateway that refuses: each failure is a redial, backing off. */
Test(relay_dial, refused_dials_are_counted_as_redials, .timeout = 20)
{
	struct relay_config cfg = { .chain_id = CHAIN_ID, .sign = sign_b };
	struct relay_peer peer = { .token = 2 };
	struct relay_stats st = { 0 };
	struct relay *r = NULL;

	memset(cfg.instance_id, 0x01, 20);
	memset(peer.instance_id, 0x0f, 20);
	cfg.wg_port = free_port(SOCK_DGRAM);
	cfg.loop_port = free_port(SOCK_DGRAM);
	snprintf(peer.host, sizeof(peer.host), "127.0.0.1");
	peer.port = free_port(SOCK_STREAM); /* nobody listens there */
	cr_assert_eq(relay_new(&r, &cfg), 0);
	cr_assert_eq(relay_peer_set(r, &peer, NULL), 0);
	cr_assert_eq(relay_start(r), 0);
	for (int i = 0; i < 500 && st.redials < 2; i++) {
		usleep(10000);
		cr_assert_eq(relay_peer_stats(r, 2, &st), 0);
	}
	cr_assert(st.dialer);
	cr_assert_geq(st.redials, 2, "dials %llu, redials %llu", (unsigned long long)st.dials,
		      (unsigned long long)st.redials);
	cr_assert_eq(st.redials + 1, st.dials);
	cr_assert_eq(st.connects, 0);
	relay_free(r);
}

Test(relay_listen, proven_peer_relays_both_ways_and_impostors_do_not_disturb_it)
{
	struct relay_config cfg = { .chain_id = CHAIN_ID, .sign = sign_b };
	struct relay_peer peer_a = { .token = 1, .port = 443 };
	struct sockaddr_in wg = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) }, loop, from;
	struct relay *r = NULL;
	uint8_t buf[256], stolen[65];
	int wgfd, s1, s2, s3;

	memset(inst_a, 0x0a, 20);   /* lower: A dials, B (the relay under test) listens */
	memset(inst_b, 0x0b, 20);
	memset(contract, 0xcc, 20);
	memcpy(cfg.instance_id, inst_b, 20);
	memcpy(cfg.contract, contract, 20);
	cfg.listen_port = free_port(SOCK_STREAM);
	cfg.loop_port = free_port(SOCK_DGRAM);
	wgfd = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert_eq(bind(wgfd, (struct sockaddr *)&wg, sizeof(wg)), 0);
	socklen_t wl = sizeof(wg);
	getsockname(wgfd, (struct sockaddr *)&wg, &wl);
	cfg.wg_port = ntohs(wg.sin_port);

	cr_assert_eq(relay_new(&r, &cfg), 0);
	memcpy(peer_a.instance_id, inst_a, 20);
	addr_of(key_a, peer_a.node_addr);
	snprintf(peer_a.host, sizeof(peer_a.host), "localhost");
	cr_assert_eq(relay_peer_set(r, &peer_a, &loop), 0);
	cr_assert_eq(loop.sin_addr.s_addr, htonl(0x7f000101));
	cr_assert_eq(relay_start(r), 0);

	/* A proves itself: a frame from the stream reaches "WireGuard" from A's loopback socket. */
	s1 = hello_as_a(cfg.listen_port, key_a, NULL, true);
	wait_state(r, 1, RELAY_UP, 0);
	write_frame(s1, "datagram-1", 10);
	cr_assert_eq(recv_udp(wgfd, buf, sizeof(buf), &from), 10);
	cr_assert_eq(memcmp(buf, "datagram-1", 10), 0);
	cr_assert_eq(from.sin_addr.s_addr, loop.sin_addr.s_addr);
	cr_assert_eq(from.sin_port, loop.sin_port);
	/* And back: "WireGuard" sends to the loopback endpoint, the stream carries one frame. */
	cr_assert_eq(sendto(wgfd, "reply-1", 7, 0, (struct sockaddr *)&loop, sizeof(loop)), 7);
	cr_assert_eq(read_frame(s1, buf, sizeof(buf)), 7);
	cr_assert_eq(memcmp(buf, "reply-1", 7), 0);

	/* Someone without A's key claims to be A: closed, and A's stream still works. */
	s2 = hello_as_a(cfg.listen_port, key_evil, NULL, false);
	wait_state(r, 1, RELAY_UP, 1);
	/* A proof recorded from an earlier stream is useless on a new one (fresh nonce). */
	{
		uint8_t digest[32], nb_old[32];

		memset(nb_old, 0, 32);
		relay_proof_digest(digest, CHAIN_ID, contract, inst_a, inst_b, nb_old, nb_old);
		cr_assert_eq(crypto_sign_digest(key_a, digest, stolen), 0);
	}
	s3 = hello_as_a(cfg.listen_port, key_a, stolen, false);
	wait_state(r, 1, RELAY_UP, 2);
	write_frame(s1, "datagram-2", 10);
	cr_assert_eq(recv_udp(wgfd, buf, sizeof(buf), &from), 10);
	cr_assert_eq(memcmp(buf, "datagram-2", 10), 0);

	/* A stranger who names A and sends no proof gets no signature: nothing, then closed. */
	{
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(cfg.listen_port),
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		uint8_t na[32] = { 0x55 };
		int g = socket(AF_INET, SOCK_STREAM, 0);

		cr_assert_eq(connect(g, (struct sockaddr *)&sin, sizeof(sin)), 0);
		cr_assert_eq(read_frame(g, buf, sizeof(buf)), RELAY_CHALLENGE_LEN);
		relay_challenge_encode(buf, inst_a, na);
		write_frame(g, buf, RELAY_CHALLENGE_LEN);
		cr_assert_eq(read_frame(g, buf, sizeof(buf)), -2, "a proof for a stranger");
		close(g);
	}

	/* Garbage instead of a challenge: closed without a word. */
	{
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(cfg.listen_port),
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int g = socket(AF_INET, SOCK_STREAM, 0);

		cr_assert_eq(connect(g, (struct sockaddr *)&sin, sizeof(sin)), 0);
		cr_assert_eq(read_frame(g, buf, sizeof(buf)), RELAY_CHALLENGE_LEN);
		cr_assert_eq(write(g, "\xff\xff garbage", 10), 10);
		cr_assert_eq(read_frame(g, buf, sizeof(buf)), -1);
		close(g);
	}

	/* Datagrams faster than the stream takes them (nobody reads s1): its queue fills, drops. */
	flood_until_queue_drops(r, 1, wgfd, &loop);

	/* A burned peer: removed, its stream is closed and datagrams to its socket go nowhere. */
	cr_assert_eq(relay_peer_remove(r, 1), 0);
	for (int i = 0, k = 0; k >= 0; i++) {
		k = read_frame(s1, buf, sizeof(buf)); /* what was queued, then the end */
		cr_assert(k != -2 && i < 1000000, "the stream was not closed");
	}
	cr_assert(relay_refused_unknown(r) >= 1);
	close(s1);
	close(s2);
	close(s3);
	close(wgfd);
	relay_free(r);
}
