/* SPDX-License-Identifier: MIT */
/*
 * The agent's metrics (docs/metrics.md lists every series): the exposition, a pure
 * function of a struct mesh_metrics filled from the components' accessors; the control
 * request "metrics"; and P2P_METRICS_LISTEN, one page over HTTP served as a source of the
 * agent's loop, on loopback or on the node's overlay address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "net/net.h"
#include "registry/registry.h"

static const char *const reason_names[MESH_REJECT_KINDS] = {
	[MESH_REJECT_MALFORMED] = "malformed",         [MESH_REJECT_FIELD] = "field",
	[MESH_REJECT_VERIFICATION] = "verification",   [MESH_REJECT_MODE] = "mode",
	[MESH_REJECT_WIREGUARD_KEY] = "wireguard_key", [MESH_REJECT_TRANSPORT] = "transport",
	[MESH_REJECT_REPLAYED] = "replayed",
};

/* A family and its one unlabelled sample. */
static int one_u64(struct buf *b, const char *name, enum prom_type type, const char *help, uint64_t v)
{
	int r = prom_family(b, name, type, help);

	return r ? r : prom_sample_u64(b, name, NULL, 0, v);
}

/* Which per-peer number a family shows. */
enum peer_series { PS_HANDSHAKE_AGE, PS_RX, PS_TX, PS_PATH, PS_REDIALS, PS_DROPS, PS_QUEUE_DROPS };

static const struct {
	const char *name;
	enum prom_type type;
	const char *help;
} peer_series[] = {
	[PS_HANDSHAKE_AGE] = { "dstack_p2p_peer_last_handshake_age_seconds", PROM_GAUGE,
			       "Seconds since the last WireGuard handshake with the peer." },
	[PS_RX] = { "dstack_p2p_peer_rx_bytes_total", PROM_COUNTER,
		    "Bytes WireGuard received from the peer." },
	[PS_TX] = { "dstack_p2p_peer_tx_bytes_total", PROM_COUNTER, "Bytes WireGuard sent to the peer." },
	[PS_PATH] = { "dstack_p2p_peer_path", PROM_GAUGE,
		      "The path to the peer in use (label path: udp or gateway), 1." },
	[PS_REDIALS] = { "dstack_p2p_peer_relay_redials_total", PROM_COUNTER,
			 "Gateway streams to the peer dialled again after the first." },
	[PS_DROPS] = { "dstack_p2p_peer_relay_drops_total", PROM_COUNTER,
		       "Datagrams for the peer the relay dropped." },
	[PS_QUEUE_DROPS] = { "dstack_p2p_peer_relay_queue_drops_total", PROM_COUNTER,
			     "Datagrams towards the peer dropped for a full stream queue." },
};

static int peer_sample(struct buf *b, enum peer_series s, const struct mesh_metrics_peer *p)
{
	char token[8];
	struct prom_label l[3] = { { "token", token },
				   { "label", p->label ? p->label : "" },
				   { "path", p->path } };
	const char *name = peer_series[s].name;

	snprintf(token, sizeof(token), "%u", p->token);
	switch (s) {
	case PS_HANDSHAKE_AGE:
		return p->has_handshake ? prom_sample(b, name, l, 2, p->handshake_age_s) : 0;
	case PS_RX:
		return p->has_device ? prom_sample_u64(b, name, l, 2, p->rx_bytes) : 0;
	case PS_TX:
		return p->has_device ? prom_sample_u64(b, name, l, 2, p->tx_bytes) : 0;
	case PS_PATH:
		return p->path ? prom_sample(b, name, l, 3, 1) : 0;
	case PS_REDIALS:
		return p->has_relay ? prom_sample_u64(b, name, l, 2, p->relay_redials) : 0;
	case PS_DROPS:
		return p->has_relay ? prom_sample_u64(b, name, l, 2, p->relay_drops) : 0;
	case PS_QUEUE_DROPS:
		return p->has_relay ? prom_sample_u64(b, name, l, 2, p->relay_queue_drops) : 0;
	}
	return -EINVAL;
}

static int put_peers(struct buf *b, const struct mesh_metrics *m)
{
	int r = one_u64(b, "dstack_p2p_peers", PROM_GAUGE, "Verified peers in the list apps see.",
			m->n_peers);

	for (size_t s = 0; s < ARRAY_SIZE(peer_series) && r == 0; s++) {
		r = prom_family(b, peer_series[s].name, peer_series[s].type, peer_series[s].help);
		for (size_t i = 0; i < m->n_peers && r == 0; i++)
			r = peer_sample(b, (enum peer_series)s, &m->peers[i]);
	}
	return r;
}

/* A series of one unlabelled sample; present false leaves it out (nothing known yet). */
struct single {
	const char *name;
	enum prom_type type;
	const char *help;
	uint64_t value;
	bool present;
};

