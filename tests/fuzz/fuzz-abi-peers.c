/* SPDX-License-Identifier: MIT */
/* libFuzzer: getPeers() return data through the registry decoder, and revert data. */
#include <stdint.h>

#include "chain/chain.h"
#include "registry/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct registry_skip skips[4];
	struct registry_record *peers;
	char why[256];
	size_t n, nskips;

	if (registry_decode_peers(data, size, &peers, &n, skips, 4, &nskips) == 0)
		registry_records_free(peers, n);
	eth_describe_revert(data, size, &registry_contract_errors, why, sizeof(why));
	return 0;
}
