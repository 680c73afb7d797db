/* SPDX-License-Identifier: MIT */
/* Unit tests of mesh/transport.c: the endpoint field's two parts, auto mode's path choice, the handle. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mesh/internal.h"
#include "registry/registry.h"

#define GW "https://0123456789abcdef0123456789abcdef01234567-51831.gw.example.com"

Test(mesh_endpoint_split, udp_gateway_or_both)
{
	char udp[REGISTRY_ENDPOINT_MAX + 1], gw[256];
	uint16_t port;

	cr_assert_eq(mesh_endpoint_split("10.0.0.1:51830", udp, gw, &port), 0);
	cr_assert_str_eq(udp, "10.0.0.1:51830");
	cr_assert_str_eq(gw, "");
	cr_assert_eq(mesh_endpoint_split(GW, udp, gw, &port), 0);
	cr_assert_str_eq(udp, "");
	cr_assert_str_eq(gw, GW + 8);
	cr_assert_eq(port, 443);
	cr_assert_eq(mesh_endpoint_split("[fd00::1]:51830," GW ":8443", udp, gw, &port), 0);
	cr_assert_str_eq(udp, "[fd00::1]:51830");
	cr_assert_str_eq(gw, GW + 8);
	cr_assert_eq(port, 8443);
	cr_assert_eq(mesh_endpoint_split(GW ",10.0.0.1:51830", udp, gw, &port), 0);
	cr_assert_str_eq(udp, "10.0.0.1:51830");
}

Test(mesh_endpoint_split, refuses_the_malformed)
{
	static const char *const bad[] = {
		"", ",", "10.0.0.1:1,", ",10.0.0.1:1", "10.0.0.1:1,10.0.0.2:1", GW "," GW,
		"10.0.0.1:1," GW ",10.0.0.3:1", "https://", "https://host/path", "https://HOST.example",
		"https://host:0", "https://host:65536", "https://host:", "https://host:12a", "https://ho_st",
		"http://host.example", "10.0.0.1:1/x",
	};
	char udp[REGISTRY_ENDPOINT_MAX + 1], gw[256];
	uint16_t port;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(mesh_endpoint_split(bad[i], udp, gw, &port), -EINVAL, "accepted '%s'", bad[i]);
}

static enum mesh_path decide(struct mesh_path_state *s, enum mesh_transport t, bool udp, bool gw,
			     enum mesh_path observed, int64_t hs, uint64_t rx, uint64_t ms)
{
	return mesh_path_decide(s, t, udp, gw, observed, hs, rx, 1000000, ms, 10000, 0);
}

#define AUTO MESH_TRANSPORT_AUTO
#define P_UDP MESH_PATH_UDP
#define P_GW MESH_PATH_GATEWAY

Test(mesh_path_decide, fixed_transports_and_missing_paths)
{
	struct mesh_path_state s = { 0 };

	cr_assert_eq(decide(&s, MESH_TRANSPORT_UDP, true, true, MESH_PATH_NONE, 0, 0, 1), P_UDP);
	s = (struct mesh_path_state){ 0 };
	cr_assert_eq(decide(&s, MESH_TRANSPORT_GATEWAY, true, true, MESH_PATH_NONE, 0, 0, 1), P_GW);
	s = (struct mesh_path_state){ 0 };
	cr_assert_eq(decide(&s, AUTO, false, true, MESH_PATH_NONE, 0, 0, 1), P_GW);
	s = (struct mesh_path_state){ 0 };
	cr_assert_eq(decide(&s, AUTO, true, false, MESH_PATH_NONE, 0, 0, 1), P_UDP);
	s = (struct mesh_path_state){ 0 };
	cr_assert_eq(decide(&s, MESH_TRANSPORT_UDP, false, true, MESH_PATH_NONE, 0, 0, 1), MESH_PATH_NONE);
	/* A fixed transport never moves, whatever the handshakes say. */
	s = (struct mesh_path_state){ 0 };
	for (uint64_t ms = 1; ms < 1000000; ms += 5000)
		cr_assert_eq(decide(&s, MESH_TRANSPORT_UDP, true, true, P_GW, 0, 0, ms), P_UDP);
}

