/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the agent's status document as `dstack-p2p status` rewrites it (0x ids,
 * unknown fields as null, health). The reply comes from whatever listens on the
 * control socket; whatever it is, the rewrite must not crash and what it returns as
 * done must itself be a JSON object carrying the verdict.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/status-doc.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct status_health health;
	struct buf out;
	struct json j;

	for (int standalone = 0; standalone < 2; standalone++) {
		buf_init(&out, 4 << 20);
		if (status_doc_normalize((const char *)data, size, standalone, &out, &health) == 0) {
			if (json_parse(&j, (const char *)out.data, out.len, 1 << 16) < 0 ||
			    j.tok[0].type != JSON_OBJECT)
				abort();
			if (!json_eq(&j, json_get(&j, 0, "healthy"), health.healthy ? "true" : "false"))
				abort();
			if (standalone && health.healthy)
				abort();
			json_clear(&j);
		}
		buf_clear(&out);
	}
	return 0;
}
