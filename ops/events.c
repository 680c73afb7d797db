/* SPDX-License-Identifier: MIT */
/* The events of the cluster contract (and the KMS's AppRegistered) by name, with their arguments. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ops/ops.h"
#include "registry/registry.h"

/* Events of other contracts the operator's tools read: the KMS's registration of the app. */
static const char *const kms_events[] = {
	"AppRegistered(address appId)",
};

static void put_hex(struct buf *out, const uint8_t *p, size_t n, bool json)
{
	char hex[65];

	hex_encode(hex, p, n > 32 ? 32 : n);
	buf_printf(out, json ? "\"0x%s\"" : "0x%s", hex);
}

/* One static word as its type reads. */
static void put_word(struct buf *out, const char *type, const uint8_t w[static 32], bool json)
{
	size_t lead = 0;

	while (lead < 24 && w[lead] == 0)
		lead++;
	if (!strcmp(type, "address")) {
		put_hex(out, w + 12, 20, json);
	} else if (!strcmp(type, "bool")) {
		buf_printf(out, "%s", w[31] ? "true" : "false");
	} else if (!strncmp(type, "uint", 4) && lead == 24) {
		uint64_t v = 0;

		for (int i = 24; i < 32; i++)
			v = (v << 8) | w[i];
		buf_printf(out, "%" PRIu64, v);
	} else if (!strncmp(type, "uint", 4)) {
		char dec[ETH_U256_DEC_MAX];

		eth_u256_to_dec(w, dec);
		buf_printf(out, json ? "\"%s\"" : "%s", dec);
	} else {
		put_hex(out, w, 32, json);
	}
}

/* One word as an operator reads it (text form only; JSON keeps the chain's numbers), in
 * the unit its declaration names (registry_put_worded), else as its type reads. */
static void put_worded(struct buf *out, const char *type, char unit, const uint8_t w[static 32])
{
	if (registry_put_worded(out, unit, w) == -ENOENT)
		put_word(out, type, w, false);
}

/* A string argument from the data, printable bytes only in text form. */
static int put_string(struct buf *out, const struct abi_tuple *data, size_t slot, bool json)
{
	const uint8_t *p;
	size_t n;
	char s[300];
	int r = abi_get_bytes(data, slot, &p, &n);

	if (r < 0)
		return r;
	if (n >= sizeof(s))
		n = sizeof(s) - 1;
	for (size_t i = 0; i < n; i++)
		s[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	s[n] = '\0';
	if (json)
		return json_append_string(out, s);
	return buf_printf(out, "\"%s\"", s);
}

static int describe(const struct eth_log *log, const struct registry_event *e, bool json, struct buf *out)
{
	const struct registry_event_param *params = e->params;
	size_t n = e->nparams;
	struct abi_tuple data;
	size_t topic = 1, slot = 0;
	int r = 0;

	abi_tuple_init(&data, log->data, log->data_len);
	buf_printf(out, json ? "{\"event\":\"%s\",\"args\":{" : "%s(", e->name);
	for (size_t i = 0; i < n && r == 0; i++) {
		const uint8_t *w;

		buf_printf(out, json ? "%s\"%s\":" : "%s%s=", i ? (json ? "," : ", ") : "", params[i].name);
		if (params[i].indexed) {
			if (topic >= log->ntopics)
				return -EBADMSG;
			put_word(out, params[i].type, log->topics[topic++], json);
		} else if (!strcmp(params[i].type, "string")) {
			r = put_string(out, &data, slot++, json);
		} else if ((r = abi_get_word(&data, slot++, &w)) == 0) {
			if (json || !params[i].unit)
				put_word(out, params[i].type, w, json);
			else
				put_worded(out, params[i].type, params[i].unit, w);
		}
	}
	if (r < 0)
		return r;
	return buf_printf(out, json ? "}}" : ")");
}

/* The event of the cluster contract or the KMS whose topic0 log has, or NULL. */
static const struct registry_event *event_of(const struct eth_log *log, struct registry_event *scratch)
{
	const struct registry_event *e = registry_event_by_topic(log->topics[0]);

	for (size_t i = 0; !e && i < ARRAY_SIZE(kms_events); i++)
		if (registry_event_parse(kms_events[i], 0, scratch) == 0 &&
		    !memcmp(scratch->topic0, log->topics[0], 32))
			e = scratch;
	return e;
}

int ops_describe_log(const struct eth_log *log, bool json, struct buf *out)
{
	struct registry_event scratch;
	const struct registry_event *e = log->ntopics ? event_of(log, &scratch) : NULL;
	size_t mark = out->len;

	if (e && describe(log, e, json, out) == 0)
		return 0;
	out->len = mark; /* unknown, or malformed for its event: say so below */
	if (json) {
		buf_printf(out, "{\"event\":null,\"topic0\":");
		put_hex(out, log->ntopics ? log->topics[0] : (const uint8_t[32]){ 0 }, 32, true);
		return buf_printf(out, "}");
	}
	buf_printf(out, "unknown event ");
	if (log->ntopics)
		put_hex(out, log->topics[0], 32, false);
	return buf_printf(out, " (%zu bytes of data)", log->data_len);
}
