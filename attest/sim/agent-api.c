/* SPDX-License-Identifier: MIT */
/* The simulated guest-agent API: Info, GetKey, GetQuote, in the real agent's JSON formats. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "attest/attest.h"
#include "attest/sim/sim.h"
#include "chain/chain.h"
#include "common/common.h"

#define SIM_WARNING "SIMULATOR: not a TEE, keys are not protected"

/* Intel's QE vendor id, so quote parsers accept the header. */
static const uint8_t intel_qe_vendor_id[16] = {
	0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
	0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
};

/*
 * TDX quote v4: 48-byte header, 584-byte TD report body whose last 64 bytes are the
 * report data (offset 568), then the signature data. Every measurement is zero and the
 * signature empty: the quote is well formed and obviously not from hardware.
 */
enum {
	QUOTE_HEADER_LEN = 48,
	QUOTE_BODY_LEN = 584,
	QUOTE_REPORT_DATA_OFFSET = QUOTE_HEADER_LEN + 520,
	QUOTE_SIG_DATA_LEN = 64 + 64 + 2 + 4,  /* signature, attestation key, empty cert data */
	QUOTE_LEN = QUOTE_HEADER_LEN + QUOTE_BODY_LEN + 4 + QUOTE_SIG_DATA_LEN,
};

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static void build_fake_quote(uint8_t quote[static QUOTE_LEN], const uint8_t report_data[static 64])
{
	uint8_t *sig = quote + QUOTE_HEADER_LEN + QUOTE_BODY_LEN;

	memset(quote, 0, QUOTE_LEN);
	put_le16(quote, 4);             /* version */
	put_le16(quote + 2, 2);         /* attestation key type: ECDSA-256 with P-256 */
	put_le32(quote + 4, 0x81);      /* TEE type: TDX */
	memcpy(quote + 12, intel_qe_vendor_id, sizeof(intel_qe_vendor_id));
	memcpy(quote + QUOTE_REPORT_DATA_OFFSET, report_data, 64);
	put_le32(sig, QUOTE_SIG_DATA_LEN);
	put_le16(sig + 4 + 128, 5);     /* certification data type 5 (PCK chain), length 0 */
}

static int reply_error(struct buf *out, int status, const char *msg)
{
	buf_reset(out);
	if (buf_printf(out, "{\"error\":") < 0 || json_append_string(out, msg) < 0 ||
	    buf_printf(out, "}") < 0)
		return 500;
	return status;
}

static int append_hex_field(struct buf *out, const char *name, const uint8_t *p, size_t n,
			    bool last)
{
	char hex[2 * 64 + 1];
	int r;

	if (n > 64)
		return -EINVAL;
	hex_encode(hex, p, n);
	r = buf_printf(out, "\"%s\":\"%s\"%s", name, hex, last ? "" : ",");
	secret_wipe(hex, sizeof(hex));  /* GetKey's "key" goes through here */
	return r;
}

/* A nested JSON document carried as a string field (tcb_info, vm_config). */
static int append_json_string_field(struct buf *out, const char *name, const char *doc, bool last)
{
	int r = buf_printf(out, "\"%s\":", name);

	if (!r)
		r = json_append_string(out, doc);
	if (!r && !last)
		r = buf_append(out, ",", 1);
	return r;
}

/*
 * tcb_info, a JSON document carried as a string, with the fields the SDKs' TcbInfo
 * (v0.5) requires. All-zero measurements: nothing was measured.
 */
static int build_tcb_info(const struct sim_agent *a, struct buf *doc)
{
	static const uint8_t zero[48];
	char z48[2 * 48 + 1], z32[2 * 32 + 1], compose[2 * 32 + 1];
	int r;

	hex_encode(z48, zero, 48);
	hex_encode(z32, zero, 32);
	hex_encode(compose, a->compose_hash, 32);
	r = buf_printf(doc, "{\"mrtd\":\"%s\",\"rtmr0\":\"%s\",\"rtmr1\":\"%s\",\"rtmr2\":\"%s\","
		       "\"rtmr3\":\"%s\",\"mr_aggregated\":\"%s\",\"os_image_hash\":\"%s\","
		       "\"compose_hash\":\"%s\",\"device_id\":\"%s\",\"app_compose\":",
		       z48, z48, z48, z48, z48, z32, z32, compose, z32);
	if (!r)
		r = json_append_string(doc, a->app_compose);
	if (!r)
		r = buf_printf(doc, ",\"event_log\":[],\"simulator\":\"" SIM_WARNING "\"}");
	return r ? r : buf_terminate(doc);
}

