/* SPDX-License-Identifier: MIT */
/* attest/'s entry points for the unit tests and fuzz targets; not part of its interface. */
#ifndef DSTACK_P2P_ATTEST_INTERNAL_H
#define DSTACK_P2P_ATTEST_INTERNAL_H

#include "attest/attest.h"
#include "common/common.h"

/* Whole-request timeout (default 10 s); bounds a hung agent. */
void attest_client_set_timeout(struct attest_client *c, long timeout_ms);

/* "unix:/var/run/dstack.sock" or the base URL, for messages. */
const char *attest_client_endpoint(const struct attest_client *c);

/*
 * The reply parsers, exposed for tests and fuzzing. They accept any bytes, return
 * -EBADMSG with a reason in why (naming the field) when the reply is malformed, and
 * -ENOMEM; they never read past len.
 */
int attest_parse_info_reply(const char *body, size_t len, struct attest_info *info,
			    struct err_detail *why);

int attest_parse_key_reply(const char *body, size_t len, uint8_t key_out[static 32],
			   struct attest_kms_signatures *chain, struct err_detail *why);

int attest_parse_quote_reply(const char *body, size_t len, struct attest_quote *q,
			     struct err_detail *why);

#endif