Test(mesh_path_decide, auto_falls_back_probes_and_stays_where_it_works)
{
	struct mesh_path_state s = { 0 };
	const int64_t hs = 1000000 - 5;

	/* UDP first; silence within the bound changes nothing. */
	cr_assert_eq(decide(&s, AUTO, true, true, MESH_PATH_NONE, 0, 0, 1000), P_UDP);
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, 0, 0, 10999), P_UDP);
	/* Nothing came over UDP by the bound: the gateway, a probe 3 bounds later. */
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, 0, 0, 11000), P_GW);
	cr_assert_eq(s.probe_ms, 11000 + 30000);
	cr_assert_eq(decide(&s, AUTO, true, true, P_GW, hs, 500, 40999), P_GW);
	cr_assert_eq(decide(&s, AUTO, true, true, P_GW, hs, 600, 41000), P_UDP);
	/* The probe: a fresh session (from the gateway) but nothing over UDP: failed. */
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, hs, 600, 50000), P_UDP);
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, hs, 600, 51000), P_GW);
	cr_assert_eq(s.probe_ms, 51000 + 60000);
	/* The device roamed back to the gateway during the next probe: failed too. */
	cr_assert_eq(decide(&s, AUTO, true, true, P_GW, hs, 700, 111000), P_UDP);
	cr_assert_eq(decide(&s, AUTO, true, true, P_GW, hs, 900, 121000), P_GW);
	cr_assert_eq(s.probe_ms, 121000 + 120000);
	/* This probe holds: the peer's packets arrive over UDP; UDP stays, the back-off resets. */
	cr_assert_eq(decide(&s, AUTO, true, true, P_GW, hs, 900, 241000), P_UDP);
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, hs, 900, 241300), P_UDP);
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, hs, 1000, 242000), P_UDP);
	cr_assert(s.confirmed);
	cr_assert_eq(s.probe_wait_ms, 0);
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, 1000000 - 100, 5000, 500000), P_UDP);
	/* A session with no handshake for 3 minutes over UDP is dead: the gateway again. */
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, 1000000 - 181, 5000, 600000), P_GW);
	/* Probes back off up to 10 minutes; the seed spreads them by up to a quarter. */
	s.seed = 7;
	for (int i = 0; i < 10; i++) {
		uint64_t t = s.probe_ms;

		cr_assert_eq(decide(&s, AUTO, true, true, P_GW, hs, 5000, t), P_UDP);
		cr_assert_eq(decide(&s, AUTO, true, true, P_GW, hs, 5000, t + 10000), P_GW);
		cr_assert_eq(s.probe_ms, t + 10000 + s.probe_wait_ms + 7);
	}
	cr_assert_eq(s.probe_wait_ms, 600000);
}

Test(mesh_path_decide, auto_follows_a_peer_that_left_udp)
{
	struct mesh_path_state s = { 0 };
	const int64_t hs = 1000000 - 5;

	cr_assert_eq(decide(&s, AUTO, true, true, MESH_PATH_NONE, 0, 0, 0), P_UDP);
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, 0, 0, 300), P_UDP);
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, hs, 100, 500), P_UDP);
	cr_assert(s.confirmed);
	/* The peer fell back (its packets now come through the relay): we go there too. */
	cr_assert_eq(decide(&s, AUTO, true, true, P_GW, hs, 200, 1000), P_GW);
}

