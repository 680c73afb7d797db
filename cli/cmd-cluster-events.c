/* SPDX-License-Identifier: MIT */
/* The events of the cluster contract (and the KMS's AppRegistered) by name, with their arguments. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cluster.h"
#include "registry/registry.h"

/*
 * Each event as declared, '!' marking an indexed parameter. Types are the few the contracts
 * use: uintN, address, bytes32, bool, string.
 */
static const char *const events[] = {
	"NodeAccessMinted(uint256 !tokenId,address !to,string label)",
	"InstanceBound(uint256 !tokenId,address !instanceId)",
	"InstanceUnbound(uint256 !tokenId,address !instanceId)",
	"PeerRegistered(uint256 !tokenId,address !instanceId,bytes32 wgPublicKey,string endpoint,"
	"uint8 mode:r,uint64 nonce)",
	"PeerUpdated(uint256 !tokenId,address !instanceId,bytes32 wgPublicKey,string endpoint,"
	"uint8 mode:r,uint64 nonce)",
	"PeerRemoved(uint256 !tokenId,address !instanceId,uint8 reason:R)",
	"ClusterConfigSet(uint256 maxNodes,uint8 networkModes:m)",
	"MintingPolicySet(uint256 price:e,bool publicMinting)",
	"BootPolicySet(uint8 policy:p)",
	"AllowAnyDeviceSet(bool allowAny)",
	"RequireTcbUpToDateSet(bool required)",
	"LeaderLeaseSet(uint64 leaseSeconds:s)",
	"Withdrawn(address !to,uint256 amount:e)",
	"VoteCast(uint256 !voterTokenId,uint256 !targetTokenId,bool noConfidence,uint256 votes,"
	"uint256 required)",
	"LeaderChanged(uint256 !previousTokenId,uint256 !newTokenId,uint64 term,uint64 expiry:t,"
	"uint8 cause:C)",
	"LeaderHeartbeat(uint256 !tokenId,uint64 expiry:t)",
	"ComposeHashAdded(bytes32 composeHash)",
	"ComposeHashRemoved(bytes32 composeHash)",
	"DeviceAdded(bytes32 deviceId)",
	"DeviceRemoved(bytes32 deviceId)",
	"Transfer(address !from,address !to,uint256 !tokenId)",
	"Approval(address !owner,address !approved,uint256 !tokenId)",
	"ApprovalForAll(address !owner,address !operator,bool approved)",
	"OwnershipTransferred(address !previousOwner,address !newOwner)",
	"OwnershipTransferStarted(address !previousOwner,address !newOwner)",
	"AppRegistered(address appId)",
};

#define MAX_PARAMS 8

struct param {
	char type[16];
	char name[32];
	bool indexed;
	char unit;      /* how the text form words it: see put_worded; 0 as its type reads */
};

/* Split a declaration into its name, canonical signature and parameters. */
static int parse_decl(const char *decl, char *name, size_t name_len, struct buf *sig,
		      struct param *params, size_t *n)
{
	const char *open = strchr(decl, '('), *p;
	int r;

	*n = 0;
	if (!open || (size_t)(open - decl) >= name_len)
		return -EINVAL;
	memcpy(name, decl, (size_t)(open - decl));
	name[open - decl] = '\0';
	if ((r = buf_append(sig, decl, (size_t)(open - decl + 1))) < 0)
		return r;
	for (p = open + 1; *p && *p != ')' && *n < MAX_PARAMS; (*n)++) {
		struct param *q = &params[*n];
		size_t tl = strcspn(p, " "), nl;

		if (tl >= sizeof(q->type))
			return -EINVAL;
		memcpy(q->type, p, tl);
		q->type[tl] = '\0';
		p += tl + 1;
		q->indexed = *p == '!';
		p += q->indexed;
		nl = strcspn(p, ":,)");
		if (nl >= sizeof(q->name))
			return -EINVAL;
		memcpy(q->name, p, nl);
		q->name[nl] = '\0';
		p += nl;
		q->unit = *p == ':' ? p[1] : 0;
		p += *p == ':' ? 2 : 0;
		p += *p == ',';
		if ((r = buf_printf(sig, "%s%s", *n ? "," : "", q->type)) < 0)
			return r;
	}
	return buf_printf(sig, ")");
}

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

static int describe(const struct eth_log *log, const char *name, const struct param *params,
		    size_t n, bool json, struct buf *out)
{
	struct abi_tuple data;
	size_t topic = 1, slot = 0;
	int r = 0;

	abi_tuple_init(&data, log->data, log->data_len);
	buf_printf(out, json ? "{\"event\":\"%s\",\"args\":{" : "%s(", name);
	for (size_t i = 0; i < n && r == 0; i++) {
		const uint8_t *w;

		buf_printf(out, json ? "%s\"%s\":" : "%s%s=", i ? (json ? "," : ", ") : "",
			   params[i].name);
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

int cluster_describe_log(const struct eth_log *log, bool json, struct buf *out)
{
	size_t mark = out->len;

	for (size_t e = 0; log->ntopics && e < ARRAY_SIZE(events); e++) {
		struct param params[MAX_PARAMS];
		char name[40];
		uint8_t topic[32];
		struct buf sig;
		size_t n;
		int r;

		buf_init(&sig, 512);
		r = parse_decl(events[e], name, sizeof(name), &sig, params, &n);
		if (r == 0 && (r = buf_terminate(&sig)) == 0)
			abi_event_topic((const char *)sig.data, topic);
		buf_clear(&sig);
		if (r < 0)
			return r;
		if (memcmp(topic, log->topics[0], 32))
			continue;
		r = describe(log, name, params, n, json, out);
		if (r == 0)
			return 0;
		out->len = mark;  /* malformed for its event: say so below */
		break;
	}
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
