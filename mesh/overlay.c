/* SPDX-License-Identifier: MIT */
/* mesh: the overlay network (10.0.1.<token>), a peer's connect string and its UDP endpoint (the
 * diff of peers is netlink/wg-device-diff.c). */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "mesh/mesh.h"
#include "registry/registry.h"

uint32_t mesh_overlay_addr(uint32_t token)
{
	if (token < 1 || token > REGISTRY_MAX_PEERS)
		return 0;
	return htonl(MESH_OVERLAY_NET | token);
}

void mesh_overlay_addr_str(uint32_t token, char out[static 16])
{
	snprintf(out, 16, "%u.%u.%u.%u", MESH_OVERLAY_NET >> 24, (MESH_OVERLAY_NET >> 16) & 0xff,
		 (MESH_OVERLAY_NET >> 8) & 0xff, token);
}

const char *mesh_peer_connect_string(const struct mesh_peer *p, char addr_buf[static 16])
{
	if (p->mode == REGISTRY_MODE_TLS_GATEWAY)
		return p->endpoint;
	mesh_overlay_addr_str(p->token, addr_buf);
	return addr_buf;
}

int mesh_endpoint_parse(const char *endpoint, struct sockaddr_storage *out)
{
	char host[REGISTRY_ENDPOINT_MAX + 1];
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
