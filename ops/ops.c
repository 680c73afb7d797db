/* SPDX-License-Identifier: MIT */
/* The operator's handle: the RPC, the chain it serves, the cluster contract, caps and key. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops/internal.h"

void ops_set_error(struct ops *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(o->error, sizeof(o->error), fmt, ap);
	va_end(ap);
}

int ops_open(const struct ops_config *cfg, struct ops **out)
{
	struct ops *o = calloc(1, sizeof(*o));
	int r;

	*out = o;
	if (!o)
		return -ENOMEM;
	o->caps = cfg->caps;
	o->key = cfg->key;
	o->ask_password = cfg->ask_password;
	if (cfg->contract_hex) {
		if (ops_parse_address(cfg->contract_hex, o->contract) < 0) {
			ops_set_error(o, "contract '%s' is not a 20-byte 0x address", cfg->contract_hex);
			return -EINVAL;
		}
		o->have_contract = true;
	}
	r = eth_rpc_new(&(struct eth_rpc_config){ .urls = cfg->rpc_urls,
						  .timeout_ms = cfg->timeout_ms,
						  .errors = cfg->errors },
			&o->rpc);
	if (r < 0) {
		ops_set_error(o, "bad --rpc '%s': %s", cfg->rpc_urls ? cfg->rpc_urls : "", errstr(r));
		return -EINVAL;
	}
	r = eth_chain_id(o->rpc, &o->chain_id);
	if (r < 0) {
		ops_set_error(o, "eth_chainId: %s", eth_rpc_error(o->rpc));
		return r;
	}
	if (cfg->expected_chain_id && cfg->expected_chain_id != o->chain_id) {
		ops_set_error(o,
			      "the RPC serves chain %" PRIu64 ", not the expected %" PRIu64 " (--chain-id)",
			      o->chain_id, cfg->expected_chain_id);
		return -EXDEV;
	}
	o->caps.chain_id = o->chain_id;
	return 0;
}

void ops_free(struct ops *o)
{
	if (!o)
		return;
	eth_rpc_free(o->rpc);
	free(o);
}

const char *ops_error(const struct ops *o)
{
	return o ? o->error : "";
}

struct eth_rpc *ops_rpc(const struct ops *o)
{
	return o->rpc;
}

uint64_t ops_chain_id(const struct ops *o)
{
	return o->chain_id;
}

const uint8_t *ops_contract(const struct ops *o)
{
	return o->have_contract ? o->contract : NULL;
}
