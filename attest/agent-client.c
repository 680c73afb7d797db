/* SPDX-License-Identifier: MIT */
/* The dstack guest agent client: endpoint resolution, Info/GetKey/GetQuote, reply parsers. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attest/internal.h"
#include "common/common.h"
#include "net/net.h"

/* The SDKs' search order when neither an endpoint nor the env variable is given. */
static const char *const standard_sockets[] = {
	"/var/run/dstack.sock",
	"/run/dstack.sock",
	"/var/run/dstack/dstack.sock",
	"/run/dstack/dstack.sock",
};

/* A quote is ~5 KiB, but Info's tcb_info and GetQuote's event log grow with the boot. */
#define AGENT_MAX_REPLY   (4u << 20)
#define AGENT_MAX_TOKENS  4096
#define AGENT_TIMEOUT_MS  10000
/* How much of an agent's error text we repeat. */
#define AGENT_ERROR_SHOWN 200

struct attest_client {
	struct http_target target;
	char *location;       /* socket path or base URL; target points into it */
	char *label;          /* "unix:<path>" or the URL */
	char error[512];
};

static bool is_url(const char *s)
{
	return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8);
}

/* A socket path as dstack-sim prints it ("unix:/run/x.sock", also "unix:///run/x.sock"): the path. */
static const char *strip_unix_scheme(const char *s)
{
	if (strncmp(s, "unix:", 5))
		return s;
	s += 5;
	return !strncmp(s, "///", 3) ? s + 2 : s;
}

static const char *resolve_endpoint(const char *explicit_endpoint)
{
	const char *env = getenv(ATTEST_AGENT_ENV);

	if (explicit_endpoint && *explicit_endpoint)
		return strip_unix_scheme(explicit_endpoint);
	if (env && *env)
		return strip_unix_scheme(env);
	for (size_t i = 0; i < ARRAY_SIZE(standard_sockets); i++)
		if (access(standard_sockets[i], F_OK) == 0)
			return standard_sockets[i];
	return standard_sockets[0];
}

int attest_client_new(const char *endpoint, struct attest_client **out)
{
	const char *where = resolve_endpoint(endpoint);
	struct attest_client *c;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->location = strdup(where);
	if (!c->location || asprintf(&c->label, "%s%s", is_url(where) ? "" : "unix:", where) < 0) {
		c->label = NULL;
		attest_client_free(c);
		return -ENOMEM;
	}
	if (is_url(where))
		c->target.base_url = c->location;
	else
		c->target.unix_socket = c->location;
	c->target.timeout_ms = AGENT_TIMEOUT_MS;
	c->target.max_reply = AGENT_MAX_REPLY;
	*out = c;
	return 0;
}

void attest_client_free(struct attest_client *c)
{
	if (!c)
		return;
	free(c->location);
	free(c->label);
	free(c);
}

void attest_client_set_timeout(struct attest_client *c, long timeout_ms)
{
	c->target.timeout_ms = timeout_ms > 0 ? timeout_ms : AGENT_TIMEOUT_MS;
	/* The connect timeout (default 3 s) never outlasts the whole request. */
	c->target.connect_timeout_ms = c->target.timeout_ms < 3000 ? c->target.timeout_ms : 0;
}

const char *attest_client_endpoint(const struct attest_client *c)
{
	return c->label;
}

const char *attest_client_error(const struct attest_client *c)
{
	return c->error[0] ? c->error : "no error";
}

static void __attribute__((format(printf, 3, 4)))
set_error(struct attest_client *c, const char *method, const char *fmt, ...)
{
	int n;
	va_list ap;

	n = snprintf(c->error, sizeof(c->error), "guest agent at %s: %s: ", c->label, method);
	if (n < 0 || (size_t)n >= sizeof(c->error))
		return;
	va_start(ap, fmt);
	vsnprintf(c->error + n, sizeof(c->error) - n, fmt, ap);
	va_end(ap);
}