static int put_singles(struct buf *b, const struct single *s, size_t n)
{
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++)
		if (s[i].present)
			r = one_u64(b, s[i].name, s[i].type, s[i].help, s[i].value);
	return r;
}

/* A family of one label: values[k] labelled names[k]. */
static int put_by_label(struct buf *b, const char *name, enum prom_type type, const char *help,
			const char *label, const char *const *names, const uint64_t *values, size_t n)
{
	int r = prom_family(b, name, type, help);

	for (size_t k = 0; k < n && r == 0; k++) {
		struct prom_label l = { label, names[k] };

		r = prom_sample_u64(b, name, &l, 1, values[k]);
	}
	return r;
}

static int put_registry(struct buf *b, const struct mesh_metrics *m)
{
	const struct registry_reader_stats *s = &m->registry;
	const bool read = m->block != 0;
	const struct single series[] = {
		{ "dstack_p2p_registry_block", PROM_GAUGE, "The block the peer set was read at.", m->block,
		  read },
		{ "dstack_p2p_registry_head_block", PROM_GAUGE, "The latest block a poll saw at the head.",
		  s->head, read },
		{ "dstack_p2p_registry_lag_blocks", PROM_GAUGE, "Blocks the peer set is behind the head.",
		  s->head > m->block ? s->head - m->block : 0, read },
		{ "dstack_p2p_registry_polls_total", PROM_COUNTER, "Polls of the registry.", s->polls, true },
		{ "dstack_p2p_registry_full_reads_total", PROM_COUNTER, "getPeers() reads of the whole set.",
		  s->full_reads, true },
		{ "dstack_p2p_registry_records_read_total", PROM_COUNTER,
		  "getPeerByToken reads of records logs named.", s->records_read, true },
		{ "dstack_p2p_registry_reorgs_total", PROM_COUNTER, "Times the block read at left the chain.",
		  s->reorgs, true },
		{ "dstack_p2p_registry_provider_disagreements_total", PROM_COUNTER,
		  "Cross-checked views of two providers that disagreed.", m->disagreements, true },
	};
	int r = put_singles(b, series, ARRAY_SIZE(series));

	return r ? r
		 : put_by_label(b, "dstack_p2p_registry_records_rejected", PROM_GAUGE,
				"Records of the current view that are nobody's peer, by reason.", "reason",
				reason_names, m->rejected, MESH_REJECT_KINDS);
}

static int put_transactions(struct buf *b, const struct mesh_sender_stats *s)
{
	static const char *const kinds[MESH_TX_KINDS] = {
		[MESH_TX_REGISTRATION] = "registration",
		[MESH_TX_LEADER_CALL] = "leader_call",
	};
	static const struct {
		const char *name, *help;
		size_t offset;
	} series[] = {
		{ "dstack_p2p_transactions_sent_total",
		  "Transactions the funded key paid that the node accepted.",
		  offsetof(struct mesh_sender_stats, sent_by) },
		{ "dstack_p2p_transactions_gas_limit_total", "Gas limits of those transactions, summed.",
		  offsetof(struct mesh_sender_stats, gas_limit_by) },
		{ "dstack_p2p_transactions_relayed_total", "Calls a relayer took.",
		  offsetof(struct mesh_sender_stats, relayed_by) },
		{ "dstack_p2p_transactions_failed_total", "Sends and relayer calls that failed.",
		  offsetof(struct mesh_sender_stats, failed_by) },
	};
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(series) && r == 0; i++)
		r = put_by_label(b, series[i].name, PROM_COUNTER, series[i].help, "kind", kinds,
				 (const uint64_t *)((const char *)s + series[i].offset), MESH_TX_KINDS);
	return r;
}

static int put_rpc(struct buf *b, const struct mesh_metrics *m)
{
	const struct eth_rpc_stats *s = &m->rpc;
	const char *kinds[ETH_RPC_FAULTS];
	const struct single series[] = {
		{ "dstack_p2p_rpc_calls_total", PROM_COUNTER, "JSON-RPC calls sent.", s->calls, true },
	};
	int r;

	for (int k = 0; k < ETH_RPC_FAULTS; k++)
		kinds[k] = eth_rpc_fault_name((enum eth_rpc_fault)k);
	r = put_singles(b, series, ARRAY_SIZE(series));
	if (r == 0)
		r = put_by_label(b, "dstack_p2p_rpc_errors_total", PROM_COUNTER,
				 "Failed RPC exchanges and calls answered with an error, by kind.", "kind",
				 kinds, s->errors, ETH_RPC_FAULTS);
	return r ? r : put_transactions(b, &m->sender);
}

