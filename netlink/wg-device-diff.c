/* SPDX-License-Identifier: MIT */
/* The values WireGuard configuration is made of: prefixes, endpoints, keys, devices. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <nettle/curve25519.h>

#include "common/common.h"
#include "netlink/internal.h"

int ip_prefix_parse(struct ip_prefix *out, const char *text)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned long len;
	char *end;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(addr))
		return nl_fail(-EINVAL, "'%.64s' is not an IP prefix", text);
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, &out->ip4) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &out->ip6) == 1)
		out->family = AF_INET6;
	else
		return nl_fail(-EINVAL, "'%s' is not an IPv4 or IPv6 address", addr);
	len = out->family == AF_INET ? 32 : 128;
	if (slash) {
		unsigned long max = len;

		errno = 0;
		len = strtoul(slash + 1, &end, 10);
		if (!slash[1] || *end || errno || len > max || slash[1] == '-' || slash[1] == '+')
			return nl_fail(-EINVAL, "'%.64s' has a bad prefix length", text);
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

int wg_endpoint_parse(union wg_endpoint *out, const char *text)
{
	char host[INET6_ADDRSTRLEN];
	const char *colon, *hstart = text, *hend;
	unsigned long port;
	char *end;

	memset(out, 0, sizeof(*out));
	if (text[0] == '[') {
		hstart = text + 1;
		hend = strchr(hstart, ']');
		if (!hend || hend[1] != ':')
			return nl_fail(-EINVAL, "'%.64s' is not [IPv6]:port", text);
		colon = hend + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon)
			return nl_fail(-EINVAL, "endpoint '%.64s' has no port", text);
		hend = colon;
	}
	if (hend == hstart || (size_t)(hend - hstart) >= sizeof(host))
		return nl_fail(-EINVAL, "'%.64s' is not an endpoint", text);
	memcpy(host, hstart, (size_t)(hend - hstart));
	host[hend - hstart] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port > 65535 || colon[1] == '-' || colon[1] == '+')
		return nl_fail(-EINVAL, "endpoint '%.64s' has a bad port", text);

	if (text[0] != '[' && inet_pton(AF_INET, host, &out->in.sin_addr) == 1) {
		out->in.sin_family = AF_INET;
		out->in.sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &out->in6.sin6_addr) == 1) {
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = htons((uint16_t)port);
		return 0;
	}
	return nl_fail(-EINVAL, "endpoint '%.64s' is not a numeric address", text);
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

int wg_key_from_base64(uint8_t key[static WG_KEY_LEN], const char *b64)
{
	uint8_t tmp[WG_KEY_LEN + 1];
	size_t o = 0;
	int r = 0;

	/* 32 bytes are exactly 44 characters, the last one '=' and canonical. */
	if (strlen(b64) != WG_KEY_B64_LEN - 1 || b64[43] != '=')
		return nl_fail(-EINVAL, "a key is 44 base64 characters ending in '='");
	for (size_t i = 0; i < 44; i += 4) {
		int v[4];
		uint32_t w;

		for (int k = 0; k < 4; k++)
			v[k] = (i + k == 43) ? 0 : base64_value(b64[i + k]);
		if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0) {
			r = nl_fail(-EINVAL, "a key holds a character that is not base64");
			goto out;
		}
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
		tmp[o++] = (uint8_t)(w >> 16);
		tmp[o++] = (uint8_t)(w >> 8);
		if (o < sizeof(tmp))
			tmp[o++] = (uint8_t)w;
	}
	if (tmp[WG_KEY_LEN] != 0) {
		r = nl_fail(-EINVAL, "a key's base64 is not canonical");
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

const struct wg_peer *wg_device_find_peer(const struct wg_device *dev, const uint8_t key[static WG_KEY_LEN])
{
	for (size_t i = 0; dev && i < dev->n_peers; i++)
		if (!memcmp(dev->peers[i].public_key, key, WG_KEY_LEN))
			return &dev->peers[i];
	return NULL;
}

void wg_device_free(struct wg_device *dev)
{
	if (!dev)
		return;
	for (size_t i = 0; i < dev->n_peers; i++)
		free(dev->peers[i].allowedips);
	if (dev->peers)
		secret_wipe(dev->peers, dev->n_peers * sizeof(*dev->peers)); /* preshared keys */
	free(dev->peers);
	free(dev);
}

void wg_changes_free(struct wg_peer *changes, size_t n_changes)
{
	if (!changes)
		return;
	secret_wipe(changes, n_changes * sizeof(*changes));
	free(changes);
}

/* ---- diff ------------------------------------------------------------------------------ */

static int peer_key_cmp(const void *a, const void *b)
{
	return memcmp((*(const struct wg_peer *const *)a)->public_key,
		      (*(const struct wg_peer *const *)b)->public_key, WG_KEY_LEN);
}

static int prefix_cmp(const void *a, const void *b)
{
	const struct ip_prefix *x = a, *y = b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(&x->ip6, &y->ip6, x->family == AF_INET ? 4 : 16);
}

/* Allowed IPs compared as sets: the kernel keeps insertion order, we may not. */
static int allowedips_equal(const struct wg_peer *a, const struct wg_peer *b, bool *equal)
{
	struct ip_prefix *x = NULL, *y = NULL;
	size_t n = a->n_allowedips;

	*equal = false;
	if (n != b->n_allowedips)
		return 0;
	if (n == 0) {
		*equal = true;
		return 0;
	}
	x = malloc(n * sizeof(*x));
	y = malloc(n * sizeof(*y));
	if (!x || !y) {
		free(x);
		free(y);
		return -ENOMEM;
	}
	/* Copies are normalised: bytes past a v4 address in the union are not compared. */
	for (size_t i = 0; i < n; i++) {
		memset(&x[i], 0, sizeof(x[i]));
		memset(&y[i], 0, sizeof(y[i]));
		x[i].family = a->allowedips[i].family;
		x[i].len = a->allowedips[i].len;
		memcpy(&x[i].ip6, &a->allowedips[i].ip6, x[i].family == AF_INET ? 4 : 16);
		y[i].family = b->allowedips[i].family;
		y[i].len = b->allowedips[i].len;
		memcpy(&y[i].ip6, &b->allowedips[i].ip6, y[i].family == AF_INET ? 4 : 16);
	}
	qsort(x, n, sizeof(*x), prefix_cmp);
	qsort(y, n, sizeof(*y), prefix_cmp);
	*equal = true;
	for (size_t i = 0; i < n && *equal; i++)
		*equal = prefix_cmp(&x[i], &y[i]) == 0;
	free(x);
	free(y);
	return 0;
}

bool wg_endpoint_equal(const union wg_endpoint *a, const union wg_endpoint *b)
{
	if (a->addr.sa_family != b->addr.sa_family)
		return false;
	if (a->addr.sa_family == AF_INET)
		return a->in.sin_port == b->in.sin_port &&
		       a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
	if (a->addr.sa_family == AF_INET6)
		return a->in6.sin6_port == b->in6.sin6_port &&
		       !memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16);
	return true;
}

