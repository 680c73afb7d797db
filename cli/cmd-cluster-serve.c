/* SPDX-License-Identifier: MIT */
/*
 * dstack-p2p cluster serve: the dashboard. The page's files from --web-dir, the document of
 * `cluster status --json` (the same code), the compose and device lists folded from the
 * contract's events, and those events by name as server-sent events. It reads only: every
 * change is signed in the operator's own wallet, in the browser; no key is ever here.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cluster-cmd.h"
#include "cli/dash-request.h"
#include "net/net.h"
#include "registry/registry.h"

#define SSE_RETRY_MS 1000         /* a closed stream: the browser comes back this soon */
#define STREAM_MS 60000           /* a stream is closed after this long (the browser returns) */
#define MAX_STREAMS 16            /* of the server's 32 connections */
#define PING_MS 15000
#define FILE_MAX (512 << 10)

struct dash {
	struct cluster_ctx *c;
	struct ops_follow events;            /* the contract's events, the lists folded */
	bool loopback;                       /* listening on loopback: check Host */
	char web_dir[4096];                  /* where the page's files are */
	uint64_t pinged_at;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void dash_poll(struct dash *d)
{
	ops_follow_poll(d->c->ops, &d->events); /* a failure is in last_error, for the page */
}

/* ---- the API ------------------------------------------------------------------------------ */

static int reply_error(struct buf *out, int status, const char *msg)
{
	buf_reset(out);
	buf_printf(out, "{\"error\":");
	json_append_string(out, msg);
	buf_printf(out, "}");
	return status;
}

static int api_lists(struct dash *d, struct buf *out)
{
	buf_printf(out, "{");
	ops_lists_json(&d->events.lists, out);
	buf_printf(out, ",\"scannedBelow\":%" PRIu64 ",\"error\":", d->events.next_block);
	if (d->events.last_error[0])
		json_append_string(out, d->events.last_error);
	else
		buf_printf(out, "null");
	return buf_printf(out, "}") < 0 ? 500 : 200;
}

/* Every kept event after `after` as server-sent events; the id of the last one sent. */
static uint64_t append_events(const struct dash *d, uint64_t after, struct buf *out)
{
	uint64_t first = ops_follow_first(&d->events), seq = d->events.seq;

	if (after > seq)
		after = 0;  /* an id from before a restart of this server: start over */
	if (after + 1 > first)
		first = after + 1;
	for (uint64_t id = first; id <= seq; id++) {
		const struct ops_event *e = ops_follow_event(&d->events, id);

		if (!e)
			continue;
		buf_printf(out, "id: %" PRIu64 "\nevent: cluster\ndata: ", e->id);
		buf_append(out, e->json.data, e->json.len);
		buf_printf(out, "\n\n");
	}
	return seq;
}

/*
 * /api/events: a stream that stays open for STREAM_MS, every event after Last-Event-ID
 * first, then each new one as the chain is polled. When the server closes it the browser's
 * EventSource comes back after the retry hint with Last-Event-ID, and misses nothing.
 */
static int api_events(struct dash *d, uint64_t after, struct buf *out, struct http_reply_meta *meta)
{
	buf_printf(out, "retry: %d\n\n", SSE_RETRY_MS);
	if (d->events.last_error[0]) {
		buf_printf(out, "event: rpc-error\ndata: ");
		json_append_string(out, d->events.last_error);
		buf_printf(out, "\n\n");
	}
	meta->stream = true;
	meta->cursor = append_events(d, after, out);
	return 200;
}

/* What a stream gets each tick: the events since its cursor, or a comment now and then so
 * a proxy or the browser does not take a quiet stream for a dead one. */
static int stream_more(void *ctx, uint64_t *cursor, struct buf *out)
{
	struct dash *d = ctx;
	uint64_t now = now_ms();

	dash_poll(d);
	if (*cursor < d->events.seq)
		*cursor = append_events(d, *cursor, out);
	else if (now - d->pinged_at >= PING_MS)
		buf_printf(out, ": ping\n\n");
	if (now - d->pinged_at >= PING_MS)
		d->pinged_at = now;
	return 0;
}

static int serve_file(const char *dir, const char *name, struct buf *out)
{
	char path[4096];
	struct buf f;
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return reply_error(out, 500, "--web-dir too long");
	r = ops_read_file(path, &f, FILE_MAX);
	if (r < 0) {
		buf_clear(&f);
		return reply_error(out, 500, "the page's files are missing (see --web-dir)");
	}
	buf_append(out, f.data, f.len);
	buf_clear(&f);
	return 200;
}

static int handle(void *ctx, const struct http_request *req, struct buf *out,
		  struct http_reply_meta *meta)
{
	struct dash *d = ctx;
	struct dash_target t;
	int status = dash_route_request(req, d->loopback, &t);

