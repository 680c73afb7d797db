/* SPDX-License-Identifier: MIT */
/* relay: the stream's frames and the proof of identity both ends exchange first. */
#include <errno.h>
#include <string.h>

#include "crypto/crypto.h"
#include "relay/internal.h"

#define PROOF_TAG "dstack-p2p.relay.v1"

int relay_frame_next(const uint8_t *buf, size_t len, size_t max, const uint8_t **payload, size_t *plen,
		     size_t *used)
{
	size_t n;

	if (len < 2)
		return 0;
	n = (size_t)buf[0] << 8 | buf[1];
	if (n > max)
		return -EMSGSIZE;
	if (len - 2 < n)
		return 0;
	*payload = buf + 2;
	*plen = n;
	*used = n + 2;
	return 1;
}

int relay_frame_put(uint8_t *out, size_t cap, const void *payload, size_t len)
{
	if (len > 0xffff || cap < 2 || cap - 2 < len)
		return -ENOSPC;
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
	if (len)
		memcpy(out + 2, payload, len);
	return (int)(len + 2);
}

void relay_challenge_encode(uint8_t out[static RELAY_CHALLENGE_LEN], const uint8_t instance_id[static 20],
			    const uint8_t nonce[static 32])
{
	memcpy(out, RELAY_MAGIC, 8);
	memcpy(out + 8, instance_id, 20);
	memcpy(out + 28, nonce, 32);
}

int relay_challenge_parse(const uint8_t *p, size_t len, uint8_t instance_id[static 20], uint8_t nonce[static 32])
{
	if (len != RELAY_CHALLENGE_LEN || memcmp(p, RELAY_MAGIC, 8))
		return -EPROTO;
	memcpy(instance_id, p + 8, 20);
	memcpy(nonce, p + 28, 32);
	return 0;
}

void relay_proof_digest(uint8_t out[static 32], uint64_t chain_id, const uint8_t contract[static 20],
			const uint8_t signer[static 20], const uint8_t verifier[static 20],
			const uint8_t verifier_nonce[static 32], const uint8_t signer_nonce[static 32])
{
	struct keccak256_ctx c;
	uint8_t id[8];

	for (int i = 0; i < 8; i++)
		id[i] = (uint8_t)(chain_id >> (56 - 8 * i));
	keccak256_init(&c);
	keccak256_update(&c, PROOF_TAG, strlen(PROOF_TAG));
	keccak256_update(&c, id, sizeof(id));
	keccak256_update(&c, contract, 20);
	keccak256_update(&c, signer, 20);
	keccak256_update(&c, verifier, 20);
	keccak256_update(&c, verifier_nonce, 32);
	keccak256_update(&c, signer_nonce, 32);
	keccak256_final(&c, out);
}

int relay_proof_check(const uint8_t *proof, size_t len, const uint8_t digest[static 32],
		      const uint8_t node_addr[static 20])
{
	uint8_t pub[64], addr[20];

	if (len != RELAY_PROOF_LEN)
		return -EPROTO;
	if (crypto_recover_pubkey(digest, proof, pub) < 0)
		return -EACCES;
	crypto_address_from_pubkey(pub, addr);
	return memcmp(addr, node_addr, 20) ? -EACCES : 0;
}
