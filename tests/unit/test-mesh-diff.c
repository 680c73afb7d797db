/* SPDX-License-Identifier: MIT */
/* Unit tests of mesh/: the peer diff, endpoints, overlay addresses, config, publishing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <criterion/criterion.h>

#include "common/common.h"
#include "mesh/mesh.h"

static struct mesh_wg_want want_peer(uint8_t id, const char *endpoint)
{
	struct mesh_wg_want w = { .allowed_ip = mesh_overlay_addr(id), .keepalive = 10 };

	memset(w.key, id, sizeof(w.key));
	if (endpoint)
		cr_assert_eq(mesh_endpoint_parse(endpoint, &w.endpoint), 0);
	return w;
}

/* The device state that results from applying want exactly. */
static struct mesh_wg_have have_from(const struct mesh_wg_want *w)
{
	struct mesh_wg_have h = {
		.endpoint = w->endpoint, .allowed_ip = w->allowed_ip, .allowed_cidr = 32,
		.n_allowed = 1, .keepalive = w->keepalive,
	};

	memcpy(h.key, w->key, sizeof(h.key));
	return h;
}

Test(mesh_overlay, token_to_address)
{
	char s[16];

	cr_assert_eq(mesh_overlay_addr(2), htonl(0x0a000102));
	cr_assert_eq(mesh_overlay_addr(254), htonl(0x0a0001fe));
	cr_assert_eq(mesh_overlay_addr(0), 0);
	cr_assert_eq(mesh_overlay_addr(255), 0);
	mesh_overlay_addr_str(17, s);
	cr_assert_str_eq(s, "10.0.1.17");
}

Test(mesh_endpoint, parses_v4_v6_and_rejects_garbage)
{
	struct sockaddr_storage ss;
	const struct sockaddr_in *in = (const void *)&ss;

	cr_assert_eq(mesh_endpoint_parse("192.168.77.3:51830", &ss), 0);
	cr_assert_eq(ss.ss_family, AF_INET);
	cr_assert_eq(ntohs(in->sin_port), 51830);
	cr_assert_eq(mesh_endpoint_parse("[fd00::1]:51830", &ss), 0);
	cr_assert_eq(ss.ss_family, AF_INET6);
	cr_assert_eq(mesh_endpoint_parse("192.168.77.3", &ss), -EINVAL);
	cr_assert_eq(mesh_endpoint_parse("192.168.77.3:0", &ss), -EINVAL);
	cr_assert_eq(mesh_endpoint_parse("192.168.77.3:70000", &ss), -EINVAL);
	cr_assert_eq(mesh_endpoint_parse(":80", &ss), -EINVAL);
	cr_assert_eq(mesh_endpoint_parse("fd00::1:80", &ss), -EINVAL);
	cr_assert_eq(mesh_endpoint_parse("[fd00::1]80", &ss), -EINVAL);
	cr_assert_eq(mesh_endpoint_parse("1.2.3.4:8x", &ss), -EINVAL);
}

Test(mesh_diff, empty_device_gets_every_peer)
{
	struct mesh_wg_want want[3] = { want_peer(1, "10.9.0.1:1"), want_peer(2, "10.9.0.2:1"),
					want_peer(3, NULL) };
	struct mesh_change out[3];

	cr_assert_eq(mesh_diff_peers(want, 3, NULL, 0, NULL, 0, out), 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(out[i].op, MESH_PEER_ADD);
		cr_assert(out[i].set_allowed_ip);
		cr_assert_eq(out[i].allowed_ip, want[i].allowed_ip);
		cr_assert(out[i].set_keepalive);
	}
	cr_assert(out[0].set_endpoint);
	cr_assert_not(out[2].set_endpoint, "an unknown endpoint is not set");
}

Test(mesh_diff, nothing_to_do_when_in_sync)
{
	struct mesh_wg_want want[2] = { want_peer(1, "10.9.0.1:1"), want_peer(2, "10.9.0.2:1") };
	struct mesh_wg_have have[2] = { have_from(&want[1]), have_from(&want[0]) };
	struct mesh_change out[4];

	cr_assert_eq(mesh_diff_peers(want, 2, have, 2, NULL, 0, out), 0);
	cr_assert_eq(mesh_diff_peers(want, 2, have, 2, want, 2, out), 0);
}

Test(mesh_diff, removes_unknown_and_adds_new)
{
	struct mesh_wg_want want[2] = { want_peer(1, "10.9.0.1:1"), want_peer(4, "10.9.0.4:1") };
	struct mesh_wg_want gone = want_peer(3, "10.9.0.3:1");
	struct mesh_wg_have have[2] = { have_from(&want[0]), have_from(&gone) };
	struct mesh_change out[4];

	cr_assert_eq(mesh_diff_peers(want, 2, have, 2, NULL, 0, out), 2);
	cr_assert_eq(out[0].op, MESH_PEER_REMOVE);
	cr_assert_eq(out[0].key[0], 3);
	cr_assert_eq(out[1].op, MESH_PEER_ADD);
	cr_assert_eq(out[1].key[0], 4);
}

