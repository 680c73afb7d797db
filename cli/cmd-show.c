/* SPDX-License-Identifier: MIT */
/*
 * dstack-p2p show: WireGuard interfaces as `wg show` prints them, read through our own
 * netlink/ code (kernel or userspace); --json for machines, --dump in `wg show dump`'s
 * format. Private and preshared keys are never printed.
 */
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "common/common.h"
#include "netlink/netlink.h"

enum show_format { SHOW_HUMAN, SHOW_JSON, SHOW_DUMP };

enum { O_JSON = 256, O_DUMP, O_BACKEND };

static const struct cli_opt opts[] = {
	{ "json", O_JSON, NULL, "one JSON object: {\"interfaces\":[...]}" },
	{ "dump", O_DUMP, NULL, "`wg show IFNAME dump`'s tab-separated format, keys hidden" },
	{ "backend", O_BACKEND, "KIND", "kernel, uapi (a userspace implementation's socket)\n"
	  "or auto (default: the userspace socket if one exists)" },
	{ 0 },
};

static const struct cli_cmd cmd = {
	.name = "show",
	.synopsis = "[IFNAME] [--json | --dump] [--backend kernel|uapi|auto]",
	.about = "Shows WireGuard interfaces (all of them without IFNAME) through dstack-p2p's own\n"
		 "netlink code. --dump prints `wg show IFNAME dump`'s format with the private key\n"
		 "replaced by (hidden). Keys are never printed, only public keys.",
	.opts = opts,
	.max_operands = 1,
	.footer = "Exit status: 0 shown (also when there is none), 1 an interface cannot be read,\n"
		  "2 usage.",
};

static void print_allowedips(const struct wg_peer *p, const char *sep, bool quoted)
{
	char text[INET6_ADDRSTRLEN + 8];

	for (size_t i = 0; i < p->n_allowedips; i++) {
		if (ip_prefix_format(text, sizeof(text), &p->allowedips[i]) < 0)
			snprintf(text, sizeof(text), "?");
		printf("%s%s%s%s", i ? sep : "", quoted ? "\"" : "", text, quoted ? "\"" : "");
	}
}

static void print_bytes(uint64_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		printf("%" PRIu64 " B", n);
	else
		printf("%.2f %s", v, units[u]);
}

static void print_ago(time_t then)
{
	time_t ago = time(NULL) - then;

	if (ago < 0)
		ago = 0;
	if (ago >= 86400)
		printf("%lld days, ", (long long)(ago / 86400));
	if (ago >= 3600)
		printf("%lld hours, ", (long long)(ago / 3600 % 24));
	if (ago >= 60)
		printf("%lld minutes, ", (long long)(ago / 60 % 60));
	printf("%lld seconds ago", (long long)(ago % 60));
}

static void print_human(const struct wg_device *dev, const char *backend)
{
	char b64[WG_KEY_B64_LEN], ep[INET6_ADDRSTRLEN + 16];

	printf("interface: %s (%s)\n", dev->name, backend);
	if (dev->flags & WG_DEVICE_HAS_PRIVATE_KEY) {
		wg_key_to_base64(b64, dev->public_key);
		printf("  public key: %s\n  private key: (hidden)\n", b64);
	}
	if (dev->listen_port)
		printf("  listening port: %u\n", dev->listen_port);
	if (dev->fwmark)
		printf("  fwmark: 0x%x\n", dev->fwmark);
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wg_peer *p = &dev->peers[i];

		wg_key_to_base64(b64, p->public_key);
		printf("\npeer: %s\n", b64);
		if (p->flags & WG_PEER_HAS_PRESHARED_KEY)
			printf("  preshared key: (hidden)\n");
		if (p->endpoint.addr.sa_family != AF_UNSPEC) {
			wg_endpoint_format(ep, sizeof(ep), &p->endpoint);
			printf("  endpoint: %s\n", ep);
		}
		printf("  allowed ips: ");
		if (p->n_allowedips)
			print_allowedips(p, ", ", false);
		else
			printf("(none)");
		printf("\n");
		if (p->last_handshake.tv_sec) {
			printf("  latest handshake: ");
			print_ago(p->last_handshake.tv_sec);
			printf("\n");
		}
		if (p->rx_bytes || p->tx_bytes) {
			printf("  transfer: ");
			print_bytes(p->rx_bytes);
			printf(" received, ");
			print_bytes(p->tx_bytes);
			printf(" sent\n");
		}
		if (p->persistent_keepalive)
			printf("  persistent keepalive: every %u seconds\n", p->persistent_keepalive);
	}
}

static void print_json_string(const char *s)
{
	struct buf b;

	buf_init(&b, 256);
	if (json_append_string(&b, s) == 0 && buf_terminate(&b) == 0)
		fputs((const char *)b.data, stdout);
	else
		printf("null");
	buf_clear(&b);
}

