/* SPDX-License-Identifier: MIT */
/* libFuzzer: the agent's reply to a leader action as the C API reads it (api_action_reply). */
#include <stdint.h>
#include <string.h>

#include "api/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char tx[67];

	if (api_action_reply((const char *)data, size, tx) == 0 && strlen(tx) != 0 && strlen(tx) != 66)
		__builtin_trap();
	return 0;
}