Test(mesh_diff, fixes_allowed_ips_and_keepalive_only)
{
	struct mesh_wg_want want[1] = { want_peer(5, "10.9.0.5:1") };
	struct mesh_wg_have have[1] = { have_from(&want[0]) };
	struct mesh_change out[2];

	have[0].n_allowed = 2;
	have[0].keepalive = 0;
	cr_assert_eq(mesh_diff_peers(want, 1, have, 1, want, 1, out), 1);
	cr_assert_eq(out[0].op, MESH_PEER_UPDATE);
	cr_assert(out[0].set_allowed_ip);
	cr_assert(out[0].set_keepalive);
	cr_assert_not(out[0].set_endpoint);
}

Test(mesh_diff, roamed_endpoint_kept_until_registry_changes)
{
	struct mesh_wg_want want[1] = { want_peer(6, "10.9.0.6:1") };
	struct mesh_wg_have have[1] = { have_from(&want[0]) };
	struct mesh_wg_want moved = want_peer(6, "10.9.0.66:2");
	struct mesh_change out[2];

	/* The device learned another endpoint from the peer's packets (NAT). */
	cr_assert_eq(mesh_endpoint_parse("203.0.113.9:4000", &have[0].endpoint), 0);
	cr_assert_eq(mesh_diff_peers(want, 1, have, 1, want, 1, out), 0, "roaming is respected");
	cr_assert_eq(mesh_diff_peers(want, 1, have, 1, NULL, 0, out), 1, "after a restart, re-set once");
	cr_assert_eq(mesh_diff_peers(&moved, 1, have, 1, want, 1, out), 1);
	cr_assert(out[0].set_endpoint, "a new registered endpoint wins");
	cr_assert_not(out[0].set_allowed_ip);
}

Test(mesh_diff, duplicate_wanted_key_is_an_error)
{
	struct mesh_wg_want want[2] = { want_peer(7, NULL), want_peer(7, NULL) };
	struct mesh_change out[2];

	cr_assert_eq(mesh_diff_peers(want, 2, NULL, 0, NULL, 0, out), -EINVAL);
}

