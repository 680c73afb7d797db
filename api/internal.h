/* SPDX-License-Identifier: MIT */
/* api: internals shared with the tests (not installed, not exported). */
#ifndef DSTACK_P2P_API_INTERNAL_H
#define DSTACK_P2P_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* Where the agent listens unless told otherwise (the agent's own default). */
/* Token ids 1..254: never more peers than that. */
#define API_MAX_PEERS 254
#define API_DEFAULT_CONTROL "/run/dstack-p2p/control.sock"

/* The control socket: flag (may be NULL) > $DSTACK_P2P_CONTROL > the default. */
const char *api_control_path(const char *flag);
/*
 * Ask the running agent (docs/control-protocol.md): request is a bare word ("peers",
 * "status") or a JSON request line. The reply lands in out, NUL-terminated.
 * timeout_ms bounds the whole exchange. -ENOENT/-ECONNREFUSED when no agent listens,
 * -ETIMEDOUT, -EMSGSIZE past out's bound, -ENOMEM.
 */
int api_control_query(const char *path, const char *request, struct buf *out, int timeout_ms);
/* Open a "watch" stream; each line read from the fd is one JSON peers document. */
int api_control_watch(const char *path);

/* The agent's peers document, reduced to what the API returns. */
struct peers_doc {
	bool registered;
	char contract[43];
	char mode[16];
	char **peers;
	size_t n;
};

/*
 * One line of the agent's control socket ("peers" reply or watch stream), not
 * necessarily NUL-terminated. 0, -EBADMSG for anything malformed, -EPROTO for a
 * "version" other than 1, -ENOMEM. On error
 * d is empty; on success free it with peers_doc_clear.
 */
int peers_doc_parse(const char *text, size_t len, struct peers_doc *d);

/*
 * The agent's reply to a leader action (not necessarily NUL-terminated): 0 with the
 * transaction's hash in tx ("" for none), the error object's code as -errno (-EACCES
 * forbidden, -EAGAIN rate_limited, -EDQUOT over_cap, -EPERM refused, -ENOLINK
 * not_registered, -ENOKEY no_sender, -EIO chain), -EBADMSG for anything else.
 */
int api_action_reply(const char *text, size_t len, char tx[static 67]);
void peers_doc_clear(struct peers_doc *d);

#endif
