/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for what the relayer reads from anyone on the network: an HTTP request
 * head (net/http-server.c) and its {"to","data"} body (registry/relay-request.c), then the rate
 * limiter keyed on what the body names, and the calldata as the relayer checks it before
 * counting: a registration's record, a signed leader call and its signer.
 */
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"
#include "net/net.h"
#include "registry/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The decoders the relayer runs on calldata from anyone (selector included). */
static void check_calldata(const uint8_t *data, size_t len)
{
	static const uint8_t contract[20] = { 0x5f };
	struct registry_record rec;
	struct registry_leader_call call;
	struct err_detail why = { "" };
	uint8_t signer[20];

	if (registry_decode_register_call(data, len, &rec, &why) == 0) {
		if (!rec.endpoint || strlen(rec.endpoint) > REGISTRY_ENDPOINT_MAX || rec.token_id)
			abort();
		registry_record_verify(&rec, 1, contract, contract);
		registry_record_clear(&rec);
	} else if (!memchr(why.text, '\0', sizeof(why.text))) {
		abort();
	}
	if (registry_decode_leader_call(data, len, &call) == 0) {
		if (call.action > REGISTRY_LEADER_VOTE || call.nonce)
			abort();
		registry_leader_call_signer(1, contract, &call, signer);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct relayer_limiter limiter;
	struct http_request req;
	struct relayer_request q;
	struct err_detail why = { "" };
	int r;

	if (!limiter.slots && relayer_limiter_init(&limiter, 8, 2, 1000) < 0)
		abort();
	r = http_parse_head(data, size, 8192, 17000, &req);
	if (r == 0) {
		if (req.header_len > size || req.header_len > 8192 || req.content_length > 17000)
			abort();
		if (req.method[sizeof(req.method) - 1] || req.path[sizeof(req.path) - 1])
			abort();
		/* The body as the server hands it over: what arrived after the head, up to the length. */
		size_t avail = size - req.header_len;
		size_t n = req.content_length < avail ? req.content_length : avail;

		data += req.header_len;
		size = n;
	} else if (r != 1 && (r < 400 || r > 431)) {
		abort();
	}
	/* Also every input as a bare body, whatever its head said. */
	if (relayer_parse_request((const char *)data, size, 4096, &q, &why) == 0) {
		if (q.len < 4 || q.len > 4096 || memcmp(q.selector, q.data, 4))
			abort();
		relayer_limiter_take(&limiter, q.subject, size);
		check_calldata(q.data, q.len);
		relayer_request_clear(&q);
	} else if (!why.text[0] || !memchr(why.text, '\0', sizeof(why.text))) {
		abort();
	}
	return 0;
}