static int put_leader(struct buf *b, const struct mesh_metrics *m)
{
	const struct single series[] = {
		{ "dstack_p2p_leader_term", PROM_GAUGE, "The leader's term, as last read.", m->leader_term,
		  m->leader_known },
		{ "dstack_p2p_leader_token", PROM_GAUGE, "The leader's token; 0: no leader.", m->leader_token,
		  m->leader_known },
	};

	return put_singles(b, series, ARRAY_SIZE(series));
}

int mesh_metrics_render(const struct mesh_metrics *m, struct buf *out)
{
	size_t start = out->len;
	int r = put_peers(out, m);

	if (r == 0)
		r = put_registry(out, m);
	if (r == 0)
		r = put_rpc(out, m);
	if (r == 0)
		r = put_leader(out, m);
	if (r < 0) {
		out->len = start;
		buf_terminate(out);
	}
	return r;
}

/* ---- P2P_METRICS_LISTEN ------------------------------------------------------------------ */

int mesh_metrics_listen_parse(const char *spec, struct mesh_metrics_listen *out)
{
	struct hostport hp;
	struct in6_addr a6;
	struct in_addr a4;
	int r;

	memset(out, 0, sizeof(*out));
	if (snprintf(out->spec, sizeof(out->spec), "%s", spec) >= (int)sizeof(out->spec))
		return -EINVAL;
	if (!*spec)
		return 0;
	r = hostport_split(spec, strlen(spec), 0, &hp);
	if (r < 0)
		return -EINVAL;
	out->port = hp.port;
	if (!hp.bracketed && !strcmp(hp.host, "overlay")) {
		out->overlay = true;
		return 0;
	}
	/* Numeric loopback only: a name could resolve anywhere, 0.0.0.0 is every address. */
	if (hp.bracketed ? inet_pton(AF_INET6, hp.host, &a6) != 1 || !IN6_IS_ADDR_LOOPBACK(&a6)
			 : inet_pton(AF_INET, hp.host, &a4) != 1 || (ntohl(a4.s_addr) >> 24) != 127)
		return -EADDRNOTAVAIL;
	snprintf(out->host, sizeof(out->host), "%.47s", hp.host);
	return 0;
}

/* ---- the agent's metrics ------------------------------------------------------------------ */

struct agent_metrics {
	struct mesh_agent *agent;
	struct http_page page;
	bool open;
	uint32_t token;       /* overlay: the token whose address the listener is on */
	uint64_t next_try_ms; /* overlay: the next try to listen there */
	struct buf cache;     /* the exposition as last rendered ... */
	uint64_t rendered_ms; /* ... at this time (0: never) */
};

static const struct wg_peer *device_peer(const struct wg_device *dev, const uint8_t key[static WG_KEY_LEN])
{
	for (size_t i = 0; dev && i < dev->n_peers; i++)
		if (!memcmp(dev->peers[i].public_key, key, WG_KEY_LEN))
			return &dev->peers[i];
	return NULL;
}

static void fill_peer(struct mesh_agent *a, const struct mesh_snapshot *snap, const struct mesh_peer *p,
		      const struct wg_device *dev, time_t now, struct mesh_metrics_peer *out)
{
	const struct wg_peer *h = p->mode == REGISTRY_MODE_WIREGUARD ? device_peer(dev, p->wg_key) : NULL;

	memset(out, 0, sizeof(*out));
	out->token = p->token;
	out->label = mesh_snapshot_label(snap, p->token, p->instance_id);
	if (h) {
		out->has_device = true;
		out->rx_bytes = h->rx_bytes;
		out->tx_bytes = h->tx_bytes;
		out->has_handshake = h->last_handshake.tv_sec > 0;
		out->handshake_age_s =
			now > h->last_handshake.tv_sec ? (double)(now - h->last_handshake.tv_sec) : 0;
	}
	mesh_transport_peer_metrics(a->transport, p, h, out);
}

/* The components' counters now, rendered into out. */
static int render_now(struct mesh_agent *a, struct buf *out)
{
	struct mesh_metrics m = { .disagreements = a->st.disagreements, .leader_known = a->leader_known };
	struct mesh_metrics_peer *peers = NULL;
	struct wg_device *dev = NULL;
	struct mesh_snapshot snap;
	time_t now = time(NULL);
	int r;

	agent_snapshot(a, &snap);
	if (snap.n_peers && !(peers = calloc(snap.n_peers, sizeof(*peers))))
		return -ENOMEM;
	if (a->device)
		mesh_device_dump(a->device, &dev);
	for (size_t i = 0; i < snap.n_peers; i++)
		fill_peer(a, &snap, &snap.peers[i], dev, now, &peers[i]);
	m.peers = peers;
	m.n_peers = snap.n_peers;
	if (a->reg) {
		struct registry_handle_stats hs = registry_handle_stats(a->reg);
		size_t skipped;

		m.block = registry_handle_block(a->reg);
		m.registry = hs.follower;
		m.rpc = hs.eth;
		registry_handle_skipped(a->reg, &skipped);
		m.rejected[MESH_REJECT_MALFORMED] = skipped;
	}
	for (size_t i = 0; i < a->st.n_rejected; i++)
		if (a->st.rejected[i].kind < MESH_REJECT_KINDS)
			m.rejected[a->st.rejected[i].kind]++;
	if (a->sender)
		m.sender = *mesh_sender_stats(a->sender);
	m.leader_term = a->leader.term;
	m.leader_token = a->leader.token;
	r = mesh_metrics_render(&m, out);
	wg_device_free(dev);
	free(peers);
	return r;
}