static void print_json(const struct wg_device *dev, const char *backend)
{
	char b64[WG_KEY_B64_LEN], ep[INET6_ADDRSTRLEN + 16];

	wg_key_to_base64(b64, dev->public_key);
	/* Interface names may hold quotes and backslashes: escaped like any string. */
	printf("{\"name\":");
	print_json_string(dev->name);
	printf(",\"backend\":\"%s\",\"public_key\":", backend);
	if (dev->flags & WG_DEVICE_HAS_PRIVATE_KEY)
		printf("\"%s\"", b64);
	else
		printf("null");
	printf(",\"listen_port\":%u,\"fwmark\":%u,\"peers\":[", dev->listen_port, dev->fwmark);
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wg_peer *p = &dev->peers[i];

		wg_key_to_base64(b64, p->public_key);
		printf("%s{\"public_key\":\"%s\",\"preshared_key\":%s,\"endpoint\":", i ? "," : "", b64,
		       (p->flags & WG_PEER_HAS_PRESHARED_KEY) ? "true" : "false");
		if (p->endpoint.addr.sa_family != AF_UNSPEC) {
			wg_endpoint_format(ep, sizeof(ep), &p->endpoint);
			printf("\"%s\"", ep);
		} else {
			printf("null");
		}
		printf(",\"allowed_ips\":[");
		print_allowedips(p, ",", true);
		printf("],\"latest_handshake\":%lld,\"rx_bytes\":%" PRIu64 ",\"tx_bytes\":%" PRIu64
		       ",\"persistent_keepalive\":%u}",
		       (long long)p->last_handshake.tv_sec, p->rx_bytes, p->tx_bytes, p->persistent_keepalive);
	}
	printf("]}");
}

static int show_one(const char *ifname, const char *kind, enum show_format format, bool first)
{
	struct wg_backend *b = NULL;
	struct wg_device *dev = NULL;
	struct err_detail why = { "" };
	const char *name;
	int r;

	r = wg_backend_open_named(&b, kind, ifname, &why);
	if (r == 0)
		r = wg_get_device(b, ifname, &dev, &why);
	if (r < 0) {
		cli_error("%s: %s", ifname, err_detail_str(&why, r));
		goto out;
	}
	name = wg_backend_kind(b) == WG_BACKEND_KERNEL ? "kernel" : "userspace";
	if (format == SHOW_DUMP) {
		wg_device_print_dump(stdout, dev);
	} else if (format == SHOW_JSON) {
		printf("%s", first ? "" : ",");
		print_json(dev, name);
	} else {
		printf("%s", first ? "" : "\n");
		print_human(dev, name);
	}
out:
	wg_device_free(dev);
	wg_backend_close(b);
	return r;
}

/* Interfaces that are kernel WireGuard links or served by a userspace implementation. */
static bool is_wireguard(const char *ifname)
{
	struct wg_backend *b = NULL;
	struct wg_device *dev = NULL;
	bool yes;

	if (rtnl_link_is_wireguard(ifname, NULL) == 1)
		return true;
	if (wg_backend_open_uapi(&b, NULL, NULL) < 0)
		return false;
	yes = wg_get_device(b, ifname, &dev, NULL) == 0;
	wg_device_free(dev);
	wg_backend_close(b);
	return yes;
}

int cmd_show(int argc, char **argv)
{
	enum show_format format = SHOW_HUMAN;
	const char *ifname = NULL, *kind = "auto";
	struct if_nameindex *ifs;
	struct cli_args a;
	int c, r = 0, shown = 0;

	cli_args_init(&a, &cmd, argc, argv);
	while ((c = cli_next(&a)) > 0) {
		switch (c) {
		case O_JSON: format = SHOW_JSON; break;
		case O_DUMP: format = SHOW_DUMP; break;
		case O_BACKEND:
			kind = a.value;
			if (strcmp(kind, "auto") && strcmp(kind, "kernel") && strcmp(kind, "uapi"))
				return cli_bad_value(&a, "want kernel, uapi or auto");
			break;
		}
	}
	if (c == CLI_STOP)
		return a.status;
	if (a.n_operands)
		ifname = a.operands[0];
	if (format == SHOW_JSON)
		printf("{\"interfaces\":[");
	if (ifname && !is_wireguard(ifname)) {
		/* Say what is wrong with the name rather than how to start an interface by it. */
		cli_error(if_nametoindex(ifname) ? "%s is not a WireGuard interface"
			  : "no interface %s (and no userspace WireGuard serves one by that name)", ifname);
		r = -ENODEV;
	} else if (ifname) {
		r = show_one(ifname, kind, format, true);
	} else {
		ifs = if_nameindex();
		if (!ifs) {
			cli_error("listing interfaces: %s", errstr(-errno));
			return CLI_EXIT_FAILURE;
		}
		for (struct if_nameindex *i = ifs; i->if_index; i++) {
			if (!is_wireguard(i->if_name))
				continue;
			if (show_one(i->if_name, kind, format, shown == 0) < 0)
				r = -EIO;
			shown++;
		}
		if_freenameindex(ifs);
	}
	if (format == SHOW_JSON)
		printf("]}\n");
	return r < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