Test(mesh_config, names_values_and_file)
{
	struct mesh_config cfg;
	char path[] = "/tmp/test-mesh-config-XXXXXX", why[128];
	int fd, line;
	FILE *f;

	mesh_config_init(&cfg);
	cr_assert_eq(mesh_config_validate(&cfg, why, sizeof(why)), -EINVAL, "no contract");
	cr_assert_eq(mesh_config_set(&cfg, "CLUSTER_CONTRACT", "0x5FbDB2315678afecb367f032d93F642f64180aa3"), 0);
	cr_assert_str_eq(cfg.contract, "0x5fbdb2315678afecb367f032d93f642f64180aa3");
	cr_assert_eq(mesh_config_set(&cfg, "CLUSTER_CONTRACT", "0x1234"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_INTERFACE", "wg0"), -EINVAL, "dstack's interface");
	cr_assert_eq(mesh_config_set(&cfg, "P2P_INTERFACE", "dstack-wg0"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_LISTEN_PORT", "9182"), -EINVAL, "dstack's port");
	cr_assert_eq(mesh_config_set(&cfg, "P2P_LISTEN_PORT", "09182"), -EINVAL, "dstack's port");
	cr_assert_eq(mesh_config_set(&cfg, "P2P_POLL_MS", "10"), -EINVAL, "too fast");
	cr_assert_eq(mesh_config_set(&cfg, "P2P_LISTEN_PORT", "65536"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_MODE", "carrier-pigeon"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "NO_SUCH_THING", "1"), -ENOENT);
	cr_assert_eq(mesh_config_validate(&cfg, why, sizeof(why)), 0, "%s", why);

	fd = mkstemp(path);
	cr_assert(fd >= 0);
	f = fdopen(fd, "w");
	fprintf(f, "# comment\n\nP2P_MODE = tls\nP2P_LISTEN_PORT=\"51999\"\nETH_RPC_URL=http://a,http://b\n");
	fclose(f);
	cr_assert_eq(mesh_config_load_file(&cfg, path, &line), 0);
	cr_assert_eq(cfg.mode, MESH_MODE_TLS);
	cr_assert_eq(cfg.listen_port, 51999);
	cr_assert_str_eq(cfg.rpc_urls, "http://a,http://b");

	f = fopen(path, "w");
	fprintf(f, "P2P_MODE=tls\nP2P_POLL_MS=abc\n");
	fclose(f);
	cr_assert_eq(mesh_config_load_file(&cfg, path, &line), -EINVAL);
	cr_assert_eq(line, 2);
	unlink(path);
}

Test(mesh_publish, lines_json_and_atomic_file)
{
	struct mesh_peer peers[2] = {
		{ .token = 2, .mode = MESH_MODE_WIREGUARD },
		{ .token = 3, .mode = MESH_MODE_TLS, .endpoint = "https://ab-443.example.org" },
	};
	char path[] = "/tmp/test-mesh-peers-XXXXXX", text[128] = { 0 };
	struct buf b;
	FILE *f;
	int fd;

	buf_init(&b, 4096);
	cr_assert_eq(mesh_peers_format_lines(peers, 2, &b), 0);
	cr_assert_str_eq((char *)b.data, "10.0.1.2\nhttps://ab-443.example.org\n");
	buf_reset(&b);
	cr_assert_eq(mesh_peers_format_json(peers, 2, &b), 0);
	cr_assert_str_eq((char *)b.data, "[\"10.0.1.2\",\"https://ab-443.example.org\"]");

	fd = mkstemp(path);
	close(fd);
	cr_assert_eq(mesh_write_file_atomic(path, b.data, b.len), 0);
	f = fopen(path, "r");
	cr_assert(fread(text, 1, sizeof(text) - 1, f) == b.len);
	fclose(f);
	cr_assert_str_eq(text, (char *)b.data);
	unlink(path);
	buf_free(&b);
}

/* ---- property: applying the diff to the device yields exactly the wanted peers ---------- */

static uint32_t rng_state = 0x2545f491;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state % n;
}

/* What a device does with one change, as WireGuard would (the oracle for the diff). */
static void device_apply(struct mesh_wg_have *dev, size_t *n, const struct mesh_change *c)
{
	size_t i;

	for (i = 0; i < *n && memcmp(dev[i].key, c->key, MESH_KEY_LEN); i++)
		;
	if (c->op == MESH_PEER_REMOVE) {
		cr_assert(i < *n, "removing a peer the device does not have");
		dev[i] = dev[--*n];
		return;
	}
	if (i == *n) {
		cr_assert_eq(c->op, MESH_PEER_ADD, "updating a peer the device does not have");
		memset(&dev[i], 0, sizeof(dev[i]));
		memcpy(dev[i].key, c->key, MESH_KEY_LEN);
		++*n;
	} else {
		cr_assert_eq(c->op, MESH_PEER_UPDATE, "adding a peer the device already has");
	}
	if (c->set_endpoint)
		dev[i].endpoint = c->endpoint;
	if (c->set_allowed_ip) {
		dev[i].allowed_ip = c->allowed_ip;
		dev[i].allowed_cidr = 32;
		dev[i].n_allowed = 1;
	}
	if (c->set_keepalive)
		dev[i].keepalive = c->keepalive;
}

Test(mesh_diff, random_states_converge_in_one_step)
{
	static struct mesh_wg_want want[40];
	static struct mesh_wg_have dev[80];
	static struct mesh_change out[120];

	for (int round = 0; round < 3000; round++) {
		size_t nwant = rnd(40), ndev = rnd(40);
		char ep[32];
		int n;

		/* Keys from a small space so wanted and present peers overlap. */
		for (size_t i = 0; i < nwant; i++) {
			uint8_t id = (uint8_t)(i * 3 + 1);

			snprintf(ep, sizeof(ep), "10.9.%u.%u:%u", rnd(2), rnd(3), 1 + rnd(2));
			want[i] = want_peer(id, rnd(5) ? ep : NULL);
			want[i].keepalive = (uint16_t)rnd(3);
		}
		for (size_t i = 0; i < ndev; i++) {
			snprintf(ep, sizeof(ep), "10.9.%u.%u:%u", rnd(2), rnd(3), 1 + rnd(2));
			dev[i] = have_from(&(struct mesh_wg_want){ 0 });
			memset(dev[i].key, (int)(i * 2 + 1), MESH_KEY_LEN);
			mesh_endpoint_parse(ep, &dev[i].endpoint);
			dev[i].allowed_ip = mesh_overlay_addr(1 + rnd(4));
			dev[i].allowed_cidr = rnd(4) ? 32 : 24;
			dev[i].n_allowed = rnd(3);
			dev[i].keepalive = (uint16_t)rnd(3);
		}
		n = mesh_diff_peers(want, nwant, dev, ndev, NULL, 0, out);
		cr_assert(n >= 0 && (size_t)n <= nwant + ndev);
		for (int k = 0; k < n; k++)
			device_apply(dev, &ndev, &out[k]);
		/* Now nothing is left to do, and the device holds exactly the wanted peers. */
		cr_assert_eq(mesh_diff_peers(want, nwant, dev, ndev, NULL, 0, out), 0, "round %d", round);
		cr_assert_eq(ndev, nwant, "round %d", round);
		for (size_t i = 0; i < nwant; i++) {
			size_t k;

			for (k = 0; k < ndev && memcmp(dev[k].key, want[i].key, MESH_KEY_LEN); k++)
				;
			cr_assert(k < ndev);
			cr_assert_eq(dev[k].allowed_ip, want[i].allowed_ip);
			cr_assert_eq(dev[k].keepalive, want[i].keepalive);
		}
	}
}
