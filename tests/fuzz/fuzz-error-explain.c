/* SPDX-License-Identifier: MIT */
/* libFuzzer: an agent's refusal text reworded (registry_explain_compact), and revert data
 * through the operator's table (field names, units, hints). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"
#include "registry/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), why[512];
	struct buf out;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	buf_init(&out, 1 << 16);
	registry_explain_compact(text, &out);
	buf_clear(&out);
	free(text);
	eth_describe_revert(data, size, &registry_contract_errors_explained, why, sizeof(why));
	return 0;
}
