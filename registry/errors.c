/* SPDX-License-Identifier: MIT */
/* The cluster contract's custom errors, by signature, for naming its reverts. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "registry/registry.h"

/* ---- the operator's wording: field names, units, a hint ---------------------------------- */

/*
 * Per error (by name): its fields as "name:unit" (unit e: wei shown in ETH, t: a Unix time
 * shown in ISO 8601 UTC, s: seconds, m: a network-mode mask, r: a record's mode, p: a boot
 * policy, -: as the
 * type reads), and what to do about it. Every name is one of registry_error_sigs[]; the unit tests
 * check that each entry has as many fields as its signature has arguments.
 */
struct error_doc {
	const char *name;
	const char *fields;
	const char *hint;
};

static const struct error_doc docs[] = {
	{ "BadAppSignature", "recovered:- appKey:-", "the app key's signature over the node key does not verify" },
	{ "BadEndpointLength", "length:-", "an endpoint is 1 to 255 bytes" },
	{ "BadKmsSignature", "recovered:- kmsRoot:-", "the app key was not issued by this cluster's KMS root (kms-info shows it)" },
	{ "BadLeaderActionSignature", "recovered:- nodeKey:-", "the signed election call is not the node key's" },
	{ "BadNodeSignature", "recovered:- nodeKey:-", "the record is not signed by its node key" },
	{ "BadPublicKeyLength", "length:-", "a public key is 64 bytes (x || y, uncompressed without 0x04)" },
	{ "BadSignatureLength", "length:-", "a signature is 65 bytes" },
	{ "ClusterFull", "maxNodes:-", "every token the cluster allows is live: burn one, or raise the cap with set-config" },
	{ "ERC721IncorrectOwner", "sender:- tokenId:- owner:-", "the token belongs to another account" },
	{ "ERC721InsufficientApproval", "operator:- tokenId:-", "only the token's holder (or an approved account) may move it" },
	{ "ERC721InvalidApprover", "approver:-", "this account may not approve for the token" },
	{ "ERC721InvalidOperator", "operator:-", "not a valid operator" },
	{ "ERC721InvalidOwner", "owner:-", "not a valid holder" },
	{ "ERC721InvalidReceiver", "receiver:-", "the receiver cannot take the token (the zero address, or a contract that refuses it)" },
	{ "ERC721InvalidSender", "sender:-", "the token does not come from this account" },
	{ "ERC721NonexistentToken", "tokenId:-", "no such token: never minted, or burned (cluster status lists the live ones)" },
	{ "EndpointNotHttps", "", "a gateway (TLS-mode) endpoint must be an https:// URL" },
	{ "InstanceAlreadyBound", "instanceId:- tokenId:-", "the instance is bound to another token: unbind that one first" },
	{ "InstanceNotBound", "instanceId:-", "bind the instance to a token first (cluster bind TOKEN INSTANCE)" },
	{ "InvalidLeaderLease", "leaseSeconds:s", "a lease is 1 second to 30 days (2592000 s)" },
	{ "InvalidNetworkModes", "networkModes:m", "modes are tls, wireguard or both" },
	{ "InvalidPskEpoch", "epochSeconds:s", "a PSK epoch is 30 seconds to 30 days (2592000 s)" },
	{ "LabelTooLong", "length:- max:-", "a label is at most max bytes" },
	{ "LeaderActionExpired", "deadline:t nowTimestamp:t", "the signed call's deadline passed: sign it again" },
	{ "LeaderStillActive", "leader:- expiry:t", "the leader's lease has not run out; a new election is possible after expiry" },
	{ "MaxNodesBelowLiveTokens", "maxNodes:- liveTokens:-", "burn tokens first, or choose at least liveTokens" },
	{ "MaxNodesOutOfRange", "maxNodes:- limit:-", "max nodes is 1 to limit" },
	{ "MintingNotPublic", "", "minting is owner-only: the owner mints, or sets set-minting PRICE public" },
	{ "MissingWireGuardKey", "", "a WireGuard-mode record needs a WireGuard public key" },
	{ "NetworkModeNotAllowed", "mode:r allowedModes:m", "the cluster does not allow this mode (set-config MAX_NODES MODES)" },
	{ "NoLeader", "", "there is no leader: elect one first" },
	{ "NotCurrentLeader", "target:- leader:-", "the vote names a token that is not the current leader" },
	{ "NotLeader", "caller:-", "only the current leader's node may do this" },
	{ "NotNodeController", "tokenId:- caller:-", "only the token's holder or its bound node may do this" },
	{ "NotRegisteredNode", "tokenId:-", "the token has no registered record yet" },
	{ "NotTokenOwner", "tokenId:- caller:-", "only the token's holder may do this: send with the holder's key (--key-file or --keystore)" },
	{ "NotTokenOwnerOrAdmin", "tokenId:- caller:-", "only the token's holder or the contract's owner may do this" },
	{ "OwnableInvalidOwner", "owner:-", "not a valid owner (the zero address)" },
	{ "OwnableUnauthorizedAccount", "account:-", "only the contract's owner may do this: send with the owner's key (cluster status shows the owner)" },
	{ "PeerNotFound", "instanceId:-", "the instance has no registered record" },
	{ "StaleNonce", "nonce:- storedNonce:-", "a record's nonce must be above the stored one" },
	{ "TokenHasNoPeer", "tokenId:-", "the token has no registered record" },
	{ "TokenIdOutOfRange", "tokenId:-", "token ids are 1 to 254" },
	{ "TokenNotBound", "tokenId:-", "the token has no bound instance" },
	{ "UnexpectedWireGuardKey", "", "a TLS-mode record carries no WireGuard key" },
	{ "UnknownBootPolicy", "policy:p", "boot policies are strict (0) and permissive (1)" },
	{ "UnknownNetworkMode", "mode:r", "a record's mode is 0 (tls) or 1 (wireguard)" },
	{ "WireGuardKeyInUse", "wgPublicKey:- tokenId:-", "another token's record uses this WireGuard key" },
	{ "WithdrawFailed", "to:- amount:e", "the receiver refused the payment (a contract without a payable receive)" },
	{ "WrongMintPayment", "sent:e price:e", "a public mint pays exactly the price: --value PRICE (cluster status shows it)" },
	{ "ZeroAddress", "", "an address may not be zero" },
	{ "ZeroInstanceId", "", "an instance id may not be zero" },
	{ "ZeroKmsRoot", "", "the KMS root may not be zero" },
};

