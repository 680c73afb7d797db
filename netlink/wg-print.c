/* SPDX-License-Identifier: MIT */
/* A device as text in `wg show IF dump`'s format, so tests can diff us against wg. */
#include <inttypes.h>
#include <stdio.h>

#include "netlink/netlink.h"

static void print_allowedips(FILE *f, const struct wg_peer *p)
{
	char text[INET6_ADDRSTRLEN + 8];

	for (size_t i = 0; i < p->n_allowedips; i++) {
		if (ip_prefix_format(text, sizeof(text), &p->allowedips[i]) < 0)
			snprintf(text, sizeof(text), "?");
		fprintf(f, "%s%s", i ? "," : "", text);
	}
}

void wg_device_print_dump(FILE *f, const struct wg_device *dev)
{
	char b64[WG_KEY_B64_LEN], ep[INET6_ADDRSTRLEN + 16];

	wg_key_to_base64(b64, dev->public_key);
	fprintf(f, "%s\t%s\t%u\t", (dev->flags & WG_DEVICE_HAS_PRIVATE_KEY) ? "(hidden)" : "(none)",
		(dev->flags & WG_DEVICE_HAS_PRIVATE_KEY) ? b64 : "(none)", dev->listen_port);
	if (dev->fwmark)
		fprintf(f, "0x%x\n", dev->fwmark);
	else
		fprintf(f, "off\n");
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wg_peer *p = &dev->peers[i];

		wg_key_to_base64(b64, p->public_key);
		wg_endpoint_format(ep, sizeof(ep), &p->endpoint);
		fprintf(f, "%s\t%s\t%s\t", b64, (p->flags & WG_PEER_HAS_PRESHARED_KEY) ? "(hidden)" : "(none)", ep);
		if (p->n_allowedips)
			print_allowedips(f, p);
		else
			fprintf(f, "(none)");
		fprintf(f, "\t%lld\t%" PRIu64 "\t%" PRIu64 "\t", (long long)p->last_handshake.tv_sec,
			p->rx_bytes, p->tx_bytes);
		if (p->persistent_keepalive)
			fprintf(f, "%u\n", p->persistent_keepalive);
		else
			fprintf(f, "off\n");
	}
}