/* What changed between cur and want, as a SET peer; false when nothing did. */
static int peer_changes(const struct wg_peer *cur, const struct wg_peer *want, struct wg_peer *out,
			bool *changed)
{
	bool same_ips;
	int r;

	*out = (struct wg_peer){ 0 };
	memcpy(out->public_key, want->public_key, WG_KEY_LEN);
	if ((want->flags & WG_PEER_HAS_ENDPOINT) && !wg_endpoint_equal(&cur->endpoint, &want->endpoint)) {
		out->endpoint = want->endpoint;
		out->flags |= WG_PEER_HAS_ENDPOINT;
	}
	if (cur->persistent_keepalive != want->persistent_keepalive) {
		out->persistent_keepalive = want->persistent_keepalive;
		out->flags |= WG_PEER_HAS_KEEPALIVE;
	}
	if (!!(cur->flags & WG_PEER_HAS_PRESHARED_KEY) != !!(want->flags & WG_PEER_HAS_PRESHARED_KEY) ||
	    secret_cmp(cur->preshared_key, want->preshared_key, WG_KEY_LEN)) {
		memcpy(out->preshared_key, want->preshared_key, WG_KEY_LEN);
		out->flags |= WG_PEER_HAS_PRESHARED_KEY;
	}
	r = allowedips_equal(cur, want, &same_ips);
	if (r < 0)
		return r;
	if (!same_ips) {
		out->allowedips = want->allowedips;
		out->n_allowedips = want->n_allowedips;
		out->flags |= WG_PEER_REPLACE_ALLOWEDIPS;
	}
	*changed = out->flags != 0;
	return 0;
}

int wg_device_diff(const struct wg_device *current, const struct wg_device *desired,
		   struct wg_peer **changes, size_t *n_changes)
{
	const struct wg_peer **cur = NULL, **want = NULL;
	struct wg_peer *out = NULL;
	size_t nc = current->n_peers, nw = desired->n_peers, i = 0, j = 0, n = 0;
	int r = -ENOMEM;

	*changes = NULL;
	*n_changes = 0;
	cur = malloc((nc + 1) * sizeof(*cur));
	want = malloc((nw + 1) * sizeof(*want));
	out = calloc(nc + nw + 1, sizeof(*out));
	if (!cur || !want || !out)
		goto out;
	for (size_t k = 0; k < nc; k++)
		cur[k] = &current->peers[k];
	for (size_t k = 0; k < nw; k++)
		want[k] = &desired->peers[k];
	/* Sorted by key, one merge pass: O(n log n) for thousands of peers. */
	qsort(cur, nc, sizeof(*cur), peer_key_cmp);
	qsort(want, nw, sizeof(*want), peer_key_cmp);
	while (i < nc || j < nw) {
		int c = i == nc ? 1 : j == nw ? -1 : memcmp(cur[i]->public_key, want[j]->public_key, WG_KEY_LEN);

		if (c < 0) {
			memcpy(out[n].public_key, cur[i++]->public_key, WG_KEY_LEN);
			out[n++].flags = WG_PEER_REMOVE;
		} else if (c > 0) {
			out[n] = *want[j++];
			out[n].flags = (out[n].flags & (WG_PEER_HAS_ENDPOINT | WG_PEER_HAS_KEEPALIVE |
							WG_PEER_HAS_PRESHARED_KEY)) |
				       WG_PEER_REPLACE_ALLOWEDIPS;
			n++;
		} else {
			bool changed;

			r = peer_changes(cur[i++], want[j++], &out[n], &changed);
			if (r < 0)
				goto out;
			if (changed) {
				out[n].flags |= WG_PEER_UPDATE_ONLY;
				n++;
			}
		}
	}
	*changes = out;
	*n_changes = n;
	out = NULL;
	r = 0;
out:
	if (out)
		secret_wipe(out, (nc + nw + 1) * sizeof(*out));
	free(out);
	free(cur);
	free(want);
	return r;
}