static int handle_info(const struct sim_agent *a, struct buf *out)
{
	static const uint8_t zero[32];
	char z32[2 * 32 + 1], root[2 * 33 + 1], inner[512];
	uint8_t root33[33];
	struct buf tcb_info;
	int r;

	hex_encode(z32, zero, 32);
	crypto_compress_pubkey(a->kms_root_pub, root33);
	hex_encode(root, root33, 33);
	buf_init(&tcb_info, 16384);

	if ((r = build_tcb_info(a, &tcb_info)) < 0 ||
	    (r = buf_printf(out, "{")) < 0 ||
	    (r = append_hex_field(out, "app_id", a->app_id, 20, false)) < 0 ||
	    (r = append_hex_field(out, "instance_id", a->instance_id, 20, false)) < 0 ||
	    (r = buf_printf(out, "\"app_cert\":\"\",")) < 0 ||
	    (r = append_json_string_field(out, "tcb_info", (const char *)tcb_info.data, false)) < 0 ||
	    (r = buf_printf(out, "\"app_name\":")) < 0 ||
	    (r = json_append_string(out, a->app_name)) < 0 ||
	    (r = buf_printf(out, ",")) < 0 ||
	    (r = append_hex_field(out, "device_id", zero, 32, false)) < 0 ||
	    (r = append_hex_field(out, "mr_aggregated", zero, 32, false)) < 0 ||
	    (r = append_hex_field(out, "os_image_hash", zero, 32, false)) < 0)
		goto out;
	snprintf(inner, sizeof(inner),
		 "{\"name\":\"dstack-sim\",\"id\":\"%s\",\"simulated\":true,\"warning\":\"" SIM_WARNING
		 "\"%s}", root, a->from_fixture ? ",\"fixture\":\"dstack sdk simulator\"" : "");
	if ((r = append_json_string_field(out, "key_provider_info", inner, false)) < 0 ||
	    (r = append_hex_field(out, "compose_hash", a->compose_hash, 32, false)) < 0)
		goto out;
	snprintf(inner, sizeof(inner),
		 "{\"spec_version\":1,\"os_image_hash\":\"%s\",\"simulator\":true}", z32);
	if ((r = append_json_string_field(out, "vm_config", inner, false)) < 0 ||
	    (r = buf_printf(out, "\"cloud_vendor\":\"dstack-sim\","
			    "\"cloud_product\":\"" SIM_WARNING "\"}")) < 0)
		goto out;
	r = 200;
out:
	buf_clear(&tcb_info);
	return r;
}

/* A request's optional string field; "" when absent. Fails only on a non-string. */
static int request_string(const struct json *j, const char *name, char **out)
{
	int i = json_get(j, 0, name);

	if (i < 0) {
		*out = strdup("");
		return *out ? 0 : -ENOMEM;
	}
	return json_strdup(j, i, out);
}

