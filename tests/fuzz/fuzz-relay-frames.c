/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: what a stranger can send to the relay's TCP port through the gateway: a
 * byte stream cut into frames at arbitrary points, whose first two frames must be a
 * challenge and a proof. Feeds the stream in pieces, as reads would deliver it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t node_addr[20] = { 1, 2, 3 }, contract[20] = { 4 };
	uint8_t in[2 * (RELAY_MAX_DATAGRAM + 2)], id[20], nonce[32], mine[32] = { 9 }, digest[32];
	size_t in_len = 0, off = 0;
	unsigned nframes = 0;

	if (size < 1)
		return 0;
	/* The first byte picks the read size: the same bytes cut at other places. */
	size_t chunk = (size_t)data[0] * 67 + 1;
	data++;
	size--;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk, pos = 0;

		if (n > sizeof(in) - in_len)
			n = sizeof(in) - in_len;
		memcpy(in + in_len, data + off, n);
		in_len += n;
		off += n;
		for (;;) {
			const uint8_t *p;
			size_t plen, used;
			int k = relay_frame_next(in + pos, in_len - pos, RELAY_MAX_DATAGRAM, &p, &plen, &used);

			if (k < 0)
				return 0;  /* the relay closes the stream */
			if (k == 0)
				break;
			if (used != plen + 2 || pos + used > in_len)
				abort();
			pos += used;
			if (nframes == 0 && relay_challenge_parse(p, plen, id, nonce) < 0)
				return 0;
			if (nframes == 1) {
				relay_proof_digest(digest, 1, contract, id, node_addr, mine, nonce);
				if (relay_proof_check(p, plen, digest, node_addr) == 0)
					abort();  /* nobody holds the key of this made-up address */
			}
			nframes++;
		}
		memmove(in, in + pos, in_len - pos);
		in_len -= pos;
	}
	return 0;
}