/* May this process connect to the socket (write permission, with the effective ids)? */
static bool socket_denied(const struct attest_client *c)
{
	return c->target.unix_socket && faccessat(AT_FDCWD, c->target.unix_socket, W_OK, AT_EACCESS) < 0 &&
	       errno == EACCES;
}

static void set_denied(struct attest_client *c, const char *method)
{
	set_error(c, method, "permission denied on the socket: the agent runs as root (or as a "
		  "user the socket's owner lets write to it)");
}

int attest_client_check_access(struct attest_client *c)
{
	c->error[0] = '\0';
	if (!socket_denied(c))
		return 0;
	set_denied(c, "connect");
	return -EACCES;
}

/* ---- reply parsers ---------------------------------------------------------------------- */

/* The reply must be one JSON object (token 0); -EBADMSG with the reason otherwise. */
static int parse_object(struct json *j, const char *body, size_t len, struct err_detail *why)
{
	int r = json_parse(j, body, len, AGENT_MAX_TOKENS);

	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		err_detail_set(why, r == -E2BIG ? "reply has too many JSON tokens" : "reply is not JSON");
		return -EBADMSG;
	}
	if (j->ntok < 1 || j->tok[0].type != JSON_OBJECT) {
		json_clear(j);
		err_detail_set(why, "reply is not a JSON object");
		return -EBADMSG;
	}
	return 0;
}

/*
 * Hex byte field: exactly n bytes, or (when may_be_empty) absent/"" which leaves out
 * zeroed and *present false. The field's value is never quoted in the reason: it may
 * be key material.
 */
static int hex_field(const struct json *j, const char *name, uint8_t *out, size_t n,
		     bool may_be_empty, bool *present, struct err_detail *why)
{
	int i = json_get(j, 0, name);
	const char *s;
	size_t len;

	memset(out, 0, n);
	if (present)
		*present = false;
	if (i < 0 || json_is_null(j, i)) {
		if (may_be_empty)
			return 0;
		err_detail_set(why, "reply has no field '%s'", name);
		return -EBADMSG;
	}
	if (j->tok[i].type != JSON_STRING) {
		err_detail_set(why, "reply field '%s' is not a string", name);
		return -EBADMSG;
	}
	s = json_raw(j, i, &len);
	if (len == 0 && may_be_empty)
		return 0;
	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		len -= 2;
	}
	if (len != 2 * n) {
		err_detail_set(why, "reply field '%s': %zu hex digits, expected %zu", name, len,
			2 * n);
		return -EBADMSG;
	}
	if (hex_decode_exact(out, n, s, len) < 0) {
		err_detail_set(why, "reply field '%s' is not hex", name);
		return -EBADMSG;
	}
	if (present)
		*present = true;
	return 0;
}

/* Optional string field: "" when absent or null. */
static int string_field(const struct json *j, const char *name, char **out, struct err_detail *why)
{
	int i = json_get(j, 0, name), r;

	if (i < 0 || json_is_null(j, i)) {
		*out = strdup("");
		return *out ? 0 : -ENOMEM;
	}
	r = json_strdup(j, i, out);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		err_detail_set(why, "reply field '%s' is not a valid string", name);
		return -EBADMSG;
	}
	return 0;
}

int attest_parse_info_reply(const char *body, size_t len, struct attest_info *info,
			    struct err_detail *why)
{
	const struct {
		const char *name;
		char **dst;
	} strings[] = {
		{ "app_name", &info->app_name },
		{ "app_cert", &info->app_cert },
		{ "tcb_info", &info->tcb_info },
		{ "key_provider_info", &info->key_provider_info },
		{ "vm_config", &info->vm_config },
		{ "cloud_vendor", &info->cloud_vendor },
		{ "cloud_product", &info->cloud_product },
	};
	struct json j;
	size_t n;
	int i, r;

