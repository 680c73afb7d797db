/* SPDX-License-Identifier: MIT */
/* ops/'s handle, for its own files; not part of its interface. */
#ifndef DSTACK_P2P_OPS_INTERNAL_H
#define DSTACK_P2P_OPS_INTERNAL_H

#include "ops/ops.h"

struct ops {
	struct eth_rpc *rpc;
	uint64_t chain_id;
	uint8_t contract[20];
	bool have_contract;
	struct eth_tx_caps caps;
	struct ops_key_source key;
	ops_password_fn ask_password;
	char error[512];
};

/* Record what went wrong, for ops_error. */
void ops_set_error(struct ops *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
