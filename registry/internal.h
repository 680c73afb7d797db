/* SPDX-License-Identifier: MIT */
/* registry/'s entry points for the unit tests and fuzz targets; not part of its interface. */
#ifndef DSTACK_P2P_REGISTRY_INTERNAL_H
#define DSTACK_P2P_REGISTRY_INTERNAL_H

#include "common/common.h"
#include "registry/registry.h"

/*
 * Decode getPeers() return data (Peer[]). Entries with wrong byte lengths, an unknown
 * mode, a token id above 2^64 or an empty, over-long or NUL-holding endpoint are skipped;
 * the first max_skips of them are described in skips. -EBADMSG when the array itself is
 * malformed or any entry reaches outside the data (a truncated reply fails as a whole),
 * -E2BIG past REGISTRY_MAX_PEERS. Free *peers with registry_records_free.
 */
int registry_decode_peers(const uint8_t *data, size_t len, struct registry_record **peers, size_t *n,
			  struct registry_skip *skips, size_t max_skips, size_t *nskips);

/*
 * Decode the return data of getPeerByToken / getPeer (abi.encode(Peer)). -EPROTO when an
 * offset or length points outside data, -EBADMSG for a malformed field (why, may be NULL, says which),
 * -ENOMEM. Clear *p with registry_record_clear (done on failure).
 */
int registry_decode_peer(const uint8_t *data, size_t len, struct registry_record *p,
			 struct err_detail *why);

#endif