	memset(info, 0, sizeof(*info));
	r = parse_object(&j, body, len, why);
	if (r < 0)
		return r;
	i = json_get(&j, 0, "instance_id");
	if (i >= 0 && json_raw(&j, i, &n) && n == 0) {
		/* app-compose "no_instance_id": every CVM of the app would share our keys. */
		err_detail_set(why, "instance_id is empty (no_instance_id set in app-compose?); "
			"dstack-p2p needs per-instance keys");
		r = -EBADMSG;
		goto out;
	}
	if ((r = hex_field(&j, "app_id", info->app_id, 20, false, NULL, why)) < 0 ||
	    (r = hex_field(&j, "instance_id", info->instance_id, 20, false, NULL, why)) < 0 ||
	    (r = hex_field(&j, "device_id", info->device_id, 32, true, &info->has_device_id, why)) < 0 ||
	    (r = hex_field(&j, "mr_aggregated", info->mr_aggregated, 32, true,
			   &info->has_mr_aggregated, why)) < 0 ||
	    (r = hex_field(&j, "os_image_hash", info->os_image_hash, 32, true,
			   &info->has_os_image_hash, why)) < 0 ||
	    (r = hex_field(&j, "compose_hash", info->compose_hash, 32, true,
			   &info->has_compose_hash, why)) < 0)
		goto out;
	for (size_t k = 0; k < ARRAY_SIZE(strings); k++) {
		r = string_field(&j, strings[k].name, strings[k].dst, why);
		if (r < 0)
			goto out;
	}
out:
	json_clear(&j);
	if (r < 0)
		attest_info_clear(info);
	return r;
}

void attest_info_clear(struct attest_info *info)
{
	if (!info)
		return;
	free(info->app_name);
	free(info->app_cert);
	free(info->tcb_info);
	free(info->key_provider_info);
	free(info->vm_config);
	free(info->cloud_vendor);
	free(info->cloud_product);
	info->app_name = info->app_cert = info->tcb_info = info->key_provider_info = NULL;
	info->vm_config = info->cloud_vendor = info->cloud_product = NULL;
}

static int signature_at(const struct json *j, int arr, int n, uint8_t out[static 65],
			bool *present, struct err_detail *why)
{
	int i = json_array_at(j, arr, n);
	const char *s;
	size_t len;

	*present = false;
	if (i < 0)
		return 0;
	if (j->tok[i].type != JSON_STRING) {
		err_detail_set(why, "signature_chain[%d] is not a string", n);
		return -EBADMSG;
	}
	s = json_raw(j, i, &len);
	if (len == 0)
		return 0;
	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		len -= 2;
	}
	if (len != 130 || hex_decode_exact(out, 65, s, len) < 0) {
		err_detail_set(why, "signature_chain[%d] is not 65 bytes of hex", n);
		return -EBADMSG;
	}
	*present = true;
	return 0;
}

int attest_parse_key_reply(const char *body, size_t len, uint8_t key_out[static 32],
			   struct attest_kms_signatures *chain, struct err_detail *why)
{
	bool has_app_signature;
	struct json j;
	int arr, r;

	memset(chain, 0, sizeof(*chain));
	r = parse_object(&j, body, len, why);
	if (r < 0)
		return r;
	r = hex_field(&j, "key", key_out, 32, false, NULL, why);
	if (r < 0)
		goto out;
	r = -EBADMSG;
	arr = json_get(&j, 0, "signature_chain");
	if (arr < 0 || j.tok[arr].type != JSON_ARRAY) {
		err_detail_set(why, "reply has no array 'signature_chain'");
		goto out;
	}
	if (j.tok[arr].size < 1 || j.tok[arr].size > 2) {
		err_detail_set(why, "signature_chain has %d entries, expected 2", j.tok[arr].size);
		goto out;
	}
	if ((r = signature_at(&j, arr, 0, chain->app_signature, &has_app_signature, why)) < 0 ||
	    (r = signature_at(&j, arr, 1, chain->kms_signature, &chain->has_kms_signature, why)) < 0)
		goto out;
	if (!has_app_signature) {
		err_detail_set(why, "signature_chain[0] (the app signature) is empty");
		r = -EBADMSG;
	}
out:
	json_clear(&j);
	if (r < 0)
		secret_wipe(key_out, 32);
	return r;
}

