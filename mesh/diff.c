/* SPDX-License-Identifier: MIT */
/* mesh: where peers are diffed: desired WireGuard peers against the device's dump. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "mesh/mesh.h"

uint32_t mesh_overlay_addr(uint32_t token)
{
	if (token < 1 || token > MESH_MAX_PEERS)
		return 0;
	return htonl(0x0a000100u | token);
}

void mesh_overlay_addr_str(uint32_t token, char out[static 16])
{
	snprintf(out, 16, "10.0.1.%u", token);
}

const char *mesh_peer_connect_string(const struct mesh_peer *p, char addr_buf[static 16])
{
	if (p->mode == MESH_MODE_TLS)
		return p->endpoint;
	mesh_overlay_addr_str(p->token, addr_buf);
	return addr_buf;
}

int mesh_endpoint_parse(const char *endpoint, struct sockaddr_storage *out)
{
	char host[MESH_ENDPOINT_MAX];
	const char *colon, *port, *h = endpoint;
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res = NULL;
	size_t hlen;
	int r;

	if (endpoint[0] == '[') {
		colon = strstr(endpoint, "]:");
		if (!colon)
			return -EINVAL;
		h = endpoint + 1;
		hlen = (size_t)(colon - h);
		port = colon + 2;
	} else {
		colon = strrchr(endpoint, ':');
		if (!colon || strchr(endpoint, ':') != colon)
			return -EINVAL;
		hlen = (size_t)(colon - endpoint);
		port = colon + 1;
	}
	if (!hlen || hlen >= sizeof(host) || !*port || strspn(port, "0123456789") != strlen(port) ||
	    strlen(port) > 5 || atoi(port) < 1 || atoi(port) > 65535)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';

	/* Numeric first: never block the loop on DNS for the common case. */
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	r = getaddrinfo(host, port, &hints, &res);
	if (r == EAI_NONAME) {
		hints.ai_flags = AI_NUMERICSERV;
		r = getaddrinfo(host, port, &hints, &res);
	}
	if (r || !res)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	memcpy(out, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

static bool sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
	return a->ss_family == AF_UNSPEC;
}

static const struct mesh_wg_have *find_have(const struct mesh_wg_have *have, size_t n, const uint8_t *key)
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(have[i].key, key, MESH_KEY_LEN))
			return &have[i];
	return NULL;
}

static const struct mesh_wg_want *find_want(const struct mesh_wg_want *want, size_t n, const uint8_t *key)
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(want[i].key, key, MESH_KEY_LEN))
			return &want[i];
	return NULL;
}

/*
 * Endpoint policy: a new peer gets the registered endpoint; an existing peer gets it
 * again only when the registry's endpoint changed since we last applied it (or we
 * have no memory of applying it, e.g. after a restart) and the device disagrees.
 * That keeps an endpoint learned by roaming behind NAT.
 */
static bool endpoint_needs_set(const struct mesh_wg_want *w, const struct mesh_wg_have *h,
			       const struct mesh_wg_want *prev)
{
	if (w->endpoint.ss_family == AF_UNSPEC)
		return false;
	if (sockaddr_equal(&w->endpoint, &h->endpoint))
		return false;
	if (prev && sockaddr_equal(&prev->endpoint, &w->endpoint) && h->endpoint.ss_family != AF_UNSPEC)
		return false;
	return true;
}

int mesh_diff_peers(const struct mesh_wg_want *want, size_t nwant,
		    const struct mesh_wg_have *have, size_t nhave,
		    const struct mesh_wg_want *prev, size_t nprev,
		    struct mesh_change *out)
{
	size_t n = 0;

	/* Quadratic, but bounded by 254 x 254 key compares: cheaper than sorting here. */
	for (size_t i = 0; i < nwant; i++)
		if (find_want(want + i + 1, nwant - i - 1, want[i].key))
			return -EINVAL;

	for (size_t i = 0; i < nhave; i++) {
		if (find_want(want, nwant, have[i].key))
			continue;
		out[n] = (struct mesh_change){ .op = MESH_PEER_REMOVE };
		memcpy(out[n].key, have[i].key, MESH_KEY_LEN);
		n++;
	}

	for (size_t i = 0; i < nwant; i++) {
		const struct mesh_wg_want *w = &want[i];
		const struct mesh_wg_have *h = find_have(have, nhave, w->key);
		struct mesh_change c = { .op = MESH_PEER_UPDATE };

		memcpy(c.key, w->key, MESH_KEY_LEN);
		if (!h) {
			c.op = MESH_PEER_ADD;
			c.set_endpoint = w->endpoint.ss_family != AF_UNSPEC;
			c.set_allowed_ip = true;
			c.set_keepalive = w->keepalive != 0;
		} else {
			c.set_endpoint = endpoint_needs_set(w, h, prev ? find_want(prev, nprev, w->key) : NULL);
			c.set_allowed_ip = h->n_allowed != 1 || h->allowed_cidr != 32 ||
					   h->allowed_ip != w->allowed_ip;
			c.set_keepalive = h->keepalive != w->keepalive;
			if (!c.set_endpoint && !c.set_allowed_ip && !c.set_keepalive)
				continue;
		}
		c.endpoint = w->endpoint;
		c.allowed_ip = w->allowed_ip;
		c.keepalive = w->keepalive;
		out[n++] = c;
	}
	return (int)n;
}
