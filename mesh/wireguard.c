/* SPDX-License-Identifier: MIT */
/* mesh: the agent's WireGuard interface: create or adopt it, dump it, apply a plan's changes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "netlink/netlink.h"
#include "registry/registry.h"

int agent_wg_dump(struct mesh_agent *a, struct wg_device **dev)
{
	*dev = NULL;
	if (!a->wg)
		return -ENODEV;
	return wg_get_device(a->wg, a->cfg->ifname, dev, NULL);
}

int agent_wg_open(struct mesh_agent *a)
{
	const char *ifname = a->cfg->ifname;
	struct wg_device *dev = NULL;
	struct err_detail why = { "" };
	bool same_key, same_port;
	int r;

	r = wg_backend_open_auto(&a->wg, ifname, WG_AUTO_CREATE | WG_AUTO_START_USERSPACE, &why);
	if (r < 0) {
		log_error("WireGuard interface %s: %s", ifname, err_detail_str(&why, r));
		return r;
	}
	r = wg_get_device(a->wg, ifname, &dev, &why);
	if (r < 0) {
		log_error("reading WireGuard interface %s: %s", ifname, err_detail_str(&why, r));
		return r;
	}
	/*
	 * Adopting a running interface (agent restart): the same key and port are already
	 * there, and setting them again would be a no-op at best. A different key would
	 * force every peer to re-handshake, so we only set what differs.
	 */
	same_key = (dev->flags & WG_DEVICE_HAS_PRIVATE_KEY) &&
		   !memcmp(dev->public_key, a->id.wg_public_key, WG_KEY_LEN);
	same_port = dev->listen_port == a->cfg->listen_port;
	log_info("%s interface %s (%s backend)", dev->n_peers || same_key ? "adopting" : "using", ifname,
		 wg_backend_kind(a->wg) == WG_BACKEND_KERNEL ? "kernel" : "userspace");
	wg_device_free(dev);
	if (!same_key || !same_port) {
		struct wg_device set = {
			.flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT,
			.private_key = a->secrets->wg_private_key,
			.listen_port = a->cfg->listen_port,
		};

		snprintf(set.name, sizeof(set.name), "%s", ifname);
		r = wg_set_device(a->wg, &set, &why);
		if (r < 0) {
			log_error("setting the key and port of %s: %s", ifname, err_detail_str(&why, r));
			return r;
		}
	}
	r = rtnl_link_set_up(ifname, true, &why);
	if (r < 0) {
		log_error("bringing %s up: %s", ifname, err_detail_str(&why, r));
		return r;
	}
	a->iface_ready = true;
	return 0;
}

int agent_wg_set_address(struct mesh_agent *a, uint64_t token)
{
	struct ip_prefix addr = { .family = AF_INET, .len = MESH_OVERLAY_PREFIX_LEN };
	struct err_detail why = { "" };
	char text[16];
	int r;

	/* (uint32_t) below must not turn token 2^32 + 5 into 5. */
	if (token < 1 || token > REGISTRY_MAX_PEERS)
		return -ERANGE;
	if (a->addr_token && a->addr_token != token) {
		addr.ip4.s_addr = mesh_overlay_addr((uint32_t)a->addr_token);
		r = rtnl_addr_del(a->cfg->ifname, &addr, &why);
		mesh_overlay_addr_str((uint32_t)a->addr_token, text);
		if (r < 0)
			log_warn("removing our old address %s: %s", text, err_detail_str(&why, r));
	}
	addr.ip4.s_addr = mesh_overlay_addr((uint32_t)token);
	r = rtnl_addr_add(a->cfg->ifname, &addr, &why);
	if (r < 0) {
		mesh_overlay_addr_str((uint32_t)token, text);
		log_error("adding %s/%d to %s: %s", text, MESH_OVERLAY_PREFIX_LEN, a->cfg->ifname,
			  err_detail_str(&why, r));
		return r;
	}
	a->addr_token = token;
	return 0;
}

int agent_wg_apply(struct mesh_agent *a, const struct mesh_plan *plan)
{
	struct err_detail why = { "" };
	int r;

	if (!a->wg)
		return -ENODEV;
	if (plan->set_listen_port) {
		struct wg_device set = { .flags = WG_DEVICE_HAS_LISTEN_PORT, .listen_port = a->cfg->listen_port };

		snprintf(set.name, sizeof(set.name), "%s", a->cfg->ifname);
		r = wg_set_device(a->wg, &set, &why);
		if (r < 0)
			log_error("restoring the listen port %u of %s: %s", a->cfg->listen_port, a->cfg->ifname,
				  err_detail_str(&why, r));
	}
	if (!plan->n_changes)
		return 0;
	r = wg_apply_peers(a->wg, a->cfg->ifname, plan->changes, plan->n_changes, &why);
	if (r < 0)
		log_error("programming %zu peer change%s on %s: %s", plan->n_changes,
			  plan->n_changes == 1 ? "" : "s", a->cfg->ifname, err_detail_str(&why, r));
	return r;
}

void agent_wg_close(struct mesh_agent *a)
{
	if (a->cfg->remove_on_exit) {
		struct err_detail why = { "" };
		int r = rtnl_link_delete(a->cfg->ifname, &why);

		if (r < 0)
			log_warn("removing %s: %s", a->cfg->ifname, err_detail_str(&why, r));
		else
			log_info("removed %s", a->cfg->ifname);
	}
	wg_backend_close(a->wg);
	a->wg = NULL;
}
