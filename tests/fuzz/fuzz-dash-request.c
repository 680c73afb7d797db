/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: a request to `dstack-p2p cluster serve` as the shared server parses its head
 * and the dashboard routes it. Whatever the bytes, nothing crashes, a routed file is one of
 * the page's three names, an accepted Last-Event-ID stays below 10^18, and a loopback-only
 * server answers only a Host that names a loopback address.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/dash-request.c"
#include "net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request req;
	struct dash_target t, local;

	if (http_parse_head(data, size, 8192, 0, &req) != 0)
		return 0;
	if (dash_route_request(&req, false, &t) != 0)
		return 0;
	if (dash_route_request(&req, true, &local) == 0 && strncmp(req.host, "127.", 4) &&
	    strncasecmp(req.host, "localhost", 9) && strncmp(req.host, "[::1]", 5))
		abort();
	if (t.route == DASH_FILE && strcmp(t.file, "index.html") && strcmp(t.file, "app.js") &&
	    strcmp(t.file, "style.css"))
		abort();
	if (t.after >= 1000000000000000000ull)
		abort();
	return 0;
}
