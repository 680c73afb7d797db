/* SPDX-License-Identifier: MIT */
/* Private helpers shared by the files of chain/; not part of the module's interface. */
#ifndef DSTACK_P2P_CHAIN_INTERNAL_H
#define DSTACK_P2P_CHAIN_INTERNAL_H

#include "chain/chain.h"
#include "common/common.h"

/*
 * One request/reply over a raw unix stream socket (geth/anvil IPC); a failure says what
 * in why (may be NULL). abort_flag (may be NULL) as in struct http_target: -ECANCELED
 * once it is set.
 */
int rpc_ipc_exchange(const char *path, const char *req, size_t req_len, long timeout_ms,
		     const volatile sig_atomic_t *abort_flag, struct buf *reply, struct err_detail *why);

/* The sender's counters in the client's stats (send.c counts, rpc.c keeps them). */
struct eth_rpc_stats *rpc_stats(struct eth_rpc *rpc);

/* The custom errors the client was configured with (NULL: none). */
const struct eth_error_table *rpc_error_table(const struct eth_rpc *rpc);

/* A JSON-RPC error of a call that runs code (eth_call, eth_estimateGas, sending): the
 * decoded revert when the error carries data, else the node's code and message. */
void rpc_set_execution_error(struct eth_rpc *rpc, const char *method, const struct eth_rpc_call *c);
/*
 * An eth_call reply's result as bytes, appended to out (NULL: only checked). 0, -EBADMSG
 * (not hex data; the RPC's error says so) or -ENOMEM.
 */
int eth_call_result(struct eth_rpc *rpc, const struct eth_rpc_call *c, struct buf *out);

/*
 * Match a reply (one object or a batch array) to calls with ids first_id .. first_id+n-1.
 * -EINVAL/-EPROTO when text is not JSON-RPC; calls without a reply get error -EPROTO.
 */
int eth_rpc_parse_reply(const char *text, size_t len, uint64_t first_id,
			struct eth_rpc_call *calls, size_t n);

#endif