/* The exposition, rendered again once AGENT_METRICS_TTL_MS old: what a request costs. */
static int cached(struct agent_metrics *m, const struct buf **page)
{
	uint64_t now = now_ms();
	int r;

	if (!m->rendered_ms || now - m->rendered_ms >= AGENT_METRICS_TTL_MS) {
		buf_reset(&m->cache);
		r = render_now(m->agent, &m->cache);
		if (r < 0)
			return r;
		m->rendered_ms = now;
	}
	*page = &m->cache;
	return 0;
}

static int render_page(void *ctx, struct buf *body)
{
	const struct buf *page;
	int r = cached(ctx, &page);

	return r < 0 ? r : buf_append(body, page->data ? page->data : (const uint8_t *)"", page->len);
}

int agent_metrics_json(struct mesh_agent *a, struct buf *out)
{
	const struct buf *page;
	int r;

	if (!a->metrics)
		return -ENOENT;
	r = cached(a->metrics, &page);
	if (r == 0)
		r = buf_printf(out, "{\"version\":%d,\"metrics\":", CONTROL_VERSION);
	if (r == 0)
		r = json_append_string(out, page->data ? (const char *)page->data : "");
	return r == 0 ? buf_printf(out, "}") : r;
}

static int listen_on(struct agent_metrics *m, const char *host, uint16_t port)
{
	char spec[80];
	int fd, r;

	snprintf(spec, sizeof(spec), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
	r = http_listen(spec, &fd, NULL);
	if (r < 0)
		return r;
	r = http_page_open(&m->page, fd, "/metrics", "text/plain; version=0.0.4; charset=utf-8", render_page,
			   m);
	if (r < 0) {
		close(fd);
		return r;
	}
	m->open = true;
	log_info("metrics: serving http://%s/metrics", spec);
	return 0;
}

/* overlay:PORT: listen on 10.0.1.<token> once we hold a token (and again when it changes). */
static void follow_overlay(struct agent_metrics *m, uint64_t now)
{
	const struct mesh_config *cfg = m->agent->cfg;
	uint32_t token = (uint32_t)m->agent->st.token;
	char addr[16];
	int r;

	if (!cfg->metrics_listen.overlay || token == m->token || now < m->next_try_ms)
		return;
	if (m->open) {
		http_page_close(&m->page);
		m->open = false;
	}
	m->token = 0;
	if (!token || token > REGISTRY_MAX_PEERS)
		return;
	mesh_overlay_addr_str(token, addr);
	r = listen_on(m, addr, cfg->metrics_listen.port);
	if (r == 0) {
		m->token = token;
	} else {
		/* The interface may not carry the address yet: try again in a second. */
		m->next_try_ms = now + 1000;
		log_debug("metrics: listening on %s:%u: %s", addr, cfg->metrics_listen.port, errstr(r));
	}
}

static int metrics_fd(void *ctx)
{
	struct agent_metrics *m = ctx;
	uint64_t now = now_ms();

	follow_overlay(m, now);
	if (!m->open)
		return -1;
	http_page_expire(&m->page, now);
	return http_page_fd(&m->page);
}

static void serve_metrics(void *ctx)
{
	struct agent_metrics *m = ctx;

	if (m->open)
		http_page_dispatch(&m->page, now_ms());
}

int agent_metrics_open(struct mesh_agent *a)
{
	const struct mesh_metrics_listen *l = &a->cfg->metrics_listen;
	struct agent_metrics *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	m->agent = a;
	buf_init(&m->cache, HTTP_PAGE_REPLY_MAX - 4096);
	a->metrics = m;
	if (!l->spec[0])
		return 0;
	if (!l->overlay && (r = listen_on(m, l->host, l->port)) < 0) {
		log_error("P2P_METRICS_LISTEN %s: %s", l->spec, errstr(r));
		return r;
	}
	return agent_add_source(a, metrics_fd, serve_metrics, m);
}

void agent_metrics_close(struct mesh_agent *a)
{
	struct agent_metrics *m = a->metrics;

	if (!m)
		return;
	if (m->open)
		http_page_close(&m->page);
	buf_clear(&m->cache);
	free(m);
	a->metrics = NULL;
}
