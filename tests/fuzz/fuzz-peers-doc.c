/* SPDX-License-Identifier: MIT */
/* libFuzzer: the agent's peers document as the C API reads it from the control socket. */
#include <stdint.h>

#include "api/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct peers_doc d;

	if (peers_doc_parse((const char *)data, size, &d) == 0)
		peers_doc_clear(&d);
	return 0;
}
