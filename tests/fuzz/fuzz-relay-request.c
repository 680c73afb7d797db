/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for what the relayer reads from anyone on the network: an HTTP request
 * head (common/http-server.c) and its {"to","data"} body (registry/relay-request.c), then the rate
 * limiter keyed on what the body names.
 */
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"
#include "registry/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct relay_limiter limiter;
	struct http_request req;
	struct relay_request q;
	struct err_detail why = { "" };
	int r;

	if (!limiter.slots && relay_limiter_init(&limiter, 8, 2, 1000) < 0)
		abort();
	r = http_parse_head(data, size, 8192, 17000, &req);
	if (r == 0) {
		if (req.header_len > size || req.header_len > 8192 || req.content_length > 17000)
			abort();
		if (req.method[sizeof(req.method) - 1] || req.path[sizeof(req.path) - 1])
			abort();
		/* The body as the server hands it over: what arrived after the head, up to the length. */
		size_t avail = size - req.header_len;
		size_t n = req.content_length < avail ? req.content_length : avail;

		data += req.header_len;
		size = n;
	} else if (r != 1 && (r < 400 || r > 431)) {
		abort();
	}
	/* Also every input as a bare body, whatever its head said. */
	if (relay_parse_request((const char *)data, size, 4096, &q, &why) == 0) {
		if (q.len < 4 || q.len > 4096 || memcmp(q.selector, q.data, 4))
			abort();
		relay_limiter_take(&limiter, q.subject, size);
		relay_request_clear(&q);
	} else if (!why.text[0] || !memchr(why.text, '\0', sizeof(why.text))) {
		abort();
	}
	return 0;
}
