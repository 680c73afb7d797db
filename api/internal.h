/* SPDX-License-Identifier: MIT */
/* api: internals shared with the tests (not installed, not exported). */
#ifndef DSTACK_P2P_API_INTERNAL_H
#define DSTACK_P2P_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

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
void peers_doc_clear(struct peers_doc *d);

#endif
