/* SPDX-License-Identifier: MIT */
/* libFuzzer: the control socket's request parser (a bare word or a JSON object, protocol v1). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "mesh/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct control_request req;
	struct err_detail why;
	char line[CONTROL_REQUEST_MAX + 1];

	if (size > CONTROL_REQUEST_MAX)
		return 0;  /* the server never reads more */
	memcpy(line, data, size);
	line[size] = '\0';
	if (control_request_parse(line, size, &req, &why) == 0) {
		/* A parsed request names itself in [a-z0-9._-] and NUL-terminates. */
		size_t n = strnlen(req.name, sizeof(req.name));

		if (n == 0 || n >= sizeof(req.name) || strspn(req.name, "abcdefghijklmnopqrstuvwxyz0123456789._-") != n)
			abort();
		if (req.target < 0 || req.target > 254 || why.text[0])
			abort();
	} else if (!why.text[0]) {
		abort();  /* every refusal says why */
	}
	return 0;
}
