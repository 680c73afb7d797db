/* SPDX-License-Identifier: MIT */
/* The guest agent reply parsers on hand-written replies: real variants and malformed ones. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "attest/internal.h"

#define HEX20 "5bb4ff9a3837357f19dc176407a5709c62eb6c56"
#define HEX32 "0101010101010101010101010101010101010101010101010101010101010101"
#define SIG65 "02020202020202020202020202020202020202020202020202020202020202020202020202020202" \
	      "02020202020202020202020202020202020202020202020200"

static int parse_info(const char *text, struct attest_info *info, struct err_detail *why)
{
	return attest_parse_info_reply(text, strlen(text), info, why);
}

static int parse_key(const char *text, uint8_t key[32], struct attest_kms_signatures *c,
		     struct err_detail *why)
{
	return attest_parse_key_reply(text, strlen(text), key, c, why);
}

Test(attest_replies, info_with_only_the_ids)
{
	struct attest_info info;
	struct err_detail why = { "" };

	cr_assert_eq(parse_info("{\"app_id\":\"" HEX20 "\",\"instance_id\":\"0x" HEX20 "\"}",
				&info, &why), 0, "%s", why.text);
	cr_assert_eq(info.app_id[0], 0x5b);
	cr_assert_eq(info.instance_id[19], 0x56);
	cr_assert(!info.has_compose_hash);
	cr_assert_str_eq(info.tcb_info, "");
	attest_info_clear(&info);
}

Test(attest_replies, info_field_errors_name_the_field)
{
	struct attest_info info;
	struct err_detail why = { "" };

	cr_assert_eq(parse_info("{\"instance_id\":\"" HEX20 "\"}", &info, &why), -EBADMSG);
	cr_assert_str_eq(why.text, "reply has no field 'app_id'");
	cr_assert_eq(parse_info("{\"app_id\":\"" HEX20 "\",\"instance_id\":\"\"}", &info, &why),
		     -EBADMSG);
	cr_assert_not_null(strstr(why.text, "no_instance_id"));
	cr_assert_eq(parse_info("{\"app_id\":\"" HEX20 "\",\"instance_id\":\"" HEX20
				"\",\"compose_hash\":\"abcd\"}", &info, &why), -EBADMSG);
	cr_assert_not_null(strstr(why.text, "'compose_hash': 4 hex digits, expected 64"));
	cr_assert_eq(parse_info("{\"app_id\":\"" HEX20 "\",\"instance_id\":\"" HEX20
				"\",\"tcb_info\":5}", &info, &why), -EBADMSG);
	cr_assert_not_null(strstr(why.text, "tcb_info"));
	cr_assert_eq(parse_info("[1,2]", &info, &why), -EBADMSG);
	cr_assert_str_eq(why.text, "reply is not a JSON object");
}

Test(attest_replies, key_with_and_without_kms_signature)
{
	struct attest_kms_signatures c;
	uint8_t key[32];
	struct err_detail why = { "" };

	cr_assert_eq(parse_key("{\"key\":\"" HEX32 "\",\"signature_chain\":[\"" SIG65 "\",\"0x" SIG65
			       "\"]}", key, &c, &why), 0, "%s", why.text);
	cr_assert(c.has_kms_signature);
	cr_assert_eq(key[0], 1);
	cr_assert_eq(c.kms_signature[0], 2);
	/* A local key provider leaves chain[1] empty. */
	cr_assert_eq(parse_key("{\"key\":\"" HEX32 "\",\"signature_chain\":[\"" SIG65 "\",\"\"]}",
			       key, &c, &why), 0, "%s", why.text);
	cr_assert(!c.has_kms_signature);
}

Test(attest_replies, key_errors_leave_no_key)
{
	struct attest_kms_signatures c;
	uint8_t key[32];
	struct err_detail why = { "" };

	cr_assert_eq(parse_key("{\"key\":\"" HEX32 "\",\"signature_chain\":[\"" SIG65 "\",\"" SIG65
			       "\",\"" SIG65 "\"]}", key, &c, &why), -EBADMSG);
	cr_assert_str_eq(why.text, "signature_chain has 3 entries, expected 2");
	for (int i = 0; i < 32; i++)
		cr_assert_eq(key[i], 0, "the key is wiped when the reply is refused");
	cr_assert_eq(parse_key("{\"key\":\"" HEX32 "\",\"signature_chain\":[\"\",\"" SIG65 "\"]}",
			       key, &c, &why), -EBADMSG);
	cr_assert_not_null(strstr(why.text, "app signature"));
	cr_assert_eq(parse_key("{\"key\":\"" HEX32 "\",\"signature_chain\":[\"0202\"]}", key, &c,
			       &why), -EBADMSG);
	cr_assert_str_eq(why.text, "signature_chain[0] is not 65 bytes of hex");
	cr_assert_eq(parse_key("{\"key\":\"zz" HEX32 "\"}", key, &c, &why), -EBADMSG);
	cr_assert_eq(parse_key("{\"key\":\"" HEX32 "\"} trailing", key, &c, &why), -EBADMSG);
	cr_assert_str_eq(why.text, "reply is not JSON");
}

Test(attest_replies, quote_report_data_is_bounded)
{
	struct attest_quote q;
	struct err_detail why = { "" };
	const char *ok = "{\"quote\":\"0400\",\"report_data\":\"aabb\",\"event_log\":\"[]\"}";
	const char *long_rd = "{\"quote\":\"0400\",\"report_data\":\"" HEX32 HEX32 "00\"}";

	cr_assert_eq(attest_parse_quote_reply(ok, strlen(ok), &q, &why), 0, "%s", why.text);
	cr_assert_eq(q.quote_len, 2);
	cr_assert_eq(q.report_data[1], 0xbb);
	cr_assert_str_eq(q.event_log, "[]");
	attest_quote_clear(&q);
	cr_assert_eq(attest_parse_quote_reply(long_rd, strlen(long_rd), &q, &why),
		     -EBADMSG);
	cr_assert_not_null(strstr(why.text, "report_data"));
}
