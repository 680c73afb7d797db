/* SPDX-License-Identifier: MIT */
/*
 * mesh-decide: what the agent's every-poll device check costs at the registry's limit.
 * mesh_decide on a device dump of 254 peers (in step, then with one peer drifted), and,
 * given an interface, wg_get_device of it (the dump itself). Figures are printed only.
 *
 *   mesh-decide [ROUNDS] [IFNAME]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "netlink/netlink.h"
#include "registry/registry.h"

#define N REGISTRY_MAX_PEERS

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct mesh_self self;
static struct mesh_state st;

/* 254 peers in the state, and a device that holds exactly them. */
static void setup(struct wg_device *dev, struct ip_prefix *ips)
{
	self.mode = REGISTRY_MODE_WIREGUARD;
	self.listen_port = 51830;
	self.keepalive = 10;
	mesh_state_init(&st);
	st.peers = calloc(N, sizeof(*st.peers));
	dev->peers = calloc(N, sizeof(*dev->peers));
	if (!st.peers || !dev->peers)
		exit(1);
	st.n_peers = N;
	st.token = 1;
	dev->n_peers = N;
	dev->listen_port = 51830;
	for (uint32_t i = 0; i < N; i++) {
		struct mesh_peer *m = &st.peers[i];
		struct wg_peer *p = &dev->peers[i];

		m->token = i + 1;
		m->mode = REGISTRY_MODE_WIREGUARD;
		memset(m->wg_key, 0, sizeof(m->wg_key));
		m->wg_key[0] = (uint8_t)i;
		m->wg_key[1] = 0x5a;
		snprintf(m->endpoint, sizeof(m->endpoint), "10.%u.%u.1:51830", i / 200, i % 200);
		memcpy(p->public_key, m->wg_key, 32);
		wg_endpoint_parse(&p->endpoint, m->endpoint, NULL);
		p->persistent_keepalive = 10;
		ips[i] = (struct ip_prefix){ .family = AF_INET, .len = 32 };
		ips[i].ip4.s_addr = mesh_overlay_addr(m->token);
		p->allowedips = &ips[i];
		p->n_allowedips = 1;
	}
}

int main(int argc, char **argv)
{
	static struct ip_prefix ips[N];
	int rounds = argc > 1 ? atoi(argv[1]) : 2000;
	struct wg_device dev = { 0 };
	struct mesh_input in = { .dev = &dev };
	struct mesh_plan plan = { 0 };
	uint64_t t0, t1, changes = 0;

	setup(&dev, ips);
	if (rounds < 1)
		rounds = 1;
	t0 = now_us();
	for (int i = 0; i < rounds; i++) {
		in.now_ms = (uint64_t)i;
		mesh_decide(&st, &self, &in, &plan);
		changes += plan.n_changes;
		mesh_note_applied(&st, &plan);
	}
	t1 = now_us();
	printf("mesh: decide on a device of %d peers in step: %" PRIu64 " us a turn (%d turns, %" PRIu64
	       " changes)\n", N, (t1 - t0) / (uint64_t)rounds, rounds, changes);
	ips[100].len = 24;  /* drift: someone widened one allowed IP */
	t0 = now_us();
	mesh_decide(&st, &self, &in, &plan);
	t1 = now_us();
	printf("mesh: decide with one peer drifted: %" PRIu64 " us, %zu change\n", t1 - t0, plan.n_changes);
	mesh_plan_clear(&plan);

	if (argc > 2) {
		struct wg_backend *b = NULL;
		struct err_detail why = { "" };
		int r = wg_backend_open_named(&b, "auto", argv[2], &why);

		if (r < 0) {
			fprintf(stderr, "mesh-decide: %s: %s\n", argv[2], err_detail_str(&why, r));
			return 1;
		}
		t0 = now_us();
		for (int i = 0; i < 100; i++) {
			struct wg_device *d = NULL;

			if (wg_get_device(b, argv[2], &d, NULL) == 0 && i == 0)
				printf("mesh: dump of %s (%s backend): %zu peers", argv[2],
				       wg_backend_kind(b) == WG_BACKEND_KERNEL ? "kernel" : "userspace", d->n_peers);
			wg_device_free(d);
		}
		t1 = now_us();
		printf(", %" PRIu64 " us a dump (100 dumps)\n", (t1 - t0) / 100);
		wg_backend_close(b);
	}
	free(dev.peers);
	mesh_state_clear(&st);
	return 0;
}