int attest_parse_quote_reply(const char *body, size_t len, struct attest_quote *q, struct err_detail *why)
{
	const char *s;
	struct json j;
	size_t n;
	int i, r;

	memset(q, 0, sizeof(*q));
	r = parse_object(&j, body, len, why);
	if (r < 0)
		return r;
	r = -EBADMSG;
	i = json_get(&j, 0, "quote");
	if (i < 0 || j.tok[i].type != JSON_STRING) {
		err_detail_set(why, "reply has no string 'quote'");
		goto out;
	}
	s = json_raw(&j, i, &n);
	if (n == 0 || n % 2) {
		err_detail_set(why, "reply field 'quote' is empty or not hex");
		goto out;
	}
	q->quote = malloc(n / 2);
	if (!q->quote) {
		r = -ENOMEM;
		goto out;
	}
	r = hex_decode(q->quote, n / 2, s, n);
	if (r < 1) {
		err_detail_set(why, "reply field 'quote' is not hex");
		r = -EBADMSG;
		goto out;
	}
	q->quote_len = (size_t)r;

	i = json_get(&j, 0, "report_data");
	if (i >= 0 && j.tok[i].type == JSON_STRING) {
		s = json_raw(&j, i, &n);
		r = hex_decode(q->report_data, sizeof(q->report_data), s, n);
		if (r < 0) {
			err_detail_set(why, "reply field 'report_data' is not at most 64 bytes of hex");
			r = -EBADMSG;
			goto out;
		}
	}
	if ((r = string_field(&j, "event_log", &q->event_log, why)) < 0 ||
	    (r = string_field(&j, "vm_config", &q->vm_config, why)) < 0)
		goto out;
	r = 0;
out:
	json_clear(&j);
	if (r < 0)
		attest_quote_clear(q);
	return r;
}

