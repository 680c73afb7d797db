/* SPDX-License-Identifier: MIT */
/* A device's peers: lookup, freeing, and the diff from the current to the desired device. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "netlink/internal.h"

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
	wipe_free(dev->peers, dev->n_peers * sizeof(*dev->peers)); /* preshared keys */
	free(dev);
}

void wg_changes_free(struct wg_peer *changes, size_t n_changes)
{
	if (!changes)
		return;
	wipe_free(changes, n_changes * sizeof(*changes));
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
	wipe_free(out, (nc + nw + 1) * sizeof(*out));
	free(cur);
	free(want);
	return r;
}
