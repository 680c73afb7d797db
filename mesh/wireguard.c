/* SPDX-License-Identifier: MIT */
/* mesh: the agent's WireGuard interface: create or adopt it, and apply only the difference. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "netlink/netlink.h"

static void sockaddr_from_wg(struct sockaddr_storage *out, const union wg_endpoint *ep)
{
	memset(out, 0, sizeof(*out));
	if (ep->addr.sa_family == AF_INET)
		memcpy(out, &ep->in, sizeof(ep->in));
	else if (ep->addr.sa_family == AF_INET6)
		memcpy(out, &ep->in6, sizeof(ep->in6));
}

static void sockaddr_to_wg(union wg_endpoint *out, const struct sockaddr_storage *ss)
{
	memset(out, 0, sizeof(*out));
	if (ss->ss_family == AF_INET)
		memcpy(&out->in, ss, sizeof(out->in));
	else if (ss->ss_family == AF_INET6)
		memcpy(&out->in6, ss, sizeof(out->in6));
}

static void have_from_device_peer(struct mesh_wg_have *h, const struct wg_peer *p)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->key, p->public_key, MESH_KEY_LEN);
	sockaddr_from_wg(&h->endpoint, &p->endpoint);
	h->n_allowed = (unsigned)p->n_allowedips;
	for (size_t k = 0; k < p->n_allowedips; k++) {
		if (p->allowedips[k].family == AF_INET) {
			h->allowed_ip = p->allowedips[k].ip4.s_addr;
			h->allowed_cidr = p->allowedips[k].len;
			break;
		}
	}
	h->keepalive = p->persistent_keepalive;
	h->last_handshake = (int64_t)p->last_handshake.tv_sec;
	h->rx_bytes = p->rx_bytes;
	h->tx_bytes = p->tx_bytes;
}

int agent_wg_dump(struct agent *a, struct mesh_wg_have **have, size_t *n)
{
	struct wg_device *dev = NULL;
	int r;

	*have = NULL;
	*n = 0;
	if (!a->wg)
		return -ENODEV;
	r = wg_get_device(a->wg, a->cfg->ifname, &dev);
	if (r < 0)
		return r;
	if (dev->n_peers) {
		*have = calloc(dev->n_peers, sizeof(**have));
		if (!*have) {
			wg_device_free(dev);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < dev->n_peers; i++)
		have_from_device_peer(&(*have)[i], &dev->peers[i]);
	*n = dev->n_peers;
	wg_device_free(dev);
	return 0;
}

int agent_wg_open(struct agent *a)
{
	const char *ifname = a->cfg->ifname;
	struct wg_device *dev = NULL;
	int r;

	r = wg_backend_open_auto(&a->wg, ifname, WG_AUTO_CREATE | WG_AUTO_START_USERSPACE);
	if (r < 0) {
		log_error("WireGuard interface %s: %s", ifname, netlink_strerror(r));
		return r;
	}
	r = wg_get_device(a->wg, ifname, &dev);
	if (r < 0) {
		log_error("reading WireGuard interface %s: %s", ifname, netlink_strerror(r));
		return r;
	}
	/*
	 * Adopting a running interface (agent restart): the same key and port are already
	 * there, and setting them again would be a no-op at best. A different key would
	 * force every peer to re-handshake, so we only set what differs.
	 */
	bool same_key = (dev->flags & WG_DEVICE_HAS_PRIVATE_KEY) &&
			!memcmp(dev->public_key, a->id.wg_public_key, WG_KEY_LEN);
	bool same_port = dev->listen_port == a->cfg->listen_port;
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
		r = wg_set_device(a->wg, &set);
		if (r < 0) {
			log_error("setting the key and port of %s: %s", ifname, netlink_strerror(r));
			return r;
		}
	}
	r = rtnl_link_set_up(ifname, true);
	if (r < 0) {
		log_error("bringing %s up: %s", ifname, netlink_strerror(r));
		return r;
	}
	a->iface_ready = true;
	return 0;
}

int agent_wg_set_address(struct agent *a, uint64_t token)
{
	struct ip_prefix addr = { .family = AF_INET, .len = 24 };
	int r;

	/* (uint32_t) below must not turn token 2^32 + 5 into 5. */
	if (token < 1 || token > MESH_MAX_PEERS)
		return -ERANGE;
	if (a->addr_token && a->addr_token != token) {
		addr.ip4.s_addr = mesh_overlay_addr((uint32_t)a->addr_token);
		r = rtnl_addr_del(a->cfg->ifname, &addr);
		if (r < 0)
			log_warn("removing our old address 10.0.1.%llu: %s", (unsigned long long)a->addr_token,
				 netlink_strerror(r));
	}
	addr.ip4.s_addr = mesh_overlay_addr((uint32_t)token);
	r = rtnl_addr_add(a->cfg->ifname, &addr);
	if (r < 0) {
		log_error("adding 10.0.1.%llu/24 to %s: %s", (unsigned long long)token, a->cfg->ifname,
			  netlink_strerror(r));
		return r;
	}
	a->addr_token = token;
	return 0;
}

const struct mesh_wg_have *agent_have_by_key(const struct mesh_wg_have *have, size_t n,
					     const uint8_t *key)
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(have[i].key, key, MESH_KEY_LEN))
			return &have[i];
	return NULL;
}

static const struct mesh_peer *peer_by_key(const struct agent *a, const uint8_t *key)
{
	for (size_t i = 0; i < a->n_peers; i++)
		if (!memcmp(a->peers[i].wg_key, key, MESH_KEY_LEN))
			return &a->peers[i];
	return NULL;
}

