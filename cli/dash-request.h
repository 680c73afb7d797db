/* SPDX-License-Identifier: MIT */
/* What a request to `dstack-p2p cluster serve` asks for: a file of the page or an API. */
#ifndef DSTACK_P2P_CLI_DASH_REQUEST_H
#define DSTACK_P2P_CLI_DASH_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"
#include "net/net.h"

enum dash_route {
	DASH_NONE,      /* not routed (what an error leaves) */
	DASH_FILE,      /* one of the page's files: target.file, target.type */
	DASH_STATUS,    /* /api/status: the document of `cluster status --json` */
	DASH_LISTS,     /* /api/lists: compose hashes and devices, folded from events */
	DASH_ABI,       /* /api/abi: selectors of the page's actions and the known errors */
	DASH_EVENTS,    /* /api/events: server-sent events after target.after */
};

struct dash_target {
	enum dash_route route;
	const char *file;   /* DASH_FILE: a name from a fixed list, never from the request */
	const char *type;   /* its Content-Type */
	uint64_t after;     /* DASH_EVENTS: Last-Event-ID, 0 when absent */
};

/*
 * Route a parsed request. 0 and *t filled; 405 for a method other than GET (and HEAD is
 * not served); 404 for any other path; 400 for a Last-Event-ID that is not a decimal
 * number below 10^18. A query string is ignored. With loopback_only, 403 unless the Host
 * header names a loopback address (localhost, 127.x.x.x, [::1], any port): a web site whose
 * name an attacker re-points at 127.0.0.1 (DNS rebinding) is not served.
 */
int dash_route_request(const struct http_request *req, bool loopback_only, struct dash_target *t);

#endif
