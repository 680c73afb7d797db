/* SPDX-License-Identifier: MIT */
/*
 * relay: WireGuard datagrams over TCP streams through the dstack gateway.
 *
 * Each peer that has no direct UDP path gets a loopback UDP socket (127.0.1.<token>
 * on one port); the local WireGuard device is told that this socket is the peer's
 * endpoint. The relay carries every datagram WireGuard sends there as one frame
 * (2-byte big-endian length, then the datagram, as RFC 8229) over one stream per
 * peer pair, and sends what arrives on the stream from that socket to WireGuard.
 * WireGuard's crypto stays end to end: the stream only ever holds ciphertext.
 *
 * The stream of a pair is dialled by the side with the lower instance id: TLS to the
 * gateway, SNI `<instance_id>-<port>.<domain>`, certificate verified (system store or
 * a configured CA). The gateway terminates TLS and bridges plain bytes to the other
 * side's TCP port. Before any datagram is routed, both ends prove who they are: each
 * sends a challenge (magic, its instance id, 32 random bytes), then a signature with
 * its node key (the key of its registry record) over both challenges; a stream whose
 * proof does not recover the registered node address is closed. Unproven streams
 * never touch an existing peer's stream.
 *
 * One epoll loop, run by relay_dispatch() or by the thread relay_start() makes; the
 * functions below may be called from another thread while it runs. Every function
 * returns 0 or a negative errno.
 */
#ifndef DSTACK_P2P_RELAY_H
#define DSTACK_P2P_RELAY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RELAY_MAX_DATAGRAM 16384    /* a larger frame closes the stream (WireGuard's are <= MTU + 32) */
#define RELAY_QUEUE_BYTES 32768     /* per stream, datagrams waiting for the socket; full = drop */
#define RELAY_HELLO_TIMEOUT_MS 5000 /* TCP connect + TLS + both proofs */
#define RELAY_MAX_PENDING 32        /* unproven streams at once; the oldest is closed first */
#define RELAY_KEEPALIVE_MS 120000   /* an empty frame on a stream idle that long (gateway idle cut: 10 min) */

/* ---- the relay ----------------------------------------------------------------------------- */

/* Sign a 32-byte digest with the node key (which the relay never holds). */
typedef int (*relay_sign_fn)(void *ctx, const uint8_t digest[static 32], uint8_t sig[static 65]);

struct relay_config {
	uint16_t listen_port;           /* TCP: the port the gateway forwards to; 0 = do not listen */
	uint16_t wg_port;               /* the local WireGuard's UDP port */
	uint16_t loop_port;             /* peer sockets bind 127.0.1.<token>:loop_port */
	const char *ca_file;            /* PEM CA bundle for the gateway; NULL = system store */
	uint8_t instance_id[20];        /* ours */
	uint8_t contract[20];           /* bound into every proof, with chain_id */
	uint64_t chain_id;
	relay_sign_fn sign;
	void *sign_ctx;
};

/* A peer as the registry has it. */
struct relay_peer {
	uint32_t token;                 /* 1..254 */
	uint8_t instance_id[20];
	uint8_t node_addr[20];          /* keccak(node public key)[12:], from its verified record */
	char host[256];                 /* gateway name to dial: <instance_id>-<port>.<domain> */
	uint16_t port;                  /* the gateway's TLS port (443) */
};

enum relay_state { RELAY_DOWN, RELAY_CONNECTING, RELAY_UP };

struct relay_stats {
	enum relay_state state;
	bool dialer;                    /* we dial this peer (lower instance id) */
	uint64_t tx_bytes, rx_bytes;    /* datagram bytes, both directions */
	uint64_t tx_packets, rx_packets;
	uint64_t drops;                 /* datagrams dropped: no stream, or its queue full */
	uint64_t queue_drops;           /* of those, towards the peer with its stream's queue full */
	uint64_t dials;                 /* streams we dialled (dialer only) ... */
	uint64_t redials;               /* ... after the first: the one before broke or never came up */
	uint64_t connects;              /* streams that came up */
	uint64_t refused;               /* streams closed for a bad or missing proof */
	char error[96];                 /* why the last stream failed; "" once one is up */
};

struct relay;

/* -EINVAL for a config without a signer or ports; socket and TLS errors as they come. */
int relay_new(struct relay **out, const struct relay_config *cfg);
void relay_free(struct relay *r);

/*
 * Add a peer or update it (same token). Resolves p->host (in the caller's thread) and
 * binds its loopback socket; *loop gets the endpoint to give WireGuard. -EADDRNOTAVAIL
 * when the name does not resolve, -EADDRINUSE when the loopback port is taken. A peer
 * whose instance id or node address changed loses its stream.
 */
int relay_peer_set(struct relay *r, const struct relay_peer *p, struct sockaddr_in *loop);
/* Forget a peer: its stream and socket are closed at once (a burned token). -ENOENT. */
int relay_peer_remove(struct relay *r, uint32_t token);
/* -ENOENT for an unknown token. */
int relay_peer_stats(struct relay *r, uint32_t token, struct relay_stats *st);
/* The endpoint the relay would give WireGuard for token (no socket needed). */
void relay_loop_endpoint(const struct relay *r, uint32_t token, struct sockaddr_in *out);

/* One round: wait up to timeout_ms for events, handle them and the timers. */
int relay_dispatch(struct relay *r, int timeout_ms);
/* Run the loop in a thread of its own until relay_stop() (relay_free stops it too). */
int relay_start(struct relay *r);
void relay_stop(struct relay *r);

#endif
