/* SPDX-License-Identifier: MIT */
/* libFuzzer: a relayer's reply body as the agent reads it (refusal reason, txHash). */
#include <stdint.h>
#include <string.h>

#include "mesh/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[64];
	uint8_t tx[32];

	mesh_relayer_reply_parse((const char *)data, size, why, sizeof(why), tx);
	if (strlen(why) >= sizeof(why))
		__builtin_trap();
	return 0;
}