static int handle_get_key(const struct sim_agent *a, const struct json *req, struct buf *out)
{
	char *path = NULL, *purpose = NULL, *algorithm = NULL, hex[2 * 65 + 1];
	uint8_t *key = NULL, pub[64], digest[32], sig[65];
	int status;

	if (request_string(req, "path", &path) < 0 || request_string(req, "purpose", &purpose) < 0 ||
	    request_string(req, "algorithm", &algorithm) < 0) {
		status = reply_error(out, 400, "path, purpose and algorithm must be strings");
		goto out;
	}
	if (*algorithm && strcmp(algorithm, "secp256k1") && strcmp(algorithm, "k256")) {
		status = reply_error(out, 400, "dstack-sim only simulates algorithm secp256k1");
		goto out;
	}
	if (strlen(path) > 1024 || strlen(purpose) > 1024) {
		status = reply_error(out, 400, "path or purpose too long");
		goto out;
	}
	key = secret_alloc(32);
	if (!key || attest_derive_path_key(a->app_sk, path, key) < 0 ||
	    crypto_pubkey_from_secret(key, pub) < 0) {
		status = reply_error(out, 500, "key derivation failed");
		goto out;
	}
	attest_app_message_digest(purpose, pub, digest);
	if (crypto_sign_digest(a->app_sk, digest, sig) < 0) {
		status = reply_error(out, 500, "signing failed");
		goto out;
	}
	status = -ENOMEM;
	if (buf_printf(out, "{") < 0 || append_hex_field(out, "key", key, 32, false) < 0)
		goto out;
	hex_encode(hex, sig, 65);
	if (buf_printf(out, "\"signature_chain\":[\"%s\",", hex) < 0)
		goto out;
	hex_encode(hex, a->kms_signature, 65);
	if (buf_printf(out, "\"%s\"]}", hex) < 0)
		goto out;
	status = 200;
out:
	secret_free(key, 32);
	free(path);
	free(purpose);
	free(algorithm);
	return status;
}

static int handle_get_quote(const struct sim_agent *a, const struct json *req, struct buf *out)
{
	uint8_t report_data[64] = { 0 }, quote[QUOTE_LEN];
	char hex[2 * 64 + 1];
	const char *s;
	size_t len;
	int i;

	i = json_get(req, 0, "report_data");
	if (i >= 0) {
		if (req->tok[i].type != JSON_STRING)
			return reply_error(out, 400, "report_data must be a hex string");
		s = json_raw(req, i, &len);
		/* hex_decode bounds the length, counting bytes whether or not a 0x comes first. */
		switch (hex_decode(report_data, sizeof(report_data), s, len)) {
		case -EMSGSIZE:
			return reply_error(out, 400, "report_data is longer than 64 bytes");
		case -EINVAL:
			return reply_error(out, 400, "report_data is not hex");
		}
	}
	build_fake_quote(quote, report_data);
	if (buf_printf(out, "{\"quote\":\"") < 0)
		return -ENOMEM;
	for (size_t k = 0; k < QUOTE_LEN; k += 64) {
		size_t n = QUOTE_LEN - k < 64 ? QUOTE_LEN - k : 64;

		hex_encode(hex, quote + k, n);
		if (buf_append(out, hex, 2 * n) < 0)
			return -ENOMEM;
	}
	hex_encode(hex, report_data, 64);
	if (buf_printf(out, "\",\"event_log\":\"[]\",\"report_data\":\"%s\","
			    "\"vm_config\":\"{\\\"simulator\\\":true}\"}", hex) < 0)
		return -ENOMEM;
	(void)a;
	return 200;
}

int sim_handle_request(const struct sim_agent *agent, const char *path, const char *content_type,
		       const char *body, size_t body_len, struct buf *out)
{
	struct json req = { 0 };
	int status;

	buf_reset(out);
	/* The real agent parses a body without this header as protobuf, and fails. */
	if (body_len && (!content_type || strncasecmp(content_type, "application/json", 16)))
		return reply_error(out, 400, "Content-Type must be application/json "
				   "(the agent parses other bodies as protobuf)");
	if (body_len && (json_parse(&req, body, body_len, 64) < 0 || req.tok[0].type != JSON_OBJECT)) {
		json_clear(&req);
		return reply_error(out, 400, "request body is not a JSON object");
	}
	if (!strcmp(path, "/Info"))
		status = handle_info(agent, out);
	else if (!strcmp(path, "/GetKey") && body_len)
		status = handle_get_key(agent, &req, out);
	else if (!strcmp(path, "/GetKey"))
		status = reply_error(out, 400, "GetKey needs a JSON body with path and purpose");
	else if (!strcmp(path, "/GetQuote") && body_len)
		status = handle_get_quote(agent, &req, out);
	else if (!strcmp(path, "/GetQuote"))
		status = reply_error(out, 400, "GetQuote needs a JSON body with report_data");
	else
		status = reply_error(out, 404, "no such method in dstack-sim (Info, GetKey, GetQuote)");
	json_clear(&req);
	if (status < 0)
		status = reply_error(out, 500, "out of memory building the reply");
	return status;
}
