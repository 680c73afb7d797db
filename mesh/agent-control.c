/* SPDX-License-Identifier: MIT */
/*
 * mesh: the agent's control socket (the documents and actions of docs/control-protocol.md)
 * and the list of sources the command's loop polls.
 */
#include <errno.h>
#include <string.h>

#include "attest/attest.h"
#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "net/net.h"
#include "registry/registry.h"

/* The status document: the snapshot with the device's live counters (status works without them). */
static int status_json(struct mesh_agent *a, const struct mesh_snapshot *snap, struct buf *out)
{
	struct wg_device *dev = NULL;
	int r;

	if (a->cfg->mode == REGISTRY_MODE_WIREGUARD)
		mesh_device_dump(a->device, &dev);
	r = mesh_snapshot_status_json(snap, dev, out);
	wg_device_free(dev);
	return r;
}

static int control_reply(void *ctx, const struct control_request *req, struct buf *out)
{
	struct mesh_agent *a = ctx;
	struct mesh_snapshot snap;

	if (!strcmp(req->name, "peers") || !strcmp(req->name, "status")) {
		agent_snapshot(a, &snap);
		return req->name[0] == 'p' ? mesh_snapshot_peers_json(&snap, out)
					   : status_json(a, &snap, out);
	}
	if (!strncmp(req->name, "leader.", 7)) {
		/* Sent, not mined: a change seen already is published now, else by a later turn. */
		int r = agent_leader_act(a, req, out);

		if (r > 0)
			agent_publish_leader(a);
		return r < 0 ? r : 0;
	}
	if (!strcmp(req->name, "metrics"))
		return agent_metrics_json(a, out);
	if (!strcmp(req->name, "leader")) {
		int r = buf_printf(out, "{\"version\":%d,\"leader\":", CONTROL_VERSION);

		agent_snapshot(a, &snap);
		if (r == 0)
			r = mesh_snapshot_leader_json(&snap, out);
		if (r == 0)
			r = buf_printf(out, ",\"actions\":");
		if (r == 0)
			r = mesh_sender_actions_json(a->sender, out);
		return r == 0 ? buf_printf(out, "}") : r;
	}
	return -ENOENT;
}

int agent_add_source(struct mesh_agent *a, int (*fd)(void *ctx), void (*serve)(void *ctx), void *ctx)
{
	if (a->n_sources == MESH_AGENT_SOURCES_MAX)
		return -ENOSPC;
	a->sources[a->n_sources++] = (struct agent_source){ .fd = fd, .serve = serve, .ctx = ctx };
	return 0;
}

static int control_fd(void *ctx)
{
	const struct mesh_agent *a = ctx;

	return a->control.fd;
}

static void serve_control(void *ctx)
{
	struct mesh_agent *a = ctx;

	control_accept(&a->control, control_reply, a);
}

static int push_fd(void *ctx)
{
	return agent_push_fd(ctx);
}

static void serve_push(void *ctx)
{
	agent_push_serve(ctx);
}

/* The control socket and the push WebSocket as the loop's first sources. */
int agent_add_control_sources(struct mesh_agent *a)
{
	int r = agent_add_source(a, control_fd, serve_control, a);

	return r < 0 ? r : agent_add_source(a, push_fd, serve_push, a);
}
