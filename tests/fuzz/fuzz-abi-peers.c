/* SPDX-License-Identifier: MIT */
/* libFuzzer: getPeers() return data through the registry decoder, and revert data. */
#include <stdint.h>

#include "chain/chain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct registry_skip skips[4];
	struct registry_peer *peers;
	char why[256];
	size_t n, nskips;

	if (registry_decode_peers(data, size, &peers, &n, skips, 4, &nskips) == 0)
		registry_peers_free(peers, n);
	eth_describe_revert(data, size, why, sizeof(why));
	return 0;
}