	if (status)
		return reply_error(out, status, status == 405 ? "only GET is served"
					    : status == 400 ? "bad Last-Event-ID"
					    : status == 403 ? "Host is not a loopback name" : "not found");
	meta->type = t.type;
	switch (t.route) {
	case DASH_FILE:
		status = serve_file(d->web_dir, t.file, out);
		if (status != 200)
			meta->type = "application/json";
		return status;
	case DASH_STATUS:
		if (cluster_status_json(d->c, out) == 0)
			return 200;
		return reply_error(out, 502,
				   ops_error(d->c->ops)[0] ? ops_error(d->c->ops)
							   : "reading the cluster failed");
	case DASH_LISTS:
		dash_poll(d);
		return api_lists(d, out);
	case DASH_ABI:
		return ops_abi_json(out) < 0 ? 500 : 200;
	case DASH_EVENTS:
		dash_poll(d);
		return api_events(d, t.after, out, meta);
	case DASH_NONE:
		break;
	}
	return reply_error(out, 404, "not found");
}

/* ---- setup ----------------------------------------------------------------------------- */

static void dash_init(struct dash *d, struct cluster_ctx *c)
{
	memset(d, 0, sizeof(*d));
	d->c = c;
	ops_follow_init(&d->events, c->o->have_from_block ? c->o->from_block : 0);
}

/*
 * The page's folder: --web-dir, else web/ of the checkout this binary was built in, else
 * the installed one. Every file of the page must be there, or serve does not start: a page
 * that answers 500 to every request is worse than a clear error. An exit status.
 */
static int find_page(const struct cluster_opts *o, char *dir, size_t max)
{
	static const char *const files[] = { "index.html", "app.js", "style.css" };
	char path[4200];
	int r = 0;

	if (o->web_dir)
		r = (size_t)snprintf(dir, max, "%s", o->web_dir) < max ? 0 : -ENAMETOOLONG;
	else
		cluster_find_data(DSTACK_P2P_WEBDIR, "web", "web", "index.html", dir, max);
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (access(path, R_OK) < 0) {
			cli_error("the dashboard's page is missing: %s: %s. Give --web-dir DIR (web/ of "
				  "a checkout, or share/dstack-p2p/web where make install put it)", path,
				  errstr(-errno));
			return CLI_EXIT_USAGE;
		}
	}
	if (r < 0) {
		cli_error("--web-dir: %s", errstr(r));
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

int cluster_serve(struct cluster_ctx *c)
{
	sigset_t wait_mask;
	struct dash d;
	char web_dir[sizeof(d.web_dir)];
	bool loopback;
	int fd, r;

	r = find_page(c->o, web_dir, sizeof(web_dir));
	if (r != CLI_EXIT_OK)
		return r;
	r = http_listen(c->o->listen, &fd, &loopback);
	if (r == -EINVAL) {
		cli_error("--listen '%s' is not HOST:PORT", c->o->listen);
		return CLI_EXIT_USAGE;
	}
	if (r < 0) {
		cli_error("listening on %s: %s", c->o->listen, errstr(r));
		return CLI_EXIT_FAILURE;
	}
	if (!loopback && !c->o->allow_remote) {
		close(fd);
		cli_error("--listen %s is not a loopback address: pass --allow-remote to serve "
			  "beyond this machine (see the man page for the risk)", c->o->listen);
		return CLI_EXIT_USAGE;
	}
	if (!loopback)
		cli_error("warning: serving %s to the network over plain HTTP with no login: "
			  "anyone who reaches it reads the cluster, and anyone on the path can "
			  "change the page your wallet signs from; prefer an SSH tunnel to a "
			  "loopback address", c->o->listen);
	dash_init(&d, c);
	d.loopback = loopback;
	memcpy(d.web_dir, web_dir, sizeof(d.web_dir));
	cli_serve_signals(on_signal, &wait_mask);
	fprintf(stderr, "dstack-p2p cluster: serving the dashboard of %s on http://%s/ (page "
		"from %s)\n", c->o->contract_hex, c->o->listen, d.web_dir);
	r = http_serve(&(struct http_server){ .max_header = 8192,
					      .max_body = 0,
					      .deadline_ms = 5000,
					      .typed_handler = handle,
					      .stream_more = stream_more,
					      .stream_tick_ms = OPS_FOLLOW_GAP_MS,
					      .stream_ms = STREAM_MS,
					      .max_streams = MAX_STREAMS,
					      .ctx = &d },
		       &fd, 1, &wait_mask, &stop_requested);
	close(fd);
	ops_follow_clear(&d.events);
	return r < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