Test(mesh_path_decide, auto_leaves_a_udp_path_that_went_silent)
{
	struct mesh_path_state s = { 0 };
	const int64_t hs = 1000000 - 5;

	cr_assert_eq(mesh_path_decide(&s, AUTO, true, true, MESH_PATH_NONE, 0, 0, 1000000, 1, 10000, 30000), P_UDP);
	cr_assert_eq(mesh_path_decide(&s, AUTO, true, true, P_UDP, 0, 0, 1000000, 300, 10000, 30000), P_UDP);
	cr_assert_eq(mesh_path_decide(&s, AUTO, true, true, P_UDP, hs, 100, 1000000, 500, 10000, 30000), P_UDP);
	cr_assert(s.confirmed);
	/* keepalives keep arriving: stays */
	for (uint64_t t = 1000; t < 100000; t += 5000)
		cr_assert_eq(mesh_path_decide(&s, AUTO, true, true, P_UDP, hs, 100 + t, 1000000, t, 10000, 30000), P_UDP);
	/* then nothing for 30 s, the session still fresh: the gateway */
	cr_assert_eq(mesh_path_decide(&s, AUTO, true, true, P_UDP, hs, 100 + 96000, 1000000, 125000, 10000, 30000),
		     P_UDP);
	cr_assert_eq(mesh_path_decide(&s, AUTO, true, true, P_UDP, hs, 100 + 96000, 1000000, 126000, 10000, 30000),
		     P_GW);
}

/* A new peer fell back to the gateway and its first UDP probe starts: its time. */
static uint64_t probe_started(struct mesh_path_state *s, int64_t hs, uint64_t rx)
{
	uint64_t t;

	*s = (struct mesh_path_state){ 0 };
	cr_assert_eq(decide(s, AUTO, true, true, MESH_PATH_NONE, 0, 0, 0), P_UDP);
	cr_assert_eq(decide(s, AUTO, true, true, P_GW, 0, 0, 10000), P_GW);
	t = s->probe_ms;
	cr_assert_eq(decide(s, AUTO, true, true, P_GW, hs, rx, t), P_UDP);
	return t;
}

/*
 * A probe towards a peer whose UDP is dropped, as the agent saw it when the pair flipped:
 * the dump of the turn that chose UDP still shows the relay's endpoint; relayed packets
 * (a fresh session, the peer's keepalive) arrive before our UDP endpoint is written, so
 * the next dump shows our UDP endpoint with rx grown. Nothing of that came over UDP.
 */
Test(mesh_path_decide, relayed_packets_never_confirm_a_probe)
{
	struct mesh_path_state s;
	const int64_t hs = 1000000 - 5;
	uint64_t rx = 5000, t;

	t = probe_started(&s, hs, rx);
	rx += 148;  /* relayed, before our write: the write undid its roam */
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, hs, rx, t + 300), P_UDP);
	cr_assert(!s.confirmed);
	/* Quiet turns: our endpoint stays, rx stays. */
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, hs, rx, t + 600), P_UDP);
	cr_assert(!s.confirmed);
	/* The peer's next packet comes through the relay: the device roams there. */
	rx += 32;
	cr_assert_eq(decide(&s, AUTO, true, true, P_GW, hs, rx, t + 900), P_UDP);
	for (uint64_t ms = t + 1200; ms < t + 10000; ms += 300) {
		rx += 32;
		cr_assert_eq(decide(&s, AUTO, true, true, P_GW, hs, rx, ms), P_UDP);
		cr_assert(!s.confirmed);
	}
	/* The bound: back to the gateway, the next probe later, and no flip on the way. */
	cr_assert_eq(decide(&s, AUTO, true, true, P_GW, hs, rx, t + 10000), P_GW);
	cr_assert(!s.confirmed);
	cr_assert_eq(s.probe_wait_ms, 60000);
	/* The same without a roam at all (the peer quiet after the write): no evidence either. */
	t = s.probe_ms;
	cr_assert_eq(decide(&s, AUTO, true, true, P_GW, hs, rx, t), P_UDP);
	rx += 148;
	for (uint64_t ms = t + 300; ms < t + 10000; ms += 300)
		cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, hs, rx, ms), P_UDP);
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, hs, rx, t + 10000), P_GW);
	cr_assert(!s.confirmed);
}