void registry_ether_str(const uint8_t wei[static 32], char out[static REGISTRY_ETHER_STR_MAX])
{
	char dec[ETH_U256_DEC_MAX];
	size_t n, whole, end;

	eth_u256_to_dec(wei, dec);
	n = strlen(dec);
	if (n <= 18) {  /* 0.000...: pad to 18 fraction digits */
		memmove(dec + 19 - n, dec, n + 1);
		memset(dec, '0', 19 - n);
		n = 19;
	}
	whole = n - 18;
	end = n;
	while (end > whole && dec[end - 1] == '0')
		end--;
	if (end == whole)
		snprintf(out, REGISTRY_ETHER_STR_MAX, "%.*s ETH", (int)whole, dec);
	else
		snprintf(out, REGISTRY_ETHER_STR_MAX, "%.*s.%.*s ETH", (int)whole, dec,
			 (int)(end - whole), dec + whole);
}

void registry_time_str(uint64_t unix_time, char out[static REGISTRY_TIME_STR_MAX])
{
	time_t t = (time_t)unix_time;
	struct tm tm;

	if (unix_time > 253402300799ull || !gmtime_r(&t, &tm) ||
	    !strftime(out, REGISTRY_TIME_STR_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, REGISTRY_TIME_STR_MAX, "%llu", (unsigned long long)unix_time);
}

static uint64_t word_low64(const uint8_t w[static 32], bool *fits)
{
	uint64_t v = 0;

	*fits = true;
	for (int i = 0; i < 24; i++)
		if (w[i])
			*fits = false;
	for (int i = 24; i < 32; i++)
		v = (v << 8) | w[i];
	return v;
}

int registry_put_worded(struct buf *b, char unit, const uint8_t w[static 32])
{
	static const char *const modes[] = { "none", "tls", "wireguard", "both", NULL };
	static const char *const record_modes[] = { "tls", "wireguard", NULL };
	static const char *const policies[] = { "strict", "permissive", NULL };
	static const char *const removed[] = { "burned", "transferred", "rebound", NULL };
	static const char *const causes[] = { "elected", "no-confidence", "left", NULL };
	const char *const *names = unit == 'm' ? modes : unit == 'r' ? record_modes
		: unit == 'p' ? policies : unit == 'R' ? removed : unit == 'C' ? causes : NULL;
	char s[REGISTRY_ETHER_STR_MAX];
	bool fits;
	uint64_t v = word_low64(w, &fits);

	if (unit == 'e') {
		registry_ether_str(w, s);
		return buf_printf(b, "%s", s);
	}
	if (!fits)
		return -ENOENT;
	if (unit == 't') {
		registry_time_str(v, s);
		return buf_printf(b, "%s", s);
	}
	if (unit == 's')
		return buf_printf(b, "%llu s", (unsigned long long)v);
	for (uint64_t i = 0; names && names[i]; i++)
		if (i == v)
			return buf_printf(b, "%s", names[i]);
	return -ENOENT;
}

/* One field's value in its unit; type is the signature's ("address", "uint256", ...). */
static void put_field(struct buf *b, char unit, const char *type, size_t tlen,
		      const uint8_t w[static 32])
{
	char dec[ETH_U256_DEC_MAX], hex[65];

	if (tlen == 7 && !memcmp(type, "address", 7)) {
		hex_encode(hex, w + 12, 20);
		buf_printf(b, "0x%s", hex);
	} else if (tlen == 7 && !memcmp(type, "bytes32", 7)) {
		hex_encode(hex, w, 32);
		buf_printf(b, "0x%s", hex);
	} else if (registry_put_worded(b, unit, w) == -ENOENT) {
		eth_u256_to_dec(w, dec);
		buf_printf(b, "%s", dec);
	}
}

static int describe_doc(size_t index, const uint8_t *args, size_t len, struct buf *b)
{
	const char *sig = registry_error_sigs[index], *open = strchr(sig, '('), *t, *f;
	const struct error_doc *d = NULL;
	size_t slot = 0;

	for (size_t i = 0; i < ARRAY_SIZE(docs); i++)
		if (strlen(docs[i].name) == (size_t)(open - sig) &&
		    !memcmp(docs[i].name, sig, (size_t)(open - sig)))
			d = &docs[i];
	if (!d)
		return -ENOENT;
	buf_printf(b, "%s(", d->name);
	for (t = open + 1, f = d->fields; *t && *t != ')'; slot++) {
		size_t tlen = strcspn(t, ",)"), flen = strcspn(f, ":");

		if (!*f || !f[flen])
			return -EINVAL;  /* fewer fields than arguments: a table error */
		buf_printf(b, "%s%.*s=", slot ? ", " : "", (int)flen, f);
		if ((slot + 1) * 32 <= len)
			put_field(b, f[flen + 1], t, tlen, args + 32 * slot);
		else
			buf_printf(b, "<missing>");
		f += flen + 2;
		f += *f == ' ';
		t += tlen;
		t += *t == ',';
	}
	return buf_printf(b, "): %s", d->hint);
}

const struct eth_error_table registry_contract_errors_explained = {
	.signatures = registry_error_sigs,
	.n = REGISTRY_ERROR_COUNT,
	.describe = describe_doc,
};

int registry_error_doc(const char *name, const char **fields, const char **hint)
{
	for (size_t i = 0; i < ARRAY_SIZE(docs); i++)
		if (!strcmp(docs[i].name, name)) {
			*fields = docs[i].fields;
			*hint = docs[i].hint;
			return 0;
		}
	return -ENOENT;
}

/* One argument of the compact form: a decimal up to 2^64-1 or 0x and up to 64 hex digits. */
static int compact_arg(const char *s, size_t n, uint8_t w[static 32])
{
	uint8_t tmp[32];
	uint64_t v = 0;
	int len;

	memset(w, 0, 32);
	if (n > 2 && s[0] == '0' && s[1] == 'x') {
		if (n - 2 > 64 || (n - 2) % 2)
			return -EINVAL;
		len = hex_decode(tmp, sizeof(tmp), s + 2, n - 2);
		if (len < 0)
			return -EINVAL;
		memcpy(w + 32 - len, tmp, (size_t)len);
		return 0;
	}
	if (!n || n > 20)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	for (int i = 0; i < 8; i++)
		w[31 - i] = (uint8_t)(v >> (8 * i));
	return 0;
}

/* The words of "Name(1, 0xab..)" at text (after the name); -EINVAL when it is not that. */
static int compact_args(const char *open, uint8_t *words, size_t max_words, size_t *n,
			const char **close)
{
	const char *p = open + 1;

	*n = 0;
	while (*p != ')') {
		size_t len = strcspn(p, ",)");

		if (!p[len] || *n == max_words || compact_arg(p, len, words + 32 * *n) < 0)
			return -EINVAL;
		(*n)++;
		p += len;
		if (*p == ',')
			p += 1 + (p[1] == ' ');
	}
	*close = p;
	return 0;
}

/* Whether text[0..at) ends in an identifier character: "XStaleNonce(" is not StaleNonce. */
static bool inside_word(const char *text, const char *at)
{
	return at > text && (isalnum((unsigned char)at[-1]) || at[-1] == '_');
}

int registry_explain_compact(const char *text, struct buf *out)
{
	for (const char *p = text; (p = strchr(p, '(')) != NULL; p++) {
		for (size_t i = 0; i < REGISTRY_ERROR_COUNT; i++) {
			size_t name_len = strcspn(registry_error_sigs[i], "(");
			const char *at, *close;
			uint8_t words[4 * 32];
			size_t n;

			if ((size_t)(p - text) < name_len)
				continue;
			at = p - name_len;
			if (memcmp(at, registry_error_sigs[i], name_len) || inside_word(text, at) ||
			    compact_args(p, words, 4, &n, &close) < 0)
				continue;
			if (buf_append(out, text, (size_t)(at - text)) < 0 ||
			    describe_doc(i, words, 32 * n, out) < 0)
				return -EINVAL;
			return buf_printf(out, "%s", close + 1);
		}
	}
	return -ENOENT;
}
