/* SPDX-License-Identifier: MIT */
/* mesh: the overlay network (10.0.1.<token>), a peer's connect string and its UDP endpoint (the
 * diff of peers is netlink/wg-device-diff.c). */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "common/common.h"
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

/* endpoint's address: numeric, or with dns a name looked up (it may block). */
static int endpoint_lookup(const char *endpoint, bool dns, struct sockaddr_storage *out)
{
	struct hostport hp;
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res = NULL;
	char port[6];
	int r;

	if (hostport_split(endpoint, strlen(endpoint), 0, &hp) < 0)
		return -EINVAL;
	snprintf(port, sizeof(port), "%u", hp.port);

	/* Numeric first: never block the loop on DNS for the common case. */
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	r = getaddrinfo(hp.host, port, &hints, &res);
	if (r == EAI_NONAME && !dns)
		return -EAGAIN;
	if (r == EAI_NONAME) {
		hints.ai_flags = AI_NUMERICSERV;
		r = getaddrinfo(hp.host, port, &hints, &res);
	}
	if (r || !res)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	memcpy(out, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

int mesh_endpoint_parse(const char *endpoint, struct sockaddr_storage *out)
{
	return endpoint_lookup(endpoint, true, out);
}

int mesh_endpoint_udp(const char *field, bool dns, union wg_endpoint *out)
{
	char udp[REGISTRY_ENDPOINT_MAX + 1], gw[256];
	struct sockaddr_storage ss;
	uint16_t port;
	int r;

	memset(out, 0, sizeof(*out));
	if (mesh_endpoint_split(field, udp, gw, &port) < 0)
		return -EINVAL;
	if (!udp[0])
		return 0;
	r = endpoint_lookup(udp, dns, &ss);
	if (r < 0)
		return r;
	if (ss.ss_family == AF_INET)
		memcpy(&out->in, &ss, sizeof(out->in));
	else if (ss.ss_family == AF_INET6)
		memcpy(&out->in6, &ss, sizeof(out->in6));
	return 0;
}
