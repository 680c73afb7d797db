/* SPDX-License-Identifier: MIT */
/* The relay's wire format, for relay.c, the unit tests, the fuzz target and the benchmark;
 * not part of the module's interface. */
#ifndef DSTACK_P2P_RELAY_INTERNAL_H
#define DSTACK_P2P_RELAY_INTERNAL_H

#include "relay/relay.h"

/* ---- frames and the proof of identity (pure; fuzzed) ------------------------------------ */

#define RELAY_MAGIC "DP2PRLY1"
#define RELAY_CHALLENGE_LEN 60      /* magic[8] || instance_id[20] || nonce[32] */
#define RELAY_PROOF_LEN 65          /* r || s || v by the node key */

/*
 * The next frame in buf[0..len): 1 with *payload, *plen and *used set when a whole
 * frame is there, 0 when more bytes are needed, -EMSGSIZE when the length exceeds max.
 */
int relay_frame_next(const uint8_t *buf, size_t len, size_t max, const uint8_t **payload, size_t *plen,
		     size_t *used);
/* Length prefix + payload into out; the bytes written, or -ENOSPC. */
int relay_frame_put(uint8_t *out, size_t cap, const void *payload, size_t len);

void relay_challenge_encode(uint8_t out[static RELAY_CHALLENGE_LEN], const uint8_t instance_id[static 20],
			    const uint8_t nonce[static 32]);
/* -EPROTO: not a challenge of this protocol version. */
int relay_challenge_parse(const uint8_t *p, size_t len, uint8_t instance_id[static 20], uint8_t nonce[static 32]);
/*
 * What the signer's node key signs: keccak256("dstack-p2p.relay.v1" || chain_id (8, big
 * endian) || contract || signer instance || verifier instance || verifier's nonce ||
 * signer's nonce). The verifier's fresh nonce makes a recorded proof useless later.
 */
void relay_proof_digest(uint8_t out[static 32], uint64_t chain_id, const uint8_t contract[static 20],
			const uint8_t signer[static 20], const uint8_t verifier[static 20],
			const uint8_t verifier_nonce[static 32], const uint8_t signer_nonce[static 32]);
/* 0 when proof (len bytes) is the node key of node_addr signing digest; -EPROTO, -EACCES. */
int relay_proof_check(const uint8_t *proof, size_t len, const uint8_t digest[static 32],
		      const uint8_t node_addr[static 20]);

/* Streams refused before any peer was known (bad proof, unknown instance, timeout). */
uint64_t relay_refused_unknown(struct relay *r);

#endif