/* The same probe where UDP passes: the peer's reply arrives with our UDP endpoint in place. */
Test(mesh_path_decide, a_probe_over_working_udp_switches_to_it)
{
	struct mesh_path_state s;
	const int64_t hs = 1000000 - 5;
	uint64_t rx = 5000, t;

	t = probe_started(&s, hs, rx);
	rx += 148;  /* relayed before the write, as above */
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, hs, rx, t + 300), P_UDP);
	cr_assert(!s.confirmed);
	rx += 92;  /* the ICMP reply to the nudge, over UDP: the endpoint stays ours */
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, hs, rx, t + 600), P_UDP);
	cr_assert(s.confirmed);
	cr_assert_eq(s.probe_wait_ms, 0);
	for (uint64_t ms = t + 900; ms < t + 60000; ms += 300) {
		rx += 32;
		cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, hs, rx, ms), P_UDP);
	}
	/* A relayed packet first, then the reply over UDP (the device roamed back): also UDP. */
	t = probe_started(&s, hs, rx);
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, hs, rx, t + 300), P_UDP);
	rx += 32;
	cr_assert_eq(decide(&s, AUTO, true, true, P_GW, hs, rx, t + 600), P_UDP);
	rx += 92;
	cr_assert_eq(decide(&s, AUTO, true, true, P_UDP, hs, rx, t + 900), P_UDP);
	cr_assert(s.confirmed);
}

/* ---- the handle: our endpoint field, the path table and its resolver cache ---------------- */

static const uint8_t INST[20] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23,
				  0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67 };
static const uint8_t CONTRACT[20] = { 0x42 };

static void udp_config(struct mesh_config *cfg)
{
	mesh_config_init(cfg);
	cfg->transport = MESH_TRANSPORT_UDP;
	snprintf(cfg->endpoint, sizeof(cfg->endpoint), "192.0.2.1:51820");
}

static struct mesh_peer peer(uint32_t token, const char *endpoint)
{
	struct mesh_peer p = { .token = token, .mode = REGISTRY_MODE_WIREGUARD };

	memset(p.wg_key, (int)token, sizeof(p.wg_key));
	memset(p.instance_id, (int)token, sizeof(p.instance_id));
	snprintf(p.endpoint, sizeof(p.endpoint), "%s", endpoint);
	/* numeric parsed at classification, as decide.c does; a name stays AF_UNSPEC */
	if (mesh_endpoint_udp(endpoint, false, &p.udp) < 0)
		p.udp = (union wg_endpoint){ 0 };
	return p;
}

static uint16_t ep_port(const union wg_endpoint *ep)
{
	return ntohs(ep->addr.sa_family == AF_INET6 ? ep->in6.sin6_port : ep->in.sin_port);
}

Test(mesh_transport_handle, our_endpoint_field)
{
	struct mesh_transport_handle *t;
	struct mesh_config cfg;
	struct err_detail why;

	udp_config(&cfg);
	cr_assert_eq(mesh_transport_open(&t, &cfg, INST, CONTRACT, NULL, &why), 0);
	cr_assert_str_eq(mesh_transport_endpoint(t), "192.0.2.1:51820");
	cr_assert(!mesh_transport_gateway(t));
	mesh_transport_close(t);

	cfg.transport = MESH_TRANSPORT_AUTO;
	snprintf(cfg.gateway_domain, sizeof(cfg.gateway_domain), "gw.example.com");
	cr_assert_eq(mesh_transport_open(&t, &cfg, INST, CONTRACT, NULL, &why), 0);
	cr_assert_str_eq(
		mesh_transport_endpoint(t),
		"192.0.2.1:51820,https://0123456789abcdef0123456789abcdef01234567-51831.gw.example.com");
	cr_assert(mesh_transport_gateway(t));
	mesh_transport_close(t);
}

