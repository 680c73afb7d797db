/* SPDX-License-Identifier: MIT */
/* libFuzzer: JSON-RPC replies as the client parses them, and the typed parsers behind it. */
#include <stdint.h>
#include <stdlib.h>

#include "chain/internal.h"
#include "common/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eth_rpc_call calls[3] = { { .method = "a" }, { .method = "b" }, { .method = "c" } };

	if (eth_rpc_parse_reply((const char *)data, size, 1, calls, 3) < 0)
		return 0;
	for (size_t i = 0; i < 3; i++) {
		struct eth_rpc_call *c = &calls[i];
		struct eth_log *logs = NULL;
		struct eth_block block;
		size_t n = 0, len;
		uint8_t *bytes;
		uint64_t q;

		if (!c->result) {
			eth_rpc_call_clear(c);
			continue;
		}
		(void)eth_parse_quantity(c->result, c->result_len, &q);
		if (eth_parse_data(c->result, c->result_len, 1 << 20, &bytes, &len) == 0)
			free(bytes);
		(void)eth_parse_block(c->result, c->result_len, &block);
		(void)eth_parse_logs(c->result, c->result_len, &logs, &n);
		eth_logs_free(logs, n);
		eth_rpc_call_clear(c);
	}
	return 0;
}
