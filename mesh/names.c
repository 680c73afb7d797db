/* SPDX-License-Identifier: MIT */
/*
 * mesh: peer names over DNS (P2P_DNS=on): the dns/ server on our overlay address, port 53,
 * as one of the loop's sources, answering from a name table rebuilt every turn from the
 * snapshot (the same labels the hosts file and the peers document show).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/common.h"
#include "dns/dns.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"

#define NAMES_PORT 53
#define NAMES_RETRY_MS 30000 /* a bind that failed is tried again this much later */

struct agent_names {
	struct dns_server *srv; /* NULL until our token is known, or while binding fails */
	struct dns_zone zone;
	struct dns_table table;
	uint64_t token;    /* whose overlay address srv is bound to */
	uint64_t retry_ms; /* when to try binding again after a failure */
};

static int names_fd(void *ctx)
{
	const struct agent_names *n = ctx;

	return n->srv ? dns_server_fd(n->srv) : -1;
}

static void names_serve(void *ctx)
{
	struct agent_names *n = ctx;

	if (n->srv)
		(void)dns_server_serve(n->srv, &n->zone, &n->table);
}

int agent_names_open(struct mesh_agent *a)
{
	struct err_detail why = { "" };
	struct agent_names *n;
	int r;

	if (!a->cfg->dns)
		return 0;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	r = dns_zone_set(&n->zone, a->cfg->dns_zone, 0, &why);
	if (r == 0)
		r = agent_add_source(a, names_fd, names_serve, n);
	if (r < 0) {
		log_error("DNS: %s", err_detail_str(&why, r));
		free(n);
		return r;
	}
	a->names = n;
	return 0;
}

/* Bind to our overlay address (IP_FREEBIND: before the interface holds it). */
static void names_bind(struct agent_names *n, uint64_t token, uint64_t now)
{
	struct dns_server_config cfg = { .allow_net = MESH_OVERLAY_NET,
					 .allow_prefix = MESH_OVERLAY_PREFIX_LEN,
					 .freebind = true };
	struct err_detail why = { "" };
	char addr[16], listen[24];
	int r;

	dns_server_free(n->srv);
	n->srv = NULL;
	n->token = token;
	mesh_overlay_addr_str((uint32_t)token, addr);
	snprintf(listen, sizeof(listen), "%s:%u", addr, NAMES_PORT);
	cfg.listen = listen;
	r = dns_server_open(&n->srv, &cfg, &why);
	if (r < 0) {
		log_error("DNS on %s: %s (trying again in %u s)", listen, err_detail_str(&why, r),
			  NAMES_RETRY_MS / 1000);
		n->retry_ms = now + NAMES_RETRY_MS;
		return;
	}
	log_info("DNS: answering for %s on %s (UDP and TCP)", n->zone.text, listen);
}

/* The table from the snapshot: us and every verified peer, by token and by label. */
static void names_fill(struct agent_names *n, const struct mesh_snapshot *s)
{
	dns_table_reset(&n->table);
	if (s->token)
		(void)dns_table_add(&n->table, (uint32_t)s->token, mesh_overlay_addr((uint32_t)s->token),
				    mesh_snapshot_label(s, s->token, s->instance_id));
	for (size_t i = 0; i < s->n_peers; i++) {
		const struct mesh_peer *p = &s->peers[i];

		(void)dns_table_add(&n->table, (uint32_t)p->token, mesh_overlay_addr((uint32_t)p->token),
				    mesh_snapshot_label(s, p->token, p->instance_id));
	}
	n->zone.serial = (uint32_t)s->generation;
}

void agent_names_sync(struct mesh_agent *a)
{
	struct agent_names *n = a->names;
	struct mesh_snapshot snap;
	uint64_t now;

	if (!n)
		return;
	agent_snapshot(a, &snap);
	now = now_ms();
	if (snap.token && mesh_overlay_addr((uint32_t)snap.token) &&
	    (snap.token != n->token || (!n->srv && now >= n->retry_ms)))
		names_bind(n, snap.token, now);
	names_fill(n, &snap);
}

void agent_names_close(struct mesh_agent *a)
{
	if (!a->names)
		return;
	dns_server_free(a->names->srv);
	free(a->names);
	a->names = NULL;
}
