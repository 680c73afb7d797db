/* SPDX-License-Identifier: MIT */
/* The status document as `dstack-p2p status` prints it: normalized, with its health. */
#ifndef DSTACK_P2P_CLI_STATUS_DOC_H
#define DSTACK_P2P_CLI_STATUS_DOC_H

#include <stdbool.h>
#include <stddef.h>

#include "common/common.h"

struct status_health {
	bool healthy;
	char problems[512];   /* "not registered; RPC failing: <why>; 2 records rejected" ("" when healthy) */
};

/*
 * Rewrite the agent's status document (text, len: outside input, not trusted) for
 * output: every id 0x-prefixed, fields not known yet (no guest agent, no chain read
 * yet, tls mode) null instead of 0 or "", and "healthy" and "problems" added. A node
 * is healthy when an agent answered (standalone false), its own record is registered,
 * the registry has been read and the RPC works, and no record was rejected.
 * out gets a NUL-terminated document. Returns 0, -EBADMSG (not a JSON object),
 * -E2BIG (too many tokens) or -ENOMEM.
 */
int status_doc_normalize(const char *text, size_t len, bool standalone, struct buf *out,
			 struct status_health *health);

#endif