void attest_quote_clear(struct attest_quote *q)
{
	if (!q)
		return;
	free(q->quote);
	free(q->event_log);
	free(q->vm_config);
	q->quote = NULL;
	q->event_log = q->vm_config = NULL;
	q->quote_len = 0;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* The agent's {"error": "..."} text, made safe to print: bounded, printable ASCII. */
static void agent_error_text(const struct http_reply *reply, char *out, size_t out_len)
{
	const char *text = (const char *)reply->body.data;
	size_t len = reply->body.len, k = 0;
	char *decoded = NULL;
	struct json j;
	int i;

	if (text && json_parse(&j, text, len, 64) == 0) {
		if (j.ntok > 0 && j.tok[0].type == JSON_OBJECT && (i = json_get(&j, 0, "error")) >= 0 &&
		    json_strdup(&j, i, &decoded) == 0) {
			text = decoded;
			len = strlen(decoded);
		}
		json_clear(&j);
	}
	for (size_t n = 0; text && n < len && k + 1 < out_len && n < AGENT_ERROR_SHOWN; n++)
		out[k++] = isprint((unsigned char)text[n]) ? text[n] : '?';
	out[k] = '\0';
	if (!k)
		snprintf(out, out_len, "(no error text)");
	free(decoded);
}

/*
 * POST body to /<method>. On success the reply body is left in reply for the caller; on
 * failure the error is set and the reply freed (wiped first: it may hold key material).
 */
static int agent_call(struct attest_client *c, const char *method, const struct buf *body,
		      struct http_reply *reply)
{
	char path[64], text[AGENT_ERROR_SHOWN + 1];
	int r;

	c->error[0] = '\0';
	snprintf(path, sizeof(path), "/%s", method);
	r = http_post(&c->target, path, "application/json", body->data, body->len, reply);
	if (r < 0) {
		if (socket_denied(c))
			set_denied(c, method);
		else if (r == -ENOENT && c->target.unix_socket)
			set_error(c, method, "no such socket (not in a dstack CVM? set %s to a "
				  "simulator's socket or URL)", ATTEST_AGENT_ENV);
		else if (r == -ETIMEDOUT)
			set_error(c, method, "no reply within %ld ms", c->target.timeout_ms);
		else
			set_error(c, method, "%s", reply->error[0] ? reply->error : errstr(r));
		goto fail;
	}
	if (reply->status != 200) {
		agent_error_text(reply, text, sizeof(text));
		set_error(c, method, "HTTP %ld: %s", reply->status, text);
		r = reply->status >= 500 ? -EIO : -EINVAL;
		goto fail;
	}
	return 0;
fail:
	buf_wipe_clear(&reply->body);
	http_reply_clear(reply);
	return r;
}

int attest_get_info(struct attest_client *c, struct attest_info *info)
{
	struct http_reply reply;
	struct err_detail why;
	struct buf body;
	int r;

	buf_init(&body, 16);
	r = buf_append(&body, "{}", 2);
	if (r < 0)
		goto out;
	r = agent_call(c, "Info", &body, &reply);
	if (r < 0)
		goto out;
	r = attest_parse_info_reply((const char *)reply.body.data, reply.body.len, info, &why);
	if (r == -EBADMSG)
		set_error(c, "Info", "malformed reply: %s", why.text);
	http_reply_clear(&reply);
out:
	buf_clear(&body);
	return r;
}

int attest_get_key(struct attest_client *c, const char *path, const char *purpose,
		   uint8_t key_out[static 32], struct attest_kms_signatures *chain)
{
	struct http_reply reply;
	struct err_detail why;
	struct buf body;
	int r;

	if (strlen(path) > ATTEST_KEY_PATH_MAX || strlen(purpose) > ATTEST_KEY_PATH_MAX) {
		set_error(c, "GetKey", "path or purpose longer than %d bytes", ATTEST_KEY_PATH_MAX);
		return -ENAMETOOLONG;
	}
	buf_init(&body, 4 * ATTEST_KEY_PATH_MAX);
	if ((r = buf_printf(&body, "{\"path\":")) < 0 || (r = json_append_string(&body, path)) < 0 ||
	    (r = buf_printf(&body, ",\"purpose\":")) < 0 ||
	    (r = json_append_string(&body, purpose)) < 0 ||
	    (r = buf_printf(&body, ",\"algorithm\":\"secp256k1\"}")) < 0)
		goto out;
	r = agent_call(c, "GetKey", &body, &reply);
	if (r < 0)
		goto out;
	r = attest_parse_key_reply((const char *)reply.body.data, reply.body.len, key_out, chain,
				   &why);
	if (r == -EBADMSG)
		set_error(c, "GetKey", "malformed reply: %s", why.text);
	buf_wipe_clear(&reply.body);
	http_reply_clear(&reply);
out:
	buf_clear(&body);
	return r;
}

int attest_get_quote(struct attest_client *c, const uint8_t *report_data, size_t len,
		     struct attest_quote *q)
{
	char hex[2 * ATTEST_REPORT_DATA_MAX + 1];
	struct err_detail why;
	struct http_reply reply;
	struct buf body;
	int r;

	if (len > ATTEST_REPORT_DATA_MAX) {
		set_error(c, "GetQuote", "report data of %zu bytes, at most %d", len,
			  ATTEST_REPORT_DATA_MAX);
		return -EMSGSIZE;
	}
	hex_encode(hex, report_data, len);
	buf_init(&body, 256);
	r = buf_printf(&body, "{\"report_data\":\"%s\"}", hex);
	if (r < 0)
		goto out;
	r = agent_call(c, "GetQuote", &body, &reply);
	if (r < 0)
		goto out;
	r = attest_parse_quote_reply((const char *)reply.body.data, reply.body.len, q, &why);
	if (r == -EBADMSG)
		set_error(c, "GetQuote", "malformed reply: %s", why.text);
	http_reply_clear(&reply);
out:
	buf_clear(&body);
	return r;
}