Test(mesh_transport_handle, open_says_what_is_wrong)
{
	struct mesh_transport_handle *t = (void *)1;
	struct mesh_config cfg;
	struct err_detail why;

	udp_config(&cfg);
	cfg.transport = MESH_TRANSPORT_AUTO;
	snprintf(cfg.gateway_domain, sizeof(cfg.gateway_domain), "gw.example.com");
	cfg.relay_port = cfg.listen_port;
	cr_assert_eq(mesh_transport_open(&t, &cfg, INST, CONTRACT, NULL, &why), -EBADR);
	cr_assert_null(t);
	cr_assert(strstr(why.text, "P2P_RELAY_PORT and P2P_LISTEN_PORT"), "%s", why.text);

	/* gateway mode without a domain (no host-shared config here either) */
	udp_config(&cfg);
	cfg.transport = MESH_TRANSPORT_GATEWAY;
	cr_assert_lt(mesh_transport_open(&t, &cfg, INST, CONTRACT, NULL, &why), 0);
	cr_assert(strstr(why.text, "DSTACK_GATEWAY_DOMAIN"), "%s", why.text);
	mesh_transport_close(NULL);
	cr_assert_null(mesh_transport_endpoints(NULL, NULL));
}

Test(mesh_transport_handle, table_follows_the_peers_and_resolves_a_name_once)
{
	struct mesh_transport_handle *t;
	struct mesh_config cfg;
	struct mesh_peer ps[2] = { peer(3, "192.0.2.3:51820"), peer(5, "localhost:51825") };
	const union wg_endpoint *eps;
	struct buf out;

	udp_config(&cfg);
	cr_assert_eq(mesh_transport_open(&t, &cfg, INST, CONTRACT, NULL, NULL), 0);
	mesh_transport_sync(t, 1, ps, 2);
	cr_assert_eq(mesh_transport_stats(t).resolves, 1); /* the name, at the change */
	for (int turn = 0; turn < 3; turn++) {
		eps = mesh_transport_endpoints(t, NULL);
		cr_assert_eq(eps[3].addr.sa_family, AF_INET);
		cr_assert_eq(eps[3].in.sin_addr.s_addr, htonl(0xc0000203));
		cr_assert_eq(ep_port(&eps[3]), 51820);
		cr_assert_neq(eps[5].addr.sa_family, AF_UNSPEC, "localhost did not resolve");
		cr_assert_eq(ep_port(&eps[5]), 51825);
		cr_assert_eq(eps[4].addr.sa_family, AF_UNSPEC);
		mesh_transport_sync(t, 1, ps, 2);
	}
	/* cached: neither a turn nor the same record looks the name up again */
	cr_assert_eq(mesh_transport_stats(t).resolves, 1);
	cr_assert_eq(mesh_transport_stats(t).resolve_failures, 0);

	buf_init(&out, 4096);
	cr_assert_eq(mesh_transport_status(t, &ps[1], NULL, &out), 0);
	cr_assert_eq(buf_terminate(&out), 0);
	cr_assert_str_eq((const char *)out.data, ",\"path\":\"none\",\"path_wanted\":\"udp\"");
	buf_clear(&out);

	/* a new endpoint: looked up now; a peer gone: out of the table */
	ps[1] = peer(5, "localhost:51826");
	mesh_transport_sync(t, 1, &ps[1], 1);
	cr_assert_eq(mesh_transport_stats(t).resolves, 2);
	eps = mesh_transport_endpoints(t, NULL);
	cr_assert_eq(ep_port(&eps[5]), 51826);
	cr_assert_eq(eps[3].addr.sa_family, AF_UNSPEC);
	cr_assert_eq(mesh_transport_stats(t).relay_peers, 0);
	mesh_transport_close(t);
}
