/* SPDX-License-Identifier: MIT */
/* The text forms of WireGuard's values: IP prefixes, endpoints and base64 keys. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "netlink/internal.h"

int ip_prefix_parse(struct ip_prefix *out, const char *text, struct err_detail *why)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned long len;
	char *end;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(addr))
		return nl_fail(why, -EINVAL, "'%.64s' is not an IP prefix", text);
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, &out->ip4) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &out->ip6) == 1)
		out->family = AF_INET6;
	else
		return nl_fail(why, -EINVAL, "'%s' is not an IPv4 or IPv6 address", addr);
	len = out->family == AF_INET ? 32 : 128;
	if (slash) {
		unsigned long max = len;

		errno = 0;
		len = strtoul(slash + 1, &end, 10);
		if (!slash[1] || *end || errno || len > max || slash[1] == '-' || slash[1] == '+')
			return nl_fail(why, -EINVAL, "'%.64s' has a bad prefix length", text);
	}
	out->len = (uint8_t)len;
	return 0;
}

int ip_prefix_format(char *out, size_t outlen, const struct ip_prefix *p)
{
	char addr[INET6_ADDRSTRLEN];
	int n;

	if (!inet_ntop(p->family, &p->ip6, addr, sizeof(addr)))
		return -EAFNOSUPPORT;
	n = snprintf(out, outlen, "%s/%u", addr, p->len);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

int wg_endpoint_parse(union wg_endpoint *out, const char *text, struct err_detail *why)
{
	struct hostport hp = { .port = 0 };
	int r;

	memset(out, 0, sizeof(*out));
	r = hostport_split(text, strlen(text), HOSTPORT_PORT_ZERO | HOSTPORT_LAST_COLON, &hp);
	if (r == -EINVAL || (r == -ENOENT && text[0] == '['))
		return nl_fail(why, -EINVAL, "'%.64s' is not [IPv6]:port", text);
	if (r == -ENOENT)
		return nl_fail(why, -EINVAL, "endpoint '%.64s' has no port", text);
	if (r == -EDESTADDRREQ || r == -ENAMETOOLONG || (!r && strlen(hp.host) >= INET6_ADDRSTRLEN))
		return nl_fail(why, -EINVAL, "'%.64s' is not an endpoint", text);
	if (r < 0)
		return nl_fail(why, -EINVAL, "endpoint '%.64s' has a bad port", text);

	if (!hp.bracketed && inet_pton(AF_INET, hp.host, &out->in.sin_addr) == 1) {
		out->in.sin_family = AF_INET;
		out->in.sin_port = htons(hp.port);
		return 0;
	}
	if (inet_pton(AF_INET6, hp.host, &out->in6.sin6_addr) == 1) {
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = htons(hp.port);
		return 0;
	}
	return nl_fail(why, -EINVAL, "endpoint '%.64s' is not a numeric address", text);
}

int wg_endpoint_format(char *out, size_t outlen, const union wg_endpoint *ep)
{
	char host[INET6_ADDRSTRLEN];
	int n;

	switch (ep->addr.sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &ep->in.sin_addr, host, sizeof(host));
		n = snprintf(out, outlen, "%s:%u", host, ntohs(ep->in.sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &ep->in6.sin6_addr, host, sizeof(host));
		n = snprintf(out, outlen, "[%s]:%u", host, ntohs(ep->in6.sin6_port));
		break;
	default:
		n = snprintf(out, outlen, "(none)");
	}
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void wg_key_to_base64(char out[static WG_KEY_B64_LEN], const uint8_t key[static WG_KEY_LEN])
{
	size_t o = 0;

	for (size_t i = 0; i < WG_KEY_LEN; i += 3) {
		uint32_t v = (uint32_t)key[i] << 16;
		size_t rest = WG_KEY_LEN - i;

		if (rest > 1)
			v |= (uint32_t)key[i + 1] << 8;
		if (rest > 2)
			v |= key[i + 2];
		out[o++] = base64_alphabet[(v >> 18) & 63];
		out[o++] = base64_alphabet[(v >> 12) & 63];
		out[o++] = rest > 1 ? base64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = rest > 2 ? base64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
}

static int base64_value(char c)
{
	const char *p = c ? strchr(base64_alphabet, c) : NULL;

	return p ? (int)(p - base64_alphabet) : -1;
}

int wg_key_from_base64(uint8_t key[static WG_KEY_LEN], const char *b64, struct err_detail *why)
{
	uint8_t tmp[WG_KEY_LEN + 1];
	size_t o = 0;
	int r = 0;

	/* 32 bytes are exactly 44 characters, the last one '=' and canonical. */
	if (strlen(b64) != WG_KEY_B64_LEN - 1 || b64[43] != '=')
		return nl_fail(why, -EINVAL, "a key is 44 base64 characters ending in '='");
	for (size_t i = 0; i < 44; i += 4) {
		int v[4];
		uint32_t w;

		for (int k = 0; k < 4; k++)
			v[k] = (i + k == 43) ? 0 : base64_value(b64[i + k]);
		if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0) {
			r = nl_fail(why, -EINVAL, "a key holds a character that is not base64");
			goto out;
		}
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
		tmp[o++] = (uint8_t)(w >> 16);
		tmp[o++] = (uint8_t)(w >> 8);
		if (o < sizeof(tmp))
			tmp[o++] = (uint8_t)w;
	}
	if (tmp[WG_KEY_LEN] != 0) {
		r = nl_fail(why, -EINVAL, "a key's base64 is not canonical");
		goto out;
	}
	memcpy(key, tmp, WG_KEY_LEN);
out:
	secret_wipe(tmp, sizeof(tmp));
	return r;
}

bool wg_key_is_zero(const uint8_t key[static WG_KEY_LEN])
{
	uint8_t acc = 0;

	for (size_t i = 0; i < WG_KEY_LEN; i++)
		acc |= key[i];
	return acc == 0;
}
