/* SPDX-License-Identifier: MIT */
/*
 * mesh: how WireGuard reaches each peer: direct UDP, or the relay through the dstack
 * gateway (relay/), and in auto mode the choice between them (docs/transport.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/random.h>

#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "netlink/netlink.h"
#include "registry/registry.h"
#include "relay/relay.h"

#define SESSION_STALE_S 180        /* WireGuard's REJECT_AFTER_TIME: no handshake that long = dead path */
#define PROBE_FIRST_FALLBACKS 3    /* first UDP probe 3 fallback bounds after falling back */
#define PROBE_MAX_MS 600000
#define RX_UNREAD UINT64_MAX       /* rx_at_since: not yet read with the UDP endpoint on the device */

/* ---- the pure parts ---------------------------------------------------------------------- */

const char *mesh_path_name(enum mesh_path p)
{
	return p == MESH_PATH_UDP ? "udp" : p == MESH_PATH_GATEWAY ? "gateway" : "none";
}

/* "https://<host>[:port]" with a DNS name of lowercase letters, digits, '-' and '.'. */
static int parse_gateway(const char *s, size_t len, char gw_host[static 256], uint16_t *gw_port)
{
	struct hostport hp = { .port = 443 };
	size_t hlen;

	if (len < 9 || strncmp(s, "https://", 8) ||
	    hostport_split(s + 8, len - 8, HOSTPORT_PORT_OPTIONAL, &hp) < 0 || hp.bracketed)
		return -EINVAL;
	hlen = strlen(hp.host);
	if (hlen > 253)
		return -EINVAL;
	for (size_t i = 0; i < hlen; i++) {
		char c = hp.host[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return -EINVAL;
	}
	*gw_port = hp.port;
	memcpy(gw_host, hp.host, hlen + 1);
	return 0;
}

int mesh_endpoint_split(const char *endpoint, char udp[static REGISTRY_ENDPOINT_MAX + 1], char gw_host[static 256],
			uint16_t *gw_port)
{
	const char *p = endpoint;
	int parts = 0;

	udp[0] = gw_host[0] = '\0';
	*gw_port = 0;
	if (strlen(endpoint) >= (REGISTRY_ENDPOINT_MAX + 1))
		return -EINVAL;
	while (parts < 2) {
		size_t len = strcspn(p, ",");

		if (!len)
			return -EINVAL;
		if (!strncmp(p, "https://", 8)) {
			if (gw_host[0] || parse_gateway(p, len, gw_host, gw_port) < 0)
				return -EINVAL;
		} else {
			if (udp[0] || memchr(p, '/', len))
				return -EINVAL;
			memcpy(udp, p, len);
			udp[len] = '\0';
		}
		parts++;
		p += len;
		if (!*p)
			return 0;
		p++;  /* the comma */
	}
	return -EINVAL;  /* a third part */
}

static void path_set(struct mesh_path_state *s, enum mesh_path want, uint64_t now_ms)
{
	if (s->want != want) {
		s->want = want;
		s->since_ms = now_ms;
		s->rx_at_since = RX_UNREAD;
		s->confirmed = false;
	}
}

static void fall_back(struct mesh_path_state *s, uint64_t now_ms, unsigned fallback_ms)
{
	path_set(s, MESH_PATH_GATEWAY, now_ms);
	s->probe_wait_ms = s->probe_wait_ms ? s->probe_wait_ms * 2 : PROBE_FIRST_FALLBACKS * fallback_ms;
	if (s->probe_wait_ms > PROBE_MAX_MS)
		s->probe_wait_ms = PROBE_MAX_MS;
	/* Both ends fell back together: spread their probes, or both probe into silence at once. */
	s->probe_ms = now_ms + s->probe_wait_ms + s->seed % (s->probe_wait_ms / 4 + 1);
}

enum mesh_path mesh_path_decide(struct mesh_path_state *s, enum mesh_transport t, bool has_udp, bool has_gw,
				enum mesh_path observed, int64_t last_handshake, uint64_t rx_bytes, int64_t now_s,
				uint64_t now_ms, unsigned fallback_ms, unsigned silence_ms)
{
	bool fresh = last_handshake > 0 && now_s - last_handshake < SESSION_STALE_S;

	if (rx_bytes != s->last_rx || !s->rx_grew_ms) {
		s->last_rx = rx_bytes;
		s->rx_grew_ms = now_ms;
	}

	if (t == MESH_TRANSPORT_UDP || !has_gw) {
		path_set(s, has_udp ? MESH_PATH_UDP : MESH_PATH_NONE, now_ms);
		return s->want;
	}
	if (t == MESH_TRANSPORT_GATEWAY || !has_udp) {
		path_set(s, MESH_PATH_GATEWAY, now_ms);
		return s->want;
	}
	switch (s->want) {
	case MESH_PATH_NONE:
		path_set(s, MESH_PATH_UDP, now_ms);
		break;
	case MESH_PATH_UDP:
		/*
		 * The device went back to the gateway by itself (the peer's packets arrive
		 * there), or the session over UDP is stale: UDP does not carry this peer.
		 */
		if (s->confirmed) {
			if (observed == MESH_PATH_GATEWAY || !fresh ||
			    (silence_ms && now_ms - s->rx_grew_ms >= silence_ms))
				fall_back(s, now_ms, fallback_ms);
			break;
		}
		/*
		 * Only the endpoint tells which path the peer's packets took: WireGuard roams it
		 * to each authenticated packet's source, the relay's loopback socket for relayed
		 * ones. rx bytes and handshakes move over the relay too. So rx counts from the
		 * first dump showing our UDP endpoint in place, never from the dump before we
		 * wrote it (relayed packets in between would count, their roam undone by our
		 * write); from there, still UDP with rx grown means they came over UDP, as
		 * nothing writes UDP back during a probe. rx gone down: a re-created peer.
		 */
		if (observed == MESH_PATH_UDP && (s->rx_at_since == RX_UNREAD || rx_bytes < s->rx_at_since))
			s->rx_at_since = rx_bytes;
		else if (observed == MESH_PATH_UDP && fresh && rx_bytes > s->rx_at_since)
			s->confirmed = true;  /* the peer's packets came over UDP */
		if (s->confirmed)
			s->probe_wait_ms = 0;
		else if (now_ms - s->since_ms >= fallback_ms)
			fall_back(s, now_ms, fallback_ms);
		break;
	case MESH_PATH_GATEWAY:
		if (now_ms >= s->probe_ms)
			path_set(s, MESH_PATH_UDP, now_ms);
		break;
	}
	return s->want;
}

/*
 * Why a peer's endpoint field does not fit our transport, or NULL (pure: decide.c's
 * record check). gateway: we have a gateway name (so gateway-only peers are reachable).
 */
const char *mesh_transport_problem(enum mesh_transport t, bool gateway, const char *endpoint,
				   const uint8_t instance[static 20], struct err_detail *why)
{
	char udp[REGISTRY_ENDPOINT_MAX + 1], gw[256], inst[41];
	struct hostport hp;
	uint16_t port;

	if (mesh_endpoint_split(endpoint, udp, gw, &port) < 0) {
		err_detail_set(why, "endpoint '%.48s' is not host:port and/or https://gateway", endpoint);
		return why->text;
	}
	if (udp[0] && hostport_split(udp, strlen(udp), 0, &hp) < 0) {
		err_detail_set(why, "endpoint '%.64s' is not host:port", udp);
		return why->text;
	}
	hex_encode(inst, instance, 20);
	/* The gateway routes by instance id: a name of another instance would reach another node. */
	if (gw[0] && (strncmp(gw, inst, 40) || gw[40] != '-'))
		return "gateway name is not its own instance's";
	if (t == MESH_TRANSPORT_UDP && !udp[0])
		return "reachable through the gateway only, and we run P2P_TRANSPORT=udp";
	if (t == MESH_TRANSPORT_GATEWAY && !gw[0])
		return "no gateway name, and we run P2P_TRANSPORT=gateway";
	if (!udp[0] && !gateway)
		return "reachable through the gateway only, and we have no gateway domain";
	return NULL;
}

/* ---- the handle ------------------------------------------------------------------------- */

struct transport_peer {
	bool known;
	bool relayed;                   /* handed to the relay */
	char endpoint[REGISTRY_ENDPOINT_MAX + 1]; /* the verified record's field */
	char udp[REGISTRY_ENDPOINT_MAX + 1];
	union wg_endpoint udp_numeric; /* the peer's numeric UDP part, parsed at classification */
	union wg_endpoint udp_ep; /* udp resolved when it changed (a name once, not per turn) */
	uint64_t udp_retry_ms;    /* it did not resolve: when to look it up again */
	char gw_host[256];
	uint16_t gw_port;
	uint8_t wg_key[32];
	uint8_t instance_id[20];
	uint8_t node_addr[20];
	struct mesh_path_state path;
	bool nudge;                     /* a UDP probe was programmed: provoke a reply over it */
	bool warned;                    /* relay_peer_set failure logged */
};

struct mesh_transport_handle {
	const struct mesh_config *cfg;
	const struct attest_node_secrets *secrets;
	uint8_t instance_id[20];
	uint8_t contract[20];
	char endpoint[REGISTRY_ENDPOINT_MAX + 1]; /* what we register */
	bool gateway;                             /* we have a gateway name (and its relay did not fail) */
	struct relay *relay;
	struct mesh_transport_stats stats;
	struct transport_peer peers[REGISTRY_MAX_PEERS + 1];
	union wg_endpoint endpoints[REGISTRY_MAX_PEERS + 1];  /* for mesh_input.path_endpoints */
};

static int sign_with_node_key(void *ctx, const uint8_t digest[static 32], uint8_t sig[static 65])
{
	const struct mesh_transport_handle *t = ctx;

	return crypto_sign_digest(t->secrets->node_key, digest, sig);
}

/* Our UDP endpoint (not in gateway mode): P2P_ENDPOINT, else the guess. 0 also when none. */
static int our_udp(const struct mesh_config *cfg, char udp[static REGISTRY_ENDPOINT_MAX + 1],
		   struct err_detail *why)
{
	int r;

	if (cfg->transport == MESH_TRANSPORT_GATEWAY)
		return 0;
	if (cfg->endpoint[0]) {
		snprintf(udp, REGISTRY_ENDPOINT_MAX + 1, "%s", cfg->endpoint);
		return 0;
	}
	r = agent_guess_endpoint(cfg, udp, REGISTRY_ENDPOINT_MAX + 1);
	if (r < 0 && cfg->transport == MESH_TRANSPORT_UDP) {
		err_detail_set(
			why, "cannot tell our endpoint (set P2P_ENDPOINT=host:port): %s",
			r == -EHOSTUNREACH
				? "the host of the first RPC URL does not resolve (is ETH_RPC_URL right?)"
			: r == -EADDRNOTAVAIL
				? "the first RPC URL is local, so it says nothing about our address"
				: errstr(r));
		return r;
	}
	udp[0] = r < 0 ? '\0' : udp[0];
	return 0;
}

/* Our gateway name (not in udp mode) and t->gateway. 0 also when none in auto mode. */
static int our_gateway(struct mesh_transport_handle *t, char gw[static REGISTRY_ENDPOINT_MAX + 1],
		       struct err_detail *why)
{
	const struct mesh_config *cfg = t->cfg;
	char inst[41];
	int r;

	if (cfg->transport == MESH_TRANSPORT_UDP)
		return 0;
	hex_encode(inst, t->instance_id, 20);
	r = agent_gateway_name(cfg, inst, cfg->relay_port, gw, REGISTRY_ENDPOINT_MAX + 1);
	if (r < 0 && cfg->transport == MESH_TRANSPORT_GATEWAY) {
		err_detail_set(why, "cannot tell our gateway name (set DSTACK_GATEWAY_DOMAIN): %s",
			       errstr(r));
		return r;
	}
	gw[0] = r < 0 ? '\0' : gw[0];
	if (r < 0)
		log_info("no gateway domain (DSTACK_GATEWAY_DOMAIN, host-shared config): UDP only");
	t->gateway = r == 0;
	/* The relay's loopback sockets use the relay port number over UDP, next to WireGuard's. */
	if (r == 0 && cfg->relay_port == cfg->listen_port) {
		err_detail_set(why,
			       "P2P_RELAY_PORT and P2P_LISTEN_PORT are both %u: give the relay another port",
			       cfg->relay_port);
		return -EBADR;
	}
	return 0;
}

int mesh_transport_open(struct mesh_transport_handle **out, const struct mesh_config *cfg,
			const uint8_t instance_id[static 20], const uint8_t contract[static 20],
			const struct attest_node_secrets *secrets, struct err_detail *why)
{
	char udp[REGISTRY_ENDPOINT_MAX + 1] = "", gw[REGISTRY_ENDPOINT_MAX + 1] = "";
	struct mesh_transport_handle *t;
	int r;

	*out = NULL;
	if (why)
		why->text[0] = '\0';
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->cfg = cfg;
	t->secrets = secrets;
	memcpy(t->instance_id, instance_id, 20);
	memcpy(t->contract, contract, 20);
	r = our_udp(cfg, udp, why);
	if (r == 0)
		r = our_gateway(t, gw, why);
	if (r == 0 && !udp[0] && !gw[0]) {
		err_detail_set(
			why,
			"neither a UDP endpoint (P2P_ENDPOINT) nor a gateway domain (DSTACK_GATEWAY_DOMAIN)");
		r = -EADDRNOTAVAIL;
	}
	if (r == 0) {
		r = snprintf(t->endpoint, sizeof(t->endpoint), "%s%s%s", udp, udp[0] && gw[0] ? "," : "", gw);
		r = r >= (int)sizeof(t->endpoint) ? -ENAMETOOLONG : 0;
		if (r < 0)
			err_detail_set(why, "our endpoint field is longer than %d bytes",
				       REGISTRY_ENDPOINT_MAX);
	}
	if (r < 0) {
		free(t);
		return r;
	}
	*out = t;
	return 0;
}

void mesh_transport_close(struct mesh_transport_handle *t)
{
	if (!t)
		return;
	relay_free(t->relay);
	free(t);
}

const char *mesh_transport_endpoint(const struct mesh_transport_handle *t)
{
	return t ? t->endpoint : "";
}

bool mesh_transport_gateway(const struct mesh_transport_handle *t)
{
	return t && t->gateway;
}

static int cmp_peer_key(const void *x, const void *y)
{
	const struct wg_peer *const *p = x, *const *q = y;

	return memcmp((*p)->public_key, (*q)->public_key, 32);
}

static int cmp_key_peer(const void *key, const void *y)
{
	const struct wg_peer *const *q = y;

	return memcmp(key, (*q)->public_key, 32);
}

/* The device's peers sorted by public key (the kernel holds each key once); NULL: none, or no memory. */
static const struct wg_peer **device_index(const struct wg_device *dev)
{
	const struct wg_peer **index;

	if (!dev || !dev->n_peers || !(index = malloc(dev->n_peers * sizeof(*index))))
		return NULL;
	for (size_t i = 0; i < dev->n_peers; i++)
		index[i] = &dev->peers[i];
	qsort(index, dev->n_peers, sizeof(*index), cmp_peer_key);
	return index;
}

/* A binary search of the index, not a scan per registry peer (O(N log N) a turn, not O(N^2)). */
static const struct wg_peer *device_peer(const struct wg_device *dev, const struct wg_peer **index,
					 const uint8_t key[static 32])
{
	const struct wg_peer **hit;

	if (index) {
		hit = bsearch(key, index, dev->n_peers, sizeof(*index), cmp_key_peer);
		return hit ? *hit : NULL;
	}
	for (size_t i = 0; dev && i < dev->n_peers; i++)
		if (!memcmp(dev->peers[i].public_key, key, 32))
			return &dev->peers[i];
	return NULL;
}

static enum mesh_path observed_path(const struct mesh_transport_handle *t, uint32_t token,
				    const struct wg_peer *h)
{
	struct sockaddr_in loop;

	if (!h || h->endpoint.addr.sa_family == AF_UNSPEC)
		return MESH_PATH_NONE;
	if (t->relay && h->endpoint.addr.sa_family == AF_INET) {
		relay_loop_endpoint(t->relay, token, &loop);
		if (h->endpoint.in.sin_addr.s_addr == loop.sin_addr.s_addr && h->endpoint.in.sin_port == loop.sin_port)
			return MESH_PATH_GATEWAY;
	}
	return MESH_PATH_UDP;
}

static int relay_open(struct mesh_transport_handle *t, uint64_t chain_id)
{
	struct relay_config rc = {
		.listen_port = t->cfg->relay_port,
		.wg_port = t->cfg->listen_port,
		.loop_port = t->cfg->relay_port,
		.ca_file = t->cfg->gateway_ca,
		.chain_id = chain_id,
		.sign = sign_with_node_key,
		.sign_ctx = t,
	};
	int r;

	memcpy(rc.instance_id, t->instance_id, 20);
	memcpy(rc.contract, t->contract, 20);
	r = relay_new(&t->relay, &rc);
	if (r == 0)
		r = relay_start(t->relay);
	if (r < 0) {
		log_error("gateway relay on TCP port %u: %s", t->cfg->relay_port,
			  r == -ENOENT ? "cannot load the CA bundle" : errstr(r));
		relay_free(t->relay);
		t->relay = NULL;
		return r;
	}
	log_info("gateway relay listening on TCP port %u", t->cfg->relay_port);
	return 0;
}

/* The node address comes from the verified record (mesh_peer), never from a raw view. */
static void relay_sync_peer(struct mesh_transport_handle *t, uint32_t token)
{
	struct transport_peer *tp = &t->peers[token];
	struct relay_peer rp = { .token = token, .port = tp->gw_port };
	int r;

	memcpy(rp.instance_id, tp->instance_id, 20);
	memcpy(rp.node_addr, tp->node_addr, 20);
	snprintf(rp.host, sizeof(rp.host), "%s", tp->gw_host);
	r = relay_peer_set(t->relay, &rp, NULL);
	if (r < 0) {
		if (!tp->warned) {
			char addr[16];

			mesh_overlay_addr_str(token, addr);
			log_warn("peer %s: gateway path %s:%u: %s", addr, tp->gw_host, tp->gw_port,
				 r == -EADDRNOTAVAIL ? "the name does not resolve" : errstr(r));
		}
		tp->warned = true;
		return;
	}
	tp->relayed = true;
	tp->warned = false;
}

/* A name that does not resolve is looked up again this long after. */
#define UDP_RETRY_MS 30000

/*
 * The peer's UDP endpoint resolved: at a change (now 0), then only while it does not
 * resolve, every UDP_RETRY_MS. The decision never resolves; a name reaches it from here.
 */
static void resolve_udp(struct mesh_transport_handle *t, struct transport_peer *tp, uint64_t now)
{
	if (now && (!tp->udp[0] || tp->udp_ep.addr.sa_family != AF_UNSPEC || now < tp->udp_retry_ms))
		return;
	if (tp->udp_numeric.addr.sa_family != AF_UNSPEC || !tp->udp[0]) {
		tp->udp_ep = tp->udp_numeric; /* numeric, parsed at classification; or no UDP part */
		return;
	}
	t->stats.resolves++;
	if (mesh_endpoint_udp(tp->endpoint, true, &tp->udp_ep) < 0) {
		t->stats.resolve_failures++;
		tp->udp_retry_ms = (now ? now : now_ms()) + UDP_RETRY_MS;
	}
}

/* One verified peer into the table: a new UDP part resets its path and is resolved now. */
static void sync_peer(struct mesh_transport_handle *t, const struct mesh_peer *p)
{
	struct transport_peer *tp = &t->peers[p->token];
	char udp[REGISTRY_ENDPOINT_MAX + 1], gw[256];
	uint16_t port;
	bool moved;

	if (mesh_endpoint_split(p->endpoint, udp, gw, &port) < 0)
		return; /* checked when the record was accepted */
	moved = memcmp(p->node_addr, tp->node_addr, 20);

	if (tp->known && tp->relayed && (strcmp(gw, tp->gw_host) || port != tp->gw_port)) {
		relay_peer_remove(t->relay, p->token);
		tp->relayed = false;
	}
	snprintf(tp->endpoint, sizeof(tp->endpoint), "%s", p->endpoint);
	tp->udp_numeric = p->udp;
	memcpy(tp->wg_key, p->wg_key, 32);
	memcpy(tp->instance_id, p->instance_id, 20);
	memcpy(tp->node_addr, p->node_addr, 20);
	if (!tp->known || strcmp(udp, tp->udp)) {
		tp->path = (struct mesh_path_state){ 0 }; /* a new peer, or a new address */
		tp->udp_retry_ms = 0;
		tp->udp_ep = (union wg_endpoint){ 0 };
		snprintf(tp->udp, sizeof(tp->udp), "%s", udp);
		resolve_udp(t, tp, 0);
	}
	tp->known = true;
	snprintf(tp->gw_host, sizeof(tp->gw_host), "%s", gw);
	tp->gw_port = port;
	if (t->relay && gw[0] && (!tp->relayed || moved))
		relay_sync_peer(t, p->token); /* a new node address: the relay's proofs follow it */
}

void mesh_transport_sync(struct mesh_transport_handle *t, uint64_t chain_id, const struct mesh_peer *peers,
			 size_t n_peers)
{
	bool seen[REGISTRY_MAX_PEERS + 1] = { false };

	if (!t)
		return;
	if (t->gateway && !t->relay && t->cfg->transport != MESH_TRANSPORT_UDP && relay_open(t, chain_id) < 0)
		t->gateway = false;
	for (size_t i = 0; i < n_peers; i++) {
		if (!peers[i].token || peers[i].token > REGISTRY_MAX_PEERS)
			continue;
		seen[peers[i].token] = true;
		sync_peer(t, &peers[i]);
	}
	for (uint32_t tok = 1; tok <= REGISTRY_MAX_PEERS; tok++) {
		struct transport_peer *tp = &t->peers[tok];

		if (seen[tok] || !tp->known)
			continue;
		/* Burned or gone: its stream closes now, its frames are refused from here on. */
		if (tp->relayed)
			relay_peer_remove(t->relay, tok);
		memset(tp, 0, sizeof(*tp));
	}
}

/*
 * A probe's endpoint is on the device now: one datagram to a closed port of the peer's
 * overlay address. If it crosses UDP, the peer's WireGuard roams to us and its kernel's
 * ICMP "port unreachable" comes back over UDP at once, well within the fallback bound
 * (a keepalive could take longer than the bound).
 */
static void nudge(uint32_t token)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = mesh_overlay_addr(token) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return;
	if (sendto(fd, "dstack-p2p probe", 16, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		/* no route yet: the next keepalive does the same, later */
	}
	close(fd);
}

/* One known peer's path this turn (h: its device entry, may be NULL), into t->endpoints. */
static void peer_path(struct mesh_transport_handle *t, uint32_t token, const struct wg_peer *h, int64_t now_s)
{
	const struct mesh_config *cfg = t->cfg;
	struct transport_peer *tp = &t->peers[token];
	enum mesh_path before = tp->path.want, now;
	bool confirmed = tp->path.confirmed;
	char addr[16];

	resolve_udp(t, tp, now_ms());
	if (tp->nudge)
		nudge(token); /* last turn's probe endpoint has been applied since */
	tp->nudge = false;
	if (!tp->path.seed && getrandom(&tp->path.seed, sizeof(tp->path.seed), GRND_NONBLOCK) < 0)
		tp->path.seed = (unsigned)now_ms();
	now = mesh_path_decide(
		&tp->path, cfg->transport, tp->udp[0], tp->gw_host[0] && tp->relayed,
		observed_path(t, token, h), h ? (int64_t)h->last_handshake.tv_sec : 0, h ? h->rx_bytes : 0,
		now_s, now_ms(), cfg->fallback_ms,
		/* the peer's keepalives arrive every P2P_KEEPALIVE s: two missed, and the bound */
		cfg->keepalive ? cfg->fallback_ms + 2000u * cfg->keepalive : 0);
	mesh_overlay_addr_str(token, addr);
	if (now != before && before != MESH_PATH_NONE) {
		t->stats.path_changes++;
		log_info("peer %s: %s path -> %s", addr, mesh_path_name(before), mesh_path_name(now));
	}
	if (tp->path.confirmed && !confirmed && cfg->transport == MESH_TRANSPORT_AUTO)
		log_info("peer %s: udp path confirmed (its packets arrive over UDP)", addr);
	tp->nudge = now == MESH_PATH_UDP && before == MESH_PATH_GATEWAY;
	t->stats.probes += tp->nudge;
	if (now == MESH_PATH_GATEWAY && t->relay)
		relay_loop_endpoint(t->relay, token, &t->endpoints[token].in);
	else if (now == MESH_PATH_UDP)
		t->endpoints[token] = tp->udp_ep;
}

const union wg_endpoint *mesh_transport_endpoints(struct mesh_transport_handle *t,
						  const struct wg_device *dev)
{
	const struct wg_peer **index;
	struct timespec ts;

	if (!t)
		return NULL;
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(t->endpoints, 0, sizeof(t->endpoints));
	index = device_index(dev);
	for (uint32_t tok = 1; tok <= REGISTRY_MAX_PEERS; tok++)
		if (t->peers[tok].known)
			peer_path(t, tok, device_peer(dev, index, t->peers[tok].wg_key), (int64_t)ts.tv_sec);
	free(index);
	return t->endpoints;
}

int mesh_transport_status(struct mesh_transport_handle *t, const struct mesh_peer *p, const struct wg_peer *h,
			  struct buf *out)
{
	const struct transport_peer *tp;
	struct relay_stats st;
	int r;

	if (!t || p->mode != REGISTRY_MODE_WIREGUARD || !p->token || p->token > REGISTRY_MAX_PEERS)
		return 0;
	tp = &t->peers[p->token];
	r = buf_printf(out, ",\"path\":\"%s\",\"path_wanted\":\"%s\"",
		       mesh_path_name(observed_path(t, p->token, h)), mesh_path_name(tp->path.want));
	if (r < 0 || !t->relay || !tp->relayed || relay_peer_stats(t->relay, p->token, &st) < 0)
		return r;
	r = buf_printf(out, ",\"relay\":{\"state\":\"%s\",\"dialer\":%s,\"tx_bytes\":%llu,\"rx_bytes\":%llu,"
			    "\"drops\":%llu,\"connects\":%llu,\"reconnects\":%llu,\"refused\":%llu,\"error\":",
		       st.state == RELAY_UP ? "up" : st.state == RELAY_CONNECTING ? "connecting" : "down",
		       st.dialer ? "true" : "false", (unsigned long long)st.tx_bytes,
		       (unsigned long long)st.rx_bytes, (unsigned long long)st.drops,
		       (unsigned long long)st.connects,
		       (unsigned long long)(st.connects ? st.connects - 1 : 0), (unsigned long long)st.refused);
	if (r == 0)
		r = json_append_string(out, st.error);
	return r < 0 ? r : buf_printf(out, "}");
}

struct mesh_transport_stats mesh_transport_stats(struct mesh_transport_handle *t)
{
	struct mesh_transport_stats s;
	struct relay_stats st;

	if (!t)
		return (struct mesh_transport_stats){ 0 };
	s = t->stats;
	for (uint32_t tok = 1; tok <= REGISTRY_MAX_PEERS; tok++) {
		if (!t->peers[tok].relayed || relay_peer_stats(t->relay, tok, &st) < 0)
			continue;
		s.relay_peers++;
		s.relay_dials += st.dials;
		s.relay_redials += st.redials;
		s.relay_queue_drops += st.queue_drops;
		s.relay_refused += st.refused;
	}
	return s;
}

void mesh_transport_peer_metrics(struct mesh_transport_handle *t, const struct mesh_peer *p,
				 const struct wg_peer *h, struct mesh_metrics_peer *out)
{
	const struct transport_peer *tp;
	enum mesh_path path;
	struct relay_stats st;

	if (!t || p->mode != REGISTRY_MODE_WIREGUARD)
		return;
	tp = &t->peers[p->token];
	path = observed_path(t, p->token, h);
	out->path = path == MESH_PATH_NONE ? NULL : mesh_path_name(path);
	if (!t->relay || !tp->relayed || relay_peer_stats(t->relay, p->token, &st) < 0)
		return;
	out->has_relay = true;
	out->relay_redials = st.redials;
	out->relay_drops = st.drops;
	out->relay_queue_drops = st.queue_drops;
}