static void log_change(const struct agent *a, const struct mesh_change *c)
{
	const struct mesh_peer *p = peer_by_key(a, c->key);
	char key[WG_KEY_B64_LEN];

	wg_key_to_base64(key, c->key);
	if (c->op == MESH_PEER_REMOVE)
		log_info("peer %s: removed", key);
	else
		log_info("peer 10.0.1.%u (%s): %s%s%s%s%s", p ? p->token : 0, key,
			 c->op == MESH_PEER_ADD ? "added" : "updated",
			 c->set_endpoint && p ? ", endpoint " : "", c->set_endpoint && p ? p->endpoint : "",
			 c->op == MESH_PEER_UPDATE && c->set_allowed_ip ? ", allowed IPs" : "",
			 c->op == MESH_PEER_UPDATE && c->set_keepalive ? ", keepalive" : "");
}

int agent_wg_reconcile(struct agent *a)
{
	struct mesh_wg_want *want = NULL;
	struct mesh_wg_have *have = NULL;
	struct mesh_change *changes = NULL;
	struct ip_prefix *ips = NULL;
	struct wg_peer *set = NULL;
	size_t nhave = 0;
	bool staged = false;
	int n, r;

	if (!a->wg)
		return -ENODEV;
	r = agent_wg_dump(a, &have, &nhave);
	if (r < 0) {
		log_error("reading the peers of %s: %s", a->cfg->ifname, netlink_strerror(r));
		return r;
	}
	want = calloc(a->n_peers + 1, sizeof(*want));
	changes = calloc(a->n_peers + nhave + 1, sizeof(*changes));
	if (!want || !changes) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < a->n_peers; i++) {
		memcpy(want[i].key, a->peers[i].wg_key, MESH_KEY_LEN);
		/* Already checked when the record was accepted; DNS names resolve here. */
		if (agent_peer_endpoint(a, &a->peers[i], &want[i].endpoint) < 0)
			want[i].endpoint.ss_family = AF_UNSPEC;
		want[i].allowed_ip = mesh_overlay_addr(a->peers[i].token);
		want[i].keepalive = a->cfg->keepalive;
		/*
		 * A peer added with a keepalive is sent a handshake at once. When both sides of
		 * a pair add each other in the same instant (they follow the same block), both
		 * initiate, each one's state is overwritten by the other's initiation, both
		 * responses are dropped and the pair retries in step every REKEY_TIMEOUT (5 s).
		 * So only the lower token initiates at once; the higher one gets its keepalive
		 * a poll later, over the session by then, or as a handshake the other accepts.
		 */
		if (want[i].keepalive && a->token > a->peers[i].token &&
		    !agent_have_by_key(have, nhave, want[i].key)) {
			want[i].keepalive = 0;
			staged = true;
		}
	}
	n = mesh_diff_peers(want, a->n_peers, have, nhave, a->applied, a->n_applied, changes);
	if (n < 0) {
		r = n;
		log_error("two verified records share a WireGuard key; not programming the device");
		goto out;
	}
	if (n > 0) {
		set = calloc((size_t)n, sizeof(*set));
		ips = calloc((size_t)n, sizeof(*ips));
		if (!set || !ips) {
			r = -ENOMEM;
			goto out;
		}
		for (int i = 0; i < n; i++) {
			const struct mesh_change *c = &changes[i];
			struct wg_peer *p = &set[i];

			memcpy(p->public_key, c->key, WG_KEY_LEN);
			if (c->op == MESH_PEER_REMOVE) {
				p->flags = WG_PEER_REMOVE;
				continue;
			}
			if (c->op == MESH_PEER_UPDATE)
				p->flags |= WG_PEER_UPDATE_ONLY;
			if (c->set_endpoint) {
				p->flags |= WG_PEER_HAS_ENDPOINT;
				sockaddr_to_wg(&p->endpoint, &c->endpoint);
			}
			if (c->set_keepalive || c->op == MESH_PEER_ADD) {
				p->flags |= WG_PEER_HAS_KEEPALIVE;
				p->persistent_keepalive = c->keepalive;
			}
			if (c->set_allowed_ip) {
				p->flags |= WG_PEER_REPLACE_ALLOWEDIPS;
				ips[i] = (struct ip_prefix){ .family = AF_INET, .len = 32 };
				ips[i].ip4.s_addr = c->allowed_ip;
				p->allowedips = &ips[i];
				p->n_allowedips = 1;
			}
		}
		r = wg_apply_peers(a->wg, a->cfg->ifname, set, (size_t)n);
		if (r < 0) {
			log_error("programming %d peer change%s on %s: %s", n, n == 1 ? "" : "s",
				  a->cfg->ifname, netlink_strerror(r));
			goto out;
		}
		for (int i = 0; i < n; i++)
			log_change(a, &changes[i]);
	}
	free(a->applied);
	a->applied = want;
	a->n_applied = a->n_peers;
	want = NULL;
	if (staged)
		a->keepalive_due_ms = now_ms() + a->cfg->poll_ms;
	r = 0;
out:
	free(want);
	free(have);
	free(changes);
	free(set);
	free(ips);
	return r;
}

void agent_wg_close(struct agent *a)
{
	if (a->cfg->remove_on_exit) {
		int r = rtnl_link_delete(a->cfg->ifname);

		if (r < 0)
			log_warn("removing %s: %s", a->cfg->ifname, netlink_strerror(r));
		else
			log_info("removed %s", a->cfg->ifname);
	}
	wg_backend_close(a->wg);
	a->wg = NULL;
}
