/* SPDX-License-Identifier: MIT */
/* mesh: the WireGuard interface's MTU: the rule (docs/transport.md, MTU), followed every few seconds. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "netlink/netlink.h"

uint32_t mesh_mtu_choose(uint32_t override, enum mesh_transport transport, uint32_t route_mtu)
{
	if (override)
		return override;
	if (transport == MESH_TRANSPORT_GATEWAY || !route_mtu)
		return MESH_MTU_DEFAULT;
	if (route_mtu < MESH_MTU_MIN + MESH_MTU_OVERHEAD)
		return MESH_MTU_MIN;
	if (route_mtu - MESH_MTU_OVERHEAD > MESH_MTU_MAX)
		return MESH_MTU_MAX;
	return route_mtu - MESH_MTU_OVERHEAD;
}

/* A UDP path: an address that is not loopback (the relay's sockets are 127.0.1.x). */
static bool udp_endpoint(const union wg_endpoint *ep)
{
	if (ep->addr.sa_family == AF_INET)
		return (ntohl(ep->in.sin_addr.s_addr) >> 24) != 127;
	if (ep->addr.sa_family == AF_INET6)
		return !IN6_IS_ADDR_LOOPBACK(&ep->in6.sin6_addr);
	return false;
}

static bool same_address(const union wg_endpoint *a, const union wg_endpoint *b)
{
	if (a->addr.sa_family != b->addr.sa_family)
		return false;
	if (a->addr.sa_family == AF_INET)
		return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
	return !memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(a->in6.sin6_addr));
}

/* The smallest route MTU towards dev's UDP endpoints, each address asked once; 0: none. */
static uint32_t smallest_route_mtu(const struct wg_device *dev, union wg_endpoint *where)
{
	uint32_t min = 0, mtu;

	for (size_t i = 0; dev && i < dev->n_peers; i++) {
		const union wg_endpoint *ep = &dev->peers[i].endpoint;
		bool asked = false;

		if (!udp_endpoint(ep))
			continue;
		for (size_t k = 0; k < i && !asked; k++)
			asked = same_address(&dev->peers[k].endpoint, ep);
		if (asked || rtnl_route_mtu(ep, &mtu, NULL) < 0)
			continue;
		if (!min || mtu < min) {
			min = mtu;
			*where = *ep;
		}
	}
	return min;
}

static void describe(char *out, size_t len, const struct mesh_config *cfg, uint32_t route,
		     const union wg_endpoint *where)
{
	char ep[64] = "";

	if (cfg->mtu) {
		snprintf(out, len, "P2P_MTU");
	} else if (cfg->transport == MESH_TRANSPORT_GATEWAY) {
		snprintf(out, len, "the gateway path's");
	} else if (!route) {
		snprintf(out, len, "no route MTU towards a UDP peer known yet");
	} else {
		wg_endpoint_format(ep, sizeof(ep), where);
		if (strrchr(ep, ':'))
			*strrchr(ep, ':') = '\0'; /* the address, not the port */
		snprintf(out, len, "route MTU %u towards %s, minus %u", route, ep, MESH_MTU_OVERHEAD);
	}
}

void mesh_mtu_follow(struct mesh_mtu *m, const struct mesh_config *cfg, const struct wg_device *dev)
{
	union wg_endpoint where = { 0 };
	struct err_detail why = { "" };
	uint32_t route = 0, want;
	uint64_t now = now_ms();
	char reason[128];
	int r;

	if (m->applied && now < m->next_check_ms)
		return;
	m->next_check_ms = now + MESH_MTU_CHECK_MS;
	if (!cfg->mtu && cfg->transport != MESH_TRANSPORT_GATEWAY)
		route = smallest_route_mtu(dev, &where);
	/* Peers that all moved to the gateway keep the UDP value: they may come back any time. */
	if (route) {
		m->route = route;
		m->where = where;
	}
	want = mesh_mtu_choose(cfg->mtu, cfg->transport, m->route);
	if (want == m->applied || want == m->failed)
		return;
	describe(reason, sizeof(reason), cfg, m->route, &m->where);
	r = rtnl_link_set_mtu(cfg->ifname, want, &why);
	if (r < 0) {
		log_error("interface %s: setting MTU %u (%s): %s", cfg->ifname, want, reason,
			  err_detail_str(&why, r));
		m->failed = want;
		return;
	}
	log_info("interface %s: MTU %u (%s)", cfg->ifname, want, reason);
	m->applied = want;
	m->failed = 0;
}
