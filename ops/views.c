/* SPDX-License-Identifier: MIT */
/* Views of a contract in JSON-RPC batches: many eth_calls at one block in a few round trips. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

/* eth_calls per JSON-RPC batch: providers cap batches at 100 or so. */
#define VIEWS_PER_BATCH 50

void ops_views_init(struct ops_view *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		buf_init(&v[i].data, 0);
		buf_init(&v[i].out, 0);
		v[i].ok = false;
	}
}

void ops_views_free(struct ops_view *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		buf_clear(&v[i].data);
		buf_clear(&v[i].out);
	}
}

int ops_calldata_word(struct buf *b, const char *sig, const uint8_t *word)
{
	uint8_t sel[4];
	int r;

	abi_selector(sig, sel);
	r = buf_append(b, sel, 4);
	return r == 0 && word ? buf_append(b, word, 32) : r;
}

/* Params of one eth_call: [{"to":..,"data":..},tag]. */
static char *view_params(const uint8_t to[static 20], const struct buf *data, const char *tag)
{
	size_t n = 2 * data->len + 128 + strlen(tag);
	char *p = malloc(n), to_hex[41];
	int off;

	if (!p)
		return NULL;
	hex_encode(to_hex, to, 20);
	off = snprintf(p, n, "[{\"to\":\"0x%s\",\"data\":\"0x", to_hex);
	hex_encode(p + off, data->data, data->len);
	snprintf(p + off + 2 * data->len, n - (size_t)off - 2 * data->len, "\"},\"%s\"]", tag);
	return p;
}

static int run_batch(struct eth_rpc *rpc, const uint8_t to[static 20], const char *tag, struct ops_view *v,
		     size_t n)
{
	struct eth_rpc_call calls[VIEWS_PER_BATCH] = { 0 };
	char *params[VIEWS_PER_BATCH] = { 0 };
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		params[i] = view_params(to, &v[i].data, tag);
		calls[i].method = "eth_call";
		calls[i].params = params[i];
		if (!params[i])
			r = -ENOMEM;
	}
	if (r == 0)
		r = eth_rpc_batch(rpc, calls, n);
	for (size_t i = 0; i < n; i++) {
		uint8_t *bytes;
		size_t len;

		if (r == 0 && !calls[i].error && calls[i].result_type == JSON_STRING &&
		    eth_parse_data(calls[i].result, calls[i].result_len, calls[i].result_len, &bytes, &len) ==
			    0) {
			v[i].ok = buf_append(&v[i].out, bytes, len) == 0;
			free(bytes);
		}
		eth_rpc_call_clear(&calls[i]);
		free(params[i]);
	}
	return r;
}

int ops_views_run(struct eth_rpc *rpc, const uint8_t to[static 20], const char *tag, struct ops_view *v,
		  size_t n)
{
	for (size_t at = 0; at < n; at += VIEWS_PER_BATCH) {
		size_t k = n - at < VIEWS_PER_BATCH ? n - at : VIEWS_PER_BATCH;
		int r = run_batch(rpc, to, tag, v + at, k);

		if (r < 0)
			return r;
	}
	return 0;
}
