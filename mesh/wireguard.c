/* SPDX-License-Identifier: MIT */
/* mesh: the agent's WireGuard interface: create or adopt it, dump it, apply a plan's changes. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "netlink/netlink.h"
#include "registry/registry.h"

struct mesh_device {
	const struct mesh_config *cfg; /* borrowed: the interface name, listen port, remove_on_exit */
	struct wg_backend *wg;
	uint64_t addr_token; /* token whose 10.0.1.t is on the interface; 0: none */
	struct mesh_device_stats stats;
	struct mesh_mtu mtu; /* mtu.c: what is set, the route MTU it came from */
};

int mesh_device_dump(struct mesh_device *d, struct wg_device **dev)
{
	*dev = NULL;
	if (!d)
		return -ENODEV;
	return wg_get_device(d->wg, d->cfg->ifname, dev, NULL);
}

/* Create or adopt the interface, its key and port set where they differ, and bring it up. */
static int device_setup(struct mesh_device *d, const uint8_t public_key[static WG_KEY_LEN],
			const uint8_t private_key[static WG_KEY_LEN])
{
	const char *ifname = d->cfg->ifname;
	struct wg_device *dev = NULL;
	struct err_detail why = { "" };
	bool same_key, same_port;
	int r;

	r = wg_backend_open_auto(&d->wg, ifname, WG_AUTO_CREATE | WG_AUTO_START_USERSPACE, &why);
	if (r < 0) {
		log_error("WireGuard interface %s: %s", ifname, err_detail_str(&why, r));
		return r;
	}
	r = wg_get_device(d->wg, ifname, &dev, &why);
	if (r < 0) {
		log_error("reading WireGuard interface %s: %s", ifname, err_detail_str(&why, r));
		return r;
	}
	/*
	 * Adopting a running interface (agent restart): the same key and port are already
	 * there, and setting them again would be a no-op at best. A different key would
	 * force every peer to re-handshake, so we only set what differs.
	 */
	same_key =
		(dev->flags & WG_DEVICE_HAS_PRIVATE_KEY) && !memcmp(dev->public_key, public_key, WG_KEY_LEN);
	same_port = dev->listen_port == d->cfg->listen_port;
	log_info("%s interface %s (%s backend)", dev->n_peers || same_key ? "adopting" : "using", ifname,
		 wg_backend_kind(d->wg) == WG_BACKEND_KERNEL ? "kernel" : "userspace");
	wg_device_free(dev);
	if (!same_key || !same_port) {
		struct wg_device set = {
			.flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT,
			.private_key = private_key,
			.listen_port = d->cfg->listen_port,
		};

		snprintf(set.name, sizeof(set.name), "%s", ifname);
		r = wg_set_device(d->wg, &set, &why);
		if (r < 0) {
			log_error("setting the key and port of %s: %s", ifname, err_detail_str(&why, r));
			return r;
		}
	}
	/* P2P_MTU, the gateway's or 1420 until a UDP peer's route MTU is known (each turn). */
	mesh_mtu_follow(&d->mtu, d->cfg, NULL);
	r = rtnl_link_set_up(ifname, true, &why);
	if (r < 0) {
		log_error("bringing %s up: %s", ifname, err_detail_str(&why, r));
		return r;
	}
	return 0;
}

int mesh_device_open(struct mesh_device **out, const struct mesh_config *cfg,
		     const uint8_t public_key[static WG_KEY_LEN],
		     const uint8_t private_key[static WG_KEY_LEN])
{
	struct mesh_device *d = calloc(1, sizeof(*d));
	int r;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	d->cfg = cfg;
	r = device_setup(d, public_key, private_key);
	if (r < 0) {
		mesh_device_close(d);
		return r;
	}
	*out = d;
	return 0;
}

struct wg_backend *mesh_device_backend(const struct mesh_device *d)
{
	return d ? d->wg : NULL;
}

uint64_t mesh_device_address_token(const struct mesh_device *d)
{
	return d ? d->addr_token : 0;
}

struct mesh_device_stats mesh_device_stats(const struct mesh_device *d)
{
	return d ? d->stats : (struct mesh_device_stats){ 0 };
}

int mesh_device_set_address(struct mesh_device *d, uint64_t token)
{
	struct ip_prefix addr = { .family = AF_INET, .len = MESH_OVERLAY_PREFIX_LEN };
	struct err_detail why = { "" };
	char text[16];
	int r;

	/* (uint32_t) below must not turn token 2^32 + 5 into 5. */
	if (token < 1 || token > REGISTRY_MAX_PEERS)
		return -ERANGE;
	if (d->addr_token && d->addr_token != token) {
		addr.ip4.s_addr = mesh_overlay_addr((uint32_t)d->addr_token);
		r = rtnl_addr_del(d->cfg->ifname, &addr, &why);
		mesh_overlay_addr_str((uint32_t)d->addr_token, text);
		if (r < 0)
			log_warn("removing our old address %s: %s", text, err_detail_str(&why, r));
	}
	addr.ip4.s_addr = mesh_overlay_addr((uint32_t)token);
	r = rtnl_addr_add(d->cfg->ifname, &addr, &why);
	if (r < 0) {
		mesh_overlay_addr_str((uint32_t)token, text);
		log_error("adding %s/%d to %s: %s", text, MESH_OVERLAY_PREFIX_LEN, d->cfg->ifname,
			  err_detail_str(&why, r));
		return r;
	}
	d->addr_token = token;
	return 0;
}

int mesh_device_apply(struct mesh_device *d, const struct mesh_plan *plan)
{
	struct err_detail why = { "" };
	int r;

	if (!d)
		return -ENODEV;
	if (plan->set_listen_port) {
		struct wg_device set = { .flags = WG_DEVICE_HAS_LISTEN_PORT,
					 .listen_port = d->cfg->listen_port };

		snprintf(set.name, sizeof(set.name), "%s", d->cfg->ifname);
		r = wg_set_device(d->wg, &set, &why);
		if (r < 0)
			log_error("restoring the listen port %u of %s: %s", d->cfg->listen_port,
				  d->cfg->ifname, err_detail_str(&why, r));
	}
	if (!plan->n_changes)
		return 0;
	r = wg_apply_peers(d->wg, d->cfg->ifname, plan->changes, plan->n_changes, &why);
	d->stats.applies++;
	d->stats.changes += plan->n_changes;
	d->stats.failures += r < 0;
	if (r < 0)
		log_error("programming %zu peer change%s on %s: %s", plan->n_changes,
			  plan->n_changes == 1 ? "" : "s", d->cfg->ifname, err_detail_str(&why, r));
	return r;
}

void mesh_device_close(struct mesh_device *d)
{
	if (!d)
		return;
	if (d->cfg->remove_on_exit) {
		struct err_detail why = { "" };
		int r = rtnl_link_delete(d->cfg->ifname, &why);

		if (r < 0)
			log_warn("removing %s: %s", d->cfg->ifname, err_detail_str(&why, r));
		else
			log_info("removed %s", d->cfg->ifname);
	}
	wg_backend_close(d->wg);
	free(d);
}

void mesh_device_follow_mtu(struct mesh_device *d, const struct wg_device *dump)
{
	if (d)
		mesh_mtu_follow(&d->mtu, d->cfg, dump);
}
