/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the guest agent reply parsers (Info, GetKey, GetQuote) in attest/. */
#include <stdlib.h>
#include <string.h>

#include "attest/internal.h"
#include "common/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct attest_kms_signatures chain;
	struct attest_info info;
	struct attest_quote q;
	uint8_t key[32];
	struct err_detail why;
	char *text;

	/* A copy of exactly size bytes, no NUL: ASan catches any read past the reply. */
	text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);

	if (attest_parse_info_reply(text, size, &info, &why) == 0) {
		if (!info.app_name || !info.tcb_info || !info.cloud_product)
			abort();
		attest_info_clear(&info);
	} else if (!why.text[0]) {
		abort();  /* every rejection says why */
	}
	why.text[0] = '\0';
	if (attest_parse_key_reply(text, size, key, &chain, &why) < 0 && !why.text[0])
		abort();
	why.text[0] = '\0';
	if (attest_parse_quote_reply(text, size, &q, &why) == 0) {
		if (!q.quote || !q.quote_len || !q.event_log)
			abort();
		attest_quote_clear(&q);
	} else if (!why.text[0]) {
		abort();
	}
	free(text);
	return 0;
}
