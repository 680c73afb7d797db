/* SPDX-License-Identifier: MIT */
/* libFuzzer target for common/json.c: every reply from outside goes through it. */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json j;

	if (json_parse(&j, (const char *)data, size, 4096) < 0)
		return 0;
	/* The tree the sizes describe covers every token: no orphans, no overrun. */
	if (json_skip(&j, 0) != j.ntok)
		abort();
	/* Walk every token the way callers do: lookups, skips, string decoding. */
	for (int i = 0; i < j.ntok; i = i + 1) {
		char *s = NULL;
		int64_t v;

		if (j.tok[i].type == JSON_STRING && json_strdup(&j, i, &s) == 0) {
			if (strlen(s) > (size_t)(j.tok[i].end - j.tok[i].start))
				abort();
			free(s);
		}
		(void)json_int64(&j, i, &v);
		if (json_skip(&j, i) <= i)
			abort();
		if (j.tok[i].type == JSON_OBJECT)
			(void)json_get(&j, i, "result");
		if (j.tok[i].type == JSON_ARRAY)
			(void)json_array_at(&j, i, j.tok[i].size - 1);
	}
	json_clear(&j);
	return 0;
}
